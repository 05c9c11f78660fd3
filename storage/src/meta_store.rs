//! The server's metadata store: contents (manifest and origins), clients,
//! which pieces each client holds, and named settings such as the topology.
//!
//! Holdings are one have-map per (content, client), keyed
//! `content id (32 bytes) ++ client id (16 bytes)`, so "who holds X" is one
//! prefix scan and 100k clients holding a 1 GiB content cost about 13 MB.
//! The server keeps its working set in memory and writes through to here; on
//! start it reloads from here.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::Transactional;

use crate::content::{ContentId, Manifest};
use crate::origin::OriginKind;
use crate::piece_cache::CacheError;
use crate::piece_map::PieceMap;
use crate::records::{self, BadRecord};

/// A node's identity: 16 random bytes, made on first start and kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 16]);

crate::hex_id::hex_id_serde!(NodeId, 16);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::content::hex(&self.0))
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// A published content as the server keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentRecord {
    /// The manifest.
    pub manifest: Manifest,
    /// Where the bytes live: `http(s)://` or `file://` URLs, tried in order.
    pub origins: Vec<String>,
    /// When it was published, ms since the epoch.
    pub published_ms: u64,
}

/// A registered client as the server keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client's id.
    pub id: NodeId,
    /// A name for people (host name or configured).
    pub name: String,
    /// The address peers of its office reach it at (its foreground QUIC
    /// endpoint).
    pub addr: std::net::SocketAddr,
    /// The address RVPs of child offices reach it at (its background QUIC
    /// endpoint, for transfers between offices).
    pub background: std::net::SocketAddr,
    /// Last heartbeat, ms since the epoch.
    pub last_seen_ms: u64,
}

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// sled failed.
    #[error("metadata database error: {0}")]
    Db(#[from] sled::Error),
    /// A record could not be decoded.
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    /// The database could not be opened, or is damaged.
    #[error(transparent)]
    Open(#[from] crate::sealed_db::OpenError),
}

impl From<MetaError> for CacheError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Db(e) => CacheError::Db(e),
            MetaError::BadRecord(e) => CacheError::BadRecord(e),
            MetaError::Open(e) => CacheError::Open(e),
        }
    }
}

/// The server's sled store.
pub struct MetaStore {
    db: crate::sealed_db::DurableDb,
    contents: sled::Tree,
    clients: sled::Tree,
    holdings: sled::Tree,
    settings: sled::Tree,
    /// Content id -> nothing: the contents published as confidential.
    confidential: sled::Tree,
    /// Content id -> nothing: every content ever published shareable,
    /// kept after a purge (peers may still hold its signed publication).
    shared: sled::Tree,
    /// Content id -> the kind of each of its origins, in the record's order
    /// (contents published before kinds were kept have none: see
    /// [`crate::origin::OriginKind::infer`]).
    origin_kinds: sled::Tree,
    /// Purge sequence number (u64, big-endian) -> content id: every purge
    /// ever made, in order, so a client that was away for any time learns
    /// each one it missed (no clock involved).
    purges: sled::Tree,
}

fn purge_seq(key: &[u8]) -> Result<u64, BadRecord> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| BadRecord {
            what: "purges/<key>".into(),
            reason: format!("a key of {} bytes, not 8", key.len()),
        })
}

fn holding_key(content: &ContentId, client: &NodeId) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(&content.0);
    key[32..].copy_from_slice(&client.0);
    key
}

impl MetaStore {
    /// Opens (or creates) the store at `dir`.
    pub fn open(dir: &Path, sled_cache_bytes: u64) -> Result<Self, MetaError> {
        let db = crate::sealed_db::open(dir, sled::Config::new().cache_capacity(sled_cache_bytes))?;
        Ok(MetaStore {
            contents: db.open_tree("contents")?,
            clients: db.open_tree("clients")?,
            holdings: db.open_tree("holdings")?,
            settings: db.open_tree("settings")?,
            confidential: db.open_tree("confidential")?,
            shared: db.open_tree("shared")?,
            purges: db.open_tree("purges")?,
            origin_kinds: db.open_tree("origin_kinds")?,
            db,
        })
    }

    /// The underlying database, for the server's own small records (its
    /// `flush` is durable).
    pub fn db(&self) -> &crate::sealed_db::DurableDb {
        &self.db
    }

    /// Stores a content, the kind of each of its origins (in the record's
    /// order) and whether it is confidential, in one transaction, and
    /// flushes: a publish is durable when this returns.
    pub fn put_content(
        &self,
        record: &ContentRecord,
        kinds: &[OriginKind],
        confidential: bool,
    ) -> Result<(), MetaError> {
        let id = record.manifest.content_id().0;
        let encoded = records::encode(record);
        let kinds = records::encode(&kinds);
        (
            &self.contents,
            &self.confidential,
            &self.shared,
            &self.origin_kinds,
        )
            .transaction(|(contents, flags, shared, origin_kinds)| {
                contents.insert(&id, encoded.as_slice())?;
                origin_kinds.insert(&id, kinds.as_slice())?;
                match confidential {
                    true => flags.insert(&id, &[][..])?,
                    false => {
                        shared.insert(&id, &[][..])?;
                        flags.remove(&id)?
                    }
                };
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => MetaError::Db(e),
                sled::transaction::TransactionError::Abort(()) => {
                    unreachable!("the transaction never aborts")
                }
            })?;
        self.db.flush()?;
        Ok(())
    }

    /// Whether a content was ever published shareable (also if purged
    /// since): it can no longer become confidential.
    pub fn was_shared(&self, id: &ContentId) -> Result<bool, MetaError> {
        Ok(self.shared.contains_key(id.0)?)
    }

    /// The contents published as confidential.
    pub fn confidential(&self) -> Result<BTreeSet<ContentId>, MetaError> {
        let mut out = BTreeSet::new();
        for item in self.confidential.iter() {
            let (key, _) = item?;
            let id = <[u8; 32]>::try_from(key.as_ref()).map_err(|_| BadRecord {
                what: "confidential/<key>".into(),
                reason: format!("a key of {} bytes, not 32", key.len()),
            })?;
            out.insert(crate::content::Hash(id));
        }
        Ok(out)
    }

    /// Stores one of the server's named settings (such as the topology) and
    /// flushes: durable when this returns.
    pub fn put_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), MetaError> {
        self.settings.insert(name, records::encode(value))?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores several settings, already encoded with
    /// [`records::encode`], at once: after a crash all are stored or none.
    pub fn put_encoded_settings(&self, settings: Vec<(&str, Vec<u8>)>) -> Result<(), MetaError> {
        let mut batch = sled::Batch::default();
        for (name, bytes) in settings {
            batch.insert(name, bytes);
        }
        self.settings.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes a named setting, and flushes.
    pub fn remove_setting(&self, name: &str) -> Result<(), MetaError> {
        self.settings.remove(name)?;
        self.db.flush()?;
        Ok(())
    }

    /// A named setting, if one was stored.
    pub fn setting<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, MetaError> {
        match self.settings.get(name)? {
            Some(bytes) => Ok(Some(records::decode(&bytes, || {
                format!("settings/{name}")
            })?)),
            None => Ok(None),
        }
    }

    /// Purges a content: removes its record, its confidential mark and
    /// every holding of it, and records the purge under the next sequence
    /// number, all in one transaction (a crash leaves the content purged
    /// or not, never half), then flushes. Returns the purge's number.
    pub fn purge_content(&self, id: &ContentId) -> Result<u64, MetaError> {
        let mut holdings = Vec::new();
        for item in self.holdings.scan_prefix(id.0) {
            holdings.push(item?.0);
        }
        let seq = self.last_purge()? + 1;
        (
            &self.contents,
            &self.confidential,
            &self.holdings,
            &self.purges,
            &self.origin_kinds,
        )
            .transaction(|(contents, flags, held, purges, origin_kinds)| {
                contents.remove(&id.0)?;
                flags.remove(&id.0)?;
                origin_kinds.remove(&id.0)?;
                for key in &holdings {
                    held.remove(key)?;
                }
                purges.insert(&seq.to_be_bytes(), &id.0)?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => MetaError::Db(e),
                sled::transaction::TransactionError::Abort(()) => {
                    unreachable!("the transaction never aborts")
                }
            })?;
        self.db.flush()?;
        Ok(seq)
    }

    /// The number of the last purge (0 if none).
    pub fn last_purge(&self) -> Result<u64, MetaError> {
        match self.purges.last()? {
            Some((key, _)) => Ok(purge_seq(&key)?),
            None => Ok(0),
        }
    }

    /// The purges after `since`, in order, at most `most` of them.
    pub fn purges_since(
        &self,
        since: u64,
        most: usize,
    ) -> Result<Vec<(u64, ContentId)>, MetaError> {
        let mut out = Vec::new();
        for item in self.purges.range((since + 1).to_be_bytes()..).take(most) {
            let (key, value) = item?;
            let id = <[u8; 32]>::try_from(value.as_ref()).map_err(|_| BadRecord {
                what: "purges/<seq>".into(),
                reason: format!("a content id of {} bytes, not 32", value.len()),
            })?;
            out.push((purge_seq(&key)?, crate::content::Hash(id)));
        }
        Ok(out)
    }

    /// The kinds of a content's origins, in its record's order, if they
    /// were stored (contents published by an earlier version have none).
    pub fn origin_kinds(&self, id: &ContentId) -> Result<Option<Vec<OriginKind>>, MetaError> {
        match self.origin_kinds.get(id.0)? {
            Some(value) => Ok(Some(records::decode(&value, || {
                format!("origin_kinds/{id}")
            })?)),
            None => Ok(None),
        }
    }

    /// Every stored content.
    pub fn contents(&self) -> Result<Vec<ContentRecord>, MetaError> {
        let mut out = Vec::new();
        for item in self.contents.iter() {
            let (_, value) = item?;
            out.push(records::decode(&value, || "contents/<record>".into())?);
        }
        Ok(out)
    }

    /// Stores or replaces a client record.
    pub fn put_client(&self, record: &ClientRecord) -> Result<(), MetaError> {
        self.clients.insert(record.id.0, records::encode(record))?;
        Ok(())
    }

    /// Removes a client and all its holdings.
    pub fn remove_client(&self, id: &NodeId) -> Result<(), MetaError> {
        self.clients.remove(id.0)?;
        for item in self.holdings.iter() {
            let (key, _) = item?;
            if key.len() == 48 && key[32..] == id.0 {
                self.holdings.remove(key)?;
            }
        }
        Ok(())
    }

    /// Every stored client.
    pub fn clients(&self) -> Result<Vec<ClientRecord>, MetaError> {
        let mut out = Vec::new();
        for item in self.clients.iter() {
            let (_, value) = item?;
            out.push(records::decode(&value, || "clients/<record>".into())?);
        }
        Ok(out)
    }

    /// Stores what a client holds of a content.
    pub fn put_holding(
        &self,
        content: &ContentId,
        client: &NodeId,
        have: &PieceMap,
    ) -> Result<(), MetaError> {
        self.holdings
            .insert(holding_key(content, client), records::encode(have))?;
        Ok(())
    }

    /// Every (content, client, have-map) stored.
    pub fn holdings(&self) -> Result<Vec<(ContentId, NodeId, PieceMap)>, MetaError> {
        let mut out = Vec::new();
        for item in self.holdings.iter() {
            let (key, value) = item?;
            if key.len() != 48 {
                return Err(BadRecord {
                    what: "holdings/<key>".into(),
                    reason: format!("key of {} bytes", key.len()),
                }
                .into());
            }
            let content = crate::content::Hash(key[..32].try_into().expect("32 bytes"));
            let client = NodeId(key[32..].try_into().expect("16 bytes"));
            out.push((
                content,
                client,
                records::decode(&value, || format!("holdings/{content}/{client}"))?,
            ));
        }
        Ok(out)
    }

    /// Flushes pending writes to disk.
    pub fn flush(&self) -> Result<(), MetaError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::MIN_PIECE_SIZE;

    /// A content of `len` bytes, all `seed`, with no origin.
    fn record(seed: u8, len: usize) -> ContentRecord {
        ContentRecord {
            manifest: Manifest::from_reader("p", &vec![seed; len][..], MIN_PIECE_SIZE, |_| {})
                .unwrap(),
            origins: vec![],
            published_ms: 1,
        }
    }

    #[test]
    fn a_setting_is_durable_and_a_corrupt_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(store.setting::<Vec<String>>("topology").unwrap(), None);
            store
                .put_setting("topology", &vec!["hq".to_owned()])
                .unwrap();
        }
        let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            store.setting::<Vec<String>>("topology").unwrap(),
            Some(vec!["hq".to_owned()])
        );
        store.settings.insert("topology", &[99u8, 1][..]).unwrap();
        let err = store.setting::<Vec<String>>("topology").unwrap_err();
        assert!(err.to_string().contains("settings/topology"), "{err}");
    }

    #[test]
    fn records_survive_a_reopen_and_removing_a_client_drops_its_holdings() {
        let dir = tempfile::tempdir().unwrap();
        let manifest =
            Manifest::from_reader("p", &[7u8; 50_000][..], MIN_PIECE_SIZE, |_| {}).unwrap();
        let content = manifest.content_id();
        let a = NodeId([1; 16]);
        let b = NodeId([2; 16]);
        {
            let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
            store
                .put_content(
                    &ContentRecord {
                        manifest: manifest.clone(),
                        origins: vec!["file:///x".into()],
                        published_ms: 5,
                    },
                    &[OriginKind::FileStorage],
                    false,
                )
                .unwrap();
            for id in [a, b] {
                let record = ClientRecord {
                    id,
                    name: "n".into(),
                    addr: "127.0.0.1:1".parse().unwrap(),
                    background: "127.0.0.1:2".parse().unwrap(),
                    last_seen_ms: 1,
                };
                store.put_client(&record).unwrap();
                store
                    .put_holding(&content, &id, &PieceMap::full(4))
                    .unwrap();
            }
            store.remove_client(&a).unwrap();
            store.flush().unwrap();
        }
        let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.contents().unwrap()[0].manifest, manifest);
        assert_eq!(
            store.origin_kinds(&content).unwrap(),
            Some(vec![OriginKind::FileStorage])
        );
        assert_eq!(store.clients().unwrap().len(), 1);
        let holdings = store.holdings().unwrap();
        assert_eq!(holdings.len(), 1);
        assert_eq!(holdings[0].1, b);
    }

    #[test]
    fn damaged_origin_kinds_are_named_and_the_content_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
        let content = record(3, 50_000);
        let id = content.manifest.content_id();
        store
            .put_content(&content, &[OriginKind::Cdn], false)
            .unwrap();
        store.origin_kinds.insert(id.0, &[1u8, 0xff][..]).unwrap();
        let err = store.origin_kinds(&id).unwrap_err();
        assert!(
            err.to_string().contains(&format!("origin_kinds/{id}")),
            "{err}"
        );
        assert_eq!(store.contents().unwrap(), vec![content], "nothing lost");
    }

    #[test]
    fn confidentiality_is_stored_with_the_content_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, open) = (record(1, 50_000), record(2, 50_000));
        {
            let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
            store.put_content(&secret, &[], true).unwrap();
            store.put_content(&open, &[], false).unwrap();
        }
        let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
        let ids = store.confidential().unwrap();
        assert_eq!(
            ids.into_iter().collect::<Vec<_>>(),
            vec![secret.manifest.content_id()]
        );
        store.purge_content(&secret.manifest.content_id()).unwrap();
        assert!(store.confidential().unwrap().is_empty());
        assert_eq!(
            store.origin_kinds(&secret.manifest.content_id()).unwrap(),
            None,
            "the kinds go with the content"
        );
        assert_eq!(store.contents().unwrap().len(), 1);
        let open_id = open.manifest.content_id();
        assert!(store.was_shared(&open_id).unwrap());
        assert!(!store.was_shared(&secret.manifest.content_id()).unwrap());
        store.purge_content(&open_id).unwrap();
        assert!(store.was_shared(&open_id).unwrap(), "kept after a purge");
    }

    #[test]
    fn purges_are_numbered_in_order_and_take_the_holdings_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (record(3, 40_000), record(4, 40_000));
        let (ida, idb) = (a.manifest.content_id(), b.manifest.content_id());
        {
            let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
            store.put_content(&a, &[], false).unwrap();
            store.put_content(&b, &[], false).unwrap();
            let client = NodeId([7; 16]);
            store
                .put_holding(&ida, &client, &PieceMap::new(a.manifest.piece_count()))
                .unwrap();
            store
                .put_holding(&idb, &client, &PieceMap::new(b.manifest.piece_count()))
                .unwrap();
            assert_eq!(store.last_purge().unwrap(), 0);
            assert_eq!(store.purge_content(&ida).unwrap(), 1);
            assert_eq!(store.purge_content(&idb).unwrap(), 2);
        }
        let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.last_purge().unwrap(), 2);
        assert_eq!(store.purges_since(0, 10).unwrap(), vec![(1, ida), (2, idb)]);
        assert_eq!(store.purges_since(1, 10).unwrap(), vec![(2, idb)]);
        assert_eq!(store.purges_since(0, 1).unwrap(), vec![(1, ida)]);
        assert!(store.purges_since(2, 10).unwrap().is_empty());
        assert!(store.contents().unwrap().is_empty());
        assert!(store.holdings().unwrap().is_empty());
    }
}
