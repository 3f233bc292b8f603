//! `tessera bench`: throughput of the evalscript runtime and the engine's per-tile
//! overhead, measured on the bundled sample collection (no data or network needed).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

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
        BenchCmd::Tiles {
            tiles,
            resolution,
            workers,
        } => tiles_bench(tiles, resolution, workers),
    }
}

fn eval(path: &std::path::Path, pixels: usize, blocks: usize) -> Result<()> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
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

fn tiles_bench(tiles: u32, resolution: f64, workers: Option<usize>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    let mut config = EngineConfig {
        db_path: dir.join("bench.db"),
        data_dir: dir.join("data"),
        ..EngineConfig::default()
    };
    if let Some(w) = workers {
        config.workers = w.max(1);
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
    println!("{n} tiles of {w}x{h} px, {workers} workers, trivial evalscript");
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
