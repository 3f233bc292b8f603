//VERSION=3
// Mean NDVI over the valid observations
function setup() {
  return { input: ["B04", "B08", "dataMask"], output: { bands: 2, sampleType: "FLOAT32" },
           mosaicking: "ORBIT" };
}
function evaluatePixel(samples) {
  let sum = 0, n = 0;
  for (const s of samples) {
    if (s.dataMask == 0) continue;
    sum += (s.B08 - s.B04) / (s.B08 + s.B04);
    n++;
  }
  return n > 0 ? [sum / n, n] : [NaN, 0];
}
