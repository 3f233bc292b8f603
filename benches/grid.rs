//! Tiling throughput: all tiles (names, bounds and WGS84 footprints) of Europe, bbox
//! 25°W..45°E × 34°N..72°N, on grid 1 at 10 m and grid 0 at 20 m. Criterion's throughput
//! line reports tiles per second. Target (issue 3): grid 1 in under 2 s on one core.
//! Run: `cargo bench --bench grid`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Instant;
use tessera::grid::{tiles, Aoi, TilingSpec};

fn europe(c: &mut Criterion) {
    let aoi = Aoi::from_lonlat_bbox(-25.0, 34.0, 45.0, 72.0).expect("valid bbox");
    let mut g = c.benchmark_group("grid_europe");
    g.sample_size(10);
    for (name, spec) in [
        ("grid1_10m", TilingSpec::new(1, 10.0)),
        ("grid0_20m", TilingSpec::new(0, 20.0)),
    ] {
        // The first call also builds the per-grid S2 square index (once per process).
        let started = Instant::now();
        let count = tiles(&aoi, &spec).expect("tiles").len();
        println!(
            "{name}: {count} tiles, first call {:.3} s",
            started.elapsed().as_secs_f64()
        );
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(name, |b| b.iter(|| tiles(&aoi, &spec).expect("tiles")));
    }
    g.finish();
}

criterion_group!(benches, europe);
criterion_main!(benches);
