//! Mount an empty in-memory POSIX filesystem (`fusefs::memfs::MemFs`).
//!
//! `cargo run --release --example memfs -- MOUNTPOINT [--size BYTES[K|M|G]] [--ttl SECONDS]
//!  [OPTIONS]` (`--help` lists them).
//!
//! Mounted with `default_permissions` (the kernel checks permissions) and, by default, 1 s
//! entry and attribute timeouts. Serves until unmounted or SIGINT / SIGTERM, then unmounts
//! and exits 0. SIGUSR1 prints the session's statistics and the nodes and bytes held.

mod common;

use fusefs::memfs::{MemFs, MemFsOptions};
use fusefs::{Session, TerminationSignals};
use nix::sys::signal::Signal;
use std::process::exit;
use std::time::Duration;

/// Mount an in-memory POSIX filesystem (tmpfs semantics).
#[derive(clap::Parser)]
#[command(name = "memfs")]
struct Args {
    #[command(flatten)]
    common: common::Common,

    /// Cap on the file data held, e.g. 512M; past it writes fail with ENOSPC [default: half
    /// of memory, as tmpfs].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    size: Option<u64>,

    /// Entry and attribute timeouts, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = common::parse_seconds)]
    ttl: f64,

    /// No page cache: files opened with DIRECT_IO and PARALLEL_DIRECT_WRITES, so every read
    /// and write reaches MemFs.
    #[arg(long)]
    direct_io: bool,

    /// Serve POSIX and flock locks in MemFs instead of the kernel's local locking (each close
    /// then costs a FLUSH). Not with --async.
    #[arg(long, conflicts_with = "serve_async")]
    locks: bool,

    /// Serve through the async API (`AsyncFs`: a task per request) instead of the sync one.
    #[arg(long = "async")]
    serve_async: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| "not a size (e.g. 512M)".to_string())
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    args.common.init_logger();
    let mut opts = MemFsOptions::default();
    if args.size.is_some() {
        opts.size_limit = args.size;
    }
    opts.entry_ttl = Duration::from_secs_f64(args.ttl);
    opts.attr_ttl = opts.entry_ttl;
    opts.direct_io = args.direct_io;
    opts.serve_locks = args.locks;
    let config = args.common.config(|c| {
        c.mount.fsname = "memfs".into();
        c.mount.subtype = Some("memfs".into());
    });
    let mnt = &args.common.mountpoint;
    // Before any thread starts (the async runtime's too): threads inherit the signal mask.
    let served = TerminationSignals::block_with(&[Signal::SIGUSR1]).and_then(|signals| {
        if args.serve_async {
            let fs = fusefs::AsyncFs::new(MemFs::new(opts))?;
            run(mnt, fs, config, signals, |fs| fs.inner())
        } else {
            run(mnt, MemFs::new(opts), config, signals, |fs| fs)
        }
    });
    if let Err(e) = served {
        eprintln!("memfs: {e}");
        exit(1);
    }
}

/// Serve `fs` at `mnt` until a signal or an unmount, reporting on SIGUSR1 and at exit;
/// `memfs` finds the MemFs in it.
fn run<F: fusefs::Filesystem>(
    mnt: &std::path::Path,
    fs: F,
    config: fusefs::Config,
    signals: TerminationSignals,
    memfs: impl Fn(&F) -> &MemFs,
) -> std::io::Result<()> {
    let session = Session::mount(fs, mnt, config)?;
    eprintln!(
        "memfs: serving {} over {} (Ctrl-C or umount to stop)",
        mnt.display(),
        session.transport()
    );
    let report = |s: &Session<F>, when: &str| {
        let stats = memfs(s.filesystem()).stats();
        eprintln!("--- memfs statistics ---\n{}", s.stats());
        eprintln!("memfs: {when} {} nodes, {} bytes of data", stats.nodes, stats.data_bytes);
    };
    common::serve_with_reports("memfs", session, &signals, report)
}
