// Agriculture composite
var gain = 2.5;
return [B11 * gain, B08 * gain, B02 * gain];
