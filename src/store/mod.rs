//! SQLite persistence: the single source of truth. Every state change is committed here
//! before it is acknowledged, so a daemon killed at any instant resumes from this file.
//!
//! Only this module writes SQL. Each `Store` owns one connection; open one per thread
//! that needs it (WAL mode lets readers run beside the writer).

pub mod byoc;
mod chunked;
mod clients;
mod grants;
mod pages;
mod schema;
mod v2;

pub use pages::BoundedPage;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::{Map, Value};

use crate::api::{RequestRecord, TileRecord};
use crate::engine::lifecycle::{self, RequestState, Status, TileEvent, TileStatus, UserAction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt record in the database: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How a list of requests is ordered (`sort` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSort {
    Created,
    CreatedDesc,
    Status,
    StatusDesc,
}

/// Ages after which stale requests are deleted (the seed's automatic deletion).
#[derive(Debug, Clone, Copy)]
pub struct StaleAges {
    pub failed: std::time::Duration,
    pub unstarted: std::time::Duration,
    pub finished: std::time::Duration,
}

/// Tile counts per status for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TileCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub processed: u64,
    pub failed: u64,
}

impl TileCounts {
    pub fn total(&self) -> u64 {
        self.pending + self.in_flight + self.processed + self.failed
    }
}

/// A tile to insert at the end of analysis.
#[derive(Debug, Clone)]
pub struct NewTile {
    pub id: i64,
    pub name: String,
    pub epsg: u32,
    pub bounds: [f64; 4],
    pub geometry: String,
    pub cost_estimate: f64,
}

/// PU totals of one request from the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PuTotals {
    pub reserved: f64,
    pub charged: f64,
    pub minimum: f64,
    pub refunded: f64,
}

pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Deleted tiles give their pages back (`chunked::reclaim_space`). Only takes effect
        // on a new file, before the first table; an older file keeps its mode. The WAL is
        // truncated back to 64 MiB after a checkpoint instead of keeping its peak size.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
        // WAL with synchronous=NORMAL survives a killed process (only power loss can lose
        // the last commits), and readers never wait for the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Another connection to the same file, for another thread.
    pub fn reopen(&self) -> Result<Store> {
        Store::open(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    // Write transactions are IMMEDIATE: a deferred one that reads first and then writes
    // cannot wait for another writer (SQLite answers "database is locked" at once rather
    // than risk a deadlock), while an immediate one takes the write lock up front and so
    // waits its turn through the busy timeout.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A poisoned lock only means another thread panicked mid-call; SQLite rolled back
        // its open transaction, so the connection is still consistent.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- settings and clients -------------------------------------------------------

    /// The value of a setting, created by `make` on first use (e.g. the token signing key).
    pub fn setting_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        let c = self.conn();
        if let Some(v) = c
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?
        {
            return Ok(v);
        }
        let v = make();
        c.execute(
            "INSERT OR IGNORE INTO settings(key, value) VALUES (?1, ?2)",
            params![key, v],
        )?;
        Ok(
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })?,
        )
    }

    pub fn add_client(&self, id: &str, name: &str, salt: &str, secret_hash: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO clients(id, name, salt, secret_hash, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, name, salt, secret_hash, now_rfc3339()],
        )?;
        Ok(())
    }

    /// `(salt, secret_hash)` of a client.
    pub fn client_secret(&self, id: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT salt, secret_hash FROM clients WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn list_clients(&self) -> Result<Vec<(String, String, String)>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT id, name, created FROM clients ORDER BY created")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- requests ---------------------------------------------------------------------

    pub fn insert_request(&self, r: &RequestRecord) -> Result<()> {
        insert_request_row(&self.conn(), r)
    }

    /// A request by id; `client` restricts it to that client's requests.
    pub fn get_request(&self, client: Option<&str>, id: &str) -> Result<Option<RequestRecord>> {
        let c = self.conn();
        let row = c
            .query_row(
                &format!("{REQUEST_SELECT} WHERE id = ?1 AND (?2 IS NULL OR client_id = ?2)"),
                params![id, client],
                request_from_row,
            )
            .optional()?;
        row.transpose()
    }

    /// One page of a client's requests, ordered by `sort`, from `offset`.
    pub fn list_requests(
        &self,
        client: &str,
        sort: RequestSort,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<RequestRecord>> {
        let order = pages::request_order(sort);
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "{REQUEST_SELECT} WHERE client_id = ?1 ORDER BY {order} LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = st.query_map(
            params![client, limit as i64, offset as i64],
            request_from_row,
        )?;
        rows.map(|r| r?).collect()
    }

    /// Ids of requests the engine must pick up again after a restart.
    pub fn unfinished_requests(&self) -> Result<Vec<String>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id FROM requests WHERE status IN ('ANALYSING', 'PROCESSING')
             OR (status IN ('CANCELED', 'STOPPED') AND EXISTS (SELECT 1 FROM tiles t WHERE t.request_id = requests.id
                 AND t.status IN ('SCHEDULED', 'PROCESSING')))",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn update_body(&self, id: &str, body: &Map<String, Value>) -> Result<()> {
        self.conn().execute(
            "UPDATE requests SET body = ?2 WHERE id = ?1",
            params![id, Value::Object(body.clone()).to_string()],
        )?;
        Ok(())
    }

    /// Persists a state-machine transition. `user_acted` stamps `userActionUpdated`.
    pub fn set_state(
        &self,
        id: &str,
        state: &RequestState,
        user_acted: bool,
        error: Option<&str>,
    ) -> Result<()> {
        let stamp = user_acted.then(now_rfc3339);
        self.conn().execute(
            "UPDATE requests SET status = ?2, user_action = ?3,
               user_action_updated = COALESCE(?4, user_action_updated),
               start_when_analysed = ?5, cancel_when_analysed = ?6,
               error = COALESCE(?7, error), updated_unix = ?8
             WHERE id = ?1",
            params![
                id,
                state.status.as_str(),
                state.user_action.as_str(),
                stamp,
                state.start_when_analysed,
                state.cancel_when_analysed,
                error,
                now_unix(),
            ],
        )?;
        Ok(())
    }

    /// Deletes a request and its tiles (outputs are never touched). The ledger is kept.
    /// The row goes first (one short transaction), then the tiles in chunks.
    pub fn delete_request(&self, id: &str) -> Result<bool> {
        let deleted = self.delete_request_row(id)?;
        self.purge_tiles(id)?;
        Ok(deleted)
    }

    /// Deletes stale requests per the seed's rules; returns the ids deleted.
    pub fn delete_stale(&self, ages: &StaleAges) -> Result<Vec<String>> {
        let now = now_unix();
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<String> = {
            let mut st = tx.prepare(
                "SELECT id FROM requests WHERE
                   (status = 'FAILED' AND updated_unix <= ?1)
                OR (status IN ('CREATED', 'ANALYSIS_DONE') AND updated_unix <= ?2)
                OR (status IN ('DONE', 'PARTIAL') AND updated_unix <= ?3)",
            )?;
            let rows = st.query_map(
                params![
                    now - ages.failed.as_secs() as i64,
                    now - ages.unstarted.as_secs() as i64,
                    now - ages.finished.as_secs() as i64
                ],
                |r| r.get(0),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in &ids {
            tx.execute("DELETE FROM requests WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        drop(c);
        // Tiles in chunks, after the rows: a crash in between leaves orphans that
        // `purge_orphan_tiles` removes at the next start.
        for id in &ids {
            self.purge_tiles(id)?;
        }
        Ok(ids)
    }

    // ---- analysis and tiles -----------------------------------------------------------

    /// Stores the result of an analysis: the tile list (replacing any from an interrupted
    /// analysis), the exact tile count and the PU estimate, in bounded transactions
    /// (`chunked::store_analysis_chunked`); the count is written last.
    pub fn store_analysis(
        &self,
        id: &str,
        tiles: impl Iterator<Item = NewTile>,
        value_estimate: f64,
    ) -> Result<u64> {
        self.store_analysis_chunked(id, tiles, value_estimate)
    }

    /// One page of tiles in list order, starting at position `from_seq`.
    pub fn list_tiles(
        &self,
        request: &str,
        status: Option<TileStatus>,
        from_seq: i64,
        limit: u64,
    ) -> Result<Vec<TileRecord>> {
        let c = self.conn();
        let mut st = c.prepare_cached(&format!(
            "{TILE_SELECT} WHERE request_id = ?1 AND seq >= ?2 AND (?3 IS NULL OR status = ?3)
             ORDER BY seq LIMIT ?4"
        ))?;
        let rows = st.query_map(
            params![request, from_seq, status.map(|s| s.as_str()), limit as i64],
            tile_from_row,
        )?;
        rows.map(|r| r?).collect()
    }

    pub fn get_tile(&self, request: &str, tile_id: i64) -> Result<Option<TileRecord>> {
        let c = self.conn();
        let row = c
            .query_row(
                &format!("{TILE_SELECT} WHERE request_id = ?1 AND tile_id = ?2"),
                params![request, tile_id],
                tile_from_row,
            )
            .optional()?;
        row.transpose()
    }

    pub fn tile_counts(&self, request: &str) -> Result<TileCounts> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT status, COUNT(*) FROM tiles WHERE request_id = ?1 GROUP BY status",
        )?;
        let mut counts = TileCounts::default();
        let rows = st.query_map([request], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (status, n) = row?;
            let n = n as u64;
            match TileStatus::parse(&status) {
                Some(TileStatus::Pending) => counts.pending += n,
                Some(TileStatus::Processed) => counts.processed += n,
                Some(TileStatus::Failed) => counts.failed += n,
                Some(_) => counts.in_flight += n,
                None => return Err(StoreError::Corrupt(format!("tile status {status}"))),
            }
        }
        Ok(counts)
    }

    /// Moves up to `n` PENDING tiles to SCHEDULED and returns them, in list order.
    pub fn claim_pending(&self, request: &str, n: u64) -> Result<Vec<TileRecord>> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tiles: Vec<TileRecord> = {
            let mut st = tx.prepare_cached(&format!(
                "{TILE_SELECT} WHERE request_id = ?1 AND status = 'PENDING' ORDER BY seq LIMIT ?2"
            ))?;
            let rows = st.query_map(params![request, n as i64], tile_from_row)?;
            rows.map(|r| r?).collect::<Result<_>>()?
        };
        for t in &tiles {
            tx.execute(
                "UPDATE tiles SET status = 'SCHEDULED' WHERE request_id = ?1 AND tile_id = ?2",
                params![request, t.id],
            )?;
        }
        tx.commit()?;
        Ok(tiles
            .into_iter()
            .map(|mut t| {
                t.status = TileStatus::Scheduled;
                t
            })
            .collect())
    }

    /// Writes a tile's new status and attempt count (and the failure text, if any).
    pub fn set_tile_status(
        &self,
        request: &str,
        tile_id: i64,
        status: TileStatus,
        attempts: u32,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE tiles SET status = ?3, attempts = ?4, error = COALESCE(?5, error)
             WHERE request_id = ?1 AND tile_id = ?2",
            params![request, tile_id, status.as_str(), attempts, error],
        )?;
        Ok(())
    }

    /// Marks a tile PROCESSED and charges it, in one transaction. A tile already charged
    /// (e.g. at a cancel while it was in flight) is not charged twice.
    pub fn complete_tile(
        &self,
        request: &str,
        client: &str,
        tile_id: i64,
        cost: f64,
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE tiles SET status = 'PROCESSED', cost = ?3, error = NULL
             WHERE request_id = ?1 AND tile_id = ?2",
            params![request, tile_id, cost],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO pu_ledger(client_id, request_id, tile_id, kind, amount, created)
             VALUES (?1, ?2, ?3, 'charge', ?4, ?5)",
            params![client, request, tile_id, cost, now_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// At a cancel: charges every tile in flight at its estimated cost (the seed charges
    /// "tiles processed or being processed at that moment").
    pub fn charge_in_flight(&self, request: &str, client: &str) -> Result<u64> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO pu_ledger(client_id, request_id, tile_id, kind, amount, created)
             SELECT ?2, request_id, tile_id, 'charge', cost_estimate, ?3 FROM tiles
             WHERE request_id = ?1 AND status IN ('SCHEDULED', 'PROCESSING')",
            params![request, client, now_rfc3339()],
        )?;
        tx.execute(
            "UPDATE tiles SET cost = cost_estimate
             WHERE request_id = ?1 AND status IN ('SCHEDULED', 'PROCESSING')",
            [request],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// FAILED tiles back to PENDING with a fresh attempt count (restartpartial).
    pub fn requeue_failed(&self, request: &str) -> Result<u64> {
        Ok(self.conn().execute(
            "UPDATE tiles SET status = 'PENDING', attempts = 0, error = NULL
             WHERE request_id = ?1 AND status = 'FAILED'",
            [request],
        )? as u64)
    }

    /// One FAILED tile back to PENDING (the legacy single-tile restart).
    pub fn requeue_tile(&self, request: &str, tile_id: i64) -> Result<u64> {
        Ok(self.conn().execute(
            "UPDATE tiles SET status = 'PENDING', attempts = 0, error = NULL
             WHERE request_id = ?1 AND tile_id = ?2 AND status = 'FAILED'",
            params![request, tile_id],
        )? as u64)
    }

    /// Applies [`TileEvent::Recover`] to every tile a killed daemon left SCHEDULED or
    /// PROCESSING (most go back to PENDING; a tile whose last allowed attempt was cut short
    /// is FAILED). Returns how many tiles were recovered.
    pub fn recover_in_flight(&self, request: &str) -> Result<u64> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let in_flight: Vec<(i64, TileStatus, u32)> = {
            let mut st = tx.prepare_cached(
                "SELECT tile_id, status, attempts FROM tiles
                 WHERE request_id = ?1 AND status IN ('SCHEDULED', 'QUEUED', 'PROCESSING')",
            )?;
            let rows = st.query_map([request], |r| {
                let status: String = r.get(1)?;
                Ok((r.get(0)?, status, r.get(2)?))
            })?;
            rows.map(|r| {
                let (id, status, attempts) = r?;
                let status = TileStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("tile status {status}")))?;
                Ok((id, status, attempts))
            })
            .collect::<Result<_>>()?
        };
        for (id, status, attempts) in &in_flight {
            let (next, attempts) = lifecycle::tile_on_event(*status, *attempts, TileEvent::Recover)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let error = (next == TileStatus::Failed).then(|| {
                format!("the daemon stopped while processing this tile on each of its {attempts} attempts")
            });
            tx.execute(
                "UPDATE tiles SET status = ?3, error = COALESCE(?4, error)
                 WHERE request_id = ?1 AND tile_id = ?2",
                params![request, id, next.as_str(), error],
            )?;
        }
        tx.commit()?;
        Ok(in_flight.len() as u64)
    }

    /// Sum of the estimated cost of tiles not charged yet.
    pub fn uncharged_estimate(&self, request: &str) -> Result<f64> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(cost_estimate), 0) FROM tiles t WHERE request_id = ?1
             AND status IN ('PENDING', 'SCHEDULED', 'PROCESSING')
             AND NOT EXISTS (SELECT 1 FROM pu_ledger l WHERE l.request_id = t.request_id
                             AND l.tile_id = t.tile_id AND l.kind = 'charge')",
            [request],
            |r| r.get(0),
        )?)
    }

    // ---- processing units -------------------------------------------------------------

    pub fn reserve(&self, request: &str, client: &str, amount: f64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO pu_ledger(client_id, request_id, tile_id, kind, amount, created)
             VALUES (?1, ?2, NULL, 'reserve', ?3, ?4)",
            params![client, request, amount, now_rfc3339()],
        )?;
        Ok(())
    }

    pub fn pu_totals(&self, request: &str) -> Result<PuTotals> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT kind, COALESCE(SUM(amount), 0) FROM pu_ledger WHERE request_id = ?1 GROUP BY kind",
        )?;
        let mut t = PuTotals::default();
        let rows = st.query_map([request], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?;
        for row in rows {
            let (kind, amount) = row?;
            match kind.as_str() {
                "reserve" => t.reserved = amount,
                "charge" => t.charged = amount,
                "minimum" => t.minimum = amount,
                "refund" => t.refunded = amount,
                other => return Err(StoreError::Corrupt(format!("ledger kind {other}"))),
            }
        }
        Ok(t)
    }

    /// Sets the request's single `minimum` and `refund` entries to these amounts
    /// (upserts: settling twice never refunds twice).
    pub fn set_settlement(
        &self,
        request: &str,
        client: &str,
        minimum: f64,
        refund: f64,
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (kind, amount) in [("minimum", minimum), ("refund", refund)] {
            tx.execute(
                "DELETE FROM pu_ledger WHERE request_id = ?1 AND kind = ?2",
                params![request, kind],
            )?;
            if amount > 0.0 {
                tx.execute(
                    "INSERT INTO pu_ledger(client_id, request_id, tile_id, kind, amount, created)
                     VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
                    params![client, request, kind, amount, now_rfc3339()],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The one INSERT of a request row, for [`Store::insert_request`] and transactions that
/// insert more beside it (`v2`).
fn insert_request_row(c: &Connection, r: &RequestRecord) -> Result<()> {
    c.execute(
        "INSERT INTO requests(id, client_id, created, body, status, user_action,
           user_action_updated, start_when_analysed, cancel_when_analysed, tile_count,
           tile_width_px, tile_height_px, value_estimate, error, updated_unix)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            r.id,
            r.client_id,
            r.created,
            Value::Object(r.body.clone()).to_string(),
            r.status.as_str(),
            r.user_action.as_str(),
            r.user_action_updated,
            r.start_when_analysed,
            r.cancel_when_analysed,
            r.tile_count,
            r.tile_width_px,
            r.tile_height_px,
            r.value_estimate,
            r.error,
            now_unix(),
        ],
    )?;
    Ok(())
}

const REQUEST_SELECT: &str = "SELECT id, client_id, created, body, status, user_action,
    user_action_updated, start_when_analysed, cancel_when_analysed, tile_count,
    tile_width_px, tile_height_px, value_estimate, error FROM requests";

fn request_from_row(r: &Row<'_>) -> rusqlite::Result<Result<RequestRecord>> {
    let body: String = r.get(3)?;
    let status: String = r.get(4)?;
    let user_action: String = r.get(5)?;
    let id: String = r.get(0)?;
    let parsed = (|| {
        let body = match serde_json::from_str(&body) {
            Ok(Value::Object(m)) => m,
            _ => return Err(StoreError::Corrupt(format!("request {id}: body"))),
        };
        let status = Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("request {id}: status {status}")))?;
        let user_action = UserAction::parse(&user_action)
            .ok_or_else(|| StoreError::Corrupt(format!("request {id}: action {user_action}")))?;
        Ok((body, status, user_action))
    })();
    let (body, status, user_action) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(RequestRecord {
        id,
        client_id: r.get(1)?,
        created: r.get(2)?,
        body,
        status,
        user_action,
        user_action_updated: r.get(6)?,
        start_when_analysed: r.get(7)?,
        cancel_when_analysed: r.get(8)?,
        tile_count: r.get(9)?,
        tile_width_px: r.get(10)?,
        tile_height_px: r.get(11)?,
        value_estimate: r.get(12)?,
        error: r.get(13)?,
    }))
}

const TILE_SELECT: &str = "SELECT request_id, tile_id, seq, name, status, attempts, cost, epsg,
    x_min, y_min, x_max, y_max, geometry, error FROM tiles";

fn tile_from_row(r: &Row<'_>) -> rusqlite::Result<Result<TileRecord>> {
    let status: String = r.get(4)?;
    let Some(status) = TileStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!("tile status {status}"))));
    };
    Ok(Ok(TileRecord {
        request_id: r.get(0)?,
        id: r.get(1)?,
        seq: r.get(2)?,
        name: r.get(3)?,
        status,
        attempts: r.get(5)?,
        cost: r.get(6)?,
        epsg: r.get(7)?,
        x_min: r.get(8)?,
        y_min: r.get(9)?,
        x_max: r.get(10)?,
        y_max: r.get(11)?,
        geometry: r.get(12)?,
        error: r.get(13)?,
    }))
}

#[cfg(test)]
mod tests;
