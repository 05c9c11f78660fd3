//! Five clients, as separate processes on 127.31.1.0/24, fetch a 64 MiB
//! package at once: every copy is right, the origin serves the package about
//! once, and peers carry the rest.

mod common;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetches, make_package, start_fetches};

const SIZE: usize = 64 * 1024 * 1024;

#[test]
fn five_clients_share_a_package_and_the_origin_serves_it_about_once() {
    let world = World::new(31, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 31);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    let mut clients: Vec<_> = (11..=15).map(|host| world.client(host)).collect();
    for client in &clients {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);

    finish_fetches(start_fetches(&world, &clients, &content), &sha);

    let served = origin.bytes();
    let total = SIZE as u64;
    assert!(
        served as f64 <= 1.10 * total as f64,
        "origin served {served} bytes, more than 1.10x {total}"
    );
    let (mut from_peers, mut from_origin) = (0u64, 0u64);
    for client in &clients {
        let counters = &client.status()["counters"];
        from_peers += counters["from_peers"].as_u64().unwrap();
        from_origin += counters["from_origin"].as_u64().unwrap();
    }
    assert_eq!(
        from_peers + from_origin,
        5 * total,
        "every byte of every copy is counted once"
    );
    assert_eq!(
        from_origin, served,
        "what the clients took from the origin is what it sent"
    );
    assert!(
        from_peers >= 5 * total - served,
        "peers carried the rest: {from_peers}"
    );
    eprintln!(
        "origin served {:.2}x the package; peers carried {:.2}x",
        served as f64 / total as f64,
        from_peers as f64 / total as f64
    );

    // A client stopped as systemd stops it says goodbye: the server drops
    // it at once, long before its heartbeats would have timed out.
    let registered = || {
        server.status()["registry"]["clients"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(registered(), 5);
    let stopped = std::time::Instant::now();
    clients[0].terminate();
    assert!(
        clients[0]
            .log()
            .contains("told the server this client leaves")
    );
    assert_eq!(registered(), 4, "dropped on leaving");
    assert!(stopped.elapsed() < std::time::Duration::from_secs(5));
    assert!(server.log().contains("client left"));
}
