//! A compiled evalscript bound to its own boa context, evaluated a block at a time.
//!
//! The format is detected from the code, never from the `//VERSION` header
//! (evalscript-v3.md §1): a script that parses as a script and defines `setup()` and
//! `evaluatePixel()` is V3, or V1/V2 function style when its `setup(dss)` calls
//! `setInputComponents`; a script that only parses as a function body (a top-level
//! `return`) is a V1 body, run inside a function whose parameters are the bands it names.

use std::time::{Duration, Instant};

use boa_engine::property::{PropertyDescriptor, PropertyKey};
use boa_engine::JsNativeErrorKind;
use boa_engine::{Context, JsObject, JsString, JsValue, Script, Source};

use super::error::EvalscriptError;
use super::instrument::{instrument, InstrumentError};
use super::runtime::{
    apply_limits, describe_js_error, describe_syntax_error, is_runtime_limit, new_context,
    DEFAULT_TIME_BUDGET,
};
use super::sample_type::{write_sample, SampleType};
use super::scenes::{FusionSource, SceneEvaluation, SceneInput};
use super::setup::{parse_setup, Mosaicking, OutputSpec, Setup};
use super::v1::{v1_band_names, V1_FUNCTION};
use super::watch::{Stop, Watch};
use crate::raster::SampleBuffer;

/// `inputMetadata.normalizationFactor` (`REFLECTANCE = DN * factor`); 0.0001 is Sentinel-2's.
const NORMALIZATION_FACTOR: f64 = 0.0001;
/// How many pixels run between two checks of the time budget.
const BUDGET_CHECK_INTERVAL: usize = 32;
/// Compiled-tier time allowance: a floor plus a per-pixel share (see `compiled_budget`).
const COMPILED_FLOOR: Duration = Duration::from_secs(2);
const COMPILED_PER_PIXEL: Duration = Duration::from_micros(if cfg!(debug_assertions) {
    // Unoptimised builds copy planes in and out of linear memory ~10x slower.
    100
} else {
    10
});
/// The band value a V1 body is probed with to learn its number of output components.
const V1_PROBE_VALUE: f64 = 0.2;

/// How the script was written (evalscript-v3.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptFormat {
    /// `setup()` returning a config and `evaluatePixel(samples, ...)`.
    V3,
    /// A function body with bare band globals and a top-level `return [...]`.
    V1Body,
    /// `setup(dss)` with `setInputComponents`/`setOutputComponentCount`, and
    /// `evaluatePixel(samples, scenes)` where `samples` is an array (`samples[0].B04`).
    V1Function,
}

/// A compiled evalscript, set up, ready to evaluate blocks of pixels.
///
/// Owns a boa `Context`, so it is `!Send`: build one per worker thread. Global script
/// state persists across pixels and blocks, as scripts expect (evalscript-v3.md §3.5).
pub struct Program {
    ctx: Context,
    setup: Setup,
    format: ScriptFormat,
    entry: JsObject,
    /// Reused for every SIMPLE pixel: its band properties are overwritten in place. A
    /// script that keeps a reference to `samples` across pixels sees it change.
    samples: JsObject,
    band_keys: Vec<PropertyKey>,
    /// `(samples, scenes, inputMetadata, customData, outputMetadata)`, built once; for a
    /// V1 body, one argument per input band instead.
    args: Vec<JsValue>,
    output_keys: Vec<PropertyKey>,
    length_key: PropertyKey,
    budget: Duration,
    /// Output band counts of the current evaluation (`updateOutput` may change them).
    active_bands: Vec<usize>,
    hooks: Hooks,
    /// Names of script-defined globals, compared before and after each block.
    global_names: Vec<String>,
    writes_globals: bool,
    /// The compiled (WebAssembly) tier, when `evaluatePixel` is in its subset.
    compiled: Option<super::wasm::CompiledProgram>,
    /// Why `evaluatePixel` runs in boa; `None` when it runs compiled.
    boa_reason: Option<String>,
    /// Heap growth allowed during one evaluation (see `memory`).
    memory_limit: usize,
}

/// The optional entry points of §3.4, looked up once.
#[derive(Default)]
struct Hooks {
    pre_process_scenes: Option<JsObject>,
    filter_scenes: Option<JsObject>,
    update_output: Option<JsObject>,
    update_output_metadata: Option<JsObject>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("format", &self.format)
            .field("setup", &self.setup)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

pub(crate) fn key(name: &str) -> PropertyKey {
    PropertyKey::from(JsString::from(name))
}

/// Looks a function up by name in the global scope, including top-level `const`/`let`
/// bindings, which are not properties of the global object.
fn lookup_function(ctx: &mut Context, name: &str) -> Option<JsObject> {
    let probe = format!("typeof {name} === 'function' ? {name} : undefined");
    let value = ctx.eval(Source::from_bytes(probe.as_bytes())).ok()?;
    value.as_object().filter(|o| o.is_callable())
}

fn empty_object(ctx: &Context) -> JsObject {
    JsObject::with_object_proto(ctx.intrinsics())
}

fn top_level(ctx: &mut Context) -> impl FnMut(boa_engine::JsError) -> EvalscriptError + '_ {
    move |err| EvalscriptError::TopLevel(describe_js_error(&err, ctx))
}

fn syntax_error(err: &boa_engine::JsError, source: &str) -> EvalscriptError {
    let message = match err.as_native() {
        Some(native) => native.message().to_string(),
        None => err.to_string(),
    };
    EvalscriptError::Syntax(describe_syntax_error(&message, source))
}

/// Runs a parsed script's top level, turning early (syntax) errors into `Syntax`.
/// boa parsed a script our own parse of it rejected: never run it uninstrumented.
fn not_instrumented() -> EvalscriptError {
    EvalscriptError::Refused("the script could not be prepared for the time limit".into())
}

fn run_top_level(script: &Script, ctx: &mut Context, source: &str) -> Result<(), EvalscriptError> {
    if let Err(err) = script.evaluate(ctx) {
        if let Some(native) = err
            .as_native()
            .filter(|n| matches!(n.kind(), JsNativeErrorKind::Syntax))
        {
            let message = native.message().to_string();
            return Err(EvalscriptError::Syntax(describe_syntax_error(
                &message, source,
            )));
        }
        return Err(EvalscriptError::TopLevel(describe_js_error(&err, ctx)));
    }
    Ok(())
}

impl Program {
    /// Detects the format, runs the script's top level and its `setup()` (or probes a V1
    /// body), and validates the configuration.
    pub fn compile(source: &str) -> Result<Program, EvalscriptError> {
        Program::compile_for_collection(source, &[])
    }

    /// As `compile`, knowing the band names of the collection the script will read: a
    /// V1 body's band globals are the known Sentinel-2/Landsat/... names and these that
    /// it mentions, plus any other name its probe pixel finds undefined (a V1 script of
    /// any collection, such as Sentinel-5P's `CLOUD_BASE_HEIGHT`, compiles without it).
    pub fn compile_for_collection(
        source: &str,
        collection_bands: &[&str],
    ) -> Result<Program, EvalscriptError> {
        if let Some(module) = super::wasm::precompiled::parse(source) {
            return Program::compile_precompiled(module?);
        }
        // Top-level code and setup() can run away too.
        let _meter = super::memory::Meter::start(super::memory::DEFAULT_MEMORY_LIMIT);
        let _watch = super::watch::Watch::start(super::watch::setup_budget());
        let mut ctx = new_context(DEFAULT_TIME_BUDGET)?;
        // boa runs the instrumented text (see `instrument`); syntax errors and the
        // compiled tier use the script as written (same lines).
        let script_err = match instrument(source) {
            Ok(text) => {
                let script = Script::parse(Source::from_bytes(text.as_bytes()), None, &mut ctx)
                    .map_err(|err| syntax_error(&err, source))?;
                run_top_level(&script, &mut ctx, source)?;
                return Program::compile_functions(ctx, source);
            }
            Err(InstrumentError::Refused(message)) => {
                return Err(EvalscriptError::Refused(message))
            }
            Err(InstrumentError::NotAScript) => {
                match Script::parse(Source::from_bytes(source), None, &mut ctx) {
                    Ok(_) => return Err(not_instrumented()),
                    Err(err) => err,
                }
            }
        };
        let mut bands = v1_band_names(source, collection_bands);
        let wrapped = super::v1::wrap_body(source, &bands);
        match instrument(&wrapped) {
            Ok(_) => loop {
                // Each round adds the global the probe found undefined; boa runs the
                // instrumented wrapper, the compiled tier reads it as written.
                let wrapped = super::v1::wrap_body(source, &bands);
                let text = match instrument(&wrapped) {
                    Ok(text) => text,
                    Err(InstrumentError::Refused(message)) => {
                        return Err(EvalscriptError::Refused(message))
                    }
                    Err(InstrumentError::NotAScript) => return Err(not_instrumented()),
                };
                let mut ctx = new_context(DEFAULT_TIME_BUDGET)?;
                let script = Script::parse(Source::from_bytes(text.as_bytes()), None, &mut ctx)
                    .map_err(|e| syntax_error(&e, source))?;
                run_top_level(&script, &mut ctx, source)?;
                match Program::compile_v1_body(ctx, bands.clone(), &wrapped)? {
                    V1Probe::Program(program) => return Ok(*program),
                    V1Probe::Undefined(name)
                        if bands.len() < V1_MAX_DISCOVERED_BANDS && !bands.contains(&name) =>
                    {
                        bands.push(name)
                    }
                    V1Probe::Undefined(_) => {
                        return Err(EvalscriptError::TopLevel(
                            "the V1 script reads too many undefined globals".into(),
                        ))
                    }
                }
            },
            Err(InstrumentError::Refused(message)) => Err(EvalscriptError::Refused(message)),
            Err(InstrumentError::NotAScript) => {
                match Script::parse(Source::from_bytes(wrapped.as_bytes()), None, &mut ctx) {
                    Ok(_) => Err(not_instrumented()),
                    // Both failed. If the script parse stopped at a top-level `return`,
                    // the author wrote a V1 body: its real error is the wrapper's (same
                    // line numbers; columns on line 1 include the wrapper's prefix).
                    Err(body_err)
                        if syntax_error(&script_err, source)
                            .to_string()
                            .contains("return") =>
                    {
                        Err(syntax_error(&body_err, source))
                    }
                    Err(_) => Err(syntax_error(&script_err, source)),
                }
            }
        }
    }

    /// A `//!tessera-wasm` module (`wasm::precompiled`): its setup JSON goes through the
    /// `setup()` parser (via a JS shim) and its `run` export is the compiled tier.
    fn compile_precompiled(
        module: super::wasm::precompiled::PrecompiledModule,
    ) -> Result<Program, EvalscriptError> {
        let mut program = Program::compile(&module.setup_script())?;
        program.compiled = Some(module.instantiate(&program.setup)?);
        program.boa_reason = None;
        Ok(program)
    }

    /// V3 or V1/V2 function style: `setup` and `evaluatePixel` are defined.
    fn compile_functions(mut ctx: Context, source: &str) -> Result<Program, EvalscriptError> {
        let setup_fn =
            lookup_function(&mut ctx, "setup").ok_or(EvalscriptError::MissingFunction("setup"))?;
        let evaluate_pixel = lookup_function(&mut ctx, "evaluatePixel")
            .ok_or(EvalscriptError::MissingFunction("evaluatePixel"))?;
        let dss = ctx
            .global_object()
            .get(key("__tessera_dss"), &mut ctx)
            .map_err(top_level(&mut ctx))?;
        let config = setup_fn
            .call(&JsValue::undefined(), &[dss], &mut ctx)
            .map_err(|err| EvalscriptError::SetupThrew(describe_js_error(&err, &mut ctx)))?;
        let (setup, format) = if config.is_object() {
            (parse_setup(&config, &mut ctx)?, ScriptFormat::V3)
        } else if let Some(setup) = legacy_setup(&mut ctx)? {
            (setup, ScriptFormat::V1Function)
        } else {
            (parse_setup(&config, &mut ctx)?, ScriptFormat::V3)
        };
        let hooks = Hooks {
            pre_process_scenes: lookup_function(&mut ctx, "preProcessScenes"),
            filter_scenes: lookup_function(&mut ctx, "filterScenes"),
            update_output: lookup_function(&mut ctx, "updateOutput"),
            update_output_metadata: lookup_function(&mut ctx, "updateOutputMetadata"),
        };
        let scene_hooked = hooks.pre_process_scenes.is_some()
            || hooks.filter_scenes.is_some()
            || hooks.update_output.is_some();
        if setup.is_fusion() && scene_hooked {
            return Err(EvalscriptError::Unsupported(
                "preProcessScenes/filterScenes/updateOutput in a data-fusion script".into(),
            ));
        }
        let hooked = scene_hooked || hooks.update_output_metadata.is_some();
        let mut program = Program::new(ctx, setup, format, evaluate_pixel, hooks)?;
        program.global_names = program.script_globals(source);
        program.boa_reason = if format != ScriptFormat::V3 {
            Some("V1/V2 function-style scripts run in boa".into())
        } else if program.setup.is_fusion() {
            Some("data-fusion scripts run in boa".into())
        } else if program.setup.mosaicking != Mosaicking::Simple {
            Some("ORBIT/TILE mosaicking runs in boa".into())
        } else if hooked {
            Some("scripts with preProcessScenes/filterScenes/updateOutput/updateOutputMetadata run in boa".into())
        } else {
            let outputs: Vec<(String, usize, SampleType)> = program
                .setup
                .outputs
                .iter()
                .map(|o| (o.id.clone(), o.bands, o.sample_type))
                .collect();
            match super::wasm::CompiledProgram::compile_formatted(
                source,
                &program.setup.input_bands,
                &outputs,
            ) {
                Ok(compiled) => {
                    program.compiled = Some(compiled);
                    None
                }
                Err(super::wasm::WasmError::Unsupported(reason)) => Some(reason),
                Err(other) => Some(format!("the compiled tier failed: {other}")),
            }
        };
        if let Some(reason) = &program.boa_reason {
            tracing::debug!("evaluatePixel runs in boa: {reason}");
        }
        Ok(program)
    }

    /// V1 body: bands are the known band names it mentions; the number of output
    /// components is the length of what it returns for a probe pixel (all bands 0.2,
    /// `dataMask` 1). Output is AUTO, as V1 output was.
    fn compile_v1_body(
        mut ctx: Context,
        bands: Vec<String>,
        wrapped: &str,
    ) -> Result<V1Probe, EvalscriptError> {
        let entry = lookup_function(&mut ctx, V1_FUNCTION)
            .ok_or(EvalscriptError::MissingFunction("evaluatePixel"))?;
        let probe: Vec<JsValue> = bands
            .iter()
            .map(|b| JsValue::from(if b == "dataMask" { 1.0 } else { V1_PROBE_VALUE }))
            .collect();
        let returned = entry.call(&JsValue::undefined(), &probe, &mut ctx);
        if let Some(name) = returned.as_ref().err().and_then(undefined_global) {
            return Ok(V1Probe::Undefined(name));
        }
        let returned = returned.map_err(|err| {
            EvalscriptError::TopLevel(format!(
                "the V1 script failed on a probe pixel (bands {V1_PROBE_VALUE}) used to \
                 count its output components: {}",
                describe_js_error(&err, &mut ctx)
            ))
        })?;
        let components = match returned.as_object().filter(|o| o.is_array()) {
            Some(array) => array
                .get(key("length"), &mut ctx)
                .ok()
                .and_then(|l| l.as_number())
                .unwrap_or(0.0) as usize,
            None if returned.is_number() || returned.is_boolean() => 1,
            None => 0,
        };
        if components == 0 || components > super::setup::MAX_OUTPUT_BANDS {
            return Err(EvalscriptError::InvalidSetup(format!(
                "a V1 script must return an array of 1 to {} values, but it returned {}",
                super::setup::MAX_OUTPUT_BANDS,
                describe_value(&returned)
            )));
        }
        let setup = legacy_setup_of(bands, components);
        let mut program = Program::new(ctx, setup, ScriptFormat::V1Body, entry, Hooks::default())?;
        program.global_names = program.script_globals("");
        let outputs = [("default".to_string(), components, SampleType::Auto)];
        match super::wasm::CompiledProgram::compile_v1_body(
            wrapped,
            &program.setup.input_bands,
            &outputs,
        ) {
            Ok(compiled) => program.compiled = Some(compiled),
            Err(super::wasm::WasmError::Unsupported(reason)) => program.boa_reason = Some(reason),
            Err(other) => program.boa_reason = Some(format!("the compiled tier failed: {other}")),
        }
        Ok(V1Probe::Program(Box::new(program)))
    }

    fn new(
        mut ctx: Context,
        setup: Setup,
        format: ScriptFormat,
        entry: JsObject,
        hooks: Hooks,
    ) -> Result<Program, EvalscriptError> {
        let samples = empty_object(&ctx);
        let band_keys: Vec<PropertyKey> = setup.input_bands.iter().map(|b| key(b)).collect();
        // Create every band property up front so the object's shape never changes.
        for band_key in &band_keys {
            samples
                .set(band_key.clone(), 0.0, false, &mut ctx)
                .map_err(top_level(&mut ctx))?;
        }
        let input_metadata = empty_object(&ctx);
        let metadata_fields = [
            ("serviceVersion", JsValue::from(JsString::from("3.0"))),
            ("normalizationFactor", JsValue::from(NORMALIZATION_FACTOR)),
        ];
        for (name, value) in metadata_fields {
            input_metadata
                .set(key(name), value, false, &mut ctx)
                .map_err(top_level(&mut ctx))?;
        }
        let args = match format {
            ScriptFormat::V1Body => vec![JsValue::from(0.0); band_keys.len()],
            ScriptFormat::V3 | ScriptFormat::V1Function => {
                let first = if format == ScriptFormat::V1Function {
                    let array = boa_engine::object::builtins::JsArray::from_iter(
                        [JsValue::from(samples.clone())],
                        &mut ctx,
                    );
                    JsValue::from(array)
                } else {
                    JsValue::from(samples.clone())
                };
                let scenes = if format == ScriptFormat::V1Function {
                    JsValue::from(
                        boa_engine::object::builtins::JsArray::new(&mut ctx)
                            .map_err(top_level(&mut ctx))?,
                    )
                } else {
                    JsValue::from(empty_object(&ctx))
                };
                vec![
                    first,
                    scenes,
                    JsValue::from(input_metadata),
                    JsValue::from(empty_object(&ctx)),
                    JsValue::from(empty_object(&ctx)),
                ]
            }
        };
        let output_keys = setup.outputs.iter().map(|o| key(&o.id)).collect();
        let active_bands = setup.outputs.iter().map(|o| o.bands).collect();
        Ok(Program {
            ctx,
            setup,
            format,
            entry,
            samples,
            band_keys,
            args,
            output_keys,
            length_key: key("length"),
            budget: DEFAULT_TIME_BUDGET,
            active_bands,
            hooks,
            global_names: Vec::new(),
            writes_globals: false,
            compiled: None,
            boa_reason: None,
            memory_limit: super::memory::DEFAULT_MEMORY_LIMIT,
        })
    }

    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    pub fn format(&self) -> ScriptFormat {
        self.format
    }

    /// True once an `evaluate` call was seen changing script-defined global state (a
    /// counter, a table filled per pixel, an implicit global). Such a script's results
    /// depend on pixel order and on which context ran which block, so it must run on one
    /// context in order rather than split across workers.
    pub fn writes_globals(&self) -> bool {
        self.writes_globals
    }

    /// Limits the wall time of each `evaluate` call (checked every few pixels) and, through
    /// boa's per-call loop limit derived from it, the time one looping call can run.
    pub fn set_time_budget(&mut self, budget: Duration) {
        self.budget = budget;
        apply_limits(&mut self.ctx, budget);
        if let Some(c) = &mut self.compiled {
            c.set_time_budget(budget);
        }
    }

    /// Limits how much the heap may grow during one evaluation (default
    /// `DEFAULT_MEMORY_LIMIT`); beyond it the evaluation fails with `Memory`. A program
    /// that failed so should be dropped: its heap may still hold what the script built.
    pub fn set_memory_limit(&mut self, bytes: usize) {
        self.memory_limit = bytes;
    }

    /// Test hook: evaluate in boa only, every output as FLOAT32, so the compiled tier's
    /// values can be compared with boa's to the bit.
    #[cfg(test)]
    pub(crate) fn boa_float32(&mut self) {
        self.compiled = None;
        for o in &mut self.setup.outputs {
            o.sample_type = SampleType::Float32;
        }
    }

    /// `None` when `evaluatePixel` runs compiled to WebAssembly, else why it runs in boa.
    /// Both tiers give bit-identical outputs; this is for `tessera eval --explain`.
    pub fn boa_reason(&self) -> Option<&str> {
        if self.compiled.is_some() {
            None
        } else {
            Some(
                self.boa_reason
                    .as_deref()
                    .unwrap_or("V1 body scripts run in boa"),
            )
        }
    }

    /// Runs `evaluatePixel` over `len` pixels.
    ///
    /// `bands[k]` holds the values of `setup().input_bands[k]`. Returns one buffer per
    /// output, in `setup().outputs` order, band-sequential (band `b`, pixel `i` at
    /// `b * len + i`), formatted to the output's sample type. For ORBIT/TILE scripts the
    /// block is one scene without metadata (see `evaluate_scenes` for the full form).
    pub fn evaluate(
        &mut self,
        bands: &[&[f32]],
        len: usize,
    ) -> Result<Vec<SampleBuffer>, EvalscriptError> {
        let mut out = Vec::new();
        self.evaluate_into(bands, len, &mut out)?;
        Ok(out)
    }

    /// As `evaluate`, into `out`: when the compiled tier runs the script and `out`
    /// already holds buffers of the outputs' types and sizes (block after block of one
    /// size), they are overwritten in place, so a block costs no allocation or page
    /// faults. The boa tier replaces `out`.
    pub fn evaluate_into(
        &mut self,
        bands: &[&[f32]],
        len: usize,
        out: &mut Vec<SampleBuffer>,
    ) -> Result<(), EvalscriptError> {
        self.refuse_fusion()?;
        if self.setup.mosaicking != Mosaicking::Simple {
            let scene = SceneInput {
                bands: bands.to_vec(),
                ..SceneInput::default()
            };
            *out = self.evaluate_scenes(&[scene], len)?.outputs;
            return Ok(());
        }
        self.check_input(bands, len)?;
        if let Some(compiled) = &mut self.compiled {
            let budget = compiled_budget(self.budget, len);
            let _watch = Watch::start(budget);
            // Formatted in the compiled tier: FLOAT32 straight out of linear memory.
            return compiled
                .evaluate_formatted_into(bands, len, &self.setup.outputs, out)
                .map_err(|err| match err {
                    _ if super::watch::stopped() == Some(Stop::Cancelled) => {
                        EvalscriptError::Cancelled
                    }
                    super::wasm::WasmError::TimeBudget { .. } => EvalscriptError::TimeBudget {
                        budget,
                        pixels_done: 0,
                        pixels: len,
                    },
                    other => EvalscriptError::Input(format!("compiled tier: {other}")),
                });
        }
        self.active_bands = self.setup.outputs.iter().map(|o| o.bands).collect();
        let _meter = super::memory::Meter::start(self.memory_limit);
        let _watch = Watch::start(self.budget);
        let before = self.snapshot();
        *out = self
            .evaluate_simple(bands, len)
            .map_err(|e| timed_out(e, len))?;
        self.compare_snapshot(before);
        Ok(())
    }

    /// Runs the script over scenes of the same block: for ORBIT/TILE, `evaluatePixel`
    /// gets `samples` as an array (one entry per kept scene, in the given order) and the
    /// `scenes` argument, after `preProcessScenes`/`filterScenes`/`updateOutput`; for
    /// SIMPLE, exactly one scene is expected. `updateOutputMetadata` runs at the end and
    /// `outputMetadata.userData` is returned as JSON (the `userdata` output).
    pub fn evaluate_scenes(
        &mut self,
        scenes: &[SceneInput],
        len: usize,
    ) -> Result<SceneEvaluation, EvalscriptError> {
        self.refuse_fusion()?;
        for scene in scenes {
            self.check_input(&scene.bands, len)?;
        }
        let _meter = super::memory::Meter::start(self.memory_limit);
        let _watch = Watch::start(self.budget);
        let output_metadata = empty_object(&self.ctx);
        let before = self.snapshot();
        let (outputs, scenes_value, used) = if self.setup.mosaicking == Mosaicking::Simple {
            if scenes.len() != 1 {
                return Err(EvalscriptError::Input(format!(
                    "SIMPLE mosaicking takes exactly one (mosaicked) scene, got {}",
                    scenes.len()
                )));
            }
            self.active_bands = self.setup.outputs.iter().map(|o| o.bands).collect();
            if let Some(slot) = self.args.get_mut(4) {
                *slot = JsValue::from(output_metadata.clone());
            }
            let value = self.args.get(1).cloned().unwrap_or_default();
            (
                self.evaluate_simple(&scenes[0].bands, len)
                    .map_err(|e| timed_out(e, len))?,
                value,
                1,
            )
        } else {
            self.evaluate_multi(scenes, len, &output_metadata)
                .map_err(|e| timed_out(e, len))?
        };
        let user_data = self.finish_metadata(scenes_value, &output_metadata)?;
        self.compare_snapshot(before);
        Ok(SceneEvaluation {
            outputs,
            bands: self.active_bands.clone(),
            user_data,
            scenes_used: vec![used],
        })
    }

    fn refuse_fusion(&self) -> Result<(), EvalscriptError> {
        if self.setup.is_fusion() {
            return Err(EvalscriptError::Input(
                "a data-fusion script takes its inputs per datasource: use evaluate_fusion".into(),
            ));
        }
        Ok(())
    }

    /// Data fusion: `evaluatePixel` gets `samples` as an object keyed by datasource id,
    /// each value an array of sample objects (SIMPLE: one, the mosaic; ORBIT/TILE: one
    /// per scene, in the given order), and `scenes` keyed the same way (SIMPLE: `{}`;
    /// ORBIT/TILE: the scenes array with `.orbits`/`.tiles`, as without fusion).
    /// `sources` follow `Setup::datasources` order; `updateOutputMetadata` runs at the end.
    pub fn evaluate_fusion(
        &mut self,
        sources: &[FusionSource],
        len: usize,
    ) -> Result<SceneEvaluation, EvalscriptError> {
        self.check_fusion_input(sources, len)?;
        let _meter = super::memory::Meter::start(self.memory_limit);
        let _watch = Watch::start(self.budget);
        let simple = self.setup.mosaicking == Mosaicking::Simple;
        let output_metadata = empty_object(&self.ctx);
        let before = self.snapshot();
        self.active_bands = self.setup.outputs.iter().map(|o| o.bands).collect();
        let scenes_arg = empty_object(&self.ctx);
        let mut kept: Vec<Vec<usize>> = Vec::with_capacity(sources.len());
        for source in sources {
            let (keep, value) = if simple {
                (vec![0], JsValue::from(empty_object(&self.ctx)))
            } else {
                self.prepare_scenes(&source.scenes)?
            };
            scenes_arg
                .set(key(&source.id), value, false, &mut self.ctx)
                .map_err(top_level(&mut self.ctx))?;
            kept.push(keep);
        }
        let source_keys: Vec<PropertyKey> = sources.iter().map(|s| key(&s.id)).collect();
        let band_keys: Vec<Vec<PropertyKey>> = self
            .setup
            .datasources
            .iter()
            .map(|d| d.bands.iter().map(|b| key(b)).collect())
            .collect();
        let mut buffers = self.zeroed_buffers(len);
        let input_metadata = self.args[2].clone();
        let custom = JsValue::from(empty_object(&self.ctx));
        let start = Instant::now();
        for pixel in 0..len {
            self.check_limits(pixel, len, start)?;
            let samples = empty_object(&self.ctx);
            for (s, source) in sources.iter().enumerate() {
                let array = scene_samples(
                    &mut self.ctx,
                    &band_keys[s],
                    &source.scenes,
                    &kept[s],
                    pixel,
                )?;
                samples
                    .set(source_keys[s].clone(), array, false, &mut self.ctx)
                    .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            }
            let args = [
                JsValue::from(samples),
                JsValue::from(scenes_arg.clone()),
                input_metadata.clone(),
                custom.clone(),
                JsValue::from(output_metadata.clone()),
            ];
            let returned = self
                .entry
                .call(&JsValue::undefined(), &args, &mut self.ctx)
                .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            self.store_return(&returned, pixel, len, &mut buffers)?;
        }
        let user_data = self.finish_metadata(JsValue::from(scenes_arg), &output_metadata)?;
        self.compare_snapshot(before);
        Ok(SceneEvaluation {
            outputs: buffers,
            bands: self.active_bands.clone(),
            user_data,
            scenes_used: kept.iter().map(Vec::len).collect(),
        })
    }

    fn check_fusion_input(
        &self,
        sources: &[FusionSource],
        len: usize,
    ) -> Result<(), EvalscriptError> {
        let expected = &self.setup.datasources;
        if !self.setup.is_fusion() {
            return Err(EvalscriptError::Input(
                "evaluate_fusion needs a data-fusion script (setup().input[].datasource)".into(),
            ));
        }
        let ids = |list: &mut dyn Iterator<Item = &str>| list.collect::<Vec<_>>().join(", ");
        if sources.len() != expected.len()
            || sources.iter().zip(expected).any(|(s, d)| s.id != d.id)
        {
            return Err(EvalscriptError::Input(format!(
                "setup() reads datasources [{}] but [{}] were given",
                ids(&mut expected.iter().map(|d| d.id.as_str())),
                ids(&mut sources.iter().map(|s| s.id.as_str()))
            )));
        }
        for (source, spec) in sources.iter().zip(expected) {
            if self.setup.mosaicking == Mosaicking::Simple && source.scenes.len() != 1 {
                return Err(EvalscriptError::Input(format!(
                    "SIMPLE mosaicking takes exactly one (mosaicked) scene per datasource, got \
                     {} for '{}'",
                    source.scenes.len(),
                    source.id
                )));
            }
            for scene in &source.scenes {
                if scene.bands.len() != spec.bands.len()
                    || scene.bands.iter().any(|b| b.len() < len)
                {
                    return Err(EvalscriptError::Input(format!(
                        "datasource '{}' needs {} bands ({}) of {len} values each",
                        spec.id,
                        spec.bands.len(),
                        spec.bands.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// Runs `updateOutputMetadata` and returns `outputMetadata.userData` as JSON.
    fn finish_metadata(
        &mut self,
        scenes_value: JsValue,
        output_metadata: &JsObject,
    ) -> Result<Option<serde_json::Value>, EvalscriptError> {
        if let Some(hook) = self.hooks.update_output_metadata.clone() {
            let args = [
                scenes_value,
                self.args[2].clone(),
                JsValue::from(output_metadata.clone()),
            ];
            hook.call(&JsValue::undefined(), &args, &mut self.ctx)
                .map_err(|err| {
                    EvalscriptError::TopLevel(format!(
                        "updateOutputMetadata threw: {}",
                        describe_js_error(&err, &mut self.ctx)
                    ))
                })?;
        }
        let user_data = output_metadata
            .get(key("userData"), &mut self.ctx)
            .map_err(top_level(&mut self.ctx))?;
        if user_data.is_undefined() {
            Ok(None)
        } else {
            user_data
                .to_json(&mut self.ctx)
                .map_err(top_level(&mut self.ctx))
        }
    }

    /// The SIMPLE hot path: one reused `samples` object (or argument list), cached args.
    fn evaluate_simple(
        &mut self,
        bands: &[&[f32]],
        len: usize,
    ) -> Result<Vec<SampleBuffer>, EvalscriptError> {
        let mut buffers = self.zeroed_buffers(len);
        let start = Instant::now();
        let v1_body = self.format == ScriptFormat::V1Body;
        for pixel in 0..len {
            self.check_limits(pixel, len, start)?;
            if v1_body {
                for (slot, values) in self.args.iter_mut().zip(bands) {
                    *slot = JsValue::from(f64::from(values[pixel]));
                }
            } else {
                // Straight into the property map: skips [[Set]]'s descriptor lookups and
                // re-validation, and keeps the object's shape (same keys, same attributes).
                for (band_key, values) in self.band_keys.iter().zip(bands) {
                    let value = JsValue::from(f64::from(values[pixel]));
                    self.samples
                        .insert_property(band_key.clone(), data_property(value));
                }
            }
            let returned = self
                .entry
                .call(&JsValue::undefined(), &self.args, &mut self.ctx)
                .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            self.store_return(&returned, pixel, len, &mut buffers)?;
        }
        Ok(buffers)
    }

    /// ORBIT/TILE: scene hooks, then per pixel a fresh `samples` array of fresh objects
    /// (scripts sort or splice it, so it is not reused).
    fn evaluate_multi(
        &mut self,
        scenes: &[SceneInput],
        len: usize,
        output_metadata: &JsObject,
    ) -> Result<(Vec<SampleBuffer>, JsValue, usize), EvalscriptError> {
        let prepared = self.prepare_scenes(scenes)?;
        let (keep, scenes_value) = prepared;
        let mut buffers = self.zeroed_buffers(len);
        let input_metadata = self.args[2].clone();
        let custom = JsValue::from(empty_object(&self.ctx));
        let start = Instant::now();
        for pixel in 0..len {
            self.check_limits(pixel, len, start)?;
            let samples = scene_samples(&mut self.ctx, &self.band_keys, scenes, &keep, pixel)?;
            let args = [
                samples,
                scenes_value.clone(),
                input_metadata.clone(),
                custom.clone(),
                JsValue::from(output_metadata.clone()),
            ];
            let returned = self
                .entry
                .call(&JsValue::undefined(), &args, &mut self.ctx)
                .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            self.store_return(&returned, pixel, len, &mut buffers)?;
        }
        let used = keep.len();
        Ok((buffers, scenes_value, used))
    }

    /// Calls the prelude's `__tessera_prepare` with the scene metadata and hooks; returns
    /// the indices of the kept scenes and the `scenes` argument.
    fn prepare_scenes(
        &mut self,
        scenes: &[SceneInput],
    ) -> Result<(Vec<usize>, JsValue), EvalscriptError> {
        let metas: Vec<serde_json::Value> = scenes.iter().map(SceneInput::meta_json).collect();
        let (from, to) = scenes
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s.date_ms as f64), hi.max(s.date_ms as f64))
            });
        let (from, to) = if from.is_finite() {
            (from, to)
        } else {
            (0.0, 0.0)
        };
        let ctx = &mut self.ctx;
        let prepare = ctx
            .global_object()
            .get(key("__tessera_prepare"), ctx)
            .map_err(top_level(ctx))?;
        let Some(prepare) = prepare.as_object().filter(|o| o.is_callable()) else {
            return Err(EvalscriptError::TopLevel("runtime helper missing".into()));
        };
        let range = boa_engine::object::builtins::JsArray::from_iter(
            [JsValue::from(from), JsValue::from(to)],
            ctx,
        );
        let hooks = empty_object(ctx);
        let hook_fields = [
            ("preProcessScenes", &self.hooks.pre_process_scenes),
            ("filterScenes", &self.hooks.filter_scenes),
            ("updateOutput", &self.hooks.update_output),
        ];
        for (name, hook) in hook_fields {
            if let Some(hook) = hook {
                hooks
                    .set(key(name), hook.clone(), false, ctx)
                    .map_err(top_level(ctx))?;
            }
        }
        let outputs = empty_object(ctx);
        for spec in &self.setup.outputs {
            outputs
                .set(key(&spec.id), spec.bands as f64, false, ctx)
                .map_err(top_level(ctx))?;
        }
        let metas_json = serde_json::Value::Array(metas).to_string();
        let args = [
            JsValue::from(JsString::from(metas_json.as_str())),
            JsValue::from(JsString::from(self.setup.mosaicking.name())),
            JsValue::from(range),
            JsValue::from(hooks),
            self.args[2].clone(),
            JsValue::from(outputs.clone()),
        ];
        let result = prepare
            .call(&JsValue::undefined(), &args, ctx)
            .map_err(|err| {
                EvalscriptError::TopLevel(format!(
                    "scene hooks (preProcessScenes/filterScenes/updateOutput) failed: {}",
                    describe_js_error(&err, ctx)
                ))
            })?;
        let result = result
            .as_object()
            .ok_or_else(|| EvalscriptError::TopLevel("bad scene preparation".into()))?;
        let keep_value = result.get(key("keep"), ctx).map_err(top_level(ctx))?;
        let keep_json = keep_value.to_json(ctx).map_err(top_level(ctx))?;
        let keep: Vec<usize> = keep_json
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if keep.iter().any(|&i| i >= scenes.len()) {
            return Err(EvalscriptError::TopLevel(
                "scene hooks returned an unknown scene".into(),
            ));
        }
        let mut bands = Vec::with_capacity(self.setup.outputs.len());
        for spec in &self.setup.outputs {
            let value = outputs.get(key(&spec.id), ctx).map_err(top_level(ctx))?;
            match value.as_number() {
                Some(n)
                    if n.fract() == 0.0
                        && n >= 1.0
                        && n <= super::setup::MAX_OUTPUT_BANDS as f64 =>
                {
                    bands.push(n as usize)
                }
                _ => {
                    return Err(EvalscriptError::InvalidSetup(format!(
                        "updateOutput set output '{}' to {} bands; it must be a whole number \
                         from 1 to {}",
                        spec.id,
                        value.display(),
                        super::setup::MAX_OUTPUT_BANDS
                    )))
                }
            }
        }
        self.active_bands = bands;
        let scenes_value = result.get(key("scenes"), ctx).map_err(top_level(ctx))?;
        Ok((keep, scenes_value))
    }

    fn zeroed_buffers(&self, len: usize) -> Vec<SampleBuffer> {
        self.setup
            .outputs
            .iter()
            .zip(&self.active_bands)
            .map(|(o, &bands)| o.sample_type.zeroed_buffer(bands * len))
            .collect()
    }

    /// Every `BUDGET_CHECK_INTERVAL` pixels: the time budget and the heap bound.
    fn check_limits(
        &self,
        pixel: usize,
        len: usize,
        start: Instant,
    ) -> Result<(), EvalscriptError> {
        if pixel % BUDGET_CHECK_INTERVAL == 0 {
            if start.elapsed() > self.budget {
                return Err(self.budget_error(pixel, len));
            }
            if super::memory::check().is_some() {
                return Err(memory_error(pixel));
            }
        }
        Ok(())
    }

    fn budget_error(&self, pixel: usize, len: usize) -> EvalscriptError {
        EvalscriptError::TimeBudget {
            budget: self.budget,
            pixels_done: pixel,
            pixels: len,
        }
    }

    /// Names of globals the script itself defined: global-object properties that are not
    /// builtins or helpers, plus top-level `let`/`const`/`var`/`class` names.
    fn script_globals(&mut self, source: &str) -> Vec<String> {
        let probe = "Object.getOwnPropertyNames(globalThis).filter(function (n) { \
                     return __tessera_builtin_globals.indexOf(n) < 0 && n.indexOf('__tessera') !== 0; })";
        let mut names: Vec<String> = self
            .ctx
            .eval(Source::from_bytes(probe))
            .ok()
            .and_then(|v| v.to_json(&mut self.ctx).ok().flatten())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        for name in super::v1::top_level_declarations(source) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    fn snapshot(&mut self) -> Option<String> {
        if self.writes_globals {
            return None;
        }
        let snap = self
            .ctx
            .global_object()
            .get(key("__tessera_snapshot"), &mut self.ctx)
            .ok()?;
        let snap = snap.as_object()?;
        let names = boa_engine::object::builtins::JsArray::from_iter(
            self.global_names
                .iter()
                .map(|n| JsValue::from(JsString::from(n.as_str()))),
            &mut self.ctx,
        );
        let text = snap
            .call(
                &JsValue::undefined(),
                &[JsValue::from(names)],
                &mut self.ctx,
            )
            .ok()?;
        text.as_string().map(|s| s.to_std_string_escaped())
    }

    /// Also catches implicit globals created during the block (new global names).
    fn compare_snapshot(&mut self, before: Option<String>) {
        let Some(before) = before else { return };
        let known = self.global_names.len();
        let current = self.script_globals("");
        let new_names = current.iter().any(|n| !self.global_names.contains(n));
        if new_names {
            self.writes_globals = true;
            return;
        }
        debug_assert!(known == self.global_names.len());
        if self.snapshot().is_some_and(|after| after != before) {
            self.writes_globals = true;
        }
    }

    fn check_input(&self, bands: &[&[f32]], len: usize) -> Result<(), EvalscriptError> {
        if bands.len() != self.setup.input_bands.len() {
            return Err(EvalscriptError::Input(format!(
                "setup() requests {} bands ({}) but {} were given",
                self.setup.input_bands.len(),
                self.setup.input_bands.join(", "),
                bands.len()
            )));
        }
        for (name, values) in self.setup.input_bands.iter().zip(bands) {
            if values.len() < len {
                return Err(EvalscriptError::Input(format!(
                    "band {name} has {} values for a block of {len} pixels",
                    values.len()
                )));
            }
        }
        Ok(())
    }

    /// Writes one pixel's return value into the output buffers.
    fn store_return(
        &mut self,
        returned: &JsValue,
        pixel: usize,
        len: usize,
        buffers: &mut [SampleBuffer],
    ) -> Result<(), EvalscriptError> {
        let bad = |message: String| EvalscriptError::BadReturn { pixel, message };
        let single = self.setup.outputs.len() == 1;
        let returned_object = returned.as_object();
        match returned_object {
            Some(object) if object.is_array() => {
                if !single {
                    return Err(bad(format!(
                        "setup() declares {} outputs, so evaluatePixel must return an object \
                         keyed by output id ({}), not an array",
                        self.setup.outputs.len(),
                        self.output_ids()
                    )));
                }
                self.store_output(returned, 0, pixel, len, buffers)
            }
            Some(object) if !object.is_callable() => {
                for output in 0..self.setup.outputs.len() {
                    let value = object
                        .get(self.output_keys[output].clone(), &mut self.ctx)
                        .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
                    self.store_output(&value, output, pixel, len, buffers)?;
                }
                Ok(())
            }
            _ if single && (returned.is_number() || returned.is_boolean()) => {
                self.store_output(returned, 0, pixel, len, buffers)
            }
            _ => Err(bad(format!(
                "evaluatePixel returned {}; it must return an array of {} values{}",
                describe_value(returned),
                self.active_bands[0],
                if single {
                    String::new()
                } else {
                    format!(
                        " per output in an object keyed by id ({})",
                        self.output_ids()
                    )
                }
            ))),
        }
    }

    /// Writes the values for output `output` into its buffer (see [`Self::output_values`]).
    fn store_output(
        &mut self,
        value: &JsValue,
        output: usize,
        pixel: usize,
        len: usize,
        buffers: &mut [SampleBuffer],
    ) -> Result<(), EvalscriptError> {
        let sample_type = self.setup.outputs[output].sample_type;
        let buffer = &mut buffers[output];
        self.output_values(value, output, pixel, |band, number| {
            write_sample(buffer, sample_type, band * len + pixel, number)
        })
    }

    /// Passes each band value of output `output` to `put(band, number)`: `value` is an
    /// array (a bare number for 1-band outputs). Extra values are dropped; too few fail
    /// with the output's id.
    fn output_values(
        &mut self,
        value: &JsValue,
        output: usize,
        pixel: usize,
        mut put: impl FnMut(usize, f64),
    ) -> Result<(), EvalscriptError> {
        let bands = self.active_bands[output];
        let array = value.as_object().filter(|o| o.is_array());
        let Some(array) = array else {
            if bands == 1 && (value.is_number() || value.is_boolean()) {
                put(0, value.to_number(&mut self.ctx).unwrap_or(f64::NAN));
                return Ok(());
            }
            let message = format!(
                "output '{}' needs an array of {bands} values, but evaluatePixel returned {}",
                self.setup.outputs[output].id,
                describe_value(value)
            );
            return Err(EvalscriptError::BadReturn { pixel, message });
        };
        // Fast path: read a dense array's own elements straight from its property map.
        let mut fast = [0.0f64; 8];
        let fast_ok = bands <= fast.len() && {
            let borrowed = array.borrow();
            let props = borrowed.properties();
            let mut ok = true;
            for (band, slot) in fast.iter_mut().enumerate().take(bands) {
                match props
                    .get(&PropertyKey::from(band as u32))
                    .and_then(|d| d.value().and_then(JsValue::as_number))
                {
                    Some(n) => *slot = n,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            ok
        };
        if fast_ok {
            for (band, &number) in fast.iter().enumerate().take(bands) {
                put(band, number);
            }
            return Ok(());
        }
        let length = array
            .get(self.length_key.clone(), &mut self.ctx)
            .ok()
            .and_then(|l| l.as_number())
            .unwrap_or(0.0);
        if length < bands as f64 {
            let message = format!(
                "output '{}' has {bands} bands but evaluatePixel returned {length} values",
                self.setup.outputs[output].id
            );
            return Err(EvalscriptError::BadReturn { pixel, message });
        }
        for band in 0..bands {
            let element = array
                .get(band as u32, &mut self.ctx)
                .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            let number = match element.as_number() {
                Some(number) => number,
                None => element
                    .to_number(&mut self.ctx)
                    .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?,
            };
            put(band, number);
        }
        Ok(())
    }

    fn output_ids(&self) -> String {
        let ids: Vec<&str> = self.setup.outputs.iter().map(|o| o.id.as_str()).collect();
        ids.join(", ")
    }
}

/// What probing a V1 body gave.
enum V1Probe {
    Program(Box<Program>),
    /// The body read this global, which is not defined: it is a band of its collection.
    Undefined(String),
}

/// How many band globals a V1 body may gain by probing (each costs a parse and a probe).
const V1_MAX_DISCOVERED_BANDS: usize = 64;

/// The name in a `ReferenceError: NAME is not defined`, if `err` is one.
fn undefined_global(err: &boa_engine::JsError) -> Option<String> {
    let native = err.as_native()?;
    if !matches!(native.kind(), JsNativeErrorKind::Reference) {
        return None;
    }
    let message = native.message().to_string();
    let name = message.strip_suffix(" is not defined")?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    valid.then(|| name.to_string())
}

/// The V1/V2 setup: `setInputComponents` gave the bands and `setOutputComponentCount`
/// the number of AUTO output components. `None` if `setInputComponents` was not called.
fn legacy_setup(ctx: &mut Context) -> Result<Option<Setup>, EvalscriptError> {
    let state = ctx
        .global_object()
        .get(key("__tessera_legacy"), ctx)
        .map_err(top_level(ctx))?;
    let Some(state) = state.as_object() else {
        return Ok(None);
    };
    let inputs = state.get(key("inputs"), ctx).map_err(top_level(ctx))?;
    let Some(inputs) = inputs.to_json(ctx).ok().flatten() else {
        return Ok(None);
    };
    let Some(list) = inputs.as_array() else {
        return Ok(None);
    };
    let mut bands: Vec<String> = Vec::new();
    for entry in list {
        let Some(name) = entry.as_str() else {
            return Err(EvalscriptError::InvalidSetup(
                "setInputComponents() takes an array of bands such as [dss.B04, dss.B08]".into(),
            ));
        };
        if !bands.iter().any(|b| b == name) {
            bands.push(name.to_string());
        }
    }
    let count = state
        .get(key("outputs"), ctx)
        .map_err(top_level(ctx))?
        .as_number();
    let components = match count {
        Some(n) if n.fract() == 0.0 && n >= 1.0 && n <= super::setup::MAX_OUTPUT_BANDS as f64 => {
            n as usize
        }
        _ => {
            return Err(EvalscriptError::InvalidSetup(
                "a V1/V2 setup(dss) must call setOutputComponentCount(n) with n from 1 to 1024"
                    .into(),
            ))
        }
    };
    Ok(Some(legacy_setup_of(bands, components)))
}

/// The setup of a V1 script: one AUTO output named `default`, SIMPLE mosaicking.
fn legacy_setup_of(bands: Vec<String>, components: usize) -> Setup {
    Setup {
        band_units: vec![None; bands.len()],
        input_bands: bands,
        units: None,
        outputs: vec![OutputSpec {
            id: "default".into(),
            bands: components,
            sample_type: SampleType::Auto,
            nodata: None,
        }],
        mosaicking: Mosaicking::Simple,
        datasources: Vec::new(),
    }
}

/// An ordinary writable, enumerable, configurable data property (what `samples.B04 = v`
/// creates), so scripts see the same object as with `set`.
#[inline]
fn data_property(value: JsValue) -> PropertyDescriptor {
    PropertyDescriptor::builder()
        .value(value)
        .writable(true)
        .enumerable(true)
        .configurable(true)
        .build()
}

/// Time allowed to the compiled tier for `len` pixels: `COMPILED_FLOOR` plus
/// `COMPILED_PER_PIXEL` each, never more than the tile's budget. Compiled code runs at
/// a few nanoseconds a pixel, so a looping compiled tile fails in seconds, not after
/// the whole tile budget.
pub(crate) fn compiled_budget(budget: Duration, len: usize) -> Duration {
    let scaled = COMPILED_FLOOR
        .saturating_add(COMPILED_PER_PIXEL.saturating_mul(u32::try_from(len).unwrap_or(u32::MAX)));
    scaled.min(budget)
}

/// A pixel stopped by the watch's deadline is the block's time budget running out.
fn timed_out(err: EvalscriptError, len: usize) -> EvalscriptError {
    match err {
        EvalscriptError::Limit { pixel, .. } if super::watch::stopped() == Some(Stop::Deadline) => {
            EvalscriptError::TimeBudget {
                budget: super::watch::budget(),
                pixels_done: pixel,
                pixels: len,
            }
        }
        other => other,
    }
}

/// The memory limit of the evaluation running on this thread was exceeded.
fn memory_error(pixel: usize) -> EvalscriptError {
    EvalscriptError::Memory {
        pixel,
        limit_mib: super::memory::current_limit() >> 20,
    }
}

/// One pixel's `samples` for ORBIT/TILE: an array with one `{band: value}` object per
/// kept scene, in `keep` order.
fn scene_samples(
    ctx: &mut Context,
    band_keys: &[PropertyKey],
    scenes: &[SceneInput],
    keep: &[usize],
    pixel: usize,
) -> Result<JsValue, EvalscriptError> {
    let mut entries = Vec::with_capacity(keep.len());
    for &scene in keep {
        let object = empty_object(ctx);
        for (band_key, values) in band_keys.iter().zip(&scenes[scene].bands) {
            object
                .set(band_key.clone(), f64::from(values[pixel]), false, ctx)
                .map_err(|err| pixel_error(ctx, pixel, &err))?;
        }
        entries.push(JsValue::from(object));
    }
    Ok(boa_engine::object::builtins::JsArray::from_iter(entries, ctx).into())
}

fn pixel_error(ctx: &mut Context, pixel: usize, err: &boa_engine::JsError) -> EvalscriptError {
    match super::watch::stopped() {
        Some(Stop::Cancelled) => return EvalscriptError::Cancelled,
        Some(Stop::Deadline) => {
            return EvalscriptError::Limit {
                pixel,
                message: super::watch::describe_stop(),
            }
        }
        Some(Stop::Memory) | None => {}
    }
    if super::memory::tripped() {
        return memory_error(pixel);
    }
    let message = describe_js_error(err, ctx);
    if is_runtime_limit(err) {
        EvalscriptError::Limit { pixel, message }
    } else {
        EvalscriptError::PixelThrew { pixel, message }
    }
}

fn describe_value(value: &JsValue) -> String {
    if value.is_undefined() {
        "undefined (no return statement?)".to_string()
    } else {
        value.display().to_string()
    }
}

/// `tessera eval --pixels`: evaluation of pixels given as JSON, for debugging a script.
impl Program {
    /// Runs `evaluatePixel` on pixels given as JSON and returns
    /// `{"outputs": {"<id>": [[band values] per pixel]}, "userData": ...}`.
    ///
    /// `pixels` is `{"samples": [...], "scenes": ...}`: one `samples` entry per pixel,
    /// shaped as `evaluatePixel` receives it (SIMPLE: an object of band values; ORBIT/TILE:
    /// an array of such objects, one per scene; data fusion: an object keyed by datasource
    /// id, each value an array of such objects, or one object for SIMPLE). `scenes` is
    /// optional: for ORBIT/TILE an array of scene objects (`date`, `dateFrom`, `dateTo` as
    /// RFC 3339 strings or epoch milliseconds; `tileId`, `orbitId`, `shId`,
    /// `cloudCoverage`, `dataPath`), converted as the engine converts scenes and passed
    /// through `preProcessScenes`/`filterScenes`/`updateOutput`, whose kept scenes select
    /// the entries of each pixel's array; without it, each scene is dated 1970-01-01. For
    /// data fusion it is an object keyed by datasource id; for SIMPLE it is passed as is.
    ///
    /// Always runs in boa, even when the compiled (WebAssembly) tier would run this script
    /// in production: the point is debugging, and both tiers give identical outputs.
    /// The return value follows the production rules (an array, or an object keyed by
    /// output id; extra values dropped; too few fail naming the output). Values are
    /// formatted by the output's sample type, or with `raw` are the numbers
    /// `evaluatePixel` returned (after ToNumber); NaN and ±Infinity print as `null`.
    /// Errors name the pixel (0-based index into `samples`).
    pub fn evaluate_json(
        &mut self,
        pixels: &serde_json::Value,
        raw: bool,
    ) -> Result<serde_json::Value, EvalscriptError> {
        use serde_json::Value;
        let file_error = |m: String| EvalscriptError::Input(format!("pixels file: {m}"));
        let samples = pixels
            .as_object()
            .and_then(|o| o.get("samples"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                file_error(
                    "expected an object {\"samples\": [one entry per pixel], \"scenes\": ...}"
                        .into(),
                )
            })?;
        let scenes_json = pixels.get("scenes").filter(|v| !v.is_null());
        let _meter = super::memory::Meter::start(self.memory_limit);
        let _watch = Watch::start(self.budget);
        self.active_bands = self.setup.outputs.iter().map(|o| o.bands).collect();
        let output_metadata = empty_object(&self.ctx);
        let simple = self.setup.mosaicking == Mosaicking::Simple;
        let fusion = self.setup.is_fusion();

        // The `scenes` argument and, per datasource (one unnamed one without fusion),
        // the scenes kept by the hooks (`None`: pass each pixel's entries as given).
        let mut kept: Vec<Option<Vec<usize>>> = Vec::new();
        let scenes_value = if fusion {
            let scenes_arg = empty_object(&self.ctx);
            for d in self.setup.datasources.clone() {
                let (keep, value) = if simple {
                    (None, JsValue::from(empty_object(&self.ctx)))
                } else {
                    let given = scenes_json.and_then(|s| s.get(&d.id));
                    let counts = samples
                        .iter()
                        .map(|p| p.get(&d.id).and_then(Value::as_array).map_or(0, Vec::len));
                    let (keep, value) = self.json_scenes(given, counts, &d.id)?;
                    (Some(keep), value)
                };
                scenes_arg
                    .set(key(&d.id), value, false, &mut self.ctx)
                    .map_err(top_level(&mut self.ctx))?;
                kept.push(keep);
            }
            JsValue::from(scenes_arg)
        } else if simple {
            kept.push(None);
            match scenes_json {
                Some(json) => {
                    JsValue::from_json(json, &mut self.ctx).map_err(top_level(&mut self.ctx))?
                }
                None => self.args.get(1).cloned().unwrap_or_default(),
            }
        } else {
            let counts = samples.iter().map(|p| p.as_array().map_or(0, Vec::len));
            let (keep, value) = self.json_scenes(scenes_json, counts, "")?;
            kept.push(Some(keep));
            value
        };

        // A V1 body's arguments are its bands: it has no inputMetadata.
        let input_metadata = match self.args.get(2) {
            Some(value) if self.format != ScriptFormat::V1Body => value.clone(),
            _ => JsValue::from(empty_object(&self.ctx)),
        };
        let custom = JsValue::from(empty_object(&self.ctx));
        let mut values: Vec<Vec<Value>> = vec![Vec::new(); self.setup.outputs.len()];
        let start = Instant::now();
        for (pixel, entry) in samples.iter().enumerate() {
            if start.elapsed() > self.budget {
                return Err(self.budget_error(pixel, samples.len()));
            }
            if super::memory::check().is_some() {
                return Err(memory_error(pixel));
            }
            let given = scenes_json.is_some();
            let args: Vec<JsValue> = if self.format == ScriptFormat::V1Body {
                self.check_json_bands(entry, &self.setup.input_bands, pixel, "")?;
                self.setup
                    .input_bands
                    .iter()
                    .map(|b| JsValue::from(entry[b].as_f64().unwrap_or(f64::NAN)))
                    .collect()
            } else {
                let samples_arg = if fusion {
                    let Some(object) = entry.as_object() else {
                        return Err(self.pixel_input(
                            pixel,
                            "must be an object keyed by datasource id".into(),
                        ));
                    };
                    let mut out = serde_json::Map::new();
                    for (s, d) in self.setup.datasources.iter().enumerate() {
                        let Some(value) = object.get(&d.id) else {
                            return Err(
                                self.pixel_input(pixel, format!("has no datasource '{}'", d.id))
                            );
                        };
                        let list = match value {
                            Value::Array(list) => list.clone(),
                            other => vec![other.clone()],
                        };
                        let list = self.kept_entries(list, kept[s].as_deref(), given, pixel)?;
                        for (i, scene) in list.iter().enumerate() {
                            let what = format!(" datasource '{}' entry {i}", d.id);
                            self.check_json_bands(scene, &d.bands, pixel, &what)?;
                        }
                        out.insert(d.id.clone(), Value::Array(list));
                    }
                    Value::Object(out)
                } else if simple {
                    let entry = match (self.format, entry) {
                        (ScriptFormat::V1Function, Value::Object(_)) => {
                            Value::Array(vec![entry.clone()])
                        }
                        _ => entry.clone(),
                    };
                    match &entry {
                        Value::Array(list) => {
                            for (i, scene) in list.iter().enumerate() {
                                let what = format!(" entry {i}");
                                self.check_json_bands(
                                    scene,
                                    &self.setup.input_bands,
                                    pixel,
                                    &what,
                                )?;
                            }
                        }
                        _ => self.check_json_bands(&entry, &self.setup.input_bands, pixel, "")?,
                    }
                    entry
                } else {
                    let Some(list) = entry.as_array() else {
                        return Err(self.pixel_input(
                            pixel,
                            format!(
                                "must be an array of sample objects, one per scene ({} \
                                 mosaicking)",
                                self.setup.mosaicking.name()
                            ),
                        ));
                    };
                    let list = self.kept_entries(list.clone(), kept[0].as_deref(), given, pixel)?;
                    for (i, scene) in list.iter().enumerate() {
                        let what = format!(" scene {i}");
                        self.check_json_bands(scene, &self.setup.input_bands, pixel, &what)?;
                    }
                    Value::Array(list)
                };
                let samples_arg = JsValue::from_json(&samples_arg, &mut self.ctx)
                    .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
                vec![
                    samples_arg,
                    scenes_value.clone(),
                    input_metadata.clone(),
                    custom.clone(),
                    JsValue::from(output_metadata.clone()),
                ]
            };
            let returned = self
                .entry
                .call(&JsValue::undefined(), &args, &mut self.ctx)
                .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            let numbers = self.collect_return(&returned, pixel)?;
            for (output, bands) in numbers.into_iter().enumerate() {
                let sample_type = self.setup.outputs[output].sample_type;
                let row = bands
                    .into_iter()
                    .map(|n| {
                        if raw {
                            json_number(n)
                        } else {
                            formatted_json(sample_type, n)
                        }
                    })
                    .collect();
                values[output].push(Value::Array(row));
            }
        }
        let user_data = self.finish_metadata(scenes_value, &output_metadata)?;
        let mut outputs = serde_json::Map::new();
        for (spec, rows) in self.setup.outputs.iter().zip(values) {
            outputs.insert(spec.id.clone(), Value::Array(rows));
        }
        Ok(serde_json::json!({
            "outputs": outputs,
            "userData": user_data.unwrap_or(Value::Null),
        }))
    }

    fn pixel_input(&self, pixel: usize, message: String) -> EvalscriptError {
        EvalscriptError::Input(format!("pixels file: samples[{pixel}] {message}"))
    }

    /// Checks that `value` is an object with a number for each of `bands`.
    fn check_json_bands(
        &self,
        value: &serde_json::Value,
        bands: &[String],
        pixel: usize,
        what: &str,
    ) -> Result<(), EvalscriptError> {
        let Some(object) = value.as_object() else {
            return Err(self.pixel_input(
                pixel,
                format!("{what} must be an object of band values, not {value}")
                    .trim_start()
                    .to_string(),
            ));
        };
        for band in bands {
            match object.get(band) {
                Some(v) if v.is_number() => {}
                Some(other) => {
                    return Err(self.pixel_input(
                        pixel,
                        format!("{what} band '{band}' is {other}, not a number")
                            .trim_start()
                            .to_string(),
                    ))
                }
                None => {
                    return Err(self.pixel_input(
                        pixel,
                        format!(
                            "{what} has no band '{band}' (setup() requests {})",
                            bands.join(", ")
                        )
                        .trim_start()
                        .to_string(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The entries of one pixel's scene array that the scene hooks kept.
    fn kept_entries(
        &self,
        list: Vec<serde_json::Value>,
        keep: Option<&[usize]>,
        scenes_given: bool,
        pixel: usize,
    ) -> Result<Vec<serde_json::Value>, EvalscriptError> {
        let Some(keep) = keep else { return Ok(list) };
        if scenes_given && keep.iter().any(|&i| i >= list.len()) {
            return Err(self.pixel_input(
                pixel,
                format!(
                    "has {} scene entries, fewer than the \"scenes\" array describes",
                    list.len()
                ),
            ));
        }
        Ok(keep.iter().filter_map(|&i| list.get(i).cloned()).collect())
    }

    /// Scene metadata from the pixels file (or, when absent, as many undated scenes as
    /// the longest pixel array), through the scene hooks: kept indices and `scenes`.
    fn json_scenes(
        &mut self,
        given: Option<&serde_json::Value>,
        counts: impl Iterator<Item = usize>,
        source: &str,
    ) -> Result<(Vec<usize>, JsValue), EvalscriptError> {
        let label = if source.is_empty() {
            "scenes".to_string()
        } else {
            format!("scenes.{source}")
        };
        let file_error = |m: String| EvalscriptError::Input(format!("pixels file: {label}{m}"));
        let scenes: Vec<SceneInput> = match given {
            None => vec![SceneInput::default(); counts.max().unwrap_or(0)],
            Some(serde_json::Value::Array(list)) => {
                let mut scenes = Vec::with_capacity(list.len());
                for (i, scene) in list.iter().enumerate() {
                    scenes.push(json_scene(scene).map_err(|m| file_error(format!("[{i}]: {m}")))?);
                }
                scenes
            }
            Some(_) => {
                return Err(file_error(
                    " must be an array of scene objects such as {\"date\": \
                     \"2023-06-05T10:00:00Z\"}"
                        .into(),
                ))
            }
        };
        self.prepare_scenes(&scenes)
    }

    /// `store_return` for `evaluate_json`: the numbers per output, not written anywhere.
    fn collect_return(
        &mut self,
        returned: &JsValue,
        pixel: usize,
    ) -> Result<Vec<Vec<f64>>, EvalscriptError> {
        let bad = |message: String| EvalscriptError::BadReturn { pixel, message };
        let single = self.setup.outputs.len() == 1;
        match returned.as_object() {
            Some(object) if object.is_array() => {
                if !single {
                    return Err(bad(format!(
                        "setup() declares {} outputs, so evaluatePixel must return an object \
                         keyed by output id ({}), not an array",
                        self.setup.outputs.len(),
                        self.output_ids()
                    )));
                }
                Ok(vec![self.collect_output(returned, 0, pixel)?])
            }
            Some(object) if !object.is_callable() => {
                let mut all = Vec::with_capacity(self.setup.outputs.len());
                for output in 0..self.setup.outputs.len() {
                    let value = object
                        .get(self.output_keys[output].clone(), &mut self.ctx)
                        .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
                    all.push(self.collect_output(&value, output, pixel)?);
                }
                Ok(all)
            }
            _ if single && (returned.is_number() || returned.is_boolean()) => {
                Ok(vec![self.collect_output(returned, 0, pixel)?])
            }
            _ => Err(bad(format!(
                "evaluatePixel returned {}; it must return an array of {} values{}",
                describe_value(returned),
                self.active_bands[0],
                if single {
                    String::new()
                } else {
                    format!(
                        " per output in an object keyed by id ({})",
                        self.output_ids()
                    )
                }
            ))),
        }
    }

    /// `store_output` for `evaluate_json`: the numbers, not written anywhere.
    fn collect_output(
        &mut self,
        value: &JsValue,
        output: usize,
        pixel: usize,
    ) -> Result<Vec<f64>, EvalscriptError> {
        let mut numbers = Vec::with_capacity(self.active_bands[output]);
        self.output_values(value, output, pixel, |_, number| numbers.push(number))?;
        Ok(numbers)
    }
}

/// One scene object of a pixels file, as the engine's `SceneInput` (without bands).
fn json_scene(value: &serde_json::Value) -> Result<SceneInput<'static>, String> {
    let object = value.as_object().ok_or_else(|| {
        format!("must be an object such as {{\"date\": \"2023-06-05T10:00:00Z\"}}, not {value}")
    })?;
    let time = |name: &str| -> Result<Option<i64>, String> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => Ok(n.as_f64().map(|ms| ms as i64)),
            Some(serde_json::Value::String(s)) => crate::data::epoch_ms(s)
                .map(Some)
                .ok_or_else(|| format!("{name} '{s}' is not an RFC 3339 time")),
            Some(other) => Err(format!("{name} must be an RFC 3339 string, not {other}")),
        }
    };
    let text = |name: &str| object.get(name).and_then(|v| v.as_str()).map(String::from);
    let int = |name: &str| object.get(name).and_then(serde_json::Value::as_i64);
    Ok(SceneInput {
        bands: Vec::new(),
        date_ms: time("date")?.unwrap_or(0),
        date_from_ms: time("dateFrom")?,
        date_to_ms: time("dateTo")?,
        tile_id: text("tileId"),
        orbit_id: int("orbitId"),
        sh_id: int("shId"),
        cloud_coverage: object
            .get("cloudCoverage")
            .and_then(serde_json::Value::as_f64),
        data_path: text("dataPath"),
    })
}

/// A value as JSON. NaN and ±Infinity are not JSON numbers: they become the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (JavaScript's own spelling), so the three
/// stay distinguishable from each other and from a missing value (`null`).
fn json_number(value: f64) -> serde_json::Value {
    match serde_json::Number::from_f64(value) {
        Some(n) => serde_json::Value::Number(n),
        None if value.is_nan() => "NaN".into(),
        None if value > 0.0 => "Infinity".into(),
        None => "-Infinity".into(),
    }
}

/// A value formatted by `sample_type`, as JSON. FLOAT32 prints the shortest decimal that
/// reads back as the same f32 (0.6, not 0.6000000238418579).
fn formatted_json(sample_type: SampleType, value: f64) -> serde_json::Value {
    use super::sample_type::{
        format_auto, format_f32, format_i16, format_i8, format_u16, format_u8,
    };
    match sample_type {
        SampleType::Auto => format_auto(value).into(),
        SampleType::Uint8 => format_u8(value).into(),
        SampleType::Uint16 => format_u16(value).into(),
        SampleType::Int8 => format_i8(value).into(),
        SampleType::Int16 => format_i16(value).into(),
        SampleType::Float32 => {
            let f = format_f32(value);
            json_number(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
        }
    }
}
