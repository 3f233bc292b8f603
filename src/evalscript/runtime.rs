//! The boa context an evalscript runs in: globals, runtime limits, error descriptions.

use std::rc::Rc;
use std::time::Duration;

use boa_engine::context::HostHooks;
use boa_engine::error::EngineError;
use boa_engine::native_function::NativeFunction;
use boa_engine::object::{FunctionObjectBuilder, ObjectInitializer};
use boa_engine::property::{Attribute, PropertyDescriptor};
use boa_engine::realm::Realm;
use boa_engine::{Context, JsError, JsNativeError, JsResult, JsString, Source};

use super::error::EvalscriptError;
use super::sample_type::SampleType;
use super::setup::Mosaicking;

/// A conservative estimate of how many loop iterations boa runs per second (measured
/// ~7M/s for `while(true){c++}` with boa at opt-level 3), used to turn the time budget
/// into boa's per-call loop limit so that one runaway loop cannot outlive the budget.
const LOOP_ITERATIONS_PER_SECOND: f64 = 5_000_000.0;
/// No single call needs more iterations than this; an infinite loop stops within ~2 s.
const MAX_LOOP_ITERATIONS: u64 = 10_000_000;
/// Floor so that tiny budgets in tests still let ordinary loops run.
const MIN_LOOP_ITERATIONS: u64 = 10_000;
/// Deeper recursion than this is a runaway script (boa's own default is 512).
pub(crate) const RECURSION_LIMIT: usize = 400;

/// Budget used until `Program::set_time_budget` is called; also bounds top-level code.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(60);

/// A fresh context with the evalscript runtime globals installed.
pub(crate) fn new_context(budget: Duration) -> Result<Context, EvalscriptError> {
    let mut ctx = Context::builder()
        .host_hooks(Rc::new(SandboxHooks))
        .build()
        .map_err(|err| EvalscriptError::TopLevel(format!("cannot build the runtime: {err}")))?;
    apply_limits(&mut ctx, budget);
    install_tick(&mut ctx).map_err(|err| {
        EvalscriptError::TopLevel(format!("cannot install the time limit: {err}"))
    })?;
    super::memory::install_guards(&mut ctx).map_err(|err| {
        EvalscriptError::TopLevel(format!("cannot install the memory guards: {err}"))
    })?;
    install_enum_global(
        &mut ctx,
        "SampleType",
        SampleType::ALL.iter().map(|(_, n)| *n),
    )?;
    install_enum_global(
        &mut ctx,
        "Mosaicking",
        Mosaicking::ALL.iter().map(|(_, n)| *n),
    )?;
    ctx.eval(Source::from_bytes(PRELUDE))
        .map_err(|err| EvalscriptError::TopLevel(format!("helper library failed: {err}")))?;
    Ok(ctx)
}

/// The helper library of evalscript-v3.md §4 (visualizers, colour helpers, QA decoders,
/// the V1/V2 setup API) plus the internal `__tessera_*` functions the runtime calls.
pub(crate) const PRELUDE: &str = include_str!("prelude.js");

/// Sets boa's loop and recursion limits from the time budget.
///
/// boa has no interrupt hook, so the loop-iteration limit (counted per call frame) is the
/// only way to stop a loop that never returns; elapsed time is checked between pixels.
pub(crate) fn apply_limits(ctx: &mut Context, budget: Duration) {
    let iterations = (budget.as_secs_f64() * LOOP_ITERATIONS_PER_SECOND) as u64;
    let limits = ctx.runtime_limits_mut();
    limits.set_loop_iteration_limit(iterations.clamp(MIN_LOOP_ITERATIONS, MAX_LOOP_ITERATIONS));
    limits.set_recursion_limit(RECURSION_LIMIT);
}

/// The host hooks of an evalscript context: `eval` and `Function` compile nothing but a
/// bare name (the prelude's global snapshot reads globals with `eval(name)`), since code
/// compiled at run time would escape `instrument` and its time limit.
struct SandboxHooks;

impl HostHooks for SandboxHooks {
    fn ensure_can_compile_strings(
        &self,
        _realm: Realm,
        parameters: &[JsString],
        body: &JsString,
        _direct: bool,
        _context: &mut Context,
    ) -> JsResult<()> {
        let body = body.to_std_string_escaped();
        let bare_name = !body.is_empty()
            && body.len() <= 256
            && !body.starts_with(|c: char| c.is_ascii_digit())
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if parameters.is_empty() && bare_name && body != super::watch::TICK_NAME {
            return Ok(());
        }
        Err(JsNativeError::eval()
            .with_message("eval() and new Function() are disabled in evalscripts")
            .into())
    }
}

/// Defines the native `__tessera_tick` (see `watch`) as a global that cannot be written,
/// deleted or redefined; `instrument` keeps scripts from declaring the name.
fn install_tick(ctx: &mut Context) -> JsResult<()> {
    let tick = NativeFunction::from_fn_ptr(|_, args, _| super::watch::tick(args));
    let function = FunctionObjectBuilder::new(ctx.realm(), tick)
        .name(JsString::from(super::watch::TICK_NAME))
        .length(0)
        .build();
    ctx.global_object().define_property_or_throw(
        JsString::from(super::watch::TICK_NAME),
        PropertyDescriptor::builder()
            .value(function)
            .writable(false)
            .enumerable(false)
            .configurable(false),
        ctx,
    )?;
    Ok(())
}

/// Defines `name = {X: "X", ...}` as a configurable global-object property (not a lexical
/// binding), so a script that declares its own `SampleType` shadows it instead of failing.
fn install_enum_global<'a>(
    ctx: &mut Context,
    name: &str,
    members: impl Iterator<Item = &'a str>,
) -> Result<(), EvalscriptError> {
    let mut init = ObjectInitializer::new(ctx);
    for member in members {
        init.property(
            JsString::from(member),
            JsString::from(member),
            Attribute::READONLY | Attribute::ENUMERABLE | Attribute::PERMANENT,
        );
    }
    let object = init.build();
    ctx.register_global_property(
        JsString::from(name),
        object,
        Attribute::WRITABLE | Attribute::CONFIGURABLE,
    )
    .map_err(|err| EvalscriptError::TopLevel(format!("cannot install global {name}: {err}")))
}

/// True for boa's uncatchable runtime-limit errors (loop, recursion, stack).
pub(crate) fn is_runtime_limit(err: &JsError) -> bool {
    matches!(err.as_engine(), Some(EngineError::RuntimeLimit(_)))
}

/// A one-line, user-facing description of a JS error: `TypeError: x is not a function
/// (line 3)` for Error objects, the thrown value itself for `throw "text"`.
pub(crate) fn describe_js_error(err: &JsError, ctx: &mut Context) -> String {
    let line = error_line(err);
    let message = if let Some(engine) = err.as_engine() {
        match engine {
            EngineError::RuntimeLimit(_) if super::watch::stopped().is_some() => {
                super::watch::describe_stop()
            }
            EngineError::RuntimeLimit(_) if super::memory::tripped() => format!(
                "the evalscript exceeded its memory limit of {} MiB (a runaway allocation?)",
                super::memory::current_limit().max(1) >> 20
            ),
            EngineError::RuntimeLimit(limit) => format!(
                "{limit} (an infinite loop or unbounded recursion? the loop limit follows \
                 the time budget, the recursion limit is {RECURSION_LIMIT})"
            ),
            other => other.to_string(),
        }
    } else if let Ok(native) = err.try_native(ctx) {
        format!("{}: {}", native.kind(), native.message())
    } else if let Some(value) = err.as_opaque() {
        let value = value.clone();
        match value.to_string(ctx) {
            Ok(text) => format!("uncaught exception: {}", text.to_std_string_escaped()),
            Err(_) => "uncaught exception".to_string(),
        }
    } else {
        first_line(&err.to_string()).to_string()
    };
    match line {
        Some(line) => format!("{message} (line {line})"),
        None => message,
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The script line where an error was raised, recovered from boa's rendered backtrace
/// (`... (unknown at :LINE:COL)`), which is the only public place it appears.
fn error_line(err: &JsError) -> Option<u32> {
    const MARKER: &str = "(unknown at :";
    let rendered = err.to_string();
    let start = rendered.find(MARKER)? + MARKER.len();
    let rest = &rendered[start..];
    let end = rest.find(':')?;
    rest[..end].parse().ok()
}

/// Adds context to a parser error: the position of an unexpected end (boa reports no
/// position for it), so that every syntax error names a line and a column.
pub(crate) fn describe_syntax_error(message: &str, source: &str) -> String {
    let mut text = message.to_string();
    if !text.contains("line") {
        let lines = source.lines().count().max(1);
        let column = source.lines().last().map_or(0, |l| l.chars().count()) + 1;
        text.push_str(&format!(
            " at the end of the script (line {lines}, col {column})"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use boa_engine::Source;

    fn run(src: &str) -> (JsError, Context) {
        let mut ctx = match new_context(Duration::from_millis(200)) {
            Ok(ctx) => ctx,
            Err(err) => panic!("context: {err}"),
        };
        match ctx.eval(Source::from_bytes(src)) {
            Ok(v) => panic!("expected an error, got {}", v.display()),
            Err(err) => (err, ctx),
        }
    }

    #[test]
    fn describes_error_objects_with_line() {
        let (err, mut ctx) = run("var a = 1;\n\nthrow new RangeError('too big');");
        assert_eq!(
            describe_js_error(&err, &mut ctx),
            "RangeError: too big (line 3)"
        );
    }

    #[test]
    fn describes_thrown_strings() {
        let (err, mut ctx) = run("throw 'bad input'");
        assert_eq!(
            describe_js_error(&err, &mut ctx),
            "uncaught exception: bad input (line 1)"
        );
    }

    #[test]
    fn describes_reference_errors() {
        let (err, mut ctx) = run("\nnoSuchThing + 1");
        let text = describe_js_error(&err, &mut ctx);
        assert!(
            text.starts_with("ReferenceError: noSuchThing is not defined"),
            "{text}"
        );
    }

    #[test]
    fn loop_limit_stops_infinite_loop_quickly() {
        let start = std::time::Instant::now();
        let (err, mut ctx) = run("while (true) {}");
        assert!(is_runtime_limit(&err));
        assert!(describe_js_error(&err, &mut ctx).contains("infinite loop"));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn recursion_limit_is_uncatchable() {
        let (err, _ctx) = run("function f(n) { return f(n + 1) + 1; } try { f(0) } catch (e) {}");
        assert!(is_runtime_limit(&err));
    }

    #[test]
    fn enum_globals_exist_and_can_be_shadowed() {
        let mut ctx = match new_context(DEFAULT_TIME_BUDGET) {
            Ok(ctx) => ctx,
            Err(err) => panic!("context: {err}"),
        };
        let v = ctx.eval(Source::from_bytes(
            "SampleType.FLOAT32 + ',' + Mosaicking.ORBIT + ',' + Object.keys(SampleType).length",
        ));
        assert_eq!(
            v.ok()
                .and_then(|v| v.as_string().map(|s| s.to_std_string_escaped())),
            Some("FLOAT32,ORBIT,6".to_string())
        );
        let shadow = ctx.eval(Source::from_bytes("const SampleType = 5; SampleType + 1"));
        assert_eq!(shadow.ok().and_then(|v| v.as_number()), Some(6.0));
    }

    #[test]
    fn syntax_error_context() {
        assert_eq!(
            describe_syntax_error("abrupt end", "a\nb\ncd"),
            "abrupt end at the end of the script (line 3, col 3)"
        );
        assert_eq!(
            describe_syntax_error("unexpected token at line 2, col 1", ""),
            "unexpected token at line 2, col 1"
        );
    }
}
