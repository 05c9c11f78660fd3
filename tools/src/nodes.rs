//! Running real `branchline` processes from a benchmark: the release
//! binary, a child process killed on drop, status over the admin socket,
//! publishing, and reading a process's CPU time and peak RSS from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release `branchline` binary next to this benchmark's own binary.
pub fn release_binary() -> PathBuf {
    let bin = std::env::current_exe()
        .unwrap()
        .with_file_name("branchline");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p branchline` first",
        bin.display()
    );
    bin
}

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Stops the process the way systemd does (SIGTERM), so it can say
    /// goodbye, and reaps it.
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin args...` with stdout and stderr going to `log`.
pub fn spawn(bin: &Path, args: &[String], log: &Path) -> Proc {
    let file = std::fs::File::create(log).unwrap();
    Proc(
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap(),
    )
}

/// `branchline status --json` of the node in `data_dir`, if it answers.
pub fn status(bin: &Path, data_dir: &Path) -> Option<serde_json::Value> {
    let out = Command::new(bin)
        .args(["status", "--json", "--data-dir", data_dir.to_str().unwrap()])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Waits up to two minutes for `ok`, panicking with `what` after that.
pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(120);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `branchline publish` on the server in `server_dir`; returns the content id.
pub fn publish(bin: &Path, server_dir: &Path, package: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "publish",
        "--data-dir",
        server_dir.to_str().unwrap(),
        package.to_str().unwrap(),
    ];
    args.extend(extra);
    last_line(bin, &args)
}

/// `branchline topology import` of the spreadsheet `sheet` on the server
/// in `server_dir`; it must be taken.
pub fn import_topology(bin: &Path, server_dir: &Path, sheet: &Path) {
    last_line(
        bin,
        &[
            "topology",
            "import",
            "--data-dir",
            server_dir.to_str().unwrap(),
            sheet.to_str().unwrap(),
        ],
    );
}

/// Runs `bin args...`, which must succeed; returns the last line it
/// printed on stdout.
fn last_line(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A line of /proc/PID/status such as `VmHWM:`, in MB.
fn status_mb(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kb / 1000.0
}

/// Peak resident set of a live process, in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// Current resident set of a live process, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// CPU seconds (user + system) a live process has used.
pub fn cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(Path::new(&format!("/proc/{pid}/stat"))).unwrap()
}

/// CPU seconds (user and system) of each thread of process `pid`, by
/// thread id.
pub fn thread_cpu_secs(pid: u32) -> std::collections::BTreeMap<u32, f64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Default::default();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            Some((tid, stat_cpu_secs(&task.path().join("stat"))?))
        })
        .collect()
}

/// The CPU seconds (user + system) a `/proc` `stat` file says were used.
fn stat_cpu_secs(path: &Path) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// The cores the busiest thread of `pid` used between `before` (from
/// [`thread_cpu_secs`]) and now, over `wall` seconds.
pub fn busiest_thread_cores(
    pid: u32,
    before: &std::collections::BTreeMap<u32, f64>,
    wall: f64,
) -> f64 {
    thread_cpu_secs(pid)
        .iter()
        .map(|(tid, now)| (now - before.get(tid).copied().unwrap_or(0.0)) / wall)
        .fold(0.0, f64::max)
}

fn clock_ticks() -> f64 {
    #[allow(unsafe_code)] // sysconf has no safe wrapper in std
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64
}

/// A join token from the server in `server_dir` (`branchline token
/// create`), for the clients a benchmark starts.
pub fn join_token(bin: &Path, server_dir: &Path) -> String {
    last_line(
        bin,
        &[
            "token",
            "create",
            "--data-dir",
            server_dir.to_str().unwrap(),
        ],
    )
}
