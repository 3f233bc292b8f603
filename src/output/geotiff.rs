//! GeoTIFF and Cloud-Optimized GeoTIFF encoding: tiled, pixel-interleaved,
//! deflate- or zstd-compressed, optionally with a horizontal (2) or floating-point (3)
//! predictor.
//!
//! The container is written by [`super::tiffwrite`] (IFDs first, then tile data), so a
//! plain GeoTIFF is simply a COG without overviews and without GDAL's ghost area.
//!
//! Pixel-interleaved (PlanarConfiguration 1) because it is GDAL's and COG's default and
//! because the tiff crate's decoder reads only the first plane of planar files.

use rayon::prelude::*;

use super::cog::{self, CogParams};
use super::tiffwrite::{self, Image, Val};
use super::OutputError;
use crate::raster::{Georef, Raster, SampleBuffer};

/// Tile edge of plain GeoTIFFs in pixels; a multiple of 16 as the TIFF spec requires.
const TILE: usize = 256;

/// TIFF Compression value for zlib-wrapped deflate (what GDAL writes for COMPRESS=DEFLATE).
const COMPRESSION_DEFLATE: u16 = 8;
/// TIFF Compression value for zstd (libtiff's COMPRESSION_ZSTD, GDAL's COMPRESS=ZSTD).
const COMPRESSION_ZSTD: u16 = 50000;
const PHOTOMETRIC_MIN_IS_BLACK: u16 = 1;
const PLANAR_CHUNKY: u16 = 1;
const EXTRA_SAMPLE_UNSPECIFIED: u16 = 0;
const SUBFILE_REDUCED_RESOLUTION: u32 = 1;

const TAG_NEW_SUBFILE_TYPE: u16 = 254;
const TAG_IMAGE_WIDTH: u16 = 256;
const TAG_IMAGE_LENGTH: u16 = 257;
const TAG_BITS_PER_SAMPLE: u16 = 258;
const TAG_COMPRESSION: u16 = 259;
const TAG_PHOTOMETRIC: u16 = 262;
const TAG_SAMPLES_PER_PIXEL: u16 = 277;
const TAG_PLANAR_CONFIGURATION: u16 = 284;
const TAG_PREDICTOR: u16 = 317;
const TAG_TILE_WIDTH: u16 = 322;
const TAG_TILE_LENGTH: u16 = 323;
const TAG_EXTRA_SAMPLES: u16 = 338;
const TAG_SAMPLE_FORMAT: u16 = 339;
const TAG_MODEL_PIXEL_SCALE: u16 = 33550;
const TAG_MODEL_TIEPOINT: u16 = 33922;
const TAG_GEO_KEY_DIRECTORY: u16 = 34735;
const TAG_GDAL_NODATA: u16 = 42113;

const GEOKEY_MODEL_TYPE: u16 = 1024;
const GEOKEY_RASTER_TYPE: u16 = 1025;
const GEOKEY_GEOGRAPHIC_TYPE: u16 = 2048;
const GEOKEY_PROJECTED_CS_TYPE: u16 = 3072;
const MODEL_TYPE_PROJECTED: u16 = 1;
const MODEL_TYPE_GEOGRAPHIC: u16 = 2;
const RASTER_PIXEL_IS_AREA: u16 = 1;

/// Geographic (lat/lon) CRSs we may be asked for; everything else is treated as projected.
/// Only 4326 is used by the batch grids; the others are the common datum variants.
const GEOGRAPHIC_EPSG: [u32; 3] = [4326, 4258, 4269];

/// How to write a TIFF output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TiffOptions {
    /// Horizontal differencing before compression: predictor 2 for integer samples, 3 for
    /// FLOAT32. Smaller files for smooth data, readable by every libtiff-based reader.
    /// Ignored with `cog`, whose `use_predictor` decides.
    pub predictor: bool,
    /// Write a Cloud-Optimized GeoTIFF with these parameters (block size, overviews).
    pub cog: Option<CogParams>,
    /// Tile codec. The API has no field for it (batch-api.md §10.3), so it is a server
    /// setting; deflate, what the hosted service writes, is the default.
    pub compression: Compression,
}

/// TIFF tile compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// zlib deflate at level 6 (Compression 8); every TIFF reader has it.
    #[default]
    Deflate,
    /// Zstandard (Compression 50000) at `level` 1..=22: smaller and faster than deflate,
    /// read by GDAL >= 2.3 (libtiff 4.0.10) but not by every older tool.
    Zstd { level: i32 },
}

impl Compression {
    /// GDAL's default ZSTD_LEVEL.
    pub const DEFAULT_ZSTD_LEVEL: i32 = 9;

    /// Parses a server setting: `deflate`, `zstd` or `zstd:<level>` (case-insensitive).
    pub fn parse(text: &str) -> Result<Self, OutputError> {
        let text = text.trim().to_ascii_lowercase();
        let bad = || {
            OutputError::InvalidOption(format!(
                "TIFF compression {text:?}: expected deflate, zstd or zstd:<level 1..22>"
            ))
        };
        match text.split_once(':') {
            None if text == "deflate" => Ok(Compression::Deflate),
            None if text == "zstd" => Ok(Compression::Zstd {
                level: Self::DEFAULT_ZSTD_LEVEL,
            }),
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(level) if (1..=22).contains(&level) => Ok(Compression::Zstd { level }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// The server-wide choice: `TESSERA_TIFF_COMPRESSION` (see [`Compression::parse`]),
    /// read once; unset or invalid means deflate (an invalid value is logged, so a typo
    /// never stops the daemon from writing readable files).
    pub fn server_default() -> Self {
        static DEFAULT: std::sync::OnceLock<Compression> = std::sync::OnceLock::new();
        *DEFAULT.get_or_init(|| match std::env::var("TESSERA_TIFF_COMPRESSION") {
            Ok(v) if !v.trim().is_empty() => Compression::parse(&v).unwrap_or_else(|e| {
                tracing::warn!("{e}; writing deflate");
                Compression::Deflate
            }),
            _ => Compression::Deflate,
        })
    }

    fn tag(self) -> u16 {
        match self {
            Compression::Deflate => COMPRESSION_DEFLATE,
            Compression::Zstd { .. } => COMPRESSION_ZSTD,
        }
    }

    fn compress(self, raw: &[u8]) -> Result<Vec<u8>, OutputError> {
        match self {
            Compression::Deflate => deflate(raw),
            Compression::Zstd { level } => zstd::bulk::compress(raw, level)
                .map_err(|e| OutputError::Tiff(format!("zstd failed: {e}"))),
        }
    }
}

/// Encodes `raster` as a georeferenced GeoTIFF (256x256 tiles, deflate, no predictor).
///
/// `nodata`, when given, is written as the GDAL_NODATA tag and used to pad the partial tiles
/// at the right and bottom edges; it must be representable in the raster's sample type.
pub fn encode_geotiff(
    raster: &Raster,
    georef: &Georef,
    nodata: Option<f64>,
) -> Result<Vec<u8>, OutputError> {
    encode_tiff(raster, georef, nodata, &TiffOptions::default())
}

/// Encodes `raster` as a GeoTIFF or, with `options.cog`, a Cloud-Optimized GeoTIFF.
pub fn encode_tiff(
    raster: &Raster,
    georef: &Georef,
    nodata: Option<f64>,
    options: &TiffOptions,
) -> Result<Vec<u8>, OutputError> {
    encode_with(raster, georef, nodata, options, false)
}

/// `force_big` exists so tests can exercise the BigTIFF layout without 4 GiB of pixels.
#[cfg(test)]
pub(super) fn encode(
    raster: &Raster,
    georef: &Georef,
    nodata: Option<f64>,
    force_big: bool,
) -> Result<Vec<u8>, OutputError> {
    encode_with(raster, georef, nodata, &TiffOptions::default(), force_big)
}

pub(super) fn encode_with(
    raster: &Raster,
    georef: &Georef,
    nodata: Option<f64>,
    options: &TiffOptions,
    force_big: bool,
) -> Result<Vec<u8>, OutputError> {
    let layout = Layout::of(raster)?;
    let geo = GeoTags::new(georef)?;
    let nodata = nodata
        .map(|value| Nodata::new(value, &raster.data))
        .transpose()?;
    let plan = match &options.cog {
        Some(params) => {
            if matches!(raster.data, SampleBuffer::I8(_)) {
                return Err(OutputError::InvalidCog(
                    "INT8 samples cannot be written as a COG; use UINT8 or INT16".into(),
                ));
            }
            params.validate()?;
            Plan {
                block_w: params.block_x as usize,
                block_h: params.block_y as usize,
                factors: cog::overview_factors(layout.width, layout.height, params),
                resampling: params.resampling,
                predictor: params.use_predictor,
                compression: options.compression,
                cog_layout: true,
            }
        }
        None => Plan {
            block_w: TILE,
            block_h: TILE,
            factors: Vec::new(),
            resampling: cog::Resampling::Nearest,
            predictor: options.predictor,
            compression: options.compression,
            cog_layout: false,
        },
    };
    let images = match &raster.data {
        SampleBuffer::U8(v) => images(v, &layout, &geo, nodata.as_ref(), &plan, &raster.data),
        SampleBuffer::I8(v) => images(v, &layout, &geo, nodata.as_ref(), &plan, &raster.data),
        SampleBuffer::U16(v) => images(v, &layout, &geo, nodata.as_ref(), &plan, &raster.data),
        SampleBuffer::I16(v) => images(v, &layout, &geo, nodata.as_ref(), &plan, &raster.data),
        SampleBuffer::F32(v) => images(v, &layout, &geo, nodata.as_ref(), &plan, &raster.data),
    }?;
    Ok(tiffwrite::write(images, plan.cog_layout, force_big))
}

/// Tiling, overviews and predictor of one encode.
struct Plan {
    block_w: usize,
    block_h: usize,
    /// Overview decimation factors, increasing; empty for no overviews.
    factors: Vec<u32>,
    resampling: cog::Resampling,
    predictor: bool,
    compression: Compression,
    /// Ghost area and tile leaders/trailers (COG only).
    cog_layout: bool,
}

/// The full-resolution image and its overviews, tiled and compressed.
fn images<T: Sample>(
    planes: &[T],
    layout: &Layout,
    geo: &GeoTags,
    nodata: Option<&Nodata>,
    plan: &Plan,
    data: &SampleBuffer,
) -> Result<Vec<Image>, OutputError> {
    let fill = nodata.map_or_else(T::zero, |n| T::from_f64(n.value));
    let nodata_sample = nodata.map(|n| T::from_f64(n.value));
    let mut out = Vec::with_capacity(plan.factors.len() + 1);
    let full = Level {
        planes,
        width: layout.width,
        height: layout.height,
        bands: layout.bands,
    };
    out.push(image(&full, plan, fill, data, geo, nodata, false)?);
    for &factor in &plan.factors {
        let (ovr, width, height) = cog::overview(
            planes,
            layout.width,
            layout.height,
            layout.bands,
            factor as usize,
            plan.resampling,
            nodata_sample,
        );
        let level = Level {
            planes: &ovr,
            width,
            height,
            bands: layout.bands,
        };
        out.push(image(&level, plan, fill, data, geo, nodata, true)?);
    }
    Ok(out)
}

/// One raster level in planar layout.
struct Level<'a, T> {
    planes: &'a [T],
    width: usize,
    height: usize,
    bands: usize,
}

fn image<T: Sample>(
    level: &Level<T>,
    plan: &Plan,
    fill: T,
    data: &SampleBuffer,
    geo: &GeoTags,
    nodata: Option<&Nodata>,
    overview: bool,
) -> Result<Image, OutputError> {
    let bands = level.bands;
    let predictor = match (plan.predictor, T::FLOAT) {
        (false, _) => 1,
        (true, false) => 2,
        (true, true) => 3,
    };
    let mut tags = Vec::with_capacity(20);
    if overview {
        tags.push((
            TAG_NEW_SUBFILE_TYPE,
            Val::Long(vec![SUBFILE_REDUCED_RESOLUTION]),
        ));
    }
    // Layout::of checked that sizes and band counts fit their TIFF types.
    tags.push((TAG_IMAGE_WIDTH, Val::Long(vec![level.width as u32])));
    tags.push((TAG_IMAGE_LENGTH, Val::Long(vec![level.height as u32])));
    tags.push((TAG_BITS_PER_SAMPLE, Val::Short(vec![data.bits(); bands])));
    tags.push((TAG_COMPRESSION, Val::Short(vec![plan.compression.tag()])));
    tags.push((TAG_PHOTOMETRIC, Val::Short(vec![PHOTOMETRIC_MIN_IS_BLACK])));
    tags.push((TAG_SAMPLES_PER_PIXEL, Val::Short(vec![bands as u16])));
    tags.push((TAG_PLANAR_CONFIGURATION, Val::Short(vec![PLANAR_CHUNKY])));
    if predictor != 1 {
        tags.push((TAG_PREDICTOR, Val::Short(vec![predictor])));
    }
    tags.push((TAG_TILE_WIDTH, Val::Long(vec![plan.block_w as u32])));
    tags.push((TAG_TILE_LENGTH, Val::Long(vec![plan.block_h as u32])));
    if bands > 1 {
        // Without it libtiff warns that the sample count does not match MinIsBlack.
        tags.push((
            TAG_EXTRA_SAMPLES,
            Val::Short(vec![EXTRA_SAMPLE_UNSPECIFIED; bands - 1]),
        ));
    }
    tags.push((
        TAG_SAMPLE_FORMAT,
        Val::Short(vec![sample_format(data); bands]),
    ));
    if !overview {
        tags.push((TAG_MODEL_PIXEL_SCALE, Val::Double(geo.pixel_scale.to_vec())));
        tags.push((TAG_MODEL_TIEPOINT, Val::Double(geo.tiepoint.to_vec())));
        tags.push((TAG_GEO_KEY_DIRECTORY, Val::Short(geo.key_directory.clone())));
    }
    if let Some(nodata) = nodata {
        tags.push((TAG_GDAL_NODATA, Val::Ascii(nodata.text.clone())));
    }
    let tiles = compress_tiles(level, plan, fill, predictor)?;
    Ok(Image { tags, tiles })
}

/// Validated dimensions.
struct Layout {
    width: usize,
    height: usize,
    bands: usize,
}

impl Layout {
    fn of(raster: &Raster) -> Result<Self, OutputError> {
        let (width, height, bands) = (raster.width, raster.height, raster.bands);
        if width == 0 || height == 0 || bands == 0 {
            return Err(OutputError::InvalidRaster(format!(
                "{width}x{height} pixels with {bands} bands is empty"
            )));
        }
        if u32::try_from(width).is_err() || u32::try_from(height).is_err() {
            return Err(OutputError::InvalidRaster(format!(
                "{width}x{height} pixels exceeds the TIFF limit of {} per side",
                u32::MAX
            )));
        }
        if u16::try_from(bands).is_err() {
            return Err(OutputError::InvalidRaster(format!(
                "{bands} bands exceeds the TIFF limit of {}",
                u16::MAX
            )));
        }
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(bands));
        if expected != Some(raster.data.len()) {
            return Err(OutputError::InvalidRaster(format!(
                "{width}x{height} pixels x {bands} bands needs {} samples, buffer has {}",
                expected.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                raster.data.len()
            )));
        }
        Ok(Layout {
            width,
            height,
            bands,
        })
    }
}

/// The GeoTIFF georeferencing tags, computed and validated up front.
struct GeoTags {
    pixel_scale: [f64; 3],
    tiepoint: [f64; 6],
    key_directory: Vec<u16>,
}

impl GeoTags {
    fn new(georef: &Georef) -> Result<Self, OutputError> {
        let Georef {
            epsg,
            x_min,
            y_max,
            res_x,
            res_y,
        } = *georef;
        if !(x_min.is_finite() && y_max.is_finite()) {
            return Err(OutputError::InvalidGeoref(format!(
                "upper-left corner ({x_min}, {y_max}) is not finite"
            )));
        }
        if !(res_x.is_finite() && res_y.is_finite() && res_x > 0.0 && res_y > 0.0) {
            return Err(OutputError::InvalidGeoref(format!(
                "pixel size ({res_x}, {res_y}) must be finite and positive"
            )));
        }
        // 32767 is GeoTIFF's "user-defined" marker; larger codes do not fit a SHORT key.
        let code = u16::try_from(epsg)
            .ok()
            .filter(|c| (1..32767).contains(c))
            .ok_or(OutputError::UnsupportedCrs(epsg))?;
        let (model, crs_key) = if GEOGRAPHIC_EPSG.contains(&epsg) {
            (MODEL_TYPE_GEOGRAPHIC, GEOKEY_GEOGRAPHIC_TYPE)
        } else {
            (MODEL_TYPE_PROJECTED, GEOKEY_PROJECTED_CS_TYPE)
        };
        // Header: KeyDirectoryVersion 1, KeyRevision 1.0, key count; then sorted keys of
        // (id, location 0 = value inline, count 1, value).
        let key_directory = vec![
            1,
            1,
            0,
            3,
            GEOKEY_MODEL_TYPE,
            0,
            1,
            model,
            GEOKEY_RASTER_TYPE,
            0,
            1,
            RASTER_PIXEL_IS_AREA,
            crs_key,
            0,
            1,
            code,
        ];
        Ok(GeoTags {
            pixel_scale: [res_x, res_y, 0.0],
            tiepoint: [0.0, 0.0, 0.0, x_min, y_max, 0.0],
            key_directory,
        })
    }
}

/// A nodata value checked against the sample type.
struct Nodata {
    /// The GDAL_NODATA text.
    text: String,
    /// The value, checked to be representable in the sample type; pads edge tiles.
    value: f64,
}

impl Nodata {
    fn new(value: f64, data: &SampleBuffer) -> Result<Self, OutputError> {
        let invalid = || OutputError::InvalidNodata {
            value,
            sample_type: sample_type_name(data),
        };
        let integral = value.is_finite() && value.fract() == 0.0;
        match data {
            SampleBuffer::U8(_) if integral && (0.0..=255.0).contains(&value) => {}
            SampleBuffer::I8(_) if integral && (-128.0..=127.0).contains(&value) => {}
            SampleBuffer::U16(_) if integral && (0.0..=65535.0).contains(&value) => {}
            SampleBuffer::I16(_) if integral && (-32768.0..=32767.0).contains(&value) => {}
            // Values like 0.1 have no exact f32; GDAL compares against the nearest one too.
            SampleBuffer::F32(_) if !value.is_finite() || value.abs() <= f64::from(f32::MAX) => {}
            _ => return Err(invalid()),
        }
        Ok(Nodata {
            text: nodata_text(value),
            value,
        })
    }
}

/// Formats nodata the way GDAL parses it back (strtod): integers without a fraction,
/// "nan", and otherwise the shortest round-tripping form.
fn nodata_text(value: f64) -> String {
    if value.is_nan() {
        "nan".to_string()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:?}")
    }
}

fn sample_type_name(data: &SampleBuffer) -> &'static str {
    match data {
        SampleBuffer::U8(_) => "UINT8",
        SampleBuffer::I8(_) => "INT8",
        SampleBuffer::U16(_) => "UINT16",
        SampleBuffer::I16(_) => "INT16",
        SampleBuffer::F32(_) => "FLOAT32",
    }
}

/// TIFF SampleFormat: 1 unsigned integer, 2 signed integer, 3 IEEE float.
fn sample_format(data: &SampleBuffer) -> u16 {
    match data {
        SampleBuffer::U8(_) | SampleBuffer::U16(_) => 1,
        SampleBuffer::I8(_) | SampleBuffer::I16(_) => 2,
        SampleBuffer::F32(_) => 3,
    }
}

/// A sample type we can tile, predict, resample and write (little-endian).
pub(super) trait Sample: Copy + PartialEq + Send + Sync + 'static {
    const FLOAT: bool;
    const SIZE: usize;
    fn zero() -> Self;
    /// Only called with values checked to be representable (nodata) or computed from
    /// samples of this type (averages), so the saturating `as` never changes a value
    /// beyond rounding.
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `self - prev` with wrap-around: TIFF predictor 2.
    fn wrapping_diff(self, prev: Self) -> Self;
    fn put_le(self, out: &mut Vec<u8>);
    fn put_be(self, out: &mut Vec<u8>);
}

macro_rules! int_sample {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            const FLOAT: bool = false;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn zero() -> Self { 0 }
            fn from_f64(v: f64) -> Self { v.round() as $t }
            fn to_f64(self) -> f64 { f64::from(self) }
            fn wrapping_diff(self, prev: Self) -> Self { self.wrapping_sub(prev) }
            fn put_le(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
            fn put_be(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_be_bytes()) }
        }
    )*};
}
int_sample!(u8, i8, u16, i16);

impl Sample for f32 {
    const FLOAT: bool = true;
    const SIZE: usize = 4;
    fn zero() -> Self {
        0.0
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn wrapping_diff(self, prev: Self) -> Self {
        self - prev
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
    fn put_be(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes())
    }
}

/// Compresses every tile of a level, row-major as TileOffsets requires; tiles are
/// independent, so they are compressed in parallel.
fn compress_tiles<T: Sample>(
    level: &Level<T>,
    plan: &Plan,
    fill: T,
    predictor: u16,
) -> Result<Vec<Vec<u8>>, OutputError> {
    let across = level.width.div_ceil(plan.block_w);
    let down = level.height.div_ceil(plan.block_h);
    (0..across * down)
        .into_par_iter()
        .map(|index| {
            let raw = tile_bytes(level, plan, fill, predictor, index % across, index / across);
            plan.compression.compress(&raw)
        })
        .collect()
}

/// The uncompressed bytes of one tile, padded with `fill` past the raster's edges, with
/// the predictor applied row by row as libtiff does (horDiff / fpDiff).
fn tile_bytes<T: Sample>(
    level: &Level<T>,
    plan: &Plan,
    fill: T,
    predictor: u16,
    tile_col: usize,
    tile_row: usize,
) -> Vec<u8> {
    let (bw, bh, bands) = (plan.block_w, plan.block_h, level.bands);
    let plane_len = level.width * level.height;
    let row_samples = bw * bands;
    let mut raw = Vec::with_capacity(bw * bh * bands * T::SIZE);
    let mut row: Vec<T> = Vec::with_capacity(row_samples);
    let mut be = Vec::with_capacity(row_samples * T::SIZE);
    for y in tile_row * bh..(tile_row + 1) * bh {
        row.clear();
        for x in tile_col * bw..(tile_col + 1) * bw {
            if x < level.width && y < level.height {
                let pixel = y * level.width + x;
                for band in 0..bands {
                    row.push(level.planes[band * plane_len + pixel]);
                }
            } else {
                row.extend(std::iter::repeat_n(fill, bands));
            }
        }
        match predictor {
            2 => {
                for i in (bands..row_samples).rev() {
                    row[i] = row[i].wrapping_diff(row[i - bands]);
                }
                row.iter().for_each(|s| s.put_le(&mut raw));
            }
            3 => {
                // Big-endian bytes regrouped by significance, then byte-wise differences
                // with a stride of one pixel's samples.
                be.clear();
                row.iter().for_each(|s| s.put_be(&mut be));
                let start = raw.len();
                for byte in 0..T::SIZE {
                    for i in 0..row_samples {
                        raw.push(be[i * T::SIZE + byte]);
                    }
                }
                let bytes = &mut raw[start..];
                for i in (bands..bytes.len()).rev() {
                    bytes[i] = bytes[i].wrapping_sub(bytes[i - bands]);
                }
            }
            _ => row.iter().for_each(|s| s.put_le(&mut raw)),
        }
    }
    raw
}

/// zlib-wrapped DEFLATE at level 6 (GDAL's default) with libdeflate, which GDAL also
/// uses: the same format every TIFF reader knows, in about two thirds of zlib's time.
fn deflate(raw: &[u8]) -> Result<Vec<u8>, OutputError> {
    let mut c = libdeflater::Compressor::new(
        libdeflater::CompressionLvl::new(6)
            .map_err(|e| OutputError::Tiff(format!("deflate level: {e:?}")))?,
    );
    let mut out = vec![0u8; c.zlib_compress_bound(raw.len())];
    let n = c
        .zlib_compress(raw, &mut out)
        .map_err(|e| OutputError::Tiff(format!("deflate failed: {e}")))?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod cog_tests;
#[cfg(test)]
mod gdal_tests;
#[cfg(test)]
mod tests;
