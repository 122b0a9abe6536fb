//! The remote benchmark: objfs (fusefs's `OpenDalBackend` under `CachedFs`), rclone's mount
//! and s3fs-fuse, each as users run them (defaults), on the same S3 server on loopback
//! behind a proxy that adds a latency to every request; measured side by side, the targets
//! interleaved.
//!
//! `cargo bench --features opendal --bench remote -- [--server garage|s3s-fs]
//! [--latency-ms 5] [--reps 3] [--targets objfs,objfs-no-files-ahead,rclone,s3fs]
//! [--only W,...] [--json PATH]` (as root; needs the server, and rclone and s3fs from Debian
//! for those targets).
//!
//! The server is Garage by default (`cargo install --locked garage@2.5.0`). s3fs cannot run
//! against s3s-fs, the tests' S3 server: s3s-fs answers a HEAD of a directory key ("p00/")
//! with HTTP 500, which s3fs takes for throttling and retries with a growing backoff (its
//! `ls -lR` had not finished after 13 minutes).
//!
//! The bucket: 20 prefixes of 100 objects of 1 KiB, one 64 MiB object and one 256 MiB
//! object. Workloads, each on a fresh mount (nothing cached, in the kernel or the daemon):
//! - `ls-cold`, `ls-warm`: `ls -lR` of the whole bucket, then again at once: seconds.
//! - `cat-small`: `cat` of the 2,000 small objects (`cat p*/*`, as a shell expands it):
//!   seconds.
//! - `seq-read`: the 64 MiB object read with `dd bs=1M`: MB/s.
//! - `seq-read-256`: the 256 MiB object read with `dd bs=1M`: MB/s.
//! - `par-read`: 16 readers at once, each `dd bs=1M` of its own 4 MiB slice of the 64 MiB
//!   object: MB/s in all.
//! - `upload-1g` (objfs only): a 1 GiB file written with `dd bs=1M` and closed, no added
//!   latency: MB/s, and the daemon's peak resident memory (VmHWM) before and after.
//!
//! The latency is added by a TCP proxy in this process: each chunk the client sends reaches
//! the server `latency` later (order kept, chunks in flight together), so every request
//! waits `latency` once, however large it is. (This kernel has no tc netem.) The proxy
//! acknowledges what the server sends at once (TCP_QUICKACK): s3s-fs sends a response's
//! headers and body in two writes with Nagle's algorithm on, which against a delayed ACK
//! costs 40 ms per small response, on every target alike.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// The tests' servers and mount checks (tests/common), shared rather than written again.
#[path = "../../tests/common/mod.rs"]
mod common;
use common::servers::Server;

/// The remote benchmark.
#[derive(clap::Parser)]
#[command(name = "remote")]
struct Args {
    /// The S3 server: garage or s3s-fs (which s3fs cannot use).
    #[arg(long, default_value = "garage")]
    server: String,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 5.0)]
    latency_ms: f64,
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Targets: objfs, objfs-no-files-ahead (`--files-ahead 0`), rclone, s3fs
    /// (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "objfs,objfs-no-files-ahead,rclone,s3fs")]
    targets: Vec<String>,
    /// Only these workloads (comma-separated, each a prefix): ls, cat-small, seq-read
    /// (both sizes), seq-read-256, par-read, upload-1g.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// More arguments for the objfs targets (e.g. `--objfs-args=--part-mib=16`).
    #[arg(long, allow_hyphen_values = true, value_delimiter = ' ')]
    objfs_args: Vec<String>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/remote-bench.json")]
    json: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    assert!(nix::unistd::geteuid().is_root(), "the remote benchmark mounts: run it as root");
    let work = tempfile::Builder::new().prefix("fusefs-remote-").tempdir().unwrap();
    let server = match args.server.as_str() {
        "garage" => Server::garage("the remote benchmark")
            .expect("garage (cargo install --locked garage@2.5.0)"),
        "s3s-fs" => Server::s3("the remote benchmark")
            .expect("s3s-fs (cargo install --locked s3s-fs@0.14.1 --features binary)"),
        other => panic!("--server {other}: garage or s3s-fs"),
    };
    fill_bucket(&server);
    let proxy = Proxy::start(server.port, Duration::from_secs_f64(args.latency_ms / 1000.0));
    let direct = server.port;
    eprintln!(
        "{} on port {direct}, {} ms added per request through port {}",
        args.server, args.latency_ms, proxy.port
    );
    let wants =
        |w: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| w.starts_with(x.as_str())));
    let mut results = serde_json::Map::new();
    let mut table: Vec<(String, String, Vec<f64>)> = Vec::new();
    let mut record = |target: &str, workload: &str, v: f64| match table
        .iter_mut()
        .find(|(t, w, _)| t == target && w == workload)
    {
        Some(row) => row.2.push(v),
        None => table.push((target.into(), workload.into(), vec![v])),
    };
    for rep in 0..args.reps {
        // Interleaved, the order reversed every other repetition.
        let mut order = args.targets.clone();
        if rep % 2 == 1 {
            order.reverse();
        }
        for t in &order {
            let mnt = work.path().join(format!("mnt-{t}"));
            std::fs::create_dir_all(&mnt).unwrap();
            if wants("ls") {
                let m = Mount::start(t, &mnt, &server, proxy.port, &args.objfs_args, work.path());
                let cold = time(|| run(&format!("ls -lR {} > /dev/null", mnt.display())));
                let warm = time(|| run(&format!("ls -lR {} > /dev/null", mnt.display())));
                drop(m);
                record(t, "ls-cold (s)", cold);
                record(t, "ls-warm (s)", warm);
                eprintln!("{t}: ls -lR cold {cold:.2} s, warm {warm:.3} s");
            }
            if wants("cat-small") {
                let m = Mount::start(t, &mnt, &server, proxy.port, &args.objfs_args, work.path());
                let s = time(|| run(&format!("cat {}/p*/* > /dev/null", mnt.display())));
                drop(m);
                record(t, "cat-small (s)", s);
                eprintln!("{t}: cat of 2,000 small objects {s:.2} s");
            }
            for (workload, object, mib) in
                [("seq-read", "big", 64.0), ("seq-read-256", "big256", 256.0)]
            {
                if !wants(workload) {
                    continue;
                }
                let m = Mount::start(t, &mnt, &server, proxy.port, &args.objfs_args, work.path());
                let s = time(|| {
                    run(&format!("dd if={}/{object} of=/dev/null bs=1M 2>/dev/null", mnt.display()))
                });
                drop(m);
                let mbs = mib * 1.048576 / s;
                record(t, &format!("{workload} (MB/s)"), mbs);
                eprintln!("{t}: {mib} MiB sequential read {mbs:.0} MB/s");
            }
            if wants("par-read") {
                let m = Mount::start(t, &mnt, &server, proxy.port, &args.objfs_args, work.path());
                let big = mnt.join("big");
                let readers: Vec<String> = (0..16)
                    .map(|i| {
                        format!(
                            "dd if={} of=/dev/null bs=1M skip={} count=4 2>/dev/null &",
                            big.display(),
                            i * 4
                        )
                    })
                    .collect();
                let s = time(|| run(&format!("{} wait", readers.join(" "))));
                drop(m);
                let mbs = 64.0 * 1.048576 / s;
                record(t, "par-read (MB/s)", mbs);
                eprintln!("{t}: 16 readers of 4 MiB each {mbs:.0} MB/s");
            }
            if wants("upload-1g") && t == "objfs" {
                // No latency: the memory bound, not the network, is the point.
                let m = Mount::start(t, &mnt, &server, direct, &args.objfs_args, work.path());
                let before = m.peak_rss_kib();
                let s = time(|| {
                    run(&format!(
                        "dd if=/dev/zero of={}/upload bs=1M count=1024 2>/dev/null",
                        mnt.display()
                    ))
                });
                let after = m.peak_rss_kib();
                drop(m);
                remove_object(&server, "upload");
                record(t, "upload-1g (MB/s)", 1024.0 * 1.048576 / s);
                record(t, "upload-1g peak RSS before (MiB)", before as f64 / 1024.0);
                record(t, "upload-1g peak RSS after (MiB)", after as f64 / 1024.0);
                eprintln!(
                    "{t}: 1 GiB upload in {s:.1} s, peak RSS {} MiB before, {} MiB after",
                    before / 1024,
                    after / 1024
                );
            }
        }
    }
    println!("\n| target | workload | median | runs |\n|---|---|---|---|");
    for (t, w, v) in &table {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        let med = s[s.len() / 2];
        let runs: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
        println!("| {t} | {w} | {med:.3} | {} |", runs.join(", "));
        results.insert(format!("{t}/{w}"), serde_json::json!({"median": med, "runs": v}));
    }
    results.insert("latency_ms".into(), args.latency_ms.into());
    std::fs::write(&args.json, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    drop(proxy);
    drop(server);
}

/// The server's bucket, through the S3 API.
fn bucket(server: &Server) -> opendal::Operator {
    opendal::init_default_registry();
    let options = server.options.iter().cloned();
    opendal::Operator::via_iter("s3", options).unwrap()
}

/// 20 prefixes of 100 objects of 1 KiB, `big` (64 MiB) and `big256` (256 MiB), put through
/// the S3 API (as a bucket is filled; s3s-fs then keeps each object's ETag, where for a file
/// put in its directory behind its back it computes the MD5 of the whole object at every
/// GET).
fn fill_bucket(server: &Server) {
    let op = bucket(server);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures_util::{StreamExt, TryStreamExt};
        let puts = (0..2000).map(|i| {
            let (op, body) = (op.clone(), vec![b'a' + (i % 26) as u8; 1024]);
            async move { op.write(&format!("p{:02}/o{:03}", i / 100, i % 100), body).await }
        });
        let done: Vec<_> =
            futures_util::stream::iter(puts).buffer_unordered(32).try_collect().await.unwrap();
        assert_eq!(done.len(), 2000);
        for (name, mib) in [("big", 64u32), ("big256", 256)] {
            let body: Vec<u8> = (0..mib << 20).map(|i| (i * 7 % 251) as u8).collect();
            op.write(name, body).await.unwrap();
        }
    });
}

fn remove_object(server: &Server, name: &str) {
    let op = bucket(server);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(op.delete(name)).unwrap();
}

fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn run(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}: {st}");
}

/// A TCP proxy to `127.0.0.1:upstream` that delays what clients send by `latency`.
struct Proxy {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    fn start(upstream: u16, latency: Duration) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(delayed(cr, sw, latency));
                    tokio::spawn(delayed(sr, cw, Duration::ZERO));
                });
            }
        });
        Proxy { port, runtime: Some(runtime) }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}

/// Copy `from` to `to`, each chunk written `latency` after it was read; reading goes on
/// meanwhile, so the delay is paid once per request, not per chunk.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    latency: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, buf)) = rx.recv().await {
            let now = Instant::now();
            if at > now {
                // Precise to a tenth of a millisecond (tokio's sleep rounds up to whole ms).
                fusefs::cached::delay(at - now).await;
            }
            if to.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0; 256 << 10];
    loop {
        let r = from.read(&mut buf).await;
        // Acknowledge at once: s3s-fs writes a response's headers and body apart with
        // Nagle on, so a delayed ACK here would hold each small body 40 ms, a cost no S3
        // service has. (The kernel clears QUICKACK by itself; set again after each read.)
        let _ = rustix::net::sockopt::set_tcp_quickack(from.as_ref(), true);
        match r {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now() + latency, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// One target mounted on `mnt`, as its own child process, unmounted and reaped on drop.
struct Mount {
    child: Child,
    mnt: PathBuf,
}

impl Mount {
    /// `target` mounting `server`'s bucket through port `port` (the proxy's, or the
    /// server's own).
    fn start(
        target: &str,
        mnt: &Path,
        server: &Server,
        port: u16,
        objfs_args: &[String],
        work: &Path,
    ) -> Mount {
        let endpoint = format!("http://127.0.0.1:{port}");
        let (bucket, key, secret, region) = (
            server.option("bucket"),
            server.option("access_key_id"),
            server.option("secret_access_key"),
            server.option("region"),
        );
        let mut cmd = match target {
            "objfs" | "objfs-no-files-ahead" => {
                let exe = std::env::current_exe().unwrap();
                let objfs = exe.parent().unwrap().parent().unwrap().join("examples/objfs");
                assert!(
                    objfs.exists(),
                    "build it: cargo build --release --features opendal --examples"
                );
                let mut c = Command::new(objfs);
                c.args(["s3"]).arg(mnt);
                for o in [
                    format!("bucket={bucket}"),
                    format!("endpoint={endpoint}"),
                    format!("region={region}"),
                    format!("access_key_id={key}"),
                    format!("secret_access_key={secret}"),
                ] {
                    c.args(["-O", &o]);
                }
                if target == "objfs-no-files-ahead" {
                    c.args(["--files-ahead", "0"]);
                }
                c.args(objfs_args);
                c
            }
            "rclone" => {
                let mut c = Command::new("rclone");
                c.args(["mount", &format!(":s3:{bucket}")]).arg(mnt).args([
                    "--s3-provider",
                    "Other",
                    "--s3-endpoint",
                    &endpoint,
                    "--s3-access-key-id",
                    key,
                    "--s3-secret-access-key",
                    secret,
                    "--s3-region",
                    region,
                ]);
                c
            }
            "s3fs" => {
                let pw = work.join("s3fs-passwd");
                std::fs::write(&pw, format!("{key}:{secret}\n")).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
                let mut c = Command::new("s3fs");
                c.arg(bucket).arg(mnt).arg("-f").args([
                    "-o",
                    &format!("url={endpoint}"),
                    "-o",
                    &format!("endpoint={region}"),
                    "-o",
                    "use_path_request_style",
                    "-o",
                    &format!("passwd_file={}", pw.display()),
                ]);
                c
            }
            other => panic!("unknown target {other}"),
        };
        // A CA bundle set for HTTPS elsewhere makes rclone refuse to start, even for http.
        cmd.env_remove("AWS_CA_BUNDLE");
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut m = Mount { child, mnt: mnt.to_path_buf() };
        let stderr = m.child.stderr.take().unwrap();
        // Its messages, prefixed, on our stderr (and the pipe never fills).
        let name = target.to_string();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !l.contains("retry") {
                    eprintln!("[{name}] {l}");
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !common::is_mounted(mnt) {
            assert!(Instant::now() < deadline, "{target} did not mount");
            if let Ok(Some(st)) = m.child.try_wait() {
                panic!("{target} exited: {st}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        m
    }

    /// The daemon's peak resident memory, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let mut s = String::new();
        std::fs::File::open(format!("/proc/{}/status", self.child.id()))
            .and_then(|mut f| f.read_to_string(&mut s))
            .unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::empty());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
                    let _ = self.child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        if common::is_mounted(&self.mnt) {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
