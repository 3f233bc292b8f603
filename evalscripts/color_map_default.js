//VERSION=3
// ColorMapVisualizer.createDefaultColorMap on NDVI.
const viz = ColorMapVisualizer.createDefaultColorMap();

function setup() {
  return { input: ["B04", "B08"], output: { bands: 3 } };
}

function evaluatePixel(s) {
  return viz.process(index(s.B08, s.B04));
}
