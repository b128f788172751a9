//! TLS for `--tls-cert`/`--tls-key`: rustls (ring provider), HTTP/1.1.

use crate::state::StartError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;

/// Accepts TLS connections.
pub type TlsAcceptor = tokio_rustls::TlsAcceptor;

/// Builds an acceptor from a PEM certificate chain and a PEM private key.
pub fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!("{}: no certificate in the file", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
