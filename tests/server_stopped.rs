//! With the server stopped after publish, clients of one office that hold
//! the content still share it: a client that never saw the content finds a
//! holder by UDP broadcast on its subnet, takes the manifest from it
//! (checked against the content id) and every piece. A WiFi client, whose
//! office type never broadcasts, sends no broadcast and so finds nobody.
//! Real processes and a real UDP broadcast on loopback; the rest of the
//! server going away (a download under way finishing from the origin, a
//! peer's manifest learning its origins when the server returns) is in
//! simulated time, `sim_server_away.rs`.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, make_package, sha256_file, wait_until};

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
