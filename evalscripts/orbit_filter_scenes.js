//VERSION=3
// Legacy filterScenes: keep only scenes from May onwards (Date objects, getUTCMonth).
function setup() {
  return {
    input: ["B04"],
    output: { bands: 2, sampleType: "FLOAT32" },
    mosaicking: "ORBIT",
  };
}

function filterScenes(scenes, inputMetadata) {
  return scenes.filter(function (scene) {
    return scene.date.getUTCMonth() >= 4;
  });
}

function evaluatePixel(samples, scenes) {
  var sum = 0;
  for (var i = 0; i < samples.length; i++) sum += samples[i].B04;
  return [samples.length, samples.length ? sum / samples.length : 0];
}
