//! Mirror a directory (`fusefs::passthrough::PassthroughFs`), its regular files' reads and
//! writes handed to the kernel with FUSE_PASSTHROUGH.
//!
//! `cargo run --release --example passthrough -- SOURCE MOUNTPOINT [--no-passthrough]
//!  [--no-cache] [--ttl SECONDS] [OPTIONS]` (`--help` lists them).
//!
//! Passthrough needs root (CAP_SYS_ADMIN) and Linux 6.9+; without them the example serves the
//! data itself and says why once, as it does with `--no-passthrough` (to compare the two).
//! Mounted with `default_permissions`, so the kernel checks each caller's permissions from
//! the mode bits (the daemon acts as root). Assumes it is the only writer of SOURCE unless
//! `--no-cache` is given. Prints the nodes it knows, the files open and the backing files
//! registered on SIGUSR1 and at exit. Serves until unmounted or SIGINT / SIGTERM, then
//! unmounts and exits 0.

mod common;

use fusefs::passthrough::{PassthroughFs, PassthroughOptions};
use fusefs::{InitFlags, Session, TerminationSignals};
use nix::sys::signal::Signal;
use std::process::exit;
use std::time::Duration;

/// Mirror a directory, with the kernel serving file data directly (FUSE_PASSTHROUGH).
#[derive(clap::Parser)]
#[command(name = "passthrough")]
struct Args {
    /// The directory to mirror.
    source: String,

    #[command(flatten)]
    common: common::Common,

    /// Serve file data through READ and WRITE instead of handing it to the kernel.
    #[arg(long)]
    no_passthrough: bool,

    /// SOURCE may change behind the mount: no page cache kept across opens, no cached
    /// listings or negative lookups.
    #[arg(long)]
    no_cache: bool,

    /// Answer STATX with the source's birth times (one more request for the first stat of
    /// each file by callers that ask for it).
    #[arg(long)]
    statx: bool,

    /// POSIX ACLs as on the source: enforced by the kernel, default ACLs inherited (one
    /// GETXATTR more per inode, for its ACL).
    #[arg(long)]
    acl: bool,

    /// File handles of the mount that outlive this daemon (node ids made from the source's
    /// own handles; one name_to_handle_at more per new node).
    #[arg(long)]
    stable_handles: bool,

    /// How deep the filesystems under SOURCE stack: 2 if SOURCE is on a FUSE or overlay
    /// mount (the kernel refuses deeper backing files; they are then served).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    max_stack_depth: u32,

    /// Entry and attribute timeouts, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = common::parse_seconds)]
    ttl: f64,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    args.common.init_logger();
    let mut opts = PassthroughOptions::default();
    opts.passthrough = !args.no_passthrough;
    opts.cache = !args.no_cache;
    opts.statx = args.statx;
    opts.posix_acl = args.acl;
    opts.stable_handles = args.stable_handles;
    opts.entry_ttl = Duration::from_secs_f64(args.ttl);
    opts.attr_ttl = opts.entry_ttl;
    let source = args.source.clone();
    let config = args.common.config(|c| {
        c.mount.fsname = format!("passthrough:{source}");
        c.mount.subtype = Some("passthrough".into());
        c.max_stack_depth = args.max_stack_depth;
    });
    // Files are created with the mode the kernel sends, which has the caller's umask
    // applied already (or, with --acl, left to us: it is set per thread for the call); ours
    // must not mask it again.
    rustix::process::umask(rustix::fs::Mode::empty());
    // One O_PATH fd per node the kernel knows: allow as many as the hard limit does.
    if let Ok(lim) = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum.ok_or(())
    {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { current: Some(lim), maximum: Some(lim) },
        );
    }
    if let Err(e) = run(&args.source, &args.common.mountpoint, opts, config) {
        eprintln!("passthrough: {e}");
        exit(1);
    }
}

fn run(
    source: &str,
    mnt: &std::path::Path,
    opts: PassthroughOptions,
    config: fusefs::Config,
) -> std::io::Result<()> {
    let fs = PassthroughFs::new(source, opts)?;
    let signals = TerminationSignals::block_with(&[Signal::SIGUSR1])?;
    let session = Session::mount(fs, mnt, config)?;
    let mode = if !session.filesystem().uses_passthrough() {
        "data served by the daemon"
    } else if session.negotiated().granted.contains(InitFlags::PASSTHROUGH) {
        "passthrough granted"
    } else {
        "passthrough not offered by the kernel: data served by the daemon"
    };
    eprintln!(
        "passthrough: serving {source} at {} over {} ({mode})",
        mnt.display(),
        session.transport()
    );
    // What a leak would show; on SIGUSR1 and at exit.
    let report = |s: &Session<PassthroughFs>, when: &str| {
        let (nodes, open) = s.filesystem().counts();
        let backing = s.backing_files().live();
        eprintln!("--- passthrough statistics ---\n{}", s.stats());
        eprintln!("passthrough: {when} {nodes} nodes known, {open} open, {backing} backing files");
    };
    common::serve_with_reports("passthrough", session, &signals, report)
}
