//! The start-up self-check of a piece cache: was the last run stopped
//! cleanly, and if not, does every piece the cache holds still hash to its
//! manifest?
//!
//! A run is marked in sled when the node starts and unmarked when it stops
//! cleanly, so a node killed at any moment finds the mark at its next start
//! and checks every held piece before trusting it. A piece that fails is
//! unmarked (the cache's rule: a set bit means durable, verified bytes) and
//! fetched again like any missing piece. The rule "verify, write, sync,
//! mark" means a check after a crash should find nothing; the check is how
//! a node shows that, and how it catches a disk that lied.

use serde::{Deserialize, Serialize};

use crate::content::ContentId;
use crate::piece_cache::{CacheError, PieceCache};

/// The sled key present while a node runs on the cache.
const RUNNING: &[u8] = b"node-running";

/// How the previous run on a cache ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviousRun {
    /// The cache is new, or its last node stopped cleanly.
    Clean,
    /// The last node was killed, crashed or lost power.
    Unclean,
}

/// What a self-check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfCheck {
    /// Contents checked.
    pub contents: u32,
    /// Held pieces read and verified.
    pub pieces: u64,
    /// Pieces that failed and were dropped from the cache.
    pub corrupt: Vec<(ContentId, u32)>,
    /// Contents that could not be read (an I/O error, a damaged record):
    /// forgotten by the cache, so they are fetched again when asked for.
    /// The check goes on with the others.
    #[serde(default)]
    pub unreadable: Vec<Unreadable>,
}

/// A content the self-check could not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The content.
    pub content: ContentId,
    /// Its piece count, if its manifest could still be read (to tell the
    /// server this node now holds none of it).
    pub pieces: Option<u32>,
    /// What failed.
    pub error: String,
}

/// Marks a run as started, durably; says how the previous one ended.
pub fn begin_run(cache: &PieceCache) -> Result<PreviousRun, CacheError> {
    let db = cache.db();
    let previous = db.insert(RUNNING, &[1u8][..])?;
    db.flush()?;
    Ok(match previous {
        Some(_) => PreviousRun::Unclean,
        None => PreviousRun::Clean,
    })
}

/// Marks the run as stopped cleanly.
pub fn end_run(cache: &PieceCache) -> Result<(), CacheError> {
    let db = cache.db();
    db.remove(RUNNING)?;
    db.flush()?;
    Ok(())
}

/// Reads and verifies every held piece of every content; drops those that
/// fail. A content that cannot be read at all is forgotten and listed in
/// [`SelfCheck::unreadable`], and the check goes on with the others; only
/// a failure of the cache's database itself stops it.
pub fn check_all(cache: &PieceCache) -> Result<SelfCheck, CacheError> {
    let mut found = SelfCheck::default();
    for id in cache.content_ids()? {
        found.contents += 1;
        match check_one(cache, &id, &mut found) {
            Ok(()) => {}
            Err(CacheError::Db(e)) => return Err(CacheError::Db(e)),
            Err(e) => {
                tracing::error!(content = %id, error = %e, "start-up check: the content cannot be read; forgetting it (it is fetched again when asked for)");
                let pieces = cache
                    .stored_manifest(&id)
                    .ok()
                    .flatten()
                    .map(|m| m.piece_count());
                if let Err(forget) = cache.remove(&id) {
                    tracing::warn!(content = %id, error = %forget, "could not remove all of the unreadable content");
                }
                found.unreadable.push(Unreadable {
                    content: id,
                    pieces,
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(found)
}

/// Checks the held pieces of one content into `found`.
fn check_one(cache: &PieceCache, id: &ContentId, found: &mut SelfCheck) -> Result<(), CacheError> {
    let have = match cache.have(id) {
        Ok(have) => have,
        // Evicted or purged while the check ran.
        Err(CacheError::Unknown(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for index in have.iter_set() {
        match cache.read_piece(id, index) {
            Ok(_) => found.pieces += 1,
            Err(CacheError::Corrupt { id, index }) => {
                found.pieces += 1;
                found.corrupt.push((id, index));
            }
            Err(CacheError::NotHeld { .. } | CacheError::Unknown(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::content::Manifest;
    use crate::piece_cache::CacheConfig;

    const PIECE: u32 = 16 * 1024;

    fn open(dir: &std::path::Path) -> PieceCache {
        PieceCache::open(&CacheConfig {
            dir: dir.to_owned(),
            quota_bytes: 1 << 30,
            sled_cache_bytes: 1 << 20,
        })
        .unwrap()
    }

    fn stored(cache: &PieceCache) -> (Manifest, Vec<u8>) {
        let data: Vec<u8> = (0..4 * PIECE).map(|i| (i * 7 % 251) as u8).collect();
        let manifest = Manifest::from_reader("pkg", &data[..], PIECE, |_| {}).unwrap();
        cache.add(&manifest, false).unwrap();
        for (i, chunk) in data.chunks(PIECE as usize).enumerate() {
            cache
                .put_piece(&manifest.content_id(), u32::try_from(i).unwrap(), chunk)
                .unwrap();
        }
        (manifest, data)
    }

    #[test]
    fn a_new_cache_and_a_clean_stop_need_no_check_but_a_kill_does() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path());
        assert_eq!(begin_run(&cache).unwrap(), PreviousRun::Clean);
        end_run(&cache).unwrap();
        assert_eq!(begin_run(&cache).unwrap(), PreviousRun::Clean);
        // No end_run: the node died.
        drop(cache);
        let cache = open(dir.path());
        assert_eq!(begin_run(&cache).unwrap(), PreviousRun::Unclean);
    }

    #[test]
    fn the_check_reads_every_held_piece_and_drops_only_the_rotten_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path());
        let (manifest, _) = stored(&cache);
        let id = manifest.content_id();
        let clean = check_all(&cache).unwrap();
        assert_eq!((clean.contents, clean.pieces), (1, 4));
        assert!(clean.corrupt.is_empty());

        // The disk changes one byte of piece 2 behind the cache's back.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(
                dir.path()
                    .join("pieces")
                    .join(format!("{}.data", id.to_hex())),
            )
            .unwrap();
        file.write_all_at(&[0xFF], u64::from(2 * PIECE + 5))
            .unwrap();
        let found = check_all(&cache).unwrap();
        assert_eq!(found.pieces, 4);
        assert_eq!(found.corrupt, vec![(id, 2)]);
        let have = cache.have(&id).unwrap();
        assert_eq!(have.iter_set().collect::<Vec<_>>(), vec![0, 1, 3]);
        // Checked again, the rest is sound and the dropped piece is gone.
        let again = check_all(&cache).unwrap();
        assert_eq!((again.pieces, again.corrupt.len()), (3, 0));
    }

    #[test]
    fn an_unreadable_content_is_forgotten_and_the_check_goes_on_with_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path());
        let (first, _) = stored(&cache);
        let data: Vec<u8> = (0..2 * PIECE).map(|i| (i * 13 % 241) as u8).collect();
        let second = Manifest::from_reader("other", &data[..], PIECE, |_| {}).unwrap();
        cache.add(&second, false).unwrap();
        for (i, chunk) in data.chunks(PIECE as usize).enumerate() {
            cache
                .put_piece(&second.content_id(), u32::try_from(i).unwrap(), chunk)
                .unwrap();
        }
        drop(cache);
        // The first content's piece file becomes something no read works
        // on (a directory: EISDIR, as a failing disk gives EIO).
        let path = dir
            .path()
            .join("pieces")
            .join(format!("{}.data", first.content_id().to_hex()));
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let cache = open(dir.path());
        let found = check_all(&cache).unwrap();
        assert_eq!(found.contents, 2);
        assert_eq!(
            found.pieces, 2,
            "every piece of the second content was read"
        );
        assert_eq!(found.unreadable.len(), 1);
        let lost = &found.unreadable[0];
        assert_eq!((lost.content, lost.pieces), (first.content_id(), Some(4)));
        assert!(lost.error.contains("Is a directory"), "{lost:?}");
        assert!(matches!(
            cache.have(&first.content_id()),
            Err(CacheError::Unknown(_))
        ));
        assert_eq!(cache.have(&second.content_id()).unwrap().count(), 2);
    }
}
