//! `landsat-ot-l1`: Landsat 8-9 OLI/TIRS Level-1 scenes from a folder of USGS GeoTIFFs
//! (one `<product>_B<n>.TIF` per band plus the `<product>_MTL.txt` metadata), by default
//! the real Landsat 8 subset in `fixtures/landsat/` (see `scripts/fetch_landsat_fixtures.sh`).
//!
//! Band names follow Sentinel Hub's `landsat-ot-l1`: B01-B11 and BQA (+ dataMask). Units:
//! `DN` is the file's value. The default (`REFLECTANCE`, and any other unit) is what
//! Sentinel Hub serves per band, computed from each scene's MTL coefficients as the USGS
//! Landsat 8 handbook gives them:
//! * B01-B09: top-of-atmosphere reflectance with the sun-angle correction,
//!   `(REFLECTANCE_MULT * DN + REFLECTANCE_ADD) / sin(SUN_ELEVATION)`;
//! * B10, B11: brightness temperature in Kelvin, `K2 / ln(K1 / L + 1)` with the radiance
//!   `L = RADIANCE_MULT * DN + RADIANCE_ADD`;
//! * BQA: the quality bits, always as stored.
//!
//! Conversions run after warping, on DN values; with NEAREST resampling (the default) that
//! equals converting first. Only pixels with data are converted (no-data stays 0).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{DataError, Filter, Item, ReadRequest, Scene, Units};
use crate::raster::cog::Cog;
use crate::raster::warp;

/// The collection type requests name.
pub const COLLECTION: &str = "landsat-ot-l1";

/// Band names, as Sentinel Hub's `landsat-ot-l1` has them.
pub const BANDS: &[&str] = &[
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "BQA", "dataMask",
];

/// The file-name suffix of a band (`B01` -> `B1`), `None` for names that are not bands.
pub fn file_suffix(band: &str) -> Option<&'static str> {
    Some(match band {
        "B01" => "B1",
        "B02" => "B2",
        "B03" => "B3",
        "B04" => "B4",
        "B05" => "B5",
        "B06" => "B6",
        "B07" => "B7",
        "B08" => "B8",
        "B09" => "B9",
        "B10" => "B10",
        "B11" => "B11",
        "BQA" => "BQA",
        _ => return None,
    })
}

/// What a scene's MTL file says that reading needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Mtl {
    pub product_id: String,
    /// RFC 3339 (DATE_ACQUIRED + SCENE_CENTER_TIME).
    pub datetime: String,
    pub cloud_cover: f64,
    pub sun_elevation: f64,
    /// Band number (1-11) -> (mult, add) for reflectance (1-9) or radiance (10-11).
    pub gains: BTreeMap<u32, (f64, f64)>,
    /// Band number (10, 11) -> (K1, K2).
    pub thermal: BTreeMap<u32, (f64, f64)>,
}

/// Parses the `KEY = value` lines of a Collection 1 or 2 MTL file.
pub fn parse_mtl(text: &str) -> Result<Mtl, DataError> {
    let mut kv: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            kv.insert(k.trim(), v.trim().trim_matches('"'));
        }
    }
    let bad = |what: &str| DataError::Catalog(format!("MTL: missing or bad {what}"));
    let get = |k: &str| kv.get(k).copied().ok_or_else(|| bad(k));
    let num = |k: &str| -> Result<f64, DataError> { get(k)?.parse().map_err(|_| bad(k)) };
    let product_id = get("LANDSAT_PRODUCT_ID")?.to_string();
    let date = get("DATE_ACQUIRED")?;
    let time = get("SCENE_CENTER_TIME")?;
    // "10:17:42.1661960Z": keep whole seconds, RFC 3339 parsers differ on 7 decimals.
    let hms = time
        .get(..8)
        .filter(|t| t.len() == 8)
        .ok_or_else(|| bad("SCENE_CENTER_TIME"))?;
    let datetime = format!("{date}T{hms}Z");
    if super::day_of(&datetime).is_none() {
        return Err(bad("DATE_ACQUIRED"));
    }
    let mut gains = BTreeMap::new();
    let mut thermal = BTreeMap::new();
    for b in 1..=9u32 {
        if let (Ok(m), Ok(a)) = (
            num(&format!("REFLECTANCE_MULT_BAND_{b}")),
            num(&format!("REFLECTANCE_ADD_BAND_{b}")),
        ) {
            gains.insert(b, (m, a));
        }
    }
    for b in [10u32, 11] {
        if let (Ok(m), Ok(a)) = (
            num(&format!("RADIANCE_MULT_BAND_{b}")),
            num(&format!("RADIANCE_ADD_BAND_{b}")),
        ) {
            gains.insert(b, (m, a));
        }
        if let (Ok(k1), Ok(k2)) = (
            num(&format!("K1_CONSTANT_BAND_{b}")),
            num(&format!("K2_CONSTANT_BAND_{b}")),
        ) {
            thermal.insert(b, (k1, k2));
        }
    }
    Ok(Mtl {
        product_id,
        datetime,
        cloud_cover: num("CLOUD_COVER")?,
        sun_elevation: num("SUN_ELEVATION")?,
        gains,
        thermal,
    })
}

/// Converts one DN of `band` to the requested units (see the module doc). `None` when the
/// MTL lacks the band's coefficients, so the caller can say which.
pub fn convert(band: &str, dn: f32, units: Units, mtl: &Mtl) -> Option<f32> {
    if units == Units::Dn || band == "BQA" {
        return Some(dn);
    }
    let n: u32 = band.strip_prefix('B')?.parse().ok()?;
    let (mult, add) = *mtl.gains.get(&n)?;
    let v = mult * dn as f64 + add;
    let out = if n <= 9 {
        v / mtl.sun_elevation.to_radians().sin()
    } else {
        let (k1, k2) = *mtl.thermal.get(&n)?;
        k2 / (k1 / v + 1.0).ln()
    };
    Some(out as f32)
}

/// Rejects an unknown band before any tile runs.
pub fn check_bands(bands: &[String]) -> Result<(), DataError> {
    for b in bands {
        if !BANDS.contains(&b.as_str()) {
            return Err(DataError::UnknownBand {
                band: b.clone(),
                collection: COLLECTION.to_string(),
                available: BANDS.join(", "),
            });
        }
    }
    Ok(())
}

/// Folder of the scenes: `$TESSERA_LANDSAT_DIR`, else `fixtures/landsat` of the source tree.
pub fn landsat_dir() -> String {
    std::env::var("TESSERA_LANDSAT_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/landsat").to_string())
}

/// A scene as a catalog item plus its MTL.
#[derive(Debug, Clone)]
pub struct LandsatScene {
    pub item: Item,
    pub mtl: Mtl,
}

/// Every `*_MTL.txt` of a folder as a scene; the footprint comes from the B1 header
/// (the files may be a subset of the full scene the MTL corners describe).
pub fn load_dir(dir: &str) -> Result<Vec<LandsatScene>, DataError> {
    let cat = |reason: String| DataError::Catalog(format!("{dir}: {reason}"));
    let mut mtls: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| cat(e.to_string()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with("_MTL.txt"))
        .collect();
    mtls.sort();
    let mut out = Vec::new();
    for name in mtls {
        let path = format!("{dir}/{name}");
        let text = std::fs::read_to_string(&path).map_err(|e| cat(format!("{name}: {e}")))?;
        let mtl = parse_mtl(&text).map_err(|e| cat(format!("{name}: {e}")))?;
        let file = |suffix: &str| format!("{dir}/{}_{suffix}.TIF", mtl.product_id);
        let assets: Vec<(String, String)> = BANDS
            .iter()
            .filter_map(|b| file_suffix(b).map(|s| (b.to_string(), file(s))))
            .filter(|(_, f)| std::path::Path::new(f).exists())
            .collect();
        let first = assets
            .first()
            .map(|(_, f)| f.clone())
            .ok_or_else(|| cat(format!("{name}: no band files next to it")))?;
        let cog = Cog::open_path(&first).map_err(|e| DataError::Read {
            path: first.clone(),
            reason: e.to_string(),
        })?;
        let g = cog.georef;
        let (w, h) = cog.levels.first().map_or((0, 0), |l| (l.width, l.height));
        let proj_bbox = [
            g.x_min,
            g.y_max - h as f64 * g.res_y,
            g.x_min + w as f64 * g.res_x,
            g.y_max,
        ];
        let bbox = warp::transform_bbox(g.epsg, 4326, proj_bbox)
            .map_err(|e| DataError::Georef(e.to_string()))?;
        let day = super::day_of(&mtl.datetime).unwrap_or(0);
        out.push(LandsatScene {
            item: Item {
                id: mtl.product_id.clone(),
                datetime: mtl.datetime.clone(),
                day,
                cloud_cover: mtl.cloud_cover,
                epsg: g.epsg,
                proj_bbox,
                bbox,
                assets,
                dn_offset: 0.0,
            },
            mtl,
        });
    }
    Ok(out)
}

/// The scenes of [`landsat_dir`], loaded once per process.
pub fn catalog() -> Result<&'static [LandsatScene], DataError> {
    static CATALOG: OnceLock<Result<Vec<LandsatScene>, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| load_dir(&landsat_dir()).map_err(|e| e.to_string()))
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(|e| DataError::Catalog(e.clone()))
}

/// One array per scene, converted to the filter's units (ORBIT/TILE), from `scenes`.
pub fn read_scenes_from(
    scenes: &[LandsatScene],
    req: &ReadRequest<'_>,
    filter: &Filter,
) -> Result<Vec<Scene>, DataError> {
    check_bands(req.bands)?;
    let items: Vec<Item> = scenes.iter().map(|s| s.item.clone()).collect();
    let dn = Filter {
        units: Units::Dn,
        ..filter.clone()
    };
    let mut read = super::read_items(&items, req, &dn)?;
    for s in &mut read {
        let mtl = &scenes
            .iter()
            .find(|x| x.item.id == s.id)
            .ok_or_else(|| DataError::Catalog(format!("scene {} vanished", s.id)))?
            .mtl;
        for (band, plane) in req.bands.iter().zip(s.planes.iter_mut()) {
            if band == "dataMask" || filter.units == Units::Dn || band == "BQA" {
                continue;
            }
            for (v, &m) in plane.iter_mut().zip(&s.mask) {
                if m == 1 {
                    *v = convert(band, *v, filter.units, mtl).ok_or_else(|| {
                        DataError::Catalog(format!(
                            "{}: the MTL has no calibration coefficients for {band}",
                            mtl.product_id
                        ))
                    })?;
                }
            }
        }
    }
    Ok(read)
}

/// SIMPLE mosaicking from `scenes`.
pub fn read_simple_from(
    scenes: &[LandsatScene],
    req: &ReadRequest<'_>,
    filter: &Filter,
) -> Result<Vec<Vec<f32>>, DataError> {
    let read = read_scenes_from(scenes, req, filter)?;
    Ok(super::mosaic(&read, req.bands, req.width * req.height))
}

/// SIMPLE mosaicking from the configured folder.
pub fn read_simple(req: &ReadRequest<'_>, filter: &Filter) -> Result<Vec<Vec<f32>>, DataError> {
    read_simple_from(catalog()?, req, filter)
}

/// ORBIT/TILE reading from the configured folder.
pub fn read_scenes(req: &ReadRequest<'_>, filter: &Filter) -> Result<Vec<Scene>, DataError> {
    read_scenes_from(catalog()?, req, filter)
}

#[cfg(test)]
#[path = "landsat_tests.rs"]
mod tests;
