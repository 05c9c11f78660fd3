//! The cluster PKI. `branchline pki init` makes a CA and `pki issue` node
//! certificates; a server and two clients holding them share a package
//! under mutual TLS. A client whose certificate another CA signed, a
//! client whose certificate was revoked (`pki revoke`, the list given to
//! every node), and a client with none, are refused by the server (never
//! registered) and by the clients they find by broadcast (no piece, no
//! manifest): they get no content byte. A client certificate cannot pose
//! as the server.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::origin::{OriginOptions, TestOrigin};
use common::pki::{ask, config_with_certificate, identity_of, pki};
use common::{Node, World, finish_fetch, make_package, path_arg, run, sha256_file};

const SIZE: usize = 8 * 1024 * 1024;

/// Waits up to `deadline` for a fetch that must not succeed.
fn fetch_fails(mut fetch: Child, deadline: Duration) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Some(status) = fetch.try_wait().unwrap() {
            assert!(!status.success(), "the fetch succeeded");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    fetch.kill().unwrap();
    fetch.wait().unwrap();
}

fn assert_got_nothing(world: &World, outsider: &Node, content: &str) {
    let out = world.path(&format!("{}.out", outsider.name));
    fetch_fails(
        world.start_fetch(outsider, content, &out),
        Duration::from_secs(15),
    );
    let status = outsider.status();
    assert_eq!(status["registered"], false, "{}", outsider.name);
    let counters = &status["counters"];
    for key in ["from_peers", "from_parent", "from_origin"] {
        assert_eq!(counters[key].as_u64(), Some(0), "{}: {key}", outsider.name);
    }
    assert!(!out.exists(), "no output for {}", outsider.name);
}

#[test]
fn only_nodes_the_cluster_ca_signed_take_part() {
    let world = World::new(38, 1);
    let ca = world.path("ca");
    let other_ca = world.path("other-ca");
    let eve_config = the_cas_are_made_and_eve_revoked(&world, &ca, &other_ca);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 38);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server_config = config_with_certificate(&world, &ca, "server", "server");
    assert!(
        std::fs::read_to_string(&server_config)
            .unwrap()
            .contains("\ncrl = ")
    );
    let server = world.server_with(&["--config", &server_config]);
    let mut members = Vec::new();
    for (name, host) in [("a", 11), ("b", 12)] {
        let config = config_with_certificate(&world, &ca, "client", name);
        let client = world.client_at(
            name,
            world.addr(host, 34760),
            world.server_addr(),
            &["--config", &config],
        );
        world.wait_registered(&client);
        members.push(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    for client in &members {
        let out = world.path(&format!("{}.out", client.name));
        finish_fetch(world.start_fetch(client, &content, &out));
        assert_eq!(sha256_file(&out), sha, "{}", client.name);
    }

    outsiders_get_nothing(&world, &ca, &other_ca, &eve_config, &content);
    assert_eq!(
        server.client_names(),
        ["a", "b"],
        "only the CA's clients registered"
    );
    a_client_certificate_cannot_pose_as_the_server(&world, &ca);
}

/// `pki init` makes the cluster's CA and another, and refuses to
/// overwrite one; `pki revoke` revokes eve and refuses a name it never
/// issued. Returns eve's config.
fn the_cas_are_made_and_eve_revoked(world: &World, ca: &Path, other_ca: &Path) -> String {
    let made = pki(&["init", &path_arg(ca)]);
    assert!(made.contains("ca.pem"), "{made}");
    // A second init on the same directory is refused.
    let again = run(&["pki".into(), "init".into(), path_arg(ca)]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    pki(&["init", &path_arg(other_ca)]);
    // Eve's certificate is revoked before the others are issued, so the
    // `[tls]` sections printed for them name the revocation list.
    let eve_config = config_with_certificate(world, ca, "client", "eve");
    let revoked = pki(&["revoke", "--ca", &path_arg(ca), "--name", "eve"]);
    assert!(revoked.contains("crl.pem"), "{revoked}");
    let unknown = run(&[
        "pki".into(),
        "revoke".into(),
        "--ca".into(),
        path_arg(ca),
        "--name".into(),
        "nobody".into(),
    ]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no certificate was issued to `nobody`"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    eve_config
}

/// Another CA's certificate (while trusting the cluster's CA, so it is
/// the server and the peers that refuse it), none at all, and a revoked
/// one: refused everywhere.
fn outsiders_get_nothing(
    world: &World,
    ca: &Path,
    other_ca: &Path,
    eve_config: &str,
    content: &str,
) {
    let foreign = config_with_certificate(world, other_ca, "client", "mallory");
    let text = std::fs::read_to_string(&foreign).unwrap();
    let trusting = text.replace(
        &path_arg(&other_ca.join("ca.pem")),
        &path_arg(&ca.join("ca.pem")),
    );
    assert_ne!(text, trusting);
    std::fs::write(&foreign, trusting).unwrap();
    let mallory = world.client_at(
        "mallory",
        world.addr(13, 34760),
        world.server_addr(),
        &["--config", &foreign],
    );
    // A node with no certificate at all must say so: insecure = true.
    let insecure = world.path("anonymous.toml");
    std::fs::write(&insecure, "insecure = true\n").unwrap();
    let anonymous = world.client_at(
        "anonymous",
        world.addr(14, 34760),
        world.server_addr(),
        &["--config", &path_arg(&insecure)],
    );
    let eve = world.client_at(
        "eve",
        world.addr(15, 34760),
        world.server_addr(),
        &["--config", eve_config],
    );
    for outsider in [&mallory, &anonymous, &eve] {
        assert_got_nothing(world, outsider, content);
    }
}

/// A client certificate cannot pose as the server: a "server" holding
/// one is refused by the clients.
fn a_client_certificate_cannot_pose_as_the_server(world: &World, ca: &Path) {
    let imposter_config = config_with_certificate(world, ca, "client", "imposter");
    let imposter_world = World::new(38, 2);
    let imposter = imposter_world.server_with(&["--config", &imposter_config]);
    let victim_config = config_with_certificate(world, ca, "client", "victim");
    let victim = imposter_world.client_at(
        "victim",
        imposter_world.addr(11, 34760),
        imposter_world.server_addr(),
        &["--config", &victim_config],
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(victim.status()["registered"], false);
    assert_eq!(
        imposter.status()["registry"]["clients"],
        serde_json::json!([]),
        "the victim never registered with the imposter"
    );
}

#[test]
fn a_client_speaks_only_for_the_node_its_certificate_names() {
    use branchline_actors::wire::{ServerReply, ServerRequest};
    use branchline_storage::NodeId;
    let world = World::new(38, 3);
    let ca = world.path("ca");
    pki(&["init", &path_arg(&ca)]);
    let server_config = config_with_certificate(&world, &ca, "server", "server");
    let server = world.server_with(&["--config", &server_config]);
    let config = config_with_certificate(&world, &ca, "client", "a");
    let a = world.client_at(
        "a",
        world.addr(11, 34760),
        world.server_addr(),
        &["--config", &config],
    );
    world.wait_registered(&a);
    let a_id = NodeId(
        branchline_storage::hex_id::parse_hex::<16>(a.status()["id"].as_str().unwrap()).unwrap(),
    );
    // Under the PKI a node's id is the one its certificate gives.
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let a_cert = CertificateDer::from_pem_file(ca.join("a.pem")).unwrap();
    assert_eq!(a_id, branchline::tls::node_id_of(&a_cert));

    // Another client of the cluster reports a as unresponsive, in a's name.
    let forger = config_with_certificate(&world, &ca, "client", "forger");
    let identity = identity_of(&forger);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let forged = ServerRequest::Unresponsive {
        id: a_id,
        peer: a_id,
    };
    match rt.block_on(ask::<_, ServerReply>(
        world.addr(60, 0),
        world.server_addr(),
        branchline::tls::CONTROL_NAME,
        &identity,
        &forged,
    )) {
        ServerReply::Error(e) => assert!(e.contains("a client speaks only for itself"), "{e}"),
        other => panic!("a forged report was taken: {other:?}"),
    }
    // In its own name the request reaches the registry (which does not
    // know the forger).
    let own = ServerRequest::Unresponsive {
        id: identity.node_id(),
        peer: a_id,
    };
    let reply = rt.block_on(ask::<_, ServerReply>(
        world.addr(61, 0),
        world.server_addr(),
        branchline::tls::CONTROL_NAME,
        &identity,
        &own,
    ));
    assert!(
        !matches!(&reply, ServerReply::Error(e) if e.contains("speaks only for itself")),
        "{reply:?}"
    );
    assert_eq!(
        server.status()["registry"]["clients"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        server
            .log()
            .contains("refused a request made for another node")
    );
}
