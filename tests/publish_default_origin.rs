//! `publish` without `--origin` on a server that runs its embedded file
//! storage: the package's origin is its URL there (learned from the running
//! server, whatever flags started it), and a client fetches it from there.
//! The client first only pre-stages it (`fetch` without `--out`), then
//! writes it out without downloading it again. The file storage serves
//! only what was published, also after a restart: another file in its
//! directory is not found.

mod common;

use common::{World, bin, finish_fetch, make_package, path_arg, sha256_file};

const SIZE: usize = 3 * 1024 * 1024 + 17;

#[test]
fn publish_without_origin_uses_the_servers_file_storage_url() {
    let world = World::new(31, 9);
    let storage = world.path("storage");
    std::fs::create_dir_all(storage.join("apps")).unwrap();
    std::fs::write(storage.join("apps").join("secret.txt"), "not for clients").unwrap();
    let package = storage.join("apps").join("tool 1.bin");
    let sha = make_package(&package, SIZE, 9);
    let listen = world.addr(1, 34380).to_string();
    let server_flags = [
        "--file-storage",
        &path_arg(&storage),
        "--file-storage-listen",
        &listen,
    ];
    let mut server = world.server_with(&server_flags);
    let client = world.client(11);
    world.wait_registered(&client);
    assert_eq!(
        http_status(&client, &listen, "/apps/tool%201.bin"),
        404,
        "not published yet"
    );

    let content = world.publish(&package, &[]);
    let status = server.status();
    let origins = &status["registry"]["contents"][0]["origins"];
    assert_eq!(
        origins,
        &serde_json::json!([format!("https://{listen}/apps/tool%201.bin")]),
        "the origin is the package's URL in the file storage"
    );

    prestaging_caches_the_package(&client, &content);

    let out = world.path("tool.out");
    finish_fetch(world.start_fetch(&client, &content, &out));
    assert_eq!(sha256_file(&out), sha);
    assert_eq!(
        server.status()["file_storage"]["bytes_served"].as_u64(),
        Some(SIZE as u64),
        "the file storage sent the package once"
    );

    // Only what was published is served, also after a restart.
    for restarted in [false, true] {
        if restarted {
            server.terminate();
            server = world.server_with(&server_flags);
        }
        assert_eq!(
            http_status(&client, &listen, "/apps/tool%201.bin"),
            200,
            "restarted: {restarted}"
        );
        assert_eq!(
            http_status(&client, &listen, "/apps/secret.txt"),
            404,
            "restarted: {restarted}"
        );
    }
}

/// `fetch --quiet` without an output caches the package (pre-staging).
fn prestaging_caches_the_package(client: &common::Node, content: &str) {
    let prestage = std::process::Command::new(bin())
        .args([
            "fetch",
            "--quiet",
            "--data-dir",
            &path_arg(&client.data_dir),
            content,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&prestage.stderr);
    assert!(prestage.status.success(), "{said}");
    assert!(
        said.starts_with(&format!("cached {content}: 3.0 MiB")),
        "{said}"
    );
    assert_eq!(
        client.status()["contents"][0]["have"],
        4,
        "held in the cache"
    );
}

/// The status code of a HEAD request to the file storage, made over
/// HTTPS as cluster member `client` (its certificate and key).
fn http_status(client: &common::Node, addr: &str, path: &str) -> u16 {
    common::curl_status(Some(client), &format!("https://{addr}{path}"))
}
