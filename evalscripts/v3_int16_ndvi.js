//VERSION=3
// NDVI scaled to INT16
function setup() {
  return { input: ["B04", "B08"], output: { bands: 1, sampleType: "INT16" } };
}
function evaluatePixel(s) {
  let ndvi = (s.B08 - s.B04) / (s.B08 + s.B04);
  return [Math.round(ndvi * 10000)];
}
