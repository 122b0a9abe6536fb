//! No allocation on the hot request path, checked with a counting allocator.
//!
//! Each worker thread counts its own allocations. The filesystem below does not allocate,
//! and at every call it compares the worker's count with the count at the previous call on
//! that thread: the difference is what the session allocated in between (sending the
//! previous reply, reading, parsing and dispatching this request). After a warm-up (the
//! buffer pool filling), it must be zero for LOOKUP, GETATTR, OPEN, READ, WRITE, READDIR,
//! READDIRPLUS, CREATE, UNLINK, RELEASE and FORGET.

mod common;
use common::{can_mount, TestMount};
use fusefs::op;
use fusefs::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, SystemTime};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static LAST: Cell<Option<u64>> = const { Cell::new(None) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; the counter is a const-initialised
// thread-local Cell, which never allocates (try_with skips it during thread teardown).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
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

/// Requests served in all before any is checked (the buffer pool fills), and on each thread
/// (its first requests set up what it keeps). The FORGET reader of fuse-uring serves only
/// FORGETs, a few hundred here: a per-thread warm-up alone would never check it.
const WARMUP: u64 = 300;
const THREAD_WARMUP: u64 = 3;
static SERVED: AtomicU64 = AtomicU64::new(0);
static CHECKED: AtomicU64 = AtomicU64::new(0);
/// Requests checked, by opcode number.
static CHECKED_BY: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);
static LAST_BAD_OPCODE: AtomicU64 = AtomicU64::new(0);

/// Compare this worker's allocation count with its count at the previous call.
fn checkpoint(ctx: &Context<'_>) {
    let now = ALLOCS.with(|c| c.get());
    let calls = CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let served = SERVED.fetch_add(1, SeqCst);
    if let Some(before) = LAST.with(|l| l.replace(Some(now))) {
        if calls > THREAD_WARMUP && served > WARMUP {
            CHECKED.fetch_add(1, SeqCst);
            if let Some(c) = CHECKED_BY.get(ctx.opcode().number() as usize) {
                c.fetch_add(1, SeqCst);
            }
            if now != before {
                VIOLATIONS.fetch_add(1, SeqCst);
                LAST_BAD_OPCODE.store(ctx.opcode().number() as u64, SeqCst);
            }
        }
    }
}

static DATA: [u8; 8192] = [b'd'; 8192];

/// The opcodes whose path must not allocate, each of which the test must reach.
const HOT_OPCODES: [(&str, u32); 11] = [
    ("LOOKUP", 1),
    ("FORGET", 2),
    ("GETATTR", 3),
    ("UNLINK", 10),
    ("OPEN", 14),
    ("READ", 15),
    ("WRITE", 16),
    ("RELEASE", 18),
    ("READDIR", 28),
    ("CREATE", 35),
    ("READDIRPLUS", 44),
];

/// "f" always exists; "new" from its CREATE to its UNLINK (so that `File::create` makes a
/// CREATE, not an OPEN of a file already there).
#[derive(Default)]
struct Hot {
    new_exists: std::sync::atomic::AtomicBool,
}

fn file_attr(ino: u64) -> FileAttr {
    let mut a = FileAttr::new(ino, FileType::RegularFile, 0o644, SystemTime::UNIX_EPOCH);
    a.size = DATA.len() as u64;
    a
}

impl Filesystem for Hot {
    fn lookup(&self, ctx: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        checkpoint(ctx);
        if op.name == "f" {
            let _ = reply.entry(&Entry::new(file_attr(2), Duration::ZERO));
        } else if op.name == "new" && self.new_exists.load(SeqCst) {
            let _ = reply.entry(&Entry::new(file_attr(3), Duration::ZERO));
        } else {
            reply.error(Errno::ENOENT)
        }
    }
    fn forget(&self, ctx: &Context<'_>, _: op::Forget) {
        checkpoint(ctx);
    }
    fn getattr(&self, ctx: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        checkpoint(ctx);
        let a = if op.ino == 1 {
            FileAttr::new(1, FileType::Directory, 0o755, SystemTime::UNIX_EPOCH)
        } else {
            file_attr(op.ino)
        };
        reply.attr(&a, Duration::ZERO)
    }
    fn setattr(&self, ctx: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        checkpoint(ctx);
        reply.attr(&file_attr(op.ino), Duration::ZERO)
    }
    fn open(&self, ctx: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        checkpoint(ctx);
        let _ = reply.opened(1, OpenFlags::DIRECT_IO);
    }
    fn read(&self, ctx: &Context<'_>, op: op::Read, reply: ReplyData) {
        checkpoint(ctx);
        let start = (op.offset as usize).min(DATA.len());
        // Both ways of answering READ: from the filesystem's bytes, and written in place.
        if reply.unique() % 2 == 0 {
            reply.data(&DATA[start..])
        } else {
            reply.fill(|buf| {
                let n = buf.len().min(DATA.len() - start);
                buf[..n].copy_from_slice(&DATA[start..start + n]);
                Ok(n)
            })
        }
    }
    fn write(&self, ctx: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        checkpoint(ctx);
        reply.written(op.data.len() as u32)
    }
    fn release(&self, ctx: &Context<'_>, _: op::Release, reply: ReplyEmpty) {
        checkpoint(ctx);
        reply.ok()
    }
    fn create(&self, ctx: &Context<'_>, _: op::Create<'_>, reply: ReplyCreate) {
        checkpoint(ctx);
        self.new_exists.store(true, SeqCst);
        let _ = reply.created(&Entry::new(file_attr(3), Duration::ZERO), 2, OpenFlags::DIRECT_IO);
    }
    fn unlink(&self, ctx: &Context<'_>, _: op::Unlink<'_>, reply: ReplyEmpty) {
        checkpoint(ctx);
        self.new_exists.store(false, SeqCst);
        reply.ok()
    }
    fn readdir(&self, ctx: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        checkpoint(ctx);
        if op.offset == 0 {
            let _ = reply.add(2, 1, FileType::RegularFile, "f");
        }
        reply.ok()
    }
    fn readdirplus(&self, ctx: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectoryPlus) {
        checkpoint(ctx);
        if op.offset == 0 {
            let _ = reply.add(&Entry::new(file_attr(2), Duration::ZERO), 1, "f");
        }
        let _ = reply.ok();
    }
}

#[test]
fn hot_path_does_not_allocate() {
    if !can_mount("hot_path_does_not_allocate") {
        return;
    }
    for threads in [1, 2] {
        CHECKED.store(0, SeqCst);
        SERVED.store(0, SeqCst);
        VIOLATIONS.store(0, SeqCst);
        CHECKED_BY.iter().for_each(|c| c.store(0, SeqCst));
        let m = TestMount::new(Hot::default(), threads);
        m.run(|p| {
            let mut buf = [0u8; 4096];
            for i in 0..600 {
                fs::metadata(p.join("f")).unwrap();
                let mut f = fs::File::open(p.join("f")).unwrap();
                let _ = f.read(&mut buf).unwrap();
                drop(f);
                let mut w = fs::OpenOptions::new().write(true).open(p.join("f")).unwrap();
                w.write_all(&buf[..512]).unwrap();
                drop(w);
                if i % 4 == 0 {
                    drop(fs::File::create(p.join("new")).unwrap());
                    fs::remove_file(p.join("new")).unwrap();
                    fs::read_dir(&p).unwrap().for_each(drop);
                }
            }
        });
        m.unmount();
        let (checked, bad) = (CHECKED.load(SeqCst), VIOLATIONS.load(SeqCst));
        eprintln!("{threads} thread(s): {checked} requests checked, {bad} allocated");
        assert!(checked > 1000, "enough requests were checked ({checked})");
        // Each opcode the claim names was checked (a thread that never warms up checks none).
        let unchecked: Vec<&str> = HOT_OPCODES
            .iter()
            .filter(|(_, n)| CHECKED_BY[*n as usize].load(SeqCst) == 0)
            .map(|(name, _)| *name)
            .collect();
        assert!(unchecked.is_empty(), "never checked: {unchecked:?}");
        assert_eq!(bad, 0, "requests that allocated; last opcode {}", LAST_BAD_OPCODE.load(SeqCst));
    }
}
