//! One actor per batch request: it applies the pure state machine, commits each
//! transition, then carries out the effects (analysis, PU, dispatching tiles).

use std::sync::mpsc;
use std::sync::Arc;

use actix::prelude::*;

use super::analysis;
use super::lifecycle::{self, Effect, Event, RequestState, Status, TileEvent, TileStatus};
use super::pool::Pool;
use super::registry::{Forget, Registry};
use super::worker::{ProcessTile, TileOutcome};
use super::{state_of, Command, EngineConfig, EngineError, Result};
use crate::api::{RequestRecord, TileRecord};
use crate::evalscript::{CancelToken, CountingAlloc};
use crate::store::Store;

/// What every request actor shares: the configuration and the worker pool.
pub struct Shared {
    pub config: Arc<EngineConfig>,
    pub pool: Addr<Pool>,
    /// Per-stage tile timings; a settled request's totals are logged.
    pub stats: Arc<super::stats::Stats>,
}

pub struct RequestActor {
    id: String,
    client: String,
    state: RequestState,
    store: Store,
    shared: Arc<Shared>,
    registry: Addr<Registry>,
    /// The validated request, built on first need (analysis or the first tile).
    job: Option<Arc<analysis::Job>>,
    /// True while tiles should be handed to workers.
    dispatching: bool,
    in_flight: usize,
    /// Set while a legacy single-tile restart runs: requeue only this tile.
    requeue_only: Option<i64>,
    /// Batch v2: uploads the execution database beside the outputs.
    execution: super::artifacts::ExecutionPublisher,
    /// Set on CANCEL: ends the request's analysis and in-flight evaluations.
    cancel: CancelToken,
}

/// A command from the API, with the channel its result goes back on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Apply {
    pub command: Command,
    pub reply: mpsc::Sender<Result<()>>,
}

/// Sent once after a restart of the daemon: carry on from the stored state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

impl RequestActor {
    pub fn new(
        record: RequestRecord,
        store: Store,
        shared: Arc<Shared>,
        registry: Addr<Registry>,
    ) -> Self {
        RequestActor {
            id: record.id.clone(),
            client: record.client_id.clone(),
            state: state_of(&record),
            store,
            shared,
            registry,
            job: None,
            dispatching: false,
            in_flight: 0,
            requeue_only: None,
            execution: Default::default(),
            cancel: CancelToken::new(),
        }
    }

    fn capacity(&self) -> usize {
        // Twice the workers keeps each worker fed while results come back.
        self.shared.config.workers.max(1) * 2
    }

    /// Applies an event: pure transition, commit, then effects.
    fn apply(
        &mut self,
        event: Event,
        user: bool,
        error: Option<&str>,
        ctx: &mut Context<Self>,
    ) -> Result<()> {
        let (next, effects) = lifecycle::on_event(self.state, event)?;
        if event == Event::Cancel {
            self.cancel.cancel();
        }
        self.store.set_state(&self.id, &next, user, error)?;
        tracing::info!(request = %self.id, from = ?self.state.status, to = ?next.status, ?event, "transition");
        self.state = next;
        for effect in effects {
            if let Err(e) = self.run(effect, ctx) {
                tracing::error!(request = %self.id, ?effect, "effect failed: {e}");
            }
        }
        if matches!(
            next.status,
            Status::Processing | Status::Stopped | Status::Done | Status::Partial | Status::Failed
        ) {
            self.publish_execution(true);
        }
        Ok(())
    }

    /// v2: the execution database (every call when `force`, else throttled); only once
    /// the job is loaded, so v1 requests never pay for it.
    fn publish_execution(&mut self, force: bool) {
        if let Some(job) = self.job.clone() {
            let base = crate::output::Sinks::from_env(self.shared.config.data_dir.clone()).ok();
            self.execution
                .publish(&self.store, &job, base.as_ref(), force);
        }
    }

    fn run(&mut self, effect: Effect, ctx: &mut Context<Self>) -> Result<()> {
        match effect {
            Effect::RunAnalysis => self.start_analysis(ctx),
            Effect::ReservePu => {
                let totals = self.store.pu_totals(&self.id)?;
                let amount = crate::accounting::reservation(
                    self.store.uncharged_estimate(&self.id)?,
                    totals.charged,
                );
                if amount > 0.0 {
                    self.store.reserve(&self.id, &self.client, amount)?;
                }
            }
            Effect::QueueTiles => {
                self.dispatching = true;
                self.pump(ctx)?;
            }
            Effect::RequeueFailedTiles => match self.requeue_only {
                Some(tile) => {
                    self.store.requeue_tile(&self.id, tile)?;
                }
                None => {
                    self.store.requeue_failed(&self.id)?;
                }
            },
            Effect::StopTiles => {
                self.dispatching = false;
                self.store.charge_in_flight(&self.id, &self.client)?;
            }
            Effect::SettlePu => {
                let t = self.store.pu_totals(&self.id)?;
                let s = crate::accounting::settle(t.reserved, t.charged);
                self.store
                    .set_settlement(&self.id, &self.client, s.minimum_top_up, s.refund)?;
            }
        }
        Ok(())
    }

    fn start_analysis(&mut self, ctx: &mut Context<Self>) {
        let store = match self.store.reopen() {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("analysis could not open the store: {e}");
                let _ = self.apply(Event::AnalysisFailed, false, Some(&msg), ctx);
                return;
            }
        };
        let id = self.id.clone();
        let client = self.client.clone();
        let config = self.shared.config.clone();
        let cancel = self.cancel.clone();
        let fut = tokio::task::spawn_blocking(move || {
            // CANCEL ends setup() and top-level code at their next tick.
            let _cancel = cancel.enter();
            // Names the request in the crash note if its script hits the hard memory cap.
            let _label = CountingAlloc::set_task_label(&analysis_label(&id));
            let sinks = crate::output::Sinks::from_env(config.data_dir.clone())
                .map_err(|e| e.to_string())?;
            // The existence preflight lists only inside the client's scope (issue 12).
            let sinks = config.outputs.sinks_for(sinks, &store, &client)?;
            analysis::analyse(&store, &id, &config.data, &sinks)
        });
        ctx.spawn(fut.into_actor(self).map(|joined, act, ctx| {
            let outcome = joined.unwrap_or_else(|e| Err(format!("analysis crashed: {e}")));
            let result = match outcome {
                Ok(job) => {
                    act.job = Some(Arc::new(job));
                    act.apply(Event::AnalysisSucceeded, false, None, ctx)
                }
                Err(msg) => {
                    tracing::warn!(request = %act.id, "analysis failed: {msg}");
                    act.apply(Event::AnalysisFailed, false, Some(&msg), ctx)
                }
            };
            if let Err(e) = result {
                tracing::error!(request = %act.id, "after analysis: {e}");
            }
        }));
    }

    fn job(&mut self) -> Result<Arc<analysis::Job>> {
        if let Some(j) = &self.job {
            return Ok(j.clone());
        }
        let job = Arc::new(
            analysis::load_job(&self.store, &self.id, &self.shared.config.data).map_err(|m| {
                EngineError::Start(format!("request {} cannot be processed: {m}", self.id))
            })?,
        );
        self.job = Some(job.clone());
        Ok(job)
    }

    /// Hands pending tiles to workers up to capacity; settles when none are left.
    fn pump(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        if self.dispatching && self.in_flight < self.capacity() {
            let want = (self.capacity() - self.in_flight) as u64;
            let tiles = self.store.claim_pending(&self.id, want)?;
            if !tiles.is_empty() {
                let job = self.job()?;
                for tile in tiles {
                    self.dispatch(job.clone(), tile, ctx);
                }
            }
        }
        self.settle_if_idle(ctx)
    }

    fn dispatch(&mut self, job: Arc<analysis::Job>, tile: TileRecord, ctx: &mut Context<Self>) {
        self.in_flight += 1;
        let msg = ProcessTile {
            job,
            tile: tile.clone(),
            client: self.client.clone(),
            cancel: self.cancel.clone(),
        };
        ctx.spawn(
            self.shared
                .pool
                .send(msg)
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let outcome = res.unwrap_or_else(|e| TileOutcome {
                        attempts: tile.attempts + 1,
                        result: Err(format!("worker unavailable: {e}")),
                    });
                    act.record_until_done(tile, outcome, 0, ctx);
                }),
        );
    }

    /// Records a tile's outcome, retrying with backoff until the store takes it: a written
    /// output is never left unrecorded (the tile stays in flight meanwhile, so the request
    /// cannot settle without it). Then hands out more tiles, also retried.
    fn record_until_done(
        &mut self,
        tile: TileRecord,
        outcome: TileOutcome,
        attempt: u32,
        ctx: &mut Context<Self>,
    ) {
        match self.record(&tile, &outcome) {
            Ok(()) => {
                self.in_flight -= 1;
                self.publish_execution(false);
                self.pump_until_done(0, ctx);
            }
            Err(e) => {
                let delay = retry_delay(attempt);
                tracing::warn!(request = %self.id, tile = %tile.name, attempt, ?delay, "recording tile failed, retrying: {e}");
                ctx.run_later(delay, move |act, ctx| {
                    act.record_until_done(tile, outcome, attempt + 1, ctx)
                });
            }
        }
    }

    fn pump_until_done(&mut self, attempt: u32, ctx: &mut Context<Self>) {
        if let Err(e) = self.pump(ctx) {
            let delay = retry_delay(attempt);
            tracing::warn!(request = %self.id, attempt, ?delay, "dispatching tiles failed, retrying: {e}");
            ctx.run_later(delay, move |act, ctx| act.pump_until_done(attempt + 1, ctx));
        }
    }

    /// Commits a tile's outcome: PROCESSED and charged, or back to PENDING / FAILED.
    fn record(&mut self, tile: &TileRecord, outcome: &TileOutcome) -> Result<()> {
        match &outcome.result {
            Ok(cost) => self
                .store
                .complete_tile(&self.id, &self.client, tile.id, *cost)?,
            Err(msg) => {
                let (status, attempts) = lifecycle::tile_on_event(
                    TileStatus::Processing,
                    outcome.attempts,
                    TileEvent::Fail,
                )?;
                tracing::warn!(request = %self.id, tile = %tile.name, attempts, "tile failed: {msg}");
                self.store
                    .set_tile_status(&self.id, tile.id, status, attempts, Some(msg))?;
            }
        }
        Ok(())
    }

    fn settle_if_idle(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        if self.in_flight > 0 {
            return Ok(());
        }
        let settling = match self.state.status {
            Status::Processing => self.dispatching,
            Status::Canceled | Status::Stopped => {
                !self.dispatching && self.settle_pending_after_cancel()
            }
            _ => false,
        };
        if !settling {
            return Ok(());
        }
        let counts = self.store.tile_counts(&self.id)?;
        if self.state.status == Status::Processing && counts.pending > 0 {
            return Ok(());
        }
        self.dispatching = false;
        if let Some(stats) = self.shared.stats.take_request(&self.id) {
            tracing::info!(request = %self.id, "where the time went: {}", stats.breakdown());
        }
        self.apply(
            Event::TilesSettled {
                processed: counts.processed,
                failed: counts.failed,
            },
            false,
            None,
            ctx,
        )
    }

    /// After a cancel, settle once more when the last in-flight tile came back (its
    /// charge was made at the cancel; this only refreshes the refund).
    fn settle_pending_after_cancel(&self) -> bool {
        self.store
            .tile_counts(&self.id)
            .map(|c| c.in_flight == 0)
            .unwrap_or(false)
    }

    fn handle_command(&mut self, command: Command, ctx: &mut Context<Self>) -> Result<()> {
        match command {
            Command::Act(event) => {
                if event == Event::Start && self.state.status == Status::Stopped {
                    self.check_restart_delay()?;
                }
                self.apply(event, true, None, ctx)
            }
            Command::RestartTile(tile_id) => {
                let tile = self.store.get_tile(&self.id, tile_id)?.ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "tile {tile_id} of request {} not found",
                        self.id
                    ))
                })?;
                if tile.status != TileStatus::Failed {
                    return Err(crate::api::ApiError::BadPayload(format!(
                        "tile {tile_id} is {}, only a FAILED tile can be restarted",
                        tile.status.as_str()
                    ))
                    .into());
                }
                self.requeue_only = Some(tile_id);
                let result = self.apply(Event::RestartPartial, true, None, ctx);
                self.requeue_only = None;
                result
            }
            Command::Update(patch) => {
                lifecycle::can_update(self.state)?;
                let mut record = self.store.get_request(None, &self.id)?.ok_or_else(|| {
                    EngineError::NotFound(format!("batch request {} not found", self.id))
                })?;
                crate::api::apply_update(&mut record.body, &patch);
                self.store.update_body(&self.id, &record.body)?;
                Ok(())
            }
            Command::Delete => {
                let counts = self.store.tile_counts(&self.id)?;
                lifecycle::can_delete(self.state, counts.processed)?;
                // The row now (the request is gone for the API); its tiles, possibly
                // millions, off this thread in short transactions. A crash in between
                // leaves orphans that the registry purges at the next start.
                self.store.delete_request_row(&self.id)?;
                let purge = (self.store.reopen(), self.id.clone());
                tokio::task::spawn_blocking(move || match purge {
                    (Ok(store), id) => {
                        if let Err(e) = store.purge_tiles(&id) {
                            tracing::error!(request = %id, "purging tiles: {e}");
                        }
                    }
                    (Err(e), id) => tracing::error!(request = %id, "purging tiles: {e}"),
                });
                self.registry.do_send(Forget {
                    id: self.id.clone(),
                });
                tracing::info!(request = %self.id, "deleted");
                // Forget drops the registry's address; with no address left the actor
                // stops and, its mailbox being closed, the supervisor does not restart it.
                Ok(())
            }
        }
    }
}

/// Backoff between retries of a store write: 50 ms doubling to 5 s.
fn retry_delay(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis((50u64 << attempt.min(7)).min(5_000))
}

impl RequestActor {
    /// A STOPPED request starts again only `restart_delay` after its STOP (the time of the
    /// last user action).
    fn check_restart_delay(&self) -> Result<()> {
        let delay = self.shared.config.restart_delay;
        if delay.is_zero() {
            return Ok(());
        }
        let stopped_at = self
            .store
            .get_request(None, &self.id)?
            .and_then(|r| r.user_action_updated)
            .and_then(|t| humantime::parse_rfc3339_weak(&t).ok());
        // No readable stop time: count the whole delay from now rather than skip it.
        let now = std::time::SystemTime::now();
        lifecycle::restart_wait(stopped_at.unwrap_or(now), now, delay)?;
        Ok(())
    }
}

/// The crash-note label of a request's analysis thread.
fn analysis_label(request: &str) -> String {
    format!("analysis {request}")
}

/// Whether a crash note labelled `label` concerns this tile: its own label (`tile
/// <request> <tile id>`, set by a worker that labels its thread), or any tile in flight
/// when the note names no tile.
fn crash_concerns_tile(label: &str, request: &str, tile: i64) -> bool {
    if label.starts_with("analysis ") {
        return false;
    }
    label.is_empty() || label == format!("tile {request} {tile}")
}

impl RequestActor {
    /// `recover_in_flight`, then: a tile it FAILED (its attempts used up by daemon
    /// crashes) gets the previous run's hard-cap reason as its error, when it concerns it.
    fn recover_with_crash_note(&mut self, crash: Option<(String, String)>) -> Result<u64> {
        let Some((reason, label)) = crash else {
            return Ok(self.store.recover_in_flight(&self.id)?);
        };
        let mut in_flight = Vec::new();
        for status in [
            TileStatus::Scheduled,
            TileStatus::Queued,
            TileStatus::Processing,
        ] {
            in_flight.extend(self.store.list_tiles(&self.id, Some(status), 0, 1 << 40)?);
        }
        let n = self.store.recover_in_flight(&self.id)?;
        for tile in in_flight {
            if !crash_concerns_tile(&label, &self.id, tile.id) {
                continue;
            }
            if let Some(now) = self.store.get_tile(&self.id, tile.id)? {
                if now.status == TileStatus::Failed {
                    let msg = format!(
                        "{reason} (the daemon stopped while processing this tile on each of \
                         its {} attempts)",
                        now.attempts
                    );
                    self.store.set_tile_status(
                        &self.id,
                        tile.id,
                        TileStatus::Failed,
                        now.attempts,
                        Some(&msg),
                    )?;
                }
            }
        }
        Ok(n)
    }
}

impl Actor for RequestActor {
    type Context = Context<Self>;
}

impl Supervised for RequestActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Rebuild from the store: the cached state may be stale after a failure.
        if let Ok(Some(r)) = self.store.get_request(None, &self.id) {
            self.state = state_of(&r);
        }
        self.job = None;
        self.in_flight = 0;
        self.dispatching = false;
    }
}

impl Handler<Apply> for RequestActor {
    type Result = ();

    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) {
        let result = self.handle_command(msg.command, ctx);
        let _ = msg.reply.send(result);
    }
}

impl Handler<Wake> for RequestActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        let result = (|| -> Result<()> {
            let crash = CountingAlloc::previous_crash();
            match self.state.status {
                Status::Analysing => match crash {
                    // Its own analysis aborted the previous run: running it again would too.
                    Some((reason, label)) if label == analysis_label(&self.id) => {
                        self.apply(Event::AnalysisFailed, false, Some(&reason), ctx)?;
                    }
                    _ => self.start_analysis(ctx),
                },
                Status::Processing => {
                    let n = self.recover_with_crash_note(crash)?;
                    tracing::info!(request = %self.id, recovered = n, "continuing processing");
                    self.dispatching = true;
                    self.pump(ctx)?;
                }
                Status::Canceled | Status::Stopped => {
                    // Tiles in flight at the crash were charged at the cancel or stop; they
                    // stay unprocessed (a stopped request's go back to PENDING for its
                    // next START).
                    self.store.recover_in_flight(&self.id)?;
                }
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(request = %self.id, "resume failed: {e}");
        }
    }
}
