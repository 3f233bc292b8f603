//VERSION=3
// Outputs built dynamically in a loop (like interpolated_time_series).
const names = ["a", "b", "c"];

function setup() {
  const output = [];
  for (let i = 0; i < names.length; i++) {
    output.push({ id: names[i], bands: i + 1, sampleType: "FLOAT32" });
  }
  return { input: ["B04"], output: output };
}

function evaluatePixel(s) {
  const result = {};
  names.forEach((n, i) => {
    result[n] = new Array(i + 1).fill(s.B04 * (i + 1));
  });
  return result;
}
