use super::*;
use serde_json::json;

const EPSG_URL: &str = "http://www.opengis.net/def/crs/EPSG/0/";

fn utm31() -> Crs {
    Crs::Utm(UtmZone::new(31, false).unwrap())
}

#[test]
fn crs_forms() {
    assert_eq!(
        parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326"),
        Ok(Crs::Wgs84)
    );
    assert_eq!(
        parse_crs("http://www.opengis.net/def/crs/OGC/1.3/CRS84"),
        Ok(Crs::Wgs84)
    );
    assert_eq!(
        parse_crs("https://www.opengis.net/def/crs/EPSG/0/3857"),
        Ok(Crs::WebMercator)
    );
    assert_eq!(
        parse_crs("http://www.opengis.net/def/crs/EPSG/0/32631"),
        Ok(utm31())
    );
    assert_eq!(
        parse_crs("urn:ogc:def:crs:EPSG::32719"),
        Ok(Crs::Utm(UtmZone::new(19, true).unwrap()))
    );
    assert_eq!(parse_crs("EPSG:4326"), Ok(Crs::Wgs84));
    for bad in [
        "http://www.opengis.net/def/crs/EPSG/0/2154",
        "http://www.opengis.net/def/crs/EPSG/0/32661",
        "http://example.com/def/crs/EPSG/0/4326",
        "EPSG:abc",
        "",
    ] {
        assert!(
            matches!(parse_crs(bad), Err(GridError::UnsupportedCrs(_))),
            "{bad}"
        );
    }
    assert_eq!(utm31().epsg(), 32631);
}

#[test]
fn bbox_in_default_crs_is_lon_lat() {
    let aoi = parse_bounds(&json!({"bbox": [13.8, 45.8, 14.5, 46.2]})).unwrap();
    assert_eq!(aoi.bbox(), [13.8, 45.8, 14.5, 46.2]);
    assert_eq!(aoi.polygons().len(), 1);
    assert_eq!(aoi.polygons()[0].exterior.len(), 5);
}

#[test]
fn bbox_corners_may_come_in_any_order() {
    let aoi = parse_bounds(&json!({"bbox": [14.5, 46.2, 13.8, 45.8],
        "properties": {"crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}))
    .unwrap();
    assert_eq!(aoi.bbox(), [13.8, 45.8, 14.5, 46.2]);
}

#[test]
fn utm_bbox_converts_to_proj_corners_and_is_densified() {
    let bounds = json!({"bbox": [470000, 5670000, 480000, 5680000],
        "properties": {"crs": format!("{EPSG_URL}32631")}});
    let aoi = parse_bounds(&bounds).unwrap();
    let ring = &aoi.polygons()[0].exterior;
    // PROJ 9.5.1 corners of 31UDS_7_2 (tiling-grids.md §4): SW and NE.
    let has = |lon: f64, lat: f64| {
        ring.iter()
            .any(|p| (p[0] - lon).abs() < 1e-8 && (p[1] - lat).abs() < 1e-8)
    };
    assert!(has(2.570794876, 51.180634618));
    assert!(has(2.713302736, 51.270992357));
    assert!(
        ring.len() > 5,
        "10 km UTM edges need intermediate lon/lat vertices"
    );
    // Every stored vertex lies on the original rectangle's outline.
    let z = UtmZone::new(31, false).unwrap();
    for p in ring {
        let (x, y) = z.forward(p[0], p[1]);
        let on_edge = [
            (x - 470000.0).abs(),
            (x - 480000.0).abs(),
            (y - 5670000.0).abs(),
            (y - 5680000.0).abs(),
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        assert!(on_edge < 1e-6, "{x} {y}");
    }
}

#[test]
fn web_mercator_bbox() {
    // x = ±R·π/2 is ±90°; y for 45° is R·ln(tan(67.5°)).
    let bounds = json!({"bbox": [0.0, 0.0, 10018754.171394622, 5621521.486192066],
        "properties": {"crs": format!("{EPSG_URL}3857")}});
    let bbox = parse_bounds(&bounds).unwrap().bbox();
    for (got, want) in bbox.iter().zip([0.0, 0.0, 90.0, 45.0]) {
        assert!((got - want).abs() < 1e-9, "{bbox:?}");
    }
}

#[test]
fn polygon_with_hole_and_multipolygon() {
    let poly = json!({"geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
        [[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]]]}});
    let aoi = parse_bounds(&poly).unwrap();
    assert_eq!(aoi.polygons()[0].holes.len(), 1);
    let area = aoi.area_km2();
    let full = Aoi::from_lonlat_bbox(0.0, 0.0, 4.0, 4.0)
        .unwrap()
        .area_km2();
    assert!((area / full - 0.75).abs() < 0.01, "{area} {full}");

    let multi = json!({"geometry": {"type": "MultiPolygon", "coordinates": [
        [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
        [[[10, 10], [11, 10], [11, 11], [10, 10]]]]}});
    let aoi = parse_bounds(&multi).unwrap();
    assert_eq!(aoi.polygons().len(), 2);
    assert_eq!(aoi.bbox(), [0.0, 0.0, 11.0, 11.0]);
    assert_eq!(aoi.to_geojson()["type"], "MultiPolygon");
}

#[test]
fn unclosed_rings_are_closed() {
    let poly = json!({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}});
    let aoi = parse_bounds(&poly).unwrap();
    let ring = &aoi.polygons()[0].exterior;
    assert_eq!(ring.len(), 4);
    assert_eq!(ring[0], ring[3]);
}

#[test]
fn bbox_and_geometry_intersect() {
    let bounds = json!({"bbox": [0.5, 0.5, 2.0, 2.0], "geometry": {"type": "Polygon",
        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}});
    assert_eq!(parse_bounds(&bounds).unwrap().bbox(), [0.5, 0.5, 1.0, 1.0]);
    let apart = json!({"bbox": [5, 5, 6, 6], "geometry": {"type": "Polygon",
        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}});
    assert!(matches!(
        parse_bounds(&apart),
        Err(GridError::InvalidAoi(_))
    ));
}

#[test]
fn one_degree_at_equator_area() {
    // R²·Δλ·(sin 1° − sin 0°) with R = 6371.0088 km.
    let area = Aoi::from_lonlat_bbox(0.0, 0.0, 1.0, 1.0)
        .unwrap()
        .area_km2();
    assert!((area - 12363.7).abs() < 1.0, "{area}");
}

#[test]
fn errors() {
    let cases = [
        json!(42),
        json!({}),
        json!({"bbox": [1, 2, 3]}),
        json!({"bbox": [1, 2, 1, 3]}),
        json!({"bbox": [1, "a", 2, 3]}),
        json!({"bbox": [1, null, 2, 3]}),
        json!({"geometry": {"type": "Point", "coordinates": [1, 2]}}),
        json!({"geometry": {"type": "Polygon", "coordinates": []}}),
        json!({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}}),
        json!({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}}),
        json!({"geometry": {"type": "MultiPolygon", "coordinates": []}}),
        json!({"geometry": {"type": "Polygon"}}),
        json!({"bbox": [45.0, 13.0, 46.0, 95.0]}),
    ];
    for case in cases {
        assert!(
            matches!(parse_bounds(&case), Err(GridError::InvalidAoi(_))),
            "{case}"
        );
    }
    let bad_crs = json!({"bbox": [0, 0, 1, 1], "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/2154"}});
    assert!(matches!(
        parse_bounds(&bad_crs),
        Err(GridError::UnsupportedCrs(_))
    ));
    let nan = Aoi::from_lonlat_bbox(0.0, f64::NAN, 1.0, 1.0);
    assert!(matches!(nan, Err(GridError::InvalidAoi(_))));
    let short_ring = Aoi::new(vec![Polygon {
        exterior: vec![[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]],
        holes: vec![],
    }]);
    assert!(matches!(short_ring, Err(GridError::InvalidAoi(_))));
}

#[test]
fn self_intersecting_polygons_are_rejected_with_the_crossing() {
    // Bow tie: edges (0,0)-(1,1) and (1,0)-(0,1) cross at (0.5, 0.5).
    let bow_tie = json!({"geometry": {"type": "Polygon", "coordinates":
        [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}});
    let err = parse_bounds(&bow_tie).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("self-intersecting"), "{msg}");
    assert!(
        msg.contains("longitude 0.500000, latitude 0.500000"),
        "{msg}"
    );
    // A hole crossing its exterior is caught too.
    let hole_out = json!({"geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]],
        [[1, 1], [3, 1], [3, 1.5], [1, 1.5], [1, 1]]]}});
    assert!(parse_bounds(&hole_out)
        .unwrap_err()
        .to_string()
        .contains("self-intersecting"));
    // Touching is allowed: a hole touching the exterior at one corner, and a concave
    // polygon whose vertex lies on another edge's line but not on the edge.
    let touching = json!({"geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]],
        [[0, 0], [1, 0.5], [0.5, 1], [0, 0]]]}});
    assert!(parse_bounds(&touching).is_ok());
    let concave = json!({"geometry": {"type": "Polygon", "coordinates":
        [[[0, 0], [4, 0], [4, 4], [2, 1], [0, 4], [0, 0]]]}});
    assert!(parse_bounds(&concave).is_ok());
    // A geometry clipped by a bbox keeps its zero-area slivers without being rejected.
    let clipped = json!({"bbox": [0, 0, 3, 2], "geometry": {"type": "Polygon", "coordinates":
        [[[1, -1], [2, -1], [2, 3], [1.6, 3], [1.5, 1], [1.4, 3], [1, 3], [1, -1]]]}});
    assert!(parse_bounds(&clipped).is_ok());
}

#[test]
fn empty_geometries_are_rejected() {
    for case in [
        json!({"geometry": {"type": "Polygon", "coordinates": []}}),
        json!({"geometry": {"type": "MultiPolygon", "coordinates": []}}),
        json!({"geometry": {"type": "Polygon", "coordinates": [[]]}}),
        json!({"geometry": {"type": "Polygon", "coordinates": [[[5, 5], [5, 5], [5, 5], [5, 5]]]}}),
    ] {
        let err = parse_bounds(&case).unwrap_err();
        assert!(matches!(err, GridError::InvalidAoi(_)), "{case}: {err}");
    }
}

#[test]
fn collinear_rings_with_rounding_noise_are_empty() {
    let collinear = json!({"geometry": {"type": "Polygon", "coordinates":
        [[[15.1, 45.8], [15.2, 45.9], [15.3, 46.0], [15.1, 45.8]]]}});
    let err = parse_bounds(&collinear).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    // A 1 m² square (~1e-5°) is still an area.
    let tiny = json!({"geometry": {"type": "Polygon", "coordinates":
        [[[15.0, 45.0], [15.00001, 45.0], [15.00001, 45.00001], [15.0, 45.00001], [15.0, 45.0]]]}});
    assert!(parse_bounds(&tiny).is_ok());
}
