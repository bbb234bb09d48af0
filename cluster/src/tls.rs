//! TLS between nodes (opt-in): both cluster listeners (Raft, shards) serve
//! only TLS and require a client certificate from the cluster CA; every
//! node-to-node client connects with TLS, trusts only that CA and presents
//! its own certificate.
//!
//! ## Node identity
//! A node's certificate names it with the DNS subject alternative name
//! `node-<id>.cairn.internal` ([`node_dns_name`]); nothing else in it
//! matters (the CA is the cluster's own, see `cairn admin cluster certs`).
//! - A client connects to node N's address but verifies the server's
//!   certificate for `node-N.cairn.internal`, whatever the address: an
//!   address that now points at another node, or at anything else, fails
//!   the handshake.
//! - A listener keeps the client's certificate with each request it serves
//!   ([`Peer`], a request extension), and the Raft and shard handlers refuse
//!   a request whose signed `x-cairn-node-from` names a node the
//!   certificate does not ([`Peer::may_speak_for`]). Without TLS the peer
//!   is [`Peer::Plain`] and only the shared secret vouches for it.
//!
//! Certificates are read once at start: rotating them means restarting
//! the node (docs/cluster.md). TLS 1.3 and 1.2 (rustls' safe defaults, ring),
//! HTTP/1.1 inside.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;

use crate::{ClusterSecret, NodeId, StartError};

/// How long a TLS handshake may take, on either side.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// The name a node's certificate carries (as a DNS subject alternative
/// name), and the name a client verifies when it connects to that node.
pub fn node_dns_name(id: NodeId) -> String {
    format!("node-{id}.cairn.internal")
}

fn server_name(id: NodeId) -> Result<ServerName<'static>, String> {
    ServerName::try_from(node_dns_name(id)).map_err(|e| format!("node name: {e}"))
}

/// This node's TLS settings: the cluster CA, its certificate and key, as
/// a server configuration (client certificates required) and a client
/// configuration (presents the certificate, trusts only the CA).
pub struct ClusterTls {
    me: NodeId,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterTls(node {})", self.me)
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, StartError> {
    std::fs::read(path)
        .map_err(|e| StartError::Tls(format!("reading {what} {}: {e}", path.display())))
}

impl ClusterTls {
    /// Reads the cluster CA (PEM, one or more certificates: during a CA
    /// rotation both), this node's certificate chain (leaf first) and its
    /// private key (PEM), and checks that the certificate is one the other
    /// nodes accept for node `me`.
    pub fn from_files(me: NodeId, ca: &Path, cert: &Path, key: &Path) -> Result<Self, StartError> {
        let (ca_pem, cert_pem, key_pem) = (
            read(ca, "the cluster CA")?,
            read(cert, "the node certificate")?,
            read(key, "the node key")?,
        );
        Self::from_pem(me, &ca_pem, &cert_pem, &key_pem)
    }

    /// [`Self::from_files`] on the files' contents.
    pub fn from_pem(
        me: NodeId,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, StartError> {
        let bad = |m: String| StartError::Tls(m);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem) {
            let ca = ca.map_err(|e| bad(format!("parsing the cluster CA: {e}")))?;
            roots
                .add(ca)
                .map_err(|e| bad(format!("the cluster CA: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("no certificate in the cluster CA file".into()));
        }
        let roots = Arc::new(roots);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("parsing the node certificate: {e}")))?;
        let Some(leaf) = chain.first().cloned() else {
            return Err(bad("no certificate in the node certificate file".into()));
        };
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| bad(format!("parsing the node key: {e}")))?;

        // The checks the peers will make, made here first so that a wrong
        // file stops the start with a reason instead of failing every
        // handshake later.
        let name = server_name(me).map_err(bad)?;
        let now = UnixTime::now();
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| bad(format!("the cluster CA: {e}")))?;
        server_verifier
            .verify_server_cert(&leaf, &chain[1..], &name, &[], now)
            .map_err(|e| {
                bad(format!(
                    "the node certificate is not valid as node {me} ({}) under the cluster CA: {e}",
                    node_dns_name(me)
                ))
            })?;
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| bad(format!("the cluster CA: {e}")))?;
        client_verifier
            .verify_client_cert(&leaf, &chain[1..], now)
            .map_err(|e| {
                bad(format!(
                    "the node certificate is not valid for client authentication under the cluster CA: {e}"
                ))
            })?;

        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS configuration: {e}")))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| bad(format!("the node certificate and key: {e}")))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad(format!("the node certificate and key: {e}")))?;
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ClusterTls {
            me,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The node this configuration's certificate names.
    pub fn node_id(&self) -> NodeId {
        self.me
    }
}

/// How a node authenticates itself to its peers and them to it: the
/// shared secret (always), and TLS with node certificates (if set).
#[derive(Clone, Debug)]
pub struct ClusterAuth {
    pub secret: ClusterSecret,
    pub tls: Option<Arc<ClusterTls>>,
}

impl From<ClusterSecret> for ClusterAuth {
    fn from(secret: ClusterSecret) -> Self {
        ClusterAuth { secret, tls: None }
    }
}

impl ClusterAuth {
    /// `http` or `https`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// A connector for connections to node `target` only (with TLS, the
    /// server must prove it is that node).
    pub(crate) fn connector(
        &self,
        target: NodeId,
        connect_timeout: Duration,
    ) -> Result<NodeConnector, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.enforce_http(false);
        let tls = match &self.tls {
            None => None,
            Some(tls) => Some((
                tokio_rustls::TlsConnector::from(tls.client.clone()),
                server_name(target)?,
            )),
        };
        Ok(NodeConnector { http, tls })
    }
}

/// Who is on the other end of a served connection, kept with each of its
/// requests as an extension.
#[derive(Clone, Debug)]
pub(crate) enum Peer {
    /// No TLS on this listener: the shared secret is all that vouches.
    Plain,
    /// The client certificate the TLS handshake verified (cluster CA).
    Certified(Arc<CertificateDer<'static>>),
}

impl Peer {
    /// Whether this peer may send messages as node `node`: always without
    /// TLS, else only if its certificate names `node`.
    pub(crate) fn may_speak_for(&self, node: NodeId) -> bool {
        match self {
            Peer::Plain => true,
            Peer::Certified(cert) => cert_names_only(cert.as_ref(), node),
        }
    }

    /// The peer a listener recorded on `req`; a request without one (never
    /// from `serve_bounded`) may speak for nobody.
    pub(crate) fn of<B>(req: &hyper::Request<B>) -> Option<&Peer> {
        req.extensions().get::<Peer>()
    }
}

/// Connects to one node: TCP (hyper-util's connector: resolution, connect
/// timeout, no delay), then with TLS a handshake that must show that
/// node's certificate.
#[derive(Clone)]
pub(crate) struct NodeConnector {
    http: HttpConnector,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for NodeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tls {
            None => f.write_str("NodeConnector(plain)"),
            Some((_, name)) => write!(f, "NodeConnector(TLS to {})", name.to_str()),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for NodeConnector {
    type Response = NodeStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<NodeStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?;
            let Some((connector, name)) = tls else {
                return Ok(NodeStream::Plain(tcp));
            };
            let stream =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp.into_inner()))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
            Ok(NodeStream::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// A client connection to a node, plain or TLS.
#[derive(Debug)]
pub(crate) enum NodeStream {
    Plain(TokioIo<TcpStream>),
    /// Boxed: a TLS connection's state is over 1 KiB.
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Connection for NodeStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for NodeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for NodeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NodeStream::Plain(s) => s.is_write_vectored(),
            NodeStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
}

/// Whether `cert` names exactly one DNS name, `node`'s, and no wildcard:
/// a certificate for several nodes (or `*.cairn.internal`, which the name
/// constraint of an operator's own CA may allow) speaks for none.
fn cert_names_only(cert: &[u8], node: NodeId) -> bool {
    let Ok(name) = server_name(node) else {
        return false;
    };
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return false;
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return false;
    };
    let names: Vec<_> = san.value.general_names.iter().collect();
    let expected = match &name {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_owned(),
        _ => return false,
    };
    matches!(names.as_slice(), [x509_parser::extensions::GeneralName::DNSName(d)] if d.eq_ignore_ascii_case(&expected))
}
