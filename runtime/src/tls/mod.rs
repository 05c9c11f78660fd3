//! TLS for the QUIC endpoints.
//!
//! - **With the cluster PKI** (a `[tls]` section: the CA, the node's
//!   certificate and key, see [`crate::pki`]): mutual TLS. Every endpoint
//!   asks the other side for a certificate the CA signed and refuses the
//!   handshake without one; dialling a peer checks it is `branchline`,
//!   dialling the server that it is `server.branchline`.
//!   The identity is the administrator's (`[tls]`), or made by the server
//!   for itself and got by a client when it joined ([`crate::join`]).
//! - **Without** (only with `insecure = true`): every node makes a fresh
//!   self-signed certificate at start, and peers check the handshake
//!   signature but not who signed it. Traffic is encrypted, but anyone who
//!   reaches a port can join; the node warns at every start.

use std::path::Path;
use std::sync::Arc;

pub(crate) mod certs;
pub(crate) mod error;

pub(crate) use certs::provider;
pub use certs::{node_id_of, peer_chain, peer_node_id};
pub use error::TlsError;

use crate::revocation::Trust;
use branchline_actors::wire::PROTOCOL_VERSION;
use branchline_storage::NodeId;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

/// The name every node's certificate carries and every node asks a peer
/// for.
pub const SERVER_NAME: &str = crate::pki::CLUSTER_NAME;
/// The name the server's certificate carries and clients ask it for.
pub const CONTROL_NAME: &str = "server.branchline";
/// The ALPN protocol of Branchline's QUIC endpoints: `branchline/N`, N
/// the protocol version of the frames ([`PROTOCOL_VERSION`]), so two nodes
/// of different versions find out at the handshake.
pub fn alpn() -> Vec<u8> {
    alpn_of(PROTOCOL_VERSION)
}

fn alpn_of(version: u8) -> Vec<u8> {
    format!("branchline/{version}").into_bytes()
}

/// The QUIC application error code of a connection closed because its
/// peer speaks another protocol version.
pub const VERSION_MISMATCH: u32 = 0x76;

/// Accepting endpoints also take the ALPN of every earlier version, so an
/// older node completes its handshake and is then told why it is refused
/// ([`check_version`]) instead of failing with a bare TLS alert.
fn served_alpns() -> Vec<Vec<u8>> {
    let mut all = vec![alpn()];
    // B1 to B6 nodes said `branchline/1` whatever their frame version.
    all.extend((1..PROTOCOL_VERSION).rev().map(alpn_of));
    all
}

/// Checks that an accepted connection speaks this node's protocol version;
/// if not, closes it with [`VERSION_MISMATCH`] and a reason naming both
/// versions, and says so.
pub fn check_version(conn: &quinn::Connection) -> Result<(), String> {
    let theirs = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol);
    if theirs.as_deref() == Some(alpn().as_slice()) {
        return Ok(());
    }
    let theirs = theirs.map_or_else(
        || "none".to_owned(),
        |p| String::from_utf8_lossy(&p).into_owned(),
    );
    let reason = format!(
        "protocol version {theirs} vs branchline/{PROTOCOL_VERSION}: upgrade the older node"
    );
    conn.close(VERSION_MISMATCH.into(), reason.as_bytes());
    Err(reason)
}

/// A node's place in the cluster PKI: the CA it trusts, and its own
/// certificate and key.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    trust: Arc<Trust>,
}

impl Identity {
    /// Reads the CA certificate, the node's certificate and its key (PEM),
    /// and the CA's revocation list if given.
    pub fn load(ca: &Path, cert: &Path, key: &Path, crl: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for root in read_chain(ca)? {
            roots
                .add(root)
                .map_err(|e| pem_error(ca, format!("not a usable CA certificate: {e}")))?;
        }
        let crls = match crl {
            None => Vec::new(),
            Some(path) => crate::revocation::read_file(path)?,
        };
        Ok(Identity {
            chain: read_chain(cert)?,
            key: read_key(key)?,
            trust: Trust::new(ca, Arc::new(roots), crls)?,
        })
    }

    /// This node's id under the PKI: the one its certificate gives
    /// ([`node_id_of`]), so the server can tell which node a connection
    /// speaks for.
    pub fn node_id(&self) -> NodeId {
        node_id_of(&self.chain[0])
    }

    /// The CA and the revocation list in force.
    pub fn trust(&self) -> &Arc<Trust> {
        &self.trust
    }

    /// This node's certificate chain, its own first.
    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// This node's private key.
    pub(crate) fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// Checks certificates the way a client checks the server's: signed
    /// by the CA, not revoked (by the list in force), for the name asked.
    pub(crate) fn server_verifier(&self) -> Arc<dyn ServerCertVerifier> {
        self.trust.server_verifier()
    }
}

fn pem_error(path: &Path, reason: String) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason,
    }
}

/// The certificates in a PEM file, in order; at least one.
pub(crate) fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in the file".into()));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e.to_string()))
}

/// Says, at every start of a node run with `insecure = true`, that it
/// authenticates nobody.
pub fn warn_unauthenticated(identity: Option<&Identity>) {
    if identity.is_none() {
        tracing::warn!(
            "insecure = true: traffic is encrypted, but nodes are not authenticated and anyone who reaches this node's ports can join and take every package (see docs/SECURITY.md)"
        );
    }
}

/// Who may connect to an endpoint under the PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Only peers with a certificate the CA signed (every client endpoint).
    Members,
    /// Also peers without a certificate, to join (the server's control
    /// endpoint, which answers them nothing but `Join`).
    MembersAndJoiners,
}

/// The rustls server side of a node's endpoint: with an identity, it
/// asks every peer for a certificate its CA signed (and, if `admit` says
/// so, lets one without a certificate in to join).
pub fn server_config(
    identity: Option<&Identity>,
    admit: Admit,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match identity {
        Some(id) => builder
            .with_client_cert_verifier(match admit {
                Admit::Members => id.trust.client_verifier(),
                Admit::MembersAndJoiners => id.trust.client_verifier_for_joining(),
            })
            .with_single_cert(id.chain.clone(), id.key.clone_key())?,
        None => {
            let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])?;
            let cert = certified.cert.der().clone();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                certified.signing_key.serialize_der(),
            ));
            builder
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)?
        }
    };
    config.alpn_protocols = served_alpns();
    // No session resumption: a resumed session skips the certificate
    // check, so a node revoked since its first handshake would get back in
    // with its ticket. Handshakes are rare (connections are long lived).
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// The rustls client side of a node's endpoint: with an identity, it
/// checks the other side's certificate against the CA and shows its own.
pub fn client_config(identity: Option<&Identity>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match identity {
        Some(id) => builder
            .dangerous()
            .with_custom_certificate_verifier(id.server_verifier())
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
        // Insecure: handshake signatures checked, not who signed the chain.
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(chain_verifier("signatures only", |_, _, _, _, _| {
                Ok(ServerCertVerified::assertion())
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn()];
    Ok(config)
}

/// How a [`ChainVerifier`] checks a server's certificate chain.
type ChainCheck = dyn Fn(
        &CertificateDer<'_>,
        &[CertificateDer<'_>],
        &ServerName<'_>,
        &[u8],
        UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error>
    + Send
    + Sync;

/// A server-certificate verifier made of a chain check of its own and the
/// provider's checks of handshake signatures (which do not depend on who
/// vouches for the chain): without the PKI (signatures only), a joining
/// client (the pinned CA), the origin fetcher (the cluster or the public
/// roots).
pub(crate) struct ChainVerifier {
    what: &'static str,
    provider: Arc<CryptoProvider>,
    check: Box<ChainCheck>,
}

impl std::fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainVerifier({})", self.what)
    }
}

/// A verifier that checks chains with `check`; `what` names it in logs.
pub(crate) fn chain_verifier(
    what: &'static str,
    check: impl Fn(
        &CertificateDer<'_>,
        &[CertificateDer<'_>],
        &ServerName<'_>,
        &[u8],
        UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error>
    + Send
    + Sync
    + 'static,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(ChainVerifier {
        what,
        provider: provider(),
        check: Box::new(check),
    })
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        (self.check)(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
