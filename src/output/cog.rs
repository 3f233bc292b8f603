//! Cloud-Optimized GeoTIFF parameters (`output.cogParameters`, batch-api.md §10.3) and the
//! overview pyramid: which decimation factors, and how pixels are resampled. Pure.

use serde_json::Value;

use super::geotiff::Sample;
use super::OutputError;

/// Default COG block edge of the hosted service (GDAL's own default is 512).
pub const DEFAULT_BLOCK: u32 = 1024;

/// Overview resampling. The service also lists gauss, cubic, cubicspline, lanczos and
/// average_magphase; those are refused with a clear error rather than silently replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resampling {
    Nearest,
    Average,
    Mode,
}

impl Resampling {
    pub fn parse(name: &str) -> Result<Self, OutputError> {
        match name.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Resampling::Nearest),
            "average" => Ok(Resampling::Average),
            "mode" => Ok(Resampling::Mode),
            "gauss" | "cubic" | "cubicspline" | "lanczos" | "average_magphase" => {
                Err(OutputError::InvalidCog(format!(
                    "resamplingAlgorithm '{name}' is not supported by this server yet; \
                     use nearest, average or mode"
                )))
            }
            _ => Err(OutputError::InvalidCog(format!(
                "unknown resamplingAlgorithm '{name}'; expected one of nearest, average, \
                 gauss, cubic, cubicspline, lanczos, average_magphase, mode"
            ))),
        }
    }
}

/// Validated `cogParameters` with the service's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CogParams {
    /// Explicit decimation factors (e.g. `[2, 4, 8]`); `None` derives them from
    /// `overview_min_size`.
    pub overview_levels: Option<Vec<u32>>,
    /// Overviews are added until both sides fit this size; default min(block sizes).
    pub overview_min_size: Option<u32>,
    pub resampling: Resampling,
    pub block_x: u32,
    pub block_y: u32,
    pub use_predictor: bool,
}

impl Default for CogParams {
    fn default() -> Self {
        CogParams {
            overview_levels: None,
            overview_min_size: None,
            resampling: Resampling::Average,
            block_x: DEFAULT_BLOCK,
            block_y: DEFAULT_BLOCK,
            use_predictor: true,
        }
    }
}

impl CogParams {
    /// Parses `output.cogParameters` (absent or null: all defaults). Unknown members are
    /// refused so a misspelt parameter is not silently ignored; `noData` (older samples)
    /// is accepted and ignored: nodata comes from the evalscript's output.
    pub fn from_json(value: Option<&Value>) -> Result<Self, OutputError> {
        let mut params = CogParams::default();
        let obj = match value {
            None | Some(Value::Null) => return Ok(params),
            Some(Value::Object(obj)) => obj,
            Some(_) => return Err(bad("cogParameters must be an object")),
        };
        let uint = |key: &str, v: &Value| -> Result<u32, OutputError> {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(&format!("cogParameters.{key} must be a positive integer")))
        };
        for (key, v) in obj {
            match key.as_str() {
                "overviewLevels" => {
                    let list = v
                        .as_array()
                        .ok_or_else(|| bad("cogParameters.overviewLevels must be an array"))?;
                    let levels = list
                        .iter()
                        .map(|l| uint("overviewLevels", l))
                        .collect::<Result<Vec<_>, _>>()?;
                    params.overview_levels = Some(levels);
                }
                "overviewMinSize" => params.overview_min_size = Some(uint(key, v)?),
                "resamplingAlgorithm" => {
                    let name = v
                        .as_str()
                        .ok_or_else(|| bad("cogParameters.resamplingAlgorithm must be a string"))?;
                    params.resampling = Resampling::parse(name)?;
                }
                "blockxsize" => params.block_x = uint(key, v)?,
                "blockysize" => params.block_y = uint(key, v)?,
                "usePredictor" => {
                    params.use_predictor = v
                        .as_bool()
                        .ok_or_else(|| bad("cogParameters.usePredictor must be true or false"))?
                }
                "noData" => {}
                other => {
                    return Err(bad(&format!(
                        "unknown cogParameters member '{other}'; known: overviewLevels, \
                         overviewMinSize, resamplingAlgorithm, blockxsize, blockysize, \
                         usePredictor"
                    )))
                }
            }
        }
        params.validate()?;
        Ok(params)
    }

    /// TIFF tiles must be multiples of 16; overview factors must increase from 2.
    pub fn validate(&self) -> Result<(), OutputError> {
        for (name, size) in [("blockxsize", self.block_x), ("blockysize", self.block_y)] {
            if size == 0 || size % 16 != 0 || size > 4096 {
                return Err(bad(&format!(
                    "cogParameters.{name} must be a multiple of 16 between 16 and 4096, got {size}"
                )));
            }
        }
        if let Some(levels) = &self.overview_levels {
            let increasing = levels.windows(2).all(|w| w[0] < w[1]);
            if levels.iter().any(|&l| l < 2) || !increasing {
                return Err(bad(&format!(
                    "cogParameters.overviewLevels must be increasing factors of at least 2, \
                     got {levels:?}"
                )));
            }
        }
        if self.overview_min_size == Some(0) {
            return Err(bad("cogParameters.overviewMinSize must be positive"));
        }
        Ok(())
    }
}

fn bad(msg: &str) -> OutputError {
    OutputError::InvalidCog(msg.to_string())
}

/// Decimation factors of the overviews of a `width` x `height` image.
///
/// Explicit levels are used as given, except those that would shrink the image below one
/// pixel. Otherwise factors double (as GDAL's COG driver does) while the last overview is
/// still larger than `overview_min_size` in either direction.
pub fn overview_factors(width: usize, height: usize, params: &CogParams) -> Vec<u32> {
    if let Some(levels) = &params.overview_levels {
        let largest = width.max(height);
        return levels
            .iter()
            .copied()
            .filter(|&f| f as usize <= largest)
            .collect();
    }
    let min_size = params
        .overview_min_size
        .unwrap_or(params.block_x.min(params.block_y)) as usize;
    let mut factors = Vec::new();
    let (mut w, mut h, mut factor) = (width, height, 1usize);
    while (w > min_size || h > min_size) && factor < (1 << 30) {
        factor *= 2;
        w = width.div_ceil(factor);
        h = height.div_ceil(factor);
        factors.push(factor as u32);
        if w == 1 && h == 1 {
            break;
        }
    }
    factors
}

/// Decimates a planar raster by `factor`: output pixel (x, y) covers source pixels
/// `[x*f, min((x+1)*f, w)) x [y*f, min((y+1)*f, h))`. Returns the planes and the size.
///
/// Nodata (and NaN) samples are left out of averages and modes; a window with nothing
/// else yields nodata (or NaN). Nearest takes the window's centre pixel, as GDAL does for
/// even factors (the pixel right/below of the centre).
pub fn overview<T: Sample>(
    planes: &[T],
    width: usize,
    height: usize,
    bands: usize,
    factor: usize,
    resampling: Resampling,
    nodata: Option<T>,
) -> (Vec<T>, usize, usize) {
    let factor = factor.max(1);
    let (ow, oh) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut out = Vec::with_capacity(ow * oh * bands);
    let plane_len = width * height;
    let is_missing = |v: T| Some(v) == nodata || v.to_f64().is_nan();
    let mut window: Vec<T> = Vec::with_capacity(factor * factor);
    for band in 0..bands {
        let plane = &planes[band * plane_len..(band + 1) * plane_len];
        for oy in 0..oh {
            let (y0, y1) = (oy * factor, ((oy + 1) * factor).min(height));
            for ox in 0..ow {
                let (x0, x1) = (ox * factor, ((ox + 1) * factor).min(width));
                let value = match resampling {
                    Resampling::Nearest => {
                        let cx = (x0 + (x1 - x0) / 2).min(width - 1);
                        let cy = (y0 + (y1 - y0) / 2).min(height - 1);
                        plane[cy * width + cx]
                    }
                    Resampling::Average => {
                        let (mut sum, mut n) = (0.0f64, 0usize);
                        for y in y0..y1 {
                            for &v in &plane[y * width + x0..y * width + x1] {
                                if !is_missing(v) {
                                    sum += v.to_f64();
                                    n += 1;
                                }
                            }
                        }
                        if n == 0 {
                            missing(nodata)
                        } else {
                            T::from_f64(sum / n as f64)
                        }
                    }
                    Resampling::Mode => {
                        window.clear();
                        for y in y0..y1 {
                            window.extend(
                                plane[y * width + x0..y * width + x1]
                                    .iter()
                                    .copied()
                                    .filter(|v| !is_missing(*v)),
                            );
                        }
                        mode(&window).unwrap_or_else(|| missing(nodata))
                    }
                };
                out.push(value);
            }
        }
    }
    (out, ow, oh)
}

fn missing<T: Sample>(nodata: Option<T>) -> T {
    nodata.unwrap_or_else(|| T::from_f64(f64::NAN))
}

/// The most frequent value; ties go to the value seen first (row-major), as GDAL does.
fn mode<T: Sample>(values: &[T]) -> Option<T> {
    let mut best: Option<(T, usize)> = None;
    for (i, &v) in values.iter().enumerate() {
        if values[..i].contains(&v) {
            continue;
        }
        let count = values[i..].iter().filter(|&&w| w == v).count();
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((v, count));
        }
    }
    best.map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_the_service() {
        let p = CogParams::from_json(None).unwrap();
        assert_eq!(p, CogParams::default());
        assert_eq!((p.block_x, p.block_y), (1024, 1024));
        assert_eq!(p.resampling, Resampling::Average);
        assert!(p.use_predictor);
    }

    #[test]
    fn parses_every_parameter() {
        let p = CogParams::from_json(Some(&json!({
            "overviewLevels": [2, 4, 8], "overviewMinSize": 64, "resamplingAlgorithm": "NEAREST",
            "blockxsize": 256, "blockysize": 512, "usePredictor": false, "noData": 0
        })))
        .unwrap();
        assert_eq!(p.overview_levels, Some(vec![2, 4, 8]));
        assert_eq!(p.overview_min_size, Some(64));
        assert_eq!(p.resampling, Resampling::Nearest);
        assert_eq!((p.block_x, p.block_y), (256, 512));
        assert!(!p.use_predictor);
    }

    #[test]
    fn refuses_bad_parameters_with_the_member_name() {
        let cases = [
            (
                json!({"blockxsize": 100}),
                "blockxsize must be a multiple of 16",
            ),
            (
                json!({"blockysize": -16}),
                "blockysize must be a positive integer",
            ),
            (json!({"overviewLevels": [4, 2]}), "increasing"),
            (json!({"overviewLevels": [1]}), "at least 2"),
            (json!({"overviewLevels": "2"}), "must be an array"),
            (
                json!({"resamplingAlgorithm": "bilinear"}),
                "unknown resamplingAlgorithm",
            ),
            (
                json!({"resamplingAlgorithm": "lanczos"}),
                "not supported by this server",
            ),
            (json!({"usePredictor": "yes"}), "true or false"),
            (
                json!({"blocksize": 256}),
                "unknown cogParameters member 'blocksize'",
            ),
            (json!([1]), "must be an object"),
        ];
        for (value, needle) in cases {
            let err = CogParams::from_json(Some(&value)).unwrap_err().to_string();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn automatic_factors_stop_when_the_overview_fits_min_size() {
        let p = |min: u32| CogParams {
            overview_min_size: Some(min),
            ..CogParams::default()
        };
        // 2004 -> 1002 (fits 1024).
        assert_eq!(overview_factors(2004, 2004, &CogParams::default()), vec![2]);
        assert!(overview_factors(1000, 1000, &CogParams::default()).is_empty());
        // 1000 -> 500 -> 250 -> 125 (<= 128).
        assert_eq!(overview_factors(1000, 600, &p(128)), vec![2, 4, 8]);
        // Non-square: the long side decides.
        assert_eq!(overview_factors(100, 1000, &p(256)), vec![2, 4]);
        assert_eq!(overview_factors(3, 3, &p(1)), vec![2, 4]);
        let explicit = CogParams {
            overview_levels: Some(vec![2, 4, 64]),
            ..CogParams::default()
        };
        assert_eq!(overview_factors(40, 30, &explicit), vec![2, 4]);
    }

    #[test]
    fn average_and_nearest_and_mode_of_a_known_grid() {
        // 5x3 single band, values 10*y + x; factor 2 -> 3x2.
        let plane: Vec<u16> = (0..3)
            .flat_map(|y| (0..5).map(move |x| 10 * y + x))
            .collect();
        let (avg, w, h) = overview(&plane, 5, 3, 1, 2, Resampling::Average, None);
        assert_eq!((w, h), (3, 2));
        // Window (0..2, 0..2): 0,1,10,11 -> 5.5 -> 6; (4..5, 0..2): 4,14 -> 9;
        // (0..2, 2..3): 20,21 -> 20.5 -> 21; (4..5, 2..3): 24.
        assert_eq!(avg, vec![6, 8, 9, 21, 23, 24]);
        let (near, _, _) = overview(&plane, 5, 3, 1, 2, Resampling::Nearest, None);
        assert_eq!(near, vec![11, 13, 14, 21, 23, 24]);
        let (avg_nd, _, _) = overview(&plane, 5, 3, 1, 2, Resampling::Average, Some(0));
        assert_eq!(avg_nd[0], 7, "(1 + 10 + 11) / 3 without the nodata 0");
        let classes: Vec<u8> = vec![1, 1, 2, 3, 3, 2, 2, 3, 5, 5];
        let (m, w, h) = overview(&classes, 5, 2, 1, 2, Resampling::Mode, None);
        assert_eq!((w, h), (3, 1));
        // Windows: {1,1,2,2} -> 1 (first seen wins a tie); {2,3,3,5} -> 3; {3,5} -> 3.
        assert_eq!(m, vec![1, 3, 3]);
    }

    #[test]
    fn float_average_skips_nan_and_all_missing_gives_nodata() {
        let plane = vec![f32::NAN, 1.0, 3.0, f32::NAN, -9.0, -9.0, -9.0, -9.0];
        // Two bands of 2x2, factor 2 -> 1x1.
        let (avg, w, h) = overview(&plane, 2, 2, 2, 2, Resampling::Average, Some(-9.0));
        assert_eq!((w, h), (1, 1));
        assert_eq!(avg, vec![2.0, -9.0]);
    }
}
