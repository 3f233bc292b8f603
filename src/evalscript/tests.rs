//! Tests of `Program`: setup parsing through real scripts, evaluation, errors, budgets.

use std::time::{Duration, Instant};

use super::*;
use crate::raster::SampleBuffer;

fn compile(source: &str) -> Program {
    match Program::compile(source) {
        Ok(program) => program,
        Err(err) => panic!("compile failed: {err}\n--- script ---\n{source}"),
    }
}

fn compile_err(source: &str) -> EvalscriptError {
    match Program::compile(source) {
        Ok(program) => panic!("expected a compile error, got {:?}", program.setup()),
        Err(err) => err,
    }
}

fn eval(program: &mut Program, bands: &[&[f32]], len: usize) -> Vec<SampleBuffer> {
    match program.evaluate(bands, len) {
        Ok(buffers) => buffers,
        Err(err) => panic!("evaluate failed: {err}"),
    }
}

fn eval_err(program: &mut Program, bands: &[&[f32]], len: usize) -> EvalscriptError {
    match program.evaluate(bands, len) {
        Ok(buffers) => panic!("expected an evaluate error, got {buffers:?}"),
        Err(err) => err,
    }
}

/// A one-output script returning `body` from evaluatePixel.
fn script(input: &str, output: &str, body: &str) -> String {
    format!(
        "//VERSION=3\nfunction setup() {{ return {{ input: {input}, output: {output} }}; }}\n\
         function evaluatePixel(samples) {{ {body} }}\n"
    )
}

// ---- setup parsing ----

#[test]
fn minimal_setup_gets_defaults() {
    let p = compile(&script(
        r#"["B04", "B08"]"#,
        "{ bands: 3 }",
        "return [0,0,0];",
    ));
    let setup = p.setup();
    assert_eq!(setup.input_bands, vec!["B04", "B08"]);
    assert_eq!(setup.units, None);
    assert_eq!(setup.band_units, vec![None, None]);
    assert_eq!(setup.mosaicking, Mosaicking::Simple);
    assert_eq!(
        setup.outputs,
        vec![OutputSpec {
            id: "default".into(),
            bands: 3,
            sample_type: SampleType::Auto,
            nodata: None
        }]
    );
}

#[test]
fn input_objects_with_units() {
    let p = compile(&script(
        r#"[{ bands: ["B02", "B03"], units: "reflectance" }, { bands: ["SCL", "B02"] }]"#,
        "{ bands: 1 }",
        "return [0];",
    ));
    let setup = p.setup();
    assert_eq!(setup.input_bands, vec!["B02", "B03", "SCL"]); // duplicate B02 dropped
    assert_eq!(
        setup.band_units,
        vec![Some("REFLECTANCE".into()), Some("REFLECTANCE".into()), None]
    );
    assert_eq!(setup.units, None); // SCL has none, so no common unit
}

#[test]
fn per_band_units_and_common_unit() {
    let p = compile(&script(
        r#"[{ bands: ["B04", "B08"], units: ["DN", "dn"] }]"#,
        "{ bands: 1 }",
        "return [0];",
    ));
    assert_eq!(p.setup().units.as_deref(), Some("DN"));
    let p = compile(&script(
        r#"[{ bands: ["B04", "SCL"], units: ["REFLECTANCE", "DN"] }]"#,
        "{ bands: 1 }",
        "return [0];",
    ));
    assert_eq!(p.setup().units, None);
    assert_eq!(
        p.setup().band_units,
        vec![Some("REFLECTANCE".into()), Some("DN".into())]
    );
}

#[test]
fn sample_types_in_any_spelling() {
    let p = compile(&script(
        r#"["B04"]"#,
        r#"[{ id: "a", bands: 1, sampleType: "float32" },
            { id: "b", bands: 1, sampleType: SampleType.UINT16 },
            { id: "c", bands: 1, sampleType: "Auto" },
            { id: "d", bands: 2, sampleType: "INT8", nodataValue: -128 },
            { id: "e", bands: 1, sampleType: SampleType.INT16, nodataValue: NaN }]"#,
        "return {a:[0], b:[0], c:[0], d:[0,0], e:[0]};",
    ));
    let types: Vec<SampleType> = p.setup().outputs.iter().map(|o| o.sample_type).collect();
    assert_eq!(
        types,
        vec![
            SampleType::Float32,
            SampleType::Uint16,
            SampleType::Auto,
            SampleType::Int8,
            SampleType::Int16
        ]
    );
    assert_eq!(p.setup().outputs[3].nodata, Some(-128.0));
    assert!(p.setup().outputs[4].nodata.is_some_and(f64::is_nan));
    assert_eq!(p.setup().outputs[3].bands, 2);
}

#[test]
fn mosaicking_spellings() {
    let with = |m: &str| {
        format!(
            "function setup() {{ return {{ input: ['B04'], output: {{bands: 1}}, \
             mosaicking: {m} }}; }}\nfunction evaluatePixel(s) {{ return [0]; }}"
        )
    };
    assert_eq!(
        compile(&with("'simple'")).setup().mosaicking,
        Mosaicking::Simple
    );
    assert_eq!(
        compile(&with("Mosaicking.SIMPLE")).setup().mosaicking,
        Mosaicking::Simple
    );
    // ORBIT and TILE compile now (they ran as Unsupported before).
    assert_eq!(
        compile(&with("Mosaicking.ORBIT")).setup().mosaicking,
        Mosaicking::Orbit
    );
    assert_eq!(
        compile(&with("'tile'")).setup().mosaicking,
        Mosaicking::Tile
    );
    let bad = compile_err(&with("'DAILY'"));
    assert!(
        matches!(&bad, EvalscriptError::InvalidSetup(m) if m.contains("DAILY")),
        "{bad}"
    );
}

#[test]
fn entry_points_as_const_and_arrow_functions() {
    let p = compile(
        "const setup = () => ({ input: ['B01'], output: { bands: 1, sampleType: 'UINT8' } });\n\
         let evaluatePixel = function (s) { return [s.B01 * 2]; };",
    );
    assert_eq!(p.setup().input_bands, vec!["B01"]);
}

#[test]
fn setup_errors_name_the_problem() {
    let cases: &[(&str, &str, &str)] = &[
        ("['B04']", "{ bands: 0 }", "bands: 0"),
        ("['B04']", "{ bands: 2.5 }", "bands: 2.5"),
        ("['B04']", "{ bands: '3' }", "'bands' as a number"),
        ("['B04']", "{}", "'bands' as a number"),
        ("['B04']", "[]", "at least one output"),
        (
            "['B04']",
            "{ bands: 1, sampleType: 'FLOAT64' }",
            "unknown sampleType 'FLOAT64'",
        ),
        (
            "['B04']",
            "{ bands: 1, sampleType: 8 }",
            "sampleType that is a number",
        ),
        (
            "['B04']",
            "[{ bands: 1 }, { bands: 2 }]",
            "'default' is used more than once",
        ),
        ("['B04']", "{ bands: 1, nodataValue: 'x' }", "nodataValue"),
        ("['B04']", "undefined", "output is undefined"),
        (
            "undefined",
            "{ bands: 1 }",
            "setup().input must be an array",
        ),
        ("[3]", "{ bands: 1 }", "input[0] is a number"),
        (
            "[{ bands: 'B04' }]",
            "{ bands: 1 }",
            "input[0].bands must be an array",
        ),
        (
            "[{ bands: ['B04', 7] }]",
            "{ bands: 1 }",
            "input[0].bands[1]",
        ),
        (
            "[{ bands: ['B04', 'B08'], units: ['DN'] }]",
            "{ bands: 1 }",
            "units has 1 entries but bands has 2",
        ),
        ("['B04']", "{ bands: 5000 }", "1 to 1024"),
    ];
    for (input, output, expected) in cases {
        let err = compile_err(&script(input, output, "return [0];"));
        assert!(
            matches!(&err, EvalscriptError::InvalidSetup(m) if m.contains(expected)),
            "input {input}, output {output}: got `{err}`, wanted `{expected}`"
        );
    }
}

#[test]
fn setup_returning_nothing_or_throwing() {
    let err = compile_err("function setup() {}\nfunction evaluatePixel() { return [0]; }");
    assert!(
        matches!(&err, EvalscriptError::InvalidSetup(m)
            if m.contains("setup() must return an object") && m.contains("undefined")),
        "{err}"
    );
    let err = compile_err(
        "function setup() { throw new Error('no config'); }\nfunction evaluatePixel() {}",
    );
    assert!(
        matches!(&err, EvalscriptError::SetupThrew(m) if m.contains("Error: no config")),
        "{err}"
    );
}

#[test]
fn missing_entry_points() {
    let err = compile_err("function setup() { return { input: [], output: { bands: 1 } }; }");
    assert_eq!(err, EvalscriptError::MissingFunction("evaluatePixel"));
    let err = compile_err("function evaluatePixel() { return [1]; }");
    assert_eq!(err, EvalscriptError::MissingFunction("setup"));
    let err = compile_err("var evaluatePixel = 3; function setup() { return {}; }");
    assert_eq!(err, EvalscriptError::MissingFunction("evaluatePixel"));
}

#[test]
fn syntax_error_names_line() {
    let err = compile_err("//VERSION=3\nfunction setup() {\n  return { input: [, };\n}\n");
    assert!(
        matches!(&err, EvalscriptError::Syntax(m) if m.contains("line 3")),
        "{err}"
    );
    let err = compile_err("function setup() {\n  return 1;\n");
    assert!(
        matches!(&err, EvalscriptError::Syntax(m) if m.contains("end of the script")),
        "{err}"
    );
}

#[test]
fn v1_body_with_version_3_header_runs() {
    // Was a syntax error with a hint; V1 bodies are detected from the code and run now.
    let mut p = compile("//VERSION=3\nlet ndvi = (B08 - B04) / (B08 + B04);\nreturn [ndvi];");
    assert_eq!(p.format(), ScriptFormat::V1Body);
    assert_eq!(p.setup().input_bands, vec!["B08", "B04"]);
    // AUTO: (0.5-0.1)/(0.6) = 0.6667 -> 170
    assert_eq!(
        eval(&mut p, &[&[0.5], &[0.1]], 1),
        vec![SampleBuffer::U8(vec![170])]
    );
}

#[test]
fn top_level_exception() {
    let err = compile_err("var viz = new NoSuchVisualizer();\nfunction setup() {}");
    assert!(
        matches!(&err, EvalscriptError::TopLevel(m)
            if m.contains("ReferenceError") && m.contains("NoSuchVisualizer")),
        "{err}"
    );
}

// ---- evaluation ----

const NDVI: &str = r#"//VERSION=3
function setup() {
  return {
    input: [{ bands: ["B04", "B08"], units: "REFLECTANCE" }],
    output: { bands: 1, sampleType: "FLOAT32" }
  };
}
function evaluatePixel(samples) {
  let ndvi = (samples.B08 - samples.B04) / (samples.B08 + samples.B04);
  return [ndvi];
}
"#;

/// Deterministic pseudo-random reflectances in [0, 0.6).
fn reflectances(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 0.6
        })
        .collect()
}

#[test]
fn ndvi_matches_rust() {
    let mut p = compile(NDVI);
    let mut red = reflectances(64, 1);
    let mut nir = reflectances(64, 2);
    red[5] = 0.0;
    nir[5] = 0.0; // 0/0 -> NaN, kept by FLOAT32
    red[6] = 0.1;
    nir[6] = 0.1;
    let out = eval(&mut p, &[&red, &nir], 64);
    assert_eq!(out.len(), 1);
    let SampleBuffer::F32(values) = &out[0] else {
        panic!("expected F32, got {:?}", out[0]);
    };
    assert_eq!(values.len(), 64);
    for i in 0..64 {
        let (r, n) = (f64::from(red[i]), f64::from(nir[i]));
        let expected = ((n - r) / (n + r)) as f32;
        if expected.is_nan() {
            assert!(values[i].is_nan(), "pixel {i}");
        } else {
            assert_eq!(values[i], expected, "pixel {i}");
        }
    }
    assert!(values[5].is_nan());
    assert_eq!(values[6], 0.0);
}

#[test]
fn ndvi_auto_output() {
    let source = NDVI.replace("FLOAT32", "AUTO");
    let mut p = compile(&source);
    let red = [0.1f32, 0.3, 0.2, 0.0];
    let nir = [0.5f32, 0.1, 0.2, 0.4];
    let out = eval(&mut p, &[&red, &nir], 4);
    let expected: Vec<u8> = red
        .iter()
        .zip(&nir)
        .map(|(&r, &n)| {
            let ndvi = (f64::from(n) - f64::from(r)) / (f64::from(n) + f64::from(r));
            (ndvi * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    assert_eq!(out, vec![SampleBuffer::U8(expected)]);
}

#[test]
fn multi_output_object_return_is_planar() {
    let source = r#"
function setup() {
  return {
    input: ["B02", "B03", "B04", "dataMask"],
    output: [
      { id: "default", bands: 3, sampleType: "UINT16" },
      { id: "index", bands: 1, sampleType: "FLOAT32" },
      { id: "dataMask", bands: 1 }
    ]
  };
}
function evaluatePixel(s) {
  return {
    dataMask: [s.dataMask],
    default: [s.B04 * 10000, s.B03 * 10000, s.B02 * 10000],
    index: [s.B04 - s.B02]
  };
}"#;
    let mut p = compile(source);
    let b02 = [0.01f32, 0.02, 0.03];
    let b03 = [0.1f32, 0.2, 0.3];
    let b04 = [0.5f32, 0.25, 6.6];
    let mask = [1.0f32, 0.0, 1.0];
    let out = eval(&mut p, &[&b02, &b03, &b04, &mask], 3);
    let scaled = |v: &[f32]| -> Vec<u16> {
        v.iter()
            .map(|&x| (f64::from(x) * 10000.0).round().min(65535.0) as u16)
            .collect()
    };
    let mut rgb = scaled(&b04);
    rgb.extend(scaled(&b03));
    rgb.extend(scaled(&b02));
    assert_eq!(rgb[2], 65535); // 66000 clamps
    assert_eq!(out[0], SampleBuffer::U16(rgb));
    let index: Vec<f32> = (0..3)
        .map(|i| (f64::from(b04[i]) - f64::from(b02[i])) as f32)
        .collect();
    assert_eq!(out[1], SampleBuffer::F32(index));
    assert_eq!(out[2], SampleBuffer::U8(vec![255, 0, 255])); // AUTO of 1, 0, 1
}

#[test]
fn sample_type_edge_cases_through_scripts() {
    let values = "[-5, 300, NaN, 2.5, -0.5, 1.5, 0.49999, Infinity]";
    let run = |sample_type: &str| {
        let mut p = compile(&script(
            "[]",
            &format!("{{ bands: 8, sampleType: '{sample_type}' }}"),
            &format!("return {values};"),
        ));
        eval(&mut p, &[], 1).remove(0)
    };
    assert_eq!(
        run("UINT8"),
        SampleBuffer::U8(vec![0, 255, 0, 3, 0, 2, 0, 255])
    );
    assert_eq!(
        run("UINT16"),
        SampleBuffer::U16(vec![0, 300, 0, 3, 0, 2, 0, 65535])
    );
    assert_eq!(
        run("INT8"),
        SampleBuffer::I8(vec![-5, 127, 0, 3, -1, 2, 0, 127])
    );
    assert_eq!(
        run("INT16"),
        SampleBuffer::I16(vec![-5, 300, 0, 3, -1, 2, 0, 32767])
    );
    // AUTO: x*255 -> -1275, 76500, NaN, 637.5, -127.5, 382.5, 127.497, inf
    assert_eq!(
        run("AUTO"),
        SampleBuffer::U8(vec![0, 255, 0, 255, 0, 255, 127, 255])
    );
    let SampleBuffer::F32(f) = run("FLOAT32") else {
        panic!("expected F32");
    };
    assert_eq!(f[..2], [-5.0, 300.0]);
    assert!(f[2].is_nan());
    assert_eq!(f[3..], [2.5, -0.5, 1.5, 0.49999, f32::INFINITY]);
}

#[test]
fn return_values_are_coerced_like_javascript() {
    let mut p = compile(&script(
        "[]",
        "{ bands: 6, sampleType: 'FLOAT32' }",
        "return [true, false, [7], '2.5', null, 'abc'];",
    ));
    let SampleBuffer::F32(v) = eval(&mut p, &[], 1).remove(0) else {
        panic!("expected F32");
    };
    assert_eq!(v[..5], [1.0, 0.0, 7.0, 2.5, 0.0]);
    assert!(v[5].is_nan());
}

#[test]
fn extra_values_are_dropped_and_bare_number_accepted() {
    let mut p = compile(&script(
        "['B01']",
        "{ bands: 2, sampleType: 'UINT8' }",
        "return [samples.B01, 2, 3, 4];",
    ));
    assert_eq!(
        eval(&mut p, &[&[9.0, 8.0]], 2),
        vec![SampleBuffer::U8(vec![9, 8, 2, 2])]
    );
    let mut p = compile(&script(
        "['B01']",
        "{ bands: 1, sampleType: 'UINT8' }",
        "return samples.B01 + 1;",
    ));
    assert_eq!(
        eval(&mut p, &[&[9.0, 8.0]], 2),
        vec![SampleBuffer::U8(vec![10, 9])]
    );
}

#[test]
fn too_few_values_names_the_output() {
    let mut p = compile(&script(
        "['B01']",
        "[{ id: 'rgb', bands: 3 }]",
        "return [1, 2];",
    ));
    let err = eval_err(&mut p, &[&[0.0]], 1);
    assert!(
        matches!(&err, EvalscriptError::BadReturn { pixel: 0, message }
            if message.contains("'rgb'") && message.contains("3 bands") && message.contains("2 values")),
        "{err}"
    );
}

#[test]
fn bad_return_shapes() {
    let mut p = compile(&script(
        "['B01']",
        "{ bands: 1 }",
        "if (samples.B01 > 0) return [1];",
    ));
    let err = eval_err(&mut p, &[&[1.0, 0.0]], 2);
    assert!(
        matches!(&err, EvalscriptError::BadReturn { pixel: 1, message } if message.contains("undefined")),
        "{err}"
    );

    let two = "[{ id: 'a', bands: 1 }, { id: 'b', bands: 1 }]";
    let mut p = compile(&script("[]", two, "return [1];"));
    let err = eval_err(&mut p, &[], 1);
    assert!(
        matches!(&err, EvalscriptError::BadReturn { message, .. } if message.contains("object keyed by output id (a, b)")),
        "{err}"
    );

    let mut p = compile(&script("[]", two, "return { a: [1] };"));
    let err = eval_err(&mut p, &[], 1);
    assert!(
        matches!(&err, EvalscriptError::BadReturn { message, .. } if message.contains("output 'b'")),
        "{err}"
    );

    let mut p = compile(&script("[]", "{ bands: 1 }", "return null;"));
    assert!(matches!(
        eval_err(&mut p, &[], 1),
        EvalscriptError::BadReturn { .. }
    ));
}

#[test]
fn exception_in_evaluate_pixel() {
    let mut p = compile(&script(
        "['B01']",
        "{ bands: 1 }",
        "if (samples.B01 > 2) { throw new TypeError('value ' + samples.B01 + ' too big'); }\n\
         return [0];",
    ));
    let err = eval_err(&mut p, &[&[1.0, 2.0, 3.0, 4.0]], 4);
    assert!(
        matches!(&err, EvalscriptError::PixelThrew { pixel: 2, message }
            if message.starts_with("TypeError: value 3 too big") && message.contains("line 3")),
        "{err}"
    );
    // The program stays usable after an error.
    assert_eq!(eval(&mut p, &[&[0.0]], 1), vec![SampleBuffer::U8(vec![0])]);
}

#[test]
fn global_state_persists_across_pixels_and_blocks() {
    let source = "var count = 0;\nfunction setup() { return { input: [], output: { bands: 1, \
                  sampleType: 'UINT8' } }; }\nfunction evaluatePixel() { count++; return [count]; }";
    let mut p = compile(source);
    assert_eq!(eval(&mut p, &[], 3), vec![SampleBuffer::U8(vec![1, 2, 3])]);
    assert_eq!(eval(&mut p, &[], 2), vec![SampleBuffer::U8(vec![4, 5])]);
}

#[test]
fn other_arguments_are_passed() {
    let mut p = compile(&script(
        "[]",
        "{ bands: 4, sampleType: 'FLOAT32' }",
        "var a = arguments; return [a.length, Object.keys(a[1]).length, \
         a[2].normalizationFactor, Object.keys(a[3]).length];",
    ));
    assert_eq!(
        eval(&mut p, &[], 1),
        vec![SampleBuffer::F32(vec![5.0, 0.0, 0.0001, 0.0])]
    );
}

#[test]
fn input_mismatch_is_reported() {
    let mut p = compile(&script("['B04', 'B08']", "{ bands: 1 }", "return [0];"));
    assert!(matches!(
        eval_err(&mut p, &[&[0.0]], 1),
        EvalscriptError::Input(m) if m.contains("B04, B08")
    ));
    assert!(matches!(
        eval_err(&mut p, &[&[0.0, 1.0], &[0.0]], 2),
        EvalscriptError::Input(m) if m.contains("band B08 has 1 values")
    ));
}

#[test]
fn empty_block() {
    let mut p = compile(NDVI);
    assert_eq!(
        eval(&mut p, &[&[], &[]], 0),
        vec![SampleBuffer::F32(vec![])]
    );
}

// ---- budgets ----

#[test]
fn infinite_loop_is_stopped() {
    let mut p = compile(&script(
        "['B01']",
        "{ bands: 1 }",
        "while (true) {} return [0];",
    ));
    p.set_time_budget(Duration::from_millis(200));
    let start = Instant::now();
    let err = eval_err(&mut p, &[&[0.0]], 1);
    // boa stops it with its loop limit; the compiled tier (this script compiles) with its
    // epoch deadline. Either way the tile fails with a budget error.
    assert!(
        matches!(&err, EvalscriptError::Limit { pixel: 0, message } if message.contains("loop"))
            || matches!(&err, EvalscriptError::TimeBudget { pixels: 1, .. }),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn infinite_loop_in_try_catch_is_still_stopped() {
    let mut p = compile(&script(
        "[]",
        "{ bands: 1 }",
        "for (;;) { try { for (;;) {} } catch (e) {} } return [0];",
    ));
    p.set_time_budget(Duration::from_millis(100));
    // The deadline (checked on every iteration, see `watch`) is the block's time budget.
    assert!(matches!(
        eval_err(&mut p, &[], 1),
        EvalscriptError::TimeBudget { .. }
    ));
}

#[test]
fn runaway_recursion_is_stopped() {
    let mut p = compile(&script(
        "[]",
        "{ bands: 1 }",
        "function f(n) { return f(n + 1) + 1; } return [f(0)];",
    ));
    let err = eval_err(&mut p, &[], 1);
    assert!(
        matches!(&err, EvalscriptError::Limit { message, .. } if message.contains("recursi")),
        "{err}"
    );
}

#[test]
fn slow_compiled_script_exceeds_time_budget() {
    // ~5M loop iterations per pixel: legal per pixel, far too slow for the block.
    let mut p = compile(&script(
        "[]",
        "{ bands: 1 }",
        "var s = 0; for (var i = 0; i < 5000000; i++) { s += i; } return [s];",
    ));
    assert_eq!(
        p.boa_reason(),
        None,
        "this script is in the compiled subset"
    );
    p.set_time_budget(Duration::from_millis(30));
    let start = Instant::now();
    let err = eval_err(&mut p, &[], 1_000_000);
    assert!(
        matches!(
            &err,
            EvalscriptError::TimeBudget {
                pixels: 1_000_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn slow_script_exceeds_time_budget_between_pixels() {
    // ~5k loop iterations per pixel: each pixel is legal, the block is too slow. The
    // try/catch keeps it in boa (the compiled tier refuses it), whose budget is checked
    // between pixels.
    let mut p = compile(&script(
        "[]",
        "{ bands: 1 }",
        "var s = 0; try { for (var i = 0; i < 5000; i++) { s += i; } } catch (e) {} return [s];",
    ));
    assert!(p.boa_reason().is_some());
    p.set_time_budget(Duration::from_millis(30));
    let err = eval_err(&mut p, &[], 1_000_000);
    assert!(
        matches!(&err, EvalscriptError::TimeBudget { pixels_done, pixels: 1_000_000, .. }
            if *pixels_done > 0 && *pixels_done < 1_000_000),
        "{err}"
    );
}

#[test]
fn top_level_infinite_loop_is_stopped_at_compile() {
    let start = Instant::now();
    let err = compile_err("while (true) {}\nfunction setup() {}\nfunction evaluatePixel() {}");
    assert!(
        matches!(&err, EvalscriptError::TopLevel(m) if m.contains("loop")),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// Throughput of the NDVI script over a 250,000-pixel block.
/// Run: cargo test ndvi_throughput -- --ignored --nocapture
#[test]
#[ignore]
fn ndvi_throughput() {
    let mut p = compile(NDVI);
    let len = 250_000;
    let red = reflectances(len, 3);
    let nir = reflectances(len, 4);
    let start = Instant::now();
    let out = eval(&mut p, &[&red, &nir], len);
    let elapsed = start.elapsed();
    assert_eq!(out[0].len(), len);
    println!(
        "NDVI: {len} px in {elapsed:?} = {:.0} px/s",
        len as f64 / elapsed.as_secs_f64()
    );
}

// ---- formats, analysis errors, scenes ----

#[test]
fn syntax_errors_name_line_and_column() {
    for src in [
        "//VERSION=3\nfunction setup() {\n  return { input: [, };\n}\n",
        "function setup() {\n  return 1;\n",
        "let a = ;\nreturn [a];",
    ] {
        let err = compile_err(src);
        assert!(
            matches!(&err, EvalscriptError::Syntax(m) if m.contains("line") && m.contains("col")),
            "{src}: {err}"
        );
    }
    let err = compile_err("//VERSION=3\nfunction setup() {\n  return { input: [, };\n}\n");
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn v1_function_style_needs_output_count() {
    let err = compile_err(
        "function setup(dss) { setInputComponents([dss.B04]); }\n\
         function evaluatePixel(samples) { return [samples[0].B04]; }",
    );
    assert!(
        matches!(&err, EvalscriptError::InvalidSetup(m) if m.contains("setOutputComponentCount")),
        "{err}"
    );
}

#[test]
fn v1_body_failing_its_probe_is_reported() {
    let err = compile_err("if (B04 > 0) throw 'nope';\nreturn [B04];");
    assert!(
        matches!(&err, EvalscriptError::TopLevel(m) if m.contains("probe") && m.contains("nope")),
        "{err}"
    );
    let err = compile_err("var x = B04;\nreturn 'text';");
    assert!(
        matches!(&err, EvalscriptError::InvalidSetup(m) if m.contains("V1 script")),
        "{err}"
    );
}

#[test]
fn scene_hooks_must_return_given_scenes() {
    let mut p = compile(
        "function setup() { return { input: ['B04'], output: { bands: 1 }, mosaicking: 'TILE' }; }\n\
         function preProcessScenes(c) { c.scenes.tiles = [{ date: 'x' }]; return c; }\n\
         function evaluatePixel(s) { return [s.length]; }",
    );
    let data: &[f32] = &[0.0];
    let scenes = [SceneInput {
        bands: vec![data],
        ..SceneInput::default()
    }];
    let err = match p.evaluate_scenes(&scenes, 1) {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(err) => err,
    };
    assert!(err.to_string().contains("preProcessScenes"), "{err}");
}

#[test]
fn simple_scripts_report_user_data() {
    let mut p = compile(
        "var n = 0;\nfunction setup() { return { input: ['B04'], output: { bands: 1 } }; }\n\
         function evaluatePixel(s, sc, im, cd, om) { om.userData = { last: s.B04 }; return [0]; }",
    );
    let data: &[f32] = &[0.5, 0.25];
    let scenes = [SceneInput {
        bands: vec![data],
        ..SceneInput::default()
    }];
    let result = match p.evaluate_scenes(&scenes, 2) {
        Ok(r) => r,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(result.user_data, Some(serde_json::json!({ "last": 0.25 })));
    assert_eq!(result.bands, vec![1]);
    let err = p.evaluate_scenes(&[], 2);
    assert!(matches!(err, Err(EvalscriptError::Input(m)) if m.contains("exactly one")));
}

#[test]
fn v1_body_syntax_error_points_past_the_return() {
    let err = compile_err("var a = B04;\nif (a > 0) return [a];\nvar b = (;\nreturn [b];");
    assert!(
        matches!(&err, EvalscriptError::Syntax(m) if m.contains("line 3")),
        "{err}"
    );
}
