//! Routing: which S3 operation a request is, from its method, address
//! (path-style, or virtual-hosted-style under a configured domain) and
//! query. Pure functions of the request head; no I/O.

use http::Method;
use percent_encoding::percent_decode_str;

/// Every operation the front end distinguishes. `Unsupported` requests get
/// `NotImplemented`, never a wrong success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    ListObjectVersions,
    DeleteObjects,
    GetBucketNotificationConfiguration,
    PutBucketNotificationConfiguration,
    PutObject,
    /// POST Object: a browser or device form upload to a bucket. Its
    /// handler authenticates the form and authorizes it as `PutObject`.
    PostObject,
    CopyObject,
    GetObject,
    GetObjectAttributes,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    /// GET of a bucket configuration Cairn does not support yet (so none is
    /// ever set): S3's answer for a configuration never set.
    GetBucketConfig(&'static str),
    /// DELETE of such a configuration: nothing to remove, 204 as S3.
    DeleteBucketConfig(&'static str),
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    /// A browser's CORS preflight (`OPTIONS` on a bucket or object):
    /// answered from the bucket's CORS rules, without any signature.
    CorsPreflight,
    /// A known S3 operation or subresource this server does not implement.
    Unsupported(&'static str),
    /// Method not valid for the resource.
    MethodNotAllowed,
}

impl Operation {
    /// Stable label for metrics and logs (bounded set).
    pub fn name(self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            HeadBucket => "HeadBucket",
            DeleteBucket => "DeleteBucket",
            GetBucketLocation => "GetBucketLocation",
            GetBucketVersioning => "GetBucketVersioning",
            PutBucketVersioning => "PutBucketVersioning",
            GetBucketAcl => "GetBucketAcl",
            PutBucketAcl => "PutBucketAcl",
            ListObjects => "ListObjects",
            ListObjectsV2 => "ListObjectsV2",
            ListMultipartUploads => "ListMultipartUploads",
            ListObjectVersions => "ListObjectVersions",
            DeleteObjects => "DeleteObjects",
            PutObject => "PutObject",
            PostObject => "PostObject",
            GetBucketNotificationConfiguration => "GetBucketNotificationConfiguration",
            PutBucketNotificationConfiguration => "PutBucketNotificationConfiguration",
            CopyObject => "CopyObject",
            GetObject => "GetObject",
            GetObjectAttributes => "GetObjectAttributes",
            HeadObject => "HeadObject",
            DeleteObject => "DeleteObject",
            GetObjectAcl => "GetObjectAcl",
            PutObjectAcl => "PutObjectAcl",
            GetObjectTagging => "GetObjectTagging",
            PutObjectTagging => "PutObjectTagging",
            DeleteObjectTagging => "DeleteObjectTagging",
            GetBucketTagging => "GetBucketTagging",
            PutBucketTagging => "PutBucketTagging",
            DeleteBucketTagging => "DeleteBucketTagging",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart => "UploadPart",
            UploadPartCopy => "UploadPartCopy",
            CompleteMultipartUpload => "CompleteMultipartUpload",
            AbortMultipartUpload => "AbortMultipartUpload",
            ListParts => "ListParts",
            GetBucketConfig(_) => "GetBucketConfig",
            DeleteBucketConfig(_) => "DeleteBucketConfig",
            GetObjectLockConfiguration => "GetObjectLockConfiguration",
            PutObjectLockConfiguration => "PutObjectLockConfiguration",
            GetObjectRetention => "GetObjectRetention",
            PutObjectRetention => "PutObjectRetention",
            GetObjectLegalHold => "GetObjectLegalHold",
            PutObjectLegalHold => "PutObjectLegalHold",
            GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            PutBucketLifecycleConfiguration => "PutBucketLifecycleConfiguration",
            DeleteBucketLifecycle => "DeleteBucketLifecycle",
            GetBucketPolicy => "GetBucketPolicy",
            PutBucketPolicy => "PutBucketPolicy",
            DeleteBucketPolicy => "DeleteBucketPolicy",
            GetBucketPolicyStatus => "GetBucketPolicyStatus",
            GetPublicAccessBlock => "GetPublicAccessBlock",
            PutPublicAccessBlock => "PutPublicAccessBlock",
            DeletePublicAccessBlock => "DeletePublicAccessBlock",
            GetBucketCors => "GetBucketCors",
            PutBucketCors => "PutBucketCors",
            DeleteBucketCors => "DeleteBucketCors",
            GetBucketEncryption => "GetBucketEncryption",
            PutBucketEncryption => "PutBucketEncryption",
            DeleteBucketEncryption => "DeleteBucketEncryption",
            CorsPreflight => "CorsPreflight",
            Unsupported(_) => "Unsupported",
            MethodNotAllowed => "MethodNotAllowed",
        }
    }

    /// What the signing key needs on the addressed bucket.
    pub fn required_access(self) -> RequiredAccess {
        use Operation::*;
        match self {
            // ListBuckets shows each key only the buckets it has grants on;
            // the rest answer an error before touching anything.
            // A preflight is answered from the CORS rules alone (it grants
            // nothing: the request it announces is authorized as any other).
            ListBuckets | Unsupported(_) | MethodNotAllowed | CorsPreflight => {
                RequiredAccess::Nothing
            }
            // What protects data from the keys that write it is the bucket
            // owner's to change: a stolen read-write key must not suspend
            // versioning, drop the default retention or release a legal hold.
            // PutObjectRetention stays a write: a writer may extend a
            // retention (backup tools do), and shortening or removing one
            // needs the governance bypass only admin keys are given.
            CreateBucket
            | DeleteBucket
            | PutBucketVersioning
            | PutObjectLockConfiguration
            | PutObjectLegalHold
            // Rules that delete are the owner's too: a writer's expiry of
            // one day would empty the bucket.
            | PutBucketLifecycleConfiguration
            | DeleteBucketLifecycle
            // Who may do what is the owner's to say.
            | PutBucketPolicy
            | DeleteBucketPolicy
            | PutPublicAccessBlock
            | DeletePublicAccessBlock
            | PutBucketEncryption
            | DeleteBucketEncryption
            // Object names go to the operator's targets: the owner says which.
            | PutBucketNotificationConfiguration => RequiredAccess::Admin,
            HeadBucket
            | GetBucketNotificationConfiguration
            | GetBucketLocation
            | GetBucketVersioning
            | GetBucketAcl
            | ListObjects
            | ListObjectsV2
            | ListMultipartUploads
            | ListObjectVersions
            | GetObject
            | GetObjectAttributes
            | HeadObject
            | GetObjectAcl
            | GetObjectTagging
            | GetBucketTagging
            | ListParts
            | GetBucketConfig(_)
            | GetObjectLockConfiguration
            | GetObjectRetention
            | GetObjectLegalHold
            | GetBucketLifecycleConfiguration
            | GetBucketPolicy
            | GetBucketPolicyStatus
            | GetPublicAccessBlock
            | GetBucketCors
            | GetBucketEncryption => RequiredAccess::Read,
            DeleteObjects
            | PutObjectRetention
            | PutObject
            | PostObject
            | CopyObject
            | DeleteObject
            | PutObjectTagging
            | DeleteObjectTagging
            | PutBucketTagging
            | DeleteBucketTagging
            | DeleteBucketConfig(_)
            // CORS lets browsers show what authorization already allows.
            | PutBucketCors
            | DeleteBucketCors
            | PutBucketAcl
            | PutObjectAcl
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload
            | AbortMultipartUpload => RequiredAccess::Write,
        }
    }
}

impl Operation {
    /// The IAM action a bucket policy names this operation by (AWS's
    /// "Actions, resources, and condition keys for Amazon S3"); `versioned`
    /// when the request names a version (`versionId`), which S3 checks as
    /// the `…Version…` action. `None` for what is refused anyway.
    pub fn s3_action(self, versioned: bool) -> Option<&'static str> {
        use Operation::*;
        let pick = |plain, version| Some(if versioned { version } else { plain });
        Some(match self {
            ListBuckets => "s3:ListAllMyBuckets",
            CreateBucket => "s3:CreateBucket",
            DeleteBucket => "s3:DeleteBucket",
            HeadBucket | ListObjects | ListObjectsV2 => "s3:ListBucket",
            GetBucketLocation => "s3:GetBucketLocation",
            GetBucketNotificationConfiguration => "s3:GetBucketNotification",
            PutBucketNotificationConfiguration => "s3:PutBucketNotification",
            GetBucketVersioning => "s3:GetBucketVersioning",
            PutBucketVersioning => "s3:PutBucketVersioning",
            GetBucketAcl => "s3:GetBucketAcl",
            PutBucketAcl => "s3:PutBucketAcl",
            ListMultipartUploads => "s3:ListBucketMultipartUploads",
            ListObjectVersions => "s3:ListBucketVersions",
            // Checked again per key by the handler.
            DeleteObjects => "s3:DeleteObject",
            PutObject
            | PostObject
            | CopyObject
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload => "s3:PutObject",
            GetObject | HeadObject => return pick("s3:GetObject", "s3:GetObjectVersion"),
            GetObjectAttributes => {
                return pick("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes");
            }
            DeleteObject => return pick("s3:DeleteObject", "s3:DeleteObjectVersion"),
            GetObjectAcl => return pick("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
            PutObjectAcl => return pick("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
            GetObjectTagging => return pick("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
            PutObjectTagging => return pick("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
            DeleteObjectTagging => {
                return pick("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging");
            }
            GetBucketTagging => "s3:GetBucketTagging",
            PutBucketTagging | DeleteBucketTagging => "s3:PutBucketTagging",
            AbortMultipartUpload => "s3:AbortMultipartUpload",
            ListParts => "s3:ListMultipartUploadParts",
            GetBucketConfig(sub) => match sub {
                "accelerate" => "s3:GetAccelerateConfiguration",
                "analytics" => "s3:GetAnalyticsConfiguration",
                "intelligent-tiering" => "s3:GetIntelligentTieringConfiguration",
                "inventory" => "s3:GetInventoryConfiguration",
                "logging" => "s3:GetBucketLogging",
                "metrics" => "s3:GetMetricsConfiguration",
                "notification" => "s3:GetBucketNotification",
                "ownershipControls" => "s3:GetBucketOwnershipControls",
                "replication" => "s3:GetReplicationConfiguration",
                "requestPayment" => "s3:GetBucketRequestPayment",
                "website" => "s3:GetBucketWebsite",
                _ => return None,
            },
            DeleteBucketConfig(sub) => match sub {
                "analytics" => "s3:PutAnalyticsConfiguration",
                "intelligent-tiering" => "s3:PutIntelligentTieringConfiguration",
                "inventory" => "s3:PutInventoryConfiguration",
                "metrics" => "s3:PutMetricsConfiguration",
                "ownershipControls" => "s3:PutBucketOwnershipControls",
                "replication" => "s3:PutReplicationConfiguration",
                "website" => "s3:DeleteBucketWebsite",
                _ => return None,
            },
            GetObjectLockConfiguration => "s3:GetBucketObjectLockConfiguration",
            PutObjectLockConfiguration => "s3:PutBucketObjectLockConfiguration",
            GetObjectRetention => "s3:GetObjectRetention",
            PutObjectRetention => "s3:PutObjectRetention",
            GetObjectLegalHold => "s3:GetObjectLegalHold",
            PutObjectLegalHold => "s3:PutObjectLegalHold",
            GetBucketLifecycleConfiguration => "s3:GetLifecycleConfiguration",
            PutBucketLifecycleConfiguration | DeleteBucketLifecycle => {
                "s3:PutLifecycleConfiguration"
            }
            GetBucketPolicy => "s3:GetBucketPolicy",
            PutBucketPolicy => "s3:PutBucketPolicy",
            DeleteBucketPolicy => "s3:DeleteBucketPolicy",
            GetBucketPolicyStatus => "s3:GetBucketPolicyStatus",
            GetPublicAccessBlock => "s3:GetBucketPublicAccessBlock",
            PutPublicAccessBlock | DeletePublicAccessBlock => "s3:PutBucketPublicAccessBlock",
            GetBucketCors => "s3:GetBucketCORS",
            PutBucketCors | DeleteBucketCors => "s3:PutBucketCORS",
            GetBucketEncryption => "s3:GetEncryptionConfiguration",
            PutBucketEncryption | DeleteBucketEncryption => "s3:PutEncryptionConfiguration",
            Unsupported(_) | MethodNotAllowed | CorsPreflight => return None,
        })
    }

    /// Whether the operation addresses an object (its policy resource is
    /// `arn:aws:s3:::bucket/key`) rather than the bucket.
    pub fn addresses_object(self) -> bool {
        use Operation::*;
        matches!(
            self,
            PutObject
                | CopyObject
                | GetObject
                | GetObjectAttributes
                | HeadObject
                | DeleteObject
                | GetObjectAcl
                | PutObjectAcl
                | GetObjectTagging
                | PutObjectTagging
                | DeleteObjectTagging
                | CreateMultipartUpload
                | UploadPart
                | UploadPartCopy
                | CompleteMultipartUpload
                | AbortMultipartUpload
                | ListParts
                | GetObjectRetention
                | PutObjectRetention
                | GetObjectLegalHold
                | PutObjectLegalHold
        )
    }

    /// Bucket-policy management, which an admin key can always do (as the
    /// AWS account root can always replace a policy that locked everyone
    /// out).
    pub fn manages_policy(self) -> bool {
        use Operation::*;
        matches!(
            self,
            GetBucketPolicy
                | PutBucketPolicy
                | DeleteBucketPolicy
                | GetBucketPolicyStatus
                | GetPublicAccessBlock
                | PutPublicAccessBlock
                | DeletePublicAccessBlock
        )
    }
}

/// The grant an operation needs (copies also need read on their source,
/// checked by their handlers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequiredAccess {
    Nothing,
    Read,
    Write,
    Admin,
}

/// Decoded query parameters in request order.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(k), decode(v)));
        }
        Query { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Percent-decodes a URI component. Query strings from S3 clients encode
/// spaces as `%20`; a literal `+` is a plus.
fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Bucket and key of a path-style request (`/bucket/key…`).
/// `None` bucket is the service root. The key keeps every byte after the
/// bucket's slash, including further and trailing slashes.
pub fn split_path(path: &str) -> Result<(Option<String>, Option<String>), ()> {
    let decoded = percent_decode_str(path).decode_utf8().map_err(|_| ())?;
    let rest = decoded.strip_prefix('/').unwrap_or(&decoded);
    if rest.is_empty() {
        return Ok((None, None));
    }
    match rest.split_once('/') {
        None => Ok((Some(rest.to_owned()), None)),
        Some((b, "")) => Ok((Some(b.to_owned()), None)),
        Some((b, k)) => Ok((Some(b.to_owned()), Some(k.to_owned()))),
    }
}

/// The bucket a virtual-hosted-style request names: `host` (a `Host`
/// header, port allowed) is `<bucket>.<domain>`. `None` for the domain
/// itself, for other hosts (IP addresses, `localhost`, …) and when no domain
/// is configured: those requests are path-style. `domain` is lowercase,
/// without a port or trailing dot (see `S3Config::domain`).
pub fn virtual_host_bucket(host: &str, domain: Option<&str>) -> Option<String> {
    let domain = domain.filter(|d| !d.is_empty())?;
    let host = host.trim();
    // IPv6 literals (`[::1]:9000`) are never under a domain.
    if host.starts_with('[') {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let bucket = name.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_owned())
}

/// The key of a virtual-hosted-style request: every byte of the decoded
/// path after its leading slash (`None` for `/`).
pub fn virtual_host_key(path: &str) -> Result<Option<String>, ()> {
    let decoded = percent_decode_str(path).decode_utf8().map_err(|_| ())?;
    let key = decoded.strip_prefix('/').unwrap_or(&decoded);
    Ok((!key.is_empty()).then(|| key.to_owned()))
}

/// Bucket configurations S3 defines that Cairn does not implement yet.
/// None is ever set, so GET answers what S3 answers for one never set
/// (`GetBucketConfig`), DELETE (where S3 has one) succeeds with nothing to
/// remove, and PUT is `NotImplemented`.
const BUCKET_CONFIGS: &[&str] = &[
    "accelerate",
    "analytics",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metrics",
    "ownershipControls",
    "replication",
    "requestPayment",
    "website",
];

/// The configurations above that S3 can DELETE.
const DELETABLE_BUCKET_CONFIGS: &[&str] = &[
    "analytics",
    "intelligent-tiering",
    "inventory",
    "metrics",
    "ownershipControls",
    "replication",
    "website",
];

/// Other bucket subresources S3 defines (S3 Express sessions, S3 Metadata,
/// attribute-based access control, …): `NotImplemented` for every method,
/// never a fall-through to the bucket's base operation.
const UNSUPPORTED_BUCKET_SUBRESOURCES: &[&str] = &[
    "session",
    "metadataTable",
    "metadataConfiguration",
    "metadataInventoryTable",
    "metadataJournalTable",
    "abac",
];

/// Object subresources S3 defines that Cairn does not implement.
const UNSUPPORTED_OBJECT_SUBRESOURCES: &[&str] = &["restore", "select", "torrent", "renameObject"];

fn find_sub(q: &Query, names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|n| q.has(n))
}

/// Chooses the operation.
pub fn route(
    method: &Method,
    bucket: Option<&str>,
    key: Option<&str>,
    q: &Query,
    has_copy_source: bool,
) -> Operation {
    use Operation::*;
    if *method == Method::OPTIONS {
        return if bucket.is_some() {
            CorsPreflight
        } else {
            MethodNotAllowed
        };
    }
    match (bucket, key) {
        (None, _) => match *method {
            Method::GET => ListBuckets,
            _ => MethodNotAllowed,
        },
        (Some(_), None) => {
            if q.has("acl") {
                return match *method {
                    Method::GET => GetBucketAcl,
                    Method::PUT => PutBucketAcl,
                    _ => MethodNotAllowed,
                };
            }
            if let Some(sub) = find_sub(q, UNSUPPORTED_BUCKET_SUBRESOURCES) {
                return Unsupported(sub);
            }
            if q.has("object-lock") {
                return match *method {
                    Method::GET => GetObjectLockConfiguration,
                    Method::PUT => PutObjectLockConfiguration,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("lifecycle") {
                return match *method {
                    Method::GET => GetBucketLifecycleConfiguration,
                    Method::PUT => PutBucketLifecycleConfiguration,
                    Method::DELETE => DeleteBucketLifecycle,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("policy") {
                return match *method {
                    Method::GET => GetBucketPolicy,
                    Method::PUT => PutBucketPolicy,
                    Method::DELETE => DeleteBucketPolicy,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("notification") {
                return match *method {
                    Method::GET => GetBucketNotificationConfiguration,
                    Method::PUT => PutBucketNotificationConfiguration,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("policyStatus") {
                return match *method {
                    Method::GET => GetBucketPolicyStatus,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("cors") {
                return match *method {
                    Method::GET => GetBucketCors,
                    Method::PUT => PutBucketCors,
                    Method::DELETE => DeleteBucketCors,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("encryption") {
                return match *method {
                    Method::GET => GetBucketEncryption,
                    Method::PUT => PutBucketEncryption,
                    Method::DELETE => DeleteBucketEncryption,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("publicAccessBlock") {
                return match *method {
                    Method::GET => GetPublicAccessBlock,
                    Method::PUT => PutPublicAccessBlock,
                    Method::DELETE => DeletePublicAccessBlock,
                    _ => MethodNotAllowed,
                };
            }
            if let Some(sub) = find_sub(q, BUCKET_CONFIGS) {
                return match *method {
                    Method::GET => GetBucketConfig(sub),
                    Method::DELETE if DELETABLE_BUCKET_CONFIGS.contains(&sub) => {
                        DeleteBucketConfig(sub)
                    }
                    Method::PUT => Unsupported(sub),
                    _ => MethodNotAllowed,
                };
            }
            if q.has("versions") {
                return match *method {
                    Method::GET => ListObjectVersions,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("tagging") {
                return match *method {
                    Method::GET => GetBucketTagging,
                    Method::PUT => PutBucketTagging,
                    Method::DELETE => DeleteBucketTagging,
                    _ => MethodNotAllowed,
                };
            }
            match *method {
                Method::PUT if q.has("versioning") => PutBucketVersioning,
                Method::PUT => CreateBucket,
                Method::HEAD => HeadBucket,
                Method::DELETE => DeleteBucket,
                Method::GET if q.has("location") => GetBucketLocation,
                Method::GET if q.has("versioning") => GetBucketVersioning,
                Method::GET if q.has("uploads") => ListMultipartUploads,
                Method::GET if q.get("list-type") == Some("2") => ListObjectsV2,
                Method::GET => ListObjects,
                Method::POST if q.has("delete") => DeleteObjects,
                // A form upload addresses the bucket alone; any query
                // (`?uploads`, `?anything`) is not one.
                Method::POST if q.is_empty() => PostObject,
                _ => MethodNotAllowed,
            }
        }
        (Some(_), Some(_)) => {
            if q.has("acl") {
                return match *method {
                    Method::GET => GetObjectAcl,
                    Method::PUT => PutObjectAcl,
                    _ => MethodNotAllowed,
                };
            }
            if let Some(sub) = find_sub(q, UNSUPPORTED_OBJECT_SUBRESOURCES) {
                return Unsupported(sub);
            }
            if q.has("retention") {
                return match *method {
                    Method::GET => GetObjectRetention,
                    Method::PUT => PutObjectRetention,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("legal-hold") {
                return match *method {
                    Method::GET => GetObjectLegalHold,
                    Method::PUT => PutObjectLegalHold,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("attributes") {
                return match *method {
                    Method::GET => GetObjectAttributes,
                    _ => MethodNotAllowed,
                };
            }
            if q.has("tagging") {
                return match *method {
                    Method::GET => GetObjectTagging,
                    Method::PUT => PutObjectTagging,
                    Method::DELETE => DeleteObjectTagging,
                    _ => MethodNotAllowed,
                };
            }
            match *method {
                Method::PUT if q.has("uploadId") && has_copy_source => UploadPartCopy,
                Method::PUT if q.has("uploadId") => UploadPart,
                Method::PUT if has_copy_source => CopyObject,
                Method::PUT => PutObject,
                Method::GET if q.has("uploadId") => ListParts,
                Method::GET => GetObject,
                Method::HEAD => HeadObject,
                Method::DELETE if q.has("uploadId") => AbortMultipartUpload,
                Method::DELETE => DeleteObject,
                Method::POST if q.has("uploads") => CreateMultipartUpload,
                Method::POST if q.has("uploadId") => CompleteMultipartUpload,
                _ => MethodNotAllowed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(split_path("/").unwrap(), (None, None));
        assert_eq!(split_path("/b").unwrap(), (Some("b".into()), None));
        assert_eq!(split_path("/b/").unwrap(), (Some("b".into()), None));
        assert_eq!(
            split_path("/b/dir/file%20name+x%2B").unwrap(),
            (Some("b".into()), Some("dir/file name+x+".into()))
        );
        assert_eq!(
            split_path("/b/a//c/").unwrap(),
            (Some("b".into()), Some("a//c/".into()))
        );
        assert!(split_path("/b/%FF").is_err());
    }

    #[test]
    fn virtual_hosts() {
        let d = Some("s3.example.com");
        assert_eq!(
            virtual_host_bucket("photos.s3.example.com", d).as_deref(),
            Some("photos")
        );
        assert_eq!(
            virtual_host_bucket("My.Bucket.S3.Example.com:9000", d).as_deref(),
            Some("my.bucket")
        );
        assert_eq!(
            virtual_host_bucket("b.s3.example.com.:80", d).as_deref(),
            Some("b")
        );
        assert_eq!(virtual_host_bucket("s3.example.com:9000", d), None);
        assert_eq!(virtual_host_bucket("xs3.example.com", d), None);
        assert_eq!(virtual_host_bucket(".s3.example.com", d), None);
        assert_eq!(virtual_host_bucket("127.0.0.1:9000", d), None);
        assert_eq!(virtual_host_bucket("[::1]:9000", d), None);
        assert_eq!(virtual_host_bucket("b.s3.example.com", None), None);
        assert_eq!(virtual_host_key("/").unwrap(), None);
        assert_eq!(virtual_host_key("").unwrap(), None);
        assert_eq!(
            virtual_host_key("//a%20b/c/").unwrap().as_deref(),
            Some("/a b/c/")
        );
        assert!(virtual_host_key("/%FF").is_err());
    }

    #[test]
    fn parses_queries() {
        let q = Query::parse(Some("list-type=2&prefix=a%2Fb+c&delimiter=%2F&uploads"));
        assert_eq!(q.get("list-type"), Some("2"));
        assert_eq!(q.get("prefix"), Some("a/b+c"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("uploads"));
        assert_eq!(q.get("uploads"), Some(""));
    }

    #[test]
    fn routes() {
        let q = |s| Query::parse(Some(s));
        assert_eq!(
            route(&Method::GET, None, None, &q(""), false),
            Operation::ListBuckets
        );
        assert_eq!(
            route(&Method::GET, Some("b"), None, &q("list-type=2"), false),
            Operation::ListObjectsV2
        );
        assert_eq!(
            route(
                &Method::PUT,
                Some("b"),
                Some("k"),
                &q("partNumber=1&uploadId=x"),
                false
            ),
            Operation::UploadPart
        );
        assert_eq!(
            route(&Method::PUT, Some("b"), Some("k"), &q(""), true),
            Operation::CopyObject
        );
        assert_eq!(
            route(
                &Method::PUT,
                Some("b"),
                Some("k"),
                &q("partNumber=2&uploadId=x"),
                true
            ),
            Operation::UploadPartCopy
        );
        assert_eq!(
            route(&Method::PUT, Some("b"), None, &q("lifecycle"), false),
            Operation::PutBucketLifecycleConfiguration
        );
        assert_eq!(
            route(&Method::GET, Some("b"), None, &q("lifecycle"), false),
            Operation::GetBucketLifecycleConfiguration
        );
        assert_eq!(
            route(&Method::DELETE, Some("b"), None, &q("lifecycle"), false),
            Operation::DeleteBucketLifecycle
        );
        assert_eq!(
            route(&Method::POST, Some("b"), None, &q("lifecycle"), false),
            Operation::MethodNotAllowed
        );
        for (method, sub, op) in [
            (Method::GET, "cors", Operation::GetBucketCors),
            (Method::PUT, "cors", Operation::PutBucketCors),
            (Method::DELETE, "cors", Operation::DeleteBucketCors),
            (Method::POST, "cors", Operation::MethodNotAllowed),
            (Method::GET, "encryption", Operation::GetBucketEncryption),
            (Method::PUT, "encryption", Operation::PutBucketEncryption),
            (
                Method::DELETE,
                "encryption",
                Operation::DeleteBucketEncryption,
            ),
            (Method::POST, "encryption", Operation::MethodNotAllowed),
        ] {
            assert_eq!(route(&method, Some("b"), None, &q(sub), false), op);
        }
        // Preflights, whatever the query; none for the service root.
        for key in [None, Some("k")] {
            for query in ["", "uploads", "tagging"] {
                assert_eq!(
                    route(&Method::OPTIONS, Some("b"), key, &q(query), false),
                    Operation::CorsPreflight
                );
            }
        }
        assert_eq!(
            route(&Method::OPTIONS, None, None, &q(""), false),
            Operation::MethodNotAllowed
        );
        assert_eq!(
            route(&Method::DELETE, Some("b"), None, &q("policyStatus"), false),
            Operation::MethodNotAllowed
        );
        // S3 subresources never fall through to the base operation.
        for sub in ["session", "metadataTable", "abac"] {
            assert_eq!(
                route(&Method::GET, Some("b"), None, &q(sub), false),
                Operation::Unsupported(sub)
            );
        }
        for (method, query, op) in [
            (Method::GET, "retention", Operation::GetObjectRetention),
            (Method::PUT, "retention", Operation::PutObjectRetention),
            (Method::GET, "legal-hold", Operation::GetObjectLegalHold),
            (Method::PUT, "legal-hold", Operation::PutObjectLegalHold),
            (Method::DELETE, "retention", Operation::MethodNotAllowed),
        ] {
            assert_eq!(route(&method, Some("b"), Some("k"), &q(query), false), op);
        }
        for (method, op) in [
            (Method::GET, Operation::GetObjectLockConfiguration),
            (Method::PUT, Operation::PutObjectLockConfiguration),
            (Method::DELETE, Operation::MethodNotAllowed),
        ] {
            assert_eq!(
                route(&method, Some("b"), None, &q("object-lock"), false),
                op
            );
        }
        assert_eq!(
            route(&Method::POST, Some("b"), Some("k"), &q("restore"), false),
            Operation::Unsupported("restore")
        );
        assert_eq!(
            route(&Method::POST, Some("b"), Some("k"), &q("uploads"), false),
            Operation::CreateMultipartUpload
        );
        assert_eq!(
            route(&Method::PATCH, Some("b"), Some("k"), &q(""), false),
            Operation::MethodNotAllowed
        );
        assert_eq!(
            route(
                &Method::GET,
                Some("b"),
                None,
                &q("versions&prefix=a"),
                false
            ),
            Operation::ListObjectVersions
        );
        assert_eq!(
            route(&Method::PUT, Some("b"), None, &q("versions"), false),
            Operation::MethodNotAllowed
        );
        assert_eq!(
            route(&Method::PUT, Some("b"), None, &q("tagging"), false),
            Operation::PutBucketTagging
        );
        assert_eq!(
            route(&Method::GET, Some("b"), Some("k"), &q("attributes"), false),
            Operation::GetObjectAttributes
        );
        assert_eq!(
            route(&Method::PUT, Some("b"), Some("k"), &q("attributes"), false),
            Operation::MethodNotAllowed
        );
        for (m, op) in [
            (Method::GET, Operation::GetObjectTagging),
            (Method::PUT, Operation::PutObjectTagging),
            (Method::DELETE, Operation::DeleteObjectTagging),
            (Method::POST, Operation::MethodNotAllowed),
        ] {
            assert_eq!(route(&m, Some("b"), Some("k"), &q("tagging"), false), op);
        }
    }
}
