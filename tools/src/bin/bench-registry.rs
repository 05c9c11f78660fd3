//! The server under many clients in many offices: a real server process,
//! a topology of `--offices` offices imported, and `--clients` fake
//! clients spread over them, registered over QUIC exactly as a client
//! registers (each office's clients from an address of that office, on a
//! connection of their own), each holding a pseudo-random half of
//! `--contents` contents of 1024 pieces, `--registering` at a time (as
//! many devices start at once after an outage). Then `--queries` sources
//! questions, `--concurrency` at a time, each from its client's office.
//!
//! Measured: registrations per second and the server's CPU use while they
//! run (cores busy: CPU seconds over wall seconds), sources answer times
//! (p50, p99, worst), RSS idle and peak. With `--baseline PATH` the same
//! run is made first with another `branchline` binary (an older layout,
//! built from a tag or commit), side by side in the same command;
//! `--baseline-queries N` asks it fewer questions when it is too slow to
//! answer them all.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use branchline::tls;
use branchline::transport::endpoint;
use branchline::transport::exchange::exchange;
use branchline_actors::server::election::Attributes;
use branchline_actors::wire::{
    MAX_REPLY_FRAME, Registration, ServerReply, ServerRequest, SourcesQuery,
};
use branchline_storage::{ContentId, NodeId, PieceMap};
use branchline_tools::nodes::{
    self, Proc, busiest_thread_cores, cpu_secs, peak_rss_mb, publish, release_binary, rss_mb,
    spawn, status, thread_cpu_secs, wait_for,
};
use branchline_tools::{print_command, secs};
use clap::Parser;
use futures_util::StreamExt as _;

const SERVER: &str = "127.41.1.1:34323";
const PIECES: u32 = 1024;

/// What one run measured.
struct Figures {
    registered: usize,
    register_secs: f64,
    register_cores: f64,
    /// Cores the busiest server thread used while registering.
    busiest_thread: f64,
    /// Cores the benchmark's own fake clients used meanwhile.
    own_cores: f64,
    idle_mb: f64,
    registered_mb: f64,
    peak_mb: f64,
    query_cores: f64,
    p50_ms: f64,
    p99_ms: f64,
    worst_ms: f64,
}

/// The shape of the enterprise.
#[derive(Clone, Copy)]
struct Shape {
    offices: u32,
    clients: u32,
    contents: usize,
    registering: usize,
    concurrency: usize,
    queries: u32,
}

/// Many fake clients in many offices registered with a real server over
/// QUIC: registration rate, RSS, sources answer times and server cores,
/// side by side with a baseline binary.
#[derive(Parser)]
struct Args {
    /// Offices (each a /24 of its own).
    #[arg(long, default_value_t = 1_000)]
    offices: u32,
    /// Fake clients, spread over the offices.
    #[arg(long, default_value_t = 100_000)]
    clients: u32,
    /// Published contents; each client holds half of each.
    #[arg(long, default_value_t = 4)]
    contents: usize,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 256)]
    registering: usize,
    /// Sources questions in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Sources questions asked.
    #[arg(long, default_value_t = 20_000)]
    queries: u32,
    /// A `branchline` binary to measure first, the same way.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Sources questions asked of the baseline (an older layout may answer
    /// far slower); `--queries` by default.
    #[arg(long)]
    baseline_queries: Option<u32>,
}

fn main() {
    let args = branchline_tools::parse_args::<Args>();
    print_command();
    let shape = Shape {
        offices: args.offices,
        clients: args.clients,
        contents: args.contents,
        registering: args.registering,
        concurrency: args.concurrency,
        queries: args.queries,
    };
    assert!(
        (1..=1024).contains(&shape.offices) && shape.clients / shape.offices < 240,
        "--offices 1 to 1024, at most 239 clients per office"
    );
    let mut runs: Vec<(String, Figures)> = Vec::new();
    if let Some(baseline) = &args.baseline {
        let queries = args.baseline_queries.unwrap_or(shape.queries);
        let figures = run(baseline, Shape { queries, ..shape });
        runs.push((format!("baseline ({queries} questions)"), figures));
    }
    runs.push(("this tree".into(), run(&release_binary(), shape)));
    println!(
        "{} fake clients in {} offices, each holding half of {} contents of {PIECES} pieces, registered {} at a time; {} sources questions, {} at a time",
        shape.clients,
        shape.offices,
        shape.contents,
        shape.registering,
        shape.queries,
        shape.concurrency
    );
    println!();
    println!(
        "| server | registered | registrations/s | server cores busy registering | busiest server thread | benchmark's own cores | RSS idle MB | RSS registered MB | peak RSS MB | sources p50 ms | p99 ms | worst ms | server cores busy answering |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, f) in &runs {
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} |",
            f.registered,
            f64::from(shape.clients) / f.register_secs,
            f.register_cores,
            f.busiest_thread,
            f.own_cores,
            f.idle_mb,
            f.registered_mb,
            f.peak_mb,
            f.p50_ms,
            f.p99_ms,
            f.worst_ms,
            f.query_cores
        );
    }
    if let [(_, old), (_, new)] = &runs[..] {
        println!();
        println!(
            "this tree / baseline: {:.2}x the registration rate, {:.2}x the peak RSS, {:.2}x the sources p99",
            old.register_secs / new.register_secs,
            new.peak_mb / old.peak_mb,
            new.p99_ms / old.p99_ms
        );
    }
}

fn run(bin: &Path, shape: Shape) -> Figures {
    let work = tempfile::Builder::new()
        .prefix("bench-registry-")
        .tempdir()
        .unwrap();
    let server_dir = work.path().join("server");
    let server = start_server(bin, work.path(), &server_dir);
    let ids: Vec<ContentId> = (0..shape.contents)
        .map(|i| publish_sparse(bin, work.path(), &server_dir, i))
        .collect();
    import_sheet(bin, work.path(), &server_dir, shape.offices);
    let pid = server.0.id();
    let idle_mb = rss_mb(pid);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conns = runtime.block_on(connect_offices(shape.offices));
    let (cpu, threads, own) = (
        cpu_secs(pid),
        thread_cpu_secs(pid),
        cpu_secs(std::process::id()),
    );
    let start = Instant::now();
    runtime.block_on(register_all(&conns, shape, &ids));
    let register_secs = secs(start);
    let register_cores = (cpu_secs(pid) - cpu) / register_secs;
    let busiest_thread = busiest_thread_cores(pid, &threads, register_secs);
    let own_cores = (cpu_secs(std::process::id()) - own) / register_secs;
    // Let the batched persist reach sled.
    std::thread::sleep(Duration::from_secs(2));
    let registered_mb = rss_mb(pid);
    let (cpu, start) = (cpu_secs(pid), Instant::now());
    let mut times = runtime.block_on(ask_sources(&conns, shape, ids[0]));
    let query_cores = (cpu_secs(pid) - cpu) / secs(start);
    let peak_mb = peak_rss_mb(pid);
    let registered = status(bin, &server_dir).unwrap()["registry"]["clients"]
        .as_array()
        .map_or(0, Vec::len);
    times.sort_unstable();
    let at = |per_mille: usize| per_mille_ms(&times, per_mille);
    server.terminate();
    Figures {
        registered,
        register_secs,
        register_cores,
        busiest_thread,
        own_cores,
        idle_mb,
        registered_mb,
        peak_mb,
        query_cores,
        p50_ms: at(500),
        p99_ms: at(990),
        worst_ms: at(1000),
    }
}

/// The server under test, in `work`, with its data in `server_dir`, once
/// it answers. Fake clients never send heartbeats: they are kept for the
/// whole run. They register in any id they like, which only an insecure
/// server takes (under the PKI a connection speaks for its certificate's
/// node only); the server's memory and answer times do not depend on it.
fn start_server(bin: &Path, work: &Path, server_dir: &Path) -> Proc {
    let config = work.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"{SERVER}\"\ninsecure = true\n[registry]\nclient_timeout_secs = 3600\n[control]\nrequests_per_sec = 1000000\n",
            server_dir.display()
        ),
    )
    .unwrap();
    let server = spawn(
        bin,
        &[
            "server".into(),
            "--config".into(),
            config.display().to_string(),
        ],
        &work.join("server.log"),
    );
    wait_for("server answers", || status(bin, server_dir).is_some());
    server
}

/// The answer time at `per_mille` of the sorted `times`, in ms.
fn per_mille_ms(times: &[Duration], per_mille: usize) -> f64 {
    let i = (times.len() * per_mille / 1000).min(times.len() - 1);
    times[i].as_secs_f64() * 1e3
}

/// Office `k`'s /24: 127.42.0.0/24, 127.42.1.0/24, ... 127.45.255.0/24.
fn office_net(k: u32) -> [u8; 3] {
    let [_, _, hi, lo] = k.to_be_bytes();
    [127, 42 + hi, lo]
}

/// The sheet: office 0 on top, the others in a tree ten wide.
fn import_sheet(bin: &Path, work: &Path, server_dir: &Path, offices: u32) {
    let mut sheet = String::from("office,parent,type,subnets\n");
    for k in 0..offices {
        let [a, b, c] = office_net(k);
        let parent = if k == 0 {
            String::new()
        } else {
            format!("o{}", (k - 1) / 10)
        };
        sheet.push_str(&format!("o{k},{parent},Default,{a}.{b}.{c}.0/24\n"));
    }
    let path = work.join("topology.csv");
    std::fs::write(&path, sheet).unwrap();
    nodes::import_topology(bin, server_dir, &path);
}

/// Publishes a 1 GiB sparse file under its own name (so each content id
/// differs) and returns its id.
fn publish_sparse(bin: &Path, work: &Path, server_dir: &Path, i: usize) -> ContentId {
    let path: PathBuf = work.join(format!("package-{i}.bin"));
    std::fs::File::create(&path)
        .unwrap()
        .set_len(u64::from(PIECES) << 20)
        .unwrap();
    let id = publish(
        bin,
        server_dir,
        &path,
        &[
            "--origin",
            "http://127.41.1.1:9/none",
            "--name",
            &format!("package-{i}"),
        ],
    );
    std::fs::remove_file(&path).unwrap();
    id.parse().unwrap()
}

/// One connection per office, from the office's .2 address: the server
/// places a client by the address its packets come from.
async fn connect_offices(offices: u32) -> Vec<quinn::Connection> {
    let server: SocketAddr = SERVER.parse().unwrap();
    let mut conns = Vec::new();
    for k in 0..offices {
        let [a, b, c] = office_net(k);
        let from = SocketAddr::new(Ipv4Addr::new(a, b, c, 2).into(), 0);
        let socket = endpoint::bind(from).unwrap();
        let (endpoint, _) =
            endpoint::endpoint(socket, None, None, branchline::tls::Admit::Members).unwrap();
        let conn = endpoint::connect(&endpoint, server, tls::CONTROL_NAME, Duration::from_secs(5))
            .await
            .unwrap();
        conns.push(conn);
    }
    conns
}

/// Registers every fake client from its office's connection.
async fn register_all(conns: &[quinn::Connection], shape: Shape, contents: &[ContentId]) {
    futures_util::stream::iter(0..shape.clients)
        .map(|n| {
            let conn = conns[(n % shape.offices) as usize].clone();
            let request = ServerRequest::Register(fake_client(n, shape.offices, contents));
            async move {
                match call(&conn, &request).await {
                    ServerReply::Registered { .. } => {}
                    other => panic!("client {n}: {other:?}"),
                }
            }
        })
        .buffer_unordered(shape.registering)
        .collect::<Vec<()>>()
        .await;
}

/// Asks `shape.queries` sources questions about `content`, each as a
/// client of the office it is asked from; returns each answer's time.
async fn ask_sources(
    conns: &[quinn::Connection],
    shape: Shape,
    content: ContentId,
) -> Vec<Duration> {
    futures_util::stream::iter(0..shape.queries)
        .map(|q| {
            let n = q.wrapping_mul(7_919) % shape.clients;
            let conn = conns[(n % shape.offices) as usize].clone();
            let query = ServerRequest::Sources(SourcesQuery {
                id: fake_id(n),
                content,
                since: 0,
                want_leases: 0,
                release: Vec::new(),
                stuck: Vec::new(),
                wait_ms: 0,
            });
            async move {
                let asked = Instant::now();
                match call(&conn, &query).await {
                    ServerReply::Sources(_) => asked.elapsed(),
                    other => panic!("sources of client {n}: {other:?}"),
                }
            }
        })
        .buffer_unordered(shape.concurrency)
        .collect()
        .await
}

async fn call(conn: &quinn::Connection, request: &ServerRequest) -> ServerReply {
    let streams = conn.open_bi().await.unwrap();
    exchange(streams, request, MAX_REPLY_FRAME).await.unwrap().0
}

fn fake_id(n: u32) -> NodeId {
    let mut id = [0xb1; 16];
    id[..4].copy_from_slice(&n.to_le_bytes());
    NodeId(id)
}

/// Client `n`, in office `n % offices` at an address of its own there,
/// holding a pseudo-random half of each content.
fn fake_client(n: u32, offices: u32, contents: &[ContentId]) -> Registration {
    let [a, b, c] = office_net(n % offices);
    let host = u8::try_from(10 + n / offices).expect("at most 239 clients per office");
    let addr = Ipv4Addr::new(a, b, c, host);
    let mut seed = u64::from(n) * 0x9e37_79b9 + 1;
    let holdings = contents
        .iter()
        .map(|content| {
            let mut have = PieceMap::new(PIECES);
            for i in 0..PIECES {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if seed & 1 == 1 {
                    have.set(i);
                }
            }
            (*content, have)
        })
        .collect();
    Registration {
        id: fake_id(n),
        name: format!("fake-{n}"),
        addr: SocketAddr::new(addr.into(), 34760),
        background: SocketAddr::new(addr.into(), 34750),
        holdings,
        attributes: Attributes {
            free_bytes: u64::from(n % 500) << 30,
            uptime_secs: u64::from(n % 7) * 86400,
            ..Attributes::default()
        },
    }
}
