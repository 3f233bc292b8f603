//! The output parts of create and PUT validation (issue 12): identifiers are file-name
//! segments, templates are well-formed for every expansion, and a PUT cannot move outputs.

use serde_json::{json, Value};

use super::*;

fn body(output: Value, responses: Value) -> Map<String, Value> {
    let b = json!({
        "processRequest": {
            "input": {
                "bounds": {"bbox": [15.01, 46.01, 15.02, 46.02]},
                "data": [{"type": "tessera-synthetic"}]
            },
            "evalscript": "//VERSION=3\nfunction setup(){}",
            "output": {"responses": responses}
        },
        "tilingGrid": {"id": 1, "resolution": 20},
        "output": output
    });
    normalise_create(&b).unwrap()
}

fn tiff(id: &str) -> Value {
    json!([{"identifier": id, "format": {"type": "image/tiff"}}])
}

fn message(result: Result<BatchSpec, ApiError>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(spec) => panic!("accepted: {}", spec.tile_path),
    }
}

#[test]
fn output_identifiers_must_be_one_path_segment() {
    for id in [
        "../x", "a/b", "..", ".", "a\\b", "a\0", "a\nb", "%2e%2e", "",
    ] {
        let m = message(validate(&body(json!({"defaultTilePath": "out"}), tiff(id))));
        assert!(m.contains("cannot name a file"), "{id:?}: {m}");
    }
    let ok = validate(&body(
        json!({"defaultTilePath": "out"}),
        tiff("my-output_2"),
    ));
    assert!(ok.is_ok());
}

#[test]
fn templates_are_refused_at_create_when_an_expansion_would_be() {
    for (path, needle) in [
        ("out//x", "empty"),
        ("s3://b//tmp/x", "empty"),
        ("file:///a/%2e%2e/b", "%2e"),
        ("out/%2f/x", "%2f"),
        ("out\n/x", "U+000A"),
        ("s3://b<tileName>/x", "bucket"),
        ("out/<tileName>/", "file name"),
    ] {
        let m = message(validate(&body(
            json!({"defaultTilePath": path}),
            tiff("default"),
        )));
        assert!(m.contains("invalid output location"), "{path:?}: {m}");
        assert!(m.contains(needle), "{path:?}: {m}");
    }
    // Well-formed absolute locations pass here: whether the client may write there is the
    // engine's check, which knows the client.
    assert!(validate(&body(
        json!({"defaultTilePath": "/srv/out"}),
        tiff("default")
    ))
    .is_ok());
}

#[test]
fn a_put_cannot_change_the_output_location() {
    for patch in [
        json!({"output": {"defaultTilePath": "/etc"}}),
        json!({"output": {"collectionId": "c", "overwrite": true}}),
        json!({"bucketName": "b"}),
        json!({"output": "s3://b"}),
    ] {
        let m = validate_update(&patch).unwrap_err().to_string();
        assert!(
            m.contains("cannot be updated") || m.contains("object"),
            "{patch}: {m}"
        );
    }
    let patch = validate_update(&json!({"description": "d", "output": {"collectionId": "c"}}));
    assert!(patch.is_ok());
    assert!(validate_update(&json!({"output": null})).is_ok());
}
