//VERSION=3
// Highlight-optimised true colour: highlights compressed, not clipped
const hcv = new HighlightCompressVisualizer(0, 0.4);
function setup() {
  return { input: ["B02", "B03", "B04", "dataMask"], output: { bands: 4 } };
}
function evaluatePixel(s) {
  return [...hcv.processList([s.B04, s.B03, s.B02]), s.dataMask];
}
