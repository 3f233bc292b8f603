//! GeoTIFF encoding: tiled (256x256), pixel-interleaved, deflate-compressed.
//!
//! The tiff crate's high-level `ImageEncoder` only knows fixed colour types (gray, RGB, ...),
//! so it cannot write e.g. 2- or 13-band rasters. We use its low-level `DirectoryEncoder`
//! instead (header, IFD layout, tag ordering and offsets stay the crate's job), compress
//! the tiles ourselves with flate2 and write every tag explicitly.
//!
//! Pixel-interleaved (PlanarConfiguration 1) because it is GDAL's and COG's default and
//! because the tiff crate's decoder reads only the first plane of planar files.
//! Tiled because COG output (a later step) requires tiles, and GDAL reads tiles faster.

use std::io::{Cursor, Write};

use flate2::write::ZlibEncoder;
use tiff::encoder::{TiffEncoder, TiffKind, TiffKindBig, TiffKindStandard};
use tiff::tags::Tag;

use super::OutputError;
use crate::raster::{Georef, Raster, SampleBuffer};

/// Tile edge in pixels; a multiple of 16 as the TIFF spec requires.
const TILE: usize = 256;

/// TIFF Compression value for zlib-wrapped deflate (what GDAL writes for COMPRESS=DEFLATE).
const COMPRESSION_DEFLATE: u16 = 8;
const PHOTOMETRIC_MIN_IS_BLACK: u16 = 1;
const PLANAR_CHUNKY: u16 = 1;
const EXTRA_SAMPLE_UNSPECIFIED: u16 = 0;

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

/// Classic TIFF offsets are 32-bit; above this many bytes of tile data we switch to BigTIFF.
/// The margin leaves room for the IFD and tag arrays written after the tiles.
const CLASSIC_TIFF_LIMIT: u64 = u32::MAX as u64 - (16 << 20);

/// Encodes `raster` as a georeferenced GeoTIFF.
///
/// `nodata`, when given, is written as the GDAL_NODATA tag and used to pad the partial tiles
/// at the right and bottom edges; it must be representable in the raster's sample type.
pub fn encode_geotiff(
    raster: &Raster,
    georef: &Georef,
    nodata: Option<f64>,
) -> Result<Vec<u8>, OutputError> {
    encode(raster, georef, nodata, false)
}

/// `force_big` exists so tests can exercise the BigTIFF layout without 4 GiB of pixels.
pub(super) fn encode(
    raster: &Raster,
    georef: &Georef,
    nodata: Option<f64>,
    force_big: bool,
) -> Result<Vec<u8>, OutputError> {
    let layout = Layout::of(raster)?;
    let geo = GeoTags::new(georef)?;
    let nodata = nodata
        .map(|value| Nodata::new(value, &raster.data))
        .transpose()?;
    let tiles = compress_tiles(raster, &layout, nodata.as_ref())?;
    let tile_bytes: u64 = tiles.iter().map(|t| t.len() as u64).sum();
    let meta = Meta {
        layout: &layout,
        geo: &geo,
        data: &raster.data,
        nodata: nodata.as_ref(),
    };
    if force_big || tile_bytes > CLASSIC_TIFF_LIMIT {
        assemble::<TiffKindBig>(tiles, &meta)
    } else {
        assemble::<TiffKindStandard>(tiles, &meta)
    }
}

/// Validated dimensions.
struct Layout {
    width: usize,
    height: usize,
    bands: usize,
    tiles_across: usize,
    tiles_down: usize,
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
            tiles_across: width.div_ceil(TILE),
            tiles_down: height.div_ceil(TILE),
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
    /// Native-endian bytes of one sample holding the value, used to pad edge tiles.
    sample: Vec<u8>,
}

impl Nodata {
    fn new(value: f64, data: &SampleBuffer) -> Result<Self, OutputError> {
        let invalid = || OutputError::InvalidNodata {
            value,
            sample_type: sample_type_name(data),
        };
        let integral = value.is_finite() && value.fract() == 0.0;
        let sample = match data {
            SampleBuffer::U8(_) if integral && (0.0..=255.0).contains(&value) => {
                (value as u8).to_ne_bytes().to_vec()
            }
            SampleBuffer::I8(_) if integral && (-128.0..=127.0).contains(&value) => {
                (value as i8).to_ne_bytes().to_vec()
            }
            SampleBuffer::U16(_) if integral && (0.0..=65535.0).contains(&value) => {
                (value as u16).to_ne_bytes().to_vec()
            }
            SampleBuffer::I16(_) if integral && (-32768.0..=32767.0).contains(&value) => {
                (value as i16).to_ne_bytes().to_vec()
            }
            // Values like 0.1 have no exact f32; GDAL compares against the nearest one too.
            SampleBuffer::F32(_) if !value.is_finite() || value.abs() <= f64::from(f32::MAX) => {
                (value as f32).to_ne_bytes().to_vec()
            }
            _ => return Err(invalid()),
        };
        Ok(Nodata {
            text: nodata_text(value),
            sample,
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

/// A sample that can be written in the file's (native) byte order.
trait NativeBytes: Copy {
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! native_bytes {
    ($($t:ty),*) => {$(
        impl NativeBytes for $t {
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_ne_bytes());
            }
        }
    )*};
}
native_bytes!(u8, i8, u16, i16, f32);

/// Compresses every tile, row-major, as the TileOffsets order requires.
fn compress_tiles(
    raster: &Raster,
    layout: &Layout,
    nodata: Option<&Nodata>,
) -> Result<Vec<Vec<u8>>, OutputError> {
    match &raster.data {
        SampleBuffer::U8(v) => compress_typed(v, layout, nodata),
        SampleBuffer::I8(v) => compress_typed(v, layout, nodata),
        SampleBuffer::U16(v) => compress_typed(v, layout, nodata),
        SampleBuffer::I16(v) => compress_typed(v, layout, nodata),
        SampleBuffer::F32(v) => compress_typed(v, layout, nodata),
    }
}

fn compress_typed<T: NativeBytes>(
    planes: &[T],
    layout: &Layout,
    nodata: Option<&Nodata>,
) -> Result<Vec<Vec<u8>>, OutputError> {
    let sample_size = std::mem::size_of::<T>();
    let fill: Vec<u8> = match nodata {
        Some(n) => n.sample.clone(),
        None => vec![0; sample_size],
    };
    let plane_len = layout.width * layout.height;
    let mut tiles = Vec::with_capacity(layout.tiles_across * layout.tiles_down);
    let mut raw = Vec::with_capacity(TILE * TILE * layout.bands * sample_size);
    for tile_row in 0..layout.tiles_down {
        for tile_col in 0..layout.tiles_across {
            raw.clear();
            for y in tile_row * TILE..(tile_row + 1) * TILE {
                for x in tile_col * TILE..(tile_col + 1) * TILE {
                    if x < layout.width && y < layout.height {
                        let pixel = y * layout.width + x;
                        for band in 0..layout.bands {
                            planes[band * plane_len + pixel].put(&mut raw);
                        }
                    } else {
                        for _ in 0..layout.bands {
                            raw.extend_from_slice(&fill);
                        }
                    }
                }
            }
            tiles.push(deflate(&raw)?);
        }
    }
    Ok(tiles)
}

fn deflate(raw: &[u8]) -> Result<Vec<u8>, OutputError> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::default(),
    );
    encoder
        .write_all(raw)
        .and_then(|()| encoder.finish())
        .map_err(|e| OutputError::Tiff(format!("deflate failed: {e}")))
}

struct Meta<'a> {
    layout: &'a Layout,
    geo: &'a GeoTags,
    data: &'a SampleBuffer,
    nodata: Option<&'a Nodata>,
}

fn tiff_err(e: tiff::TiffError) -> OutputError {
    OutputError::Tiff(e.to_string())
}

/// Writes the header, the compressed tiles, then the one IFD describing them.
fn assemble<K: TiffKind>(tiles: Vec<Vec<u8>>, meta: &Meta) -> Result<Vec<u8>, OutputError> {
    let Meta {
        layout,
        geo,
        data,
        nodata,
    } = *meta;
    let capacity = tiles.iter().map(Vec::len).sum::<usize>() + 4096;
    let mut file = Cursor::new(Vec::with_capacity(capacity));
    {
        let mut encoder = TiffEncoder::<_, K>::new_generic(&mut file).map_err(tiff_err)?;
        let mut dir = encoder.image_directory().map_err(tiff_err)?;
        let mut offsets = Vec::with_capacity(tiles.len());
        let mut byte_counts = Vec::with_capacity(tiles.len());
        for tile in tiles {
            let offset = dir.write_data(tile.as_slice()).map_err(tiff_err)?;
            offsets.push(K::convert_offset(offset).map_err(tiff_err)?);
            byte_counts.push(K::convert_offset(tile.len() as u64).map_err(tiff_err)?);
        }
        let bands = layout.bands;
        // Layout::of checked these fit.
        let width = layout.width as u32;
        let height = layout.height as u32;
        let samples = bands as u16;
        let bits = data.bits();

        let mut tags = || -> tiff::TiffResult<()> {
            dir.write_tag(Tag::ImageWidth, width)?;
            dir.write_tag(Tag::ImageLength, height)?;
            dir.write_tag(Tag::BitsPerSample, vec![bits; bands].as_slice())?;
            dir.write_tag(Tag::Compression, COMPRESSION_DEFLATE)?;
            dir.write_tag(Tag::PhotometricInterpretation, PHOTOMETRIC_MIN_IS_BLACK)?;
            dir.write_tag(Tag::SamplesPerPixel, samples)?;
            dir.write_tag(Tag::PlanarConfiguration, PLANAR_CHUNKY)?;
            dir.write_tag(Tag::TileWidth, TILE as u32)?;
            dir.write_tag(Tag::TileLength, TILE as u32)?;
            dir.write_tag(Tag::TileOffsets, K::convert_slice(&offsets))?;
            dir.write_tag(Tag::TileByteCounts, K::convert_slice(&byte_counts))?;
            if bands > 1 {
                // Without it libtiff warns that the sample count does not match MinIsBlack.
                let extra = vec![EXTRA_SAMPLE_UNSPECIFIED; bands - 1];
                dir.write_tag(Tag::ExtraSamples, extra.as_slice())?;
            }
            let format = vec![sample_format(data); bands];
            dir.write_tag(Tag::SampleFormat, format.as_slice())?;
            dir.write_tag(Tag::ModelPixelScaleTag, &geo.pixel_scale[..])?;
            dir.write_tag(Tag::ModelTiepointTag, &geo.tiepoint[..])?;
            dir.write_tag(Tag::GeoKeyDirectoryTag, geo.key_directory.as_slice())?;
            if let Some(nodata) = nodata {
                dir.write_tag(Tag::GdalNodata, nodata.text.as_str())?;
            }
            Ok(())
        };
        tags().map_err(tiff_err)?;
        dir.finish().map_err(tiff_err)?;
    }
    Ok(file.into_inner())
}

#[cfg(test)]
mod gdal_tests;
#[cfg(test)]
mod tests;
