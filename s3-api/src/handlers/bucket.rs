//! Bucket operations.

use std::sync::Arc;

use cairn_storage_engine::{EngineError, Versioning};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::iso8601;
use crate::response::{RespBody, empty, empty_response, xml_response};
use crate::xml::{
    AccessControlPolicy, BucketEntry, CreateBucketConfigurationDoc, Grant, ListAllMyBucketsResult,
    LocationConstraint, VersioningConfiguration, VersioningConfigurationDoc, parse, to_xml,
};

use super::{owner, read_xml_body, require_integrity_header};

/// S3's bucket naming rules (general purpose buckets).
pub(crate) fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| ok_char(c)) || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    // Not formatted like an IPv4 address.
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return false;
    }
    const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const RESERVED_SUFFIXES: [&str; 3] = ["-s3alias", "--ol-s3", "--x-s3"];
    !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
        && !RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// S3's page size for ListBuckets when paginating, and the largest
/// `max-buckets` it accepts.
const MAX_BUCKETS_LIMIT: usize = 10_000;

/// ListBuckets with `prefix`, `max-buckets`, `continuation-token` (opaque:
/// the last name of the previous page) and `bucket-region`. Buckets are
/// returned in name order.
pub(crate) fn list_buckets(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let prefix = ctx.query.get("prefix");
    let max_buckets = match ctx.query.get("max-buckets") {
        None => MAX_BUCKETS_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_BUCKETS_LIMIT).contains(n))
            .ok_or_else(|| {
                S3Error::invalid_argument(
                    "Argument max-buckets must be an integer between 1 and 10000",
                    "max-buckets",
                    v,
                )
            })?,
    };
    let after = match ctx.query.get("continuation-token") {
        Some(t) => Some(super::list::decode_token(t)?),
        None => None,
    };
    let region_ok = ctx
        .query
        .get("bucket-region")
        .is_none_or(|r| r == svc.config.region);
    let mut buckets = if region_ok {
        svc.engine.list_buckets()?
    } else {
        Vec::new()
    };
    buckets.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut page = buckets
        .iter()
        .filter(|b| prefix.is_none_or(|p| b.name.starts_with(p)))
        .filter(|b| match &ctx.caller {
            crate::access::Caller::Key { access, .. } => access.can_see(&b.name),
            crate::access::Caller::Anonymous => false,
        })
        .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a))
        .take(max_buckets + 1)
        .collect::<Vec<_>>();
    let truncated = page.len() > max_buckets;
    page.truncate(max_buckets);

    let doc = ListAllMyBucketsResult {
        owner: owner(),
        buckets: page
            .iter()
            .map(|b| BucketEntry {
                name: (&b.name).into(),
                creation_date: iso8601(b.created_ms).into(),
                bucket_region: (&svc.config.region).into(),
            })
            .collect(),
        continuation_token: page
            .last()
            .filter(|_| truncated)
            .map(|last| super::list::encode_token(&last.name).into()),
        prefix: prefix.map(Into::into),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

pub(crate) async fn create_bucket(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let name = ctx.bucket()?.to_owned();
    if !valid_bucket_name(&name) {
        return Err(S3Error::new(S3ErrorCode::InvalidBucketName).field("BucketName", name));
    }
    // `x-amz-bucket-object-lock-enabled: true`: Object Lock (and so
    // versioning) from the start. A boolean, case as clients send it.
    let object_lock = match ctx.header("x-amz-bucket-object-lock-enabled") {
        None => false,
        Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
        Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(S3Error::invalid_argument(
                "Invalid value for x-amz-bucket-object-lock-enabled.",
                "x-amz-bucket-object-lock-enabled",
                v,
            ));
        }
    };
    let (doc, _) = super::read_xml_body(ctx, body).await?;
    if !doc.trim().is_empty() {
        let cfg: CreateBucketConfigurationDoc =
            parse(&doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
        if let Some(loc) = cfg.location_constraint.filter(|l| !l.is_empty())
            && loc != svc.config.region
        {
            return Err(S3Error::with_message(
                S3ErrorCode::IllegalLocationConstraintException,
                format!(
                    "The {loc} location constraint is incompatible for the region specific endpoint this request was sent to."
                ),
            ));
        }
    }
    // The creating key owns the bucket (what ACLs and listings show).
    let creator = match &ctx.caller {
        crate::access::Caller::Key { id, .. } => id.clone(),
        crate::access::Caller::Anonymous => String::new(),
    };
    match svc
        .engine
        .create_bucket_owned(&name, object_lock, &creator)
        .await
    {
        Ok(_) => {}
        // S3's us-east-1 answers a repeated create of a bucket the caller
        // owns with 200 (a legacy it keeps); every other region with 409
        // BucketAlreadyOwnedByYou. Nothing changes either way.
        Err(EngineError::BucketAlreadyOwnedByYou) if svc.config.region == "us-east-1" => {}
        Err(e) => return Err(e.into()),
    }
    Response::builder()
        .status(StatusCode::OK)
        .header("location", format!("/{name}"))
        .body(empty())
        .map_err(S3Error::internal)
}

pub(crate) fn head_bucket(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine.bucket_info(ctx.bucket()?)?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", svc.config.region.as_str())
        .body(empty())
        .map_err(S3Error::internal)
}

pub(crate) async fn delete_bucket(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine.delete_bucket(ctx.bucket()?).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub(crate) fn get_bucket_location(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine.bucket_info(ctx.bucket()?)?;
    // us-east-1 is reported as an empty constraint, as S3 does.
    let region = if svc.config.region == "us-east-1" {
        ""
    } else {
        svc.config.region.as_str()
    };
    let doc = LocationConstraint {
        region: region.into(),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

/// GetBucketVersioning: the bucket's state; a bucket never versioned
/// answers with an empty configuration, as S3. MFA delete is never on.
pub(crate) fn get_bucket_versioning(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let info = svc.engine.bucket_info(ctx.bucket()?)?;
    let doc = VersioningConfiguration {
        status: match info.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some("Enabled".into()),
            Versioning::Suspended => Some("Suspended".into()),
        },
        mfa_delete: None,
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

/// PutBucketVersioning: `Enabled` or `Suspended` (a bucket is never
/// unversioned again); MFA delete cannot be enabled (Cairn has no MFA
/// devices), and a bucket with Object Lock cannot be suspended.
pub(crate) async fn put_bucket_versioning(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    require_integrity_header(ctx)?;
    // NoSuchBucket before the body is read.
    svc.engine.bucket_info(&bucket)?;
    let (doc, _) = read_xml_body(ctx, body).await?;
    let doc: VersioningConfigurationDoc =
        parse(&doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let versioning = match doc.status.as_deref() {
        None | Some("") => {
            return Err(S3Error::new(
                S3ErrorCode::IllegalVersioningConfigurationException,
            ));
        }
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    match doc.mfa_delete.as_deref() {
        None | Some("") | Some("Disabled") => {}
        Some("Enabled") => {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "MFA delete is not supported by this server.",
            )
            .field("Header", "MfaDelete"));
        }
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
    svc.engine
        .set_bucket_versioning(&bucket, versioning)
        .await?;
    empty_response(StatusCode::OK)
}

/// Object Ownership "bucket owner enforced": the bucket's owner (the key
/// that created it) has FULL_CONTROL of it and of every object in it;
/// ACLs grant nobody else anything (keys' grants and bucket policies
/// decide access). That is the true ACL, so reporting it is not a stub.
pub(crate) fn get_acl(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    object: bool,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    if object {
        svc.engine
            .head_version(bucket, ctx.key()?, ctx.version_id()?.as_ref())?;
    } else {
        svc.engine.bucket_info(bucket)?;
    }
    let owner = super::bucket_owner(svc, bucket)?;
    let doc = AccessControlPolicy {
        owner: owner.clone(),
        grants: vec![Grant {
            grantee: owner,
            permission: "FULL_CONTROL".into(),
        }],
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

#[cfg(test)]
mod tests {
    use super::valid_bucket_name;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.2", "a".repeat(63).as_str(), "1bucket"] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "rc",
            &"a".repeat(64),
            "Upper",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "under_score",
            "bucket-s3alias",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
