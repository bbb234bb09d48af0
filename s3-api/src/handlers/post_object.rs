//! POST Object: uploads from an HTML form or a device with only `curl -F`.
//!
//! Owns: reading the multipart/form-data body up to its `file` field
//! (fields held in memory, at most S3's 20 KiB of them), authenticating the
//! form (its SigV4-signed policy, or none: anonymous), checking the policy,
//! turning the fields into the request headers they stand for, and the
//! form's answer (204/200/201 or a 303 redirect).
//!
//! Must never: buffer the file (it streams through the PutObject pipeline,
//! the policy's `content-length-range` enforced while it does); act on a
//! field the policy does not cover (checked before anything is read past
//! the fields); let a field do what the same header could not (the fields
//! become headers and then pass the same authorization and
//! `request_rules` as a PutObject); authorize on anything but the signed
//! policy's key and the bucket the request addresses.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::access::{AccessRequest, Caller, ClientFacts, authorize};
use crate::auth::{PayloadHash, PostForm, VerifiedRequest, verify_post};
use crate::body::{BodyError, BodyTimeouts, StreamAllowance, form_error, paced_stream};
use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::header_str;
use crate::response::{RespBody, empty, full};
use crate::router::{Operation, Query};
use crate::xml::{PostResponse, TaggingDoc, parse, to_xml};

use super::PUT_SIZE_MAX_BYTES;
use super::object::{PutBody, put_object_from};

/// S3's bound on the fields before the file (names and values).
pub(crate) const PRE_DATA_MAX_BYTES: usize = 20 * 1024;
/// Raw bytes the parser may read before it reaches the file: the fields,
/// their part headers and boundaries, and one piece beyond them (the
/// stream hands the parser pieces of at most `FORM_PIECE_MAX_BYTES`).
/// Bounds the memory a form takes before its file streams, and the bytes
/// the parser rescans while it looks for a boundary.
const PRE_FILE_RAW_MAX_BYTES: u64 = 64 << 10;
/// Pieces the stream may hand the parser before the file: it rescans what
/// it holds on each, so a client trickling one byte per frame would cost
/// quadratic time without this bound (≤ 2,048 × 64 KiB scanned).
const PRE_FILE_PIECES_MAX: u64 = 2048;
/// Time a client has to send everything before the file.
const PRE_FILE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest `filename` of the file part `${filename}` takes.
const FILENAME_MAX_BYTES: usize = 1024;
/// Form framing after the file's start that may arrive with it (its part
/// boundary and whatever follows in the same read).
const POST_FILE_RAW_SLACK_BYTES: u64 = 1 << 20;

/// Where the request addressed its bucket, for the object's `Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressing {
    Path,
    VirtualHost,
}

/// What the audit log learns while a form is read.
#[derive(Debug, Default)]
pub(crate) struct PostFacts {
    pub(crate) key: Option<String>,
    pub(crate) caller: Option<Caller>,
}

pub(crate) async fn post_object(
    svc: &Arc<ServiceInner>,
    mut parts: http::request::Parts,
    body: Incoming,
    client: ClientFacts,
    bucket: String,
    addressing: Addressing,
    facts: &mut PostFacts,
) -> S3Result<Response<RespBody>> {
    let boundary = form_boundary(&parts.headers)?;
    // The headers of the request itself that policies may read; every
    // other setting of the object comes from the form's fields.
    let carried: Vec<(HeaderName, HeaderValue)> = [http::header::REFERER, http::header::USER_AGENT]
        .into_iter()
        .filter_map(|name| parts.headers.get(&name).cloned().map(|v| (name, v)))
        .collect();
    // The `Location` of the stored object names the host the form was
    // sent to (HTTP/2: the authority).
    let host = header_str(&parts.headers, "host")
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_owned();
    let timeouts = BodyTimeouts::from_config(&svc.config);
    parts.extensions.insert(timeouts);
    let allowance = StreamAllowance::new(PRE_FILE_RAW_MAX_BYTES, PRE_FILE_PIECES_MAX);
    let stream = paced_stream(body, timeouts, allowance.clone());
    let mut multipart = multer::Multipart::new(stream, boundary);

    // The fields up to the file (S3 ignores any after it), within a deadline.
    let (form, file) = tokio::time::timeout(PRE_FILE_DEADLINE, read_fields(&mut multipart))
        .await
        .map_err(|_| S3Error::new(S3ErrorCode::RequestTimeout))??;
    let mut form = form;
    let Some(file) = file else {
        return Err(S3Error::invalid_argument(
            "POST requires exactly one file upload per request.",
            "file",
            "0",
        ));
    };
    let Some(key) = form.get("key") else {
        return Err(S3Error::invalid_argument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            "key",
            "",
        ));
    };
    let key = expand_key(key, file.file_name())?;
    form.set("key", key.clone());
    facts.key = Some(crate::audit::capped(&key).to_owned());

    // Who signed the policy, and whether the form keeps to it.
    let (caller, length, access_key) = match verify_post(&form, svc.keys.as_ref(), &svc.verify)? {
        None => (Caller::Anonymous, None, String::new()),
        Some(verified) => {
            let length = verified.policy.check(&form, &bucket, SystemTime::now())?;
            let Some((access, name)) = svc.keys.identity(&verified.access_key) else {
                return Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId));
            };
            let caller = Caller::Key {
                id: verified.access_key.clone(),
                name,
                access,
            };
            (caller, length, verified.access_key)
        }
    };
    facts.caller = Some(caller.clone());
    // A cluster node first catches up (the bucket's policy included).
    svc.engine.read_barrier().await?;

    // The fields as the headers a PutObject would carry, judged as one.
    parts.method = http::Method::PUT;
    parts.headers = form_headers(&form)?;
    for (name, value) in carried {
        parts.headers.insert(name, value);
    }
    let query = Query::parse(None);
    authorize(
        svc,
        &AccessRequest {
            op: Operation::PutObject,
            action: "s3:PutObject",
            bucket: Some(&bucket),
            key: Some(&key),
            version: None,
            caller: &caller,
            client,
            parts: &parts,
            query: &query,
            auth_type: crate::access::AuthType::Post,
        },
    )?;
    crate::request_rules::check_request(Operation::PutObject, &parts.headers, &query)?;
    super::acl::check_acl_headers(Operation::PutObject, &parts.headers)?;
    let redirect = redirect_target(&form);
    let status = success_status(&form);

    // Past the fields: the file streams, bounded by the policy's range.
    allowance.set(
        PRE_FILE_RAW_MAX_BYTES
            .saturating_add(length.map_or(PUT_SIZE_MAX_BYTES, |r| r.max.min(PUT_SIZE_MAX_BYTES)))
            .saturating_add(POST_FILE_RAW_SLACK_BYTES),
        u64::MAX,
    );
    let mut ctx = RequestCtx {
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        query,
        parts,
        auth: VerifiedRequest {
            access_key,
            payload: PayloadHash::Unsigned,
            presigned: false,
            chunk_signer: None,
        },
        caller,
        client,
    };
    let stored = put_object_from(
        svc,
        &mut ctx,
        PutBody::FormFile {
            file: Box::new(file),
            length,
        },
    )
    .await
    .map_err(|e| with_size_bounds(e, length))?;
    // The form is answered; anything after the file is ignored (S3 does).
    drop(multipart);

    let mut resp = answer(
        &stored,
        &Location {
            secure: client.secure,
            host: &host,
            addressing,
            bucket: &bucket,
            key: &key,
        },
        redirect.as_deref(),
        status,
    )?;
    if !stored
        .headers()
        .contains_key("x-amz-server-side-encryption-customer-algorithm")
        && !stored
            .headers()
            .contains_key("x-amz-server-side-encryption")
    {
        resp.headers_mut().insert(
            "x-amz-server-side-encryption",
            HeaderValue::from_static("AES256"),
        );
    }
    Ok(resp)
}

/// Reads the form's fields up to its `file` (which is returned unread, or
/// `None` if the form has none): at most [`PRE_DATA_MAX_BYTES`] of names
/// and values.
async fn read_fields(
    multipart: &mut multer::Multipart<'static>,
) -> S3Result<(PostForm, Option<multer::Field<'static>>)> {
    let mut form = PostForm::default();
    let mut pre_data = 0usize;
    let file = loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| pre_file_error(form_error(e)))?;
        let Some(mut field) = field else {
            break None;
        };
        let name = field
            .name()
            .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedPOSTRequest))?
            .to_owned();
        if name.eq_ignore_ascii_case("file") {
            break Some(field);
        }
        pre_data += name.len();
        let mut value = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| pre_file_error(form_error(e)))?
        {
            pre_data += chunk.len();
            if pre_data > PRE_DATA_MAX_BYTES {
                return Err(pre_data_too_large());
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!(
                    "The form field {} is not UTF-8.",
                    crate::audit::capped(&name)
                ),
            )
        })?;
        form.push(&name, &value).map_err(S3Error::from)?;
    };
    Ok((form, file))
}

/// The `key` field with `${filename}` replaced by the file part's name
/// (without any directory a browser sent), refused before it is built if
/// it would be longer than a key may be, or empty.
fn expand_key(key: &str, filename: Option<&str>) -> S3Result<String> {
    const VARIABLE: &str = "${filename}";
    let expanded = match filename {
        Some(filename) => {
            let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
            let uses = key.matches(VARIABLE).count();
            let len =
                key.len() - uses * VARIABLE.len() + uses * base.len().min(FILENAME_MAX_BYTES + 1);
            if base.len() > FILENAME_MAX_BYTES || len > crate::headers::KEY_MAX_BYTES {
                return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
            }
            key.replace(VARIABLE, base)
        }
        None => key.to_owned(),
    };
    if expanded.is_empty() {
        return Err(S3Error::invalid_argument(
            "User key must have a length greater than 0.",
            "key",
            "",
        ));
    }
    Ok(expanded)
}

/// The boundary of a multipart/form-data body; any other body is refused as
/// S3 refuses it.
fn form_boundary(h: &HeaderMap) -> S3Result<String> {
    let content_type = header_str(h, "content-type").unwrap_or_default();
    let is_form = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !is_form {
        return Err(S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
        .field(
            "Condition",
            "Bucket POST must be of the enclosure-type multipart/form-data",
        ));
    }
    multer::parse_boundary(content_type)
        .map_err(|_| S3Error::new(S3ErrorCode::MalformedPOSTRequest))
}

fn pre_data_too_large() -> S3Error {
    S3Error::new(S3ErrorCode::MaxPostPreDataLengthExceeded)
        .field("MaxPostPreDataLengthBytes", PRE_DATA_MAX_BYTES.to_string())
}

/// A failure while the fields were read: running past the raw allowance is
/// a form whose fields are too large.
fn pre_file_error(e: BodyError) -> S3Error {
    match e {
        BodyError::TooLarge => pre_data_too_large(),
        other => other.into(),
    }
}

/// `EntityTooLarge`/`EntityTooSmall` with the bounds that applied.
fn with_size_bounds(e: S3Error, length: Option<crate::auth::LengthRange>) -> S3Error {
    if e.code == S3ErrorCode::EntityTooLarge
        && !e.fields.iter().any(|(n, _)| *n == "MaxSizeAllowed")
    {
        let max = length.map_or(PUT_SIZE_MAX_BYTES, |r| r.max.min(PUT_SIZE_MAX_BYTES));
        return e.field("MaxSizeAllowed", max.to_string());
    }
    e
}

/// Fields that are the form's own business, never headers of the object.
fn is_form_control(name: &str) -> bool {
    matches!(
        name,
        "key"
            | "file"
            | "policy"
            | "bucket"
            | "success_action_status"
            | "success_action_redirect"
            | "redirect"
            | "x-amz-algorithm"
            | "x-amz-credential"
            | "x-amz-date"
            | "x-amz-signature"
            | "awsaccesskeyid"
            | "signature"
    ) || name.starts_with("x-ignore-")
}

/// The headers S3 reads from form fields of these names (lowercase). Any
/// other `x-amz-*` field that is not a form control is refused: S3 defines
/// none, and no field may reach the pipeline as a header it did not vet.
fn is_header_field(name: &str) -> bool {
    matches!(
        name,
        "cache-control"
            | "content-type"
            | "content-disposition"
            | "content-encoding"
            | "content-language"
            | "expires"
            | "content-md5"
            | "x-amz-storage-class"
            | "x-amz-website-redirect-location"
            | "x-amz-server-side-encryption"
            | "x-amz-server-side-encryption-aws-kms-key-id"
            | "x-amz-server-side-encryption-context"
            | "x-amz-server-side-encryption-bucket-key-enabled"
            | "x-amz-server-side-encryption-customer-algorithm"
            | "x-amz-server-side-encryption-customer-key"
            | "x-amz-server-side-encryption-customer-key-md5"
            | "x-amz-checksum-algorithm"
            | "x-amz-checksum-crc32"
            | "x-amz-checksum-crc32c"
            | "x-amz-checksum-crc64nvme"
            | "x-amz-checksum-sha1"
            | "x-amz-checksum-sha256"
            | "x-amz-object-lock-mode"
            | "x-amz-object-lock-retain-until-date"
            | "x-amz-object-lock-legal-hold"
            | "x-amz-expected-bucket-owner"
            | "x-amz-security-token"
    ) || name.starts_with("x-amz-meta-")
}

/// The request headers a form's fields stand for: `acl` as `x-amz-acl`,
/// `tagging` (an XML `Tagging` document) as `x-amz-tagging`, the fields
/// named like headers as those headers. Other fields (`submit`, a
/// browser's extras) carry nothing S3 acts on and are left out.
fn form_headers(form: &PostForm) -> S3Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in form.iter() {
        if is_form_control(name) {
            continue;
        }
        let header = match name {
            "acl" => "x-amz-acl".to_owned(),
            "tagging" => {
                let doc: TaggingDoc =
                    parse(value).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
                let encoded: Vec<String> = doc
                    .tag_set
                    .tags
                    .iter()
                    .map(|t| {
                        format!(
                            "{}={}",
                            utf8_percent_encode(&t.key, NON_ALPHANUMERIC),
                            utf8_percent_encode(&t.value, NON_ALPHANUMERIC)
                        )
                    })
                    .collect();
                insert(&mut headers, "x-amz-tagging", &encoded.join("&"))?;
                continue;
            }
            n if is_header_field(n) => n.to_owned(),
            n if n.starts_with("x-amz-") => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!(
                        "The form field {} is not supported in a POST upload.",
                        crate::audit::capped(n)
                    ),
                )
                .field("ArgumentName", crate::audit::capped(n).to_owned()));
            }
            _ => continue,
        };
        insert(&mut headers, &header, value)?;
    }
    Ok(headers)
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> S3Result<()> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!(
                "The form field {} has a value that cannot be a header value.",
                crate::audit::capped(name)
            ),
        )
    };
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
    let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| invalid())?;
    headers.append(name, value);
    Ok(())
}

/// `success_action_redirect` (or the older `redirect`) when it is a URL S3
/// can redirect to (absolute http or https); otherwise S3 ignores it.
fn redirect_target(form: &PostForm) -> Option<String> {
    let url = form
        .get("success_action_redirect")
        .or_else(|| form.get("redirect"))?;
    let uri: http::Uri = url.parse().ok()?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    (scheme_ok && uri.host().is_some_and(|h| !h.is_empty())).then(|| url.to_owned())
}

/// `success_action_status`: 200 or 201 as asked, anything else 204.
fn success_status(form: &PostForm) -> StatusCode {
    match form.get("success_action_status").map(str::trim) {
        Some("200") => StatusCode::OK,
        Some("201") => StatusCode::CREATED,
        _ => StatusCode::NO_CONTENT,
    }
}

/// Characters left as they are in a query value: form encoding keeps
/// letters, digits and `*-._`; everything else is percent-encoded (a
/// space becomes `+` below).
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b' ');

fn form_encode(s: &str) -> String {
    utf8_percent_encode(s, FORM_VALUE)
        .to_string()
        .replace(' ', "+")
}

/// Characters left as they are in the key of an object URL: unreserved
/// ones (the key's `/` is encoded, as S3 writes `Location`).
const URL_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The stored object's URL.
struct Location<'a> {
    secure: bool,
    host: &'a str,
    addressing: Addressing,
    bucket: &'a str,
    key: &'a str,
}

impl Location<'_> {
    fn url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        let key = utf8_percent_encode(self.key, URL_KEY);
        match self.addressing {
            Addressing::VirtualHost => format!("{scheme}://{}/{key}", self.host),
            Addressing::Path => format!(
                "{scheme}://{}/{}/{key}",
                self.host,
                utf8_percent_encode(self.bucket, URL_KEY)
            ),
        }
    }
}

/// The form's answer for a stored object: a 303 to the redirect URL (with
/// `bucket`, `key` and `etag` added to its query), or the status asked
/// for — 201 with a `PostResponse` document, 200 or 204 empty — each with
/// the object's `ETag` and `Location` (and whatever PutObject answered:
/// version id, encryption, checksum).
fn answer(
    stored: &Response<RespBody>,
    location: &Location<'_>,
    redirect: Option<&str>,
    status: StatusCode,
) -> S3Result<Response<RespBody>> {
    let etag = header_str(stored.headers(), "etag")
        .unwrap_or_default()
        .to_owned();
    let url = location.url();
    let (status, location_header, body) = match redirect {
        Some(target) => {
            let separator = if target.contains('?') { '&' } else { '?' };
            let to = format!(
                "{target}{separator}bucket={}&key={}&etag={}",
                form_encode(location.bucket),
                form_encode(location.key),
                form_encode(&etag)
            );
            (StatusCode::SEE_OTHER, to, None)
        }
        None if status == StatusCode::CREATED => {
            let doc = to_xml(&PostResponse {
                location: url.as_str().into(),
                bucket: location.bucket.into(),
                key: location.key.into(),
                etag: etag.as_str().into(),
            });
            (status, url, Some(doc))
        }
        None => (status, url, None),
    };
    let mut builder = Response::builder().status(status);
    for (name, value) in stored.headers() {
        builder = builder.header(name, value);
    }
    builder = builder.header(http::header::LOCATION, location_header);
    let resp = match body {
        Some(xml) => builder
            .header(http::header::CONTENT_TYPE, "application/xml")
            .body(full(xml)),
        None => builder.body(empty()),
    };
    resp.map_err(S3Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> PostForm {
        let mut f = PostForm::default();
        for (n, v) in fields {
            f.push(n, v).unwrap();
        }
        f
    }

    #[test]
    fn fields_become_the_headers_they_stand_for() {
        let f = form(&[
            ("key", "k"),
            ("Content-Type", "text/csv"),
            ("acl", "private"),
            ("x-amz-meta-Site", "north"),
            (
                "tagging",
                "<Tagging><TagSet><Tag><Key>a b</Key><Value>1+2</Value></Tag></TagSet></Tagging>",
            ),
            ("x-amz-checksum-sha256", "abc="),
            ("submit", "Upload"),
            ("x-ignore-x", "1"),
            ("policy", "p"),
            ("success_action_status", "201"),
        ]);
        let h = form_headers(&f).unwrap();
        assert_eq!(h.get("content-type").unwrap(), "text/csv");
        assert_eq!(h.get("x-amz-acl").unwrap(), "private");
        assert_eq!(h.get("x-amz-meta-site").unwrap(), "north");
        assert_eq!(h.get("x-amz-tagging").unwrap(), "a%20b=1%2B2");
        assert_eq!(
            crate::headers::request_tags(&h).unwrap(),
            vec![("a b".to_owned(), "1+2".to_owned())]
        );
        assert_eq!(h.get("x-amz-checksum-sha256").unwrap(), "abc=");
        assert_eq!(h.len(), 5, "{h:?}");
        // A field that would change how the body is read is no header.
        for name in [
            "x-amz-trailer",
            "x-amz-content-sha256",
            "x-amz-decoded-content-length",
            "x-amz-copy-source",
        ] {
            let e = form_headers(&form(&[(name, "x")])).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::InvalidArgument, "{name}");
        }
        // A value with a line break cannot smuggle a header.
        let e =
            form_headers(&form(&[("content-type", "a\r\nx-amz-acl: public-read")])).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn filename_expansion_is_bounded_before_it_is_built() {
        assert_eq!(
            expand_key("in/${filename}", Some("C:\\x\\a.csv")).unwrap(),
            "in/a.csv"
        );
        assert_eq!(
            expand_key("in/${filename}", Some("dir/b.csv")).unwrap(),
            "in/b.csv"
        );
        assert_eq!(
            expand_key("in/${filename}", None).unwrap(),
            "in/${filename}"
        );
        // ~1,800 uses of a 500-byte name would be ~900 MB: refused first.
        let key = "${filename}".repeat(1800);
        let e = expand_key(&key, Some(&"A".repeat(500))).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::KeyTooLongError);
        assert!(e.fields.is_empty(), "no key echoed: {e:?}");
        let e = expand_key("${filename}", Some(&"A".repeat(2000))).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::KeyTooLongError);
        // An empty key (no name chosen in a browser) is refused, as S3 does.
        let e = expand_key("${filename}", Some("")).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidArgument);
        assert_eq!(
            expand_key("", None).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn the_answer_is_the_status_asked_for_or_a_redirect() {
        assert_eq!(success_status(&form(&[])), StatusCode::NO_CONTENT);
        assert_eq!(
            success_status(&form(&[("success_action_status", "201")])),
            StatusCode::CREATED
        );
        assert_eq!(
            success_status(&form(&[("success_action_status", "200")])),
            StatusCode::OK
        );
        assert_eq!(
            success_status(&form(&[("success_action_status", "404")])),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            redirect_target(&form(&[(
                "success_action_redirect",
                "https://example.com/done?x=1"
            )]))
            .as_deref(),
            Some("https://example.com/done?x=1")
        );
        assert_eq!(
            redirect_target(&form(&[("redirect", "http://h/ok")])).as_deref(),
            Some("http://h/ok")
        );
        // Not an absolute http(s) URL: ignored, as S3 ignores it.
        assert_eq!(
            redirect_target(&form(&[("success_action_redirect", "/relative")])),
            None
        );
        assert_eq!(
            redirect_target(&form(&[("success_action_redirect", "javascript:alert(1)")])),
            None
        );

        let stored = Response::builder()
            .header("etag", "\"abc\"")
            .body(empty())
            .unwrap();
        let loc = Location {
            secure: false,
            host: "127.0.0.1:9000",
            addressing: Addressing::Path,
            bucket: "b",
            key: "dir/a b.txt",
        };
        assert_eq!(loc.url(), "http://127.0.0.1:9000/b/dir%2Fa%20b.txt");
        let r = answer(
            &stored,
            &loc,
            Some("https://example.com/done?x=1"),
            StatusCode::NO_CONTENT,
        )
        .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers().get("location").unwrap(),
            "https://example.com/done?x=1&bucket=b&key=dir%2Fa+b.txt&etag=%22abc%22"
        );
        let r = answer(&stored, &loc, None, StatusCode::NO_CONTENT).unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers().get("etag").unwrap(), "\"abc\"");
        assert_eq!(
            r.headers().get("location").unwrap(),
            "http://127.0.0.1:9000/b/dir%2Fa%20b.txt"
        );
        let vhost = Location {
            addressing: Addressing::VirtualHost,
            host: "b.s3.test",
            ..loc
        };
        assert_eq!(vhost.url(), "http://b.s3.test/dir%2Fa%20b.txt");
    }
}
