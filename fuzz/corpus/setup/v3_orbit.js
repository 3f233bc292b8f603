//VERSION=3
function setup() {
  return {input: [{bands: ["B02", "dataMask"], units: "DN"}], output: [{id: "a", bands: 2, sampleType: "UINT16"}, {id: "b", bands: 1}], mosaicking: "ORBIT"};
}
function evaluatePixel(samples) { return {a: [samples.length, 1], b: [0]}; }
