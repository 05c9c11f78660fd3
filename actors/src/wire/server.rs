//! Client to server: registration, heartbeats, sources queries, have
//! reports, joining the cluster, and the server's answers.

use std::net::SocketAddr;

use branchline_storage::publication::SignedPublication;
use branchline_storage::{ContentId, ContentRecord, NodeId, PieceMap};
use serde::{Deserialize, Serialize};

use crate::server::election::Attributes;
use crate::topology::{LinkBelow, LinkSettings, OfficeKind};

/// A client registering with the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The client's id.
    pub id: NodeId,
    /// A name for people.
    pub name: String,
    /// Where peers of its office reach the client (foreground protocol).
    pub addr: SocketAddr,
    /// Where RVPs of child offices reach it (background protocol).
    pub background: SocketAddr,
    /// What the client holds, so the server knows after its own restart.
    pub holdings: Vec<(ContentId, PieceMap)>,
    /// What it reports about itself for elections.
    pub attributes: Attributes,
}

/// A client's office, as the server tells it at registration and at every
/// heartbeat (RVPs change when members come and go).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficeInfo {
    /// The office's name.
    pub name: String,
    /// Its type.
    pub kind: OfficeKind,
    /// Its elected RVPs, best first.
    pub rvps: Vec<NodeId>,
    /// To an RVP: contents its office's clients want that it does not hold
    /// whole, to pull into the office.
    pub wanted: Vec<ContentId>,
    /// The number of the server's last purge: a client that has seen
    /// fewer asks for the rest (`GetPurges`) and drops those contents.
    pub purge_seq: u64,
    /// The offices below and their links' settings, when one of them sets
    /// the sending side's (see [`Topology::links_below`]).
    ///
    /// [`Topology::links_below`]: crate::topology::Topology::links_below
    pub links_below: Vec<LinkBelow>,
    /// Under the cluster PKI, the digest of the revocation list the server
    /// has in force (the control endpoint sets it); a client whose own
    /// differs asks for the list (`GetRevocations`).
    pub revocations: Option<[u8; 32]>,
}

/// "Who holds which pieces of X", long-polled: the server answers at once if
/// anything changed since `since`, or grants origin leases, and otherwise
/// waits up to `wait_ms` for a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcesQuery {
    /// Who asks.
    pub id: NodeId,
    /// The content.
    pub content: ContentId,
    /// The version of the last answer seen (0 for none).
    pub since: u64,
    /// How many more pieces the asker would fetch from the origin now.
    pub want_leases: u32,
    /// Leases the asker gives back (it could not fetch those pieces).
    pub release: Vec<u32>,
    /// Pieces the asker's peers claim but kept failing to deliver past its
    /// deadline (at most [`crate::client::stuck::MAX_STUCK_PER_QUERY`] are read):
    /// they may be leased from the origin although peers hold them.
    pub stuck: Vec<u32>,
    /// Longest wait for a change, in ms (the server caps it).
    pub wait_ms: u32,
}

impl SourcesQuery {
    /// Whether it only gives leases back (a transfer that ended): it asks
    /// for nothing, waits for nothing, and does not make the content
    /// wanted again.
    pub fn only_gives_back(&self) -> bool {
        !self.release.is_empty() && self.want_leases == 0 && self.wait_ms == 0
    }
}

/// Another client and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHolding {
    /// The peer.
    pub id: NodeId,
    /// Where to reach it: its foreground endpoint, or its background
    /// endpoint when `upstream`.
    pub addr: SocketAddr,
    /// What it holds.
    pub have: PieceMap,
    /// In the office up the tree: fetched across the WAN, and only for
    /// pieces no peer of the asker's own office holds.
    pub upstream: bool,
    /// Its place in its office's election order (0 is best): between peers
    /// equally busy, the better ranked is asked first.
    pub rank: u32,
}

/// What a sources answer says about a peer's pieces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaveUpdate {
    /// Everything it holds.
    Whole(PieceMap),
    /// Pieces it gained since the answer's `base` (possibly none, when only
    /// its address or rank changed).
    Gained(Vec<u32>),
}

/// A peer in a sources answer: who, where, and its pieces or what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerUpdate {
    /// The peer.
    pub id: NodeId,
    /// Where to reach it (see [`PeerHolding::addr`]).
    pub addr: SocketAddr,
    /// In the office up the tree (see [`PeerHolding::upstream`]).
    pub upstream: bool,
    /// Its place in its office's election order.
    pub rank: u32,
    /// What it holds, or what it gained.
    pub have: HaveUpdate,
}

/// The answer to a [`SourcesQuery`]. A complete answer (`base` 0) lists
/// every source; a delta answer lists only what changed since the answer
/// of version `base`, which the asker saw: peers that gained pieces or
/// moved, peers that are `gone`, and the leases only if they changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcesAnswer {
    /// Version of the holdings and leases of this content.
    pub version: u64,
    /// 0 for a complete answer; else the version this delta applies to.
    pub base: u64,
    /// Other clients holding at least one piece, or those that changed.
    pub peers: Vec<PeerUpdate>,
    /// Peers no longer listed (delta answers only).
    pub gone: Vec<NodeId>,
    /// Pieces another client is fetching from the origin right now; `None`
    /// in a delta answer when unchanged.
    pub leased_elsewhere: Option<PieceMap>,
    /// Pieces this client may fetch from the origin (its leases, old and new).
    pub granted: Vec<u32>,
    /// The link from the upstream office into the asker's office, when
    /// the answer lists upstream peers.
    pub upstream_link: Option<UpstreamLink>,
}

/// The link from the office above into the asker's office: its caps and
/// its background settings (the asker's office's row of the topology).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpstreamLink {
    /// The cap on the link, Mbit/s (`wan_rate_mbit`).
    pub max_rate_mbit: Option<u32>,
    /// The rest of its settings.
    pub settings: LinkSettings,
}

impl SourcesAnswer {
    /// Whether this answer was made from a subnet broadcast while the
    /// server was out of reach (see [`SourcesAnswer::discovered`]).
    pub fn is_discovered(&self) -> bool {
        self.version == 0
    }

    /// A complete answer from peers found by broadcast while the server is
    /// out of reach: version 0, so the next question to the server asks
    /// for a complete answer.
    pub fn discovered(peers: Vec<PeerHolding>) -> Self {
        SourcesAnswer {
            version: 0,
            base: 0,
            peers: peers
                .into_iter()
                .map(|p| PeerUpdate {
                    id: p.id,
                    addr: p.addr,
                    upstream: p.upstream,
                    rank: p.rank,
                    have: HaveUpdate::Whole(p.have),
                })
                .collect(),
            gone: Vec::new(),
            leased_elsewhere: None,
            granted: Vec::new(),
            upstream_link: None,
        }
    }

    /// This answer as the asker sees it. While a long-poll lasts the server
    /// keeps back answers that change nothing and composes the next one
    /// against the last kept back (`kept_back`); the asker saw `asked`, and
    /// nothing it knows changed in between, so a delta against `kept_back`
    /// applies to what it knows as it is.
    pub fn rebased(mut self, kept_back: u64, asked: u64) -> Self {
        if self.base != 0 && self.base == kept_back {
            self.base = asked;
        }
        self
    }

    /// A delta answer that changes nothing the asker knows: the server
    /// keeps such an answer back while the long-poll lasts.
    pub fn changes_nothing(&self) -> bool {
        self.base != 0
            && self.peers.is_empty()
            && self.gone.is_empty()
            && self.leased_elsewhere.is_none()
    }
}

/// What a client asks the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerRequest {
    /// Register (or register again after a server restart).
    Register(Registration),
    /// I am alive, and this is how I am now.
    Heartbeat {
        /// Who.
        id: NodeId,
        /// Its current attributes (free space and uptime move).
        attributes: Attributes,
        /// Its byte counters, for the per-link ledger.
        counters: ByteCounters,
    },
    /// Send the CA's revocation list, unless it is the one known (by its
    /// SHA-256 digest). Answered by the control endpoint itself.
    GetRevocations {
        /// The digest of the list the client has in force.
        known: [u8; 32],
    },
    /// Send the contents purged after purge number `since`.
    GetPurges {
        /// The last purge number the client has applied.
        since: u64,
    },
    /// Send the manifest and origins of a content.
    GetContent {
        /// The content.
        content: ContentId,
    },
    /// This is what I now hold of a content.
    Have {
        /// Who.
        id: NodeId,
        /// The content.
        content: ContentId,
        /// Its full have-map.
        have: PieceMap,
    },
    /// Who holds which pieces (see [`SourcesQuery`]).
    Sources(SourcesQuery),
    /// `peer` stopped answering `id`'s requests (timeouts, unreachable).
    Unresponsive {
        /// Who reports.
        id: NodeId,
        /// The peer.
        peer: NodeId,
    },
    /// `id` banned `peer` for bad bytes: stop offering it to `id`'s
    /// office. The evidence is kept for people.
    Banned {
        /// Who reports.
        id: NodeId,
        /// The peer.
        peer: NodeId,
        /// The bad pieces it sent.
        evidence: Vec<BadPiece>,
    },
    /// I am shutting down: stop sending peers to me now rather than when
    /// my heartbeats stop.
    Leave {
        /// Who.
        id: NodeId,
    },
    /// Join the cluster with a join token: the only request a connection
    /// without a certificate may make. Answered by the control endpoint.
    Join(JoinRequest),
}

/// A device asking to join the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The join token's secret.
    pub secret: [u8; 16],
    /// The device's name, for people (its certificate's name adds a
    /// suffix that makes it unique).
    pub name: String,
    /// The public key to certify: an uncompressed P-256 point (65 bytes).
    pub public_key: Vec<u8>,
}

/// The server's answer to a [`JoinRequest`]: the device's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The certificate's name (what `pki revoke --name` takes).
    pub name: String,
    /// The device's certificate (DER).
    pub certificate: Vec<u8>,
    /// The cluster CA's certificate (DER).
    pub ca: Vec<u8>,
    /// The CA's revocation lists in force (DER).
    pub crls: Vec<Vec<u8>>,
}

impl ServerRequest {
    /// The client the request speaks for, if it names one. Under the
    /// cluster PKI the control endpoint accepts it only from a connection
    /// whose certificate is that client's.
    pub fn claimed_id(&self) -> Option<NodeId> {
        match self {
            ServerRequest::Register(registration) => Some(registration.id),
            ServerRequest::Sources(query) => Some(query.id),
            ServerRequest::Heartbeat { id, .. }
            | ServerRequest::Have { id, .. }
            | ServerRequest::Unresponsive { id, .. }
            | ServerRequest::Banned { id, .. }
            | ServerRequest::Leave { id } => Some(*id),
            ServerRequest::GetRevocations { .. }
            | ServerRequest::GetPurges { .. }
            | ServerRequest::GetContent { .. }
            | ServerRequest::Join(_) => None,
        }
    }
}

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerReply {
    /// Registered; send a heartbeat every `heartbeat_ms`.
    Registered {
        /// Heartbeat interval in ms.
        heartbeat_ms: u32,
        /// The client's office.
        office: OfficeInfo,
    },
    /// Heartbeat taken; the client's office as it is now.
    Alive(OfficeInfo),
    /// Done.
    Ok,
    /// The server does not know this client: register again.
    UnknownClient,
    /// A content's record, with what the server vouches for about it.
    Content(ContentRecord, SignedPublication),
    /// No such content has been published.
    NotFound,
    /// The CA's revocation lists (DER) in force at the server; `None` if
    /// they are the ones the client knows, or the server has none.
    Revocations(Option<Vec<Vec<u8>>>),
    /// Sources of a content.
    Sources(SourcesAnswer),
    /// The request was refused; the text says why.
    Error(String),
    /// Joined: the device's certificate.
    Joined(Joined),
    /// The contents purged after the number asked, up to `last`: drop
    /// them (contents published again since are left out).
    Purges {
        /// The contents.
        contents: Vec<ContentId>,
        /// The number of the last purge this answer covers.
        last: u64,
    },
}

/// Bytes a client received, by where they came from, and served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteCounters {
    /// Bytes of verified pieces received from peers of the client's office.
    pub from_peers: u64,
    /// Bytes of verified pieces received across the WAN from the office up
    /// the tree: what the link into this office carried for this client.
    pub from_parent: u64,
    /// Bytes of verified pieces received from origins.
    pub from_origin: u64,
    /// Bytes of pieces served to peers (both protocols).
    pub served: u64,
    /// Of those, bytes served to child offices over the background
    /// protocol.
    pub served_background: u64,
    /// Pieces stored (verified and new).
    pub pieces_stored: u64,
    /// Verified pieces that arrived when the cache already held them.
    pub pieces_again: u64,
    /// Pieces rejected, for any reason (the sum of the three below).
    pub pieces_rejected: u64,
    /// Of those, bytes from a source with the wrong hash.
    pub rejected_hash: u64,
    /// Of those, bytes from a source of the wrong length.
    pub rejected_length: u64,
    /// Of those, stored pieces that failed their check on the way out.
    pub rejected_on_disk: u64,
    /// Discovery requests broadcast.
    pub broadcasts_sent: u64,
    /// UDP bytes that arrived on the background connections this client
    /// dialled to the office above: `from_parent` plus QUIC's overhead
    /// (headers, acknowledgements, retransmissions).
    pub wire_from_parent: u64,
}

/// A piece a peer sent that failed verification: the evidence of a strike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BadPiece {
    /// The content.
    #[schema(value_type = String)]
    pub content: ContentId,
    /// The piece.
    pub piece: u32,
    /// What was wrong: the hash expected and the hash of what came, or
    /// the lengths.
    pub error: String,
}
