//! A compiled evalscript bound to its own boa context, evaluated a block at a time.

use std::time::{Duration, Instant};

use boa_engine::property::PropertyKey;
use boa_engine::JsNativeErrorKind;
use boa_engine::{Context, JsObject, JsString, JsValue, Script, Source};

use super::error::EvalscriptError;
use super::runtime::{
    apply_limits, describe_js_error, describe_syntax_error, is_runtime_limit, new_context,
    DEFAULT_TIME_BUDGET,
};
use super::sample_type::write_sample;
use super::setup::{parse_setup, Mosaicking, Setup};
use crate::raster::SampleBuffer;

/// `inputMetadata.normalizationFactor` (`REFLECTANCE = DN * factor`); 0.0001 is Sentinel-2's.
const NORMALIZATION_FACTOR: f64 = 0.0001;
/// How many pixels run between two checks of the time budget.
const BUDGET_CHECK_INTERVAL: usize = 32;

/// A V3 evalscript, compiled and set up, ready to evaluate blocks of pixels.
///
/// Owns a boa `Context`, so it is `!Send`: build one per worker thread. Global script
/// state persists across pixels and blocks, as scripts expect (evalscript-v3.md §3.5).
pub struct Program {
    ctx: Context,
    setup: Setup,
    evaluate_pixel: JsObject,
    /// Reused for every pixel: its band properties are overwritten in place. A script that
    /// keeps a reference to `samples` across pixels sees it change (not seen in corpora).
    samples: JsObject,
    band_keys: Vec<PropertyKey>,
    /// `(samples, scenes, inputMetadata, customData, outputMetadata)`, built once.
    args: [JsValue; 5],
    output_keys: Vec<PropertyKey>,
    length_key: PropertyKey,
    budget: Duration,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("setup", &self.setup)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

fn key(name: &str) -> PropertyKey {
    PropertyKey::from(JsString::from(name))
}

/// Looks a function up by name in the global scope, including top-level `const`/`let`
/// bindings, which are not properties of the global object.
fn lookup_function(ctx: &mut Context, name: &'static str) -> Option<JsObject> {
    let probe = format!("typeof {name} === 'function' ? {name} : undefined");
    let value = ctx.eval(Source::from_bytes(probe.as_bytes())).ok()?;
    value.as_object().filter(|o| o.is_callable())
}

fn empty_object(ctx: &Context) -> JsObject {
    JsObject::with_object_proto(ctx.intrinsics())
}

impl Program {
    /// Parses and runs the script's top level, calls `setup()` and validates the result.
    pub fn compile(source: &str) -> Result<Program, EvalscriptError> {
        let mut ctx = new_context(DEFAULT_TIME_BUDGET)?;
        let script = Script::parse(Source::from_bytes(source), None, &mut ctx).map_err(|err| {
            let message = match err.as_native() {
                Some(native) => native.message().to_string(),
                None => err.to_string(),
            };
            EvalscriptError::Syntax(describe_syntax_error(&message, source))
        })?;
        if let Err(err) = script.evaluate(&mut ctx) {
            if let Some(native) = err
                .as_native()
                .filter(|n| matches!(n.kind(), JsNativeErrorKind::Syntax))
            {
                let message = native.message().to_string();
                return Err(EvalscriptError::Syntax(describe_syntax_error(
                    &message, source,
                )));
            }
            return Err(EvalscriptError::TopLevel(describe_js_error(&err, &mut ctx)));
        }

        let setup_fn =
            lookup_function(&mut ctx, "setup").ok_or(EvalscriptError::MissingFunction("setup"))?;
        let evaluate_pixel = lookup_function(&mut ctx, "evaluatePixel")
            .ok_or(EvalscriptError::MissingFunction("evaluatePixel"))?;
        let config = setup_fn
            .call(&JsValue::undefined(), &[], &mut ctx)
            .map_err(|err| EvalscriptError::SetupThrew(describe_js_error(&err, &mut ctx)))?;
        let setup = parse_setup(&config, &mut ctx)?;
        if setup.mosaicking != Mosaicking::Simple {
            return Err(EvalscriptError::Unsupported(format!(
                "mosaicking {} (only SIMPLE runs for now)",
                setup.mosaicking.name()
            )));
        }
        Program::new(ctx, setup, evaluate_pixel)
    }

    fn new(
        mut ctx: Context,
        setup: Setup,
        evaluate_pixel: JsObject,
    ) -> Result<Program, EvalscriptError> {
        let samples = empty_object(&ctx);
        let band_keys: Vec<PropertyKey> = setup.input_bands.iter().map(|b| key(b)).collect();
        // Create every band property up front so the object's shape never changes.
        for band_key in &band_keys {
            samples
                .set(band_key.clone(), 0.0, false, &mut ctx)
                .map_err(|err| EvalscriptError::TopLevel(describe_js_error(&err, &mut ctx)))?;
        }
        let input_metadata = empty_object(&ctx);
        let metadata_fields = [
            ("serviceVersion", JsValue::from(JsString::from("3.0"))),
            ("normalizationFactor", JsValue::from(NORMALIZATION_FACTOR)),
        ];
        for (name, value) in metadata_fields {
            input_metadata
                .set(key(name), value, false, &mut ctx)
                .map_err(|err| EvalscriptError::TopLevel(describe_js_error(&err, &mut ctx)))?;
        }
        let args = [
            JsValue::from(samples.clone()),
            JsValue::from(empty_object(&ctx)),
            JsValue::from(input_metadata),
            JsValue::from(empty_object(&ctx)),
            JsValue::from(empty_object(&ctx)),
        ];
        let output_keys = setup.outputs.iter().map(|o| key(&o.id)).collect();
        Ok(Program {
            ctx,
            setup,
            evaluate_pixel,
            samples,
            band_keys,
            args,
            output_keys,
            length_key: key("length"),
            budget: DEFAULT_TIME_BUDGET,
        })
    }

    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// Limits the wall time of each `evaluate` call (checked every few pixels) and, through
    /// boa's per-call loop limit derived from it, the time one looping call can run.
    pub fn set_time_budget(&mut self, budget: Duration) {
        self.budget = budget;
        apply_limits(&mut self.ctx, budget);
    }

    /// Runs `evaluatePixel` over `len` pixels.
    ///
    /// `bands[k]` holds the values of `setup().input_bands[k]`. Returns one buffer per
    /// output, in `setup().outputs` order, band-sequential (band `b`, pixel `i` at
    /// `b * len + i`), formatted to the output's sample type.
    pub fn evaluate(
        &mut self,
        bands: &[&[f32]],
        len: usize,
    ) -> Result<Vec<SampleBuffer>, EvalscriptError> {
        self.check_input(bands, len)?;
        let mut buffers: Vec<SampleBuffer> = self
            .setup
            .outputs
            .iter()
            .map(|o| o.sample_type.zeroed_buffer(o.bands * len))
            .collect();
        let start = Instant::now();
        for pixel in 0..len {
            if pixel % BUDGET_CHECK_INTERVAL == 0 && start.elapsed() > self.budget {
                return Err(EvalscriptError::TimeBudget {
                    budget: self.budget,
                    pixels_done: pixel,
                    pixels: len,
                });
            }
            for (band_key, values) in self.band_keys.iter().zip(bands) {
                let value = JsValue::from(f64::from(values[pixel]));
                self.samples
                    .set(band_key.clone(), value, false, &mut self.ctx)
                    .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            }
            let returned = self
                .evaluate_pixel
                .call(&JsValue::undefined(), &self.args, &mut self.ctx)
                .map_err(|err| pixel_error(&mut self.ctx, pixel, &err))?;
            self.store_return(&returned, pixel, len, &mut buffers)?;
        }
        Ok(buffers)
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
                self.setup.outputs[0].bands,
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

    /// Writes the values for output `output`: an array (a bare number for 1-band outputs).
    fn store_output(
        &mut self,
        value: &JsValue,
        output: usize,
        pixel: usize,
        len: usize,
        buffers: &mut [SampleBuffer],
    ) -> Result<(), EvalscriptError> {
        let spec = &self.setup.outputs[output];
        let (bands, sample_type) = (spec.bands, spec.sample_type);
        let id = || self.setup.outputs[output].id.clone();
        let buffer = &mut buffers[output];
        let array = value.as_object().filter(|o| o.is_array());
        let Some(array) = array else {
            if bands == 1 && (value.is_number() || value.is_boolean()) {
                let number = value.to_number(&mut self.ctx).unwrap_or(f64::NAN);
                write_sample(buffer, sample_type, pixel, number);
                return Ok(());
            }
            let message = format!(
                "output '{}' needs an array of {bands} values, but evaluatePixel returned {}",
                id(),
                describe_value(value)
            );
            return Err(EvalscriptError::BadReturn { pixel, message });
        };
        let length = array
            .get(self.length_key.clone(), &mut self.ctx)
            .ok()
            .and_then(|l| l.as_number())
            .unwrap_or(0.0);
        if length < bands as f64 {
            let message = format!(
                "output '{}' has {bands} bands but evaluatePixel returned {length} values",
                id()
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
            write_sample(buffer, sample_type, band * len + pixel, number);
        }
        Ok(())
    }

    fn output_ids(&self) -> String {
        let ids: Vec<&str> = self.setup.outputs.iter().map(|o| o.id.as_str()).collect();
        ids.join(", ")
    }
}

fn pixel_error(ctx: &mut Context, pixel: usize, err: &boa_engine::JsError) -> EvalscriptError {
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
