// Carotenoid reflectance index 1, scaled
let cri = (1 / B02) - (1 / B03);
return [cri / 20];
