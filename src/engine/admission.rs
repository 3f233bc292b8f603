//! Admission of user commands to the actor system: a bounded number in flight, and a
//! caller over the bound *waits* (up to a deadline) instead of failing at once.
//!
//! Why: actix mailboxes are bounded (16 by default) and `try_send` into a full one fails,
//! which answered 503 "the engine is not running" to a burst of concurrent actions. Here
//! the queue is this counter; beyond the wait the caller gets `Busy` (429 with
//! `Retry-After`), never a 503.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct Admission {
    max: usize,
    in_flight: Mutex<usize>,
    freed: Condvar,
}

/// One admitted command; dropping it lets the next one in.
pub struct Permit<'a>(&'a Admission);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut n = self.0.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.0.freed.notify_one();
    }
}

impl Admission {
    pub fn new(max: usize) -> Admission {
        Admission {
            max: max.max(1),
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits up to `wait` for a slot; `None` if none freed up in time.
    pub fn acquire(&self, wait: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now() + wait;
        let mut n = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.max {
            let left = deadline.checked_duration_since(Instant::now())?;
            n = self
                .freed
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *n += 1;
        Some(Permit(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bounded_and_waiting() {
        let a = Arc::new(Admission::new(2));
        let p1 = a.acquire(Duration::ZERO).unwrap();
        let _p2 = a.acquire(Duration::ZERO).unwrap();
        assert!(a.acquire(Duration::from_millis(20)).is_none());
        // A waiter gets the slot freed while it waits.
        let a2 = a.clone();
        let waiter = std::thread::spawn(move || a2.acquire(Duration::from_secs(10)).is_some());
        std::thread::sleep(Duration::from_millis(50));
        drop(p1);
        assert!(waiter.join().unwrap());
    }
}
