//VERSION=3
// valueMap on a class band: SCL 0..11 grouped into 1 (≤3), 2 (≤6), 3 (above), UINT8.
function setup() {
  return {
    input: [{ bands: ["SCL"], units: "DN" }],
    output: { bands: 1, sampleType: "UINT8" },
  };
}

function evaluatePixel(s) {
  return [valueMap(s.SCL, [3, 6], [1, 2, 3])];
}
