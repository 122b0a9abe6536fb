//! Golden byte vectors: every request opcode and every reply and notification shape, written
//! out byte by byte here (not through the crate's own structs), parsed or encoded, compared.

use fusefs_proto::flags::{IoctlFlags, WriteFlags};
use fusefs_proto::request::*;
use fusefs_proto::*;
use std::ffi::OsStr;

// The golden bytes, written with a byte writer independent of the crate's ABI structs and
// of its request builder (which tests/build.rs checks against the parser).
/// A little-endian byte builder, independent of the ABI structs under test.
#[derive(Default, Clone)]
pub struct B(pub Vec<u8>);
impl B {
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn name(self, s: &str) -> Self {
        self.bytes(s.as_bytes()).bytes(&[0])
    }
    pub fn zeros(self, n: usize) -> Self {
        self.bytes(&vec![0; n])
    }
}

pub const UNIQUE: u64 = 0x1234;
pub const NODE: u64 = 7;

/// A whole request: `fuse_in_header` (len, opcode, unique, nodeid, uid 1000, gid 100,
/// pid 42, total_extlen, padding) then `body` then `ext`.
pub fn request(opcode: u32, body: B, ext: &[u8]) -> Vec<u8> {
    let len = 40 + body.0.len() + ext.len();
    B::default()
        .u32(len as u32)
        .u32(opcode)
        .u64(UNIQUE)
        .u64(NODE)
        .u32(1000)
        .u32(100)
        .u32(42)
        .u16((ext.len() / 8) as u16)
        .u16(0)
        .bytes(&body.0)
        .bytes(ext)
        .0
}

fn parse(buf: &[u8]) -> Operation<'_> {
    let r = Request::parse(buf, &Dialect::default()).expect("golden request parses");
    assert_eq!(r.header.unique, UNIQUE);
    assert_eq!((r.header.uid, r.header.gid, r.header.pid), (1000, 100, 42));
    r.operation
}

/// Every strict prefix of a request (with its length field fixed up) is an error, not a panic
/// and not a silently different request.
fn truncations_fail(buf: &[u8]) {
    for cut in 40..buf.len() {
        let mut b = buf[..cut].to_vec();
        b[..4].copy_from_slice(&(cut as u32).to_le_bytes());
        assert!(Request::parse(&b, &Dialect::default()).is_err(), "prefix of {cut} bytes parsed");
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn lookup_unlink_rmdir_readlink_removexattr() {
    let b = request(1, B::default().name("foo"), &[]);
    let Operation::Lookup(op) = parse(&b) else { panic!() };
    assert_eq!((op.parent, op.name), (NODE, os("foo")));
    truncations_fail(&b);

    let b = request(10, B::default().name("gone"), &[]);
    let Operation::Unlink(op) = parse(&b) else { panic!() };
    assert_eq!((op.parent, op.name), (NODE, os("gone")));
    let b = request(11, B::default().name("dir"), &[]);
    let Operation::Rmdir(op) = parse(&b) else { panic!() };
    assert_eq!(op.name, os("dir"));
    let b = request(24, B::default().name("user.x"), &[]);
    let Operation::Removexattr(op) = parse(&b) else { panic!() };
    assert_eq!((op.ino, op.name), (NODE, os("user.x")));
    let b = request(5, B::default(), &[]);
    assert!(matches!(parse(&b), Operation::Readlink(r) if r.ino == NODE));
    let b = request(17, B::default(), &[]);
    assert!(matches!(parse(&b), Operation::Statfs(s) if s.ino == NODE));
    let b = request(38, B::default(), &[]);
    assert!(matches!(parse(&b), Operation::Destroy));
}

#[test]
fn forget_and_batch_forget() {
    let b = request(2, B::default().u64(3), &[]);
    let Operation::Forget(op) = parse(&b) else { panic!() };
    assert_eq!((op.ino, op.nlookup), (NODE, 3));
    truncations_fail(&b);

    let body = B::default().u32(2).u32(0).u64(10).u64(1).u64(11).u64(5);
    let b = request(42, body, &[]);
    let Operation::BatchForget(op) = parse(&b) else { panic!() };
    assert_eq!(op.forgets.iter().collect::<Vec<_>>(), vec![(10, 1), (11, 5)]);
    truncations_fail(&b);
    // A count that claims more entries than the buffer holds is an error.
    let b = request(42, B::default().u32(u32::MAX).u32(0).u64(1).u64(1), &[]);
    assert!(Request::parse(&b, &Dialect::default()).is_err());
}

#[test]
fn getattr_setattr_statx() {
    let b = request(3, B::default().u32(1).u32(0).u64(99), &[]);
    let Operation::Getattr(op) = parse(&b) else { panic!() };
    assert_eq!((op.ino, op.fh), (NODE, Some(99)));
    let b = request(3, B::default().u32(0).u32(0).u64(99), &[]);
    let Operation::Getattr(op) = parse(&b) else { panic!() };
    assert_eq!(op.fh, None, "fh only with FUSE_GETATTR_FH");
    truncations_fail(&b);

    // valid = MODE | SIZE | ATIME | MTIME_NOW | CTIME | FH | KILL_SUIDGID
    let valid = 1 | 8 | 16 | 256 | 1024 | 64 | 2048;
    let body = B::default()
        .u32(valid)
        .u32(0)
        .u64(5) // fh
        .u64(4096) // size
        .u64(0) // lock_owner
        .u64(1_000) // atime
        .u64(2_000) // mtime
        .u64(3_000) // ctime
        .u32(11) // atimensec
        .u32(22)
        .u32(33)
        .u32(0o100640) // mode
        .u32(0)
        .u32(500) // uid (not valid)
        .u32(600)
        .u32(0);
    let b = request(4, body, &[]);
    let Operation::Setattr(op) = parse(&b) else { panic!() };
    let a = op.attr;
    assert_eq!(a.mode, Some(0o100640));
    assert_eq!(a.size, Some(4096));
    let t = |s, n| std::time::UNIX_EPOCH + std::time::Duration::new(s, n);
    assert_eq!(a.atime, Some(TimeOrNow::Time(t(1000, 11))));
    assert_eq!(a.mtime, Some(TimeOrNow::Now));
    assert_eq!(a.ctime, Some(t(3000, 33)));
    assert_eq!(a.fh, Some(5));
    assert_eq!((a.uid, a.gid, a.lock_owner), (None, None, None));
    assert!(a.kill_suidgid);
    truncations_fail(&b);

    let b = request(52, B::default().u32(1).u32(0).u64(8).u32(0x800).u32(0x7ff), &[]);
    let Operation::Statx(op) = parse(&b) else { panic!() };
    assert_eq!((op.fh, op.sx_flags, op.sx_mask), (Some(8), 0x800, 0x7ff));
    truncations_fail(&b);
}

#[test]
fn node_creation() {
    let b = request(6, B::default().name("link").name("target/path"), &[]);
    let Operation::Symlink(op) = parse(&b) else { panic!() };
    assert_eq!((op.parent, op.name, op.target), (NODE, os("link"), os("target/path")));
    truncations_fail(&b);

    let b = request(8, B::default().u32(0o20644).u32(0x0501).u32(0o022).u32(0).name("tty"), &[]);
    let Operation::Mknod(op) = parse(&b) else { panic!() };
    assert_eq!((op.mode, op.rdev, op.umask, op.name), (0o20644, 0x501, 0o022, os("tty")));
    truncations_fail(&b);

    let b = request(9, B::default().u32(0o755).u32(0o022).name("d"), &[]);
    let Operation::Mkdir(op) = parse(&b) else { panic!() };
    assert_eq!((op.mode, op.umask, op.name), (0o755, 0o022, os("d")));
    truncations_fail(&b);

    let b = request(13, B::default().u64(3).name("hard"), &[]);
    let Operation::Link(op) = parse(&b) else { panic!() };
    assert_eq!((op.ino, op.newparent, op.newname), (3, NODE, os("hard")));
    truncations_fail(&b);

    let b = request(35, B::default().u32(0o101).u32(0o100600).u32(0o022).u32(1).name("f"), &[]);
    let Operation::Create(op) = parse(&b) else { panic!() };
    assert_eq!((op.flags, op.mode, op.umask, op.name), (0o101, 0o100600, 0o022, os("f")));
    assert!(op.kill_suidgid);
    truncations_fail(&b);

    let b =
        request(51, B::default().u32(0o20000002).u32(0o100600).u32(0o022).u32(0).name("/"), &[]);
    let Operation::Tmpfile(op) = parse(&b) else { panic!() };
    assert_eq!((op.parent, op.mode, op.flags), (NODE, 0o100600, 0o20000002));
}

#[test]
fn rename_and_rename2() {
    let b = request(12, B::default().u64(9).name("a").name("b"), &[]);
    let Operation::Rename(op) = parse(&b) else { panic!() };
    assert_eq!((op.parent, op.name, op.newparent, op.newname), (NODE, os("a"), 9, os("b")));
    assert!(op.flags.is_empty());
    truncations_fail(&b);
    let b = request(45, B::default().u64(9).u32(2).u32(0).name("a").name("b"), &[]);
    let Operation::Rename(op) = parse(&b) else { panic!() };
    assert_eq!(op.flags, RenameFlags::EXCHANGE);
    truncations_fail(&b);
}

#[test]
fn open_read_write_release_flush_fsync() {
    let b = request(14, B::default().u32(0o2).u32(0), &[]);
    let Operation::Open(op) = parse(&b) else { panic!() };
    assert_eq!((op.ino, op.flags, op.kill_suidgid), (NODE, 2, false));
    truncations_fail(&b);
    let b = request(27, B::default().u32(0o200000).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Opendir(o) if o.flags == 0o200000));

    let read = B::default().u64(5).u64(4096).u32(8192).u32(2).u64(77).u32(0o2).u32(0);
    let b = request(15, read.clone(), &[]);
    let Operation::Read(op) = parse(&b) else { panic!() };
    assert_eq!((op.fh, op.offset, op.size, op.lock_owner, op.flags), (5, 4096, 8192, Some(77), 2));
    truncations_fail(&b);
    let b = request(28, read.clone(), &[]);
    assert!(matches!(parse(&b), Operation::Readdir(r) if r.offset == 4096 && r.size == 8192));
    let b = request(44, read, &[]);
    assert!(matches!(parse(&b), Operation::Readdirplus(r) if r.fh == 5));

    let data = b"hello, world";
    let body = B::default().u64(5).u64(1 << 33).u32(data.len() as u32).u32(1).u64(0).u32(1).u32(0);
    let b = request(16, body.bytes(data), &[]);
    let Operation::Write(op) = parse(&b) else { panic!() };
    assert_eq!((op.fh, op.offset, op.data), (5, 1 << 33, &data[..]));
    assert_eq!(op.write_flags, WriteFlags::CACHE);
    assert_eq!(op.lock_owner, None);
    truncations_fail(&b);

    let b = request(18, B::default().u64(5).u32(2).u32(3).u64(88), &[]);
    let Operation::Release(op) = parse(&b) else { panic!() };
    assert_eq!(
        (op.fh, op.flags, op.flush, op.flock_release, op.lock_owner),
        (5, 2, true, true, 88)
    );
    truncations_fail(&b);
    let b = request(29, B::default().u64(6).u32(0).u32(0).u64(0), &[]);
    assert!(matches!(parse(&b), Operation::Releasedir(r) if r.fh == 6 && !r.flush));

    let b = request(25, B::default().u64(5).u32(0).u32(0).u64(99), &[]);
    let Operation::Flush(op) = parse(&b) else { panic!() };
    assert_eq!((op.fh, op.lock_owner), (5, 99));
    truncations_fail(&b);

    let b = request(20, B::default().u64(5).u32(1).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Fsync(f) if f.fh == 5 && f.datasync));
    truncations_fail(&b);
    let b = request(30, B::default().u64(6).u32(0).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Fsyncdir(f) if f.fh == 6 && !f.datasync));
}

#[test]
fn xattrs_in_both_setxattr_layouts() {
    let b = request(21, B::default().u32(3).u32(1).name("user.a").bytes(b"xyz"), &[]);
    let Operation::Setxattr(op) = parse(&b) else { panic!() };
    assert_eq!((op.name, op.value, op.flags), (os("user.a"), &b"xyz"[..], XattrFlags::CREATE));
    truncations_fail(&b);
    // With SETXATTR_EXT the struct is 16 bytes.
    let b = request(21, B::default().u32(3).u32(2).u32(1).u32(0).name("user.a").bytes(b"xyz"), &[]);
    let d = Dialect { setxattr_ext: true, ..Dialect::default() };
    let Operation::Setxattr(op) = Request::parse(&b, &d).unwrap().operation else { panic!() };
    assert_eq!((op.value, op.flags, op.setxattr_flags), (&b"xyz"[..], XattrFlags::REPLACE, 1));

    let b = request(22, B::default().u32(64).u32(0).name("user.a"), &[]);
    let Operation::Getxattr(op) = parse(&b) else { panic!() };
    assert_eq!((op.size, op.name), (64, os("user.a")));
    truncations_fail(&b);
    let b = request(23, B::default().u32(0).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Listxattr(l) if l.size == 0));
}

#[test]
fn init_new_and_old_layouts() {
    let body = B::default().u32(7).u32(45).u32(131072).u32(1).u32(1 << 5).zeros(44);
    let b = request(26, body, &[]);
    let Operation::Init(op) = parse(&b) else { panic!() };
    assert_eq!((op.major, op.minor, op.max_readahead), (7, 45, 131072));
    assert_eq!(op.flags, InitFlags::ASYNC_READ | InitFlags::PASSTHROUGH);
    // A 7.31 kernel sends 16 bytes, and flags2 does not exist.
    let b = request(26, B::default().u32(7).u32(31).u32(65536).u32(1 << 22), &[]);
    let Operation::Init(op) = parse(&b) else { panic!() };
    assert_eq!((op.minor, op.flags), (31, InitFlags::MAX_PAGES));
    let b = request(26, B::default().u32(7).u32(31).u32(65536), &[]);
    assert!(Request::parse(&b, &Dialect::default()).is_err(), "INIT under 16 bytes");
}

#[test]
fn locks_access_interrupt_bmap() {
    let lk = |b: B| b.u64(5).u64(0xabc).u64(0).u64(99).u32(1).u32(321);
    let b = request(31, lk(B::default()).u32(0).u32(0), &[]);
    let Operation::Getlk(op) = parse(&b) else { panic!() };
    assert_eq!((op.fh, op.owner), (5, 0xabc));
    assert_eq!(op.lock, Lock { start: 0, end: 99, typ: 1, pid: 321 });
    truncations_fail(&b);
    let b = request(33, lk(B::default()).u32(1).u32(0), &[]);
    let Operation::Setlk(op) = parse(&b) else { panic!() };
    assert!(op.sleep && op.flock);
    let b = request(32, lk(B::default()).u32(0).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Setlk(s) if !s.sleep && !s.flock));

    let b = request(34, B::default().u32(4).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Access(a) if a.mask == 4));
    truncations_fail(&b);
    let b = request(36, B::default().u64(0x1000), &[]);
    assert!(matches!(parse(&b), Operation::Interrupt(i) if i.unique == 0x1000));
    truncations_fail(&b);
    let b = request(37, B::default().u64(12).u32(4096).u32(0), &[]);
    assert!(matches!(parse(&b), Operation::Bmap(m) if m.block == 12 && m.blocksize == 4096));
    truncations_fail(&b);
}

#[test]
fn ioctl_poll_notify_reply() {
    let b = request(
        39,
        B::default().u64(5).u32(2).u32(0x5401).u64(0xdead).u32(3).u32(16).bytes(b"abc"),
        &[],
    );
    let Operation::Ioctl(op) = parse(&b) else { panic!() };
    assert_eq!((op.cmd, op.arg, op.in_data, op.out_size), (0x5401, 0xdead, &b"abc"[..], 16));
    assert_eq!(op.flags, IoctlFlags::UNRESTRICTED);
    truncations_fail(&b);

    let b = request(40, B::default().u64(5).u64(77).u32(1).u32(0x1), &[]);
    let Operation::Poll(op) = parse(&b) else { panic!() };
    assert_eq!((op.kh, op.schedule_notify, op.events), (77, true, 1));
    truncations_fail(&b);

    let b =
        request(41, B::default().u64(0).u64(4096).u32(2).u32(0).u64(0).u64(0).bytes(b"ok"), &[]);
    let Operation::NotifyReply(op) = parse(&b) else { panic!() };
    assert_eq!((op.notify_unique, op.offset, op.data), (UNIQUE, 4096, &b"ok"[..]));
    truncations_fail(&b);
}

#[test]
fn fallocate_lseek_copy_ranges_mappings_syncfs_cuse() {
    let b = request(43, B::default().u64(5).u64(100).u64(200).u32(3).u32(0), &[]);
    let Operation::Fallocate(op) = parse(&b) else { panic!() };
    assert_eq!((op.fh, op.offset, op.length, op.mode), (5, 100, 200, 3));
    truncations_fail(&b);

    let b = request(46, B::default().u64(5).u64(300).u32(3).u32(0), &[]);
    let Operation::Lseek(op) = parse(&b) else { panic!() };
    assert_eq!((op.offset, op.whence), (300, 3));
    truncations_fail(&b);

    let cfr = B::default().u64(5).u64(10).u64(8).u64(6).u64(20).u64(1 << 40).u64(0);
    for opcode in [47, 53] {
        let b = request(opcode, cfr.clone(), &[]);
        let Operation::CopyFileRange(op) = parse(&b) else { panic!() };
        assert_eq!((op.ino_in, op.fh_in, op.offset_in), (NODE, 5, 10));
        assert_eq!((op.ino_out, op.fh_out, op.offset_out, op.len), (8, 6, 20, 1 << 40));
        truncations_fail(&b);
    }

    let b = request(48, B::default().u64(5).u64(0).u64(4096).u64(1).u64(8192), &[]);
    assert!(matches!(parse(&b), Operation::Setupmapping(s) if s.moffset == 8192 && s.len == 4096));
    let b = request(49, B::default().u32(1).u64(0).u64(4096), &[]);
    let Operation::Removemapping(op) = parse(&b) else { panic!() };
    assert_eq!(op.mappings.len(), 16);
    let b = request(50, B::default().u64(0), &[]);
    assert!(matches!(parse(&b), Operation::Syncfs(_)));
    let b = request(4096, B::default().u32(7).u32(45).u32(0).u32(1), &[]);
    assert!(matches!(parse(&b), Operation::CuseInit(c) if c.minor == 45 && c.flags == 1));
}

#[test]
fn unknown_opcodes_are_kept_not_errors() {
    let b = request(7, B::default().bytes(b"whatever"), &[]);
    let Operation::Unknown { opcode, body } = parse(&b) else { panic!() };
    assert_eq!((opcode, body), (7, &b"whatever"[..]));
    let b = request(9999, B::default(), &[]);
    assert!(matches!(parse(&b), Operation::Unknown { opcode: 9999, .. }));
}

#[test]
fn extensions_supp_groups_and_secctx() {
    // FUSE_EXT_GROUPS: header {size 24, type 32}, nr_groups 3, gids, padding to 8.
    let groups = B::default().u32(24).u32(32).u32(3).u32(10).u32(20).u32(30).0;
    let b = request(35, B::default().u32(0).u32(0o100644).u32(0).u32(0).name("f"), &groups);
    let r = Request::parse(&b, &Dialect::default()).unwrap();
    let Operation::Create(op) = r.operation else { panic!() };
    assert_eq!(op.name, os("f"), "extensions are not part of the arguments");
    let g = r.extensions.supp_groups().expect("groups extension");
    assert_eq!(g.iter().collect::<Vec<_>>(), vec![10, 20, 30]);
    // A security context header (type = nr_secctx = 1) followed by groups.
    let secctx = B::default().u32(16).u32(1).u64(0).0;
    let mut ext = secctx.clone();
    ext.extend_from_slice(&groups);
    let b = request(9, B::default().u32(0o755).u32(0).name("d"), &ext);
    let r = Request::parse(&b, &Dialect::default()).unwrap();
    let all: Vec<_> = r.extensions.iter().collect();
    assert!(matches!(all[0], request::Extension::SecurityContext { count: 1, .. }));
    assert!(matches!(all[1], request::Extension::SuppGroups(_)));
    // Bad extension sizes are errors.
    for bad in [B::default().u32(4).u32(32).0, B::default().u32(64).u32(32).0] {
        let b = request(9, B::default().u32(0o755).u32(0).name("d"), &bad);
        assert!(Request::parse(&b, &Dialect::default()).is_err());
    }
}

#[test]
fn header_errors() {
    let b = request(1, B::default().name("x"), &[]);
    assert!(matches!(
        Request::parse(&b[..39], &Dialect::default()),
        Err(ParseError::Short { what: "fuse_in_header", .. })
    ));
    let mut longer = b.clone();
    longer.push(0);
    assert!(matches!(Request::parse(&longer, &Dialect::default()), Err(ParseError::Length { .. })));
    let no_nul = request(1, B::default().bytes(b"abc"), &[]);
    assert!(matches!(
        Request::parse(&no_nul, &Dialect::default()),
        Err(ParseError::MissingNul { .. })
    ));
}

// ---- replies ----

/// `fuse_out_header` for `unique` with `error` and `body_len` bytes following.
fn out(error: i32, body: B) -> Vec<u8> {
    B::default().u32(16 + body.0.len() as u32).u32(error as u32).u64(UNIQUE).bytes(&body.0).0
}

fn attr_bytes(b: B) -> B {
    // ino 2, size 13, blocks 1, atime 10, mtime 20, ctime 30, nsecs 1 2 3, mode, nlink 1,
    // uid 1000, gid 100, rdev 0, blksize 4096, flags 0
    b.u64(2)
        .u64(13)
        .u64(1)
        .u64(10)
        .u64(20)
        .u64(30)
        .u32(1)
        .u32(2)
        .u32(3)
        .u32(0o100444)
        .u32(1)
        .u32(1000)
        .u32(100)
        .u32(0)
        .u32(4096)
        .u32(0)
}

fn attr() -> abi::Attr {
    abi::Attr {
        ino: 2,
        size: 13,
        blocks: 1,
        atime: 10,
        mtime: 20,
        ctime: 30,
        atimensec: 1,
        mtimensec: 2,
        ctimensec: 3,
        mode: 0o100444,
        nlink: 1,
        uid: 1000,
        gid: 100,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn entry() -> abi::EntryOut {
    abi::EntryOut {
        nodeid: 2,
        generation: 5,
        entry_valid: 1,
        attr_valid: 2,
        entry_valid_nsec: 3,
        attr_valid_nsec: 4,
        attr: attr(),
    }
}

fn entry_bytes(b: B) -> B {
    attr_bytes(b.u64(2).u64(5).u64(1).u64(2).u32(3).u32(4))
}

#[test]
fn reply_shapes() {
    assert_eq!(OutMessage::error(UNIQUE, Errno::ENOENT).to_vec(), out(-2, B::default()));
    assert_eq!(
        OutMessage::error(UNIQUE, Errno::from_raw(0)).to_vec(),
        out(-5, B::default()),
        "0 is not an errno"
    );
    assert_eq!(
        OutMessage::error(UNIQUE, Errno::from_raw(4096)).to_vec(),
        out(-5, B::default()),
        "out of range"
    );
    assert_eq!(OutMessage::empty(UNIQUE).to_vec(), out(0, B::default()));
    assert_eq!(OutMessage::data(UNIQUE, b"abc").to_vec(), out(0, B::default().bytes(b"abc")));
    assert_eq!(
        OutMessage::data2(UNIQUE, b"ab", b"cd").to_vec(),
        out(0, B::default().bytes(b"abcd"))
    );
    assert_eq!(OutMessage::entry(UNIQUE, &entry()).to_vec(), out(0, entry_bytes(B::default())));
    let a = abi::AttrOut { attr_valid: 1, attr_valid_nsec: 500, dummy: 0, attr: attr() };
    assert_eq!(
        OutMessage::attr(UNIQUE, &a).to_vec(),
        out(0, attr_bytes(B::default().u64(1).u32(500).u32(0)))
    );
    let o = abi::OpenOut { fh: 9, open_flags: 2, backing_id: 0 };
    assert_eq!(OutMessage::open(UNIQUE, &o).to_vec(), out(0, B::default().u64(9).u32(2).u32(0)));
    assert_eq!(
        OutMessage::create(UNIQUE, &entry(), &o).to_vec(),
        out(0, entry_bytes(B::default()).u64(9).u32(2).u32(0))
    );
    assert_eq!(OutMessage::write(UNIQUE, 4096).to_vec(), out(0, B::default().u32(4096).u32(0)));
    assert_eq!(
        OutMessage::copy_file_range_64(UNIQUE, 1 << 40).to_vec(),
        out(0, B::default().u64(1 << 40))
    );
    let st = abi::Kstatfs {
        blocks: 1,
        bfree: 2,
        bavail: 3,
        files: 4,
        ffree: 5,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        padding: 0,
        spare: [0; 6],
    };
    assert_eq!(
        OutMessage::statfs(UNIQUE, &st).to_vec(),
        out(
            0,
            B::default()
                .u64(1)
                .u64(2)
                .u64(3)
                .u64(4)
                .u64(5)
                .u32(4096)
                .u32(255)
                .u32(4096)
                .u32(0)
                .zeros(24)
        )
    );
    assert_eq!(OutMessage::xattr_size(UNIQUE, 42).to_vec(), out(0, B::default().u32(42).u32(0)));
    let lk = abi::FileLock { start: 1, end: 2, typ: 2, pid: 3 };
    assert_eq!(
        OutMessage::lock(UNIQUE, &lk).to_vec(),
        out(0, B::default().u64(1).u64(2).u32(2).u32(3))
    );
    assert_eq!(OutMessage::bmap(UNIQUE, 77).to_vec(), out(0, B::default().u64(77)));
    let io = abi::IoctlOut { result: -1i32, flags: 0, in_iovs: 0, out_iovs: 0 };
    assert_eq!(
        OutMessage::ioctl(UNIQUE, &io, b"zz").to_vec(),
        out(0, B::default().u32(u32::MAX).u32(0).u32(0).u32(0).bytes(b"zz"))
    );
    assert_eq!(OutMessage::poll(UNIQUE, 5).to_vec(), out(0, B::default().u32(5).u32(0)));
    assert_eq!(OutMessage::lseek(UNIQUE, 8192).to_vec(), out(0, B::default().u64(8192)));
    let sx = abi::StatxOut {
        attr_valid: 1,
        attr_valid_nsec: 0,
        flags: 0,
        spare: [0; 2],
        stat: abi::Statx { mask: 0x7ff, ino: 2, ..Default::default() },
    };
    let v = OutMessage::statx(UNIQUE, &sx).to_vec();
    assert_eq!(v.len(), 16 + 288);
    assert_eq!(&v[16..48], &B::default().u64(1).u32(0).u32(0).u64(0).u64(0).0[..]);
    assert_eq!(&v[48..52], &0x7ffu32.to_le_bytes());
    assert_eq!(&v[48 + 32..48 + 40], &2u64.to_le_bytes(), "statx.ino at offset 32");
}

#[test]
fn init_reply_sizes_follow_the_kernel_minor() {
    let mut o = abi::InitOut {
        major: 7,
        minor: 45,
        max_readahead: 65536,
        flags: 1,
        max_background: 12,
        congestion_threshold: 9,
        max_write: 1 << 20,
        time_gran: 1,
        max_pages: 256,
        map_alignment: 0,
        flags2: 1 << 5,
        max_stack_depth: 1,
        request_timeout: 30,
        unused: [0; 11],
    };
    let full = B::default()
        .u32(7)
        .u32(45)
        .u32(65536)
        .u32(1)
        .u16(12)
        .u16(9)
        .u32(1 << 20)
        .u32(1)
        .u16(256)
        .u16(0)
        .u32(1 << 5)
        .u32(1)
        .u16(30)
        .zeros(22);
    assert_eq!(OutMessage::init(UNIQUE, &o).to_vec(), out(0, full.clone()));
    o.minor = 22;
    let v = OutMessage::init(UNIQUE, &o).to_vec();
    assert_eq!(v.len(), 16 + 24);
    o.minor = 4;
    assert_eq!(OutMessage::init(UNIQUE, &o).to_vec().len(), 16 + 8);
}

#[test]
fn notifications() {
    let n = |code: i32, body: B| {
        B::default().u32(16 + body.0.len() as u32).u32(code as u32).u64(0).bytes(&body.0).0
    };
    assert_eq!(OutMessage::notify_poll(9).to_vec(), n(1, B::default().u64(9)));
    assert_eq!(
        OutMessage::notify_inval_inode(3, -1, 0).to_vec(),
        n(2, B::default().u64(3).u64(u64::MAX).u64(0))
    );
    assert_eq!(
        OutMessage::notify_inval_entry(1, b"name", true).to_vec(),
        n(3, B::default().u64(1).u32(4).u32(1).name("name"))
    );
    assert_eq!(
        OutMessage::notify_store(3, 10, b"xy").to_vec(),
        n(4, B::default().u64(3).u64(10).u32(2).u32(0).bytes(b"xy"))
    );
    assert_eq!(
        OutMessage::notify_retrieve(55, 3, 0, 4096).to_vec(),
        n(5, B::default().u64(55).u64(3).u64(0).u32(4096).u32(0))
    );
    assert_eq!(
        OutMessage::notify_delete(1, 4, b"gone").to_vec(),
        n(6, B::default().u64(1).u64(4).u32(4).u32(0).name("gone"))
    );
    assert_eq!(OutMessage::notify_resend().to_vec(), n(7, B::default()));
    assert_eq!(OutMessage::notify_inc_epoch().to_vec(), n(8, B::default()));
    let ids = B::default().u64(5).u64(6).0;
    assert_eq!(
        OutMessage::notify_prune(&ids).to_vec(),
        n(9, B::default().u32(2).u32(0).u64(0).u64(5).u64(6))
    );
}

#[test]
fn dirent_packing_and_full_signal() {
    let mut buf = [0xffu8; 64];
    let mut w = DirentWriter::new(&mut buf);
    w.push(2, 1, 8, b"a").unwrap();
    // 24 + 1 = 25, padded to 32, with zeroed padding.
    assert_eq!(w.len(), 32);
    assert_eq!(w.as_bytes(), &B::default().u64(2).u64(1).u32(1).u32(8).bytes(b"a").zeros(7).0[..]);
    w.push(3, 2, 4, b"12345678").unwrap(); // exactly 32 more
    assert_eq!(w.len(), 64);
    assert_eq!(w.push(4, 3, 8, b"b"), Err(DirentError::Full));
    assert_eq!(w.len(), 64, "a failed push writes nothing");
    let mut w = DirentWriter::new(&mut buf);
    assert_eq!(w.push(1, 1, 8, b""), Err(DirentError::BadName));
    assert_eq!(w.push(1, 1, 8, b"a/b"), Err(DirentError::BadName));

    let mut big = [0u8; 512];
    let mut w = DirentWriter::new(&mut big);
    w.push_plus(&entry(), 7, 8, b"file").unwrap();
    assert_eq!(w.len(), 160); // 152 + 4 -> 160
    assert_eq!(&w.as_bytes()[..128], &entry_bytes(B::default()).0[..]);
    assert_eq!(
        &w.as_bytes()[128..156],
        &B::default().u64(2).u64(7).u32(4).u32(8).bytes(b"file").0[..]
    );
    assert_eq!(&w.as_bytes()[156..160], &[0; 4]);
}
