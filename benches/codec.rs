//! Codec micro-benchmarks: parse the common requests, encode the common replies, in ns/op
//! (criterion) and allocations/op (a counting allocator, printed first; any allocation fails
//! the run).
//!
//! `cargo bench --bench codec`. Figures and the machine they were measured on go in
//! BENCHMARKS.md.

use criterion::{black_box, criterion_group, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts allocations (all threads; the count is read around single-threaded loops).
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; counting is a relaxed add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per call of `f`, over 10,000 calls.
fn allocs_per_op(mut f: impl FnMut()) -> f64 {
    const N: u64 = 10_000;
    let before = ALLOCS.load(Relaxed);
    for _ in 0..N {
        f();
    }
    (ALLOCS.load(Relaxed) - before) as f64 / N as f64
}
use fusefs::proto::abi::{self, EntryOut};
use fusefs::proto::build::RequestBuilder;
use fusefs::proto::{Dialect, DirentWriter, OutMessage, Request};

/// The requests parsed, as the kernel sends them.
fn requests() -> [(&'static str, Vec<u8>); 5] {
    let mut b = RequestBuilder::new();
    [
        ("lookup", b.lookup(1, "some-file-name.txt")),
        ("getattr", b.getattr(2, None)),
        ("read", b.read(2, 0, 0, 4096)),
        ("write_4k", b.write(2, 0, 0, &[7; 4096])),
        ("write_1m", b.write(2, 0, 0, &vec![7; 1 << 20])),
    ]
}

fn parse(c: &mut Criterion) {
    let d = Dialect::default();
    let mut g = c.benchmark_group("parse");
    for (name, buf) in &requests() {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(Request::parse(black_box(buf), &d)).is_ok())
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let entry = EntryOut {
        nodeid: 2,
        attr: abi::Attr { ino: 2, mode: 0o100644, ..Default::default() },
        ..Default::default()
    };
    let attr = abi::AttrOut { attr: entry.attr, ..Default::default() };
    let mut g = c.benchmark_group("encode");
    let mut out = vec![0u8; 4096];
    g.bench_function("entry", |b| {
        b.iter(|| OutMessage::entry(black_box(2), black_box(&entry)).write_to(&mut out))
    });
    g.bench_function("attr", |b| {
        b.iter(|| OutMessage::attr(black_box(2), black_box(&attr)).write_to(&mut out))
    });
    let mut page = vec![0u8; 4096];
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("readdirplus_page", |b| {
        b.iter(|| {
            let mut w = DirentWriter::new(&mut page);
            let mut n = 0u64;
            while w.push_plus(&entry, n + 1, 8, b"file-000000.dat").is_ok() {
                n += 1;
            }
            black_box(n)
        })
    });
    g.finish();
}

/// Print allocations/op for every benchmarked operation; exit non-zero if any allocates.
fn allocations() {
    let d = Dialect::default();
    let mut report = Vec::new();
    for (name, buf) in &requests() {
        let parsed = allocs_per_op(|| drop(black_box(Request::parse(black_box(buf), &d))));
        report.push((format!("parse/{name}"), parsed));
    }
    let entry = EntryOut { nodeid: 2, ..Default::default() };
    let attr = abi::AttrOut::default();
    let mut out = vec![0u8; 4096];
    report.push((
        "encode/entry".into(),
        allocs_per_op(|| {
            black_box(OutMessage::entry(2, &entry).write_to(&mut out));
        }),
    ));
    report.push((
        "encode/attr".into(),
        allocs_per_op(|| {
            black_box(OutMessage::attr(2, &attr).write_to(&mut out));
        }),
    ));
    let mut page = vec![0u8; 4096];
    report.push((
        "encode/readdirplus_page".into(),
        allocs_per_op(|| {
            let mut w = DirentWriter::new(&mut page);
            while w.push_plus(&entry, 1, 8, b"file-000000.dat").is_ok() {}
        }),
    ));
    println!("allocations/op:");
    for (name, a) in &report {
        println!("  {name:28} {a}");
    }
    if report.iter().any(|(_, a)| *a > 0.0) {
        eprintln!("parse and encode must not allocate");
        std::process::exit(1);
    }
}

criterion_group!(benches, parse, encode);

fn main() {
    allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
