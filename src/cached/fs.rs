//! `CachedFs`: a `Backend` served as a `Filesystem` through an `InodeTable` and its caches.

use super::backend::{Backend, DirEntry};
use super::CacheConfig;
use crate::Errno;
use fusefs_cache::inode::{GENERATION, ROOT};
use fusefs_cache::{InodeTable, TableConfig, TableStats};
use fusefs_session::op;
use fusefs_session::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

type Listing = Arc<[DirEntry]>;

/// A [`Backend`] served over FUSE with caching. See the module docs.
pub struct CachedFs<B: Backend> {
    backend: B,
    table: InodeTable<FileAttr, Listing>,
    cfg: CacheConfig,
    notifier: OnceLock<Notifier>,
    /// Each open directory's listing, taken at OPENDIR: READDIR offsets index this snapshot,
    /// so entries are neither skipped nor repeated however the directory changes meanwhile.
    open_dirs: Mutex<HashMap<u64, Listing>>,
    next_fh: AtomicU64,
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

impl<B: Backend> CachedFs<B> {
    /// Serve `backend` with caching as `cfg` says.
    pub fn new(backend: B, cfg: CacheConfig) -> Self {
        let table = InodeTable::new(TableConfig {
            attr_ttl: cfg.attr_cache_ttl,
            dir_ttl: cfg.dir_cache_ttl,
            max_inodes: cfg.max_cached_inodes,
            max_dirs: cfg.max_cached_dirs,
        });
        CachedFs {
            backend,
            table,
            cfg,
            notifier: OnceLock::new(),
            open_dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
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
        self.table.path(id).ok_or(Errno::ESTALE)
    }

    /// Attributes of node `id` at `path`: cached, or asked for and cached (unless an
    /// invalidation raced the question: the answer may predate the change).
    fn attr(&self, id: u64, path: &Path) -> R<FileAttr> {
        if let Some(a) = self.table.cached_attr(id) {
            return Ok(a);
        }
        let v = self.table.version();
        let mut a = self.backend.stat(path)?;
        a.ino = id;
        self.table.cache_attr_if(id, a, v);
        Ok(a)
    }

    /// The listing of directory `id` at `path`, sorted by name: cached, or asked for and
    /// cached as `attr` does.
    fn listing(&self, id: u64, path: &Path) -> R<Listing> {
        if let Some(l) = self.table.cached_dir(id) {
            return Ok(l);
        }
        let v = self.table.version();
        let mut l = self.backend.list(path)?;
        l.sort_by(|a, b| a.name.cmp(&b.name));
        let l: Listing = l.into();
        self.table.cache_dir_if(id, Arc::clone(&l), v);
        Ok(l)
    }

    /// Reply to a new or found node at `path` with attributes `a` (one lookup taken). `v` is
    /// the invalidation version the attributes were asked for at; `None` when they come from
    /// the operation that just made the node, and are current.
    fn entry_for(&self, path: &Path, mut a: FileAttr, v: Option<u64>) -> Entry {
        let id = self.table.remember(path);
        a.ino = id;
        match v {
            Some(v) => self.table.cache_attr_if(id, a, v),
            None => self.table.cache_attr(id, a),
        }
        Entry {
            nodeid: id,
            generation: GENERATION,
            attr: a,
            entry_ttl: self.cfg.entry_timeout,
            attr_ttl: self.cfg.attr_timeout,
        }
    }

    /// Directory `id`'s contents changed (or may have: also called when an operation failed
    /// halfway): its listing and attributes (mtime) are stale.
    fn dir_changed(&self, id: u64) {
        self.table.drop_dir(id);
        self.table.drop_attr(id);
    }

    /// The backend path of `name` in `parent`. "." and "..", names with '/' or NUL, and over
    /// 255 bytes are refused, so no path leaves the backend's root.
    fn child(&self, parent: u64, name: &OsStr) -> R<PathBuf> {
        let b = name.as_bytes();
        if b.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
            return Err(Errno::EINVAL);
        }
        Ok(self.path(parent)?.join(name))
    }

    /// Run a mutating backend operation on `parent`'s entries; whatever the outcome, the
    /// parent's listing and attributes are dropped.
    fn changing<T>(&self, parent: u64, f: impl FnOnce() -> R<T>) -> R<T> {
        let r = f();
        self.dir_changed(parent);
        r
    }

    fn lookup_entry(&self, parent: u64, name: &OsStr) -> R<Entry> {
        let path = self.child(parent, name)?;
        // A cached listing (sorted) without the name answers "no" without asking the backend.
        if let Some(l) = self.table.cached_dir(parent) {
            if l.binary_search_by(|e| e.name.as_os_str().cmp(name)).is_err() {
                return Err(Errno::ENOENT);
            }
        }
        let cached = self.table.id_of(&path).and_then(|id| self.table.cached_attr(id));
        let (a, v) = match cached {
            Some(a) => (a, None),
            None => {
                let v = self.table.version();
                (self.backend.stat(&path)?, Some(v))
            }
        };
        Ok(self.entry_for(&path, a, v))
    }

    /// Send an entry; if the kernel never got it, take back the lookup `entry_for` counted.
    fn give(&self, reply: ReplyEntry, e: Entry) {
        if !reply.entry(&e) {
            self.table.forget(e.nodeid, 1);
        }
    }

    /// UNLINK (`dir` false) and RMDIR (`dir` true).
    fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> R<()> {
        let p = self.child(parent, name)?;
        self.changing(parent, || self.backend.remove(&p, dir))?;
        self.table.unlinked(&p);
        Ok(())
    }

    fn open_flags(&self) -> OpenFlags {
        if self.cfg.direct_io {
            OpenFlags::DIRECT_IO
        } else {
            OpenFlags::empty()
        }
    }
}

impl<B: Backend> Filesystem for CachedFs<B> {
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        config.max_readahead = self.cfg.max_readahead;
        config.max_write = self.cfg.max_write;
        Ok(())
    }

    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        match self.lookup_entry(op.parent, op.name) {
            Ok(e) => self.give(reply, e),
            Err(Errno::ENOENT) if !self.cfg.negative_timeout.is_zero() => {
                reply.negative(self.cfg.negative_timeout)
            }
            Err(e) => reply.error(e),
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
        let r = self.path(op.ino).and_then(|p| match self.backend.set_attr(&p, &op.attr) {
            Ok(mut a) => {
                a.ino = op.ino;
                self.table.drop_attr(op.ino);
                self.table.cache_attr(op.ino, a);
                Ok(a)
            }
            Err(e) => {
                self.table.drop_attr(op.ino); // part of it may have happened
                Err(e)
            }
        });
        answer!(r, reply, |a| reply.attr(&a, self.cfg.attr_timeout))
    }

    fn readlink(&self, _: &Context<'_>, op: op::Readlink, reply: ReplyData) {
        let r = self.path(op.ino).and_then(|p| self.backend.readlink(&p));
        answer!(r, reply, |t| reply.data(t.as_os_str().as_bytes()))
    }

    fn mkdir(&self, _: &Context<'_>, op: op::Mkdir<'_>, reply: ReplyEntry) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.changing(op.parent, || self.backend.mkdir(&p, op.mode))?;
            Ok(self.entry_for(&p, a, None))
        });
        answer!(r, reply, |e| self.give(reply, e))
    }

    fn symlink(&self, _: &Context<'_>, op: op::Symlink<'_>, reply: ReplyEntry) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.changing(op.parent, || self.backend.symlink(&p, Path::new(op.target)))?;
            Ok(self.entry_for(&p, a, None))
        });
        answer!(r, reply, |e| self.give(reply, e))
    }

    fn mknod(&self, _: &Context<'_>, op: op::Mknod<'_>, reply: ReplyEntry) {
        if FileType::from_mode(op.mode) != Some(FileType::RegularFile) {
            return reply.error(Errno::EPERM); // path stores hold files, directories and links
        }
        let r = self.child(op.parent, op.name).and_then(|p| {
            let a = self.changing(op.parent, || self.backend.create(&p, op.mode))?;
            Ok(self.entry_for(&p, a, None))
        });
        answer!(r, reply, |e| self.give(reply, e))
    }

    fn create(&self, _: &Context<'_>, op: op::Create<'_>, reply: ReplyCreate) {
        let r = self.child(op.parent, op.name).and_then(|p| {
            match self.changing(op.parent, || self.backend.create(&p, op.mode)) {
                Ok(a) => Ok(self.entry_for(&p, a, None)),
                // The kernel asked because it believed the name absent; without O_EXCL an
                // existing file (made elsewhere, or behind a stale negative entry) is opened.
                Err(Errno::EEXIST) if op.flags & libc::O_EXCL == 0 => {
                    let a = self.backend.stat(&p)?;
                    if a.kind != FileType::RegularFile {
                        return Err(Errno::EEXIST);
                    }
                    Ok(self.entry_for(&p, a, None))
                }
                Err(e) => Err(e),
            }
        });
        answer!(r, reply, |e| {
            if !reply.created(&e, 0, self.open_flags()) {
                self.table.forget(e.nodeid, 1);
            }
        })
    }

    fn unlink(&self, _: &Context<'_>, op: op::Unlink<'_>, reply: ReplyEmpty) {
        answer!(self.remove(op.parent, op.name, false), reply, |_v| reply.ok())
    }

    fn rmdir(&self, _: &Context<'_>, op: op::Rmdir<'_>, reply: ReplyEmpty) {
        answer!(self.remove(op.parent, op.name, true), reply, |_v| reply.ok())
    }

    fn rename(&self, _: &Context<'_>, op: op::Rename<'_>, reply: ReplyEmpty) {
        if !op.flags.is_empty() {
            return reply.error(Errno::EINVAL); // a path store renames plainly
        }
        let r = (|| {
            let from = self.child(op.parent, op.name)?;
            let to = self.child(op.newparent, op.newname)?;
            let r = self.changing(op.parent, || self.backend.rename(&from, &to));
            self.dir_changed(op.newparent);
            r?;
            if let Some(id) = self.table.id_of(&from) {
                self.table.drop_attr(id); // ctime moved
            }
            self.table.renamed(&from, &to);
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
            Err(e) => return reply.error(e),
        };
        reply.fill(|out| self.backend.read(&path, op.offset, out))
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
        reply.error(Errno::ENOSYS)
    }

    fn fsync(&self, _: &Context<'_>, _: op::Fsync, reply: ReplyEmpty) {
        reply.ok()
    }

    fn opendir(&self, _: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        let r = self.path(op.ino).and_then(|p| self.listing(op.ino, &p));
        answer!(r, reply, |l| {
            let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
            self.open_dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, l);
            reply.opened(fh, OpenFlags::empty())
        })
    }

    fn releasedir(&self, _: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        self.open_dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&op.fh);
        reply.ok()
    }

    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        let snapshot =
            self.open_dirs.lock().unwrap_or_else(|p| p.into_inner()).get(&op.fh).cloned();
        let r = self.path(op.ino).and_then(|p| match snapshot {
            Some(l) => Ok((p, l)),
            None => self.listing(op.ino, &p).map(|l| (p, l)), // no OPENDIR seen: best effort
        });
        let (path, list) = match r {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let dots = [(op.ino, "."), (ROOT, "..")];
        for (i, (ino, name)) in dots.iter().enumerate().skip(op.offset as usize) {
            if reply.add(*ino, i as u64 + 1, FileType::Directory, name) {
                return reply.ok();
            }
        }
        let start = (op.offset as usize).saturating_sub(2);
        let mut child = path; // one buffer for every entry's path: push, look up, pop
        for (i, e) in list.iter().enumerate().skip(start) {
            // d_ino: the node id if the kernel holds the name, else a stand-in below 2^31
            // (programs using 32-bit readdir fail with EOVERFLOW on larger ones).
            child.push(&e.name);
            let ino = self.table.id_of(&child).unwrap_or_else(|| stand_in_ino(&child));
            child.pop();
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

/// A stable inode number for a name the kernel holds no node for: a hash of the path, in
/// [2^30, 2^31) so it is never 0 and fits 32-bit d_ino.
fn stand_in_ino(path: &Path) -> u64 {
    use std::hash::BuildHasher;
    (1 << 30) | (fusefs_cache::lru::FastHash.hash_one(path) & ((1 << 30) - 1))
}
