//! `LocalBackend`: a directory of the local filesystem, as a `BlockingBackend` (serve it with
//! `Blocking::new(LocalBackend::new(dir)?)`).

use super::backend::{BackendResult, BlockingBackend, DirEntry, Owner};
use crate::Errno;
use fusefs_session::op::{SetAttr, TimeOrNow};
use fusefs_session::proto::time::{split_time, system_time};
use fusefs_session::{FileAttr, FileType, Statfs};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files under `root`, served as a backend. Each call is a syscall or few; nothing is
/// cached here (that is `CachedFs`'s job). An open file is a descriptor, so it stays usable
/// after it is renamed over or removed, as POSIX wants. New files, directories and links get
/// the caller's ownership when the daemon runs as root (as any local filesystem gives them),
/// and the daemon's otherwise.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
    /// Whether we may give files away (chown): only as root.
    chown: bool,
}

fn nix_errno(e: nix::errno::Errno) -> Errno {
    Errno::from_raw(e as i32)
}

fn attr(m: &fs::Metadata) -> FileAttr {
    let t = |s: i64, n: i64| system_time(s, n as u32);
    let kind = FileType::from_mode(m.mode()).unwrap_or(FileType::RegularFile);
    FileAttr {
        ino: m.ino(),
        size: m.size(),
        blocks: m.blocks(),
        atime: t(m.atime(), m.atime_nsec()),
        mtime: t(m.mtime(), m.mtime_nsec()),
        ctime: t(m.ctime(), m.ctime_nsec()),
        kind,
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

impl LocalBackend {
    /// Serve the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<LocalBackend> {
        let root = fs::canonicalize(root.into())?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(LocalBackend { root, chown: nix::unistd::geteuid().is_root() })
    }

    fn full(&self, p: &Path) -> PathBuf {
        self.root.join(p)
    }

    fn stat_full(&self, p: &Path) -> BackendResult<FileAttr> {
        Ok(fs::symlink_metadata(p).map(|m| attr(&m))?)
    }

    /// Give the new node at `p` to `owner`, without following a link.
    fn give(&self, p: &Path, owner: Owner) -> BackendResult<()> {
        if self.chown {
            std::os::unix::fs::lchown(p, Some(owner.uid), Some(owner.gid))?;
        }
        Ok(())
    }
}

impl BlockingBackend for LocalBackend {
    /// The open descriptor.
    type Handle = File;

    fn stat(&self, path: &Path) -> BackendResult<FileAttr> {
        self.stat_full(&self.full(path))
    }

    fn list(&self, path: &Path) -> BackendResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.full(path))? {
            let e = e?;
            let ft = e.file_type()?;
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_dir() {
                FileType::Directory
            } else if ft.is_symlink() {
                FileType::Symlink
            } else if ft.is_fifo() {
                FileType::NamedPipe
            } else if ft.is_socket() {
                FileType::Socket
            } else if ft.is_char_device() {
                FileType::CharDevice
            } else if ft.is_block_device() {
                FileType::BlockDevice
            } else {
                FileType::RegularFile
            };
            use std::os::unix::fs::DirEntryExt;
            out.push(DirEntry::new(e.file_name(), kind).with_ino(e.ino()));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn open(&self, path: &Path, flags: i32, _: Option<&FileAttr>) -> BackendResult<File> {
        // Only the access mode and O_SYNC/O_DSYNC carry over: the kernel gives each write its
        // offset (O_APPEND would make pwrite(2) ignore it), and O_DIRECT wants aligned
        // buffers ours are not.
        let mode = flags & libc::O_ACCMODE;
        Ok(OpenOptions::new()
            .read(mode != libc::O_WRONLY)
            .write(mode != libc::O_RDONLY)
            .custom_flags(flags & (libc::O_SYNC | libc::O_DSYNC))
            .open(self.full(path))?)
    }

    fn read(&self, f: &File, _: &Path, offset: u64, buf: &mut [u8]) -> BackendResult<usize> {
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(done)
    }

    fn write(&self, f: &File, _: &Path, offset: u64, data: &[u8]) -> BackendResult<usize> {
        f.write_all_at(data, offset)?;
        Ok(data.len())
    }

    fn fsync(&self, f: &File, _: &Path, datasync: bool) -> BackendResult<()> {
        Ok(if datasync { f.sync_data() } else { f.sync_all() }?)
    }

    fn stat_open(&self, f: &File, _: &Path) -> BackendResult<FileAttr> {
        Ok(attr(&f.metadata()?))
    }

    fn create(&self, path: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        let p = self.full(path);
        let f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p)?;
        // Owner first: a chown clears the setuid and setgid bits the mode may set. Then
        // fchmod, because the kernel applied the caller's umask already and ours must not be.
        self.give(&p, owner)?;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        self.stat_full(&p)
    }

    fn mkdir(&self, path: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        let p = self.full(path);
        fs::create_dir(&p)?;
        self.give(&p, owner)?;
        // A directory made in a setgid directory is setgid too (the source's own mkdir did
        // that; the chmod must keep it).
        let inherited = fs::symlink_metadata(&p)?.mode() & libc::S_ISGID;
        fs::set_permissions(&p, fs::Permissions::from_mode((mode & 0o7777) | inherited))?;
        self.stat_full(&p)
    }

    fn mknod(&self, path: &Path, mode: u32, rdev: u32, owner: Owner) -> BackendResult<FileAttr> {
        use nix::sys::stat::{mknod, Mode, SFlag};
        let p = self.full(path);
        let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
        mknod(&p, kind, Mode::from_bits_truncate(0o600), u64::from(rdev)).map_err(nix_errno)?;
        // As create: owner first, then the mode the caller asked for.
        self.give(&p, owner)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o7777))?;
        self.stat_full(&p)
    }

    fn link(&self, from: &Path, to: &Path) -> BackendResult<FileAttr> {
        let t = self.full(to);
        fs::hard_link(self.full(from), &t)?;
        self.stat_full(&t)
    }

    fn remove(&self, path: &Path, dir: bool) -> BackendResult<()> {
        let p = self.full(path);
        Ok(if dir { fs::remove_dir(p) } else { fs::remove_file(p) }?)
    }

    fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        Ok(fs::rename(self.full(from), self.full(to))?)
    }

    fn symlink(&self, path: &Path, target: &Path, owner: Owner) -> BackendResult<FileAttr> {
        let p = self.full(path);
        std::os::unix::fs::symlink(target, &p)?;
        self.give(&p, owner)?;
        self.stat_full(&p)
    }

    fn readlink(&self, path: &Path) -> BackendResult<PathBuf> {
        Ok(fs::read_link(self.full(path))?)
    }

    fn set_attr(&self, path: &Path, f: Option<&File>, set: &SetAttr) -> BackendResult<FileAttr> {
        let p = self.full(path);
        if let Some(mode) = set.mode {
            // Never through a symlink: a chmod of a link must not reach its target.
            use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
            fchmodat(
                nix::fcntl::AT_FDCWD,
                &p,
                Mode::from_bits_truncate(mode & 0o7777),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(nix_errno)?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            std::os::unix::fs::lchown(&p, set.uid, set.gid)?;
        }
        if let Some(size) = set.size {
            match f {
                // ftruncate(2) through the open file: it works after the name is gone.
                Some(f) => f.set_len(size)?,
                None => OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(size))?,
            }
        }
        if set.atime.is_some() || set.mtime.is_some() {
            use nix::sys::stat::{utimensat, UtimensatFlags};
            use nix::sys::time::TimeSpec;
            let ts = |t: Option<TimeOrNow>| match t {
                None => TimeSpec::UTIME_OMIT,
                Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
                Some(TimeOrNow::Time(t)) => {
                    let (sec, nsec) = split_time(t);
                    TimeSpec::new(sec, i64::from(nsec))
                }
            };
            utimensat(
                nix::fcntl::AT_FDCWD,
                &p,
                &ts(set.atime),
                &ts(set.mtime),
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(nix_errno)?;
        }
        self.stat_full(&p)
    }

    fn statfs(&self) -> BackendResult<Statfs> {
        let s = nix::sys::statvfs::statvfs(&self.root).map_err(nix_errno)?;
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
