let gain = 2.5;
return [B04 * gain, B03 * gain, B02 * gain];
