//VERSION=3
// NDMI (B8A, B11) through ColorRampVisualizer, dataMask as alpha.
const ramp = [
  [-0.8, 0x800000],
  [0, 0xffff00],
  [0.8, 0x0000ff],
];
const visualizer = new ColorRampVisualizer(ramp);

function setup() {
  return {
    input: ["B8A", "B11", "dataMask"],
    output: { bands: 4 },
  };
}

function evaluatePixel(samples) {
  const val = index(samples.B8A, samples.B11);
  return [...visualizer.process(val), samples.dataMask];
}
