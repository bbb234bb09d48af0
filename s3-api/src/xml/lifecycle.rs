//! Lifecycle: the `<LifecycleConfiguration>` document, read from
//! PutBucketLifecycleConfiguration bodies ([`LifecycleConfigurationDoc`],
//! everything S3 defines for a rule) and written back by
//! GetBucketLifecycleConfiguration ([`LifecycleConfiguration`], the
//! actions Cairn stores).
//!
//! The request document keeps what a client may send apart from what it
//! means: a legacy `<Prefix>` directly under `<Rule>` stays apart from
//! `<Filter>`, an empty `<Filter/>` (present, matching every key) is
//! `Some` of a filter with nothing set, and transitions are captured only
//! so the handler can refuse them. Numbers are parsed as AWS types them
//! (32-bit `Integer` for days and counts, 64-bit `Long` for object sizes):
//! a value that is not such a number fails [`super::parse`], which the
//! handler answers `MalformedXML`, as S3 answers a document that does not
//! validate against its schema; zero and negative numbers parse, because
//! S3 answers those with `InvalidArgument`.
//!
//! Elements S3 does not define are refused (`deny_unknown_fields`): S3
//! validates the document against its schema, and an ignored condition in
//! a filter would widen what a rule deletes.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::tagging::{Tag, TagDoc};
use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// A PutBucketLifecycleConfiguration body: the rules in the order sent.
///
/// What AWS does with it (the handler's rules; every code here is HTTP
/// 400). "Verified" means seen in S3-compatibility suites written against
/// AWS (Ceph s3-tests) or reproduced against AWS in public threads;
/// "documented" means the AWS docs state the rule but not the code.
/// - No rule at all: `MalformedXML` (the schema requires one; inferred).
/// - More than 1,000 rules: refused (documented: "up to 1,000 rules … not
///   adjustable"; the code is not documented).
/// - The request needs an integrity header (`Content-MD5` or an
///   `x-amz-checksum-*`) (documented; `InvalidRequest` expected).
/// - A configuration replaces the previous one whole. Cairn has one
///   storage class, so the handler refuses
///   [`LifecycleRuleDoc::transitions`] and
///   [`LifecycleRuleDoc::noncurrent_version_transitions`] with a code of
///   its choosing (S3 itself accepts them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleConfigurationDoc {
    /// The namespace SDKs declare on the root (`xmlns="…"`), which the
    /// parser sees as an attribute: accepted, not read.
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "Rule", default)]
    pub(crate) rules: Vec<LifecycleRuleDoc>,
}

/// One `<Rule>`, every element optional so that the handler, not the
/// parser, decides what is missing.
///
/// AWS's rules for it:
/// - `ID`: optional (S3 generates one when absent); longer than 255
///   characters is `InvalidArgument` (verified); two rules with the same
///   ID is `InvalidArgument` (verified).
/// - `Status`: required, exactly `Enabled` or `Disabled`; anything else
///   (`enabled` included) is `MalformedXML` (verified).
/// - `Filter` and the legacy `Prefix` are exclusive and one is required
///   (documented: "Filter is required if the LifecycleRule does not
///   contain a Prefix element"); both or neither is expected to be
///   `MalformedXML`. An empty `<Filter/>`, or a filter or legacy prefix
///   holding an empty `<Prefix/>`, is valid and matches every key
///   (verified).
/// - At least one action (`Expiration`, `NoncurrentVersionExpiration`,
///   `AbortIncompleteMultipartUpload`, a transition) is required
///   (documented; code not documented).
/// - `AbortIncompleteMultipartUpload` and `ExpiredObjectDeleteMarker`
///   cannot be used in a rule whose filter names tags (`Tag`, or `Tag` in
///   `And`) (documented; code not documented).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleRuleDoc {
    #[serde(rename = "ID", default)]
    pub(crate) id: Option<String>,
    /// The legacy rule-level prefix (before `Filter` existed).
    #[serde(rename = "Prefix", default)]
    pub(crate) prefix: Option<String>,
    #[serde(rename = "Filter", default)]
    pub(crate) filter: Option<LifecycleFilterDoc>,
    #[serde(rename = "Status", default)]
    pub(crate) status: Option<String>,
    #[serde(rename = "Expiration", default)]
    pub(crate) expiration: Option<LifecycleExpirationDoc>,
    #[serde(rename = "NoncurrentVersionExpiration", default)]
    pub(crate) noncurrent_version_expiration: Option<NoncurrentVersionExpirationDoc>,
    #[serde(rename = "AbortIncompleteMultipartUpload", default)]
    pub(crate) abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUploadDoc>,
    #[serde(rename = "Transition", default)]
    pub(crate) transitions: Vec<TransitionDoc>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    pub(crate) noncurrent_version_transitions: Vec<NoncurrentVersionTransitionDoc>,
}

/// `<Filter>`: S3 allows exactly one of its children (an empty filter
/// matches every key); all are captured so that the handler can tell.
///
/// AWS's rules for it:
/// - More than one child (say `Prefix` and `Tag` side by side, or two
///   `Tag`s) instead of wrapping them in `And`: refused (documented:
///   "exactly one of Prefix, Tag, ObjectSizeGreaterThan,
///   ObjectSizeLessThan, or And"; `MalformedXML` expected).
/// - Tag keys within one filter must be unique (documented).
/// - Sizes are bytes, at most 5 TB (documented); with both bounds,
///   `ObjectSizeGreaterThan` must be below `ObjectSizeLessThan`
///   (documented). Codes are not documented.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleFilterDoc {
    #[serde(rename = "Prefix", default)]
    pub(crate) prefix: Option<String>,
    /// One tag is valid here; more is the handler's `MalformedXML`.
    #[serde(rename = "Tag", default)]
    pub(crate) tags: Vec<TagDoc>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    pub(crate) object_size_greater_than: Option<i64>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    pub(crate) object_size_less_than: Option<i64>,
    #[serde(rename = "And", default)]
    pub(crate) and: Option<LifecycleAndDoc>,
}

/// `<And>`: every condition must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleAndDoc {
    #[serde(rename = "Prefix", default)]
    pub(crate) prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    pub(crate) tags: Vec<TagDoc>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    pub(crate) object_size_greater_than: Option<i64>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    pub(crate) object_size_less_than: Option<i64>,
}

/// `<Expiration>` of current versions.
///
/// AWS's rules for it:
/// - One of `Days`, `Date` or `ExpiredObjectDeleteMarker`:
///   `ExpiredObjectDeleteMarker` "cannot be specified with Days or Date"
///   (documented); a document with all three was answered `MalformedXML`
///   in a public AWS SDK thread, and `Days` with `Date` is expected to be
///   the same.
/// - `Days` zero or negative: `InvalidArgument` (verified), "'Days' for
///   Expiration action must be a positive integer" (as reproduced against
///   AWS).
/// - `Date` is ISO 8601 and "the time is always midnight UTC"
///   (documented); another time of day is `InvalidArgument` (verified).
/// - `ExpiredObjectDeleteMarker` is an XML boolean; other text fails the
///   parse here (`MalformedXML`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleExpirationDoc {
    #[serde(rename = "Date", default)]
    pub(crate) date: Option<String>,
    #[serde(rename = "Days", default)]
    pub(crate) days: Option<i32>,
    #[serde(rename = "ExpiredObjectDeleteMarker", default)]
    pub(crate) expired_object_delete_marker: Option<bool>,
}

/// `<NoncurrentVersionExpiration>`.
///
/// AWS's rules for it:
/// - `NoncurrentDays` zero or negative: `InvalidArgument`,
///   "'NoncurrentDays' for NoncurrentVersionExpiration action must be a
///   positive integer" (as reproduced against AWS).
/// - `NewerNoncurrentVersions` (how many noncurrent versions to keep
///   whatever their age) is a positive integer, at most 100 (documented;
///   code not documented, `InvalidArgument` expected). Given in a rule
///   without a `Filter` it is `InvalidRequest` (documented).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoncurrentVersionExpirationDoc {
    #[serde(rename = "NoncurrentDays", default)]
    pub(crate) noncurrent_days: Option<i32>,
    #[serde(rename = "NewerNoncurrentVersions", default)]
    pub(crate) newer_noncurrent_versions: Option<i32>,
}

/// `<AbortIncompleteMultipartUpload>`.
///
/// AWS's rules for it: `DaysAfterInitiation` zero or negative is
/// `InvalidArgument` (as reproduced against AWS, worded like the other
/// day counts); the action is not allowed in a rule whose filter names
/// tags (documented).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AbortIncompleteMultipartUploadDoc {
    #[serde(rename = "DaysAfterInitiation", default)]
    pub(crate) days_after_initiation: Option<i32>,
}

/// `<Transition>`: captured, as text, only so that the handler can refuse
/// it (Cairn has one storage class); unknown children are let through so
/// the refusal, not `MalformedXML`, is what a client sees.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TransitionDoc {
    // Kept for the golden tests; the refusal names only the class.
    #[cfg_attr(not(test), allow(dead_code))]
    #[serde(rename = "Date", default)]
    pub(crate) date: Option<String>,
    // Kept for the golden tests; the refusal names only the class.
    #[cfg_attr(not(test), allow(dead_code))]
    #[serde(rename = "Days", default)]
    pub(crate) days: Option<String>,
    #[serde(rename = "StorageClass", default)]
    pub(crate) storage_class: Option<String>,
}

/// `<NoncurrentVersionTransition>`: captured as [`TransitionDoc`] is.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoncurrentVersionTransitionDoc {
    // Kept for the golden tests; the refusal names only the class.
    #[cfg_attr(not(test), allow(dead_code))]
    #[serde(rename = "NoncurrentDays", default)]
    pub(crate) noncurrent_days: Option<String>,
    // Kept for the golden tests; the refusal names only the class.
    #[cfg_attr(not(test), allow(dead_code))]
    #[serde(rename = "NewerNoncurrentVersions", default)]
    pub(crate) newer_noncurrent_versions: Option<String>,
    #[serde(rename = "StorageClass", default)]
    pub(crate) storage_class: Option<String>,
}

/// GetBucketLifecycleConfiguration's answer: the stored rules, in order.
#[derive(Debug)]
pub(crate) struct LifecycleConfiguration<'a> {
    pub(crate) rules: Vec<LifecycleRule<'a>>,
}

/// One stored rule, written `ID`, `Prefix`, `Filter`, `Status`, then the
/// actions (`Expiration`, `NoncurrentVersionExpiration`,
/// `AbortIncompleteMultipartUpload`), the order of AWS's examples.
#[derive(Debug)]
pub(crate) struct LifecycleRule<'a> {
    pub(crate) id: Option<XmlText<'a>>,
    /// The legacy rule-level prefix, written back only for a rule that was
    /// set with one.
    pub(crate) prefix: Option<XmlText<'a>>,
    pub(crate) filter: Option<LifecycleFilter<'a>>,
    /// `Enabled` or `Disabled`.
    pub(crate) status: XmlText<'a>,
    pub(crate) expiration: Option<LifecycleExpiration<'a>>,
    pub(crate) noncurrent_version_expiration: Option<NoncurrentVersionExpiration>,
    /// `<AbortIncompleteMultipartUpload><DaysAfterInitiation>`.
    pub(crate) abort_incomplete_multipart_upload_days: Option<u32>,
}

/// A stored `<Filter>`: one condition, or none (`All`, written
/// `<Filter></Filter>`).
#[derive(Debug)]
pub(crate) enum LifecycleFilter<'a> {
    All,
    Prefix(XmlText<'a>),
    Tag(Tag<'a>),
    ObjectSizeGreaterThan(u64),
    ObjectSizeLessThan(u64),
    And(LifecycleAnd<'a>),
}

/// A stored `<And>`, written `Prefix`, `Tag`s, `ObjectSizeGreaterThan`,
/// `ObjectSizeLessThan`.
#[derive(Debug)]
pub(crate) struct LifecycleAnd<'a> {
    pub(crate) prefix: Option<XmlText<'a>>,
    pub(crate) tags: Vec<Tag<'a>>,
    pub(crate) object_size_greater_than: Option<u64>,
    pub(crate) object_size_less_than: Option<u64>,
}

/// A stored `<Expiration>` (S3 holds one of the three; written in this
/// order whatever is set).
#[derive(Debug)]
pub(crate) struct LifecycleExpiration<'a> {
    /// ISO 8601, formatted by the caller (`2026-01-02T00:00:00.000Z`).
    pub(crate) date: Option<XmlText<'a>>,
    pub(crate) days: Option<u32>,
    pub(crate) expired_object_delete_marker: Option<bool>,
}

/// A stored `<NoncurrentVersionExpiration>`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoncurrentVersionExpiration {
    pub(crate) noncurrent_days: Option<u32>,
    pub(crate) newer_noncurrent_versions: Option<u32>,
}

impl XmlElement for LifecycleAnd<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("Prefix", &self.prefix)
            .children("Tag", &self.tags)
            .opt_elem("ObjectSizeGreaterThan", &self.object_size_greater_than)
            .opt_elem("ObjectSizeLessThan", &self.object_size_less_than);
    }
}

impl XmlElement for LifecycleFilter<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        match self {
            LifecycleFilter::All => w,
            LifecycleFilter::Prefix(prefix) => w.elem("Prefix", prefix),
            LifecycleFilter::Tag(tag) => w.child("Tag", tag),
            LifecycleFilter::ObjectSizeGreaterThan(size) => w.elem("ObjectSizeGreaterThan", size),
            LifecycleFilter::ObjectSizeLessThan(size) => w.elem("ObjectSizeLessThan", size),
            LifecycleFilter::And(and) => w.child("And", and),
        };
    }
}

impl XmlElement for LifecycleExpiration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("Date", &self.date)
            .opt_elem("Days", &self.days)
            .opt_elem(
                "ExpiredObjectDeleteMarker",
                &self.expired_object_delete_marker,
            );
    }
}

impl XmlElement for NoncurrentVersionExpiration {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("NoncurrentDays", &self.noncurrent_days)
            .opt_elem("NewerNoncurrentVersions", &self.newer_noncurrent_versions);
    }
}

/// `<AbortIncompleteMultipartUpload>` around its one number.
struct AbortIncompleteMultipartUpload(u32);

impl XmlElement for AbortIncompleteMultipartUpload {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("DaysAfterInitiation", &self.0);
    }
}

impl XmlElement for LifecycleRule<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("ID", &self.id)
            .opt_elem("Prefix", &self.prefix)
            .opt_child("Filter", &self.filter)
            .elem("Status", &self.status)
            .opt_child("Expiration", &self.expiration)
            .opt_child(
                "NoncurrentVersionExpiration",
                &self.noncurrent_version_expiration,
            )
            .opt_child(
                "AbortIncompleteMultipartUpload",
                &self
                    .abort_incomplete_multipart_upload_days
                    .map(AbortIncompleteMultipartUpload),
            );
    }
}

impl XmlElement for LifecycleConfiguration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("Rule", &self.rules);
    }
}

impl XmlDocument for LifecycleConfiguration<'_> {
    fn root(&self) -> &'static str {
        "LifecycleConfiguration"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::KEY;
    use crate::xml::writer::S3_XMLNS;
    use crate::xml::{parse, to_xml};

    fn one_rule(rule_xml: &str) -> LifecycleRuleDoc {
        let doc: LifecycleConfigurationDoc = parse(&format!(
            "<LifecycleConfiguration><Rule>{rule_xml}</Rule></LifecycleConfiguration>"
        ))
        .unwrap();
        assert_eq!(doc.rules.len(), 1);
        doc.rules.into_iter().next().unwrap()
    }

    fn tags(tags: &[TagDoc]) -> Vec<(&str, &str)> {
        tags.iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect()
    }

    /// What boto3 sends for a rule with a prefix filter, an expiration,
    /// noncurrent expiration and multipart abort: namespaced, no
    /// whitespace, members in botocore's order.
    #[test]
    fn parses_what_boto3_sends() {
        let doc: LifecycleConfigurationDoc = parse(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LifecycleConfiguration xmlns=\"{S3_XMLNS}\"><Rule><Expiration><Days>30</Days></Expiration><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule><Rule><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration><ID>markers</ID><Filter><Prefix></Prefix></Filter><Status>Disabled</Status></Rule></LifecycleConfiguration>"
        ))
        .unwrap();
        assert_eq!(doc.rules.len(), 2);
        let logs = &doc.rules[0];
        assert_eq!(logs.id.as_deref(), Some("logs"));
        assert_eq!(logs.status.as_deref(), Some("Enabled"));
        assert!(logs.prefix.is_none());
        let filter = logs.filter.as_ref().unwrap();
        assert_eq!(filter.prefix.as_deref(), Some("logs/"));
        assert!(filter.tags.is_empty() && filter.and.is_none());
        let expiration = logs.expiration.as_ref().unwrap();
        assert_eq!(expiration.days, Some(30));
        assert!(expiration.date.is_none() && expiration.expired_object_delete_marker.is_none());
        let noncurrent = logs.noncurrent_version_expiration.as_ref().unwrap();
        assert_eq!(noncurrent.noncurrent_days, Some(7));
        assert_eq!(noncurrent.newer_noncurrent_versions, Some(3));
        let abort = logs.abort_incomplete_multipart_upload.as_ref().unwrap();
        assert_eq!(abort.days_after_initiation, Some(2));
        assert!(logs.transitions.is_empty() && logs.noncurrent_version_transitions.is_empty());

        let markers = &doc.rules[1];
        assert_eq!(markers.status.as_deref(), Some("Disabled"));
        let expiration = markers.expiration.as_ref().unwrap();
        assert_eq!(expiration.expired_object_delete_marker, Some(true));
        // An empty prefix inside a filter is present, and empty.
        let filter = markers.filter.as_ref().unwrap();
        assert_eq!(filter.prefix.as_deref(), Some(""));
    }

    /// `<Filter/>` (present, matches every key) is not an absent filter;
    /// neither is a filter holding only whitespace.
    #[test]
    fn empty_filter_is_present() {
        for empty in ["<Filter/>", "<Filter></Filter>", "<Filter>\n    </Filter>"] {
            let rule = one_rule(&format!(
                "<ID>all</ID>{empty}<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
            ));
            let filter = rule.filter.expect(empty);
            assert!(filter.prefix.is_none(), "{empty}");
            assert!(filter.tags.is_empty() && filter.and.is_none(), "{empty}");
            assert!(filter.object_size_greater_than.is_none(), "{empty}");
            assert!(filter.object_size_less_than.is_none(), "{empty}");
        }
        let rule = one_rule("<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>");
        assert!(rule.filter.is_none() && rule.prefix.is_none());
    }

    /// The pre-Filter form: `<Prefix>` directly under `<Rule>`, empty or
    /// not, kept apart from a filter's prefix; both at once reach the
    /// handler (which answers MalformedXML).
    #[test]
    fn legacy_prefix_is_kept_apart() {
        let rule = one_rule(
            "<ID>old</ID><Prefix>tmp/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
        );
        assert_eq!(rule.prefix.as_deref(), Some("tmp/"));
        assert!(rule.filter.is_none());
        for empty in ["<Prefix/>", "<Prefix></Prefix>"] {
            let rule = one_rule(&format!(
                "{empty}<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
            ));
            assert_eq!(rule.prefix.as_deref(), Some(""), "{empty}");
        }
        let both = one_rule(
            "<Prefix>a/</Prefix><Filter><Prefix>b/</Prefix></Filter><Status>Enabled</Status>",
        );
        assert_eq!(both.prefix.as_deref(), Some("a/"));
        assert_eq!(both.filter.unwrap().prefix.as_deref(), Some("b/"));
    }

    /// Every filter form S3 defines, indented as people write them by hand.
    #[test]
    fn parses_every_filter_form() {
        let rule = one_rule(
            "\n  <Filter>\n    <Tag>\n      <Key>k</Key>\n      <Value>v&amp;w</Value>\n    </Tag>\n  </Filter>\n  <Status>Enabled</Status>\n",
        );
        assert_eq!(tags(&rule.filter.unwrap().tags), vec![("k", "v&w")]);

        let rule = one_rule("<Filter><ObjectSizeGreaterThan>500</ObjectSizeGreaterThan></Filter>");
        assert_eq!(rule.filter.unwrap().object_size_greater_than, Some(500));
        let rule =
            one_rule("<Filter><ObjectSizeLessThan>5497558138880</ObjectSizeLessThan></Filter>");
        assert_eq!(
            rule.filter.unwrap().object_size_less_than,
            Some(5_497_558_138_880)
        );

        let rule = one_rule(
            "<Filter>\n  <And>\n    <Prefix>key-prefix</Prefix>\n    <Tag><Key>key1</Key><Value>value1</Value></Tag>\n    <Tag><Key>key2</Key><Value>value2</Value></Tag>\n    <Tag><Key>key3</Key><Value></Value></Tag>\n    <ObjectSizeGreaterThan>500</ObjectSizeGreaterThan>\n    <ObjectSizeLessThan>64000</ObjectSizeLessThan>\n  </And>\n</Filter>",
        );
        let filter = rule.filter.unwrap();
        assert!(filter.prefix.is_none() && filter.tags.is_empty());
        let and = filter.and.unwrap();
        assert_eq!(and.prefix.as_deref(), Some("key-prefix"));
        assert_eq!(
            tags(&and.tags),
            vec![("key1", "value1"), ("key2", "value2"), ("key3", "")]
        );
        assert_eq!(and.object_size_greater_than, Some(500));
        assert_eq!(and.object_size_less_than, Some(64000));

        // Two conditions side by side without And: parsed as sent, for the
        // handler to refuse.
        let rule = one_rule(
            "<Filter><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><Tag><Key>l</Key><Value>w</Value></Tag></Filter>",
        );
        let filter = rule.filter.unwrap();
        assert_eq!(filter.prefix.as_deref(), Some("p/"));
        assert_eq!(tags(&filter.tags), vec![("k", "v"), ("l", "w")]);
    }

    #[test]
    fn parses_expiration_forms_and_values_for_the_handler() {
        let rule = one_rule("<Expiration><Date>2026-01-02T00:00:00.000Z</Date></Expiration>");
        let expiration = rule.expiration.unwrap();
        assert_eq!(expiration.date.as_deref(), Some("2026-01-02T00:00:00.000Z"));
        assert!(expiration.days.is_none());

        // Values S3 refuses with InvalidArgument still parse.
        let rule = one_rule(
            "<Expiration><Days>0</Days><Date>2026-01-02T10:00:00Z</Date><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration><NoncurrentVersionExpiration><NoncurrentDays>-1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
        );
        let expiration = rule.expiration.unwrap();
        assert_eq!(expiration.days, Some(0));
        assert_eq!(expiration.date.as_deref(), Some("2026-01-02T10:00:00Z"));
        assert_eq!(expiration.expired_object_delete_marker, Some(false));
        let noncurrent = rule.noncurrent_version_expiration.unwrap();
        assert_eq!(noncurrent.noncurrent_days, Some(-1));
        assert_eq!(noncurrent.newer_noncurrent_versions, Some(101));
        assert_eq!(
            rule.abort_incomplete_multipart_upload
                .unwrap()
                .days_after_initiation,
            Some(0)
        );

        // Empty actions are present, with nothing set.
        let rule = one_rule(
            "<Expiration/><NoncurrentVersionExpiration/><AbortIncompleteMultipartUpload/>",
        );
        let expiration = rule.expiration.unwrap();
        assert!(expiration.days.is_none() && expiration.date.is_none());
        assert!(rule.noncurrent_version_expiration.is_some());
        assert!(rule.abort_incomplete_multipart_upload.is_some());
    }

    #[test]
    fn captures_transitions_for_refusal() {
        let rule = one_rule(
            "<ID>archive</ID><Filter/><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition><Transition><Date>2027-01-01T00:00:00Z</Date><StorageClass>GLACIER</StorageClass><Future>x</Future></Transition><NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays><StorageClass>GLACIER</StorageClass><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionTransition>",
        );
        assert_eq!(rule.transitions.len(), 2);
        assert_eq!(rule.transitions[0].days.as_deref(), Some("30"));
        assert_eq!(
            rule.transitions[1].storage_class.as_deref(),
            Some("GLACIER")
        );
        assert_eq!(
            rule.transitions[1].date.as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
        assert_eq!(rule.noncurrent_version_transitions.len(), 1);
        let noncurrent = &rule.noncurrent_version_transitions[0];
        assert_eq!(noncurrent.noncurrent_days.as_deref(), Some("30"));
        assert_eq!(noncurrent.newer_noncurrent_versions.as_deref(), Some("2"));
        assert_eq!(noncurrent.storage_class.as_deref(), Some("GLACIER"));
    }

    #[test]
    fn parses_many_rules_in_order() {
        let body: String = (0..1001)
            .map(|i| format!("<Rule><ID>r{i}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"))
            .collect();
        let doc: LifecycleConfigurationDoc = parse(&format!(
            "<LifecycleConfiguration>{body}</LifecycleConfiguration>"
        ))
        .unwrap();
        // The 1,000-rule limit is the handler's to enforce.
        assert_eq!(doc.rules.len(), 1001);
        assert_eq!(doc.rules[1000].id.as_deref(), Some("r1000"));
        let empty: LifecycleConfigurationDoc = parse("<LifecycleConfiguration/>").unwrap();
        assert!(empty.rules.is_empty());
    }

    /// Unknown elements are refused (MalformedXML) at every level but in
    /// transitions; so are numbers that are not numbers of AWS's type,
    /// and booleans that are not booleans.
    #[test]
    fn refuses_what_s3_schema_refuses() {
        let good =
            "<Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>";
        assert!(
            parse::<LifecycleConfigurationDoc>(&format!(
                "<LifecycleConfiguration>{good}</LifecycleConfiguration>"
            ))
            .is_ok()
        );
        for bad in [
            "<LifecycleConfiguration><Rules/></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Priority>1</Priority></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Filter><Suffix>.log</Suffix></Filter></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Filter><And><Suffix>.log</Suffix></And></Filter></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Expiration><Hours>1</Hours></Expiration></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Expiration><Days>one</Days></Expiration></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Expiration><Days>1.5</Days></Expiration></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Expiration><Days>4294967296</Days></Expiration></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker></Expiration></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Filter><ObjectSizeLessThan>5TB</ObjectSizeLessThan></Filter></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><Days>1</Days></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><Filter><Tag><Key>k</Key></Tag></Filter></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule><ID>a</ID><ID>b</ID></Rule></LifecycleConfiguration>",
            "<LifecycleConfiguration><Rule></Rule>",
        ] {
            assert!(parse::<LifecycleConfigurationDoc>(bad).is_err(), "{bad}");
        }
    }

    fn tag(key: &'static str, value: &'static str) -> Tag<'static> {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn lifecycle_configuration_empty() {
        assert_eq!(
            to_xml(&LifecycleConfiguration { rules: vec![] }),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LifecycleConfiguration>"
        );
    }

    #[test]
    fn lifecycle_configuration_rules() {
        let doc = LifecycleConfiguration {
            rules: vec![
                LifecycleRule {
                    id: Some("logs".into()),
                    prefix: None,
                    filter: Some(LifecycleFilter::Prefix("logs/".into())),
                    status: "Enabled".into(),
                    expiration: Some(LifecycleExpiration {
                        date: None,
                        days: Some(30),
                        expired_object_delete_marker: None,
                    }),
                    noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                        noncurrent_days: Some(7),
                        newer_noncurrent_versions: Some(3),
                    }),
                    abort_incomplete_multipart_upload_days: Some(2),
                },
                LifecycleRule {
                    id: Some("everything".into()),
                    prefix: None,
                    filter: Some(LifecycleFilter::All),
                    status: "Disabled".into(),
                    expiration: Some(LifecycleExpiration {
                        date: None,
                        days: None,
                        expired_object_delete_marker: Some(true),
                    }),
                    noncurrent_version_expiration: None,
                    abort_incomplete_multipart_upload_days: None,
                },
                LifecycleRule {
                    id: None,
                    prefix: Some("".into()),
                    filter: None,
                    status: "Enabled".into(),
                    expiration: Some(LifecycleExpiration {
                        date: Some("2026-01-02T00:00:00.000Z".into()),
                        days: None,
                        expired_object_delete_marker: None,
                    }),
                    noncurrent_version_expiration: None,
                    abort_incomplete_multipart_upload_days: None,
                },
            ],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule><Rule><ID>everything</ID><Filter></Filter><Status>Disabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule><Rule><Prefix></Prefix><Status>Enabled</Status><Expiration><Date>2026-01-02T00:00:00.000Z</Date></Expiration></Rule></LifecycleConfiguration>"
        );
    }

    #[test]
    fn lifecycle_configuration_filters() {
        let rule = |filter| LifecycleRule {
            id: Some("r&1".into()),
            prefix: None,
            filter: Some(filter),
            status: "Enabled".into(),
            expiration: Some(LifecycleExpiration {
                date: None,
                days: Some(1),
                expired_object_delete_marker: None,
            }),
            noncurrent_version_expiration: None,
            abort_incomplete_multipart_upload_days: None,
        };
        let doc = LifecycleConfiguration {
            rules: vec![
                rule(LifecycleFilter::Tag(tag(KEY, "v<"))),
                rule(LifecycleFilter::ObjectSizeGreaterThan(500)),
                rule(LifecycleFilter::ObjectSizeLessThan(5_497_558_138_880)),
                rule(LifecycleFilter::And(LifecycleAnd {
                    prefix: Some("p&/".into()),
                    tags: vec![tag("k1", "v1"), tag("k2", "")],
                    object_size_greater_than: Some(500),
                    object_size_less_than: Some(64000),
                })),
                rule(LifecycleFilter::And(LifecycleAnd {
                    prefix: None,
                    tags: vec![tag("k1", "v1"), tag("k2", "v2")],
                    object_size_greater_than: None,
                    object_size_less_than: None,
                })),
            ],
        };
        let rule_xml = |filter: &str| {
            format!(
                "<Rule><ID>r&amp;1</ID><Filter>{filter}</Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
            )
        };
        let expected = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}{}{}{}{}</LifecycleConfiguration>",
            rule_xml(
                "<Tag><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><Value>v&lt;</Value></Tag>"
            ),
            rule_xml("<ObjectSizeGreaterThan>500</ObjectSizeGreaterThan>"),
            rule_xml("<ObjectSizeLessThan>5497558138880</ObjectSizeLessThan>"),
            rule_xml(
                "<And><Prefix>p&amp;/</Prefix><Tag><Key>k1</Key><Value>v1</Value></Tag><Tag><Key>k2</Key><Value></Value></Tag><ObjectSizeGreaterThan>500</ObjectSizeGreaterThan><ObjectSizeLessThan>64000</ObjectSizeLessThan></And>"
            ),
            rule_xml(
                "<And><Tag><Key>k1</Key><Value>v1</Value></Tag><Tag><Key>k2</Key><Value>v2</Value></Tag></And>"
            ),
        );
        assert_eq!(to_xml(&doc), expected);
    }

    /// What Cairn writes back, Cairn reads the same way.
    #[test]
    fn written_configuration_parses_back() {
        let doc = LifecycleConfiguration {
            rules: vec![LifecycleRule {
                id: Some("r".into()),
                prefix: None,
                filter: Some(LifecycleFilter::And(LifecycleAnd {
                    prefix: Some("p/".into()),
                    tags: vec![tag("k", "v")],
                    object_size_greater_than: None,
                    object_size_less_than: Some(10),
                })),
                status: "Enabled".into(),
                expiration: None,
                noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                    noncurrent_days: Some(5),
                    newer_noncurrent_versions: None,
                }),
                abort_incomplete_multipart_upload_days: Some(1),
            }],
        };
        let back: LifecycleConfigurationDoc = parse(&to_xml(&doc)).unwrap();
        let rule = &back.rules[0];
        let and = rule.filter.as_ref().unwrap().and.as_ref().unwrap();
        assert_eq!(and.prefix.as_deref(), Some("p/"));
        assert_eq!(tags(&and.tags), vec![("k", "v")]);
        assert_eq!(and.object_size_less_than, Some(10));
        assert_eq!(
            rule.noncurrent_version_expiration
                .as_ref()
                .unwrap()
                .noncurrent_days,
            Some(5)
        );
    }
}
