//! An O(1) least-recently-used cache with an optional time-to-live and counters.
//!
//! Entries live in a `slab::Slab` and form a doubly linked list by slab index (no per-entry
//! allocation beyond the slab's, no `Rc`); a hash map finds an entry's index by key. `get`
//! moves the entry to the front, `insert` evicts from the back when full. An entry older than
//! the TTL is never returned: `get` finds it expired, removes it and counts an expiration and
//! a miss.
//!
//! [`Lru`] is single-threaded (`&mut self`). [`ShardedLru`] splits keys over shards by hash,
//! each behind its own mutex held only for one operation, so workers touching different keys
//! rarely meet on a lock.

use crate::clock::{Clock, SystemClock};
use slab::Slab;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// Slab indices are u32 (caches hold at most 4 billion entries), which keeps a node small:
/// with u64 keys and values a node is 32 bytes, so more of a large cache stays in CPU caches.
const NIL: u32 = u32::MAX;

/// A fast, non-cryptographic hasher (multiply-rotate, as rustc's FxHasher) for cache keys:
/// SipHash would cost more than the rest of a lookup. Keys come from the filesystem, not from
/// an attacker who could aim collisions at it.
#[derive(Clone, Copy, Default, Debug)]
pub struct FastHash;

/// The hasher [`FastHash`] builds.
#[derive(Default, Clone, Copy, Debug)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64)
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v.into())
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v.into())
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

/// Counters of a cache's use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LruStats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing (expired entries included).
    pub misses: u64,
    /// Entries found past their TTL and dropped.
    pub expirations: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries held now.
    pub len: u64,
    /// Most entries held.
    pub capacity: u64,
}

impl LruStats {
    /// Hits over lookups, 0 when there were none.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// The sum of two sets of counters (for shards).
    pub fn merge(self, o: LruStats) -> LruStats {
        LruStats {
            hits: self.hits + o.hits,
            misses: self.misses + o.misses,
            expirations: self.expirations + o.expirations,
            evictions: self.evictions + o.evictions,
            len: self.len + o.len,
            capacity: self.capacity + o.capacity,
        }
    }
}

struct Node<K, V> {
    key: K,
    value: V,
    prev: u32,
    next: u32,
    /// When the entry stops being valid, in the clock's ns (u64::MAX: never).
    expires: u64,
}

/// A least-recently-used cache of at most `capacity` entries. See the module docs.
pub struct Lru<K, V, C: Clock = SystemClock> {
    map: HashMap<K, u32, FastHash>,
    slab: Slab<Node<K, V>>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    capacity: usize,
    clock: C,
    /// The TTL in ns, less one clock tick (see `crate::clock`); None: no TTL.
    ttl_ns: Option<u64>,
    stats: LruStats,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V, SystemClock> {
    /// A cache of at most `capacity` entries (at least 1), each valid for `ttl` (`None`:
    /// until evicted or removed).
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Self::with_clock(capacity, ttl, SystemClock)
    }
}

impl<K: Hash + Eq + Clone, V, C: Clock> Lru<K, V, C> {
    /// As [`Lru::new`], with time from `clock`.
    pub fn with_clock(capacity: usize, ttl: Option<Duration>, clock: C) -> Self {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        let prealloc = capacity.min(1 << 16);
        let ttl_ns = ttl.map(|t| {
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).saturating_sub(clock.resolution_ns())
        });
        Lru {
            ttl_ns,
            map: HashMap::with_capacity_and_hasher(prealloc, FastHash),
            slab: Slab::with_capacity(prealloc),
            head: NIL,
            tail: NIL,
            capacity,
            clock,
            stats: LruStats { capacity: capacity as u64, ..Default::default() },
        }
    }

    fn expired(&self, n: &Node<K, V>) -> bool {
        n.expires != u64::MAX && self.clock.now_ns() >= n.expires
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.slab[i as usize].prev, self.slab[i as usize].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slab[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let head = self.head;
        let n = &mut self.slab[i as usize];
        n.prev = NIL;
        n.next = head;
        if head != NIL {
            self.slab[head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn remove_index(&mut self, i: u32) -> (K, V) {
        self.unlink(i);
        let node = self.slab.remove(i as usize);
        self.map.remove(&node.key);
        (node.key, node.value)
    }

    /// The value for `key`, made most recently used; `None` if absent or expired.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(&i) = self.map.get(key) else {
            self.stats.misses += 1;
            return None;
        };
        if self.expired(&self.slab[i as usize]) {
            self.remove_index(i);
            self.stats.expirations += 1;
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&self.slab[i as usize].value)
    }

    /// The value for `key` without counting or reordering (expired entries read as absent).
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let &i = self.map.get(key)?;
        let n = &self.slab[i as usize];
        (!self.expired(n)).then_some(&n.value)
    }

    /// Insert or replace; returns the old value of `key`. When full, the least recently used
    /// entry is evicted first.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let expires = match self.ttl_ns {
            Some(t) => self.clock.now_ns().saturating_add(t),
            None => u64::MAX,
        };
        if let Some(&i) = self.map.get(&key) {
            let n = &mut self.slab[i as usize];
            let old = std::mem::replace(&mut n.value, value);
            n.expires = expires;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return Some(old);
        }
        if self.map.len() >= self.capacity && self.tail != NIL {
            self.remove_index(self.tail);
            self.stats.evictions += 1;
        }
        let i = self.slab.insert(Node { key: key.clone(), value, prev: NIL, next: NIL, expires })
            as u32;
        self.map.insert(key, i);
        self.push_front(i);
        None
    }

    /// Remove `key`, returning its value (expired or not).
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let &i = self.map.get(key)?;
        Some(self.remove_index(i).1)
    }

    /// Remove every entry for which `f` is false.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &V) -> bool) {
        let doomed: Vec<u32> =
            self.slab.iter().filter(|(_, n)| !f(&n.key, &n.value)).map(|(i, _)| i as u32).collect();
        for i in doomed {
            self.remove_index(i);
        }
    }

    /// Remove everything (counters stay).
    pub fn clear(&mut self) {
        self.map.clear();
        self.slab.clear();
        self.head = NIL;
        self.tail = NIL;
    }

    /// Entries held (expired ones included until found).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> LruStats {
        LruStats { len: self.map.len() as u64, ..self.stats }
    }
}

/// An [`Lru`] split into shards by key hash, each behind its own mutex, for use from many
/// threads. Capacity is divided evenly, so eviction is least-recently-used per shard.
pub struct ShardedLru<K, V, C: Clock + Clone = SystemClock> {
    shards: Box<[Shard<K, V, C>]>,
}

/// One shard: an `Lru` behind its own lock, on its own cache lines.
type Shard<K, V, C> = Padded<Mutex<Lru<K, V, C>>>;

/// One shard per 128 bytes (two cache lines, as adjacent-line prefetch pairs them), so
/// threads working on different shards never write the same line.
#[repr(align(128))]
struct Padded<T>(T);

impl<K: Hash + Eq + Clone, V: Clone> ShardedLru<K, V, SystemClock> {
    /// `shards` shards (rounded up to a power of two) sharing `capacity` entries.
    pub fn new(capacity: usize, ttl: Option<Duration>, shards: usize) -> Self {
        Self::with_clock(capacity, ttl, shards, SystemClock)
    }
}

impl<K: Hash + Eq + Clone, V: Clone, C: Clock + Clone> ShardedLru<K, V, C> {
    /// As [`ShardedLru::new`], with time from `clock`.
    pub fn with_clock(capacity: usize, ttl: Option<Duration>, shards: usize, clock: C) -> Self {
        let n = shards.max(1).next_power_of_two();
        let per = capacity.div_ceil(n).max(1);
        let shards =
            (0..n).map(|_| Padded(Mutex::new(Lru::with_clock(per, ttl, clock.clone())))).collect();
        ShardedLru { shards }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> std::sync::MutexGuard<'_, Lru<K, V, C>> {
        let h = FastHash.hash_one(key);
        let i = (h >> 32) as usize & (self.shards.len() - 1);
        self.shards[i].0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the value for `key`; `None` if absent or expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).get(key).cloned()
    }

    /// Insert or replace.
    pub fn insert(&self, key: K, value: V) {
        let mut s = self.shard(&key);
        s.insert(key, value);
    }

    /// Remove `key`.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).remove(key)
    }

    /// Remove every entry for which `f` is false, in every shard.
    pub fn retain(&self, mut f: impl FnMut(&K, &V) -> bool) {
        for s in self.shards.iter() {
            s.0.lock().unwrap_or_else(|p| p.into_inner()).retain(&mut f);
        }
    }

    /// Counters summed over the shards.
    pub fn stats(&self) -> LruStats {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(|p| p.into_inner()).stats())
            .fold(LruStats::default(), LruStats::merge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn evicts_least_recently_used() {
        let mut c = Lru::new(3, None);
        for i in 0..3 {
            c.insert(i, i * 10);
        }
        assert_eq!(c.get(&0), Some(&0)); // 0 is now most recent; 1 is least
        c.insert(3, 30);
        assert_eq!(c.get(&1), None, "1 was evicted");
        assert_eq!(c.get(&0).copied(), Some(0));
        assert_eq!(c.get(&2).copied(), Some(20));
        assert_eq!(c.get(&3).copied(), Some(30));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions, s.len), (4, 1, 1, 3));
        assert!((s.hit_rate() - 0.8).abs() < 1e-9);
        assert_eq!(c.insert(3, 31), Some(30), "replace returns the old value");
        assert_eq!(c.remove(&2), Some(20));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn ttl_without_sleeping() {
        let clock = ManualClock::default();
        let mut c = Lru::with_clock(10, Some(Duration::from_secs(5)), clock.clone());
        c.insert("a", 1);
        clock.advance(Duration::from_secs(4));
        assert_eq!(c.get("a"), Some(&1));
        c.insert("b", 2);
        clock.advance(Duration::from_secs(1));
        assert_eq!(c.get("a"), None, "exactly at the TTL it is stale");
        assert_eq!(c.peek("b"), Some(&2));
        let s = c.stats();
        assert_eq!((s.expirations, s.misses, s.hits, s.len), (1, 1, 1, 1));
        c.insert("b", 3); // refreshes the TTL
        clock.advance(Duration::from_secs(4));
        assert_eq!(c.get("b"), Some(&3));
    }

    #[test]
    fn many_operations_keep_the_list_consistent() {
        let mut c = Lru::new(64, None);
        let mut x = 12345u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 200;
            match x % 3 {
                0 => {
                    c.insert(k, k);
                }
                1 => {
                    if let Some(v) = c.get(&k) {
                        assert_eq!(*v, k);
                    }
                }
                _ => {
                    c.remove(&k);
                }
            }
            assert!(c.len() <= 64);
        }
        // Walk the list both ways: it holds exactly the map's entries.
        let mut n = 0;
        let mut i = c.head;
        while i != NIL {
            n += 1;
            i = c.slab[i as usize].next;
        }
        assert_eq!(n, c.len());
        c.retain(|k, _| k % 2 == 0);
        assert!(c.slab.iter().all(|(_, n)| n.key % 2 == 0));
    }

    #[test]
    fn sharded_from_threads() {
        let c = std::sync::Arc::new(ShardedLru::new(10_000, None, 8));
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let c = &c;
                s.spawn(move || {
                    for i in 0..2_000u64 {
                        c.insert(t * 10_000 + i, i);
                        assert_eq!(c.get(&(t * 10_000 + i)), Some(i));
                    }
                });
            }
        });
        let s = c.stats();
        assert_eq!((s.len, s.hits, s.evictions), (8_000, 8_000, 0));
    }
}
