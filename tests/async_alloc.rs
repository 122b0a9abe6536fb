//! What the async path allocates per request, against the sync path, both serving MemFs
//! through the test harness (no mount, no client). The sync path allocates nothing of its
//! own (tests/no_alloc.rs); what it shows here is the harness's capture of each reply. The
//! async path's own allocations are the difference: today the task, the request's copied
//! arguments and answer (names, WRITE data, a READ's Vec), and for a request an INTERRUPT
//! can cancel, its cancellation channel. The figures are printed; the test fails if they grow
//! past what they are (issue 22's target is the task alone).

use fusefs::memfs::{MemFs, MemFsOptions};
use fusefs::testing::{Harness, Reply};
use fusefs::{AsyncFs, Filesystem, ROOT_ID};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; counting is one atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Requests of each kind counted, after as many to warm up.
const N: u64 = 2_000;

/// Send `request` and wait for its one reply, `N` times after a warm-up; the allocations
/// per request (every thread's: the async path's run on the runtime's).
fn per_request<F: Filesystem>(h: &Harness<F>, request: &[u8]) -> f64 {
    let once = || {
        let mut replies = h.request(request);
        let deadline = Instant::now() + Duration::from_secs(10);
        while replies.is_empty() {
            assert!(Instant::now() < deadline, "no reply");
            std::thread::yield_now();
            replies = h.take_replies();
        }
        assert_eq!(replies.len(), 1, "one reply");
        let reply = Reply::from_bytes(replies.pop().unwrap());
        assert!(reply.body().is_ok(), "answered: {:?}", reply.body().err());
    };
    for _ in 0..N {
        once();
    }
    let before = ALLOCS.load(Relaxed);
    for _ in 0..N {
        once();
    }
    (ALLOCS.load(Relaxed) - before) as f64 / N as f64
}

/// MemFs with one file of 4 KiB, `f` (node id returned), behind `h`.
fn with_file<F: Filesystem>(h: &Harness<F>) -> u64 {
    let mut b = h.builder();
    let create = b.create(ROOT_ID, "f", 0o644, 0, libc::O_RDWR);
    let mut replies = h.request(&create);
    let deadline = Instant::now() + Duration::from_secs(10);
    while replies.is_empty() {
        assert!(Instant::now() < deadline, "no reply to CREATE");
        std::thread::yield_now();
        replies = h.take_replies();
    }
    let (entry, _) = Reply::from_bytes(replies.pop().unwrap()).created().expect("created");
    entry.nodeid
}

#[test]
fn async_path_allocations_per_request() {
    let sync = Harness::new(MemFs::new(MemFsOptions::default()));
    let asynchronous = Harness::new(AsyncFs::new(MemFs::new(MemFsOptions::default())).unwrap());
    let (si, ai) = (with_file(&sync), with_file(&asynchronous));
    // The same requests for both (MemFs numbers the file the same: node 2, handle 1).
    assert_eq!(si, ai);
    let mut b = sync.builder();
    let page = [7u8; 4096];
    let requests: [(&str, Vec<u8>, f64); 5] = [
        ("LOOKUP", b.lookup(ROOT_ID, "f"), 3.0),
        ("GETATTR", b.getattr(si, None), 2.0),
        ("READ 4 KiB", b.read(si, 1, 0, 4096), 3.0),
        ("WRITE 4 KiB", b.write(si, 1, 0, &page), 2.0),
        ("STATFS", b.statfs(si), 2.0),
    ];
    eprintln!("{:<12} {:>6} {:>6} {:>10}", "request", "sync", "async", "async own");
    let mut over = Vec::new();
    for (name, request, most) in requests {
        let s = per_request(&sync, &request);
        let a = per_request(&asynchronous, &request);
        let own = a - s;
        eprintln!("{name:<12} {s:>6.2} {a:>6.2} {own:>10.2}");
        // Another thread of the test binary may allocate now and then: a tenth of slack.
        if own > most + 0.1 {
            over.push(format!("{name}: {own:.2} allocations of its own per request (was {most})"));
        }
    }
    assert!(over.is_empty(), "the async path allocates more: {over:?}");
}
