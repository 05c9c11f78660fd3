//! A flooding peer gets bounded resources. Against a client holding a
//! package, one address opens 100 QUIC connections (only
//! `limits.connections_per_peer` are admitted), then 1,000 streams on one
//! of them, each pushing up to 256 KiB of junk instead of a request, then
//! asks for pieces far faster than `limits.requests_per_sec` (the excess is
//! refused as busy). The client's resident memory and open file
//! descriptors stay bounded, and it goes on serving an honest peer the
//! package.
//!
//! A plain UDP blast (random datagrams and junk shaped like QUIC Initial
//! packets, 1 GiB by default, `BRANCHLINE_BLAST_BYTES` for more) at the
//! server's and a client's ports is dropped: neither grows, and a download
//! across them during the blast ends right.

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
/// how many were refused as busy, how many were cut off with the
/// connection (closed for too many requests), and how long it took.
async fn request_storm(conn: &quinn::Connection, content: ContentId) -> (u64, u64, u64, Duration) {
    let start = std::time::Instant::now();
    let (mut pieces, mut busy, mut cut) = (0, 0, 0);
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
                // The connection was closed for too many requests.
                None => cut += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    (pieces, busy, cut, start.elapsed())
}

/// What the flood achieved: connections admitted and refused, streams
/// opened, junk bytes the client took before it stopped reading.
async fn flood(
    target: std::net::SocketAddr,
    from: std::net::SocketAddr,
    content: ContentId,
    pid: u32,
    insider: &tls::Identity,
) -> (
    usize,
    usize,
    usize,
    u64,
    (u64, usize),
    (u64, u64, u64, Duration),
) {
    let socket = endpoint::bind(from).unwrap();
    // A bad insider: it joined the cluster like any device.
    let (attacker, _) =
        endpoint::endpoint(socket, None, Some(insider), branchline::tls::Admit::Members).unwrap();
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
    let insider = common::pki::joined_identity(&world, "insider", world.addr(50, 0).ip());
    let (admitted, refused, streams, taken, during, storm) = rt.block_on(flood(
        world.addr(11, 34760),
        world.addr(50, 0),
        id,
        target.child.id(),
        &insider,
    ));
    eprintln!(
        "admitted {admitted}, refused {refused}, streams {streams}, junk taken {taken} bytes; \
         rss {} -> {} KiB, fds {} -> {}",
        before.0, during.0, before.1, during.1
    );
    assert_eq!(admitted, CAP, "only the cap's worth of connections");
    assert_eq!(refused, 100 - CAP);
    assert!(streams >= 900, "streams were opened and dropped: {streams}");
    the_request_storm_was_held_to_the_rate(storm);
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

/// Of a storm of 200 piece requests on one connection, no more were
/// served than the rate allows; the rest were refused as busy, then the
/// connection was cut off.
fn the_request_storm_was_held_to_the_rate(
    (pieces, busy, cut, storm_time): (u64, u64, u64, Duration),
) {
    eprintln!(
        "request storm: {pieces} pieces, {busy} refused as busy, {cut} cut off with the connection in {storm_time:?}"
    );
    assert_eq!(pieces + busy + cut, 200);
    assert!(
        cut > 0,
        "a peer that keeps on over its rate is disconnected"
    );
    // A full bucket (RATE requests), then RATE a second.
    let millis = u64::try_from(storm_time.as_millis()).unwrap();
    let allowed = RATE + millis * RATE / 1000 + 1;
    assert!(
        pieces <= allowed,
        "{pieces} pieces in {storm_time:?}: over the rate"
    );
    assert!(busy > 0, "the excess was refused");
}

/// Sends `total` bytes of junk in 1,200-byte datagrams from `from`, round
/// robin to `targets`: every other one random bytes, the rest shaped like a
/// QUIC version 1 Initial packet (long header, connection ids) with junk
/// where the encrypted payload belongs. Returns the datagrams sent.
fn blast(from: std::net::SocketAddr, targets: &[std::net::SocketAddr], total: u64) -> u64 {
    let socket = std::net::UdpSocket::bind(from).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut datagram = [0u8; 1200];
    let mut sent = 0u64;
    while sent * 1200 < total {
        for chunk in datagram.chunks_mut(8) {
            // xorshift64: fast junk, no crate needed.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        if sent.is_multiple_of(2) {
            // Long header, Initial; version 1; 8-byte DCID and SCID.
            datagram[..6].copy_from_slice(&[0xC3, 0, 0, 0, 1, 8]);
            datagram[14] = 8;
        }
        let target = targets[usize::try_from(sent).unwrap() % targets.len()];
        // A full receive buffer drops datagrams; so does a busy target.
        let _ = socket.send_to(&datagram, target);
        sent += 1;
    }
    sent
}

#[test]
fn a_udp_blast_is_dropped_and_a_download_across_it_ends_right() {
    let world = World::new(31, 16);
    let package = world.path("package.bin");
    let sha = make_package(&package, 32 * 1024 * 1024, 16);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    let holder = world.client(11);
    world.wait_registered(&holder);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    finish_fetch(world.start_fetch(&holder, &content, &world.path("holder.out")));
    let fetcher = world.client(12);
    world.wait_registered(&fetcher);
    let before = [footprint(server.child.id()), footprint(holder.child.id())];

    let total: u64 = std::env::var("BRANCHLINE_BLAST_BYTES")
        .map(|v| v.parse().expect("BRANCHLINE_BLAST_BYTES is a byte count"))
        .unwrap_or(1 << 30);
    let targets = [
        world.server_addr(),
        world.addr(11, 34760),
        world.addr(11, 34750),
        world.addr(11, 34329),
    ];
    let from = world.addr(50, 0);
    let start = std::time::Instant::now();
    let blaster = std::thread::spawn(move || blast(from, &targets, total));
    // The download starts while the blast runs.
    std::thread::sleep(Duration::from_millis(300));
    let out = world.path("fetcher.out");
    finish_fetch(world.start_fetch(&fetcher, &content, &out));
    let fetched_in = start.elapsed();
    let sent = blaster.join().unwrap();
    let during = [footprint(server.child.id()), footprint(holder.child.id())];
    eprintln!(
        "blast: {sent} datagrams ({} MiB) in {:?}; the download ended {fetched_in:?} after it \
         began; server rss {} -> {} KiB, fds {} -> {}; holder rss {} -> {} KiB, fds {} -> {}",
        (sent * 1200) >> 20,
        start.elapsed(),
        before[0].0,
        during[0].0,
        before[0].1,
        during[0].1,
        before[1].0,
        during[1].0,
        before[1].1,
        during[1].1,
    );
    assert_eq!(sha256_file(&out), sha);
    assert_eq!(
        fetcher.status()["counters"]["from_peers"].as_u64(),
        Some(32 * 1024 * 1024),
        "every piece came from the blasted client"
    );
    for ((rss_before, fds_before), (rss_during, fds_during)) in before.into_iter().zip(during) {
        assert!(
            rss_during < rss_before + 32 * 1024,
            "memory stayed bounded: {rss_before} -> {rss_during} KiB"
        );
        assert!(
            fds_during <= fds_before + 8,
            "file descriptors stayed bounded: {fds_before} -> {fds_during}"
        );
    }
    assert!(
        server.status()["registry"]["clients"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    );
}
