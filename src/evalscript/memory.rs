//! The memory bound of the boa runtime.
//!
//! boa 0.22 has no allocation limit (its strings may reach 2^32 code units) and no
//! interrupt hook, and Rust aborts the whole process when an allocation fails, so a
//! runaway script must be stopped *before* the memory is gone:
//!
//! * [`CountingAlloc`] is the process's global allocator (installed by `main.rs` and by the
//!   unit tests). It keeps, per thread, bytes allocated minus bytes freed: two
//!   thread-local adds per allocation, nothing per pixel.
//! * An evaluation records the count when it starts ([`Meter::start`]); growth beyond the
//!   limit fails it. The growth is checked every few pixels and inside the builtins
//!   through which a script allocates in bulk within one call ([`install_guards`]): those
//!   add what they are about to allocate (`'x'.repeat(1e9)` is refused before the
//!   gigabyte is requested) and throw an error the script cannot catch.
//! * The caller drops a context that hit the limit (its heap may hold the garbage).
//!
//! * The string `+` operator inside a single call (`while (true) s += s`) allocates
//!   through no hookable builtin, so the soft limit cannot stop it. For that the daemon
//!   arms a *hard cap* ([`CountingAlloc::configure`], by default twice the soft limit):
//!   an allocation on a thread inside an evaluation that would take its growth beyond
//!   the cap writes a one-line reason to stderr and to the crash note
//!   ([`CountingAlloc::arm_crash_note`]) and aborts the process *before* allocating.
//!   The `serve` supervisor restarts the daemon; the store's recovery requeues the tile
//!   (FAILED after its attempts, with the note's reason as its error).
//!
//! Without the counting allocator (an embedder with its own) only the size prechecks of
//! the guarded builtins apply; without `configure` there is no hard cap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use boa_engine::error::{EngineError, RuntimeLimitError};
use boa_engine::native_function::NativeFunction;
use boa_engine::object::FunctionObjectBuilder;
use boa_engine::{js_string, Context, JsError, JsObject, JsResult, JsValue};

/// Default growth allowed during one evaluation of a block (1 GiB): far above what a
/// 1000 x 1000 px tile with many outputs needs, far below a server's memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (memory freed on another thread
    /// makes it drift, so only differences over a short span are meaningful).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The thread's current evaluation: (count at its start, limit); limit 0 = none.
    static METER: Cell<(isize, usize)> = const { Cell::new((0, 0)) };
    /// Set once a guard or check saw the limit exceeded during the current evaluation.
    static TRIPPED: Cell<bool> = const { Cell::new(false) };
    /// What this thread works on (e.g. `tile <request> <tile id>`), for the crash note.
    static LABEL: Cell<([u8; LABEL_BYTES], usize)> = const { Cell::new(([0; LABEL_BYTES], 0)) };
}

const LABEL_BYTES: usize = 120;

/// Process-wide ceiling of every evaluation's soft limit (0 = none).
static SOFT_CEILING: AtomicUsize = AtomicUsize::new(0);
/// Growth of one evaluation at which the process aborts (0 = no hard cap).
static HARD_CAP: AtomicUsize = AtomicUsize::new(0);
/// Where the reason of a hard-cap abort is written.
static CRASH_NOTE: OnceLock<CString> = OnceLock::new();
/// The note the previous run left: (reason, label).
static PREVIOUS_CRASH: Mutex<Option<(String, String)>> = Mutex::new(None);

/// The crash note's file name inside the data directory.
pub const CRASH_NOTE_FILE: &str = "last-crash.txt";
/// Soft limit in MiB (`TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB`); hard cap in MiB
/// (`TESSERA_EVALSCRIPT_HARD_LIMIT_MB`, default twice the soft limit).
pub const SOFT_LIMIT_ENV: &str = "TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB";
pub const HARD_LIMIT_ENV: &str = "TESSERA_EVALSCRIPT_HARD_LIMIT_MB";

/// True once [`CountingAlloc`] served an allocation, i.e. it is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator plus a per-thread byte count. Install with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

fn add(delta: isize) {
    // `try_with`: during thread teardown the slot may be gone; the count is then moot.
    let _ = LIVE.try_with(|c| c.set(c.get().wrapping_add(delta)));
}

// SAFETY: every method forwards to `System` unchanged; the bookkeeping only touches
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        guard(layout.size());
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        guard(layout.size());
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        guard(new_size.saturating_sub(layout.size()));
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
            if !INSTALLED.load(Ordering::Relaxed) {
                INSTALLED.store(true, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Aborts the process if allocating `extra` bytes would take the evaluation running on
/// this thread beyond the hard cap. Allocates nothing.
#[inline]
fn guard(extra: usize) {
    let hard = HARD_CAP.load(Ordering::Relaxed);
    if hard == 0 {
        return;
    }
    let Ok((base, limit)) = METER.try_with(Cell::get) else {
        return;
    };
    if limit == 0 {
        return;
    }
    let grown = live().wrapping_sub(base);
    if over_hard_cap(grown, extra, hard) {
        crash(grown, extra, hard);
    }
}

/// The hard-cap decision: an evaluation that has grown the heap by `grown` bytes asks for
/// `extra` more; `hard` = 0 means no cap.
pub(crate) fn over_hard_cap(grown: isize, extra: usize, hard: usize) -> bool {
    hard > 0 && (grown.max(0) as usize).saturating_add(extra) > hard
}

/// A fixed buffer for formatting without allocating.
struct StackBuf {
    bytes: [u8; 512],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn write_all(fd: i32, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Writes the reason (stderr, crash note) and aborts; allocates nothing.
#[cold]
#[inline(never)]
fn crash(grown: isize, extra: usize, hard: usize) -> ! {
    let mut reason = StackBuf {
        bytes: [0; 512],
        len: 0,
    };
    let _ = write!(
        reason,
        "the evalscript exceeded the hard memory cap of {} MiB (one evaluation had grown the \
         heap by {} MiB and asked for {} MiB more), so its process was stopped",
        hard >> 20,
        grown.max(0) as usize >> 20,
        extra >> 20
    );
    let (label, label_len) = LABEL.try_with(Cell::get).unwrap_or(([0; LABEL_BYTES], 0));
    let label = &label[..label_len.min(LABEL_BYTES)];
    write_all(2, b"tessera: fatal: ");
    write_all(2, &reason.bytes[..reason.len]);
    if !label.is_empty() {
        write_all(2, b" [");
        write_all(2, label);
        write_all(2, b"]");
    }
    write_all(2, b"\n");
    if let Some(path) = CRASH_NOTE.get() {
        // SAFETY: `path` is NUL-terminated; the descriptor is closed below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd >= 0 {
            write_all(fd, &reason.bytes[..reason.len]);
            write_all(fd, b"\n");
            write_all(fd, label);
            write_all(fd, b"\n");
            // SAFETY: `fd` was opened above.
            unsafe {
                libc::fsync(fd);
                libc::close(fd);
            }
        }
    }
    std::process::abort()
}

/// Reads a crash note: its first line is the reason, its second the label.
pub(crate) fn parse_crash_note(text: &str) -> Option<(String, String)> {
    let mut lines = text.lines();
    let reason = lines.next()?.trim();
    if reason.is_empty() {
        return None;
    }
    let label = lines.next().unwrap_or("").trim();
    Some((reason.to_string(), label.to_string()))
}

/// Soft limit and hard cap in bytes from the two environment values (MiB): soft defaults
/// to [`DEFAULT_MEMORY_LIMIT`], hard to twice the soft limit and is at least the soft one.
pub(crate) fn parse_limits(
    soft: Option<&str>,
    hard: Option<&str>,
) -> Result<(usize, usize), String> {
    let mib = |name: &str, v: &str| -> Result<usize, String> {
        match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.saturating_mul(1 << 20)),
            _ => Err(format!(
                "{name} must be a positive number of MiB, got {v:?}"
            )),
        }
    };
    let soft = match soft {
        Some(v) => mib(SOFT_LIMIT_ENV, v)?,
        None => DEFAULT_MEMORY_LIMIT,
    };
    let hard = match hard {
        Some(v) => mib(HARD_LIMIT_ENV, v)?,
        None => soft.saturating_mul(2),
    };
    Ok((soft, hard.max(soft)))
}

/// Clears this thread's label when dropped.
pub struct TaskLabel(());

impl Drop for TaskLabel {
    fn drop(&mut self) {
        let _ = LABEL.try_with(|l| l.set(([0; LABEL_BYTES], 0)));
    }
}

impl CountingAlloc {
    /// Caps every evaluation's soft limit at `soft` bytes and arms the hard cap: an
    /// evaluation growing the heap beyond `hard` bytes aborts the process (0 = none).
    pub fn configure(soft: usize, hard: usize) {
        SOFT_CEILING.store(soft, Ordering::Relaxed);
        HARD_CAP.store(hard, Ordering::Relaxed);
    }

    /// [`configure`](Self::configure) from `TESSERA_EVALSCRIPT_MEMORY_LIMIT_MB` and
    /// `TESSERA_EVALSCRIPT_HARD_LIMIT_MB`; returns (soft, hard) in bytes.
    pub fn configure_from_env() -> Result<(usize, usize), String> {
        let soft = std::env::var(SOFT_LIMIT_ENV).ok();
        let hard = std::env::var(HARD_LIMIT_ENV).ok();
        let (soft, hard) = parse_limits(soft.as_deref(), hard.as_deref())?;
        Self::configure(soft, hard);
        Ok((soft, hard))
    }

    /// Makes `<data_dir>/last-crash.txt` the crash note; a note left by the previous run
    /// is read, removed and kept for [`previous_crash`](Self::previous_crash).
    pub fn arm_crash_note(data_dir: &Path) -> Option<(String, String)> {
        let path: PathBuf = data_dir.join(CRASH_NOTE_FILE);
        let previous = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| parse_crash_note(&t));
        let _ = std::fs::remove_file(&path);
        if let Ok(mut p) = PREVIOUS_CRASH.lock() {
            p.clone_from(&previous);
        }
        if let Ok(c) = CString::new(path.into_os_string().into_encoded_bytes()) {
            let _ = CRASH_NOTE.set(c);
        }
        previous
    }

    /// The (reason, label) the previous run's hard-cap abort left, if any.
    pub fn previous_crash() -> Option<(String, String)> {
        PREVIOUS_CRASH.lock().ok().and_then(|p| p.clone())
    }

    /// Names what this thread works on for the crash note (truncated to 120 bytes),
    /// until the returned guard is dropped.
    pub fn set_task_label(label: &str) -> TaskLabel {
        let mut bytes = [0; LABEL_BYTES];
        let mut n = label.len().min(LABEL_BYTES);
        while !label.is_char_boundary(n) {
            n -= 1;
        }
        bytes[..n].copy_from_slice(&label.as_bytes()[..n]);
        let _ = LABEL.try_with(|l| l.set((bytes, n)));
        TaskLabel(())
    }
}

/// Whether the counting allocator is the global allocator (it has seen a reallocation).
pub fn counting_installed() -> bool {
    if !INSTALLED.load(Ordering::Relaxed) {
        // Any Vec growth reallocates; do one so the flag reflects the truth.
        let mut v: Vec<u8> = Vec::with_capacity(1);
        v.extend_from_slice(&[0, 0]);
        std::hint::black_box(&v);
    }
    INSTALLED.load(Ordering::Relaxed)
}

fn live() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// The memory accounting of one evaluation on this thread; ends when dropped.
pub(crate) struct Meter {
    previous: (isize, usize),
}

impl Meter {
    /// Starts counting growth from now, allowing `limit` bytes (0 = unlimited).
    pub(crate) fn start(limit: usize) -> Meter {
        let ceiling = SOFT_CEILING.load(Ordering::Relaxed);
        let limit = if limit > 0 && ceiling > 0 {
            limit.min(ceiling)
        } else {
            limit
        };
        let previous = METER.with(|m| m.replace((live(), limit)));
        TRIPPED.with(|t| t.set(false));
        Meter { previous }
    }

    /// Bytes grown since `start`, if that exceeds the limit (or a guard refused a request).
    #[cfg(test)]
    pub(crate) fn exceeded(&self) -> Option<usize> {
        check()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        METER.with(|m| m.set(self.previous));
        TRIPPED.with(|t| t.set(false));
    }
}

/// Growth of the evaluation running on this thread if it is over its limit.
pub(crate) fn check() -> Option<usize> {
    let (base, limit) = METER.with(Cell::get);
    let grown = (live() - base).max(0) as usize;
    if TRIPPED.with(Cell::get) || (limit > 0 && grown > limit) {
        TRIPPED.with(|t| t.set(true));
        Some(grown)
    } else {
        None
    }
}

/// The limit of the evaluation running on this thread (0 when none).
pub(crate) fn current_limit() -> usize {
    METER.with(|m| m.get().1)
}

/// Checks that `extra` more bytes fit; otherwise marks the evaluation and returns the
/// uncatchable error boa uses for its own limits (the caller reports the memory cause).
fn admit(extra: f64) -> JsResult<()> {
    let (base, limit) = METER.with(Cell::get);
    if limit == 0 {
        return Ok(());
    }
    let grown = (live() - base).max(0) as f64;
    // `max` turns a NaN estimate into 0; an infinite one does not fit.
    let fits = grown + extra.max(0.0) <= limit as f64;
    if !fits {
        TRIPPED.with(|t| t.set(true));
        return Err(JsError::from(EngineError::RuntimeLimit(
            RuntimeLimitError::StackSize,
        )));
    }
    Ok(())
}

/// True if the evaluation on this thread was stopped by the memory limit.
pub(crate) fn tripped() -> bool {
    TRIPPED.with(Cell::get)
}

/// Bytes a JS value (element of a dense array) takes, for the size prechecks.
const VALUE_BYTES: f64 = 16.0;

/// What a guarded builtin is about to allocate, in bytes (a generous estimate).
#[derive(Clone, Copy)]
enum Estimate {
    /// Growth only; the builtin adds a bounded amount per call.
    Nothing,
    /// `this.length * count * 2` (`repeat(count)`, UTF-16 worst case).
    Repeat,
    /// `maxLength * 2` (`padStart`/`padEnd`).
    Pad,
    /// `this.length * VALUE_BYTES` (`fill` on a sparse array makes it dense).
    Fill,
    /// `this.length * (separator + 24) * 2` (`join`: each element's text).
    Join,
}

fn length_of(this: &JsValue, ctx: &mut Context) -> JsResult<f64> {
    if let Some(s) = this.as_string() {
        return Ok(s.len() as f64);
    }
    match this.as_object() {
        Some(o) => o.get(js_string!("length"), ctx)?.to_number(ctx),
        None => Ok(0.0),
    }
}

fn estimate(kind: Estimate, this: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<f64> {
    let arg = |i: usize, ctx: &mut Context| -> JsResult<f64> {
        match args.get(i) {
            Some(v) if !v.is_undefined() => v.to_number(ctx),
            _ => Ok(0.0),
        }
    };
    Ok(match kind {
        Estimate::Nothing => 0.0,
        Estimate::Repeat => length_of(this, ctx)? * arg(0, ctx)? * 2.0,
        Estimate::Pad => arg(0, ctx)? * 2.0,
        Estimate::Fill => length_of(this, ctx)? * VALUE_BYTES,
        Estimate::Join => {
            let separator = match args.first() {
                Some(v) if !v.is_undefined() => v.to_string(ctx)?.len() as f64,
                _ => 1.0,
            };
            length_of(this, ctx)? * (separator + 24.0) * 2.0
        }
    })
}

/// The builtins wrapped by [`install_guards`]: (object path, method, estimate).
const GUARDED: &[(&str, &str, Estimate)] = &[
    ("String.prototype", "repeat", Estimate::Repeat),
    ("String.prototype", "padStart", Estimate::Pad),
    ("String.prototype", "padEnd", Estimate::Pad),
    ("String.prototype", "concat", Estimate::Nothing),
    ("Array.prototype", "fill", Estimate::Fill),
    ("Array.prototype", "join", Estimate::Join),
    ("Array.prototype", "push", Estimate::Nothing),
    ("Array.prototype", "unshift", Estimate::Nothing),
    ("Array.prototype", "concat", Estimate::Nothing),
    ("Array.prototype", "splice", Estimate::Nothing),
    ("Array.prototype", "slice", Estimate::Nothing),
    ("Array.prototype", "map", Estimate::Nothing),
    ("Array.prototype", "flat", Estimate::Nothing),
    ("Array", "from", Estimate::Nothing),
    ("Array", "of", Estimate::Nothing),
    ("Object", "keys", Estimate::Nothing),
    ("JSON", "stringify", Estimate::Nothing),
];

/// Replaces each builtin of [`GUARDED`] by a native wrapper that admits the call (growth
/// so far plus its estimate) before delegating to the original. Runs before the prelude,
/// so helpers and scripts see only the guarded versions.
pub(crate) fn install_guards(ctx: &mut Context) -> JsResult<()> {
    for &(path, method, kind) in GUARDED {
        let holder = ctx.eval(boa_engine::Source::from_bytes(path))?;
        let Some(holder) = holder.as_object() else {
            continue;
        };
        let original = holder.get(boa_engine::JsString::from(method), ctx)?;
        let Some(original) = original.as_object().filter(JsObject::is_callable) else {
            continue;
        };
        let wrapper = NativeFunction::from_copy_closure_with_captures(
            move |this, args, original: &JsObject, ctx| {
                if current_limit() > 0 {
                    let extra = estimate(kind, this, args, ctx)?;
                    admit(extra)?;
                }
                original.call(this, args, ctx)
            },
            original.clone(),
        );
        let length = original.get(js_string!("length"), ctx)?.to_number(ctx)?;
        let function = FunctionObjectBuilder::new(ctx.realm(), wrapper)
            .name(boa_engine::JsString::from(method))
            .length(length as usize)
            .build();
        holder.define_property_or_throw(
            boa_engine::JsString::from(method),
            boa_engine::property::PropertyDescriptor::builder()
                .value(function)
                .writable(true)
                .enumerable(false)
                .configurable(true),
            ctx,
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: CountingAlloc = CountingAlloc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_allocations() {
        assert!(counting_installed());
        let before = live();
        let v = vec![0u8; 10_000_000];
        let grown = live() - before;
        assert!((10_000_000..10_100_000).contains(&grown), "{grown}");
        drop(v);
        assert!((live() - before).abs() < 100_000);
    }

    #[test]
    fn meter_trips_on_growth_and_restores_the_outer_one() {
        let outer = Meter::start(0);
        {
            let inner = Meter::start(1_000_000);
            assert_eq!(current_limit(), 1_000_000);
            let small = vec![1u8; 1000];
            assert!(inner.exceeded().is_none());
            let big = vec![1u8; 2_000_000];
            assert!(inner.exceeded().is_some_and(|g| g >= 2_000_000));
            assert!(tripped());
            drop((small, big));
        }
        assert_eq!(current_limit(), 0);
        assert!(outer.exceeded().is_none() || !tripped());
    }

    #[test]
    fn admit_refuses_before_allocating() {
        let _m = Meter::start(1 << 20);
        assert!(admit(1000.0).is_ok());
        // `'x'.repeat(NaN)` allocates nothing.
        assert!(admit(f64::NAN).is_ok());
        assert!(!tripped());
        assert!(admit(2e6).is_err());
        assert!(tripped());
    }

    #[test]
    fn hard_cap_decision() {
        // No cap.
        assert!(!over_hard_cap(1 << 40, 1 << 40, 0));
        // Up to the cap is allowed, one byte beyond is not.
        assert!(!over_hard_cap(100, 28, 128));
        assert!(over_hard_cap(100, 29, 128));
        // A single huge request is refused even with no growth yet.
        assert!(over_hard_cap(0, 129, 128));
        // Negative drift (memory freed that another thread allocated) counts as 0.
        assert!(!over_hard_cap(-1000, 128, 128));
        // No overflow on absurd sizes.
        assert!(over_hard_cap(isize::MAX, usize::MAX, 1));
    }

    #[test]
    fn limits_from_environment_values() {
        assert_eq!(
            parse_limits(None, None),
            Ok((DEFAULT_MEMORY_LIMIT, 2 * DEFAULT_MEMORY_LIMIT))
        );
        assert_eq!(parse_limits(Some("64"), None), Ok((64 << 20, 128 << 20)));
        assert_eq!(
            parse_limits(Some("64"), Some("100")),
            Ok((64 << 20, 100 << 20))
        );
        // The hard cap is never below the soft limit.
        assert_eq!(
            parse_limits(Some("64"), Some("8")),
            Ok((64 << 20, 64 << 20))
        );
        assert!(parse_limits(Some("0"), None).is_err());
        assert!(parse_limits(Some("lots"), None).is_err());
        assert!(parse_limits(None, Some("-1")).is_err());
    }

    #[test]
    fn crash_notes_parse() {
        assert_eq!(
            parse_crash_note("over the cap\ntile r1 7\n"),
            Some(("over the cap".into(), "tile r1 7".into()))
        );
        assert_eq!(
            parse_crash_note("over the cap\n"),
            Some(("over the cap".into(), String::new()))
        );
        assert_eq!(parse_crash_note("\n"), None);
        assert_eq!(parse_crash_note(""), None);
    }

    #[test]
    fn labels_are_truncated_on_char_boundaries_and_cleared() {
        {
            let _l = CountingAlloc::set_task_label(&"é".repeat(100));
            let (_, n) = LABEL.with(Cell::get);
            assert!(n <= LABEL_BYTES && n % 2 == 0, "{n}");
        }
        assert_eq!(LABEL.with(Cell::get).1, 0);
    }
}
