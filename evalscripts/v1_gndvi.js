// Green NDVI, interpolated to a green ramp
var g = (B08 - B03) / (B08 + B03);
return [0, valueInterpolate(g, [0, 1], [0, 1]), 0];
