//! Large writes in bounded transactions. A world-sized analysis is millions of tile rows;
//! written or deleted in one transaction it holds SQLite's single write lock for longer
//! than every other writer's busy timeout, and they fail with "database is locked". Here
//! each transaction touches at most [`CHUNK`] rows, so other writers interleave, and
//! deletions give their pages back to the file (`auto_vacuum = INCREMENTAL`).

use rusqlite::{params, TransactionBehavior};

use super::{NewTile, Result, Store};

/// Rows per write transaction: a few milliseconds of lock each.
pub const CHUNK: usize = 2_000;
/// Free pages given back per `incremental_vacuum` step.
const VACUUM_STEP_PAGES: i64 = 2_000;

impl Store {
    /// Deletes a request's tiles, [`CHUNK`] rows per transaction, then reclaims the space.
    /// Returns the number of tiles deleted.
    pub fn purge_tiles(&self, request: &str) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = self.conn().execute(
                "DELETE FROM tiles WHERE rowid IN
                   (SELECT rowid FROM tiles WHERE request_id = ?1 LIMIT ?2)",
                params![request, CHUNK as i64],
            )?;
            total += n as u64;
            if n < CHUNK {
                break;
            }
        }
        if total > 0 {
            self.reclaim_space()?;
        }
        Ok(total)
    }

    /// Gives free pages back to the file system in short steps (a no-op on a database
    /// created before incremental auto-vacuum was enabled).
    pub fn reclaim_space(&self) -> Result<()> {
        loop {
            let c = self.conn();
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
            if free == 0 || mode != 2 {
                return Ok(());
            }
            let mut st = c.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
            let mut rows = st.query([])?;
            while rows.next()?.is_some() {}
        }
    }

    /// Tiles whose request no longer exists (a deletion cut short by a crash): purged at
    /// start. Returns how many requests had leftovers.
    pub fn purge_orphan_tiles(&self) -> Result<usize> {
        let orphans: Vec<String> = {
            let c = self.conn();
            let mut st = c.prepare(
                "SELECT DISTINCT request_id FROM tiles t
                 WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = t.request_id)",
            )?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in &orphans {
            self.purge_tiles(id)?;
        }
        Ok(orphans.len())
    }

    /// Deletes the request row only (it disappears from the API at once); its tiles are
    /// then removed with [`Store::purge_tiles`], off the caller's thread if it matters.
    pub fn delete_request_row(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM requests WHERE id = ?1", [id])?
            > 0)
    }

    /// The analysis result, in chunks: earlier tiles of the request (from an interrupted
    /// analysis) are purged, the new ones inserted [`CHUNK`] per transaction, and the count
    /// and estimate written last. Each chunk first checks the request still exists: one
    /// deleted meanwhile stops the insert and its tiles are purged. Tiles are consumed from
    /// the iterator as they are written, so the caller never holds them all.
    pub(super) fn store_analysis_chunked(
        &self,
        id: &str,
        tiles: impl Iterator<Item = NewTile>,
        value_estimate: f64,
    ) -> Result<u64> {
        if !self.request_exists(id)? {
            return Ok(0);
        }
        self.purge_tiles(id)?;
        let mut tiles = tiles.peekable();
        let mut n = 0u64;
        while tiles.peek().is_some() {
            let mut c = self.conn();
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM requests WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            if !exists {
                drop(tx);
                drop(c);
                self.purge_tiles(id)?;
                return Ok(0);
            }
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO tiles(request_id, tile_id, seq, name, status, attempts, cost,
                       cost_estimate, epsg, x_min, y_min, x_max, y_max, geometry)
                     VALUES (?1, ?2, ?3, ?4, 'PENDING', 0, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for t in tiles.by_ref().take(CHUNK) {
                    st.execute(params![
                        id,
                        t.id,
                        n as i64,
                        t.name,
                        t.cost_estimate,
                        t.epsg,
                        t.bounds[0],
                        t.bounds[1],
                        t.bounds[2],
                        t.bounds[3],
                        t.geometry
                    ])?;
                    n += 1;
                }
            }
            tx.commit()?;
        }
        let updated = self.conn().execute(
            "UPDATE requests SET tile_count = ?2, value_estimate = ?3 WHERE id = ?1",
            params![id, n as i64, value_estimate],
        )?;
        if updated == 0 {
            self.purge_tiles(id)?;
            return Ok(0);
        }
        Ok(n)
    }

    fn request_exists(&self, id: &str) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM requests WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::record as request;

    fn tiles(n: usize) -> impl Iterator<Item = NewTile> {
        (0..n).map(|i| NewTile {
            id: i as i64,
            name: format!("t{i}"),
            epsg: 32633,
            bounds: [0.0, 0.0, 1.0, 1.0],
            geometry: "[".to_string() + &"0,".repeat(200) + "0]",
            cost_estimate: 1.0,
        })
    }

    #[test]
    fn chunked_analysis_and_deletion_reclaim_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path).unwrap();
        let mode: i64 = s
            .conn()
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "new databases use incremental auto-vacuum");
        s.insert_request(&request("r1", "alice")).unwrap();
        let n = (CHUNK * 3 + 17) as u64;
        assert_eq!(s.store_analysis("r1", tiles(n as usize), 2.0).unwrap(), n);
        assert_eq!(s.tile_counts("r1").unwrap().pending, n);
        // Re-analysis replaces the list.
        assert_eq!(s.store_analysis("r1", tiles(5), 2.0).unwrap(), 5);
        assert_eq!(s.tile_counts("r1").unwrap().total(), 5);
        assert_eq!(s.store_analysis("r1", tiles(n as usize), 2.0).unwrap(), n);
        let pages = |s: &Store| -> i64 {
            s.conn()
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap()
        };
        let full = pages(&s);
        assert!(s.delete_request("r1").unwrap());
        assert_eq!(s.tile_counts("r1").unwrap().total(), 0);
        assert!(pages(&s) < full / 4, "pages {} of {full} kept", pages(&s));
        // An analysis of a deleted request stores nothing.
        assert_eq!(s.store_analysis("r1", tiles(10), 1.0).unwrap(), 0);
        assert_eq!(s.tile_counts("r1").unwrap().total(), 0);
    }

    #[test]
    fn orphan_tiles_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.insert_request(&request("r1", "alice")).unwrap();
        s.store_analysis("r1", tiles(CHUNK + 3), 1.0).unwrap();
        assert!(s.delete_request_row("r1").unwrap());
        assert_eq!(s.tile_counts("r1").unwrap().total(), (CHUNK + 3) as u64);
        assert_eq!(s.purge_orphan_tiles().unwrap(), 1);
        assert_eq!(s.tile_counts("r1").unwrap().total(), 0);
    }
}
