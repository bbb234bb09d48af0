//! Object tagging: GetObjectTagging, PutObjectTagging, DeleteObjectTagging;
//! bucket tagging: GetBucketTagging, PutBucketTagging, DeleteBucketTagging
//! (the tag set lives in the bucket record).
//! The tag set lives in the current version's metadata (also set by the
//! `x-amz-tagging` header of PutObject / CreateMultipartUpload / CopyObject).

use std::sync::Arc;

use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, xml_response};
use crate::tags::{validate_bucket_tags, validate_tags};
use crate::xml::{Tag, Tagging, TaggingDoc, parse, to_xml};

use super::{read_xml_body, require_integrity_header};

/// Without versioning every object has the one version `null`.
fn check_version(ctx: &RequestCtx) -> S3Result<()> {
    match ctx.query.get("versionId") {
        Some(v) if v != "null" => Err(S3Error::new(S3ErrorCode::NoSuchVersion)
            .field("Key", ctx.key.as_deref().unwrap_or(""))
            .field("VersionId", v)),
        _ => Ok(()),
    }
}

fn with_version_header(resp: S3Result<Response<RespBody>>) -> S3Result<Response<RespBody>> {
    resp.map(|mut r| {
        r.headers_mut()
            .insert("x-amz-version-id", http::HeaderValue::from_static("null"));
        r
    })
}

pub(crate) fn get_object_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    check_version(ctx)?;
    let version = svc.engine.head_object(ctx.bucket()?, ctx.key()?)?;
    with_version_header(xml_response(
        StatusCode::OK,
        tagging_xml(&version.meta.tags),
    ))
}

pub(crate) async fn put_object_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    check_version(ctx)?;
    require_integrity_header(ctx)?;
    // NoSuchBucket / NoSuchKey before the body is read.
    svc.engine.head_object(&bucket, &key)?;
    let tags = read_tag_set(ctx, body).await?;
    validate_tags(&tags)?;
    svc.engine.set_object_tags(&bucket, &key, tags).await?;
    with_version_header(
        Response::builder()
            .status(StatusCode::OK)
            .body(crate::response::empty())
            .map_err(S3Error::internal),
    )
}

pub(crate) async fn delete_object_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    check_version(ctx)?;
    svc.engine
        .set_object_tags(ctx.bucket()?, ctx.key()?, Vec::new())
        .await?;
    with_version_header(crate::response::empty_response(StatusCode::NO_CONTENT))
}

/// The `<Tagging><TagSet>…` request body as (key, value) pairs, in order.
async fn read_tag_set(ctx: &mut RequestCtx, body: Incoming) -> S3Result<Vec<(String, String)>> {
    let (doc, _) = read_xml_body(ctx, body).await?;
    let doc: TaggingDoc = parse(&doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    Ok(doc
        .tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect())
}

fn tagging_xml(tags: &[(String, String)]) -> String {
    to_xml(&Tagging {
        tags: tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.into(),
                value: v.into(),
            })
            .collect(),
    })
}

pub(crate) fn get_bucket_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let tags = svc.engine.bucket_tags(bucket)?;
    if tags.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchTagSet).field("BucketName", bucket));
    }
    xml_response(StatusCode::OK, tagging_xml(&tags))
}

pub(crate) async fn put_bucket_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    require_integrity_header(ctx)?;
    // NoSuchBucket before the body is read.
    svc.engine.bucket_tags(&bucket)?;
    let tags = read_tag_set(ctx, body).await?;
    validate_bucket_tags(&tags)?;
    svc.engine.set_bucket_tags(&bucket, tags).await?;
    crate::response::empty_response(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_bucket_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine
        .set_bucket_tags(ctx.bucket()?, Vec::new())
        .await?;
    crate::response::empty_response(StatusCode::NO_CONTENT)
}
