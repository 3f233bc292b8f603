//VERSION=3
// NDVI classes from a helper that returns colours
function setup() {
  return { input: ["B04", "B08"], output: { bands: 3 } };
}
function classColour(v) {
  if (v < 0) return [0.05, 0.05, 0.05];
  if (v < 0.2) return [0.75, 0.75, 0.75];
  if (v < 0.5) return [0.6, 0.8, 0.3];
  return [0.1, 0.5, 0.1];
}
function evaluatePixel(sample) {
  return classColour((sample.B08 - sample.B04) / (sample.B08 + sample.B04));
}
