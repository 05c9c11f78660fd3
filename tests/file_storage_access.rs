//! The embedded file storage of a default install serves cluster members
//! (HTTPS, client certificate) and holders of a short-lived signed URL,
//! nobody else: no byte without one, none after a purge or a revocation.
//! An idle flood of 10,000 connections does not keep an honest download
//! from starting.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Node, World, curl, make_package, path_arg, run_err, wait_until};

const SIZE: u64 = 2 * 1024 * 1024 + 3;

struct Setup {
    world: World,
    server: Node,
    member: Node,
    listen: String,
    content: String,
}

fn setup(c: u8) -> Setup {
    let world = World::new(35, c);
    let storage = world.path("storage");
    std::fs::create_dir_all(&storage).unwrap();
    make_package(
        &storage.join("pkg.bin"),
        usize::try_from(SIZE).unwrap(),
        u64::from(c),
    );
    std::fs::write(storage.join("unpublished.bin"), b"never served").unwrap();
    let listen = world.addr(1, 34380).to_string();
    let server = world.server_with(&[
        "--file-storage",
        &path_arg(&storage),
        "--file-storage-listen",
        &listen,
    ]);
    let member = world.client(11);
    world.wait_registered(&member);
    let content = world.publish(&storage.join("pkg.bin"), &[]);
    Setup {
        world,
        server,
        member,
        listen,
        content,
    }
}

fn sign(s: &Setup, path: &str, expires: &str) -> (bool, String) {
    let (ok, out) = run_err(&[
        "url",
        "sign",
        "--data-dir",
        &path_arg(&s.world.path("server")),
        path,
        "--expires",
        expires,
    ]);
    (ok, out)
}

fn signed_url(s: &Setup, path: &str, expires: &str) -> String {
    let out = std::process::Command::new(common::bin())
        .args([
            "url",
            "sign",
            "--data-dir",
            &path_arg(&s.world.path("server")),
            path,
            "--expires",
            expires,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A signed URL works for anyone until it expires; a changed one never,
/// and `sign` refuses what it must not sign.
fn a_signed_url_works_for_anyone_until_it_expires(s: &Setup, url: &str) {
    let signed = signed_url(s, "/pkg.bin", "3s");
    assert!(signed.starts_with(url), "{signed}");
    assert_eq!(curl(None, &signed, &[]), (200, SIZE));
    let tampered = format!("{}0", &signed[..signed.len() - 1]);
    let tampered = if tampered == signed {
        format!("{}1", &signed[..signed.len() - 1])
    } else {
        tampered
    };
    assert_eq!(curl(None, &tampered, &[]), (403, 0));
    let elsewhere = signed.replace("/pkg.bin", "/unpublished.bin");
    assert_eq!(curl(None, &elsewhere, &[]), (403, 0));
    let (ok, out) = sign(s, "/unpublished.bin", "1h");
    assert!(!ok);
    assert!(
        out.contains("is not a published file of this file storage"),
        "{out}"
    );
    let (ok, out) = sign(s, "/pkg.bin", "30d");
    assert!(!ok);
    assert!(out.contains("between 1 second and 7 days"), "{out}");
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(curl(None, &signed, &[]), (403, 0), "expired");
}

#[test]
fn only_members_and_signed_urls_get_a_byte_and_a_purge_withdraws_at_once() {
    let s = setup(7);
    let url = format!("https://{}/pkg.bin", s.listen);
    // No certificate, no signature: refused, no byte; plain HTTP: nothing.
    assert_eq!(curl(None, &url, &[]), (403, 0));
    assert_eq!(
        curl(None, &format!("http://{}/pkg.bin", s.listen), &[]).1,
        0
    );
    // A member gets it whole; an unpublished file is not found even so.
    assert_eq!(curl(Some(&s.member), &url, &[]), (200, SIZE));
    assert_eq!(
        curl(
            Some(&s.member),
            &format!("https://{}/unpublished.bin", s.listen),
            &[]
        )
        .1,
        0
    );
    a_signed_url_works_for_anyone_until_it_expires(&s, &url);

    // A confidential package is no different: members only.
    let secret = s.world.path("storage/secret.bin");
    make_package(&secret, 64 * 1024, 77);
    let (ok, out) = run_err(&[
        "publish",
        "--data-dir",
        &path_arg(&s.world.path("server")),
        &path_arg(&secret),
        "--confidential",
    ]);
    assert!(ok, "{out}");
    let secret_url = format!("https://{}/secret.bin", s.listen);
    assert_eq!(curl(None, &secret_url, &[]), (403, 0));
    assert_eq!(curl(Some(&s.member), &secret_url, &[]), (200, 64 * 1024));

    // Purge: a fresh signed URL and the member get nothing, at once.
    let fresh = signed_url(&s, "/pkg.bin", "1h");
    assert_eq!(curl(None, &fresh, &["-I"]).0, 200);
    let (ok, out) = run_err(&[
        "purge",
        "--data-dir",
        &path_arg(&s.world.path("server")),
        &s.content,
    ]);
    assert!(ok, "{out}");
    assert_eq!(curl(None, &fresh, &[]).0, 404);
    assert_eq!(curl(Some(&s.member), &url, &[]).0, 404);
    let sent = s.server.status()["file_storage"]["bytes_served"]
        .as_u64()
        .unwrap();
    assert_eq!(
        sent,
        2 * SIZE + 64 * 1024,
        "the member's copies and one signed copy, nothing else"
    );
}

#[test]
fn a_revoked_member_gets_no_byte_from_the_file_storage() {
    let s = setup(8);
    let url = format!("https://{}/pkg.bin", s.listen);
    assert_eq!(curl(Some(&s.member), &url, &[]), (200, SIZE));
    let issued = std::fs::read_dir(s.world.path("server/ca/issued"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("client-11-"))
        .expect("the member's certificate was recorded when it joined");
    let name = issued.trim_end_matches(".serial");
    let (ok, out) = run_err(&[
        "pki",
        "revoke",
        "--ca",
        &path_arg(&s.world.path("server/ca")),
        "--name",
        name,
    ]);
    assert!(ok, "{out}");
    wait_until(
        "the revoked member is refused",
        Duration::from_secs(10),
        || curl(Some(&s.member), &url, &[]).1 == 0,
    );
}

/// Opens `count` TCP connections to `to` spread over `addresses` source
/// addresses of the test's subnet, and keeps them (idle: no TLS, no
/// request). Returns them.
fn idle_flood(world: &World, to: SocketAddr, count: usize, addresses: u8) -> Vec<socket2::Socket> {
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let host = 100 + u8::try_from(i % usize::from(addresses)).unwrap();
        let from = world.addr(host, 0);
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&from.into()).unwrap();
        if socket
            .connect_timeout(&to.into(), Duration::from_secs(2))
            .is_ok()
        {
            held.push(socket);
        }
    }
    held
}

#[test]
fn ten_thousand_idle_connections_leave_an_honest_download_starting_within_a_second() {
    // Room for 10,000 sockets in this process (CI runs as root).
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let room = limit.maximum.map_or(20_000, |hard| hard.max(20_000));
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(room),
            maximum: Some(room),
        },
    )
    .unwrap();
    let s = setup(9);
    let url = format!("https://{}/pkg.bin", s.listen);
    let to: SocketAddr = s.listen.parse().unwrap();
    let started = Instant::now();
    let flood = idle_flood(&s.world, to, 10_000, 50);
    eprintln!(
        "{} idle connections opened in {:?} from 50 addresses",
        flood.len(),
        started.elapsed()
    );
    assert_eq!(
        flood.len(),
        10_000,
        "every connect went through (the rest are closed by the server)"
    );
    // The honest member starts getting bytes within a second.
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download} %{time_starttransfer}",
        ])
        .arg("--cert")
        .arg(s.member.data_dir.join("identity/node.pem"))
        .arg("--key")
        .arg(s.member.data_dir.join("identity/node.key"))
        .arg(&url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let parts: Vec<&str> = said.split_whitespace().collect();
    eprintln!("honest download during the flood: {said}");
    assert_eq!(parts[0], "200", "{said}");
    assert_eq!(parts[1], SIZE.to_string());
    let first_byte: f64 = parts[2].parse().unwrap();
    assert!(first_byte <= 1.0, "the first byte took {first_byte} s");
    let refused = s.server.status()["file_storage"]["connections_refused"]
        .as_u64()
        .unwrap();
    eprintln!("refused or shed at a cap: {refused}");
    assert!(refused >= 10_000 - 1024, "{refused}");
    drop(flood);
}
