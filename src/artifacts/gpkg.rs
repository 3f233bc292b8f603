//! GeoPackage geometry blobs and spatial reference systems (OGC 12-128r18 §2.1.3, §2.1.2),
//! pure: what the feature manifest writes.

/// `gpkg_spatial_ref_sys.definition` (OGC WKT 1) of the CRSs Tessera's tiles use: WGS 84
/// and its UTM zones. `None` for any other code.
pub fn srs_wkt(epsg: u32) -> Option<String> {
    const GEOGCS: &str = r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]]"#;
    let (zone, north) = match epsg {
        4326 => return Some(GEOGCS.to_string()),
        32601..=32660 => (epsg - 32600, true),
        32701..=32760 => (epsg - 32700, false),
        _ => return None,
    };
    let central_meridian = zone as i32 * 6 - 183;
    let false_northing = if north { 0 } else { 10_000_000 };
    let hemisphere = if north { 'N' } else { 'S' };
    Some(format!(
        r#"PROJCS["WGS 84 / UTM zone {zone}{hemisphere}",{GEOGCS},PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",{central_meridian}],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",{false_northing}],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","{epsg}"]]"#
    ))
}

/// `srs_name` for [`srs_wkt`]'s codes.
pub fn srs_name(epsg: u32) -> String {
    match epsg {
        4326 => "WGS 84".to_string(),
        32601..=32660 => format!("WGS 84 / UTM zone {}N", epsg - 32600),
        32701..=32760 => format!("WGS 84 / UTM zone {}S", epsg - 32700),
        other => format!("EPSG:{other}"),
    }
}

/// A GeoPackage geometry blob holding one polygon with a single ring: the `GP` header
/// (version 0, little endian, an `[minx, maxx, miny, maxy]` envelope) then the polygon as
/// little-endian WKB.
pub fn polygon_blob(srs_id: i32, ring: &[[f64; 2]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 32 + 13 + 16 * ring.len());
    out.extend_from_slice(b"GP");
    out.push(0); // version 1 of the spec, encoded 0
    out.push(0b0000_0011); // envelope [minx, maxx, miny, maxy] (1 << 1), little endian (1)
    out.extend_from_slice(&srs_id.to_le_bytes());
    let (mut min_x, mut max_x, mut min_y, mut max_y) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for [x, y] in ring {
        min_x = min_x.min(*x);
        max_x = max_x.max(*x);
        min_y = min_y.min(*y);
        max_y = max_y.max(*y);
    }
    for v in [min_x, max_x, min_y, max_y] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(1); // WKB little endian
    out.extend_from_slice(&3u32.to_le_bytes()); // Polygon
    out.extend_from_slice(&1u32.to_le_bytes()); // one ring
    out.extend_from_slice(&(ring.len() as u32).to_le_bytes());
    for [x, y] in ring {
        out.extend_from_slice(&x.to_le_bytes());
        out.extend_from_slice(&y.to_le_bytes());
    }
    out
}

/// The closed ring of an axis-aligned rectangle `[x_min, y_min, x_max, y_max]`,
/// counter-clockwise (the exterior ring orientation of the Simple Features spec).
pub fn rect_ring(r: [f64; 4]) -> [[f64; 2]; 5] {
    let [x0, y0, x1, y1] = r;
    [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_blob_layout() {
        let ring = rect_ring([500_000.0, 5_000_000.0, 510_000.0, 5_010_000.0]);
        let b = polygon_blob(32633, &ring);
        assert_eq!(&b[..4], b"GP\x00\x03");
        assert_eq!(i32::from_le_bytes(b[4..8].try_into().unwrap()), 32633);
        let f = |i: usize| f64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        assert_eq!(
            [f(8), f(16), f(24), f(32)],
            [500_000.0, 510_000.0, 5_000_000.0, 5_010_000.0]
        );
        assert_eq!(b[40], 1);
        assert_eq!(u32::from_le_bytes(b[41..45].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[45..49].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[49..53].try_into().unwrap()), 5);
        assert_eq!((f(53), f(61)), (500_000.0, 5_000_000.0));
        assert_eq!(b.len(), 53 + 5 * 16);
        // Closed and counter-clockwise: positive shoelace area.
        let area: f64 = ring
            .windows(2)
            .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
            .sum();
        assert!(area > 0.0);
        assert_eq!(ring[0], ring[4]);
    }

    #[test]
    fn srs_definitions_name_their_code_and_zone() {
        let n = srs_wkt(32633).unwrap();
        assert!(n.starts_with(r#"PROJCS["WGS 84 / UTM zone 33N""#), "{n}");
        assert!(n.contains(r#"PARAMETER["central_meridian",15]"#));
        assert!(n.contains(r#"PARAMETER["false_northing",0]"#));
        assert!(n.ends_with(r#"AUTHORITY["EPSG","32633"]]"#));
        let s = srs_wkt(32701).unwrap();
        assert!(s.contains(r#"PARAMETER["central_meridian",-177]"#), "{s}");
        assert!(s.contains(r#"PARAMETER["false_northing",10000000]"#));
        assert!(srs_wkt(4326).unwrap().starts_with("GEOGCS["));
        assert_eq!(srs_wkt(3035), None);
        assert_eq!(srs_wkt(32661), None);
        assert_eq!(srs_name(32760), "WGS 84 / UTM zone 60S");
        // Brackets balance.
        for code in [4326, 32601, 32660, 32701, 32760] {
            let w = srs_wkt(code).unwrap();
            assert_eq!(w.matches('[').count(), w.matches(']').count(), "{code}");
        }
    }
}
