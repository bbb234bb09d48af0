//! PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration and
//! DeleteBucketLifecycle: the translation between S3's `<LifecycleConfiguration>`
//! document and the engine's rule model, and the S3 error of every refusal.
//!
//! Must never: store a configuration the engine's validation refuses, or one
//! holding anything Cairn would not act on (a transition is refused with
//! `InvalidStorageClass`: Cairn has one storage class) — a rule that is
//! stored is a rule that runs. Applying the rules is the engine's
//! (`lifecycle_pass.rs`).

use std::sync::Arc;

use cairn_storage_engine::lifecycle::{
    Expiration, LifecycleConfiguration, LifecycleProblem, LifecycleRule, NoncurrentExpiration,
    RuleFilter,
};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{iso8601, parse_iso8601_ms};
use crate::response::{RespBody, empty_response, xml_response};
use crate::xml::{
    LifecycleAnd, LifecycleConfiguration as LifecycleXml, LifecycleConfigurationDoc,
    LifecycleExpiration, LifecycleFilter, LifecycleFilterDoc, LifecycleRule as LifecycleRuleXml,
    LifecycleRuleDoc, NoncurrentVersionExpiration, Tag, parse, to_xml,
};

use super::{read_xml_body, require_integrity_header};

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML)
}

/// The S3 error of a problem the engine's validation found.
fn problem_error(p: &LifecycleProblem) -> S3Error {
    use LifecycleProblem as P;
    let code = match p {
        P::TooManyRules { .. } | P::DeleteMarkerWithDaysOrDate { .. } => S3ErrorCode::MalformedXML,
        P::DuplicateId { .. }
        | P::IdTooLong { .. }
        | P::DaysZero { .. }
        | P::NewerNoncurrentVersionsOutOfRange { .. }
        | P::DateNotMidnight { .. }
        | P::SizeRangeEmpty { .. }
        | P::DuplicateTagKey { .. } => S3ErrorCode::InvalidArgument,
        P::NoAction { .. }
        | P::DeleteMarkerWithTags { .. }
        | P::AbortUploadWithTags { .. }
        | P::AbortUploadWithSize { .. } => S3ErrorCode::InvalidRequest,
    };
    S3Error::with_message(code, p.to_string())
}

/// A day count as the model holds it: zero and negative numbers become 0,
/// which the model's validation refuses as S3 does ("must be a positive
/// integer").
fn days(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// An object size bound: negative is `InvalidArgument`.
fn size(n: Option<i64>, name: &str) -> S3Result<Option<u64>> {
    match n {
        None => Ok(None),
        Some(v) => u64::try_from(v).map(Some).map_err(|_| {
            S3Error::invalid_argument(
                format!("'{name}' should be a non-negative number"),
                name,
                &v.to_string(),
            )
        }),
    }
}

/// `<Filter>`: one child, or `<And>` around several; empty matches all.
fn filter(doc: LifecycleFilterDoc) -> S3Result<RuleFilter> {
    let children = usize::from(doc.prefix.is_some())
        + doc.tags.len()
        + usize::from(doc.object_size_greater_than.is_some())
        + usize::from(doc.object_size_less_than.is_some())
        + usize::from(doc.and.is_some());
    if children > 1 {
        return Err(malformed());
    }
    if let Some(and) = doc.and {
        return Ok(RuleFilter {
            prefix: and.prefix.unwrap_or_default(),
            tags: and.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            size_greater_than: size(and.object_size_greater_than, "ObjectSizeGreaterThan")?,
            size_less_than: size(and.object_size_less_than, "ObjectSizeLessThan")?,
        });
    }
    Ok(RuleFilter {
        prefix: doc.prefix.unwrap_or_default(),
        tags: doc.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        size_greater_than: size(doc.object_size_greater_than, "ObjectSizeGreaterThan")?,
        size_less_than: size(doc.object_size_less_than, "ObjectSizeLessThan")?,
    })
}

/// A generated rule id (S3 makes one up when a rule has none).
fn generated_id() -> String {
    let bytes: [u8; 12] = cairn_storage_engine::random_bytes();
    hex::encode(bytes)
}

fn rule(doc: LifecycleRuleDoc) -> S3Result<LifecycleRule> {
    let transition_to = doc
        .transitions
        .iter()
        .map(|t| t.storage_class.as_deref())
        .chain(
            doc.noncurrent_version_transitions
                .iter()
                .map(|t| t.storage_class.as_deref()),
        )
        .next();
    if let Some(class) = transition_to {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            format!(
                "The storage class you specified is not valid: this server has one storage class (STANDARD) and no transitions (asked for {})",
                class.unwrap_or("none")
            ),
        ));
    }
    let enabled = match doc.status.as_deref() {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(malformed()),
    };
    let has_filter = doc.filter.is_some();
    let filter = match (doc.prefix, doc.filter) {
        (Some(_), Some(_)) | (None, None) => return Err(malformed()),
        (Some(prefix), None) => RuleFilter {
            prefix,
            ..RuleFilter::default()
        },
        (None, Some(f)) => filter(f)?,
    };
    let mut expiration = None;
    let mut expired_object_delete_marker = false;
    if let Some(e) = doc.expiration {
        expiration = match (e.days, e.date) {
            (Some(_), Some(_)) => return Err(malformed()),
            (Some(n), None) => Some(Expiration::Days(days(n))),
            (None, Some(date)) => {
                let at_ms = parse_iso8601_ms(date.trim())
                    .ok_or_else(|| S3Error::invalid_argument("Invalid date", "Date", &date))?;
                Some(Expiration::Date { at_ms })
            }
            (None, None) => None,
        };
        expired_object_delete_marker = e.expired_object_delete_marker.unwrap_or(false);
        if expiration.is_none() && e.expired_object_delete_marker.is_none() {
            return Err(malformed());
        }
    }
    let noncurrent_expiration = match doc.noncurrent_version_expiration {
        None => None,
        Some(n) => {
            let d = n.noncurrent_days.ok_or_else(malformed)?;
            if n.newer_noncurrent_versions.is_some() && !has_filter {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "NewerNoncurrentVersions is only allowed in a rule with a Filter",
                ));
            }
            Some(NoncurrentExpiration {
                days: days(d),
                newer_noncurrent_versions: n.newer_noncurrent_versions.map(days),
            })
        }
    };
    let abort_incomplete_upload_days = match doc.abort_incomplete_multipart_upload {
        None => None,
        Some(a) => Some(days(a.days_after_initiation.ok_or_else(malformed)?)),
    };
    Ok(LifecycleRule {
        id: doc
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(generated_id),
        enabled,
        filter,
        expiration,
        expired_object_delete_marker,
        noncurrent_expiration,
        abort_incomplete_upload_days,
    })
}

/// PutBucketLifecycleConfiguration: the document replaces the bucket's
/// rules whole, checked completely before anything is stored.
pub(crate) async fn put_bucket_lifecycle(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    require_integrity_header(ctx)?;
    svc.engine.bucket_info(&bucket)?;
    let (text, _) = read_xml_body(ctx, body).await?;
    let doc: LifecycleConfigurationDoc = parse(&text).map_err(|_| malformed())?;
    if doc.rules.is_empty() {
        return Err(malformed());
    }
    let config = LifecycleConfiguration {
        rules: doc.rules.into_iter().map(rule).collect::<S3Result<_>>()?,
    };
    if let Some(p) = config.validate().first() {
        return Err(problem_error(p));
    }
    for r in &config.rules {
        crate::tags::validate_bucket_tags(&r.filter.tags)?;
    }
    svc.engine
        .set_bucket_lifecycle(&bucket, Some(config))
        .await?;
    empty_response(StatusCode::OK)
}

/// DeleteBucketLifecycle: `204` whether or not rules were set.
pub(crate) async fn delete_bucket_lifecycle(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine.set_bucket_lifecycle(ctx.bucket()?, None).await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// A stored filter in the form S3 writes it: no condition `<Filter/>`,
/// one condition bare, several inside `<And>`.
fn filter_xml(f: &RuleFilter) -> LifecycleFilter<'_> {
    let conditions = usize::from(!f.prefix.is_empty())
        + f.tags.len()
        + usize::from(f.size_greater_than.is_some())
        + usize::from(f.size_less_than.is_some());
    fn tag((k, v): &(String, String)) -> Tag<'_> {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }
    match (
        conditions,
        f.tags.first(),
        f.size_greater_than,
        f.size_less_than,
    ) {
        (0, ..) => LifecycleFilter::All,
        (1, Some(t), ..) => LifecycleFilter::Tag(tag(t)),
        (1, None, Some(n), _) => LifecycleFilter::ObjectSizeGreaterThan(n),
        (1, None, None, Some(n)) => LifecycleFilter::ObjectSizeLessThan(n),
        (1, ..) => LifecycleFilter::Prefix((&f.prefix).into()),
        _ => LifecycleFilter::And(LifecycleAnd {
            prefix: (!f.prefix.is_empty()).then(|| (&f.prefix).into()),
            tags: f.tags.iter().map(tag).collect(),
            object_size_greater_than: f.size_greater_than,
            object_size_less_than: f.size_less_than,
        }),
    }
}

/// GetBucketLifecycleConfiguration: the stored rules, in order;
/// `404 NoSuchLifecycleConfiguration` when none are set.
pub(crate) fn get_bucket_lifecycle(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let Some(config) = svc.engine.bucket_lifecycle(ctx.bucket()?)? else {
        return Err(S3Error::new(S3ErrorCode::NoSuchLifecycleConfiguration));
    };
    let doc = LifecycleXml {
        rules: config
            .rules
            .iter()
            .map(|r| LifecycleRuleXml {
                id: Some((&r.id).into()),
                prefix: None,
                filter: Some(filter_xml(&r.filter)),
                status: if r.enabled { "Enabled" } else { "Disabled" }.into(),
                expiration: match (r.expiration, r.expired_object_delete_marker) {
                    (None, false) => None,
                    (e, marker) => Some(LifecycleExpiration {
                        date: match e {
                            Some(Expiration::Date { at_ms }) => Some(iso8601(at_ms).into()),
                            _ => None,
                        },
                        days: match e {
                            Some(Expiration::Days(n)) => Some(n),
                            _ => None,
                        },
                        expired_object_delete_marker: marker.then_some(true),
                    }),
                },
                noncurrent_version_expiration: r.noncurrent_expiration.map(|n| {
                    NoncurrentVersionExpiration {
                        noncurrent_days: Some(n.days),
                        newer_noncurrent_versions: n.newer_noncurrent_versions,
                    }
                }),
                abort_incomplete_multipart_upload_days: r.abort_incomplete_upload_days,
            })
            .collect(),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}
