//VERSION=3
// Entry points as top-level const arrow functions; a var used before its declaration.
const setup = () => ({
  input: ["B04", "B08"],
  output: { bands: 1, sampleType: "FLOAT32" },
});

const evaluatePixel = (s) => [scale * (s.B08 - s.B04)];

var scale = 10;
