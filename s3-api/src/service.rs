//! The HTTP service: one request in, one response out. Assigns the request
//! id, routes, authenticates, dispatches to a handler, renders errors as S3
//! XML and records metrics. Never panics on client input and never answers
//! a client mistake with a 5xx.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use cairn_storage_engine::Engine;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::access::{AccessRequest, Caller, ClientFacts, authorize};
use crate::audit::{AuditCaller, AuditRecord};
use crate::auth::{VerifyConfig, verify_request};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::keys::KeyRing;
use crate::metrics::S3Metrics;
use crate::router::{Operation, Query, route, split_path, virtual_host_bucket, virtual_host_key};
use crate::xml::{ErrorDocument, to_xml};

use crate::context::{RequestCtx, S3Config, ServiceInner};
use crate::response::{RespBody, empty, full};

/// The S3 endpoint. Cheap to clone.
#[derive(Clone)]
pub struct S3Service {
    inner: Arc<ServiceInner>,
}

impl std::fmt::Debug for S3Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Service")
            .field("region", &self.inner.config.region)
            .finish_non_exhaustive()
    }
}

fn new_request_id() -> String {
    hex::encode_upper(cairn_storage_engine::random_bytes::<8>())
}

impl S3Service {
    pub fn new(
        engine: Engine,
        keys: Arc<KeyRing>,
        config: S3Config,
        registry: &prometheus::Registry,
    ) -> Result<Self, String> {
        let metrics = S3Metrics::register(registry)?;
        let audit = match &config.audit_log {
            Some(path) => Some(crate::audit::AuditLog::open(path, registry)?),
            None => None,
        };
        Ok(S3Service {
            inner: Arc::new(ServiceInner {
                audit,
                engine,
                keys,
                verify: VerifyConfig::new(config.region.clone()),
                config,
                metrics,
                access_cache: crate::access::AccessCache::default(),
                host_id: base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    cairn_storage_engine::random_bytes::<24>(),
                ),
            }),
        })
    }

    /// Handles one request. Always produces a response.
    pub async fn handle(&self, req: Request<Incoming>, client: ClientFacts) -> Response<RespBody> {
        let started = Instant::now();
        let request_id = new_request_id();
        let span = tracing::info_span!("s3", request_id = %request_id);
        let close_after = expects_continue_without_body(&req);
        let inner = self.inner.clone();
        let rid = request_id.clone();
        let (op, mut resp) = async move {
            inner.metrics.inflight.inc();
            let (parts, body) = req.into_parts();
            let is_head = parts.method == Method::HEAD;
            // A browser's cross-origin request: its answer carries the
            // bucket's CORS headers, errors included.
            let origin = parts.headers.get(http::header::ORIGIN).cloned();
            let method = parts.method.clone();
            let mut facts = RequestFacts::default();
            let (op, result) = inner.dispatch(parts, body, client, &mut facts).await;
            inner.metrics.inflight.dec();
            let (mut resp, error) = match result {
                Ok(r) => (r, None),
                Err(e) => (inner.error_response(&e, &rid, is_head), Some(e.code)),
            };
            if let (Some(origin), Some(bucket)) = (origin, &facts.bucket)
                && op != Operation::CorsPreflight
            {
                inner.add_cors_headers(bucket, &origin, &method, resp.headers_mut());
            }
            if let Some(audit) = &inner.audit {
                audit.record(&AuditRecord {
                    time: crate::audit::rfc3339_millis(SystemTime::now()),
                    request_id: &rid,
                    remote: client.ip,
                    tls: client.secure,
                    auth: facts.caller.auth(),
                    access_key: facts.caller.access_key().map(crate::audit::capped),
                    operation: op.name(),
                    bucket: facts.bucket.as_deref().map(crate::audit::capped),
                    key: facts.key.as_deref().map(crate::audit::capped),
                    version_id: facts.version_id.as_deref(),
                    status: resp.status().as_u16(),
                    error: error.map(S3ErrorCode::as_str),
                });
            }
            tracing::debug!(op = op.name(), status = resp.status().as_u16(), "request");
            (op, resp)
        }
        .instrument(span)
        .await;
        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.inner.host_id) {
            headers.insert("x-amz-id-2", v);
        }
        headers.insert("server", HeaderValue::from_static("Cairn"));
        if close_after {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.inner
            .metrics
            .observe(op.name(), resp.status(), started.elapsed());
        resp
    }
}

/// An HTTP/1.1 request with `Expect: 100-continue` but no body. No `100
/// Continue` is ever sent for it (there is nothing to wait for), and
/// botocore (boto3, the aws CLI) remembers the final response of such a
/// request as the "early response" of its connection: the next request with
/// `Expect` on that connection is parsed against the stale status line and
/// stalls until the read timeout (boto/botocore#3755). Closing the
/// connection after such a request costs one reconnect and resets that state.
fn expects_continue_without_body<B>(req: &Request<B>) -> bool {
    if req.version() != http::Version::HTTP_11 {
        return false;
    }
    let h = req.headers();
    let expects = h
        .get_all(http::header::EXPECT)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects || h.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    match h.get(http::header::CONTENT_LENGTH) {
        None => true,
        Some(v) => v.as_bytes().iter().all(|b| *b == b'0'),
    }
}

impl ServiceInner {
    async fn dispatch(
        self: &Arc<Self>,
        parts: http::request::Parts,
        body: Incoming,
        client: ClientFacts,
        facts: &mut RequestFacts,
    ) -> (Operation, S3Result<Response<RespBody>>) {
        let host = match signed_host(&parts) {
            Ok(h) => h,
            Err(e) => return (Operation::MethodNotAllowed, Err(e)),
        };
        let virtual_host = virtual_host_bucket(host, self.config.domain.as_deref());
        let addressing = if virtual_host.is_some() {
            crate::handlers::post_object::Addressing::VirtualHost
        } else {
            crate::handlers::post_object::Addressing::Path
        };
        let addressed = match virtual_host {
            Some(bucket) => virtual_host_key(parts.uri.path()).map(|key| (Some(bucket), key)),
            None => split_path(parts.uri.path()),
        };
        let (bucket, key) = match addressed {
            Ok(bk) => bk,
            Err(()) => {
                return (
                    Operation::MethodNotAllowed,
                    Err(S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        "The request path is not valid UTF-8.",
                    )),
                );
            }
        };
        if header_section_bytes(&parts) > self.config.max_header_bytes {
            // hyper's own limit is the larger read buffer (see
            // `HTTP_READ_BUFFER_BYTES`); this one answers in S3's terms.
            return (
                Operation::MethodNotAllowed,
                Err(S3Error::new(S3ErrorCode::RequestHeaderSectionTooLarge)),
            );
        }
        facts.bucket.clone_from(&bucket);
        facts.key.clone_from(&key);
        let query = Query::parse(parts.uri.query());
        let op = route(
            &parts.method,
            bucket.as_deref(),
            key.as_deref(),
            &query,
            parts.headers.contains_key("x-amz-copy-source"),
        );
        if op == Operation::CorsPreflight {
            // Browsers never sign a preflight: it is answered from the
            // bucket's rules alone, before any authentication.
            let result = self.preflight(bucket.as_deref(), key.is_some(), &parts.headers);
            return (op, result.map_err(|e| with_resource(e, &bucket, &key)));
        }
        if op == Operation::PostObject
            && let Some(bucket_name) = bucket.clone()
        {
            // A form authenticates itself: its signed policy (or nothing,
            // for an anonymous upload) is in the body, not the head.
            let mut post = crate::handlers::post_object::PostFacts::default();
            let result = crate::handlers::post_object::post_object(
                self,
                parts,
                body,
                client,
                bucket_name,
                addressing,
                &mut post,
            )
            .await;
            facts.key.clone_from(&post.key);
            facts.caller = match &post.caller {
                None => AuditCaller::None,
                Some(Caller::Anonymous) => AuditCaller::Anonymous,
                Some(Caller::Key { id, .. }) => AuditCaller::Key(id.clone()),
            };
            if let Err(e) = &result
                && matches!(
                    e.code,
                    S3ErrorCode::SignatureDoesNotMatch | S3ErrorCode::InvalidAccessKeyId
                )
            {
                self.metrics.auth_failed(e.code.as_str());
            }
            return (op, result.map_err(|e| with_resource(e, &bucket, &post.key)));
        }
        let (auth, caller) = match self.authenticate(&parts) {
            Ok(a) => a,
            Err(e) => {
                self.metrics.auth_failed(e.code.as_str());
                facts.caller = AuditCaller::Failed(claimed_access_key(&parts));
                return (op, Err(with_resource(e, &bucket, &key)));
            }
        };
        facts.caller = match &caller {
            Caller::Anonymous => AuditCaller::Anonymous,
            Caller::Key { id, .. } => AuditCaller::Key(id.clone()),
        };
        facts.version_id = query
            .get("versionId")
            .map(|v| crate::audit::capped(v).to_owned());
        // A cluster node first catches up with what other nodes committed,
        // so every request sees every write acknowledged before it began —
        // the bucket's policy included, so before authorization. (After
        // authentication: a forged signature cannot make it ask the leader.)
        if let Err(e) = self.engine.read_barrier().await {
            return (op, Err(with_resource(e.into(), &bucket, &key)));
        }
        let version = match crate::headers::parse_version_id(query.get("versionId"), "versionId") {
            Ok(v) => v,
            Err(e) => return (op, Err(with_resource(e, &bucket, &key))),
        };
        let asked = AccessRequest {
            op,
            action: op.s3_action(version.is_some()).unwrap_or(""),
            bucket: bucket.as_deref(),
            key: key.as_deref(),
            version: version.as_ref(),
            caller: &caller,
            client,
            parts: &parts,
            query: &query,
            auth_type: crate::access::AuthType::of(auth.presigned),
        };
        if let Err(e) = authorize(self, &asked) {
            return (
                op,
                Err(with_resource(
                    explain_refusal(e, op, &caller),
                    &bucket,
                    &key,
                )),
            );
        }
        // What S3 defines and Cairn does not do is refused here, before any
        // body byte is read or anything stored (never a wrong success).
        if let Err(e) = crate::request_rules::check_request(op, &parts.headers, &query) {
            return (op, Err(with_resource(e, &bucket, &key)));
        }
        let ctx = RequestCtx {
            bucket: bucket.clone(),
            key: key.clone(),
            query,
            parts,
            auth,
            caller,
            client,
        };
        // S3: a caller who may read an object but not list its bucket gets
        // 403, not 404, for a key that does not exist (no probing for names).
        let hide_missing = matches!(
            op,
            Operation::GetObject | Operation::HeadObject | Operation::GetObjectAttributes
        ) && !ctx.caller.is_admin()
            && authorize(
                self,
                &AccessRequest {
                    op: Operation::ListObjectsV2,
                    action: "s3:ListBucket",
                    bucket: ctx.bucket.as_deref(),
                    key: None,
                    version: None,
                    caller: &ctx.caller,
                    client: ctx.client,
                    parts: &ctx.parts,
                    query: &ctx.query,
                    auth_type: crate::access::AuthType::of(ctx.auth.presigned),
                },
            )
            .is_err();
        let mut result = crate::handlers::handle(self, op, ctx, body).await;
        if hide_missing
            && let Err(e) = &result
            && matches!(e.code, S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchVersion)
        {
            result = Err(S3Error::new(S3ErrorCode::AccessDenied));
        }
        if let Ok(resp) = &mut result
            && stores_or_returns_object_data(op)
            // An SSE-C object reports its customer key's headers instead,
            // an SSE-KMS one `aws:kms` (set by its handler).
            && !resp
                .headers()
                .contains_key("x-amz-server-side-encryption-customer-algorithm")
            && !resp.headers().contains_key("x-amz-server-side-encryption")
        {
            // Every chunk is sealed with AES-256-GCM under server-managed
            // keys: SSE-S3, as S3 reports it for its default encryption.
            resp.headers_mut().insert(
                "x-amz-server-side-encryption",
                HeaderValue::from_static("AES256"),
            );
        }
        (op, result.map_err(|e| with_resource(e, &bucket, &key)))
    }

    fn error_response(&self, e: &S3Error, request_id: &str, is_head: bool) -> Response<RespBody> {
        let status = e.code.status();
        if status.is_server_error() {
            tracing::warn!(code = e.code.as_str(), "request failed");
        }
        let body = if is_head || status == StatusCode::NOT_MODIFIED {
            empty()
        } else {
            full(to_xml(&ErrorDocument {
                code: e.code.as_str().into(),
                message: (&e.message).into(),
                fields: e
                    .fields
                    .iter()
                    .map(|(name, value)| (*name, value.into()))
                    .collect(),
                request_id: request_id.into(),
                host_id: (&self.host_id).into(),
            }))
        };
        let mut builder = Response::builder().status(status);
        if !is_head && status != StatusCode::NOT_MODIFIED {
            builder = builder.header("content-type", "application/xml");
        }
        for (name, value) in &e.headers {
            builder = builder.header(*name, value.as_str());
        }
        builder.body(body).unwrap_or_else(|_| {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// The host a request addresses, taken from exactly what SigV4 signs: the
/// `Host` header (HTTP/1.1), or the URI's authority when there is no `Host`
/// (HTTP/2's `:authority`, see `canonical_request`). A request that names
/// two hosts, an absolute-form target whose authority is not its `Host`, is
/// refused: routing on one while the signature covers the other would let a
/// request signed for one bucket act on another.
fn signed_host(parts: &http::request::Parts) -> S3Result<&str> {
    let mut hosts = parts.headers.get_all(http::header::HOST).iter();
    let header = match (hosts.next(), hosts.next()) {
        (Some(h), None) => Some(h.to_str().map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The Host header is not valid.",
            )
        })?),
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The request has more than one Host header.",
            ));
        }
    };
    match (header, parts.uri.authority()) {
        (Some(h), Some(a)) if !h.trim().eq_ignore_ascii_case(a.as_str()) => {
            Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The request target's host does not match the Host header.",
            ))
        }
        (Some(h), _) => Ok(h.trim()),
        (None, Some(a)) => Ok(a.as_str()),
        (None, None) => Ok(""),
    }
}

/// The operations on whose responses S3 reports the object's server-side
/// encryption (`x-amz-server-side-encryption`).
fn stores_or_returns_object_data(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        PutObject
            | CopyObject
            | GetObject
            | HeadObject
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload
    )
}

/// Says why a bucket-scoped key cannot create or delete a bucket (it is
/// authenticated, only not an admin); other refusals stay S3's bare
/// `AccessDenied`.
fn explain_refusal(e: S3Error, op: Operation, caller: &Caller) -> S3Error {
    let creating = match op {
        Operation::CreateBucket => "Creating",
        Operation::DeleteBucket => "Deleting",
        _ => return e,
    };
    if e.code != S3ErrorCode::AccessDenied || !matches!(caller, Caller::Key { .. }) {
        return e;
    }
    S3Error::with_message(
        S3ErrorCode::AccessDenied,
        format!(
            "{creating} a bucket needs an admin key; this access key has grants on buckets only. Create the bucket with an admin key (or make one: cairn admin key create NAME --admin)."
        ),
    )
}

impl ServiceInner {
    /// The answer to a CORS preflight for `bucket` (the rules of a bucket
    /// that does not exist are none: the same refusal, no probing).
    fn preflight(
        &self,
        bucket: Option<&str>,
        addresses_object: bool,
        headers: &http::HeaderMap,
    ) -> S3Result<Response<RespBody>> {
        let access = match bucket {
            Some(b) => self.access_cache.get(&self.engine, b)?,
            None => None,
        };
        let rules = access.as_ref().and_then(|a| a.cors.as_deref());
        crate::cors::preflight(
            rules,
            headers,
            if addresses_object { "OBJECT" } else { "BUCKET" },
        )
    }

    /// Adds the bucket's CORS headers to an actual response (nothing when
    /// the bucket has no rules, does not exist or cannot be read now).
    fn add_cors_headers(
        &self,
        bucket: &str,
        origin: &HeaderValue,
        method: &Method,
        headers: &mut http::HeaderMap,
    ) {
        if let Ok(Some(access)) = self.access_cache.get(&self.engine, bucket)
            && let Some(rules) = &access.cors
        {
            rules.decorate(origin, method, headers);
        }
    }

    /// Who signed the request (and what it declared about its body), or
    /// `Anonymous` for a request without any signature; a signature that
    /// does not verify is an error, never anonymous.
    fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> S3Result<(crate::auth::VerifiedRequest, Caller)> {
        match verify_request(parts, self.keys.as_ref(), &self.verify, SystemTime::now()) {
            Ok(auth) => {
                let Some((access, name)) = self.keys.identity(&auth.access_key) else {
                    // Deleted between verification and now.
                    return Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId));
                };
                let caller = Caller::Key {
                    id: auth.access_key.clone(),
                    name,
                    access,
                };
                Ok((auth, caller))
            }
            Err(crate::auth::AuthError::MissingAuthentication) => {
                let auth = crate::auth::anonymous_request(parts)?;
                Ok((auth, Caller::Anonymous))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What the audit log and the CORS headers need to know of a request once
/// it is answered; filled in by `dispatch` as it learns them.
#[derive(Debug, Default)]
struct RequestFacts {
    bucket: Option<String>,
    key: Option<String>,
    version_id: Option<String>,
    caller: AuditCaller,
}

/// The access key id a request's signature names (`Credential=<id>/…` in
/// `Authorization`, or `X-Amz-Credential`), for the audit log of a failed
/// authentication. Not verified: whatever the client sent, capped.
fn claimed_access_key(parts: &http::request::Parts) -> Option<String> {
    let from_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("Credential=").map(|(_, rest)| rest.to_owned()));
    let credential = from_header.or_else(|| {
        Query::parse(parts.uri.query())
            .get("X-Amz-Credential")
            .map(str::to_owned)
    })?;
    let id = credential.split(['/', ',', ' ']).next().unwrap_or_default();
    (!id.is_empty()).then(|| crate::audit::capped(id).chars().take(128).collect())
}

/// Adds `BucketName` / `Key` / `Resource` to errors that name them in S3.
fn with_resource(mut e: S3Error, bucket: &Option<String>, key: &Option<String>) -> S3Error {
    use S3ErrorCode as C;
    let has = |e: &S3Error, n: &str| e.fields.iter().any(|(f, _)| *f == n);
    match e.code {
        C::NoSuchBucket
        | C::BucketNotEmpty
        | C::BucketAlreadyOwnedByYou
        | C::InvalidBucketName
        | C::NoSuchTagSet
        | C::NoSuchCORSConfiguration
        | C::NoSuchLifecycleConfiguration
        | C::ObjectLockConfigurationNotFoundError
        | C::NoSuchBucketPolicy
        | C::NoSuchWebsiteConfiguration
        | C::ReplicationConfigurationNotFoundError
        | C::NoSuchConfiguration
        | C::NoSuchPublicAccessBlockConfiguration => {
            if let Some(b) = bucket
                && !has(&e, "BucketName")
            {
                e.fields.push(("BucketName", b.clone()));
            }
        }
        C::NoSuchKey | C::NoSuchVersion => {
            if let Some(k) = key
                && !has(&e, "Key")
            {
                e.fields.push(("Key", k.clone()));
            }
        }
        _ => {}
    }
    let mut resource = String::from("/");
    if let Some(b) = bucket {
        resource.push_str(b);
        if let Some(k) = key {
            resource.push('/');
            resource.push_str(k);
        }
    }
    if !has(&e, "Resource") {
        e.fields.push(("Resource", resource));
    }
    e
}

/// Serves S3 on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (connections are closed after their current request) and
/// returns once every connection has ended.
///
/// `connections` holds the listener's limits (listener_limits.rs): at most
/// so many connections in all and per client address, the longest idle one
/// closed to make room when full, a refused one answered `503 SlowDown` (on
/// plain HTTP) and closed, failed accepts retried with an exponential pause.
///
/// With `tls`, every connection is a TLS handshake first (10 s at most); a
/// failed handshake just closes that connection.
pub async fn serve(
    listener: TcpListener,
    service: S3Service,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<crate::listener_limits::Connections>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let max_buf = service
        .inner
        .config
        .max_header_bytes
        .max(HTTP_READ_BUFFER_BYTES);
    let refusal = tls.is_none().then_some(crate::listener_limits::S3_REFUSAL);
    let mut listener = crate::listener_limits::LimitedListener::new(listener, connections, refusal);
    loop {
        let (stream, peer, slot) = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        // Reap finished connections so the set stays as small as the live ones.
        while tasks.try_join_next().is_some() {}
        let client = ClientFacts {
            ip: Some(peer.ip().to_canonical()),
            secure: tls.is_some(),
        };
        tasks.spawn(async move {
            match tls {
                None => {
                    serve_connection(TokioIo::new(stream), svc, client, max_buf, slot, stop).await;
                }
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        h = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        ) => h,
                        // Chosen to make room mid-handshake.
                        () = slot.must_close() => return,
                    };
                    match handshake {
                        Ok(Ok(tls_stream)) => {
                            serve_connection(
                                TokioIo::new(tls_stream),
                                svc,
                                client,
                                max_buf,
                                slot,
                                stop,
                            )
                            .await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// The most hyper buffers per connection: its read buffer grows up to this
/// while reads fill it, so a large body arrives in reads of up to 256 KiB
/// instead of 64 KiB: fewer `recv` calls and ACKs. Measured on tmpfs, PUT
/// 16 MiB c=4, alternating fresh servers: 64 KiB ~630 MiB/s, 256 KiB ~650,
/// 512 KiB ~655–668, 1 MiB ~663; but 512 KiB buffers raised the peak RSS of
/// the aws CLI's 1 GiB upload (10 parts at once) from ~117 to 122–148 MiB,
/// 256 KiB did not. It is also hyper's header limit, so `max_header_bytes`
/// is checked again in `dispatch`.
const HTTP_READ_BUFFER_BYTES: usize = 256 << 10;

/// The size of a request's header section as it came on the wire, near
/// enough: request line, each `name: value` line, the blank line.
fn header_section_bytes(parts: &http::request::Parts) -> usize {
    let target = parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + parts.uri.authority().map_or(0, |a| a.as_str().len());
    let request_line = parts.method.as_str().len() + target + 12;
    parts
        .headers
        .iter()
        .fold(request_line + 2, |n, (name, value)| {
            n + name.as_str().len() + value.len() + 4
        })
}

/// One HTTP/1.1 connection (plain or TLS) until it ends, `stop` fires
/// (then graceful: the request in progress completes) or its slot says to
/// close it (no request in progress: idle too long, or chosen to make room).
async fn serve_connection<I>(
    io: I,
    svc: S3Service,
    client: ClientFacts,
    max_buf: usize,
    slot: crate::listener_limits::ConnectionSlot,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let slot = Arc::new(slot);
    let limits = *slot.limits();
    let counted = slot.clone();
    let hyper_svc = hyper::service::service_fn(move |req| {
        let svc = svc.clone();
        // Counted as in progress until the response body has been sent.
        let guard = counted.request_started();
        async move {
            let resp = svc.handle(req, client).await;
            Ok::<_, Infallible>(
                resp.map(|body| crate::listener_limits::TrackedBody::new(body, guard)),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(max_buf)
        .keep_alive(true)
        .half_close(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(io, hyper_svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with error");
            }
            return;
        }
        _ = stop.changed() => {}
        () = slot.must_close() => {}
    }
    // Idle (or reading a request head): closes now. A request that started
    // in the instant since the slot was judged idle is finished first.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
