//! TLS for the S3 and admin listeners: a PEM certificate chain and private
//! key (from `--tls-cert` / `--tls-key`) served by a rustls server
//! configuration (ring provider, TLS 1.2 and 1.3, HTTP/1.1).
//!
//! The certificate can be replaced without a restart: on SIGHUP the server
//! calls [`ReloadableCert::reload`], which reads both files again and, only
//! if they parse and the key fits the certificate, swaps them in for new
//! handshakes. A failed reload keeps the old certificate and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The certificate and key in use, and where they are read from.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("reading TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("parsing TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate found in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading TLS private key {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("TLS certificate and key do not fit together: {e}"))
}

impl ReloadableCert {
    /// Reads the certificate and key again; on success new handshakes use
    /// them, on failure the previous pair stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = load(&self.cert_path, &self.key_path, &self.provider)?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(fresh);
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Loads `cert` (chain, leaf first) and `key` and builds the acceptor
/// shared by both listeners, with the handle that reloads them.
pub fn acceptor(cert: &Path, key: &Path) -> Result<(TlsAcceptor, Arc<ReloadableCert>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let first = load(cert, key, &provider)?;
    let resolver = Arc::new(ReloadableCert {
        cert_path: cert.to_owned(),
        key_path: key.to_owned(),
        provider: provider.clone(),
        current: RwLock::new(Arc::new(first)),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), resolver))
}

/// Handles SIGHUP until the process ends: reloads `cert`, or, without TLS,
/// says there is nothing to reload (SIGHUP must never stop the server).
pub fn reload_on_sighup(cert: Option<Arc<ReloadableCert>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered before returning, so a SIGHUP right after start-up
        // reloads instead of ending the process.
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: TLS certificates reload only on restart");
            return;
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let Some(cert) = &cert else {
                    tracing::info!("SIGHUP: no TLS certificate to reload");
                    continue;
                };
                match cert.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %cert.cert_path.display(), "TLS certificate reloaded");
                        println!(
                            "cairn: TLS certificate reloaded from {}",
                            cert.cert_path.display()
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate reload failed; keeping the previous one");
                        eprintln!(
                            "cairn: TLS certificate reload failed, keeping the previous one: {e}"
                        );
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = cert;
}
