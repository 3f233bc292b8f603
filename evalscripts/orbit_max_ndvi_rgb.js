//VERSION=3
// Greenest pixel: the true colour of the scene with the highest NDVI
function setup() {
  return { input: ["B02", "B03", "B04", "B08"], output: { bands: 4, sampleType: "FLOAT32" },
           mosaicking: "ORBIT" };
}
function evaluatePixel(samples) {
  let best = -1, k = -1;
  for (let i = 0; i < samples.length; i++) {
    let ndvi = (samples[i].B08 - samples[i].B04) / (samples[i].B08 + samples[i].B04);
    if (ndvi > best) { best = ndvi; k = i; }
  }
  if (k < 0) return [0, 0, 0, -1];
  let s = samples[k];
  return [2.5 * s.B04, 2.5 * s.B03, 2.5 * s.B02, best];
}
