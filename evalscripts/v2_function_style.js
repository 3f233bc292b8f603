// V1/V2 function style: setup(dss) with setInputComponents, samples as an array.
function setup(dss) {
  setInputComponents([dss.B02, dss.B03, dss.B04]);
  setOutputComponentCount(3);
}

function evaluatePixel(samples, scenes) {
  var s = samples[0];
  return [s.B04 * 2, s.B03 * 2, s.B02 * 2];
}
