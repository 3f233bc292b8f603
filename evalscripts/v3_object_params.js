//VERSION=3
// Stretch parameters in a constant object
const params = { min: 0.0, max: 0.4, gamma: 1.0 };
function setup() {
  return { input: ["B02", "B03", "B04"], output: { bands: 3, sampleType: "FLOAT32" } };
}
function stretch(v) {
  return Math.min(1, Math.max(0, (v - params.min) / (params.max - params.min)));
}
function evaluatePixel(s) {
  return [stretch(s.B04), stretch(s.B03), stretch(s.B02)];
}
