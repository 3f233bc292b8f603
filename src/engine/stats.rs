//! Where tile time goes: cumulative per-stage timings, for `tessera bench` and operators.
//! Counters are atomics so workers update them without a lock on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Stats {
    tiles: AtomicU64,
    read_ns: AtomicU64,
    evaluate_ns: AtomicU64,
    encode_ns: AtomicU64,
    write_ns: AtomicU64,
    total_ns: AtomicU64,
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
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Stats {
    pub fn record(&self, t: &TileTimings) {
        self.tiles.fetch_add(1, Ordering::Relaxed);
        self.read_ns.fetch_add(ns(t.read), Ordering::Relaxed);
        self.evaluate_ns
            .fetch_add(ns(t.evaluate), Ordering::Relaxed);
        self.encode_ns.fetch_add(ns(t.encode), Ordering::Relaxed);
        self.write_ns.fetch_add(ns(t.write), Ordering::Relaxed);
        self.total_ns.fetch_add(ns(t.total), Ordering::Relaxed);
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
            s.record(&TileTimings {
                read: Duration::from_millis(10),
                evaluate: Duration::from_millis(100),
                encode: Duration::from_millis(20),
                write: Duration::from_millis(5),
                total: Duration::from_millis(140),
            });
        }
        let snap = s.snapshot();
        assert_eq!(snap.tiles, 2);
        assert_eq!(snap.evaluate, Duration::from_millis(200));
        assert_eq!(snap.overhead_per_tile(), Duration::from_millis(40));
    }
}
