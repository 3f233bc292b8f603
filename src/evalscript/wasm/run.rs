//! The wasmtime runner: compiles the generated module once and evaluates blocks with a
//! time budget (epoch interruption) and a memory cap (`StoreLimits`).
//!
//! Generated modules follow the ABI of `mod.rs` with two refinements the host knows
//! about: only the input bands `evaluatePixel` reads get a plane (in band order), and a
//! FLOAT32 output band may be stored as f32 (4 bytes per pixel) instead of f64. The
//! host always calls `run(n)` with `n` a multiple of 4, padding the last chunk (padding
//! inputs are stale values; their outputs are ignored), so SIMD modules need no tail.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{
    Config, Engine, Instance, Linker, Memory, Module, OptLevel, Store, StoreLimits,
    StoreLimitsBuilder, Trap, TypedFunc, UpdateDeadline,
};

use super::codegen::{emit, input_planes, OutKind};
use super::lower::{lower, Entry, Host};
use super::WasmError;
use crate::evalscript::sample_type::{format_values, SampleType};
use crate::evalscript::OutputSpec;
use crate::raster::SampleBuffer;

/// Largest block handed to `run` in one call; bigger inputs are evaluated in chunks so
/// linear memory stays small (`MAX_BLOCK_PIXELS * (4 * inputs + 8 * outputs)` bytes).
/// Measured on NDVI: smaller chunks (4 Ki to 32 Ki pixels) were 10 to 30 % slower
/// (per-call overhead), larger ones no faster.
pub const MAX_BLOCK_PIXELS: usize = 1 << 16;
/// Default cap on a module's linear memory.
pub const DEFAULT_MEMORY_CAP: usize = 256 << 20;
/// The epoch ticker period: the granularity of the time budget.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Epoch ticks between two reads of the evaluation's watch (deadline, cancel flag): a
/// cancelled request stops its compiled evaluations within ~100 ms.
const WATCH_TICKS: u64 = 20;
const WASM_PAGE: usize = 65536;

/// One process-wide engine; its epoch is advanced by a background ticker thread.
pub(super) fn engine() -> Result<&'static Engine, WasmError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            // On by default in wasmtime 48; explicit because the codegen relies on it.
            config.wasm_simd(true);
            config.cranelift_opt_level(OptLevel::Speed);
            let engine = Engine::new(&config).map_err(|e| e.to_string())?;
            let ticker = engine.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    ticker.increment_epoch();
                })
                .map_err(|e| e.to_string())?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| WasmError::Engine(e.clone()))
}

fn engine_error(err: impl std::fmt::Display) -> WasmError {
    WasmError::Engine(err.to_string())
}

/// A linker that defines every `js.*` host import (`lower::Host`).
pub(super) fn host_linker(engine: &Engine) -> Result<Linker<StoreLimits>, WasmError> {
    let mut linker: Linker<StoreLimits> = Linker::new(engine);
    for host in Host::ALL {
        let defined = if host.arity() == 2 {
            linker.func_wrap("js", host.name(), move |x: f64, y: f64| host.eval(x, y))
        } else {
            linker.func_wrap("js", host.name(), move |x: f64| host.eval(x, 0.0))
        };
        defined.map_err(engine_error)?;
    }
    Ok(linker)
}

/// A store capped at `memory_cap` bytes of linear memory whose code (a start function
/// included) is interrupted once `budget` has passed.
pub(super) fn limited_store(
    engine: &Engine,
    memory_cap: usize,
    budget: Duration,
) -> Store<StoreLimits> {
    let limits = StoreLimitsBuilder::new().memory_size(memory_cap).build();
    let mut store = Store::new(engine, limits);
    store.limiter(|limits| limits);
    store.set_epoch_deadline(budget_ticks(budget));
    store
}

/// Epoch ticks in `budget` (at least one).
pub(super) fn budget_ticks(budget: Duration) -> u64 {
    (budget.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64
}

/// A compiled `evaluatePixel` bound to its own wasmtime store and instance.
pub struct CompiledProgram {
    store: Store<StoreLimits>,
    memory: Memory,
    run: TypedFunc<i32, ()>,
    n_inputs: usize,
    /// Input band index of each plane in linear memory.
    planes: Vec<usize>,
    /// How the module stores each output band.
    outs: Vec<OutKind>,
    simd: bool,
    /// Where the I/O planes start (`mod.rs`, ABI): 0, or the module's `__heap_base`.
    base: usize,
    budget: Duration,
    memory_cap: usize,
}

impl std::fmt::Debug for CompiledProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProgram")
            .field("n_inputs", &self.n_inputs)
            .field("planes", &self.planes)
            .field("outs", &self.outs)
            .field("simd", &self.simd)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl CompiledProgram {
    /// Compiles `source`'s `evaluatePixel` for `setup()`'s input bands (in order) and
    /// output band counts (one entry per output). Without output ids only single-output
    /// scripts compile (its id is taken as `default`); see `compile_with_ids`.
    /// `Unsupported` means: run it in boa.
    pub fn compile(
        source: &str,
        input_bands: &[String],
        output_band_counts: &[usize],
    ) -> Result<CompiledProgram, WasmError> {
        let [bands] = output_band_counts else {
            return Err(WasmError::Unsupported(format!(
                "{} outputs given without ids",
                output_band_counts.len()
            )));
        };
        Self::compile_with_ids(source, input_bands, &[("default".to_string(), *bands)])
    }

    /// Compiles for `setup()`'s input bands and outputs as `(id, bands)` in setup order;
    /// `evaluatePixel` may then return an object literal keyed by output id.
    pub fn compile_with_ids(
        source: &str,
        input_bands: &[String],
        outputs: &[(String, usize)],
    ) -> Result<CompiledProgram, WasmError> {
        let outputs: Vec<(String, usize, Option<SampleType>)> = outputs
            .iter()
            .map(|(id, bands)| (id.clone(), *bands, None))
            .collect();
        Self::build(source, input_bands, &outputs, true)
    }

    /// As `compile_with_ids`, also given each output's sample type, for
    /// `evaluate_formatted`: FLOAT32 bands are then demoted to f32 inside the module
    /// (exactly `format_f32`), so whole blocks go from input planes to output buffers
    /// with one copy each way.
    pub fn compile_formatted(
        source: &str,
        input_bands: &[String],
        outputs: &[(String, usize, SampleType)],
    ) -> Result<CompiledProgram, WasmError> {
        Self::build_entry(
            source,
            input_bands,
            &typed(outputs),
            true,
            Entry::EvaluatePixel,
        )
    }

    /// As `compile_formatted` for a V1 body, given wrapped as a function whose
    /// parameters are `input_bands` (`evalscript::v1::V1_FUNCTION`, as the boa tier runs it).
    pub fn compile_v1_body(
        wrapped_source: &str,
        input_bands: &[String],
        outputs: &[(String, usize, SampleType)],
    ) -> Result<CompiledProgram, WasmError> {
        Self::build_entry(
            wrapped_source,
            input_bands,
            &typed(outputs),
            true,
            Entry::V1Body,
        )
    }

    /// `allow_simd: false` forces the scalar code shape (tests compare both shapes).
    pub(crate) fn build(
        source: &str,
        input_bands: &[String],
        outputs: &[(String, usize, Option<SampleType>)],
        allow_simd: bool,
    ) -> Result<CompiledProgram, WasmError> {
        Self::build_entry(
            source,
            input_bands,
            outputs,
            allow_simd,
            Entry::EvaluatePixel,
        )
    }

    fn build_entry(
        source: &str,
        input_bands: &[String],
        outputs: &[(String, usize, Option<SampleType>)],
        allow_simd: bool,
        entry: Entry,
    ) -> Result<CompiledProgram, WasmError> {
        let ids: Vec<(String, usize)> = outputs.iter().map(|(id, b, _)| (id.clone(), *b)).collect();
        let lowered = lower(source, input_bands, &ids, entry)?;
        let planes = input_planes(&lowered);
        let outs: Vec<OutKind> = outputs
            .iter()
            .flat_map(|(_, bands, t)| {
                let kind = t.map(kind_for).unwrap_or(OutKind::F64);
                std::iter::repeat_n(kind, *bands)
            })
            .collect();
        let simd = allow_simd && super::codegen::simd_eligible(&lowered);
        let bytes = emit(&lowered, &planes, &outs, allow_simd);
        let module = Module::from_binary(engine()?, &bytes).map_err(engine_error)?;
        let mut program = Self::instantiate(&module, input_bands.len(), planes, outs)?;
        program.simd = simd;
        Ok(program)
    }

    /// Instantiates a module that follows the ABI of `mod.rs` (generated, or a user's
    /// precompiled one, already validated) for `n_inputs` input and `out_bands` output
    /// planes, under the default memory cap and time budget.
    pub(super) fn from_module(
        module: &Module,
        n_inputs: usize,
        out_bands: usize,
    ) -> Result<CompiledProgram, WasmError> {
        let planes = (0..n_inputs).collect();
        Self::instantiate(module, n_inputs, planes, vec![OutKind::F64; out_bands])
    }

    fn instantiate(
        module: &Module,
        n_inputs: usize,
        planes: Vec<usize>,
        outs: Vec<OutKind>,
    ) -> Result<CompiledProgram, WasmError> {
        let engine = engine()?;
        let linker = host_linker(engine)?;
        let memory_cap = DEFAULT_MEMORY_CAP;
        let budget = crate::evalscript::DEFAULT_TIME_BUDGET;
        let mut store = limited_store(engine, memory_cap, budget);
        let instance: Instance = linker
            .instantiate(&mut store, module)
            .map_err(|err| match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => WasmError::TimeBudget { budget },
                _ => engine_error(format!("{err:#}")),
            })?;
        let base = match instance.get_global(&mut store, "__heap_base") {
            Some(global) => match global.get(&mut store).i32() {
                Some(value) => ((value as u32 as usize) + 7) & !7,
                None => return Err(WasmError::Engine("__heap_base is not an i32".into())),
            },
            None => 0,
        };
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| WasmError::Engine("module exports no memory".into()))?;
        let run = instance
            .get_typed_func::<i32, ()>(&mut store, "run")
            .map_err(engine_error)?;
        // Runs on the evaluating thread, so it reads that thread's watch (`evalscript::watch`).
        store.epoch_deadline_callback(|_| match crate::evalscript::watch::check() {
            Some(_) => Err(wasmtime::Error::msg("stopped by the evaluation's watch")),
            None => Ok(UpdateDeadline::Continue(WATCH_TICKS)),
        });
        Ok(CompiledProgram {
            store,
            memory,
            run,
            n_inputs,
            planes,
            outs,
            simd: false,
            base,
            budget,
            memory_cap,
        })
    }

    /// Whether the module evaluates pixel pairs in SIMD lanes (no loops in the script).
    pub fn is_simd(&self) -> bool {
        self.simd
    }

    /// Limits the wall time of each `evaluate` call (granularity: a few milliseconds).
    pub fn set_time_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    /// Evaluates `len` pixels; `bands[k]` holds input band `k`. Returns one f64 plane of
    /// `len` values per output band (outputs in setup order, then bands), unformatted:
    /// format with the sample-type functions. (Bands compiled as FLOAT32 by
    /// `compile_formatted` come back already rounded to f32.)
    pub fn evaluate(&mut self, bands: &[&[f32]], len: usize) -> Result<Vec<Vec<f64>>, WasmError> {
        let mut out = Vec::new();
        self.evaluate_into(bands, len, &mut out)?;
        Ok(out)
    }

    /// As `evaluate`, reusing the planes of `out` (their allocations are kept), which
    /// saves the page faults of fresh buffers when called block after block.
    pub fn evaluate_into(
        &mut self,
        bands: &[&[f32]],
        len: usize,
        out: &mut Vec<Vec<f64>>,
    ) -> Result<(), WasmError> {
        out.resize_with(self.outs.len(), Vec::new);
        for plane in out.iter_mut() {
            // Kept allocations are not rewritten; indexed copies below vectorise,
            // `extend` from a byte iterator does not.
            plane.resize(len, 0.0);
            plane.truncate(len);
        }
        self.chunks(bands, len, |outs, data, from, n| {
            for ((plane, bytes), kind) in out.iter_mut().zip(data).zip(outs) {
                let dst = &mut plane[from..from + n];
                match kind {
                    OutKind::F64 => {
                        for (d, s) in dst.iter_mut().zip(bytes.chunks_exact(8)) {
                            *d = read_f64(s);
                        }
                    }
                    OutKind::F32 => {
                        for (d, s) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
                            *d = f64::from(read_f32(s));
                        }
                    }
                    OutKind::U8 { .. } => {
                        for (d, s) in dst.iter_mut().zip(bytes.iter()) {
                            *d = f64::from(*s);
                        }
                    }
                }
            }
        })
    }

    /// Evaluates `len` pixels into one buffer per output of `outputs` (setup order,
    /// band-sequential, formatted to the output's sample type), exactly as
    /// `Program::evaluate` returns them. Bands compiled as f32 (`compile_formatted`) are
    /// copied out as they are; the others are formatted from f64 in one pass.
    pub fn evaluate_formatted(
        &mut self,
        bands: &[&[f32]],
        len: usize,
        outputs: &[OutputSpec],
    ) -> Result<Vec<SampleBuffer>, WasmError> {
        let mut buffers = Vec::new();
        self.evaluate_formatted_into(bands, len, outputs, &mut buffers)?;
        Ok(buffers)
    }

    /// As `evaluate_formatted`, reusing `buffers` when they already have the right
    /// types and sizes (block after block of one size): no allocation, no page faults.
    pub fn evaluate_formatted_into(
        &mut self,
        bands: &[&[f32]],
        len: usize,
        outputs: &[OutputSpec],
        buffers: &mut Vec<SampleBuffer>,
    ) -> Result<(), WasmError> {
        let total: usize = outputs.iter().map(|o| o.bands).sum();
        if total != self.outs.len() {
            return Err(WasmError::Input(format!(
                "{total} output bands requested from a module with {}",
                self.outs.len()
            )));
        }
        // A band the module formats itself must be asked for with that sample type.
        let kinds = outputs
            .iter()
            .flat_map(|o| std::iter::repeat_n(o.sample_type, o.bands));
        if let Some((kind, t)) = self
            .outs
            .iter()
            .zip(kinds)
            .find(|(kind, t)| **kind != OutKind::F64 && **kind != kind_for(*t))
        {
            return Err(WasmError::Input(format!(
                "a band compiled as {kind:?} requested as {t}"
            )));
        }
        // (output, band within it) of each output band, in module order.
        let targets: Vec<(usize, usize, SampleType)> = outputs
            .iter()
            .enumerate()
            .flat_map(|(k, o)| (0..o.bands).map(move |b| (k, b, o.sample_type)))
            .collect();
        let reusable = buffers.len() == outputs.len()
            && buffers.iter().zip(outputs).all(|(b, o)| {
                b.len() == o.bands * len && b.bits() == o.sample_type.bits() && {
                    let probe = o.sample_type.zeroed_buffer(0);
                    std::mem::discriminant(&probe) == std::mem::discriminant(b)
                }
            });
        if !reusable {
            *buffers = outputs
                .iter()
                .map(|o| o.sample_type.zeroed_buffer(o.bands * len))
                .collect();
        }
        self.chunks(bands, len, |outs, data, from, n| {
            for ((bytes, kind), (k, b, t)) in data.iter().zip(outs).zip(&targets) {
                let at = b * len + from;
                let buffer = &mut buffers[*k];
                match (kind, buffer) {
                    (OutKind::F32, SampleBuffer::F32(dst)) => {
                        for (d, s) in dst[at..at + n].iter_mut().zip(bytes.chunks_exact(4)) {
                            *d = read_f32(s);
                        }
                    }
                    (OutKind::U8 { .. }, SampleBuffer::U8(dst)) => {
                        dst[at..at + n].copy_from_slice(bytes);
                    }
                    (OutKind::F64, buffer) => {
                        format_values(*t, bytes.chunks_exact(8).map(read_f64), buffer, at)
                    }
                    // Excluded by the kind check above.
                    _ => {}
                }
            }
        })
    }

    /// Runs the module over `len` pixels in chunks, calling `sink(outs, planes, from, n)`
    /// with the output planes of each chunk (bytes in linear memory, `n` pixels each).
    fn chunks(
        &mut self,
        bands: &[&[f32]],
        len: usize,
        mut sink: impl FnMut(&[OutKind], &[&[u8]], usize, usize),
    ) -> Result<(), WasmError> {
        if bands.len() != self.n_inputs {
            return Err(WasmError::Input(format!(
                "{} bands given for {} inputs",
                bands.len(),
                self.n_inputs
            )));
        }
        if let Some((k, band)) = bands.iter().enumerate().find(|(_, b)| b.len() < len) {
            return Err(WasmError::Input(format!(
                "band {k} has {} values for a block of {len} pixels",
                band.len()
            )));
        }
        // Within the caller's watch, if any (its deadline wins when earlier).
        let _watch = crate::evalscript::watch::Watch::start(self.budget);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_BLOCK_PIXELS);
            let ticks = WATCH_TICKS;
            // A multiple of 4 (the ABI); 16 keeps every plane 16-byte aligned even after
            // one-byte planes.
            let stride = n.next_multiple_of(16);
            self.run_chunk(bands, done, n, stride, ticks)?;
            let data = self.memory.data(&self.store);
            let mut views: Vec<&[u8]> = Vec::with_capacity(self.outs.len());
            let mut at = self.base + self.planes.len() * stride * 4;
            for kind in &self.outs {
                let width = kind.width() as usize;
                views.push(&data[at..at + n * width]);
                at += stride * width;
            }
            sink(&self.outs, &views, done, n);
            done += n;
        }
        Ok(())
    }

    /// Copies the chunk's inputs in and runs the module; outputs stay in linear memory.
    fn run_chunk(
        &mut self,
        bands: &[&[f32]],
        from: usize,
        n: usize,
        stride: usize,
        ticks: u64,
    ) -> Result<(), WasmError> {
        let out_width: usize = self.outs.iter().map(|k| k.width() as usize).sum();
        let in_start = self.base;
        let needed = in_start + self.planes.len() * stride * 4 + out_width * stride;
        if needed > self.memory_cap {
            return Err(WasmError::Memory {
                needed,
                cap: self.memory_cap,
            });
        }
        let have = self.memory.data_size(&self.store);
        if have < needed {
            let pages = (needed - have).div_ceil(WASM_PAGE) as u64;
            self.memory
                .grow(&mut self.store, pages)
                .map_err(|_| WasmError::Memory {
                    needed,
                    cap: self.memory_cap,
                })?;
        }
        let data = self.memory.data_mut(&mut self.store);
        for (p, band) in self.planes.iter().enumerate() {
            let at = in_start + p * stride * 4;
            let plane = &mut data[at..at + n * 4];
            for (dst, v) in plane.chunks_exact_mut(4).zip(&bands[*band][from..from + n]) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        self.store.set_epoch_deadline(ticks);
        if let Err(err) = self.run.call(&mut self.store, stride as i32) {
            if crate::evalscript::watch::stopped().is_some() {
                return Err(WasmError::TimeBudget {
                    budget: crate::evalscript::watch::budget(),
                });
            }
            return Err(match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => WasmError::TimeBudget {
                    budget: self.budget,
                },
                _ => WasmError::Engine(format!("{err:#}")),
            });
        }
        Ok(())
    }
}

/// Outputs with their sample types, as `build` takes them.
fn typed(outputs: &[(String, usize, SampleType)]) -> Vec<(String, usize, Option<SampleType>)> {
    outputs
        .iter()
        .map(|(id, bands, t)| (id.clone(), *bands, Some(*t)))
        .collect()
}

/// The output kind a generated module uses for a band of sample type `t`.
fn kind_for(t: SampleType) -> OutKind {
    match t {
        SampleType::Float32 => OutKind::F32,
        SampleType::Auto => OutKind::U8 { auto: true },
        SampleType::Uint8 => OutKind::U8 { auto: false },
        _ => OutKind::F64,
    }
}

#[inline]
fn read_f64(b: &[u8]) -> f64 {
    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[inline]
fn read_f32(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evalscript::Program;

    /// Inputs mixing specials (NaN, ±Inf, ±0, ties, negatives, > 1) with random values.
    fn inputs(n_bands: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
        const SPECIAL: [f32; 12] = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            2.5,
            -3.0,
            1e30,
            0.3,
        ];
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n_bands)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        if state.is_multiple_of(5) {
                            SPECIAL[(state >> 8) as usize % SPECIAL.len()]
                        } else {
                            ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.4 - 0.7) as f32
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Branches, early returns (also inside inlined helpers), masked assignments,
    /// `&&`/`||` on numbers and booleans, host calls: every masked-SIMD construct.
    const BRANCHY: &str = r#"//VERSION=3
function setup() { return { input: ["A", "B"], output: { bands: 3, sampleType: "FLOAT32" } }; }
const K = Math.sqrt(2) / 3;
function f(x, y) {
  if (x > y) { if (x > 0.5) { return x * 2; } return -x; }
  let z = x + y;
  z *= 3;
  return z;
}
function g(x) { return x > 0 ? x : x < -1 ? -1 : 0; }
function evaluatePixel(s) {
  let a = s.A, b = s.B;
  let c = 0;
  if (a > 0.3) { c = a; } else if (b < 0.1) { c = b - 1; if (isNaN(a)) return [1, 2, c]; } else { c += 5; }
  const t = a > b ? Math.round(a * 10) : Math.log(b);
  const u = (a && b) || c;
  const v = !(a > b) == (b >= 0.2);
  const w = (a > 0 && b > 0) || (a < -0.5);
  c = c + f(a, b) + (v ? 1 : 0) + Math.max(a, b, c) + Math.min(a, -0) + g(b) * K;
  if (a === b) return [0, -0, c];
  if (w) { c = c * 2; }
  return [c, t, u + (v + 1) + Math.fround(a / 3) + Math.floor(b * 7) % 3 + Math.pow(a, b) + Math.atan2(a, b) + Math.hypot(a, b) + Math.trunc(a * 9) + Math.ceil(b) + Math.abs(a)];
}
"#;

    /// A loop: compiled in the scalar shape.
    const LOOPY: &str = r#"//VERSION=3
function setup() { return { input: ["A", "B"], output: { bands: 2, sampleType: "FLOAT32" } }; }
function evaluatePixel(s) {
  let acc = 0;
  for (let i = 0; i < 4; i++) { if (s.A > i / 4) continue; acc += s.B * i; if (acc > 2) break; }
  return [acc, s.A / s.B];
}
"#;

    fn f32_of(buffer: &SampleBuffer) -> &[f32] {
        match buffer {
            SampleBuffer::F32(v) => v,
            other => panic!("expected FLOAT32, got {other:?}"),
        }
    }

    /// SIMD and scalar shapes against boa, bit for bit, over a ragged block length.
    fn check_shapes(source: &str, expect_simd: bool) {
        let mut boa = Program::compile(source).expect("boa compiles");
        let setup = boa.setup().clone();
        let outputs: Vec<(String, usize, Option<SampleType>)> = setup
            .outputs
            .iter()
            .map(|o| (o.id.clone(), o.bands, None))
            .collect();
        let len = 3 * MAX_BLOCK_PIXELS + 7;
        let planes = inputs(setup.input_bands.len(), len, 7);
        let bands: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
        let expected = boa.evaluate(&bands, len).expect("boa runs");
        let expected = f32_of(&expected[0]);
        for allow_simd in [true, false] {
            let mut c = CompiledProgram::build(source, &setup.input_bands, &outputs, allow_simd)
                .expect("compiles");
            assert_eq!(c.is_simd(), allow_simd && expect_simd);
            let got = c.evaluate(&bands, len).expect("runs");
            for (b, plane) in got.iter().enumerate() {
                assert_eq!(plane.len(), len);
                for (i, v) in plane.iter().enumerate() {
                    let want = f64::from(expected[b * len + i]);
                    assert!(
                        same(want, f64::from(*v as f32)),
                        "simd {allow_simd} band {b} px {i}: inputs {:?} boa {want} wasm {v}",
                        planes.iter().map(|p| p[i]).collect::<Vec<_>>()
                    );
                }
            }
        }
    }

    #[test]
    fn masked_simd_and_scalar_shapes_match_boa() {
        check_shapes(BRANCHY, true);
    }

    #[test]
    fn loops_use_the_scalar_shape_and_match_boa() {
        check_shapes(LOOPY, false);
    }

    #[test]
    fn only_read_bands_get_planes() {
        let source = "function evaluatePixel(s) { return [s.C - s.A]; }";
        let names: Vec<String> = ["A", "B", "C"].iter().map(|s| s.to_string()).collect();
        let mut c = CompiledProgram::compile(source, &names, &[1]).expect("compiles");
        assert_eq!(c.planes, vec![0, 2]);
        let out = c
            .evaluate(&[&[1.0, 2.0], &[f32::NAN; 2], &[4.0, 8.0]], 2)
            .expect("runs");
        assert_eq!(out, vec![vec![3.0, 6.0]]);
    }

    #[test]
    fn formatted_outputs_match_boa_for_every_sample_type() {
        for t in ["AUTO", "UINT8", "UINT16", "INT8", "INT16", "FLOAT32"] {
            let source = format!(
                r#"//VERSION=3
function setup() {{ return {{ input: ["A", "B"], output: [
  {{ id: "x", bands: 3, sampleType: "{t}" }}, {{ id: "m", bands: 1, sampleType: "FLOAT32" }}] }}; }}
function evaluatePixel(s) {{
  return {{ x: [s.A * 300 - 20, s.B / (s.A - 0.5), s.B], m: [s.A * s.B] }};
}}"#
            );
            let mut boa = Program::compile(&source).expect("boa compiles");
            let setup = boa.setup().clone();
            let outputs: Vec<(String, usize, SampleType)> = setup
                .outputs
                .iter()
                .map(|o| (o.id.clone(), o.bands, o.sample_type))
                .collect();
            let mut c = CompiledProgram::compile_formatted(&source, &setup.input_bands, &outputs)
                .expect("compiles");
            let scalar_outputs: Vec<(String, usize, Option<SampleType>)> = outputs
                .iter()
                .map(|(id, b, t)| (id.clone(), *b, Some(*t)))
                .collect();
            let mut scalar =
                CompiledProgram::build(&source, &setup.input_bands, &scalar_outputs, false)
                    .expect("compiles");
            assert!(!scalar.is_simd() && c.is_simd());
            assert!(c.outs.contains(&OutKind::F32));
            if t == "AUTO" || t == "UINT8" {
                assert!(c.outs.iter().any(|k| matches!(k, OutKind::U8 { .. })));
            }
            let len = MAX_BLOCK_PIXELS + 5;
            let planes = inputs(2, len, 3);
            let bands: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
            let want = boa.evaluate(&bands, len).expect("boa runs");
            let have = c
                .evaluate_formatted(&bands, len, &setup.outputs)
                .expect("wasm runs");
            let have_scalar = scalar
                .evaluate_formatted(&bands, len, &setup.outputs)
                .expect("wasm runs");
            assert_eq!(want.len(), have.len());
            let both = have.iter().chain(&have_scalar);
            for (w, h) in want.iter().cycle().zip(both) {
                match (w, h) {
                    (SampleBuffer::F32(w), SampleBuffer::F32(h)) => {
                        assert_eq!(w.len(), h.len());
                        for (i, (a, b)) in w.iter().zip(h).enumerate() {
                            assert!(same(f64::from(*a), f64::from(*b)), "{t} px {i}: {a} {b}");
                        }
                    }
                    _ => assert_eq!(w, h, "{t}"),
                }
            }
        }
    }
}
