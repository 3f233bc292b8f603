//! Evalscripts: `setup()` parsing, the boa runtime, and sample-type formatting.
//!
//! Scope so far: V3 scripts with SIMPLE mosaicking, run in boa a block at a time.
//! `Program::compile` runs the script and its `setup()`; `Program::evaluate` calls
//! `evaluatePixel` for every pixel of a block and returns formatted planar buffers.

mod error;
mod program;
mod runtime;
mod sample_type;
mod setup;

#[cfg(test)]
mod tests;

pub use error::EvalscriptError;
pub use program::Program;
pub use runtime::DEFAULT_TIME_BUDGET;
pub use sample_type::{
    format_auto, format_f32, format_i16, format_i8, format_u16, format_u8, write_sample, SampleType,
};
pub use setup::{Mosaicking, OutputSpec, Setup, MAX_OUTPUT_BANDS};
