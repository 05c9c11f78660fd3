//! Damaged state on disk: a garbled or truncated sled database, a piece
//! file cut short, a garbled certificate or key. A node that cannot trust
//! what it would start from exits non-zero with one error line naming the
//! path and what to do, without a panic and without changing the damaged
//! file; a piece file cut short only costs the pieces it lost.

mod common;

use std::path::Path;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetch, make_package, path_arg, run_err, sha256_file};

/// The one `error:` line of a failed start (logs come before it).
fn error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_owned()
}

fn garble(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    for (i, b) in bytes.iter_mut().take(4096).enumerate() {
        *b ^= u8::try_from(i % 199).unwrap() | 1;
    }
    std::fs::write(path, bytes).unwrap();
}

/// The arguments that start the world's server.
fn server_args(world: &World) -> Vec<String> {
    vec![
        "server".to_owned(),
        "--data-dir".into(),
        path_arg(&world.path("server")),
        "--listen".into(),
        world.server_addr().to_string(),
    ]
}

/// The arguments that start the world's client 11 again.
fn client_args(world: &World) -> Vec<String> {
    world.client_args(&world.path("client-11"), world.addr(11, 34760))
}

/// Starts a node that must fail; whether it did not, and its stderr.
fn start(args: &[String]) -> (bool, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_err(&args)
}

#[test]
fn damaged_databases_certificates_and_keys_are_named_and_left_as_they_were() {
    let world = World::new(31, 35);
    let package = world.path("package.bin");
    make_package(&package, 1024 * 1024, 35);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let mut server = world.server();
    let mut client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    finish_fetch(world.start_fetch(&client, &content, &world.path("a.bin")));
    client.terminate();
    server.terminate();

    each_garbled_file_is_named_and_left_as_it_was(&world);
    a_truncated_database_is_refused(&world);

    // Whole again, both start, and a piece file cut short costs only the
    // pieces it lost.
    let piece_file = world
        .path("client-11/cache/pieces")
        .join(format!("{content}.data"));
    let len = std::fs::metadata(&piece_file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&piece_file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let _server = world.server();
    let client = world.client_at_without_join("client-11", world.addr(11, 34760));
    world.wait_registered(&client);
    let out = world.path("b.bin");
    finish_fetch(world.start_fetch(&client, &content, &out));
    assert_eq!(sha256_file(&out), sha256_file(&package));
}

/// Each garbled file stops its node with one line naming it, and is left
/// as it was; it is put back afterwards.
fn each_garbled_file_is_named_and_left_as_it_was(world: &World) {
    for (what, file, args, expect) in [
        (
            "server metadata",
            world.path("server/meta/db"),
            server_args(world),
            "the database in",
        ),
        (
            "client cache database",
            world.path("client-11/cache/db/db"),
            client_args(world),
            "the database in",
        ),
        (
            "client certificate",
            world.path("client-11/identity/node.pem"),
            client_args(world),
            "identity/node.pem",
        ),
        (
            "client key",
            world.path("client-11/identity/node.key"),
            client_args(world),
            "identity/node.key",
        ),
        (
            "server CA certificate",
            world.path("server/ca/ca.pem"),
            server_args(world),
            "ca/ca.pem",
        ),
    ] {
        let kept = std::fs::read(&file).unwrap();
        garble(&file);
        let damaged = std::fs::read(&file).unwrap();
        let (ok, stderr) = start(&args);
        assert!(!ok, "{what}: the node started on a damaged file");
        let line = error_line(&stderr);
        eprintln!("{what}: {line}");
        assert!(line.contains(expect), "{what}: {line}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            damaged,
            "{what}: the damaged file was changed"
        );
        std::fs::write(&file, kept).unwrap();
    }
}

/// A truncated database is refused the same way; it is put back after.
fn a_truncated_database_is_refused(world: &World) {
    let db = world.path("server/meta/db");
    let kept = std::fs::read(&db).unwrap();
    std::fs::write(&db, &kept[..100.min(kept.len())]).unwrap();
    let (ok, stderr) = start(&server_args(world));
    assert!(!ok);
    assert!(
        error_line(&stderr).contains("nothing was changed"),
        "{stderr}"
    );
    std::fs::write(&db, kept).unwrap();
}
