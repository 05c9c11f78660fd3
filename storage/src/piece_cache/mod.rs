//! The client's piece cache: verified pieces of contents, with a have-map per
//! content, a byte quota and least-recently-used eviction.
//!
//! sled is the store of record: manifests, have-maps and per-content entries
//! (size, pinned, complete, last use). Piece bytes live in one file per
//! content, at their offsets (see `storage/DESIGN.md` for the measurement that
//! chose this). The order for every piece is **verify, write, sync, mark**: a
//! piece's bit is set in sled only after its bytes hashed right and were
//! synced to disk, so a set bit always means durable, verified bytes.
//!
//! Every method blocks on disk. Actors call them from a blocking thread pool.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::content::{ContentId, Manifest};
use crate::group_commit::GroupCommit;
use crate::piece_map::PieceMap;
use crate::publication::SignedPublication;
use crate::records::{self, BadRecord, unix_ms};

/// The key (default tree) of the number of the last server purge applied.
const PURGES_SEEN: &[u8] = b"purges-seen";

/// Where and how big the cache is.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Directory holding `db/` (sled) and `pieces/` (one file per content).
    pub dir: PathBuf,
    /// Most bytes of contents the cache may hold.
    pub quota_bytes: u64,
    /// Memory sled may use for its page cache.
    pub sled_cache_bytes: u64,
}

/// Per-content bookkeeping kept in sled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    size: u64,
    pinned: bool,
    complete: bool,
    last_used_ms: u64,
}

/// What `put_piece` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutOutcome {
    /// False if the piece was already held (nothing written).
    pub newly_stored: bool,
    /// True if the content is now complete.
    pub complete: bool,
    /// Pieces held after this call.
    pub have: u32,
}

/// What [`PieceCache::export_to`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Pieces verified and written.
    pub written: u32,
    /// Pieces that failed verification on the way out: dropped from the
    /// cache (to be fetched again) and not written.
    pub dropped: Vec<u32>,
}

/// An open content: its manifest and its piece file.
struct OpenContent {
    manifest: Arc<Manifest>,
    file: File,
    path: PathBuf,
    /// Held while writing a piece: concurrent writes to one file queue on
    /// this (sleeping) instead of spinning on the inode's lock in the kernel.
    writing: Mutex<()>,
    synced: GroupCommit,
    /// Its publication says peers never get it (read at open, kept in step
    /// by [`PieceCache::set_publication`]), so serving a piece costs no
    /// lookup.
    confidential: AtomicBool,
}

/// The piece cache. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct PieceCache {
    db: crate::sealed_db::DurableDb,
    manifests: sled::Tree,
    have: sled::Tree,
    entries: sled::Tree,
    /// Content id -> the server's signed publication, relayed to peers.
    publications: sled::Tree,
    pieces_dir: PathBuf,
    quota: u64,
    open: Mutex<HashMap<ContentId, Arc<OpenContent>>>,
    /// Serialises add, evict and remove, so two adds cannot both pass the quota.
    admit: Mutex<()>,
    /// Shares sled flushes among pieces marked at the same time.
    flushed: GroupCommit,
}

impl PieceCache {
    /// Opens (or creates) the cache in `config.dir`.
    pub fn open(config: &CacheConfig) -> Result<Self, CacheError> {
        let pieces_dir = config.dir.join("pieces");
        std::fs::create_dir_all(&pieces_dir).map_err(io_err("create", &pieces_dir))?;
        let db = crate::sealed_db::open(
            &config.dir.join("db"),
            sled::Config::new().cache_capacity(config.sled_cache_bytes),
        )?;
        Ok(PieceCache {
            manifests: db.open_tree("manifests")?,
            have: db.open_tree("have")?,
            entries: db.open_tree("entries")?,
            publications: db.open_tree("publications")?,
            db,
            pieces_dir,
            quota: config.quota_bytes,
            open: Mutex::new(HashMap::new()),
            admit: Mutex::new(()),
            flushed: GroupCommit::default(),
        })
    }

    /// The underlying sled database, for other small records of the node
    /// (its id, its settings) that must share the cache's durability.
    pub fn db(&self) -> &crate::sealed_db::DurableDb {
        &self.db
    }

    fn piece_path(&self, id: &ContentId) -> PathBuf {
        self.pieces_dir.join(format!("{}.data", id.to_hex()))
    }

    fn entry(&self, id: &ContentId) -> Result<Option<Entry>, CacheError> {
        match self.entries.get(id.0)? {
            Some(bytes) => Ok(Some(records::decode(&bytes, || format!("entries/{id}"))?)),
            None => Ok(None),
        }
    }

    fn put_entry(&self, id: &ContentId, entry: &Entry) -> Result<(), CacheError> {
        self.entries.insert(id.0, records::encode(entry))?;
        Ok(())
    }

    /// The manifest of a content in the cache.
    pub fn manifest(&self, id: &ContentId) -> Result<Option<Arc<Manifest>>, CacheError> {
        match self.opened(id) {
            Ok(open) => Ok(Some(open.manifest.clone())),
            Err(CacheError::Unknown(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn opened(&self, id: &ContentId) -> Result<Arc<OpenContent>, CacheError> {
        if let Some(open) = crate::lock_unpoisoned(&self.open).get(id) {
            return Ok(open.clone());
        }
        let bytes = self.manifests.get(id.0)?.ok_or(CacheError::Unknown(*id))?;
        let manifest = Manifest::from_bytes(&bytes)?;
        let confidential = self
            .publication(id)?
            .is_some_and(|p| p.publication.confidential);
        let path = self.piece_path(id);
        let file = piece_file(&path, "open")?;
        let open = Arc::new(OpenContent {
            manifest: Arc::new(manifest),
            file,
            path,
            writing: Mutex::new(()),
            synced: GroupCommit::default(),
            confidential: AtomicBool::new(confidential),
        });
        crate::lock_unpoisoned(&self.open).insert(*id, open.clone());
        Ok(open)
    }

    /// Adds a content (its manifest) to the cache, evicting least-recently-used
    /// complete, unpinned contents if the quota needs room. Adding a content
    /// that is already present only refreshes its last use. Returns the
    /// content's have-map.
    pub fn add(&self, manifest: &Manifest, pinned: bool) -> Result<PieceMap, CacheError> {
        manifest.validate()?;
        let id = manifest.content_id();
        let _admit = crate::lock_unpoisoned(&self.admit);
        if let Some(mut entry) = self.entry(&id)? {
            entry.last_used_ms = unix_ms();
            entry.pinned |= pinned;
            self.put_entry(&id, &entry)?;
            return self.have(&id);
        }
        self.make_room(manifest.size, &id)?;
        let path = self.piece_path(&id);
        let file = piece_file(&path, "create")?;
        file.set_len(manifest.size).map_err(io_err("size", &path))?;
        let map = PieceMap::new(manifest.piece_count());
        self.manifests.insert(id.0, manifest.to_bytes())?;
        self.have.insert(id.0, map.raw())?;
        let entry = Entry {
            size: manifest.size,
            pinned,
            complete: manifest.size == 0,
            last_used_ms: unix_ms(),
        };
        self.put_entry(&id, &entry)?;
        self.db.flush()?;
        Ok(map)
    }

    /// Evicts LRU complete unpinned contents until `need` more bytes fit.
    fn make_room(&self, need: u64, adding: &ContentId) -> Result<(), CacheError> {
        let mut entries = self.all_entries()?;
        let mut reserved: u64 = entries.iter().map(|(_, e)| e.size).sum();
        if reserved + need <= self.quota {
            return Ok(());
        }
        entries.retain(|(id, e)| e.complete && !e.pinned && id != adding);
        entries.sort_by_key(|(_, e)| e.last_used_ms);
        for (id, entry) in entries {
            if reserved + need <= self.quota {
                break;
            }
            tracing::info!(content = %id, bytes = entry.size, "evicting least recently used content to make room");
            self.remove_locked(&id)?;
            reserved -= entry.size;
        }
        if reserved + need > self.quota {
            return Err(CacheError::QuotaExceeded {
                need,
                quota: self.quota,
                pinned_or_busy: reserved,
            });
        }
        Ok(())
    }

    fn all_entries(&self) -> Result<Vec<(ContentId, Entry)>, CacheError> {
        let mut out = Vec::new();
        for item in self.entries.iter() {
            let (key, value) = item?;
            let id = key_to_id(&key, "entries")?;
            out.push((id, records::decode(&value, || format!("entries/{id}"))?));
        }
        Ok(out)
    }

    /// Verifies and stores one piece: **verify, write, sync, mark**. A piece
    /// already held is not written again.
    pub fn put_piece(
        &self,
        id: &ContentId,
        index: u32,
        bytes: &[u8],
    ) -> Result<PutOutcome, CacheError> {
        let open = self.opened(id)?;
        open.manifest.verify_piece(index, bytes)?;
        let before = self.have(id)?;
        if before.get(index) {
            return Ok(PutOutcome {
                newly_stored: false,
                complete: before.is_complete(),
                have: before.count(),
            });
        }
        let offset = open.manifest.piece_offset(index);
        {
            let _writing = crate::lock_unpoisoned(&open.writing);
            open.file
                .write_all_at(bytes, offset)
                .map_err(io_err("write", &open.path))?;
        }
        // Verify, write, sync, mark: concurrent pieces share one sync.
        open.synced
            .commit(|| open.file.sync_data())
            .map_err(io_err("sync", &open.path))?;
        let after = self.mark(id, open.manifest.piece_count(), index)?;
        let complete = after.is_complete();
        if complete {
            self.update_entry(id, |e| e.complete = true)?;
        }
        self.flushed.commit(|| self.db.flush().map(|_| ()))?;
        Ok(PutOutcome {
            newly_stored: true,
            complete,
            have: after.count(),
        })
    }

    /// Sets a piece's bit in the durable have-map (atomically against
    /// concurrent marks) and returns the new map.
    fn mark(&self, id: &ContentId, len: u32, index: u32) -> Result<PieceMap, CacheError> {
        let updated = self.have.update_and_fetch(id.0, |old| {
            let mut map = old
                .and_then(|raw| PieceMap::from_raw(len, raw.to_vec()).ok())
                .unwrap_or_else(|| PieceMap::new(len));
            map.set(index);
            Some(map.raw().to_vec())
        })?;
        let raw = updated.ok_or(CacheError::Unknown(*id))?;
        Ok(PieceMap::from_raw(len, raw.to_vec()).expect("we just wrote a map of this length"))
    }

    fn update_entry(
        &self,
        id: &ContentId,
        change: impl FnOnce(&mut Entry),
    ) -> Result<(), CacheError> {
        let mut entry = self.entry(id)?.ok_or(CacheError::Unknown(*id))?;
        change(&mut entry);
        self.put_entry(id, &entry)
    }

    /// The have-map of a content.
    pub fn have(&self, id: &ContentId) -> Result<PieceMap, CacheError> {
        let open = self.opened(id)?;
        let raw = self.have.get(id.0)?.ok_or(CacheError::Unknown(*id))?;
        PieceMap::from_raw(open.manifest.piece_count(), raw.to_vec()).map_err(|e| {
            BadRecord {
                what: format!("have/{id}"),
                reason: e.to_string(),
            }
            .into()
        })
    }

    /// Reads a held piece, verifying it again on the way out so bit rot on
    /// disk is never served. A piece that fails is unmarked and reported.
    pub fn read_piece(&self, id: &ContentId, index: u32) -> Result<Vec<u8>, CacheError> {
        let open = self.opened(id)?;
        if !self.have(id)?.get(index) {
            return Err(CacheError::NotHeld { id: *id, index });
        }
        let mut buf =
            vec![0u8; usize::try_from(open.manifest.piece_len(index)).expect("piece fits memory")];
        let read = open
            .file
            .read_exact_at(&mut buf, open.manifest.piece_offset(index));
        // A piece file cut short lost the pieces past its end: they rotted.
        let short = matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof);
        if !short {
            read.map_err(io_err("read", &open.path))?;
        }
        if short || open.manifest.verify_piece(index, &buf).is_err() {
            tracing::error!(content = %id, piece = index, "stored piece failed verification; dropping it");
            self.unmark(id, open.manifest.piece_count(), index)?;
            return Err(CacheError::Corrupt { id: *id, index });
        }
        Ok(buf)
    }

    /// Keeps what the server signed about a content, to relay to peers.
    pub fn set_publication(&self, signed: &SignedPublication) -> Result<(), CacheError> {
        let id = signed.publication.content;
        self.publications.insert(id.0, records::encode(signed))?;
        if let Some(open) = crate::lock_unpoisoned(&self.open).get(&id) {
            open.confidential
                .store(signed.publication.confidential, Ordering::Relaxed);
        }
        Ok(())
    }

    /// What the server signed about a content, if it was kept.
    pub fn publication(&self, id: &ContentId) -> Result<Option<SignedPublication>, CacheError> {
        match self.publications.get(id.0)? {
            Some(bytes) => Ok(Some(records::decode(&bytes, || {
                format!("publications/{id}")
            })?)),
            None => Ok(None),
        }
    }

    /// [`PieceCache::read_piece`] for a peer: a confidential content is
    /// refused.
    pub fn read_piece_to_share(&self, id: &ContentId, index: u32) -> Result<Vec<u8>, CacheError> {
        if self.opened(id)?.confidential.load(Ordering::Relaxed) {
            return Err(CacheError::Confidential(*id));
        }
        self.read_piece(id, index)
    }

    fn unmark(&self, id: &ContentId, len: u32, index: u32) -> Result<(), CacheError> {
        self.have.update_and_fetch(id.0, |old| {
            let mut map = PieceMap::from_raw(len, old?.to_vec()).ok()?;
            map.clear(index);
            Some(map.raw().to_vec())
        })?;
        self.update_entry(id, |e| e.complete = false)?;
        self.db.flush()?;
        Ok(())
    }

    /// Writes a complete content into `out` (a file the caller opened, named
    /// `label` in errors), **verifying every piece as it copies**: a piece
    /// that rotted on disk is dropped from the cache (unmarked, so it is
    /// fetched again), is not written, and is listed in
    /// [`Exported::dropped`]. `pieces` names the pieces to write (`None`:
    /// all, and the file is first sized to the content). The caller syncs
    /// and renames `out`; it is whole only when no piece was dropped.
    pub fn export_to(
        &self,
        id: &ContentId,
        out: &File,
        label: &Path,
        pieces: Option<&[u32]>,
    ) -> Result<Exported, CacheError> {
        let open = self.opened(id)?;
        let have = self.have(id)?;
        let whole = pieces.is_none();
        let pieces: Cow<'_, [u32]> = match pieces {
            Some(pieces) => Cow::Borrowed(pieces),
            None => Cow::Owned((0..open.manifest.piece_count()).collect()),
        };
        if !pieces.iter().all(|&i| have.get(i)) {
            return Err(CacheError::Incomplete {
                id: *id,
                have: have.count(),
                total: have.len(),
            });
        }
        if whole {
            out.set_len(open.manifest.size)
                .map_err(io_err("size", label))?;
        }
        let mut exported = Exported::default();
        for &index in pieces.iter() {
            match self.read_piece(id, index) {
                Ok(bytes) => {
                    out.write_all_at(&bytes, open.manifest.piece_offset(index))
                        .map_err(io_err("write", label))?;
                    exported.written += 1;
                }
                Err(CacheError::Corrupt { .. }) => exported.dropped.push(index),
                Err(e) => return Err(e),
            }
        }
        self.update_entry(id, |e| e.last_used_ms = unix_ms())?;
        Ok(exported)
    }

    /// Pins or unpins a content; pinned contents are never evicted.
    pub fn set_pinned(&self, id: &ContentId, pinned: bool) -> Result<(), CacheError> {
        self.update_entry(id, |e| e.pinned = pinned)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes a content and its bytes.
    pub fn remove(&self, id: &ContentId) -> Result<(), CacheError> {
        let _admit = crate::lock_unpoisoned(&self.admit);
        self.remove_locked(id)
    }

    fn remove_locked(&self, id: &ContentId) -> Result<(), CacheError> {
        // Unmark first: a crash part-way leaves bytes without marks (garbage
        // that `open` ignores), never marks without bytes.
        self.have.remove(id.0)?;
        self.entries.remove(id.0)?;
        self.manifests.remove(id.0)?;
        self.publications.remove(id.0)?;
        self.db.flush()?;
        crate::lock_unpoisoned(&self.open).remove(id);
        let path = self.piece_path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// A content's manifest as its record holds it, without opening its
    /// piece file.
    pub fn stored_manifest(&self, id: &ContentId) -> Result<Option<Manifest>, CacheError> {
        match self.manifests.get(id.0)? {
            Some(bytes) => Ok(Some(Manifest::from_bytes(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The number of the last server purge this cache has applied (0 if
    /// none).
    pub fn purges_seen(&self) -> Result<u64, CacheError> {
        match self.db.get(PURGES_SEEN)? {
            Some(bytes) => Ok(records::decode(&bytes, || "purges-seen".to_owned())?),
            None => Ok(0),
        }
    }

    /// Removes the `purged` contents, then records `seen` as the last
    /// purge applied, durably: a crash in between leaves the number
    /// unrecorded, and the purges are asked for and applied again.
    pub fn apply_purges(&self, purged: &[ContentId], seen: u64) -> Result<(), CacheError> {
        for id in purged {
            self.remove(id)?;
        }
        self.db.insert(PURGES_SEEN, records::encode(&seen))?;
        self.db.flush()?;
        Ok(())
    }
}

/// A content's piece file, made if missing, never cut short.
fn piece_file(path: &Path, op: &'static str) -> Result<File, CacheError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(op, path))
}

fn key_to_id(key: &[u8], tree: &str) -> Result<ContentId, BadRecord> {
    <[u8; 32]>::try_from(key)
        .map(crate::content::Hash)
        .map_err(|_| BadRecord {
            what: format!("{tree}/<key>"),
            reason: format!("key of {} bytes", key.len()),
        })
}

mod error;
mod listing;

pub use error::CacheError;
use error::io_err;
pub use listing::{ContentSummary, Usage};

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test data sizes are small
mod tests;
