// Geology composite with a shared stretch helper
function stretch(val, min, max) {
  return (val - min) / (max - min);
}
return [stretch(B12, 0, 0.4), stretch(B04, 0, 0.4), stretch(B02, 0, 0.4)];
