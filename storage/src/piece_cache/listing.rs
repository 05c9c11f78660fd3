//! Listings of the cache: its contents and its usage against the quota.

use serde::{Deserialize, Serialize};

use super::{CacheError, PieceCache, key_to_id};
use crate::content::ContentId;

/// One content in the cache, for listings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentSummary {
    /// The content id.
    pub id: ContentId,
    /// The manifest's name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Pieces held.
    pub have: u32,
    /// Pieces in all.
    pub pieces: u32,
    /// Pinned contents are never evicted.
    pub pinned: bool,
    /// Last use, ms since the epoch.
    pub last_used_ms: u64,
}

/// Quota and usage.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// Bytes reserved by the contents present (their full sizes).
    pub reserved_bytes: u64,
    /// Bytes of verified pieces held.
    pub stored_bytes: u64,
    /// The quota.
    pub quota_bytes: u64,
}

impl PieceCache {
    /// The ids of every content in the cache, read from its records only
    /// (no piece file is opened).
    pub fn content_ids(&self) -> Result<Vec<ContentId>, CacheError> {
        self.entries
            .iter()
            .keys()
            .map(|key| Ok(key_to_id(&key?, "entries")?))
            .collect()
    }

    /// Every content in the cache.
    pub fn contents(&self) -> Result<Vec<ContentSummary>, CacheError> {
        let mut out = Vec::new();
        for (id, entry) in self.all_entries()? {
            let open = self.opened(&id)?;
            let have = self.have(&id)?;
            out.push(ContentSummary {
                id,
                name: open.manifest.name.clone(),
                size: entry.size,
                have: have.count(),
                pieces: have.len(),
                pinned: entry.pinned,
                last_used_ms: entry.last_used_ms,
            });
        }
        Ok(out)
    }

    /// Quota and usage.
    pub fn usage(&self) -> Result<Usage, CacheError> {
        let mut usage = Usage {
            reserved_bytes: 0,
            stored_bytes: 0,
            quota_bytes: self.quota,
        };
        for (id, entry) in self.all_entries()? {
            usage.reserved_bytes += entry.size;
            let open = self.opened(&id)?;
            let have = self.have(&id)?;
            usage.stored_bytes += have
                .iter_set()
                .map(|i| open.manifest.piece_len(i))
                .sum::<u64>();
        }
        Ok(usage)
    }
}
