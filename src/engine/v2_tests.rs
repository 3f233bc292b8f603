//! The v2 face of the engine end to end: a real SQLite file, outputs on the local `s3://`
//! stand-in (no S3 configured), so no credentials in these bodies.

use std::time::{Duration, Instant};

use serde_json::json;

use super::super::lifecycle::{Event, LifecycleError, Status};
use super::super::{Engine, EngineConfig, EngineError};

const NDVI: &str = include_str!("../../evalscripts/ndvi.js");
const NINE_TILES: [f64; 4] = [15.161, 45.716, 15.482, 45.94];

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        db_path: dir.join("t.db"),
        data_dir: dir.join("data"),
        workers: 1,
        // These tests are about STOP; the stand-in bucket needs no grant here.
        outputs: crate::engine::OutputPolicy::unconfined(),
        ..EngineConfig::default()
    }
}

fn body(bbox: [f64; 4]) -> serde_json::Value {
    json!({
        "processRequest": {
            "input": {
                "bounds": {"bbox": bbox, "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}},
                "data": [{"type": "tessera-synthetic", "dataFilter": {"timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T00:00:00Z"}}}]
            },
            "evalscript": NDVI,
            "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]}
        },
        "input": {"type": "tiling-grid", "id": 1, "resolution": 20},
        "output": {"type": "raster", "delivery": {"s3": {"url": "s3://b/out/<requestId>/<tileName>/<outputId>.<format>"}}},
        "instanceType": "normal"
    })
}

fn wait_status(engine: &Engine, id: &str, want: Status) {
    let start = Instant::now();
    loop {
        let t = engine.get_task("c", id).unwrap();
        if t.record.status == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out at {:?}",
            t.record.status
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stop_survives_a_restart_of_the_engine_and_start_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let standin = dir.path().join("data/s3/b/out");
    let id = {
        let engine = Engine::start(config(dir.path())).unwrap();
        let r = engine.create_v2("c", &body(NINE_TILES)).unwrap();
        // The request JSON is in the bucket from the start.
        let sent: serde_json::Value = serde_json::from_slice(
            &std::fs::read(standin.join(format!("request-{}.json", r.id))).unwrap(),
        )
        .unwrap();
        assert_eq!(sent["input"]["type"], "tiling-grid");
        engine.act("c", &r.id, Event::Start).unwrap();
        engine.act("c", &r.id, Event::Stop).unwrap();
        wait_status(&engine, &r.id, Status::Stopped);
        let t = engine.get_task("c", &r.id).unwrap().json();
        assert_eq!(t["status"], "STOPPED");
        assert_eq!(t["stoppedStatusReason"], "USER_ACTION");
        assert!(t["completionPercentage"].as_f64().unwrap() < 100.0);
        // A second STOP is refused; a v1 restartpartial too.
        assert!(matches!(
            engine.act("c", &r.id, Event::Stop),
            Err(EngineError::Lifecycle(LifecycleError::NotAllowed { .. }))
        ));
        r.id
    };
    // A new engine on the same store: still STOPPED, and START carries on.
    let engine = Engine::start(config(dir.path())).unwrap();
    assert_eq!(engine.get("c", &id).unwrap().status, Status::Stopped);
    engine.act("c", &id, Event::Start).unwrap();
    wait_status(&engine, &id, Status::Done);
    let t = engine.get_task("c", &id).unwrap();
    assert_eq!(t.json()["completionPercentage"], 100.0);
    assert_eq!(t.progress.processed, t.record.tile_count as u64);
    assert!(t.progress.cost_pu > 0.0);
    for tile in engine.tiles("c", &id, None, 0, 100).unwrap().items {
        assert!(standin
            .join(&id)
            .join(&tile.name)
            .join("default.tif")
            .is_file());
    }
    assert!(standin.join(format!("featureManifest-{id}.gpkg")).is_file());
    // The execution database ends with every feature DONE (it is written in the background).
    let exec = standin.join(format!("execution-{id}.sqlite"));
    let start = Instant::now();
    loop {
        let done = rusqlite::Connection::open(&exec)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM features WHERE status != 'DONE' OR NOT delivered",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 0);
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "execution database not final"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stopped_request_waits_for_the_restart_delay() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(EngineConfig {
        restart_delay: Duration::from_secs(3600),
        ..config(dir.path())
    })
    .unwrap();
    let r = engine
        .create_v2("c", &body([15.161, 45.887, 15.238, 45.95]))
        .unwrap();
    engine.act("c", &r.id, Event::Analyse).unwrap();
    wait_status(&engine, &r.id, Status::AnalysisDone);
    engine.act("c", &r.id, Event::Stop).unwrap();
    assert_eq!(engine.get("c", &r.id).unwrap().status, Status::Stopped);
    match engine.act("c", &r.id, Event::Start) {
        Err(EngineError::Lifecycle(LifecycleError::RestartTooEarly {
            delay_secs,
            remaining_secs,
        })) => {
            assert_eq!(delay_secs, 3600);
            assert!(
                remaining_secs > 3500 && remaining_secs <= 3600,
                "{remaining_secs}"
            );
        }
        other => panic!("expected RestartTooEarly, got {other:?}"),
    }
    assert_eq!(engine.get("c", &r.id).unwrap().status, Status::Stopped);
}
