//! The compiled tier on the scripts people write (issue 15): V1 bodies, nested and
//! array-returning functions, constant strings and tables, the samples object passed
//! around, run-time indices. Each construct is checked bit for bit against boa on
//! 100,000 random pixels (NaN, ±Inf and ±0 included), through `Program` itself.

use super::tests::{random_bands, same_samples, PIXELS};
use super::{CompiledProgram, WasmError};
use crate::evalscript::{OutputSpec, Program, SampleType, ScriptFormat};

/// Compiles `source` with `Program` (which must pick the compiled tier), then compares
/// the compiled tier with boa on `len` random pixels, every output as FLOAT32 so no
/// formatting hides a difference.
pub(super) fn assert_tiers_agree(source: &str, len: usize, seed: u64) {
    let program = Program::compile(source).expect("boa compiles the script");
    if let Some(reason) = program.boa_reason() {
        panic!("the script runs in boa: {reason}");
    }
    let mut boa = Program::compile(source).expect("boa compiles the script");
    boa.boa_float32();
    let setup = boa.setup().clone();
    let outputs: Vec<(String, usize, SampleType)> = setup
        .outputs
        .iter()
        .map(|o| (o.id.clone(), o.bands, SampleType::Float32))
        .collect();
    let mut compiled = match program.format() {
        ScriptFormat::V1Body => CompiledProgram::compile_v1_body(
            &crate::evalscript::v1::wrap_body(source, &setup.input_bands),
            &setup.input_bands,
            &outputs,
        ),
        _ => CompiledProgram::compile_formatted(source, &setup.input_bands, &outputs),
    }
    .unwrap_or_else(|e| panic!("compiled tier rejected it: {e}"));
    let planes = random_bands(setup.input_bands.len(), len, seed);
    let bands: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
    let expected = boa.evaluate(&bands, len).expect("boa evaluates");
    let specs: Vec<OutputSpec> = setup.outputs.clone();
    let got = compiled
        .evaluate_formatted(&bands, len, &specs)
        .expect("wasm evaluates");
    for (k, spec) in specs.iter().enumerate() {
        if !same_samples(&got[k], &expected[k]) {
            let (crate::raster::SampleBuffer::F32(g), crate::raster::SampleBuffer::F32(e)) =
                (&got[k], &expected[k])
            else {
                panic!("output {} differs", spec.id);
            };
            let bad: Vec<String> = g
                .iter()
                .zip(e)
                .enumerate()
                .filter(|(_, (a, b))| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()))
                .take(5)
                .map(|(i, (a, b))| {
                    let px = i % len;
                    let inputs: Vec<f32> = planes.iter().map(|p| p[px]).collect();
                    format!("sample {i} inputs {inputs:?}: wasm {a:e} boa {b:e}")
                })
                .collect();
            panic!("output {} differs:\n{}", spec.id, bad.join("\n"));
        }
    }
}

/// Why `source` stays in boa (it must).
fn boa_reason(source: &str) -> String {
    let program = Program::compile(source).expect("boa compiles the script");
    match program.boa_reason() {
        Some(reason) => reason.to_string(),
        None => panic!("expected a fallback to boa for {source}"),
    }
}

#[test]
fn v1_bodies_compile_and_match_boa() {
    let scripts = [
        // index-database style: its own `index` variable shadows the helper.
        "let index = (B11 - B08) / (B11 + B08);\nlet min = -0.5;\nlet max = 0.5;\n\
         return colorBlend(index, [min, min, 0, max], [[0, 0, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]]);",
        "var ndvi = (B08 - B04) / (B08 + B04);\nreturn [ndvi, ndvi * 0.5, 0];",
        // The body's own helper function, called before its declaration.
        "var v = index(B08, B04);\nif (v > 5) return [1];\nreturn [v / 10];\n\
         function index(x, y) { return (x - y) / (x + y) * 10; }",
        // Band globals assigned, a helper closing over a body variable.
        "let gain = 2.5;\nfunction stretch(v) { return Math.min(1, Math.max(0, v * gain)); }\n\
         B04 = B04 + 0.01;\nreturn [stretch(B04), stretch(B03), stretch(B02)];",
        "return [B04 * 2.5, B03 * 2.5, B02 * 2.5];",
        "let n = index(B08, B04);\nreturn colorBlend(n, [0, 0.5, 1], [[1, 0, 0], [1, 1, 0], [0, 1, 0]]);",
        // A visualizer built in the body.
        "var viz = new HighlightCompressVisualizerSingle(0, 0.3);\n\
         return viz.processList([B04, B03, B02]);",
        "return [dataMask * (B08 > 0.3)];",
    ];
    for (i, source) in scripts.iter().enumerate() {
        assert_tiers_agree(source, PIXELS, 100 + i as u64);
    }
}

#[test]
fn nested_and_array_functions_match_boa() {
    let source = r#"//VERSION=3
function setup() {
  return { input: ["B02", "B03", "B04", "B08"], output: { bands: 9, sampleType: "FLOAT32" } };
}
const stretch = (v) => Math.min(1, v * 3);
function rgb(s, gain) { return [s.B04 * gain, s.B03 * gain, s.B02 * gain]; }
function evaluatePixel(samples) {
  const offset = 0.01;
  function ndvi(a, b) { return (a - b) / (a + b) + offset; }
  let c = rgb(samples, 2.5);
  let k = Math.floor(samples.B08 * 3);
  let pick = c[k];
  let fromCall = rgb(samples, 1)[2];
  let lut = [0.1, 0.2, 0.3][k];
  return [ndvi(samples.B08, samples.B04), stretch(c[0]), c[1], c[2], pick, fromCall, lut,
          c.length, -0 === k ? 1 : 2];
}
"#;
    assert_tiers_agree(source, PIXELS, 7);
}

#[test]
fn constant_strings_objects_and_samples_spellings_match_boa() {
    let source = r#"//VERSION=3
const MODE = "ndvi";
const palette = { low: 0.1, high: 0.9, name: "p" };
function setup() {
  return { input: ["B04", "B08"], output: [{ id: "default", bands: 4, sampleType: "FLOAT32" },
                                           { id: "index", bands: 1, sampleType: "FLOAT32" }] };
}
function calc(sample, mode) {
  switch (mode) {
    case "ndwi": return -1;
    case "ndvi": return (sample.B08 - sample.B04) / (sample.B08 + sample.B04);
    default: return 0;
  }
}
function evaluatePixel(sample) {
  let v = calc(sample, MODE);
  let flag = MODE == "ndvi" ? 1 : 0;
  let t = v > palette.high ? 1 : (v < palette.low ? 0 : v);
  let n = v === "x" ? 5 : 6;
  let loose = v == "0.5";
  return { index: [v], default: [t, flag, n, loose] };
}
"#;
    assert_tiers_agree(source, PIXELS, 8);
    let destructured = r#"//VERSION=3
function setup() { return { input: ["B04", "B08"], output: { bands: 1, sampleType: "FLOAT32" } }; }
function evaluatePixel({ B04, B08: nir }) { return [(nir - B04) / (nir + B04)]; }
"#;
    assert_tiers_agree(destructured, PIXELS, 9);
}

#[test]
fn what_stays_in_boa_says_why() {
    let cases = [
        ("return [B04 + 'x'];", "string used"),
        // A `var` in a block may be skipped: its string is not taken as constant.
        (
            "if (B04 > 0.5) { var m = 'a'; }\nreturn [m == 'a' ? 1 : 0];",
            "string used",
        ),
        ("return [B04.toFixed(2)];", "method call"),
        // A `var` declared again (here in a loop) is not a constant.
        (
            "var t = 0.5;\nvar acc = 0;\nfor (var i = 0; i < 2; i++) {\n\
             acc += colorBlend(B04, [t, 1], [0, 1]);\n  var t = 0.25;\n}\nreturn [acc];",
            "not constant",
        ),
        (
            "function f(x) { return x > 1 ? x : f(x * 2); }\nreturn [f(B04 + 0.01)];",
            "recursive",
        ),
        (
            "function f() { if (B04 > 0) return [1]; return 2; }\nreturn [f()];",
            "array and a non-array",
        ),
    ];
    for (source, reason) in cases {
        let got = boa_reason(source);
        assert!(got.contains(reason), "{source}: {got:?} lacks {reason:?}");
    }
    let inner =
        "function evaluatePixel(s) { if (s.A > 0) { function g() { return 1; } } return [1]; }";
    match CompiledProgram::compile(inner, &["A".to_string()], &[1]) {
        Err(WasmError::Unsupported(m)) => assert!(m.contains("inside a block"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn v1_band_globals_of_any_collection_are_found_by_the_probe() {
    // Sentinel-5P and Landsat 7 names are not in the known list: the probe pixel's
    // ReferenceError names them, one at a time.
    let source = "var h = CLOUD_BASE_HEIGHT / 1000;\nif (h > 5) return [1, B06_VCID_2];\n\
                  return [h / 5, B06_VCID_2 * 2];";
    let program = Program::compile(source).expect("compiles");
    assert_eq!(program.format(), ScriptFormat::V1Body);
    assert_eq!(
        program.setup().input_bands,
        vec!["CLOUD_BASE_HEIGHT", "B06_VCID_2"]
    );
    assert_tiers_agree(source, PIXELS, 21);
    // With the collection's names, a band read only on a branch the probe skips.
    let branchy = "if (B01 > 100) return [Rare];\nreturn [B01];";
    let program = Program::compile_for_collection(branchy, &["Rare"]).expect("compiles");
    assert_eq!(program.setup().input_bands, vec!["B01", "Rare"]);
    // A ReferenceError that is not a missing global still fails with its message.
    let err = Program::compile("return [undefinedFn()];")
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("probe")));
}

#[test]
fn unknown_setup_keys_are_ignored_as_the_hosted_service_does() {
    // `sampleTYPE` is not `sampleType`: ignored, so the output is AUTO (0..1 -> 0..255).
    let source = r#"//VERSION=3
function setup() {
  return { input: [{ bands: ["DEM"], unitz: "METERS" }],
           output: { bands: 1, sampleTYPE: "FLOAT32", extra: true } };
}
function evaluatePixel(sample) { return [sample.DEM / 1000]; }
"#;
    let mut program = Program::compile(source).expect("compiles");
    assert_eq!(program.setup().outputs[0].sample_type, SampleType::Auto);
    assert!(program.boa_reason().is_none());
    let out = program.evaluate(&[&[500.0]], 1).expect("runs");
    // 0.5 * 255 = 127.5 -> 128
    assert_eq!(out, vec![crate::raster::SampleBuffer::U8(vec![128])]);
}

#[test]
fn evaluate_into_reuses_the_output_buffers() {
    let source = include_str!("../../../evalscripts/ndvi.js");
    let mut program = Program::compile(source).expect("compiles");
    assert!(program.boa_reason().is_none());
    let n = program.setup().input_bands.len();
    let planes = random_bands(n, 1000, 5);
    let bands: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
    let fresh = program.evaluate(&bands, 1000).expect("runs");
    let mut out = Vec::new();
    program.evaluate_into(&bands, 1000, &mut out).expect("runs");
    let first = match &out[0] {
        crate::raster::SampleBuffer::F32(v) => v.as_ptr(),
        other => panic!("{other:?}"),
    };
    program.evaluate_into(&bands, 1000, &mut out).expect("runs");
    let second = match &out[0] {
        crate::raster::SampleBuffer::F32(v) => v.as_ptr(),
        other => panic!("{other:?}"),
    };
    assert_eq!(first, second, "the buffer was reallocated");
    assert!(same_samples(&out[0], &fresh[0]));
}

#[test]
fn reassigned_array_variables_match_boa() {
    let source = r#"//VERSION=3
function setup() {
  return { input: ["B02", "B03", "B04", "B08"], output: { bands: 7, sampleType: "FLOAT32" } };
}
function scale(a, k) {
  a = [a[0] * k, a[1] * k, a[2] * k];
  return a;
}
function evaluatePixel(s) {
  let rgb = [s.B04, s.B03, s.B02];
  if (s.B08 > 0.3) rgb = [rgb[2], rgb[1], rgb[0]];
  let doubled = scale(rgb, 2);
  var n = 0;
  for (let i = 0; i < 3; i++) { if (doubled[i] > 0.5) n++; }
  return [...rgb, ...doubled, n];
}
"#;
    assert_tiers_agree(source, PIXELS, 77);
    let reason = boa_reason("const c = [B04, B03];\nif (B04 > 0.5) c = [1, 2];\nreturn c;");
    assert!(reason.contains("constant 'c'"), "{reason}");
}
