//! The examples' flags, each shown to take effect by what it changes (a check that fails
//! were the flag ignored, with a control run beside it where the check alone could pass by
//! chance); and bad command lines, each refused with one line naming what is wrong, exit
//! status 2, no mount and no process left.

mod common;
use common::{can_mount, example, ExampleMount, Tmpfs};
use std::fs;
use std::process::{Command, Stdio};

/// The session statistics' last line: "in flight: N of at most M; ring: E entries, B bytes".
fn in_flight_line(m: &ExampleMount) -> String {
    m.report();
    let out = m.output();
    out.lines().rfind(|l| l.starts_with("in flight: ")).expect("the in-flight line").to_string()
}

#[test]
fn max_in_flight_and_ring_depth_reach_the_session() {
    if !can_mount("max_in_flight_and_ring_depth_reach_the_session") {
        return;
    }
    let m = ExampleMount::start("memfs", &["--max-in-flight", "7", "--ring-depth", "3"]);
    let line = in_flight_line(&m);
    assert!(line.contains("of at most 7;"), "--max-in-flight 7: {line}");
    if common::served_by(common::transport()) == fusefs::Transport::FuseUring {
        // 3 entries in each CPU's queue.
        let entries: usize = line
            .split("ring: ")
            .nth(1)
            .and_then(|r| r.split(' ').next()?.parse().ok())
            .expect("ring entries");
        assert!(entries > 0 && entries % 3 == 0, "--ring-depth 3: {line}");
        let control = ExampleMount::start("memfs", &["--max-in-flight", "7"]);
        let other = in_flight_line(&control);
        assert!(
            !other.contains(&format!("ring: {entries} entries")),
            "the default differs: {other}"
        );
    } else {
        eprintln!("--ring-depth is reported on fuse-uring only: checked on that pass");
    }
}

#[test]
fn debug_logs_every_request() {
    if !can_mount("debug_logs_every_request") {
        return;
    }
    for debug in [true, false] {
        let args: &[&str] = if debug { &["-d"] } else { &[] };
        let m = ExampleMount::start("memfs", args);
        let p = m.path.join("probe");
        m.report(); // the requests below come after this
        let _ = fs::metadata(&p);
        let logged = || m.output().contains("-> unique") && m.output().contains("probe");
        if debug {
            common::wait_until("the LOOKUP logged", logged);
        } else {
            m.report(); // anything logged for the stat would be printed by now
            assert!(!logged(), "requests logged without -d");
        }
    }
}

#[test]
fn memfs_ttl_sets_how_long_names_are_cached() {
    if !can_mount("memfs_ttl_sets_how_long_names_are_cached") {
        return;
    }
    // With an hour, the attributes a write left stale are asked for once or twice (GETATTR,
    // STATX for what stat(2) asks beyond them), not once per stat.
    for (ttl, most, least) in [("3600", 3, 0), ("0", u64::MAX, 10)] {
        let m = ExampleMount::start("memfs", &["--ttl", ttl]);
        fs::write(m.path.join("f"), b"x").unwrap();
        let asked_so_far = || {
            ["FUSE_LOOKUP", "FUSE_GETATTR", "FUSE_STATX"].map(|o| m.answered(o)).iter().sum::<u64>()
        };
        let before = asked_so_far();
        for _ in 0..10 {
            fs::metadata(m.path.join("f")).unwrap();
        }
        let asked = asked_so_far() - before;
        assert!(
            asked <= most && asked >= least,
            "--ttl {ttl}: {asked} LOOKUP/GETATTR/STATX for 10 stats"
        );
    }
}

#[test]
fn memfs_locks_serves_locks_and_refuses_async() {
    if !can_mount("memfs_locks_serves_locks_and_refuses_async") {
        return;
    }
    for locks in [true, false] {
        let args: &[&str] = if locks { &["--locks"] } else { &[] };
        let m = ExampleMount::start("memfs", args);
        let f = fs::File::create(m.path.join("f")).unwrap();
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let setlk = m.answered("FUSE_SETLK") + m.answered("FUSE_SETLKW");
        assert_eq!(setlk > 0, locks, "--locks {locks}: {setlk} SETLK(W) reached memfs");
    }
    let out = refused("memfs", &[], &["--locks", "--async"]);
    assert!(out.contains("--locks") && out.contains("--async"), "{out}");
}

/// A file read through a passthrough mount (served, not passed through, and names cached
/// an hour), changed in the source behind the mount, and read again by a new open: with
/// --no-cache the new bytes, by default the pages kept (the control).
#[test]
fn passthrough_no_cache_sees_changes_behind_the_mount() {
    if !can_mount("passthrough_no_cache_sees_changes_behind_the_mount") {
        return;
    }
    for no_cache in [true, false] {
        let src = Tmpfs::new((0, 0));
        fs::write(src.path.join("f"), [b'a'; 4096]).unwrap();
        let mut args = vec!["--no-passthrough", "--ttl", "3600"];
        if no_cache {
            args.push("--no-cache");
        }
        let source = src.path.to_str().unwrap();
        let m = ExampleMount::start_with("passthrough", &[source], &args);
        assert_eq!(fs::read(m.path.join("f")).unwrap(), [b'a'; 4096]);
        fs::write(src.path.join("f"), [b'b'; 4096]).unwrap();
        let again = fs::read(m.path.join("f")).unwrap();
        let want = if no_cache { b'b' } else { b'a' };
        assert_eq!(again, [want; 4096], "--no-cache {no_cache}");
        drop(m);
    }
}

/// --statx answers STATX with the source's birth time; without it, no birth time.
#[test]
fn passthrough_statx_gives_birth_times() {
    if !can_mount("passthrough_statx_gives_birth_times") {
        return;
    }
    for statx in [true, false] {
        let src = Tmpfs::new((0, 0));
        fs::write(src.path.join("f"), b"x").unwrap();
        let args: &[&str] = if statx { &["--statx"] } else { &[] };
        let m = ExampleMount::start_with("passthrough", &[src.path.to_str().unwrap()], args);
        let mask = statx_mask(&m.path.join("f"));
        assert_eq!(mask & libc::STATX_BTIME != 0, statx, "--statx {statx}: mask {mask:#x}");
        drop(m);
    }
}

fn statx_mask(p: &std::path::Path) -> u32 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statx writes one struct statx into the zeroed buffer we own; the path is a
    // NUL-terminated string that outlives the call.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_ALL, &mut sx) };
    assert_eq!(rc, 0, "statx: {}", std::io::Error::last_os_error());
    sx.stx_mask
}

/// Run example `name` (`before` the mountpoint, `args` after) with a bad command line: it
/// must exit 2 at once, printing its reason on stderr, with nothing mounted and nothing
/// left running. What it printed.
fn refused(name: &str, before: &[&str], args: &[&str]) -> String {
    refused_with(name, before, args, 2)
}

fn refused_with(name: &str, before: &[&str], args: &[&str], status: i32) -> String {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(example(name))
        .args(before)
        .arg(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = common::with_limit(
        "a refused example's exit",
        common::LIMIT,
        move || {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        },
        move || child.wait_with_output().unwrap(),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(status), "{name} {args:?}: {err}");
    assert!(!common::is_mounted(dir.path()), "{name} {args:?} left a mount");
    assert!(!err.trim().is_empty(), "{name} {args:?} said nothing");
    err
}

#[test]
fn bad_command_lines_are_refused_with_their_reason() {
    let out = refused("memfs", &[], &["--transport", "bogus"]);
    assert!(out.contains("bogus") && out.contains("--transport"), "{out}");
    let out = refused("memfs", &[], &["--threads", "0"]);
    assert!(out.contains("--threads") && out.contains('0'), "{out}");
    let out = refused("memfs", &[], &["--protocol-minor", "46"]);
    assert!(out.contains("--protocol-minor"), "{out}");
    let out = refused("memfs", &[], &["-o", "nosuchoption"]);
    assert!(out.contains("nosuchoption"), "{out}");
}

#[cfg(feature = "opendal")]
#[test]
fn objfs_bad_options_are_refused_with_their_reason() {
    let out = refused("objfs", &["s3"], &["-O", "bucket"]);
    assert!(out.contains("bucket") && out.contains("KEY=VALUE"), "{out}");
    let out = refused("objfs", &["s3"], &["--file-mode", "9"]);
    assert!(out.contains("--file-mode") && out.contains('9'), "{out}");
}

/// A missing SOURCE is a runtime error (status 1) that names the path.
#[test]
fn a_missing_source_is_named() {
    if !can_mount("a_missing_source_is_named") {
        return;
    }
    for name in ["slowfs", "passthrough"] {
        let out = refused_with(name, &["/nonexistent/source"], &[], 1);
        assert!(out.contains("/nonexistent/source"), "{name}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{name}: one line: {out}");
    }
}

/// objfs's presentation and safety flags, over S3: --read-only refuses changes; --uid,
/// --gid, --file-mode and --dir-mode are what stat shows; --files-ahead 0 reads nothing
/// ahead (the default does: files_read_ahead_are_current in tests/objfs.rs).
#[cfg(feature = "opendal")]
#[test]
fn objfs_flags_take_effect() {
    use std::os::unix::fs::MetadataExt;
    let test = "objfs_flags_take_effect";
    if !can_mount(test) {
        return;
    }
    let Some(s) = common::servers::Server::s3(test) else { return };
    fs::create_dir_all(s.file("d")).unwrap();
    for i in 0..5 {
        fs::write(s.file(&format!("d/f{i}")), [i as u8; 100]).unwrap();
    }
    let m = s.mount_objfs(&[
        "--read-only",
        "--uid",
        "1234",
        "--gid",
        "5678",
        "--file-mode",
        "600",
        "--dir-mode",
        "700",
        "--files-ahead",
        "0",
    ]);
    let d = fs::metadata(m.path.join("d")).unwrap();
    assert_eq!((d.uid(), d.gid(), d.mode() & 0o7777), (1234, 5678, 0o700), "the directory");
    let f = fs::metadata(m.path.join("d/f1")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1234, 5678, 0o600), "a file");
    let e = fs::write(m.path.join("d/new"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "--read-only: {e}");
    let e = fs::remove_file(m.path.join("d/f1")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "--read-only: {e}");
    let mut names: Vec<_> = fs::read_dir(m.path.join("d")).unwrap().flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for (i, e) in names.iter().enumerate() {
        assert_eq!(fs::read(e.path()).unwrap(), [i as u8; 100]);
    }
    let report = m.report();
    assert!(report.ends_with(" 0 files read ahead and used"), "--files-ahead 0: {report}");
}

/// The ranged GETs objfs has made, from its report.
#[cfg(feature = "opendal")]
fn ranged_gets(m: &ExampleMount) -> u64 {
    let report = m.report();
    report
        .split(", ")
        .find_map(|part| part.strip_suffix(" ranged GETs")?.parse().ok())
        .unwrap_or_else(|| panic!("no GET count in {report:?}"))
}

/// --prefetch-mib: a sequential read of 16 MiB costs a few large GETs with the default
/// window (13-15 here, as the window grows), and one per READ with 0 (no prefetch: 128 READs
/// of 128 KiB here).
#[cfg(feature = "opendal")]
#[test]
fn objfs_prefetch_mib_sets_how_far_reads_fetch_ahead() {
    let test = "objfs_prefetch_mib_sets_how_far_reads_fetch_ahead";
    if !can_mount(test) {
        return;
    }
    let Some(s) = common::servers::Server::s3(test) else { return };
    let data: Vec<u8> = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    fs::write(s.file("big"), &data).unwrap();
    for (window, fewest, most) in [("64", 1, 32), ("0", 64, u64::MAX)] {
        let m = s.mount_objfs(&["--prefetch-mib", window]);
        let before = ranged_gets(&m);
        let read = fs::read(m.path.join("big")).unwrap();
        assert!(read == data, "--prefetch-mib {window}: the object's bytes");
        let gets = ranged_gets(&m) - before;
        eprintln!("--prefetch-mib {window}: {gets} ranged GETs for 16 MiB");
        assert!((fewest..=most).contains(&gets), "--prefetch-mib {window}: {gets} GETs");
    }
}

/// The PUTs objfs has sent to its store, and the most at once, from its report.
#[cfg(feature = "opendal")]
fn puts(m: &ExampleMount) -> (u64, u64) {
    m.report();
    let out = m.output();
    let line = out.lines().rfind(|l| l.starts_with("store requests: ")).expect("store requests");
    let put = line.split(", ").find_map(|p| p.strip_prefix("PUT ")).expect("a PUT count");
    let (sent, at_once) = match put.split_once(" (") {
        Some((sent, rest)) => (sent, rest.strip_suffix(" at once)").expect("at once")),
        None => (put, "1"),
    };
    (sent.parse().unwrap(), at_once.parse().unwrap())
}

/// The ETags s3s-fs keeps for the objects uploaded to it, by the file it keeps them in.
#[cfg(feature = "opendal")]
fn etags(s: &common::servers::Server) -> std::collections::HashMap<String, String> {
    let root = s.file("").parent().unwrap().to_path_buf();
    let infos = fs::read_dir(&root).unwrap().flatten();
    let infos = infos.filter(|e| e.file_name().to_string_lossy().ends_with(".internal.json"));
    infos
        .map(|e| {
            let info: serde_json::Value =
                serde_json::from_slice(&fs::read(e.path()).unwrap()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), info["e_tag"].as_str().unwrap().into())
        })
        .collect()
}

/// --part-mib and --upload-concurrency: a file of 21 MiB goes up in 3 parts by default, in 5
/// with `--part-mib 5` (counted by the store: a multipart ETag ends in its count of parts;
/// and as PUTs sent, retries included, beside the one PUT that made the file at its
/// creation), one at a time by default and several at once with `--upload-concurrency 4`.
///
/// `cp` writes the file, not this process: every close of a descriptor sends FLUSH, which
/// uploads, and a process another test forks while this one holds the file open holds it
/// too until its exec closes it. That happened once in CI: a FLUSH mid-write uploaded the
/// first MiBs, and the PUTs counted two uploads.
#[cfg(feature = "opendal")]
#[test]
fn objfs_part_mib_and_upload_concurrency_shape_uploads() {
    let test = "objfs_part_mib_and_upload_concurrency_shape_uploads";
    if !can_mount(test) {
        return;
    }
    let Some(s) = common::servers::Server::s3(test) else { return };
    let data: Vec<u8> = (0..21u32 << 20).map(|i| (i % 251) as u8).collect();
    let source = tempfile::NamedTempFile::new().unwrap();
    fs::write(source.path(), &data).unwrap();
    let runs: [(&[&str], u64, bool); 3] = [
        (&[], 3, false),
        (&["--part-mib", "5"], 5, false),
        (&["--part-mib", "5", "--upload-concurrency", "4"], 5, true),
    ];
    for (i, (flags, parts, overlap)) in runs.into_iter().enumerate() {
        let m = s.mount_objfs(flags);
        let known = etags(&s);
        let (before, _) = puts(&m);
        let target = m.path.join(format!("big{i}"));
        let cp = std::process::Command::new("cp").arg(source.path()).arg(&target).status();
        assert!(cp.unwrap().success(), "{flags:?}: cp into the mount");
        let (after, at_once) = puts(&m);
        // One PUT of nothing made the file at its creation. Sent, so a part OpenDAL's retry
        // layer sent again counts twice (seen once in five runs of the suite); the store's
        // ETag counts the parts exactly.
        let sent = after - before - 1;
        eprintln!("{flags:?}: {sent} PUTs, {at_once} at once");
        assert!((parts..=parts + 2).contains(&sent), "{flags:?}: {sent} PUTs for 21 MiB");
        assert_eq!(at_once > 1, overlap, "{flags:?}: {at_once} PUTs at once");
        let new: Vec<_> = etags(&s).into_iter().filter(|(k, _)| !known.contains_key(k)).collect();
        assert_eq!(new.len(), 1, "{flags:?}: one object uploaded: {new:?}");
        assert!(new[0].1.ends_with(&format!("-{parts}")), "{flags:?}: the ETag {new:?}");
        assert_eq!(fs::read(s.file(&format!("big{i}"))).unwrap(), data, "{flags:?}: the object");
        drop(m);
    }
}
