use super::*;
use crate::raster::Georef;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/landsat");
const MTL: &str = "LC08_L1TP_195025_20130707_20170503_01_T1_MTL.txt";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn mtl() -> Mtl {
    parse_mtl(&std::fs::read_to_string(format!("{DIR}/{MTL}")).unwrap()).unwrap()
}

#[test]
fn the_mtl_gives_time_cloud_and_coefficients() {
    let m = mtl();
    assert_eq!(m.product_id, "LC08_L1TP_195025_20130707_20170503_01_T1");
    assert_eq!(m.datetime, "2013-07-07T10:17:42Z");
    assert_eq!(m.cloud_cover, 6.03);
    assert_eq!(m.sun_elevation, 58.99675180);
    assert_eq!(m.gains[&4], (2.0e-5, -0.1));
    assert_eq!(m.gains[&10], (3.342e-4, 0.1));
    assert_eq!(m.thermal[&10], (774.8853, 1321.0789));
    assert_eq!(m.thermal[&11], (480.8883, 1201.1442));
    assert!(parse_mtl("GROUP = X\n").is_err());
}

#[test]
fn band_names_and_units() {
    assert_eq!(file_suffix("B01"), Some("B1"));
    assert_eq!(file_suffix("B10"), Some("B10"));
    assert_eq!(file_suffix("BQA"), Some("BQA"));
    assert_eq!(file_suffix("B8A"), None);
    let m = mtl();
    // Expected values computed independently with Python's math module from the MTL:
    // (2e-5 * DN - 0.1) / sin(radians(58.99675180)) and
    // 1321.0789 / log(774.8853 / (3.342e-4 * DN + 0.1) + 1).
    let r = convert("B04", 8321.0, Units::Reflectance, &m).unwrap();
    assert!((r - 0.077_490_43).abs() < 1e-6, "{r}");
    let k = convert("B10", 29283.0, Units::Reflectance, &m).unwrap();
    assert!((k - 302.013_7).abs() < 1e-3, "{k}");
    assert_eq!(convert("B04", 8321.0, Units::Dn, &m), Some(8321.0));
    assert_eq!(convert("BQA", 2720.0, Units::Reflectance, &m), Some(2720.0));
}

#[test]
fn unknown_bands_are_rejected() {
    assert!(check_bands(&s(&["B01", "B10", "B11", "BQA", "dataMask"])).is_ok());
    let e = check_bands(&s(&["B04", "B8A"])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("band 'B8A' does not exist in collection landsat-ot-l1"),
        "{e}"
    );
}

fn scenes() -> Vec<LandsatScene> {
    load_dir(DIR).unwrap()
}

/// The 30 m grid of the files (gdalinfo: origin 483285, 5628525; 41 x 41 px).
fn grid30() -> Georef {
    Georef {
        epsg: 32632,
        x_min: 483285.0,
        y_max: 5628525.0,
        res_x: 30.0,
        res_y: 30.0,
    }
}

#[test]
fn the_fixture_scene_is_found_with_its_footprint() {
    let sc = scenes();
    assert_eq!(sc.len(), 1);
    let i = &sc[0].item;
    assert_eq!(i.epsg, 32632);
    assert_eq!(i.proj_bbox, [483285.0, 5627295.0, 484515.0, 5628525.0]);
    assert_eq!(i.assets.len(), 12);
    assert_eq!(i.cloud_cover, 6.03);
    // gdalinfo's corners: 8d45'45.96"E .. 8d46'49.00"E, 50d47'49.76"N .. 50d48'29.70"N.
    assert!((i.bbox[0] - 8.7628).abs() < 1e-3, "{:?}", i.bbox);
    assert!((i.bbox[3] - 50.8083).abs() < 1e-3, "{:?}", i.bbox);
}

#[test]
fn dn_values_at_known_pixels() {
    let bands = s(&["B01", "B04", "B05", "B10", "BQA", "dataMask"]);
    let req = ReadRequest {
        collection: COLLECTION,
        bands: &bands,
        georef: grid30(),
        width: 41,
        height: 41,
        day: 0,
    };
    let filter = Filter {
        units: Units::Dn,
        ..Filter::default()
    };
    let planes = read_simple_from(&scenes(), &req, &filter).unwrap();
    // Values obtained independently with GDAL: `gdallocationinfo -valonly <file> COL ROW`
    // on fixtures/landsat/LC08_L1TP_195025_20130707_20170503_01_T1_<B>.TIF.
    let expected: [(usize, usize, [f32; 5]); 4] = [
        (0, 0, [10698.0, 8321.0, 15406.0, 29283.0, 2720.0]),
        (17, 5, [10889.0, 8920.0, 14496.0, 30924.0, 2720.0]),
        (40, 40, [9888.0, 6762.0, 23423.0, 27513.0, 2720.0]),
        (3, 29, [10423.0, 7906.0, 12652.0, 29949.0, 2720.0]),
    ];
    for (col, row, values) in expected {
        for (b, v) in values.iter().enumerate() {
            assert_eq!(planes[b][row * 41 + col], *v, "{} at {col},{row}", bands[b]);
        }
        assert_eq!(planes[5][row * 41 + col], 1.0);
    }
}

#[test]
fn panchromatic_dn_on_its_15m_grid() {
    let bands = s(&["B08"]);
    let req = ReadRequest {
        collection: COLLECTION,
        bands: &bands,
        // gdalinfo: origin 483277.5, 5628517.5; 82 x 82 px at 15 m.
        georef: Georef {
            x_min: 483277.5,
            y_max: 5628517.5,
            res_x: 15.0,
            res_y: 15.0,
            ..grid30()
        },
        width: 82,
        height: 82,
        day: 0,
    };
    let filter = Filter {
        units: Units::Dn,
        ..Filter::default()
    };
    let p = read_simple_from(&scenes(), &req, &filter).unwrap();
    // gdallocationinfo -valonly ..._B8.TIF COL ROW
    assert_eq!(p[0][0], 8483.0);
    assert_eq!(p[0][11 * 82 + 35], 8074.0);
    assert_eq!(p[0][81 * 82 + 81], 7632.0);
}

#[test]
fn default_units_are_reflectance_and_kelvin_and_outside_is_no_data() {
    let bands = s(&["B04", "B10", "BQA", "dataMask"]);
    // The files' grid shifted 10 px west: the first 10 columns have no data.
    let req = ReadRequest {
        collection: COLLECTION,
        bands: &bands,
        georef: Georef {
            x_min: 483285.0 - 300.0,
            ..grid30()
        },
        width: 41,
        height: 41,
        day: 0,
    };
    let p = read_simple_from(&scenes(), &req, &Filter::default()).unwrap();
    // File pixel (0, 0) is tile pixel (10, 0); (40, 40) is (50, 40), outside this tile,
    // so use file (30, 40) -> tile (40, 40). DNs from gdallocationinfo (B04: 8321 at 0,0;
    // B10: 29283 at 0,0), converted with Python as in `band_names_and_units`.
    assert!((p[0][10] - 0.077_490_43).abs() < 1e-6, "{}", p[0][10]);
    assert!((p[1][10] - 302.013_7).abs() < 1e-3, "{}", p[1][10]);
    assert_eq!(p[2][10], 2720.0);
    // The first 10 pixels of row 0 have no data.
    assert_eq!(p[3][..10], [0.0; 10], "dataMask");
    assert_eq!(p[0][..10], [0.0; 10]);
    assert_eq!(
        p[1][..10],
        [0.0; 10],
        "no data stays 0, not a converted 0 DN"
    );
    assert_eq!(p[3][10], 1.0);
    // The scene is dated 2013-07-07: a time range that ends before finds nothing.
    let before = Filter {
        to_day: crate::data::day_of("2013-07-06T23:59:59Z"),
        ..Filter::default()
    };
    let p = read_simple_from(&scenes(), &req, &before).unwrap();
    assert!(p[3].iter().all(|&m| m == 0.0));
}
