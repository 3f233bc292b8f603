//VERSION=3
// INT16 (mixed-case spelling) with negatives, plus an Int8 output via SampleType.INT8.
function setup() {
  return {
    input: ["B04", "B08"],
    output: [
      { id: "diff", bands: 1, sampleType: "Int16", nodataValue: -32768 },
      { id: "small", bands: 1, sampleType: SampleType.INT8 },
    ],
  };
}

function evaluatePixel(s) {
  return { diff: [(s.B04 - s.B08) * 10000], small: [(s.B04 - s.B08) * 1000] };
}
