//! Helpers that daemonize, and the process that must reap them.
//!
//! OpenDAL's SFTP service starts one OpenSSH ControlMaster per pooled connection as `ssh -f`,
//! which forks, detaches into a session of its own and exits: the master is then an orphan.
//! Its new parent reaps it when it ends, and on some machines (containers whose PID 1 is not
//! an init) the new parent never does. So the example adopts its orphans (it becomes their
//! subreaper) and reaps them itself, while it runs and at exit: a long-lived mount that
//! cycles connections would otherwise collect one zombie per connection it ever made.

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Become the subreaper of what this process starts, and reap, once a second, the adopted
/// helpers that have ended.
///
/// Only adopted ones: a child this process started itself is waited for by whoever started
/// it (tokio, `std::process`), and reaping it here would take its exit status away. Adopted
/// helpers are told apart by their session: a daemon leaves ours (setsid), what we start
/// stays in it.
pub fn adopt() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn!("cannot become a subreaper ({e}): helpers may outlive this process");
        return;
    }
    // Started with every signal blocked (a thread inherits its mask), so a signal meant for
    // the process (SIGTERM: unmount) never lands here and takes its default action.
    let mut before = SigSet::empty();
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut before))
    {
        log::warn!(
            "cannot block signals for the orphan reaper ({e}): ended helpers wait for the exit"
        );
        return;
    }
    let reaper = std::thread::Builder::new().name("orphan-reaper".into());
    let started = reaper.spawn(|| loop {
        std::thread::sleep(Duration::from_secs(1));
        for c in children().into_iter().filter(|c| c.ended && c.adopted) {
            let _ = waitpid(c.pid, Some(WaitPidFlag::WNOHANG));
        }
    });
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    if let Err(e) = started {
        log::warn!("cannot start the orphan reaper ({e}): ended helpers wait for the exit");
    }
}

/// At exit: wait up to `limit` for every child to end, then ask those left to (SIGTERM),
/// and after `limit` more, make them (SIGKILL, again every 100 ms, for helpers adopted
/// meanwhile); reap all of them, so none is left behind, running or as a zombie. After
/// `4 * limit` it gives up with a warning: a helper stuck in the kernel cannot hold the exit.
pub fn reap_at_exit(limit: Duration) {
    let start = Instant::now();
    let mut sent: Option<(Signal, Instant)> = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let now = Instant::now();
                let elapsed = now - start;
                if elapsed >= 4 * limit {
                    log::warn!("helpers still running at exit after {elapsed:?}: left");
                    return;
                }
                let next = match sent {
                    None if elapsed >= limit => Some(Signal::SIGTERM),
                    Some((Signal::SIGTERM, _)) if elapsed >= 2 * limit => Some(Signal::SIGKILL),
                    Some((Signal::SIGKILL, at)) if now - at >= Duration::from_millis(100) => {
                        Some(Signal::SIGKILL)
                    }
                    _ => None,
                };
                if let Some(sig) = next {
                    for c in children().into_iter().filter(|c| !c.ended) {
                        log::warn!("helper {} still running at exit: {sig}", c.pid);
                        let _ = nix::sys::signal::kill(c.pid, sig);
                    }
                    sent = Some((sig, now));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(_) => {}
            Err(_) => return, // ECHILD: none left
        }
    }
}

/// A child of this process, as /proc shows it.
struct Child {
    pid: Pid,
    /// A zombie: it has ended and waits to be reaped.
    ended: bool,
    /// In another session than ours: a daemon we adopted, not a child we started.
    adopted: bool,
}

/// This process's children, from /proc.
fn children() -> Vec<Child> {
    let me = std::process::id().to_string();
    let ours = nix::unistd::getsid(None).ok();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        let pid: i32 = name.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
        // pid (comm) state ppid pgrp session ...: the comm may hold spaces, so split after
        // its ')'.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        let (state, ppid) = (fields.next()?, fields.next()?);
        let session: i32 = fields.nth(1)?.parse().ok()?;
        (ppid == me).then(|| Child {
            pid: Pid::from_raw(pid),
            ended: state == "Z",
            adopted: ours.is_some_and(|s| s.as_raw() != session),
        })
    })
    .collect()
}
