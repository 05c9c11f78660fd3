//! With the server stopped after publish, clients of one office that hold
//! the content still share it: a client that never saw the content finds a
//! holder by UDP broadcast on its subnet, takes the manifest from it
//! (checked against the content id) and every piece. A WiFi client, whose
//! office type never broadcasts, sends no broadcast and so finds nobody.
//! A download under way when the server dies finishes from the origin.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, have_pieces, make_package, sha256_file, wait_until};

const SIZE: usize = 8 * 1024 * 1024 + 5;

const SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,127.35.1.0/24\n\
    hq-wifi,hq,WiFi,127.35.2.0/24\n";

#[test]
fn an_office_shares_by_broadcast_while_the_server_is_down() {
    let world = World::new(35, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 35);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let mut server = world.server();
    world.import_topology(SHEET);
    let holder = world.client_at(
        "holder",
        "127.35.1.11:34760".parse().unwrap(),
        world.server_addr(),
        &[],
    );
    let newcomer = world.client_at(
        "newcomer",
        "127.35.1.12:34760".parse().unwrap(),
        world.server_addr(),
        &[],
    );
    let wifi = world.client_at(
        "wifi",
        "127.35.2.11:34760".parse().unwrap(),
        world.server_addr(),
        &[],
    );
    for c in [&holder, &newcomer, &wifi] {
        world.wait_registered(c);
    }
    wait_until(
        "the WiFi client knows its office type",
        Duration::from_secs(15),
        || wifi.status()["office"]["kind"] == "Wifi",
    );
    let content = world.publish(&package, &[origin.url("package.bin")]);
    finish_fetch(world.start_fetch(&holder, &content, &world.path("holder.out")));
    let origin_bytes = origin.bytes();

    server.kill();
    let out = world.path("newcomer.out");
    finish_fetch(world.start_fetch(&newcomer, &content, &out));
    assert_eq!(sha256_file(&out), sha);
    let counters = &newcomer.status()["counters"];
    assert_eq!(
        counters["from_peers"].as_u64(),
        Some(SIZE as u64),
        "{counters}"
    );
    assert!(
        counters["broadcasts_sent"].as_u64().unwrap() >= 1,
        "{counters}"
    );
    assert_eq!(origin.bytes(), origin_bytes, "nothing more from the origin");
    assert!(
        newcomer
            .log()
            .contains("asking the subnet for the manifest")
    );

    let refused = world.start_fetch(&wifi, &content, &world.path("wifi.out"));
    let output = refused.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "the WiFi client found the content without asking"
    );
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("no peer in the subnet gave the manifest"),
        "{error}"
    );
    assert_eq!(
        wifi.status()["counters"]["broadcasts_sent"].as_u64(),
        Some(0),
        "a WiFi client never broadcasts"
    );
}

/// A download that started while the server was up, with nobody else
/// holding the content, finishes from the origin after the server dies:
/// with no server to grant leases, every piece no peer holds may go to
/// the origin.
#[test]
fn a_download_falls_back_to_the_origin_when_the_server_dies() {
    const BIG: usize = 32 * 1024 * 1024;
    let world = World::new(35, 3);
    let package = world.path("package.bin");
    let sha = make_package(&package, BIG, 352);
    // A slow origin, so the server dies with most pieces still to come.
    let origin = TestOrigin::start(
        world.addr(2, 0),
        package.clone(),
        OriginOptions {
            delay: Duration::from_millis(300),
            ..OriginOptions::default()
        },
    );
    let mut server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let out = world.path("client.out");
    let mut fetch = world.start_fetch(&client, &content, &out);
    wait_until("the first piece arrived", Duration::from_secs(30), || {
        client.status()["counters"]["pieces_stored"].as_u64() >= Some(1)
    });
    server.kill();
    let had = client.status()["counters"]["pieces_stored"]
        .as_u64()
        .unwrap();
    assert!(had < 32, "pieces were still to come: {had}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = fetch.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the download is stuck without the server ({} pieces)",
            client.status()["counters"]["pieces_stored"]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(sha256_file(&out), sha);
    let counters = &client.status()["counters"];
    assert_eq!(
        counters["from_origin"].as_u64(),
        Some(BIG as u64),
        "{counters}"
    );
}

/// A client that took the manifest from a peer while the server was down
/// knows no origin. Once the server is back it learns them from it: here
/// the only holder, which had a few pieces, leaves for good, and the
/// newcomer, alone in its office, takes the rest from the origin (before
/// this was fixed it waited for peers forever).
#[test]
fn a_manifest_taken_from_a_peer_learns_its_origins_when_the_server_returns() {
    const BIG: usize = 16 * 1024 * 1024;
    const PIECE: u64 = 1024 * 1024;
    let world = World::new(35, 5);
    let package = world.path("package.bin");
    let sha = make_package(&package, BIG, 355);
    let origin = TestOrigin::start(
        world.addr(2, 0),
        package.clone(),
        // The origin answers the first two requests only until the test
        // lets it go on: the holder holds exactly what it had when it
        // stopped, even though a restarted client resumes its download.
        OriginOptions {
            hold_after: Some(2),
            ..OriginOptions::default()
        },
    );
    let mut server = world.server();
    let mut holder = world.client(11);
    let newcomer = world.client(12);
    world.wait_registered(&holder);
    world.wait_registered(&newcomer);
    let content = world.publish(&package, &[origin.url("package.bin")]);

    // The holder stops after a few pieces, then starts again: it holds
    // part of the content, and its resumed download waits on the origin.
    let mut partial = world.start_fetch(&holder, &content, &world.path("holder.out"));
    wait_until("the holder stored a piece", Duration::from_secs(30), || {
        have_pieces(&holder.status()) >= 1
    });
    holder.kill();
    let _ = partial.kill();
    let _ = partial.wait();
    holder = world.client(11);
    let held = have_pieces(&holder.status());
    assert!((1..16).contains(&held), "the holder holds part: {held}");

    server.kill();
    let out = world.path("newcomer.out");
    let fetch = world.start_fetch(&newcomer, &content, &out);
    wait_until(
        "the newcomer took the holder's pieces",
        Duration::from_secs(60),
        || have_pieces(&newcomer.status()) == held,
    );
    let transfer = newcomer.status()["transfers"][0].clone();
    assert_eq!(
        transfer["origins"], 0,
        "a peer's manifest names no origin: {transfer}"
    );
    holder.kill();

    origin.release();
    let _server = world.server();
    finish_fetch(fetch);
    assert_eq!(sha256_file(&out), sha);
    assert!(
        newcomer
            .log()
            .contains("the server named the content's origins")
    );
    let counters = &newcomer.status()["counters"];
    assert_eq!(
        counters["from_peers"].as_u64(),
        Some(held * PIECE),
        "{counters}"
    );
    assert_eq!(
        counters["from_origin"].as_u64(),
        Some(BIG as u64 - held * PIECE),
        "{counters}"
    );
}
