//! The protocol core: one request in, one call to the filesystem out. It knows no
//! transport: each transport (and `testing`) hands it a request's bytes, or fuse-uring's
//! parts, and the [`Channel`] the reply must go back through.

use crate::channel::Channel;
use crate::context::Context;
use crate::filesystem::Filesystem;
use crate::reply::*;
use fusefs_proto::abi::InHeader;
use fusefs_proto::flags::IoctlFlags;
use fusefs_proto::{Errno, Opcode, Operation, OutMessage, Request};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use zerocopy::FromBytes;

/// Handle one request read from the kernel. Never panics: a malformed request is answered
/// EIO (if it expects an answer) and logged; a panic in the filesystem is caught, logged,
/// and the request answered EIO by its dropped reply object.
pub(crate) fn dispatch<F: Filesystem>(fs: &F, chan: &Arc<Channel>, buf: &[u8]) {
    match Request::parse(buf, &chan.shared.dialect()) {
        Ok(req) => serve(fs, chan, &req),
        Err(e) => match InHeader::read_from_prefix(buf) {
            Ok((h, _)) => reject(chan, &h, e),
            Err(_) => log::warn!("malformed request of {} bytes: {e}", buf.len()),
        },
    }
}

/// Handle one request delivered in FUSE-over-io_uring's parts: the header, the opcode's
/// fixed struct (`op_in`, `None` if it heads the payload) and the payload (names, data,
/// extensions).
pub(crate) fn dispatch_parts<F: Filesystem>(
    fs: &F,
    chan: &Arc<Channel>,
    header: InHeader,
    op_in: Option<&[u8]>,
    payload: &[u8],
) {
    match Request::parse_parts(header, op_in, payload, &chan.shared.dialect()) {
        Ok(req) => serve(fs, chan, &req),
        Err(e) => reject(chan, &header, e),
    }
}

fn serve<F: Filesystem>(fs: &F, chan: &Arc<Channel>, req: &Request<'_>) {
    let h = req.header;
    if chan.shared.debug {
        log::info!(
            "-> unique {} node {} uid {} pid {}: {}",
            h.unique,
            h.nodeid,
            h.uid,
            h.pid,
            Summary(&req.operation)
        );
    }
    let ran = catch_unwind(AssertUnwindSafe(|| call(fs, chan, &h, req)));
    if ran.is_err() {
        log::error!("the filesystem panicked in {} (unique {})", req.opcode(), h.unique);
    }
}

fn reject(chan: &Arc<Channel>, h: &InHeader, e: fusefs_proto::ParseError) {
    let op = Opcode::from(h.opcode);
    log::warn!("malformed {op} request (unique {}): {e}", h.unique);
    if op.expects_reply() {
        let _ = chan.sink.send(&OutMessage::error(h.unique, Errno::EIO));
    }
}

/// Call the filesystem method for `req`. The match has no wildcard arm on purpose: an
/// operation added to `fusefs_proto` and not dispatched here does not compile.
fn call<F: Filesystem>(fs: &F, chan: &Arc<Channel>, h: &InHeader, req: &Request<'_>) {
    let shared = &*chan.shared;
    let ctx = Context { header: h, extensions: req.extensions, shared };
    let opcode = Opcode::from(h.opcode);
    let s = || Sender::new(chan, h.unique, opcode);
    // A listing never needs more than the kernel's largest request; a bogus size must not
    // make us allocate gigabytes.
    let listing =
        |size: u32| Listing::new(shared.pool.get((size as usize).min(shared.max_payload())));
    // Requests that get no reply are counted here; the others when answered.
    let unanswered = || chan.ops.record(opcode, false, None);
    match req.operation {
        Operation::Lookup(op) => fs.lookup(&ctx, op, ReplyEntry { s: s() }),
        Operation::Forget(op) => {
            unanswered();
            fs.forget(&ctx, op)
        }
        Operation::BatchForget(op) => {
            unanswered();
            fs.batch_forget(&ctx, op)
        }
        Operation::Getattr(op) => fs.getattr(&ctx, op, ReplyAttr { s: s() }),
        Operation::Setattr(op) => fs.setattr(&ctx, op, ReplyAttr { s: s() }),
        Operation::Readlink(op) => fs.readlink(&ctx, op, ReplyData { s: s(), max: 4095 }),
        Operation::Symlink(op) => fs.symlink(&ctx, op, ReplyEntry { s: s() }),
        Operation::Mknod(op) => fs.mknod(&ctx, op, ReplyEntry { s: s() }),
        Operation::Mkdir(op) => fs.mkdir(&ctx, op, ReplyEntry { s: s() }),
        Operation::Unlink(op) => fs.unlink(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Rmdir(op) => fs.rmdir(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Rename(op) => fs.rename(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Link(op) => fs.link(&ctx, op, ReplyEntry { s: s() }),
        Operation::Open(op) => fs.open(&ctx, op, ReplyOpen { s: s() }),
        Operation::Read(mut op) => {
            // The kernel never asks for more than its largest request; a bogus size must not
            // make a filesystem allocate gigabytes either.
            op.size = op.size.min(shared.max_payload() as u32);
            fs.read(&ctx, op, ReplyData { s: s(), max: op.size as usize })
        }
        Operation::Write(op) => fs.write(&ctx, op, ReplyWrite { s: s() }),
        Operation::Statfs(op) => fs.statfs(&ctx, op, ReplyStatfs { s: s() }),
        Operation::Release(op) => fs.release(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Fsync(op) => fs.fsync(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Setxattr(op) => fs.setxattr(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Getxattr(op) => fs.getxattr(&ctx, op, ReplyXattr { s: s(), size: op.size }),
        Operation::Listxattr(op) => fs.listxattr(&ctx, op, ReplyXattr { s: s(), size: op.size }),
        Operation::Removexattr(op) => fs.removexattr(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Flush(op) => fs.flush(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Opendir(op) => fs.opendir(&ctx, op, ReplyOpen { s: s() }),
        Operation::Readdir(op) => {
            let listing = listing(op.size);
            fs.readdir(&ctx, op, ReplyDirectory { s: s(), listing, plus: false })
        }
        Operation::Readdirplus(op) => {
            let listing = listing(op.size);
            fs.readdirplus(&ctx, op, ReplyDirectoryPlus { s: s(), listing })
        }
        Operation::Releasedir(op) => fs.releasedir(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Fsyncdir(op) => fs.fsyncdir(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Getlk(op) => fs.getlk(&ctx, op, ReplyLock { s: s() }),
        Operation::Setlk(op) => fs.setlk(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Access(op) => fs.access(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Create(op) => fs.create(&ctx, op, ReplyCreate { s: s() }),
        Operation::Interrupt(op) => {
            unanswered();
            shared.interrupts.interrupt(op.unique);
            fs.interrupt(op.unique)
        }
        Operation::Bmap(op) => fs.bmap(&ctx, op, ReplyBmap { s: s() }),
        Operation::Destroy => {
            if shared.first_destroy() {
                fs.destroy();
            }
            ReplyEmpty { s: s() }.ok()
        }
        Operation::Ioctl(op) => {
            let unrestricted = op.flags.contains(IoctlFlags::UNRESTRICTED);
            fs.ioctl(&ctx, op, ReplyIoctl { s: s(), unrestricted })
        }
        Operation::Poll(op) => fs.poll(&ctx, op, ReplyPoll { s: s() }),
        Operation::NotifyReply(op) => {
            unanswered();
            fs.notify_reply(&ctx, op)
        }
        Operation::Fallocate(op) => fs.fallocate(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Lseek(op) => fs.lseek(&ctx, op, ReplyLseek { s: s() }),
        Operation::CopyFileRange(op) => fs.copy_file_range(&ctx, op, ReplyCopy { s: s() }),
        Operation::Setupmapping(op) => fs.setupmapping(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Removemapping(op) => fs.removemapping(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Syncfs(op) => fs.syncfs(&ctx, op, ReplyEmpty { s: s() }),
        Operation::Tmpfile(op) => fs.tmpfile(&ctx, op, ReplyCreate { s: s() }),
        Operation::Statx(op) => fs.statx(&ctx, op, ReplyStatx { s: s() }),
        // INIT is answered before the transport starts; a second one, CUSE_INIT on a FUSE
        // session and opcodes this crate does not know are not implemented.
        Operation::Init(_) | Operation::CuseInit(_) | Operation::Unknown { .. } => {
            ReplyEmpty { s: s() }.error(Errno::ENOSYS)
        }
    }
}

/// An operation for the debug log: its fields, but byte payloads as their length only.
struct Summary<'a, 'b>(&'a Operation<'b>);

impl core::fmt::Display for Summary<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Operation::Write(w) => write!(
                f,
                "Write {{ ino: {}, fh: {}, offset: {}, len: {}, flags: {:?} }}",
                w.ino,
                w.fh,
                w.offset,
                w.data.len(),
                w.write_flags
            ),
            Operation::Setxattr(x) => {
                write!(
                    f,
                    "Setxattr {{ ino: {}, name: {:?}, len: {} }}",
                    x.ino,
                    x.name,
                    x.value.len()
                )
            }
            Operation::Ioctl(i) => {
                write!(
                    f,
                    "Ioctl {{ ino: {}, cmd: {:#x}, in: {} bytes }}",
                    i.ino,
                    i.cmd,
                    i.in_data.len()
                )
            }
            Operation::NotifyReply(n) => {
                write!(
                    f,
                    "NotifyReply {{ ino: {}, offset: {}, len: {} }}",
                    n.ino,
                    n.offset,
                    n.data.len()
                )
            }
            Operation::BatchForget(b) => write!(f, "BatchForget {{ count: {} }}", b.forgets.len()),
            op => write!(f, "{op:?}"),
        }
    }
}
