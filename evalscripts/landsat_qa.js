//VERSION=3
// decodeL8C2Qa on QA_PIXEL: cloud flag and cloud confidence, UINT8.
function setup() {
  return {
    input: [{ bands: ["QA_PIXEL"], units: "DN" }],
    output: { bands: 2, sampleType: "UINT8" },
  };
}

function evaluatePixel(s) {
  const qa = decodeL8C2Qa(s.QA_PIXEL);
  return [qa.cloud, qa.cloudConfidence];
}
