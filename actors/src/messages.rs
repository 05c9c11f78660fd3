//! Messages between the actors of this crate and the I/O actors of the
//! runtime (transport, origin fetch, server link, discovery). The actors here name the
//! runtime's actors only through `Recipient`s of these messages, so this
//! crate has no sockets.

use std::net::SocketAddr;

use actix::Message;
use branchline_storage::publication::SignedPublication;
use branchline_storage::{ContentId, Manifest, PieceMap};
use bytes::Bytes;

use crate::wire::{PeerHolding, Refusal, ServerReply, ServerRequest};

/// Ask a peer for a content's manifest (when the server cannot be asked).
/// The answer is checked against the content id before it is returned.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Manifest, SignedPublication), FetchError>")]
pub struct FetchManifest {
    /// The peer's foreground address.
    pub addr: SocketAddr,
    /// The content.
    pub content: ContentId,
}

/// Find holders of a content in this client's subnet by broadcast. Empty
/// when this client's office type does not broadcast (WiFi) or nobody
/// answers within the discovery wait.
#[derive(Debug, Message)]
#[rtype(result = "Vec<PeerHolding>")]
pub struct Discover(pub ContentId);

/// Fetch one piece from a peer over the foreground protocol.
#[derive(Debug, Message)]
#[rtype(result = "Result<Bytes, FetchError>")]
pub struct FetchFromPeer {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The content.
    pub content: ContentId,
    /// The piece.
    pub index: u32,
    /// The piece's length from the manifest: a reply of any other length is
    /// refused before it is read.
    pub len: u32,
    /// When the requester gives up on the piece: the transport abandons
    /// it then (stopping its stream), so a late piece is neither read nor
    /// counted as served.
    pub deadline: tokio::time::Instant,
}

/// Fetch a byte range from an origin: `http(s)://` with a `Range` request,
/// or a `file://` path read at an offset.
#[derive(Debug, Message)]
#[rtype(result = "Result<Bytes, FetchError>")]
pub struct FetchFromOrigin {
    /// The origin URL.
    pub url: String,
    /// First byte.
    pub offset: u64,
    /// Bytes to read.
    pub len: u64,
}

/// Why a fetch failed (bad bytes are found later, by verification).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The peer refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The source could not be reached or the connection failed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The source answered something we cannot use.
    #[error("bad answer: {0}")]
    Protocol(String),
    /// The request took too long.
    #[error("timed out")]
    Timeout,
}

/// One request to the server, answered by the server link.
#[derive(Debug, Message)]
#[rtype(result = "Result<ServerReply, LinkError>")]
pub struct ServerCall(pub ServerRequest);

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The server could not be reached.
    #[error("cannot reach the server at {addr}: {reason}")]
    Unreachable {
        /// The server's address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The server answered but refused.
    #[error("the server refused: {0}")]
    Refused(String),
}

/// Tell the server what this node now holds of a content. The server link
/// coalesces these: only the newest map per content is sent.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ReportHave {
    /// The content.
    pub content: ContentId,
    /// The node's have-map.
    pub have: PieceMap,
}
