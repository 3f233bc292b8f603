//! Criterion benchmarks of the per-tile kernels: evalscript evaluation in boa, the grid
//! tiling of a large area, and GeoTIFF encoding. Run: `cargo bench --bench kernels`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use tessera::evalscript::Program;
use tessera::grid::{Aoi, TilingSpec};
use tessera::raster::{Georef, Raster, SampleBuffer};

const NDVI: &str = include_str!("../evalscripts/ndvi.js");
const PIXELS: usize = 250_000;

fn evaluate(c: &mut Criterion) {
    let mut program = Program::compile(NDVI).expect("ndvi compiles");
    let b04: Vec<f32> = (0..PIXELS)
        .map(|i| 0.05 + (i % 97) as f32 * 0.001)
        .collect();
    let b08: Vec<f32> = (0..PIXELS).map(|i| 0.2 + (i % 89) as f32 * 0.002).collect();
    let mask = vec![1.0f32; PIXELS];
    let mut g = c.benchmark_group("evalscript");
    g.throughput(Throughput::Elements(PIXELS as u64));
    g.sample_size(10);
    g.bench_function("ndvi_boa_250k_px", |b| {
        b.iter(|| {
            program
                .evaluate(&[&b04, &b08, &mask], PIXELS)
                .expect("evaluates")
        })
    });
    g.finish();
}

fn tiling(c: &mut Criterion) {
    let aoi = Aoi::from_lonlat_bbox(10.0, 40.0, 20.0, 50.0).expect("a valid bbox");
    let spec = TilingSpec::new(1, 10.0);
    let mut g = c.benchmark_group("grid");
    g.sample_size(10);
    g.bench_function("grid1_tiles_10x10_degrees", |b| {
        b.iter(|| tessera::grid::tiles(&aoi, &spec).expect("tiles"))
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let raster = Raster {
        width: 1000,
        height: 1000,
        bands: 1,
        data: SampleBuffer::F32((0..1_000_000).map(|i| (i % 1000) as f32 / 1000.0).collect()),
    };
    let georef = Georef {
        epsg: 32633,
        x_min: 500_000.0,
        y_max: 5_100_000.0,
        res_x: 10.0,
        res_y: 10.0,
    };
    let mut g = c.benchmark_group("output");
    g.sample_size(10);
    g.bench_function("geotiff_f32_1000x1000", |b| {
        b.iter(|| tessera::output::encode_geotiff(&raster, &georef, None).expect("encodes"))
    });
    g.finish();
}

criterion_group!(benches, evaluate, tiling, encode);
criterion_main!(benches);
