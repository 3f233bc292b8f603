// Moisture stress index B11/B08
var msi = B11 / B08;
return [valueInterpolate(msi, [0, 3], [1, 0])];
