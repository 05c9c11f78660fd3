//! Opening a sled database only if it is whole, and changing nothing when
//! it is not.
//!
//! sled recovers from a damaged log by keeping what it can read: a
//! database whose first bytes are garbage, or that was truncated, opens as
//! an empty one, and sled rewrites its files. For a node that would mean
//! starting with no metadata (or no cache) and destroying the evidence. So
//! every database this crate makes carries a **mark** (a key written when it
//! is made), and a **seal** file beside it says the mark is there. At open:
//!
//! - a database made by this version (sealed) is first opened as a copy;
//!   if the copy lacks the mark, the database is damaged: the open fails
//!   naming the path and what to do, and the files are left as they were;
//! - a database without a seal (new, or made by an earlier version) is
//!   opened and given its mark and seal.
//!
//! **Flushing is made durable here.** sled 0.34 on Linux flushes its log
//! with `sync_file_range`, which writes the data out but commits neither
//! the file's new size nor its new blocks: after a power cut the log is
//! cut short. The crash harness (`tests/crash_consistency.rs`) lost an
//! acknowledged publish that way. So the database is a [`DurableDb`],
//! whose `flush` also `fdatasync`s the log file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The key every database made here holds.
const MARK: &[u8] = b"branchline-db-mark";
/// The seal file beside the database's directory: `<dir>.seal`.
const SEAL_EXTENSION: &str = "seal";

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// sled failed.
    #[error("database {path}: {source}")]
    Db {
        /// The database's directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// The database lost the records it was made with.
    #[error(
        "the database in {0} is damaged (it opens without the records it was made with); nothing was changed: restore it from a backup, or move it away to start with an empty one"
    )]
    Damaged(PathBuf),
    /// Checking or sealing failed on the file system.
    #[error("database {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn seal_of(dir: &Path) -> PathBuf {
    let mut seal = dir.as_os_str().to_owned();
    seal.push(".");
    seal.push(SEAL_EXTENSION);
    PathBuf::from(seal)
}

/// A sled database whose [`DurableDb::flush`] is durable on Linux too.
/// Everything else is sled's (through `Deref`).
#[derive(Debug)]
pub struct DurableDb {
    db: sled::Db,
    /// sled's log file, synced after each flush.
    log: File,
}

impl std::ops::Deref for DurableDb {
    type Target = sled::Db;
    fn deref(&self) -> &sled::Db {
        &self.db
    }
}

impl DurableDb {
    /// Flushes sled's buffers, then syncs its log file (data, size and
    /// blocks): what was written before is on disk when this returns.
    pub fn flush(&self) -> sled::Result<usize> {
        let flushed = self.db.flush()?;
        self.log.sync_data().map_err(sled::Error::Io)?;
        Ok(flushed)
    }
}

/// Syncs a directory, so the entries made in it (new files) are durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens the sled database in `dir` with `config` (whose path is set
/// here), refusing a damaged one without touching it.
pub fn open(dir: &Path, config: sled::Config) -> Result<DurableDb, OpenError> {
    let seal = seal_of(dir);
    if seal.exists() {
        check_copy(dir)?;
    }
    let db = config.path(dir).open().map_err(|source| OpenError::Db {
        path: dir.to_owned(),
        source,
    })?;
    let db_err = |source| OpenError::Db {
        path: dir.to_owned(),
        source,
    };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OpenError::Io { path, source }
    };
    let log_path = dir.join("db");
    let log = File::open(&log_path).map_err(io(&log_path))?;
    let db = DurableDb { db, log };
    if !seal.exists() {
        db.insert(MARK, &[1u8][..]).map_err(db_err)?;
        db.flush().map_err(db_err)?;
        // The database's files, then the seal, each durable in turn.
        sync_dir(dir).map_err(io(dir))?;
        let mut file = File::create(&seal).map_err(io(&seal))?;
        file.write_all(b"this database carries its mark\n")
            .and_then(|()| file.sync_all())
            .map_err(io(&seal))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent).map_err(io(parent))?;
        }
    } else if !db.contains_key(MARK).map_err(db_err)? {
        // Damaged between the check and the open: still refused.
        return Err(OpenError::Damaged(dir.to_owned()));
    }
    Ok(db)
}

/// Opens a copy of the database in `dir` and checks it holds its mark.
fn check_copy(dir: &Path) -> Result<(), OpenError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OpenError::Io { path, source }
    };
    let mut copy = dir.as_os_str().to_owned();
    copy.push(".check");
    let copy = PathBuf::from(copy);
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(io(&copy))?;
    }
    copy_tree(dir, &copy).map_err(io(dir))?;
    let opened = sled::Config::new()
        .path(&copy)
        .cache_capacity(1 << 20)
        .open();
    let whole = match &opened {
        Ok(db) => db.contains_key(MARK).unwrap_or(false),
        Err(_) => false,
    };
    drop(opened);
    std::fs::remove_dir_all(&copy).map_err(io(&copy))?;
    match whole {
        true => Ok(()),
        false => Err(OpenError::Damaged(dir.to_owned())),
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_garbled_or_truncated_database_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        {
            let db = open(&db_dir, sled::Config::new()).unwrap();
            db.insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        // Reopened whole: fine.
        drop(open(&db_dir, sled::Config::new()).unwrap());
        let file = db_dir.join("db");
        let good = sha(&file);
        for damage in ["garbage", "truncated"] {
            match damage {
                "garbage" => {
                    let mut bytes = good.clone();
                    for (i, b) in bytes.iter_mut().take(2000).enumerate() {
                        *b = u8::try_from(i % 251).unwrap() ^ 0x5a;
                    }
                    std::fs::write(&file, &bytes).unwrap();
                }
                _ => std::fs::write(&file, &good[..100]).unwrap(),
            }
            let before = sha(&file);
            let err = open(&db_dir, sled::Config::new()).unwrap_err();
            assert!(matches!(err, OpenError::Damaged(_)), "{damage}: {err}");
            assert!(err.to_string().contains("nothing was changed"), "{err}");
            assert_eq!(
                sha(&file),
                before,
                "{damage}: the damaged file is untouched"
            );
            assert!(
                !dir.path().join("db.check").exists(),
                "the copy is cleaned up"
            );
        }
    }

    #[test]
    fn a_database_of_an_earlier_version_is_sealed_at_its_first_open() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        {
            // Made without a seal, as earlier versions did.
            let db = sled::Config::new().path(&db_dir).open().unwrap();
            db.insert(b"old", b"record").unwrap();
            db.flush().unwrap();
        }
        let db = open(&db_dir, sled::Config::new()).unwrap();
        assert_eq!(db.get(b"old").unwrap().as_deref(), Some(&b"record"[..]));
        assert!(seal_of(&db_dir).exists());
    }
}
