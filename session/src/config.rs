//! Mount and session configuration.

use fusefs_proto::InitFlags;
use std::time::Duration;

/// How to mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MountMethod {
    /// mount(2) when running as root, `fusermount3` otherwise.
    #[default]
    Auto,
    /// mount(2) only (needs CAP_SYS_ADMIN; not with `auto_unmount`).
    Syscall,
    /// The setuid helper `fusermount3` only (works for unprivileged users).
    Fusermount,
}

/// Options of the mount itself (what `mount -o` would take).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountOptions {
    /// The source shown in /proc/mounts (`fsname=`); default "fusefs".
    pub fsname: String,
    /// The type shown as `fuse.SUBTYPE` (`subtype=`); default none.
    pub subtype: Option<String>,
    /// Let users other than the mounter access the filesystem (`allow_other`; for
    /// non-root mounts /etc/fuse.conf must say `user_allow_other`).
    pub allow_other: bool,
    /// Let the kernel check permissions from the mode bits (`default_permissions`).
    pub default_permissions: bool,
    /// Mount read-only (`ro`).
    pub read_only: bool,
    /// Largest READ request (`max_read=`); 0 leaves the kernel's limit.
    pub max_read: u32,
    /// No set-user-id / set-group-id execution (`nosuid`); on by default, as with libfuse.
    pub nosuid: bool,
    /// Device files are not devices (`nodev`); on by default, as with libfuse.
    pub nodev: bool,
    /// No execution of programs (`noexec`).
    pub noexec: bool,
    /// Do not update access times (`noatime`).
    pub noatime: bool,
    /// Unmount when the daemon dies, even by SIGKILL (`auto_unmount`): `fusermount3` mounts
    /// (also as root, since mount(2) has no such thing) and stays behind, watching a socket
    /// that the daemon's death closes, to unmount then; a forked watcher of the session's
    /// own (`auto_unmount` in `ps`) does the same where fusermount3 cannot tell (the ring
    /// transports; a user's mount without `allow_other`). Needs `fusermount3` (package
    /// fuse3).
    pub auto_unmount: bool,
    /// How to mount.
    pub method: MountMethod,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            fsname: "fusefs".into(),
            subtype: None,
            allow_other: false,
            default_permissions: false,
            read_only: false,
            max_read: 0,
            nosuid: true,
            nodev: true,
            noexec: false,
            noatime: false,
            auto_unmount: false,
            method: MountMethod::Auto,
        }
    }
}

impl MountOptions {
    /// Apply one option in `mount -o` syntax (`allow_other`, `fsname=x`, `ro`, `max_read=N`,
    /// ...). Several may be given separated by commas. Unknown options are an error that
    /// names them.
    pub fn parse(&mut self, opts: &str) -> Result<(), String> {
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let flag = |v: Option<&str>| match v {
                None => Ok(()),
                Some(_) => Err(format!("mount option '{key}' takes no value")),
            };
            match key {
                "fsname" => self.fsname = need(key, value)?.to_owned(),
                "subtype" => self.subtype = Some(need(key, value)?.to_owned()),
                "allow_other" => flag(value).map(|_| self.allow_other = true)?,
                "default_permissions" => flag(value).map(|_| self.default_permissions = true)?,
                "ro" => flag(value).map(|_| self.read_only = true)?,
                "rw" => flag(value).map(|_| self.read_only = false)?,
                "suid" => flag(value).map(|_| self.nosuid = false)?,
                "nosuid" => flag(value).map(|_| self.nosuid = true)?,
                "dev" => flag(value).map(|_| self.nodev = false)?,
                "nodev" => flag(value).map(|_| self.nodev = true)?,
                "exec" => flag(value).map(|_| self.noexec = false)?,
                "noexec" => flag(value).map(|_| self.noexec = true)?,
                "atime" => flag(value).map(|_| self.noatime = false)?,
                "noatime" => flag(value).map(|_| self.noatime = true)?,
                "auto_unmount" => flag(value).map(|_| self.auto_unmount = true)?,
                "max_read" => {
                    let v = need(key, value)?;
                    self.max_read = v.parse().map_err(|_| format!("max_read={v}: not a number"))?;
                }
                _ => return Err(format!("unknown mount option '{opt}'")),
            }
        }
        let bad = |s: &str| s.is_empty() || s.contains([',', '\0', ' ', '\t', '\n']);
        if bad(&self.fsname) {
            return Err(format!(
                "fsname {:?} must be non-empty without commas or spaces",
                self.fsname
            ));
        }
        if self.subtype.as_deref().is_some_and(bad) {
            return Err("subtype must be non-empty without commas or spaces".into());
        }
        Ok(())
    }
}

fn need<'a>(key: &str, value: Option<&'a str>) -> Result<&'a str, String> {
    value.ok_or_else(|| format!("mount option '{key}' needs a value ({key}=...)"))
}

/// How requests travel between the kernel and the filesystem. All three serve the same
/// [`Filesystem`](crate::Filesystem) the same way; they differ in speed (BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Transport {
    /// [`Config::threads`] workers, each with its own cloned /dev/fuse fd: a blocking read(2)
    /// per request and a writev(2) per reply. The portable baseline.
    Threads,
    /// [`Config::threads`] workers, each with an io_uring keeping [`Config::ring_depth`]
    /// reads on its cloned /dev/fuse fd in flight, into buffers from the session's pool.
    Uring,
    /// The kernel's FUSE-over-io_uring (Linux 6.14+, module parameter `enable_uring`): one
    /// queue per possible CPU, served by a thread pinned to that CPU, so a request is
    /// answered on the CPU that made it. A reader stays on /dev/fuse for FORGET and
    /// INTERRUPT.
    #[default]
    FuseUring,
}

impl Transport {
    /// Every transport, in the order of the command-line names.
    pub const ALL: [Transport; 3] = [Transport::Threads, Transport::Uring, Transport::FuseUring];

    /// The command-line name: `threads`, `uring` or `fuse-uring`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Threads => "threads",
            Transport::Uring => "uring",
            Transport::FuseUring => "fuse-uring",
        }
    }
}

impl core::fmt::Display for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Transport, String> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown transport '{s}' (threads, uring or fuse-uring)"))
    }
}

/// Everything a session is started with. `Config::default()` is a good start.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The mount itself.
    pub mount: MountOptions,
    /// Worker threads of the `threads` transport; default: the number of CPUs.
    pub threads: usize,
    /// Largest WRITE payload to negotiate; default 1 MiB.
    pub max_write: u32,
    /// Largest request in pages; default 256 (the kernel clamps to
    /// /proc/sys/fs/fuse/max_pages_limit).
    pub max_pages: u16,
    /// Readahead limit to ask for (never more than the kernel offers); default 1 MiB.
    pub max_readahead: u32,
    /// Outstanding background requests; 0 keeps the kernel's default (12).
    pub max_background: u16,
    /// Background requests at which the kernel considers us congested; 0 keeps its default.
    pub congestion_threshold: u16,
    /// Timestamp granularity in nanoseconds; default 1.
    pub time_gran: u32,
    /// Capabilities to ask for; the kernel grants those it offers. Default:
    /// ASYNC_READ, BIG_WRITES, PARALLEL_DIROPS, DO_READDIRPLUS, READDIRPLUS_AUTO, MAX_PAGES.
    ///
    /// The ones that change what the kernel caches, and so how many requests it sends:
    /// - PASSTHROUGH: reads and writes of files opened with a backing file never reach the
    ///   filesystem ([`BackingFiles`](crate::BackingFiles)); with
    ///   [`max_stack_depth`](Self::max_stack_depth). Not with WRITEBACK_CACHE: asking for
    ///   both drops PASSTHROUGH with a warning (the kernel would drop it silently).
    /// - AUTO_INVAL_DATA: the kernel drops a file's cached pages when GETATTR shows its mtime
    ///   or size changed (for data changed behind the mount); EXPLICIT_INVAL_DATA: it never
    ///   does on its own, the filesystem invalidates with
    ///   [`Notifier::inval_inode`](crate::Notifier::inval_inode).
    /// - WRITEBACK_CACHE: see [`writeback_cache`](Self::writeback_cache).
    ///
    /// Per open file, the reply's `OpenFlags` choose: KEEP_CACHE (keep the page cache
    /// across opens: right when the data cannot change behind the mount), CACHE_DIR (the
    /// kernel caches a directory's listing, on OPENDIR), NOFLUSH (no FLUSH on close),
    /// DIRECT_IO (no page cache for this open) and PARALLEL_DIRECT_WRITES (with DIRECT_IO,
    /// concurrent writes to one file are not serialized by the kernel).
    pub capabilities: InitFlags,
    /// Ask for WRITEBACK_CACHE (adds it to [`capabilities`](Self::capabilities) at INIT);
    /// default false. The kernel then buffers writes in the page cache and sends them later,
    /// in large WRITEs, which makes small writes much faster. The consequences: the
    /// kernel owns a file's size and mtime while it has dirty pages (the filesystem's
    /// attributes are trusted less), WRITE requests come from the kernel's flusher, not the
    /// writer (their uid and pid are not the writer's), a file opened write-only may get
    /// READs (to fill partial pages: open it read-write underneath), O_APPEND is handled by
    /// the kernel, and data changed behind the mount is seen late. Not with PASSTHROUGH.
    pub writeback_cache: bool,
    /// How deep the filesystems under a passthrough backing file may stack (1 or 2): 1 for
    /// backing files on an ordinary filesystem, 2 when they are themselves on a FUSE or
    /// overlay mount; default 1. Used when PASSTHROUGH is asked for.
    pub max_stack_depth: u32,
    /// How requests travel between the kernel and the filesystem; default
    /// [`Transport::FuseUring`], which falls back to [`Transport::Threads`] when the kernel
    /// does not offer it (see [`Config::transport_fallback`]).
    pub transport: Transport,
    /// Whether a ring transport that cannot run falls back to `threads` (logging why) instead
    /// of failing the mount with `ErrorKind::Unsupported`: `fuse-uring` when the kernel does
    /// not offer FUSE-over-io_uring or refuses its rings, either ring transport when io_uring
    /// itself cannot be set up (disabled by sysctl or a seccomp filter); default true.
    pub transport_fallback: bool,
    /// Requests handed to the filesystem and not yet answered, at most; default 1024. A
    /// filesystem that answers later (a thread pool, the async API) can have this many
    /// waiting on a slow backend, whatever the number of transport threads. At the bound a
    /// transport thread that reads a request that takes a reply holds it until a reply makes
    /// room, and reads no more meanwhile (the kernel keeps the rest queued: nothing is dropped
    /// or failed); INTERRUPT and FORGET, which the kernel hands out first, still get through
    /// until every thread holds a request. Threads racing at the bound may each dispatch one
    /// more. On `fuse-uring` the ring entries are the bound (see
    /// [`ring_depth`](Self::ring_depth)). Replies a filesystem keeps count: one that waits for
    /// a later request (a lock released by another) must not let the bound fill up.
    pub max_in_flight: usize,
    /// The ring transports' depth: reads kept in flight per `uring` worker (default 2), and
    /// entries per CPU queue for `fuse-uring`, each holding a request-sized payload buffer.
    /// `None` (the default) gives `uring` 2 and `fuse-uring` enough entries for
    /// `max_in_flight` requests across its queues, as many as fit in
    /// [`ring_memory`](Self::ring_memory) and at least 2 per queue.
    pub ring_depth: Option<u16>,
    /// The memory `fuse-uring`'s automatic depth may give its ring entries (header page plus
    /// payload, over all queues); default 48 MiB. The payload follows the negotiated
    /// `max_write` and `max_pages`: smaller requests buy more entries (BENCHMARKS.md).
    pub ring_memory: usize,
    /// The highest protocol minor the session speaks (7.x); default, and most,
    /// [`KERNEL_MINOR_VERSION`](fusefs_proto::abi::KERNEL_MINOR_VERSION) (45). Lower it to
    /// talk to the kernel as a server of that protocol would: the session then sees the
    /// kernel's offer as an older kernel's (its minor capped, the capabilities introduced
    /// later masked out: no passthrough before 40, no fuse-uring before 42, which then
    /// falls back to `threads`), so a filesystem can be tried on the protocol of the
    /// kernels its users run (31: 5.x; 36: 6.1). Requests a newer kernel sends whatever the
    /// minor (STATX, TMPFILE) still reach it. From 12 (the oldest fusefs speaks) to 45;
    /// anything else fails the mount with `ErrorKind::InvalidInput`.
    pub protocol_minor: u32,
    /// Log every request and reply at `info` level (the examples' `--debug`).
    pub debug: bool,
    /// How long [`Session::unmount`](crate::Session::unmount) waits for workers after the
    /// kernel lets go; default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mount: MountOptions::default(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            max_write: 1 << 20,
            max_pages: 256,
            max_readahead: 1 << 20,
            max_background: 0,
            congestion_threshold: 0,
            time_gran: 1,
            capabilities: Config::DEFAULT_CAPABILITIES,
            writeback_cache: false,
            max_stack_depth: 1,
            transport: Transport::default(),
            transport_fallback: true,
            max_in_flight: 1024,
            ring_depth: None,
            ring_memory: 48 << 20,
            protocol_minor: fusefs_proto::abi::KERNEL_MINOR_VERSION,
            debug: false,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// The capabilities asked for by default.
    pub const DEFAULT_CAPABILITIES: InitFlags = InitFlags::ASYNC_READ
        .union(InitFlags::BIG_WRITES)
        .union(InitFlags::PARALLEL_DIROPS)
        .union(InitFlags::DO_READDIRPLUS)
        .union(InitFlags::READDIRPLUS_AUTO)
        .union(InitFlags::MAX_PAGES);

    /// Check what a mount cannot start with; the reason, naming the setting.
    pub(crate) fn check(&self) -> std::io::Result<()> {
        use fusefs_proto::abi::{KERNEL_MINOR_VERSION, MIN_KERNEL_MINOR_VERSION};
        if !(MIN_KERNEL_MINOR_VERSION..=KERNEL_MINOR_VERSION).contains(&self.protocol_minor) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "protocol_minor {}: fusefs speaks 7.{MIN_KERNEL_MINOR_VERSION} to \
                     7.{KERNEL_MINOR_VERSION}",
                    self.protocol_minor
                ),
            ));
        }
        Ok(())
    }

    /// Size of each worker's request buffer: room for the largest WRITE plus a page of
    /// headers, and at least 64 KiB + a page so a maximal SETXATTR (XATTR_SIZE_MAX) fits.
    pub fn request_buffer_size(max_write: u32, max_pages: u16) -> usize {
        let payload = (max_write as usize).max(max_pages as usize * 4096).max(64 * 1024);
        payload + 4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_parse() {
        let mut o = MountOptions::default();
        o.parse("allow_other,fsname=mem,subtype=memfs,ro,max_read=65536,auto_unmount").unwrap();
        assert!(o.allow_other && o.read_only && o.auto_unmount);
        assert_eq!(o.fsname, "mem");
        assert_eq!(o.subtype.as_deref(), Some("memfs"));
        assert_eq!(o.max_read, 65536);
        assert!(o.parse("bogus").unwrap_err().contains("bogus"));
        assert!(o.parse("max_read=x").unwrap_err().contains("max_read"));
        assert!(o.parse("fsname").unwrap_err().contains("needs a value"));
        assert!(o.parse("ro=1").unwrap_err().contains("takes no value"));
        assert!(o.parse("fsname=a b").is_err());
    }

    #[test]
    fn transport_names_round_trip() {
        for t in Transport::ALL {
            assert_eq!(t.name().parse::<Transport>(), Ok(t));
        }
        assert!("io_uring".parse::<Transport>().unwrap_err().contains("fuse-uring"));
    }
}
