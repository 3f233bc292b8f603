//VERSION=3
// NDVI on a colour ramp built once, with dataMask as alpha
const ramp = new ColorRampVisualizer([[-0.2, 0x0000ff], [0, 0xffffff], [0.5, 0x00ff00]]);
function setup() {
  return { input: ["B04", "B08", "dataMask"], output: { bands: 4 } };
}
function evaluatePixel(samples) {
  let ndvi = index(samples.B08, samples.B04);
  return [...ramp.process(ndvi), samples.dataMask];
}
