//! Every script in `evalscripts/` run on synthetic pixels, checked against values worked
//! out by hand (or by the documented helper examples), independent of the runtime.

use std::path::Path;

use super::*;
use crate::raster::SampleBuffer;

macro_rules! script {
    ($name:literal) => {
        ($name, include_str!(concat!("../../evalscripts/", $name)))
    };
}

/// Every script of the directory; `all_scripts_are_listed` keeps this in sync.
const SCRIPTS: &[(&str, &str)] = &[
    script!("ndvi.js"),
    script!("true_color.js"),
    script!("true_color_hcv.js"),
    script!("ndvi_colorblend.js"),
    script!("ndwi_datamask.js"),
    script!("ndmi_ramp.js"),
    script!("v1_ndvi_body.js"),
    script!("v1_indexdb_colorblend.js"),
    script!("v1_fis_function.js"),
    script!("v2_function_style.js"),
    script!("multi_output_eob.js"),
    script!("orbit_max_ndvi.js"),
    script!("orbit_filter_scenes.js"),
    script!("tile_preprocess.js"),
    script!("orbit_userdata.js"),
    script!("update_output_bands.js"),
    script!("color_map_default.js"),
    script!("red_temperature.js"),
    script!("value_interpolate.js"),
    script!("scl_value_map.js"),
    script!("const_entry_points.js"),
    script!("sloppy_implicit_globals.js"),
    script!("global_counter.js"),
    script!("int16_mixed_case.js"),
    script!("dynamic_outputs.js"),
    script!("return_coercion.js"),
    script!("landsat_qa.js"),
    script!("default_visualizer_gamma.js"),
    script!("es2015_features.js"),
    script!("orbit_cloudless_median.js"),
    script!("orbit_first_clear.js"),
    script!("orbit_max_ndvi_rgb.js"),
    script!("orbit_mean_ndvi.js"),
    script!("v1_agriculture.js"),
    script!("v1_ari.js"),
    script!("v1_barren_soil.js"),
    script!("v1_chl_rededge.js"),
    script!("v1_cri1.js"),
    script!("v1_evi.js"),
    script!("v1_false_color.js"),
    script!("v1_geology.js"),
    script!("v1_gndvi.js"),
    script!("v1_mcari.js"),
    script!("v1_moisture_stress.js"),
    script!("v1_msavi2.js"),
    script!("v1_nbr_blend.js"),
    script!("v1_ndbi.js"),
    script!("v1_ndmi_blend.js"),
    script!("v1_ndwi_blend.js"),
    script!("v1_psri.js"),
    script!("v1_savi.js"),
    script!("v1_snow_ndsi.js"),
    script!("v1_true_color_gain.js"),
    script!("v1_water_mask.js"),
    script!("v3_arrow_helpers.js"),
    script!("v3_burn_classes.js"),
    script!("v3_color_map_visualizer.js"),
    script!("v3_destructured_bands.js"),
    script!("v3_highlight_optimized.js"),
    script!("v3_int16_ndvi.js"),
    script!("v3_lookup_table.js"),
    script!("v3_multi_output_layers.js"),
    script!("v3_ndci.js"),
    script!("v3_ndvi_classes.js"),
    script!("v3_ndvi_ramp_visualizer.js"),
    script!("v3_nested_stats.js"),
    script!("v3_object_params.js"),
    script!("v3_sample_helper.js"),
    script!("v3_scl_classes.js"),
    script!("v3_string_mode.js"),
    script!("v3_uint16_reflectance.js"),
];

fn source(name: &str) -> &'static str {
    SCRIPTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("no script {name}"))
}

fn compile(name: &str) -> Program {
    Program::compile(source(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run(name: &str, bands: &[&[f32]]) -> (Program, Vec<SampleBuffer>) {
    let mut p = compile(name);
    let len = bands.first().map_or(1, |b| b.len());
    let out = p
        .evaluate(bands, len)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (p, out)
}

fn u8s(v: &[u8]) -> SampleBuffer {
    SampleBuffer::U8(v.to_vec())
}

fn assert_f32(buffer: &SampleBuffer, expected: &[f64], tolerance: f64) {
    let SampleBuffer::F32(got) = buffer else {
        panic!("expected F32, got {buffer:?}");
    };
    assert_eq!(got.len(), expected.len(), "{got:?} vs {expected:?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(
            (f64::from(*g) - e).abs() <= tolerance,
            "{got:?} vs {expected:?}"
        );
    }
}

fn scene<'a>(bands: Vec<&'a [f32]>, date: &str, cloud: f64) -> SceneInput<'a> {
    SceneInput {
        bands,
        date_ms: iso_ms(date),
        cloud_coverage: Some(cloud),
        tile_id: Some("T33TWM".into()),
        ..SceneInput::default()
    }
}

/// Milliseconds of a `YYYY-MM-DD` UTC date (days-from-civil, Howard Hinnant's algorithm).
fn iso_ms(date: &str) -> i64 {
    let parts: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let (y, m, d) = (parts[0], parts[1], parts[2]);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400_000
}

#[test]
fn all_scripts_are_listed() {
    let dir = Path::new(file!())
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|p| p.join("evalscripts"))
        .unwrap_or_default();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".js"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SCRIPTS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert!(listed.len() >= 25);
}

#[test]
fn simple_v3_scripts() {
    let (_, out) = run("ndvi.js", &[&[0.1, 0.2], &[0.5, 0.2], &[1.0, 1.0]]);
    assert_f32(&out[0], &[0.4 / 0.6, 0.0], 1e-6);
    // 2.5 * (0.3, 0.2, 0.1) = 0.75, 0.5, 0.25 -> 191.25, 127.5, 63.75
    let (_, out) = run("true_color.js", &[&[0.1], &[0.2], &[0.3]]);
    assert_eq!(out, vec![u8s(&[191, 128, 64])]);
    // 0.1/0.4 = 0.25 -> 64; 0.75 -> 191; 1.0 compressed to 0.925926 -> 236.1
    let (_, out) = run("true_color_hcv.js", &[&[0.4], &[0.3], &[0.1]]);
    assert_eq!(out, vec![u8s(&[64, 191, 236])]);
}

#[test]
fn colour_helper_scripts() {
    // NDVI 0 -> [0.5, 0.25, 0]; NDVI 0.5 -> t = 0.4 between yellow and green: [0.6, 0.8, 0]
    let (_, out) = run("ndvi_colorblend.js", &[&[0.1, 0.1], &[0.1, 0.3]]);
    assert_eq!(out, vec![u8s(&[128, 153, 64, 204, 0, 0])]);
    // NDMI 0.5: t = 0.625 from yellow to blue: r = g = 95.625 -> 96, b = 159.375 -> 159
    let (_, out) = run("ndmi_ramp.js", &[&[0.3], &[0.1], &[1.0]]);
    assert_eq!(out, vec![u8s(&[96, 96, 159, 255])]);
    // NDVI 0.444 -> [0.4, 0x33ffff]; -0.5 -> [-1, black]
    let (_, out) = run("color_map_default.js", &[&[0.1, 0.3], &[0.26, 0.1]]);
    assert_eq!(out, vec![u8s(&[51, 0, 255, 0, 255, 0])]);
    // redTemperature over 0..0.5: 0.125 is t = 0.125/0.2375 of black -> 0xae: 91.6 -> 92
    let (_, out) = run("red_temperature.js", &[&[0.0, 0.125, 0.5]]);
    assert_eq!(out, vec![u8s(&[0, 92, 255, 0, 0, 255, 0, 0, 255])]);
    let (_, out) = run("value_interpolate.js", &[&[0.05, 0.2, 0.5]]);
    assert_f32(&out[0], &[50.0, 150.0, 200.0], 1e-4);
    let (_, out) = run("scl_value_map.js", &[&[0.0, 3.0, 4.0, 6.0, 9.0]]);
    assert_eq!(out, vec![u8s(&[1, 1, 2, 2, 3])]);
    let (_, out) = run("landsat_qa.js", &[&[55052.0, 21824.0]]);
    assert_eq!(out, vec![u8s(&[1, 0, 3, 1])]);
    // (v / 0.5)^2, unclamped: 0.75 -> 2.25, 0.25 -> 0.25
    let (_, out) = run("default_visualizer_gamma.js", &[&[0.75, 0.25]]);
    assert_f32(&out[0], &[2.25, 0.25], 1e-6);
}

#[test]
fn multi_output_scripts() {
    let (_, out) = run("ndwi_datamask.js", &[&[0.3, 0.1], &[0.1, 0.1], &[1.0, 0.0]]);
    assert_f32(&out[0], &[0.5, 0.0], 1e-6);
    assert_eq!(out[1], u8s(&[255, 0]));
    // NDVI 0 -> black; 0.5 -> documented whiteGreen [0.16863, 0.50196, 0] = 43/255, 128/255
    let (_, out) = run(
        "multi_output_eob.js",
        &[&[0.1, 0.25], &[0.1, 0.75], &[1.0, 1.0]],
    );
    assert_eq!(out[0], u8s(&[0, 43, 0, 128, 0, 0, 255, 255]));
    assert_f32(&out[1], &[0.0, 0.5], 1e-7);
    assert_f32(&out[2], &[0.0, 0.5], 1e-7);
    assert_eq!(out[3], u8s(&[255, 255]));
    // (0.1 - 0.3) * 10000 = -2000; * 1000 = -200 clamps to -128
    let (_, out) = run("int16_mixed_case.js", &[&[0.1], &[0.3]]);
    assert_eq!(
        out,
        vec![SampleBuffer::I16(vec![-2000]), SampleBuffer::I8(vec![-128])]
    );
    let (p, out) = run("dynamic_outputs.js", &[&[0.25]]);
    let bands: Vec<usize> = p.setup().outputs.iter().map(|o| o.bands).collect();
    assert_eq!(bands, vec![1, 2, 3]);
    assert_f32(&out[0], &[0.25], 0.0);
    assert_f32(&out[1], &[0.5, 0.5], 0.0);
    assert_f32(&out[2], &[0.75, 0.75, 0.75], 0.0);
}

#[test]
fn v1_scripts() {
    // NDVI 2/3 -> 170, 1/3 -> 85
    let (p, out) = run("v1_ndvi_body.js", &[&[0.5], &[0.1]]);
    assert_eq!(p.format(), ScriptFormat::V1Body);
    assert_eq!(p.setup().input_bands, vec!["B08", "B04"]);
    assert_eq!(out, vec![u8s(&[170, 85, 0])]);
    // index 0.5 -> top colour; -0.5 -> first; 0 -> [1,1,1]; 0.25 -> [0.5, 0.5, 1]
    let (p, out) = run(
        "v1_indexdb_colorblend.js",
        &[&[0.3, 0.1, 0.2, 0.625], &[0.1, 0.3, 0.2, 0.375]],
    );
    assert_eq!(p.setup().input_bands, vec!["B11", "B08"]);
    assert_eq!(
        out,
        vec![u8s(&[0, 0, 255, 128, 0, 0, 255, 128, 255, 0, 255, 255])]
    );
    // own index(): 10 * 2/3 > 5 -> 1; 10/3 -> 1/3
    let (_, out) = run("v1_fis_function.js", &[&[0.5, 0.2], &[0.1, 0.1]]);
    assert_eq!(out, vec![u8s(&[255, 85])]);
    let (p, out) = run("v2_function_style.js", &[&[0.1], &[0.2], &[0.3]]);
    assert_eq!(p.format(), ScriptFormat::V1Function);
    assert_eq!(out, vec![u8s(&[153, 102, 51])]);
}

#[test]
fn language_semantics_scripts() {
    let (p, out) = run("const_entry_points.js", &[&[0.1], &[0.5]]);
    assert_f32(&out[0], &[4.0], 1e-5);
    assert!(!p.writes_globals());
    let (p, out) = run("sloppy_implicit_globals.js", &[&[0.25, 0.0]]);
    assert_f32(&out[0], &[0.5, -1.0], 0.0);
    assert!(p.writes_globals());
    let (p, out) = run("global_counter.js", &[&[0.0, 0.0, 0.0]]);
    assert_eq!(out, vec![SampleBuffer::U16(vec![1, 2, 3])]);
    assert!(p.writes_globals());
    let (p, _) = run("ndvi.js", &[&[0.1], &[0.2], &[1.0]]);
    assert!(!p.writes_globals());
    let (p, _) = run("multi_output_eob.js", &[&[0.1], &[0.2], &[1.0]]);
    assert!(!p.writes_globals());
    // true > 0.1 -> 1, [0.25] -> 0.25, "2.5" -> 2.5, the 4th value dropped
    let (_, out) = run("return_coercion.js", &[&[0.25, 0.05]]);
    assert_f32(&out[0], &[1.0, 0.0, 0.25, 0.05, 2.5, 2.5], 1e-7);
    // scaled [0.2, 0.4, 0.5]: total 1.1, max 0.5 + 3
    let (_, out) = run("es2015_features.js", &[&[0.1], &[0.2], &[0.25]]);
    assert_f32(&out[0], &[1.1, 3.5], 1e-6);
}

#[test]
fn orbit_scripts() {
    let mut p = compile("orbit_max_ndvi.js");
    let (r1, n1): (&[f32], &[f32]) = (&[0.1, 0.3], &[0.3, 0.1]);
    let (r2, n2): (&[f32], &[f32]) = (&[0.2, 0.1], &[0.2, 0.5]);
    let scenes = [
        scene(vec![r1, n1], "2023-06-02", 5.0),
        scene(vec![r2, n2], "2023-05-01", 5.0),
    ];
    let result = p
        .evaluate_scenes(&scenes, 2)
        .unwrap_or_else(|e| panic!("{e}"));
    // pixel 0: max(0.5, 0) = 0.5; pixel 1: max(-0.5, 2/3) = 2/3; 2 orbits
    assert_f32(&result.outputs[0], &[0.5, 2.0 / 3.0, 2.0, 2.0], 1e-6);
    assert_eq!(result.bands, vec![2]);
    let empty = p.evaluate_scenes(&[], 1).unwrap_or_else(|e| panic!("{e}"));
    assert_f32(&empty.outputs[0], &[-1.0, 0.0], 0.0);
    // evaluate() on an ORBIT script: the block is one scene.
    let out = p.evaluate(&[r1, n1], 2).unwrap_or_else(|e| panic!("{e}"));
    assert_f32(&out[0], &[0.5, -0.5, 1.0, 1.0], 1e-6);

    let mut p = compile("orbit_filter_scenes.js");
    let (a, b, c): (&[f32], &[f32], &[f32]) = (&[0.1], &[0.2], &[0.4]);
    let scenes = [
        scene(vec![c], "2023-07-01", 0.0),
        scene(vec![b], "2023-06-01", 0.0),
        scene(vec![a], "2023-03-10", 0.0),
    ];
    let result = p
        .evaluate_scenes(&scenes, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_f32(&result.outputs[0], &[2.0, 0.3], 1e-6);

    let mut p = compile("orbit_userdata.js");
    let result = p
        .evaluate_scenes(&scenes[..2], 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.outputs, vec![u8s(&[2])]);
    assert_eq!(
        result.user_data,
        Some(serde_json::json!({
            "dates": ["2023-07-01T00:00:00.000Z", "2023-06-01T00:00:00.000Z"],
            "orbits": 2
        }))
    );

    let mut p = compile("update_output_bands.js");
    let result = p
        .evaluate_scenes(&scenes, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.bands, vec![3]);
    assert_f32(&result.outputs[0], &[0.4, 0.2, 0.1], 1e-7);
}

#[test]
fn tile_script_with_pre_process_scenes() {
    let mut p = compile("tile_preprocess.js");
    assert_eq!(p.setup().mosaicking, Mosaicking::Tile);
    let (a, b): (&[f32], &[f32]) = (&[0.1], &[0.2]);
    let scenes = [
        scene(vec![a], "2023-06-02", 80.0),
        scene(vec![b], "2023-06-01", 10.0),
    ];
    let result = p
        .evaluate_scenes(&scenes, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.outputs, vec![SampleBuffer::U16(vec![2000])]);
}

/// Throughput of the five benchmark scripts (see benches/evalscript.rs) on one core.
/// Run: cargo test --release bench_scripts_throughput -- --ignored --nocapture
#[test]
#[ignore]
fn bench_scripts_throughput() {
    const PIXELS: usize = 250_000;
    for name in [
        "ndvi.js",
        "true_color_hcv.js",
        "ndvi_colorblend.js",
        "ndwi_datamask.js",
        "ndmi_ramp.js",
    ] {
        let mut p = compile(name);
        let planes: Vec<Vec<f32>> = p
            .setup()
            .input_bands
            .iter()
            .enumerate()
            .map(|(k, b)| {
                (0..PIXELS)
                    .map(|i| {
                        if b == "dataMask" {
                            1.0
                        } else {
                            0.02 + ((i * (k + 3)) % 97) as f32 * 0.005
                        }
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = planes.iter().map(|v| v.as_slice()).collect();
        let _ = p.evaluate(&refs, 1000);
        let start = std::time::Instant::now();
        let out = p
            .evaluate(&refs, PIXELS)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(out[0].len() % PIXELS, 0);
        println!("{name}: {:.0} px/s", PIXELS as f64 / secs);
    }
}
