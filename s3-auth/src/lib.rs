//! Request authentication: the one AWS SigV4 verifier of Cairn, used by the
//! S3 front end (`cairn-s3-api`) and by the cluster's shard transfers
//! (`cairn-cluster`, service `cairn-shard`), so that neither depends on the
//! other and there is one implementation to get right.
//!
//! This crate owns:
//! - AWS Signature Version 4 *verification* of incoming requests, both header
//!   (`Authorization: AWS4-HMAC-SHA256 ...`) and presigned-URL (`X-Amz-*` query)
//!   forms ([`verify_request`]);
//! - the chained chunk/trailer signatures of `aws-chunked` uploads ([`ChunkSigner`]);
//! - the streaming `aws-chunked` body decoder ([`AwsChunkedDecoder`]);
//! - the S3 checksum algorithms (`x-amz-checksum-*`, [`ChecksumAlgorithm`]).
//!
//! It must never:
//! - do I/O (no sockets, files, clocks: the caller passes `now` and the bytes);
//! - log, or put into an error or `Debug` output, a secret key or a signing key;
//! - panic, index out of bounds or allocate without bound on client input;
//! - format S3 error XML: errors are typed ([`AuthError`], [`ChunkedError`]) and the
//!   caller maps them to S3 error codes in one place;
//! - depend on any Cairn crate.

#![forbid(unsafe_code)]

mod checksum;
mod chunked;
mod post_policy;
mod sigv4;

#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use checksum::{
    CHECKSUM_ALGORITHM_KEY, CHECKSUM_TYPE_KEY, ChecksumAlgorithm, ChecksumHasher, ChecksumType,
    stored_checksums,
};
pub use chunked::{
    AwsChunkedDecoder, MAX_CHUNK_LINE_LEN, MAX_CHUNK_SIZE, MAX_TRAILER_HEADERS, MAX_TRAILER_LEN,
};
pub use post_policy::{
    LengthRange, MAX_POST_FIELDS, PostForm, PostPolicy, VerifiedPost, verify_post,
};
pub use sigv4::{
    ChunkSigner, MAX_PRESIGN_EXPIRES_SECS, PayloadHash, S3_SERVICE, SecretLookup, VerifiedRequest,
    VerifyConfig, anonymous_request, verify_request,
};

/// Why SigV4 verification of a request (or of one of its chunks) failed.
///
/// `Display` texts are S3's messages where S3 has a fixed one; nothing here ever
/// contains a secret. Values echoed from the client are truncated and stripped of
/// control characters.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    /// (S3 answers this with AccessDenied.)
    #[error("Access Denied")]
    MissingAuthentication,
    /// Both an `Authorization` header and `X-Amz-*` presigned query parameters.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified"
    )]
    MultipleAuthMechanisms,
    /// Signature Version 2 (`Authorization: AWS AK:sig` or `?AWSAccessKeyId=..&Signature=..`).
    /// S3's message, then what to set in the clients that still default to
    /// SigV2 for presigned URLs (aws CLI v1, older boto).
    #[error(
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256. (This request is signed with Signature Version 2; aws CLI v1: `aws configure set default.s3.signature_version s3v4`; boto3: Config(signature_version='s3v4').)"
    )]
    SigV2NotSupported,
    /// Some other algorithm, e.g. SigV4a `AWS4-ECDSA-P256-SHA256` (the value is echoed, bounded).
    #[error(
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
    )]
    UnsupportedAlgorithm(String),
    /// The `Authorization` header could not be parsed or its scope is wrong
    /// (region, service, terminator, date). The message follows S3's wording.
    #[error("{0}")]
    AuthorizationHeaderMalformed(String),
    /// The presigned query parameters are missing, malformed or out of range
    /// (including `X-Amz-Expires`). The message follows S3's wording.
    #[error("{0}")]
    AuthorizationQueryParametersError(String),
    /// No usable `x-amz-date` / `Date` header (or `X-Amz-Date` parameter).
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    MissingOrInvalidDate,
    /// Header auth without `x-amz-content-sha256`.
    #[error("Missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,
    /// `x-amz-content-sha256` is neither a known keyword nor 64 hex characters.
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
    )]
    InvalidContentSha256,
    /// The access key is unknown to the [`SecretLookup`].
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId {
        /// As sent by the client (bounded).
        access_key: String,
    },
    /// The signature did not verify. The fields are those S3 returns in its error body.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )]
    SignatureDoesNotMatch(Box<SignatureMismatch>),
    /// Header-auth request dated more than `max_clock_skew` away from `now`.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed {
        /// The time the request claims.
        request_time: SystemTime,
        /// The `now` passed to verification.
        server_time: SystemTime,
    },
    /// Presigned request past `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired")]
    RequestExpired {
        /// `X-Amz-Date + X-Amz-Expires`.
        expires_at: SystemTime,
        /// The `now` passed to verification.
        server_time: SystemTime,
    },
    /// Presigned request dated more than `max_clock_skew` in the future.
    #[error("Request is not valid yet")]
    RequestNotYetValid {
        /// The time the request claims.
        request_time: SystemTime,
        /// The `now` passed to verification.
        server_time: SystemTime,
    },
    /// Header auth: `x-amz-*` headers were sent that are not in SignedHeaders
    /// (S3: AccessDenied, "There were headers present in the request which were not signed").
    #[error("There were headers present in the request which were not signed")]
    HeadersNotSigned {
        /// Comma-separated lowercase names (bounded).
        headers: String,
    },
    /// A bound on client-supplied authentication data was exceeded.
    #[error("request authentication data too large: {0}")]
    LimitExceeded(&'static str),
    /// An `aws-chunked` chunk signature did not verify.
    #[error("chunk signature does not match")]
    ChunkSignatureMismatch,
    /// An `aws-chunked` trailer signature did not verify.
    #[error("trailer signature does not match")]
    TrailerSignatureMismatch,
    /// POST Object: a form with some of the SigV4 fields lacks this one
    /// (named as S3 names it). S3: 400 InvalidArgument.
    #[error(
        "Bucket POST must contain a field named '{0}'.  If it is specified, please check the order of the fields."
    )]
    PostFieldMissing(&'static str),
    /// POST Object: a SigV4 field is malformed or names another scope.
    /// S3: 400 InvalidArgument.
    #[error("{0}")]
    PostFieldInvalid(String),
    /// POST Object: the policy is not base64 JSON of S3's shape.
    /// S3: 400 InvalidPolicyDocument ("Invalid Policy: …").
    #[error("{0}")]
    PostPolicyMalformed(String),
    /// POST Object: the policy expired, a condition failed, or a field is
    /// not covered. S3: 403 AccessDenied ("Invalid according to Policy: …").
    #[error("{0}")]
    PostPolicyDenied(String),
}

/// What S3 reports with `SignatureDoesNotMatch` (`AWSAccessKeyId`, `SignatureProvided`,
/// `StringToSign`, `CanonicalRequest`). Contains no secret; it is what the client
/// should have signed. Callers should not log it at default levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureMismatch {
    /// The access key the client used.
    pub access_key: String,
    /// The signature the client sent (bounded).
    pub signature_provided: String,
    /// The string to sign we computed.
    pub string_to_sign: String,
    /// The canonical request we computed (lossy UTF-8 if a header value was not UTF-8).
    pub canonical_request: String,
}

/// Why decoding an `aws-chunked` body failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// The framing is not valid `aws-chunked`.
    #[error("malformed aws-chunked body: {0}")]
    Malformed(&'static str),
    /// A chunk's `chunk-signature` did not verify.
    #[error("chunk signature does not match")]
    ChunkSignatureMismatch,
    /// The `x-amz-trailer-signature` did not verify (or was missing where required).
    #[error("trailer signature does not match")]
    TrailerSignatureMismatch,
    /// The body ended before the final chunk (and trailer section, if expected).
    #[error("aws-chunked body ended early")]
    Incomplete,
    /// A chunk, chunk-size line or trailer section exceeded its limit.
    #[error("aws-chunked element too large")]
    TooLarge,
}
