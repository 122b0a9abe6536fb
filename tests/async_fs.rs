//! The async path against the real kernel, with a backend that waits (`cached::Slow`):
//! concurrent readers cost about one latency, not one each; readers of the same block share
//! one backend read; an interrupted slow read is cancelled and its caller gets EINTR; a
//! runtime that stops with requests in flight answers them, and the mount still unmounts.
//! Bounds have generous slack: they tell "concurrent" from "serialized", nothing finer.

mod common;

use common::{can_mount, TestMount};
use fusefs::cached::{CacheConfig, CachedFs, LocalBackend, Slow};
use fusefs::AsyncFs;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

type Fs = AsyncFs<CachedFs<Slow<LocalBackend>>>;

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
    let backend = Slow::new(LocalBackend::new(src).unwrap(), latency);
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

/// Each file read (4 KiB at 0) by a thread of its own, all at once (after a barrier), and
/// checked to hold its own bytes; how long the reads took.
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
        let (i, byte) = common::join("a reader", h);
        let expected = file(i)[1..].parse::<usize>().unwrap() as u8;
        assert_eq!(byte, expected, "reader {i} got its file's bytes");
    }
    t.elapsed()
}

/// `readers` threads each read 4 KiB of `file(i)` at once while the backend holds every
/// call; once at least [`TOGETHER`] wait in the filesystem at once, the backend lets them go.
/// The backend reads made for them, and how many were waiting at the release.
///
/// Waiting means arrived where a read waits: in a backend read (held) or joined to one in
/// flight. A request the session counts in flight may not be there yet (its task not yet
/// run): counting those, a straggler once made a second backend read after the release.
fn read_while_held(m: &TestMount<Fs>, readers: usize, file: fn(usize) -> String) -> (u64, usize) {
    let fs = Arc::clone(m.session().filesystem());
    let before = fs.inner().backend().calls().read;
    let coalesced = fs.inner().stats().coalesced;
    let arrived = || {
        let cached = fs.inner();
        (cached.backend().calls().read - before + cached.stats().coalesced - coalesced) as usize
    };
    let files: Vec<File> =
        m.run(move |dir| (0..readers).map(|i| open_direct(&dir.join(file(i)))).collect());
    fs.inner().backend().hold();
    let reading = std::thread::spawn(move || read_files(files, file));
    let together = TOGETHER.min(readers);
    common::wait_until("reads waiting in the daemon together", || arrived() >= together);
    let waiting = arrived();
    fs.inner().backend().release();
    common::join("the readers", reading);
    (fs.inner().backend().calls().read - before, waiting)
}

/// Reads that must wait in the daemon at once: 8 times its 2 threads, so they are not
/// served one per thread; and fewer than fuse-uring's entries in one CPU's queue (23 here,
/// from `ring_memory`), since a request waits for its own CPU's queue.
const TOGETHER: usize = 16;

#[test]
fn concurrent_readers_wait_their_latency_together() {
    if !can_mount("concurrent_readers_wait_their_latency_together") {
        return;
    }
    const READERS: usize = 64;
    let src = source(READERS);
    let m = mount_with(src.path(), Duration::ZERO, None);
    let (reads, waiting) = read_while_held(&m, READERS, |i| format!("f{i}"));
    eprintln!("{waiting} of {READERS} reads waited in the daemon together");
    assert_eq!(reads, READERS as u64, "one backend read per file");
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
    let (reads, waiting) = read_while_held(&m, READERS, |_| "f0".into());
    let coalesced = m.session().filesystem().inner().stats().coalesced;
    eprintln!(
        "{READERS} readers of one block, {waiting} waiting together: {reads} backend reads, \
         {coalesced} coalesced"
    );
    // The readers waiting at the release shared one read; each later one may make its own.
    let most = 1 + (READERS - waiting) as u64;
    assert!(reads <= most, "{reads} backend reads for {READERS} readers of one block");
    assert!(coalesced >= waiting as u64 - 1, "those waiting shared the read in flight");
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
    let (r, took) = common::join("the reader", reader);
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
    common::wait_until("the lookup reaching the backend", || calls() > 0);
    rt.shutdown_background();
    // A regression (no answer once the runtime stops) fails here instead of hanging.
    let (r, took) = common::join("the open in flight", opener);
    let err = r.expect_err("the lookup in flight failed");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(took < Duration::from_secs(10), "answered at once ({took:?})");
    // New requests get EIO too, and the unmount does not hang.
    let again = m.run(|p| std::fs::metadata(p.join("f0")).map(|_| ()));
    assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::EIO));
    m.unmount();
}
