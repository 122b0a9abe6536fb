//! Mount an empty in-memory POSIX filesystem (`fusefs::memfs::MemFs`).
//!
//! `cargo run --release --example memfs -- MOUNTPOINT [--threads N] [--allow-other]
//!  [--size BYTES[K|M|G]] [--ttl SECONDS] [--debug] [-o OPTIONS]`
//!
//! Mounted with `default_permissions` (the kernel checks permissions) and, by default, 1 s
//! entry and attribute timeouts. Serves until unmounted or SIGINT / SIGTERM, then unmounts
//! and exits 0.

mod common;

use fusefs::memfs::{MemFs, MemFsOptions};
use fusefs::{Session, TerminationSignals};
use std::process::exit;
use std::time::Duration;

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn main() {
    let usage = " [--size BYTES[K|M|G]] [--ttl SECONDS]";
    let args = common::parse("memfs", &[], usage);
    let mut opts = MemFsOptions::default();
    for (key, v) in common::options("memfs", &args.rest) {
        match key.as_str() {
            "--size" => {
                opts.size_limit = Some(parse_size(&v).unwrap_or_else(|| {
                    eprintln!("memfs: --size {v}: not a size (e.g. 512M)");
                    exit(2)
                }));
            }
            "--ttl" => {
                let secs: f64 = v.parse().unwrap_or_else(|_| {
                    eprintln!("memfs: --ttl {v}: not a number of seconds");
                    exit(2)
                });
                opts.entry_ttl = Duration::from_secs_f64(secs);
                opts.attr_ttl = opts.entry_ttl;
            }
            other => {
                eprintln!("memfs: unknown argument {other}\nusage: memfs MOUNTPOINT{usage}");
                exit(2)
            }
        }
    }
    let mut config = args.config;
    config.mount.fsname = "memfs".into();
    config.mount.subtype = Some("memfs".into());
    config.mount.default_permissions = true;
    if let Err(e) = run(&args.mountpoint, opts, config) {
        eprintln!("memfs: {e}");
        exit(1);
    }
}

fn run(mnt: &std::path::Path, opts: MemFsOptions, config: fusefs::Config) -> std::io::Result<()> {
    let signals = TerminationSignals::block()?;
    let session = Session::mount(MemFs::new(opts), mnt, config)?;
    eprintln!(
        "memfs: serving {} over {} (Ctrl-C or umount to stop)",
        mnt.display(),
        session.transport()
    );
    match signals.wait(&session)? {
        Some(sig) => eprintln!("memfs: {sig}, unmounting"),
        None => eprintln!("memfs: unmounted"),
    }
    let stats = session.filesystem().stats();
    session.unmount()?;
    eprintln!("memfs: {} nodes, {} bytes of data at exit", stats.nodes, stats.data_bytes);
    Ok(())
}
