//VERSION=3
// Legacy DefaultVisualizer with gain and gamma, FLOAT32 so the unclamped value shows.
var viz = new DefaultVisualizer(0, 0.5, 1, 0, 2);

function setup() {
  return { input: ["B04"], output: { bands: 1, sampleType: "FLOAT32" } };
}

function evaluatePixel(s) {
  return [viz.process(s.B04)];
}
