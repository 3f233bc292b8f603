//VERSION=3
// NDVI through colorBlend: brown below 0, yellow at 0.3, green at 0.8.
function setup() {
  return {
    input: ["B04", "B08"],
    output: { bands: 3 },
  };
}

const limits = [0, 0.3, 0.8];
const colors = [[0.5, 0.25, 0], [1, 1, 0], [0, 0.5, 0]];

function evaluatePixel(s) {
  const ndvi = index(s.B08, s.B04);
  return colorBlend(ndvi, limits, colors);
}
