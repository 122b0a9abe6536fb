//! Parsing requests and encoding replies allocate nothing, checked with a counting allocator
//! on the operations of the hot path (the codec benchmark times the same ones). The count is
//! per thread: libtest's main thread allocates now and then while the test runs (it failed
//! CI once with 4 allocations that were not the codec's).

use fusefs_proto::abi::{self, EntryOut};
use fusefs_proto::build::RequestBuilder;
use fusefs_proto::{Dialect, DirentWriter, OutMessage, Request};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

struct Counting;
thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// const-initialised thread-local Cell, which never allocates (try_with skips it during
// thread teardown).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by 10,000 calls of `f`.
fn allocations(mut f: impl FnMut()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    for _ in 0..10_000 {
        f();
    }
    ALLOCS.with(Cell::get) - before
}

#[test]
fn parse_and_encode_do_not_allocate() {
    let d = Dialect::default();
    let mut b = RequestBuilder::new();
    let requests = [
        ("lookup", b.lookup(1, "some-file-name.txt")),
        ("getattr", b.getattr(2, None)),
        ("read", b.read(2, 0, 0, 4096)),
        ("write_4k", b.write(2, 0, 0, &[7; 4096])),
        ("write_1m", b.write(2, 0, 0, &vec![7; 1 << 20])),
    ];
    let mut report = Vec::new();
    for (name, buf) in &requests {
        assert!(Request::parse(buf, &d).is_ok(), "the builder's {name} parses");
        report.push((
            *name,
            allocations(|| {
                black_box(black_box(Request::parse(black_box(buf), &d)).is_ok());
            }),
        ));
    }
    let entry = EntryOut { nodeid: 2, ..Default::default() };
    let attr = abi::AttrOut::default();
    let mut out = vec![0u8; 4096];
    report.push((
        "encode entry",
        allocations(|| {
            black_box(OutMessage::entry(2, &entry).write_to(&mut out));
        }),
    ));
    report.push((
        "encode attr",
        allocations(|| {
            black_box(OutMessage::attr(2, &attr).write_to(&mut out));
        }),
    ));
    let mut page = vec![0u8; 4096];
    report.push((
        "encode readdirplus page",
        allocations(|| {
            let mut w = DirentWriter::new(&mut page);
            while w.push_plus(&entry, 1, 8, b"file-000000.dat").is_ok() {}
        }),
    ));
    let bad: Vec<_> = report.iter().filter(|(_, n)| *n > 0).collect();
    assert!(bad.is_empty(), "allocations in 10,000 calls: {bad:?}");
}
