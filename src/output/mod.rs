//! Everything between a finished raster and a file in storage: the GeoTIFF encoder, the
//! tile path templates of `defaultTilePath` (batch-api.md §10.1), and the sink that writes
//! bytes to a location atomically. The engine decides *what* to write; this module only
//! knows *how*.

mod geotiff;
mod path;
mod sink;

use std::path::PathBuf;

pub use geotiff::encode_geotiff;
pub use path::{
    bucket_prefix, expand, extension_for_mime, resolve_template, PathVars, DEFAULT_LAYOUT,
};
pub use sink::{Sinks, Target};

/// Everything that can go wrong while encoding or writing an output.
///
/// Messages are shown to API users (a FAILED tile carries one), so each names the offending
/// value or path and, for I/O, the operating system's reason.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("invalid raster: {0}")]
    InvalidRaster(String),
    #[error("invalid georeference: {0}")]
    InvalidGeoref(String),
    #[error("EPSG:{0} cannot be written as a GeoTIFF CRS key (EPSG codes 1..=32766 only)")]
    UnsupportedCrs(u32),
    #[error("nodata value {value} cannot be stored in {sample_type} samples")]
    InvalidNodata {
        value: f64,
        sample_type: &'static str,
    },
    #[error("TIFF encoding failed: {0}")]
    Tiff(String),
    #[error("invalid output path template {template:?}: {reason}")]
    InvalidTemplate { template: String, reason: String },
    #[error("unsupported output location {location:?}: {reason}")]
    UnsupportedLocation { location: String, reason: String },
    /// `error` is deliberately not a `#[source]`: it is already part of the message, which
    /// is what a FAILED tile shows.
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("output writer task failed: {0}")]
    Task(String),
}

impl OutputError {
    fn io(action: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        OutputError::Io {
            action,
            path: path.into(),
            error,
        }
    }
}
