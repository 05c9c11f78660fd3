//! The transport: a node's QUIC endpoint and its peer sessions.
//!
//! The [`Transport`] actor owns the endpoint, accepts connections and keeps
//! one [`PeerSession`] actor per remote peer (by address), which both
//! serves the peer's requests and carries this node's requests to it. It
//! runs on its own arbiter: nothing blocking runs there, so the endpoint's
//! driver is never held up.
//!
//! A client runs two: the **foreground** transport on its office's LAN
//! (port 34760) and the **background** transport for transfers between
//! offices (port 34750), so WAN traffic has its own endpoint, port and
//! (in B5) its own congestion controller.

pub mod admission;
pub mod background_cc;
pub mod connection_slot;
pub mod endpoint;
pub mod exchange;
pub mod peer_session;
pub mod request_rate;
pub mod session_stats;
#[cfg(debug_assertions)]
pub mod test_fault;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::link_status::LinkStatus;
use crate::revocation::Trust;

use actix::prelude::*;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::store::Store;
use branchline_actors::messages::{FetchError, FetchFromPeer, FetchManifest};
use branchline_actors::supervision::ActorBook;
use branchline_actors::wire::PeerView;
use branchline_storage::Manifest;
use branchline_storage::publication::SignedPublication;
use bytes::Bytes;

use admission::SharedAdmission;
use endpoint::ServedConfigs;
use peer_session::{Attach, PeerSession};
use session_stats::SessionStats;

/// Messages the transport's mailbox holds at most.
pub const TRANSPORT_MAILBOX: usize = 1024;
/// QUIC error code sent when a connection is refused for load.
const BUSY: u32 = 1;
/// How often the background transport adds up what its connections received.
const WIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What the transport needs.
#[derive(Clone)]
pub struct TransportDeps {
    /// The endpoint.
    pub endpoint: quinn::Endpoint,
    /// The node's store.
    pub store: Addr<Store>,
    /// The node's counters.
    pub counters: Arc<Counters>,
    /// What the server link knows: whether this node's office serves.
    pub link: Arc<LinkStatus>,
    /// The background endpoint (between offices), not the foreground one.
    pub background: bool,
    /// Sessions probe the connections they dial (for the busy pause, whose
    /// samples only the delay-based controller takes).
    pub probe: bool,
    /// How the endpoint accepts: on the background endpoint, each peer
    /// gets the controller of the office link it is behind.
    pub served: Arc<ServedConfigs>,
    /// Open connections per peer address, capped (kept across restarts of
    /// the transport, as the connections are).
    pub admission: SharedAdmission,
    /// Piece requests one peer session may make per second (and at once);
    /// more are refused as busy.
    pub requests_per_sec: u64,
    /// Where the node lists its short-lived actors.
    pub book: ActorBook,
    /// With the cluster PKI: the CA and the revocation list in force;
    /// connections of a peer revoked while connected are closed.
    pub trust: Option<Arc<Trust>>,
}

/// The transport actor.
pub struct Transport {
    deps: TransportDeps,
    sessions: HashMap<SocketAddr, (Addr<PeerSession>, Arc<SessionStats>)>,
}

impl Transport {
    /// A transport over an endpoint.
    pub fn new(deps: TransportDeps) -> Self {
        Transport {
            deps,
            sessions: HashMap::new(),
        }
    }

    fn session(&mut self, addr: SocketAddr) -> Addr<PeerSession> {
        if let Some((session, _)) = self.sessions.get(&addr).filter(|(s, _)| s.connected()) {
            return session.clone();
        }
        // A peer's numbers outlive its sessions: a new session after a
        // drop or a restart counts on.
        let stats = self
            .sessions
            .get(&addr)
            .map(|(_, stats)| stats.clone())
            .unwrap_or_default();
        let counted = stats.clone();
        let deps = self.deps.clone();
        let (name, parent) = match self.deps.background {
            true => (format!("wan-peer-{addr}"), "background-transport"),
            false => (format!("peer-{addr}"), "transport"),
        };
        let session = self
            .deps
            .book
            .start("peer-session", name, parent, move |_| {
                PeerSession::new(addr, deps, counted)
            });
        self.sessions.insert(addr, (session.clone(), stats));
        session
    }
}

impl Actor for Transport {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(TRANSPORT_MAILBOX);
        if self.deps.background {
            // What the link into the office carried for this node, by QUIC's
            // count, for the ledger (sent with the heartbeat).
            ctx.run_interval(WIRE_EVERY, |act, _| {
                let total = act
                    .sessions
                    .values()
                    .map(|(_, stats)| stats.wire_received_on_dialled())
                    .sum();
                act.deps.counters.set_wire_from_parent(total);
            });
        }
        let endpoint = self.deps.endpoint.clone();
        let me = ctx.address();
        let (served, link, background, admission, trust) = (
            self.deps.served.clone(),
            self.deps.link.clone(),
            self.deps.background,
            self.deps.admission.clone(),
            self.deps.trust.clone(),
        );
        // The accept loop; dropped and made again if the actor restarts.
        ctx.spawn(
            async move {
                while let Some(incoming) = endpoint.accept().await {
                    let ip = incoming.remote_address().ip();
                    if !branchline_actors::lock_unpoisoned(&admission).try_admit(ip) {
                        tracing::debug!(%ip, "refused a connection: the peer has its cap of open connections");
                        incoming.refuse();
                        continue;
                    }
                    let me = me.clone();
                    let admission = admission.clone();
                    let accepting = if background {
                        let links = link.office().map(|o| o.links_below).unwrap_or_default();
                        let config = served.for_peer(&links, ip);
                        incoming.accept_with(config)
                    } else {
                        incoming.accept()
                    };
                    let trust = trust.clone();
                    actix_rt::spawn(async move {
                        let connected = match accepting {
                            Ok(connecting) => connecting.await,
                            Err(e) => Err(e),
                        };
                        match connected {
                            Ok(conn) if crate::tls::check_version(&conn).is_err() => {
                                tracing::warn!(peer = %conn.remote_address(), "refused a peer of another protocol version");
                            }
                            Ok(conn) => {
                                if me.try_send(Incoming(conn.clone())).is_err() {
                                    conn.close(BUSY.into(), b"busy");
                                }
                                if let Some(trust) = trust {
                                    trust.guard(conn.clone(), None).await;
                                }
                                conn.closed().await;
                            }
                            Err(e) => tracing::debug!(error = %e, "incoming handshake failed"),
                        }
                        branchline_actors::lock_unpoisoned(&admission).release(ip);
                    });
                }
            }
            .into_actor(self),
        );
    }
}

branchline_actors::supervised_controls!(Transport);

impl Supervised for Transport {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("transport restarting");
    }
}

/// A connection a peer opened to us.
#[derive(Message)]
#[rtype(result = "()")]
struct Incoming(quinn::Connection);

impl Handler<Incoming> for Transport {
    type Result = ();
    fn handle(&mut self, msg: Incoming, _: &mut Context<Self>) {
        branchline_actors::supervision::handled();
        let addr = msg.0.remote_address();
        if let Err(e) = self.session(addr).try_send(Attach(msg.0.clone())) {
            tracing::warn!(%addr, error = %e, "peer session busy; refusing the connection");
            msg.0.close(BUSY.into(), b"busy");
        }
    }
}

impl Transport {
    /// Hands a request for the peer at `addr` to its session.
    fn forward<M, T>(&mut self, addr: SocketAddr, msg: M) -> ResponseFuture<Result<T, FetchError>>
    where
        M: Message<Result = Result<T, FetchError>> + Send + 'static,
        T: Send + 'static,
        PeerSession: Handler<M>,
    {
        let session = self.session(addr);
        Box::pin(async move {
            session
                .send(msg)
                .await
                .map_err(|e| FetchError::Unreachable(format!("peer session: {e}")))?
        })
    }
}

impl Handler<FetchManifest> for Transport {
    type Result = ResponseFuture<Result<(Manifest, SignedPublication), FetchError>>;
    fn handle(&mut self, msg: FetchManifest, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        self.forward(msg.addr, msg)
    }
}

impl Handler<FetchFromPeer> for Transport {
    type Result = ResponseFuture<Result<Bytes, FetchError>>;
    fn handle(&mut self, msg: FetchFromPeer, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        self.forward(msg.addr, msg)
    }
}

/// The peers this transport has sessions with, and the bytes moved.
#[derive(Message)]
#[rtype(result = "Vec<PeerView>")]
pub struct ListPeers;

impl Handler<ListPeers> for Transport {
    type Result = MessageResult<ListPeers>;
    fn handle(&mut self, _: ListPeers, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        let background = self.deps.background;
        MessageResult(
            self.sessions
                .iter()
                .filter(|(_, (session, _))| session.connected())
                .map(|(addr, (_, stats))| {
                    let (received, served) = stats.bytes();
                    PeerView {
                        addr: *addr,
                        background,
                        received,
                        served,
                        wire: stats.wire(),
                        serving_controller: stats.serving_controller(),
                    }
                })
                .collect(),
        )
    }
}
