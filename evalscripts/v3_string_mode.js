//VERSION=3
// One script, several layers: the layer is picked by a constant string
const LAYER = "NDWI";
function setup() {
  return { input: ["B03", "B04", "B08"], output: { bands: 1, sampleType: "FLOAT32" } };
}
function evaluatePixel(s) {
  switch (LAYER) {
    case "NDVI": return [index(s.B08, s.B04)];
    case "NDWI": return [index(s.B03, s.B08)];
    default: return [0];
  }
}
