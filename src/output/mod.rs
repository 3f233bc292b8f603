//! Everything between a finished raster and a file in storage: the GeoTIFF / COG encoder
//! (`geotiff`, `cog`, over the IFDs-first container writer `tiffwrite`), PNG, JPEG and
//! `userdata.json` (`image`), the choice of encoder per response and the overwrite /
//! skipExisting rules (`format`), the tile path templates of `defaultTilePath`
//! (batch-api.md §10.1, `path`), and the sinks that write bytes to a local path, S3, Google
//! Cloud Storage or Azure Blob Storage atomically (`sink`, `s3`, `cloud`), and where a
//! client may write at all (`confine`: one-segment values, per-client folders, allowed
//! prefixes and bucket grants). The engine decides *what* to write; this module only knows
//! *how* and *where*.

mod cloud;
mod cog;
pub mod confine;
mod format;
mod geotiff;
mod image;
mod path;
mod s3;
mod sink;
mod tiffwrite;
pub mod zarr;

use std::path::PathBuf;

pub use cloud::{AzureConfig, GcsConfig, AZURITE_ACCOUNT, AZURITE_KEY};
pub use cog::{CogParams, Resampling};
pub use format::{
    check_existing_tiles, decide_existing, existence_check_needed, listing_prefix, ExistingAction,
    OutputFormat, OutputOptions, EXISTENCE_CHECK_LIMIT,
};
pub use geotiff::{encode_geotiff, encode_tiff, Compression, TiffOptions};
pub use image::{encode_jpeg, encode_png, encode_userdata, DEFAULT_JPEG_QUALITY};
pub use path::{
    bucket_prefix, expand, extension_for_mime, resolve_template, PathVars, DEFAULT_LAYOUT,
};
pub use s3::S3Config;
pub use sink::{LocalTarget, Sinks, Target, CLIENTS_DIR, LIST_LIMIT};

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
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("invalid COG output: {0}")]
    InvalidCog(String),
    #[error("invalid output option: {0}")]
    InvalidOption(String),
    #[error("output '{identifier}': format '{mime}' is not supported: {reason}")]
    UnsupportedFormat {
        identifier: String,
        mime: String,
        reason: String,
    },
    #[error("invalid output path template {template:?}: {reason}")]
    InvalidTemplate { template: String, reason: String },
    #[error("unsupported output location {location:?}: {reason}")]
    UnsupportedLocation { location: String, reason: String },
    /// A well-formed location outside the client's scope (issue 12).
    #[error("output location {location:?} is not allowed: {reason}")]
    Refused { location: String, reason: String },
    /// `error` is deliberately not a `#[source]`: it is already part of the message, which
    /// is what a FAILED tile shows. `path` is the location as the user wrote it (relative
    /// to their folder), not the host path behind it.
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// Object store failures (S3, GCS, Azure): the store's message names the reason (HTTP status,
    /// connection refused, missing bucket).
    #[error("cannot {action} {location}: {error}")]
    Store {
        action: &'static str,
        location: String,
        error: String,
    },
    /// §10.2: outputs already exist and the request's flags do not allow replacing them.
    #[error("{0}")]
    Exists(String),
    #[error("output writer task failed: {0}")]
    Task(String),
}
