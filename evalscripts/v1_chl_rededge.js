// Chlorophyll red-edge
var chl = Math.pow(B07 / B05, -1.0);
return [chl / 2];
