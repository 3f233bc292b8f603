// Water in blue over true colour, with the dataMask as alpha
let w = index(B03, B08);
if (w > 0) {
  return [0, 0, 1, dataMask];
}
return [B04 * 2.5, B03 * 2.5, B02 * 2.5, dataMask];
