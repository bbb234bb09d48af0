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
//! keyed by the engine's bucket configuration epoch).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use cairn_policy::{Context, Decision, Policy, Principal, Request as PolicyRequest};
use cairn_storage_engine::{BucketDocument, Engine, EngineError, VersionRef};

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
            Caller::Key { name, .. } => Principal::User { name },
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
}

impl BucketAccess {
    fn load(engine: &Engine, bucket: &str) -> Result<Self, EngineError> {
        let (policy, policy_is_public) = match engine
            .bucket_document(bucket, BucketDocument::Policy)?
        {
            None => (StoredPolicy::None, false),
            Some(doc) => match Policy::parse(&doc, bucket) {
                Ok(p) => {
                    let public = p.is_public();
                    (StoredPolicy::Parsed(Arc::new(p)), public)
                }
                Err(e) => {
                    tracing::error!(bucket, error = %e, "stored bucket policy unreadable; only admin keys may use the bucket");
                    (StoredPolicy::Unreadable, true)
                }
            },
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
        Ok(BucketAccess {
            policy,
            policy_is_public,
            block,
            cors,
        })
    }
}

/// The most buckets the cache holds; past it, it starts over (a miss costs
/// a few point reads, so a client naming endless buckets only slows itself).
const CACHE_BUCKETS_MAX: usize = 10_000;

/// Parsed policies and blocks of the buckets requests address, valid while
/// the engine's bucket configuration epoch is unchanged.
#[derive(Debug, Default)]
pub(crate) struct AccessCache {
    entries: RwLock<CacheEntries>,
}

#[derive(Debug, Default)]
struct CacheEntries {
    epoch: u64,
    buckets: HashMap<String, Arc<BucketAccess>>,
}

impl AccessCache {
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
    /// Whether the request was authenticated by a presigned URL.
    pub(crate) presigned: bool,
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
    let facts = match svc.access_cache.get(&svc.engine, bucket)? {
        Some(f) => f,
        // No such bucket: admins and keys with a grant learn so from the
        // handler; nobody else learns whether it exists.
        None => {
            return match req.caller {
                Caller::Key { access, .. } if grant_covers(access, required, bucket) => Ok(()),
                _ => denied(),
            };
        }
    };
    // DeleteObjects is judged per key (as `s3:DeleteObject` of each) by its
    // handler; the request itself only needs some chance of an allow.
    if req.op == Operation::DeleteObjects && req.key.is_none() {
        let may = match req.caller {
            Caller::Key { access, .. } if grant_covers(access, required, bucket) => true,
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
            let context = condition_context(svc, req, policy, bucket)?;
            let resource = resource_arn(bucket, req.key.filter(|_| req.op.addresses_object()));
            policy.evaluate(&PolicyRequest {
                principal: req.caller.principal(),
                action: req.action,
                resource: &resource,
                context: &context,
            })
        }
    };
    let allowed = match req.caller {
        Caller::Key { access, .. } if access.admin => {
            decision != Decision::Deny || req.op.manages_policy()
        }
        _ if decision == Decision::Deny => false,
        _ if required == RequiredAccess::Admin => false,
        Caller::Key { access, .. } => {
            grant_covers(access, required, bucket) || decision == Decision::Allow
        }
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

fn grant_covers(access: &KeyAccess, required: RequiredAccess, bucket: &str) -> bool {
    match required {
        RequiredAccess::Nothing => true,
        RequiredAccess::Read => access.can_read(bucket),
        RequiredAccess::Write => access.can_write(bucket),
        RequiredAccess::Admin => access.admin,
    }
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

/// The condition keys this request offers (docs/security.md lists them),
/// computed for exactly the keys the policy reads: a policy about source
/// addresses costs an address, not a clock, a date format and twenty
/// header lookups. Built only for buckets with a policy.
fn condition_context(
    svc: &ServiceInner,
    req: &AccessRequest<'_>,
    policy: &Policy,
    bucket: &str,
) -> S3Result<Context> {
    let mut c = Context::new();
    let header = |name: &str| crate::headers::header_str(&req.parts.headers, name);
    let epoch_secs = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    // The addressed object's (version's) tags, read once; an object that
    // is not there has none, but a read that fails refuses the request
    // (a Deny conditioned on a tag must never be skipped for it).
    let mut existing_tags: Option<Vec<(String, String)>> = None;
    let mut tags_failed: Option<EngineError> = None;
    for key in policy.condition_keys() {
        // Keys arrive normalised: lowercase up to a `/`.
        let value: Option<String> = match key.as_str() {
            "aws:currenttime" => Some(iso8601(SystemTime::now())),
            "aws:epochtime" => Some(epoch_secs().to_string()),
            "aws:securetransport" => Some(req.client.secure.to_string()),
            "aws:sourceip" => req.client.ip.map(|ip| ip.to_string()),
            "aws:principaltype" => Some(
                match req.caller {
                    Caller::Anonymous => "Anonymous",
                    Caller::Key { .. } => "User",
                }
                .to_owned(),
            ),
            "aws:username" => match req.caller {
                Caller::Key { name, .. } => Some(name.clone()),
                Caller::Anonymous => None,
            },
            "aws:userid" => match req.caller {
                Caller::Key { id, .. } => Some(id.clone()),
                Caller::Anonymous => None,
            },
            "aws:principalarn" => match req.caller {
                Caller::Key { name, .. } => {
                    Some(format!("{}{name}", cairn_policy::USER_ARN_PREFIX))
                }
                Caller::Anonymous => None,
            },
            "s3:signatureversion" => match req.caller {
                Caller::Key { .. } => Some("AWS4-HMAC-SHA256".to_owned()),
                Caller::Anonymous => None,
            },
            "s3:authtype" => match req.caller {
                Caller::Key { .. } => Some(
                    if req.presigned {
                        "REST-QUERY-STRING"
                    } else {
                        "REST-HEADER"
                    }
                    .to_owned(),
                ),
                Caller::Anonymous => None,
            },
            "aws:referer" => header("referer").map(str::to_owned),
            "aws:useragent" => header("user-agent").map(str::to_owned),
            "s3:x-amz-acl"
            | "s3:x-amz-server-side-encryption"
            | "s3:x-amz-server-side-encryption-aws-kms-key-id"
            | "s3:x-amz-copy-source"
            | "s3:x-amz-metadata-directive"
            | "s3:x-amz-content-sha256"
            | "s3:x-amz-storage-class" => header(&key[3..]).map(str::to_owned),
            "s3:object-lock-mode" => header("x-amz-object-lock-mode").map(str::to_owned),
            "s3:object-lock-retain-until-date" => {
                header("x-amz-object-lock-retain-until-date").map(str::to_owned)
            }
            "s3:object-lock-legal-hold" => {
                header("x-amz-object-lock-legal-hold").map(str::to_owned)
            }
            "s3:object-lock-remaining-retention-days" => {
                header("x-amz-object-lock-retain-until-date")
                    .and_then(|v| {
                        time::OffsetDateTime::parse(
                            v,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .map(|until| {
                        let secs = until.unix_timestamp() - epoch_secs() as i64;
                        (secs.max(0) / 86_400).to_string()
                    })
            }
            "s3:prefix" | "s3:delimiter" | "s3:max-keys"
                if matches!(
                    req.op,
                    Operation::ListObjects
                        | Operation::ListObjectsV2
                        | Operation::ListObjectVersions
                ) =>
            {
                req.query.get(&key[3..]).map(str::to_owned)
            }
            "s3:versionid" => req.version.map(|v| v.to_string()),
            "s3:requestobjecttagkeys" => {
                for (k, _) in header("x-amz-tagging").map(url_pairs).unwrap_or_default() {
                    c.add(key, k);
                }
                None
            }
            other => {
                if let Some(tag) = other.strip_prefix("s3:requestobjecttag/") {
                    header("x-amz-tagging")
                        .map(url_pairs)
                        .unwrap_or_default()
                        .into_iter()
                        .find(|(k, _)| k == tag)
                        .map(|(_, v)| v)
                } else if let Some(tag) = other.strip_prefix("s3:existingobjecttag/") {
                    let tags = existing_tags.get_or_insert_with(|| {
                        match req.key.filter(|_| req.op.addresses_object()) {
                            Some(k) => match svc.engine.head_version(bucket, k, req.version) {
                                Ok(v) => v.meta.tags,
                                Err(
                                    EngineError::NoSuchKey
                                    | EngineError::NoSuchVersion
                                    | EngineError::NoSuchBucket
                                    | EngineError::DeleteMarker { .. },
                                ) => Vec::new(),
                                Err(e) => {
                                    tags_failed = Some(e);
                                    Vec::new()
                                }
                            },
                            None => Vec::new(),
                        }
                    });
                    tags.iter().find(|(k, _)| k == tag).map(|(_, v)| v.clone())
                } else {
                    None
                }
            }
        };
        if let Some(v) = value {
            c.set(key, v);
        }
    }
    if let Some(e) = tags_failed {
        return Err(e.into());
    }
    Ok(c)
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

/// `a=1&b=2` (URL-encoded) as decoded pairs.
fn url_pairs(s: &str) -> Vec<(String, String)> {
    let decode = |v: &str| {
        percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
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
    fn resources_and_tag_pairs() {
        assert_eq!(resource_arn("b", None), "arn:aws:s3:::b");
        assert_eq!(resource_arn("b", Some("a/c d")), "arn:aws:s3:::b/a/c d");
        assert_eq!(
            url_pairs("k1=v%201&k2=a+b&k3"),
            vec![
                ("k1".into(), "v 1".into()),
                ("k2".into(), "a b".into()),
                ("k3".into(), String::new())
            ]
        );
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
