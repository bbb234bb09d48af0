//! Connections for the S3 client: plain TCP for `http://` endpoints, TLS
//! (rustls with the ring provider) for `https://` ones, trusting the
//! system's root certificates plus, with `--ca-bundle`, a private CA (a
//! Cairn server with its own certificate, say).
//!
//! It owns connection set-up only; hyper pools and reuses what it returns.
//! It never turns certificate checks off: an endpoint whose certificate
//! does not verify is an error, as it would be for any real client.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A TLS client configuration: the system's roots and `ca_bundle`'s
/// certificates (PEM), HTTP/1.1 by ALPN.
pub fn tls_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA may be all
    // that is needed, and a missing root shows as a failed handshake.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "--ca-bundle {}: no PEM certificate in it",
                path.display()
            ));
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted certificates: the system has none readable; give --ca-bundle".to_owned(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name a certificate must carry for `uri`'s host (IP addresses
/// included; IPv6 without its brackets).
fn server_name(uri: &Uri) -> Result<ServerName<'static>, String> {
    let host = uri
        .host()
        .ok_or_else(|| format!("{uri}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{uri}: {e}"))
}

/// Opens TCP connections, and TLS over them for `https://` URIs.
#[derive(Clone, Debug)]
pub struct Connector {
    tcp: HttpConnector,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connector {
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        // https URIs pass through: TLS is added here, after the TCP connect.
        tcp.enforce_http(false);
        Connector { tcp, tls }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let https = uri.scheme_str() == Some("https");
            let name = if https {
                Some(server_name(&uri)?)
            } else {
                None
            };
            let stream = tcp.call(uri).await?;
            match (name, tls) {
                (None, _) => Ok(Stream::Plain(stream)),
                (Some(name), Some(config)) => {
                    let tls_stream = TlsConnector::from(config)
                        .connect(name, stream.into_inner())
                        .await?;
                    Ok(Stream::Tls(Box::new(TokioIo::new(tls_stream))))
                }
                (Some(_), None) => Err("an https endpoint needs a TLS configuration".into()),
            }
        })
    }
}

/// A connection, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(s) => s.connected(),
            Stream::Tls(s) => s.inner().get_ref().0.connected(),
        }
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_for_hosts_and_addresses() {
        let name = |u: &str| server_name(&u.parse().unwrap()).map(|n| n.to_str().into_owned());
        assert_eq!(
            name("https://s3.example.com").as_deref(),
            Ok("s3.example.com")
        );
        assert_eq!(name("https://127.0.0.1:9000").as_deref(), Ok("127.0.0.1"));
        assert_eq!(name("https://[::1]:9000").as_deref(), Ok("::1"));
    }

    #[test]
    fn a_ca_bundle_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(
            tls_config(Some(&empty))
                .unwrap_err()
                .contains("no PEM certificate")
        );
        assert!(tls_config(Some(&dir.path().join("missing.pem"))).is_err());
    }
}
