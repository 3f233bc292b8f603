//VERSION=3
function setup() {
  return {input: [{datasource: "s2", bands: ["B04"]}, {datasource: "l8", bands: ["B05"]}], output: {bands: 1}};
}
function evaluatePixel(s) { return [s.s2[0].B04]; }
