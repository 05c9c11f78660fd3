//! Live certificate revocation: the CA's revocation list, replaced while
//! the node runs.
//!
//! - [`Trust`] holds the cluster CA and the current revocation list. The
//!   rustls verifiers of every endpoint ask it at each handshake, so a new
//!   list applies to the next handshake without rebuilding an endpoint.
//! - A new list wakes every [`Trust::guard`]: each live connection checks
//!   its peer's certificate again and is closed if it was revoked.
//! - The server reads its list from its `[tls] crl` file and watches the
//!   file ([`watch_file`]). Its registration and heartbeat answers carry
//!   the list's digest (`OfficeInfo::revocations`); a client whose own
//!   list differs asks for it (`ServerRequest::GetRevocations`, answered by
//!   the control endpoint) and installs it. A client's own `crl` file is
//!   read at start.
//!
//! A list that does not parse is refused and the one in force stays.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::DigitallySignedStruct;
use rustls::DistinguishedName;
use rustls::SignatureScheme;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::sync::watch;

use crate::tls::certs::provider;
use crate::tls::error::TlsError;

/// How often the server looks at its revocation list file.
const FILE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The QUIC close code of a connection whose peer was revoked.
const REVOKED: u32 = 0x52;

/// The verifiers made from one revocation list.
struct Current {
    crls: Vec<CertificateRevocationListDer<'static>>,
    digest: [u8; 32],
    clients: Arc<dyn ClientCertVerifier>,
    servers: Arc<WebPkiServerVerifier>,
}

/// The cluster CA and the revocation list in force.
pub struct Trust {
    ca: PathBuf,
    roots: Arc<rustls::RootCertStore>,
    hints: Vec<DistinguishedName>,
    current: Mutex<Arc<Current>>,
    generation: watch::Sender<u64>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("ca", &self.ca).finish()
    }
}

/// The digest a list is known by (an empty list has one too).
fn digest(crls: &[CertificateRevocationListDer<'static>]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for crl in crls {
        hasher.update((crl.len() as u64).to_le_bytes());
        hasher.update(crl);
    }
    hasher.finalize().into()
}

impl Trust {
    /// Trust in the CA `roots` (read from `ca`) with the list `crls`.
    pub fn new(
        ca: &Path,
        roots: Arc<rustls::RootCertStore>,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Arc<Self>, TlsError> {
        let current = Self::verifiers(ca, &roots, crls)?;
        let hints = current.clients.root_hint_subjects().to_vec();
        Ok(Arc::new(Trust {
            ca: ca.to_owned(),
            roots,
            hints,
            current: Mutex::new(Arc::new(current)),
            generation: watch::Sender::new(0),
        }))
    }

    fn verifiers(
        ca: &Path,
        roots: &Arc<rustls::RootCertStore>,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Current, TlsError> {
        let refused = |e: &dyn std::fmt::Display| TlsError::Verifier {
            path: ca.to_owned(),
            reason: e.to_string(),
        };
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .with_crls(crls.clone())
            .build()
            .map_err(|e| refused(&e))?;
        let servers = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .with_crls(crls.clone())
            .build()
            .map_err(|e| refused(&e))?;
        Ok(Current {
            digest: digest(&crls),
            crls,
            clients,
            servers,
        })
    }

    fn current(&self) -> Arc<Current> {
        branchline_actors::lock_unpoisoned(&self.current).clone()
    }

    /// Puts `crls` in force. False if it is the list in force already.
    pub fn install(
        &self,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<bool, TlsError> {
        let current = self.current();
        if digest(&crls) == current.digest {
            return Ok(false);
        }
        not_older(&current.crls, &crls).map_err(|reason| TlsError::Verifier {
            path: self.ca.clone(),
            reason,
        })?;
        let next = Arc::new(Self::verifiers(&self.ca, &self.roots, crls)?);
        *branchline_actors::lock_unpoisoned(&self.current) = next;
        self.generation.send_modify(|g| *g += 1);
        Ok(true)
    }

    /// The digest of the list in force.
    pub fn digest(&self) -> [u8; 32] {
        self.current().digest
    }

    /// The list in force, and its digest.
    pub fn list(&self) -> (Vec<CertificateRevocationListDer<'static>>, [u8; 32]) {
        let current = self.current();
        (current.crls.clone(), current.digest)
    }

    /// The verifier of certificates peers show when they connect to us.
    pub fn client_verifier(self: &Arc<Self>) -> Arc<dyn ClientCertVerifier> {
        Arc::new(LiveClients(self.clone(), Mandatory::Yes))
    }

    /// [`Trust::client_verifier`] that also lets a peer without any
    /// certificate finish the handshake (a certificate it shows is checked
    /// all the same): for the server's control endpoint, where a device
    /// without one may only join.
    pub fn client_verifier_for_joining(self: &Arc<Self>) -> Arc<dyn ClientCertVerifier> {
        Arc::new(LiveClients(self.clone(), Mandatory::No))
    }

    /// The verifier of certificates shown by those we connect to.
    pub fn server_verifier(self: &Arc<Self>) -> Arc<dyn ServerCertVerifier> {
        Arc::new(LiveServers(self.clone()))
    }

    /// Whether a live connection's peer still passes: `dialled` is the name
    /// we dialled it by, `None` if it connected to us.
    pub fn still_trusted(&self, conn: &quinn::Connection, dialled: Option<&str>) -> bool {
        let Some(chain) = crate::tls::certs::peer_chain(conn) else {
            return false;
        };
        match dialled {
            None => self.client_chain_trusted(&chain),
            Some(name) => self.server_chain_trusted(&chain, name),
        }
    }

    /// Whether a chain a peer showed as a client (its own certificate
    /// first) passes the CA and the list in force now.
    pub fn client_chain_trusted(&self, chain: &[CertificateDer<'_>]) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return false;
        };
        self.current()
            .clients
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .is_ok()
    }

    fn server_chain_trusted(&self, chain: &[CertificateDer<'_>], name: &str) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return false;
        };
        ServerName::try_from(name).is_ok_and(|name| {
            self.current()
                .servers
                .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
                .is_ok()
        })
    }

    /// Runs while `conn` lives: each time the list changes, closes it if its
    /// peer was revoked.
    pub async fn guard(self: Arc<Self>, conn: quinn::Connection, dialled: Option<&'static str>) {
        let mut changes = self.generation.subscribe();
        // A list put in force between the handshake and now: check once.
        changes.mark_changed();
        loop {
            tokio::select! {
                _ = conn.closed() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !self.still_trusted(&conn, dialled) {
                        tracing::warn!(peer = %conn.remote_address(), "closing a connection: the peer's certificate was revoked");
                        conn.close(REVOKED.into(), b"certificate revoked");
                        return;
                    }
                }
            }
        }
    }
}

/// How many certificates each issuer's list revokes, by issuer.
fn revoked_by_issuer(
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<HashMap<Vec<u8>, usize>, String> {
    let mut counts = HashMap::new();
    for crl in crls {
        let parsed = webpki::BorrowedCertRevocationList::from_der(crl)
            .map_err(|e| format!("a revocation list does not parse: {e:?}"))?;
        let revoked = (&parsed).into_iter().count();
        let issuer = webpki::CertRevocationList::from(parsed).issuer().to_vec();
        counts.insert(issuer, revoked);
    }
    Ok(counts)
}

/// A CA's revocations only grow (`pki revoke` adds, nothing removes), so a
/// list that revokes fewer certificates of an issuer than the one in force
/// is an older one, and would let revoked nodes back in: refused.
fn not_older(
    in_force: &[CertificateRevocationListDer<'static>],
    next: &[CertificateRevocationListDer<'static>],
) -> Result<(), String> {
    let (before, after) = (revoked_by_issuer(in_force)?, revoked_by_issuer(next)?);
    for (issuer, revoked) in before {
        let now = after.get(&issuer).copied().unwrap_or(0);
        if now < revoked {
            return Err(format!(
                "the new list revokes {now} certificate(s) where the list in force revokes {revoked}: it is older"
            ));
        }
    }
    Ok(())
}

/// Reads a revocation list file (PEM, one or more lists).
pub fn read_file(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))
}

/// Watches the server's revocation list file and puts each new version in
/// force (a version that does not parse is logged and skipped).
pub async fn watch_file(trust: Arc<Trust>, path: PathBuf) {
    let stamp = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
    };
    let mut seen = stamp(&path);
    loop {
        tokio::time::sleep(FILE_CHECK_EVERY).await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match read_file(&path).and_then(|crls| trust.install(crls)) {
            Ok(true) => {
                tracing::info!(file = %path.display(), "revocation list reloaded; revoked peers are being disconnected")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "the new revocation list was refused; the previous one stays in force")
            }
        }
    }
}

/// A client-certificate verifier that asks the list in force.
#[derive(Debug)]
struct LiveClients(Arc<Trust>, Mandatory);

/// Whether a peer must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mandatory {
    Yes,
    No,
}

impl ClientCertVerifier for LiveClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.0.hints
    }

    fn client_auth_mandatory(&self) -> bool {
        self.1 == Mandatory::Yes
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .current()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .clients
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .clients
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.current().clients.supported_verify_schemes()
    }
}

/// A server-certificate verifier that asks the list in force.
#[derive(Debug)]
struct LiveServers(Arc<Trust>);

impl ServerCertVerifier for LiveServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.current().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .servers
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .servers
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.current().servers.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust_in(ca: &Path) -> Arc<Trust> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca.join(crate::pki::CA_CERT)).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        Trust::new(ca, Arc::new(roots), Vec::new()).unwrap()
    }

    #[test]
    fn a_new_list_is_put_in_force_once_and_a_bad_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        crate::pki::init(&ca).unwrap();
        crate::pki::issue(&ca, crate::pki::Role::Client, "eve", &ca).unwrap();
        let trust = trust_in(&ca);
        let changes = trust.generation.subscribe();
        let (empty, empty_digest) = trust.list();
        assert!(empty.is_empty());

        let list = read_file(&crate::pki::revoke(&ca, "eve").unwrap()).unwrap();
        assert!(trust.install(list.clone()).unwrap());
        assert!(changes.has_changed().unwrap(), "the guards are woken");
        assert!(!trust.install(list.clone()).unwrap(), "the same list again");
        let (in_force, digest) = trust.list();
        assert_eq!(in_force, list);
        assert_ne!(digest, empty_digest);

        // The list of before the revocation is older: refused.
        let err = trust.install(Vec::new()).unwrap_err();
        assert!(err.to_string().contains("it is older"), "{err}");
        assert_eq!(trust.list().1, digest, "the list in force stays");

        let junk = vec![CertificateRevocationListDer::from(vec![
            0x30, 0x03, 1, 2, 3,
        ])];
        let err = trust.install(junk).unwrap_err();
        assert!(err.to_string().contains("cannot check peers"), "{err}");
        assert_eq!(trust.list().1, digest, "the list in force stays");

        let text = dir.path().join("junk.pem");
        std::fs::write(
            &text,
            "-----BEGIN X509 CRL-----\n!!!\n-----END X509 CRL-----\n",
        )
        .unwrap();
        assert!(read_file(&text).is_err());
    }
}
