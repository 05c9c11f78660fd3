//! A certificate revoked while its node runs: `pki revoke` rewrites the
//! CA's list; the server (whose `tls.crl` names it) puts it in force within
//! seconds and hands it to every client at its next heartbeat. The revoked
//! client's open connections, to the server and to its peers, are closed;
//! it cannot register again and gets no byte of a new package, while the
//! others go on sharing. No node was restarted.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::pki::{config_with_certificate, config_with_certificate_and, pki};
use common::{Node, World, finish_fetch, make_package, path_arg, sha256_file, wait_until};

const SIZE: usize = 8 * 1024 * 1024;

#[test]
fn a_revoked_node_is_cut_off_without_restarting_anyone() {
    let world = World::new(31, 18);
    let ca = world.path("ca");
    pki(&["init", &path_arg(&ca)]);
    let first = world.path("first.bin");
    let first_sha = make_package(&first, SIZE, 1);
    let second = world.path("second.bin");
    let second_sha = make_package(&second, SIZE, 2);
    let origin = TestOrigin::start(world.addr(2, 0), first.clone(), OriginOptions::default());
    let second_origin =
        TestOrigin::start(world.addr(3, 0), second.clone(), OriginOptions::default());
    let server_config = config_with_certificate_and(
        &world,
        &ca,
        "server",
        "server",
        "[registry]\nheartbeat_secs = 1\n",
    );
    let text = std::fs::read_to_string(&server_config).unwrap();
    assert!(
        text.contains("\ncrl = "),
        "every issued config names the list: {text}"
    );
    let server = world.server_with(&["--config", &server_config]);
    let [a, b, c] = [("a", 11), ("b", 12), ("c", 13)].map(|(name, host)| {
        let config = config_with_certificate(&world, &ca, "client", name);
        world.client_at(
            name,
            world.addr(host, 34760),
            world.server_addr(),
            &["--config", &config],
        )
    });
    for client in [&a, &b, &c] {
        world.wait_registered(client);
    }
    let content = world.publish(&first, &[origin.url("first.bin")]);
    for client in [&a, &c] {
        let out = world.path(&format!("{}-first.out", client.name));
        finish_fetch(world.start_fetch(client, &content, &out));
        assert_eq!(sha256_file(&out), first_sha);
    }

    pki(&["revoke", "--ca", &path_arg(&ca), "--name", "c"]);
    everyone_takes_the_new_list_at_once(&server, &a, &b, &c);

    let second_content = world.publish(&second, &[second_origin.url("second.bin")]);
    let out = world.path("a-second.out");
    finish_fetch(world.start_fetch(&a, &second_content, &out));
    assert_eq!(sha256_file(&out), second_sha);
    let before = c.status()["counters"].clone();
    let refused = world
        .start_fetch(&c, &second_content, &world.path("c-second.out"))
        .wait_with_output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "the revoked client got the package"
    );
    let after = &c.status()["counters"];
    for key in ["from_peers", "from_parent", "from_origin"] {
        assert_eq!(
            after[key], before[key],
            "c received {key} bytes after its revocation"
        );
    }
    assert_eq!(c.status()["registered"], false, "c never registers again");
    let out = world.path("b-second.out");
    finish_fetch(world.start_fetch(&b, &second_content, &out));
    assert_eq!(sha256_file(&out), second_sha);
    assert!(b.status()["counters"]["from_peers"].as_u64().unwrap() > 0);
}

/// The server cuts c off and tells the clients, which take the new list
/// and close the connection c had opened: no one restarts.
fn everyone_takes_the_new_list_at_once(server: &Node, a: &Node, b: &Node, c: &Node) {
    wait_until(
        "the server closes c's connection",
        Duration::from_secs(15),
        || c.status()["registered"] == false,
    );
    wait_until("a and b take the new list", Duration::from_secs(15), || {
        [a, b]
            .iter()
            .all(|n| n.log().contains("took the server's revocation list"))
    });
    assert!(
        server.log().contains("revocation list reloaded"),
        "{}",
        server.log()
    );
    wait_until(
        "a closes the connection c opened to it",
        Duration::from_secs(5),
        || {
            a.log()
                .contains("closing a connection: the peer's certificate was revoked")
        },
    );
}
