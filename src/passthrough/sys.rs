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
/// With `umask` (the caller's, which the kernel leaves to us when DONT_MASK was granted) the
/// thread's umask is the caller's for the call too, so the source applies it, or instead a
/// default ACL of the parent directory, as for a local caller. The umask is per process
/// unless the thread has its own filesystem context: each thread unshares it (CLONE_FS)
/// once, at its first such call.
///
/// Supplementary groups are not switched: the kernel has already checked the caller's
/// permission with all its groups (`default_permissions`), but the source checks again with
/// the fsgid alone, so a directory writable only through a supplementary group refuses.
pub(super) struct AsCaller {
    uid: Uid,
    gid: Gid,
    umask: Option<nix::sys::stat::Mode>,
}

thread_local! {
    /// Whether this thread has its own umask (CLONE_FS unshared): `None` until first asked.
    static OWN_UMASK: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Give this thread its own umask, once; false if it cannot have one.
fn own_umask() -> bool {
    OWN_UMASK.with(|own| {
        own.get().unwrap_or_else(|| {
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).is_ok();
            own.set(Some(ok));
            ok
        })
    })
}

impl AsCaller {
    /// Act as `uid`:`gid`, with the caller's `umask` if given. EIO if the umask cannot be
    /// made this thread's alone (never seen: unsharing CLONE_FS needs no privilege), rather
    /// than create a file with the wrong mode.
    pub(super) fn new(uid: u32, gid: u32, umask: Option<u32>) -> Result<AsCaller, Errno> {
        let umask = match umask {
            None => None,
            Some(_) if !own_umask() => return Err(Errno::EIO),
            Some(m) => {
                Some(nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m & 0o777)))
            }
        };
        // Group first: with the fsuid already switched, the fsgid could not be.
        let gid = setfsgid(Gid::from_raw(gid));
        let uid = setfsuid(Uid::from_raw(uid));
        Ok(AsCaller { uid, gid, umask })
    }
}

impl Drop for AsCaller {
    fn drop(&mut self) {
        setfsuid(self.uid);
        setfsgid(self.gid);
        if let Some(m) = self.umask {
            nix::sys::stat::umask(m);
        }
    }
}
