//! Batch tiling grids: which output tiles an area of interest (AOI) maps to.
//!
//! Pure geometry, no I/O. Layers, bottom up:
//! * [`tm`]: WGS84 transverse Mercator / UTM and EPSG:3857, hand-written (no projection crate).
//! * [`mgrs`]: Sentinel-2 naming of 100 km MGRS squares and the name -> UTM bounds rule.
//! * [`s2`]: which squares are Sentinel-2 tiles (ESA's list, embedded as a 12 kB bitmap).
//! * [`aoi`]: Process API `input.bounds` -> lon/lat polygons ([`Aoi`]).
//! * `region`: AOI ∩ lon/lat box, reprojected, with a bucket index for cell tests.
//! * [`tiling`]: grid cells intersecting an AOI ([`tiles`]).
//! * [`geojson`]: AOI files in, tiles out as GeoJSON (`tessera grid tiles`).
//!
//! The grid catalogue follows tiling-grids.md §1.1 (ids 0-3; the LAEA grids 6/7 are not
//! implemented).

pub mod aoi;
mod crossing;
pub mod geojson;
pub mod mgrs;
mod region;
pub mod s2;
pub mod tiling;
pub mod tm;

pub use aoi::{parse_bounds, parse_crs, parse_stored_bounds, Aoi, Crs, Polygon};
pub use geojson::{
    aoi_from_geojson, tiles_feature_collection, tiles_geojson, write_tiles_geojson, WriteError,
};
pub use tiling::{
    count_tiles_with_limit, estimate_tile_count, tiles, tiles_iter, tiles_with_limit, Tile,
    TilingSpec,
};

use serde::{Deserialize, Serialize};

/// Everything that can go wrong in this module; messages are meant for API users.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    #[error("unknown tiling grid id {0}; available ids: 0, 1, 2, 3")]
    UnknownGrid(i64),
    #[error(
        "resolution {resolution} is not supported by tiling grid {grid}; use one of {allowed:?}"
    )]
    UnsupportedResolution {
        grid: i64,
        resolution: f64,
        allowed: Vec<f64>,
    },
    #[error("bufferX and bufferY must be between 0 and 32767, got ({buffer_x}, {buffer_y})")]
    InvalidBuffer { buffer_x: i32, buffer_y: i32 },
    #[error(
        "the area of interest lies outside tiling grid {grid}, which covers latitudes \
         -{max_abs_lat}..{max_abs_lat} only"
    )]
    OutsideCoverage { grid: i64, max_abs_lat: f64 },
    #[error("invalid area of interest: {0}")]
    InvalidAoi(String),
    #[error(
        "unsupported CRS {0:?}; supported are EPSG:4326, OGC CRS84, EPSG:3857 and the UTM \
         zones EPSG:32601-32660 / 32701-32760, written as http://www.opengis.net/def/crs/EPSG/0/<code>"
    )]
    UnsupportedCrs(String),
    #[error("invalid Sentinel-2 / MGRS tile id {0}")]
    InvalidMgrs(String),
    #[error("the area of interest covers more than {limit} tiles of this grid; split the request")]
    TooManyTiles { limit: usize },
}

/// Unit of a grid's tile size and resolutions (`TilingGridDescriptor.properties.unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Unit {
    Metre,
    Degree,
}

/// One tiling grid of the catalogue (`GET /tilinggrids`).
#[derive(Debug, Clone, PartialEq)]
pub struct GridDef {
    pub id: i64,
    pub name: &'static str,
    /// Tile width/height in `unit`.
    pub tile_width: f64,
    pub tile_height: f64,
    pub resolutions: &'static [f64],
    pub unit: Unit,
    /// AOI parts beyond this |latitude| are ignored. For the UTM grids this is the 80.5°
    /// recommended in tiling-grids.md §1.3; the docs' coverage figures (80.6°, 80.7°, 81°)
    /// are about where the tiles touching 80.5° end, which this rule reproduces.
    pub max_abs_lat: f64,
}

static GRIDS: [GridDef; 4] = [
    GridDef {
        id: 0,
        name: "UTM 20km grid",
        tile_width: 20040.0,
        tile_height: 20040.0,
        resolutions: &[10.0, 20.0, 30.0, 60.0],
        unit: Unit::Metre,
        max_abs_lat: 80.5,
    },
    GridDef {
        id: 1,
        name: "UTM 10km grid",
        tile_width: 10000.0,
        tile_height: 10000.0,
        resolutions: &[10.0, 20.0],
        unit: Unit::Metre,
        max_abs_lat: 80.5,
    },
    GridDef {
        id: 2,
        name: "UTM 100km grid",
        tile_width: 100080.0,
        tile_height: 100080.0,
        resolutions: &[30.0, 60.0, 120.0, 240.0, 360.0],
        unit: Unit::Metre,
        max_abs_lat: 80.5,
    },
    GridDef {
        id: 3,
        name: "WGS84 1 degree grid",
        tile_width: 1.0,
        tile_height: 1.0,
        resolutions: &[0.0001, 0.0002],
        unit: Unit::Degree,
        max_abs_lat: 90.0,
    },
];

/// All supported grids, ordered by id.
pub fn grids() -> &'static [GridDef] {
    &GRIDS
}

pub fn grid(id: i64) -> Option<&'static GridDef> {
    GRIDS.iter().find(|g| g.id == id)
}

impl GridDef {
    /// The allowed resolution equal to `resolution` up to float noise (clients send `10`
    /// or `10.0`, and 0.0001 may arrive as 1e-4 with rounding).
    pub fn canonical_resolution(&self, resolution: f64) -> Option<f64> {
        self.resolutions
            .iter()
            .copied()
            .find(|r| (r - resolution).abs() <= r * 1e-9)
    }

    /// True for the grids whose tiles live in UTM zones (EPSG:326zz/327zz).
    pub fn is_utm(&self) -> bool {
        self.unit == Unit::Metre
    }

    /// The `TilingGridDescriptor` JSON of the tiling-grid endpoints.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "properties": {
                "tileWidth": self.tile_width,
                "tileHeight": self.tile_height,
                "resolutions": self.resolutions,
                "unit": self.unit,
            }
        })
    }
}

/// Longitude and latitude of a point given in a tile CRS (UTM 326zz/327zz or 4326);
/// `None` for any other EPSG code.
pub fn to_lonlat(epsg: u32, x: f64, y: f64) -> Option<(f64, f64)> {
    if epsg == 4326 {
        return Some((x, y));
    }
    tm::UtmZone::from_epsg(epsg).map(|z| z.inverse(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_matches_docs_table() {
        let ids: Vec<i64> = grids().iter().map(|g| g.id).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        let g1 = grid(1).unwrap();
        assert_eq!(
            (g1.name, g1.tile_width, g1.resolutions),
            ("UTM 10km grid", 10000.0, &[10.0, 20.0][..])
        );
        assert_eq!(grid(2).unwrap().tile_height, 100080.0);
        assert!(grid(4).is_none());
        assert!(grid(-1).is_none());
    }

    #[test]
    fn tile_sizes_are_whole_pixels_at_every_resolution() {
        for g in grids() {
            for r in g.resolutions {
                let px = g.tile_width / r;
                assert!((px - px.round()).abs() < 1e-6, "grid {} res {r}", g.id);
            }
        }
    }

    #[test]
    fn descriptor_shape() {
        let d = grid(0).unwrap().descriptor();
        assert_eq!(
            d,
            serde_json::json!({"id": 0, "name": "UTM 20km grid", "properties": {
                "tileWidth": 20040.0, "tileHeight": 20040.0,
                "resolutions": [10.0, 20.0, 30.0, 60.0], "unit": "METRE"}})
        );
        assert_eq!(
            grid(3).unwrap().descriptor()["properties"]["unit"],
            "DEGREE"
        );
    }

    #[test]
    fn resolution_matching_tolerates_integer_and_float_noise() {
        let g3 = grid(3).unwrap();
        assert_eq!(g3.canonical_resolution(0.1 * 0.001), Some(0.0001));
        assert_eq!(g3.canonical_resolution(0.00015), None);
        assert_eq!(grid(1).unwrap().canonical_resolution(10.0), Some(10.0));
        assert_eq!(grid(1).unwrap().canonical_resolution(60.0), None);
    }
}
