//! Tiles in worker processes: one tenant's script cannot take the daemon (or another
//! tenant's tiles) down with it.
//!
//! Each pool slot of `tessera serve` owns one `tessera worker` child process. The parent
//! marks the tile PROCESSING, writes one JSON line `{"request": id, "tile": id,
//! "attempts": n}` to the child's stdin and waits for one line back with the PU cost or
//! the failure and the stage timings. The child loads the job and the tile from the
//! store (read only), runs read -> evaluate -> encode -> write, and never commits: every
//! store write stays in the daemon.
//!
//! A child that dies (the evalscript hard memory cap aborts it, the kernel's OOM killer,
//! a crash) fails only the tile it held, one attempt, and is respawned. The parent also
//! kills it when the tile's request is cancelled (within `POLL`) and when the tile runs
//! past its time budget plus `GRACE` (code no deadline reaches, like a regex that
//! backtracks for hours). The HTTP API never notices.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::analysis::{self, Job};
use super::stats::{Stats, TileTimings};
use super::worker::{begin, ProcessTile, TileOutcome, TileWorker};
use super::EngineConfig;
use crate::store::Store;

/// How often the parent looks at the cancel flag and the deadline while a child works.
const POLL: Duration = Duration::from_millis(50);
/// Beyond the tile's time budget, how long a child may take before it is killed: the
/// evalscript's own deadline normally ends the tile first, with a better message.
const GRACE: Duration = Duration::from_secs(30);
/// The hidden subcommand a worker process runs.
pub const WORKER_SUBCOMMAND: &str = "worker";

#[derive(Debug, Serialize, Deserialize)]
struct TileJob {
    request: String,
    tile: i64,
    attempts: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct TileDone {
    result: Result<f64, String>,
    /// read, evaluate, encode, write, total (seconds).
    timings: [f64; 5],
}

/// The parent side of one slot: the child process and its reply lines.
pub(super) struct ProcessRunner {
    exe: PathBuf,
    config: Arc<EngineConfig>,
    stats: Arc<Stats>,
    store: Option<Store>,
    child: Option<Worker>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The child's last `tessera: fatal: ...` line (the hard memory cap's reason).
    fatal: Arc<Mutex<Option<String>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments that make a child see the daemon's configuration.
fn worker_args(config: &EngineConfig) -> Vec<String> {
    let mut args = vec![
        WORKER_SUBCOMMAND.to_string(),
        "--db".into(),
        config.db_path.display().to_string(),
        "--data".into(),
        config.data_dir.display().to_string(),
        "--tile-time-budget".into(),
        format!("{}ms", config.tile_time_budget.as_millis()),
        "--setup-time-budget".into(),
        format!("{}ms", config.setup_time_budget.as_millis()),
    ];
    // The child writes the outputs, so it confines them exactly as the daemon does.
    if !config.outputs.confined {
        args.push("--unconfined-outputs".into());
    }
    for prefix in &config.outputs.allow_prefixes {
        args.push("--allow-output-prefix".into());
        args.push(prefix.to_string());
    }
    args
}

impl ProcessRunner {
    pub(super) fn new(exe: PathBuf, config: Arc<EngineConfig>, stats: Arc<Stats>) -> Self {
        let store = Store::open(&config.db_path)
            .map_err(|e| tracing::error!("worker slot cannot open the store: {e}"))
            .ok();
        ProcessRunner {
            exe,
            config,
            stats,
            store,
            child: None,
        }
    }

    fn spawn(&self) -> Result<Worker, String> {
        let mut command = Command::new(&self.exe);
        command
            .args(worker_args(&self.config))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start a worker process: {e}"))?;
        let stdin = child.stdin.take().ok_or("worker process without stdin")?;
        let stdout = child.stdout.take().ok_or("worker process without stdout")?;
        let stderr = child.stderr.take().ok_or("worker process without stderr")?;
        let fatal = Arc::new(Mutex::new(None));
        let seen = fatal.clone();
        // The child's log goes to the daemon's; its abort reason is kept for the tile.
        std::thread::Builder::new()
            .name("tile-worker-log".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("{line}");
                    if let Some(reason) = line.strip_prefix("tessera: fatal: ") {
                        if let Ok(mut slot) = seen.lock() {
                            *slot = Some(reason.to_string());
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot read the worker process's log: {e}"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("tile-worker-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot read from the worker process: {e}"))?;
        Ok(Worker {
            child,
            stdin,
            lines,
            fatal,
        })
    }

    /// Sends the tile to the child and waits for its answer, the cancel or the deadline.
    fn exchange(&mut self, msg: &ProcessTile, attempts: u32) -> Result<f64, String> {
        if self.child.is_none() {
            self.child = Some(self.spawn()?);
        }
        let worker = self.child.as_mut().ok_or("no worker process")?;
        let job = TileJob {
            request: msg.job.request_id.clone(),
            tile: msg.tile.id,
            attempts,
        };
        let line = serde_json::to_string(&job).map_err(|e| e.to_string())?;
        let sent = writeln!(worker.stdin, "{line}").and_then(|()| worker.stdin.flush());
        let deadline = Instant::now() + self.config.tile_time_budget + GRACE;
        let failure = if let Err(e) = sent {
            format!("the worker process did not take the tile ({e})")
        } else {
            loop {
                match worker.lines.recv_timeout(POLL) {
                    Ok(reply) => match serde_json::from_str::<TileDone>(&reply) {
                        Ok(done) => {
                            let [read, evaluate, encode, write, total] =
                                done.timings.map(Duration::from_secs_f64);
                            if done.result.is_ok() {
                                self.stats.record(
                                    &msg.job.request_id,
                                    &TileTimings {
                                        read,
                                        evaluate,
                                        encode,
                                        write,
                                        total,
                                    },
                                );
                            }
                            return done.result;
                        }
                        // Not ours (a stray print): keep waiting.
                        Err(_) => continue,
                    },
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if msg.cancel.is_cancelled() {
                            break "the request was cancelled; its worker process was stopped"
                                .to_string();
                        }
                        if Instant::now() >= deadline {
                            break format!(
                                "the tile ran past its time budget of {}; its worker process \
                                 was stopped",
                                humantime::format_duration(self.config.tile_time_budget)
                            );
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = worker.child.kill();
                        let status = worker.child.wait().map(|s| describe_exit(&s));
                        let status = status.unwrap_or_else(|e| e.to_string());
                        // The log thread may still be reading the last lines.
                        std::thread::sleep(POLL);
                        let fatal = worker.fatal.lock().ok().and_then(|mut f| f.take());
                        break match fatal {
                            Some(reason) => format!("evalscript: {reason} ({status})"),
                            None => format!(
                                "the worker process running this tile died ({status}): the \
                                 evalscript may have exceeded the hard memory cap or crashed it"
                            ),
                        };
                    }
                }
            }
        };
        // Killed (dropped) and respawned for the next tile.
        self.child = None;
        Err(failure)
    }
}

/// Makes the child started by `command` die (SIGKILL) when this process dies, so that no
/// worker or daemon outlives the process supervising it.
pub fn die_with_parent(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid, _exit).
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(signal)) => format!("killed by signal {signal}"),
        (Some(code), None) => format!("exit status {code}"),
        (None, None) => "ended".into(),
    }
}

impl super::pool::Runner for ProcessRunner {
    fn run(&mut self, msg: &ProcessTile) -> TileOutcome {
        let attempts = match begin(self.store.as_ref(), msg) {
            Ok(attempts) => attempts,
            Err(outcome) => return outcome,
        };
        let result = self.exchange(msg, attempts);
        TileOutcome { attempts, result }
    }
}

/// The child side: reads tile jobs from stdin until it closes, answers each on stdout.
pub fn serve_worker_process(config: EngineConfig) -> Result<(), String> {
    let store = Store::open(&config.db_path).map_err(|e| e.to_string())?;
    crate::data::byoc::set_index(&config.db_path).map_err(|e| e.to_string())?;
    crate::evalscript::set_setup_time_budget(config.setup_time_budget);
    let config = Arc::new(config);
    let mut worker = TileWorker::new(config.clone(), Arc::new(Stats::default()));
    // The job of the request whose tiles keep coming (loaded once).
    let mut jobs: HashMap<String, Arc<Job>> = HashMap::new();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let done = match serde_json::from_str::<TileJob>(&line) {
            Ok(job) => run_one(&store, &config, &mut jobs, &mut worker, &job),
            Err(e) => TileDone {
                result: Err(format!("bad tile job: {e}")),
                timings: [0.0; 5],
            },
        };
        let reply = serde_json::to_string(&done).map_err(|e| e.to_string())?;
        writeln!(stdout, "{reply}")
            .and_then(|()| stdout.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run_one(
    store: &Store,
    config: &EngineConfig,
    jobs: &mut HashMap<String, Arc<Job>>,
    worker: &mut TileWorker,
    job: &TileJob,
) -> TileDone {
    let fail = |message: String| TileDone {
        result: Err(message),
        timings: [0.0; 5],
    };
    if !jobs.contains_key(&job.request) {
        match analysis::load_job(store, &job.request, &config.data) {
            Ok(loaded) => {
                jobs.clear();
                jobs.insert(job.request.clone(), Arc::new(loaded));
            }
            Err(e) => return fail(format!("request {} cannot be processed: {e}", job.request)),
        }
    }
    let Some(loaded) = jobs.get(&job.request).cloned() else {
        return fail("no job".into());
    };
    let tile = match store.get_tile(&job.request, job.tile) {
        Ok(Some(tile)) => tile,
        Ok(None) => return fail(format!("tile {} not found", job.tile)),
        Err(e) => return fail(format!("store: {e}")),
    };
    worker.last_timings = TileTimings::default();
    let result = worker.process_guarded(&loaded, &tile, job.attempts);
    let t = worker.last_timings;
    TileDone {
        result,
        timings: [t.read, t.evaluate, t.encode, t.write, t.total].map(|d| d.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines_round_trip() {
        let job = TileJob {
            request: "r".into(),
            tile: 7,
            attempts: 2,
        };
        let text = serde_json::to_string(&job).unwrap_or_default();
        assert!(!text.contains('\n'));
        let back: Option<TileJob> = serde_json::from_str(&text).ok();
        assert_eq!(back.map(|j| (j.tile, j.attempts)), Some((7, 2)));
        let done = TileDone {
            result: Err("evalscript: multi\nline".into()),
            timings: [0.5; 5],
        };
        let text = serde_json::to_string(&done).unwrap_or_default();
        assert!(!text.contains('\n'));
    }

    #[test]
    fn children_get_the_daemon_settings() {
        let config = EngineConfig {
            tile_time_budget: Duration::from_secs(3),
            setup_time_budget: Duration::from_millis(1500),
            ..EngineConfig::default()
        };
        let args = worker_args(&config);
        assert_eq!(args[0], WORKER_SUBCOMMAND);
        assert!(args
            .windows(2)
            .any(|w| w == ["--tile-time-budget", "3000ms"]));
        assert!(args
            .windows(2)
            .any(|w| w == ["--setup-time-budget", "1500ms"]));
    }
}
