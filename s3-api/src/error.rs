//! S3 errors: the one place where every internal error becomes an S3 code,
//! an HTTP status and a message. Internal details go to the log with the
//! request id, never to the client.

use http::StatusCode;

use crate::auth::{AuthError, ChunkedError};
use crate::body::BodyError;
use cairn_storage_engine::EngineError;

/// Every S3 error code this server returns, with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3ErrorCode {
    AccessControlListNotSupported,
    AccessDenied,
    UnexpectedContent,
    MissingSecurityHeader,
    MalformedACLError,
    InvalidBucketAclWithObjectOwnership,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BucketAlreadyOwnedByYou,
    /// The name is taken by a bucket another key owns.
    BucketAlreadyExists,
    BucketNotEmpty,
    ConditionalRequestConflict,
    EntityTooLarge,
    EntityTooSmall,
    IllegalLocationConstraintException,
    IllegalVersioningConfigurationException,
    IncompleteBody,
    InsufficientStorage,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidBucketState,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidTag,
    KeyTooLongError,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NoSuchVersion,
    NoSuchTagSet,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    RequestHeaderSectionTooLarge,
    RequestTimeTooSkewed,
    RequestTimeout,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    InvalidPartNumber,
    InvalidStorageClass,
    InvalidObjectState,
    NoSuchCORSConfiguration,
    NoSuchObjectLockConfiguration,
    NoSuchLifecycleConfiguration,
    ObjectLockConfigurationNotFoundError,
    NoSuchBucketPolicy,
    NoSuchWebsiteConfiguration,
    ReplicationConfigurationNotFoundError,
    NoSuchConfiguration,
    MalformedPolicy,
    NoSuchPublicAccessBlockConfiguration,
    /// A CORS preflight the bucket's rules do not allow (S3's `AccessForbidden`).
    AccessForbidden,
    /// A request S3 cannot even classify (a preflight without `Origin`).
    BadRequest,
    /// An SSE-C algorithm other than AES256.
    InvalidEncryptionAlgorithmError,
    /// SSE-KMS: the key a request names does not exist
    /// (`KMS.NotFoundException`, as S3 passes KMS's error on).
    KmsNotFound,
    /// SSE-KMS: the key is disabled (`KMS.DisabledException`).
    KmsDisabled,
    /// POST Object: the policy is not a valid policy document.
    InvalidPolicyDocument,
    /// POST Object: the body is not well-formed multipart/form-data.
    MalformedPOSTRequest,
    /// POST Object: the fields before the file exceed 20 KiB.
    MaxPostPreDataLengthExceeded,
}

impl S3ErrorCode {
    pub fn as_str(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessControlListNotSupported => "AccessControlListNotSupported",
            AccessDenied => "AccessDenied",
            UnexpectedContent => "UnexpectedContent",
            MissingSecurityHeader => "MissingSecurityHeader",
            MalformedACLError => "MalformedACLError",
            InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketNotEmpty => "BucketNotEmpty",
            ConditionalRequestConflict => "ConditionalRequestConflict",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IllegalLocationConstraintException => "IllegalLocationConstraintException",
            IllegalVersioningConfigurationException => "IllegalVersioningConfigurationException",
            IncompleteBody => "IncompleteBody",
            InsufficientStorage => "InsufficientStorage",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidBucketState => "InvalidBucketState",
            InvalidDigest => "InvalidDigest",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidTag => "InvalidTag",
            KeyTooLongError => "KeyTooLongError",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NoSuchVersion => "NoSuchVersion",
            NoSuchTagSet => "NoSuchTagSet",
            NotImplemented => "NotImplemented",
            NotModified => "NotModified",
            PreconditionFailed => "PreconditionFailed",
            RequestHeaderSectionTooLarge => "RequestHeaderSectionTooLarge",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            RequestTimeout => "RequestTimeout",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            InvalidPartNumber => "InvalidPartNumber",
            InvalidStorageClass => "InvalidStorageClass",
            InvalidObjectState => "InvalidObjectState",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            MalformedPolicy => "MalformedPolicy",
            NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            AccessForbidden => "AccessForbidden",
            BadRequest => "BadRequest",
            InvalidEncryptionAlgorithmError => "InvalidEncryptionAlgorithmError",
            KmsNotFound => "KMS.NotFoundException",
            KmsDisabled => "KMS.DisabledException",
            NoSuchWebsiteConfiguration => "NoSuchWebsiteConfiguration",
            ReplicationConfigurationNotFoundError => "ReplicationConfigurationNotFoundError",
            NoSuchConfiguration => "NoSuchConfiguration",
            InvalidPolicyDocument => "InvalidPolicyDocument",
            MalformedPOSTRequest => "MalformedPOSTRequest",
            MaxPostPreDataLengthExceeded => "MaxPostPreDataLengthExceeded",
        }
    }

    pub fn status(self) -> StatusCode {
        use S3ErrorCode::*;
        match self {
            AccessDenied | InvalidAccessKeyId | RequestTimeTooSkewed | SignatureDoesNotMatch => {
                StatusCode::FORBIDDEN
            }
            NoSuchBucket | NoSuchKey | NoSuchUpload | NoSuchVersion | NoSuchTagSet => {
                StatusCode::NOT_FOUND
            }
            BucketAlreadyOwnedByYou
            | BucketAlreadyExists
            | BucketNotEmpty
            | ConditionalRequestConflict
            | InvalidBucketState => StatusCode::CONFLICT,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout => StatusCode::BAD_REQUEST,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            NotModified => StatusCode::NOT_MODIFIED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            AccessControlListNotSupported
            | InvalidBucketAclWithObjectOwnership
            | MalformedACLError
            | MissingSecurityHeader
            | UnexpectedContent
            | AuthorizationHeaderMalformed
            | AuthorizationQueryParametersError
            | BadDigest
            | KmsNotFound
            | KmsDisabled
            | EntityTooLarge
            | EntityTooSmall
            | IllegalLocationConstraintException
            | IllegalVersioningConfigurationException
            | IncompleteBody
            | InvalidArgument
            | InvalidBucketName
            | InvalidDigest
            | InvalidPart
            | InvalidPartOrder
            | InvalidRequest
            | InvalidTag
            | KeyTooLongError
            | MalformedXML
            | MetadataTooLarge
            | RequestHeaderSectionTooLarge
            | XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST,
            InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE,
            InvalidStorageClass => StatusCode::BAD_REQUEST,
            InvalidObjectState => StatusCode::FORBIDDEN,
            NoSuchCORSConfiguration => StatusCode::NOT_FOUND,
            NoSuchObjectLockConfiguration => StatusCode::NOT_FOUND,
            NoSuchLifecycleConfiguration => StatusCode::NOT_FOUND,
            ObjectLockConfigurationNotFoundError => StatusCode::NOT_FOUND,
            NoSuchBucketPolicy => StatusCode::NOT_FOUND,
            NoSuchWebsiteConfiguration => StatusCode::NOT_FOUND,
            ReplicationConfigurationNotFoundError => StatusCode::NOT_FOUND,
            NoSuchConfiguration => StatusCode::NOT_FOUND,
            MalformedPolicy => StatusCode::BAD_REQUEST,
            NoSuchPublicAccessBlockConfiguration => StatusCode::NOT_FOUND,
            AccessForbidden => StatusCode::FORBIDDEN,
            BadRequest => StatusCode::BAD_REQUEST,
            InvalidEncryptionAlgorithmError => StatusCode::BAD_REQUEST,
            InvalidPolicyDocument | MalformedPOSTRequest | MaxPostPreDataLengthExceeded => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    /// S3's standard message for the code.
    pub fn default_message(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessControlListNotSupported => "The bucket does not allow ACLs",
            AccessDenied => "Access Denied",
            UnexpectedContent => "This request does not support content",
            MissingSecurityHeader => "Your request was missing a required header",
            MalformedACLError => {
                "The XML you provided was not well-formed or did not validate against our published schema"
            }
            InvalidBucketAclWithObjectOwnership => {
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            }
            AuthorizationHeaderMalformed => "The authorization header is malformed.",
            AuthorizationQueryParametersError => "Error parsing the X-Amz-Credential parameter.",
            BadDigest => "The Content-MD5 you specified did not match what we received.",
            BucketAlreadyExists => {
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
            }
            BucketAlreadyOwnedByYou => {
                "Your previous request to create the named bucket succeeded and you already own it."
            }
            BucketNotEmpty => "The bucket you tried to delete is not empty",
            ConditionalRequestConflict => {
                "The conditional request cannot succeed due to a conflicting operation against this resource."
            }
            EntityTooLarge => "Your proposed upload exceeds the maximum allowed size",
            EntityTooSmall => {
                "Your proposed upload is smaller than the minimum allowed object size."
            }
            IllegalLocationConstraintException => {
                "The specified location-constraint is not valid for this server's region."
            }
            IllegalVersioningConfigurationException => "The Versioning element must be specified",
            IncompleteBody => {
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            }
            InsufficientStorage => {
                "The server does not have enough free space to store this object."
            }
            InternalError => "We encountered an internal error. Please try again.",
            InvalidAccessKeyId => {
                "The AWS Access Key Id you provided does not exist in our records."
            }
            InvalidArgument => "Invalid Argument",
            KmsNotFound => "Invalid keyId",
            KmsDisabled => "The KMS key is disabled.",
            InvalidPolicyDocument => {
                "The content of the form does not meet the conditions specified in the policy document."
            }
            MalformedPOSTRequest => {
                "The body of your POST request is not well-formed multipart/form-data."
            }
            MaxPostPreDataLengthExceeded => {
                "Your POST request fields preceeding the upload file was too large."
            }
            InvalidBucketName => "The specified bucket is not valid.",
            InvalidBucketState => "The request is not valid with the current state of the bucket.",
            InvalidDigest => "The Content-MD5 you specified is not valid.",
            InvalidPart => {
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            }
            InvalidPartOrder => {
                "The list of parts was not in ascending order. Parts must be ordered by part number."
            }
            InvalidRange => "The requested range is not satisfiable",
            InvalidRequest => "Invalid Request",
            InvalidTag => "The tag provided was not a valid tag.",
            KeyTooLongError => "Your key is too long",
            MalformedXML => {
                "The XML you provided was not well-formed or did not validate against our published schema"
            }
            MetadataTooLarge => "Your metadata headers exceed the maximum allowed metadata size",
            MethodNotAllowed => "The specified method is not allowed against this resource.",
            MissingContentLength => "You must provide the Content-Length HTTP header.",
            NoSuchBucket => "The specified bucket does not exist",
            NoSuchKey => "The specified key does not exist.",
            NoSuchUpload => {
                "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
            }
            NoSuchVersion => "The specified version does not exist.",
            NoSuchTagSet => "The TagSet does not exist",
            NotModified => "Not Modified",
            PreconditionFailed => "At least one of the pre-conditions you specified did not hold",
            NotImplemented => {
                "A header or query you provided implies functionality that is not implemented."
            }
            RequestHeaderSectionTooLarge => {
                "Your request header section exceeds the maximum allowed size."
            }
            RequestTimeTooSkewed => {
                "The difference between the request time and the current time is too large."
            }
            RequestTimeout => {
                "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."
            }
            ServiceUnavailable => "Please reduce your request rate.",
            SignatureDoesNotMatch => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            }
            XAmzContentSHA256Mismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            }
            InvalidPartNumber => "The requested partnumber is not satisfiable",
            InvalidStorageClass => "The storage class you specified is not valid",
            InvalidObjectState => "The operation is not valid for the object's storage class",
            NoSuchCORSConfiguration => "The CORS configuration does not exist",
            NoSuchObjectLockConfiguration => {
                "The specified object does not have a ObjectLock configuration"
            }
            NoSuchLifecycleConfiguration => "The lifecycle configuration does not exist",
            ObjectLockConfigurationNotFoundError => {
                "Object Lock configuration does not exist for this bucket"
            }
            NoSuchBucketPolicy => "The bucket policy does not exist",
            NoSuchWebsiteConfiguration => {
                "The specified bucket does not have a website configuration"
            }
            ReplicationConfigurationNotFoundError => "The replication configuration was not found",
            NoSuchConfiguration => "The specified configuration does not exist.",
            MalformedPolicy => "Policies must be valid JSON and the first byte must be '{'",
            NoSuchPublicAccessBlockConfiguration => {
                "The public access block configuration was not found"
            }
            AccessForbidden => "CORSResponse: This CORS request is not allowed.",
            BadRequest => "Bad Request",
            InvalidEncryptionAlgorithmError => {
                "The encryption request you specified is not valid. The valid value is AES256."
            }
        }
    }
}

/// An error as the client will see it.
#[derive(Debug)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Extra elements of the error document (`BucketName`, `Key`, …).
    pub fields: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `Content-Range` for InvalidRange).
    pub headers: Vec<(&'static str, String)>,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for S3Error {}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(code: S3ErrorCode) -> Self {
        S3Error {
            code,
            message: code.default_message().to_owned(),
            fields: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_message(code: S3ErrorCode, message: impl Into<String>) -> Self {
        S3Error {
            message: message.into(),
            ..S3Error::new(code)
        }
    }

    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A server-side failure. The detail is logged (with the request id by
    /// the caller's span); the client gets S3's generic InternalError.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        S3Error::new(S3ErrorCode::InternalError)
    }

    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> Self {
        S3Error::with_message(S3ErrorCode::InvalidArgument, message)
            .field("ArgumentName", name)
            .field("ArgumentValue", value)
    }
}

impl From<EngineError> for S3Error {
    fn from(e: EngineError) -> Self {
        use S3ErrorCode as C;
        match e {
            EngineError::NoSuchBucket => S3Error::new(C::NoSuchBucket),
            EngineError::BucketAlreadyOwnedByYou => S3Error::new(C::BucketAlreadyOwnedByYou),
            EngineError::BucketNotEmpty => S3Error::new(C::BucketNotEmpty),
            EngineError::NoSuchKey => S3Error::new(C::NoSuchKey),
            EngineError::NoSuchVersion => S3Error::new(C::NoSuchVersion),
            EngineError::DeleteMarker {
                version_id,
                last_modified_ms,
                named,
            } => {
                // S3: the current version is a delete marker → 404 as if
                // the key did not exist; a marker named by its id → 405.
                let e = if named {
                    S3Error::new(C::MethodNotAllowed)
                        .header("last-modified", crate::headers::http_date(last_modified_ms))
                } else {
                    S3Error::new(C::NoSuchKey)
                };
                e.header("x-amz-delete-marker", "true")
                    .header("x-amz-version-id", version_id)
            }
            EngineError::ObjectLocked => S3Error::with_message(
                C::AccessDenied,
                "Access Denied because object protected by object lock.",
            ),
            EngineError::InvalidBucketState(detail) => {
                S3Error::with_message(C::InvalidBucketState, detail)
            }
            EngineError::NoSuchUpload => S3Error::new(C::NoSuchUpload),
            EngineError::InvalidPart { part_number } => {
                S3Error::new(C::InvalidPart).field("PartNumber", part_number.to_string())
            }
            EngineError::InvalidPartOrder => S3Error::new(C::InvalidPartOrder),
            EngineError::EntityTooSmall { part_number } => {
                S3Error::new(C::EntityTooSmall).field("PartNumber", part_number.to_string())
            }
            EngineError::EntityTooLarge => S3Error::new(C::EntityTooLarge),
            EngineError::SourceChanged | EngineError::GuardFailed(_) => {
                S3Error::new(C::ConditionalRequestConflict)
            }
            EngineError::NoSuchAccessKey => S3Error::new(C::InvalidAccessKeyId),
            EngineError::InvalidAccessKey(reason) => {
                S3Error::with_message(C::InvalidArgument, reason)
            }
            EngineError::NoSuchKmsKey(reference) => {
                S3Error::with_message(C::KmsNotFound, format!("Invalid keyId '{reference}'"))
            }
            EngineError::InvalidKmsKey(reason) => S3Error::with_message(C::InvalidArgument, reason),
            EngineError::PreconditionFailed(condition) => {
                S3Error::new(C::PreconditionFailed).field("Condition", condition)
            }
            EngineError::Unavailable(detail) => {
                tracing::warn!(%detail, "cluster metadata unavailable");
                S3Error::new(C::ServiceUnavailable)
            }
            EngineError::StorageFull(detail) => {
                tracing::error!(%detail, "storage full");
                S3Error::new(C::InsufficientStorage)
            }
            e @ (EngineError::ChunkUnavailable { .. }
            | EngineError::Corrupt(_)
            | EngineError::CorruptChunk { .. }
            | EngineError::UnusableCoding { .. }
            | EngineError::Erasure(_)
            | EngineError::Crypto(_)
            | EngineError::Compression(_)
            | EngineError::Metric { .. }
            | EngineError::TaskFailed(_)
            | EngineError::Io { .. }
            | EngineError::Metadata(_)
            | EngineError::Codec(_)
            | EngineError::Config(_)
            | EngineError::Internal(_)) => S3Error::internal(e),
        }
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        use S3ErrorCode as C;
        let msg = e.to_string();
        match e {
            AuthError::MissingAuthentication => S3Error::new(C::AccessDenied),
            AuthError::MultipleAuthMechanisms
            | AuthError::SigV2NotSupported
            | AuthError::UnsupportedAlgorithm(_)
            | AuthError::MissingContentSha256
            | AuthError::LimitExceeded(_) => S3Error::with_message(C::InvalidRequest, msg),
            AuthError::InvalidContentSha256 => S3Error::with_message(C::InvalidArgument, msg)
                .field("ArgumentName", "x-amz-content-sha256"),
            AuthError::AuthorizationHeaderMalformed(m) => {
                S3Error::with_message(C::AuthorizationHeaderMalformed, m)
            }
            AuthError::AuthorizationQueryParametersError(m) => {
                S3Error::with_message(C::AuthorizationQueryParametersError, m)
            }
            AuthError::MissingOrInvalidDate => S3Error::with_message(C::AccessDenied, msg),
            AuthError::InvalidAccessKeyId { access_key } => {
                S3Error::new(C::InvalidAccessKeyId).field("AWSAccessKeyId", access_key)
            }
            AuthError::SignatureDoesNotMatch(detail) => {
                let e = S3Error::new(C::SignatureDoesNotMatch)
                    .field("AWSAccessKeyId", detail.access_key)
                    .field("SignatureProvided", detail.signature_provided)
                    .field("StringToSign", detail.string_to_sign);
                // A POST form signs its policy alone: no canonical request.
                if detail.canonical_request.is_empty() {
                    e
                } else {
                    e.field("CanonicalRequest", detail.canonical_request)
                }
            }
            AuthError::RequestTimeTooSkewed {
                request_time,
                server_time,
            } => S3Error::new(C::RequestTimeTooSkewed)
                .field("RequestTime", httpdate::fmt_http_date(request_time))
                .field("ServerTime", httpdate::fmt_http_date(server_time))
                .field("MaxAllowedSkewMilliseconds", "900000"),
            AuthError::RequestExpired {
                expires_at,
                server_time,
            } => S3Error::with_message(C::AccessDenied, "Request has expired")
                .field("Expires", httpdate::fmt_http_date(expires_at))
                .field("ServerTime", httpdate::fmt_http_date(server_time)),
            AuthError::RequestNotYetValid { .. } => {
                S3Error::with_message(C::AccessDenied, "Request is not valid yet")
            }
            AuthError::HeadersNotSigned { headers } => {
                S3Error::with_message(C::AccessDenied, msg).field("HeadersNotSigned", headers)
            }
            AuthError::ChunkSignatureMismatch | AuthError::TrailerSignatureMismatch => {
                S3Error::new(C::SignatureDoesNotMatch)
            }
            AuthError::PostFieldMissing(name) => S3Error::invalid_argument(msg, name, ""),
            AuthError::PostFieldInvalid(m) => S3Error::with_message(C::InvalidArgument, m),
            AuthError::PostPolicyMalformed(m) => S3Error::with_message(C::InvalidPolicyDocument, m),
            AuthError::PostPolicyDenied(m) => S3Error::with_message(C::AccessDenied, m),
        }
    }
}

impl From<ChunkedError> for S3Error {
    fn from(e: ChunkedError) -> Self {
        use S3ErrorCode as C;
        match e {
            ChunkedError::Malformed(what) => S3Error::with_message(
                C::IncompleteBody,
                format!("The aws-chunked request body is malformed: {what}"),
            ),
            ChunkedError::ChunkSignatureMismatch | ChunkedError::TrailerSignatureMismatch => {
                S3Error::new(C::SignatureDoesNotMatch)
            }
            ChunkedError::Incomplete => S3Error::new(C::IncompleteBody),
            ChunkedError::TooLarge => S3Error::with_message(
                C::InvalidRequest,
                "An aws-chunked chunk or trailer exceeds the allowed size.",
            ),
        }
    }
}

impl From<BodyError> for S3Error {
    fn from(e: BodyError) -> Self {
        use S3ErrorCode as C;
        match e {
            BodyError::Incomplete => S3Error::new(C::IncompleteBody),
            BodyError::Transport(detail) => {
                tracing::debug!(%detail, "request body transport error");
                S3Error::new(C::IncompleteBody)
            }
            BodyError::Chunked(c) => c.into(),
            BodyError::TooLarge => S3Error::new(C::EntityTooLarge),
            BodyError::TooSmall { min, received } => S3Error::new(C::EntityTooSmall)
                .field("ProposedSize", received.to_string())
                .field("MinSizeAllowed", min.to_string()),
            BodyError::MalformedForm(detail) => {
                tracing::debug!(%detail, "malformed POST form");
                S3Error::new(C::MalformedPOSTRequest)
            }
            BodyError::LengthMismatch { declared, received } => S3Error::with_message(
                C::IncompleteBody,
                format!("Declared {declared} bytes of content but received {received}."),
            ),
            BodyError::Sha256Mismatch { claimed, computed } => {
                S3Error::new(C::XAmzContentSHA256Mismatch)
                    .field("ClientComputedContentSHA256", claimed)
                    .field("S3ComputedContentSHA256", computed)
            }
            BodyError::Md5Mismatch => S3Error::new(C::BadDigest),
            BodyError::ChecksumMismatch { algorithm } => S3Error::with_message(
                C::BadDigest,
                format!("The {algorithm} you specified did not match the calculated checksum."),
            ),
            BodyError::MissingTrailer { name } => S3Error::with_message(
                C::InvalidRequest,
                format!("The trailer {name} declared in x-amz-trailer was not sent."),
            ),
            BodyError::InvalidChecksumValue { name } => S3Error::with_message(
                C::InvalidRequest,
                format!("Value for {name} header is invalid."),
            ),
            // The rest of the body is never read: the connection goes.
            BodyError::Timeout(_) => S3Error::new(C::RequestTimeout).header("connection", "close"),
            BodyError::Internal(detail) => S3Error::internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_s3() {
        assert_eq!(S3ErrorCode::NoSuchKey.status(), 404);
        assert_eq!(S3ErrorCode::SignatureDoesNotMatch.status(), 403);
        assert_eq!(S3ErrorCode::BucketNotEmpty.status(), 409);
        assert_eq!(S3ErrorCode::InvalidRange.status(), 416);
        assert_eq!(S3ErrorCode::NotImplemented.status(), 501);
        assert_eq!(S3ErrorCode::MalformedXML.status(), 400);
    }

    #[test]
    fn engine_errors_map_without_leaking_detail() {
        let e: S3Error = EngineError::Corrupt("segment 7 on /secret/path".into()).into();
        assert_eq!(e.code, S3ErrorCode::InternalError);
        assert!(!e.message.contains("/secret/path"));
        let e: S3Error = EngineError::NoSuchUpload.into();
        assert_eq!(e.code, S3ErrorCode::NoSuchUpload);
    }
}
