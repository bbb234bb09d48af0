//! Object Lock documents: `<ObjectLockConfiguration>` (Get/Put
//! ObjectLockConfiguration on a bucket), `<Retention>` (Get/Put
//! ObjectRetention) and `<LegalHold>` (Get/Put ObjectLegalHold).
//!
//! Numbers in request documents are parsed as AWS's 32-bit `Integer`: a
//! value that is not a number (or does not fit) fails [`super::parse`], so
//! the handler answers `MalformedXML`, as S3 does for a document that does
//! not validate against its schema; zero and negative numbers parse, since
//! S3 answers those with `InvalidArgument` instead.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// GetObjectLockConfiguration's answer: `ObjectLockEnabled` (`Enabled`)
/// and, when the bucket has one, its default retention rule.
#[derive(Debug)]
pub(crate) struct ObjectLockConfiguration<'a> {
    pub(crate) object_lock_enabled: Option<XmlText<'a>>,
    /// Written as `<Rule><DefaultRetention>…</DefaultRetention></Rule>`.
    pub(crate) default_retention: Option<DefaultRetention<'a>>,
}

/// A bucket's default retention: a mode and one period.
#[derive(Debug)]
pub(crate) struct DefaultRetention<'a> {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub(crate) mode: XmlText<'a>,
    pub(crate) period: RetentionPeriod,
}

/// A default retention period: S3 holds exactly one of `Days` or `Years`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

impl XmlElement for DefaultRetention<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Mode", &self.mode);
        match self.period {
            RetentionPeriod::Days(days) => w.elem("Days", &days),
            RetentionPeriod::Years(years) => w.elem("Years", &years),
        };
    }
}

/// `<Rule>`: only a wrapper around the default retention.
struct ObjectLockRule<'b, 'a>(&'b DefaultRetention<'a>);

impl XmlElement for ObjectLockRule<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("DefaultRetention", self.0);
    }
}

impl XmlElement for ObjectLockConfiguration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("ObjectLockEnabled", &self.object_lock_enabled);
        if let Some(retention) = &self.default_retention {
            w.child("Rule", &ObjectLockRule(retention));
        }
    }
}

impl XmlDocument for ObjectLockConfiguration<'_> {
    fn root(&self) -> &'static str {
        "ObjectLockConfiguration"
    }
}

/// A PutObjectLockConfiguration body, every element optional so that the
/// handler, not the parser, decides what is missing.
///
/// What AWS does with it (the handler's rules; from Ceph s3-tests and
/// AWS answers quoted in public S3-compatibility threads unless marked
/// "expected"):
/// - Versioning must be `Enabled` on the bucket (a bucket created with
///   `x-amz-bucket-object-lock-enabled: true` has it); otherwise
///   `InvalidBucketState` (409), "Versioning must be 'Enabled' on the
///   bucket to apply a Object Lock configuration". Object Lock cannot be
///   turned off once on.
/// - `ObjectLockEnabled` missing or other than `Enabled` (`Disabled`
///   included): `MalformedXML` (400).
/// - `DefaultRetention` without `Mode`, or `Mode` other than
///   `GOVERNANCE`/`COMPLIANCE` (case-sensitive: `governance` is refused):
///   `MalformedXML`. `Rule` without `DefaultRetention`: `MalformedXML`
///   expected.
/// - Both `Days` and `Years`: `MalformedXML`; neither: `MalformedXML`
///   expected (AWS: "you must select one").
/// - `Days` or `Years` zero or negative: `InvalidArgument` (400), "Default
///   retention period must be a positive integer value.", with
///   `ArgumentName` `Days` (or `Years`).
/// - Too long (S3's maximum is 100 years, 36,500 days): `InvalidArgument`,
///   "Default retention period too large."
/// - A document without `Rule` keeps Object Lock enabled and removes the
///   default retention (expected).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectLockConfigurationDoc {
    /// The namespace SDKs declare on the root (`xmlns="…"`), which the
    /// parser sees as an attribute: accepted, not read.
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "ObjectLockEnabled", default)]
    pub(crate) object_lock_enabled: Option<String>,
    #[serde(rename = "Rule", default)]
    pub(crate) rule: Option<ObjectLockRuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectLockRuleDoc {
    #[serde(rename = "DefaultRetention", default)]
    pub(crate) default_retention: Option<DefaultRetentionDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultRetentionDoc {
    #[serde(rename = "Mode", default)]
    pub(crate) mode: Option<String>,
    #[serde(rename = "Days", default)]
    pub(crate) days: Option<i32>,
    #[serde(rename = "Years", default)]
    pub(crate) years: Option<i32>,
}

/// GetObjectRetention's answer.
#[derive(Debug)]
pub(crate) struct Retention<'a> {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub(crate) mode: XmlText<'a>,
    /// ISO 8601, formatted by the caller (S3 writes
    /// `2026-01-02T03:04:05.006Z`).
    pub(crate) retain_until_date: XmlText<'a>,
}

impl XmlElement for Retention<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Mode", &self.mode)
            .elem("RetainUntilDate", &self.retain_until_date);
    }
}

impl XmlDocument for Retention<'_> {
    fn root(&self) -> &'static str {
        "Retention"
    }
}

/// A PutObjectRetention body, read as sent.
///
/// What AWS does with it (the handler's rules):
/// - The bucket must have Object Lock enabled, else `InvalidRequest`
///   (400), "Bucket is missing Object Lock Configuration".
/// - `Mode` other than `GOVERNANCE`/`COMPLIANCE`: `MalformedXML`.
/// - `RetainUntilDate` is an ISO 8601 timestamp (an unparsable one is
///   expected to be `MalformedXML`, the schema's type) and must be in the
///   future: a past date is `InvalidArgument` (400), "The retain until
///   date must be in the future!".
/// - Shortening a COMPLIANCE retention is `AccessDenied` (403); a
///   GOVERNANCE one may be shortened only with
///   `x-amz-bypass-governance-retention: true`. Lengthening is always
///   allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionDoc {
    /// The namespace SDKs declare on the root (`xmlns="…"`), which the
    /// parser sees as an attribute: accepted, not read.
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "Mode", default)]
    pub(crate) mode: Option<String>,
    #[serde(rename = "RetainUntilDate", default)]
    pub(crate) retain_until_date: Option<String>,
}

/// GetObjectLegalHold's answer.
#[derive(Debug)]
pub(crate) struct LegalHold<'a> {
    /// `ON` or `OFF`.
    pub(crate) status: XmlText<'a>,
}

impl XmlElement for LegalHold<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Status", &self.status);
    }
}

impl XmlDocument for LegalHold<'_> {
    fn root(&self) -> &'static str {
        "LegalHold"
    }
}

/// A PutObjectLegalHold body, read as sent.
///
/// What AWS does with it (the handler's rules):
/// - The bucket must have Object Lock enabled, else `InvalidRequest`
///   (400), "Bucket is missing Object Lock Configuration".
/// - `Status` missing or other than `ON`/`OFF` (case-sensitive):
///   `MalformedXML`.
/// - A legal hold is independent of retention and needs no bypass header
///   to be lifted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LegalHoldDoc {
    /// The namespace SDKs declare on the root (`xmlns="…"`), which the
    /// parser sees as an attribute: accepted, not read.
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "Status", default)]
    pub(crate) status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::writer::S3_XMLNS;
    use crate::xml::{parse, to_xml};

    #[test]
    fn object_lock_configuration_enabled_only() {
        let doc = ObjectLockConfiguration {
            object_lock_enabled: Some("Enabled".into()),
            default_retention: None,
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>"
        );
        let nothing = ObjectLockConfiguration {
            object_lock_enabled: None,
            default_retention: None,
        };
        assert_eq!(
            to_xml(&nothing),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></ObjectLockConfiguration>"
        );
    }

    #[test]
    fn object_lock_configuration_with_default_retention() {
        let days = ObjectLockConfiguration {
            object_lock_enabled: Some("Enabled".into()),
            default_retention: Some(DefaultRetention {
                mode: "GOVERNANCE".into(),
                period: RetentionPeriod::Days(30),
            }),
        };
        assert_eq!(
            to_xml(&days),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>30</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
        );
        let years = ObjectLockConfiguration {
            object_lock_enabled: Some("Enabled".into()),
            default_retention: Some(DefaultRetention {
                mode: "COMPLIANCE".into(),
                period: RetentionPeriod::Years(100),
            }),
        };
        assert_eq!(
            to_xml(&years),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>100</Years></DefaultRetention></Rule></ObjectLockConfiguration>"
        );
    }

    #[test]
    fn parses_object_lock_configuration() {
        // As boto3 sends it: namespaced, Mode before the period.
        let doc: ObjectLockConfigurationDoc = parse(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ObjectLockConfiguration xmlns=\"{S3_XMLNS}\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
        ))
        .unwrap();
        assert_eq!(doc.object_lock_enabled.as_deref(), Some("Enabled"));
        let retention = doc.rule.unwrap().default_retention.unwrap();
        assert_eq!(retention.mode.as_deref(), Some("GOVERNANCE"));
        assert_eq!((retention.days, retention.years), (Some(1), None));

        // Without the namespace, indented, both periods (the handler
        // refuses it), negative values kept for InvalidArgument.
        let doc: ObjectLockConfigurationDoc = parse(
            "<ObjectLockConfiguration>\n  <ObjectLockEnabled>Enabled</ObjectLockEnabled>\n  <Rule>\n    <DefaultRetention>\n      <Years>-1</Years>\n      <Days>0</Days>\n    </DefaultRetention>\n  </Rule>\n</ObjectLockConfiguration>",
        )
        .unwrap();
        let retention = doc.rule.unwrap().default_retention.unwrap();
        assert!(retention.mode.is_none());
        assert_eq!((retention.days, retention.years), (Some(0), Some(-1)));

        // Everything optional: what is missing is the handler's to judge.
        let doc: ObjectLockConfigurationDoc = parse("<ObjectLockConfiguration/>").unwrap();
        assert!(doc.object_lock_enabled.is_none() && doc.rule.is_none());
        let doc: ObjectLockConfigurationDoc =
            parse("<ObjectLockConfiguration><Rule></Rule></ObjectLockConfiguration>").unwrap();
        assert!(doc.rule.unwrap().default_retention.is_none());
    }

    #[test]
    fn object_lock_configuration_refuses_what_s3_schema_refuses() {
        for bad in [
            // Not numbers, or not 32-bit ones.
            "<ObjectLockConfiguration><Rule><DefaultRetention><Days>ten</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
            "<ObjectLockConfiguration><Rule><DefaultRetention><Days>1.5</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
            "<ObjectLockConfiguration><Rule><DefaultRetention><Years>2147483648</Years></DefaultRetention></Rule></ObjectLockConfiguration>",
            // Unknown elements, at each level.
            "<ObjectLockConfiguration><Enabled>true</Enabled></ObjectLockConfiguration>",
            "<ObjectLockConfiguration><Rule><Mode>GOVERNANCE</Mode></Rule></ObjectLockConfiguration>",
            "<ObjectLockConfiguration><Rule><DefaultRetention><Months>1</Months></DefaultRetention></Rule></ObjectLockConfiguration>",
        ] {
            assert!(parse::<ObjectLockConfigurationDoc>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention() {
        let doc = Retention {
            mode: "COMPLIANCE".into(),
            retain_until_date: "2030-01-02T03:04:05.006Z".into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>2030-01-02T03:04:05.006Z</RetainUntilDate></Retention>"
        );
    }

    #[test]
    fn parses_retention() {
        let doc: RetentionDoc = parse(&format!(
            "<Retention xmlns=\"{S3_XMLNS}\"><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-02T00:00:00Z</RetainUntilDate></Retention>"
        ))
        .unwrap();
        assert_eq!(doc.mode.as_deref(), Some("GOVERNANCE"));
        assert_eq!(
            doc.retain_until_date.as_deref(),
            Some("2030-01-02T00:00:00Z")
        );
        let doc: RetentionDoc =
            parse("<Retention>\n  <RetainUntilDate>yesterday</RetainUntilDate>\n</Retention>")
                .unwrap();
        assert!(doc.mode.is_none());
        assert_eq!(doc.retain_until_date.as_deref(), Some("yesterday"));
        let empty: RetentionDoc = parse("<Retention/>").unwrap();
        assert!(empty.mode.is_none() && empty.retain_until_date.is_none());
        assert!(parse::<RetentionDoc>("<Retention><Days>1</Days></Retention>").is_err());
    }

    #[test]
    fn legal_hold() {
        let doc = LegalHold {
            status: "ON".into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>ON</Status></LegalHold>"
        );
    }

    #[test]
    fn parses_legal_hold() {
        let doc: LegalHoldDoc = parse(&format!(
            "<LegalHold xmlns=\"{S3_XMLNS}\"><Status>OFF</Status></LegalHold>"
        ))
        .unwrap();
        assert_eq!(doc.status.as_deref(), Some("OFF"));
        let doc: LegalHoldDoc = parse("<LegalHold>\n  <Status>on</Status>\n</LegalHold>").unwrap();
        assert_eq!(doc.status.as_deref(), Some("on"));
        let empty: LegalHoldDoc = parse("<LegalHold/>").unwrap();
        assert!(empty.status.is_none());
        assert!(
            parse::<LegalHoldDoc>("<LegalHold><Status>ON</Status><Until/></LegalHold>").is_err()
        );
    }
}
