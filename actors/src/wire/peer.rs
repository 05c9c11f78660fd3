//! Peer to peer: what one client asks another, one request per QUIC
//! stream, and the answers.

use branchline_storage::publication::SignedPublication;
use branchline_storage::{ContentId, Manifest};
use serde::{Deserialize, Serialize};

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
