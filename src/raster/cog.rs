//! Cloud-Optimized GeoTIFF reading with range reads.
//!
//! Decoding (IFDs, tiles and strips, deflate/LZW/zstd/packbits, predictors, sample types)
//! is the `tiff` crate's; this module adds what a COG reader needs on top of it: a byte
//! source that fetches only the ranges the decoder asks for ([`ByteSource`], with a small
//! read-ahead so one IFD costs one request, not one per field), the overview pyramid, the
//! GeoKeys -> EPSG + geotransform, GDAL's nodata tag, and window reads that decode only the
//! tiles a window touches.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::Tag;

use super::cache::{self, BlockCache};
use super::chunks::{self, ChunkLayout};
use super::Georef;

#[derive(Debug, thiserror::Error)]
pub enum CogError {
    #[error("{path}: cannot read bytes {start}..{end}: {reason}")]
    Io {
        path: String,
        start: u64,
        end: u64,
        reason: String,
    },
    #[error("{path}: not a readable GeoTIFF: {reason}")]
    Format { path: String, reason: String },
    #[error("{path}: unsupported GeoTIFF: {reason}")]
    Unsupported { path: String, reason: String },
}

/// Random access to the bytes of one file: a local file ([`FileSource`]), memory
/// ([`MemSource`]) or an object_store range GET over file/HTTP/S3 ([`ObjectStoreSource`]).
pub trait ByteSource: Send + Sync {
    /// A name for error messages (path or URL).
    fn name(&self) -> &str;
    fn size(&self) -> Result<u64, String>;
    /// Bytes `start..end` (end exclusive, clipped to the file length).
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String>;
}

/// A local file, read with positioned reads (no shared cursor, so it is `Sync`).
pub struct FileSource {
    path: String,
    file: std::fs::File,
}

impl FileSource {
    pub fn open(path: &str) -> Result<FileSource, CogError> {
        let file = std::fs::File::open(path).map_err(|e| CogError::Io {
            path: path.to_string(),
            start: 0,
            end: 0,
            reason: e.to_string(),
        })?;
        Ok(FileSource {
            path: path.to_string(),
            file,
        })
    }
}

impl ByteSource for FileSource {
    fn name(&self) -> &str {
        &self.path
    }
    fn size(&self) -> Result<u64, String> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    }
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::FileExt;
        let len = self.size()?;
        let end = end.min(len);
        if start >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    }
}

/// Bytes held in memory (tests, and files fetched whole).
pub struct MemSource {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl ByteSource for MemSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn size(&self) -> Result<u64, String> {
        Ok(self.bytes.len() as u64)
    }
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let end = (end as usize).min(self.bytes.len());
        let start = (start as usize).min(end);
        Ok(self.bytes[start..end].to_vec())
    }
}

/// A file behind object_store (`file://`, `http(s)://`, `s3://`; the store is built by the
/// caller, see `data::remote`): `get_range` per read, retried with exponential backoff
/// when the error may be transient (connection refused, timeouts, 5xx), failing at once
/// when it cannot be (not found, denied, other 4xx). The store's own retries should be
/// off so the two loops do not multiply.
pub struct ObjectStoreSource {
    name: String,
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    runtime: tokio::runtime::Runtime,
    size: std::sync::OnceLock<u64>,
    retry: RetryPolicy,
    /// The whole object, once a server has shown it ignores `Range` (see `read_range`).
    whole: std::sync::OnceLock<Vec<u8>>,
    whole_file_limit: u64,
}

/// The largest object read whole from a server that ignores `Range` headers (python's
/// `http.server`, some static hosts answer 200 with the full body). Larger ones fail with a
/// message that names the cause rather than downloading gigabytes per window.
pub const WHOLE_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// object_store's errors when a server answers a range GET with a full 200 response (its
/// HTTP store says "Range request not supported", the S3 client "non-partial response").
fn ignores_range(e: &object_store::Error) -> bool {
    let text = e.to_string();
    text.contains("Range request not supported") || text.contains("non-partial response")
}

/// How often and how patiently a range read is retried: `attempts` in all, waiting
/// `first_backoff`, then twice that, ... capped at `max_backoff`. Small delays keep tests
/// fast; the default suits a public bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: std::time::Duration,
    pub max_backoff: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            first_backoff: std::time::Duration::from_millis(200),
            max_backoff: std::time::Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 = first retry): exponential, capped.
    pub fn delay(&self, retry: u32) -> std::time::Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Whether retrying cannot help: the object is missing, access is denied, the request is
/// malformed (any 4xx the store reports as a generic error), or the store cannot do it.
pub fn is_permanent(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. } => true,
        other => is_client_error(&other.to_string()),
    }
}

/// object_store reports a 4xx other than 404/401/403 as text only ("Client error with
/// status 416 ..."); a 5xx is "Server error".
fn is_client_error(message: &str) -> bool {
    message.contains("Client error with status 4")
}

impl ObjectStoreSource {
    pub fn new(
        name: &str,
        store: Arc<dyn object_store::ObjectStore>,
        path: object_store::path::Path,
    ) -> Result<ObjectStoreSource, CogError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CogError::Io {
                path: name.to_string(),
                start: 0,
                end: 0,
                reason: e.to_string(),
            })?;
        Ok(ObjectStoreSource {
            name: name.to_string(),
            store,
            path,
            runtime,
            size: std::sync::OnceLock::new(),
            retry: RetryPolicy::default(),
            whole: std::sync::OnceLock::new(),
            whole_file_limit: WHOLE_FILE_LIMIT,
        })
    }

    /// The object's size when already known (no HEAD request then).
    pub fn with_size(self, size: u64) -> ObjectStoreSource {
        let _ = self.size.set(size);
        self
    }

    /// Replaces [`WHOLE_FILE_LIMIT`] (tests use a small one).
    pub fn with_whole_file_limit(mut self, limit: u64) -> ObjectStoreSource {
        self.whole_file_limit = limit;
        self
    }

    /// Serves a range from the whole object, fetching it once (a server without Range).
    fn read_whole(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        if self.whole.get().is_none() {
            let size = self.size()?;
            if size > self.whole_file_limit {
                return Err(format!(
                    "the server ignores HTTP Range requests (it answered a range GET with the \
                     whole file), and this file is {size} bytes, more than the {} bytes Tessera \
                     reads whole; serve it from a server that supports Range",
                    self.whole_file_limit
                ));
            }
            let bytes = self.retry(|| {
                self.runtime
                    .block_on(async { self.store.get(&self.path).await?.bytes().await })
            })?;
            let _ = self.whole.set(bytes.to_vec());
        }
        let whole = self.whole.get().map(Vec::as_slice).unwrap_or_default();
        let (a, b) = (start.min(whole.len() as u64), end.min(whole.len() as u64));
        Ok(whole[a as usize..b as usize].to_vec())
    }

    /// Replaces the default retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> ObjectStoreSource {
        self.retry = retry;
        self
    }

    /// A `file://` URL (remote schemes need configuration: see `data::remote`).
    pub fn from_url(url: &str) -> Result<ObjectStoreSource, CogError> {
        let bad = |reason: String| CogError::Io {
            path: url.to_string(),
            start: 0,
            end: 0,
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if parsed.scheme() != "file" {
            return Err(bad(format!(
                "the {} scheme needs a configured store (data::remote)",
                parsed.scheme()
            )));
        }
        let (store, path) = object_store::parse_url(&parsed).map_err(|e| bad(e.to_string()))?;
        ObjectStoreSource::new(url, Arc::from(store), path)
    }

    fn retry<T>(&self, f: impl Fn() -> Result<T, object_store::Error>) -> Result<T, String> {
        self.retry_or(f).map_err(|(_, reason)| reason)
    }

    /// [`Self::retry`], keeping the final error so callers can tell what it was.
    fn retry_or<T>(
        &self,
        f: impl Fn() -> Result<T, object_store::Error>,
    ) -> Result<T, (object_store::Error, String)> {
        let mut attempt = 1;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if is_permanent(&e)
                        || ignores_range(&e)
                        || attempt >= self.retry.attempts.max(1)
                    {
                        let reason = format!("{e} (after {attempt} attempt(s))");
                        return Err((e, reason));
                    }
                    std::thread::sleep(self.retry.delay(attempt));
                    attempt += 1;
                }
            }
        }
    }
}

impl ByteSource for ObjectStoreSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn size(&self) -> Result<u64, String> {
        if let Some(s) = self.size.get() {
            return Ok(*s);
        }
        let meta = self.retry(|| self.runtime.block_on(self.store.head(&self.path)))?;
        let size = meta.size;
        Ok(*self.size.get_or_init(|| size))
    }
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let end = end.min(self.size()?);
        if start >= end {
            return Ok(Vec::new());
        }
        if self.whole.get().is_some() {
            return self.read_whole(start, end);
        }
        match self.retry_or(|| {
            self.runtime
                .block_on(self.store.get_range(&self.path, start..end))
        }) {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err((e, _)) if ignores_range(&e) => self.read_whole(start, end),
            Err((_, reason)) => Err(reason),
        }
    }
}

/// A source whose size and first bytes are already known (from [`BlockCache::header`]):
/// opening a COG again reads its IFDs from memory.
pub struct PrefixSource {
    inner: Arc<dyn ByteSource>,
    size: u64,
    prefix: Arc<Vec<u8>>,
}

impl PrefixSource {
    /// Wraps `inner`, fetching and keeping its header in `cache` on first use.
    pub fn open(inner: Arc<dyn ByteSource>, cache: &BlockCache) -> Result<PrefixSource, String> {
        let (size, prefix) = match cache.header(inner.name()) {
            Some(kept) => kept,
            None => {
                let size = inner.size()?;
                let head = Arc::new(inner.read_range(0, size.min(cache::HEADER_BYTES))?);
                cache.put_header(inner.name(), size, head.clone());
                (size, head)
            }
        };
        Ok(PrefixSource {
            inner,
            size,
            prefix,
        })
    }
}

impl ByteSource for PrefixSource {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn size(&self) -> Result<u64, String> {
        Ok(self.size)
    }
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let end = end.min(self.size);
        if end <= self.prefix.len() as u64 {
            let start = start.min(end);
            return Ok(self.prefix[start as usize..end as usize].to_vec());
        }
        self.inner.read_range(start, end)
    }
}

/// Opens a location: a local path, or a URL through object_store.
pub fn open_source(location: &str) -> Result<Arc<dyn ByteSource>, CogError> {
    if location.contains("://") {
        Ok(Arc::new(ObjectStoreSource::from_url(location)?))
    } else {
        Ok(Arc::new(FileSource::open(location)?))
    }
}

/// `Read + Seek` over a [`ByteSource`] for the `tiff` decoder: keeps one buffered range and
/// fetches at least `READ_AHEAD` bytes per miss. Counts the bytes fetched, so tests can
/// check that a window read does not pull the whole file.
struct RangeReader {
    source: Arc<dyn ByteSource>,
    len: u64,
    pos: u64,
    buf_start: u64,
    buf: Vec<u8>,
    fetched: Arc<AtomicU64>,
    error: Option<(u64, u64, String)>,
}

const READ_AHEAD: u64 = 16 * 1024;

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let in_buf =
            self.pos >= self.buf_start && self.pos < self.buf_start + self.buf.len() as u64;
        if !in_buf {
            let want = (out.len() as u64).max(READ_AHEAD);
            let end = (self.pos + want).min(self.len);
            let bytes = self.source.read_range(self.pos, end).map_err(|e| {
                self.error = Some((self.pos, end, e.clone()));
                std::io::Error::other(e)
            })?;
            self.fetched
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            self.buf_start = self.pos;
            self.buf = bytes;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let off = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - off);
        out[..n].copy_from_slice(&self.buf[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if p < 0 {
            return Err(std::io::Error::other("seek before start"));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}

/// One resolution level of the pyramid (level 0 is full resolution).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub ifd: usize,
    pub width: u32,
    pub height: u32,
    /// Pixel size in CRS units at this level.
    pub res_x: f64,
    pub res_y: f64,
}

/// An opened COG: the pyramid and georeferencing, read from the IFDs only.
pub struct Cog {
    name: String,
    source: Arc<dyn ByteSource>,
    /// Per IFD: how its chunks are stored, when `chunks` can decode them (else `None`).
    layouts: std::collections::HashMap<usize, Option<Arc<ChunkLayout>>>,
    /// Decoded chunks shared with every other open COG of the same configuration.
    cache: Option<BlockCache>,
    size: u64,
    decoder: Decoder<RangeReader>,
    pub levels: Vec<Level>,
    /// Georeferencing of level 0.
    pub georef: Georef,
    pub nodata: Option<f64>,
    fetched: Arc<AtomicU64>,
    current_ifd: usize,
}

/// A decoded window: `width * height` values, row-major, `NaN` where the file has no data.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub level: usize,
    pub col: u32,
    pub row: u32,
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

/// Bounds on what a file's header can make the decoder allocate. Unlimited, a hostile
/// file (a BYOC upload, a remote COG) with a tag claiming 2^32 values made it allocate
/// 105 GB and abort the process (found by `fuzz_tests::fuzz_cog_reader`). A decoded chunk
/// (tile or strip) may still be 512 MiB, more than any real COG's.
fn decoder_limits() -> Limits {
    let mut limits = Limits::default();
    limits.decoding_buffer_size = 512 << 20;
    limits.intermediate_buffer_size = 512 << 20;
    limits.ifd_value_size = 16 << 20;
    limits
}

/// Runs a `tiff` decoder step, turning a panic into an error. The crate indexes some tag
/// arrays without checking their length (a SampleFormat with no values panics), and a
/// tenant's bytes must never take a worker down: they fail the tile that read them.
fn guard<T>(name: &str, step: impl FnOnce() -> Result<T, CogError>) -> Result<T, CogError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|_| {
        Err(CogError::Format {
            path: name.to_string(),
            reason: "malformed TIFF structure (the decoder refused it)".into(),
        })
    })
}

impl Cog {
    pub fn open(source: Arc<dyn ByteSource>) -> Result<Cog, CogError> {
        let name = source.name().to_string();
        guard(&name, || Cog::open_unguarded(source))
    }

    fn open_unguarded(source: Arc<dyn ByteSource>) -> Result<Cog, CogError> {
        let name = source.name().to_string();
        let len = source.size().map_err(|reason| CogError::Io {
            path: name.clone(),
            start: 0,
            end: 0,
            reason,
        })?;
        let fetched = Arc::new(AtomicU64::new(0));
        let reader = RangeReader {
            source: source.clone(),
            len,
            pos: 0,
            buf_start: 0,
            buf: Vec::new(),
            fetched: fetched.clone(),
            error: None,
        };
        let fmt = |reason: String| CogError::Format {
            path: name.clone(),
            reason,
        };
        let mut decoder = Decoder::new(reader)
            .map_err(|e| fmt(e.to_string()))?
            .with_limits(decoder_limits());
        let (w0, h0) = decoder.dimensions().map_err(|e| fmt(e.to_string()))?;
        let (georef, nodata) = read_geo(&mut decoder).map_err(|reason| CogError::Unsupported {
            path: name.clone(),
            reason,
        })?;
        let mut levels = vec![Level {
            ifd: 0,
            width: w0,
            height: h0,
            res_x: georef.res_x,
            res_y: georef.res_y,
        }];
        let mut ifd = 0;
        while decoder.more_images() {
            ifd += 1;
            decoder.next_image().map_err(|e| fmt(e.to_string()))?;
            // Masks (NewSubfileType bit 2) are not levels of the pyramid.
            let kind = decoder
                .find_tag_unsigned::<u32>(Tag::NewSubfileType)
                .map_err(|e| fmt(e.to_string()))?
                .unwrap_or(0);
            if kind & 4 != 0 {
                continue;
            }
            let (w, h) = decoder.dimensions().map_err(|e| fmt(e.to_string()))?;
            if w == 0 || h == 0 {
                continue;
            }
            levels.push(Level {
                ifd,
                width: w,
                height: h,
                res_x: georef.res_x * w0 as f64 / w as f64,
                res_y: georef.res_y * h0 as f64 / h as f64,
            });
        }
        Ok(Cog {
            name,
            source,
            layouts: std::collections::HashMap::new(),
            cache: None,
            size: len,
            decoder,
            levels,
            georef,
            nodata,
            fetched,
            current_ifd: ifd,
        })
    }

    /// Shares decoded chunks through `cache` (see [`super::cache`]).
    pub fn with_cache(mut self, cache: BlockCache) -> Cog {
        self.cache = Some(cache);
        self
    }

    /// Opens a local path or a URL (see [`open_source`]).
    pub fn open_path(path: &str) -> Result<Cog, CogError> {
        Cog::open(open_source(path)?)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes fetched from the source so far.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The coarsest level whose pixels are no larger than `res` (the best overview for a
    /// target resolution): reading finer wastes bytes, coarser loses detail.
    pub fn level_for(&self, res: f64) -> usize {
        let mut best = 0;
        for (i, l) in self.levels.iter().enumerate() {
            if l.res_x <= res * 1.001 {
                best = i;
            }
        }
        best
    }

    /// Georeferencing of a level.
    pub fn level_georef(&self, level: usize) -> Georef {
        let l = self.levels[level.min(self.levels.len() - 1)];
        Georef {
            res_x: l.res_x,
            res_y: l.res_y,
            ..self.georef
        }
    }

    /// Decodes the pixels `col..col+width`, `row..row+height` of a level (clipped to the
    /// image), touching only the tiles or strips that intersect it.
    pub fn read_window(
        &mut self,
        level: usize,
        col: u32,
        row: u32,
        width: u32,
        height: u32,
    ) -> Result<Window, CogError> {
        let name = self.name.clone();
        guard(&name, || {
            self.read_window_unguarded(level, col, row, width, height)
        })
    }

    fn read_window_unguarded(
        &mut self,
        level: usize,
        col: u32,
        row: u32,
        width: u32,
        height: u32,
    ) -> Result<Window, CogError> {
        let lv = *self.levels.get(level).ok_or_else(|| CogError::Format {
            path: self.name.clone(),
            reason: format!("no overview level {level}"),
        })?;
        let col = col.min(lv.width);
        let row = row.min(lv.height);
        let width = width.min(lv.width - col);
        let height = height.min(lv.height - row);
        let mut data = vec![f32::NAN; width as usize * height as usize];
        let out = Window {
            level,
            col,
            row,
            width,
            height,
            data: Vec::new(),
        };
        if width == 0 || height == 0 {
            return Ok(Window { data, ..out });
        }
        self.select_ifd(lv.ifd)?;
        let name = self.name.clone();
        let fmt = |e: tiff::TiffError| CogError::Format {
            path: name.clone(),
            reason: e.to_string(),
        };
        let spp = self
            .decoder
            .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
            .map_err(fmt)?
            .unwrap_or(1) as usize;
        let (cw, ch) = self.decoder.chunk_dimensions();
        if cw == 0 || ch == 0 {
            return Err(fmt(tiff::TiffError::LimitsExceeded));
        }
        if let Some(layout) = self.layout(lv.ifd)? {
            if layout.image_width == lv.width && layout.image_height == lv.height {
                self.read_fast(lv.ifd, &layout, col, row, width, height, &mut data)?;
                return Ok(Window { data, ..out });
            }
        }
        let across = lv.width.div_ceil(cw);
        let nodata = self.nodata;
        for ty in row / ch..=(row + height - 1) / ch {
            for tx in col / cw..=(col + width - 1) / cw {
                let index = ty * across + tx;
                let (dw, dh) = self.chunk_dims(index)?;
                let chunk = self
                    .decoder
                    .read_chunk(index)
                    .map_err(|e| self.chunk_error(e, index))?;
                let values = to_f32(chunk, nodata);
                // Intersection of the chunk with the window, in image pixels.
                let x0 = (tx * cw).max(col);
                let x1 = (tx * cw + dw).min(col + width);
                let y0 = (ty * ch).max(row);
                let y1 = (ty * ch + dh).min(row + height);
                for y in y0..y1 {
                    let src =
                        ((y - ty * ch) as usize * dw as usize + (x0 - tx * cw) as usize) * spp;
                    let dst = (y - row) as usize * width as usize + (x0 - col) as usize;
                    for i in 0..(x1 - x0) as usize {
                        data[dst + i] = values.get(src + i * spp).copied().unwrap_or(f32::NAN);
                    }
                }
            }
        }
        Ok(Window { data, ..out })
    }

    /// The window through [`chunks`]: cached chunks first, then merged range reads and
    /// parallel decoding of the rest.
    #[allow(clippy::too_many_arguments)]
    fn read_fast(
        &mut self,
        ifd: usize,
        layout: &ChunkLayout,
        col: u32,
        row: u32,
        width: u32,
        height: u32,
        data: &mut [f32],
    ) -> Result<(), CogError> {
        use rayon::prelude::*;
        let needed = layout.chunks_for(col, row, width, height);
        let key = |c: &chunks::ChunkRef| cache::Key {
            file: self.name.clone(),
            file_size: self.size,
            ifd,
            chunk: c.index,
        };
        let span = |c: &chunks::ChunkRef| {
            (
                layout.offsets.get(c.index).copied().unwrap_or(0),
                layout.byte_counts.get(c.index).copied().unwrap_or(0),
            )
        };
        // None: a sparse chunk (no data); Some: its decoded samples.
        let mut decoded: Vec<Option<Arc<Vec<u8>>>> = vec![None; needed.len()];
        let mut missing = Vec::new();
        for (i, c) in needed.iter().enumerate() {
            match self.cache.as_ref().and_then(|cache| cache.get(&key(c))) {
                Some(hit) => decoded[i] = Some(hit),
                None if span(c).1 > 0 => missing.push(i),
                None => {}
            }
        }
        let spans: Vec<(u64, u64)> = missing.iter().map(|&i| span(&needed[i])).collect();
        let reads = chunks::coalesce(&spans, chunks::MAX_GAP);
        let source = &self.source;
        let name = &self.name;
        let fetched: Vec<(u64, Vec<u8>)> = reads
            .par_iter()
            .map(|&(start, end)| {
                let bytes = source
                    .read_range(start, end)
                    .map_err(|reason| CogError::Io {
                        path: name.clone(),
                        start,
                        end,
                        reason,
                    })?;
                Ok((start, bytes))
            })
            .collect::<Result<_, CogError>>()?;
        let total: u64 = fetched.iter().map(|(_, b)| b.len() as u64).sum();
        self.fetched.fetch_add(total, Ordering::Relaxed);
        let fresh: Vec<Arc<Vec<u8>>> = missing
            .par_iter()
            .zip(spans.par_iter())
            .map(|(&i, &(off, len))| {
                let read = fetched
                    .iter()
                    .find(|(start, b)| off >= *start && off + len <= start + b.len() as u64);
                let Some((start, bytes)) = read else {
                    return Err(CogError::Io {
                        path: name.clone(),
                        start: off,
                        end: off + len,
                        reason: "the file ends before this chunk".into(),
                    });
                };
                let at = (off - start) as usize;
                layout
                    .decode_samples(&needed[i], &bytes[at..at + len as usize])
                    .map(Arc::new)
                    .map_err(|reason| CogError::Format {
                        path: name.clone(),
                        reason,
                    })
            })
            .collect::<Result<_, CogError>>()?;
        for (&i, samples) in missing.iter().zip(fresh) {
            if let Some(cache) = &self.cache {
                cache.put(key(&needed[i]), samples.clone());
            }
            decoded[i] = Some(samples);
        }
        let spp = layout.samples_per_pixel;
        let nodata = self.nodata;
        for (c, samples) in needed.iter().zip(decoded) {
            let Some(samples) = samples else { continue };
            let x0 = c.x0.max(col);
            let x1 = (c.x0 + c.width).min(col + width);
            let y0 = c.y0.max(row);
            let y1 = (c.y0 + c.height).min(row + height);
            for y in y0..y1 {
                let src = ((y - c.y0) as usize * c.width as usize + (x0 - c.x0) as usize) * spp;
                let dst = (y - row) as usize * width as usize + (x0 - col) as usize;
                let out = &mut data[dst..dst + (x1 - x0) as usize];
                layout.samples_to_f32(&samples, src, spp, nodata, out);
            }
        }
        Ok(())
    }

    /// How an IFD's chunks are stored, if [`chunks`] can decode them (cached per IFD).
    fn layout(&mut self, ifd: usize) -> Result<Option<Arc<ChunkLayout>>, CogError> {
        if let Some(l) = self.layouts.get(&ifd) {
            return Ok(l.clone());
        }
        self.select_ifd(ifd)?;
        let layout = self.read_layout().map_err(|e| CogError::Format {
            path: self.name.clone(),
            reason: e.to_string(),
        })?;
        let layout = layout.map(Arc::new);
        self.layouts.insert(ifd, layout.clone());
        Ok(layout)
    }

    fn read_layout(&mut self) -> Result<Option<ChunkLayout>, tiff::TiffError> {
        let d = &mut self.decoder;
        let codec = match d.find_tag_unsigned::<u16>(Tag::Compression)?.unwrap_or(1) {
            1 => chunks::Codec::None,
            8 | 32946 => chunks::Codec::Deflate,
            _ => return Ok(None),
        };
        let horizontal_predictor = match d.find_tag_unsigned::<u16>(Tag::Predictor)?.unwrap_or(1) {
            1 => false,
            2 => true,
            _ => return Ok(None),
        };
        let spp = d
            .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)?
            .unwrap_or(1) as usize;
        let planar = d
            .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)?
            .unwrap_or(1);
        let bits = d
            .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)?
            .unwrap_or_else(|| vec![1]);
        let formats = d
            .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)?
            .unwrap_or_else(|| vec![1]);
        let (Some(&b), Some(&f)) = (bits.first(), formats.first()) else {
            return Ok(None);
        };
        if spp == 0
            || spp > 8
            || (spp > 1 && planar != 1)
            || bits.iter().any(|&x| x != b)
            || formats.iter().any(|&x| x != f)
        {
            return Ok(None);
        }
        let Some(sample) = chunks::SampleKind::from_tiff(f, b) else {
            return Ok(None);
        };
        if horizontal_predictor && sample == chunks::SampleKind::F32 {
            return Ok(None);
        }
        let tiled = matches!(d.get_chunk_type(), tiff::decoder::ChunkType::Tile);
        let (off_tag, count_tag) = if tiled {
            (Tag::TileOffsets, Tag::TileByteCounts)
        } else {
            (Tag::StripOffsets, Tag::StripByteCounts)
        };
        let offsets = d.get_tag_u64_vec(off_tag)?;
        let byte_counts = d.get_tag_u64_vec(count_tag)?;
        let (chunk_width, chunk_height) = d.chunk_dimensions();
        let (image_width, image_height) = d.dimensions()?;
        if chunk_width == 0 || chunk_height == 0 || offsets.len() != byte_counts.len() {
            return Ok(None);
        }
        let needed = image_width.div_ceil(chunk_width) as usize
            * image_height.div_ceil(chunk_height) as usize;
        if offsets.len() < needed {
            return Ok(None);
        }
        // `ByteOrder` is not nameable outside the tiff crate; its Debug text is stable.
        let little_endian = format!("{:?}", d.byte_order()) == "LittleEndian";
        Ok(Some(ChunkLayout {
            offsets,
            byte_counts,
            chunk_width,
            chunk_height,
            image_width,
            image_height,
            tiled,
            codec,
            horizontal_predictor,
            sample,
            samples_per_pixel: spp,
            little_endian,
        }))
    }

    fn chunk_dims(&self, index: u32) -> Result<(u32, u32), CogError> {
        // `chunk_data_dimensions` panics on an index past the end; count first.
        let (cw, ch) = self.decoder.chunk_dimensions();
        let lv = self
            .levels
            .iter()
            .find(|l| l.ifd == self.current_ifd)
            .copied()
            .ok_or_else(|| CogError::Format {
                path: self.name.clone(),
                reason: "level lost".into(),
            })?;
        let count = lv.width.div_ceil(cw) * lv.height.div_ceil(ch);
        if index >= count {
            return Err(CogError::Format {
                path: self.name.clone(),
                reason: format!("chunk {index} out of range"),
            });
        }
        Ok(self.decoder.chunk_data_dimensions(index))
    }

    fn chunk_error(&mut self, e: tiff::TiffError, index: u32) -> CogError {
        if let Some((start, end, reason)) = self.decoder.inner().error.take() {
            return CogError::Io {
                path: self.name.clone(),
                start,
                end,
                reason,
            };
        }
        CogError::Format {
            path: self.name.clone(),
            reason: format!("tile/strip {index}: {e}"),
        }
    }

    fn select_ifd(&mut self, ifd: usize) -> Result<(), CogError> {
        if self.current_ifd != ifd {
            self.decoder
                .seek_to_image(ifd)
                .map_err(|e| CogError::Format {
                    path: self.name.clone(),
                    reason: e.to_string(),
                })?;
            self.current_ifd = ifd;
        }
        Ok(())
    }
}

/// Converts decoded samples to `f32`, mapping the nodata value to `NaN`.
fn to_f32(chunk: DecodingResult, nodata: Option<f64>) -> Vec<f32> {
    fn conv<T: Copy + Into<f64>>(v: Vec<T>, nodata: Option<f64>) -> Vec<f32> {
        v.into_iter()
            .map(|x| {
                let f: f64 = x.into();
                if Some(f) == nodata {
                    f32::NAN
                } else {
                    f as f32
                }
            })
            .collect()
    }
    match chunk {
        DecodingResult::U8(v) => conv(v, nodata),
        DecodingResult::U16(v) => conv(v, nodata),
        DecodingResult::U32(v) => conv(v, nodata),
        DecodingResult::I8(v) => conv(v, nodata),
        DecodingResult::I16(v) => conv(v, nodata),
        DecodingResult::I32(v) => conv(v, nodata),
        DecodingResult::F32(v) => v
            .into_iter()
            .map(|x| {
                if nodata.is_some_and(|n| (x as f64 == n) || (n.is_nan() && x.is_nan())) {
                    f32::NAN
                } else {
                    x
                }
            })
            .collect(),
        DecodingResult::F64(v) => conv(v, nodata),
        DecodingResult::U64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F16(v) => v.into_iter().map(f32::from).collect(),
    }
}

/// EPSG, geotransform and nodata from the first IFD's GeoTIFF tags.
fn read_geo<R: Read + Seek>(d: &mut Decoder<R>) -> Result<(Georef, Option<f64>), String> {
    let scale = d.get_tag_f64_vec(Tag::ModelPixelScaleTag).map_err(|_| {
        "no ModelPixelScale tag (rotated or ungeoreferenced rasters are not supported)".to_string()
    })?;
    let tie = d
        .get_tag_f64_vec(Tag::ModelTiepointTag)
        .map_err(|_| "no ModelTiepoint tag".to_string())?;
    if scale.len() < 2 || tie.len() < 6 || scale[0] <= 0.0 || scale[1] <= 0.0 {
        return Err("malformed ModelPixelScale/ModelTiepoint".into());
    }
    let keys = d
        .get_tag_u16_vec(Tag::GeoKeyDirectoryTag)
        .map_err(|_| "no GeoKeyDirectory tag".to_string())?;
    let epsg = epsg_from_geokeys(&keys)?;
    // Tiepoint maps raster (i, j) to model (x, y); PixelIsArea assumed (the COG default).
    let x_min = tie[3] - tie[0] * scale[0];
    let y_max = tie[4] + tie[1] * scale[1];
    let nodata = d
        .find_tag(Tag::GdalNodata)
        .ok()
        .flatten()
        .and_then(|v| v.into_string().ok())
        .and_then(|s| s.trim_matches(char::from(0)).trim().parse::<f64>().ok());
    Ok((
        Georef {
            epsg,
            x_min,
            y_max,
            res_x: scale[0],
            res_y: scale[1],
        },
        nodata,
    ))
}

/// EPSG code from a GeoKeyDirectory: ProjectedCSTypeGeoKey (3072) or, for geographic
/// rasters, GeographicTypeGeoKey (2048).
pub fn epsg_from_geokeys(keys: &[u16]) -> Result<u32, String> {
    if keys.len() < 4 {
        return Err("GeoKeyDirectory is too short".into());
    }
    let n = keys[3] as usize;
    let mut projected = None;
    let mut geographic = None;
    for k in 0..n {
        let e = match keys.get(4 + 4 * k..8 + 4 * k) {
            Some(e) => e,
            None => return Err("GeoKeyDirectory is truncated".into()),
        };
        // Location 0 means the value is inline.
        if e[1] == 0 {
            match e[0] {
                3072 => projected = Some(e[3] as u32),
                2048 => geographic = Some(e[3] as u32),
                _ => {}
            }
        }
    }
    match (projected, geographic) {
        (Some(p), _) if p != 32767 => Ok(p),
        (None, Some(g)) if g != 32767 => Ok(g),
        _ => Err("the GeoKeys name no EPSG code (user-defined CRSs are not supported)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geokeys_projected_and_geographic() {
        let proj = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633];
        assert_eq!(epsg_from_geokeys(&proj), Ok(32633));
        let geo = [1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326];
        assert_eq!(epsg_from_geokeys(&geo), Ok(4326));
        let user = [1, 1, 0, 1, 3072, 0, 1, 32767];
        assert!(epsg_from_geokeys(&user).is_err());
        assert!(epsg_from_geokeys(&[1, 1, 0, 5, 3072]).is_err());
    }

    #[test]
    fn file_urls_read_through_object_store() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, (0u8..=255).collect::<Vec<u8>>()).unwrap();
        let src = ObjectStoreSource::from_url(&format!("file://{}", p.display())).unwrap();
        assert_eq!(src.size(), Ok(256));
        assert_eq!(src.read_range(10, 14), Ok(vec![10, 11, 12, 13]));
        assert_eq!(src.read_range(250, 400).map(|v| v.len()), Ok(6));
        let missing =
            ObjectStoreSource::from_url(&format!("file://{}/nope.tif", dir.path().display()))
                .unwrap();
        let err = missing.size().unwrap_err();
        assert!(err.contains("1 attempt"), "not-found is not retried: {err}");
        assert!(ObjectStoreSource::from_url("gopher://x/y.tif").is_err());
    }

    #[test]
    fn corrupt_bytes_fail_with_the_name() {
        let src = MemSource {
            name: "mem://broken.tif".into(),
            bytes: b"II*\0garbage that is not an IFD".to_vec(),
        };
        let err = Cog::open(Arc::new(src))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("mem://broken.tif"), "{err}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            attempts: 5,
            first_backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_millis(35),
        };
        let ms: Vec<u128> = (1..=4).map(|r| p.delay(r).as_millis()).collect();
        assert_eq!(ms, vec![10, 20, 35, 35]);
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let nf = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert!(is_permanent(&nf));
        let generic = |m: &str| object_store::Error::Generic {
            store: "HTTP",
            source: m.to_string().into(),
        };
        assert!(is_permanent(&generic(
            "Client error with status 416 Range Not Satisfiable"
        )));
        assert!(!is_permanent(&generic(
            "Server error with status 503 Service Unavailable"
        )));
        assert!(!is_permanent(&generic(
            "error sending request: connection refused"
        )));
    }
}
