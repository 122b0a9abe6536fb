//! The async API: a filesystem whose methods are `async` and return their answer, each
//! request served as a task on a tokio runtime, so a backend that waits costs its latency,
//! not a transport thread.
//!
//! Implement [`AsyncFilesystem`] and mount it through [`AsyncFs`], which is a
//! [`Filesystem`]: each request's arguments are copied out of the request buffer (names and
//! WRITE data become owned values), a task is spawned, and the transport reads the next
//! request at once. How many wait at a time is bounded by `Config::max_in_flight`, not by
//! threads.
//!
//! ```no_run
//! use fusefs_session::{AsyncFilesystem, AsyncFs, Config, Entry, Errno, FileAttr, FileType};
//! use fusefs_session::{RequestInfo, Session, ROOT_ID};
//! use std::ffi::OsString;
//! use std::time::{Duration, SystemTime};
//!
//! struct Remote;
//! impl AsyncFilesystem for Remote {
//!     async fn lookup(&self, _: RequestInfo, parent: u64, name: OsString) -> Result<Entry, Errno> {
//!         tokio::time::sleep(Duration::from_millis(5)).await; // a round trip
//!         if parent == ROOT_ID && name == "data" {
//!             let attr = FileAttr::new(2, FileType::RegularFile, 0o444, SystemTime::now());
//!             Ok(Entry::new(attr, Duration::from_secs(30)))
//!         } else {
//!             Err(Errno::ENOENT)
//!         }
//!     }
//! }
//!
//! let session = Session::mount(AsyncFs::new(Remote)?, "/mnt/remote", Config::default())?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Cancellation: when the kernel sends INTERRUPT for a request that only reads (lookup,
//! getattr, read, readdir, xattr reads, statfs, access, lseek, statx, readlink), the request's
//! future is dropped at its next `.await` and the request answered EINTR; code after that
//! `.await` does not run. Requests that change something (writes, creates, renames, setattr,
//! open, release, fsync...) run to their end whatever the kernel says: dropping one halfway
//! could leave the change made and its bookkeeping not.
//!
//! Lookup counts: an entry returned (by `lookup`, `mknod`, `mkdir`, `symlink`, `link`,
//! `create`, or a `readdirplus` entry with one) that the kernel does not receive (its caller
//! was interrupted, or the listing was full) is handed back through
//! [`forget`](AsyncFilesystem::forget)`(nodeid, 1)`, as if the kernel had forgotten it; a
//! `create` whose answer was refused also gets its `release`. Count every entry you return.
//!
//! Shutdown: if the runtime stops while requests are in flight (the session ends, or a runtime
//! passed in with [`AsyncFs::with_runtime`] shuts down), their tasks are dropped and each
//! request is answered EIO, so no caller hangs.
//!
//! Opcodes without a method here (locks, ioctl, poll, bmap, DAX mappings, TMPFILE, SYNCFS)
//! answer ENOSYS; use the sync [`Filesystem`] for those.

use crate::context::Context;
use crate::filesystem::Filesystem;
use crate::init::KernelConfig;
use crate::reply::*;
use crate::types::{Entry, FileAttr, FileType, Statfs};
use fusefs_proto::abi::Statx;
use fusefs_proto::dirent;
use fusefs_proto::request::{self as op, SetAttr};
use fusefs_proto::{Errno, OpenFlags, RenameFlags, XattrFlags};
use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Who asked: the request's unique id, the caller's uid, gid and pid, and its supplementary
/// groups when the kernel sent them (CREATE_SUPP_GROUP).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The request's unique id.
    pub unique: u64,
    /// The caller's filesystem uid.
    pub uid: u32,
    /// The caller's filesystem gid.
    pub gid: u32,
    /// The caller's process id (0 for requests the kernel makes itself).
    pub pid: u32,
    /// Supplementary groups, if the request carried them.
    pub groups: Vec<u32>,
}

impl RequestInfo {
    fn of(ctx: &Context<'_>) -> RequestInfo {
        RequestInfo {
            unique: ctx.unique(),
            uid: ctx.uid(),
            gid: ctx.gid(),
            pid: ctx.pid(),
            groups: ctx.extensions().supp_groups().map(|g| g.iter().collect()).unwrap_or_default(),
        }
    }
}

/// One READDIR entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode number shown (`d_ino`).
    pub ino: u64,
    /// The cookie the next listing continues after (non-zero, stable).
    pub offset: u64,
    /// Its type.
    pub kind: FileType,
    /// Its name.
    pub name: OsString,
}

/// One READDIRPLUS entry: a [`DirEntry`] and, if given, its entry (which, once the kernel
/// takes it, adds one to the node's lookup count). Without one, the kernel looks the name up
/// when it needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryPlus {
    /// Name, cookie, type, `d_ino`.
    pub dirent: DirEntry,
    /// The entry, as LOOKUP would answer it.
    pub entry: Option<Entry>,
}

/// A filesystem with `async` methods that return their answer; served through [`AsyncFs`].
/// Each method has a default, as [`Filesystem`]'s: ENOSYS for most; OPEN/OPENDIR/RELEASE/
/// RELEASEDIR succeed with handle 0, STATFS gives placeholder figures, READDIRPLUS lists
/// through `readdir` without attributes. The contracts are the sync trait's (see
/// [`Filesystem`]); the module docs say what differs (cancellation, refused entries).
#[allow(unused_variables)]
pub trait AsyncFilesystem: Send + Sync + 'static {
    /// INIT: adjust what to ask the kernel for (called once, before anything else).
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        Ok(())
    }
    /// The session is ending: called once.
    fn destroy(&self) {}
    /// The kernel dropped `nlookup` references to `ino` (also called for entries it never
    /// received: see the module docs).
    fn forget(&self, ino: u64, nlookup: u64) {}
    /// Look up `name` in directory `parent`. An [`Entry::negative`] says "no such name" and
    /// lets the kernel remember it for its TTL (ENOENT does not).
    fn lookup(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
    ) -> impl Future<Output = Result<Entry, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Attributes of `ino` (through open file `fh` if set), and how long the kernel may
    /// cache them.
    fn getattr(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: Option<u64>,
    ) -> impl Future<Output = Result<(FileAttr, Duration), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Change attributes; all of them afterwards, and their TTL.
    fn setattr(
        &self,
        req: RequestInfo,
        ino: u64,
        set: SetAttr,
    ) -> impl Future<Output = Result<(FileAttr, Duration), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// A symlink's target.
    fn readlink(
        &self,
        req: RequestInfo,
        ino: u64,
    ) -> impl Future<Output = Result<Vec<u8>, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Create symlink `name` in `parent` pointing at `target`.
    fn symlink(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        target: OsString,
    ) -> impl Future<Output = Result<Entry, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Create file node `name` in `parent`.
    fn mknod(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> impl Future<Output = Result<Entry, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Create directory `name` in `parent`.
    fn mkdir(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        umask: u32,
    ) -> impl Future<Output = Result<Entry, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Remove name `name` from `parent`.
    fn unlink(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Remove empty directory `name` from `parent`.
    fn rmdir(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Rename `name` in `parent` to `newname` in `newparent` (`flags`: RENAME2's).
    fn rename(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        newparent: u64,
        newname: OsString,
        flags: RenameFlags,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// A new name `newname` in `newparent` for `ino`.
    fn link(
        &self,
        req: RequestInfo,
        ino: u64,
        newparent: u64,
        newname: OsString,
    ) -> impl Future<Output = Result<Entry, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Open `ino` with open(2) `flags`: a handle and `FOPEN_*` flags. One RELEASE follows.
    fn open(
        &self,
        req: RequestInfo,
        ino: u64,
        flags: i32,
    ) -> impl Future<Output = Result<(u64, OpenFlags), Errno>> + Send {
        async { Ok((0, OpenFlags::empty())) }
    }
    /// Up to `size` bytes at `offset`; fewer mean end of file (unless direct I/O).
    fn read(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> impl Future<Output = Result<Vec<u8>, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Write `data` at `offset`; how many bytes were written.
    fn write(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        offset: u64,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<u32, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// A descriptor of open file `fh` was closed.
    fn flush(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        lock_owner: u64,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// The last descriptor of open file `fh` is gone (once per successful open or create).
    fn release(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Ok(()) }
    }
    /// Make `fh`'s data (and unless `datasync`, its metadata) durable.
    fn fsync(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        datasync: bool,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Open directory `ino`.
    fn opendir(
        &self,
        req: RequestInfo,
        ino: u64,
        flags: i32,
    ) -> impl Future<Output = Result<(u64, OpenFlags), Errno>> + Send {
        async { Ok((0, OpenFlags::empty())) }
    }
    /// Directory entries after cookie `offset` (0: from the start), as many as you like:
    /// those that do not fit `size` bytes are asked for again by the next READDIR. Empty:
    /// the end.
    fn readdir(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> impl Future<Output = Result<Vec<DirEntry>, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// As `readdir`, with entries. Default: `readdir`'s entries without attributes.
    fn readdirplus(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> impl Future<Output = Result<Vec<DirEntryPlus>, Errno>> + Send {
        async move {
            let list = self.readdir(req, ino, fh, offset, size).await?;
            Ok(list.into_iter().map(|dirent| DirEntryPlus { dirent, entry: None }).collect())
        }
    }
    /// The last descriptor of open directory `fh` is gone.
    fn releasedir(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Ok(()) }
    }
    /// Make directory `fh` durable.
    fn fsyncdir(
        &self,
        req: RequestInfo,
        ino: u64,
        fh: u64,
        datasync: bool,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Filesystem statistics.
    fn statfs(
        &self,
        req: RequestInfo,
        ino: u64,
    ) -> impl Future<Output = Result<Statfs, Errno>> + Send {
        async { Ok(Statfs::default()) }
    }
    /// Set extended attribute `name` of `ino`.
    fn setxattr(
        &self,
        req: RequestInfo,
        ino: u64,
        name: OsString,
        value: Vec<u8>,
        flags: XattrFlags,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// The value of extended attribute `name` of `ino` (the adapter answers the size, the
    /// value or ERANGE as the caller's buffer asks).
    fn getxattr(
        &self,
        req: RequestInfo,
        ino: u64,
        name: OsString,
    ) -> impl Future<Output = Result<Vec<u8>, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// The extended attribute names of `ino`, each followed by a NUL.
    fn listxattr(
        &self,
        req: RequestInfo,
        ino: u64,
    ) -> impl Future<Output = Result<Vec<u8>, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Remove extended attribute `name` of `ino`.
    fn removexattr(
        &self,
        req: RequestInfo,
        ino: u64,
        name: OsString,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Check access for `mask` (only without `default_permissions`).
    fn access(
        &self,
        req: RequestInfo,
        ino: u64,
        mask: i32,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Create and open `name` in `parent`: the entry, a handle and `FOPEN_*` flags.
    fn create(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> impl Future<Output = Result<(Entry, u64, OpenFlags), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Allocate, punch or zero space (`op.mode`: `FALLOC_FL_*`).
    fn fallocate(
        &self,
        req: RequestInfo,
        op: op::Fallocate,
    ) -> impl Future<Output = Result<(), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// SEEK_DATA / SEEK_HOLE: the offset found.
    fn lseek(
        &self,
        req: RequestInfo,
        op: op::Lseek,
    ) -> impl Future<Output = Result<u64, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Copy a range between two open files; the bytes copied.
    fn copy_file_range(
        &self,
        req: RequestInfo,
        op: op::CopyFileRange,
    ) -> impl Future<Output = Result<u64, Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
    /// Attributes for statx(2), and their TTL.
    fn statx(
        &self,
        req: RequestInfo,
        op: op::StatxReq,
    ) -> impl Future<Output = Result<(Statx, Duration), Errno>> + Send {
        async { Err(Errno::ENOSYS) }
    }
}

/// Serves an [`AsyncFilesystem`] as a [`Filesystem`]: a task per request on a tokio
/// runtime, made here or passed in.
pub struct AsyncFs<F: AsyncFilesystem> {
    fs: Arc<F>,
    rt: tokio::runtime::Handle,
    /// The runtime, when this adapter made it (shut down when the adapter is dropped).
    own: Option<tokio::runtime::Runtime>,
    /// Requests being served, by unique: sending cancels one (INTERRUPT).
    running: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
}

impl<F: AsyncFilesystem> AsyncFs<F> {
    /// Serve `fs` on a runtime of its own: a multi-threaded tokio runtime with a worker per
    /// CPU (threads named `fusefs-async`), timers and I/O enabled. Its threads start here:
    /// make [`TerminationSignals`](crate::TerminationSignals) before, so they inherit the
    /// blocked signals (otherwise a SIGTERM landing on one of them kills the process without
    /// unmounting).
    pub fn new(fs: F) -> io::Result<AsyncFs<F>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("fusefs-async")
            .enable_all()
            .build()?;
        let mut a = Self::with_runtime(fs, rt.handle().clone());
        a.own = Some(rt);
        Ok(a)
    }

    /// Serve `fs` on the runtime behind `handle` (yours: the adapter does not shut it down).
    /// The runtime must be driven while the session serves: a multi-threaded one, or a
    /// current-thread one that some thread keeps in `block_on`; otherwise requests wait.
    pub fn with_runtime(fs: F, handle: tokio::runtime::Handle) -> AsyncFs<F> {
        AsyncFs {
            fs: Arc::new(fs),
            rt: handle,
            own: None,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The filesystem.
    pub fn inner(&self) -> &Arc<F> {
        &self.fs
    }

    /// The runtime the requests run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// Spawn `work` for request `ctx`, answered by `answer`. If `cancel` says so, an
    /// INTERRUPT (before or during) drops `work` and answers EINTR; requests that change
    /// something are not cancelled, since dropping one halfway could leave the change made
    /// and its bookkeeping not (the kernel allows a filesystem to ignore an INTERRUPT).
    fn spawn<T, W, Work, A, R>(
        &self,
        ctx: &Context<'_>,
        cancel: Cancel,
        work: W,
        answer: A,
        reply: R,
    ) where
        W: FnOnce(Arc<F>, RequestInfo) -> Work,
        Work: Future<Output = Result<T, Errno>> + Send + 'static,
        A: FnOnce(&Arc<F>, R, Result<T, Errno>) + Send + 'static,
        R: Send + 'static,
    {
        let fs = Arc::clone(&self.fs);
        let future = work(Arc::clone(&fs), RequestInfo::of(ctx));
        if cancel == Cancel::Never {
            self.rt.spawn(async move {
                let done = future.await;
                answer(&fs, reply, done);
            });
            return;
        }
        let unique = ctx.unique();
        let (tx, cancelled) = oneshot::channel();
        lock(&self.running).insert(unique, tx);
        // Leaves `running` when the task ends, however it ends (answered, panicked, or dropped
        // by a runtime that is shutting down).
        let registered = Registered { running: Arc::clone(&self.running), unique };
        // Registered first, then checked: an INTERRUPT that came before is seen here, one
        // that comes after finds the entry (`Filesystem::interrupt`).
        let early = ctx.is_interrupted();
        self.rt.spawn(async move {
            let _registered = registered;
            let done = if early {
                Err(Errno::EINTR)
            } else {
                tokio::select! {
                    // An answer that is ready wins over a cancellation that is too.
                    biased;
                    r = future => r,
                    _ = cancelled => Err(Errno::EINTR),
                }
            };
            answer(&fs, reply, done);
        });
    }
}

/// Whether an INTERRUPT cancels a request (see `AsyncFs::spawn`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// It only reads: dropping it halfway leaves nothing behind.
    OnInterrupt,
    /// It changes something: it runs to its end.
    Never,
}

/// A cancellable request's entry in `AsyncFs::running`, removed when dropped.
struct Registered {
    running: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
    unique: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.unique);
    }
}

impl<F: AsyncFilesystem> Drop for AsyncFs<F> {
    fn drop(&mut self) {
        // Not `drop(runtime)`: that blocks, and panics inside another runtime's context.
        if let Some(rt) = self.own.take() {
            rt.shutdown_background();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The work of a request for `spawn`: a future owning the filesystem's `Arc` and the
/// request's arguments, calling one method.
macro_rules! call {
    (|$fs:ident, $req:ident| $body:expr) => {
        move |$fs: Arc<F>, $req: RequestInfo| async move { $body.await }
    };
}

/// Answer an entry; if the kernel never got it, the lookup it counted is forgotten.
fn give_entry<F: AsyncFilesystem>(fs: &Arc<F>, reply: ReplyEntry, r: Result<Entry, Errno>) {
    match r {
        Ok(e) => {
            if !reply.entry(&e) && e.nodeid != 0 {
                fs.forget(e.nodeid, 1);
            }
        }
        Err(e) => reply.error(e),
    }
}

fn empty<F>(_: &Arc<F>, reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn attr<F>(_: &Arc<F>, reply: ReplyAttr, r: Result<(FileAttr, Duration), Errno>) {
    match r {
        Ok((a, ttl)) => reply.attr(&a, ttl),
        Err(e) => reply.error(e),
    }
}

/// Answer OPEN or OPENDIR; if the kernel never got the answer, no RELEASE(DIR) will come,
/// so `undo` gives the handle back to the filesystem (as a refused CREATE does).
fn opened<F: AsyncFilesystem>(
    fs: &Arc<F>,
    reply: ReplyOpen,
    r: Result<(u64, OpenFlags), Errno>,
    undo: impl FnOnce(Arc<F>, RequestInfo, u64) -> BoxedUnit + Send + 'static,
) {
    match r {
        Ok((fh, flags)) => {
            if !reply.opened(fh, flags) {
                let req = RequestInfo { unique: 0, uid: 0, gid: 0, pid: 0, groups: Vec::new() };
                tokio::spawn(undo(Arc::clone(fs), req, fh));
            }
        }
        Err(e) => reply.error(e),
    }
}

/// A release to run when an open's answer never reached the kernel.
type BoxedUnit = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn data<F>(_: &Arc<F>, reply: ReplyData, r: Result<Vec<u8>, Errno>) {
    match r {
        Ok(d) => reply.data(&d),
        Err(e) => reply.error(e),
    }
}

fn xattr<F>(_: &Arc<F>, reply: ReplyXattr, r: Result<Vec<u8>, Errno>) {
    match r {
        Ok(v) => reply.value(&v),
        Err(e) => reply.error(e),
    }
}

impl<F: AsyncFilesystem> Filesystem for AsyncFs<F> {
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        self.fs.init(config)
    }
    /// Tasks may still be running (their replies go nowhere once the session ended).
    fn destroy(&self) {
        self.fs.destroy()
    }
    fn interrupt(&self, unique: u64) {
        if let Some(cancel) = lock(&self.running).remove(&unique) {
            let _ = cancel.send(());
        }
    }
    fn forget(&self, _: &Context<'_>, op: op::Forget) {
        self.fs.forget(op.ino, op.nlookup)
    }
    fn lookup(&self, ctx: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        let (parent, name) = (op.parent, op.name.to_owned());
        self.spawn(
            ctx,
            Cancel::OnInterrupt,
            call!(|fs, req| fs.lookup(req, parent, name)),
            give_entry,
            reply,
        )
    }
    fn getattr(&self, ctx: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        self.spawn(
            ctx,
            Cancel::OnInterrupt,
            call!(|fs, req| fs.getattr(req, op.ino, op.fh)),
            attr,
            reply,
        )
    }
    fn setattr(&self, ctx: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.setattr(req, op.ino, op.attr)),
            attr,
            reply,
        )
    }
    fn readlink(&self, ctx: &Context<'_>, op: op::Readlink, reply: ReplyData) {
        self.spawn(ctx, Cancel::OnInterrupt, call!(|fs, req| fs.readlink(req, op.ino)), data, reply)
    }
    fn symlink(&self, ctx: &Context<'_>, op: op::Symlink<'_>, reply: ReplyEntry) {
        let (parent, name, target) = (op.parent, op.name.to_owned(), op.target.to_owned());
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.symlink(req, parent, name, target)),
            give_entry,
            reply,
        )
    }
    fn mknod(&self, ctx: &Context<'_>, op: op::Mknod<'_>, reply: ReplyEntry) {
        let (parent, name, mode, rdev, umask) =
            (op.parent, op.name.to_owned(), op.mode, op.rdev, op.umask);
        let work = call!(|fs, req| fs.mknod(req, parent, name, mode, rdev, umask));
        self.spawn(ctx, Cancel::Never, work, give_entry, reply)
    }
    fn mkdir(&self, ctx: &Context<'_>, op: op::Mkdir<'_>, reply: ReplyEntry) {
        let (parent, name, mode, umask) = (op.parent, op.name.to_owned(), op.mode, op.umask);
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.mkdir(req, parent, name, mode, umask)),
            give_entry,
            reply,
        )
    }
    fn unlink(&self, ctx: &Context<'_>, op: op::Unlink<'_>, reply: ReplyEmpty) {
        let (parent, name) = (op.parent, op.name.to_owned());
        self.spawn(ctx, Cancel::Never, call!(|fs, req| fs.unlink(req, parent, name)), empty, reply)
    }
    fn rmdir(&self, ctx: &Context<'_>, op: op::Rmdir<'_>, reply: ReplyEmpty) {
        let (parent, name) = (op.parent, op.name.to_owned());
        self.spawn(ctx, Cancel::Never, call!(|fs, req| fs.rmdir(req, parent, name)), empty, reply)
    }
    fn rename(&self, ctx: &Context<'_>, op: op::Rename<'_>, reply: ReplyEmpty) {
        let (p, n, np, nn, flags) =
            (op.parent, op.name.to_owned(), op.newparent, op.newname.to_owned(), op.flags);
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.rename(req, p, n, np, nn, flags)),
            empty,
            reply,
        )
    }
    fn link(&self, ctx: &Context<'_>, op: op::Link<'_>, reply: ReplyEntry) {
        let (ino, np, nn) = (op.ino, op.newparent, op.newname.to_owned());
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.link(req, ino, np, nn)),
            give_entry,
            reply,
        )
    }
    fn open(&self, ctx: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.open(req, op.ino, op.flags)),
            move |fs: &Arc<F>, reply, r| {
                opened(fs, reply, r, move |fs, req, fh| {
                    Box::pin(async move {
                        let _ = fs.release(req, op.ino, fh).await;
                    })
                })
            },
            reply,
        )
    }
    fn read(&self, ctx: &Context<'_>, op: op::Read, reply: ReplyData) {
        let work = call!(|fs, req| fs.read(req, op.ino, op.fh, op.offset, op.size));
        self.spawn(ctx, Cancel::OnInterrupt, work, data, reply)
    }
    fn write(&self, ctx: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        let (ino, fh, offset, bytes) = (op.ino, op.fh, op.offset, op.data.to_vec());
        let work = call!(|fs, req| fs.write(req, ino, fh, offset, bytes));
        let answer = |_: &Arc<F>, reply: ReplyWrite, r: Result<u32, Errno>| match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        };
        self.spawn(ctx, Cancel::Never, work, answer, reply)
    }
    fn flush(&self, ctx: &Context<'_>, op: op::Flush, reply: ReplyEmpty) {
        let work = call!(|fs, req| fs.flush(req, op.ino, op.fh, op.lock_owner));
        self.spawn(ctx, Cancel::Never, work, empty, reply)
    }
    fn release(&self, ctx: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.release(req, op.ino, op.fh)),
            empty,
            reply,
        )
    }
    fn fsync(&self, ctx: &Context<'_>, op: op::Fsync, reply: ReplyEmpty) {
        let work = call!(|fs, req| fs.fsync(req, op.ino, op.fh, op.datasync));
        self.spawn(ctx, Cancel::Never, work, empty, reply)
    }
    fn opendir(&self, ctx: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.opendir(req, op.ino, op.flags)),
            move |fs: &Arc<F>, reply, r| {
                opened(fs, reply, r, move |fs, req, fh| {
                    Box::pin(async move {
                        let _ = fs.releasedir(req, op.ino, fh).await;
                    })
                })
            },
            reply,
        )
    }
    fn readdir(&self, ctx: &Context<'_>, op: op::Readdir, reply: ReplyDirectory) {
        let work = call!(|fs, req| fs.readdir(req, op.ino, op.fh, op.offset, op.size));
        let answer =
            |_: &Arc<F>, mut reply: ReplyDirectory, r: Result<Vec<DirEntry>, Errno>| match r {
                Ok(list) => {
                    for d in list {
                        if reply.add(d.ino, d.offset, d.kind, &d.name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(e),
            };
        self.spawn(ctx, Cancel::OnInterrupt, work, answer, reply)
    }
    fn readdirplus(&self, ctx: &Context<'_>, op: op::Readdir, reply: ReplyDirectoryPlus) {
        let work = call!(|fs, req| fs.readdirplus(req, op.ino, op.fh, op.offset, op.size));
        self.spawn(ctx, Cancel::OnInterrupt, work, answer_plus, reply)
    }
    fn releasedir(&self, ctx: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.releasedir(req, op.ino, op.fh)),
            empty,
            reply,
        )
    }
    fn fsyncdir(&self, ctx: &Context<'_>, op: op::Fsync, reply: ReplyEmpty) {
        let work = call!(|fs, req| fs.fsyncdir(req, op.ino, op.fh, op.datasync));
        self.spawn(ctx, Cancel::Never, work, empty, reply)
    }
    fn statfs(&self, ctx: &Context<'_>, op: op::Statfs, reply: ReplyStatfs) {
        let answer = |_: &Arc<F>, reply: ReplyStatfs, r: Result<Statfs, Errno>| match r {
            Ok(s) => reply.statfs(&s),
            Err(e) => reply.error(e),
        };
        self.spawn(ctx, Cancel::OnInterrupt, call!(|fs, req| fs.statfs(req, op.ino)), answer, reply)
    }
    fn setxattr(&self, ctx: &Context<'_>, op: op::Setxattr<'_>, reply: ReplyEmpty) {
        let (ino, name, value, flags) = (op.ino, op.name.to_owned(), op.value.to_vec(), op.flags);
        let work = call!(|fs, req| fs.setxattr(req, ino, name, value, flags));
        self.spawn(ctx, Cancel::Never, work, empty, reply)
    }
    fn getxattr(&self, ctx: &Context<'_>, op: op::Getxattr<'_>, reply: ReplyXattr) {
        let (ino, name) = (op.ino, op.name.to_owned());
        self.spawn(
            ctx,
            Cancel::OnInterrupt,
            call!(|fs, req| fs.getxattr(req, ino, name)),
            xattr,
            reply,
        )
    }
    fn listxattr(&self, ctx: &Context<'_>, op: op::Listxattr, reply: ReplyXattr) {
        self.spawn(
            ctx,
            Cancel::OnInterrupt,
            call!(|fs, req| fs.listxattr(req, op.ino)),
            xattr,
            reply,
        )
    }
    fn removexattr(&self, ctx: &Context<'_>, op: op::Removexattr<'_>, reply: ReplyEmpty) {
        let (ino, name) = (op.ino, op.name.to_owned());
        self.spawn(
            ctx,
            Cancel::Never,
            call!(|fs, req| fs.removexattr(req, ino, name)),
            empty,
            reply,
        )
    }
    fn access(&self, ctx: &Context<'_>, op: op::Access, reply: ReplyEmpty) {
        self.spawn(
            ctx,
            Cancel::OnInterrupt,
            call!(|fs, req| fs.access(req, op.ino, op.mask)),
            empty,
            reply,
        )
    }
    fn create(&self, ctx: &Context<'_>, op: op::Create<'_>, reply: ReplyCreate) {
        let (parent, name, mode, umask, flags) =
            (op.parent, op.name.to_owned(), op.mode, op.umask, op.flags);
        let work = call!(|fs, req| fs.create(req, parent, name, mode, umask, flags));
        let answer = |fs: &Arc<F>,
                      reply: ReplyCreate,
                      r: Result<(Entry, u64, OpenFlags), Errno>| {
            match r {
                Ok((e, fh, flags)) => {
                    if !reply.created(&e, fh, flags) {
                        // Never received: no RELEASE and no FORGET will come for these.
                        // Released first: the forget may free the node.
                        let fs = Arc::clone(fs);
                        let req =
                            RequestInfo { unique: 0, uid: 0, gid: 0, pid: 0, groups: Vec::new() };
                        tokio::spawn(async move {
                            let _ = fs.release(req, e.nodeid, fh).await;
                            fs.forget(e.nodeid, 1);
                        });
                    }
                }
                Err(e) => reply.error(e),
            }
        };
        self.spawn(ctx, Cancel::Never, work, answer, reply)
    }
    fn fallocate(&self, ctx: &Context<'_>, op: op::Fallocate, reply: ReplyEmpty) {
        self.spawn(ctx, Cancel::Never, call!(|fs, req| fs.fallocate(req, op)), empty, reply)
    }
    fn lseek(&self, ctx: &Context<'_>, op: op::Lseek, reply: ReplyLseek) {
        let answer = |_: &Arc<F>, reply: ReplyLseek, r: Result<u64, Errno>| match r {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(e),
        };
        self.spawn(ctx, Cancel::OnInterrupt, call!(|fs, req| fs.lseek(req, op)), answer, reply)
    }
    fn copy_file_range(&self, ctx: &Context<'_>, op: op::CopyFileRange, reply: ReplyCopy) {
        let answer = |_: &Arc<F>, reply: ReplyCopy, r: Result<u64, Errno>| match r {
            Ok(n) => reply.copied(n),
            Err(e) => reply.error(e),
        };
        self.spawn(ctx, Cancel::Never, call!(|fs, req| fs.copy_file_range(req, op)), answer, reply)
    }
    fn statx(&self, ctx: &Context<'_>, op: op::StatxReq, reply: ReplyStatx) {
        let answer = |_: &Arc<F>, reply: ReplyStatx, r: Result<(Statx, Duration), Errno>| match r {
            Ok((s, ttl)) => reply.statx(&s, ttl),
            Err(e) => reply.error(e),
        };
        self.spawn(ctx, Cancel::OnInterrupt, call!(|fs, req| fs.statx(req, op)), answer, reply)
    }
}

/// Answer READDIRPLUS: entries until full; every entry that carried a lookup and did not
/// reach the kernel is forgotten. That includes entries sent without their attributes: "."
/// and ".." (the kernel never links them), names the kernel would reject (skipped), and
/// entries with node id 0.
fn answer_plus<F: AsyncFilesystem>(
    fs: &Arc<F>,
    mut reply: ReplyDirectoryPlus,
    r: Result<Vec<DirEntryPlus>, Errno>,
) {
    let list = match r {
        Ok(l) => l,
        Err(e) => return reply.error(e),
    };
    // Whether each entry's lookup went out with it.
    let mut linked = vec![false; list.len()];
    for (i, d) in list.iter().enumerate() {
        let name = d.dirent.name.as_bytes();
        let linkable = name != b"." && name != b".." && dirent::valid_name(name);
        let full = match &d.entry {
            Some(e) if linkable && e.nodeid != 0 => {
                linked[i] = true;
                reply.add(e, d.dirent.offset, &d.dirent.name)
            }
            _ => reply.add_name(d.dirent.ino, d.dirent.offset, d.dirent.kind, &d.dirent.name),
        };
        if full {
            linked[i] = false;
            break;
        }
    }
    let delivered = reply.ok();
    for (d, linked) in list.iter().zip(linked) {
        if let Some(e) = &d.entry {
            if e.nodeid != 0 && !(linked && delivered) {
                fs.forget(e.nodeid, 1);
            }
        }
    }
}
