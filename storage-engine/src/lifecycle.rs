//! Lifecycle rules as the engine stores and evaluates them: which rule
//! applies to which object version, and what it asks for (expire the
//! current version, expire noncurrent versions, remove expired delete
//! markers, abort incomplete multipart uploads).
//!
//! Owns: the rule model ([`LifecycleConfiguration`]), its versioned metadata
//! encoding, the model-level validation AWS applies to a configuration
//! ([`LifecycleConfiguration::validate`]), the pure evaluation of the rules
//! against one version or upload, and the `x-amz-expiration` header value.
//!
//! Must never: read or write the metadata store, touch chunk data, read the
//! clock (every time is a parameter, in unix ms), or know S3 XML (the S3
//! layer translates its documents into this model and maps
//! [`LifecycleProblem`]s to S3 error codes).
//!
//! Time. S3 adds the days of a rule to the moment a version was created (or
//! became noncurrent, or an upload was initiated) and rounds the result up
//! to the next midnight UTC (AWS user guide, "Lifecycle rules: Based on an
//! object's age": created 2014-01-15 10:30 UTC + 3 days is due 2014-01-19
//! 00:00 UTC). Every evaluation takes a `day_ms` parameter: [`DAY_MS`] in
//! production; tests pass a shorter day to accelerate time through the same
//! code, and "midnight" then means a multiple of `day_ms`.
//!
//! Conflicts (AWS "How Amazon S3 handles conflicts in lifecycle
//! configurations"): when several enabled rules apply to the same version,
//! the earliest due time wins ("the shorter expiration policy is honored");
//! equal due times go to the rule listed first, so the answer (and the rule
//! id in `x-amz-expiration`) is deterministic. The model has no transitions,
//! so "permanent deletion takes precedence over transition" cannot arise;
//! each kind of version (current, noncurrent, lone delete marker, upload)
//! has exactly one kind of action.
//!
//! Encoding (format version 1, little-endian, strings u32-length-prefixed,
//! options as a 0/1 byte then the value):
//! `version u8 | rule count u32 | per rule: id str, enabled u8,
//! expired_object_delete_marker u8, prefix str, tag count u32 + (key str,
//! value str)*, size_greater_than opt u64, size_less_than opt u64,
//! expiration u8 (0 none, 1 days then u32, 2 date then u64 ms),
//! noncurrent opt (days u32, newer_noncurrent_versions opt u32),
//! abort_incomplete_upload_days opt u32`.

use crate::codec::{RecordReader, RecordWriter};
use crate::error::CodecError;

/// One day in milliseconds: the `day_ms` every production caller passes.
pub const DAY_MS: u64 = 86_400_000;

/// AWS: "An S3 Lifecycle configuration can have up to 1,000 rules".
pub const RULES_MAX: usize = 1_000;

/// AWS: "ID length is limited to 255 characters".
pub const RULE_ID_CHARS_MAX: usize = 255;

/// AWS: NewerNoncurrentVersions "You can specify up to 100 noncurrent
/// versions to retain".
pub const NEWER_NONCURRENT_VERSIONS_MAX: u32 = 100;

const LIFECYCLE_FORMAT_V1: u8 = 1;
const WHAT: &str = "lifecycle";

/// A bucket's lifecycle configuration: its rules in the order the client
/// sent them (the order breaks ties between rules, see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleConfiguration {
    pub rules: Vec<LifecycleRule>,
}

/// One rule: which versions it selects and what it asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleRule {
    /// Unique within the configuration. AWS generates an ID when the client
    /// omits one; the S3 layer does that before building the model.
    pub id: String,
    /// `Status` Enabled; disabled rules are kept but never act.
    pub enabled: bool,
    pub filter: RuleFilter,
    /// Expire the current version (in a versioned bucket: add a delete
    /// marker; unversioned: delete it). Days also remove a lone delete
    /// marker once it is old enough (see
    /// [`LifecycleConfiguration::expired_delete_marker`]).
    pub expiration: Option<Expiration>,
    /// `Expiration/ExpiredObjectDeleteMarker` true: remove a delete marker
    /// that is the only version left of its key. XML puts it in the same
    /// `Expiration` element as Days/Date, which is why it may not be combined
    /// with them ([`LifecycleProblem::DeleteMarkerWithDaysOrDate`]).
    pub expired_object_delete_marker: bool,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// `AbortIncompleteMultipartUpload/DaysAfterInitiation`.
    pub abort_incomplete_upload_days: Option<u32>,
}

/// Which versions a rule selects; every present condition must hold
/// (S3 combines the elements of `<And>` with a logical AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleFilter {
    /// Key prefix; "" selects every key.
    pub prefix: String,
    /// Each `(key, value)` must be among the version's tags, matching both
    /// exactly; the version may carry other tags too.
    pub tags: Vec<(String, String)>,
    /// `ObjectSizeGreaterThan`: the size must be strictly greater.
    pub size_greater_than: Option<u64>,
    /// `ObjectSizeLessThan`: the size must be strictly less.
    pub size_less_than: Option<u64>,
}

/// When a current version expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiration {
    /// Days after the version's last-modified time, rounded up to the next
    /// midnight.
    Days(u32),
    /// A fixed moment (a midnight UTC, unix ms). Not a one-time action: it
    /// keeps applying to every matching version created after it, which is
    /// then due at once (AWS "Lifecycle rules: Based on a specific date").
    Date { at_ms: u64 },
}

/// When noncurrent versions are permanently deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoncurrentExpiration {
    /// `NoncurrentDays`: days after the version became noncurrent (its
    /// successor's creation), rounded up to the next midnight.
    pub days: u32,
    /// `NewerNoncurrentVersions`: how many noncurrent versions to retain.
    /// A version is deleted only once at least this many newer noncurrent
    /// versions of its key exist, and its days have passed.
    pub newer_noncurrent_versions: Option<u32>,
}

/// When an action falls due and which rule asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due<'a> {
    /// Unix ms; the action may run at any time from then on.
    pub due_ms: u64,
    pub rule_id: &'a str,
}

impl Due<'_> {
    pub fn is_due(&self, now_ms: u64) -> bool {
        now_ms >= self.due_ms
    }

    /// The `x-amz-expiration` response header value:
    /// `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="<id>"`.
    /// The id is written as stored; the S3 layer must drop the header if the
    /// id holds bytes a header value cannot carry.
    pub fn expiration_header(&self) -> String {
        format!(
            "expiry-date=\"{}\", rule-id=\"{}\"",
            http_date(self.due_ms),
            self.rule_id
        )
    }
}

/// What evaluation needs to know about one stored version.
#[derive(Clone, Copy, Debug)]
pub struct VersionFacts<'a> {
    pub key: &'a str,
    pub size: u64,
    pub tags: &'a [(String, String)],
    /// For S3 the creation date is the last-modified date.
    pub last_modified_ms: u64,
}

/// `start_ms` plus `days` days, rounded up to the next midnight: the first
/// multiple of `day_ms` strictly after the sum, so a sum that falls exactly
/// on a midnight moves to the following one ("rounding the resulting time to
/// the next day midnight"). Saturates instead of overflowing; a `day_ms` of 0
/// is treated as 1.
pub fn due_after_days_ms(start_ms: u64, days: u32, day_ms: u64) -> u64 {
    let day_ms = day_ms.max(1);
    let end_ms = start_ms.saturating_add(u64::from(days).saturating_mul(day_ms));
    (end_ms / day_ms).saturating_add(1).saturating_mul(day_ms)
}

/// The earliest of several candidate dues; the first listed wins a tie.
fn earliest<'a>(candidates: impl Iterator<Item = Due<'a>>) -> Option<Due<'a>> {
    candidates.fold(None, |best: Option<Due<'a>>, c| match best {
        Some(b) if b.due_ms <= c.due_ms => Some(b),
        _ => Some(c),
    })
}

impl RuleFilter {
    /// Whether a version with this key, size and tags is selected.
    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(self.prefix.as_str())
            && self.size_greater_than.is_none_or(|min| size > min)
            && self.size_less_than.is_none_or(|max| size < max)
            && self
                .tags
                .iter()
                .all(|(k, v)| tags.iter().any(|(tk, tv)| tk == k && tv == v))
    }

    fn has_size(&self) -> bool {
        self.size_greater_than.is_some() || self.size_less_than.is_some()
    }
}

impl LifecycleRule {
    /// Enabled and its filter selects the version.
    pub fn applies_to(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        self.enabled && self.filter.matches(key, size, tags)
    }

    fn has_action(&self) -> bool {
        self.expiration.is_some()
            || self.expired_object_delete_marker
            || self.noncurrent_expiration.is_some()
            || self.abort_incomplete_upload_days.is_some()
    }
}

impl Expiration {
    /// When a current version last modified at `last_modified_ms` is due.
    pub fn due_ms(&self, last_modified_ms: u64, day_ms: u64) -> u64 {
        match *self {
            Expiration::Days(days) => due_after_days_ms(last_modified_ms, days, day_ms),
            Expiration::Date { at_ms } => at_ms,
        }
    }
}

impl LifecycleConfiguration {
    /// The enabled rules that select this version, in configuration order.
    pub fn matching_rules<'s>(
        &'s self,
        key: &str,
        size: u64,
        tags: &[(String, String)],
    ) -> impl Iterator<Item = &'s LifecycleRule> {
        self.rules
            .iter()
            .filter(move |r| r.applies_to(key, size, tags))
    }

    /// When the current version (not a delete marker) expires, and by which
    /// rule: the earliest `Expiration` among the matching rules. Also the
    /// value of `x-amz-expiration` on GET/HEAD/PUT of that version.
    pub fn current_expiration(&self, version: &VersionFacts<'_>, day_ms: u64) -> Option<Due<'_>> {
        earliest(
            self.matching_rules(version.key, version.size, version.tags)
                .filter_map(|r| {
                    r.expiration.map(|e| Due {
                        due_ms: e.due_ms(version.last_modified_ms, day_ms),
                        rule_id: r.id.as_str(),
                    })
                }),
        )
    }

    /// When a noncurrent version is permanently deleted, and by which rule.
    ///
    /// `noncurrent_since_ms` is its successor's creation (S3 counts the days
    /// a version is noncurrent from when its successor was created);
    /// `newer_noncurrent_versions` is how many noncurrent versions of the
    /// key are newer than it. AWS: "The maximum number of noncurrent
    /// versions does not include versions marked with noncurrent delete
    /// markers", so the caller does not count noncurrent delete markers.
    ///
    /// A rule with `NewerNoncurrentVersions = n` retains the `n` newest
    /// noncurrent versions ("If there are this many more recent noncurrent
    /// versions, Amazon S3 will take the associated action"): it applies only
    /// when `newer_noncurrent_versions >= n`; otherwise it returns nothing
    /// for this version until more versions arrive.
    pub fn noncurrent_expiration(
        &self,
        version: &VersionFacts<'_>,
        noncurrent_since_ms: u64,
        newer_noncurrent_versions: u32,
        day_ms: u64,
    ) -> Option<Due<'_>> {
        earliest(
            self.matching_rules(version.key, version.size, version.tags)
                .filter_map(|r| {
                    let n = r.noncurrent_expiration?;
                    if n.newer_noncurrent_versions
                        .is_some_and(|keep| newer_noncurrent_versions < keep)
                    {
                        return None;
                    }
                    Some(Due {
                        due_ms: due_after_days_ms(noncurrent_since_ms, n.days, day_ms),
                        rule_id: r.id.as_str(),
                    })
                }),
        )
    }

    /// When a delete marker that is the latest and the only remaining
    /// version of its key (an "expired object delete marker") is removed,
    /// and by which rule. The caller checks that it is alone; this only
    /// decides.
    ///
    /// A marker is matched as a version of size 0 without tags. Two kinds of
    /// rule remove it:
    /// * `ExpiredObjectDeleteMarker` true: due at once (its own
    ///   `last_modified_ms`, which is in the past);
    /// * `Expiration` with Days: AWS "When you specify the Days tag, Amazon
    ///   S3 automatically performs ExpiredObjectDeleteMarker cleanup when the
    ///   delete markers are old enough to satisfy the age criteria", so due
    ///   at the marker's last-modified + Days, rounded up. AWS says this of
    ///   Days only, so an `Expiration` Date does not remove markers here.
    pub fn expired_delete_marker(
        &self,
        key: &str,
        marker_last_modified_ms: u64,
        day_ms: u64,
    ) -> Option<Due<'_>> {
        earliest(self.matching_rules(key, 0, &[]).filter_map(|r| {
            let by_flag = r
                .expired_object_delete_marker
                .then_some(marker_last_modified_ms);
            let by_days = match r.expiration {
                Some(Expiration::Days(days)) => {
                    Some(due_after_days_ms(marker_last_modified_ms, days, day_ms))
                }
                _ => None,
            };
            let due_ms = match (by_flag, by_days) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            Some(Due {
                due_ms,
                rule_id: r.id.as_str(),
            })
        }))
    }

    /// When an incomplete multipart upload of `key` initiated at
    /// `initiated_ms` is aborted, and by which rule: initiation +
    /// DaysAfterInitiation rounded up to the next midnight. Uploads are
    /// selected by prefix only: AWS rejects AbortIncompleteMultipartUpload
    /// in a rule with a tag or size filter ([`LifecycleProblem`]), so a rule
    /// carrying one (which `validate` refuses) never aborts uploads here.
    pub fn abort_upload(&self, key: &str, initiated_ms: u64, day_ms: u64) -> Option<Due<'_>> {
        earliest(self.rules.iter().filter_map(|r| {
            let days = r.abort_incomplete_upload_days?;
            let selects = r.enabled
                && r.filter.tags.is_empty()
                && !r.filter.has_size()
                && key.starts_with(r.filter.prefix.as_str());
            selects.then(|| Due {
                due_ms: due_after_days_ms(initiated_ms, days, day_ms),
                rule_id: r.id.as_str(),
            })
        }))
    }
}

/// Which day count of a rule is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaysField {
    /// `Expiration/Days`.
    Expiration,
    /// `NoncurrentVersionExpiration/NoncurrentDays`.
    NoncurrentDays,
    /// `AbortIncompleteMultipartUpload/DaysAfterInitiation`.
    DaysAfterInitiation,
}

impl DaysField {
    fn element(self) -> &'static str {
        match self {
            DaysField::Expiration => "'Days' for Expiration action",
            DaysField::NoncurrentDays => "'NoncurrentDays' for NoncurrentVersionExpiration action",
            DaysField::DaysAfterInitiation => {
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action"
            }
        }
    }
}

/// A rule AWS refuses in PutBucketLifecycleConfiguration, found by
/// [`LifecycleConfiguration::validate`]. `rule` is the index in
/// `rules`. Each variant's doc names the S3 error code it maps to (all are
/// HTTP 400); the message is meant for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleProblem {
    /// More than [`RULES_MAX`] rules. Maps to `MalformedXML` (the published
    /// schema allows at most 1,000 `Rule` elements; what AWS answers was not
    /// verified, some S3 servers say `InvalidRequest`).
    #[error("The lifecycle configuration allows a maximum of 1000 rules")]
    TooManyRules { count: usize },
    /// Two rules share an ID. Maps to `InvalidArgument`.
    #[error("Rule ID must be unique. Found same ID for more than one rule")]
    DuplicateId { rule: usize },
    /// An ID longer than [`RULE_ID_CHARS_MAX`] characters. Maps to
    /// `InvalidArgument`.
    #[error("ID length should not exceed allowed limit of 255")]
    IdTooLong { rule: usize },
    /// A rule without any action. Maps to `InvalidRequest`.
    #[error("At least one action needs to be specified in a rule")]
    NoAction { rule: usize },
    /// Days, NoncurrentDays or DaysAfterInitiation is 0 ("must be a non-zero
    /// positive integer"). Maps to `InvalidArgument`.
    #[error("{} must be a positive integer", field.element())]
    DaysZero { rule: usize, field: DaysField },
    /// NewerNoncurrentVersions outside 1..=100. Maps to `InvalidArgument`.
    #[error(
        "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be an integer between 1 and 100"
    )]
    NewerNoncurrentVersionsOutOfRange { rule: usize, value: u32 },
    /// An Expiration Date that is not a midnight UTC ("The time is always
    /// midnight UTC"). Maps to `InvalidArgument`.
    #[error("'Date' must be at midnight GMT")]
    DateNotMidnight { rule: usize },
    /// ExpiredObjectDeleteMarker together with Days or Date in the same
    /// Expiration ("This cannot be specified with Days or Date in a
    /// Lifecycle Expiration Policy"). Maps to `MalformedXML`, which is what
    /// AWS answers (the Expiration element holds exactly one of the three).
    #[error("ExpiredObjectDeleteMarker cannot be specified with Days or Date")]
    DeleteMarkerWithDaysOrDate { rule: usize },
    /// ExpiredObjectDeleteMarker in a rule with a tag filter ("You cannot
    /// specify this Lifecycle action in a rule that specifies a filter based
    /// on object tags"). Maps to `InvalidRequest`.
    #[error("ExpiredObjectDeleteMarker cannot be specified with Tags")]
    DeleteMarkerWithTags { rule: usize },
    /// AbortIncompleteMultipartUpload in a rule with a tag filter. Maps to
    /// `InvalidRequest`.
    #[error("AbortIncompleteMultipartUpload cannot be specified with Tags")]
    AbortUploadWithTags { rule: usize },
    /// AbortIncompleteMultipartUpload in a rule with an object size filter.
    /// Maps to `InvalidRequest`.
    #[error("AbortIncompleteMultipartUpload cannot be specified with Object Size")]
    AbortUploadWithSize { rule: usize },
    /// ObjectSizeGreaterThan not below ObjectSizeLessThan ("the
    /// ObjectSizeGreaterThan integer must be less than the
    /// ObjectSizeLessThan value"). Maps to `InvalidArgument`.
    #[error("ObjectSizeGreaterThan must be less than ObjectSizeLessThan")]
    SizeRangeEmpty { rule: usize },
    /// Two tags of one filter share a key ("each tag key must be unique").
    /// Maps to `InvalidArgument`.
    #[error("Duplicate Tag Keys are not allowed")]
    DuplicateTagKey { rule: usize },
}

impl LifecycleConfiguration {
    /// Every problem AWS would refuse the configuration for, rules in order
    /// and each rule's problems in the order of the enum; empty means valid.
    /// XML-level checks (an empty configuration, a filter with two
    /// predicates outside `<And>`, a Status other than Enabled/Disabled) are
    /// the S3 layer's, before the model exists.
    pub fn validate(&self) -> Vec<LifecycleProblem> {
        let mut problems = Vec::new();
        if self.rules.len() > RULES_MAX {
            problems.push(LifecycleProblem::TooManyRules {
                count: self.rules.len(),
            });
        }
        let mut ids = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            problems.extend(rule.problems(i));
            if !ids.insert(rule.id.as_str()) {
                problems.push(LifecycleProblem::DuplicateId { rule: i });
            }
        }
        problems
    }
}

impl LifecycleRule {
    fn problems(&self, rule: usize) -> Vec<LifecycleProblem> {
        use LifecycleProblem as P;
        let mut out = Vec::new();
        if self.id.chars().count() > RULE_ID_CHARS_MAX {
            out.push(P::IdTooLong { rule });
        }
        if !self.has_action() {
            out.push(P::NoAction { rule });
        }
        let zero_days = [
            (
                matches!(self.expiration, Some(Expiration::Days(0))),
                DaysField::Expiration,
            ),
            (
                self.noncurrent_expiration.is_some_and(|n| n.days == 0),
                DaysField::NoncurrentDays,
            ),
            (
                self.abort_incomplete_upload_days == Some(0),
                DaysField::DaysAfterInitiation,
            ),
        ];
        for (zero, field) in zero_days {
            if zero {
                out.push(P::DaysZero { rule, field });
            }
        }
        if let Some(value) = self
            .noncurrent_expiration
            .and_then(|n| n.newer_noncurrent_versions)
            .filter(|v| !(1..=NEWER_NONCURRENT_VERSIONS_MAX).contains(v))
        {
            out.push(P::NewerNoncurrentVersionsOutOfRange { rule, value });
        }
        if let Some(Expiration::Date { at_ms }) = self.expiration
            && !at_ms.is_multiple_of(DAY_MS)
        {
            out.push(P::DateNotMidnight { rule });
        }
        let has_tags = !self.filter.tags.is_empty();
        if self.expired_object_delete_marker {
            if self.expiration.is_some() {
                out.push(P::DeleteMarkerWithDaysOrDate { rule });
            }
            if has_tags {
                out.push(P::DeleteMarkerWithTags { rule });
            }
        }
        if self.abort_incomplete_upload_days.is_some() {
            if has_tags {
                out.push(P::AbortUploadWithTags { rule });
            }
            if self.filter.has_size() {
                out.push(P::AbortUploadWithSize { rule });
            }
        }
        if let (Some(min), Some(max)) = (self.filter.size_greater_than, self.filter.size_less_than)
            && min >= max
        {
            out.push(P::SizeRangeEmpty { rule });
        }
        let tags = &self.filter.tags;
        if tags
            .iter()
            .enumerate()
            .any(|(i, (k, _))| tags[..i].iter().any(|(earlier, _)| earlier == k))
        {
            out.push(P::DuplicateTagKey { rule });
        }
        out
    }
}

// ---- encoding ----

fn write_opt_u64(w: &mut RecordWriter, v: Option<u64>) {
    match v {
        Some(v) => w.u8(1).u64(v),
        None => w.u8(0),
    };
}

fn write_opt_u32(w: &mut RecordWriter, v: Option<u32>) {
    match v {
        Some(v) => w.u8(1).u32(v),
        None => w.u8(0),
    };
}

fn read_flag(r: &mut RecordReader<'_>) -> Result<bool, CodecError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::Invalid(WHAT)),
    }
}

fn read_opt_u64(r: &mut RecordReader<'_>) -> Result<Option<u64>, CodecError> {
    Ok(if read_flag(r)? { Some(r.u64()?) } else { None })
}

fn read_opt_u32(r: &mut RecordReader<'_>) -> Result<Option<u32>, CodecError> {
    Ok(if read_flag(r)? { Some(r.u32()?) } else { None })
}

/// The fewest bytes one encoded rule can take (all strings empty, no
/// options): id 4, two flags 2, prefix 4, tag count 4, five option bytes.
const RULE_ENCODED_BYTES_MIN: usize = 19;

impl LifecycleConfiguration {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(LIFECYCLE_FORMAT_V1);
        debug_assert!(u32::try_from(self.rules.len()).is_ok());
        w.u32(self.rules.len() as u32);
        for rule in &self.rules {
            w.str(&rule.id)
                .u8(u8::from(rule.enabled))
                .u8(u8::from(rule.expired_object_delete_marker))
                .str(&rule.filter.prefix);
            debug_assert!(u32::try_from(rule.filter.tags.len()).is_ok());
            w.u32(rule.filter.tags.len() as u32);
            for (k, v) in &rule.filter.tags {
                w.str(k).str(v);
            }
            write_opt_u64(&mut w, rule.filter.size_greater_than);
            write_opt_u64(&mut w, rule.filter.size_less_than);
            match rule.expiration {
                None => w.u8(0),
                Some(Expiration::Days(days)) => w.u8(1).u32(days),
                Some(Expiration::Date { at_ms }) => w.u8(2).u64(at_ms),
            };
            match rule.noncurrent_expiration {
                None => w.u8(0),
                Some(n) => w.u8(1).u32(n.days),
            };
            if let Some(n) = rule.noncurrent_expiration {
                write_opt_u32(&mut w, n.newer_noncurrent_versions);
            }
            write_opt_u32(&mut w, rule.abort_incomplete_upload_days);
        }
        w.finish()
    }

    /// Decodes what [`encode`](Self::encode) wrote. Rejects an unknown
    /// format version, truncation, trailing bytes, flags other than 0/1 and
    /// unknown expiration kinds; it does not re-run
    /// [`validate`](Self::validate) (a stored configuration was validated
    /// when it was put, and must stay readable if the rules ever tighten).
    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, WHAT);
        match r.u8()? {
            LIFECYCLE_FORMAT_V1 => {}
            version => {
                return Err(CodecError::UnknownVersion {
                    what: WHAT,
                    version,
                });
            }
        }
        let n = r.count(RULE_ENCODED_BYTES_MIN)?;
        let mut rules = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.string()?;
            let enabled = read_flag(&mut r)?;
            let expired_object_delete_marker = read_flag(&mut r)?;
            let prefix = r.string()?;
            let tag_count = r.count(8)?;
            let mut tags = Vec::with_capacity(tag_count);
            for _ in 0..tag_count {
                tags.push((r.string()?, r.string()?));
            }
            let size_greater_than = read_opt_u64(&mut r)?;
            let size_less_than = read_opt_u64(&mut r)?;
            let expiration = match r.u8()? {
                0 => None,
                1 => Some(Expiration::Days(r.u32()?)),
                2 => Some(Expiration::Date { at_ms: r.u64()? }),
                _ => return Err(CodecError::Invalid(WHAT)),
            };
            let noncurrent_expiration = if read_flag(&mut r)? {
                let days = r.u32()?;
                Some(NoncurrentExpiration {
                    days,
                    newer_noncurrent_versions: read_opt_u32(&mut r)?,
                })
            } else {
                None
            };
            let abort_incomplete_upload_days = read_opt_u32(&mut r)?;
            rules.push(LifecycleRule {
                id,
                enabled,
                filter: RuleFilter {
                    prefix,
                    tags,
                    size_greater_than,
                    size_less_than,
                },
                expiration,
                expired_object_delete_marker,
                noncurrent_expiration,
                abort_incomplete_upload_days,
            });
        }
        r.finish()?;
        Ok(LifecycleConfiguration { rules })
    }
}

// ---- dates ----

fn is_leap_year(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days in any 400 consecutive Gregorian years (97 of them are leap years).
const DAYS_PER_400_YEARS: u64 = 400 * 365 + 97;

/// `(year, month 1..=12, day 1..=31)` of a count of days since 1970-01-01.
fn civil_date(days_since_epoch: u64) -> (u64, usize, u64) {
    let mut year = 1970 + 400 * (days_since_epoch / DAYS_PER_400_YEARS);
    let mut day = days_since_epoch % DAYS_PER_400_YEARS;
    // At most 400 turns: what is left is less than one 400-year cycle.
    loop {
        let year_days = if is_leap_year(year) { 366 } else { 365 };
        if day < year_days {
            break;
        }
        day -= year_days;
        year += 1;
    }
    let february = if is_leap_year(year) { 29 } else { 28 };
    let month_days = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    while month < 11 && day >= month_days[month] {
        day -= month_days[month];
        month += 1;
    }
    (year, month + 1, day + 1)
}

/// An HTTP date in the IMF-fixdate form (RFC 9110), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`, of a unix time in ms (the ms are
/// dropped). The engine cannot reach the S3 layer's formatter (it depends on
/// the engine, not the other way round), hence this one.
pub fn http_date(unix_ms: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = unix_ms / 1000;
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_date(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days % 7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[month - 1],
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Unix ms of a UTC calendar time, counted by hand (independent of
    /// `civil_date`).
    fn utc_ms(year: u64, month: u64, day: u64, hour: u64, minute: u64) -> u64 {
        let mut days = 0;
        for y in 1970..year {
            days += if is_leap_year(y) { 366 } else { 365 };
        }
        let february = if is_leap_year(year) { 29 } else { 28 };
        let month_days = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        days += month_days[..(month - 1) as usize].iter().sum::<u64>();
        days += day - 1;
        ((days * 24 + hour) * 60 + minute) * 60_000
    }

    fn rule(id: &str) -> LifecycleRule {
        LifecycleRule {
            id: id.into(),
            enabled: true,
            ..Default::default()
        }
    }

    fn with_prefix(id: &str, prefix: &str) -> LifecycleRule {
        let mut r = rule(id);
        r.filter.prefix = prefix.into();
        r
    }

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn facts<'a>(
        key: &'a str,
        tags: &'a [(String, String)],
        last_modified_ms: u64,
    ) -> VersionFacts<'a> {
        VersionFacts {
            key,
            size: 100,
            tags,
            last_modified_ms,
        }
    }

    fn config(rules: Vec<LifecycleRule>) -> LifecycleConfiguration {
        LifecycleConfiguration { rules }
    }

    #[test]
    fn aws_example_days_round_up_to_next_midnight() {
        // "if an object was created at 1/15/2014 10:30 AM UTC and you
        // specify 3 days in a transition rule, then the transition date of
        // the object would be calculated as 1/19/2014 00:00 UTC."
        assert_eq!(
            due_after_days_ms(utc_ms(2014, 1, 15, 10, 30), 3, DAY_MS),
            utc_ms(2014, 1, 19, 0, 0)
        );
        // The brief's example: created 2024-01-01T10:00Z + 1 day.
        assert_eq!(
            due_after_days_ms(utc_ms(2024, 1, 1, 10, 0), 1, DAY_MS),
            utc_ms(2024, 1, 3, 0, 0)
        );
        // Exactly on a midnight: the next one.
        assert_eq!(
            due_after_days_ms(utc_ms(2024, 1, 1, 0, 0), 1, DAY_MS),
            utc_ms(2024, 1, 3, 0, 0)
        );
        assert_eq!(
            due_after_days_ms(utc_ms(2024, 1, 1, 0, 0) - 1, 1, DAY_MS),
            utc_ms(2024, 1, 2, 0, 0)
        );
        // Across a leap day.
        assert_eq!(
            due_after_days_ms(utc_ms(2024, 2, 28, 12, 0), 1, DAY_MS),
            utc_ms(2024, 3, 1, 0, 0)
        );
    }

    #[test]
    fn aws_example_noncurrent_days_count_from_the_successor() {
        // "a current version of an object that was created at 1/1/2014
        // 10:30 AM UTC. If the new version of the object that replaces the
        // current version is created at 1/15/2014 10:30 AM UTC, and you
        // specify 3 days in a transition rule, the transition date of the
        // object is calculated as 1/19/2014 00:00 UTC."
        let mut r = rule("noncurrent");
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 3,
            newer_noncurrent_versions: None,
        });
        let c = config(vec![r]);
        let none = tags(&[]);
        let v = facts("photo.gif", &none, utc_ms(2014, 1, 1, 10, 30));
        let due = c
            .noncurrent_expiration(&v, utc_ms(2014, 1, 15, 10, 30), 0, DAY_MS)
            .unwrap();
        assert_eq!(due.due_ms, utc_ms(2014, 1, 19, 0, 0));
        assert_eq!(due.rule_id, "noncurrent");
    }

    #[test]
    fn aws_example_photo_gif_deleted_by_accident() {
        // Created 1/1/2014 10:30 UTC, deleted (a delete marker) 1/2/2014
        // 11:30 UTC, 5 noncurrent days: "On 1/8/2014 00:00 UTC, the
        // Lifecycle rule for expiration executes and permanently deletes
        // photo.gif".
        let mut r = rule("five-days");
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 5,
            newer_noncurrent_versions: None,
        });
        let c = config(vec![r]);
        let none = tags(&[]);
        let v = facts("photo.gif", &none, utc_ms(2014, 1, 1, 10, 30));
        let due = c
            .noncurrent_expiration(&v, utc_ms(2014, 1, 2, 11, 30), 0, DAY_MS)
            .unwrap();
        assert_eq!(due.due_ms, utc_ms(2014, 1, 8, 0, 0));
        assert!(!due.is_due(utc_ms(2014, 1, 7, 23, 59)));
        assert!(due.is_due(utc_ms(2014, 1, 8, 0, 0)));
    }

    #[test]
    fn newer_noncurrent_versions_retains_that_many() {
        // AWS Example 6: keep 5 noncurrent versions, delete the rest after
        // 365 noncurrent days.
        let mut r = rule("sample-rule");
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 365,
            newer_noncurrent_versions: Some(5),
        });
        let c = config(vec![r]);
        let none = tags(&[]);
        let v = facts("k", &none, 0);
        let since = utc_ms(2020, 6, 1, 12, 0);
        // The five newest noncurrent versions (0..=4 newer ones) stay.
        for newer in 0..5 {
            assert_eq!(c.noncurrent_expiration(&v, since, newer, DAY_MS), None);
        }
        // The sixth and older go, once their days have passed.
        for newer in [5, 6, 50] {
            let due = c.noncurrent_expiration(&v, since, newer, DAY_MS).unwrap();
            assert_eq!(due.due_ms, due_after_days_ms(since, 365, DAY_MS));
        }
    }

    #[test]
    fn filters_select_by_prefix_tags_and_strict_size() {
        let f = RuleFilter {
            prefix: "tax/".into(),
            tags: tags(&[("key1", "value1"), ("key2", "value2")]),
            size_greater_than: Some(500),
            size_less_than: Some(64_000),
        };
        let both = tags(&[("key2", "value2"), ("other", "x"), ("key1", "value1")]);
        assert!(f.matches("tax/doc1.txt", 501, &both));
        assert!(f.matches("tax/doc1.txt", 63_999, &both));
        // Strict comparisons on both ends.
        assert!(!f.matches("tax/doc1.txt", 500, &both));
        assert!(!f.matches("tax/doc1.txt", 64_000, &both));
        // Every tag must match key and value exactly.
        assert!(!f.matches("tax/doc1.txt", 1000, &tags(&[("key1", "value1")])));
        assert!(!f.matches(
            "tax/doc1.txt",
            1000,
            &tags(&[("key1", "value1"), ("key2", "VALUE2")])
        ));
        // The prefix is a plain prefix: "example.jpg" is not under "logs/".
        assert!(!f.matches("example.jpg", 1000, &both));
        assert!(!f.matches("tax", 1000, &both));
        // The empty filter selects everything.
        assert!(RuleFilter::default().matches("", 0, &[]));
    }

    #[test]
    fn disabled_rules_never_act() {
        // AWS Example 2 (disabling a rule): Rule2 is Disabled and ignored.
        let mut r1 = with_prefix("Rule1", "logs/");
        r1.expiration = Some(Expiration::Days(1));
        let mut r2 = with_prefix("Rule2", "documents/");
        r2.enabled = false;
        r2.expiration = Some(Expiration::Days(1));
        r2.abort_incomplete_upload_days = Some(1);
        let c = config(vec![r1, r2]);
        let none = tags(&[]);
        assert!(
            c.current_expiration(&facts("logs/a", &none, 0), DAY_MS)
                .is_some()
        );
        assert_eq!(
            c.current_expiration(&facts("documents/a", &none, 0), DAY_MS),
            None
        );
        assert_eq!(c.abort_upload("documents/a", 0, DAY_MS), None);
        assert_eq!(c.matching_rules("documents/a", 1, &none).count(), 0);
    }

    #[test]
    fn aws_conflict_example_overlapping_prefixes() {
        // AWS conflicts Example 1: Rule 1 (empty filter) expires everything
        // after 365 days; Rule 2 only transitions logs/ (not modelled).
        // Objects under logs/ are still expired by Rule 1.
        let mut r1 = rule("Rule 1");
        r1.expiration = Some(Expiration::Days(365));
        let mut r2 = with_prefix("Rule 2", "logs/");
        // A rule whose only action is outside the model has none here.
        r2.abort_incomplete_upload_days = Some(30);
        let c = config(vec![r1, r2]);
        let none = tags(&[]);
        let created = utc_ms(2023, 3, 1, 8, 0);
        for key in ["logs/a.log", "photos/b.jpg"] {
            let due = c
                .current_expiration(&facts(key, &none, created), DAY_MS)
                .unwrap();
            assert_eq!(due.rule_id, "Rule 1");
            assert_eq!(due.due_ms, utc_ms(2024, 3, 1, 0, 0)); // 2024 is a leap year
        }
    }

    #[test]
    fn aws_conflict_example_tag_filters_shorter_expiration_wins() {
        // AWS conflicts Example 4: Rule 1 (tag1/value1) acts after 365 days,
        // Rule 2 (tag2/value2) expires after 14 days; an object with both
        // tags is expired 14 days after creation. Rule 1 is modelled as an
        // expiration to make the conflict visible: the shorter one wins.
        let mut r1 = rule("Rule 1");
        r1.filter.tags = tags(&[("tag1", "value1")]);
        r1.expiration = Some(Expiration::Days(365));
        let mut r2 = rule("Rule 2");
        r2.filter.tags = tags(&[("tag2", "value2")]);
        r2.expiration = Some(Expiration::Days(14));
        let c = config(vec![r1, r2]);
        let created = utc_ms(2024, 5, 1, 9, 15);
        let both = tags(&[("tag1", "value1"), ("tag2", "value2")]);
        let due = c
            .current_expiration(&facts("k", &both, created), DAY_MS)
            .unwrap();
        assert_eq!(due.rule_id, "Rule 2");
        assert_eq!(due.due_ms, utc_ms(2024, 5, 16, 0, 0));
        let only_first = tags(&[("tag1", "value1")]);
        let due = c
            .current_expiration(&facts("k", &only_first, created), DAY_MS)
            .unwrap();
        assert_eq!(due.rule_id, "Rule 1");
        assert_eq!(
            c.current_expiration(&facts("k", &tags(&[]), created), DAY_MS),
            None
        );
    }

    #[test]
    fn earliest_due_wins_and_ties_go_to_the_first_rule() {
        let mut by_date = rule("date");
        by_date.expiration = Some(Expiration::Date {
            at_ms: utc_ms(2023, 12, 15, 0, 0),
        });
        let mut by_days = rule("days");
        by_days.expiration = Some(Expiration::Days(30));
        let mut same_days = rule("days-again");
        same_days.expiration = Some(Expiration::Days(30));
        let c = config(vec![by_date.clone(), by_days.clone(), same_days.clone()]);
        let none = tags(&[]);
        // Created well before the date: the date comes first.
        let early = facts("k", &none, utc_ms(2023, 12, 1, 1, 0));
        assert_eq!(
            c.current_expiration(&early, DAY_MS).unwrap().rule_id,
            "date"
        );
        // Created after the date: the date is due at once (a date rule keeps
        // applying to new objects), still the earliest.
        let late = facts("k", &none, utc_ms(2024, 2, 1, 1, 0));
        let due = c.current_expiration(&late, DAY_MS).unwrap();
        assert_eq!(
            (due.rule_id, due.due_ms),
            ("date", utc_ms(2023, 12, 15, 0, 0))
        );
        assert!(due.is_due(late.last_modified_ms));
        // Two equal Days rules: the first listed names the expiration.
        let c = config(vec![same_days, by_days]);
        assert_eq!(
            c.current_expiration(&early, DAY_MS).unwrap().rule_id,
            "days-again"
        );
        // Noncurrent: the shorter NoncurrentDays wins among rules whose
        // retention count is met.
        let mut keep_two = rule("keep-two");
        keep_two.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 1,
            newer_noncurrent_versions: Some(2),
        });
        let mut thirty = rule("thirty");
        thirty.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 30,
            newer_noncurrent_versions: None,
        });
        let c = config(vec![thirty, keep_two]);
        let since = utc_ms(2024, 1, 1, 12, 0);
        let v = facts("k", &none, 0);
        assert_eq!(
            c.noncurrent_expiration(&v, since, 1, DAY_MS)
                .unwrap()
                .rule_id,
            "thirty"
        );
        let due = c.noncurrent_expiration(&v, since, 2, DAY_MS).unwrap();
        assert_eq!(
            (due.rule_id, due.due_ms),
            ("keep-two", utc_ms(2024, 1, 3, 0, 0))
        );
    }

    #[test]
    fn expired_object_delete_markers() {
        let marker_ms = utc_ms(2024, 3, 5, 16, 0);
        // ExpiredObjectDeleteMarker alone: due at once.
        let mut flag = with_prefix("Rule 1", "logs/");
        flag.expired_object_delete_marker = true;
        let c = config(vec![flag.clone()]);
        let due = c
            .expired_delete_marker("logs/x", marker_ms, DAY_MS)
            .unwrap();
        assert_eq!((due.rule_id, due.due_ms), ("Rule 1", marker_ms));
        assert_eq!(c.expired_delete_marker("other/x", marker_ms, DAY_MS), None);
        // Expiration Days cleans a lone marker once it is old enough.
        let mut days = rule("days");
        days.expiration = Some(Expiration::Days(60));
        let c = config(vec![days.clone()]);
        let due = c
            .expired_delete_marker("logs/x", marker_ms, DAY_MS)
            .unwrap();
        assert_eq!(due.due_ms, utc_ms(2024, 5, 5, 0, 0));
        // Expiration Date does not (AWS documents the cleanup for Days).
        let mut date = rule("date");
        date.expiration = Some(Expiration::Date { at_ms: 0 });
        assert_eq!(
            config(vec![date]).expired_delete_marker("logs/x", marker_ms, DAY_MS),
            None
        );
        // Both kinds: the immediate flag wins.
        let c = config(vec![days, flag]);
        let due = c
            .expired_delete_marker("logs/x", marker_ms, DAY_MS)
            .unwrap();
        assert_eq!((due.rule_id, due.due_ms), ("Rule 1", marker_ms));
        // A marker has no tags: a tag-filtered rule never selects it.
        let mut tagged = rule("tagged");
        tagged.filter.tags = tags(&[("a", "b")]);
        tagged.expiration = Some(Expiration::Days(1));
        assert_eq!(
            config(vec![tagged]).expired_delete_marker("k", marker_ms, DAY_MS),
            None
        );
        // Rules with only noncurrent or upload actions do not remove markers.
        let mut other = rule("other");
        other.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 1,
            newer_noncurrent_versions: None,
        });
        other.abort_incomplete_upload_days = Some(1);
        assert_eq!(
            config(vec![other]).expired_delete_marker("k", marker_ms, DAY_MS),
            None
        );
    }

    #[test]
    fn incomplete_uploads_are_aborted_by_prefix() {
        // AWS Example 8: abort uploads under SomeKeyPrefix/ 7 days after
        // initiation.
        let mut r = with_prefix("sample-rule", "SomeKeyPrefix/");
        r.abort_incomplete_upload_days = Some(7);
        let mut tagged = rule("tagged");
        tagged.filter.tags = tags(&[("a", "b")]);
        tagged.abort_incomplete_upload_days = Some(1);
        let mut sized = rule("sized");
        sized.filter.size_less_than = Some(10);
        sized.abort_incomplete_upload_days = Some(1);
        let c = config(vec![tagged, sized, r]);
        let initiated = utc_ms(2024, 7, 1, 23, 59);
        let due = c
            .abort_upload("SomeKeyPrefix/big.bin", initiated, DAY_MS)
            .unwrap();
        assert_eq!(
            (due.rule_id, due.due_ms),
            ("sample-rule", utc_ms(2024, 7, 9, 0, 0))
        );
        // Invalid (tag or size filtered) rules never abort uploads.
        assert_eq!(c.abort_upload("elsewhere", initiated, DAY_MS), None);
    }

    #[test]
    fn accelerated_days_use_the_same_rounding() {
        // A test day of 1 s: "midnight" is every whole second.
        let day_ms = 1000;
        let mut r = rule("fast");
        r.expiration = Some(Expiration::Days(2));
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 1,
            newer_noncurrent_versions: None,
        });
        r.abort_incomplete_upload_days = Some(3);
        let c = config(vec![r]);
        let none = tags(&[]);
        let v = facts("k", &none, 10_250);
        assert_eq!(c.current_expiration(&v, day_ms).unwrap().due_ms, 13_000);
        assert_eq!(
            c.noncurrent_expiration(&v, 12_999, 0, day_ms)
                .unwrap()
                .due_ms,
            14_000
        );
        assert_eq!(c.abort_upload("k", 5_000, day_ms).unwrap().due_ms, 9_000);
        assert_eq!(
            c.expired_delete_marker("k", 7_001, day_ms).unwrap().due_ms,
            10_000
        );
        // A zero day length does not divide by zero.
        assert_eq!(due_after_days_ms(5, 1, 0), 7);
        assert_eq!(due_after_days_ms(u64::MAX - 3, 9, DAY_MS), u64::MAX);
    }

    #[test]
    fn http_dates_and_the_expiration_header() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_255_369_830_123),
            "Mon, 12 Oct 2009 17:50:30 GMT"
        );
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(utc_ms(2024, 2, 29, 0, 0)),
            "Thu, 29 Feb 2024 00:00:00 GMT"
        );
        assert_eq!(
            http_date(utc_ms(2000, 12, 31, 23, 59) + 59_999),
            "Sun, 31 Dec 2000 23:59:59 GMT"
        );
        assert_eq!(
            http_date(utc_ms(2100, 3, 1, 0, 0)),
            "Mon, 01 Mar 2100 00:00:00 GMT"
        );
        // A HEAD seen in the wild: LastModified Tue, 14 Aug 2018 19:57:04
        // GMT under a 60-day rule gave this header.
        let mut r = rule("lifecycle-test-rule");
        r.expiration = Some(Expiration::Days(60));
        let c = config(vec![r]);
        let none = tags(&[]);
        let modified = utc_ms(2018, 8, 14, 19, 57) + 4_000;
        let due = c
            .current_expiration(&facts("k", &none, modified), DAY_MS)
            .unwrap();
        assert_eq!(
            due.expiration_header(),
            "expiry-date=\"Sun, 14 Oct 2018 00:00:00 GMT\", rule-id=\"lifecycle-test-rule\""
        );
    }

    #[test]
    fn validation_finds_each_problem() {
        use LifecycleProblem as P;
        let mut ok = with_prefix("ok", "logs/");
        ok.expiration = Some(Expiration::Days(1));
        assert_eq!(config(vec![ok.clone()]).validate(), vec![]);

        let mut long = ok.clone();
        long.id = "é".repeat(RULE_ID_CHARS_MAX); // 255 characters, 510 bytes
        assert_eq!(config(vec![long.clone()]).validate(), vec![]);
        long.id.push('x');
        assert_eq!(
            config(vec![long]).validate(),
            vec![P::IdTooLong { rule: 0 }]
        );

        let mut dup = ok.clone();
        dup.filter.prefix = "other/".into();
        assert_eq!(
            config(vec![ok.clone(), dup]).validate(),
            vec![P::DuplicateId { rule: 1 }]
        );

        assert_eq!(
            config(vec![rule("idle")]).validate(),
            vec![P::NoAction { rule: 0 }]
        );

        let mut zeros = rule("zeros");
        zeros.expiration = Some(Expiration::Days(0));
        zeros.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 0,
            newer_noncurrent_versions: Some(101),
        });
        zeros.abort_incomplete_upload_days = Some(0);
        assert_eq!(
            config(vec![zeros]).validate(),
            vec![
                P::DaysZero {
                    rule: 0,
                    field: DaysField::Expiration
                },
                P::DaysZero {
                    rule: 0,
                    field: DaysField::NoncurrentDays
                },
                P::DaysZero {
                    rule: 0,
                    field: DaysField::DaysAfterInitiation
                },
                P::NewerNoncurrentVersionsOutOfRange {
                    rule: 0,
                    value: 101
                },
            ]
        );
        for (value, valid) in [(0, false), (1, true), (100, true), (101, false)] {
            let mut r = rule("n");
            r.noncurrent_expiration = Some(NoncurrentExpiration {
                days: 1,
                newer_noncurrent_versions: Some(value),
            });
            assert_eq!(config(vec![r]).validate().is_empty(), valid, "{value}");
        }

        let mut date = rule("date");
        date.expiration = Some(Expiration::Date {
            at_ms: utc_ms(2024, 1, 1, 0, 0),
        });
        assert_eq!(config(vec![date.clone()]).validate(), vec![]);
        date.expiration = Some(Expiration::Date {
            at_ms: utc_ms(2024, 1, 1, 0, 0) + 1,
        });
        assert_eq!(
            config(vec![date]).validate(),
            vec![P::DateNotMidnight { rule: 0 }]
        );

        let mut marker = rule("marker");
        marker.expired_object_delete_marker = true;
        assert_eq!(config(vec![marker.clone()]).validate(), vec![]);
        marker.expiration = Some(Expiration::Days(3));
        marker.filter.tags = tags(&[("a", "b")]);
        assert_eq!(
            config(vec![marker]).validate(),
            vec![
                P::DeleteMarkerWithDaysOrDate { rule: 0 },
                P::DeleteMarkerWithTags { rule: 0 }
            ]
        );

        let mut abort = rule("abort");
        abort.abort_incomplete_upload_days = Some(7);
        assert_eq!(config(vec![abort.clone()]).validate(), vec![]);
        abort.filter.tags = tags(&[("a", "b")]);
        abort.filter.size_greater_than = Some(1);
        assert_eq!(
            config(vec![abort]).validate(),
            vec![
                P::AbortUploadWithTags { rule: 0 },
                P::AbortUploadWithSize { rule: 0 }
            ]
        );

        let mut sizes = ok.clone();
        sizes.filter.size_greater_than = Some(64_000);
        sizes.filter.size_less_than = Some(64_000);
        assert_eq!(
            config(vec![sizes.clone()]).validate(),
            vec![P::SizeRangeEmpty { rule: 0 }]
        );
        sizes.filter.size_greater_than = Some(500);
        assert_eq!(config(vec![sizes]).validate(), vec![]);

        let mut dup_tags = ok.clone();
        dup_tags.filter.tags = tags(&[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(
            config(vec![dup_tags]).validate(),
            vec![P::DuplicateTagKey { rule: 0 }]
        );

        let many: Vec<LifecycleRule> = (0..=RULES_MAX)
            .map(|i| {
                let mut r = ok.clone();
                r.id = i.to_string();
                r
            })
            .collect();
        assert_eq!(config(many[..RULES_MAX].to_vec()).validate(), vec![]);
        assert_eq!(
            config(many).validate(),
            vec![P::TooManyRules {
                count: RULES_MAX + 1
            }]
        );
    }

    #[test]
    fn problems_carry_aws_messages() {
        let p = LifecycleProblem::DaysZero {
            rule: 0,
            field: DaysField::Expiration,
        };
        assert_eq!(
            p.to_string(),
            "'Days' for Expiration action must be a positive integer"
        );
        assert_eq!(
            LifecycleProblem::DateNotMidnight { rule: 3 }.to_string(),
            "'Date' must be at midnight GMT"
        );
    }

    fn sample() -> LifecycleConfiguration {
        let mut a = with_prefix("a", "logs/");
        a.filter.tags = tags(&[("k", "v")]);
        a.filter.size_greater_than = Some(1);
        a.filter.size_less_than = Some(u64::MAX);
        a.expiration = Some(Expiration::Days(3));
        a.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 4,
            newer_noncurrent_versions: Some(5),
        });
        let mut b = rule("b");
        b.enabled = false;
        b.expired_object_delete_marker = true;
        b.expiration = Some(Expiration::Date {
            at_ms: 1_700_000_000_000,
        });
        b.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 1,
            newer_noncurrent_versions: None,
        });
        b.abort_incomplete_upload_days = Some(6);
        config(vec![a, b, rule("")])
    }

    #[test]
    fn encoding_round_trips_and_rejects_bad_input() {
        let c = sample();
        let bytes = c.encode();
        assert_eq!(bytes[0], LIFECYCLE_FORMAT_V1);
        assert_eq!(LifecycleConfiguration::decode(&bytes).unwrap(), c);
        let empty = LifecycleConfiguration::default();
        assert_eq!(
            LifecycleConfiguration::decode(&empty.encode()).unwrap(),
            empty
        );
        // Every truncation fails; trailing bytes fail.
        for cut in 0..bytes.len() {
            assert!(
                LifecycleConfiguration::decode(&bytes[..cut]).is_err(),
                "{cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            LifecycleConfiguration::decode(&long),
            Err(CodecError::TrailingBytes(WHAT))
        );
        let mut unknown = bytes.clone();
        unknown[0] = 2;
        assert_eq!(
            LifecycleConfiguration::decode(&unknown),
            Err(CodecError::UnknownVersion {
                what: WHAT,
                version: 2
            })
        );
        // The enabled flag of the first rule (after version, count and the
        // id "a") must be 0 or 1.
        let mut flag = bytes.clone();
        flag[1 + 4 + 4 + 1] = 2;
        assert_eq!(
            LifecycleConfiguration::decode(&flag),
            Err(CodecError::Invalid(WHAT))
        );
        // A huge rule count is refused before allocating.
        let mut huge = vec![LIFECYCLE_FORMAT_V1];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            LifecycleConfiguration::decode(&huge),
            Err(CodecError::Truncated(WHAT))
        );
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z/]{1,8}", any::<String>()]
    }

    fn arb_rule() -> impl Strategy<Value = LifecycleRule> {
        let filter = (
            arb_string(),
            proptest::collection::vec((arb_string(), arb_string()), 0..3),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
        )
            .prop_map(
                |(prefix, tags, size_greater_than, size_less_than)| RuleFilter {
                    prefix,
                    tags,
                    size_greater_than,
                    size_less_than,
                },
            );
        let expiration = prop_oneof![
            Just(None),
            any::<u32>().prop_map(|d| Some(Expiration::Days(d))),
            any::<u64>().prop_map(|at_ms| Some(Expiration::Date { at_ms })),
        ];
        let noncurrent = proptest::option::of((any::<u32>(), any::<Option<u32>>()).prop_map(
            |(days, newer_noncurrent_versions)| NoncurrentExpiration {
                days,
                newer_noncurrent_versions,
            },
        ));
        (
            arb_string(),
            any::<bool>(),
            filter,
            expiration,
            any::<bool>(),
            noncurrent,
            any::<Option<u32>>(),
        )
            .prop_map(
                |(id, enabled, filter, expiration, marker, noncurrent, abort)| LifecycleRule {
                    id,
                    enabled,
                    filter,
                    expiration,
                    expired_object_delete_marker: marker,
                    noncurrent_expiration: noncurrent,
                    abort_incomplete_upload_days: abort,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(rules in proptest::collection::vec(arb_rule(), 0..6)) {
            let c = LifecycleConfiguration { rules };
            prop_assert_eq!(LifecycleConfiguration::decode(&c.encode()).unwrap(), c);
        }

        #[test]
        fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = LifecycleConfiguration::decode(&buf);
        }

        #[test]
        fn decode_of_mutated_encodings_never_panics(
            rules in proptest::collection::vec(arb_rule(), 1..4),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = LifecycleConfiguration { rules }.encode();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = LifecycleConfiguration::decode(&bytes);
        }

        #[test]
        fn due_is_the_first_midnight_after_the_days(
            start in 0u64..(1 << 50),
            days in 0u32..100_000,
            day_ms in prop_oneof![Just(DAY_MS), 1u64..5_000],
        ) {
            let due = due_after_days_ms(start, days, day_ms);
            let end = start + u64::from(days) * day_ms;
            prop_assert_eq!(due % day_ms, 0);
            prop_assert!(due > end);
            prop_assert!(due <= end + day_ms);
        }

        #[test]
        fn current_expiration_is_the_minimum_over_matching_rules(
            rules in proptest::collection::vec(arb_rule(), 0..6),
            key in "[a-z/]{0,6}",
            size in any::<u64>(),
            modified in 0u64..(1 << 50),
        ) {
            let c = LifecycleConfiguration { rules };
            let none = Vec::new();
            let v = VersionFacts { key: &key, size, tags: &none, last_modified_ms: modified };
            let expected = c
                .rules
                .iter()
                .filter(|r| r.applies_to(&key, size, &none))
                .filter_map(|r| r.expiration.map(|e| e.due_ms(modified, DAY_MS)))
                .min();
            prop_assert_eq!(c.current_expiration(&v, DAY_MS).map(|d| d.due_ms), expected);
        }

        #[test]
        fn http_date_agrees_with_the_hand_count(days in 0u64..200_000, secs in 0u64..86_400) {
            let ms = (days * 86_400 + secs) * 1000;
            let (y, m, d) = civil_date(days);
            prop_assert_eq!(utc_ms(y, m as u64, d, 0, 0), days * DAY_MS);
            let text = http_date(ms);
            prop_assert!(text.ends_with(" GMT"));
            prop_assert_eq!(text.len(), 29);
        }
    }
}
