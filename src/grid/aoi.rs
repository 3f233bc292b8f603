//! Area of interest: a Process API `input.bounds` object turned into lon/lat polygons.
//!
//! Choices (Sentinel Hub documents the inputs, not all edge cases):
//! * `bbox` and `geometry` together: SH renders data only inside the geometry within the
//!   bbox, so the AOI is their intersection (the geometry clipped to the bbox rectangle in
//!   the request CRS). Clipping a concave ring that leaves and re-enters the bbox leaves a
//!   zero-area sliver along the bbox edge, which can at worst add a tile straddling it.
//! * `bbox` is "two opposite vertices", so the corners are sorted; a bbox cannot cross the
//!   antimeridian (send a polygon with longitudes beyond 180 or a MultiPolygon instead).
//! * EPSG:4326 URLs are longitude, latitude order, like CRS84 (as Sentinel Hub does).
//! * Edges are straight lines in the request CRS. Projected inputs are densified before
//!   conversion, so lon/lat chords between the stored vertices stay within
//!   [`DENSIFY_TOLERANCE_M`] of the original straight edge: a bbox given in UTM on exact
//!   10 km lines selects exactly the grid-1 tiles inside it.

use super::crossing::first_crossing;
use super::tm::{web_mercator_forward, web_mercator_inverse, UtmZone};
use super::GridError;
use serde_json::Value;

pub(crate) type Point = [f64; 2];

/// Max distance (metres, in the source CRS) between a straight projected edge and the
/// stored lon/lat polyline that represents it.
pub const DENSIFY_TOLERANCE_M: f64 = 1e-3;
const MAX_DENSIFY_DEPTH: u32 = 16;

/// Coordinate reference systems accepted in `bounds.properties.crs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crs {
    /// EPSG:4326 or OGC CRS84, both longitude, latitude order.
    Wgs84,
    /// EPSG:3857.
    WebMercator,
    Utm(UtmZone),
}

impl Crs {
    pub fn epsg(&self) -> u32 {
        match self {
            Crs::Wgs84 => 4326,
            Crs::WebMercator => 3857,
            Crs::Utm(z) => z.epsg(),
        }
    }

    fn inverse(self, p: Point) -> Point {
        match self {
            Crs::Wgs84 => p,
            Crs::WebMercator => web_mercator_inverse(p[0], p[1]).into(),
            Crs::Utm(z) => z.inverse(p[0], p[1]).into(),
        }
    }

    fn forward(self, p: Point) -> Point {
        match self {
            Crs::Wgs84 => p,
            Crs::WebMercator => web_mercator_forward(p[0], p[1]).into(),
            Crs::Utm(z) => z.forward(p[0], p[1]).into(),
        }
    }
}

/// Parses a CRS given as an opengis.net URL (`http://www.opengis.net/def/crs/EPSG/0/32633`,
/// `.../OGC/1.3/CRS84`), an OGC URN (`urn:ogc:def:crs:EPSG::4326`) or `EPSG:4326`.
pub fn parse_crs(text: &str) -> Result<Crs, GridError> {
    let unsupported = || GridError::UnsupportedCrs(text.to_string());
    let lower = text.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .map(|r| r.strip_prefix("www.").unwrap_or(r));
    let code = if let Some(rest) = rest {
        let path = rest
            .strip_prefix("opengis.net/def/crs/")
            .ok_or_else(unsupported)?;
        if path == "ogc/1.3/crs84" {
            return Ok(Crs::Wgs84);
        }
        path.strip_prefix("epsg/0/").ok_or_else(unsupported)?
    } else if lower == "urn:ogc:def:crs:ogc:1.3:crs84" || lower == "crs84" {
        return Ok(Crs::Wgs84);
    } else if let Some(code) = lower.strip_prefix("urn:ogc:def:crs:epsg::") {
        code
    } else {
        lower.strip_prefix("epsg:").ok_or_else(unsupported)?
    };
    let code: u32 = code.parse().map_err(|_| unsupported())?;
    match code {
        4326 => Ok(Crs::Wgs84),
        3857 => Ok(Crs::WebMercator),
        _ => UtmZone::from_epsg(code)
            .map(Crs::Utm)
            .ok_or_else(unsupported),
    }
}

/// A polygon in lon/lat degrees. Rings are closed (first == last position).
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub exterior: Vec<Point>,
    pub holes: Vec<Vec<Point>>,
}

impl Polygon {
    pub fn rings(&self) -> impl Iterator<Item = &Vec<Point>> {
        std::iter::once(&self.exterior).chain(self.holes.iter())
    }
}

/// The area of interest in WGS84 lon/lat: a union of polygons (holes allowed).
/// Longitudes may exceed ±180 for shapes drawn across the antimeridian.
#[derive(Debug, Clone, PartialEq)]
pub struct Aoi {
    polygons: Vec<Polygon>,
    bbox: [f64; 4],
}

fn invalid(msg: impl Into<String>) -> GridError {
    GridError::InvalidAoi(msg.into())
}

fn signed_area(ring: &[Point]) -> f64 {
    ring.windows(2)
        .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
        .sum::<f64>()
        / 2.0
}

/// False for rings whose area is zero up to float noise (collinear corners such as
/// (15.1, 45.8), (15.2, 45.9), (15.3, 46.0) leave ~1e-17 deg² of rounding area): the
/// area must exceed 1e-12 of the squared extent, far below any real shape (a 1 m square
/// has a ratio of 1).
fn has_area(ring: &[Point]) -> bool {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [-f64::INFINITY; 2]);
    for p in ring {
        lo = [lo[0].min(p[0]), lo[1].min(p[1])];
        hi = [hi[0].max(p[0]), hi[1].max(p[1])];
    }
    let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    // Shoelace relative to a corner: absolute coordinates (~1e2) would add ~1e-13 of
    // cancellation noise, more than the threshold for small rings.
    let local: Vec<Point> = ring.iter().map(|p| [p[0] - lo[0], p[1] - lo[1]]).collect();
    signed_area(&local).abs() > 1e-12 * extent * extent
}

/// Removes consecutive duplicates and closes the ring; `None` if fewer than 3 corners remain.
fn normalise_ring(mut ring: Vec<Point>) -> Option<Vec<Point>> {
    ring.dedup();
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    if ring.len() < 3 {
        return None;
    }
    ring.push(ring[0]);
    Some(ring)
}

impl Aoi {
    /// Validates lon/lat polygons: finite, |lat| <= 90, |lon| <= 540, rings of at least
    /// three distinct corners (closed here if open), and a non-zero total area.
    pub fn new(polygons: Vec<Polygon>) -> Result<Aoi, GridError> {
        Aoi::build(polygons, true)
    }

    /// Like [`Aoi::new`] without the self-intersection check: for an AOI that passed it
    /// when its request was created (the stored body is re-read on every job load, and
    /// the check, though O(n log n), is not free at 10^5 vertices).
    pub fn new_validated(polygons: Vec<Polygon>) -> Result<Aoi, GridError> {
        Aoi::build(polygons, false)
    }

    fn build(polygons: Vec<Polygon>, check_crossings: bool) -> Result<Aoi, GridError> {
        let mut bbox = [f64::INFINITY, f64::INFINITY, -f64::INFINITY, -f64::INFINITY];
        let mut kept = Vec::with_capacity(polygons.len());
        for polygon in polygons {
            let mut rings = Vec::new();
            for ring in polygon.rings() {
                for p in ring {
                    if !p[0].is_finite() || !p[1].is_finite() {
                        return Err(invalid("coordinates must be finite numbers"));
                    }
                    if p[1].abs() > 90.0 || p[0].abs() > 540.0 {
                        return Err(invalid(format!(
                            "longitude/latitude ({}, {}) out of range; coordinates are \
                             longitude first",
                            p[0], p[1]
                        )));
                    }
                }
                let ring = normalise_ring(ring.clone())
                    .ok_or_else(|| invalid("a ring needs at least 3 distinct positions"))?;
                rings.push(ring);
            }
            let crossing = if check_crossings {
                first_crossing(&rings)
            } else {
                None
            };
            if let Some(p) = crossing {
                return Err(invalid(format!(
                    "the polygon is self-intersecting: its edges cross near longitude {:.6}, \
                     latitude {:.6}; send a valid (simple) polygon or split it into a \
                     MultiPolygon",
                    p[0], p[1]
                )));
            }
            let mut rings = rings.into_iter();
            // Zero-area rings (collinear points) cover nothing and are dropped.
            let Some(exterior) = rings.next().filter(|r| has_area(r)) else {
                continue;
            };
            let holes: Vec<Vec<Point>> = rings.filter(|h| has_area(h)).collect();
            for p in &exterior {
                bbox = [
                    bbox[0].min(p[0]),
                    bbox[1].min(p[1]),
                    bbox[2].max(p[0]),
                    bbox[3].max(p[1]),
                ];
            }
            kept.push(Polygon { exterior, holes });
        }
        if kept.is_empty() {
            return Err(invalid(
                "the area is empty (no polygon with a non-zero area)",
            ));
        }
        Ok(Aoi {
            polygons: kept,
            bbox,
        })
    }

    pub fn from_lonlat_bbox(
        min_lon: f64,
        min_lat: f64,
        max_lon: f64,
        max_lat: f64,
    ) -> Result<Aoi, GridError> {
        let ring = vec![
            [min_lon, min_lat],
            [max_lon, min_lat],
            [max_lon, max_lat],
            [min_lon, max_lat],
            [min_lon, min_lat],
        ];
        Aoi::new(vec![Polygon {
            exterior: ring,
            holes: vec![],
        }])
    }

    pub fn polygons(&self) -> &[Polygon] {
        &self.polygons
    }

    /// (min lon, min lat, max lon, max lat) of the exterior rings.
    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }

    /// Approximate area on a sphere of radius 6371 km, holes subtracted; overlapping
    /// polygons count twice. Good to about 1% for PU estimates.
    pub fn area_km2(&self) -> f64 {
        const R: f64 = 6371.0088;
        let ring_area = |ring: &Vec<Point>| {
            let projected: Vec<Point> = ring
                .iter()
                .map(|p| [R * p[0].to_radians(), R * p[1].to_radians().sin()])
                .collect();
            signed_area(&projected).abs()
        };
        self.polygons
            .iter()
            .map(|p| ring_area(&p.exterior) - p.holes.iter().map(ring_area).sum::<f64>())
            .sum::<f64>()
            .max(0.0)
    }

    /// GeoJSON MultiPolygon in lon/lat.
    pub fn to_geojson(&self) -> Value {
        let coords: Vec<Vec<&Vec<Point>>> =
            self.polygons.iter().map(|p| p.rings().collect()).collect();
        serde_json::json!({"type": "MultiPolygon", "coordinates": coords})
    }
}

fn parse_number(v: &Value, what: &str) -> Result<f64, GridError> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| invalid(format!("{what} must be a finite number, got {v}")))
}

fn parse_position(v: &Value) -> Result<Point, GridError> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y, ..]) => Ok([
            parse_number(x, "a coordinate")?,
            parse_number(y, "a coordinate")?,
        ]),
        _ => Err(invalid(format!("a position must be [x, y], got {v}"))),
    }
}

fn parse_polygon_coords(v: &Value) -> Result<Vec<Vec<Point>>, GridError> {
    let rings = v
        .as_array()
        .ok_or_else(|| invalid("Polygon coordinates must be an array of rings"))?;
    if rings.is_empty() {
        return Err(invalid("a Polygon needs at least an exterior ring"));
    }
    rings
        .iter()
        .map(|ring| {
            let positions = ring
                .as_array()
                .ok_or_else(|| invalid("a ring must be an array of positions"))?;
            let ring: Vec<Point> = positions
                .iter()
                .map(parse_position)
                .collect::<Result<_, _>>()?;
            normalise_ring(ring)
                .ok_or_else(|| invalid("a ring needs at least 3 distinct positions"))
        })
        .collect()
}

/// GeoJSON Polygon / MultiPolygon -> polygons as lists of rings (source CRS).
fn parse_geometry(geometry: &Value) -> Result<Vec<Vec<Vec<Point>>>, GridError> {
    let kind = geometry.get("type").and_then(Value::as_str);
    let coords = geometry
        .get("coordinates")
        .ok_or_else(|| invalid("geometry needs \"coordinates\""))?;
    match kind {
        Some("Polygon") => Ok(vec![parse_polygon_coords(coords)?]),
        Some("MultiPolygon") => {
            let polygons = coords
                .as_array()
                .ok_or_else(|| invalid("MultiPolygon coordinates must be an array of polygons"))?;
            if polygons.is_empty() {
                return Err(invalid("MultiPolygon has no polygons"));
            }
            polygons.iter().map(parse_polygon_coords).collect()
        }
        other => Err(invalid(format!(
            "geometry type {} is not supported; use Polygon or MultiPolygon",
            other.unwrap_or("(missing)")
        ))),
    }
}

fn parse_bbox(v: &Value) -> Result<[f64; 4], GridError> {
    let values = v
        .as_array()
        .filter(|a| a.len() == 4)
        .ok_or_else(|| invalid("bbox must be [minX, minY, maxX, maxY]"))?;
    let n: Vec<f64> = values
        .iter()
        .map(|x| parse_number(x, "a bbox value"))
        .collect::<Result<_, _>>()?;
    let bbox = [
        n[0].min(n[2]),
        n[1].min(n[3]),
        n[0].max(n[2]),
        n[1].max(n[3]),
    ];
    if bbox[0] == bbox[2] || bbox[1] == bbox[3] {
        return Err(invalid("bbox has zero width or height"));
    }
    Ok(bbox)
}

/// Sutherland-Hodgman clip of a closed ring to an axis-aligned rectangle.
fn clip_ring_to_rect(ring: &[Point], rect: [f64; 4]) -> Option<Vec<Point>> {
    // (axis, bound, keep side: true = keep >= bound)
    let planes = [
        (0, rect[0], true),
        (0, rect[2], false),
        (1, rect[1], true),
        (1, rect[3], false),
    ];
    let mut pts: Vec<Point> = ring[..ring.len().saturating_sub(1)].to_vec();
    for (axis, bound, keep_ge) in planes {
        let inside = |p: &Point| {
            if keep_ge {
                p[axis] >= bound
            } else {
                p[axis] <= bound
            }
        };
        let mut out = Vec::with_capacity(pts.len() + 4);
        for k in 0..pts.len() {
            let cur = pts[k];
            let prev = pts[(k + pts.len() - 1) % pts.len()];
            let (ci, pi) = (inside(&cur), inside(&prev));
            if ci != pi {
                let t = (bound - prev[axis]) / (cur[axis] - prev[axis]);
                let mut q = [
                    prev[0] + t * (cur[0] - prev[0]),
                    prev[1] + t * (cur[1] - prev[1]),
                ];
                q[axis] = bound;
                out.push(q);
            }
            if ci {
                out.push(cur);
            }
        }
        pts = out;
        if pts.is_empty() {
            return None;
        }
    }
    normalise_ring(pts).filter(|r| signed_area(r) != 0.0)
}

/// Appends the lon/lat images of the points strictly after `a` up to and including `b`,
/// adding intermediate points until each lon/lat chord, mapped back to `crs`, is within
/// [`DENSIFY_TOLERANCE_M`] of the straight source edge.
fn densify_edge(
    crs: Crs,
    a: Point,
    la: Point,
    b: Point,
    lb: Point,
    depth: u32,
    out: &mut Vec<Point>,
) {
    let m = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let chord_mid = crs.forward([(la[0] + lb[0]) / 2.0, (la[1] + lb[1]) / 2.0]);
    let deviation = (chord_mid[0] - m[0]).hypot(chord_mid[1] - m[1]);
    if depth < MAX_DENSIFY_DEPTH && (deviation > DENSIFY_TOLERANCE_M || deviation.is_nan()) {
        let lm = crs.inverse(m);
        densify_edge(crs, a, la, m, lm, depth + 1, out);
        densify_edge(crs, m, lm, b, lb, depth + 1, out);
    } else {
        out.push(lb);
    }
}

fn ring_to_lonlat(crs: Crs, ring: &[Point]) -> Vec<Point> {
    if crs == Crs::Wgs84 {
        return ring.to_vec();
    }
    let mut out = Vec::with_capacity(ring.len());
    let Some(first) = ring.first() else {
        return out;
    };
    let mut prev = (*first, crs.inverse(*first));
    out.push(prev.1);
    for p in &ring[1..] {
        let lp = crs.inverse(*p);
        densify_edge(crs, prev.0, prev.1, *p, lp, 0, &mut out);
        prev = (*p, lp);
    }
    out
}

/// Parses a Process API `input.bounds` object (`bbox` and/or `geometry`, optional
/// `properties.crs`, default EPSG:4326) into a lon/lat [`Aoi`].
pub fn parse_bounds(bounds: &Value) -> Result<Aoi, GridError> {
    parse_bounds_with(bounds, true)
}

/// [`parse_bounds`] of a stored request, whose AOI was fully validated at create: skips
/// the self-intersection check (see [`Aoi::new_validated`]).
pub fn parse_stored_bounds(bounds: &Value) -> Result<Aoi, GridError> {
    parse_bounds_with(bounds, false)
}

fn parse_bounds_with(bounds: &Value, check_crossings: bool) -> Result<Aoi, GridError> {
    if !bounds.is_object() {
        return Err(invalid(
            "bounds must be an object with bbox and/or geometry",
        ));
    }
    let crs = match bounds.get("properties").and_then(|p| p.get("crs")) {
        None | Some(Value::Null) => Crs::Wgs84,
        Some(Value::String(s)) => parse_crs(s)?,
        Some(other) => return Err(GridError::UnsupportedCrs(other.to_string())),
    };
    let bbox = match bounds.get("bbox") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_bbox(v)?),
    };
    let geometry = match bounds.get("geometry") {
        None | Some(Value::Null) => None,
        Some(g) => Some(parse_geometry(g)?),
    };
    let polygons: Vec<Vec<Vec<Point>>> = match (bbox, geometry) {
        (None, None) => return Err(invalid("bounds needs a bbox or a geometry")),
        (Some(b), None) => vec![vec![vec![
            [b[0], b[1]],
            [b[2], b[1]],
            [b[2], b[3]],
            [b[0], b[3]],
            [b[0], b[1]],
        ]]],
        (None, Some(g)) => g,
        (Some(b), Some(g)) => {
            let clipped: Vec<Vec<Vec<Point>>> = g
                .iter()
                .filter_map(|rings| {
                    let exterior = clip_ring_to_rect(&rings[0], b)?;
                    let holes = rings[1..].iter().filter_map(|h| clip_ring_to_rect(h, b));
                    Some(std::iter::once(exterior).chain(holes).collect())
                })
                .collect();
            if clipped.is_empty() {
                return Err(invalid("the geometry does not overlap the bbox"));
            }
            clipped
        }
    };
    let polygons = polygons
        .into_iter()
        .map(|rings| {
            let mut rings = rings.into_iter().map(|r| ring_to_lonlat(crs, &r));
            let exterior = rings.next().unwrap_or_default();
            Polygon {
                exterior,
                holes: rings.collect(),
            }
        })
        .collect();
    Aoi::build(polygons, check_crossings)
}

#[cfg(test)]
#[path = "aoi_tests.rs"]
mod tests;
