//! Mixed versions: a node of the previous protocol version (B6: ALPN
//! `branchline/1`, frame version 4) reaches today's server and a client,
//! and each refuses it at the handshake with a reason naming both versions,
//! before a frame is read.

mod common;

use std::time::Duration;

use branchline_actors::wire::ServerRequest;
use common::World;

#[test]
fn a_node_of_the_previous_version_is_refused_naming_both_versions() {
    let world = World::new(31, 34);
    let server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let old = common::pki::joined_identity(&world, "old", world.addr(40, 0).ip());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (to, name) in [
        (world.server_addr(), branchline::tls::CONTROL_NAME),
        (world.addr(11, 34760), branchline::tls::SERVER_NAME),
    ] {
        let reason = rt.block_on(async {
            let conn = common::pki::old_node(&old, world.addr(40, 0), to, name).await;
            // It may even send a request of its version: no answer comes.
            if let Ok((mut send, _)) = conn.open_bi().await {
                let _ = branchline_actors::wire::write_frame(
                    &mut send,
                    &ServerRequest::GetRevocations { known: [0; 32] },
                )
                .await;
            }
            tokio::time::timeout(Duration::from_secs(5), conn.closed())
                .await
                .expect("the connection is closed")
        });
        let text = reason.to_string();
        assert!(
            text.contains("protocol version branchline/1 vs branchline/5: upgrade the older node"),
            "{to}: {text}"
        );
    }
    assert!(
        server
            .log()
            .contains("refused a client of another protocol version"),
        "{}",
        server.log()
    );
    the_health_check_flags_the_old_node(&world);
}

/// `branchline health` fails its protocol check and names the old node's
/// address (the console's Health page shows the same report).
fn the_health_check_flags_the_old_node(world: &World) {
    let out = std::process::Command::new(common::bin())
        .args(["health", "--json", "--data-dir"])
        .arg(world.path("server"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a failed check exits non-zero");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions = &report["checks"][1];
    assert_eq!(versions["name"], "protocol versions", "{report}");
    assert_eq!(versions["level"], "fail", "{report}");
    let flagged = versions["flagged"][0].as_str().unwrap();
    assert!(
        flagged.starts_with(&world.addr(40, 0).ip().to_string()),
        "{flagged}"
    );
    assert!(
        flagged.contains("branchline/1 vs branchline/5"),
        "{flagged}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the health check failed"), "{err}");
}
