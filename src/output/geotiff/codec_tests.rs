//! zstd tiles and the kernel overview resamplers, checked against GDAL: `gdalinfo -checksum`
//! of zstd against deflate files of the same pixels, and `gdaladdo -r <algorithm>` overviews
//! against ours. Skips with a message when GDAL is missing (tests/run_all.sh installs it).

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

use super::{encode_tiff, Compression, TiffOptions};
use crate::output::cog::{CogParams, Resampling};
use crate::output::OutputError;
use crate::raster::{Georef, Raster, SampleBuffer};

fn gdal() -> bool {
    let ok = ["gdalinfo", "gdaladdo", "gdal_translate"]
        .iter()
        .all(|tool| {
            Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !ok {
        println!("SKIPPED: gdalinfo/gdaladdo/gdal_translate not found; install gdal-bin");
    }
    ok
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn utm() -> Georef {
    Georef {
        epsg: 32632,
        x_min: 600_000.0,
        y_max: 5_000_000.0,
        res_x: 20.0,
        res_y: 20.0,
    }
}

fn u16_rgb(width: usize, height: usize) -> Raster {
    let data = (0..3)
        .flat_map(|b| {
            (0..height).flat_map(move |y| {
                (0..width).map(move |x| ((x * 7 + y * 13 + b * 1000) % 4096) as u16)
            })
        })
        .collect();
    Raster {
        width,
        height,
        bands: 3,
        data: SampleBuffer::U16(data),
    }
}

fn smooth_f32(width: usize, height: usize) -> Raster {
    let data = (0..height)
        .flat_map(|y| {
            (0..width).map(move |x| {
                let (x, y) = (x as f32, y as f32);
                (x * 0.21).sin() * 40.0 + (y * 0.13).cos() * 25.0 + x * 0.5
            })
        })
        .collect();
    Raster {
        width,
        height,
        bands: 1,
        data: SampleBuffer::F32(data),
    }
}

/// Per-band checksums as GDAL computes them from the decoded pixels.
fn checksums(file: &Path) -> Vec<i64> {
    let info: serde_json::Value = serde_json::from_str(&run(
        "gdalinfo",
        &["-json", "-checksum", file.to_str().unwrap()],
    ))
    .unwrap();
    info["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["checksum"].as_i64().unwrap())
        .collect()
}

fn compression_of(file: &Path) -> String {
    let info: serde_json::Value =
        serde_json::from_str(&run("gdalinfo", &["-json", file.to_str().unwrap()])).unwrap();
    info["metadata"][""]["COMPRESSION"]
        .as_str()
        .or_else(|| info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn compression_setting_parses() {
    assert_eq!(Compression::parse("deflate").unwrap(), Compression::Deflate);
    assert_eq!(
        Compression::parse(" ZSTD ").unwrap(),
        Compression::Zstd { level: 9 }
    );
    assert_eq!(
        Compression::parse("zstd:22").unwrap(),
        Compression::Zstd { level: 22 }
    );
    for bad in ["zstd:0", "zstd:23", "zstd:x", "lzw", "deflate:6", ""] {
        let err = Compression::parse(bad).unwrap_err();
        assert!(
            matches!(err, OutputError::InvalidOption(ref m) if m.contains("zstd:<level")),
            "{bad}: {err}"
        );
    }
    assert_eq!(TiffOptions::default().compression, Compression::Deflate);
}

#[test]
fn zstd_tiles_decode_to_the_source_pixels_with_both_predictors() {
    // The tiff crate's own zstd decoder (independent of our encoder) reads them back.
    let zstd = Compression::Zstd { level: 3 };
    for (raster, predictor_tag) in [(u16_rgb(300, 200), 2u32), (smooth_f32(300, 200), 3)] {
        let opts = TiffOptions {
            predictor: true,
            compression: zstd,
            ..TiffOptions::default()
        };
        let bytes = encode_tiff(&raster, &utm(), None, &opts).unwrap();
        let mut dec = Decoder::new(Cursor::new(bytes.as_slice())).unwrap();
        assert_eq!(dec.get_tag_u32(Tag::Compression).unwrap(), 50000);
        assert_eq!(dec.get_tag_u32(Tag::Predictor).unwrap(), predictor_tag);
        let interleaved = match dec.read_image().unwrap() {
            DecodingResult::U16(v) => v.iter().map(|&s| f64::from(s)).collect::<Vec<_>>(),
            DecodingResult::F32(v) => v.iter().map(|&s| f64::from(s)).collect(),
            other => panic!(
                "unexpected sample type {:?}",
                std::mem::discriminant(&other)
            ),
        };
        let plane = raster.width * raster.height;
        for (i, got) in interleaved.iter().enumerate() {
            let (pixel, band) = (i / raster.bands, i % raster.bands);
            let want = match &raster.data {
                SampleBuffer::U16(v) => f64::from(v[band * plane + pixel]),
                SampleBuffer::F32(v) => f64::from(v[band * plane + pixel]),
                _ => unreachable!(),
            };
            assert_eq!(*got, want, "sample {i}");
        }
    }
}

#[test]
fn gdal_reads_zstd_cogs_with_the_same_checksums_as_deflate() {
    if !gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let params = CogParams {
        block_x: 128,
        block_y: 128,
        overview_min_size: Some(64),
        ..CogParams::default()
    };
    for (name, raster) in [("u16", u16_rgb(500, 300)), ("f32", smooth_f32(500, 300))] {
        let mut sums = Vec::new();
        for compression in [Compression::Deflate, Compression::Zstd { level: 9 }] {
            let opts = TiffOptions {
                cog: Some(params.clone()),
                compression,
                ..TiffOptions::default()
            };
            let bytes = encode_tiff(&raster, &utm(), Some(0.0), &opts).unwrap();
            let file = dir.path().join(format!("{name}-{compression:?}.tif"));
            std::fs::write(&file, bytes).unwrap();
            let want = match compression {
                Compression::Deflate => "DEFLATE",
                Compression::Zstd { .. } => "ZSTD",
            };
            assert_eq!(compression_of(&file), want, "{name}");
            sums.push(checksums(&file));
        }
        assert_eq!(
            sums[0], sums[1],
            "{name}: zstd and deflate decode differently"
        );
        assert_eq!(sums[0].len(), raster.bands);
    }
}

/// All values of overview 0 of `file` in row-major order, as GDAL reads them.
fn overview_values(file: &Path, out: &Path) -> Vec<f64> {
    run(
        "gdal_translate",
        &[
            "-q",
            "-ovr",
            "0",
            "-of",
            "XYZ",
            file.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn kernel_overviews_match_gdaladdo() {
    if !gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (64, 48);
    let raster = smooth_f32(w, h);
    let plain = encode_tiff(&raster, &utm(), None, &TiffOptions::default()).unwrap();
    for (name, resampling) in [
        ("cubic", Resampling::Cubic),
        ("cubicspline", Resampling::CubicSpline),
        ("lanczos", Resampling::Lanczos),
        ("gauss", Resampling::Gauss),
        ("average", Resampling::Average),
    ] {
        for factor in [2u32, 4] {
            let ours = dir.path().join(format!("ours-{name}-{factor}.tif"));
            let opts = TiffOptions {
                cog: Some(CogParams {
                    overview_levels: Some(vec![factor]),
                    resampling,
                    block_x: 16,
                    block_y: 16,
                    ..CogParams::default()
                }),
                ..TiffOptions::default()
            };
            std::fs::write(&ours, encode_tiff(&raster, &utm(), None, &opts).unwrap()).unwrap();
            let theirs = dir.path().join(format!("gdal-{name}-{factor}.tif"));
            std::fs::write(&theirs, &plain).unwrap();
            run(
                "gdaladdo",
                &[
                    "-q",
                    "-r",
                    name,
                    theirs.to_str().unwrap(),
                    &factor.to_string(),
                ],
            );
            let a = overview_values(&ours, &dir.path().join("a.xyz"));
            let b = overview_values(&theirs, &dir.path().join("b.xyz"));
            assert_eq!(a.len(), (w / factor as usize) * (h / factor as usize));
            assert_eq!(a.len(), b.len());
            let (at, worst) = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .enumerate()
                .fold((0, 0.0f64), |m, (i, d)| if d > m.1 { (i, d) } else { m });
            // float32 sums in a different order: agree to ~1e-4 of values up to ~100.
            let ow = w / factor as usize;
            assert!(
                worst < 1e-3,
                "{name} x{factor}: worst difference {worst} at ({}, {}) of {ow}x{}: ours {} gdal {}",
                at % ow,
                at / ow,
                h / factor as usize,
                a[at],
                b[at]
            );
        }
    }
}
