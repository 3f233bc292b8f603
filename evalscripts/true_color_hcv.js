//VERSION=3
// True colour through HighlightCompressVisualizer (0..0.4 stretched, highlights compressed).
const viz = new HighlightCompressVisualizer(0, 0.4);

function setup() {
  return {
    input: ["B02", "B03", "B04"],
    output: { bands: 3, sampleType: SampleType.AUTO },
  };
}

function evaluatePixel(s) {
  return viz.processList([s.B04, s.B03, s.B02]);
}
