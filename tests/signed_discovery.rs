//! Discovery replies under the cluster PKI. The server is down, so a
//! client finds the content's holders by broadcast. An impostor in the
//! same subnet (this test, listening on the discovery port) answers every
//! question at once with two forged replies claiming every piece: one
//! unsigned, one signed with a certificate of another CA. The client
//! ignores both, naming why, and takes the manifest and the pieces from
//! the real holder, whose reply it checked.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use branchline::vouch;
use branchline_actors::client::discovery::Datagram;
use branchline_storage::PieceMap;
use common::origin::{OriginOptions, TestOrigin};
use common::pki::{config_with_certificate, config_with_certificate_and, identity_of, pki};
use common::{World, finish_fetch, make_package, path_arg, sha256_file, wait_until};

const SIZE: usize = 8 * 1024 * 1024;

/// Listens on the discovery port like every client of the host does, and
/// answers each question from `subnet` with the forged replies.
fn impostor(subnet: [u8; 3], sign: vouch::Signer) -> std::thread::JoinHandle<u32> {
    use socket2::{Domain, Protocol, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    listener.set_reuse_address(true).unwrap();
    listener
        .bind(&SocketAddr::from(([0, 0, 0, 0], 34329)).into())
        .unwrap();
    let listener: UdpSocket = listener.into();
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let me = SocketAddr::from(([subnet[0], subnet[1], subnet[2], 66], 0));
    let sender = UdpSocket::bind(me).unwrap();
    std::thread::spawn(move || {
        let (mut answered, mut buf) = (0, vec![0u8; 65536]);
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < until && answered < 2 {
            let Ok((n, from)) = listener.recv_from(&mut buf) else {
                continue;
            };
            let from_subnet =
                matches!(from.ip(), std::net::IpAddr::V4(v4) if v4.octets()[..3] == subnet);
            let Ok(Datagram::Request {
                nonce,
                content,
                reply_to,
                ..
            }) = Datagram::decode(&buf[..n])
            else {
                continue;
            };
            if !from_subnet {
                continue;
            }
            let unsigned = Datagram::Reply {
                nonce,
                from: branchline_storage::NodeId([0x66; 16]),
                addr: SocketAddr::from(([subnet[0], subnet[1], subnet[2], 66], 34760)),
                content,
                have: PieceMap::full(8),
                signature: None,
            };
            let foreign = unsigned.clone().signed(|message| sign(message));
            for reply in [unsigned, foreign] {
                sender.send_to(&reply.encode().unwrap(), reply_to).unwrap();
            }
            answered += 1;
        }
        answered
    })
}

#[test]
fn forged_discovery_replies_are_ignored_and_the_signed_one_taken() {
    let world = World::new(31, 20);
    let ca = world.path("ca");
    pki(&["init", &path_arg(&ca)]);
    let other_ca = world.path("other-ca");
    pki(&["init", &path_arg(&other_ca)]);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 20);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server_config = config_with_certificate_and(
        &world,
        &ca,
        "server",
        "server",
        "[registry]\nheartbeat_secs = 1\n",
    );
    let mut server = world.server_with(&["--config", &server_config]);
    let [a, b] = [("a", 11), ("b", 12)].map(|(name, host)| {
        let config = config_with_certificate(&world, &ca, "client", name);
        world.client_at(
            name,
            world.addr(host, 34760),
            world.server_addr(),
            &["--config", &config],
        )
    });
    for client in [&a, &b] {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    finish_fetch(world.start_fetch(&a, &content, &world.path("a.out")));
    server.kill();
    wait_until("b sees the server gone", Duration::from_secs(20), || {
        b.status()["registered"] == false
    });

    let mallory = config_with_certificate(&world, &other_ca, "client", "mallory");
    let identity = identity_of(&mallory);
    let forger = impostor(world.subnet, vouch::node_signer(Some(&identity)).unwrap());
    let out = world.path("b.out");
    finish_fetch(world.start_fetch(&b, &content, &out));
    assert_eq!(sha256_file(&out), sha);
    assert!(forger.join().unwrap() >= 1, "the impostor answered");
    let log = b.log();
    let ignored: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ignored a discovery reply"))
        .collect();
    assert!(
        ignored.iter().any(|l| l.contains("it is not signed")),
        "{log}"
    );
    assert!(
        ignored.iter().any(|l| l.contains("not a cluster member's")),
        "{log}"
    );
    assert_eq!(
        b.status()["counters"]["from_peers"].as_u64(),
        Some(SIZE as u64),
        "every piece came from a, found by its signed reply"
    );
}
