//! `tessera serve` as a small supervisor: it re-executes itself with `--child`, forwards
//! SIGTERM/SIGINT, and restarts the child when it dies abnormally (a signal such as the
//! SIGABRT of the evalscript hard memory cap, or a non-zero exit not caused by a forwarded
//! signal). The child dies with the supervisor, even by SIGKILL (`PR_SET_PDEATHSIG`).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The hidden flag that makes `serve` run the daemon itself.
pub const CHILD_FLAG: &str = "--child";
/// At most this many restarts in [`WINDOW`]; more wait until the oldest leaves it.
const MAX_RESTARTS: usize = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// A first child failing this fast is a startup error (bad flags, port in use): no restart.
const STARTUP_GRACE: Duration = Duration::from_secs(3);

/// The last SIGTERM/SIGINT received and not yet forwarded (0 = none).
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    PENDING.store(sig, Ordering::SeqCst);
}

/// What to do once the child is gone.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Exit with this code.
    Exit(i32),
    /// Start the child again after this delay.
    Restart(Duration),
}

/// How the child ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

/// The restart decision. `forwarded`: we passed a SIGTERM/SIGINT on (the end is wanted);
/// `first` + `uptime`: the first child failing at once is a startup error; `recent`:
/// restarts already made within the last [`WINDOW`], oldest first, as ages.
pub fn decide(
    ended: Ended,
    forwarded: bool,
    first: bool,
    uptime: Duration,
    recent: &[Duration],
) -> Next {
    let code = match ended {
        Ended::Code(c) => c,
        Ended::Signal(s) => 128 + s,
    };
    if forwarded || ended == Ended::Code(0) {
        return Next::Exit(code);
    }
    if first && uptime < STARTUP_GRACE && matches!(ended, Ended::Code(_)) {
        return Next::Exit(code);
    }
    let recent: Vec<Duration> = recent.iter().copied().filter(|a| *a < WINDOW).collect();
    // Short and growing: 0.25 s, 0.5 s, 1 s, ... up to 8 s for back-to-back crashes.
    let mut delay = Duration::from_millis(250) * (1u32 << recent.len().min(5));
    if recent.len() >= MAX_RESTARTS {
        // Wait until the oldest restart of the window is a minute old.
        let oldest = recent.iter().copied().max().unwrap_or_default();
        delay = delay.max(WINDOW.saturating_sub(oldest));
    }
    Next::Restart(delay)
}

fn ended(status: ExitStatus) -> Ended {
    match (status.code(), status.signal()) {
        (Some(c), _) => Ended::Code(c),
        (None, Some(s)) => Ended::Signal(s),
        (None, None) => Ended::Code(1),
    }
}

/// Sleeps up to `d`, returning early (true) when a SIGTERM/SIGINT arrives.
fn sleep_unless_signalled(d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if PENDING.load(Ordering::SeqCst) != 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    PENDING.load(Ordering::SeqCst) != 0
}

/// Runs the supervisor until the child exits normally or is stopped by a forwarded
/// signal; returns the exit code to leave with.
pub fn run() -> Result<i32> {
    // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
    let handler: extern "C" fn(libc::c_int) = on_signal;
    unsafe {
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
    let exe = std::env::current_exe().context("locating the tessera executable")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut restarts: Vec<Instant> = Vec::new();
    let mut first = true;
    loop {
        let mut command = Command::new(&exe);
        command.args(&args).arg(CHILD_FLAG);
        tessera::engine::die_with_parent(&mut command);
        let mut child = command.spawn().context("starting the daemon process")?;
        let pid = child.id() as libc::pid_t;
        let started = Instant::now();
        tracing::info!(pid, "supervisor: daemon started");
        let mut forwarded = false;
        let status = loop {
            let sig = PENDING.swap(0, Ordering::SeqCst);
            if sig != 0 {
                forwarded = true;
                tracing::info!(pid, signal = sig, "supervisor: forwarding signal");
                // SAFETY: plain kill(2) on our own child.
                unsafe {
                    libc::kill(pid, sig);
                }
            }
            match child.try_wait().context("waiting for the daemon process")? {
                Some(status) => break status,
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let now = Instant::now();
        restarts.retain(|t| now.duration_since(*t) < WINDOW);
        let ages: Vec<Duration> = restarts.iter().map(|t| now.duration_since(*t)).collect();
        let how = ended(status);
        match decide(how, forwarded, first, started.elapsed(), &ages) {
            Next::Exit(code) => {
                if code != 0 && !forwarded {
                    tracing::error!(
                        ?how,
                        "supervisor: the daemon failed at startup; not restarting"
                    );
                } else {
                    tracing::info!(?how, "supervisor: daemon stopped");
                }
                return Ok(code);
            }
            Next::Restart(delay) => {
                tracing::error!(
                    ?how,
                    restarts_last_minute = ages.len(),
                    ?delay,
                    "supervisor: the daemon died; restarting it"
                );
                if sleep_unless_signalled(delay) {
                    tracing::info!("supervisor: stopping");
                    return Ok(0);
                }
                restarts.push(Instant::now());
                first = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn clean_or_requested_ends_exit() {
        assert_eq!(
            decide(Ended::Code(0), false, false, S * 100, &[]),
            Next::Exit(0)
        );
        assert_eq!(
            decide(Ended::Signal(15), true, false, S * 100, &[]),
            Next::Exit(143)
        );
        assert_eq!(
            decide(Ended::Code(1), true, false, S * 100, &[]),
            Next::Exit(1)
        );
    }

    #[test]
    fn a_first_child_failing_at_once_is_a_startup_error() {
        assert_eq!(decide(Ended::Code(1), false, true, S, &[]), Next::Exit(1));
        // ... but an abort at once is still restarted, and so is a later failure.
        assert!(matches!(
            decide(Ended::Signal(6), false, true, S, &[]),
            Next::Restart(_)
        ));
        assert!(matches!(
            decide(Ended::Code(1), false, true, S * 10, &[]),
            Next::Restart(_)
        ));
        assert!(matches!(
            decide(Ended::Code(1), false, false, S, &[]),
            Next::Restart(_)
        ));
    }

    #[test]
    fn crashes_restart_with_a_growing_bounded_backoff() {
        let Next::Restart(d0) = decide(Ended::Signal(6), false, false, S, &[]) else {
            panic!()
        };
        let Next::Restart(d3) = decide(Ended::Signal(6), false, false, S, &[S, S, S]) else {
            panic!()
        };
        assert!(d0 < d3 && d3 <= S * 8, "{d0:?} {d3:?}");
        // Ten restarts in the last minute: wait until the oldest is a minute old.
        let ages = [S * 50, S * 40, S * 30, S, S, S, S, S, S, S];
        assert_eq!(
            decide(Ended::Signal(9), false, false, S, &ages),
            Next::Restart(S * 10)
        );
        // Restarts older than the window do not count.
        let old = [S * 61; 20];
        assert_eq!(
            decide(Ended::Signal(9), false, false, S, &old),
            Next::Restart(Duration::from_millis(250))
        );
    }
}
