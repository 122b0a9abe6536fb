//! `auto_unmount`'s own watcher: a forked process of ours that unmounts when the daemon
//! dies, where fusermount3's watcher does not.
//!
//! fusermount3's `auto_unmount` waits for its socket to close, then opens the mountpoint
//! and unmounts only if that fails with ENOTCONN. Two cases defeat it:
//! - a daemon killed while io_uring holds its /dev/fuse fd (`uring`, `fuse-uring`): the
//!   socket closes at once, but the kernel ends the connection only once io_uring has torn
//!   the dead process's rings down; fusermount3 looks first, gets ECONNABORTED, and leaves
//!   the mount;
//! - an unprivileged user's mount without `allow_other`: fusermount3, setuid root, may not
//!   open it at all (EACCES) and leaves it (libfuse issue 586, fixed upstream in 2023, after
//!   the fuse3 3.14 that Debian bookworm ships).
//!
//! This watcher asks the connection nothing. It notes the mount's id (`statx`'s
//! `stx_mnt_id`) while the mount is served; when its pipe reaches end of file without the
//! goodbye byte, the daemon is gone, and if the mountpoint still holds that same mount it
//! detaches it: `umount2(MNT_DETACH)` as root, `fusermount3 -u -z` as anyone else (as the
//! user, who owns the mount).
//!
//! The watcher is a fork that does not exec (a library cannot count on a helper binary of
//! its own being installed), so it shares the daemon's memory as it was at mount time,
//! copy-on-write: the pages the daemon changes later stay allocated once more, in the
//! watcher, bounded by the daemon's size at mount time.
//!
//! `unsafe` here: fork, and the child's raw syscalls. A fork of a threaded process may run
//! only async-signal-safe code until it execs or exits, so everything the child needs (the
//! path, the helper's argv) is made before forking and the child calls nothing that
//! allocates or takes a lock.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The forked watcher of one mount, and our end of its pipe.
#[derive(Debug)]
pub(crate) struct UnmountWatcher {
    /// The write end: a byte on it says "unmounted cleanly, go"; its end of file with no
    /// byte says "the daemon is dead".
    goodbye: OwnedFd,
    pid: libc::pid_t,
}

/// The command name the watcher shows in `ps` and /proc/PID/comm.
const WATCHER_NAME: &CStr = c"auto_unmount";

impl UnmountWatcher {
    /// Fork a watcher for the FUSE mount at `mountpoint`, which must be mounted now.
    pub(crate) fn spawn(mountpoint: &Path) -> io::Result<UnmountWatcher> {
        let path = CString::new(mountpoint.as_os_str().as_bytes())?;
        let mnt_id = mount_id(&path).map_err(|e| {
            io::Error::new(io::Error::from_raw_os_error(e).kind(), format!("statx mount id: {e}"))
        })?;
        let as_root = nix::unistd::geteuid().is_root();
        let helper = if as_root { None } else { Some(FusermountUnmount::new(&path)?) };
        // A socket rather than a pipe: the goodbye is sent with MSG_NOSIGNAL, so a watcher
        // that is gone costs no SIGPIPE in a host that has not ignored it.
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (read_end, goodbye) =
            socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)?;
        // SAFETY: fork has no memory-safety preconditions; the child below runs only
        // async-signal-safe calls on data made before the fork, then execs or exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            watch(read_end.as_raw_fd(), &path, mnt_id, helper.as_ref());
        }
        drop(read_end);
        log::debug!("auto_unmount: watcher {pid} for {} (mount {mnt_id})", mountpoint.display());
        Ok(UnmountWatcher { goodbye, pid })
    }

    /// Let the watcher go, and reap it. `unmounted`: the daemon unmounted, so the watcher
    /// is told goodbye and does nothing. Otherwise (the unmount failed) it is left to try:
    /// it sees end of file, and detaches the mount if it is still there.
    pub(crate) fn release(self, unmounted: bool) {
        if unmounted {
            // If the byte cannot be sent the watcher sees end of file, checks the mount id
            // and finds it gone, which ends it the same way.
            use nix::sys::socket::{send, MsgFlags};
            let _ = send(self.goodbye.as_raw_fd(), &[1], MsgFlags::MSG_NOSIGNAL);
        }
        drop(self.goodbye);
        reap(self.pid, "the auto_unmount watcher");
    }
}

/// Wait for our child `pid` to exit; one that has not within 5 s is killed, so that
/// unmounting never hangs on a helper.
pub(crate) fn reap(pid: libc::pid_t, what: &str) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(WaitStatus::StillAlive) => {
                log::warn!("{what} (pid {pid}) did not exit: killed");
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return;
            }
            Err(nix::Error::EINTR) => {}
            // Exited, or not ours to wait for any more.
            _ => return,
        }
    }
}

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): a mount id never given to another mount, where
/// `STATX_MNT_ID`'s is reused once its mount is gone.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

/// `statx(path, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_MNT_ID_UNIQUE | STATX_MNT_ID)`:
/// the id of the mount whose root is `path` (the unique one where the kernel has it), read
/// from the inode the kernel holds, so a FUSE mount is not sent a request (which a dead
/// daemon would never answer). An errno on failure: nothing here allocates, so the watcher
/// may call it after fork.
pub(crate) fn mount_id(path: &CStr) -> Result<u64, i32> {
    // SAFETY: `path` is NUL-terminated and `out` is ours, zeroed, of the type statx writes.
    // One syscall, async-signal-safe.
    unsafe {
        let mut out: libc::statx = std::mem::zeroed();
        let flags = libc::AT_STATX_DONT_SYNC | libc::AT_NO_AUTOMOUNT | libc::AT_SYMLINK_NOFOLLOW;
        let mask = STATX_MNT_ID_UNIQUE | libc::STATX_MNT_ID;
        if libc::statx(libc::AT_FDCWD, path.as_ptr(), flags, mask, &mut out) != 0 {
            return Err(*libc::__errno_location());
        }
        if out.stx_mask & (STATX_MNT_ID_UNIQUE | libc::STATX_MNT_ID) == 0 {
            return Err(libc::ENOSYS);
        }
        Ok(out.stx_mnt_id)
    }
}

/// `fusermount3 -u -q -z -- MOUNTPOINT`, resolved and laid out before the fork: an
/// unprivileged watcher unmounts through the setuid helper.
struct FusermountUnmount {
    program: CString,
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
}

impl FusermountUnmount {
    fn new(mountpoint: &CStr) -> io::Result<FusermountUnmount> {
        let program = find_in_path("fusermount3").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "auto_unmount needs fusermount3 (package fuse3)",
            )
        })?;
        let program = CString::new(program.as_os_str().as_bytes())?;
        let args: Vec<CString> = ["fusermount3", "-u", "-q", "-z", "--"]
            .iter()
            .map(|a| CString::new(*a).expect("no NUL"))
            .chain([mountpoint.to_owned()])
            .collect();
        let argv = args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
        Ok(FusermountUnmount { program, _args: args, argv })
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&dirs).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The watcher: wait for the goodbye byte or the end of the pipe; on end of file, detach
/// the mount if it is still the one we watched. Never returns.
fn watch(pipe: libc::c_int, path: &CStr, mnt_id: u64, helper: Option<&FusermountUnmount>) -> ! {
    // SAFETY: from here to the end only async-signal-safe syscalls run, on memory made
    // before the fork (the child has its own copy) or on the stack.
    unsafe {
        // Hold nothing of the daemon's: a /dev/fuse or io_uring fd kept here would keep the
        // connection alive, and our copy of the other end of the socket would hide the
        // daemon's death. The socket moves to fd 3 (close-on-exec: fusermount3 needs none
        // of ours), /dev/null takes fds 0 to 2, and everything above is closed.
        if pipe != 3 && libc::dup2(pipe, 3) != 3 {
            libc::_exit(1);
        }
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            if null < 0 || (null != fd && libc::dup2(null, fd) != fd) {
                libc::_exit(1);
            }
        }
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            // No close_range (before Linux 5.9, or a seccomp filter): one at a time.
            let mut limit: libc::rlimit = std::mem::zeroed();
            let max = match libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) {
                0 => limit.rlim_cur.min(1 << 20) as libc::c_int,
                _ => 1 << 16,
            };
            for fd in 4..max {
                libc::close(fd);
            }
        }
        // A session of its own: the terminal's signals (Ctrl-C, Ctrl-\, a hangup), which the
        // daemon unmounts on, do not reach it, and everything else is as a new process has it.
        libc::setsid();
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_NAME, WATCHER_NAME.as_ptr());
        let mut byte = 0u8;
        loop {
            match libc::read(3, (&mut byte as *mut u8).cast(), 1) {
                1 => libc::_exit(0),
                0 => break,
                _ if *libc::__errno_location() == libc::EINTR => {}
                _ => libc::_exit(1),
            }
        }
        // The daemon is gone. Unmounted cleanly before it went, or replaced by another mount
        // since: not ours to touch.
        if mount_id(path) != Ok(mnt_id) {
            libc::_exit(0);
        }
        match helper {
            None => {
                libc::umount2(path.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW);
            }
            Some(h) => {
                libc::execv(h.program.as_ptr(), h.argv.as_ptr());
            }
        }
        libc::_exit(0)
    }
}
