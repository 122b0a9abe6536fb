//! The transports: how requests travel between the kernel and the core. Each one reads
//! requests, hands them to `dispatch` with a [`Channel`](crate::channel::Channel) over its
//! own [`ReplySink`](crate::channel::ReplySink), and never appears in the core.
//!
//! - `reader`: a /dev/fuse reader per worker (the `threads` transport), and fuse-uring's
//!   reader for FORGET and INTERRUPT.
//! - `uring`: an io_uring per worker keeping several /dev/fuse reads in flight.
//! - `fuse_uring`: the kernel's FUSE-over-io_uring, a queue thread per CPU.
//! - `ring`: the io_uring both ring transports submit to.
//! - `workers`: what they share: the thread set, exit reasons, read errors, waking to stop.
//!
//! This file is the one place that decides which transport serves: a [`Plan`] made before
//! INIT (what the machine can do, and so whether INIT asks for FUSE-over-io_uring), turned
//! into a [`Chosen`] transport by what INIT granted, and started.

mod fuse_uring;
mod reader;
mod ring;
mod uring;
mod workers;

pub(crate) use workers::Workers;

use crate::channel::Shared;
use crate::config::{Config, Transport};
use crate::dev::FuseDev;
use crate::filesystem::Filesystem;
use crate::init::Negotiated;
use fusefs_proto::InitFlags;
use std::io;
use std::sync::Arc;

/// Where a transport that cannot run falls back to, on a kernel without FUSE-over-io_uring
/// (the usual case: `enable_uring` is N by default) or where io_uring cannot be set up:
/// `threads`, which measured faster than `uring` on most workloads here and cheaper in CPU
/// on all of them (BENCHMARKS.md, DECISIONS.md).
pub(crate) const FALLBACK: Transport = Transport::Threads;

/// What the session can serve with, found before INIT: whether io_uring works here, how
/// many fuse-uring queues the kernel will expect, and the /dev/fuse clones the transport
/// will need (made now, so that a lack of fds fails the mount before INIT is answered).
pub(crate) struct Plan {
    asked: Transport,
    fallback: bool,
    threads: usize,
    /// `Config::ring_depth`: `None` lets each ring transport choose.
    depth: Option<u16>,
    max_in_flight: usize,
    ring_memory: usize,
    /// Why io_uring cannot be set up here, if it cannot (probed for the ring transports).
    no_rings: Option<io::Error>,
    /// For fuse-uring: the queue count (one per possible CPU), or why there can be none.
    queues: Option<io::Result<usize>>,
    /// Clones of the session fd, one per worker after the first.
    spare: Vec<FuseDev>,
    /// For fuse-uring: the fd the queues submit their commands on.
    ring_dev: Option<FuseDev>,
}

impl Plan {
    /// Probe what `config.transport` needs and open its fds; `dev` is the session's fd.
    pub(crate) fn new(config: &Config, dev: &FuseDev) -> io::Result<Plan> {
        let asked = config.transport;
        // Once INIT grants OVER_IO_URING the kernel holds every request until all queues
        // have registered: make sure io_uring works here before asking for it.
        let no_rings = match asked {
            Transport::Threads => None,
            Transport::Uring | Transport::FuseUring => ring::Ring::new(4).err(),
        };
        let queues =
            (asked == Transport::FuseUring && no_rings.is_none()).then(fuse_uring::possible_cpus);
        let threads = config.threads.max(1);
        let spare = (1..threads).map(|_| dev.clone_dev()).collect::<io::Result<_>>()?;
        let ring_dev = match queues {
            Some(Ok(_)) => Some(dev.clone_dev()?),
            _ => None,
        };
        Ok(Plan {
            asked,
            fallback: config.transport_fallback,
            threads,
            depth: config.ring_depth.map(|d| d.max(1)),
            max_in_flight: config.max_in_flight.max(1),
            ring_memory: config.ring_memory,
            no_rings,
            queues,
            spare,
            ring_dev,
        })
    }

    /// Whether INIT should ask for OVER_IO_URING: fuse-uring was asked for, and its queues
    /// can be served here.
    pub(crate) fn asks_for_rings(&self) -> bool {
        matches!(self.queues, Some(Ok(_)))
    }

    /// The transport to serve with, now that INIT has said whether the kernel speaks
    /// FUSE-over-io_uring. A transport that cannot run falls back to [`FALLBACK`] with a
    /// warning saying why, or fails with `ErrorKind::Unsupported` if fallback is off.
    pub(crate) fn choose(self, negotiated: &Negotiated) -> io::Result<Chosen> {
        let asked = self.asked;
        let why_not = if let Some(e) = &self.no_rings {
            Some(format!("io_uring cannot be set up here ({e})"))
        } else if asked != Transport::FuseUring {
            None
        } else if let Some(Err(e)) = &self.queues {
            Some(e.to_string())
        } else if negotiated.granted.contains(InitFlags::OVER_IO_URING) {
            None
        } else if !negotiated.offer.flags.contains(InitFlags::OVER_IO_URING) {
            Some(
                "the kernel does not offer FUSE-over-io_uring (Linux 6.14+ with \
                 CONFIG_FUSE_IO_URING and /sys/module/fuse/parameters/enable_uring set to Y \
                 before mounting)"
                    .to_string(),
            )
        } else {
            Some("the filesystem's init() did not ask for OVER_IO_URING".to_string())
        };
        let transport = match why_not {
            None => asked,
            Some(why) if self.fallback => {
                log::warn!("transport {asked} not available: {why}; serving with {FALLBACK}");
                FALLBACK
            }
            Some(why) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("transport {asked}: {why}"),
                ))
            }
        };
        let queues = match (transport, self.queues) {
            (Transport::FuseUring, Some(Ok(n))) => n,
            _ => 0,
        };
        let depth = match (self.depth, transport) {
            (Some(d), _) => usize::from(d),
            (None, Transport::FuseUring) => {
                let entry = fuse_uring::entry_bytes(negotiated);
                auto_ring_depth(self.max_in_flight, queues, entry, self.ring_memory)
            }
            (None, _) => 2,
        };
        Ok(Chosen {
            transport,
            fallback: self.fallback,
            threads: self.threads,
            depth,
            queues,
            spare: self.spare,
            ring_dev: self.ring_dev,
        })
    }
}

/// The transport chosen after INIT, ready to start.
pub(crate) struct Chosen {
    transport: Transport,
    fallback: bool,
    threads: usize,
    depth: usize,
    queues: usize,
    spare: Vec<FuseDev>,
    ring_dev: Option<FuseDev>,
}

impl Chosen {
    /// How many threads dispatch requests (and so may each hold a listing buffer at once).
    pub(crate) fn dispatching_threads(&self) -> usize {
        match self.transport {
            Transport::Threads | Transport::Uring => self.threads,
            Transport::FuseUring => self.queues + 1,
        }
    }

    /// fuse-uring's ring: entries (over all queues) and the bytes their buffers take.
    pub(crate) fn ring(&self, negotiated: &Negotiated) -> (usize, usize) {
        match self.transport {
            Transport::FuseUring => {
                let entries = self.queues * self.depth;
                (entries, entries * fuse_uring::entry_bytes(negotiated))
            }
            _ => (0, 0),
        }
    }

    /// How many polling transport threads may wait for room under `max_in_flight` at once.
    pub(crate) fn pollers(&self) -> usize {
        self.threads + 1
    }

    /// The request-sized buffers it keeps on loan while serving: each worker's reads, or
    /// each queue's entries and its copy-out buffer plus the /dev/fuse reader's.
    pub(crate) fn request_buffers(&self) -> usize {
        match self.transport {
            Transport::Threads => self.threads,
            Transport::Uring => self.threads * self.depth,
            Transport::FuseUring => self.queues * (self.depth + 1) + 1,
        }
    }

    /// The transport it will serve with (unless fuse-uring's REGISTER is refused).
    pub(crate) fn transport(&self) -> Transport {
        self.transport
    }

    /// Start serving `fs` with `workers` (made for [`transport`](Self::transport)); `dev` is
    /// the session fd INIT was read on. If the kernel refuses fuse-uring's REGISTER (it then
    /// turns the rings off and queues requests on /dev/fuse), falls back to [`FALLBACK`] on
    /// the spare fds, or fails if fallback is off. On failure the threads already started
    /// are in `workers`, for the session to stop.
    pub(crate) fn start<F: Filesystem>(
        self,
        workers: &mut Workers,
        fs: &Arc<F>,
        dev: FuseDev,
        shared: &Arc<Shared>,
    ) -> io::Result<()> {
        let mut devs = std::iter::once(dev).chain(self.spare);
        if self.transport != Transport::FuseUring {
            return start_workers(workers, self.transport, 0, devs, fs, shared, self.depth);
        }
        // One /dev/fuse reader is enough for FORGET and INTERRUPT; the rings do the rest.
        // The other fds stand by in case the kernel refuses the rings.
        if let Some(d) = devs.next() {
            reader::start(workers, 0, fs, d, shared, true)?;
        }
        let Some(ring_dev) = self.ring_dev else {
            return Err(io::Error::other("fuse-uring chosen without its fd"));
        };
        let ring_dev = Arc::new(ring_dev);
        match fuse_uring::start(workers, fs, &ring_dev, shared, self.queues, self.depth) {
            Ok(()) => Ok(()),
            Err((true, e)) if self.fallback => {
                log::warn!("{e}; serving with {FALLBACK}");
                workers.transport = FALLBACK;
                start_workers(workers, FALLBACK, 1, devs, fs, shared, self.depth)
            }
            // Refused with fallback off: as for any transport that cannot run.
            Err((true, e)) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("transport fuse-uring: {e}"),
            )),
            Err((false, e)) => Err(e),
        }
    }
}

/// fuse-uring's entries per queue when `Config::ring_depth` leaves it to us: enough for
/// `max_in_flight` requests spread over the queues (the kernel queues a request on its
/// caller's CPU), as many as `memory` holds at `entry` bytes each, and never fewer than 2.
fn auto_ring_depth(max_in_flight: usize, queues: usize, entry: usize, memory: usize) -> usize {
    let queues = queues.max(1);
    let wanted = max_in_flight.div_ceil(queues);
    let affordable = memory / (queues * entry.max(1));
    wanted.min(affordable).clamp(2, 4096)
}

/// Start a `threads` or `uring` worker on each of `devs`, numbered from `first`.
fn start_workers<F: Filesystem>(
    workers: &mut Workers,
    transport: Transport,
    first: usize,
    devs: impl Iterator<Item = FuseDev>,
    fs: &Arc<F>,
    shared: &Arc<Shared>,
    depth: usize,
) -> io::Result<()> {
    for (i, d) in devs.enumerate() {
        match transport {
            Transport::Uring => uring::start(workers, first + i, fs, d, shared, depth)?,
            _ => reader::start(workers, first + i, fs, d, shared, false)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::auto_ring_depth;

    #[test]
    fn ring_depth_follows_in_flight_within_memory() {
        let mib = 1 << 20;
        // 1024 in flight over 2 queues wants 512 each; 1 MiB entries afford 24 in 48 MiB.
        assert_eq!(auto_ring_depth(1024, 2, mib + 8192, 48 * mib), 23);
        // 256 KiB entries: 93 per queue.
        assert_eq!(auto_ring_depth(1024, 2, (256 << 10) + 8192, 48 * mib), 93);
        // Small bounds are met exactly; never below 2 per queue, even on 64 CPUs.
        assert_eq!(auto_ring_depth(64, 2, 256 << 10, 48 * mib), 32);
        assert_eq!(auto_ring_depth(1024, 64, mib + 8192, 48 * mib), 2);
        assert_eq!(auto_ring_depth(1, 4, 4096, 0), 2);
    }
}
