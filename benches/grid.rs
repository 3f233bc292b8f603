//! Tiling throughput: all tiles (names, bounds and WGS84 footprints) of Europe, bbox
//! 25°W..45°E × 34°N..72°N, on grid 1 at 10 m and grid 0 at 20 m. Criterion's throughput
//! line reports tiles per second. Target (issue 3): grid 1 in under 2 s on one core.
//! Also: AOI validation (the self-intersection check, `grid::crossing`) of 100 000- and
//! 400 000-vertex polygons: a zigzag of long edges (what made the old x-sweep quadratic)
//! and a wavy circle. Target (issue 13): well under a second each.
//! Run: `cargo bench --bench grid`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Instant;
use tessera::grid::{tiles, Aoi, Polygon, TilingSpec};

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

/// A simple polygon of `n` vertices zigzagging between two longitudes over a 10° band.
fn zigzag(n: usize) -> Vec<[f64; 2]> {
    let dy = 10.0 / n as f64;
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| [10.0 + (i % 2) as f64, 40.0 + i as f64 * dy])
        .collect();
    let top = ring[n - 1][1];
    ring.push([9.0, top]);
    ring.push([9.0, 40.0]);
    ring.push(ring[0]);
    ring
}

/// A circle of radius ~1° with a small wave, `n` vertices.
fn wavy_circle(n: usize) -> Vec<[f64; 2]> {
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            let r = 1.0 + 0.01 * (a * 200.0).sin();
            [15.0 + r * a.cos(), 45.0 + r * a.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

fn aoi_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("aoi_validation");
    g.sample_size(10);
    for n in [100_000usize, 400_000] {
        for (shape, ring) in [("zigzag", zigzag(n)), ("wavy_circle", wavy_circle(n))] {
            let polygon = Polygon {
                exterior: ring,
                holes: vec![],
            };
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(format!("{shape}_{n}"), |b| {
                b.iter(|| Aoi::new(vec![polygon.clone()]).expect("simple polygon"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, europe, aoi_validation);
criterion_main!(benches);
