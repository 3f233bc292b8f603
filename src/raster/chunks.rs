//! The fast path for COG window reads: Tessera decodes the common chunk layouts itself.
//!
//! Why not leave it to the `tiff` crate? Its `read_chunk` decodes one chunk at a time
//! through a `Read + Seek` cursor, so a window costs one small range request per 16 KB
//! (36,325 requests for 100 tiles where GDAL's /vsicurl/ makes 384) and one core of
//! zlib inflate. Here, for the layouts nearly every COG uses (tiled or stripped, no
//! compression or DEFLATE, no predictor or horizontal differencing, 8-32 bit integer or
//! 32-bit float samples, chunky), a window is:
//!
//! 1. the chunk byte ranges it needs, merged when the gaps between them are small
//!    ([`coalesce`]): few large reads instead of many small ones;
//! 2. each chunk inflated with libdeflate (the codec GDAL uses) and un-predicted, in
//!    parallel on rayon;
//! 3. copied into the window as `f32`, nodata as `NaN`.
//!
//! Anything else (LZW, zstd, JPEG, floating-point predictor, planar bands, big sample
//! types) still goes through the `tiff` crate. Everything in this file but the fetch
//! closure is pure.

/// How one overview level stores its chunks, when this module can decode them.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkLayout {
    pub offsets: Vec<u64>,
    pub byte_counts: Vec<u64>,
    /// Chunk size in pixels: the tile size, or the image width x rows per strip.
    pub chunk_width: u32,
    pub chunk_height: u32,
    /// Image size of the level, in pixels.
    pub image_width: u32,
    pub image_height: u32,
    pub tiled: bool,
    pub codec: Codec,
    /// TIFF predictor 2 (horizontal differencing) applied before compression.
    pub horizontal_predictor: bool,
    pub sample: SampleKind,
    pub samples_per_pixel: usize,
    pub little_endian: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    /// Compression 8 or 32946: zlib-wrapped DEFLATE.
    Deflate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl SampleKind {
    /// From TIFF's SampleFormat (1 unsigned, 2 signed, 3 float) and BitsPerSample.
    pub fn from_tiff(format: u16, bits: u16) -> Option<SampleKind> {
        Some(match (format, bits) {
            (1, 8) => SampleKind::U8,
            (2, 8) => SampleKind::I8,
            (1, 16) => SampleKind::U16,
            (2, 16) => SampleKind::I16,
            (1, 32) => SampleKind::U32,
            (2, 32) => SampleKind::I32,
            (3, 32) => SampleKind::F32,
            _ => return None,
        })
    }

    pub fn bytes(self) -> usize {
        match self {
            SampleKind::U8 | SampleKind::I8 => 1,
            SampleKind::U16 | SampleKind::I16 => 2,
            SampleKind::U32 | SampleKind::I32 | SampleKind::F32 => 4,
        }
    }
}

/// One chunk a window needs: its index and where it sits in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub index: usize,
    pub x0: u32,
    pub y0: u32,
    /// Valid pixels of the chunk (edge tiles are padded in the file; edge strips are not).
    pub width: u32,
    pub height: u32,
}

impl ChunkLayout {
    pub fn chunks_across(&self) -> u32 {
        self.image_width.div_ceil(self.chunk_width)
    }

    /// The chunks that intersect the window `col..col+width`, `row..row+height` (already
    /// clipped to the image and non-empty), row-major.
    pub fn chunks_for(&self, col: u32, row: u32, width: u32, height: u32) -> Vec<ChunkRef> {
        let (cw, ch) = (self.chunk_width, self.chunk_height);
        let across = self.chunks_across();
        let mut out = Vec::new();
        for ty in row / ch..=(row + height - 1) / ch {
            for tx in col / cw..=(col + width - 1) / cw {
                let (x0, y0) = (tx * cw, ty * ch);
                out.push(ChunkRef {
                    index: (ty * across + tx) as usize,
                    x0,
                    y0,
                    width: cw.min(self.image_width - x0),
                    height: ch.min(self.image_height - y0),
                });
            }
        }
        out
    }

    /// Pixels per stored row and stored rows of a chunk: tiles are always whole in the
    /// file (padded at the edges); a strip holds only its own rows.
    fn stored_dims(&self, c: &ChunkRef) -> (usize, usize) {
        if self.tiled {
            (self.chunk_width as usize, self.chunk_height as usize)
        } else {
            (self.image_width as usize, c.height as usize)
        }
    }

    /// Decodes one chunk's stored bytes to `f32` values of its valid pixels
    /// (`c.width * c.height * samples_per_pixel`, row-major, interleaved), nodata as NaN.
    pub fn decode(
        &self,
        c: &ChunkRef,
        stored: &[u8],
        nodata: Option<f64>,
    ) -> Result<Vec<f32>, String> {
        let samples = self.decode_samples(c, stored)?;
        let mut out = vec![0.0; samples.len() / self.sample.bytes()];
        self.samples_to_f32(&samples, 0, 1, nodata, &mut out);
        Ok(out)
    }

    /// Inflates a chunk and undoes its predictor: the samples of its valid pixels
    /// (`c.width * c.height * samples_per_pixel`, row-major) as little-endian bytes. This
    /// is what the block cache keeps: half the size of `f32` for 16-bit imagery.
    pub fn decode_samples(&self, c: &ChunkRef, stored: &[u8]) -> Result<Vec<u8>, String> {
        let (row_px, rows) = self.stored_dims(c);
        let spp = self.samples_per_pixel;
        let size = self.sample.bytes();
        let expected = row_px * rows * spp * size;
        let raw = match self.codec {
            Codec::None => {
                if stored.len() < expected {
                    return Err(format!(
                        "chunk {} holds {} bytes, {expected} expected",
                        c.index,
                        stored.len()
                    ));
                }
                std::borrow::Cow::Borrowed(&stored[..expected])
            }
            Codec::Deflate => std::borrow::Cow::Owned(
                inflate(stored, expected)
                    .map_err(|e| format!("chunk {}: DEFLATE data is corrupt ({e})", c.index))?,
            ),
        };
        let (w, h) = (c.width as usize, c.height as usize);
        let mut out = Vec::with_capacity(w * h * spp * size);
        for r in 0..h {
            let row = &raw[r * row_px * spp * size..(r + 1) * row_px * spp * size];
            match self.sample {
                SampleKind::U8 => self.unpredict::<u8>(row, w, &mut out),
                SampleKind::I8 => self.unpredict::<i8>(row, w, &mut out),
                SampleKind::U16 => self.unpredict::<u16>(row, w, &mut out),
                SampleKind::I16 => self.unpredict::<i16>(row, w, &mut out),
                SampleKind::U32 => self.unpredict::<u32>(row, w, &mut out),
                SampleKind::I32 => self.unpredict::<i32>(row, w, &mut out),
                SampleKind::F32 => self.unpredict::<f32>(row, w, &mut out),
            }
        }
        Ok(out)
    }

    /// One stored row -> its first `w` pixels' samples, little-endian, predictor undone.
    fn unpredict<T: Sample>(&self, row: &[u8], w: usize, out: &mut Vec<u8>) {
        let spp = self.samples_per_pixel;
        let size = std::mem::size_of::<T>();
        let le = self.little_endian;
        if !self.horizontal_predictor {
            for b in row[..w * spp * size].chunks_exact(size) {
                out.extend_from_slice(&T::read(b, le).le_bytes()[..size]);
            }
            return;
        }
        let mut prev = [T::read(&row[..size], le); 8];
        for (i, b) in row.chunks_exact(size).take(w * spp).enumerate() {
            let mut v = T::read(b, le);
            if i >= spp {
                v = v.wrapping_add(prev[i % spp]);
            }
            prev[i % spp] = v;
            out.extend_from_slice(&v.le_bytes()[..size]);
        }
    }

    /// Samples (from [`Self::decode_samples`]) to `f32`: `out.len()` values taken from
    /// sample `start` on, every `step` samples (a band of interleaved pixels), nodata as NaN.
    pub fn samples_to_f32(
        &self,
        samples: &[u8],
        start: usize,
        step: usize,
        nodata: Option<f64>,
        out: &mut [f32],
    ) {
        fn conv<T: Sample>(
            samples: &[u8],
            start: usize,
            step: usize,
            nodata: Option<f64>,
            out: &mut [f32],
        ) {
            let size = std::mem::size_of::<T>();
            for (i, o) in out.iter_mut().enumerate() {
                let at = (start + i * step) * size;
                *o = T::read(&samples[at..at + size], true).to_f32(nodata);
            }
        }
        match self.sample {
            SampleKind::U8 => conv::<u8>(samples, start, step, nodata, out),
            SampleKind::I8 => conv::<i8>(samples, start, step, nodata, out),
            SampleKind::U16 => conv::<u16>(samples, start, step, nodata, out),
            SampleKind::I16 => conv::<i16>(samples, start, step, nodata, out),
            SampleKind::U32 => conv::<u32>(samples, start, step, nodata, out),
            SampleKind::I32 => conv::<i32>(samples, start, step, nodata, out),
            SampleKind::F32 => conv::<f32>(samples, start, step, nodata, out),
        }
    }
}

fn inflate(stored: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; expected];
    let mut d = libdeflater::Decompressor::new();
    let n = d
        .zlib_decompress(stored, &mut out)
        .map_err(|e| e.to_string())?;
    if n != expected {
        return Err(format!("{n} bytes inflated, {expected} expected"));
    }
    Ok(out)
}

/// A sample type of the fast path.
trait Sample: Copy {
    fn read(b: &[u8], little_endian: bool) -> Self;
    /// Little-endian bytes, padded to 4 (callers take the first `size_of::<Self>()`).
    fn le_bytes(self) -> [u8; 4];
    fn wrapping_add(self, other: Self) -> Self;
    fn to_f32(self, nodata: Option<f64>) -> f32;
}

macro_rules! int_sample {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn read(b: &[u8], le: bool) -> Self {
                let a = b.try_into().unwrap_or_default();
                if le { <$t>::from_le_bytes(a) } else { <$t>::from_be_bytes(a) }
            }
            fn le_bytes(self) -> [u8; 4] {
                let mut out = [0u8; 4];
                let b = self.to_le_bytes();
                out[..b.len()].copy_from_slice(&b);
                out
            }
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            fn to_f32(self, nodata: Option<f64>) -> f32 {
                if nodata == Some(f64::from(self)) { f32::NAN } else { self as f32 }
            }
        }
    )*};
}
int_sample!(u8, i8, u16, i16, u32, i32);

impl Sample for f32 {
    fn read(b: &[u8], le: bool) -> Self {
        let a = b.try_into().unwrap_or_default();
        if le {
            f32::from_le_bytes(a)
        } else {
            f32::from_be_bytes(a)
        }
    }
    fn le_bytes(self) -> [u8; 4] {
        self.to_le_bytes()
    }
    fn wrapping_add(self, other: Self) -> Self {
        // Predictor 2 on floats is not valid TIFF; such files take the tiff crate's path.
        self + other
    }
    fn to_f32(self, nodata: Option<f64>) -> f32 {
        match nodata {
            Some(n) if f64::from(self) == n || (n.is_nan() && self.is_nan()) => f32::NAN,
            _ => self,
        }
    }
}

/// Merges byte spans `(offset, length)` into reads: spans are sorted, and two reads join
/// when the gap between them is at most `max_gap` bytes (fetching a small gap costs less
/// than another request). Zero-length spans (sparse chunks) need no read. Returns
/// `(start, end)` pairs, end exclusive.
pub fn coalesce(spans: &[(u64, u64)], max_gap: u64) -> Vec<(u64, u64)> {
    let mut sorted: Vec<(u64, u64)> = spans
        .iter()
        .filter(|(_, len)| *len > 0)
        .map(|&(off, len)| (off, off.saturating_add(len)))
        .collect();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, end) in sorted {
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(max_gap) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The gap below which two chunk reads are merged: a 1024x1024 uint16 DEFLATE tile is
/// about 1 MB, so a quarter of that costs less than a round trip on most networks.
pub const MAX_GAP: u64 = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(
        tiled: bool,
        codec: Codec,
        predictor: bool,
        sample: SampleKind,
        spp: usize,
    ) -> ChunkLayout {
        ChunkLayout {
            offsets: vec![],
            byte_counts: vec![],
            chunk_width: 4,
            chunk_height: 2,
            image_width: 6,
            image_height: 3,
            tiled,
            codec,
            horizontal_predictor: predictor,
            sample,
            samples_per_pixel: spp,
            little_endian: true,
        }
    }

    #[test]
    fn coalesce_merges_small_gaps_and_skips_sparse_chunks() {
        assert_eq!(coalesce(&[], 10), vec![]);
        assert_eq!(
            coalesce(&[(100, 10), (0, 10), (15, 5), (50, 0)], 5),
            vec![(0, 20), (100, 110)]
        );
        assert_eq!(coalesce(&[(0, 10), (16, 4)], 5), vec![(0, 10), (16, 20)]);
        assert_eq!(
            coalesce(&[(0, 10), (2, 3)], 0),
            vec![(0, 10)],
            "contained span"
        );
        assert_eq!(coalesce(&[(0, 10), (10, 10)], 0), vec![(0, 20)], "adjacent");
    }

    #[test]
    fn chunks_for_a_window_cover_it_with_valid_sizes() {
        let l = layout(true, Codec::None, false, SampleKind::U8, 1);
        // 6x3 image in 4x2 tiles: 2 across, 2 down; the right and bottom tiles are partial.
        let all = l.chunks_for(0, 0, 6, 3);
        assert_eq!(all.len(), 4);
        assert_eq!((all[3].index, all[3].x0, all[3].y0), (3, 4, 2));
        assert_eq!((all[3].width, all[3].height), (2, 1));
        let one = l.chunks_for(5, 2, 1, 1);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].index, 3);
        assert_eq!(l.chunks_for(1, 0, 2, 2).len(), 1);
    }

    #[test]
    fn a_padded_edge_tile_keeps_only_its_valid_pixels() {
        let l = layout(true, Codec::None, false, SampleKind::U16, 1);
        let c = l.chunks_for(4, 2, 2, 1)[0];
        // Stored tile: 4x2 u16, little-endian; valid part is 2x1 at its top-left.
        let stored: Vec<u8> = (1u16..=8).flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(l.decode(&c, &stored, None).unwrap(), vec![1.0, 2.0]);
        assert!(l.decode(&c, &stored[..10], None).is_err(), "short chunk");
    }

    #[test]
    fn predictor_and_deflate_round_trip_with_nodata() {
        // A 4x2 tile of i16, two samples per pixel, differenced per row as TIFF predictor 2.
        let values: Vec<i16> = vec![5, -3, 7, 0, 7, 100, -32768, 32767, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut diffed = values.clone();
        for r in 0..2 {
            let row = &mut diffed[r * 8..(r + 1) * 8];
            for i in (2..8).rev() {
                row[i] = row[i].wrapping_sub(row[i - 2]);
            }
        }
        let bytes: Vec<u8> = diffed.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut z = vec![0u8; c.zlib_compress_bound(bytes.len())];
        let n = c.zlib_compress(&bytes, &mut z).unwrap();
        z.truncate(n);
        let l = ChunkLayout {
            image_width: 4,
            image_height: 2,
            ..layout(true, Codec::Deflate, true, SampleKind::I16, 2)
        };
        let chunk = l.chunks_for(0, 0, 4, 2)[0];
        let out = l.decode(&chunk, &z, Some(7.0)).unwrap();
        let want: Vec<f32> = values
            .iter()
            .map(|&v| if v == 7 { f32::NAN } else { f32::from(v) })
            .collect();
        assert_eq!(out.len(), want.len());
        for (a, b) in out.iter().zip(&want) {
            assert!(a == b || (a.is_nan() && b.is_nan()), "{out:?} vs {want:?}");
        }
        assert!(l
            .decode(&chunk, &z[..n / 2], None)
            .unwrap_err()
            .contains("corrupt"));
    }

    #[test]
    fn strips_hold_only_their_own_rows_and_big_endian_floats_read() {
        let l = ChunkLayout {
            little_endian: false,
            chunk_width: 6, // a strip spans the image width
            ..layout(false, Codec::None, false, SampleKind::F32, 1)
        };
        // Strips of 2 rows over a 6x3 image: the last strip has one row of 6 floats.
        let c = l.chunks_for(0, 2, 6, 1)[0];
        assert_eq!((c.index, c.width, c.height), (1, 6, 1));
        let stored: Vec<u8> = [0.5f32, -1.0, f32::INFINITY, 3.0, -0.0, 1e-3]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let out = l.decode(&c, &stored, Some(3.0)).unwrap();
        assert_eq!(out[..3], [0.5, -1.0, f32::INFINITY]);
        assert!(out[3].is_nan());
        assert_eq!(out[4].to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn sample_kinds_from_tiff_tags() {
        assert_eq!(SampleKind::from_tiff(1, 16), Some(SampleKind::U16));
        assert_eq!(SampleKind::from_tiff(3, 32), Some(SampleKind::F32));
        assert_eq!(SampleKind::from_tiff(3, 64), None);
        assert_eq!(SampleKind::from_tiff(1, 12), None);
    }
}
