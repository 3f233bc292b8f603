use super::*;
use crate::grid::aoi::{parse_bounds, Polygon};
use serde_json::json;
use std::collections::HashSet;

fn lonlat_box(w: f64, s: f64, e: f64, n: f64) -> Aoi {
    Aoi::from_lonlat_bbox(w, s, e, n).unwrap()
}

/// A tiny AOI around one point.
fn around(lon: f64, lat: f64) -> Aoi {
    lonlat_box(lon - 1e-4, lat - 1e-4, lon + 1e-4, lat + 1e-4)
}

fn utm_bbox(epsg: u32, bbox: [f64; 4]) -> Aoi {
    parse_bounds(&json!({"bbox": bbox,
        "properties": {"crs": format!("http://www.opengis.net/def/crs/EPSG/0/{epsg}")}}))
    .unwrap()
}

fn names(tiles: &[Tile]) -> Vec<&str> {
    let mut n: Vec<&str> = tiles.iter().map(|t| t.name.as_str()).collect();
    n.sort_unstable();
    n
}

fn grid1() -> TilingSpec {
    TilingSpec::new(1, 10.0)
}

#[test]
fn vito_tile_31uds_7_2() {
    let tiles = tiles(&around(2.64, 51.225), &grid1()).unwrap();
    assert_eq!(names(&tiles), ["31UDS_7_2"]);
    let t = &tiles[0];
    assert_eq!(
        (t.epsg, t.bounds()),
        (32631, [470000.0, 5670000.0, 480000.0, 5680000.0])
    );
    // PROJ corners (SW, NW, NE, SE) from tiling-grids.md §4 are vertices of the ring.
    for (lon, lat) in [
        (2.570794876, 51.180634618),
        (2.569957715, 51.270553601),
        (2.713302736, 51.270992357),
        (2.713860860, 51.181071975),
    ] {
        assert!(t
            .wgs84
            .iter()
            .any(|p| (p[0] - lon).abs() < 2e-9 && (p[1] - lat).abs() < 2e-9));
    }
    assert_eq!(t.wgs84.first(), t.wgs84.last());
    assert_eq!(t.origin(), [470000.0, 5680000.0]);
    assert_eq!(t.crs_urn(), "urn:ogc:def:crs:EPSG::32631");
}

#[test]
fn utm_aoi_on_exact_cell_lines_selects_exactly_that_cell() {
    let tiles = tiles(
        &utm_bbox(32631, [470000.0, 5670000.0, 480000.0, 5680000.0]),
        &grid1(),
    )
    .unwrap();
    assert_eq!(names(&tiles), ["31UDS_7_2"]);
    // 2 x 2 cells on exact lines ~2° off the central meridian, in the south, across the
    // boundary of squares 19HCC (N = 6200 km, row 62 mod 20 = 2 -> C) and 19HCD.
    let tiles = tiles_of(utm_bbox(32719, [310000.0, 6290000.0, 330000.0, 6310000.0]));
    assert_eq!(
        names(&tiles),
        ["19HCC_1_0", "19HCC_2_0", "19HCD_1_9", "19HCD_2_9"]
    );
}

fn tiles_of(aoi: Aoi) -> Vec<Tile> {
    tiles(&aoi, &grid1()).unwrap()
}

#[test]
fn eo_grow_28pbb_tiles_with_buffers() {
    let spec = TilingSpec {
        grid_id: 1,
        resolution: 10.0,
        buffer_x: 3,
        buffer_y: 7,
    };
    let aoi = utm_bbox(32628, [221000.0, 1621000.0, 239000.0, 1639000.0]);
    let all = tiles(&aoi, &spec).unwrap();
    // The AOI is ~0.4° east of the zone 27/28 seam, inside the S2 tile 27PZS (E 800 km,
    // reaching 909.8 km): SH delivers that zone's tiles too.
    let (tiles, other): (Vec<Tile>, Vec<Tile>) = all.into_iter().partition(|t| t.epsg == 32628);
    assert!(!other.is_empty());
    assert!(other
        .iter()
        .all(|t| t.epsg == 32627 && t.name.starts_with("27PZS_")));
    assert_eq!(
        names(&tiles),
        ["28PBB_2_6", "28PBB_2_7", "28PBB_3_6", "28PBB_3_7"]
    );
    let expected = [
        ("28PBB_2_6", [219970.0, 1629930.0, 230030.0, 1640070.0]),
        ("28PBB_2_7", [219970.0, 1619930.0, 230030.0, 1630070.0]),
        ("28PBB_3_6", [229970.0, 1629930.0, 240030.0, 1640070.0]),
    ];
    for (name, buffered) in expected {
        let t = tiles.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.epsg, 32628);
        assert_eq!(t.buffered_bounds(&spec), buffered, "{name}");
    }
    assert_eq!(
        (spec.width_px().unwrap(), spec.height_px().unwrap()),
        (1006, 1014)
    );
    assert_eq!(
        (
            spec.tile_width_px().unwrap(),
            spec.tile_height_px().unwrap()
        ),
        (1000, 1000)
    );
    // Our ids (not SH's): neighbours differ by j (+1) and i (+100), as documented.
    let id = |n: &str| tiles.iter().find(|t| t.name == n).unwrap().id;
    assert_eq!(id("28PBB_2_6"), 10_282_160_206);
    assert_eq!(id("28PBB_2_7") - id("28PBB_2_6"), 1);
    assert_eq!(id("28PBB_3_6") - id("28PBB_2_6"), 100);
}

#[test]
fn grid2_31sdv_matches_global_mosaic_tile() {
    let spec = TilingSpec::new(2, 60.0);
    let tiles = tiles(&around(2.45, 35.7), &spec).unwrap();
    assert_eq!(names(&tiles), ["31SDV_0_0"]);
    let t = &tiles[0];
    assert_eq!(
        (t.epsg, t.bounds()),
        (32631, [399960.0, 3899940.0, 500040.0, 4000020.0])
    );
    // STAC footprint corners (openeo-geopyspark-driver fixture), matched to 1e-9° there.
    for (lon, lat) in [
        (1.9005269440738402, 35.237542616914084),
        (1.8880749078242969, 36.13973660331456),
        (3.000444629899646, 36.14489841173068),
        (3.000439649425022, 35.242536685661015),
    ] {
        assert!(t
            .wgs84
            .iter()
            .any(|p| (p[0] - lon).abs() < 1e-8 && (p[1] - lat).abs() < 1e-8));
    }
    assert_eq!(spec.width_px().unwrap(), 1668);
    assert_eq!(TilingSpec::new(2, 30.0).width_px().unwrap(), 3336);
}

#[test]
fn grid0_uses_s2_anchor_and_20040m_cells() {
    // (2.5, 51.2) is (465066.3450, 5672184.8198) in zone 31 (PROJ): column 3 starts at
    // 399960 + 3·20040 = 460080, row 1 spans 5700000 − 2·20040 .. 5700000 − 20040.
    let spec = TilingSpec::new(0, 60.0);
    let tiles = tiles(&around(2.5, 51.2), &spec).unwrap();
    assert_eq!(names(&tiles), ["31UDS_3_1"]);
    assert_eq!(
        tiles[0].bounds(),
        [460080.0, 5659920.0, 480120.0, 5679960.0]
    );
    assert_eq!(spec.width_px().unwrap(), 334);
}

#[test]
fn southern_hemisphere_uses_327zz() {
    // (-70.5, -33.4) is (360505.6199, 6303362.2881) in 32719 (PROJ): square E = 300 km
    // (zone 19, set ABCDEFGH -> C), N = 6300 km (row 63 mod 20 = 3 -> D), band H.
    let tiles = tiles_of(around(-70.5, -33.4));
    assert_eq!(names(&tiles), ["19HCD_6_9"]);
    assert_eq!(tiles[0].epsg, 32719);
    assert_eq!(
        tiles[0].bounds(),
        [360000.0, 6300000.0, 370000.0, 6310000.0]
    );
}

#[test]
fn norway_exception_and_the_s2_list_decide_the_zone() {
    // PROJ: (3.5, 60.0) -> (193458.6702, 6664167.6790) in 32632, i.e. square 32VJM
    // (E = 100 km), which is not an S2 tile (E = 100 km exists only in zone 01). The S2
    // tile 31VEG (zone 31, E 500..609.8 km) covers the point instead.
    assert!(!s2::is_s2_tile(&MgrsSquare::parse("32VJM").unwrap()));
    let tiles = tiles_of(around(3.5, 60.0));
    assert_eq!(names(&tiles), ["31VEG_2_4"]);
    let (x, y) = UtmZone::new(31, false).unwrap().forward(3.5, 60.0);
    let [x0, y0, x1, y1] = tiles[0].bounds();
    assert!(x0 < x && x < x1 && y0 < y && y < y1);
    assert_eq!((x0, y1), (520_000.0, 6_700_000.0 - 40_000.0));
    // Svalbard: 32X does not exist; 10°E at 78°N lies in 31X's S2 tiles.
    let svalbard = tiles_of(around(10.0, 78.0));
    assert!(!svalbard.is_empty());
    assert!(svalbard.iter().all(|t| t.name.starts_with("31X")));
}

#[test]
fn aoi_across_a_zone_boundary_gives_tiles_in_both_zones() {
    // 41°N: both 31TG* (zone 31, E 700 km) and 32TKL (zone 32, E 200 km) reach 6°E.
    let tiles = tiles_of(lonlat_box(5.95, 41.0, 6.05, 41.05));
    let epsgs: HashSet<u32> = tiles.iter().map(|t| t.epsg).collect();
    assert_eq!(epsgs, HashSet::from([32631, 32632]));
    for t in &tiles {
        let prefix = if t.epsg == 32631 { "31T" } else { "32T" };
        assert!(t.name.starts_with(prefix), "{}", t.name);
    }
}

#[test]
fn tiles_come_from_s2_squares_only() {
    // At 50°N zone 32 has no S2 square west of 6°E, while zone 31's squares reach east of
    // it: both AOIs get zone-31 tiles, and only the second zone-32 ones.
    for (aoi, zones) in [
        (lonlat_box(5.0, 50.0, 6.0, 50.1), vec![32631]),
        (lonlat_box(6.0, 50.0, 7.0, 50.1), vec![32631, 32632]),
    ] {
        let tiles = tiles_of(aoi);
        let epsgs: HashSet<u32> = tiles.iter().map(|t| t.epsg).collect();
        assert_eq!(epsgs, zones.into_iter().collect());
        for t in &tiles {
            assert!(s2::is_s2_tile(&MgrsSquare::parse(&t.name[..5]).unwrap()));
        }
    }
}

#[test]
fn aoi_across_the_equator_splits_into_326zz_and_327zz() {
    // Zone 31 squares at the equator: north N = 0 (odd zone row A, band N), south
    // N = 9900 km (row 99 mod 20 = 19 -> V, band M); E = 400 km -> D.
    let tiles = tiles_of(lonlat_box(2.99, -0.01, 2.999, 0.01));
    assert_eq!(names(&tiles), ["31MDV_9_0", "31NDA_9_9"]);
    let north = tiles.iter().find(|t| t.epsg == 32631).unwrap();
    let south = tiles.iter().find(|t| t.epsg == 32731).unwrap();
    assert_eq!(north.bounds(), [490000.0, 0.0, 500000.0, 10000.0]);
    assert_eq!(south.bounds(), [490000.0, 9990000.0, 500000.0, 10000000.0]);
}

#[test]
fn hole_excludes_the_inner_cell() {
    let bounds = json!({"geometry": {"type": "Polygon", "coordinates": [
        [[440000, 5640000], [480000, 5640000], [480000, 5680000], [440000, 5680000], [440000, 5640000]],
        [[450000, 5650000], [450000, 5660000], [460000, 5660000], [460000, 5650000], [450000, 5650000]]]},
        "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/32631"}});
    let tiles = tiles_of(parse_bounds(&bounds).unwrap());
    assert_eq!(tiles.len(), 15);
    // The hole is cell i = 5, j = (5 700 000 − 5 660 000) / 10 000 = 4.
    assert!(!tiles.iter().any(|t| t.name == "31UDS_5_4"));
    assert!(tiles.iter().any(|t| t.name == "31UDS_4_4"));
}

#[test]
fn multipolygon_members_are_tiled_separately() {
    let bounds = json!({"geometry": {"type": "MultiPolygon", "coordinates": [
        [[[2.6399, 51.2249], [2.6401, 51.2249], [2.6401, 51.2251], [2.6399, 51.2249]]],
        [[[-70.5001, -33.4001], [-70.4999, -33.4001], [-70.4999, -33.3999], [-70.5001, -33.4001]]]]}});
    let tiles = tiles_of(parse_bounds(&bounds).unwrap());
    assert_eq!(names(&tiles), ["19HCD_6_9", "31UDS_7_2"]);
}

#[test]
fn antimeridian_split_and_unwrapped_forms_agree() {
    let split = json!({"geometry": {"type": "MultiPolygon", "coordinates": [
        [[[179.95, -16.05], [180, -16.05], [180, -16.0], [179.95, -16.0], [179.95, -16.05]]],
        [[[-180, -16.05], [-179.95, -16.05], [-179.95, -16.0], [-180, -16.0], [-180, -16.05]]]]}});
    let a = tiles_of(parse_bounds(&split).unwrap());
    let b = tiles_of(lonlat_box(179.95, -16.05, 180.05, -16.0));
    assert_eq!(names(&a), names(&b));
    let epsgs: HashSet<u32> = a.iter().map(|t| t.epsg).collect();
    // Zone 01 has its extra E = 100 km column (01LAx, band L) here; zone 60 has no square.
    assert_eq!(epsgs, HashSet::from([32701]));
    assert!(a.iter().all(|t| t.name.starts_with("01LA")));
    let beyond = tiles_of(lonlat_box(181.0, 10.0, 181.05, 10.05));
    let wrapped = tiles_of(lonlat_box(-179.0, 10.0, -178.95, 10.05));
    assert_eq!(names(&beyond), names(&wrapped));
    // Rings stay continuous: no tile spans more than a degree of longitude.
    for t in &a {
        let (lo, hi) = t.wgs84.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p[0]), hi.max(p[0]))
        });
        assert!(hi - lo < 1.0, "{} {lo} {hi}", t.name);
    }
}

#[test]
fn long_parallel_edges_curve_in_utm() {
    // The 50.5°N parallel bulges ~3.8 km south of the straight chord between 0.2°E and
    // 5.8°E at the central meridian; cells north of it must not be selected.
    let aoi = lonlat_box(0.2, 50.0, 5.8, 50.5);
    let tiles = tiles_of(aoi);
    for t in &tiles {
        let min_lat = t.wgs84.iter().map(|p| p[1]).fold(f64::MAX, f64::min);
        let max_lat = t.wgs84.iter().map(|p| p[1]).fold(f64::MIN, f64::max);
        assert!(
            min_lat < 50.5 && max_lat > 50.0,
            "{} {min_lat} {max_lat}",
            t.name
        );
    }
    assert_covers(&lonlat_box(0.2, 50.0, 5.8, 50.5), &tiles);
}

/// Every sample point of the AOI's bbox lies in some tile (of any zone).
fn assert_covers(aoi: &Aoi, tiles: &[Tile]) {
    let [w, s, e, n] = aoi.bbox();
    for a in 0..=40 {
        for b in 0..=40 {
            let lon = w + (e - w) * f64::from(a) / 40.0;
            let lat = s + (n - s) * f64::from(b) / 40.0;
            assert!(
                tiles.iter().any(|t| tile_contains(t, lon, lat)),
                "({lon}, {lat}) not covered"
            );
        }
    }
}

/// The point projected into the tile's CRS lies in the tile's bounds (closed).
pub(super) fn tile_contains(t: &Tile, lon: f64, lat: f64) -> bool {
    let (x, y) = match UtmZone::from_epsg(t.epsg) {
        Some(utm) => utm.forward(lon, lat),
        None => (lon, lat),
    };
    t.x_min <= x && x <= t.x_max && t.y_min <= y && y <= t.y_max
}

#[test]
fn grid3_names_and_bounds() {
    let spec = TilingSpec::new(3, 0.0001);
    let cases = [
        (
            lonlat_box(25.2, 13.2, 25.8, 13.8),
            "N13E025",
            [25.0, 13.0, 26.0, 14.0],
        ),
        (
            lonlat_box(35.1, -6.5, 35.2, -6.2),
            "S07E035",
            [35.0, -7.0, 36.0, -6.0],
        ),
        (
            lonlat_box(5.4, 0.4, 5.6, 0.6),
            "N00E005",
            [5.0, 0.0, 6.0, 1.0],
        ),
        (
            lonlat_box(-0.6, 85.4, -0.4, 85.6),
            "N85W001",
            [-1.0, 85.0, 0.0, 86.0],
        ),
    ];
    for (aoi, name, bounds) in cases {
        let tiles = tiles(&aoi, &spec).unwrap();
        assert_eq!(names(&tiles), [name]);
        assert_eq!((tiles[0].epsg, tiles[0].bounds()), (4326, bounds));
    }
    assert_eq!(spec.width_px().unwrap(), 10000);
    assert_eq!(TilingSpec::new(3, 0.0002).height_px().unwrap(), 5000);
    let across = tiles(&lonlat_box(179.5, 10.2, 180.5, 10.8), &spec).unwrap();
    assert_eq!(names(&across), ["N10E179", "N10W180"]);
    let four = tiles(&lonlat_box(0.5, 0.5, 2.5, 1.5), &spec).unwrap();
    assert_eq!(
        names(&four),
        ["N00E000", "N00E001", "N00E002", "N01E000", "N01E001", "N01E002"]
    );
    // An AOI on exact degree lines does not pull in its neighbours.
    assert_eq!(
        tiles(&lonlat_box(10.0, 20.0, 11.0, 21.0), &spec)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn errors() {
    let aoi = around(2.64, 51.225);
    assert_eq!(
        tiles(&aoi, &TilingSpec::new(5, 10.0)),
        Err(GridError::UnknownGrid(5))
    );
    assert_eq!(
        tiles(&aoi, &TilingSpec::new(1, 60.0)),
        Err(GridError::UnsupportedResolution {
            grid: 1,
            resolution: 60.0,
            allowed: vec![10.0, 20.0]
        })
    );
    let negative = TilingSpec {
        buffer_x: -1,
        ..grid1()
    };
    assert!(matches!(
        tiles(&aoi, &negative),
        Err(GridError::InvalidBuffer { .. })
    ));
    assert!(matches!(
        negative.width_px(),
        Err(GridError::InvalidBuffer { .. })
    ));
    let polar = lonlat_box(10.0, 81.0, 11.0, 82.0);
    assert_eq!(
        tiles(&polar, &grid1()),
        Err(GridError::OutsideCoverage {
            grid: 1,
            max_abs_lat: 80.5
        })
    );
    assert!(matches!(
        tiles(&lonlat_box(10.0, -85.0, 11.0, -81.0), &grid1()),
        Err(GridError::OutsideCoverage { .. })
    ));
    assert_eq!(tiles(&polar, &TilingSpec::new(3, 0.0002)).unwrap().len(), 1);
    let big = lonlat_box(0.0, 40.0, 2.0, 42.0);
    assert_eq!(
        tiles_with_limit(&big, &grid1(), 10),
        Err(GridError::TooManyTiles { limit: 10 })
    );
}

#[test]
fn latitude_cut_keeps_only_tiles_reaching_below_80_5() {
    let tiles = tiles_of(lonlat_box(0.5, 80.0, 1.5, 82.0));
    assert!(!tiles.is_empty());
    for t in &tiles {
        let min_lat = t.wgs84.iter().map(|p| p[1]).fold(f64::MAX, f64::min);
        let max_lat = t.wgs84.iter().map(|p| p[1]).fold(f64::MIN, f64::max);
        assert!(
            min_lat < 80.5 && max_lat < 80.65,
            "{} {min_lat} {max_lat}",
            t.name
        );
    }
}

#[test]
fn spec_deserialises_from_request_json() {
    let spec: TilingSpec =
        serde_json::from_value(json!({"id": 1, "resolution": 10, "bufferX": 3})).unwrap();
    assert_eq!(
        spec,
        TilingSpec {
            grid_id: 1,
            resolution: 10.0,
            buffer_x: 3,
            buffer_y: 0
        }
    );
}

#[test]
fn ten_by_ten_degrees_is_fast_complete_and_unique() {
    let aoi = lonlat_box(0.0, 40.0, 10.0, 50.0);
    let started = std::time::Instant::now();
    let tiles = tiles(&aoi, &grid1()).unwrap();
    let elapsed = started.elapsed();
    // Area / 100 km² plus the cells overlapping the AOI edges and the zone seams: S2
    // tiles of zones 31 and 32 overlap in a strip ~130 km wide along 6°E.
    let expected = aoi.area_km2() / 100.0;
    let n = tiles.len() as f64;
    assert!(
        n > expected && n < expected * 1.25,
        "{n} tiles vs {expected}"
    );
    let ids: HashSet<i64> = tiles.iter().map(|t| t.id).collect();
    let names: HashSet<&str> = tiles.iter().map(|t| t.name.as_str()).collect();
    assert_eq!((ids.len(), names.len()), (tiles.len(), tiles.len()));
    assert_eq!(
        estimate_tile_count(&aoi, &grid1()).unwrap(),
        tiles.len() as u64
    );
    assert!(elapsed.as_secs_f64() < 3.0, "{elapsed:?}");
    assert_covers(&aoi, &tiles);
}

#[test]
fn polygons_from_code_tile_like_parsed_ones() {
    let p = Polygon {
        exterior: vec![
            [2.6399, 51.2249],
            [2.6401, 51.2249],
            [2.6401, 51.2251],
            [2.6399, 51.2249],
        ],
        holes: vec![],
    };
    let aoi = Aoi::new(vec![p]).unwrap();
    assert_eq!(names(&tiles_of(aoi)), ["31UDS_7_2"]);
}

#[test]
fn counting_with_a_limit_matches_the_tiles_and_stops_over_it() {
    for (aoi, spec) in [
        (lonlat_box(15.0, 45.0, 16.0, 46.0), grid1()),
        (
            lonlat_box(-3.5, 50.0, 2.5, 52.0),
            TilingSpec::new(3, 0.0002),
        ),
    ] {
        let all = tiles(&aoi, &spec).unwrap();
        let n = all.len() as u64;
        assert!(n > 1);
        assert_eq!(count_tiles_with_limit(&aoi, &spec, n).unwrap(), n);
        assert!(matches!(
            count_tiles_with_limit(&aoi, &spec, n - 1),
            Err(GridError::TooManyTiles { .. })
        ));
        let streamed: Vec<Tile> = tiles_iter(&aoi, &spec, usize::MAX / 4).unwrap().collect();
        assert_eq!(streamed.len(), all.len());
        for (a, b) in streamed.iter().zip(&all) {
            assert_eq!((a.id, &a.name, a.epsg), (b.id, &b.name, b.epsg));
        }
    }
}
