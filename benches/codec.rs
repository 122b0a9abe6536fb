//! Codec micro-benchmarks: parse the common requests, encode the common replies.
//!
//! `cargo bench --bench codec`. Figures and the machine they were measured on go in
//! BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
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

criterion_group!(benches, parse, encode);
criterion_main!(benches);
