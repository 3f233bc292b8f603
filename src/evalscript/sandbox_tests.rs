//! Hostile scripts against the time limit, the cancel flag and the memory bound: each must
//! stop with a clear error in a bounded time, whatever the script does to prevent it.

use std::time::{Duration, Instant};

use super::*;

const BUDGET: Duration = Duration::from_millis(300);
/// Generous wall-clock bound for a stop that is due after `BUDGET` (loaded CI machines).
const STOPPED_WITHIN: Duration = Duration::from_secs(10);

fn pixel_script(prelude: &str, body: &str) -> String {
    format!(
        "//VERSION=3\n{prelude}\nfunction setup() {{ return {{ input: ['B04'], output: {{ bands: 1, \
         sampleType: 'FLOAT32' }} }}; }}\nfunction evaluatePixel(s) {{ {body} }}\n"
    )
}

fn compile(source: &str) -> Program {
    match Program::compile(source) {
        Ok(program) => program,
        Err(err) => panic!("compile failed: {err}\n{source}"),
    }
}

/// Runs one pixel under `BUDGET`; returns the error and how long it took to stop.
fn run_one(source: &str) -> (EvalscriptError, Duration) {
    let mut program = compile(source);
    program.set_time_budget(BUDGET);
    let band = [0.5f32];
    let start = Instant::now();
    match program.evaluate(&[&band], 1) {
        Ok(out) => panic!("expected the evaluation to be stopped, got {out:?}"),
        Err(err) => (err, start.elapsed()),
    }
}

fn assert_time_stop(source: &str) {
    let (err, took) = run_one(source);
    let text = err.to_string();
    assert!(
        text.contains("time budget"),
        "expected a time-budget stop, got: {text}"
    );
    assert!(took >= BUDGET && took < STOPPED_WITHIN, "took {took:?}");
}

#[test]
fn exponential_recursion_stops_at_the_deadline() {
    assert_time_stop(&pixel_script(
        "function f(n) { return n <= 0 ? 1 : f(n - 1) + f(n - 1); }",
        "return [f(45)];",
    ));
}

#[test]
fn concise_arrow_recursion_stops() {
    assert_time_stop(&pixel_script(
        "const f = n => n <= 0 ? 1 : f(n - 1) + f(n - 1);",
        "return [f(45)];",
    ));
}

#[test]
fn loops_nested_through_calls_stop() {
    assert_time_stop(&pixel_script(
        "function inner() { var s = 0; for (var i = 0; i < 1e6; i++) { s += i; } return s; }\n\
         function outer() { var t = 0; for (var j = 0; j < 1e6; j++) { t += inner(); } return t; }",
        "return [outer()];",
    ));
}

#[test]
fn try_catch_and_finally_cannot_swallow_the_stop() {
    assert_time_stop(&pixel_script(
        "",
        "var n = 0; while (true) { try { while (true) { n++; } } catch (e) { n = -1; } \
         finally { n = 0; continue; } }",
    ));
}

#[test]
fn callbacks_and_generators_stop() {
    assert_time_stop(&pixel_script(
        "function* g() { var i = 0; while (true) yield i++; }",
        "var s = 0; for (const v of g()) { s += v; } return [s];",
    ));
    assert_time_stop(&pixel_script(
        "function f(n) { return n <= 0 ? 1 : [0, 1].map(function () { return f(n - 1); })[0]; }",
        "return [f(60)];",
    ));
    assert_time_stop(&pixel_script(
        "function f(n) { return n <= 0 ? 1 : f.call(null, n - 1) + f.apply(null, [n - 1]); }",
        "return [f(60)];",
    ));
}

#[test]
fn eval_and_function_constructor_are_refused() {
    let (err, _) = run_one(&pixel_script(
        "",
        "var f = new Function('n', 'while (true) {}'); f(1); return [0];",
    ));
    assert!(err.to_string().contains("disabled"), "{err}");
    let (err, _) = run_one(&pixel_script(
        "",
        "(function(){}).constructor('while(true){}')(); return [0];",
    ));
    assert!(err.to_string().contains("disabled"), "{err}");
    let (err, _) = run_one(&pixel_script("", "eval('while (true) {}'); return [0];"));
    assert!(err.to_string().contains("disabled"), "{err}");
}

#[test]
fn the_tick_cannot_be_replaced() {
    let mut program = compile(&pixel_script(
        "",
        "globalThis.__tessera_tick = function () {}; \
         try { Object.defineProperty(globalThis, '__tessera_tick', { value: 1 }); } catch (e) {} \
         delete globalThis.__tessera_tick; while (true) {}",
    ));
    program.set_time_budget(BUDGET);
    let band = [0.5f32];
    let err = program.evaluate(&[&band], 1).err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("time budget")),
        "{err:?}"
    );
    let refused = Program::compile(&pixel_script("var __tessera_tick;", "return [0];"));
    assert!(matches!(refused, Err(EvalscriptError::Refused(_))));
}

#[test]
fn setup_and_top_level_code_are_bounded() {
    // An enclosing watch bounds the one `compile` starts (as a shorter setup budget would).
    let _watch = super::watch::Watch::start(Duration::from_millis(300));
    let start = Instant::now();
    let err = Program::compile(
        "//VERSION=3\nfunction setup() { while (true) {} }\nfunction evaluatePixel(s) { return [0]; }",
    )
    .err()
    .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("time budget")),
        "{err:?}"
    );
    let err = Program::compile(
        "//VERSION=3\nfunction f(n) { return n <= 0 ? 1 : f(n - 1) + f(n - 1); }\nf(60);\n\
         function setup() { return {}; }\nfunction evaluatePixel(s) { return [0]; }",
    )
    .err()
    .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("time budget")),
        "{err:?}"
    );
    assert!(start.elapsed() < STOPPED_WITHIN);
}

#[test]
fn cancel_ends_a_running_evaluation_from_another_thread() {
    let token = CancelToken::new();
    let _scope = token.enter();
    let mut program = compile(&pixel_script(
        "function f(n) { return n <= 0 ? 1 : f(n - 1) + f(n - 1); }",
        "return [f(60)];",
    ));
    program.set_time_budget(Duration::from_secs(600));
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            token.cancel();
        })
    };
    let band = [0.5f32];
    let start = Instant::now();
    let err = program.evaluate(&[&band], 1).err();
    let _ = canceller.join();
    assert_eq!(err, Some(EvalscriptError::Cancelled));
    assert!(start.elapsed() < STOPPED_WITHIN);
}

#[test]
fn object_growth_hits_the_memory_limit() {
    let mut program = compile(&pixel_script(
        "",
        "var o = {}; for (var i = 0; i < 1e9; i++) { o['k' + i] = i; } return [0];",
    ));
    program.set_time_budget(Duration::from_secs(600));
    program.set_memory_limit(64 << 20);
    let band = [0.5f32];
    let start = Instant::now();
    let err = program.evaluate(&[&band], 1).err();
    assert!(
        matches!(err, Some(EvalscriptError::Memory { .. })),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    let mut program = compile(&pixel_script(
        "",
        "var a = []; while (true) { a.push({x: 1}); } return [0];",
    ));
    program.set_memory_limit(64 << 20);
    assert!(matches!(
        program.evaluate(&[&band], 1),
        Err(EvalscriptError::Memory { .. })
    ));
}

#[test]
fn compiled_tier_loops_stop_by_pixel_count_not_tile_budget() {
    let source = pixel_script(
        "",
        "var x = s.B04; while (x > 0) { x = x + 1; } return [x];",
    );
    let mut program = compile(&source);
    assert_eq!(
        program.boa_reason(),
        None,
        "the script should run compiled for this test"
    );
    program.set_time_budget(Duration::from_secs(600));
    let band = vec![0.5f32; 16];
    let start = Instant::now();
    let err = program.evaluate(&[&band], 16).err();
    assert!(
        matches!(err, Some(EvalscriptError::TimeBudget { .. })),
        "{err:?}"
    );
    // 2 s floor + 10 us per pixel (100 unoptimised), far below the 600 s tile budget.
    assert!(start.elapsed() < STOPPED_WITHIN, "{:?}", start.elapsed());
}

#[test]
fn compiled_tier_stops_on_cancel() {
    let source = pixel_script(
        "",
        "var x = s.B04; while (x > 0) { x = x + 1; } return [x];",
    );
    let mut program = compile(&source);
    let token = CancelToken::new();
    let _scope = token.enter();
    token.cancel();
    let band = vec![0.5f32; 16];
    assert_eq!(
        program.evaluate(&[&band], 16).err(),
        Some(EvalscriptError::Cancelled)
    );
}

#[test]
fn ordinary_scripts_still_work_instrumented() {
    let mut program = compile(&pixel_script(
        "'use strict';\nfunction sum(a) { let s = 0; for (const v of a) s += v; return s; }",
        "\"use strict\"; const xs = [1, 2, 3].map(x => x * s.B04); let k = 0; \
         do { k++; } while (k < 3); for (let i = 0; i < 2; i++) k += i; \
         return [sum(xs) + k];",
    ));
    let band = [2.0f32];
    let out = program.evaluate(&[&band], 1).ok();
    assert_eq!(
        out.and_then(|o| o.into_iter().next()),
        Some(crate::raster::SampleBuffer::F32(vec![16.0]))
    );
}

#[test]
fn evaluate_json_for_tessera_eval_has_the_same_deadline() {
    let mut program = compile(&pixel_script(
        "function f(n) { return n <= 0 ? 1 : f(n - 1) + f(n - 1); }",
        "return [f(45)];",
    ));
    program.set_time_budget(BUDGET);
    let pixels = serde_json::json!({"samples": [{"B04": 0.1}]});
    let start = Instant::now();
    let err = program
        .evaluate_json(&pixels, false)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("time budget")),
        "{err:?}"
    );
    assert!(start.elapsed() < STOPPED_WITHIN);
}

/// The cost of one tick in boa: a loop of 2M iterations with and without it.
/// Run: cargo test tick_cost -- --ignored --nocapture
#[test]
#[ignore]
fn tick_cost() {
    use boa_engine::Source;
    let mut ctx = match super::runtime::new_context(DEFAULT_TIME_BUDGET) {
        Ok(ctx) => ctx,
        Err(err) => panic!("{err}"),
    };
    ctx.runtime_limits_mut().set_loop_iteration_limit(u64::MAX);
    let _watch = super::watch::Watch::start(Duration::from_secs(600));
    let mut time = |src: &str| {
        let start = Instant::now();
        assert!(ctx.eval(Source::from_bytes(src)).is_ok());
        start.elapsed()
    };
    let n = 2_000_000;
    let plain = time(&format!(
        "var s = 0; for (var i = 0; i < {n}; i++) {{ s += i; }}"
    ));
    let ticked = time(&format!(
        "var s = 0; for (var i = 0; (__tessera_tick(), i < {n}); i++) {{ s += i; }}"
    ));
    let native = time(&format!(
        "var s = 0; var ab = Math.abs; for (var i = 0; (ab(0), i < {n}); i++) {{ s += i; }}"
    ));
    eprintln!(
        "native no-op call per iteration: {:?}",
        native.saturating_sub(plain) / n
    );
    let call = time(&format!(
        "function g(x) {{ return x; }} var s = 0; for (var i = 0; i < {n}; i++) {{ s += g(i); }}"
    ));
    eprintln!(
        "per iteration: plain {:?}, with tick {:?} (tick {:?}); with a JS call {:?}",
        plain / n,
        ticked / n,
        ticked.saturating_sub(plain) / n,
        call / n
    );
}
