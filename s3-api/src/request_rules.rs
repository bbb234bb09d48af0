//! Every request header and query parameter S3 defines for the operations
//! Cairn routes, and what Cairn does with each one: acts on it, ignores it
//! because S3 itself treats it as advisory (or it cannot change the outcome
//! here), or refuses the request with the error AWS gives — before anything
//! is read or stored.
//!
//! Owns: the table ([`RULES`]), the check run on every authenticated request
//! ([`check_request`]) and the list of parameters S3 defines per operation
//! ([`defined_params`], from the S3 API reference). The unit tests walk the
//! table: every parameter S3 defines for a routed operation has a rule, and
//! docs/compatibility.md shows the table as it is here.
//!
//! Must never: accept a parameter that promises something Cairn does not do
//! (an encryption key, a lock, a storage class, a redirect) — "never a wrong
//! success"; read the body; depend on anything but the request head.

use http::HeaderMap;

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::{Operation, Query};

/// Where a parameter travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Header,
    Query,
}

/// What Cairn does with a parameter when a request carries it. The texts
/// are read by the renderer of docs/compatibility.md's table (a test).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Treatment {
    /// Implemented by the handler (or by authentication).
    Acted(&'static str),
    /// S3 treats it as advisory, or it cannot change the outcome on Cairn:
    /// accepted and ignored. The text says why that is not a wrong success.
    Advisory(&'static str),
    /// Accepted with one of these values (compared as S3 does: exactly),
    /// anything else refused.
    OnlyValues(&'static [&'static str], Refusal),
    /// Accepted when its value is one of these (no effect), refused otherwise.
    Refused(Refusal),
}

/// The error a refused parameter gets: AWS's own where AWS refuses the
/// same request, `NotImplemented` where only Cairn lacks the feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 501 NotImplemented, naming the header.
    NotImplemented,
    /// 400 InvalidStorageClass.
    InvalidStorageClass,
    /// 400 InvalidArgument (an unknown encryption method).
    InvalidEncryption,
    /// 403 AccessDenied (an expected bucket owner that is not Cairn's one owner).
    AccessDenied,
}

/// One parameter S3 defines, the operations it belongs to, and its treatment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    pub(crate) name: &'static str,
    pub(crate) place: Place,
    pub(crate) ops: &'static [Operation],
    pub(crate) treatment: Treatment,
}

use Operation as O;
use Place::{Header as H, Query as Q};
use Treatment::{Acted, Advisory, OnlyValues, Refused};

/// Operations that create object data or an upload that will (and so take
/// the object-level settings: storage class, encryption, lock, redirect).
const OBJECT_WRITES: &[Operation] = &[O::PutObject, O::CopyObject, O::CreateMultipartUpload];
/// Operations that read or write object data with a customer key (SSE-C)
/// and do it.
const SSE_C_OPS: &[Operation] = &[
    O::PutObject,
    O::CopyObject,
    O::CreateMultipartUpload,
    O::UploadPart,
    O::UploadPartCopy,
    O::CompleteMultipartUpload,
    O::GetObject,
    O::HeadObject,
    O::GetObjectAttributes,
];
const COPIES: &[Operation] = &[O::CopyObject, O::UploadPartCopy];
const READS: &[Operation] = &[O::GetObject, O::HeadObject];
const PUT_LIKE: &[Operation] = &[O::PutObject, O::UploadPart];
const ACL_WRITES: &[Operation] = &[
    O::CreateBucket,
    O::PutObject,
    O::CopyObject,
    O::CreateMultipartUpload,
    O::PutBucketAcl,
    O::PutObjectAcl,
];
const LISTS: &[Operation] = &[O::ListObjects, O::ListObjectsV2];
const DELETES: &[Operation] = &[O::DeleteObject, O::DeleteObjects];
/// Every routed operation (the service root and bucket/object ones alike).
pub(crate) const ROUTED: &[Operation] = &[
    O::ListBuckets,
    O::CreateBucket,
    O::HeadBucket,
    O::DeleteBucket,
    O::GetBucketLocation,
    O::GetBucketVersioning,
    O::PutBucketVersioning,
    O::GetBucketAcl,
    O::PutBucketAcl,
    O::ListObjects,
    O::ListObjectsV2,
    O::ListMultipartUploads,
    O::ListObjectVersions,
    O::DeleteObjects,
    O::PutObject,
    O::CopyObject,
    O::GetObject,
    O::GetObjectAttributes,
    O::HeadObject,
    O::DeleteObject,
    O::GetObjectAcl,
    O::PutObjectAcl,
    O::GetObjectTagging,
    O::PutObjectTagging,
    O::DeleteObjectTagging,
    O::GetBucketTagging,
    O::PutBucketTagging,
    O::DeleteBucketTagging,
    O::CreateMultipartUpload,
    O::UploadPart,
    O::UploadPartCopy,
    O::CompleteMultipartUpload,
    O::AbortMultipartUpload,
    O::ListParts,
    O::GetObjectLockConfiguration,
    O::PutObjectLockConfiguration,
    O::GetObjectRetention,
    O::PutObjectRetention,
    O::GetObjectLegalHold,
    O::PutObjectLegalHold,
    O::GetBucketLifecycleConfiguration,
    O::PutBucketLifecycleConfiguration,
    O::DeleteBucketLifecycle,
    O::GetBucketPolicy,
    O::PutBucketPolicy,
    O::DeleteBucketPolicy,
    O::GetBucketCors,
    O::PutBucketCors,
    O::DeleteBucketCors,
    O::CorsPreflight,
    O::GetBucketEncryption,
    O::PutBucketEncryption,
    O::DeleteBucketEncryption,
    O::GetBucketPolicyStatus,
    O::GetPublicAccessBlock,
    O::PutPublicAccessBlock,
    O::DeletePublicAccessBlock,
    O::GetBucketNotificationConfiguration,
    O::PutBucketNotificationConfiguration,
];

/// The table. Order is the order of docs/compatibility.md's rows.
pub(crate) const RULES: &[Rule] = &[
    // --- every operation ---
    Rule {
        name: "x-amz-expected-bucket-owner",
        place: H,
        ops: ROUTED,
        treatment: OnlyValues(&[crate::OWNER_ID], Refusal::AccessDenied),
    },
    Rule {
        name: "x-amz-request-payer",
        place: H,
        ops: ROUTED,
        treatment: Advisory("no bucket is Requester Pays; S3 ignores it on such buckets"),
    },
    Rule {
        name: "x-amz-security-token",
        place: H,
        ops: ROUTED,
        treatment: Advisory(
            "Cairn issues no temporary credentials; the signature of a Cairn key alone authenticates",
        ),
    },
    Rule {
        name: "x-amz-skip-destination-validation",
        place: H,
        ops: &[O::PutBucketNotificationConfiguration],
        treatment: Advisory(
            "Cairn always checks that each destination is one of its notification targets (a local check, no test message); skipping it could only accept a configuration that never delivers",
        ),
    },
    // --- object data and its settings ---
    Rule {
        name: "x-amz-storage-class",
        place: H,
        ops: OBJECT_WRITES,
        treatment: OnlyValues(&["STANDARD"], Refusal::InvalidStorageClass),
    },
    Rule {
        name: "x-amz-server-side-encryption",
        place: H,
        ops: OBJECT_WRITES,
        treatment: OnlyValues(&["AES256", "aws:kms"], Refusal::InvalidEncryption),
    },
    Rule {
        name: "x-amz-server-side-encryption-aws-kms-key-id",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted(
            "with `aws:kms`: the key-service key (id, key ARN, `alias/NAME` or alias ARN) that wraps the object's new data key; none: the default key `aws/s3`, made on first use; an unknown key `400 KMS.NotFoundException`, a disabled one `400 KMS.DisabledException`; without `aws:kms` `400 InvalidArgument`",
        ),
    },
    Rule {
        name: "x-amz-server-side-encryption-context",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted(
            "with `aws:kms`: base64 JSON of string pairs, bound to the wrapped data key (associated data) and echoed on GET/HEAD; anything else, or without `aws:kms`, `400 InvalidArgument`",
        ),
    },
    Rule {
        name: "x-amz-server-side-encryption-bucket-key-enabled",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted(
            "stored and echoed with an SSE-KMS object; S3 Bucket Keys only reduce KMS calls, which Cairn's built-in key service does not charge for, so each object keeps its own data key either way",
        ),
    },
    Rule {
        name: "x-amz-server-side-encryption-customer-algorithm, -key, -key-md5",
        place: H,
        ops: SSE_C_OPS,
        treatment: Acted(
            "SSE-C: the object is encrypted under the customer's key (AES-256-CTR, a key per object derived from it, a keystream per part) before the pipeline; only a salted check of the key is kept; reads need the key (missing `400 InvalidRequest`, wrong `403 AccessDenied`), and so does every part of an upload begun with one; over plain HTTP `400 InvalidRequest` unless `--allow-sse-c-over-http`",
        ),
    },
    Rule {
        name: "x-amz-copy-source-server-side-encryption-customer-algorithm, -key, -key-md5",
        place: H,
        ops: COPIES,
        treatment: Acted(
            "the source's customer key: checked against it (missing `400 InvalidRequest`, wrong `403 AccessDenied`), the bytes decrypted and copied (re-encrypted under the destination's key, if given)",
        ),
    },
    Rule {
        name: "x-amz-object-lock-mode",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted(
            "the version's retention mode (with `-retain-until-date`; a bucket without Object Lock: `400 InvalidRequest` \"Bucket is missing Object Lock Configuration\", as S3)",
        ),
    },
    Rule {
        name: "x-amz-object-lock-retain-until-date",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted("the version's retain-until date (ISO 8601, in the future; with `-mode`)"),
    },
    Rule {
        name: "x-amz-object-lock-legal-hold",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted("the version's legal hold (`ON` / `OFF`)"),
    },
    Rule {
        name: "x-amz-website-redirect-location",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Refused(Refusal::NotImplemented),
    },
    Rule {
        name: "x-amz-write-offset-bytes",
        place: H,
        ops: &[O::PutObject],
        treatment: Refused(Refusal::NotImplemented),
    },
    Rule {
        name: "x-amz-mp-object-size",
        place: H,
        ops: &[O::CompleteMultipartUpload],
        treatment: Refused(Refusal::NotImplemented),
    },
    // --- standard content headers and metadata ---
    Rule {
        name: "content-md5",
        place: H,
        ops: &[
            O::PutObject,
            O::UploadPart,
            O::DeleteObjects,
            O::PutObjectTagging,
            O::PutBucketTagging,
            O::PutBucketVersioning,
            O::PutObjectLockConfiguration,
            O::PutObjectRetention,
            O::PutObjectLegalHold,
            O::PutBucketAcl,
            O::PutObjectAcl,
            O::PutBucketLifecycleConfiguration,
            O::PutBucketPolicy,
            O::PutPublicAccessBlock,
            O::PutBucketCors,
            O::PutBucketEncryption,
        ],
        treatment: Acted("verified against the body (BadDigest)"),
    },
    Rule {
        name: "x-amz-meta-*",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted("stored (≤ 2 KiB), returned on GET/HEAD"),
    },
    Rule {
        name: "content-type, content-encoding, content-disposition, content-language, cache-control, expires",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted("stored, returned on GET/HEAD"),
    },
    Rule {
        name: "x-amz-tagging",
        place: H,
        ops: OBJECT_WRITES,
        treatment: Acted("validated and stored"),
    },
    Rule {
        name: "x-amz-acl, x-amz-grant-*",
        place: H,
        ops: ACL_WRITES,
        treatment: Acted(
            "the owner-only policy is accepted; any other grant AccessControlListNotSupported",
        ),
    },
    Rule {
        name: "x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256",
        place: H,
        ops: &[
            O::PutObject,
            O::UploadPart,
            O::CompleteMultipartUpload,
            O::DeleteObjects,
            O::PutObjectTagging,
            O::PutBucketTagging,
            O::PutBucketLifecycleConfiguration,
            O::PutBucketPolicy,
            O::PutPublicAccessBlock,
            O::PutBucketCors,
            O::PutBucketEncryption,
        ],
        treatment: Acted("verified (BadDigest) and stored"),
    },
    Rule {
        name: "x-amz-sdk-checksum-algorithm",
        place: H,
        ops: &[
            O::PutObject,
            O::UploadPart,
            O::DeleteObjects,
            O::PutObjectTagging,
            O::PutBucketTagging,
            O::PutBucketVersioning,
            O::PutObjectLockConfiguration,
            O::PutObjectRetention,
            O::PutObjectLegalHold,
            O::PutBucketAcl,
            O::PutObjectAcl,
            O::PutBucketLifecycleConfiguration,
            O::PutBucketPolicy,
            O::PutPublicAccessBlock,
            O::PutBucketCors,
            O::PutBucketEncryption,
        ],
        treatment: Advisory("names the checksum header or trailer that is sent, which is verified"),
    },
    Rule {
        name: "x-amz-checksum-algorithm, x-amz-checksum-type",
        place: H,
        ops: &[O::CreateMultipartUpload, O::CompleteMultipartUpload],
        treatment: Acted("the upload's checksum algorithm and type"),
    },
    Rule {
        name: "x-amz-checksum-algorithm",
        place: H,
        ops: &[O::CopyObject],
        treatment: Acted(
            "the copy keeps the source's checksums: the source's algorithm is accepted, another NotImplemented",
        ),
    },
    Rule {
        name: "x-amz-checksum-mode",
        place: H,
        ops: READS,
        treatment: Acted("ENABLED returns the stored checksum"),
    },
    Rule {
        name: "if-match, if-none-match",
        place: H,
        ops: &[O::PutObject, O::CopyObject, O::CompleteMultipartUpload],
        treatment: Acted("conditional write, atomic with the commit"),
    },
    Rule {
        name: "if-match, if-none-match, if-modified-since, if-unmodified-since, range",
        place: H,
        ops: READS,
        treatment: Acted("conditional and ranged reads"),
    },
    Rule {
        name: "if-match",
        place: H,
        ops: &[O::DeleteObject],
        treatment: Refused(Refusal::NotImplemented),
    },
    Rule {
        name: "x-amz-if-match-last-modified-time",
        place: H,
        ops: &[O::DeleteObject],
        treatment: Refused(Refusal::NotImplemented),
    },
    Rule {
        name: "x-amz-if-match-size",
        place: H,
        ops: &[O::DeleteObject],
        treatment: Refused(Refusal::NotImplemented),
    },
    // --- copies ---
    Rule {
        name: "x-amz-copy-source, x-amz-copy-source-if-*",
        place: H,
        ops: COPIES,
        treatment: Acted("source (its `?versionId=` too) and its conditions"),
    },
    Rule {
        name: "x-amz-copy-source-range",
        place: H,
        ops: &[O::UploadPartCopy],
        treatment: Acted("bytes=first-last"),
    },
    Rule {
        name: "x-amz-metadata-directive, x-amz-tagging-directive",
        place: H,
        ops: &[O::CopyObject],
        treatment: Acted("COPY or REPLACE"),
    },
    Rule {
        name: "x-amz-source-expected-bucket-owner",
        place: H,
        ops: COPIES,
        treatment: OnlyValues(&[crate::OWNER_ID], Refusal::AccessDenied),
    },
    // --- deletes and retention ---
    Rule {
        name: "x-amz-mfa",
        place: H,
        ops: DELETES,
        treatment: Advisory("MFA delete is never enabled; S3 ignores the header then"),
    },
    Rule {
        name: "x-amz-mfa",
        place: H,
        ops: &[O::PutBucketVersioning],
        treatment: Advisory(
            "only needed to change MFA delete, which a document asking for it is refused (`501 NotImplemented`)",
        ),
    },
    Rule {
        name: "x-amz-bypass-governance-retention",
        place: H,
        ops: &[O::DeleteObject, O::DeleteObjects, O::PutObjectRetention],
        treatment: Acted(
            "an admin key may delete a version, or shorten or remove a retention, under GOVERNANCE (never COMPLIANCE); for other keys it changes nothing",
        ),
    },
    // --- buckets ---
    Rule {
        name: "x-amz-bucket-object-lock-enabled",
        place: H,
        ops: &[O::CreateBucket],
        treatment: Acted("`true`: the bucket has Object Lock and versioning from the start"),
    },
    Rule {
        name: "x-amz-bucket-object-lock-token",
        place: H,
        ops: &[O::PutObjectLockConfiguration],
        treatment: Advisory(
            "the token S3 once required to enable Object Lock on an existing bucket; Cairn enables it on any bucket with versioning enabled",
        ),
    },
    Rule {
        name: "origin, access-control-request-method, access-control-request-headers",
        place: H,
        ops: &[O::CorsPreflight],
        treatment: Acted("matched against the bucket's CORS rules"),
    },
    Rule {
        name: "x-amz-confirm-remove-self-bucket-access",
        place: H,
        ops: &[O::PutBucketPolicy],
        treatment: Advisory(
            "S3's confirmation that a policy may lock its caller out; an admin key can always replace a policy, so nobody is",
        ),
    },
    Rule {
        name: "x-amz-transition-default-minimum-object-size",
        place: H,
        ops: &[O::PutBucketLifecycleConfiguration],
        treatment: Advisory(
            "the smallest object a transition moves; Cairn refuses transitions (InvalidStorageClass), so it never applies",
        ),
    },
    Rule {
        name: "x-amz-object-ownership",
        place: H,
        ops: &[O::CreateBucket],
        treatment: OnlyValues(&["BucketOwnerEnforced"], Refusal::NotImplemented),
    },
    // --- query parameters ---
    Rule {
        name: "versionId",
        place: Q,
        ops: &[
            O::GetObject,
            O::HeadObject,
            O::GetObjectAttributes,
            O::DeleteObject,
            O::GetObjectTagging,
            O::PutObjectTagging,
            O::DeleteObjectTagging,
            O::GetObjectAcl,
            O::PutObjectAcl,
            O::GetObjectRetention,
            O::PutObjectRetention,
            O::GetObjectLegalHold,
            O::PutObjectLegalHold,
        ],
        treatment: Acted(
            "the version: `null` or an id Cairn gave; a malformed one is `400 InvalidArgument`, an unknown one `404 NoSuchVersion`",
        ),
    },
    Rule {
        name: "partNumber",
        place: Q,
        ops: &[
            O::GetObject,
            O::HeadObject,
            O::UploadPart,
            O::UploadPartCopy,
        ],
        treatment: Acted("the part read or written"),
    },
    Rule {
        name: "response-content-type, -language, -expires, -cache-control, -disposition, -encoding",
        place: Q,
        ops: &[O::GetObject],
        treatment: Acted("override the response headers"),
    },
    Rule {
        name: "prefix, delimiter, max-keys, encoding-type, marker, list-type, continuation-token, fetch-owner, start-after",
        place: Q,
        ops: LISTS,
        treatment: Acted("listing parameters"),
    },
    Rule {
        name: "x-amz-optional-object-attributes",
        place: H,
        ops: &[O::ListObjects, O::ListObjectsV2, O::ListObjectVersions],
        treatment: Advisory(
            "asks for RestoreStatus, which no object has (nothing is archived), as S3 omits it then",
        ),
    },
    Rule {
        name: "prefix, delimiter, max-keys, encoding-type, key-marker, version-id-marker",
        place: Q,
        ops: &[O::ListObjectVersions],
        treatment: Acted("listing parameters"),
    },
    Rule {
        name: "prefix, delimiter, max-uploads, encoding-type, key-marker, upload-id-marker",
        place: Q,
        ops: &[O::ListMultipartUploads],
        treatment: Acted("listing parameters"),
    },
    Rule {
        name: "uploadId, max-parts, part-number-marker",
        place: Q,
        ops: &[O::ListParts],
        treatment: Acted("listing parameters"),
    },
    Rule {
        name: "uploadId",
        place: Q,
        ops: &[
            O::UploadPart,
            O::UploadPartCopy,
            O::CompleteMultipartUpload,
            O::AbortMultipartUpload,
        ],
        treatment: Acted("the upload"),
    },
    Rule {
        name: "prefix, max-buckets, continuation-token, bucket-region",
        place: Q,
        ops: &[O::ListBuckets],
        treatment: Acted("listing parameters"),
    },
    Rule {
        name: "x-amz-object-attributes, x-amz-max-parts, x-amz-part-number-marker",
        place: H,
        ops: &[O::GetObjectAttributes],
        treatment: Acted("the attributes returned"),
    },
    Rule {
        name: "x-amz-content-sha256, x-amz-date, authorization, X-Amz-* (presigned)",
        place: H,
        ops: ROUTED,
        treatment: Acted("SigV4 authentication"),
    },
    Rule {
        name: "x-amz-decoded-content-length, x-amz-trailer",
        place: H,
        ops: PUT_LIKE,
        treatment: Acted("aws-chunked bodies"),
    },
];

/// Names of single parameters a rule covers: a rule's `name` may list
/// several, comma-separated, and `-x` entries continue the previous one's
/// stem (`x-amz-checksum-crc32, -crc32c` is `x-amz-checksum-crc32c`).
#[cfg(test)]
fn rule_names(rule: &Rule) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in rule.name.split(", ") {
        let part = part.trim();
        if let Some(suffix) = part.strip_prefix('-')
            && let Some(prev) = out.last()
            && let Some(cut) = prev.rfind('-')
        {
            out.push(format!("{}-{suffix}", &prev[..cut]));
        } else {
            out.push(part.to_owned());
        }
    }
    out
}

/// Whether `rule` is about `op`: the rules for every operation cover the
/// configuration operations too, which `ROUTED` lists once.
fn applies(rule: &Rule, op: Operation) -> bool {
    rule.ops.contains(&op)
        || (matches!(op, O::GetBucketConfig(_) | O::DeleteBucketConfig(_)) && rule.ops == ROUTED)
}

/// Refuses a request carrying a parameter Cairn must not accept. Runs after
/// authentication and before the handler: nothing has been read or stored.
pub(crate) fn check_request(op: Operation, headers: &HeaderMap, query: &Query) -> S3Result<()> {
    for rule in RULES.iter().filter(|r| applies(r, op)) {
        let (allowed, refusal) = match rule.treatment {
            Acted(_) | Advisory(_) => continue,
            OnlyValues(values, refusal) => (values, refusal),
            Refused(refusal) => (&[][..], refusal),
        };
        let name = rule.name;
        let values: Vec<&[u8]> = match rule.place {
            Place::Header => headers
                .get_all(name)
                .iter()
                .map(http::HeaderValue::as_bytes)
                .collect(),
            Place::Query => query.get(name).map(str::as_bytes).into_iter().collect(),
        };
        for value in values {
            let ok = allowed.iter().any(|a| a.as_bytes() == value.trim_ascii());
            if !ok {
                return Err(refuse(refusal, name, &String::from_utf8_lossy(value)));
            }
        }
    }
    Ok(())
}

fn refuse(refusal: Refusal, name: &str, value: &str) -> S3Error {
    let value: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect();
    match refusal {
        Refusal::NotImplemented => S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("A header you provided implies functionality that is not implemented: {name}."),
        )
        .field("Header", name.to_owned()),
        Refusal::InvalidStorageClass => S3Error::new(S3ErrorCode::InvalidStorageClass)
            .field("StorageClassRequested", value),
        // Dual-layer KMS is a real S3 method Cairn lacks; anything else is
        // no method.
        Refusal::InvalidEncryption if value.trim() == "aws:kms:dsse" => S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Server-side encryption with aws:kms:dsse (dual-layer KMS) is not implemented: use aws:kms or AES256.",
        )
        .field("Header", name.to_owned()),
        Refusal::InvalidEncryption => S3Error::invalid_argument(
            "The encryption method specified is not supported",
            name,
            &value,
        ),
        Refusal::AccessDenied => S3Error::new(S3ErrorCode::AccessDenied),
    }
}

/// The request headers and query parameters S3 defines for each routed
/// operation (the S3 API reference, botocore's model), by the names the
/// rules use. Exhaustive on purpose: routing a new operation means listing
/// what S3 defines for it, and the test below then demands a rule for each.
#[cfg(test)]
fn defined_params(op: Operation) -> Vec<&'static str> {
    /// On (nearly) every operation.
    const OWNER_PAYER: [&str; 2] = ["x-amz-expected-bucket-owner", "x-amz-request-payer"];
    const SSE_C: [&str; 3] = [
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-server-side-encryption-customer-key",
        "x-amz-server-side-encryption-customer-key-md5",
    ];
    const COPY_SOURCE_SSE_C: [&str; 3] = [
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        "x-amz-copy-source-server-side-encryption-customer-key",
        "x-amz-copy-source-server-side-encryption-customer-key-md5",
    ];
    const CHECKSUMS: [&str; 5] = [
        "x-amz-checksum-crc32",
        "x-amz-checksum-crc32c",
        "x-amz-checksum-crc64nvme",
        "x-amz-checksum-sha1",
        "x-amz-checksum-sha256",
    ];
    /// What an object-creating request (PutObject, CopyObject,
    /// CreateMultipartUpload) may set about the object it makes.
    const NEW_OBJECT: [&str; 20] = [
        "x-amz-acl",
        "x-amz-grant-*",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-type",
        "expires",
        "x-amz-meta-*",
        "x-amz-tagging",
        "x-amz-storage-class",
        "x-amz-website-redirect-location",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-context",
        "x-amz-server-side-encryption-bucket-key-enabled",
        "x-amz-object-lock-mode",
        "x-amz-object-lock-retain-until-date",
        "x-amz-object-lock-legal-hold",
        "x-amz-sdk-checksum-algorithm",
    ];
    const LIST: [&str; 4] = ["prefix", "delimiter", "max-keys", "encoding-type"];
    let groups: &[&[&str]] = match op {
        // A form's fields become the headers of a PutObject and are checked
        // as PutObject's (handlers/post_object.rs); the request head itself
        // carries only the form's content type.
        O::PostObject => &[],
        O::GetBucketNotificationConfiguration => &[&["x-amz-expected-bucket-owner"]],
        O::PutBucketNotificationConfiguration => &[&[
            "x-amz-expected-bucket-owner",
            "x-amz-skip-destination-validation",
        ]],
        O::ListBuckets => &[&[
            "prefix",
            "max-buckets",
            "continuation-token",
            "bucket-region",
        ]],
        O::CreateBucket => &[&[
            "x-amz-acl",
            "x-amz-grant-*",
            "x-amz-bucket-object-lock-enabled",
            "x-amz-object-ownership",
        ]],
        O::HeadBucket
        | O::DeleteBucket
        | O::GetBucketLocation
        | O::GetBucketVersioning
        | O::GetBucketAcl
        | O::GetBucketTagging
        | O::DeleteBucketTagging
        | O::GetBucketConfig(_)
        | O::DeleteBucketConfig(_) => &[&OWNER_PAYER],
        O::GetObjectLockConfiguration => &[&OWNER_PAYER],
        O::GetObjectAcl
        | O::GetObjectTagging
        | O::DeleteObjectTagging
        | O::GetObjectRetention
        | O::GetObjectLegalHold => &[&OWNER_PAYER, &["versionId"]],
        O::PutObjectLockConfiguration => &[
            &OWNER_PAYER,
            &[
                "x-amz-bucket-object-lock-token",
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
            ],
        ],
        O::PutObjectRetention => &[
            &OWNER_PAYER,
            &[
                "versionId",
                "x-amz-bypass-governance-retention",
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
            ],
        ],
        O::PutObjectLegalHold => &[
            &OWNER_PAYER,
            &["versionId", "content-md5", "x-amz-sdk-checksum-algorithm"],
        ],
        O::GetBucketLifecycleConfiguration | O::DeleteBucketLifecycle => &[&OWNER_PAYER],
        O::GetBucketPolicy
        | O::DeleteBucketPolicy
        | O::GetBucketPolicyStatus
        | O::GetPublicAccessBlock
        | O::DeletePublicAccessBlock => &[&OWNER_PAYER],
        O::PutBucketPolicy => &[
            &OWNER_PAYER,
            &CHECKSUMS,
            &[
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
                "x-amz-confirm-remove-self-bucket-access",
            ],
        ],
        O::PutPublicAccessBlock | O::PutBucketCors | O::PutBucketEncryption => &[
            &OWNER_PAYER,
            &CHECKSUMS,
            &["content-md5", "x-amz-sdk-checksum-algorithm"],
        ],
        O::GetBucketCors
        | O::DeleteBucketCors
        | O::GetBucketEncryption
        | O::DeleteBucketEncryption => &[&OWNER_PAYER],
        O::CorsPreflight => &[&[
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ]],
        O::PutBucketLifecycleConfiguration => &[
            &OWNER_PAYER,
            &CHECKSUMS,
            &[
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
                "x-amz-transition-default-minimum-object-size",
            ],
        ],
        O::PutBucketAcl | O::PutObjectAcl => &[
            &OWNER_PAYER,
            &[
                "x-amz-acl",
                "x-amz-grant-*",
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
            ],
        ],
        O::ListObjects => &[
            &OWNER_PAYER,
            &LIST,
            &["marker", "x-amz-optional-object-attributes"],
        ],
        O::ListObjectsV2 => &[
            &OWNER_PAYER,
            &LIST,
            &[
                "list-type",
                "continuation-token",
                "fetch-owner",
                "start-after",
                "x-amz-optional-object-attributes",
            ],
        ],
        O::ListMultipartUploads => &[
            &OWNER_PAYER,
            &[
                "prefix",
                "delimiter",
                "max-uploads",
                "encoding-type",
                "key-marker",
                "upload-id-marker",
            ],
        ],
        O::ListObjectVersions => &[
            &OWNER_PAYER,
            &LIST,
            &[
                "key-marker",
                "version-id-marker",
                "x-amz-optional-object-attributes",
            ],
        ],
        O::DeleteObjects => &[
            &OWNER_PAYER,
            &[
                "x-amz-mfa",
                "x-amz-bypass-governance-retention",
                "x-amz-sdk-checksum-algorithm",
                "content-md5",
            ],
        ],
        O::PutObject => &[
            &OWNER_PAYER,
            &NEW_OBJECT,
            &SSE_C,
            &CHECKSUMS,
            &[
                "content-md5",
                "if-match",
                "if-none-match",
                "x-amz-write-offset-bytes",
            ],
        ],
        O::CopyObject => &[
            &OWNER_PAYER,
            &NEW_OBJECT[..NEW_OBJECT.len() - 1],
            &SSE_C,
            &COPY_SOURCE_SSE_C,
            &[
                "x-amz-checksum-algorithm",
                "x-amz-copy-source",
                "x-amz-copy-source-if-*",
                "if-match",
                "if-none-match",
                "x-amz-metadata-directive",
                "x-amz-tagging-directive",
                "x-amz-source-expected-bucket-owner",
            ],
        ],
        O::CreateMultipartUpload => &[
            &OWNER_PAYER,
            &NEW_OBJECT[..NEW_OBJECT.len() - 1],
            &SSE_C,
            &["x-amz-checksum-algorithm", "x-amz-checksum-type"],
        ],
        O::GetObject | O::HeadObject => &[
            &OWNER_PAYER,
            &SSE_C,
            &[
                "if-match",
                "if-modified-since",
                "if-none-match",
                "if-unmodified-since",
                "range",
                "versionId",
                "partNumber",
                "x-amz-checksum-mode",
            ],
        ],
        O::GetObjectAttributes => &[
            &OWNER_PAYER,
            &SSE_C,
            &[
                "versionId",
                "x-amz-max-parts",
                "x-amz-part-number-marker",
                "x-amz-object-attributes",
            ],
        ],
        O::DeleteObject => &[
            &OWNER_PAYER,
            &[
                "x-amz-mfa",
                "versionId",
                "x-amz-bypass-governance-retention",
                "if-match",
                "x-amz-if-match-last-modified-time",
                "x-amz-if-match-size",
            ],
        ],
        O::PutObjectTagging => &[
            &OWNER_PAYER,
            &["versionId", "content-md5", "x-amz-sdk-checksum-algorithm"],
        ],
        O::PutBucketTagging => &[
            &OWNER_PAYER,
            &["content-md5", "x-amz-sdk-checksum-algorithm"],
        ],
        O::PutBucketVersioning => &[
            &OWNER_PAYER,
            &["content-md5", "x-amz-sdk-checksum-algorithm", "x-amz-mfa"],
        ],
        O::UploadPart => &[
            &OWNER_PAYER,
            &SSE_C,
            &CHECKSUMS,
            &[
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
                "partNumber",
                "uploadId",
            ],
        ],
        O::UploadPartCopy => &[
            &OWNER_PAYER,
            &SSE_C,
            &COPY_SOURCE_SSE_C,
            &[
                "x-amz-copy-source",
                "x-amz-copy-source-if-*",
                "x-amz-copy-source-range",
                "partNumber",
                "uploadId",
                "x-amz-source-expected-bucket-owner",
            ],
        ],
        O::CompleteMultipartUpload => &[
            &OWNER_PAYER,
            &SSE_C,
            &CHECKSUMS,
            &[
                "uploadId",
                "x-amz-checksum-type",
                "x-amz-mp-object-size",
                "if-match",
                "if-none-match",
            ],
        ],
        O::AbortMultipartUpload => &[&OWNER_PAYER, &["uploadId"]],
        O::ListParts => &[
            &OWNER_PAYER,
            &["max-parts", "part-number-marker", "uploadId"],
        ],
        O::Unsupported(_) | O::MethodNotAllowed => &[],
    };
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// The table as docs/compatibility.md shows it.
#[cfg(test)]
fn render_markdown() -> String {
    let mut out =
        String::from("| parameter | where | operations | what Cairn does |\n|---|---|---|---|\n");
    for rule in RULES {
        let place = match rule.place {
            Place::Header => "header",
            Place::Query => "query",
        };
        let ops = if rule.ops == ROUTED {
            "every operation".to_owned()
        } else {
            rule.ops
                .iter()
                .map(|o| o.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let what = match rule.treatment {
            Acted(why) => format!("acted upon: {why}"),
            Advisory(why) => format!("ignored, harmless: {why}"),
            OnlyValues(values, refusal) => format!(
                "accepted only as {}; otherwise {}",
                values
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(" / "),
                refusal_text(refusal)
            ),
            Refused(refusal) => format!("refused: {}", refusal_text(refusal)),
        };
        out.push_str(&format!("| `{}` | {place} | {ops} | {what} |\n", rule.name));
    }
    out
}

#[cfg(test)]
fn refusal_text(r: Refusal) -> &'static str {
    match r {
        Refusal::NotImplemented => "`501 NotImplemented`",
        Refusal::InvalidStorageClass => "`400 InvalidStorageClass`",
        Refusal::InvalidEncryption => {
            "`501 NotImplemented` for `aws:kms:dsse` (dual-layer KMS), `400 InvalidArgument` for any other value"
        }
        Refusal::AccessDenied => "`403 AccessDenied`",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Every parameter S3 defines for a routed operation has a rule that
    /// names it for that operation.
    #[test]
    fn every_defined_parameter_of_every_routed_operation_has_a_rule() {
        for &op in ROUTED {
            for param in defined_params(op) {
                let covered = RULES
                    .iter()
                    .any(|r| applies(r, op) && rule_names(r).iter().any(|n| n == param));
                assert!(covered, "{}: no rule for {param}", op.name());
            }
        }
    }

    /// No rule names an operation S3 does not define the parameter for
    /// (keeps the table honest in the other direction), except the
    /// authentication and common rules that apply to every request.
    #[test]
    fn rules_name_only_routed_operations() {
        for rule in RULES {
            for op in rule.ops {
                assert!(ROUTED.contains(op), "{}: {op:?} is not routed", rule.name);
            }
        }
    }

    /// Only single, exact names can be checked against a request.
    #[test]
    fn checked_rules_name_one_parameter() {
        for rule in RULES {
            if matches!(rule.treatment, OnlyValues(..) | Refused(_)) {
                assert_eq!(rule_names(rule), vec![rule.name.to_owned()]);
                assert!(!rule.name.contains('*'), "{}", rule.name);
                if rule.place == Place::Header {
                    assert_eq!(rule.name, rule.name.to_ascii_lowercase());
                }
            }
        }
    }

    #[test]
    fn docs_show_the_table() {
        let doc = include_str!("../../docs/compatibility.md");
        let table = render_markdown();
        if std::env::var_os("CAIRN_BLESS").is_some() {
            println!("{table}");
        }
        assert!(
            doc.contains(&table),
            "docs/compatibility.md must contain the request-parameter table exactly as \
             rendered (run with CAIRN_BLESS=1 -- --nocapture to print it):\n{table}"
        );
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn code(op: Operation, pairs: &[(&str, &str)]) -> Option<&'static str> {
        check_request(op, &headers(pairs), &Query::default())
            .err()
            .map(|e| e.code.as_str())
    }

    #[test]
    fn refusals_carry_aws_errors() {
        let put = O::PutObject;
        assert_eq!(code(put, &[]), None);
        assert_eq!(code(put, &[("x-amz-storage-class", "STANDARD")]), None);
        assert_eq!(
            code(put, &[("x-amz-storage-class", "GLACIER")]),
            Some("InvalidStorageClass")
        );
        assert_eq!(
            code(put, &[("x-amz-server-side-encryption", "AES256")]),
            None
        );
        assert_eq!(
            code(put, &[("x-amz-server-side-encryption", "aws:kms")]),
            None
        );
        assert_eq!(
            code(put, &[("x-amz-server-side-encryption", "aws:kms:dsse")]),
            Some("NotImplemented")
        );
        assert_eq!(
            code(put, &[("x-amz-server-side-encryption", "AES128")]),
            Some("InvalidArgument")
        );
        // SSE-C: checked by the handlers (sse_c.rs), copies included.
        for (op, header) in [
            (put, "x-amz-server-side-encryption-customer-algorithm"),
            (
                O::UploadPartCopy,
                "x-amz-server-side-encryption-customer-key",
            ),
            (
                O::UploadPartCopy,
                "x-amz-copy-source-server-side-encryption-customer-key",
            ),
        ] {
            assert_eq!(code(op, &[(header, "x")]), None, "{header}");
        }
        // Object Lock is the handlers' (they need the bucket's state).
        assert_eq!(code(put, &[("x-amz-object-lock-mode", "COMPLIANCE")]), None);
        assert_eq!(
            code(
                O::CreateBucket,
                &[("x-amz-bucket-object-lock-enabled", "true")]
            ),
            None
        );
        assert_eq!(
            code(put, &[("x-amz-website-redirect-location", "/x")]),
            Some("NotImplemented")
        );
        assert_eq!(
            code(
                O::ListObjectsV2,
                &[("x-amz-expected-bucket-owner", "123456789012")]
            ),
            Some("AccessDenied")
        );
        assert_eq!(
            code(
                O::ListObjectsV2,
                &[("x-amz-expected-bucket-owner", "cairn")]
            ),
            None
        );
        // A second value cannot slip past the first.
        assert_eq!(
            code(
                put,
                &[
                    ("x-amz-storage-class", "STANDARD"),
                    ("x-amz-storage-class", "GLACIER")
                ]
            ),
            Some("InvalidStorageClass")
        );
        // Headers that belong to other operations are not this one's business.
        assert_eq!(
            code(O::DeleteObject, &[("x-amz-storage-class", "GLACIER")]),
            None
        );
    }
}
