//! The evalscript module's error type; every message is meant for the script's author.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalscriptError {
    #[error("evalscript syntax error: {0}")]
    Syntax(String),

    /// An exception or limit hit while running the script's top-level code.
    #[error("evalscript failed while running its top-level code: {0}")]
    TopLevel(String),

    #[error(
        "evalscript must define a function {0}(): a V3 script defines setup() and \
         evaluatePixel(), a V1 script is a function body ending in `return [...]`"
    )]
    MissingFunction(&'static str),

    #[error("setup() threw an error: {0}")]
    SetupThrew(String),

    #[error("invalid setup(): {0}")]
    InvalidSetup(String),

    #[error("not supported yet: {0}")]
    Unsupported(String),

    /// The caller passed bands that do not match `Setup::input_bands` (a programming error).
    #[error("evaluate() input mismatch: {0}")]
    Input(String),

    #[error("evaluatePixel threw an error at pixel {pixel}: {message}")]
    PixelThrew { pixel: usize, message: String },

    #[error("evaluatePixel returned an invalid value at pixel {pixel}: {message}")]
    BadReturn { pixel: usize, message: String },

    #[error(
        "evalscript exceeded its time budget of {budget:?} after {pixels_done} of {pixels} pixels"
    )]
    TimeBudget {
        budget: Duration,
        pixels_done: usize,
        pixels: usize,
    },

    /// The evaluation grew the heap beyond its memory limit (`Program::set_memory_limit`).
    #[error(
        "evalscript exceeded its memory limit of {limit_mib} MiB at pixel {pixel} (a runaway \
         allocation?)"
    )]
    Memory { pixel: usize, limit_mib: usize },

    /// The script cannot run under the time limit as written (see `instrument`).
    #[error("evalscript refused: {0}")]
    Refused(String),

    /// The request was cancelled while the script ran.
    #[error("the evaluation was cancelled with its request")]
    Cancelled,

    /// boa's loop-iteration, recursion or stack limit, or the time budget, stopped
    /// `evaluatePixel`.
    #[error("evaluatePixel was stopped at pixel {pixel}: {message}")]
    Limit { pixel: usize, message: String },
}
