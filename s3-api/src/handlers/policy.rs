//! Bucket policies and public access blocks: PutBucketPolicy,
//! GetBucketPolicy, DeleteBucketPolicy, GetBucketPolicyStatus and
//! Put/Get/DeletePublicAccessBlock.
//!
//! Must never: store a policy that does not parse, names a key that does
//! not exist, or is public while public policies are blocked (the bucket's
//! own block or the server-wide default) — every check happens before
//! anything is stored, under the access cache's change lock, which
//! PutPublicAccessBlock takes too (a block cannot land between a policy's
//! check and its store); hold that lock while reading a body.
//!
//! The policy is stored as sent (GetBucketPolicy answers those bytes), with
//! the id of the key each named principal names now (`access::PolicyRecord`):
//! a key created later under the same name is not that principal. The
//! access cache (access.rs) parses it again.

use std::sync::Arc;

use cairn_policy::{MAX_DOCUMENT_BYTES, Policy, USER_ARN_PREFIX};
use cairn_storage_engine::BucketDocument;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::access::{PolicyRecord, PublicAccessBlock};
use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, empty_response, full, xml_response};
use crate::xml::{
    PolicyStatus, PublicAccessBlockConfiguration, PublicAccessBlockDoc, parse, to_xml,
};

use super::{body_spec, read_xml_body};

pub(crate) async fn put_bucket_policy(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    // NoSuchBucket before the body is read.
    svc.engine.bucket_info(&bucket)?;
    // Read up to the document bound; the policy's own limit (20 KiB without
    // whitespace) is the parser's.
    let spec = body_spec(ctx, MAX_DOCUMENT_BYTES as u64).map_err(|e| {
        if e.code == S3ErrorCode::EntityTooLarge {
            S3Error::with_message(
                S3ErrorCode::MalformedPolicy,
                "Policy exceeds the maximum allowed document size.",
            )
        } else {
            e
        }
    })?;
    let document = crate::body::BodyReader::new(body, spec)
        .read_to_end()
        .await
        .map_err(|e| match e {
            crate::body::BodyError::TooLarge => S3Error::with_message(
                S3ErrorCode::MalformedPolicy,
                "Policy exceeds the maximum allowed document size.",
            ),
            other => other.into(),
        })?
        .0;
    let mut policy = Policy::parse(&document, &bucket)
        .map_err(|e| S3Error::with_message(S3ErrorCode::MalformedPolicy, e.to_string()))?;
    // From here to the store: no policy or block change of this node in
    // between (the body is read already).
    let _changes = svc.access_cache.lock_changes().await;
    // A principal must name one existing key when the policy is set (as
    // IAM checks users), and names that key from now on: its id is stored
    // with the document.
    if let Err(missing) = policy.bind(|name| svc.keys.id_for_name(name)) {
        tracing::debug!(principal = %format!("{USER_ARN_PREFIX}{missing}"), "policy names no key (or several)");
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedPolicy,
            "Invalid principal in policy",
        ));
    }
    if policy.is_public() && effective_block(svc, &bucket)?.block_public_policy {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "User is not authorized to perform s3:PutBucketPolicy because public policies are blocked by the BlockPublicPolicy block public access setting.",
        ));
    }
    let bindings = policy.bindings().cloned().unwrap_or_default();
    let record = PolicyRecord::encode(&document, &bindings).map_err(S3Error::internal)?;
    svc.engine
        .set_bucket_document(&bucket, BucketDocument::Policy, Some(record))
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

/// The bucket's stored policy record, decoded (`NoSuchBucketPolicy` when
/// none is set).
fn stored_policy(svc: &ServiceInner, bucket: &str) -> S3Result<PolicyRecord> {
    let Some(raw) = svc.engine.bucket_document(bucket, BucketDocument::Policy)? else {
        return Err(S3Error::new(S3ErrorCode::NoSuchBucketPolicy));
    };
    PolicyRecord::decode(&raw).map_err(|e| {
        tracing::error!(bucket, error = %e, "stored bucket policy record unreadable");
        S3Error::internal(e)
    })
}

pub(crate) fn get_bucket_policy(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let document = stored_policy(svc, ctx.bucket()?)?.document;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(full(document))
        .map_err(S3Error::internal)
}

pub(crate) async fn delete_bucket_policy(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine
        .set_bucket_document(ctx.bucket()?, BucketDocument::Policy, None)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub(crate) fn get_bucket_policy_status(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    // Stored policies parsed when they were put; one that no longer does
    // is reported public (it is treated as refusing everyone but admins).
    let is_public = match stored_policy(svc, bucket) {
        Ok(record) => record.policy(bucket).map_or(true, |p| p.is_public()),
        Err(e) if e.code == S3ErrorCode::NoSuchBucketPolicy => return Err(e),
        Err(_) => true,
    };
    xml_response(StatusCode::OK, to_xml(&PolicyStatus { is_public }))
}

/// The bucket's own block, or-ed with the server-wide default.
fn effective_block(svc: &ServiceInner, bucket: &str) -> S3Result<PublicAccessBlock> {
    let own = stored_block(svc, bucket)?.unwrap_or_default();
    Ok(svc.config.public_access_block_default.or(own))
}

fn stored_block(svc: &ServiceInner, bucket: &str) -> S3Result<Option<PublicAccessBlock>> {
    Ok(svc
        .engine
        .bucket_document(bucket, BucketDocument::PublicAccessBlock)?
        .map(|d| PublicAccessBlock::decode(&d).unwrap_or(PublicAccessBlock::ALL)))
}

pub(crate) async fn put_public_access_block(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    svc.engine.bucket_info(&bucket)?;
    let (text, _) = read_xml_body(ctx, body).await?;
    let doc: PublicAccessBlockDoc =
        parse(&text).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let flag = |v: &Option<String>| match v.as_deref().map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let block = PublicAccessBlock {
        block_public_acls: flag(&doc.block_public_acls)?,
        ignore_public_acls: flag(&doc.ignore_public_acls)?,
        block_public_policy: flag(&doc.block_public_policy)?,
        restrict_public_buckets: flag(&doc.restrict_public_buckets)?,
    };
    // Not between a PutBucketPolicy's public check and its store.
    let _changes = svc.access_cache.lock_changes().await;
    svc.engine
        .set_bucket_document(
            &bucket,
            BucketDocument::PublicAccessBlock,
            Some(block.encode()),
        )
        .await?;
    empty_response(StatusCode::OK)
}

pub(crate) fn get_public_access_block(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let Some(block) = stored_block(svc, ctx.bucket()?)? else {
        return Err(S3Error::new(
            S3ErrorCode::NoSuchPublicAccessBlockConfiguration,
        ));
    };
    xml_response(
        StatusCode::OK,
        to_xml(&PublicAccessBlockConfiguration {
            block_public_acls: block.block_public_acls,
            ignore_public_acls: block.ignore_public_acls,
            block_public_policy: block.block_public_policy,
            restrict_public_buckets: block.restrict_public_buckets,
        }),
    )
}

pub(crate) async fn delete_public_access_block(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine
        .set_bucket_document(ctx.bucket()?, BucketDocument::PublicAccessBlock, None)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}
