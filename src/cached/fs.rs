//! `CachedFs`: a `Backend` served as a `Filesystem` through an `InodeTable` and its caches.

use super::backend::{Backend, DirEntry};
use super::CacheConfig;
use crate::memfs::Errno;
use fusefs_cache::inode::{GENERATION, ROOT};
use fusefs_cache::{InodeTable, TableConfig, TableStats};
use fusefs_session::op;
use fusefs_session::*;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

type Listing = Arc<[DirEntry]>;

/// A [`Backend`] served over FUSE with caching. See the module docs.
pub struct CachedFs<B: Backend> {
    backend: B,
    table: InodeTable<FileAttr, Listing>,
    cfg: CacheConfig,
    notifier: OnceLock<Notifier>,
}

/// What a [`CachedFs`] holds and how its caches did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedFsStats {
    /// Inodes, attribute cache and listing cache counters.
    pub table: TableStats,
}

impl std::fmt::Display for CachedFsStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.table;
        writeln!(f, "inodes held: {}", t.inodes)?;
        for (name, s) in [("attribute cache", t.attrs), ("listing cache", t.dirs)] {
            writeln!(
                f,
                "{name}: {} hits, {} misses ({:.1}% hit rate), {} expired, {} evicted, {} held",
                s.hits,
                s.misses,
                100.0 * s.hit_rate(),
                s.expirations,
                s.evictions,
                s.len
            )?;
        }
        Ok(())
    }
}

type R<T> = Result<T, Errno>;

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<B: Backend> CachedFs<B> {
    /// Serve `backend` with caching as `cfg` says.
    pub fn new(backend: B, cfg: CacheConfig) -> Self {
        let table = InodeTable::new(TableConfig {
            attr_ttl: cfg.attr_cache_ttl,
            dir_ttl: cfg.dir_cache_ttl,
            max_inodes: cfg.max_cached_inodes,
            max_dirs: cfg.max_cached_dirs,
        });
        CachedFs { backend, table, cfg, notifier: OnceLock::new() }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The cache settings.
    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// Give the filesystem the session's notifier, so [`invalidate`](Self::invalidate) can
    /// reach the kernel's caches too.
    pub fn set_notifier(&self, n: Notifier) {
        let _ = self.notifier.set(n);
    }

    /// Counters.
    pub fn stats(&self) -> CachedFsStats {
        CachedFsStats { table: self.table.stats() }
    }

    /// `path` changed in the backend behind the mount's back: drop what we cached about it and
    /// its directory, and tell the kernel to drop its copies.
    pub fn invalidate(&self, path: &Path) {
        if let Some(id) = self.table.id_of(path) {
            self.table.drop_attr(id);
            self.table.drop_dir(id);
            if let Some(n) = self.notifier.get() {
                let _ = n.inval_inode(id, 0, 0);
            }
        }
        let parent = path.parent().unwrap_or(Path::new(""));
        if let (Some(pid), Some(name)) = (self.table.id_of(parent), path.file_name()) {
            self.table.drop_dir(pid);
            self.table.drop_attr(pid);
            if let Some(n) = self.notifier.get() {
                let _ = n.inval_entry(pid, name);
            }
        }
    }

    fn path(&self, id: u64) -> R<PathBuf> {
        self.table.path(id).ok_or(Errno(libc::ESTALE))
    }

    /// Attributes of node `id` at `path`: cached, or asked for and cached.
    fn attr(&self, id: u64, path: &Path) -> R<FileAttr> {
        if let Some(a) = self.table.cached_attr(id) {
            return Ok(a);
        }
        let mut a = self.backend.stat(path)?;
        a.ino = id;
        self.table.cache_attr(id, a);
        Ok(a)
    }

    /// The listing of directory `id` at `path`: cached, or asked for and cached.
    fn listing(&self, id: u64, path: &Path) -> R<Listing> {
        if let Some(l) = self.table.cached_dir(id) {
            return Ok(l);
        }
        let l: Listing = self.backend.list(path)?.into();
        self.table.cache_dir(id, Arc::clone(&l));
        Ok(l)
    }

    /// Reply to a new or found node at `path` with attributes `a` (one lookup taken).
    fn entry_for(&self, path: &Path, mut a: FileAttr) -> Entry {
        let id = self.table.remember(path);
        a.ino = id;
        self.table.cache_attr(id, a);
        Entry {
            nodeid: id,
            generation: GENERATION,
            attr: a,
            entry_ttl: self.cfg.entry_timeout,
            attr_ttl: self.cfg.attr_timeout,
        }
    }

    /// A directory's contents changed: its listing and attributes (mtime) are stale.
    fn dir_changed(&self, dir: &Path) {
        if let Some(id) = self.table.id_of(dir) {
            self.table.drop_dir(id);
            self.table.drop_attr(id);
        }
    }

    fn child(&self, parent: u64, name: &OsStr) -> R<PathBuf> {
        if name.len() > 255 {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        Ok(self.path(parent)?.join(name))
    }

    fn lookup_entry(&self, parent: u64, name: &OsStr) -> R<Entry> {
        // A cached listing without the name answers "no" without asking the backend.
        if let Some(l) = self.table.cached_dir(parent) {
            if !l.iter().any(|e| e.name == name) {
                return Err(Errno::ENOENT);
            }
        }
        let path = self.child(parent, name)?;
        let cached = self.table.id_of(&path).and_then(|id| self.table.cached_attr(id));
        let a = match cached {
            Some(a) => a,
            None => self.backend.stat(&path)?,
        };
        Ok(self.entry_for(&path, a))
    }

    fn open_flags(&self) -> OpenFlags {
        if self.cfg.direct_io {
            OpenFlags::DIRECT_IO
        } else {
            OpenFlags::empty()
        }
    }
}

macro_rules! answer {
    ($r:expr, $reply:ident, |$v:ident| $ok:expr) => {
        match $r {
            Ok($v) => $ok,
            Err(Errno(e)) => $reply.error(e),
        }
    };
}

impl<B: Backend> Filesystem for CachedFs<B> {
    fn init(&self, config: &mut KernelConfig) -> Result<(), i32> {
        config.max_readahead = self.cfg.max_readahead;
        config.max_write = self.cfg.max_write;
        Ok(())
    }

    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        match self.lookup_entry(op.parent, op.name) {
            Ok(e) => reply.entry(&e),
            Err(Errno::ENOENT) if !self.cfg.negative_timeout.is_zero() => {
                reply.negative(self.cfg.negative_timeout)
            }
            Err(Errno(e)) => reply.error(e),
        }
    }

    fn forget(&self, _: &Context<'_>, op: op::Forget) {
        self.table.forget(op.ino, op.nlookup)
    }

    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        let r = self.path(op.ino).and_then(|p| self.attr(op.ino, &p));
        answer!(r, reply, |a| reply.attr(&a, self.cfg.attr_timeout))
    }

    fn setattr(&self, _: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        let r = self.path(op.ino).and_then(|p| {
            let mut a = self.backend.set_attr(&p, &op.attr)?;
            a.ino = op.ino;
            self.table.cache_attr(op.ino, a);
            Ok(a)
        });
        answer!(r, reply, |a| reply.attr(&a, self.cfg.attr_timeout))
    }

    fn readlink(&self, _: &Context<'_>, op: op::Readlink, reply: ReplyData) {
        let r = self.path(op.ino).and_then(|p| self.backend.readlink(&p));
        answer!(r, reply, |t| reply.data(t.as_os_str().as_bytes()))
    }

    fn mkdir(&self, _: &Context<'_>, op: op::Mkdir<'_>, reply: ReplyEntry) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.backend.mkdir(&p, op.mode)?;
            self.dir_changed(p.parent().unwrap_or(Path::new("")));
            Ok(self.entry_for(&p, a))
        });
        answer!(r, reply, |e| reply.entry(&e))
    }

    fn symlink(&self, _: &Context<'_>, op: op::Symlink<'_>, reply: ReplyEntry) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.backend.symlink(&p, Path::new(op.target))?;
            self.dir_changed(p.parent().unwrap_or(Path::new("")));
            Ok(self.entry_for(&p, a))
        });
        answer!(r, reply, |e| reply.entry(&e))
    }

    fn mknod(&self, _: &Context<'_>, op: op::Mknod<'_>, reply: ReplyEntry) {
        if FileType::from_mode(op.mode) != Some(FileType::RegularFile) {
            return reply.error(libc::EPERM); // path stores hold files, directories and links
        }
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.backend.create(&p, op.mode)?;
            self.dir_changed(p.parent().unwrap_or(Path::new("")));
            Ok(self.entry_for(&p, a))
        });
        answer!(r, reply, |e| reply.entry(&e))
    }

    fn create(&self, _: &Context<'_>, op: op::Create<'_>, reply: ReplyCreate) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.backend.create(&p, op.mode)?;
            self.dir_changed(p.parent().unwrap_or(Path::new("")));
            Ok(self.entry_for(&p, a))
        });
        answer!(r, reply, |e| reply.created(&e, 0, self.open_flags()))
    }

    fn unlink(&self, _: &Context<'_>, op: op::Unlink<'_>, reply: ReplyEmpty) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            self.backend.remove(&p, false)?;
            self.table.unlinked(&p);
            self.dir_changed(p.parent().unwrap_or(Path::new("")));
            Ok(())
        });
        answer!(r, reply, |_v| reply.ok())
    }

    fn rmdir(&self, _: &Context<'_>, op: op::Rmdir<'_>, reply: ReplyEmpty) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            self.backend.remove(&p, true)?;
            self.table.unlinked(&p);
            self.dir_changed(p.parent().unwrap_or(Path::new("")));
            Ok(())
        });
        answer!(r, reply, |_v| reply.ok())
    }

    fn rename(&self, _: &Context<'_>, op: op::Rename<'_>, reply: ReplyEmpty) {
        if !op.flags.is_empty() {
            return reply.error(libc::EINVAL); // a path store renames plainly
        }
        let r = (|| {
            let from = self.child(op.parent, op.name)?;
            let to = self.child(op.newparent, op.newname)?;
            self.backend.rename(&from, &to)?;
            if let Some(id) = self.table.id_of(&from) {
                self.table.drop_attr(id); // ctime moved
            }
            self.table.renamed(&from, &to);
            self.dir_changed(from.parent().unwrap_or(Path::new("")));
            self.dir_changed(to.parent().unwrap_or(Path::new("")));
            Ok(())
        })();
        answer!(r, reply, |_v| reply.ok())
    }

    fn open(&self, _: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        reply.opened(0, self.open_flags())
    }

    fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
        let path = match self.path(op.ino) {
            Ok(p) => p,
            Err(Errno(e)) => return reply.error(e),
        };
        READ_BUF.with(|b| {
            let mut buf = b.borrow_mut();
            if buf.len() < op.size as usize {
                buf.resize(op.size as usize, 0);
            }
            let out = &mut buf[..op.size as usize];
            answer!(self.backend.read(&path, op.offset, out), reply, |n| reply.data(&out[..n]))
        })
    }

    fn write(&self, _: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        let r = self.path(op.ino).and_then(|p| {
            let n = self.backend.write(&p, op.offset, op.data)?;
            self.table.drop_attr(op.ino); // size and mtime moved
            Ok(n as u32)
        });
        answer!(r, reply, |n| reply.written(n))
    }

    fn flush(&self, _: &Context<'_>, _: op::Flush, reply: ReplyEmpty) {
        reply.error(libc::ENOSYS)
    }

    fn fsync(&self, _: &Context<'_>, _: op::Fsync, reply: ReplyEmpty) {
        reply.ok()
    }

    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        let r = self.path(op.ino).and_then(|p| self.listing(op.ino, &p).map(|l| (p, l)));
        let (path, list) = match r {
            Ok(v) => v,
            Err(Errno(e)) => return reply.error(e),
        };
        let dots = [(ROOT.max(op.ino), "."), (ROOT, "..")];
        for (i, (ino, name)) in dots.iter().enumerate().skip(op.offset as usize) {
            if reply.add(*ino, i as u64 + 1, FileType::Directory, name) {
                return reply.ok();
            }
        }
        let start = (op.offset as usize).saturating_sub(2);
        for (i, e) in list.iter().enumerate().skip(start) {
            // d_ino: the node id if the kernel holds the name, else a stable stand-in.
            let ino = self.table.id_of(&path.join(&e.name)).unwrap_or(u64::MAX - i as u64);
            if reply.add(ino, i as u64 + 3, e.kind, &e.name) {
                break;
            }
        }
        reply.ok()
    }

    fn statfs(&self, _: &Context<'_>, _: op::Statfs, reply: ReplyStatfs) {
        answer!(self.backend.statfs(), reply, |s| reply.statfs(&s))
    }

    fn getxattr(&self, _: &Context<'_>, op: op::Getxattr<'_>, reply: ReplyXattr) {
        let r = self.path(op.ino).and_then(|p| self.backend.getxattr(&p, op.name));
        answer!(r, reply, |v| reply.value(&v))
    }

    fn listxattr(&self, _: &Context<'_>, op: op::Listxattr, reply: ReplyXattr) {
        let r = self.path(op.ino).and_then(|p| self.backend.listxattr(&p));
        answer!(r, reply, |names| {
            let mut v = Vec::new();
            for n in names {
                v.extend_from_slice(n.as_bytes());
                v.push(0);
            }
            reply.value(&v)
        })
    }

    fn setxattr(&self, _: &Context<'_>, op: op::Setxattr<'_>, reply: ReplyEmpty) {
        let r = self
            .path(op.ino)
            .and_then(|p| self.backend.setxattr(&p, op.name, op.value, op.flags.bits() as i32));
        answer!(r, reply, |_v| reply.ok())
    }

    fn removexattr(&self, _: &Context<'_>, op: op::Removexattr<'_>, reply: ReplyEmpty) {
        let r = self.path(op.ino).and_then(|p| self.backend.removexattr(&p, op.name));
        answer!(r, reply, |_v| reply.ok())
    }
}
