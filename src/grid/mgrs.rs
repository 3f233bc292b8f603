//! MGRS 100 km squares as Sentinel-2 uses them (tiling-grids.md §2.2/§2.3).
//!
//! S2 names every 100 km square of a UTM zone once, with the latitude band of the square's
//! *centre* (NGA's MGRS would split squares at band edges). That makes naming a pure
//! function of (zone, hemisphere, E, N) and lets names map back to exact UTM bounds.

use super::tm::{UtmZone, UTM_SOUTH_FALSE_NORTHING};
use super::GridError;

const COLUMN_SETS: [&[u8; 8]; 3] = [b"ABCDEFGH", b"JKLMNPQR", b"STUVWXYZ"];
const ROW_LETTERS: &[u8; 20] = b"ABCDEFGHJKLMNPQRSTUV";
const BAND_LETTERS: &[u8; 20] = b"CDEFGHJKLMNPQRSTUVWX";
const SQUARE: u32 = 100_000;
/// Side of an S2 tile: 1830 px at 60 m.
pub const S2_TILE_SIZE: f64 = 109_800.0;

/// Latitude band letter: C below -72°, X from 72° up (12° tall), 8° bands in between.
pub fn latitude_band(lat: f64) -> char {
    let index = ((lat + 80.0) / 8.0).floor().clamp(0.0, 19.0) as usize;
    char::from(BAND_LETTERS[index])
}

// `is_multiple_of` needs Rust 1.87; the crate's MSRV is 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn row_offset(zone: u8) -> u32 {
    if zone % 2 == 0 {
        5
    } else {
        0
    }
}

fn false_northing(utm: UtmZone) -> f64 {
    if utm.south {
        UTM_SOUTH_FALSE_NORTHING
    } else {
        0.0
    }
}

/// One 100 km MGRS square of one UTM zone, identified by its south-west corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MgrsSquare {
    pub utm: UtmZone,
    /// West edge, metres (false easting included), a multiple of 100 km in 100..=800 km.
    pub easting: u32,
    /// South edge, metres in the zone's northing (false northing included in the south).
    pub northing: u32,
}

impl MgrsSquare {
    /// The square containing (x, y) of `utm`, or `None` where MGRS has no column letter
    /// (x outside 100..900 km) or y is outside 0..10 000 km.
    pub fn containing(utm: UtmZone, x: f64, y: f64) -> Option<MgrsSquare> {
        let column = (x / f64::from(SQUARE)).floor();
        let row = (y / f64::from(SQUARE)).floor();
        if !(1.0..=8.0).contains(&column) || !(0.0..=99.0).contains(&row) {
            return None;
        }
        Some(MgrsSquare {
            utm,
            easting: column as u32 * SQUARE,
            northing: row as u32 * SQUARE,
        })
    }

    /// Latitude of the square's centre; decides its band letter.
    pub fn centre_latitude(&self) -> f64 {
        let half = f64::from(SQUARE / 2);
        self.utm
            .inverse(
                f64::from(self.easting) + half,
                f64::from(self.northing) + half,
            )
            .1
    }

    pub fn band(&self) -> char {
        latitude_band(self.centre_latitude())
    }

    fn column_letter(&self) -> char {
        let set = COLUMN_SETS[usize::from((self.utm.zone - 1) % 3)];
        let index = (self.easting / SQUARE).clamp(1, 8) as usize - 1;
        char::from(set[index])
    }

    fn row_letter(&self) -> char {
        let index = (self.northing / SQUARE + row_offset(self.utm.zone)) % 20;
        char::from(ROW_LETTERS[index as usize])
    }

    /// The 5-character S2 tile id, e.g. "31UDS".
    pub fn name(&self) -> String {
        self.name_with_band(self.band())
    }

    /// Like [`MgrsSquare::name`] with a band letter the caller already computed.
    pub fn name_with_band(&self, band: char) -> String {
        format!(
            "{:02}{}{}{}",
            self.utm.zone,
            band,
            self.column_letter(),
            self.row_letter()
        )
    }

    /// Parses a 5-character S2 tile id (the inverse of [`MgrsSquare::name`]).
    pub fn parse(name: &str) -> Result<MgrsSquare, GridError> {
        let invalid = |why: &str| GridError::InvalidMgrs(format!("{name:?}: {why}"));
        let bytes = name.as_bytes();
        if bytes.len() != 5 || !name.is_ascii() {
            return Err(invalid("expected 5 characters like 31UDS"));
        }
        let zone: u8 = name[0..2]
            .parse()
            .map_err(|_| invalid("zone must be two digits"))?;
        let band = bytes[2].to_ascii_uppercase();
        if !BAND_LETTERS.contains(&band) {
            return Err(invalid("unknown latitude band"));
        }
        let utm = UtmZone::new(zone, band < b'N').ok_or_else(|| invalid("zone not in 01..60"))?;
        let column_set = COLUMN_SETS[usize::from((zone - 1) % 3)];
        let column = column_set
            .iter()
            .position(|c| *c == bytes[3].to_ascii_uppercase())
            .ok_or_else(|| invalid("column letter not used in this zone"))?;
        let row = ROW_LETTERS
            .iter()
            .position(|c| *c == bytes[4].to_ascii_uppercase())
            .ok_or_else(|| invalid("unknown row letter"))? as u32;
        let n100 = (row + 20 - row_offset(zone)) % 20;
        let easting = (column as u32 + 1) * SQUARE;
        // Row letters repeat every 2000 km: pick the cycle whose centre lies in the band.
        (0..5)
            .map(|cycle| (n100 + 20 * cycle) * SQUARE)
            .filter(|northing| *northing <= if utm.south { 9_900_000 } else { 9_400_000 })
            .map(|northing| MgrsSquare {
                utm,
                easting,
                northing,
            })
            .find(|square| square.band() == char::from(band))
            .ok_or_else(|| invalid("row letter does not occur in this latitude band"))
    }

    /// North edge of the square (its northing + 100 km).
    pub fn north_edge(&self) -> f64 {
        f64::from(self.northing + SQUARE)
    }

    /// Upper-left corner of the S2 tile: the square's corner moved west and north to the
    /// 60 m lattice (true northing), as in the ESA tile list.
    pub fn s2_upper_left(&self) -> (f64, f64) {
        let fn_ = false_northing(self.utm);
        let x = 60.0 * (f64::from(self.easting) / 60.0).floor();
        let y = fn_ + 60.0 * ((self.north_edge() - fn_) / 60.0).ceil();
        (x, y)
    }

    /// S2 tile bounds (xmin, ymin, xmax, ymax) in the tile's UTM zone.
    pub fn s2_tile_bounds(&self) -> [f64; 4] {
        let (x, y) = self.s2_upper_left();
        [x, y - S2_TILE_SIZE, x + S2_TILE_SIZE, y]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESA KML bounds (tiling-grids.md §2.3).
    const S2_TILES: [(&str, u32, [f64; 4]); 15] = [
        ("31UDS", 32631, [399960., 5590200., 509760., 5700000.]),
        ("28PBB", 32628, [199980., 1590240., 309780., 1700040.]),
        ("31SDV", 32631, [399960., 3890220., 509760., 4000020.]),
        ("33TVM", 32633, [399960., 5090220., 509760., 5200020.]),
        ("33UVP", 32633, [399960., 5290200., 509760., 5400000.]),
        ("01CCV", 32701, [300000., 1890220., 409800., 2000020.]),
        ("19HCS", 32719, [300000., 5590240., 409800., 5700040.]),
        ("60HUC", 32760, [300000., 5690200., 409800., 5800000.]),
        ("32VKJ", 32632, [199980., 6290220., 309780., 6400020.]),
        ("31VEC", 32631, [499980., 6190200., 609780., 6300000.]),
        ("33XVJ", 32633, [399960., 8790240., 509760., 8900040.]),
        ("35XMA", 32635, [399960., 7990200., 509760., 8100000.]),
        ("37XEA", 32637, [499980., 7990200., 609780., 8100000.]),
        ("01KAB", 32701, [99960., 8090200., 209760., 8200000.]),
        ("21LYC", 32721, [699960., 8190220., 809760., 8300020.]),
    ];

    #[test]
    fn names_map_to_esa_bounds() {
        for (name, epsg, bounds) in S2_TILES {
            let square = MgrsSquare::parse(name).unwrap();
            assert_eq!(square.utm.epsg(), epsg, "{name}");
            assert_eq!(square.s2_tile_bounds(), bounds, "{name}");
        }
    }

    #[test]
    fn esa_bounds_map_back_to_names() {
        for (name, epsg, [xmin, _, _, ymax]) in S2_TILES {
            // The S2 tile's corner is at most 40 m west/north of the square's corner.
            let west = (xmin / 100_000.0).ceil() * 100_000.0;
            let north = (ymax / 100_000.0).floor() * 100_000.0;
            let utm = UtmZone::from_epsg(epsg).unwrap();
            let square = MgrsSquare::containing(utm, west + 1.0, north - 1.0).unwrap();
            assert_eq!(square.name(), name);
        }
    }

    #[test]
    fn bands() {
        assert_eq!(latitude_band(-80.0), 'C');
        assert_eq!(latitude_band(-72.1), 'C');
        assert_eq!(latitude_band(-0.1), 'M');
        assert_eq!(latitude_band(0.0), 'N');
        assert_eq!(latitude_band(51.2), 'U');
        assert_eq!(latitude_band(71.9), 'W');
        assert_eq!(latitude_band(72.0), 'X');
        assert_eq!(latitude_band(84.0), 'X');
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "31UD", "61UDS", "00UDS", "31IDS", "31UJS", "31UDW", "3xUDS", "31UDSS",
        ] {
            assert!(MgrsSquare::parse(bad).is_err(), "{bad}");
        }
        // Row H exists, but its squares in zone 31 lie in bands T and V, not U.
        assert!(MgrsSquare::parse("31UDH").is_err());
        assert!(MgrsSquare::parse("31TDH").is_ok());
    }

    #[test]
    fn containing_rejects_points_without_column_letter() {
        let utm = UtmZone::new(31, false).unwrap();
        assert!(MgrsSquare::containing(utm, 99_999.0, 5e6).is_none());
        assert!(MgrsSquare::containing(utm, 900_000.0, 5e6).is_none());
        assert!(MgrsSquare::containing(utm, 500_000.0, -1.0).is_none());
    }
}
