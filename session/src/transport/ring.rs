//! One io_uring, as the two ring transports use it: reads on /dev/fuse or an eventfd,
//! FUSE's URING_CMD commands, and the [`EndWatch`] poll both use to see the connection end.
//! A read or command hands the kernel a buffer address, and the kernel writes there until
//! the matching completion arrives, so those submitting functions are `unsafe fn`: each
//! states what its callers must keep alive and untouched until then, and each call site (in
//! `uring` and `fuse_uring`) says why it holds.
#![allow(unsafe_code)]

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::RawFd;

/// A completion: the tag its submission carried, and the result (bytes, 0, or -errno).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Completion {
    pub(crate) tag: u64,
    pub(crate) result: i32,
}

/// An io_uring with 128-byte submission entries (FUSE's URING_CMD needs them), set up for a
/// single thread: the one that creates it must be the only one to submit on it.
pub(crate) struct Ring {
    uring: IoUring<squeue::Entry128, cqueue::Entry>,
}

impl Ring {
    /// A ring with room for `entries` submissions in flight. Call it on the thread that will
    /// use the ring: it is created single-issuer, with task work deferred to the moment that
    /// thread waits (the kernel then runs FUSE's request copies on that thread, on its CPU).
    pub(crate) fn new(entries: u32) -> io::Result<Ring> {
        let uring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries.next_power_of_two().max(4))?;
        Ok(Ring { uring })
    }

    fn push(&mut self, sqe: &squeue::Entry128) -> io::Result<()> {
        // SAFETY: the entry's buffers are the callers' responsibility (see each push
        // function); pushing only copies the 128 bytes into the queue.
        if unsafe { self.uring.submission().push(sqe) }.is_ok() {
            return Ok(());
        }
        // Full: hand what is queued to the kernel and try again.
        self.submit()?;
        // SAFETY: as above.
        unsafe { self.uring.submission().push(sqe) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))
    }

    /// Queue `read(fd, buf, len)` tagged `tag`.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid, and not be read or written by anyone else, until the
    /// completion tagged `tag` has been reaped (or the ring is dropped and the memory leaked).
    pub(crate) unsafe fn read(
        &mut self,
        fd: RawFd,
        buf: *mut u8,
        len: u32,
        tag: u64,
    ) -> io::Result<()> {
        let sqe = opcode::Read::new(types::Fd(fd), buf, len).build().user_data(tag);
        self.push(&sqe.into())
    }

    /// Queue a URING_CMD on `fd`: `cmd_op`, the 80-byte command area starting with `cmd`,
    /// and `iov` (may be null with `iov_len` 0) in the entry's `addr` and `len`.
    ///
    /// # Safety
    /// The iovec array must stay valid until the next `submit*` returns; the buffers it
    /// points at must stay valid, and be left to the kernel, for as long as the command (and
    /// every later command on the same FUSE ring entry) can complete.
    pub(crate) unsafe fn uring_cmd(
        &mut self,
        fd: RawFd,
        cmd_op: u32,
        cmd: &[u8],
        iov: *const libc::iovec,
        iov_len: u32,
        tag: u64,
    ) -> io::Result<()> {
        let mut area = [0u8; 80];
        area[..cmd.len()].copy_from_slice(cmd);
        let mut sqe = opcode::UringCmd80::new(types::Fd(fd), cmd_op)
            .cmd(area)
            .addr(Some(iov as u64))
            .build()
            .user_data(tag);
        // The crate has no setter for the SQE's `len` (u32 at byte 24), which FUSE reads as
        // the iovec count.
        // SAFETY: Entry128 is `#[repr(C)]` and 128 bytes (the crate asserts both), beginning
        // with the kernel's `io_uring_sqe`, whose `len` field is the u32 at offset 24; the
        // write stays inside the entry and is unaligned-safe.
        unsafe {
            let p = (&mut sqe as *mut squeue::Entry128).cast::<u8>().add(24).cast::<u32>();
            p.write_unaligned(iov_len);
        }
        self.push(&sqe)
    }

    /// Submit what is queued; do not wait.
    pub(crate) fn submit(&mut self) -> io::Result<()> {
        loop {
            match self.uring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Submit what is queued and wait for at least one completion.
    pub(crate) fn submit_and_wait(&mut self) -> io::Result<()> {
        loop {
            match self.uring.submit_and_wait(1) {
                Ok(_) => return Ok(()),
                // EINTR: a signal; EBUSY: completions to reap first (the caller will).
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Move up to `out.len()` completions into `out`; how many.
    pub(crate) fn reap(&mut self, out: &mut [Completion]) -> usize {
        let mut n = 0;
        for cqe in self.uring.completion().take(out.len()) {
            out[n] = Completion { tag: cqe.user_data(), result: cqe.result() };
            n += 1;
        }
        n
    }
}

/// The tag of [`EndWatch`]'s poll. Tags from `u64::MAX` down are the transports' own
/// submissions (`u64::MAX` is their wake eventfd's read); the rest are slot or entry indices.
const END_WATCH: u64 = u64::MAX - 1;
/// The tag of the cancel of that poll.
const END_WATCH_CANCEL: u64 = u64::MAX - 2;

/// A poll on /dev/fuse that completes only with POLLERR or POLLHUP, when the connection ends
/// (unmount, abort), for a ring transport whose every read or command is held by a request
/// answered later: then nothing is with the kernel to complete with the end. It names no
/// buffer, so it needs no care. Not free while armed: /dev/fuse wakes its pollers for every
/// request queued on it (without saying for what), and each wake re-polls on the ring's
/// thread; so it is armed only while nothing else would see the end.
pub(crate) struct EndWatch {
    fd: RawFd,
    armed: bool,
}

impl EndWatch {
    /// A watch on `fd`, not armed.
    pub(crate) fn new(fd: RawFd) -> EndWatch {
        EndWatch { fd, armed: false }
    }

    /// Arm the watch when `unwatched` (nothing with the kernel would see the end), cancel it
    /// when something is again.
    pub(crate) fn keep(&mut self, ring: &mut Ring, unwatched: bool) -> io::Result<()> {
        if unwatched && !self.armed {
            let mask = (libc::POLLERR | libc::POLLHUP) as u32;
            let sqe = opcode::PollAdd::new(types::Fd(self.fd), mask).build();
            ring.push(&sqe.user_data(END_WATCH).into())?;
        } else if !unwatched && self.armed {
            // The poll completes with ECANCELED (or has completed); the cancel with its own tag.
            let sqe = opcode::AsyncCancel::new(END_WATCH).build();
            ring.push(&sqe.user_data(END_WATCH_CANCEL).into())?;
        }
        self.armed = unwatched;
        Ok(())
    }

    /// Whether `c` is the watch's (`Some`), and if so whether it says the connection ended
    /// (`Some(true)`). A cancelled poll or its cancel says nothing: `keep` has already
    /// moved on.
    pub(crate) fn saw(c: &Completion) -> Option<bool> {
        match c.tag {
            END_WATCH => Some(c.result > 0),
            END_WATCH_CANCEL => Some(false),
            _ => None,
        }
    }
}
