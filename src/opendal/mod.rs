//! [`OpenDalBackend`]: one [`Backend`] for every store Apache OpenDAL speaks (S3 and its
//! kin, WebDAV, SFTP, GCS, Azure Blob, a local directory, memory), served with
//! [`CachedFs`](crate::cached::CachedFs). Feature `opendal`.
//!
//! ```no_run
//! use fusefs::cached::{CacheConfig, CachedFs};
//! use fusefs::opendal::{OpenDalBackend, OpenDalConfig};
//!
//! let options = [("bucket", "b"), ("endpoint", "http://127.0.0.1:9000"), ("region", "us-east-1")];
//! let options = options.map(|(k, v)| (k.to_string(), v.to_string()));
//! // The backend connects on a runtime, and the mount serves on the same one.
//! let runtime = tokio::runtime::Runtime::new()?;
//! let backend = runtime.block_on(OpenDalBackend::connect("s3", options, OpenDalConfig::default()))?;
//! let session = CachedFs::builder(backend)
//!     .cache(CacheConfig::remote())
//!     .runtime(runtime.handle().clone())
//!     .mount("/mnt/bucket", fusefs::Config::default())?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How a filesystem maps onto a store:
//! - **Directories** are key prefixes: `a/b/` exists if a marker object `a/b/` does (mkdir
//!   makes one) or any key starts with it. A LOOKUP asks for the object and the prefix at
//!   once (one round trip). A listing is the store's list call, paged by OpenDAL, and
//!   carries each object's size and time, so `ls -l` needs nothing more.
//! - **Reads** are ranged GETs of what the kernel asks. A reader that goes on in sequence
//!   gets GETs of [`PrefetchConfig::chunk`] bytes issued up to [`PrefetchConfig::window`]
//!   ahead (growing with the reader), dropped when it seeks away, within
//!   [`PrefetchConfig::total`] for all readers. An open file from before a change made
//!   through the mount asks the size again at its next read.
//!   A small object read from its start has the next small objects of its directory
//!   fetched with it ([`SiblingConfig`]): tools go through a directory in name order.
//! - **Writes** go to a staging file on local disk (not memory), one per path, shared by
//!   its opens; a file that existed is fetched into it at the first write. FLUSH (each
//!   close), FSYNC and the last RELEASE upload it, streamed in parts of
//!   [`OpenDalConfig::part_size`] (multipart where the store has it; a store without,
//!   WebDAV's PUT for one, takes the file in one request, held in memory while it is
//!   sent). An upload that fails
//!   is the error of that close(2) or fsync(2), and the bytes stay staged for the next
//!   one; if the last release cannot upload either, they are kept in
//!   [`OpenDalConfig::staging_dir`] and the log says where.
//! - **Requests** sent over HTTP are counted by method, with the most in flight at once
//!   ([`OpenDalBackend::store_requests`]): what a store charges for.
//! - **Rename** of a file is the store's where it has one (WebDAV MOVE, SFTP rename), else
//!   a copy and a delete. An empty directory is made anew and the old one removed; a
//!   directory with contents gets EXDEV (mv(1) then copies it file by file), on every
//!   store, since OpenDAL renames files only.
//! - **Metadata** the store does not keep: every file shows [`Presentation`]'s owner and
//!   modes, and mtime is the store's. chmod and chown to other values get EPERM; setting
//!   times is accepted and not kept. No symlinks, hard links or special files (EPERM), no
//!   extended attributes (ENOTSUP).

mod key;
mod prefetch;
mod requests;
mod siblings;
mod staging;

pub use key::Presentation;
pub use prefetch::PrefetchConfig;
pub use requests::{MethodCount, StoreRequests};
pub use siblings::SiblingConfig;

use crate::cached::{Backend, BackendError, BackendResult, DirEntry, Owner};
use crate::Errno;
use ::opendal::{EntryMode, ErrorKind, Operator};
use bytes::Bytes;
use fusefs_session::op::SetAttr;
use fusefs_session::{FileAttr, FileType, Statfs};
use futures_util::future::Either;
use futures_util::TryStreamExt;
use key::{dir_key, file_key, mtime, store_error};
use prefetch::{Plan, Prefetch};
use siblings::Siblings;
use staging::Staged;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How the store is served.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenDalConfig {
    /// Owner and modes shown for every file and directory.
    pub presentation: Presentation,
    /// Read-ahead for sequential readers.
    pub prefetch: PrefetchConfig,
    /// Read-ahead across the small files of a directory.
    pub siblings: SiblingConfig,
    /// Bytes per uploaded part (S3 wants at least 5 MiB but for the last).
    pub part_size: usize,
    /// Parts of one file uploaded at once. At 1 (the default) an upload holds two parts in
    /// memory, whatever the file's size (on a store with multipart writes): the one being
    /// sent and the next, read from the staging file meanwhile. More sends faster on a
    /// link with latency but holds more: OpenDAL 0.57's multipart writer keeps each
    /// finished part until it is next called, and runs a new one in its place, so with 2
    /// a 1 GiB upload held about six parts (BENCHMARKS.md).
    pub upload_concurrency: usize,
    /// Where staging files are made (unnamed files, gone when closed), and where the bytes
    /// of a failed last upload are kept.
    pub staging_dir: PathBuf,
    /// Refuse every change with EROFS.
    pub read_only: bool,
    /// Times a failed store call is tried again (with backoff from 1 s, doubling) before
    /// its error is the caller's. Only [`OpenDalBackend::connect`] reads it.
    pub retries: usize,
}

impl Default for OpenDalConfig {
    /// Files 0644 and directories 0755 owned by the daemon's user, the default prefetch,
    /// 8 MiB parts one at a time, staging in the system's temporary directory, 3 retries.
    fn default() -> Self {
        OpenDalConfig {
            presentation: Presentation {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                file_mode: 0o644,
                dir_mode: 0o755,
            },
            prefetch: PrefetchConfig::default(),
            siblings: SiblingConfig::default(),
            part_size: 8 << 20,
            upload_concurrency: 1,
            staging_dir: std::env::temp_dir(),
            read_only: false,
            retries: 3,
        }
    }
}

/// A store reached through an OpenDAL [`Operator`], as a [`Backend`]. See the module docs.
pub struct OpenDalBackend {
    op: Operator,
    cfg: OpenDalConfig,
    /// Paths with pending writes: the staging file is their content until it is uploaded
    /// and its last writer is gone.
    staged: Mutex<HashMap<PathBuf, Arc<Staged>>>,
    /// Paths this mount has just made empty (create, truncate to 0): their first write
    /// needs no download. Emptied when it grows past a bound.
    fresh: Mutex<HashMap<PathBuf, std::time::Instant>>,
    /// The store renames (else copy and delete).
    can_rename: bool,
    /// The store creates "only if absent" in one call.
    can_create_exclusive: bool,
    /// The store takes an object in several writes (multipart); else in one.
    can_write_parts: bool,
    /// Bytes prefetched for all open files (at most `PrefetchConfig::total`).
    prefetched: Arc<std::sync::atomic::AtomicU64>,
    /// Small files fetched ahead of readers going through a directory.
    siblings: Siblings,
    /// Paths whose object this mount changed, and when (a number from `changed_at`): an
    /// open file from before re-asks the size at its next read.
    changes: Mutex<HashMap<PathBuf, u64>>,
    /// The open files by their current name (for `OpenFile::gone`).
    opens: Mutex<HashMap<PathBuf, Vec<std::sync::Weak<std::sync::atomic::AtomicBool>>>>,
    /// The counter behind `changes`.
    changed_at: std::sync::atomic::AtomicU64,
    /// What a path not in `changes` reads as: the counter when `changes` was last emptied
    /// (every open file from before then asks once).
    cleared_at: std::sync::atomic::AtomicU64,
    /// The HTTP requests sent to the store.
    requests: Arc<requests::Counters>,
}

/// An open file of an [`OpenDalBackend`].
pub struct OpenFile {
    writable: bool,
    /// The object's size as last known: reads are clamped to it (a GET of a range past the
    /// end is an error to OpenDAL).
    size: std::sync::atomic::AtomicU64,
    /// The store's change of the path that `size` is as of (see `OpenDalBackend::changes`).
    seen: std::sync::atomic::AtomicU64,
    /// The staging this open writes through, from its first write on.
    staged: Mutex<Option<Arc<Staged>>>,
    prefetch: Mutex<Prefetch>,
    /// Its name was removed or renamed over since it was opened: it must not write through
    /// whatever has that name now.
    gone: Arc<std::sync::atomic::AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_only() -> BackendError {
    BackendError::new(Errno::EROFS, "mounted read-only")
}

impl OpenDalBackend {
    /// Serve `op` as `cfg` says.
    pub fn new(op: Operator, cfg: OpenDalConfig) -> OpenDalBackend {
        let cap = op.info().full_capability();
        let requests = requests::Counters::install(&op);
        OpenDalBackend {
            requests,
            can_rename: cap.rename,
            can_create_exclusive: cap.write_with_if_not_exists,
            can_write_parts: cap.write_can_multi,
            op,
            cfg,
            staged: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            prefetched: Arc::default(),
            siblings: Siblings::default(),
            changes: Mutex::new(HashMap::new()),
            opens: Mutex::new(HashMap::new()),
            changed_at: std::sync::atomic::AtomicU64::new(0),
            cleared_at: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Build an operator for `scheme` ("s3", "webdav", "sftp", "fs", "memory", ...) with
    /// OpenDAL's `options` for it, with retries ([`OpenDalConfig::retries`]) and timeouts, and check
    /// that the store answers: a wrong endpoint, bucket or credential is an error here, in
    /// one line, not at the first request. Credentials may also come from the environment
    /// variables the service reads (`AWS_ACCESS_KEY_ID`, ...).
    pub async fn connect(
        scheme: &str,
        options: impl IntoIterator<Item = (String, String)>,
        cfg: OpenDalConfig,
    ) -> io::Result<OpenDalBackend> {
        ::opendal::init_default_registry();
        let op = Operator::via_iter(scheme, options).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{scheme}: {}", e.message()))
        })?;
        // Checked before retries are added: a store that is not there says so at once.
        let checked = ::opendal::layers::TimeoutLayer::new()
            .with_timeout(std::time::Duration::from_secs(10))
            .with_io_timeout(std::time::Duration::from_secs(10));
        let first = async {
            // One page of one key: `limit` is a page size, so the lister is dropped after it.
            let mut l = op.clone().layer(checked).lister_with("/").limit(1).await?;
            l.try_next().await.map(|_| ())
        };
        if let Err(e) = first.await {
            let kind = match e.kind() {
                ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
                ErrorKind::NotFound => io::ErrorKind::NotFound,
                _ => io::ErrorKind::Other,
            };
            return Err(io::Error::new(kind, format!("{scheme}: the store refused: {e}")));
        }
        // No LoggingLayer: it logs every "no such key" (each negative LOOKUP) as a warning;
        // CachedFs logs each failure once, with the store's reason.
        // 10 s per I/O call (OpenDAL's default) fails every upload of a part, or of a whole
        // file to WebDAV, that takes longer: a slow uplink would never get a file through.
        let timeouts = ::opendal::layers::TimeoutLayer::new()
            .with_timeout(std::time::Duration::from_secs(600))
            .with_io_timeout(std::time::Duration::from_secs(120));
        let op = op.layer(timeouts);
        let op = match cfg.retries {
            0 => op,
            n => op.layer(::opendal::layers::RetryLayer::new().with_max_times(n).with_jitter()),
        };
        Ok(OpenDalBackend::new(op, cfg))
    }

    /// The operator.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    /// The configuration.
    pub fn config(&self) -> &OpenDalConfig {
        &self.cfg
    }

    /// How many small files were served from a fetch ahead (their directory read in order,
    /// [`SiblingConfig`]) rather than by a GET of their own.
    pub fn read_ahead_hits(&self) -> u64 {
        self.siblings.used()
    }

    /// Ranged GETs made so far to serve reads (fetched ahead or not), by every
    /// `OpenDalBackend` of this process: what a store charges for, and what the prefetch
    /// ([`PrefetchConfig`]) saves.
    pub fn ranged_gets(&self) -> u64 {
        prefetch::RANGED_GETS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The HTTP requests sent to the store so far, by method, with the most in flight at
    /// once: a multipart upload is a POST, a PUT per part of [`OpenDalConfig::part_size`]
    /// (up to [`OpenDalConfig::upload_concurrency`] at once) and a POST.
    pub fn store_requests(&self) -> StoreRequests {
        self.requests.snapshot()
    }

    /// Paths whose writes are not uploaded yet.
    pub fn pending_uploads(&self) -> usize {
        lock(&self.staged).values().filter(|s| s.is_dirty()).count()
    }

    fn writable(&self) -> BackendResult<()> {
        if self.cfg.read_only {
            return Err(read_only());
        }
        Ok(())
    }

    fn staged(&self, path: &Path) -> Option<Arc<Staged>> {
        lock(&self.staged).get(path).cloned()
    }

    fn mark_fresh(&self, path: &Path) {
        let mut fresh = lock(&self.fresh);
        if fresh.len() >= 10_000 {
            fresh.clear(); // only a saving: a cleared path is fetched at its first write
        }
        fresh.insert(path.to_path_buf(), std::time::Instant::now());
    }

    /// Whether `path` was made empty here in the last seconds (and forget it): if so, its
    /// first write needs no download. Briefly only: another client may write it later.
    fn take_fresh(&self, path: &Path) -> bool {
        let made = lock(&self.fresh).remove(path);
        made.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(5))
    }

    /// The staging for `path`, made (with the store's content, unless the path is fresh)
    /// if there is none.
    async fn stage(&self, path: &Path) -> BackendResult<Arc<Staged>> {
        if let Some(s) = self.staged(path) {
            return Ok(s);
        }
        let fresh = self.take_fresh(path);
        self.siblings.forget(path);
        let s = Staged::empty(&self.cfg.staging_dir, false)?;
        if !fresh {
            let key = file_key(path)?;
            // The reader is lazy: "no such object" comes from the stream, which an object
            // removed behind the mount (or not yet uploaded) gives: start empty then.
            let fetched: BackendResult<()> = async {
                let r = self.op.reader_with(&key).chunk(self.cfg.part_size).await;
                let mut stream =
                    r.map_err(store_error)?.into_bytes_stream(..).await.map_err(store_error)?;
                while let Some(b) = stream.try_next().await.map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => BackendError::new(Errno::ENOENT, e),
                    _ => BackendError::new(Errno::EIO, e),
                })? {
                    s.fill(&b)?;
                }
                Ok(())
            }
            .await;
            match fetched {
                Err(e) if e.errno() == Errno::ENOENT => {}
                r => r?,
            }
            s.filled();
        }
        // Someone may have staged it while we fetched: theirs wins, it may hold writes.
        let mut staged = lock(&self.staged);
        Ok(Arc::clone(staged.entry(path.to_path_buf()).or_insert_with(|| Arc::new(s))))
    }

    /// The staging `h` writes through, made at its first use.
    async fn handle_stage(&self, h: &OpenFile, path: &Path) -> BackendResult<Arc<Staged>> {
        if !h.writable {
            return Err(staging::not_writable());
        }
        if let Some(s) = lock(&h.staged).clone() {
            return Ok(s);
        }
        let s = if h.gone.load(SeqCst) {
            // Its name is gone: a staging of its own, never uploaded (the object it had
            // is gone from the store, so it starts empty).
            let s = Arc::new(Staged::empty(&self.cfg.staging_dir, false)?);
            s.unlink();
            s
        } else {
            self.stage(path).await?
        };
        let mut mine = lock(&h.staged);
        if let Some(s) = mine.clone() {
            return Ok(s); // a concurrent write of the same open got there first
        }
        s.add_writer();
        *mine = Some(Arc::clone(&s));
        Ok(s)
    }

    /// The open files named `path` lost that name (unlink, or a rename over it).
    fn names_gone(&self, path: &Path) {
        for w in lock(&self.opens).remove(path).into_iter().flatten() {
            if let Some(g) = w.upgrade() {
                g.store(true, SeqCst);
            }
        }
    }

    /// When `path`'s object last changed through this mount (`cleared_at`: not lately).
    fn change_of(&self, path: &Path) -> u64 {
        let changes = lock(&self.changes);
        changes.get(path).copied().unwrap_or_else(|| self.cleared_at.load(SeqCst))
    }

    /// `path`'s object changed through this mount: what was fetched ahead of it is stale.
    fn changed(&self, path: &Path) {
        self.siblings.forget(path);
        let mut changes = lock(&self.changes);
        let at = self.changed_at.fetch_add(1, SeqCst) + 1;
        if changes.len() >= 100_000 {
            changes.clear(); // every open file asks its size once more
            self.cleared_at.store(at, SeqCst);
        }
        changes.insert(path.to_path_buf(), at);
    }

    /// Upload `s` to `path` if it holds writes not uploaded, streamed in parts.
    async fn upload(&self, s: &Staged, path: &Path) -> BackendResult<()> {
        let _one = s.upload.lock().await;
        if s.is_unlinked() || !s.take_dirty() {
            return Ok(());
        }
        let r = self.upload_now(s, path).await;
        match &r {
            Ok(()) => self.changed(path),
            Err(_) => s.set_dirty(), // still to be sent: the next flush or release tries again
        }
        r
    }

    async fn upload_now(&self, s: &Staged, path: &Path) -> BackendResult<()> {
        let key = file_key(path)?;
        let part = self.cfg.part_size.max(1);
        if !self.can_write_parts {
            // One request with the whole file (WebDAV's PUT): it is in memory meanwhile.
            let mut parts = Vec::new();
            let mut at = 0;
            loop {
                let mut buf = vec![0; part];
                let n = s.read_at(&mut buf, at)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                parts.push(Bytes::from(buf));
                at += n as u64;
            }
            let body = ::opendal::Buffer::from(parts);
            return self.op.write(&key, body).await.map(|_| ()).map_err(store_error);
        }
        let mut w = self
            .op
            .writer_with(&key)
            .concurrent(self.cfg.upload_concurrency.max(1))
            .await
            .map_err(store_error)?;
        let mut at = 0;
        let sent: BackendResult<()> = async {
            loop {
                let mut buf = vec![0; part];
                let n = s.read_at(&mut buf, at)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                w.write(Bytes::from(buf)).await.map_err(store_error)?;
                at += n as u64;
            }
        }
        .await;
        if let Err(e) = sent {
            let _ = w.abort().await;
            return Err(e);
        }
        w.close().await.map_err(store_error)?;
        Ok(())
    }

    /// Attributes of the object or the prefix at `path`, asked for at once.
    async fn stat_store(&self, path: &Path) -> BackendResult<FileAttr> {
        let pres = &self.cfg.presentation;
        if path.as_os_str().is_empty() {
            return Ok(pres.dir(UNIX_EPOCH));
        }
        let (fk, dk) = (file_key(path)?, dir_key(path)?);
        // Both questions at once, one round trip. A directory answers at once (and drops
        // the other question, with any retries it was making); a file waits for the
        // directory's answer, since where both exist the directory wins, as in listings.
        let file = std::pin::pin!(async {
            self.op.stat(&fk).await.map(|m| match m.mode() {
                EntryMode::DIR => pres.dir(mtime(&m)),
                _ => pres.file(m.content_length(), mtime(&m)),
            })
        });
        let dir = std::pin::pin!(async { self.op.stat(&dk).await.map(|m| pres.dir(mtime(&m))) });
        let (first, second) = match futures_util::future::select(file, dir).await {
            Either::Right((Ok(a), _)) => return Ok(a),
            Either::Left((Ok(a), dir)) => return Ok(dir.await.unwrap_or(a)),
            Either::Left((Err(e), other)) => (e, other.await),
            Either::Right((Err(e), other)) => (e, other.await),
        };
        match second {
            Ok(a) => Ok(a),
            // A failure that is not "no such key" is the answer: the store could not say.
            Err(e) if e.kind() != ErrorKind::NotFound => Err(store_error(e)),
            Err(_) => Err(store_error(first)),
        }
    }

    /// Up to `size` bytes at `offset` of `h` from the store, clamped to its known size;
    /// served from prefetched chunks for a sequential reader.
    async fn read_store(
        &self,
        h: &OpenFile,
        path: &Path,
        key: &str,
        offset: u64,
        size: u32,
    ) -> BackendResult<Vec<u8>> {
        // The object changed through the mount since this file learned its size (another
        // open wrote and uploaded it): ask again, and drop what was fetched ahead.
        let change = self.change_of(path);
        if change != h.seen.load(SeqCst) {
            let a = self.stat_store(path).await?;
            h.size.store(a.size, SeqCst);
            h.seen.store(change, SeqCst);
            *lock(&h.prefetch) = Prefetch::default();
        }
        let len = h.size.load(SeqCst);
        let size = len.saturating_sub(offset).min(u64::from(size)) as u32;
        if size == 0 {
            return Ok(Vec::new());
        }
        let small = &self.cfg.siblings;
        if offset == 0 && len <= small.max {
            self.siblings.read_from_start(small, &self.op, path);
        }
        // Only small objects are fetched ahead: a large one's READs skip the lookup.
        let ahead = if len <= small.max { self.siblings.take(small, path, len) } else { None };
        if let Some(f) = ahead {
            if let Ok(b) = f.await {
                let end = (offset + u64::from(size)).min(b.len() as u64);
                if end == len {
                    self.siblings.forget(path); // read to its end: done with
                }
                let (from, to) = (offset.min(end) as usize, end as usize);
                return Ok(b.slice(from..to).to_vec());
            } // a failed fetch ahead: ask again below
        }
        let plan = lock(&h.prefetch).plan(
            &self.cfg.prefetch,
            &self.prefetched,
            &self.op,
            key,
            len,
            offset,
            size,
        );
        match plan {
            Plan::Chunks(chunks) => prefetch::serve(chunks, offset, size).await,
            Plan::Direct => {
                Ok(prefetch::get(&self.op, key, offset, u64::from(size)).await?.to_vec())
            }
        }
    }

    /// Whether the prefix `dk` holds anything but its own marker.
    async fn has_children(&self, dk: &str) -> BackendResult<bool> {
        // The first two keys at most (the marker may be one): `limit` is only a page size.
        let mut l = self.op.lister_with(dk).limit(2).await.map_err(store_error)?;
        for _ in 0..2 {
            match l.try_next().await.map_err(store_error)? {
                Some(e) if e.path() != dk => return Ok(true),
                Some(_) => {}
                None => return Ok(false),
            }
        }
        Ok(false)
    }
}

impl Backend for OpenDalBackend {
    type Handle = OpenFile;

    async fn stat(&self, path: &Path) -> BackendResult<FileAttr> {
        if let Some(s) = self.staged(path) {
            return Ok(self.cfg.presentation.file(s.len(), s.mtime()));
        }
        self.stat_store(path).await
    }

    async fn list(&self, path: &Path) -> BackendResult<Vec<DirEntry>> {
        let dk = dir_key(path)?;
        let pres = &self.cfg.presentation;
        let mut lister = self.op.lister(&dk).await.map_err(store_error)?;
        let mut out: Vec<DirEntry> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(e) = lister.try_next().await.map_err(store_error)? {
            let (key, meta) = e.into_parts();
            if key == dk || (dk == "/" && key.is_empty()) {
                continue; // the directory's own marker
            }
            let dir = key.ends_with('/');
            let name = key.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
            // An object and a prefix of one name: the directory wins (its contents must be
            // reachable), as in other S3 filesystems.
            if name.is_empty() || !seen.insert(name.to_owned()) {
                if dir {
                    if let Some(d) = out.iter_mut().find(|d| d.name == name) {
                        *d = DirEntry::new(name, FileType::Directory);
                    }
                }
                continue;
            }
            let kind = if dir { FileType::Directory } else { FileType::RegularFile };
            let mut entry = DirEntry::new(name, kind);
            if let Some(a) = pres.of_meta(&meta) {
                if (a.kind == FileType::Directory) == dir {
                    entry = entry.with_attr(a);
                }
            }
            out.push(entry);
        }
        // Writes not uploaded yet show their size now.
        for d in &mut out {
            if let Some(s) = self.staged(&path.join(&d.name)) {
                d.attr = Some(pres.file(s.len(), s.mtime()));
            }
        }
        let files = out.iter().filter(|d| d.kind == FileType::RegularFile);
        let sized = files.filter_map(|d| Some((d.name.clone(), d.attr?.size)));
        self.siblings.listed(&self.cfg.siblings, path, sized.collect());
        Ok(out)
    }

    async fn open(
        &self,
        path: &Path,
        flags: i32,
        attr: Option<&FileAttr>,
    ) -> BackendResult<OpenFile> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writable {
            self.writable()?;
        }
        // The size reads are clamped to: what CachedFs holds, else the store's (a staged
        // file's own, if it has pending writes).
        let size = match attr {
            Some(a) => a.size,
            None => self.stat(path).await?.size,
        };
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut opens = lock(&self.opens);
        let named = opens.entry(path.to_path_buf()).or_default();
        named.retain(|w| w.strong_count() > 0);
        named.push(Arc::downgrade(&gone));
        drop(opens);
        Ok(OpenFile {
            writable,
            size: size.into(),
            seen: self.change_of(path).into(),
            staged: Mutex::new(None),
            prefetch: Mutex::default(),
            gone,
        })
    }

    async fn read(
        &self,
        h: &OpenFile,
        path: &Path,
        offset: u64,
        size: u32,
    ) -> BackendResult<Vec<u8>> {
        // Bytes written through the mount and not uploaded are read from their staging.
        let staged = lock(&h.staged).clone().or_else(|| self.staged(path));
        if let Some(s) = staged {
            return s.read(offset, size);
        }
        let key = file_key(path)?;
        match self.read_store(h, path, &key, offset, size).await {
            // The object changed size behind the mount, or moved (a GET fetched ahead under
            // the old name): ask, and read again.
            Err(e)
                if e.errno() == Errno::EIO
                    || (e.errno() == Errno::ENOENT && !h.gone.load(SeqCst)) =>
            {
                *lock(&h.prefetch) = Prefetch::default();
                let a = self.stat_store(path).await?;
                h.size.store(a.size, SeqCst);
                self.read_store(h, path, &key, offset, size).await
            }
            r => r,
        }
    }

    async fn write(
        &self,
        h: &OpenFile,
        path: &Path,
        offset: u64,
        data: Vec<u8>,
    ) -> BackendResult<usize> {
        self.handle_stage(h, path).await?.write(offset, &data)
    }

    /// fstat(2): a file being written is its staging; one whose name is gone is what it
    /// holds (nothing until it writes: the object went with the name), with no link.
    async fn stat_open(&self, h: &OpenFile, path: &Path) -> BackendResult<FileAttr> {
        let gone = h.gone.load(SeqCst);
        let staged = lock(&h.staged).clone();
        let pres = &self.cfg.presentation;
        let a = match staged {
            Some(s) => pres.file(s.len(), s.mtime()),
            None if gone => pres.file(0, SystemTime::now()),
            None => return self.stat(path).await,
        };
        Ok(FileAttr { nlink: if gone { 0 } else { a.nlink }, ..a })
    }

    async fn flush(&self, h: &OpenFile, path: &Path) -> BackendResult<()> {
        let staged = lock(&h.staged).clone();
        match staged {
            Some(s) => self.upload(&s, path).await,
            None => Ok(()),
        }
    }

    async fn fsync(&self, h: &OpenFile, path: &Path, _datasync: bool) -> BackendResult<()> {
        // fsync(2) covers the file, whichever descriptor wrote (`sync FILE` opens read-only).
        let staged = lock(&h.staged).clone().or_else(|| self.staged(path));
        match staged {
            Some(s) => self.upload(&s, path).await,
            None => Ok(()),
        }
    }

    async fn release(&self, h: &OpenFile, path: &Path) -> BackendResult<()> {
        {
            let mut opens = lock(&self.opens);
            if let Some(named) = opens.get_mut(path) {
                named.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), &*h.gone));
                if named.is_empty() {
                    opens.remove(path);
                }
            }
        }
        let Some(s) = lock(&h.staged).take() else { return Ok(()) };
        let uploaded = self.upload(&s, path).await;
        let last = s.drop_writer();
        if last {
            // The last writer: the store holds the content now (or nobody will send it).
            // Found by identity, not by `path`: a rename may have moved it after this
            // RELEASE learned its path (an atomic save renames right after the close).
            let mut staged = lock(&self.staged);
            if staged.get(path).is_some_and(|cur| Arc::ptr_eq(cur, &s)) {
                staged.remove(path);
            } else {
                staged.retain(|_, cur| !Arc::ptr_eq(cur, &s));
            }
        }
        if let Err(e) = &uploaded {
            // Other writers left: theirs are the next flushes, which try again.
            if !last || !s.is_dirty() || s.is_unlinked() {
                return uploaded;
            }
            // Nobody is left to report this to: keep the bytes where a person finds them.
            match s.keep(&self.cfg.staging_dir, path) {
                Ok(at) => log::error!("upload of {path:?} failed ({e}); its bytes are in {at:?}"),
                Err(k) => log::error!("upload of {path:?} failed ({e}) and keeping it failed: {k}"),
            }
        }
        uploaded
    }

    async fn create(&self, path: &Path, _mode: u32, _: Owner) -> BackendResult<FileAttr> {
        self.writable()?;
        let key = file_key(path)?;
        if self.can_create_exclusive {
            self.op.write_with(&key, Vec::<u8>::new()).if_not_exists(true).await
        } else {
            match self.stat_store(path).await {
                Ok(_) => return Err(Errno::EEXIST.into()),
                Err(e) if e.errno() == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
            self.op.write(&key, Vec::<u8>::new()).await
        }
        .map_err(store_error)?;
        self.mark_fresh(path);
        self.siblings.forget(path);
        Ok(self.cfg.presentation.file(0, SystemTime::now()))
    }

    async fn mkdir(&self, path: &Path, _mode: u32, _: Owner) -> BackendResult<FileAttr> {
        self.writable()?;
        match self.stat_store(path).await {
            Ok(_) => return Err(Errno::EEXIST.into()),
            Err(e) if e.errno() == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        self.op.create_dir(&dir_key(path)?).await.map_err(store_error)?;
        Ok(self.cfg.presentation.dir(SystemTime::now()))
    }

    async fn remove(&self, path: &Path, dir: bool) -> BackendResult<()> {
        self.writable()?;
        if dir {
            let dk = dir_key(path)?;
            if self.has_children(&dk).await? {
                return Err(Errno::ENOTEMPTY.into());
            }
            return self.op.delete(&dk).await.map_err(store_error);
        }
        // Once the object is gone, opens that wrote keep reading and writing their staging;
        // nothing of it is uploaded any more. Not before: an unlink that fails loses nothing.
        self.op.delete(&file_key(path)?).await.map_err(store_error)?;
        if let Some(s) = lock(&self.staged).remove(path) {
            s.unlink();
        }
        self.names_gone(path);
        lock(&self.fresh).remove(path);
        self.siblings.forget(path);
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        self.writable()?;
        let a = self.stat(from).await?;
        let dir = a.kind == FileType::Directory;
        if let Ok(t) = self.stat(to).await {
            match (dir, t.kind == FileType::Directory) {
                (false, true) => return Err(Errno::EISDIR.into()),
                (true, false) => return Err(Errno::ENOTDIR.into()),
                (true, true) if self.has_children(&dir_key(to)?).await? => {
                    return Err(Errno::ENOTEMPTY.into())
                }
                _ => {}
            }
        }
        if dir {
            let (fk, tk) = (dir_key(from)?, dir_key(to)?);
            if self.has_children(&fk).await? {
                return Err(BackendError::new(
                    Errno::EXDEV,
                    "the store cannot rename a directory with contents",
                ));
            }
            self.op.create_dir(&tk).await.map_err(store_error)?;
            return self.op.delete(&fk).await.map_err(store_error);
        }
        let (fk, tk) = (file_key(from)?, file_key(to)?);
        self.siblings.forget(from);
        self.siblings.forget(to);
        // Neither name is known empty any more: `to` gets `from`'s bytes.
        lock(&self.fresh).remove(from);
        lock(&self.fresh).remove(to);
        // No upload of either name while the store moves it (a copy-and-delete racing an
        // upload could leave `to` with the old bytes, or bring `from` back).
        let moving = [self.staged(from), self.staged(to)];
        let mut uploads = Vec::new();
        for s in moving.iter().flatten() {
            uploads.push(s.upload.lock().await);
        }
        // Pending writes move with the name; the bytes already uploaded move in the store.
        let (staged, replaced) = {
            let mut map = lock(&self.staged);
            let (staged, replaced) = (map.remove(from), map.remove(to));
            if let Some(s) = &staged {
                map.insert(to.to_path_buf(), Arc::clone(s));
            }
            (staged, replaced)
        };
        let moved = if self.can_rename {
            self.op.rename(&fk, &tk).await.map_err(store_error)
        } else {
            match self.op.copy(&fk, &tk).await {
                Ok(_) => self.op.delete(&fk).await.map_err(store_error),
                Err(e) => Err(store_error(e)),
            }
        };
        match moved {
            // A file made here and not uploaded yet may be missing from the store: its
            // staging moved, which is all there was.
            Ok(()) => {}
            Err(e) if e.errno() == Errno::ENOENT && staged.is_some() => {}
            Err(e) => {
                // Not moved: the pending writes go back to their names.
                let mut map = lock(&self.staged);
                if let Some(s) = staged {
                    if map.get(to).is_some_and(|cur| Arc::ptr_eq(cur, &s)) {
                        map.remove(to);
                    }
                    map.insert(from.to_path_buf(), s);
                }
                if let Some(old) = replaced {
                    map.insert(to.to_path_buf(), old);
                }
                return Err(e);
            }
        }
        // `to`'s old file is gone: its opens keep their own bytes, and upload nothing more;
        // `from`'s opens are `to`'s now.
        if let Some(old) = replaced {
            old.unlink();
        }
        self.names_gone(to);
        let mut opens = lock(&self.opens);
        if let Some(named) = opens.remove(from) {
            opens.entry(to.to_path_buf()).or_default().extend(named);
        }
        drop(opens);
        // Its opens re-ask the size and drop what they fetched of the old name.
        self.changed(to);
        Ok(())
    }

    async fn symlink(&self, _: &Path, _: &Path, _: Owner) -> BackendResult<FileAttr> {
        Err(BackendError::new(Errno::EPERM, "the store has no symbolic links"))
    }

    async fn readlink(&self, _: &Path) -> BackendResult<PathBuf> {
        Err(Errno::EINVAL.into())
    }

    async fn set_attr(
        &self,
        path: &Path,
        h: Option<&OpenFile>,
        set: &SetAttr,
    ) -> BackendResult<FileAttr> {
        let now = self.stat(path).await?;
        let pres = &self.cfg.presentation;
        let mode_changes = set.mode.is_some_and(|m| m & 0o7777 != u32::from(now.perm));
        let owner_changes =
            set.uid.is_some_and(|u| u != pres.uid) || set.gid.is_some_and(|g| g != pres.gid);
        if mode_changes || owner_changes {
            return Err(BackendError::new(Errno::EPERM, "the store keeps no modes or owners"));
        }
        let Some(size) = set.size else {
            return Ok(now); // times: accepted, not kept (the store's mtime is shown)
        };
        self.writable()?;
        if now.kind == FileType::Directory {
            return Err(Errno::EISDIR.into());
        }
        // Through an open file (or a path others have open for writing): staged, uploaded
        // at their flush. Otherwise now, as truncate(2) returns.
        let staged = match h {
            Some(h) if h.writable => {
                // open(O_TRUNC): what was there is not fetched only to be cut. Only for an
                // open that still has its name and has not staged yet, and forgotten if
                // staging fails.
                let fresh = size == 0
                    && !h.gone.load(SeqCst)
                    && lock(&h.staged).is_none()
                    && self.staged(path).is_none();
                if fresh {
                    self.mark_fresh(path);
                }
                let staged = self.handle_stage(h, path).await;
                if staged.is_err() && fresh {
                    lock(&self.fresh).remove(path);
                }
                Some(staged?)
            }
            _ => self.staged(path),
        };
        if let Some(s) = staged {
            s.truncate(size)?;
            return Ok(pres.file(size, s.mtime()));
        }
        self.siblings.forget(path);
        if size == 0 {
            self.op.write(&file_key(path)?, Vec::<u8>::new()).await.map_err(store_error)?;
            self.mark_fresh(path);
            self.changed(path);
        } else {
            let s = self.stage(path).await?;
            s.truncate(size)?;
            let r = self.upload(&s, path).await;
            lock(&self.staged).remove(path);
            r?;
        }
        Ok(pres.file(size, SystemTime::now()))
    }

    async fn statfs(&self) -> BackendResult<Statfs> {
        // A store has no size: show a large, round one, as other object-store mounts do, so
        // tools that check free space proceed.
        let blocks = 1 << 40; // 4 PiB in 4 KiB blocks
        Ok(Statfs {
            blocks,
            bfree: blocks,
            bavail: blocks,
            files: 1 << 32,
            ffree: 1 << 32,
            bsize: 4096,
            // CachedFs takes names up to NAME_MAX; S3's 1024 bytes bound the whole key.
            namelen: 255,
            frsize: 4096,
        })
    }
}
