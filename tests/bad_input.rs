//! Bad input gets one clear line and a non-zero exit, and nothing is
//! stored.

mod common;

use std::net::UdpSocket;

use common::{World, assert_one_line_error, path_arg, run_err};

const MISSING: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn contents(client: &common::Node) -> usize {
    client.status()["contents"].as_array().unwrap().len()
}

#[test]
fn an_unknown_content_id_is_named_and_nothing_is_stored() {
    let world = World::new(31, 4);
    let _server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let out = world.path("out.bin");
    let (ok, stderr) = run_err(&[
        "fetch",
        "--quiet",
        "--data-dir",
        &path_arg(&client.data_dir),
        MISSING,
        "--out",
        &path_arg(&out),
    ]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &[&format!("content {MISSING} is not published on the server")],
    );
    assert_eq!(contents(&client), 0);
    assert!(!out.exists());

    let (ok, stderr) = run_err(&[
        "fetch",
        "--data-dir",
        &path_arg(&client.data_dir),
        "xyz",
        "--out",
        &path_arg(&out),
    ]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["`xyz` is not a content id"]);
}

#[test]
fn an_unreachable_server_is_named_and_nothing_is_stored() {
    let world = World::new(31, 5);
    let mut server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let token = world.join_token().unwrap();
    server.kill();
    let nobody = world.server_addr();
    let out = world.path("out.bin");
    let (ok, stderr) = run_err(&[
        "fetch",
        "--quiet",
        "--data-dir",
        &path_arg(&client.data_dir),
        MISSING,
        "--out",
        &path_arg(&out),
    ]);
    assert!(!ok);
    assert_one_line_error(&stderr, &[&format!("cannot reach the server at {nobody}")]);
    assert_eq!(contents(&client), 0);
    assert!(!out.exists());

    // A new device cannot join while the server is away: it says so and
    // stops, with no certificate kept.
    let data_dir = world.path("client-12");
    let (ok, stderr) = run_err(&[
        "client",
        "--data-dir",
        &path_arg(&data_dir),
        "--listen",
        &world.addr(12, 34760).to_string(),
        "--join",
        &token,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "error: cannot join the cluster through the server at {nobody}"
        )),
        "{stderr}"
    );
    assert!(!data_dir.join("identity/node.pem").exists());
}

#[test]
fn publishing_a_missing_file_is_named() {
    let world = World::new(31, 6);
    let _server = world.server();
    let missing = world.path("nope.bin");
    let (ok, stderr) = run_err(&[
        "publish",
        "--data-dir",
        &path_arg(&world.path("server")),
        &path_arg(&missing),
    ]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &[
            &format!("cannot open {}", missing.display()),
            "No such file",
        ],
    );
}

#[test]
fn an_origin_of_the_wrong_kind_or_scheme_is_refused_and_nothing_is_published() {
    let world = World::new(31, 26);
    let server = world.server();
    let package = world.path("p.bin");
    std::fs::write(&package, [1u8; 4096]).unwrap();
    let (ok, stderr) = run_err(&[
        "publish",
        "--data-dir",
        &path_arg(&world.path("server")),
        &path_arg(&package),
        "--cdn",
        "file:///srv/p.bin",
    ]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &["--cdn file:///srv/p.bin: a CDN is reached over http(s)://, not file://"],
    );
    let (ok, stderr) = run_err(&[
        "publish",
        "--data-dir",
        &path_arg(&world.path("server")),
        &path_arg(&package),
        "--file-storage",
        "ftp://files.corp/p.bin",
    ]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &[
            "origin `ftp://files.corp/p.bin` is not usable: only http://, https:// and file:// origins are supported",
        ],
    );
    assert_eq!(
        server.status()["registry"]["contents"],
        serde_json::json!([])
    );
}

#[test]
fn publishing_without_a_running_server_is_named() {
    let world = World::new(31, 6);
    let file = world.path("p.bin");
    std::fs::write(&file, b"x").unwrap();
    let (ok, stderr) = run_err(&[
        "publish",
        "--data-dir",
        &path_arg(&world.path("server")),
        &path_arg(&file),
    ]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["cannot reach the local node at", "admin.sock"]);
}

#[test]
fn invalid_config_keys_and_values_are_named_with_their_line() {
    let world = World::new(31, 7);
    let data = world.path("client");
    let bad_key = world.path("bad-key.toml");
    std::fs::write(
        &bad_key,
        format!(
            "data_dir = \"{}\"\nserver = \"127.31.7.1:34323\"\nbogus = 1\n",
            data.display()
        ),
    )
    .unwrap();
    let (ok, stderr) = run_err(&["client", "--config", &path_arg(&bad_key)]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["bad-key.toml line 3", "unknown field `bogus`"]);

    let bad_value = world.path("bad-value.toml");
    std::fs::write(
        &bad_value,
        format!(
            "data_dir = \"{}\"\nserver = \"somewhere\"\n",
            data.display()
        ),
    )
    .unwrap();
    let (ok, stderr) = run_err(&["client", "--config", &path_arg(&bad_value)]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &["bad-value.toml line 2", "invalid socket address"],
    );

    let zero = world.path("zero.toml");
    std::fs::write(
        &zero,
        format!(
            "data_dir = \"{}\"\nserver = \"127.31.7.1:34323\"\n[transfer]\nmax_in_flight = 0\n",
            data.display()
        ),
    )
    .unwrap();
    let (ok, stderr) = run_err(&["client", "--config", &path_arg(&zero)]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["transfer.max_in_flight must be greater than 0"]);
    assert!(!data.exists(), "nothing was created for a bad config");

    let (ok, stderr) = run_err(&["client", "--data-dir", &path_arg(&data)]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["server is not set", "--server"]);
}

#[test]
fn a_port_in_use_is_named() {
    let world = World::new(31, 8);
    let taken = UdpSocket::bind(world.addr(11, 0)).unwrap();
    let addr = taken.local_addr().unwrap();
    let (ok, stderr) = run_err(&[
        "client",
        "--data-dir",
        &path_arg(&world.path("client")),
        "--server",
        &world.server_addr().to_string(),
        "--listen",
        &addr.to_string(),
    ]);
    assert!(!ok);
    assert_one_line_error(&stderr, &[&format!("cannot listen on {addr}"), "in use"]);
}

#[test]
fn a_tool_printing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let world = World::new(31, 13);
    let server = world.server();
    // As `branchline status | head -0`: the reader is gone before the
    // tool writes.
    let mut status = Command::new(common::bin())
        .args(["status", "--data-dir", &path_arg(&server.data_dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(status.stdout.take());
    let out = status.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

#[test]
fn another_user_is_refused_by_the_admin_socket_even_with_its_mode_opened() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    let world = World::new(31, 19);
    let server = world.server();
    // Open everything up: the directories, the socket, and a copy of the
    // binary the other user can run. Only the credential check is left.
    let open = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(world.dir.path(), 0o755);
    open(&server.data_dir, 0o755);
    open(&server.data_dir.join("admin.sock"), 0o666);
    let bin = world.path("branchline");
    std::fs::copy(common::bin(), &bin).unwrap();
    open(&bin, 0o755);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["status", "--data-dir", &path_arg(&server.data_dir)])
        .output()
        .expect("setpriv runs (this test needs root)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "user 65534 got the status: {stderr}");
    assert_one_line_error(
        &stderr,
        &["user 65534 may not use this node's admin socket"],
    );
    // The node's own user still gets it.
    assert!(server.status()["registry"].is_object());
}
