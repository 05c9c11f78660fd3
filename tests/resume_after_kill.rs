//! A client killed with SIGKILL in the middle of a download resumes it by
//! itself when it starts again, from the pieces it had stored: it fetches
//! none of them again, and nobody has to ask.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, have_pieces, make_package, sha256_file, wait_until};

const SIZE: usize = 48 * 1024 * 1024;
const PIECES: u64 = 48;

/// A client of `world` killed with SIGKILL in the middle of a download of
/// a package of `size` bytes from a slow origin, once it stored at least
/// `stored` pieces; the server still runs.
struct KilledMidDownload {
    origin: TestOrigin,
    content: String,
    sha: String,
    out: std::path::PathBuf,
    /// Keeps the server running.
    server: common::Node,
}

fn killed_mid_download(world: &World, size: usize, seed: u64, stored: u64) -> KilledMidDownload {
    let package = world.path("package.bin");
    let sha = make_package(&package, size, seed);
    // A slow origin that holds its answers after `stored` + 4 pieces until
    // the kill, so the kill lands mid-download however slow the machine.
    let options = OriginOptions {
        delay: Duration::from_millis(60),
        hold_after: Some(stored + 4),
        ..OriginOptions::default()
    };
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), options);
    let server = world.server();
    let mut client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let out = world.path("out.bin");
    let fetch = world.start_fetch(&client, &content, &out);
    wait_until(
        &format!("{stored} pieces are stored"),
        Duration::from_secs(60),
        || have_pieces(&client.status()) >= stored,
    );
    client.kill();
    let _ = fetch.wait_with_output();
    origin.release();
    KilledMidDownload {
        origin,
        content,
        sha,
        out,
        server,
    }
}

#[test]
fn a_killed_client_resumes_without_fetching_stored_pieces_again() {
    let world = World::new(31, 2);
    let KilledMidDownload {
        origin,
        content,
        sha,
        out,
        server: _server,
    } = killed_mid_download(&world, SIZE, 32, 12);
    let requests_before = origin.stats.requests.load(Ordering::Relaxed);

    let client = world.client(11);
    client.start_check();
    // Nobody asks again: the unfinished download resumes by itself.
    wait_until(
        "the download resumes by itself and ends",
        Duration::from_secs(120),
        || have_pieces(&client.status()) == PIECES,
    );
    let log = client.log();
    assert!(
        log.contains("resuming the downloads that did not finish"),
        "{log}"
    );
    let stored: u64 = log
        .lines()
        .find(|l| l.contains("transfer started"))
        .and_then(|l| l.split("have=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the resumed transfer logs what it started from");
    assert!(
        (12..PIECES).contains(&stored),
        "stored {stored} pieces before the kill"
    );
    // Writing it out downloads nothing more.
    finish_fetch(world.start_fetch(&client, &content, &out));
    assert_eq!(sha256_file(&out), sha);

    let after = &client.status()["counters"];
    assert_eq!(
        after["pieces_stored"].as_u64().unwrap(),
        PIECES - stored,
        "only the missing pieces were stored again"
    );
    let requests_after = origin.stats.requests.load(Ordering::Relaxed) - requests_before;
    assert_eq!(
        requests_after,
        PIECES - stored,
        "only the missing pieces were fetched again"
    );
    eprintln!("{stored} pieces survived the kill; {requests_after} fetched after the restart");
}

#[test]
fn pieces_that_rot_while_the_client_is_down_are_found_at_start_and_fetched_again() {
    let world = World::new(31, 21);
    let KilledMidDownload {
        origin: _origin,
        content,
        sha,
        out,
        server: _server,
    } = killed_mid_download(&world, 16 * 1024 * 1024, 21, 4);

    // The disk changes the first byte of every piece written so far
    // (unwritten ones are holes of zeros in the sparse piece file).
    let file = world
        .path("client-11")
        .join("cache/pieces")
        .join(format!("{content}.data"));
    let mut bytes = std::fs::read(&file).unwrap();
    let mut rotted = 0;
    for piece in bytes.chunks_mut(1024 * 1024) {
        if piece.iter().any(|&b| b != 0) {
            piece[0] ^= 0xFF;
            rotted += 1;
        }
    }
    std::fs::write(&file, &bytes).unwrap();

    let client = world.client(11);
    let found = client.start_check();
    let done = &found["done"];
    let checked = done["pieces"].as_u64().unwrap();
    let corrupt = done["corrupt"].as_array().unwrap().len() as u64;
    eprintln!("{rotted} pieces rotted on disk; the check read {checked} and dropped {corrupt}");
    assert!(checked >= 4, "{found}");
    assert_eq!(corrupt, checked, "every stored piece had rotted: {found}");
    assert!(client.log().contains("corrupt pieces were dropped"));
    world.wait_registered(&client);
    finish_fetch(world.start_fetch(&client, &content, &out));
    assert_eq!(sha256_file(&out), sha);
}
