//! The same MemFs logic served by the `fuser` crate, for side-by-side measurement.
//!
//! Every answer mirrors `fusefs::memfs`'s own `Filesystem` layer (FLUSH answered ENOSYS once,
//! KEEP_CACHE on open, the same TTLs, READDIRPLUS with attributes), so the two targets differ
//! only in the library. Only what the benchmark workloads use is implemented.

use fusefs::memfs::{Caller, MemFs};
use fuser::{
    Errno, FileHandle, FileType, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::cell::RefCell;
use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

pub struct FuserMemFs(pub MemFs);

fn kind(k: fusefs::FileType) -> FileType {
    match k {
        fusefs::FileType::RegularFile => FileType::RegularFile,
        fusefs::FileType::Directory => FileType::Directory,
        fusefs::FileType::Symlink => FileType::Symlink,
        fusefs::FileType::CharDevice => FileType::CharDevice,
        fusefs::FileType::BlockDevice => FileType::BlockDevice,
        fusefs::FileType::NamedPipe => FileType::NamedPipe,
        fusefs::FileType::Socket => FileType::Socket,
    }
}

fn attr(a: &fusefs::FileAttr) -> fuser::FileAttr {
    fuser::FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: a.flags,
    }
}

fn err(e: fusefs::memfs::Errno) -> Errno {
    Errno::from_i32(e.raw())
}

fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid() }
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl FuserMemFs {
    fn ttls(&self) -> (Duration, Duration) {
        (self.0.options().attr_ttl, self.0.options().entry_ttl)
    }
    fn entry(&self, reply: ReplyEntry, r: fusefs::memfs::Result<fusefs::FileAttr>) {
        let (at, et) = self.ttls();
        match r {
            Ok(a) => reply.entry_with_ttls(&at, &et, &attr(&a), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }
}

impl fuser::Filesystem for FuserMemFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // The capabilities fusefs asks for by default, where fuser can set them.
        let want = fuser::InitFlags::FUSE_ASYNC_READ
            | fuser::InitFlags::FUSE_BIG_WRITES
            | fuser::InitFlags::FUSE_PARALLEL_DIROPS
            | fuser::InitFlags::FUSE_DO_READDIRPLUS
            | fuser::InitFlags::FUSE_READDIRPLUS_AUTO
            | fuser::InitFlags::FUSE_MAX_PAGES;
        let _ = config.add_capabilities(want);
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(reply, self.0.lookup(parent.0, name))
    }

    fn forget(&self, _: &Request, ino: INodeNo, nlookup: u64) {
        self.0.forget(ino.0, nlookup)
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.getattr(ino.0) {
            Ok(a) => reply.attr(&self.ttls().0, &attr(&a)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn setattr(
        &self,
        _: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let t = |t: TimeOrNow| match t {
            TimeOrNow::Now => fusefs::op::TimeOrNow::Now,
            TimeOrNow::SpecificTime(t) => fusefs::op::TimeOrNow::Time(t),
        };
        let mut set = fusefs::op::SetAttr::default();
        set.mode = mode;
        set.uid = uid;
        set.gid = gid;
        set.size = size;
        set.atime = atime.map(t);
        set.mtime = mtime.map(t);
        set.fh = fh.map(|f| f.0);
        match self.0.setattr(ino.0, &set) {
            Ok(a) => reply.attr(&self.ttls().0, &attr(&a)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.entry(reply, self.0.mknod(parent.0, name, mode, rdev, caller(req)))
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(reply, self.0.mkdir(parent.0, name, mode, caller(req)))
    }

    fn unlink(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.0.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn rmdir(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.0.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn opendir(&self, _: &Request, _: INodeNo, _: OpenFlags, reply: ReplyOpen) {
        // As fusefs's MemFs answers: listings kept by the kernel.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn open(&self, _: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.0.open(ino.0, flags.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(err(e)),
        }
    }

    fn read(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyData,
    ) {
        READ_BUF.with(|b| {
            let mut buf = b.borrow_mut();
            if buf.len() < size as usize {
                buf.resize(size as usize, 0);
            }
            let out = &mut buf[..size as usize];
            match self.0.read(ino.0, offset, out) {
                Ok(n) => reply.data(&out[..n]),
                Err(e) => reply.error(err(e)),
            }
        })
    }

    fn write(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        data: &[u8],
        _: WriteFlags,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.0.write(ino.0, offset, data, false) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(err(e)),
        }
    }

    fn flush(&self, _: &Request, _: INodeNo, _: FileHandle, _: LockOwner, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }

    fn readdir(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self.0.readdir(ino.0, offset, |i, cookie, k, name| {
            reply.add(INodeNo(i), cookie, kind(k), name)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn readdirplus(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let (at, _) = self.ttls();
        let r = self.0.readdirplus(ino.0, offset, |a, i, cookie, k, name| match a {
            Some(a) => reply.add(INodeNo(i), cookie, name, &at, &attr(a), Generation(0)),
            // fuser cannot send an entry without attributes; "." and ".." get the directory's
            // attributes, which the kernel ignores for those names.
            None => {
                let d = fusefs::FileAttr::new(i, k, 0o755, SystemTime::UNIX_EPOCH);
                reply.add(INodeNo(i), cookie, name, &Duration::ZERO, &attr(&d), Generation(0))
            }
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn statfs(&self, _: &Request, _: INodeNo, reply: ReplyStatfs) {
        let s = self.0.statfs();
        reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize)
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (at, _) = self.ttls();
        match self.0.create(parent.0, name, mode, flags, caller(req)) {
            Ok(a) => reply.created(
                &at,
                &attr(&a),
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(err(e)),
        }
    }
}
