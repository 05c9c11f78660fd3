//! The certificate the console shows browsers and scripts, and its TLS
//! configuration (decision, in docs/ARCHITECTURE.md "The console"):
//!
//! 1. a certificate and key the administrator gave (`[console] cert`,
//!    `key`), for a console reached by a name the enterprise's own PKI
//!    vouches for;
//! 2. otherwise, on a server with its own cluster CA, a certificate that
//!    CA signs at each start for the host's names and addresses (browsers
//!    trust it once the CA's `ca.pem` is imported, as they must to trust
//!    anything of the cluster);
//! 3. otherwise, under an administrator's `[tls]` PKI without the CA key
//!    here, the server's own node certificate (it names the cluster, not
//!    the host, so browsers warn: give `[console] cert`);
//! 4. insecure, a self-signed certificate made at start (with a warning).
//!
//! Only TLS 1.3; no client certificates (people sign in instead).

use std::net::SocketAddr;
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::join::ca::{CaError, ClusterCa};
use crate::tls::{Identity, TlsError};

/// Where the console's certificate comes from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// Files the administrator gave.
    Given {
        /// The chain (PEM).
        cert: &'a Path,
        /// Its key (PEM).
        key: &'a Path,
    },
    /// The server's own cluster CA.
    ClusterCa(&'a ClusterCa),
    /// The node's certificate of an administrator's PKI.
    Node(&'a Identity),
    /// None: insecure.
    SelfSigned,
}

/// Why the console's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleTlsError {
    /// A file or rustls failed.
    #[error("the console's certificate: {0}")]
    Tls(#[from] TlsError),
    /// The CA could not sign.
    #[error("the console's certificate: {0}")]
    Ca(#[from] CaError),
}

/// The names a certificate made here carries: the host's name,
/// `localhost`, the loopback addresses, the listen address if it is a
/// specific one, and those configured; each once.
pub fn names(configured: &[String], listen: SocketAddr) -> Vec<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut names: Vec<String> = [host.trim(), "localhost", "127.0.0.1", "::1"]
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(configured.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()) && !is_cluster_name(n));
    names
}

/// Whether `name` is one of the cluster's own (`branchline`,
/// `*.branchline`): a web certificate naming it could pass for the server
/// with clients, so it is never put in one.
fn is_cluster_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == crate::pki::CLUSTER_NAME || name.ends_with(&format!(".{}", crate::pki::CLUSTER_NAME))
}

/// The console's TLS configuration, its certificate from `source`
/// (made for `names` where it is made here), and that certificate.
pub fn server_config(
    source: Source<'_>,
    names: &[String],
) -> Result<(rustls::ServerConfig, CertificateDer<'static>), ConsoleTlsError> {
    let (chain, key) = match source {
        Source::Given { cert, key } => (crate::tls::read_chain(cert)?, crate::tls::read_key(key)?),
        Source::ClusterCa(ca) => {
            let (cert, key) = ca.web_certificate(names)?;
            (vec![cert], key)
        }
        Source::Node(identity) => {
            tracing::warn!(
                "the console shows the server's node certificate, which names the cluster, not this host: browsers will warn; give [console] cert and key"
            );
            (identity.chain().to_vec(), identity.key().clone_key())
        }
        Source::SelfSigned => {
            tracing::warn!(
                "insecure = true: the console's certificate is self-signed; browsers will warn, and nothing proves to them it is this server"
            );
            let made =
                rcgen::generate_simple_self_signed(names.to_vec()).map_err(TlsError::from)?;
            let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
            (vec![made.cert.der().clone()], PrivateKeyDer::Pkcs8(key))
        }
    };
    let leaf = chain[0].clone();
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::from)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::from)?;
    Ok((config, leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_hold_the_host_and_loopback_and_never_the_clusters_own() {
        let listen = "10.0.0.5:34390".parse().unwrap();
        let configured = [
            "console.example.com",
            "server.branchline",
            "Branchline.",
            "localhost",
        ]
        .map(String::from);
        let got = names(&configured, listen);
        for wanted in [
            "localhost",
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "console.example.com",
        ] {
            assert!(got.iter().any(|n| n == wanted), "{wanted}: {got:?}");
        }
        assert!(!got.iter().any(|n| is_cluster_name(n)), "{got:?}");
        assert_eq!(got.iter().filter(|n| *n == "localhost").count(), 1);
        let any = names(&[], "0.0.0.0:34390".parse().unwrap());
        assert!(!any.iter().any(|n| n == "0.0.0.0"), "{any:?}");
    }
}
