//! Evalscript throughput, one core, on the five-script set (NDVI FLOAT32; true colour
//! through HighlightCompressVisualizer; NDVI through colorBlend; NDWI with dataMask as a
//! second output; NDMI through ColorRampVisualizer): the compiled (wasm) tier, raw and
//! through `Program::evaluate` (formatting included), vs the boa tier vs node/V8 calling
//! the same `evaluatePixel` per pixel over the same arrays (benches/node_evalscript.js;
//! skipped with a message when node is missing), plus a native Rust NDVI loop.
//! Run: `cargo bench --bench wasm`. Prints pixels per second and ratios.

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use tessera::evalscript::wasm::CompiledProgram;
use tessera::evalscript::Program;

const PIXELS: usize = 1 << 20;
/// boa is ~1000x slower: time it on a slice.
const BOA_PIXELS: usize = 1 << 15;
const RUNS: usize = 7;
const SCRIPTS: [&str; 5] = [
    "ndvi.js",
    "true_color_hcv.js",
    "ndvi_colorblend.js",
    "ndwi_datamask.js",
    "ndmi_ramp.js",
];

/// Deterministic reflectance-like values in [0.02, 0.5); `dataMask` is 1.
fn band(name: &str, seed: u32, len: usize) -> Vec<f32> {
    if name == "dataMask" {
        return vec![1.0; len];
    }
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            0.02 + (state >> 8) as f32 / (1u32 << 24) as f32 * 0.48
        })
        .collect()
}

/// Best of `RUNS` timings of `f`, as pixels per second for `pixels` pixels.
fn best_rate(pixels: usize, mut f: impl FnMut()) -> f64 {
    // At least RUNS runs, more (up to 200) while under half a second: on a busy machine
    // the best of many short runs is the one that got a core to itself.
    let mut best = Duration::MAX;
    let begun = Instant::now();
    let mut runs = 0;
    while runs < RUNS || (runs < 200 && begun.elapsed().as_secs_f64() < 0.5) {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed());
        runs += 1;
    }
    pixels as f64 / best.as_secs_f64()
}

fn native_ndvi(b04: &[f32], b08: &[f32], out: &mut [f64]) {
    for ((o, r), n) in out.iter_mut().zip(b04).zip(b08) {
        let (r, n) = (f64::from(*r), f64::from(*n));
        *o = (n - r) / (n + r);
    }
}

/// Runs benches/node_evalscript.js on `script` over the same planes; `None` (with a
/// message) without node.
fn node_rate(script: &std::path::Path, planes: &[Vec<f32>]) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("tessera-node-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let data = dir.join("bands.f32");
    let mut bytes = Vec::with_capacity(planes.len() * PIXELS * 4);
    for v in planes.iter().flatten() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::File::create(&data).ok()?.write_all(&bytes).ok()?;
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("node")
        .arg(format!("{root}/benches/node_evalscript.js"))
        .arg(format!("{root}/src/evalscript/prelude.js"))
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
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("px/s "))
        .and_then(|v| v.trim().parse().ok())
}

fn mega(rate: f64) -> f64 {
    rate / 1e6
}

fn bench_script(name: &str, native: f64) {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = std::path::PathBuf::from(format!("{root}/evalscripts/{name}"));
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(err) => {
            println!("{name}: cannot read {} ({err})", path.display());
            return;
        }
    };
    let mut program = match Program::compile(&source) {
        Ok(p) => p,
        Err(err) => {
            println!("{name}: does not compile: {err}");
            return;
        }
    };
    let setup = program.setup().clone();
    let planes: Vec<Vec<f32>> = setup
        .input_bands
        .iter()
        .enumerate()
        .map(|(k, b)| band(b, k as u32 + 1, PIXELS))
        .collect();
    let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
    println!("{name}:");

    let mut compiled_rate = None;
    match program.boa_reason() {
        Some(reason) => println!("  compiled tier     not compilable: {reason}"),
        None => {
            let outputs: Vec<(String, usize)> = setup
                .outputs
                .iter()
                .map(|o| (o.id.clone(), o.bands))
                .collect();
            if let Ok(mut raw) =
                CompiledProgram::compile_with_ids(&source, &setup.input_bands, &outputs)
            {
                let mut out = Vec::new();
                let rate = best_rate(PIXELS, || {
                    black_box(raw.evaluate_into(&refs, PIXELS, &mut out).ok());
                    black_box(&out);
                });
                println!(
                    "  compiled, raw     {:>9.1} M px/s (f64 planes{})",
                    mega(rate),
                    if raw.is_simd() { ", SIMD" } else { ", scalar" }
                );
            }
            let rate = best_rate(PIXELS, || {
                black_box(program.evaluate(&refs, PIXELS).ok());
            });
            println!(
                "  compiled, Program {:>9.1} M px/s (formatted buffers)",
                mega(rate)
            );
            compiled_rate = Some(rate);
        }
    }

    if std::env::var_os("WASM_BENCH_COMPILED_ONLY").is_some() {
        return;
    }
    // The same script with a top-level statement the compiler refuses: boa runs it.
    let boa_source = format!("{source}\nvoid 0;\n");
    if let Ok(mut boa) = Program::compile(&boa_source) {
        if boa.boa_reason().is_some() {
            let slice: Vec<&[f32]> = refs.iter().map(|p| &p[..BOA_PIXELS]).collect();
            let rate = best_rate(BOA_PIXELS, || {
                black_box(boa.evaluate(&slice, BOA_PIXELS).ok());
            });
            println!("  boa               {:>9.2} M px/s", mega(rate));
            if let Some(c) = compiled_rate {
                println!("  compiled / boa    {:>9.0}", c / rate);
            }
        }
    }
    if name == "ndvi.js" {
        println!("  native Rust NDVI  {:>9.1} M px/s", mega(native));
        if let Some(c) = compiled_rate {
            println!("  compiled / native {:>9.2}", c / native);
        }
    }
    if let Some(node) = node_rate(&path, &planes) {
        println!("  node (per pixel)  {:>9.1} M px/s", mega(node));
        if let Some(c) = compiled_rate {
            println!("  compiled / node   {:>9.2}", c / node);
        }
    }
}

fn main() {
    let b04 = band("B04", 1, PIXELS);
    let b08 = band("B08", 2, PIXELS);
    let mut out = vec![0.0; PIXELS];
    let native = best_rate(PIXELS, || {
        native_ndvi(black_box(&b04), black_box(&b08), &mut out);
        black_box(&out);
    });
    println!("One core, best of at least {RUNS} runs, {PIXELS} px (boa: {BOA_PIXELS} px)");
    // WASM_BENCH_ONLY=ndvi picks scripts by substring.
    let only = std::env::var("WASM_BENCH_ONLY").unwrap_or_default();
    for name in SCRIPTS.iter().filter(|n| n.contains(only.as_str())) {
        bench_script(name, native);
    }
}
