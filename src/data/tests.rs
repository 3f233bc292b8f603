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
    let planes = read_simple(&req, &f, &DataConfig::default()).unwrap();
    let mut cog = Cog::open_path(&fixture("S2SAMPLE_A_20230605/B05.tif")).unwrap();
    let full = cog.read_window(0, 0, 0, 150, 150).unwrap();
    assert_eq!(planes[0], full.data);
    assert!(planes[2].iter().all(|&m| m == 1.0));
    // Reflectance is DN / 10000.
    let f = Filter {
        units: Units::Reflectance,
        ..f
    };
    let refl = read_simple(&req, &f, &DataConfig::default()).unwrap();
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
            &DataConfig::default(),
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
    let mostrecent = read_simple(&req, &base, &DataConfig::default()).unwrap();
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
    let err = check_bands(SAMPLE_COLLECTION, &bands(&["B10"]), &DataConfig::default()).unwrap_err();
    assert!(err.to_string().contains("B10"));
    assert!(check_bands("sentinel-2-l2a", &bands(&["B04"]), &DataConfig::default()).is_err());
    assert!(check_bands(
        SYNTHETIC_COLLECTION,
        &bands(&["B04", "dataMask"]),
        &DataConfig::default()
    )
    .is_ok());
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
        let scenes = read_scenes(&req, &f, &DataConfig::default()).unwrap();
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
        dn_offset: 0.0,
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
    let scenes = read_scenes(&req, &Filter::default(), &DataConfig::default()).unwrap();
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

/// STAC over HTTP against a tiny in-process server on 127.0.0.1: a static catalog over
/// copies of the fixture COGs, a STAC API answering `POST /search` page by page, 503s
/// that must be retried, and a 404 and a corrupt COG that must fail with URL and reason.
mod stac_http {
    use super::*;
    use serde_json::{json, Value};
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type SearchFn = dyn Fn(&str, &Value) -> Value + Send + Sync;

    /// What the server serves and how it misbehaves.
    #[derive(Default)]
    struct State {
        files: Mutex<HashMap<String, Vec<u8>>>,
        /// Answer this many requests with 503 before behaving.
        fail_next: AtomicUsize,
        /// Every request line seen, with the status answered.
        log: Mutex<Vec<String>>,
        search: Mutex<Option<Arc<SearchFn>>>,
        /// Behave like `python3 -m http.server`: ignore Range, answer 200 with the file.
        ignore_range: AtomicBool,
    }

    struct Server {
        base: String,
        state: Arc<State>,
        stop: Arc<AtomicBool>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    impl Server {
        fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let state = Arc::new(State::default());
            let stop = Arc::new(AtomicBool::new(false));
            let (st, sp) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                // Bounded: the test's Drop stops it; 10 minutes at most regardless.
                for _ in 0..600_000 {
                    if sp.load(Ordering::SeqCst) {
                        return;
                    }
                    match listener.accept() {
                        Ok((s, _)) => {
                            let st = st.clone();
                            std::thread::spawn(move || {
                                let _ = handle(s, &st);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            });
            Server { base, state, stop }
        }

        fn put(&self, path: &str, bytes: Vec<u8>) {
            self.state
                .files
                .lock()
                .unwrap()
                .insert(path.to_string(), bytes);
        }

        fn count(&self, needle: &str) -> usize {
            let log = self.state.log.lock().unwrap();
            log.iter().filter(|l| l.contains(needle)).count()
        }
    }

    fn handle(stream: TcpStream, state: &State) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let (status, extra, payload) = respond(&method, &target, &headers, &body, state);
        state
            .log
            .lock()
            .unwrap()
            .push(format!("{method} {target} {status}"));
        let mut out = stream;
        let reason = match status {
            200 => "OK",
            206 => "Partial Content",
            404 => "Not Found",
            416 => "Range Not Satisfiable",
            _ => "Service Unavailable",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n",
            payload.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(&payload)?;
        }
        out.flush()
    }

    /// Status, extra headers and body; a HEAD gets the GET's Content-Length, no body.
    fn respond(
        method: &str,
        target: &str,
        headers: &HashMap<String, String>,
        body: &[u8],
        state: &State,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let failing = state
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return (503, vec![], b"try later".to_vec());
        }
        let path = target.split('?').next().unwrap_or("");
        if path.ends_with("/search") {
            let handler = state.search.lock().unwrap().clone();
            let Some(handler) = handler else {
                return (404, vec![], vec![]);
            };
            let request = if method == "POST" {
                serde_json::from_slice(body).unwrap_or(Value::Null)
            } else {
                let token = target.split("token=").nth(1).unwrap_or("");
                json!({ "token": token })
            };
            let page = handler(target, &request);
            let ct = (
                "Content-Type".to_string(),
                "application/geo+json".to_string(),
            );
            return (200, vec![ct], serde_json::to_vec(&page).unwrap());
        }
        let files = state.files.lock().unwrap();
        let Some(data) = files.get(path) else {
            return (404, vec![], b"no such file".to_vec());
        };
        let total = data.len();
        let range = headers
            .get("range")
            .filter(|_| !state.ignore_range.load(Ordering::SeqCst));
        if let Some(r) = range.and_then(|r| r.strip_prefix("bytes=")) {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let start: usize = a.parse().unwrap_or(0);
            let end: usize = b.parse().map(|e: usize| e + 1).unwrap_or(total).min(total);
            if start >= end {
                return (416, vec![], vec![]);
            }
            let cr = (
                "Content-Range".to_string(),
                format!("bytes {start}-{}/{total}", end - 1),
            );
            return (206, vec![cr], data[start..end].to_vec());
        }
        (200, vec![], data.clone())
    }

    /// The search handler, pure: items of the body's collections whose bbox intersects
    /// the body's bbox and pass `query.eo:cloud_cover.lte`, `page_size` per page, with a
    /// POST `next` link (merge, token = next offset) while more remain.
    fn search_page(items: &[Value], request: &Value, page_size: usize, base: &str) -> Value {
        let cols: Vec<&str> = request["collections"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let bb: Vec<f64> = request["bbox"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let lte = request["query"]["eo:cloud_cover"]["lte"]
            .as_f64()
            .unwrap_or(100.0);
        let hits: Vec<&Value> = items
            .iter()
            .filter(|i| cols.is_empty() || cols.contains(&i["collection"].as_str().unwrap_or("")))
            .filter(|i| {
                let b: Vec<f64> = i["bbox"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_f64)
                    .collect();
                bb.len() != 4 || (b[0] < bb[2] && b[2] > bb[0] && b[1] < bb[3] && b[3] > bb[1])
            })
            .filter(|i| i["properties"]["eo:cloud_cover"].as_f64().unwrap_or(0.0) <= lte)
            .collect();
        let from: usize = request["token"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = hits
            .iter()
            .skip(from)
            .take(page_size)
            .map(|v| (*v).clone())
            .collect();
        let mut links = vec![];
        if from + page_size < hits.len() {
            links.push(
                json!({"rel": "next", "href": format!("{base}/search"), "method": "POST",
                "merge": true, "body": {"token": (from + page_size).to_string()}}),
            );
        }
        json!({"type": "FeatureCollection", "features": page, "links": links})
    }

    #[test]
    fn search_handler_pages_and_filters() {
        let items: Vec<Value> = (0..5)
            .map(|i| {
                json!({"id": format!("i{i}"), "collection": "c", "bbox": [i as f64, 0.0, i as f64 + 0.5, 1.0],
                    "properties": {"eo:cloud_cover": i as f64 * 10.0}})
            })
            .collect();
        let p1 = search_page(&items, &json!({"collections": ["c"]}), 2, "http://x");
        assert_eq!(p1["features"].as_array().unwrap().len(), 2);
        let (url, body) = stac::next_page(&p1, &json!({"collections": ["c"]})).unwrap();
        assert_eq!(url, "http://x/search");
        let p3 = search_page(&items, &json!({"collections": ["c"], "token": "4"}), 2, "x");
        assert_eq!(p3["features"][0]["id"], "i4");
        assert!(stac::next_page(&p3, &Value::Null).is_none());
        assert_eq!(body.unwrap()["token"], "2");
        let q = json!({"collections": ["c"], "bbox": [1.6, 0.0, 3.2, 1.0],
            "query": {"eo:cloud_cover": {"lte": 25.0}}});
        let found = search_page(&items, &q, 10, "x");
        let ids: Vec<&str> = found["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["i2"]);
    }

    /// Sentinel Hub band -> Earth Search asset key, as a catalog publisher would name it.
    fn es_key(band: &str) -> String {
        stac::asset_keys(band)[0].clone()
    }

    /// The sample's items as Earth Search-style STAC items whose asset hrefs are
    /// `href(item id, band)`; every COG is put on the server under `/cogs/`.
    fn sample_items(server: &Server, href: &dyn Fn(&str, &str) -> String) -> Vec<Value> {
        let dir = sample_dir();
        let cat: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/catalog.json")).unwrap())
                .unwrap();
        let mut out = vec![];
        for f in cat["features"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap();
            let mut assets = serde_json::Map::new();
            for (band, a) in f["assets"].as_object().unwrap() {
                let rel = a["href"].as_str().unwrap();
                server.put(
                    &format!("/cogs/{rel}"),
                    std::fs::read(format!("{dir}/{rel}")).unwrap(),
                );
                assets.insert(es_key(band), json!({"href": href(id, band)}));
            }
            let mut item = f.clone();
            item["type"] = json!("Feature");
            item["collection"] = json!(S2_L2A);
            item["assets"] = Value::Object(assets);
            out.push(item);
        }
        out
    }

    /// A static catalog at `/<root>/catalog.json` -> child collection -> one file per
    /// item, with relative hrefs all the way down to `/cogs/`.
    fn publish_static(server: &Server, root: &str, items: &[Value]) -> String {
        let mut links = vec![];
        for it in items {
            let id = it["id"].as_str().unwrap();
            server.put(
                &format!("/{root}/s2/items/{id}.json"),
                serde_json::to_vec(it).unwrap(),
            );
            links.push(json!({"rel": "item", "href": format!("./items/{id}.json")}));
        }
        let collection = json!({"type": "Collection", "id": S2_L2A, "links": links});
        server.put(
            &format!("/{root}/s2/collection.json"),
            serde_json::to_vec(&collection).unwrap(),
        );
        let other = json!({"type": "Collection", "id": "something-else", "links": []});
        server.put(
            &format!("/{root}/other.json"),
            serde_json::to_vec(&other).unwrap(),
        );
        let catalog = json!({"type": "Catalog", "id": "root", "links": [
            {"rel": "self", "href": "./catalog.json"},
            {"rel": "child", "href": "./s2/collection.json"},
            {"rel": "child", "href": "./other.json"}]});
        server.put(
            &format!("/{root}/catalog.json"),
            serde_json::to_vec(&catalog).unwrap(),
        );
        format!("{}/{root}/catalog.json", server.base)
    }

    fn fast_retry(attempts: u32) -> RemoteConfig {
        RemoteConfig {
            retry: remote::RetryPolicy {
                attempts,
                first_backoff: Duration::from_millis(2),
                max_backoff: Duration::from_millis(10),
            },
            ..RemoteConfig::default()
        }
    }

    fn static_config(url: &str, attempts: u32) -> DataConfig {
        DataConfig {
            remote: fast_retry(attempts),
            ..DataConfig::default()
        }
        .with_source(
            S2_L2A,
            CollectionSource::StaticCatalog {
                url: url.to_string(),
                collection: S2_L2A.to_string(),
            },
        )
    }

    /// A 3 km tile over scenes A (zone 33) at 10 m, with 10, 20 and 60 m bands.
    fn tile<'a>(collection: &'a str, b: &'a [String]) -> ReadRequest<'a> {
        ReadRequest {
            collection,
            bands: b,
            georef: Georef {
                epsg: 32633,
                x_min: 500500.0,
                y_max: 5096500.0,
                res_x: 10.0,
                res_y: 10.0,
            },
            width: 120,
            height: 120,
            day: day_of("2023-06-30T00:00:00Z").unwrap(),
        }
    }

    #[test]
    fn static_catalog_over_http_reads_like_the_sample_and_retries() {
        let server = Server::start();
        let items = sample_items(&server, &|id, band| {
            format!("../../../cogs/{id}/{band}.tif")
        });
        let url = publish_static(&server, "cat", &items);
        let b = bands(&["B04", "B8A", "B01", "SCL", "dataMask"]);
        let filter = Filter {
            order: MosaickingOrder::LeastRecent,
            upsampling: Resampling::Bilinear,
            ..Filter::default()
        };
        let local = read_simple(
            &tile(SAMPLE_COLLECTION, &b),
            &filter,
            &DataConfig::default(),
        )
        .unwrap();
        assert!(local[4].contains(&1.0), "the tile must hit data");
        // The first two requests (the catalog's HEAD, then its retry) get 503.
        server.state.fail_next.store(2, Ordering::SeqCst);
        let cfg = static_config(&url, 4);
        check_bands(S2_L2A, &b, &cfg).unwrap();
        let remote = read_simple(&tile(S2_L2A, &b), &filter, &cfg).unwrap();
        assert_eq!(remote, local);
        assert_eq!(server.count(" 503"), 2);
        assert!(server.count("/cogs/") > 0 && server.count(" 206") > 0);
        // ORBIT-style: one scene per item, same ids and planes as the sample.
        server.state.fail_next.store(1, Ordering::SeqCst);
        let a = read_scenes(
            &tile(SAMPLE_COLLECTION, &b),
            &filter,
            &DataConfig::default(),
        )
        .unwrap();
        let r = read_scenes(&tile(S2_L2A, &b), &filter, &cfg).unwrap();
        assert_eq!(a, r);
        assert_eq!(server.count(" 503"), 3);
    }

    #[test]
    fn headers_and_decoded_chunks_are_fetched_once_per_configuration() {
        let server = Server::start();
        let items = sample_items(&server, &|id, band| {
            format!("../../../cogs/{id}/{band}.tif")
        });
        let url = publish_static(&server, "cat", &items);
        let b = bands(&["B04", "B8A", "dataMask"]);
        let filter = Filter::default();
        let cfg = static_config(&url, 2);
        let first = read_simple(&tile(S2_L2A, &b), &filter, &cfg).unwrap();
        let cog_requests = server.count("/cogs/");
        assert!(cog_requests > 0);
        assert!(server.count("HEAD /cogs/") > 0);
        // The same tile again (as the next tile over the same blocks would): the COGs'
        // sizes, IFDs and chunks all come from memory.
        let again = read_simple(&tile(S2_L2A, &b), &filter, &cfg).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            server.count("/cogs/"),
            cog_requests,
            "{:?}",
            server.state.log
        );
        // A configuration with the cache off still reads the same pixels, fetching again.
        let mut off = static_config(&url, 2);
        off.remote.cache = crate::raster::cache::BlockCache::with_budget(0);
        assert_eq!(
            read_simple(&tile(S2_L2A, &b), &filter, &off).unwrap(),
            first
        );
        assert!(server.count("/cogs/") > cog_requests);
    }

    #[test]
    fn a_server_without_range_support_serves_documents_and_small_cogs() {
        let server = Server::start();
        server.state.ignore_range.store(true, Ordering::SeqCst);
        let items = sample_items(&server, &|id, band| {
            format!("../../../cogs/{id}/{band}.tif")
        });
        let url = publish_static(&server, "cat", &items);
        let b = bands(&["B04", "B8A", "dataMask"]);
        let filter = Filter::default();
        let local = read_simple(
            &tile(SAMPLE_COLLECTION, &b),
            &filter,
            &DataConfig::default(),
        )
        .unwrap();
        let remote = read_simple(&tile(S2_L2A, &b), &filter, &static_config(&url, 2)).unwrap();
        assert_eq!(remote, local);
        // JSON documents are one plain GET each; COGs are fetched whole (200, never 206).
        assert_eq!(server.count("HEAD /cat/"), 0, "{:?}", server.state.log);
        assert!(server.count("GET /cat/catalog.json 200") >= 1);
        assert_eq!(server.count(" 206"), 0);
        assert!(server.count("GET /cogs/") > 0);
        // Above the whole-file limit the tile fails and says why.
        let mut cfg = static_config(&url, 2);
        cfg.remote.whole_file_limit = Some(1000);
        let err = read_simple(&tile(S2_L2A, &b), &filter, &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ignores HTTP Range"), "{err}");
        assert!(err.contains("/cogs/"), "the message names the file: {err}");
    }

    #[test]
    fn retries_are_bounded_and_permanent_failures_name_url_and_reason() {
        let server = Server::start();
        let items = sample_items(&server, &|id, band| {
            format!("../../../cogs/{id}/{band}.tif")
        });
        let url = publish_static(&server, "cat", &items);
        let b = bands(&["B04"]);
        // Always 503: gives up after the configured attempts, naming the URL and status.
        server.state.fail_next.store(1000, Ordering::SeqCst);
        let err = read_simple(
            &tile(S2_L2A, &b),
            &Filter::default(),
            &static_config(&url, 3),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&url) && err.contains("503") && err.contains("3 attempt"),
            "{err}"
        );
        assert_eq!(server.count(" 503"), 3);
        server.state.fail_next.store(0, Ordering::SeqCst);

        // A missing COG: one request, no retry, the URL and "not found" in the error.
        let mut broken = items.clone();
        let missing = format!("{}/cogs/nowhere/B04.tif", server.base);
        let corrupt = format!("{}/cogs/corrupt/B04.tif", server.base);
        server.put(
            "/cogs/corrupt/B04.tif",
            b"II*\0garbage, not a TIFF at all".to_vec(),
        );
        for it in broken.iter_mut() {
            it["assets"]["red"]["href"] = json!(missing);
        }
        let bad_url = publish_static(&server, "missing", &broken);
        let before = server.count("nowhere");
        let err = read_simple(
            &tile(S2_L2A, &b),
            &Filter::default(),
            &static_config(&bad_url, 4),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&missing), "{err}");
        assert!(err.to_lowercase().contains("not found"), "{err}");
        assert_eq!(server.count("nowhere") - before, 1, "a 404 is not retried");

        for it in broken.iter_mut() {
            it["assets"]["red"]["href"] = json!(corrupt);
        }
        let bad_url = publish_static(&server, "corrupt", &broken);
        let err = read_simple(
            &tile(S2_L2A, &b),
            &Filter::default(),
            &static_config(&bad_url, 4),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&corrupt), "{err}");
        assert!(err.contains("not a readable GeoTIFF"), "{err}");
    }

    #[test]
    fn stac_api_search_follows_next_pages() {
        let server = Server::start();
        let base = server.base.clone();
        let items = sample_items(&server, &|id, band| format!("{base}/cogs/{id}/{band}.tif"));
        let all = Arc::new(items);
        let (all2, base2) = (all.clone(), base.clone());
        *server.state.search.lock().unwrap() = Some(Arc::new(move |_t: &str, body: &Value| {
            search_page(&all2, body, 1, &base2)
        }));
        let cfg = DataConfig {
            remote: fast_retry(3),
            ..DataConfig::default()
        }
        .with_source(
            S2_L2A,
            CollectionSource::StacApi {
                url: format!("{base}/v1/"),
                collection: S2_L2A.to_string(),
            },
        );
        let b = bands(&["B04", "B11", "dataMask"]);
        let filter = Filter {
            max_cloud_coverage: 60.0,
            ..Filter::default()
        };
        let local = read_scenes(
            &tile(SAMPLE_COLLECTION, &b),
            &filter,
            &DataConfig::default(),
        )
        .unwrap();
        assert!(local.len() >= 2, "the tile must see several scenes");
        server.state.fail_next.store(1, Ordering::SeqCst);
        let remote = read_scenes(&tile(S2_L2A, &b), &filter, &cfg).unwrap();
        assert_eq!(remote, local);
        // One page per matching item (page size 1), plus the retried 503.
        let pages = server.count("search 200");
        assert!(
            pages >= local.len(),
            "{pages} pages for {} scenes",
            local.len()
        );
        assert_eq!(server.count(" 503"), 1);
        let simple = read_simple(&tile(S2_L2A, &b), &filter, &cfg).unwrap();
        assert_eq!(
            simple,
            read_simple(
                &tile(SAMPLE_COLLECTION, &b),
                &filter,
                &DataConfig::default()
            )
            .unwrap()
        );
    }

    #[test]
    fn unconfigured_stac_collection_fails_analysis_clearly() {
        let b = bands(&["B04"]);
        let err = check_bands(S2_L1C, &b, &DataConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sentinel-2-l1c") && err.contains("TESSERA_STAC_API_URL"),
            "{err}"
        );
        let cfg = DataConfig::from_vars(&|k| {
            (k == "TESSERA_STAC_CATALOG_URL").then(|| "/data/catalog.json".to_string())
        })
        .unwrap();
        check_bands(S2_L1C, &bands(&["B10"]), &cfg).unwrap();
        let err = check_bands(S2_L1C, &bands(&["SCL"]), &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SCL"), "{err}");
        assert!(check_bands(S2_L2A, &bands(&["B10"]), &cfg).is_err());
    }
}

#[test]
fn data_config_from_vars() {
    let cfg = |pairs: &'static [(&'static str, &'static str)]| {
        DataConfig::from_vars(&move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    assert_eq!(cfg(&[]).unwrap().sources.len(), 0);
    let c = cfg(&[
        ("TESSERA_STAC_API_URL", "https://es/v1"),
        (
            "TESSERA_STAC_CATALOG_URL_SENTINEL_2_L1C",
            "s3://b/catalog.json",
        ),
    ])
    .unwrap();
    assert_eq!(
        c.source(S2_L2A),
        Some(&CollectionSource::StacApi {
            url: "https://es/v1".into(),
            collection: S2_L2A.into()
        })
    );
    assert_eq!(
        c.source(S2_L1C),
        Some(&CollectionSource::StaticCatalog {
            url: "s3://b/catalog.json".into(),
            collection: S2_L1C.into()
        })
    );
    let err = cfg(&[
        ("TESSERA_STAC_API_URL", "https://es/v1"),
        ("TESSERA_STAC_CATALOG_URL", "/c.json"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("not both"), "{err}");
}

/// harmonizeValues: the pure rule of evalscript-v3.md §5.
#[test]
fn harmonize_values_rule() {
    // Baseline >= 04.00 (offset -1000): 1500 DN is 500 harmonised, 0.05 reflectance.
    assert_eq!(to_units(1500.0, -1000.0, true, Units::Dn), 500.0);
    assert!((to_units(1500.0, -1000.0, true, Units::Reflectance) - 0.05).abs() < 1e-7);
    // Below the offset: clamped to 0 when harmonised.
    assert_eq!(to_units(800.0, -1000.0, true, Units::Dn), 0.0);
    assert_eq!(to_units(800.0, -1000.0, true, Units::Reflectance), 0.0);
    // Not harmonised: DN raw, reflectance with the offset and possibly negative.
    assert_eq!(to_units(800.0, -1000.0, false, Units::Dn), 800.0);
    assert!((to_units(800.0, -1000.0, false, Units::Reflectance) + 0.02).abs() < 1e-7);
    // Older baselines: no offset; DN untouched (even negative, e.g. BYOC floats).
    assert_eq!(to_units(1234.0, 0.0, true, Units::Dn), 1234.0);
    assert_eq!(to_units(-5.0, 0.0, true, Units::Dn), -5.0);
    assert!((to_units(1234.0, 0.0, true, Units::Reflectance) - 0.1234).abs() < 1e-7);
    assert_eq!(to_units(-5.0, 0.0, true, Units::Reflectance), 0.0);
}
