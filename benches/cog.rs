//! COG encoding throughput against GDAL on the same data in the same run.
//!
//! Run: `cargo bench --bench cog`. Encodes a 1000x1000x3 UINT8 and a 2004x2004x1 FLOAT32
//! tile as COG with the service's defaults (1024 blocks, average overviews, predictor,
//! deflate) and reports MB/s of raw pixels; then times GDAL's COG driver (deflate level 6,
//! predictor, 1024 blocks, average overviews: the same work) on the same pixels in-process
//! through python3-gdal, so process start-up is not counted. GDAL is skipped with a message
//! when `/usr/bin/python3 -c "import osgeo"` fails.
//!
//! A plain `harness = false` binary rather than criterion: the GDAL side runs in another
//! process, and what matters is the ratio measured under the same machine load.

use std::process::Command;
use std::time::{Duration, Instant};

use tessera::output::{encode_geotiff, encode_tiff, CogParams, TiffOptions};
use tessera::raster::{Georef, Raster, SampleBuffer};

const RUNS: usize = 7;

/// Smooth terrain-like data with pixel noise, so compression has realistic work.
fn noise(i: usize) -> u32 {
    let mut x = i as u32 ^ 0x9E37_79B9;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x
}

fn rgb_tile() -> Raster {
    let (w, h) = (1000, 1000);
    let data = (0..3)
        .flat_map(|b| {
            (0..w * h).map(move |i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let base = 120.0 + 60.0 * ((x * 0.01 + b as f32).sin() * (y * 0.013).cos());
                (base + (noise(i + b * w * h) % 9) as f32) as u8
            })
        })
        .collect();
    Raster {
        width: w,
        height: h,
        bands: 3,
        data: SampleBuffer::U8(data),
    }
}

fn float_tile() -> Raster {
    let n = 2004;
    let data = (0..n * n)
        .map(|i| {
            let (x, y) = ((i % n) as f32, (i / n) as f32);
            (x * 0.004).sin() * (y * 0.003).cos() * 0.8 + (noise(i) % 1000) as f32 * 1e-5
        })
        .collect();
    Raster {
        width: n,
        height: n,
        bands: 1,
        data: SampleBuffer::F32(data),
    }
}

fn georef() -> Georef {
    Georef {
        epsg: 32633,
        x_min: 500_000.0,
        y_max: 5_100_000.0,
        res_x: 10.0,
        res_y: 10.0,
    }
}

fn raw_bytes(r: &Raster) -> usize {
    r.width * r.height * r.bands * usize::from(r.data.bits() / 8)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median seconds of GDAL's COG driver over the pixels of `input` (a plain GeoTIFF), read
/// once into memory; and the size of its output.
fn gdal_seconds(input: &std::path::Path) -> Option<(f64, usize)> {
    let script = format!(
        r#"
import time
from osgeo import gdal
gdal.UseExceptions()
src = gdal.Translate('', '{input}', format='MEM')
opts = ['COMPRESS=DEFLATE', 'LEVEL=6', 'PREDICTOR=YES', 'BLOCKSIZE=1024',
        'OVERVIEW_RESAMPLING=AVERAGE', 'NUM_THREADS=1']
times = []
for _ in range({RUNS}):
    t = time.perf_counter()
    gdal.Translate('/vsimem/out.tif', src, format='COG', creationOptions=opts)
    times.append(time.perf_counter() - t)
size = gdal.VSIStatL('/vsimem/out.tif').size
times.sort()
print(times[len(times) // 2], size)
"#,
        input = input.display()
    );
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .ok()?;
    if !out.status.success() {
        println!(
            "GDAL skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn bench(name: &str, raster: &Raster) {
    let options = TiffOptions {
        predictor: true,
        cog: Some(CogParams::default()),
        ..TiffOptions::default()
    };
    let mb = raw_bytes(raster) as f64 / 1e6;
    let mut size = 0;
    let times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let bytes = encode_tiff(raster, &georef(), None, &options).expect("encodes");
            let elapsed = start.elapsed();
            size = bytes.len();
            elapsed
        })
        .collect();
    let ours = median(times).as_secs_f64();
    println!(
        "{name}: tessera COG {:.1} ms, {:.1} MB/s, {} bytes",
        ours * 1e3,
        mb / ours,
        size
    );
    let dir = std::env::temp_dir().join(format!("tessera-cog-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join(format!("{name}.tif"));
    std::fs::write(
        &input,
        encode_geotiff(raster, &georef(), None).expect("encodes"),
    )
    .expect("writes input");
    if let Some((gdal, gdal_size)) = gdal_seconds(&input) {
        println!(
            "{name}: GDAL COG    {:.1} ms, {:.1} MB/s, {} bytes; tessera/GDAL speed {:.2}x",
            gdal * 1e3,
            mb / gdal,
            gdal_size,
            gdal / ours
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: either way
    // the bench runs once, quickly enough for both.
    bench("rgb_1000x1000x3_u8", &rgb_tile());
    bench("float_2004x2004x1_f32", &float_tile());
}
