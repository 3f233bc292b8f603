//! The tile worker pool: N slots, each a thread that runs one tile at a time, either in
//! this process (`TileWorker`, the embedded default) or in a supervised `tessera worker`
//! child process (`process::ProcessRunner`, the default of `tessera serve`). Tiles wait in
//! a [`FairQueue`] so that workers are shared round-robin between clients.

use std::sync::mpsc;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::fair::FairQueue;
use super::process::ProcessRunner;
use super::stats::Stats;
use super::worker::{ProcessTile, TileOutcome, TileWorker};
use super::EngineConfig;

/// What runs a slot's tiles.
pub(super) trait Runner {
    fn run(&mut self, msg: &ProcessTile) -> TileOutcome;
}

impl Runner for TileWorker {
    fn run(&mut self, msg: &ProcessTile) -> TileOutcome {
        TileWorker::run(self, msg)
    }
}

struct Assignment {
    msg: ProcessTile,
    reply: oneshot::Sender<TileOutcome>,
}

/// A slot finished its tile and is free again.
#[derive(Message)]
#[rtype(result = "()")]
struct SlotFree(usize);

pub struct Pool {
    config: Arc<EngineConfig>,
    stats: Arc<Stats>,
    queue: FairQueue<Assignment>,
    idle: Vec<usize>,
    slots: Vec<mpsc::Sender<Assignment>>,
}

impl Pool {
    pub fn new(config: Arc<EngineConfig>, stats: Arc<Stats>) -> Pool {
        Pool {
            config,
            stats,
            queue: FairQueue::default(),
            idle: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// Hands waiting tiles to free slots, the next client's first.
    fn pump(&mut self) {
        while !self.idle.is_empty() {
            let Some(assignment) = self.queue.pop() else {
                return;
            };
            let Some(slot) = self.idle.pop() else {
                return;
            };
            if let Err(mpsc::SendError(lost)) = self.slots[slot].send(assignment) {
                // The slot's thread is gone: its reply sender drops, the tile fails once.
                tracing::error!(slot, "tile worker slot is gone");
                drop(lost);
            }
        }
    }
}

impl Actor for Pool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let workers = self.config.workers.max(1);
        for _ in 0..workers {
            let index = self.slots.len();
            let (tx, rx) = mpsc::channel::<Assignment>();
            let pool = ctx.address();
            let config = self.config.clone();
            let stats = self.stats.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tile-worker-{index}"))
                .spawn(move || {
                    // Built on the slot's own thread: boa contexts are not `Send`.
                    let mut runner: Box<dyn Runner> = match &config.worker_processes {
                        Some(exe) => {
                            Box::new(ProcessRunner::new(exe.clone(), config.clone(), stats))
                        }
                        None => Box::new(TileWorker::new(config.clone(), stats)),
                    };
                    while let Ok(Assignment { msg, reply }) = rx.recv() {
                        let outcome = runner.run(&msg);
                        let _ = reply.send(outcome);
                        pool.do_send(SlotFree(index));
                    }
                });
            match spawned {
                Ok(_) => {
                    self.slots.push(tx);
                    self.idle.push(index);
                }
                Err(e) => tracing::error!("cannot start tile worker {index}: {e}"),
            }
        }
    }
}

impl Handler<ProcessTile> for Pool {
    type Result = ResponseFuture<TileOutcome>;

    fn handle(&mut self, msg: ProcessTile, _: &mut Context<Self>) -> Self::Result {
        let (reply, outcome) = oneshot::channel();
        let attempts = msg.tile.attempts;
        let client = msg.client.clone();
        self.queue.push(&client, Assignment { msg, reply });
        self.pump();
        Box::pin(async move {
            outcome.await.unwrap_or_else(|_| TileOutcome {
                attempts: attempts + 1,
                result: Err("the tile worker stopped".into()),
            })
        })
    }
}

impl Handler<SlotFree> for Pool {
    type Result = ();

    fn handle(&mut self, msg: SlotFree, _: &mut Context<Self>) {
        self.idle.push(msg.0);
        self.pump();
    }
}
