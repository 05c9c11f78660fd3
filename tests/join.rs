//! Secure by default: the server makes its own cluster CA at first start,
//! a client joins with a token that pins that CA, and from then on
//! everything is mutual TLS. A wrong, expired, malformed or foreign token
//! gets nothing; a host without a certificate gets no byte from any QUIC
//! endpoint; a node's files are its own whatever the umask.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use branchline::transport::endpoint;
use branchline_actors::wire::{
    MAX_REPLY_FRAME, PeerRequest, ServerReply, ServerRequest, read_frame, write_frame,
};
use branchline_storage::ContentId;
use common::origin::{OriginOptions, TestOrigin};
use common::{World, bin, finish_fetch, make_package, path_arg, run_err, sha256_file, wait_until};

/// Starts `branchline client` for host `.host` of `world` with `extra`
/// and waits for it to exit; returns whether it succeeded and its output.
fn client_fails(world: &World, host: u8, extra: &[&str]) -> (bool, String) {
    let data_dir = world.path(&format!("client-{host}"));
    let listen = world.addr(host, 34760).to_string();
    let mut args = vec![
        "client",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen",
        &listen,
        "--server",
    ];
    let server = world.server_addr().to_string();
    args.push(&server);
    args.extend(extra);
    run_err(&args)
}

/// Every file and directory under `dir`, with its mode.
fn modes(dir: &Path) -> Vec<(String, u32, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let mode = meta.permissions().mode() & 0o777;
            out.push((entry.path().display().to_string(), mode, meta.is_dir()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}

#[test]
fn a_client_joins_with_a_token_and_needs_it_only_once() {
    let world = World::new(31, 29);
    let package = world.path("package.bin");
    let sha = make_package(&package, 2 * 1024 * 1024, 29);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    assert!(
        server.log().contains("join clients to this cluster"),
        "the server prints a token at start"
    );
    let mut client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    finish_fetch(world.start_fetch(&client, &content, &world.path("a.bin")));
    assert_eq!(sha256_file(&world.path("a.bin")), sha);
    let key = client.data_dir.join("identity/node.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Started again without any token, it is the same member.
    let id = client.status()["id"].clone();
    client.terminate();
    let again = world.client_at_without_join("client-11", world.addr(11, 34760));
    world.wait_registered(&again);
    assert_eq!(
        again.status()["id"],
        id,
        "the same certificate, the same node"
    );
    assert_eq!(server.client_names(), ["client-11"]);
}

/// A token made to last a second, a second after.
fn token_that_expired(world: &World) -> String {
    let made = Command::new(bin())
        .args([
            "token",
            "create",
            "--data-dir",
            &path_arg(&world.path("server")),
            "--expires",
            "1s",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    std::thread::sleep(Duration::from_millis(1100));
    token
}

#[test]
fn wrong_expired_malformed_and_foreign_tokens_get_nothing() {
    let world = World::new(31, 30);
    let _server = world.server();
    let good = world.join_token().unwrap();
    let (secret, rest) = good["BL1-".len()..].split_once('-').unwrap();
    let mut forged_secret = secret.to_owned();
    forged_secret.replace_range(0..1, if secret.starts_with('0') { "1" } else { "0" });

    // A secret the server never made.
    let forged = format!("BL1-{forged_secret}-{rest}");
    let (ok, out) = client_fails(&world, 11, &["--join", &forged]);
    assert!(!ok);
    assert!(
        out.contains("refused to let this client join: the join token is not known to this server"),
        "{out}"
    );
    // A token that expired.
    let expired = token_that_expired(&world);
    let (ok, out) = client_fails(&world, 12, &["--join", &expired]);
    assert!(!ok);
    assert!(out.contains("the join token expired"), "{out}");
    // A token that pins another CA: the client refuses the server.
    let foreign = format!("BL1-{secret}-{}{}", "00".repeat(32), &rest[64..]);
    let (ok, out) = client_fails(&world, 13, &["--join", &foreign]);
    assert!(!ok);
    assert!(
        out.contains("does not chain to the CA the join token names"),
        "{out}"
    );
    // Text that is no token, and no token at all.
    let (ok, out) = client_fails(&world, 14, &["--join", "hello"]);
    assert!(!ok);
    common::assert_one_line_error(
        &out,
        &["join: not a join token (it does not start with BL1-)"],
    );
    let (ok, out) = client_fails(&world, 15, &[]);
    assert!(!ok);
    assert!(
        out.contains(
            "error: this client has not joined a cluster: start it once with --join TOKEN"
        ),
        "{out}"
    );
    // Bad lifetimes are refused by the command.
    let (ok, out) = run_err(&[
        "token",
        "create",
        "--data-dir",
        &path_arg(&world.path("server")),
        "--expires",
        "soon",
    ]);
    assert!(!ok && out.contains("`soon` is not a lifetime"), "{out}");
    for host in 11..=15 {
        assert!(
            !world
                .path(&format!("client-{host}/identity/node.pem"))
                .exists(),
            "client-{host} got no certificate"
        );
    }
    assert_eq!(
        common::status(&world.path("server"))["registry"]["clients"],
        serde_json::json!([])
    );
}

/// A host with no certificate reaches every QUIC endpoint of a default
/// install and gets no byte: the clients' foreground and background
/// endpoints refuse its handshake, and the server's control endpoint
/// answers it nothing but a refusal (it may only join).
#[test]
fn a_host_without_a_certificate_gets_no_byte_from_any_quic_endpoint() {
    let world = World::new(31, 31);
    let package = world.path("package.bin");
    make_package(&package, 1024 * 1024, 31);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    finish_fetch(world.start_fetch(&client, &content, &world.path("a.bin")));
    let id: ContentId = content.parse().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = endpoint::bind(world.addr(60, 0)).unwrap();
        let (outsider, _) =
            endpoint::endpoint(socket, None, None, branchline::tls::Admit::Members).unwrap();
        for peer in [world.addr(11, 34760), world.addr(11, 34750)] {
            let got = bytes_a_peer_serves(&outsider, peer, id).await;
            assert_eq!(got, 0, "{peer} served an outsider");
        }
        the_control_endpoint_only_lets_it_join(&outsider, world.server_addr(), id).await;
    });
    assert_eq!(client.status()["counters"]["served"], 0);
}

/// The bytes a peer's endpoint gives `outsider` for a piece: none when the
/// handshake fails or the connection dies before a byte.
async fn bytes_a_peer_serves(
    outsider: &quinn::Endpoint,
    peer: std::net::SocketAddr,
    content: ContentId,
) -> usize {
    let Ok(conn) = endpoint::connect(
        outsider,
        peer,
        branchline::tls::SERVER_NAME,
        Duration::from_secs(5),
    )
    .await
    else {
        return 0;
    };
    let asked = async {
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        write_frame(&mut send, &PeerRequest::GetPiece { content, index: 0 })
            .await
            .ok()?;
        send.finish().ok()?;
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut recv, &mut buf)
            .await
            .ok()?;
        Some(buf.len())
    };
    tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The server's control endpoint lets `outsider` in (to join) but answers
/// it nothing else.
async fn the_control_endpoint_only_lets_it_join(
    outsider: &quinn::Endpoint,
    server: std::net::SocketAddr,
    content: ContentId,
) {
    let conn = endpoint::connect(
        outsider,
        server,
        branchline::tls::CONTROL_NAME,
        Duration::from_secs(5),
    )
    .await
    .expect("the control endpoint lets a device in to join");
    for request in [
        ServerRequest::GetContent { content },
        ServerRequest::GetRevocations { known: [0; 32] },
    ] {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        write_frame(&mut send, &request).await.unwrap();
        send.finish().unwrap();
        let reply: ServerReply = read_frame(&mut recv, MAX_REPLY_FRAME)
            .await
            .unwrap()
            .unwrap();
        match reply {
            ServerReply::Error(e) => assert!(e.contains("shows no cluster certificate"), "{e}"),
            other => panic!("an outsider got {other:?}"),
        }
    }
}

/// Starts the binary with `args` and umask 000, output to `log`.
#[allow(unsafe_code)]
fn spawn_with_open_umask(args: &[String], log: std::fs::File) -> std::process::Child {
    let mut command = Command::new(bin());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: umask is async-signal-safe and touches nothing else.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    command.spawn().unwrap()
}

#[test]
fn a_nodes_files_are_its_own_whatever_the_umask() {
    let world = World::new(31, 32);
    let package = world.path("package.bin");
    make_package(&package, 1024 * 1024, 32);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    // Both nodes start with umask 000, as a careless unit file would.
    let open = |args: &[String], name: &str| {
        let log = std::fs::File::create(world.path(&format!("{name}.log"))).unwrap();
        spawn_with_open_umask(args, log)
    };
    let mut server = open(
        &[
            "server".into(),
            "--data-dir".into(),
            path_arg(&world.path("server")),
            "--listen".into(),
            world.server_addr().to_string(),
        ],
        "server",
    );
    wait_until("the server answers", Duration::from_secs(20), || {
        common::try_status(&world.path("server")).is_some()
    });
    let token = world.join_token().unwrap();
    let mut args = world.client_args(&world.path("client-11"), world.addr(11, 34760));
    args.extend(["--join".to_owned(), token]);
    let mut client = open(&args, "client-11");
    wait_until("the client registers", Duration::from_secs(20), || {
        common::try_status(&world.path("client-11")).is_some_and(|s| s["registered"] == true)
    });
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let (ok, err) = run_err(&[
        "fetch",
        "--quiet",
        "--data-dir",
        &path_arg(&world.path("client-11")),
        &content,
    ]);
    assert!(ok, "{err}");
    for dir in ["server", "client-11"] {
        let found = modes(&world.path(dir));
        assert!(found.len() > 10, "{dir}: {found:?}");
        for (path, mode, is_dir) in found {
            let want = if is_dir { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{path} is {mode:o}");
        }
        let top = std::fs::metadata(world.path(dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(top, 0o700, "{dir}");
    }
    let _ = client.kill();
    let _ = server.kill();
    let _ = (client.wait(), server.wait());
}

#[test]
fn an_insecure_node_says_so_at_every_start_and_contradictions_are_refused() {
    let world = World::new(31, 33);
    let config = world.path("server.toml");
    std::fs::write(&config, "insecure = true\n").unwrap();
    let warning = "insecure = true: traffic is encrypted, but nodes are not authenticated";
    let mut server = world.server_with(&["--config", &path_arg(&config)]);
    assert_eq!(server.log().matches(warning).count(), 1, "{}", server.log());
    server.terminate();
    let server = world.server_with(&["--config", &path_arg(&config)]);
    assert_eq!(
        server.log().matches(warning).count(),
        1,
        "again at the next start"
    );
    assert!(!world.path("server/ca").exists(), "no CA made");
    let (ok, _) = run_err(&[
        "token",
        "create",
        "--data-dir",
        &path_arg(&world.path("server")),
    ]);
    assert!(!ok, "an insecure server makes no tokens");

    let both = world.path("both.toml");
    std::fs::write(
        &both,
        "insecure = true\n[tls]\nca = \"/x\"\ncert = \"/y\"\nkey = \"/z\"\n",
    )
    .unwrap();
    let (ok, out) = client_fails(&world, 11, &["--config", &path_arg(&both)]);
    assert!(!ok);
    common::assert_one_line_error(
        &out,
        &["insecure = true and a [tls] section contradict each other"],
    );
}
