//! Header conventions of S3: object metadata in and out, `Range`,
//! conditional requests, timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cairn_storage_engine::{
    ObjectMetadata, ObjectVersion, Retention, RetentionMode, VersionLock, VersionRef,
    WriteCondition,
};
use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use crate::auth::{ChecksumAlgorithm, PayloadHash, stored_checksums};
use crate::body::ChecksumExpectation;
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// S3's limit on user metadata (names + values of `x-amz-meta-*`).
pub const USER_METADATA_MAX_BYTES: usize = 2048;
/// S3's limit on key length in bytes.
pub const KEY_MAX_BYTES: usize = 1024;

pub fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a key a request would create (PutObject, CopyObject's
/// destination, CreateMultipartUpload): at most 1,024 bytes, and no
/// character XML 1.0 cannot carry. S3 accepts such keys but then lists them
/// as character references to illegal characters (`&#x0;`), which is not
/// well-formed XML and breaks the listings of every client not asking for
/// `encoding-type=url`; Cairn refuses them instead, before anything is
/// stored.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > KEY_MAX_BYTES {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError).field("Key", key));
    }
    if let Some(c) = key.chars().find(|c| !xml10_char(*c)) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!(
                "Object keys may not contain the character U+{:04X}: XML 1.0, in which S3 lists keys, cannot represent it.",
                u32::from(c)
            ),
        )
        .field("ArgumentName", "key"));
    }
    Ok(())
}

/// Whether XML 1.0 can carry `c` (its `Char` production; CR and the other
/// legal controls as character references).
pub fn xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Milliseconds since the epoch as a `SystemTime`.
pub fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `Last-Modified` style (RFC 7231), at second precision.
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(system_time(ms))
}

/// XML timestamp style: `2009-10-12T17:50:30.000Z`.
pub fn iso8601(ms: u64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// A version id a client sent (`versionId`, a copy source's `versionId`):
/// `None` when absent, S3's `400 InvalidArgument` ("Invalid version id
/// specified") when it cannot name a version (the empty string included).
pub fn parse_version_id(value: Option<&str>, name: &str) -> S3Result<Option<VersionRef>> {
    match value {
        None => Ok(None),
        Some(v) => VersionRef::parse(v)
            .map(Some)
            .ok_or_else(|| S3Error::invalid_argument("Invalid version id specified", name, v)),
    }
}

/// An S3 timestamp in ISO 8601 (`2030-01-01T00:00:00Z`, fractions and
/// offsets allowed) as unix ms; `None` if it is not one or is before 1970.
pub fn parse_iso8601_ms(v: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An Object Lock mode as S3 spells it (exactly, as S3 compares it).
pub fn parse_lock_mode(v: &str) -> Option<RetentionMode> {
    match v {
        "GOVERNANCE" => Some(RetentionMode::Governance),
        "COMPLIANCE" => Some(RetentionMode::Compliance),
        _ => None,
    }
}

pub fn lock_mode_name(m: RetentionMode) -> &'static str {
    match m {
        RetentionMode::Governance => "GOVERNANCE",
        RetentionMode::Compliance => "COMPLIANCE",
    }
}

/// The Object Lock a write asks for with `x-amz-object-lock-mode`,
/// `-retain-until-date` and `-legal-hold`; `None` when it sends none of
/// them. Errors are S3's: both of mode and date or neither, a known mode, a
/// future ISO 8601 date, `ON`/`OFF` (all `400 InvalidArgument`).
pub fn object_lock_headers(h: &HeaderMap, now_ms: u64) -> S3Result<Option<VersionLock>> {
    let mode = header_str(h, "x-amz-object-lock-mode");
    let until = header_str(h, "x-amz-object-lock-retain-until-date");
    let hold = header_str(h, "x-amz-object-lock-legal-hold");
    if mode.is_none() && until.is_none() && hold.is_none() {
        return Ok(None);
    }
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => {
            let mode = parse_lock_mode(m).ok_or_else(|| {
                S3Error::invalid_argument(
                    "Unknown wormMode directive.",
                    "x-amz-object-lock-mode",
                    m,
                )
            })?;
            let until_ms = parse_iso8601_ms(u).ok_or_else(|| {
                S3Error::invalid_argument(
                    "The retain until date must be provided in ISO 8601 format",
                    "x-amz-object-lock-retain-until-date",
                    u,
                )
            })?;
            if until_ms <= now_ms {
                return Err(S3Error::invalid_argument(
                    "The retain until date must be in the future!",
                    "x-amz-object-lock-retain-until-date",
                    u,
                ));
            }
            Some(Retention { mode, until_ms })
        }
        (m, u) => {
            let (name, value) = match (m, u) {
                (Some(m), _) => ("x-amz-object-lock-mode", m),
                (_, Some(u)) => ("x-amz-object-lock-retain-until-date", u),
                _ => ("x-amz-object-lock-mode", ""),
            };
            return Err(S3Error::invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
                name,
                value,
            ));
        }
    };
    let legal_hold = match hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(v) => {
            return Err(S3Error::invalid_argument(
                "Legal Hold must be either of 'ON' or 'OFF'",
                "x-amz-object-lock-legal-hold",
                v,
            ));
        }
    };
    Ok(Some(VersionLock {
        retention,
        legal_hold,
    }))
}

/// The version headers of a response naming `v`: `x-amz-version-id`
/// (omitted for the `null` version, as for an unversioned object).
pub fn version_id_header(v: &ObjectVersion) -> Option<String> {
    (!v.null_version).then(|| v.public_id())
}

pub fn quoted_etag(etag: &str) -> String {
    format!("\"{etag}\"")
}

fn opt_header(h: &HeaderMap, name: HeaderName) -> S3Result<Option<String>> {
    match h.get(&name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| {
            S3Error::invalid_argument(
                format!("Header {name} is not valid ASCII."),
                name.as_str(),
                "",
            )
        }),
    }
}

/// Metadata a PUT / CreateMultipartUpload / CopyObject(REPLACE) stores.
pub fn object_metadata(h: &HeaderMap) -> S3Result<ObjectMetadata> {
    let mut meta = ObjectMetadata {
        content_type: opt_header(h, header::CONTENT_TYPE)?,
        content_encoding: opt_header(h, header::CONTENT_ENCODING)?,
        content_disposition: opt_header(h, header::CONTENT_DISPOSITION)?,
        content_language: opt_header(h, header::CONTENT_LANGUAGE)?,
        cache_control: opt_header(h, header::CACHE_CONTROL)?,
        expires: opt_header(h, header::EXPIRES)?,
        ..Default::default()
    };
    // `aws-chunked` describes the transfer, not the object: S3 drops it.
    // Any other value is stored byte for byte (`deflate, gzip` stays so).
    if let Some(enc) = meta.content_encoding.take() {
        let is_chunked = |e: &str| e.trim().eq_ignore_ascii_case("aws-chunked");
        if enc.split(',').any(is_chunked) {
            let kept: Vec<&str> = enc
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && !is_chunked(e))
                .collect();
            if !kept.is_empty() {
                meta.content_encoding = Some(kept.join(","));
            }
        } else {
            meta.content_encoding = Some(enc);
        }
    }
    let mut size = 0usize;
    for (name, value) in h {
        let Some(short) = name.as_str().strip_prefix("x-amz-meta-") else {
            continue;
        };
        let value = match value.to_str() {
            Ok(v) => v.to_owned(),
            // Non-ASCII bytes: keep them if they are UTF-8 (clients send RFC 2047 or raw UTF-8).
            Err(_) => String::from_utf8(value.as_bytes().to_vec()).map_err(|_| {
                S3Error::invalid_argument("User metadata is not valid UTF-8.", name.as_str(), "")
            })?,
        };
        size += short.len() + value.len();
        meta.user_metadata.push((short.to_owned(), value));
    }
    if size > USER_METADATA_MAX_BYTES {
        return Err(S3Error::new(S3ErrorCode::MetadataTooLarge)
            .field("Size", size.to_string())
            .field("MaxSizeAllowed", USER_METADATA_MAX_BYTES.to_string()));
    }
    meta.tags = request_tags(h)?;
    Ok(meta)
}

/// The validated tag set of `x-amz-tagging` (empty without the header).
pub fn request_tags(h: &HeaderMap) -> S3Result<Vec<(String, String)>> {
    match h.get("x-amz-tagging") {
        None => Ok(Vec::new()),
        Some(v) => {
            let raw = std::str::from_utf8(v.as_bytes()).map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidTag,
                    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
                )
            })?;
            crate::tags::parse_tagging_header(raw)
        }
    }
}

/// A user-metadata value as S3 returns it: unchanged if it is US-ASCII,
/// else RFC 2047-encoded (`=?UTF-8?B?<base64>?=`) — S3 documents that it
/// returns non-ASCII metadata "mail-safe", and HTTP clients read raw header
/// bytes as Latin-1, which would turn UTF-8 into mojibake.
pub fn mail_safe(value: &str) -> std::borrow::Cow<'_, str> {
    if value.is_ascii() {
        value.into()
    } else {
        format!("=?UTF-8?B?{}?=", BASE64.encode(value.as_bytes())).into()
    }
}

/// Writes an object's stored headers onto a response.
pub fn write_object_headers(h: &mut HeaderMap, v: &ObjectVersion, checksum_mode: bool) {
    for (k, val) in &v.meta.user_metadata {
        let name = format!("x-amz-meta-{k}");
        let value = mail_safe(val);
        if let (Ok(n), Ok(hv)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.append(n, hv);
        }
    }
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    };
    put("etag", &quoted_etag(&v.etag));
    put("last-modified", &http_date(v.last_modified_ms));
    if let Some(id) = version_id_header(v) {
        put("x-amz-version-id", &id);
    }
    if let Some(r) = &v.retention {
        put("x-amz-object-lock-mode", lock_mode_name(r.mode));
        put("x-amz-object-lock-retain-until-date", &iso8601(r.until_ms));
    }
    if v.legal_hold {
        put("x-amz-object-lock-legal-hold", "ON");
    }
    put("accept-ranges", "bytes");
    put(
        "content-type",
        v.meta
            .content_type
            .as_deref()
            .unwrap_or("binary/octet-stream"),
    );
    for (name, value) in [
        ("content-encoding", &v.meta.content_encoding),
        ("content-disposition", &v.meta.content_disposition),
        ("content-language", &v.meta.content_language),
        ("cache-control", &v.meta.cache_control),
        ("expires", &v.meta.expires),
    ] {
        if let Some(value) = value {
            put(name, value);
        }
    }
    if !v.meta.tags.is_empty() {
        put("x-amz-tagging-count", &v.meta.tags.len().to_string());
    }
    if checksum_mode {
        // The stored whole-object checksum and its type (FULL_OBJECT for a
        // single PUT, COMPOSITE or FULL_OBJECT for a multipart object).
        let (values, ty) = stored_checksums(&v.meta.checksums);
        for (a, value) in &values {
            put(a.header_name(), value);
        }
        if !values.is_empty() {
            put("x-amz-checksum-type", ty.as_str());
        }
    }
}

/// `Content-MD5`, if sent: must be base64 of 16 bytes.
pub fn content_md5(h: &HeaderMap) -> S3Result<Option<[u8; 16]>> {
    let Some(v) = h.get("content-md5") else {
        return Ok(None);
    };
    let raw = v
        .to_str()
        .ok()
        .and_then(|s| BASE64.decode(s.trim()).ok())
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidDigest))?;
    let arr: [u8; 16] = raw
        .try_into()
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidDigest))?;
    Ok(Some(arr))
}

/// The additional checksum the client sends, from a header or a declared
/// trailer.
pub fn checksum_expectation(
    h: &HeaderMap,
    payload: PayloadHash,
) -> S3Result<Option<(ChecksumAlgorithm, ChecksumExpectation)>> {
    let mut found = None;
    for algo in ChecksumAlgorithm::ALL {
        if let Some(v) = h.get(algo.header_name()) {
            if found.is_some() {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            let value = v.to_str().unwrap_or("");
            if algo.decode_value(value).is_none() {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", algo.header_name()),
                ));
            }
            found = Some((algo, ChecksumExpectation::Header(value.to_owned())));
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    if let Some(trailer) = header_str(h, "x-amz-trailer") {
        let name = trailer.trim().to_ascii_lowercase();
        let algo = ChecksumAlgorithm::from_header_name(&name).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("The value specified in the x-amz-trailer header is not supported: {name}"),
            )
        })?;
        if !payload.has_trailer() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "x-amz-trailer requires a STREAMING-*-TRAILER payload.",
            ));
        }
        return Ok(Some((algo, ChecksumExpectation::Trailer)));
    }
    Ok(None)
}

/// A resolved byte range `start..end` (end exclusive) of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Parses `Range: bytes=…` against an object size. `Ok(None)` = serve the
/// whole object (no header, or a syntax S3 ignores, e.g. several ranges);
/// `Err(InvalidRange)` = not satisfiable.
pub fn parse_range(value: Option<&str>, size: u64) -> S3Result<Option<ByteRange>> {
    let Some(value) = value else { return Ok(None) };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let unsatisfiable = || {
        S3Error::new(S3ErrorCode::InvalidRange)
            .field("RangeRequested", value)
            .field("ActualObjectSize", size.to_string())
            .header("content-range", format!("bytes */{size}"))
    };
    let range = if a.is_empty() {
        // Suffix: the last N bytes.
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        ByteRange {
            start: size.saturating_sub(n),
            end: size,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return Ok(None);
        };
        let end_incl = if b.is_empty() {
            u64::MAX
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e,
                _ => return Ok(None),
            }
        };
        if start >= size {
            return Err(unsatisfiable());
        }
        ByteRange {
            start,
            end: end_incl.saturating_add(1).min(size),
        }
    };
    Ok(Some(range))
}

/// The condition of a conditional write (PutObject, CopyObject's destination,
/// CompleteMultipartUpload): `If-None-Match: *` or `If-Match: <etag>`. The
/// engine checks it atomically with the commit. S3 accepts only `*` in
/// `If-None-Match` on writes; anything else, or both headers at once, is
/// `NotImplemented` rather than a guess.
pub fn write_condition(h: &HeaderMap) -> S3Result<WriteCondition> {
    let get = |name: &str| -> S3Result<Option<String>> {
        match h.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(|s| Some(s.trim().to_owned())).map_err(|_| {
                S3Error::invalid_argument(format!("Header {name} is not valid ASCII."), name, "")
            }),
        }
    };
    match (get("if-none-match")?, get("if-match")?) {
        (None, None) => Ok(WriteCondition::None),
        (Some(v), None) if v == "*" => Ok(WriteCondition::IfNoneMatchAny),
        (Some(_), None) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "A header you provided implies functionality that is not implemented: If-None-Match on a write accepts only '*'.",
        )
        .field("Header", "If-None-Match")),
        (None, Some(v)) => Ok(WriteCondition::IfMatch(v)),
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "If-Match and If-None-Match together on a write are not implemented.",
        )
        .field("Header", "If-None-Match")),
    }
}

/// `x-amz-copy-source-range: bytes=first-last` (both inclusive, both
/// required) against the source size.
pub fn parse_copy_source_range(value: &str, size: u64) -> S3Result<ByteRange> {
    let invalid = || {
        S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
            "x-amz-copy-source-range",
            value,
        )
    };
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = a.trim().parse().map_err(|_| invalid())?;
    let last: u64 = b.trim().parse().map_err(|_| invalid())?;
    if first > last {
        return Err(invalid());
    }
    // Well-formed but beyond the source, as S3 answers it today: a range
    // that starts past the end is InvalidRequest, one that only ends past
    // it InvalidArgument.
    if first >= size {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The specified copy range is invalid for the source object size",
        ));
    }
    if last >= size {
        return Err(S3Error::invalid_argument(
            format!("Range specified is not valid for source object of size: {size}"),
            "x-amz-copy-source-range",
            value,
        ));
    }
    Ok(ByteRange {
        start: first,
        end: last + 1,
    })
}

/// What conditional headers decide for a GET or HEAD.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == etag)
}

/// The names of the four conditional headers of one request kind.
#[derive(Clone, Copy, Debug)]
pub struct ConditionHeaders {
    pub if_match: &'static str,
    pub if_unmodified_since: &'static str,
    pub if_none_match: &'static str,
    pub if_modified_since: &'static str,
}

/// GetObject / HeadObject.
pub const READ_CONDITIONS: ConditionHeaders = ConditionHeaders {
    if_match: "if-match",
    if_unmodified_since: "if-unmodified-since",
    if_none_match: "if-none-match",
    if_modified_since: "if-modified-since",
};

/// CopyObject, evaluated against the source object.
pub const COPY_SOURCE_CONDITIONS: ConditionHeaders = ConditionHeaders {
    if_match: "x-amz-copy-source-if-match",
    if_unmodified_since: "x-amz-copy-source-if-unmodified-since",
    if_none_match: "x-amz-copy-source-if-none-match",
    if_modified_since: "x-amz-copy-source-if-modified-since",
};

/// RFC 7232 evaluation order, as S3 applies it, for GET / HEAD.
pub fn evaluate_preconditions(h: &HeaderMap, v: &ObjectVersion) -> Precondition {
    evaluate_conditions(h, v, READ_CONDITIONS)
}

/// RFC 7232 evaluation order over the given header names: a matching
/// if-match makes if-unmodified-since irrelevant, a non-matching
/// if-none-match makes if-modified-since irrelevant (S3 documents exactly
/// these two combinations for CopyObject). Unparseable dates are ignored.
pub fn evaluate_conditions(
    h: &HeaderMap,
    v: &ObjectVersion,
    names: ConditionHeaders,
) -> Precondition {
    let modified_s = v.last_modified_ms / 1000;
    let date = |name: &str| {
        header_str(h, name)
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    if let Some(m) = header_str(h, names.if_match) {
        if !etag_matches(m, &v.etag) {
            return Precondition::Failed;
        }
    } else if let Some(t) = date(names.if_unmodified_since)
        && modified_s > t
    {
        return Precondition::Failed;
    }
    if let Some(m) = header_str(h, names.if_none_match) {
        if etag_matches(m, &v.etag) {
            return Precondition::NotModified;
        }
    } else if let Some(t) = date(names.if_modified_since)
        && modified_s <= t
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, size: u64) -> S3Result<Option<ByteRange>> {
        parse_range(Some(v), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(
            r("bytes=0-9", 100).unwrap(),
            Some(ByteRange { start: 0, end: 10 })
        );
        assert_eq!(
            r("bytes=90-", 100).unwrap(),
            Some(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-10", 100).unwrap(),
            Some(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-200", 100).unwrap(),
            Some(ByteRange { start: 0, end: 100 })
        );
        assert_eq!(
            r("bytes=50-1000", 100).unwrap(),
            Some(ByteRange {
                start: 50,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=0-0", 1).unwrap(),
            Some(ByteRange { start: 0, end: 1 })
        );
        assert!(r("bytes=100-", 100).is_err());
        assert!(r("bytes=0-0", 0).is_err());
        assert!(r("bytes=-0", 100).is_err());
        // Ignored syntaxes serve the whole object.
        assert_eq!(r("bytes=5-1", 100).unwrap(), None);
        assert_eq!(r("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(r("items=0-1", 100).unwrap(), None);
        assert_eq!(r("bytes=a-b", 100).unwrap(), None);
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(
            parse_copy_source_range("bytes=0-9", 100).unwrap(),
            ByteRange { start: 0, end: 10 }
        );
        assert_eq!(
            parse_copy_source_range("bytes=99-99", 100).unwrap(),
            ByteRange {
                start: 99,
                end: 100
            }
        );
        for bad in [
            "bytes=5-1",
            "bytes=-5",
            "bytes=5-",
            "0-5",
            "bytes=a-b",
            "bytes=0-100",
        ] {
            let e = parse_copy_source_range(bad, 100).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::InvalidArgument, "{bad}");
        }
        let e = parse_copy_source_range("bytes=100-200", 100).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidRequest);
    }

    #[test]
    fn write_conditions() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            write_condition(&m)
        };
        assert_eq!(h(&[]).unwrap(), WriteCondition::None);
        assert_eq!(
            h(&[("if-none-match", "*")]).unwrap(),
            WriteCondition::IfNoneMatchAny
        );
        assert_eq!(
            h(&[("if-match", "\"abc\"")]).unwrap(),
            WriteCondition::IfMatch("\"abc\"".into())
        );
        assert_eq!(
            h(&[("if-none-match", "\"abc\"")]).unwrap_err().code,
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            h(&[("if-none-match", "*"), ("if-match", "x")])
                .unwrap_err()
                .code,
            S3ErrorCode::NotImplemented
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso8601(1_255_369_830_123), "2009-10-12T17:50:30.123Z");
        assert_eq!(
            http_date(1_255_369_830_123),
            "Mon, 12 Oct 2009 17:50:30 GMT"
        );
    }

    #[test]
    fn metadata_limits_and_aws_chunked() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
        h.insert("x-amz-meta-a", HeaderValue::from_static("1"));
        let m = object_metadata(&h).unwrap();
        assert_eq!(m.content_encoding, None);
        assert_eq!(m.user_metadata, vec![("a".to_owned(), "1".to_owned())]);
        h.insert(
            "content-encoding",
            HeaderValue::from_static("gzip, aws-chunked"),
        );
        assert_eq!(
            object_metadata(&h).unwrap().content_encoding.as_deref(),
            Some("gzip")
        );
        h.insert(
            "x-amz-meta-big",
            HeaderValue::from_str(&"x".repeat(2100)).unwrap(),
        );
        assert_eq!(
            object_metadata(&h).unwrap_err().code,
            S3ErrorCode::MetadataTooLarge
        );
    }
}
