//! Shard transfer between nodes over HTTP/1.1 (hyper), so one node's
//! storage engine can use another node's drives.
//!
//! Owns both ends: [`RemoteDrive`], a [`ShardStore`] whose calls go to a
//! peer, and [`serve_shards`], the peer's listener that runs them on its
//! own drives (normally `LocalDrive`s). It knows nothing of placement,
//! metadata or which node is which: the engine decides where shards go.
//!
//! ## Wire format (version 1)
//!
//! | route                  | method | query parameters                          | request body | `200` body |
//! |------------------------|--------|-------------------------------------------|--------------|------------|
//! | `/shard/v1/append`     | POST   | `drive chunk shard checksum len`          | the payload  | JSON `{node, drive, segment, offset}` |
//! | `/shard/v1/read`       | GET    | `drive chunk shard segment offset len`    | empty        | the payload, with `x-cairn-shard-crc64` |
//! | `/shard/v1/segments`   | GET    | `drive`                                   | empty        | JSON `[{id, len_bytes, modified_ms, active}]` |
//! | `/shard/v1/scan`       | GET    | `drive segment`                           | empty        | JSON `[{offset, chunk, shard_index, payload_len}]` |
//! | `/shard/v1/remove`     | POST   | `drive segment`                           | empty        | JSON bytes freed (u64) |
//! | `/shard/v1/seal`       | POST   | `drive segment`                           | empty        | JSON bool (whether it was active) |
//!
//! `drive` is the `index()` of one of the served drives (drive indexes
//! are global: the peer's drive index is the one the engine records),
//! `chunk` the chunk id as 64 hex digits, `shard` the shard index,
//! `checksum` the shard's CRC-64/NVME ([`cairn_erasure::shard_checksum`])
//! and `x-cairn-shard-crc64` that of the payload returned, both in
//! decimal; `segment`, `offset` and `len` are decimal. The client checks a
//! read's length and CRC: damage in transit is an I/O error, not a corrupt
//! shard (the copy on the drive may well be intact).
//!
//! Any other answer carries `x-cairn-shard-error: <kind>` and a short
//! text body: `400 bad-request` (a parameter, a body that does not match
//! its SHA-256, its `len`, or its `checksum`), `401 unauthorized`,
//! `404 no-such-route`, `404 no-such-drive`, `404 missing` (the shard's
//! segment or record is not there), `405 bad-method`, `408 timeout` (the
//! body did not arrive in time), `413 too-large` (a body over 64 MiB),
//! `422 corrupt` (the record is not the expected, intact shard), `507 full`,
//! `500 io` / `500 corrupt` / `500 internal` (other drive errors). The
//! client maps `missing` and `corrupt` on reads to the matching
//! [`ShardReadError`], and everything else (transport failures, timeouts:
//! connect 2 s, whole request 30 s) to an I/O error — except `full`,
//! `corrupt` and `internal` from other calls, which keep their
//! [`EngineError`] variant.
//!
//! ## Durability
//! The peer answers an append only after the drive's `sync` for it
//! returned: a `200` means the shard is durable there. So
//! [`RemoteDrive::sync`] is a no-op and `append` returns sequence `0`. (A
//! completion sequence from the peer would also be meaningless across its
//! restarts, which reset it.) Concurrent appends still share fsyncs: the
//! peer's drive group-commits them. An append the client gave up on (a
//! timeout, a lost answer) may still be made on the peer: its record is
//! then unreferenced, garbage for compaction like any other.
//!
//! ## Authentication
//! Every request is signed with AWS SigV4 (`aws-sigv4`): service
//! `cairn-shard`, region `cairn`, access key id `cairn-node`, and as secret
//! key the hex of a key derived from the [`ClusterSecret`] (an HMAC-SHA256
//! of it over a fixed label, never sent or logged). Signed: the method,
//! path and query, `host`, `x-cairn-node-from` and `x-cairn-node-to` (the
//! sender's and the receiver's node ids), `x-amz-date` and
//! `x-amz-content-sha256` (the hex SHA-256 of the body). The server
//! verifies it with the verifier S3 requests go through (`cairn-s3-auth`,
//! configured for service `cairn-shard`, region `cairn` and this key; the
//! signature compared in constant time), refuses presigned requests, a body
//! that is not declared by its SHA-256, a date more than 5 minutes from its
//! clock, a signature whose `SignedHeaders` lack either node id, a `to`
//! that is not its own id, a `from` that is its own (or 0), and — with TLS —
//! a `from` the client certificate does not name (`401`), all before
//! reading the body; then it checks the body against its SHA-256 (`400`).
//!
//! Replay: a request captured on its way to one node is refused by any
//! other. Without TLS, answers are not authenticated, and a captured
//! request can be replayed to the node it was meant for within the 5
//! minutes: a replayed append only adds an unreferenced record (garbage for
//! compaction), a replayed remove or seal repeats what was already asked
//! (segment ids are never reused). With TLS (crate::tls: the cluster CA,
//! node certificates, each side checking the other's node id) requests and
//! answers are encrypted and authenticated, and nobody outside the cluster
//! can capture or replay anything.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use cairn_erasure::{ShardChecksum, shard_checksum};
use cairn_storage_engine::{
    ChunkId, EngineError, EngineResult, ScannedShard, SegmentInfo, ShardLocation, ShardReadError,
    ShardStore,
};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::network::{FROM_HEADER, Route, TO_HEADER};
use crate::tls::{ClusterAuth, NodeConnector};
use crate::{ClusterSecret, NodeId};

const ROUTE_PREFIX: &str = "/shard/v1/";
const SIGNING_SERVICE: &str = "cairn-shard";
const SIGNING_REGION: &str = "cairn";
const ACCESS_KEY_ID: &str = "cairn-node";
/// What the shard-transfer key is derived under
/// ([`ClusterSecret::derive_hex`], whose messages no Raft tag can match).
const KEY_LABEL: &str = "cairn shard transfer v1";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const ERROR_KIND_HEADER: &str = "x-cairn-shard-error";
const PAYLOAD_CRC_HEADER: &str = "x-cairn-shard-crc64";

/// How far a request's `x-amz-date` may be from the receiver's clock.
const DATE_SKEW: Duration = Duration::from_secs(5 * 60);
/// Largest body either side accepts (a shard is far smaller).
const BODY_MAX_BYTES: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// For a whole call, and for a request body to arrive at the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies at least this large are hashed on the blocking pool.
const HASH_INLINE_MAX_BYTES: usize = 64 << 10;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SigV4 signing with the shard-transfer key. `Debug` does not print it.
#[derive(Clone)]
pub(crate) struct ShardSigner {
    identity: Identity,
    /// The same key, for verifying with `cairn-s3-auth`.
    secret_hex: Arc<zeroize::Zeroizing<String>>,
}

impl cairn_s3_auth::SecretLookup for ShardSigner {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        (access_key == ACCESS_KEY_ID).then(|| self.secret_hex.as_str().to_owned())
    }
}

impl std::fmt::Debug for ShardSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardSigner(..)")
    }
}

impl ShardSigner {
    /// The signer for a cluster; `None` only if HMAC cannot be keyed.
    pub(crate) fn new(secret: &ClusterSecret) -> Option<Self> {
        // A PRF output of the secret under a fixed label, which no Raft
        // message reveals.
        let key_hex = zeroize::Zeroizing::new(secret.derive_hex(KEY_LABEL)?);
        let identity =
            Credentials::new(ACCESS_KEY_ID, key_hex.as_str(), None, None, "cairn-cluster").into();
        Some(ShardSigner {
            identity,
            secret_hex: Arc::new(key_hex),
        })
    }

    /// The headers of a request at `time` from and to the nodes of
    /// `route`: `x-cairn-node-from`, `x-cairn-node-to` and the SigV4 ones
    /// (`authorization`, `x-amz-date`, `x-amz-content-sha256`), which
    /// cover the first two.
    pub(crate) fn headers(
        &self,
        route: Route,
        method: &str,
        path_and_query: &str,
        host: &str,
        body_sha256: &str,
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        self.headers_for(
            SIGNING_SERVICE,
            route,
            method,
            path_and_query,
            host,
            body_sha256,
            time,
        )
    }

    /// [`Self::headers`] with the credential scope naming `service`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn headers_for(
        &self,
        service: &str,
        route: Route,
        method: &str,
        path_and_query: &str,
        host: &str,
        body_sha256: &str,
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params: aws_sigv4::http_request::SigningParams<'_> =
            aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&self.identity)
                .region(SIGNING_REGION)
                .name(service)
                .time(time)
                .settings(settings)
                .build()
                .map_err(|e| format!("signing: {e}"))?
                .into();
        // The host is passed explicitly: aws-sigv4 would otherwise take it
        // from the URI, which a server-side (origin-form) URI lacks.
        let (from, to) = (route.from.to_string(), route.to.to_string());
        let signable = SignableRequest::new(
            method,
            path_and_query,
            [
                ("host", host),
                (FROM_HEADER, from.as_str()),
                (TO_HEADER, to.as_str()),
            ]
            .into_iter(),
            SignableBody::Precomputed(body_sha256.to_owned()),
        )
        .map_err(|e| format!("signing: {e}"))?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        let (headers, _) = instructions.into_parts();
        let mut out = vec![(FROM_HEADER, from), (TO_HEADER, to)];
        out.extend(
            headers
                .into_iter()
                .map(|h| (h.name(), h.value().to_owned())),
        );
        Ok(out)
    }

    /// Whether a request's SigV4 headers are valid and fresh, checked by
    /// the same verifier as S3 requests (`cairn-s3-auth`, service
    /// `cairn-shard`, region `cairn`, ±5 minutes): signed in the header (not
    /// presigned) by this cluster's key, with the body's SHA-256 declared
    /// (checked against the body later). `Err` says why not (for the `401`
    /// body: nothing secret).
    fn verify(&self, parts: &hyper::http::request::Parts) -> Result<(), String> {
        let cfg = cairn_s3_auth::VerifyConfig {
            region: SIGNING_REGION.to_owned(),
            service: SIGNING_SERVICE.to_owned(),
            max_clock_skew: DATE_SKEW,
            max_presign_expiry: Duration::ZERO,
        };
        let verified = cairn_s3_auth::verify_request(parts, self, &cfg, SystemTime::now())
            .map_err(|e| e.to_string())?;
        match verified.payload {
            _ if verified.presigned => return Err("presigned requests are not accepted".into()),
            cairn_s3_auth::PayloadHash::Sha256(_) => {}
            _ => return Err("x-amz-content-sha256 is not a SHA-256".into()),
        }
        // The node ids count only if the signature covers them.
        let signed = signed_headers(parts);
        for name in [FROM_HEADER, TO_HEADER] {
            if !signed.contains(&name) {
                return Err(format!("{name} is not signed"));
            }
        }
        Ok(())
    }
}

/// The `SignedHeaders` of a request's (already verified) `authorization`
/// header, lower case as signed.
fn signed_headers(parts: &hyper::http::request::Parts) -> Vec<&str> {
    let Some(auth) = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    auth.split([',', ' '])
        .find_map(|field| field.trim().strip_prefix("SignedHeaders="))
        .map(|list| list.split(';').collect())
        .unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
struct WireLocation {
    node: u16,
    drive: u16,
    segment: u64,
    offset: u64,
}

#[derive(Serialize, Deserialize)]
struct WireSegment {
    id: u64,
    len_bytes: u64,
    modified_ms: u64,
    active: bool,
}

#[derive(Serialize, Deserialize)]
struct WireScanned {
    offset: u64,
    chunk: String,
    shard_index: u8,
    payload_len: u32,
}

// ---------------------------------------------------------------- client

/// A peer's drive, used over HTTP as if it were local.
///
/// Its methods block (like every [`ShardStore`]): call them from blocking
/// threads (`spawn_blocking`), never from async code — each runs its
/// request on `runtime` with `block_on`.
pub struct RemoteDrive {
    index: u16,
    node: u16,
    /// This node, the sender of every request.
    from: NodeId,
    base_url: String,
    /// `None` only if the key could not be derived: every call fails.
    signer: Option<ShardSigner>,
    runtime: tokio::runtime::Handle,
    /// `None` only if the connector could not be made: every call fails.
    client: Option<Client<NodeConnector, Full<Bytes>>>,
}

impl std::fmt::Debug for RemoteDrive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RemoteDrive(drive {} on node {} at {})",
            self.index, self.node, self.base_url
        )
    }
}

/// A peer's answer: status, error kind, CRC header, body.
struct Answer {
    status: StatusCode,
    kind: Option<String>,
    crc: Option<u64>,
    body: Bytes,
}

impl Answer {
    fn message(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.chars().take(512).collect::<String>();
        match &self.kind {
            Some(kind) => format!("{} {kind}: {text}", self.status),
            None => format!("{}: {text}", self.status),
        }
    }

    fn kind_is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }
}

/// Why a call got no answer.
struct TransportError {
    kind: std::io::ErrorKind,
    message: String,
}

impl TransportError {
    fn other(message: String) -> Self {
        TransportError {
            kind: std::io::ErrorKind::Other,
            message,
        }
    }
    fn into_io(self) -> std::io::Error {
        std::io::Error::new(self.kind, self.message)
    }
}

impl RemoteDrive {
    /// Drive `index` of node `node`, served by [`serve_shards`] at
    /// `shard_addr` (`host:port`), used by node `from` with `auth` (the
    /// secret it signs with; with TLS, the connection must reach `node`'s
    /// certificate); requests run on `runtime`.
    pub fn new(
        index: u16,
        node: u16,
        from: NodeId,
        shard_addr: &str,
        auth: impl Into<ClusterAuth>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let auth = auth.into();
        let client = match auth.connector(NodeId::from(node), CONNECT_TIMEOUT) {
            Ok(connector) => Some(
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build(connector),
            ),
            Err(e) => {
                tracing::error!(drive = index, node, "remote drive unusable: {e}");
                None
            }
        };
        let base_url = format!("{}://{}", auth.scheme(), shard_addr.trim_end_matches('/'));
        let signer = ShardSigner::new(&auth.secret);
        if signer.is_none() {
            tracing::error!(
                drive = index,
                node,
                "cannot derive the shard transfer key; remote drive unusable"
            );
        }
        RemoteDrive {
            index,
            node,
            from,
            base_url,
            signer,
            runtime,
            client,
        }
    }

    fn context(&self) -> String {
        format!(
            "remote drive {} on node {} ({})",
            self.index, self.node, self.base_url
        )
    }

    /// Runs one signed call to completion (or the request timeout).
    fn call(
        &self,
        method: Method,
        op: &str,
        query: &str,
        body: Bytes,
    ) -> Result<Answer, TransportError> {
        let body_sha256 = sha256_hex(&body);
        let future = self.send(method, op, query, body, body_sha256);
        // The timer is made inside `block_on`, where the runtime is
        // entered (this thread need not be one of its own).
        self.runtime.block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, future)
                .await
                .unwrap_or_else(|_| {
                    Err(TransportError {
                        kind: std::io::ErrorKind::TimedOut,
                        message: format!("no answer within {REQUEST_TIMEOUT:?}"),
                    })
                })
        })
    }

    async fn send(
        &self,
        method: Method,
        op: &str,
        query: &str,
        body: Bytes,
        body_sha256: String,
    ) -> Result<Answer, TransportError> {
        let (Some(signer), Some(client)) = (&self.signer, &self.client) else {
            return Err(TransportError::other(
                "no shard transfer key or connector".into(),
            ));
        };
        let uri: hyper::Uri = format!("{}{ROUTE_PREFIX}{op}?{query}", self.base_url)
            .parse()
            .map_err(|e| TransportError::other(format!("bad URL: {e}")))?;
        let (Some(authority), Some(path_and_query)) = (uri.authority(), uri.path_and_query())
        else {
            return Err(TransportError::other(format!("bad URL {uri}")));
        };
        let host = authority.as_str().to_owned();
        let route = Route {
            from: self.from,
            to: NodeId::from(self.node),
        };
        let signed = signer
            .headers(
                route,
                method.as_str(),
                path_and_query.as_str(),
                &host,
                &body_sha256,
                SystemTime::now(),
            )
            .map_err(TransportError::other)?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, host);
        for (name, value) in signed {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| TransportError::other(format!("building request: {e}")))?;
        let response = client.request(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                std::io::ErrorKind::NotConnected
            } else {
                std::io::ErrorKind::Other
            };
            TransportError {
                kind,
                message: format!("request failed: {e}"),
            }
        })?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let kind = header(ERROR_KIND_HEADER);
        let crc = header(PAYLOAD_CRC_HEADER).and_then(|v| v.parse().ok());
        let body = Limited::new(response.into_body(), BODY_MAX_BYTES)
            .collect()
            .await
            .map_err(|e| TransportError::other(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(Answer {
            status,
            kind,
            crc,
            body,
        })
    }

    /// The error for an answer other than `200` to a call other than read.
    fn engine_error(&self, answer: &Answer) -> EngineError {
        let message = format!("{}: {}", self.context(), answer.message());
        if answer.status == StatusCode::INSUFFICIENT_STORAGE || answer.kind_is("full") {
            EngineError::StorageFull(message)
        } else if answer.kind_is("corrupt") {
            EngineError::Corrupt(message)
        } else if answer.kind_is("internal") {
            EngineError::Internal(message)
        } else {
            EngineError::io(self.context(), std::io::Error::other(answer.message()))
        }
    }

    /// A call whose `200` body is JSON.
    fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        op: &str,
        query: &str,
    ) -> EngineResult<T> {
        let answer = self
            .call(method, op, query, Bytes::new())
            .map_err(|e| EngineError::io(self.context(), e.into_io()))?;
        if answer.status != StatusCode::OK {
            return Err(self.engine_error(&answer));
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            EngineError::io(
                self.context(),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }
}

impl ShardStore for RemoteDrive {
    fn index(&self) -> u16 {
        self.index
    }

    fn node(&self) -> u16 {
        self.node
    }

    fn describe(&self) -> String {
        format!("node {} at {}", self.node, self.base_url)
    }

    fn append(
        &self,
        chunk: &ChunkId,
        shard_index: u8,
        payload: &[u8],
        checksum: ShardChecksum,
    ) -> EngineResult<(ShardLocation, u64)> {
        let query = format!(
            "drive={}&chunk={chunk}&shard={shard_index}&checksum={}&len={}",
            self.index,
            checksum.0,
            payload.len()
        );
        let answer = self
            .call(
                Method::POST,
                "append",
                &query,
                Bytes::copy_from_slice(payload),
            )
            .map_err(|e| EngineError::io(self.context(), e.into_io()))?;
        if answer.status != StatusCode::OK {
            return Err(self.engine_error(&answer));
        }
        let loc: WireLocation = serde_json::from_slice(&answer.body).map_err(|e| {
            EngineError::io(
                self.context(),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        // Durable already (see the module comment): nothing for `sync`.
        Ok((
            ShardLocation {
                node: loc.node,
                drive: loc.drive,
                segment: loc.segment,
                offset: loc.offset,
            },
            0,
        ))
    }

    /// Nothing to do: the peer answered each append only once it was
    /// synced there. (Its own sequence numbers would not do either: they
    /// restart from 0 when the peer restarts.)
    fn sync(&self, _seq: u64) -> EngineResult<()> {
        Ok(())
    }

    fn read(
        &self,
        loc: &ShardLocation,
        chunk: &ChunkId,
        shard_index: u8,
        payload_len: u32,
    ) -> Result<Bytes, ShardReadError> {
        let query = format!(
            "drive={}&chunk={chunk}&shard={shard_index}&segment={}&offset={}&len={payload_len}",
            self.index, loc.segment, loc.offset
        );
        let answer = self
            .call(Method::GET, "read", &query, Bytes::new())
            .map_err(|e| ShardReadError::Io(e.into_io()))?;
        if answer.status != StatusCode::OK {
            let message = format!("{}: {}", self.context(), answer.message());
            return Err(if answer.kind_is("missing") {
                ShardReadError::Missing(message)
            } else if answer.kind_is("corrupt") {
                ShardReadError::Corrupt(message)
            } else {
                ShardReadError::Io(std::io::Error::other(message))
            });
        }
        // Damage in transit is not damage on the drive: an I/O error, so
        // nobody rebuilds a shard that is intact over there.
        if answer.body.len() != payload_len as usize
            || answer.crc != Some(shard_checksum(&answer.body).0)
        {
            return Err(ShardReadError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: the payload arrived damaged or truncated",
                    self.context()
                ),
            )));
        }
        Ok(answer.body)
    }

    fn segments(&self) -> EngineResult<Vec<SegmentInfo>> {
        let wire: Vec<WireSegment> =
            self.call_json(Method::GET, "segments", &format!("drive={}", self.index))?;
        Ok(wire
            .into_iter()
            .map(|s| SegmentInfo {
                id: s.id,
                len_bytes: s.len_bytes,
                modified_ms: s.modified_ms,
                active: s.active,
            })
            .collect())
    }

    fn scan_segment(&self, segment: u64) -> EngineResult<Vec<ScannedShard>> {
        let wire: Vec<WireScanned> = self.call_json(
            Method::GET,
            "scan",
            &format!("drive={}&segment={segment}", self.index),
        )?;
        wire.into_iter()
            .map(|s| {
                let chunk = ChunkId::from_hex(&s.chunk).map_err(|e| {
                    EngineError::io(
                        self.context(),
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                    )
                })?;
                Ok(ScannedShard {
                    offset: s.offset,
                    chunk,
                    shard_index: s.shard_index,
                    payload_len: s.payload_len,
                })
            })
            .collect()
    }

    fn remove_segment(&self, segment: u64) -> EngineResult<u64> {
        self.call_json(
            Method::POST,
            "remove",
            &format!("drive={}&segment={segment}", self.index),
        )
    }

    fn seal_active(&self, segment: u64) -> bool {
        match self.call_json(
            Method::POST,
            "seal",
            &format!("drive={}&segment={segment}", self.index),
        ) {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::warn!(
                    drive = self.index,
                    node = self.node,
                    segment,
                    error = %e,
                    "could not seal a remote segment"
                );
                false
            }
        }
    }
}

// ---------------------------------------------------------------- server

#[derive(Debug)]
struct ServerState {
    me: NodeId,
    drives: HashMap<u16, Arc<dyn ShardStore>>,
    signer: ShardSigner,
}

/// Serves `drives` of node `me` on `listener` to peers holding the secret
/// of `auth` (and, with its TLS, a certificate of the cluster CA; see the
/// module comment for the routes), until the task is dropped.
pub async fn serve_shards(
    listener: tokio::net::TcpListener,
    me: NodeId,
    drives: Vec<Arc<dyn ShardStore>>,
    auth: impl Into<ClusterAuth>,
) {
    let auth = auth.into();
    let Some(signer) = ShardSigner::new(&auth.secret) else {
        tracing::error!("cannot derive the shard transfer key; not serving shards");
        return;
    };
    let state = Arc::new(ServerState {
        me,
        drives: drives.into_iter().map(|d| (d.index(), d)).collect(),
        signer,
    });
    let tls = auth.tls.as_ref().map(|t| t.acceptor());
    crate::network::serve_bounded(listener, "shard", tls, move |req| {
        handle(state.clone(), req)
    })
    .await
}

type Reply = Response<Full<Bytes>>;

fn ok(body: impl Into<Bytes>) -> Reply {
    Response::new(Full::new(body.into()))
}

fn refuse(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(message.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        ERROR_KIND_HEADER,
        hyper::header::HeaderValue::from_static(kind),
    );
    r
}

fn json<T: Serialize>(value: &T) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => ok(body),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

fn engine_refusal(e: &EngineError) -> Reply {
    let (status, kind) = match e {
        EngineError::StorageFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "full"),
        EngineError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
        e if e.is_corruption() => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    refuse(status, kind, e.to_string())
}

fn join_refusal(e: &tokio::task::JoinError) -> Reply {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("drive task failed: {e}"),
    )
}

fn bad_request(message: impl Into<String>) -> Reply {
    refuse(StatusCode::BAD_REQUEST, "bad-request", message)
}

/// The query parameters (values are plain decimal or hex: no decoding).
struct Params<'a>(HashMap<&'a str, &'a str>);

impl<'a> Params<'a> {
    fn parse(query: &'a str) -> Self {
        Params(
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .collect(),
        )
    }

    fn get<T: std::str::FromStr>(&self, name: &str) -> Result<T, Reply> {
        self.0
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad_request(format!("missing or invalid parameter {name}")))
    }

    fn chunk(&self) -> Result<ChunkId, Reply> {
        self.0
            .get("chunk")
            .and_then(|v| ChunkId::from_hex(v).ok())
            .ok_or_else(|| bad_request("missing or invalid parameter chunk"))
    }
}

async fn handle(state: Arc<ServerState>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    Ok(match serve_one(&state, req).await {
        Ok(reply) | Err(reply) => reply,
    })
}

async fn serve_one(state: &ServerState, req: Request<Incoming>) -> Result<Reply, Reply> {
    // The signature is checked before anything else, the body included:
    // only peers holding the secret make this node buffer a body.
    let (parts, body) = req.into_parts();
    if let Err(why) = state.signer.verify(&parts) {
        return Err(refuse(StatusCode::UNAUTHORIZED, "unauthorized", why));
    }
    let req = Request::from_parts(parts, body);
    // Meant for this node, from another one the peer may speak for.
    if Route::check(&req, state.me).is_none() {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not from another node of this cluster to this one",
        ));
    }
    let Some(op) = req.uri().path().strip_prefix(ROUTE_PREFIX) else {
        return Err(refuse(StatusCode::NOT_FOUND, "no-such-route", ""));
    };
    let expected_method = match op {
        "append" | "remove" | "seal" => Method::POST,
        "read" | "segments" | "scan" => Method::GET,
        _ => return Err(refuse(StatusCode::NOT_FOUND, "no-such-route", "")),
    };
    if req.method() != expected_method {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "bad-method",
            format!("{op} takes {expected_method}"),
        ));
    }
    let op = op.to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let params = Params::parse(&query);
    let drive_index: u16 = params.get("drive")?;
    let Some(drive) = state.drives.get(&drive_index).cloned() else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "no-such-drive",
            format!("no drive {drive_index} here"),
        ));
    };
    let body_sha256 = req
        .headers()
        .get(X_AMZ_CONTENT_SHA256)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = read_body(req).await?;
    if hash_body(body.clone()).await? != body_sha256 {
        return Err(bad_request("body does not match x-amz-content-sha256"));
    }
    match op.as_str() {
        "append" => append(&params, drive, body).await,
        "read" => read(&params, drive).await,
        "segments" => {
            let segments = blocking(move || drive.segments()).await?;
            let wire: Vec<WireSegment> = segments
                .into_iter()
                .map(|s| WireSegment {
                    id: s.id,
                    len_bytes: s.len_bytes,
                    modified_ms: s.modified_ms,
                    active: s.active,
                })
                .collect();
            Ok(json(&wire))
        }
        "scan" => {
            let segment: u64 = params.get("segment")?;
            let shards = blocking(move || drive.scan_segment(segment)).await?;
            let wire: Vec<WireScanned> = shards
                .into_iter()
                .map(|s| WireScanned {
                    offset: s.offset,
                    chunk: s.chunk.to_string(),
                    shard_index: s.shard_index,
                    payload_len: s.payload_len,
                })
                .collect();
            Ok(json(&wire))
        }
        "remove" => {
            let segment: u64 = params.get("segment")?;
            let freed = blocking(move || drive.remove_segment(segment)).await?;
            Ok(json(&freed))
        }
        "seal" => {
            let segment: u64 = params.get("segment")?;
            let sealed = tokio::task::spawn_blocking(move || drive.seal_active(segment))
                .await
                .map_err(|e| join_refusal(&e))?;
            Ok(json(&sealed))
        }
        _ => Err(refuse(StatusCode::NOT_FOUND, "no-such-route", "")),
    }
}

/// Runs a drive call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> EngineResult<T> + Send + 'static,
) -> Result<T, Reply> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(engine_refusal(&e)),
        Err(e) => Err(join_refusal(&e)),
    }
}

/// The whole body: at most 64 MiB, within the request timeout.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Reply> {
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("bodies are limited to {BODY_MAX_BYTES} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_MAX_BYTES as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(req.into_body(), BODY_MAX_BYTES).collect();
    match tokio::time::timeout(REQUEST_TIMEOUT, collect).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(bad_request(format!("reading the body: {e}"))),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the body did not arrive in time",
        )),
    }
}

/// The body's hex SHA-256; large bodies are hashed on the blocking pool.
async fn hash_body(body: Bytes) -> Result<String, Reply> {
    if body.len() < HASH_INLINE_MAX_BYTES {
        return Ok(sha256_hex(&body));
    }
    tokio::task::spawn_blocking(move || sha256_hex(&body))
        .await
        .map_err(|e| join_refusal(&e))
}

/// Why an append was not made.
enum AppendRefused {
    Checksum,
    Engine(EngineError),
}

async fn append(
    params: &Params<'_>,
    drive: Arc<dyn ShardStore>,
    body: Bytes,
) -> Result<Reply, Reply> {
    let chunk = params.chunk()?;
    let shard: u8 = params.get("shard")?;
    let checksum = ShardChecksum(params.get("checksum")?);
    let len: usize = params.get("len")?;
    if body.len() != len {
        return Err(bad_request(format!(
            "the body has {} bytes, len says {len}",
            body.len()
        )));
    }
    let appended = tokio::task::spawn_blocking(move || {
        if shard_checksum(&body) != checksum {
            return Err(AppendRefused::Checksum);
        }
        // Durable before the answer: see the module comment.
        let (loc, seq) = drive
            .append(&chunk, shard, &body, checksum)
            .map_err(AppendRefused::Engine)?;
        drive.sync(seq).map_err(AppendRefused::Engine)?;
        Ok(loc)
    })
    .await
    .map_err(|e| join_refusal(&e))?;
    match appended {
        Ok(loc) => Ok(json(&WireLocation {
            node: loc.node,
            drive: loc.drive,
            segment: loc.segment,
            offset: loc.offset,
        })),
        Err(AppendRefused::Checksum) => Err(bad_request("the payload does not match its checksum")),
        Err(AppendRefused::Engine(e)) => Err(engine_refusal(&e)),
    }
}

async fn read(params: &Params<'_>, drive: Arc<dyn ShardStore>) -> Result<Reply, Reply> {
    let chunk = params.chunk()?;
    let shard: u8 = params.get("shard")?;
    let len: u32 = params.get("len")?;
    if len as usize > BODY_MAX_BYTES {
        return Err(bad_request(format!("len is over {BODY_MAX_BYTES}")));
    }
    let loc = ShardLocation {
        node: 0,
        drive: drive.index(),
        segment: params.get("segment")?,
        offset: params.get("offset")?,
    };
    let read = tokio::task::spawn_blocking(move || {
        drive
            .read(&loc, &chunk, shard, len)
            .map(|payload| (shard_checksum(&payload), payload))
    })
    .await
    .map_err(|e| join_refusal(&e))?;
    match read {
        Ok((crc, payload)) => {
            let mut reply = ok(payload);
            reply
                .headers_mut()
                .insert(PAYLOAD_CRC_HEADER, hyper::header::HeaderValue::from(crc.0));
            Ok(reply)
        }
        Err(ShardReadError::Missing(m)) => Err(refuse(StatusCode::NOT_FOUND, "missing", m)),
        Err(ShardReadError::Corrupt(m)) => {
            Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, "corrupt", m))
        }
        Err(ShardReadError::Io(e)) => Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "io",
            e.to_string(),
        )),
    }
}
