//! What the kernel forgets, the filesystem forgets: a million LOOKUP and FORGET pairs leave
//! MemFs's and CachedFs's node tables as they found them, and their memory bounded. Driven
//! through `testing::Harness` (requests as the kernel sends them, no mount: a mount cannot
//! be made to forget on demand), so these tests do not depend on the transport and run in
//! the first pass of scripts/test only.

use fusefs::cached::{CacheConfig, CachedFs, LocalBackend};
use fusefs::memfs::MemFs;
use fusefs::testing::Harness;
use fusefs::AsyncFs;
use std::time::{Duration, Instant};

const CYCLES: usize = 1_000_000;

/// The memory checks read the whole process's RSS: one test at a time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether this pass of scripts/test runs transport-independent tests (the first does).
fn first_pass(test: &str) -> bool {
    let t = std::env::var("FUSEFS_TRANSPORT").unwrap_or_default();
    if t.is_empty() || t == "fuse-uring" {
        return true;
    }
    eprintln!("{test}: needs no mount; run in the fuse-uring pass only");
    false
}

/// Resident KiB of this process.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[test]
fn memfs_forgets_what_the_kernel_forgot() {
    if !first_pass("memfs_forgets_what_the_kernel_forgot") {
        return;
    }
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let h = Harness::new(MemFs::new(Default::default()));
    let mut b = h.builder();
    let made = h.call(&b.mknod(1, "f", libc::S_IFREG | 0o644, 0, 0)).entry().unwrap();
    let mut rss_early = 0;
    for i in 0..CYCLES {
        let e = h.call(&b.lookup(1, "f")).entry().unwrap();
        assert_eq!(e.nodeid, made.nodeid);
        assert!(h.request(&b.forget(e.nodeid, 1)).is_empty(), "FORGET takes no reply");
        if i == 10_000 {
            rss_early = rss();
        }
    }
    assert!(rss() < rss_early + 4096, "memory grew from {rss_early} to {} KiB", rss());
    // The creation's lookup is the last one the kernel holds: forget it, unlink, and the
    // node must go. One lookup not forgotten would keep it.
    h.request(&b.forget(made.nodeid, 1));
    assert!(h.call(&b.unlink(1, "f")).body().is_ok());
    assert_eq!(h.filesystem().stats().nodes, 1, "only the root is left");
}

#[test]
fn cachedfs_forgets_what_the_kernel_forgot() {
    if !first_pass("cachedfs_forgets_what_the_kernel_forgot") {
        return;
    }
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let src = tempfile::tempdir().unwrap();
    const NAMES: usize = 1000;
    for i in 0..NAMES {
        std::fs::write(src.path().join(format!("f{i}")), b"x").unwrap();
    }
    let backend = LocalBackend::new(src.path()).unwrap();
    let fs = AsyncFs::new(CachedFs::new(backend, CacheConfig::local())).unwrap();
    let h = Harness::new(fs);
    let mut b = h.builder();
    let held = || h.filesystem().inner().stats().table.inodes;
    let before = held();
    let mut rss_early = 0;
    // Rounds of a LOOKUP of every name (answered by async tasks), then one BATCH_FORGET.
    for round in 0..CYCLES / NAMES {
        // `request` hands back the replies sent so far, answers to earlier LOOKUPs included.
        let mut replies = Vec::with_capacity(NAMES);
        for i in 0..NAMES {
            replies.extend(h.request(&b.lookup(1, format!("f{i}"))));
        }
        let mut forgets = Vec::with_capacity(NAMES);
        let deadline = Instant::now() + Duration::from_secs(30);
        while forgets.len() < NAMES {
            replies.extend(h.take_replies());
            for r in replies.drain(..) {
                let e = fusefs::testing::Reply::from_bytes(r).entry().expect("looked up");
                forgets.push((e.nodeid, 1));
            }
            assert!(Instant::now() < deadline, "{} of {NAMES} lookups answered", forgets.len());
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(held(), before + NAMES as u64, "one inode per name looked up");
        assert!(h.request(&b.batch_forget(&forgets)).is_empty());
        assert_eq!(held(), before, "every inode forgotten with its last lookup");
        if round == 10 {
            rss_early = rss();
        }
    }
    assert!(rss() < rss_early + 8192, "memory grew from {rss_early} to {} KiB", rss());
}
