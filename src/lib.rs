//! Tessera: a self-hosted, wire-compatible Sentinel Hub Batch Processing API.
//!
//! Link [`Engine`] to run batch requests in your own program, or run `tessera serve` for
//! the REST API that `sentinelhub-py` talks to. See ARCHITECTURE.md for the codemap.
//!
//! ```no_run
//! use tessera::{Engine, EngineConfig};
//! use tessera::engine::lifecycle::Event;
//!
//! let engine = Engine::start(EngineConfig::default())?;
//! let body: serde_json::Value = serde_json::from_str(include_str!("../fixtures/requests/ndvi.json"))?;
//! let request = engine.create("me", &body)?;
//! engine.act("me", &request.id, Event::Start)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod accounting;
pub mod api;
pub mod artifacts;
#[doc(hidden)]
pub mod benchkit;
pub mod data;
pub mod engine;
pub mod evalscript;
pub mod grid;
pub mod http;
pub mod output;
pub mod raster;
pub mod store;

pub use engine::{Engine, EngineConfig};

#[cfg(test)]
mod fuzz_tests;
