// NDWI (McFeeters), indexdb style: water blue, land white
let index = (B03 - B08) / (B03 + B08);
return colorBlend(index, [-1, 0, 1], [[1, 1, 1], [0, 0.5, 1], [0, 0, 0.5]]);
