// EVI, as a single grey value
var evi = 2.5 * (B08 - B04) / (B08 + 6.0 * B04 - 7.5 * B02 + 1.0);
return [evi];
