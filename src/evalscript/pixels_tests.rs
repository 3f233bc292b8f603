//! `Program::evaluate_json` (`tessera eval --pixels`): values checked by hand.

use serde_json::json;

use super::*;

fn compile(source: &str) -> Program {
    match Program::compile(source) {
        Ok(program) => program,
        Err(err) => panic!("compile failed: {err}\n--- script ---\n{source}"),
    }
}

fn ndvi(sample_type: &str) -> String {
    format!(
        "//VERSION=3
function setup() {{
  return {{ input: [\"B04\", \"B08\"], output: {{ bands: 1, sampleType: \"{sample_type}\" }} }};
}}
function evaluatePixel(s) {{ return [(s.B08 - s.B04) / (s.B08 + s.B04)]; }}"
    )
}

fn three_pixels() -> serde_json::Value {
    // NDVI: (0.5-0.1)/0.6 = 2/3; (0.2-0.2)/0.4 = 0; (0.3-0.1)/0.4 = 0.5, which is
    // 0.49999999999999994 in f64 (0.3 - 0.1 = 0.19999999999999998).
    json!({"samples": [
        {"B04": 0.1, "B08": 0.5},
        {"B04": 0.2, "B08": 0.2},
        {"B04": 0.1, "B08": 0.3},
    ]})
}

#[test]
fn ndvi_float32_is_the_nearest_f32_printed_shortest() {
    let mut program = compile(&ndvi("FLOAT32"));
    let out = program.evaluate_json(&three_pixels(), false).unwrap();
    // 2/3 as f32 is 0.6666667; 0.49999999999999994 as f32 is 0.5.
    assert_eq!(
        out,
        json!({"outputs": {"default": [[0.6666667], [0.0], [0.5]]}, "userData": null})
    );
}

#[test]
fn ndvi_raw_is_what_evaluate_pixel_returned() {
    let mut program = compile(&ndvi("FLOAT32"));
    let out = program.evaluate_json(&three_pixels(), true).unwrap();
    let rows = out["outputs"]["default"].as_array().unwrap();
    assert_eq!(rows[0][0].as_f64().unwrap(), (0.5 - 0.1) / (0.5 + 0.1));
    assert_eq!(rows[1][0].as_f64().unwrap(), 0.0);
    assert_eq!(rows[2][0].as_f64().unwrap(), (0.3 - 0.1) / (0.3 + 0.1));
}

#[test]
fn ndvi_uint8_and_auto_formatting() {
    // UINT8 rounds half away from zero and clamps: 0.67 -> 1, 0 -> 0, 0.49999... -> 0.
    let mut program = compile(&ndvi("UINT8"));
    let out = program.evaluate_json(&three_pixels(), false).unwrap();
    assert_eq!(out["outputs"]["default"], json!([[1], [0], [0]]));
    // AUTO: value * 255 rounded: 2/3*255 = 170, 0 -> 0, 0.49999...*255 = 127.49999... -> 127.
    let mut program = compile(&ndvi("AUTO"));
    let out = program.evaluate_json(&three_pixels(), false).unwrap();
    assert_eq!(out["outputs"]["default"], json!([[170], [0], [127]]));
    // --raw ignores the sample type.
    let raw = program.evaluate_json(&three_pixels(), true).unwrap();
    assert_eq!(raw["outputs"]["default"][1], json!([0.0]));
}

#[test]
fn orbit_pixels_with_scenes_go_through_filter_scenes_and_user_data() {
    let script = "//VERSION=3
function setup() {
  return { input: [\"B04\"], output: { bands: 2, sampleType: \"FLOAT32\" }, mosaicking: \"ORBIT\" };
}
function filterScenes(scenes) {
  return scenes.filter(function (s) { return s.date.getUTCMonth() >= 4; });
}
function evaluatePixel(samples, scenes) {
  var sum = 0;
  for (var i = 0; i < samples.length; i++) sum += samples[i].B04;
  return [samples.length, sum];
}
function updateOutputMetadata(scenes, inputMetadata, outputMetadata) {
  outputMetadata.userData = { dates: scenes.map(function (s) { return s.date.toISOString(); }) };
}";
    let mut program = compile(script);
    let pixels = json!({
        "samples": [
            [{"B04": 1}, {"B04": 10}, {"B04": 100}],
            [{"B04": 2}, {"B04": 20}, {"B04": 200}],
        ],
        "scenes": [
            {"date": "2023-04-20T10:00:00Z"},
            {"date": "2023-06-05T10:00:00Z", "cloudCoverage": 12.5},
            {"date": 1688551200000i64},
        ],
    });
    let out = program.evaluate_json(&pixels, false).unwrap();
    // April is filtered out: two scenes left, sums 10+100 and 20+200.
    assert_eq!(
        out["outputs"]["default"],
        json!([[2.0, 110.0], [2.0, 220.0]])
    );
    assert_eq!(
        out["userData"],
        json!({"dates": ["2023-06-05T10:00:00.000Z", "2023-07-05T10:00:00.000Z"]})
    );
}

#[test]
fn orbit_pixels_without_scenes_may_differ_in_length() {
    let script = "//VERSION=3
function setup() { return { input: [\"B04\"], output: { bands: 1, sampleType: \"UINT8\" }, mosaicking: \"ORBIT\" }; }
function evaluatePixel(samples) { return [samples.length]; }";
    let mut program = compile(script);
    let pixels = json!({"samples": [[{"B04": 1}, {"B04": 2}], [], [{"B04": 3}]]});
    let out = program.evaluate_json(&pixels, false).unwrap();
    assert_eq!(out["outputs"]["default"], json!([[2], [0], [1]]));
}

#[test]
fn multi_output_script_returns_an_object_keyed_by_id() {
    let script = "//VERSION=3
function setup() {
  return { input: [\"B04\", \"B08\"], output: [
    { id: \"index\", bands: 1, sampleType: \"FLOAT32\" },
    { id: \"rgb\", bands: 3, sampleType: \"UINT16\" } ] };
}
function evaluatePixel(s) {
  return { index: [s.B08 - s.B04], rgb: [s.B04 * 1000, s.B08 * 1000, 7.5, 99] };
}";
    let mut program = compile(script);
    let pixels = json!({"samples": [{"B04": 0.25, "B08": 0.75}, {"B04": 1.5, "B08": 0.5}]});
    let out = program.evaluate_json(&pixels, false).unwrap();
    // The fourth rgb value is dropped; 7.5 rounds half away from zero to 8.
    assert_eq!(
        out["outputs"],
        json!({"index": [[0.5], [-1.0]], "rgb": [[250, 750, 8], [1500, 500, 8]]})
    );
    let raw = program.evaluate_json(&pixels, true).unwrap();
    assert_eq!(raw["outputs"]["rgb"][0], json!([250.0, 750.0, 7.5]));
}

#[test]
fn too_few_values_name_the_output_and_the_pixel() {
    let script = "//VERSION=3
function setup() {
  return { input: [\"B04\"], output: [{ id: \"a\", bands: 1 }, { id: \"rgb\", bands: 3 }] };
}
function evaluatePixel(s) { return { a: [0], rgb: s.B04 > 0.5 ? [1, 2] : [1, 2, 3] }; }";
    let mut program = compile(script);
    let pixels = json!({"samples": [{"B04": 0.1}, {"B04": 0.9}]});
    let err = program
        .evaluate_json(&pixels, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pixel 1"), "{err}");
    assert!(err.contains("'rgb'"), "{err}");
    assert!(err.contains("3 bands"), "{err}");
}

#[test]
fn a_pixel_missing_a_band_is_named() {
    let mut program = compile(&ndvi("FLOAT32"));
    let pixels = json!({"samples": [{"B04": 0.1, "B08": 0.5}, {"B04": 0.2}]});
    let err = program
        .evaluate_json(&pixels, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("samples[1]"), "{err}");
    assert!(err.contains("'B08'"), "{err}");
    let pixels = json!({"samples": [{"B04": "x", "B08": 0.5}]});
    let err = program
        .evaluate_json(&pixels, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("samples[0]") && err.contains("not a number"),
        "{err}"
    );
}

#[test]
fn orbit_pixel_missing_a_band_names_the_scene() {
    let script = "//VERSION=3
function setup() { return { input: [\"B04\"], output: { bands: 1 }, mosaicking: \"ORBIT\" }; }
function evaluatePixel(samples) { return [samples.length]; }";
    let mut program = compile(script);
    let pixels = json!({"samples": [[{"B04": 1}], [{"B04": 1}, {"B03": 2}]]});
    let err = program
        .evaluate_json(&pixels, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("samples[1] scene 1 has no band 'B04'"),
        "{err}"
    );
    let pixels = json!({"samples": [{"B04": 1}]});
    let err = program
        .evaluate_json(&pixels, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("samples[0] must be an array"), "{err}");
}

#[test]
fn a_throwing_script_and_a_bad_file_are_reported() {
    let script = "//VERSION=3
function setup() { return { input: [\"B04\"], output: { bands: 1 } }; }
function evaluatePixel(s) { if (s.B04 > 1) throw new Error(\"too bright\"); return [s.B04]; }";
    let mut program = compile(script);
    let pixels = json!({"samples": [{"B04": 0.5}, {"B04": 0.5}, {"B04": 2}]});
    let err = program
        .evaluate_json(&pixels, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pixel 2") && err.contains("too bright"),
        "{err}"
    );
    let err = program
        .evaluate_json(&json!([1, 2]), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"samples\""), "{err}");
}

#[test]
fn v1_body_and_compiled_tier_scripts_run_in_boa() {
    // A V1 body takes its bands as arguments.
    let mut program = compile("return [B08 - B04, B04];");
    let pixels = json!({"samples": [{"B04": 0.25, "B08": 0.5}]});
    let out = program.evaluate_json(&pixels, true).unwrap();
    assert_eq!(out["outputs"]["default"], json!([[0.25, 0.25]]));
    // NDVI FLOAT32 may run compiled in production; evaluate_json still works.
    let mut program = compile(&ndvi("FLOAT32"));
    let out = program.evaluate_json(&three_pixels(), true).unwrap();
    assert_eq!(out["outputs"]["default"].as_array().unwrap().len(), 3);
}

#[test]
fn fusion_pixels_are_keyed_by_datasource() {
    let script = "//VERSION=3
function setup() {
  return { input: [{ datasource: \"s2\", bands: [\"B04\"] }, { datasource: \"s1\", bands: [\"VV\"] }],
           output: { bands: 2, sampleType: \"FLOAT32\" } };
}
function evaluatePixel(samples) { return [samples.s2[0].B04, samples.s1[0].VV]; }";
    let mut program = compile(script);
    // An array per datasource, as evaluatePixel receives it, or one object (SIMPLE).
    let pixels = json!({"samples": [{"s2": [{"B04": 0.5}], "s1": {"VV": 0.25}}]});
    let out = program.evaluate_json(&pixels, false).unwrap();
    assert_eq!(out["outputs"]["default"], json!([[0.5, 0.25]]));
    let pixels = json!({"samples": [{"s2": [{"B04": 0.5}]}]});
    let err = program
        .evaluate_json(&pixels, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("samples[0] has no datasource 's1'"), "{err}");
}

#[test]
fn non_finite_numbers_print_as_their_javascript_names() {
    let source = r#"//VERSION=3
function setup() { return { input: ["B04"], output: { bands: 4, sampleType: "FLOAT32" } }; }
function evaluatePixel(s) { return [0 / 0, 1 / 0, -1 / 0, -0]; }
"#;
    let mut program = Program::compile(source).unwrap();
    let pixels = serde_json::json!({"samples": [{"B04": 0.1}]});
    for raw in [true, false] {
        let out = program.evaluate_json(&pixels, raw).unwrap();
        assert_eq!(
            out["outputs"]["default"][0],
            serde_json::json!(["NaN", "Infinity", "-Infinity", -0.0]),
            "raw {raw}"
        );
    }
}
