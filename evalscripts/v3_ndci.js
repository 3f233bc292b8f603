//VERSION=3
// Normalised difference chlorophyll index for water bodies
const limits = [-0.2, 0, 0.2, 0.4];
const colours = [[0, 0, 0.5], [0, 0.5, 1], [0.5, 1, 0.5], [1, 0, 0]];
function setup() {
  return { input: ["B04", "B05", "dataMask"], output: { bands: 4 } };
}
function evaluatePixel(samples) {
  let ndci = (samples.B05 - samples.B04) / (samples.B05 + samples.B04);
  return [...colorBlend(ndci, limits, colours), samples.dataMask];
}
