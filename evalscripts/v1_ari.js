// Anthocyanin reflectance index
var ari = 1 / B03 - 1 / B05;
return colorBlend(ari, [0, 0.1, 0.2], [[1, 1, 1], [1, 0.5, 0.5], [0.6, 0, 0.6]]);
