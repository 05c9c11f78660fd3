//! A piece that rots on disk never reaches a user's file, and never stalls
//! anyone: the node that finds it drops it, tells the server at once and
//! fetches it again; a holder that claims a piece and never delivers it
//! delays a download by the deadline only, then the origin takes over.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::origin::{OriginOptions, TestOrigin};
use common::{Node, World, finish_fetch, make_package, path_arg, sha256_file, wait_until};

const PIECE: u64 = 16 * 1024;
const PIECE_BYTES: usize = 16 * 1024;

/// Flips the byte at `offset` of `client`'s stored copy of `content`.
fn flip_stored_byte(client: &Node, content: &str, offset: u64) {
    let path = client
        .data_dir
        .join("cache/pieces")
        .join(format!("{content}.data"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x20], offset).unwrap();
    file.sync_all().unwrap();
}

/// A client config file with `toml` in it; returns its path as an argument.
fn config(world: &World, name: &str, toml: &str) -> String {
    let path = world.path(&format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path_arg(&path)
}

fn publish_small(world: &World, package: &Path, origin: &TestOrigin) -> String {
    world.publish_with(
        package,
        &[origin.url("package.bin")],
        &["--piece-size", &PIECE.to_string()],
    )
}

#[test]
fn a_byte_flipped_in_the_cache_while_the_client_was_stopped_never_reaches_the_output() {
    let world = World::new(31, 22);
    let package = world.path("package.bin");
    let sha = make_package(&package, 10 * PIECE_BYTES, 221);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    let mut client = world.client(11);
    world.wait_registered(&client);
    let content = publish_small(&world, &package, &origin);
    finish_fetch(world.start_fetch(&client, &content, &world.path("first.bin")));
    let served_before = origin.bytes();

    // Stopped cleanly, so the next start skips the self-check; the disk
    // rots one byte of piece 6 meanwhile.
    client.terminate();
    flip_stored_byte(&client, &content, 6 * PIECE + 123);
    let client = world.client(11);
    world.wait_registered(&client);
    assert_eq!(client.start_check(), "not_needed");

    let out = world.path("second.bin");
    finish_fetch(world.start_fetch(&client, &content, &out));
    assert_eq!(
        sha256_file(&out),
        sha,
        "the rotted piece reached the output"
    );
    assert_eq!(
        origin.bytes() - served_before,
        PIECE,
        "exactly the rotted piece was fetched again"
    );
    assert!(
        client
            .log()
            .contains("pieces rotted on disk were dropped while writing out; fetching them again"),
        "{}",
        client.log()
    );
    assert!(!world.path("second.bin.partial").exists());
}

#[test]
fn a_holder_that_finds_its_piece_rotted_tells_the_server_at_once() {
    let world = World::new(31, 23);
    let package = world.path("package.bin");
    let sha = make_package(&package, 3 * PIECE_BYTES, 231);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    let mut holder = world.client(11);
    world.wait_registered(&holder);
    let content = publish_small(&world, &package, &origin);
    finish_fetch(world.start_fetch(&holder, &content, &world.path("holder.bin")));
    holder.terminate();
    flip_stored_byte(&holder, &content, PIECE + 7);
    let holder = world.client(11);
    world.wait_registered(&holder);

    // The other client would wait 10 minutes before its own deadline: the
    // holder's report is what must free piece 1 for the origin.
    let patient = config(&world, "patient", "[transfer]\nstuck_after_secs = 600\n");
    let asker = world.client_with(12, world.server_addr(), &["--config", &patient]);
    world.wait_registered(&asker);
    let served_before = origin.bytes();
    let started = Instant::now();
    let out = world.path("asker.bin");
    finish_fetch(world.start_fetch(&asker, &content, &out));
    let took = started.elapsed();
    assert_eq!(sha256_file(&out), sha);
    assert!(
        took < Duration::from_secs(30),
        "the fetch waited {took:?} for a piece nobody held"
    );
    // Leases keep it to once, whoever of the two takes it (the holder, as
    // its office's RVP, may fetch its lost piece again too).
    assert_eq!(
        origin.bytes() - served_before,
        PIECE,
        "only piece 1 from the origin"
    );
    wait_until("the holder logs its report", Duration::from_secs(5), || {
        holder
            .log()
            .contains("telling the server a rotted piece was dropped")
    });
}

#[test]
fn a_holder_that_never_delivers_delays_a_download_by_the_deadline_only() {
    let world = World::new(31, 24);
    let package = world.path("package.bin");
    let sha = make_package(&package, 8 * PIECE_BYTES, 241);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    // A holder that claims every piece and refuses each as busy.
    let liar = world.client_at_with_env(
        "client-11",
        world.addr(11, 34760),
        world.server_addr(),
        &[],
        &[("BRANCHLINE_TEST_SERVE_FAULT", "busy")],
    );
    world.wait_registered(&liar);
    let content = publish_small(&world, &package, &origin);
    finish_fetch(world.start_fetch(&liar, &content, &world.path("liar.bin")));

    let quick = config(&world, "quick", "[transfer]\nstuck_after_secs = 3\n");
    let asker = world.client_with(12, world.server_addr(), &["--config", &quick]);
    world.wait_registered(&asker);
    let served_before = origin.bytes();
    let started = Instant::now();
    let out = world.path("asker.bin");
    finish_fetch(world.start_fetch(&asker, &content, &out));
    let took = started.elapsed();
    assert_eq!(sha256_file(&out), sha);
    assert!(took >= Duration::from_secs(3), "it waited for the deadline");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(
        origin.bytes() - served_before,
        8 * PIECE,
        "all from the origin"
    );
    assert_eq!(asker.status()["counters"]["from_peers"], 0);
    let status = server.status();
    let uses = status["registry"]["origin"].as_array().unwrap();
    assert!(
        uses.iter().any(|u| u["reason"] == "stuck"),
        "the server names why the origin was used: {uses:?}"
    );
}
