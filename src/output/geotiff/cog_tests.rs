//! COG layout and predictors, checked by GDAL's own COG validator
//! (validate_cloud_optimized_geotiff.py from python3-gdal), `gdalinfo -json` and
//! `gdallocationinfo`, and by the tiff crate's decoder. GDAL checks skip with a message when
//! the tools are missing; the test runner installs gdal-bin and python3-gdal.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

use super::{encode_tiff, TiffOptions};
use crate::output::cog::{CogParams, Resampling};
use crate::output::OutputError;
use crate::raster::{Georef, Raster, SampleBuffer};

const VALIDATORS: [&str; 2] = [
    "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py",
    "/usr/share/doc/python3-gdal/examples/validate_cloud_optimized_geotiff.py",
];

fn validator() -> Option<PathBuf> {
    let found = VALIDATORS.iter().map(PathBuf::from).find(|p| p.exists());
    let gdal = Command::new("gdalinfo").arg("--version").output().is_ok();
    if found.is_none() || !gdal {
        println!("SKIPPED: GDAL's COG validator or gdalinfo not found; install python3-gdal");
        return None;
    }
    found
}

/// Runs GDAL's validator; the system python3 is the one python3-gdal installs into.
fn assert_valid_cog(script: &Path, file: &Path) {
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("is a valid cloud optimized GeoTIFF"),
        "validator: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("NOT a valid"), "{stdout}");
}

fn gdalinfo(file: &Path) -> Value {
    let out = Command::new("gdalinfo")
        .args(["-json", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// All band values at (x, y) of `overview` (None: full resolution). gdallocationinfo
/// takes full-resolution coordinates even with -overview, so overview pixel (x, y) of
/// (index, factor) is asked for as (x * factor, y * factor).
fn values_at(file: &Path, overview: Option<(usize, usize)>, x: usize, y: usize) -> Vec<f64> {
    let mut cmd = Command::new("gdallocationinfo");
    cmd.arg("-valonly");
    let (x, y) = match overview {
        Some((index, factor)) => {
            cmd.args(["-overview", &(index + 1).to_string()]);
            (x * factor, y * factor)
        }
        None => (x, y),
    };
    let out = cmd
        .arg(file)
        .args([x.to_string(), y.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(f64::NAN))
        .collect()
}

fn utm() -> Georef {
    Georef {
        epsg: 32633,
        x_min: 500_000.0,
        y_max: 5_100_000.0,
        res_x: 10.0,
        res_y: 10.0,
    }
}

fn rgb_value(band: usize, x: usize, y: usize) -> u8 {
    ((x * (band + 1) + y * 3) % 256) as u8
}

fn rgb(width: usize, height: usize) -> Raster {
    let data = (0..3)
        .flat_map(|b| (0..height).flat_map(move |y| (0..width).map(move |x| rgb_value(b, x, y))))
        .collect();
    Raster {
        width,
        height,
        bands: 3,
        data: SampleBuffer::U8(data),
    }
}

fn float_value(x: usize, y: usize) -> f32 {
    if (x + y) % 97 == 0 {
        f32::NAN
    } else {
        ((x as f32) * 0.01).sin() + (y as f32) * 0.001
    }
}

fn float(width: usize, height: usize) -> Raster {
    let data = (0..height)
        .flat_map(|y| (0..width).map(move |x| float_value(x, y)))
        .collect();
    Raster {
        width,
        height,
        bands: 1,
        data: SampleBuffer::F32(data),
    }
}

fn cog(params: CogParams) -> TiffOptions {
    TiffOptions {
        predictor: false,
        cog: Some(params),
        ..TiffOptions::default()
    }
}

#[test]
fn uint8_rgb_cog_with_overviews_passes_gdal_validation() {
    let Some(script) = validator() else { return };
    let (w, h) = (1000, 600);
    let params = CogParams {
        block_x: 256,
        block_y: 256,
        overview_min_size: Some(128),
        resampling: Resampling::Average,
        ..CogParams::default()
    };
    let bytes = encode_tiff(&rgb(w, h), &utm(), None, &cog(params)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rgb.tif");
    std::fs::write(&file, &bytes).unwrap();
    assert_valid_cog(&script, &file);

    let info = gdalinfo(&file);
    assert_eq!(info["size"], serde_json::json!([1000, 600]));
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"], "COG");
    assert_eq!(
        info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"],
        "DEFLATE"
    );
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["PREDICTOR"], "2");
    let bands = info["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 3);
    assert_eq!(bands[0]["block"], serde_json::json!([256, 256]));
    assert_eq!(bands[0]["type"], "Byte");
    let sizes: Vec<&Value> = bands[0]["overviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["size"])
        .collect();
    // 1000x600 halved until both sides fit 128: 500x300, 250x150, 125x75.
    assert_eq!(
        sizes,
        [
            &serde_json::json!([500, 300]),
            &serde_json::json!([250, 150]),
            &serde_json::json!([125, 75])
        ]
    );
    assert_eq!(
        info["geoTransform"],
        serde_json::json!([500000.0, 10.0, 0.0, 5100000.0, 0.0, -10.0])
    );
    for (x, y) in [(0, 0), (257, 3), (999, 599), (600, 300)] {
        let want: Vec<f64> = (0..3).map(|b| f64::from(rgb_value(b, x, y))).collect();
        assert_eq!(values_at(&file, None, x, y), want, "({x}, {y})");
    }
    // Overview 1 (factor 4), pixel (10, 7): mean of the 4x4 window, rounded.
    for band in 0..3 {
        let sum: u32 = (28..32)
            .flat_map(|y| (40..44).map(move |x| u32::from(rgb_value(band, x, y))))
            .sum();
        let want = (f64::from(sum) / 16.0).round();
        assert_eq!(
            values_at(&file, Some((1, 4)), 10, 7)[band],
            want,
            "band {band}"
        );
    }
}

#[test]
fn float32_cog_with_nan_uses_predictor_3_and_validates() {
    let Some(script) = validator() else { return };
    let (w, h) = (1100, 900);
    let params = CogParams {
        block_x: 512,
        block_y: 512,
        resampling: Resampling::Nearest,
        ..CogParams::default()
    };
    let bytes = encode_tiff(&float(w, h), &utm(), Some(f64::NAN), &cog(params)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.tif");
    std::fs::write(&file, &bytes).unwrap();
    assert_valid_cog(&script, &file);
    let info = gdalinfo(&file);
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["PREDICTOR"], "3");
    let band = &info["bands"][0];
    assert_eq!(band["type"], "Float32");
    assert_eq!(band["block"], serde_json::json!([512, 512]));
    assert!(band["noDataValue"].as_str() == Some("NaN") || band["noDataValue"].is_f64());
    // 1100 -> 550 -> 275 (fits 512): two overviews.
    assert_eq!(band["overviews"].as_array().unwrap().len(), 2);
    for (x, y) in [(0, 1), (513, 700), (1099, 899), (5, 92)] {
        let got = values_at(&file, None, x, y)[0];
        let want = f64::from(float_value(x, y));
        assert!(
            (got - want).abs() < 1e-6 || (got.is_nan() && want.is_nan()),
            "({x},{y}) {got} != {want}"
        );
    }
    // Nearest at factor 2 picks source (2x+1, 2y+1).
    let got = values_at(&file, Some((0, 2)), 300, 200)[0];
    assert!(
        (got - f64::from(float_value(601, 401))).abs() < 1e-6,
        "{got}"
    );
}

#[test]
fn plain_geotiff_predictors_round_trip_through_the_tiff_decoder() {
    let opts = TiffOptions {
        predictor: true,
        ..TiffOptions::default()
    };
    let (w, h) = (300, 270);
    let r = rgb(w, h);
    let bytes = encode_tiff(&r, &utm(), Some(0.0), &opts).unwrap();
    let mut dec = Decoder::new(Cursor::new(bytes.as_slice())).unwrap();
    assert_eq!(dec.get_tag_u32(Tag::Predictor).unwrap(), 2);
    let DecodingResult::U8(pixels) = dec.read_image().unwrap() else {
        panic!("u8 expected")
    };
    for (x, y) in [(0, 0), (299, 269), (256, 17)] {
        for b in 0..3 {
            assert_eq!(pixels[(y * w + x) * 3 + b], rgb_value(b, x, y));
        }
    }
    let f = float(w, h);
    let bytes = encode_tiff(&f, &utm(), None, &opts).unwrap();
    let mut dec = Decoder::new(Cursor::new(bytes.as_slice())).unwrap();
    assert_eq!(dec.get_tag_u32(Tag::Predictor).unwrap(), 3);
    let DecodingResult::F32(pixels) = dec.read_image().unwrap() else {
        panic!("f32 expected")
    };
    for (i, (&got, x, y)) in pixels
        .iter()
        .zip((0..h).flat_map(|y| (0..w).map(move |x| (x, y))))
        .map(|(g, (x, y))| (g, x, y))
        .enumerate()
    {
        let want = float_value(x, y);
        assert!(got == want || (got.is_nan() && want.is_nan()), "{i}");
    }
    // Predictors must also shrink smooth data.
    let without = encode_tiff(&f, &utm(), None, &TiffOptions::default()).unwrap();
    let with = encode_tiff(&f, &utm(), None, &opts).unwrap();
    assert!(
        with.len() < without.len(),
        "{} >= {}",
        with.len(),
        without.len()
    );
}

#[test]
fn int16_predictor_and_cog_without_overviews_read_back_with_gdal() {
    let Some(script) = validator() else { return };
    let (w, h) = (200, 130);
    let data: Vec<i16> = (0..w * h)
        .map(|i| (i as i16).wrapping_mul(7).wrapping_sub(3000))
        .collect();
    let r = Raster {
        width: w,
        height: h,
        bands: 1,
        data: SampleBuffer::I16(data.clone()),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("i16.tif");
    std::fs::write(
        &file,
        encode_tiff(&r, &utm(), Some(-32768.0), &cog(CogParams::default())).unwrap(),
    )
    .unwrap();
    assert_valid_cog(&script, &file);
    let info = gdalinfo(&file);
    assert_eq!(info["bands"][0]["type"], "Int16");
    assert_eq!(info["bands"][0]["noDataValue"], -32768.0);
    assert!(
        info["bands"][0]["overviews"].is_null()
            || info["bands"][0]["overviews"] == serde_json::json!([])
    );
    for (x, y) in [(0, 0), (199, 129), (50, 60)] {
        assert_eq!(
            values_at(&file, None, x, y),
            vec![f64::from(data[y * w + x])]
        );
    }
}

#[test]
fn int8_cannot_be_a_cog_and_bad_block_sizes_are_refused() {
    let r = Raster {
        width: 2,
        height: 2,
        bands: 1,
        data: SampleBuffer::I8(vec![1, 2, 3, 4]),
    };
    let err = encode_tiff(&r, &utm(), None, &cog(CogParams::default())).unwrap_err();
    assert!(
        matches!(err, OutputError::InvalidCog(ref m) if m.contains("INT8")),
        "{err}"
    );
    let bad = CogParams {
        block_x: 100,
        ..CogParams::default()
    };
    let err = encode_tiff(&rgb(4, 4), &utm(), None, &cog(bad)).unwrap_err();
    assert!(err.to_string().contains("multiple of 16"), "{err}");
}
