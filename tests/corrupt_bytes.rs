//! A source that sends corrupted bytes is caught: the piece is refused, the
//! source set aside and named in the log, the piece fetched elsewhere, and
//! the output is right.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, assert_one_line_error, finish_fetch, make_package, sha256_file, wait_until};

const SIZE: usize = 8 * 1024 * 1024;

#[test]
fn a_flipped_byte_is_rejected_logged_with_its_source_and_fetched_elsewhere() {
    let world = World::new(31, 3);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 33);
    // The first origin flips a byte inside piece 3; the second is honest.
    let bad = TestOrigin::start(
        world.addr(2, 0),
        package.clone(),
        OriginOptions {
            flip_at: Some(3 * 1024 * 1024 + 17),
            ..Default::default()
        },
    );
    let good = TestOrigin::start(world.addr(3, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[bad.url("package.bin"), good.url("package.bin")]);
    let out = world.path("out.bin");
    finish_fetch(world.start_fetch(&client, &content, &out));

    assert_eq!(sha256_file(&out), sha);
    assert!(
        good.bytes() > 0,
        "the honest origin supplied the piece the other corrupted"
    );
    let counters = &client.status()["counters"];
    assert!(counters["pieces_rejected"].as_u64().unwrap() >= 1);
    assert_eq!(
        counters["rejected_hash"], counters["pieces_rejected"],
        "the flipped byte is a hash mismatch"
    );
    let bad_url = bad.url("package.bin");
    wait_until("the rejection is logged", Duration::from_secs(5), || {
        client.log().lines().any(|l| {
            l.contains("rejected a corrupt piece")
                && l.contains(&bad_url)
                && l.contains("piece 3 hash mismatch")
        })
    });
}

#[test]
fn a_tampered_origin_with_no_other_source_fails_naming_the_content_and_piece() {
    let world = World::new(31, 15);
    let package = world.path("package.bin");
    make_package(&package, SIZE, 34);
    // The only origin's file was changed after publishing: piece 5 differs.
    let tampered = TestOrigin::start(
        world.addr(2, 0),
        package.clone(),
        OriginOptions {
            flip_at: Some(5 * 1024 * 1024 + 99),
            ..Default::default()
        },
    );
    let _server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let url = tampered.url("package.bin");
    let content = world.publish(&package, std::slice::from_ref(&url));
    let out = world.path("out.bin");
    let fetch = world
        .start_fetch(&client, &content, &out)
        .wait_with_output()
        .unwrap();

    assert!(
        !fetch.status.success(),
        "a fetch with a tampered piece must fail"
    );
    let stderr = String::from_utf8_lossy(&fetch.stderr);
    assert_one_line_error(
        &stderr,
        &[
            &format!("piece 5 of {content}"),
            &url,
            "piece 5 hash mismatch: expected ",
        ],
    );
    eprintln!("{}", stderr.trim_end());
    assert!(!out.exists(), "no output file is left");
    assert!(
        !world.path("out.bin.partial").exists(),
        "no partial output is left"
    );
    let status = client.status();
    assert_eq!(status["counters"]["rejected_hash"], 1);
    // The origin is set aside at the bad piece, so the pieces not yet asked
    // of it by then are not fetched; every piece asked before (0 to 4, in
    // order) was verified and stays, and the tampered one is not stored.
    let have = status["contents"][0]["have"].as_u64().unwrap();
    assert!((5..=7).contains(&have), "{have} pieces held");
    assert_eq!(
        status["counters"]["pieces_stored"].as_u64(),
        Some(have),
        "every verified piece is kept"
    );
}
