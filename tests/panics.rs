//! Real panics are handled where they happen. A panic in a blocking job of
//! the store restarts the store, and the cache keeps working; a panic in a
//! reply future or in a task of its own (where no actor catches it) stops
//! the node with exit code 70 within seconds, for its process supervisor
//! to start it again from disk; the restarted node is whole.

mod common;

use std::time::{Duration, Instant};

use common::origin::{OriginOptions, TestOrigin};
use common::{Node, World, finish_fetch, make_package, sha256_file, shell, wait_until};

/// Waits for `node` to exit; its exit code and how long it took.
fn exit_of(node: &mut Node, within: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "{} did not exit within {within:?}",
            node.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_panic_is_handled_where_it_happens_or_ends_the_node_with_code_70() {
    let world = World::new(31, 36);
    let package = world.path("package.bin");
    let sha = make_package(&package, 2 * 1024 * 1024, 36);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let mut server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);

    // A blocking job of the store panics: the store restarts, the node runs
    // on, and the cache works (no lock stays poisoned).
    let (ok, out) = shell(&client.data_dir, "kill store panic-blocking");
    assert!(ok, "{out}");
    wait_until("the store restarts", Duration::from_secs(10), || {
        let (_, actors) = shell(&client.data_dir, "actors");
        let actors: Vec<serde_json::Value> = serde_json::from_str(&actors).unwrap();
        actors
            .iter()
            .any(|a| a["name"] == "store" && a["restarts"] == 1)
    });
    std::thread::sleep(Duration::from_secs(3));
    let out_file = world.path("a.bin");
    finish_fetch(world.start_fetch(&client, &content, &out_file));
    assert_eq!(sha256_file(&out_file), sha);

    // Panics no actor catches: the node stops with 70, quickly.
    let mut client = client;
    for (node, actor, how) in [
        (&mut client, "office", "panic-reply"),
        (&mut server, "directory", "panic-task"),
    ] {
        let (ok, out) = shell(&node.data_dir, &format!("kill {actor} {how}"));
        assert!(ok, "{out}");
        let (code, took) = exit_of(node, Duration::from_secs(60));
        assert_eq!(code, Some(70), "{}: {how}", node.name);
        eprintln!("{} stopped with 70 {took:?} after a {how}", node.name);
        assert!(
            node.log()
                .contains("a panic outside any actor's supervision"),
            "{}",
            node.log()
        );
    }

    // Started again (as systemd would), both are whole.
    let _server = world.server();
    let client = world.client_at_without_join("client-11", world.addr(11, 34760));
    world.wait_registered(&client);
    let again = world.path("b.bin");
    finish_fetch(world.start_fetch(&client, &content, &again));
    assert_eq!(sha256_file(&again), sha);
}
