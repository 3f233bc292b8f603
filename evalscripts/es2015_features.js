//VERSION=3
// ES2015+: class, default parameters, spread, arrow functions, reduce, template strings.
class Scaler {
  constructor(factor = 2) {
    this.factor = factor;
  }
  apply(values) {
    return values.map((v) => v * this.factor);
  }
}
const scaler = new Scaler();

function setup() {
  return { input: ["B02", "B03", "B04"], output: { bands: 2, sampleType: "FLOAT32" } };
}

function evaluatePixel({ B02, B03, B04 }) {
  const scaled = scaler.apply([B02, B03, B04]);
  const total = scaled.reduce((a, b) => a + b, 0);
  const label = `${scaled.length}`;
  return [total, Math.max(...scaled) + Number(label)];
}
