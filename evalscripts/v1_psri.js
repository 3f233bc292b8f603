// Plant senescence reflectance index
let psri = (B04 - B02) / B06;
return colorBlend(psri, [-0.2, 0, 0.2], [[0, 0.6, 0], [1, 1, 0.5], [0.8, 0.4, 0]]);
