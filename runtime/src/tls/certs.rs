//! Who is at the other end: a certificate's node id, the chain a
//! connection's peer showed, and the crypto provider every configuration
//! of this node uses.

use std::sync::Arc;

use branchline_storage::NodeId;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

/// The node id a certificate gives: the first 16 bytes of the SHA-256 of
/// its DER. A node issued a new certificate is a new node to the server.
pub fn node_id_of(certificate: &[u8]) -> NodeId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(certificate);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    NodeId(id)
}

/// The certificate chain the peer of a connection showed, its own first.
pub fn peer_chain(conn: &quinn::Connection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|chain| *chain)
}

/// The node id of the peer of a connection under the PKI, from the
/// certificate it showed.
pub fn peer_node_id(conn: &quinn::Connection) -> Option<NodeId> {
    peer_chain(conn)?.first().map(|cert| node_id_of(cert))
}

/// The crypto provider of every TLS configuration (ring).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
