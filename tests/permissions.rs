//! Permission checks are on by default: every example mounts with `default_permissions`, so
//! a user other than the owner, reaching the mount through `allow_other`, meets the mode
//! bits, tested as the real user `nobody` on each example; `--no-default-permissions` turns
//! them off, and says so.

mod common;
use common::{can_mount, with_limit, ExampleMount, Tmpfs, LIMIT};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Run `script` with sh in `dir` as user nobody: (success, stdout, stderr).
fn as_nobody(dir: &Path, script: &str) -> (bool, String, String) {
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let (dir, script) = (dir.to_path_buf(), script.to_string());
    with_limit(
        "a command as nobody",
        LIMIT,
        || {},
        move || {
            let out = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .current_dir(&dir)
                .uid(uid)
                .gid(gid)
                .output()
                .unwrap();
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.success(), text(&out.stdout), text(&out.stderr))
        },
    )
}

/// On a mount of `example` (as root, `--allow-other`): a root-only file, a root-owned
/// directory and a readable file, made through the mount; then, as nobody, the first two
/// refuse and the third reads.
fn checks_permissions(example: &str, before: &[&str], extra: &[&str]) {
    let args: Vec<&str> = ["--allow-other"].iter().chain(extra).copied().collect();
    let m = ExampleMount::start_with(example, before, &args);
    let p = m.path.clone();
    fs::write(p.join("secret"), b"root only").unwrap();
    fs::set_permissions(p.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(p.join("public"), b"for all").unwrap();
    fs::set_permissions(p.join("public"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir(p.join("rootdir")).unwrap();
    fs::set_permissions(p.join("rootdir"), fs::Permissions::from_mode(0o755)).unwrap();
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts.lines().find(|l| l.contains(p.to_str().unwrap())).unwrap();
    assert!(line.contains("default_permissions"), "{example} mounted {line}");

    let (ok, out, err) = as_nobody(&p, "cat public");
    assert!(ok && out == "for all", "{example}: nobody reads a 0644 file: {err}");
    let (ok, _, err) = as_nobody(&p, "cat secret");
    assert!(!ok && err.contains("Permission denied"), "{example}: nobody read a 0600 file: {err}");
    let (ok, _, err) = as_nobody(&p, "echo x > rootdir/new");
    assert!(!ok && err.contains("Permission denied"), "{example}: nobody wrote in 0755 root dir");
    let (ok, _, err) = as_nobody(&p, "echo x >> public");
    assert!(!ok && err.contains("Permission denied"), "{example}: nobody wrote a 0644 file: {err}");
    assert_eq!(fs::read(p.join("public")).unwrap(), b"for all");
    assert!(!p.join("rootdir/new").exists());
}

fn required(test: &str) -> bool {
    if !can_mount(test) {
        return false;
    }
    if nix::unistd::User::from_name("nobody").ok().flatten().is_none() {
        if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
            panic!("{test}: no user nobody");
        }
        eprintln!("\n*** SKIPPED {test}: no user nobody ***\n");
        return false;
    }
    true
}

#[test]
fn memfs_checks_permissions() {
    if required("memfs_checks_permissions") {
        checks_permissions("memfs", &[], &[]);
    }
}

#[test]
fn slowfs_checks_permissions() {
    if required("slowfs_checks_permissions") {
        let src = tempfile::tempdir().unwrap();
        fs::set_permissions(src.path(), fs::Permissions::from_mode(0o755)).unwrap();
        checks_permissions("slowfs", &[src.path().to_str().unwrap()], &["--latency-ms", "0"]);
    }
}

#[test]
fn passthrough_checks_permissions() {
    if required("passthrough_checks_permissions") {
        let src = Tmpfs::new((0, 0));
        checks_permissions("passthrough", &[src.path.to_str().unwrap()], &[]);
    }
}

/// hello is read-only: nobody reads its file, and the mount checks permissions too.
#[test]
fn hello_checks_permissions() {
    if !required("hello_checks_permissions") {
        return;
    }
    let m = ExampleMount::start("hello", &["--allow-other"]);
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts.lines().find(|l| l.contains(m.path.to_str().unwrap())).unwrap();
    assert!(line.contains("default_permissions"), "hello mounted {line}");
    let (ok, out, err) = as_nobody(&m.path, "cat hello.txt");
    assert!(ok && out == "Hello World!\n", "nobody reads hello.txt: {err}");
    let (ok, _, _) = as_nobody(&m.path, "echo x >> hello.txt");
    assert!(!ok, "nobody wrote hello.txt");
}

/// The opt-out: without the kernel's checks, nobody reads the root-only file, and the
/// example warns when it starts.
#[test]
fn no_default_permissions_opts_out_and_warns() {
    if !required("no_default_permissions_opts_out_and_warns") {
        return;
    }
    let m = ExampleMount::start("memfs", &["--allow-other", "--no-default-permissions"]);
    let p = m.path.clone();
    fs::write(p.join("secret"), b"root only").unwrap();
    fs::set_permissions(p.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out, err) = as_nobody(&p, "cat secret");
    assert!(ok && out == "root only", "without default_permissions MemFs lets it: {err}");
    assert!(m.output().contains("--no-default-permissions: the kernel checks no permission"));
}

/// The unprivileged path, as a real user: memfs run as `nobody` mounts through fusermount3
/// and serves them; `--allow-other` is refused (no `user_allow_other` in /etc/fuse.conf),
/// with fusermount3's reason, and nothing is mounted.
#[test]
fn a_user_mounts_through_fusermount3_and_may_not_allow_others() {
    let test = "a_user_mounts_through_fusermount3_and_may_not_allow_others";
    let Some((uid, gid)) = common::nobody_may_mount(test) else {
        return;
    };
    let conf = fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if conf.lines().any(|l| l.trim() == "user_allow_other") {
        let why = "/etc/fuse.conf says user_allow_other";
        if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
            panic!("{test}: {why}");
        }
        eprintln!("\n*** SKIPPED {test}: {why} ***\n");
        return;
    }
    let m = ExampleMount::start_as("memfs", &[], &[], uid, gid);
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts.lines().find(|l| l.contains(m.path.to_str().unwrap())).unwrap();
    assert!(line.contains(&format!("user_id={uid}")), "mounted as nobody: {line}");
    let (ok, out, err) = as_nobody(&m.path, "echo hi > f && cat f");
    assert!(ok && out == "hi\n", "nobody uses their mount: {err}");
    drop(m);

    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    let child = Command::new(common::example("memfs"))
        .arg(dir.path())
        .arg("--allow-other")
        .uid(uid)
        .gid(gid)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let path = dir.path().to_path_buf();
    let kill = move || {
        // Had it been let mount, it would serve until stopped.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
    };
    let out = with_limit("memfs --allow-other as nobody", LIMIT, kill, move || {
        child.wait_with_output().unwrap()
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {err}");
    assert!(err.contains("user_allow_other"), "fusermount3 says why: {err}");
    assert!(!common::is_mounted(dir.path()));
}

/// Run `script` with sh in `dir` as root with umask 022: (success, stderr).
fn as_root(dir: &Path, script: &str) -> (bool, String) {
    let (dir, script) = (dir.to_path_buf(), format!("umask 022; {script}"));
    with_limit(
        "a command as root",
        LIMIT,
        || {},
        move || {
            let out = Command::new("sh").arg("-c").arg(&script).current_dir(&dir).output().unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
        },
    )
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// `passthrough --acl`: POSIX ACLs as on the source. An ACL entry lets nobody write where
/// the mode bits refuse (the kernel checks ACLs); a default ACL is inherited as on the
/// source, the umask ignored (the kernel leaves it to the daemon, DONT_MASK), and applied
/// where there is none; an ACL set by its owner outside the file's group clears setgid.
#[test]
fn passthrough_acl_enforces_and_inherits_posix_acls() {
    let test = "passthrough_acl_enforces_and_inherits_posix_acls";
    if !required(test) || !common::servers::installed(test, "setfacl", "apt-get install acl") {
        return;
    }
    let src = Tmpfs::new((0, 0));
    let args = ["--allow-other", "--acl"];
    let m = ExampleMount::start_with("passthrough", &[src.path.to_str().unwrap()], &args);
    let p = m.path.clone();
    fs::create_dir(p.join("shared")).unwrap();
    fs::set_permissions(p.join("shared"), fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, _, _) = as_nobody(&p, "echo x > shared/before");
    assert!(!ok, "nobody wrote in a 0755 directory of root's");
    let (ok, err) = as_root(&p, "setfacl -m u:nobody:rwx shared");
    assert!(ok, "setfacl: {err}");
    let (ok, _, err) = as_nobody(&p, "echo x > shared/by-nobody");
    assert!(ok, "the ACL entry lets nobody write: {err}");

    let (ok, err) =
        as_root(&p, "setfacl -d -m g::rwx,o::- shared && touch shared/f && mkdir shared/d");
    assert!(ok, "a default ACL: {err}");
    // 0666 and 0777 through a default ACL whose group class is rwx: the umask (022) ignored.
    assert_eq!(mode(&p.join("shared/f")), 0o660, "a file inherits the default ACL");
    assert_eq!(mode(&src.path.join("shared/f")), 0o660, "on the source too");
    assert_eq!(mode(&p.join("shared/d")), 0o770, "a directory inherits it");
    let (ok, err) = as_root(&p, "umask 027; touch plain");
    assert!(ok, "{err}");
    assert_eq!(mode(&p.join("plain")), 0o640, "no default ACL: the caller's umask");

    let (ok, err) = as_root(&p, "touch sgid && chown nobody:root sgid && chmod 2755 sgid");
    assert!(ok, "{err}");
    assert_eq!(mode(&p.join("sgid")), 0o2755);
    let (ok, _, err) = as_nobody(&p, "setfacl -m u:root:r sgid");
    assert!(ok, "the owner sets an ACL: {err}");
    assert_eq!(mode(&p.join("sgid")) & 0o2000, 0, "setgid cleared: nobody is not in group root");
    // A default ACL leaves a setgid directory's bit alone, as a local filesystem does.
    let (ok, err) = as_root(&p, "mkdir sgdir && chown nobody:root sgdir && chmod 2775 sgdir");
    assert!(ok, "{err}");
    let (ok, _, err) = as_nobody(&p, "setfacl -d -m u::rwx sgdir");
    assert!(ok, "the owner sets a default ACL: {err}");
    assert_eq!(mode(&p.join("sgdir")), 0o2775, "a setgid directory keeps its bit");
}
