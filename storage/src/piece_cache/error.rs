//! What can go wrong in the piece cache, and how an I/O error becomes one.

use std::path::{Path, PathBuf};

use crate::content::{ContentError, ContentId};
use crate::records::BadRecord;

/// What can go wrong in the cache. Every variant names the content or path.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// sled failed.
    #[error("cache database error: {0}")]
    Db(#[from] sled::Error),
    /// The database could not be opened, or is damaged.
    #[error(transparent)]
    Open(#[from] crate::sealed_db::OpenError),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The disk is full; nothing was marked.
    #[error("disk full while writing {path}; the piece was not stored (free space, then retry)")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A content or piece was refused.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The content is not in the cache.
    #[error("content {0} is not in the cache")]
    Unknown(ContentId),
    /// The piece is not held.
    #[error("piece {index} of {id} is not in the cache")]
    NotHeld {
        /// The content.
        id: ContentId,
        /// The piece.
        index: u32,
    },
    /// Adding the content would pass the quota even after eviction.
    #[error(
        "content of {need} bytes does not fit the cache quota of {quota} bytes ({pinned_or_busy} bytes are pinned or downloading)"
    )]
    QuotaExceeded {
        /// Bytes the content needs.
        need: u64,
        /// The quota.
        quota: u64,
        /// Bytes that could not be evicted.
        pinned_or_busy: u64,
    },
    /// The content is not complete yet.
    #[error("content {id} is incomplete: {have} of {total} pieces")]
    Incomplete {
        /// The content.
        id: ContentId,
        /// Pieces held.
        have: u32,
        /// Pieces in all.
        total: u32,
    },
    /// A stored piece no longer matches its hash; it was unmarked.
    #[error(
        "stored piece {index} of {id} is corrupt on disk; it was dropped and will be fetched again"
    )]
    Corrupt {
        /// The content.
        id: ContentId,
        /// The piece.
        index: u32,
    },
    /// A record in sled could not be decoded.
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    /// The content was published as confidential: peers never get it.
    #[error("content {0} is confidential; it is never shared with peers")]
    Confidential(ContentId),
}

/// An I/O error on `path` during `op`, with a full disk named as such.
pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CacheError + 'a {
    move |source| {
        if source.kind() == std::io::ErrorKind::StorageFull {
            CacheError::DiskFull {
                path: path.to_owned(),
            }
        } else {
            CacheError::Io {
                op,
                path: path.to_owned(),
                source,
            }
        }
    }
}
