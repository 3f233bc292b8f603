//! The deadline and cancel flag of the evaluation running on this thread.
//!
//! boa 0.22 has no interrupt hook: its loop limit counts per call frame and its recursion
//! limit only bounds depth, so `f(n-1) + f(n-1)` or loops nested through calls never stop
//! by themselves. `instrument` therefore rewrites every script so that each function
//! entry and each loop iteration calls the native `__tessera_tick` ([`tick`]); the tick
//! reads the thread's [`Watch`]: its deadline, the request's cancel flag and the heap
//! bound of `memory`. When one is exceeded it returns boa's runtime-limit error, which
//! JavaScript cannot catch (`try`/`catch` and `finally` do not run), and records why
//! ([`stopped`]) so the caller reports a time, cancel or memory failure.
//!
//! The compiled tier reads the same watch from its epoch callback (`wasm::run`).
//!
//! A [`CancelToken`] is set by the engine when a request is cancelled; the thread that
//! works for the request enters it with [`CancelToken::enter`], so evaluations on that
//! thread end within one tick (a few microseconds in boa, one epoch period compiled).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boa_engine::error::{EngineError, RuntimeLimitError};
use boa_engine::{JsError, JsResult, JsValue};

/// Ticks between two reads of the clock (the cancel flag is read on every tick).
const CLOCK_EVERY: u32 = 256;

/// The name of the native tick function the instrumented script calls. A script may not
/// use this identifier (`instrument` refuses it), so it cannot be shadowed.
pub(crate) const TICK_NAME: &str = "__tessera_tick";

/// The budget of top-level code plus `setup()` (`Program::compile`), in milliseconds.
static SETUP_BUDGET_MS: AtomicU64 = AtomicU64::new(5_000);

/// Sets the time budget of every script's top-level code and `setup()` in this process
/// (default 5 s: setup code takes milliseconds; `tessera serve --setup-time-budget`).
pub fn set_setup_time_budget(budget: Duration) {
    let ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX).max(1);
    SETUP_BUDGET_MS.store(ms, Ordering::Relaxed);
}

/// The time budget of top-level code plus `setup()`.
pub fn setup_budget() -> Duration {
    Duration::from_millis(SETUP_BUDGET_MS.load(Ordering::Relaxed))
}

/// Why an evaluation was stopped by its watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its deadline passed.
    Deadline,
    /// Its request was cancelled.
    Cancelled,
    /// Its heap grew beyond the memory limit.
    Memory,
}

/// A request's cancel flag, shared by the engine and the threads working for it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Ends every evaluation under this token at its next tick.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Makes this the cancel flag of every evaluation on this thread until the guard drops.
    pub fn enter(&self) -> CancelScope {
        let previous = AMBIENT.with(|a| a.replace(Some(self.clone())));
        CancelScope { previous }
    }
}

/// Restores the thread's previous cancel token when dropped.
pub struct CancelScope {
    previous: Option<CancelToken>,
}

impl Drop for CancelScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        AMBIENT.with(|a| *a.borrow_mut() = previous);
    }
}

#[derive(Clone, Copy)]
struct State {
    deadline: Option<Instant>,
    budget: Duration,
    ticks: u32,
    stopped: Option<Stop>,
}

const IDLE: State = State {
    deadline: None,
    budget: Duration::ZERO,
    ticks: 0,
    stopped: None,
};

thread_local! {
    static STATE: Cell<State> = const { Cell::new(IDLE) };
    /// The cancel token of the work this thread does (set by the engine).
    static AMBIENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// The watch of one evaluation on this thread; the previous one is restored on drop, so
/// watches nest (a `Program::compile` inside a tile keeps the tile's deadline after).
pub(crate) struct Watch {
    previous: State,
}

impl Watch {
    /// Watches an evaluation that may run for `budget` from now; the deadline never
    /// extends an enclosing watch's.
    pub(crate) fn start(budget: Duration) -> Watch {
        let previous = STATE.with(Cell::get);
        let mut deadline = Instant::now().checked_add(budget);
        let mut budget = budget;
        if let (Some(outer), Some(mine)) = (previous.deadline, deadline) {
            if outer < mine {
                deadline = Some(outer);
                budget = previous.budget;
            }
        }
        STATE.with(|s| {
            s.set(State {
                deadline,
                budget,
                ticks: 0,
                stopped: None,
            })
        });
        Watch { previous }
    }
}

impl Drop for Watch {
    /// Restores the enclosing watch; a cancel or memory stop also stops it (a deadline
    /// stop does not: the inner deadline may be the shorter one).
    fn drop(&mut self) {
        let inner = STATE.with(Cell::get).stopped;
        let mut outer = self.previous;
        if outer.stopped.is_none() && matches!(inner, Some(Stop::Cancelled | Stop::Memory)) {
            outer.stopped = inner;
        }
        STATE.with(|s| s.set(outer));
    }
}

fn cancelled() -> bool {
    AMBIENT.with(|a| a.borrow().as_ref().is_some_and(CancelToken::is_cancelled))
}

/// Checks the watch now (clock included); records and returns the reason to stop.
pub(crate) fn check() -> Option<Stop> {
    let mut state = STATE.with(Cell::get);
    if state.stopped.is_none() {
        state.stopped = if cancelled() {
            Some(Stop::Cancelled)
        } else if state.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Stop::Deadline)
        } else if super::memory::check().is_some() {
            Some(Stop::Memory)
        } else {
            None
        };
        STATE.with(|s| s.set(state));
    }
    state.stopped
}

/// Why the current evaluation was stopped, if its watch stopped it.
pub(crate) fn stopped() -> Option<Stop> {
    STATE.with(Cell::get).stopped
}

/// The budget of the current watch (the enclosing one's when that ends first).
pub(crate) fn budget() -> Duration {
    STATE.with(Cell::get).budget
}

/// A user-facing sentence for why the watch stopped the evaluation.
pub(crate) fn describe_stop() -> String {
    match stopped() {
        Some(Stop::Deadline) | None => format!(
            "the evaluation ran past its time budget of {} (an endless loop or runaway \
             recursion?)",
            humantime::format_duration(budget())
        ),
        Some(Stop::Cancelled) => "the evaluation was cancelled with its request".to_string(),
        Some(Stop::Memory) => format!(
            "the evalscript exceeded its memory limit of {} MiB (a runaway allocation?)",
            super::memory::current_limit().max(1) >> 20
        ),
    }
}

/// The uncatchable error that ends a script (boa's own runtime-limit error).
pub(crate) fn limit_error() -> JsError {
    JsError::from(EngineError::RuntimeLimit(RuntimeLimitError::LoopIteration))
}

/// `__tessera_tick(value)`: called at every function entry and loop iteration of an
/// instrumented script; returns its argument. Reads the clock every `CLOCK_EVERY` ticks.
pub(crate) fn tick(args: &[JsValue]) -> JsResult<JsValue> {
    let mut state = STATE.with(Cell::get);
    state.ticks = state.ticks.wrapping_add(1);
    STATE.with(|s| s.set(state));
    let due = state.stopped.is_some() || state.ticks % CLOCK_EVERY == 0 || cancelled();
    let stop = if due { check() } else { None };
    match stop {
        Some(_) => Err(limit_error()),
        None => Ok(args.first().cloned().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_trips_and_nested_watches_restore() {
        let outer = Watch::start(Duration::from_secs(60));
        assert_eq!(check(), None);
        {
            let _inner = Watch::start(Duration::ZERO);
            assert_eq!(check(), Some(Stop::Deadline));
            assert_eq!(stopped(), Some(Stop::Deadline));
        }
        assert_eq!(stopped(), None);
        assert_eq!(budget(), Duration::from_secs(60));
        drop(outer);
        assert_eq!(budget(), Duration::ZERO);
    }

    #[test]
    fn inner_watch_never_extends_the_outer_deadline() {
        let _outer = Watch::start(Duration::from_millis(10));
        let _inner = Watch::start(Duration::from_secs(3600));
        assert_eq!(budget(), Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(check(), Some(Stop::Deadline));
    }

    #[test]
    fn cancel_token_stops_the_next_tick_on_its_thread_only() {
        let token = CancelToken::new();
        let _scope = token.enter();
        let _watch = Watch::start(Duration::from_secs(60));
        assert!(tick(&[]).is_ok());
        let other = std::thread::spawn({
            let token = token.clone();
            move || {
                token.cancel();
                let _w = Watch::start(Duration::from_secs(60));
                // Not entered on this thread: not concerned.
                tick(&[]).is_ok()
            }
        });
        assert_eq!(other.join().ok(), Some(true));
        assert!(tick(&[]).is_err());
        assert_eq!(stopped(), Some(Stop::Cancelled));
    }

    #[test]
    fn tick_returns_its_argument() {
        let _watch = Watch::start(Duration::from_secs(60));
        let v = tick(&[JsValue::from(7)]).ok();
        assert_eq!(v.and_then(|v| v.as_number()), Some(7.0));
    }
}
