//! Raft messages between nodes over HTTP/1.1 (hyper), JSON bodies; over
//! TLS when the node has cluster TLS settings (see [`crate::tls`]).
//!
//! Routes, all `POST`, answered `200` with the JSON of
//! `Result<response, RaftError>`: `/raft/v1/append`, `/raft/v1/vote`,
//! `/raft/v1/snapshot` (one chunk of a snapshot; openraft reassembles),
//! `/raft/v1/write` (a client write forwarded to the leader, see
//! [`ClusterWriter`]) and `/raft/v1/read-index` (a follower's read barrier:
//! the leader's commit index once a quorum confirmed its leadership).
//! A failed connection (or TLS handshake) is `Unreachable` (openraft backs
//! off), any other transport or decoding failure a `NetworkError`, an error
//! the peer's Raft returned a `RemoteError`.
//!
//! ## Authentication
//! Every request carries `x-cairn-node-from: <sender id>`,
//! `x-cairn-node-to: <receiver id>`, `x-cairn-body-sha256: <hex SHA-256 of
//! the body>` and `x-cairn-raft-auth: <unix ms>:<hex HMAC-SHA256>` over
//! `POST\n<path>\n<unix ms>\n<from>\n<to>\n<body SHA-256>`, keyed with the
//! [`ClusterSecret`] all nodes share. A node answers `401`, before it reads
//! the body, to a missing or wrong tag, one more than `AUTH_SKEW_MS` away
//! from its clock, one whose `to` is not its own id or whose `from` is its
//! own (or 0), and — with TLS — one whose `from` is not the node the
//! client certificate names (exactly that one name: `tls.rs`); `400` to a
//! body that does not match its hash; and `401` to an append, snapshot or
//! vote request whose vote names another node than `from` (a node cannot
//! lead or campaign as another).
//!
//! Replay: the ids are inside the tag, so a message captured on its way to
//! node 2 is refused by node 3 (and cannot be passed off as another
//! sender's). To the node it was meant for, without TLS, a captured message
//! can be replayed within the 5 minutes: harmless for append, vote and
//! snapshot (Raft rejects stale terms and indexes), and a replayed
//! `/raft/v1/write` carries the same request id, which the state machine
//! applies only once. With TLS nobody outside the cluster sees or replays
//! a message at all. The receiver does not check that `from` is a member:
//! a node that is not yet in its membership (a new node's first messages
//! from the leader, a lagging follower and a newly added leader) must still
//! be heard; the secret, and with TLS the certificate, is what vouches.
//!
//! A binary without the ids (before this format) and one with them cannot
//! talk to each other: upgrade every node of a cluster together.
//!
//! [`Faults`] cuts chosen node pairs (both directions) at the sender, for
//! partition tests: a cut call fails as unreachable without touching the
//! socket.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::Raft;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::tls::{ClusterAuth, NodeConnector, Peer};
use crate::{ClusterNode, ClusterRequest, ClusterResponse, NodeId, TypeConfig};

const AUTH_HEADER: &str = "x-cairn-raft-auth";
const BODY_SHA256_HEADER: &str = "x-cairn-body-sha256";
/// The sender's and the receiver's node ids (Raft and shard requests).
pub(crate) const FROM_HEADER: &str = "x-cairn-node-from";
pub(crate) const TO_HEADER: &str = "x-cairn-node-to";
/// How far a request's timestamp may be from the receiver's clock.
const AUTH_SKEW_MS: u64 = 5 * 60 * 1000;

/// The key all nodes of a cluster share to authenticate Raft messages.
#[derive(Clone)]
pub struct ClusterSecret([u8; 32]);

impl ClusterSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ClusterSecret(bytes)
    }

    fn mac(&self, message: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).ok()?;
        mac.update(message.as_bytes());
        Some(mac)
    }

    fn tag(
        &self,
        path: &str,
        route: Route,
        unix_ms: u64,
        body_sha256: &str,
    ) -> Option<Hmac<Sha256>> {
        let Route { from, to } = route;
        self.mac(&format!(
            "POST\n{path}\n{unix_ms}\n{from}\n{to}\n{body_sha256}"
        ))
    }

    /// A key derived for `label` (hex): a PRF output of the secret that no
    /// Raft tag reveals (a tag's message starts with `POST\n`).
    pub(crate) fn derive_hex(&self, label: &str) -> Option<String> {
        let mac = self.mac(&format!("derive\n{label}"))?;
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// The two headers a request to `path` with `body`, from and to the
    /// nodes of `route`, carries: the tag (`<unix ms>:<hex HMAC>`) and the
    /// body's hex SHA-256 it covers.
    pub(crate) fn sign(
        &self,
        path: &str,
        route: Route,
        unix_ms: u64,
        body: &[u8],
    ) -> Option<(String, String)> {
        use sha2::Digest;
        let body_sha256 = hex::encode(Sha256::digest(body));
        let tag = self
            .tag(path, route, unix_ms, &body_sha256)?
            .finalize()
            .into_bytes();
        Some((format!("{unix_ms}:{}", hex::encode(tag)), body_sha256))
    }

    /// Whether `header` is a fresh, valid tag for `path`, `route` and a
    /// body whose SHA-256 is `body_sha256` (checked against the body
    /// afterwards).
    fn verify(&self, header: &str, path: &str, route: Route, body_sha256: &str) -> bool {
        let Some((ts, tag)) = header.split_once(':') else {
            return false;
        };
        let (Ok(ts), Ok(tag)) = (ts.parse::<u64>(), hex::decode(tag)) else {
            return false;
        };
        if now_ms().abs_diff(ts) > AUTH_SKEW_MS {
            return false;
        }
        self.tag(path, route, ts, body_sha256)
            .is_some_and(|mac| mac.verify_slice(&tag).is_ok())
    }
}

/// The sender and the receiver of one node-to-node request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
}

impl Route {
    /// The route a request's `x-cairn-node-from` / `x-cairn-node-to`
    /// headers name (each exactly once, a decimal id), if it may reach node
    /// `me`: to `me`, from another node (not 0), and — with TLS — from the
    /// node the peer's certificate names. Anything else is `None`: refused.
    pub(crate) fn check<B>(req: &hyper::Request<B>, me: NodeId) -> Option<Route> {
        let id = |name: &str| -> Option<NodeId> {
            let mut values = req.headers().get_all(name).iter();
            let value = values.next()?;
            if values.next().is_some() {
                return None;
            }
            let text = value.to_str().ok()?;
            // Plain digits only, as the sender writes them (no sign, no
            // spaces), so the value checked is the value signed.
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        };
        let route = Route {
            from: id(FROM_HEADER)?,
            to: id(TO_HEADER)?,
        };
        let peer = crate::tls::Peer::of(req)?;
        (route.to == me && route.from != me && route.from != 0 && peer.may_speak_for(route.from))
            .then_some(route)
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Connections a node's Raft or shard listener serves at once (the binary
/// counts both listeners' in its file descriptor budget).
pub const CONNECTIONS_MAX: usize = 1024;
/// How long a connection may take to send a request's header.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest request body a node accepts (a batch of entries or one
/// snapshot chunk; openraft's chunks are 3 MiB).
const BODY_MAX_BYTES: usize = 64 << 20;

/// Node pairs whose messages are dropped (tests: partitions).
#[derive(Debug, Default)]
pub struct Faults {
    cut: Mutex<HashSet<(NodeId, NodeId)>>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(NodeId, NodeId)>> {
        self.cut.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts `node` off from every node in `others`, both directions.
    pub fn isolate(&self, node: NodeId, others: &[NodeId]) {
        let mut cut = self.lock();
        for &o in others {
            if o != node {
                cut.insert((node, o));
                cut.insert((o, node));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().clear();
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.lock().contains(&(from, to))
    }
}

/// A client for messages to one node (its connector checks, with TLS, that
/// the server is that node).
type NodeClient = Client<NodeConnector, Full<Bytes>>;

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Creates one [`HttpConnection`] per peer; messages to the same peer share
/// a connection pool.
#[derive(Clone)]
pub struct HttpNetwork {
    me: NodeId,
    auth: ClusterAuth,
    /// One client per peer id, made on first use (at most one per member).
    clients: Arc<Mutex<HashMap<NodeId, NodeClient>>>,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for HttpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpNetwork(node {})", self.me)
    }
}

impl HttpNetwork {
    pub fn new(me: NodeId, auth: impl Into<ClusterAuth>, faults: Arc<Faults>) -> Self {
        HttpNetwork {
            me,
            auth: auth.into(),
            clients: Arc::new(Mutex::new(HashMap::new())),
            faults,
        }
    }

    /// The client for messages to `target`.
    fn client(&self, target: NodeId) -> Result<NodeClient, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&target) {
            return Ok(c.clone());
        }
        let connector = self.auth.connector(target, CONNECT_TIMEOUT)?;
        let client = Client::builder(TokioExecutor::new()).build(connector);
        clients.insert(target, client.clone());
        Ok(client)
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> HttpConnection {
        HttpConnection {
            net: self.clone(),
            target,
            node: node.clone(),
        }
    }
}

/// Messages to one peer.
#[derive(Debug)]
pub struct HttpConnection {
    net: HttpNetwork,
    target: NodeId,
    node: ClusterNode,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, ClusterNode, E>>;

impl HttpConnection {
    async fn post<Req, Resp, E>(&self, path: &str, req: &Req) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if self.net.faults.is_cut(self.net.me, self.target) {
            let e = std::io::Error::new(std::io::ErrorKind::NotConnected, "link cut (test fault)");
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let route = Route {
            from: self.net.me,
            to: self.target,
        };
        let (auth, body_sha256) = self
            .net
            .auth
            .secret
            .sign(path, route, now_ms(), &body)
            .ok_or_else(|| {
                RPCError::Network(NetworkError::new(&std::io::Error::other("signing failed")))
            })?;
        let client = self
            .net
            .client(self.target)
            .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e))))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "{}://{}{}",
                self.net.auth.scheme(),
                self.node.raft_addr,
                path
            ))
            .header("content-type", "application/json")
            .header(AUTH_HEADER, auth)
            .header(BODY_SHA256_HEADER, body_sha256)
            .header(FROM_HEADER, route.from)
            .header(TO_HEADER, route.to)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        if response.status() != StatusCode::OK {
            let e = std::io::Error::other(format!("{path} answered {}", response.status()));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let bytes = Limited::new(response.into_body(), BODY_MAX_BYTES)
            .collect()
            .await
            .map_err(|e| {
                RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string())))
            })?
            .to_bytes();
        let result: Result<Resp, E> =
            serde_json::from_slice(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for HttpConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        // A batch the receiver would refuse for its size: ask openraft to
        // send fewer entries at a time (it retries at once with the hint).
        let n = rpc.entries.len() as u64;
        if n > 1 {
            let size: usize = rpc
                .entries
                .iter()
                .map(|e| match &e.payload {
                    openraft::EntryPayload::Normal(r) => r.command.len() * 4 / 3 + 256,
                    _ => 256,
                })
                .sum();
            if size > BODY_MAX_BYTES / 2 {
                return Err(RPCError::PayloadTooLarge(
                    openraft::error::PayloadTooLarge::new_entries_hint(n / 2),
                ));
            }
        }
        self.post("/raft/v1/append", &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.post("/raft/v1/snapshot", &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.post("/raft/v1/vote", &rpc).await
    }
}

/// Serves the Raft routes for `raft` (node `me`) on `listener`, to peers
/// holding the secret of `auth` (and, with its TLS, a certificate from the
/// cluster CA), until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    raft: Raft<TypeConfig>,
    me: NodeId,
    auth: impl Into<ClusterAuth>,
) {
    let auth = auth.into();
    let tls = auth.tls.as_ref().map(|t| t.acceptor());
    let secret = Arc::new(auth.secret);
    serve_bounded(listener, "raft", tls, move |req| {
        handle(raft.clone(), secret.clone(), me, req)
    })
    .await
}

/// Accepts HTTP/1.1 connections on `listener` for ever, each served by
/// `handle` (`what` names the listener in logs). Connections are bounded
/// (`CONNECTIONS_MAX`; a peer keeps a few, forwarded writes may open more
/// under load), and one that sends no complete header within 10 s gives
/// its slot back. The Raft and the shard listeners both run on this.
///
/// With `tls`, a connection is served only after a TLS handshake (within
/// `HANDSHAKE_TIMEOUT`, holding its slot) in which the client showed a
/// certificate of the cluster CA; every request of the connection carries
/// that certificate as a [`Peer`] extension. Without, each carries
/// [`Peer::Plain`].
///
/// Like the S3 and admin listeners: a connection over the cap is accepted
/// and closed at once; a failed accept (out of descriptors) is retried after
/// a pause doubling from 5 ms to 1 s; both are logged at most once per 10 s.
pub(crate) async fn serve_bounded<F, Fut>(
    listener: tokio::net::TcpListener,
    what: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handle: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    const BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(5);
    const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(1);
    const LOG_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let mut backoff = std::time::Duration::ZERO;
    // (last warning, warnings skipped since) for accept errors and refusals.
    let mut error_log: (Option<std::time::Instant>, u64) = (None, 0);
    let mut refusal_log: (Option<std::time::Instant>, u64) = (None, 0);
    let due = |log: &mut (Option<std::time::Instant>, u64)| {
        if log.0.is_some_and(|t| t.elapsed() < LOG_PERIOD) {
            log.1 += 1;
            return None;
        }
        log.0 = Some(std::time::Instant::now());
        Some(std::mem::take(&mut log.1))
    };
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => {
                backoff = std::time::Duration::ZERO;
                s
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                if let Some(skipped) = due(&mut error_log) {
                    tracing::warn!(
                        "{what} listener: accept failed: {e} ({skipped} more since the last warning; retrying in {backoff:?})"
                    );
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(skipped) = due(&mut refusal_log) {
                tracing::warn!(
                    "{what} listener: {CONNECTIONS_MAX} connections open, refusing more ({skipped} refused since the last warning)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = tls else {
                return serve_connection(TokioIo::new(stream), Peer::Plain, handle, what).await;
            };
            let accepted =
                tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            let stream = match accepted {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("{what} connection: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("{what} connection: TLS handshake timed out");
                    return;
                }
            };
            // The verifier required a certificate; none is a bug: refuse.
            let Some(cert) = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .cloned()
            else {
                tracing::warn!("{what} connection: TLS without a client certificate");
                return;
            };
            let peer = Peer::Certified(Arc::new(cert));
            serve_connection(TokioIo::new(stream), peer, handle, what).await;
        });
    }
}

/// Serves one accepted connection: each request gets `peer` as an
/// extension, then goes to `handle`.
async fn serve_connection<I, F, Fut>(io: I, peer: Peer, handle: F, what: &'static str)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        handle(req)
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service)
        .await
    {
        tracing::debug!("{what} connection: {e}");
    }
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn json<T: Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(StatusCode::OK, body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string().into_bytes(),
        ),
    }
}

async fn handle(
    raft: Raft<TypeConfig>,
    secret: Arc<ClusterSecret>,
    me: NodeId,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Vec::new()));
    }
    // Meant for this node, from another one the peer may speak for.
    let Some(route) = Route::check(&req, me) else {
        return Ok(reply(StatusCode::UNAUTHORIZED, Vec::new()));
    };
    let path = req.uri().path().to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (auth, body_sha256) = (header(AUTH_HEADER), header(BODY_SHA256_HEADER));
    // The tag is checked before the body is read: only peers holding the
    // secret can make this node buffer a body.
    let Some(body_sha256) = body_sha256.filter(|sha| {
        auth.as_deref()
            .is_some_and(|a| secret.verify(a, &path, route, sha))
    }) else {
        return Ok(reply(StatusCode::UNAUTHORIZED, Vec::new()));
    };
    let body = match Limited::new(req.into_body(), BODY_MAX_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes())),
    };
    let actual = {
        use sha2::Digest;
        hex::encode(Sha256::digest(&body))
    };
    if actual != body_sha256 {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            b"body does not match its tag".to_vec(),
        ));
    }
    let bad = |e: serde_json::Error| reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes());
    // A leader's messages (append, snapshot) and a candidate's vote request
    // name their sender in the vote they carry: it must be the node the
    // authenticated route (and, with TLS, the certificate) says sent them.
    let sent_by = |vote: &openraft::Vote<NodeId>| vote.leader_id().voted_for() == Some(route.from);
    let impostor = || {
        reply(
            StatusCode::UNAUTHORIZED,
            b"the message's vote names another sender".to_vec(),
        )
    };
    Ok(match path.as_str() {
        "/raft/v1/append" => {
            match serde_json::from_slice::<AppendEntriesRequest<TypeConfig>>(&body) {
                Ok(rpc) if !sent_by(&rpc.vote) => impostor(),
                Ok(rpc) => json(&raft.append_entries(rpc).await),
                Err(e) => bad(e),
            }
        }
        "/raft/v1/vote" => match serde_json::from_slice::<VoteRequest<NodeId>>(&body) {
            Ok(rpc) if !sent_by(&rpc.vote) => impostor(),
            Ok(rpc) => json(&raft.vote(rpc).await),
            Err(e) => bad(e),
        },
        "/raft/v1/snapshot" => {
            match serde_json::from_slice::<InstallSnapshotRequest<TypeConfig>>(&body) {
                Ok(rpc) if !sent_by(&rpc.vote) => impostor(),
                Ok(rpc) => json(&raft.install_snapshot(rpc).await),
                Err(e) => bad(e),
            }
        }
        // A write forwarded by a node that is not the leader.
        "/raft/v1/write" => match serde_json::from_slice::<ClusterRequest>(&body) {
            Ok(req) => json(&raft.client_write(req).await),
            Err(e) => bad(e),
        },
        // A follower's read barrier: the index a linearizable read must
        // wait for (after this node confirmed it still leads).
        "/raft/v1/read-index" => json(&read_index(&raft).await),
        _ => reply(StatusCode::NOT_FOUND, Vec::new()),
    })
}

type ReadIndexResult = Result<
    Option<u64>,
    RaftError<NodeId, openraft::error::CheckIsLeaderError<NodeId, ClusterNode>>,
>;

/// On the leader: the log index every read must see (its commit index,
/// once a quorum confirmed it still leads).
async fn read_index(raft: &Raft<TypeConfig>) -> ReadIndexResult {
    let (read_log_id, applied) = raft.get_read_log_id().await?;
    Ok(read_log_id.max(applied).map(|l| l.index))
}

/// Why a cluster write did not commit.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No leader took the write in time. It may still commit later (its
    /// fate is unknown); retrying the same request (same id) within
    /// `DEDUP_WINDOW_MS` applies it at most once.
    #[error("no leader answered within {0:?} (the write may still commit)")]
    Timeout(std::time::Duration),
    /// Committed, but its guard (by index) did not hold: nothing written.
    #[error("metadata changed concurrently (guard {0} failed)")]
    GuardFailed(usize),
    #[error("the cluster refused the write: {0}")]
    Refused(String),
}

/// What a committed entry's response means for the writer.
fn outcome(
    r: openraft::raft::ClientWriteResponse<TypeConfig>,
) -> Result<openraft::LogId<NodeId>, WriteError> {
    match r.data {
        ClusterResponse::Applied => Ok(r.log_id),
        ClusterResponse::GuardFailed(i) => Err(WriteError::GuardFailed(i)),
        ClusterResponse::Rejected(why) => Err(WriteError::Refused(why)),
    }
}

/// Commits metadata commands from any node: on the leader directly, else
/// forwarded over HTTP to the node this one believes leads, retrying (and
/// waiting for an election) until `timeout`. A write that returns `Ok` is
/// committed on a majority and applied on the leader.
#[derive(Clone)]
pub struct ClusterWriter {
    raft: Raft<TypeConfig>,
    net: HttpNetwork,
    timeout: std::time::Duration,
    read_index: Arc<SharedReadIndex>,
}

/// How long one read-index fetch may take before it counts as failed.
const READ_INDEX_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// What one read-index fetch gave: the index reads must wait for (`None`:
/// nothing committed yet), or why it failed (the caller retries).
type FetchedReadIndex = Result<Option<u64>, String>;

/// Read-index fetches shared between concurrent read barriers. A fetch that
/// *started* after a caller arrived gives that caller a valid read point
/// (the leader's commit index then covers everything committed before the
/// caller arrived), so one fetch serves every caller waiting when it
/// starts; callers that arrive during a fetch wait for the next one. Under
/// load that is one round trip to the leader per round trip, not per request.
#[derive(Debug)]
struct SharedReadIndex {
    /// Fetches started so far; a fetch takes its number when it starts.
    started: std::sync::atomic::AtomicU64,
    /// One fetch at a time.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// The last finished fetch: its number and result.
    done: tokio::sync::watch::Sender<(u64, FetchedReadIndex)>,
}

impl SharedReadIndex {
    fn new() -> Self {
        SharedReadIndex {
            started: std::sync::atomic::AtomicU64::new(0),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            done: tokio::sync::watch::Sender::new((0, Ok(None))),
        }
    }
}

impl std::fmt::Debug for ClusterWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterWriter(node {})", self.net.me)
    }
}

type ForwardResult = Result<
    openraft::raft::ClientWriteResponse<TypeConfig>,
    RaftError<NodeId, openraft::error::ClientWriteError<NodeId, ClusterNode>>,
>;

impl ClusterWriter {
    pub fn new(raft: Raft<TypeConfig>, net: HttpNetwork, timeout: std::time::Duration) -> Self {
        ClusterWriter {
            raft,
            net,
            timeout,
            read_index: Arc::new(SharedReadIndex::new()),
        }
    }

    /// One read-index fetch: from this node's Raft if it leads, else from
    /// the leader over HTTP.
    async fn fetch_read_index(&self) -> FetchedReadIndex {
        let e = match read_index(&self.raft).await {
            Ok(i) => return Ok(i),
            Err(e) => e,
        };
        let Some(f) = e.forward_to_leader::<ClusterNode>() else {
            return Err(e.to_string());
        };
        match f.leader_id.zip(f.leader_node.clone()) {
            Some((id, node)) if id != self.net.me => {
                let conn = HttpConnection {
                    net: self.net.clone(),
                    target: id,
                    node,
                };
                let r: RpcResult<
                    Option<u64>,
                    openraft::error::CheckIsLeaderError<NodeId, ClusterNode>,
                > = conn.post("/raft/v1/read-index", &()).await;
                r.map_err(|e| e.to_string())
            }
            _ => Err("no leader known".to_owned()),
        }
    }

    /// A read index valid for a caller arriving now, from a fetch shared
    /// with concurrent callers (see [`SharedReadIndex`]).
    async fn shared_read_index(&self) -> FetchedReadIndex {
        use std::sync::atomic::Ordering;
        let shared = self.read_index.clone();
        // Fetches numbered above this one started after we arrived.
        let arrived = shared.started.load(Ordering::SeqCst);
        let mut done = shared.done.subscribe();
        let accept = |done: &mut tokio::sync::watch::Receiver<(u64, FetchedReadIndex)>| {
            let (number, result) = &*done.borrow_and_update();
            match result {
                Ok(index) if *number > arrived => Some(Ok(*index)),
                Err(e) if *number > arrived => Some(Err(e.clone())),
                _ => None,
            }
        };
        if let Some(r) = accept(&mut done) {
            return r;
        }
        // One fetch at a time; waiting for the lock (not trying it) means
        // no waiter can miss the end of the fetch it waits behind.
        let one_fetch = shared.fetching.clone().lock_owned().await;
        if let Some(r) = accept(&mut done) {
            return r;
        }
        // This fetch starts after we arrived. It runs in its own task, so a
        // caller that gives up (a client gone) cannot leave the others
        // waiting for a result nobody publishes.
        let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let me = self.clone();
        tokio::spawn(async move {
            // Bounded, so a hung connection cannot hold every barrier.
            let result = tokio::time::timeout(READ_INDEX_FETCH_TIMEOUT, me.fetch_read_index())
                .await
                .unwrap_or_else(|_| Err("read index fetch timed out".to_owned()));
            let _last = me.read_index.done.send_replace((number, result));
            drop(one_fetch);
        });
        loop {
            if let Some(r) = accept(&mut done) {
                return r;
            }
            if done.changed().await.is_err() {
                return Err("read index channel closed".to_owned());
            }
        }
    }

    /// Returns once this node has applied everything committed before the
    /// call (a linearizable read point): asks the leader for its read index
    /// — the leader itself, or over HTTP — then waits for the local apply.
    pub async fn read_barrier(&self) -> Result<(), WriteError> {
        tokio::time::timeout(self.timeout, async {
            loop {
                match self.shared_read_index().await {
                    Ok(index) => {
                        self.raft
                            .wait(None)
                            .applied_index_at_least(index, "read barrier")
                            .await
                            .map_err(|e| WriteError::Refused(e.to_string()))?;
                        return Ok(());
                    }
                    // No leader known yet, it moved, or it is unreachable:
                    // look again shortly (until the timeout).
                    Err(why) => {
                        tracing::debug!("read index: {why}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        })
        .await
        .map_err(|_| WriteError::Timeout(self.timeout))?
    }

    /// Commits `req` and waits until this node has applied it too, so a
    /// read here that follows sees it.
    pub async fn write_and_apply(
        &self,
        req: ClusterRequest,
    ) -> Result<openraft::LogId<NodeId>, WriteError> {
        let log_id = match self.write(req).await {
            Ok(id) => id,
            Err(WriteError::GuardFailed(i)) => {
                // The state the guard saw is newer than this node's: catch
                // up, so the caller's re-read sees what failed it.
                self.read_barrier().await?;
                return Err(WriteError::GuardFailed(i));
            }
            Err(e) => return Err(e),
        };
        self.raft
            .wait(Some(self.timeout))
            .applied_index_at_least(Some(log_id.index), "local apply")
            .await
            .map_err(|_| WriteError::Timeout(self.timeout))?;
        Ok(log_id)
    }

    pub async fn write(&self, req: ClusterRequest) -> Result<openraft::LogId<NodeId>, WriteError> {
        tokio::time::timeout(self.timeout, self.write_until_done(req))
            .await
            .map_err(|_| WriteError::Timeout(self.timeout))?
    }

    async fn write_until_done(
        &self,
        req: ClusterRequest,
    ) -> Result<openraft::LogId<NodeId>, WriteError> {
        loop {
            let result: ForwardResult = self.raft.client_write(req.clone()).await;
            let leader = match result {
                Ok(r) => return outcome(r),
                Err(e) => match e.forward_to_leader::<ClusterNode>() {
                    Some(f) => f.leader_id.zip(f.leader_node.clone()),
                    None => return Err(WriteError::Refused(e.to_string())),
                },
            };
            if let Some((id, node)) = leader
                && id != self.net.me
            {
                let conn = HttpConnection {
                    net: self.net.clone(),
                    target: id,
                    node,
                };
                let forwarded: RpcResult<
                    openraft::raft::ClientWriteResponse<TypeConfig>,
                    RaftError<NodeId, openraft::error::ClientWriteError<NodeId, ClusterNode>>,
                > = conn.post("/raft/v1/write", &req).await;
                match forwarded {
                    Ok(r) => return outcome(r),
                    // Leadership moved, the leader is unreachable, or its
                    // answer was lost: send the same request again (the
                    // state machine applies a request id once).
                    Err(e) if e.forward_to_leader().is_some() => {}
                    Err(RPCError::RemoteError(e)) => {
                        return Err(WriteError::Refused(e.source.to_string()));
                    }
                    Err(_) => {}
                }
            }
            // No leader known yet (an election is running): wait a little.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
