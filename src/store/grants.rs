//! Output grants (issue 12): which buckets, key prefixes and absolute local prefixes the
//! operator lets each client write to (`tessera clients grant`). The store keeps the
//! operator's spelling after `output::confine::parse_grant` normalised it; the engine turns
//! the rows into a client's scope on every create and every tile, so a revoke holds for the
//! next tile.

use rusqlite::params;

use super::{now_rfc3339, Result, Store};

/// The schema, appended to `schema.rs`'s migrations.
pub const MIGRATION: &str = r#"
CREATE TABLE output_grants (
    client_id TEXT NOT NULL, location TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (client_id, location));
"#;

impl Store {
    /// Records a grant; `false` when the client already had it.
    pub fn grant_output(&self, client: &str, location: &str) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO output_grants(client_id, location, created) VALUES (?1, ?2, ?3)",
            params![client, location, now_rfc3339()],
        )?;
        Ok(n == 1)
    }

    /// Removes a grant; `false` when the client did not have it.
    pub fn revoke_output(&self, client: &str, location: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM output_grants WHERE client_id = ?1 AND location = ?2",
            params![client, location],
        )?;
        Ok(n == 1)
    }

    /// The locations granted to `client`, in the order they were granted.
    pub fn output_grants(&self, client: &str) -> Result<Vec<String>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT location FROM output_grants WHERE client_id = ?1 ORDER BY created, location",
        )?;
        let rows = st.query_map([client], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_per_client_idempotent_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        assert!(store.output_grants("a").unwrap().is_empty());
        assert!(store.grant_output("a", "s3://one").unwrap());
        assert!(!store.grant_output("a", "s3://one").unwrap());
        assert!(store.grant_output("a", "/srv/shared").unwrap());
        assert!(store.grant_output("b", "s3://two/p").unwrap());
        let mut a = store.output_grants("a").unwrap();
        a.sort();
        assert_eq!(a, vec!["/srv/shared", "s3://one"]);
        assert_eq!(store.output_grants("b").unwrap(), vec!["s3://two/p"]);
        assert!(store.revoke_output("a", "s3://one").unwrap());
        assert!(!store.revoke_output("a", "s3://one").unwrap());
        assert!(!store.revoke_output("b", "/srv/shared").unwrap());
        assert_eq!(store.output_grants("a").unwrap(), vec!["/srv/shared"]);
        // Another connection (the daemon) sees the CLI's changes at once.
        assert_eq!(
            store.reopen().unwrap().output_grants("b").unwrap(),
            vec!["s3://two/p"]
        );
    }
}
