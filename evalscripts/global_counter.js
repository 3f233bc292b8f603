//VERSION=3
// Global state mutated per pixel: a running pixel counter.
var count = 0;

function setup() {
  return { input: ["B04"], output: { bands: 1, sampleType: "UINT16" } };
}

function evaluatePixel(s) {
  count += 1;
  return [count];
}
