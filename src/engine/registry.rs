//! The supervising registry: one `RequestActor` per live request, created on demand from
//! the store, and the worker pool they share.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;

use actix::prelude::*;

use super::pool::Pool;
use super::request::{RequestActor, Shared};
use super::stats::Stats;
use super::{Command, EngineConfig, EngineError, Result};
use crate::store::Store;

pub struct Registry {
    shared: Arc<Shared>,
    store: Store,
    actors: HashMap<String, Addr<RequestActor>>,
}

/// Routes a command to a request's actor, starting the actor if needed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Route {
    pub id: String,
    pub command: Command,
    pub reply: mpsc::Sender<Result<()>>,
}

/// A request was deleted: drop its actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget {
    pub id: String,
}

impl Registry {
    /// Starts the worker pool and the registry on the current actix system, and resumes
    /// every unfinished request found in the store.
    pub fn start_with(config: Arc<EngineConfig>, stats: Arc<Stats>) -> Result<Addr<Registry>> {
        let store = Store::open(&config.db_path)?;
        let worker_config = config.clone();
        let pool = Pool::new(worker_config, stats.clone()).start();
        let shared = Arc::new(Shared {
            config,
            pool,
            stats,
        });
        // Tiles of a deletion cut short by a crash (deletions purge tiles after the row):
        // purged in the background, so a large leftover does not delay the start.
        let purger = store.reopen()?;
        std::thread::Builder::new()
            .name("tessera-purge".into())
            .spawn(move || match purger.purge_orphan_tiles() {
                Ok(0) => {}
                Ok(n) => tracing::info!(requests = n, "purged tiles of deleted requests"),
                Err(e) => tracing::error!("purging tiles of deleted requests: {e}"),
            })
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let unfinished = store.unfinished_requests()?;
        let registry = Registry {
            shared,
            store,
            actors: HashMap::new(),
        }
        .start();
        for id in unfinished {
            tracing::info!(request = %id, "resuming");
            registry.do_send(Resume { id });
        }
        Ok(registry)
    }

    fn actor(&mut self, id: &str, ctx: &mut Context<Self>) -> Result<Addr<RequestActor>> {
        if let Some(a) = self.actors.get(id) {
            if a.connected() {
                return Ok(a.clone());
            }
        }
        let record = self
            .store
            .get_request(None, id)?
            .ok_or_else(|| EngineError::NotFound(format!("batch request {id} not found")))?;
        let store = self.store.reopen()?;
        let shared = self.shared.clone();
        let registry = ctx.address();
        // Supervised: if the actor stops unexpectedly it is restarted and rebuilds its
        // state from the store (see `RequestActor::restarting`).
        let addr = Supervisor::start(move |_| RequestActor::new(record, store, shared, registry));
        self.actors.insert(id.to_string(), addr.clone());
        Ok(addr)
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = self.shared.config.janitor_interval;
        // Off this thread: purging the tiles of large stale requests takes a while, and
        // every command is routed through here.
        ctx.run_interval(every, |act, ctx| {
            let stale = act.shared.config.stale;
            let store = match act.store.reopen() {
                Ok(s) => s,
                Err(e) => return tracing::error!("stale-request deletion failed: {e}"),
            };
            let me = ctx.address();
            tokio::task::spawn_blocking(move || match store.delete_stale(&stale) {
                Ok(ids) => {
                    for id in ids {
                        tracing::info!(request = %id, "deleted stale request");
                        me.do_send(Forget { id });
                    }
                }
                Err(e) => tracing::error!("stale-request deletion failed: {e}"),
            });
        });
    }
}

impl Handler<Route> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Route, ctx: &mut Context<Self>) {
        match self.actor(&msg.id, ctx) {
            Ok(addr) => addr.do_send(super::request::Apply {
                command: msg.command,
                reply: msg.reply,
            }),
            Err(e) => {
                let _ = msg.reply.send(Err(e));
            }
        }
    }
}

impl Handler<Forget> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Forget, _: &mut Context<Self>) {
        self.actors.remove(&msg.id);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Resume {
    id: String,
}

impl Handler<Resume> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Resume, ctx: &mut Context<Self>) {
        match self.actor(&msg.id, ctx) {
            Ok(addr) => addr.do_send(super::request::Wake),
            Err(e) => tracing::error!(request = %msg.id, "cannot resume: {e}"),
        }
    }
}
