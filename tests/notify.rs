//! Notifications checked for their effect on the kernel, not only for being accepted: a
//! poll(2) woken by `poll_wakeup`; `delete`, `expire_entry` and `inc_epoch` making the
//! kernel look a cached name up again; `prune` making it forget unused nodes. And the other
//! calls a filesystem answers for a client's own syscall: ioctl.

mod common;
use common::{can_mount, TestMount};
use fusefs::proto::Opcode;
use fusefs::*;
use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// `_IOWR('F', 0x42, u64)`: read a u64, write back its double.
const DOUBLE: u32 = (3 << 30) | (8 << 16) | ((b'F' as u32) << 8) | 0x42;

/// An hour: nothing the kernel caches expires by itself during a test.
const LONG: Duration = Duration::from_secs(3600);

/// A root with files "f1" .. "f9" (nodes 2 .. 10), and a POLL that says "readable" only once
/// `ready` is set, keeping the kernel's handle for the wakeup.
#[derive(Default)]
struct Notified {
    ready: AtomicBool,
    kh: Mutex<Option<u64>>,
    polled: Condvar,
}

fn attr(ino: u64) -> FileAttr {
    let kind = if ino == ROOT_ID { FileType::Directory } else { FileType::RegularFile };
    FileAttr::new(ino, kind, 0o755, SystemTime::UNIX_EPOCH)
}

impl Filesystem for Notified {
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        let n = op.name.to_str().and_then(|n| n.strip_prefix('f')).and_then(|n| n.parse().ok());
        match n {
            Some(n @ 1..=9u64) if op.parent == ROOT_ID => {
                let _ = reply.entry(&Entry::new(attr(n + 1), LONG));
            }
            _ => reply.error(Errno::ENOENT),
        }
    }
    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        reply.attr(&attr(op.ino), LONG);
    }
    fn open(&self, _: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        let _ = reply.opened(0, OpenFlags::DIRECT_IO);
    }
    fn release(&self, _: &Context<'_>, _: op::Release, reply: ReplyEmpty) {
        reply.ok();
    }
    fn ioctl(&self, _: &Context<'_>, op: op::Ioctl<'_>, reply: ReplyIoctl) {
        if op.cmd != DOUBLE || op.in_data.len() != 8 || op.out_size != 8 {
            return reply.error(Errno::ENOTTY);
        }
        let v = u64::from_ne_bytes(op.in_data.try_into().unwrap());
        reply.ioctl(7, &(v * 2).to_ne_bytes());
    }
    fn poll(&self, _: &Context<'_>, op: op::Poll, reply: ReplyPoll) {
        if self.ready.load(Ordering::SeqCst) {
            return reply.revents(libc::POLLIN as u32);
        }
        if op.schedule_notify {
            *self.kh.lock().unwrap() = Some(op.kh);
            self.polled.notify_all();
        }
        reply.revents(0);
    }
}

fn mount(test: &str) -> Option<TestMount<Notified>> {
    let mut c = common::config();
    c.threads = 2;
    c.capabilities |= InitFlags::HAS_EXPIRE_ONLY; // for expire_entry
    can_mount(test).then(|| TestMount::with_config(Notified::default(), c))
}

#[test]
fn poll_wakeup_wakes_a_waiting_poll() {
    let Some(m) = mount("poll_wakeup_wakes_a_waiting_poll") else { return };
    let (tx, done) = std::sync::mpsc::channel();
    let path = m.path().join("f1");
    let poller = std::thread::spawn(move || {
        let f = std::fs::File::open(path).unwrap();
        let mut fds = [libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: `fds` is a live array of one pollfd for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 20_000) };
        let _ = tx.send((n, fds[0].revents));
    });
    let fs = m.session().filesystem();
    let kh = {
        let mut kh = fs.kh.lock().unwrap();
        while kh.is_none() {
            let (g, t) = fs.polled.wait_timeout(kh, common::LIMIT).unwrap();
            kh = g;
            assert!(!t.timed_out(), "the kernel never asked to be notified");
        }
        kh.unwrap()
    };
    assert!(done.try_recv().is_err(), "poll(2) waits: nothing is readable yet");
    fs.ready.store(true, Ordering::SeqCst);
    m.session().notifier().poll_wakeup(kh).expect("POLL notification");
    let (n, revents) = done.recv_timeout(common::LIMIT).expect("poll(2) woke up");
    assert_eq!((n, revents & libc::POLLIN), (1, libc::POLLIN));
    common::join("the poller", poller);
    m.unmount();
}

/// Look `name` up through the mount (stat), returning how many LOOKUPs that cost.
fn lookups_for(m: &TestMount<Notified>, name: &'static str) -> u64 {
    let before = m.answered(Opcode::Lookup);
    m.run(move |p| std::fs::metadata(p.join(name)).unwrap());
    m.answered(Opcode::Lookup) - before
}

#[test]
fn delete_expire_and_inc_epoch_make_the_kernel_look_again() {
    const TEST: &str = "delete_expire_and_inc_epoch_make_the_kernel_look_again";
    let Some(m) = mount(TEST) else {
        return;
    };
    let n = m.session().notifier();
    for name in ["f1", "f2", "f3"] {
        assert_eq!(lookups_for(&m, name), 1, "the first stat of {name} looks it up");
        assert_eq!(lookups_for(&m, name), 0, "then the entry is cached for an hour");
    }
    // DELETE: the name is gone from the kernel's cache (as if unlinked behind the mount).
    n.delete(ROOT_ID, 2, OsStr::new("f1")).expect("DELETE");
    assert_eq!(lookups_for(&m, "f1"), 1, "after DELETE, looked up again");
    // INVAL_ENTRY with EXPIRE_ONLY (7.38): stale, so the next use looks it up again.
    if common::kernel_gave(TEST, &m, InitFlags::HAS_EXPIRE_ONLY) {
        n.expire_entry(ROOT_ID, OsStr::new("f2")).expect("expire");
        assert_eq!(lookups_for(&m, "f2"), 1, "after expire_entry, looked up again");
    }
    // INC_EPOCH (7.44): every cached entry is stale at once.
    if m.session().negotiated().minor >= 44 {
        assert_eq!(lookups_for(&m, "f3"), 0);
        n.inc_epoch().expect("INC_EPOCH");
        assert_eq!(lookups_for(&m, "f3"), 1, "after inc_epoch, looked up again");
    } else {
        common::kernel_lacks(TEST, "FUSE_NOTIFY_INC_EPOCH (protocol 7.44)");
    }
    m.unmount();
}

#[test]
fn prune_makes_the_kernel_forget_unused_nodes() {
    let test = "prune_makes_the_kernel_forget_unused_nodes";
    let Some(m) = mount(test) else { return };
    if m.session().negotiated().minor < 45 {
        return common::kernel_lacks(test, "FUSE_NOTIFY_PRUNE (protocol 7.45)");
    }
    for name in ["f4", "f5", "f6"] {
        lookups_for(&m, name);
    }
    let forgets = || m.answered(Opcode::Forget) + m.answered(Opcode::BatchForget);
    let before = forgets();
    // Nodes 5, 6, 7 are "f4" .. "f6", unused (no open file): the kernel drops them.
    m.session().notifier().prune(&[5, 6, 7]).expect("PRUNE");
    common::wait_until("a FORGET after PRUNE", || forgets() != before);
    assert_eq!(lookups_for(&m, "f4"), 1, "a pruned node is looked up again");
    m.unmount();
}

/// A restricted ioctl (the only kind a FUSE mount passes; unrestricted ones come from CUSE)
/// with a real `_IOWR` number: the kernel copies the argument in by the size the number
/// encodes, and the answer back out.
#[test]
fn a_restricted_ioctl_carries_its_argument_both_ways() {
    let Some(m) = mount("a_restricted_ioctl_carries_its_argument_both_ways") else { return };
    let got = m.run(|p| {
        let f = std::fs::File::open(p.join("f1")).unwrap();
        let mut v: u64 = 21;
        // SAFETY: DOUBLE is _IOWR(.., u64): the kernel reads and writes 8 bytes at `&mut v`.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), DOUBLE as _, &mut v as *mut u64) };
        (rc, v)
    });
    assert_eq!(got, (7, 42), "the ioctl's result and its output");
    // An unknown command gets the filesystem's error.
    let e = m.run(|p| {
        let f = std::fs::File::open(p.join("f1")).unwrap();
        let mut v: u64 = 0;
        // SAFETY: as above; the command is refused before anything is written.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), (DOUBLE + 1) as _, &mut v as *mut u64) };
        (rc, std::io::Error::last_os_error().raw_os_error())
    });
    assert_eq!(e, (-1, Some(libc::ENOTTY)));
    m.unmount();
}

/// READs held, to be answered by the test: (the request's unique as the kernel sent it,
/// the reply).
#[derive(Default)]
struct Held {
    reads: Mutex<Vec<(u64, ReplyData)>>,
    arrived: Condvar,
}

impl Filesystem for Held {
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        if op.name == "f" {
            let mut a = attr(2);
            a.size = 6;
            let _ = reply.entry(&Entry::new(a, LONG));
        } else {
            reply.error(Errno::ENOENT);
        }
    }
    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        let mut a = attr(op.ino);
        a.size = 6;
        reply.attr(&a, LONG);
    }
    fn open(&self, _: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        let _ = reply.opened(0, OpenFlags::DIRECT_IO);
    }
    fn read(&self, ctx: &Context<'_>, _: op::Read, reply: ReplyData) {
        self.reads.lock().unwrap().push((ctx.unique(), reply));
        self.arrived.notify_all();
    }
}

impl Held {
    /// Wait until `n` READs are held; their uniques.
    fn wait_for(&self, n: usize) -> Vec<u64> {
        let mut r = self.reads.lock().unwrap();
        while r.len() < n {
            let (g, t) = self.arrived.wait_timeout(r, common::LIMIT).unwrap();
            r = g;
            assert!(!t.timed_out(), "{} READs arrived, expected {n}", r.len());
        }
        r.iter().map(|(u, _)| *u).collect()
    }
}

/// RESEND (with HAS_RESEND): the kernel hands every request the daemon holds out again, its
/// unique marked with bit 63; the answer to the resent one is what the caller gets, and the
/// stale original's answer is refused by the kernel.
///
/// Except on fuse-uring: the 6.18 kernel resends what waits on the /dev/fuse processing
/// queues only, not a request held in a ring entry. There the original is not handed out
/// again, and its answer is the one the caller gets (which would hang, were it resent).
#[test]
fn resend_hands_a_held_request_out_again() {
    if !can_mount("resend_hands_a_held_request_out_again") {
        return;
    }
    let mut c = common::config();
    c.threads = 2;
    c.capabilities |= InitFlags::HAS_RESEND;
    let m = TestMount::with_config(Held::default(), c);
    if !common::kernel_gave("resend_hands_a_held_request_out_again", &m, InitFlags::HAS_RESEND) {
        return;
    }
    let path = m.path().join("f");
    let reader = std::thread::spawn(move || {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path);
        let mut buf = [0u8; 6];
        f.and_then(|f| std::os::unix::fs::FileExt::read_at(&f, &mut buf, 0))
            .map(|n| buf[..n].to_vec())
    });
    let fs = m.session().filesystem();
    let first = fs.wait_for(1)[0];
    m.session().notifier().resend().expect("RESEND");
    if m.session().transport() == fusefs::Transport::FuseUring {
        eprintln!("\n*** fuse-uring: RESEND does not reach requests held in ring entries ***\n");
        let (_, original) = fs.reads.lock().unwrap().pop().unwrap();
        original.data(b"origin");
        let got =
            common::with_limit("the reader", common::LIMIT, || {}, move || reader.join().unwrap());
        assert_eq!(got.unwrap(), b"origin");
        return m.unmount();
    }
    let uniques = fs.wait_for(2);
    let resend_bit = fusefs::proto::flags::UNIQUE_RESEND_FLAG;
    assert_eq!(uniques[1], first | resend_bit, "the same request, marked as resent");
    let (stale, resent) = {
        let mut r = fs.reads.lock().unwrap();
        let resent = r.pop().unwrap();
        (r.pop().unwrap(), resent)
    };
    resent.1.data(b"resent");
    stale.1.data(b"stale!"); // the kernel refuses it: that request now waits under bit 63
    let got =
        common::with_limit("the reader", common::LIMIT, || {}, move || reader.join().unwrap());
    assert_eq!(got.unwrap(), b"resent");
    m.unmount();
}
