//! What a handler works with: the service's shared state
//! ([`ServiceInner`]: engine, keys, settings, metrics), its settings
//! ([`S3Config`]) and one request's context ([`RequestCtx`]: route, query,
//! head, verified signature, the key's grants).
//!
//! Owns: those types. Must never: route, authenticate or answer a request
//! (service.rs does), or import `service.rs` or the handlers: it sits below
//! both, so the handlers never reach up into the service that calls them.

use std::sync::Arc;

use cairn_storage_engine::{Engine, VersionRef};

use crate::auth::{VerifiedRequest, VerifyConfig};
use crate::error::{S3Error, S3Result};
use crate::keys::KeyRing;
use crate::metrics::S3Metrics;
use crate::router::Query;

/// Front-end settings.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The region clients must sign for (`us-east-1` by default).
    pub region: String,
    /// Largest request header section accepted (bytes).
    pub max_header_bytes: usize,
    /// Domain for virtual-hosted-style addressing: a request whose `Host`
    /// is `<bucket>.<domain>[:port]` addresses that bucket and its path is
    /// the key. Lowercase, without port or trailing dot. `None`: path-style
    /// only. Path-style requests work either way.
    pub domain: Option<String>,
    /// A request body that sends no byte for this long is answered
    /// `RequestTimeout` and its connection closed (zero: no limit).
    pub body_idle_timeout: std::time::Duration,
    /// …and so is one averaging less than this many bytes per second over a
    /// window of `body_min_rate_window` spent waiting for it (0: no limit).
    pub body_min_rate_bytes_per_sec: u64,
    pub body_min_rate_window: std::time::Duration,
    /// The public access block every bucket has on top of its own (S3's
    /// account-level block): all on unless the operator lifts it
    /// (`--allow-public-buckets`), so no bucket policy can make a bucket
    /// public by default.
    pub public_access_block_default: crate::access::PublicAccessBlock,
    /// Where the audit log is appended (one JSON line per request);
    /// `None`: no audit log.
    pub audit_log: Option<std::path::PathBuf>,
    /// SSE-C over plain HTTP is accepted (tests only: S3 refuses it, since
    /// the key would cross the network in the clear).
    pub allow_sse_c_over_http: bool,
    /// The names of the server's notification targets: what a bucket's
    /// notification configuration may name (`arn:cairn:…:<name>`).
    pub notify_targets: Vec<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            region: "us-east-1".into(),
            max_header_bytes: 64 << 10,
            domain: None,
            body_idle_timeout: crate::body::BODY_IDLE_TIMEOUT_DEFAULT,
            body_min_rate_bytes_per_sec: crate::body::BODY_MIN_RATE_BYTES_PER_SEC_DEFAULT,
            body_min_rate_window: crate::body::BODY_MIN_RATE_WINDOW_DEFAULT,
            public_access_block_default: crate::access::PublicAccessBlock::ALL,
            audit_log: None,
            allow_sse_c_over_http: false,
            notify_targets: Vec::new(),
        }
    }
}

/// What every handler shares: the engine, the access keys, the settings
/// and the metrics (one per service, behind an `Arc`).
pub(crate) struct ServiceInner {
    pub(crate) engine: Engine,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) verify: VerifyConfig,
    pub(crate) config: S3Config,
    pub(crate) metrics: S3Metrics,
    /// Sent as `x-amz-id-2` and in error documents.
    pub(crate) host_id: String,
    pub(crate) access_cache: crate::access::AccessCache,
    /// `None` unless the operator asked for one.
    pub(crate) audit: Option<crate::audit::AuditLog>,
}

/// What a handler gets besides the body.
pub(crate) struct RequestCtx {
    pub(crate) bucket: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) query: Query,
    pub(crate) parts: http::request::Parts,
    pub(crate) auth: VerifiedRequest,
    /// Who signed the request (or anonymous).
    pub(crate) caller: crate::access::Caller,
    /// What the connection says about the client.
    pub(crate) client: crate::access::ClientFacts,
}

impl RequestCtx {
    pub(crate) fn bucket(&self) -> S3Result<&str> {
        self.bucket
            .as_deref()
            .ok_or_else(|| S3Error::internal("route without bucket"))
    }

    pub(crate) fn key(&self) -> S3Result<&str> {
        self.key
            .as_deref()
            .ok_or_else(|| S3Error::internal("route without key"))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        crate::headers::header_str(&self.parts.headers, name)
    }

    /// The `versionId` query parameter: `None` when absent, S3's
    /// `InvalidArgument` when it cannot name a version.
    pub(crate) fn version_id(&self) -> S3Result<Option<VersionRef>> {
        crate::headers::parse_version_id(self.query.get("versionId"), "versionId")
    }

    /// Whether the request asks to bypass GOVERNANCE retention
    /// (`x-amz-bypass-governance-retention: true`) and its key may: only
    /// an admin key can (Cairn has no per-key permission for it yet).
    pub(crate) fn bypass_governance(&self) -> S3Result<bool> {
        let asked = self
            .header("x-amz-bypass-governance-retention")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(asked && self.caller.is_admin())
    }
}
