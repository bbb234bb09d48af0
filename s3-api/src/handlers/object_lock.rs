//! Object Lock: a bucket's configuration (PutObjectLockConfiguration,
//! GetObjectLockConfiguration), a version's retention and legal hold
//! (Put/GetObjectRetention, Put/GetObjectLegalHold), and the lock a write
//! asks for with `x-amz-object-lock-*` headers ([`requested_lock`]).
//!
//! Must never: answer success for a lock that is not stored exactly as
//! asked, or let a request shorten a COMPLIANCE retention (the engine's
//! `set_retention` holds that rule; this layer only decides who may bypass
//! GOVERNANCE: an admin key that asks).

use std::sync::Arc;

use cairn_storage_engine::{
    DefaultRetention as EngineDefaultRetention, ObjectLockConfig, ObjectVersion, Retention,
    RetentionPeriod as EnginePeriod, VersionLock,
};
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{
    iso8601, lock_mode_name, object_lock_headers, parse_iso8601_ms, parse_lock_mode,
};
use crate::response::{RespBody, empty_response, xml_response};
use crate::xml::{
    DefaultRetention, LegalHold, LegalHoldDoc, ObjectLockConfiguration, ObjectLockConfigurationDoc,
    Retention as RetentionXml, RetentionDoc, RetentionPeriod, parse, to_xml,
};

use super::{has_integrity_header, read_xml_body, require_integrity_header};

/// S3's longest default retention: 100 years (36,500 days).
const DEFAULT_RETENTION_DAYS_MAX: i32 = 36_500;
const DEFAULT_RETENTION_YEARS_MAX: i32 = 100;

fn missing_lock_configuration() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        "Bucket is missing Object Lock Configuration",
    )
}

/// The Object Lock a PutObject, CopyObject or CreateMultipartUpload asks
/// for, checked before anything is stored: lock headers on a bucket
/// without Object Lock are `InvalidRequest` (as S3); a PutObject that
/// locks its version (by headers or the bucket's default retention) must
/// carry `Content-MD5` or an `x-amz-checksum-*`, as S3 requires.
pub(crate) fn requested_lock(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    bucket: &str,
    is_put_object: bool,
) -> S3Result<VersionLock> {
    let asked = object_lock_headers(&ctx.parts.headers, cairn_storage_engine::now_ms())?;
    // Nothing asked and nothing to require: the bucket need not be read
    // (the common PUT, which carries a checksum, costs no extra read).
    if asked.is_none() && (!is_put_object || has_integrity_header(&ctx.parts.headers)) {
        return Ok(VersionLock::default());
    }
    let info = svc.engine.bucket_info(bucket)?;
    let Some(config) = info.object_lock else {
        return match asked {
            Some(_) => Err(missing_lock_configuration()),
            None => Ok(VersionLock::default()),
        };
    };
    let locks = asked.is_some() || config.default_retention.is_some();
    if is_put_object && locks && !has_integrity_header(&ctx.parts.headers) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ));
    }
    Ok(asked.unwrap_or_default())
}

/// Whether the request may bypass GOVERNANCE retention.
fn bypass(ctx: &RequestCtx) -> S3Result<bool> {
    ctx.bypass_governance()
}

pub(crate) fn get_object_lock_configuration(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let info = svc.engine.bucket_info(ctx.bucket()?)?;
    let Some(config) = info.object_lock else {
        return Err(S3Error::new(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
        ));
    };
    let doc = ObjectLockConfiguration {
        object_lock_enabled: Some("Enabled".into()),
        default_retention: config.default_retention.map(|d| DefaultRetention {
            mode: lock_mode_name(d.mode).into(),
            period: match d.period {
                EnginePeriod::Days(n) => RetentionPeriod::Days(n),
                EnginePeriod::Years(n) => RetentionPeriod::Years(n),
            },
        }),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

/// PutObjectLockConfiguration: `ObjectLockEnabled` must be `Enabled`; an
/// optional default retention of one mode and exactly one of `Days` /
/// `Years`, positive and at most 100 years. Enabling it on an existing
/// bucket needs versioning enabled (`409 InvalidBucketState`). It is never
/// disabled.
pub(crate) async fn put_object_lock_configuration(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    require_integrity_header(ctx)?;
    svc.engine.bucket_info(&bucket)?;
    let (doc, _) = read_xml_body(ctx, body).await?;
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    let doc: ObjectLockConfigurationDoc = parse(&doc).map_err(|_| malformed())?;
    if doc.object_lock_enabled.as_deref() != Some("Enabled") {
        return Err(malformed());
    }
    let default_retention = match doc.rule {
        None => None,
        Some(rule) => {
            let d = rule.default_retention.ok_or_else(malformed)?;
            let mode = d
                .mode
                .as_deref()
                .and_then(parse_lock_mode)
                .ok_or_else(malformed)?;
            let (n, max, period): (i32, i32, fn(u32) -> EnginePeriod) = match (d.days, d.years) {
                (Some(n), None) => (n, DEFAULT_RETENTION_DAYS_MAX, EnginePeriod::Days),
                (None, Some(n)) => (n, DEFAULT_RETENTION_YEARS_MAX, EnginePeriod::Years),
                _ => return Err(malformed()),
            };
            let name = if d.days.is_some() { "Days" } else { "Years" };
            if n <= 0 {
                return Err(S3Error::invalid_argument(
                    "Default retention period must be a positive integer value.",
                    name,
                    &n.to_string(),
                ));
            }
            if n > max {
                return Err(S3Error::invalid_argument(
                    "Default retention period too large.",
                    name,
                    &n.to_string(),
                ));
            }
            Some(EngineDefaultRetention {
                mode,
                period: period(n.unsigned_abs()),
            })
        }
    };
    svc.engine
        .set_object_lock_config(&bucket, ObjectLockConfig { default_retention })
        .await?;
    empty_response(StatusCode::OK)
}

/// The bucket must have Object Lock for a version's lock to be read or set.
fn require_lock(svc: &ServiceInner, bucket: &str) -> S3Result<()> {
    match svc.engine.bucket_info(bucket)?.object_lock {
        Some(_) => Ok(()),
        None => Err(missing_lock_configuration()),
    }
}

fn with_version_id(mut resp: Response<RespBody>, v: &ObjectVersion) -> Response<RespBody> {
    if let Some(id) = crate::headers::version_id_header(v)
        && let Ok(h) = HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert("x-amz-version-id", h);
    }
    resp
}

pub(crate) fn get_object_retention(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    require_lock(svc, bucket)?;
    let v = svc
        .engine
        .head_version(bucket, ctx.key()?, ctx.version_id()?.as_ref())?;
    let Some(r) = v.retention else {
        return Err(S3Error::new(S3ErrorCode::NoSuchObjectLockConfiguration));
    };
    let doc = RetentionXml {
        mode: lock_mode_name(r.mode).into(),
        retain_until_date: iso8601(r.until_ms).into(),
    };
    Ok(with_version_id(
        xml_response(StatusCode::OK, to_xml(&doc))?,
        &v,
    ))
}

/// PutObjectRetention: a mode and a future `RetainUntilDate`, or an empty
/// `<Retention/>` to remove it; whether the change is allowed is the
/// engine's rule (COMPLIANCE never shortened; GOVERNANCE only with the
/// bypass). Needs `Content-MD5` or an `x-amz-checksum-*`, as S3.
pub(crate) async fn put_object_retention(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    let named = ctx.version_id()?;
    let bypass = bypass(ctx)?;
    require_integrity_header(ctx)?;
    require_lock(svc, &bucket)?;
    let (doc, _) = read_xml_body(ctx, body).await?;
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    let doc: RetentionDoc = parse(&doc).map_err(|_| malformed())?;
    let retention = match (doc.mode.as_deref(), doc.retain_until_date.as_deref()) {
        (None, None) => None,
        (Some(m), Some(d)) => {
            let mode = parse_lock_mode(m).ok_or_else(malformed)?;
            let until_ms = parse_iso8601_ms(d).ok_or_else(malformed)?;
            if until_ms <= cairn_storage_engine::now_ms() {
                return Err(S3Error::invalid_argument(
                    "The retain until date must be in the future!",
                    "RetainUntilDate",
                    d,
                ));
            }
            Some(Retention { mode, until_ms })
        }
        _ => return Err(malformed()),
    };
    let v = svc
        .engine
        .set_retention(&bucket, &key, named, retention, bypass)
        .await?;
    Ok(with_version_id(empty_response(StatusCode::OK)?, &v))
}

pub(crate) fn get_object_legal_hold(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    require_lock(svc, bucket)?;
    let v = svc
        .engine
        .head_version(bucket, ctx.key()?, ctx.version_id()?.as_ref())?;
    let doc = LegalHold {
        status: if v.legal_hold { "ON" } else { "OFF" }.into(),
    };
    Ok(with_version_id(
        xml_response(StatusCode::OK, to_xml(&doc))?,
        &v,
    ))
}

/// PutObjectLegalHold: `ON` or `OFF` exactly (else `MalformedXML`). Needs
/// `Content-MD5` or an `x-amz-checksum-*`, as S3.
pub(crate) async fn put_object_legal_hold(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    let named = ctx.version_id()?;
    require_integrity_header(ctx)?;
    require_lock(svc, &bucket)?;
    let (doc, _) = read_xml_body(ctx, body).await?;
    let doc: LegalHoldDoc = parse(&doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let on = match doc.status.as_deref() {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let v = svc.engine.set_legal_hold(&bucket, &key, named, on).await?;
    Ok(with_version_id(empty_response(StatusCode::OK)?, &v))
}
