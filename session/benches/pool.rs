//! The request path's buffer pool: `BufferPool` get+put against a plain allocation, per size
//! class.
//!
//! `cargo bench -p fusefs-session --bench pool -- --warm-up-time 1 --measurement-time 2`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use fusefs_session::pool::{BufferPool, PageBuf};

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    let pool = BufferPool::new(1 << 20, 8);
    for size in [4usize << 10, 64 << 10, 128 << 10, 1 << 20] {
        drop(pool.get(size)); // warm: one buffer of the class in the pool
        g.bench_function(BenchmarkId::new("get_put", size), |b| {
            b.iter(|| drop(black_box(pool.get(size))))
        });
        g.bench_function(BenchmarkId::new("alloc_zeroed", size), |b| {
            b.iter(|| drop(black_box(PageBuf::new(size))))
        });
        g.bench_function(BenchmarkId::new("vec", size), |b| {
            b.iter(|| drop(black_box(vec![0u8; size])))
        });
    }
    g.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
