//VERSION=3
// The most recent scene without clouds (CLM = 0), with an early exit
function setup() {
  return { input: ["B02", "B03", "B04", "CLM"], output: { bands: 3, sampleType: "FLOAT32" },
           mosaicking: "ORBIT" };
}
function evaluatePixel(samples) {
  for (let i = 0; i < samples.length; i++) {
    if (samples[i].CLM == 0) {
      return [samples[i].B04 * 2.5, samples[i].B03 * 2.5, samples[i].B02 * 2.5];
    }
  }
  return [1, 1, 1];
}
