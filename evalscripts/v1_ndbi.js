// Built-up index
let ndbi = index(B11, B08);
if (ndbi > 0.1) return [1, 0, 0];
return [B04 * 2.5, B03 * 2.5, B02 * 2.5];
