//! OAuth2 client credentials: clients with hashed secrets, and signed bearer tokens.
//!
//! Tokens are JWT-shaped (`header.payload.signature`, HMAC-SHA256 with a key kept in the
//! store) so they are checked without a database read on every call, and so
//! `sentinelhub`'s `session.info()` can decode the payload (`azp` = client id). They use
//! the standard base64 alphabet, which is what that decoder expects.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// How long a token lives; the client refreshes it when less than 120 s remain.
pub const TOKEN_TTL_SECS: u64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid client credentials")]
    BadCredentials,
    #[error("missing or invalid bearer token")]
    BadToken,
    #[error("the token has expired")]
    Expired,
    #[error("the token was revoked or its client removed")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness available: {0}")]
    Random(String),
}

fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Secrets are 32 random bytes, so one salted SHA-256 is enough: there is no password to
/// brute-force, only a database file to keep secrets out of.
fn hash_secret(salt: &str, secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(secret.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a client and returns `(client_id, client_secret)`; only the hash is stored.
pub fn add_client(store: &Store, name: &str) -> Result<(String, String), AuthError> {
    let id = uuid::Uuid::new_v4().to_string();
    let secret = random_hex(32)?;
    let salt = random_hex(16)?;
    store.add_client(&id, name, &salt, &hash_secret(&salt, &secret))?;
    Ok((id, secret))
}

/// Checks a client's id and secret.
pub fn check_client(store: &Store, id: &str, secret: &str) -> Result<(), AuthError> {
    let (salt, stored) = store.client_secret(id)?.ok_or(AuthError::BadCredentials)?;
    let given = hash_secret(&salt, secret);
    // Compare in constant time: the hashes have equal length.
    let diff = given
        .bytes()
        .zip(stored.bytes())
        .fold(given.len() ^ stored.len(), |acc, (a, b)| {
            acc | (a ^ b) as usize
        });
    if diff == 0 {
        Ok(())
    } else {
        Err(AuthError::BadCredentials)
    }
}

/// The signing key, created on first use and kept in the store so tokens survive restarts.
pub fn signing_key(store: &Store) -> Result<Vec<u8>, AuthError> {
    let mut fresh = None;
    let key = store.setting_or_insert("token_key", || {
        let k = random_hex(32);
        let v = k.as_ref().map(|s| s.clone()).unwrap_or_default();
        fresh = Some(k);
        v
    })?;
    if let Some(Err(e)) = fresh {
        return Err(e);
    }
    Ok(key.into_bytes())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Issues a token for a client. `generation` is the client's token generation
/// (`Store::client_token_generation`): revoking bumps it and so ends this token.
pub fn issue_token(key: &[u8], client_id: &str, generation: i64) -> String {
    let header = STANDARD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = STANDARD.encode(
        serde_json::json!({"azp": client_id, "sub": client_id, "exp": now() + TOKEN_TTL_SECS,
                           "gen": generation})
        .to_string(),
    );
    let signed = format!("{header}.{payload}");
    let sig = STANDARD.encode(
        mac(key)
            .chain_update(signed.as_bytes())
            .finalize()
            .into_bytes(),
    );
    format!("{signed}.{sig}")
}

/// Verifies a token's signature and expiry and returns its client id.
pub fn verify_token(key: &[u8], token: &str) -> Result<String, AuthError> {
    verify_token_claims(key, token).map(|(client, _)| client)
}

/// Like [`verify_token`], also returning the token generation it was issued under
/// (0 for tokens from before revocation existed). Whether the client still exists and
/// the generation is current is the caller's check against the store.
pub fn verify_token_claims(key: &[u8], token: &str) -> Result<(String, i64), AuthError> {
    let (signed, sig) = token.rsplit_once('.').ok_or(AuthError::BadToken)?;
    let sig = STANDARD.decode(sig).map_err(|_| AuthError::BadToken)?;
    mac(key)
        .chain_update(signed.as_bytes())
        .verify_slice(&sig)
        .map_err(|_| AuthError::BadToken)?;
    let (_, payload) = signed.split_once('.').ok_or(AuthError::BadToken)?;
    let payload = STANDARD.decode(payload).map_err(|_| AuthError::BadToken)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| AuthError::BadToken)?;
    let exp = claims["exp"].as_u64().ok_or(AuthError::BadToken)?;
    if exp < now() {
        return Err(AuthError::Expired);
    }
    let client = claims["azp"]
        .as_str()
        .map(str::to_string)
        .ok_or(AuthError::BadToken)?;
    Ok((client, claims["gen"].as_i64().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_tamper() {
        let key = b"k".to_vec();
        let t = issue_token(&key, "client-1", 7);
        assert_eq!(verify_token(&key, &t).unwrap(), "client-1");
        assert_eq!(
            verify_token_claims(&key, &t).unwrap(),
            ("client-1".to_string(), 7)
        );
        assert!(verify_token(b"other", &t).is_err());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = STANDARD.encode(br#"{"azp":"client-2","exp":99999999999}"#);
        parts[1] = &forged;
        assert!(verify_token(&key, &parts.join(".")).is_err());
        assert!(!t.contains('-') && !t.contains('_'));
        assert!(verify_token(&key, "garbage").is_err());
    }

    #[test]
    fn clients_are_checked_against_hashed_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let (id, secret) = add_client(&store, "x").unwrap();
        assert!(check_client(&store, &id, &secret).is_ok());
        assert!(check_client(&store, &id, "wrong").is_err());
        assert!(check_client(&store, "nobody", &secret).is_err());
        let (salt, hash) = store.client_secret(&id).unwrap().unwrap();
        assert_ne!(hash, secret, "the secret itself is never stored");
        assert_eq!(hash, hash_secret(&salt, &secret));
        assert_eq!(signing_key(&store).unwrap(), signing_key(&store).unwrap());
    }
}
