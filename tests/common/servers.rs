//! Real storage servers on loopback for the objfs tests, each on a free port with its data
//! in a fresh temporary directory, stopped and reaped when dropped (also when the test
//! fails): S3 (s3s-fs, from crates.io), WebDAV (dufs, from crates.io) and SFTP (OpenSSH's
//! sshd, from Debian, with a host key and a client key made here). `.ci/run` installs them.
//! Garage (crates.io `garage`), a production S3 server, serves pjdfstest on objfs over S3
//! and the remote benchmark (s3fs cannot use s3s-fs); the other tests keep s3s-fs, which
//! keeps objects as plain files a test can change behind the mount.
//! A server that is not installed skips the test loudly, or fails it under
//! FUSEFS_REQUIRE_SERVERS (set by `.ci/run`).

use super::{GuardedSpawn, LIMIT};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process and where its data lives.
pub struct Server {
    child: Option<Child>,
    /// How it was started (for `restart`).
    program: String,
    args: Vec<String>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The directory it serves (for S3: the parent of the bucket directories).
    pub data: PathBuf,
    /// The scheme and OpenDAL options that reach it.
    pub scheme: &'static str,
    pub options: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The bucket every S3 server here has.
pub const BUCKET: &str = "bucket";
/// The S3 servers' access key and secret.
pub const S3_KEY: &str = "fusefs-test";
pub const S3_SECRET: &str = "fusefs-test-secret";
/// Garage's: it takes only keys of its own form ("GK" and 24 hex digits; 64 hex digits).
const GARAGE_KEY: &str = "GK00000000000000000000f05e";
const GARAGE_SECRET: &str = "f05ef05ef05ef05ef05ef05ef05ef05ef05ef05ef05ef05ef05ef05ef05ef05e";

/// Whether `program` can be run; if not, the test says so loudly and is skipped, or fails
/// under FUSEFS_REQUIRE_SERVERS.
pub fn installed(test: &str, program: &str, how: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_guarded()
        .is_ok();
    if found {
        return true;
    }
    if std::env::var_os("FUSEFS_REQUIRE_SERVERS").is_some() {
        panic!("{test}: {program} is not installed ({how}) but FUSEFS_REQUIRE_SERVERS is set");
    }
    eprintln!("\n*** SKIPPED {test}: {program} is not installed ({how}) ***\n");
    false
}

/// A port nobody listens on now (someone may take it before the server binds it: see
/// [`Server::start`]).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether process `pid` has a socket listening on TCP port `port` (/proc/net/tcp's
/// listening sockets, matched by inode to the process's descriptors).
fn listens(pid: u32, port: u16) -> bool {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9).map(|i| i.to_string()))?
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        let t = target.to_string_lossy();
        inodes.iter().any(|i| t == format!("socket:[{i}]"))
    })
}

/// The OpenDAL options of an S3 server on `port` with key pair `key`, `secret`.
fn s3_options(port: u16, key: &str, secret: &str) -> Vec<(String, String)> {
    [
        ("bucket", BUCKET.to_string()),
        ("endpoint", format!("http://127.0.0.1:{port}")),
        ("region", "us-east-1".into()),
        ("access_key_id", key.into()),
        ("secret_access_key", secret.into()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec()
}

impl Server {
    /// s3s-fs serving bucket [`BUCKET`], with a key pair.
    pub fn s3(test: &str) -> Option<Server> {
        if !installed(test, "s3s-fs", "cargo install --locked s3s-fs --features binary") {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("fusefs-s3-").tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join(BUCKET)).unwrap();
        let root = data.to_str().unwrap().to_string();
        Some(Self::start("s3s-fs", data, dir, "s3", |port| {
            let cmd = ["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", S3_KEY]
                .into_iter()
                .chain(["--secret-key", S3_SECRET, &root])
                .map(String::from)
                .collect();
            (cmd, s3_options(port, S3_KEY, S3_SECRET))
        }))
    }

    /// Garage, one node with 1 GiB of capacity, serving bucket [`BUCKET`] to a key pair
    /// imported here. Its objects live in its own format: [`file`](Self::file) does not
    /// apply.
    pub fn garage(test: &str) -> Option<Server> {
        if !installed(test, "garage", "cargo install --locked garage@2.5.0") {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("fusefs-garage-").tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("garage.toml");
        let meta = dir.path().join("meta");
        let config_arg = config.to_str().unwrap().to_string();
        let data_dir = data.clone();
        let server = Self::start("garage", data, dir, "s3", |port| {
            let rpc = free_port();
            let text = format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"us-east-1\"\napi_bind_addr = \"127.0.0.1:{port}\"\n",
                meta = meta.display(),
                data = data_dir.display(),
                secret = GARAGE_SECRET,
            );
            std::fs::write(&config, text).unwrap();
            // Garage refuses a configuration holding a secret that others may read.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
            let cmd = vec!["-c".into(), config_arg.clone(), "server".into()];
            (cmd, s3_options(port, GARAGE_KEY, GARAGE_SECRET))
        });
        let config = config_arg;
        // A cluster of one: give the node its role, then the bucket and the key.
        let admin = |args: &[&str]| {
            let out =
                Command::new("garage").args(["-c", &config]).args(args).output_guarded().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (out.status.success(), text + &String::from_utf8_lossy(&out.stderr))
        };
        let deadline = Instant::now() + LIMIT;
        let node = loop {
            match admin(&["node", "id", "-q"]) {
                (true, id) => break id.trim().split('@').next().unwrap().to_string(),
                (false, why) => assert!(Instant::now() < deadline, "garage node id: {why}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for step in [
            &["layout", "assign", "-z", "dc1", "-c", "1G", &node][..],
            &["layout", "apply", "--version", "1"],
            &["bucket", "create", BUCKET],
            &["key", "import", "--yes", "-n", "fusefs", GARAGE_KEY, GARAGE_SECRET],
            &["bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", GARAGE_KEY],
        ] {
            let (ok, why) = admin(step);
            assert!(ok, "garage {}: {why}", step.join(" "));
        }
        Some(server)
    }

    /// The value of OpenDAL option `key` for this server (`bucket`, `endpoint`,
    /// `access_key_id`, ...).
    pub fn option(&self, key: &str) -> &str {
        self.options.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v)
    }

    /// dufs serving a directory over WebDAV, every operation allowed.
    pub fn webdav(test: &str) -> Option<Server> {
        if !installed(test, "dufs", "cargo install --locked dufs") {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("fusefs-dav-").tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let root = data.to_str().unwrap().to_string();
        Some(Self::start("dufs", data, dir, "webdav", |port| {
            let cmd = ["-A", "-b", "127.0.0.1", "-p", &port.to_string(), &root]
                .map(String::from)
                .to_vec();
            (cmd, vec![("endpoint".into(), format!("http://127.0.0.1:{port}"))])
        }))
    }

    /// OpenSSH's sshd on loopback, accepting a key made here for root, serving SFTP; the
    /// store's root is a fresh directory.
    pub fn sftp(test: &str) -> Option<Server> {
        if !Path::new("/usr/sbin/sshd").exists() {
            if std::env::var_os("FUSEFS_REQUIRE_SERVERS").is_some() {
                panic!("{test}: sshd is not installed (Debian openssh-server)");
            }
            eprintln!("\n*** SKIPPED {test}: sshd is not installed (Debian openssh-server) ***\n");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("fusefs-sftp-").tempdir().unwrap();
        let d = dir.path();
        let data = d.join("data");
        std::fs::create_dir_all(&data).unwrap();
        for key in ["host_key", "client_key"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .status_guarded()
                .unwrap();
            assert!(ok.success(), "ssh-keygen failed");
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd insists that nothing on the way to its keys is writable by others.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap(); // its privilege-separation directory
        let d = d.to_path_buf();
        let root = data.display().to_string();
        Some(Self::start("/usr/sbin/sshd", data, dir, "sftp", |port| {
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n\
                 StrictModes no\nPidFile none\nSubsystem sftp internal-sftp\n",
                hk = d.join("host_key").display(),
                ak = d.join("authorized_keys").display(),
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let config = d.join("sshd_config").display().to_string();
            let cmd = ["-D", "-e", "-f", &config].map(String::from).to_vec();
            let options = [
                ("endpoint", format!("ssh://root@127.0.0.1:{port}")),
                ("user", "root".into()),
                ("key", d.join("client_key").display().to_string()),
                ("known_hosts_strategy", "accept".into()),
                ("root", root.clone()),
            ];
            (cmd, options.map(|(k, v)| (k.to_string(), v)).to_vec())
        }))
    }

    /// Start `program` on a free port with what `setup` makes for that port (its arguments
    /// and the OpenDAL options that reach it). Another process may take the port between
    /// our probe and the server's bind: the server then fails to start, and the next try
    /// takes another port (5 tries).
    fn start(
        program: &str,
        data: PathBuf,
        dir: tempfile::TempDir,
        scheme: &'static str,
        setup: impl Fn(u16) -> (Vec<String>, Vec<(String, String)>),
    ) -> Server {
        let mut s = Server {
            child: None,
            program: program.into(),
            args: Vec::new(),
            port: 0,
            data,
            scheme,
            options: Vec::new(),
            _dir: dir,
        };
        for attempt in 1..=5 {
            s.port = free_port();
            (s.args, s.options) = setup(s.port);
            match s.try_start() {
                Ok(()) => return s,
                Err(why) if attempt < 5 => {
                    eprintln!("{program} on port {}: {why}; trying another port", s.port)
                }
                Err(why) => panic!("{program}: {why}"),
            }
        }
        unreachable!()
    }

    /// Start the server again after `stop`: same port, same data.
    pub fn restart(&mut self) {
        self.try_start().unwrap_or_else(|why| panic!("restart {}: {why}", self.program));
    }

    /// Start the server and wait until a socket of its own listens on its port (a connect
    /// could reach another process on a reused port); an error if it exits first.
    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self._dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn_guarded()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program));
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + LIMIT;
        while !listens(pid, self.port) {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("exited ({status}): {}", self.log()));
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!("not listening within {LIMIT:?}: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Processes other than the server itself whose command line names this server's
    /// directory (an SFTP client's ssh master left behind, say).
    pub fn strays(&self) -> Vec<String> {
        let dir = self._dir.path().to_string_lossy().into_owned();
        let me = self.child.as_ref().map(|c| c.id());
        let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
        procs
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let pid: u32 = name.parse().ok()?;
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                (Some(pid) != me && cmd.contains(&dir)).then(|| format!("{pid}: {cmd}"))
            })
            .collect()
    }

    /// Zombie `ssh` processes on the machine (an SFTP client's master that exited with
    /// nobody to reap it: PID 1 here reaps no one). Only the SFTP test starts ssh.
    pub fn zombie_ssh() -> usize {
        let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
        procs
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
                let (comm, rest) = stat.rsplit_once(')')?;
                (comm.ends_with("(ssh") && rest.split_whitespace().next() == Some("Z"))
                    .then_some(())
            })
            .count()
    }

    /// What the server printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default()
    }

    /// The arguments that make objfs reach this server: SCHEME, then `-O KEY=VALUE`s.
    pub fn objfs_args(&self) -> (Vec<String>, Vec<String>) {
        let opts = self.options.iter().flat_map(|(k, v)| ["-O".into(), format!("{k}={v}")]);
        (vec![self.scheme.to_string()], opts.collect())
    }

    /// objfs mounted on this server (on a temporary mountpoint of its own), with `extra`
    /// arguments.
    pub fn mount_objfs(&self, extra: &[&str]) -> super::ExampleMount {
        let (before, opts) = self.objfs_args();
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        let mut args: Vec<&str> = opts.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        super::ExampleMount::start_with("objfs", &before, &args)
    }

    /// Where the store keeps `path` (for S3: inside the bucket).
    pub fn file(&self, path: &str) -> PathBuf {
        match self.scheme {
            "s3" => self.data.join(BUCKET).join(path),
            _ => self.data.join(path),
        }
    }

    /// Stop the server (a network that fails), and reap it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // What the server forked for its clients first (sshd's per-connection processes):
            // a client that outlived its mount (an ssh master whose objfs was killed) would
            // keep them, and itself, running. The server, still alive, reaps them.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let left: Vec<i32> = super::children_of(c.id())
                    .into_iter()
                    .filter(|(_, z)| !z)
                    .map(|(p, _)| p)
                    .collect();
                if left.is_empty() || std::time::Instant::now() > deadline {
                    break;
                }
                for pid in left {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
