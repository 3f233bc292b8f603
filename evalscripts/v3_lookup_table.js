//VERSION=3
// A ten-step palette indexed at run time
const palette = [0, 0.1, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
function setup() {
  return { input: ["B04", "B08"], output: { bands: 1, sampleType: "FLOAT32" } };
}
function evaluatePixel(samples) {
  let ndvi = index(samples.B08, samples.B04);
  let k = Math.max(0, Math.min(9, Math.floor(ndvi * 10)));
  return [palette[k]];
}
