//! File handles of source inodes (`name_to_handle_at`, `open_by_handle_at`): how a node the
//! kernel has forgotten is found again when a file handle of the mount names it (the kernel
//! then sends LOOKUP of "." on its node id). The source's own handle identifies the inode
//! and its generation, so a handle of a file removed since (its inode number perhaps reused)
//! opens nothing: ESTALE.
//!
//! The only unsafe code of the passthrough filesystem: neither rustix nor nix wraps these
//! two calls.
#![allow(unsafe_code)]

use fusefs_session::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// MAX_HANDLE_SZ: the largest handle a filesystem makes.
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct RawHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// A source inode's file handle: its type and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SourceHandle {
    kind: i32,
    bytes: Box<[u8]>,
}

impl SourceHandle {
    /// The handle of what the O_PATH fd `fd` names. EOPNOTSUPP where the source's
    /// filesystem cannot make handles.
    pub(super) fn of(fd: BorrowedFd<'_>) -> Result<SourceHandle, Errno> {
        let mut raw =
            RawHandle { handle_bytes: MAX_HANDLE_SZ as u32, handle_type: 0, f_handle: [0; 128] };
        let mut mount_id = 0;
        // SAFETY: `raw` is a file_handle whose handle_bytes says how much room follows the
        // header; the path is a NUL-terminated empty string (AT_EMPTY_PATH: `fd` itself);
        // everything outlives the call.
        let r = unsafe {
            libc::name_to_handle_at(
                fd.as_raw_fd(),
                c"".as_ptr(),
                (&raw mut raw).cast::<libc::file_handle>(),
                &mut mount_id,
                libc::AT_EMPTY_PATH,
            )
        };
        if r < 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        let len = (raw.handle_bytes as usize).min(MAX_HANDLE_SZ);
        Ok(SourceHandle { kind: raw.handle_type, bytes: raw.f_handle[..len].into() })
    }

    /// Open the inode the handle names, O_PATH, on the filesystem of `mount` (an fd of a
    /// directory on the same filesystem, not O_PATH). Needs CAP_DAC_READ_SEARCH (EPERM
    /// without); ESTALE if the inode is gone.
    pub(super) fn open(&self, mount: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
        let mut raw = RawHandle {
            handle_bytes: self.bytes.len() as u32,
            handle_type: self.kind,
            f_handle: [0; MAX_HANDLE_SZ],
        };
        raw.f_handle[..self.bytes.len()].copy_from_slice(&self.bytes);
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: `raw` is a file_handle holding handle_bytes bytes after its header, made by
        // name_to_handle_at; `mount` is an open fd.
        let fd = unsafe {
            libc::open_by_handle_at(
                mount.as_raw_fd(),
                (&raw mut raw).cast::<libc::file_handle>(),
                flags,
            )
        };
        if fd < 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        // SAFETY: a new fd, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
