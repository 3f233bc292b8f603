//! Evalscripts: `setup()` parsing, the boa runtime, and sample-type formatting.
//!
//! `Program::compile` detects the format (V3, V1 body, V1/V2 function style) from the
//! code, runs the script with the helper library of `prelude.js` installed and calls its
//! `setup()`; `Program::evaluate` calls `evaluatePixel` for every pixel of a block and
//! returns formatted planar buffers; `Program::evaluate_scenes` does the same for several
//! scenes (ORBIT/TILE mosaicking, scene hooks, `userData`).

pub mod coverage;
mod error;
mod instrument;
mod memory;
mod program;
mod runtime;
mod sample_type;
mod scenes;
mod setup;
mod v1;
pub mod wasm;
mod watch;

#[cfg(test)]
mod collection_tests;
#[cfg(test)]
mod fusion_tests;
#[cfg(test)]
mod helper_tests;
#[cfg(test)]
mod pixels_tests;
#[cfg(test)]
mod sandbox_tests;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;

pub use error::EvalscriptError;
pub use memory::{counting_installed, CountingAlloc, DEFAULT_MEMORY_LIMIT};
pub use program::{Program, ScriptFormat};
pub use runtime::DEFAULT_TIME_BUDGET;
pub use sample_type::{
    format_auto, format_f32, format_i16, format_i8, format_u16, format_u8, write_sample, SampleType,
};
pub use scenes::{FusionSource, SceneEvaluation, SceneInput};
pub use setup::{DatasourceInput, Mosaicking, OutputSpec, Setup, MAX_OUTPUT_BANDS};
pub use watch::{set_setup_time_budget, setup_budget, CancelScope, CancelToken};
