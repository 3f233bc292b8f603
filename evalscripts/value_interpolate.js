//VERSION=3
// valueInterpolate (alias of colorBlend) on numbers, FLOAT32.
function setup() {
  return { input: ["B04"], output: { bands: 1, sampleType: "FLOAT32" } };
}

function evaluatePixel(s) {
  return [valueInterpolate(s.B04, [0, 0.1, 0.3], [0, 100, 200])];
}
