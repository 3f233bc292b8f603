//! Warping a source window onto a target pixel grid: same CRS (an affine resample) or
//! another one (UTM zone to zone, or EPSG:4326), with NEAREST, BILINEAR or BICUBIC.
//!
//! For a CRS change the inverse mapping (target pixel -> source pixel) is evaluated exactly
//! on a coarse lattice every `LATTICE` pixels and interpolated bilinearly in between: over
//! 160 m the projection is linear to far below a millimetre, and it saves one inverse and
//! one forward projection per output pixel. Rows run in parallel with rayon.

use rayon::prelude::*;

use super::Georef;
use crate::grid::tm::UtmZone;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WarpError {
    #[error("EPSG:{0} is not supported (UTM 326zz/327zz and 4326 are)")]
    Crs(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resampling {
    #[default]
    Nearest,
    Bilinear,
    Bicubic,
}

impl Resampling {
    /// The Process API names: NEAREST, BILINEAR, BICUBIC.
    pub fn parse(s: &str) -> Option<Resampling> {
        match s {
            "NEAREST" => Some(Resampling::Nearest),
            "BILINEAR" => Some(Resampling::Bilinear),
            "BICUBIC" => Some(Resampling::Bicubic),
            _ => None,
        }
    }
}

const LATTICE: usize = 16;

/// Maps a point between two CRSs (via longitude/latitude unless they are equal).
#[derive(Debug, Clone, Copy)]
pub struct Transform {
    from: Crs,
    to: Crs,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Crs {
    LonLat,
    Utm(UtmZone),
}

fn crs(epsg: u32) -> Result<Crs, WarpError> {
    if epsg == 4326 {
        return Ok(Crs::LonLat);
    }
    UtmZone::from_epsg(epsg)
        .map(Crs::Utm)
        .ok_or(WarpError::Crs(epsg))
}

impl Transform {
    pub fn new(from_epsg: u32, to_epsg: u32) -> Result<Transform, WarpError> {
        Ok(Transform {
            from: crs(from_epsg)?,
            to: crs(to_epsg)?,
        })
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        if self.from == self.to {
            return (x, y);
        }
        let (lon, lat) = match self.from {
            Crs::LonLat => (x, y),
            Crs::Utm(z) => z.inverse(x, y),
        };
        match self.to {
            Crs::LonLat => (lon, lat),
            Crs::Utm(z) => z.forward(lon, lat),
        }
    }
}

/// The inverse mapping of a warp: target pixel (col, row) -> source pixel coordinates (in
/// `src` pixel units, fractional, centres at `i + 0.5`). Affine within one CRS; otherwise
/// exact on a lattice every `LATTICE` target pixels and bilinear in between.
pub struct Mapper {
    dst: Georef,
    src: Georef,
    lattice: Option<(Vec<(f64, f64)>, usize)>,
}

impl Mapper {
    pub fn new(
        dst: &Georef,
        width: usize,
        height: usize,
        src: &Georef,
    ) -> Result<Mapper, WarpError> {
        let t = Transform::new(dst.epsg, src.epsg)?;
        if dst.epsg == src.epsg {
            return Ok(Mapper {
                dst: *dst,
                src: *src,
                lattice: None,
            });
        }
        let cols = width.div_ceil(LATTICE) + 1;
        let rows = height.div_ceil(LATTICE) + 1;
        let mut lattice = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for c in 0..cols {
                let x = dst.x_min + ((c * LATTICE) as f64 + 0.5) * dst.res_x;
                let y = dst.y_max - ((r * LATTICE) as f64 + 0.5) * dst.res_y;
                let (sx, sy) = t.apply(x, y);
                lattice.push(((sx - src.x_min) / src.res_x, (src.y_max - sy) / src.res_y));
            }
        }
        Ok(Mapper {
            dst: *dst,
            src: *src,
            lattice: Some((lattice, cols)),
        })
    }

    #[inline]
    pub fn at(&self, col: usize, row: usize) -> (f64, f64) {
        match &self.lattice {
            None => {
                let x = self.dst.x_min + (col as f64 + 0.5) * self.dst.res_x;
                let y = self.dst.y_max - (row as f64 + 0.5) * self.dst.res_y;
                (
                    (x - self.src.x_min) / self.src.res_x,
                    (self.src.y_max - y) / self.src.res_y,
                )
            }
            Some((lattice, cols)) => {
                let (r0, c0) = (row / LATTICE, col / LATTICE);
                let ty = (row % LATTICE) as f64 / LATTICE as f64;
                let tx = (col % LATTICE) as f64 / LATTICE as f64;
                let at = |r: usize, c: usize| lattice[r * cols + c];
                let (a, b, c, d) = (
                    at(r0, c0),
                    at(r0, c0 + 1),
                    at(r0 + 1, c0),
                    at(r0 + 1, c0 + 1),
                );
                let top = (a.0 + (b.0 - a.0) * tx, a.1 + (b.1 - a.1) * tx);
                let bot = (c.0 + (d.0 - c.0) * tx, c.1 + (d.1 - c.1) * tx);
                (top.0 + (bot.0 - top.0) * ty, top.1 + (bot.1 - top.1) * ty)
            }
        }
    }
}

/// All source coordinates of a target grid, row-major (tests and small grids; `warp`
/// computes them row by row instead of holding 16 bytes per pixel).
pub fn source_coords(
    dst: &Georef,
    width: usize,
    height: usize,
    src: &Georef,
) -> Result<Vec<(f64, f64)>, WarpError> {
    let m = Mapper::new(dst, width, height, src)?;
    Ok((0..height)
        .flat_map(|r| (0..width).map(move |c| (c, r)))
        .map(|(c, r)| m.at(c, r))
        .collect())
}

/// Warps `src` (`sw * sh` pixels on `src_geo`, `NaN` = no data) onto the `width * height`
/// grid `dst`; rows in parallel.
#[allow(clippy::too_many_arguments)]
pub fn warp(
    src: &[f32],
    sw: usize,
    sh: usize,
    src_geo: &Georef,
    dst: &Georef,
    width: usize,
    height: usize,
    method: Resampling,
) -> Result<Vec<f32>, WarpError> {
    if let Some((dx, dy)) = aligned_offset(src_geo, dst) {
        return Ok(copy_aligned(src, sw, sh, dx, dy, width, height));
    }
    let m = Mapper::new(dst, width, height, src_geo)?;
    let mut out = vec![f32::NAN; width * height];
    out.par_chunks_mut(width.max(1))
        .enumerate()
        .for_each(|(row, line)| {
            for (col, slot) in line.iter_mut().enumerate() {
                let (sx, sy) = m.at(col, row);
                *slot = sample_one(src, sw, sh, sx, sy, method);
            }
        });
    Ok(out)
}

/// When the target grid is the source grid shifted by whole pixels (same CRS, same pixel
/// size: a Sentinel-2 COG under a grid-1 tile at 10 m), every target pixel centre is a
/// source pixel centre, where nearest, bilinear and bicubic all return that pixel. The
/// offset `(dx, dy)` in source pixels, or `None` when the grids do not line up.
pub fn aligned_offset(src: &Georef, dst: &Georef) -> Option<(i64, i64)> {
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    if src.epsg != dst.epsg || !same(src.res_x, dst.res_x) || !same(src.res_y, dst.res_y) {
        return None;
    }
    let ox = (dst.x_min - src.x_min) / src.res_x;
    let oy = (src.y_max - dst.y_max) / src.res_y;
    let whole = |o: f64| o.is_finite() && (o - o.round()).abs() < 1e-6 && o.abs() < 1e12;
    (whole(ox) && whole(oy)).then(|| (ox.round() as i64, oy.round() as i64))
}

/// The target window `(dx, dy, width, height)` of the source, `NaN` outside it: row copies.
fn copy_aligned(
    src: &[f32],
    sw: usize,
    sh: usize,
    dx: i64,
    dy: i64,
    width: usize,
    height: usize,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; width * height];
    // Target columns that fall inside the source.
    let c0 = (-dx).clamp(0, width as i64) as usize;
    let c1 = (sw as i64 - dx).clamp(0, width as i64) as usize;
    if c0 >= c1 {
        return out;
    }
    out.par_chunks_mut(width.max(1))
        .enumerate()
        .for_each(|(row, line)| {
            let sy = row as i64 + dy;
            if sy < 0 || sy >= sh as i64 {
                return;
            }
            let from = sy as usize * sw + (c0 as i64 + dx) as usize;
            line[c0..c1].copy_from_slice(&src[from..from + (c1 - c0)]);
        });
    out
}

/// Samples `src` (`sw * sh`, `NaN` = no data) at fractional pixel positions. A target
/// pixel whose centre falls outside the source, or on a no-data pixel, is `NaN`; the
/// interpolating kernels renormalise over the valid neighbours, as GDAL does with nodata.
pub fn sample(
    src: &[f32],
    sw: usize,
    sh: usize,
    coords: &[(f64, f64)],
    method: Resampling,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; coords.len()];
    out.par_chunks_mut(4096)
        .zip(coords.par_chunks(4096))
        .for_each(|(o, c)| {
            for (slot, &(sx, sy)) in o.iter_mut().zip(c) {
                *slot = sample_one(src, sw, sh, sx, sy, method);
            }
        });
    out
}

fn sample_one(src: &[f32], sw: usize, sh: usize, sx: f64, sy: f64, method: Resampling) -> f32 {
    if !(sx >= 0.0 && sy >= 0.0 && sx < sw as f64 && sy < sh as f64) {
        return f32::NAN;
    }
    let (ix, iy) = (sx as usize, sy as usize);
    let nearest = src[iy * sw + ix];
    if nearest.is_nan() {
        return f32::NAN;
    }
    let (u, v) = (sx - 0.5, sy - 0.5);
    let (x0, y0) = (u.floor() as i64, v.floor() as i64);
    let (fx, fy) = (u - x0 as f64, v - y0 as f64);
    let get = |x: i64, y: i64| -> f32 {
        let x = x.clamp(0, sw as i64 - 1) as usize;
        let y = y.clamp(0, sh as i64 - 1) as usize;
        src[y * sw + x]
    };
    let (mut acc, mut wsum) = (0.0f64, 0.0f64);
    match method {
        Resampling::Nearest => return nearest,
        Resampling::Bilinear => {
            for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
                for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                    let val = get(x0 + dx, y0 + dy);
                    let w = wx * wy;
                    if !val.is_nan() && w > 0.0 {
                        acc += w * val as f64;
                        wsum += w;
                    }
                }
            }
        }
        Resampling::Bicubic => {
            let wx = cubic_weights(fx);
            let wy = cubic_weights(fy);
            for (j, wyj) in wy.iter().enumerate() {
                for (i, wxi) in wx.iter().enumerate() {
                    let val = get(x0 + i as i64 - 1, y0 + j as i64 - 1);
                    let w = wxi * wyj;
                    if !val.is_nan() {
                        acc += w * val as f64;
                        wsum += w;
                    }
                }
            }
        }
    }
    if wsum.abs() < 1e-12 {
        nearest
    } else {
        (acc / wsum) as f32
    }
}

/// Keys' cubic convolution weights (a = -0.5, GDAL's "cubic") for offsets -1, 0, 1, 2.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.5;
    let w = |x: f64| {
        let x = x.abs();
        if x <= 1.0 {
            (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0
        } else if x < 2.0 {
            a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a
        } else {
            0.0
        }
    };
    [w(1.0 + t), w(t), w(1.0 - t), w(2.0 - t)]
}

/// The bounding box, in `to` CRS, of the rectangle `[x0, y0, x1, y1]` given in `from`,
/// from points along its edges (a UTM rectangle is curved in another zone).
pub fn transform_bbox(from: u32, to: u32, b: [f64; 4]) -> Result<[f64; 4], WarpError> {
    let t = Transform::new(from, to)?;
    let mut out = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    const N: usize = 8;
    for i in 0..=N {
        let f = i as f64 / N as f64;
        let x = b[0] + (b[2] - b[0]) * f;
        let y = b[1] + (b[3] - b[1]) * f;
        for (px, py) in [(x, b[1]), (x, b[3]), (b[0], y), (b[2], y)] {
            let (qx, qy) = t.apply(px, py);
            out = [
                out[0].min(qx),
                out[1].min(qy),
                out[2].max(qx),
                out[3].max(qy),
            ];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(epsg: u32, x: f64, y: f64, res: f64) -> Georef {
        Georef {
            epsg,
            x_min: x,
            y_max: y,
            res_x: res,
            res_y: res,
        }
    }

    #[test]
    fn same_grid_is_identity_for_every_method() {
        let src: Vec<f32> = (0..36).map(|v| v as f32 * 1.5).collect();
        let geo = g(32633, 1000.0, 2000.0, 10.0);
        let coords = source_coords(&geo, 6, 6, &geo).unwrap();
        for m in [
            Resampling::Nearest,
            Resampling::Bilinear,
            Resampling::Bicubic,
        ] {
            assert_eq!(sample(&src, 6, 6, &coords, m), src, "{m:?}");
        }
    }

    #[test]
    fn whole_pixel_shifts_copy_exactly_what_resampling_gives() {
        // A 7x5 source with a no-data pixel; targets shifted by whole pixels, partly outside.
        let mut src: Vec<f32> = (0..35).map(|v| v as f32 * 0.25 - 3.0).collect();
        src[9] = f32::NAN;
        let sgeo = g(32633, 1000.0, 2000.0, 10.0);
        for (dx, dy) in [
            (0i64, 0i64),
            (2, 1),
            (-3, 2),
            (5, -4),
            (9, 0),
            (0, 7),
            (-20, -20),
        ] {
            let dgeo = g(
                32633,
                1000.0 + 10.0 * dx as f64,
                2000.0 - 10.0 * dy as f64,
                10.0,
            );
            assert_eq!(aligned_offset(&sgeo, &dgeo), Some((dx, dy)));
            let coords = source_coords(&dgeo, 6, 4, &sgeo).unwrap();
            for m in [
                Resampling::Nearest,
                Resampling::Bilinear,
                Resampling::Bicubic,
            ] {
                let fast = warp(&src, 7, 5, &sgeo, &dgeo, 6, 4, m).unwrap();
                let slow = sample(&src, 7, 5, &coords, m);
                let same = |a: &f32, b: &f32| a == b || (a.is_nan() && b.is_nan());
                assert!(
                    fast.iter().zip(&slow).all(|(a, b)| same(a, b)),
                    "{m:?} {dx},{dy}: {fast:?} {slow:?}"
                );
            }
        }
        // Half a pixel, another pixel size or another CRS: no shortcut.
        assert_eq!(aligned_offset(&sgeo, &g(32633, 1005.0, 2000.0, 10.0)), None);
        assert_eq!(aligned_offset(&sgeo, &g(32633, 1000.0, 2000.0, 20.0)), None);
        assert_eq!(aligned_offset(&sgeo, &g(32632, 1000.0, 2000.0, 10.0)), None);
    }

    #[test]
    fn bilinear_halfway_is_the_mean() {
        // Target grid shifted by half a source pixel to the east: value is the mean of two.
        let src = vec![0.0, 10.0, 20.0, 0.0, 10.0, 20.0];
        let coords =
            source_coords(&g(32633, 5.0, 20.0, 10.0), 2, 2, &g(32633, 0.0, 20.0, 10.0)).unwrap();
        let out = sample(&src, 3, 2, &coords, Resampling::Bilinear);
        assert_eq!(out, vec![5.0, 15.0, 5.0, 15.0]);
    }

    #[test]
    fn nodata_and_outside_are_nan() {
        let src = vec![1.0, f32::NAN, 3.0, 4.0];
        let coords = vec![(1.5, 0.5), (-0.1, 0.5), (2.0, 0.5), (0.5, 1.5)];
        let out = sample(&src, 2, 2, &coords, Resampling::Bilinear);
        assert!(out[0].is_nan() && out[1].is_nan() && out[2].is_nan());
        assert_eq!(out[3], 3.0);
    }

    #[test]
    fn cubic_weights_sum_to_one_and_interpolate() {
        for t in [0.0, 0.25, 0.5, 0.9] {
            let w = cubic_weights(t);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn lattice_matches_exact_projection_across_zones() {
        let dst = g(32633, 267000.0, 5099000.0, 10.0);
        let src = g(32632, 729000.0, 5101000.0, 10.0);
        let coords = source_coords(&dst, 100, 100, &src).unwrap();
        let t = Transform::new(32633, 32632).unwrap();
        for &(c, r) in &[(0usize, 0usize), (37, 61), (99, 99)] {
            let (x, y) = t.apply(
                267000.0 + (c as f64 + 0.5) * 10.0,
                5099000.0 - (r as f64 + 0.5) * 10.0,
            );
            let want = ((x - 729000.0) / 10.0, (5101000.0 - y) / 10.0);
            let got = coords[r * 100 + c];
            assert!(
                (got.0 - want.0).abs() < 1e-3 && (got.1 - want.1).abs() < 1e-3,
                "{got:?} {want:?}"
            );
        }
    }

    #[test]
    fn unknown_crs_is_rejected() {
        assert_eq!(
            Transform::new(3035, 32633).err(),
            Some(WarpError::Crs(3035))
        );
    }
}
