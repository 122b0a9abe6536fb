//! Back-pressure at `Config::max_in_flight`: a filesystem that answers later can have that
//! many requests waiting, whatever the number of transport threads, and no more; at the bound
//! the transport stops reading, and every request is answered once room is made (nothing
//! dropped or failed).

mod common;

use common::{can_mount, TestMount};
use fusefs::op;
use fusefs::*;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

const READERS: usize = 16;
const BOUND: usize = 4;

/// READs are kept, not answered; a releaser answers them.
#[derive(Default)]
struct Deferred {
    pending: Mutex<Vec<(u64, ReplyData)>>,
    arrived: Condvar,
    most_pending: Mutex<usize>,
}

fn file() -> FileAttr {
    let mut a = FileAttr::new(2, FileType::RegularFile, 0o644, SystemTime::UNIX_EPOCH);
    a.size = (READERS * 4096) as u64;
    a
}

impl Filesystem for Deferred {
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        if op.name == "f" {
            let _ = reply.entry(&Entry::new(file(), Duration::from_secs(60)));
        } else {
            reply.error(Errno::ENOENT)
        }
    }
    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        let a = match op.ino {
            ROOT_ID => FileAttr::new(ROOT_ID, FileType::Directory, 0o755, SystemTime::UNIX_EPOCH),
            _ => file(),
        };
        reply.attr(&a, Duration::from_secs(60))
    }
    fn open(&self, _: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        let _ = reply.opened(0, OpenFlags::DIRECT_IO);
    }
    fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
        let mut p = self.pending.lock().unwrap();
        p.push((op.offset, reply));
        let mut most = self.most_pending.lock().unwrap();
        *most = (*most).max(p.len());
        self.arrived.notify_all();
    }
}

/// Wait until `first` READs are waiting at once (the transport ran into its bound), then
/// answer them all as they come, `total` in all.
fn release(fs: &Deferred, first: usize, total: usize) {
    let mut p = fs.pending.lock().unwrap();
    while p.len() < first {
        let (guard, t) = fs.arrived.wait_timeout(p, common::LIMIT).unwrap();
        p = guard;
        assert!(!t.timed_out(), "{} READs waiting, expected {first}", p.len());
    }
    let mut answered = 0;
    while answered < total {
        while p.is_empty() {
            let (guard, t) = fs.arrived.wait_timeout(p, common::LIMIT).unwrap();
            p = guard;
            assert!(!t.timed_out(), "READ {} of {total} never came", answered + 1);
        }
        let (offset, reply) = p.remove(0);
        drop(p);
        reply.data(&[(offset / 4096) as u8; 4096]);
        answered += 1;
        p = fs.pending.lock().unwrap();
    }
}

#[test]
fn at_most_max_in_flight_wait_and_none_is_lost() {
    if !can_mount("at_most_max_in_flight_wait_and_none_is_lost") {
        return;
    }
    let mut config = common::config();
    config.threads = 2;
    config.max_in_flight = BOUND;
    let m = TestMount::with_config(Deferred::default(), config);
    let transport = m.session().transport();
    // The bound, and what must be reached: on fuse-uring the ring entries are the bound and
    // a caller's request waits for its own CPU's queue, so only one queue (2 entries with
    // this bound) is sure to fill.
    let (bound, first) = match transport {
        Transport::FuseUring => (m.session().stats().ring_entries, 2),
        _ => (BOUND, BOUND),
    };
    let fs = Arc::clone(m.session().filesystem());
    let releaser = std::thread::spawn(move || release(&fs, first, READERS));
    m.run(|p| {
        let readers: Vec<_> = (0..READERS)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_DIRECT)
                        .open(p.join("f"))
                        .unwrap();
                    let mut buf = vec![0u8; 4096];
                    let n = f.read_at(&mut buf, (i * 4096) as u64).unwrap();
                    assert_eq!(n, 4096);
                    assert!(buf.iter().all(|&b| b == i as u8), "reader {i} got its own block");
                })
            })
            .collect();
        for r in readers {
            common::join("a reader", r);
        }
    });
    common::join("the releaser", releaser);
    let most = *m.session().filesystem().most_pending.lock().unwrap();
    // Each transport thread may already have reads outstanding when the bound is reached:
    // each of the 2 blocking readers one, each of the 2 uring workers its 2 armed reads.
    let slack = match transport {
        Transport::Threads => 2 - 1,
        Transport::Uring => 2 * 2 - 1,
        Transport::FuseUring => 0,
    };
    eprintln!("{transport}: at most {most} READs waited (bound {bound}, slack {slack})");
    if transport == Transport::FuseUring {
        // The other transports take BOUND itself; fuse-uring sizes its queues from it.
        assert!(bound <= BOUND, "fuse-uring's automatic depth follows max_in_flight ({bound})");
    }
    // That `first` READs waited at once is `release`'s own condition.
    assert!(most <= bound + slack, "{most} READs waited at once; the bound is {bound}");
    // Every request answered (the readers' RELEASEs come asynchronously: wait for them).
    let deadline = std::time::Instant::now() + common::LIMIT;
    while m.session().stats().in_flight != 0 {
        assert!(std::time::Instant::now() < deadline, "requests left unanswered");
        std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    m.unmount();
}

/// At the bound nothing more is read; an abort of the connection must still be seen, and the
/// transport stop, though no reply comes to make room.
#[test]
fn at_the_bound_the_end_of_the_connection_is_seen() {
    if !can_mount("at_the_bound_the_end_of_the_connection_is_seen") {
        return;
    }
    let mut config = common::config();
    config.threads = 2;
    config.max_in_flight = 2;
    let m = TestMount::with_config(Deferred::default(), config);
    let abort =
        m.session().connection_id().map(|id| format!("/sys/fs/fuse/connections/{id}/abort"));
    if !abort.is_some_and(|a| std::path::Path::new(&a).exists()) {
        let why = "fusectl is not mounted at /sys/fs/fuse/connections";
        if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
            panic!("{why} (.ci/run mounts it)");
        }
        eprintln!("\n*** SKIPPED at_the_bound_the_end_of_the_connection_is_seen: {why} ***\n");
        return;
    }
    let dir = m.path().to_path_buf();
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let p = dir.join("f");
            std::thread::spawn(move || {
                let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(p);
                f.and_then(|f| f.read_at(&mut [0u8; 4096], (i * 4096) as u64))
            })
        })
        .collect();
    // Wait until the bound is reached: no reply will ever come.
    let fs = Arc::clone(m.session().filesystem());
    let deadline = std::time::Instant::now() + common::LIMIT;
    while fs.pending.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the bound was never reached");
        std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    m.session().abort().expect("abort through fusectl");
    while !m.session().is_finished() {
        assert!(std::time::Instant::now() < deadline, "the transport did not see the abort");
        std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    for r in readers {
        let err = common::join("a reader of the aborted mount", r).expect_err("aborted");
        assert!(matches!(err.raw_os_error(), Some(libc::ENOTCONN | libc::ECONNABORTED)), "{err}");
    }
    fs.pending.lock().unwrap().clear(); // answered into a closed connection: harmless
    m.unmount();
}

/// A lazy unmount from outside (`umount -l`) while READs are in flight: the mount leaves the
/// namespace at once, the waiting callers still get their answers, and once they close their
/// files the kernel ends the connection and the session finishes by itself.
#[test]
fn a_lazy_unmount_with_requests_in_flight_answers_them_then_ends() {
    if !can_mount("a_lazy_unmount_with_requests_in_flight_answers_them_then_ends") {
        return;
    }
    let mut config = common::config();
    config.threads = 2;
    let m = TestMount::with_config(Deferred::default(), config);
    let dir = m.path().to_path_buf();
    // Opened before the unmount: the open files keep the detached filesystem alive.
    let files: Vec<_> = (0..4)
        .map(|_| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(dir.join("f"))
                .unwrap()
        })
        .collect();
    let readers: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = f.read_at(&mut buf, (i * 4096) as u64)?;
                Ok::<_, std::io::Error>((n, buf[0]))
            })
        })
        .collect();
    let fs = Arc::clone(m.session().filesystem());
    {
        let mut p = fs.pending.lock().unwrap();
        while p.len() < 4 {
            let (guard, t) = fs.arrived.wait_timeout(p, common::LIMIT).unwrap();
            p = guard;
            assert!(!t.timed_out(), "{} READs waiting, expected 4", p.len());
        }
    }
    nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).expect("umount -l");
    assert!(!common::is_mounted(&dir), "detached from the namespace at once");
    assert!(!m.session().is_finished(), "open files keep the connection");
    for (offset, reply) in fs.pending.lock().unwrap().drain(..) {
        reply.data(&[(offset / 4096) as u8 + 1; 4096]);
    }
    for (i, r) in readers.into_iter().enumerate() {
        let (n, first) = common::join("a reader", r).expect("answered after the lazy unmount");
        assert_eq!((n, first), (4096, i as u8 + 1));
    }
    // The readers' files are closed: the kernel lets go, and the session sees it.
    let deadline = std::time::Instant::now() + common::LIMIT;
    while !m.session().is_finished() {
        assert!(std::time::Instant::now() < deadline, "the session did not see the end");
        std::thread::sleep(Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    m.unmount();
}
