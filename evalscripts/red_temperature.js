//VERSION=3
// A ColorRampVisualizer preset (red temperature) over 0..0.5 of B04.
var viz = ColorRampVisualizer.createRedTemperature(0, 0.5);

function setup() {
  return { input: ["B04"], output: { bands: 3, sampleType: "uint8" } };
}

function evaluatePixel(s) {
  return viz.process(s.B04).map(function (c) { return c * 255; });
}
