//! AWS Signature Version 4 verification, as Amazon S3 performs it.
//!
//! References: "Authenticating Requests (AWS Signature Version 4)" in the Amazon S3 API
//! reference — <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>,
//! its header (`sig-v4-header-based-auth.html`), presigned (`sigv4-query-string-auth.html`),
//! chunked (`sigv4-streaming.html`) and trailer (`sigv4-streaming-trailers.html`) pages.

use std::fmt;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderValue;
use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{AuthError, SignatureMismatch};

/// The only algorithm we verify.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SIGV4A_ALGORITHM: &str = "AWS4-ECDSA-P256-SHA256";
/// The service of S3 requests' credential scope.
pub const S3_SERVICE: &str = "s3";
const TERMINATOR: &str = "aws4_request";

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

const Q_ALGORITHM: &[u8] = b"X-Amz-Algorithm";
const Q_CREDENTIAL: &[u8] = b"X-Amz-Credential";
const Q_DATE: &[u8] = b"X-Amz-Date";
const Q_EXPIRES: &[u8] = b"X-Amz-Expires";
const Q_SIGNED_HEADERS: &[u8] = b"X-Amz-SignedHeaders";
const Q_SIGNATURE: &[u8] = b"X-Amz-Signature";
const Q_CONTENT_SHA256: &[u8] = b"X-Amz-Content-Sha256";

/// SHA-256 of the empty string.
pub(crate) const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Largest `X-Amz-Expires` S3 accepts: 7 days.
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;

// Bounds on client-supplied authentication data.
const MAX_AUTHORIZATION_LEN: usize = 16 * 1024;
const MAX_SIGNED_HEADERS: usize = 128;
const MAX_QUERY_PARAMS: usize = 1024;
const MAX_QUERY_LEN: usize = 64 * 1024;
const MAX_ACCESS_KEY_LEN: usize = 128;
/// Longest client value echoed back in an error message.
const MAX_ECHO_LEN: usize = 128;

/// Resolves an access key to its secret. Implementations must be cheap and must not log
/// the secret.
pub trait SecretLookup: Send + Sync {
    /// The secret access key for `access_key`, or `None` if unknown.
    fn secret_key(&self, access_key: &str) -> Option<String>;
}

/// What the client declared about the payload (`x-amz-content-sha256`, or the
/// `X-Amz-Content-Sha256` query parameter of a presigned request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    /// `UNSIGNED-PAYLOAD` (also the presigned default): the body is not covered.
    Unsigned,
    /// The hex SHA-256 the client claims; the caller must check it against the body.
    Sha256([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked with chunk signatures.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks plus a signed trailer.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked without signatures, with a trailer.
    StreamingUnsignedTrailer,
}

impl PayloadHash {
    /// Whether the body is `aws-chunked` encoded.
    pub fn is_streaming(self) -> bool {
        matches!(
            self,
            PayloadHash::StreamingSigned
                | PayloadHash::StreamingSignedTrailer
                | PayloadHash::StreamingUnsignedTrailer
        )
    }

    /// Whether the aws-chunked body ends with a trailer section.
    pub fn has_trailer(self) -> bool {
        matches!(
            self,
            PayloadHash::StreamingSignedTrailer | PayloadHash::StreamingUnsignedTrailer
        )
    }

    fn parse(value: &str) -> Result<Self, AuthError> {
        match value {
            UNSIGNED_PAYLOAD => Ok(PayloadHash::Unsigned),
            STREAMING_SIGNED => Ok(PayloadHash::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Ok(PayloadHash::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Ok(PayloadHash::StreamingUnsignedTrailer),
            hex_value => decode_hex32(hex_value)
                .map(PayloadHash::Sha256)
                .ok_or(AuthError::InvalidContentSha256),
        }
    }
}

/// A request whose signature verified.
#[derive(Debug)]
pub struct VerifiedRequest {
    /// The access key that signed the request.
    pub access_key: String,
    /// What the client declared about the body.
    pub payload: PayloadHash,
    /// Whether the request was authenticated by presigned query parameters.
    pub presigned: bool,
    /// Present for the two `STREAMING-AWS4-HMAC-*` modes: verifies chunk and trailer
    /// signatures, seeded with the request's own signature.
    pub chunk_signer: Option<ChunkSigner>,
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// The region this endpoint answers for; the credential scope must name it.
    pub region: String,
    /// The service the credential scope must name: [`S3_SERVICE`] for S3.
    pub service: String,
    /// Largest accepted distance between the request date and `now` (S3: 15 minutes).
    pub max_clock_skew: Duration,
    /// Largest accepted `X-Amz-Expires` (S3: 7 days; never more than that).
    pub max_presign_expiry: Duration,
}

impl VerifyConfig {
    /// S3's defaults (15 minutes skew, 7 days presign expiry) for `region`.
    pub fn new(region: impl Into<String>) -> Self {
        VerifyConfig {
            region: region.into(),
            service: S3_SERVICE.to_owned(),
            max_clock_skew: Duration::from_secs(15 * 60),
            max_presign_expiry: Duration::from_secs(MAX_PRESIGN_EXPIRES_SECS),
        }
    }
}

/// Verifies the chained signatures of an `aws-chunked` body (chunks, then the trailer).
///
/// Holds the day's signing key; its `Debug` output redacts it and it is zeroed on drop.
#[derive(Clone)]
pub struct ChunkSigner {
    signing_key: Zeroizing<[u8; 32]>,
    /// `20130524/us-east-1/s3/aws4_request`
    scope: String,
    /// `20130524T000000Z`
    timestamp: String,
    previous_signature: [u8; 32],
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("scope", &self.scope)
            .field("timestamp", &self.timestamp)
            .field("previous_signature", &hex::encode(self.previous_signature))
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    pub(crate) fn new(
        signing_key: [u8; 32],
        scope: String,
        timestamp: String,
        seed_signature: [u8; 32],
    ) -> Self {
        ChunkSigner {
            signing_key: Zeroizing::new(signing_key),
            scope,
            timestamp,
            previous_signature: seed_signature,
        }
    }

    /// Verifies the signature of the next chunk, given the SHA-256 of its data (the final
    /// zero-length chunk included). On success the chain advances; on failure it does not.
    pub fn verify_chunk(
        &mut self,
        chunk_sha256: &[u8; 32],
        claimed_sig_hex: &str,
    ) -> Result<(), AuthError> {
        let expected = self.chunk_signature(chunk_sha256);
        if signatures_match(&expected, claimed_sig_hex) {
            self.previous_signature = expected;
            Ok(())
        } else {
            Err(AuthError::ChunkSignatureMismatch)
        }
    }

    /// Verifies `x-amz-trailer-signature`, given the canonical trailer text: each trailer
    /// header (not the signature) as `name:value\n`, names lowercase, sorted.
    pub fn verify_trailer(
        &mut self,
        trailer_bytes_canonical: &[u8],
        claimed_sig_hex: &str,
    ) -> Result<(), AuthError> {
        let expected = self.trailer_signature(trailer_bytes_canonical);
        if signatures_match(&expected, claimed_sig_hex) {
            self.previous_signature = expected;
            Ok(())
        } else {
            Err(AuthError::TrailerSignatureMismatch)
        }
    }

    /// `AWS4-HMAC-SHA256-PAYLOAD` string to sign: the previous signature chained, the
    /// hash of the empty string, the hash of the chunk data.
    pub(crate) fn chunk_signature(&self, chunk_sha256: &[u8; 32]) -> [u8; 32] {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            self.timestamp,
            self.scope,
            hex::encode(self.previous_signature),
            hex::encode(EMPTY_SHA256),
            hex::encode(chunk_sha256),
        );
        hmac_sha256(self.signing_key.as_slice(), sts.as_bytes())
    }

    /// `AWS4-HMAC-SHA256-TRAILER` string to sign: the previous signature chained and the
    /// hash of the canonical trailer headers.
    pub(crate) fn trailer_signature(&self, trailer_bytes_canonical: &[u8]) -> [u8; 32] {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.timestamp,
            self.scope,
            hex::encode(self.previous_signature),
            hex::encode(sha256(trailer_bytes_canonical)),
        );
        hmac_sha256(self.signing_key.as_slice(), sts.as_bytes())
    }
}

/// Verifies the SigV4 signature of a request (header or presigned form).
///
/// `now` is the server's current time. On success the caller still has to check the
/// body against [`VerifiedRequest::payload`] (or decode it with the chunk signer).
pub fn verify_request(
    parts: &Parts,
    secrets: &dyn SecretLookup,
    cfg: &VerifyConfig,
    now: SystemTime,
) -> Result<VerifiedRequest, AuthError> {
    let raw_query = parts.uri.query().unwrap_or("");
    if raw_query.len() > MAX_QUERY_LEN {
        return Err(AuthError::LimitExceeded("query string too long"));
    }
    let query = parse_query(raw_query)?;
    let has_query = |name: &[u8]| query.iter().any(|(k, _)| k == name);
    let presigned = has_query(Q_ALGORITHM) || has_query(Q_CREDENTIAL) || has_query(Q_SIGNATURE);

    match (parts.headers.get(AUTHORIZATION), presigned) {
        (Some(_), true) => Err(AuthError::MultipleAuthMechanisms),
        (Some(header), false) => verify_header_auth(parts, header, &query, secrets, cfg, now),
        (None, true) => verify_presigned(parts, &query, secrets, cfg, now),
        (None, false) => {
            if has_query(b"AWSAccessKeyId") && has_query(b"Signature") {
                Err(AuthError::SigV2NotSupported)
            } else {
                Err(AuthError::MissingAuthentication)
            }
        }
    }
}

/// What an unsigned (anonymous) request declares about its body, for the
/// caller that has decided to serve it (a bucket policy allows anonymous
/// access): `x-amz-content-sha256` if given (a hex digest is then checked
/// against the body like a signed one), else `UNSIGNED-PAYLOAD`. The signed
/// streaming modes need a signature to seed them and are refused.
///
/// Call only after [`verify_request`] answered `MissingAuthentication`.
pub fn anonymous_request(parts: &Parts) -> Result<VerifiedRequest, AuthError> {
    let payload = match parts.headers.get(X_AMZ_CONTENT_SHA256) {
        None => PayloadHash::Unsigned,
        Some(v) => {
            let v = v.to_str().map_err(|_| AuthError::InvalidContentSha256)?;
            match PayloadHash::parse(v.trim())? {
                PayloadHash::StreamingSigned | PayloadHash::StreamingSignedTrailer => {
                    return Err(AuthError::MissingAuthentication);
                }
                other => other,
            }
        }
    };
    Ok(VerifiedRequest {
        access_key: String::new(),
        payload,
        presigned: false,
        chunk_signer: None,
    })
}

/// A decoded query parameter: (name, value).
type QueryPair = (Vec<u8>, Vec<u8>);

/// The parts common to both forms, once parsed.
struct AuthInput {
    access_key: String,
    /// `YYYYMMDD` from the credential scope.
    scope_date: String,
    region: String,
    /// The credential scope's service (checked against the configuration).
    service: String,
    /// The raw SignedHeaders list, as it goes into the canonical request.
    signed_headers: String,
    signature: String,
    /// `YYYYMMDDTHHMMSSZ`
    timestamp: String,
    payload_line: String,
    payload: PayloadHash,
    presigned: bool,
}

fn verify_header_auth(
    parts: &Parts,
    header: &HeaderValue,
    query: &[QueryPair],
    secrets: &dyn SecretLookup,
    cfg: &VerifyConfig,
    now: SystemTime,
) -> Result<VerifiedRequest, AuthError> {
    if header.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthError::LimitExceeded("Authorization header too long"));
    }
    let value = header
        .to_str()
        .map_err(|_| header_malformed("the Authorization header is not ASCII"))?
        .trim();
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    match algorithm {
        ALGORITHM => {}
        "AWS" => return Err(AuthError::SigV2NotSupported),
        other => return Err(AuthError::UnsupportedAlgorithm(echo(other))),
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let component = component.trim();
        if component.is_empty() {
            continue;
        }
        let (key, val) = component.split_once('=').ok_or_else(|| {
            header_malformed(&format!(
                "the Authorization header component \"{}\" is not of the form key=value",
                echo(component)
            ))
        })?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(header_malformed(&format!(
                    "unknown Authorization header component \"{}\"",
                    echo(other)
                )));
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(header_malformed(&format!(
                "the Authorization header component \"{}\" appears twice",
                echo(key.trim())
            )));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(header_malformed(
            "the Authorization header requires Credential, SignedHeaders and Signature",
        ));
    };

    let scope = parse_credential(credential, false)?;
    check_scope(&scope, cfg, false)?;

    // Date: x-amz-date, else Date.
    let (timestamp, request_time) = if let Some(v) = parts.headers.get(X_AMZ_DATE) {
        let s = v
            .to_str()
            .map_err(|_| AuthError::MissingOrInvalidDate)?
            .trim();
        let t = parse_amz_date(s).ok_or(AuthError::MissingOrInvalidDate)?;
        (s.to_owned(), t)
    } else if let Some(v) = parts.headers.get(DATE) {
        let s = v.to_str().map_err(|_| AuthError::MissingOrInvalidDate)?;
        let t = parse_date_header(s.trim()).ok_or(AuthError::MissingOrInvalidDate)?;
        (
            format_amz_date(t).ok_or(AuthError::MissingOrInvalidDate)?,
            t,
        )
    } else {
        return Err(AuthError::MissingOrInvalidDate);
    };
    check_scope_date(&scope.date, &timestamp, false)?;

    if abs_diff(request_time, now) > cfg.max_clock_skew {
        return Err(AuthError::RequestTimeTooSkewed {
            request_time,
            server_time: now,
        });
    }

    let payload_line = parts
        .headers
        .get(X_AMZ_CONTENT_SHA256)
        .ok_or(AuthError::MissingContentSha256)?
        .to_str()
        .map_err(|_| AuthError::InvalidContentSha256)?
        .trim()
        .to_owned();
    let payload = PayloadHash::parse(&payload_line)?;

    let signed_list = parse_signed_headers(signed_headers, false)?;
    check_amz_headers_signed(parts, &signed_list, false)?;

    let input = AuthInput {
        access_key: scope.access_key,
        scope_date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        timestamp,
        payload_line,
        payload,
        presigned: false,
    };
    finish_verification(parts, query, &signed_list, input, secrets)
}

fn verify_presigned(
    parts: &Parts,
    query: &[QueryPair],
    secrets: &dyn SecretLookup,
    cfg: &VerifyConfig,
    now: SystemTime,
) -> Result<VerifiedRequest, AuthError> {
    let get = |name: &'static [u8]| -> Result<Option<&str>, AuthError> {
        let mut found = None;
        for (k, v) in query {
            if k.as_slice() == name {
                if found.is_some() {
                    return Err(query_error(format!(
                        "the {} parameter appears more than once",
                        String::from_utf8_lossy(name)
                    )));
                }
                found = Some(std::str::from_utf8(v).map_err(|_| {
                    query_error(format!(
                        "the {} parameter is not valid UTF-8",
                        String::from_utf8_lossy(name)
                    ))
                })?);
            }
        }
        Ok(found)
    };

    let algorithm = get(Q_ALGORITHM)?;
    match algorithm {
        Some(ALGORITHM) => {}
        Some(SIGV4A_ALGORITHM) => {
            return Err(AuthError::UnsupportedAlgorithm(SIGV4A_ALGORITHM.to_owned()));
        }
        Some(_) => {
            return Err(query_error(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".to_owned(),
            ));
        }
        None => {}
    }
    let (
        Some(_),
        Some(credential),
        Some(amz_date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        algorithm,
        get(Q_CREDENTIAL)?,
        get(Q_DATE)?,
        get(Q_EXPIRES)?,
        get(Q_SIGNED_HEADERS)?,
        get(Q_SIGNATURE)?,
    )
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.".to_owned(),
        ));
    };

    let scope = parse_credential(credential, true)?;
    check_scope(&scope, cfg, true)?;

    let request_time = parse_amz_date(amz_date).ok_or_else(|| {
        query_error(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".to_owned(),
        )
    })?;
    check_scope_date(&scope.date, amz_date, true)?;

    let expires = parse_expires(expires, cfg)?;
    if request_time > now
        && request_time.duration_since(now).unwrap_or_default() > cfg.max_clock_skew
    {
        return Err(AuthError::RequestNotYetValid {
            request_time,
            server_time: now,
        });
    }
    let expires_at = request_time
        .checked_add(expires)
        .ok_or(AuthError::MissingOrInvalidDate)?;
    if expires.is_zero() || now > expires_at {
        return Err(AuthError::RequestExpired {
            expires_at,
            server_time: now,
        });
    }

    let payload_line = get(Q_CONTENT_SHA256)?
        .unwrap_or(UNSIGNED_PAYLOAD)
        .to_owned();
    let payload = PayloadHash::parse(&payload_line)?;

    let signed_list = parse_signed_headers(signed_headers, true)?;
    // The URL's holder chooses the headers: any `x-amz-*` the signer did
    // not list (a copy source, metadata, tagging, checksums, ACLs) would
    // change what the request does without the signer's consent.
    check_amz_headers_signed(parts, &signed_list, true)?;
    let input = AuthInput {
        access_key: scope.access_key,
        scope_date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        timestamp: amz_date.to_owned(),
        payload_line,
        payload,
        presigned: true,
    };
    finish_verification(parts, query, &signed_list, input, secrets)
}

/// Builds the canonical request, looks up the secret and compares signatures.
fn finish_verification(
    parts: &Parts,
    query: &[QueryPair],
    signed_list: &[&str],
    input: AuthInput,
    secrets: &dyn SecretLookup,
) -> Result<VerifiedRequest, AuthError> {
    let secret = secrets
        .secret_key(&input.access_key)
        .map(Zeroizing::new)
        .ok_or_else(|| AuthError::InvalidAccessKeyId {
            access_key: echo(&input.access_key),
        })?;

    let (canonical_request, headers_complete) = canonical_request(
        parts,
        query,
        input.presigned,
        signed_list,
        &input.signed_headers,
        &input.payload_line,
    );
    let scope = format!(
        "{}/{}/{}/{}",
        input.scope_date, input.region, input.service, TERMINATOR
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        input.timestamp,
        scope,
        hex::encode(sha256(&canonical_request)),
    );
    let signing_key = Zeroizing::new(signing_key(
        &secret,
        &input.scope_date,
        &input.region,
        &input.service,
    ));
    drop(secret);
    let expected = hmac_sha256(signing_key.as_slice(), string_to_sign.as_bytes());

    if !(headers_complete && signatures_match(&expected, &input.signature)) {
        return Err(AuthError::SignatureDoesNotMatch(Box::new(
            SignatureMismatch {
                access_key: input.access_key,
                signature_provided: echo(&input.signature),
                string_to_sign,
                canonical_request: String::from_utf8_lossy(&canonical_request).into_owned(),
            },
        )));
    }

    let chunk_signer = match input.payload {
        PayloadHash::StreamingSigned | PayloadHash::StreamingSignedTrailer => Some(
            ChunkSigner::new(*signing_key, scope, input.timestamp, expected),
        ),
        _ => None,
    };
    Ok(VerifiedRequest {
        access_key: input.access_key,
        payload: input.payload,
        presigned: input.presigned,
        chunk_signer,
    })
}

/// The canonical request bytes, and whether every signed header was present.
fn canonical_request(
    parts: &Parts,
    query: &[QueryPair],
    presigned: bool,
    signed_list: &[&str],
    signed_headers_raw: &str,
    payload_line: &str,
) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b'\n');
    canonical_uri(&mut out, parts.uri.path());
    out.push(b'\n');
    canonical_query(&mut out, query, presigned);
    out.push(b'\n');

    let mut complete = true;
    for name in signed_list {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for value in parts.headers.get_all(*name) {
            if !first {
                out.push(b',');
            }
            first = false;
            push_trimmed(&mut out, value.as_bytes());
        }
        if first {
            // HTTP/2 carries the host in :authority, which hyper puts in the URI.
            match parts.uri.authority() {
                Some(authority) if *name == "host" => {
                    push_trimmed(&mut out, authority.as_str().as_bytes());
                }
                _ => complete = false,
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers_raw.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_line.as_bytes());
    (out, complete)
}

/// S3's canonical URI: the path decoded once, then re-encoded (keep `A-Za-z0-9-._~/`).
/// No `.`/`..`/`//` normalisation.
fn canonical_uri(out: &mut Vec<u8>, raw_path: &str) {
    if raw_path.is_empty() {
        out.push(b'/');
        return;
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode(raw_path.as_bytes()).collect();
    uri_encode(out, &decoded, true);
}

/// Every parameter decoded then strictly re-encoded, sorted by name then value.
fn canonical_query(out: &mut Vec<u8>, query: &[QueryPair], presigned: bool) {
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = query
        .iter()
        .filter(|(k, _)| !(presigned && k.as_slice() == Q_SIGNATURE))
        .map(|(k, v)| {
            let mut ek = Vec::with_capacity(k.len());
            uri_encode(&mut ek, k, false);
            let mut ev = Vec::with_capacity(v.len());
            uri_encode(&mut ev, v, false);
            (ek, ev)
        })
        .collect();
    encoded.sort();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

/// Splits the raw query into decoded (name, value) pairs. `+` stays a literal plus.
fn parse_query(raw: &str) -> Result<Vec<QueryPair>, AuthError> {
    let mut pairs = Vec::new();
    for segment in raw.split('&') {
        if segment.is_empty() {
            continue;
        }
        if pairs.len() >= MAX_QUERY_PARAMS {
            return Err(AuthError::LimitExceeded("too many query parameters"));
        }
        let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
        pairs.push((
            percent_encoding::percent_decode(k.as_bytes()).collect(),
            percent_encoding::percent_decode(v.as_bytes()).collect(),
        ));
    }
    Ok(pairs)
}

/// SigV4 URI encoding: unreserved characters (and `/` in paths) kept, everything else
/// `%XX` with upper-case hex.
fn uri_encode(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(hex_upper(b >> 4));
            out.push(hex_upper(b & 0x0f));
        }
    }
}

const fn hex_upper(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'A' + (nibble & 0x0f) - 10,
    }
}

/// Trims spaces at both ends and collapses inner runs of spaces to one (S3 "trimall";
/// only the space character, as S3 does).
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ');
    let end = value.iter().rposition(|&b| b != b' ');
    let (Some(start), Some(end)) = (start, end) else {
        return;
    };
    let mut prev_space = false;
    for &b in value.iter().take(end + 1).skip(start) {
        if b == b' ' {
            if prev_space {
                continue;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
        out.push(b);
    }
}

pub(crate) struct Scope {
    pub(crate) access_key: String,
    pub(crate) date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) terminator: String,
}

pub(crate) fn parse_credential(credential: &str, presigned: bool) -> Result<Scope, AuthError> {
    let malformed = || {
        let msg = "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".";
        if presigned {
            query_error(format!(
                "Error parsing the X-Amz-Credential parameter; {msg}"
            ))
        } else {
            header_malformed(msg)
        }
    };
    let mut it = credential.split('/');
    let (Some(ak), Some(date), Some(region), Some(service), Some(terminator), None) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return Err(malformed());
    };
    if ak.is_empty() || ak.len() > MAX_ACCESS_KEY_LEN || date.is_empty() {
        return Err(malformed());
    }
    Ok(Scope {
        access_key: ak.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        terminator: terminator.to_owned(),
    })
}

fn check_scope(scope: &Scope, cfg: &VerifyConfig, presigned: bool) -> Result<(), AuthError> {
    let Some(msg) = scope_problem(scope, cfg) else {
        return Ok(());
    };
    Err(if presigned {
        query_error(format!(
            "Error parsing the X-Amz-Credential parameter; {msg}"
        ))
    } else {
        header_malformed(&msg)
    })
}

/// What is wrong with a credential scope for this endpoint (region,
/// service, terminator), in S3's words; `None` when nothing is.
pub(crate) fn scope_problem(scope: &Scope, cfg: &VerifyConfig) -> Option<String> {
    if scope.region != cfg.region {
        return Some(format!(
            "the region '{}' is wrong; expecting '{}'",
            echo(&scope.region),
            cfg.region
        ));
    }
    if scope.service != cfg.service {
        return Some(format!(
            "incorrect service \"{}\". This endpoint belongs to \"{}\".",
            echo(&scope.service),
            cfg.service
        ));
    }
    if scope.terminator != TERMINATOR {
        return Some(format!(
            "incorrect terminal \"{}\". This endpoint uses \"{TERMINATOR}\".",
            echo(&scope.terminator)
        ));
    }
    None
}

/// The credential-scope date must be the request date's day.
pub(crate) fn check_scope_date(
    scope_date: &str,
    timestamp: &str,
    presigned: bool,
) -> Result<(), AuthError> {
    let day = timestamp.get(..8).unwrap_or("");
    if scope_date == day {
        return Ok(());
    }
    let msg = format!(
        "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
        echo(scope_date),
        echo(day)
    );
    if presigned {
        Err(query_error(format!(
            "Error parsing the X-Amz-Credential parameter; {msg}"
        )))
    } else {
        Err(header_malformed(&msg))
    }
}

/// Validates the SignedHeaders list: non-empty names, lowercase token characters,
/// includes `host`, bounded count.
fn parse_signed_headers(raw: &str, presigned: bool) -> Result<Vec<&str>, AuthError> {
    let err = |msg: &str| {
        if presigned {
            query_error(format!("X-Amz-SignedHeaders is invalid: {msg}"))
        } else {
            header_malformed(&format!("SignedHeaders is invalid: {msg}"))
        }
    };
    let mut list = Vec::new();
    for name in raw.split(';') {
        if list.len() >= MAX_SIGNED_HEADERS {
            return Err(AuthError::LimitExceeded("too many signed headers"));
        }
        let valid = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(
                        b,
                        b'!' | b'#'
                            | b'$'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'*'
                            | b'+'
                            | b'-'
                            | b'.'
                            | b'^'
                            | b'_'
                            | b'`'
                            | b'|'
                            | b'~'
                    )
            });
        if !valid {
            return Err(err("header names must be lowercase and separated by ';'"));
        }
        list.push(name);
    }
    if !list.contains(&"host") {
        return Err(err("the host header must be signed"));
    }
    Ok(list)
}

/// Both forms: S3 refuses `x-amz-*` headers that are present but not signed.
/// Exempt, as in S3, is `x-amz-content-sha256` (in header auth it is in the
/// string to sign anyway; a presigned request takes its payload mode from
/// the signed query and never reads the header), and in header auth
/// `x-amz-date`, the signed timestamp itself. A presigned request's holder
/// may add no other.
fn check_amz_headers_signed(
    parts: &Parts,
    signed: &[&str],
    presigned: bool,
) -> Result<(), AuthError> {
    let mut unsigned = String::new();
    for name in parts.headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-")
            && name != X_AMZ_CONTENT_SHA256
            && (presigned || name != X_AMZ_DATE)
            && !signed.contains(&name)
        {
            if unsigned.len() > MAX_ECHO_LEN {
                break;
            }
            if !unsigned.is_empty() {
                unsigned.push(',');
            }
            unsigned.push_str(name);
        }
    }
    if unsigned.is_empty() {
        Ok(())
    } else {
        Err(AuthError::HeadersNotSigned { headers: unsigned })
    }
}

fn parse_expires(value: &str, cfg: &VerifyConfig) -> Result<Duration, AuthError> {
    if let Some(digits) = value.strip_prefix('-')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(query_error("X-Amz-Expires must be non-negative".to_owned()));
    }
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(query_error("X-Amz-Expires should be a number".to_owned()));
    }
    let secs: u64 = value
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number".to_owned()))?;
    let max = MAX_PRESIGN_EXPIRES_SECS.min(cfg.max_presign_expiry.as_secs());
    if secs > max {
        return Err(query_error(if max == MAX_PRESIGN_EXPIRES_SECS {
            format!(
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than {max} seconds"
            )
        } else {
            format!("X-Amz-Expires must be at most {max} seconds on this server")
        }));
    }
    // Zero is valid syntax for a URL that has already expired (S3 answers
    // "Request has expired"); the caller checks that.
    Ok(Duration::from_secs(secs))
}

/// A `Date` header: the HTTP forms (RFC 1123 with `GMT`, RFC 850,
/// asctime), or RFC 1123 with a numeric zone (`Thu, 04 Dec 2026 11:00:00
/// -0000`, what Python's `email.utils.formatdate` makes and botocore sends
/// when a caller sets `Date`).
fn parse_date_header(s: &str) -> Option<SystemTime> {
    if let Ok(t) = httpdate::parse_http_date(s) {
        return Some(t);
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    let t = time::OffsetDateTime::parse(s, format).ok()?;
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, format).ok()?.assume_utc();
    let secs = u64::try_from(dt.unix_timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Formats as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(t: SystemTime) -> Option<String> {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let dt = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    dt.format(format).ok()
}

fn abs_diff(a: SystemTime, b: SystemTime) -> Duration {
    match a.duration_since(b) {
        Ok(d) => d,
        Err(e) => e.duration(),
    }
}

fn header_malformed(msg: &str) -> AuthError {
    AuthError::AuthorizationHeaderMalformed(format!("The authorization header is malformed; {msg}"))
}

fn query_error(msg: String) -> AuthError {
    AuthError::AuthorizationQueryParametersError(msg)
}

/// A client value made safe to echo in an error message: bounded, no control characters.
fn echo(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHO_LEN)
        .collect()
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Constant-time comparison of a computed signature with the client's hex; a value
/// that is not 64 hex characters simply does not match.
pub(crate) fn signatures_match(expected: &[u8; 32], claimed_hex: &str) -> bool {
    match decode_hex32(claimed_hex) {
        Some(claimed) => bool::from(expected.as_slice().ct_eq(claimed.as_slice())),
        None => false,
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256. Keys longer than the block are hashed first and shorter ones
/// zero-padded, exactly as RFC 2104 specifies, so the fixed-size (infallible)
/// constructor can be used.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        let hashed = sha256(key);
        block
            .iter_mut()
            .zip(hashed.iter())
            .for_each(|(d, s)| *d = *s);
    } else {
        block.iter_mut().zip(key.iter()).for_each(|(d, s)| *d = *s);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac_sha256(&k_secret, date.as_bytes()));
    let k_region = Zeroizing::new(hmac_sha256(k_date.as_slice(), region.as_bytes()));
    let k_service = Zeroizing::new(hmac_sha256(k_region.as_slice(), service.as_bytes()));
    hmac_sha256(k_service.as_slice(), TERMINATOR.as_bytes())
}
