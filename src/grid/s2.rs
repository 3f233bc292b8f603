//! The official Sentinel-2 tile list (ESA tiling KML, 56,686 tiles) as a bitmap of the
//! 100 km MGRS squares that are S2 tiles.
//!
//! Which squares exist is not a simple function of geometry (tiling-grids.md §2.2), so the
//! list is data: `data/s2_squares.bin`, written by `scripts/make_s2_tiles.py` from the KML.
//! One bit per (zone 1..60, hemisphere, column E/100 km 1..8, row N/100 km 0..99), bit
//! index `(((zone - 1) * 2 + south) * 8 + col - 1) * 100 + row`, least significant bit
//! first. A tile's name and bounds follow from its square ([`MgrsSquare::name`],
//! [`MgrsSquare::s2_tile_bounds`]); the test against the KML extract pins both.

use super::mgrs::MgrsSquare;
use super::region::LonLatBox;
use super::tm::UtmZone;
use std::sync::OnceLock;

static BITMAP: &[u8; 12_000] = include_bytes!("data/s2_squares.bin");

/// Number of tiles in ESA's list.
pub const S2_TILE_COUNT: usize = 56_686;
const SQUARE: u32 = 100_000;

fn bit_index(utm: UtmZone, col: u32, row: u32) -> Option<usize> {
    if !(1..=8).contains(&col) || row > 99 {
        return None;
    }
    let zone = usize::from(utm.zone) - 1;
    Some(((zone * 2 + usize::from(utm.south)) * 8 + col as usize - 1) * 100 + row as usize)
}

/// True if the 100 km square with column `col` (E / 100 km) and row `row` (N / 100 km, in
/// the zone's own northing) of `utm` is a Sentinel-2 tile.
pub fn square_exists(utm: UtmZone, col: u32, row: u32) -> bool {
    bit_index(utm, col, row).is_some_and(|b| BITMAP[b / 8] >> (b % 8) & 1 == 1)
}

/// True if `square` is one of ESA's S2 tiles.
// `is_multiple_of` needs Rust 1.87; the crate's MSRV is 1.85.
#[allow(clippy::manual_is_multiple_of)]
pub fn is_s2_tile(square: &MgrsSquare) -> bool {
    square.easting % SQUARE == 0
        && square.northing % SQUARE == 0
        && square_exists(
            square.utm,
            square.easting / SQUARE,
            square.northing / SQUARE,
        )
}

/// Every S2 tile's square, ordered by zone, hemisphere (north first), column, row.
pub fn all_squares() -> impl Iterator<Item = MgrsSquare> {
    (1..=60u8).flat_map(|zone| {
        [false, true].into_iter().flat_map(move |south| {
            let utm = UtmZone { zone, south };
            (1..=8u32).flat_map(move |col| {
                (0..100u32)
                    .filter(move |row| square_exists(utm, col, *row))
                    .map(move |row| MgrsSquare {
                        utm,
                        easting: col * SQUARE,
                        northing: row * SQUARE,
                    })
            })
        })
    })
}

/// The S2 squares of one zone, hemisphere and latitude band, with a lon/lat box that
/// contains the cell blocks (see [`groups`]) of all of them.
#[derive(Debug, Clone)]
pub(crate) struct SquareGroup {
    pub utm: UtmZone,
    pub band: char,
    pub bbox: LonLatBox,
    pub squares: Vec<MgrsSquare>,
}

/// Lon/lat bounds of a UTM rectangle. Along a line of constant northing longitude is
/// monotonic in easting and latitude peaks on the central meridian; along a line of
/// constant easting both are monotonic in northing: so the corners and the central
/// meridian's crossings of the top and bottom edges bound it.
fn lonlat_bounds(utm: UtmZone, rect: [f64; 4]) -> LonLatBox {
    let [x0, y0, x1, y1] = rect;
    let xc = 500_000.0_f64.clamp(x0, x1);
    let mut b = LonLatBox {
        west: f64::INFINITY,
        south: f64::INFINITY,
        east: -f64::INFINITY,
        north: -f64::INFINITY,
    };
    for (x, y) in [(x0, y0), (x1, y0), (x0, y1), (x1, y1), (xc, y0), (xc, y1)] {
        let (lon, lat) = utm.inverse(x, y);
        b.west = b.west.min(lon);
        b.east = b.east.max(lon);
        b.south = b.south.min(lat);
        b.north = b.north.max(lat);
    }
    // Float noise margin (~1 cm).
    let m = 1e-7;
    LonLatBox {
        west: b.west - m,
        south: b.south - m,
        east: b.east + m,
        north: b.north + m,
    }
}

fn build_groups(block: &dyn Fn(&MgrsSquare) -> [f64; 4]) -> Vec<SquareGroup> {
    let mut groups: Vec<SquareGroup> = Vec::new();
    for square in all_squares() {
        let band = square.band();
        let bbox = lonlat_bounds(square.utm, block(&square));
        match groups
            .iter_mut()
            .rev()
            .find(|g| g.utm == square.utm && g.band == band)
        {
            Some(g) => {
                g.bbox = LonLatBox {
                    west: g.bbox.west.min(bbox.west),
                    south: g.bbox.south.min(bbox.south),
                    east: g.bbox.east.max(bbox.east),
                    north: g.bbox.north.max(bbox.north),
                };
                g.squares.push(square);
            }
            None => groups.push(SquareGroup {
                utm: square.utm,
                band,
                bbox,
                squares: vec![square],
            }),
        }
    }
    groups
}

/// Groups of S2 squares per (zone, hemisphere, band), for the UTM grid `grid_id` (0..=2),
/// whose box covers `block(square)` (the UTM extent of all cells a square can produce).
/// Built once per grid (about 0.3 M inverse projections).
pub(crate) fn groups(
    grid_id: i64,
    block: &dyn Fn(&MgrsSquare) -> [f64; 4],
) -> Option<&'static [SquareGroup]> {
    static CACHE: [OnceLock<Vec<SquareGroup>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let cache = CACHE.get(usize::try_from(grid_id).ok()?)?;
    Some(cache.get_or_init(|| build_groups(block)).as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io::Read;

    /// `name,epsg,xmin,ymax` of all 56,686 KML tiles (scripts/make_s2_tiles.py).
    static EXTRACT: &[u8] = include_bytes!("../../fixtures/grid/s2_tiles.csv.gz");

    fn extract() -> Vec<(String, u32, f64, f64)> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(EXTRACT)
            .read_to_string(&mut text)
            .unwrap();
        text.lines()
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                assert_eq!(f.len(), 4, "{line}");
                (
                    f[0].to_string(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn name_to_bounds_rule_holds_for_every_kml_tile() {
        let tiles = extract();
        assert_eq!(tiles.len(), S2_TILE_COUNT);
        let mut squares = HashSet::new();
        for (name, epsg, xmin, ymax) in &tiles {
            let square = MgrsSquare::parse(name).unwrap();
            let b = square.s2_tile_bounds();
            assert_eq!(
                (square.utm.epsg(), b[0], b[3]),
                (*epsg, *xmin, *ymax),
                "{name}"
            );
            assert_eq!(b[2] - b[0], 109_800.0);
            assert_eq!(square.name(), *name);
            assert!(is_s2_tile(&square), "{name} missing from the bitmap");
            assert!(squares.insert(square), "{name} duplicates a square");
        }
        // Same number of set bits as KML tiles, all of them hit above: the bitmap is exactly
        // the KML list.
        let bits: u32 = BITMAP.iter().map(|b| b.count_ones()).sum();
        assert_eq!(bits as usize, S2_TILE_COUNT);
        assert_eq!(all_squares().count(), S2_TILE_COUNT);
    }

    #[test]
    fn known_tiles_and_gaps() {
        let exists = |name: &str| is_s2_tile(&MgrsSquare::parse(name).unwrap());
        for name in [
            "31UDS", "28PBB", "01CCV", "32VKJ", "37XEA", "01KAB", "59XNP",
        ] {
            assert!(exists(name), "{name}");
        }
        // 32X, 34X, 36X are empty; column A (E = 100 km) exists only in zone 01.
        let zone = |z: u8| UtmZone::new(z, false).unwrap();
        for z in [32, 34, 36] {
            assert!(all_squares().all(|s| s.utm != zone(z) || s.band() != 'X'));
        }
        assert!(!square_exists(zone(3), 1, 40));
        assert!(!square_exists(zone(31), 0, 50));
        assert!(!square_exists(zone(31), 9, 50));
        assert!(!square_exists(zone(31), 5, 100));
        // Band counts from tiling-grids.md §2.2.
        let count = |band: char| all_squares().filter(|s| s.band() == band).count();
        assert_eq!((count('C'), count('V'), count('X')), (1500, 2161, 1542));
    }

    #[test]
    fn lonlat_bounds_contain_the_rectangle() {
        let utm = UtmZone::new(33, false).unwrap();
        let rect = [399_960.0, 5_090_220.0, 509_760.0, 5_200_020.0];
        let b = lonlat_bounds(utm, rect);
        for k in 0..=20 {
            let t = f64::from(k) / 20.0;
            for (x, y) in [
                (rect[0] + t * (rect[2] - rect[0]), rect[1]),
                (rect[0] + t * (rect[2] - rect[0]), rect[3]),
                (rect[0], rect[1] + t * (rect[3] - rect[1])),
                (rect[2], rect[1] + t * (rect[3] - rect[1])),
            ] {
                let (lon, lat) = utm.inverse(x, y);
                assert!(lon >= b.west && lon <= b.east && lat >= b.south && lat <= b.north);
            }
        }
        // The top edge crosses the central meridian (15°E): the latitude maximum is there.
        assert!(b.north > utm.inverse(rect[0], rect[3]).1);
    }
}
