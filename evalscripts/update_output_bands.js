//VERSION=3
// updateOutput: one output band per scene (a time series).
function setup() {
  return {
    input: ["B04"],
    output: { id: "series", bands: 1, sampleType: "FLOAT32" },
    mosaicking: "ORBIT",
  };
}

function updateOutput(outputs, collection) {
  outputs.series.bands = Math.max(1, collection.scenes.length);
}

function evaluatePixel(samples) {
  return { series: samples.map((s) => s.B04) };
}
