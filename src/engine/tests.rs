//! The engine end to end on a real SQLite file and a real output folder.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use lifecycle::ErrorKind;

const NDVI: &str = include_str!("../../evalscripts/ndvi.js");

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        db_path: dir.join("t.db"),
        data_dir: dir.join("data"),
        workers: 2,
        // These tests write to absolute paths in their own temporary folder.
        outputs: OutputPolicy::allowing(&[dir.to_str().unwrap()]).unwrap(),
        ..EngineConfig::default()
    }
}

/// A request over a few grid-1 tiles at 20 m, written under `out`.
fn body(out: &std::path::Path, bbox: [f64; 4]) -> Value {
    json!({
        "processRequest": {
            "input": {
                "bounds": {"bbox": bbox, "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}},
                "data": [{"type": "tessera-synthetic", "dataFilter": {"timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T00:00:00Z"}}}]
            },
            "evalscript": NDVI,
            "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]}
        },
        "tilingGrid": {"id": 1, "resolution": 20},
        "output": {"defaultTilePath": out.to_str().unwrap()}
    })
}

const SMALL: [f64; 4] = [15.01, 46.01, 15.02, 46.02];
const TWO_TILES: [f64; 4] = [15.12, 46.01, 15.14, 46.02];

fn wait_for(engine: &Engine, id: &str, done: impl Fn(&Progress) -> bool) -> Progress {
    let start = Instant::now();
    loop {
        let p = engine.progress("c", id).unwrap();
        if done(&p) {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out at {p:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminal(p: &Progress) -> bool {
    matches!(
        p.status,
        Status::Done | Status::Partial | Status::Failed | Status::Canceled
    )
}

#[test]
fn start_without_analyse_runs_to_done_and_charges_each_tile_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let r = engine.create("c", &body(&out, TWO_TILES)).unwrap();
    assert_eq!(r.status, Status::Created);
    assert!(r.tile_count >= 1);
    engine.act("c", &r.id, Event::Start).unwrap();
    let p = wait_for(&engine, &r.id, terminal);
    assert_eq!(p.status, Status::Done);

    let tiles = engine.tiles("c", &r.id, None, 0, 100).unwrap().items;
    assert_eq!(tiles.len() as i64, p.tile_count);
    for t in &tiles {
        assert_eq!(t.status, TileStatus::Processed);
        assert!(t.cost > 0.0);
        let file = out.join(&r.id).join(&t.name).join("default.tif");
        assert!(file.is_file(), "{} missing", file.display());
    }
    let pu = engine.store().pu_totals(&r.id).unwrap();
    let costs: f64 = tiles.iter().map(|t| t.cost).sum();
    assert!((pu.charged - costs).abs() < 1e-9);
    // Small requests pay the 100 PU minimum; nothing beyond the reservation.
    assert!((pu.charged + pu.minimum - crate::accounting::MIN_REQUEST_PU).abs() < 1e-6);
    assert!(pu.reserved + 1e-9 >= pu.charged + pu.minimum);
    assert!((pu.reserved - pu.charged - pu.minimum - pu.refunded).abs() < 1e-6);
    let r = engine.get("c", &r.id).unwrap();
    assert!(r.value_estimate.unwrap() > 0.0);
    assert_eq!(r.user_action, UserAction::Start);
}

#[test]
fn a_worker_panic_is_survived_and_the_tile_retried() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Find the tile name first, then restart the engine with the panic hook aimed at it.
    let name = {
        let engine = Engine::start(config(dir.path())).unwrap();
        let r = engine.create("c", &body(&out, SMALL)).unwrap();
        engine.act("c", &r.id, Event::Analyse).unwrap();
        wait_for(&engine, &r.id, |p| p.status == Status::AnalysisDone);
        engine.tiles("c", &r.id, None, 0, 1).unwrap().items[0]
            .name
            .clone()
    };
    let engine = Engine::start(EngineConfig {
        inject_panic_once: Some(name.clone()),
        ..config(dir.path())
    })
    .unwrap();
    let r = engine.create("c", &body(&out, SMALL)).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
    let tiles = engine.tiles("c", &r.id, None, 0, 10).unwrap().items;
    let t = tiles.iter().find(|t| t.name == name).unwrap();
    assert_eq!(
        t.attempts, 2,
        "the first attempt panicked, the second succeeded"
    );
}

#[test]
fn a_failing_tile_gives_partial_then_restartpartial_gives_done() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let r = engine.create("c", &body(&out, TWO_TILES)).unwrap();
    engine.act("c", &r.id, Event::Analyse).unwrap();
    wait_for(&engine, &r.id, |p| p.status == Status::AnalysisDone);
    let tiles = engine.tiles("c", &r.id, None, 0, 10).unwrap().items;
    assert!(
        tiles.len() >= 2,
        "the AOI must give two tiles, got {}",
        tiles.len()
    );
    // A regular file where the tile's folder must go: every write attempt fails.
    std::fs::create_dir_all(out.join(&r.id)).unwrap();
    let blocker = out.join(&r.id).join(&tiles[0].name);
    std::fs::write(&blocker, b"in the way").unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Partial);
    let failed = engine.tile("c", &r.id, tiles[0].id).unwrap();
    assert_eq!((failed.status, failed.attempts), (TileStatus::Failed, 3));
    assert!(failed.error.unwrap_or_default().contains(&tiles[0].name));
    assert!(
        engine.act("c", &r.id, Event::Start).is_err(),
        "START is not allowed in PARTIAL"
    );

    std::fs::remove_file(&blocker).unwrap();
    engine.act("c", &r.id, Event::RestartPartial).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
    assert_eq!(
        engine.get("c", &r.id).unwrap().user_action,
        UserAction::Start
    );
    let pu = engine.store().pu_totals(&r.id).unwrap();
    let costs: f64 = engine
        .tiles("c", &r.id, None, 0, 10)
        .unwrap()
        .items
        .iter()
        .map(|t| t.cost)
        .sum();
    assert!((pu.charged - costs).abs() < 1e-9);
}

#[test]
fn an_interrupted_run_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let id = {
        let engine = Engine::start(config(dir.path())).unwrap();
        let r = engine.create("c", &body(&out, TWO_TILES)).unwrap();
        engine.act("c", &r.id, Event::Analyse).unwrap();
        wait_for(&engine, &r.id, |p| p.status == Status::AnalysisDone);
        r.id
    };
    // What a daemon killed mid-run leaves behind: PROCESSING, one tile in flight.
    {
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut r = store.get_request(None, &id).unwrap().unwrap();
        r.status = Status::Processing;
        store.set_state(&id, &state_of(&r), false, None).unwrap();
        store.reserve(&id, "c", 100.0).unwrap();
        let t = &store.claim_pending(&id, 1).unwrap()[0];
        store
            .set_tile_status(&id, t.id, TileStatus::Processing, 1, None)
            .unwrap();
    }
    let engine = Engine::start(config(dir.path())).unwrap();
    assert_eq!(wait_for(&engine, &id, terminal).status, Status::Done);
    let tiles = engine.tiles("c", &id, None, 0, 10).unwrap().items;
    assert!(tiles.iter().all(|t| t.status == TileStatus::Processed));
    let charges: i64 = engine
        .store()
        .pu_totals(&id)
        .map(|t| (t.charged / tiles[0].cost).round() as i64)
        .unwrap();
    assert_eq!(charges, tiles.len() as i64);
}

#[test]
fn wrong_state_actions_and_deletes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let r = engine.create("c", &body(&out, SMALL)).unwrap();
    let err = engine.act("c", &r.id, Event::RestartPartial).unwrap_err();
    assert!(
        matches!(err, EngineError::Lifecycle(ref l) if l.kind() == ErrorKind::NotAllowed),
        "{err}"
    );
    assert!(matches!(
        engine.act("other", &r.id, Event::Start),
        Err(EngineError::NotFound(_))
    ));
    engine.act("c", &r.id, Event::Start).unwrap();
    wait_for(&engine, &r.id, terminal);
    let err = engine.delete("c", &r.id).unwrap_err();
    assert!(
        matches!(err, EngineError::Lifecycle(ref l) if l.kind() == ErrorKind::Conflict),
        "{err}"
    );

    let r2 = engine.create("c", &body(&out, SMALL)).unwrap();
    engine.act("c", &r2.id, Event::Cancel).unwrap();
    assert_eq!(engine.get("c", &r2.id).unwrap().status, Status::Canceled);
    engine.delete("c", &r2.id).unwrap();
    assert!(matches!(
        engine.get("c", &r2.id),
        Err(EngineError::NotFound(_))
    ));
}

#[test]
fn a_rejected_create_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let mut b = body(&out, SMALL);
    b["tilingGrid"]["resolution"] = json!(60);
    assert!(matches!(
        engine.create("c", &b),
        Err(EngineError::BadRequest(_))
    ));
    assert!(engine
        .list("c", RequestSort::Created, 0, 10)
        .unwrap()
        .items
        .is_empty());
}

#[test]
fn the_janitor_deletes_stale_requests_but_not_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let engine = Engine::start(EngineConfig {
        janitor_interval: Duration::from_millis(50),
        stale: StaleAges {
            failed: Duration::ZERO,
            unstarted: Duration::from_secs(3600),
            finished: Duration::ZERO,
        },
        ..config(dir.path())
    })
    .unwrap();
    let done = engine.create("c", &body(&out, SMALL)).unwrap();
    let fresh = engine.create("c", &body(&out, SMALL)).unwrap();
    engine.act("c", &done.id, Event::Start).unwrap();
    let start = Instant::now();
    while engine.get("c", &done.id).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "DONE request never deleted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        out.join(&done.id).is_dir(),
        "outputs stay when the request is deleted"
    );
    assert!(
        engine.get("c", &fresh.id).is_ok(),
        "a CREATED request younger than its age stays"
    );
}

#[test]
fn analysis_fails_bad_scripts_with_the_reason_in_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let cases = [
        ("//VERSION=3\nfunction setup() { return {input: ['B04'], output: {bands: 1}} }\nfunction evaluatePixel(s) { return [s.B04 +; }", "line 3"),
        ("//VERSION=3\nfunction setup() { return {input: ['B99'], output: {bands: 1}} }\nfunction evaluatePixel(s) { return [1]; }", "B99"),
        ("//VERSION=3\nfunction evaluatePixel(s) { return [1]; }", "setup"),
        ("//VERSION=3\nfunction setup() { return {input: ['B04'], output: [{id: 'a', bands: 1}, {id: 'a', bands: 1}]} }\nfunction evaluatePixel(s) { return {a: [1]}; }", "a"),
        ("//VERSION=3\nfunction setup() { return {input: ['B04'], output: {bands: 1, sampleType: 'UINT12'}} }\nfunction evaluatePixel(s) { return [1]; }", "UINT12"),
    ];
    for (script, needle) in cases {
        let mut b = body(&out, SMALL);
        b["processRequest"]["evalscript"] = json!(script);
        let r = engine.create("c", &b).unwrap();
        engine.act("c", &r.id, Event::Analyse).unwrap();
        let p = wait_for(&engine, &r.id, |p| p.status != Status::Analysing);
        assert_eq!(p.status, Status::Failed, "{script}");
        let error = engine.get("c", &r.id).unwrap().error.unwrap_or_default();
        assert!(
            error.contains(needle),
            "error {error:?} should mention {needle:?}"
        );
        assert_eq!(p.tiles.total(), 0, "a failed analysis stores no tiles");
    }
}

#[test]
fn data_filter_options_reach_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let mut b = body(&out, [15.005, 46.005, 15.02, 46.015]);
    b["processRequest"]["input"]["data"][0]["type"] = json!("tessera-sample");
    b["processRequest"]["input"]["data"][0]["dataFilter"]["mosaickingOrder"] = json!("sideways");
    let err = engine.create("c", &b).unwrap_err().to_string();
    assert!(err.contains("mosaickingOrder"), "{err}");

    // Over the fixture COGs, the newest and the oldest scene give different NDVI.
    let mut outputs = Vec::new();
    for order in ["mostRecent", "leastRecent"] {
        b["processRequest"]["input"]["data"][0]["dataFilter"]["mosaickingOrder"] = json!(order);
        let r = engine.create("c", &b).unwrap();
        engine.act("c", &r.id, Event::Start).unwrap();
        assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
        let t = &engine.tiles("c", &r.id, None, 0, 1).unwrap().items[0];
        outputs.push(std::fs::read(out.join(&r.id).join(&t.name).join("default.tif")).unwrap());
    }
    assert_ne!(
        outputs[0], outputs[1],
        "mosaickingOrder must change which scene is read"
    );
}

#[test]
fn orbit_scripts_get_one_sample_per_scene() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    // Counts the scenes with data at each pixel: the fixture has three June scenes over
    // footprint A and three over the overlapping footprint B.
    let script = "//VERSION=3
function setup() { return {input: ['B04', 'dataMask'], output: {bands: 1, sampleType: 'UINT8'}, mosaicking: 'ORBIT'}; }
function evaluatePixel(samples) { var n = 0; for (var i = 0; i < samples.length; i++) { n += samples[i].dataMask; } return [n]; }";
    let mut b = body(&out, [15.005, 46.005, 15.02, 46.015]);
    b["processRequest"]["input"]["data"][0]["type"] = json!("tessera-sample");
    b["processRequest"]["evalscript"] = json!(script);
    let r = engine.create("c", &b).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
    let t = &engine.tiles("c", &r.id, None, 0, 1).unwrap().items[0];
    let file = std::fs::File::open(out.join(&r.id).join(&t.name).join("default.tif")).unwrap();
    let mut decoder = tiff::decoder::Decoder::new(file).unwrap();
    let tiff::decoder::DecodingResult::U8(counts) = decoder.read_image().unwrap() else {
        panic!("a UINT8 output")
    };
    let seen: std::collections::BTreeSet<u8> = counts.into_iter().collect();
    assert!(
        seen.contains(&0),
        "pixels outside every footprint: {seen:?}"
    );
    assert!(
        seen.contains(&3),
        "pixels covered by one footprint: {seen:?}"
    );
    assert!(
        seen.contains(&6),
        "pixels covered by both footprints: {seen:?}"
    );
    assert!(seen.iter().all(|n| *n <= 6), "{seen:?}");
}

/// The tile's raster, georeference and size, as the worker computes them (no buffer).
fn tile_grid(t: &TileRecord, res: f64) -> (crate::raster::Georef, usize, usize) {
    let georef = crate::raster::Georef {
        epsg: t.epsg,
        x_min: t.x_min,
        y_max: t.y_max,
        res_x: res,
        res_y: res,
    };
    let w = ((t.x_max - t.x_min) / res).round() as usize;
    let h = ((t.y_max - t.y_min) / res).round() as usize;
    (georef, w, h)
}

fn read_f32_tiff(path: &std::path::Path) -> Vec<f32> {
    let file = std::fs::File::open(path).unwrap();
    let mut decoder = tiff::decoder::Decoder::new(file).unwrap();
    match decoder.read_image().unwrap() {
        tiff::decoder::DecodingResult::F32(v) => v,
        _ => panic!("a FLOAT32 output"),
    }
}

#[test]
fn data_fusion_reads_each_datasource_with_its_own_filter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    // The same synthetic collection over two time ranges: its field depends on the day.
    let script = "//VERSION=3
function setup() { return {input: [{datasource: 'june', bands: ['B04']}, {datasource: 'march', bands: ['B04', 'dataMask']}],
  output: {bands: 1, sampleType: 'FLOAT32'}}; }
function evaluatePixel(s) { return [s.june.length === 1 && s.march.length === 1 ? s.june[0].B04 - s.march[0].B04 : -100]; }";
    let mut b = body(&out, SMALL);
    b["processRequest"]["evalscript"] = json!(script);
    b["processRequest"]["input"]["data"] = json!([
        {"id": "june", "type": "tessera-synthetic", "dataFilter": {"timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T00:00:00Z"}}},
        {"id": "march", "type": "tessera-synthetic", "dataFilter": {"timeRange": {"from": "2023-03-01T00:00:00Z", "to": "2023-03-20T00:00:00Z"}}}
    ]);
    let r = engine.create("c", &b).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
    let t = &engine.tiles("c", &r.id, None, 0, 1).unwrap().items[0];
    let got = read_f32_tiff(&out.join(&r.id).join(&t.name).join("default.tif"));

    let (georef, width, height) = tile_grid(t, 20.0);
    let read = |to: &str| {
        let request = crate::data::ReadRequest {
            collection: "tessera-synthetic",
            bands: &["B04".to_string()],
            georef,
            width,
            height,
            day: crate::data::day_of(to).unwrap(),
        };
        crate::data::read_simple(
            &request,
            &crate::data::Filter::default(),
            &crate::data::DataConfig::default(),
        )
        .unwrap()
    };
    let (june, march) = (read("2023-06-30T00:00:00Z"), read("2023-03-20T00:00:00Z"));
    assert_eq!(got.len(), width * height);
    let expected: Vec<f32> = june[0]
        .iter()
        .zip(&march[0])
        .map(|(j, m)| (f64::from(*j) - f64::from(*m)) as f32)
        .collect();
    assert_eq!(got, expected);
    assert!(got.iter().any(|v| *v != 0.0), "the two days must differ");
    // PU: fusion of two SIMPLE datasources counts 2 samples; B04 twice is 2 billable
    // bands (dataMask is free) -> 2/3; FLOAT32 x2.
    let w = width as f64 * height as f64;
    let area = (w / 262_144.0).max(0.01);
    let per_tile = area * (2.0 / 3.0) * 2.0 * 2.0 * if w >= 10_000.0 { 1.0 / 3.0 } else { 1.0 };
    assert!((t.cost - per_tile).abs() < 1e-9, "{} vs {per_tile}", t.cost);
}

#[test]
fn data_fusion_ids_are_checked_by_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let fusion = "//VERSION=3
function setup() { return {input: [{datasource: 'l2a', bands: ['B04']}, {datasource: 's1', bands: ['B08']}], output: {bands: 1}}; }
function evaluatePixel(s) { return [0]; }";
    let plain = "//VERSION=3
function setup() { return {input: ['B04'], output: {bands: 1}}; }
function evaluatePixel(s) { return [0]; }";
    let two = json!([{"id": "l2a", "type": "tessera-synthetic"}, {"id": "l1c", "type": "tessera-sample"}]);
    for (script, data, needle) in [
        (fusion, two.clone(), "datasource 's1'"),
        (plain, two.clone(), "names none"),
    ] {
        let mut b = body(&out, SMALL);
        b["processRequest"]["evalscript"] = json!(script);
        b["processRequest"]["input"]["data"] = data;
        let r = engine.create("c", &b).unwrap();
        engine.act("c", &r.id, Event::Analyse).unwrap();
        let p = wait_for(&engine, &r.id, |p| p.status != Status::Analysing);
        assert_eq!(p.status, Status::Failed);
        let error = engine.get("c", &r.id).unwrap().error.unwrap_or_default();
        assert!(
            error.contains(needle),
            "{error:?} should mention {needle:?}"
        );
    }
    // Several collections need ids (refused at create).
    let mut b = body(&out, SMALL);
    b["processRequest"]["input"]["data"] =
        json!([{"type": "tessera-synthetic"}, {"type": "tessera-sample"}]);
    let err = engine.create("c", &b).unwrap_err().to_string();
    assert!(err.contains("data[0].id is required"), "{err}");
}

#[test]
fn userdata_json_is_written_next_to_the_raster() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let mut b = body(&out, [15.005, 46.005, 15.02, 46.015]);
    b["processRequest"]["input"]["data"][0]["type"] = json!("tessera-sample");
    b["processRequest"]["evalscript"] = json!(include_str!("../../evalscripts/orbit_userdata.js"));
    b["processRequest"]["output"]["responses"] = json!([
        {"identifier": "default", "format": {"type": "image/tiff"}},
        {"identifier": "userdata", "format": {"type": "application/json"}}
    ]);
    let r = engine.create("c", &b).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
    let t = &engine.tiles("c", &r.id, None, 0, 1).unwrap().items[0];
    let dir_out = out.join(&r.id).join(&t.name);
    assert!(dir_out.join("default.tif").is_file());
    let text = std::fs::read_to_string(dir_out.join("userdata.json")).unwrap();
    let user: Value = serde_json::from_str(&text).unwrap();
    // The fixture's June 2023 scenes over this tile: three dates per footprint, each a
    // scene of its own (ORBIT per scene here), all in June 2023, newest first.
    let dates: Vec<&str> = user["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(user["orbits"].as_u64().unwrap() as usize, dates.len());
    assert!(!dates.is_empty());
    assert!(dates.iter().all(|d| d.starts_with("2023-06-")), "{dates:?}");
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "mostRecent order");
    // Charged for the scenes used: UINT8, 1 band, `dates.len()` samples.
    let (_, width, height) = tile_grid(t, 20.0);
    let px = width as f64 * height as f64;
    let expected = (px / 262_144.0).max(0.01) / 3.0
        * dates.len() as f64
        * if px >= 10_000.0 { 1.0 / 3.0 } else { 1.0 };
    assert!((t.cost - expected).abs() < 1e-9, "{} vs {expected}", t.cost);
    // The estimate assumed one sample every 3 days of the 29-day range: 9.
    let r = engine.get("c", &r.id).unwrap();
    let estimate = (px / 262_144.0).max(0.01) / 3.0 * 9.0;
    assert!(
        (r.value_estimate.unwrap() - estimate * p_tiles(&engine, &r.id) as f64).abs() < 1e-6,
        "{:?}",
        r.value_estimate
    );
}

fn p_tiles(engine: &Engine, id: &str) -> i64 {
    engine.progress("c", id).unwrap().tile_count
}

#[test]
fn a_runaway_allocation_fails_its_tile_and_the_engine_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let mut b = body(&out, SMALL);
    b["processRequest"]["evalscript"] = json!(
        "//VERSION=3
function setup() { return {input: ['B04'], output: {bands: 1}}; }
function evaluatePixel(s) { var big = 'x'.repeat(4e9); return [s.B04]; }"
    );
    let r = engine.create("c", &b).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    let p = wait_for(&engine, &r.id, terminal);
    assert_ne!(p.status, Status::Done);
    let t = &engine.tiles("c", &r.id, None, 0, 1).unwrap().items[0];
    let error = t.error.clone().unwrap_or_default();
    assert!(error.contains("memory limit"), "{error}");
    // The same workers then run a normal request.
    let r = engine.create("c", &body(&out, SMALL)).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
}

#[test]
fn analysis_refuses_existence_checks_over_5000_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    // About 150 x 110 grid-1 tiles of 10 km: well over 5000 files, one per tile.
    let big = [5.0, 45.0, 25.0, 55.0];
    let analysed = |template: String| {
        let mut b = body(&out, big);
        b["output"] = json!({"defaultTilePath": template, "skipExisting": true});
        let r = engine.create("c", &b).unwrap();
        engine.act("c", &r.id, Event::Analyse).unwrap();
        let p = wait_for(&engine, &r.id, |p| p.status != Status::Analysing);
        (p, engine.get("c", &r.id).unwrap().error.unwrap_or_default())
    };
    let fixed = format!("{}/<tileName>/<outputId>.<format>", out.display());
    let (p, error) = analysed(fixed);
    assert_eq!(p.status, Status::Failed);
    assert!(
        error.contains("5000") && error.contains("<requestId>"),
        "{error}"
    );
    // A request-unique path needs no existence check, so the same job is analysed.
    let unique = format!(
        "{}/<requestId>/<tileName>/<outputId>.<format>",
        out.display()
    );
    let (p, error) = analysed(unique);
    assert_eq!(p.status, Status::AnalysisDone, "{error}");
    assert!(p.tiles.total() > 5000);
}

#[test]
fn existing_outputs_fail_the_analysis_before_any_pu_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    // No <requestId>: every run of this body targets the same files.
    let fixed = format!(
        "{}/<tileName>/<outputId>.<format>",
        dir.path().join("fixed").display()
    );
    let run = |flags: Value| {
        let mut b = body(dir.path(), SMALL);
        b["output"] = json!({"defaultTilePath": fixed});
        for (k, v) in flags.as_object().unwrap() {
            b["output"][k] = v.clone();
        }
        let r = engine.create("c", &b).unwrap();
        engine.act("c", &r.id, Event::Start).unwrap();
        let p = wait_for(&engine, &r.id, terminal);
        (p, engine.get("c", &r.id).unwrap())
    };
    let (p, _) = run(json!({}));
    assert_eq!(p.status, Status::Done);
    let (p, record) = run(json!({}));
    assert_eq!(p.status, Status::Failed);
    let error = record.error.unwrap_or_default();
    assert!(error.contains("already exist"), "{error}");
    assert_eq!(p.tiles.total(), 0, "the analysis failed: no tiles stored");
    // With skipExisting the tile whose outputs all exist is skipped, not a failure.
    let (p, _) = run(json!({"skipExisting": true}));
    assert_eq!(p.status, Status::Done);
}

const SPIN: &str = "//VERSION=3
function setup() { return {input: ['B04'], output: {bands: 1}}; }
function f(n) { return n <= 0 ? 1 : f(n - 1) + f(n - 1); }
function evaluatePixel(s) { return [f(60)]; }";

#[test]
fn cancel_ends_spinning_tiles_in_process_and_frees_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).unwrap();
    let out = dir.path().join("out");
    let mut b = body(&out, TWO_TILES);
    b["processRequest"]["evalscript"] = json!(SPIN);
    let r = engine.create("c", &b).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    wait_for(&engine, &r.id, |p| p.tiles.in_flight > 0);
    std::thread::sleep(Duration::from_millis(300));
    let cancelled = Instant::now();
    engine.act("c", &r.id, Event::Cancel).unwrap();
    wait_for(&engine, &r.id, |p| p.tiles.in_flight == 0);
    // The 600 s tile budget did not end them: the cancel did, at the next tick.
    assert!(cancelled.elapsed() < Duration::from_secs(10));
    // Both workers are free again.
    let r = engine.create("c", &body(&out, SMALL)).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    assert_eq!(wait_for(&engine, &r.id, terminal).status, Status::Done);
}

#[test]
fn another_clients_tile_runs_while_one_client_holds_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(EngineConfig {
        tile_time_budget: Duration::from_secs(3),
        ..config(dir.path())
    })
    .unwrap();
    let out = dir.path().join("out");
    let mut hog = body(&out, TWO_TILES);
    hog["processRequest"]["evalscript"] = json!(SPIN);
    hog["output"]["defaultTilePath"] = json!(dir.path().join("hog").to_str().unwrap());
    let h = engine.create("hog", &hog).unwrap();
    engine.act("hog", &h.id, Event::Start).unwrap();
    let started = Instant::now();
    while engine.progress("hog", &h.id).unwrap().tiles.in_flight < 2 {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each hog tile spins 3 s per attempt, 3 attempts: "c"'s tile takes the first worker
    // that frees, ahead of the hog's retries, and is done while the hog still runs.
    let r = engine.create("c", &body(&out, SMALL)).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    let p = wait_for(&engine, &r.id, terminal);
    assert_eq!(p.status, Status::Done);
    assert_eq!(
        engine.progress("hog", &h.id).unwrap().status,
        Status::Processing
    );
    engine.act("hog", &h.id, Event::Cancel).unwrap();
}
