//! AOI -> batch tiles of a tiling grid.
//!
//! UTM grids (0, 1, 2), membership rule used until the official S2 tile list is embedded:
//! for every UTM zone whose longitude strip meets the AOI (6° strips with the
//! Norway/Svalbard exceptions of bands V and X, split at the equator into EPSG:326zz and
//! 327zz, cut at |lat| = [`GridDef::max_abs_lat`]), take AOI ∩ strip, project it into the
//! zone with edges densified to 1 mm, and keep every cell of every MGRS 100 km square that
//! overlaps it with positive area (touching along an edge, or overlapping by less than
//! [`UTM_EPSILON_M`], does not count).
//! * Grid 1: 10 × 10 cells of 10 000 m per square on the exact square corners, named
//!   `<square>_<i>_<j>` (i east from the west edge, j south from the north edge).
//! * Grid 2: one 100 080 m cell per square, anchored at the S2 tile's upper-left corner.
//! * Grid 0: 5 × 5 cells of 20 040 m per square from the S2 upper-left corner (the
//!   "preferred hypothesis" of tiling-grids.md §1.3, unconfirmed).
//!
//! Known gap: S2 keeps some squares outside a zone's strip and drops some inside it
//! (tiling-grids.md §2.2), so near zone edges this rule can both add and miss squares
//! compared with Sentinel Hub; names and bounds of the tiles it does produce are exact.
//! Overlapping tiles at zone edges are expected (SH produces them too).
//!
//! Grid 3: 1° cells in EPSG:4326 named by their south-west corner (`N13E025` = lon 25..26,
//! lat 13..14); x is longitude, y latitude; longitudes are normalised to [-180, 180).

use super::aoi::{Aoi, Point};
use super::mgrs::MgrsSquare;
use super::region::{clip_to_box, project_segments, LonLatBox, RegionIndex};
use super::tm::UtmZone;
use super::{grid, GridDef, GridError};
use serde::{Deserialize, Serialize};

/// A cell must overlap the AOI by more than this (metres) on each axis to be kept; absorbs
/// the ~mm reprojection error of AOIs drawn exactly on cell lines in a UTM CRS.
pub const UTM_EPSILON_M: f64 = 0.01;
const DEGREE_EPSILON: f64 = 1e-9;
const SQUARE: f64 = 100_000.0;

/// The `tilingGrid` object of a batch request (deserialises from
/// `{"id": 1, "resolution": 10, "bufferX": 3, "bufferY": 7}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TilingSpec {
    #[serde(rename = "id")]
    pub grid_id: i64,
    pub resolution: f64,
    #[serde(rename = "bufferX", default)]
    pub buffer_x: i32,
    #[serde(rename = "bufferY", default)]
    pub buffer_y: i32,
}

impl TilingSpec {
    pub fn new(grid_id: i64, resolution: f64) -> TilingSpec {
        TilingSpec {
            grid_id,
            resolution,
            buffer_x: 0,
            buffer_y: 0,
        }
    }

    /// The grid, after checking the id, the resolution and the buffers.
    pub fn grid(&self) -> Result<&'static GridDef, GridError> {
        let def = grid(self.grid_id).ok_or(GridError::UnknownGrid(self.grid_id))?;
        if def.canonical_resolution(self.resolution).is_none() {
            return Err(GridError::UnsupportedResolution {
                grid: def.id,
                resolution: self.resolution,
                allowed: def.resolutions.to_vec(),
            });
        }
        let valid = 0..=i32::from(i16::MAX);
        if !valid.contains(&self.buffer_x) || !valid.contains(&self.buffer_y) {
            return Err(GridError::InvalidBuffer {
                buffer_x: self.buffer_x,
                buffer_y: self.buffer_y,
            });
        }
        Ok(def)
    }

    fn pixels(&self, size: fn(&GridDef) -> f64) -> Result<u32, GridError> {
        let def = self.grid()?;
        let resolution = def
            .canonical_resolution(self.resolution)
            .unwrap_or(self.resolution);
        Ok((size(def) / resolution).round() as u32)
    }

    /// Tile width in pixels without buffer (the request's `tileWidthPx`).
    pub fn tile_width_px(&self) -> Result<u32, GridError> {
        self.pixels(|g| g.tile_width)
    }

    pub fn tile_height_px(&self) -> Result<u32, GridError> {
        self.pixels(|g| g.tile_height)
    }

    /// Output raster width: tile width / resolution + 2 · bufferX.
    pub fn width_px(&self) -> Result<u32, GridError> {
        Ok(self.tile_width_px()? + 2 * self.buffer_x.max(0) as u32)
    }

    pub fn height_px(&self) -> Result<u32, GridError> {
        Ok(self.tile_height_px()? + 2 * self.buffer_y.max(0) as u32)
    }
}

/// One output tile of a grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tile {
    /// Deterministic from the tile's position, unique across zones and grids (see
    /// [`utm_tile_id`]); SH's own numeric ids are not reproducible.
    pub id: i64,
    pub name: String,
    pub epsg: u32,
    /// Unbuffered bounds in the tile's CRS (metres, or degrees for EPSG:4326).
    pub x_min: f64,
    pub y_min: f64,
    pub x_max: f64,
    pub y_max: f64,
    /// Closed counter-clockwise lon/lat ring of the unbuffered tile, edges densified.
    /// Tiles crossing the antimeridian keep continuous longitudes (beyond ±180).
    pub wgs84: Vec<[f64; 2]>,
}

impl Tile {
    pub fn bounds(&self) -> [f64; 4] {
        [self.x_min, self.y_min, self.x_max, self.y_max]
    }

    /// Upper-left corner of the unbuffered tile: the v1 tile `origin` (sentinelhub-py
    /// rebuilds the bbox from it as upper-left, whatever the OpenAPI text says).
    pub fn origin(&self) -> [f64; 2] {
        [self.x_min, self.y_max]
    }

    /// Bounds grown by bufferX · resolution left and right, bufferY · resolution top and
    /// bottom: the extent of the output raster.
    pub fn buffered_bounds(&self, spec: &TilingSpec) -> [f64; 4] {
        let bx = f64::from(spec.buffer_x) * spec.resolution;
        let by = f64::from(spec.buffer_y) * spec.resolution;
        [
            self.x_min - bx,
            self.y_min - by,
            self.x_max + bx,
            self.y_max + by,
        ]
    }

    /// `urn:ogc:def:crs:EPSG::<code>`, as in the v1 tile `origin.crs`.
    pub fn crs_urn(&self) -> String {
        format!("urn:ogc:def:crs:EPSG::{}", self.epsg)
    }

    /// The lon/lat footprint as a GeoJSON Polygon (the v1 tile `geometry`).
    pub fn geometry_geojson(&self) -> serde_json::Value {
        serde_json::json!({"type": "Polygon", "coordinates": [self.wgs84]})
    }
}

/// Id layout (decimal digits): grid | hemisphere (1 = south) | zone (2) | square column
/// (E / 100 km) | square row (N / 100 km, 2) | i (2) | j (2). For example 28PBB_2_6 on
/// grid 1 is 1|0|28|2|16|02|06 = 10282160206.
pub fn utm_tile_id(grid_id: i64, square: &MgrsSquare, i: u32, j: u32) -> i64 {
    let mut id = grid_id * 10 + i64::from(square.utm.south);
    id = id * 100 + i64::from(square.utm.zone);
    id = id * 10 + i64::from(square.easting / 100_000);
    id = id * 100 + i64::from(square.northing / 100_000);
    id = id * 100 + i64::from(i);
    id * 100 + i64::from(j)
}

/// Grid-3 id: 3 · 10^10 + (lat + 90) · 1000 + (lon + 180) with the SW corner in degrees.
fn degree_tile_id(grid_id: i64, lon: i32, lat: i32) -> i64 {
    grid_id * 10_000_000_000 + i64::from(lat + 90) * 1000 + i64::from(lon + 180)
}

#[derive(Clone, Copy)]
enum CellKind {
    Utm { square: MgrsSquare, i: u32, j: u32 },
    Degree { lon: i32, lat: i32 },
}

#[derive(Clone, Copy)]
struct Cell {
    id: i64,
    kind: CellKind,
    rect: [f64; 4],
}

/// Cell layout inside one MGRS square.
struct SquareLayout {
    size: f64,
    per_side: u32,
    /// Anchor at the S2 tile's upper-left corner instead of the exact square corner.
    s2_anchor: bool,
}

fn square_layout(grid_id: i64) -> Option<SquareLayout> {
    match grid_id {
        0 => Some(SquareLayout {
            size: 20040.0,
            per_side: 5,
            s2_anchor: true,
        }),
        1 => Some(SquareLayout {
            size: 10000.0,
            per_side: 10,
            s2_anchor: false,
        }),
        2 => Some(SquareLayout {
            size: 100080.0,
            per_side: 1,
            s2_anchor: true,
        }),
        _ => None,
    }
}

/// Longitude strips of one zone with the V/X band exceptions, as (west, east, south, north).
fn zone_strips(zone: u8) -> Vec<[f64; 4]> {
    let west = -186.0 + 6.0 * f64::from(zone);
    let standard = Some((west, west + 6.0));
    let band_v = match zone {
        31 => Some((0.0, 3.0)),
        32 => Some((3.0, 12.0)),
        _ => standard,
    };
    let band_x = match zone {
        31 => Some((0.0, 9.0)),
        33 => Some((9.0, 21.0)),
        35 => Some((21.0, 33.0)),
        37 => Some((33.0, 42.0)),
        32 | 34 | 36 => None,
        _ => standard,
    };
    let bands = [
        (-90.0, 56.0, standard),
        (56.0, 64.0, band_v),
        (64.0, 72.0, standard),
        (72.0, 90.0, band_x),
    ];
    let mut strips: Vec<[f64; 4]> = Vec::new();
    for (south, north, lons) in bands {
        let Some((w, e)) = lons else { continue };
        match strips.last_mut() {
            Some(last) if last[0] == w && last[1] == e && last[3] == south => last[3] = north,
            _ => strips.push([w, e, south, north]),
        }
    }
    strips
}

/// Copies of `bx` shifted by multiples of 360° that overlap the AOI bbox with positive area.
fn shifted_boxes(bx: LonLatBox, aoi_bbox: [f64; 4]) -> Vec<LonLatBox> {
    if !(bx.south < aoi_bbox[3] && bx.north > aoi_bbox[1]) {
        return Vec::new();
    }
    (-2..=2)
        .map(|k| LonLatBox {
            west: bx.west + 360.0 * f64::from(k),
            east: bx.east + 360.0 * f64::from(k),
            ..bx
        })
        .filter(|b| b.west < aoi_bbox[2] && b.east > aoi_bbox[0])
        .collect()
}

/// (zone, box) pieces of the UTM grids' coverage overlapping the AOI bbox.
fn utm_parts(max_abs_lat: f64, aoi_bbox: [f64; 4]) -> Vec<(UtmZone, LonLatBox)> {
    let mut parts = Vec::new();
    for zone in 1..=60u8 {
        for [west, east, south, north] in zone_strips(zone) {
            for (hemisphere_south, lo, hi) in [
                (true, south, north.min(0.0)),
                (false, south.max(0.0), north),
            ] {
                let (lo, hi) = (lo.max(-max_abs_lat), hi.min(max_abs_lat));
                let Some(utm) = UtmZone::new(zone, hemisphere_south) else {
                    continue;
                };
                if lo >= hi {
                    continue;
                }
                let bx = LonLatBox {
                    west,
                    south: lo,
                    east,
                    north: hi,
                };
                parts.extend(shifted_boxes(bx, aoi_bbox).into_iter().map(|b| (utm, b)));
            }
        }
    }
    parts
}

/// Pushes cells, failing once more than `limit` are collected.
struct CellSink {
    cells: Vec<Cell>,
    /// The caller's limit, reported in the error.
    limit: usize,
    /// Raw cap before deduplication.
    cap: usize,
}

impl CellSink {
    fn push(&mut self, cell: Cell) -> Result<(), GridError> {
        if self.cells.len() >= self.cap {
            return Err(GridError::TooManyTiles { limit: self.limit });
        }
        self.cells.push(cell);
        Ok(())
    }
}

fn utm_part_cells(
    def: &GridDef,
    layout: &SquareLayout,
    aoi: &Aoi,
    utm: UtmZone,
    bx: &LonLatBox,
    sink: &mut CellSink,
) -> Result<bool, GridError> {
    let lonlat = clip_to_box(aoi.polygons(), bx);
    if lonlat.is_empty() {
        return Ok(false);
    }
    let project = |p: Point| -> Point { utm.forward(p[0], p[1]).into() };
    let index = RegionIndex::new(
        project_segments(&lonlat, &project, layout.size),
        layout.size,
    );
    let [x0, y0, x1, y1] = index.bbox();
    let margin = 1000.0;
    let (col0, col1) = (
        ((x0 - margin) / SQUARE).floor(),
        ((x1 + margin) / SQUARE).floor(),
    );
    let (row0, row1) = (
        ((y0 - margin) / SQUARE).floor(),
        ((y1 + margin) / SQUARE).floor(),
    );
    let mut row = row0;
    while row <= row1 {
        let mut col = col0;
        while col <= col1 {
            let centre = ((col + 0.5) * SQUARE, (row + 0.5) * SQUARE);
            if let Some(square) = MgrsSquare::containing(utm, centre.0, centre.1) {
                square_cells(def, layout, &square, &index, sink)?;
            }
            col += 1.0;
        }
        row += 1.0;
    }
    Ok(true)
}

fn square_cells(
    def: &GridDef,
    layout: &SquareLayout,
    square: &MgrsSquare,
    index: &RegionIndex,
    sink: &mut CellSink,
) -> Result<(), GridError> {
    let (left, top) = if layout.s2_anchor {
        square.s2_upper_left()
    } else {
        (f64::from(square.easting), square.north_edge())
    };
    let b = index.bbox();
    for i in 0..layout.per_side {
        let x_min = left + layout.size * f64::from(i);
        let x_max = x_min + layout.size;
        if x_min >= b[2] || x_max <= b[0] {
            continue;
        }
        for j in 0..layout.per_side {
            let y_max = top - layout.size * f64::from(j);
            let y_min = y_max - layout.size;
            if y_min >= b[3] || y_max <= b[1] {
                continue;
            }
            let rect = [x_min, y_min, x_max, y_max];
            if index.intersects_rect(rect, UTM_EPSILON_M) {
                sink.push(Cell {
                    id: utm_tile_id(def.id, square, i, j),
                    kind: CellKind::Utm {
                        square: *square,
                        i,
                        j,
                    },
                    rect,
                })?;
            }
        }
    }
    Ok(())
}

fn degree_cells(def: &GridDef, aoi: &Aoi, sink: &mut CellSink) -> Result<(), GridError> {
    let world = LonLatBox {
        west: -180.0,
        south: -def.max_abs_lat,
        east: 180.0,
        north: def.max_abs_lat,
    };
    for bx in shifted_boxes(world, aoi.bbox()) {
        let lonlat = clip_to_box(aoi.polygons(), &bx);
        if lonlat.is_empty() {
            continue;
        }
        let identity = |p: Point| p;
        let index = RegionIndex::new(
            project_segments(&lonlat, &identity, def.tile_width),
            def.tile_width,
        );
        let [x0, y0, x1, y1] = index.bbox();
        let (lat0, lat1) = (
            y0.floor().max(-90.0) as i32,
            (y1.ceil().min(90.0) as i32) - 1,
        );
        let (lon0, lon1) = (x0.floor() as i32, x1.ceil() as i32 - 1);
        for lat in lat0..=lat1 {
            for lon in lon0..=lon1 {
                let rect = [
                    f64::from(lon),
                    f64::from(lat),
                    f64::from(lon + 1),
                    f64::from(lat + 1),
                ];
                if !index.intersects_rect(rect, DEGREE_EPSILON) {
                    continue;
                }
                let lon = (lon + 180).rem_euclid(360) - 180;
                sink.push(Cell {
                    id: degree_tile_id(def.id, lon, lat),
                    kind: CellKind::Degree { lon, lat },
                    rect: [
                        f64::from(lon),
                        f64::from(lat),
                        f64::from(lon + 1),
                        f64::from(lat + 1),
                    ],
                })?;
            }
        }
    }
    Ok(())
}

/// Deduplicated cells sorted by id.
fn collect_cells(
    aoi: &Aoi,
    spec: &TilingSpec,
    limit: usize,
) -> Result<(&'static GridDef, Vec<Cell>), GridError> {
    let def = spec.grid()?;
    // Duplicates (the same cell reached from two strips of one zone) are rare, so the raw
    // count is capped a little above the limit and checked again after deduplication.
    let mut sink = CellSink {
        cells: Vec::new(),
        limit,
        cap: limit.saturating_mul(2).saturating_add(16),
    };
    match square_layout(def.id) {
        Some(layout) => {
            let mut covered = false;
            for (utm, bx) in utm_parts(def.max_abs_lat, aoi.bbox()) {
                covered |= utm_part_cells(def, &layout, aoi, utm, &bx, &mut sink)?;
            }
            if !covered {
                return Err(GridError::OutsideCoverage {
                    grid: def.id,
                    max_abs_lat: def.max_abs_lat,
                });
            }
        }
        None => degree_cells(def, aoi, &mut sink)?,
    }
    let mut cells = sink.cells;
    cells.sort_unstable_by_key(|c| c.id);
    cells.dedup_by_key(|c| c.id);
    if cells.len() > limit {
        return Err(GridError::TooManyTiles { limit });
    }
    Ok((def, cells))
}

/// Closed counter-clockwise lon/lat ring of a UTM rectangle, `per_edge` pieces per side.
fn utm_ring(utm: UtmZone, rect: [f64; 4], per_edge: u32) -> Vec<[f64; 2]> {
    let [x0, y0, x1, y1] = rect;
    let corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
    let mut ring = Vec::with_capacity(4 * per_edge as usize + 1);
    for k in 0..4 {
        let (a, b) = (corners[k], corners[(k + 1) % 4]);
        for s in 0..per_edge {
            let t = f64::from(s) / f64::from(per_edge);
            let (lon, lat) = utm.inverse(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
            ring.push([lon, lat]);
        }
    }
    ring.push(ring[0]);
    let shift = if ring.iter().all(|p| p[0] > 180.0) {
        -360.0
    } else if ring.iter().all(|p| p[0] < -180.0) {
        360.0
    } else {
        0.0
    };
    if shift != 0.0 {
        ring.iter_mut().for_each(|p| p[0] += shift);
    }
    ring
}

fn degree_name(lon: i32, lat: i32) -> String {
    let ns = if lat < 0 { 'S' } else { 'N' };
    let ew = if lon < 0 { 'W' } else { 'E' };
    format!("{ns}{:02}{ew}{:03}", lat.unsigned_abs(), lon.unsigned_abs())
}

fn build_tile(def: &GridDef, cell: &Cell, band_cache: &mut Option<(MgrsSquare, char)>) -> Tile {
    let [x_min, y_min, x_max, y_max] = cell.rect;
    let (name, epsg, wgs84) = match cell.kind {
        CellKind::Utm { square, i, j } => {
            let band = match band_cache {
                Some((cached, band)) if *cached == square => *band,
                _ => {
                    let band = square.band();
                    *band_cache = Some((square, band));
                    band
                }
            };
            let per_edge = ((def.tile_width / 10_000.0).ceil() as u32).max(2);
            (
                format!("{}_{i}_{j}", square.name_with_band(band)),
                square.utm.epsg(),
                utm_ring(square.utm, cell.rect, per_edge),
            )
        }
        CellKind::Degree { lon, lat } => (
            degree_name(lon, lat),
            4326,
            vec![
                [x_min, y_min],
                [x_max, y_min],
                [x_max, y_max],
                [x_min, y_max],
                [x_min, y_min],
            ],
        ),
    };
    Tile {
        id: cell.id,
        name,
        epsg,
        x_min,
        y_min,
        x_max,
        y_max,
        wgs84,
    }
}

/// All tiles of `spec`'s grid that overlap the AOI, sorted by id.
pub fn tiles(aoi: &Aoi, spec: &TilingSpec) -> Result<Vec<Tile>, GridError> {
    tiles_with_limit(aoi, spec, usize::MAX / 4)
}

/// Like [`tiles`], failing with [`GridError::TooManyTiles`] beyond `limit` tiles before
/// building names and footprints (protects memory on continent-sized AOIs).
pub fn tiles_with_limit(
    aoi: &Aoi,
    spec: &TilingSpec,
    limit: usize,
) -> Result<Vec<Tile>, GridError> {
    let (def, cells) = collect_cells(aoi, spec, limit)?;
    let mut band_cache = None;
    Ok(cells
        .iter()
        .map(|c| build_tile(def, c, &mut band_cache))
        .collect())
}

/// Number of tiles [`tiles`] would return, without building names or footprints.
pub fn estimate_tile_count(aoi: &Aoi, spec: &TilingSpec) -> Result<u64, GridError> {
    let (_, cells) = collect_cells(aoi, spec, usize::MAX / 4)?;
    Ok(cells.len() as u64)
}

#[cfg(test)]
#[path = "tiling_tests.rs"]
mod tests;
