//! `branchline purge CONTENT` removes a content from the server and from
//! every client's cache: the clients that held it drop it at their next
//! heartbeat, the server no longer lists it (also after a restart), and a
//! new fetch is refused as not published. A client that was down during
//! the purge drops the content when it comes back, even after the server
//! restarted with its clock 8 days ahead (libfaketime): purges are
//! numbered, not timed. An unknown or malformed id is a clear error.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, make_package, path_arg, run, wait_until};

const SIZE: usize = 4 * 1024 * 1024;

fn purge(world: &World, content: &str) -> (bool, String) {
    let out = run(&[
        "purge".into(),
        "--data-dir".into(),
        path_arg(&world.path("server")),
        content.into(),
    ]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_purged_content_leaves_the_server_and_every_cache() {
    let world = World::new(31, 14);
    let package = world.path("package.bin");
    make_package(&package, SIZE, 14);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let mut server = world.server();
    let clients = [world.client(11), world.client(12)];
    let mut away = world.client(13);
    for client in clients.iter().chain([&away]) {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    for client in clients.iter().chain([&away]) {
        let out = world.path(&format!("{}.out", client.name));
        finish_fetch(world.start_fetch(client, &content, &out));
        assert_eq!(client.status()["contents"].as_array().unwrap().len(), 1);
    }
    away.terminate();

    let (ok, said) = purge(&world, &content);
    assert!(ok, "{said}");
    assert!(said.contains(&format!("purged {content}")), "{said}");
    for client in &clients {
        wait_until(
            &format!("{} drops the purged content", client.name),
            Duration::from_secs(30),
            || client.status()["contents"].as_array().unwrap().is_empty(),
        );
    }
    assert_eq!(
        server.status()["registry"]["contents"],
        serde_json::json!([])
    );
    let again = world
        .start_fetch(&clients[0], &content, &world.path("again.out"))
        .wait_with_output()
        .unwrap();
    assert!(!again.status.success());
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(error.contains("not published"), "{error}");

    // Gone for good: a restarted server does not know it either, and the
    // client that was away drops it when it comes back, though the server's
    // clock says a week and a day went by.
    server.terminate();
    let server = world.server_with_env(&[], &common::faketime("+8d"));
    assert_eq!(
        server.status()["registry"]["contents"],
        serde_json::json!([])
    );
    let away = world.client(13);
    assert_eq!(
        away.status()["start_check"],
        "not_needed",
        "a client stopped cleanly is not checked at its next start"
    );
    wait_until(
        "the client that was away drops the purged content",
        Duration::from_secs(30),
        || away.status()["contents"].as_array().unwrap().is_empty(),
    );
    let (ok, said) = purge(&world, &content);
    assert!(!ok && said.contains("is not published"), "{said}");
    let (ok, said) = purge(&world, "not-a-content-id");
    assert!(!ok && said.contains("is not a content id"), "{said}");
}
