//! A process that mounts and unmounts again and again keeps nothing: 100 cycles of mount,
//! use, unmount leave no fd, thread or mount behind and do not grow its memory, counted from
//! /proc/self. Alone in its test binary, so that no other test moves the counts.

mod common;
use common::{can_mount, is_mounted, TestMount};
use fusefs::memfs::MemFs;
use std::fs;
use std::path::PathBuf;

/// fds, threads, and resident KiB of this process.
fn census() -> (usize, usize, u64) {
    let count = |dir: &str| fs::read_dir(dir).unwrap().count();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    (count("/proc/self/fd"), count("/proc/self/task"), rss)
}

/// One cycle; the mountpoint it used.
fn cycle() -> PathBuf {
    let m = TestMount::new(MemFs::new(Default::default()), 2);
    let path = m.path().to_path_buf();
    let read = m.run(|p| {
        fs::write(p.join("f"), vec![7u8; 1 << 20]).unwrap();
        fs::read(p.join("f")).unwrap().len()
    });
    assert_eq!(read, 1 << 20);
    m.unmount();
    path
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
    // Only this test's own mountpoints are counted: other mounts on the machine may come
    // and go meanwhile.
    let paths: Vec<PathBuf> = (0..100).map(|_| cycle()).collect();
    let after = census();
    eprintln!("before: {before:?}, after 100 cycles: {after:?} (fds, threads, RSS KiB)");
    assert_eq!(after.0, before.0, "fds");
    assert_eq!(after.1, before.1, "threads");
    let left = paths.iter().filter(|p| is_mounted(p)).count();
    assert_eq!(left, 0, "mounts of the cycles left");
    assert!(after.2 < before.2 + 16 * 1024, "RSS grew from {} to {} KiB", before.2, after.2);
}
