//! The watchdog of a test binary: no mount may hang the run.
//!
//! Every mount a test makes (`TestMount`, `ExampleMount`) is watched from the moment it is
//! made until it is gone. One still up `FUSEFS_TEST_MOUNT_LIMIT` seconds (300) after it was
//! made is aborted: its connection through fusectl (every waiting request then fails with
//! ENOTCONN), its daemon with SIGKILL, its mountpoint detached. The test blocked on it gets an
//! error and fails where it stands; if it does not notice, its guard panics when dropped.
//!
//! If the binary is still stuck `FUSEFS_TEST_GRACE` seconds (60) after an abort, something no
//! abort frees holds it (a join, a lock): the watchdog detaches every watched mount, kills and
//! reaps every child process (examples, servers) and ends the binary with status 101, so the
//! run goes on to the next binary instead of eating the CI budget.
//!
//! What it prints goes straight to stderr (fd 2): `eprintln!` from its thread would land in
//! libtest's capture of whichever test started it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One watched mount.
struct Watched {
    path: PathBuf,
    /// The fusectl connection id, found when the mount was made.
    conn: Option<u32>,
    /// The daemon serving it, when it is a child process.
    daemon: Option<i32>,
    deadline: Instant,
    fired: Arc<AtomicBool>,
}

#[derive(Default)]
struct Watchdog {
    mounts: HashMap<u64, Watched>,
    next: u64,
    /// When the first abort happened, for the grace period.
    aborted_at: Option<Instant>,
}

fn seconds(var: &str, default: u64) -> Duration {
    let s = std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    Duration::from_secs(s)
}

/// How long a mount may stay up.
pub fn mount_limit() -> Duration {
    seconds("FUSEFS_TEST_MOUNT_LIMIT", 300)
}

fn state() -> &'static Mutex<Watchdog> {
    static STATE: OnceLock<Mutex<Watchdog>> = OnceLock::new();
    STATE.get_or_init(|| {
        ensure_fusectl();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(watch)
            .expect("start the test watchdog");
        Mutex::new(Watchdog::default())
    })
}

/// Aborting a connection needs fusectl; mount it if it is not (as root), else say loudly
/// that a hung mount can only be detached.
fn ensure_fusectl() {
    let dir = "/sys/fs/fuse/connections";
    let mounted = |m: &str| m.lines().any(|l| l.split(' ').nth(1) == Some(dir));
    if mounted(&std::fs::read_to_string("/proc/mounts").unwrap_or_default()) {
        return;
    }
    let r = nix::mount::mount(
        Some("fusectl"),
        dir,
        Some("fusectl"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    if let Err(e) = r {
        say(&format!("fusectl is not mounted and cannot be ({e}): a hung mount is only detached"));
    }
}

/// Print straight to fd 2, past libtest's capture.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "\n*** watchdog: {msg} ***\n");
}

fn watch() {
    let grace = seconds("FUSEFS_TEST_GRACE", 60);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut w = state().lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut fired = false;
        for m in w.mounts.values() {
            if now >= m.deadline && !m.fired.swap(true, Ordering::SeqCst) {
                say(&format!(
                    "{} still mounted {:?} after it was made: aborting it",
                    m.path.display(),
                    mount_limit()
                ));
                abort(m);
                fired = true;
            }
        }
        if fired && w.aborted_at.is_none() {
            w.aborted_at = Some(now);
        }
        if w.mounts.is_empty() {
            w.aborted_at = None;
        }
        if w.aborted_at.is_some_and(|t| now >= t + grace) {
            say(&format!("the binary is still stuck {grace:?} after an abort: ending it"));
            for m in w.mounts.values() {
                abort(m);
            }
            end_children();
            std::process::exit(101);
        }
    }
}

fn abort(m: &Watched) {
    super::abort_connection(m.conn);
    if let Some(pid) = m.daemon {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = nix::mount::umount2(&m.path, nix::mount::MntFlags::MNT_DETACH);
}

/// Kill every child of this process and reap what dies within 5 s.
fn end_children() {
    let me = std::process::id();
    let children =
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    let pids: Vec<i32> = children.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    for &pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = pids;
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|&pid| {
            use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
            matches!(
                waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A mount under watch; dropping it ends the watch.
pub struct Guard {
    id: u64,
    fired: Arc<AtomicBool>,
}

/// Watch the mount at `path` (connection `conn`, served by child process `daemon` if any).
pub fn watch_mount(path: &Path, conn: Option<u32>, daemon: Option<u32>) -> Guard {
    let fired = Arc::new(AtomicBool::new(false));
    let mut w = state().lock().unwrap_or_else(|e| e.into_inner());
    let id = w.next;
    w.next += 1;
    w.mounts.insert(
        id,
        Watched {
            path: path.to_path_buf(),
            conn,
            daemon: daemon.map(|p| p as i32),
            deadline: Instant::now() + mount_limit(),
            fired: Arc::clone(&fired),
        },
    );
    Guard { id, fired }
}

impl Guard {
    /// Give this mount `more` time beyond the limit (a conformance run that has its own).
    pub fn extend(&self, more: Duration) {
        let mut w = state().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = w.mounts.get_mut(&self.id) {
            m.deadline += more;
        }
    }

    /// Whether the watchdog aborted this mount.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// The daemon was reaped: the pid may be reused, so the watchdog must not kill it.
    pub fn reaped(&self) {
        let mut w = state().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = w.mounts.get_mut(&self.id) {
            m.daemon = None;
            m.conn = None;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut w = state().lock().unwrap_or_else(|e| e.into_inner());
        w.mounts.remove(&self.id);
        drop(w);
        if self.fired() && !std::thread::panicking() {
            panic!("the watchdog aborted this mount: it was still up after {:?}", mount_limit());
        }
    }
}
