//! Notifications: messages to the kernel that no request asked for.

use crate::dev::FuseDev;
use fusefs_proto::OutMessage;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use zerocopy::IntoBytes;

/// Sends notifications to the kernel. Cheap to clone; usable from any thread, including
/// from inside a `Filesystem` method, with one caution from the kernel's documentation:
/// `inval_entry` and `delete` for a directory whose operation is being served in the same
/// call may deadlock; send them after replying, or from another thread.
///
/// Errors are the kernel's: ENOENT means the kernel had nothing cached for that node or
/// name (nothing to do), ENOSYS that the kernel does not know the notification. Once the
/// session has ended, every call fails with ENOTCONN: a Notifier does not keep the kernel
/// connection alive.
#[derive(Clone, Debug)]
pub struct Notifier {
    dev: Weak<FuseDev>,
    next_retrieve: Arc<AtomicU64>,
}

/// Two notifiers are equal when they reach the same session (or both none).
impl PartialEq for Notifier {
    fn eq(&self, other: &Notifier) -> bool {
        Weak::ptr_eq(&self.dev, &other.dev)
    }
}

impl Eq for Notifier {}

impl Notifier {
    /// A notifier writing to `dev`, which the session owns.
    pub(crate) fn new(dev: &Arc<FuseDev>) -> Notifier {
        Notifier { dev: Arc::downgrade(dev), next_retrieve: Arc::new(AtomicU64::new(1)) }
    }

    /// A notifier with no kernel behind it: every call fails with ENOTCONN.
    pub(crate) fn detached() -> Notifier {
        Notifier { dev: Weak::new(), next_retrieve: Arc::new(AtomicU64::new(1)) }
    }

    fn send(&self, msg: &OutMessage<'_>) -> io::Result<()> {
        match self.dev.upgrade() {
            Some(dev) => dev.write(msg),
            None => Err(io::Error::from_raw_os_error(libc::ENOTCONN)),
        }
    }

    /// INVAL_INODE: drop the cached attributes of `ino` and its cached data from `offset` for
    /// `len` bytes (`len` 0: to the end; `offset` negative: attributes only).
    pub fn inval_inode(&self, ino: u64, offset: i64, len: i64) -> io::Result<()> {
        self.send(&OutMessage::notify_inval_inode(ino, offset, len))
    }

    /// INVAL_ENTRY: forget the cached entry `name` in directory `parent`.
    pub fn inval_entry(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        self.send(&OutMessage::notify_inval_entry(parent, name.as_bytes(), false))
    }

    /// INVAL_ENTRY with FUSE_EXPIRE_ONLY: mark the entry stale but keep it for processes
    /// using it (needs HAS_EXPIRE_ONLY).
    pub fn expire_entry(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        self.send(&OutMessage::notify_inval_entry(parent, name.as_bytes(), true))
    }

    /// DELETE: `name` in `parent`, which was node `child`, is gone (also unhashes a
    /// directory's dentry so it can be unmounted over).
    pub fn delete(&self, parent: u64, child: u64, name: &OsStr) -> io::Result<()> {
        self.send(&OutMessage::notify_delete(parent, child, name.as_bytes()))
    }

    /// STORE: put `data` into the page cache of `ino` at `offset`.
    pub fn store(&self, ino: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        self.send(&OutMessage::notify_store(ino, offset, data))
    }

    /// RETRIEVE: ask for `size` bytes of `ino`'s cached data at `offset`. The kernel answers
    /// with a NOTIFY_REPLY request that reaches
    /// [`Filesystem::notify_reply`](crate::Filesystem::notify_reply) carrying the returned id.
    pub fn retrieve(&self, ino: u64, offset: u64, size: u32) -> io::Result<u64> {
        let id = self.next_retrieve.fetch_add(1, Ordering::Relaxed);
        self.send(&OutMessage::notify_retrieve(id, ino, offset, size))?;
        Ok(id)
    }

    /// POLL: wake the poller registered under kernel handle `kh` (from a POLL request).
    pub fn poll_wakeup(&self, kh: u64) -> io::Result<()> {
        self.send(&OutMessage::notify_poll(kh))
    }

    /// PRUNE: ask the kernel to drop these nodes from its cache if unused (7.45).
    pub fn prune(&self, nodes: &[u64]) -> io::Result<()> {
        self.send(&OutMessage::notify_prune(nodes.as_bytes()))
    }

    /// INC_EPOCH: make every cached entry stale at once (7.44).
    pub fn inc_epoch(&self) -> io::Result<()> {
        self.send(&OutMessage::notify_inc_epoch())
    }

    /// RESEND: have the kernel resend every request still waiting for a reply (HAS_RESEND),
    /// each with bit 63 of its unique set; answer the resent one (the original's answer is
    /// refused). On 6.18 this reaches the requests read from /dev/fuse, not those held in
    /// FUSE-over-io_uring ring entries (tests/notify.rs).
    pub fn resend(&self) -> io::Result<()> {
        self.send(&OutMessage::notify_resend())
    }
}
