//! The discovery actor: asks the subnet "who holds content X?" by UDP
//! broadcast and answers such questions, so an office keeps sharing when
//! the server is out of reach. The rules (office types, same subnet only,
//! datagram format) live in `branchline_actors::client::discovery`; this is the
//! socket side.
//!
//! Two sockets: the shared broadcast port (34329 by default, bound to the
//! wildcard address with `SO_REUSEADDR` so every client on a host hears a
//! broadcast), where requests arrive; and the client's own unicast socket,
//! which sends requests and receives the replies addressed to it.
//!
//! Under the cluster PKI every reply is signed with the node's key
//! ([`ReplyTrust`]) and an asker ignores replies that are unsigned or not
//! signed by a member of the cluster, for the question it asked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::discovery::{
    Datagram, MAX_DATAGRAM, broadcast_address, may_ask, same_subnet, should_answer,
};
use branchline_actors::client::store::{Lookup, Store};
use branchline_actors::lock_unpoisoned;
use branchline_actors::messages::Discover;
use branchline_actors::pacing::token_bucket::TokenBucket;
use branchline_actors::wire::PeerHolding;
use branchline_storage::{ContentId, NodeId};

use crate::config::DiscoverySection;
use crate::link_status::LinkStatus;
use crate::tls::{Identity, SERVER_NAME, TlsError};
use crate::vouch::{self, Signer};

/// How replies are signed and checked: with the cluster PKI, each node
/// signs its replies and takes only replies a cluster member signed.
#[derive(Clone)]
pub struct ReplyTrust {
    sign: Signer,
    verifier: Option<Arc<dyn rustls::client::danger::ServerCertVerifier>>,
}

impl ReplyTrust {
    /// With `identity` (the cluster PKI) signed and checked; without,
    /// neither.
    pub fn new(identity: Option<&Identity>) -> Result<Self, TlsError> {
        Ok(ReplyTrust {
            sign: vouch::node_signer(identity)?,
            verifier: identity.map(Identity::server_verifier),
        })
    }

    /// Whether to take a reply that came from `source`: `Err` says why not.
    /// Under the PKI it must be signed by a member of the cluster, by the
    /// node it names (its id is its certificate's), for the address it
    /// came from.
    fn admits(&self, reply: &Datagram, source: SocketAddr) -> Result<(), String> {
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        let (
            Datagram::Reply {
                signature,
                from,
                addr,
                ..
            },
            Some(message),
        ) = (reply, reply.signed_bytes())
        else {
            return Err("not a reply".into());
        };
        let signature = signature.as_ref().ok_or("it is not signed")?;
        vouch::verify(verifier.as_ref(), SERVER_NAME, &message, signature)?;
        if crate::tls::node_id_of(&signature.certificate) != *from {
            return Err(format!("it names node {from}, not its signer"));
        }
        if addr.ip() != source.ip() {
            return Err(format!("it offers {addr} but came from {}", source.ip()));
        }
        Ok(())
    }
}

/// Discovery requests answered per second at most (and at once).
const ANSWERS_PER_SEC: u64 = 100;

/// Longest wait for the store when answering a request.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(2);

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A socket could not be made or bound.
    #[error("discovery: cannot use {what}: {source}")]
    Socket {
        /// Which socket.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No broadcast address is known for the client's address.
    #[error("discovery: no broadcast address for {0}; set discovery.broadcast")]
    NoBroadcast(IpAddr),
}

/// The bound sockets, made before the node starts.
#[derive(Debug)]
pub struct DiscoverySockets {
    listener: UdpSocket,
    unicast: UdpSocket,
    broadcast: SocketAddr,
}

fn socket_error(what: String) -> impl FnOnce(std::io::Error) -> DiscoveryError {
    move |source| DiscoveryError::Socket { what, source }
}

/// Binds the broadcast listener and the unicast socket of a client at `me`.
pub fn bind(settings: &DiscoverySection, me: IpAddr) -> Result<DiscoverySockets, DiscoveryError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let port = settings.port;
    let wildcard = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(socket_error(format!("UDP port {port}")))?;
    listener
        .set_reuse_address(true)
        .and_then(|()| listener.set_broadcast(true))
        .and_then(|()| listener.bind(&wildcard.into()))
        .and_then(|()| listener.set_nonblocking(true))
        .map_err(socket_error(format!("UDP port {port}")))?;
    let unicast = UdpSocket::bind(SocketAddr::new(me, 0))
        .map_err(socket_error(format!("a UDP socket on {me}")))?;
    unicast
        .set_broadcast(true)
        .and_then(|()| unicast.set_nonblocking(true))
        .map_err(socket_error(format!("a UDP socket on {me}")))?;
    let ip = match settings.broadcast {
        Some(ip) => ip,
        None => broadcast_address(me).ok_or(DiscoveryError::NoBroadcast(me))?,
    };
    Ok(DiscoverySockets {
        listener: listener.into(),
        unicast,
        broadcast: SocketAddr::new(ip, port),
    })
}

/// Replies being collected, by the nonce of the question they answer.
type Collecting = Arc<Mutex<HashMap<u64, (ContentId, HashMap<NodeId, PeerHolding>)>>>;

/// A starting nonce that differs between nodes (their ids differ), so
/// questions of two nodes on one host are told apart.
fn me_seed(me: &Me) -> u32 {
    u32::from_le_bytes([me.id.0[0], me.id.0[1], me.id.0[2], me.id.0[3]])
}

/// Who this node is, for discovery.
#[derive(Clone, Debug)]
pub struct Me {
    /// Its id.
    pub id: NodeId,
    /// Its foreground endpoint, given to askers.
    pub foreground: SocketAddr,
}

/// The discovery actor.
pub struct Discovery {
    sockets: Option<(
        Arc<tokio::net::UdpSocket>,
        Arc<tokio::net::UdpSocket>,
        SocketAddr,
    )>,
    me: Me,
    wait: Duration,
    store: Addr<Store>,
    link: Arc<LinkStatus>,
    counters: Arc<Counters>,
    collecting: Collecting,
    next_nonce: u64,
    trust: ReplyTrust,
}

impl Discovery {
    /// Discovery over `sockets` (`None`: disabled, every question gets no
    /// peers). Must be made on the arbiter that runs it.
    pub fn new(
        sockets: Option<DiscoverySockets>,
        me: Me,
        wait: Duration,
        store: Addr<Store>,
        link: Arc<LinkStatus>,
        counters: Arc<Counters>,
        trust: ReplyTrust,
    ) -> std::io::Result<Self> {
        let sockets = match sockets {
            Some(s) => Some((
                Arc::new(tokio::net::UdpSocket::from_std(s.listener)?),
                Arc::new(tokio::net::UdpSocket::from_std(s.unicast)?),
                s.broadcast,
            )),
            None => None,
        };
        let next_nonce = u64::from(me_seed(&me)) << 32;
        Ok(Discovery {
            sockets,
            me,
            wait,
            store,
            link,
            counters,
            collecting: Collecting::default(),
            next_nonce,
            trust,
        })
    }
}

impl Actor for Discovery {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some((listener, unicast, _)) = self.sockets.clone() else {
            return;
        };
        let my_ip = self.me.foreground.ip();
        let answer = Answerer {
            me: self.me.clone(),
            store: self.store.clone(),
            link: self.link.clone(),
            unicast: unicast.clone(),
            sign: self.trust.sign.clone(),
        };
        ctx.spawn(answer_requests(listener, answer, my_ip).into_actor(self));
        let (collecting, trust) = (self.collecting.clone(), self.trust.clone());
        ctx.spawn(collect_replies(unicast, collecting, trust, my_ip).into_actor(self));
    }
}

branchline_actors::supervised_controls!(Discovery);

impl Supervised for Discovery {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("discovery restarting");
    }
}

/// Answers the subnet's requests for a content this node holds. Anyone on
/// the subnet may ask; answering costs a store lookup and (under the PKI)
/// a signature, so answers are rate-limited, and go only to the asker's
/// own subnet.
async fn answer_requests(listener: Arc<tokio::net::UdpSocket>, answer: Answerer, my_ip: IpAddr) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut answers = TokenBucket::new(ANSWERS_PER_SEC, ANSWERS_PER_SEC);
    while let Ok((n, from)) = listener.recv_from(&mut buf).await {
        if let Ok(Datagram::Request {
            nonce,
            from: asker,
            content,
            reply_to,
        }) = Datagram::decode(&buf[..n])
            && asker != answer.me.id
            && same_subnet(my_ip, from.ip())
            && same_subnet(my_ip, reply_to.ip())
            && answers.try_take(1, std::time::Instant::now())
        {
            let answer = answer.clone();
            actix_rt::spawn(async move { answer.reply(nonce, content, reply_to).await });
        }
    }
}

/// Takes the replies to this node's open questions: from its own subnet,
/// admitted by `trust` (signed by a member, under the PKI).
async fn collect_replies(
    unicast: Arc<tokio::net::UdpSocket>,
    collecting: Collecting,
    trust: ReplyTrust,
    my_ip: IpAddr,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Ok((n, from)) = unicast.recv_from(&mut buf).await {
        let Ok(reply) = Datagram::decode(&buf[..n]) else {
            continue;
        };
        let Datagram::Reply {
            nonce,
            from: holder,
            addr,
            content,
            ref have,
            ..
        } = reply
        else {
            continue;
        };
        let asked = |c: &Collecting| {
            lock_unpoisoned(c)
                .get(&nonce)
                .is_some_and(|(a, _)| *a == content)
        };
        // Only replies to a question still open are checked.
        if !same_subnet(my_ip, from.ip()) || !asked(&collecting) {
            continue;
        }
        if let Err(why) = trust.admits(&reply, from) {
            tracing::warn!(%from, %why, "ignored a discovery reply");
            continue;
        }
        if let Some((_, found)) = lock_unpoisoned(&collecting).get_mut(&nonce) {
            found.insert(
                holder,
                PeerHolding {
                    id: holder,
                    addr,
                    have: have.clone(),
                    upstream: false,
                    // No election order without the server.
                    rank: u32::MAX,
                },
            );
        }
    }
}

/// What answering a request needs.
#[derive(Clone)]
struct Answerer {
    me: Me,
    store: Addr<Store>,
    link: Arc<LinkStatus>,
    unicast: Arc<tokio::net::UdpSocket>,
    sign: Signer,
}

impl Answerer {
    async fn reply(&self, nonce: u64, content: ContentId, reply_to: SocketAddr) {
        let kind = self.link.office_kind();
        let have =
            match tokio::time::timeout(LOOKUP_DEADLINE, self.store.send(Lookup(content))).await {
                // A confidential content is never offered to peers.
                Ok(Ok(Ok(Some(cached)))) if !cached.confidential() => cached.have,
                _ => return,
            };
        if !should_answer(kind, &have) {
            return;
        }
        let reply = Datagram::Reply {
            nonce,
            from: self.me.id,
            addr: self.me.foreground,
            content,
            have,
            signature: None,
        }
        .signed(|message| (self.sign)(message));
        if let Some(bytes) = reply.encode() {
            let _ = self.unicast.send_to(&bytes, reply_to).await;
        }
    }
}

impl Handler<Discover> for Discovery {
    type Result = ResponseFuture<Vec<PeerHolding>>;

    fn handle(&mut self, msg: Discover, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        let content = msg.0;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        let nonce = self.next_nonce;
        let Some((_, unicast, broadcast)) = self.sockets.clone() else {
            return Box::pin(async { Vec::new() });
        };
        if !may_ask(self.link.office_kind()) {
            tracing::debug!(%content, "this office type does not broadcast");
            return Box::pin(async { Vec::new() });
        }
        let request = Datagram::Request {
            nonce,
            from: self.me.id,
            content,
            reply_to: unicast
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::new(self.me.foreground.ip(), 0)),
        };
        let (collecting, wait, counters) =
            (self.collecting.clone(), self.wait, self.counters.clone());
        lock_unpoisoned(&collecting).insert(nonce, (content, HashMap::new()));
        Box::pin(async move {
            if let Some(bytes) = request.encode()
                && unicast.send_to(&bytes, broadcast).await.is_ok()
            {
                counters.broadcast_sent();
            }
            tokio::time::sleep(wait).await;
            let found = lock_unpoisoned(&collecting)
                .remove(&nonce)
                .map(|(_, found)| found)
                .unwrap_or_default();
            tracing::debug!(%content, holders = found.len(), "discovery answered");
            found.into_values().collect()
        })
    }
}
