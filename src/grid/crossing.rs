//! Self-intersection of a polygon's rings, found with a packed R-tree over the edges.
//!
//! Why not the plain "sort by west end, scan right" sweep: it compares every pair of
//! edges whose x-ranges overlap, which for long edges (a zigzag or comb of 100 000
//! vertices spanning the AOI) is every pair: 29 s at 100 000 vertices. Here each edge
//! queries a static R-tree (Hilbert-sorted, fan-out 16, as in flatbush) for the edges whose
//! bounding boxes meet its own, so the cost is O(n log n + k) where k is the number of
//! bounding-box overlaps; the exact crossing test runs only on those. (A pathological
//! input, such as thousands of long edges fanning out of one point, has a large k; the
//! create limit `max_aoi_vertices` bounds n for those.)
//!
//! Pure, no I/O; runs once at create: a stored request is never re-checked.

use super::aoi::Point;

const FANOUT: usize = 16;

type Rect = [f64; 4];

fn rect_of(a: Point, b: Point) -> Rect {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[0].max(b[0]),
        a[1].max(b[1]),
    ]
}

fn union(r: &mut Rect, o: &Rect) {
    r[0] = r[0].min(o[0]);
    r[1] = r[1].min(o[1]);
    r[2] = r[2].max(o[2]);
    r[3] = r[3].max(o[3]);
}

fn meets(r: &Rect, o: &Rect) -> bool {
    r[0] <= o[2] && o[0] <= r[2] && r[1] <= o[3] && o[1] <= r[3]
}

/// Position of (x, y) (each in 0..2^16) along a Hilbert curve.
fn hilbert(mut x: u32, mut y: u32) -> u64 {
    let n: u32 = 1 << 16;
    let mut d: u64 = 0;
    let mut s = n / 2;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += u64::from(s) * u64::from(s) * u64::from((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = s.wrapping_sub(1).wrapping_sub(x) & (n - 1);
                y = s.wrapping_sub(1).wrapping_sub(y) & (n - 1);
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

/// A static R-tree: `levels[0]` are the edge boxes in Hilbert order, `levels[k][i]` covers
/// `levels[k-1][i*FANOUT..(i+1)*FANOUT]`.
struct Tree {
    edges: Vec<(Point, Point)>,
    levels: Vec<Vec<Rect>>,
}

impl Tree {
    fn new(mut edges: Vec<(Point, Point)>) -> Tree {
        let mut total = [f64::INFINITY, f64::INFINITY, -f64::INFINITY, -f64::INFINITY];
        for e in &edges {
            union(&mut total, &rect_of(e.0, e.1));
        }
        let scale = |v: f64, lo: f64, hi: f64| -> u32 {
            if hi > lo {
                (((v - lo) / (hi - lo)) * 65535.0).clamp(0.0, 65535.0) as u32
            } else {
                0
            }
        };
        edges.sort_by_cached_key(|e| {
            let r = rect_of(e.0, e.1);
            hilbert(
                scale((r[0] + r[2]) / 2.0, total[0], total[2]),
                scale((r[1] + r[3]) / 2.0, total[1], total[3]),
            )
        });
        let mut levels = vec![edges.iter().map(|e| rect_of(e.0, e.1)).collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above = below
                .chunks(FANOUT)
                .map(|c| {
                    let mut r = c[0];
                    c.iter().for_each(|o| union(&mut r, o));
                    r
                })
                .collect();
            levels.push(above);
        }
        Tree { edges, levels }
    }

    /// Calls `visit(j)` for every edge whose box meets `q`; stops when `visit` says so.
    fn query(
        &self,
        q: &Rect,
        stack: &mut Vec<(usize, usize)>,
        mut visit: impl FnMut(usize) -> bool,
    ) {
        stack.clear();
        let top = self.levels.len() - 1;
        for i in 0..self.levels[top].len() {
            stack.push((top, i));
        }
        while let Some((level, i)) = stack.pop() {
            if !meets(&self.levels[level][i], q) {
                continue;
            }
            if level == 0 {
                if visit(i) {
                    return;
                }
                continue;
            }
            let below = self.levels[level - 1].len();
            for child in i * FANOUT..((i + 1) * FANOUT).min(below) {
                stack.push((level - 1, child));
            }
        }
    }
}

/// Sine of the turn a -> b -> c, 0 when the three points are collinear up to float noise.
fn turn(a: Point, b: Point, c: Point) -> f64 {
    let (u, v) = ([b[0] - a[0], b[1] - a[1]], [c[0] - a[0], c[1] - a[1]]);
    let cross = u[0] * v[1] - u[1] * v[0];
    let norm = u[0].hypot(u[1]) * v[0].hypot(v[1]);
    if norm == 0.0 || (cross / norm).abs() < 1e-12 {
        0.0
    } else {
        cross.signum()
    }
}

/// Where edges ab and cd cross *properly* (each strictly separates the other's ends).
fn proper_crossing((a, b): (Point, Point), (c, d): (Point, Point)) -> Option<Point> {
    let crosses = turn(a, b, c) * turn(a, b, d) < 0.0 && turn(c, d, a) * turn(c, d, b) < 0.0;
    if !crosses {
        return None;
    }
    let (r, s) = ([b[0] - a[0], b[1] - a[1]], [d[0] - c[0], d[1] - c[1]]);
    let t = ((c[0] - a[0]) * s[1] - (c[1] - a[1]) * s[0]) / (r[0] * s[1] - r[1] * s[0]);
    Some([a[0] + t * r[0], a[1] + t * r[1]])
}

/// A point where two edges of the rings cross properly, if any. Touching and collinear
/// overlaps are allowed: clipping a geometry to its bbox legitimately leaves zero-area
/// slivers along the bbox edge, and holes may touch the exterior.
pub(crate) fn first_crossing(rings: &[Vec<Point>]) -> Option<Point> {
    let edges: Vec<(Point, Point)> = rings
        .iter()
        .flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
        .collect();
    if edges.len() < 2 {
        return None;
    }
    let tree = Tree::new(edges);
    let mut stack = Vec::new();
    let mut found = None;
    for (i, &e) in tree.edges.iter().enumerate() {
        let q = tree.levels[0][i];
        // Each pair once: only partners later in the tree's order.
        tree.query(&q, &mut stack, |j| {
            if j > i {
                found = proper_crossing(e, tree.edges[j]);
            }
            found.is_some()
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The quadratic reference: every pair. For tests.
#[cfg(test)]
fn crossing_by_all_pairs(rings: &[Vec<Point>]) -> Option<Point> {
    let edges: Vec<(Point, Point)> = rings
        .iter()
        .flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
        .collect();
    for i in 0..edges.len() {
        for j in i + 1..edges.len() {
            if let Some(p) = proper_crossing(edges[i], edges[j]) {
                return Some(p);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed zigzag of `n` long edges across x in [0, 1]: the shape that made the
    /// x-sweep quadratic.
    pub(crate) fn zigzag(n: usize) -> Vec<Point> {
        let mut ring: Vec<Point> = (0..n).map(|i| [(i % 2) as f64, i as f64 * 1e-4]).collect();
        ring.push([-1.0, (n - 1) as f64 * 1e-4]);
        ring.push([-1.0, 0.0]);
        ring.push(ring[0]);
        ring
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn agrees_with_all_pairs_on_random_rings() {
        let mut rng = Lcg(7);
        let mut crossing = 0;
        for case in 0..400 {
            let n = 3 + case % 12;
            // Star-shaped rings around a centre are simple; random jitter sometimes
            // makes them cross.
            let jitter = if case % 2 == 0 { 0.0 } else { 2.0 };
            let mut ring: Vec<Point> = (0..n)
                .map(|k| {
                    let a = k as f64 / n as f64 * std::f64::consts::TAU + jitter * rng.next();
                    let r = 0.5 + rng.next();
                    [r * a.cos(), r * a.sin()]
                })
                .collect();
            ring.push(ring[0]);
            let rings = vec![ring];
            let fast = first_crossing(&rings).is_some();
            let slow = crossing_by_all_pairs(&rings).is_some();
            assert_eq!(fast, slow, "case {case}: {:?}", rings[0]);
            crossing += usize::from(slow);
        }
        assert!(
            crossing > 20,
            "the random cases must include crossing rings"
        );
    }

    #[test]
    fn simple_zigzag_passes_and_a_crossing_is_found_among_many() {
        let ring = zigzag(20_001);
        assert!(first_crossing(std::slice::from_ref(&ring)).is_none());
        // Swap two neighbouring vertices in the middle: the edges now cross.
        let mut bad = ring;
        bad.swap(10_000, 10_002);
        let p = first_crossing(&[bad]).expect("crossing");
        assert!(p[0] > 0.0 && p[0] < 1.0);
        // The reference agrees on a smaller one (it is quadratic).
        let mut small = zigzag(2_001);
        assert!(crossing_by_all_pairs(&[small.clone()]).is_none());
        small.swap(1_000, 1_002);
        assert!(crossing_by_all_pairs(&[small.clone()]).is_some());
        assert!(first_crossing(&[small]).is_some());
    }

    #[test]
    fn touching_rings_and_shared_vertices_are_not_crossings() {
        let square = vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]];
        // A hole touching the exterior at a vertex and along an edge.
        let hole = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
        assert!(first_crossing(&[square.clone(), hole]).is_none());
        // A hole poking out of the exterior crosses it.
        let out = vec![[1.0, 1.0], [3.0, 1.0], [3.0, 1.5], [1.0, 1.0]];
        let p = first_crossing(&[square, out]).expect("crossing");
        assert!((p[0] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn hilbert_visits_every_cell_once() {
        let mut seen = std::collections::HashSet::new();
        for x in (0..65536u32).step_by(4096) {
            for y in (0..65536u32).step_by(4096) {
                assert!(seen.insert(hilbert(x, y)));
            }
        }
    }
}
