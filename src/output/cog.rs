//! Cloud-Optimized GeoTIFF parameters (`output.cogParameters`, batch-api.md §10.3) and the
//! overview pyramid: which decimation factors, and how pixels are resampled. Pure.

use serde_json::Value;

use super::geotiff::Sample;
use super::OutputError;

/// Default COG block edge of the hosted service (GDAL's own default is 512).
pub const DEFAULT_BLOCK: u32 = 1024;

/// Overview resampling: every `resamplingAlgorithm` of batch-api.md §10.3, computed as
/// GDAL's overview code does (`gdaladdo -r <name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resampling {
    Nearest,
    Average,
    Mode,
    /// GDAL's binomial 3x3 / 5x5 / 7x7 matrix (by factor <= 2, <= 4, larger).
    Gauss,
    /// Keys' cubic convolution, a = -0.5, radius 2 (scaled by the factor).
    Cubic,
    /// Cubic B-spline, radius 2 (scaled by the factor); smooths, never overshoots.
    CubicSpline,
    /// Lanczos windowed sinc, radius 3 (scaled by the factor).
    Lanczos,
    /// Averages magnitude and phase of complex samples; the batch sample types are all
    /// real, for which it is the plain average (a real number's phase is 0 or pi, and
    /// the mean of magnitudes with the mean phase would flip signs arbitrarily).
    AverageMagphase,
}

impl Resampling {
    pub fn parse(name: &str) -> Result<Self, OutputError> {
        match name.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Resampling::Nearest),
            "average" => Ok(Resampling::Average),
            "mode" => Ok(Resampling::Mode),
            "gauss" => Ok(Resampling::Gauss),
            "cubic" => Ok(Resampling::Cubic),
            "cubicspline" => Ok(Resampling::CubicSpline),
            "lanczos" => Ok(Resampling::Lanczos),
            "average_magphase" => Ok(Resampling::AverageMagphase),
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
    let kernel = match resampling {
        Resampling::Cubic => Some((cubic as fn(f64) -> f64, 2.0)),
        Resampling::CubicSpline => Some((cubic_spline as fn(f64) -> f64, 2.0)),
        Resampling::Lanczos => Some((lanczos as fn(f64) -> f64, 3.0)),
        _ => None,
    };
    if let Some((kernel, radius)) = kernel {
        let xs = kernel_weights(width, factor, kernel, radius);
        let ys = kernel_weights(height, factor, kernel, radius);
        let out = convolve(planes, width, height, bands, &xs, &ys, nodata);
        return (out, ow, oh);
    }
    if resampling == Resampling::Gauss {
        let out = gauss(planes, width, height, bands, factor, nodata);
        return (out, ow, oh);
    }
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
                    Resampling::Average
                    | Resampling::AverageMagphase
                    | Resampling::Gauss
                    | Resampling::Cubic
                    | Resampling::CubicSpline
                    | Resampling::Lanczos => {
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

/// Keys' cubic convolution kernel with a = -0.5 (GDAL's CubicKernel).
pub fn cubic(x: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        (1.5 * x - 2.5) * x * x + 1.0
    } else if x < 2.0 {
        ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    } else {
        0.0
    }
}

/// Cubic B-spline kernel (GDAL's CubicSplineKernel); weights sum to 1 without negatives.
pub fn cubic_spline(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        0.5 * x * x * x - x * x + 2.0 / 3.0
    } else if x < 2.0 {
        (2.0 - x).powi(3) / 6.0
    } else {
        0.0
    }
}

/// Lanczos-3 kernel: sinc(x) * sinc(x / 3) for |x| < 3.
pub fn lanczos(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        1.0
    } else if x < 3.0 {
        let px = std::f64::consts::PI * x;
        3.0 * px.sin() * (px / 3.0).sin() / (px * px)
    } else {
        0.0
    }
}

/// Source weights of one overview row or column: for output pixel `i` the first source
/// index and the weights of `first..first + weights.len()`, clipped to `0..len`.
type Weights = Vec<(usize, Vec<f64>)>;

/// Source weights of a kernel stretched by `factor`, as GDAL's convolution resampler does
/// for overviews: output pixel `i` is centred at `(i + 0.5) * factor` source pixels and
/// source pixel `j` weighs `kernel((j + 0.5 - centre) / factor)`. Not normalised here
/// (nodata changes which weights count).
fn kernel_weights(len: usize, factor: usize, kernel: fn(f64) -> f64, radius: f64) -> Weights {
    let f = factor as f64;
    (0..len.div_ceil(factor))
        .map(|i| {
            let centre = (i as f64 + 0.5) * f;
            let start = (centre - radius * f + 0.5).floor().max(0.0) as usize;
            let stop = ((centre + radius * f + 0.5).floor() as usize).min(len);
            let weights = (start..stop)
                .map(|j| kernel((j as f64 + 0.5 - centre) / f))
                .collect();
            (start, weights)
        })
        .collect()
}

/// GDAL's gauss matrices (overview.cpp) are outer products of binomial rows: 3x3 for
/// factors <= 2, 5x5 for <= 4, else 7x7. (The 5x5 one is [1 4 6 4 1]^2 / 256, not the
/// 273-sum "Gaussian" table: the comparison with `gdaladdo -r gauss` in codec_tests
/// tells them apart.)
const GAUSS_ROWS: [&[f64]; 3] = [
    &[1., 2., 1.],
    &[1., 4., 6., 4., 1.],
    &[1., 6., 15., 20., 15., 6., 1.],
];

/// The gauss matrix for `factor`, row-major, and its edge.
fn gauss_matrix(factor: usize) -> (Vec<f64>, usize) {
    let row = match factor {
        0..=2 => GAUSS_ROWS[0],
        3..=4 => GAUSS_ROWS[1],
        _ => GAUSS_ROWS[2],
    };
    let matrix = row
        .iter()
        .flat_map(|a| row.iter().map(move |b| a * b))
        .collect();
    (matrix, row.len())
}

/// The windows of GDAL's gauss overview (GDALResampleChunk_Gauss) along one axis: for
/// output pixel `i`, the first source index, the matrix index it maps to, and how many
/// source pixels. GDAL takes the source span `i*f ..= (i+1)*f` (cut at the edge),
/// centres the `dim`-wide matrix on its middle pixel and cuts it at the image edge.
fn gauss_windows(len: usize, factor: usize, dim: usize) -> Vec<(usize, usize, usize)> {
    (0..len.div_ceil(factor))
        .map(|i| {
            let off = i * factor;
            // The span is cut at the image edge first, so a last, partial output pixel
            // still covers at least its own source pixels.
            let size = ((i + 1) * factor + 1).min(len) - off;
            let first = (off + size / 2) as isize - (dim / 2) as isize;
            let shift = first.min(0).unsigned_abs();
            let start = first.max(0) as usize;
            let count = (dim - shift).min(len.saturating_sub(start));
            (start, shift, count)
        })
        .collect()
}

/// Weighted mean over each output pixel's window, leaving out nodata and NaN samples and
/// normalising by the weights that counted; a window with nothing (or weights summing to
/// ~0) yields nodata. `xs`/`ys` give each output column's/row's first source index and
/// count; `weight(i, j, dx, dy)` the weight of source `(x0 + dx, y0 + dy)` for output
/// `(i, j)`.
#[allow(clippy::too_many_arguments)]
fn weighted<T: Sample>(
    planes: &[T],
    width: usize,
    height: usize,
    bands: usize,
    xs: &[(usize, usize)],
    ys: &[(usize, usize)],
    nodata: Option<T>,
    weight: impl Fn(usize, usize, usize, usize) -> f64,
) -> Vec<T> {
    let plane_len = width * height;
    let is_missing = |v: T| Some(v) == nodata || v.to_f64().is_nan();
    let mut out = Vec::with_capacity(xs.len() * ys.len() * bands);
    for band in 0..bands {
        let plane = &planes[band * plane_len..(band + 1) * plane_len];
        for (j, &(y0, ny)) in ys.iter().enumerate() {
            for (i, &(x0, nx)) in xs.iter().enumerate() {
                let (mut sum, mut total) = (0.0f64, 0.0f64);
                for dy in 0..ny {
                    let row = &plane[(y0 + dy) * width + x0..][..nx];
                    for (dx, &v) in row.iter().enumerate() {
                        if !is_missing(v) {
                            let w = weight(i, j, dx, dy);
                            sum += w * v.to_f64();
                            total += w;
                        }
                    }
                }
                out.push(if total.abs() < 1e-12 {
                    missing(nodata)
                } else {
                    T::from_f64(sum / total)
                });
            }
        }
    }
    out
}

fn convolve<T: Sample>(
    planes: &[T],
    width: usize,
    height: usize,
    bands: usize,
    xs: &Weights,
    ys: &Weights,
    nodata: Option<T>,
) -> Vec<T> {
    let span =
        |w: &Weights| -> Vec<(usize, usize)> { w.iter().map(|(s, v)| (*s, v.len())).collect() };
    weighted(
        planes,
        width,
        height,
        bands,
        &span(xs),
        &span(ys),
        nodata,
        |i, j, dx, dy| xs[i].1[dx] * ys[j].1[dy],
    )
}

fn gauss<T: Sample>(
    planes: &[T],
    width: usize,
    height: usize,
    bands: usize,
    factor: usize,
    nodata: Option<T>,
) -> Vec<T> {
    let (matrix, dim) = gauss_matrix(factor);
    let xs = gauss_windows(width, factor, dim);
    let ys = gauss_windows(height, factor, dim);
    let span = |w: &[(usize, usize, usize)]| -> Vec<(usize, usize)> {
        w.iter().map(|&(s, _, n)| (s, n)).collect()
    };
    weighted(
        planes,
        width,
        height,
        bands,
        &span(&xs),
        &span(&ys),
        nodata,
        |i, j, dx, dy| matrix[(dy + ys[j].1) * dim + dx + xs[i].1],
    )
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

    #[test]
    fn every_listed_algorithm_parses() {
        let cases = [
            ("nearest", Resampling::Nearest),
            ("average", Resampling::Average),
            ("gauss", Resampling::Gauss),
            ("cubic", Resampling::Cubic),
            ("CUBICSPLINE", Resampling::CubicSpline),
            ("lanczos", Resampling::Lanczos),
            ("average_magphase", Resampling::AverageMagphase),
            ("mode", Resampling::Mode),
        ];
        for (name, want) in cases {
            assert_eq!(Resampling::parse(name).unwrap(), want, "{name}");
        }
        for name in ["bilinear", "rms", "", "cubic spline"] {
            let err = Resampling::parse(name).unwrap_err().to_string();
            assert!(err.contains("unknown resamplingAlgorithm"), "{name}: {err}");
        }
    }

    #[test]
    fn kernels_at_hand_computed_points() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Keys a = -0.5: 1 at 0, 0 at integers, (1.5x - 2.5)x^2 + 1 inside, outer lobe.
        assert!(close(cubic(0.0), 1.0) && close(cubic(1.0), 0.0) && close(cubic(2.0), 0.0));
        assert!(close(cubic(0.5), 0.5625) && close(cubic(-0.5), 0.5625));
        assert!(close(cubic(1.5), -0.0625));
        assert!(close(cubic(0.25), 0.8671875) && close(cubic(1.25), -0.0703125));
        // B-spline: 2/3 at 0, 1/6 at 1, 23/48 at 0.5, 1/48 at 1.5.
        assert!(close(cubic_spline(0.0), 2.0 / 3.0) && close(cubic_spline(1.0), 1.0 / 6.0));
        assert!(close(cubic_spline(0.5), 23.0 / 48.0) && close(cubic_spline(-1.5), 1.0 / 48.0));
        assert!(close(cubic_spline(2.0), 0.0));
        // Lanczos-3: 1 at 0, zero crossings at integers, 6/pi^2 at 0.5, nothing past 3.
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        assert!(close(lanczos(0.0), 1.0) && lanczos(1.0).abs() < 1e-15);
        assert!(close(lanczos(0.5), 6.0 / pi2) && close(lanczos(-0.5), 6.0 / pi2));
        assert!(close(lanczos(3.0), 0.0) && close(lanczos(4.2), 0.0));
    }

    const KERNELS: [Resampling; 5] = [
        Resampling::Gauss,
        Resampling::Cubic,
        Resampling::CubicSpline,
        Resampling::Lanczos,
        Resampling::AverageMagphase,
    ];

    #[test]
    fn every_kernel_keeps_a_constant_image_constant() {
        let plane = vec![37u16; 13 * 9];
        for r in KERNELS {
            for factor in [2, 3, 4, 8] {
                let (out, w, h) = overview(&plane, 13, 9, 1, factor, r, None);
                assert_eq!((w, h), (13usize.div_ceil(factor), 9usize.div_ceil(factor)));
                assert!(out.iter().all(|&v| v == 37), "{r:?} x{factor}: {out:?}");
            }
        }
    }

    #[test]
    fn symmetric_kernels_reproduce_a_ramp_at_the_window_centre() {
        // v = x on 32 columns; factor 2: output i is centred between source 2i and 2i+1,
        // so every symmetric, normalised kernel gives 2i + 0.5 away from the edges.
        let plane: Vec<f32> = (0..2).flat_map(|_| (0..32).map(|x| x as f32)).collect();
        for r in [
            Resampling::Cubic,
            Resampling::CubicSpline,
            Resampling::Lanczos,
        ] {
            let (out, w, _) = overview(&plane, 32, 2, 1, 2, r, None);
            for (i, got) in out.iter().enumerate().take(w - 3).skip(3) {
                let want = 2.0 * i as f32 + 0.5;
                assert!((got - want).abs() < 1e-4, "{r:?} [{i}] {got} != {want}");
            }
        }
        // Gauss centres its 3-wide matrix on source 2i+1 (GDAL's window), so it gives 2i+1.
        let (out, _, _) = overview(&plane, 32, 2, 1, 2, Resampling::Gauss, None);
        assert_eq!(out[5], 11.0);
    }

    #[test]
    fn cubic_of_an_impulse_by_hand() {
        // One row of 8 zeros with 16 at x = 3; factor 2. Output 1 is centred at 3.0: its
        // window is source 0..=6 at offsets -1.25 .. 1.75 (in output pixels), weights
        // -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375
        // (sum 259/128); the impulse sits at +0.25: 16 * 0.8671875 / (259/128) = 48/7.
        let mut plane = vec![0f32; 8];
        plane[3] = 16.0;
        let (out, w, h) = overview(&plane, 8, 1, 1, 2, Resampling::Cubic, None);
        assert_eq!((w, h), (4, 1));
        assert!((f64::from(out[1]) - 48.0 / 7.0).abs() < 1e-5, "{out:?}");
        // The outer lobe is negative: output 3 (centre 7, offset (3.5 - 7) / 2 = -1.75) sees
        // 16 * cubic(1.75) / (sum of its clipped weights) < 0.
        assert!(out[3] < 0.0, "{out:?}");
    }

    #[test]
    fn gauss_matrix_clipped_at_the_edge_by_hand() {
        // 4x4, v = 10y + x, factor 2 -> 2x2. Output (0,0): 3x3 matrix [1 2 1]^T[1 2 1] over
        // source 0..3 x 0..3, centred on (1,1) -> 11. Output (1,1): the matrix starts at
        // (2,2) and is cut to 2x2: (22*1 + 23*2 + 32*2 + 33*4) / 9 = 264/9 = 29.33 -> 29.
        let plane: Vec<u16> = (0..4)
            .flat_map(|y| (0..4).map(move |x| 10 * y + x))
            .collect();
        let (out, w, h) = overview(&plane, 4, 4, 1, 2, Resampling::Gauss, None);
        assert_eq!((w, h), (2, 2));
        assert_eq!(out[0], 11);
        assert_eq!(out[3], 29);
        // Output (1,0): x 2..4 (weights 1,2), y 0..3 (1,2,1):
        // rows y=0: 2*1+3*2=8, y=1: 12+26=38 (x2), y=2: 22+46=68 -> (8+76+68)/12 = 12.67 -> 13.
        assert_eq!(out[1], 13);
        // Binomial matrices: 5x5 (factor 4) has centre 6 * 6 of 16 * 16.
        let (m, dim) = gauss_matrix(4);
        assert_eq!((dim, m[12], m.iter().sum::<f64>()), (5, 36.0, 256.0));
        let (m, dim) = gauss_matrix(8);
        assert_eq!((dim, m[24], m.iter().sum::<f64>()), (7, 400.0, 4096.0));
    }

    #[test]
    fn kernels_leave_out_nodata_and_give_nodata_for_empty_windows() {
        // 4x2 float: left half nodata (-1), right half 5.0; factor 2 -> 2x1. Output 0's
        // kernel reaches the right half (radius 2 x 2 = 4 pixels) so it is 5.0 from the
        // valid pixels only; with everything nodata the result is nodata.
        let plane = vec![-1.0f32, -1.0, 5.0, 5.0, -1.0, -1.0, 5.0, 5.0];
        for r in [
            Resampling::Cubic,
            Resampling::CubicSpline,
            Resampling::Lanczos,
        ] {
            let (out, _, _) = overview(&plane, 4, 2, 1, 2, r, Some(-1.0));
            assert_eq!(out, vec![5.0, 5.0], "{r:?}");
        }
        let (out, _, _) = overview(&plane, 4, 2, 1, 2, Resampling::Gauss, Some(-1.0));
        assert_eq!(out, vec![5.0, 5.0]);
        let empty = vec![-1.0f32; 8];
        for r in KERNELS {
            let (out, _, _) = overview(&empty, 4, 2, 1, 2, r, Some(-1.0));
            assert_eq!(out, vec![-1.0, -1.0], "{r:?}");
        }
        let nan = vec![f32::NAN; 8];
        let (out, _, _) = overview(&nan, 4, 2, 1, 2, Resampling::Lanczos, None);
        assert!(out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn integer_overshoot_saturates() {
        // A 0/255 step: cubic and lanczos overshoot past 255 and below 0; u8 clamps.
        let plane: Vec<u8> = (0..16).map(|x| if x < 8 { 0 } else { 255 }).collect();
        // Cubic by hand (full windows weigh 2.0 in total): output 2 (centre 5) sees 255
        // only at +1.75: 255 * -0.0234375 / 2 = -2.99 -> 0; output 3 (centre 7):
        // 255 * (0.2265625 - 0.0703125 - 0.0234375) / 2 = 16.93 -> 17; output 4 (centre
        // 9): 255 * (2 - 0.1328125) / 2 = 238.07 -> 238; output 5 (centre 11) misses only
        // the -0.0234375 tap: 255 * 2.0234375 / 2 = 258 -> 255.
        let (out, _, _) = overview(&plane, 16, 1, 1, 2, Resampling::Cubic, None);
        assert_eq!(out, vec![0, 0, 0, 17, 238, 255, 255, 255]);
        let (out, _, _) = overview(&plane, 16, 1, 1, 2, Resampling::Lanczos, None);
        assert_eq!((out[0], out[7]), (0, 255));
    }
}
