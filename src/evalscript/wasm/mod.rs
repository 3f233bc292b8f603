//! The compiled evalscript tier: the numeric subset of V3 `evaluatePixel` compiled to
//! WebAssembly and run in wasmtime over whole blocks, bit-identical to the boa tier.
//!
//! `Program::compile` tries this tier first and falls back to boa on
//! `WasmError::Unsupported`, whose message says why (for `tessera eval --explain`).
//! `setup()` is not compiled: the caller passes the input band names and output band
//! counts that the boa tier already parsed.
//!
//! # Subset (everything else is `Unsupported`)
//! - Top level: function declarations, and `var`/`let`/`const` whose initialisers are
//!   compilable constants (evaluated once per block) or function expressions; no other
//!   top-level statements.
//! - The entry: `evaluatePixel(samples, ...)` (a declaration or a constant function),
//!   `samples.BAND` / `samples["BAND"]` of setup's input bands, the samples object
//!   passed to helpers or aliased, or destructured (`evaluatePixel({B04, B08})`); the
//!   other parameters must not be used. Or a V1 body (`Entry::V1Body`): the wrapper
//!   function whose parameters are the band globals. It returns an array literal with at
//!   least as many elements as output bands (or a bare value for one band), or an object
//!   literal keyed by output id.
//! - Numbers and booleans (types are static; a variable keeps one type), number literals,
//!   `NaN`, `Infinity`, `Math.*` constants, `Number.*` constants; constant strings in
//!   `==`/`===` and `switch` (folded), constant object tables of numbers and strings.
//! - `+ - * / %`, `**` with a literal exponent, unary `- + !`, comparisons, `==`/`===`,
//!   `&&`, `||` (operands of one type), `?:`, `,`, assignments (`= += -= *= /= %=`),
//!   `++`/`--` on variables, `isNaN`, `isFinite`, `Number.isNaN/isFinite`.
//! - `Math.` abs sqrt floor ceil trunc fround min max hypot pow atan2 round sign exp expm1
//!   log log1p log2 log10 cbrt sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh.
//! - Statements: `if`/`else`, blocks, `while`, `do`/`while`, `for(;;)`, unlabelled
//!   `break`/`continue`, `return`, `switch` with constant cases.
//! - Calls of the script's functions (top-level, nested with closures over their
//!   definer's variables, constant arrow/function expressions), inlined (no recursion);
//!   functions may return fixed-size arrays. Fixed-size arrays: literals, spreads,
//!   `map`, `concat`, `length`, literal or run-time indices.
//! # Semantics
//! All arithmetic is f64 as in JS. Functions that are not single wasm instructions
//! (`%`, `**`, `Math.round/pow/exp/log/sin/...`) are host imports computed with the same
//! Rust f64 methods boa 0.22 uses, so results are bit-identical. NaN payloads and signs
//! are not specified (JS cannot observe them); every other bit, -0 included, matches.
//!
//! # ABI of a compiled or precompiled module
//! Generated modules and users' precompiled modules (`precompiled`, which adds the setup
//! exports and the `//!tessera-wasm` submission form) share this ABI:
//! - Exports `memory` (32-bit linear memory, 64 KiB pages) and `run(n: i32)`.
//! - Imports only functions `js.<name>` of type `(f64) -> f64` or `(f64, f64) -> f64`
//!   (see `lower::Host`); a precompiled module may import any subset.
//! - The I/O base `B` is 0, or, when the module exports an i32 global `__heap_base`
//!   (wasm-ld's end of static data and stack), that value rounded up to a multiple of 8,
//!   so a C or Rust module's own data is never overwritten. Generated modules use 0.
//! - For a block of `n` pixels with `I` input bands and `O` output bands in total:
//!   input plane `k` (f32, little endian) starts at byte `B + k * n * 4`; output plane `j`
//!   (f64) starts at byte `B + align8(I * n * 4) + j * n * 8`. Pixel `i` of a plane is at
//!   `start + i * 4` (inputs) or `start + i * 8` (outputs).
//! - `n` is always a multiple of 4 (the host pads the last chunk of a block with stale
//!   values and ignores their outputs), so a module may process 2 or 4 pixels at a time
//!   with SIMD and no scalar tail; with `B` 0, every plane is then 16-byte aligned.
//! - The host grows the memory to fit before calling `run`, writes the inputs, calls
//!   `run(n)` once, and reads the outputs. `run` must not depend on anything but the
//!   memory contents (the host may reuse an instance across blocks).
//! - `run` (and instantiation) stop with `TimeBudget` when the epoch budget runs out; the
//!   memory never grows past the cap.
//!
//! Generated modules (the host knows their shape, see `run.rs`) refine this: only the
//! input bands `evaluatePixel` reads have planes (in band order), and with
//! `CompiledProgram::compile_formatted` a FLOAT32 output band is an f32 plane (`n * 4`
//! bytes: the module does the FLOAT32 formatting, `value as f32`, itself).
//!
//! # Speed
//! Scripts without loops compile to `f64x2` SIMD over pixel pairs with masked
//! (branch-free) conditionals; the rest run a pixel at a time (`codegen.rs`). Blocks go
//! through linear memory in L2-sized chunks (`MAX_BLOCK_PIXELS`).

mod codegen;
mod lower;
pub mod precompiled;
mod run;

#[cfg(test)]
mod coverage_tests;
#[cfg(test)]
mod tests;

pub use run::{CompiledProgram, DEFAULT_MEMORY_CAP, MAX_BLOCK_PIXELS};

/// Errors of the compiled tier.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The script is outside the compilable subset; run it in boa. The text says why.
    #[error("not compilable: {0}")]
    Unsupported(String),
    /// The input did not match the compiled setup.
    #[error("bad input: {0}")]
    Input(String),
    /// The block did not finish within the time budget.
    #[error("evaluation exceeded the time budget of {budget:?}")]
    TimeBudget { budget: std::time::Duration },
    /// The block needs more memory than the cap allows.
    #[error("evaluation needs {needed} bytes of memory, over the cap of {cap}")]
    Memory { needed: usize, cap: usize },
    /// wasmtime failed to compile, instantiate or run the module (a bug in this tier).
    #[error("wasm engine: {0}")]
    Engine(String),
}
