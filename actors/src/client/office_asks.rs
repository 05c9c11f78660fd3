//! What a transfer asks of its office: the messages (and why a transfer
//! ended, [`TransferError`]), and [`OfficeLink`],
//! the recipients a transfer holds instead of its office's address. A
//! transfer knows its office only by these, so the office can start
//! transfers without the two files importing each other.

use std::time::Duration;

use actix::prelude::*;
use branchline_storage::publication::SignedPublication;
use branchline_storage::{ContentId, ContentRecord, NodeId};

use crate::client::store::StoreError;
use crate::messages::LinkError;
use crate::wire::{BadPiece, SourcesAnswer};

/// Where a transfer sends what it asks of its office.
#[derive(Clone)]
pub struct OfficeLink {
    /// Its long-polls for sources.
    pub sources: Recipient<SourcesRequest>,
    /// Its question for the content's manifest and origins.
    pub content_info: Recipient<ContentInfo>,
    /// Its end, well or not.
    pub finished: Recipient<TransferFinished>,
    /// A peer that sent a bad piece.
    pub strike: Recipient<SourceStrike>,
    /// A peer that stopped answering.
    pub unresponsive: Recipient<PeerUnresponsive>,
}

/// A transfer's long-poll for sources (see [`crate::wire::SourcesQuery`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<SourcesAnswer, LinkError>")]
pub struct SourcesRequest {
    /// The content.
    pub content: ContentId,
    /// Version last seen.
    pub since: u64,
    /// Origin leases wanted.
    pub want_leases: u32,
    /// Leases given back.
    pub release: Vec<u32>,
    /// Pieces whose holders never delivered them ([`crate::client::stuck`]).
    pub stuck: Vec<u32>,
    /// Longest wait.
    pub wait: Duration,
}

/// The manifest and origins of a content, from the server, with the
/// server's publication of it, checked: the manifest is the content's and
/// the publication is about it and signed by the server.
#[derive(Debug, Message)]
#[rtype(result = "Result<(ContentRecord, SignedPublication), ContentInfoError>")]
pub struct ContentInfo(pub ContentId);

/// Why a content's manifest and publication could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ContentInfoError {
    /// The server does not know the content.
    #[error("content {0} is not published on the server")]
    NotPublished(ContentId),
    /// The server answered something else.
    #[error("the server answered {0} to a content lookup")]
    Unexpected(String),
    /// What came is not the content's, or not signed by the server.
    #[error(transparent)]
    Refused(#[from] NotTheContents),
    /// The server could not be asked.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The server is out of reach, and no peer of the subnet gave it.
    #[error("{link}; {peers}")]
    NotFromPeers {
        /// Why the server could not be asked.
        link: LinkError,
        /// Why the peers did not give it.
        peers: NotFromPeers,
    },
}

/// A manifest or publication received that is not the content's own.
#[derive(Debug, thiserror::Error)]
pub enum NotTheContents {
    /// The manifest is another content's.
    #[error("the manifest received is not content {0}; refused")]
    Manifest(ContentId),
    /// The publication is about another content.
    #[error("the publication received is about content {about}, not {content}; refused")]
    Publication {
        /// The content asked for.
        content: ContentId,
        /// The content it is about.
        about: ContentId,
    },
    /// The publication's signature is not the server's.
    #[error("the publication of content {content} is not the server's ({why}); refused")]
    Signature {
        /// The content.
        content: ContentId,
        /// Why the signature was refused.
        why: String,
    },
}

/// Why no peer of the subnet gave a manifest.
#[derive(Debug, thiserror::Error)]
pub enum NotFromPeers {
    /// Discovery could not be asked.
    #[error("discovery unavailable: {0}")]
    Discovery(String),
    /// Nobody who answered the broadcast gave a manifest that holds.
    #[error("no peer in the subnet gave the manifest ({0} answered the broadcast)")]
    NoneGave(usize),
}

/// A transfer finished, well or not.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TransferFinished {
    /// The content.
    pub content: ContentId,
    /// Ok, or why it failed.
    pub outcome: Result<(), TransferError>,
}

/// A peer sent a piece that failed verification: a strike. The answer
/// says whether the peer is banned (then no transfer of this node uses it
/// again, and the server is told, with the evidence).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct SourceStrike {
    /// The peer.
    pub peer: NodeId,
    /// The bad piece.
    pub evidence: BadPiece,
}

/// A peer stopped answering this node's requests: the server is told, so
/// it stops offering the peer and, if it is an RVP, elects another.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PeerUnresponsive(pub NodeId);

/// Why a transfer ended without its content.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The cache refused or failed while the transfer started.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The content's record and publication could not be had.
    #[error(transparent)]
    Record(#[from] ContentInfoError),
    /// An actor of this node it needs is not running.
    #[error("an actor of this node is not running: {0}")]
    Gone(#[from] actix::MailboxError),
    /// A confidential content without an origin: peers never serve it.
    #[error("content {0} is confidential and no origin is known for it (peers never serve it)")]
    ConfidentialWithoutOrigin(ContentId),
    /// A piece nobody can supply.
    #[error("piece {piece} of {content} is held by no peer and every origin failed: {origins}")]
    Unobtainable {
        /// The first such piece.
        piece: u32,
        /// The content.
        content: ContentId,
        /// Each origin, with why it last failed.
        origins: String,
    },
    /// A piece that arrived could not be stored (the disk is full, ...).
    #[error("storing piece {piece} failed: {source}")]
    Storing {
        /// The piece.
        piece: u32,
        /// Why.
        source: StoreError,
    },
}
