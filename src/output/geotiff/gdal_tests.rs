//! Validation against real GDAL (`gdalinfo`, `gdallocationinfo`): the reader our users use.
//! Skips with a message when GDAL is not installed; the test runner installs gdal-bin.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{encode, encode_geotiff};
use crate::raster::{Georef, Raster, SampleBuffer};

fn gdal_available() -> bool {
    match Command::new("gdalinfo").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ => {
            println!("SKIPPED: gdalinfo not found; install gdal-bin to run the GDAL checks");
            false
        }
    }
}

/// Runs a GDAL tool, failing the test on a non-zero exit or any warning on stderr.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{tool} {args:?} failed: {stderr}");
    assert!(stderr.trim().is_empty(), "{tool} {args:?} warned: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn gdalinfo(path: &Path) -> Value {
    let text = run("gdalinfo", &["-json", "-mm", path.to_str().unwrap()]);
    serde_json::from_str(&text).unwrap()
}

/// The EPSG code GDAL assigns to the whole CRS: the last `ID["EPSG",n]` of the WKT2 text.
fn epsg_of(info: &Value) -> u32 {
    let wkt = info["coordinateSystem"]["wkt"].as_str().unwrap();
    let at = wkt.rfind("ID[\"EPSG\",").expect("WKT names an EPSG id");
    let rest = &wkt[at + 10..];
    rest[..rest.find(']').unwrap()].parse().unwrap()
}

/// Values of all bands at pixel (x, y), as GDAL reads them.
fn values_at(path: &Path, x: usize, y: usize) -> Vec<f64> {
    let out = run(
        "gdallocationinfo",
        &[
            "-valonly",
            path.to_str().unwrap(),
            &x.to_string(),
            &y.to_string(),
        ],
    );
    out.lines().map(|l| l.trim().parse().unwrap()).collect()
}

fn geo_transform(info: &Value) -> Vec<f64> {
    info["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn band_types(info: &Value) -> Vec<&str> {
    info["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect()
}

#[test]
fn gdal_reads_crs_transform_size_types_nodata_and_values() {
    if !gdal_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // EPSG:32633, 2 bands u16, 300x270 (partial edge tiles), no nodata.
    let (w, h) = (300, 270);
    let value = |band: usize, x: usize, y: usize| (band * 30_000 + y * 100 + x) as u16;
    let mut data = Vec::new();
    for band in 0..2 {
        for y in 0..h {
            for x in 0..w {
                data.push(value(band, x, y));
            }
        }
    }
    let raster = Raster {
        width: w,
        height: h,
        bands: 2,
        data: SampleBuffer::U16(data),
    };
    let georef = Georef {
        epsg: 32633,
        x_min: 399_960.0,
        y_max: 5_100_000.0,
        res_x: 10.0,
        res_y: 10.0,
    };
    let path = dir.path().join("utm33.tif");
    std::fs::write(&path, encode_geotiff(&raster, &georef, None).unwrap()).unwrap();
    let info = gdalinfo(&path);
    assert_eq!(epsg_of(&info), 32633);
    assert_eq!(info["size"], serde_json::json!([300, 270]));
    assert_eq!(
        geo_transform(&info),
        vec![399_960.0, 10.0, 0.0, 5_100_000.0, 0.0, -10.0]
    );
    assert_eq!(band_types(&info), vec!["UInt16", "UInt16"]);
    assert!(info["bands"][0].get("noDataValue").is_none());
    assert_eq!(
        info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"],
        "DEFLATE"
    );
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["INTERLEAVE"], "PIXEL");
    assert_eq!(info["bands"][0]["block"], serde_json::json!([256, 256]));
    // min at (0,0); max at the last pixel: 269 * 100 + 299 (+ 30000 in band 2).
    assert_eq!(info["bands"][0]["computedMin"], 0.0);
    assert_eq!(info["bands"][0]["computedMax"], 27_199.0);
    assert_eq!(info["bands"][1]["computedMin"], 30_000.0);
    assert_eq!(info["bands"][1]["computedMax"], 57_199.0);
    assert_eq!(values_at(&path, 257, 260), vec![26_257.0, 56_257.0]);

    // EPSG:32733 (southern UTM), 1 band f32 with nodata.
    let raster = Raster {
        width: 3,
        height: 2,
        bands: 1,
        data: SampleBuffer::F32(vec![0.25, -1.5, -9999.0, 2.0e6, 7.0, -9999.0]),
    };
    let georef = Georef {
        epsg: 32733,
        x_min: 600_000.0,
        y_max: 8_000_000.0,
        res_x: 20.0,
        res_y: 20.0,
    };
    let path = dir.path().join("utm33s.tif");
    std::fs::write(
        &path,
        encode_geotiff(&raster, &georef, Some(-9999.0)).unwrap(),
    )
    .unwrap();
    let info = gdalinfo(&path);
    assert_eq!(epsg_of(&info), 32733);
    assert_eq!(info["size"], serde_json::json!([3, 2]));
    assert_eq!(
        geo_transform(&info),
        vec![600_000.0, 20.0, 0.0, 8_000_000.0, 0.0, -20.0]
    );
    assert_eq!(band_types(&info), vec!["Float32"]);
    assert_eq!(info["bands"][0]["noDataValue"], -9999.0);
    // Nodata pixels are excluded from min/max.
    assert_eq!(info["bands"][0]["computedMin"], -1.5);
    assert_eq!(info["bands"][0]["computedMax"], 2.0e6);
    assert_eq!(values_at(&path, 0, 0), vec![0.25]);

    // EPSG:4326, 3 bands u8 with nodata 0.
    let raster = Raster {
        width: 4,
        height: 2,
        bands: 3,
        data: SampleBuffer::U8((1..=24).collect()),
    };
    let georef = Georef {
        epsg: 4326,
        x_min: 14.0,
        y_max: 46.5,
        res_x: 0.25,
        res_y: 0.125,
    };
    let path = dir.path().join("wgs84.tif");
    std::fs::write(&path, encode_geotiff(&raster, &georef, Some(0.0)).unwrap()).unwrap();
    let info = gdalinfo(&path);
    assert_eq!(epsg_of(&info), 4326);
    assert_eq!(info["size"], serde_json::json!([4, 2]));
    assert_eq!(
        geo_transform(&info),
        vec![14.0, 0.25, 0.0, 46.5, 0.0, -0.125]
    );
    assert_eq!(band_types(&info), vec!["Byte", "Byte", "Byte"]);
    for band in 0..3 {
        assert_eq!(info["bands"][band]["noDataValue"], 0.0);
    }
    // Pixel (1, 1) is sample 5 of each 8-sample band: 6, 14, 22.
    assert_eq!(values_at(&path, 1, 1), vec![6.0, 14.0, 22.0]);
}

#[test]
fn gdal_reads_many_signed_bands_in_bigtiff_layout() {
    if !gdal_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (w, h, bands) = (5, 4, 13);
    let value = |band: usize, pixel: usize| band as i16 * -100 + pixel as i16;
    let data = (0..bands)
        .flat_map(|b| (0..w * h).map(move |p| value(b, p)))
        .collect();
    let raster = Raster {
        width: w,
        height: h,
        bands,
        data: SampleBuffer::I16(data),
    };
    let georef = Georef {
        epsg: 3035,
        x_min: 4_000_000.0,
        y_max: 3_000_000.0,
        res_x: 100.0,
        res_y: 100.0,
    };
    let path = dir.path().join("laea.tif");
    let bytes = encode(&raster, &georef, Some(-32768.0), true).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let info = gdalinfo(&path);
    assert_eq!(epsg_of(&info), 3035);
    assert_eq!(info["size"], serde_json::json!([5, 4]));
    assert_eq!(band_types(&info), vec!["Int16"; 13]);
    assert_eq!(info["bands"][12]["noDataValue"], -32768.0);
    // Pixel (3, 2) is index 13: band b holds -100 b + 13.
    let expected: Vec<f64> = (0..13).map(|b| f64::from(value(b, 13))).collect();
    assert_eq!(values_at(&path, 3, 2), expected);
}
