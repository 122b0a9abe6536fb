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

/// How a filesystem's handles are made of an inode number and a 32-bit generation and
/// nothing else (in native-endian 32-bit words, as the kernel writes them): such a handle can
/// be made again from the two, which is what lets a node id carry it ([`SourceHandle::split`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// ino (32 bits), generation: ext4, xfs with 32-bit inode numbers (FILEID_INO32_GEN).
    Ino32Gen,
    /// generation, ino (64 bits): tmpfs.
    GenIno64,
    /// ino (64 bits), generation.
    Ino64Gen,
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

    /// The layout this handle has, given that it names inode `ino`, if it is one of those
    /// [`Layout`] knows.
    pub(super) fn layout(&self, ino: u64) -> Option<Layout> {
        [Layout::Ino32Gen, Layout::GenIno64, Layout::Ino64Gen]
            .into_iter()
            .find(|&l| self.split(l, ino).is_some())
    }

    /// The generation in this handle, if it is laid out as `layout` and names inode `ino`.
    pub(super) fn split(&self, layout: Layout, ino: u64) -> Option<u32> {
        let w = |i: usize| {
            let b: [u8; 4] = self.bytes.get(i * 4..i * 4 + 4)?.try_into().ok()?;
            Some(u32::from_ne_bytes(b))
        };
        let wide = |lo: usize| Some(u64::from(w(lo)?) | u64::from(w(lo + 1)?) << 32);
        let (ino_here, generation) = match (layout, self.bytes.len()) {
            (Layout::Ino32Gen, 8) => (u64::from(w(0)?), w(1)?),
            (Layout::GenIno64, 12) => (wide(1)?, w(0)?),
            (Layout::Ino64Gen, 12) => (wide(0)?, w(2)?),
            _ => return None,
        };
        (ino_here == ino).then_some(generation)
    }

    /// The handle of type `kind` laid out as `layout` for inode `ino`, generation
    /// `generation`.
    pub(super) fn join(kind: i32, layout: Layout, ino: u64, generation: u32) -> SourceHandle {
        let (lo, hi) = (ino as u32, (ino >> 32) as u32);
        let words: &[u32] = match layout {
            Layout::Ino32Gen => &[lo, generation],
            Layout::GenIno64 => &[generation, lo, hi],
            Layout::Ino64Gen => &[lo, hi, generation],
        };
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        SourceHandle { kind, bytes: bytes.into() }
    }

    /// The handle's type.
    pub(super) fn kind(&self) -> i32 {
        self.kind
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
