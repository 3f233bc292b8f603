// Normalized Burn Ratio
var nbr = index(B08, B12);
return colorBlend(nbr, [-0.5, 0, 0.5], [[0.8, 0.1, 0], [1, 1, 0.6], [0.1, 0.5, 0.1]]);
