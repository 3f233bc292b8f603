// SAVI with the usual soil factor
let L = 0.5;
let savi = (B08 - B04) / (B08 + B04 + L) * (1.0 + L);
return colorBlend(savi, [0, 0.2, 0.4, 0.6], [[0.75, 0.75, 0.75], [0.8, 0.7, 0.4], [0.5, 0.8, 0.2], [0, 0.5, 0]]);
