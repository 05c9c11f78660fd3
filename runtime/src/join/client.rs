//! The client side of joining: dial the server, accept it only if its
//! certificate chains to the CA the token pins, send the token's secret
//! with a public key of a key pair made here, and keep the certificate it
//! answers in `<data_dir>/identity/` (`ca.pem`, `node.pem`, `node.key`
//! mode 0600, `crl.pem`). A client that joined once starts from those
//! files; the token is not needed again.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use branchline_actors::wire::{
    JoinRequest, Joined, MAX_REPLY_FRAME, ServerReply, ServerRequest, read_frame, write_frame,
};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;

use super::token::{JoinToken, fingerprint};
use crate::tls::{self, Identity, TlsError};

/// The directory of a joined client's identity, in its data directory.
pub const IDENTITY_DIR: &str = "identity";
/// How long joining may take.
const JOIN_DEADLINE: Duration = Duration::from_secs(15);

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The server could not be reached, or the conversation broke.
    #[error("cannot join the cluster through the server at {server}: {reason}")]
    Unreachable {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The server refused the token.
    #[error("the server at {server} refused to let this client join: {reason}")]
    Refused {
        /// The server.
        server: SocketAddr,
        /// Its reason.
        reason: String,
    },
    /// Writing the identity failed.
    #[error("cannot keep the cluster certificate in {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The identity written cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Making the key pair failed.
    #[error("making the client's key failed: {0}")]
    Key(#[from] rcgen::Error),
}

struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    crl: PathBuf,
}

fn files(data_dir: &Path) -> Files {
    let dir = data_dir.join(IDENTITY_DIR);
    Files {
        ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node.key"),
        crl: dir.join("crl.pem"),
    }
}

/// The identity this client got when it joined, if it did.
pub fn stored(data_dir: &Path) -> Result<Option<Identity>, TlsError> {
    let f = files(data_dir);
    if !f.cert.exists() {
        return Ok(None);
    }
    let crl = f.crl.exists().then_some(f.crl.as_path());
    Identity::load(&f.ca, &f.cert, &f.key, crl).map(Some)
}

/// Joins the cluster with `token` through the server at `server`, from an
/// ephemeral UDP port on `bind`; keeps the identity in `data_dir` and
/// returns it. Blocks (it runs before the node's runtime starts).
pub fn join(
    token: &JoinToken,
    server: SocketAddr,
    bind: IpAddr,
    name: &str,
    data_dir: &Path,
) -> Result<Identity, JoinError> {
    let key = rcgen::KeyPair::generate()?;
    let unreachable = |reason: String| JoinError::Unreachable { server, reason };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let request = JoinRequest {
        secret: token.secret,
        name: name.to_owned(),
        public_key: key.public_key_raw().to_vec(),
    };
    let reply = runtime.block_on(async {
        tokio::time::timeout(JOIN_DEADLINE, ask(token.ca, server, bind, &request))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {JOIN_DEADLINE:?}")))
    });
    let joined = match reply.map_err(unreachable)? {
        ServerReply::Joined(joined) => joined,
        ServerReply::Error(reason) => return Err(JoinError::Refused { server, reason }),
        other => return Err(unreachable(format!("unexpected answer {other:?}"))),
    };
    if fingerprint(&joined.ca) != token.ca {
        return Err(JoinError::Refused {
            server,
            reason: "it sent a CA other than the token's".into(),
        });
    }
    keep(&joined, &key, data_dir)?;
    tracing::info!(name = %joined.name, "joined the cluster");
    Ok(stored(data_dir)?.expect("just written"))
}

/// One join conversation.
async fn ask(
    ca: [u8; 32],
    server: SocketAddr,
    bind: IpAddr,
    request: &JoinRequest,
) -> Result<ServerReply, String> {
    let provider = tls::provider();
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(pinned_ca(ca, provider.clone()))
        .with_no_client_auth();
    crypto.alpn_protocols = vec![tls::alpn()];
    let crypto = QuicClientConfig::try_from(crypto).map_err(|e| e.to_string())?;
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::new(bind, 0)).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let conn = endpoint
        .connect(server, tls::CONTROL_NAME)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    write_frame(&mut send, &ServerRequest::Join(request.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    let reply = read_frame::<ServerReply>(&mut recv, MAX_REPLY_FRAME)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the server closed the stream without answering")?;
    conn.close(0u32.into(), b"joined");
    endpoint.wait_idle().await;
    Ok(reply)
}

/// Writes the identity: the key first, the certificate last (its presence
/// says the client joined), each written beside its place and renamed.
fn keep(joined: &Joined, key: &rcgen::KeyPair, data_dir: &Path) -> Result<(), JoinError> {
    let f = files(data_dir);
    let dir = data_dir.join(IDENTITY_DIR);
    let write = |path: &Path, bytes: &[u8]| -> Result<(), JoinError> {
        let err = |source| JoinError::Write {
            path: path.to_owned(),
            source,
        };
        let staged = path.with_extension("new");
        let _ = std::fs::remove_file(&staged);
        crate::private_files::write_new(&staged, bytes).map_err(err)?;
        std::fs::rename(&staged, path).map_err(err)
    };
    crate::private_files::create_dir(&dir).map_err(|source| JoinError::Write {
        path: dir.clone(),
        source,
    })?;
    write(&f.key, key.serialize_pem().as_bytes())?;
    write(&f.ca, pem_text("CERTIFICATE", &joined.ca).as_bytes())?;
    let crls: String = joined
        .crls
        .iter()
        .map(|crl| pem_text("X509 CRL", crl))
        .collect();
    if !crls.is_empty() {
        write(&f.crl, crls.as_bytes())?;
    }
    let chain = pem_text("CERTIFICATE", &joined.certificate) + &pem_text("CERTIFICATE", &joined.ca);
    write(&f.cert, chain.as_bytes())
}

/// DER as a PEM block.
fn pem_text(label: &str, der: &[u8]) -> String {
    let encoded = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Standard base64 with padding (for PEM).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Accepts the server only if the chain it shows holds the CA certificate
/// whose SHA-256 the token carries, and its certificate is valid under
/// that CA for the server's name.
fn pinned_ca(
    ca: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    tls::chain_verifier(
        "the CA a join token pins",
        move |end_entity, intermediates, server_name, ocsp, now| {
            let pinned = intermediates
                .iter()
                .find(|cert| fingerprint(cert) == ca)
                .ok_or_else(|| {
                    rustls::Error::General(
                        "the server's certificate does not chain to the CA the join token names"
                            .into(),
                    )
                })?;
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(pinned.clone().into_owned())
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_vectors() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), encoded);
        }
    }
}
