//VERSION=3
// Return values as real scripts write them: booleans, single-element arrays, strings and
// one value too many (dropped).
function setup() {
  return { input: ["B04"], output: { bands: 3, sampleType: "FLOAT32" } };
}

function evaluatePixel(s) {
  return [s.B04 > 0.1, [s.B04], "2.5", 99];
}
