//! `publish --confidential`: a content no peer shares, under the cluster
//! PKI (so the server signs what it says about the content, and clients
//! check the signature).
//!
//! Three clients fetch a confidential package at once: every copy is
//! right and came whole from the origin (it served three copies); no
//! client took a byte from a peer or served one. Asked directly, a holder
//! refuses both a piece and the manifest. The server shows the content as
//! confidential and refuses to publish it again as shareable. A shareable
//! package in the same cluster still spreads between the peers.

mod common;

use std::path::Path;

use branchline::tls;
use branchline_actors::wire::{PeerReply, PeerRequest, Refusal};
use branchline_storage::ContentId;
use common::origin::{OriginOptions, TestOrigin};
use common::pki::{ask, config_with_certificate, identity_of, pki};
use common::{Node, World, finish_fetches, make_package, path_arg, run, start_fetches};

const SIZE: usize = 8 * 1024 * 1024;

#[test]
fn a_confidential_content_comes_only_from_the_origin() {
    let world = World::new(31, 17);
    let ca = world.path("ca");
    pki(&["init", &path_arg(&ca)]);
    let secret = world.path("secret.bin");
    let secret_sha = make_package(&secret, SIZE, 17);
    let shared = world.path("shared.bin");
    let shared_sha = make_package(&shared, SIZE, 18);
    let origin = TestOrigin::start(world.addr(2, 0), secret.clone(), OriginOptions::default());
    let server_config = config_with_certificate(&world, &ca, "server", "server");
    let server = world.server_with(&["--config", &server_config]);
    let clients: Vec<_> = [11, 12, 13]
        .into_iter()
        .map(|host| {
            let name = format!("client-{host}");
            let config = config_with_certificate(&world, &ca, "client", &name);
            world.client_at(
                &name,
                world.addr(host, 34760),
                world.server_addr(),
                &["--config", &config],
            )
        })
        .collect();
    for client in &clients {
        world.wait_registered(client);
    }
    let content = world.publish_with(&secret, &[origin.url("secret.bin")], &["--confidential"]);
    finish_fetches(start_fetches(&world, &clients, &content), &secret_sha);

    assert_eq!(
        origin.bytes(),
        3 * SIZE as u64,
        "each client took it whole from the origin"
    );
    for client in &clients {
        let counters = &client.status()["counters"];
        assert_eq!(counters["from_peers"].as_u64(), Some(0), "{}", client.name);
        assert_eq!(
            counters["from_origin"].as_u64(),
            Some(SIZE as u64),
            "{}",
            client.name
        );
        assert_eq!(counters["served"].as_u64(), Some(0), "{}", client.name);
    }
    let view = &server.status()["registry"]["contents"][0];
    assert_eq!(view["confidential"], true);

    a_holder_refuses_a_peer_that_asks_directly(&world, &ca, &content);
    publishing_it_shareable_is_refused(&world, &secret, &origin);
    a_shareable_content_still_spreads_and_stays_shareable(&world, &clients, &shared, &shared_sha);
}

/// A peer of the cluster asking a holder directly is refused a piece and
/// the manifest.
fn a_holder_refuses_a_peer_that_asks_directly(world: &World, ca: &Path, content: &str) {
    let prober = config_with_certificate(world, ca, "client", "prober");
    let identity = identity_of(&prober);
    let id: ContentId = content.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (from, to) = (world.addr(50, 0), world.addr(11, 34760));
    let piece = rt.block_on(ask::<_, PeerReply>(
        from,
        to,
        tls::SERVER_NAME,
        &identity,
        &PeerRequest::GetPiece {
            content: id,
            index: 0,
        },
    ));
    assert_eq!(piece, PeerReply::Refused(Refusal::Confidential));
    let manifest = rt.block_on(ask::<_, PeerReply>(
        from,
        to,
        tls::SERVER_NAME,
        &identity,
        &PeerRequest::GetManifest { content: id },
    ));
    assert_eq!(manifest, PeerReply::Refused(Refusal::Confidential));
}

/// Published again as shareable: refused, naming why.
fn publishing_it_shareable_is_refused(world: &World, secret: &Path, origin: &TestOrigin) {
    let again = run(&[
        "publish".into(),
        "--data-dir".into(),
        path_arg(&world.path("server")),
        path_arg(secret),
        "--origin".into(),
        origin.url("secret.bin"),
    ]);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("already published confidential; purge it first"),
        "{said}"
    );
}

/// A shareable content in the same cluster spreads between peers, and
/// once shared it is never confidential, not even after a purge.
fn a_shareable_content_still_spreads_and_stays_shareable(
    world: &World,
    clients: &[Node],
    shared: &Path,
    shared_sha: &str,
) {
    let shared_origin = TestOrigin::start(
        world.addr(3, 0),
        shared.to_path_buf(),
        OriginOptions::default(),
    );
    let open = world.publish(shared, &[shared_origin.url("shared.bin")]);
    finish_fetches(start_fetches(world, clients, &open), shared_sha);
    let from_peers: u64 = clients
        .iter()
        .map(|c| c.status()["counters"]["from_peers"].as_u64().unwrap())
        .sum();
    assert!(from_peers > 0, "the shareable package went between peers");
    assert!(shared_origin.bytes() < 2 * SIZE as u64);

    // Once shared, never confidential: not even after a purge, since a
    // client that missed the purge may still hold the server's signed
    // word that it is shareable.
    let server_dir = path_arg(&world.path("server"));
    let purged = run(&[
        "purge".into(),
        "--data-dir".into(),
        server_dir.clone(),
        open.clone(),
    ]);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    let again = run(&[
        "publish".into(),
        "--data-dir".into(),
        server_dir,
        path_arg(shared),
        "--origin".into(),
        shared_origin.url("shared.bin"),
        "--confidential".into(),
    ]);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("was published shareable before"), "{said}");
}
