// Times an evalscript's evaluatePixel called once per pixel in node/V8, the way a
// JavaScript evalscript runtime calls it, over band planes written by the Rust bench
// (benches/wasm.rs, `tessera bench evalscript`). The helper library is the one boa runs
// (src/evalscript/prelude.js), so helper-based scripts behave alike.
// Usage: node benches/node_evalscript.js PRELUDE SCRIPT BANDS_FILE PIXELS
//   BANDS_FILE: one f32 little-endian plane of PIXELS values per setup() input band,
//   in setup order. Prints "px/s <rate>" for the best run, and a checksum.
"use strict";
const fs = require("fs");
const vm = require("vm");

const [preludePath, scriptPath, file, pixelsArg] = process.argv.slice(2);
const n = Number(pixelsArg);
const prelude = fs.readFileSync(preludePath, "utf8");
const script = fs.readFileSync(scriptPath, "utf8");

// In this very context (a vm context's global is intercepted and slow), with the
// SampleType constants boa's runtime defines.
globalThis.SampleType = {
  AUTO: "AUTO", UINT8: "UINT8", UINT16: "UINT16", INT8: "INT8", INT16: "INT16", FLOAT32: "FLOAT32",
};
vm.runInThisContext(prelude + "\n" + script);
const setup = vm.runInThisContext("setup()");
const bandNames = [];
for (const item of [].concat(setup.input)) {
  if (typeof item === "string") bandNames.push(item);
  else for (const b of item.bands) bandNames.push(b);
}
const outputs = [].concat(setup.output).map((o) => ({ id: o.id || "default", bands: o.bands || 1 }));

// The per-pixel loop, generated so band and output names are literals (named property
// access, as a hand-written runtime would have).
const lines = [];
lines.push("(function (planes, outs, n) {");
lines.push("  const samples = {};");
bandNames.forEach((b, k) => lines.push(`  const p${k} = planes[${k}];`));
lines.push("  for (let i = 0; i < n; i++) {");
bandNames.forEach((b, k) => lines.push(`    samples[${JSON.stringify(b)}] = p${k}[i];`));
lines.push("    const r = evaluatePixel(samples);");
let plane = 0;
if (outputs.length === 1) {
  for (let b = 0; b < outputs[0].bands; b++) lines.push(`    outs[${plane++}][i] = r[${b}];`);
} else {
  for (const o of outputs) {
    lines.push(`    { const v = r[${JSON.stringify(o.id)}];`);
    for (let b = 0; b < o.bands; b++) lines.push(`      outs[${plane++}][i] = v[${b}];`);
    lines.push("    }");
  }
}
lines.push("  }");
lines.push("})");

const loop = vm.runInThisContext(lines.join("\n"));
const buf = fs.readFileSync(file);
const all = new Float32Array(buf.buffer, buf.byteOffset, bandNames.length * n);
const planes = bandNames.map((_, k) => all.subarray(k * n, (k + 1) * n));
const outs = [];
for (let j = 0; j < plane; j++) outs.push(new Float64Array(n));

// At least 5 runs, more (up to 200) while under a second: on a busy machine the best of
// many runs is the one that got a core to itself (the Rust side does the same).
let best = Infinity;
const begun = process.hrtime.bigint();
for (let run = 0; run < 200; run++) {
  const start = process.hrtime.bigint();
  loop(planes, outs, n);
  const end = process.hrtime.bigint();
  best = Math.min(best, Number(end - start) / 1e9);
  if (run >= 4 && Number(end - begun) / 1e9 > 1) break;
}
// Checksum so the work cannot be optimised away.
let sum = 0;
for (const o of outs) for (let i = 0; i < n; i += 4096) sum += o[i];
console.log(`checksum ${sum}`);
console.log(`px/s ${n / best}`);
