//! Precompiled WebAssembly evalscripts: a user ships a `.wasm` module (from C, Rust, Zig,
//! AssemblyScript...) instead of JavaScript, and it runs as the compiled tier does.
//!
//! # The module's ABI
//! It is the ABI of generated modules (`mod.rs`, "ABI of a compiled or precompiled
//! module") plus two exports that declare the setup:
//! - `memory`: the module's own 32-bit, unshared linear memory (not imported).
//! - `run(n: i32)`: evaluates a block of `n` pixels. Inputs: one f32 plane of `n` values
//!   per input band, in setup order, from the I/O base `B`; outputs: one f64 plane of `n`
//!   values per output band (outputs in setup order, then bands) from
//!   `B + align8(I * n * 4)`. `B` is the module's exported i32 global `__heap_base`
//!   rounded up to 8 (wasm-ld exports it with `--export=__heap_base`), or 0 without that
//!   export. Output values are formatted to each output's `sampleType` by the host, as
//!   `evaluatePixel`'s return values are (rounding and clamping for the integer types).
//! - `setup_json_ptr() -> i32` and `setup_json_len() -> i32`: the address and length of
//!   the setup as UTF-8 JSON in memory: the object a V3 `setup()` would return, with the
//!   same leniency (`input` as band names or `[{bands, units}]`, `output` as an object or
//!   an array of `{id, bands, sampleType}`); `mosaicking` must be SIMPLE (or absent).
//!   At most `MAX_SETUP_JSON_BYTES`.
//! - Imports: none, or functions `js.<name>` of `lower::Host` (`js.pow`, `js.exp`,
//!   `js.log`, `js.sin`, ...: `(f64) -> f64`, or `(f64, f64) -> f64` for `rem`, `pow`,
//!   `powi`, `atan2`, `hypot`), which compute exactly what JavaScript's `Math` would.
//!   Nothing else (no WASI, no `env.*`): a module is a pure function of its memory.
//!
//! Why exported functions rather than a `tessera.setup` custom section: every toolchain
//! can export two functions returning a static string, while a custom section needs
//! toolchain-specific syntax (a `.custom_section.` section name in C, a `link_section`
//! in Rust, none at all in AssemblyScript) and is dropped by stripping tools such as
//! `wasm-opt --strip`. The price, running module code at compile time, is paid under the
//! same time budget and memory cap as `run`.
//!
//! # Submitting one
//! An evalscript is text, so a module travels as `//!tessera-wasm base64:<module>`: the
//! marker (leading whitespace allowed), then the standard base64 of the `.wasm` file
//! (padding optional; whitespace and line breaks inside are ignored). The API takes it
//! wherever it takes an evalscript; `encode_source` makes it, `read_evalscript_file` turns
//! a `.wasm` file into it for the CLI. At most `MAX_MODULE_BYTES` decoded.
//!
//! # Validation
//! `parse` checks everything at compile time (so a request's analysis reports it in
//! `error`): the encoding, that wasmtime accepts the module, the exports and their
//! signatures, the imports, and the setup JSON. `Program::compile` then parses the setup
//! with the `setup()` parser and instantiates the module with `CompiledProgram`'s epoch
//! budget and memory cap; a module that loops forever is stopped like a generated one.

use std::time::Duration;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use wasmtime::{ExternType, FuncType, Module, Trap, ValType};

use super::lower::Host;
use super::run::{engine, host_linker, limited_store, CompiledProgram, DEFAULT_MEMORY_CAP};
use crate::evalscript::{EvalscriptError, Mosaicking, Setup};

/// The first thing in an evalscript that carries a WebAssembly module.
pub const MARKER: &str = "//!tessera-wasm";
/// Largest accepted module: its base64 still fits the API's 8 MiB body limit.
pub const MAX_MODULE_BYTES: usize = 4 << 20;
/// Largest accepted setup JSON.
pub const MAX_SETUP_JSON_BYTES: usize = 64 << 10;
/// Time allowed to the `setup_json_*` exports (they should just return constants).
const SETUP_TIME_BUDGET: Duration = Duration::from_secs(1);
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Why a precompiled module was refused; every message is for the module's author.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrecompiledError {
    /// The `//!tessera-wasm` text is malformed.
    #[error("{MARKER} evalscript: {0}")]
    Encoding(String),
    /// Not a WebAssembly module wasmtime accepts.
    #[error("invalid WebAssembly module: {0}")]
    Module(String),
    /// Exports or imports that do not follow the ABI (all problems, `; `-separated).
    #[error("the module does not follow the evalscript ABI: {0}")]
    Abi(String),
    /// The setup JSON could not be read or is not a JSON object.
    #[error("bad setup JSON: {0}")]
    Setup(String),
    /// `setup_json_ptr`/`setup_json_len` (or the start function) ran out of time.
    #[error("the module's setup exports did not return within {0:?}")]
    TimeBudget(Duration),
}

impl From<PrecompiledError> for EvalscriptError {
    fn from(err: PrecompiledError) -> EvalscriptError {
        let message = format!("precompiled WebAssembly evalscript: {err}");
        match err {
            PrecompiledError::Setup(_) => EvalscriptError::InvalidSetup(message),
            _ => EvalscriptError::Syntax(message),
        }
    }
}

/// A validated module and its setup JSON, ready to instantiate.
#[derive(Clone)]
pub struct PrecompiledModule {
    module: Module,
    setup_json: String,
}

impl std::fmt::Debug for PrecompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrecompiledModule")
            .field("setup_json", &self.setup_json)
            .finish_non_exhaustive()
    }
}

/// `None` when `source` is not a `//!tessera-wasm` evalscript (it is JavaScript), else
/// the validated module or why it was refused.
pub fn parse(source: &str) -> Option<Result<PrecompiledModule, PrecompiledError>> {
    let rest = source
        .trim_start_matches('\u{feff}')
        .trim_start()
        .strip_prefix(MARKER)?;
    Some(decode(rest).and_then(|bytes| PrecompiledModule::from_bytes(&bytes)))
}

/// The evalscript text that carries `wasm` (the inverse of `parse`).
pub fn encode_source(wasm: &[u8]) -> String {
    format!("{MARKER} base64:{}\n", STANDARD.encode(wasm))
}

/// Reads an evalscript file for the CLI: a binary WebAssembly module (by its magic
/// number, whatever the extension) becomes its `//!tessera-wasm` text; anything else must
/// be UTF-8 text.
pub fn read_evalscript_file(path: &std::path::Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    if bytes.starts_with(WASM_MAGIC) {
        return Ok(encode_source(&bytes));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "neither UTF-8 text nor a WebAssembly module",
        )
    })
}

/// Decodes what follows the marker: ` base64:<data>`.
fn decode(rest: &str) -> Result<Vec<u8>, PrecompiledError> {
    let payload = rest
        .trim_start_matches([' ', '\t'])
        .strip_prefix("base64:")
        .ok_or_else(|| {
            PrecompiledError::Encoding(format!(
                "expected `{MARKER} base64:<module>` (the module as standard base64)"
            ))
        })?;
    let cleaned: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if cleaned.len() / 4 * 3 > MAX_MODULE_BYTES + 3 {
        return Err(PrecompiledError::Encoding(format!(
            "the module is larger than {MAX_MODULE_BYTES} bytes"
        )));
    }
    let lenient = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    lenient
        .decode(&cleaned)
        .map_err(|e| PrecompiledError::Encoding(format!("invalid base64: {e}")))
}

impl PrecompiledModule {
    /// Validates a binary module and reads its setup JSON.
    pub fn from_bytes(bytes: &[u8]) -> Result<PrecompiledModule, PrecompiledError> {
        if !bytes.starts_with(WASM_MAGIC) {
            return Err(PrecompiledError::Module(
                "not a binary WebAssembly module (it does not start with \\0asm)".into(),
            ));
        }
        if bytes.len() > MAX_MODULE_BYTES {
            return Err(PrecompiledError::Module(format!(
                "{} bytes, over the limit of {MAX_MODULE_BYTES}",
                bytes.len()
            )));
        }
        let engine = engine().map_err(|e| PrecompiledError::Module(e.to_string()))?;
        let module = Module::from_binary(engine, bytes)
            .map_err(|e| PrecompiledError::Module(format!("{e:#}")))?;
        let problems = abi_problems(&module);
        if !problems.is_empty() {
            return Err(PrecompiledError::Abi(problems.join("; ")));
        }
        let setup_json = read_setup_json(&module)?;
        Ok(PrecompiledModule { module, setup_json })
    }

    /// The module's setup, as JSON text (a JSON object).
    pub fn setup_json(&self) -> &str {
        &self.setup_json
    }

    /// A JavaScript evalscript whose `setup()` returns the setup JSON, so `Program` parses
    /// it with the same rules (and messages) as a script's; its `evaluatePixel` only
    /// throws, since pixels go to the module.
    pub fn setup_script(&self) -> String {
        // A JSON string literal is a JavaScript string literal.
        let literal = serde_json::to_string(&self.setup_json).unwrap_or_default();
        format!(
            "//VERSION=3\n\
             function setup() {{ return JSON.parse({literal}); }}\n\
             function evaluatePixel() {{ throw new Error(\"a precompiled WebAssembly \
             evalscript evaluates SIMPLE blocks only\"); }}\n"
        )
    }

    /// Instantiates the module for `setup` (parsed from `setup_json`) with the compiled
    /// tier's time budget and memory cap.
    pub fn instantiate(&self, setup: &Setup) -> Result<CompiledProgram, EvalscriptError> {
        if setup.mosaicking != Mosaicking::Simple {
            return Err(EvalscriptError::InvalidSetup(format!(
                "precompiled WebAssembly evalscript: mosaicking {} is not supported, only SIMPLE",
                setup.mosaicking.name()
            )));
        }
        let out_bands = setup.outputs.iter().map(|o| o.bands).sum();
        CompiledProgram::from_module(&self.module, setup.input_bands.len(), out_bands).map_err(
            |e| {
                EvalscriptError::TopLevel(format!(
                    "precompiled WebAssembly evalscript could not be instantiated: {e}"
                ))
            },
        )
    }
}

/// Describes a function type as `(i32, f64) -> f64`.
fn describe(params: &[ValType], results: &[ValType]) -> String {
    let join = |types: &[ValType]| {
        types
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match results {
        [] => format!("({})", join(params)),
        [one] => format!("({}) -> {one}", join(params)),
        _ => format!("({}) -> ({})", join(params), join(results)),
    }
}

fn signature(ty: &FuncType) -> String {
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    describe(&params, &results)
}

fn is_signature(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    let same = |a: ValType, b: &ValType| ValType::eq(&a, b);
    ty.params().len() == params.len()
        && ty.results().len() == results.len()
        && ty.params().zip(params).all(|(a, b)| same(a, b))
        && ty.results().zip(results).all(|(a, b)| same(a, b))
}

fn kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "a function",
        ExternType::Global(_) => "a global",
        ExternType::Table(_) => "a table",
        ExternType::Memory(_) => "a memory",
        _ => "an unsupported kind of export",
    }
}

/// Every way the module's exports and imports depart from the ABI (empty when none).
fn abi_problems(module: &Module) -> Vec<String> {
    let mut problems = Vec::new();
    let required: [(&str, &[ValType], &[ValType]); 3] = [
        ("run", &[ValType::I32], &[]),
        ("setup_json_ptr", &[], &[ValType::I32]),
        ("setup_json_len", &[], &[ValType::I32]),
    ];
    for (name, params, results) in required {
        let wanted = describe(params, results);
        match module.get_export(name) {
            None => problems.push(format!("missing export `{name}`, a function {wanted}")),
            Some(ExternType::Func(ty)) if is_signature(&ty, params, results) => {}
            Some(ExternType::Func(ty)) => problems.push(format!(
                "export `{name}` has signature {}, expected {wanted}",
                signature(&ty)
            )),
            Some(other) => problems.push(format!(
                "export `{name}` is {}, expected a function {wanted}",
                kind(&other)
            )),
        }
    }
    match module.get_export("memory") {
        None => problems.push("missing export `memory` (the module's linear memory)".into()),
        Some(ExternType::Memory(m)) if m.is_64() => {
            problems.push("export `memory` is a 64-bit memory, expected a 32-bit one".into())
        }
        Some(ExternType::Memory(m)) if m.is_shared() => {
            problems.push("export `memory` is shared, expected an unshared memory".into())
        }
        Some(ExternType::Memory(_)) => {}
        Some(other) => problems.push(format!("export `memory` is {}", kind(&other))),
    }
    match module.get_export("__heap_base") {
        None => {}
        Some(ExternType::Global(g)) if matches!(g.content(), ValType::I32) => {}
        Some(other) => problems.push(format!(
            "export `__heap_base` (the I/O base) must be an i32 global, but is {}",
            match &other {
                ExternType::Global(g) => format!("a {} global", g.content()),
                _ => kind(&other).to_string(),
            }
        )),
    }
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let host = Host::ALL.iter().find(|h| m == "js" && h.name() == name);
        match (host, import.ty()) {
            (Some(host), ExternType::Func(ty)) => {
                let params = vec![ValType::F64; host.arity()];
                if !is_signature(&ty, &params, &[ValType::F64]) {
                    problems.push(format!(
                        "import `js.{name}` has signature {}, expected {}",
                        signature(&ty),
                        describe(&params, &[ValType::F64])
                    ));
                }
            }
            (_, ty) => problems.push(format!(
                "import `{m}.{name}` ({}) is not allowed: a module may import only the \
                 functions js.{}",
                kind(&ty),
                Host::ALL.map(|h| h.name()).join(", js.")
            )),
        }
    }
    problems
}

/// Instantiates the module once, under `SETUP_TIME_BUDGET` and the memory cap, and reads
/// the JSON that `setup_json_ptr`/`setup_json_len` point at.
fn read_setup_json(module: &Module) -> Result<String, PrecompiledError> {
    let engine = module.engine();
    let fail = |what: &str, err: wasmtime::Error| match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PrecompiledError::TimeBudget(SETUP_TIME_BUDGET),
        _ => PrecompiledError::Setup(format!("{what} failed: {err:#}")),
    };
    let linker = host_linker(engine).map_err(|e| PrecompiledError::Module(e.to_string()))?;
    let mut store = limited_store(engine, DEFAULT_MEMORY_CAP, SETUP_TIME_BUDGET);
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(|e| fail("instantiating the module", e))?;
    let mut call = |name: &str| -> Result<i32, PrecompiledError> {
        let func = instance
            .get_typed_func::<(), i32>(&mut store, name)
            .map_err(|e| fail(name, e))?;
        func.call(&mut store, ()).map_err(|e| fail(name, e))
    };
    let ptr = call("setup_json_ptr")? as u32 as usize;
    let len = call("setup_json_len")? as u32 as usize;
    if len > MAX_SETUP_JSON_BYTES {
        return Err(PrecompiledError::Setup(format!(
            "setup_json_len() is {len}, over the limit of {MAX_SETUP_JSON_BYTES} bytes"
        )));
    }
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| PrecompiledError::Module("no memory export".into()))?;
    let data = memory.data(&store);
    let bytes = data.get(ptr..ptr + len).ok_or_else(|| {
        PrecompiledError::Setup(format!(
            "setup_json_ptr() {ptr} + setup_json_len() {len} is outside the memory ({} bytes)",
            data.len()
        ))
    })?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| PrecompiledError::Setup(format!("not UTF-8: {e}")))?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(text.to_string()),
        Ok(other) => Err(PrecompiledError::Setup(format!(
            "expected a JSON object with `input` and `output`, got {}",
            json_kind(&other)
        ))),
        Err(e) => Err(PrecompiledError::Setup(format!("not valid JSON: {e}"))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evalscript::Program;
    use crate::raster::SampleBuffer;
    use std::time::Instant;
    use wasm_encoder::{
        CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
        FunctionSection, GlobalSection, GlobalType, ImportSection, Instruction as I, MemArg,
        MemorySection, MemoryType, Module as Encoder, TypeSection, ValType as V,
    };

    const SETUP_AT: i32 = 16;
    const ONE_BAND: &str =
        r#"{"input": ["B04"], "output": {"id": "default", "bands": 1, "sampleType": "FLOAT32"}}"#;

    /// A hand-assembled module, varied one ABI point at a time.
    struct Spec {
        setup: Vec<u8>,
        /// `setup_json_len()`'s value instead of the JSON's length.
        setup_len: Option<i32>,
        /// `setup_json_len()` loops forever.
        setup_loops: bool,
        heap_base: Option<i32>,
        /// Extra function imports `(module, name, params)` returning f64.
        imports: Vec<(&'static str, &'static str, Vec<V>)>,
        /// `run` loops forever instead of computing.
        run_loops: bool,
        run_params: Vec<V>,
        omit: Vec<&'static str>,
    }

    impl Default for Spec {
        fn default() -> Spec {
            Spec {
                setup: ONE_BAND.as_bytes().to_vec(),
                setup_len: None,
                setup_loops: false,
                heap_base: None,
                imports: Vec::new(),
                run_loops: false,
                run_params: vec![V::I32],
                omit: Vec::new(),
            }
        }
    }

    /// Builds the module: `run` writes `2 * x` (or `js.pow(x, 2)` when the first import is
    /// `js.pow`) for input plane 0 into output plane 0, at the ABI's I/O base.
    fn build(spec: &Spec) -> Vec<u8> {
        let mut types = TypeSection::new();
        let mut imports = ImportSection::new();
        for (i, (module, name, params)) in spec.imports.iter().enumerate() {
            types.ty().function(params.clone(), [V::F64]);
            imports.import(module, name, EntityType::Function(i as u32));
        }
        let first = spec.imports.len() as u32;
        types.ty().function(spec.run_params.clone(), []); // run
        types.ty().function([], [V::I32]); // setup exports
        let mut functions = FunctionSection::new();
        functions
            .function(first)
            .function(first + 1)
            .function(first + 1);
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut globals = GlobalSection::new();
        if let Some(base) = spec.heap_base {
            let ty = GlobalType {
                val_type: V::I32,
                mutable: false,
                shared: false,
            };
            globals.global(ty, &ConstExpr::i32_const(base));
        }
        let mut exports = ExportSection::new();
        let names = [
            ("run", ExportKind::Func, first),
            ("setup_json_ptr", ExportKind::Func, first + 1),
            ("setup_json_len", ExportKind::Func, first + 2),
            ("memory", ExportKind::Memory, 0),
            ("__heap_base", ExportKind::Global, 0),
        ];
        for (name, kind, index) in names {
            if !spec.omit.contains(&name) && (name != "__heap_base" || spec.heap_base.is_some()) {
                exports.export(name, kind, index);
            }
        }
        let base = spec.heap_base.map_or(0, |b| (b + 7) & !7);
        let mut code = CodeSection::new();
        let mut run = Function::new([(1, V::I32)]);
        if spec.run_loops {
            run.instruction(&I::Loop(wasm_encoder::BlockType::Empty))
                .instruction(&I::Br(0))
                .instruction(&I::End);
        } else {
            let f32_at = MemArg {
                offset: base as u64,
                align: 2,
                memory_index: 0,
            };
            let f64_at = MemArg {
                offset: 0,
                align: 3,
                memory_index: 0,
            };
            let pow = spec.imports.first().is_some_and(|i| i.1 == "pow");
            for ins in [
                I::Block(wasm_encoder::BlockType::Empty),
                I::Loop(wasm_encoder::BlockType::Empty),
                I::LocalGet(1),
                I::LocalGet(0),
                I::I32GeS,
                I::BrIf(1),
                // address: base + align8(n * 4) + i * 8
                I::LocalGet(0),
                I::I32Const(4),
                I::I32Mul,
                I::I32Const(7),
                I::I32Add,
                I::I32Const(-8),
                I::I32And,
                I::I32Const(base),
                I::I32Add,
                I::LocalGet(1),
                I::I32Const(8),
                I::I32Mul,
                I::I32Add,
                // value: f64(input[i]) then * 2 or pow(_, 2)
                I::LocalGet(1),
                I::I32Const(4),
                I::I32Mul,
                I::F32Load(f32_at),
                I::F64PromoteF32,
                I::F64Const(2.0.into()),
            ] {
                run.instruction(&ins);
            }
            run.instruction(&if pow { I::Call(0) } else { I::F64Mul });
            for ins in [
                I::F64Store(f64_at),
                I::LocalGet(1),
                I::I32Const(1),
                I::I32Add,
                I::LocalSet(1),
                I::Br(0),
                I::End,
                I::End,
            ] {
                run.instruction(&ins);
            }
        }
        run.instruction(&I::End);
        code.function(&run);
        let mut ptr = Function::new([]);
        ptr.instruction(&I::I32Const(SETUP_AT)).instruction(&I::End);
        code.function(&ptr);
        let mut len = Function::new([]);
        if spec.setup_loops {
            len.instruction(&I::Loop(wasm_encoder::BlockType::Empty))
                .instruction(&I::Br(0))
                .instruction(&I::End);
        }
        let setup_len = spec.setup_len.unwrap_or(spec.setup.len() as i32);
        len.instruction(&I::I32Const(setup_len))
            .instruction(&I::End);
        code.function(&len);
        let mut data = DataSection::new();
        data.active(
            0,
            &ConstExpr::i32_const(SETUP_AT),
            spec.setup.iter().copied(),
        );
        let mut module = Encoder::new();
        module
            .section(&types)
            .section(&imports)
            .section(&functions)
            .section(&memories);
        if spec.heap_base.is_some() {
            module.section(&globals);
        }
        module.section(&exports).section(&code).section(&data);
        module.finish()
    }

    fn refused(spec: &Spec) -> PrecompiledError {
        match PrecompiledModule::from_bytes(&build(spec)) {
            Ok(module) => panic!("accepted: {module:?}"),
            Err(err) => err,
        }
    }

    fn f32s(buffer: &SampleBuffer) -> &[f32] {
        match buffer {
            SampleBuffer::F32(v) => v,
            other => panic!("expected FLOAT32, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_module_runs_through_program_at_its_io_base() {
        for heap_base in [None, Some(4093), Some(70_000)] {
            let spec = Spec {
                heap_base,
                ..Spec::default()
            };
            let source = encode_source(&build(&spec));
            let mut program = Program::compile(&source).expect("compiles");
            assert_eq!(program.setup().input_bands, ["B04"]);
            assert_eq!(program.boa_reason(), None);
            // More than one chunk of MAX_BLOCK_PIXELS, so memory is reused.
            let len = super::super::MAX_BLOCK_PIXELS + 3;
            let band: Vec<f32> = (0..len).map(|i| i as f32 * 0.25 - 7.0).collect();
            let out = program.evaluate(&[&band], len).expect("evaluates");
            let values = f32s(&out[0]);
            for i in [0, 1, 28, len - 1] {
                assert_eq!(values[i], (i as f32 * 0.25 - 7.0) * 2.0, "pixel {i}");
            }
        }
    }

    #[test]
    fn allowed_imports_are_linked_to_the_js_math_functions() {
        let spec = Spec {
            imports: vec![
                ("js", "pow", vec![V::F64, V::F64]),
                ("js", "sin", vec![V::F64]),
            ],
            ..Spec::default()
        };
        let mut program = Program::compile(&encode_source(&build(&spec))).expect("compiles");
        let out = program
            .evaluate(&[&[3.0, -1.5, 0.0]], 3)
            .expect("evaluates");
        assert_eq!(f32s(&out[0]), [9.0, 2.25, 0.0]);
    }

    #[test]
    fn missing_exports_are_all_named() {
        let err = refused(&Spec {
            omit: vec!["run", "memory", "setup_json_len"],
            ..Spec::default()
        });
        let text = err.to_string();
        assert!(matches!(err, PrecompiledError::Abi(_)), "{text}");
        assert!(
            text.contains("missing export `run`, a function (i32)"),
            "{text}"
        );
        assert!(text.contains("missing export `memory`"), "{text}");
        assert!(text.contains("missing export `setup_json_len`, a function () -> i32"));
        assert!(!text.contains("setup_json_ptr"), "{text}");
    }

    #[test]
    fn wrong_signatures_are_refused() {
        let text = refused(&Spec {
            run_params: vec![V::F64],
            run_loops: true, // a body that type-checks with any parameter
            ..Spec::default()
        })
        .to_string();
        assert!(
            text.contains("export `run` has signature (f64), expected (i32)"),
            "{text}"
        );
        let text = refused(&Spec {
            imports: vec![("js", "pow", vec![V::F64])],
            run_loops: true,
            ..Spec::default()
        })
        .to_string();
        assert!(
            text.contains("import `js.pow` has signature (f64) -> f64, expected (f64, f64) -> f64"),
            "{text}"
        );
    }

    #[test]
    fn imports_outside_the_allowed_set_are_refused() {
        for (module, name) in [
            ("env", "abort"),
            ("wasi_snapshot_preview1", "fd_write"),
            ("js", "eval"),
        ] {
            let text = refused(&Spec {
                imports: vec![(module, name, vec![V::F64])],
                ..Spec::default()
            })
            .to_string();
            assert!(
                text.contains(&format!(
                    "import `{module}.{name}` (a function) is not allowed"
                )),
                "{text}"
            );
            assert!(text.contains("js.pow"), "{text}");
        }
    }

    #[test]
    fn bad_setup_json_is_refused_with_its_reason() {
        let cases: [(&[u8], Option<i32>, &str); 5] = [
            (b"{\"input\": [", None, "not valid JSON"),
            (
                b"[1, 2]",
                None,
                "expected a JSON object with `input` and `output`, got an array",
            ),
            (b"\xff\xfe", None, "not UTF-8"),
            (b"{}", Some(1 << 20), "over the limit"),
            (b"{}", Some(65_530), "outside the memory"),
        ];
        for (json, setup_len, expected) in cases {
            let err = refused(&Spec {
                setup: json.to_vec(),
                setup_len,
                ..Spec::default()
            });
            assert!(matches!(err, PrecompiledError::Setup(_)), "{err}");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
            let as_script = EvalscriptError::from(err);
            assert!(matches!(as_script, EvalscriptError::InvalidSetup(_)));
        }
    }

    #[test]
    fn setup_json_goes_through_the_setup_parser() {
        let spec = Spec {
            setup: br#"{"input": ["B04"], "output": {"bands": 1, "sampleType": "FLOAT64"}}"#
                .to_vec(),
            ..Spec::default()
        };
        let err = Program::compile(&encode_source(&build(&spec)))
            .expect_err("FLOAT64 is not a sample type");
        assert!(matches!(err, EvalscriptError::InvalidSetup(_)), "{err}");
        let spec = Spec {
            setup: br#"{"input": ["B04"], "output": {"bands": 1}, "mosaicking": "ORBIT"}"#.to_vec(),
            ..Spec::default()
        };
        let err = Program::compile(&encode_source(&build(&spec))).expect_err("ORBIT");
        assert!(err.to_string().contains("only SIMPLE"), "{err}");
        // Lenient forms are read as setup() reads them: UINT8 by default.
        let spec = Spec {
            setup: br#"{"input": [{"bands": ["B04"]}], "output": {"bands": 1}}"#.to_vec(),
            ..Spec::default()
        };
        let mut program = Program::compile(&encode_source(&build(&spec))).expect("compiles");
        let out = program
            .evaluate(&[&[0.25, 100.0, -1.0]], 3)
            .expect("evaluates");
        // UINT8 clamps 2 * 100 to 255 and 2 * -1 to 0.
        match &out[0] {
            SampleBuffer::U8(v) => assert_eq!(&v[1..], [255, 0]),
            other => panic!("expected UINT8, got {other:?}"),
        }
    }

    #[test]
    fn a_looping_setup_export_is_stopped() {
        let started = Instant::now();
        let err = refused(&Spec {
            setup_loops: true,
            ..Spec::default()
        });
        assert_eq!(err, PrecompiledError::TimeBudget(SETUP_TIME_BUDGET));
        // The epoch ticker sleeps in 5 ms steps, which stretch on a loaded machine.
        let took = started.elapsed();
        assert!(
            took >= SETUP_TIME_BUDGET && took < SETUP_TIME_BUDGET * 5,
            "{took:?}"
        );
    }

    #[test]
    fn a_looping_run_is_stopped_within_the_budget() {
        let spec = Spec {
            run_loops: true,
            ..Spec::default()
        };
        let mut program = Program::compile(&encode_source(&build(&spec))).expect("compiles");
        program.set_time_budget(Duration::from_millis(200));
        let started = Instant::now();
        let err = program.evaluate(&[&[1.0]], 1).expect_err("loops");
        assert!(matches!(err, EvalscriptError::TimeBudget { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_marker_text_is_decoded_or_refused() {
        assert!(parse("//VERSION=3\nfunction setup() {}").is_none());
        assert!(parse("// tessera-wasm base64:AGFzbQ==").is_none());
        let wasm = build(&Spec::default());
        let text = encode_source(&wasm);
        assert!(text.starts_with("//!tessera-wasm base64:AGFzbQ"));
        // Wrapped, indented, unpadded: still the same module.
        let payload = text
            .trim_end()
            .trim_start_matches("//!tessera-wasm base64:");
        let wrapped: Vec<String> = payload
            .trim_end_matches('=')
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let lenient = format!(
            "\u{feff}\n  //!tessera-wasm\tbase64:\n{}\n",
            wrapped.join("\n")
        );
        let module = parse(&lenient).expect("marker").expect("valid");
        assert_eq!(module.setup_json(), ONE_BAND);
        let cases = [
            (
                "//!tessera-wasm hex:0061736d",
                "expected `//!tessera-wasm base64:<module>`",
            ),
            ("//!tessera-wasm base64:AGFzbQ*=", "invalid base64"),
            (
                "//!tessera-wasm base64:aGVsbG8=",
                "does not start with \\0asm",
            ),
            (
                "//!tessera-wasm base64:AGFzbQEAAAAB",
                "invalid WebAssembly module",
            ),
        ];
        for (source, expected) in cases {
            let err = parse(source).expect("marker").expect_err("refused");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
            let as_script = EvalscriptError::from(err);
            assert!(matches!(as_script, EvalscriptError::Syntax(_)));
        }
        let huge = format!(
            "{MARKER} base64:{}",
            "A".repeat(MAX_MODULE_BYTES / 3 * 4 + 64)
        );
        let err = parse(&huge).expect("marker").expect_err("too big");
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn evalscript_files_are_read_as_text_or_as_modules() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wasm = build(&Spec::default());
        let module_path = dir.path().join("m.wasm");
        std::fs::write(&module_path, &wasm).expect("write");
        let text = read_evalscript_file(&module_path).expect("reads");
        assert_eq!(text, encode_source(&wasm));
        let js_path = dir.path().join("s.js");
        std::fs::write(&js_path, "//VERSION=3\n").expect("write");
        assert_eq!(
            read_evalscript_file(&js_path).expect("reads"),
            "//VERSION=3\n"
        );
        let bin_path = dir.path().join("b.bin");
        std::fs::write(&bin_path, [0xff, 0x00, 0x01]).expect("write");
        assert!(read_evalscript_file(&bin_path).is_err());
    }

    // ---- the C example, built from source by the real toolchain ----

    /// `evalscripts/wasm` of this crate (or of main/, seen from a scratch crate).
    fn examples_dir() -> std::path::PathBuf {
        let own = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("evalscripts/wasm");
        if own.exists() {
            own
        } else {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../main/evalscripts/wasm")
        }
    }

    /// Builds C sources with `build.sh` into `out`; `None` only when the toolchain is
    /// missing and TESSERA_SKIP_WASM_TOOLCHAIN=1 says that is fine (run_all.sh installs it).
    fn build_c(out: &std::path::Path, sources: &[&std::path::Path]) -> Option<()> {
        let clang_ok = std::process::Command::new("clang")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !clang_ok {
            if std::env::var("TESSERA_SKIP_WASM_TOOLCHAIN").as_deref() == Ok("1") {
                eprintln!("skipped: clang missing and TESSERA_SKIP_WASM_TOOLCHAIN=1");
                return None;
            }
            panic!("clang is missing: install clang and lld (tests/run_all.sh does), or set TESSERA_SKIP_WASM_TOOLCHAIN=1");
        }
        let status = std::process::Command::new("bash")
            .arg(examples_dir().join("build.sh"))
            .arg(out)
            .args(sources)
            .status()
            .expect("runs build.sh");
        assert!(status.success(), "build.sh failed: {status}");
        Some(())
    }

    #[test]
    fn the_c_ndvi_example_builds_and_matches_hand_computed_ndvi() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = examples_dir().join("ndvi.c");
        if build_c(dir.path(), &[&source]).is_none() {
            return;
        }
        let text = read_evalscript_file(&dir.path().join("ndvi.wasm")).expect("built");
        let mut program = Program::compile(&text).expect("the example compiles");
        assert_eq!(program.setup().input_bands, ["B04", "B08"]);
        assert_eq!(program.boa_reason(), None);
        let b04 = [0.1f32, 0.2, 0.05, 0.0, 0.3, 0.0];
        let b08 = [0.5f32, 0.2, 0.45, 0.0, 0.1, 0.7];
        // (B08 - B04) / (B08 + B04), worked by hand: 0.4/0.6, 0, 0.4/0.5, 0/0, -0.2/0.4, 1.
        let expected = [2.0 / 3.0, 0.0, 0.8, f64::NAN, -0.5, 1.0];
        let out = program.evaluate(&[&b04, &b08], 6).expect("evaluates");
        let values = f32s(&out[0]);
        for (i, (got, want)) in values.iter().zip(expected).enumerate() {
            if want.is_nan() {
                assert!(got.is_nan(), "pixel {i}: {got}");
            } else {
                assert!(
                    (*got as f64 - want).abs() < 1e-6,
                    "pixel {i}: {got} vs {want}"
                );
            }
        }
        // And bit for bit what the JS ndvi formula gives in f64, on many pixels.
        let len = 100_003;
        let red: Vec<f32> = (0..len)
            .map(|i| ((i * 7919) % 10_007) as f32 / 10_007.0)
            .collect();
        let nir: Vec<f32> = (0..len)
            .map(|i| ((i * 104_729) % 9_973) as f32 / 9_973.0)
            .collect();
        let out = program.evaluate(&[&red, &nir], len).expect("evaluates");
        let values = f32s(&out[0]);
        for i in 0..len {
            let (r, n) = (red[i] as f64, nir[i] as f64);
            let want = ((n - r) / (n + r)) as f32;
            assert!(
                values[i] == want || (values[i].is_nan() && want.is_nan()),
                "pixel {i}"
            );
        }
    }

    #[test]
    fn a_c_module_that_loops_forever_is_stopped_within_the_budget() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("spin.c");
        std::fs::write(
            &source,
            r#"static const char SETUP[] = "{\"input\": [\"B04\"], \"output\": {\"bands\": 1}}";
__attribute__((export_name("setup_json_ptr"))) const char *setup_json_ptr(void) { return SETUP; }
__attribute__((export_name("setup_json_len"))) int setup_json_len(void) { return sizeof SETUP - 1; }
__attribute__((export_name("run"))) void run(int n) {
    volatile int spin = 1;
    while (spin) { n++; }
}
"#,
        )
        .expect("write");
        if build_c(dir.path(), &[&source]).is_none() {
            return;
        }
        let text = read_evalscript_file(&dir.path().join("spin.wasm")).expect("built");
        let mut program = Program::compile(&text).expect("compiles");
        program.set_time_budget(Duration::from_millis(300));
        let started = Instant::now();
        let err = program.evaluate(&[&[1.0; 16]], 16).expect_err("stopped");
        assert!(matches!(err, EvalscriptError::TimeBudget { .. }), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
