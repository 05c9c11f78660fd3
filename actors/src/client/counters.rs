//! A node's byte counters: what it received by source class and what it
//! served. Shared by the node's actors as atomics, read by status.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::ByteCounters;

/// Counters of one node.
#[derive(Debug, Default)]
pub struct Counters {
    from_peers: AtomicU64,
    from_parent: AtomicU64,
    from_origin: AtomicU64,
    served: AtomicU64,
    served_background: AtomicU64,
    pieces_stored: AtomicU64,
    pieces_again: AtomicU64,
    rejected_hash: AtomicU64,
    rejected_length: AtomicU64,
    rejected_on_disk: AtomicU64,
    broadcasts_sent: AtomicU64,
    wire_from_parent: AtomicU64,
}

/// Why a piece was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Bytes from a source whose BLAKE3 hash was not the manifest's.
    HashMismatch,
    /// Bytes from a source of the wrong length.
    WrongLength,
    /// A stored piece that failed its check on the way out to a peer (the
    /// disk changed it); it is dropped from the cache.
    CorruptOnDisk,
}

/// Where verified bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceClass {
    /// A peer in the office.
    Peer,
    /// A peer in the office up the tree, across the WAN.
    Parent,
    /// An origin (CDN or file storage).
    Origin,
}

impl Counters {
    /// A verified piece of `bytes` was stored.
    pub fn stored(&self, class: SourceClass, bytes: u64) {
        let counter = match class {
            SourceClass::Peer => &self.from_peers,
            SourceClass::Parent => &self.from_parent,
            SourceClass::Origin => &self.from_origin,
        };
        counter.fetch_add(bytes, Ordering::Relaxed);
        self.pieces_stored.fetch_add(1, Ordering::Relaxed);
    }

    /// A verified piece arrived that the cache already held (fetched
    /// twice: wasted bytes).
    pub fn stored_again(&self) {
        self.pieces_again.fetch_add(1, Ordering::Relaxed);
    }

    /// A piece was refused for `why`.
    pub fn rejected(&self, why: Rejection) {
        let counter = match why {
            Rejection::HashMismatch => &self.rejected_hash,
            Rejection::WrongLength => &self.rejected_length,
            Rejection::CorruptOnDisk => &self.rejected_on_disk,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `bytes` of a piece were served to a peer, over the background
    /// protocol if `background`.
    pub fn served(&self, bytes: u64, background: bool) {
        self.served.fetch_add(bytes, Ordering::Relaxed);
        if background {
            self.served_background.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// A discovery request was broadcast.
    pub fn broadcast_sent(&self) {
        self.broadcasts_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// UDP bytes that have arrived so far on the background connections
    /// this node dialled (a total, set by the background transport).
    pub fn set_wire_from_parent(&self, bytes: u64) {
        self.wire_from_parent.store(bytes, Ordering::Relaxed);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> ByteCounters {
        let (hash, length, on_disk) = (
            self.rejected_hash.load(Ordering::Relaxed),
            self.rejected_length.load(Ordering::Relaxed),
            self.rejected_on_disk.load(Ordering::Relaxed),
        );
        ByteCounters {
            from_peers: self.from_peers.load(Ordering::Relaxed),
            from_parent: self.from_parent.load(Ordering::Relaxed),
            from_origin: self.from_origin.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            served_background: self.served_background.load(Ordering::Relaxed),
            pieces_stored: self.pieces_stored.load(Ordering::Relaxed),
            pieces_again: self.pieces_again.load(Ordering::Relaxed),
            pieces_rejected: hash + length + on_disk,
            rejected_hash: hash,
            rejected_length: length,
            rejected_on_disk: on_disk,
            broadcasts_sent: self.broadcasts_sent.load(Ordering::Relaxed),
            wire_from_parent: self.wire_from_parent.load(Ordering::Relaxed),
        }
    }
}
