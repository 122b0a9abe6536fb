//! Mount a local directory through `LocalBackend` with latency added to every backend call,
//! to see what the caches save. Prints the cache statistics at exit and on SIGUSR1.
//!
//! `cargo run --release --example slowfs -- SOURCE_DIR MOUNTPOINT --latency-ms 5
//!  [--preset remote|local|read-heavy|write-heavy|random-access|none] [OPTIONS]`
//! (`--help` lists them).

mod common;

use fusefs::cached::{CacheConfig, CachedFs, LocalBackend, Slow};
use fusefs::TerminationSignals;
use nix::sys::signal::Signal;
use std::process::exit;
use std::time::Duration;

/// Mount a local directory through CachedFs, with latency added to every backend call.
#[derive(clap::Parser)]
#[command(name = "slowfs")]
struct Args {
    /// The directory to serve.
    source: String,

    #[command(flatten)]
    common: common::Common,

    /// Latency added to every backend call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_ms)]
    latency_ms: f64,

    /// Cache preset: remote, local, read-heavy, write-heavy, random-access or none.
    #[arg(long, value_name = "NAME", default_value = "local", value_parser = common::parse_preset)]
    preset: CacheConfig,
}

fn parse_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err("not a number of milliseconds".into()),
    }
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    args.common.init_logger();
    let latency = Duration::from_secs_f64(args.latency_ms / 1000.0);
    let source = args.source.clone();
    let config = args.common.config(|c| {
        c.mount.fsname = format!("slowfs:{source}");
        c.mount.subtype = Some("slowfs".into());
    });
    let checked = !args.common.no_default_permissions;
    if let Err(e) =
        run(&args.source, &args.common.mountpoint, latency, args.preset, checked, config)
    {
        eprintln!("slowfs: {e}");
        exit(1);
    }
}

fn run(
    source: &str,
    mnt: &std::path::Path,
    latency: Duration,
    preset: CacheConfig,
    default_permissions: bool,
    config: fusefs::Config,
) -> std::io::Result<()> {
    let backend = Slow::new(LocalBackend::new(source)?, latency);
    let signals = TerminationSignals::block_with(&[Signal::SIGUSR1])?;
    let session = CachedFs::builder(backend)
        .cache(preset)
        .default_permissions(default_permissions)
        .mount(mnt, config)?;
    eprintln!(
        "slowfs: serving {source} at {} over {} with {latency:?} per backend call",
        mnt.display(),
        session.transport()
    );
    common::serve_with_reports("slowfs", session, &signals, |s, when| {
        let fs = s.filesystem().inner();
        eprintln!("--- slowfs statistics ---\n{}{}", fs.stats(), s.stats());
        eprintln!("slowfs: {when} backend calls: {:?}", fs.backend().calls());
    })
}
