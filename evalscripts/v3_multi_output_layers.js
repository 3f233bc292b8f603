//VERSION=3
// EO Browser style: a picture, the index value, statistics and the data mask
function setup() {
  return {
    input: ["B04", "B08", "SCL", "dataMask"],
    output: [
      { id: "default", bands: 4 },
      { id: "index", bands: 1, sampleType: "FLOAT32" },
      { id: "eobrowserStats", bands: 2, sampleType: "FLOAT32" },
      { id: "dataMask", bands: 1 }
    ]
  };
}
const limits = [0, 0.5, 1];
const colours = [[1, 1, 1], [0.5, 0.8, 0.2], [0, 0.4, 0]];
function isCloud(scl) {
  return scl == 8 || scl == 9 || scl == 10;
}
function evaluatePixel(samples) {
  let val = index(samples.B08, samples.B04);
  let rgb = colorBlend(val, limits, colours);
  return {
    default: [...rgb, samples.dataMask],
    index: [val],
    eobrowserStats: [val, isCloud(samples.SCL) ? 1 : 0],
    dataMask: [samples.dataMask]
  };
}
