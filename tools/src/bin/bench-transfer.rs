//! Loopback piece throughput between two Branchline clients, side by side
//! with curl downloading the same file from nginx, in one run. Also CPU
//! seconds per GiB on both sides and peak RSS of the nodes.
//!
//! Branchline: a server (its file storage is the origin), client A fetches
//! the package from the origin, then client B fetches it with A as its only
//! source (every piece from the peer, none from the origin). Timed from the
//! fetch command's start to B holding every piece, and to the output file
//! written. nginx: one process, sendfile on; curl writes the file.
//!
//! Needs the release binary (`cargo build --release -p branchline`) and
//! nginx and curl on PATH (`apt-get install nginx-light curl`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use branchline_tools::nodes::{
    Proc, cpu_secs, join_token, peak_rss_mb, publish, release_binary, spawn, status, wait_for,
};
use branchline_tools::{fill_random, print_command, secs};
use clap::Parser;

const SUBNET: &str = "127.40.1";

/// Loopback piece throughput between two clients against curl from nginx,
/// with CPU seconds per GiB and peak RSS.
#[derive(Parser)]
struct Args {
    /// MiB of the package fetched.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Runs of each.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn main() {
    let Args { mib, runs } = branchline_tools::parse_args::<Args>();
    print_command();
    let size = mib * 1024 * 1024;
    let bin = release_binary();
    let work = tempfile::Builder::new()
        .prefix("bench-transfer-")
        .tempdir()
        .unwrap();
    let storage = work.path().join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let package = storage.join("package.bin");
    write_package(&package, size);
    println!("package: {mib} MiB; {runs} runs each, median reported");

    let curl = baseline(work.path(), &storage, size, runs);
    let ours = branchline(&bin, work.path(), &package, size, runs);

    println!();
    println!("| system | MB/s | CPU s per GiB (receiver + sender) |");
    println!("|---|---|---|");
    println!(
        "| curl from nginx (file written) | {:.0} | {:.2} + {:.2} |",
        curl.mbs, curl.cpu_receiver, curl.cpu_sender
    );
    println!(
        "| Branchline B from A, pieces stored | {:.0} | {:.2} + {:.2} |",
        ours.mbs, ours.cpu_receiver, ours.cpu_sender
    );
    println!(
        "| Branchline B from A, output file written | {:.0} | |",
        ours.mbs_with_output
    );
    println!(
        "ratio Branchline/curl: {:.2}x (pieces stored), {:.2}x (output written); goal >= 0.5x",
        ours.mbs / curl.mbs,
        ours.mbs_with_output / curl.mbs
    );
    println!(
        "peak RSS: client A holding {mib} MiB {:.1} MB, client B {:.1} MB, server {:.1} MB (goal for a client: <= 64 MB)",
        ours.rss_a_mb, ours.rss_b_mb, ours.rss_server_mb
    );
}

struct Result {
    mbs: f64,
    cpu_receiver: f64,
    cpu_sender: f64,
}

struct Ours {
    mbs: f64,
    mbs_with_output: f64,
    cpu_receiver: f64,
    cpu_sender: f64,
    rss_a_mb: f64,
    rss_b_mb: f64,
    rss_server_mb: f64,
}

fn write_package(path: &Path, size: u64) {
    let mut seed = 0xfeed_beef_u64;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        fill_random(&mut block, &mut seed);
        let n = usize::try_from(left.min(block.len() as u64)).unwrap();
        std::io::Write::write_all(&mut out, &block[..n]).unwrap();
        left -= n as u64;
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU seconds used by finished children so far.
fn children_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    #[allow(unsafe_code)] // getrusage fills the struct we own
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn gib(size: u64) -> f64 {
    size as f64 / f64::from(1u32 << 30)
}

fn baseline(work: &Path, storage: &Path, size: u64, runs: usize) -> Result {
    let conf = work.join("nginx.conf");
    let addr = format!("{SUBNET}.2:8080");
    std::fs::write(
        &conf,
        format!(
            "daemon off; master_process off; worker_processes 1; error_log {work}/nginx.err; pid {work}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on;\n\
               client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};\n\
               server {{ listen {addr}; root {root}; }} }}\n",
            work = work.display(),
            root = storage.display()
        ),
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .args(["-c", conf.to_str().unwrap(), "-p", work.to_str().unwrap()])
        .spawn()
        .expect("nginx on PATH");
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("http://{addr}/package.bin");
    let (mut rates, mut receiver, mut sender) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let out = work.join("curl.out");
        let (server_cpu, client_cpu) = (cpu_secs(nginx.id()), children_cpu());
        let start = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "-o", out.to_str().unwrap(), &url])
            .status()
            .expect("curl on PATH");
        let elapsed = secs(start);
        assert!(status.success(), "curl failed");
        assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
        rates.push(size as f64 / 1e6 / elapsed);
        receiver.push((children_cpu() - client_cpu) / gib(size));
        sender.push((cpu_secs(nginx.id()) - server_cpu) / gib(size));
        std::fs::remove_file(&out).unwrap();
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
    println!(
        "curl from nginx: {:?} MB/s",
        rates.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    Result {
        mbs: median(rates),
        cpu_receiver: median(receiver),
        cpu_sender: median(sender),
    }
}

fn client(bin: &Path, work: &Path, host: u8) -> (Proc, PathBuf) {
    let dir = work.join(format!("client-{host}"));
    let token = join_token(bin, &work.join("server"));
    let args: Vec<String> = [
        "client",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        &format!("{SUBNET}.{host}:34760"),
        "--server",
        &format!("{SUBNET}.1:34323"),
        "--join",
        &token,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let proc = spawn(bin, &args, &work.join(format!("client-{host}.log")));
    wait_for("client registers", || {
        status(bin, &dir).is_some_and(|s| s["registered"] == true)
    });
    (proc, dir)
}

fn fetch(bin: &Path, dir: &Path, content: &str, out: &Path) -> Child {
    Command::new(bin)
        .args([
            "fetch",
            "--quiet",
            "--data-dir",
            dir.to_str().unwrap(),
            content,
            "--out",
            out.to_str().unwrap(),
            "--force",
        ])
        .spawn()
        .unwrap()
}

fn held(bin: &Path, dir: &Path) -> u64 {
    status(bin, dir).map_or(0, |s| s["usage"]["stored_bytes"].as_u64().unwrap_or(0))
}

fn branchline(bin: &Path, work: &Path, package: &Path, size: u64, runs: usize) -> Ours {
    let server_dir = work.join("server");
    let server_args: Vec<String> = [
        "server",
        "--data-dir",
        server_dir.to_str().unwrap(),
        "--listen",
        &format!("{SUBNET}.1:34323"),
        "--file-storage",
        package.parent().unwrap().to_str().unwrap(),
        "--file-storage-listen",
        &format!("{SUBNET}.1:34380"),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let server = spawn(bin, &server_args, &work.join("server.log"));
    wait_for("server answers", || status(bin, &server_dir).is_some());
    // No --origin: the server's file storage (HTTPS, members only) is it.
    let content = publish(bin, &server_dir, package, &[]);

    let (a, a_dir) = client(bin, work, 11);
    assert!(
        fetch(bin, &a_dir, &content, &work.join("a.out"))
            .wait()
            .unwrap()
            .success()
    );
    std::fs::remove_file(work.join("a.out")).unwrap();

    let (mut rates, mut rates_out, mut receiver, mut sender, mut rss_b) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0.0f64);
    for run in 0..runs {
        let host = 21 + u8::try_from(run).unwrap();
        let (b, b_dir) = client(bin, work, host);
        let out = work.join("b.out");
        let (a_cpu, b_cpu) = (cpu_secs(a.0.id()), cpu_secs(b.0.id()));
        let start = Instant::now();
        let mut fetching = fetch(bin, &b_dir, &content, &out);
        wait_for("B holds every piece", || held(bin, &b_dir) == size);
        let pieces_done = secs(start);
        let (a_used, b_used) = (cpu_secs(a.0.id()) - a_cpu, cpu_secs(b.0.id()) - b_cpu);
        assert!(fetching.wait().unwrap().success());
        let output_done = secs(start);
        let counters = &status(bin, &b_dir).unwrap()["counters"];
        assert_eq!(
            counters["from_origin"].as_u64(),
            Some(0),
            "B took nothing from the origin"
        );
        rates.push(size as f64 / 1e6 / pieces_done);
        rates_out.push(size as f64 / 1e6 / output_done);
        receiver.push(b_used / gib(size));
        sender.push(a_used / gib(size));
        rss_b = rss_b.max(peak_rss_mb(b.0.id()));
        std::fs::remove_file(&out).unwrap();
        // SIGTERM: B tells the server it leaves, so the next run's client
        // is not sent to a peer that is gone.
        b.terminate();
        std::fs::remove_dir_all(&b_dir).unwrap();
    }
    println!(
        "Branchline B from A: {:?} MB/s",
        rates.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    Ours {
        mbs: median(rates),
        mbs_with_output: median(rates_out),
        cpu_receiver: median(receiver),
        cpu_sender: median(sender),
        rss_a_mb: peak_rss_mb(a.0.id()),
        rss_b_mb: rss_b,
        rss_server_mb: peak_rss_mb(server.0.id()),
    }
}
