//! Mount a local directory through `LocalBackend` with latency added to every backend call,
//! to see what the caches save. Prints the cache statistics at exit and on SIGUSR1.
//!
//! `cargo run --release --example slowfs -- SOURCE_DIR MOUNTPOINT --latency-ms 5
//!  [--preset remote|local|read-heavy|write-heavy|random-access|none] [--threads N] [--debug]`

mod common;

use fusefs::cached::{CacheConfig, CachedFs, LocalBackend, Slow};
use fusefs::{Session, TerminationSignals};
use nix::sys::signal::Signal;
use std::process::exit;
use std::time::Duration;

fn main() {
    let usage = " --latency-ms MS [--preset NAME]";
    let args = common::parse("slowfs", &["SOURCE_DIR"], usage);
    let source = args.rest.first().cloned().unwrap_or_default();
    let (mut latency, mut preset) = (Duration::ZERO, CacheConfig::local());
    for (key, v) in common::options("slowfs", &args.rest[1..]) {
        match key.as_str() {
            "--latency-ms" => {
                latency = Duration::from_secs_f64(
                    v.parse::<f64>().unwrap_or_else(|_| {
                        eprintln!("slowfs: --latency-ms {v}: not a number");
                        exit(2)
                    }) / 1000.0,
                );
            }
            "--preset" => {
                preset = CacheConfig::preset(&v).unwrap_or_else(|| {
                    eprintln!("slowfs: unknown preset {v} (remote, local, read-heavy, write-heavy, random-access, none)");
                    exit(2)
                });
            }
            other => {
                eprintln!(
                    "slowfs: unknown argument {other}\nusage: slowfs SOURCE_DIR MOUNTPOINT{usage}"
                );
                exit(2)
            }
        }
    }
    if let Err(e) = run(&source, &args.mountpoint, latency, preset, args.config) {
        eprintln!("slowfs: {e}");
        exit(1);
    }
}

fn run(
    source: &str,
    mnt: &std::path::Path,
    latency: Duration,
    preset: CacheConfig,
    mut config: fusefs::Config,
) -> std::io::Result<()> {
    let backend = Slow::new(LocalBackend::new(source)?, latency);
    preset.apply(&mut config);
    config.mount.fsname = format!("slowfs:{source}");
    config.mount.subtype = Some("slowfs".into());
    let signals = TerminationSignals::block_with(&[Signal::SIGUSR1])?;
    let session = Session::mount(CachedFs::new(backend, preset), mnt, config)?;
    session.filesystem().set_notifier(session.notifier());
    eprintln!(
        "slowfs: serving {source} at {} over {} with {latency:?} per backend call",
        mnt.display(),
        session.transport()
    );
    let report = |s: &Session<CachedFs<Slow<LocalBackend>>>| {
        let fs = s.filesystem();
        eprintln!(
            "--- slowfs statistics ---\nbackend calls: {:?}\n{}{}",
            fs.backend().calls(),
            fs.stats(),
            s.stats()
        );
    };
    loop {
        match signals.wait(&session)? {
            Some(Signal::SIGUSR1) => report(&session),
            Some(sig) => {
                eprintln!("slowfs: {sig}, unmounting");
                break;
            }
            None => {
                eprintln!("slowfs: unmounted");
                break;
            }
        }
    }
    report(&session);
    session.unmount()
}
