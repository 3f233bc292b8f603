//VERSION=3
// ORBIT: the maximum NDVI over all orbits; -1 when there is no scene.
function setup() {
  return {
    input: [{ bands: ["B04", "B08"] }],
    output: { bands: 2, sampleType: "FLOAT32" },
    mosaicking: Mosaicking.ORBIT,
  };
}

function evaluatePixel(samples, scenes) {
  let best = -1;
  for (let i = 0; i < samples.length; i++) {
    const v = index(samples[i].B08, samples[i].B04);
    if (v > best) best = v;
  }
  return [best, scenes.orbits.length];
}
