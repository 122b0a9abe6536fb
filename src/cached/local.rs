//! `LocalBackend`: a directory of the local filesystem, as a `BlockingBackend` (serve it with
//! `Blocking::new(LocalBackend::new(dir)?)`).

use super::backend::{BackendResult, BlockingBackend, DirEntry};
use crate::Errno;
use fusefs_session::op::{SetAttr, TimeOrNow};
use fusefs_session::proto::time::{split_time, system_time};
use fusefs_session::{FileAttr, FileType, Statfs};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files under `root`, served as a backend. Each call is a syscall or few; nothing is
/// cached here (that is `CachedFs`'s job).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
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
        Ok(LocalBackend { root })
    }

    fn full(&self, p: &Path) -> PathBuf {
        self.root.join(p)
    }

    fn stat_full(&self, p: &Path) -> BackendResult<FileAttr> {
        fs::symlink_metadata(p).map(|m| attr(&m)).map_err(errno)
    }
}

impl BlockingBackend for LocalBackend {
    fn stat(&self, path: &Path) -> BackendResult<FileAttr> {
        self.stat_full(&self.full(path))
    }

    fn list(&self, path: &Path) -> BackendResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.full(path)).map_err(errno)? {
            let e = e.map_err(errno)?;
            let ft = e.file_type().map_err(errno)?;
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
            out.push(DirEntry { name: e.file_name(), kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, path: &Path, offset: u64, buf: &mut [u8]) -> BackendResult<usize> {
        let f = File::open(self.full(path)).map_err(errno)?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        Ok(done)
    }

    fn fsync(&self, path: &Path, datasync: bool) -> BackendResult<()> {
        // fsync(2) on any descriptor of the file flushes the file.
        let f = fs::File::open(self.full(path)).map_err(errno)?;
        if datasync { f.sync_data() } else { f.sync_all() }.map_err(errno)
    }

    fn write(&self, path: &Path, offset: u64, data: &[u8]) -> BackendResult<usize> {
        let f = OpenOptions::new().write(true).open(self.full(path)).map_err(errno)?;
        f.write_all_at(data, offset).map_err(errno)?;
        Ok(data.len())
    }

    fn create(&self, path: &Path, mode: u32) -> BackendResult<FileAttr> {
        let p = self.full(path);
        let f =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p).map_err(errno)?;
        // The kernel applied the caller's umask already; fchmod so ours is not applied again.
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
        self.stat_full(&p)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> BackendResult<FileAttr> {
        let p = self.full(path);
        fs::create_dir(&p).map_err(errno)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
        self.stat_full(&p)
    }

    fn remove(&self, path: &Path, dir: bool) -> BackendResult<()> {
        let p = self.full(path);
        if dir { fs::remove_dir(p) } else { fs::remove_file(p) }.map_err(errno)
    }

    fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        fs::rename(self.full(from), self.full(to)).map_err(errno)
    }

    fn symlink(&self, path: &Path, target: &Path) -> BackendResult<FileAttr> {
        let p = self.full(path);
        std::os::unix::fs::symlink(target, &p).map_err(errno)?;
        self.stat_full(&p)
    }

    fn readlink(&self, path: &Path) -> BackendResult<PathBuf> {
        fs::read_link(self.full(path)).map_err(errno)
    }

    fn set_attr(&self, path: &Path, set: &SetAttr) -> BackendResult<FileAttr> {
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
            .map_err(|e| Errno::from_raw(e as i32))?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            std::os::unix::fs::lchown(&p, set.uid, set.gid).map_err(errno)?;
        }
        if let Some(size) = set.size {
            OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(size)).map_err(errno)?;
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
            .map_err(|e| Errno::from_raw(e as i32))?;
        }
        self.stat_full(&p)
    }

    fn statfs(&self) -> BackendResult<Statfs> {
        let s = nix::sys::statvfs::statvfs(&self.root).map_err(|e| Errno::from_raw(e as i32))?;
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
