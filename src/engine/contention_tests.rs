//! The engine under database contention: a write lock held longer than the busy timeout
//! must delay tile results, never lose them (issue 13 row 3: a written output whose
//! "recording tile: database is locked" was dropped left its request PROCESSING forever).

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

#[test]
fn tile_results_are_recorded_after_a_long_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(EngineConfig {
        db_path: dir.path().join("t.db"),
        data_dir: dir.path().join("data"),
        workers: 2,
        // The test writes to its temp dir: an operator's choice, not a tenant's.
        outputs: OutputPolicy::unconfined(),
        ..EngineConfig::default()
    })
    .unwrap();
    let out = dir.path().join("out");
    let body = json!({
        "processRequest": {
            "input": {
                "bounds": {"bbox": [15.12, 46.01, 15.14, 46.02]},
                "data": [{"type": "tessera-synthetic", "dataFilter": {"timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T00:00:00Z"}}}]
            },
            "evalscript": include_str!("../../evalscripts/ndvi.js"),
        },
        "tilingGrid": {"id": 1, "resolution": 20},
        "output": {"defaultTilePath": out.to_str().unwrap()}
    });
    let r = engine.create("c", &body).unwrap();
    engine.act("c", &r.id, Event::Analyse).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.get("c", &r.id).unwrap().status != Status::AnalysisDone {
        assert!(Instant::now() < deadline, "analysis did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another writer holds the lock for longer than the 10 s busy timeout while the
    // tiles are processed: every result commit fails at least once.
    let blocker = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    engine.act("c", &r.id, Event::Start).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_secs(12));
    blocker.execute_batch("COMMIT").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let p = loop {
        let p = engine.progress("c", &r.id).unwrap();
        if matches!(p.status, Status::Done | Status::Partial | Status::Failed) {
            break p;
        }
        assert!(Instant::now() < deadline, "request stuck at {p:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(p.status, Status::Done, "{p:?}");
    let tiles = engine.tiles("c", &r.id, None, 0, 100).unwrap().items;
    assert!(!tiles.is_empty());
    for t in &tiles {
        assert_eq!(t.status, TileStatus::Processed, "{t:?}");
        assert!(out.join(&r.id).join(&t.name).join("default.tif").is_file());
    }
    let totals = engine.store().pu_totals(&r.id).unwrap();
    let charged: f64 = tiles.iter().map(|t| t.cost).sum();
    assert!(
        (totals.charged - charged).abs() < 1e-9,
        "each tile charged once"
    );
}
