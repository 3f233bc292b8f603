//! What stands between a call and the engine besides the token signature: per-client rate
//! limits, and whether the token's client still exists with the same token generation.
//!
//! The client check reads the store, cached for [`CLIENT_CACHE_TTL`] at most, so
//! `tessera clients remove` / `revoke-tokens` on a running daemon take effect within that
//! time without a database read on every call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::auth::AuthError;
use super::ratelimit::{retry_after_ms, RateLimiter};
use crate::api::Limits;
use crate::store::Store;

/// How stale the "client exists, generation N" answer may be.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most client ids cached (only ids from correctly signed tokens get here).
const CLIENT_CACHE_MAX: usize = 10_000;

pub struct Guards {
    /// Wrong secrets per client id.
    pub token_failures: RateLimiter,
    pub create: RateLimiter,
    clients: Mutex<HashMap<String, (Option<i64>, Instant)>>,
}

impl Guards {
    pub fn new(limits: &Limits) -> Guards {
        Guards {
            token_failures: RateLimiter::new(limits.token_failure_rate),
            create: RateLimiter::new(limits.create_rate),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Checks that `client` exists and `generation` is its current token generation.
    pub fn check_client(
        &self,
        store: &Store,
        client: &str,
        generation: i64,
    ) -> Result<(), AuthError> {
        let now = Instant::now();
        let cached = {
            let map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            map.get(client)
                .filter(|(_, at)| now.duration_since(*at) < CLIENT_CACHE_TTL)
                .map(|(g, _)| *g)
        };
        let current = match cached {
            Some(g) => g,
            None => {
                let g = store.client_token_generation(client)?;
                let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() >= CLIENT_CACHE_MAX {
                    map.retain(|_, (_, at)| now.duration_since(*at) < CLIENT_CACHE_TTL);
                }
                if map.len() < CLIENT_CACHE_MAX {
                    map.insert(client.to_string(), (g, now));
                }
                g
            }
        };
        match current {
            Some(g) if g == generation => Ok(()),
            _ => Err(AuthError::Revoked),
        }
    }
}

/// The 429 answer: the Sentinel Hub error body and `Retry-After` in milliseconds.
pub fn too_many_requests(wait: Duration, what: &str) -> HttpResponse {
    let ms = retry_after_ms(wait);
    HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
        .insert_header(("Retry-After", ms.to_string()))
        .json(serde_json::json!({"error": {
            "status": 429,
            "reason": "Too Many Requests",
            "message": format!("{what}: rate limit exceeded, retry after {ms} ms"),
            "code": "RATE_LIMIT_EXCEEDED",
        }}))
}
