//! Mounting and unmounting: mount(2) as root, `fusermount3` for everyone else.

use crate::config::{MountMethod, MountOptions};
use crate::dev::FuseDev;
use crate::unmount_watcher::{mount_id, reap, UnmountWatcher};
use nix::mount::{MntFlags, MsFlags};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted FUSE filesystem: the path, how it was mounted, and the kernel connection id.
/// [`Mount::unmount`] undoes it; the session calls that when dropped.
#[derive(Debug)]
pub(crate) struct Mount {
    mountpoint: PathBuf,
    via_fusermount: bool,
    conn_id: Option<u32>,
    /// The mount's id (`statx` STATX_MNT_ID_UNIQUE where the kernel has it): after an
    /// unmount from outside, another mount may stand at the mountpoint, even with the same
    /// connection number; this tells ours apart.
    mnt_id: Option<u64>,
    mounted: bool,
    /// With `auto_unmount`: the fusermount3 that stays behind, and our end of its socket.
    watcher: Option<AutoUnmount>,
    /// With `auto_unmount`: our own watcher too, which unmounts where fusermount3's does not
    /// (see [`UnmountWatcher`]).
    own_watcher: Option<UnmountWatcher>,
}

/// `fusermount3 -o auto_unmount` after mounting waits for its socket to close, then unmounts
/// and exits: the socket closes when this process dies, however it dies (unless a child
/// forked without exec still holds a copy: it is CLOEXEC, not closed at fork). A clean
/// unmount closes it too, and reaps the helper (it is our child; nobody else would).
#[derive(Debug)]
struct AutoUnmount {
    socket: OwnedFd,
    helper: std::process::Child,
}

impl AutoUnmount {
    /// Let the helper go (it finds the filesystem unmounted already, or unmounts it) and
    /// reap it; one that has not gone within 5 s (it may be checking a mount nobody serves
    /// yet) is killed, so that unmounting never hangs on it.
    fn release(self) {
        let AutoUnmount { socket, helper } = self;
        drop(socket);
        reap(helper.id() as libc::pid_t, "fusermount3 (auto_unmount)");
    }
}

/// The mountpoint must exist and be a directory (or, for a file mount, a regular file).
fn check_mountpoint(path: &Path) -> io::Result<(PathBuf, u32)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let what = if e.kind() == io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else {
            format!("cannot be examined: {e}")
        };
        io::Error::new(e.kind(), format!("mountpoint {} {what}", path.display()))
    })?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("mountpoint {} is not a directory", path.display()),
        ));
    }
    let abs = std::fs::canonicalize(path)?;
    Ok((abs, meta.mode() & libc::S_IFMT))
}

impl Mount {
    /// Mount a FUSE filesystem at `mountpoint` and return the /dev/fuse fd that serves it.
    pub(crate) fn new(mountpoint: &Path, opts: &MountOptions) -> io::Result<(FuseDev, Mount)> {
        let (mountpoint, rootmode) = check_mountpoint(mountpoint)?;
        let use_syscall = match opts.method {
            MountMethod::Syscall if opts.auto_unmount => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "auto_unmount needs fusermount3: not with MountMethod::Syscall",
                ))
            }
            MountMethod::Syscall => true,
            MountMethod::Fusermount => false,
            // mount(2) has no auto_unmount: only fusermount3 can watch for our death.
            MountMethod::Auto => nix::unistd::geteuid().is_root() && !opts.auto_unmount,
        };
        let (dev, via_fusermount, watcher) = if use_syscall {
            match mount_syscall(&mountpoint, rootmode, opts) {
                Ok(dev) => (dev, false, None),
                // Root without CAP_SYS_ADMIN (a container): the setuid helper may still work.
                Err(e)
                    if opts.method == MountMethod::Auto
                        && e.kind() == io::ErrorKind::PermissionDenied =>
                {
                    log::info!("{e}; trying fusermount3");
                    let (dev, watcher) = mount_fusermount(&mountpoint, opts)?;
                    (dev, true, watcher)
                }
                Err(e) => return Err(e),
            }
        } else {
            let (dev, watcher) = mount_fusermount(&mountpoint, opts)?;
            (dev, true, watcher)
        };
        let conn_id = connection_id(&mountpoint);
        let mnt_id = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())
            .ok()
            .and_then(|p| mount_id(&p).ok());
        let mut mount = Mount {
            mountpoint,
            via_fusermount,
            conn_id,
            mnt_id,
            mounted: true,
            watcher,
            own_watcher: None,
        };
        if opts.auto_unmount {
            // An error here drops `mount`, which unmounts.
            let w = UnmountWatcher::spawn(&mount.mountpoint)
                .map_err(|e| io::Error::new(e.kind(), format!("auto_unmount's watcher: {e}")))?;
            mount.own_watcher = Some(w);
        }
        Ok((dev, mount))
    }

    /// The absolute mountpoint.
    pub(crate) fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The kernel's connection number (`/sys/fs/fuse/connections/N`), when it could be found.
    pub(crate) fn connection_id(&self) -> Option<u32> {
        self.conn_id
    }

    /// Unmount. A busy mount is detached lazily (it goes once the last user lets go); then
    /// the returned fd (`O_PATH`, taken on the mountpoint just before detaching) still reaches
    /// the filesystem, for waking its workers. Unmounting twice, or a mount already gone, is
    /// not an error.
    pub(crate) fn unmount(&mut self) -> io::Result<Option<OwnedFd>> {
        let r = self.unmount_now();
        // Unmounted (or gone, or failing): the auto_unmount helper has nothing left to do
        // but retry the unmount, which is what it is for.
        if let Some(w) = self.watcher.take() {
            w.release();
        }
        if let Some(w) = self.own_watcher.take() {
            w.release(r.is_ok());
        }
        r
    }

    fn unmount_now(&mut self) -> io::Result<Option<OwnedFd>> {
        if !self.mounted {
            return Ok(None);
        }
        self.mounted = false;
        // Unmounted from outside already: what is there now may be someone else's mount
        // (a daemon started at once on the same mountpoint, as a remount does).
        if !self.still_ours() {
            return Ok(None);
        }
        if self.via_fusermount {
            // fusermount3 -u is always lazy here: keep a way in first.
            let root = open_path(&self.mountpoint);
            let status = Command::new("fusermount3")
                .args(["-u", "-q", "-z", "--"])
                .arg(&self.mountpoint)
                .status()?;
            if !status.success() && is_mounted(&self.mountpoint, self.conn_id) {
                return Err(io::Error::other(format!(
                    "fusermount3 -u {} failed",
                    self.mountpoint.display()
                )));
            }
            return Ok(root);
        }
        match nix::mount::umount2(&self.mountpoint, MntFlags::empty()) {
            Ok(()) => Ok(None),
            Err(nix::Error::EBUSY) => {
                let root = open_path(&self.mountpoint);
                nix::mount::umount2(&self.mountpoint, MntFlags::MNT_DETACH)?;
                Ok(root)
            }
            // Already unmounted from outside, or never fully mounted.
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(None),
            Err(e) => Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("umount {}: {e}", self.mountpoint.display()),
            )),
        }
    }

    /// Whether the mount at the mountpoint is still this one: its connection number, and
    /// its mount id where it can be read (connection numbers are reused at once).
    fn still_ours(&self) -> bool {
        if !is_mounted(&self.mountpoint, self.conn_id) {
            return false;
        }
        let Ok(path) = std::ffi::CString::new(self.mountpoint.as_os_str().as_bytes()) else {
            return true;
        };
        match (self.mnt_id, mount_id(&path)) {
            (Some(ours), Ok(now)) => ours == now,
            _ => true,
        }
    }

    /// Abort the kernel connection (`echo 1 > /sys/fs/fuse/connections/N/abort`): every
    /// waiting caller gets ENOTCONN and the server's reads get ENODEV.
    pub(crate) fn abort(&self) -> io::Result<()> {
        let id = self.conn_id.ok_or_else(|| io::Error::other("connection id unknown"))?;
        let path = format!("/sys/fs/fuse/connections/{id}/abort");
        std::fs::write(&path, "1").map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(
                    e.kind(),
                    format!("{path} is missing: is fusectl mounted (mount -t fusectl none /sys/fs/fuse/connections)?"),
                )
            } else {
                io::Error::new(e.kind(), format!("{path}: {e}"))
            }
        })
    }
}

fn mount_syscall(mountpoint: &Path, rootmode: u32, o: &MountOptions) -> io::Result<FuseDev> {
    let dev = FuseDev::open()?;
    let mut data = format!(
        "fd={},rootmode={:o},user_id={},group_id={}",
        dev.raw(),
        rootmode,
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    if o.allow_other {
        data.push_str(",allow_other");
    }
    if o.default_permissions {
        data.push_str(",default_permissions");
    }
    if o.max_read > 0 {
        data.push_str(&format!(",max_read={}", o.max_read));
    }
    let mut flags = MsFlags::empty();
    flags.set(MsFlags::MS_RDONLY, o.read_only);
    flags.set(MsFlags::MS_NOSUID, o.nosuid);
    flags.set(MsFlags::MS_NODEV, o.nodev);
    flags.set(MsFlags::MS_NOEXEC, o.noexec);
    flags.set(MsFlags::MS_NOATIME, o.noatime);
    let fstype = match &o.subtype {
        Some(s) => format!("fuse.{s}"),
        None => "fuse".to_string(),
    };
    nix::mount::mount(
        Some(o.fsname.as_str()),
        mountpoint,
        Some(fstype.as_str()),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("mount(2) of {} failed: {e}", mountpoint.display()),
        )
    })?;
    Ok(dev)
}

/// The option string fusermount3 understands.
fn fusermount_options(o: &MountOptions) -> String {
    let mut v = vec![format!("fsname={}", o.fsname)];
    if let Some(s) = &o.subtype {
        v.push(format!("subtype={s}"));
    }
    for (on, name) in [
        (o.allow_other, "allow_other"),
        (o.default_permissions, "default_permissions"),
        (o.read_only, "ro"),
        (o.nosuid, "nosuid"),
        (o.nodev, "nodev"),
        (o.noexec, "noexec"),
        (o.noatime, "noatime"),
    ] {
        if on {
            v.push(name.into());
        }
    }
    if o.max_read > 0 {
        v.push(format!("max_read={}", o.max_read));
    }
    if o.auto_unmount {
        v.push("auto_unmount".into());
    }
    v.join(",")
}

/// Run `fusermount3 -o OPTS -- MOUNTPOINT` with `_FUSE_COMMFD` naming one end of a socket
/// pair; it mounts and sends the /dev/fuse fd back with SCM_RIGHTS. With `auto_unmount` it
/// stays, watching the socket: the helper and our end come back too.
fn mount_fusermount(
    mountpoint: &Path,
    o: &MountOptions,
) -> io::Result<(FuseDev, Option<AutoUnmount>)> {
    use nix::sys::socket::{
        recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    };
    let (ours, theirs) =
        socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)?;
    // The child must inherit `theirs`: dup it without CLOEXEC for the spawn.
    let inherit = nix::unistd::dup(&theirs)?;
    let mut child = Command::new("fusermount3")
        .arg("-o")
        .arg(fusermount_options(o))
        .arg("--")
        .arg(mountpoint)
        .env("_FUSE_COMMFD", inherit.as_raw_fd().to_string())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run fusermount3 (package fuse3): {e}"))
        })?;
    drop(inherit);
    drop(theirs);
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut cmsg = nix::cmsg_space!(std::os::fd::RawFd);
    let received = loop {
        match recvmsg::<()>(ours.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        {
            Err(nix::Error::EINTR) => continue,
            r => break r,
        }
    }
    .ok()
    .and_then(|msg| {
        msg.cmsgs().ok()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
    });
    match received {
        Some(fd) if o.auto_unmount => {
            let dev = FuseDev::from_fd(own_fd(fd));
            Ok((dev, Some(AutoUnmount { socket: ours, helper: child })))
        }
        Some(fd) => {
            child.wait()?;
            Ok((FuseDev::from_fd(own_fd(fd)), None))
        }
        None => {
            drop(ours);
            let status = child.wait()?;
            Err(io::Error::other(format!(
                "fusermount3 could not mount {} ({status})",
                mountpoint.display()
            )))
        }
    }
}

#[allow(unsafe_code)]
fn own_fd(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` arrived by SCM_RIGHTS, so the kernel created it in our fd table just now
    // and nothing else refers to it: taking ownership is sound.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl Drop for Mount {
    /// A `Mount` dropped while still mounted (an error between mounting and serving)
    /// unmounts.
    fn drop(&mut self) {
        if self.mounted || self.watcher.is_some() || self.own_watcher.is_some() {
            if let Err(e) = self.unmount() {
                log::error!("unmounting {}: {e}", self.mountpoint.display());
            }
        }
    }
}

/// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`: a handle on the mount's root that sends the
/// filesystem no request.
fn open_path(path: &Path) -> Option<OwnedFd> {
    use nix::fcntl::{open, OFlag};
    open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .ok()
}

/// The connection number of the FUSE mount at `mountpoint`: the minor device number
/// in /proc/self/mountinfo (read there rather than by stat, which would wait for INIT).
fn connection_id(mountpoint: &Path) -> Option<u32> {
    let info = std::fs::read("/proc/self/mountinfo").ok()?;
    let want = escape_mount_path(mountpoint);
    info.split(|&b| b == b'\n')
        .filter_map(|line| {
            let f: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let fstype_at = f.iter().position(|&x| x == b"-")? + 1;
            let is_fuse = f.get(fstype_at)?.starts_with(b"fuse");
            (is_fuse && f.get(4)? == &want.as_slice()).then(|| f[2])
        })
        .next_back()
        .and_then(|dev| std::str::from_utf8(dev).ok()?.split(':').nth(1)?.parse().ok())
}

/// Whether `mountpoint` still has the FUSE mount `conn_id` (or any FUSE mount if unknown).
pub(crate) fn is_mounted(mountpoint: &Path, conn_id: Option<u32>) -> bool {
    let now = connection_id(mountpoint);
    now.is_some() && (conn_id.is_none() || now == conn_id)
}

/// Mount paths in /proc are written with space, tab, newline and backslash as octal escapes.
fn escape_mount_path(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in p.as_os_str().as_bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}
