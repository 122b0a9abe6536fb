//! The `fuse-uring` transport: the kernel's FUSE-over-io_uring (`OVER_IO_URING`, Linux 6.14+).
//!
//! The kernel keeps one queue per possible CPU and puts a request on the queue of the CPU
//! its caller runs on. Each queue here is served by one thread pinned to that CPU, with its
//! own io_uring and `Config::ring_depth` ring entries. An entry
//! is a pair of buffers registered with the kernel: a 288-byte header (`fuse_in_header` or
//! `fuse_out_header`, the opcode's fixed struct, and `fuse_uring_ent_in_out`) and a payload
//! from the session's pool as large as the largest request. The life of an entry:
//!
//! 1. REGISTER (after INIT is answered) hands both buffers to the kernel; the command
//!    completes when a request has been copied into them.
//! 2. The queue thread copies the request out (header and fixed struct onto its stack, the
//!    payload into its own scratch buffer, so that the reply may overwrite the entry while
//!    the filesystem still reads the request's names or data) and dispatches it.
//! 3. The reply, from this thread or any other, is written into the entry: out header in the
//!    header buffer, body in the payload, its length in `payload_sz`. The entry's index goes
//!    on the queue's `ready` list; a reply from another thread also wakes the queue thread
//!    through an eventfd read kept in flight on its ring.
//! 4. COMMIT_AND_FETCH returns the reply and the entry in one command, submitted together
//!    with the wait for the next completion: one syscall per request.
//!
//! The kernel still sends FORGET, BATCH_FORGET and INTERRUPT on /dev/fuse, and takes
//! notifications there, so the session keeps a polling /dev/fuse reader on it.
//!
//! Shutdown: on unmount or abort the kernel completes every command with ENOTCONN; the
//! thread then frees its buffers. When the session must stop while the connection lives on
//! (a busy mount, detached lazily), the eventfd wakes the thread, which leaves: its entries
//! are still the kernel's, so their buffers are leaked rather than freed under it (closing the
//! ring cancels the commands; the memory stays valid whatever the kernel does meanwhile).
//!
//! `unsafe` here is limited to the three submissions that give the kernel buffer addresses;
//! the rules that make them sound are in `ring.rs` and at each call.
#![allow(unsafe_code)]

use super::ring::{Completion, EndWatch, Ring};
use super::workers::{ReadError, WorkerExit, Workers};
use crate::channel::{Channel, ReplySink, Shared};
use crate::dev::FuseDev;
use crate::dispatch::dispatch_parts;
use crate::filesystem::Filesystem;
use crate::page::PageBuf;
use crate::pool::PooledBuf;
use fusefs_proto::abi::{
    InHeader, OutHeader, UringCmdReq, UringReqHeader, URING_CMD_COMMIT_AND_FETCH,
    URING_CMD_REGISTER,
};
use fusefs_proto::{Errno, OutMessage};
use nix::sys::eventfd::EventFd;
use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use zerocopy::{FromBytes, IntoBytes};

/// The tag of the wake eventfd's read; ring entries are tagged with their index.
const WAKE: u64 = u64::MAX;

thread_local! {
    /// The queue this thread serves (its address), so a reply knows whether it needs to wake
    /// the queue thread.
    static SERVING: Cell<usize> = const { Cell::new(0) };
}

/// Who holds an entry's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    /// The kernel: a command on the entry is in flight.
    Kernel,
    /// The filesystem: a request was fetched and awaits its reply.
    Server,
    /// The reply is written and the entry waits to be committed.
    Answered,
    /// A command on it failed for a reason other than the connection ending; unusable.
    Lost,
}

/// One ring entry: its two buffers and what the session knows of it.
struct EntryBufs {
    /// `fuse_uring_req_header` at the start of a page.
    header: PageBuf,
    payload: PooledBuf,
    /// The two iovecs REGISTER passes, as (address, length) pairs: libc's iovec holds a raw
    /// pointer, which would make the entry neither Send nor Sync.
    iov: [usize; 4],
    /// The unique of the request in the entry, to commit its reply under.
    commit_id: u64,
    holder: Holder,
}

/// A FUSE-over-io_uring queue: the entries of one CPU, and the way replies reach its thread.
pub(crate) struct Queue {
    qid: u16,
    entries: Box<[Mutex<EntryBufs>]>,
    /// Indices of the entries answered and not yet committed. Its capacity is the number of
    /// entries, and an entry is on it at most once, so pushing never allocates.
    ready: Mutex<Vec<u32>>,
    /// Written by a reply from another thread, or by the session to stop the queue; the
    /// queue thread keeps a read of it in flight.
    wake: Arc<EventFd>,
    /// Where the kernel puts the eventfd's counter on each wake (never read).
    wake_sink: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding an entry lock cannot leave its bytes half-meaningful in a way
    // that matters: the kernel validates every reply.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    /// A queue with `depth` entries whose payload buffers come from the session's pool.
    fn new(qid: u16, depth: usize, shared: &Shared) -> io::Result<Queue> {
        let payload_size = shared.request_size();
        let entries = (0..depth)
            .map(|_| {
                let mut header = PageBuf::new(core::mem::size_of::<UringReqHeader>());
                let mut payload = shared.pool.get(payload_size);
                Mutex::new(EntryBufs {
                    iov: [
                        header.as_mut_ptr() as usize,
                        core::mem::size_of::<UringReqHeader>(),
                        payload.as_mut_ptr() as usize,
                        payload.len(),
                    ],
                    header,
                    payload,
                    commit_id: 0,
                    holder: Holder::Kernel,
                })
            })
            .collect();
        Ok(Queue {
            qid,
            entries,
            ready: Mutex::new(Vec::with_capacity(depth)),
            wake: Arc::new(EventFd::new()?),
            wake_sink: AtomicU64::new(0),
        })
    }

    /// Write `msg` into entry `index` and have it committed.
    fn answer(&self, index: usize, msg: &OutMessage<'_>) -> io::Result<()> {
        self.answer_with(index, |e| {
            let slices = msg.slices();
            let body = &slices[1..];
            let body_len: usize = body.iter().map(|s| s.len()).sum();
            if body_len > e.payload.len() {
                log::error!("a {body_len}-byte reply does not fit the ring payload; answering EIO");
                return write_header(
                    e,
                    *OutMessage::error(msg.header().unique, Errno::EIO).header(),
                    0,
                );
            }
            let mut at = 0;
            for s in body {
                e.payload[at..at + s.len()].copy_from_slice(s);
                at += s.len();
            }
            write_header(e, *msg.header(), body_len)
        })
        .map(|_| ())
    }

    /// Answer the request in entry `index` with READ data that `f` writes straight into the
    /// entry's payload (at most `max` bytes), or with the errno `f` returns. The header sent.
    fn fill(
        &self,
        index: usize,
        unique: u64,
        max: usize,
        f: &mut dyn FnMut(&mut [u8]) -> Result<usize, Errno>,
    ) -> io::Result<OutHeader> {
        self.answer_with(index, |e| {
            let max = max.min(e.payload.len());
            match f(&mut e.payload[..max]) {
                Ok(n) => {
                    let n = n.min(max);
                    let len = (core::mem::size_of::<OutHeader>() + n) as u32;
                    write_header(e, OutHeader { len, error: 0, unique }, n)
                }
                Err(errno) => write_header(e, *OutMessage::error(unique, errno).header(), 0),
            }
        })
    }

    /// Let `write` put the reply into entry `index` (which must hold a request awaiting one),
    /// then have the entry committed, waking the queue thread if this is another thread.
    fn answer_with(
        &self,
        index: usize,
        write: impl FnOnce(&mut EntryBufs) -> OutHeader,
    ) -> io::Result<OutHeader> {
        let header = {
            let mut e = lock(&self.entries[index]);
            if e.holder != Holder::Server {
                return Err(io::Error::other("ring entry has no request awaiting a reply"));
            }
            let header = write(&mut e);
            e.holder = Holder::Answered;
            header
        };
        lock(&self.ready).push(index as u32);
        if SERVING.with(Cell::get) != self as *const Queue as usize {
            let _ = self.wake.write(1);
        }
        Ok(header)
    }
}

/// The memory one ring entry takes: its header page and a payload as large as the largest
/// request the negotiated `max_write` and `max_pages` allow (the kernel's minimum for it).
pub(super) fn entry_bytes(n: &crate::init::Negotiated) -> usize {
    crate::page::PAGE_SIZE + n.request_size().next_multiple_of(crate::page::PAGE_SIZE)
}

/// Put the reply's `fuse_out_header` and its body length into the entry's header buffer.
fn write_header(e: &mut EntryBufs, header: OutHeader, payload_sz: usize) -> OutHeader {
    let h = UringReqHeader::mut_from_prefix(&mut e.header[..]).expect("aligned header page").0;
    let out = header.as_bytes();
    h.in_out[..out.len()].copy_from_slice(out);
    h.ring_ent_in_out.payload_sz = payload_sz as u32;
    header
}

/// The queues the kernel expects: one per possible CPU (its `num_possible_cpus()`), listed
/// in `/sys/devices/system/cpu/possible` ("0-3"). Queue ids are CPU ids, so the list must
/// be 0..n without gaps: with a gap the kernel would send some CPUs' requests to another
/// queue, and pinning would put queue threads on the wrong CPUs. Such a machine is refused
/// before INIT (the mount falls back to `threads`).
pub(super) fn possible_cpus() -> io::Result<usize> {
    count_cpus(&std::fs::read_to_string("/sys/devices/system/cpu/possible")?)
}

/// The number of CPUs in a kernel CPU list that runs 0..n without gaps ("0-3", "0,1-2").
fn count_cpus(s: &str) -> io::Result<usize> {
    let bad = |why: &str| io::Error::other(format!("possible CPUs {:?}: {why}", s.trim()));
    let mut n = 0;
    for range in s.trim().split(',') {
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            _ => return Err(bad("not a CPU list")),
        };
        if a != n {
            return Err(bad("CPU ids with gaps"));
        }
        n = b + 1;
    }
    Ok(n)
}

/// What a queue thread reports once its entries are registered.
enum Registered {
    /// Every entry is with the kernel.
    Ok,
    /// The kernel refused REGISTER: it then forgets FUSE-over-io_uring for this connection
    /// and keeps queueing requests on /dev/fuse.
    Refused(io::Error),
    /// Something else failed (the ring could not be set up): the connection still waits for
    /// its rings, so the session cannot go on.
    Failed(io::Error),
}

/// Serve `queue` on this thread until the kernel ends the connection or the session stops.
/// `chans[i]` is entry i's reply channel. Reports on `registered` once REGISTER is through.
fn run_queue<F: Filesystem>(
    fs: &F,
    dev: &FuseDev,
    queue: &Arc<Queue>,
    chans: &[Arc<Channel>],
    registered: std::sync::mpsc::SyncSender<Registered>,
) -> WorkerExit {
    let shared = &chans[0].shared;
    let fd = dev.as_fd().as_raw_fd();
    let depth = queue.entries.len();
    pin_to_cpu(queue.qid as usize);
    let mut ring = match Ring::new(depth as u32 + 1) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("FUSE-over-io_uring queue {}: io_uring_setup: {e}", queue.qid);
            let _ = registered.send(Registered::Failed(io::Error::new(e.kind(), msg.clone())));
            return WorkerExit::Failed(io::Error::other(msg));
        }
    };
    // Completions reaped while checking REGISTER, to serve first.
    let mut done = [Completion::default(); 64];
    let mut first = 0;
    let setup = (|| {
        for (i, entry) in queue.entries.iter().enumerate() {
            let e = lock(entry);
            let cmd = UringCmdReq { qid: queue.qid, ..Default::default() };
            // SAFETY: the iovecs point at the entry's header and payload buffers, which live
            // in `queue` (held by this thread and by the entries' channels) and never move.
            // This thread frees them only after the kernel completed every command on them
            // (ENOTCONN), and leaks them otherwise (see `leave`). The iovec array itself is
            // inside the locked entry and outlives the submit below.
            unsafe {
                ring.uring_cmd(
                    fd,
                    URING_CMD_REGISTER,
                    cmd.as_bytes(),
                    e.iov.as_ptr().cast(),
                    2,
                    i as u64,
                )?;
            }
        }
        arm_wake(&mut ring, queue)?;
        ring.submit()?;
        // A refused REGISTER completes at once; a good one only when a request comes (which
        // may already have happened if this is the last queue to register).
        first = ring.reap(&mut done);
        match done[..first].iter().find(|c| c.result < 0 && c.tag != WAKE) {
            Some(c) => Err(io::Error::from_raw_os_error(-c.result)),
            None => Ok(()),
        }
    })();
    if let Err(e) = setup {
        let msg = format!("FUSE-over-io_uring queue {}: REGISTER: {e}", queue.qid);
        let err = io::Error::new(e.kind(), msg.clone());
        // Only a failure inside the kernel's registration (bad buffers, no memory) turns
        // FUSE-over-io_uring off for the connection; after any other refusal (a security
        // module denying the command, ...) the kernel still waits for the rings.
        let refused = matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOMEM | libc::EFAULT));
        let _ = registered.send(if refused {
            Registered::Refused(err)
        } else {
            Registered::Failed(err)
        });
        // Entries registered before the refusal belong to the kernel until it ends.
        leave(queue);
        return WorkerExit::Failed(io::Error::other(msg));
    }
    let _ = registered.send(Registered::Ok);
    drop(registered);
    SERVING.with(|s| s.set(Arc::as_ptr(queue) as usize));
    let mut scratch = shared.pool.get(shared.request_size());
    // Commands in flight; once the connection is gone and none is left, the kernel holds
    // no buffer of ours.
    let mut in_kernel = depth;
    let mut gone = false;
    let mut stop = false;
    // Armed while every entry is held by requests answered later: then no command is with
    // the kernel to complete with ENOTCONN.
    let mut end_watch = EndWatch::new(fd);
    let mut n = first;
    let exit = loop {
        for c in &done[..n] {
            if c.tag == WAKE {
                // Requests already taken in this batch are served before leaving.
                stop = shared.stopping.load(Ordering::Relaxed);
                if !stop {
                    if let Err(e) = arm_wake(&mut ring, queue) {
                        log::error!("queue {}: cannot re-arm its wake: {e}", queue.qid);
                        stop = true;
                    }
                }
                continue;
            }
            if let Some(ended) = EndWatch::saw(c) {
                gone |= ended;
                continue;
            }
            let index = c.tag as usize;
            in_kernel -= 1;
            if c.result < 0 {
                match ReadError::from_errno(-c.result) {
                    // The connection ended (unmount, abort) or the ring is going away.
                    ReadError::Gone => gone = true,
                    // Nothing else is expected; the entry is the kernel's no more, and this
                    // CPU's requests wait for the other entries.
                    _ => log::error!(
                        "FUSE-over-io_uring queue {} entry {index} lost: {}",
                        queue.qid,
                        io::Error::from_raw_os_error(-c.result)
                    ),
                }
                let mut e = lock(&queue.entries[index]);
                // Not answerable any more: no reply will be committed on it.
                e.holder = if gone { Holder::Server } else { Holder::Lost };
                continue;
            }
            serve(fs, queue, index, &chans[index], &mut scratch);
        }
        if gone && in_kernel == 0 {
            // Every command is back: the kernel holds no buffer of ours.
            break WorkerExit::Unmounted;
        }
        if in_kernel == 0 && queue.entries.iter().all(|e| lock(e).holder == Holder::Lost) {
            break WorkerExit::Failed(io::Error::other("every ring entry was lost"));
        }
        match commit_ready(&mut ring, queue, fd) {
            Ok(k) => in_kernel += k,
            Err(e) => break WorkerExit::Failed(e),
        }
        if let Err(e) = end_watch.keep(&mut ring, in_kernel == 0 && !gone) {
            break WorkerExit::Failed(e);
        }
        if stop {
            // Hand the answered entries back before leaving.
            let _ = ring.submit();
            break WorkerExit::Stopped;
        }
        if let Err(e) = ring.submit_and_wait() {
            break WorkerExit::Failed(e);
        }
        n = ring.reap(&mut done);
    };
    if !matches!(exit, WorkerExit::Unmounted) {
        leave(queue);
    }
    // On Unmounted the wake read is still in flight into `queue.wake_sink`: the queue
    // outlives this ring (the entries' channels hold it), and once the ring is closed the
    // kernel completes that read cancelled, without writing.
    exit
}

/// Copy the request out of entry `index` and dispatch it.
fn serve<F: Filesystem>(
    fs: &F,
    queue: &Queue,
    index: usize,
    chan: &Arc<Channel>,
    scratch: &mut [u8],
) {
    let mut in_out = [0u8; core::mem::size_of::<InHeader>()];
    let mut op_in = [0u8; fusefs_proto::abi::URING_OP_IN_OUT_SZ];
    let payload_len;
    {
        let mut e = lock(&queue.entries[index]);
        let e = &mut *e;
        let h = UringReqHeader::ref_from_prefix(&e.header[..]).expect("aligned header page").0;
        let n = in_out.len();
        in_out.copy_from_slice(&h.in_out[..n]);
        op_in.copy_from_slice(&h.op_in);
        e.commit_id = h.ring_ent_in_out.commit_id;
        payload_len = (h.ring_ent_in_out.payload_sz as usize).min(e.payload.len());
        scratch[..payload_len].copy_from_slice(&e.payload[..payload_len]);
        e.holder = Holder::Server;
    }
    let header = InHeader::read_from_bytes(&in_out[..]).expect("exact size");
    // The kernel puts the opcode's fixed struct in `op_in`, except for requests whose
    // arguments it copies from pages (NOTIFY_REPLY: everything arrives in the payload). The
    // header's length tells which: it counts both parts.
    let in_op_in =
        (header.len as usize).saturating_sub(in_out.len() + payload_len).min(op_in.len());
    let op_in = (in_op_in > 0).then_some(&op_in[..in_op_in]);
    dispatch_parts(fs, chan, header, op_in, &scratch[..payload_len]);
    if !fusefs_proto::Opcode::from(header.opcode).expects_reply() {
        // The entry must still go back to the kernel (NOTIFY_REPLY, the one such request the
        // rings carry): commit it with an empty answer, or the queue loses the entry.
        let _ = queue.answer(index, &OutMessage::empty(header.unique));
    }
}

/// Submit COMMIT_AND_FETCH for every answered entry; how many.
fn commit_ready(ring: &mut Ring, queue: &Queue, fd: i32) -> io::Result<usize> {
    let mut ready = lock(&queue.ready);
    let n = ready.len();
    for index in ready.drain(..) {
        let mut e = lock(&queue.entries[index as usize]);
        let cmd = UringCmdReq { commit_id: e.commit_id, qid: queue.qid, ..Default::default() };
        e.holder = Holder::Kernel;
        // SAFETY: as for REGISTER (`run_queue`): the entry's buffers stay valid and untouched
        // until its next completion. COMMIT_AND_FETCH takes no iovec.
        unsafe {
            ring.uring_cmd(
                fd,
                URING_CMD_COMMIT_AND_FETCH,
                cmd.as_bytes(),
                core::ptr::null(),
                0,
                index as u64,
            )?;
        }
    }
    Ok(n)
}

fn arm_wake(ring: &mut Ring, queue: &Queue) -> io::Result<()> {
    // SAFETY: the target is an AtomicU64 inside `queue`, which this thread keeps alive (and
    // leaks on an early exit) until the read completes; nobody reads it.
    unsafe { ring.read(queue.wake.as_fd().as_raw_fd(), queue.wake_sink.as_ptr().cast(), 8, WAKE) }
}

/// Leave while the kernel may still hold entries: their buffers must outlive anything the
/// kernel does with them, so the queue (and with it the buffers) is leaked.
fn leave(queue: &Arc<Queue>) {
    core::mem::forget(Arc::clone(queue));
}

/// Pin this thread to `cpu`, where the kernel queues the requests this queue serves. A CPU
/// that is possible but offline cannot be pinned to; its queue then waits unpinned.
fn pin_to_cpu(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
            log::debug!("cannot pin queue thread to CPU {cpu}: {e}");
        }
    }
}

/// One ring entry as the reply seam: a reply is written into the entry's buffers and the
/// entry committed by its queue thread.
struct RingEntry {
    queue: Arc<Queue>,
    index: usize,
}

impl ReplySink for RingEntry {
    fn send(&self, msg: &OutMessage<'_>) -> io::Result<()> {
        self.queue.answer(self.index, msg)
    }

    /// READ data goes straight into the entry's payload, which the kernel copies to the
    /// caller: one copy instead of two.
    fn fill(
        &self,
        unique: u64,
        max: usize,
        f: &mut dyn FnMut(&mut [u8]) -> Result<usize, Errno>,
    ) -> (OutHeader, io::Result<()>) {
        match self.queue.fill(self.index, unique, max, f) {
            Ok(header) => (header, Ok(())),
            Err(e) => (*OutMessage::error(unique, Errno::EIO).header(), Err(e)),
        }
    }
}

/// Start one queue thread per possible CPU (`queues` of them, `depth` entries each) on
/// `dev`, and wait until each has registered its entries. On failure, whether the kernel
/// refused REGISTER (it then serves the connection through /dev/fuse) and why.
pub(super) fn start<F: Filesystem>(
    workers: &mut Workers,
    fs: &Arc<F>,
    dev: &Arc<FuseDev>,
    shared: &Arc<Shared>,
    queues: usize,
    depth: usize,
) -> Result<(), (bool, io::Error)> {
    let fatal = |e| (false, e);
    let mut pending = Vec::with_capacity(queues);
    for qid in 0..queues {
        let queue = Arc::new(Queue::new(qid as u16, depth, shared).map_err(fatal)?);
        workers.add_waker(Arc::clone(&queue.wake));
        let chans: Vec<Arc<Channel>> = (0..depth)
            .map(|index| {
                let entry = RingEntry { queue: Arc::clone(&queue), index };
                workers.channel(shared, entry) as Arc<Channel>
            })
            .collect();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (fs, dev) = (Arc::clone(fs), Arc::clone(dev));
        workers
            .spawn(format!("fusefs-q{qid}"), move || run_queue(&*fs, &dev, &queue, &chans, tx))
            .map_err(fatal)?;
        pending.push(rx);
    }
    let mut refused = None;
    for rx in pending {
        match rx.recv() {
            Ok(Registered::Ok) => {}
            Ok(Registered::Refused(e)) => refused = Some(e),
            Ok(Registered::Failed(e)) => return Err(fatal(e)),
            Err(_) => return Err(fatal(io::Error::other("a queue thread ended early"))),
        }
    }
    refused.map_or(Ok(()), |e| Err((true, e)))
}

#[cfg(test)]
mod tests {
    use super::count_cpus;

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpus("0-1\n").unwrap(), 2);
        assert_eq!(count_cpus("0").unwrap(), 1);
        assert_eq!(count_cpus("0,1-2").unwrap(), 3);
        assert!(count_cpus("0,2-5").unwrap_err().to_string().contains("gaps"));
        assert!(count_cpus("0-3,8-11").is_err());
        assert!(count_cpus("").is_err());
        assert!(count_cpus("3-1").is_err());
        assert!(count_cpus("x").is_err());
    }
}
