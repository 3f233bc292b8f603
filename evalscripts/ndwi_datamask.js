//VERSION=3
// NDWI as FLOAT32 with dataMask as a second output.
function setup() {
  return {
    input: [{ bands: ["B03", "B08", "dataMask"], units: "REFLECTANCE" }],
    output: [
      { id: "default", bands: 1, sampleType: "FLOAT32" },
      { id: "dataMask", bands: 1 },
    ],
  };
}

function evaluatePixel(s) {
  return {
    default: [(s.B03 - s.B08) / (s.B03 + s.B08)],
    dataMask: [s.dataMask],
  };
}
