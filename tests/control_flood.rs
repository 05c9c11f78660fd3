//! A flood of fake registrations from one address at the server's control
//! endpoint of a default install: a cluster member (it joined with a
//! token) sends a million registrations in other nodes' names, as fast as
//! it can, over as many connections as the server lets it keep. The server
//! refuses every one (a client speaks only for itself), cuts off
//! connections that keep on over their request rate and refuses
//! connections over the per-address cap; its resident memory stays under a
//! stated bound, and an honest client that starts in the middle of it
//! registers within 5 seconds. `BRANCHLINE_FLOOD_REQUESTS` sets how many.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use branchline::tls::Identity;
use branchline::transport::endpoint;
use branchline_actors::server::election::Attributes;
use branchline_actors::wire::{
    MAX_REPLY_FRAME, Registration, ServerReply, ServerRequest, read_frame, write_frame,
};
use branchline_storage::NodeId;
use common::World;

/// The server's resident memory may not pass this during the flood.
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends fake registrations over one connection until `left` runs out or
/// the server closes it; counts what came back.
async fn pump(conn: quinn::Connection, left: Arc<AtomicU64>, refused: Arc<AtomicU64>, seed: u64) {
    let mut n = seed;
    let mut streams = Vec::new();
    loop {
        if left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
            .is_err()
        {
            break;
        }
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_le_bytes());
        let request = ServerRequest::Register(Registration {
            id: NodeId(id),
            name: format!("fake-{n:x}"),
            addr: ([127, 31, 37, 99], 34760).into(),
            background: ([127, 31, 37, 99], 34750).into(),
            holdings: vec![],
            attributes: Attributes::default(),
        });
        let Ok((mut send, mut recv)) = conn.open_bi().await else {
            return;
        };
        let refused = refused.clone();
        streams.push(tokio::spawn(async move {
            if write_frame(&mut send, &request).await.is_err() {
                return;
            }
            let _ = send.finish();
            if let Ok(Some(ServerReply::Error(_))) =
                read_frame::<ServerReply>(&mut recv, MAX_REPLY_FRAME).await
            {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }));
        if streams.len() >= 48 {
            for s in streams.drain(..) {
                let _ = s.await;
            }
        }
    }
    for s in streams {
        let _ = s.await;
    }
}

/// Sends fake registrations from `from` to `server` until `left` is
/// none, over up to 8 connections at a time: each is cut off when it keeps
/// on over its rate, and another takes its place. Returns how long it
/// took.
async fn flood(
    attacker: Identity,
    (from, server): (SocketAddr, SocketAddr),
    left: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
) -> Duration {
    let socket = endpoint::bind(from).unwrap();
    let (ep, _) = endpoint::endpoint(
        socket,
        None,
        Some(&attacker),
        branchline::tls::Admit::Members,
    )
    .unwrap();
    let started = Instant::now();
    let mut seed = 1u64;
    while left.load(Ordering::Relaxed) > 0 {
        let mut pumps = Vec::new();
        for _ in 0..8 {
            if let Ok(conn) = endpoint::connect(
                &ep,
                server,
                branchline::tls::CONTROL_NAME,
                Duration::from_secs(5),
            )
            .await
            {
                connections.fetch_add(1, Ordering::Relaxed);
                seed += 1;
                pumps.push(tokio::spawn(pump(
                    conn,
                    left.clone(),
                    refused.clone(),
                    seed,
                )));
            }
        }
        for p in pumps {
            let _ = p.await;
        }
    }
    started.elapsed()
}

#[test]
fn a_million_fake_registrations_leave_memory_bounded_and_an_honest_client_registers() {
    let total: u64 = std::env::var("BRANCHLINE_FLOOD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let world = World::new(31, 37);
    let server = world.server();
    let pid = server.child.id();
    let idle = rss_kib(pid);
    let attacker = common::pki::joined_identity(&world, "attacker", world.addr(99, 0).ip());
    let left = Arc::new(AtomicU64::new(total));
    let refused = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(idle));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let flood = common::pki::in_background(vec![flood(
        attacker,
        (world.addr(99, 0), world.server_addr()),
        left.clone(),
        refused.clone(),
        connections.clone(),
    )]);
    // An honest client starts in the middle of the flood.
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let honest = world.client(11);
    world.wait_registered(&honest);
    let took = started.elapsed();
    let flood_time = flood.join().unwrap()[0];
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "{total} fake registrations in {flood_time:?} over {} connections: {} refused by name, the rest cut off; server rss {idle} KiB idle, {peak} KiB at peak; the honest client registered in {took:?}",
        connections.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert!(
        took <= Duration::from_secs(5),
        "the honest client took {took:?}"
    );
    assert!(peak <= RSS_BOUND_KIB, "server rss {peak} KiB");
    let clients = server.status()["registry"]["clients"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(clients, 1, "only the honest client registered");
    assert!(
        server
            .log()
            .contains("refused a request made for another node")
            || refused.load(Ordering::Relaxed) > 0
    );
}
