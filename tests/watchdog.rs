//! The test watchdog (tests/common/watchdog.rs) fails a test hung on a mount and ends a
//! binary that no abort frees. Each case runs one `#[ignore]`d victim test of this binary as
//! a child process with a limit of 3 s, and checks what became of it.

mod common;

use common::{can_mount, is_mounted, with_limit, ExampleMount};
use nix::sys::signal::Signal;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Victims run only when a case below starts them (not under a plain `--ignored`).
fn victim() -> bool {
    std::env::var_os("FUSEFS_TEST_VICTIM").is_some()
}

/// A client blocked in stat(2) on a filesystem that never answers (its daemon stopped).
#[test]
#[ignore = "a victim: run by watchdog_fails_a_test_hung_on_a_mount"]
fn victim_hung_on_a_mount() {
    if !victim() {
        return;
    }
    let m = ExampleMount::start("memfs", &[]);
    eprintln!("victim mountpoint: {}", m.path.display());
    m.signal(Signal::SIGSTOP);
    let r = std::fs::metadata(m.path.join("anything"));
    panic!("stat came back: {r:?}");
}

/// A test blocked on a join no abort can free, with a mount up.
#[test]
#[ignore = "a victim: run by watchdog_ends_a_binary_no_abort_frees"]
fn victim_hung_on_a_join() {
    if !victim() {
        return;
    }
    let m = ExampleMount::start("memfs", &[]);
    eprintln!("victim mountpoint: {}", m.path.display());
    let never = std::thread::spawn(|| loop {
        std::thread::park();
    });
    let _ = never.join();
    drop(m);
}

/// Run victim `name` with a 3 s mount limit and a 3 s grace; its exit code, output and
/// running time.
fn run_victim(name: &str) -> (Option<i32>, String, Duration) {
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let child = Command::new(exe)
        .args(["--ignored", "--exact", name, "--nocapture", "--test-threads", "1"])
        .env("FUSEFS_TEST_VICTIM", "1")
        .env("FUSEFS_TEST_MOUNT_LIMIT", "3")
        .env("FUSEFS_TEST_GRACE", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = with_limit(
        "the victim's end",
        Duration::from_secs(60),
        move || {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        },
        move || child.wait_with_output().unwrap(),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    (out.status.code(), text, start.elapsed())
}

/// The victim's mountpoint, as it printed it.
fn mountpoint(out: &str) -> std::path::PathBuf {
    let line = out.lines().find_map(|l| l.strip_prefix("victim mountpoint: "));
    line.expect("the victim printed its mountpoint").into()
}

#[test]
fn watchdog_fails_a_test_hung_on_a_mount() {
    if !can_mount("watchdog_fails_a_test_hung_on_a_mount") {
        return;
    }
    let (code, out, took) = run_victim("victim_hung_on_a_mount");
    assert_eq!(code, Some(101), "the victim test failed");
    assert!(out.contains("1 failed"), "libtest reports the failure");
    assert!(out.contains("aborting it"), "the watchdog aborted the mount");
    assert!(!out.contains("ending it"), "the test failed by itself, not by the binary's end");
    assert!(!is_mounted(&mountpoint(&out)), "the victim's mount is gone");
    assert!(took < Duration::from_secs(40), "failed soon after its limit: {took:?}");
}

#[test]
fn watchdog_ends_a_binary_no_abort_frees() {
    if !can_mount("watchdog_ends_a_binary_no_abort_frees") {
        return;
    }
    let (code, out, took) = run_victim("victim_hung_on_a_join");
    assert_eq!(code, Some(101), "the binary ended with 101");
    assert!(out.contains("aborting it") && out.contains("ending it"), "the watchdog said so");
    assert!(!out.contains("test result"), "libtest never got to report");
    assert!(!is_mounted(&mountpoint(&out)), "the victim's mount is gone");
    assert!(took < Duration::from_secs(40), "ended soon after limit and grace: {took:?}");
}
