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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use branchline_actors::wire::{ServerReply, ServerRequest};
use branchline_storage::ContentId;
use branchline_tools::fleet::{
    PIECES, call, connect_offices, fake_client, half_of, import_sheet, publish_sparse,
    sources_question, start_server,
};
use branchline_tools::nodes::{
    busiest_thread_cores, cpu_secs, peak_rss_mb, release_binary, rss_mb, status, thread_cpu_secs,
};
use branchline_tools::{print_command, secs};
use clap::Parser;
use futures_util::StreamExt as _;

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
    let server = start_server(bin, work.path(), &server_dir, "");
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

/// The answer time at `per_mille` of the sorted `times`, in ms.
fn per_mille_ms(times: &[Duration], per_mille: usize) -> f64 {
    let i = (times.len() * per_mille / 1000).min(times.len() - 1);
    times[i].as_secs_f64() * 1e3
}

/// Registers every fake client from its office's connection.
async fn register_all(conns: &[quinn::Connection], shape: Shape, contents: &[ContentId]) {
    futures_util::stream::iter(0..shape.clients)
        .map(|n| {
            let conn = conns[(n % shape.offices) as usize].clone();
            let holdings = contents
                .iter()
                .zip(0u32..)
                .map(|(c, i)| (*c, half_of(n.wrapping_mul(64) + i)))
                .collect();
            let request = ServerRequest::Register(fake_client(n, shape.offices, holdings));
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
            let query = sources_question(n, content);
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
