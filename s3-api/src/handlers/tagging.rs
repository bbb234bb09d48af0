//! Object tagging: GetObjectTagging, PutObjectTagging, DeleteObjectTagging;
//! bucket tagging: GetBucketTagging, PutBucketTagging, DeleteBucketTagging
//! (the tag set lives in the bucket record).
//! The tag set lives in the current version's metadata (also set by the
//! `x-amz-tagging` header of PutObject / CreateMultipartUpload / CopyObject).

use std::sync::Arc;

use cairn_storage_engine::ObjectVersion;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, xml_response};
use crate::tags::{validate_bucket_tags, validate_tags};
use crate::xml::{Tag, Tagging, TaggingDoc, parse, to_xml};

use super::{read_xml_body, require_integrity_header};

/// The tagging responses name the version they read or changed
/// (`x-amz-version-id`, `null` for the null version).
fn with_version_header(
    resp: S3Result<Response<RespBody>>,
    version: &ObjectVersion,
) -> S3Result<Response<RespBody>> {
    let id = version.public_id();
    resp.map(|mut r| {
        if let Ok(v) = http::HeaderValue::from_str(&id) {
            r.headers_mut().insert("x-amz-version-id", v);
        }
        r
    })
}

pub(crate) fn get_object_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let version = svc
        .engine
        .head_version(ctx.bucket()?, ctx.key()?, ctx.version_id()?.as_ref())?;
    with_version_header(
        xml_response(StatusCode::OK, tagging_xml(&version.meta.tags)),
        &version,
    )
}

pub(crate) async fn put_object_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    let named = ctx.version_id()?;
    require_integrity_header(ctx)?;
    // NoSuchBucket / NoSuchKey / NoSuchVersion before the body is read.
    svc.engine.head_version(&bucket, &key, named.as_ref())?;
    let tags = read_tag_set(ctx, body).await?;
    validate_tags(&tags)?;
    let version = svc
        .engine
        .set_object_tags(&bucket, &key, named, tags)
        .await?;
    with_version_header(
        Response::builder()
            .status(StatusCode::OK)
            .body(crate::response::empty())
            .map_err(S3Error::internal),
        &version,
    )
}

pub(crate) async fn delete_object_tagging(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let version = svc
        .engine
        .set_object_tags(ctx.bucket()?, ctx.key()?, ctx.version_id()?, Vec::new())
        .await?;
    with_version_header(
        crate::response::empty_response(StatusCode::NO_CONTENT),
        &version,
    )
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
