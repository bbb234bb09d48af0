//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort,
//! ListParts.

use std::sync::Arc;

use cairn_storage_engine::{CompletedPart, NewPart, PART_NUMBER_MAX, UploadId};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::body::BodyReader;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{
    check_key, iso8601, object_metadata, parse_copy_source_range, quoted_etag, write_condition,
};
use crate::service::{RequestCtx, RespBody, ServiceInner, empty, empty_response, xml_response};
use crate::xml::{CompleteMultipartUploadDoc, XmlWriter, owner, parse};

use super::object::{check_copy_source_conditions, parse_copy_source};
use super::{PUT_SIZE_MAX_BYTES, body_spec, read_xml_body};

fn upload_id(ctx: &RequestCtx) -> S3Result<UploadId> {
    ctx.query
        .get("uploadId")
        .and_then(UploadId::from_hex)
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchUpload))
}

fn part_number(ctx: &RequestCtx) -> S3Result<u32> {
    let raw = ctx.query.get("partNumber").unwrap_or("");
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
                "partNumber",
                raw,
            )
        })
}

pub(crate) async fn create(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let key = ctx.key()?;
    check_key(key)?;
    let meta = object_metadata(&ctx.parts.headers)?;
    let id = svc.engine.create_upload(bucket, key, meta).await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &id.to_hex());
    xml_response(StatusCode::OK, w.finish("InitiateMultipartUploadResult"))
}

pub(crate) async fn upload_part(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    let n = part_number(ctx)?;
    let id = upload_id(ctx)?;
    // NoSuchUpload before the body is read.
    svc.engine.upload(&bucket, &key, id)?;
    // UploadPartCopy shares UploadPart's route (and metrics label); the
    // copy source header tells them apart.
    if ctx.header("x-amz-copy-source").is_some() {
        return upload_part_copy(svc, ctx, &bucket, &key, id, n).await;
    }
    let spec = body_spec(ctx, PUT_SIZE_MAX_BYTES)?;
    let mut writer = svc.engine.object_writer(&bucket)?;
    let mut reader = BodyReader::new(body, spec);
    while let Some(piece) = reader.next().await? {
        writer.write(piece).await?;
    }
    let digests = reader
        .digests()
        .cloned()
        .ok_or_else(|| S3Error::internal("body ended without digests"))?;
    svc.metrics.received_bytes.inc_by(digests.len);
    let staged = writer.finish().await?;
    let checksums = digests
        .checksum
        .iter()
        .map(|(a, v)| (a.as_sdk_name().to_owned(), v.clone()))
        .collect();
    svc.engine
        .commit_part(
            &bucket,
            &key,
            id,
            n,
            NewPart {
                staged,
                md5: digests.md5,
                checksums,
            },
        )
        .await?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted_etag(&hex::encode(digests.md5)));
    if let Some((algo, value)) = &digests.checksum {
        resp = resp.header(algo.header_name(), value.as_str());
    }
    resp.body(empty()).map_err(S3Error::internal)
}

/// UploadPartCopy: part `n` from (a range of) an existing object. Whole
/// source chunks inside the range are referenced, not stored again (see
/// `Engine::copy_part`); the conditions and the copied bytes are of the
/// same source version.
async fn upload_part_copy(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    bucket: &str,
    key: &str,
    id: UploadId,
    n: u32,
) -> S3Result<Response<RespBody>> {
    let (src_bucket, src_key) = parse_copy_source(ctx.header("x-amz-copy-source").unwrap_or(""))?;
    let src = svc.engine.head_object(&src_bucket, &src_key)?;
    check_copy_source_conditions(ctx, &src)?;
    let (start, end) = match ctx.header("x-amz-copy-source-range") {
        None => (0, src.size),
        Some(v) => {
            let r = parse_copy_source_range(v, src.size)?;
            (r.start, r.end)
        }
    };
    if end - start > PUT_SIZE_MAX_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {PUT_SIZE_MAX_BYTES}"
            ),
        ));
    }
    let part = svc
        .engine
        .copy_part(&src, (start, end), bucket, key, id, n)
        .await?;
    let mut w = XmlWriter::new("CopyPartResult");
    w.elem("LastModified", &iso8601(part.last_modified_ms))
        .elem("ETag", &quoted_etag(&hex::encode(part.md5)));
    xml_response(StatusCode::OK, w.finish("CopyPartResult"))
}

pub(crate) async fn complete(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    let id = upload_id(ctx)?;
    let cond = write_condition(&ctx.parts.headers)?;
    svc.engine.upload(&bucket, &key, id)?;
    let (doc, _) = read_xml_body(ctx, body).await?;
    let doc: CompleteMultipartUploadDoc =
        parse(&doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    if doc.parts.is_empty() || doc.parts.len() > PART_NUMBER_MAX as usize {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let parts = doc
        .parts
        .into_iter()
        .map(|p| CompletedPart {
            part_number: p.part_number,
            etag: p.etag,
        })
        .collect();
    let version = svc
        .engine
        .complete_upload_if(&bucket, &key, id, parts, cond)
        .await?;
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", &format!("/{bucket}/{key}"))
        .elem("Bucket", &bucket)
        .elem("Key", &key)
        .elem("ETag", &quoted_etag(&version.etag));
    xml_response(StatusCode::OK, w.finish("CompleteMultipartUploadResult"))
}

pub(crate) async fn abort(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let id = upload_id(ctx)?;
    svc.engine
        .abort_upload(ctx.bucket()?, ctx.key()?, id)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_parts(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let key = ctx.key()?;
    let id = upload_id(ctx)?;
    let marker = match ctx.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v.parse::<u32>().map_err(|_| {
            S3Error::invalid_argument(
                "Provided part-number-marker not an integer or within integer range",
                "part-number-marker",
                v,
            )
        })?,
    };
    let max_parts = match ctx.query.get("max-parts") {
        None => 1000,
        Some(v) => v
            .parse::<u32>()
            .map(|n| n.min(1000) as usize)
            .map_err(|_| {
                S3Error::invalid_argument(
                    "Provided max-parts not an integer or within integer range",
                    "max-parts",
                    v,
                )
            })?,
    };
    let page = svc
        .engine
        .list_parts(bucket, key, id, marker, max_parts)
        .await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &id.to_hex());
    owner(&mut w, "Initiator");
    owner(&mut w, "Owner");
    w.elem("StorageClass", "STANDARD")
        .elem("PartNumberMarker", &marker.to_string());
    if let Some((last, _)) = page.parts.last() {
        w.elem("NextPartNumberMarker", &last.to_string());
    }
    w.elem("MaxParts", &max_parts.to_string()).elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    for (n, p) in &page.parts {
        w.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &iso8601(p.last_modified_ms))
            .elem("ETag", &quoted_etag(&hex::encode(p.md5)))
            .elem("Size", &p.size.to_string());
        for (algo, value) in &p.checksums {
            w.elem(&format!("Checksum{algo}"), value);
        }
        w.close("Part");
    }
    xml_response(StatusCode::OK, w.finish("ListPartsResult"))
}
