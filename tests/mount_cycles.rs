//! A process that mounts and unmounts again and again keeps nothing: 100 cycles of mount,
//! use, unmount leave no fd, thread or mount behind and do not grow its memory, counted from
//! /proc/self. Alone in its test binary, so that no other test moves the counts.

mod common;
use common::{can_mount, TestMount};
use fusefs::memfs::MemFs;
use std::fs;

/// fds, threads, FUSE mounts, and resident KiB of this process.
fn census() -> (usize, usize, usize, u64) {
    let count = |dir: &str| fs::read_dir(dir).unwrap().count();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fuse = mounts.lines().filter(|l| l.contains(" - fuse ") || l.contains(" - fuse.")).count();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    (count("/proc/self/fd"), count("/proc/self/task"), fuse, rss)
}

fn cycle() {
    let m = TestMount::new(MemFs::new(Default::default()), 2);
    let read = m.run(|p| {
        fs::write(p.join("f"), vec![7u8; 1 << 20]).unwrap();
        fs::read(p.join("f")).unwrap().len()
    });
    assert_eq!(read, 1 << 20);
    m.unmount();
}

#[test]
fn a_hundred_mount_cycles_leak_nothing() {
    if !can_mount("a_hundred_mount_cycles_leak_nothing") {
        return;
    }
    // Warm up: whatever is made once per process (the logger, lazily built statics, the
    // allocator's arenas) is made here.
    for _ in 0..5 {
        cycle();
    }
    let before = census();
    for _ in 0..100 {
        cycle();
    }
    let after = census();
    eprintln!("before: {before:?}, after 100 cycles: {after:?} (fds, threads, mounts, RSS KiB)");
    assert_eq!(after.0, before.0, "fds");
    assert_eq!(after.1, before.1, "threads");
    assert_eq!(after.2, before.2, "FUSE mounts");
    assert!(after.3 < before.3 + 16 * 1024, "RSS grew from {} to {} KiB", before.3, after.3);
}
