//! Tessera: a self-hosted, wire-compatible Sentinel Hub Batch Processing API.
pub mod raster;
