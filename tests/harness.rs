//! The protocol core without a mount: request bytes in through `testing::Harness`, reply
//! bytes out. Covers what the kernel cannot be made to send: unknown opcodes, malformed
//! requests, and a fuzzed stream, for which every reply must be well formed and every
//! request that wants an answer must get exactly one.

use fusefs::op;
use fusefs::testing::{Harness, RequestBuilder};
use fusefs::*;
use std::time::{Duration, SystemTime};

/// (len, error, unique) of a raw reply.
fn parse_reply(r: &[u8]) -> (u32, i32, u64) {
    let len = u32::from_le_bytes(r[0..4].try_into().unwrap());
    let err = i32::from_le_bytes(r[4..8].try_into().unwrap());
    let unique = u64::from_le_bytes(r[8..16].try_into().unwrap());
    (len, err, unique)
}

/// Answers every operation with something valid, and drops the reply of GETATTR on node 9.
struct Everything;
impl Filesystem for Everything {
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        let a = FileAttr::new(2, FileType::RegularFile, 0o644, SystemTime::now());
        if op.name.is_empty() {
            reply.negative(Duration::from_secs(1))
        } else {
            let _ = reply.entry(&Entry::new(a, Duration::from_secs(1)));
        }
    }
    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        if op.ino == 9 {
            return drop(reply);
        }
        reply.attr(
            &FileAttr::new(op.ino, FileType::Directory, 0o755, SystemTime::now()),
            Duration::ZERO,
        )
    }
    fn read(&self, _: &Context<'_>, _: op::Read, reply: ReplyData) {
        reply.data(&[7; 100])
    }
    fn write(&self, _: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        reply.written(op.data.len() as u32)
    }
    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        for i in op.offset..op.offset + 1000 {
            if reply.add(i + 2, i + 1, FileType::RegularFile, format!("n{i}")) {
                break;
            }
        }
        reply.ok()
    }
    fn getxattr(&self, _: &Context<'_>, _: op::Getxattr<'_>, reply: ReplyXattr) {
        reply.value(b"value")
    }
}

#[test]
fn unknown_opcode_gets_enosys() {
    let h = Harness::new(Everything);
    let mut rq = h.builder();
    for opcode in [7u32, 54, 4095, 9999, u32::MAX] {
        let r = h.request(&rq.raw(opcode, 1, b"body"));
        assert_eq!(r.len(), 1, "opcode {opcode}: exactly one reply");
        assert_eq!(parse_reply(&r[0]), (16, -libc::ENOSYS, rq.last_unique()));
    }
}

#[test]
fn malformed_requests_get_eio_and_no_reply_ops_get_none() {
    let h = Harness::new(Everything);
    let mut rq = h.builder();
    // LOOKUP without the name's NUL.
    let r = h.call(&rq.raw(1, 1, b"abc"));
    assert_eq!(r.body().unwrap_err(), Errno::EIO);
    // Header length disagreeing with the buffer.
    let mut b = rq.getattr(1, None);
    b[0] = 200;
    assert_eq!(h.call(&b).body().unwrap_err(), Errno::EIO);
    // Too short even for a header: nothing to answer.
    assert!(h.request(&[1, 2, 3]).is_empty());
    // FORGET, BATCH_FORGET and INTERRUPT: no reply, also when malformed.
    assert!(h.request(&rq.forget(1, 1)).is_empty());
    assert!(h.request(&rq.raw(2, 1, &[1])).is_empty());
    assert!(h.request(&rq.raw(42, 1, &[0; 8])).is_empty());
    assert!(h.request(&rq.interrupt(12)).is_empty());
    // A second INIT after the session started: ENOSYS.
    let init = rq.init(7, 45, 0, InitFlags::empty());
    assert_eq!(h.call(&init).body().unwrap_err(), Errno::ENOSYS);
}

#[test]
fn dropped_reply_answers_eio() {
    let h = Harness::new(Everything);
    let r = h.call(&h.builder().getattr(9, None));
    assert_eq!(parse_reply(r.bytes()), (16, -libc::EIO, r.unique()));
}

#[test]
fn xattr_value_answers_size_data_or_erange() {
    let h = Harness::new(Everything);
    let mut rq = h.builder();
    let mut ask = |size: u32| h.call(&rq.getxattr(1, "user.x", size));
    let r = ask(0);
    assert_eq!(r.bytes().len(), 24);
    assert_eq!(&r.data().unwrap()[..4], &5u32.to_le_bytes(), "size only: the value's size");
    assert_eq!(ask(64).data().unwrap(), b"value");
    assert_eq!(ask(3).data().unwrap_err(), Errno::ERANGE);
}

#[test]
fn read_replies_never_exceed_the_requested_size() {
    let h = Harness::new(Everything);
    let r = h.call(&h.builder().read(2, 0, 0, 10));
    assert_eq!(r.data().unwrap().len(), 10, "100 bytes offered, 10 asked for, 10 sent");
}

#[test]
fn typed_requests_and_replies() {
    let h = Harness::new(Everything);
    let mut rq = h.builder();
    let e = h.call(&rq.lookup(ROOT_ID, "f")).entry().unwrap();
    assert_eq!((e.nodeid, e.attr.mode), (2, libc::S_IFREG | 0o644));
    assert_eq!(h.call(&rq.lookup(ROOT_ID, "")).entry().unwrap().nodeid, 0, "negative entry");
    let a = h.call(&rq.getattr(ROOT_ID, None)).attr().unwrap();
    assert_eq!(a.attr.mode & libc::S_IFMT, libc::S_IFDIR);
    assert_eq!(h.call(&rq.write(2, 0, 0, b"four")).written().unwrap(), 4);
    let listing = h.call(&rq.readdir(ROOT_ID, 0, 0, 200)).entries(false).unwrap();
    assert_eq!(listing[0].name, "n0");
    assert_eq!((listing[1].ino, listing[1].offset), (3, 2));
    // Continuing after the last cookie received starts with the next entry.
    let next = h.call(&rq.readdir(ROOT_ID, 0, listing.last().unwrap().offset, 200));
    let next = next.entries(false).unwrap();
    assert_eq!(next[0].offset, listing.last().unwrap().offset + 1);
}

#[test]
fn a_full_listing_stays_full() {
    struct Shrinking;
    impl Filesystem for Shrinking {
        fn readdir(&self, _: &Context<'_>, _: op::Readdir, mut reply: ReplyDirectory) {
            // A long name that does not fit, then a short one that would.
            assert!(!reply.add(2, 1, FileType::RegularFile, "a".repeat(40)));
            assert!(reply.add(3, 2, FileType::RegularFile, "b".repeat(40)), "full");
            assert!(reply.add(4, 3, FileType::RegularFile, "c"), "still full, though it fits");
            reply.ok()
        }
    }
    let h = Harness::new(Shrinking);
    let r = h.call(&h.builder().readdir(ROOT_ID, 0, 0, 100)); // room for 64 + 32 bytes
    let names: Vec<_> = r.entries(false).unwrap().into_iter().map(|e| e.offset).collect();
    assert_eq!(names, [1], "nothing added after the first entry that did not fit");
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn fuzzed_requests_get_exactly_one_well_formed_reply() {
    let seed = 0xf00d_u64;
    eprintln!("dispatch fuzz seed {seed}");
    let h = Harness::new(Everything);
    let mut rq = RequestBuilder::new();
    let mut rng = Rng(seed);
    for _ in 0..30_000u64 {
        let opcode = (rng.next() % 56) as u32;
        let body_len = (rng.next() % 120) as usize;
        let body: Vec<u8> = (0..body_len).map(|_| (rng.next() % 4) as u8 * 40).collect();
        let mut b = rq.raw(opcode, 1, &body);
        let unique = rq.last_unique();
        if rng.next() % 8 == 0 {
            let l = (rng.next() % 200) as u32;
            b[..4].copy_from_slice(&l.to_le_bytes());
        }
        let replies = h.request(&b);
        let honest = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize == b.len();
        let silent = matches!(opcode, 2 | 36 | 41 | 42);
        if silent {
            assert!(replies.is_empty(), "opcode {opcode} must not be answered");
            continue;
        }
        assert_eq!(replies.len(), 1, "opcode {opcode}, body {body_len}, honest {honest}");
        let (len, err, u) = parse_reply(&replies[0]);
        assert_eq!(len as usize, replies[0].len(), "length field is the real length");
        assert_eq!(u, unique);
        assert!((-511..=0).contains(&err), "error {err} in range");
    }
}

#[test]
fn destroy_is_answered_and_calls_the_filesystem_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counted(AtomicUsize);
    impl Filesystem for Counted {
        fn destroy(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let h = Harness::new(Counted(AtomicUsize::new(0)));
    let mut rq = h.builder();
    assert_eq!(h.call(&rq.destroy()).body(), Ok(&[][..]));
    assert_eq!(h.call(&rq.destroy()).body(), Ok(&[][..]));
    assert_eq!(h.filesystem().0.load(Ordering::SeqCst), 1);
}

#[test]
fn read_sizes_are_capped_at_the_negotiated_payload() {
    struct Sizes(std::sync::atomic::AtomicU32);
    impl Filesystem for Sizes {
        fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
            self.0.store(op.size, std::sync::atomic::Ordering::SeqCst);
            reply.data(&[])
        }
    }
    let h = Harness::new(Sizes(std::sync::atomic::AtomicU32::new(0)));
    assert_eq!(h.call(&h.builder().read(2, 0, 0, u32::MAX)).data(), Ok(&[][..]));
    let seen = h.filesystem().0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(seen, 1 << 20, "a 4 GiB READ reaches the filesystem as the 1 MiB maximum");
}

#[test]
fn memfs_takes_back_lookups_the_kernel_never_received() {
    use fusefs::memfs::{Caller, MemFs};
    use std::ffi::OsStr;
    let h = Harness::new(MemFs::default());
    let fs = h.filesystem();
    let root = Caller { uid: 0, gid: 0 };
    let f = fs.create(1, OsStr::new("f"), 0o100644, 0, root).unwrap();
    fs.forget(f.ino, 1); // the kernel forgot the CREATE's reference
                         // A LOOKUP whose reply the kernel refuses (its caller was interrupted meanwhile).
    let mut rq = h.builder();
    h.refuse_next_reply();
    assert!(h.request(&rq.lookup(ROOT_ID, "f")).is_empty());
    fs.unlink(1, OsStr::new("f")).unwrap();
    assert_eq!(fs.stats().nodes, 1, "no lookup left behind: the unlinked node is freed");
    // The same for a READDIRPLUS that carried an entry.
    let g = fs.create(1, OsStr::new("g"), 0o100644, 0, root).unwrap();
    fs.forget(g.ino, 1);
    h.refuse_next_reply();
    assert!(h.request(&rq.readdirplus(ROOT_ID, 0, 0, 4096)).is_empty());
    fs.unlink(1, OsStr::new("g")).unwrap();
    assert_eq!(fs.stats().nodes, 1);
}

#[test]
fn replies_answered_later_are_kept_and_builders_do_not_collide() {
    use std::sync::Mutex;
    /// Answers GETATTR at once, and keeps READ replies for later.
    struct Later(Mutex<Vec<ReplyData>>);
    impl Filesystem for Later {
        fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
            reply.attr(
                &FileAttr::new(op.ino, FileType::Directory, 0o755, SystemTime::now()),
                Duration::ZERO,
            )
        }
        fn read(&self, _: &Context<'_>, _: op::Read, reply: ReplyData) {
            self.0.lock().unwrap().push(reply)
        }
    }
    let h = Harness::new(Later(Mutex::new(Vec::new())));
    let (mut a, mut b) = (h.builder(), h.builder());
    assert!(h.request(&a.read(2, 0, 0, 4)).is_empty(), "not answered yet");
    let read_unique = a.last_unique();
    // Answered while another request is in the harness: `call` keeps that reply.
    let pending = h.filesystem().0.lock().unwrap().pop().unwrap();
    pending.data(b"late");
    let r = h.call(&b.getattr(ROOT_ID, None));
    assert_ne!(r.unique(), read_unique, "two builders never share a unique");
    assert!(r.attr().is_ok());
    let left = h.take_replies();
    assert_eq!(left.len(), 1, "the late READ reply is still there");
    assert_eq!(parse_reply(&left[0]).2, read_unique);
}

/// Through the async API, an OPEN or OPENDIR answer the kernel never received (its caller
/// gone) gives the handle back: no RELEASE(DIR) will come for it, so AsyncFs calls the
/// filesystem's own release itself, as it does for a refused CREATE.
#[test]
fn async_opens_the_kernel_never_received_are_released() {
    use fusefs::{AsyncFilesystem, AsyncFs, Errno, OpenFlags, RequestInfo};
    use std::sync::atomic::{AtomicU64, Ordering};
    #[derive(Default)]
    struct Handles {
        released: AtomicU64,
        dirs_released: AtomicU64,
    }
    impl AsyncFilesystem for Handles {
        async fn open(&self, _: RequestInfo, _: u64, _: i32) -> Result<(u64, OpenFlags), Errno> {
            Ok((7, OpenFlags::empty()))
        }
        async fn release(&self, _: RequestInfo, _: u64, fh: u64) -> Result<(), Errno> {
            self.released.fetch_add(fh, Ordering::SeqCst);
            Ok(())
        }
        async fn opendir(&self, _: RequestInfo, _: u64, _: i32) -> Result<(u64, OpenFlags), Errno> {
            Ok((9, OpenFlags::empty()))
        }
        async fn releasedir(&self, _: RequestInfo, _: u64, fh: u64) -> Result<(), Errno> {
            self.dirs_released.fetch_add(fh, Ordering::SeqCst);
            Ok(())
        }
    }
    let h = Harness::new(AsyncFs::new(Handles::default()).unwrap());
    let mut rq = h.builder();
    let fs = h.filesystem().inner();
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    h.refuse_next_reply();
    h.request(&rq.open(2, libc::O_RDONLY));
    wait("the refused open's handle released", &|| fs.released.load(Ordering::SeqCst) == 7);
    h.refuse_next_reply();
    h.request(&rq.opendir(1, libc::O_RDONLY));
    wait("the refused opendir's handle released", &|| fs.dirs_released.load(Ordering::SeqCst) == 9);
    // Delivered answers release nothing by themselves. (`request` hands back the replies
    // sent so far: this one's may be among them already.)
    if h.request(&rq.open(2, libc::O_RDONLY)).is_empty() {
        wait("answered", &|| !h.take_replies().is_empty());
    }
    assert_eq!(fs.released.load(Ordering::SeqCst), 7);
}

/// An unrestricted ioctl's retry protocol, driven as the kernel drives it for a CUSE device
/// (the only source of unrestricted ioctls; this kernel is built without CUSE, so no client
/// can send one): the first IOCTL carries no data, the filesystem asks for 8 bytes at the
/// argument's address to read and 8 to write; the second IOCTL carries those 8 bytes and is
/// answered with the output. A restricted ioctl may not be retried, and a retry naming more
/// than 256 iovecs is refused.
#[test]
fn an_unrestricted_ioctl_is_retried_with_the_iovecs_asked_for() {
    use fusefs::proto::abi::IoctlIovec;
    use fusefs::proto::flags::IoctlFlags;
    const DOUBLE: u32 = 0x4008_6601;
    struct Device;
    impl Filesystem for Device {
        fn ioctl(&self, _: &Context<'_>, op: op::Ioctl<'_>, reply: ReplyIoctl) {
            let at = IoctlIovec { base: op.arg, len: 8 };
            match (op.cmd, op.in_data.len()) {
                (DOUBLE, 0) => reply.retry(&[at], &[at]),
                (DOUBLE, 8) => {
                    let v = u64::from_ne_bytes(op.in_data.try_into().unwrap());
                    reply.ioctl(0, &(v * 2).to_ne_bytes())
                }
                _ => reply.retry(&[at; 200], &[at; 57]),
            }
        }
    }
    let h = Harness::new(Device);
    let mut rq = h.builder();
    let arg = 0x7fff_0000_1000;
    let first = h.call(&rq.ioctl_unrestricted(2, 1, DOUBLE, arg, &[], 0));
    let (out, iovecs) = first.ioctl().unwrap();
    assert_eq!(out.flags, IoctlFlags::RETRY.bits(), "a retry");
    assert_eq!((out.in_iovs, out.out_iovs), (1, 1));
    let mut want = Vec::new();
    for _ in 0..2 {
        want.extend_from_slice(&arg.to_ne_bytes());
        want.extend_from_slice(&8u64.to_ne_bytes());
    }
    assert_eq!(iovecs, &want[..], "the input iovec, then the output iovec");
    let again = h.call(&rq.ioctl_unrestricted(2, 1, DOUBLE, arg, &21u64.to_ne_bytes(), 8));
    let (out, data) = again.ioctl().unwrap();
    assert_eq!((out.result, out.flags), (0, 0), "answered, no retry");
    assert_eq!(data, &42u64.to_ne_bytes());
    // Restricted: the kernel would fail the caller with EIO; the reply says so itself.
    assert_eq!(h.call(&rq.ioctl(2, 1, DOUBLE, arg, &[], 8)).ioctl().unwrap_err(), Errno::EIO);
    // 257 iovecs: ENOMEM, what the kernel would answer the caller.
    let many = rq.ioctl_unrestricted(2, 1, DOUBLE + 1, arg, &[], 0);
    assert_eq!(h.call(&many).ioctl().unwrap_err(), Errno::ENOMEM);
}
