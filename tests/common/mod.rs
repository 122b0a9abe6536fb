//! Support for tests that mount real filesystems.
//!
//! Every mount gets its own temporary mountpoint and is unmounted when its guard drops, also
//! when the test fails; client code runs on its own thread under a time limit, and a client
//! that overruns gets the connection aborted (so it cannot hang the suite) before the test
//! fails. After unmounting, the guard checks /proc/mounts: a leftover mount is a failure.
#![allow(dead_code)]

pub mod servers;
pub mod watchdog;

use fusefs::{Config, Filesystem, Session, Transport};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What the passthrough example reports when nothing is open and no backing file is
/// registered (nodes stay known while the kernel caches them).
pub const PASSTHROUGH_NO_LEAK: &str = " 0 open, 0 backing files";

/// The time limit for one client action.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Whether this machine can mount FUSE filesystems. As root with /dev/fuse present the answer
/// must be yes; otherwise the test says loudly that it is skipped.
pub fn can_mount(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let dev = Path::new("/dev/fuse").exists();
    if root && dev {
        return true;
    }
    let why = if !dev { "/dev/fuse is missing" } else { "not running as root" };
    if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
        panic!("{test}: cannot mount ({why}) but FUSEFS_REQUIRE_MOUNT is set");
    }
    eprintln!("\n*** SKIPPED {test}: {why}; mount tests need root and /dev/fuse ***\n");
    false
}

/// Whether `fusermount3` is installed; if not, the test says loudly that it is skipped
/// (or fails, under FUSEFS_REQUIRE_MOUNT).
pub fn has_fusermount3(test: &str) -> bool {
    if Command::new("fusermount3").arg("-V").output_guarded().is_ok() {
        return true;
    }
    if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
        panic!("{test}: fusermount3 is not installed (Debian package fuse3)");
    }
    eprintln!("\n*** SKIPPED {test}: no fusermount3 (Debian package fuse3) ***\n");
    false
}

/// The user `nobody`'s (uid, gid), when a test may mount as that user: as root, with
/// fusermount3 installed and /dev/fuse open to users (mode 0666, as udev makes it; `.ci/run`
/// sets it). Otherwise the test says loudly that it is skipped (or fails, under
/// FUSEFS_REQUIRE_MOUNT).
pub fn nobody_may_mount(test: &str) -> Option<(u32, u32)> {
    if !can_mount(test) || !has_fusermount3(test) {
        return None;
    }
    let nobody = nix::unistd::User::from_name("nobody").ok().flatten();
    let mode = std::fs::metadata("/dev/fuse").map_or(0, |m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode()
    });
    let why = match nobody {
        None => "no user nobody".to_string(),
        Some(_) if mode & 0o006 != 0o006 => format!(
            "/dev/fuse is mode {:o}: users cannot mount (chmod 0666, as udev does)",
            mode & 0o777
        ),
        Some(u) => return Some((u.uid.as_raw(), u.gid.as_raw())),
    };
    if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
        panic!("{test}: {why}");
    }
    eprintln!("\n*** SKIPPED {test}: {why} ***\n");
    None
}

/// The transport the mounting tests run on: `FUSEFS_TRANSPORT` (`threads`, `uring` or
/// `fuse-uring`; the test script runs the suite once per transport), else the default.
pub fn transport() -> Transport {
    match std::env::var("FUSEFS_TRANSPORT") {
        Ok(t) => t.parse().unwrap_or_else(|e| panic!("FUSEFS_TRANSPORT: {e}")),
        Err(_) => Config::default().transport,
    }
}

/// Whether the kernel offers FUSE-over-io_uring to new mounts (the module parameter).
pub fn fuse_uring_enabled() -> bool {
    std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .is_ok_and(|v| v.trim() == "Y")
}

/// The transport a mount that asked for `t` must be served by: `fuse-uring` falls back to
/// `threads` where the kernel does not offer it (said loudly, since fuse-uring is then not
/// tested; a failure if `FUSEFS_REQUIRE_FUSE_URING` is set).
pub fn served_by(t: Transport) -> Transport {
    if t == Transport::FuseUring && !fuse_uring_enabled() {
        if std::env::var_os("FUSEFS_REQUIRE_FUSE_URING").is_some() {
            panic!("fuse-uring is not offered (enable_uring is N) but FUSEFS_REQUIRE_FUSE_URING is set");
        }
        eprintln!(
            "\n*** fuse-uring is not offered (enable_uring is N): this mount falls back to threads ***\n"
        );
        return Transport::Threads;
    }
    t
}

/// The transport a mount speaking protocol 7.`minor` (`Config::protocol_minor`) gets:
/// fuse-uring came with 7.42, and falls back to threads below it.
pub fn served_at(minor: u32) -> Transport {
    match served_by(transport()) {
        Transport::FuseUring if minor < 42 => Transport::Threads,
        t => t,
    }
}

/// `Config::default()` with the transport under test.
pub fn config() -> Config {
    let mut c = Config::default();
    c.transport = transport();
    c
}

/// Whether `path` appears as a mountpoint in /proc/mounts.
pub fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let p = path.to_string_lossy().replace(' ', "\\040");
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(p.as_str()))
}

/// Wait (under the time limit) until `cond` holds, checking every millisecond: for what
/// the kernel does in the background (RELEASE after close(2), FORGET after eviction). Not
/// a spin: the daemon being waited for needs the CPU.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Run `f` on its own thread; if it does not finish within `limit`, call `on_timeout` (which
/// should unblock it) and fail.
pub fn with_limit<T: Send + 'static>(
    what: &str,
    limit: Duration,
    on_timeout: impl FnOnce(),
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = h.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The client panicked: re-raise its panic here.
            match h.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => panic!("{what}: client thread ended without a result"),
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            on_timeout();
            panic!("{what}: no answer within {limit:?} (connection aborted)");
        }
    }
}

/// Starting a process copies this process's descriptors into the child until its exec
/// closes them, and each of those closes of a FUSE file is a FLUSH, which objfs answers by
/// uploading. A test that needs its own close(2) or fsync(2) to be the one that uploads
/// (one whose FLUSH must fail) holds [`sole_descriptors`] while it has the file open; the
/// helpers here start processes under [`spawning`]. (CI saw a child's FLUSH upload a file
/// before the test stopped the store, so the test's close found nothing left to send.)
static SPAWN: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held while starting a process (see [`SPAWN`]).
pub fn spawning() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWN.read().unwrap_or_else(|e| e.into_inner())
}

/// Held while no other thread of this test binary may start a process (see [`SPAWN`]).
pub fn sole_descriptors() -> std::sync::RwLockWriteGuard<'static, ()> {
    SPAWN.write().unwrap_or_else(|e| e.into_inner())
}

/// `spawn` and `output` under [`spawning`].
pub trait GuardedSpawn {
    /// `Command::spawn`, under [`spawning`].
    fn spawn_guarded(&mut self) -> std::io::Result<Child>;
    /// `Command::output` (stdin null, stdout and stderr captured), under [`spawning`] until
    /// the child is started.
    fn output_guarded(&mut self) -> std::io::Result<std::process::Output>;
    /// `Command::status`, under [`spawning`] until the child is started.
    fn status_guarded(&mut self) -> std::io::Result<ExitStatus>;
}

impl GuardedSpawn for Command {
    fn spawn_guarded(&mut self) -> std::io::Result<Child> {
        let _g = spawning();
        self.spawn()
    }
    fn output_guarded(&mut self) -> std::io::Result<std::process::Output> {
        // As `output` does for a command whose streams were not set.
        self.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        self.spawn_guarded()?.wait_with_output()
    }
    fn status_guarded(&mut self) -> std::io::Result<ExitStatus> {
        self.spawn_guarded()?.wait()
    }
}

/// Where the threads of process `pid` wait, for a test that gave up on it: each thread's name,
/// the kernel function it sleeps in and its kernel stack, then gdb's backtraces where gdb is
/// installed (limited to 15 s, then killed), and the process's children. Best effort, never fails.
pub fn where_it_waits(pid: i32) -> String {
    use std::fmt::Write;
    let mut out = format!("--- where process {pid} waits ---\n");
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    for task in tasks {
        let dir = task.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let _ = writeln!(
            out,
            "thread {} {:?}: in {}\n{}",
            task.file_name().to_string_lossy(),
            read("comm").trim(),
            read("wchan"),
            read("stack").trim_end()
        );
    }
    let mut gdb = Command::new("timeout");
    gdb.args([
        "-k",
        "2",
        "15",
        "gdb",
        "-batch",
        "-p",
        &pid.to_string(),
        "-ex",
        "thread apply all bt 30",
    ]);
    match gdb.stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => out.push_str(&String::from_utf8_lossy(&o.stdout)),
        _ => out.push_str("(no gdb backtraces)\n"),
    }
    let mut children = Command::new("ps");
    children.args(["--ppid", &pid.to_string(), "-o", "pid,stat,args"]);
    if let Ok(o) = children.output() {
        let _ = write!(out, "children:\n{}", String::from_utf8_lossy(&o.stdout));
    }
    out
}

/// The children of process `pid`, each with whether it has ended and waits to be reaped (a
/// zombie), from /proc.
pub fn children_of(pid: u32) -> Vec<(i32, bool)> {
    let parent = pid.to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| {
            let child: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: the comm may hold spaces, so split after its ')'.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let zombie = fields.next()? == "Z";
            (fields.next()? == parent).then_some((child, zombie))
        })
        .collect()
}

/// Children of process `pid` that have ended and wait to be reaped (zombies).
pub fn zombie_children(pid: u32) -> usize {
    children_of(pid).into_iter().filter(|(_, zombie)| *zombie).count()
}

/// A filesystem mounted in this process on a fresh temporary directory.
pub struct TestMount<F: Filesystem> {
    session: Option<Session<F>>,
    path: PathBuf,
    /// Dropped after the unmount in `drop`: the watch ends once the mount is gone.
    watch: watchdog::Guard,
    _dir: tempfile::TempDir,
}

impl<F: Filesystem> TestMount<F> {
    pub fn new(fs: F, threads: usize) -> TestMount<F> {
        let mut c = config();
        c.threads = threads;
        Self::with_config(fs, c)
    }

    pub fn with_config(fs: F, config: Config) -> TestMount<F> {
        let expected = served_by(config.transport);
        Self::serving(fs, config, expected)
    }

    /// Mount with `config`, which must end up served by `expected`.
    pub fn serving(fs: F, config: Config, expected: Transport) -> TestMount<F> {
        let dir = tempfile::Builder::new().prefix("fusefs-test-").tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let session = Session::mount(fs, &path, config).expect("mount");
        let watch = watchdog::watch_mount(&path, session.connection_id(), None);
        assert!(is_mounted(&path), "mounted at {}", path.display());
        assert_eq!(session.transport(), expected, "the transport serving the mount");
        TestMount { session: Some(session), path, watch, _dir: dir }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn session(&self) -> &Session<F> {
        self.session.as_ref().unwrap()
    }

    /// The watchdog's hold on this mount (to extend its limit).
    pub fn watch(&self) -> &watchdog::Guard {
        &self.watch
    }

    /// Requests of `opcode` the session has counted (answered; FORGET: received). A reply
    /// is counted just after the kernel took it, so its caller may be back already: this
    /// waits until nothing is in flight first.
    pub fn answered(&self, opcode: fusefs::proto::Opcode) -> u64 {
        wait_until("replies counted", || self.session().stats().in_flight == 0);
        self.session().stats().ops.iter().filter(|o| o.opcode == opcode).map(|o| o.count).sum()
    }

    /// Run client code against the mountpoint under the time limit.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce(PathBuf) -> T + Send + 'static) -> T {
        let path = self.path.clone();
        let conn = self.session().connection_id();
        with_limit(
            &format!("client on {}", self.path.display()),
            LIMIT,
            || abort_connection(conn),
            move || f(path),
        )
    }

    /// Unmount now and check nothing is left.
    pub fn unmount(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(s) = self.session.take() {
            let r = s.unmount();
            if !std::thread::panicking() {
                r.expect("unmount");
            }
        }
        let left = is_mounted(&self.path);
        if left {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
        if !std::thread::panicking() {
            assert!(!left, "{} still mounted after unmount", self.path.display());
        }
    }
}

impl<F: Filesystem> Drop for TestMount<F> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The fusectl connection id of the FUSE mount at `path` (the minor of its device, from
/// /proc/self/mountinfo), if one is mounted there.
pub fn connection_of(path: &Path) -> Option<u32> {
    let want = path.to_string_lossy().replace(' ', "\\040");
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let fstype = f.get(f.iter().position(|&x| x == "-")? + 1)?;
            (fstype.starts_with("fuse") && f.get(4) == Some(&want.as_str())).then(|| f[2])
        })
        .next_back()?
        .split(':')
        .nth(1)?
        .parse()
        .ok()
}

/// The never-reused id of the mount at `path` (statx STATX_MNT_ID_UNIQUE, Linux 6.8), asked
/// without a request to the filesystem (AT_STATX_DONT_SYNC); `None` where unknown.
pub fn unique_mount_id(path: &Path) -> Option<u64> {
    const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statx writes one struct statx into the zeroed buffer we own; the path is a
    // NUL-terminated string that outlives the call.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_STATX_DONT_SYNC | libc::AT_SYMLINK_NOFOLLOW;
    let rc =
        unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), flags, STATX_MNT_ID_UNIQUE, &mut sx) };
    (rc == 0 && sx.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(sx.stx_mnt_id)
}

/// Abort FUSE connection `conn` through fusectl: every request waiting on it fails.
pub fn abort_connection(conn: Option<u32>) {
    if let Some(id) = conn {
        let _ = std::fs::write(format!("/sys/fs/fuse/connections/{id}/abort"), "1");
    }
}

/// The path of an example binary built by `cargo test` (target/<profile>/examples/NAME).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(dir.exists(), "example {name} not built at {} (run through cargo test)", dir.display());
    dir
}

/// An example serving a mount as a child process. Dropping it stops it (SIGTERM, then
/// SIGKILL and a lazy unmount if it does not go) and always reaps it.
pub struct ExampleMount {
    child: Option<Child>,
    pub path: PathBuf,
    /// Set once the example serves; dropped after `stop` has reaped it.
    watch: Option<watchdog::Guard>,
    /// The temporary mountpoint, unless the caller gave one (`start_at`).
    _dir: Option<tempfile::TempDir>,
    /// The connection serving it.
    conn: Option<u32>,
    /// Its mount's unique id: on a mountpoint used again (`start_at`), the mount at the
    /// path may be a later example's (whose connection may even have the same id).
    mount_id: Option<u64>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ExampleMount {
    /// Start example `name` on a fresh mountpoint with `args` after it, and wait for it to
    /// say it is serving (it prints "NAME: serving ..." on stderr once INIT is done).
    pub fn start(name: &str, args: &[&str]) -> ExampleMount {
        Self::start_with(name, &[], args)
    }

    /// Like `start`, with positional arguments before the mountpoint.
    pub fn start_with(name: &str, before: &[&str], args: &[&str]) -> ExampleMount {
        Self::start_serving(name, before, args, served_by(transport()))
    }

    /// Like `start_with`, for an example that must end up served by `expected`.
    pub fn start_serving(
        name: &str,
        before: &[&str],
        args: &[&str],
        expected: Transport,
    ) -> ExampleMount {
        Self::spawn(name, before, args, Some(expected), None, None)
    }

    /// Like `start_with`, on the caller's mountpoint `at` (an existing directory), for tests
    /// that mount the same place again and again.
    pub fn start_at(name: &str, before: &[&str], args: &[&str], at: &Path) -> ExampleMount {
        Self::spawn(name, before, args, Some(served_by(transport())), None, Some(at))
    }

    /// Like `start_with`, run as the unprivileged user `uid`:`gid` (no capabilities, so it
    /// mounts through fusermount3 on a mountpoint made theirs), served by the transport
    /// under test like any other.
    pub fn start_as(
        name: &str,
        before: &[&str],
        args: &[&str],
        uid: u32,
        gid: u32,
    ) -> ExampleMount {
        Self::spawn(name, before, args, Some(served_by(transport())), Some((uid, gid)), None)
    }

    fn spawn(
        name: &str,
        before: &[&str],
        args: &[&str],
        expected: Option<Transport>,
        user: Option<(u32, u32)>,
        at: Option<&Path>,
    ) -> ExampleMount {
        use std::os::unix::process::CommandExt;
        let (dir, path) = match at {
            Some(at) => (None, at.to_path_buf()),
            None => {
                let dir = tempfile::Builder::new().prefix("fusefs-example-").tempdir().unwrap();
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let transport = transport();
        let mut cmd = Command::new(example(name));
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            // std drops the supplementary groups too when it switches the uid as root.
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd
            .args(before)
            .arg(&path)
            .args(["--transport", transport.name()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn_guarded()
            .expect("start example");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log2 = std::sync::Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[example] {line}");
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
                drop(l);
                if line.contains(": serving ") {
                    let _ = tx.send(());
                }
            }
        });
        let mut m = ExampleMount {
            child: Some(child),
            path,
            watch: None,
            _dir: dir,
            conn: None,
            mount_id: None,
            log,
            reader: Some(reader),
        };
        if let Err(e) = rx.recv_timeout(LIMIT) {
            let why = match e {
                mpsc::RecvTimeoutError::Timeout => {
                    format!("did not start serving within {LIMIT:?}")
                }
                mpsc::RecvTimeoutError::Disconnected => "closed its stderr before serving".into(),
            };
            let status = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            m.stop();
            panic!("example {name} {why} (exit: {status:?}); it printed:\n{}", m.output());
        }
        m.conn = connection_of(&m.path);
        m.mount_id = unique_mount_id(&m.path);
        m.watch = Some(watchdog::watch_mount(&m.path, m.conn, Some(m.pid())));
        assert!(is_mounted(&m.path), "example {name} says serving but nothing is mounted");
        if let Some(expected) = expected {
            let over = format!("over {expected}");
            assert!(m.log.lock().unwrap().contains(&over), "example {name} serves {over}");
        }
        m
    }

    /// Ask the example for its report (SIGUSR1) and wait for it: its line holding ": now "
    /// (printed last), which this returns.
    pub fn report(&self) -> String {
        let reports = |m: &ExampleMount| m.output().matches(": now ").count();
        let before = reports(self);
        self.signal(nix::sys::signal::Signal::SIGUSR1);
        wait_until("the report on SIGUSR1", || reports(self) > before);
        let out = self.output();
        out.lines().rfind(|l| l.contains(": now ")).unwrap_or("").to_string()
    }

    /// The count of `opcode` (as the statistics name it: `FUSE_LOOKUP`) in the example's
    /// statistics, asked for now; 0 if it has none yet.
    pub fn answered(&self, opcode: &str) -> u64 {
        self.report();
        let out = self.output();
        let block = &out[out.rfind("statistics ---").expect("a statistics block")..];
        block
            .lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(opcode)).then(|| f.next()?.parse().ok())?
            })
            .unwrap_or(0)
    }

    /// Ask for reports until the latest one contains `want`; fail past the time limit. For
    /// what settles after the callers are done: RELEASE reaches the daemon after close(2)
    /// has returned.
    pub fn settled_report(&self, want: &str) {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let last = self.report();
            if last.contains(want) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never reported {want:?}: {last}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The watchdog's hold on this mount (to extend its limit).
    pub fn watch(&self) -> &watchdog::Guard {
        self.watch.as_ref().expect("serving")
    }

    /// The example's process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the example has printed on stderr so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Send `sig` without waiting.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    }

    /// Wait (under the time limit) until the example has printed `text` on stderr.
    pub fn wait_for_output(&self, text: &str) -> bool {
        let deadline = std::time::Instant::now() + LIMIT;
        while std::time::Instant::now() < deadline {
            if self.log.lock().unwrap().contains(text) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
        }
        false
    }

    /// Send `sig` and wait for the exit status (under the time limit).
    pub fn signal_and_wait(&mut self, sig: nix::sys::signal::Signal) -> ExitStatus {
        let child = self.child.as_ref().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        self.wait()
    }

    /// Send `sig`, wait for the exit, and return the status with everything printed on stderr.
    pub fn signal_and_wait_output(
        &mut self,
        sig: nix::sys::signal::Signal,
    ) -> (ExitStatus, String) {
        let status = self.signal_and_wait(sig);
        if let Some(r) = self.reader.take() {
            let _ = r.join(); // stderr closes when the example exits
        }
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }

    /// Wait for the example to exit by itself (under the time limit).
    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id() as i32;
        let path = self.path.clone();
        let status = with_limit(
            "example exit",
            LIMIT,
            move || {
                eprintln!("{}", where_it_waits(pid));
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            },
            move || child.wait().unwrap(),
        );
        if let Some(w) = &self.watch {
            w.reaped();
        }
        status
    }

    /// Stop and reap the example: SIGTERM, then after 10 s SIGKILL and a lazy unmount. It
    /// runs from `drop`, also while a failed test unwinds, so it never panics on the way
    /// (a second panic would abort the whole test binary); only a mount left behind is a
    /// failure, and only when not unwinding already.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(c.wait());
            });
            if rx.recv_timeout(Duration::from_secs(10)).is_err() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                if self.still_mounted() {
                    let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
                }
                // SIGKILL cannot be ignored: the waiter reaps it.
                let _ = rx.recv_timeout(LIMIT);
            }
            if let Some(w) = &self.watch {
                w.reaped();
            }
        }
        if self.still_mounted() {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
            if !std::thread::panicking() {
                panic!("{} was left mounted", self.path.display());
            }
        }
    }

    /// Whether this example's own mount is still at its path (one whose id cannot be read,
    /// a dead connection's say, counts as ours: a leak must not go unseen).
    fn still_mounted(&self) -> bool {
        is_mounted(&self.path)
            && match (unique_mount_id(&self.path), self.mount_id) {
                (Some(now), Some(ours)) => now == ours,
                _ => true,
            }
    }
}

impl Drop for ExampleMount {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh tmpfs on a temporary directory (the source of a passthrough mount), unmounted
/// when dropped, also when the test fails.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs owned by `owner` (uid, gid), mode 0755.
    pub fn new(owner: (u32, u32)) -> Tmpfs {
        let dir = tempfile::Builder::new().prefix("fusefs-tmpfs-").tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let data = format!("mode=0755,uid={},gid={}", owner.0, owner.1);
        nix::mount::mount(
            Some("tmpfs"),
            &path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .expect("mount tmpfs");
        Tmpfs { path, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if nix::mount::umount(&self.path).is_err() {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
        if !std::thread::panicking() {
            assert!(!is_mounted(&self.path), "tmpfs {} left mounted", self.path.display());
        }
    }
}

/// Join `handle` under the time limit; a thread still running past it fails the test (and
/// is left behind: nothing can stop a thread from outside).
pub fn join<T>(what: &str, handle: std::thread::JoinHandle<T>) -> T {
    wait_until(&format!("{what}: the thread's end"), || handle.is_finished());
    match handle.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Whether the kernel feature `what` may be missing here: where it is, the test says so
/// loudly and skips that check, unless `FUSEFS_REQUIRE_KERNEL_FEATURES` is set (by `.ci/run`
/// on 6.18, which has them all), which makes it a failure.
pub fn kernel_lacks(test: &str, what: &str) {
    if std::env::var_os("FUSEFS_REQUIRE_KERNEL_FEATURES").is_some() {
        panic!("{test}: {what} is missing but FUSEFS_REQUIRE_KERNEL_FEATURES is set");
    }
    eprintln!("\n*** {test}: SKIPPED a check: {what} is missing on this kernel ***\n");
}

/// Whether INIT granted `flag` on mount `m`'s connection; if not, says so as
/// [`kernel_lacks`] does.
pub fn kernel_gave<F: Filesystem>(test: &str, m: &TestMount<F>, flag: fusefs::InitFlags) -> bool {
    if m.session().negotiated().granted.contains(flag) {
        return true;
    }
    kernel_lacks(test, &format!("INIT did not grant {flag:?}"));
    false
}

/// Write 64 KiB to a new file `path`, read it back, and count the pages of it in the page
/// cache (cachestat(2), Linux 6.5); `None` where the kernel has no cachestat.
pub fn cached_after_write_and_read(path: &Path) -> Option<u64> {
    use std::os::fd::AsRawFd;
    std::fs::write(path, vec![7u8; 64 << 10]).unwrap();
    let f = std::fs::File::open(path).unwrap();
    assert_eq!(std::fs::read(path).unwrap().len(), 64 << 10);
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct CacheStat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451; // the same on every architecture
    let range = Range { off: 0, len: 0 }; // to the end of the file
    let mut cs = CacheStat::default();
    // SAFETY: cachestat reads one range and writes one struct cachestat, both ours and
    // alive for the call; the fd is open.
    let rc = unsafe {
        libc::syscall(SYS_CACHESTAT, f.as_raw_fd(), &range, &mut cs as *mut CacheStat, 0)
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "cachestat: {e}");
        return None;
    }
    Some(cs.nr_cache)
}

impl ExampleMount {
    /// How many of the example's threads have a name starting with `prefix`.
    pub fn threads_named(&self, prefix: &str) -> usize {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).unwrap();
        tasks
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
            })
            .count()
    }

    /// Fail unless the example serves through the async API (its runtime's threads run).
    pub fn assert_served_async(&self) {
        assert!(self.threads_named("fusefs-async") > 0, "served through the async API");
    }
}

/// getfattr's and cp -a's way with xattrs, on `path` holding exactly the user xattrs
/// `want` (name, value) and no others: the size queries (a zero buffer) answer the size,
/// a buffer of exactly that size gets the whole answer, and a buffer a byte short ERANGE;
/// for listxattr and for getxattr of each.
pub fn assert_xattr_size_queries(path: &Path, want: &[(&str, &[u8])]) {
    use std::ffi::CString;
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    for (name, value) in want {
        let n = CString::new(*name).unwrap();
        // SAFETY: NUL-terminated path and name and a value buffer, alive for the call.
        let rc = unsafe {
            libc::setxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        };
        assert_eq!(rc, 0, "setxattr {name}: {}", std::io::Error::last_os_error());
    }
    let errno = || std::io::Error::last_os_error().raw_os_error();
    // Names as the kernel lists them: security.* ones the source may add are skipped by
    // comparing the user.* ones only, so the list is read whole, then checked.
    // SAFETY (each call below): the path is NUL-terminated, the buffer ours, its length
    // passed (a null buffer with length 0 for the size queries).
    let size = unsafe { libc::listxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
    assert!(size > 0, "listxattr's size query: {size} ({:?})", errno());
    let mut buf = vec![0u8; size as usize];
    let got = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(got, size, "listxattr into a buffer of the size it gave");
    let mut names: Vec<&[u8]> =
        buf.split(|&b| b == 0).filter(|n| n.starts_with(b"user.")).collect();
    names.sort();
    let mut expected: Vec<&[u8]> = want.iter().map(|(n, _)| n.as_bytes()).collect();
    expected.sort();
    assert_eq!(names, expected, "the user xattrs listed");
    let short = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len() - 1) };
    assert_eq!((short, errno()), (-1, Some(libc::ERANGE)), "listxattr a byte short");
    for (name, value) in want {
        let n = CString::new(*name).unwrap();
        let size = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
        assert_eq!(size, value.len() as isize, "getxattr {name}'s size query ({:?})", errno());
        let mut buf = vec![0u8; value.len()];
        let got =
            unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(got, value.len() as isize, "getxattr {name} into an exact buffer");
        assert_eq!(&buf[..], *value, "{name}'s value");
        if !value.is_empty() {
            let short = unsafe {
                libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len() - 1)
            };
            assert_eq!((short, errno()), (-1, Some(libc::ERANGE)), "getxattr {name} a byte short");
        }
    }
}
