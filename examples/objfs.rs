//! Mount any store Apache OpenDAL reaches (S3 and S3-compatible stores, WebDAV, SFTP, GCS,
//! Azure Blob, a local directory, memory) through `CachedFs`. Prints cache and per-opcode
//! statistics at exit and on SIGUSR1. Needs the `opendal` feature:
//!
//! `cargo run --release --features opendal --example objfs -- s3 /mnt/b -O bucket=b
//!  -O endpoint=http://127.0.0.1:9000 -O region=us-east-1 [--preset remote] [--read-only]`
//!
//! SCHEME and the `-O` options are OpenDAL's (its docs list each service's); credentials
//! may also come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
//! A store that does not answer, or refuses, is one line on stderr and no mount.

mod common;

use fusefs::cached::{CacheConfig, CachedFs};
use fusefs::opendal::{OpenDalBackend, OpenDalConfig};
use fusefs::TerminationSignals;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::process::exit;

/// Mount an object store, WebDAV or SFTP server (any OpenDAL service).
#[derive(clap::Parser)]
#[command(name = "objfs")]
struct Args {
    /// The OpenDAL service: s3, webdav, sftp, gcs, azblob, fs, memory, ...
    scheme: String,

    #[command(flatten)]
    common: common::Common,

    /// A service option, as OpenDAL names it (bucket=..., endpoint=..., root=...).
    #[arg(short = 'O', value_name = "KEY=VALUE", value_parser = parse_option)]
    store_options: Vec<(String, String)>,

    /// Cache preset: remote, local, read-heavy, write-heavy, random-access or none.
    #[arg(long, value_name = "NAME", default_value = "remote", value_parser = common::parse_preset)]
    preset: CacheConfig,

    /// Refuse every change (EROFS), and mount read-only.
    #[arg(long)]
    read_only: bool,

    /// Owner shown for every file and directory [default: the daemon's user].
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,

    /// Group shown for every file and directory [default: the daemon's group].
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,

    /// Permission bits shown for files, in octal.
    #[arg(long, value_name = "MODE", default_value = "644", value_parser = parse_mode)]
    file_mode: u16,

    /// Permission bits shown for directories, in octal.
    #[arg(long, value_name = "MODE", default_value = "755", value_parser = parse_mode)]
    dir_mode: u16,

    /// Where writes are staged before their upload [default: the temporary directory].
    #[arg(long, value_name = "DIR")]
    staging_dir: Option<PathBuf>,

    /// How far ahead sequential readers are fetched, in MiB (0: no prefetch).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    prefetch_mib: u64,

    /// Small files (256 KiB at most) of the same directory fetched ahead when one is read
    /// from its start (0: off).
    #[arg(long, value_name = "N", default_value_t = 8)]
    files_ahead: usize,

    /// Times a failed store call is tried again (backoff from 1 s, doubling) before it fails.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: usize,

    /// Bytes per uploaded part, in MiB (S3 takes no part under 5 MiB but the last).
    #[arg(long, value_name = "MIB", default_value_t = 8, value_parser = clap::value_parser!(u64).range(5..=5120))]
    part_mib: u64,
    /// Parts of one file uploaded at once. At 1 an upload holds two parts in memory; more
    /// is faster over a link with latency, and holds about twice as many more (see
    /// `OpenDalConfig::upload_concurrency`).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    upload_concurrency: u64,
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

fn parse_mode(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| "an octal mode, at most 7777".into())
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    args.common.init_logger();
    let scheme = args.scheme.clone();
    let read_only = args.read_only;
    let config = args.common.config(|c| {
        c.mount.fsname = format!("objfs:{scheme}");
        c.mount.subtype = Some("objfs".into());
        c.mount.read_only = read_only;
    });
    // SFTP's ssh master processes daemonize: they are ours to reap, not PID 1's.
    common::orphans::adopt();
    let r = run(&args, config);
    common::orphans::reap_at_exit(std::time::Duration::from_secs(2));
    if let Err(e) = r {
        eprintln!("objfs: {e}");
        exit(1);
    }
}

fn run(args: &Args, config: fusefs::Config) -> std::io::Result<()> {
    let mut cfg = OpenDalConfig::default();
    cfg.presentation.uid = args.uid.unwrap_or(cfg.presentation.uid);
    cfg.presentation.gid = args.gid.unwrap_or(cfg.presentation.gid);
    cfg.presentation.file_mode = args.file_mode;
    cfg.presentation.dir_mode = args.dir_mode;
    if let Some(d) = &args.staging_dir {
        cfg.staging_dir = d.clone();
    }
    cfg.prefetch.window = args.prefetch_mib << 20;
    cfg.siblings.ahead = args.files_ahead;
    cfg.part_size = (args.part_mib << 20) as usize;
    cfg.upload_concurrency = args.upload_concurrency as usize;
    cfg.read_only = args.read_only;
    cfg.retries = args.retries;

    // Signals first: every thread started after this (the runtime's too) inherits the mask,
    // so SIGTERM reaches `signals.wait` and unmounts instead of killing the process.
    let signals = TerminationSignals::block_with(&[Signal::SIGUSR1])?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let served = serve(args, cfg, config, &signals, &runtime);
    // Also after a failed connect or mount: a task the store's client left behind (a
    // connection's teardown) cannot hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    served
}

fn serve(
    args: &Args,
    cfg: OpenDalConfig,
    config: fusefs::Config,
    signals: &TerminationSignals,
    runtime: &tokio::runtime::Runtime,
) -> std::io::Result<()> {
    let options = args.store_options.clone();
    let backend = runtime.block_on(OpenDalBackend::connect(&args.scheme, options, cfg))?;
    let builder = CachedFs::builder(backend)
        .cache(args.preset)
        .runtime(runtime.handle().clone())
        .default_permissions(!args.common.no_default_permissions);
    let mnt = &args.common.mountpoint;
    let session = builder.mount(mnt, config)?;
    eprintln!("objfs: serving {} at {} over {}", args.scheme, mnt.display(), session.transport());
    common::serve_with_reports("objfs", session, signals, |s, when| {
        let fs = s.filesystem().inner();
        eprintln!("--- objfs statistics ---\n{}{}", fs.stats(), s.stats());
        eprintln!("store requests: {}", fs.backend().store_requests());
        // Last, and on one line: a reader of the output knows the report is whole.
        eprintln!(
            "objfs: {when} {} uploads pending, {} ranged GETs, {} files read ahead and used",
            fs.backend().pending_uploads(),
            fs.backend().ranged_gets(),
            fs.backend().read_ahead_hits(),
        );
    })
}
