//! Reading + warping benchmark: one grid-1 tile (10 km at 10 m, four bands) from local
//! COGs, against gdalwarp doing the same work in the same run; and the peak resident
//! memory of a grid-0 tile (20 km at 10 m, 13 bands, three overlapping scenes).
//!
//! `cargo bench --bench read`. Needs gdal-bin (gdal_translate, gdalbuildvrt, gdalwarp) to
//! build the inputs: the COGs are the fixture bands of scene A resampled by
//! gdal_translate to 12 km (so they are real GDAL-written COGs, 512 px deflate tiles).

use std::process::Command;
use std::time::Instant;

use tessera::data::{self, Filter, Item, ReadRequest, Units};
use tessera::raster::warp::{self, Resampling};
use tessera::raster::Georef;

const RUNS: usize = 5;

fn run(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

/// Writes `band` of fixture item `A_20230605` as a COG covering `bbox` (UTM 33N) at `res`.
fn make_cog(out: &str, band: &str, bbox: [f64; 4], res: f64) -> bool {
    let src = format!("{}/S2SAMPLE_A_20230605/{band}.tif", data::sample_dir());
    let w = ((bbox[2] - bbox[0]) / res).round() as u32;
    let h = ((bbox[3] - bbox[1]) / res).round() as u32;
    run(Command::new("gdal_translate")
        .args([
            "-q",
            "-of",
            "COG",
            "-co",
            "COMPRESS=DEFLATE",
            "-co",
            "PREDICTOR=2",
        ])
        .args([
            "-co",
            "BLOCKSIZE=512",
            "-r",
            "bilinear",
            "-a_srs",
            "EPSG:32633",
        ])
        .args(["-outsize", &w.to_string(), &h.to_string(), "-a_ullr"])
        .args([bbox[0], bbox[3], bbox[2], bbox[1]].map(|v| v.to_string()))
        .args([&src, out]))
}

fn item(id: &str, dir: &str, bands: &[&str], b: [f64; 4], date: &str) -> Item {
    let ll = warp::transform_bbox(32633, 4326, b).expect("utm");
    Item {
        id: id.into(),
        datetime: format!("{date}T10:00:00Z"),
        day: data::day_of(&format!("{date}T10:00:00Z")).expect("date"),
        cloud_cover: 0.0,
        epsg: 32633,
        proj_bbox: b,
        bbox: ll,
        assets: bands
            .iter()
            .map(|band| (band.to_string(), format!("{dir}/{band}.tif")))
            .collect(),
        ..Item::default()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    if !run(Command::new("gdalwarp").arg("--version")) {
        eprintln!("gdalwarp not installed; nothing to compare against");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_str().expect("utf-8 path").to_string();

    // --- memory: grid-0 tile, 13 bands, three overlapping scenes ------------------------
    let all = [
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "SCL",
    ];
    let res_of = |b: &str| match b {
        "B02" | "B03" | "B04" | "B08" => 10.0,
        "B01" | "B09" => 60.0,
        _ => 20.0,
    };
    let (tx, ty) = (480_000.0, 5_110_000.0);
    let mut items = Vec::new();
    for (k, x0) in [-1000.0, 6000.0, 12000.0].iter().enumerate() {
        let dir = format!("{root}/mem{k}");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let b = [tx + x0, ty - 21_000.0, tx + x0 + 9_000.0, ty + 1_000.0];
        for band in all {
            assert!(
                make_cog(&format!("{dir}/{band}.tif"), band, b, res_of(band)),
                "gdal_translate"
            );
        }
        items.push(item(
            &format!("mem{k}"),
            &dir,
            &all,
            b,
            &format!("2023-06-0{}", k + 1),
        ));
    }
    let bands: Vec<String> = all
        .iter()
        .map(|s| s.to_string())
        .chain(["dataMask".to_string()])
        .collect();
    let req = ReadRequest {
        collection: data::SAMPLE_COLLECTION,
        bands: &bands,
        georef: Georef {
            epsg: 32633,
            x_min: tx,
            y_max: ty,
            res_x: 10.0,
            res_y: 10.0,
        },
        width: 2000,
        height: 2000,
        day: 0,
    };
    let before = peak_rss_mib();
    let clock = Instant::now();
    let planes = data::mosaic_items(&items, &req, &Filter::default()).expect("grid-0 read");
    let filled = planes[13].iter().filter(|&&m| m == 1.0).count();
    println!(
        "grid-0 tile 2000x2000 px, 13 bands + dataMask, 3 scenes: {:.2} s, {:.1}% filled, peak RSS {:.0} MiB (before: {:.0} MiB)",
        clock.elapsed().as_secs_f64(),
        100.0 * filled as f64 / (2000.0 * 2000.0),
        peak_rss_mib(),
        before
    );
    drop(planes);

    // --- speed: grid-1 tile, four 10 m bands, vs gdalwarp --------------------------------
    let four = ["B02", "B03", "B04", "B08"];
    let dir = format!("{root}/speed");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let scene = [495_000.0, 5_088_000.0, 507_000.0, 5_100_000.0];
    for band in four {
        assert!(
            make_cog(&format!("{dir}/{band}.tif"), band, scene, 10.0),
            "gdal_translate"
        );
    }
    let vrt = format!("{dir}/stack.vrt");
    let mut c = Command::new("gdalbuildvrt");
    c.args(["-q", "-separate", &vrt]);
    for band in four {
        c.arg(format!("{dir}/{band}.tif"));
    }
    assert!(run(&mut c), "gdalbuildvrt");
    let items = vec![item("speed", &dir, &four, scene, "2023-06-05")];
    let bands: Vec<String> = four.iter().map(|s| s.to_string()).collect();

    // Same zone (resample) and a zone-32 tile over the same ground (reproject).
    let t = warp::Transform::new(32633, 32632).expect("utm");
    let (cx, cy) = t.apply(501_000.0, 5_094_000.0);
    let (cx, cy) = ((cx / 10.0).round() * 10.0, (cy / 10.0).round() * 10.0);
    let cases = [
        (
            "same zone (EPSG:32633)",
            Georef {
                epsg: 32633,
                x_min: 496_000.0,
                y_max: 5_099_000.0,
                res_x: 10.0,
                res_y: 10.0,
            },
        ),
        (
            "other zone (EPSG:32632)",
            Georef {
                epsg: 32632,
                x_min: cx - 5000.0,
                y_max: cy + 5000.0,
                res_x: 10.0,
                res_y: 10.0,
            },
        ),
    ];
    // gdalwarp's fixed cost (process start, PROJ database, opening the VRT): a 1x1 px warp.
    let startup = median(
        (0..RUNS)
            .map(|_| {
                let clock = Instant::now();
                assert!(run(Command::new("gdalwarp")
                    .args(["-q", "-overwrite", "-of", "MEM", "-ts", "1", "1", "-te"])
                    .args([
                        "496000",
                        "5098990",
                        "496010",
                        "5099000",
                        vrt.as_str(),
                        "/dev/null"
                    ])));
                clock.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!("gdalwarp fixed cost (1x1 px warp): {:.1} ms", startup * 1e3);
    for (name, georef) in cases {
        for (method, gdal) in [
            (Resampling::Nearest, "near"),
            (Resampling::Bilinear, "bilinear"),
        ] {
            let req = ReadRequest {
                collection: data::SAMPLE_COLLECTION,
                bands: &bands,
                georef,
                width: 1000,
                height: 1000,
                day: 0,
            };
            let filter = Filter {
                upsampling: method,
                downsampling: method,
                units: Units::Dn,
                ..Filter::default()
            };
            let ours = median(
                (0..RUNS)
                    .map(|_| {
                        let c = Instant::now();
                        let p = data::mosaic_items(&items, &req, &filter).expect("read");
                        assert_eq!(p.len(), 4);
                        c.elapsed().as_secs_f64()
                    })
                    .collect(),
            );
            let te = [
                georef.x_min,
                georef.y_max - 10_000.0,
                georef.x_min + 10_000.0,
                georef.y_max,
            ];
            let gdal_time = |threads: bool| {
                median(
                    (0..RUNS)
                        .map(|_| {
                            let mut c = Command::new("gdalwarp");
                            c.args([
                                "-q",
                                "-overwrite",
                                "-of",
                                "MEM",
                                "-ot",
                                "Float32",
                                "-r",
                                gdal,
                            ])
                            .args([
                                "-t_srs",
                                &format!("EPSG:{}", georef.epsg),
                                "-tr",
                                "10",
                                "10",
                                "-te",
                            ])
                            .args(te.map(|v| v.to_string()));
                            if threads {
                                c.args(["-multi", "-wo", "NUM_THREADS=ALL_CPUS"]);
                            }
                            c.args([vrt.as_str(), "/dev/null"]);
                            let clock = Instant::now();
                            assert!(run(&mut c), "gdalwarp");
                            clock.elapsed().as_secs_f64()
                        })
                        .collect(),
                )
            };
            let g1 = gdal_time(false);
            let g2 = gdal_time(true);
            let px = 1000.0 * 1000.0;
            println!(
                "{name}, {gdal}: tessera {:.1} ms = {:.1} Mpx/s (x4 bands); gdalwarp {:.1} ms, -multi {:.1} ms; speed ratio vs best gdalwarp {:.2}x ({:.2}x without its fixed cost)",
                ours * 1e3,
                px / ours / 1e6,
                g1 * 1e3,
                g2 * 1e3,
                g1.min(g2) / ours,
                (g1.min(g2) - startup) / ours
            );
        }
    }
}
