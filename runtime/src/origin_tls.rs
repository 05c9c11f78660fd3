//! The TLS a client's origin fetcher speaks. An `https://` origin is either
//! the cluster's own file storage, whose certificate the cluster CA signed
//! for the server's name (whatever host or address the URL uses), or a CDN
//! with a certificate of the public web PKI for the URL's host. The
//! fetcher accepts either, and shows its own cluster certificate to a
//! server that asks for one (the file storage does; a CDN does not).

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;

use crate::tls::{CONTROL_NAME, Identity, TlsError};

/// The rustls config of the origin fetcher of a node with `identity`.
pub fn client_config(identity: &Identity) -> Result<rustls::ClientConfig, TlsError> {
    let provider = crate::tls::provider();
    let public: Option<Arc<dyn ServerCertVerifier>> = match rustls_platform_verifier::Verifier::new(
        provider.clone(),
    ) {
        Ok(verifier) => Some(Arc::new(verifier)),
        Err(e) => {
            tracing::warn!(error = %e, "no public certificate roots: https origins other than the cluster's file storage will be refused");
            None
        }
    };
    let cluster = identity.server_verifier();
    let cluster_name = ServerName::try_from(CONTROL_NAME).expect("a valid DNS name");
    let verifier =
        crate::tls::chain_verifier(
            "the cluster's file storage, or public roots",
            move |end_entity, intermediates, server_name, ocsp, now| match cluster
                .verify_server_cert(end_entity, intermediates, &cluster_name, ocsp, now)
            {
                Ok(verified) => Ok(verified),
                Err(cluster_error) => match &public {
                    Some(public) => {
                        public.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                    }
                    None => Err(cluster_error),
                },
            },
        );
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain().to_vec(), identity.key().clone_key())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
