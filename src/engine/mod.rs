//! The batch engine: an actix actor system that owns every running request.
//!
//! * [`Engine`] is the handle a program (or the HTTP layer) holds. Reads go straight to
//!   the store; anything that changes a request is a message to its actor, so the changes
//!   to one request are serialised.
//! * `registry::Registry` supervises one `request::RequestActor` per live request and
//!   resumes unfinished requests from the store at start.
//! * `worker::TileWorker`s, one per core on a `SyncArbiter`, run the tile pipeline
//!   (read -> evaluate -> encode -> write) on their own threads, since boa is `!Send`.
//!
//! The store is the truth and actors are caches: each transition is committed before it is
//! acknowledged, and a restart rebuilds every actor from what the store holds.

pub mod lifecycle;

mod admission;
mod analysis;
mod artifacts;
mod fair;
mod outputs;
mod pool;
mod process;
mod registry;
mod request;
mod stats;
mod v2;
mod worker;

pub use outputs::OutputPolicy;
pub use v2::TaskView;

pub use process::{die_with_parent, serve_worker_process, WORKER_SUBCOMMAND};
pub use stats::StatsSnapshot;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::{Map, Value};

use crate::api::{self, RequestRecord, TileRecord};
use crate::store::{RequestSort, StaleAges, Store, StoreError, TileCounts};
use lifecycle::{Event, LifecycleError, RequestState, Status, TileStatus, UserAction};

/// How an engine runs. `Default` gives the embedded defaults of `tessera serve`.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The SQLite file: every request, tile and PU entry.
    pub db_path: PathBuf,
    /// Base folder for relative output paths and the local stand-in for `s3://` buckets.
    pub data_dir: PathBuf,
    /// Tile workers (threads evaluating scripts); defaults to the number of cores.
    pub workers: usize,
    /// Ages after which stale requests are deleted.
    pub stale: StaleAges,
    /// How often stale requests are looked for.
    pub janitor_interval: Duration,
    /// Wall-clock budget for one tile's evaluation.
    pub tile_time_budget: Duration,
    /// Wall-clock budget of a script's top-level code plus `setup()` (analysis, and each
    /// worker's first tile of a request).
    pub setup_time_budget: Duration,
    /// Run tiles in `tessera worker` child processes of this executable (`tessera serve`'s
    /// default) instead of threads of this process: a tile that kills its process fails
    /// alone. `None`: threads (the embedded default).
    pub worker_processes: Option<PathBuf>,
    /// Test hook: the worker panics on the first attempt of the tile with this name.
    #[doc(hidden)]
    pub inject_panic_once: Option<String>,
    /// Where the STAC collections come from and how remote files are read.
    pub data: crate::data::DataConfig,
    /// The documented request limits (tiles, area, buffers, sizes; README "Limits").
    pub limits: crate::api::Limits,
    /// Where clients may write outputs (confined per client by default).
    pub outputs: OutputPolicy,
    /// How long a STOPPED request refuses START (the hosted v2 service: 30 minutes).
    pub restart_delay: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        EngineConfig {
            db_path: PathBuf::from("tessera.db"),
            data_dir: PathBuf::from("tessera-data"),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            stale: StaleAges {
                failed: Duration::from_secs(30 * DAY),
                unstarted: Duration::from_secs(30 * DAY),
                finished: Duration::from_secs(90 * DAY),
            },
            janitor_interval: Duration::from_secs(3600),
            tile_time_budget: Duration::from_secs(600),
            setup_time_budget: Duration::from_secs(5),
            worker_processes: None,
            inject_panic_once: None,
            data: crate::data::DataConfig::default(),
            limits: crate::api::Limits::default(),
            outputs: OutputPolicy::default(),
            restart_delay: Duration::ZERO,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    BadRequest(#[from] api::ApiError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the engine is not running")]
    Stopped,
    #[error("the engine is busy with other requests' actions; retry shortly")]
    Busy,
    #[error("cannot start the engine: {0}")]
    Start(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// A user's request to change a batch request: the actions of the API.
#[derive(Debug, Clone)]
pub enum Command {
    Act(Event),
    /// The legacy single-tile restart: like RESTARTPARTIAL, for one FAILED tile.
    RestartTile(i64),
    Update(Map<String, Value>),
    Delete,
}

/// A page of a list: the items and the token of the next page, if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

/// Progress of one request, for monitors and progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub status: Status,
    pub tiles: TileCounts,
    pub tile_count: i64,
}

/// The handle to a running engine. Cheap to clone; the engine stops when the last handle
/// is dropped. Methods block briefly (SQLite reads, or a message round trip to an actor):
/// call them from a blocking context or `spawn_blocking`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    reader: Store,
    registry: Addr<registry::Registry>,
    system: System,
    config: Arc<EngineConfig>,
    stats: Arc<stats::Stats>,
    admission: admission::Admission,
}

/// User commands queued for actors at most at once, and how long one more waits for a slot.
const MAX_COMMANDS_IN_FLIGHT: usize = 256;
const ADMISSION_WAIT: Duration = Duration::from_secs(10);

impl Drop for Inner {
    fn drop(&mut self) {
        self.system.stop();
    }
}

impl Engine {
    /// Opens the store, starts the actor system on its own thread and resumes every
    /// unfinished request.
    pub fn start(config: EngineConfig) -> Result<Engine> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| EngineError::Start(format!("{}: {e}", config.data_dir.display())))?;
        let reader = Store::open(&config.db_path)?;
        crate::evalscript::set_setup_time_budget(config.setup_time_budget);
        // BYOC collections are read from this database's tile index.
        crate::data::byoc::set_index(&config.db_path)
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel();
        let cfg = config.clone();
        let stats = Arc::new(stats::Stats::default());
        let worker_stats = stats.clone();
        std::thread::Builder::new()
            .name("tessera-engine".into())
            .spawn(move || {
                let system = System::new();
                let started = system.block_on(async {
                    let registry = registry::Registry::start_with(cfg, worker_stats)?;
                    Ok::<_, EngineError>(registry)
                });
                let ok = started.is_ok();
                let _ = tx.send(started.map(|r| (r, System::current())));
                if ok {
                    let _ = system.run();
                }
            })
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let (registry, system) = rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Engine {
            inner: Arc::new(Inner {
                reader,
                registry,
                system,
                config,
                stats,
                admission: admission::Admission::new(MAX_COMMANDS_IN_FLIGHT),
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Cumulative per-stage tile timings since this engine started.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The store this handle reads from (one connection; for embedding programs and tools).
    pub fn store(&self) -> &Store {
        &self.inner.reader
    }

    /// Validates a create body and stores the request as CREATED with its estimated tile
    /// count. Nothing is stored when validation fails.
    pub fn create(&self, client: &str, body: &Value) -> Result<RequestRecord> {
        let limits = &self.inner.config.limits;
        let normalised = api::normalise_create(body)?;
        api::limits::check_body(&normalised, limits).map_err(api::ApiError::from)?;
        let spec = api::validate(&normalised)?;
        self.insert_new(client, normalised, &spec, None)
    }

    /// Stores a validated request as CREATED (with its v2 delivery credentials, if any),
    /// after the checks both APIs share: footprint, tile count and output scope.
    fn insert_new(
        &self,
        client: &str,
        normalised: Map<String, Value>,
        spec: &api::BatchSpec,
        credentials: Option<&api::v2::DeliveryCredentials>,
    ) -> Result<RequestRecord> {
        let limits = &self.inner.config.limits;
        let (w, h) = analysis::tile_size_px(&spec.tiling);
        let side = |px: i64, buffer: i32| (px.max(0) + 2 * buffer.max(0) as i64) as u64;
        api::limits::check_footprint(
            &api::limits::Footprint {
                area_km2: spec.aoi.area_km2(),
                tile_px: (side(w, spec.tiling.buffer_x), side(h, spec.tiling.buffer_y)),
            },
            limits,
        )
        .map_err(api::ApiError::from)?;
        // Issue 12: the output location must be in the client's scope.
        self.inner.config.outputs.check_create(
            &self.inner.reader,
            client,
            spec,
            credentials.is_some(),
        )?;
        // Counting cells is cheaper than building every tile's name and footprint; the
        // exact list is made by the analysis.
        let tile_count =
            match crate::grid::count_tiles_with_limit(&spec.aoi, &spec.tiling, limits.max_tiles) {
                Err(crate::grid::GridError::TooManyTiles { .. }) => {
                    limits.max_tiles.saturating_add(1)
                }
                other => other.map_err(api::ApiError::from)?,
            };
        api::limits::check_tiles(tile_count, limits).map_err(api::ApiError::from)?;
        if tile_count == 0 {
            return Err(api::ApiError::BadPayload(
                "the area of interest does not intersect any tile of the tiling grid".into(),
            )
            .into());
        }
        let record = RequestRecord {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client.to_string(),
            created: crate::store::now_rfc3339(),
            body: normalised,
            status: Status::Created,
            user_action: UserAction::None,
            user_action_updated: None,
            start_when_analysed: false,
            cancel_when_analysed: false,
            tile_count: tile_count as i64,
            tile_width_px: w,
            tile_height_px: h,
            value_estimate: None,
            error: None,
        };
        self.inner
            .reader
            .insert_request_with_credentials(&record, credentials)?;
        tracing::info!(request = %record.id, tiles = record.tile_count, "created");
        Ok(record)
    }

    pub fn get(&self, client: &str, id: &str) -> Result<RequestRecord> {
        self.inner
            .reader
            .get_request(Some(client), id)?
            .ok_or_else(|| not_found(id))
    }

    pub fn list(
        &self,
        client: &str,
        sort: RequestSort,
        offset: u64,
        count: u64,
    ) -> Result<Page<RequestRecord>> {
        // Bounded in bytes too (`Limits::max_page_bytes`): a page of large bodies stops
        // early and the rest follows through `nextToken`.
        let page = self.inner.reader.list_requests_bounded(
            client,
            sort,
            offset,
            count + 1,
            self.inner.config.limits.max_page_bytes,
        )?;
        let mut items = page.items;
        let more = page.cut_short || items.len() as u64 > count;
        items.truncate(count as usize);
        let next = more.then(|| offset + items.len() as u64);
        Ok(Page { items, next })
    }

    /// A page of tiles from list position `from` (the pagination token).
    pub fn tiles(
        &self,
        client: &str,
        id: &str,
        status: Option<TileStatus>,
        from: u64,
        count: u64,
    ) -> Result<Page<TileRecord>> {
        self.get(client, id)?;
        let mut items = self
            .inner
            .reader
            .list_tiles(id, status, from as i64, count + 1)?;
        let next = if items.len() as u64 > count {
            items.pop().map(|t| t.seq as u64)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    pub fn tile(&self, client: &str, id: &str, tile_id: i64) -> Result<TileRecord> {
        self.get(client, id)?;
        self.inner.reader.get_tile(id, tile_id)?.ok_or_else(|| {
            EngineError::NotFound(format!("tile {tile_id} of request {id} not found"))
        })
    }

    pub fn progress(&self, client: &str, id: &str) -> Result<Progress> {
        let r = self.get(client, id)?;
        Ok(Progress {
            status: r.status,
            tiles: self.inner.reader.tile_counts(id)?,
            tile_count: r.tile_count,
        })
    }

    /// ANALYSE, START, CANCEL or RESTARTPARTIAL; the new state is committed on return.
    pub fn act(&self, client: &str, id: &str, event: Event) -> Result<()> {
        self.command(client, id, Command::Act(event)).map(|_| ())
    }

    /// Legacy `POST .../tiles/{tileId}/restart`: re-queues one FAILED tile.
    pub fn restart_tile(&self, client: &str, id: &str, tile_id: i64) -> Result<()> {
        self.command(client, id, Command::RestartTile(tile_id))
            .map(|_| ())
    }

    /// PUT: `description` and `output.collectionId` only, not while processing.
    pub fn update(&self, client: &str, id: &str, body: &Value) -> Result<RequestRecord> {
        let patch = api::validate_update(body)?;
        api::limits::check_description(patch.get("description"), &self.inner.config.limits)
            .map_err(api::ApiError::from)?;
        self.command(client, id, Command::Update(patch))?;
        self.get(client, id)
    }

    /// DELETE: the request and its tiles go; the outputs stay.
    pub fn delete(&self, client: &str, id: &str) -> Result<()> {
        self.command(client, id, Command::Delete).map(|_| ())
    }

    fn command(&self, client: &str, id: &str, command: Command) -> Result<()> {
        // Ownership is checked here, so another client's id is indistinguishable from an
        // unknown one (404), as on the hosted service.
        self.get(client, id)?;
        // Bounded by the admission counter rather than the registry's mailbox, so a burst
        // waits its turn instead of failing (`do_send` ignores the mailbox capacity).
        let _permit = self
            .inner
            .admission
            .acquire(ADMISSION_WAIT)
            .ok_or(EngineError::Busy)?;
        let (reply, rx) = mpsc::channel();
        if !self.inner.registry.connected() {
            return Err(EngineError::Stopped);
        }
        self.inner.registry.do_send(registry::Route {
            id: id.to_string(),
            command,
            reply,
        });
        rx.recv().map_err(|_| EngineError::Stopped)?
    }

    /// Deletes stale requests now (the janitor also does it periodically).
    pub fn delete_stale(&self) -> Result<Vec<String>> {
        let ids = self.inner.reader.delete_stale(&self.inner.config.stale)?;
        for id in &ids {
            self.inner
                .registry
                .do_send(registry::Forget { id: id.clone() });
        }
        Ok(ids)
    }
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound(format!("batch request {id} not found"))
}

/// The state-machine view of a stored request.
fn state_of(r: &RequestRecord) -> RequestState {
    RequestState {
        status: r.status,
        user_action: r.user_action,
        start_when_analysed: r.start_when_analysed,
        cancel_when_analysed: r.cancel_when_analysed,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod contention_tests;
