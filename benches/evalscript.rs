//! Criterion benchmark of the boa evalscript tier over the five issue-4 scripts (one
//! core, one block of 65,536 pixels per iteration). Run: `cargo bench --bench evalscript`.
//! Pixels per second = elements/s in criterion's throughput line.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use tessera::evalscript::Program;

const PIXELS: usize = 65_536;

const SCRIPTS: &[(&str, &str)] = &[
    ("ndvi_float32", include_str!("../evalscripts/ndvi.js")),
    (
        "true_color_hcv",
        include_str!("../evalscripts/true_color_hcv.js"),
    ),
    (
        "ndvi_colorblend",
        include_str!("../evalscripts/ndvi_colorblend.js"),
    ),
    (
        "ndwi_datamask",
        include_str!("../evalscripts/ndwi_datamask.js"),
    ),
    (
        "ndmi_color_ramp",
        include_str!("../evalscripts/ndmi_ramp.js"),
    ),
];

/// Deterministic reflectance-like values in [0.02, 0.5) (dataMask is always 1).
fn band(name: &str, seed: u32) -> Vec<f32> {
    if name == "dataMask" {
        return vec![1.0; PIXELS];
    }
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..PIXELS)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            0.02 + (state >> 8) as f32 / (1u32 << 24) as f32 * 0.48
        })
        .collect()
}

fn scripts(c: &mut Criterion) {
    let mut group = c.benchmark_group("evalscript_boa");
    group.throughput(Throughput::Elements(PIXELS as u64));
    group.sample_size(10);
    for (name, source) in SCRIPTS {
        let mut program = match Program::compile(source) {
            Ok(p) => p,
            Err(err) => panic!("{name}: {err}"),
        };
        let planes: Vec<Vec<f32>> = program
            .setup()
            .input_bands
            .iter()
            .enumerate()
            .map(|(i, b)| band(b, i as u32 + 1))
            .collect();
        let refs: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
        group.bench_function(*name, |b| {
            b.iter(|| match program.evaluate(&refs, PIXELS) {
                Ok(out) => out,
                Err(err) => panic!("{name}: {err}"),
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scripts);
criterion_main!(benches);
