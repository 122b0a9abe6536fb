//! `LocalBackend`: a directory of the local filesystem, as a [`Backend`] whose calls are
//! syscalls, each made on the blocking pool through [`blocking`].

use super::backend::{blocking, Backend, BackendResult, DirEntry, Owner};
use crate::passthrough::sys::{attr, errno};
use fusefs_session::op::{SetAttr, TimeOrNow};
use fusefs_session::proto::time::split_time;
use fusefs_session::{FileAttr, FileType, Statfs};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files under `root`, served as a backend. Each call is a syscall or few; nothing is
/// cached here (that is `CachedFs`'s job). An open file is a descriptor, so it stays usable
/// after it is renamed over or removed, as POSIX wants. New files, directories and links get
/// the caller's ownership when the daemon runs as root (as any local filesystem gives them),
/// and the daemon's otherwise.
///
/// Paths are resolved from a descriptor of `root` (the `*at` calls), never by prefixing
/// `root` to them: a path the mount accepts, up to PATH_MAX long, would no longer fit once
/// prefixed.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// The root, opened once (O_PATH).
    dir: Arc<OwnedFd>,
    /// Whether we may give files away (chown): only as root.
    chown: bool,
}

/// `p` as a path relative to the root: "." for the root itself.
fn rel(p: &Path) -> &OsStr {
    match p.as_os_str() {
        s if s.is_empty() || s == "/" => OsStr::new("."),
        s => OsStr::from_bytes(s.as_bytes().strip_prefix(b"/").unwrap_or(s.as_bytes())),
    }
}

impl LocalBackend {
    /// Serve the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<LocalBackend> {
        let root = root.into();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", root.display()));
        let root = fs::canonicalize(&root).map_err(named)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(&root, flags, Mode::empty()).map_err(io::Error::from)?;
        Ok(LocalBackend { dir: Arc::new(dir), chown: nix::unistd::geteuid().is_root() })
    }

    fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    fn open_at(&self, p: &Path, flags: OFlags, mode: u32) -> BackendResult<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        rustix::fs::openat(self.dir(), rel(p), flags, Mode::from_raw_mode(mode))
            .map_err(|e| errno(e).into())
    }

    fn stat_at(&self, p: &Path) -> BackendResult<FileAttr> {
        let st = rustix::fs::statat(self.dir(), rel(p), AtFlags::SYMLINK_NOFOLLOW);
        Ok(attr(&st.map_err(errno)?))
    }

    /// Give the new node at `p` to `owner`, without following a link.
    fn give(&self, p: &Path, owner: Owner) -> BackendResult<()> {
        if self.chown {
            let (uid, gid) =
                (rustix::fs::Uid::from_raw(owner.uid), rustix::fs::Gid::from_raw(owner.gid));
            rustix::fs::chownat(
                self.dir(),
                rel(p),
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(errno)?;
        }
        Ok(())
    }

    /// chmod, never through a symlink (a chmod of a link must not reach its target).
    fn chmod(&self, p: &Path, mode: u32) -> BackendResult<()> {
        use nix::sys::stat::{fchmodat, FchmodatFlags};
        let mode = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
        fchmodat(self.dir(), rel(p), mode, FchmodatFlags::NoFollowSymlink)
            .map_err(|e| crate::Errno::from_raw(e as i32).into())
    }
}

impl LocalBackend {
    fn list_now(&self, path: &Path) -> BackendResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        let fd = self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
        let mut dir = rustix::fs::Dir::read_from(&fd).map_err(errno)?;
        while let Some(e) = dir.read() {
            let e = e.map_err(errno)?;
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            use rustix::fs::FileType as T;
            let kind = match e.file_type() {
                T::Directory => FileType::Directory,
                T::Symlink => FileType::Symlink,
                T::Fifo => FileType::NamedPipe,
                T::Socket => FileType::Socket,
                T::CharacterDevice => FileType::CharDevice,
                T::BlockDevice => FileType::BlockDevice,
                T::RegularFile => FileType::RegularFile,
                // A filesystem that does not fill d_type: ask.
                _ => self.stat_at(&path.join(name)).map_or(FileType::RegularFile, |a| a.kind),
            };
            out.push(DirEntry::new(name.to_os_string(), kind).with_ino(e.ino()));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create_now(&self, path: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let f = File::from(self.open_at(path, flags, 0o600)?);
        // Owner first: a chown clears the setuid and setgid bits the mode may set. Then
        // fchmod, because the kernel applied the caller's umask already and ours must not be.
        self.give(path, owner)?;
        rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o7777)).map_err(errno)?;
        Ok(attr(&rustix::fs::fstat(&f).map_err(errno)?))
    }

    fn mkdir_now(&self, path: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        rustix::fs::mkdirat(self.dir(), rel(path), Mode::from_raw_mode(0o700)).map_err(errno)?;
        self.give(path, owner)?;
        // A directory made in a setgid directory is setgid too (the source's own mkdir did
        // that; the chmod must keep it).
        let inherited = u32::from(self.stat_at(path)?.perm) & libc::S_ISGID;
        self.chmod(path, (mode & 0o7777) | inherited)?;
        self.stat_at(path)
    }

    fn mknod_now(
        &self,
        path: &Path,
        mode: u32,
        rdev: u32,
        owner: Owner,
    ) -> BackendResult<FileAttr> {
        let kind = rustix::fs::FileType::from_raw_mode(mode);
        let at = rel(path);
        rustix::fs::mknodat(self.dir(), at, kind, Mode::from_raw_mode(0o600), u64::from(rdev))
            .map_err(errno)?;
        // As create: owner first, then the mode the caller asked for.
        self.give(path, owner)?;
        self.chmod(path, mode & 0o7777)?;
        self.stat_at(path)
    }

    fn set_attr_now(
        &self,
        path: &Path,
        f: Option<&File>,
        set: &SetAttr,
    ) -> BackendResult<FileAttr> {
        if let Some(mode) = set.mode {
            self.chmod(path, mode)?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            let uid = set.uid.map(rustix::fs::Uid::from_raw);
            let gid = set.gid.map(rustix::fs::Gid::from_raw);
            rustix::fs::chownat(self.dir(), rel(path), uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno)?;
        }
        if let Some(size) = set.size {
            match f {
                // ftruncate(2) through the open file: it works after the name is gone.
                Some(f) => f.set_len(size)?,
                None => File::from(self.open_at(path, OFlags::WRONLY, 0)?).set_len(size)?,
            }
        }
        if set.atime.is_some() || set.mtime.is_some() {
            use rustix::fs::{Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
            let ts = |t: Option<TimeOrNow>| match t {
                None => Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT },
                Some(TimeOrNow::Now) => Timespec { tv_sec: 0, tv_nsec: UTIME_NOW },
                Some(TimeOrNow::Time(t)) => {
                    let (sec, nsec) = split_time(t);
                    Timespec { tv_sec: sec, tv_nsec: nsec.into() }
                }
            };
            let times = Timestamps { last_access: ts(set.atime), last_modification: ts(set.mtime) };
            rustix::fs::utimensat(self.dir(), rel(path), &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno)?;
        }
        self.stat_at(path)
    }

    fn statfs_now(&self) -> BackendResult<Statfs> {
        let s = nix::sys::statvfs::fstatvfs(self.dir())
            .map_err(|e| crate::Errno::from_raw(e as i32))?;
        Ok(Statfs {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            namelen: s.name_max() as u32,
            frsize: s.fragment_size() as u32,
        })
    }
}

/// Read up to `size` bytes at `offset` of `f`: fewer only at end of file.
fn read_at(f: &File, offset: u64, size: u32) -> BackendResult<Vec<u8>> {
    let mut buf = vec![0; size as usize];
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

impl Backend for LocalBackend {
    /// The open descriptor, shared with the blocking pool's threads for each call.
    type Handle = Arc<File>;

    async fn stat(&self, path: &Path) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        blocking(self, move |b| b.stat_at(&p)).await
    }
    async fn list(&self, path: &Path) -> BackendResult<Vec<DirEntry>> {
        let p = path.to_path_buf();
        blocking(self, move |b| b.list_now(&p)).await
    }
    async fn open(
        &self,
        path: &Path,
        flags: i32,
        _: Option<&FileAttr>,
    ) -> BackendResult<Arc<File>> {
        // Only the access mode and O_SYNC/O_DSYNC carry over: the kernel gives each write its
        // offset (O_APPEND would make pwrite(2) ignore it), and O_DIRECT wants aligned
        // buffers ours are not.
        let keep = (flags & (libc::O_ACCMODE | libc::O_SYNC | libc::O_DSYNC)) as u32;
        let (p, flags) = (path.to_path_buf(), OFlags::from_bits_truncate(keep));
        blocking(self, move |b| Ok(Arc::new(File::from(b.open_at(&p, flags, 0)?)))).await
    }
    async fn read(
        &self,
        f: &Arc<File>,
        _: &Path,
        offset: u64,
        size: u32,
    ) -> BackendResult<Vec<u8>> {
        let f = Arc::clone(f);
        blocking(self, move |_| read_at(&f, offset, size)).await
    }
    async fn write(
        &self,
        f: &Arc<File>,
        _: &Path,
        offset: u64,
        data: Vec<u8>,
    ) -> BackendResult<usize> {
        let f = Arc::clone(f);
        blocking(self, move |_| Ok(f.write_all_at(&data, offset).map(|()| data.len())?)).await
    }
    async fn fsync(&self, f: &Arc<File>, _: &Path, datasync: bool) -> BackendResult<()> {
        let f = Arc::clone(f);
        blocking(self, move |_| Ok(if datasync { f.sync_data() } else { f.sync_all() }?)).await
    }
    async fn stat_open(&self, f: &Arc<File>, _: &Path) -> BackendResult<FileAttr> {
        let f = Arc::clone(f);
        blocking(self, move |_| Ok(attr(&rustix::fs::fstat(&*f).map_err(errno)?))).await
    }
    async fn create(&self, path: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        blocking(self, move |b| b.create_now(&p, mode, owner)).await
    }
    async fn mkdir(&self, path: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        blocking(self, move |b| b.mkdir_now(&p, mode, owner)).await
    }
    async fn mknod(
        &self,
        path: &Path,
        mode: u32,
        rdev: u32,
        owner: Owner,
    ) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        blocking(self, move |b| b.mknod_now(&p, mode, rdev, owner)).await
    }
    async fn link(&self, from: &Path, to: &Path) -> BackendResult<FileAttr> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        blocking(self, move |b| {
            rustix::fs::linkat(b.dir(), rel(&from), b.dir(), rel(&to), AtFlags::empty())
                .map_err(errno)?;
            b.stat_at(&to)
        })
        .await
    }
    async fn remove(&self, path: &Path, dir: bool) -> BackendResult<()> {
        let (p, flags) =
            (path.to_path_buf(), if dir { AtFlags::REMOVEDIR } else { AtFlags::empty() });
        blocking(self, move |b| Ok(rustix::fs::unlinkat(b.dir(), rel(&p), flags).map_err(errno)?))
            .await
    }
    async fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        blocking(self, move |b| {
            Ok(rustix::fs::renameat(b.dir(), rel(&from), b.dir(), rel(&to)).map_err(errno)?)
        })
        .await
    }
    async fn symlink(&self, path: &Path, target: &Path, owner: Owner) -> BackendResult<FileAttr> {
        let (p, target) = (path.to_path_buf(), target.to_path_buf());
        blocking(self, move |b| {
            rustix::fs::symlinkat(&target, b.dir(), rel(&p)).map_err(errno)?;
            b.give(&p, owner)?;
            b.stat_at(&p)
        })
        .await
    }
    async fn readlink(&self, path: &Path) -> BackendResult<PathBuf> {
        let p = path.to_path_buf();
        blocking(self, move |b| {
            let target = rustix::fs::readlinkat(b.dir(), rel(&p), Vec::new()).map_err(errno)?;
            Ok(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
        })
        .await
    }
    async fn set_attr(
        &self,
        path: &Path,
        f: Option<&Arc<File>>,
        set: &SetAttr,
    ) -> BackendResult<FileAttr> {
        let (p, f, set) = (path.to_path_buf(), f.cloned(), *set);
        blocking(self, move |b| b.set_attr_now(&p, f.as_deref(), &set)).await
    }
    async fn statfs(&self) -> BackendResult<Statfs> {
        blocking(self, |b| b.statfs_now()).await
    }
}
