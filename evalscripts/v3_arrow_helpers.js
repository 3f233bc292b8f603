//VERSION=3
// Arrow-function helpers
const stretch = (v, lo, hi) => (v - lo) / (hi - lo);
const clip = (v) => Math.max(0, Math.min(1, v));
function setup() {
  return { input: ["B02", "B03", "B04"], output: { bands: 3, sampleType: "FLOAT32" } };
}
function evaluatePixel(s) {
  return [clip(stretch(s.B04, 0.05, 0.35)), clip(stretch(s.B03, 0.05, 0.35)), clip(stretch(s.B02, 0.05, 0.35))];
}
