//VERSION=3
// The EO Browser pattern: default RGBA, index FLOAT32, eobrowserStats and dataMask.
const viz = ColorRampVisualizer.createWhiteGreen(0, 1);

function setup() {
  return {
    input: ["B04", "B08", "dataMask"],
    output: [
      { id: "default", bands: 4 },
      { id: "index", bands: 1, sampleType: "FLOAT32" },
      { id: "eobrowserStats", bands: 1, sampleType: "FLOAT32" },
      { id: "dataMask", bands: 1 },
    ],
  };
}

function evaluatePixel(samples) {
  let val = index(samples.B08, samples.B04);
  let imgVals = viz.process(val);
  return {
    default: imgVals.concat(samples.dataMask),
    index: [val],
    eobrowserStats: [val],
    dataMask: [samples.dataMask],
  };
}
