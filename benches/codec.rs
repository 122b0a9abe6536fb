//! Codec micro-benchmarks: parse the common requests, encode the common replies, in ns/op
//! (criterion). That they allocate nothing is a test (proto/tests/no_alloc.rs), run by
//! `cargo test`, which CI runs and benchmarks are not.
//!
//! `cargo bench --bench codec`. Figures and the machine they were measured on go in
//! BENCHMARKS.md.

use criterion::{black_box, criterion_group, Criterion, Throughput};
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

criterion_group!(benches, parse, encode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
