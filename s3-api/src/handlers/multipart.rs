//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort,
//! ListParts.

use std::sync::{Arc, Mutex};

use cairn_storage_engine::{
    CompletedPart, EngineError, NewPart, ObjectVersion, PART_NUMBER_MAX, PartRecord, UploadId,
};
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;

use crate::auth::{
    CHECKSUM_ALGORITHM_KEY, CHECKSUM_TYPE_KEY, ChecksumAlgorithm, ChecksumType, stored_checksums,
};
use crate::body::{BodyError, BodyReader, ChecksumExpectation};
use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{
    check_key, iso8601, object_metadata, parse_copy_source_range, quoted_etag, write_condition,
};
use crate::response::{RespBody, empty, empty_response, xml_response};
use crate::xml::{
    Checksum, CompleteMultipartUploadDoc, CompleteMultipartUploadResult, CopyPartResult,
    InitiateMultipartUploadResult, ListPartsResult, PartEntry, parse, to_xml,
};

use super::object::{check_copy_source_conditions, readable_copy_source};
use super::{PUT_SIZE_MAX_BYTES, XML_BODY_MAX_BYTES, body_spec};

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
    let mut meta = object_metadata(&ctx.parts.headers)?;
    let declared = declared_checksum(ctx)?;
    if let Some((algo, ty)) = declared {
        // Remembered on the upload record under reserved names (never
        // algorithm names); CompleteMultipartUpload reads them back.
        meta.checksums = vec![
            (
                CHECKSUM_ALGORITHM_KEY.to_owned(),
                algo.as_sdk_name().to_owned(),
            ),
            (CHECKSUM_TYPE_KEY.to_owned(), ty.as_str().to_owned()),
        ];
    }
    let lock = super::object_lock::requested_lock(svc, ctx, bucket, false)?;
    // SSE-C: the upload keeps the key's check; every part must come with
    // the same key.
    let customer_key = crate::sse_c::requested(svc, ctx)?;
    if let Some(k) = &customer_key {
        meta.sse_c = Some(crate::sse_c::for_write(k)?.0);
    }
    // SSE-KMS: the upload keeps its data key wrapped; every part is
    // encrypted under it (no headers needed on the parts).
    if let Some(request) = crate::sse_kms::for_new_object(svc, ctx, bucket, customer_key.is_some())?
    {
        meta.sse_kms = Some(
            crate::sse_kms::begin(svc, &request, bucket, key)
                .await?
                .envelope,
        );
    }
    let meta_envelope = meta.sse_kms.clone();
    let id = svc
        .engine
        .create_upload_with(bucket, key, meta, lock)
        .await?;
    let doc = InitiateMultipartUploadResult {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: id.to_hex().into(),
    };
    let mut resp = xml_response(StatusCode::OK, to_xml(&doc))?;
    if let Some(k) = &customer_key {
        crate::sse_c::echo(resp.headers_mut(), &k.key_md5);
    }
    if let Some(envelope) = &meta_envelope {
        crate::sse_kms::echo(svc, resp.headers_mut(), envelope);
    }
    if let Some((algo, ty)) = declared {
        let h = resp.headers_mut();
        h.insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(algo.as_sdk_name()),
        );
        h.insert("x-amz-checksum-type", HeaderValue::from_static(ty.as_str()));
    }
    Ok(resp)
}

/// CreateMultipartUpload's `x-amz-checksum-algorithm` and
/// `x-amz-checksum-type` (defaulting to the algorithm's default type).
/// A type without an algorithm, or one the algorithm does not support
/// (FULL_OBJECT with SHA, COMPOSITE with CRC64NVME), is refused as S3 does.
fn declared_checksum(ctx: &RequestCtx) -> S3Result<Option<(ChecksumAlgorithm, ChecksumType)>> {
    let algo = match ctx.header("x-amz-checksum-algorithm") {
        None => None,
        Some(v) => Some(ChecksumAlgorithm::from_sdk_name(v.trim()).ok_or_else(|| {
            S3Error::invalid_argument(
                "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
                "x-amz-checksum-algorithm",
                v,
            )
        })?),
    };
    let ty = match ctx.header("x-amz-checksum-type") {
        None => None,
        Some(v) => Some(ChecksumType::parse(v).ok_or_else(|| {
            S3Error::invalid_argument(
                "Value for x-amz-checksum-type header is invalid.",
                "x-amz-checksum-type",
                v,
            )
        })?),
    };
    match (algo, ty) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
        )),
        (Some(a), ty) => {
            let ty = ty.unwrap_or_else(|| a.default_type());
            if !a.supports(ty) {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "The {} checksum type cannot be used with the {} checksum algorithm.",
                        ty.as_str(),
                        a.as_sdk_name().to_lowercase()
                    ),
                ));
            }
            Ok(Some((a, ty)))
        }
    }
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
    let upload = svc.engine.upload(&bucket, &key, id)?;
    // UploadPartCopy (routed apart by the same header) shares the checks above.
    if ctx.header("x-amz-copy-source").is_some() {
        return upload_part_copy(svc, ctx, &bucket, &key, &upload.meta, id, n).await;
    }
    let sse_c = match crate::sse_c::for_upload(svc, ctx, &upload.meta) {
        Ok(s) => s,
        Err(e) => return Err(super::object::refuse_before_body(ctx, body, e).await),
    };
    let kms = match crate::sse_kms::for_existing(svc, &upload.meta, &bucket, &key) {
        Ok(c) => c,
        Err(e) => return Err(super::object::refuse_before_body(ctx, body, e).await),
    };
    // Every part upload gets its own keystream (never reused, even when a
    // part number is uploaded again); the part record keeps its id.
    let base = match (&sse_c, &kms) {
        (Some((base, _)), _) => Some(base),
        (None, Some(base)) => Some(base),
        (None, None) => None,
    };
    let (mut cipher, cipher_stream) = match base {
        Some(base) => {
            let stream =
                cairn_crypto::customer_key::new_part_stream().map_err(S3Error::internal)?;
            (Some(base.for_stream(stream)), stream)
        }
        None => (None, 0),
    };
    let spec = body_spec(ctx, PUT_SIZE_MAX_BYTES)?;
    let mut writer = svc.engine.object_writer(&bucket)?;
    let mut reader = BodyReader::new(body, spec);
    while let Some(piece) = reader.next().await? {
        let piece = match &mut cipher {
            Some(c) => crate::sse_c::apply(c, piece),
            None => piece,
        };
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
    // An SSE-C or SSE-KMS part's ETag (and so the object's) is keyed,
    // never the MD5.
    let md5 = match &cipher {
        Some(c) => c.tag(&digests.md5),
        None => digests.md5,
    };
    svc.engine
        .commit_part(
            &bucket,
            &key,
            id,
            n,
            NewPart {
                staged,
                md5,
                checksums,
                cipher_stream,
            },
        )
        .await?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted_etag(&hex::encode(md5)));
    if let (Some((_, key_md5)), Some(h)) = (&sse_c, resp.headers_mut()) {
        crate::sse_c::echo(h, key_md5);
    }
    if let (Some(envelope), Some(h)) = (&upload.meta.sse_kms, resp.headers_mut()) {
        crate::sse_kms::echo(svc, h, envelope);
    }
    if let Some((algo, value)) = &digests.checksum {
        resp = resp.header(algo.header_name(), value.as_str());
    }
    resp.body(empty()).map_err(S3Error::internal)
}

/// UploadPartCopy: part `n` from (a range of) an existing object. Whole
/// source chunks inside the range are referenced, not stored again (see
/// `Engine::copy_part`); the conditions and the copied bytes are of the
/// same source version.
#[allow(clippy::too_many_arguments)]
async fn upload_part_copy(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    bucket: &str,
    key: &str,
    upload_meta: &cairn_storage_engine::ObjectMetadata,
    id: UploadId,
    n: u32,
) -> S3Result<Response<RespBody>> {
    // The upload's customer key (every part of an SSE-C upload needs it)
    // and the source's, both checked before anything is read.
    let dest_customer = crate::sse_c::for_upload(svc, ctx, upload_meta)?;
    let dest_kms = crate::sse_kms::for_existing(svc, upload_meta, bucket, key)?;
    let source = readable_copy_source(svc, ctx)?;
    let src = super::object::copy_source_version(
        svc,
        &source.bucket,
        &source.key,
        source.version.as_ref(),
    )?;
    check_copy_source_conditions(ctx, &src)?;
    let src_customer = crate::sse_c::for_copy_source(svc, ctx, &src)?;
    let src_cipher = match src_customer {
        Some((c, _)) => Some(c),
        None => crate::sse_kms::for_existing(svc, &src.meta, &source.bucket, &source.key)?,
    };
    let dest_base = match (&dest_customer, &dest_kms) {
        (Some((base, _)), _) => Some(base),
        (None, Some(base)) => Some(base),
        (None, None) => None,
    };
    let (dest_cipher, cipher_stream) = match dest_base {
        Some(base) => {
            let stream =
                cairn_crypto::customer_key::new_part_stream().map_err(S3Error::internal)?;
            (Some(base.for_stream(stream)), stream)
        }
        None => (None, 0),
    };
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
    let part = if src_cipher.is_some() || dest_cipher.is_some() {
        // Bytes under a customer or KMS key, or to be put under one, cannot
        // be referenced: they go through the ciphers.
        let decrypt = src_cipher.map(|c| crate::sse_c::ObjectDecryptor::new(c, &src, start));
        let mut encrypt = dest_cipher;
        let mut writer = svc.engine.object_writer(bucket)?;
        let mut reader = svc.engine.read_version(src.clone(), Some((start, end)))?;
        let md5 =
            crate::sse_c::copy_through(&mut reader, decrypt, encrypt.as_mut(), &mut writer).await?;
        let staged = writer.finish().await?;
        let md5 = match &encrypt {
            Some(c) => c.tag(&md5),
            None => md5,
        };
        svc.engine
            .commit_part(
                bucket,
                key,
                id,
                n,
                NewPart {
                    staged,
                    md5,
                    checksums: Default::default(),
                    cipher_stream,
                },
            )
            .await?
    } else {
        svc.engine
            .copy_part(&src, (start, end), bucket, key, id, n)
            .await?
    };
    let doc = CopyPartResult {
        last_modified: iso8601(part.last_modified_ms).into(),
        etag: quoted_etag(&hex::encode(part.md5)).into(),
    };
    let mut resp = xml_response(StatusCode::OK, to_xml(&doc))?;
    if let Some((_, key_md5)) = &dest_customer {
        crate::sse_c::echo(resp.headers_mut(), key_md5);
    }
    if let Some(envelope) = &upload_meta.sse_kms {
        crate::sse_kms::echo(svc, resp.headers_mut(), envelope);
    }
    if let Some(id) = crate::headers::version_id_header(&src)
        && let Ok(v) = http::HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert("x-amz-copy-source-version-id", v);
    }
    Ok(resp)
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
    let upload = match svc.engine.upload(&bucket, &key, id) {
        Ok(u) => u,
        Err(EngineError::NoSuchUpload) => {
            // A repeated Complete (an SDK retrying after a lost answer):
            // while the object it made is still the key's current version,
            // answer as the first time, as S3 does.
            return repeated_complete(svc, &bucket, &key, id);
        }
        Err(e) => return Err(e.into()),
    };
    // SSE-C headers are optional on Complete; if sent, they must be the
    // upload's key.
    let customer_key = match crate::sse_c::requested(svc, ctx)? {
        Some(_) => crate::sse_c::for_upload(svc, ctx, &upload.meta)?.map(|(_, md5)| md5),
        None => None,
    };
    let plan = ChecksumPlan::new(ctx, &upload.meta.checksums)?;
    // The whole-object checksum header (a composite value may carry its
    // `-N`) is the plan's now; the body is checked only against a trailer.
    for algo in ChecksumAlgorithm::ALL {
        ctx.parts.headers.remove(algo.header_name());
    }
    // On CompleteMultipartUpload an `x-amz-checksum-*` header is the
    // object's checksum (checked by `ChecksumPlan`), not the XML body's: only
    // a trailer checksum is verified against the body.
    let spec = body_spec(ctx, XML_BODY_MAX_BYTES)?;
    debug_assert!(!matches!(
        spec.checksum,
        Some((_, ChecksumExpectation::Header(_)))
    ));
    let bytes = BodyReader::new(body, spec)
        .read_to_end()
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "The XML document is larger than this server accepts.",
            ),
            other => other.into(),
        })?
        .0;
    let doc = std::str::from_utf8(&bytes).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let doc: CompleteMultipartUploadDoc =
        parse(doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    if doc.parts.is_empty() || doc.parts.len() > PART_NUMBER_MAX as usize {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let mut listed = Vec::with_capacity(doc.parts.len());
    let mut parts = Vec::with_capacity(doc.parts.len());
    for p in doc.parts {
        let sums: Vec<(&'static str, String)> = p
            .checksums()
            .into_iter()
            .map(|(name, v)| (name, v.to_owned()))
            .collect();
        listed.push((p.part_number, sums));
        parts.push(CompletedPart {
            part_number: p.part_number,
            etag: p.etag,
        });
    }
    // An S3 error found inside the engine's critical section (the callback
    // can only return engine errors) is handed back through this slot.
    let failure: Arc<Mutex<Option<S3Error>>> = Arc::new(Mutex::new(None));
    let slot = failure.clone();
    let derive = move |chosen: &[(u32, PartRecord)]| {
        check_listed_part_checksums(&listed, chosen)?;
        plan.derive(chosen).map_err(|e| {
            if let Ok(mut g) = slot.lock() {
                *g = Some(e);
            }
            EngineError::Internal("multipart checksum check failed".into())
        })
    };
    let version = match svc
        .engine
        .complete_upload_if(&bucket, &key, id, parts, cond, derive)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            let found = failure.lock().ok().and_then(|mut g| g.take());
            return match (found, e) {
                (Some(f), _) => Err(f),
                // Completed by a request racing this one.
                (None, EngineError::NoSuchUpload) => repeated_complete(svc, &bucket, &key, id),
                (None, e) => Err(e.into()),
            };
        }
    };
    let mut resp = complete_result(svc, &bucket, &key, &version)?;
    if let Some(key_md5) = &customer_key {
        crate::sse_c::echo(resp.headers_mut(), key_md5);
    }
    Ok(resp)
}

/// A Complete of an upload that no longer exists: if the key's current
/// version is the object that upload made (it carries the upload's id), the
/// upload was completed — answer with its result, as S3 answers a retried
/// Complete; otherwise `NoSuchUpload`.
fn repeated_complete(
    svc: &Arc<ServiceInner>,
    bucket: &str,
    key: &str,
    id: UploadId,
) -> S3Result<Response<RespBody>> {
    match svc.engine.head_object(bucket, key) {
        Ok(v) if v.version_id.0 == id.0 => complete_result(svc, bucket, key, &v),
        _ => Err(S3Error::new(S3ErrorCode::NoSuchUpload)),
    }
    // A version that is no longer current (a later PUT of the key in a
    // versioned bucket) is not looked for: that retry gets NoSuchUpload.
}

/// The CompleteMultipartUploadResult for the version a Complete made.
fn complete_result(
    svc: &ServiceInner,
    bucket: &str,
    key: &str,
    version: &ObjectVersion,
) -> S3Result<Response<RespBody>> {
    let (checksums, ty) = stored_checksums(&version.meta.checksums);
    let doc = CompleteMultipartUploadResult {
        location: format!("/{bucket}/{key}").into(),
        bucket: bucket.into(),
        key: key.into(),
        etag: quoted_etag(&version.etag).into(),
        checksum_type: (!checksums.is_empty()).then(|| ty.as_str().into()),
        checksums: checksums
            .into_iter()
            .map(|(algo, value)| Checksum {
                algorithm: algo.as_sdk_name(),
                value: value.into(),
            })
            .collect(),
    };
    let mut resp = xml_response(StatusCode::OK, to_xml(&doc))?;
    if let Some(id) = crate::headers::version_id_header(version)
        && let Ok(v) = http::HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert("x-amz-version-id", v);
    }
    if let Some(v) = svc.engine.lifecycle_expiration(bucket, key, version)?
        && let Ok(v) = http::HeaderValue::from_str(&v)
    {
        resp.headers_mut().insert("x-amz-expiration", v);
    }
    // A repeated Complete answers like the first, encryption included.
    if let Some(envelope) = &version.meta.sse_kms {
        crate::sse_kms::echo(svc, resp.headers_mut(), envelope);
    }
    Ok(resp)
}

/// Per-part checksums listed in the Complete document must equal the ones
/// stored with the chosen parts (compared as raw bytes); otherwise the part
/// is `InvalidPart`, as S3 answers.
fn check_listed_part_checksums(
    listed: &[(u32, Vec<(&'static str, String)>)],
    chosen: &[(u32, PartRecord)],
) -> Result<(), EngineError> {
    for ((n, sums), (chosen_n, rec)) in listed.iter().zip(chosen) {
        // The engine chose the parts in the document's order; anything else
        // is a broken invariant, refused rather than checked against the
        // wrong part.
        if n != chosen_n {
            return Err(EngineError::Internal(
                "chosen parts out of the document's order".into(),
            ));
        }
        for (name, value) in sums {
            let Some(algo) = ChecksumAlgorithm::from_sdk_name(name) else {
                continue;
            };
            let stored = rec
                .checksums
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| algo.decode_value(v));
            if stored.is_none() || stored != algo.decode_value(value) {
                return Err(EngineError::InvalidPart {
                    part_number: *chosen_n,
                });
            }
        }
    }
    Ok(())
}

/// What CompleteMultipartUpload derives as the object's checksum: the
/// algorithm and type declared at CreateMultipartUpload (else the one
/// algorithm every chosen part carries, with its default type, or the type
/// the Complete request names), and the whole-object value the client may
/// send in `x-amz-checksum-<algorithm>` to be checked.
struct ChecksumPlan {
    declared: Option<ChecksumAlgorithm>,
    ty: Option<ChecksumType>,
    expected: Option<(ChecksumAlgorithm, String)>,
}

impl ChecksumPlan {
    fn new(ctx: &RequestCtx, upload_meta: &[(String, String)]) -> S3Result<ChecksumPlan> {
        let entry = |name: &str| {
            upload_meta
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let declared = entry(CHECKSUM_ALGORITHM_KEY).and_then(ChecksumAlgorithm::from_sdk_name);
        let declared_ty = entry(CHECKSUM_TYPE_KEY).and_then(ChecksumType::parse);
        let requested_ty = match ctx.header("x-amz-checksum-type") {
            None => None,
            Some(v) => Some(ChecksumType::parse(v).ok_or_else(|| {
                S3Error::invalid_argument(
                    "Value for x-amz-checksum-type header is invalid.",
                    "x-amz-checksum-type",
                    v,
                )
            })?),
        };
        if let (Some(d), Some(r)) = (declared_ty, requested_ty)
            && d != r
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                    d.as_str()
                ),
            ));
        }
        let mut expected = None;
        for algo in ChecksumAlgorithm::ALL {
            if let Some(v) = ctx.header(algo.header_name()) {
                if expected.is_some() {
                    return Err(S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                    ));
                }
                expected = Some((algo, v.trim().to_owned()));
            }
        }
        Ok(ChecksumPlan {
            declared,
            ty: declared_ty.or(requested_ty),
            expected,
        })
    }

    /// The object's `meta.checksums` for exactly the chosen parts: the value
    /// and the reserved type entry, or nothing when the parts do not all
    /// carry the algorithm.
    fn derive(&self, chosen: &[(u32, PartRecord)]) -> S3Result<Vec<(String, String)>> {
        let derived = self.compute(chosen);
        if let Some((algo, want)) = &self.expected {
            let Some((got_algo, ty, got)) = &derived else {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "The upload has no {} checksum to check the value sent against.",
                        algo.as_sdk_name()
                    ),
                ));
            };
            if got_algo != algo {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "The upload was created using a {} checksum. The complete request specified a {} checksum.",
                        got_algo.as_sdk_name().to_lowercase(),
                        algo.as_sdk_name().to_lowercase()
                    ),
                ));
            }
            // A composite value may be sent with or without its `-N`.
            let matches = match ty {
                ChecksumType::FullObject => want == got,
                ChecksumType::Composite => {
                    want == got || got.rsplit_once('-').is_some_and(|(v, _)| v == want)
                }
            };
            if !matches {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algo.as_sdk_name().to_lowercase()
                    ),
                ));
            }
        }
        Ok(match derived {
            None => Vec::new(),
            Some((algo, ty, value)) => vec![
                (algo.as_sdk_name().to_owned(), value),
                (CHECKSUM_TYPE_KEY.to_owned(), ty.as_str().to_owned()),
            ],
        })
    }

    fn compute(
        &self,
        chosen: &[(u32, PartRecord)],
    ) -> Option<(ChecksumAlgorithm, ChecksumType, String)> {
        let part_algo = |rec: &PartRecord| {
            rec.checksums
                .iter()
                .find_map(|(name, _)| ChecksumAlgorithm::from_sdk_name(name))
        };
        let algo = match self.declared {
            Some(a) => a,
            None => {
                let first = part_algo(&chosen.first()?.1)?;
                if chosen.iter().any(|(_, rec)| part_algo(rec) != Some(first)) {
                    return None;
                }
                first
            }
        };
        let ty = self.ty.unwrap_or_else(|| algo.default_type());
        let mut raws = Vec::with_capacity(chosen.len());
        for (_, rec) in chosen {
            let raw = rec
                .checksums
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(algo.as_sdk_name()))
                .and_then(|(_, v)| algo.decode_value(v))?;
            raws.push((raw, rec.size));
        }
        let value = algo.multipart_checksum(ty, &raws)?;
        Some((algo, ty, value))
    }
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
    let doc = ListPartsResult {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: id.to_hex().into(),
        initiator: super::bucket_owner(svc, bucket)?,
        owner: super::bucket_owner(svc, bucket)?,
        storage_class: "STANDARD".into(),
        part_number_marker: marker,
        next_part_number_marker: page.parts.last().map(|(last, _)| *last),
        max_parts,
        is_truncated: page.is_truncated,
        parts: page
            .parts
            .iter()
            .map(|(n, p)| PartEntry {
                part_number: *n,
                last_modified: iso8601(p.last_modified_ms).into(),
                etag: quoted_etag(&hex::encode(p.md5)).into(),
                size: p.size,
                // As stored with the part (the algorithm's SDK name).
                checksums: p
                    .checksums
                    .iter()
                    .map(|(algo, value)| Checksum {
                        algorithm: algo,
                        value: value.into(),
                    })
                    .collect(),
            })
            .collect(),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}
