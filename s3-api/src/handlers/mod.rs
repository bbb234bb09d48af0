//! Request handlers, one module per resource family. Each returns an S3
//! response or an [`S3Error`]; rendering errors is the service's job.

mod acl;
mod bucket;
mod bucket_config;
mod cors;
mod encryption;
mod lifecycle;
mod list;
mod multipart;
mod notification;
mod object;
mod object_lock;
mod policy;
pub(crate) mod post_object;
mod tagging;

/// A copy's source as the copy handlers parse it: authorization offers the
/// same value to bucket policies (`s3:x-amz-copy-source`).
pub(crate) use object::{CopySource, parse_copy_source};

use std::sync::Arc;

use cairn_storage_engine::BucketDocument;

use http::Response;
use hyper::body::Incoming;

use crate::body::BodySpec;
use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{checksum_expectation, content_md5, header_str};
use crate::response::RespBody;
use crate::router::Operation;

/// Cairn's one account, as S3 names an owner: what ListBuckets shows, and
/// the owner of a bucket made before buckets kept the key that created
/// them.
pub(crate) fn owner() -> crate::xml::Owner<'static> {
    crate::xml::Owner {
        id: crate::OWNER_ID.into(),
        display_name: crate::OWNER_DISPLAY_NAME.into(),
    }
}

/// The owner of `bucket` and (Object Ownership "bucket owner enforced")
/// of every object in it, as ACLs and listings name it: the access key
/// that created the bucket — by its canonical user id (never its access
/// key id; `Engine::canonical_user_id`) and its name as the display name —
/// or [`owner`] for a bucket without a recorded owner.
pub(crate) fn bucket_owner(
    svc: &ServiceInner,
    bucket: &str,
) -> S3Result<crate::xml::Owner<'static>> {
    let info = svc.engine.bucket_info(bucket)?;
    Ok(owner_of(svc, &info.owner))
}

/// [`bucket_owner`] from a recorded owner's access key id (empty: none).
pub(crate) fn owner_of(svc: &ServiceInner, owner_key_id: &str) -> crate::xml::Owner<'static> {
    if owner_key_id.is_empty() {
        return owner();
    }
    let id = svc.engine.canonical_user_id(owner_key_id);
    let name = svc
        .keys
        .identity(owner_key_id)
        .map(|(_, name)| name)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| id.clone());
    crate::xml::Owner {
        id: id.into(),
        display_name: name.into(),
    }
}

pub(crate) async fn handle(
    svc: &Arc<ServiceInner>,
    op: Operation,
    mut ctx: RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    use Operation::*;
    // What `body_spec` hands every body reader (the service's limits).
    ctx.parts
        .extensions
        .insert(crate::body::BodyTimeouts::from_config(&svc.config));
    if matches!(
        op,
        CreateBucket | PutObject | CopyObject | CreateMultipartUpload | PutBucketAcl | PutObjectAcl
    ) {
        acl::check_acl_headers(op, &ctx.parts.headers)?;
    }
    match op {
        ListBuckets => bucket::list_buckets(svc, &ctx),
        CreateBucket => bucket::create_bucket(svc, &mut ctx, body).await,
        HeadBucket => bucket::head_bucket(svc, &ctx),
        DeleteBucket => bucket::delete_bucket(svc, &ctx).await,
        GetBucketLocation => bucket::get_bucket_location(svc, &ctx),
        GetBucketVersioning => bucket::get_bucket_versioning(svc, &ctx),
        PutBucketVersioning => bucket::put_bucket_versioning(svc, &mut ctx, body).await,
        GetBucketAcl => bucket::get_acl(svc, &ctx, false),
        GetObjectAcl => bucket::get_acl(svc, &ctx, true),
        PutBucketAcl => acl::put_acl(svc, &mut ctx, body, false).await,
        PutObjectAcl => acl::put_acl(svc, &mut ctx, body, true).await,
        GetObjectTagging => tagging::get_object_tagging(svc, &ctx),
        PutObjectTagging => tagging::put_object_tagging(svc, &mut ctx, body).await,
        DeleteObjectTagging => tagging::delete_object_tagging(svc, &ctx).await,
        GetBucketTagging => tagging::get_bucket_tagging(svc, &ctx),
        PutBucketTagging => tagging::put_bucket_tagging(svc, &mut ctx, body).await,
        DeleteBucketTagging => tagging::delete_bucket_tagging(svc, &ctx).await,
        ListObjects => list::list_objects(svc, &ctx, false).await,
        ListObjectsV2 => list::list_objects(svc, &ctx, true).await,
        ListMultipartUploads => list::list_multipart_uploads(svc, &ctx).await,
        ListObjectVersions => list::list_object_versions(svc, &ctx).await,
        DeleteObjects => object::delete_objects(svc, &mut ctx, body).await,
        PutObject => object::put_object(svc, &mut ctx, body).await,
        CopyObject => object::copy_object(svc, &ctx).await,
        GetObject | GetObjectAttributes => object::get_object(svc, &ctx, false).await,
        HeadObject => object::get_object(svc, &ctx, true).await,
        DeleteObject => object::delete_object(svc, &ctx).await,
        CreateMultipartUpload => multipart::create(svc, &ctx).await,
        UploadPart | UploadPartCopy => multipart::upload_part(svc, &mut ctx, body).await,
        CompleteMultipartUpload => multipart::complete(svc, &mut ctx, body).await,
        AbortMultipartUpload => multipart::abort(svc, &ctx).await,
        ListParts => multipart::list_parts(svc, &ctx).await,
        GetBucketConfig(sub) => bucket_config::get_bucket_config(svc, &ctx, sub),
        DeleteBucketConfig(_) => bucket_config::delete_bucket_config(svc, &ctx),
        GetObjectLockConfiguration => object_lock::get_object_lock_configuration(svc, &ctx),
        PutObjectLockConfiguration => {
            object_lock::put_object_lock_configuration(svc, &mut ctx, body).await
        }
        GetObjectRetention => object_lock::get_object_retention(svc, &ctx),
        PutObjectRetention => object_lock::put_object_retention(svc, &mut ctx, body).await,
        GetObjectLegalHold => object_lock::get_object_legal_hold(svc, &ctx),
        PutObjectLegalHold => object_lock::put_object_legal_hold(svc, &mut ctx, body).await,
        GetBucketLifecycleConfiguration => lifecycle::get_bucket_lifecycle(svc, &ctx),
        PutBucketLifecycleConfiguration => {
            lifecycle::put_bucket_lifecycle(svc, &mut ctx, body).await
        }
        DeleteBucketLifecycle => lifecycle::delete_bucket_lifecycle(svc, &ctx).await,
        PutBucketPolicy => policy::put_bucket_policy(svc, &mut ctx, body).await,
        GetBucketPolicy => policy::get_bucket_policy(svc, &ctx),
        DeleteBucketPolicy => policy::delete_bucket_policy(svc, &ctx).await,
        GetBucketPolicyStatus => policy::get_bucket_policy_status(svc, &ctx),
        PutBucketNotificationConfiguration => {
            notification::put_bucket_notification_configuration(svc, &mut ctx, body).await
        }
        GetBucketNotificationConfiguration => {
            notification::get_bucket_notification_configuration(svc, &ctx)
        }
        PutPublicAccessBlock => policy::put_public_access_block(svc, &mut ctx, body).await,
        GetPublicAccessBlock => policy::get_public_access_block(svc, &ctx),
        DeletePublicAccessBlock => policy::delete_public_access_block(svc, &ctx).await,
        PutBucketCors => cors::put_bucket_cors(svc, &mut ctx, body).await,
        GetBucketCors => cors::get_bucket_cors(svc, &ctx),
        DeleteBucketCors => delete_bucket_document(svc, &ctx, BucketDocument::Cors).await,
        PutBucketEncryption => encryption::put_bucket_encryption(svc, &mut ctx, body).await,
        GetBucketEncryption => encryption::get_bucket_encryption(svc, &ctx),
        DeleteBucketEncryption => {
            delete_bucket_document(svc, &ctx, BucketDocument::Encryption).await
        }
        // Answered by the service before authentication (the preflight), or
        // authenticated by its own form (POST Object); never routed here.
        CorsPreflight | PostObject => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        Unsupported(what) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("{what} is not implemented by this server."),
        )),
        MethodNotAllowed => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    }
}

/// Largest single PUT / UploadPart body (S3: 5 GiB).
pub(crate) const PUT_SIZE_MAX_BYTES: u64 = 5 << 30;
/// Largest XML request document we read.
pub(crate) const XML_BODY_MAX_BYTES: u64 = 2 << 20;

/// Everything known about a request body before reading it.
pub(crate) fn body_spec(ctx: &mut RequestCtx, max_len: u64) -> S3Result<BodySpec> {
    let h = &ctx.parts.headers;
    let payload = ctx.auth.payload;
    let parse_len =
        |name: &str| -> S3Result<Option<u64>> {
            match header_str(h, name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                    S3Error::invalid_argument(format!("Invalid {name} header."), name, v)
                }),
            }
        };
    let declared_len = if payload.is_streaming() {
        Some(
            parse_len("x-amz-decoded-content-length")?
                .ok_or_else(|| S3Error::new(S3ErrorCode::MissingContentLength))?,
        )
    } else {
        parse_len("content-length")?
    };
    if declared_len.is_some_and(|l| l > max_len) {
        return Err(S3Error::new(S3ErrorCode::EntityTooLarge)
            .field("ProposedSize", declared_len.unwrap_or(0).to_string())
            .field("MaxSizeAllowed", max_len.to_string()));
    }
    Ok(BodySpec {
        payload,
        chunk_signer: ctx.auth.chunk_signer.take(),
        declared_len,
        max_len,
        min_len: 0,
        content_md5: content_md5(h)?,
        checksum: checksum_expectation(h, payload)?,
        timeouts: ctx
            .parts
            .extensions
            .get::<crate::body::BodyTimeouts>()
            .copied()
            .unwrap_or_default(),
    })
}

/// Operations S3 refuses without a body digest (DeleteObjects,
/// PutObjectTagging): `Content-MD5` or an `x-amz-checksum-*` header or
/// trailer. The digest itself is verified while the body is read.
pub(crate) fn require_integrity_header(ctx: &RequestCtx) -> S3Result<()> {
    if !has_integrity_header(&ctx.parts.headers) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    Ok(())
}

/// Whether a request carries a check of its body S3 accepts where it
/// requires one: `Content-MD5`, an `x-amz-checksum-*` header or a trailer.
pub(crate) fn has_integrity_header(h: &http::HeaderMap) -> bool {
    h.contains_key("content-md5")
        || h.contains_key("x-amz-trailer")
        || h.keys()
            .any(|k| crate::auth::ChecksumAlgorithm::from_header_name(k.as_str()).is_some())
}

/// DeleteBucketCors, DeleteBucketEncryption, …: removes the document (none
/// stored is fine: 204 either way, as S3).
async fn delete_bucket_document(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    kind: BucketDocument,
) -> S3Result<Response<crate::response::RespBody>> {
    svc.engine
        .set_bucket_document(ctx.bucket()?, kind, None)
        .await?;
    crate::response::empty_response(http::StatusCode::NO_CONTENT)
}

/// Reads and verifies a small XML request body.
pub(crate) async fn read_xml_body(
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<(String, crate::body::BodyDigests)> {
    let spec = body_spec(ctx, XML_BODY_MAX_BYTES)?;
    let (bytes, digests) = crate::body::BodyReader::new(body, spec)
        .read_to_end()
        .await
        .map_err(|e| match e {
            crate::body::BodyError::TooLarge => S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "The XML document is larger than this server accepts.",
            ),
            other => other.into(),
        })?;
    let text =
        String::from_utf8(bytes.to_vec()).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    Ok((text, digests))
}
