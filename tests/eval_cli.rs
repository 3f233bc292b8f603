//! `tessera eval SCRIPT --pixels PIXELS.json [--raw]`, run as the built binary.

use std::process::Command;

fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env("RUST_BACKTRACE", "0").env("RUST_LOG", "warn");
    command
}

fn script() -> String {
    format!("{}/evalscripts/ndvi.js", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn eval_pixels_prints_ndvi_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = dir.path().join("pixels.json");
    std::fs::write(
        &pixels,
        r#"{"samples": [
            {"B04": 0.1, "B08": 0.5, "dataMask": 1},
            {"B04": 0.2, "B08": 0.2, "dataMask": 1},
            {"B04": 0.1, "B08": 0.3, "dataMask": 1}]}"#,
    )
    .unwrap();
    let out = tessera()
        .args(["eval", &script(), "--pixels"])
        .arg(&pixels)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"outputs": {"default": [[0.6666667], [0.0], [0.5]]}, "userData": null})
    );

    let out = tessera()
        .args(["eval", &script(), "--raw", "--pixels"])
        .arg(&pixels)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outputs"]["default"][0][0], (0.5 - 0.1) / (0.5 + 0.1));
}

#[test]
fn eval_pixels_reports_bad_input_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    std::fs::write(
        &missing,
        r#"{"samples": [{"B04": 0.1, "B08": 0.5, "dataMask": 1}, {"B04": 0.1}]}"#,
    )
    .unwrap();
    let out = tessera()
        .args(["eval", &script(), "--pixels"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("samples[1] has no band 'B08'"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"samples\": [").unwrap();
    let out = tessera()
        .args(["eval", &script(), "--pixels"])
        .arg(&broken)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is not valid JSON"), "{stderr}");
}

#[test]
fn eval_explain_dir_tabulates_tiers_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ndvi_v1.js"),
        "return [(B08 - B04) / (B08 + B04)];",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("counter.js"),
        "//VERSION=3\nvar n = 0;\nfunction setup() { return { input: ['B04'], output: { bands: 1 } }; }\n\
         function evaluatePixel(s) { n++; return [n]; }",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.js"), "function setup( {").unwrap();
    std::fs::write(dir.path().join("notes.md"), "not a script").unwrap();
    let out = tessera()
        .args(["eval", "--explain"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| V1 body | 1 | 1 | 100% |"), "{text}");
    assert!(text.contains("| V3 SIMPLE | 1 | 0 | 0% |"), "{text}");
    assert!(text.contains("| all | 3 | 1 | 33% |"), "{text}");
    assert!(
        text.contains("| 1 | global '…' is assigned somewhere in the script |"),
        "{text}"
    );
    assert!(!text.contains("notes.md"), "{text}");
}

#[test]
fn eval_pixels_spells_non_finite_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = dir.path().join("pixels.json");
    std::fs::write(
        &pixels,
        r#"{"samples": [{"B04": 0, "B08": 0}, {"B04": 0, "B08": 1}]}"#,
    )
    .unwrap();
    let script = dir.path().join("s.js");
    std::fs::write(&script, "return [B08 / B04, -B08 / B04];").unwrap();
    let out = tessera()
        .args(["eval"])
        .arg(&script)
        .args(["--raw", "--pixels"])
        .arg(&pixels)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["outputs"]["default"],
        serde_json::json!([["NaN", "NaN"], ["Infinity", "-Infinity"]])
    );
}
