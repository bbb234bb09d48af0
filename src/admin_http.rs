//! The admin listener: Prometheus `/metrics`, `/health/live`,
//! `/health/ready`, and maintenance:
//!
//! * `GET /admin/status` — drives, space, pipeline savings, version (JSON);
//! * `GET /admin/scrub` — the scrubber's state (JSON);
//! * `POST /admin/scrub[?bytes_per_sec=N]` — start a scrub (202; 409 if one
//!   runs). `cairn admin scrub` and `cairn admin heal` drive these;
//! * `POST /admin/gc` — run one garbage-collection pass now (JSON report).
//!
//! `/metrics` and `/health/*` are unauthenticated (for Prometheus and load
//! balancers): bind the listener to a private address (default 127.0.0.1).
//! Every `/admin/*` request must be SigV4-signed with one of the server's S3
//! credentials (service `s3`, the configured region); `cairn admin` signs
//! with `CAIRN_ACCESS_KEY`/`CAIRN_SECRET_KEY` (or the `AWS_*` equivalents).

use std::convert::Infallible;

use bytes::Bytes;
use cairn_s3_api::auth::{SecretLookup, VerifyConfig, verify_request};
use cairn_storage_engine::{Engine, EngineStatus, GcOptions, GcReport, ScrubOptions, ScrubStatus};
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

fn status_json(s: &EngineStatus) -> String {
    let drives: Vec<serde_json::Value> = s
        .drives
        .iter()
        .map(|d| {
            serde_json::json!({
                "index": d.index,
                "path": d.path.display().to_string(),
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
        "logical_bytes": s.logical_bytes,
        "stored_bytes": s.stored_bytes,
        "raw_bytes": s.raw_bytes,
        "metadata_sst_bytes": s.metadata_sst_bytes,
        "heal_backlog_bytes": s.heal_backlog_bytes,
        "scrub_running": s.scrub.running,
        "drives": drives,
    });
    format!("{v}\n")
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

fn query_u64(req: &Request<hyper::body::Incoming>, name: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.parse().ok()).flatten()
    })
}

/// Who may call `/admin/*`: the S3 credentials and the region they sign for.
#[derive(Clone)]
pub struct AdminAuth {
    pub secrets: std::sync::Arc<dyn SecretLookup>,
    pub verify: std::sync::Arc<VerifyConfig>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").finish_non_exhaustive()
    }
}

/// `None` if the request carries a valid SigV4 signature, else the 403.
fn authorize(
    req: &Request<hyper::body::Incoming>,
    auth: &AdminAuth,
) -> Option<Response<Full<Bytes>>> {
    let mut parts = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(())
        .ok()?
        .into_parts()
        .0;
    parts.headers = req.headers().clone();
    match verify_request(
        &parts,
        auth.secrets.as_ref(),
        &auth.verify,
        std::time::SystemTime::now(),
    ) {
        Ok(_) => None,
        Err(e) => Some(text(
            StatusCode::FORBIDDEN,
            format!("admin requests must be signed with the server's S3 credentials: {e}\n"),
        )),
    }
}

async fn handle_admin(
    req: &Request<hyper::body::Incoming>,
    engine: &Engine,
    gc: GcOptions,
    auth: &AdminAuth,
) -> Option<Response<Full<Bytes>>> {
    if !req.uri().path().starts_with("/admin/") {
        return None;
    }
    if let Some(denied) = authorize(req, auth) {
        return Some(denied);
    }
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/admin/status") => json(StatusCode::OK, status_json(&engine.status())),
        (&Method::GET, "/admin/scrub") => {
            json(StatusCode::OK, scrub_status_json(&engine.scrub_status()))
        }
        (&Method::POST, "/admin/scrub") => {
            if engine.scrub_status().running {
                return Some(json(
                    StatusCode::CONFLICT,
                    scrub_status_json(&engine.scrub_status()),
                ));
            }
            let opts = ScrubOptions {
                bytes_per_sec: query_u64(req, "bytes_per_sec").filter(|r| *r > 0),
            };
            let e = engine.clone();
            tokio::spawn(async move {
                if let Err(err) = e.scrub(opts).await {
                    tracing::error!(error = %err, "scrub failed");
                }
            });
            // Let the scrub mark itself running before answering.
            for _ in 0..50 {
                if engine.scrub_status().running || engine.scrub_status().finished_ms > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            json(
                StatusCode::ACCEPTED,
                scrub_status_json(&engine.scrub_status()),
            )
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
            engine.refresh_gauges();
            let mut buf = Vec::new();
            match TextEncoder::new().encode(&registry.gather(), &mut buf) {
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
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health/live, /health/ready or /admin/scrub\n",
        ),
    }
}

pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    registry: Registry,
    gc: GcOptions,
    auth: AdminAuth,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let engine = engine.clone();
        let registry = registry.clone();
        let tls = tls.clone();
        let auth = auth.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let engine = engine.clone();
                let registry = registry.clone();
                let auth = auth.clone();
                async move {
                    let resp = match handle_admin(&req, &engine, gc, &auth).await {
                        Some(r) => r,
                        None => handle(&req, &engine, &registry),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(acceptor) => {
                    if let Ok(Ok(s)) = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        let _ = http.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
            }
        });
    }
}
