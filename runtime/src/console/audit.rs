//! The audit log (C3): every change made to the server, by whom, from
//! where and when, in the server's metadata store (tree `audit`: a
//! sequence number, big-endian, -> the entry), so it survives restarts
//! and lists in the order things happened. The console shows it; the
//! command line prints it with `branchline admin audit`.
//!
//! Entries are appended, never changed. Each append is durable before the
//! change it records is answered, so a change nobody can see in the log
//! was not made.

use branchline_actors::wire::AuditEntry;
use branchline_storage::MetaStore;
use branchline_storage::records::{self, BadRecord, unix_ms};

/// The sled tree of entries.
const TREE: &str = "audit";

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// sled failed.
    #[error("the server's audit log failed: {0}")]
    Db(#[from] sled::Error),
    /// A kept entry does not decode.
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
}

/// Who asks for a change, and from where: what the log records of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// An account's name, `token <id> (<name>)`, or `local administrator`.
    pub who: String,
    /// The console client's address, or `admin socket`.
    pub from: String,
}

impl Caller {
    /// Whoever uses the admin socket: the server's own account on its host.
    pub fn admin_socket() -> Self {
        Caller {
            who: "local administrator".into(),
            from: "admin socket".into(),
        }
    }
}

/// The audit log kept in the server's metadata store.
pub struct AuditLog {
    tree: sled::Tree,
    meta: std::sync::Arc<MetaStore>,
}

impl AuditLog {
    /// The log of the server whose store is `meta`.
    pub fn open(meta: std::sync::Arc<MetaStore>) -> Result<Self, AuditError> {
        Ok(AuditLog {
            tree: meta.db().open_tree(TREE)?,
            meta,
        })
    }

    /// Appends an entry; durable when it returns. Its sequence number.
    pub fn record(&self, who: &str, what: &str, from: &str) -> Result<u64, AuditError> {
        // sled's ids are unique and increase across restarts.
        let seq = self.meta.db().generate_id()? + 1;
        let entry = AuditEntry {
            seq,
            at_ms: unix_ms(),
            who: who.to_owned(),
            what: what.to_owned(),
            from: from.to_owned(),
        };
        self.tree
            .insert(seq.to_be_bytes(), records::encode(&entry))?;
        self.meta.db().flush()?;
        Ok(seq)
    }

    /// The newest `most` entries, oldest first.
    pub fn recent(&self, most: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let mut entries = Vec::new();
        for item in self.tree.iter().rev().take(most) {
            let (_, value) = item?;
            entries.push(records::decode(&value, || "audit/<seq>".to_owned())?);
        }
        entries.reverse();
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_list_in_order_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
            let log = AuditLog::open(meta).unwrap();
            log.record("local:0", "add-user ada (admin)", "admin socket")
                .unwrap();
            log.record("ada", "purge 1234", "127.0.0.1").unwrap();
        }
        let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        let log = AuditLog::open(meta).unwrap();
        log.record("ada", "topology import (3 offices)", "127.0.0.1")
            .unwrap();
        let whats: Vec<String> = log
            .recent(10)
            .unwrap()
            .into_iter()
            .map(|e| e.what)
            .collect();
        assert_eq!(
            whats,
            [
                "add-user ada (admin)",
                "purge 1234",
                "topology import (3 offices)"
            ]
        );
        let newest = log.recent(1).unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].who, "ada");
        let seqs: Vec<u64> = log.recent(10).unwrap().iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
}
