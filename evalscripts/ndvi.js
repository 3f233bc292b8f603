//VERSION=3
// NDVI as FLOAT32: the classic vegetation index.
function setup() {
  return {
    input: [{ bands: ["B04", "B08", "dataMask"] }],
    output: [{ id: "default", bands: 1, sampleType: "FLOAT32" }],
  };
}

function evaluatePixel(s) {
  return [(s.B08 - s.B04) / (s.B08 + s.B04)];
}
