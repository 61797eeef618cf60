//! TLS with rustls (the ring provider). As a client (federation calls, the CLI) Ferry trusts the
//! system's root certificates plus an admin-given CA bundle for a private PKI; as a server
//! (`ferry serve --tls-cert --tls-key`) it serves a certificate chain and key read from files,
//! read again on SIGHUP so a renewed certificate needs no restart.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificates in {path}: {message}")]
    Certificates { path: PathBuf, message: String },
    #[error("cannot read a private key in {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The ring provider: it builds with a C compiler alone. The aws-lc provider, which adds
/// post-quantum key exchange (the reason rustls now marks ring's as deprecated), needs CMake and
/// a much longer build (ARCHITECTURE, "TLS").
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes the ring provider the process's default, for HTTP clients built without a TLS
/// configuration of their own (reqwest's `Client::new`). Harmless when one is set already.
pub fn install_default_provider() {
    let _ = rustls::crypto::CryptoProvider::install_default(provider().as_ref().clone());
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::Certificates {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The TLS configuration of Ferry's clients: the system's roots, plus every certificate in
/// `ca_bundle` (PEM) when given.
pub fn client_config(ca_bundle: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    install_default_provider();
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a bundle may still make the peer trusted.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_bundle {
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| TlsError::Certificates {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The certificate this instance serves, from files it reads again on [`ServerTls::reload`].
#[derive(Debug)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(server_config(cert, key)?)),
        })
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(server_config(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    // Ferry speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
