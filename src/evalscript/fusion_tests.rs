//! Data fusion (`samples` keyed by datasource) and the memory bound, through `Program`.

use std::time::{Duration, Instant};

use super::*;
use crate::raster::SampleBuffer;

fn compile(source: &str) -> Program {
    match Program::compile(source) {
        Ok(program) => program,
        Err(err) => panic!("compile failed: {err}\n--- script ---\n{source}"),
    }
}

fn f32s(buffer: &SampleBuffer) -> Vec<f32> {
    match buffer {
        SampleBuffer::F32(v) => v.clone(),
        other => panic!("expected FLOAT32, got {other:?}"),
    }
}

fn source<'a>(id: &str, scenes: Vec<Vec<&'a [f32]>>) -> FusionSource<'a> {
    FusionSource {
        id: id.into(),
        scenes: scenes
            .into_iter()
            .enumerate()
            .map(|(i, bands)| SceneInput {
                bands,
                // 2023-06-0(1+i) 10:00 UTC.
                date_ms: 1_685_613_600_000 + i as i64 * 86_400_000,
                ..SceneInput::default()
            })
            .collect(),
    }
}

const FUSION_SETUP: &str = "function setup() { return {
    input: [{datasource: 'l2a', bands: ['B04', 'B08']}, {datasource: 'l1c', bands: ['B04'], units: 'DN'},
            {datasource: 'l2a', bands: ['dataMask', 'B04']}],
    output: {bands: 3, sampleType: 'FLOAT32'} }; }";

#[test]
fn fusion_setup_groups_bands_by_datasource() {
    let p = compile(&format!(
        "{FUSION_SETUP}\nfunction evaluatePixel(s) {{ return [0, 0, 0]; }}"
    ));
    let setup = p.setup();
    assert!(setup.is_fusion());
    assert_eq!(
        setup.datasources,
        vec![
            DatasourceInput {
                id: "l2a".into(),
                bands: vec!["B04".into(), "B08".into(), "dataMask".into()],
                band_units: vec![None, None, None],
            },
            DatasourceInput {
                id: "l1c".into(),
                bands: vec!["B04".into()],
                band_units: vec![Some("DN".into())],
            },
        ]
    );
    // Both datasources' bands, B04 twice: it is read twice.
    assert_eq!(setup.input_bands, vec!["B04", "B08", "dataMask", "B04"]);
    assert_eq!(
        setup.band_units,
        vec![None, None, None, Some("DN".to_string())]
    );
    assert_eq!(p.boa_reason(), Some("data-fusion scripts run in boa"));
}

#[test]
fn fusion_setup_errors() {
    let mixed = "function setup() { return { input: [{datasource: 'a', bands: ['B04']}, 'B08'],
        output: {bands: 1} }; }\nfunction evaluatePixel(s) { return [0]; }";
    let err = Program::compile(mixed).unwrap_err();
    assert!(
        matches!(&err, EvalscriptError::InvalidSetup(m) if m.contains("every setup().input entry")),
        "{err}"
    );
    let bad_id = "function setup() { return { input: [{datasource: 3, bands: ['B04']}],
        output: {bands: 1} }; }\nfunction evaluatePixel(s) { return [0]; }";
    let err = Program::compile(bad_id).unwrap_err();
    assert!(
        matches!(&err, EvalscriptError::InvalidSetup(m) if m.contains("input[0].datasource")),
        "{err}"
    );
    let hooked = "function setup() { return { input: [{datasource: 'a', bands: ['B04']}],
        output: {bands: 1}, mosaicking: 'ORBIT' }; }\nfunction evaluatePixel(s) { return [0]; }
        function filterScenes(s) { return s; }";
    let err = Program::compile(hooked).unwrap_err();
    assert!(matches!(&err, EvalscriptError::Unsupported(_)), "{err}");
}

#[test]
fn simple_fusion_gives_one_element_arrays_per_datasource() {
    let mut p = compile(&format!(
        "{FUSION_SETUP}\nfunction evaluatePixel(s, scenes) {{
            return [s.l2a[0].B04 - s.l1c[0].B04, s.l2a.length * 10 + s.l1c.length,
                    Object.keys(s).join() === 'l2a,l1c' && Object.keys(scenes).join() === 'l2a,l1c' ? s.l2a[0].dataMask : -1];
        }}"
    ));
    let (b04, b08, mask) = ([0.5f32, 0.25], [0.75f32, 0.75], [1.0f32, 0.0]);
    let l1c = [0.125f32, 0.5];
    let sources = [
        source("l2a", vec![vec![&b04, &b08, &mask]]),
        source("l1c", vec![vec![&l1c]]),
    ];
    let out = p.evaluate_fusion(&sources, 2).unwrap();
    // Pixel 0: 0.5 - 0.125, 11, mask 1; pixel 1: 0.25 - 0.5, 11, mask 0 (band-sequential).
    assert_eq!(
        f32s(&out.outputs[0]),
        vec![0.375, -0.25, 11.0, 11.0, 1.0, 0.0]
    );
    assert_eq!(out.scenes_used, vec![1, 1]);
}

#[test]
fn orbit_fusion_gives_one_sample_per_scene_of_each_datasource() {
    let mut p = compile(
        "function setup() { return { input: [{datasource: 'a', bands: ['B04']},
            {datasource: 'b', bands: ['B08']}], output: {bands: 3, sampleType: 'FLOAT32'},
            mosaicking: 'ORBIT' }; }
         function evaluatePixel(s, scenes) {
            var sum = 0;
            for (var i = 0; i < s.a.length; i++) sum += s.a[i].B04;
            return [s.a.length * 10 + s.b.length, sum - s.b[0].B08, scenes.a.orbits.length + scenes.b.orbits.length * 100];
         }
         function updateOutputMetadata(scenes, inputMetadata, outputMetadata) {
            outputMetadata.userData = { ids: Object.keys(scenes), firstB: scenes.b[0].date.toISOString() };
         }",
    );
    let (a1, a2, b1) = ([0.5f32], [0.25f32], [0.125f32]);
    let sources = [
        source("a", vec![vec![&a1], vec![&a2]]),
        source("b", vec![vec![&b1]]),
    ];
    let out = p.evaluate_fusion(&sources, 1).unwrap();
    // 2 scenes of a, 1 of b; 0.5 + 0.25 - 0.125; 2 + 1 * 100.
    assert_eq!(f32s(&out.outputs[0]), vec![21.0, 0.625, 102.0]);
    assert_eq!(out.scenes_used, vec![2, 1]);
    assert_eq!(
        out.user_data,
        Some(serde_json::json!({"ids": ["a", "b"], "firstB": "2023-06-01T10:00:00.000Z"}))
    );
}

#[test]
fn fusion_inputs_are_checked() {
    let mut p = compile(&format!(
        "{FUSION_SETUP}\nfunction evaluatePixel(s) {{ return [0, 0, 0]; }}"
    ));
    let x = [0.0f32; 2];
    // Plain evaluate cannot feed a fusion script.
    assert!(matches!(
        p.evaluate(&[&x, &x, &x, &x], 2),
        Err(EvalscriptError::Input(_))
    ));
    // Wrong order of datasources.
    let swapped = [
        source("l1c", vec![vec![&x]]),
        source("l2a", vec![vec![&x, &x, &x]]),
    ];
    assert!(
        matches!(p.evaluate_fusion(&swapped, 2), Err(EvalscriptError::Input(m)) if m.contains("l2a, l1c"))
    );
    // Too few bands for l1c... rather, two for it.
    let wrong = [
        source("l2a", vec![vec![&x, &x, &x]]),
        source("l1c", vec![vec![&x, &x]]),
    ];
    assert!(
        matches!(p.evaluate_fusion(&wrong, 2), Err(EvalscriptError::Input(m)) if m.contains("'l1c'"))
    );
    // SIMPLE takes one scene per datasource.
    let two = [
        source("l2a", vec![vec![&x, &x, &x], vec![&x, &x, &x]]),
        source("l1c", vec![vec![&x]]),
    ];
    assert!(matches!(
        p.evaluate_fusion(&two, 2),
        Err(EvalscriptError::Input(_))
    ));
    // A plain script refuses evaluate_fusion.
    let mut plain = compile(
        "function setup() { return {input: ['B04'], output: {bands: 1}}; }
        function evaluatePixel(s) { return [s.B04]; }",
    );
    assert!(matches!(
        plain.evaluate_fusion(&[source("a", vec![vec![&x]])], 2),
        Err(EvalscriptError::Input(_))
    ));
}

// ---- memory bound ----

const NDVI: &str = include_str!("../../evalscripts/ndvi.js");

/// A one-band script whose evaluatePixel runs `body` first.
fn runaway(body: &str) -> String {
    format!(
        "function setup() {{ return {{input: ['B04'], output: {{bands: 1, sampleType: 'FLOAT32'}}}}; }}
         function evaluatePixel(s) {{ {body} return [s.B04]; }}"
    )
}

/// Runs `body` under a 64 MiB limit and expects the memory error, quickly.
fn expect_memory_error(body: &str) {
    let mut p = compile(&runaway(body));
    p.set_memory_limit(64 << 20);
    let x = [0.5f32; 4];
    let start = Instant::now();
    let err = p.evaluate(&[&x], 4).unwrap_err();
    assert!(
        matches!(err, EvalscriptError::Memory { limit_mib: 64, .. }),
        "{body}: {err}"
    );
    assert!(err.to_string().contains("memory limit of 64 MiB"), "{err}");
    // Generous: the test machine is shared; unbounded, these would run until the OOM killer.
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "{body}: {:?}",
        start.elapsed()
    );
}

/// A normal script still runs on this thread, with correct values.
fn ndvi_still_works() {
    let mut p = compile(NDVI);
    let (b04, b08) = ([0.1f32, 0.2], [0.3f32, 0.2]);
    let bands: Vec<&[f32]> = p
        .setup()
        .input_bands
        .iter()
        .map(|b| match b.as_str() {
            "B04" => &b04[..],
            "B08" => &b08[..],
            _ => &[1.0f32, 1.0][..],
        })
        .collect();
    let out = p.evaluate(&bands, 2).unwrap();
    // (0.3 - 0.1) / 0.4 = 0.5; (0.2 - 0.2) / 0.4 = 0.
    assert_eq!(f32s(&out[0])[..2], [0.5, 0.0]);
}

#[test]
fn runaway_allocations_fail_the_block_and_the_thread_goes_on() {
    assert!(counting_installed());
    expect_memory_error("var a = []; while (true) a.push(new Array(1e6).fill(1));");
    expect_memory_error("var big = 'x'.repeat(1e9);");
    expect_memory_error("var s = 'xxxxxxxx'; while (true) s = s.concat(s);");
    // String `+` in a loop: stopped by the loop limit or the memory limit (both uncatchable).
    let mut p = compile(&runaway(
        "var a = []; while (true) a.push('y'.repeat(1e5) + a.length);",
    ));
    p.set_memory_limit(64 << 20);
    let err = p.evaluate(&[&[0.5f32][..]], 1).unwrap_err();
    assert!(
        matches!(
            err,
            EvalscriptError::Memory { .. } | EvalscriptError::Limit { .. }
        ),
        "{err}"
    );
    expect_memory_error("var s = 'ab'.padStart(1e9, 'z');");
    expect_memory_error("var a = new Array(1e9); a.fill(0);");
    // The script cannot swallow it.
    expect_memory_error(
        "try { var a = []; while (true) a.push(new Array(1e5).fill(2)); } catch (e) {}",
    );
    ndvi_still_works();
}

#[test]
fn top_level_runaway_fails_compile() {
    let err =
        Program::compile(&format!("var big = 'x'.repeat(3e9);\n{}", runaway(""))).unwrap_err();
    assert!(
        matches!(&err, EvalscriptError::TopLevel(m) if m.contains("memory limit")),
        "{err}"
    );
    ndvi_still_works();
}

#[test]
fn ordinary_allocation_stays_under_the_limit() {
    // 4 000 pixels, each building and joining a 100-element array.
    let mut p = compile(&runaway(
        "var a = []; for (var i = 0; i < 100; i++) a.push(i); if (a.join().length < 10) throw 'x';",
    ));
    p.set_memory_limit(64 << 20);
    let x = vec![0.25f32; 4000];
    let out = p.evaluate(&[&x], 4000).unwrap();
    assert!(f32s(&out[0]).iter().all(|v| *v == 0.25));
}
