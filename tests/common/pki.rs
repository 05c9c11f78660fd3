//! The cluster PKI from the command line: `branchline pki` and configs
//! holding the `[tls]` section it prints.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{World, path_arg, run};

/// Runs `branchline pki ARGS`; returns its stdout, panics on failure.
pub fn pki(args: &[&str]) -> String {
    let mut all = vec!["pki".to_owned()];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run(&all);
    assert!(
        out.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Issues a certificate and writes a config file holding the `[tls]`
/// section `pki issue` printed.
pub fn config_with_certificate(world: &World, ca: &Path, role: &str, name: &str) -> String {
    let tls = pki(&[
        "issue",
        "--ca",
        &path_arg(ca),
        "--role",
        role,
        "--name",
        name,
    ]);
    let path = world.path(&format!("{name}.toml"));
    std::fs::write(&path, tls).unwrap();
    path_arg(&path)
}

/// [`config_with_certificate`] with `extra` TOML appended (such as a
/// `[registry]` section).
pub fn config_with_certificate_and(
    world: &World,
    ca: &Path,
    role: &str,
    name: &str,
    extra: &str,
) -> String {
    let path = config_with_certificate(world, ca, role, name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push('\n');
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    path
}

/// The identity a config written by [`config_with_certificate`] names, as
/// the test's own peer uses it.
pub fn identity_of(config: &str) -> branchline::tls::Identity {
    branchline::config::load::<branchline::config::ClientConfig>(config.as_ref())
        .unwrap()
        .tls
        .identity()
        .unwrap()
        .unwrap()
}

/// A connection from `from` to `to` (whose certificate must name `name`),
/// made with `identity`, for requests of a test's own.
pub async fn connect_as(
    from: SocketAddr,
    to: SocketAddr,
    name: &str,
    identity: &branchline::tls::Identity,
) -> quinn::Connection {
    use branchline::transport::endpoint;
    let socket = endpoint::bind(from).unwrap();
    let (peer, _) = endpoint::endpoint(
        socket,
        None,
        Some(identity),
        branchline::tls::Admit::Members,
    )
    .unwrap();
    endpoint::connect(&peer, to, name, Duration::from_secs(5))
        .await
        .unwrap()
}

/// Sends one request on its own stream of `conn`; returns the reply.
pub async fn ask_on<Q, R>(conn: &quinn::Connection, request: &Q) -> R
where
    Q: serde::Serialize,
    R: serde::de::DeserializeOwned,
{
    use branchline::transport::exchange::exchange;
    use branchline_actors::wire::MAX_REPLY_FRAME;
    let streams = conn.open_bi().await.unwrap();
    exchange(streams, request, MAX_REPLY_FRAME).await.unwrap().0
}

/// Sends one request over a new connection from `from` to `to` (whose
/// certificate must name `name`) made with `identity`; returns the reply.
pub async fn ask<Q, R>(
    from: SocketAddr,
    to: SocketAddr,
    name: &str,
    identity: &branchline::tls::Identity,
    request: &Q,
) -> R
where
    Q: serde::Serialize,
    R: serde::de::DeserializeOwned,
{
    ask_on(&connect_as(from, to, name, identity).await, request).await
}

/// An identity joined to `world`'s cluster with its join token, as a
/// device gets one (for tests that speak the protocol themselves).
pub fn joined_identity(
    world: &World,
    name: &str,
    bind: std::net::IpAddr,
) -> branchline::tls::Identity {
    let token = world
        .join_token()
        .expect("the world's server makes join tokens")
        .parse()
        .unwrap();
    branchline::join::client::join(&token, world.server_addr(), bind, name, &world.path(name))
        .unwrap()
}

/// Runs `tasks` on a thread of their own (a runtime of its own), for a
/// test's own clients that go on while the test drives the nodes; the
/// handle gives each task's result, in order.
pub fn in_background<F>(tasks: Vec<F>) -> std::thread::JoinHandle<Vec<F::Output>>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let running: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
            let mut all = Vec::new();
            for task in running {
                all.push(task.await.unwrap());
            }
            all
        })
    })
}

/// The registration of a test's own client `id`, named `name`, at `ip`.
pub fn registration(
    id: branchline_storage::NodeId,
    name: String,
    ip: std::net::IpAddr,
) -> branchline_actors::wire::Registration {
    branchline_actors::wire::Registration {
        id,
        name,
        addr: (ip, 34760).into(),
        background: (ip, 34750).into(),
        holdings: vec![],
        attributes: Default::default(),
    }
}

/// What a test's own client asks again and again: a heartbeat, then who
/// holds `content`.
pub fn heartbeat_and_sources(
    id: branchline_storage::NodeId,
    content: branchline_storage::ContentId,
) -> [branchline_actors::wire::ServerRequest; 2] {
    use branchline_actors::wire::{ByteCounters, ServerRequest, SourcesQuery};
    [
        ServerRequest::Heartbeat {
            id,
            attributes: Default::default(),
            counters: ByteCounters::default(),
        },
        ServerRequest::Sources(SourcesQuery {
            id,
            content,
            since: 0,
            want_leases: 0,
            release: vec![],
            stuck: vec![],
            wait_ms: 0,
        }),
    ]
}

/// A B6 node's connection: its certificate, ALPN `branchline/1`.
pub async fn old_node(
    identity: &branchline::tls::Identity,
    bind: std::net::SocketAddr,
    to: std::net::SocketAddr,
    name: &str,
) -> quinn::Connection {
    let mut crypto = branchline::tls::client_config(Some(identity)).unwrap();
    crypto.alpn_protocols = vec![b"branchline/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    let mut endpoint = quinn::Endpoint::client(bind).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    endpoint.connect(to, name).unwrap().await.unwrap()
}
