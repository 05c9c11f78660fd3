//! Building a node's QUIC endpoint: one UDP socket that both accepts (as a
//! server) and connects (as a client), with flow-control windows sized for
//! 1 MiB pieces and several requests in flight.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, EndpointConfig, IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};

use branchline_actors::pacing::busy::LinkPause;
use branchline_actors::pacing::ledbat::LedbatConfig;
use branchline_actors::topology::LinkBelow;
use branchline_actors::topology::link::link_of;

use super::background_cc::{LedbatFactory, MAX_ACK_DELAY};
use crate::tls::{self, Identity};

/// Largest UDP payload Path MTU discovery probes for: a 9000-byte jumbo
/// frame less IPv6 and UDP headers.
const MTU_UPPER_BOUND: u16 = 8952;

/// UDP payload bytes sent before path MTU discovery has run.
const INITIAL_MTU: u16 = 1452;

/// Bytes in the connection ids this node hands out.
const CID_LEN: usize = 4;

/// Kernel socket buffer asked for each way: about 10 ms at 3 Gbit/s.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// A connection with no packet from the peer for this long is dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep-alive interval, well inside [`IDLE_TIMEOUT`].
const KEEP_ALIVE: Duration = Duration::from_secs(3);
/// Bytes of unread probe datagrams a background connection keeps.
const PROBE_BUFFER: usize = 1024;
/// Keep-alive interval of background connections: while the busy pause
/// holds the downloads, keep-alives are what measures the link.
const BACKGROUND_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Streams a peer may have open to us at once on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Why an endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
        /// A hint for the common case.
        hint: &'static str,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// quinn refused the configuration.
    #[error("QUIC configuration failed: {0}")]
    Config(String),
}

/// The background endpoint's settings: its controller, and the busy pause
/// that the connections it opens feed.
#[derive(Clone, Debug)]
pub struct Background {
    /// The delay-based controller's settings; `None`: quinn's CUBIC.
    pub yielding: Option<LedbatConfig>,
    /// The node's busy pause.
    pub pause: LinkPause,
}

/// A transport config; `background` gives the background endpoint's
/// controller and, on the side that dials, the pause its samples feed.
/// The congestion window a foreground or control connection starts with
/// (quinn's default is 10 packets, about 14.7 KB). A first sources answer
/// lists up to 64 office peers and 64 upstream ones with their maps: 25 KB
/// for a 1 GiB content, 64 KB for 4 GiB. Beyond the first window the rest
/// waited for an acknowledgement that the client may delay by 25 ms: with
/// 100,000 clients registered, the sources p99 was 28 ms, 1.4 ms with a
/// larger window (`BENCHMARKS.md`, C2). The background endpoint keeps its
/// own controller.
const INITIAL_WINDOW: u64 = 128 * 1024;

fn transport_config(background: Option<(LedbatConfig, Option<LinkPause>)>) -> TransportConfig {
    let mut t = TransportConfig::default();
    let mut keep_alive = KEEP_ALIVE;
    if let Some((config, pause)) = background {
        t.congestion_controller_factory(Arc::new(LedbatFactory { config, pause }));
        let mut acks = quinn::AckFrequencyConfig::default();
        acks.max_ack_delay(Some(MAX_ACK_DELAY));
        t.ack_frequency_config(Some(acks));
        keep_alive = BACKGROUND_KEEP_ALIVE;
        // Probes (one-byte datagrams) are only acknowledged, never read:
        // quinn drops the oldest beyond this many bytes.
        t.datagram_receive_buffer_size(Some(PROBE_BUFFER));
    } else {
        let mut cubic = quinn::congestion::CubicConfig::default();
        cubic.initial_window(INITIAL_WINDOW);
        t.congestion_controller_factory(Arc::new(cubic));
    }
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS_PER_CONNECTION));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.stream_receive_window(VarInt::from_u32(4 * 1024 * 1024));
    t.receive_window(VarInt::from_u32(32 * 1024 * 1024));
    t.send_window(32 * 1024 * 1024);
    // A peer that stops answering (killed, unplugged) fails its requests
    // after IDLE_TIMEOUT rather than the request timeout.
    t.max_idle_timeout(Some(
        IdleTimeout::try_from(IDLE_TIMEOUT).expect("10 s is a valid idle timeout"),
    ));
    t.keep_alive_interval(Some(keep_alive));
    // Probe for paths that carry jumbo frames (and loopback); on a path
    // with a 1500-byte MTU the probes above it are lost and the search
    // settles at its largest packet.
    let mut mtu = MtuDiscoveryConfig::default();
    mtu.upper_bound(MTU_UPPER_BOUND);
    // Search down to the byte: on a 1500-byte WAN every byte of a packet's
    // headers is about 0.07% of the link.
    mtu.minimum_change(1);
    // Start at what an Ethernet path carries (1500 less IPv6 and UDP) rather
    // than QUIC's 1200: a path that carries less (a VPN) loses those
    // packets, and quinn's black-hole detection drops back to 1200.
    t.initial_mtu(INITIAL_MTU);
    t.mtu_discovery_config(Some(mtu));
    t
}

/// Binds the UDP socket first (outside any runtime), so a port in use is a
/// clear error before anything starts.
pub fn bind(addr: SocketAddr) -> Result<UdpSocket, EndpointError> {
    let socket = UdpSocket::bind(addr).map_err(|source| EndpointError::Bind {
        addr,
        hint: match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another process uses this port; is a node already running?)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (no interface has this address)",
            _ => "",
        },
        source,
    })?;
    enlarge_buffers(&socket);
    Ok(socket)
}

/// Asks for [`SOCKET_BUFFER`] bytes of kernel buffer each way. The kernel
/// caps the request at `net.core.rmem_max` / `wmem_max`; what it granted is
/// logged, since a small receive buffer drops datagrams in bursts and QUIC
/// then takes each drop for congestion.
fn enlarge_buffers(socket: &UdpSocket) {
    let sock = socket2::SockRef::from(socket);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let granted = (sock.recv_buffer_size(), sock.send_buffer_size());
    if let (Ok(recv), Ok(send)) = granted {
        tracing::debug!(recv, send, "UDP socket buffers");
        if recv < SOCKET_BUFFER {
            tracing::info!(
                granted = recv,
                wanted = SOCKET_BUFFER,
                "UDP receive buffer capped by net.core.rmem_max; raise it for fast LANs"
            );
        }
    }
}

/// How an endpoint accepts connections: one server config per congestion
/// controller, made when first needed, with the node's own as the
/// default. The background endpoint picks one per peer, by the office link
/// the peer is behind ([`ServedConfigs::for_peer`]).
pub struct ServedConfigs {
    crypto: Arc<QuicServerConfig>,
    node: Option<LedbatConfig>,
    built: Mutex<HashMap<Option<LedbatConfig>, Arc<quinn::ServerConfig>>>,
}

impl ServedConfigs {
    fn new(
        node: Option<LedbatConfig>,
        identity: Option<&Identity>,
        admit: tls::Admit,
    ) -> Result<Self, EndpointError> {
        let crypto = QuicServerConfig::try_from(tls::server_config(identity, admit)?)
            .map_err(|e| EndpointError::Config(e.to_string()))?;
        Ok(ServedConfigs {
            crypto: Arc::new(crypto),
            node,
            built: Mutex::default(),
        })
    }

    /// The server config whose connections run `controller` (`None`:
    /// CUBIC).
    fn with(&self, controller: Option<LedbatConfig>) -> Arc<quinn::ServerConfig> {
        let mut built = branchline_actors::lock_unpoisoned(&self.built);
        built
            .entry(controller)
            .or_insert_with(|| {
                let mut server = quinn::ServerConfig::with_crypto(self.crypto.clone());
                server.transport_config(Arc::new(transport_config(controller.map(|c| (c, None)))));
                Arc::new(server)
            })
            .clone()
    }

    /// The server config for a peer at `addr`: the controller of the link
    /// it is behind (`links`, from the server), else the node's own.
    pub fn for_peer(&self, links: &[LinkBelow], addr: IpAddr) -> Arc<quinn::ServerConfig> {
        let controller = link_of(links, addr).map_or(self.node, |link| link.controller(self.node));
        self.with(controller)
    }
}

/// Makes the endpoint on a bound socket; with `background` yielding, its
/// connections (both ways) use the delay-based controller instead of
/// quinn's CUBIC, and those it opens feed the busy pause; with `identity`
/// (the cluster PKI), mutual TLS both ways. Must run inside
/// the tokio runtime (the actix arbiter) that will drive it. Also returns
/// its server configs, for accepting with another controller.
pub fn endpoint(
    socket: UdpSocket,
    background: Option<Background>,
    identity: Option<&Identity>,
    admit: tls::Admit,
) -> Result<(Endpoint, Arc<ServedConfigs>), EndpointError> {
    let yielding = background.as_ref().and_then(|b| b.yielding);
    let pause = background.map(|b| b.pause);
    let dialled = Arc::new(transport_config(yielding.map(|c| (c, pause))));
    let served = Arc::new(ServedConfigs::new(yielding, identity, admit)?);
    let server = Arc::unwrap_or_clone(served.with(yielding));
    let client_crypto = QuicClientConfig::try_from(tls::client_config(identity)?)
        .map_err(|e| EndpointError::Config(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
    client.transport_config(dialled);
    let mut endpoint_config = EndpointConfig::default();
    // 4-byte connection ids instead of quinn's 8: every packet carries one,
    // and a node has at most a few thousand connections.
    endpoint_config
        .cid_generator(|| Box::new(quinn_proto::RandomConnectionIdGenerator::new(CID_LEN)));
    endpoint_config
        .max_udp_payload_size(MTU_UPPER_BOUND)
        .map_err(|e| EndpointError::Config(e.to_string()))?;
    let mut endpoint = Endpoint::new(
        endpoint_config,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| EndpointError::Config(e.to_string()))?;
    endpoint.set_default_client_config(client);
    Ok((endpoint, served))
}

/// Why a connection or a stream to a node could not be had.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DialError {
    /// The dial could not start (a bad address, the endpoint closed).
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    /// The handshake or the connection failed.
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    /// Nothing answered within the deadline.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// Another caller's dial failed a moment ago; it answers for this one.
    #[error("{reason} ({ms} ms ago)")]
    Recently {
        /// Why that dial failed.
        reason: Box<DialError>,
        /// How long ago.
        ms: u128,
    },
}

/// Connects to `addr`, whose certificate must carry `name` (with the
/// cluster PKI), with a deadline.
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    name: &str,
    deadline: Duration,
) -> Result<quinn::Connection, DialError> {
    let connecting = endpoint.connect(addr, name)?;
    match tokio::time::timeout(deadline, connecting).await {
        Ok(connected) => Ok(connected?),
        Err(_) => Err(DialError::Timeout(deadline)),
    }
}
