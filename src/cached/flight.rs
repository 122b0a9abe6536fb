//! Coalescing: concurrent misses for the same key make one backend call, and the others
//! wait on it (single-flight), instead of asking a slow store the same question again.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Calls in flight by key. A caller whose key is in flight waits for that call's answer; the
/// entry goes when the call is done, so a later caller asks again. If the caller running the
/// call is cancelled, a waiting one runs its own (tokio's `OnceCell` hands over).
pub(crate) struct SingleFlight<K, V> {
    calls: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
    /// Callers that got another caller's answer.
    joined: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    pub(crate) fn new() -> Self {
        SingleFlight { calls: Mutex::new(HashMap::new()), joined: AtomicU64::new(0) }
    }

    /// The answer for `key`: `call`'s, or that of the call already in flight for `key`.
    pub(crate) async fn run<Fut: Future<Output = V>>(
        &self,
        key: K,
        call: impl FnOnce() -> Fut,
    ) -> V {
        let (cell, joined) = match lock(&self.calls).entry(key.clone()) {
            Entry::Occupied(e) => (Arc::clone(e.get()), true),
            Entry::Vacant(e) => (Arc::clone(e.insert(Arc::default())), false),
        };
        // Counted as they join, not when answered: a count of callers waiting together is
        // then visible while they wait.
        if joined {
            self.joined.fetch_add(1, Relaxed);
        }
        // Leaves the map when the last caller is done, also by cancellation (a key asked
        // about by callers who all gave up must not stay behind).
        let _leave = Leave { flight: self, key: &key, cell: &cell };
        let mut ran = false;
        let v = cell
            .get_or_init(|| {
                ran = true;
                call()
            })
            .await
            .clone();
        // Counted at the entry as a joiner, a caller may still make the call (it came to the
        // cell first, or the caller it joined was cancelled), and the caller that made the
        // entry may wait on another's call: in the end, those who did not call are counted.
        match (joined, ran) {
            (true, true) => {
                self.joined.fetch_sub(1, Relaxed);
            }
            (false, false) => {
                self.joined.fetch_add(1, Relaxed);
            }
            _ => {}
        }
        v
    }

    /// Callers so far that got the answer of another caller's call instead of calling (one
    /// that found a call in flight is counted from then on, while it waits).
    pub(crate) fn joined(&self) -> u64 {
        self.joined.load(Relaxed)
    }
}

/// Removes a call's cell from the map when a caller is done with it and the call is over
/// (answered, or nobody else waits on it).
struct Leave<'a, K: Hash + Eq, V> {
    flight: &'a SingleFlight<K, V>,
    key: &'a K,
    cell: &'a Arc<OnceCell<V>>,
}

impl<K: Hash + Eq, V> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut calls = lock(&self.flight.calls);
        let ours = calls.get(self.key).is_some_and(|c| Arc::ptr_eq(c, self.cell));
        // Two references: the map's and ours, so no other caller waits on this call.
        if ours && (self.cell.initialized() || Arc::strong_count(self.cell) <= 2) {
            calls.remove(self.key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_call() {
        let flight = Arc::new(SingleFlight::<u64, u64>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flight, calls, gate) = (flight.clone(), calls.clone(), gate.clone());
                tokio::spawn(async move {
                    flight
                        .run(7, || async {
                            calls.fetch_add(1, Relaxed);
                            gate.notified().await; // held open until all have joined
                            42
                        })
                        .await
                })
            })
            .collect();
        // Release the call once the other 7 wait on it.
        while lock(&flight.calls).get(&7).map_or(0, Arc::strong_count) < 9 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 42);
        }
        assert_eq!(calls.load(Relaxed), 1, "one call for eight callers");
        assert_eq!(flight.joined(), 7);
        assert!(lock(&flight.calls).is_empty(), "done calls leave the map");
        assert_eq!(flight.run(7, || async { 43 }).await, 43, "a later caller asks again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_joiner_that_calls_after_its_leader_gave_up_saved_nothing() {
        let flight = Arc::new(SingleFlight::<u64, u64>::new());
        let f = flight.clone();
        let leader = tokio::spawn(async move { f.run(7, std::future::pending).await });
        while !lock(&flight.calls).contains_key(&7) {
            tokio::task::yield_now().await;
        }
        let f = flight.clone();
        let joiner = tokio::spawn(async move { f.run(7, || async { 42 }).await });
        while flight.joined() == 0 {
            tokio::task::yield_now().await;
        }
        leader.abort(); // cancelled: the joiner makes the call itself
        assert_eq!(joiner.await.unwrap(), 42);
        assert_eq!(flight.joined(), 0, "the joiner called after all: nothing was saved");
    }
}
