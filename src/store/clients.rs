//! Client credentials beyond the secret: removal and token revocation. A token carries
//! its client's token generation; revoking bumps the generation, so every token issued
//! before stops verifying at once (the HTTP layer reads this at most a second stale).

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};

/// Appended to `schema::MIGRATIONS`.
pub(super) const MIGRATION: &str =
    "ALTER TABLE clients ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;";

impl Store {
    /// The client's current token generation; `None` when no such client exists.
    pub fn client_token_generation(&self, id: &str) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT token_generation FROM clients WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Invalidates every token issued to the client so far. False if there is no such client.
    pub fn revoke_client_tokens(&self, id: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE clients SET token_generation = token_generation + 1 WHERE id = ?1",
            params![id],
        )? > 0)
    }

    /// Removes a client: its secret and tokens stop working. Its requests and ledger stay
    /// (the outputs and charges happened). False if there is no such client.
    pub fn remove_client(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM clients WHERE id = ?1", params![id])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.add_client("c1", "one", "salt", "hash").unwrap();
        assert_eq!(s.client_token_generation("c1").unwrap(), Some(0));
        assert!(s.revoke_client_tokens("c1").unwrap());
        assert_eq!(s.client_token_generation("c1").unwrap(), Some(1));
        assert!(!s.revoke_client_tokens("nobody").unwrap());
        assert!(s.remove_client("c1").unwrap());
        assert_eq!(s.client_token_generation("c1").unwrap(), None);
        assert!(s.client_secret("c1").unwrap().is_none());
        assert!(!s.remove_client("c1").unwrap());
    }
}
