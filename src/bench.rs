//! `tessera bench`: throughput of the evalscript runtime and the engine's per-tile
//! overhead, measured on the bundled sample collection (no data or network needed), and
//! `tessera bench evalscript`: one script through every tier (boa, compiled, node) next
//! to a native Rust NDVI loop.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use tessera::benchkit::{best_rate, native_ndvi, node_rate, synthetic_band};
use tessera::engine::lifecycle::{Event, Status};
use tessera::evalscript::Program;
use tessera::raster::Georef;
use tessera::{Engine, EngineConfig};

use super::BenchCmd;

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Eval {
            script,
            pixels,
            blocks,
        } => eval(&script, pixels, blocks),
        BenchCmd::Evalscript { script, pixels } => evalscript_bench(&script, pixels),
        BenchCmd::Tiles {
            tiles,
            resolution,
            workers,
            processes,
        } => tiles_bench(tiles, resolution, workers, processes),
    }
}

fn eval(path: &std::path::Path, pixels: usize, blocks: usize) -> Result<()> {
    let source = tessera::evalscript::wasm::precompiled::read_evalscript_file(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut program = Program::compile(&source)?;
    let tier = match program.boa_reason() {
        None => "compiled tier".to_string(),
        Some(reason) => format!("boa, because {reason}"),
    };
    let bands = program.setup().input_bands.clone();
    let side = (pixels as f64).sqrt().ceil() as usize;
    let planes = tessera::data::read(&tessera::data::ReadRequest {
        collection: tessera::data::SYNTHETIC_COLLECTION,
        bands: &bands,
        georef: Georef {
            epsg: 32633,
            x_min: 500_000.0,
            y_max: 5_100_000.0,
            res_x: 10.0,
            res_y: 10.0,
        },
        width: side,
        height: side,
        day: 19_500,
    })?;
    let refs: Vec<&[f32]> = planes.iter().map(|p| &p[..pixels]).collect();
    program.evaluate(&refs, pixels)?;
    let started = Instant::now();
    for _ in 1..blocks.max(2) {
        program.evaluate(&refs, pixels)?;
    }
    let counted = (blocks.max(2) - 1) * pixels;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: {} px in {:.3} s = {:.0} px/s ({tier}, one thread)",
        path.display(),
        counted,
        secs,
        counted as f64 / secs
    );
    Ok(())
}

const TRIVIAL: &str = "//VERSION=3
function setup() { return {input: ['B04'], output: {bands: 1, sampleType: 'UINT8'}}; }
function evaluatePixel(s) { return [1]; }";

fn tiles_bench(tiles: u32, resolution: f64, workers: Option<usize>, processes: bool) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    let mut config = EngineConfig {
        db_path: dir.join("bench.db"),
        data_dir: dir.join("data"),
        ..EngineConfig::default()
    };
    if let Some(w) = workers {
        config.workers = w.max(1);
    }
    if processes {
        // As `tessera serve` runs tiles: in `tessera worker` child processes.
        config.worker_processes = Some(std::env::current_exe()?);
    }
    let workers = config.workers;
    // A square of about sqrt(N) x sqrt(N) 10 km cells inside UTM zone 33 at 46°N.
    let side_km = (tiles as f64).sqrt() * 10.0 - 5.0;
    let dlat = side_km / 111.2;
    let dlon = side_km / (111.2 * 46f64.to_radians().cos());
    let body = json!({
        "processRequest": {
            "input": {
                "bounds": {"bbox": [14.02, 45.52, 14.02 + dlon, 45.52 + dlat]},
                "data": [{"type": tessera::data::SYNTHETIC_COLLECTION}]
            },
            "evalscript": TRIVIAL,
        },
        "tilingGrid": {"id": 1, "resolution": resolution},
        "output": {"defaultTilePath": "out"}
    });
    let engine = Engine::start(config)?;
    let request = engine.create("bench", &body)?;
    engine.act("bench", &request.id, Event::Analyse)?;
    while engine.get("bench", &request.id)?.status == Status::Analysing {
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    engine.act("bench", &request.id, Event::Start)?;
    let progress = loop {
        let p = engine.progress("bench", &request.id)?;
        if matches!(
            p.status,
            Status::Done | Status::Partial | Status::Failed | Status::Canceled
        ) {
            break p;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let stats = engine.stats();
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    if progress.status != Status::Done {
        bail!("the bench request ended {}", progress.status.as_str());
    }
    let n = progress.tile_count as f64;
    let (w, h) = (
        (10_000.0 / resolution) as u64,
        (10_000.0 / resolution) as u64,
    );
    let how = if processes {
        "worker processes"
    } else {
        "worker threads"
    };
    println!("{n} tiles of {w}x{h} px, {workers} {how}, trivial evalscript");
    println!(
        "wall: {:.2} s = {:.3} s/tile ({:.3} s/tile/worker)",
        wall.as_secs_f64(),
        wall.as_secs_f64() / n,
        wall.as_secs_f64() * workers as f64 / n
    );
    let per = |d: Duration| d.as_secs_f64() / stats.tiles.max(1) as f64;
    println!(
        "per tile, in a worker: total {:.3} s = read {:.3} + evaluate {:.3} + encode {:.3} + write {:.3} (+ bookkeeping)",
        per(stats.total),
        per(stats.read),
        per(stats.evaluate),
        per(stats.encode),
        per(stats.write)
    );
    println!(
        "overhead outside the evalscript: {:.3} s/tile",
        stats.overhead_per_tile().as_secs_f64()
    );
    Ok(())
}

// ---- `tessera bench evalscript` ------------------------------------------------------

/// Minimum timed runs per tier; the best one counts (the first also warms caches).
const BENCH_RUNS: usize = 5;
/// boa runs about 1 M px/s: it is timed on at most this many pixels.
const BOA_MAX_PIXELS: usize = 1 << 16;

/// [`best_rate`] with this command's run count and error type.
fn bench_rate(pixels: usize, f: impl FnMut() -> Result<()>) -> Result<f64> {
    best_rate(pixels, BENCH_RUNS, f)
}

/// `tessera bench evalscript SCRIPT [--pixels N]`: px/s of the boa tier, the compiled
/// tier (raw f64 planes; formatted into reused buffers; through `Program::evaluate`, which
/// allocates its output buffers per call; and `Program::evaluate_into`, which reuses them:
/// the figure the ratios use), a native
/// Rust NDVI loop and node calling `evaluatePixel` per pixel, all on one core over the
/// same arrays, with the ratios.
pub fn evalscript_bench(path: &std::path::Path, pixels: usize) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tessera::evalscript::wasm::CompiledProgram;
    use tessera::evalscript::Program;

    let pixels = pixels.max(1);
    let source =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut program = Program::compile(&source)?;
    let setup = program.setup().clone();
    let planes: Vec<Vec<f32>> = setup
        .input_bands
        .iter()
        .enumerate()
        .map(|(k, b)| synthetic_band(b, k as u32 + 1, pixels))
        .collect();
    let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
    let mega = |r: f64| r / 1e6;
    println!(
        "{}: {pixels} px, one core, best of at least {BENCH_RUNS} runs",
        path.display()
    );

    // boa: the same script plus a top-level statement the compiler refuses.
    let mut boa = Program::compile(&format!("{source}\n;void 0;\n"))?;
    let boa_rate = if boa.boa_reason().is_some() {
        let n = pixels.min(BOA_MAX_PIXELS);
        let slice: Vec<&[f32]> = refs.iter().map(|p| &p[..n]).collect();
        let rate = bench_rate(n, || {
            boa.evaluate(&slice, n)?;
            Ok(())
        })?;
        println!(
            "  boa                     {:>10.2} M px/s ({n} px)",
            mega(rate)
        );
        Some(rate)
    } else {
        println!("  boa                     not measured (could not force the boa tier)");
        None
    };

    let compiled = match program.boa_reason() {
        Some(reason) => {
            println!("  compiled tier           not compilable: {reason}");
            None
        }
        None => {
            // The raw and formatted module figures are for V3 scripts (a V1 body is
            // compiled from its wrapper, inside Program).
            if program.format() == tessera::evalscript::ScriptFormat::V3 {
                let outputs: Vec<(String, usize)> = setup
                    .outputs
                    .iter()
                    .map(|o| (o.id.clone(), o.bands))
                    .collect();
                let mut raw =
                    CompiledProgram::compile_with_ids(&source, &setup.input_bands, &outputs)?;
                let mut out = Vec::new();
                let raw_rate =
                    bench_rate(pixels, || Ok(raw.evaluate_into(&refs, pixels, &mut out)?))?;
                let shape = if raw.is_simd() { "SIMD" } else { "scalar" };
                println!(
                    "  compiled, raw           {:>10.1} M px/s (f64 planes, {shape})",
                    mega(raw_rate)
                );
                let formatted: Vec<(String, usize, tessera::evalscript::SampleType)> = setup
                    .outputs
                    .iter()
                    .map(|o| (o.id.clone(), o.bands, o.sample_type))
                    .collect();
                let mut tier =
                    CompiledProgram::compile_formatted(&source, &setup.input_bands, &formatted)?;
                let mut buffers = Vec::new();
                let reused = bench_rate(pixels, || {
                    Ok(tier.evaluate_formatted_into(&refs, pixels, &setup.outputs, &mut buffers)?)
                })?;
                println!(
                    "  compiled, formatted     {:>10.1} M px/s (output buffers reused)",
                    mega(reused)
                );
            }
            let rate = bench_rate(pixels, || {
                program.evaluate(&refs, pixels)?;
                Ok(())
            })?;
            println!(
                "  compiled, Program       {:>10.1} M px/s (Program::evaluate: new buffers per call)",
                mega(rate)
            );
            let mut kept = Vec::new();
            let into = bench_rate(pixels, || {
                Ok(program.evaluate_into(&refs, pixels, &mut kept)?)
            })?;
            println!(
                "  compiled, Program into  {:>10.1} M px/s (Program::evaluate_into: buffers reused; the ratios use it)",
                mega(into)
            );
            Some(into)
        }
    };

    let b04 = synthetic_band("B04", 1, pixels);
    let b08 = synthetic_band("B08", 2, pixels);
    let mut out = vec![0.0; pixels];
    let native = bench_rate(pixels, || {
        native_ndvi(
            std::hint::black_box(&b04),
            std::hint::black_box(&b08),
            &mut out,
        );
        std::hint::black_box(&out);
        Ok(())
    })?;
    println!(
        "  native Rust NDVI        {:>10.1} M px/s (reference)",
        mega(native)
    );

    let node = match node_rate(path, &planes, pixels) {
        Ok(rate) => {
            println!("  node, per pixel         {:>10.1} M px/s", mega(rate));
            Some(rate)
        }
        Err(why) => {
            println!("  node                    skipped: {why}");
            None
        }
    };
    if let Some(c) = compiled {
        if let Some(b) = boa_rate {
            println!("  compiled / boa          {:>10.0}x", c / b);
        }
        println!("  compiled / native NDVI  {:>10.2}x", c / native);
        if let Some(n) = node {
            println!("  compiled / node         {:>10.2}x", c / n);
        }
    }
    if let (Some(b), Some(n)) = (boa_rate, node) {
        println!("  node / boa              {:>10.0}x", n / b);
    }
    Ok(())
}
