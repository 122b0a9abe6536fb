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
use fusefs::proto::{Dialect, DirentWriter, OutMessage, Request};

fn request(opcode: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(40 + body.len());
    v.extend_from_slice(&((40 + body.len()) as u32).to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(&2u64.to_le_bytes());
    v.extend_from_slice(&1u64.to_le_bytes());
    v.extend_from_slice(&[0; 16]);
    v.extend_from_slice(body);
    v
}

fn rw_in(size: u32) -> Vec<u8> {
    let mut v = vec![0u8; 40];
    v[16..20].copy_from_slice(&size.to_le_bytes());
    v
}

fn parse(c: &mut Criterion) {
    let d = Dialect::default();
    let mut g = c.benchmark_group("parse");
    let cases = [
        ("lookup", request(1, b"some-file-name.txt\0")),
        ("getattr", request(3, &[0; 16])),
        ("read", request(15, &rw_in(4096))),
        ("write_4k", request(16, &[rw_in(4096), vec![7; 4096]].concat())),
        ("write_1m", request(16, &[rw_in(1 << 20), vec![7; 1 << 20]].concat())),
    ];
    for (name, buf) in &cases {
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
    let cases = [
        ("parse/lookup", request(1, b"some-file-name.txt\0")),
        ("parse/getattr", request(3, &[0; 16])),
        ("parse/read", request(15, &rw_in(4096))),
        ("parse/write_4k", request(16, &[rw_in(4096), vec![7; 4096]].concat())),
        ("parse/write_1m", request(16, &[rw_in(1 << 20), vec![7; 1 << 20]].concat())),
    ];
    for (name, buf) in &cases {
        report.push((*name, allocs_per_op(|| drop(black_box(Request::parse(black_box(buf), &d))))));
    }
    let entry = EntryOut { nodeid: 2, ..Default::default() };
    let attr = abi::AttrOut::default();
    let mut out = vec![0u8; 4096];
    report.push((
        "encode/entry",
        allocs_per_op(|| {
            black_box(OutMessage::entry(2, &entry).write_to(&mut out));
        }),
    ));
    report.push((
        "encode/attr",
        allocs_per_op(|| {
            black_box(OutMessage::attr(2, &attr).write_to(&mut out));
        }),
    ));
    let mut page = vec![0u8; 4096];
    report.push((
        "encode/readdirplus_page",
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
