//! A lying peer is contained. One client of the office serves every piece
//! with a byte flipped (the debug-build fault switch
//! `BRANCHLINE_TEST_SERVE_FAULT=corrupt`); an honest client fetching from it and
//! from an honest peer rejects every bad piece, strikes the liar, bans it
//! at the second strike and reports the ban with its evidence to the
//! server, which stops offering the liar to the office: a client that
//! fetches afterwards is never sent to it. Every output is right; the ban
//! shows in `status`, in the debug shell and on the server.

mod common;

use serde_json::Value;

use common::origin::{OriginOptions, TestOrigin};
use common::{Node, World, finish_fetch, make_package, sha256_file, shell, wait_until};

const SIZE: usize = 32 * 1024 * 1024;

#[test]
fn a_peer_serving_bad_bytes_is_struck_banned_at_two_and_reported() {
    let world = World::new(31, 10);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 10);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    // The honest RVP (most free space), the liar, and the honest victim.
    let rvp = world.client_elected("rvp", "127.31.10.11:34760", "free_mib = 900000");
    let liar_config = world.path("liar.toml");
    std::fs::write(&liar_config, "[election]\nfree_mib = 100000\n").unwrap();
    let liar = world.client_at_with_env(
        "liar",
        world.addr(12, 34760),
        world.server_addr(),
        &["--config", &common::path_arg(&liar_config)],
        &[("BRANCHLINE_TEST_SERVE_FAULT", "corrupt")],
    );
    let victim = world.client_elected("victim", "127.31.10.13:34760", "free_mib = 100000");
    for client in [&rvp, &liar, &victim] {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    // The RVP takes the package from the origin, then the liar from the
    // RVP: both hold it whole, and each holds it right.
    for client in [&rvp, &liar] {
        let out = world.path(&format!("{}.out", client.name));
        finish_fetch(world.start_fetch(client, &content, &out));
        assert_eq!(sha256_file(&out), sha, "{}", client.name);
    }
    let liar_id = liar.status()["id"].as_str().unwrap().to_owned();

    let out = world.path("victim.out");
    finish_fetch(world.start_fetch(&victim, &content, &out));
    assert_eq!(sha256_file(&out), sha, "no bad byte reached the output");

    let status = victim.status();
    the_liar_was_struck_and_banned(&victim, &liar_id, &content);
    // The server took the report and keeps the liar from the office.
    wait_until(
        "the server lists the ban",
        std::time::Duration::from_secs(10),
        || {
            !server.status()["registry"]["bans"]
                .as_array()
                .unwrap()
                .is_empty()
        },
    );
    let bans = server.status()["registry"]["bans"].clone();
    assert_eq!(bans[0]["peer"], liar_id.as_str());
    assert_eq!(bans[0]["by"], status["id"]);
    assert!(bans[0]["evidence"].as_array().unwrap().len() >= 2);

    // The human-readable status says it too.
    let text = common::run(&[
        "status".into(),
        "--data-dir".into(),
        common::path_arg(&victim.data_dir),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("peer {liar_id} BANNED: ")), "{text}");

    // The office is told: a client that fetches now never meets the liar.
    let late = world.client_elected("late", "127.31.10.14:34760", "free_mib = 100000");
    world.wait_registered(&late);
    let out = world.path("late.out");
    finish_fetch(world.start_fetch(&late, &content, &out));
    assert_eq!(sha256_file(&out), sha);
    let status = late.status();
    assert_eq!(status["counters"]["pieces_rejected"].as_u64(), Some(0));
    assert_eq!(status["strikes"], serde_json::json!([]));
}

/// The victim rejected every bad piece, struck only the liar once per
/// piece, banned it, and keeps the evidence; its debug shell says so too.
fn the_liar_was_struck_and_banned(victim: &Node, liar_id: &str, content: &str) {
    let status = victim.status();
    let rejected = status["counters"]["pieces_rejected"].as_u64().unwrap();
    assert!(rejected >= 2, "every bad piece was rejected: {rejected}");
    let strikes = status["strikes"].as_array().unwrap();
    assert_eq!(strikes.len(), 1, "only the liar was struck: {strikes:?}");
    let strike = &strikes[0];
    assert_eq!(strike["peer"], liar_id);
    assert_eq!(strike["banned"], true);
    assert_eq!(
        strike["strikes"].as_u64(),
        Some(rejected),
        "each rejected piece is a strike"
    );
    let evidence = strike["evidence"][0]["error"].as_str().unwrap();
    assert!(
        evidence.contains("hash mismatch: expected") && evidence.contains(", got "),
        "the evidence names both hashes: {evidence}"
    );
    assert_eq!(strike["evidence"][0]["content"], content);

    // The same in the debug shell.
    let (ok, out) = shell(&victim.data_dir, "status");
    assert!(ok, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["strikes"][0]["banned"], true);
}
