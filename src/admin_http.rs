//! The admin listener: Prometheus `/metrics`, `/health/live`,
//! `/health/ready`, and maintenance (JSON replies):
//!
//! * `GET /admin/status` — drives, space, pipeline savings, version;
//! * `GET /admin/scrub` — the scrubber's state;
//! * `POST /admin/scrub[?bytes_per_sec=N]` — start a scrub (202; 409 if one
//!   runs). `cairn admin scrub` and `cairn admin heal` drive these;
//! * `POST /admin/gc` — run one garbage-collection pass now (a report);
//! * `GET /admin/keys` — every access key (never a secret);
//! * `POST /admin/keys?name=N[&admin=true][&allow=BUCKET:rw]…` — create a
//!   key; the reply holds its secret, the only time it is shown;
//! * `DELETE /admin/keys/<id>` — delete a key (not the last admin key);
//! * `PUT /admin/keys/<id>/grants/<bucket>?read=true&write=false` — set a
//!   key's grant on a bucket; `DELETE` of the same path removes it;
//! * `GET /admin/buckets/<name>` — a bucket's objects, bytes, uploads in
//!   progress and the keys that may use it.
//!
//! `/health/ready` answers 200 while writes can reach their quorum, even
//! with a drive missing, replaced (healing) or refused: the body then says
//! `ready, degraded:` and names each such drive (a load balancer should keep
//! a degraded node; alert on `cairn_drive_state` instead). 503 when too few
//! drives are usable or the metadata store cannot be read.
//! `/metrics` adds `cairn_drive_state{drive,state}` (1 for the drive's
//! current state, 0 for the others) for this node's own drives.
//!
//! `/metrics` and `/health/*` are unauthenticated (for Prometheus and load
//! balancers): bind the listener to a private address (default 127.0.0.1).
//! Every `/admin/*` request must be SigV4-signed with an **admin** access
//! key (service `s3`, the configured region) in its headers; other keys and
//! presigned URLs get 403.
//! `cairn admin` signs with `CAIRN_ACCESS_KEY`/`CAIRN_SECRET_KEY` (or the
//! `AWS_*` equivalents).

use std::convert::Infallible;

use bytes::Bytes;
use cairn_s3_api::auth::{VerifyConfig, verify_request};
use cairn_s3_api::listener_limits::{
    ConnectionSlot, Connections, LimitedListener, PLAIN_REFUSAL, TrackedBody,
};
use cairn_s3_api::{KeyInfo, KeyRing};
use cairn_storage_engine::{
    AccessKeyRecord, BucketGrant, DriveState, Engine, EngineError, EngineStatus, GcOptions,
    GcReport, RebalanceOptions, RebalanceStatus, ScrubOptions, ScrubStatus,
};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;

pub fn register_process_metrics(registry: &Registry) -> Result<(), String> {
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .map_err(|e| format!("registering process metrics: {e}"))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = text(status, body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn scrub_status_json(s: &ScrubStatus) -> String {
    let r = &s.report;
    let v = serde_json::json!({
        "running": s.running,
        "started_ms": s.started_ms,
        "finished_ms": s.finished_ms,
        "chunks_total_estimate": s.chunks_total_estimate,
        "chunks_checked": r.chunks_checked,
        "shards_verified": r.shards_verified,
        "shards_missing": r.shards_missing,
        "shards_corrupt": r.shards_corrupt,
        "shards_repaired": r.shards_repaired,
        "chunks_unrecoverable": r.chunks_unrecoverable,
        "bytes_read": r.bytes_read,
    });
    format!("{v}\n")
}

fn rebalance_status_json(s: &RebalanceStatus) -> String {
    let r = &s.report;
    let v = serde_json::json!({
        "running": s.running,
        "started_ms": s.started_ms,
        "finished_ms": s.finished_ms,
        "chunks_total_estimate": s.chunks_total_estimate,
        "chunks_checked": r.chunks_checked,
        "chunks_misplaced": r.chunks_misplaced,
        "shards_moved": r.shards_moved,
        "shards_rebuilt": r.shards_rebuilt,
        "bytes_moved": r.bytes_moved,
        "shards_skipped": r.shards_skipped,
    });
    format!("{v}\n")
}

fn status_json(s: &EngineStatus) -> String {
    let drives: Vec<serde_json::Value> = s
        .drives
        .iter()
        .map(|d| {
            let (healing, detail) = match &d.state {
                DriveState::Replaced { healing } => (*healing, String::new()),
                DriveState::Foreign { reason } => (false, reason.clone()),
                _ => (false, String::new()),
            };
            serde_json::json!({
                "index": d.index,
                "path": d.path.display().to_string(),
                "state": d.state.label(),
                "needs_heal": matches!(d.state, DriveState::Replaced { .. }),
                "healing": healing,
                "state_detail": detail,
                "present": d.present,
                "faulty": d.faulty,
                "segment_bytes": d.segment_bytes,
                "fs_free_bytes": d.fs_free_bytes,
                "fs_size_bytes": d.fs_size_bytes,
            })
        })
        .collect();
    let v = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "data_shards": s.data_shards,
        "parity_shards": s.parity_shards,
        "objects": s.objects,
        "logical_bytes": s.logical_bytes,
        "stored_bytes": s.stored_bytes,
        "raw_bytes": s.raw_bytes,
        "metadata_sst_bytes": s.metadata_sst_bytes,
        "heal_backlog_bytes": s.heal_backlog_bytes,
        "scrub_running": s.scrub.running,
        "scrub_chunks_checked": s.scrub.report.chunks_checked,
        "scrub_chunks_total_estimate": s.scrub.chunks_total_estimate,
        "drives": drives,
    });
    format!("{v}\n")
}

/// `cairn_drive_state{drive,state}`: 1 for each local drive's current
/// state, 0 for its other states (so `== 1` selects, and a state that ends
/// drops to 0 rather than vanishing). Built per scrape from the status.
fn drive_state_families(s: &EngineStatus) -> Vec<prometheus::proto::MetricFamily> {
    let Ok(gauge) = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "cairn_drive_state",
            "1 for the drive's current state (ok, missing, replaced, foreign, faulty), 0 for the others",
        ),
        &["drive", "state"],
    ) else {
        return Vec::new();
    };
    for d in s.drives.iter().filter(|d| d.local) {
        let drive = d.index.to_string();
        for label in DriveState::LABELS {
            gauge
                .with_label_values(&[drive.as_str(), label])
                .set(i64::from(d.state.label() == label));
        }
    }
    prometheus::core::Collector::collect(&gauge)
}

fn gc_report_json(r: &GcReport) -> String {
    let v = serde_json::json!({
        "uploads_expired": r.uploads_expired,
        "chunks_deleted": r.chunks_deleted,
        "chunks_live": r.chunks_live,
        "segments_compacted": r.segments_compacted,
        "shards_moved": r.shards_moved,
        "bytes_reclaimed": r.bytes_reclaimed,
    });
    format!("{v}\n")
}

/// The decoded value of query parameter `name` (the first one).
fn query_param(req: &Request<hyper::body::Incoming>, name: &str) -> Option<String> {
    query_params(req, name).into_iter().next()
}

/// Every decoded value of query parameter `name`, in order.
fn query_params(req: &Request<hyper::body::Incoming>, name: &str) -> Vec<String> {
    // In a query string `+` also means a space.
    let decode = |s: &str| decode_path(&s.replace('+', " "));
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k) == name).then(|| decode(v))
        })
        .collect()
}

fn query_u64(req: &Request<hyper::body::Incoming>, name: &str) -> Option<u64> {
    query_param(req, name)?.parse().ok()
}

fn query_bool(req: &Request<hyper::body::Incoming>, name: &str) -> Result<bool, String> {
    match query_param(req, name).as_deref() {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
    }
}

/// `BUCKET:r`, `BUCKET:w`, `BUCKET:rw` (also `read`, `write`, `read,write`).
fn parse_grant(spec: &str) -> Result<BucketGrant, String> {
    let (bucket, rights) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("grant {spec:?} must look like BUCKET:rw, BUCKET:r or BUCKET:w"))?;
    let (mut read, mut write) = (false, false);
    for part in rights.split(',') {
        match part {
            "r" | "read" => read = true,
            "w" | "write" => write = true,
            "rw" | "wr" => (read, write) = (true, true),
            other => {
                return Err(format!(
                    "unknown right {other:?} in grant {spec:?} (use r, w or rw)"
                ));
            }
        }
    }
    if bucket.is_empty() {
        return Err(format!("grant {spec:?} must name a bucket"));
    }
    Ok(BucketGrant {
        bucket: bucket.to_owned(),
        read,
        write,
    })
}

fn grants_json(grants: &[BucketGrant]) -> serde_json::Value {
    grants
        .iter()
        .map(|g| serde_json::json!({"bucket": g.bucket, "read": g.read, "write": g.write}))
        .collect()
}

fn key_json(k: &KeyInfo) -> serde_json::Value {
    serde_json::json!({
        "id": k.id,
        "name": k.name,
        "created_ms": k.created_ms,
        "admin": k.access.admin,
        "fixed": k.fixed,
        "grants": grants_json(&k.access.grants),
    })
}

fn error_json(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(
        status,
        format!("{}\n", serde_json::json!({"error": message.to_string()})),
    )
}

/// An engine error of a key or bucket operation as an admin API reply.
fn engine_error(e: &EngineError) -> Response<Full<Bytes>> {
    match e {
        EngineError::NoSuchAccessKey => error_json(StatusCode::NOT_FOUND, "no such access key"),
        EngineError::NoSuchBucket => error_json(StatusCode::NOT_FOUND, "no such bucket"),
        EngineError::InvalidAccessKey(reason) => error_json(StatusCode::CONFLICT, reason),
        other => {
            tracing::error!(error = %other, "admin request failed");
            error_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (see the server log)",
            )
        }
    }
}

async fn create_key(req: &Request<hyper::body::Incoming>, keys: &KeyRing) -> Response<Full<Bytes>> {
    let admin = match query_bool(req, "admin") {
        Ok(a) => a,
        Err(e) => return error_json(StatusCode::BAD_REQUEST, e),
    };
    let mut grants = Vec::new();
    for spec in query_params(req, "allow") {
        match parse_grant(&spec) {
            Ok(g) if g.read || g.write => grants.push(g),
            Ok(_) => {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    format!("grant {spec:?} gives no right"),
                );
            }
            Err(e) => return error_json(StatusCode::BAD_REQUEST, e),
        }
    }
    let name = query_param(req, "name").unwrap_or_default();
    if name.len() > 256 {
        return error_json(StatusCode::BAD_REQUEST, "name is longer than 256 bytes");
    }
    let record = AccessKeyRecord {
        name,
        created_ms: cairn_storage_engine::now_ms(),
        admin,
        grants,
    };
    match keys.create(record).await {
        Ok(k) => {
            let mut v = key_json(&KeyInfo::from(&k));
            v["secret"] = serde_json::Value::String(k.secret);
            tracing::info!(key = %k.id, admin = k.record.admin, "access key created");
            json(StatusCode::CREATED, format!("{v}\n"))
        }
        Err(e) => engine_error(&e),
    }
}

/// A percent-encoded path segment (or query value), decoded.
fn decode_path(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `/admin/keys/<id>` and `/admin/keys/<id>/grants/<bucket>`; `rest` is
/// the path after `/admin/keys/`.
async fn key_request(
    req: &Request<hyper::body::Incoming>,
    keys: &KeyRing,
    rest: &str,
) -> Option<Response<Full<Bytes>>> {
    let (id, grant_bucket) = match rest.split_once("/grants/") {
        Some((id, bucket)) => (decode_path(id), Some(decode_path(bucket))),
        None => (decode_path(rest), None),
    };
    let resp = match (req.method(), grant_bucket) {
        (&Method::DELETE, None) => match keys.delete(&id).await {
            Ok(()) => {
                tracing::info!(key = %id, "access key deleted");
                json(
                    StatusCode::OK,
                    format!("{}\n", serde_json::json!({"deleted": id})),
                )
            }
            Err(e) => engine_error(&e),
        },
        (&Method::PUT | &Method::DELETE, Some(bucket)) => {
            let grant = if req.method() == Method::PUT {
                match (query_bool(req, "read"), query_bool(req, "write")) {
                    (Ok(read), Ok(write)) => BucketGrant {
                        bucket,
                        read,
                        write,
                    },
                    (Err(e), _) | (_, Err(e)) => {
                        return Some(error_json(StatusCode::BAD_REQUEST, e));
                    }
                }
            } else {
                BucketGrant {
                    bucket,
                    read: false,
                    write: false,
                }
            };
            match keys.set_grant(&id, grant).await {
                Ok(k) => json(StatusCode::OK, format!("{}\n", key_json(&k))),
                Err(e) => engine_error(&e),
            }
        }
        _ => return None,
    };
    Some(resp)
}

/// `GET /admin/buckets/<name>`.
async fn bucket_info(engine: &Engine, keys: &KeyRing, name: &str) -> Response<Full<Bytes>> {
    let name = decode_path(name);
    let info = match engine.bucket_info(&name) {
        Ok(i) => i,
        Err(e) => return engine_error(&e),
    };
    let usage = match engine.bucket_usage(&name).await {
        Ok(u) => u,
        Err(e) => return engine_error(&e),
    };
    let users: Vec<serde_json::Value> = keys
        .list()
        .iter()
        .filter(|k| k.access.can_see(&name))
        .map(|k| {
            serde_json::json!({
                "id": k.id,
                "name": k.name,
                "admin": k.access.admin,
                "read": k.access.can_read(&name),
                "write": k.access.can_write(&name),
            })
        })
        .collect();
    let v = serde_json::json!({
        "name": info.name,
        "created_ms": info.created_ms,
        "objects": usage.objects,
        "logical_bytes": usage.logical_bytes,
        "uploads_in_progress": usage.uploads_in_progress,
        "keys": users,
    });
    json(StatusCode::OK, format!("{v}\n"))
}

/// Who may call `/admin/*`: admin access keys, signing for the region.
#[derive(Clone)]
pub struct AdminAuth {
    pub keys: std::sync::Arc<KeyRing>,
    pub verify: std::sync::Arc<VerifyConfig>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").finish_non_exhaustive()
    }
}

/// `None` if the request carries a valid SigV4 signature of an admin key,
/// else the 403.
fn authorize(
    req: &Request<hyper::body::Incoming>,
    auth: &AdminAuth,
) -> Option<Response<Full<Bytes>>> {
    let built = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(());
    let Ok(built) = built else {
        return Some(error_json(StatusCode::FORBIDDEN, "malformed admin request"));
    };
    let mut parts = built.into_parts().0;
    parts.headers = req.headers().clone();
    match verify_request(
        &parts,
        auth.keys.as_ref(),
        &auth.verify,
        std::time::SystemTime::now(),
    ) {
        // A presigned URL could be replayed until it expires (up to 7 days):
        // the admin API takes header signatures only.
        Ok(verified) if verified.presigned => Some(error_json(
            StatusCode::FORBIDDEN,
            "the admin API does not accept presigned URLs; sign the request headers",
        )),
        Ok(verified) => match auth.keys.access(&verified.access_key) {
            Some(a) if a.admin => None,
            _ => Some(error_json(
                StatusCode::FORBIDDEN,
                format!(
                    "access key {} is not an admin key; the admin API needs one (cairn admin key create NAME --admin)",
                    verified.access_key
                ),
            )),
        },
        Err(e) => Some(error_json(
            StatusCode::FORBIDDEN,
            format!("admin requests must be signed with an admin access key of this server: {e}"),
        )),
    }
}

/// Runs a background job (scrub, rebalance) and waits a moment until it
/// has marked itself started, so the reply already shows it running.
async fn start_job(
    job: impl std::future::Future<Output = Result<(), EngineError>> + Send + 'static,
    what: &'static str,
    started: impl Fn() -> bool,
) {
    tokio::spawn(async move {
        if let Err(err) = job.await {
            tracing::error!(error = %err, "{what} failed");
        }
    });
    for _ in 0..50 {
        if started() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn handle_admin(
    req: &Request<hyper::body::Incoming>,
    engine: &Engine,
    gc: GcOptions,
    auth: &AdminAuth,
    cluster: Option<&cairn_cluster::RunningNode>,
) -> Option<Response<Full<Bytes>>> {
    if !req.uri().path().starts_with("/admin/") {
        return None;
    }
    if let Some(denied) = authorize(req, auth) {
        return Some(denied);
    }
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/admin/status") => json(StatusCode::OK, status_json(&engine.status())),
        (&Method::GET, "/admin/cluster") => match cluster {
            Some(node) => match serde_json::to_string(&node.status()) {
                Ok(body) => json(StatusCode::OK, format!("{body}\n")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            None => error_json(
                StatusCode::NOT_FOUND,
                "this server is a single node, not part of a cluster (see docs/cluster.md)",
            ),
        },
        (&Method::GET, "/admin/scrub") => {
            json(StatusCode::OK, scrub_status_json(&engine.scrub_status()))
        }
        (&Method::POST, "/admin/scrub") => {
            let status = || scrub_status_json(&engine.scrub_status());
            if engine.scrub_status().running {
                return Some(json(StatusCode::CONFLICT, status()));
            }
            let opts = ScrubOptions {
                bytes_per_sec: query_u64(req, "bytes_per_sec").filter(|r| *r > 0),
            };
            let e = engine.clone();
            let before = engine.scrub_status().started_ms;
            start_job(
                async move { e.scrub(opts).await.map(|_| ()) },
                "scrub",
                || engine.scrub_status().started_ms != before,
            )
            .await;
            json(StatusCode::ACCEPTED, status())
        }
        (&Method::GET, "/admin/rebalance") => json(
            StatusCode::OK,
            rebalance_status_json(&engine.rebalance_status()),
        ),
        (&Method::POST, "/admin/rebalance") => {
            let status = || rebalance_status_json(&engine.rebalance_status());
            if engine.rebalance_status().running {
                return Some(json(StatusCode::CONFLICT, status()));
            }
            let opts = RebalanceOptions {
                bytes_per_sec: query_u64(req, "bytes_per_sec").filter(|r| *r > 0),
            };
            let e = engine.clone();
            let before = engine.rebalance_status().started_ms;
            start_job(
                async move { e.rebalance(opts).await.map(|_| ()) },
                "rebalance",
                || engine.rebalance_status().started_ms != before,
            )
            .await;
            json(StatusCode::ACCEPTED, status())
        }
        (&Method::GET, "/admin/keys") => {
            let list: Vec<serde_json::Value> = auth.keys.list().iter().map(key_json).collect();
            json(
                StatusCode::OK,
                format!("{}\n", serde_json::Value::Array(list)),
            )
        }
        (&Method::POST, "/admin/keys") => create_key(req, &auth.keys).await,
        (_, path) if path.starts_with("/admin/keys/") => {
            key_request(req, &auth.keys, &path["/admin/keys/".len()..]).await?
        }
        (&Method::GET, path) if path.starts_with("/admin/buckets/") => {
            bucket_info(engine, &auth.keys, &path["/admin/buckets/".len()..]).await
        }
        (&Method::POST, "/admin/gc") => match engine.collect_garbage(gc).await {
            Ok(r) => json(StatusCode::OK, gc_report_json(&r)),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("garbage collection failed: {e}\n"),
            ),
        },
        _ => return None,
    };
    Some(resp)
}

fn handle(
    req: &Request<hyper::body::Incoming>,
    engine: &Engine,
    registry: &Registry,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/metrics" => {
            // status() refreshes the gauges first.
            let status = engine.status();
            let mut families = registry.gather();
            families.extend(drive_state_families(&status));
            let mut buf = Vec::new();
            match TextEncoder::new().encode(&families, &mut buf) {
                Ok(()) => {
                    let mut r = text(StatusCode::OK, buf);
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "text/plain; version=0.0.4; charset=utf-8",
                        ),
                    );
                    r
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("encoding metrics: {e}\n"),
                ),
            }
        }
        "/health/live" => text(StatusCode::OK, "live\n"),
        "/health/ready" => match engine.readiness() {
            Ok(degraded) if degraded.is_empty() => text(StatusCode::OK, "ready\n"),
            Ok(degraded) => text(
                StatusCode::OK,
                format!("ready, degraded: {}\n", degraded.join("; ")),
            ),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found. This is Cairn's admin listener: /metrics, /health/live and \
             /health/ready need no credentials; /admin/status, /admin/scrub, /admin/gc, \
             /admin/rebalance, /admin/cluster, /admin/keys and /admin/buckets/NAME need \
             an admin key's signature (use `cairn admin`). S3 requests go to the S3 \
             listener (--listen).\n",
        ),
    }
}

/// Serves the admin endpoints on `listener` until `stop` fires. Limits as
/// on the S3 listener (listener_limits.rs, `connections`): a cap in all and
/// per client address (a refused connection reads a plain 503 and is
/// closed), the longest idle connection closed to make room, a header read
/// timeout, idle keep-alive connections closed, failed accepts retried with
/// an exponential pause and logged at most once per 10 s.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    registry: Registry,
    gc: GcOptions,
    auth: AdminAuth,
    cluster: Option<std::sync::Arc<cairn_cluster::RunningNode>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: std::sync::Arc<Connections>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let refusal = tls.is_none().then_some(PLAIN_REFUSAL);
    let mut listener = LimitedListener::new(listener, connections, refusal);
    loop {
        let (stream, _peer, slot) = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let engine = engine.clone();
        let registry = registry.clone();
        let tls = tls.clone();
        let auth = auth.clone();
        let cluster = cluster.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let slot = std::sync::Arc::new(slot);
            let counted = slot.clone();
            let svc = hyper::service::service_fn(move |req| {
                let engine = engine.clone();
                let registry = registry.clone();
                let auth = auth.clone();
                let cluster = cluster.clone();
                // In progress (never closed as idle) until the reply is sent.
                let guard = counted.request_started();
                async move {
                    let resp =
                        match handle_admin(&req, &engine, gc, &auth, cluster.as_deref()).await {
                            Some(r) => r,
                            None => handle(&req, &engine, &registry),
                        };
                    Ok::<_, Infallible>(resp.map(|body| TrackedBody::new(body, guard)))
                }
            });
            let limits = *slot.limits();
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            match tls {
                None => serve_connection(&http, TokioIo::new(stream), svc, &slot, stop).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        h = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        ) => h,
                        () = slot.must_close() => return,
                    };
                    if let Ok(Ok(s)) = handshake {
                        serve_connection(&http, TokioIo::new(s), svc, &slot, stop).await;
                    }
                }
            }
        });
    }
}

/// One admin connection until it ends, `stop` fires (graceful) or its slot
/// says to close it (no request in progress).
async fn serve_connection<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    svc: S,
    slot: &ConnectionSlot,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.changed() => {}
        () = slot.must_close() => {}
    }
    // Idle: closes now; a request in progress is answered first.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
}
