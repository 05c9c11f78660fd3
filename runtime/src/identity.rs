//! A node's persistent identity: 16 random bytes made on first start and
//! kept in the node's sled database, so a restarted client is the same
//! client to the server and its peers.

use branchline_storage::NodeId;

/// Why the identity could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// sled failed.
    #[error("reading the node id failed: {0}")]
    Db(#[from] sled::Error),
    /// The OS gave no randomness.
    #[error("no randomness for a node id: {0}")]
    Random(String),
    /// The stored id is not 16 bytes.
    #[error("the stored node id is corrupt ({0} bytes)")]
    Corrupt(usize),
}

/// The node id kept in `db`, made and flushed on first call.
pub fn node_id(db: &sled::Db) -> Result<NodeId, IdentityError> {
    let tree = db.open_tree("node")?;
    if let Some(raw) = tree.get("id")? {
        return <[u8; 16]>::try_from(raw.as_ref())
            .map(NodeId)
            .map_err(|_| IdentityError::Corrupt(raw.len()));
    }
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).map_err(|e| IdentityError::Random(e.to_string()))?;
    tree.insert("id", &id)?;
    db.flush()?;
    Ok(NodeId(id))
}
