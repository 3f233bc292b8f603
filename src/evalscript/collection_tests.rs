//! The public-collection style scripts of `evalscripts/` (index-database V1 bodies,
//! visualizers, multi-output V3 layers, ORBIT composites): each run on a few pixels whose
//! outputs were worked out by hand from the formula each script states in its header, and
//! every SIMPLE one runs compiled (`wasm::tests::every_compilable_corpus_script_matches_boa`
//! then checks it against boa on 100,000 random pixels).

use super::*;

/// `(script, {"samples": [...]}, {"<output id>": [[band values] per pixel]})`.
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "orbit_cloudless_median.js",
        include_str!("../../evalscripts/orbit_cloudless_median.js"),
        r#"{"samples": [[{"B02": 0.1, "B03": 0.2, "B04": 0.3, "SCL": 4}, {"B02": 0.9, "B03": 0.9, "B04": 0.9, "SCL": 9}, {"B02": 0.3, "B03": 0.4, "B04": 0.1, "SCL": 4}, {"B02": 0.2, "B03": 0.3, "B04": 0.2, "SCL": 5}]]}"#,
        r#"{"default": [[0.2, 0.3, 0.2]]}"#,
    ),
    (
        "orbit_first_clear.js",
        include_str!("../../evalscripts/orbit_first_clear.js"),
        r#"{"samples": [[{"B02": 0.9, "B03": 0.9, "B04": 0.9, "CLM": 1}, {"B02": 0.1, "B03": 0.2, "B04": 0.3, "CLM": 0}]]}"#,
        r#"{"default": [[0.75, 0.5, 0.25]]}"#,
    ),
    (
        "orbit_max_ndvi_rgb.js",
        include_str!("../../evalscripts/orbit_max_ndvi_rgb.js"),
        r#"{"samples": [[{"B02": 0.1, "B03": 0.1, "B04": 0.1, "B08": 0.2}, {"B02": 0.04, "B03": 0.2, "B04": 0.1, "B08": 0.3}]]}"#,
        r#"{"default": [[0.25, 0.5, 0.1, 0.5]]}"#,
    ),
    (
        "orbit_mean_ndvi.js",
        include_str!("../../evalscripts/orbit_mean_ndvi.js"),
        r#"{"samples": [[{"B04": 0.1, "B08": 0.3, "dataMask": 1}, {"B04": 0.2, "B08": 0.2, "dataMask": 1}, {"B04": 0.0, "B08": 0.0, "dataMask": 0}]]}"#,
        r#"{"default": [[0.25, 2]]}"#,
    ),
    (
        "v1_agriculture.js",
        include_str!("../../evalscripts/v1_agriculture.js"),
        r#"{"samples": [{"B11": 0.2, "B08": 0.36, "B02": 0.04}]}"#,
        r#"{"default": [[0.5, 0.9, 0.1]]}"#,
    ),
    (
        "v1_ari.js",
        include_str!("../../evalscripts/v1_ari.js"),
        r#"{"samples": [{"B03": 0.1, "B05": 0.125}]}"#,
        r#"{"default": [[0.6, 0, 0.6]]}"#,
    ),
    (
        "v1_barren_soil.js",
        include_str!("../../evalscripts/v1_barren_soil.js"),
        r#"{"samples": [{"B11": 0.3, "B04": 0.2, "B08": 0.2, "B02": 0.1}]}"#,
        r#"{"default": [[0.625, 0.5, 0.75]]}"#,
    ),
    (
        "v1_chl_rededge.js",
        include_str!("../../evalscripts/v1_chl_rededge.js"),
        r#"{"samples": [{"B07": 0.4, "B05": 0.2}]}"#,
        r#"{"default": [[0.25]]}"#,
    ),
    (
        "v1_cri1.js",
        include_str!("../../evalscripts/v1_cri1.js"),
        r#"{"samples": [{"B02": 0.04, "B03": 0.05}]}"#,
        r#"{"default": [[0.25]]}"#,
    ),
    (
        "v1_evi.js",
        include_str!("../../evalscripts/v1_evi.js"),
        r#"{"samples": [{"B08": 0.5, "B04": 0.1, "B02": 0.04}]}"#,
        r#"{"default": [[0.5555555555555556]]}"#,
    ),
    (
        "v1_false_color.js",
        include_str!("../../evalscripts/v1_false_color.js"),
        r#"{"samples": [{"B08": 0.4, "B04": 0.1, "B03": 0.2}]}"#,
        r#"{"default": [[1, 0.25, 0.5]]}"#,
    ),
    (
        "v1_geology.js",
        include_str!("../../evalscripts/v1_geology.js"),
        r#"{"samples": [{"B12": 0.2, "B04": 0.1, "B02": 0.4}]}"#,
        r#"{"default": [[0.5, 0.25, 1]]}"#,
    ),
    (
        "v1_gndvi.js",
        include_str!("../../evalscripts/v1_gndvi.js"),
        r#"{"samples": [{"B08": 0.6, "B03": 0.2}, {"B08": 0.1, "B03": 0.3}]}"#,
        r#"{"default": [[0, 0.5, 0], [0, 0, 0]]}"#,
    ),
    (
        "v1_mcari.js",
        include_str!("../../evalscripts/v1_mcari.js"),
        r#"{"samples": [{"B05": 0.3, "B04": 0.1, "B03": 0.2}]}"#,
        r#"{"default": [[2.7, 2.7, 2.7]]}"#,
    ),
    (
        "v1_moisture_stress.js",
        include_str!("../../evalscripts/v1_moisture_stress.js"),
        r#"{"samples": [{"B11": 0.3, "B08": 0.2}]}"#,
        r#"{"default": [[0.5]]}"#,
    ),
    (
        "v1_msavi2.js",
        include_str!("../../evalscripts/v1_msavi2.js"),
        r#"{"samples": [{"B08": 0.5, "B04": 0.1}]}"#,
        r#"{"default": [[0.5527864045000421]]}"#,
    ),
    (
        "v1_nbr_blend.js",
        include_str!("../../evalscripts/v1_nbr_blend.js"),
        r#"{"samples": [{"B08": 0.4, "B12": 0.1}, {"B08": 0.0, "B12": 0.0}]}"#,
        r#"{"default": [[0.1, 0.5, 0.1], [1, 1, 0.6]]}"#,
    ),
    (
        "v1_ndbi.js",
        include_str!("../../evalscripts/v1_ndbi.js"),
        r#"{"samples": [{"B11": 0.3, "B08": 0.1, "B04": 0.1, "B03": 0.1, "B02": 0.1}, {"B11": 0.1, "B08": 0.3, "B04": 0.2, "B03": 0.1, "B02": 0.04}]}"#,
        r#"{"default": [[1, 0, 0], [0.5, 0.25, 0.1]]}"#,
    ),
    (
        "v1_ndmi_blend.js",
        include_str!("../../evalscripts/v1_ndmi_blend.js"),
        r#"{"samples": [{"B08": 0.3, "B11": 0.1}, {"B08": 0.2, "B11": 0.2}]}"#,
        r#"{"default": [[0.0, 0.5357142857142858, 1.0], [1, 1, 0]]}"#,
    ),
    (
        "v1_ndwi_blend.js",
        include_str!("../../evalscripts/v1_ndwi_blend.js"),
        r#"{"samples": [{"B03": 0.3, "B08": 0.1}, {"B03": 0.1, "B08": 0.3}]}"#,
        r#"{"default": [[0.0, 0.25, 0.75], [0.5, 0.75, 1.0]]}"#,
    ),
    (
        "v1_psri.js",
        include_str!("../../evalscripts/v1_psri.js"),
        r#"{"samples": [{"B04": 0.2, "B02": 0.1, "B06": 1.0}]}"#,
        r#"{"default": [[0.9, 0.7, 0.25]]}"#,
    ),
    (
        "v1_savi.js",
        include_str!("../../evalscripts/v1_savi.js"),
        r#"{"samples": [{"B08": 0.5, "B04": 0.1}]}"#,
        r#"{"default": [[0.13636363636363646, 0.5818181818181819, 0.05454545454545459]]}"#,
    ),
    (
        "v1_snow_ndsi.js",
        include_str!("../../evalscripts/v1_snow_ndsi.js"),
        r#"{"samples": [{"B03": 0.8, "B11": 0.1, "B04": 0.7, "B02": 0.9}, {"B03": 0.2, "B11": 0.2, "B04": 0.1, "B02": 0.6}]}"#,
        r#"{"default": [[0, 0.8, 0.9], [0.25, 0.5, 1]]}"#,
    ),
    (
        "v1_true_color_gain.js",
        include_str!("../../evalscripts/v1_true_color_gain.js"),
        r#"{"samples": [{"B04": 0.1, "B03": 0.2, "B02": 0.3}]}"#,
        r#"{"default": [[0.25, 0.5, 0.75]]}"#,
    ),
    (
        "v1_water_mask.js",
        include_str!("../../evalscripts/v1_water_mask.js"),
        r#"{"samples": [{"B03": 0.3, "B08": 0.1, "B04": 0.1, "B02": 0.1, "dataMask": 1}, {"B03": 0.1, "B08": 0.3, "B04": 0.2, "B02": 0.2, "dataMask": 0}]}"#,
        r#"{"default": [[0, 0, 1, 1], [0.5, 0.25, 0.5, 0]]}"#,
    ),
    (
        "v3_arrow_helpers.js",
        include_str!("../../evalscripts/v3_arrow_helpers.js"),
        r#"{"samples": [{"B02": 0.5, "B03": 0.2, "B04": 0.0}]}"#,
        r#"{"default": [[0, 0.5, 1]]}"#,
    ),
    (
        "v3_burn_classes.js",
        include_str!("../../evalscripts/v3_burn_classes.js"),
        r#"{"samples": [{"B08": 0.4, "B12": 0.1}, {"B08": 0.1, "B12": 0.3}]}"#,
        r#"{"default": [[0.1, 0.6, 0.1], [0.6, 0, 0]]}"#,
    ),
    (
        "v3_color_map_visualizer.js",
        include_str!("../../evalscripts/v3_color_map_visualizer.js"),
        r#"{"samples": [{"B04": 0.1, "B08": 0.4}, {"B04": 0.3, "B08": 0.1}, {"B04": 0.15, "B08": 0.35}]}"#,
        r#"{"default": [[0, 0.6666666666666666, 0], [0, 0, 1], [1, 1, 0]]}"#,
    ),
    (
        "v3_destructured_bands.js",
        include_str!("../../evalscripts/v3_destructured_bands.js"),
        r#"{"samples": [{"B04": 0.1, "B08": 0.3, "dataMask": 1}]}"#,
        r#"{"default": [[0.5, 1]]}"#,
    ),
    (
        "v3_highlight_optimized.js",
        include_str!("../../evalscripts/v3_highlight_optimized.js"),
        r#"{"samples": [{"B02": 0.1, "B03": 0.2, "B04": 0.3, "dataMask": 1}]}"#,
        r#"{"default": [[0.75, 0.5, 0.25, 1]]}"#,
    ),
    (
        "v3_int16_ndvi.js",
        include_str!("../../evalscripts/v3_int16_ndvi.js"),
        r#"{"samples": [{"B04": 0.3, "B08": 0.1}]}"#,
        r#"{"default": [[-5000]]}"#,
    ),
    (
        "v3_lookup_table.js",
        include_str!("../../evalscripts/v3_lookup_table.js"),
        r#"{"samples": [{"B04": 0.11, "B08": 0.29}, {"B04": 0.3, "B08": 0.1}]}"#,
        r#"{"default": [[0.5], [0]]}"#,
    ),
    (
        "v3_multi_output_layers.js",
        include_str!("../../evalscripts/v3_multi_output_layers.js"),
        r#"{"samples": [{"B04": 0.1, "B08": 0.3, "SCL": 4, "dataMask": 1}, {"B04": 0.2, "B08": 0.2, "SCL": 9, "dataMask": 1}]}"#,
        r#"{"default": [[0.5, 0.8, 0.2, 1], [1, 1, 1, 1]], "index": [[0.5], [0]], "eobrowserStats": [[0.5, 0], [0, 1]], "dataMask": [[1], [1]]}"#,
    ),
    (
        "v3_ndci.js",
        include_str!("../../evalscripts/v3_ndci.js"),
        r#"{"samples": [{"B04": 0.1, "B05": 0.15, "dataMask": 1}]}"#,
        r#"{"default": [[0.5, 1.0, 0.5, 1]]}"#,
    ),
    (
        "v3_ndvi_classes.js",
        include_str!("../../evalscripts/v3_ndvi_classes.js"),
        r#"{"samples": [{"B04": 0.3, "B08": 0.1}, {"B04": 0.1, "B08": 0.12}, {"B04": 0.1, "B08": 0.2}, {"B04": 0.1, "B08": 0.9}]}"#,
        r#"{"default": [[0.05, 0.05, 0.05], [0.75, 0.75, 0.75], [0.6, 0.8, 0.3], [0.1, 0.5, 0.1]]}"#,
    ),
    (
        "v3_ndvi_ramp_visualizer.js",
        include_str!("../../evalscripts/v3_ndvi_ramp_visualizer.js"),
        r#"{"samples": [{"B04": 0.1, "B08": 0.3, "dataMask": 1}, {"B04": 0.3, "B08": 0.1, "dataMask": 1}, {"B04": 0.1, "B08": 0.15, "dataMask": 0}]}"#,
        r#"{"default": [[0, 1, 0, 1], [0, 0, 1, 1], [0.6, 1, 0.6, 0]]}"#,
    ),
    (
        "v3_nested_stats.js",
        include_str!("../../evalscripts/v3_nested_stats.js"),
        r#"{"samples": [{"B02": 0.1, "B03": 0.2, "B04": 0.6}]}"#,
        r#"{"default": [[0.3, 0.5]]}"#,
    ),
    (
        "v3_object_params.js",
        include_str!("../../evalscripts/v3_object_params.js"),
        r#"{"samples": [{"B02": 0.1, "B03": 0.2, "B04": 0.5}]}"#,
        r#"{"default": [[1, 0.5, 0.25]]}"#,
    ),
    (
        "v3_sample_helper.js",
        include_str!("../../evalscripts/v3_sample_helper.js"),
        r#"{"samples": [{"B02": 0.1, "B03": 0.1, "B04": 0.1}, {"B02": 0.4, "B03": 0.4, "B04": 0.4}]}"#,
        r#"{"default": [[0.3, 0.3, 0.3], [0.6, 0.6, 0.6]]}"#,
    ),
    (
        "v3_scl_classes.js",
        include_str!("../../evalscripts/v3_scl_classes.js"),
        r#"{"samples": [{"SCL": 4}, {"SCL": 6}, {"SCL": 8}, {"SCL": 1}]}"#,
        r#"{"default": [[0, 0.63, 0], [0, 0, 1], [0.8, 0.8, 0.8], [0, 0, 0]]}"#,
    ),
    (
        "v3_string_mode.js",
        include_str!("../../evalscripts/v3_string_mode.js"),
        r#"{"samples": [{"B03": 0.3, "B04": 0.2, "B08": 0.1}]}"#,
        r#"{"default": [[0.5]]}"#,
    ),
    (
        "v3_uint16_reflectance.js",
        include_str!("../../evalscripts/v3_uint16_reflectance.js"),
        r#"{"samples": [{"B02": 0.05, "B03": 0.08, "B04": 0.1, "B08": 0.3}]}"#,
        r#"{"default": [[500, 800, 1000, 3000]]}"#,
    ),
];

#[test]
fn collection_scripts_give_the_hand_checked_values() {
    for (name, source, pixels, expected) in CASES {
        let mut program = Program::compile(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        if program.setup().mosaicking == Mosaicking::Simple {
            assert_eq!(program.boa_reason(), None, "{name} must run compiled");
        }
        let pixels: serde_json::Value = serde_json::from_str(pixels).expect("json");
        let expected: serde_json::Value = serde_json::from_str(expected).expect("json");
        let got = program
            .evaluate_json(&pixels, true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let outputs = expected.as_object().expect("object");
        assert_eq!(
            got["outputs"].as_object().map(|o| o.len()),
            Some(outputs.len()),
            "{name}: {got}"
        );
        for (id, rows) in outputs {
            let have = &got["outputs"][id];
            let want = rows.as_array().expect("rows");
            assert_eq!(
                have.as_array().map(Vec::len),
                Some(want.len()),
                "{name} {id}: {have}"
            );
            for (p, row) in want.iter().enumerate() {
                let row = row.as_array().expect("row");
                let have_row = have[p].as_array().expect("row");
                assert_eq!(have_row.len(), row.len(), "{name} {id} pixel {p}: {have}");
                for (h, w) in have_row.iter().zip(row) {
                    let (h, w) = (
                        h.as_f64().unwrap_or(f64::NAN),
                        w.as_f64().unwrap_or(f64::NAN),
                    );
                    assert!(
                        (h - w).abs() <= 1e-6,
                        "{name} {id} pixel {p}: {have} vs {row:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_collection_has_forty_scripts() {
    assert!(CASES.len() >= 40);
}
