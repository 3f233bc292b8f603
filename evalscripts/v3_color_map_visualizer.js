//VERSION=3
// Discrete land-cover style colours with ColorMapVisualizer
const map = new ColorMapVisualizer([[0, 0x0000ff], [0.2, 0xffff00], [0.5, 0x00aa00]]);
function setup() {
  return { input: ["B04", "B08"], output: { bands: 3 } };
}
function evaluatePixel(samples) {
  return map.process(index(samples.B08, samples.B04));
}
