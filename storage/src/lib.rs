//! Branchline's on-disk stores.
//!
//! # Layout
//! - [`content`]: the content model. Pieces, their BLAKE3 hashes, the
//!   canonical manifest and the content id.
//! - [`piece_map`]: the have-map, one bit per piece.
//! - [`piece_cache`]: the client's piece cache. sled holds manifests,
//!   have-maps and entries; piece bytes live in one file per content.
//! - [`meta_store`]: the server's metadata: contents, clients, holdings.
//! - [`publication`]: what the server signs about a content (confidential).
//! - [`records`]: versioned encoding of what is kept in sled.
//! - [`sealed_db`]: opening sled only if it is whole (a damaged database
//!   is refused and left as it was).
//! - [`group_commit`]: one sync shared by concurrent writers.
//! - [`self_check`]: after an unclean stop, every held piece verified again.
//! - [`hex_id`]: ids as hex text for people, raw bytes on the wire.
//!
//! Everything here blocks on disk; the actors call it from blocking threads.
//! `storage/DESIGN.md` says what is durable when.

pub mod content;
pub mod group_commit;
pub mod hex_id;
pub mod meta_store;
pub mod origin;
pub mod piece_cache;
pub mod piece_map;
pub mod publication;
pub mod records;
pub mod sealed_db;
pub mod self_check;

pub use content::{ContentId, Hash, Manifest};
pub use meta_store::{ClientRecord, ContentRecord, MetaStore, NodeId};
pub use origin::{Origin, OriginKind};
pub use piece_cache::{CacheConfig, CacheError, PieceCache};
pub use piece_map::PieceMap;

/// Locks a mutex whose data stays valid even if a holder panicked, so a
/// poisoned lock is used as it is instead of spreading the panic: the one
/// way every crate of Branchline handles lock poisoning. Every mutex it is
/// used on holds data changed in single steps (the cache's maps of open
/// files and its `()` write locks, counters, handles), so a panic elsewhere
/// (a blocking job of the store) never leaves every later call failing.
pub fn lock_unpoisoned<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
