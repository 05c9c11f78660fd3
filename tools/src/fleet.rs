//! A fleet of fake clients for the server's benchmarks: a real server
//! process (insecure, so fake clients may register in any id: under the
//! PKI a connection speaks for its certificate's node only, and the
//! server's work does not depend on it), a topology of offices on /24s of
//! their own (127.42.0.0/24, 127.42.1.0/24, ...), sparse contents
//! published, and fake clients registered over QUIC exactly as a client
//! registers, each office's from an address of that office.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use branchline::tls;
use branchline::transport::endpoint;
use branchline::transport::exchange::exchange;
use branchline_actors::server::election::Attributes;
use branchline_actors::wire::{
    MAX_REPLY_FRAME, Registration, ServerReply, ServerRequest, SourcesQuery,
};
use branchline_storage::{ContentId, NodeId, PieceMap};

use crate::nodes::{self, Proc, publish, spawn, status, wait_for};

/// The server's control address.
pub const SERVER: &str = "127.41.1.1:34323";
/// Pieces of every content published (1 MiB each).
pub const PIECES: u32 = 1024;

/// Starts the server in `work` with its data in `server_dir` and `extra`
/// lines of configuration, once it answers. Fake clients send no
/// heartbeats: they are kept for the whole run.
pub fn start_server(bin: &Path, work: &Path, server_dir: &Path, extra: &str) -> Proc {
    let config = work.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"{SERVER}\"\ninsecure = true\n{extra}\n[registry]\nclient_timeout_secs = 3600\n[control]\nrequests_per_sec = 1000000\n",
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

/// Office `k`'s /24: 127.42.0.0/24, 127.42.1.0/24, ... 127.45.255.0/24.
pub fn office_net(k: u32) -> [u8; 3] {
    let [_, _, hi, lo] = k.to_be_bytes();
    [127, 42 + hi, lo]
}

/// Imports `offices` offices: office 0 on top, the others in a tree ten
/// wide.
pub fn import_sheet(bin: &Path, work: &Path, server_dir: &Path, offices: u32) {
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
pub fn publish_sparse(bin: &Path, work: &Path, server_dir: &Path, i: usize) -> ContentId {
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
pub async fn connect_offices(offices: u32) -> Vec<quinn::Connection> {
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

/// One request and its answer on `conn`.
pub async fn call(conn: &quinn::Connection, request: &ServerRequest) -> ServerReply {
    let streams = conn.open_bi().await.unwrap();
    exchange(streams, request, MAX_REPLY_FRAME).await.unwrap().0
}

/// Fake client `n`'s question of who holds `content`'s pieces, as a
/// downloading client asks it.
pub fn sources_question(n: u32, content: ContentId) -> ServerRequest {
    ServerRequest::Sources(SourcesQuery {
        id: fake_id(n),
        content,
        since: 0,
        want_leases: 0,
        release: Vec::new(),
        stuck: Vec::new(),
        wait_ms: 0,
    })
}

/// Fake client `n`'s id.
pub fn fake_id(n: u32) -> NodeId {
    let mut id = [0xb1; 16];
    id[..4].copy_from_slice(&n.to_le_bytes());
    NodeId(id)
}

/// A have-map of `PIECES` pieces, each set with chance one half, from
/// client `n`'s own seed.
pub fn half_of(n: u32) -> PieceMap {
    let mut seed = u64::from(n) * 0x9e37_79b9 + 1;
    let mut have = PieceMap::new(PIECES);
    for i in 0..PIECES {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if seed & 1 == 1 {
            have.set(i);
        }
    }
    have
}

/// Client `n`, in office `n % offices` at an address of its own there,
/// holding what `holdings` gives it.
pub fn fake_client(n: u32, offices: u32, holdings: Vec<(ContentId, PieceMap)>) -> Registration {
    let [a, b, c] = office_net(n % offices);
    let host = u8::try_from(10 + n / offices).expect("at most 239 clients per office");
    let addr = Ipv4Addr::new(a, b, c, host);
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
