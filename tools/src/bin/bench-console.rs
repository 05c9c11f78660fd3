//! The console while a content rolls out: a real server process, a fleet
//! of `--clients` fake clients in `--offices` offices (registered over
//! QUIC as clients register, see `branchline_tools::fleet`) taking a
//! content of 1024 pieces over `--rollout-secs`: every 250 ms each client
//! reports what it holds (`Have`) and asks for sources, as a downloading
//! client does, every 5 s it sends its heartbeat, and each finishes at its
//! own time, spread over the rollout. Meanwhile `--readers` signed-in browsers load the console's
//! pages over HTTPS, one after another, and one watches the Offices
//! page's live stream.
//!
//! Measured: page load times (the whole body read; p50, p95, worst, per
//! page and in all) and how long after a client finished the live stream
//! first counted it (p50, p95, worst). The same page loads are measured
//! first with the server idle (the fleet registered, nothing moving),
//! side by side in the same command.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use branchline_actors::server::election::Attributes;
use branchline_actors::wire::{ByteCounters, ServerReply, ServerRequest};
use branchline_storage::{ContentId, PieceMap};
use branchline_tools::fleet::{
    PIECES, call, connect_offices, fake_client, fake_id, import_sheet, publish_sparse,
    sources_question, start_server,
};
use branchline_tools::nodes::{Proc, cpu_secs, release_binary};
use branchline_tools::{print_command, secs};
use clap::Parser;
use futures_util::StreamExt as _;
use rustls::pki_types::pem::PemObject as _;

/// The console, as its certificate names it.
const HOST: &str = "server.branchline";
/// Where it listens.
const CONSOLE: &str = "127.41.1.1:34390";
/// How often a fake client reports.
const STEP: Duration = Duration::from_millis(250);
/// How often a fake client sends its heartbeat (the server's default).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The pages loaded, in turn.
const PAGES: [&str; 6] = [
    "/offices?content={id}",
    "/contents",
    "/topology",
    "/audit",
    "/api/v1/offices?content={id}",
    "/api/v1/clients",
];
const PASSWORD: &str = "benchmark password";

/// The console's page loads and live updates during a rollout by a fleet
/// of fake clients, against the same page loads with the server idle.
#[derive(Parser)]
struct Args {
    /// Fake clients.
    #[arg(long, default_value_t = 100)]
    clients: u32,
    /// Offices (each a /24 of its own).
    #[arg(long, default_value_t = 10)]
    offices: u32,
    /// How long the rollout takes, first client to last.
    #[arg(long, default_value_t = 30)]
    rollout_secs: u64,
    /// Browsers loading pages at once.
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// How long the idle server's pages are loaded.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
}

/// Page load times, by page.
type Loads = BTreeMap<&'static str, Vec<Duration>>;

fn main() {
    let args = branchline_tools::parse_args::<Args>();
    print_command();
    let bin = release_binary();
    // BENCH_KEEP=1 keeps the work directory (the server's log) for a look.
    let work = tempfile::Builder::new()
        .prefix("bench-console-")
        .disable_cleanup(std::env::var_os("BENCH_KEEP").is_some())
        .tempdir()
        .unwrap();
    let (server, content) = start(&bin, work.path(), &args);
    let figures = measure(work.path(), &args, content, server.0.id());
    server.terminate();
    report(&args, &figures);
}

/// The server with its console on a certificate of a CA made here, the
/// benchmark's account, one content and the offices.
fn start(bin: &Path, work: &Path, args: &Args) -> (Proc, ContentId) {
    let ca = work.join("ca");
    let cli = |what: &[&str]| {
        let status = std::process::Command::new(bin).args(what).status().unwrap();
        assert!(status.success(), "branchline {what:?}");
    };
    cli(&["pki", "init", ca.to_str().unwrap()]);
    cli(&[
        "pki",
        "issue",
        "--ca",
        ca.to_str().unwrap(),
        "--role",
        "server",
        "--name",
        "console",
    ]);
    let server_dir = work.join("server");
    let console = format!(
        "[console]\ncert = {:?}\nkey = {:?}\n",
        ca.join("console.pem"),
        ca.join("console.key")
    );
    let server = start_server(bin, work, &server_dir, &console);
    let mut child = std::process::Command::new(bin)
        .args([
            "admin",
            "add-user",
            "bench",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .arg("--data-dir")
        .arg(&server_dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let content = publish_sparse(bin, work, &server_dir, 0);
    import_sheet(bin, work, &server_dir, args.offices);
    (server, content)
}

struct Figures {
    idle: Loads,
    rollout: Loads,
    /// For each client finished, how long until the live stream counted it.
    lag: Vec<Duration>,
    /// Clients the stream never counted.
    unseen: usize,
    server_cores: f64,
}

/// A runtime on the calling thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The fleet registers and rolls out on this thread; the browsers load
/// pages and watch the live stream on a thread of their own, so neither
/// side's work delays the other's timing.
fn measure(work: &Path, args: &Args, content: ContentId, server_pid: u32) -> Figures {
    let fleet = runtime();
    let conns = fleet.block_on(register(args, content));
    let (idle_done, idle_measured) = tokio::sync::oneshot::channel();
    let ca = work.join("ca").join("ca.pem");
    let (readers, idle_secs) = (args.readers, args.idle_secs);
    let rolling = Duration::from_secs(args.rollout_secs);
    let browsers = std::thread::spawn(move || {
        runtime().block_on(async move {
            let browser = Browser::signed_in(&ca).await;
            let idle = load_pages(&browser, readers, content, Duration::from_secs(idle_secs)).await;
            idle_done.send(()).unwrap();
            let watched = tokio::spawn(watch_live(browser.clone(), content));
            let rollout =
                load_pages(&browser, readers, content, rolling + Duration::from_secs(2)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            watched.abort();
            (idle, rollout, browser.seen())
        })
    });
    fleet.block_on(heartbeats_until(&conns, args, idle_measured));
    let cpu = (cpu_secs(server_pid), Instant::now());
    let finished = fleet.block_on(roll_out(&conns, args, content, rolling));
    let server_cores = (cpu_secs(server_pid) - cpu.0) / secs(cpu.1);
    let (idle, rollout, seen) = browsers.join().unwrap();
    let (lag, unseen) = lags(&finished, &seen);
    Figures {
        idle,
        rollout,
        lag,
        unseen,
        server_cores,
    }
}

/// Every fake client's heartbeat, as an idle client sends it.
async fn heartbeat_all(conns: &[quinn::Connection], args: &Args) {
    let beats = (0..args.clients).map(|n| {
        let conn = conns[(n % args.offices) as usize].clone();
        async move {
            let beat = ServerRequest::Heartbeat {
                id: fake_id(n),
                attributes: Attributes::default(),
                counters: ByteCounters::default(),
            };
            call(&conn, &beat).await
        }
    });
    futures_util::stream::iter(beats)
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
}

/// Heartbeats every [`HEARTBEAT`] until `done` (the idle server's
/// measure) comes, as idle clients keep their connections.
async fn heartbeats_until(
    conns: &[quinn::Connection],
    args: &Args,
    mut done: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = &mut done => return,
            _ = ticks.tick() => heartbeat_all(conns, args).await,
        }
    }
}

/// Every fake client registered, holding none of `content`.
async fn register(args: &Args, content: ContentId) -> Vec<quinn::Connection> {
    let conns = connect_offices(args.offices).await;
    for n in 0..args.clients {
        let conn = &conns[(n % args.offices) as usize];
        let holdings = vec![(content, PieceMap::new(PIECES))];
        let request = ServerRequest::Register(fake_client(n, args.offices, holdings));
        assert!(matches!(
            call(conn, &request).await,
            ServerReply::Registered { .. }
        ));
    }
    conns
}

/// A signed-in browser: an HTTPS client trusting the CA, with the
/// session's cookie; what its live stream saw.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    cookie: String,
    seen: Arc<std::sync::Mutex<Vec<(Instant, u32)>>>,
}

impl Browser {
    async fn signed_in(ca: &Path) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).unwrap();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve(HOST, CONSOLE.parse().unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let answer = http
            .post(format!("https://{HOST}:34390/api/v1/session"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"name": "bench", "password": PASSWORD}).to_string())
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "sign-in: {}", answer.status());
        let cookie = answer
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        Browser {
            http,
            cookie,
            seen: Arc::default(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let answer = self
            .http
            .get(format!("https://{HOST}:34390{path}"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer
    }

    fn seen(&self) -> Vec<(Instant, u32)> {
        self.seen.lock().unwrap().clone()
    }
}

/// `readers` browsers loading the pages in turn for `how_long`.
async fn load_pages(
    browser: &Browser,
    readers: usize,
    content: ContentId,
    how_long: Duration,
) -> Loads {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..readers)
        .map(|r| {
            let (browser, stop) = (browser.clone(), stop.clone());
            tokio::spawn(async move {
                let mut loads = Loads::new();
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    let page = PAGES[i % PAGES.len()];
                    let path = page.replace("{id}", &content.to_string());
                    let asked = Instant::now();
                    let body = browser.get(&path).await.bytes().await.unwrap();
                    loads.entry(page).or_default().push(asked.elapsed());
                    let signed_in =
                        path.starts_with("/api/") || body.windows(8).any(|w| w == b"sign-out");
                    assert!(signed_in, "{path} is not the signed-in page");
                    i += 1;
                }
                loads
            })
        })
        .collect();
    tokio::time::sleep(how_long).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Loads::new();
    for task in tasks {
        for (page, times) in task.await.unwrap() {
            all.entry(page).or_default().extend(times);
        }
    }
    all
}

/// Reads the Offices page's live stream, noting when each event came and
/// how many clients were done by it.
async fn watch_live(browser: Browser, content: ContentId) {
    let mut answer = browser
        .get(&format!("/api/v1/offices/live?content={content}"))
        .await;
    let mut text = String::new();
    while let Some(chunk) = answer.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.strip_prefix("event: offices\ndata: ") {
                let view: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                let done: u64 = view["offices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["rollout"]["done"].as_u64().unwrap_or(0))
                    .sum();
                let done = u32::try_from(done).unwrap_or(u32::MAX);
                browser.seen.lock().unwrap().push((Instant::now(), done));
            }
        }
    }
}

/// The rollout: client `n` holds a growing prefix of the pieces and has
/// all of them at `(n + 1) / clients` of `how_long`; every step each
/// client still downloading reports what it holds and asks for sources.
/// When each client's last report was answered.
async fn roll_out(
    conns: &[quinn::Connection],
    args: &Args,
    content: ContentId,
    how_long: Duration,
) -> Vec<Instant> {
    let start = Instant::now();
    let mut finished = vec![None; args.clients as usize];
    let mut ticks = tokio::time::interval(STEP);
    let mut beaten = Instant::now();
    while finished.iter().any(Option::is_none) {
        ticks.tick().await;
        if beaten.elapsed() >= HEARTBEAT {
            heartbeat_all(conns, args).await;
            beaten = Instant::now();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let reports = (0..args.clients)
            .filter(|n| finished[*n as usize].is_none())
            .map(|n| {
                let ends_at = how_long.as_secs_f64() * f64::from(n + 1) / f64::from(args.clients);
                let share = (elapsed / ends_at).min(1.0);
                let conn = conns[(n % args.offices) as usize].clone();
                async move {
                    let have = prefix(share);
                    let complete = have.is_complete();
                    let report = ServerRequest::Have {
                        id: fake_id(n),
                        content,
                        have,
                    };
                    assert!(matches!(call(&conn, &report).await, ServerReply::Ok));
                    let query = sources_question(n, content);
                    call(&conn, &query).await;
                    (n, complete.then(Instant::now))
                }
            });
        let answered: Vec<_> = futures_util::stream::iter(reports)
            .buffer_unordered(64)
            .collect()
            .await;
        for (n, done) in answered {
            if done.is_some() {
                finished[n as usize] = done;
            }
        }
    }
    finished.into_iter().flatten().collect()
}

/// The first `share` of the pieces.
fn prefix(share: f64) -> PieceMap {
    let mut have = PieceMap::new(PIECES);
    // share is in 0..=1: the product is at most PIECES.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = (share * f64::from(PIECES)).round() as u32;
    for i in 0..count {
        have.set(i);
    }
    have
}

/// For the k-th client to finish, how long until an event counted k
/// done; and how many never were.
fn lags(finished: &[Instant], seen: &[(Instant, u32)]) -> (Vec<Duration>, usize) {
    let mut finished = finished.to_vec();
    finished.sort_unstable();
    let mut lags = Vec::new();
    let mut unseen = 0;
    for (k, at) in finished.iter().enumerate() {
        let k = u32::try_from(k + 1).unwrap_or(u32::MAX);
        match seen.iter().find(|(when, done)| when >= at && *done >= k) {
            Some((when, _)) => lags.push(*when - *at),
            None => unseen += 1,
        }
    }
    (lags, unseen)
}

/// p50, p95 and the worst of `times`, in ms.
fn spread(times: &[Duration]) -> (f64, f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let at = |per_mille: usize| {
        let i = (sorted.len() * per_mille / 1000).min(sorted.len().saturating_sub(1));
        sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    (at(500), at(950), at(1000))
}

fn report(args: &Args, f: &Figures) {
    println!(
        "{} fake clients in {} offices taking a content of {PIECES} pieces over {} s (a report and a sources question per client every {} ms); {} browsers loading pages in turn, one watching the live Offices stream",
        args.clients,
        args.offices,
        args.rollout_secs,
        STEP.as_millis(),
        args.readers
    );
    println!();
    println!(
        "| page | idle loads | idle p50 ms | idle p95 ms | rollout loads | rollout p50 ms | rollout p95 ms | rollout worst ms | p95 rollout / idle |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let all = |loads: &Loads| loads.values().flatten().copied().collect::<Vec<_>>();
    let mut rows: Vec<(&str, Vec<Duration>, Vec<Duration>)> = PAGES
        .iter()
        .map(|p| {
            (
                *p,
                f.idle.get(p).cloned().unwrap_or_default(),
                f.rollout.get(p).cloned().unwrap_or_default(),
            )
        })
        .collect();
    rows.push(("all pages", all(&f.idle), all(&f.rollout)));
    for (page, idle, rollout) in rows {
        let (i50, i95, _) = spread(&idle);
        let (r50, r95, worst) = spread(&rollout);
        println!(
            "| {page} | {} | {i50:.1} | {i95:.1} | {} | {r50:.1} | {r95:.1} | {worst:.1} | {:.2}x |",
            idle.len(),
            rollout.len(),
            r95 / i95
        );
    }
    let (l50, l95, worst) = spread(&f.lag);
    println!();
    println!(
        "live Offices stream: a finished client counted after p50 {l50:.0} ms, p95 {l95:.0} ms, worst {worst:.0} ms ({} of {} counted, {} never); server cores busy during the rollout {:.2}",
        f.lag.len(),
        f.lag.len() + f.unseen,
        f.unseen,
        f.server_cores
    );
}
