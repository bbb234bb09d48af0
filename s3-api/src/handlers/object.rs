//! Object operations: PUT, GET/HEAD (with Range and conditions), DELETE,
//! DeleteObjects and CopyObject.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use cairn_storage_engine::{
    EngineError, EngineResult, ObjectReader, ObjectVersion, VersionRef, Versioning, WriteCondition,
};
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use crate::auth::{ChecksumAlgorithm, stored_checksums};
use crate::body::BodyReader;
use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{
    COPY_SOURCE_CONDITIONS, Precondition, check_key, evaluate_conditions, evaluate_preconditions,
    iso8601, object_metadata, parse_range, parse_version_id, quoted_etag, request_tags,
    version_id_header, write_condition, write_object_headers,
};
use crate::response::{BoxError, RespBody, empty, empty_response, xml_response};
use crate::router::Operation;
use crate::xml::{
    Checksum, CopyObjectResult, DeleteDoc, DeleteEntry, DeleteResult, GetObjectAttributesResponse,
    ObjectChecksum, ObjectPart, ObjectParts, parse, to_xml,
};

use super::{PUT_SIZE_MAX_BYTES, body_spec, read_xml_body, require_integrity_header};

/// Refuses a conditional write before its body is read when the condition
/// already fails. Only an early answer: the engine checks again, atomically
/// with the commit.
fn precheck_write_condition(
    svc: &ServiceInner,
    bucket: &str,
    key: &str,
    cond: &WriteCondition,
) -> S3Result<()> {
    if *cond == WriteCondition::None {
        return Ok(());
    }
    let current = match svc.engine.head_object(bucket, key) {
        Ok(v) => Some(v),
        // A current delete marker: no object.
        Err(EngineError::NoSuchKey | EngineError::DeleteMarker { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    cond.check(current.as_ref()).map_err(S3Error::from)
}

/// `e`, for a request refused before its body was read. A client waiting
/// for `100 Continue` has sent no body; any other is sending one: read it to
/// the end (discarding it) so that it sees the error rather than a
/// connection reset in the middle of its upload.
pub(crate) async fn refuse_before_body(ctx: &RequestCtx, body: Incoming, e: S3Error) -> S3Error {
    if !ctx
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        discard_body(body).await;
    }
    e
}

/// Reads a request body to its end without keeping it (stops at the first
/// transport error: the connection is then unusable anyway).
async fn discard_body(mut body: Incoming) {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
}

/// What a PutObject stores: the request's own body, or the `file` of a
/// POST form (whose policy may bound its size).
pub(crate) enum PutBody {
    Http(Incoming),
    FormFile {
        file: Box<multer::Field<'static>>,
        length: Option<crate::auth::LengthRange>,
    },
}

impl PutBody {
    /// `e`, for a request refused before its body was read (see
    /// [`refuse_before_body`]; a form's file is simply not read).
    async fn refuse(self, ctx: &RequestCtx, e: S3Error) -> S3Error {
        match self {
            PutBody::Http(body) => refuse_before_body(ctx, body, e).await,
            PutBody::FormFile { .. } => e,
        }
    }
}

pub(crate) async fn put_object(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    put_object_from(svc, ctx, PutBody::Http(body)).await
}

/// PutObject, and POST Object once its form was checked: the object is the
/// body's bytes, its settings the request's headers (a form's fields,
/// turned into the headers they stand for).
pub(crate) async fn put_object_from(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: PutBody,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let key = ctx.key()?.to_owned();
    check_key(&key)?;
    let cond = write_condition(&ctx.parts.headers)?;
    let mut meta = object_metadata(&ctx.parts.headers)?;
    let lock = super::object_lock::requested_lock(svc, ctx, &bucket, true)?;
    if let Err(e) = precheck_write_condition(svc, &bucket, &key, &cond) {
        return Err(body.refuse(ctx, e).await);
    }
    // SSE-C: the body is encrypted under the customer's key before the
    // pipeline sees it (crypto's customer_key); the check is all that is kept.
    let customer_key = match crate::sse_c::requested(svc, ctx) {
        Ok(k) => k,
        Err(e) => return Err(body.refuse(ctx, e).await),
    };
    // SSE-KMS (the request's headers or the bucket's default): the body is
    // encrypted under a new data key, kept wrapped by the named key.
    let kms = match crate::sse_kms::for_new_object(svc, ctx, &bucket, customer_key.is_some()) {
        Ok(Some(request)) => match crate::sse_kms::begin(svc, &request, &bucket, &key).await {
            Ok(w) => Some(w),
            Err(e) => return Err(body.refuse(ctx, e).await),
        },
        Ok(None) => None,
        Err(e) => return Err(body.refuse(ctx, e).await),
    };
    let mut cipher = match (&customer_key, kms) {
        (Some(k), _) => {
            let (check, cipher) = crate::sse_c::for_write(k)?;
            meta.sse_c = Some(check);
            Some(cipher)
        }
        (None, Some(w)) => {
            meta.sse_kms = Some(w.envelope);
            Some(w.cipher)
        }
        (None, None) => None,
    };
    let mut spec = body_spec(ctx, PUT_SIZE_MAX_BYTES)?;
    let event = match &body {
        PutBody::Http(_) => cairn_storage_engine::notifications::ObjectEvent::Put,
        PutBody::FormFile { .. } => cairn_storage_engine::notifications::ObjectEvent::Post,
    };
    // Fails with NoSuchBucket before the body is read.
    let mut writer = svc.engine.object_writer(&bucket)?.allow_inline();
    let mut reader = match body {
        PutBody::Http(body) => BodyReader::new(body, spec),
        PutBody::FormFile { file, length } => {
            if let Some(range) = length {
                spec.max_len = spec.max_len.min(range.max);
                spec.min_len = range.min;
            }
            BodyReader::form_file(file, spec)
        }
    };
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
    if let Some((algo, value)) = &digests.checksum {
        meta.checksums = vec![(algo.as_sdk_name().to_owned(), value.clone())];
    }
    let etag = match &cipher {
        Some(c) => crate::sse_c::etag(c, &digests.md5),
        None => hex::encode(digests.md5),
    };
    let version = svc
        .engine
        .commit_object_with(&bucket, &key, staged, etag, meta, cond, lock, event)
        .await?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted_etag(&version.etag));
    if let (Some(k), Some(h)) = (&customer_key, resp.headers_mut()) {
        crate::sse_c::echo(h, &k.key_md5);
    }
    if let (Some(envelope), Some(h)) = (&version.meta.sse_kms, resp.headers_mut()) {
        crate::sse_kms::echo(svc, h, envelope);
    }
    if let Some(id) = version_id_header(&version) {
        resp = resp.header("x-amz-version-id", id);
    }
    if let Some(v) = expiration_header(svc, &bucket, &key, &version)? {
        resp = resp.header("x-amz-expiration", v);
    }
    if let Some((algo, value)) = &digests.checksum {
        resp = resp
            .header(algo.header_name(), value.as_str())
            .header("x-amz-checksum-type", "FULL_OBJECT");
    }
    resp.body(empty()).map_err(S3Error::internal)
}

/// Streams an object to the client. The first piece was read before the
/// response head was sent, so common failures still get a proper status;
/// a later failure aborts the connection (the client sees a short body),
/// never unverified bytes.
struct ObjectBody {
    first: Option<Bytes>,
    reader: Option<ObjectReader>,
    pending: Option<NextPiece>,
    remaining: u64,
    sent: prometheus::IntCounter,
    /// SSE-C: decrypts what the engine returns (positioned at the range's
    /// first byte).
    cipher: Option<crate::sse_c::ObjectDecryptor>,
}

impl ObjectBody {
    fn plain(&mut self, b: Bytes) -> Bytes {
        match &mut self.cipher {
            Some(d) => d.apply(b),
            None => b,
        }
    }
}

type NextPiece = Pin<Box<dyn Future<Output = (ObjectReader, Option<EngineResult<Bytes>>)> + Send>>;

impl Body for ObjectBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(b) = this.first.take() {
            let b = this.plain(b);
            this.remaining = this.remaining.saturating_sub(b.len() as u64);
            this.sent.inc_by(b.len() as u64);
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if this.pending.is_none() {
            let Some(mut reader) = this.reader.take() else {
                return Poll::Ready(None);
            };
            this.pending = Some(Box::pin(async move {
                let item = reader.next_bytes().await;
                (reader, item)
            }));
        }
        let Some(fut) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((reader, item)) => {
                this.pending = None;
                match item {
                    Some(Ok(b)) => {
                        let b = this.plain(b);
                        this.reader = Some(reader);
                        this.remaining = this.remaining.saturating_sub(b.len() as u64);
                        this.sent.inc_by(b.len() as u64);
                        Poll::Ready(Some(Ok(Frame::data(b))))
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "object read failed mid-stream; aborting response");
                        Poll::Ready(Some(Err(Box::new(e))))
                    }
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.reader.is_none() && self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// `x-amz-expiration` for the current version of `key`: when a lifecycle
/// rule of the bucket will expire it, and which rule (none if no rule
/// does, or if the rule id cannot be a header value).
fn expiration_header(
    svc: &ServiceInner,
    bucket: &str,
    key: &str,
    version: &ObjectVersion,
) -> S3Result<Option<HeaderValue>> {
    Ok(svc
        .engine
        .lifecycle_expiration(bucket, key, version)?
        .and_then(|v| HeaderValue::from_str(&v).ok()))
}

/// `response-*` query parameters override stored headers on GET (S3 allows
/// them only on authenticated requests, which all of ours are).
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

pub(crate) async fn get_object(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    head_only: bool,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let key = ctx.key()?;
    let named = ctx.version_id()?;
    let version = svc.engine.head_version(bucket, key, named.as_ref())?;
    // An SSE-C object answers nothing, metadata included, without its key.
    let sse_c = crate::sse_c::for_read(svc, ctx, &version)?;
    // S3 names the `null` version `null` on reads once the bucket has ever
    // had versioning (a PUT's response still omits it, as S3's does).
    let null_id = version.null_version
        && svc.engine.bucket_info(bucket)?.versioning != Versioning::Unversioned;
    let name_null = |h: &mut http::HeaderMap| {
        if null_id {
            h.insert("x-amz-version-id", HeaderValue::from_static("null"));
        }
    };
    let echo_key = |h: &mut http::HeaderMap| {
        if let Some((_, key_md5)) = &sse_c {
            crate::sse_c::echo(h, key_md5);
        }
        if let Some(envelope) = &version.meta.sse_kms {
            crate::sse_kms::echo(svc, h, envelope);
        }
    };
    if ctx.query.has("attributes") {
        let mut resp = object_attributes(ctx, &version)?;
        name_null(resp.headers_mut());
        echo_key(resp.headers_mut());
        return Ok(resp);
    }
    match evaluate_preconditions(&ctx.parts.headers, &version) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed)
                .field("Condition", "If-Match / If-Unmodified-Since"));
        }
        Precondition::NotModified => {
            let mut resp = empty_response(StatusCode::NOT_MODIFIED)?;
            let h = resp.headers_mut();
            name_null(h);
            echo_key(h);
            if let Ok(v) = HeaderValue::from_str(&quoted_etag(&version.etag)) {
                h.insert("etag", v);
            }
            if let Ok(v) =
                HeaderValue::from_str(&crate::headers::http_date(version.last_modified_ms))
            {
                h.insert("last-modified", v);
            }
            if let Some(id) = version_id_header(&version)
                && let Ok(v) = HeaderValue::from_str(&id)
            {
                h.insert("x-amz-version-id", v);
            }
            return Ok(resp);
        }
    }

    // partNumber selects one part of a multipart object (or the whole of a
    // single-PUT object as part 1).
    let mut range = None;
    let mut parts_count = None;
    if let Some(p) = ctx.query.get("partNumber") {
        if ctx.header("range").is_some() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        let n: usize = p
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                S3Error::invalid_argument(
                    "Part number must be an integer between 1 and 10000, inclusive",
                    "partNumber",
                    p,
                )
            })?;
        // A part beyond the last: S3's `416 InvalidPartNumber` (its error
        // table), naming what was asked for and what there is.
        let beyond = |count: usize| {
            S3Error::new(S3ErrorCode::InvalidPartNumber)
                .field("PartNumberRequested", n.to_string())
                .field("ActualPartCount", count.to_string())
        };
        if version.part_sizes.is_empty() {
            if n != 1 {
                return Err(beyond(1));
            }
        } else {
            let Some(size) = version.part_sizes.get(n - 1) else {
                return Err(beyond(version.part_sizes.len()));
            };
            let start: u64 = version.part_sizes[..n - 1].iter().sum();
            range = Some(crate::headers::ByteRange {
                start,
                end: start + size,
            });
            parts_count = Some(version.part_sizes.len());
        }
    } else {
        range = parse_range(ctx.header("range"), version.size)?;
    }

    let (status, start, end) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end),
        None => (StatusCode::OK, 0, version.size),
    };
    let len = end - start;
    let checksum_mode = ctx
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
        && range.is_none();

    let expiration = match named {
        None => expiration_header(svc, bucket, key, &version)?,
        // Rules speak of current versions; a version read by id may not be.
        Some(_) => None,
    };
    let mut builder = Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        write_object_headers(h, &version, checksum_mode);
        name_null(h);
        echo_key(h);
        if let Some(v) = expiration {
            h.insert("x-amz-expiration", v);
        }
        for (param, header) in RESPONSE_OVERRIDES {
            if let Some(v) = ctx.query.get(param)
                && let Ok(hv) = HeaderValue::from_str(v)
            {
                h.insert(header, hv);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
            h.insert("content-length", v);
        }
        if status == StatusCode::PARTIAL_CONTENT
            && let Ok(v) = HeaderValue::from_str(&format!(
                "bytes {start}-{}/{}",
                end.saturating_sub(1),
                version.size
            ))
        {
            h.insert("content-range", v);
        }
        if let Some(n) = parts_count
            && let Ok(v) = HeaderValue::from_str(&n.to_string())
        {
            h.insert("x-amz-mp-parts-count", v);
        }
    }
    // SSE-KMS: the data key is unwrapped only to return bytes (HEAD reads
    // none, so, as on S3, it answers while the key is disabled).
    let kms = if head_only {
        None
    } else {
        crate::sse_kms::for_existing(svc, &version.meta, bucket, key)?
    };
    if head_only || len == 0 {
        return builder.body(empty()).map_err(S3Error::internal);
    }
    let cipher = sse_c
        .map(|(cipher, _)| cipher)
        .or(kms)
        .map(|cipher| crate::sse_c::ObjectDecryptor::new(cipher, &version, start));
    let mut reader = svc.engine.read_version(version, Some((start, end)))?;
    let first = match reader.next_bytes().await {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return Err(e.into()),
        None => None,
    };
    let body = ObjectBody {
        first,
        reader: Some(reader),
        pending: None,
        remaining: len,
        sent: svc.metrics.sent_bytes.clone(),
        cipher,
    };
    builder.body(body.boxed_unsync()).map_err(S3Error::internal)
}

/// The attributes GetObjectAttributes can return.
const OBJECT_ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

/// `x-amz-max-parts` / `x-amz-part-number-marker` of GetObjectAttributes.
fn header_u32(ctx: &RequestCtx, name: &str, default: u32) -> S3Result<u32> {
    match ctx.header(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| S3Error::invalid_argument(format!("Invalid {name} header."), name, v)),
    }
}

/// GetObjectAttributes (`GET ?attributes`, routed with GetObject): what the
/// object record already holds — ETag, the full-object checksum sent with a
/// single PUT or derived at CompleteMultipartUpload (with its type), part count and sizes of a multipart object (as ObjectParts,
/// paged by `x-amz-max-parts` / `x-amz-part-number-marker`), storage class
/// and size. No data is read.
fn object_attributes(ctx: &RequestCtx, version: &ObjectVersion) -> S3Result<Response<RespBody>> {
    let mut wanted = Vec::new();
    for value in ctx.parts.headers.get_all("x-amz-object-attributes") {
        let value = value.to_str().unwrap_or("");
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let known = OBJECT_ATTRIBUTES
                .iter()
                .find(|a| a.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    S3Error::invalid_argument(
                        "Invalid attribute name specified.",
                        "x-amz-object-attributes",
                        name,
                    )
                })?;
            wanted.push(*known);
        }
    }
    if wanted.is_empty() {
        return Err(S3Error::invalid_argument(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
            "x-amz-object-attributes",
            "",
        ));
    }
    let max_parts = header_u32(ctx, "x-amz-max-parts", 1000)?.min(1000);
    let marker = header_u32(ctx, "x-amz-part-number-marker", 0)?;
    let has = |a: &str| wanted.contains(&a);
    let (checksums, checksum_type) = stored_checksums(&version.meta.checksums);
    let doc = GetObjectAttributesResponse {
        // S3 returns this ETag without quotes.
        etag: has("ETag").then(|| (&version.etag).into()),
        checksum: (has("Checksum") && !checksums.is_empty()).then(|| ObjectChecksum {
            checksums: checksums
                .iter()
                .map(|(algo, value)| Checksum {
                    algorithm: algo.as_sdk_name(),
                    value: (*value).into(),
                })
                .collect(),
            checksum_type: checksum_type.as_str().into(),
        }),
        object_parts: (has("ObjectParts") && !version.part_sizes.is_empty()).then(|| {
            let total = version.part_sizes.len();
            let first = (marker as usize).min(total);
            let last = first.saturating_add(max_parts as usize).min(total);
            ObjectParts {
                parts_count: total,
                part_number_marker: marker,
                next_part_number_marker: (last < total).then_some(last),
                max_parts,
                is_truncated: last < total,
                parts: version.part_sizes[first..last]
                    .iter()
                    .enumerate()
                    .map(|(i, size)| ObjectPart {
                        part_number: first + i + 1,
                        size: *size,
                    })
                    .collect(),
            }
        }),
        storage_class: has("StorageClass").then(|| "STANDARD".into()),
        object_size: has("ObjectSize").then_some(version.size),
    };
    let mut resp = xml_response(StatusCode::OK, to_xml(&doc))?;
    if let Ok(v) = HeaderValue::from_str(&crate::headers::http_date(version.last_modified_ms)) {
        resp.headers_mut().insert("last-modified", v);
    }
    if let Some(id) = version_id_header(version)
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert("x-amz-version-id", v);
    }
    Ok(resp)
}

pub(crate) async fn delete_object(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let (bucket, key) = (ctx.bucket()?, ctx.key()?);
    let outcome = match ctx.version_id()? {
        Some(v) => {
            svc.engine
                .delete_version(bucket, key, v, ctx.bypass_governance()?)
                .await?
        }
        None => svc.engine.delete_object(bucket, key).await?,
    };
    let mut resp = empty_response(StatusCode::NO_CONTENT)?;
    let h = resp.headers_mut();
    if let Some(id) = &outcome.version_id
        && let Ok(v) = HeaderValue::from_str(id)
    {
        h.insert("x-amz-version-id", v);
    }
    if outcome.delete_marker {
        h.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// S3's limit on keys per DeleteObjects request.
const DELETE_OBJECTS_MAX: usize = 1000;

pub(crate) async fn delete_objects(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    require_integrity_header(ctx)?;
    svc.engine.bucket_info(&bucket)?;
    let bypass = ctx.bypass_governance()?;
    let (doc, _) = read_xml_body(ctx, body).await?;
    let doc: DeleteDoc = parse(&doc).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    if doc.objects.is_empty() || doc.objects.len() > DELETE_OBJECTS_MAX {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let quiet = doc.quiet.unwrap_or(false);
    let mut entries = Vec::with_capacity(doc.objects.len());
    for obj in &doc.objects {
        let result = if obj.key.len() > crate::headers::KEY_MAX_BYTES {
            Err(S3Error::new(S3ErrorCode::KeyTooLongError))
        } else {
            // Each key is judged as its own DeleteObject would be.
            let allowed = parse_version_id(obj.version_id.as_deref(), "VersionId")
                .and_then(|v| may_delete(svc, ctx, &bucket, &obj.key, v.as_ref()).map(|()| v));
            match allowed {
                Err(e) => Err(e),
                Ok(Some(v)) => svc
                    .engine
                    .delete_version(&bucket, &obj.key, v, bypass)
                    .await
                    .map_err(S3Error::from),
                Ok(None) => svc
                    .engine
                    .delete_object(&bucket, &obj.key)
                    .await
                    .map_err(S3Error::from),
            }
        };
        match result {
            Ok(outcome) => {
                if !quiet {
                    // S3: a removed version is named by VersionId; a placed
                    // marker by DeleteMarkerVersionId; removing a marker
                    // version reports both.
                    let (version_id, marker_version_id) =
                        match (&obj.version_id, outcome.delete_marker) {
                            (Some(v), true) => (Some(v.clone()), Some(v.clone())),
                            (Some(v), false) => (Some(v.clone()), None),
                            (None, true) => (None, outcome.version_id.clone()),
                            (None, false) => (None, None),
                        };
                    entries.push(DeleteEntry::Deleted {
                        key: (&obj.key).into(),
                        version_id: version_id.map(Into::into),
                        delete_marker: outcome.delete_marker,
                        delete_marker_version_id: marker_version_id.map(Into::into),
                    });
                }
            }
            Err(e) => entries.push(DeleteEntry::Error {
                key: (&obj.key).into(),
                version_id: obj.version_id.as_ref().map(Into::into),
                code: e.code.as_str().into(),
                message: e.message.into(),
            }),
        }
    }
    xml_response(StatusCode::OK, to_xml(&DeleteResult { entries }))
}

/// Whether the caller may delete `key` (or its version `version`), as a
/// DeleteObject of it would be judged.
fn may_delete(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    bucket: &str,
    key: &str,
    version: Option<&VersionRef>,
) -> S3Result<()> {
    crate::access::authorize(
        svc,
        &crate::access::AccessRequest {
            op: Operation::DeleteObject,
            action: Operation::DeleteObject
                .s3_action(version.is_some())
                .unwrap_or("s3:DeleteObject"),
            bucket: Some(bucket),
            key: Some(key),
            version,
            caller: &ctx.caller,
            client: ctx.client,
            parts: &ctx.parts,
            query: &ctx.query,
            auth_type: crate::access::AuthType::of(ctx.auth.presigned),
        },
    )
}

/// `x-amz-copy-source-if-*` against the source version (CopyObject,
/// UploadPartCopy). A copy has no 304: every condition that does not hold
/// is a 412.
/// The version a copy reads: as `head_version`, except that a delete
/// marker named by its version id is `400 InvalidRequest` (S3: a copy
/// source may not name a delete marker), not the 405 a GET gets.
pub(crate) fn copy_source_version(
    svc: &ServiceInner,
    bucket: &str,
    key: &str,
    version: Option<&VersionRef>,
) -> S3Result<ObjectVersion> {
    let source = match svc.engine.head_version(bucket, key, version) {
        Err(EngineError::DeleteMarker { named: true, .. }) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The source of a copy request may not specifically refer to a delete marker by version id.",
        )),
        r => Ok(r?),
    }?;
    Ok(source)
}

pub(crate) fn check_copy_source_conditions(ctx: &RequestCtx, src: &ObjectVersion) -> S3Result<()> {
    match evaluate_conditions(&ctx.parts.headers, src, COPY_SOURCE_CONDITIONS) {
        Precondition::Proceed => Ok(()),
        Precondition::Failed => Err(S3Error::new(S3ErrorCode::PreconditionFailed).field(
            "Condition",
            "x-amz-copy-source-If-Match / x-amz-copy-source-If-Unmodified-Since",
        )),
        Precondition::NotModified => Err(S3Error::new(S3ErrorCode::PreconditionFailed).field(
            "Condition",
            "x-amz-copy-source-If-None-Match / x-amz-copy-source-If-Modified-Since",
        )),
    }
}

/// How often CopyObject re-reads a source replaced while it was being
/// copied before answering `409 ConditionalRequestConflict`.
const COPY_SOURCE_ATTEMPTS: u32 = 4;

/// The bucket and key of a copy's `x-amz-copy-source`, which the signing
/// key must be allowed to read (the destination's write grant was checked
/// before the handler ran).
pub(crate) fn readable_copy_source(svc: &ServiceInner, ctx: &RequestCtx) -> S3Result<CopySource> {
    let source = parse_copy_source(ctx.header("x-amz-copy-source").unwrap_or(""))?;
    // Read access to the source, as a GetObject of it would be judged
    // (the source bucket's grants and policy).
    crate::access::authorize(
        svc,
        &crate::access::AccessRequest {
            op: Operation::GetObject,
            action: Operation::GetObject
                .s3_action(source.version.is_some())
                .unwrap_or("s3:GetObject"),
            bucket: Some(&source.bucket),
            key: Some(&source.key),
            version: source.version.as_ref(),
            caller: &ctx.caller,
            client: ctx.client,
            parts: &ctx.parts,
            query: &ctx.query,
            auth_type: crate::access::AuthType::of(ctx.auth.presigned),
        },
    )?;
    Ok(source)
}

/// What `x-amz-copy-source` names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CopySource {
    pub(crate) bucket: String,
    pub(crate) key: String,
    /// Its `?versionId=`; the current version for `None`.
    pub(crate) version: Option<VersionRef>,
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
pub(crate) fn parse_copy_source(raw: &str) -> S3Result<CopySource> {
    let invalid =
        || S3Error::invalid_argument("Invalid copy source object key", "x-amz-copy-source", raw);
    let (path, version) = match raw.split_once('?') {
        Some((p, q)) => (
            p,
            crate::router::Query::parse(Some(q))
                .get("versionId")
                .map(str::to_owned),
        ),
        None => (raw, None),
    };
    let version = parse_version_id(version.as_deref(), "x-amz-copy-source")?;
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid())?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (b, k) = decoded.split_once('/').ok_or_else(invalid)?;
    if b.is_empty() || k.is_empty() {
        return Err(invalid());
    }
    Ok(CopySource {
        bucket: b.to_owned(),
        key: k.to_owned(),
        version,
    })
}

/// `x-amz-metadata-directive` / `x-amz-tagging-directive`: `true` for
/// REPLACE, `false` for COPY (the default).
fn directive(ctx: &RequestCtx, header: &str) -> S3Result<bool> {
    match ctx.header(header) {
        None => Ok(false),
        Some(d) if d.eq_ignore_ascii_case("COPY") => Ok(false),
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => Ok(true),
        Some(d) => Err(S3Error::invalid_argument(
            format!("Unknown {header}."),
            header,
            d,
        )),
    }
}

/// CopyObject of bytes under a customer or KMS key or into one: the source
/// read (decrypted with its key), the destination written as a new object
/// (encrypted under its customer key or a new KMS data key, or not), with
/// the MD5 of the plaintext for its ETag. At most 5 GiB, as any CopyObject.
#[allow(clippy::too_many_arguments)]
async fn copy_through_ciphers(
    svc: &Arc<ServiceInner>,
    src: &ObjectVersion,
    src_cipher: Option<cairn_crypto::customer_key::ObjectCipher>,
    dest_key: Option<&crate::sse_c::RequestedKey>,
    dest_kms: Option<crate::sse_kms::KmsWrite>,
    (bucket, key): (&str, &str),
    mut meta: cairn_storage_engine::ObjectMetadata,
    cond: cairn_storage_engine::WriteCondition,
    lock: cairn_storage_engine::VersionLock,
) -> S3Result<ObjectVersion> {
    if src.size > PUT_SIZE_MAX_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {PUT_SIZE_MAX_BYTES}"
            ),
        ));
    }
    let decrypt = src_cipher.map(|c| crate::sse_c::ObjectDecryptor::new(c, src, 0));
    // The copy is one new stream (a single PUT's), whatever the source's
    // parts were.
    meta.sse_c = None;
    meta.sse_kms = None;
    meta.cipher_streams.clear();
    let mut encrypt = match (dest_key, dest_kms) {
        (Some(k), _) => {
            let (check, cipher) = crate::sse_c::for_write(k)?;
            meta.sse_c = Some(check);
            Some(cipher)
        }
        (None, Some(w)) => {
            meta.sse_kms = Some(w.envelope);
            Some(w.cipher)
        }
        (None, None) => None,
    };
    let mut writer = svc.engine.object_writer(bucket)?.allow_inline();
    let mut reader = svc.engine.read_version(src.clone(), None)?;
    let md5 =
        crate::sse_c::copy_through(&mut reader, decrypt, encrypt.as_mut(), &mut writer).await?;
    let staged = writer.finish().await?;
    let etag = match &encrypt {
        Some(c) => crate::sse_c::etag(c, &md5),
        None => hex::encode(md5),
    };
    Ok(svc
        .engine
        .commit_object_with(
            bucket,
            key,
            staged,
            etag,
            meta,
            cond,
            lock,
            cairn_storage_engine::notifications::ObjectEvent::Copy,
        )
        .await?)
}

pub(crate) async fn copy_object(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let key = ctx.key()?;
    check_key(key)?;
    let cond = write_condition(&ctx.parts.headers)?;
    let CopySource {
        bucket: src_bucket,
        key: src_key,
        version: src_version,
    } = readable_copy_source(svc, ctx)?;
    let replace_meta = directive(ctx, "x-amz-metadata-directive")?;
    let replace_tags = directive(ctx, "x-amz-tagging-directive")?;
    // SSE-C: the destination's key, and whether the source's is given (a
    // copy onto itself that changes the customer key is allowed, as S3's
    // "or encryption attributes").
    let dest_key = crate::sse_c::requested(svc, ctx)?;
    // SSE-KMS for the destination: its headers, or the bucket's default.
    let dest_kms_request = crate::sse_kms::for_new_object(svc, ctx, bucket, dest_key.is_some())?;
    let changes_encryption = dest_key.is_some()
        || ctx
            .parts
            .headers
            .contains_key("x-amz-server-side-encryption")
        || crate::sse_c::requested_for_copy_source(svc, ctx)?.is_some();
    if !replace_meta
        && !changes_encryption
        && src_bucket == bucket
        && src_key == key
        && src_version.is_none()
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let lock = super::object_lock::requested_lock(svc, ctx, bucket, false)?;
    // Validate the request's metadata and tags before touching anything.
    let request_meta = if replace_meta {
        Some(object_metadata(&ctx.parts.headers)?)
    } else {
        None
    };
    let request_tags = if replace_tags {
        Some(request_tags(&ctx.parts.headers)?)
    } else {
        None
    };
    // S3 computes the copy's checksum with this algorithm. The copy keeps
    // the source's checksums (the data is the same), so a source that has
    // one of that algorithm satisfies it; another would need the data read
    // and hashed, which Cairn does not do yet.
    let wanted_checksum = match ctx.header("x-amz-checksum-algorithm") {
        None => None,
        Some(name) => Some(
            ChecksumAlgorithm::from_sdk_name(name.trim()).ok_or_else(|| {
                S3Error::invalid_argument(
                    "Value for x-amz-checksum-algorithm header is invalid.",
                    "x-amz-checksum-algorithm",
                    name,
                )
            })?,
        ),
    };
    // The source's conditions are checked, and its metadata read, on the
    // version the engine then copies: if another writer replaced it in
    // between, the engine refuses (`SourceChanged`) and we start over with
    // the newer version.
    let mut attempt = 0;
    let (version, source) = loop {
        attempt += 1;
        // Always read: its conditions, its metadata for a REPLACE, and its
        // version id for `x-amz-copy-source-version-id`.
        let source = Some(copy_source_version(
            svc,
            &src_bucket,
            &src_key,
            src_version.as_ref(),
        )?);
        let mut src_cipher = None;
        if let Some(src) = &source {
            check_copy_source_conditions(ctx, src)?;
            src_cipher = match crate::sse_c::for_copy_source(svc, ctx, src)? {
                Some((c, _)) => Some(c),
                None => crate::sse_kms::for_existing(svc, &src.meta, &src_bucket, &src_key)?,
            };
            if let Some(algo) = wanted_checksum
                && !stored_checksums(&src.meta.checksums)
                    .0
                    .iter()
                    .any(|(a, _)| *a == algo)
            {
                return Err(S3Error::with_message(
                    S3ErrorCode::NotImplemented,
                    "A header you provided implies functionality that is not implemented: x-amz-checksum-algorithm other than the source object's.",
                )
                .field("Header", "x-amz-checksum-algorithm"));
            }
        }
        // Without a REPLACE the engine copies the source's metadata itself,
        // atomically with the data. With one, the new metadata is built
        // here: content headers and user metadata from the request
        // (REPLACE) or the source, tags likewise by their own directive; the
        // stored checksums describe the data, which is the source's either
        // way.
        let new_meta = match &source {
            Some(src) if replace_meta || replace_tags => {
                let mut meta = request_meta.clone().unwrap_or_else(|| src.meta.clone());
                meta.checksums = src.meta.checksums.clone();
                meta.tags = request_tags
                    .clone()
                    .unwrap_or_else(|| src.meta.tags.clone());
                Some(meta)
            }
            _ => None,
        };
        // Bytes under a customer or KMS key, or to be put under one, cannot
        // be copied by reference: they go through the ciphers.
        if let Some(src) = &source
            && (src_cipher.is_some() || dest_key.is_some() || dest_kms_request.is_some())
        {
            let meta = new_meta.unwrap_or_else(|| src.meta.clone());
            let dest_kms = match &dest_kms_request {
                Some(request) => Some(crate::sse_kms::begin(svc, request, bucket, key).await?),
                None => None,
            };
            let copied = copy_through_ciphers(
                svc,
                src,
                src_cipher,
                dest_key.as_ref(),
                dest_kms,
                (bucket, key),
                meta,
                cond.clone(),
                lock,
            )
            .await?;
            break (copied, source);
        }
        match svc
            .engine
            .copy_object_if(
                &src_bucket,
                &src_key,
                src_version,
                bucket,
                key,
                new_meta,
                cond.clone(),
                source.as_ref().map(|s| s.version_id),
                lock,
            )
            .await
        {
            Err(EngineError::SourceChanged) if attempt < COPY_SOURCE_ATTEMPTS => continue,
            result => break (result?, source),
        }
    };
    let doc = CopyObjectResult {
        last_modified: iso8601(version.last_modified_ms).into(),
        etag: quoted_etag(&version.etag).into(),
    };
    let expiration = expiration_header(svc, bucket, key, &version)?;
    let mut resp = xml_response(StatusCode::OK, to_xml(&doc))?;
    let h = resp.headers_mut();
    if let Some(k) = &dest_key {
        crate::sse_c::echo(h, &k.key_md5);
    }
    if let Some(envelope) = &version.meta.sse_kms {
        crate::sse_kms::echo(svc, h, envelope);
    }
    if let Some(id) = version_id_header(&version)
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        h.insert("x-amz-version-id", v);
    }
    if let Some(v) = expiration {
        h.insert("x-amz-expiration", v);
    }
    if let Some(id) = source.as_ref().and_then(version_id_header)
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        h.insert("x-amz-copy-source-version-id", v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::{CopySource, parse_copy_source};
    use cairn_storage_engine::VersionRef;

    #[test]
    fn copy_sources() {
        let source = |b: &str, k: &str, version| CopySource {
            bucket: b.to_owned(),
            key: k.to_owned(),
            version,
        };
        assert_eq!(
            parse_copy_source("/b/k%20x/y").unwrap(),
            source("b", "k x/y", None)
        );
        assert_eq!(
            parse_copy_source("b/k?versionId=null").unwrap(),
            source("b", "k", Some(VersionRef::Null))
        );
        assert!(parse_copy_source("b").is_err());
        assert!(parse_copy_source("/b/").is_err());
        assert!(parse_copy_source("b/k?versionId=abc").is_err());
    }
}
