//! The request builder against the parser (itself checked byte by byte by the golden tests):
//! whatever the builder makes parses back to the operation it was given, for every opcode;
//! and the opcode table's facts (fixed argument size, name count) are the parser's.

use fusefs_proto::build::RequestBuilder;
use fusefs_proto::request::*;
use fusefs_proto::*;
use std::ffi::OsStr;
use std::time::{Duration, UNIX_EPOCH};

fn parse(buf: &[u8]) -> Request<'_> {
    parse_in(buf, &Dialect::default())
}

fn parse_in<'a>(buf: &'a [u8], d: &Dialect) -> Request<'a> {
    Request::parse(buf, d).unwrap_or_else(|e| panic!("built request parses: {e}"))
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn header_carries_caller_and_fresh_uniques() {
    let mut b = RequestBuilder::new().caller(1000, 100, 42);
    let first = b.getattr(7, None);
    let second = b.getattr(7, Some(3));
    let (h1, h2) = (parse(&first).header, parse(&second).header);
    assert_eq!((h1.uid, h1.gid, h1.pid, h1.nodeid), (1000, 100, 42, 7));
    assert!(h1.unique % 2 == 0 && h2.unique == h1.unique + 2);
    assert_eq!(b.last_unique(), h2.unique);
    let Operation::Getattr(g) = parse(&second).operation else { panic!() };
    assert_eq!(g.fh, Some(3));
}

#[test]
fn names_and_data_round_trip() {
    let mut b = RequestBuilder::new();
    let v = b.lookup(1, "a name");
    assert!(
        matches!(parse(&v).operation, Operation::Lookup(l) if l.parent == 1 && l.name == "a name")
    );
    let v = b.symlink(2, "l", "/target");
    let Operation::Symlink(s) = parse(&v).operation else { panic!() };
    assert_eq!((s.parent, s.name, s.target), (2, os("l"), os("/target")));
    let v = b.mknod(3, "dev", libc::S_IFCHR | 0o600, 0x0407, 0o22);
    let Operation::Mknod(m) = parse(&v).operation else { panic!() };
    assert_eq!(
        (m.parent, m.name, m.mode, m.rdev, m.umask),
        (3, os("dev"), libc::S_IFCHR | 0o600, 0x0407, 0o22)
    );
    let v = b.mkdir(3, "d", 0o755, 0o22);
    assert!(matches!(parse(&v).operation, Operation::Mkdir(m) if m.name == "d" && m.mode == 0o755));
    let v = b.unlink(3, "u");
    assert!(matches!(parse(&v).operation, Operation::Unlink(u) if u.name == "u"));
    let v = b.rmdir(3, "r");
    assert!(matches!(parse(&v).operation, Operation::Rmdir(r) if r.name == "r"));
    for flags in [RenameFlags::empty(), RenameFlags::EXCHANGE] {
        let v = b.rename(3, "a", 4, "b", flags);
        let r = parse(&v);
        let expected = if flags.is_empty() { Opcode::Rename } else { Opcode::Rename2 };
        assert_eq!(r.opcode(), expected);
        let Operation::Rename(r) = r.operation else { panic!() };
        assert_eq!(
            (r.parent, r.name, r.newparent, r.newname, r.flags),
            (3, os("a"), 4, os("b"), flags)
        );
    }
    let v = b.link(9, 3, "hard");
    assert!(
        matches!(parse(&v).operation, Operation::Link(l) if l.ino == 9 && l.newparent == 3 && l.newname == "hard")
    );
    let v = b.create(3, "c", 0o100644, 0o22, libc::O_WRONLY);
    let Operation::Create(c) = parse(&v).operation else { panic!() };
    assert_eq!((c.name, c.mode, c.umask, c.flags), (os("c"), 0o100644, 0o22, libc::O_WRONLY));
    let v = b.write(5, 6, 4096, b"payload");
    let Operation::Write(w) = parse(&v).operation else { panic!() };
    assert_eq!((w.ino, w.fh, w.offset, w.data), (5, 6, 4096, &b"payload"[..]));
    for ext in [false, true] {
        let d = Dialect { setxattr_ext: ext, ..Dialect::default() };
        let mut b = RequestBuilder::new().dialect(d);
        let v = b.setxattr(5, "user.k", b"val", XattrFlags::CREATE);
        let Operation::Setxattr(s) = parse_in(&v, &d).operation else { panic!() };
        assert_eq!((s.name, s.value, s.flags), (os("user.k"), &b"val"[..], XattrFlags::CREATE));
    }
    let v = b.getxattr(5, "user.k", 64);
    assert!(
        matches!(parse(&v).operation, Operation::Getxattr(g) if g.name == "user.k" && g.size == 64)
    );
    let v = b.removexattr(5, "user.k");
    assert!(matches!(parse(&v).operation, Operation::Removexattr(r) if r.name == "user.k"));
    let v = b.ioctl(5, 6, 0x1234, 99, b"in", 16);
    let Operation::Ioctl(i) = parse(&v).operation else { panic!() };
    assert_eq!((i.cmd, i.arg, i.in_data, i.out_size), (0x1234, 99, &b"in"[..], 16));
    let v = b.notify_reply(5, 77, 8192, b"cached");
    let Operation::NotifyReply(n) = parse(&v).operation else { panic!() };
    assert_eq!((n.notify_unique, n.offset, n.data), (77, 8192, &b"cached"[..]));
}

#[test]
fn fixed_structs_round_trip() {
    let mut b = RequestBuilder::new();
    let mut set = SetAttr::default();
    set.mode = Some(0o100600);
    set.size = Some(10);
    set.atime = Some(TimeOrNow::Now);
    set.mtime = Some(TimeOrNow::Time(UNIX_EPOCH - Duration::from_millis(1500)));
    set.ctime = Some(UNIX_EPOCH + Duration::new(5, 6));
    set.fh = Some(4);
    let v = b.setattr(5, &set);
    let Operation::Setattr(s) = parse(&v).operation else { panic!() };
    assert_eq!((s.ino, s.attr), (5, set));
    let v = b.read(5, 6, 100, 4096);
    assert!(
        matches!(parse(&v).operation, Operation::Read(r) if (r.fh, r.offset, r.size) == (6, 100, 4096))
    );
    let v = b.readdirplus(5, 6, 3, 8192);
    assert!(
        matches!(parse(&v).operation, Operation::Readdirplus(r) if (r.fh, r.offset, r.size) == (6, 3, 8192))
    );
    let v = b.readdir(5, 6, 3, 8192);
    assert!(matches!(parse(&v).operation, Operation::Readdir(_)));
    let v = b.open(5, libc::O_RDWR);
    assert!(matches!(parse(&v).operation, Operation::Open(o) if o.flags == libc::O_RDWR));
    let v = b.opendir(5, 0);
    assert!(matches!(parse(&v).operation, Operation::Opendir(_)));
    let v = b.release(5, 6, libc::O_RDONLY);
    assert!(matches!(parse(&v).operation, Operation::Release(r) if r.fh == 6));
    let v = b.releasedir(5, 6);
    assert!(matches!(parse(&v).operation, Operation::Releasedir(r) if r.fh == 6));
    let v = b.fsync(5, 6, true);
    assert!(matches!(parse(&v).operation, Operation::Fsync(f) if f.datasync));
    let v = b.fsyncdir(5, 6, false);
    assert!(matches!(parse(&v).operation, Operation::Fsyncdir(f) if !f.datasync));
    let v = b.flush(5, 6, 99);
    assert!(matches!(parse(&v).operation, Operation::Flush(f) if f.lock_owner == 99));
    let v = b.forget(5, 3);
    assert!(matches!(parse(&v).operation, Operation::Forget(f) if (f.ino, f.nlookup) == (5, 3)));
    let v = b.batch_forget(&[(5, 1), (6, 2)]);
    let Operation::BatchForget(f) = parse(&v).operation else { panic!() };
    assert_eq!(f.forgets.iter().collect::<Vec<_>>(), [(5, 1), (6, 2)]);
    let v = b.listxattr(5, 0);
    assert!(matches!(parse(&v).operation, Operation::Listxattr(l) if l.size == 0));
    let lock = Lock { start: 1, end: 9, typ: libc::F_WRLCK, pid: 42 };
    let v = b.getlk(5, 6, 7, lock);
    assert!(matches!(parse(&v).operation, Operation::Getlk(g) if g.lock == lock && g.owner == 7));
    let v = b.setlk(5, 6, 7, lock, true, true);
    assert_eq!(parse(&v).opcode(), Opcode::Setlkw);
    assert!(
        matches!(parse(&v).operation, Operation::Setlk(s) if s.sleep && s.flock && s.lock == lock)
    );
    let v = b.access(5, libc::R_OK);
    assert!(matches!(parse(&v).operation, Operation::Access(a) if a.mask == libc::R_OK));
    let v = b.interrupt(40);
    let r = parse(&v);
    assert_eq!(r.header.unique, 41);
    assert!(matches!(r.operation, Operation::Interrupt(i) if i.unique == 40));
    let v = b.bmap(5, 10, 512);
    assert!(
        matches!(parse(&v).operation, Operation::Bmap(m) if (m.block, m.blocksize) == (10, 512))
    );
    assert!(matches!(parse(&b.destroy()).operation, Operation::Destroy));
    let v = b.poll(5, 6, 8, libc::POLLIN as u32, true);
    assert!(matches!(parse(&v).operation, Operation::Poll(p) if p.kh == 8 && p.schedule_notify));
    let v = b.fallocate(5, 6, 0, 4096, libc::FALLOC_FL_KEEP_SIZE);
    assert!(matches!(parse(&v).operation, Operation::Fallocate(f) if f.length == 4096));
    let v = b.lseek(5, 6, 100, libc::SEEK_DATA);
    assert!(
        matches!(parse(&v).operation, Operation::Lseek(l) if l.offset == 100 && l.whence == libc::SEEK_DATA)
    );
    for wide in [false, true] {
        let v = b.copy_file_range((5, 6, 0), (7, 8, 512), 1024, wide);
        let Operation::CopyFileRange(c) = parse(&v).operation else { panic!() };
        assert_eq!(
            (c.ino_in, c.fh_in, c.ino_out, c.fh_out, c.offset_out, c.len),
            (5, 6, 7, 8, 512, 1024)
        );
    }
    let v = b.setupmapping(5, 6, 0, 4096, 8192);
    assert!(matches!(parse(&v).operation, Operation::Setupmapping(s) if s.moffset == 8192));
    let v = b.removemapping(5, &[(0, 4096)]);
    assert!(matches!(parse(&v).operation, Operation::Removemapping(r) if r.mappings.len() == 16));
    assert!(matches!(parse(&b.syncfs(5)).operation, Operation::Syncfs(_)));
    let v = b.tmpfile(5, 0o100600, 0o22, libc::O_RDWR);
    assert!(matches!(parse(&v).operation, Operation::Tmpfile(t) if t.mode == 0o100600));
    let v = b.statx(5, Some(6), 0, libc::STATX_BASIC_STATS);
    assert!(matches!(parse(&v).operation, Operation::Statx(s) if s.fh == Some(6)));
    let v = b.init(7, 45, 1 << 20, InitFlags::ASYNC_READ | InitFlags::PASSTHROUGH);
    let Operation::Init(i) = parse(&v).operation else { panic!() };
    assert_eq!(i.flags, InitFlags::ASYNC_READ | InitFlags::PASSTHROUGH);
    assert!(matches!(parse(&b.cuse_init(7, 45, 0)).operation, Operation::CuseInit(_)));
    assert!(matches!(parse(&b.readlink(5)).operation, Operation::Readlink(_)));
    assert!(matches!(parse(&b.statfs(5)).operation, Operation::Statfs(_)));
}

#[test]
fn old_layouts_and_extensions() {
    let d = Dialect { minor: 8, setxattr_ext: false };
    let mut b = RequestBuilder::new().dialect(d);
    let v = b.write(5, 6, 0, b"x");
    assert_eq!(v.len(), 40 + 24 + 1, "the 7.8 fuse_write_in is 24 bytes");
    assert!(matches!(parse_in(&v, &d).operation, Operation::Write(w) if w.data == b"x"));
    let v = b.mknod(1, "n", libc::S_IFIFO | 0o644, 0, 0);
    assert_eq!(v.len(), 40 + 8 + 2, "before 7.12 fuse_mknod_in is 8 bytes");
    let mut b = RequestBuilder::new().groups(&[10, 20, 30]);
    let v = b.mkdir(1, "d", 0o755, 0);
    let r = parse(&v);
    let groups: Vec<u32> = r.extensions.supp_groups().expect("groups extension").iter().collect();
    assert_eq!(groups, [10, 20, 30]);
    assert!(matches!(r.operation, Operation::Mkdir(m) if m.name == "d"));
}

#[test]
fn the_opcode_table_is_the_parsers() {
    let d = Dialect { setxattr_ext: true, ..Dialect::default() };
    let mut b = RequestBuilder::new();
    for &op in Opcode::ALL {
        let mut args = vec![0u8; op.fixed_size()];
        if op == Opcode::Init {
            args[..4].copy_from_slice(&7u32.to_le_bytes()); // a major the parser reads
        }
        for _ in 0..op.names() {
            args.extend_from_slice(b"n\0");
        }
        let v = b.raw(op.number(), 1, &args);
        let r =
            Request::parse(&v, &d).unwrap_or_else(|e| panic!("{op}: table's layout parses: {e}"));
        assert_eq!(r.opcode(), op);
        // One byte short of the fixed struct fails (INIT accepts older, shorter structs).
        if op.fixed_size() > 0 && op != Opcode::Init {
            let short = b.raw(op.number(), 1, &vec![0u8; op.fixed_size() - 1]);
            assert!(Request::parse(&short, &d).is_err(), "{op}: a short fixed struct is refused");
        }
        // A name short of its NUL fails.
        if op.names() > 0 {
            let mut args = vec![0u8; op.fixed_size()];
            args.extend_from_slice(b"n");
            let v = b.raw(op.number(), 1, &args);
            assert!(Request::parse(&v, &d).is_err(), "{op}: a name without NUL is refused");
        }
    }
}
