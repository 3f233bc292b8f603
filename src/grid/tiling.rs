//! AOI -> batch tiles of a tiling grid.
//!
//! UTM grids (0, 1, 2): tiles come only from the 56,686 squares of ESA's Sentinel-2 tile
//! list ([`s2`], tiling-grids.md §2.2), each in its own UTM zone (EPSG:326zz / 327zz).
//! The squares are grouped per (zone, hemisphere, latitude band); for every group whose
//! lon/lat box (covering all cells its squares can produce) meets the AOI, AOI ∩ box is
//! projected into the zone with edges densified to 1 mm, and every cell that overlaps it
//! with positive area is kept (touching along an edge, or overlapping by less than
//! [`UTM_EPSILON_M`], does not count). AOI parts beyond |lat| = [`GridDef::max_abs_lat`]
//! are ignored. Cells per square (names `<square>_<i>_<j>`, i east, j south):
//! * Grid 1: 10 000 m cells on the exact square corner (matches real tiles).
//! * Grid 2: 100 080 m cells from the S2 tile's upper-left corner (matches a real tile).
//! * Grid 0: 20 040 m cells from the S2 upper-left corner (the "preferred hypothesis" of
//!   tiling-grids.md §1.3, unconfirmed).
//!
//! Each square gets ⌈109 800 / size⌉ columns and rows and the redundant ones are removed
//! (the rule is documented on `SquareLayout`), so interior squares keep 10 × 10, 5 × 5
//! and 1 × 1 cells.
//! Squares of neighbouring zones overlap (S2 tiles reach past the zone edges), so an AOI
//! near a seam gets tiles of both zones, as Sentinel Hub delivers them.
//!
//! Grid 3: 1° cells in EPSG:4326 named by their south-west corner (`N13E025` = lon 25..26,
//! lat 13..14); x is longitude, y latitude; longitudes are normalised to [-180, 180).

use super::aoi::{Aoi, Point};
use super::mgrs::MgrsSquare;
use super::region::{clip_to_box, project_segments, LonLatBox, RegionIndex};
use super::s2::{self, SquareGroup};
use super::tm::{UtmZone, UTM_SOUTH_FALSE_NORTHING};
use super::{grid, GridDef, GridError};
use serde::{Deserialize, Serialize};

/// A cell must overlap the AOI by more than this (metres) on each axis to be kept; absorbs
/// the ~mm reprojection error of AOIs drawn exactly on cell lines in a UTM CRS.
pub const UTM_EPSILON_M: f64 = 0.01;
const DEGREE_EPSILON: f64 = 1e-9;

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
    Utm {
        square: MgrsSquare,
        band: char,
        i: u32,
        j: u32,
    },
    Degree {
        lon: i32,
        lat: i32,
    },
}

/// A tile before its name and footprint are built. Its rectangle is recomputed from the
/// kind rather than stored: a world-sized analysis holds millions of cells at once.
#[derive(Clone, Copy)]
struct Cell {
    id: i64,
    kind: CellKind,
}

impl Cell {
    /// The cell's extent in its CRS (UTM metres, or degrees).
    fn rect(&self, def: &GridDef) -> [f64; 4] {
        match self.kind {
            CellKind::Utm { square, i, j, .. } => square_layout(def.id)
                .map(|layout| layout.cell_rect(&square, i, j))
                .unwrap_or([0.0; 4]),
            CellKind::Degree { lon, lat } => [
                f64::from(lon),
                f64::from(lat),
                f64::from(lon + 1),
                f64::from(lat + 1),
            ],
        }
    }
}

/// Cell layout inside one MGRS square (tiling-grids.md §1.3).
struct SquareLayout {
    size: f64,
    /// Base cells per side (i, j < per_side); they tile the square's block.
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

/// Redundant-tile rule (tiling-grids.md §1.3, the algorithm is [I]): every S2 tile
/// (109.8 km) gets ⌈109 800 / size⌉ = `per_side + 1` columns and rows of cells. The base
/// cells (i, j < per_side) always stay. An *extra* cell (i or j = per_side) is dropped when
/// the zone's other cells already cover it:
/// * one extra index: covered by the base blocks of the zone's S2 squares, or an exact
///   duplicate of another square's extra column cell (grid 1 produces `A_10_0` ==
///   `B_0_10` where the square east of A is missing; the column cell wins);
/// * both extra: covered by base blocks plus the surviving single-extra cells.
///
/// Inside the S2 tile set this leaves 10 × 10 / 5 × 5 / 1 × 1 cells per square; at the east
/// edge of a zone's tile set and at the coverage limits the extra cells survive (names like
/// `_10_3`). Coverage is decided in one plane per zone: 326zz and 327zz share it (true
/// northing), so equatorial squares cover each other across the hemispheres.
impl SquareLayout {
    fn extra(&self) -> u32 {
        self.per_side
    }

    /// Upper-left corner of the square's cells, in the square's own CRS.
    fn anchor(&self, square: &MgrsSquare) -> (f64, f64) {
        if self.s2_anchor {
            square.s2_upper_left()
        } else {
            (f64::from(square.easting), square.north_edge())
        }
    }

    fn cell_rect(&self, square: &MgrsSquare, i: u32, j: u32) -> [f64; 4] {
        let (left, top) = self.anchor(square);
        let x_min = left + self.size * f64::from(i);
        let y_max = top - self.size * f64::from(j);
        [x_min, y_max - self.size, x_min + self.size, y_max]
    }

    /// UTM extent of every cell a square can produce (base and extra).
    fn block(&self, square: &MgrsSquare) -> [f64; 4] {
        let (left, top) = self.anchor(square);
        let span = self.size * f64::from(self.per_side + 1);
        [left, top - span, left + span, top]
    }

    fn base_block_true(&self, square: &MgrsSquare) -> [f64; 4] {
        let (left, top) = self.anchor(square);
        let span = self.size * f64::from(self.per_side);
        let top = top - false_northing(square);
        [left, top - span, left + span, top]
    }

    /// Existing S2 squares of the same zone (either hemisphere) within `reach` squares.
    fn neighbours(&self, square: &MgrsSquare, reach: i64) -> Vec<MgrsSquare> {
        let col = i64::from(square.easting / 100_000);
        let true_row =
            i64::from(square.northing / 100_000) - if square.utm.south { 100 } else { 0 };
        let mut out = Vec::new();
        for r in true_row - reach..=true_row + reach {
            let (south, row) = if r < 0 { (true, r + 100) } else { (false, r) };
            let utm = UtmZone {
                zone: square.utm.zone,
                south,
            };
            for c in col - reach..=col + reach {
                let (Ok(c), Ok(row)) = (u32::try_from(c), u32::try_from(row)) else {
                    continue;
                };
                if s2::square_exists(utm, c, row) {
                    out.push(MgrsSquare {
                        utm,
                        easting: c * 100_000,
                        northing: row * 100_000,
                    });
                }
            }
        }
        out
    }

    fn keeps(&self, square: &MgrsSquare, i: u32, j: u32) -> bool {
        let n = self.extra();
        let extras = u32::from(i == n) + u32::from(j == n);
        if extras == 0 {
            return true;
        }
        let to_true = |r: [f64; 4], s: &MgrsSquare| {
            let fn_ = false_northing(s);
            [r[0], r[1] - fn_, r[2], r[3] - fn_]
        };
        let rect = to_true(self.cell_rect(square, i, j), square);
        // Blocks are at most 2 squares wide (grid 2: 2 x 100 080 m).
        let near = self.neighbours(square, 2);
        let mut cover: Vec<[f64; 4]> = near.iter().map(|s| self.base_block_true(s)).collect();
        if extras == 1 {
            if covered(rect, &cover) {
                return false;
            }
            if j == n {
                // Row extra: yields to an identical surviving single-extra column cell of
                // another square (both are judged against base blocks only, so exactly
                // one of the pair survives).
                let duplicate = near.iter().filter(|s| *s != square).any(|s| {
                    (0..n).any(|jj| {
                        let other = to_true(self.cell_rect(s, n, jj), s);
                        same_rect(other, rect) && !covered(other, &cover)
                    })
                });
                return !duplicate;
            }
            return true;
        }
        for s in &near {
            for k in 0..n {
                for (ii, jj) in [(n, k), (k, n)] {
                    let r = to_true(self.cell_rect(s, ii, jj), s);
                    if overlaps(r, rect) && self.keeps(s, ii, jj) {
                        cover.push(r);
                    }
                }
            }
        }
        !covered(rect, &cover)
    }
}

fn false_northing(square: &MgrsSquare) -> f64 {
    if square.utm.south {
        UTM_SOUTH_FALSE_NORTHING
    } else {
        0.0
    }
}

/// Equal up to 1 cm (anchors are exact integers in metres).
fn same_rect(a: [f64; 4], b: [f64; 4]) -> bool {
    a.iter().zip(b).all(|(p, q)| (p - q).abs() < 0.01)
}

fn overlaps(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// True if the union of `rects` covers `target` (to 1 cm): coordinate compression over the
/// rectangle edges inside the target, then every elementary cell's centre must be covered.
fn covered(target: [f64; 4], rects: &[[f64; 4]]) -> bool {
    let eps = 0.01;
    let t = [
        target[0] + eps,
        target[1] + eps,
        target[2] - eps,
        target[3] - eps,
    ];
    let rects: Vec<[f64; 4]> = rects.iter().copied().filter(|r| overlaps(*r, t)).collect();
    let mut xs = vec![t[0], t[2]];
    let mut ys = vec![t[1], t[3]];
    for r in &rects {
        xs.extend([r[0], r[2]].into_iter().filter(|x| *x > t[0] && *x < t[2]));
        ys.extend([r[1], r[3]].into_iter().filter(|y| *y > t[1] && *y < t[3]));
    }
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    xs.windows(2).all(|wx| {
        ys.windows(2).all(|wy| {
            let (cx, cy) = ((wx[0] + wx[1]) / 2.0, (wy[0] + wy[1]) / 2.0);
            rects
                .iter()
                .any(|r| r[0] <= cx && cx <= r[2] && r[1] <= cy && cy <= r[3])
        })
    })
}

/// Pushes cells, failing once more than `limit` are collected.
struct CellSink {
    cells: Vec<Cell>,
    /// When counting only, just the ids are kept (8 bytes a cell instead of ~70).
    ids: Option<Vec<i64>>,
    /// The caller's limit, reported in the error.
    limit: usize,
    /// Raw cap before deduplication.
    cap: usize,
}

impl CellSink {
    fn new(limit: usize, count_only: bool) -> CellSink {
        CellSink {
            cells: Vec::new(),
            ids: count_only.then(Vec::new),
            limit,
            cap: limit.saturating_mul(2).saturating_add(16),
        }
    }

    fn push(&mut self, cell: Cell) -> Result<(), GridError> {
        let len = self.ids.as_ref().map_or(self.cells.len(), Vec::len);
        if len >= self.cap {
            return Err(GridError::TooManyTiles { limit: self.limit });
        }
        match &mut self.ids {
            Some(ids) => ids.push(cell.id),
            None => self.cells.push(cell),
        }
        Ok(())
    }
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

/// Cells of the S2 squares of one (zone, band) group that overlap AOI ∩ `bx`; false if
/// that intersection is empty.
fn group_cells(
    def: &GridDef,
    layout: &SquareLayout,
    aoi: &Aoi,
    group: &SquareGroup,
    bx: &LonLatBox,
    sink: &mut CellSink,
) -> Result<bool, GridError> {
    let lonlat = clip_to_box(aoi.polygons(), bx);
    if lonlat.is_empty() {
        return Ok(false);
    }
    let utm = group.utm;
    let project = |p: Point| -> Point { utm.forward(p[0], p[1]).into() };
    let index = RegionIndex::new(
        project_segments(&lonlat, &project, layout.size),
        layout.size,
    );
    let b = index.bbox();
    for square in &group.squares {
        if !overlaps(layout.block(square), b) {
            continue;
        }
        for i in 0..=layout.extra() {
            for j in 0..=layout.extra() {
                let rect = layout.cell_rect(square, i, j);
                if !overlaps(rect, b) || !index.intersects_rect(rect, UTM_EPSILON_M) {
                    continue;
                }
                if layout.keeps(square, i, j) {
                    sink.push(Cell {
                        id: utm_tile_id(def.id, square, i, j),
                        kind: CellKind::Utm {
                            square: *square,
                            band: group.band,
                            i,
                            j,
                        },
                    })?;
                }
            }
        }
    }
    Ok(true)
}

fn utm_cells(
    def: &GridDef,
    layout: &SquareLayout,
    aoi: &Aoi,
    sink: &mut CellSink,
) -> Result<bool, GridError> {
    let block = |s: &MgrsSquare| layout.block(s);
    let groups = s2::groups(def.id, &block).unwrap_or(&[]);
    let mut covered = false;
    for group in groups {
        let bx = LonLatBox {
            south: group.bbox.south.max(-def.max_abs_lat),
            north: group.bbox.north.min(def.max_abs_lat),
            ..group.bbox
        };
        if bx.south >= bx.north {
            continue;
        }
        for shifted in shifted_boxes(bx, aoi.bbox()) {
            covered |= group_cells(def, layout, aoi, group, &shifted, sink)?;
        }
    }
    Ok(covered)
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
    let (def, sink) = fill_sink(aoi, spec, CellSink::new(limit, false))?;
    let mut cells = sink.cells;
    cells.sort_unstable_by_key(|c| c.id);
    cells.dedup_by_key(|c| c.id);
    if cells.len() > limit {
        return Err(GridError::TooManyTiles { limit });
    }
    Ok((def, cells))
}

/// The number of distinct cells, keeping only their ids.
fn count_cells(aoi: &Aoi, spec: &TilingSpec, limit: usize) -> Result<usize, GridError> {
    let (_, sink) = fill_sink(aoi, spec, CellSink::new(limit, true))?;
    let mut ids = sink.ids.unwrap_or_default();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > limit {
        return Err(GridError::TooManyTiles { limit });
    }
    Ok(ids.len())
}

fn fill_sink(
    aoi: &Aoi,
    spec: &TilingSpec,
    mut sink: CellSink,
) -> Result<(&'static GridDef, CellSink), GridError> {
    let def = spec.grid()?;
    // Duplicates (the same cell reached from two strips of one zone) are rare, so the raw
    // count is capped a little above the limit (`CellSink::cap`) and checked again after
    // deduplication.
    match square_layout(def.id) {
        Some(layout) => {
            if !utm_cells(def, &layout, aoi, &mut sink)? {
                return Err(GridError::OutsideCoverage {
                    grid: def.id,
                    max_abs_lat: def.max_abs_lat,
                });
            }
        }
        None => degree_cells(def, aoi, &mut sink)?,
    }
    Ok((def, sink))
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

fn build_tile(def: &GridDef, cell: &Cell) -> Tile {
    let rect = cell.rect(def);
    let [x_min, y_min, x_max, y_max] = rect;
    let (name, epsg, wgs84) = match cell.kind {
        CellKind::Utm { square, band, i, j } => {
            let per_edge = ((def.tile_width / 10_000.0).ceil() as u32).max(2);
            (
                format!("{}_{i}_{j}", square.name_with_band(band)),
                square.utm.epsg(),
                utm_ring(square.utm, rect, per_edge),
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
    Ok(cells.iter().map(|c| build_tile(def, c)).collect())
}

/// The tiles of [`tiles_with_limit`] built one at a time, in id order. Cells are small
/// (an id and a rectangle); names and densified footprints are what make a tile heavy, so
/// a caller that writes tiles out as it goes (`tessera grid tiles`, analysis in chunks)
/// holds one tile at a time instead of the whole list.
pub fn tiles_iter(
    aoi: &Aoi,
    spec: &TilingSpec,
    limit: usize,
) -> Result<impl ExactSizeIterator<Item = Tile>, GridError> {
    let (def, cells) = collect_cells(aoi, spec, limit)?;
    Ok(cells.into_iter().map(move |c| build_tile(def, &c)))
}

/// Number of tiles [`tiles`] would return, without building names or footprints.
pub fn estimate_tile_count(aoi: &Aoi, spec: &TilingSpec) -> Result<u64, GridError> {
    Ok(count_cells(aoi, spec, usize::MAX / 4)? as u64)
}

/// Like [`estimate_tile_count`], failing with [`GridError::TooManyTiles`] as soon as more
/// than `limit` cells are found: refusing a whole-world request costs no more than the limit.
pub fn count_tiles_with_limit(aoi: &Aoi, spec: &TilingSpec, limit: u64) -> Result<u64, GridError> {
    let limit = usize::try_from(limit)
        .unwrap_or(usize::MAX / 4)
        .min(usize::MAX / 4);
    Ok(count_cells(aoi, spec, limit)? as u64)
}

#[cfg(test)]
#[path = "tiling_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "tiling_props.rs"]
mod props;
