//! The server going away, in simulated time (C2; the multi-process
//! counterparts in `server_stopped.rs` prove the real UDP broadcast): the
//! real client actors ask their subnet (the harness's discovery reaches the
//! nodes of the asker's /24 and answers from their real stores by the real
//! office-type rules) and fall back to the origin by themselves.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use branchline::sim::{Link, SimWorld};
use common::sim::{MIB, PIECE, election, ip, package, timing};

const SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,10.1.0.0/24\n\
    hq-wifi,hq,WiFi,10.2.0.0/24\n";

const LONG: Duration = Duration::from_secs(600);

/// A world of [`SHEET`] (losses drawn from `seed`) with two clients in
/// `hq`: the holder-to-be (ranked first) and a newcomer.
async fn holder_and_newcomer(seed: u64) -> (SimWorld, usize, usize) {
    let mut world = SimWorld::new(SHEET, &HashMap::new(), Link::wan(100.0, 20), timing(), seed)
        .await
        .unwrap();
    let holder = world
        .client("holder", ip("10.1.0.11"), election(900))
        .unwrap();
    let newcomer = world
        .client("newcomer", ip("10.1.0.12"), election(100))
        .unwrap();
    (world, holder, newcomer)
}

/// With the server gone, a client that never saw the content takes its
/// manifest and every piece from a holder on its subnet; a WiFi client,
/// whose office type never broadcasts, finds nobody and says so.
#[test]
fn an_office_shares_by_discovery_while_the_server_is_down() {
    let size = 8 * MIB + 5;
    let (newcomer, origin_before, origin_after, wifi, wifi_error) = SimWorld::run(|| async {
        let (mut world, holder, newcomer) = holder_and_newcomer(5).await;
        let wifi = world
            .client("wifi", ip("10.2.0.11"), election(100))
            .unwrap();
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 5), PIECE)
            .await
            .unwrap();
        world.fetch(holder, content, LONG).await.unwrap();
        let origin_before = world.net.origin_bytes();

        world.set_server_down(true);
        world.fetch(newcomer, content, LONG).await.unwrap();
        let wifi_error = world.fetch(wifi, content, LONG).await.unwrap_err();
        let counters = |i: usize| world.clients()[i].counters.snapshot();
        (
            counters(newcomer),
            origin_before,
            world.net.origin_bytes(),
            counters(wifi),
            wifi_error.to_string(),
        )
    });
    assert_eq!(newcomer.from_peers, size as u64, "{newcomer:?}");
    assert!(newcomer.broadcasts_sent >= 1, "{newcomer:?}");
    assert_eq!(origin_after, origin_before, "nothing more from the origin");
    assert_eq!(wifi.broadcasts_sent, 0, "a WiFi client never broadcasts");
    assert!(
        wifi_error.contains("no peer in the subnet gave the manifest"),
        "{wifi_error}"
    );
}

/// A download under way when the server dies, with nobody else holding
/// the content, finishes from the origin: with no server to grant leases,
/// every piece no peer holds may go to the origin.
#[test]
fn a_download_falls_back_to_the_origin_when_the_server_dies() {
    let size = 32 * MIB;
    let (counters, at_cut) = SimWorld::run(|| async {
        // A slow origin: the server dies with most pieces still to come.
        let mut world = SimWorld::new(SHEET, &HashMap::new(), Link::wan(8.0, 20), timing(), 6)
            .await
            .unwrap();
        let client = world
            .client("alone", ip("10.1.0.11"), election(900))
            .unwrap();
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 6), PIECE)
            .await
            .unwrap();
        let cut = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            world.set_server_down(true);
            world.clients()[client].counters.snapshot().from_origin
        };
        let (done, at_cut) = tokio::join!(world.fetch(client, content, LONG), cut);
        done.unwrap();
        (world.clients()[client].counters.snapshot(), at_cut)
    });
    assert!(
        at_cut > 0 && at_cut < size as u64 / 2,
        "most pieces were still to come when the server died: {at_cut}"
    );
    assert_eq!(counters.from_origin, size as u64, "{counters:?}");
}

/// A client that took the manifest from a peer while the server was down
/// knows no origin. Once the server is back it learns them from it: here
/// the only holder leaves for good part of the way, and the newcomer,
/// alone in its office, takes the rest from the origin instead of waiting
/// for peers forever.
#[test]
fn a_manifest_taken_from_a_peer_learns_its_origins_when_the_server_returns() {
    let size = 16 * MIB;
    let (counters, without_origin) = SimWorld::run(|| async {
        let (world, holder, newcomer) = holder_and_newcomer(7).await;
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 7), PIECE)
            .await
            .unwrap();
        world.fetch(holder, content, LONG).await.unwrap();

        world.set_server_down(true);
        let story = async {
            // The holder leaves once the newcomer took a few pieces.
            let got = || world.clients()[newcomer].counters.snapshot().from_peers;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while got() == 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the newcomer took nothing from the holder"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            world.net.set_down(world.clients()[holder].addr, true);
            // Without the server, the newcomer has nowhere to go.
            tokio::time::sleep(Duration::from_secs(60)).await;
            let without_origin = world.clients()[newcomer].counters.snapshot();
            world.set_server_down(false);
            without_origin
        };
        let (done, without_origin) = tokio::join!(world.fetch(newcomer, content, LONG), story);
        done.unwrap();
        (
            world.clients()[newcomer].counters.snapshot(),
            without_origin,
        )
    });
    let from_holder = counters.from_peers;
    assert!(
        from_holder > 0 && from_holder < size as u64,
        "part from the holder: {counters:?}"
    );
    assert_eq!(
        without_origin.from_origin, 0,
        "a peer's manifest names no origin: {without_origin:?}"
    );
    assert_eq!(
        counters.from_origin,
        size as u64 - from_holder,
        "the rest from the origin once the server named it: {counters:?}"
    );
}
