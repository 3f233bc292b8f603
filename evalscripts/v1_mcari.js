// MCARI
var mcari = ((B05 - B04) - 0.2 * (B05 - B03)) * (B05 / B04);
return [mcari * 5, mcari * 5, mcari * 5];
