//! Why a transfer ends without its content: told to its office and, as
//! text, in the transfer's phase.

use branchline_storage::ContentId;

use crate::client::office_asks::ContentInfoError;
use crate::client::store::StoreError;

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
