//VERSION=3
// The samples object handed to helpers
function setup() {
  return { input: ["B02", "B03", "B04"], output: { bands: 3 } };
}
function brightness(sample) {
  return (sample.B04 + sample.B03 + sample.B02) / 3;
}
function gainFor(sample) {
  return brightness(sample) > 0.3 ? 1.5 : 3;
}
function evaluatePixel(sample) {
  let g = gainFor(sample);
  return [sample.B04 * g, sample.B03 * g, sample.B02 * g];
}
