//! The protocol core without a mount: request bytes in through `testing::Harness`, reply
//! bytes out. Covers what the kernel cannot be made to send: unknown opcodes, malformed
//! requests, and a fuzzed stream, for which every reply must be well formed and every
//! request that wants an answer must get exactly one.

use fusefs::op;
use fusefs::testing::Harness;
use fusefs::*;
use std::time::{Duration, SystemTime};

fn header(len: usize, opcode: u32, unique: u64, nodeid: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(&unique.to_le_bytes());
    v.extend_from_slice(&nodeid.to_le_bytes());
    v.extend_from_slice(&[0; 16]); // uid, gid, pid, total_extlen, padding
    v
}

fn request(opcode: u32, unique: u64, body: &[u8]) -> Vec<u8> {
    let mut v = header(40 + body.len(), opcode, unique, 1);
    v.extend_from_slice(body);
    v
}

/// (len, error, unique) of a reply.
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
    for opcode in [7u32, 54, 4095, 9999, u32::MAX] {
        let r = h.request(&request(opcode, 42, b"body"));
        assert_eq!(r.len(), 1, "opcode {opcode}: exactly one reply");
        assert_eq!(parse_reply(&r[0]), (16, -libc::ENOSYS, 42));
    }
}

#[test]
fn malformed_requests_get_eio_and_no_reply_ops_get_none() {
    let h = Harness::new(Everything);
    // LOOKUP without the name's NUL.
    let r = h.request(&request(1, 8, b"abc"));
    assert_eq!(parse_reply(&r[0]), (16, -libc::EIO, 8));
    // Header length disagreeing with the buffer.
    let mut b = request(3, 10, &[0; 16]);
    b[0] = 200;
    assert_eq!(parse_reply(&h.request(&b)[0]), (16, -libc::EIO, 10));
    // Too short even for a header: nothing to answer.
    assert!(h.request(&[1, 2, 3]).is_empty());
    // FORGET, BATCH_FORGET and INTERRUPT: no reply, also when malformed.
    assert!(h.request(&request(2, 12, &1u64.to_le_bytes())).is_empty());
    assert!(h.request(&request(2, 14, &[1])).is_empty());
    assert!(h.request(&request(42, 16, &[0; 8])).is_empty());
    assert!(h.request(&request(36, 19, &12u64.to_le_bytes())).is_empty());
    // A second INIT after the session started: ENOSYS.
    let init = [7u32.to_le_bytes(), 45u32.to_le_bytes(), [0; 4], [0; 4]].concat();
    assert_eq!(parse_reply(&h.request(&request(26, 20, &init))[0]).1, -libc::ENOSYS);
}

#[test]
fn dropped_reply_answers_eio() {
    let h = Harness::new(Everything);
    let mut b = header(56, 3, 30, 9);
    b.extend_from_slice(&[0; 16]);
    assert_eq!(parse_reply(&h.request(&b)[0]), (16, -libc::EIO, 30));
}

#[test]
fn xattr_value_answers_size_data_or_erange() {
    let h = Harness::new(Everything);
    let ask = |size: u32| {
        let mut body = size.to_le_bytes().to_vec();
        body.extend_from_slice(&[0; 4]);
        body.extend_from_slice(b"user.x\0");
        h.request(&request(22, 40, &body)).remove(0)
    };
    let r = ask(0);
    assert_eq!(parse_reply(&r), (24, 0, 40));
    assert_eq!(&r[16..20], &5u32.to_le_bytes());
    assert_eq!(&ask(64)[16..], b"value");
    assert_eq!(parse_reply(&ask(3)).1, -libc::ERANGE);
}

#[test]
fn read_replies_never_exceed_the_requested_size() {
    let h = Harness::new(Everything);
    let mut body = Vec::new();
    for v in [0u64, 0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0; 20]);
    let r = h.request(&request(15, 50, &body)).remove(0);
    assert_eq!(parse_reply(&r), (26, 0, 50), "100 bytes offered, 10 asked for, 10 sent");
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
    let mut rng = Rng(seed);
    for i in 0..30_000u64 {
        let opcode = (rng.next() % 56) as u32;
        let body_len = (rng.next() % 120) as usize;
        let body: Vec<u8> = (0..body_len).map(|_| (rng.next() % 4) as u8 * 40).collect();
        let unique = i * 2 + 2;
        let mut b = request(opcode, unique, &body);
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
    assert_eq!(parse_reply(&h.request(&request(38, 60, &[]))[0]), (16, 0, 60));
    assert_eq!(parse_reply(&h.request(&request(38, 62, &[]))[0]), (16, 0, 62));
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
    let mut body = vec![0u8; 16];
    body.extend_from_slice(&u32::MAX.to_le_bytes());
    body.extend_from_slice(&[0; 20]);
    assert_eq!(parse_reply(&h.request(&request(15, 70, &body))[0]), (16, 0, 70));
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
    h.refuse_next_reply();
    assert!(h.request(&request(1, 80, b"f\0")).is_empty());
    fs.unlink(1, OsStr::new("f")).unwrap();
    assert_eq!(fs.stats().nodes, 1, "no lookup left behind: the unlinked node is freed");
    // The same for a READDIRPLUS that carried an entry.
    let g = fs.create(1, OsStr::new("g"), 0o100644, 0, root).unwrap();
    fs.forget(g.ino, 1);
    h.refuse_next_reply();
    let mut body = vec![0u8; 16];
    body.extend_from_slice(&4096u32.to_le_bytes());
    body.extend_from_slice(&[0; 20]);
    assert!(h.request(&request(44, 82, &body)).is_empty());
    fs.unlink(1, OsStr::new("g")).unwrap();
    assert_eq!(fs.stats().nodes, 1);
}
