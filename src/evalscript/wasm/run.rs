//! The wasmtime runner: compiles the generated module once and evaluates blocks with a
//! time budget (epoch interruption) and a memory cap (`StoreLimits`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, Instance, Linker, Memory, Module, OptLevel, Store, StoreLimits,
    StoreLimitsBuilder, Trap, TypedFunc,
};

use super::codegen::emit;
use super::lower::{lower, Host};
use super::WasmError;

/// Largest block handed to `run` in one call; bigger inputs are evaluated in chunks so
/// linear memory stays small (`MAX_BLOCK_PIXELS * (4 * inputs + 8 * outputs)` bytes).
pub const MAX_BLOCK_PIXELS: usize = 1 << 16;
/// Default cap on a module's linear memory.
pub const DEFAULT_MEMORY_CAP: usize = 256 << 20;
/// The epoch ticker period: the granularity of the time budget.
const EPOCH_TICK: Duration = Duration::from_millis(5);
const WASM_PAGE: usize = 65536;

/// One process-wide engine; its epoch is advanced by a background ticker thread.
fn engine() -> Result<&'static Engine, WasmError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
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

/// A compiled `evaluatePixel` bound to its own wasmtime store and instance.
pub struct CompiledProgram {
    store: Store<StoreLimits>,
    memory: Memory,
    run: TypedFunc<i32, ()>,
    n_inputs: usize,
    out_bands: usize,
    budget: Duration,
    memory_cap: usize,
}

impl std::fmt::Debug for CompiledProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProgram")
            .field("n_inputs", &self.n_inputs)
            .field("out_bands", &self.out_bands)
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
        let out_bands: usize = outputs.iter().map(|(_, b)| *b).sum();
        let lowered = lower(source, input_bands, outputs)?;
        let bytes = emit(&lowered, input_bands.len(), out_bands);
        let engine = engine()?;
        let module = Module::from_binary(engine, &bytes).map_err(engine_error)?;
        let mut linker: Linker<StoreLimits> = Linker::new(engine);
        for host in Host::ALL {
            let defined = if host.arity() == 2 {
                linker.func_wrap("js", host.name(), move |x: f64, y: f64| host.eval(x, y))
            } else {
                linker.func_wrap("js", host.name(), move |x: f64| host.eval(x, 0.0))
            };
            defined.map_err(engine_error)?;
        }
        let memory_cap = DEFAULT_MEMORY_CAP;
        let limits = StoreLimitsBuilder::new().memory_size(memory_cap).build();
        let mut store = Store::new(engine, limits);
        store.limiter(|limits| limits);
        store.set_epoch_deadline(u64::MAX / 2);
        let instance: Instance = linker
            .instantiate(&mut store, &module)
            .map_err(engine_error)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| WasmError::Engine("module exports no memory".into()))?;
        let run = instance
            .get_typed_func::<i32, ()>(&mut store, "run")
            .map_err(engine_error)?;
        Ok(CompiledProgram {
            store,
            memory,
            run,
            n_inputs: input_bands.len(),
            out_bands,
            budget: crate::evalscript::DEFAULT_TIME_BUDGET,
            memory_cap,
        })
    }

    /// Limits the wall time of each `evaluate` call (granularity: a few milliseconds).
    pub fn set_time_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    /// Evaluates `len` pixels; `bands[k]` holds input band `k`. Returns one f64 plane of
    /// `len` values per output band (outputs in setup order, then bands), unformatted:
    /// format with the sample-type functions.
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
        out.resize_with(self.out_bands, Vec::new);
        for plane in out.iter_mut() {
            plane.clear();
            plane.reserve(len);
        }
        let start = Instant::now();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_BLOCK_PIXELS);
            let remaining = self.budget.saturating_sub(start.elapsed());
            let ticks = (remaining.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64;
            self.run_chunk(bands, done, n, ticks, out)?;
            done += n;
        }
        Ok(())
    }

    fn run_chunk(
        &mut self,
        bands: &[&[f32]],
        from: usize,
        n: usize,
        ticks: u64,
        out: &mut [Vec<f64>],
    ) -> Result<(), WasmError> {
        let out_start = (self.n_inputs * n * 4 + 7) & !7;
        let needed = out_start + self.out_bands * n * 8;
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
        for (k, band) in bands.iter().enumerate() {
            let plane = &mut data[k * n * 4..(k + 1) * n * 4];
            for (dst, v) in plane.chunks_exact_mut(4).zip(&band[from..from + n]) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        self.store.set_epoch_deadline(ticks);
        if let Err(err) = self.run.call(&mut self.store, n as i32) {
            return Err(match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => WasmError::TimeBudget {
                    budget: self.budget,
                },
                _ => WasmError::Engine(format!("{err:#}")),
            });
        }
        let data = self.memory.data(&self.store);
        for (j, plane) in out.iter_mut().enumerate() {
            let bytes = &data[out_start + j * n * 8..out_start + (j + 1) * n * 8];
            plane.extend(
                bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
            );
        }
        Ok(())
    }
}
