//! Reading the bundled fixtures: exact values, windows, mosaics, errors, and a two-zone
//! mosaic compared with gdalwarp.

use super::*;
use crate::raster::cog::Cog;

fn fixture(rel: &str) -> String {
    format!("{}/{rel}", sample_dir())
}

fn bands(b: &[&str]) -> Vec<String> {
    b.iter().map(|s| s.to_string()).collect()
}

#[derive(serde::Deserialize)]
struct Probe {
    file: String,
    col: u32,
    row: u32,
    value: f32,
}

/// Every probe the generator recorded (from its own formulas) reads back exactly.
#[test]
fn fixture_pixels_match_the_generator() {
    let probes: Vec<Probe> =
        serde_json::from_str(&std::fs::read_to_string(fixture("probes.json")).unwrap()).unwrap();
    assert!(probes.len() > 400);
    for p in &probes {
        let mut cog = Cog::open_path(&fixture(&p.file)).unwrap();
        let w = cog.read_window(0, p.col, p.row, 1, 1).unwrap();
        let got = w.data[0];
        if p.value == 0.0 {
            assert!(
                got.is_nan(),
                "{} ({},{}) is nodata, got {got}",
                p.file,
                p.col,
                p.row
            );
        } else {
            assert_eq!(got, p.value, "{} ({},{})", p.file, p.col, p.row);
        }
    }
}

#[test]
fn geokeys_overviews_and_partial_reads() {
    let mut cog = Cog::open_path(&fixture("S2SAMPLE_C_20230610/B04.tif")).unwrap();
    assert_eq!(cog.georef.epsg, 32632);
    assert_eq!(
        (cog.georef.x_min, cog.georef.y_max, cog.georef.res_x),
        (730000.0, 5100000.0, 10.0)
    );
    assert_eq!(cog.nodata, Some(0.0));
    let widths: Vec<u32> = cog.levels.iter().map(|l| l.width).collect();
    assert_eq!(widths, [300, 150, 75]);
    assert_eq!(cog.level_for(10.0), 0);
    assert_eq!(cog.level_for(20.0), 1);
    assert_eq!(cog.level_for(60.0), 2);
    let file_len = std::fs::metadata(fixture("S2SAMPLE_C_20230610/B04.tif"))
        .unwrap()
        .len();
    let before = cog.bytes_fetched();
    let w = cog.read_window(0, 250, 250, 10, 10).unwrap();
    assert_eq!(w.data.len(), 100);
    assert!(
        cog.bytes_fetched() - before < file_len / 2,
        "a 10x10 window must not read the file"
    );
}

/// SCL at the tile pixel equals the file pixel (same zone, same 20 m grid, NEAREST).
#[test]
fn same_grid_read_is_exact_in_dn() {
    let b = bands(&["B05", "SCL", "dataMask"]);
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &b,
        georef: Georef {
            epsg: 32633,
            x_min: 500000.0,
            y_max: 5097000.0,
            res_x: 20.0,
            res_y: 20.0,
        },
        width: 150,
        height: 150,
        day: day_of("2023-06-05T23:00:00Z").unwrap(),
    };
    let f = Filter {
        to_day: Some(req.day),
        units: Units::Dn,
        ..Filter::default()
    };
    let planes = read_simple(&req, &f).unwrap();
    let mut cog = Cog::open_path(&fixture("S2SAMPLE_A_20230605/B05.tif")).unwrap();
    let full = cog.read_window(0, 0, 0, 150, 150).unwrap();
    assert_eq!(planes[0], full.data);
    assert!(planes[2].iter().all(|&m| m == 1.0));
    // Reflectance is DN / 10000.
    let f = Filter {
        units: Units::Reflectance,
        ..f
    };
    let refl = read_simple(&req, &f).unwrap();
    assert!((refl[0][77] - full.data[77] * 1e-4).abs() < 1e-7);
    // SCL keeps class codes in both units.
    assert!(refl[1]
        .iter()
        .all(|v| [4.0, 5.0, 6.0, 8.0, 9.0].contains(v)));
}

#[test]
fn mosaicking_order_picks_the_right_scene() {
    let b = bands(&["B04"]);
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &b,
        georef: Georef {
            epsg: 32633,
            x_min: 500000.0,
            y_max: 5097000.0,
            res_x: 10.0,
            res_y: 10.0,
        },
        width: 10,
        height: 10,
        day: 0,
    };
    let base = Filter {
        units: Units::Dn,
        ..Filter::default()
    };
    let first = |order| {
        let s = read_scenes(
            &req,
            &Filter {
                order,
                ..base.clone()
            },
        )
        .unwrap();
        s.iter().map(|s| s.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(first(MosaickingOrder::MostRecent)[0], "S2SAMPLE_A_20230625");
    assert_eq!(
        first(MosaickingOrder::LeastRecent)[0],
        "S2SAMPLE_A_20230605"
    );
    let cat = sample_catalog().unwrap();
    let a: Vec<&Item> = cat
        .iter()
        .filter(|i| i.id.starts_with("S2SAMPLE_A"))
        .collect();
    let least = a
        .iter()
        .min_by(|x, y| {
            x.cloud_cover
                .total_cmp(&y.cloud_cover)
                .then(x.id.cmp(&y.id))
        })
        .unwrap();
    assert_eq!(first(MosaickingOrder::LeastCC)[0], least.id);
    let mostrecent = read_simple(&req, &base).unwrap();
    let mut cog = Cog::open_path(&fixture("S2SAMPLE_A_20230625/B04.tif")).unwrap();
    assert_eq!(
        mostrecent[0],
        cog.read_window(0, 0, 0, 10, 10).unwrap().data
    );
}

#[test]
fn outside_every_scene_is_no_data() {
    let b = bands(&["B04", "dataMask"]);
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &b,
        georef: Georef {
            epsg: 32633,
            x_min: 600000.0,
            y_max: 5097000.0,
            res_x: 10.0,
            res_y: 10.0,
        },
        width: 20,
        height: 20,
        day: 20000,
    };
    let planes = read(&req).unwrap();
    assert!(planes.iter().all(|p| p.iter().all(|&v| v == 0.0)));
}

#[test]
fn unknown_band_and_collection_are_rejected() {
    let err = check_bands(SAMPLE_COLLECTION, &bands(&["B10"])).unwrap_err();
    assert!(err.to_string().contains("B10"));
    assert!(check_bands("sentinel-2-l2a", &bands(&["B04"])).is_err());
    assert!(check_bands(SYNTHETIC_COLLECTION, &bands(&["B04", "dataMask"])).is_ok());
}

#[test]
fn corrupt_file_fails_with_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("S2SAMPLE_A_20230605/B04.tif")).unwrap();
    // Keep the IFDs, garble the tile data.
    let mut bad = good.clone();
    for b in bad.iter_mut().skip(2000) {
        *b = 0x5a;
    }
    let p = dir.path().join("bad.tif");
    std::fs::write(&p, &bad).unwrap();
    let mut cog = Cog::open_path(p.to_str().unwrap()).unwrap();
    let err = cog.read_window(0, 0, 0, 300, 300).unwrap_err().to_string();
    assert!(err.contains("bad.tif"), "{err}");
    let err = Cog::open_path("/nonexistent/x.tif")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/nonexistent/x.tif") && err.contains("No such file"),
        "{err}"
    );
    // Through the collection: a catalog pointing at the bad file names it.
    let mut item = sample_catalog().unwrap()[0].clone();
    item.assets = vec![("B04".into(), p.to_str().unwrap().to_string())];
    item.bbox = [-180.0, -90.0, 180.0, 90.0];
    let b = bands(&["B04"]);
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &b,
        georef: Georef {
            epsg: 32633,
            x_min: 500000.0,
            y_max: 5097000.0,
            res_x: 10.0,
            res_y: 10.0,
        },
        width: 50,
        height: 50,
        day: 0,
    };
    let err = read_items(&[item], &req, &Filter::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.tif"), "{err}");
}

/// A zone-33 tile across the 12 E boundary, mosaicking a zone-32 scene (C, first by
/// leastRecent... both dated the same: id order) and a zone-33 scene (D), against gdalwarp
/// on the same files. Skipped (with a message) where gdalwarp is missing.
#[test]
fn two_zone_mosaic_matches_gdalwarp() {
    if std::process::Command::new("gdalwarp")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("gdalwarp not installed; skipping");
        return;
    }
    let (x0, y0, w, h, res) = (265000.0, 5099500.0, 300usize, 250usize, 10.0);
    let b = bands(&["B08", "dataMask"]);
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &b,
        georef: Georef {
            epsg: 32633,
            x_min: x0,
            y_max: y0,
            res_x: res,
            res_y: res,
        },
        width: w,
        height: h,
        day: 0,
    };
    for (method, gdal) in [
        (Resampling::Nearest, "near"),
        (Resampling::Bilinear, "bilinear"),
        (Resampling::Bicubic, "cubic"),
    ] {
        let f = Filter {
            from_day: day_of("2023-06-10T00:00:00Z"),
            to_day: day_of("2023-06-10T23:59:59Z"),
            units: Units::Dn,
            upsampling: method,
            downsampling: method,
            ..Filter::default()
        };
        let scenes = read_scenes(&req, &f).unwrap();
        let ids: Vec<&str> = scenes.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["S2SAMPLE_C_20230610", "S2SAMPLE_D_20230610"]);
        let ours = mosaic(&scenes, &b, w * h);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gdal.tif");
        // gdalwarp paints later inputs over earlier ones: give the winner (C) last.
        let status = std::process::Command::new("gdalwarp")
            .args([
                "-q",
                "-t_srs",
                "EPSG:32633",
                "-r",
                gdal,
                "-dstnodata",
                "0",
                "-ot",
                "Float32",
            ])
            .args(["-te", &x0.to_string(), &(y0 - h as f64 * res).to_string()])
            .args([
                &(x0 + w as f64 * res).to_string(),
                &y0.to_string(),
                "-tr",
                "10",
                "10",
            ])
            .arg(fixture("S2SAMPLE_D_20230610/B08.tif"))
            .arg(fixture("S2SAMPLE_C_20230610/B08.tif"))
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let mut g = Cog::open_path(out.to_str().unwrap()).unwrap();
        let theirs = g.read_window(0, 0, 0, w as u32, h as u32).unwrap().data;
        let (mut both, mut close, mut mask_diff) = (0usize, 0usize, 0usize);
        for i in 0..w * h {
            let t = if theirs[i].is_nan() { 0.0 } else { theirs[i] };
            let ours_valid = ours[1][i] == 1.0;
            if ours_valid != (t != 0.0) {
                mask_diff += 1;
                continue;
            }
            if ours_valid {
                both += 1;
                // One resampling step: within the value range of the 2x2 source pixels,
                // approximated by 5% or 60 DN.
                if (ours[0][i] - t).abs() <= (0.05 * t).max(60.0) {
                    close += 1;
                }
            }
        }
        let exact = (0..w * h)
            .filter(|&i| ours[1][i] == 1.0 && ours[0][i] == theirs[i])
            .count();
        // Away from no-data and raster edges (2 px, the cubic kernel's reach; C's raster
        // ends on the tile's last row): there GDAL and we treat missing neighbours
        // differently (we renormalise the weights, or repeat the edge pixel).
        let c_mask = &scenes[0].mask;
        let interior = |i: usize| {
            let (x, y) = (i % w, i / w);
            (2..h - 2).contains(&y)
                && (2..w - 2).contains(&x)
                && (y.saturating_sub(2)..(y + 3).min(h)).all(|yy| {
                    (x.saturating_sub(2)..(x + 3).min(w))
                        .all(|xx| c_mask[yy * w + xx] == c_mask[i] && ours[1][yy * w + xx] == 1.0)
                })
        };
        let maxdiff = (0..w * h)
            .filter(|&i| ours[1][i] == 1.0 && !theirs[i].is_nan() && interior(i))
            .map(|i| (ours[0][i] - theirs[i]).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "{gdal}: both {both} close {close} exact {exact} mask_diff {mask_diff} max {maxdiff}"
        );
        assert!(both > w * h / 2, "{gdal}: too few common pixels ({both})");
        // Footprint edges may differ by one pixel along the boundary lines.
        assert!(
            mask_diff < (w + h) * 2,
            "{gdal}: masks differ at {mask_diff} px"
        );
        assert!(
            close as f64 >= 0.999 * both as f64,
            "{gdal}: only {close}/{both} px agree"
        );
        if method == Resampling::Nearest {
            // Ties at exact pixel edges may go either way (PROJ vs our series, sub-mm).
            assert!(
                exact as f64 >= 0.999 * both as f64,
                "nearest: {exact}/{both} exact"
            );
        } else {
            assert!(maxdiff <= 10.0, "{gdal}: max difference {maxdiff} DN");
        }
        // The two-zone tile really uses both scenes.
        assert!(scenes.iter().all(|s| s.mask.contains(&1)));
    }
}

/// The same pixels through GDAL-written variants: strips and tiles; LZW, zstd, PackBits,
/// deflate with the floating-point predictor; uint8, int16, float32; a geographic
/// (EPSG:4326) file. Skipped where gdal_translate is missing.
#[test]
fn codecs_layouts_and_sample_types_from_gdal() {
    if std::process::Command::new("gdal_translate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("gdal_translate not installed; skipping");
        return;
    }
    let src = fixture("S2SAMPLE_A_20230605/B04.tif");
    let mut orig = Cog::open_path(&src).unwrap();
    let want = orig.read_window(0, 100, 120, 40, 30).unwrap().data;
    let dir = tempfile::tempdir().unwrap();
    let variants: &[(&str, &[&str])] = &[
        (
            "lzw_strips",
            &["-ot", "UInt16", "-co", "COMPRESS=LZW", "-co", "PREDICTOR=2"],
        ),
        (
            "zstd_tiles",
            &[
                "-ot",
                "Int16",
                "-co",
                "TILED=YES",
                "-co",
                "COMPRESS=ZSTD",
                "-co",
                "BLOCKXSIZE=64",
                "-co",
                "BLOCKYSIZE=64",
            ],
        ),
        ("packbits", &["-ot", "UInt16", "-co", "COMPRESS=PACKBITS"]),
        (
            "float_pred3",
            &[
                "-ot",
                "Float32",
                "-co",
                "TILED=YES",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "PREDICTOR=3",
            ],
        ),
        ("none_strips", &["-ot", "UInt16", "-co", "BLOCKYSIZE=7"]),
    ];
    for (name, args) in variants {
        let out = dir.path().join(format!("{name}.tif"));
        let ok = std::process::Command::new("gdal_translate")
            .arg("-q")
            .args(*args)
            .arg(&src)
            .arg(&out)
            .status()
            .unwrap();
        assert!(ok.success(), "{name}");
        let mut cog = Cog::open_path(out.to_str().unwrap()).unwrap();
        assert_eq!(cog.georef, orig.georef, "{name}");
        let got = cog.read_window(0, 100, 120, 40, 30).unwrap().data;
        assert_eq!(got, want, "{name}");
    }
    // uint8 (scaled) keeps nodata and positions.
    let out = dir.path().join("u8.tif");
    assert!(std::process::Command::new("gdal_translate")
        .args(["-q", "-ot", "Byte", "-scale", "0", "10000", "1", "255"])
        .arg(&src)
        .arg(&out)
        .status()
        .unwrap()
        .success());
    let mut cog = Cog::open_path(out.to_str().unwrap()).unwrap();
    let got = cog.read_window(0, 100, 120, 40, 30).unwrap().data;
    for (g, w) in got.iter().zip(&want) {
        let expect = (1.0 + w * 254.0 / 10000.0).round();
        assert!((g - expect).abs() <= 1.0, "u8 {g} vs {expect}");
    }
    // A geographic copy: EPSG:4326 read back onto the UTM grid agrees within one step.
    let geo = dir.path().join("geo.tif");
    assert!(std::process::Command::new("gdalwarp")
        .args([
            "-q",
            "-t_srs",
            "EPSG:4326",
            "-r",
            "near",
            "-tr",
            "0.0001",
            "0.0001"
        ])
        .arg(&src)
        .arg(&geo)
        .status()
        .unwrap()
        .success());
    let cog = Cog::open_path(geo.to_str().unwrap()).unwrap();
    assert_eq!(cog.georef.epsg, 4326);
    let item = Item {
        id: "geo".into(),
        datetime: "2023-06-05T10:00:00Z".into(),
        day: 0,
        cloud_cover: 0.0,
        epsg: 4326,
        proj_bbox: [0.0; 4],
        bbox: [-180.0, -90.0, 180.0, 90.0],
        assets: vec![("B04".into(), geo.to_str().unwrap().to_string())],
    };
    let b = bands(&["B04", "dataMask"]);
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &b,
        georef: Georef {
            epsg: 32633,
            x_min: 500500.0,
            y_max: 5096500.0,
            res_x: 10.0,
            res_y: 10.0,
        },
        width: 200,
        height: 200,
        day: 0,
    };
    let f = Filter {
        units: Units::Dn,
        ..Filter::default()
    };
    let planes = mosaic(&read_items(&[item], &req, &f).unwrap(), &b, 200 * 200);
    let mut direct = Cog::open_path(&src).unwrap();
    let truth = direct.read_window(0, 50, 50, 200, 200).unwrap().data;
    // Two nearest-neighbour steps (to ~10 m in 4326 and back): most pixels equal the
    // original; parcel edges may shift by one pixel.
    let equal = truth.iter().zip(&planes[0]).filter(|(a, b)| a == b).count();
    assert!(planes[1].iter().all(|&m| m == 1.0));
    assert!(equal as f64 > 0.8 * 40_000.0, "only {equal} of 40000 equal");
}

#[test]
fn reflectance_keeps_no_data_outside_a_scene_footprint() {
    // A 10 km tile around footprint A (3 km): most pixels are outside every scene.
    let bands = vec!["B04".to_string(), "dataMask".to_string()];
    let req = ReadRequest {
        collection: SAMPLE_COLLECTION,
        bands: &bands,
        georef: crate::raster::Georef {
            epsg: 32633,
            x_min: 500000.0,
            y_max: 5100000.0,
            res_x: 20.0,
            res_y: 20.0,
        },
        width: 500,
        height: 500,
        day: 19538,
    };
    let scenes = read_scenes(&req, &Filter::default()).unwrap();
    assert!(!scenes.is_empty());
    for s in &scenes {
        let outside = s.planes[1].iter().filter(|v| **v == 0.0).count();
        assert!(outside > 200_000, "{}: only {outside} no-data pixels", s.id);
        assert!(outside < 250_000, "{}: no data anywhere", s.id);
    }
}

#[test]
fn epoch_ms_and_day_of_agree() {
    assert_eq!(epoch_ms("1970-01-01T00:00:01Z"), Some(1000));
    assert_eq!(epoch_ms("2023-06-05T10:00:00Z"), Some(1_685_959_200_000));
    assert_eq!(day_of("2023-06-05T10:00:00Z"), Some(19_513));
    assert_eq!(epoch_ms("not a date"), None);
}
