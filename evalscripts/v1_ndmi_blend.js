// NDMI: moisture from dry (red) to wet (blue)
var ndmi = (B08 - B11) / (B08 + B11);
return colorBlend(ndmi, [-0.8, -0.24, 0, 0.24, 0.8],
  [[0.5, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]]);
