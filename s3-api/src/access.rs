//! Authorization: whether the caller of a request may run its operation on
//! the bucket or object it addresses — from the key's own grants, the
//! bucket's policy and the public access blocks.
//!
//! Owns: [`Caller`] (who is asking), [`PublicAccessBlock`] and its stored
//! form, the per-bucket cache of parsed policies ([`AccessCache`]), the
//! condition context a request offers a policy, and the one decision
//! ([`authorize`]) every request path goes through (the service before the
//! handler; DeleteObjects per key; copies for their source).
//!
//! The decision, in order (AWS's evaluation logic for one account; the
//! table is in docs/security.md):
//! 1. An explicit `Deny` in the bucket's policy refuses, for every caller —
//!    except that an admin key can always read, replace or delete the
//!    policy and the public access block (as the AWS account root can, so
//!    a policy cannot lock its owner out).
//! 2. Admin keys may do everything else.
//! 3. Operations that change what protects a bucket (`RequiredAccess::Admin`:
//!    versioning, Object Lock, lifecycle, policy, bucket creation) need an
//!    admin key; a policy cannot grant them.
//! 4. A key with a grant covering the operation may (read or write), and so
//!    may any caller, anonymous included, whom the policy allows.
//! 5. Anonymous callers get nothing else: no ListBuckets, and nothing when
//!    the bucket's policy is public while `RestrictPublicBuckets` is in
//!    force (the bucket's own block or the server-wide default).
//! 6. Everything else is refused (`AccessDenied`).
//!
//! Must never: allow on what was not signed (the caller is the key that
//! signed, or anonymous — never a key named in a header); tell an
//! anonymous caller whether a bucket exists (refused the same either way);
//! read more than the policy needs (an object's tags only when a condition
//! names `s3:ExistingObjectTag/…`); serve a policy older than a change that
//! was acknowledged before the request began on this node (the cache is
//! keyed by the engine's bucket configuration epoch); offer a condition
//! value other than the one the handler acts on (a copy's source as the
//! handler parses it, the tags it will set); take a failure to read a
//! condition value for its absence (an unreadable object is not an
//! untagged one: the request is refused).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use cairn_policy::{
    Decision, EVALUATION_STEPS_MAX, LazyContext, Policy, PolicyError, Principal,
    Request as PolicyRequest,
};
use cairn_storage_engine::{BucketDocument, Engine, EngineError, ObjectVersion, VersionRef};

use crate::context::ServiceInner;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::keys::KeyAccess;
use crate::router::{Operation, Query, RequiredAccess};

/// Who is asking.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// An unsigned request.
    Anonymous,
    /// The key that signed the request (header or presigned URL).
    Key {
        id: String,
        /// What policies name the key by (`arn:aws:iam:::user/<name>`).
        name: String,
        access: Arc<KeyAccess>,
    },
}

impl Caller {
    pub(crate) fn is_admin(&self) -> bool {
        matches!(self, Caller::Key { access, .. } if access.admin)
    }

    fn principal(&self) -> Principal<'_> {
        match self {
            Caller::Anonymous => Principal::Anonymous,
            Caller::Key { id, name, .. } => Principal::User { id, name },
        }
    }
}

/// What the connection tells about the client (not signed, but not the
/// client's to choose either).
#[derive(Clone, Copy, Debug)]
pub struct ClientFacts {
    /// The peer's address (`aws:SourceIp`).
    pub ip: Option<IpAddr>,
    /// Whether the connection is TLS (`aws:SecureTransport`).
    pub secure: bool,
}

/// A bucket's public access block, as S3's PutPublicAccessBlock sets it.
/// Cairn's ACLs are bucket-owner-enforced (never public), so the two ACL
/// settings are kept and reported but have nothing to block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// The stored form's version byte; then one byte of flags (bit 0
/// BlockPublicAcls, 1 IgnorePublicAcls, 2 BlockPublicPolicy, 3
/// RestrictPublicBuckets).
const PUBLIC_ACCESS_BLOCK_V1: u8 = 1;

impl PublicAccessBlock {
    /// Every setting on: the server-wide default.
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    pub(crate) fn encode(self) -> Vec<u8> {
        let flags = u8::from(self.block_public_acls)
            | u8::from(self.ignore_public_acls) << 1
            | u8::from(self.block_public_policy) << 2
            | u8::from(self.restrict_public_buckets) << 3;
        vec![PUBLIC_ACCESS_BLOCK_V1, flags]
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [PUBLIC_ACCESS_BLOCK_V1, flags] if flags & !0b1111 == 0 => Some(PublicAccessBlock {
                block_public_acls: flags & 1 != 0,
                ignore_public_acls: flags & 2 != 0,
                block_public_policy: flags & 4 != 0,
                restrict_public_buckets: flags & 8 != 0,
            }),
            _ => None,
        }
    }

    /// The stricter of two blocks (S3 combines account and bucket level so).
    pub(crate) fn or(self, other: PublicAccessBlock) -> PublicAccessBlock {
        PublicAccessBlock {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }
}

/// A bucket policy as stored (`BucketDocument::Policy`): the document as
/// PUT (GetBucketPolicy answers it) and the access key id each named
/// principal was bound to at PutBucketPolicy.
///
/// Formats:
/// - v1 (before bindings): the JSON document itself; its first byte is `{`
///   or JSON whitespace. Named principals match by key name.
/// - v2: `0x02`, the document's length (u32 BE) and bytes, the number of
///   bindings (u16 BE), then per binding the name's and the id's length
///   (u16 BE) and UTF-8 bytes, sorted by name; nothing after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyRecord {
    pub(crate) document: Vec<u8>,
    /// `None`: a v1 record.
    pub(crate) bindings: Option<BTreeMap<String, String>>,
}

const POLICY_RECORD_V2: u8 = 2;

/// Why a stored policy record does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PolicyRecordError {
    #[error("policy record has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("policy record is empty")]
    Empty,
    #[error("policy record is truncated")]
    Truncated,
    #[error("policy record has a binding that is not UTF-8")]
    InvalidUtf8,
    #[error("policy record has trailing bytes")]
    TrailingBytes,
    #[error("policy record's binding does not fit the format")]
    TooLong,
}

impl PolicyRecord {
    /// The v2 record of `document` with `bindings`.
    pub(crate) fn encode(
        document: &[u8],
        bindings: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, PolicyRecordError> {
        let len32 = |n: usize| u32::try_from(n).map_err(|_| PolicyRecordError::TooLong);
        let len16 = |n: usize| u16::try_from(n).map_err(|_| PolicyRecordError::TooLong);
        let mut out = Vec::with_capacity(7 + document.len() + bindings.len() * 48);
        out.push(POLICY_RECORD_V2);
        out.extend_from_slice(&len32(document.len())?.to_be_bytes());
        out.extend_from_slice(document);
        out.extend_from_slice(&len16(bindings.len())?.to_be_bytes());
        for (name, id) in bindings {
            for part in [name, id] {
                out.extend_from_slice(&len16(part.len())?.to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<PolicyRecord, PolicyRecordError> {
        match bytes.first() {
            None => Err(PolicyRecordError::Empty),
            Some(b'{' | b' ' | b'\t' | b'\n' | b'\r') => Ok(PolicyRecord {
                document: bytes.to_vec(),
                bindings: None,
            }),
            Some(&POLICY_RECORD_V2) => {
                let mut r = Reader(&bytes[1..]);
                let len = u32::from_be_bytes(r.array()?) as usize;
                let document = r.take(len)?.to_vec();
                let count = u16::from_be_bytes(r.array()?);
                let mut bindings = BTreeMap::new();
                for _ in 0..count {
                    let name = r.text()?;
                    let id = r.text()?;
                    bindings.insert(name, id);
                }
                if !r.0.is_empty() {
                    return Err(PolicyRecordError::TrailingBytes);
                }
                Ok(PolicyRecord {
                    document,
                    bindings: Some(bindings),
                })
            }
            Some(&other) => Err(PolicyRecordError::UnknownVersion(other)),
        }
    }

    /// The record's policy, parsed and bound as it was put (a v1 record by
    /// key name).
    pub(crate) fn policy(&self, bucket: &str) -> Result<Policy, PolicyError> {
        let policy = Policy::parse(&self.document, bucket)?;
        Ok(match &self.bindings {
            Some(ids) => policy.with_bindings(ids.clone()),
            None => policy.bound_by_name(),
        })
    }
}

/// Reads a record front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PolicyRecordError> {
        if self.0.len() < n {
            return Err(PolicyRecordError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PolicyRecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn text(&mut self) -> Result<String, PolicyRecordError> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| PolicyRecordError::InvalidUtf8)
    }
}

/// A bucket's policy as the cache holds it.
#[derive(Debug)]
pub(crate) enum StoredPolicy {
    None,
    Parsed(Arc<Policy>),
    /// Stored but not readable by this version: every caller but an admin
    /// is refused (fail closed) until an admin replaces it.
    Unreadable,
}

/// What authorization needs to know of one bucket.
#[derive(Debug)]
pub(crate) struct BucketAccess {
    pub(crate) policy: StoredPolicy,
    pub(crate) policy_is_public: bool,
    /// The bucket's own block (`None`: never set).
    pub(crate) block: Option<PublicAccessBlock>,
    /// The bucket's CORS rules (`None`: none, or unreadable — browsers are
    /// then refused, the safe side).
    pub(crate) cors: Option<Arc<crate::cors::CorsRules>>,
    /// The bucket's default encryption when it is `aws:kms`
    /// (`sse_kms::for_new_object`); `Err`: the stored document does not
    /// parse (writes that would take it are refused).
    pub(crate) kms_default: Result<Option<crate::sse_kms::KmsRequest>, String>,
}

impl BucketAccess {
    fn load(engine: &Engine, bucket: &str) -> Result<Self, EngineError> {
        let (policy, policy_is_public) = match engine
            .bucket_document(bucket, BucketDocument::Policy)?
        {
            None => (StoredPolicy::None, false),
            Some(raw) => {
                let parsed = PolicyRecord::decode(&raw)
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        if r.bindings.is_none() {
                            tracing::warn!(bucket, "bucket policy stored before key bindings: its named principals match any key of that name until the policy is put again");
                        }
                        r.policy(bucket).map_err(|e| e.to_string())
                    });
                match parsed {
                    Ok(p) => {
                        let public = p.is_public();
                        (StoredPolicy::Parsed(Arc::new(p)), public)
                    }
                    Err(e) => {
                        tracing::error!(bucket, error = %e, "stored bucket policy unreadable; only admin keys may use the bucket");
                        (StoredPolicy::Unreadable, true)
                    }
                }
            }
        };
        // An unreadable block counts as the strictest.
        let block = engine
            .bucket_document(bucket, BucketDocument::PublicAccessBlock)?
            .map(|doc| PublicAccessBlock::decode(&doc).unwrap_or(PublicAccessBlock::ALL));
        let cors = engine
            .bucket_document(bucket, BucketDocument::Cors)?
            .and_then(|doc| {
                let parsed = std::str::from_utf8(&doc)
                    .map_err(|e| e.to_string())
                    .and_then(|text| crate::cors::CorsRules::parse(text).map_err(|e| e.to_string()));
                match parsed {
                    Ok(rules) => Some(Arc::new(rules)),
                    Err(e) => {
                        tracing::error!(bucket, error = %e, "stored CORS rules unreadable; preflights are refused");
                        None
                    }
                }
            });
        let kms_default = match engine.bucket_document(bucket, BucketDocument::Encryption)? {
            None => Ok(None),
            Some(doc) => crate::sse_kms::parse_bucket_default(&doc).inspect_err(|e| {
                tracing::error!(bucket, error = %e, "stored default encryption unreadable; writes relying on it are refused");
            }),
        };
        Ok(BucketAccess {
            policy,
            policy_is_public,
            block,
            cors,
            kms_default,
        })
    }
}

/// The most buckets the cache holds; past it, it starts over (a miss costs
/// a few point reads, so a client naming endless buckets only slows itself).
const CACHE_BUCKETS_MAX: usize = 10_000;

/// Parsed policies, blocks, CORS rules and KMS defaults of the buckets
/// requests address, valid while the engine's bucket configuration epoch
/// is unchanged.
#[derive(Debug, Default)]
pub(crate) struct AccessCache {
    entries: RwLock<CacheEntries>,
    /// Held by PutBucketPolicy across its checks (is the policy public
    /// while public policies are blocked? which keys do its principals
    /// name?) and its store, and by PutPublicAccessBlock across its store:
    /// a block set meanwhile cannot slip between a policy's check and its
    /// store on this node.
    changes: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct CacheEntries {
    epoch: u64,
    buckets: HashMap<String, Arc<BucketAccess>>,
}

impl AccessCache {
    /// Serialises policy and public-access-block changes (see `changes`).
    /// Taken after the request body is read: a slow client never holds it.
    pub(crate) async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// The bucket's access facts; `None` when there is no such bucket.
    pub(crate) fn get(&self, engine: &Engine, bucket: &str) -> S3Result<Option<Arc<BucketAccess>>> {
        // Read before the data: a change applied after this read moves the
        // epoch, so what is loaded now is never kept past it.
        let epoch = engine.bucket_config_epoch();
        {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if entries.epoch == epoch
                && let Some(found) = entries.buckets.get(bucket)
            {
                return Ok(Some(found.clone()));
            }
        }
        let loaded = match BucketAccess::load(engine, bucket) {
            Ok(a) => Arc::new(a),
            Err(EngineError::NoSuchBucket) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.epoch != epoch {
            if epoch < entries.epoch {
                // Someone newer filled it meanwhile; serve ours uncached.
                return Ok(Some(loaded));
            }
            entries.buckets.clear();
            entries.epoch = epoch;
        }
        if entries.buckets.len() >= CACHE_BUCKETS_MAX {
            entries.buckets.clear();
        }
        entries.buckets.insert(bucket.to_owned(), loaded.clone());
        Ok(Some(loaded))
    }
}

/// One authorization question.
pub(crate) struct AccessRequest<'a> {
    pub(crate) op: Operation,
    /// The IAM action asked for (usually `op.s3_action(…)`).
    pub(crate) action: &'static str,
    pub(crate) bucket: Option<&'a str>,
    /// The object addressed, for object operations.
    pub(crate) key: Option<&'a str>,
    /// The version addressed (`versionId`), for `s3:versionid` and the
    /// existing object's tags.
    pub(crate) version: Option<&'a VersionRef>,
    pub(crate) caller: &'a Caller,
    pub(crate) client: ClientFacts,
    pub(crate) parts: &'a http::request::Parts,
    pub(crate) query: &'a Query,
    /// How the request was authenticated (`s3:authType`).
    pub(crate) auth_type: AuthType,
}

/// How a signed request was authenticated, as `s3:authType` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthType {
    /// `Authorization` header.
    Header,
    /// A presigned URL (`X-Amz-*` query parameters).
    QueryString,
    /// A POST form's signed policy.
    Post,
}

impl AuthType {
    pub(crate) fn of(presigned: bool) -> Self {
        if presigned {
            AuthType::QueryString
        } else {
            AuthType::Header
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AuthType::Header => "REST-HEADER",
            AuthType::QueryString => "REST-QUERY-STRING",
            AuthType::Post => "POST",
        }
    }
}

/// Answers the question; `Ok` means allowed.
pub(crate) fn authorize(svc: &ServiceInner, req: &AccessRequest<'_>) -> S3Result<()> {
    let required = req.op.required_access();
    let denied = || Err(S3Error::new(S3ErrorCode::AccessDenied));
    let bucket = match (required, req.bucket) {
        // ListBuckets: each key sees the buckets it has grants on.
        (RequiredAccess::Nothing, _) => {
            return match req.caller {
                Caller::Anonymous => denied(),
                Caller::Key { .. } => Ok(()),
            };
        }
        (_, Some(b)) => b,
        (_, None) => {
            return if req.caller.is_admin() {
                Ok(())
            } else {
                denied()
            };
        }
    };
    // Whether the key's own grants cover the request.
    let granted = match req.caller {
        Caller::Key { access, .. } => {
            let object_key = req.key.filter(|_| req.op.addresses_object());
            grant_covers(
                access,
                required,
                req.op,
                bucket,
                object_key,
                &req.parts.headers,
            )
        }
        Caller::Anonymous => false,
    };
    let facts = match svc.access_cache.get(&svc.engine, bucket)? {
        Some(f) => f,
        // No such bucket: admins and keys with a grant learn so from the
        // handler; nobody else learns whether it exists.
        None => return if granted { Ok(()) } else { denied() },
    };
    // DeleteObjects is judged per key (as `s3:DeleteObject` of each) by its
    // handler; the request itself only needs some chance of an allow.
    if req.op == Operation::DeleteObjects && req.key.is_none() {
        let may = match req.caller {
            Caller::Key { .. } if granted => true,
            _ => matches!(facts.policy, StoredPolicy::Parsed(_)),
        };
        return if may { Ok(()) } else { denied() };
    }
    let decision = match &facts.policy {
        StoredPolicy::None => Decision::NotApplicable,
        StoredPolicy::Unreadable => Decision::Deny,
        // These operations take retention, legal hold or tags from their
        // body, which is read after authorization: a condition on those
        // values would be judged on headers the handler ignores, so such a
        // policy refuses them (fail closed) instead of deciding blind.
        StoredPolicy::Parsed(policy) if judged_blind(req.op, policy) => Decision::Deny,
        StoredPolicy::Parsed(policy) => {
            let values = RequestValues::new(svc, req, bucket);
            let context = LazyContext::new(policy, |key| values.compute(key));
            let resource = resource_arn(bucket, req.key.filter(|_| req.op.addresses_object()));
            let evaluation = policy.evaluate_within(
                &PolicyRequest {
                    principal: req.caller.principal(),
                    action: req.action,
                    resource: &resource,
                    context: &context,
                },
                EVALUATION_STEPS_MAX,
            );
            // A value the evaluation needed and could not have refuses the
            // request, whatever was decided without it.
            if let Some(failure) = values.take_failure() {
                return Err(failure);
            }
            if evaluation.exhausted {
                // Refused (the decision is Deny): the request's values
                // made the policy's wildcards too costly.
                tracing::warn!(
                    bucket,
                    op = req.op.name(),
                    steps = evaluation.steps,
                    "bucket policy evaluation exceeded its bound; request refused"
                );
            }
            evaluation.decision
        }
    };
    let allowed = match req.caller {
        Caller::Key { access, .. } if access.admin => {
            decision != Decision::Deny || req.op.manages_policy()
        }
        _ if decision == Decision::Deny => false,
        _ if required == RequiredAccess::Admin => false,
        Caller::Key { .. } => granted || decision == Decision::Allow,
        // Policies name keys and address ranges: never shown to strangers.
        Caller::Anonymous if req.op.manages_policy() => false,
        Caller::Anonymous => {
            let block = svc
                .config
                .public_access_block_default
                .or(facts.block.unwrap_or_default());
            decision == Decision::Allow
                && !(block.restrict_public_buckets && facts.policy_is_public)
        }
    };
    if allowed { Ok(()) } else { denied() }
}

/// Whether `op` carries in its body what the policy's conditions read.
fn judged_blind(op: Operation, policy: &Policy) -> bool {
    match op {
        Operation::PutObjectRetention | Operation::PutObjectLegalHold => {
            policy.uses_condition_key("s3:object-lock-")
        }
        Operation::PutObjectTagging => policy.uses_condition_key("s3:RequestObjectTag"),
        _ => false,
    }
}

/// Whether the key's own grants cover the request: `key` is the object
/// it addresses (for object operations).
fn grant_covers(
    access: &KeyAccess,
    required: RequiredAccess,
    op: Operation,
    bucket: &str,
    key: Option<&str>,
    headers: &http::HeaderMap,
) -> bool {
    match required {
        RequiredAccess::Nothing => true,
        RequiredAccess::Read => access.can_read(bucket),
        RequiredAccess::Write => {
            access.can_write(bucket)
                || (creates_objects(op)
                    && key.is_some_and(|k| access.can_create(bucket, k))
                    && !sets_object_lock(headers))
        }
        RequiredAccess::Admin => access.admin,
    }
}

/// Whether a request asks for a retention or legal hold: a device key (a
/// prefix grant) may not lock what it writes (a stolen one could otherwise
/// fill a bucket with objects nobody may delete).
fn sets_object_lock(headers: &http::HeaderMap) -> bool {
    headers
        .keys()
        .any(|name| name.as_str().starts_with("x-amz-object-lock-"))
}

/// The operations a prefix grant (a device key) may run on keys under its
/// prefix: creating objects, in one request or as a multipart upload.
fn creates_objects(op: Operation) -> bool {
    matches!(
        op,
        Operation::PutObject
            | Operation::CreateMultipartUpload
            | Operation::UploadPart
            | Operation::CompleteMultipartUpload
            | Operation::AbortMultipartUpload
    )
}

/// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
pub(crate) fn resource_arn(bucket: &str, key: Option<&str>) -> String {
    let mut arn = String::with_capacity(13 + bucket.len() + key.map_or(0, |k| k.len() + 1));
    arn.push_str("arn:aws:s3:::");
    arn.push_str(bucket);
    if let Some(k) = key {
        arn.push('/');
        arn.push_str(k);
    }
    arn
}

/// Where the value of one (normalised) condition key comes from.
#[derive(Debug, PartialEq, Eq)]
enum KeySource<'k> {
    /// Known from the request itself (`None`: the request has none).
    Value(Option<String>),
    /// A tag of the addressed object (version) as stored.
    ExistingTag(&'k str),
    /// A tag the operation will set on the object.
    RequestTag(&'k str),
    /// The keys of the tags the operation will set.
    RequestTagKeys,
    /// The KMS key the request names, as its canonical ARN (an id, an
    /// alias or another ARN form of the same key is the same key).
    KmsKeyArn(Option<String>),
    /// Not a key this server supplies. The policy parser refuses every key
    /// outside `cairn_policy::SUPPORTED_CONDITION_KEYS`, and a test checks
    /// that each of those has a source here; reaching this refuses the
    /// request.
    Unsupported,
}

/// The one place that says what each condition key is for a request
/// (docs/security.md lists them). `key` is normalised: lowercase up to a
/// `/`.
fn key_source<'k>(key: &'k str, req: &AccessRequest<'_>) -> KeySource<'k> {
    let header =
        |name: &str| crate::headers::header_str(&req.parts.headers, name).map(str::to_owned);
    let key_caller = |f: &dyn Fn(&str, &str) -> String| match req.caller {
        Caller::Key { id, name, .. } => Some(f(id.as_str(), name.as_str())),
        Caller::Anonymous => None,
    };
    let copies = matches!(req.op, Operation::CopyObject | Operation::UploadPartCopy);
    let value = match key {
        "aws:currenttime" => Some(iso8601(SystemTime::now())),
        "aws:epochtime" => Some(epoch_secs().to_string()),
        "aws:securetransport" => Some(req.client.secure.to_string()),
        // Canonical: an IPv4 client of a dual-stack listener is IPv4.
        "aws:sourceip" => req.client.ip.map(|ip| ip.to_canonical().to_string()),
        "aws:principaltype" => Some(
            match req.caller {
                Caller::Anonymous => "Anonymous",
                Caller::Key { .. } => "User",
            }
            .to_owned(),
        ),
        "aws:username" => key_caller(&|_, name| name.to_owned()),
        "aws:userid" => key_caller(&|id, _| id.to_owned()),
        "aws:principalarn" => {
            key_caller(&|_, name| format!("{}{name}", cairn_policy::USER_ARN_PREFIX))
        }
        "s3:signatureversion" => key_caller(&|_, _| "AWS4-HMAC-SHA256".to_owned()),
        "s3:authtype" => key_caller(&|_, _| req.auth_type.as_str().to_owned()),
        "aws:referer" => header("referer"),
        "aws:useragent" => header("user-agent"),
        "s3:x-amz-server-side-encryption-aws-kms-key-id" => {
            return KeySource::KmsKeyArn(header(&key[3..]));
        }
        "s3:x-amz-acl"
        | "s3:x-amz-server-side-encryption"
        | "s3:x-amz-content-sha256"
        | "s3:x-amz-storage-class" => header(&key[3..]),
        // As the copy handlers parse it: `bucket/key`, URL-decoded, no
        // leading `/`, no `?versionId=` (S3's form, e.g.
        // `amzn-s3-demo-bucket/public/*`). Only copies read it.
        "s3:x-amz-copy-source" if copies => header("x-amz-copy-source")
            .and_then(|raw| crate::handlers::parse_copy_source(&raw).ok())
            .map(|src| format!("{}/{}", src.bucket, src.key)),
        "s3:x-amz-copy-source" => None,
        // As sent, in the case the handler reads it (it takes `replace` as
        // REPLACE); only CopyObject reads it.
        "s3:x-amz-metadata-directive" if req.op == Operation::CopyObject => {
            header("x-amz-metadata-directive").map(|d| match copy_directive(Some(&d)) {
                Some(true) => "REPLACE".to_owned(),
                Some(false) => "COPY".to_owned(),
                None => d,
            })
        }
        "s3:x-amz-metadata-directive" => None,
        "s3:object-lock-mode" => header("x-amz-object-lock-mode"),
        "s3:object-lock-retain-until-date" => header("x-amz-object-lock-retain-until-date"),
        "s3:object-lock-legal-hold" => header("x-amz-object-lock-legal-hold"),
        "s3:object-lock-remaining-retention-days" => header("x-amz-object-lock-retain-until-date")
            .and_then(|v| {
                time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|until| {
                let secs = until.unix_timestamp() - epoch_secs() as i64;
                (secs.max(0) / 86_400).to_string()
            }),
        "s3:prefix" | "s3:delimiter" | "s3:max-keys" => {
            if matches!(
                req.op,
                Operation::ListObjects | Operation::ListObjectsV2 | Operation::ListObjectVersions
            ) {
                req.query.get(&key[3..]).map(str::to_owned)
            } else {
                None
            }
        }
        "s3:versionid" => req.version.map(|v| v.to_string()),
        "s3:requestobjecttagkeys" => return KeySource::RequestTagKeys,
        other => {
            return if let Some(tag) = other.strip_prefix("s3:requestobjecttag/") {
                KeySource::RequestTag(tag)
            } else if let Some(tag) = other.strip_prefix("s3:existingobjecttag/") {
                KeySource::ExistingTag(tag)
            } else {
                KeySource::Unsupported
            };
        }
    };
    KeySource::Value(value)
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `x-amz-metadata-directive` / `x-amz-tagging-directive` as CopyObject's
/// handler reads them (handlers/object.rs `directive`): `Some(true)`
/// REPLACE, `Some(false)` COPY (also when absent), `None` a value it
/// refuses.
fn copy_directive(value: Option<&str>) -> Option<bool> {
    match value {
        None => Some(false),
        Some(d) if d.eq_ignore_ascii_case("COPY") => Some(false),
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => Some(true),
        Some(_) => None,
    }
}

/// Where the tags an operation sets come from, as its handler takes them.
#[derive(Debug, PartialEq, Eq)]
enum TagSource {
    /// From the request (`x-amz-tagging`), or none at all.
    Given(Vec<(String, String)>),
    /// CopyObject without `x-amz-tagging-directive: REPLACE`: the source
    /// version's tags (an `x-amz-tagging` header is ignored).
    Copied(crate::handlers::CopySource),
}

fn request_tag_source(req: &AccessRequest<'_>) -> TagSource {
    // Invalid tags: the handler refuses the request; nothing is set.
    let from_header = || crate::headers::request_tags(&req.parts.headers).unwrap_or_default();
    match req.op {
        Operation::PutObject | Operation::CreateMultipartUpload => TagSource::Given(from_header()),
        Operation::CopyObject => {
            let directive =
                crate::headers::header_str(&req.parts.headers, "x-amz-tagging-directive");
            match copy_directive(directive) {
                Some(true) => TagSource::Given(from_header()),
                Some(false) => {
                    match crate::headers::header_str(&req.parts.headers, "x-amz-copy-source")
                        .map(crate::handlers::parse_copy_source)
                    {
                        Some(Ok(src)) => TagSource::Copied(src),
                        // No valid source: the handler refuses the request.
                        _ => TagSource::Given(Vec::new()),
                    }
                }
                None => TagSource::Given(Vec::new()),
            }
        }
        // Every other operation ignores `x-amz-tagging` (PutObjectTagging
        // takes its tags from its body: see `judged_blind`).
        _ => TagSource::Given(Vec::new()),
    }
}

/// The tags of a version read for a condition: none when there is no such
/// bucket, object or version (or it is a delete marker; the handler then
/// answers for it); any other failure refuses the request with that error
/// — an unreadable object is not an untagged one, and a `Deny` on its tags
/// must not be skipped.
fn tags_of(read: Result<ObjectVersion, EngineError>) -> S3Result<Vec<(String, String)>> {
    match read {
        Ok(v) => Ok(v.meta.tags),
        Err(
            EngineError::NoSuchKey
            | EngineError::NoSuchVersion
            | EngineError::NoSuchBucket
            | EngineError::DeleteMarker { .. },
        ) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The condition values this request offers a policy, each computed the
/// first time the evaluation reads it (`LazyContext`): a policy about
/// source addresses costs an address, not a clock, a date format and
/// twenty header lookups, and a statement whose action or resource does
/// not match costs none of its conditions' keys. Built only for buckets
/// with a policy. An object's tags are read once, and only for a key that
/// needs them. A value that cannot be computed (tags that cannot be read,
/// a key without a source) is kept as the request's failure: the request
/// is refused with it whatever the policy decided.
struct RequestValues<'r, 'a> {
    svc: &'r ServiceInner,
    req: &'r AccessRequest<'a>,
    bucket: &'r str,
    existing_tags: std::cell::OnceCell<Vec<(String, String)>>,
    requested_tags: std::cell::OnceCell<Vec<(String, String)>>,
    failure: std::cell::RefCell<Option<S3Error>>,
}

impl<'r, 'a> RequestValues<'r, 'a> {
    fn new(svc: &'r ServiceInner, req: &'r AccessRequest<'a>, bucket: &'r str) -> Self {
        RequestValues {
            svc,
            req,
            bucket,
            existing_tags: Default::default(),
            requested_tags: Default::default(),
            failure: Default::default(),
        }
    }

    /// The values of one normalised key (`None`: absent, or failed — see
    /// [`RequestValues::take_failure`]).
    fn compute(&self, key: &str) -> Option<Vec<String>> {
        match self.try_compute(key) {
            Ok(values) => values,
            Err(e) => {
                self.failure.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    /// The first failure of [`RequestValues::compute`], if any.
    fn take_failure(&self) -> Option<S3Error> {
        self.failure.borrow_mut().take()
    }

    fn try_compute(&self, key: &str) -> S3Result<Option<Vec<String>>> {
        let (svc, req, bucket) = (self.svc, self.req, self.bucket);
        let (tags, tag) = match key_source(key, req) {
            KeySource::Value(v) => return Ok(v.map(|v| vec![v])),
            KeySource::KmsKeyArn(None) => return Ok(None),
            KeySource::KmsKeyArn(Some(reference)) => {
                // A reference that names no key stays as sent (the write
                // then fails: nothing is encrypted under it).
                let arn = crate::sse_kms::canonical_arn(svc, &reference)?.unwrap_or(reference);
                return Ok(Some(vec![arn]));
            }
            KeySource::Unsupported => {
                tracing::error!(bucket, key = %key, "a bucket policy reads a condition key this server has no value for; request refused");
                return Err(S3Error::new(S3ErrorCode::AccessDenied));
            }
            KeySource::ExistingTag(tag) => {
                let tags = once_or_try(&self.existing_tags, || {
                    match req.key.filter(|_| req.op.addresses_object()) {
                        Some(k) => tags_of(svc.engine.head_version(bucket, k, req.version)),
                        None => Ok(Vec::new()),
                    }
                })?;
                (tags, Some(tag))
            }
            source @ (KeySource::RequestTag(_) | KeySource::RequestTagKeys) => {
                let tags = once_or_try(&self.requested_tags, || match request_tag_source(req) {
                    TagSource::Given(tags) => Ok(tags),
                    TagSource::Copied(src) => tags_of(svc.engine.head_version(
                        &src.bucket,
                        &src.key,
                        src.version.as_ref(),
                    )),
                })?;
                let tag = match source {
                    KeySource::RequestTag(tag) => Some(tag),
                    _ => None,
                };
                (tags, tag)
            }
        };
        Ok(match tag {
            Some(tag) => tags
                .iter()
                .find(|(k, _)| k == tag)
                .map(|(_, v)| vec![v.clone()]),
            // The tag keys; absent when there are none.
            None => Some(tags.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                .filter(|keys| !keys.is_empty()),
        })
    }
}

/// The value in `cell`, or `init`'s, kept there when it succeeds.
fn once_or_try<T>(
    cell: &std::cell::OnceCell<T>,
    init: impl FnOnce() -> S3Result<T>,
) -> S3Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = init()?;
    Ok(cell.get_or_init(|| v))
}

/// `2026-12-05T08:00:00Z`.
fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_access_block_round_trips_and_refuses_unknown_forms() {
        for flags in 0u8..16 {
            let b = PublicAccessBlock {
                block_public_acls: flags & 1 != 0,
                ignore_public_acls: flags & 2 != 0,
                block_public_policy: flags & 4 != 0,
                restrict_public_buckets: flags & 8 != 0,
            };
            assert_eq!(PublicAccessBlock::decode(&b.encode()), Some(b));
        }
        assert_eq!(PublicAccessBlock::decode(&[1, 16]), None);
        assert_eq!(PublicAccessBlock::decode(&[2, 0]), None);
        assert_eq!(PublicAccessBlock::decode(&[1]), None);
        assert_eq!(
            PublicAccessBlock::default().or(PublicAccessBlock::ALL),
            PublicAccessBlock::ALL
        );
    }

    #[test]
    fn resources_and_times() {
        assert_eq!(resource_arn("b", None), "arn:aws:s3:::b");
        assert_eq!(resource_arn("b", Some("a/c d")), "arn:aws:s3:::b/a/c d");
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    /// One request as authorization sees it, for `key_source`.
    struct Asked {
        parts: http::request::Parts,
        query: Query,
        caller: Caller,
        version: Option<VersionRef>,
    }

    impl Asked {
        fn new(uri: &str, headers: &[(&str, &str)]) -> Asked {
            let mut b = http::Request::builder().uri(uri);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            let parts = b.body(()).unwrap().into_parts().0;
            let query = Query::parse(parts.uri.query());
            Asked {
                parts,
                query,
                caller: Caller::Key {
                    id: "AKALICE".into(),
                    name: "alice".into(),
                    access: Arc::new(KeyAccess {
                        expires_ms: None,
                        admin: false,
                        grants: Vec::new(),
                    }),
                },
                version: None,
            }
        }

        fn request(&self, op: Operation) -> AccessRequest<'_> {
            AccessRequest {
                op,
                action: op.s3_action(false).unwrap_or(""),
                bucket: Some("b"),
                key: Some("k"),
                version: self.version.as_ref(),
                caller: &self.caller,
                client: ClientFacts {
                    ip: Some("::ffff:10.1.2.3".parse().unwrap()),
                    secure: false,
                },
                parts: &self.parts,
                query: &self.query,
                auth_type: AuthType::Header,
            }
        }
    }

    fn value(key: &str, req: &AccessRequest<'_>) -> Option<String> {
        match key_source(key, req) {
            KeySource::Value(v) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    /// The policy crate's list of keys (what a policy may name) and
    /// `key_source`'s match (what a request offers) cannot drift apart: a
    /// key the parser accepts but nothing supplies would never be present.
    #[test]
    fn every_supported_condition_key_has_a_source() {
        let asked = Asked::new("/b/k", &[]);
        for op in [
            Operation::GetObject,
            Operation::PutObject,
            Operation::CopyObject,
            Operation::ListObjectsV2,
        ] {
            let req = asked.request(op);
            let tagged = cairn_policy::SUPPORTED_CONDITION_KEY_PREFIXES
                .iter()
                .map(|prefix| format!("{prefix}Project"));
            for key in cairn_policy::SUPPORTED_CONDITION_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .chain(tagged)
            {
                assert!(cairn_policy::is_supported_condition_key(&key));
                assert_ne!(
                    key_source(&key, &req),
                    KeySource::Unsupported,
                    "{key} has no source in key_source"
                );
            }
            for unsupported in ["aws:sourcevpce", "s3:x-amz-grant-read", "ec2:region"] {
                assert!(!cairn_policy::is_supported_condition_key(unsupported));
                assert_eq!(key_source(unsupported, &req), KeySource::Unsupported);
            }
        }
        // The source address is canonical: a dual-stack listener's
        // `::ffff:10.1.2.3` is 10.1.2.3.
        assert_eq!(
            value("aws:sourceip", &asked.request(Operation::GetObject)).as_deref(),
            Some("10.1.2.3")
        );
    }

    /// Regression (attacker review): `s3:x-amz-copy-source` and
    /// `s3:x-amz-metadata-directive` were the raw headers, so a Deny on
    /// `bucket/private/*` missed `/bucket/private%2Fx`, and a lowercase
    /// `replace` (which the handler takes) missed a Deny on `REPLACE`.
    #[test]
    fn copy_condition_values_are_what_the_copy_handler_reads() {
        let copy = Asked::new(
            "/b/k",
            &[
                (
                    "x-amz-copy-source",
                    "/src/private%2Fa%20b.txt?versionId=null",
                ),
                ("x-amz-metadata-directive", "replace"),
            ],
        );
        let req = copy.request(Operation::CopyObject);
        assert_eq!(
            value("s3:x-amz-copy-source", &req).as_deref(),
            Some("src/private/a b.txt")
        );
        assert_eq!(
            value("s3:x-amz-metadata-directive", &req).as_deref(),
            Some("REPLACE")
        );
        let part = copy.request(Operation::UploadPartCopy);
        assert_eq!(
            value("s3:x-amz-copy-source", &part).as_deref(),
            Some("src/private/a b.txt")
        );
        assert_eq!(value("s3:x-amz-metadata-directive", &part), None);
        // Operations that ignore the headers offer nothing.
        let get = copy.request(Operation::GetObject);
        assert_eq!(value("s3:x-amz-copy-source", &get), None);
        assert_eq!(value("s3:x-amz-metadata-directive", &get), None);
        // Absent: absent (as S3); invalid: as sent (the handler refuses).
        let plain = Asked::new("/b/k", &[("x-amz-copy-source", "src/x")]);
        let req = plain.request(Operation::CopyObject);
        assert_eq!(
            value("s3:x-amz-copy-source", &req).as_deref(),
            Some("src/x")
        );
        assert_eq!(value("s3:x-amz-metadata-directive", &req), None);
        let odd = Asked::new(
            "/b/k",
            &[
                ("x-amz-copy-source", "no-key"),
                ("x-amz-metadata-directive", "MERGE"),
            ],
        );
        let req = odd.request(Operation::CopyObject);
        assert_eq!(value("s3:x-amz-copy-source", &req), None);
        assert_eq!(
            value("s3:x-amz-metadata-directive", &req).as_deref(),
            Some("MERGE")
        );
    }

    /// Regression (attacker review): a CopyObject that copies the source's
    /// tags (`x-amz-tagging-directive` COPY, the default) was judged on an
    /// `x-amz-tagging` header the handler ignores.
    #[test]
    fn request_tags_are_the_tags_the_handler_sets() {
        let tags = |pairs: &[(&str, &str)]| {
            TagSource::Given(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        let header = [("x-amz-tagging", "team=a%20b&x=1")];
        let put = Asked::new("/b/k", &header);
        for op in [Operation::PutObject, Operation::CreateMultipartUpload] {
            assert_eq!(
                request_tag_source(&put.request(op)),
                tags(&[("team", "a b"), ("x", "1")])
            );
        }
        for op in [
            Operation::GetObject,
            Operation::UploadPart,
            Operation::DeleteObject,
        ] {
            assert_eq!(request_tag_source(&put.request(op)), tags(&[]), "{op:?}");
        }
        // Invalid tags: the handler refuses the request and sets none.
        let bad = Asked::new("/b/k", &[("x-amz-tagging", "k=1&k=2")]);
        assert_eq!(
            request_tag_source(&bad.request(Operation::PutObject)),
            tags(&[])
        );
        // CopyObject: the source's tags unless REPLACE.
        for directive in [None, Some("COPY"), Some("copy")] {
            let mut h = vec![
                ("x-amz-copy-source", "/src/dir%2Fobj?versionId=null"),
                ("x-amz-tagging", "classification=public"),
            ];
            if let Some(d) = directive {
                h.push(("x-amz-tagging-directive", d));
            }
            let copy = Asked::new("/b/k", &h);
            match request_tag_source(&copy.request(Operation::CopyObject)) {
                TagSource::Copied(src) => {
                    assert_eq!((src.bucket.as_str(), src.key.as_str()), ("src", "dir/obj"));
                    assert!(src.version.is_some());
                }
                other => panic!("{directive:?}: {other:?}"),
            }
        }
        let replace = Asked::new(
            "/b/k",
            &[
                ("x-amz-copy-source", "src/obj"),
                ("x-amz-tagging-directive", "REPLACE"),
                ("x-amz-tagging", "classification=public"),
            ],
        );
        assert_eq!(
            request_tag_source(&replace.request(Operation::CopyObject)),
            tags(&[("classification", "public")])
        );
    }

    /// Regression (attacker review): an engine error reading the object's
    /// tags read as "no tags", so a Deny on `s3:ExistingObjectTag/…` did not
    /// fire. Only a missing bucket, object or version has no tags; the same
    /// holds for a copy source's tags (`s3:RequestObjectTag/…` of a copy).
    #[test]
    fn an_unreadable_object_refuses_instead_of_having_no_tags() {
        for missing in [
            EngineError::NoSuchKey,
            EngineError::NoSuchVersion,
            EngineError::NoSuchBucket,
            EngineError::DeleteMarker {
                version_id: "v".into(),
                last_modified_ms: 0,
                named: false,
            },
        ] {
            assert_eq!(tags_of(Err(missing)).unwrap(), Vec::new());
        }
        let e = tags_of(Err(EngineError::Corrupt("metadata".into()))).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InternalError);
        let e = tags_of(Err(EngineError::Unavailable("no quorum".into()))).unwrap_err();
        assert_ne!(e.code, S3ErrorCode::AccessDenied, "a key may retry");
    }

    #[test]
    fn policy_records_round_trip_and_old_records_still_load() {
        let doc = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let ids: BTreeMap<String, String> = [("alice".to_owned(), "AKALICE".to_owned())]
            .into_iter()
            .collect();
        let encoded = PolicyRecord::encode(doc, &ids).unwrap();
        assert_eq!(encoded[0], POLICY_RECORD_V2);
        let record = PolicyRecord::decode(&encoded).unwrap();
        assert_eq!(record.document, doc);
        assert_eq!(record.bindings.as_ref(), Some(&ids));
        let decide = |p: &Policy, id: &str| {
            p.evaluate(&PolicyRequest {
                principal: Principal::User { id, name: "alice" },
                action: "s3:GetObject",
                resource: "arn:aws:s3:::b/x",
                context: &cairn_policy::Context::new(),
            })
        };
        let bound = record.policy("b").unwrap();
        assert_eq!(decide(&bound, "AKALICE"), Decision::Allow);
        assert_eq!(decide(&bound, "AKOTHER"), Decision::NotApplicable);
        // A record of the previous format (the JSON as PUT, with or
        // without leading whitespace) loads, matching by name as before.
        for old in [doc.to_vec(), [b"\n  ".as_slice(), doc.as_slice()].concat()] {
            let record = PolicyRecord::decode(&old).unwrap();
            assert_eq!(
                (record.document.as_slice(), record.bindings.as_ref()),
                (old.as_slice(), None)
            );
            let by_name = record.policy("b").unwrap();
            assert_eq!(decide(&by_name, "AKOTHER"), Decision::Allow);
        }
        // Damaged or unknown records are errors (the bucket fails closed).
        assert_eq!(PolicyRecord::decode(&[]), Err(PolicyRecordError::Empty));
        assert_eq!(
            PolicyRecord::decode(&[3, 0]),
            Err(PolicyRecordError::UnknownVersion(3))
        );
        assert_eq!(
            PolicyRecord::decode(&encoded[..encoded.len() - 1]),
            Err(PolicyRecordError::Truncated)
        );
        assert_eq!(
            PolicyRecord::decode(&[encoded.as_slice(), &[0u8]].concat()),
            Err(PolicyRecordError::TrailingBytes)
        );
        let empty = PolicyRecord::encode(doc, &BTreeMap::new()).unwrap();
        assert_eq!(
            PolicyRecord::decode(&empty).unwrap().bindings,
            Some(BTreeMap::new())
        );
    }
}
