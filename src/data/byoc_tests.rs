use super::*;
use crate::data::{Filter, MosaickingOrder, ReadRequest};
use crate::raster::Georef;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn collection_ids() {
    assert_eq!(collection_id("byoc-abc-123"), Some("abc-123"));
    assert_eq!(collection_id("byoc-"), None);
    assert_eq!(collection_id("sentinel-2-l2a"), None);
    assert!(validate_id("0c5e7a1e-8a52-4f0b-b5b5-0d0f1b9f7a11").is_ok());
    assert!(validate_id("my_col").is_ok());
    assert!(validate_id("").is_err());
    assert!(validate_id("a b").is_err());
    assert!(validate_id("x'; DROP TABLE").is_err());
    assert!(validate_id(&"a".repeat(65)).is_err());
}

#[test]
fn templates_must_name_the_band_unambiguously() {
    assert!(Pattern::template("/d/*/(BAND).tif").is_ok());
    assert!(matches!(
        Pattern::template("/d/*/B04.tif"),
        Err(ByocError::BadTemplate { .. })
    ));
    assert!(Pattern::template("/d/*(BAND).tif").is_err());
    assert!(Pattern::template("/d/(BAND)*.tif").is_err());
    assert!(Pattern::template("/d/(BAND)(BAND).tif").is_err());
}

#[test]
fn matching_captures_the_band_and_gives_the_tile_path() {
    let t = Pattern::template("/d/*/(BAND).tif").unwrap();
    let m = t.matches("/d/T33_20230605/B04.tif").unwrap();
    assert_eq!(m.band.as_deref(), Some("B04"));
    assert_eq!(
        tile_path("/d/T33_20230605/B04.tif", &m),
        "/d/T33_20230605/(BAND).tif"
    );
    // A star stays within one folder; the extension is literal.
    assert!(t.matches("/d/a/b/B04.tif").is_none());
    assert!(t.matches("/d/a/B04.jp2").is_none());
    assert!(t.matches("/d/a/.tif").is_none(), "(BAND) is never empty");
    // The band sits between literals inside a name.
    let t = Pattern::template("/d/S2_(BAND)_20m.tif").unwrap();
    assert_eq!(
        t.matches("/d/S2_B8A_20m.tif").unwrap().band.as_deref(),
        Some("B8A")
    );
    // Two (BAND)s must agree.
    let t = Pattern::template("/d/(BAND)/x_(BAND).tif").unwrap();
    let m = t.matches("/d/B04/x_B04.tif").unwrap();
    assert_eq!(tile_path("/d/B04/x_B04.tif", &m), "/d/(BAND)/x_(BAND).tif");
    assert!(t.matches("/d/B04/x_B08.tif").is_none());
    // Landsat names: the band is the last part before the extension.
    let t = Pattern::template("/l/*_(BAND).TIF").unwrap();
    let m = t.matches("/l/LC08_L1TP_195025_20130707_B10.TIF").unwrap();
    assert_eq!(m.band.as_deref(), Some("B10"));
}

#[test]
fn globs_and_relative_paths() {
    let g = Pattern::glob("/d/*/B0*.tif");
    assert!(g.has_wildcards());
    assert!(g.matches("/d/x/B04.tif").is_some());
    assert!(g.matches("/d/x/B11.tif").is_none());
    assert!(!Pattern::glob("/d/x.tif").has_wildcards());
    assert_eq!(absolute("/home/u", "./col/B04.tif"), "/home/u/col/B04.tif");
    assert_eq!(absolute("/home/u/", "col/B04.tif"), "/home/u/col/B04.tif");
    assert_eq!(absolute("/home/u", "/abs/B04.tif"), "/abs/B04.tif");
    assert_eq!(absolute("/home/u", "s3://b/k.tif"), "s3://b/k.tif");
}

#[test]
fn files_group_into_tiles() {
    let t = Pattern::template("/d/*/(BAND).tif").unwrap();
    let files = s(&["/d/a/B04.tif", "/d/a/B08.tif", "/d/b/B04.tif"]);
    let g = group_files(&t, &files).unwrap();
    assert_eq!(g.len(), 2);
    let a = &g["/d/a/(BAND).tif"];
    assert_eq!(a.keys().collect::<Vec<_>>(), ["B04", "B08"]);
    assert_eq!(a["B08"], "/d/a/B08.tif");
    let err = group_files(&t, &s(&["/d/a/B04.tif", "/e/B04.tif"])).unwrap_err();
    assert!(
        err.to_string().contains("/e/B04.tif does not match"),
        "{err}"
    );
}

#[test]
fn sensing_dates_from_paths() {
    assert_eq!(
        date_from_path("/l/LC08_L1TP_195025_20130707_20170503_01_T1_(BAND).TIF").as_deref(),
        Some("2013-07-07T00:00:00Z")
    );
    assert_eq!(
        date_from_path("/d/2023/T33TWM_20230605T101559/(BAND).tif").as_deref(),
        Some("2023-06-05T10:15:59Z")
    );
    assert_eq!(
        date_from_path("/d/2023-06-17/(BAND).tif").as_deref(),
        Some("2023-06-17T00:00:00Z")
    );
    assert_eq!(
        date_from_path("/d/S2SAMPLE_A_20230605/(BAND).tif").as_deref(),
        Some("2023-06-05T00:00:00Z")
    );
    // Leap years.
    assert_eq!(
        date_from_path("/d/x_20240229/(BAND).tif").as_deref(),
        Some("2024-02-29T00:00:00Z")
    );
    assert_eq!(date_from_path("/d/x_20230229/(BAND).tif"), None);
    assert_eq!(date_from_path("/d/x_20231345/(BAND).tif"), None);
    assert_eq!(date_from_path("/d/x_123456789/(BAND).tif"), None);
    assert_eq!(date_from_path("/d/(BAND).tif"), None);
}

fn coll(bands: &[&str]) -> ByocCollection {
    ByocCollection {
        id: "c1".into(),
        template: "/d/*/(BAND).tif".into(),
        created: String::new(),
        tile_count: 1,
        bands: s(bands),
    }
}

#[test]
fn analysis_rejects_unknown_collections_and_bands() {
    let c = coll(&["B04", "B08"]);
    assert!(check_bands("byoc-c1", Some(&c), &s(&["B04", "dataMask"])).is_ok());
    let e = check_bands("byoc-c1", Some(&c), &s(&["B04", "B05"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "band 'B05' does not exist in collection byoc-c1; it has: B04, B08"
    );
    let e = check_bands("byoc-nope", None, &s(&["B04"])).unwrap_err();
    assert!(
        e.to_string()
            .contains("no BYOC collection 'nope' has been ingested"),
        "{e}"
    );
    let e = check_bands("byoc-c1", Some(&coll(&[])), &s(&["B04"])).unwrap_err();
    assert!(e.to_string().contains("no tiles ingested"), "{e}");
    assert!(matches!(
        check_bands("sentinel-2-l2a", None, &[]),
        Err(DataError::UnknownCollection(_))
    ));
}

#[test]
fn tiles_become_catalog_items() {
    let t = ByocTile {
        path: "/d/a/(BAND).tif".into(),
        epsg: 32633,
        proj_bbox: [0.0, 0.0, 10.0, 10.0],
        bbox: [15.0, 46.0, 15.1, 46.1],
        sensing_time: "2023-06-05T00:00:00Z".into(),
        day: 19513,
        cloud_cover: None,
        bands: s(&["B04", "B08"]),
    };
    let i = tile_item(&t);
    assert_eq!(i.asset("B08"), Some("/d/a/B08.tif"));
    assert_eq!(i.asset("B05"), None);
    assert_eq!(i.cloud_cover, 0.0);
    assert_eq!(i.day, 19513);
}

// ---- ingestion and reading on a real SQLite file ----------------------------------

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sample");

/// Copies two dates of sample tile A (B04, B08 at 10 m; SCL at 20 m) into `dir/col/`.
fn copy_sample(dir: &std::path::Path) {
    for scene in ["S2SAMPLE_A_20230605", "S2SAMPLE_A_20230615"] {
        let to = dir.join("col").join(scene);
        std::fs::create_dir_all(&to).unwrap();
        for b in ["B04", "B08", "SCL"] {
            std::fs::copy(
                format!("{SAMPLE}/{scene}/{b}.tif"),
                to.join(format!("{b}.tif")),
            )
            .unwrap();
        }
    }
}

/// The whole level-0 raster of a COG as the reader decodes it (no data -> 0).
fn direct(path: &str) -> (Georef, usize, usize, Vec<f32>) {
    let mut cog = Cog::open_path(path).unwrap();
    let l = cog.levels[0];
    let w = cog.read_window(0, 0, 0, l.width, l.height).unwrap();
    let data = w
        .data
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    (cog.georef, l.width as usize, l.height as usize, data)
}

fn ingest_opts(dir: &std::path::Path, inputs: Vec<String>) -> IngestOptions {
    IngestOptions {
        id: "mine".into(),
        template: "col/*/(BAND).tif".into(),
        inputs,
        sensing_time: None,
        cloud_cover: None,
        cwd: dir.display().to_string(),
    }
}

#[test]
fn ingest_then_read_gives_the_files_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    copy_sample(tmp.path());
    let store = Store::open(&tmp.path().join("index.db")).unwrap();
    // No files given: the template is scanned.
    let report = ingest(&store, &ingest_opts(tmp.path(), vec![])).unwrap();
    assert_eq!(report.tiles.len(), 2);
    let root = tmp.path().display().to_string();
    let t0 = &report.tiles[0];
    assert_eq!(
        t0.path,
        format!("{root}/col/S2SAMPLE_A_20230605/(BAND).tif")
    );
    assert_eq!(t0.bands, s(&["B04", "B08", "SCL"]));
    assert_eq!(t0.epsg, 32633);
    // gdalinfo: origin (500000, 5097000), 300 x 300 px at 10 m.
    assert_eq!(t0.proj_bbox, [500000.0, 5094000.0, 503000.0, 5097000.0]);
    // On the central meridian of zone 33 (15 E), x = 500000 is exactly 15 E.
    assert!((t0.bbox[0] - 15.0).abs() < 1e-9, "{:?}", t0.bbox);
    assert!(t0.bbox[1] > 45.9 && t0.bbox[3] < 46.1, "{:?}", t0.bbox);
    assert_eq!(t0.sensing_time, "2023-06-05T00:00:00Z");

    // Ingesting the same files again replaces, not duplicates; a glob input works too.
    let glob = vec!["col/S2SAMPLE_A_2023061*/*.tif".to_string()];
    assert_eq!(
        ingest(&store, &ingest_opts(tmp.path(), glob))
            .unwrap()
            .tiles
            .len(),
        1
    );
    let listed = store.byoc_collections().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tile_count, 2);
    assert_eq!(listed[0].bands, s(&["B04", "B08", "SCL"]));
    // Another template for the same id is refused.
    let mut other = ingest_opts(tmp.path(), vec![]);
    other.template = "col/*/x_(BAND).tif".into();
    assert!(matches!(
        ingest(&store, &other),
        Err(ByocError::TemplateMismatch { .. })
    ));

    // Read on the files' own grid: every pixel must be the file's.
    let bands = s(&["B04", "B08", "SCL", "dataMask"]);
    let (g, w, h, b04_0605) = direct(&format!("{root}/col/S2SAMPLE_A_20230605/B04.tif"));
    let req = ReadRequest {
        collection: "byoc-mine",
        bands: &bands,
        georef: g,
        width: w,
        height: h,
        day: 0,
    };
    let june5 = crate::data::day_of("2023-06-05T23:59:59Z").unwrap();
    let early = Filter {
        to_day: Some(june5),
        ..Filter::default()
    };
    let planes = read_simple_with(&store, &req, &early).unwrap();
    assert_eq!(
        planes[0], b04_0605,
        "B04 of 2023-06-05 as stored (no scaling)"
    );
    let (_, _, _, b08_0605) = direct(&format!("{root}/col/S2SAMPLE_A_20230605/B08.tif"));
    assert_eq!(planes[1], b08_0605);
    // SCL is 20 m: each file pixel covers 2 x 2 tile pixels (nearest).
    let (_, sw, _, scl) = direct(&format!("{root}/col/S2SAMPLE_A_20230605/SCL.tif"));
    for (row, col) in [(0, 0), (1, 1), (37, 250), (299, 299)] {
        assert_eq!(planes[2][row * w + col], scl[(row / 2) * sw + col / 2]);
    }
    assert!(planes[3].iter().all(|&m| m == 1.0));

    // Open time range, most recent first: the 2023-06-15 files win everywhere they have
    // data; the mosaic falls back to 2023-06-05 elsewhere.
    let (_, _, _, b04_0615) = direct(&format!("{root}/col/S2SAMPLE_A_20230615/B04.tif"));
    let planes = read_simple_with(&store, &req, &Filter::default()).unwrap();
    for i in 0..w * h {
        let want = if b04_0615[i] != 0.0 {
            b04_0615[i]
        } else {
            b04_0605[i]
        };
        assert_eq!(planes[0][i], want, "pixel {i}");
    }
    let scenes = read_scenes_with(
        &store,
        &req,
        &Filter {
            order: MosaickingOrder::LeastRecent,
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(scenes.len(), 2);
    assert_eq!(
        scenes[0].id,
        format!("{root}/col/S2SAMPLE_A_20230605/(BAND).tif")
    );
    assert_eq!(scenes[0].planes[0], b04_0605);
    assert_eq!(scenes[1].datetime, "2023-06-15T00:00:00Z");

    // A tile far away finds nothing: all zeros, dataMask 0.
    let far = ReadRequest {
        georef: Georef {
            x_min: 600000.0,
            ..g
        },
        ..req.clone()
    };
    let planes = read_simple_with(&store, &far, &Filter::default()).unwrap();
    assert!(planes.iter().all(|p| p.iter().all(|&v| v == 0.0)));
}

#[test]
fn ingest_reports_bad_files_and_missing_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("index.db")).unwrap();
    let d = tmp.path().join("col/T_20230605");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("B04.tif"), b"not a tiff").unwrap();
    let e = ingest(&store, &ingest_opts(tmp.path(), vec![])).unwrap_err();
    assert!(
        matches!(&e, ByocError::Header { path, .. } if path.ends_with("col/T_20230605/B04.tif")),
        "{e}"
    );
    // Nothing was written for the failed ingestion.
    assert!(store.byoc_collections().unwrap().is_empty());

    let nodate = tmp.path().join("col/T_nodate");
    std::fs::create_dir_all(&nodate).unwrap();
    std::fs::copy(
        format!("{SAMPLE}/S2SAMPLE_A_20230605/B04.tif"),
        nodate.join("B04.tif"),
    )
    .unwrap();
    let only = vec!["col/T_nodate/B04.tif".to_string()];
    let e = ingest(&store, &ingest_opts(tmp.path(), only.clone())).unwrap_err();
    assert!(matches!(e, ByocError::NoSensingTime(_)), "{e}");
    let mut forced = ingest_opts(tmp.path(), only);
    forced.sensing_time = Some("2023-07-01T10:00:00Z".into());
    forced.cloud_cover = Some(12.5);
    let r = ingest(&store, &forced).unwrap();
    assert_eq!(
        r.tiles[0].day,
        crate::data::day_of("2023-07-01T10:00:00Z").unwrap()
    );
    assert_eq!(r.tiles[0].cloud_cover, Some(12.5));
    let mut bad = ingest_opts(tmp.path(), vec![]);
    bad.cloud_cover = Some(120.0);
    assert!(matches!(
        ingest(&store, &bad),
        Err(ByocError::BadCloudCover(_))
    ));
    let mut missing = ingest_opts(tmp.path(), vec!["col/none_*/B04.tif".into()]);
    missing.id = "other".into();
    assert!(matches!(
        ingest(&store, &missing),
        Err(ByocError::NothingFound(_))
    ));
}
