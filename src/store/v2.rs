//! What Batch v2 keeps beside a request: the delivery credentials of its create body, in a
//! table of their own so that no rendering of the stored body can ever echo them. They go
//! with the request (a trigger deletes them with its row, whichever path deletes it).

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{insert_request_row, Result, Store};
use crate::api::v2::DeliveryCredentials;
use crate::api::RequestRecord;

pub const MIGRATION: &str = r#"
CREATE TABLE request_credentials (
    request_id TEXT PRIMARY KEY, access_key TEXT NOT NULL, secret_access_key TEXT NOT NULL,
    region TEXT);
CREATE TRIGGER request_credentials_follow_request AFTER DELETE ON requests
BEGIN
    DELETE FROM request_credentials WHERE request_id = OLD.id;
END;
"#;

impl Store {
    /// Inserts a new request and, when given, its delivery credentials in one transaction.
    pub fn insert_request_with_credentials(
        &self,
        r: &RequestRecord,
        credentials: Option<&DeliveryCredentials>,
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_request_row(&tx, r)?;
        if let Some(k) = credentials {
            tx.execute(
                "INSERT INTO request_credentials(request_id, access_key, secret_access_key, region)
                 VALUES (?1, ?2, ?3, ?4)",
                params![r.id, k.access_key, k.secret_access_key, k.region],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The delivery credentials a request was created with, if any.
    pub fn delivery_credentials(&self, request: &str) -> Result<Option<DeliveryCredentials>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT access_key, secret_access_key, region FROM request_credentials
                 WHERE request_id = ?1",
                [request],
                |r| {
                    Ok(DeliveryCredentials {
                        access_key: r.get(0)?,
                        secret_access_key: r.get(1)?,
                        region: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// When the request's record last changed (RFC 3339, second precision).
    pub fn request_updated(&self, request: &str) -> Result<Option<String>> {
        let unix: Option<i64> = self
            .conn()
            .query_row(
                "SELECT updated_unix FROM requests WHERE id = ?1",
                [request],
                |r| r.get(0),
            )
            .optional()?;
        Ok(unix.map(|s| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64);
            humantime::format_rfc3339_seconds(at).to_string()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::lifecycle::{Status, UserAction};

    fn record(id: &str) -> RequestRecord {
        RequestRecord {
            id: id.into(),
            client_id: "c".into(),
            created: crate::store::now_rfc3339(),
            body: serde_json::Map::new(),
            status: Status::Created,
            user_action: UserAction::None,
            user_action_updated: None,
            start_when_analysed: false,
            cancel_when_analysed: false,
            tile_count: 1,
            tile_width_px: 1,
            tile_height_px: 1,
            value_estimate: None,
            error: None,
        }
    }

    #[test]
    fn credentials_live_and_die_with_their_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let k = DeliveryCredentials {
            access_key: "AK".into(),
            secret_access_key: "SK".into(),
            region: Some("eu-west-1".into()),
        };
        store
            .insert_request_with_credentials(&record("a"), Some(&k))
            .unwrap();
        store
            .insert_request_with_credentials(&record("b"), None)
            .unwrap();
        assert_eq!(store.delivery_credentials("a").unwrap(), Some(k));
        assert_eq!(store.delivery_credentials("b").unwrap(), None);
        assert!(store.request_updated("a").unwrap().unwrap().ends_with('Z'));
        assert_eq!(store.request_updated("zzz").unwrap(), None);
        // The body column never holds them.
        let body: String = store
            .conn()
            .query_row("SELECT body FROM requests WHERE id = 'a'", [], |r| r.get(0))
            .unwrap();
        assert!(!body.contains("SK"));
        assert!(store.delete_request("a").unwrap());
        assert_eq!(store.delivery_credentials("a").unwrap(), None);
        let left: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM request_credentials", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        // A failed insert (duplicate id) leaves no credentials behind.
        let k2 = DeliveryCredentials {
            access_key: "X".into(),
            secret_access_key: "Y".into(),
            region: None,
        };
        assert!(store
            .insert_request_with_credentials(&record("b"), Some(&k2))
            .is_err());
        assert_eq!(store.delivery_credentials("b").unwrap(), None);
    }
}
