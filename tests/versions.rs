//! Mixed versions: a node of the previous protocol version (B6: ALPN
//! `branchline/1`, frame version 4) reaches today's server and a client,
//! and each refuses it at the handshake with a reason naming both versions,
//! before a frame is read.

mod common;

use std::sync::Arc;
use std::time::Duration;

use branchline_actors::wire::ServerRequest;
use common::World;

/// A B6 node's connection: its certificate, ALPN `branchline/1`.
async fn old_node(
    identity: &branchline::tls::Identity,
    bind: std::net::SocketAddr,
    to: std::net::SocketAddr,
    name: &str,
) -> quinn::Connection {
    let mut crypto = branchline::tls::client_config(Some(identity)).unwrap();
    crypto.alpn_protocols = vec![b"branchline/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    let mut endpoint = quinn::Endpoint::client(bind).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint.connect(to, name).unwrap().await.unwrap()
}

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
            let conn = old_node(&old, world.addr(40, 0), to, name).await;
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
}
