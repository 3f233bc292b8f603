//! The schema and its migrations, applied in order by `PRAGMA user_version`.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clients (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, salt TEXT NOT NULL,
    secret_hash TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE requests (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL, created TEXT NOT NULL, body TEXT NOT NULL,
    status TEXT NOT NULL, user_action TEXT NOT NULL, user_action_updated TEXT,
    start_when_analysed INTEGER NOT NULL DEFAULT 0, cancel_when_analysed INTEGER NOT NULL DEFAULT 0,
    tile_count INTEGER NOT NULL, tile_width_px INTEGER NOT NULL, tile_height_px INTEGER NOT NULL,
    value_estimate REAL, error TEXT, updated_unix INTEGER NOT NULL);
CREATE INDEX requests_client ON requests(client_id, created);
CREATE TABLE tiles (
    request_id TEXT NOT NULL, tile_id INTEGER NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, cost REAL NOT NULL, cost_estimate REAL NOT NULL,
    epsg INTEGER NOT NULL, x_min REAL NOT NULL, y_min REAL NOT NULL, x_max REAL NOT NULL,
    y_max REAL NOT NULL, geometry TEXT NOT NULL, error TEXT,
    PRIMARY KEY (request_id, tile_id));
CREATE UNIQUE INDEX tiles_seq ON tiles(request_id, seq);
CREATE INDEX tiles_status ON tiles(request_id, status, seq);
CREATE TABLE pu_ledger (
    id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, request_id TEXT NOT NULL, tile_id INTEGER,
    kind TEXT NOT NULL, amount REAL NOT NULL, created TEXT NOT NULL);
CREATE INDEX pu_ledger_request ON pu_ledger(request_id, kind);
-- A tile is charged at most once, whatever crashes or cancels happen around it.
CREATE UNIQUE INDEX pu_ledger_one_charge ON pu_ledger(request_id, tile_id) WHERE kind = 'charge';
"#,
    // 2: the BYOC tile index (store/byoc.rs).
    super::byoc::MIGRATION,
    // Token revocation (store/clients.rs).
    super::clients::MIGRATION,
    // Output grants per client (store/grants.rs, issue 12).
    super::grants::MIGRATION,
    // Batch v2: a request's delivery credentials, apart from its body (store/v2.rs).
    super::v2::MIGRATION,
];

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        // IMMEDIATE, and the version read inside it: two processes opening a new file at
        // once apply each migration exactly once.
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
