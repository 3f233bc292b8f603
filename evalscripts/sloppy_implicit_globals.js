//VERSION=3
// Sloppy mode: an implicit global assigned inside evaluatePixel (detected as a global
// write), with-free, var hoisting inside the function.
function setup() {
  return { input: ["B04"], output: { bands: 1, sampleType: "FLOAT32" } };
}

function evaluatePixel(s) {
  lastValue = s.B04 * 2;
  if (s.B04 > 0) {
    var doubled = lastValue;
  }
  return [doubled === undefined ? -1 : doubled];
}
