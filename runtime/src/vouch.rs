//! Signatures made with a node's cluster certificate, and their checks:
//! the server's on publications (what it vouches for about a content:
//! whether peers may share it), and every client's on its discovery
//! replies.
//!
//! A signature carries the signer's certificate; it passes only if that
//! certificate chains to the cluster CA, is not revoked (the list in
//! force), names the role asked for (`server.branchline` for publications,
//! the cluster name for replies) and the signature verifies with its key.
//!
//! - The server signs with the key of its own certificate, and sends the
//!   certificate with the signature.
//! - A client accepts a publication only if that certificate chains to its
//!   CA, is not revoked, names the server role (`server.branchline`), and
//!   the signature over [`Publication::signed_bytes`] verifies with its key.
//!   The check is the same whether the publication came from the server or
//!   was relayed by a peer, so a peer can pass one on but not forge or
//!   change one (nor strip "confidential").
//! - Without the PKI nothing is signed and every publication passes: that
//!   mode authenticates nobody, and says so at start.

use std::sync::Arc;

use branchline_actors::client::office::PublicationCheck;
use branchline_actors::server::directory::PublicationSigner;
use branchline_storage::publication::{Publication, Signature, SignedPublication};
use rustls::SignatureScheme;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::tls::{CONTROL_NAME, Identity, TlsError, provider};

/// Schemes the server may sign with, best first (the key decides).
const SCHEMES: [SignatureScheme; 5] = [
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// Signs bytes with a node's key; `None` without the cluster PKI.
pub type Signer = Arc<dyn Fn(&[u8]) -> Option<Signature> + Send + Sync>;

/// A node's signer: with an identity, its key signs; without, nothing is
/// signed.
pub fn node_signer(identity: Option<&Identity>) -> Result<Signer, TlsError> {
    let Some(identity) = identity else {
        return Ok(Arc::new(|_: &[u8]| None));
    };
    let key = rustls::crypto::ring::sign::any_supported_type(identity.key())?;
    let certificate = identity.chain()[0].to_vec();
    Ok(Arc::new(move |message: &[u8]| {
        let Some(signer) = key.choose_scheme(&SCHEMES) else {
            tracing::error!("the node's key signs with none of the schemes Branchline uses");
            return None;
        };
        match signer.sign(message) {
            Ok(bytes) => Some(Signature {
                scheme: u16::from(signer.scheme()),
                bytes,
                certificate: certificate.clone(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "signing failed");
                None
            }
        }
    }))
}

/// The server's signer of publications.
pub fn signer(identity: Option<&Identity>) -> Result<PublicationSigner, TlsError> {
    let sign = node_signer(identity)?;
    Ok(Arc::new(move |publication: &Publication| {
        sign(&publication.signed_bytes())
    }))
}

/// A client's check: with an identity, only publications the cluster's
/// server signed pass; without, all do.
pub fn checker(identity: Option<&Identity>) -> Result<PublicationCheck, TlsError> {
    let Some(identity) = identity else {
        return Ok(Arc::new(|_: &SignedPublication| Ok(())));
    };
    let verifier = identity.server_verifier();
    Ok(Arc::new(move |signed: &SignedPublication| {
        let signature = signed
            .signature
            .as_ref()
            .ok_or("it is not signed (is the server running without [tls]?)")?;
        let message = signed.publication.signed_bytes();
        verify(verifier.as_ref(), CONTROL_NAME, &message, signature)
    }))
}

/// Checks that `signature` over `message` was made by a certificate of the
/// cluster that names `name` and is not revoked.
pub fn verify(
    verifier: &dyn ServerCertVerifier,
    name: &str,
    message: &[u8],
    signature: &Signature,
) -> Result<(), String> {
    let certificate = CertificateDer::from(signature.certificate.as_slice());
    let role = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let whose = match name {
        CONTROL_NAME => "the cluster server's",
        _ => "a cluster member's",
    };
    verifier
        .verify_server_cert(&certificate, &[], &role, &[], UnixTime::now())
        .map_err(|e| format!("the signer's certificate is not {whose}: {e}"))?;
    let end_entity = webpki::EndEntityCert::try_from(&certificate)
        .map_err(|e| format!("the signer's certificate does not parse: {e:?}"))?;
    let scheme = SignatureScheme::from(signature.scheme);
    let algorithms = provider()
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, algorithms)| *algorithms)
        .ok_or_else(|| format!("signature scheme {scheme:?} is not accepted"))?;
    let verified = algorithms.iter().any(|algorithm| {
        end_entity
            .verify_signature(*algorithm, message, &signature.bytes)
            .is_ok()
    });
    match verified {
        true => Ok(()),
        false => Err("the signature does not match what it signs".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_storage::Hash;

    /// A CA with a server and a client certificate, issued by `pki`.
    fn cluster(dir: &std::path::Path) -> (Identity, Identity) {
        let ca = dir.join("ca");
        let ca_cert = crate::pki::init(&ca).unwrap();
        let issue = |role, name: &str| {
            let (cert, key) = crate::pki::issue(&ca, role, name, &dir.join(name)).unwrap();
            Identity::load(&ca_cert, &cert, &key, None).unwrap()
        };
        (
            issue(crate::pki::Role::Server, "server"),
            issue(crate::pki::Role::Client, "client"),
        )
    }

    fn publication(confidential: bool) -> Publication {
        Publication {
            content: Hash([9; 32]),
            confidential,
        }
    }

    #[test]
    fn the_servers_signature_passes_and_every_change_or_forgery_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (server, client) = cluster(dir.path());
        let sign = signer(Some(&server)).unwrap();
        let check = checker(Some(&client)).unwrap();
        let signed = SignedPublication {
            publication: publication(true),
            signature: sign(&publication(true)),
        };
        check(&signed).unwrap();

        // A peer strips "confidential": the signature no longer matches.
        let stripped = SignedPublication {
            publication: publication(false),
            ..signed.clone()
        };
        let err = check(&stripped).unwrap_err();
        assert!(err.contains("does not match"), "{err}");

        // Unsigned.
        let unsigned = SignedPublication {
            publication: publication(true),
            signature: None,
        };
        assert!(check(&unsigned).unwrap_err().contains("not signed"));

        // Signed by a client of the cluster (a peer forging one).
        let forged = SignedPublication {
            publication: publication(false),
            signature: signer(Some(&client)).unwrap()(&publication(false)),
        };
        let err = check(&forged).unwrap_err();
        assert!(err.contains("not the cluster server's"), "{err}");

        // Signed by the server of another cluster.
        let other = tempfile::tempdir().unwrap();
        let (foreign, _) = cluster(other.path());
        let foreign = SignedPublication {
            publication: publication(false),
            signature: signer(Some(&foreign)).unwrap()(&publication(false)),
        };
        let err = check(&foreign).unwrap_err();
        assert!(err.contains("not the cluster server's"), "{err}");
    }

    #[test]
    fn without_the_pki_nothing_is_signed_and_everything_passes() {
        let signed = SignedPublication {
            publication: publication(true),
            signature: signer(None).unwrap()(&publication(true)),
        };
        assert_eq!(signed.signature, None);
        checker(None).unwrap()(&signed).unwrap();
    }
}
