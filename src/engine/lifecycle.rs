//! The batch request and tile state machines as pure functions.
//!
//! The engine (actors, store) only wires these together: it feeds an [`Event`], persists the
//! returned [`RequestState`] and then carries out the returned [`Effect`]s in order. Keeping
//! the rules here, free of I/O, lets every (state, event) pair be tested exhaustively.
//!
//! Rules follow the Batch v1 docs (seed text and `batch-api.md` §5.1, §6) plus the Batch v2
//! STOP action (`batch-api.md` §16): both APIs drive this one machine, and each renders the
//! states in its own wire enum (v2's explicit mapping is `api::v2`). Where the docs are
//! silent the choice is documented on [`on_event`], [`can_delete`], [`can_update`] and
//! [`tile_on_event`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Status of a batch request: the v1 wire enum plus v2's STOPPED (which the v1 client's
/// enum also knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Created,
    Analysing,
    AnalysisDone,
    Processing,
    Done,
    Partial,
    Failed,
    Canceled,
    /// Stopped by a v2 STOP: no tile is scheduled, and a START carries on with the tiles
    /// left (after the configured restart delay).
    Stopped,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Created,
        Status::Analysing,
        Status::AnalysisDone,
        Status::Processing,
        Status::Done,
        Status::Partial,
        Status::Failed,
        Status::Canceled,
        Status::Stopped,
    ];

    /// The wire value, e.g. `ANALYSIS_DONE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Analysing => "ANALYSING",
            Status::AnalysisDone => "ANALYSIS_DONE",
            Status::Processing => "PROCESSING",
            Status::Done => "DONE",
            Status::Partial => "PARTIAL",
            Status::Failed => "FAILED",
            Status::Canceled => "CANCELED",
            Status::Stopped => "STOPPED",
        }
    }

    /// Parses an exact (case-sensitive) wire value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// True when the engine has no more work for the request: DONE, PARTIAL, FAILED,
    /// CANCELED, STOPPED. PARTIAL and STOPPED count as terminal because only a user action
    /// (`restartpartial`, `start`) can move them again; a CANCELED or STOPPED request may
    /// still see late in-flight tiles settle, but its status does not change by itself.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Status::Done | Status::Partial | Status::Failed | Status::Canceled | Status::Stopped
        )
    }

    /// True while the engine drives the request on its own (analysis or tiles running):
    /// these are the requests to resume after a daemon restart.
    pub fn is_in_progress(&self) -> bool {
        matches!(self, Status::Analysing | Status::Processing)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last user action: the v1 wire enum plus v2's STOP (both clients know all five).
/// There is deliberately no `RESTART`: the Python clients reject it, so `restartpartial`
/// records `START`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserAction {
    None,
    Analyse,
    Start,
    Cancel,
    Stop,
}

impl UserAction {
    pub const ALL: [UserAction; 5] = [
        UserAction::None,
        UserAction::Analyse,
        UserAction::Start,
        UserAction::Cancel,
        UserAction::Stop,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            UserAction::None => "NONE",
            UserAction::Analyse => "ANALYSE",
            UserAction::Start => "START",
            UserAction::Cancel => "CANCEL",
            UserAction::Stop => "STOP",
        }
    }

    /// Parses an exact (case-sensitive) wire value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// True for `CANCEL`: once recorded, no later user action is accepted, so it is the
    /// final user action of the request.
    pub fn is_terminal(&self) -> bool {
        matches!(self, UserAction::Cancel)
    }
}

impl fmt::Display for UserAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of one output tile, exactly the v1 wire enum (any other value crashes the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TileStatus {
    Pending,
    Scheduled,
    /// Part of the wire enum but never entered by Tessera; if the store holds it, it is
    /// treated like SCHEDULED (see [`tile_on_event`]).
    Queued,
    Processing,
    Processed,
    Failed,
}

impl TileStatus {
    pub const ALL: [TileStatus; 6] = [
        TileStatus::Pending,
        TileStatus::Scheduled,
        TileStatus::Queued,
        TileStatus::Processing,
        TileStatus::Processed,
        TileStatus::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            TileStatus::Pending => "PENDING",
            TileStatus::Scheduled => "SCHEDULED",
            TileStatus::Queued => "QUEUED",
            TileStatus::Processing => "PROCESSING",
            TileStatus::Processed => "PROCESSED",
            TileStatus::Failed => "FAILED",
        }
    }

    /// Parses an exact (case-sensitive) wire value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// PROCESSED or FAILED: the workers are done with the tile. A request settles when all
    /// its tiles are terminal. FAILED can still be requeued by a user (`restartpartial`).
    pub fn is_terminal(&self) -> bool {
        matches!(self, TileStatus::Processed | TileStatus::Failed)
    }

    /// SCHEDULED, QUEUED or PROCESSING: work that a daemon restart interrupted; the engine
    /// sends [`TileEvent::Recover`] to exactly these tiles on start-up.
    pub fn is_in_flight(&self) -> bool {
        matches!(
            self,
            TileStatus::Scheduled | TileStatus::Queued | TileStatus::Processing
        )
    }
}

impl fmt::Display for TileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store keeps about a request's lifecycle.
///
/// The two flags record a user action accepted while ANALYSING (the analysis always runs to
/// its end). They are only meaningful in ANALYSING: every transition to another status
/// clears them, so a persisted state never carries stale intentions.
///
/// `cancel_when_analysed` is the *halt* flag: the request halts when its analysis ends, as
/// STOPPED when the user action that set it is STOP (v2), else as CANCELED (v1). A pending
/// STOP, unlike a pending CANCEL, can be taken back by START.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestState {
    pub status: Status,
    pub user_action: UserAction,
    pub start_when_analysed: bool,
    pub cancel_when_analysed: bool,
}

impl RequestState {
    /// A freshly created request: CREATED, no user action yet.
    pub const fn new() -> Self {
        Self {
            status: Status::Created,
            user_action: UserAction::None,
            start_when_analysed: false,
            cancel_when_analysed: false,
        }
    }

    fn settled(status: Status, user_action: UserAction) -> Self {
        Self {
            status,
            user_action,
            start_when_analysed: false,
            cancel_when_analysed: false,
        }
    }
}

impl Default for RequestState {
    fn default() -> Self {
        Self::new()
    }
}

/// Something that happened to a request: the four user actions (HTTP endpoints) and the
/// engine's internal outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Analyse,
    Start,
    Cancel,
    RestartPartial,
    /// v2 STOP: like CANCEL, but the request can be started again.
    Stop,
    AnalysisSucceeded,
    AnalysisFailed,
    /// No tile is pending or in flight any more; counts of this request's tiles.
    TilesSettled {
        processed: u64,
        failed: u64,
    },
}

impl Event {
    /// The user action this event records, or `None` for internal events.
    /// `RestartPartial` records `START` (never `RESTART`, which clients reject).
    pub fn user_action(&self) -> Option<UserAction> {
        match self {
            Event::Analyse => Some(UserAction::Analyse),
            Event::Start | Event::RestartPartial => Some(UserAction::Start),
            Event::Cancel => Some(UserAction::Cancel),
            Event::Stop => Some(UserAction::Stop),
            Event::AnalysisSucceeded | Event::AnalysisFailed | Event::TilesSettled { .. } => None,
        }
    }

    pub fn is_user_action(&self) -> bool {
        self.user_action().is_some()
    }
}

impl fmt::Display for Event {
    /// User events print as their endpoint name, so messages read "cannot start ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Analyse => f.write_str("analyse"),
            Event::Start => f.write_str("start"),
            Event::Cancel => f.write_str("cancel"),
            Event::RestartPartial => f.write_str("restartpartial"),
            Event::Stop => f.write_str("stop"),
            Event::AnalysisSucceeded => f.write_str("analysis succeeded"),
            Event::AnalysisFailed => f.write_str("analysis failed"),
            Event::TilesSettled { processed, failed } => {
                write!(f, "tiles settled ({processed} processed, {failed} failed)")
            }
        }
    }
}

/// Work the engine must do after persisting the new state, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Validate the evalscript, build the tile list (PENDING), compute `valueEstimate`.
    RunAnalysis,
    /// Reserve the PU for the tiles about to run (`accounting::reservation`).
    ReservePu,
    /// Hand every PENDING tile to the workers.
    QueueTiles,
    /// FAILED tiles -> PENDING ([`TileEvent::Requeue`]); comes before `ReservePu` so the
    /// reservation covers them.
    RequeueFailedTiles,
    /// Stop scheduling: PENDING tiles stay PENDING, in-flight tiles may still finish.
    StopTiles,
    /// Recompute charge/refund from the request's totals (`accounting::settle`). Idempotent
    /// by design: a CANCELED request settles again when late tiles finish.
    SettlePu,
}

/// A request operation that is not a state transition but is guarded by the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Delete,
    Update,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Delete => "delete",
            Operation::Update => "update",
        })
    }
}

/// The class of a [`LifecycleError`], so the HTTP layer can pick the status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A user action not allowed in the current state: HTTP 400.
    NotAllowed,
    /// PUT/DELETE against a request that is busy or has results: HTTP 409.
    Conflict,
    /// An internal event that makes no sense in the current state: an engine bug or race;
    /// log it (HTTP 500 if it ever reaches a response).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("cannot {event} the batch request: its status is {status} ({reason})")]
    NotAllowed {
        event: Event,
        status: Status,
        reason: &'static str,
    },
    #[error("cannot {operation} the batch request: its status is {status} ({reason})")]
    Conflict {
        operation: Operation,
        status: Status,
        reason: &'static str,
    },
    #[error("internal event '{event}' is not valid for a batch request in status {status}")]
    UnexpectedEvent { event: Event, status: Status },
    #[error("cannot {event} a tile whose status is {status} ({reason})")]
    TileNotAllowed {
        event: TileEvent,
        status: TileStatus,
        reason: &'static str,
    },
    #[error(
        "cannot start the batch request yet: it was stopped less than {delay_secs} s ago; \
         it can be started again in {remaining_secs} s"
    )]
    RestartTooEarly {
        delay_secs: u64,
        remaining_secs: u64,
    },
}

impl LifecycleError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LifecycleError::NotAllowed { .. } | LifecycleError::RestartTooEarly { .. } => {
                ErrorKind::NotAllowed
            }
            LifecycleError::Conflict { .. } => ErrorKind::Conflict,
            LifecycleError::UnexpectedEvent { .. } => ErrorKind::Internal,
            // Requeue is the only tile event a user triggers (legacy single-tile restart).
            LifecycleError::TileNotAllowed { event, .. } => match event {
                TileEvent::Requeue => ErrorKind::NotAllowed,
                _ => ErrorKind::Internal,
            },
        }
    }

    /// 400, 409 or 500, per [`ErrorKind`].
    pub fn http_status(&self) -> u16 {
        match self.kind() {
            ErrorKind::NotAllowed => 400,
            ErrorKind::Conflict => 409,
            ErrorKind::Internal => 500,
        }
    }
}

/// Applies one event to a request.
///
/// Accepted transitions (user events also set `user_action`; internal events keep it):
///
/// | status | event | new status | effects |
/// | --- | --- | --- | --- |
/// | CREATED | analyse | ANALYSING | RunAnalysis |
/// | CREATED | start | ANALYSING + start_when_analysed | RunAnalysis |
/// | CREATED, ANALYSIS_DONE | cancel | CANCELED | - |
/// | ANALYSING | start (no cancel pending) | ANALYSING + start_when_analysed | - |
/// | ANALYSING | cancel | ANALYSING + cancel_when_analysed | - |
/// | ANALYSING | analysis succeeded | CANCELED if cancel pending, else PROCESSING if start pending (ReservePu, QueueTiles), else ANALYSIS_DONE | |
/// | ANALYSING | analysis failed | FAILED (even with a cancel pending: the error is the more useful outcome) | - |
/// | ANALYSIS_DONE | start | PROCESSING | ReservePu, QueueTiles |
/// | PROCESSING | cancel | CANCELED | StopTiles, SettlePu |
/// | PROCESSING | tiles settled | DONE if none failed, FAILED if none processed, else PARTIAL | SettlePu |
/// | PARTIAL | restartpartial | PROCESSING, user action START | RequeueFailedTiles, ReservePu, QueueTiles |
/// | CANCELED | tiles settled | CANCELED (late in-flight tiles) | SettlePu |
/// | ANALYSING | stop (no cancel pending) | ANALYSING + halt flag, user action STOP | - |
/// | ANALYSING | analysis succeeded, halt flag with STOP | STOPPED | - |
/// | ANALYSING | start with a STOP pending | ANALYSING + start_when_analysed, halt cleared | - |
/// | ANALYSIS_DONE | stop | STOPPED | - |
/// | PROCESSING | stop | STOPPED | StopTiles, SettlePu |
/// | STOPPED | start | PROCESSING | ReservePu, QueueTiles |
/// | STOPPED | cancel | CANCELED (v1 ends a stopped request for good) | - |
/// | STOPPED | tiles settled | STOPPED (late in-flight tiles) | SettlePu |
///
/// STOP follows the v2 docs: allowed in ANALYSING (the analysis completes first),
/// ANALYSIS_DONE and PROCESSING; tiles processed or in flight are charged (as at a
/// cancel). The restart delay after a STOP is not part of this machine (it needs the
/// clock): see [`restart_wait`].
///
/// Repeating start, cancel or stop while ANALYSING is accepted (idempotent). Every other
/// user event is [`LifecycleError::NotAllowed`] (HTTP 400), notably: analyse outside
/// CREATED; start in PROCESSING or later (but STOPPED), or while a cancel is pending;
/// cancel in DONE, PARTIAL (processing is over), FAILED or CANCELED; stop in CREATED (nothing
/// runs), after processing or when stopped already; restartpartial outside PARTIAL
/// (including FAILED: the docs allow it from PARTIAL only). Every other internal event is
/// [`LifecycleError::UnexpectedEvent`]. TilesSettled with zero tiles gives DONE.
pub fn on_event(
    state: RequestState,
    event: Event,
) -> Result<(RequestState, Vec<Effect>), LifecycleError> {
    use Effect::*;
    let user_action = event.user_action().unwrap_or(state.user_action);
    let analysing = |start_when_analysed, cancel_when_analysed| RequestState {
        status: Status::Analysing,
        user_action,
        start_when_analysed,
        cancel_when_analysed,
    };
    let settled = |status| RequestState::settled(status, user_action);

    let outcome = match (state.status, event) {
        (Status::Created, Event::Analyse) => (analysing(false, false), vec![RunAnalysis]),
        (Status::Created, Event::Start) => (analysing(true, false), vec![RunAnalysis]),
        (Status::Created | Status::AnalysisDone, Event::Cancel) => {
            (settled(Status::Canceled), vec![])
        }
        (Status::Analysing, Event::Start) if !cancel_pending(state) => {
            (analysing(true, false), vec![])
        }
        (Status::Analysing, Event::Cancel) => (analysing(state.start_when_analysed, true), vec![]),
        (Status::Analysing, Event::Stop) if !cancel_pending(state) => {
            (analysing(state.start_when_analysed, true), vec![])
        }
        (Status::Analysing, Event::AnalysisSucceeded) => {
            if state.cancel_when_analysed && state.user_action == UserAction::Stop {
                (settled(Status::Stopped), vec![])
            } else if state.cancel_when_analysed {
                (settled(Status::Canceled), vec![])
            } else if state.start_when_analysed {
                (settled(Status::Processing), vec![ReservePu, QueueTiles])
            } else {
                (settled(Status::AnalysisDone), vec![])
            }
        }
        // A cancel stops the analysis's script: the request ends CANCELED, not FAILED. A v2
        // STOP lets the analysis run on, so a failure then is the analysis's own: FAILED.
        (Status::Analysing, Event::AnalysisFailed)
            if state.cancel_when_analysed && state.user_action != UserAction::Stop =>
        {
            (settled(Status::Canceled), vec![])
        }
        (Status::Analysing, Event::AnalysisFailed) => (settled(Status::Failed), vec![]),
        (Status::AnalysisDone, Event::Start) => {
            (settled(Status::Processing), vec![ReservePu, QueueTiles])
        }
        (Status::Processing, Event::Cancel) => {
            (settled(Status::Canceled), vec![StopTiles, SettlePu])
        }
        (Status::AnalysisDone, Event::Stop) => (settled(Status::Stopped), vec![]),
        (Status::Processing, Event::Stop) => (settled(Status::Stopped), vec![StopTiles, SettlePu]),
        (Status::Stopped, Event::Start) => {
            (settled(Status::Processing), vec![ReservePu, QueueTiles])
        }
        (Status::Stopped, Event::Cancel) => (settled(Status::Canceled), vec![]),
        (Status::Stopped, Event::TilesSettled { .. }) => (settled(Status::Stopped), vec![SettlePu]),
        (Status::Processing, Event::TilesSettled { processed, failed }) => {
            let status = if failed == 0 {
                Status::Done
            } else if processed == 0 {
                Status::Failed
            } else {
                Status::Partial
            };
            (settled(status), vec![SettlePu])
        }
        (Status::Partial, Event::RestartPartial) => (
            settled(Status::Processing),
            vec![RequeueFailedTiles, ReservePu, QueueTiles],
        ),
        (Status::Canceled, Event::TilesSettled { .. }) => {
            (settled(Status::Canceled), vec![SettlePu])
        }
        (status, event) if event.is_user_action() => {
            return Err(LifecycleError::NotAllowed {
                event,
                status,
                reason: rejection_reason(state, event),
            })
        }
        (status, event) => return Err(LifecycleError::UnexpectedEvent { event, status }),
    };
    Ok(outcome)
}

/// A CANCEL (not a STOP) is waiting for the analysis to end: it is final.
fn cancel_pending(state: RequestState) -> bool {
    state.cancel_when_analysed && state.user_action != UserAction::Stop
}

/// A hint the user can act on, for a rejected user event.
fn rejection_reason(state: RequestState, event: Event) -> &'static str {
    match (state.status, event) {
        (Status::Created, Event::Stop) => "nothing runs yet; a new request has nothing to stop",
        (Status::Stopped, Event::Stop) => "the request is already stopped",
        (Status::Stopped, _) => "the request is stopped; start it to carry on processing",
        (Status::Partial, Event::Analyse | Event::Start) => {
            "processing has finished; use restartpartial to reprocess the failed tiles"
        }
        (_, Event::RestartPartial) => "only PARTIAL requests can be restarted",
        (Status::Analysing, Event::Analyse) => "the analysis is already running",
        (Status::Analysing, _) => {
            "a cancel is pending; the request will be canceled when the analysis completes"
        }
        (Status::AnalysisDone, _) => "the request is already analysed; start or cancel it",
        (Status::Processing, _) => "the request is already processing",
        (Status::Done | Status::Partial, _) => "processing has already finished",
        (Status::Failed, _) => "the request has failed; create a new request",
        (Status::Canceled, _) => "the request was canceled; create a new request",
        // CREATED accepts every user action but restartpartial, handled above.
        (Status::Created, _) => "the action is not valid for a new request",
    }
}

/// How long a request stopped at `stopped_at` must still wait at `now` before a START is
/// accepted, for a configured `delay` (the hosted v2 service waits 30 minutes; Tessera's
/// default is 0). `Ok(())` when it may start now; a clock that went backwards counts as no
/// time elapsed.
pub fn restart_wait(
    stopped_at: std::time::SystemTime,
    now: std::time::SystemTime,
    delay: std::time::Duration,
) -> Result<(), LifecycleError> {
    let elapsed = now.duration_since(stopped_at).unwrap_or_default();
    if elapsed >= delay {
        return Ok(());
    }
    let remaining = delay - elapsed;
    Err(LifecycleError::RestartTooEarly {
        delay_secs: delay.as_secs(),
        // Rounded up: "0 s" must not be said while the request still refuses to start.
        remaining_secs: remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0),
    })
}

/// Whether `DELETE` may remove the request (`batch-api.md` §3 row 5), else a 409 Conflict.
///
/// Refused while PROCESSING, while ANALYSING unless the user has canceled it (the analysis
/// result is then discarded), and whenever any tile was processed (its PU were charged and
/// its output exists). Everything else may be deleted, including DONE with zero tiles.
pub fn can_delete(state: RequestState, processed_tiles: u64) -> Result<(), LifecycleError> {
    let conflict = |reason| {
        Err(LifecycleError::Conflict {
            operation: Operation::Delete,
            status: state.status,
            reason,
        })
    };
    match state.status {
        Status::Processing => conflict("the request is processing; cancel it first"),
        Status::Analysing if !state.cancel_when_analysed => {
            conflict("the request is being analysed; cancel it first")
        }
        _ if processed_tiles > 0 => conflict("the request has processed tiles"),
        _ => Ok(()),
    }
}

/// Whether `PUT` may change the request (`batch-api.md` §3 row 4: "not processing or
/// queued"), else a 409 Conflict. "Queued" is read as ANALYSING with a start pending (and no
/// cancel): the request is committed to processing, so its output must not change.
pub fn can_update(state: RequestState) -> Result<(), LifecycleError> {
    let queued = state.status == Status::Analysing
        && state.start_when_analysed
        && !state.cancel_when_analysed;
    if state.status == Status::Processing {
        Err(LifecycleError::Conflict {
            operation: Operation::Update,
            status: state.status,
            reason: "the request is processing",
        })
    } else if queued {
        Err(LifecycleError::Conflict {
            operation: Operation::Update,
            status: state.status,
            reason: "the request is queued to start processing after its analysis",
        })
    } else {
        Ok(())
    }
}

/// Something that happens to one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileEvent {
    /// The engine hands a PENDING tile to the worker queue.
    Schedule,
    /// A worker picks it up: one more attempt.
    Begin,
    Succeed,
    Fail,
    /// A user re-queues a FAILED tile (restartpartial, legacy tile restart).
    Requeue,
    /// Daemon restart: work in flight is lost and redone.
    Recover,
}

impl fmt::Display for TileEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TileEvent::Schedule => "schedule",
            TileEvent::Begin => "begin processing",
            TileEvent::Succeed => "complete",
            TileEvent::Fail => "fail",
            TileEvent::Requeue => "restart",
            TileEvent::Recover => "recover",
        })
    }
}

/// A tile goes back to PENDING after failed attempts 1 and 2, and is FAILED after the 3rd
/// (`batch-api.md` §6).
pub const MAX_TILE_ATTEMPTS: u32 = 3;

/// Applies one event to a tile with `attempts` processing attempts so far.
///
/// PENDING -schedule-> SCHEDULED; SCHEDULED|QUEUED -begin-> PROCESSING (attempts + 1);
/// PROCESSING -succeed-> PROCESSED; PROCESSING -fail-> PENDING while attempts <
/// [`MAX_TILE_ATTEMPTS`], else FAILED; FAILED -requeue-> PENDING (attempts reset to 0);
/// SCHEDULED|QUEUED -recover-> PENDING keeping attempts; PROCESSING -recover-> PENDING
/// keeping attempts while attempts < [`MAX_TILE_ATTEMPTS`], else FAILED: the interrupted
/// attempt counts, so a tile that takes the daemon down every time fails instead of
/// crashing it forever. Everything else is rejected.
pub fn tile_on_event(
    status: TileStatus,
    attempts: u32,
    event: TileEvent,
) -> Result<(TileStatus, u32), LifecycleError> {
    use TileStatus as T;
    match (status, event) {
        (T::Pending, TileEvent::Schedule) => Ok((T::Scheduled, attempts)),
        (T::Scheduled | T::Queued, TileEvent::Begin) => {
            Ok((T::Processing, attempts.saturating_add(1)))
        }
        (T::Processing, TileEvent::Succeed) => Ok((T::Processed, attempts)),
        (T::Processing, TileEvent::Fail) if attempts < MAX_TILE_ATTEMPTS => {
            Ok((T::Pending, attempts))
        }
        (T::Processing, TileEvent::Fail) => Ok((T::Failed, attempts)),
        (T::Failed, TileEvent::Requeue) => Ok((T::Pending, 0)),
        (T::Processing, TileEvent::Recover) if attempts >= MAX_TILE_ATTEMPTS => {
            Ok((T::Failed, attempts))
        }
        (T::Scheduled | T::Queued | T::Processing, TileEvent::Recover) => {
            Ok((T::Pending, attempts))
        }
        (status, event) => Err(LifecycleError::TileNotAllowed {
            event,
            status,
            reason: match event {
                TileEvent::Requeue => "only FAILED tiles can be restarted",
                TileEvent::Schedule => "only PENDING tiles can be scheduled",
                TileEvent::Begin => "only SCHEDULED or QUEUED tiles can start processing",
                TileEvent::Succeed | TileEvent::Fail => "the tile is not processing",
                TileEvent::Recover => "the tile is not in flight",
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use Effect::*;
    use Status as S;
    use UserAction as U;

    /// Expected outcome of one table row.
    #[derive(Debug)]
    enum Exp {
        To(S, U, bool, bool, &'static [Effect]),
        NotAllowed,
        Unexpected,
    }

    /// Input flags: `Any` rows are checked against all four flag combinations.
    #[derive(Debug, Clone, Copy)]
    enum Flags {
        Any,
        Is(bool, bool),
    }

    const TS: Event = Event::TilesSettled {
        processed: 3,
        failed: 1,
    };

    /// Hand-written: every status x every event (with ANALYSING for each flag combination),
    /// plus extra TilesSettled counts for PROCESSING.
    #[rustfmt::skip]
    fn request_table() -> Vec<(S, Flags, U, Event, Exp)> {
        use Event as E;
        use Exp::*;
        use Flags::*;
        let ff = Is(false, false);
        let tf = Is(true, false);
        let ft = Is(false, true);
        let tt = Is(true, true);
        vec![
            (S::Created, Any, U::None, E::Analyse, To(S::Analysing, U::Analyse, false, false, &[RunAnalysis])),
            (S::Created, Any, U::None, E::Start, To(S::Analysing, U::Start, true, false, &[RunAnalysis])),
            (S::Created, Any, U::None, E::Cancel, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::Created, Any, U::None, E::RestartPartial, NotAllowed),
            (S::Created, Any, U::None, E::AnalysisSucceeded, Unexpected),
            (S::Created, Any, U::None, E::AnalysisFailed, Unexpected),
            (S::Created, Any, U::None, TS, Unexpected),
            (S::Created, Any, U::None, E::Stop, NotAllowed),

            (S::Analysing, ff, U::Analyse, E::Analyse, NotAllowed),
            (S::Analysing, ff, U::Analyse, E::Start, To(S::Analysing, U::Start, true, false, &[])),
            (S::Analysing, ff, U::Analyse, E::Cancel, To(S::Analysing, U::Cancel, false, true, &[])),
            (S::Analysing, ff, U::Analyse, E::RestartPartial, NotAllowed),
            (S::Analysing, ff, U::Analyse, E::AnalysisSucceeded, To(S::AnalysisDone, U::Analyse, false, false, &[])),
            (S::Analysing, ff, U::Analyse, E::AnalysisFailed, To(S::Failed, U::Analyse, false, false, &[])),
            (S::Analysing, ff, U::Analyse, TS, Unexpected),
            (S::Analysing, ff, U::Analyse, E::Stop, To(S::Analysing, U::Stop, false, true, &[])),

            (S::Analysing, tf, U::Start, E::Analyse, NotAllowed),
            (S::Analysing, tf, U::Start, E::Start, To(S::Analysing, U::Start, true, false, &[])),
            (S::Analysing, tf, U::Start, E::Cancel, To(S::Analysing, U::Cancel, true, true, &[])),
            (S::Analysing, tf, U::Start, E::RestartPartial, NotAllowed),
            (S::Analysing, tf, U::Start, E::AnalysisSucceeded, To(S::Processing, U::Start, false, false, &[ReservePu, QueueTiles])),
            (S::Analysing, tf, U::Start, E::AnalysisFailed, To(S::Failed, U::Start, false, false, &[])),
            (S::Analysing, tf, U::Start, TS, Unexpected),
            (S::Analysing, tf, U::Start, E::Stop, To(S::Analysing, U::Stop, true, true, &[])),

            (S::Analysing, ft, U::Cancel, E::Analyse, NotAllowed),
            (S::Analysing, ft, U::Cancel, E::Start, NotAllowed),
            (S::Analysing, ft, U::Cancel, E::Cancel, To(S::Analysing, U::Cancel, false, true, &[])),
            (S::Analysing, ft, U::Cancel, E::RestartPartial, NotAllowed),
            (S::Analysing, ft, U::Cancel, E::AnalysisSucceeded, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::Analysing, ft, U::Cancel, E::AnalysisFailed, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::Analysing, ft, U::Cancel, TS, Unexpected),
            (S::Analysing, ft, U::Cancel, E::Stop, NotAllowed),

            // The halt flag set by a STOP: the analysis ends in STOPPED, and START takes it back.
            (S::Analysing, ft, U::Stop, E::Analyse, NotAllowed),
            (S::Analysing, ft, U::Stop, E::Start, To(S::Analysing, U::Start, true, false, &[])),
            (S::Analysing, ft, U::Stop, E::Cancel, To(S::Analysing, U::Cancel, false, true, &[])),
            (S::Analysing, ft, U::Stop, E::RestartPartial, NotAllowed),
            (S::Analysing, ft, U::Stop, E::AnalysisSucceeded, To(S::Stopped, U::Stop, false, false, &[])),
            (S::Analysing, ft, U::Stop, E::AnalysisFailed, To(S::Failed, U::Stop, false, false, &[])),
            (S::Analysing, ft, U::Stop, TS, Unexpected),
            (S::Analysing, ft, U::Stop, E::Stop, To(S::Analysing, U::Stop, false, true, &[])),

            (S::Analysing, tt, U::Cancel, E::Analyse, NotAllowed),
            (S::Analysing, tt, U::Cancel, E::Start, NotAllowed),
            (S::Analysing, tt, U::Cancel, E::Cancel, To(S::Analysing, U::Cancel, true, true, &[])),
            (S::Analysing, tt, U::Cancel, E::RestartPartial, NotAllowed),
            (S::Analysing, tt, U::Cancel, E::AnalysisSucceeded, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::Analysing, tt, U::Cancel, E::AnalysisFailed, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::Analysing, tt, U::Cancel, TS, Unexpected),
            (S::Analysing, tt, U::Cancel, E::Stop, NotAllowed),

            (S::Analysing, tt, U::Stop, E::Analyse, NotAllowed),
            (S::Analysing, tt, U::Stop, E::Start, To(S::Analysing, U::Start, true, false, &[])),
            (S::Analysing, tt, U::Stop, E::Cancel, To(S::Analysing, U::Cancel, true, true, &[])),
            (S::Analysing, tt, U::Stop, E::RestartPartial, NotAllowed),
            (S::Analysing, tt, U::Stop, E::AnalysisSucceeded, To(S::Stopped, U::Stop, false, false, &[])),
            (S::Analysing, tt, U::Stop, E::AnalysisFailed, To(S::Failed, U::Stop, false, false, &[])),
            (S::Analysing, tt, U::Stop, TS, Unexpected),
            (S::Analysing, tt, U::Stop, E::Stop, To(S::Analysing, U::Stop, true, true, &[])),

            (S::AnalysisDone, Any, U::Analyse, E::Analyse, NotAllowed),
            (S::AnalysisDone, Any, U::Analyse, E::Start, To(S::Processing, U::Start, false, false, &[ReservePu, QueueTiles])),
            (S::AnalysisDone, Any, U::Analyse, E::Cancel, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::AnalysisDone, Any, U::Analyse, E::RestartPartial, NotAllowed),
            (S::AnalysisDone, Any, U::Analyse, E::AnalysisSucceeded, Unexpected),
            (S::AnalysisDone, Any, U::Analyse, E::AnalysisFailed, Unexpected),
            (S::AnalysisDone, Any, U::Analyse, TS, Unexpected),
            (S::AnalysisDone, Any, U::Analyse, E::Stop, To(S::Stopped, U::Stop, false, false, &[])),

            (S::Processing, Any, U::Start, E::Analyse, NotAllowed),
            (S::Processing, Any, U::Start, E::Start, NotAllowed),
            (S::Processing, Any, U::Start, E::Cancel, To(S::Canceled, U::Cancel, false, false, &[StopTiles, SettlePu])),
            (S::Processing, Any, U::Start, E::RestartPartial, NotAllowed),
            (S::Processing, Any, U::Start, E::AnalysisSucceeded, Unexpected),
            (S::Processing, Any, U::Start, E::AnalysisFailed, Unexpected),
            (S::Processing, Any, U::Start, TS, To(S::Partial, U::Start, false, false, &[SettlePu])),
            (S::Processing, Any, U::Start, E::TilesSettled { processed: 0, failed: 0 }, To(S::Done, U::Start, false, false, &[SettlePu])),
            (S::Processing, Any, U::Start, E::TilesSettled { processed: 7, failed: 0 }, To(S::Done, U::Start, false, false, &[SettlePu])),
            (S::Processing, Any, U::Start, E::TilesSettled { processed: 0, failed: 2 }, To(S::Failed, U::Start, false, false, &[SettlePu])),
            (S::Processing, Any, U::Start, E::TilesSettled { processed: 1, failed: 9 }, To(S::Partial, U::Start, false, false, &[SettlePu])),
            (S::Processing, Any, U::Start, E::Stop, To(S::Stopped, U::Stop, false, false, &[StopTiles, SettlePu])),

            (S::Done, Any, U::Start, E::Analyse, NotAllowed),
            (S::Done, Any, U::Start, E::Start, NotAllowed),
            (S::Done, Any, U::Start, E::Cancel, NotAllowed),
            (S::Done, Any, U::Start, E::RestartPartial, NotAllowed),
            (S::Done, Any, U::Start, E::AnalysisSucceeded, Unexpected),
            (S::Done, Any, U::Start, E::AnalysisFailed, Unexpected),
            (S::Done, Any, U::Start, TS, Unexpected),
            (S::Done, Any, U::Start, E::Stop, NotAllowed),

            (S::Partial, Any, U::Start, E::Analyse, NotAllowed),
            (S::Partial, Any, U::Start, E::Start, NotAllowed),
            (S::Partial, Any, U::Start, E::Cancel, NotAllowed),
            (S::Partial, Any, U::Start, E::RestartPartial, To(S::Processing, U::Start, false, false, &[RequeueFailedTiles, ReservePu, QueueTiles])),
            (S::Partial, Any, U::Analyse, E::RestartPartial, To(S::Processing, U::Start, false, false, &[RequeueFailedTiles, ReservePu, QueueTiles])),
            (S::Partial, Any, U::Start, E::AnalysisSucceeded, Unexpected),
            (S::Partial, Any, U::Start, E::AnalysisFailed, Unexpected),
            (S::Partial, Any, U::Start, TS, Unexpected),
            (S::Partial, Any, U::Start, E::Stop, NotAllowed),

            (S::Failed, Any, U::Analyse, E::Analyse, NotAllowed),
            (S::Failed, Any, U::Analyse, E::Start, NotAllowed),
            (S::Failed, Any, U::Analyse, E::Cancel, NotAllowed),
            (S::Failed, Any, U::Analyse, E::RestartPartial, NotAllowed),
            (S::Failed, Any, U::Analyse, E::AnalysisSucceeded, Unexpected),
            (S::Failed, Any, U::Analyse, E::AnalysisFailed, Unexpected),
            (S::Failed, Any, U::Analyse, TS, Unexpected),
            (S::Failed, Any, U::Analyse, E::Stop, NotAllowed),

            (S::Canceled, Any, U::Cancel, E::Analyse, NotAllowed),
            (S::Canceled, Any, U::Cancel, E::Start, NotAllowed),
            (S::Canceled, Any, U::Cancel, E::Cancel, NotAllowed),
            (S::Canceled, Any, U::Cancel, E::RestartPartial, NotAllowed),
            (S::Canceled, Any, U::Cancel, E::AnalysisSucceeded, Unexpected),
            (S::Canceled, Any, U::Cancel, E::AnalysisFailed, Unexpected),
            (S::Canceled, Any, U::Cancel, TS, To(S::Canceled, U::Cancel, false, false, &[SettlePu])),
            (S::Canceled, Any, U::Cancel, E::Stop, NotAllowed),

            (S::Stopped, Any, U::Stop, E::Analyse, NotAllowed),
            (S::Stopped, Any, U::Stop, E::Start, To(S::Processing, U::Start, false, false, &[ReservePu, QueueTiles])),
            (S::Stopped, Any, U::Stop, E::Cancel, To(S::Canceled, U::Cancel, false, false, &[])),
            (S::Stopped, Any, U::Stop, E::RestartPartial, NotAllowed),
            (S::Stopped, Any, U::Stop, E::AnalysisSucceeded, Unexpected),
            (S::Stopped, Any, U::Stop, E::AnalysisFailed, Unexpected),
            (S::Stopped, Any, U::Stop, TS, To(S::Stopped, U::Stop, false, false, &[SettlePu])),
            (S::Stopped, Any, U::Stop, E::Stop, NotAllowed),
        ]
    }

    fn flag_combos(flags: Flags) -> Vec<(bool, bool)> {
        match flags {
            Flags::Any => vec![(false, false), (true, false), (false, true), (true, true)],
            Flags::Is(s, c) => vec![(s, c)],
        }
    }

    fn event_kind(e: Event) -> u8 {
        match e {
            Event::Analyse => 0,
            Event::Start => 1,
            Event::Cancel => 2,
            Event::RestartPartial => 3,
            Event::AnalysisSucceeded => 4,
            Event::AnalysisFailed => 5,
            Event::TilesSettled { .. } => 6,
            Event::Stop => 7,
        }
    }

    #[test]
    fn request_table_matches_every_state_and_event() {
        let mut checked = 0;
        for (status, flags, ua, event, exp) in request_table() {
            for (s, c) in flag_combos(flags) {
                let state = RequestState {
                    status,
                    user_action: ua,
                    start_when_analysed: s,
                    cancel_when_analysed: c,
                };
                let got = on_event(state, event);
                let ctx = format!("{state:?} + {event:?}");
                match (&exp, got) {
                    (Exp::To(st, u, ws, wc, effects), Ok((new, eff))) => {
                        let want = RequestState {
                            status: *st,
                            user_action: *u,
                            start_when_analysed: *ws,
                            cancel_when_analysed: *wc,
                        };
                        assert_eq!(new, want, "{ctx}");
                        assert_eq!(eff.as_slice(), *effects, "{ctx}");
                    }
                    (Exp::NotAllowed, Err(e)) => {
                        assert!(
                            matches!(e, LifecycleError::NotAllowed { event: ev, status: st, .. } if ev == event && st == status),
                            "{ctx}: {e:?}"
                        );
                        assert_eq!(e.http_status(), 400, "{ctx}");
                    }
                    (Exp::Unexpected, Err(e)) => {
                        assert_eq!(
                            e,
                            LifecycleError::UnexpectedEvent { event, status },
                            "{ctx}"
                        );
                        assert_eq!(e.kind(), ErrorKind::Internal, "{ctx}");
                    }
                    (exp, got) => panic!("{ctx}: expected {exp:?}, got {got:?}"),
                }
                checked += 1;
            }
        }
        // 69 rows with any flags (x4) + 48 ANALYSING rows with fixed flags.
        assert_eq!(checked, 69 * 4 + 48);
    }

    #[test]
    fn table_covers_every_status_event_and_analysing_flag_combo() {
        let mut seen = HashSet::new();
        for (status, flags, _, event, _) in request_table() {
            for (s, c) in flag_combos(flags) {
                seen.insert((status, event_kind(event), s, c));
            }
        }
        for status in Status::ALL {
            for kind in 0..8 {
                for s in [false, true] {
                    for c in [false, true] {
                        assert!(
                            seen.contains(&(status, kind, s, c)),
                            "missing row {status} event#{kind} flags ({s},{c})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn internal_events_keep_every_user_action() {
        for ua in UserAction::ALL {
            let state = RequestState {
                status: S::Processing,
                user_action: ua,
                start_when_analysed: false,
                cancel_when_analysed: false,
            };
            let (new, _) = on_event(state, TS).unwrap();
            assert_eq!(new.user_action, ua);
        }
    }

    #[test]
    fn restart_never_records_a_restart_action() {
        let state = RequestState {
            status: S::Partial,
            user_action: U::Start,
            ..RequestState::new()
        };
        let (new, _) = on_event(state, Event::RestartPartial).unwrap();
        assert_eq!(new.user_action.as_str(), "START");
    }

    #[test]
    fn full_flows() {
        // start from CREATED: analysis, then processing, then PARTIAL, restart, DONE.
        let mut st = RequestState::new();
        let steps: [(Event, S); 5] = [
            (Event::Start, S::Analysing),
            (Event::AnalysisSucceeded, S::Processing),
            (TS, S::Partial),
            (Event::RestartPartial, S::Processing),
            (
                Event::TilesSettled {
                    processed: 4,
                    failed: 0,
                },
                S::Done,
            ),
        ];
        for (event, want) in steps {
            st = on_event(st, event).unwrap().0;
            assert_eq!(st.status, want, "after {event:?}");
        }
        // cancel during analysis of a started request: analysis completes, then CANCELED.
        let mut st = RequestState::new();
        for event in [Event::Start, Event::Cancel] {
            st = on_event(st, event).unwrap().0;
        }
        assert_eq!(st.status, S::Analysing);
        assert!(can_delete(st, 0).is_ok());
        let (st, eff) = on_event(st, Event::AnalysisSucceeded).unwrap();
        assert_eq!((st.status, st.user_action), (S::Canceled, U::Cancel));
        assert!(eff.is_empty());
    }

    #[test]
    fn a_stopped_request_starts_again_and_finishes() {
        // The v2 flow: start, stop while processing, start again, done.
        let mut st = RequestState::new();
        let steps: [(Event, S, U); 6] = [
            (Event::Start, S::Analysing, U::Start),
            (Event::AnalysisSucceeded, S::Processing, U::Start),
            (Event::Stop, S::Stopped, U::Stop),
            // A tile in flight at the stop comes back: still STOPPED.
            (TS, S::Stopped, U::Stop),
            (Event::Start, S::Processing, U::Start),
            (
                Event::TilesSettled {
                    processed: 4,
                    failed: 0,
                },
                S::Done,
                U::Start,
            ),
        ];
        for (event, want, ua) in steps {
            st = on_event(st, event).unwrap().0;
            assert_eq!((st.status, st.user_action), (want, ua), "after {event:?}");
        }
        // Stopped during analysis: the analysis completes, then STOPPED with its tiles.
        let mut st = RequestState::new();
        for event in [Event::Start, Event::Stop] {
            st = on_event(st, event).unwrap().0;
        }
        assert_eq!((st.status, st.user_action), (S::Analysing, U::Stop));
        let (st, eff) = on_event(st, Event::AnalysisSucceeded).unwrap();
        assert_eq!(st.status, S::Stopped);
        assert!(
            eff.is_empty(),
            "a stop pending at analysis end queues nothing"
        );
        let (st, eff) = on_event(st, Event::Start).unwrap();
        assert_eq!(st.status, S::Processing);
        assert_eq!(eff, [ReservePu, QueueTiles]);
    }

    #[test]
    fn restart_waits_for_the_configured_delay() {
        use std::time::{Duration, SystemTime};
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let half_hour = Duration::from_secs(1800);
        // Default delay 0: at once, even with a clock that went backwards.
        assert!(restart_wait(t0, t0, Duration::ZERO).is_ok());
        assert!(restart_wait(t0, t0 - Duration::from_secs(5), Duration::ZERO).is_ok());
        assert!(restart_wait(t0, t0 + half_hour, half_hour).is_ok());
        assert!(restart_wait(t0, t0 + Duration::from_secs(4000), half_hour).is_ok());
        let e = restart_wait(t0, t0 + Duration::from_millis(600_500), half_hour).unwrap_err();
        assert_eq!(
            e,
            LifecycleError::RestartTooEarly {
                delay_secs: 1800,
                remaining_secs: 1200
            }
        );
        assert_eq!(e.http_status(), 400);
        assert!(e.to_string().contains("1200 s"), "{e}");
        // Backwards clock: no time elapsed, the whole delay is left.
        let e = restart_wait(t0, t0 - Duration::from_secs(10), half_hour).unwrap_err();
        assert!(matches!(
            e,
            LifecycleError::RestartTooEarly {
                remaining_secs: 1800,
                ..
            }
        ));
    }

    #[test]
    fn error_messages_name_action_and_status() {
        let st = RequestState {
            status: S::Done,
            user_action: U::Start,
            ..RequestState::new()
        };
        let e = on_event(st, Event::Start).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot start the batch request: its status is DONE (processing has already finished)"
        );
        let st = RequestState {
            status: S::Failed,
            ..RequestState::new()
        };
        let e = on_event(st, Event::RestartPartial).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot restartpartial the batch request: its status is FAILED (only PARTIAL requests can be restarted)"
        );
        let e = can_delete(
            RequestState {
                status: S::Processing,
                ..RequestState::new()
            },
            0,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot delete the batch request: its status is PROCESSING (the request is processing; cancel it first)"
        );
        assert_eq!(e.http_status(), 409);
    }

    #[rustfmt::skip]
    #[test]
    fn can_delete_table() {
        // (status, start_when_analysed, cancel_when_analysed, processed tiles, allowed)
        let rows = [
            (S::Created, false, false, 0, true),
            (S::Created, false, false, 1, false),
            (S::Analysing, false, false, 0, false),
            (S::Analysing, true, false, 0, false),
            (S::Analysing, false, true, 0, true),
            (S::Analysing, true, true, 0, true),
            (S::Analysing, false, true, 2, false),
            (S::AnalysisDone, false, false, 0, true),
            (S::Processing, false, false, 0, false),
            (S::Processing, false, false, 5, false),
            (S::Done, false, false, 0, true),
            (S::Done, false, false, 5, false),
            (S::Partial, false, false, 0, true),
            (S::Partial, false, false, 3, false),
            (S::Failed, false, false, 0, true),
            (S::Canceled, false, false, 0, true),
            (S::Canceled, false, false, 3, false),
        ];
        for (status, s, c, processed, allowed) in rows {
            let st = RequestState { status, user_action: U::None, start_when_analysed: s, cancel_when_analysed: c };
            match can_delete(st, processed) {
                Ok(()) => assert!(allowed, "{st:?} {processed}"),
                Err(e) => {
                    assert!(!allowed, "{st:?} {processed}");
                    assert_eq!(e.kind(), ErrorKind::Conflict);
                    assert_eq!(e.http_status(), 409);
                }
            }
        }
    }

    #[rustfmt::skip]
    #[test]
    fn can_update_table() {
        let rows = [
            (S::Created, false, false, true),
            (S::Analysing, false, false, true),
            (S::Analysing, true, false, false),
            (S::Analysing, false, true, true),
            (S::Analysing, true, true, true),
            (S::AnalysisDone, false, false, true),
            (S::Processing, false, false, false),
            (S::Done, false, false, true),
            (S::Partial, false, false, true),
            (S::Failed, false, false, true),
            (S::Canceled, false, false, true),
        ];
        for (status, s, c, allowed) in rows {
            let st = RequestState { status, user_action: U::None, start_when_analysed: s, cancel_when_analysed: c };
            let got = can_update(st);
            assert_eq!(got.is_ok(), allowed, "{st:?}");
            if let Err(e) = got {
                assert_eq!(e.http_status(), 409);
            }
        }
    }

    #[test]
    fn wire_values_round_trip() {
        let statuses = [
            (S::Created, "CREATED"),
            (S::Analysing, "ANALYSING"),
            (S::AnalysisDone, "ANALYSIS_DONE"),
            (S::Processing, "PROCESSING"),
            (S::Done, "DONE"),
            (S::Partial, "PARTIAL"),
            (S::Failed, "FAILED"),
            (S::Canceled, "CANCELED"),
            (S::Stopped, "STOPPED"),
        ];
        for (v, s) in statuses {
            assert_eq!(v.as_str(), s);
            assert_eq!(Status::parse(s), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<Status>(&format!("\"{s}\"")).unwrap(),
                v
            );
        }
        let actions = [
            (U::None, "NONE"),
            (U::Analyse, "ANALYSE"),
            (U::Start, "START"),
            (U::Cancel, "CANCEL"),
            (U::Stop, "STOP"),
        ];
        for (v, s) in actions {
            assert_eq!(v.as_str(), s);
            assert_eq!(UserAction::parse(s), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<UserAction>(&format!("\"{s}\"")).unwrap(),
                v
            );
        }
        let tiles = [
            (TileStatus::Pending, "PENDING"),
            (TileStatus::Scheduled, "SCHEDULED"),
            (TileStatus::Queued, "QUEUED"),
            (TileStatus::Processing, "PROCESSING"),
            (TileStatus::Processed, "PROCESSED"),
            (TileStatus::Failed, "FAILED"),
        ];
        for (v, s) in tiles {
            assert_eq!(v.as_str(), s);
            assert_eq!(TileStatus::parse(s), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<TileStatus>(&format!("\"{s}\"")).unwrap(),
                v
            );
        }
        for bad in [
            "",
            "done",
            "RESTART",
            "STOPPING",
            "CANCELLED",
            "analysis_done",
        ] {
            assert_eq!(Status::parse(bad), None, "{bad}");
            assert_eq!(UserAction::parse(bad), None, "{bad}");
            assert_eq!(TileStatus::parse(bad), None, "{bad}");
        }
        assert!(serde_json::from_str::<UserAction>("\"RESTART\"").is_err());
    }

    #[test]
    fn terminal_predicates() {
        let terminal: Vec<S> = Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [S::Done, S::Partial, S::Failed, S::Canceled, S::Stopped]
        );
        let running: Vec<S> = Status::ALL
            .into_iter()
            .filter(|s| s.is_in_progress())
            .collect();
        assert_eq!(running, [S::Analysing, S::Processing]);
        let ua: Vec<U> = UserAction::ALL
            .into_iter()
            .filter(|u| u.is_terminal())
            .collect();
        assert_eq!(ua, [U::Cancel]);
        let t: Vec<TileStatus> = TileStatus::ALL
            .into_iter()
            .filter(|t| t.is_terminal())
            .collect();
        assert_eq!(t, [TileStatus::Processed, TileStatus::Failed]);
        let f: Vec<TileStatus> = TileStatus::ALL
            .into_iter()
            .filter(|t| t.is_in_flight())
            .collect();
        assert_eq!(
            f,
            [
                TileStatus::Scheduled,
                TileStatus::Queued,
                TileStatus::Processing
            ]
        );
    }

    /// (status, attempts, event, expected (status, attempts) or None for a rejection).
    type TileRow = (TileStatus, u32, TileEvent, Option<(TileStatus, u32)>);

    /// Hand-written: every tile status x every tile event, plus attempt-count variants.
    #[rustfmt::skip]
    fn tile_table() -> Vec<TileRow> {
        use TileEvent as E;
        use TileStatus as T;
        vec![
            (T::Pending, 0, E::Schedule, Some((T::Scheduled, 0))),
            (T::Pending, 2, E::Schedule, Some((T::Scheduled, 2))),
            (T::Pending, 0, E::Begin, None),
            (T::Pending, 0, E::Succeed, None),
            (T::Pending, 0, E::Fail, None),
            (T::Pending, 0, E::Requeue, None),
            (T::Pending, 1, E::Recover, None),

            (T::Scheduled, 0, E::Schedule, None),
            (T::Scheduled, 0, E::Begin, Some((T::Processing, 1))),
            (T::Scheduled, 2, E::Begin, Some((T::Processing, 3))),
            (T::Scheduled, u32::MAX, E::Begin, Some((T::Processing, u32::MAX))),
            (T::Scheduled, 0, E::Succeed, None),
            (T::Scheduled, 0, E::Fail, None),
            (T::Scheduled, 0, E::Requeue, None),
            (T::Scheduled, 0, E::Recover, Some((T::Pending, 0))),
            (T::Scheduled, 2, E::Recover, Some((T::Pending, 2))),

            (T::Queued, 1, E::Schedule, None),
            (T::Queued, 1, E::Begin, Some((T::Processing, 2))),
            (T::Queued, 1, E::Succeed, None),
            (T::Queued, 1, E::Fail, None),
            (T::Queued, 1, E::Requeue, None),
            (T::Queued, 1, E::Recover, Some((T::Pending, 1))),

            (T::Processing, 1, E::Schedule, None),
            (T::Processing, 1, E::Begin, None),
            (T::Processing, 1, E::Succeed, Some((T::Processed, 1))),
            (T::Processing, 3, E::Succeed, Some((T::Processed, 3))),
            (T::Processing, 1, E::Fail, Some((T::Pending, 1))),
            (T::Processing, 2, E::Fail, Some((T::Pending, 2))),
            (T::Processing, 3, E::Fail, Some((T::Failed, 3))),
            (T::Processing, 4, E::Fail, Some((T::Failed, 4))),
            (T::Processing, 1, E::Requeue, None),
            (T::Processing, 1, E::Recover, Some((T::Pending, 1))),
            (T::Processing, 2, E::Recover, Some((T::Pending, 2))),
            (T::Processing, 3, E::Recover, Some((T::Failed, 3))),
            (T::Scheduled, 3, E::Recover, Some((T::Pending, 3))),

            (T::Processed, 1, E::Schedule, None),
            (T::Processed, 1, E::Begin, None),
            (T::Processed, 1, E::Succeed, None),
            (T::Processed, 1, E::Fail, None),
            (T::Processed, 1, E::Requeue, None),
            (T::Processed, 1, E::Recover, None),

            (T::Failed, 3, E::Schedule, None),
            (T::Failed, 3, E::Begin, None),
            (T::Failed, 3, E::Succeed, None),
            (T::Failed, 3, E::Fail, None),
            (T::Failed, 3, E::Requeue, Some((T::Pending, 0))),
            (T::Failed, 3, E::Recover, None),
        ]
    }

    #[test]
    fn tile_table_matches_every_status_and_event() {
        for (status, attempts, event, want) in tile_table() {
            let got = tile_on_event(status, attempts, event);
            match want {
                Some(w) => assert_eq!(got, Ok(w), "{status} {attempts} {event:?}"),
                None => {
                    let e = got.expect_err("must be rejected");
                    assert!(
                        matches!(e, LifecycleError::TileNotAllowed { event: ev, status: st, .. } if ev == event && st == status),
                        "{e:?}"
                    );
                    let want_http = if event == TileEvent::Requeue {
                        400
                    } else {
                        500
                    };
                    assert_eq!(e.http_status(), want_http);
                }
            }
        }
    }

    #[test]
    fn tile_table_covers_every_pair() {
        let seen: HashSet<(TileStatus, TileEvent)> = tile_table()
            .into_iter()
            .map(|(s, _, e, _)| (s, e))
            .collect();
        use TileEvent as E;
        for s in TileStatus::ALL {
            for e in [
                E::Schedule,
                E::Begin,
                E::Succeed,
                E::Fail,
                E::Requeue,
                E::Recover,
            ] {
                assert!(seen.contains(&(s, e)), "missing {s} {e:?}");
            }
        }
    }

    #[test]
    fn a_tile_fails_for_good_on_its_third_failed_attempt() {
        let (mut st, mut attempts) = (TileStatus::Pending, 0);
        let mut returned_to_pending = 0;
        loop {
            (st, attempts) = tile_on_event(st, attempts, TileEvent::Schedule).unwrap();
            (st, attempts) = tile_on_event(st, attempts, TileEvent::Begin).unwrap();
            (st, attempts) = tile_on_event(st, attempts, TileEvent::Fail).unwrap();
            if st == TileStatus::Failed {
                break;
            }
            returned_to_pending += 1;
        }
        assert_eq!((returned_to_pending, attempts), (2, 3));
        let e = tile_on_event(TileStatus::Processed, 1, TileEvent::Requeue).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot restart a tile whose status is PROCESSED (only FAILED tiles can be restarted)"
        );
    }
}
