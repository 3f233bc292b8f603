//! NDVI throughput, one core: the compiled (wasm) tier vs the boa tier vs a native Rust
//! loop vs node/V8 calling the same `evaluatePixel` per pixel over the same arrays
//! (benches/node_ndvi.js; skipped with a message when node is missing).
//! Run: `cargo bench --bench wasm`. Prints pixels per second and ratios.

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use tessera::evalscript::wasm::CompiledProgram;
use tessera::evalscript::Program;

const PIXELS: usize = 1 << 20;
/// boa is ~1000x slower: time it on a slice.
const BOA_PIXELS: usize = 1 << 17;
const RUNS: usize = 5;

const NDVI: &str = r#"//VERSION=3
function setup() {
  return { input: ["B04", "B08"], output: { bands: 1, sampleType: "FLOAT32" } };
}
function evaluatePixel(samples) {
  return [(samples.B08 - samples.B04) / (samples.B08 + samples.B04)];
}
"#;

/// The same NDVI behind a `try` the compiler refuses, so `Program` runs it in boa.
const NDVI_BOA: &str = r#"//VERSION=3
function setup() {
  return { input: ["B04", "B08"], output: { bands: 1, sampleType: "FLOAT32" } };
}
function evaluatePixel(samples) {
  try { return [(samples.B08 - samples.B04) / (samples.B08 + samples.B04)]; } catch (e) { throw e; }
}
"#;

/// Deterministic reflectance-like values in [0.02, 0.5).
fn band(seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..PIXELS)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            0.02 + (state >> 8) as f32 / (1u32 << 24) as f32 * 0.48
        })
        .collect()
}

/// Best of `RUNS` timings of `f`, as pixels per second for `pixels` pixels.
fn best_rate(pixels: usize, mut f: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed());
    }
    pixels as f64 / best.as_secs_f64()
}

fn native_ndvi(b04: &[f32], b08: &[f32], out: &mut [f64]) {
    for ((o, r), n) in out.iter_mut().zip(b04).zip(b08) {
        let (r, n) = (f64::from(*r), f64::from(*n));
        *o = (n - r) / (n + r);
    }
}

/// Runs benches/node_ndvi.js over the same arrays; `None` (with a message) without node.
fn node_rate(b04: &[f32], b08: &[f32]) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("tessera-node-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let data = dir.join("bands.f32");
    let mut file = std::fs::File::create(&data).ok()?;
    for v in b04.iter().chain(b08) {
        file.write_all(&v.to_le_bytes()).ok()?;
    }
    drop(file);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node_ndvi.js");
    let output = Command::new("node")
        .arg(script)
        .arg(&data)
        .arg(PIXELS.to_string())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("node failed: {}", String::from_utf8_lossy(&o.stderr));
            return None;
        }
        Err(err) => {
            eprintln!("node not available ({err}): skipping the node comparison");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("px/s "))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    let b04 = band(1);
    let b08 = band(2);
    let bands: [&[f32]; 2] = [&b04, &b08];

    let mut out = vec![0.0; PIXELS];
    let native = best_rate(PIXELS, || {
        native_ndvi(black_box(&b04), black_box(&b08), &mut out);
        black_box(&out);
    });

    let names = vec!["B04".to_string(), "B08".to_string()];
    let mut compiled = match CompiledProgram::compile(NDVI, &names, &[1]) {
        Ok(c) => c,
        Err(err) => panic!("NDVI must compile: {err}"),
    };
    let mut planes = Vec::new();
    let wasm = best_rate(PIXELS, || {
        black_box(compiled.evaluate_into(&bands, PIXELS, &mut planes).ok());
        black_box(&planes);
    });

    let mut boa = match Program::compile(NDVI_BOA) {
        Ok(p) => p,
        Err(err) => panic!("NDVI must run in boa: {err}"),
    };
    assert!(
        boa.boa_reason().is_some(),
        "the try/catch variant must run in boa"
    );
    let boa_bands: [&[f32]; 2] = [&b04[..BOA_PIXELS], &b08[..BOA_PIXELS]];
    let boa_rate = best_rate(BOA_PIXELS, || {
        black_box(boa.evaluate(&boa_bands, BOA_PIXELS).ok());
    });

    let mega = |r: f64| r / 1e6;
    println!("NDVI, one core, best of {RUNS}:");
    println!("  native Rust loop  {:>9.1} M px/s", mega(native));
    println!("  compiled (wasm)   {:>9.1} M px/s", mega(wasm));
    println!("  boa               {:>9.2} M px/s", mega(boa_rate));
    println!("  wasm / native     {:>9.2}", wasm / native);
    println!("  wasm / boa        {:>9.0}", wasm / boa_rate);
    if let Some(node) = node_rate(&b04, &b08) {
        println!("  node (per pixel)  {:>9.1} M px/s", mega(node));
        println!("  wasm / node       {:>9.2}", wasm / node);
    }
}
