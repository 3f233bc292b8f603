//! Per-key token buckets: wrong secrets at the token endpoint per client id (guessing)
//! and creates per client. A refused call answers 429 with `Retry-After` in **milliseconds**, which is
//! how `sentinelhub` reads it (batch-api.md §0.6), so the client waits and retries.
//!
//! The bucket arithmetic is pure (time is a parameter); [`RateLimiter`] adds the map and
//! its bound: keys are attacker-chosen (any client id can be tried), so the map never
//! holds more than [`MAX_KEYS`] entries. When full, idle keys (full buckets, which carry
//! no information) are dropped; if none is idle the call is refused rather than the map
//! grown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::limits::Rate;

/// Most keys one limiter tracks.
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate.per_second).min(rate.burst);
        self.at = now;
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        }
    }
}

/// A set of buckets sharing one rate.
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// One call for `key` at `now`: `Err(wait)` when the key is over its rate.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            let rate = self.rate;
            map.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
            if map.len() >= MAX_KEYS {
                return Err(Duration::from_secs_f64(1.0 / rate.per_second));
            }
        }
        map.entry(key.to_string())
            .or_insert_with(|| Bucket::full(self.rate, now))
            .take(self.rate, now)
    }

    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Whether `key` has a call left at `now`, without using it.
    pub fn peek_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            None => Ok(()),
            Some(b) => {
                let mut b = *b;
                b.take(self.rate, now)
            }
        }
    }

    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.peek_at(key, Instant::now())
    }
}

/// `Retry-After` in whole milliseconds, at least 1.
pub fn retry_after_ms(wait: Duration) -> u64 {
    (wait.as_micros().div_ceil(1000) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 2.0,
        burst: 3.0,
    };

    #[test]
    fn burst_then_refill_at_the_rate() {
        let l = RateLimiter::new(RATE);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("a", t0).is_ok());
        }
        let wait = l.check_at("a", t0).unwrap_err();
        assert_eq!(retry_after_ms(wait), 500);
        assert!(l.peek_at("a", t0).is_err());
        assert!(l.peek_at("fresh", t0).is_ok());
        // Another key has its own bucket.
        assert!(l.check_at("b", t0).is_ok());
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        // Peeking does not use the token.
        assert!(l.peek_at("a", t1).is_ok());
        assert!(l.check_at("a", t1).is_ok());
        assert!(l.check_at("a", t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check_at("a", t2).is_ok());
        }
        assert!(l.check_at("a", t2).is_err());
    }

    #[test]
    fn the_wait_is_the_time_to_the_next_token() {
        let l = RateLimiter::new(RATE);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check_at("a", t0).unwrap();
        }
        let t1 = t0 + Duration::from_millis(100);
        let wait = l.check_at("a", t1).unwrap_err();
        assert_eq!(retry_after_ms(wait), 400);
        assert_eq!(retry_after_ms(Duration::from_nanos(1)), 1);
    }

    #[test]
    fn the_key_map_is_bounded() {
        let l = RateLimiter::new(RATE);
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            l.check_at(&i.to_string(), t0).unwrap();
        }
        // Every bucket used a token: nothing is idle, so a new key is refused...
        assert!(l.check_at("new", t0).is_err());
        assert_eq!(l.buckets.lock().unwrap().len(), MAX_KEYS);
        // ...until the old buckets are full again and can be forgotten.
        let later = t0 + Duration::from_secs(10);
        assert!(l.check_at("new", later).is_ok());
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}
