//VERSION=3
// Scene classification colours with a switch
function setup() {
  return { input: ["SCL"], output: { bands: 3 } };
}
function evaluatePixel(samples) {
  switch (samples.SCL) {
    case 4: return [0, 0.63, 0];
    case 5: return [1, 0.9, 0.4];
    case 6: return [0, 0, 1];
    case 8:
    case 9: return [0.8, 0.8, 0.8];
    default: return [0, 0, 0];
  }
}
