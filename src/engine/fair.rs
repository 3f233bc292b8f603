//! Fair sharing of the tile workers between clients (pure).
//!
//! Tiles wait in one FIFO queue per client; a free worker takes the next tile of the
//! client after the one served last (round-robin over clients with waiting tiles). One
//! tenant's many or slow tiles therefore delay another's by at most one tile per worker,
//! never by its whole backlog.

use std::collections::{HashMap, VecDeque};

/// Per-client FIFO queues served round-robin.
#[derive(Debug)]
pub struct FairQueue<T> {
    queues: HashMap<String, VecDeque<T>>,
    /// Clients with waiting items, in serving order (the next one first).
    turn: VecDeque<String>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            queues: HashMap::new(),
            turn: VecDeque::new(),
        }
    }
}

impl<T> FairQueue<T> {
    /// Queues `item` behind the client's earlier ones; a client that had nothing waiting
    /// joins the end of the round.
    pub fn push(&mut self, client: &str, item: T) {
        let queue = self.queues.entry(client.to_string()).or_default();
        if queue.is_empty() {
            self.turn.push_back(client.to_string());
        }
        queue.push_back(item);
    }

    /// The oldest item of the client whose turn it is; that client moves to the end of
    /// the round if it has more.
    pub fn pop(&mut self) -> Option<T> {
        let client = self.turn.pop_front()?;
        let queue = self.queues.get_mut(&client)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&client);
        } else {
            self.turn.push_back(client);
        }
        item
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut FairQueue<(char, u32)>) -> Vec<(char, u32)> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn clients_alternate_and_each_keeps_its_order() {
        let mut q = FairQueue::default();
        for i in 0..4 {
            q.push("a", ('a', i));
        }
        q.push("b", ('b', 0));
        q.push("b", ('b', 1));
        assert_eq!(q.len(), 6);
        assert_eq!(
            drain(&mut q),
            vec![('a', 0), ('b', 0), ('a', 1), ('b', 1), ('a', 2), ('a', 3)]
        );
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_late_client_is_served_after_at_most_one_item_per_other_client() {
        let mut q = FairQueue::default();
        for i in 0..100 {
            q.push("hog", ('h', i));
        }
        assert_eq!(q.pop(), Some(('h', 0)));
        q.push("small", ('s', 0));
        q.push("third", ('t', 0));
        // The hog's turn came back before the newcomers joined: one more, then them.
        assert_eq!(q.pop(), Some(('h', 1)));
        assert_eq!(q.pop(), Some(('s', 0)));
        assert_eq!(q.pop(), Some(('t', 0)));
        assert_eq!(q.pop(), Some(('h', 2)));
        assert_eq!(q.len(), 97);
    }

    #[test]
    fn a_client_that_drains_rejoins_at_the_end() {
        let mut q = FairQueue::default();
        q.push("a", ('a', 0));
        q.push("b", ('b', 0));
        q.push("b", ('b', 1));
        assert_eq!(q.pop(), Some(('a', 0)));
        q.push("a", ('a', 1));
        // b was waiting: its turn first, then a's again, alternating.
        assert_eq!(q.pop(), Some(('b', 0)));
        assert_eq!(q.pop(), Some(('a', 1)));
        assert_eq!(q.pop(), Some(('b', 1)));
        assert!(q.is_empty());
    }
}
