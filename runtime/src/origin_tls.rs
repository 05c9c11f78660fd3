//! The TLS a client's origin fetcher speaks. An `https://` origin is either
//! the cluster's own file storage, whose certificate the cluster CA signed
//! for the server's name (whatever host or address the URL uses), or a CDN
//! with a certificate of the public web PKI for the URL's host. The
//! fetcher accepts either, and shows its own cluster certificate to a
//! server that asks for one (the file storage does; a CDN does not).

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

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
    let verifier = ClusterOrPublic {
        cluster: identity.server_verifier(),
        public,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.chain().to_vec(), identity.key().clone_key())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts a server the cluster CA vouches for as the cluster's server,
/// else one the public web PKI vouches for under the URL's name.
#[derive(Debug)]
struct ClusterOrPublic {
    cluster: Arc<dyn ServerCertVerifier>,
    public: Option<Arc<dyn ServerCertVerifier>>,
}

impl ServerCertVerifier for ClusterOrPublic {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cluster_name = ServerName::try_from(CONTROL_NAME).expect("a valid DNS name");
        let cluster = self.cluster.verify_server_cert(
            end_entity,
            intermediates,
            &cluster_name,
            ocsp_response,
            now,
        );
        match cluster {
            Ok(verified) => Ok(verified),
            Err(cluster_error) => match &self.public {
                Some(public) => public.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ),
                None => Err(cluster_error),
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Handshake signatures do not depend on who vouches for the chain.
        self.cluster.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.cluster.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.cluster.supported_verify_schemes()
    }
}
