//VERSION=3
// True colour with a 2.5x gain, as 8-bit (AUTO scales 0..1 to 0..255).
function setup() {
  return {
    input: ["B02", "B03", "B04"],
    output: { bands: 3 },
  };
}

function evaluatePixel(s) {
  return [2.5 * s.B04, 2.5 * s.B03, 2.5 * s.B02];
}
