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
