// Times the NDVI evalscript's evaluatePixel called once per pixel in node/V8, the way an
// evalscript runtime calls it, over arrays written by benches/wasm.rs.
// Usage: node benches/node_ndvi.js BANDS_FILE PIXELS   (B04 plane then B08 plane, f32 LE)
// Prints "px/s <rate>" for the best of 5 runs.
"use strict";
const fs = require("fs");

function evaluatePixel(samples) {
  return [(samples.B08 - samples.B04) / (samples.B08 + samples.B04)];
}

const [file, pixelsArg] = process.argv.slice(2);
const n = Number(pixelsArg);
const buf = fs.readFileSync(file);
const all = new Float32Array(buf.buffer, buf.byteOffset, 2 * n);
const b04 = all.subarray(0, n);
const b08 = all.subarray(n, 2 * n);
const out = new Float64Array(n);
const samples = { B04: 0, B08: 0 };

let best = Infinity;
for (let run = 0; run < 5; run++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    samples.B04 = b04[i];
    samples.B08 = b08[i];
    out[i] = evaluatePixel(samples)[0];
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  best = Math.min(best, seconds);
}
// Checksum so the work cannot be optimised away.
let sum = 0;
for (let i = 0; i < n; i += 4096) sum += out[i];
console.log(`checksum ${sum}`);
console.log(`px/s ${n / best}`);
