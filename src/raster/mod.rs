//! In-memory rasters: the typed pixel buffers that flow from evaluation to encoding.
//!
//! Layout is *band-sequential* (planar): band `b`, pixel `i` (row-major) lives at
//! `b * width * height + i`. Evaluation fills one array per band, and planar buffers let
//! it write each band without strided access; encoders interleave when a format needs it.

/// Pixel values of one output, already formatted to its sample type.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleBuffer {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    F32(Vec<f32>),
}

impl SampleBuffer {
    pub fn len(&self) -> usize {
        match self {
            SampleBuffer::U8(v) => v.len(),
            SampleBuffer::U16(v) => v.len(),
            SampleBuffer::I8(v) => v.len(),
            SampleBuffer::I16(v) => v.len(),
            SampleBuffer::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bits per sample, as the PU rules and encoders see it.
    pub fn bits(&self) -> u16 {
        match self {
            SampleBuffer::U8(_) | SampleBuffer::I8(_) => 8,
            SampleBuffer::U16(_) | SampleBuffer::I16(_) => 16,
            SampleBuffer::F32(_) => 32,
        }
    }
}

/// A multi-band raster of one output: `bands` planes of `width * height` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub bands: usize,
    pub data: SampleBuffer,
}

/// Where a raster sits on the ground: the upper-left corner and pixel size in `epsg` units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Georef {
    pub epsg: u32,
    /// x of the upper-left corner of the upper-left pixel.
    pub x_min: f64,
    /// y of the upper-left corner of the upper-left pixel.
    pub y_max: f64,
    /// Pixel width (positive).
    pub res_x: f64,
    /// Pixel height (positive; y decreases downwards).
    pub res_y: f64,
}

pub mod cache;
pub mod chunks;
pub mod cog;
pub mod warp;
