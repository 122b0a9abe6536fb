//! The async path against the real kernel, with a backend that waits (`cached::Slow`):
//! concurrent readers cost about one latency, not one each; readers of the same block share
//! one backend read; an interrupted slow read is cancelled and its caller gets EINTR; a
//! runtime that stops with requests in flight answers them, and the mount still unmounts.
//! Bounds have generous slack: they tell "concurrent" from "serialized", nothing finer.

mod common;

use common::{can_mount, TestMount};
use fusefs::cached::{Blocking, CacheConfig, CachedFs, LocalBackend, Slow};
use fusefs::AsyncFs;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

type Fs = AsyncFs<CachedFs<Slow<Blocking<LocalBackend>>>>;

/// `files` files of 64 KiB in a new directory.
fn source(files: usize) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    for i in 0..files {
        std::fs::write(src.path().join(format!("f{i}")), vec![i as u8; 64 << 10]).unwrap();
    }
    src
}

/// CachedFs over `src` with `latency` per backend call, direct I/O (every read reaches the
/// backend), served by `fs` on its runtime.
fn mount_with(src: &Path, latency: Duration, rt: Option<tokio::runtime::Handle>) -> TestMount<Fs> {
    let backend = Slow::new(Blocking::new(LocalBackend::new(src).unwrap()), latency);
    let cfg = CacheConfig::random_access();
    let mut c = common::config();
    c.threads = 2;
    cfg.apply(&mut c);
    let fs = CachedFs::new(backend, cfg);
    let fs = match rt {
        Some(h) => AsyncFs::with_runtime(fs, h),
        None => AsyncFs::new(fs).unwrap(),
    };
    TestMount::with_config(fs, c)
}

fn open_direct(p: &Path) -> File {
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(p).unwrap()
}

/// Open `file(i)` for each of `readers` threads, make the backend wait `latency` from then
/// on, and have the threads each read 4 KiB at once (after a barrier); how long the reads took.
/// Runs under the mount's time limit.
fn read_together(
    m: &TestMount<Fs>,
    readers: usize,
    file: fn(usize) -> String,
    latency: Duration,
) -> Duration {
    let fs = Arc::clone(m.session().filesystem());
    m.run(move |dir| {
        let files: Vec<File> = (0..readers).map(|i| open_direct(&dir.join(file(i)))).collect();
        fs.inner().backend().set_latency(latency);
        read_files(files, file)
    })
}

fn read_files(files: Vec<File>, file: fn(usize) -> String) -> Duration {
    let readers = files.len();
    let start = Arc::new(Barrier::new(readers + 1));
    let threads: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                start.wait();
                assert_eq!(f.read_at(&mut buf, 0).unwrap(), 4096);
                (i, buf[0])
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    for h in threads {
        let (i, byte) = h.join().unwrap();
        let expected = file(i)[1..].parse::<usize>().unwrap() as u8;
        assert_eq!(byte, expected, "reader {i} got its file's bytes");
    }
    t.elapsed()
}

#[test]
fn concurrent_readers_cost_one_latency_not_one_each() {
    if !can_mount("concurrent_readers_cost_one_latency_not_one_each") {
        return;
    }
    const READERS: usize = 64;
    let latency = Duration::from_millis(100);
    let src = source(READERS);
    let m = mount_with(src.path(), Duration::ZERO, None);
    let before = m.session().filesystem().inner().backend().calls().read;
    let took = read_together(&m, READERS, |i| format!("f{i}"), latency);
    let reads = m.session().filesystem().inner().backend().calls().read - before;
    eprintln!("{READERS} reads of a {latency:?} backend took {took:?} ({reads} backend reads)");
    assert_eq!(reads, READERS as u64, "one backend read per file");
    // Served one at a time by 2 threads they would take 32 latencies (3.2 s).
    assert!(took < latency * 10, "{took:?}: the reads waited their latency together");
    m.unmount();
}

#[test]
fn readers_of_one_block_share_one_backend_read() {
    if !can_mount("readers_of_one_block_share_one_backend_read") {
        return;
    }
    const READERS: usize = 32;
    let src = source(1);
    let m = mount_with(src.path(), Duration::ZERO, None);
    let before = m.session().filesystem().inner().backend().calls().read;
    read_together(&m, READERS, |_| "f0".into(), Duration::from_millis(200));
    let reads = m.session().filesystem().inner().backend().calls().read - before;
    let coalesced = m.session().filesystem().inner().stats().coalesced;
    eprintln!("{READERS} readers of one block: {reads} backend reads, {coalesced} coalesced");
    assert!(reads <= 4, "{reads} backend reads for {READERS} readers of one block");
    assert!(coalesced >= (READERS as u64) - reads, "the others waited on a read in flight");
    m.unmount();
}

extern "C" fn ignore(_: libc::c_int) {}

#[test]
fn an_interrupted_slow_read_is_cancelled_with_eintr() {
    if !can_mount("an_interrupted_slow_read_is_cancelled_with_eintr") {
        return;
    }
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    // A handler without SA_RESTART: the signal interrupts the read instead of restarting it.
    let act = SigAction::new(SigHandler::Handler(ignore), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &act) }.unwrap();
    let latency = Duration::from_secs(20);
    let src = source(1);
    let m = mount_with(src.path(), Duration::ZERO, None);
    let f = m.run(|p| open_direct(&p.join("f0")));
    // From now on every backend call waits 20 s: only cancellation can end the read soon.
    m.session().filesystem().inner().backend().set_latency(latency);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        tx.send(nix::sys::pthread::pthread_self()).unwrap();
        let mut buf = vec![0u8; 4096];
        let t = Instant::now();
        (f.read_at(&mut buf, 0), t.elapsed())
    });
    let thread = rx.recv().unwrap();
    // Wait until the read is at the backend, then signal the reader.
    let calls = || m.session().filesystem().inner().backend().calls().read;
    let deadline = Instant::now() + common::LIMIT;
    while calls() == 0 {
        assert!(Instant::now() < deadline, "the read never reached the backend");
        std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    nix::sys::pthread::pthread_kill(thread, Signal::SIGUSR1).unwrap();
    let (r, took) = reader.join().unwrap();
    let err = r.expect_err("the read was interrupted");
    assert_eq!(err.raw_os_error(), Some(libc::EINTR), "{err}");
    assert!(took < latency / 2, "cancelled at once ({took:?}), not after the latency");
    m.session().filesystem().inner().backend().set_latency(Duration::ZERO);
    m.unmount();
}

#[test]
fn a_runtime_that_stops_answers_what_is_in_flight() {
    if !can_mount("a_runtime_that_stops_answers_what_is_in_flight") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let src = source(1);
    let m = mount_with(src.path(), Duration::from_secs(20), Some(rt.handle().clone()));
    let path = m.path().join("f0");
    // The open waits a latency for its lookup; the runtime goes away meanwhile.
    let opener = std::thread::spawn(move || {
        let t = Instant::now();
        (std::fs::metadata(&path).map(|_| ()), t.elapsed())
    });
    let calls = || m.session().filesystem().inner().backend().calls().stat;
    let deadline = Instant::now() + common::LIMIT;
    while calls() == 0 {
        assert!(Instant::now() < deadline, "the lookup never reached the backend");
        std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    rt.shutdown_background();
    let (r, took) = opener.join().unwrap();
    let err = r.expect_err("the lookup in flight failed");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(took < Duration::from_secs(10), "answered at once ({took:?})");
    // New requests get EIO too, and the unmount does not hang.
    let again = m.run(|p| std::fs::metadata(p.join("f0")).map(|_| ()));
    assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::EIO));
    m.unmount();
}
