//VERSION=3 (auto-converted from 1)
// indexdb style: a VERSION=3 header on a V1 body, its own `index`, duplicated limits.
let index = (B11 - B08) / (B11 + B08);
let min = -0.5;
let max = 0.5;
let zero = 0.0;

return colorBlend(index, [min, min, zero, max], [
  [0, 0, 0],
  [1, 0, 0],
  [1, 1, 1],
  [0, 0, 1],
]);
