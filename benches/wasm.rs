//! Evalscript throughput, one core, on the five-script set (NDVI FLOAT32; true colour
//! through HighlightCompressVisualizer; NDVI through colorBlend; NDWI with dataMask as a
//! second output; NDMI through ColorRampVisualizer): the compiled (wasm) tier, raw and
//! through `Program::evaluate` (formatting included), vs the boa tier vs node/V8 calling
//! the same `evaluatePixel` per pixel over the same arrays (benches/node_evalscript.js;
//! skipped with a message when node is missing), plus a native Rust NDVI loop.
//! Run: `cargo bench --bench wasm`. Prints pixels per second and ratios.

use std::hint::black_box;

use tessera::benchkit::{best_rate, native_ndvi, node_rate, synthetic_band};
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

/// Best of at least `RUNS` timings of `f`, as pixels per second.
fn rate(pixels: usize, mut f: impl FnMut()) -> f64 {
    best_rate(pixels, RUNS, || {
        f();
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {})
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
        .map(|(k, b)| synthetic_band(b, k as u32 + 1, PIXELS))
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
                let rate = rate(PIXELS, || {
                    black_box(raw.evaluate_into(&refs, PIXELS, &mut out).ok());
                    black_box(&out);
                });
                println!(
                    "  compiled, raw     {:>9.1} M px/s (f64 planes{})",
                    mega(rate),
                    if raw.is_simd() { ", SIMD" } else { ", scalar" }
                );
            }
            let rate = rate(PIXELS, || {
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
            let rate = rate(BOA_PIXELS, || {
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
    match node_rate(&path, &planes, PIXELS) {
        Ok(node) => {
            println!("  node (per pixel)  {:>9.1} M px/s", mega(node));
            if let Some(c) = compiled_rate {
                println!("  compiled / node   {:>9.2}", c / node);
            }
        }
        Err(why) => println!("  node              skipped: {why}"),
    }
}

fn main() {
    let b04 = synthetic_band("B04", 1, PIXELS);
    let b08 = synthetic_band("B08", 2, PIXELS);
    let mut out = vec![0.0; PIXELS];
    let native = rate(PIXELS, || {
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
