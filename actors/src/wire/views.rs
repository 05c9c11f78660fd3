//! What `status` and the other admin answers show: a node's counters,
//! downloads, peers, actors, and the server's registry, offices and
//! contents.

use std::net::SocketAddr;
use std::path::PathBuf;

use branchline_storage::piece_cache::{ContentSummary, Usage};
use branchline_storage::self_check::SelfCheck;
use branchline_storage::{ContentId, NodeId};
use serde::{Deserialize, Serialize};

use super::server::{BadPiece, ByteCounters, OfficeInfo};
use crate::server::election::Attributes;
use crate::topology::OfficeKind;

/// Progress of one download.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferProgress {
    /// The content.
    pub content: ContentId,
    /// Its name.
    pub name: String,
    /// Pieces held.
    pub have: u32,
    /// Pieces in all.
    pub pieces: u32,
    /// Bytes held.
    pub have_bytes: u64,
    /// Content size.
    pub size: u64,
    /// Bytes received by this transfer from peers of the office.
    pub from_peers: u64,
    /// Bytes received by this transfer from the office up the tree.
    pub from_parent: u64,
    /// Bytes received by this transfer from origins.
    pub from_origin: u64,
    /// Peers this transfer knows as sources.
    pub sources: u32,
    /// Requests in flight.
    pub in_flight: u32,
    /// Origin URLs known and not set aside.
    pub origins: u32,
    /// Origin leases this node holds.
    pub leases: u32,
    /// Pieces other clients hold origin leases for.
    pub leased_elsewhere: u32,
}

/// A peer this client has a session with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer's endpoint.
    pub addr: SocketAddr,
    /// Over the background protocol (between offices).
    pub background: bool,
    /// Bytes of pieces received from it.
    pub received: u64,
    /// Bytes of pieces served to it.
    pub served: u64,
    /// QUIC's own numbers for the connections with it.
    pub wire: WireView,
    /// The congestion controller of the connection it opened to this
    /// node, on which this node serves it (none open: `None`).
    pub serving_controller: Option<String>,
}

/// QUIC's own numbers for the connections with one peer (both ways, open
/// and closed since the session began): UDP bytes on the wire and what was
/// lost. Wire bytes less piece bytes is the protocol's overhead, including
/// retransmissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireView {
    /// UDP payload bytes sent.
    pub sent_bytes: u64,
    /// UDP payload bytes received.
    pub received_bytes: u64,
    /// Packets sent.
    pub sent_packets: u64,
    /// Packets declared lost (and so sent again if they carried data).
    pub lost_packets: u64,
    /// Bytes in those packets.
    pub lost_bytes: u64,
    /// Times the congestion controller was told of congestion.
    pub congestion_events: u64,
    /// Smoothed RTT of one of the open connections, microseconds (none
    /// when none is open).
    pub rtt_us: Option<u64>,
}

impl WireView {
    /// Adds one connection's numbers.
    pub fn add(&mut self, other: &WireView) {
        self.sent_bytes += other.sent_bytes;
        self.received_bytes += other.received_bytes;
        self.sent_packets += other.sent_packets;
        self.lost_packets += other.lost_packets;
        self.lost_bytes += other.lost_bytes;
        self.congestion_events += other.congestion_events;
        self.rtt_us = other.rtt_us.or(self.rtt_us);
    }
}

/// One of a node's top-level actors, as its supervisor sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorView {
    /// Its name in the node.
    pub name: String,
    /// The top-level actor it runs under (a transfer under `office`, a
    /// peer session under its transport); `None` for a top-level actor.
    pub parent: Option<String>,
    /// Its kind.
    pub kind: String,
    /// Whether its mailbox is open.
    pub alive: bool,
    /// Restarts after a stop or a panic.
    pub restarts: u32,
    /// Why it last restarted.
    pub last_cause: Option<String>,
    /// Seconds since it first started.
    pub uptime_secs: u64,
    /// Whether it answered the watchdog's last probe (`None`: not probed
    /// yet).
    pub answered_probe: Option<bool>,
    /// How long the last probe took, in ms: how long a message waits in
    /// its mailbox right now, roughly.
    pub probe_ms: Option<u64>,
    /// Its mailbox's capacity.
    pub mailbox_capacity: u64,
    /// Messages that were waiting in its mailbox when its last answered
    /// probe was sent (the watchdog probes every second).
    pub mailbox_depth: u64,
    /// Messages its handlers have taken, over every restart.
    pub messages_handled: u64,
    /// What the actor says of itself, if anything (an office: its
    /// clients).
    pub note: Option<String>,
}

/// A client node's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientStatus {
    /// Its id.
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Where peers of its office reach it (foreground endpoint).
    pub addr: SocketAddr,
    /// Where child offices' RVPs reach it (background endpoint).
    pub background: SocketAddr,
    /// The server it registers with.
    pub server: SocketAddr,
    /// True while registered with a live server.
    pub registered: bool,
    /// Its office, as the server last said.
    pub office: Option<OfficeInfo>,
    /// Cache quota and use.
    pub usage: Usage,
    /// Contents in the cache.
    pub contents: Vec<ContentSummary>,
    /// Downloads under way.
    pub transfers: Vec<TransferProgress>,
    /// Downloads finished since the node started.
    pub transfers_done: u32,
    /// Byte counters since start.
    pub counters: ByteCounters,
    /// Its top-level actors.
    pub actors: Vec<ActorView>,
    /// The link into its office, as its background connections see it.
    pub background_link: BackgroundLink,
    /// Peers that sent it bytes that failed verification.
    pub strikes: Vec<StrikeView>,
    /// The start-up self-check of its cache.
    pub start_check: StartCheck,
}

/// The start-up self-check of a client's cache
/// ([`branchline_storage::self_check`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartCheck {
    /// The last run stopped cleanly (or the cache is new): nothing to check.
    #[default]
    NotNeeded,
    /// The last run did not stop cleanly; the held pieces are being read.
    Running,
    /// Every held piece was read; the corrupt ones were dropped.
    Done(SelfCheck),
    /// The check could not finish.
    Failed {
        /// Why.
        error: String,
    },
}

/// A peer struck for bad bytes, as its victim shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrikeView {
    /// The peer.
    pub peer: NodeId,
    /// Bad pieces it sent.
    pub strikes: u32,
    /// Whether it is banned.
    pub banned: bool,
    /// The newest evidence, oldest first.
    pub evidence: Vec<BadPiece>,
}

/// A ban an office's client reported to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BanView {
    /// The office it holds in.
    pub office: String,
    /// The banned peer.
    #[schema(value_type = String)]
    pub peer: NodeId,
    /// Who reported it.
    #[schema(value_type = String)]
    pub by: NodeId,
    /// The evidence reported.
    pub evidence: Vec<BadPiece>,
}

/// The link into a client's office, as its busy pause sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackgroundLink {
    /// The pause in force, if downloads from the office above are paused.
    pub paused: Option<PauseView>,
    /// Pauses since the node started.
    pub pauses: u64,
    /// Queuing delay measured last, milliseconds (none before a sample).
    pub queuing_delay_ms: Option<f64>,
    /// The median queuing delay at which the link pauses, milliseconds,
    /// with this link's settings (none: it never pauses).
    pub pause_at_ms: Option<u64>,
}

/// One registered client, as the server shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientView {
    /// Its id.
    #[schema(value_type = String)]
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Its address.
    #[schema(value_type = String)]
    pub addr: SocketAddr,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms_ago: u64,
    /// Its office.
    pub office: String,
    /// Whether it is one of its office's RVPs.
    pub rvp: bool,
    /// What it last reported about itself.
    pub attributes: Option<Attributes>,
}

/// One office, as `topology show` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfficeView {
    /// Its name.
    pub name: String,
    /// Its parent.
    pub parent: Option<String>,
    /// Its type.
    pub kind: OfficeKind,
    /// Its subnets and ranges.
    pub blocks: Vec<String>,
    /// Made for an unknown subnet.
    pub automatic: bool,
    /// Names of its registered clients.
    pub clients: Vec<String>,
    /// Names of its RVPs, best first.
    pub rvps: Vec<String>,
}

/// The office tree: offices top down, depth first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopologyView {
    /// The offices.
    pub offices: Vec<OfficeView>,
}

/// One published content, as the server shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentView {
    /// Its id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Pieces.
    pub pieces: u32,
    /// Origins.
    pub origins: Vec<String>,
    /// Never shared by peers (and its holders are not tracked).
    pub confidential: bool,
    /// Clients holding all of it.
    pub complete_holders: u32,
    /// Clients holding part of it.
    pub partial_holders: u32,
}

/// What the registry shows: live clients and published contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegistryView {
    /// Registered (live) clients: one license each.
    pub clients: Vec<ClientView>,
    /// Published contents.
    pub contents: Vec<ContentView>,
    /// What the clients of each office received, by source, top down.
    pub links: Vec<LinkView>,
    /// Pieces the origin was used for, by office and why.
    pub origin: Vec<OriginUse>,
    /// Peers banned for bad bytes, by office.
    pub bans: Vec<BanView>,
    /// How far each office's clients are with each content they hold
    /// some of, top down.
    pub holdings: Vec<OfficeHoldings>,
}

/// How many of an office's live clients hold a content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfficeHoldings {
    /// The office.
    pub office: String,
    /// The content.
    #[schema(value_type = String)]
    pub content: ContentId,
    /// Clients holding all of it.
    pub complete: u32,
    /// Clients holding part of it.
    pub partial: u32,
}

/// An office's use of the origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OriginUse {
    /// The office.
    pub office: String,
    /// Why it used the origin: `top office`, `origin_direct`, `nothing
    /// above has clients`, or `stuck` (a holder never delivered a piece).
    pub reason: String,
    /// Pieces leased from the origin.
    pub pieces: u64,
}

/// The ledger of one office: the sums of its live clients' counters. Its
/// `from_parent` is what the WAN link from its parent office carried.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkView {
    /// The office.
    pub office: String,
    /// Its parent office.
    pub parent: Option<String>,
    /// Its live clients.
    pub clients: u32,
    /// Bytes its clients received from peers in the office.
    pub from_peers: u64,
    /// Bytes its clients received across the link from the office above.
    pub from_parent: u64,
    /// The same in UDP bytes, as QUIC counted them (with its overhead).
    pub wire_from_parent: u64,
    /// Bytes its clients received from origins.
    pub from_origin: u64,
    /// Bytes its clients served.
    pub served: u64,
}

/// The embedded file storage, as the server shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStorageView {
    /// The base URL it serves at.
    pub base_url: String,
    /// The directory it serves.
    pub dir: PathBuf,
    /// Body bytes it has sent since start.
    pub bytes_served: u64,
    /// Connections closed at once since start because a cap was reached
    /// (total or per address), or shed while in their handshake.
    pub connections_refused: u64,
}

/// A server node's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Where clients reach it.
    pub addr: SocketAddr,
    /// Clients and contents.
    pub registry: RegistryView,
    /// The embedded file storage, if enabled.
    pub file_storage: Option<FileStorageView>,
    /// Its top-level actors.
    pub actors: Vec<ActorView>,
}

/// What `status` shows of a pause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseView {
    /// Why, in words.
    pub reason: String,
    /// Seconds since it began.
    pub for_secs: f64,
}
