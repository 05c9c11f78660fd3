//! The wire: length-delimited, versioned frames carrying serde messages
//! (postcard), with a hard size cap checked before anything is allocated.
//!
//! A frame is `[version: u8][length: u32 LE][payload]`. Piece bytes do not go
//! in frames: a `PeerReply::Piece` header is followed by the raw bytes on the
//! same QUIC stream. A peer that sends a frame of another version, over the
//! cap, or that does not decode gets an error and its stream is dropped.
//!
//! The same framing carries three conversations, each with its own messages:
//! peer to peer ([`PeerRequest`]), client to server ([`ServerRequest`]) and a
//! command line tool to its local node over the admin socket
//! ([`AdminRequest`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use branchline_storage::content::MAX_MANIFEST_BYTES;
use branchline_storage::piece_cache::{ContentSummary, Usage};
use branchline_storage::publication::SignedPublication;
use branchline_storage::self_check::SelfCheck;
use branchline_storage::{ContentId, ContentRecord, Manifest, NodeId, PieceMap};

use crate::busy::PauseView;
use crate::election::Attributes;
use crate::topology::{LinkBelow, LinkSettings, OfficeKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version every frame starts with.
pub const PROTOCOL_VERSION: u8 = 5;
/// Largest request frame accepted (requests are small).
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;
/// Largest reply frame accepted (a reply may carry a manifest).
pub const MAX_REPLY_FRAME: usize = MAX_MANIFEST_BYTES + 64 * 1024;
/// Bytes of frame header: version and length.
pub const FRAME_HEADER: usize = 5;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The frame is of a version we do not speak.
    #[error("frame version {0} is not supported (this node speaks {PROTOCOL_VERSION})")]
    Version(u8),
    /// The frame is over the cap for this conversation.
    #[error("frame of {len} bytes is over the {max}-byte cap")]
    TooLarge {
        /// Declared length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The payload does not decode as the expected message.
    #[error("frame does not decode: {0}")]
    Decode(String),
}

/// Encodes a message as one frame.
pub fn encode_frame<T: Serialize>(message: &T) -> Vec<u8> {
    let payload = postcard::to_stdvec(message).expect("wire messages always serialise");
    let len = u32::try_from(payload.len()).expect("frames are far below 4 GiB");
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Checks a frame header and returns the payload length.
fn check_header(header: [u8; FRAME_HEADER], max: usize) -> Result<usize, FrameError> {
    if header[0] != PROTOCOL_VERSION {
        return Err(FrameError::Version(header[0]));
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(payload).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Decodes one frame from the front of `bytes`; returns the message and the
/// bytes consumed. For tests and fuzzing without sockets.
pub fn decode_frame<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
) -> Result<(T, usize), FrameError> {
    let header: [u8; FRAME_HEADER] = bytes
        .get(..FRAME_HEADER)
        .ok_or(FrameError::Truncated)?
        .try_into()
        .expect("5 bytes");
    let len = check_header(header, max)?;
    let payload = bytes
        .get(FRAME_HEADER..FRAME_HEADER + len)
        .ok_or(FrameError::Truncated)?;
    Ok((decode_payload(payload)?, FRAME_HEADER + len))
}

/// Reads one frame. Returns `Ok(None)` if the stream ended cleanly before
/// the first byte.
pub async fn read_frame<T: DeserializeOwned>(
    reader: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; FRAME_HEADER];
    let mut filled = 0;
    while filled < FRAME_HEADER {
        let n = reader.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = check_header(header, max)?;
    let mut payload = vec![0u8; len];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    decode_payload(&payload).map(Some)
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(
    writer: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> Result<(), FrameError> {
    writer.write_all(&encode_frame(message)).await?;
    Ok(())
}

// ---------------------------------------------------------------- peer ----

/// What one client asks another, one request per QUIC stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Send piece `index` of `content`.
    GetPiece {
        /// The content.
        content: ContentId,
        /// The piece.
        index: u32,
    },
    /// Send the manifest of `content` (asked when the server is out of
    /// reach; the asker checks it against the id).
    GetManifest {
        /// The content.
        content: ContentId,
    },
}

/// The answer to a [`PeerRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerReply {
    /// The piece follows: exactly `len` raw bytes on the stream.
    Piece {
        /// Bytes that follow.
        len: u32,
    },
    /// The request was refused.
    Refused(Refusal),
    /// The manifest asked for, with the server's signed publication (the
    /// asker checks both).
    Manifest(Manifest, SignedPublication),
}

/// Why a peer refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The peer does not hold that piece (any more).
    #[error("peer does not hold the piece")]
    NotHeld,
    /// The peer is too busy; try elsewhere or later.
    #[error("peer is busy")]
    Busy,
    /// The peer failed to read its own store.
    #[error("peer failed to read the piece")]
    Internal,
    /// The peer's office type does not serve (a VPN office).
    #[error("peer does not serve (its office is a VPN office)")]
    NotServing,
    /// The content is confidential: only its origins serve it.
    #[error("the content is confidential; peers never share it")]
    Confidential,
}

// -------------------------------------------------------------- server ----

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
    /// deadline (at most [`crate::stuck::MAX_STUCK_PER_QUERY`] are read):
    /// they may be leased from the origin although peers hold them.
    pub stuck: Vec<u32>,
    /// Longest wait for a change, in ms (the server caps it).
    pub wait_ms: u32,
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

// --------------------------------------------------------------- admin ----

/// What a command line tool asks its local node over the admin socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// The node's status.
    Status,
    /// Client: download a content and write it out. Progress frames
    /// follow until `Fetched` or `Error`.
    Fetch {
        /// The content.
        content: ContentId,
        /// The file the tool writes, for messages. With it, the tool passes
        /// the file it opened right after this frame (see
        /// [`AdminRequest::passes_file`]) and the node writes the content
        /// into that file, never into a path of its own; `None` only
        /// downloads the content into the cache (pre-staging).
        out: Option<PathBuf>,
    },
    /// Server: publish a manifest with its origins.
    Publish {
        /// The manifest.
        manifest: Manifest,
        /// Where the bytes live.
        origins: Vec<String>,
        /// Never shared by peers: every client fetches it from an origin.
        confidential: bool,
    },
    /// Server: replace the topology with this spreadsheet (CSV bytes),
    /// all or nothing.
    TopologyImport(Vec<u8>),
    /// Server: the topology as a spreadsheet.
    TopologyExport,
    /// Server: the office tree with its clients.
    TopologyShow,
    /// Client: the peers it has sessions with.
    Peers,
    /// Replace the node's log filter, e.g. `debug` or
    /// `branchline_actors=debug,info`.
    SetLog(String),
    /// Server: remove a content from the server and from every cache.
    Purge(ContentId),
    /// Server: a URL of its file storage that anyone may fetch until it
    /// expires.
    SignUrl {
        /// The file's URL (or its path in the file storage).
        url: String,
        /// Its lifetime.
        expires_secs: u64,
    },
    /// Server: make a join token valid for this many seconds.
    CreateJoinToken {
        /// Its lifetime.
        expires_secs: u64,
    },
    /// Make an actor stop or panic, to exercise supervision.
    KillActor {
        /// Its name, as the status lists it.
        name: String,
        /// How.
        how: crate::supervision::Kill,
    },
}

impl AdminRequest {
    /// True if the tool passes an open file after this request's frame
    /// (over the admin socket, as ancillary data): a fetch with an output.
    pub fn passes_file(&self) -> bool {
        matches!(self, AdminRequest::Fetch { out: Some(_), .. })
    }
}

/// The local node's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AdminReply {
    /// Status of a client node (boxed: by far the largest answer).
    ClientStatus(Box<ClientStatus>),
    /// Status of a server node.
    ServerStatus(ServerStatus),
    /// A fetch is under way.
    Progress(TransferProgress),
    /// A fetch finished; every piece of the file passed with it is
    /// verified and written (the tool syncs and renames it).
    Fetched(TransferProgress),
    /// Published; the content id.
    Published(ContentId),
    /// A signed URL.
    SignedUrl(String),
    /// A join token, and when it expires (ms since the epoch).
    JoinToken {
        /// The token, as `branchline client --join` takes it.
        token: String,
        /// When it stops working.
        expires_ms: u64,
    },
    /// The topology was replaced; how many offices it has.
    TopologyImported(u32),
    /// The spreadsheet was refused; one `line N: ...` per problem.
    TopologyRefused(Vec<String>),
    /// The topology as a spreadsheet.
    TopologyCsv(String),
    /// The office tree with its clients.
    Topology(TopologyView),
    /// Done; a line that says what happened.
    Done(String),
    /// A client's peers.
    Peers(Vec<PeerView>),
    /// The request failed; one line that says why.
    Error(String),
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

/// A piece a peer sent that failed verification: the evidence of a strike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadPiece {
    /// The content.
    pub content: ContentId,
    /// The piece.
    pub piece: u32,
    /// What was wrong: the hash expected and the hash of what came, or
    /// the lengths.
    pub error: String,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    /// The office it holds in.
    pub office: String,
    /// The banned peer.
    pub peer: NodeId,
    /// Who reported it.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    /// Its id.
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Its address.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyView {
    /// The offices.
    pub offices: Vec<OfficeView>,
}

/// One published content, as the server shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentView {
    /// Its id.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// An office's use of the origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_memory_and_over_a_stream() {
        let req = PeerRequest::GetPiece {
            content: branchline_storage::Hash([3; 32]),
            index: 7,
        };
        let bytes = encode_frame(&req);
        let (back, used) = decode_frame::<PeerRequest>(&bytes, MAX_REQUEST_FRAME).unwrap();
        assert_eq!((back, used), (req.clone(), bytes.len()));

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut a, mut b) = tokio::io::duplex(1024);
            write_frame(&mut a, &req).await.unwrap();
            drop(a);
            let got: Option<PeerRequest> = read_frame(&mut b, MAX_REQUEST_FRAME).await.unwrap();
            assert_eq!(got, Some(req));
            let end: Option<PeerRequest> = read_frame(&mut b, MAX_REQUEST_FRAME).await.unwrap();
            assert_eq!(end, None);
        });
    }

    #[test]
    fn oversized_frames_are_refused_before_allocating() {
        let mut bytes = vec![PROTOCOL_VERSION];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_frame::<PeerRequest>(&bytes, MAX_REQUEST_FRAME).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("frame of {} bytes is over the 65536-byte cap", u32::MAX)
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(read_frame::<PeerRequest>(
                &mut &bytes[..],
                MAX_REQUEST_FRAME,
            ))
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
    }

    #[test]
    fn wrong_version_truncation_and_garbage_are_named() {
        let mut bytes = encode_frame(&ServerRequest::Heartbeat {
            id: NodeId([1; 16]),
            attributes: Attributes::default(),
            counters: ByteCounters::default(),
        });
        bytes[0] = 9;
        let err = decode_frame::<ServerRequest>(&bytes, MAX_REQUEST_FRAME).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame version 9 is not supported (this node speaks 5)"
        );
        let good = encode_frame(&ServerRequest::Heartbeat {
            id: NodeId([1; 16]),
            attributes: Attributes::default(),
            counters: ByteCounters::default(),
        });
        let err =
            decode_frame::<ServerRequest>(&good[..good.len() - 1], MAX_REQUEST_FRAME).unwrap_err();
        assert!(matches!(err, FrameError::Truncated));
        let garbage = [PROTOCOL_VERSION, 3, 0, 0, 0, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_frame::<ServerRequest>(&garbage, MAX_REQUEST_FRAME),
            Err(FrameError::Decode(_))
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(read_frame::<ServerRequest>(
                &mut &good[..3],
                MAX_REQUEST_FRAME,
            ))
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated));
    }

    #[test]
    fn random_frames_decode_or_fail_but_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect();
            let mut bytes = bytes;
            if let Some(first) = bytes.first_mut() {
                *first = PROTOCOL_VERSION;
            }
            let _ = decode_frame::<ServerRequest>(&bytes, MAX_REQUEST_FRAME);
            let _ = decode_frame::<PeerRequest>(&bytes, MAX_REQUEST_FRAME);
            let _ = decode_frame::<AdminRequest>(&bytes, MAX_REQUEST_FRAME);
        }
    }
}
