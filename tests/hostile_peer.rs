//! A flooding peer gets bounded resources. Against a client holding a
//! package, one address opens 100 QUIC connections (only
//! `limits.connections_per_peer` are admitted), then 1,000 streams on one
//! of them, each pushing up to 256 KiB of junk instead of a request, then
//! asks for pieces far faster than `limits.requests_per_sec` (the excess is
//! refused as busy). The client's resident memory and open file
//! descriptors stay bounded, and it goes on serving an honest peer the
//! package.

mod common;

use std::time::Duration;

use branchline::tls;
use branchline::transport::endpoint;
use branchline_actors::wire::{
    MAX_REPLY_FRAME, PeerReply, PeerRequest, Refusal, read_frame, write_frame,
};
use branchline_storage::ContentId;
use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, make_package, path_arg, sha256_file};

const SIZE: usize = 8 * 1024 * 1024;
const CAP: usize = 4;
const RATE: u64 = 20;

/// Resident memory in KiB and open file descriptors of a process.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// Asks for 200 pieces as fast as it can, 20 at a time: how many came,
/// how many were refused as busy, and how long it took.
async fn request_storm(conn: &quinn::Connection, content: ContentId) -> (u64, u64, Duration) {
    let start = std::time::Instant::now();
    let (mut pieces, mut busy) = (0, 0);
    for round in 0..10u32 {
        let asks = (0..20u32).map(|i| {
            let conn = conn.clone();
            async move {
                let (mut send, mut recv) = conn.open_bi().await.ok()?;
                let index = (round * 20 + i) % 8;
                write_frame(&mut send, &PeerRequest::GetPiece { content, index })
                    .await
                    .ok()?;
                send.finish().ok()?;
                read_frame::<PeerReply>(&mut recv, MAX_REPLY_FRAME)
                    .await
                    .ok()?
            }
        });
        for reply in futures_util::future::join_all(asks).await {
            match reply {
                Some(PeerReply::Piece { .. }) => pieces += 1,
                Some(PeerReply::Refused(Refusal::Busy)) => busy += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    (pieces, busy, start.elapsed())
}

/// What the flood achieved: connections admitted and refused, streams
/// opened, junk bytes the client took before it stopped reading.
async fn flood(
    target: std::net::SocketAddr,
    from: std::net::SocketAddr,
    content: ContentId,
    pid: u32,
) -> (usize, usize, usize, u64, (u64, usize), (u64, u64, Duration)) {
    let socket = endpoint::bind(from).unwrap();
    let (attacker, _) = endpoint::endpoint(socket, None, None).unwrap();
    let (mut admitted, mut refused) = (Vec::new(), 0);
    for _ in 0..100 {
        // One endpoint per connection would be more addresses' worth of
        // ports, but the cap is per IP address.
        match endpoint::connect(&attacker, target, tls::SERVER_NAME, Duration::from_secs(3)).await {
            Ok(conn) => admitted.push(conn),
            Err(_) => refused += 1,
        }
    }
    let conn = admitted[0].clone();
    let junk = vec![0xAB_u8; 256 * 1024];
    let (mut streams, mut taken, mut stuck) = (0, 0u64, 0);
    for _ in 0..1000 {
        let Ok(Ok((mut send, _recv))) =
            tokio::time::timeout(Duration::from_secs(2), conn.open_bi()).await
        else {
            stuck += 1;
            if stuck == 5 {
                break;
            }
            continue;
        };
        streams += 1;
        for chunk in junk.chunks(16 * 1024) {
            match tokio::time::timeout(Duration::from_millis(500), send.write_all(chunk)).await {
                Ok(Ok(())) => taken += chunk.len() as u64,
                _ => break,
            }
        }
    }
    let during = footprint(pid);
    let storm = request_storm(&admitted[1], content).await;
    (admitted.len(), refused, streams, taken, during, storm)
}

#[test]
fn a_flooding_peer_gets_bounded_resources_and_the_client_keeps_serving() {
    let world = World::new(31, 11);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 11);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    let config = world.path("target.toml");
    std::fs::write(
        &config,
        format!("[limits]\nconnections_per_peer = {CAP}\nrequests_per_sec = {RATE}\n"),
    )
    .unwrap();
    let target = world.client_with(11, world.server_addr(), &["--config", &path_arg(&config)]);
    world.wait_registered(&target);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let out = world.path("target.out");
    finish_fetch(world.start_fetch(&target, &content, &out));
    let before = footprint(target.child.id());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id: ContentId = content.parse().unwrap();
    let (admitted, refused, streams, taken, during, (pieces, busy, storm_time)) =
        rt.block_on(flood(
            world.addr(11, 34760),
            world.addr(50, 0),
            id,
            target.child.id(),
        ));
    eprintln!(
        "admitted {admitted}, refused {refused}, streams {streams}, junk taken {taken} bytes; \
         rss {} -> {} KiB, fds {} -> {}",
        before.0, during.0, before.1, during.1
    );
    assert_eq!(admitted, CAP, "only the cap's worth of connections");
    assert_eq!(refused, 100 - CAP);
    assert!(streams >= 900, "streams were opened and dropped: {streams}");
    eprintln!("request storm: {pieces} pieces, {busy} refused as busy in {storm_time:?}");
    assert_eq!(pieces + busy, 200);
    // A full bucket (RATE requests), then RATE a second.
    let millis = u64::try_from(storm_time.as_millis()).unwrap();
    let allowed = RATE + millis * RATE / 1000 + 1;
    assert!(
        pieces <= allowed,
        "{pieces} pieces in {storm_time:?}: over the rate"
    );
    assert!(busy > 0, "the excess was refused");
    assert!(
        during.0 < before.0 + 64 * 1024,
        "memory stayed bounded: {} -> {} KiB",
        before.0,
        during.0
    );
    assert!(
        during.1 <= before.1 + 8,
        "file descriptors stayed bounded: {} -> {}",
        before.1,
        during.1
    );
    drop(rt);

    // The client still serves an honest peer.
    let honest = world.client(12);
    world.wait_registered(&honest);
    let out = world.path("honest.out");
    finish_fetch(world.start_fetch(&honest, &content, &out));
    assert_eq!(sha256_file(&out), sha);
    assert_eq!(
        honest.status()["counters"]["from_peers"].as_u64(),
        Some(SIZE as u64),
        "every piece came from the flooded client"
    );
}
