//! The admin listener: Prometheus `/metrics`, `/health/live`,
//! `/health/ready`, and maintenance (JSON replies, their shapes in
//! `admin_api.rs`):
//!
//! * `GET /admin/status` — drives, space, pipeline savings, version;
//! * `GET /admin/scrub` — the scrubber's state;
//! * `POST /admin/scrub[?bytes_per_sec=N]` — start a scrub (202; 409 if one
//!   runs). `cairn admin scrub` and `cairn admin heal` drive these;
//! * `GET /admin/rebalance`, `POST /admin/rebalance[?bytes_per_sec=N]` —
//!   the same for a rebalance (`cairn admin cluster rebalance`);
//! * `POST /admin/gc` — run one garbage-collection pass now (a report);
//! * `GET /admin/cluster` — the cluster as this node sees it (404 on a
//!   single node);
//! * `GET /admin/keys` — every access key (never a secret);
//! * `POST /admin/keys?name=N[&admin=true][&allow=BUCKET:rw]…` — create a
//!   key; the reply holds its secret, the only time it is shown;
//! * `DELETE /admin/keys/<id>` — delete a key (not the last admin key);
//! * `PUT /admin/keys/<id>/grants/<bucket>?read=true&write=false` — set a
//!   key's grant on a bucket; `DELETE` of the same path removes it;
//! * `GET /admin/buckets/<name>` — a bucket's objects, bytes, uploads in
//!   progress and the keys that may use it.
//!
//! A failed `/admin/*` request is answered by [`AdminError::response`], the
//! one place an engine, key or bucket error becomes an admin answer (a JSON
//! `{"error": …}`; internal details go to the log, except a failed garbage
//! collection's reason, answered in plain text).
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
//!
//! This module must never hold storage logic (it calls the engine's public
//! API) nor shape a reply by hand: every JSON reply is a type of
//! `admin_api.rs`, built here from the engine's.

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

use crate::admin_api as api;

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

/// `reply` as a JSON answer with `status`.
fn json_reply<T: serde::Serialize>(
    status: StatusCode,
    reply: &T,
) -> Result<Response<Full<Bytes>>, AdminError> {
    Ok(json(status, api::body(reply)?))
}

/// Why an `/admin/*` request failed; [`AdminError::response`] is the one
/// place any of these becomes an answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A malformed query value or grant: 400.
    #[error("{0}")]
    BadRequest(String),
    /// Not signed by an admin key of this server: 403.
    #[error("{0}")]
    Forbidden(String),
    /// `/admin/cluster` on a single node: 404.
    #[error("this server is a single node, not part of a cluster (see docs/cluster.md)")]
    NotClustered,
    /// A key or bucket operation the engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A garbage-collection pass failed: 500 with its reason, in plain
    /// text (as it has always been answered).
    #[error("garbage collection failed: {0}")]
    Gc(#[source] EngineError),
    /// A reply could not be encoded: 500 in plain text.
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
}

impl AdminError {
    /// The answer: a status and an [`api::ErrorBody`], or plain text where
    /// noted on the variant. An unexpected engine error is logged, and the
    /// client reads only that it happened.
    pub fn response(&self) -> Response<Full<Bytes>> {
        let (status, message) = match self {
            AdminError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            AdminError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            AdminError::NotClustered => (StatusCode::NOT_FOUND, self.to_string()),
            AdminError::Engine(EngineError::NoSuchAccessKey) => {
                (StatusCode::NOT_FOUND, "no such access key".to_owned())
            }
            AdminError::Engine(EngineError::NoSuchBucket) => {
                (StatusCode::NOT_FOUND, "no such bucket".to_owned())
            }
            AdminError::Engine(EngineError::InvalidAccessKey(reason)) => {
                (StatusCode::CONFLICT, reason.clone())
            }
            AdminError::Engine(EngineError::NoSuchKmsKey(reference)) => (
                StatusCode::NOT_FOUND,
                format!("no such KMS key: {reference}"),
            ),
            AdminError::Engine(EngineError::InvalidKmsKey(reason)) => {
                (StatusCode::CONFLICT, reason.clone())
            }
            AdminError::Engine(other) => {
                tracing::error!(error = %other, "admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the server log)".to_owned(),
                )
            }
            AdminError::Gc(_) | AdminError::Encode(_) => {
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{self}\n"));
            }
        };
        match api::body(&api::ErrorBody { error: message }) {
            Ok(body) => json(status, body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
}

impl From<&ScrubStatus> for api::ScrubStatus {
    fn from(s: &ScrubStatus) -> Self {
        let r = &s.report;
        api::ScrubStatus {
            running: s.running,
            started_ms: s.started_ms,
            finished_ms: s.finished_ms,
            chunks_total_estimate: s.chunks_total_estimate,
            chunks_checked: r.chunks_checked,
            shards_verified: r.shards_verified,
            shards_missing: r.shards_missing,
            shards_corrupt: r.shards_corrupt,
            shards_repaired: r.shards_repaired,
            chunks_unrecoverable: r.chunks_unrecoverable,
            bytes_read: r.bytes_read,
        }
    }
}

impl From<&RebalanceStatus> for api::RebalanceStatus {
    fn from(s: &RebalanceStatus) -> Self {
        let r = &s.report;
        api::RebalanceStatus {
            running: s.running,
            started_ms: s.started_ms,
            finished_ms: s.finished_ms,
            chunks_total_estimate: s.chunks_total_estimate,
            chunks_checked: r.chunks_checked,
            chunks_misplaced: r.chunks_misplaced,
            shards_moved: r.shards_moved,
            shards_rebuilt: r.shards_rebuilt,
            bytes_moved: r.bytes_moved,
            shards_skipped: r.shards_skipped,
        }
    }
}

impl From<&EngineStatus> for api::Status {
    fn from(s: &EngineStatus) -> Self {
        let drives = s
            .drives
            .iter()
            .map(|d| {
                let (healing, state_detail) = match &d.state {
                    DriveState::Replaced { healing } => (*healing, String::new()),
                    DriveState::Foreign { reason } => (false, reason.clone()),
                    _ => (false, String::new()),
                };
                api::Drive {
                    index: d.index,
                    path: d.path.display().to_string(),
                    state: d.state.label().to_owned(),
                    needs_heal: matches!(d.state, DriveState::Replaced { .. }),
                    healing,
                    state_detail,
                    present: d.present,
                    faulty: d.faulty,
                    segment_bytes: d.segment_bytes,
                    fs_free_bytes: d.fs_free_bytes,
                    fs_size_bytes: d.fs_size_bytes,
                }
            })
            .collect();
        api::Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            data_shards: s.data_shards,
            parity_shards: s.parity_shards,
            objects: s.objects,
            logical_bytes: s.logical_bytes,
            stored_bytes: s.stored_bytes,
            raw_bytes: s.raw_bytes,
            noncurrent_versions: s.noncurrent_versions,
            noncurrent_bytes: s.noncurrent_bytes,
            delete_markers: s.delete_markers,
            metadata_sst_bytes: s.metadata_sst_bytes,
            heal_backlog_bytes: s.heal_backlog_bytes,
            scrub_running: s.scrub.running,
            scrub_chunks_checked: s.scrub.report.chunks_checked,
            scrub_chunks_total_estimate: s.scrub.chunks_total_estimate,
            drives,
            // Filled by the status handler (the engine's queues).
            notification_queues: Vec::new(),
            notification_events_dropped: 0,
        }
    }
}

impl From<&GcReport> for api::GcReport {
    fn from(r: &GcReport) -> Self {
        api::GcReport {
            uploads_expired: r.uploads_expired,
            chunks_deleted: r.chunks_deleted,
            chunks_live: r.chunks_live,
            segments_compacted: r.segments_compacted,
            shards_moved: r.shards_moved,
            bytes_reclaimed: r.bytes_reclaimed,
        }
    }
}

impl From<&KeyInfo> for api::Key {
    fn from(k: &KeyInfo) -> Self {
        api::Key {
            id: k.id.clone(),
            name: k.name.clone(),
            created_ms: k.created_ms,
            admin: k.access.admin,
            fixed: k.fixed,
            grants: k
                .access
                .grants
                .iter()
                .map(|g| api::Grant {
                    bucket: g.bucket.clone(),
                    read: g.read,
                    write: g.write,
                    prefix: g.prefix.clone(),
                })
                .collect(),
            expires_ms: k.access.expires_ms,
        }
    }
}

impl From<&cairn_cluster::NodeStatus> for api::ClusterStatus {
    fn from(s: &cairn_cluster::NodeStatus) -> Self {
        api::ClusterStatus {
            node_id: s.node_id,
            state: s.state.clone(),
            leader: s.leader,
            term: s.term,
            last_log_index: s.last_log_index,
            applied_index: s.applied_index,
            members: s
                .members
                .iter()
                .map(|m| api::ClusterMember {
                    id: m.id,
                    raft_addr: m.raft_addr.clone(),
                    voter: m.voter,
                    matched_index: m.matched_index,
                })
                .collect(),
        }
    }
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

/// `BUCKET:r`, `BUCKET:w`, `BUCKET:rw` (also `read`, `write`, `read,write`),
/// or a device grant `BUCKET/PREFIX:w` (create objects under PREFIX only:
/// no reading, listing or deleting — so `w` alone).
fn parse_grant(spec: &str) -> Result<BucketGrant, String> {
    let (target, rights) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("grant {spec:?} must look like BUCKET:rw, BUCKET:r or BUCKET:w"))?;
    let (bucket, prefix) = target.split_once('/').unwrap_or((target, ""));
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
    if target.contains('/') && (read || !write || prefix.is_empty()) {
        return Err(format!(
            "grant {spec:?}: a prefix grant (BUCKET/PREFIX:w) may only create objects under a non-empty prefix; it cannot read"
        ));
    }
    Ok(BucketGrant {
        prefix: prefix.to_owned(),
        bucket: bucket.to_owned(),
        read,
        write,
    })
}

/// The query string of `req` (empty without one).
fn query(req: &Request<hyper::body::Incoming>) -> &str {
    req.uri().query().unwrap_or("")
}

/// `POST /admin/keys`.
async fn create_key(
    req: &Request<hyper::body::Incoming>,
    keys: &KeyRing,
) -> Result<Response<Full<Bytes>>, AdminError> {
    let request = api::CreateKey::from_query(query(req)).map_err(AdminError::BadRequest)?;
    let mut grants = Vec::new();
    for spec in &request.allow {
        match parse_grant(spec) {
            Ok(g) if g.read || g.write => grants.push(g),
            Ok(_) => {
                return Err(AdminError::BadRequest(format!(
                    "grant {spec:?} gives no right"
                )));
            }
            Err(e) => return Err(AdminError::BadRequest(e)),
        }
    }
    if request.name.len() > 256 {
        return Err(AdminError::BadRequest(
            "name is longer than 256 bytes".to_owned(),
        ));
    }
    let now = cairn_storage_engine::now_ms();
    let record = AccessKeyRecord {
        expires_ms: request
            .expires_in_secs
            .map(|secs| now.saturating_add(secs.saturating_mul(1000))),
        name: request.name,
        created_ms: now,
        admin: request.admin,
        grants,
    };
    let k = keys.create(record).await?;
    tracing::info!(key = %k.id, admin = k.record.admin, "access key created");
    let created = api::CreatedKey {
        key: api::Key::from(&KeyInfo::from(&k)),
        secret: k.secret,
    };
    json_reply(StatusCode::CREATED, &created)
}

/// `/admin/keys/<id>` and `/admin/keys/<id>/grants/<bucket>`; `rest` is
/// the path after `/admin/keys/`. `None` for a method neither takes.
async fn key_request(
    req: &Request<hyper::body::Incoming>,
    keys: &KeyRing,
    rest: &str,
) -> Option<Result<Response<Full<Bytes>>, AdminError>> {
    let (id, grant_bucket) = match rest.split_once(api::GRANTS_INFIX) {
        Some((id, bucket)) => (api::decode(id), Some(api::decode(bucket))),
        None => (api::decode(rest), None),
    };
    match (req.method(), grant_bucket) {
        (&Method::DELETE, None) => Some(delete_key(keys, id).await),
        (&Method::PUT | &Method::DELETE, Some(bucket)) => {
            Some(set_grant(req, keys, &id, bucket).await)
        }
        _ => None,
    }
}

/// `DELETE /admin/keys/<id>`.
async fn delete_key(keys: &KeyRing, id: String) -> Result<Response<Full<Bytes>>, AdminError> {
    keys.delete(&id).await?;
    tracing::info!(key = %id, "access key deleted");
    json_reply(StatusCode::OK, &api::DeletedKey { deleted: id })
}

/// `PUT` (with read/write) or `DELETE` of `/admin/keys/<id>/grants/<bucket>`.
async fn set_grant(
    req: &Request<hyper::body::Incoming>,
    keys: &KeyRing,
    id: &str,
    bucket: String,
) -> Result<Response<Full<Bytes>>, AdminError> {
    let api::SetGrant { read, write } = if req.method() == Method::PUT {
        api::SetGrant::from_query(query(req)).map_err(AdminError::BadRequest)?
    } else {
        api::SetGrant::default()
    };
    let k = keys
        .set_grant(
            id,
            BucketGrant {
                prefix: String::new(),
                bucket,
                read,
                write,
            },
        )
        .await?;
    json_reply(StatusCode::OK, &api::Key::from(&k))
}

/// `GET /admin/buckets/<name>`.
async fn bucket_info(
    engine: &Engine,
    keys: &KeyRing,
    name: &str,
) -> Result<Response<Full<Bytes>>, AdminError> {
    let name = api::decode(name);
    let info = engine.bucket_info(&name)?;
    let usage = engine.bucket_usage(&name).await?;
    let users = keys
        .list()
        .iter()
        .filter(|k| k.access.has_grant(&name))
        .map(|k| api::BucketKey {
            id: k.id.clone(),
            name: k.name.clone(),
            admin: k.access.admin,
            read: k.access.can_read(&name),
            write: k.access.can_write(&name),
        })
        .collect();
    let reply = api::BucketInfo {
        name: info.name,
        created_ms: info.created_ms,
        objects: usage.objects,
        logical_bytes: usage.logical_bytes,
        uploads_in_progress: usage.uploads_in_progress,
        keys: users,
    };
    json_reply(StatusCode::OK, &reply)
}

/// `POST /admin/kms/keys`.
async fn create_kms_key(
    req: &Request<hyper::body::Incoming>,
    engine: &Engine,
    auth: &AdminAuth,
) -> Result<Response<Full<Bytes>>, AdminError> {
    let request = api::CreateKmsKey::from_query(query(req));
    let alias = request
        .alias
        .strip_prefix("alias/")
        .unwrap_or(&request.alias);
    let alias = (!alias.is_empty()).then_some(alias);
    let k = engine.create_kms_key(alias, &request.description).await?;
    tracing::info!(kms_key = %k.id, alias = %k.alias, "KMS key created");
    json_reply(StatusCode::CREATED, &kms_key_reply(auth, &k))
}

/// `POST /admin/kms/key?key=<id or alias/NAME>&action=<action>`.
async fn apply_kms_key_action(
    engine: &Engine,
    auth: &AdminAuth,
    reference: &str,
    action: api::KmsKeyAction,
) -> Result<Response<Full<Bytes>>, AdminError> {
    let found = match reference.strip_prefix("alias/") {
        Some(alias) => engine.kms_key_by_alias(alias)?,
        None => engine.kms_key(reference)?,
    };
    let id = found
        .ok_or_else(|| EngineError::NoSuchKmsKey(reference.to_owned()))?
        .id;
    let k = match action {
        api::KmsKeyAction::Rotate => engine.rotate_kms_key(&id).await?,
        api::KmsKeyAction::Enable => engine.set_kms_key_enabled(&id, true).await?,
        api::KmsKeyAction::Disable => engine.set_kms_key_enabled(&id, false).await?,
    };
    tracing::info!(
        kms_key = %k.id,
        action = action.as_str(),
        versions = k.versions,
        "KMS key changed"
    );
    if action == api::KmsKeyAction::Rotate {
        spawn_rewrap(engine.clone(), k.id.clone());
    }
    json_reply(StatusCode::OK, &kms_key_reply(auth, &k))
}

/// After a rotation, re-wraps the key's objects' data keys under its newest
/// material in the background (storage-engine `kms_rewrap.rs`; the object
/// bytes are not touched). Passes run one at a time, so rotations in a
/// burst queue rather than scan the metadata at once; each pass re-wraps
/// to the newest version when it runs.
fn spawn_rewrap(engine: Engine, id: String) {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    tokio::spawn(async move {
        let _turn = ONE_AT_A_TIME.lock().await;
        match engine.rewrap_kms_key(&id).await {
            Ok(r) => tracing::info!(
                kms_key = %id,
                scanned = r.scanned,
                rewrapped = r.rewrapped,
                skipped_changed_meanwhile = r.skipped,
                "KMS key re-wrap pass finished"
            ),
            Err(e) => tracing::error!(kms_key = %id, error = %e, "KMS key re-wrap pass failed"),
        }
    });
}

fn kms_key_reply(auth: &AdminAuth, k: &cairn_storage_engine::KmsKeyInfo) -> api::KmsKey {
    api::KmsKey {
        alias: k.alias.clone(),
        arn: format!("arn:aws:kms:{}::key/{}", auth.region, k.id),
        created_ms: k.created_ms,
        description: k.description.clone(),
        enabled: k.enabled,
        id: k.id.clone(),
        versions: k.versions,
    }
}

/// Who may call `/admin/*`: admin access keys, signing for the region.
#[derive(Clone)]
pub struct AdminAuth {
    pub keys: std::sync::Arc<KeyRing>,
    pub verify: std::sync::Arc<VerifyConfig>,
    /// The server's region (the ARNs of KMS keys name it).
    pub region: String,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").finish_non_exhaustive()
    }
}

/// `Ok` if the request carries a valid SigV4 signature of an admin key.
fn authorize(req: &Request<hyper::body::Incoming>, auth: &AdminAuth) -> Result<(), AdminError> {
    let built = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(())
        .map_err(|_| AdminError::Forbidden("malformed admin request".to_owned()))?;
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
        Ok(verified) if verified.presigned => Err(AdminError::Forbidden(
            "the admin API does not accept presigned URLs; sign the request headers".to_owned(),
        )),
        Ok(verified) => match auth.keys.access(&verified.access_key) {
            Some(a) if a.admin => Ok(()),
            _ => Err(AdminError::Forbidden(format!(
                "access key {} is not an admin key; the admin API needs one (cairn admin key create NAME --admin)",
                verified.access_key
            ))),
        },
        Err(e) => Err(AdminError::Forbidden(format!(
            "admin requests must be signed with an admin access key of this server: {e}"
        ))),
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
    let answer = match authorize(req, auth) {
        Ok(()) => admin_route(req, engine, gc, auth, cluster).await?,
        Err(denied) => Err(denied),
    };
    Some(answer.unwrap_or_else(|e| e.response()))
}

/// An authorized `/admin/*` request; `None` for a route or method the
/// admin API does not have.
async fn admin_route(
    req: &Request<hyper::body::Incoming>,
    engine: &Engine,
    gc: GcOptions,
    auth: &AdminAuth,
    cluster: Option<&cairn_cluster::RunningNode>,
) -> Option<Result<Response<Full<Bytes>>, AdminError>> {
    let answer = match (req.method(), req.uri().path()) {
        (&Method::GET, api::STATUS) => {
            let mut status = api::Status::from(&engine.status());
            status.notification_queues = engine
                .queued_event_targets()
                .into_iter()
                .map(|(target, queued)| {
                    let oldest_age_secs = engine.oldest_event_ms(&target).map_or(0, |ms| {
                        cairn_storage_engine::now_ms().saturating_sub(ms) / 1000
                    });
                    api::NotificationQueue {
                        target,
                        queued,
                        oldest_age_secs,
                    }
                })
                .collect();
            status.notification_events_dropped = engine.dropped_events();
            json_reply(StatusCode::OK, &status)
        }
        (&Method::GET, api::CLUSTER) => match cluster {
            Some(node) => json_reply(StatusCode::OK, &api::ClusterStatus::from(&node.status())),
            None => Err(AdminError::NotClustered),
        },
        (&Method::GET, api::SCRUB) => json_reply(
            StatusCode::OK,
            &api::ScrubStatus::from(&engine.scrub_status()),
        ),
        (&Method::POST, api::SCRUB) => {
            let status = || api::ScrubStatus::from(&engine.scrub_status());
            if engine.scrub_status().running {
                return Some(json_reply(StatusCode::CONFLICT, &status()));
            }
            let opts = ScrubOptions {
                bytes_per_sec: api::StartJob::from_query(query(req)).bytes_per_sec,
            };
            let e = engine.clone();
            let before = engine.scrub_status().started_ms;
            start_job(
                async move { e.scrub(opts).await.map(|_| ()) },
                "scrub",
                || engine.scrub_status().started_ms != before,
            )
            .await;
            json_reply(StatusCode::ACCEPTED, &status())
        }
        (&Method::GET, api::REBALANCE) => json_reply(
            StatusCode::OK,
            &api::RebalanceStatus::from(&engine.rebalance_status()),
        ),
        (&Method::POST, api::REBALANCE) => {
            let status = || api::RebalanceStatus::from(&engine.rebalance_status());
            if engine.rebalance_status().running {
                return Some(json_reply(StatusCode::CONFLICT, &status()));
            }
            let opts = RebalanceOptions {
                bytes_per_sec: api::StartJob::from_query(query(req)).bytes_per_sec,
            };
            let e = engine.clone();
            let before = engine.rebalance_status().started_ms;
            start_job(
                async move { e.rebalance(opts).await.map(|_| ()) },
                "rebalance",
                || engine.rebalance_status().started_ms != before,
            )
            .await;
            json_reply(StatusCode::ACCEPTED, &status())
        }
        (&Method::GET, api::KEYS) => {
            let list: Vec<api::Key> = auth.keys.list().iter().map(api::Key::from).collect();
            json_reply(StatusCode::OK, &list)
        }
        (&Method::POST, api::KEYS) => create_key(req, &auth.keys).await,
        (_, path) if path.starts_with(api::KEYS_PREFIX) => {
            key_request(req, &auth.keys, &path[api::KEYS_PREFIX.len()..]).await?
        }
        (&Method::GET, api::KMS_KEYS) => {
            let list: Vec<api::KmsKey> = match engine.kms_keys() {
                Ok(keys) => keys.iter().map(|k| kms_key_reply(auth, k)).collect(),
                Err(e) => return Some(Err(e.into())),
            };
            json_reply(StatusCode::OK, &list)
        }
        (&Method::POST, api::KMS_KEYS) => create_kms_key(req, engine, auth).await,
        (&Method::POST, api::KMS_KEY_ACTION) => match api::kms_key_action_from_query(query(req)) {
            Ok((reference, action)) => apply_kms_key_action(engine, auth, &reference, action).await,
            Err(e) => Err(AdminError::BadRequest(e.to_owned())),
        },
        (&Method::GET, path) if path.starts_with(api::BUCKETS_PREFIX) => {
            bucket_info(engine, &auth.keys, &path[api::BUCKETS_PREFIX.len()..]).await
        }
        (&Method::POST, api::GC) => match engine.collect_garbage(gc).await {
            Ok(r) => json_reply(StatusCode::OK, &api::GcReport::from(&r)),
            Err(e) => Err(AdminError::Gc(e)),
        },
        _ => return None,
    };
    Some(answer)
}

/// `/health/ready`'s answer from the engine's readiness.
fn readiness(engine: &Engine) -> api::Readiness {
    match engine.readiness() {
        Ok(degraded) if degraded.is_empty() => api::Readiness::Ready,
        Ok(degraded) => api::Readiness::Degraded(degraded),
        Err(reason) => api::Readiness::NotReady(reason),
    }
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
        "/health/ready" => {
            let ready = readiness(engine);
            let status = StatusCode::from_u16(ready.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(status, ready.body())
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_storage_engine::{DriveStatus, ScrubReport};
    use http_body_util::BodyExt;

    async fn answer(resp: Response<Full<Bytes>>) -> (u16, String, String) {
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Every drive state, as `GET /admin/status` answered it before the
    /// reply was typed (the golden is that code's output on this sample).
    #[tokio::test]
    async fn status_reply_is_unchanged_for_every_drive_state() {
        let drive = |index: usize, state| DriveStatus {
            index,
            path: std::path::PathBuf::from(format!("/d/\"{index}\"é")),
            present: index != 1,
            faulty: index == 3,
            local: true,
            state,
            segment_bytes: 100 + index as u64,
            fs_free_bytes: 200 + index as u64,
            fs_size_bytes: 300 + index as u64,
        };
        let status = EngineStatus {
            data_shards: 4,
            parity_shards: 2,
            drives: vec![
                drive(0, DriveState::Ok),
                drive(1, DriveState::Missing),
                drive(2, DriveState::Replaced { healing: true }),
                drive(3, DriveState::Faulty),
                drive(
                    4,
                    DriveState::Foreign {
                        reason: "another \"server\"\n".into(),
                    },
                ),
                drive(5, DriveState::Replaced { healing: false }),
            ],
            objects: 21,
            logical_bytes: 22,
            stored_bytes: 23,
            raw_bytes: 24,
            noncurrent_versions: 27,
            noncurrent_bytes: 28,
            delete_markers: 29,
            metadata_sst_bytes: 25,
            heal_backlog_bytes: 26,
            scrub: ScrubStatus {
                running: true,
                started_ms: 1,
                finished_ms: 2,
                chunks_total_estimate: 3,
                report: ScrubReport {
                    chunks_checked: 4,
                    ..ScrubReport::default()
                },
            },
        };
        let golden = r#"{"data_shards":4,"delete_markers":29,"drives":[{"faulty":false,"fs_free_bytes":200,"fs_size_bytes":300,"healing":false,"index":0,"needs_heal":false,"path":"/d/\"0\"é","present":true,"segment_bytes":100,"state":"ok","state_detail":""},{"faulty":false,"fs_free_bytes":201,"fs_size_bytes":301,"healing":false,"index":1,"needs_heal":false,"path":"/d/\"1\"é","present":false,"segment_bytes":101,"state":"missing","state_detail":""},{"faulty":false,"fs_free_bytes":202,"fs_size_bytes":302,"healing":true,"index":2,"needs_heal":true,"path":"/d/\"2\"é","present":true,"segment_bytes":102,"state":"replaced","state_detail":""},{"faulty":true,"fs_free_bytes":203,"fs_size_bytes":303,"healing":false,"index":3,"needs_heal":false,"path":"/d/\"3\"é","present":true,"segment_bytes":103,"state":"faulty","state_detail":""},{"faulty":false,"fs_free_bytes":204,"fs_size_bytes":304,"healing":false,"index":4,"needs_heal":false,"path":"/d/\"4\"é","present":true,"segment_bytes":104,"state":"foreign","state_detail":"another \"server\"\n"},{"faulty":false,"fs_free_bytes":205,"fs_size_bytes":305,"healing":false,"index":5,"needs_heal":true,"path":"/d/\"5\"é","present":true,"segment_bytes":105,"state":"replaced","state_detail":""}],"heal_backlog_bytes":26,"logical_bytes":22,"metadata_sst_bytes":25,"noncurrent_bytes":28,"noncurrent_versions":27,"objects":21,"parity_shards":2,"raw_bytes":24,"scrub_chunks_checked":4,"scrub_chunks_total_estimate":3,"scrub_running":true,"stored_bytes":23,"version":"0.1.0"}"#
            .replace(r#""version":"0.1.0""#, &format!(r#""version":"{}""#, env!("CARGO_PKG_VERSION")));
        let resp = json_reply(StatusCode::OK, &api::Status::from(&status)).unwrap();
        assert_eq!(
            answer(resp).await,
            (200, "application/json".to_owned(), format!("{golden}\n"))
        );
    }

    /// The one mapping of failures to admin answers: statuses and bodies as
    /// they were before it existed.
    #[tokio::test]
    async fn errors_become_the_answers_they_always_were() {
        let json = |s: &str| format!("{{\"error\":\"{s}\"}}\n");
        let cases = [
            (
                AdminError::Engine(EngineError::NoSuchAccessKey),
                404,
                json("no such access key"),
            ),
            (
                AdminError::Engine(EngineError::NoSuchBucket),
                404,
                json("no such bucket"),
            ),
            (
                AdminError::Engine(EngineError::InvalidAccessKey("the last admin key".into())),
                409,
                json("the last admin key"),
            ),
            (
                AdminError::Engine(EngineError::Corrupt("secret detail".into())),
                500,
                json("internal error (see the server log)"),
            ),
            (
                AdminError::BadRequest("grant \"x\" gives no right".into()),
                400,
                json(r#"grant \"x\" gives no right"#),
            ),
            (AdminError::Forbidden("no".into()), 403, json("no")),
            (
                AdminError::NotClustered,
                404,
                json("this server is a single node, not part of a cluster (see docs/cluster.md)"),
            ),
        ];
        for (error, status, body) in cases {
            let got = answer(error.response()).await;
            assert_eq!(got, (status, "application/json".to_owned(), body));
        }
        let gc = AdminError::Gc(EngineError::Corrupt("bad segment".into()));
        assert_eq!(
            answer(gc.response()).await,
            (
                500,
                "text/plain; charset=utf-8".to_owned(),
                "garbage collection failed: corruption: bad segment\n".to_owned()
            )
        );
    }

    #[test]
    fn grants_parse() {
        let g = parse_grant("my:bucket:rw").unwrap();
        assert_eq!(
            (g.bucket.as_str(), g.read, g.write),
            ("my:bucket", true, true)
        );
        assert!(parse_grant("photos:admin").is_err());
        assert!(parse_grant(":r").is_err());
        assert!(parse_grant("photos").is_err());
    }
}
