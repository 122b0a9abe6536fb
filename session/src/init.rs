//! INIT: what the kernel offers, what the filesystem asks for, what was agreed, and the
//! handshake that reads the kernel's INIT and answers it.

use crate::config::Config;
use crate::dev::FuseDev;
use crate::notifier::Notifier;
use crate::page::PageBuf;
use fusefs_proto::abi::{
    self, InitOut, KERNEL_MINOR_VERSION, KERNEL_VERSION, MIN_KERNEL_MINOR_VERSION,
};
use fusefs_proto::request::Init;
use fusefs_proto::{Dialect, Errno, InitFlags, Operation, OutMessage, Request};
use std::io;

/// What the kernel offered in INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffer {
    /// The kernel's protocol major version.
    pub major: u32,
    /// The kernel's protocol minor version.
    pub minor: u32,
    /// The kernel's readahead limit.
    pub max_readahead: u32,
    /// The capabilities it supports.
    pub flags: InitFlags,
}

/// The settings to answer INIT with. [`Filesystem::init`](crate::Filesystem::init) sees the
/// kernel's offer and may change any of these; they start from the [`Config`]. It also
/// hands the filesystem the session's [`Notifier`], for a filesystem that tells the kernel
/// about changes made behind the mount's back (which is why it is not `Copy`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelConfig {
    /// What the kernel offered (read-only for the filesystem).
    pub offer: KernelOffer,
    /// Capabilities to ask for; those the kernel did not offer are dropped.
    pub capabilities: InitFlags,
    /// Largest WRITE payload.
    pub max_write: u32,
    /// Readahead limit (capped at the kernel's offer).
    pub max_readahead: u32,
    /// Largest request in pages (with MAX_PAGES).
    pub max_pages: u16,
    /// Outstanding background requests (0: kernel default).
    pub max_background: u16,
    /// Congestion threshold (0: kernel default).
    pub congestion_threshold: u16,
    /// Timestamp granularity in ns.
    pub time_gran: u32,
    /// Passthrough stacking depth (with PASSTHROUGH; 1 or 2).
    pub max_stack_depth: u32,
    /// Seconds after which the kernel aborts a request not answered (REQUEST_TIMEOUT; 0 off).
    pub request_timeout: u16,
    /// The session's notifier (a detached one, whose every call fails, in the test harness).
    pub(crate) notifier: Notifier,
}

impl KernelConfig {
    /// The session's notifier, to keep: `init` is the one place a filesystem is handed it,
    /// so none has to be wired after mounting. Notifications work once INIT is answered:
    /// sending one from `init` itself is too early.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub(crate) fn new(offer: KernelOffer, c: &Config) -> KernelConfig {
        KernelConfig {
            offer,
            capabilities: if c.writeback_cache {
                c.capabilities | InitFlags::WRITEBACK_CACHE
            } else {
                c.capabilities
            },
            max_write: c.max_write,
            max_readahead: c.max_readahead,
            max_pages: c.max_pages,
            max_background: c.max_background,
            congestion_threshold: c.congestion_threshold,
            time_gran: c.time_gran,
            max_stack_depth: c.max_stack_depth,
            request_timeout: 0,
            notifier: Notifier::detached(),
        }
    }
}

/// The outcome of INIT, as [`Session::negotiated`](crate::Session::negotiated) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// What the kernel offered.
    pub offer: KernelOffer,
    /// The minor version both sides speak.
    pub minor: u32,
    /// What the filesystem asked for.
    pub requested: InitFlags,
    /// What was granted (asked for and offered).
    pub granted: InitFlags,
    /// Largest WRITE payload (at least 4096, as the kernel enforces).
    pub max_write: u32,
    /// Readahead limit.
    pub max_readahead: u32,
    /// Largest request in pages, as asked; the kernel may clamp it further to
    /// /proc/sys/fs/fuse/max_pages_limit.
    pub max_pages: u16,
    /// Background request limit (0: kernel default).
    pub max_background: u16,
    /// Congestion threshold (0: kernel default).
    pub congestion_threshold: u16,
    /// Timestamp granularity in ns.
    pub time_gran: u32,
    /// Request timeout in seconds (0: none).
    pub request_timeout: u16,
}

impl Negotiated {
    /// The request-layout dialect for the parser.
    pub fn dialect(&self) -> fusefs_proto::Dialect {
        fusefs_proto::Dialect::negotiated(self.minor, self.granted)
    }

    /// The largest request payload the kernel will send: the bigger of a WRITE and a
    /// max_pages request.
    pub fn max_payload(&self) -> usize {
        (self.max_write as usize).max(self.max_pages as usize * 4096)
    }

    /// The size of a buffer that holds any request of this session.
    pub(crate) fn request_size(&self) -> usize {
        crate::Config::request_buffer_size(self.max_write, self.max_pages)
    }
}

/// The kernel's INIT, as an offer to a session that speaks at most `protocol_minor`: a newer
/// kernel is seen as one of that minor, offering only what that protocol knows.
pub(crate) fn offer(init: &Init, protocol_minor: u32) -> KernelOffer {
    let minor = init.minor.min(protocol_minor);
    KernelOffer {
        major: init.major,
        minor,
        max_readahead: init.max_readahead,
        flags: init.flags & InitFlags::known_at(minor),
    }
}

/// Agree on settings: the reply to send and the outcome to remember.
pub(crate) fn negotiate(kc: &KernelConfig) -> (InitOut, Negotiated) {
    let offer = kc.offer;
    let minor = offer.minor.min(abi::KERNEL_MINOR_VERSION);
    let mut want = kc.capabilities;
    if minor >= 36 {
        // flags2 is only read with INIT_EXT, so ask for it whenever we ask for a high bit.
        want |= InitFlags::INIT_EXT;
    }
    let mut granted = want & offer.flags;
    if granted.contains(InitFlags::PASSTHROUGH | InitFlags::WRITEBACK_CACHE) {
        // The kernel would silently drop passthrough; say so instead.
        log::warn!(
            "PASSTHROUGH cannot be combined with WRITEBACK_CACHE; passthrough not asked for"
        );
        granted.remove(InitFlags::PASSTHROUGH);
    }
    let max_write = kc.max_write.max(4096);
    let max_pages = if granted.contains(InitFlags::MAX_PAGES) { kc.max_pages.max(1) } else { 32 };
    let max_stack_depth =
        if granted.contains(InitFlags::PASSTHROUGH) { kc.max_stack_depth.clamp(1, 2) } else { 0 };
    let request_timeout =
        if granted.contains(InitFlags::REQUEST_TIMEOUT) { kc.request_timeout } else { 0 };
    let out = InitOut {
        major: abi::KERNEL_VERSION,
        minor,
        max_readahead: kc.max_readahead.min(offer.max_readahead),
        flags: granted.low(),
        max_background: kc.max_background,
        congestion_threshold: kc.congestion_threshold,
        max_write,
        time_gran: kc.time_gran.clamp(1, 1_000_000_000),
        max_pages,
        map_alignment: 0,
        flags2: granted.high(),
        max_stack_depth,
        request_timeout,
        unused: [0; 11],
    };
    let negotiated = Negotiated {
        offer,
        minor,
        requested: kc.capabilities,
        granted,
        max_write,
        max_readahead: out.max_readahead,
        max_pages,
        max_background: out.max_background,
        congestion_threshold: out.congestion_threshold,
        time_gran: out.time_gran,
        request_timeout,
    };
    (out, negotiated)
}

/// Read the kernel's INIT from `dev` and answer it: the offer goes through `config`, then
/// `adjust` (the filesystem's `init`), and what both sides support is granted. A kernel with
/// a newer major version is told ours and sends INIT again; one older than 7.12 is refused.
///
/// `rings` says whether the transport can serve FUSE-over-io_uring: only then is
/// OVER_IO_URING asked for (granted without queues to serve it, the kernel would hold every
/// request), and it is dropped, with a warning, if `adjust` asks for it otherwise.
pub(crate) fn handshake(
    dev: &FuseDev,
    config: &Config,
    rings: bool,
    adjust: impl FnOnce(&mut KernelConfig) -> Result<(), Errno>,
) -> io::Result<Negotiated> {
    let mut buf = PageBuf::new(Config::request_buffer_size(config.max_write, config.max_pages));
    let mut adjust = Some(adjust);
    loop {
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN | libc::ENOENT)) =>
            {
                continue
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("reading INIT: {e}"))),
        };
        let req = Request::parse(&buf[..n], &Dialect::default()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed INIT from the kernel: {e}"),
            )
        })?;
        let unique = req.header.unique;
        let Operation::Init(init) = req.operation else {
            let _ = dev.write(&OutMessage::error(unique, Errno::EIO));
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected INIT first, got {}", req.opcode()),
            ));
        };
        if init.major > KERNEL_VERSION {
            let out = InitOut {
                major: KERNEL_VERSION,
                minor: KERNEL_MINOR_VERSION,
                ..Default::default()
            };
            dev.write(&OutMessage::init(unique, &out))?;
            continue;
        }
        if init.major < KERNEL_VERSION || init.minor < MIN_KERNEL_MINOR_VERSION {
            let _ = dev.write(&OutMessage::error(unique, Errno::EPROTO));
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the kernel speaks FUSE {}.{}; fusefs needs {KERNEL_VERSION}.{MIN_KERNEL_MINOR_VERSION} or later",
                    init.major, init.minor
                ),
            ));
        }
        let mut kc = KernelConfig::new(offer(&init, config.protocol_minor), config);
        if rings {
            kc.capabilities |= InitFlags::OVER_IO_URING;
        }
        // Taken once: the only retry (a newer major) `continue`s above.
        let Some(adjust) = adjust.take() else {
            return Err(io::Error::other("the kernel sent INIT twice"));
        };
        let adjusted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| adjust(&mut kc)))
            .unwrap_or_else(|_| {
                log::error!("the filesystem panicked in init()");
                Err(Errno::EIO)
            });
        if let Err(e) = adjusted {
            let _ = dev.write(&OutMessage::error(unique, e));
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("the filesystem refused INIT: {e}"),
            ));
        }
        if !rings && kc.capabilities.contains(InitFlags::OVER_IO_URING) {
            log::warn!("OVER_IO_URING is only asked for by the fuse-uring transport; dropped");
            kc.capabilities.remove(InitFlags::OVER_IO_URING);
        }
        let (out, negotiated) = negotiate(&kc);
        dev.write(&OutMessage::init(unique, &out))?;
        return Ok(negotiated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(minor: u32, flags: InitFlags) -> KernelOffer {
        KernelOffer { major: 7, minor, max_readahead: 128 * 1024, flags }
    }

    #[test]
    fn grants_only_what_is_offered_and_caps_readahead() {
        let cfg = Config::default();
        let kc = KernelConfig::new(
            offer(45, InitFlags::ASYNC_READ | InitFlags::MAX_PAGES | InitFlags::INIT_EXT),
            &cfg,
        );
        let (out, n) = negotiate(&kc);
        assert_eq!(n.granted, InitFlags::ASYNC_READ | InitFlags::MAX_PAGES | InitFlags::INIT_EXT);
        assert_eq!(out.max_readahead, 128 * 1024, "never more than the kernel offered");
        assert_eq!(out.max_pages, 256);
        assert_eq!(out.max_write, 1 << 20);
        assert_eq!(out.minor, 45);
    }

    #[test]
    fn older_kernel_gets_its_minor_and_no_flags2() {
        let kc = KernelConfig::new(offer(31, InitFlags::all()), &Config::default());
        let (out, n) = negotiate(&kc);
        assert_eq!(out.minor, 31);
        assert!(!n.granted.contains(InitFlags::INIT_EXT));
        assert_eq!(fusefs_proto::reply::init_out_size(out.minor), 64);
        let kc = KernelConfig::new(offer(22, InitFlags::all()), &Config::default());
        assert_eq!(fusefs_proto::reply::init_out_size(negotiate(&kc).0.minor), 24);
    }

    #[test]
    fn no_max_pages_means_the_kernel_default() {
        let kc = KernelConfig::new(offer(45, InitFlags::ASYNC_READ), &Config::default());
        assert_eq!(negotiate(&kc).1.max_pages, 32);
    }
}
