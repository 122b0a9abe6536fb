//! What every example takes on its command line (clap, flattened into each example's own
//! arguments), and the logger: `RUST_LOG` filters as env_logger does; without it, warnings
//! and errors are shown, and with `--debug` every request and reply too.

#![allow(dead_code)]

pub mod orphans;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use fusefs::cached::CacheConfig;
use fusefs::{Config, Filesystem, MountOptions, Session, TerminationSignals, Transport};
use nix::sys::signal::Signal;
use std::path::PathBuf;

/// The arguments every example shares.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Where to mount (an existing directory).
    pub mountpoint: PathBuf,

    /// How requests travel between the kernel and the filesystem [default: fuse-uring,
    /// falling back to threads where the kernel does not offer it].
    #[arg(long, value_name = "T", value_parser = transport())]
    pub transport: Option<Transport>,

    /// Worker threads of the threads and uring transports [default: one per CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Reads in flight per uring worker [default: 2]; entries per fuse-uring queue [default:
    /// enough for --max-in-flight within 48 MiB].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub ring_depth: Option<u16>,

    /// Requests read from the kernel and not yet answered, at most [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: Option<u32>,

    /// Speak FUSE protocol 7.N at most, as a server for an older kernel would (31: 5.x
    /// kernels, 36: 6.1): what came later is not used [default: 45, the newest].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(12..=45))]
    pub protocol_minor: Option<u32>,

    /// Log every request and reply (at info level).
    #[arg(short, long)]
    pub debug: bool,

    /// Let other users access the mount (non-root mounts need `user_allow_other` in
    /// /etc/fuse.conf).
    #[arg(long)]
    pub allow_other: bool,

    /// Turn off the kernel's permission checks (`default_permissions`, on by default): every
    /// user who can reach the mount may then do whatever the daemon can, with its authority.
    /// Only for a filesystem that checks each caller itself.
    #[arg(long)]
    pub no_default_permissions: bool,

    /// Mount options, as `mount -o` takes them (comma-separated; may repeat). They win over
    /// the example's own defaults.
    #[arg(short = 'o', value_name = "OPT[,OPT...]", value_parser = mount_options())]
    pub options: Vec<String>,
}

fn transport() -> impl TypedValueParser<Value = Transport> {
    PossibleValuesParser::new(Transport::ALL.map(Transport::name))
        .try_map(|s| s.parse::<Transport>())
}

/// Checks `-o` values when parsing, so a bad option is a usage error that names it.
fn mount_options() -> impl TypedValueParser<Value = String> {
    clap::builder::StringValueParser::new().try_map(|s| {
        MountOptions::default().parse(&s)?;
        Ok::<_, String>(s)
    })
}

/// A cache preset by name, for `--preset`.
pub fn parse_preset(s: &str) -> Result<CacheConfig, String> {
    CacheConfig::preset(s).ok_or_else(|| {
        "unknown preset (remote, local, read-heavy, write-heavy, random-access, none)".into()
    })
}

/// Serve `session` until SIGINT or SIGTERM (then unmount) or an unmount from outside, calling
/// `report(session, "now")` on each SIGUSR1 (which `signals` must block) and
/// `report(session, "at exit")` at the end. `name` prefixes what is printed.
pub fn serve_with_reports<F: Filesystem>(
    name: &str,
    session: Session<F>,
    signals: &TerminationSignals,
    report: impl Fn(&Session<F>, &str),
) -> std::io::Result<()> {
    loop {
        match signals.wait(&session)? {
            Some(Signal::SIGUSR1) => report(&session, "now"),
            Some(sig) => {
                eprintln!("{name}: {sig}, unmounting");
                break;
            }
            None => {
                eprintln!("{name}: unmounted");
                break;
            }
        }
    }
    report(&session, "at exit");
    session.unmount()
}

/// A command-line number of seconds: finite and not negative.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err("not a number of seconds".into()),
    }
}

impl Common {
    /// The configuration: `defaults` (the example's own choices) applied to
    /// `Config::default()` first, then what the command line says, which wins.
    pub fn config(&self, defaults: impl FnOnce(&mut Config)) -> Config {
        let mut config = Config::default();
        // Every example answers with the daemon's authority: the kernel must check callers.
        config.mount.default_permissions = true;
        defaults(&mut config);
        if self.no_default_permissions {
            config.mount.default_permissions = false;
            log::warn!(
                "--no-default-permissions: the kernel checks no permission; every user who \
                 can reach the mount acts with this daemon's authority"
            );
        }
        if let Some(t) = self.transport {
            config.transport = t;
        }
        if let Some(n) = self.threads {
            config.threads = n.into();
        }
        if let Some(n) = self.max_in_flight {
            config.max_in_flight = n as usize;
        }
        if let Some(d) = self.ring_depth {
            config.ring_depth = Some(d);
        }
        if let Some(m) = self.protocol_minor {
            config.protocol_minor = m;
        }
        config.debug = self.debug;
        config.mount.allow_other |= self.allow_other;
        for o in &self.options {
            // Checked while parsing the command line.
            let _ = config.mount.parse(o);
        }
        config
    }

    /// Start logging to stderr: `RUST_LOG` if set, else warnings (info with `--debug`).
    pub fn init_logger(&self) {
        let level = if self.debug { "info" } else { "warn" };
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
            .format_timestamp(None)
            .init();
    }
}
