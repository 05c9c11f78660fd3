//! A topology import at the sheet's caps does not stall the server (C2):
//! while a sheet of 20,000 offices and 100,000 subnets in all is imported,
//! 50 clients (each joined with a token, each on its own address, each with
//! its own QUIC connection) keep heartbeating and asking for sources. The
//! import is parsed, checked and stored off the registry's thread, so the
//! server's answer time p99 stays under 200 ms throughout, and the import
//! itself takes at most 2 s. A second import sent while the first runs is
//! refused with a clear line, and the first one's topology is the one kept.

mod common;

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use branchline::tls::{self, Identity};
use branchline_actors::wire::{ServerReply, ServerRequest};
use branchline_storage::ContentId;
use common::{World, make_package, path_arg};

const CLIENTS: u8 = 50;
const OFFICES: u32 = 20_000;
const SUBNETS_PER_OFFICE: u32 = 5;

/// The sheet: the clients' own /24 is the top office, then 19,999 offices
/// of 5 subnets each in a tree ten wide (99,996 subnets in all).
fn sheet(top: &str) -> String {
    let mut sheet = format!("office,parent,type,subnets\no0,,Default,{top}\n");
    for i in 1..OFFICES {
        let subnets: Vec<String> = (0..SUBNETS_PER_OFFICE)
            .map(|k| {
                let n = i * SUBNETS_PER_OFFICE + k;
                format!("{}.{}.{}.0/24", 10 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
            })
            .collect();
        sheet.push_str(&format!("o{i},o{},Default,{}\n", i / 10, subnets.join(";")));
    }
    sheet
}

/// One client's loop: heartbeat, then a sources question, timing each
/// answer, until `stop`.
async fn ask_until(
    identity: Identity,
    world_addr: std::net::SocketAddr,
    server: std::net::SocketAddr,
    content: ContentId,
    stop: Arc<AtomicBool>,
) -> Vec<(Instant, Duration)> {
    let id = identity.node_id();
    let conn = common::pki::connect_as(world_addr, server, tls::CONTROL_NAME, &identity).await;
    let call = |request: ServerRequest| {
        let conn = conn.clone();
        async move { common::pki::ask_on::<_, ServerReply>(&conn, &request).await }
    };
    let registration =
        common::pki::registration(id, format!("asker-{}", world_addr.ip()), world_addr.ip());
    match call(ServerRequest::Register(registration)).await {
        ServerReply::Registered { .. } => {}
        other => panic!("registration: {other:?}"),
    }
    let mut times = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for request in common::pki::heartbeat_and_sources(id, content) {
            let asked = Instant::now();
            match call(request).await {
                ServerReply::Error(e) => panic!("refused: {e}"),
                _ => times.push((asked, asked.elapsed())),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times
}

fn import(world: &World, sheet: &std::path::Path) -> Command {
    let mut command = Command::new(common::bin());
    command.args([
        "topology",
        "import",
        "--data-dir",
        &path_arg(&world.path("server")),
        &path_arg(sheet),
    ]);
    command
}

#[test]
fn fifty_clients_are_answered_quickly_while_a_sheet_at_the_caps_is_imported() {
    let world = World::new(31, 25);
    let server = world.server();
    let package = world.path("package.bin");
    make_package(&package, 64 * 1024, 25);
    let content: ContentId = world.publish(&package, &[]).parse().unwrap();
    let big = world.path("big.csv");
    std::fs::write(&big, sheet(&format!("{}/24", world.addr(0, 0).ip()))).unwrap();
    let second = world.path("second.csv");
    std::fs::write(
        &second,
        "office,parent,type,subnets\nother,,Default,10.0.0.0/8\n",
    )
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let askers = start_askers(&world, content, &stop);
    // Every asker registered and answered before the import starts.
    common::wait_until("50 askers registered", Duration::from_secs(30), || {
        server.status()["registry"]["clients"]
            .as_array()
            .is_some_and(|c| c.len() == usize::from(CLIENTS))
    });
    std::thread::sleep(Duration::from_secs(1));

    let started = Instant::now();
    let first = import(&world, &big)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The second import is sent once the server is working on the first
    // (a fixed pause let the small second sheet arrive first on a loaded
    // machine).
    common::wait_until("the first import started", Duration::from_secs(20), || {
        server.log().contains("topology import started")
    });
    let refused = import(&world, &second).output().unwrap();
    let first = first.wait_with_output().unwrap();
    let took = started.elapsed();
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let times: Vec<_> = askers.join().unwrap().into_iter().flatten().collect();

    only_the_first_import_was_taken(&first, &refused);
    let mut during: Vec<Duration> = times
        .iter()
        .filter(|(at, _)| *at >= started && *at <= ended)
        .map(|(_, took)| *took)
        .collect();
    during.sort();
    assert!(
        during.len() >= 100,
        "only {} answers during the import",
        during.len()
    );
    let p99 = during[during.len() * 99 / 100];
    let worst = *during.last().unwrap();
    eprintln!(
        "import of {OFFICES} offices and {} subnets took {took:?}; {} answers to {CLIENTS} clients meanwhile: p99 {p99:?}, worst {worst:?}",
        (OFFICES - 1) * SUBNETS_PER_OFFICE + 1,
        during.len()
    );
    assert!(took <= Duration::from_secs(2), "the import took {took:?}");
    assert!(p99 <= Duration::from_millis(200), "p99 {p99:?}");
    let shown = server.status();
    assert_eq!(
        shown["registry"]["clients"].as_array().unwrap().len(),
        usize::from(CLIENTS),
        "every asker is still registered"
    );
    the_first_import_is_kept(&world);
}

/// The askers, each joined and on its own address, asking on a thread
/// of their own until `stop`; the thread returns every answer's time.
fn start_askers(
    world: &World,
    content: ContentId,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<(Instant, Duration)>>> {
    let server_addr = world.server_addr();
    let askers = (0..CLIENTS)
        .map(|i| {
            let addr = world.addr(100 + i, 0);
            let name = format!("asker-{i}");
            let identity = common::pki::joined_identity(world, &name, addr.ip());
            ask_until(identity, addr, server_addr, content, stop.clone())
        })
        .collect();
    common::pki::in_background(askers)
}

/// The first import succeeded with every office; the second was refused
/// while it ran.
fn only_the_first_import_was_taken(first: &Output, refused: &Output) {
    let first_err = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{first_err}");
    assert!(first_err.contains("20000 offices"), "{first_err}");
    let refused_err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the second import was taken");
    assert!(
        refused_err.contains("another topology import is in progress"),
        "{refused_err}"
    );
}

/// The exported topology is the first import's, not the refused one's.
fn the_first_import_is_kept(world: &World) {
    let exported = Command::new(common::bin())
        .args([
            "topology",
            "export",
            "--data-dir",
            &path_arg(&world.path("server")),
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&exported.stdout);
    assert!(csv.contains("\no19999,o1999,"), "the first import is kept");
    assert!(!csv.contains("\nother,"), "the refused one is not");
}
