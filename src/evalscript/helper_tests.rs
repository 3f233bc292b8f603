//! The helper library (prelude.js) against the documented examples of Utilities.qmd
//! (evalscript-v3.md §4) and hand-computed values.

use boa_engine::{Context, Source};

use super::runtime::{new_context, DEFAULT_TIME_BUDGET};

fn ctx() -> Context {
    match new_context(DEFAULT_TIME_BUDGET) {
        Ok(ctx) => ctx,
        Err(err) => panic!("context: {err}"),
    }
}

/// Evaluates `expr` and returns `JSON.stringify` of it.
fn json(ctx: &mut Context, expr: &str) -> String {
    let src = format!("JSON.stringify({expr})");
    match ctx.eval(Source::from_bytes(src.as_bytes())) {
        Ok(v) => v
            .as_string()
            .map(|s| s.to_std_string_escaped())
            .unwrap_or_else(|| "undefined".into()),
        Err(err) => panic!("{expr}: {err}"),
    }
}

fn num(ctx: &mut Context, expr: &str) -> f64 {
    match ctx.eval(Source::from_bytes(expr.as_bytes())) {
        Ok(v) => v.as_number().unwrap_or(f64::NAN),
        Err(err) => panic!("{expr}: {err}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Compares a JS array of numbers with expected values within 1e-12 (the documented
/// outputs are printed doubles and may differ from ours in the last ulp).
fn assert_vec(ctx: &mut Context, expr: &str, expected: &[f64]) {
    let got: Vec<f64> = serde_json::from_str(&json(ctx, expr)).unwrap_or_default();
    assert_eq!(got.len(), expected.len(), "{expr}: {got:?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(close(*g, *e), "{expr}: got {got:?}, expected {expected:?}");
    }
}

#[test]
fn color_map_visualizer_documented() {
    let mut c = ctx();
    c.eval(Source::from_bytes(
        "var v = new ColorMapVisualizer([[200, 0xff0000], [300, 0x0000ff]]);",
    ))
    .ok();
    for x in [199, 200, 250, 299] {
        assert_vec(&mut c, &format!("v.process({x})"), &[1.0, 0.0, 0.0]);
    }
    assert_vec(&mut c, "v.process(300)", &[0.0, 0.0, 1.0]);
    // Default map: 0.45 falls on [0.4, 0x33ffff].
    assert_vec(
        &mut c,
        "ColorMapVisualizer.createDefaultColorMap().process(0.45)",
        &[51.0 / 255.0, 1.0, 1.0],
    );
}

#[test]
fn color_ramp_visualizer_documented() {
    let mut c = ctx();
    for ramp in [
        "[[200, 0xff0000], [300, 0x0000ff]]",
        "[[200, [1, 0, 0]], [300, [0, 0, 1]]]",
    ] {
        c.eval(Source::from_bytes(
            format!("var v = new ColorRampVisualizer({ramp});").as_bytes(),
        ))
        .ok();
        assert_vec(&mut c, "v.process(199)", &[1.0, 0.0, 0.0]);
        assert_vec(&mut c, "v.process(200)", &[1.0, 0.0, 0.0]);
        assert_vec(
            &mut c,
            "v.process(250)",
            &[0.5019607843137255, 0.0, 0.5019607843137255],
        );
        assert_vec(
            &mut c,
            "v.process(299)",
            &[0.011764705882352941, 0.0, 0.9882352941176471],
        );
        // The docs print [0, 1, 0], a typo for blue (evalscript-v3.md §4.1).
        assert_vec(&mut c, "v.process(300)", &[0.0, 0.0, 1.0]);
    }
    // Descending ramps (as in the DEM scripts) and min/max remapping: [0,100] -> [0,10].
    c.eval(Source::from_bytes(
        "var d = new ColorRampVisualizer([[100, 0xffffff], [0, 0x000000]], 0, 10);",
    ))
    .ok();
    assert_vec(
        &mut c,
        "d.process(5)",
        &[128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0],
    );
    assert_vec(&mut c, "d.inverse().process(0)", &[1.0, 1.0, 1.0]);
    assert_eq!(json(&mut c, "d.processList([0, 10])"), "[[0,0,0],[1,1,1]]");
}

#[test]
fn color_ramp_presets_documented() {
    let mut c = ctx();
    let red: &[(f64, [f64; 3])] = &[
        (0.0, [0.0, 0.0, 0.0]),
        (0.3, [0.43137254901960786, 0.0, 0.0]),
        (0.5, [0.7176470588235294, 0.047058823529411764, 0.0]),
        (0.8, [1.0, 0.6196078431372549, 0.2]),
        (1.0, [1.0, 1.0, 1.0]),
    ];
    for (x, e) in red {
        assert_vec(
            &mut c,
            &format!("ColorRampVisualizer.createRedTemperature(0, 1).process({x})"),
            e,
        );
    }
    let green: &[(f64, [f64; 3])] = &[
        (0.0, [0.0, 0.0, 0.0]),
        (0.3, [0.0, 0.2980392156862745, 0.0]),
        (0.5, [0.16862745098039217, 0.5019607843137255, 0.0]),
        (0.8, [0.6666666666666666, 0.8, 0.3333333333333333]),
        (1.0, [1.0, 1.0, 1.0]),
    ];
    for (x, e) in green {
        assert_vec(
            &mut c,
            &format!("ColorRampVisualizer.createWhiteGreen(0, 1).process({x})"),
            e,
        );
    }
    let blue: &[(f64, [f64; 3])] = &[
        (0.0, [0.0, 0.0, 0.5019607843137255]),
        (0.3, [0.0, 0.7019607843137254, 1.0]),
        (0.5, [0.5019607843137255, 1.0, 0.5019607843137255]),
        (0.8, [1.0, 0.2980392156862745, 0.0]),
        (1.0, [0.5019607843137255, 0.0, 0.0]),
    ];
    for (x, e) in blue {
        assert_vec(
            &mut c,
            &format!("ColorRampVisualizer.createBlueRed(0, 1).process({x})"),
            e,
        );
    }
}

#[test]
fn highlight_compress_documented() {
    let mut c = ctx();
    c.eval(Source::from_bytes(
        "var h = new HighlightCompressVisualizer(0.1, 0.4);",
    ))
    .ok();
    let cases = [
        (0.0, 0.0),
        (0.1, 0.0),
        (0.25, 0.5),
        (0.376, 0.92),
        (0.7, 1.0),
        (1.1, 1.0),
    ];
    for (x, e) in cases {
        let got = num(&mut c, &format!("h.process({x})"));
        assert!((got - e).abs() < 1e-9, "process({x}) = {got}, expected {e}");
    }
    // 0.4 -> 1 -> 0.92 + 0.08 * 0.08 / 1.08
    assert!(close(
        num(&mut c, "h.process(0.4)"),
        0.92 + 0.08 * 0.08 / 1.08
    ));
    assert!((num(&mut c, "h.process(0.4)") - 0.9259).abs() < 1e-4);
    assert_vec(&mut c, "h.processList([0.1, 0.25])", &[0.0, 0.5]);
    assert_vec(
        &mut c,
        "new HighlightCompressVisualizerSingle(0, 2).process(1)",
        &[0.5],
    );
    // DefaultVisualizer: gamma 2 is not clamped: ((3-0)/1)^2 = 9.
    assert!(close(
        num(&mut c, "new DefaultVisualizer(0, 1, 1, 0, 2).process(3)"),
        9.0
    ));
    assert!(close(
        num(&mut c, "new DefaultVisualizer(0, 2).process(3)"),
        1.0
    ));
    assert!(close(
        num(&mut c, "new DefaultVisualizer(0, 2).process(1)"),
        0.5
    ));
}

#[test]
fn functions_documented() {
    let mut c = ctx();
    assert_vec(&mut c, "int2rgb(255)", &[0.0, 0.0, 255.0]);
    assert_vec(&mut c, "int2rgb(256)", &[0.0, 1.0, 0.0]);
    assert_vec(&mut c, "int2rgb(65537)", &[1.0, 0.0, 1.0]);
    assert_eq!(num(&mut c, "rgb2int([0, 0, 255])"), 255.0);
    assert_eq!(num(&mut c, "rgb2int([0, 1, 0])"), 256.0);
    assert_eq!(num(&mut c, "rgb2int([1, 0, 1])"), 65537.0);
    assert_vec(&mut c, "normalizeRGB([255, 51, 0])", &[1.0, 0.2, 0.0]);
    assert_vec(
        &mut c,
        "combine([100, 0, 0], [0, 100, 0], 1)",
        &[100.0, 0.0, 0.0],
    );
    assert_vec(
        &mut c,
        "combine([100, 0, 0], [0, 100, 0], 0)",
        &[0.0, 100.0, 0.0],
    );
    assert_vec(
        &mut c,
        "combine([100, 0, 0], [0, 100, 0], 0.5)",
        &[50.0, 50.0, 0.0],
    );
    assert!(close(num(&mut c, "index(0.6, 0.4)"), 0.2));
    assert_eq!(num(&mut c, "index(0.5, -0.5)"), 0.0);
    assert_eq!(num(&mut c, "inverse(2.0)"), 0.5);
    assert_eq!(num(&mut c, "inverse(5.0)"), 0.2);
    assert_eq!(num(&mut c, "inverse(0)"), 1.7976931348623157e308);
    assert_eq!(num(&mut c, "JAVA_DOUBLE_MAX_VAL"), f64::MAX);
    let vm = "[1, 3, 5, 7, 10], [100, 300, 500, 700, 900]";
    for (x, e) in [(5.0, 500.0), (1.0, 100.0), (2.0, 300.0), (12.0, 900.0)] {
        assert_eq!(num(&mut c, &format!("valueMap({x}, {vm})")), e);
    }
    assert_eq!(num(&mut c, "valueMap(50)"), 50.0);
}

#[test]
fn color_blend_and_color_map() {
    let mut c = ctx();
    // Numbers: 0.25 between 0 (0) and 0.5 (10) -> 5.
    assert_eq!(
        num(&mut c, "colorBlend(0.25, [0, 0.5, 1], [0, 10, 30])"),
        5.0
    );
    assert_eq!(
        num(&mut c, "valueInterpolate(0.75, [0, 0.5, 1], [0, 10, 30])"),
        20.0
    );
    assert_eq!(num(&mut c, "colorBlend(-3, [0, 1], [4, 8])"), 4.0);
    assert_eq!(num(&mut c, "colorBlend(3, [0, 1], [4, 8])"), 8.0);
    assert_eq!(num(&mut c, "colorBlend(7)"), 7.0);
    assert_vec(
        &mut c,
        "colorBlend(0.5, [0, 1], [[0, 0, 1], [1, 0, 0]])",
        &[0.5, 0.0, 0.5],
    );
    // Duplicated limits (indexdb style) do not divide by zero.
    assert_vec(
        &mut c,
        "colorBlend(0.5, [0, 0, 0.5, 1], [[0,0,0], [1,1,1], [0,1,0], [1,0,0]])",
        &[0.0, 1.0, 0.0],
    );
    assert_vec(
        &mut c,
        "colorBlend(0.25, [0, 0, 0.5, 1], [[0,0,0], [1,1,1], [0,1,0], [1,0,0]])",
        &[0.5, 1.0, 0.5],
    );
    // The palette is not mutated across calls.
    c.eval(Source::from_bytes(
        "var pal = [[0,0,0],[1,1,1]]; colorBlend(0.5, [0,1], pal);",
    ))
    .ok();
    assert_eq!(json(&mut c, "pal"), "[[0,0,0],[1,1,1]]");
    // Single-element arrays blend as numbers.
    assert_eq!(num(&mut c, "colorBlend(0.5, [0, 1], [[2], [4]])"), 3.0);
    let thrown = c.eval(Source::from_bytes("colorBlend(0.5, [0, 1], ['a', {}])"));
    assert!(thrown.is_err());
    // colorMap: strict <
    assert_eq!(num(&mut c, "colorMap(1, [1, 2], [10, 20])"), 20.0);
    assert_eq!(num(&mut c, "colorMap(0.9, [1, 2], [10, 20])"), 10.0);
}

#[test]
fn qa_decoders() {
    let mut c = ctx();
    let got: serde_json::Value =
        serde_json::from_str(&json(&mut c, "decodeL8C2Qa(55052)")).unwrap_or_default();
    let expected = serde_json::json!({
        "cirrus": 1, "cirrusConfidence": 3, "clear": 0, "cloud": 1, "cloudConfidence": 3,
        "cloudShadow": 0, "cloudShadowConfidence": 1, "dilatedCloud": 0, "fill": 0, "snow": 0,
        "snowIceConfidence": 1, "water": 0
    });
    assert_eq!(got, expected);
    // OLCI: bit 31 is land, bit 20 is saturatedB01 (assumed layout).
    assert_eq!(
        num(&mut c, "decodeS3OLCIQualityFlags(2147483648).land"),
        1.0
    );
    assert_eq!(
        num(&mut c, "decodeS3OLCIQualityFlags(1048576).saturatedB01"),
        1.0
    );
    assert_eq!(num(&mut c, "decodeLs8Qa(16).cloud"), 1.0);
}

#[test]
fn legacy_visualizers() {
    let mut c = ctx();
    assert_vec(&mut c, "new Identity().process(3)", &[3.0]);
    assert_vec(&mut c, "new Identity().process([1, 2])", &[1.0, 2.0]);
    // blueRed gradient at min is navy, at max maroon.
    assert_vec(
        &mut c,
        "ColorGradientVisualizer.createBlueRed(0, 1).process(0)",
        &[0.0, 0.0, 128.0 / 255.0],
    );
    assert_vec(
        &mut c,
        "ColorGradientVisualizer.createBlueRed(0, 1).process(1)",
        &[128.0 / 255.0, 0.0, 0.0],
    );
    // legacy combine rounds hex ints: halfway between 0x000000 and 0xffffff -> 128 (127.5 up).
    assert_eq!(
        num(&mut c, "combine(0xffffff, 0x000000, 0.5)"),
        f64::from(0x808080)
    );
}

#[test]
fn helpers_are_shadowable_globals() {
    let mut c = ctx();
    let r = c.eval(Source::from_bytes(
        "let index = 5; const colorBlend = 2; class Identity {}; index + colorBlend",
    ));
    assert_eq!(r.ok().and_then(|v| v.as_number()), Some(7.0));
    let mut c = ctx();
    let r = c.eval(Source::from_bytes(
        "function index(a, b) { return a * b; } index(2, 3)",
    ));
    assert_eq!(r.ok().and_then(|v| v.as_number()), Some(6.0));
}

#[test]
fn clock_is_pinned() {
    let mut c = ctx();
    assert_eq!(num(&mut c, "Date.now()"), 0.0);
    assert_eq!(num(&mut c, "new Date().getTime()"), 0.0);
    assert_eq!(
        num(&mut c, "new Date('2020-03-04T00:00:00Z').getUTCMonth()"),
        2.0
    );
    assert_eq!(num(&mut c, "new Date(2020, 0, 2).getDate()"), 2.0);
    assert_eq!(json(&mut c, "new Date(0) instanceof Date"), "true");
}
