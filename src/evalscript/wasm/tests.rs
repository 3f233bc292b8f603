//! Equivalence of the compiled tier with the boa tier, subset boundaries, and limits.

use std::time::{Duration, Instant};

use super::{CompiledProgram, WasmError};
use crate::evalscript::Program;
use crate::raster::SampleBuffer;

/// xorshift64*: deterministic pseudo-random bits without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Mostly reflectance-like values, with NaN, ±Inf, ±0, negatives, values above 1,
    /// exact halves (rounding ties) and small integers mixed in.
    fn sample(&mut self) -> f32 {
        let r = self.next();
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
        match r % 16 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => 0.0,
            4 => -0.0,
            5 => (-unit * 2.0) as f32,
            6 => (1.0 + unit * 5.0) as f32,
            7 => ((r >> 40) % 7) as f32 - 3.0 + 0.5,
            8 => ((r >> 40) % 5) as f32,
            _ => (unit * 0.6) as f32,
        }
    }
}

pub(super) fn random_bands(n_bands: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng(seed);
    (0..n_bands)
        .map(|_| (0..len).map(|_| rng.sample()).collect())
        .collect()
}

/// Runs `source` in both tiers on `len` random pixels and asserts every FLOAT32 output
/// sample has the same bits (NaN matches any NaN: JS cannot observe NaN payloads).
fn assert_equivalent(source: &str, len: usize, seed: u64) {
    let mut boa = Program::compile(source).expect("boa compiles the test script");
    let setup = boa.setup().clone();
    let counts: Vec<usize> = setup.outputs.iter().map(|o| o.bands).collect();
    let mut compiled = CompiledProgram::compile(source, &setup.input_bands, &counts)
        .unwrap_or_else(|e| panic!("compiled tier rejected the script: {e}"));
    let planes = random_bands(setup.input_bands.len(), len, seed);
    let bands: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
    let expected = boa.evaluate(&bands, len).expect("boa evaluates");
    let got = compiled.evaluate(&bands, len).expect("wasm evaluates");
    let SampleBuffer::F32(expected) = &expected[0] else {
        panic!("test scripts must use FLOAT32 output");
    };
    assert_eq!(got.len(), counts[0]);
    let mut mismatches = 0;
    for (band, plane) in got.iter().enumerate() {
        assert_eq!(plane.len(), len);
        for (i, value) in plane.iter().enumerate() {
            let want = expected[band * len + i];
            let have = *value as f32;
            let same = want.to_bits() == have.to_bits() || (want.is_nan() && have.is_nan());
            if !same {
                mismatches += 1;
                if mismatches < 10 {
                    let inputs: Vec<f32> = planes.iter().map(|p| p[i]).collect();
                    eprintln!(
                        "pixel {i} band {band}: inputs {inputs:?} boa {want:e} wasm {have:e}"
                    );
                }
            }
        }
    }
    assert_eq!(mismatches, 0, "{mismatches} samples differ");
}

pub(super) const PIXELS: usize = 100_000;

const NDVI: &str = r#"//VERSION=3
function setup() {
  return { input: ["B04", "B08"], output: { bands: 1, sampleType: "FLOAT32" } };
}
function evaluatePixel(samples) {
  return [(samples.B08 - samples.B04) / (samples.B08 + samples.B04)];
}
"#;

const TERNARY: &str = r#"//VERSION=3
const threshold = 0.2;
var gain = 2.5;
function setup() {
  return { input: ["B02", "B03", "B04", "B08"], output: { bands: 4, sampleType: "FLOAT32" } };
}
function clamp(x, lo, hi) { return x < lo ? lo : (x > hi ? hi : x); }
function classify(v) {
  if (v > 0.6) return 3;
  else if (v > threshold) { return 2; }
  if (v >= 0 || v !== v) return 1;
  return 0;
}
function evaluatePixel(s) {
  let ndvi = (s.B08 - s.B04) / (s.B08 + s.B04);
  let water = s.B03 > s.B08 && !(s.B02 < 0.01);
  let c = classify(ndvi);
  var t = water ? 0.1 : (ndvi < 0 ? -ndvi : ndvi * gain);
  let m = (s.B02 || s.B03) + (s.B04 && 2);
  let k = 0;
  k += c; k *= 2; k -= water; k /= 3;
  let x = s.B08 % 0.3;
  let y = -s.B04 % 2;
  let flag = water == (c > 1);
  return [clamp(t, -1, 1) + k, m + x, y + (flag === true), isNaN(ndvi) ? -1 : c];
}
"#;

const MATHY: &str = r#"//VERSION=3
function setup() {
  return { input: ["B04", "B08", "B11"], output: { bands: 36, sampleType: "FLOAT32" } };
}
function evaluatePixel(samples) {
  let a = samples.B04, b = samples.B08, c = samples.B11;
  let r8 = 0;
  for (let i = 0; i < 4; i++) { if (i == 2) continue; r8 += Math.round(a * i + 0.5); }
  let j = 3; while (j > 0) { j--; r8 -= 0.25; if (c > 2) break; }
  let k = 0; do { k += 0.5; } while (k < c && k < 3);
  return [Math.round(a), Math.round(-b), Math.round(c * 4), Math.floor(a), Math.ceil(b),
          Math.sqrt(a), Math.abs(b), Math.pow(a, b), Math.pow(b, 1.5), a ** 2, b ** -1, c ** 0.5,
          Math.exp(a), Math.log(b), Math.log10(c), Math.log2(a), Math.sin(a), Math.cos(b),
          Math.tan(c), Math.atan(a), Math.atan2(a, b), Math.max(a, b, c), Math.min(a, b),
          Math.hypot(a, b, c), Math.sign(a - b), Math.trunc(c * 3), Math.cbrt(a),
          Math.fround(b), Math.asin(a) + Math.acos(b), Math.sinh(a) + Math.tanh(b),
          Math.expm1(a) + Math.log1p(b), r8, k, Math.max(a, 0) + Math.min(b, -0),
          Math.cosh(c) + Math.asinh(a) + Math.acosh(b) + Math.atanh(c), a % b];
}
"#;

#[test]
fn ndvi_matches_boa_bit_for_bit() {
    assert_equivalent(NDVI, PIXELS, 0x9E37_79B9_7F4A_7C15);
}

#[test]
fn ternary_heavy_script_matches_boa_bit_for_bit() {
    assert_equivalent(TERNARY, PIXELS, 12345);
}

#[test]
fn math_heavy_script_matches_boa_bit_for_bit() {
    assert_equivalent(MATHY, PIXELS, 777);
}

#[test]
fn blocks_larger_than_one_chunk_are_evaluated_whole() {
    // Spans several MAX_BLOCK_PIXELS chunks, with a ragged last chunk.
    assert_equivalent(NDVI, super::MAX_BLOCK_PIXELS * 2 + 17, 42);
}

fn compile(source: &str, bands: &[&str], out: usize) -> Result<CompiledProgram, WasmError> {
    let bands: Vec<String> = bands.iter().map(|b| b.to_string()).collect();
    CompiledProgram::compile(source, &bands, &[out])
}

#[test]
fn known_values_are_computed_with_js_semantics() {
    let source = r#"
      function evaluatePixel(s) {
        return [s.A % 3, -s.A % 3, Math.round(-2.5), Math.round(2.5), true + true, 0 * -1,
                Math.max(-0, 0), Math.min(0, -0), 1 / 0, (s.A > 1) * 7, Math.max(), Math.min()];
      }"#;
    let mut program = compile(source, &["A"], 12).expect("compiles");
    let out = program.evaluate(&[&[7.5]], 1).expect("runs");
    let got: Vec<u64> = out.iter().map(|p| p[0].to_bits()).collect();
    let want: Vec<u64> = [
        1.5,
        -1.5,
        -2.0,
        3.0,
        2.0,
        -0.0,
        0.0,
        -0.0,
        f64::INFINITY,
        7.0,
        f64::NEG_INFINITY,
        f64::INFINITY,
    ]
    .iter()
    .map(|v: &f64| v.to_bits())
    .collect();
    assert_eq!(got, want);
}

#[test]
fn unsupported_constructs_fall_back_with_a_reason() {
    let cases = [
        (
            "function evaluatePixel(s) { return [s.A.toFixed(2)]; }",
            "method call",
        ),
        (
            "function evaluatePixel(s) { return ['a']; }",
            "string used other than",
        ),
        (
            "function evaluatePixel(s) { return [s.B]; }",
            "not an input band",
        ),
        (
            "function evaluatePixel(s, scenes) { return [scenes.x]; }",
            "scenes",
        ),
        (
            "var n = 0; function evaluatePixel(s) { n++; return [n]; }",
            "assigned somewhere",
        ),
        (
            "var g = 1; function setup() { g = 2; } function evaluatePixel(s) { return [g]; }",
            "assigned somewhere",
        ),
        (
            "function evaluatePixel(s) { return [Math.abs(s.A)]; } function setup() { Math = 1; }",
            "assigns 'Math'",
        ),
        (
            "function evaluatePixel(s) { let x = 1; const y = 2; y = x; return [y]; }",
            "constant 'y'",
        ),
        (
            "function f(x) { return f(x); } function evaluatePixel(s) { return [f(1)]; }",
            "recursive",
        ),
        (
            "function evaluatePixel(s) { return [s.A ** s.A]; }",
            "computed exponent",
        ),
        (
            "function evaluatePixel(s) { if (s.A) return [1]; }",
            "without a return",
        ),
        (
            "function evaluatePixel(s) { let x = 1; x = true; return [x]; }",
            "different types",
        ),
        ("function evaluatePixel(s) { return [s.A, 2]; }", ""),
        (
            "const v = new ColorRampVisualizer([]); function evaluatePixel(s) { return [v]; }",
            "initialiser",
        ),
        ("function evaluatePixel(s) { return [s.A | 0]; }", "bitwise"),
        (
            "function evaluatePixel(s) { return [1, 2]; } foo();",
            "top-level statement",
        ),
        ("function evaluatePixel(s) { return [1, 2 }", "parse error"),
    ];
    for (source, reason) in cases {
        let out = if reason.is_empty() { 3 } else { 1 };
        match compile(source, &["A"], out) {
            Err(WasmError::Unsupported(message)) => {
                assert!(
                    message.contains(reason),
                    "{source}: reason {message:?} lacks {reason:?}"
                )
            }
            other => panic!("{source}: expected Unsupported, got {other:?}"),
        }
    }
    let multi = CompiledProgram::compile("function evaluatePixel(s) { return {}; }", &[], &[1, 1]);
    assert!(matches!(multi, Err(WasmError::Unsupported(_))));
    let outputs = [("default".to_string(), 1), ("dataMask".to_string(), 1)];
    for (source, reason) in [
        (
            "function evaluatePixel(s) { return [1, 2]; }",
            "object literal keyed",
        ),
        (
            "function evaluatePixel(s) { return { default: [1] }; }",
            "lacks output 'dataMask'",
        ),
        (
            "function evaluatePixel(s) { return { default: [1], ...x }; }",
            "spread",
        ),
    ] {
        match CompiledProgram::compile_with_ids(source, &[], &outputs) {
            Err(WasmError::Unsupported(message)) => {
                assert!(
                    message.contains(reason),
                    "{source}: reason {message:?} lacks {reason:?}"
                )
            }
            other => panic!("{source}: expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn input_mismatch_is_an_error() {
    let mut program = compile(NDVI_BARE, &["B04", "B08"], 1).expect("compiles");
    assert!(matches!(
        program.evaluate(&[&[1.0]], 1),
        Err(WasmError::Input(_))
    ));
    assert!(matches!(
        program.evaluate(&[&[1.0], &[1.0]], 2),
        Err(WasmError::Input(_))
    ));
}

const NDVI_BARE: &str = "function evaluatePixel(s) { return [(s.B08 - s.B04) / (s.B08 + s.B04)]; }";

#[test]
fn infinite_loop_is_stopped_by_the_time_budget() {
    let source = "function evaluatePixel(s) { let x = 0; while (true) { x++; } return [x]; }";
    let mut program = compile(source, &["A"], 1).expect("compiles");
    program.set_time_budget(Duration::from_millis(100));
    let start = Instant::now();
    let result = program.evaluate(&[&[1.0; 4]], 4);
    let elapsed = start.elapsed();
    assert!(
        matches!(result, Err(WasmError::TimeBudget { .. })),
        "got {result:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // The instance stays usable after an interrupt.
    let mut ok = compile(NDVI_BARE, &["B04", "B08"], 1).expect("compiles");
    let out = ok.evaluate(&[&[0.25], &[0.75]], 1).expect("runs");
    assert_eq!(out[0][0], 0.5);
}

pub(super) fn same_samples(a: &SampleBuffer, b: &SampleBuffer) -> bool {
    match (a, b) {
        (SampleBuffer::F32(a), SampleBuffer::F32(b)) => a
            .iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())),
        _ => a == b,
    }
}

#[test]
fn every_compilable_corpus_script_matches_boa() {
    // The crate's evalscripts/ (the scratch build crate finds it as a sibling of main/).
    let own = concat!(env!("CARGO_MANIFEST_DIR"), "/evalscripts");
    let dir = if std::path::Path::new(own).exists() {
        own
    } else {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../main/evalscripts")
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("evalscripts/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .collect();
    entries.sort();
    let mut compiled_names = Vec::new();
    for path in entries {
        let source = std::fs::read_to_string(&path).expect("readable script");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let Ok(program) = Program::compile(&source) else {
            eprintln!("{name}: boa rejects it");
            continue;
        };
        if let Some(reason) = program.boa_reason() {
            eprintln!("{name}: boa ({reason})");
            continue;
        }
        eprintln!("{name}: compiled");
        super::coverage_tests::assert_tiers_agree(&source, 100_000, 99);
        compiled_names.push(name);
    }
    eprintln!("compiled tier covers: {}", compiled_names.join(", "));
    // The five-script set of the runtime issue, and the other helper-based scripts.
    for name in [
        "ndvi.js",
        "true_color_hcv.js",
        "ndvi_colorblend.js",
        "ndwi_datamask.js",
        "ndmi_ramp.js",
        "color_map_default.js",
        "default_visualizer_gamma.js",
        "scl_value_map.js",
        "value_interpolate.js",
        "red_temperature.js",
        "v1_ndvi_body.js",
        "v1_indexdb_colorblend.js",
        "v1_fis_function.js",
    ] {
        assert!(
            compiled_names.iter().any(|n| n == name),
            "{name} must compile"
        );
    }
}

#[test]
fn object_returns_fill_outputs_in_setup_order() {
    let source = r#"//VERSION=3
function setup() {
  return { input: ["B03", "B08", "dataMask"],
           output: [{ id: "default", bands: 2, sampleType: "FLOAT32" },
                    { id: "extra", bands: 1, sampleType: "FLOAT32" },
                    { id: "dataMask", bands: 1, sampleType: "FLOAT32" }] };
}
function evaluatePixel(s) {
  let n = 0;
  return { dataMask: [s.dataMask, n++], ignored: [n++], extra: n++,
           default: [(s.B03 - s.B08) / (s.B03 + s.B08), n] };
}
"#;
    let boa = Program::compile(source).expect("boa compiles");
    let outputs: Vec<(String, usize)> = boa
        .setup()
        .outputs
        .iter()
        .map(|o| (o.id.clone(), o.bands))
        .collect();
    let names = boa.setup().input_bands.clone();
    let mut compiled =
        CompiledProgram::compile_with_ids(source, &names, &outputs).expect("compiles");
    let out = compiled
        .evaluate(&[&[0.25], &[0.75], &[1.0]], 1)
        .expect("runs");
    let got: Vec<f64> = out.iter().map(|p| p[0]).collect();
    // Source order: dataMask (n++ -> 0), ignored (1), extra (2), default (n is 3).
    assert_eq!(got, vec![-0.5, 3.0, 2.0, 1.0]);
}

/// Every helper intrinsic, fixed-size arrays, spreads and `switch`, against boa.
const HELPERS: &str = r#"//VERSION=3
function setup() {
  return { input: ["A", "B", "C"], output: { bands: 58, sampleType: "FLOAT32" } };
}
const limits = [0, 0.3, 0.3, 0.8];
const colors = [[0.5, 0.25, 0], [1, 1, 0], [0, 1, 1], [0, 0.5, 0]];
const hcv = new HighlightCompressVisualizer(-0.1, 0.4, 1.2, 0.01, 1.5);
const hcv1 = new HighlightCompressVisualizer(0, 2);
const single = new HighlightCompressVisualizerSingle(0, 0.3);
const dv = new DefaultVisualizer(0.05, 0.45);
const dvg = new DefaultVisualizer(0, 0.5, 1, 0, 0.7);
const ramp = new ColorRampVisualizer(
  [[0.8, [0, 0, 1]], [-0.5, 0xff0000], [0.1, 0x00ff80], [0.1, 0x123456]], 0.2, -0.3);
const ramp2 = new ColorRampVisualizer([[0, 0x000000], [1, 0xffffff]]);
const temp = ColorRampVisualizer.createRedTemperature(0, 0.5);
const wg = ColorRampVisualizer.createWhiteGreen(-0.2, 0.9);
const br = ColorRampVisualizer.createBlueRed(1, 0);
const cmap = new ColorMapVisualizer([[0.5, 0x00ff00], [-1, -1], [0.2, [0.1, 0.2, 0.3]], [0.2, 0x0000ff]]);
const dmap = ColorMapVisualizer.createDefaultColorMap();
const weights = [0.25, 0.5, 0.25];
function evaluatePixel(s) {
  const x = index(s.A, s.B);
  var c = [s.A, s.B * 2, s.C];
  let sw = 0;
  switch (Math.round(s.C * 4)) {
    case 0: sw += 1;
    case 1: sw += 10; break;
    default: sw += 100;
    case 3: sw += 1000; break;
    case -1: sw = -1;
  }
  let loops = 0;
  for (let i = 0; i < 4; i++) {
    switch (i) { case 1: break; case 2: loops += 10; default: loops += i; }
    if (i == 3) break;
    loops += 0.5;
  }
  let sw2 = 0;
  switch (s.A > s.B) { case true: sw2 = 1; break; case 0: sw2 = 5; break; case false: sw2 = 2; }
  return [
    x, index(s.C, true), ...colorBlend(x, limits, colors),
    valueInterpolate(s.C, [0, 0.5, 1], [10, -5, 20]), valueMap(s.C, [0.1, 0.5], [1, 2, 3]),
    ...valueMap(s.A, [0.2], [[1, 2], [3, 4]]), colorMap(x, [-0.5, 0, 0.5], [7, 8, 9, 10]),
    ...combine(c, [1, 2, 3], s.B), hcv.process(s.A), hcv1.process(s.B),
    ...single.process(s.C), ...hcv.processList([s.A, s.B]), dv.process(s.C), dvg.process(s.A),
    ...dv.processList(c), ...ramp.process(x), ...ramp2.process(s.A), ...temp.process(s.B),
    ...wg.process(x), ...br.process(s.C), ...cmap.process(x), ...dmap.process(x),
    c[0] + c[2], c.length, weights[1] * s.A, Math.max(...c, ...weights), Math.min(...c),
    sw, loops, sw2, ...ramp2.process(s.B).map(function (v, i) { return v * 255 + i; }),
    ...c.map((v) => v * 2)
  ];
}
"#;

#[test]
fn helper_intrinsics_match_boa_bit_for_bit() {
    assert_equivalent(HELPERS, PIXELS, 0x5EED);
}

#[test]
fn intrinsics_compute_the_documented_values() {
    let source = r#"
      const viz = new ColorRampVisualizer([[0, 0x000000], [1, 0xffffff]]);
      const hcv = new HighlightCompressVisualizer(0, 0.4);
      function evaluatePixel(s) {
        let k = 0;
        switch (s.A) { case 0.5: k = 1; case 2: k += 2; break; default: k = 9; }
        return [index(0.75, 0.25), index(0, 0), ...viz.process(s.A), hcv.process(s.A),
                colorBlend(s.A, [0, 1], [10, 20]), valueMap(s.A, [0.5], [3, 4]),
                colorMap(s.A, [0.5], [3, 4]), k];
      }"#;
    let mut program = compile(source, &["A"], 10).expect("compiles");
    let out = program.evaluate(&[&[0.5]], 1).expect("runs");
    let got: Vec<f64> = out.iter().map(|p| p[0]).collect();
    // 0.5 on the black-white ramp: 127.5 rounds half up to 128 per channel.
    // HCV(0, 0.4): 0.5 / 0.4 = 1.25 > 0.92 -> 0.92 + 0.33 * 0.08 / 1.08, clamped to 0.9444.
    let h = 0.92 + (1.25 - 0.92) * (0.08 / 1.08);
    assert_eq!(
        got,
        vec![
            0.5,
            0.0,
            128.0 / 255.0,
            128.0 / 255.0,
            128.0 / 255.0,
            h,
            15.0,
            3.0,
            4.0,
            3.0
        ]
    );
}

#[test]
fn tables_that_may_change_are_not_folded() {
    let cases = [
        (
            "const l = [0, 1]; function setup() { l.push(2); } \
             function evaluatePixel(s) { return [colorBlend(s.A, l, [0, 1])]; }",
            "may change it",
        ),
        (
            "const v = new HighlightCompressVisualizer(0, 1); function setup() { v.gamma = 2; } \
             function evaluatePixel(s) { return [v.process(s.A)]; }",
            "may change it",
        ),
        (
            "const c = [[0, 0], [1, 1]]; var alias = c[0]; \
             function evaluatePixel(s) { return colorBlend(s.A, [0, 1], c); }",
            "may change it",
        ),
        (
            "ColorRampVisualizer.prototype.process = function (v) { return [v]; }; \
             function evaluatePixel(s) { return [s.A]; }",
            "top-level statement",
        ),
        (
            "var l = [0, 1]; function setup() { this.l.push(2); } \
             function evaluatePixel(s) { return [colorBlend(s.A, l, [0, 1])]; }",
            "may change it",
        ),
        (
            "function evaluatePixel(s) { let k = 0; switch (s.A) { case s.A: k = 1; } return [k]; }",
            "switch case that is not a constant",
        ),
        (
            "function evaluatePixel(s) { let k = 0; for (let i = 0; i < 2; i++) { \
             switch (i) { case 0: continue; } k++; } return [k]; }",
            "continue",
        ),
        (
            "function evaluatePixel(s) { var c = [s.A, 1]; return [c[2]]; }",
            "not a literal in range",
        ),
        (
            "function evaluatePixel(s) { return [colorBlend(s.A, [0, 1], [[1], [2]])]; }",
            "not constant",
        ),
    ];
    for (source, reason) in cases {
        match compile(source, &["A"], 1) {
            Err(WasmError::Unsupported(message)) => assert!(
                message.contains(reason),
                "{source}: reason {message:?} lacks {reason:?}"
            ),
            other => panic!("{source}: expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn a_script_function_shadows_the_helper_of_the_same_name() {
    let source = r#"
      function index(a, b) { return a * 10 + b; }
      function evaluatePixel(s) { return [index(s.A, 2)]; }"#;
    let mut program = compile(source, &["A"], 1).expect("compiles");
    let out = program.evaluate(&[&[0.5]], 1).expect("runs");
    assert_eq!(out[0][0], 7.0);
}

#[test]
fn skipped_var_declarations_read_as_undefined() {
    // Without hoisting, `x` would keep the previous pixel's value when the branch is
    // skipped; JS reads undefined (NaN).
    let source = r#"//VERSION=3
function setup() {
  return { input: ["A"], output: { bands: 3, sampleType: "FLOAT32" } };
}
function f(v) { if (v > 0.3) { var y = v; } return y; }
function evaluatePixel(s) {
  if (s.A > 0.2) { var x = s.A * 2; }
  let k = 0;
  switch (Math.round(s.A * 3)) { case 0: var z = 5; case 1: k = 1; break; default: k = z; }
  return [x, f(s.A), k];
}
"#;
    assert_equivalent(source, PIXELS, 31337);
}

/// `Math.round` is inlined (not a host call) in both code shapes: ties, -0.5..-0 (which
/// must give -0), values one ulp below .5, huge values, NaN and infinities, against boa.
const ROUNDING: &str = r#"//VERSION=3
function setup() {
  return { input: ["B04", "B08"], output: { bands: 8, sampleType: "FLOAT32" } };
}
function evaluatePixel(s) {
  let a = s.B04, b = s.B08;
  return [Math.round(a), Math.round(-a), Math.round(a * 2.5), Math.round(a + 0.49999999999999994),
          Math.round(a - 0.5), Math.round(a / b), Math.round(a * 1e17), Math.round(b - a / 2)];
}
"#;

#[test]
fn inline_math_round_matches_boa_in_both_code_shapes() {
    // Loop-free: the SIMD shape.
    assert_equivalent(ROUNDING, PIXELS, 4242);
    // With a loop: the one-pixel shape.
    let looped = ROUNDING.replace(
        "let a = s.B04, b = s.B08;",
        "let a = s.B04, b = s.B08; for (let i = 0; i < 1; i++) { a += 0; }",
    );
    assert_equivalent(&looped, PIXELS, 4243);
}
