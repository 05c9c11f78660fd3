//! A source that sends corrupted bytes is caught: the piece is refused, the
//! source set aside and named in the log, the piece fetched elsewhere, and
//! the output is right.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, make_package, sha256_file, wait_until};

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
