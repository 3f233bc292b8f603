//VERSION=3
// Helpers declared inside evaluatePixel, closing over its variables
function setup() {
  return { input: ["B02", "B03", "B04"], output: { bands: 2, sampleType: "FLOAT32" } };
}
function evaluatePixel(samples) {
  const bands = [samples.B04, samples.B03, samples.B02];
  function mean() { return (bands[0] + bands[1] + bands[2]) / bands.length; }
  function spread() { return Math.max(...bands) - Math.min(...bands); }
  return [mean(), spread()];
}
