//! Property tests over many pseudo-random AOIs (deterministic generator, no proptest).

use super::tests::tile_contains;
use super::*;
use crate::grid::aoi::Polygon;
use std::collections::HashSet;

/// SplitMix64: tiny, deterministic, good enough to scatter test AOIs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A star-shaped simple polygon around a centre; every 3rd one sits on a zone
/// seam, some on the equator or the antimeridian.
fn random_aoi(rng: &mut Rng, k: usize, max_radius: f64) -> (Polygon, Aoi) {
    let lat = match k % 5 {
        0 => rng.range(-0.3, 0.3),
        _ => rng.range(-79.0, 79.0),
    };
    let lon = match k % 3 {
        0 => -180.0 + 6.0 * (rng.range(0.0, 60.0)).floor() + rng.range(-0.2, 0.2),
        _ => rng.range(-180.0, 180.0),
    };
    // Jittered, evenly spread angles: every angular gap is below π, so the ring is simple.
    let corners = 4 + (rng.next_u64() % 6) as usize;
    let step = std::f64::consts::TAU / corners as f64;
    let angles: Vec<f64> = (0..corners)
        .map(|c| (c as f64 + rng.range(0.0, 0.5)) * step)
        .collect();
    let mut ring: Vec<[f64; 2]> = angles
        .iter()
        .map(|a| {
            let r = rng.range(0.2, 1.0) * max_radius;
            [lon + r * a.cos(), (lat + r * a.sin()).clamp(-80.0, 80.0)]
        })
        .collect();
    ring.push(ring[0]);
    let polygon = Polygon {
        exterior: ring,
        holes: vec![],
    };
    let aoi = Aoi::new(vec![polygon.clone()]).unwrap();
    (polygon, aoi)
}

fn inside(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut c = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                c = !c;
            }
        }
    }
    c
}

/// Rectangle in the zone's plane (true northing), so 326zz and 327zz tiles compare.
fn plane_rect(t: &Tile) -> (u8, [f64; 4]) {
    let utm = UtmZone::from_epsg(t.epsg).unwrap();
    let shift = if utm.south { 10_000_000.0 } else { 0.0 };
    (
        utm.zone,
        [t.x_min, t.y_min - shift, t.x_max, t.y_max - shift],
    )
}

fn is_extra(name: &str, grid_id: i64) -> bool {
    let n = match grid_id {
        0 => "5",
        1 => "10",
        _ => "1",
    };
    let mut parts = name.split('_').skip(1);
    parts.any(|p| p == n)
}

fn check_grid(grid_id: i64, seed: u64, count: usize, max_radius: f64) {
    let def = grid(grid_id).unwrap();
    let mut rng = Rng(seed);
    for k in 0..count {
        let (polygon, aoi) = random_aoi(&mut rng, k, max_radius);
        let spec = TilingSpec::new(grid_id, def.resolutions[0]);
        let tiles = tiles(&aoi, &spec).unwrap();
        assert!(!tiles.is_empty(), "aoi {k}");
        // Names and ids unique.
        let names: HashSet<&str> = tiles.iter().map(|t| t.name.as_str()).collect();
        let ids: HashSet<i64> = tiles.iter().map(|t| t.id).collect();
        assert_eq!(
            (names.len(), ids.len()),
            (tiles.len(), tiles.len()),
            "aoi {k}"
        );
        // Whole pixels at every allowed resolution, and the grid's tile size.
        for t in &tiles {
            let (w, h) = (t.x_max - t.x_min, t.y_max - t.y_min);
            assert!((w - def.tile_width).abs() < 1e-9 && (h - def.tile_height).abs() < 1e-9);
            for r in def.resolutions {
                for px in [w / r, h / r] {
                    assert!((px - px.round()).abs() < 1e-6, "{} at {r}", t.name);
                }
            }
        }
        // Every point of the AOI lies in some tile.
        let [w, s, e, n] = aoi.bbox();
        let mut hits = 0;
        while hits < 40 {
            let p = [rng.range(w, e), rng.range(s, n)];
            if !inside(&polygon.exterior, p) {
                continue;
            }
            hits += 1;
            if def.is_utm() && p[1].abs() > def.max_abs_lat {
                continue;
            }
            let lon = (p[0] + 180.0).rem_euclid(360.0) - 180.0;
            assert!(
                tiles
                    .iter()
                    .any(|t| tile_contains(t, p[0], p[1]) || tile_contains(t, lon, p[1])),
                "grid {grid_id} aoi {k}: {p:?} not covered"
            );
        }
        if !def.is_utm() {
            continue;
        }
        // Within one zone: no duplicates, no tile inside another; base cells overlap only
        // in the thin seams the anchoring creates (grid 1: none, grid 0: < 300 m, grid 2:
        // < 200 m); extra cells (i or j = last) may overlap more, by design.
        let seam = match grid_id {
            0 => 300.0,
            1 => 0.0,
            _ => 200.0,
        };
        for (a_i, a) in tiles.iter().enumerate() {
            for b in &tiles[a_i + 1..] {
                let ((za, ra), (zb, rb)) = (plane_rect(a), plane_rect(b));
                if za != zb {
                    continue;
                }
                let ow = ra[2].min(rb[2]) - ra[0].max(rb[0]);
                let oh = ra[3].min(rb[3]) - ra[1].max(rb[1]);
                if ow <= 0.0 || oh <= 0.0 {
                    continue;
                }
                let contained = |p: [f64; 4], q: [f64; 4]| {
                    p[0] >= q[0] && p[1] >= q[1] && p[2] <= q[2] && p[3] <= q[3]
                };
                assert!(
                    !contained(ra, rb) && !contained(rb, ra),
                    "{} / {}",
                    a.name,
                    b.name
                );
                if !is_extra(&a.name, grid_id) && !is_extra(&b.name, grid_id) {
                    assert!(
                        ow.min(oh) <= seam,
                        "{} / {} overlap {ow} x {oh}",
                        a.name,
                        b.name
                    );
                }
            }
        }
    }
}

#[test]
fn grid1_properties_on_random_aois() {
    check_grid(1, 1, 60, 0.15);
}

#[test]
fn grid0_properties_on_random_aois() {
    check_grid(0, 2, 60, 0.3);
}

#[test]
fn grid2_properties_on_random_aois() {
    check_grid(2, 3, 60, 1.5);
}

#[test]
fn grid3_properties_on_random_aois() {
    check_grid(3, 4, 60, 1.5);
}

/// Inside the S2 tile set (neighbours present up to two squares east and south) a square keeps exactly its base
/// cells: 10 x 10, 5 x 5, 1 x 1. Checked on random S2 squares of the whole list.
#[test]
fn interior_squares_keep_exactly_their_base_cells() {
    let squares: Vec<MgrsSquare> = s2::all_squares().collect();
    let mut rng = Rng(5);
    let mut checked = 0;
    while checked < 150 {
        let sq = squares[(rng.next_u64() % squares.len() as u64) as usize];
        let (col, row) = (sq.easting / 100_000, sq.northing / 100_000);
        // Grid 2's extra cells reach two squares east and south.
        let interior = row >= 2
            && (col - 1..=col + 2)
                .all(|c| (row - 2..=row + 1).all(|r| s2::square_exists(sq.utm, c, r)));
        if !interior {
            continue;
        }
        checked += 1;
        for (grid_id, per_side) in [(0, 5u32), (1, 10), (2, 1)] {
            let layout = square_layout(grid_id).unwrap();
            let kept: Vec<(u32, u32)> = (0..=per_side)
                .flat_map(|i| (0..=per_side).map(move |j| (i, j)))
                .filter(|(i, j)| layout.keeps(&sq, *i, *j))
                .collect();
            assert_eq!(
                kept.len() as u32,
                per_side * per_side,
                "grid {grid_id} {sq:?}"
            );
            assert!(kept.iter().all(|(i, j)| *i < per_side && *j < per_side));
        }
    }
}

/// At the east edge of a zone's S2 tiles the extra column survives (grid 1 `_10_j`).
#[test]
fn east_edge_squares_keep_their_extra_column() {
    // 31UDS (E 400 km) is interior; find the zone-31 band-U row's easternmost square.
    let utm = UtmZone::new(31, false).unwrap();
    let row = 56; // N = 5600 km, the 31U?S row.
    let east = (1..=8)
        .rev()
        .find(|c| s2::square_exists(utm, *c, row))
        .unwrap();
    let sq = MgrsSquare {
        utm,
        easting: east * 100_000,
        northing: row * 100_000,
    };
    let layout = square_layout(1).unwrap();
    assert!(!s2::square_exists(utm, east + 1, row));
    assert!(layout.keeps(&sq, 10, 3));
    // The extra row at the bottom duplicates the square below's j = 0 row: dropped.
    assert!(s2::square_exists(utm, east, row - 1));
    assert!(!layout.keeps(&sq, 3, 10));
}

/// Grid 1: where the square east of A is missing but the one north-east (B) exists,
/// A's column extra `_10_0` and B's row extra `_0_10` are the same 10 km cell; exactly one
/// (the column extra) survives.
#[test]
fn identical_extras_keep_exactly_one() {
    let layout = square_layout(1).unwrap();
    let found = s2::all_squares().find_map(|a| {
        let (col, row) = (a.easting / 100_000, a.northing / 100_000);
        let ne = MgrsSquare {
            northing: (row + 1) * 100_000,
            easting: (col + 1) * 100_000,
            ..a
        };
        (!s2::square_exists(a.utm, col + 1, row) && s2::square_exists(a.utm, col + 1, row + 1))
            .then_some((a, ne))
    });
    let (a, b) = found.expect("the S2 list has such a pair");
    assert_eq!(layout.cell_rect(&a, 10, 0), layout.cell_rect(&b, 0, 10));
    assert!(layout.keeps(&a, 10, 0), "{a:?}");
    assert!(!layout.keeps(&b, 0, 10), "{b:?}");
}
