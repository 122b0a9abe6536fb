//! The end-to-end benchmark: the same MemFs served by fusefs on each of its transports
//! (`threads`, `uring`, `fuse-uring`) and by fuser, plus tmpfs as the physical limit, measured
//! side by side in one run; and the passthrough filesystem (`fusefs::passthrough`) over a
//! tmpfs, with kernel passthrough (`passthrough`) and serving the data itself
//! (`passthrough-served`), beside that tmpfs read directly and, given its path, libfuse's
//! passthrough_hp over a tmpfs of its own (`libfuse-pt`).
//!
//! `cargo bench --bench e2e -- [--quick] [--reps N] [--json PATH] [--only WORKLOAD,...]
//! [--targets threads,uring,fuse-uring,fuser,tmpfs,passthrough,passthrough-served,libfuse-pt]
//! [--passthrough-hp PATH]` (as root; the fuse-uring target needs
//! /sys/module/fuse/parameters/enable_uring set to Y). `--quick` runs in about 2 minutes on
//! a 2-vCPU machine with the MemFs targets only.
//!
//! Workloads (each run against every target in turn, interleaved, `reps` times, the order of
//! the targets reversed every other repetition; the median and the spread are reported):
//! 1. `seq-write`: a 1 GiB file (256 MiB quick) in 1 MiB writes, then fsync: MB/s.
//! 2. `seq-read`: that file in 1 MiB O_DIRECT reads (page cache out of the way): MB/s.
//! 3. `rand-read-1t`, `rand-read-4t`: 4 KiB O_DIRECT reads at random offsets, 1 and 4 client
//!    threads: IOPS.
//! 4. `create`, `stat`, `list`, `unlink`: 10,000 files (2,000 quick) in one directory; stat
//!    with attribute timeout 0 (1 s for the passthrough targets, as the example serves it,
//!    and libfuse's default for libfuse-pt); a full listing of the directory: ops/s
//!    (entries/s for list).
//!    The kernel's dentry and inode caches are dropped before stat, list and unlink, so both
//!    libraries do the same lookups whatever their replies let the kernel cache.
//! 5. `open-read-close`: open, 4 KiB pread, close of a small file in a loop: loops/s, p50 and
//!    p99 per loop (µs).
//! 6. `latency-bound`: a backend that answers each READ 5 ms later, 64 readers each reading
//!    4 KiB at random offsets of its own file with O_DIRECT: reads/s, and the share of the
//!    ideal 64 / 5 ms = 12,800 reads/s. fusefs serves it through the async API; fuser hands
//!    each READ to a pool of 64 threads (`latency.rs`). Unpinned, no tmpfs.
//!
//! Metadata and latency workloads run twice: with the servers and the client pinned to CPU 0
//! (the CPU cost per request) and unpinned (what users get: on these VMs a wakeup across
//! vCPUs costs 50-100 µs). Throughput workloads run unpinned.
//!
//! Every target uses 2 worker threads (the CPU count), max_write 1 MiB, entry timeout 1 s,
//! attribute timeout 0, and the capabilities fusefs asks for by default (fuser: where it can
//! set them).

mod fuser_memfs;
mod latency;

use fusefs::memfs::{MemFs, MemFsOptions};
use fusefs::passthrough::{PassthroughFs, PassthroughOptions};
use fusefs::PageBuf;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// The end-to-end benchmark: the same MemFs under each fusefs transport, fuser and tmpfs.
#[derive(clap::Parser)]
#[command(name = "e2e")]
struct Args {
    /// About 2 minutes: 3 repetitions, a 256 MiB file, 2,000 files, 1 s timed runs.
    #[arg(long)]
    quick: bool,
    /// Repetitions [default: 5, or 3 with --quick].
    #[arg(long, value_name = "N")]
    reps: Option<usize>,
    /// Where to write the results as JSON.
    #[arg(long, value_name = "PATH", default_value = "target/e2e-bench.json")]
    json: PathBuf,
    /// Only the workloads whose names start with these (comma-separated).
    #[arg(long, value_name = "W,...", value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Only these targets: threads, uring, fuse-uring, fuser, tmpfs (comma-separated).
    #[arg(long, value_name = "T,...", value_delimiter = ',')]
    targets: Option<Vec<String>>,
    /// libfuse's passthrough_hp binary (built from libfuse's repository; its libfuse3.so is
    /// looked for in ../lib beside it), to run as the `libfuse-pt` target: with `-o io_uring`
    /// when the kernel offers FUSE-over-io_uring, its defaults otherwise.
    #[arg(long, value_name = "PATH")]
    passthrough_hp: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Opts {
    quick: bool,
    reps: usize,
    json: PathBuf,
    only: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    passthrough_hp: Option<PathBuf>,
    file_size: u64,
    meta_files: usize,
    secs: f64,
}

impl Opts {
    fn parse() -> Opts {
        let a = <Args as clap::Parser>::parse();
        let mut o = Opts {
            quick: a.quick,
            reps: 5,
            json: a.json,
            only: a.only,
            targets: a.targets,
            passthrough_hp: a.passthrough_hp,
            file_size: 1 << 30,
            meta_files: 10_000,
            secs: 3.0,
        };
        if o.quick {
            o.reps = 3;
            o.file_size = 256 * MIB;
            o.meta_files = 2_000;
            o.secs = 1.0;
        }
        if let Some(r) = a.reps {
            o.reps = r;
        }
        o
    }

    fn wants_target(&self, t: &str) -> bool {
        match &self.targets {
            Some(l) => l.iter().any(|x| x == t),
            // By default: the MemFs targets and tmpfs, plus libfuse when its path is given.
            None => {
                !t.starts_with("passthrough")
                    && (t != "libfuse-pt" || self.passthrough_hp.is_some())
            }
        }
    }

    fn wants(&self, w: &str) -> bool {
        self.only.as_ref().is_none_or(|l| l.iter().any(|x| w.starts_with(x.as_str())))
    }
}

enum Server {
    Fusefs(Box<fusefs::Session<MemFs>>),
    Passthrough(Box<fusefs::Session<PassthroughFs>>),
    Fuser(fuser::BackgroundSession),
    Libfuse(std::process::Child),
    Tmpfs,
}

struct Target {
    name: &'static str,
    path: PathBuf,
    server: Option<Server>,
    /// A passthrough target's source: a tmpfs mounted here, unmounted after the server.
    source: Option<tempfile::TempDir>,
    _dir: tempfile::TempDir,
}

/// A fresh tmpfs on a temporary directory.
fn tmpfs(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        dir.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=8g"),
    )
    .expect("mount tmpfs");
    dir
}

/// Whether `p` is a mountpoint in /proc/mounts.
fn is_mounted(p: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let p = p.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*p))
}

fn memfs_options() -> MemFsOptions {
    let mut m = MemFsOptions::default();
    m.entry_ttl = Duration::from_secs(1);
    m.attr_ttl = Duration::ZERO;
    m
}

/// The fusefs targets: one per transport, named after it.
const FUSEFS_TARGETS: [(&str, fusefs::Transport); 3] = [
    ("threads", fusefs::Transport::Threads),
    ("uring", fusefs::Transport::Uring),
    ("fuse-uring", fusefs::Transport::FuseUring),
];

/// Every target, in table order: fusefs on each transport, fuser, tmpfs, then the passthrough
/// filesystem in both modes and libfuse's.
const TARGETS: [&str; 8] = [
    "threads",
    "uring",
    "fuse-uring",
    "fuser",
    "tmpfs",
    "passthrough",
    "passthrough-served",
    "libfuse-pt",
];

/// The passthrough targets, each against tmpfs read directly (and libfuse-pt if present).
const PASSTHROUGH_TARGETS: [&str; 2] = ["passthrough", "passthrough-served"];

fn mount_all(o: &Opts) -> Vec<Target> {
    let threads = 2;
    let mut targets = Vec::new();

    for (name, transport) in FUSEFS_TARGETS {
        if !o.wants_target(name) {
            continue;
        }
        let dir = tempfile::Builder::new().prefix("bench-fusefs-").tempdir().unwrap();
        let mut c = fusefs::Config::default();
        c.threads = threads;
        c.transport = transport;
        c.transport_fallback = false;
        c.mount.fsname = format!("bench-{name}");
        let s = fusefs::Session::mount(MemFs::new(memfs_options()), dir.path(), c)
            .unwrap_or_else(|e| panic!("mount fusefs over {name}: {e}"));
        targets.push(Target {
            name,
            path: dir.path().into(),
            server: Some(Server::Fusefs(Box::new(s))),
            source: None,
            _dir: dir,
        });
    }

    for name in PASSTHROUGH_TARGETS {
        if !o.wants_target(name) {
            continue;
        }
        let src = tmpfs("bench-pt-src-");
        let dir = tempfile::Builder::new().prefix("bench-pt-").tempdir().unwrap();
        // The example's defaults (1 s timeouts, the mount the only writer): libfuse's
        // passthrough_hp, run with its own defaults, caches for longer still.
        let mut po = PassthroughOptions::default();
        po.passthrough = name == "passthrough";
        let fs = PassthroughFs::new(src.path(), po).expect("passthrough source");
        let mut c = fusefs::Config::default();
        c.threads = threads;
        c.mount.fsname = format!("bench-{name}");
        let s = fusefs::Session::mount(fs, dir.path(), c)
            .unwrap_or_else(|e| panic!("mount {name}: {e}"));
        eprintln!("{name}: over {}", s.transport());
        targets.push(Target {
            name,
            path: dir.path().into(),
            server: Some(Server::Passthrough(Box::new(s))),
            source: Some(src),
            _dir: dir,
        });
    }

    if let (true, Some(bin)) = (o.wants_target("libfuse-pt"), &o.passthrough_hp) {
        let src = tmpfs("bench-libfuse-src-");
        let dir = tempfile::Builder::new().prefix("bench-libfuse-").tempdir().unwrap();
        let lib = bin.parent().and_then(Path::parent).map(|d| d.join("lib")).unwrap_or_default();
        let mut cmd = std::process::Command::new(bin);
        cmd.env("LD_LIBRARY_PATH", lib).arg("--foreground").arg("--num-threads=2");
        if fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
            .is_ok_and(|v| v.trim() == "Y")
        {
            cmd.args(["-o", "io_uring"]);
        }
        let child = cmd.arg(src.path()).arg(dir.path()).spawn().expect("start passthrough_hp");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(dir.path()) {
            assert!(Instant::now() < deadline, "passthrough_hp did not mount within 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        targets.push(Target {
            name: "libfuse-pt",
            path: dir.path().into(),
            server: Some(Server::Libfuse(child)),
            source: Some(src),
            _dir: dir,
        });
    }

    if o.wants_target("fuser") {
        let dir = tempfile::Builder::new().prefix("bench-fuser-").tempdir().unwrap();
        let mut fc = fuser::Config::default();
        fc.mount_options = vec![fuser::MountOption::FSName("bench-fuser".into())];
        fc.n_threads = Some(threads);
        fc.clone_fd = true;
        let fs = fuser_memfs::FuserMemFs(MemFs::new(memfs_options()));
        let bg = fuser::spawn_mount(fs, dir.path(), &fc).expect("mount fuser");
        wait_mounted(dir.path());
        targets.push(Target {
            name: "fuser",
            path: dir.path().into(),
            server: Some(Server::Fuser(bg)),
            source: None,
            _dir: dir,
        });
    }

    if o.wants_target("tmpfs") {
        let dir = tmpfs("bench-tmpfs-");
        targets.push(Target {
            name: "tmpfs",
            path: dir.path().into(),
            server: Some(Server::Tmpfs),
            source: None,
            _dir: dir,
        });
    }
    targets
}

/// The latency-bound workload's parameters.
const LATENCY: latency::Layout =
    latency::Layout { files: 64, size: MIB, latency: Duration::from_millis(5) };

/// Mount the latency-bound filesystem under each fusefs transport and under fuser, run the
/// readers against each in turn `reps` times, and record reads/s and the share of the ideal.
fn latency_bound(
    o: &Opts,
    r: &mut Results,
    note: &mut impl FnMut(&str, &'static str, &'static str),
) {
    let readers = LATENCY.files;
    let ideal = readers as f64 / LATENCY.latency.as_secs_f64();
    let mut sessions = Vec::new();
    let mut fuser_bg = None;
    let mut paths: Vec<(&'static str, tempfile::TempDir)> = Vec::new();
    for (name, transport) in FUSEFS_TARGETS {
        if !o.wants_target(name) {
            continue;
        }
        let dir = tempfile::Builder::new().prefix("bench-latency-").tempdir().unwrap();
        let mut c = fusefs::Config::default();
        c.threads = 2;
        c.transport = transport;
        c.transport_fallback = false;
        c.max_write = 256 << 10;
        c.max_pages = 64;
        c.mount.fsname = format!("bench-latency-{name}");
        let fs = fusefs::AsyncFs::new(latency::LatencyFs(LATENCY)).expect("runtime");
        let s = fusefs::Session::mount(fs, dir.path(), c)
            .unwrap_or_else(|e| panic!("mount fusefs over {name}: {e}"));
        sessions.push(s);
        paths.push((name, dir));
    }
    if o.wants_target("fuser") {
        let dir = tempfile::Builder::new().prefix("bench-latency-fuser-").tempdir().unwrap();
        let mut fc = fuser::Config::default();
        fc.mount_options = vec![fuser::MountOption::FSName("bench-latency-fuser".into())];
        fc.n_threads = Some(2);
        fc.clone_fd = true;
        let fs = latency::FuserLatencyFs::new(LATENCY, readers);
        fuser_bg = Some(fuser::spawn_mount(fs, dir.path(), &fc).expect("mount fuser"));
        wait_mounted(dir.path());
        paths.push(("fuser", dir));
    }
    let w = format!("latency-bound {readers}x{}ms", LATENCY.latency.as_millis());
    let share = format!("{w} % of ideal");
    for rep in 0..o.reps {
        let mut order: Vec<_> = paths.iter().collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for (name, dir) in order {
            let v = latency_reads(dir.path(), readers, o.secs);
            r.add(rep, &w, "unpinned", name, "reads/s", v);
            r.add(rep, &share, "unpinned", name, "%", 100.0 * v / ideal);
        }
    }
    note(&w, "unpinned", "reads/s");
    note(&share, "unpinned", "%");
    for s in sessions {
        s.unmount().expect("unmount fusefs");
    }
    if let Some(bg) = fuser_bg {
        bg.umount_and_join().expect("unmount fuser");
    }
}

/// `readers` threads, each reading 4 KiB at random offsets of its own file `f{i}`, with
/// O_DIRECT, for `secs`: reads/s.
fn latency_reads(p: &Path, readers: usize, secs: f64) -> f64 {
    let files: Vec<File> = (0..readers).map(|i| open_direct(&p.join(format!("f{i}")))).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(t, f)| s.spawn(move || random_reads(f, LATENCY.size / 4096, t, deadline, 1)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// fuser's spawn_mount returns before INIT is answered; a statfs waits for it.
fn wait_mounted(p: &Path) {
    let _ = nix::sys::statfs::statfs(p);
}

fn unmount_all(targets: Vec<Target>) {
    for mut t in targets {
        match t.server.take() {
            Some(Server::Fusefs(s)) => s.unmount().expect("unmount fusefs"),
            Some(Server::Passthrough(s)) => s.unmount().expect("unmount passthrough"),
            Some(Server::Fuser(bg)) => bg.umount_and_join().expect("unmount fuser"),
            Some(Server::Libfuse(mut child)) => {
                if nix::mount::umount(&t.path).is_err() {
                    let _ = nix::mount::umount2(&t.path, nix::mount::MntFlags::MNT_DETACH);
                }
                // It exits once the kernel lets go; reap it.
                let _ = child.wait();
            }
            Some(Server::Tmpfs) => nix::mount::umount(&t.path).expect("unmount tmpfs"),
            None => {}
        }
        if let Some(src) = t.source.take() {
            nix::mount::umount(src.path()).expect("unmount passthrough source");
        }
    }
}

fn pin(cpus: &[usize]) {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).unwrap();
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("sched_setaffinity");
}

fn drop_caches() {
    let _ = fs::write("/proc/sys/vm/drop_caches", "2");
}

// ---- workloads ----

fn seq_write(p: &Path, size: u64) -> f64 {
    let buf = vec![0xa5u8; MIB as usize];
    let start = Instant::now();
    let mut f = File::create(p.join("seq")).unwrap();
    for _ in 0..size / MIB {
        f.write_all(&buf).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    (size / MIB) as f64 / start.elapsed().as_secs_f64()
}

fn open_direct(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(p)
        .or_else(|_| File::open(p))
        .unwrap()
}

fn seq_read(p: &Path, size: u64) -> f64 {
    let mut buf = PageBuf::new(MIB as usize);
    let f = open_direct(&p.join("seq"));
    let start = Instant::now();
    let mut off = 0;
    while off < size {
        let n = f.read_at(&mut buf, off).unwrap();
        assert!(n > 0, "short file");
        off += n as u64;
    }
    (size / MIB) as f64 / start.elapsed().as_secs_f64()
}

fn rand_read(p: &Path, size: u64, threads: usize, secs: f64) -> f64 {
    let path = p.join("seq");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let path = &path;
                s.spawn(move || random_reads(&open_direct(path), size / 4096, t, deadline, 64))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// 4 KiB reads of `f` at random block offsets below `blocks` (the sequence seeded by `t`)
/// until `deadline`, looking at the clock every `batch` reads: how many.
fn random_reads(f: &File, blocks: u64, t: usize, deadline: Instant, batch: usize) -> u64 {
    let mut buf = PageBuf::new(4096);
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
    let mut n = 0u64;
    while Instant::now() < deadline {
        for _ in 0..batch {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.read_at(&mut buf, (x % blocks) * 4096).unwrap();
            n += 1;
        }
    }
    n
}

/// Create, stat, list and unlink `n` files in a fresh directory: ops/s of each phase.
fn metadata(p: &Path, n: usize, rep: usize) -> [f64; 4] {
    let d = p.join(format!("meta-{rep}"));
    fs::create_dir(&d).unwrap();
    let names: Vec<PathBuf> = (0..n).map(|i| d.join(format!("file-{i:06}"))).collect();
    let t = Instant::now();
    for f in &names {
        File::create(f).unwrap();
    }
    let create = n as f64 / t.elapsed().as_secs_f64();
    drop_caches();
    let t = Instant::now();
    for f in &names {
        fs::metadata(f).unwrap();
    }
    let stat = n as f64 / t.elapsed().as_secs_f64();
    drop_caches();
    let t = Instant::now();
    let listed = fs::read_dir(&d).unwrap().count();
    let list = listed as f64 / t.elapsed().as_secs_f64();
    assert_eq!(listed, n);
    drop_caches();
    let t = Instant::now();
    for f in &names {
        fs::remove_file(f).unwrap();
    }
    let unlink = n as f64 / t.elapsed().as_secs_f64();
    fs::remove_dir(&d).unwrap();
    [create, stat, list, unlink]
}

/// CPU time (user, system) in µs used so far by this process's threads whose names start
/// with `prefix` (the server's workers: "fusefs-", "fuser-"), from /proc/self/task/*/stat.
fn server_cpu(prefix: &str) -> (f64, f64) {
    let tick = 1e6
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100)
            as f64;
    let mut total = (0.0, 0.0);
    for task in fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the ")" that closes the name: state is field 3; utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            total.0 += f[11].parse::<f64>().unwrap_or(0.0) * tick;
            total.1 += f[12].parse::<f64>().unwrap_or(0.0) * tick;
        }
    }
    total
}

/// open / pread 4 KiB / close in a loop: (loops/s, p50 µs, p99 µs).
fn latency(p: &Path, secs: f64) -> (f64, f64, f64) {
    let f = p.join("small");
    if !f.exists() {
        fs::write(&f, vec![7u8; 4096]).unwrap();
    }
    let mut buf = [0u8; 4096];
    let mut lat = Vec::with_capacity(200_000);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    while Instant::now() < deadline {
        let t = Instant::now();
        let h = File::open(&f).unwrap();
        h.read_at(&mut buf, 0).unwrap();
        drop(h);
        lat.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let q = |x: f64| lat[((lat.len() - 1) as f64 * x) as usize];
    (rate, q(0.5), q(0.99))
}

/// Server CPU per operation: the user and system time of the target's worker threads during
/// a workload, divided by the operations it did. Recorded as extra rows ("... server CPU").
struct CpuMeter;

impl CpuMeter {
    fn measure<T>(
        &self,
        what: &str,
        placement: &'static str,
        target: &'static str,
        r: &mut Results,
        f: impl FnOnce() -> (T, f64),
    ) -> T {
        // The fusefs sessions' threads all start with "fusefs-"; the idle ones use no CPU.
        let prefix = match target {
            "tmpfs" | "libfuse-pt" => return f().0,
            "fuser" => "fuser-",
            _ => "fusefs-",
        };
        let before = server_cpu(prefix);
        let (v, ops) = f();
        let after = server_cpu(prefix);
        let per = ((after.0 - before.0) / ops, (after.1 - before.1) / ops);
        r.add_quiet(&format!("{what} server user CPU"), placement, target, per.0);
        r.add_quiet(&format!("{what} server sys CPU"), placement, target, per.1);
        v
    }
}

// ---- results ----

struct Sample {
    workload: String,
    placement: &'static str,
    target: &'static str,
    value: f64,
}

struct Results(Vec<Sample>);

impl Results {
    fn add(
        &mut self,
        rep: usize,
        w: &str,
        placement: &'static str,
        target: &'static str,
        unit: &'static str,
        v: f64,
    ) {
        eprintln!("  [rep {}] {placement:8} {w:16} {target:7} {v:12.1} {unit}", rep + 1);
        self.0.push(Sample { workload: w.into(), placement, target, value: v });
    }

    fn add_quiet(&mut self, w: &str, placement: &'static str, target: &'static str, v: f64) {
        self.0.push(Sample { workload: w.into(), placement, target, value: v });
    }

    fn values(&self, w: &str, pl: &str, t: &str) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .0
            .iter()
            .filter(|s| s.workload == w && s.placement == pl && s.target == t)
            .map(|s| s.value)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() {
    let o = Opts::parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("e2e benchmark: needs root (mount(2), pinning, drop_caches)");
        std::process::exit(1);
    }
    let cpus: Vec<usize> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    let started = Instant::now();
    eprintln!(
        "e2e benchmark: {} mode, {} repetitions, file {} MiB, {} files, {:.1} s per timed run",
        if o.quick { "quick" } else { "full" },
        o.reps,
        o.file_size / MIB,
        o.meta_files,
        o.secs
    );
    let mut r = Results(Vec::new());
    let cpu = CpuMeter;
    let mut units: Vec<(String, &'static str, &'static str)> = Vec::new();
    let mut note = |w: &str, pl: &'static str, u: &'static str| {
        if !units.iter().any(|(a, b, _)| a == w && *b == pl) {
            units.push((w.to_string(), pl, u));
        }
    };

    for placement in ["unpinned", "pinned"] {
        if placement == "pinned" {
            pin(&[0]);
        } else {
            pin(&cpus);
        }
        let targets = mount_all(&o);
        eprintln!(
            "{placement}: mounted {}",
            targets.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        );
        for rep in 0..o.reps {
            // Alternate the order (A B C, C B A, ...) so no target always follows the same one.
            let mut order: Vec<&Target> = targets.iter().collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for t in order {
                let p = &t.path;
                if placement == "unpinned" {
                    if o.wants("seq-write") || o.wants("seq-read") || o.wants("rand-read") {
                        let mbs =
                            cpu.measure("seq-write (per MiB)", placement, t.name, &mut r, || {
                                (seq_write(p, o.file_size), (o.file_size / MIB) as f64)
                            });
                        r.add(rep, "seq-write", placement, t.name, "MB/s", mbs);
                        note("seq-write", placement, "MB/s");
                    }
                    if o.wants("seq-read") {
                        let mbs =
                            cpu.measure("seq-read (per MiB)", placement, t.name, &mut r, || {
                                (seq_read(p, o.file_size), (o.file_size / MIB) as f64)
                            });
                        r.add(rep, "seq-read", placement, t.name, "MB/s", mbs);
                        note("seq-read", placement, "MB/s");
                    }
                    if o.wants("rand-read") {
                        for th in [1, 4] {
                            let w = format!("rand-read-{th}t");
                            let what = format!("{w} (per read)");
                            let iops = cpu.measure(&what, placement, t.name, &mut r, || {
                                let v = rand_read(p, o.file_size, th, o.secs);
                                (v, v * o.secs)
                            });
                            r.add(rep, &w, placement, t.name, "IOPS", iops);
                            note(&w, placement, "IOPS");
                        }
                    }
                }
                if o.wants("create") || o.wants("stat") || o.wants("list") || o.wants("unlink") {
                    let m = cpu.measure(
                        "create+stat+list+unlink (per file)",
                        placement,
                        t.name,
                        &mut r,
                        || (metadata(p, o.meta_files, rep), o.meta_files as f64),
                    );
                    for (w, v, u) in [
                        ("create", m[0], "ops/s"),
                        ("stat", m[1], "ops/s"),
                        ("list", m[2], "entries/s"),
                        ("unlink", m[3], "ops/s"),
                    ] {
                        r.add(rep, w, placement, t.name, u, v);
                        note(w, placement, u);
                    }
                }
                if o.wants("open-read-close") {
                    let (rate, p50, p99) =
                        cpu.measure("open-read-close", placement, t.name, &mut r, || {
                            let (rate, p50, p99) = latency(p, o.secs);
                            ((rate, p50, p99), rate * o.secs)
                        });
                    r.add(rep, "open-read-close", placement, t.name, "loops/s", rate);
                    r.add(rep, "open-read-close p50", placement, t.name, "us", p50);
                    r.add(rep, "open-read-close p99", placement, t.name, "us", p99);
                    note("open-read-close", placement, "loops/s");
                    note("open-read-close p50", placement, "us");
                    note("open-read-close p99", placement, "us");
                }
            }
        }
        for t in &targets {
            let _ = fs::remove_file(t.path.join("seq"));
        }
        unmount_all(targets);
    }
    pin(&cpus);
    if o.wants("latency-bound") {
        latency_bound(&o, &mut r, &mut note);
    }

    // The table: a column per target, and each fusefs transport against fuser.
    let present: Vec<&str> = TARGETS.iter().copied().filter(|t| o.wants_target(t)).collect();
    println!();
    println!(
        "| workload | placement | unit | {} |",
        present
            .iter()
            .map(|t| if t.starts_with("fuse") || t.starts_with("lib") || *t == "tmpfs" {
                t.to_string()
            } else {
                format!("{t} (fusefs)")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|---|{}", "---|".repeat(present.len()));
    let mut results = Vec::new();
    for (w, pl, unit) in &units {
        let cell = |t: &str| {
            let v = r.values(w, pl, t);
            (
                median(&v),
                v.first().copied().unwrap_or(f64::NAN),
                v.last().copied().unwrap_or(f64::NAN),
            )
        };
        let lower_is_better = *unit == "us";
        let ratio = |x: f64, y: f64| if lower_is_better { y / x } else { x / y };
        let fuser = cell("fuser").0;
        let cells: Vec<String> = present
            .iter()
            .map(|t| {
                let m = cell(t);
                if m.0.is_nan() {
                    return "n/a".to_string(); // a workload this target does not run
                }
                let vs = if FUSEFS_TARGETS.iter().any(|(n, _)| n == t) && o.wants_target("fuser") {
                    format!(" **{:.2}x**", ratio(m.0, fuser))
                } else if PASSTHROUGH_TARGETS.contains(t) {
                    // Against the source read directly, and against libfuse's passthrough.
                    let mut vs = String::new();
                    for (peer, label) in [("tmpfs", "tmpfs"), ("libfuse-pt", "libfuse")] {
                        let p = cell(peer).0;
                        if !p.is_nan() {
                            vs += &format!(" **{:.2}x {label}**", ratio(m.0, p));
                        }
                    }
                    vs
                } else {
                    String::new()
                };
                format!("{:.0} ({:.0}-{:.0}){vs}", m.0, m.1, m.2)
            })
            .collect();
        println!("| {w} | {pl} | {unit} | {} |", cells.join(" | "));
        for t in &present {
            let m = cell(t);
            results.push(serde_json::json!({
                "workload": w, "placement": pl, "target": t, "unit": unit,
                "median": m.0, "min": m.1, "max": m.2, "samples": r.values(w, pl, t),
            }));
        }
    }
    let json = serde_json::json!({
        "results": results,
        "mode": if o.quick { "quick" } else { "full" },
        "reps": o.reps,
        "seconds": started.elapsed().as_secs_f64(),
    });
    println!(
        "\n(median, with min-max over {} repetitions; **ratios** are each fusefs transport \
         against fuser, and each passthrough target against tmpfs and libfuse's passthrough_hp, \
         above 1 favouring fusefs)",
        o.reps
    );
    println!("\nServer CPU per operation (µs, median; user + system of the server's threads):\n");
    let servers: Vec<&str> = present.iter().copied().filter(|t| *t != "tmpfs").collect();
    println!(
        "| workload | placement | {} |",
        servers.iter().map(|t| format!("{t} user | {t} sys")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|---|{}", "---|---|".repeat(servers.len()));
    let mut seen: Vec<(String, &str)> = Vec::new();
    for s in &r.0 {
        if let Some(w) = s.workload.strip_suffix(" server user CPU") {
            if seen.iter().any(|(a, b)| a == w && *b == s.placement) {
                continue;
            }
            seen.push((w.to_string(), s.placement));
            let m = |t: &str, k: &str| {
                median(&r.values(&format!("{w} server {k} CPU"), s.placement, t))
            };
            let cells: Vec<String> = servers
                .iter()
                .map(|t| format!("{:.2} | {:.2}", m(t, "user"), m(t, "sys")))
                .collect();
            println!("| {w} | {} | {} |", s.placement, cells.join(" | "));
        }
    }
    if let Some(d) = o.json.parent() {
        let _ = fs::create_dir_all(d);
    }
    let json = serde_json::to_string_pretty(&json).expect("results are plain numbers and names");
    fs::write(&o.json, json).expect("write JSON");
    eprintln!("wrote {} in {:.0} s", o.json.display(), started.elapsed().as_secs_f64());
}
