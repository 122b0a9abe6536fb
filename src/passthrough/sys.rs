//! The system calls the passthrough filesystem makes on its source, in the shapes it needs:
//! stat into a `FileAttr`, a node's path under /proc/self/fd, and the caller's credentials
//! for the calls that create files.

use fusefs_session::{Errno, FileAttr, FileType};
use nix::unistd::{setfsgid, setfsuid, Gid, Uid};
use rustix::fs::{AtFlags, Stat};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A system call's error as the errno to answer with.
pub(crate) fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// `fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: the attributes of what `fd` (an
/// O_PATH fd) names, whatever its type.
pub(super) fn stat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    rustix::fs::statat(fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
}

/// (st_dev, st_ino): which source inode a stat describes.
// The casts are no-ops on x86_64 only: `struct stat`'s field types differ by architecture.
#[allow(clippy::unnecessary_cast)]
pub(super) fn key(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// A `struct stat` as FUSE attributes. The inode number stays the source's, so that
/// `st_ino` and a listing's `d_ino` agree and survive remounts (the node id is ours).
#[allow(clippy::unnecessary_cast)] // as in `key`
pub(crate) fn attr(st: &Stat) -> FileAttr {
    let time = |s: i64, ns: u64| {
        if s >= 0 {
            UNIX_EPOCH + Duration::new(s as u64, ns as u32)
        } else {
            UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(ns)
        }
    };
    FileAttr {
        ino: st.st_ino,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime as i64, st.st_atime_nsec as u64),
        mtime: time(st.st_mtime as i64, st.st_mtime_nsec as u64),
        ctime: time(st.st_ctime as i64, st.st_ctime_nsec as u64),
        kind: kind(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

/// The file type in a `st_mode` (a regular file for anything unknown).
pub(super) fn kind(mode: u32) -> FileType {
    FileType::from_mode(mode).unwrap_or(FileType::RegularFile)
}

/// `/proc/self/fd/N`: how to reach what an O_PATH fd names with calls that take a path and
/// no fd (reopening it for I/O, xattrs, chmod). Following it lands on the node itself, also
/// for a symlink.
pub(super) fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Reopen the node behind O_PATH `fd` with `flags` (through /proc/self/fd, as an O_PATH fd
/// cannot be read or written).
pub(super) fn reopen(
    fd: BorrowedFd<'_>,
    flags: rustix::fs::OFlags,
) -> Result<std::fs::File, Errno> {
    let flags = flags | rustix::fs::OFlags::CLOEXEC;
    rustix::fs::open(proc_path(fd), flags, rustix::fs::Mode::empty())
        .map(std::fs::File::from)
        .map_err(errno)
}

/// A `SystemTime` as a timespec for utimensat.
pub(super) fn timespec(t: SystemTime) -> rustix::fs::Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => {
            rustix::fs::Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as _ }
        }
        Err(e) => {
            let d = e.duration();
            let (s, ns) = (d.as_secs() as i64, d.subsec_nanos());
            if ns == 0 {
                rustix::fs::Timespec { tv_sec: -s, tv_nsec: 0 }
            } else {
                rustix::fs::Timespec { tv_sec: -s - 1, tv_nsec: (1_000_000_000 - ns) as _ }
            }
        }
    }
}

/// This thread acting as the caller for the calls that create files: fsuid and fsgid set to
/// the caller's (per thread on Linux), so the source assigns owner and group itself, setgid
/// directories and all; put back on drop. A daemon that is not root cannot switch and
/// creates files as itself, as an unprivileged mount should.
///
/// Supplementary groups are not switched: the kernel has already checked the caller's
/// permission with all its groups (`default_permissions`), but the source checks again with
/// the fsgid alone, so a directory writable only through a supplementary group refuses.
pub(super) struct AsCaller {
    uid: Uid,
    gid: Gid,
}

impl AsCaller {
    pub(super) fn new(uid: u32, gid: u32) -> AsCaller {
        // Group first: with the fsuid already switched, the fsgid could not be.
        let gid = setfsgid(Gid::from_raw(gid));
        let uid = setfsuid(Uid::from_raw(uid));
        AsCaller { uid, gid }
    }
}

impl Drop for AsCaller {
    fn drop(&mut self) {
        setfsuid(self.uid);
        setfsgid(self.gid);
    }
}
