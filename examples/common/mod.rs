//! Command-line handling shared by the examples: `MOUNTPOINT [--transport T] [--threads N]
//! [--ring-depth N] [--debug] [--allow-other] [-o OPTIONS]`, plus whatever each example adds.

#![allow(dead_code)]

use fusefs::Config;
use std::path::PathBuf;
use std::process::exit;

/// Parsed common arguments, and the ones left for the example.
pub struct Args {
    pub mountpoint: PathBuf,
    pub config: Config,
    pub rest: Vec<String>,
}

/// Parse the common arguments; `positional` names the positional arguments expected before
/// the mountpoint (e.g. `["SOURCE_DIR"]`), which are returned first in `rest`.
pub fn parse(name: &str, positional: &[&str], extra_usage: &str) -> Args {
    let usage = format!(
        "usage: {name} {}MOUNTPOINT [--transport threads|uring|fuse-uring] [--threads N] [--ring-depth N] [--debug] [--allow-other] [-o OPT[,OPT...]]{extra_usage}",
        positional.iter().map(|p| format!("{p} ")).collect::<String>()
    );
    let mut config = Config::default();
    let mut pos = Vec::new();
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    let fail = |msg: String| -> ! {
        eprintln!("{name}: {msg}\n{usage}");
        exit(2)
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{usage}");
                exit(0)
            }
            "--threads" => {
                let v = it.next().unwrap_or_else(|| fail("--threads needs a number".into()));
                config.threads = match v.parse() {
                    Ok(n) if n > 0 => n,
                    _ => fail(format!("--threads {v}: not a positive number")),
                };
            }
            "--transport" => {
                let v = it.next().unwrap_or_else(|| fail("--transport needs a name".into()));
                config.transport = v.parse().unwrap_or_else(|e| fail(e));
            }
            "--ring-depth" => {
                let v = it.next().unwrap_or_else(|| fail("--ring-depth needs a number".into()));
                config.ring_depth = match v.parse() {
                    Ok(n) if n > 0 => n,
                    _ => fail(format!("--ring-depth {v}: not a number from 1 to 65535")),
                };
            }
            "--debug" | "-d" => config.debug = true,
            "--allow-other" => config.mount.allow_other = true,
            "-o" => {
                let v = it.next().unwrap_or_else(|| fail("-o needs options".into()));
                if let Err(e) = config.mount.parse(&v) {
                    fail(e)
                }
            }
            s if s.starts_with("--") => rest.push(a),
            _ if !rest.is_empty()
                && rest.last().is_some_and(|r| r.starts_with("--") && !r.contains('=')) =>
            {
                rest.push(a)
            }
            _ => pos.push(a),
        }
    }
    if pos.len() != positional.len() + 1 {
        fail(format!(
            "expected {} positional argument(s), got {}",
            positional.len() + 1,
            pos.len()
        ));
    }
    let mountpoint = PathBuf::from(pos.pop().unwrap());
    fusefs::logger::init(if config.debug {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    });
    let mut out = pos;
    out.extend(rest);
    Args { mountpoint, config, rest: out }
}

/// The example's own options from `rest`, as (key, value) pairs: `--key value` or
/// `--key=value`. A key without a value is an error naming it.
pub fn options(name: &str, rest: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let (key, value) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match it.next() {
                Some(v) => (a.clone(), v.clone()),
                None => {
                    eprintln!("{name}: {a} needs a value");
                    exit(2)
                }
            },
        };
        out.push((key, value));
    }
    out
}
