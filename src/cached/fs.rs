//! `CachedFs`: a `Backend` served as an `AsyncFilesystem` through an `InodeTable` and its
//! caches. Every request is a task: a backend that waits holds no thread, and concurrent
//! misses for the same attributes, listing or block are one backend call.

use super::backend::{Backend, BackendResult, DirEntry, Owner};
use super::flight::SingleFlight;
use super::CacheConfig;
use crate::Errno;
use fusefs_cache::inode::ROOT;
use fusefs_cache::{InodeTable, TableConfig, TableStats};
use fusefs_session::{self as session, op, AsyncFilesystem, RequestInfo};
use fusefs_session::{Entry, FileAttr, FileType, KernelConfig, Notifier, OpenFlags, RenameFlags};
use fusefs_session::{InitFlags, Statfs, XattrFlags};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type Listing = Arc<[DirEntry]>;
type R<T> = Result<T, Errno>;
/// A block read: its node, offset, size, and the cache version it was asked at (a read after
/// a write has a newer one, so it never joins a read that started before the write).
type Block = (u64, u64, u32, u64);

/// One open file: the backend's handle, and the path it was opened at (what the backend is
/// told once the name is gone).
struct OpenFile<H> {
    handle: H,
    /// The node it was opened on.
    ino: u64,
    path: PathBuf,
    /// Written through: its flush may change the file (an upload sets the time).
    wrote: std::sync::atomic::AtomicBool,
}

/// A backend answer for the kernel: the errno, with the store's reason logged (at debug for
/// the errors that are ordinary answers, at warn for failures).
fn answer<T>(what: &str, path: &Path, r: BackendResult<T>) -> R<T> {
    r.map_err(|e| {
        if e.is_answer() {
            log::debug!("{what} {:?}: {e}", path);
        } else {
            log::warn!("{what} {:?}: {e}", path);
        }
        e.errno()
    })
}

/// A [`Backend`] served over FUSE with caching. See the module docs. Mount it through
/// [`AsyncFs`](crate::AsyncFs): `Session::mount(AsyncFs::new(CachedFs::new(b, cfg))?, ..)`.
pub struct CachedFs<B: Backend> {
    backend: B,
    table: InodeTable<FileAttr, Listing>,
    cfg: CacheConfig,
    notifier: OnceLock<Notifier>,
    /// Each open directory's listing, taken at OPENDIR: READDIR offsets index this snapshot,
    /// so entries are neither skipped nor repeated however the directory changes meanwhile.
    open_dirs: Mutex<HashMap<u64, Listing>>,
    /// Open files, by the handle number the kernel was given.
    open_files: Mutex<HashMap<u64, Arc<OpenFile<B::Handle>>>>,
    next_fh: AtomicU64,
    /// Attribute misses in flight, by node id and cache version.
    stats_in_flight: SingleFlight<(u64, u64), R<FileAttr>>,
    /// Listing misses in flight, by node id and cache version.
    lists_in_flight: SingleFlight<(u64, u64), R<Listing>>,
    /// Reads in flight, by node id, offset, size and cache version (see [`Block`]).
    reads_in_flight: SingleFlight<Block, R<Arc<Vec<u8>>>>,
    /// Every node's generation: one per instance, as node ids start again with each.
    generation: u64,
}

/// What a [`CachedFs`] holds and how its caches did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedFsStats {
    /// Inodes, attribute cache and listing cache counters.
    pub table: TableStats,
    /// Backend calls saved by coalescing: requests that waited for the same stat, listing
    /// or read already in flight instead of making their own.
    pub coalesced: u64,
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
        writeln!(f, "coalesced backend calls: {}", self.coalesced)
    }
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
        CachedFs {
            backend,
            table,
            cfg,
            notifier: OnceLock::new(),
            open_dirs: Mutex::new(HashMap::new()),
            open_files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            stats_in_flight: SingleFlight::new(),
            lists_in_flight: SingleFlight::new(),
            reads_in_flight: SingleFlight::new(),
            generation: session::mount_generation(),
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

    /// Counters.
    pub fn stats(&self) -> CachedFsStats {
        let coalesced = self.stats_in_flight.joined()
            + self.lists_in_flight.joined()
            + self.reads_in_flight.joined();
        CachedFsStats { table: self.table.stats(), coalesced }
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

    /// Attributes of node `id` at `path`: cached, or asked for (once, however many ask at
    /// the same time) and cached, unless an invalidation raced the question: the answer may
    /// predate the change.
    async fn attr(&self, id: u64, path: &Path) -> R<FileAttr> {
        if let Some(a) = self.table.cached_attr(id) {
            return Ok(a);
        }
        let v = self.table.version();
        self.stats_in_flight
            .run((id, v), || async {
                let mut a = answer("stat", path, self.backend.stat(path).await)?;
                a.ino = shown_ino(a.ino, id);
                if cacheable(&a) {
                    self.table.cache_attr_if(id, a, v);
                }
                Ok(a)
            })
            .await
    }

    /// The listing of directory `id` at `path`, sorted by name: cached, or asked for and
    /// cached as `attr` does.
    async fn listing(&self, id: u64, path: &Path) -> R<Listing> {
        if let Some(l) = self.table.cached_dir(id) {
            return Ok(l);
        }
        let v = self.table.version();
        self.lists_in_flight
            .run((id, v), || async {
                let mut l = answer("list", path, self.backend.list(path).await)?;
                l.sort_by(|a, b| a.name.cmp(&b.name));
                let l: Listing = l.into();
                self.table.cache_dir_if(id, Arc::clone(&l), v);
                Ok(l)
            })
            .await
    }

    /// Reply to a new or found node at `path` with attributes `a` (one lookup taken). `v` is
    /// the invalidation version the attributes were asked for at; `None` when they come from
    /// the operation that just made the node, and are current.
    fn entry_for(&self, path: &Path, mut a: FileAttr, v: Option<u64>) -> Entry {
        let id = self.table.remember(path);
        a.ino = shown_ino(a.ino, id);
        match v {
            _ if !cacheable(&a) => {}
            Some(v) => self.table.cache_attr_if(id, a, v),
            None => self.table.cache_attr(id, a),
        }
        Entry {
            nodeid: id,
            // The kernel made the root's inode itself, with generation 0.
            generation: if id == ROOT { 0 } else { self.generation },
            attr: a,
            entry_ttl: self.cfg.entry_timeout,
            attr_ttl: self.attr_timeout(&a),
        }
    }

    /// Directory `id`'s contents changed (or may have: also called when an operation failed
    /// halfway): its listing and attributes (mtime) are stale.
    fn dir_changed(&self, id: u64) {
        self.table.drop_dir(id);
        self.table.drop_attr(id);
    }

    /// Directory `ino`'s entries after cookie `offset` (".", "..", then the listing taken at
    /// OPENDIR), at most `room` (at least one), each with the attributes the listing gave.
    async fn dir_page(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        room: usize,
    ) -> R<Vec<(session::DirEntry, Option<FileAttr>)>> {
        let snapshot = self.open_dirs.lock().unwrap_or_else(|p| p.into_inner()).get(&fh).cloned();
        let path = self.path(ino)?;
        let list = match snapshot {
            Some(l) => l,
            None => self.listing(ino, &path).await?, // no OPENDIR seen: best effort
        };
        let dir = |ino: u64, offset: u64, name: &str| {
            let d = session::DirEntry { ino, offset, kind: FileType::Directory, name: name.into() };
            (d, None)
        };
        let mut out: Vec<_> =
            [dir(ino, 1, "."), dir(ROOT, 2, "..")].into_iter().skip(offset as usize).collect();
        let start = (offset as usize).saturating_sub(2);
        let mut child = path; // one buffer for every entry's path: push, look up, pop
        for (i, e) in list.iter().enumerate().skip(start).take(room.max(1)) {
            // d_ino: the store's inode number if it has them (then st_ino is the same), else
            // the node id if the kernel holds the name, else a stand-in below 2^31 (programs
            // using 32-bit readdir fail with EOVERFLOW on larger ones).
            let ino = match e.ino {
                0 => {
                    child.push(&e.name);
                    let ino = self.table.id_of(&child).unwrap_or_else(|| stand_in_ino(&child));
                    child.pop();
                    ino
                }
                ino => ino,
            };
            let d =
                session::DirEntry { ino, offset: i as u64 + 3, kind: e.kind, name: e.name.clone() };
            out.push((d, e.attr));
        }
        Ok(out)
    }

    /// Node `id` at `path` changed (size, times, mode): its attributes are stale, and so is
    /// its directory's listing, which may carry them.
    fn attr_changed(&self, id: u64, path: &Path) {
        self.table.drop_attr(id);
        if let Some(pid) = path.parent().and_then(|pp| self.table.id_of(pp)) {
            self.table.drop_dir(pid);
        }
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

    /// A node made in `parent` at `p` by `make`: whatever the outcome, the parent's listing
    /// and attributes are dropped; on success, its entry.
    async fn made(
        &self,
        parent: u64,
        p: &Path,
        make: impl std::future::Future<Output = BackendResult<FileAttr>>,
    ) -> R<Entry> {
        let r = answer("create", p, make.await);
        self.dir_changed(parent);
        Ok(self.entry_for(p, r?, None))
    }

    /// Who a node made in `parent` by `req` belongs to: the caller, with the parent's group
    /// if the parent is setgid (as local filesystems do).
    async fn owner(&self, req: &RequestInfo, parent: u64) -> R<Owner> {
        let pp = self.path(parent)?;
        let pa = self.attr(parent, &pp).await?;
        let setgid = u32::from(pa.perm) & libc::S_ISGID != 0;
        Ok(Owner { uid: req.uid, gid: if setgid { pa.gid } else { req.gid } })
    }

    /// Open file `fh`, and the path to tell the backend: the node's own, or the one it was
    /// opened at if the name is gone.
    fn open_file(&self, ino: u64, fh: u64) -> R<(Arc<OpenFile<B::Handle>>, PathBuf)> {
        let f = self.open_files.lock().unwrap_or_else(|p| p.into_inner()).get(&fh).cloned();
        let f = f.ok_or(Errno::EBADF)?;
        let path = self.table.path(ino).unwrap_or_else(|| f.path.clone());
        Ok((f, path))
    }

    /// Keep `handle`, opened on node `ino`, as a new file handle number.
    fn opened(&self, handle: B::Handle, ino: u64, path: &Path) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let f = Arc::new(OpenFile { handle, ino, path: path.to_path_buf(), wrote: false.into() });
        self.open_files.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, f);
        fh
    }

    /// UNLINK (`dir` false) and RMDIR (`dir` true).
    async fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> R<()> {
        let p = self.child(parent, name)?;
        let r = answer("remove", &p, self.backend.remove(&p, dir).await);
        self.dir_changed(parent);
        r?;
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

    fn attr_ttl(&self, r: R<FileAttr>) -> R<(FileAttr, Duration)> {
        r.map(|a| (a, self.attr_timeout(&a)))
    }

    /// How long the kernel may keep `a`: not at all for a file with several names, which are
    /// nodes of their own here (nodes are paths), so a change through one name must not
    /// leave the others' attributes stale.
    fn attr_timeout(&self, a: &FileAttr) -> Duration {
        if cacheable(a) {
            self.cfg.attr_timeout
        } else {
            Duration::ZERO
        }
    }
}

impl<B: Backend> AsyncFilesystem for CachedFs<B> {
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        // LOOKUP of "." and ".." are answered: file handles work while the node is known.
        config.capabilities |= InitFlags::EXPORT_SUPPORT;
        // Kept for `invalidate`, which drops the kernel's copies too.
        let _ = self.notifier.set(config.notifier().clone());
        config.max_readahead = self.cfg.max_readahead;
        config.max_write = self.cfg.max_write;
        config.max_pages = (self.cfg.max_write / 4096).clamp(1, u32::from(u16::MAX)) as u16;
        Ok(())
    }

    fn forget(&self, ino: u64, nlookup: u64) {
        self.table.forget(ino, nlookup)
    }

    async fn lookup(&self, _: RequestInfo, parent: u64, name: OsString) -> R<Entry> {
        // "." and ".." come only from the kernel's export operations (a path walk resolves
        // them itself): "." of the node a file handle names, ".." of a directory being
        // reconnected. Answered while the node is known (see the module docs).
        let dots = match name.as_bytes() {
            b"." => Some(self.path(parent)?),
            b".." => Some(self.path(parent)?.parent().map(Path::to_path_buf).unwrap_or_default()),
            _ => None,
        };
        let path = match &dots {
            Some(p) => p.clone(),
            None => self.child(parent, &name)?,
        };
        // A cached listing (sorted) answers without asking the backend: "no" if the name is
        // not in it, the attributes if the listing carried them (a change to a listed file
        // drops its directory's listing, so they are current).
        let v = self.table.version();
        let listed = self.table.cached_dir(parent).filter(|_| dots.is_none()).map(|l| {
            let i = l.binary_search_by(|e| e.name.as_os_str().cmp(&name));
            i.ok().map(|i| l[i].attr)
        });
        let r = match listed {
            Some(None) => Err(Errno::ENOENT),
            Some(Some(Some(a))) => Ok((a, Some(v))),
            _ => {
                let a = match self.table.id_of(&path) {
                    // A node the kernel holds: its attributes through the cache and coalescing.
                    Some(id) => self.attr(id, &path).await,
                    None => answer("stat", &path, self.backend.stat(&path).await),
                };
                a.map(|a| (a, Some(v)))
            }
        };
        match r {
            Ok((a, v)) => Ok(self.entry_for(&path, a, v)),
            // A negative entry the kernel may cache: a LOOKUP answer with node id 0.
            Err(Errno::ENOENT) if !self.cfg.negative_timeout.is_zero() => {
                Ok(Entry::negative(self.cfg.negative_timeout))
            }
            Err(e) => Err(e),
        }
    }

    async fn getattr(&self, _: RequestInfo, ino: u64, fh: Option<u64>) -> R<(FileAttr, Duration)> {
        let r = match (self.table.path(ino), fh) {
            (Some(p), _) => self.attr(ino, &p).await,
            // fstat(2) of a file whose name is gone: the backend may still know it.
            (None, Some(fh)) => {
                let (f, p) = self.open_file(ino, fh)?;
                let a = answer("stat", &p, self.backend.stat_open(&f.handle, &p).await);
                a.map(|a| FileAttr { ino: shown_ino(a.ino, ino), ..a })
            }
            // fstat(2) sends no handle: any open file of the node will do.
            (None, None) => {
                let f = {
                    let files = self.open_files.lock().unwrap_or_else(|p| p.into_inner());
                    files.values().find(|f| f.ino == ino).cloned()
                };
                match f {
                    Some(f) => {
                        let a = self.backend.stat_open(&f.handle, &f.path).await;
                        answer("stat", &f.path, a)
                            .map(|a| FileAttr { ino: shown_ino(a.ino, ino), ..a })
                    }
                    None => Err(Errno::ESTALE),
                }
            }
        };
        self.attr_ttl(r)
    }

    async fn setattr(&self, _: RequestInfo, ino: u64, set: op::SetAttr) -> R<(FileAttr, Duration)> {
        let file = match set.fh {
            Some(fh) => Some(self.open_file(ino, fh)?),
            None => None,
        };
        let p = match &file {
            Some((_, p)) => p.clone(),
            None => self.path(ino)?,
        };
        let h = file.as_ref().map(|(f, _)| &f.handle);
        let r = answer("setattr", &p, self.backend.set_attr(&p, h, &set).await);
        self.attr_changed(ino, &p);
        let r = r.map(|a| {
            let a = FileAttr { ino: shown_ino(a.ino, ino), ..a };
            if cacheable(&a) {
                self.table.cache_attr(ino, a);
            }
            a
        });
        self.attr_ttl(r)
    }

    async fn readlink(&self, _: RequestInfo, ino: u64) -> R<Vec<u8>> {
        let p = self.path(ino)?;
        Ok(answer("readlink", &p, self.backend.readlink(&p).await)?.into_os_string().into_vec())
    }

    async fn mkdir(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        _: u32,
    ) -> R<Entry> {
        let p = self.child(parent, &name)?;
        let owner = self.owner(&req, parent).await?;
        self.made(parent, &p, self.backend.mkdir(&p, mode, owner)).await
    }

    async fn symlink(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        target: OsString,
    ) -> R<Entry> {
        let p = self.child(parent, &name)?;
        let owner = self.owner(&req, parent).await?;
        self.made(parent, &p, self.backend.symlink(&p, Path::new(&target), owner)).await
    }

    async fn mknod(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        rdev: u32,
        _: u32,
    ) -> R<Entry> {
        let p = self.child(parent, &name)?;
        let owner = self.owner(&req, parent).await?;
        if FileType::from_mode(mode) == Some(FileType::RegularFile) {
            return self.made(parent, &p, self.backend.create(&p, mode, owner)).await;
        }
        self.made(parent, &p, self.backend.mknod(&p, mode, rdev, owner)).await
    }

    async fn create(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        _: u32,
        flags: i32,
    ) -> R<(Entry, u64, OpenFlags)> {
        let p = self.child(parent, &name)?;
        let owner = self.owner(&req, parent).await?;
        let made = self.backend.create(&p, mode, owner).await;
        self.dir_changed(parent);
        let a = match made {
            Ok(a) => a,
            // The kernel asked because it believed the name absent; without O_EXCL an
            // existing file (made elsewhere, or behind a stale negative entry) is opened.
            Err(e) if e.errno() == Errno::EEXIST && flags & libc::O_EXCL == 0 => {
                let a = answer("stat", &p, self.backend.stat(&p).await)?;
                if a.kind != FileType::RegularFile {
                    return Err(Errno::EEXIST);
                }
                a
            }
            Err(e) => return answer("create", &p, Err(e)),
        };
        let handle = answer("open", &p, self.backend.open(&p, flags, Some(&a)).await)?;
        let e = self.entry_for(&p, a, None);
        Ok((e, self.opened(handle, e.nodeid, &p), self.open_flags()))
    }

    async fn link(&self, _: RequestInfo, ino: u64, newparent: u64, newname: OsString) -> R<Entry> {
        let from = self.path(ino)?;
        let to = self.child(newparent, &newname)?;
        let r = answer("link", &to, self.backend.link(&from, &to).await);
        self.dir_changed(newparent);
        self.attr_changed(ino, &from); // its link count and ctime moved
                                       // The kernel keeps the old name's attributes (its LINK only touches ctime in its
                                       // cache, and the new name is another node here): tell it they are stale. Attributes
                                       // only (offset -1), which takes no lock the LINK in progress holds.
        if let Some(n) = self.notifier.get() {
            let _ = n.inval_inode(ino, -1, 0);
        }
        // The new name is a node of its own here (nodes are paths); st_ino is the store's.
        Ok(self.entry_for(&to, r?, None))
    }

    async fn unlink(&self, _: RequestInfo, parent: u64, name: OsString) -> R<()> {
        self.remove(parent, &name, false).await
    }

    async fn rmdir(&self, _: RequestInfo, parent: u64, name: OsString) -> R<()> {
        self.remove(parent, &name, true).await
    }

    async fn rename(
        &self,
        _: RequestInfo,
        parent: u64,
        name: OsString,
        newparent: u64,
        newname: OsString,
        flags: RenameFlags,
    ) -> R<()> {
        if !flags.is_empty() {
            return Err(Errno::EINVAL); // a path store renames plainly
        }
        let from = self.child(parent, &name)?;
        let to = self.child(newparent, &newname)?;
        let r = answer("rename", &from, self.backend.rename(&from, &to).await);
        self.dir_changed(parent);
        self.dir_changed(newparent);
        r?;
        if let Some(id) = self.table.id_of(&from) {
            self.table.drop_attr(id); // ctime moved
        }
        self.table.renamed(&from, &to);
        Ok(())
    }

    async fn open(&self, _: RequestInfo, ino: u64, flags: i32) -> R<(u64, OpenFlags)> {
        let p = self.path(ino)?;
        // Only what is cached: a backend that wants the size and has none asks itself.
        let a = self.table.cached_attr(ino);
        let handle = answer("open", &p, self.backend.open(&p, flags, a.as_ref()).await)?;
        Ok((self.opened(handle, ino, &p), self.open_flags()))
    }

    async fn read(&self, _: RequestInfo, ino: u64, fh: u64, offset: u64, size: u32) -> R<Vec<u8>> {
        let (f, path) = self.open_file(ino, fh)?;
        // Readers of the same block at the same time share one backend read.
        let v = self.table.version();
        let data = self
            .reads_in_flight
            .run((ino, offset, size, v), || async {
                let r = self.backend.read(&f.handle, &path, offset, size).await;
                answer("read", &path, r).map(Arc::new)
            })
            .await?;
        Ok(Arc::try_unwrap(data).unwrap_or_else(|shared| shared.as_ref().clone()))
    }

    async fn write(&self, _: RequestInfo, ino: u64, fh: u64, offset: u64, data: Vec<u8>) -> R<u32> {
        let (f, p) = self.open_file(ino, fh)?;
        f.wrote.store(true, Ordering::Relaxed);
        let n = answer("write", &p, self.backend.write(&f.handle, &p, offset, data).await);
        self.attr_changed(ino, &p); // size and mtime moved (or may have)
        Ok(n? as u32)
    }

    async fn flush(&self, _: RequestInfo, ino: u64, fh: u64, _: u64) -> R<()> {
        let (f, p) = self.open_file(ino, fh)?;
        let r = answer("flush", &p, self.backend.flush(&f.handle, &p).await);
        if f.wrote.load(Ordering::Relaxed) {
            self.attr_changed(ino, &p); // an upload may have set the time
        }
        r
    }

    async fn fsync(&self, _: RequestInfo, ino: u64, fh: u64, datasync: bool) -> R<()> {
        let (f, p) = self.open_file(ino, fh)?;
        answer("fsync", &p, self.backend.fsync(&f.handle, &p, datasync).await)
    }

    async fn release(&self, _: RequestInfo, ino: u64, fh: u64) -> R<()> {
        let (f, p) = self.open_file(ino, fh)?;
        self.open_files.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
        // Nobody hears a RELEASE error: the log does.
        if let Err(e) = self.backend.release(&f.handle, &p).await {
            log::warn!("release {:?}: {e}", p);
        }
        Ok(())
    }

    async fn opendir(&self, _: RequestInfo, ino: u64, _: i32) -> R<(u64, OpenFlags)> {
        let p = self.path(ino)?;
        let l = self.listing(ino, &p).await?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open_dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, l);
        Ok((fh, OpenFlags::empty()))
    }

    async fn releasedir(&self, _: RequestInfo, _: u64, fh: u64) -> R<()> {
        self.open_dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
        Ok(())
    }

    async fn readdir(
        &self,
        _: RequestInfo,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> R<Vec<session::DirEntry>> {
        // No more than fits: each record takes at least 32 bytes.
        let page = self.dir_page(ino, fh, offset, size as usize / 32).await?;
        Ok(page.into_iter().map(|(d, _)| d).collect())
    }

    async fn readdirplus(
        &self,
        _: RequestInfo,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> R<Vec<session::DirEntryPlus>> {
        // Each record takes at least 152 bytes (fuse_direntplus and a short name).
        let v = self.table.version();
        let page = self.dir_page(ino, fh, offset, size as usize / 152).await?;
        let mut child = self.path(ino)?;
        let out = page.into_iter().map(|(dirent, attr)| {
            // Names the listing gave attributes for go out with their entries: `ls -l`
            // then needs no LOOKUP at all (a refused entry is forgotten by AsyncFs).
            let entry = attr.map(|a| {
                child.push(&dirent.name);
                let e = self.entry_for(&child, a, Some(v));
                child.pop();
                e
            });
            session::DirEntryPlus { dirent, entry }
        });
        Ok(out.collect())
    }

    async fn statfs(&self, _: RequestInfo, _: u64) -> R<Statfs> {
        answer("statfs", Path::new(""), self.backend.statfs().await)
    }

    async fn getxattr(&self, _: RequestInfo, ino: u64, name: OsString) -> R<Vec<u8>> {
        let p = self.path(ino)?;
        answer("getxattr", &p, self.backend.getxattr(&p, &name).await)
    }

    async fn listxattr(&self, _: RequestInfo, ino: u64) -> R<Vec<u8>> {
        let p = self.path(ino)?;
        let mut v = Vec::new();
        for n in answer("listxattr", &p, self.backend.listxattr(&p).await)? {
            v.extend_from_slice(n.as_bytes());
            v.push(0);
        }
        Ok(v)
    }

    async fn setxattr(
        &self,
        _: RequestInfo,
        ino: u64,
        name: OsString,
        value: Vec<u8>,
        flags: XattrFlags,
    ) -> R<()> {
        let p = self.path(ino)?;
        let r = self.backend.setxattr(&p, &name, &value, flags.bits() as i32).await;
        answer("setxattr", &p, r)
    }

    async fn removexattr(&self, _: RequestInfo, ino: u64, name: OsString) -> R<()> {
        let p = self.path(ino)?;
        answer("removexattr", &p, self.backend.removexattr(&p, &name).await)
    }
}

/// Whether attributes may be cached: not those of a file with several names (hard links),
/// each a node of its own here, which a change through another name would leave stale.
fn cacheable(a: &FileAttr) -> bool {
    a.kind == FileType::Directory || a.nlink <= 1
}

/// What `st_ino` shows: the store's inode number, or the node id for a store without.
fn shown_ino(store: u64, node: u64) -> u64 {
    if store != 0 {
        store
    } else {
        node
    }
}

/// A stable inode number for a name the kernel holds no node for: a hash of the path, in
/// [2^30, 2^31) so it is never 0 and fits 32-bit d_ino.
fn stand_in_ino(path: &Path) -> u64 {
    use std::hash::BuildHasher;
    (1 << 30) | (fusefs_cache::lru::FastHash.hash_one(path) & ((1 << 30) - 1))
}
