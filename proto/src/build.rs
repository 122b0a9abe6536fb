//! Requests as the kernel sends them, built from typed arguments: the inverse of the parser.
//!
//! For unit tests of a filesystem without a mount (`fusefs::testing::Harness` takes these
//! bytes), for fuzzing (valid seeds to mutate) and for benchmarks. Every opcode has a method;
//! [`RequestBuilder::raw`] makes anything else, malformed requests included.
//!
//! ```
//! use fusefs_proto::build::RequestBuilder;
//! use fusefs_proto::{Dialect, Operation, Request};
//!
//! let mut b = RequestBuilder::new().caller(1000, 1000, 42);
//! let bytes = b.lookup(1, "hello.txt");
//! let req = Request::parse(&bytes, &Dialect::default()).unwrap();
//! assert!(matches!(req.operation, Operation::Lookup(op) if op.name == "hello.txt"));
//! assert_eq!(req.header.unique, b.last_unique());
//! ```

use crate::abi::*;
use crate::flags::*;
use crate::opcode::Opcode;
use crate::request::{Dialect, Lock, SetAttr, TimeOrNow};
use crate::time::split_time;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use zerocopy::IntoBytes;

/// Builds request buffers: a header (caller, a fresh even unique per request), the opcode's
/// fixed struct in the layout of the builder's [`Dialect`], names and data. Names must not
/// hold NUL bytes (the builder panics: use [`raw`](Self::raw) for malformed requests).
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    dialect: Dialect,
    uid: u32,
    gid: u32,
    pid: u32,
    groups: Vec<u32>,
    unique: u64,
}

impl Default for RequestBuilder {
    fn default() -> Self {
        RequestBuilder::new()
    }
}

/// A name as the kernel sends it, NUL-terminated. A name holding a NUL byte would be read as
/// a shorter one (and shift the parts after it): a bug in the test that builds it, so a panic.
fn name(s: &OsStr) -> Vec<u8> {
    assert!(!s.as_bytes().contains(&0), "a request name cannot hold a NUL byte: {s:?}");
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

impl RequestBuilder {
    /// Requests from root (uid 0, gid 0, pid 1) in the current protocol's layout.
    pub fn new() -> RequestBuilder {
        RequestBuilder {
            dialect: Dialect::default(),
            uid: 0,
            gid: 0,
            pid: 1,
            groups: Vec::new(),
            unique: 0,
        }
    }

    /// Lay requests out as `dialect` says (an older minor, SETXATTR_EXT).
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Requests come from this caller.
    pub fn caller(mut self, uid: u32, gid: u32, pid: u32) -> Self {
        (self.uid, self.gid, self.pid) = (uid, gid, pid);
        self
    }

    /// Attach the caller's supplementary groups (the CREATE_SUPP_GROUP extension) to every
    /// request from now on; an empty list attaches none.
    pub fn groups(mut self, groups: &[u32]) -> Self {
        self.groups = groups.to_vec();
        self
    }

    /// Start the uniques after `unique` (rounded to even), so builders sharing one harness
    /// do not reuse each other's.
    pub fn uniques_after(mut self, unique: u64) -> Self {
        self.unique = unique & !1;
        self
    }

    /// The unique id of the last request built (0 before the first).
    pub fn last_unique(&self) -> u64 {
        self.unique
    }

    /// A request with any opcode number, node id and argument bytes (for unknown opcodes,
    /// malformed arguments, fuzzing). The header's length and extensions are filled in.
    pub fn raw(&mut self, opcode: u32, nodeid: u64, args: &[u8]) -> Vec<u8> {
        self.unique += 2;
        let mut ext = Vec::new();
        if !self.groups.is_empty() {
            let body = 4 + 4 * self.groups.len();
            let size = (8 + body).next_multiple_of(8);
            ext.extend_from_slice(ExtHeader { size: size as u32, typ: EXT_GROUPS }.as_bytes());
            ext.extend_from_slice(SuppGroups { nr_groups: self.groups.len() as u32 }.as_bytes());
            ext.extend_from_slice(self.groups.as_bytes());
            ext.resize(size, 0);
        }
        let len = core::mem::size_of::<InHeader>() + args.len() + ext.len();
        let header = InHeader {
            len: len as u32,
            opcode,
            unique: self.unique,
            nodeid,
            uid: self.uid,
            gid: self.gid,
            pid: self.pid,
            total_extlen: (ext.len() / 8) as u16,
            padding: 0,
        };
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(args);
        v.extend_from_slice(&ext);
        v
    }

    /// A request for `op` on `nodeid`: the fixed struct's bytes, then each part of `tail`.
    fn op(&mut self, op: Opcode, nodeid: u64, fixed: &[u8], tail: &[&[u8]]) -> Vec<u8> {
        let mut args = fixed.to_vec();
        for t in tail {
            args.extend_from_slice(t);
        }
        self.raw(op.number(), nodeid, &args)
    }

    /// LOOKUP `name` in directory `parent`.
    pub fn lookup(&mut self, parent: u64, name_: impl AsRef<OsStr>) -> Vec<u8> {
        self.op(Opcode::Lookup, parent, &[], &[&name(name_.as_ref())])
    }

    /// FORGET `nlookup` references to `ino`.
    pub fn forget(&mut self, ino: u64, nlookup: u64) -> Vec<u8> {
        self.op(Opcode::Forget, ino, ForgetIn { nlookup }.as_bytes(), &[])
    }

    /// BATCH_FORGET of `(node id, nlookup)` pairs.
    pub fn batch_forget(&mut self, forgets: &[(u64, u64)]) -> Vec<u8> {
        let fixed = BatchForgetIn { count: forgets.len() as u32, dummy: 0 };
        let ones: Vec<ForgetOne> =
            forgets.iter().map(|&(nodeid, nlookup)| ForgetOne { nodeid, nlookup }).collect();
        self.op(Opcode::BatchForget, 0, fixed.as_bytes(), &[ones.as_bytes()])
    }

    /// GETATTR of `ino`, through open file `fh` if given (fstat).
    pub fn getattr(&mut self, ino: u64, fh: Option<u64>) -> Vec<u8> {
        let g = GetattrIn {
            getattr_flags: fh.map_or(0, |_| GETATTR_FH),
            dummy: 0,
            fh: fh.unwrap_or(0),
        };
        self.op(Opcode::Getattr, ino, g.as_bytes(), &[])
    }

    /// SETATTR of `ino`: the fields of `set` that are `Some`.
    pub fn setattr(&mut self, ino: u64, set: &SetAttr) -> Vec<u8> {
        let mut valid = SetattrValid::empty();
        let mut s = SetattrIn::default();
        if let Some(m) = set.mode {
            valid |= SetattrValid::MODE;
            s.mode = m;
        }
        if let Some(u) = set.uid {
            valid |= SetattrValid::UID;
            s.uid = u;
        }
        if let Some(g) = set.gid {
            valid |= SetattrValid::GID;
            s.gid = g;
        }
        if let Some(size) = set.size {
            valid |= SetattrValid::SIZE;
            s.size = size;
        }
        let mut time = |t: Option<TimeOrNow>, bit, now_bit| match t {
            None => (0, 0),
            Some(TimeOrNow::Now) => {
                valid |= bit | now_bit;
                (0, 0)
            }
            Some(TimeOrNow::Time(t)) => {
                valid |= bit;
                let (sec, nsec) = split_time(t);
                (sec as u64, nsec)
            }
        };
        (s.atime, s.atimensec) = time(set.atime, SetattrValid::ATIME, SetattrValid::ATIME_NOW);
        (s.mtime, s.mtimensec) = time(set.mtime, SetattrValid::MTIME, SetattrValid::MTIME_NOW);
        if let Some(t) = set.ctime {
            valid |= SetattrValid::CTIME;
            let (sec, nsec) = split_time(t);
            (s.ctime, s.ctimensec) = (sec as u64, nsec);
        }
        if let Some(fh) = set.fh {
            valid |= SetattrValid::FH;
            s.fh = fh;
        }
        if let Some(o) = set.lock_owner {
            valid |= SetattrValid::LOCKOWNER;
            s.lock_owner = o;
        }
        if set.kill_suidgid {
            valid |= SetattrValid::KILL_SUIDGID;
        }
        s.valid = valid.bits();
        self.op(Opcode::Setattr, ino, s.as_bytes(), &[])
    }

    /// READLINK of `ino`.
    pub fn readlink(&mut self, ino: u64) -> Vec<u8> {
        self.op(Opcode::Readlink, ino, &[], &[])
    }

    /// SYMLINK: `name` in `parent`, pointing at `target`.
    pub fn symlink(
        &mut self,
        parent: u64,
        name_: impl AsRef<OsStr>,
        target: impl AsRef<OsStr>,
    ) -> Vec<u8> {
        let (n, t) = (name(name_.as_ref()), name(target.as_ref()));
        self.op(Opcode::Symlink, parent, &[], &[&n, &t])
    }

    /// MKNOD `name` in `parent` with `mode` (type and permissions), device `rdev`, `umask`.
    pub fn mknod(
        &mut self,
        parent: u64,
        name_: impl AsRef<OsStr>,
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> Vec<u8> {
        let m = MknodIn { mode, rdev, umask, padding: 0 };
        let fixed = if self.dialect.minor < 12 {
            &m.as_bytes()[..COMPAT_MKNOD_IN_SIZE]
        } else {
            m.as_bytes()
        };
        self.op(Opcode::Mknod, parent, fixed, &[&name(name_.as_ref())])
    }

    /// MKDIR `name` in `parent`.
    pub fn mkdir(
        &mut self,
        parent: u64,
        name_: impl AsRef<OsStr>,
        mode: u32,
        umask: u32,
    ) -> Vec<u8> {
        let m = MkdirIn { mode, umask };
        self.op(Opcode::Mkdir, parent, m.as_bytes(), &[&name(name_.as_ref())])
    }

    /// UNLINK `name` in `parent`.
    pub fn unlink(&mut self, parent: u64, name_: impl AsRef<OsStr>) -> Vec<u8> {
        self.op(Opcode::Unlink, parent, &[], &[&name(name_.as_ref())])
    }

    /// RMDIR `name` in `parent`.
    pub fn rmdir(&mut self, parent: u64, name_: impl AsRef<OsStr>) -> Vec<u8> {
        self.op(Opcode::Rmdir, parent, &[], &[&name(name_.as_ref())])
    }

    /// RENAME (no flags) or RENAME2 (with flags) of `name` in `parent` to `newname` in
    /// `newparent`.
    pub fn rename(
        &mut self,
        parent: u64,
        name_: impl AsRef<OsStr>,
        newparent: u64,
        newname: impl AsRef<OsStr>,
        flags: RenameFlags,
    ) -> Vec<u8> {
        let (n, nn) = (name(name_.as_ref()), name(newname.as_ref()));
        if flags.is_empty() {
            let r = RenameIn { newdir: newparent };
            self.op(Opcode::Rename, parent, r.as_bytes(), &[&n, &nn])
        } else {
            let r = Rename2In { newdir: newparent, flags: flags.bits(), padding: 0 };
            self.op(Opcode::Rename2, parent, r.as_bytes(), &[&n, &nn])
        }
    }

    /// LINK: a new name `newname` in `newparent` for `ino`.
    pub fn link(&mut self, ino: u64, newparent: u64, newname: impl AsRef<OsStr>) -> Vec<u8> {
        let l = LinkIn { oldnodeid: ino };
        self.op(Opcode::Link, newparent, l.as_bytes(), &[&name(newname.as_ref())])
    }

    /// OPEN `ino` with open(2) `flags`.
    pub fn open(&mut self, ino: u64, flags: i32) -> Vec<u8> {
        self.op(Opcode::Open, ino, OpenIn { flags: flags as u32, open_flags: 0 }.as_bytes(), &[])
    }

    /// OPENDIR `ino`.
    pub fn opendir(&mut self, ino: u64, flags: i32) -> Vec<u8> {
        let o = OpenIn { flags: flags as u32, open_flags: 0 };
        self.op(Opcode::Opendir, ino, o.as_bytes(), &[])
    }

    /// READ `size` bytes at `offset` of open file `fh` of `ino`.
    pub fn read(&mut self, ino: u64, fh: u64, offset: u64, size: u32) -> Vec<u8> {
        let r = ReadIn { fh, offset, size, ..Default::default() };
        self.op(Opcode::Read, ino, r.as_bytes(), &[])
    }

    /// WRITE `data` at `offset` of open file `fh` of `ino`.
    pub fn write(&mut self, ino: u64, fh: u64, offset: u64, data: &[u8]) -> Vec<u8> {
        let w = WriteIn { fh, offset, size: data.len() as u32, ..Default::default() };
        let fixed = if self.dialect.minor < 9 {
            &w.as_bytes()[..COMPAT_WRITE_IN_SIZE]
        } else {
            w.as_bytes()
        };
        self.op(Opcode::Write, ino, fixed, &[data])
    }

    /// STATFS (of the filesystem holding `ino`).
    pub fn statfs(&mut self, ino: u64) -> Vec<u8> {
        self.op(Opcode::Statfs, ino, &[], &[])
    }

    /// RELEASE of open file `fh` of `ino`, opened with `flags`.
    pub fn release(&mut self, ino: u64, fh: u64, flags: i32) -> Vec<u8> {
        let r = ReleaseIn { fh, flags: flags as u32, ..Default::default() };
        self.op(Opcode::Release, ino, r.as_bytes(), &[])
    }

    /// RELEASEDIR of open directory `fh` of `ino`.
    pub fn releasedir(&mut self, ino: u64, fh: u64) -> Vec<u8> {
        let r = ReleaseIn { fh, ..Default::default() };
        self.op(Opcode::Releasedir, ino, r.as_bytes(), &[])
    }

    /// FSYNC of open file `fh` of `ino` (`datasync`: fdatasync).
    pub fn fsync(&mut self, ino: u64, fh: u64, datasync: bool) -> Vec<u8> {
        let f = FsyncIn { fh, fsync_flags: if datasync { FSYNC_FDATASYNC } else { 0 }, padding: 0 };
        self.op(Opcode::Fsync, ino, f.as_bytes(), &[])
    }

    /// FSYNCDIR of open directory `fh` of `ino`.
    pub fn fsyncdir(&mut self, ino: u64, fh: u64, datasync: bool) -> Vec<u8> {
        let f = FsyncIn { fh, fsync_flags: if datasync { FSYNC_FDATASYNC } else { 0 }, padding: 0 };
        self.op(Opcode::Fsyncdir, ino, f.as_bytes(), &[])
    }

    /// SETXATTR `name` = `value` on `ino` (in the layout the dialect's SETXATTR_EXT says).
    pub fn setxattr(
        &mut self,
        ino: u64,
        name_: impl AsRef<OsStr>,
        value: &[u8],
        flags: XattrFlags,
    ) -> Vec<u8> {
        let s = SetxattrIn { size: value.len() as u32, flags: flags.bits(), ..Default::default() };
        let fixed = if self.dialect.setxattr_ext {
            s.as_bytes()
        } else {
            &s.as_bytes()[..COMPAT_SETXATTR_IN_SIZE]
        };
        self.op(Opcode::Setxattr, ino, fixed, &[&name(name_.as_ref()), value])
    }

    /// GETXATTR `name` of `ino` into a caller buffer of `size` bytes (0: the size only).
    pub fn getxattr(&mut self, ino: u64, name_: impl AsRef<OsStr>, size: u32) -> Vec<u8> {
        let g = GetxattrIn { size, padding: 0 };
        self.op(Opcode::Getxattr, ino, g.as_bytes(), &[&name(name_.as_ref())])
    }

    /// LISTXATTR of `ino` into a caller buffer of `size` bytes (0: the size only).
    pub fn listxattr(&mut self, ino: u64, size: u32) -> Vec<u8> {
        self.op(Opcode::Listxattr, ino, GetxattrIn { size, padding: 0 }.as_bytes(), &[])
    }

    /// REMOVEXATTR `name` of `ino`.
    pub fn removexattr(&mut self, ino: u64, name_: impl AsRef<OsStr>) -> Vec<u8> {
        self.op(Opcode::Removexattr, ino, &[], &[&name(name_.as_ref())])
    }

    /// FLUSH of open file `fh` of `ino` by `lock_owner`.
    pub fn flush(&mut self, ino: u64, fh: u64, lock_owner: u64) -> Vec<u8> {
        let f = FlushIn { fh, unused: 0, padding: 0, lock_owner };
        self.op(Opcode::Flush, ino, f.as_bytes(), &[])
    }

    /// INIT as a kernel speaking `major.minor` offers it.
    pub fn init(
        &mut self,
        major: u32,
        minor: u32,
        max_readahead: u32,
        flags: InitFlags,
    ) -> Vec<u8> {
        let i = InitIn {
            major,
            minor,
            max_readahead,
            flags: flags.low(),
            flags2: flags.high(),
            unused: [0; 11],
        };
        self.op(Opcode::Init, 0, i.as_bytes(), &[])
    }

    /// READDIR of open directory `fh` of `ino`, after cookie `offset`, `size` bytes at most.
    pub fn readdir(&mut self, ino: u64, fh: u64, offset: u64, size: u32) -> Vec<u8> {
        let r = ReadIn { fh, offset, size, ..Default::default() };
        self.op(Opcode::Readdir, ino, r.as_bytes(), &[])
    }

    /// READDIRPLUS, as [`readdir`](Self::readdir).
    pub fn readdirplus(&mut self, ino: u64, fh: u64, offset: u64, size: u32) -> Vec<u8> {
        let r = ReadIn { fh, offset, size, ..Default::default() };
        self.op(Opcode::Readdirplus, ino, r.as_bytes(), &[])
    }

    /// GETLK: test `lock` on open file `fh` of `ino` for `owner`.
    pub fn getlk(&mut self, ino: u64, fh: u64, owner: u64, lock: Lock) -> Vec<u8> {
        let l = lk_in(fh, owner, lock, false);
        self.op(Opcode::Getlk, ino, l.as_bytes(), &[])
    }

    /// SETLK, or SETLKW with `sleep`; a flock(2) lock with `flock`.
    pub fn setlk(
        &mut self,
        ino: u64,
        fh: u64,
        owner: u64,
        lock: Lock,
        sleep: bool,
        flock: bool,
    ) -> Vec<u8> {
        let l = lk_in(fh, owner, lock, flock);
        let op = if sleep { Opcode::Setlkw } else { Opcode::Setlk };
        self.op(op, ino, l.as_bytes(), &[])
    }

    /// ACCESS check of `ino` with `mask` (`R_OK | W_OK | X_OK`, or `F_OK`).
    pub fn access(&mut self, ino: u64, mask: i32) -> Vec<u8> {
        self.op(Opcode::Access, ino, AccessIn { mask: mask as u32, padding: 0 }.as_bytes(), &[])
    }

    /// CREATE `name` in `parent` with `mode`, `umask` and open(2) `flags`.
    pub fn create(
        &mut self,
        parent: u64,
        name_: impl AsRef<OsStr>,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Vec<u8> {
        let c = CreateIn { flags: flags as u32, mode, umask, open_flags: 0 };
        self.op(Opcode::Create, parent, c.as_bytes(), &[&name(name_.as_ref())])
    }

    /// INTERRUPT of request `unique` (its own unique is `unique | 1`, as the kernel's).
    pub fn interrupt(&mut self, unique: u64) -> Vec<u8> {
        let mut v = self.op(Opcode::Interrupt, 0, InterruptIn { unique }.as_bytes(), &[]);
        v[8..16].copy_from_slice(&(unique | 1).to_le_bytes());
        v
    }

    /// BMAP of logical `block` of `ino`.
    pub fn bmap(&mut self, ino: u64, block: u64, blocksize: u32) -> Vec<u8> {
        let b = BmapIn { block, blocksize, padding: 0 };
        self.op(Opcode::Bmap, ino, b.as_bytes(), &[])
    }

    /// DESTROY.
    pub fn destroy(&mut self) -> Vec<u8> {
        self.op(Opcode::Destroy, 0, &[], &[])
    }

    /// IOCTL `cmd` with `arg` and input `data` on open file `fh` of `ino`, for a caller
    /// taking `out_size` bytes back.
    pub fn ioctl(
        &mut self,
        ino: u64,
        fh: u64,
        cmd: u32,
        arg: u64,
        data: &[u8],
        out_size: u32,
    ) -> Vec<u8> {
        self.ioctl_flagged(IoctlFlags::empty(), ino, fh, cmd, arg, data, out_size)
    }

    /// IOCTL as [`ioctl`](Self::ioctl), unrestricted (`FUSE_IOCTL_UNRESTRICTED`, as CUSE
    /// sends): `data` is what earlier retries asked for.
    pub fn ioctl_unrestricted(
        &mut self,
        ino: u64,
        fh: u64,
        cmd: u32,
        arg: u64,
        data: &[u8],
        out_size: u32,
    ) -> Vec<u8> {
        self.ioctl_flagged(IoctlFlags::UNRESTRICTED, ino, fh, cmd, arg, data, out_size)
    }

    #[allow(clippy::too_many_arguments)]
    fn ioctl_flagged(
        &mut self,
        flags: IoctlFlags,
        ino: u64,
        fh: u64,
        cmd: u32,
        arg: u64,
        data: &[u8],
        out_size: u32,
    ) -> Vec<u8> {
        let flags = flags.bits();
        let i = IoctlIn { fh, flags, cmd, arg, in_size: data.len() as u32, out_size };
        self.op(Opcode::Ioctl, ino, i.as_bytes(), &[data])
    }

    /// POLL of open file `fh` of `ino` for `events`, with kernel handle `kh`.
    pub fn poll(&mut self, ino: u64, fh: u64, kh: u64, events: u32, notify: bool) -> Vec<u8> {
        let p = PollIn { fh, kh, flags: if notify { POLL_SCHEDULE_NOTIFY } else { 0 }, events };
        self.op(Opcode::Poll, ino, p.as_bytes(), &[])
    }

    /// NOTIFY_REPLY: `data` of `ino` at `offset`, answering RETRIEVE `notify_unique`.
    pub fn notify_reply(
        &mut self,
        ino: u64,
        notify_unique: u64,
        offset: u64,
        data: &[u8],
    ) -> Vec<u8> {
        let r = NotifyRetrieveIn { offset, size: data.len() as u32, ..Default::default() };
        let mut v = self.op(Opcode::NotifyReply, ino, r.as_bytes(), &[data]);
        v[8..16].copy_from_slice(&notify_unique.to_le_bytes());
        v
    }

    /// FALLOCATE `length` bytes at `offset` of open file `fh` of `ino` with `mode`.
    pub fn fallocate(&mut self, ino: u64, fh: u64, offset: u64, length: u64, mode: i32) -> Vec<u8> {
        let f = FallocateIn { fh, offset, length, mode: mode as u32, padding: 0 };
        self.op(Opcode::Fallocate, ino, f.as_bytes(), &[])
    }

    /// LSEEK (SEEK_DATA / SEEK_HOLE) from `offset` of open file `fh` of `ino`.
    pub fn lseek(&mut self, ino: u64, fh: u64, offset: i64, whence: i32) -> Vec<u8> {
        let l = LseekIn { fh, offset: offset as u64, whence: whence as u32, padding: 0 };
        self.op(Opcode::Lseek, ino, l.as_bytes(), &[])
    }

    /// COPY_FILE_RANGE (COPY_FILE_RANGE_64 with `wide`) of `len` bytes `from` (node, handle,
    /// offset) `to` (node, handle, offset).
    pub fn copy_file_range(
        &mut self,
        from: (u64, u64, u64),
        to: (u64, u64, u64),
        len: u64,
        wide: bool,
    ) -> Vec<u8> {
        let c = CopyFileRangeIn {
            fh_in: from.1,
            off_in: from.2,
            nodeid_out: to.0,
            fh_out: to.1,
            off_out: to.2,
            len,
            flags: 0,
        };
        let op = if wide { Opcode::CopyFileRange64 } else { Opcode::CopyFileRange };
        self.op(op, from.0, c.as_bytes(), &[])
    }

    /// SETUPMAPPING (DAX) of `len` bytes at `foffset` of `fh` of `ino`, at window `moffset`.
    pub fn setupmapping(
        &mut self,
        ino: u64,
        fh: u64,
        foffset: u64,
        len: u64,
        moffset: u64,
    ) -> Vec<u8> {
        let s = SetupmappingIn { fh, foffset, len, flags: 0, moffset };
        self.op(Opcode::Setupmapping, ino, s.as_bytes(), &[])
    }

    /// REMOVEMAPPING (DAX) of `(window offset, length)` pairs of `ino`.
    pub fn removemapping(&mut self, ino: u64, mappings: &[(u64, u64)]) -> Vec<u8> {
        let fixed = RemovemappingIn { count: mappings.len() as u32 };
        let ones: Vec<RemovemappingOne> =
            mappings.iter().map(|&(moffset, len)| RemovemappingOne { moffset, len }).collect();
        self.op(Opcode::Removemapping, ino, fixed.as_bytes(), &[ones.as_bytes()])
    }

    /// SYNCFS (of the filesystem holding `ino`).
    pub fn syncfs(&mut self, ino: u64) -> Vec<u8> {
        self.op(Opcode::Syncfs, ino, SyncfsIn { padding: 0 }.as_bytes(), &[])
    }

    /// TMPFILE in `parent` with `mode`, `umask` and open(2) `flags`.
    pub fn tmpfile(&mut self, parent: u64, mode: u32, umask: u32, flags: i32) -> Vec<u8> {
        let c = CreateIn { flags: flags as u32, mode, umask, open_flags: 0 };
        self.op(Opcode::Tmpfile, parent, c.as_bytes(), &[])
    }

    /// STATX of `ino`, through open file `fh` if given.
    pub fn statx(&mut self, ino: u64, fh: Option<u64>, sx_flags: u32, sx_mask: u32) -> Vec<u8> {
        let s = StatxIn {
            getattr_flags: fh.map_or(0, |_| GETATTR_FH),
            reserved: 0,
            fh: fh.unwrap_or(0),
            sx_flags,
            sx_mask,
        };
        self.op(Opcode::Statx, ino, s.as_bytes(), &[])
    }

    /// CUSE_INIT.
    pub fn cuse_init(&mut self, major: u32, minor: u32, flags: u32) -> Vec<u8> {
        let c = CuseInitIn { major, minor, unused: 0, flags };
        self.op(Opcode::CuseInit, 0, c.as_bytes(), &[])
    }
}

fn lk_in(fh: u64, owner: u64, lock: Lock, flock: bool) -> LkIn {
    LkIn {
        fh,
        owner,
        lk: FileLock { start: lock.start, end: lock.end, typ: lock.typ as u32, pid: lock.pid },
        lk_flags: if flock { LK_FLOCK } else { 0 },
        padding: 0,
    }
}
