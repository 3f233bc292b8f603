//VERSION=3
// Cloudless mosaic: per-band median of the scenes whose SCL is not cloud or shadow
function setup() {
  return { input: ["B02", "B03", "B04", "SCL"], output: { bands: 3, sampleType: "FLOAT32" },
           mosaicking: "ORBIT" };
}
function isClear(scl) {
  return !(scl == 3 || scl == 8 || scl == 9 || scl == 10);
}
function median(values) {
  values.sort(function (a, b) { return a - b; });
  let m = Math.floor(values.length / 2);
  return values.length % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}
function evaluatePixel(samples) {
  let r = [], g = [], b = [];
  for (let i = 0; i < samples.length; i++) {
    if (!isClear(samples[i].SCL)) continue;
    r.push(samples[i].B04); g.push(samples[i].B03); b.push(samples[i].B02);
  }
  if (r.length == 0) return [0, 0, 0];
  return [median(r), median(g), median(b)];
}
