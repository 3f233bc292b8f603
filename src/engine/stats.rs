//! Where tile time goes: cumulative per-stage timings, for `tessera bench` and operators.
//! Counters are atomics so workers update them without a lock on the hot path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Stats {
    tiles: AtomicU64,
    read_ns: AtomicU64,
    evaluate_ns: AtomicU64,
    encode_ns: AtomicU64,
    write_ns: AtomicU64,
    total_ns: AtomicU64,
    /// The same totals per running request, taken out when the request settles so the
    /// daemon can log where its time went. One short lock per tile, not per pixel.
    per_request: Mutex<HashMap<String, StatsSnapshot>>,
}

/// Stage timings of one processed tile.
#[derive(Debug, Clone, Copy, Default)]
pub struct TileTimings {
    pub read: Duration,
    pub evaluate: Duration,
    pub encode: Duration,
    pub write: Duration,
    pub total: Duration,
}

/// A copy of the counters: totals since the engine started, over processed tiles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsSnapshot {
    pub tiles: u64,
    pub read: Duration,
    pub evaluate: Duration,
    pub encode: Duration,
    pub write: Duration,
    pub total: Duration,
}

impl StatsSnapshot {
    /// Mean time per tile spent outside the evalscript (reading, encoding, writing,
    /// bookkeeping): the engine's own overhead.
    pub fn overhead_per_tile(&self) -> Duration {
        if self.tiles == 0 {
            return Duration::ZERO;
        }
        self.total.saturating_sub(self.evaluate) / self.tiles as u32
    }

    fn add(&mut self, t: &TileTimings) {
        self.tiles += 1;
        self.read += t.read;
        self.evaluate += t.evaluate;
        self.encode += t.encode;
        self.write += t.write;
        self.total += t.total;
    }

    /// Where the time went, for people: worker seconds per stage and their share of the
    /// tiles' total, e.g. `100 tiles, 25.70 s in workers: read 6.45 s (25%), evaluate
    /// 0.77 s (3%), encode 11.82 s (46%), write 0.77 s (3%), other 5.89 s (23%)`.
    pub fn breakdown(&self) -> String {
        let total = self.total.as_secs_f64();
        let share = |d: Duration| {
            if total > 0.0 {
                format!(
                    "{:.2} s ({:.0}%)",
                    d.as_secs_f64(),
                    100.0 * d.as_secs_f64() / total
                )
            } else {
                format!("{:.2} s", d.as_secs_f64())
            }
        };
        let staged = self.read + self.evaluate + self.encode + self.write;
        format!(
            "{} tiles, {total:.2} s in workers: read {}, evaluate {}, encode {}, write {}, other {}",
            self.tiles,
            share(self.read),
            share(self.evaluate),
            share(self.encode),
            share(self.write),
            share(self.total.saturating_sub(staged)),
        )
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Stats {
    /// Adds one processed tile of `request` to the engine-wide and per-request totals.
    pub fn record(&self, request: &str, t: &TileTimings) {
        if let Ok(mut map) = self.per_request.lock() {
            map.entry(request.to_string()).or_default().add(t);
        }
        self.tiles.fetch_add(1, Ordering::Relaxed);
        self.read_ns.fetch_add(ns(t.read), Ordering::Relaxed);
        self.evaluate_ns
            .fetch_add(ns(t.evaluate), Ordering::Relaxed);
        self.encode_ns.fetch_add(ns(t.encode), Ordering::Relaxed);
        self.write_ns.fetch_add(ns(t.write), Ordering::Relaxed);
        self.total_ns.fetch_add(ns(t.total), Ordering::Relaxed);
    }

    /// The totals of one request since it was last taken, removing them.
    pub fn take_request(&self, request: &str) -> Option<StatsSnapshot> {
        self.per_request.lock().ok()?.remove(request)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let d = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Relaxed));
        StatsSnapshot {
            tiles: self.tiles.load(Ordering::Relaxed),
            read: d(&self.read_ns),
            evaluate: d(&self.evaluate_ns),
            encode: d(&self.encode_ns),
            write: d(&self.write_ns),
            total: d(&self.total_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_excludes_evaluation_and_averages_over_tiles() {
        let s = Stats::default();
        assert_eq!(s.snapshot().overhead_per_tile(), Duration::ZERO);
        for _ in 0..2 {
            s.record(
                "r1",
                &TileTimings {
                    read: Duration::from_millis(10),
                    evaluate: Duration::from_millis(100),
                    encode: Duration::from_millis(20),
                    write: Duration::from_millis(5),
                    total: Duration::from_millis(140),
                },
            );
        }
        let snap = s.snapshot();
        assert_eq!(snap.tiles, 2);
        assert_eq!(snap.evaluate, Duration::from_millis(200));
        assert_eq!(snap.overhead_per_tile(), Duration::from_millis(40));
    }

    #[test]
    fn per_request_totals_are_taken_once_and_broken_down() {
        let s = Stats::default();
        let t = |ms: u64| TileTimings {
            read: Duration::from_millis(ms),
            evaluate: Duration::from_millis(2 * ms),
            encode: Duration::from_millis(3 * ms),
            write: Duration::from_millis(ms),
            total: Duration::from_millis(8 * ms),
        };
        s.record("a", &t(100));
        s.record("b", &t(1000));
        s.record("a", &t(150));
        let a = s.take_request("a").unwrap();
        assert_eq!(a.tiles, 2);
        assert_eq!(a.encode, Duration::from_millis(750));
        assert_eq!(
            a.breakdown(),
            "2 tiles, 2.00 s in workers: read 0.25 s (12%), evaluate 0.50 s (25%), \
             encode 0.75 s (38%), write 0.25 s (12%), other 0.25 s (12%)"
        );
        assert!(s.take_request("a").is_none(), "taken once");
        assert_eq!(s.take_request("b").unwrap().tiles, 1);
        assert_eq!(
            s.snapshot().tiles,
            3,
            "the engine-wide totals keep everything"
        );
        assert_eq!(
            StatsSnapshot::default().breakdown(),
            "0 tiles, 0.00 s in workers: read 0.00 s, evaluate 0.00 s, encode 0.00 s, \
             write 0.00 s, other 0.00 s"
        );
    }
}
