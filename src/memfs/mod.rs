//! `MemFs`: a complete in-memory POSIX filesystem, for tests, benchmarks and as an example.
//!
//! The logic is plain Rust against plain types (`Result<T, Errno>`, [`FileAttr`], [`SetAttr`]):
//! the [`Filesystem`](crate::Filesystem) impl in `fuse.rs` is a thin layer over it, so the same
//! code can be served by another FUSE library (the benchmark harness runs it under `fuser`).
//!
//! Semantics follow Linux tmpfs. Permission checks are the kernel's: mount with
//! `default_permissions` (the memfs example does), and the kernel checks mode bits, sticky
//! directories, and who may chown, chmod and set times, before MemFs sees a request; MemFs does
//! what the kernel leaves to the filesystem (ownership of new nodes, setgid directories,
//! link counts, times, name limits, clearing set-id bits when asked). [`MemFs::access`] checks
//! mode bits itself for mounts without `default_permissions`.
//!
//! Node ids come from a counter and are never reused; a node is freed once it has no links
//! and the kernel has forgotten every lookup of it ([`MemFs::forget`]).

#[cfg(feature = "tokio")]
mod async_fs;
mod data;
mod dir;
mod fuse;
mod locks;

use data::{Data, PAGE};
use dir::Dir;
use fusefs_session::op::{SetAttr, TimeOrNow};
use fusefs_session::{FileAttr, FileType, RenameFlags, Statfs, XattrFlags};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub use fusefs_session::Errno;

/// A MemFs result.
pub type Result<T> = std::result::Result<T, Errno>;

/// Who makes a request: new nodes belong to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The caller's fs uid.
    pub uid: u32,
    /// The caller's fs gid.
    pub gid: u32,
}

/// Settings of a MemFs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemFsOptions {
    /// Total bytes of file data allowed (whole 4 KiB pages); writes and fallocate that need
    /// more fail with ENOSPC. Default: half of the machine's memory, as tmpfs. `None`: no
    /// limit at all (a large fallocate can then exhaust memory).
    pub size_limit: Option<u64>,
    /// How long the kernel may cache names (and negative lookups).
    pub entry_ttl: Duration,
    /// How long the kernel may cache attributes.
    pub attr_ttl: Duration,
    /// Open files with DIRECT_IO and PARALLEL_DIRECT_WRITES instead of KEEP_CACHE: no page
    /// cache, every read and write reaches MemFs, and writes to one file from several
    /// callers are not serialized by the kernel; default false. (Shared mmap then needs
    /// the kernel's DIRECT_IO_ALLOW_MMAP.)
    pub direct_io: bool,
    /// Serve POSIX record locks and flock locks (asking the kernel for POSIX_LOCKS and
    /// FLOCK_LOCKS), instead of leaving them to the kernel's local locking; default false.
    /// Served, every close costs a FLUSH (which is where a process's POSIX locks go); the
    /// kernel's local locks cost nothing and are as good on a single machine. Sync API only
    /// (the async one leaves locks to the kernel). A waiting F_SETLKW keeps its reply, which
    /// counts against `Config::max_in_flight` and, on fuse-uring, holds a ring entry of its
    /// CPU's queue: with few entries per queue, waiters can leave the holder's unlock no
    /// entry to arrive on (use a deeper `ring_depth`, or another transport, where many wait).
    pub serve_locks: bool,
    /// Owner (uid, gid) of the root directory. Default: this process's effective ones, as
    /// tmpfs's root belongs to whoever mounts it (a user's memfs is theirs to write in).
    pub root_owner: (u32, u32),
}

impl Default for MemFsOptions {
    fn default() -> Self {
        MemFsOptions {
            size_limit: Some(half_of_memory()),
            entry_ttl: Duration::from_secs(1),
            attr_ttl: Duration::from_secs(1),
            direct_io: false,
            serve_locks: false,
            root_owner: (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()),
        }
    }
}

/// Counters describing a MemFs's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFsStats {
    /// Nodes held (the root included).
    pub nodes: u64,
    /// Bytes of file data held (whole pages).
    pub data_bytes: u64,
}

/// Half of MemTotal from /proc/meminfo (tmpfs's default size); 1 GiB if unreadable.
fn half_of_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(1 << 30, |kib| kib * 1024 / 2)
}

/// Longest name.
pub const NAME_MAX: usize = 255;
/// Largest xattr value (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Largest file: the kernel's `MAX_LFS_FILESIZE` on 64-bit.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

enum Content {
    File(Data),
    Dir(Dir),
    Symlink(OsString),
    Special,
}

struct Node {
    attr: FileAttr,
    btime: SystemTime,
    /// Lookups the kernel holds (LOOKUP replies minus FORGET counts).
    nlookup: u64,
    /// For directories, the parent ("..").
    parent: u64,
    content: Content,
    xattrs: BTreeMap<OsString, Vec<u8>>,
}

struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    pages: u64,
}

/// The filesystem. See the module docs.
pub struct MemFs {
    state: Mutex<State>,
    /// Every node's generation: one per instance, as node numbers start again with each (a
    /// file handle from an earlier mount must not open a node of this one).
    generation: u64,
    opts: MemFsOptions,
    /// POSIX and flock locks, when served (`serve_locks`).
    locks: locks::Locks,
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new(MemFsOptions::default())
    }
}

fn valid_name(name: &OsStr) -> Result<()> {
    if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else if name.is_empty() || name.as_bytes().contains(&b'/') {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

impl State {
    fn node(&self, ino: u64) -> Result<&Node> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }
    fn node_mut(&mut self, ino: u64) -> Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }
    fn dir(&self, ino: u64) -> Result<&Dir> {
        match &self.node(ino)?.content {
            Content::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn dir_mut(&mut self, ino: u64) -> Result<&mut Dir> {
        match &mut self.node_mut(ino)?.content {
            Content::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn file_mut(&mut self, ino: u64) -> Result<&mut Data> {
        match &mut self.node_mut(ino)?.content {
            Content::File(d) => Ok(d),
            Content::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Mark the directory changed (an entry added or removed).
    fn touch_dir(&mut self, ino: u64, now: SystemTime) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.attr.mtime = now;
            n.attr.ctime = now;
        }
    }

    /// Free `ino` if nothing refers to it any more.
    fn maybe_free(&mut self, ino: u64) {
        let gone = self.nodes.get(&ino).is_some_and(|n| n.attr.nlink == 0 && n.nlookup == 0);
        if gone && ino != 1 {
            if let Some(Node { content: Content::File(d), .. }) = self.nodes.remove(&ino) {
                self.pages -= d.pages();
            }
        }
    }

    /// Whether `ancestor` is `ino` or one of its parents.
    fn is_ancestor(&self, ancestor: u64, mut ino: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.nodes.get(&ino) {
                Some(n) if ino != 1 => ino = n.parent,
                _ => return false,
            }
        }
    }

    fn update_size(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            if let Content::File(d) = &n.content {
                n.attr.size = d.size;
                n.attr.blocks = d.pages() * (PAGE / 512);
            }
        }
    }
}

impl MemFs {
    /// What MemFs asks of the kernel on every API: EXPORT_SUPPORT, since it answers
    /// LOOKUP of "." and ".." ([`MemFs::lookup`]): file handles (`name_to_handle_at`,
    /// `open_by_handle_at`, NFS export) then work for every node that still exists, also
    /// after the kernel forgot it. Without it the kernel finds by handle only the inodes it
    /// still holds (ESTALE for the rest).
    pub const CAPABILITIES: fusefs_session::InitFlags = fusefs_session::InitFlags::EXPORT_SUPPORT;

    /// How files are opened: every change goes through the mount, so cached pages stay valid
    /// across opens (KEEP_CACHE), unless `direct_io` asks for no page cache at all.
    pub fn file_open_flags(&self) -> fusefs_session::OpenFlags {
        use fusefs_session::OpenFlags;
        if self.opts.direct_io {
            OpenFlags::DIRECT_IO | OpenFlags::PARALLEL_DIRECT_WRITES
        } else {
            OpenFlags::KEEP_CACHE
        }
    }

    /// How directories are opened: every change goes through the mount and cookies are
    /// stable, so the kernel may keep listings (CACHE_DIR) across opens (KEEP_CACHE).
    pub const DIR_OPEN_FLAGS: fusefs_session::OpenFlags =
        fusefs_session::OpenFlags::CACHE_DIR.union(fusefs_session::OpenFlags::KEEP_CACHE);

    /// An empty filesystem: a root directory (mode 0755, owned by `opts.root_owner`).
    pub fn new(opts: MemFsOptions) -> MemFs {
        let now = SystemTime::now();
        let mut attr = FileAttr::new(1, FileType::Directory, 0o755, now);
        attr.blksize = PAGE as u32;
        (attr.uid, attr.gid) = opts.root_owner;
        let root = Node {
            attr,
            btime: now,
            nlookup: 0,
            parent: 1,
            content: Content::Dir(Dir::default()),
            xattrs: BTreeMap::new(),
        };
        let nodes = HashMap::from([(1, root)]);
        let state = Mutex::new(State { nodes, next_ino: 2, pages: 0 });
        let generation = fusefs_session::mount_generation();
        MemFs { state, generation, opts, locks: locks::Locks::default() }
    }

    /// SETLKWs waiting for a lock now (with `serve_locks`).
    pub fn lock_waiters(&self) -> usize {
        self.locks.waiting()
    }

    /// The options it was made with.
    pub fn options(&self) -> &MemFsOptions {
        &self.opts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Node count and bytes held.
    pub fn stats(&self) -> MemFsStats {
        let s = self.lock();
        MemFsStats { nodes: s.nodes.len() as u64, data_bytes: s.pages * PAGE }
    }

    /// Look up `name` in `parent`; the kernel now holds one more lookup of the result.
    ///
    /// "." and ".." come only from the kernel's export operations (a path walk resolves them
    /// itself): "." of any node, when `open_by_handle_at` names one the kernel has forgotten
    /// (`parent` is then that node, of any type), and ".." of a directory it reconnects.
    /// Node numbers are never reused, so a handle of a removed node finds nothing (ESTALE),
    /// and the generation is one per instance, so one from an earlier mount matches nothing.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr> {
        let mut s = self.lock();
        let ino = match name.as_bytes() {
            b"." => s.node(parent).map(|_| parent)?,
            b".." => s.dir(parent).and_then(|_| Ok(s.node(parent)?.parent))?,
            _ => {
                valid_name(name).map_err(|e| if e == Errno::EINVAL { Errno::ENOENT } else { e })?;
                s.dir(parent)?.get(name).ok_or(Errno::ENOENT)?
            }
        };
        let n = s.node_mut(ino)?;
        n.nlookup += 1;
        Ok(n.attr)
    }

    /// The kernel forgot `nlookup` lookups of `ino`.
    pub fn forget(&self, ino: u64, nlookup: u64) {
        let mut s = self.lock();
        if let Some(n) = s.nodes.get_mut(&ino) {
            n.nlookup = n.nlookup.saturating_sub(nlookup);
        }
        s.maybe_free(ino);
    }

    /// Attributes.
    pub fn getattr(&self, ino: u64) -> Result<FileAttr> {
        Ok(self.lock().node(ino)?.attr)
    }

    /// Attributes and birth time.
    pub fn statx(&self, ino: u64) -> Result<(FileAttr, SystemTime)> {
        let s = self.lock();
        let n = s.node(ino)?;
        Ok((n.attr, n.btime))
    }

    /// Change attributes (chmod, chown, truncate, utimes). The kernel has checked who may.
    pub fn setattr(&self, ino: u64, set: &SetAttr) -> Result<FileAttr> {
        let now = SystemTime::now();
        let mut s = self.lock();
        if let Some(size) = set.size {
            if size > MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            let d = s.file_mut(ino)?;
            let before = d.pages();
            d.truncate(size);
            let freed = before - d.pages();
            s.pages -= freed;
            s.update_size(ino);
            let n = s.node_mut(ino)?;
            n.attr.mtime = now;
        }
        let n = s.node_mut(ino)?;
        if let Some(mode) = set.mode {
            n.attr.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = set.uid {
            n.attr.uid = uid;
        }
        if let Some(gid) = set.gid {
            n.attr.gid = gid;
        }
        let time = |t: TimeOrNow| match t {
            TimeOrNow::Now => now,
            TimeOrNow::Time(t) => t,
        };
        if let Some(t) = set.atime {
            n.attr.atime = time(t);
        }
        if let Some(t) = set.mtime {
            n.attr.mtime = time(t);
        }
        if set.kill_suidgid {
            clear_setid_bits(&mut n.attr);
        }
        n.attr.ctime = set.ctime.unwrap_or(now);
        Ok(n.attr)
    }

    /// The target of a symlink.
    pub fn readlink(&self, ino: u64) -> Result<OsString> {
        match &self.lock().node(ino)?.content {
            Content::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Add a new node named `name` to `parent`; it is looked up once.
    fn add(
        &self,
        parent: u64,
        name: Option<&OsStr>,
        kind: FileType,
        mode: u32,
        caller: Caller,
        content: Content,
    ) -> Result<FileAttr> {
        if let Some(name) = name {
            valid_name(name)?;
        }
        let now = SystemTime::now();
        let mut s = self.lock();
        let pnode = s.node(parent)?;
        let (pgid, psgid) = (pnode.attr.gid, pnode.attr.perm & 0o2000 != 0);
        let dir = s.dir(parent)?;
        if name.is_some_and(|n| dir.get(n).is_some()) {
            return Err(Errno::EEXIST);
        }
        let ino = s.next_ino;
        s.next_ino += 1;
        let mut perm = (mode & 0o7777) as u16;
        // A setgid directory passes its group on, and to subdirectories its setgid bit.
        let gid = if psgid { pgid } else { caller.gid };
        if psgid && kind == FileType::Directory {
            perm |= 0o2000;
        }
        let mut attr = FileAttr::new(ino, kind, perm, now);
        attr.uid = caller.uid;
        attr.gid = gid;
        attr.blksize = PAGE as u32;
        attr.nlink = match (kind, name) {
            (_, None) => 0,
            (FileType::Directory, _) => 2,
            _ => 1,
        };
        if let Content::Symlink(t) = &content {
            attr.size = t.len() as u64;
        }
        s.nodes.insert(
            ino,
            Node { attr, btime: now, nlookup: 1, parent, content, xattrs: BTreeMap::new() },
        );
        if let Some(name) = name {
            s.dir_mut(parent)?.insert(name, ino);
            if kind == FileType::Directory {
                s.node_mut(parent)?.attr.nlink += 1;
            }
            s.touch_dir(parent, now);
        }
        Ok(attr)
    }

    /// MKNOD: a regular file, FIFO, socket or device node.
    pub fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        c: Caller,
    ) -> Result<FileAttr> {
        let kind = FileType::from_mode(mode).unwrap_or(FileType::RegularFile);
        let content = match kind {
            FileType::RegularFile => Content::File(Data::default()),
            FileType::Directory | FileType::Symlink => return Err(Errno::EINVAL),
            _ => Content::Special,
        };
        let attr = self.add(parent, Some(name), kind, mode, c, content)?;
        if matches!(kind, FileType::CharDevice | FileType::BlockDevice) {
            let mut s = self.lock();
            let n = s.node_mut(attr.ino)?;
            n.attr.rdev = rdev;
            return Ok(n.attr);
        }
        Ok(attr)
    }

    /// MKDIR.
    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32, c: Caller) -> Result<FileAttr> {
        self.add(parent, Some(name), FileType::Directory, mode, c, Content::Dir(Dir::default()))
    }

    /// SYMLINK.
    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &OsStr,
        c: Caller,
    ) -> Result<FileAttr> {
        if target.len() >= libc::PATH_MAX as usize {
            return Err(Errno::ENAMETOOLONG);
        }
        let content = Content::Symlink(target.to_owned());
        self.add(parent, Some(name), FileType::Symlink, 0o777, c, content)
    }

    /// CREATE: a new regular file. The kernel sends it for names it believes absent; if the
    /// name exists after all (made meanwhile by another way in), `O_EXCL` or a non-regular
    /// file gives EEXIST, else the existing file is returned (looked up once more) and
    /// truncated if `O_TRUNC` asks, since the kernel will not truncate a file it thinks new.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        c: Caller,
    ) -> Result<FileAttr> {
        match self.add(
            parent,
            Some(name),
            FileType::RegularFile,
            mode,
            c,
            Content::File(Data::default()),
        ) {
            Err(Errno::EEXIST) if flags & libc::O_EXCL == 0 => {
                let attr = self.lookup(parent, name)?;
                if attr.kind != FileType::RegularFile {
                    self.forget(attr.ino, 1);
                    return Err(Errno::EEXIST);
                }
                if flags & libc::O_TRUNC != 0 {
                    let mut set = SetAttr::default();
                    set.size = Some(0);
                    return self.setattr(attr.ino, &set);
                }
                Ok(attr)
            }
            r => r,
        }
    }

    /// TMPFILE: an unnamed regular file in `parent` (link count 0 until linked).
    pub fn tmpfile(&self, parent: u64, mode: u32, c: Caller) -> Result<FileAttr> {
        self.lock().dir(parent)?;
        self.add(parent, None, FileType::RegularFile, mode, c, Content::File(Data::default()))
    }

    /// LINK: a new name for `ino`; looked up once more.
    pub fn link(&self, ino: u64, newparent: u64, newname: &OsStr) -> Result<FileAttr> {
        valid_name(newname)?;
        let now = SystemTime::now();
        let mut s = self.lock();
        if s.node(ino)?.attr.kind == FileType::Directory {
            return Err(Errno::EPERM);
        }
        if s.dir(newparent)?.get(newname).is_some() {
            return Err(Errno::EEXIST);
        }
        s.dir_mut(newparent)?.insert(newname, ino);
        s.touch_dir(newparent, now);
        let n = s.node_mut(ino)?;
        n.attr.nlink += 1;
        n.attr.ctime = now;
        n.nlookup += 1;
        Ok(n.attr)
    }

    /// UNLINK.
    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(parent, name, false)
    }

    /// RMDIR.
    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(parent, name, true)
    }

    fn remove(&self, parent: u64, name: &OsStr, want_dir: bool) -> Result<()> {
        valid_name(name).map_err(|e| if e == Errno::EINVAL { Errno::ENOENT } else { e })?;
        let now = SystemTime::now();
        let mut s = self.lock();
        let ino = s.dir(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let n = s.node(ino)?;
        match (&n.content, want_dir) {
            (Content::Dir(d), true) if !d.is_empty() => return Err(Errno::ENOTEMPTY),
            (Content::Dir(_), true) => {}
            (_, true) => return Err(Errno::ENOTDIR),
            (Content::Dir(_), false) => return Err(Errno::EISDIR),
            (_, false) => {}
        }
        s.dir_mut(parent)?.remove(name);
        s.touch_dir(parent, now);
        if want_dir {
            s.node_mut(parent)?.attr.nlink -= 1;
        }
        let n = s.node_mut(ino)?;
        n.attr.nlink = if want_dir { 0 } else { n.attr.nlink.saturating_sub(1) };
        n.attr.ctime = now;
        s.maybe_free(ino);
        Ok(())
    }

    /// RENAME and RENAME2 (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<()> {
        valid_name(name)?;
        valid_name(newname)?;
        if flags.contains(RenameFlags::WHITEOUT)
            || flags.contains(RenameFlags::EXCHANGE | RenameFlags::NOREPLACE)
        {
            return Err(Errno::EINVAL);
        }
        let now = SystemTime::now();
        let mut s = self.lock();
        let src = s.dir(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let dst = s.dir(newparent)?.get(newname);
        let src_dir = s.node(src)?.attr.kind == FileType::Directory;
        if flags.contains(RenameFlags::EXCHANGE) {
            let dst = dst.ok_or(Errno::ENOENT)?;
            let dst_dir = s.node(dst)?.attr.kind == FileType::Directory;
            if (src_dir && s.is_ancestor(src, newparent)) || (dst_dir && s.is_ancestor(dst, parent))
            {
                return Err(Errno::EINVAL);
            }
            s.dir_mut(parent)?.insert(name, dst);
            s.dir_mut(newparent)?.insert(newname, src);
            for (ino, is_dir, p) in [(src, src_dir, newparent), (dst, dst_dir, parent)] {
                let n = s.node_mut(ino)?;
                n.attr.ctime = now;
                if is_dir {
                    n.parent = p;
                }
            }
            if parent != newparent && src_dir != dst_dir {
                let (gain, lose) = if src_dir { (newparent, parent) } else { (parent, newparent) };
                s.node_mut(gain)?.attr.nlink += 1;
                s.node_mut(lose)?.attr.nlink -= 1;
            }
            s.touch_dir(parent, now);
            s.touch_dir(newparent, now);
            return Ok(());
        }
        if src_dir && s.is_ancestor(src, newparent) {
            return Err(Errno::EINVAL);
        }
        if let Some(dst) = dst {
            if flags.contains(RenameFlags::NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if dst == src {
                return Ok(()); // two names of one file: POSIX says do nothing
            }
            let dn = s.node(dst)?;
            match (&dn.content, src_dir) {
                (Content::Dir(d), true) if !d.is_empty() => return Err(Errno::ENOTEMPTY),
                (Content::Dir(_), true) => {}
                (Content::Dir(_), false) => return Err(Errno::EISDIR),
                (_, true) => return Err(Errno::ENOTDIR),
                _ => {}
            }
            let n = s.node_mut(dst)?;
            n.attr.ctime = now;
            if src_dir {
                n.attr.nlink = 0;
            } else {
                n.attr.nlink -= 1;
            }
            if src_dir {
                s.node_mut(newparent)?.attr.nlink -= 1;
            }
            s.maybe_free(dst);
        }
        s.dir_mut(parent)?.remove(name);
        s.dir_mut(newparent)?.insert(newname, src);
        let n = s.node_mut(src)?;
        n.attr.ctime = now;
        if src_dir {
            n.parent = newparent;
            s.node_mut(parent)?.attr.nlink -= 1;
            s.node_mut(newparent)?.attr.nlink += 1;
        }
        s.touch_dir(parent, now);
        s.touch_dir(newparent, now);
        Ok(())
    }

    /// OPEN: check that `ino` can be opened this way.
    pub fn open(&self, ino: u64, flags: i32) -> Result<()> {
        let s = self.lock();
        let n = s.node(ino)?;
        if n.attr.kind == FileType::Directory && flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(Errno::EISDIR);
        }
        Ok(())
    }

    /// READ up to `out.len()` bytes at `offset`; returns how many (short at EOF). Updates the
    /// access time as `relatime` would.
    pub fn read(&self, ino: u64, offset: u64, out: &mut [u8]) -> Result<usize> {
        let mut s = self.lock();
        let n = s.node_mut(ino)?;
        let Content::File(d) = &n.content else {
            return Err(if n.attr.kind == FileType::Directory {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        let got = d.read(offset, out);
        let a = &mut n.attr;
        let now = SystemTime::now();
        if a.atime <= a.mtime
            || a.atime <= a.ctime
            || now.duration_since(a.atime).unwrap_or_default() > Duration::from_secs(86400)
        {
            a.atime = now;
        }
        Ok(got)
    }

    /// WRITE `data` at `offset`; `kill_suidgid` clears set-id bits as a write by an
    /// unprivileged process must.
    pub fn write(&self, ino: u64, offset: u64, data: &[u8], kill_suidgid: bool) -> Result<u32> {
        if data.is_empty() {
            // Writing nothing changes nothing, not even the size past the end (write(2)).
            self.lock().file_mut(ino)?;
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut s = self.lock();
        let limit = self.opts.size_limit;
        let used = s.pages;
        let d = s.file_mut(ino)?;
        let new = d.new_pages_for(offset, data.len() as u64);
        if limit.is_some_and(|l| (used + new) * PAGE > l) {
            return Err(Errno::ENOSPC);
        }
        d.write(offset, data);
        s.pages += new;
        s.update_size(ino);
        let n = s.node_mut(ino)?;
        let now = SystemTime::now();
        n.attr.mtime = now;
        n.attr.ctime = now;
        if kill_suidgid {
            clear_setid_bits(&mut n.attr);
        }
        Ok(data.len() as u32)
    }

    /// FALLOCATE: mode 0 or `FALLOC_FL_KEEP_SIZE` allocate, `FALLOC_FL_PUNCH_HOLE` (with
    /// KEEP_SIZE) frees, `FALLOC_FL_ZERO_RANGE` zeroes. `kill_suidgid` clears set-id bits as
    /// a change of the data by an unprivileged process must (as [`write`](Self::write)):
    /// FALLOCATE carries no such flag, so callers pass whether the caller lacks the
    /// privilege (its uid is not 0).
    pub fn fallocate(
        &self,
        ino: u64,
        offset: u64,
        len: u64,
        mode: i32,
        kill_suidgid: bool,
    ) -> Result<()> {
        const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE;
        const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
        if mode & !(KEEP | PUNCH | ZERO) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = offset.checked_add(len).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Errno::EFBIG)?;
        let mut s = self.lock();
        let limit = self.opts.size_limit;
        let used = s.pages;
        let d = s.file_mut(ino)?;
        let before = d.pages();
        if mode & PUNCH != 0 {
            if mode & KEEP == 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            // Not clamped to the size: pages preallocated past EOF (KEEP_SIZE) go too.
            d.zero_range(offset, end - offset);
        } else {
            let new = d.new_pages_for(offset, len);
            if limit.is_some_and(|l| (used + new) * PAGE > l) {
                return Err(Errno::ENOSPC);
            }
            if mode & ZERO != 0 {
                let to = end.min(d.size.max(if mode & KEEP == 0 { end } else { 0 }));
                if to > offset {
                    d.zero_range(offset, to - offset);
                }
            }
            d.allocate(offset, len);
            if mode & KEEP == 0 && end > d.size {
                d.size = end;
            }
        }
        let after = d.pages();
        s.pages = s.pages + after - before;
        s.update_size(ino);
        let now = SystemTime::now();
        let n = s.node_mut(ino)?;
        n.attr.mtime = now;
        n.attr.ctime = now;
        if kill_suidgid {
            clear_setid_bits(&mut n.attr);
        }
        Ok(())
    }

    /// LSEEK with SEEK_DATA or SEEK_HOLE (others are the kernel's business).
    pub fn lseek(&self, ino: u64, offset: i64, whence: i32) -> Result<u64> {
        let mut s = self.lock();
        let d = s.file_mut(ino)?;
        let off = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
        match whence {
            libc::SEEK_DATA => d.seek_data(off).ok_or(Errno::ENXIO),
            libc::SEEK_HOLE => d.seek_hole(off).ok_or(Errno::ENXIO),
            libc::SEEK_SET => Ok(off),
            libc::SEEK_END => Ok(d.size.saturating_add_signed(offset)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// COPY_FILE_RANGE: copy `len` bytes (fewer at the source's EOF); returns how many.
    pub fn copy_file_range(
        &self,
        ino_in: u64,
        off_in: u64,
        ino_out: u64,
        off_out: u64,
        len: u64,
    ) -> Result<u64> {
        // Through a 1 MiB buffer, chunk by chunk.
        const CHUNK: u64 = 1 << 20;
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(CHUNK) as usize;
            let n = self.read(ino_in, off_in + done, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            self.write(ino_out, off_out + done, &buf[..n], false)?;
            done += n as u64;
            if n < want {
                break;
            }
        }
        Ok(done)
    }

    /// Filesystem statistics.
    pub fn statfs(&self) -> Statfs {
        let s = self.lock();
        let total = self.opts.size_limit.map_or(1 << 40, |l| l / PAGE);
        let free = total.saturating_sub(s.pages);
        Statfs {
            blocks: total,
            bfree: free,
            bavail: free,
            files: 1 << 32,
            ffree: (1u64 << 32) - s.nodes.len() as u64,
            bsize: PAGE as u32,
            namelen: NAME_MAX as u32,
            frsize: PAGE as u32,
        }
    }

    fn xattr_allowed(n: &Node, name: &OsStr) -> Result<()> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > NAME_MAX {
            return Err(if b.is_empty() { Errno::EINVAL } else { Errno::ERANGE });
        }
        if b.starts_with(b"user.") {
            // As on Linux: user attributes only on regular files and directories.
            if !matches!(n.attr.kind, FileType::RegularFile | FileType::Directory) {
                return Err(Errno::EPERM);
            }
            return Ok(());
        }
        if b.starts_with(b"trusted.") || b.starts_with(b"security.") {
            return Ok(());
        }
        Err(Errno::EOPNOTSUPP)
    }

    /// SETXATTR with `XATTR_CREATE` / `XATTR_REPLACE`.
    pub fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: XattrFlags) -> Result<()> {
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let mut s = self.lock();
        let n = s.node_mut(ino)?;
        Self::xattr_allowed(n, name)?;
        let exists = n.xattrs.contains_key(name);
        if exists && flags.contains(XattrFlags::CREATE) {
            return Err(Errno::EEXIST);
        }
        if !exists && flags.contains(XattrFlags::REPLACE) {
            return Err(Errno::ENODATA);
        }
        n.xattrs.insert(name.to_owned(), value.to_vec());
        n.attr.ctime = SystemTime::now();
        Ok(())
    }

    /// GETXATTR: calls `f` with the value under the lock (no copy).
    pub fn getxattr<T>(&self, ino: u64, name: &OsStr, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let s = self.lock();
        let n = s.node(ino)?;
        Self::xattr_allowed(n, name)
            .map_err(|e| if e == Errno::EPERM { Errno::ENODATA } else { e })?;
        n.xattrs.get(name).map(|v| f(v)).ok_or(Errno::ENODATA)
    }

    /// LISTXATTR: the names, each followed by a NUL.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        let s = self.lock();
        let mut out = Vec::new();
        for k in s.node(ino)?.xattrs.keys() {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// REMOVEXATTR.
    pub fn removexattr(&self, ino: u64, name: &OsStr) -> Result<()> {
        let mut s = self.lock();
        let n = s.node_mut(ino)?;
        Self::xattr_allowed(n, name)?;
        n.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        n.attr.ctime = SystemTime::now();
        Ok(())
    }

    /// List directory `ino` from cookie `offset`: `f(node, cookie, type, name)` for each entry
    /// ("." and ".." first) until it returns `true` (buffer full).
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        mut f: impl FnMut(u64, u64, FileType, &OsStr) -> bool,
    ) -> Result<()> {
        let s = self.lock();
        let n = s.node(ino)?;
        let d = s.dir(ino)?;
        let dots = [(1, ino, "."), (2, n.parent, "..")];
        for (cookie, i, name) in dots.into_iter().filter(|d| d.0 > offset) {
            if f(i, cookie, FileType::Directory, OsStr::new(name)) {
                return Ok(());
            }
        }
        for (cookie, name, i) in d.after(offset.max(2)) {
            let kind = s.node(i).map(|n| n.attr.kind).unwrap_or(FileType::RegularFile);
            if f(i, cookie, kind, name) {
                break;
            }
        }
        Ok(())
    }

    /// READDIRPLUS: like [`readdir`](Self::readdir) with attributes. Every entry but "." and
    /// ".." that `f` accepts (returns `false` for) counts as a lookup; "." and ".." are given
    /// with `None` and take none (the kernel ignores them). Returns the nodes counted, so a
    /// reply the kernel never got can be taken back with [`forget`](Self::forget).
    pub fn readdirplus(
        &self,
        ino: u64,
        offset: u64,
        mut f: impl FnMut(Option<&FileAttr>, u64, u64, FileType, &OsStr) -> bool,
    ) -> Result<Vec<u64>> {
        let mut s = self.lock();
        let parent = s.node(ino)?.parent;
        s.dir(ino)?;
        let dots = [(1, ino, "."), (2, parent, "..")];
        for (cookie, i, name) in dots.into_iter().filter(|d| d.0 > offset) {
            if f(None, i, cookie, FileType::Directory, OsStr::new(name)) {
                return Ok(Vec::new());
            }
        }
        let s = &mut *s;
        let Some(Node { content: Content::Dir(d), .. }) = s.nodes.get(&ino) else {
            return Err(Errno::ENOTDIR);
        };
        let mut taken = Vec::new();
        for (cookie, name, i) in d.after(offset.max(2)) {
            let Some(n) = s.nodes.get(&i) else { continue };
            if f(Some(&n.attr), i, cookie, n.attr.kind, name) {
                break;
            }
            taken.push(i);
        }
        for &i in &taken {
            if let Some(n) = s.nodes.get_mut(&i) {
                n.nlookup += 1;
            }
        }
        Ok(taken)
    }

    /// ACCESS: check `mask` (`R_OK | W_OK | X_OK`, or `F_OK`) against the mode bits, for
    /// mounts without `default_permissions`. Root passes, except X_OK needs some x bit on
    /// files.
    pub fn access(&self, ino: u64, mask: i32, c: Caller) -> Result<()> {
        let s = self.lock();
        let a = s.node(ino)?.attr;
        if mask == libc::F_OK {
            return Ok(());
        }
        let perm = u32::from(a.perm);
        if c.uid == 0 {
            let any_x = perm & 0o111 != 0 || a.kind == FileType::Directory;
            return if mask & libc::X_OK != 0 && !any_x { Err(Errno::EACCES) } else { Ok(()) };
        }
        let bits = if c.uid == a.uid {
            perm >> 6
        } else if c.gid == a.gid {
            perm >> 3
        } else {
            perm
        } & 7;
        if (mask as u32) & !bits & 7 != 0 {
            Err(Errno::EACCES)
        } else {
            Ok(())
        }
    }
}

/// Clear set-user-id, and set-group-id if group-executable (a set-group-id bit without group
/// execute means mandatory locking and stays).
fn clear_setid_bits(a: &mut FileAttr) {
    a.perm &= !0o4000;
    if a.perm & 0o010 != 0 {
        a.perm &= !0o2000;
    }
}
