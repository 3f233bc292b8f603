//! The planar machinery behind tiling: AOI ∩ lon/lat box as a boundary "edge soup", its
//! projection with adaptive densification, and a bucket index answering "does this cell
//! rectangle overlap the region (with positive area)?".
//!
//! The region is kept as unordered boundary segments tagged with their polygon, never as
//! rebuilt rings: crossing-parity tests only need every boundary cycle to be present, which
//! makes clipping exact and simple (no Weiler-Atherton). Each polygon is tested by its own
//! even-odd parity, so holes cut out and separate MultiPolygon members form a union.

use super::aoi::{Point, Polygon};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub a: Point,
    pub b: Point,
    pub polygon: u32,
}

/// Closed lon/lat rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LonLatBox {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

/// y on segment ab at x; endpoints ordered first so both clipping paths agree bit for bit.
fn y_at_x(a: Point, b: Point, x: f64) -> f64 {
    let (p, q) = if a[0] <= b[0] { (a, b) } else { (b, a) };
    let y = p[1] + (x - p[0]) * (q[1] - p[1]) / (q[0] - p[0]);
    y.clamp(p[1].min(q[1]), p[1].max(q[1]))
}

fn x_at_y(a: Point, b: Point, y: f64) -> f64 {
    let (p, q) = if a[1] <= b[1] { (a, b) } else { (b, a) };
    let x = p[0] + (y - p[1]) * (q[0] - p[0]) / (q[1] - p[1]);
    x.clamp(p[0].min(q[0]), p[0].max(q[0]))
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    West,
    East,
    South,
    North,
}

impl LonLatBox {
    fn point_on(&self, side: Side, a: Point, b: Point) -> Point {
        match side {
            Side::West => [self.west, y_at_x(a, b, self.west)],
            Side::East => [self.east, y_at_x(a, b, self.east)],
            Side::South => [x_at_y(a, b, self.south), self.south],
            Side::North => [x_at_y(a, b, self.north), self.north],
        }
    }

    /// Liang-Barsky clip of ab to the closed box, entry/exit points placed exactly on the
    /// sides. Pieces lying along a side are dropped: the side intervals cover them.
    fn clip(&self, a: Point, b: Point) -> Option<(Point, Point)> {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let planes = [
            (-dx, a[0] - self.west, Side::West),
            (dx, self.east - a[0], Side::East),
            (-dy, a[1] - self.south, Side::South),
            (dy, self.north - a[1], Side::North),
        ];
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let (mut entry, mut exit) = (None, None);
        for (p, q, side) in planes {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
                continue;
            }
            let r = q / p;
            if p < 0.0 {
                if r > t1 {
                    return None;
                }
                if r > t0 {
                    t0 = r;
                    entry = Some(side);
                }
            } else {
                if r < t0 {
                    return None;
                }
                if r < t1 {
                    t1 = r;
                    exit = Some(side);
                }
            }
        }
        if t0 >= t1 {
            return None;
        }
        let pa = entry.map_or(a, |s| self.point_on(s, a, b));
        let pb = exit.map_or(b, |s| self.point_on(s, a, b));
        let along_side = (pa[0] == pb[0] && (pa[0] == self.west || pa[0] == self.east))
            || (pa[1] == pb[1] && (pa[1] == self.south || pa[1] == self.north));
        (!along_side && pa != pb).then_some((pa, pb))
    }

    /// Portions of one side lying inside `polygon` (just inside the box), by sorting the
    /// crossings of the polygon's rings with the side's line and pairing them.
    fn side_segments(&self, polygon: &Polygon, side: Side, id: u32, out: &mut Vec<Segment>) {
        let (vertical, line, lo, hi) = match side {
            Side::West => (true, self.west, self.south, self.north),
            Side::East => (true, self.east, self.south, self.north),
            Side::South => (false, self.south, self.west, self.east),
            Side::North => (false, self.north, self.west, self.east),
        };
        let axis = usize::from(!vertical);
        // Points on the line count as outside the box, i.e. the line is nudged inwards.
        let inward = matches!(side, Side::West | Side::South);
        let beyond = |p: &Point| {
            if inward {
                p[axis] > line
            } else {
                p[axis] < line
            }
        };
        let mut crossings: Vec<f64> = polygon
            .rings()
            .flat_map(|ring| ring.windows(2))
            .filter(|w| beyond(&w[0]) != beyond(&w[1]))
            .map(|w| {
                if vertical {
                    y_at_x(w[0], w[1], line)
                } else {
                    x_at_y(w[0], w[1], line)
                }
            })
            .collect();
        crossings.sort_by(f64::total_cmp);
        for pair in crossings.chunks_exact(2) {
            let (from, to) = (pair[0].max(lo), pair[1].min(hi));
            if from < to {
                let (a, b) = if vertical {
                    ([line, from], [line, to])
                } else {
                    ([from, line], [to, line])
                };
                out.push(Segment { a, b, polygon: id });
            }
        }
    }
}

/// Boundary of (AOI ∩ box) in lon/lat; empty when they do not overlap.
pub(crate) fn clip_to_box(polygons: &[Polygon], bx: &LonLatBox) -> Vec<Segment> {
    let mut out = Vec::new();
    for (id, polygon) in polygons.iter().enumerate() {
        let id = id as u32;
        let start = out.len();
        for ring in polygon.rings() {
            for w in ring.windows(2) {
                if let Some((a, b)) = bx.clip(w[0], w[1]) {
                    out.push(Segment { a, b, polygon: id });
                }
            }
        }
        for side in [Side::West, Side::East, Side::South, Side::North] {
            bx.side_segments(polygon, side, id, &mut out);
        }
        // Side pieces alone (no AOI edge inside) happen only when the box is inside the
        // polygon; a polygon merely touching the box contributes nothing.
        if out[start..].len() < 3 {
            out.truncate(start);
        }
    }
    out
}

/// Max distance between the projected curve of a lon/lat edge and its polyline (metres).
const PROJECTION_TOLERANCE: f64 = 1e-3;
const MAX_SPLIT_DEPTH: u32 = 24;

#[allow(clippy::too_many_arguments)]
fn subdivide(
    project: &dyn Fn(Point) -> Point,
    a: Point,
    pa: Point,
    b: Point,
    pb: Point,
    max_len: f64,
    depth: u32,
    polygon: u32,
    out: &mut Vec<Segment>,
) {
    let m = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let pm = project(m);
    let sag = (pm[0] - (pa[0] + pb[0]) / 2.0).hypot(pm[1] - (pa[1] + pb[1]) / 2.0);
    let long = (pb[0] - pa[0]).hypot(pb[1] - pa[1]) > max_len;
    if depth < MAX_SPLIT_DEPTH && (long || sag > PROJECTION_TOLERANCE || sag.is_nan()) {
        subdivide(project, a, pa, m, pm, max_len, depth + 1, polygon, out);
        subdivide(project, m, pm, b, pb, max_len, depth + 1, polygon, out);
    } else {
        out.push(Segment {
            a: pa,
            b: pb,
            polygon,
        });
    }
}

/// Projects lon/lat segments, splitting each until its projected curve is within 1 mm of
/// the polyline and no piece is longer than `max_len` (keeps index buckets small).
pub(crate) fn project_segments(
    segments: &[Segment],
    project: &dyn Fn(Point) -> Point,
    max_len: f64,
) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segments.len() * 2);
    for s in segments {
        let (pa, pb) = (project(s.a), project(s.b));
        subdivide(project, s.a, pa, s.b, pb, max_len, 0, s.polygon, &mut out);
    }
    out
}

/// Uniform bucket grid over projected boundary segments.
pub(crate) struct RegionIndex {
    segments: Vec<Segment>,
    bbox: [f64; 4],
    origin: Point,
    bucket: f64,
    cols: usize,
    rows: usize,
    buckets: Vec<Vec<u32>>,
}

impl RegionIndex {
    /// `segments` must be non-empty and no longer than about `bucket`.
    pub fn new(segments: Vec<Segment>, bucket: f64) -> RegionIndex {
        let mut bbox = [f64::INFINITY, f64::INFINITY, -f64::INFINITY, -f64::INFINITY];
        for s in &segments {
            for p in [s.a, s.b] {
                bbox = [
                    bbox[0].min(p[0]),
                    bbox[1].min(p[1]),
                    bbox[2].max(p[0]),
                    bbox[3].max(p[1]),
                ];
            }
        }
        let span = |lo: f64, hi: f64| (((hi - lo) / bucket).floor() as usize + 1).max(1);
        let (cols, rows) = (span(bbox[0], bbox[2]), span(bbox[1], bbox[3]));
        let mut index = RegionIndex {
            segments,
            bbox,
            origin: [bbox[0], bbox[1]],
            bucket,
            cols,
            rows,
            buckets: vec![Vec::new(); cols * rows],
        };
        for (k, s) in index.segments.iter().enumerate() {
            let (c0, c1) = (index.col(s.a[0].min(s.b[0])), index.col(s.a[0].max(s.b[0])));
            let (r0, r1) = (index.row(s.a[1].min(s.b[1])), index.row(s.a[1].max(s.b[1])));
            for r in r0..=r1 {
                for c in c0..=c1 {
                    index.buckets[r * cols + c].push(k as u32);
                }
            }
        }
        index
    }

    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }

    fn col(&self, x: f64) -> usize {
        (((x - self.origin[0]) / self.bucket).floor().max(0.0) as usize).min(self.cols - 1)
    }

    fn row(&self, y: f64) -> usize {
        (((y - self.origin[1]) / self.bucket).floor().max(0.0) as usize).min(self.rows - 1)
    }

    /// True if the rectangle shrunk by `eps` on every side meets the region: either a
    /// boundary segment enters it, or (no boundary inside) its centre is inside.
    pub fn intersects_rect(&self, rect: [f64; 4], eps: f64) -> bool {
        let r = [rect[0] + eps, rect[1] + eps, rect[2] - eps, rect[3] - eps];
        if r[0] > self.bbox[2] || r[2] < self.bbox[0] || r[1] > self.bbox[3] || r[3] < self.bbox[1]
        {
            return false;
        }
        for row in self.row(r[1])..=self.row(r[3]) {
            for col in self.col(r[0])..=self.col(r[2]) {
                let hit = self.buckets[row * self.cols + col]
                    .iter()
                    .any(|&k| segment_meets_rect(&self.segments[k as usize], r));
                if hit {
                    return true;
                }
            }
        }
        self.contains([(r[0] + r[2]) / 2.0, (r[1] + r[3]) / 2.0])
    }

    /// Point-in-region by a ray towards +x, counted per polygon (even-odd within one).
    pub fn contains(&self, p: Point) -> bool {
        if p[1] < self.bbox[1] || p[1] > self.bbox[3] || p[0] > self.bbox[2] {
            return false;
        }
        let row = self.row(p[1]);
        let mut crossed: Vec<u32> = Vec::new();
        for col in self.col(p[0])..self.cols {
            for &k in &self.buckets[row * self.cols + col] {
                let s = &self.segments[k as usize];
                if (s.a[1] > p[1]) == (s.b[1] > p[1]) {
                    continue;
                }
                let x = x_at_y(s.a, s.b, p[1]);
                // A segment sits in several buckets: count it in the one holding the crossing.
                if x > p[0] && self.col(x) == col {
                    crossed.push(s.polygon);
                }
            }
        }
        crossed.sort_unstable();
        crossed
            .chunk_by(|a, b| a == b)
            .any(|run| run.len() % 2 == 1)
    }
}

/// Liang-Barsky: does segment s meet the closed rectangle r?
fn segment_meets_rect(s: &Segment, r: [f64; 4]) -> bool {
    let (dx, dy) = (s.b[0] - s.a[0], s.b[1] - s.a[1]);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, s.a[0] - r[0]),
        (dx, r[2] - s.a[0]),
        (-dy, s.a[1] - r[1]),
        (dy, r[3] - s.a[1]),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(w: f64, s: f64, e: f64, n: f64) -> Vec<Point> {
        vec![[w, s], [e, s], [e, n], [w, n], [w, s]]
    }

    fn index_of(polygons: &[Polygon], bx: LonLatBox) -> Option<RegionIndex> {
        let segs = clip_to_box(polygons, &bx);
        (!segs.is_empty()).then(|| RegionIndex::new(project_segments(&segs, &|p| p, 1.0), 1.0))
    }

    const WORLD: LonLatBox = LonLatBox {
        west: -1000.0,
        south: -1000.0,
        east: 1000.0,
        north: 1000.0,
    };

    #[test]
    fn hole_is_excluded_and_ring_included() {
        let p = Polygon {
            exterior: square(0.0, 0.0, 3.0, 3.0),
            holes: vec![square(1.0, 1.0, 2.0, 2.0)],
        };
        let idx = index_of(&[p], WORLD).unwrap();
        assert!(idx.contains([0.5, 0.5]));
        assert!(!idx.contains([1.5, 1.5]));
        assert!(!idx.contains([3.5, 0.5]));
        assert!(!idx.intersects_rect([1.0, 1.0, 2.0, 2.0], 1e-9));
        assert!(idx.intersects_rect([0.0, 0.0, 1.0, 1.0], 1e-9));
        // Touching only along an edge does not count.
        assert!(!idx.intersects_rect([3.0, 0.0, 4.0, 1.0], 1e-9));
    }

    #[test]
    fn overlapping_multipolygon_members_form_a_union() {
        let a = Polygon {
            exterior: square(0.0, 0.0, 2.0, 2.0),
            holes: vec![],
        };
        let b = Polygon {
            exterior: square(1.0, 1.0, 3.0, 3.0),
            holes: vec![],
        };
        let idx = index_of(&[a, b], WORLD).unwrap();
        assert!(
            idx.contains([1.5, 1.5]),
            "even-odd over both would cancel here"
        );
        assert!(idx.contains([2.5, 2.5]));
    }

    #[test]
    fn clipping_keeps_region_inside_box_only() {
        // A U-shape leaving and re-entering the box's west side at x = 1.
        let u = Polygon {
            exterior: vec![
                [0.0, 0.0],
                [3.0, 0.0],
                [3.0, 3.0],
                [0.0, 3.0],
                [0.0, 2.0],
                [2.0, 2.0],
                [2.0, 1.0],
                [0.0, 1.0],
                [0.0, 0.0],
            ],
            holes: vec![],
        };
        let bx = LonLatBox {
            west: 1.0,
            south: -5.0,
            east: 5.0,
            north: 5.0,
        };
        let idx = index_of(&[u], bx).unwrap();
        assert!(idx.contains([1.5, 0.5]));
        assert!(idx.contains([2.5, 1.5]));
        assert!(!idx.contains([1.5, 1.5]), "the notch stays outside");
        assert!(!idx.contains([0.5, 0.5]), "left of the box is cut away");
        // A cell straddling the box side in the notch is not hit (no sliver edge there).
        assert!(!idx.intersects_rect([0.5, 1.1, 1.5, 1.9], 1e-9));
        assert!(idx.intersects_rect([0.5, 0.1, 1.5, 0.9], 1e-9));
    }

    #[test]
    fn edges_on_the_box_side_are_not_doubled() {
        let p = Polygon {
            exterior: square(0.0, 50.0, 6.0, 51.0),
            holes: vec![],
        };
        let bx = LonLatBox {
            west: 0.0,
            south: 0.0,
            east: 6.0,
            north: 56.0,
        };
        let idx = index_of(std::slice::from_ref(&p), bx).unwrap();
        assert!(idx.contains([3.0, 50.5]));
        assert!(idx.contains([0.001, 50.5]));
        // Neighbouring box only touches the polygon along x = 0.
        let west = LonLatBox {
            west: -6.0,
            south: 0.0,
            east: 0.0,
            north: 56.0,
        };
        assert!(index_of(&[p], west).is_none());
    }

    #[test]
    fn box_inside_polygon_yields_its_sides() {
        let p = Polygon {
            exterior: square(-10.0, -10.0, 10.0, 10.0),
            holes: vec![],
        };
        let bx = LonLatBox {
            west: 0.0,
            south: 0.0,
            east: 1.0,
            north: 1.0,
        };
        let segs = clip_to_box(&[p], &bx);
        assert_eq!(segs.len(), 4);
        let idx = RegionIndex::new(segs, 1.0);
        assert!(idx.contains([0.5, 0.5]));
        assert!(!idx.intersects_rect([1.0, 0.0, 2.0, 1.0], 1e-9));
    }

    #[test]
    fn long_segments_are_split_for_the_index() {
        let segs = vec![Segment {
            a: [0.0, 0.0],
            b: [10.0, 0.0],
            polygon: 0,
        }];
        assert_eq!(project_segments(&segs, &|p| p, 1.0).len(), 16);
        // A curved projection is split until the sag is below 1 mm.
        let curved = project_segments(
            &segs,
            &|p: Point| [p[0] * 1000.0, (p[0] * 0.3).sin() * 1000.0],
            1e9,
        );
        assert!(curved.len() > 100);
    }
}
