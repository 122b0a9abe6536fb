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
        let mnt_id = mount_id(&path)?;
        let as_root = nix::unistd::geteuid().is_root();
        let helper = if as_root { None } else { Some(FusermountUnmount::new(&path)?) };
        let (read_end, goodbye) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
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

    /// The daemon unmounted (or is about to exit cleanly): tell the watcher to go, and reap
    /// it.
    pub(crate) fn release(self) {
        // If the byte cannot be written the watcher sees end of file, checks the mount id
        // and finds it gone, which ends it the same way.
        let _ = nix::unistd::write(&self.goodbye, &[1]);
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

/// `statx(path, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_MNT_ID)`: the id of the mount
/// whose root is `path`, read from the inode the kernel holds, so a FUSE mount is not sent
/// a request (which a dead daemon would never answer).
fn mount_id(path: &CStr) -> io::Result<u64> {
    // SAFETY: `path` is NUL-terminated and `out` is ours, zeroed, of the type statx writes.
    // Async-signal-safe (one syscall), so the watcher may call it after fork.
    unsafe {
        let mut out: libc::statx = std::mem::zeroed();
        let flags = libc::AT_STATX_DONT_SYNC | libc::AT_NO_AUTOMOUNT | libc::AT_SYMLINK_NOFOLLOW;
        if libc::statx(libc::AT_FDCWD, path.as_ptr(), flags, libc::STATX_MNT_ID, &mut out) != 0 {
            return Err(io::Error::last_os_error());
        }
        if out.stx_mask & libc::STATX_MNT_ID == 0 {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "statx gives no mount id"));
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
        // connection alive. Keep stdio and the pipe (moved to fd 3).
        if pipe != 3 && libc::dup2(pipe, 3) != 3 {
            libc::_exit(1);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        // The terminal's SIGINT and SIGHUP go to the daemon's whole process group, and the
        // daemon unmounts on them: the watcher must outlive that. Everything else as a new
        // process would have it.
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
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
        if mount_id(path).ok() != Some(mnt_id) {
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
