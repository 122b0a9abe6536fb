//! Notification encoders: messages the filesystem sends unasked, with `unique` 0 and the
//! notify code in the header's `error` field.

use crate::abi::*;
use crate::flags::NotifyCode;
use crate::out::OutMessage;

const NUL: &[u8] = &[0];

impl<'a> OutMessage<'a> {
    /// POLL: wake the poller registered under kernel handle `kh`.
    pub fn notify_poll(kh: u64) -> OutMessage<'static> {
        OutMessage::with(0, NotifyCode::Poll as i32, &NotifyPollWakeupOut { kh }, [&[], &[]])
    }

    /// INVAL_INODE: drop cached attributes of `ino` and, unless `off` is negative, its cached
    /// data from `off` for `len` bytes (0 or less: to the end).
    pub fn notify_inval_inode(ino: u64, off: i64, len: i64) -> OutMessage<'static> {
        let body = NotifyInvalInodeOut { ino, off, len };
        OutMessage::with(0, NotifyCode::InvalInode as i32, &body, [&[], &[]])
    }

    /// INVAL_ENTRY: drop the cached entry `name` in `parent` (only expire it with
    /// `expire_only`, which needs HAS_EXPIRE_ONLY).
    pub fn notify_inval_entry(parent: u64, name: &'a [u8], expire_only: bool) -> OutMessage<'a> {
        let flags = if expire_only { crate::flags::EXPIRE_ONLY } else { 0 };
        let body = NotifyInvalEntryOut { parent, namelen: name.len() as u32, flags };
        OutMessage::with(0, NotifyCode::InvalEntry as i32, &body, [name, NUL])
    }

    /// DELETE: `name` in `parent`, which was `child`, is gone.
    pub fn notify_delete(parent: u64, child: u64, name: &'a [u8]) -> OutMessage<'a> {
        let body = NotifyDeleteOut { parent, child, namelen: name.len() as u32, padding: 0 };
        OutMessage::with(0, NotifyCode::Delete as i32, &body, [name, NUL])
    }

    /// STORE: put `data` into the page cache of `ino` at `offset`.
    pub fn notify_store(ino: u64, offset: u64, data: &'a [u8]) -> OutMessage<'a> {
        let body = NotifyStoreOut { nodeid: ino, offset, size: data.len() as u32, padding: 0 };
        OutMessage::with(0, NotifyCode::Store as i32, &body, [data, &[]])
    }

    /// RETRIEVE: ask for `size` bytes of cached data of `ino` at `offset`; the kernel answers
    /// with a NOTIFY_REPLY request carrying `notify_unique`.
    pub fn notify_retrieve(
        notify_unique: u64,
        ino: u64,
        offset: u64,
        size: u32,
    ) -> OutMessage<'static> {
        let body = NotifyRetrieveOut { notify_unique, nodeid: ino, offset, size, padding: 0 };
        OutMessage::with(0, NotifyCode::Retrieve as i32, &body, [&[], &[]])
    }

    /// RESEND: ask the kernel to resend every request still waiting for a reply (HAS_RESEND).
    pub fn notify_resend() -> OutMessage<'static> {
        OutMessage::build(0, NotifyCode::Resend as i32, &[], [&[], &[]])
    }

    /// INC_EPOCH: make every cached dentry stale at once (7.44).
    pub fn notify_inc_epoch() -> OutMessage<'static> {
        OutMessage::build(0, NotifyCode::IncEpoch as i32, &[], [&[], &[]])
    }

    /// PRUNE: ask the kernel to drop unused inodes `ids` from its cache (7.45). `ids` is the
    /// node ids as native-endian u64 bytes (`zerocopy::IntoBytes::as_bytes` of a `[u64]`).
    pub fn notify_prune(ids: &'a [u8]) -> OutMessage<'a> {
        let body = NotifyPruneOut { count: (ids.len() / 8) as u32, padding: 0, spare: 0 };
        OutMessage::with(0, NotifyCode::Prune as i32, &body, [&ids[..ids.len() / 8 * 8], &[]])
    }
}
