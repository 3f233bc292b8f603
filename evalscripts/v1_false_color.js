// False colour infrared
return [2.5 * B08, 2.5 * B04, 2.5 * B03];
