//VERSION=3
// Reflectance as digital numbers
function setup() {
  return { input: ["B02", "B03", "B04", "B08"], output: { bands: 4, sampleType: "UINT16" } };
}
function evaluatePixel(sample) {
  return [sample.B02, sample.B03, sample.B04, sample.B08].map(v => v * 10000);
}
