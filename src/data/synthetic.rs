//! The procedural `tessera-synthetic` collection: a smooth deterministic field in
//! (lon, lat, day) that exists everywhere, for tests and demos over any area.

use super::{DataError, SAMPLE_BANDS};
use crate::raster::Georef;

/// Reads the synthetic bands for a tile grid.
pub fn read(
    bands: &[String],
    georef: &Georef,
    width: usize,
    height: usize,
    day: i64,
) -> Result<Vec<Vec<f32>>, DataError> {
    let lonlat = lonlat_lattice(georef, width, height)?;
    Ok(bands.iter().map(|b| sample_band(b, &lonlat, day)).collect())
}

/// Longitude and latitude of every pixel centre. The projection is evaluated on a coarse
/// lattice and interpolated bilinearly: over a few hundred metres the map projection is
/// linear to far below a pixel, and it saves a million inverse projections per tile.
fn lonlat_lattice(g: &Georef, width: usize, height: usize) -> Result<Vec<(f32, f32)>, DataError> {
    const STEP: usize = 32;
    let cols = width.div_ceil(STEP) + 1;
    let rows = height.div_ceil(STEP) + 1;
    let mut lattice = Vec::with_capacity(cols * rows);
    for r in 0..rows {
        for c in 0..cols {
            let x = g.x_min + (c * STEP) as f64 * g.res_x;
            let y = g.y_max - (r * STEP) as f64 * g.res_y;
            let ll = crate::grid::to_lonlat(g.epsg, x, y)
                .ok_or_else(|| DataError::Georef(format!("EPSG:{} is not supported", g.epsg)))?;
            lattice.push(ll);
        }
    }
    let mut out = Vec::with_capacity(width * height);
    for row in 0..height {
        let fy = (row as f64 + 0.5) / STEP as f64;
        let r0 = (fy.floor() as usize).min(rows - 2);
        let ty = fy - r0 as f64;
        for col in 0..width {
            let fx = (col as f64 + 0.5) / STEP as f64;
            let c0 = (fx.floor() as usize).min(cols - 2);
            let tx = fx - c0 as f64;
            let at = |r: usize, c: usize| lattice[r * cols + c];
            let lerp = |a: (f64, f64), b: (f64, f64), t: f64| {
                (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
            };
            let top = lerp(at(r0, c0), at(r0, c0 + 1), tx);
            let bottom = lerp(at(r0 + 1, c0), at(r0 + 1, c0 + 1), tx);
            let (lon, lat) = lerp(top, bottom, ty);
            out.push((lon as f32, lat as f32));
        }
    }
    Ok(out)
}

/// The synthetic field: smooth, band-specific, deterministic in (lon, lat, day), with
/// reflectances in a Sentinel-2-like range so index scripts give plausible values.
fn sample_band(band: &str, lonlat: &[(f32, f32)], day: i64) -> Vec<f32> {
    let k = SAMPLE_BANDS.iter().position(|b| *b == band).unwrap_or(0) as f32;
    let phase = (day % 365) as f32 * 0.0172;
    match band {
        "dataMask" => vec![1.0; lonlat.len()],
        "SCL" => lonlat
            .iter()
            .map(|&(lon, lat)| {
                let w = ((lon * 37.0).sin() + (lat * 53.0).cos()) * 0.5;
                if w > 0.6 {
                    6.0 // water
                } else if w > 0.0 {
                    4.0 // vegetation
                } else {
                    5.0 // bare soil
                }
            })
            .collect(),
        _ => {
            let base = 0.04 + 0.02 * k;
            lonlat
                .iter()
                .map(|&(lon, lat)| {
                    let v = (lon * (23.0 + k) + phase).sin() * (lat * (31.0 - k) - phase).cos();
                    base + 0.15 * (1.0 + v)
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn georef() -> Georef {
        Georef {
            epsg: 32633,
            x_min: 500_000.0,
            y_max: 5_100_000.0,
            res_x: 10.0,
            res_y: 10.0,
        }
    }

    #[test]
    fn reads_every_band_on_the_tile_grid() {
        let bands = vec!["B04".to_string(), "B08".to_string(), "dataMask".to_string()];
        let planes = read(&bands, &georef(), 70, 40, 19_500).unwrap();
        assert_eq!(planes.len(), 3);
        assert!(planes.iter().all(|p| p.len() == 70 * 40));
        assert!(planes[0].iter().all(|v| (0.0..=0.6).contains(v)));
        assert!(planes[2].iter().all(|v| *v == 1.0));
        assert_ne!(planes[0], planes[1], "bands must differ");
    }

    #[test]
    fn interpolated_coordinates_match_the_projection() {
        let g = georef();
        let ll = lonlat_lattice(&g, 100, 100).unwrap();
        for &(col, row) in &[(0usize, 0usize), (50, 17), (99, 99)] {
            let x = g.x_min + (col as f64 + 0.5) * g.res_x;
            let y = g.y_max - (row as f64 + 0.5) * g.res_y;
            let (lon, lat) = crate::grid::to_lonlat(g.epsg, x, y).unwrap();
            // f32 keeps ~1e-6 degrees near 46°N; 1e-5 degrees is about a metre.
            let got = ll[row * 100 + col];
            assert!(
                (got.0 as f64 - lon).abs() < 1e-5,
                "lon {} vs {}",
                got.0,
                lon
            );
            assert!(
                (got.1 as f64 - lat).abs() < 1e-5,
                "lat {} vs {}",
                got.1,
                lat
            );
        }
    }
}
