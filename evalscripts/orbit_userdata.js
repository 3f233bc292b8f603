//VERSION=3
// userData: updateOutputMetadata records the dates of the scenes used.
function setup() {
  return {
    input: ["B04"],
    output: { bands: 1, sampleType: "UINT8" },
    mosaicking: "ORBIT",
  };
}

function evaluatePixel(samples) {
  return [samples.length];
}

function updateOutputMetadata(scenes, inputMetadata, outputMetadata) {
  outputMetadata.userData = {
    dates: scenes.map(function (s) { return s.date.toISOString(); }),
    orbits: scenes.orbits.length,
  };
}
