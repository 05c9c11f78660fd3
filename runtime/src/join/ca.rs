//! The server's own cluster CA, made on its first start in
//! `<data_dir>/ca` (the layout of `branchline pki init`, so `pki revoke
//! --ca <data_dir>/ca` works on it), with the server's certificate in
//! `<data_dir>/ca/server/`. It certifies the devices that join with a live
//! token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use branchline_actors::wire::{JoinRequest, Joined};
use branchline_storage::hex_id::hex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::token::{JoinToken, fingerprint};
use super::tokens::{JoinTokens, TokenError};
use crate::pki::{self, PkiError, Role};
use crate::revocation::Trust;
use crate::tls::{Identity, TlsError};

/// The CA's directory inside the server's data directory.
pub const CA_DIR: &str = "ca";
/// The server's certificate's name, and its directory inside the CA's.
const SERVER_NAME: &str = "server";

/// Why the CA could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Making the CA or a certificate failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The CA's files cannot be used for TLS.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The token store failed.
    #[error(transparent)]
    Tokens(#[from] TokenError),
}

/// The server's cluster CA.
pub struct ClusterCa {
    dir: PathBuf,
    /// SHA-256 of the CA certificate's DER, which join tokens carry.
    fingerprint: [u8; 32],
}

impl ClusterCa {
    /// Opens the CA in `<data_dir>/ca`, making it and the server's own
    /// certificate on first start. Returns it with the server's identity.
    pub fn open_or_make(data_dir: &Path) -> Result<(ClusterCa, Identity), CaError> {
        let dir = data_dir.join(CA_DIR);
        if !dir.join(pki::CA_KEY).exists() {
            pki::init(&dir)?;
            tracing::info!(dir = %dir.display(), "made the cluster CA (first start); keep this directory private");
        }
        let own = dir.join(SERVER_NAME);
        let (cert, key) = (
            own.join(format!("{SERVER_NAME}.pem")),
            own.join(format!("{SERVER_NAME}.key")),
        );
        if !cert.exists() {
            pki::issue(&dir, Role::Server, SERVER_NAME, &own)?;
        }
        let ca_cert = dir.join(pki::CA_CERT);
        let identity = Identity::load(&ca_cert, &cert, &key, Some(&dir.join(pki::CRL)))?;
        let der = CertificateDer::from_pem_file(&ca_cert).map_err(|e| TlsError::Pem {
            path: ca_cert.clone(),
            reason: e.to_string(),
        })?;
        Ok((
            ClusterCa {
                fingerprint: fingerprint(&der),
                dir,
            },
            identity,
        ))
    }

    /// The revocation list `pki revoke` writes, which the server watches.
    pub fn crl(&self) -> PathBuf {
        self.dir.join(pki::CRL)
    }

    /// What join tokens pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// A new certificate for the console, for `names`, and its key
    /// ([`pki::web_certificate`]).
    pub fn web_certificate(
        &self,
        names: &[String],
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), CaError> {
        let key = rcgen::KeyPair::generate().map_err(PkiError::from)?;
        let cert = pki::web_certificate(&self.dir, names, &key)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    }
}

/// Hands out join tokens and certifies the devices that bring one.
pub struct Enroller {
    ca: ClusterCa,
    tokens: JoinTokens,
    trust: Arc<Trust>,
    /// The control endpoint's address for tokens, if clients can reach it
    /// there (not an unspecified address).
    server: Option<std::net::SocketAddr>,
}

impl Enroller {
    /// An enroller with the CA, the token store and the trust in force
    /// (whose revocation lists joiners get).
    pub fn new(
        ca: ClusterCa,
        tokens: JoinTokens,
        trust: Arc<Trust>,
        server: std::net::SocketAddr,
    ) -> Self {
        Enroller {
            ca,
            tokens,
            trust,
            server: (!server.ip().is_unspecified()).then_some(server),
        }
    }

    /// The CA's revocation list file.
    pub fn crl(&self) -> PathBuf {
        self.ca.crl()
    }

    /// Makes a token valid for `lifetime`; returns its text and its expiry
    /// (ms since the epoch).
    pub fn make_token(&self, lifetime: std::time::Duration) -> Result<(String, u64), CaError> {
        let (secret, expires_ms) = self.tokens.make(lifetime)?;
        let token = JoinToken {
            secret,
            ca: self.ca.fingerprint(),
            server: self.server,
        };
        Ok((token.to_string(), expires_ms))
    }

    /// Certifies a joiner that brought a live token. Blocking (disk, sled,
    /// signing): run it off the async threads.
    pub fn join(&self, request: &JoinRequest) -> Result<Joined, String> {
        self.tokens
            .check(&request.secret)
            .map_err(|e| e.to_string())?;
        let key = P256Key::new(&request.public_key)?;
        let name = certificate_name(&request.name)?;
        let cert = pki::certify(&self.ca.dir, Role::Client, &name, &key)
            .map_err(|e| format!("cannot certify the device: {e}"))?;
        let ca = std::fs::read(self.ca.dir.join(pki::CA_CERT))
            .ok()
            .and_then(|pem| CertificateDer::from_pem_slice(&pem).ok())
            .ok_or("the server cannot read its CA certificate")?;
        let (crls, _) = self.trust.list();
        tracing::info!(%name, "a device joined the cluster");
        Ok(Joined {
            name,
            certificate: cert.der().to_vec(),
            ca: ca.to_vec(),
            crls: crls.iter().map(|crl| crl.to_vec()).collect(),
        })
    }
}

/// A joiner's name made into a certificate name: letters, digits, `-`,
/// `_` and `.` kept (others become `-`), at most 40 of them, and a random
/// suffix, so two devices of one name get two certificates.
fn certificate_name(asked: &str) -> Result<String, String> {
    let mut base: String = asked
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                true => c,
                false => '-',
            },
        )
        .take(40)
        .collect();
    base = base.trim_start_matches('.').to_owned();
    if base.is_empty() {
        base = "client".into();
    }
    let mut suffix = [0u8; 4];
    getrandom::getrandom(&mut suffix).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(format!("{base}-{}", hex(&suffix)))
}

/// A joiner's public key: an uncompressed P-256 point, which is what
/// `rcgen::KeyPair::generate` makes and ring checks in every handshake.
#[derive(Debug)]
struct P256Key(Vec<u8>);

impl P256Key {
    fn new(raw: &[u8]) -> Result<Self, String> {
        match raw {
            [0x04, rest @ ..] if rest.len() == 64 => Ok(P256Key(raw.to_vec())),
            _ => Err(format!(
                "the public key is not an uncompressed P-256 point ({} bytes)",
                raw.len()
            )),
        }
    }
}

impl rcgen::PublicKeyData for P256Key {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_made_unique_and_bad_keys_refused() {
        let a = certificate_name("lap top/../é").unwrap();
        assert!(a.starts_with("lap-top-..--"), "{a}");
        assert_ne!(
            certificate_name("x").unwrap(),
            certificate_name("x").unwrap()
        );
        assert!(certificate_name("").unwrap().starts_with("client-"));
        assert!(certificate_name("...").unwrap().starts_with("client-"));
        assert!(certificate_name(&"n".repeat(500)).unwrap().len() <= 49);
        assert!(P256Key::new(&[4; 65]).is_ok());
        for bad in [&[][..], &[4; 64][..], &[2; 33][..]] {
            assert!(
                P256Key::new(bad)
                    .unwrap_err()
                    .contains("not an uncompressed P-256 point")
            );
        }
    }
}
