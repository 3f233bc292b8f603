// Bare soil index with its own helpers
function bsi(swir, red, nir, blue) {
  return ((swir + red) - (nir + blue)) / ((swir + red) + (nir + blue));
}
var b = bsi(B11, B04, B08, B02);
return [2.5 * b, 2.5 * B08, 2.5 * B11];
