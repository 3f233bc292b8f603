//VERSION=3
// TILE with preProcessScenes: drop tiles with 50 % cloud cover or more; first kept tile's
// B04 as UINT16 DN.
function setup() {
  return {
    input: ["B04"],
    output: { bands: 1, sampleType: "UINT16" },
    mosaicking: Mosaicking.TILE,
  };
}

function preProcessScenes(collections) {
  collections.scenes.tiles = collections.scenes.tiles.filter(function (tile) {
    return tile.cloudCoverage < 50;
  });
  return collections;
}

function evaluatePixel(samples) {
  if (samples.length === 0) return [0];
  return [samples[0].B04 * 10000];
}
