//! Peak RSS of a real server process with many registered clients, each
//! holding part of several contents, against the same server idle (the
//! baseline in the same run). The fake clients are real QUIC registrations
//! sent over the control protocol, as a client sends them.
//!
//! `--clients N` (default 10000), `--contents C` (default 4, 1 GiB of
//! 1 MiB pieces each), `--concurrency K` requests in flight (default 32).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
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
    peak_rss_mb, publish, release_binary, rss_mb, spawn, status, wait_for,
};
use branchline_tools::{arg, check_args, disk_bytes, print_command, secs};
use futures_util::StreamExt as _;

const SUBNET: &str = "127.41.1";
const PIECES: u32 = 1024;

fn main() {
    check_args(&["--clients", "--contents", "--concurrency"]);
    print_command();
    let clients: u32 = arg("--clients", 10_000);
    let contents: usize = arg("--contents", 4);
    let concurrency: usize = arg("--concurrency", 32);
    let bin = release_binary();
    let work = tempfile::Builder::new()
        .prefix("bench-registry-")
        .tempdir()
        .unwrap();
    let server_dir = work.path().join("server");
    // Fake clients never send heartbeats: keep them for the whole run.
    // They register in any id they like, which only an insecure server
    // takes (under the PKI a connection speaks for its certificate's node
    // only); the registry's memory does not depend on it.
    let config = work.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"{SUBNET}.1:34323\"\ninsecure = true\n[registry]\nclient_timeout_secs = 3600\n",
            server_dir.display()
        ),
    )
    .unwrap();
    let server = spawn(
        &bin,
        &[
            "server".into(),
            "--config".into(),
            config.display().to_string(),
        ],
        &work.path().join("server.log"),
    );
    wait_for("server answers", || status(&bin, &server_dir).is_some());
    let ids: Vec<ContentId> = (0..contents)
        .map(|i| publish_sparse(&bin, work.path(), &server_dir, i))
        .collect();
    let idle_mb = rss_mb(server.0.id());

    let start = Instant::now();
    let server_addr: SocketAddr = format!("{SUBNET}.1:34323").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answered_peers = runtime.block_on(register_all(server_addr, clients, &ids, concurrency));
    let register_secs = secs(start);
    // Let the batched persist reach sled before reading the disk use.
    std::thread::sleep(Duration::from_secs(3));
    let peak_mb = peak_rss_mb(server.0.id());
    let now_mb = rss_mb(server.0.id());
    let registered = status(&bin, &server_dir).unwrap()["registry"]["clients"]
        .as_array()
        .map_or(0, Vec::len);
    let disk_mb = disk_bytes(&server_dir) as f64 / 1e6;

    println!("{clients} fake clients, each holding half of {contents} contents of {PIECES} pieces");
    println!(
        "registered {registered} in {register_secs:.1} s ({:.0}/s); a sources answer listed {answered_peers} peers",
        f64::from(clients) / register_secs
    );
    println!();
    println!("| server | RSS MB | peak RSS MB |");
    println!("|---|---|---|");
    println!("| idle, {contents} contents published | {idle_mb:.1} | |");
    println!("| {clients} clients registered | {now_mb:.1} | {peak_mb:.1} |");
    println!(
        "per client: {:.0} bytes of RSS above idle; metadata on disk {disk_mb:.1} MB",
        (peak_mb - idle_mb) * 1e6 / f64::from(clients)
    );
    println!(
        "ratio peak/idle: {:.2}x; goal for 100k clients: well under 512 MB",
        peak_mb / idle_mb
    );
}

/// Publishes a 1 GiB sparse file under its own name (so each content id
/// differs) and returns its id.
fn publish_sparse(bin: &Path, work: &Path, server_dir: &Path, i: usize) -> ContentId {
    let path = work.join(format!("package-{i}.bin"));
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

/// Registers `clients` fake clients over one QUIC connection, then asks
/// for the sources of the first content once; returns how many peers that
/// answer listed.
async fn register_all(
    server: SocketAddr,
    clients: u32,
    contents: &[ContentId],
    concurrency: usize,
) -> usize {
    let socket = endpoint::bind(format!("{SUBNET}.2:0").parse().unwrap()).unwrap();
    let (endpoint, _) =
        endpoint::endpoint(socket, None, None, branchline::tls::Admit::Members).unwrap();
    let conn = endpoint::connect(&endpoint, server, tls::CONTROL_NAME, Duration::from_secs(5))
        .await
        .unwrap();
    let registrations = futures_util::stream::iter(0..clients).map(|n| {
        let conn = conn.clone();
        let request = ServerRequest::Register(fake_client(n, contents));
        async move {
            match call(&conn, &request).await {
                ServerReply::Registered { .. } => {}
                other => panic!("client {n}: {other:?}"),
            }
        }
    });
    registrations
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    let query = ServerRequest::Sources(SourcesQuery {
        id: fake_id(0),
        content: contents[0],
        since: 0,
        want_leases: 0,
        release: Vec::new(),
        stuck: Vec::new(),
        wait_ms: 0,
    });
    match call(&conn, &query).await {
        ServerReply::Sources(answer) => answer.peers.len(),
        other => panic!("sources: {other:?}"),
    }
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

/// Client `n` on its own address, holding a pseudo-random half of each
/// content.
fn fake_client(n: u32, contents: &[ContentId]) -> Registration {
    let octets = (n + 10).to_be_bytes();
    let addr = Ipv4Addr::new(127, 42, octets[2], octets[3]);
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
