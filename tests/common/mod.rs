//! Test harness: real `branchline` processes on loopback subnets, a test
//! origin, and helpers that wait for conditions with deadlines instead of
//! sleeping.
#![allow(dead_code)] // each test file uses part of the harness

pub mod console;
pub mod origin;
pub mod pki;
pub mod sim;
pub mod testbed;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_branchline"))
}

/// A running node process; killed when dropped.
pub struct Node {
    pub name: String,
    pub child: Child,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Node {
    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as systemd stops a service, and wait for the exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `status --json` of this node.
    pub fn status(&self) -> Value {
        status(&self.data_dir)
    }

    /// The names of the clients a server has registered, in its order.
    pub fn client_names(&self) -> Vec<String> {
        self.status()["registry"]["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits for a client's start-up check to end; returns what `status`
    /// says of it (`"not_needed"`, `{"done": ...}` or `{"failed": ...}`).
    pub fn start_check(&self) -> Value {
        let mut found = Value::Null;
        wait_until(
            &format!("{}'s start-up check", self.name),
            Duration::from_secs(30),
            || {
                found = self.status()["start_check"].clone();
                found != "running"
            },
        );
        found
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One test's world: a work directory and a loopback /24.
pub struct World {
    pub dir: tempfile::TempDir,
    pub subnet: [u8; 3],
    /// The join token clients get, made once from the world's server.
    token: std::cell::RefCell<Option<String>>,
}

impl World {
    /// A world on 127.`b`.`c`.0/24. With `BRANCHLINE_TEST_KEEP` set, its
    /// directory (logs, data directories, outputs) outlives the test and its
    /// path is printed.
    pub fn new(b: u8, c: u8) -> Self {
        let keep = std::env::var_os("BRANCHLINE_TEST_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix("branchline-test-")
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            eprintln!("world kept in {}", dir.path().display());
        }
        World {
            dir,
            subnet: [127, b, c],
            token: std::cell::RefCell::new(None),
        }
    }

    /// A join token from the world's server (made once, with `branchline
    /// token create`), if its server runs and makes them: every client the
    /// world starts joins with it, as a real device does.
    pub fn join_token(&self) -> Option<String> {
        if let Some(token) = self.token.borrow().clone() {
            return Some(token);
        }
        let out = run(&[
            "token".into(),
            "create".into(),
            "--data-dir".into(),
            path_arg(&self.path("server")),
            "--expires".into(),
            "1h".into(),
        ]);
        if !out.status.success() {
            return None;
        }
        let token = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        *self.token.borrow_mut() = Some(token.clone());
        Some(token)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn addr(&self, host: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([self.subnet[0], self.subnet[1], self.subnet[2], host], port))
    }

    pub fn server_addr(&self) -> SocketAddr {
        self.addr(1, 34323)
    }

    fn spawn(&self, name: &str, args: &[String]) -> Node {
        self.spawn_with_env(name, args, &[])
    }

    fn spawn_with_env(&self, name: &str, args: &[String], env: &[(&str, &str)]) -> Node {
        let log = self.path(&format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let data_dir = self.path(name);
        let child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            // BRANCHLINE_TEST_LOG=debug (or a filter) for more detail.
            .env(
                "RUST_LOG",
                std::env::var("BRANCHLINE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Node {
            name: name.into(),
            child,
            data_dir,
            log,
        }
    }

    /// Starts the server and waits until its admin socket answers.
    pub fn server(&self) -> Node {
        self.server_with(&[])
    }

    /// Starts the server with extra flags and waits until its admin socket
    /// answers.
    pub fn server_with(&self, extra: &[&str]) -> Node {
        self.server_with_env(extra, &[])
    }

    /// The server with its data directory at `data_dir` (say, on a disk
    /// image of the test's own).
    pub fn server_in(&self, data_dir: &Path) -> Node {
        self.server_at(data_dir, &[], &[])
    }

    fn server_at(&self, data_dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Node {
        let mut args: Vec<String> = vec![
            "server".into(),
            "--data-dir".into(),
            path_arg(data_dir),
            "--listen".into(),
            self.server_addr().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut node = self.spawn_with_env("server", &args, &env);
        node.data_dir = data_dir.to_owned();
        wait_until("server answers", Duration::from_secs(20), || {
            try_status(&node.data_dir).is_some()
        });
        node
    }

    /// The arguments that start a client on `data_dir` at `listen`, with
    /// the world's server.
    pub fn client_args(&self, data_dir: &Path, listen: SocketAddr) -> Vec<String> {
        vec![
            "client".into(),
            "--data-dir".into(),
            path_arg(data_dir),
            "--listen".into(),
            listen.to_string(),
            "--server".into(),
            self.server_addr().to_string(),
        ]
    }

    /// A client named `name` at `listen` with its data directory at
    /// `data_dir`; it joins with the world's token if it has not yet.
    pub fn client_in(&self, data_dir: &Path, name: &str, listen: SocketAddr) -> Node {
        let mut args = self.client_args(data_dir, listen);
        args.extend(["--name".to_owned(), name.to_owned()]);
        if let Some(token) = self.join_token() {
            args.extend(["--join".to_owned(), token]);
        }
        let mut node = self.spawn(name, &args);
        node.data_dir = data_dir.to_owned();
        wait_until(&format!("{name} answers"), Duration::from_secs(20), || {
            try_status(&node.data_dir).is_some()
        });
        node
    }

    /// [`World::server_with`] with variables added to its environment
    /// (such as [`faketime`]'s).
    pub fn server_with_env(&self, extra: &[&str], env: &[(&str, String)]) -> Node {
        self.server_at(&self.path("server"), extra, env)
    }

    /// Starts a client at host `.host` and waits until it is registered.
    pub fn client(&self, host: u8) -> Node {
        self.client_with(host, self.server_addr(), &[])
    }

    /// Starts a client with a given server address and extra flags; waits
    /// until its admin socket answers.
    pub fn client_with(&self, host: u8, server: SocketAddr, extra: &[&str]) -> Node {
        self.client_at(
            &format!("client-{host}"),
            self.addr(host, 34760),
            server,
            extra,
        )
    }

    /// Starts a client named `name` listening at `listen` (any loopback
    /// address, so other subnets are other offices); waits until its admin
    /// socket answers.
    pub fn client_at(
        &self,
        name: &str,
        listen: SocketAddr,
        server: SocketAddr,
        extra: &[&str],
    ) -> Node {
        self.client_at_with_env(name, listen, server, extra, &[])
    }

    /// [`World::client_at`] with variables added to the client's
    /// environment (test fault switches).
    pub fn client_at_with_env(
        &self,
        name: &str,
        listen: SocketAddr,
        server: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Node {
        let mut args: Vec<String> = vec![
            "client".into(),
            "--data-dir".into(),
            path_arg(&self.path(name)),
            "--listen".into(),
            listen.to_string(),
            "--server".into(),
            server.to_string(),
            "--name".into(),
            name.to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(token) = self.join_token() {
            args.extend(["--join".to_owned(), token]);
        }
        let node = self.spawn_with_env(name, &args, env);
        wait_until(&format!("{name} answers"), Duration::from_secs(20), || {
            try_status(&node.data_dir).is_some()
        });
        node
    }

    /// Starts a client named `name` at `listen` that joined before (its
    /// data directory holds its certificate), without a join token.
    pub fn client_at_without_join(&self, name: &str, listen: SocketAddr) -> Node {
        let mut args = self.client_args(&self.path(name), listen);
        args.extend(["--name".to_owned(), name.to_owned()]);
        let node = self.spawn(name, &args);
        wait_until(&format!("{name} answers"), Duration::from_secs(20), || {
            try_status(&node.data_dir).is_some()
        });
        node
    }

    /// Starts a client named `name` at `listen` whose config file holds
    /// `election` as its `[election]` section (attribute overrides).
    pub fn client_elected(&self, name: &str, listen: &str, election: &str) -> Node {
        let config = self.path(&format!("{name}.toml"));
        std::fs::write(&config, format!("[election]\n{election}\n")).unwrap();
        self.client_at(
            name,
            listen.parse().unwrap(),
            self.server_addr(),
            &["--config", &path_arg(&config)],
        )
    }

    /// Imports a topology spreadsheet into the server.
    pub fn import_topology(&self, csv: &str) {
        let sheet = self.path("topology.csv");
        std::fs::write(&sheet, csv).unwrap();
        let out = run(&[
            "topology".into(),
            "import".into(),
            "--data-dir".into(),
            path_arg(&self.path("server")),
            path_arg(&sheet),
        ]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until `client` is registered with the server.
    pub fn wait_registered(&self, client: &Node) {
        wait_until(
            &format!("{} registers", client.name),
            Duration::from_secs(20),
            || client.status()["registered"] == true,
        );
    }

    /// Publishes `file` with `origins`; returns the content id.
    pub fn publish(&self, file: &Path, origins: &[String]) -> String {
        self.publish_with(file, origins, &[])
    }

    /// [`World::publish`] with extra flags (`--confidential`).
    pub fn publish_with(&self, file: &Path, origins: &[String], extra: &[&str]) -> String {
        let mut args = vec![
            "publish".to_string(),
            "--data-dir".into(),
            path_arg(&self.path("server")),
            path_arg(file),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        for origin in origins {
            args.push("--origin".into());
            args.push(origin.clone());
        }
        let out = run(&args);
        assert!(
            out.status.success(),
            "publish failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Starts `fetch` on a client without waiting.
    pub fn start_fetch(&self, client: &Node, content: &str, out: &Path) -> Child {
        Command::new(bin())
            .args([
                "fetch",
                "--quiet",
                "--data-dir",
                &path_arg(&client.data_dir),
                content,
                "--out",
                &path_arg(out),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

pub fn path_arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// Runs the binary to completion.
pub fn run(args: &[String]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs the binary and returns (exit ok, stderr).
pub fn run_err(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `status --json` of the node at `data_dir`, if it answers.
pub fn try_status(data_dir: &Path) -> Option<Value> {
    let out = run(&[
        "status".into(),
        "--json".into(),
        "--data-dir".into(),
        path_arg(data_dir),
    ]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Runs one debug shell command with `--json`: whether it succeeded, and
/// its output (stdout then stderr).
pub fn shell(data_dir: &Path, command: &str) -> (bool, String) {
    let out = run(&[
        "shell".into(),
        "--data-dir".into(),
        path_arg(data_dir),
        "-c".into(),
        command.into(),
        "--json".into(),
    ]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn status(data_dir: &Path) -> Value {
    try_status(data_dir).unwrap_or_else(|| panic!("node at {} does not answer", data_dir.display()))
}

/// The HTTP status `curl` gets for a HEAD of `url` (over HTTPS without
/// checking the server's name), showing `member`'s cluster certificate if
/// given; 0 if no response came.
pub fn curl_status(member: Option<&Node>, url: &str) -> u16 {
    curl(member, url, &["-I"]).0
}

/// `curl` of `url` like [`curl_status`] with `extra` flags: the status and
/// the body bytes received.
pub fn curl(member: Option<&Node>, url: &str, extra: &[&str]) -> (u16, u64) {
    let mut command = Command::new("curl");
    command.args([
        "-sk",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
    ]);
    if let Some(member) = member {
        let identity = member.data_dir.join("identity");
        command
            .arg("--cert")
            .arg(identity.join("node.pem"))
            .arg("--key")
            .arg(identity.join("node.key"));
    }
    let out = command.args(extra).arg(url).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let bytes = parts.next().and_then(|b| b.parse().ok()).unwrap_or(0);
    (code, bytes)
}

/// The environment that runs a process with its clock moved by `offset`
/// (libfaketime's syntax, e.g. `+8d`): Debian's `faketime` package, which
/// `tools/run-tests` installs.
pub fn faketime(offset: &str) -> Vec<(&'static str, String)> {
    let lib = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libfaketime is installed (apt-get install faketime)");
    vec![
        ("LD_PRELOAD", lib.to_owned()),
        ("FAKETIME", offset.to_owned()),
    ]
}

/// Polls `condition` every 50 ms until it holds or `deadline` passes.
pub fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !condition() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `size` pseudo-random bytes to `path`; returns their SHA-256.
pub fn make_package(path: &Path, size: usize, seed: u64) -> String {
    let mut state = seed | 1;
    let mut data = vec![0u8; size];
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    std::fs::write(path, &data).unwrap();
    sha256_hex(&data)
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// Starts `fetch` of `content` on every client at once, into
/// `<name>-<content prefix>.out` in the world's directory; returns each
/// fetch with its output path.
pub fn start_fetches<'a>(
    world: &World,
    clients: impl IntoIterator<Item = &'a Node>,
    content: &str,
) -> Vec<(Child, PathBuf)> {
    clients
        .into_iter()
        .map(|client| {
            let out = world.path(&format!("{}-{}.out", client.name, &content[..8]));
            (world.start_fetch(client, content, &out), out)
        })
        .collect()
}

/// Waits for every fetch and checks each output's SHA-256.
pub fn finish_fetches(fetches: Vec<(Child, PathBuf)>, sha: &str) {
    for (fetch, out) in fetches {
        finish_fetch(fetch);
        assert_eq!(
            sha256_file(&out),
            sha,
            "{} is not the package",
            out.display()
        );
    }
}

/// Pieces held of every content, from a client's `status --json`.
pub fn have_pieces(status: &Value) -> u64 {
    status["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["have"].as_u64().unwrap())
        .sum()
}

/// Waits for a fetch process; panics with its stderr if it failed.
pub fn finish_fetch(mut child: Child) {
    wait_child(&mut child, FETCH_DEADLINE);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "fetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for `child` for at most `limit` (then kills it and panics); its
/// status.
pub fn wait_child(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Longest a test waits for one fetch (a stalled download fails the test
/// instead of hanging it).
const FETCH_DEADLINE: Duration = Duration::from_secs(240);

/// Asserts an error is one line that starts with `error: ` and contains
/// every fragment.
pub fn assert_one_line_error(stderr: &str, fragments: &[&str]) {
    let text = stderr.trim_end();
    assert!(text.starts_with("error: "), "not an error line: {text:?}");
    assert!(
        !text.contains('\n'),
        "error is more than one line: {text:?}"
    );
    for fragment in fragments {
        assert!(
            text.contains(fragment),
            "error {text:?} does not mention {fragment:?}"
        );
    }
}
