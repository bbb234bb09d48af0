//! Bucket policies: the IAM policy language as S3 uses it — parsing and
//! validating a document ([`Policy::parse`], with S3's `MalformedPolicy`
//! messages), deciding one request ([`Policy::evaluate`]) and telling
//! whether a policy is public ([`Policy::is_public`], S3 Block Public
//! Access's "The meaning of public").
//!
//! Owns the language only: who the caller is, which action and resource a
//! request is and the condition values it offers come from the server
//! ([`Request`], [`Context`]); how a decision combines with a key's own
//! grants is the server's too.
//!
//! Must never: do I/O; accept a document it would evaluate differently
//! from what it says (an unknown element, operator, principal form,
//! condition key or policy variable is an error, not ignored — a key the
//! server never supplies would make a `Deny` that names it never fire);
//! take more than [`EVALUATION_STEPS_MAX`] steps to decide one request
//! (wildcards can cost pattern × text; past the bound the decision is
//! `Deny`); allow a request a matching `Deny` covers.
//!
//! Principals name Cairn's access keys as `arn:aws:iam:::user/<key name>`,
//! or everyone (anonymous callers included) as `"*"` / `{"AWS": "*"}`. Key
//! names can be reused, so a named principal matches a caller only through
//! a binding to the key's immutable id made when the policy was put
//! ([`Policy::bind`], [`Policy::with_bindings`]); an unbound policy matches
//! no named principal.

#![forbid(unsafe_code)]

mod condition;
mod glob;

use std::collections::BTreeMap;

use serde::Deserialize;

use condition::{Compare, Condition, SetMode, Value, parse_operator, parse_value};
use glob::{Budget, Pattern};

/// What principals name keys by.
pub const USER_ARN_PREFIX: &str = "arn:aws:iam:::user/";

/// S3's limit on a bucket policy, counted without insignificant
/// whitespace (as S3 counts it).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The most bytes of a document read at all (whitespace included).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

const RESOURCE_PREFIX: &str = "arn:aws:s3:::";

/// The most steps (characters of text a wildcard match examines or skips,
/// comparisons, resolved variable bytes) one evaluation takes. A request
/// with ordinary values against any valid policy takes a few thousand (a
/// 20-statement policy: under 500, see `print_evaluation_cost`); a request
/// whose values are built against the policy's wildcards (`*aaaa…b` and an
/// 8 KiB header of `a`s) could take billions. Past the bound the request is
/// refused as by an explicit `Deny` (fail closed): only the request that
/// brought the costly values is refused, in about a millisecond.
pub const EVALUATION_STEPS_MAX: u64 = 1 << 22;

/// Every S3 action name a policy may use (AWS's "Actions, resources, and
/// condition keys for Amazon S3", object and bucket actions).
pub const S3_ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:BypassGovernanceRetention",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:DeleteBucketOwnershipControls",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucketWebsite",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionTagging",
    "s3:GetAccelerateConfiguration",
    "s3:GetAnalyticsConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectLegalHold",
    "s3:GetObjectRetention",
    "s3:GetObjectTagging",
    "s3:GetObjectTorrent",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectVersionTorrent",
    "s3:GetReplicationConfiguration",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:PutAccelerateConfiguration",
    "s3:PutAnalyticsConfiguration",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutIntelligentTieringConfiguration",
    "s3:PutInventoryConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutMetricsConfiguration",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectVersionTagging",
    "s3:PutReplicationConfiguration",
    "s3:ReplicateDelete",
    "s3:ReplicateObject",
    "s3:ReplicateTags",
    "s3:RestoreObject",
];

/// Why a document is not a valid bucket policy: the message S3 gives with
/// `MalformedPolicy`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("Policies must be valid JSON and the first byte must be '{{'")]
    NotAnObject,
    #[error("This policy contains invalid Json")]
    InvalidJson,
    #[error("Policy exceeds the maximum allowed document size.")]
    TooLarge,
    #[error("The policy is not in the valid JSON format: unknown field {0}")]
    UnknownField(String),
    #[error("Missing required field {0}")]
    MissingField(&'static str),
    #[error("Could not parse the policy: Statement is empty!")]
    EmptyStatement,
    #[error("The policy Version {0} is not supported; use 2012-10-17")]
    Version(String),
    #[error("Invalid effect: {0}")]
    Effect(String),
    #[error("Invalid principal in policy")]
    Principal,
    #[error("Policy has invalid action")]
    Action,
    #[error("Policy has invalid resource")]
    Resource,
    #[error("Invalid Condition type : {0}")]
    ConditionOperator(String),
    #[error("Policy has an invalid condition key")]
    ConditionKey,
    #[error("Invalid value for condition {0}")]
    ConditionValue(String),
    #[error("Statement IDs (SID) in a single policy must be unique")]
    DuplicateSid,
    #[error("Policy has {0} and {1} in one statement")]
    Both(&'static str, &'static str),
}

/// The decision of one policy for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An explicit `Deny` matched.
    Deny,
    /// An `Allow` matched and no `Deny`.
    Allow,
    /// No statement applies.
    NotApplicable,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    Anonymous,
    /// An access key: its immutable id (what bound principals match) and
    /// its name (what legacy, by-name bindings match).
    User {
        id: &'a str,
        name: &'a str,
    },
}

/// The cost of one evaluation ([`Policy::evaluate_within`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    /// Steps taken (see [`EVALUATION_STEPS_MAX`]).
    pub steps: u64,
    /// The bound was reached: `decision` is `Deny` whatever the statements
    /// say.
    pub exhausted: bool,
}

/// One request, as a policy sees it.
#[derive(Debug)]
pub struct Request<'a> {
    pub principal: Principal<'a>,
    /// As AWS spells it, e.g. `s3:GetObject`.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// The request's condition key values: a [`Context`] filled in advance,
    /// or a [`LazyContext`] that computes a key the first time a condition
    /// reads it.
    pub context: &'a dyn ConditionValues,
}

/// Where an evaluation finds the values of the condition keys (and policy
/// variables) a request offers.
pub trait ConditionValues: std::fmt::Debug {
    /// The values of `key`, normalised ([`Policy::condition_keys`]' form);
    /// `None` when the request has none.
    fn values(&self, key: &str) -> Option<&[String]>;
}

impl ConditionValues for Context {
    fn values(&self, key: &str) -> Option<&[String]> {
        self.get_normalized(key)
    }
}

/// The condition values of one request against one policy, each computed
/// by `compute` the first time a condition or variable reads it (at most
/// once): a request pays only for the keys of the statements that reach
/// their conditions, not for every key the policy names.
pub struct LazyContext<'p, F> {
    /// The policy's keys ([`Policy::condition_keys`]: sorted, once each).
    keys: &'p [String],
    computed: Vec<std::cell::OnceCell<Option<Vec<String>>>>,
    compute: F,
}

impl<'p, F: Fn(&str) -> Option<Vec<String>>> LazyContext<'p, F> {
    /// `compute(key)` gives a normalised key's values (`None`: absent).
    pub fn new(policy: &'p Policy, compute: F) -> Self {
        let keys = policy.condition_keys();
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted, once each");
        LazyContext {
            keys,
            computed: (0..keys.len())
                .map(|_| std::cell::OnceCell::new())
                .collect(),
            compute,
        }
    }
}

impl<F: Fn(&str) -> Option<Vec<String>>> ConditionValues for LazyContext<'_, F> {
    fn values(&self, key: &str) -> Option<&[String]> {
        // A policy reads only its own keys; any other is absent.
        let i = self.keys.binary_search_by(|k| k.as_str().cmp(key)).ok()?;
        self.computed[i]
            .get_or_init(|| (self.compute)(key))
            .as_deref()
    }
}

impl<F> std::fmt::Debug for LazyContext<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let computed = self.keys.iter().zip(&self.computed);
        f.debug_map()
            .entries(computed.filter_map(|(k, v)| v.get().map(|v| (k, v))))
            .finish()
    }
}

/// The condition key values of one request. Keys compare
/// case-insensitively except for the part after a `/` (tag keys, which S3
/// compares exactly); a key may hold several values.
#[derive(Debug, Default, Clone)]
pub struct Context {
    entries: Vec<(String, Vec<String>)>,
}

/// The condition keys (and policy variables) Cairn supplies, normalised
/// ([`normalize_key`]). A policy naming any other key is refused at
/// PutBucketPolicy ("Policy has an invalid condition key"): a condition on a
/// key that is never present never matches, and a `Deny` that never
/// matches is a silent fail-open. s3-api's `access::key_source` supplies
/// exactly these (a test there checks each has a source).
pub const SUPPORTED_CONDITION_KEYS: &[&str] = &[
    "aws:currenttime",
    "aws:epochtime",
    "aws:securetransport",
    "aws:sourceip",
    "aws:principaltype",
    "aws:username",
    "aws:userid",
    "aws:principalarn",
    "aws:referer",
    "aws:useragent",
    "s3:signatureversion",
    "s3:authtype",
    "s3:x-amz-acl",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-copy-source",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-content-sha256",
    "s3:x-amz-storage-class",
    "s3:object-lock-mode",
    "s3:object-lock-retain-until-date",
    "s3:object-lock-legal-hold",
    "s3:object-lock-remaining-retention-days",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:versionid",
    "s3:requestobjecttagkeys",
];

/// Keys that name a tag after their `/` (`s3:ExistingObjectTag/<tag>`).
pub const SUPPORTED_CONDITION_KEY_PREFIXES: &[&str] =
    &["s3:requestobjecttag/", "s3:existingobjecttag/"];

/// Whether Cairn supplies the (normalised) condition key.
pub fn is_supported_condition_key(normalized: &str) -> bool {
    SUPPORTED_CONDITION_KEYS.contains(&normalized)
        || SUPPORTED_CONDITION_KEY_PREFIXES
            .iter()
            .any(|p| normalized.len() > p.len() && normalized.starts_with(p))
}

/// `aws:SourceIp` → `aws:sourceip`; `s3:ExistingObjectTag/Team` →
/// `s3:existingobjecttag/Team` (how [`Policy::condition_keys`] lists keys).
pub(crate) fn normalize_key(key: &str) -> String {
    match key.split_once('/') {
        Some((head, tail)) => format!("{}/{tail}", head.to_ascii_lowercase()),
        None => key.to_ascii_lowercase(),
    }
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to one value (replacing any).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let key = normalize_key(key);
        let value = vec![value.into()];
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Adds a value to `key` (multivalued keys).
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        let key = normalize_key(key);
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1.push(value.into()),
            None => self.entries.push((key, vec![value.into()])),
        }
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.get_normalized(&normalize_key(key))
    }

    pub(crate) fn get_normalized(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// A parsed, validated bucket policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
    /// Every condition key and policy variable the statements read,
    /// normalised, sorted, once each.
    keys: Vec<String>,
    binding: Binding,
}

/// How named principals (`arn:aws:iam:::user/<name>`) meet callers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    /// Not bound yet: a named principal matches nobody.
    Unbound,
    /// A policy stored before bindings existed: by the caller's name, as
    /// it was put (a key created later under a deleted key's name matches).
    ByName,
    /// Name → the access key id it named when the policy was put; a name
    /// without an entry matches nobody.
    ById(BTreeMap<String, String>),
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    /// `Principal` (false) or `NotPrincipal` (true).
    not_principal: bool,
    principals: Principals,
    not_action: bool,
    /// Lowercased.
    actions: Vec<Pattern>,
    /// Which of [`S3_ACTIONS`] (bit i: `S3_ACTIONS[i]`) `actions` match,
    /// computed once at parse: a request for a known action is one bit
    /// test, not a pattern match per `Action` entry.
    action_bits: ActionBits,
    not_resource: bool,
    resources: Vec<Pattern>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default)]
struct Principals {
    everyone: bool,
    /// Key names.
    users: Vec<String>,
}

impl Principals {
    fn contains(&self, p: Principal<'_>, binding: &Binding) -> bool {
        self.everyone
            || match p {
                Principal::Anonymous => false,
                Principal::User { id, name } => self.users.iter().any(|u| match binding {
                    Binding::Unbound => false,
                    Binding::ByName => u == name,
                    Binding::ById(ids) => ids.get(u).is_some_and(|bound| bound == id),
                }),
            }
    }
}

// --- the document as JSON -------------------------------------------------

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    // First: a JSON array is itself a `serde_json::Value`.
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Flag(bool),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Number(n) => n.to_string(),
            Scalar::Flag(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrincipal {
    Star(String),
    Map(BTreeMap<String, OneOrMany<String>>),
}

type RawConditions = BTreeMap<String, BTreeMap<String, OneOrMany<Scalar>>>;

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    _id: Option<String>,
    #[serde(rename = "Statement")]
    statement: Option<OneOrMany<serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "Sid")]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: Option<String>,
    #[serde(rename = "Principal")]
    principal: Option<RawPrincipal>,
    #[serde(rename = "NotPrincipal")]
    not_principal: Option<RawPrincipal>,
    #[serde(rename = "Action")]
    action: Option<OneOrMany<String>>,
    #[serde(rename = "NotAction")]
    not_action: Option<OneOrMany<String>>,
    #[serde(rename = "Resource")]
    resource: Option<OneOrMany<String>>,
    #[serde(rename = "NotResource")]
    not_resource: Option<OneOrMany<String>>,
    #[serde(rename = "Condition")]
    condition: Option<RawConditions>,
}

const DOCUMENT_FIELDS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Refuses fields the grammar does not have (serde's own refusal would
/// lose the name).
fn only_fields(value: &serde_json::Value, allowed: &[&str]) -> Result<(), PolicyError> {
    let Some(map) = value.as_object() else {
        return Err(PolicyError::InvalidJson);
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(PolicyError::UnknownField(k.chars().take(64).collect())),
        None => Ok(()),
    }
}

impl Policy {
    /// Parses and validates a bucket policy PUT on `bucket`.
    pub fn parse(document: &[u8], bucket: &str) -> Result<Policy, PolicyError> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(PolicyError::TooLarge);
        }
        if document.trim_ascii_start().first() != Some(&b'{') {
            return Err(PolicyError::NotAnObject);
        }
        let value: serde_json::Value =
            serde_json::from_slice(document).map_err(|_| PolicyError::InvalidJson)?;
        let minified = serde_json::to_vec(&value).map_err(|_| PolicyError::InvalidJson)?;
        if minified.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        only_fields(&value, DOCUMENT_FIELDS)?;
        let raw: RawDocument =
            serde_json::from_value(value).map_err(|_| PolicyError::InvalidJson)?;
        // Without a Version (2008-10-17 semantics) `${…}` is literal.
        let variables = match raw.version.as_deref() {
            Some("2012-10-17") => true,
            None | Some("2008-10-17") => false,
            Some(v) => return Err(PolicyError::Version(v.chars().take(32).collect())),
        };
        let raw_statements = raw
            .statement
            .ok_or(PolicyError::MissingField("Statement"))?
            .into_vec();
        if raw_statements.is_empty() {
            return Err(PolicyError::EmptyStatement);
        }
        let mut sids: Vec<String> = Vec::new();
        let mut statements = Vec::with_capacity(raw_statements.len());
        for value in raw_statements {
            only_fields(&value, STATEMENT_FIELDS)?;
            let raw: RawStatement =
                serde_json::from_value(value).map_err(|_| PolicyError::InvalidJson)?;
            if let Some(sid) = raw.sid.as_ref().filter(|s| !s.is_empty()) {
                if sids.contains(sid) {
                    return Err(PolicyError::DuplicateSid);
                }
                sids.push(sid.clone());
            }
            statements.push(statement(raw, bucket, variables)?);
        }
        let mut keys: Vec<String> = Vec::new();
        for s in &statements {
            for c in &s.conditions {
                keys.push(c.key.clone());
                for v in &c.values {
                    if let Value::Pattern(p) = v {
                        keys.extend(p.variables().map(str::to_owned));
                    }
                }
            }
            for r in &s.resources {
                keys.extend(r.variables().map(str::to_owned));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(Policy {
            statements,
            keys,
            binding: Binding::Unbound,
        })
    }

    /// Binds every named principal to the id of the key `resolve` finds
    /// for its name (at PutBucketPolicy); `Err(name)` for a name `resolve`
    /// finds no key for.
    pub fn bind(&mut self, mut resolve: impl FnMut(&str) -> Option<String>) -> Result<(), String> {
        let mut ids = BTreeMap::new();
        for name in self.named_users() {
            let id = resolve(name).ok_or_else(|| name.to_owned())?;
            ids.insert(name.to_owned(), id);
        }
        self.binding = Binding::ById(ids);
        Ok(())
    }

    /// The policy with the bindings [`Policy::bind`] made when it was put
    /// (a name missing from `ids` matches nobody).
    pub fn with_bindings(mut self, ids: BTreeMap<String, String>) -> Policy {
        self.binding = Binding::ById(ids);
        self
    }

    /// The policy matching named principals by the caller's key name: only
    /// for policies stored before bindings existed.
    pub fn bound_by_name(mut self) -> Policy {
        self.binding = Binding::ByName;
        self
    }

    /// Name → key id, as bound (`None`: not bound by id).
    pub fn bindings(&self) -> Option<&BTreeMap<String, String>> {
        match &self.binding {
            Binding::ById(ids) => Some(ids),
            Binding::Unbound | Binding::ByName => None,
        }
    }

    /// The decision of this policy alone: any matching `Deny` wins, then any
    /// matching `Allow`; `Deny` when deciding would take more than
    /// [`EVALUATION_STEPS_MAX`] steps.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        self.evaluate_within(request, EVALUATION_STEPS_MAX).decision
    }

    /// [`Policy::evaluate`] with a bound of `steps_max`, and what it cost.
    pub fn evaluate_within(&self, request: &Request<'_>, steps_max: u64) -> Evaluation {
        let budget = Budget::new(steps_max);
        let done = |decision| Evaluation {
            decision,
            steps: budget.spent(),
            exhausted: budget.exhausted(),
        };
        let mut allowed = false;
        let action = action_index(request.action);
        for s in &self.statements {
            if allowed && s.allow {
                continue;
            }
            let applies = s.applies(request, action, &self.binding, &budget);
            // A statement judged on a spent budget decided nothing: refuse.
            if budget.exhausted() {
                return done(Decision::Deny);
            }
            if !applies {
                continue;
            }
            if !s.allow {
                return done(Decision::Deny);
            }
            allowed = true;
        }
        done(if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        })
    }

    /// Whether S3 would call this policy public: some `Allow` statement
    /// grants a wildcard principal (`*`, or anyone through `NotPrincipal`)
    /// without a condition that fixes the caller to known values (the keys
    /// and rules of "The meaning of public" in S3 Block Public Access; for
    /// Cairn also `aws:username` / `aws:userid`, which name keys).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.allow
                && (s.not_principal || s.principals.everyone)
                && !s.conditions.iter().any(restricts_caller)
        })
    }

    /// Key names that principals name (`arn:aws:iam:::user/<name>`).
    pub fn named_users(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .statements
            .iter()
            .flat_map(|s| s.principals.users.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Whether a condition or policy variable uses a key starting with
    /// `prefix` (compared case-insensitively).
    pub fn uses_condition_key(&self, prefix: &str) -> bool {
        self.keys.iter().any(|k| {
            k.len() >= prefix.len()
                && k.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
    }

    /// Every condition key and variable the policy reads, normalised
    /// (lowercase up to a `/`, e.g. `aws:sourceip`,
    /// `s3:existingobjecttag/Team`): what a request's [`Context`] needs, and
    /// all it needs.
    pub fn condition_keys(&self) -> &[String] {
        &self.keys
    }
}

/// Condition keys that, with fixed values and a positive operator, make an
/// `Allow` to everyone non-public.
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "aws:username",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

fn restricts_caller(c: &Condition) -> bool {
    if c.negated || c.if_exists || c.set == SetMode::AllValues || c.values.is_empty() {
        return false;
    }
    if !RESTRICTING_KEYS.contains(&c.key.as_str()) {
        return false;
    }
    // The ranges together, not each alone: 256 /8 blocks are everyone.
    let v4_addresses: u64 = c
        .values
        .iter()
        .map(|v| match v {
            Value::Cidr(ip, len) if ip.is_ipv4() => 1u64 << (32 - u32::from(*len)),
            _ => 0,
        })
        .sum();
    if v4_addresses > 1 << 24 {
        return false;
    }
    c.values.iter().all(|v| match v {
        Value::Pattern(p) => !p.has_wildcard() && !p.has_variable(),
        // An IPv4 block of /8 or narrower, IPv6 /32 or narrower.
        Value::Cidr(ip, len) => {
            if ip.is_ipv4() {
                *len >= 8
            } else {
                *len >= 32
            }
        }
        _ => false,
    })
}

/// A set of [`S3_ACTIONS`], one bit each.
type ActionBits = u128;
const _: () = assert!(S3_ACTIONS.len() <= ActionBits::BITS as usize);

/// The bits of the known actions any of `patterns` matches.
fn action_bits(patterns: &[Pattern]) -> ActionBits {
    let mut bits = 0;
    for (i, name) in S3_ACTIONS.iter().enumerate() {
        if patterns.iter().any(|p| p.matches(name, true, &|_| None)) {
            bits |= 1 << i;
        }
    }
    bits
}

/// The index of `action` in [`S3_ACTIONS`] (sorted; names compared
/// case-insensitively, as IAM compares actions).
fn action_index(action: &str) -> Option<usize> {
    S3_ACTIONS.binary_search(&action).ok().or_else(|| {
        S3_ACTIONS
            .iter()
            .position(|a| a.eq_ignore_ascii_case(action))
    })
}

impl Statement {
    /// Whether the statement covers the request. `action` is the request's
    /// action's index in [`S3_ACTIONS`] (`None`: not a known action, matched
    /// against the patterns).
    fn applies(
        &self,
        r: &Request<'_>,
        action: Option<usize>,
        binding: &Binding,
        budget: &Budget,
    ) -> bool {
        let who = self.principals.contains(r.principal, binding) != self.not_principal;
        if !who {
            return false;
        }
        let action = match action {
            Some(i) => self.action_bits & (1 << i) != 0,
            None => self
                .actions
                .iter()
                .any(|p| p.matches_within(r.action, true, &|_| None, budget)),
        };
        if action == self.not_action {
            return false;
        }
        let var = |name: &str| -> Option<String> {
            r.context.values(name).and_then(|v| v.first().cloned())
        };
        let resource = self
            .resources
            .iter()
            .any(|p| p.matches_within(r.resource, false, &var, budget));
        if resource == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(r.context, budget))
    }
}

fn statement(raw: RawStatement, bucket: &str, variables: bool) -> Result<Statement, PolicyError> {
    let allow = match raw.effect.as_deref() {
        Some("Allow") => true,
        Some("Deny") => false,
        Some(other) => return Err(PolicyError::Effect(other.chars().take(32).collect())),
        None => return Err(PolicyError::MissingField("Effect")),
    };
    let (not_principal, principal) = match (raw.principal, raw.not_principal) {
        (Some(p), None) => (false, p),
        (None, Some(p)) => (true, p),
        (None, None) => return Err(PolicyError::MissingField("Principal")),
        (Some(_), Some(_)) => return Err(PolicyError::Both("Principal", "NotPrincipal")),
    };
    let principals = principals(principal)?;
    let (not_action, actions) = match (raw.action, raw.not_action) {
        (Some(a), None) => (false, a.into_vec()),
        (None, Some(a)) => (true, a.into_vec()),
        (None, None) => return Err(PolicyError::MissingField("Action")),
        (Some(_), Some(_)) => return Err(PolicyError::Both("Action", "NotAction")),
    };
    if actions.is_empty() {
        return Err(PolicyError::Action);
    }
    let actions = actions
        .iter()
        .map(|a| action(a))
        .collect::<Result<Vec<_>, _>>()?;
    let (not_resource, resources) = match (raw.resource, raw.not_resource) {
        (Some(r), None) => (false, r.into_vec()),
        (None, Some(r)) => (true, r.into_vec()),
        (None, None) => return Err(PolicyError::MissingField("Resource")),
        (Some(_), Some(_)) => return Err(PolicyError::Both("Resource", "NotResource")),
    };
    if resources.is_empty() {
        return Err(PolicyError::Resource);
    }
    let resources = resources
        .iter()
        .map(|r| resource(r, bucket, variables))
        .collect::<Result<Vec<_>, _>>()?;
    let mut conditions = Vec::new();
    for (operator, keys) in raw.condition.unwrap_or_default() {
        let (compare, negated, if_exists, set) = parse_operator(&operator)
            .ok_or_else(|| PolicyError::ConditionOperator(operator.chars().take(64).collect()))?;
        for (key, values) in keys {
            // Only keys the server supplies: any other (a typo, another
            // service's, one Cairn does not offer) would never be present.
            if !is_supported_condition_key(&normalize_key(&key)) {
                return Err(PolicyError::ConditionKey);
            }
            let values = values
                .into_vec()
                .into_iter()
                .map(|v| {
                    let text = v.into_text();
                    parse_value(compare, &text, variables)
                        .ok_or_else(|| PolicyError::ConditionValue(operator.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if values.iter().any(|v| !v.variables_supported()) {
                return Err(PolicyError::ConditionKey);
            }
            conditions.push(Condition {
                compare,
                negated,
                if_exists,
                set,
                key: normalize_key(&key),
                values,
            });
        }
    }
    debug_assert!(
        conditions
            .iter()
            .all(|c| c.compare != Compare::Null || !c.if_exists)
    );
    Ok(Statement {
        allow,
        not_principal,
        principals,
        not_action,
        action_bits: action_bits(&actions),
        actions,
        not_resource,
        resources,
        conditions,
    })
}

fn principals(raw: RawPrincipal) -> Result<Principals, PolicyError> {
    let mut out = Principals::default();
    match raw {
        RawPrincipal::Star(s) if s == "*" => out.everyone = true,
        RawPrincipal::Star(_) => return Err(PolicyError::Principal),
        RawPrincipal::Map(map) => {
            if map.is_empty() {
                return Err(PolicyError::Principal);
            }
            for (kind, values) in map {
                if kind != "AWS" {
                    return Err(PolicyError::Principal);
                }
                for v in values.into_vec() {
                    if v == "*" {
                        out.everyone = true;
                    } else if let Some(name) = v.strip_prefix(USER_ARN_PREFIX)
                        && !name.is_empty()
                        && !name.contains(['*', '?'])
                    {
                        out.users.push(name.to_owned());
                    } else {
                        return Err(PolicyError::Principal);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// An action pattern; it must name at least one S3 action.
fn action(raw: &str) -> Result<Pattern, PolicyError> {
    let pattern = Pattern::compile(&raw.to_ascii_lowercase(), false);
    if raw == "*"
        || S3_ACTIONS
            .iter()
            .any(|a| pattern.matches(a, true, &|_| None))
    {
        Ok(pattern)
    } else {
        Err(PolicyError::Action)
    }
}

/// A resource pattern: `arn:aws:s3:::<bucket>[/<key pattern>]`, the bucket
/// part naming this policy's bucket.
fn resource(raw: &str, bucket: &str, variables: bool) -> Result<Pattern, PolicyError> {
    let rest = raw
        .strip_prefix(RESOURCE_PREFIX)
        .ok_or(PolicyError::Resource)?;
    let bucket_part = rest.split('/').next().unwrap_or("");
    if bucket_part.contains("${")
        || !Pattern::compile(bucket_part, false).matches(bucket, false, &|_| None)
    {
        return Err(PolicyError::Resource);
    }
    let pattern = Pattern::compile(raw, variables);
    if !pattern.variables_supported() {
        return Err(PolicyError::Resource);
    }
    Ok(pattern)
}

#[cfg(test)]
mod tests;
