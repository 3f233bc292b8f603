//VERSION=3
// Burn severity classes from NBR
function setup() {
  return { input: ["B08", "B12"], output: { bands: 3 } };
}
const classes = [[0.1, 0.6, 0.1], [1, 1, 0.4], [1, 0.5, 0], [0.6, 0, 0]];
function classify(nbr) {
  if (nbr > 0.3) return 0;
  if (nbr > 0.1) return 1;
  if (nbr > -0.1) return 2;
  return 3;
}
function evaluatePixel(s) {
  let c = classify(index(s.B08, s.B12));
  return [[0.1, 1, 1, 0.6][c], [0.6, 1, 0.5, 0][c], [0.1, 0.4, 0, 0][c]];
}
