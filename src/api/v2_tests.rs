use serde_json::{json, Value};

use super::*;
use crate::engine::lifecycle::{Status, UserAction};

fn process_request() -> Value {
    json!({
        "input": {
            "bounds": {"properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
                       "bbox": [15.161, 45.887, 15.238, 45.95]},
            "data": [{"type": "tessera-synthetic",
                      "dataFilter": {"timeRange": {"from": "2023-06-01T00:00:00Z", "to": "2023-06-30T23:59:59Z"}}}]
        },
        "evalscript": "//VERSION=3\nfunction setup(){return {input:['B04'],output:{bands:1}}}\nfunction evaluatePixel(s){return [s.B04]}",
        "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]}
    })
}

/// The body `BatchProcessClient.create(..., tiling_grid_input, raster_output(s3_specification(...)))` sends.
fn client_body() -> Value {
    json!({
        "processRequest": process_request(),
        "input": {"type": "tiling-grid", "id": 1, "resolution": 20, "bufferX": 5, "bufferY": 7},
        "output": {
            "type": "raster",
            "delivery": {"s3": {"url": "s3://bucket/out/<requestId>/<tileName>/<outputId>.<format>",
                                "accessKey": "AKIAEXAMPLE", "secretAccessKey": "s3cr3t-value",
                                "region": "eu-central-1"}},
            "skipExisting": true,
            "cogOutput": true
        },
        "instanceType": "normal",
        "description": "probe v2"
    })
}

/// A change to a good body and a word the error must contain.
type Case = (Box<dyn Fn(&mut Value)>, &'static str);

fn record(body: Map<String, Value>, status: Status, user_action: UserAction) -> RequestRecord {
    RequestRecord {
        id: "6f1d3f9e-0000-4000-8000-000000000001".into(),
        client_id: "client-a".into(),
        created: "2026-12-07T17:00:00.000Z".into(),
        body,
        status,
        user_action,
        user_action_updated: None,
        start_when_analysed: false,
        cancel_when_analysed: false,
        tile_count: 4,
        tile_width_px: 500,
        tile_height_px: 500,
        value_estimate: None,
        error: None,
    }
}

#[test]
fn every_engine_status_has_an_explicit_v2_status() {
    let want = [
        (Status::Created, "CREATED"),
        (Status::Analysing, "ANALYSING"),
        (Status::AnalysisDone, "ANALYSIS_DONE"),
        (Status::Processing, "PROCESSING"),
        (Status::Done, "DONE"),
        (Status::Partial, "DONE"),
        (Status::Failed, "FAILED"),
        (Status::Canceled, "STOPPED"),
        (Status::Stopped, "STOPPED"),
    ];
    assert_eq!(
        want.len(),
        Status::ALL.len(),
        "a new engine status needs a row"
    );
    let v2_enum = [
        "CREATED",
        "ANALYSING",
        "ANALYSIS_DONE",
        "PROCESSING",
        "DONE",
        "FAILED",
        "STOPPED",
    ];
    for (status, v2) in want {
        assert_eq!(task_status(status), v2, "{status}");
        assert!(v2_enum.contains(&task_status(status)));
    }
    for status in Status::ALL {
        assert!(
            want.iter().any(|(s, _)| *s == status),
            "{status} has no row"
        );
    }
}

#[test]
fn every_user_action_has_an_explicit_v2_action() {
    let want = [
        (UserAction::None, "NONE"),
        (UserAction::Analyse, "ANALYSE"),
        (UserAction::Start, "START"),
        (UserAction::Cancel, "STOP"),
        (UserAction::Stop, "STOP"),
    ];
    assert_eq!(want.len(), UserAction::ALL.len());
    for (action, v2) in want {
        assert_eq!(task_user_action(action), v2, "{action}");
        assert!(["START", "ANALYSE", "STOP", "NONE"].contains(&v2));
    }
}

#[test]
fn stopped_reason_only_for_stopped_tasks() {
    for status in Status::ALL {
        let reason = stopped_reason(status);
        assert_eq!(
            reason.is_some(),
            task_status(status) == "STOPPED",
            "{status}"
        );
        if let Some(r) = reason {
            assert_eq!(r, "USER_ACTION");
        }
    }
}

#[test]
fn no_v2_task_carries_a_value_3_12_rejects() {
    let body = normalise_create(&client_body()).unwrap().body;
    for status in Status::ALL {
        for action in UserAction::ALL {
            let t = task_json(
                &record(body.clone(), status, action),
                &TaskProgress::default(),
            );
            let text = t.to_string();
            for banned in ["\"PARTIAL\"", "\"CANCELED\"", "\"CANCEL\"", "\"RESTART\""] {
                assert!(!text.contains(banned), "{status} {action}: {text}");
            }
            for key in ["id", "request", "domainAccountId", "status"] {
                assert!(t.get(key).is_some(), "{key} missing: {text}");
            }
        }
    }
}

#[test]
fn credentials_are_taken_out_of_the_body() {
    let n = normalise_create(&client_body()).unwrap();
    let creds = n.credentials.clone().unwrap();
    assert_eq!(creds.access_key, "AKIAEXAMPLE");
    assert_eq!(creds.secret_access_key, "s3cr3t-value");
    assert_eq!(creds.region.as_deref(), Some("eu-central-1"));
    let stored = Value::Object(n.body.clone()).to_string();
    assert!(!stored.contains("AKIAEXAMPLE") && !stored.contains("s3cr3t-value"));
    assert_eq!(
        n.body["output"]["delivery"]["s3"],
        json!({"url": "s3://bucket/out/<requestId>/<tileName>/<outputId>.<format>", "region": "eu-central-1"})
    );
    // Debug output never shows them either.
    let debug = format!("{n:?}");
    assert!(
        !debug.contains("AKIAEXAMPLE") && !debug.contains("s3cr3t-value"),
        "{debug}"
    );
    // And the task echoes the body without them.
    let t = task_json(
        &record(n.body, Status::Created, UserAction::None),
        &TaskProgress::default(),
    );
    assert!(!t.to_string().contains("s3cr3t-value"));
    assert_eq!(t["request"]["description"], "probe v2");
    assert_eq!(t["request"]["input"]["bufferY"], 7);
}

#[test]
fn a_body_without_credentials_uses_the_servers() {
    let mut body = client_body();
    let s3 = body["output"]["delivery"]["s3"].as_object_mut().unwrap();
    s3.remove("accessKey");
    s3.remove("secretAccessKey");
    let n = normalise_create(&body).unwrap();
    assert!(n.credentials.is_none());
}

#[test]
fn bad_bodies_are_refused_with_a_reason() {
    let cases: Vec<Case> = vec![
        (Box::new(|b| *b = json!([1])), "JSON object"),
        (
            Box::new(|b| {
                b["output"]["delivery"]["s3"]
                    .as_object_mut()
                    .unwrap()
                    .remove("secretAccessKey");
            }),
            "both accessKey and secretAccessKey",
        ),
        (
            Box::new(|b| b["output"]["delivery"]["s3"]["accessKey"] = json!(7)),
            "accessKey must be a non-empty string",
        ),
        (
            Box::new(|b| {
                b["output"]["delivery"]["s3"]["iamRoleARN"] = json!("arn:aws:iam::1:role/x")
            }),
            "iamRoleARN",
        ),
        (
            Box::new(|b| b["output"]["delivery"]["s3"]["url"] = json!("")),
            "url must be a non-empty string",
        ),
        (
            Box::new(|b| {
                b["output"].as_object_mut().unwrap().remove("delivery");
            }),
            "output.delivery.s3 is required",
        ),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("output");
            }),
            "output is required",
        ),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("input");
            }),
            "input is required",
        ),
        (
            Box::new(|b| b["input"]["type"] = json!("tiles")),
            "input.type must be",
        ),
        (
            Box::new(|b| b["instanceType"] = json!("huge")),
            "instanceType",
        ),
        (
            Box::new(|b| b["description"] = json!(5)),
            "description must be a string",
        ),
        (
            Box::new(|b| b["tilingGrid"] = json!({"id": 1, "resolution": 10})),
            "Batch v1 field",
        ),
        (
            Box::new(|b| b["bucketName"] = json!("b")),
            "output.delivery.s3.url",
        ),
    ];
    for (mutate, needle) in cases {
        let mut body = client_body();
        mutate(&mut body);
        let err = normalise_create(&body)
            .and_then(|n| validate(&n.body).map(|_| ()))
            .expect_err(needle)
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }
}

#[test]
fn spec_checks_reach_v2_bodies_through_the_v1_model() {
    let cases: Vec<Case> = vec![
        (Box::new(|b| b["input"]["id"] = json!(99)), "grid"),
        (Box::new(|b| b["input"]["bufferX"] = json!(-1)), "bufferX"),
        (
            Box::new(|b| b["output"]["type"] = json!("zarr")),
            "only the <requestId> placeholder",
        ),
        (
            Box::new(|b| {
                b["input"] = json!({"type": "tiling-grid", "id": 1, "resolution": 20});
                b["output"] =
                    json!({"type": "zarr", "delivery": {"s3": {"url": "s3://b/<requestId>"}}})
            }),
            "zarr/array",
        ),
        (
            Box::new(|b| {
                b["input"] = json!({"type": "tiling-grid", "id": 1, "resolution": 20});
                b["output"] = json!({"type": "zarr", "delivery": {"s3": {"url": "s3://b/z"}},
                                     "group": {"zarr_format": 3}})
            }),
            "zarr_format must be 2",
        ),
        (
            Box::new(|b| {
                b["processRequest"]["output"]["responses"][0]["format"]["type"] =
                    json!("zarr/array");
                b["output"] = json!({"type": "zarr", "delivery": {"s3": {"url": "s3://b/z"}}});
            }),
            "bufferX must be 0",
        ),
        (
            Box::new(|b| b["output"]["type"] = json!("png")),
            "output.type must be",
        ),
        (
            Box::new(|b| b["processRequest"]["input"]["data"][0]["type"] = json!("nope")),
            "unknown collection",
        ),
        (
            Box::new(|b| {
                b["input"] =
                    json!({"type": "geopackage", "features": {"s3": {"url": "s3://b/f.gpkg"}}})
            }),
            "geopackage",
        ),
    ];
    for (mutate, needle) in cases {
        let mut body = client_body();
        mutate(&mut body);
        let err = normalise_create(&body)
            .and_then(|n| validate(&n.body).map(|_| ()))
            .expect_err(needle)
            .to_string();
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{needle}: {err}"
        );
    }
}

#[test]
fn a_v2_body_runs_as_its_v1_equivalent() {
    let n = normalise_create(&client_body()).unwrap();
    let spec = validate(&n.body).unwrap();
    let v1 = crate::api::normalise_create(&json!({
        "processRequest": process_request(),
        "tilingGrid": {"id": 1, "resolution": 20, "bufferX": 5, "bufferY": 7},
        "output": {"defaultTilePath": "s3://bucket/out/<requestId>/<tileName>/<outputId>.<format>",
                   "skipExisting": true, "cogOutput": true}
    }))
    .unwrap();
    let want = crate::api::validate(&v1).unwrap();
    assert_eq!(spec.tile_path, want.tile_path);
    assert_eq!(spec.tiling, want.tiling);
    assert_eq!(spec.responses, want.responses);
    assert_eq!(format!("{:?}", spec.output), format!("{:?}", want.output));
    // The dispatch on stored bodies picks the right model for each.
    assert_eq!(validate_stored(&n.body).unwrap().tile_path, want.tile_path);
    assert_eq!(validate_stored(&v1).unwrap().tile_path, want.tile_path);
    assert!(is_v2_body(&n.body) && !is_v2_body(&v1));
}

#[test]
fn a_zarr_body_keeps_its_store_apart_from_the_raster_checks() {
    let mut body = client_body();
    body["input"] = json!({"type": "tiling-grid", "id": 1, "resolution": 20});
    body["processRequest"]["output"]["responses"][0]["format"]["type"] = json!("zarr/array");
    body["output"] = json!({
        "type": "zarr",
        "delivery": {"s3": {"url": "s3://b/zarr/<requestId>/", "accessKey": "k", "secretAccessKey": "s"}},
        "group": {"zarr_format": 2, "customAttributes": {"a": 1}},
        "arrayParameter": {"dtype": "<f4"},
        "arrayOverrides": {"default": {"fill_value": "NaN"}}
    });
    let n = normalise_create(&body).unwrap();
    assert!(n.credentials.is_some());
    let spec = validate(&n.body).unwrap();
    let z = spec.zarr.unwrap();
    assert_eq!(z.root_of("r1"), "s3://b/zarr/r1");
    assert_eq!(z.custom_attributes, json!({"a": 1}).as_object().cloned());
    assert_eq!(
        z.array_parameters,
        json!({"dtype": "<f4"}).as_object().cloned()
    );
    assert!(z.array_overrides.is_some());
    // No v1 equivalent: a v1 client reads the v2 body as stored.
    let v1 = crate::api::request_json(&record(n.body.clone(), Status::Created, UserAction::None));
    assert_eq!(v1["output"]["type"], "zarr");
}

#[test]
fn a_v1_request_reads_as_a_v2_task_and_back() {
    let v1 = crate::api::normalise_create(&json!({
        "processRequest": process_request(),
        "tilingGrid": {"id": 1, "resolution": 20},
        "output": {"defaultTilePath": "s3://b/<tileName>.tif", "overwrite": true},
        "description": "from v1"
    }))
    .unwrap();
    let v2 = from_v1_body(&v1);
    assert_eq!(
        v2["input"],
        json!({"type": "tiling-grid", "id": 1, "resolution": 20, "bufferX": 0, "bufferY": 0})
    );
    assert_eq!(
        v2["output"],
        json!({"type": "raster", "delivery": {"s3": {"url": "s3://b/<tileName>.tif"}}, "overwrite": true})
    );
    assert_eq!(v2["description"], "from v1");
    // Its v1 equivalent is the v1 body it came from.
    let back = crate::api::normalise_create(&Value::Object(to_v1_body(&v2).unwrap())).unwrap();
    assert_eq!(back, v1);
    // bucketName requests read with the bucket's default layout.
    let b = from_v1_body(
        &crate::api::normalise_create(&json!({
            "processRequest": process_request(),
            "tilingGrid": {"id": 1, "resolution": 20},
            "bucketName": "results"
        }))
        .unwrap(),
    );
    assert_eq!(b["output"]["delivery"]["s3"]["url"], "s3://results");
}

#[test]
fn v1_clients_read_a_v2_request_as_its_v1_equivalent() {
    let n = normalise_create(&client_body()).unwrap();
    let v1 = crate::api::request_json(&record(n.body, Status::Stopped, UserAction::Stop));
    assert_eq!(
        v1["tilingGrid"],
        json!({"id": 1, "resolution": 20, "bufferX": 5, "bufferY": 7})
    );
    assert_eq!(
        v1["output"]["defaultTilePath"],
        "s3://bucket/out/<requestId>/<tileName>/<outputId>.<format>"
    );
    assert_eq!(v1["status"], "STOPPED");
    assert_eq!(v1["userAction"], "STOP");
    assert!(v1.get("processRequest").is_some() && v1.get("tileCount").is_some());
}

#[test]
fn completion_is_finished_tiles_over_all_tiles() {
    let p = |processed, failed| TaskProgress {
        processed,
        failed,
        ..TaskProgress::default()
    };
    assert_eq!(completion_percentage(Status::Processing, 4, &p(0, 0)), 0.0);
    assert_eq!(completion_percentage(Status::Processing, 4, &p(1, 0)), 25.0);
    assert_eq!(completion_percentage(Status::Processing, 4, &p(1, 1)), 50.0);
    assert_eq!(completion_percentage(Status::Partial, 4, &p(3, 1)), 100.0);
    // 2 of 3 is 66.66, never rounded up to a false 66.67 or 100.
    assert_eq!(
        completion_percentage(Status::Processing, 3, &p(2, 0)),
        66.66
    );
    assert_eq!(
        completion_percentage(Status::Processing, 1_000_000, &p(999_999, 0)),
        99.99
    );
    // Counts beyond the total (a stale tile count) cap at 100.
    assert_eq!(
        completion_percentage(Status::Processing, 2, &p(3, 0)),
        100.0
    );
    assert_eq!(completion_percentage(Status::Done, 0, &p(0, 0)), 100.0);
    assert_eq!(completion_percentage(Status::Created, 0, &p(0, 0)), 0.0);
}

#[test]
fn the_task_object_has_what_3_12_reads() {
    let n = normalise_create(&client_body()).unwrap();
    let mut r = record(n.body, Status::Partial, UserAction::Start);
    r.user_action_updated = Some("2026-12-07T17:01:00.000Z".into());
    let progress = TaskProgress {
        processed: 3,
        failed: 1,
        cost_pu: 1.5,
        last_updated: Some("2026-12-07T17:02:00.000Z".into()),
    };
    let t = task_json(&r, &progress);
    assert_eq!(t["id"], r.id.as_str());
    assert_eq!(t["domainAccountId"], "client-a");
    assert_eq!(t["status"], "DONE");
    assert_eq!(t["userAction"], "START");
    assert_eq!(t["userActionUpdated"], "2026-12-07T17:01:00.000Z");
    assert_eq!(t["created"], "2026-12-07T17:00:00.000Z");
    assert_eq!(t["lastUpdated"], "2026-12-07T17:02:00.000Z");
    assert_eq!(t["completionPercentage"], 100.0);
    assert_eq!(t["costPU"], 1.5);
    assert_eq!(t["error"], "1 of 4 tiles failed");
    assert!(t.get("stoppedStatusReason").is_none());
    let stopped = task_json(
        &record(r.body.clone(), Status::Stopped, UserAction::Stop),
        &progress,
    );
    assert_eq!(stopped["stoppedStatusReason"], "USER_ACTION");
    assert!(stopped.get("error").is_none());
}

#[test]
fn updates_change_only_the_description() {
    assert!(validate_update(&json!({"description": "x"})).is_ok());
    assert!(validate_update(&json!({"description": null})).is_ok());
    let e = validate_update(&json!({"output": {}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("only description"), "{e}");
    assert!(validate_update(&json!({"description": 3})).is_err());
    assert!(validate_update(&json!("x")).is_err());
}
