// Snow: NDSI over 0.42 in cyan, true colour elsewhere
var ndsi = (B03 - B11) / (B03 + B11);
function stretch(v) { return Math.min(1, 2.5 * v); }
if (ndsi > 0.42) {
  return [0, 0.8, 0.9];
}
return [stretch(B04), stretch(B03), stretch(B02)];
