//VERSION=3
// Bands destructured in the parameter list
function setup() {
  return { input: ["B04", "B08", "dataMask"], output: { bands: 2, sampleType: "FLOAT32" } };
}
function evaluatePixel({ B04, B08, dataMask }) {
  return [(B08 - B04) / (B08 + B04), dataMask];
}
