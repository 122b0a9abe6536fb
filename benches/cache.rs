//! Cache micro-benchmarks: `Lru` get (hit, miss) and insert with eviction at 10k and 1M
//! entries, single-threaded and `ShardedLru` from 2 threads. (The request path's buffer pool
//! has its own, in `session/benches/pool.rs`.)
//!
//! `cargo bench --bench cache -- --warm-up-time 1 --measurement-time 2`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use fusefs::cache::{Lru, ShardedLru};
use std::time::{Duration, Instant};

/// Uniformly random keys below `n`, precomputed (so the benchmark measures the cache, not
/// the random number generator) and cycled.
fn keys(n: u64) -> impl Iterator<Item = u64> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let v: Vec<u64> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect();
    v.into_iter().cycle()
}

fn lru(c: &mut Criterion) {
    let mut g = c.benchmark_group("lru");
    for n in [10_000u64, 1_000_000] {
        let mut cache = Lru::new(n as usize, Some(Duration::from_secs(3600)));
        for k in 0..n {
            cache.insert(k, k);
        }
        let mut ks = keys(n);
        g.bench_function(BenchmarkId::new("get_hit", n), |b| {
            b.iter(|| black_box(cache.get(&ks.next().unwrap()).copied()))
        });
        // A hot set of 1,000 keys inside the big cache (the usual metadata pattern).
        let mut hot = keys(1_000);
        g.bench_function(BenchmarkId::new("get_hit_hot1k", n), |b| {
            b.iter(|| black_box(cache.get(&hot.next().unwrap()).copied()))
        });
        // Baseline: a plain hash map lookup with the same keys, no LRU at all. At 1M entries
        // this is what one random access to memory costs here.
        let plain: std::collections::HashMap<u64, u64> = (0..n).map(|k| (k, k)).collect();
        let mut ks = keys(n);
        g.bench_function(BenchmarkId::new("baseline_hashmap_get", n), |b| {
            b.iter(|| black_box(plain.get(&ks.next().unwrap()).copied()))
        });
        drop(plain);
        let mut ks = keys(n).map(move |k| k + n);
        g.bench_function(BenchmarkId::new("get_miss", n), |b| {
            b.iter(|| black_box(cache.get(&ks.next().unwrap()).copied()))
        });
        let mut next = n;
        g.bench_function(BenchmarkId::new("insert_evict", n), |b| {
            b.iter(|| {
                next += 1;
                cache.insert(black_box(next), next)
            })
        });

        // Two threads on one sharded cache (16 shards), each doing its own gets and inserts.
        let shared = ShardedLru::new(n as usize, Some(Duration::from_secs(3600)), 16);
        for k in 0..n {
            shared.insert(k, k);
        }
        for (name, insert) in [("sharded_2t_get_hit", false), ("sharded_2t_insert_evict", true)] {
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..2u64 {
                            let shared = &shared;
                            s.spawn(move || {
                                let mut ks = keys(n);
                                for i in 0..iters {
                                    let k = ks.next().unwrap();
                                    if insert {
                                        shared.insert(n + t * (1 << 40) + i, k);
                                    } else {
                                        black_box(shared.get(&k));
                                    }
                                }
                            });
                        }
                    });
                    // Per operation, counting both threads' operations.
                    start.elapsed() / 2
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, lru);
criterion_main!(benches);
