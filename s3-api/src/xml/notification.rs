//! The notification configuration document (PutBucketNotificationConfiguration's
//! body, GetBucketNotificationConfiguration's answer).

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::XmlText;
use super::writer::{ElementWriter, XmlDocument, XmlElement};

/// `<NotificationConfiguration>` as a request sends it. Elements S3's
/// schema does not define are refused (`MalformedXML`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationConfigurationDoc {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "TopicConfiguration", default)]
    pub(crate) topics: Vec<DestinationDoc>,
    #[serde(rename = "QueueConfiguration", default)]
    pub(crate) queues: Vec<DestinationDoc>,
    #[serde(rename = "CloudFunctionConfiguration", default)]
    pub(crate) functions: Vec<DestinationDoc>,
    #[serde(rename = "EventBridgeConfiguration", default)]
    pub(crate) event_bridge: Option<IgnoredAny>,
}

/// One `<TopicConfiguration>`, `<QueueConfiguration>` or
/// `<CloudFunctionConfiguration>`; its destination element is the one its
/// kind names (the handler checks which is present).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationDoc {
    #[serde(rename = "Id", default)]
    pub(crate) id: Option<String>,
    #[serde(rename = "Topic", default)]
    pub(crate) topic: Option<String>,
    #[serde(rename = "Queue", default)]
    pub(crate) queue: Option<String>,
    #[serde(rename = "CloudFunction", default)]
    pub(crate) cloud_function: Option<String>,
    #[serde(rename = "Event", default)]
    pub(crate) events: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub(crate) filter: Option<FilterDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterDoc {
    #[serde(rename = "S3Key", default)]
    pub(crate) key: Option<S3KeyDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct S3KeyDoc {
    #[serde(rename = "FilterRule", default)]
    pub(crate) rules: Vec<FilterRuleDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterRuleDoc {
    #[serde(rename = "Name", default)]
    pub(crate) name: String,
    #[serde(rename = "Value", default)]
    pub(crate) value: String,
}

/// GetBucketNotificationConfiguration's answer: topics, then queues, then
/// functions (S3's schema order), each in the order they were set.
#[derive(Debug, Default)]
pub(crate) struct NotificationConfiguration<'a> {
    pub(crate) topics: Vec<Destination<'a>>,
    pub(crate) queues: Vec<Destination<'a>>,
    pub(crate) functions: Vec<Destination<'a>>,
}

/// One configuration: `Id`, the destination (`Topic`, `Queue` or
/// `CloudFunction`), its `Event`s, and a `Filter` when it has a rule.
#[derive(Debug)]
pub(crate) struct Destination<'a> {
    pub(crate) id: XmlText<'a>,
    /// `Topic`, `Queue` or `CloudFunction`.
    pub(crate) element: &'static str,
    pub(crate) arn: XmlText<'a>,
    pub(crate) events: Vec<XmlText<'a>>,
    pub(crate) prefix: Option<XmlText<'a>>,
    pub(crate) suffix: Option<XmlText<'a>>,
}

struct FilterRule<'a> {
    name: &'static str,
    value: &'a XmlText<'a>,
}

impl XmlElement for FilterRule<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Name", &XmlText::from(self.name))
            .elem("Value", self.value);
    }
}

struct S3Key<'a>(Vec<FilterRule<'a>>);

impl XmlElement for S3Key<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("FilterRule", &self.0);
    }
}

struct Filter<'a>(S3Key<'a>);

impl XmlElement for Filter<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("S3Key", &self.0);
    }
}

impl XmlElement for Destination<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Id", &self.id).elem(self.element, &self.arn);
        for e in &self.events {
            w.elem("Event", e);
        }
        let mut rules = Vec::new();
        if let Some(p) = &self.prefix {
            rules.push(FilterRule {
                name: "prefix",
                value: p,
            });
        }
        if let Some(s) = &self.suffix {
            rules.push(FilterRule {
                name: "suffix",
                value: s,
            });
        }
        if !rules.is_empty() {
            w.child("Filter", &Filter(S3Key(rules)));
        }
    }
}

impl XmlElement for NotificationConfiguration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("TopicConfiguration", &self.topics)
            .children("QueueConfiguration", &self.queues)
            .children("CloudFunctionConfiguration", &self.functions);
    }
}

impl XmlDocument for NotificationConfiguration<'_> {
    fn root(&self) -> &'static str {
        "NotificationConfiguration"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::writer::S3_XMLNS;
    use crate::xml::{parse, to_xml};

    /// What boto3 sends for `put_bucket_notification_configuration` with a
    /// queue configuration filtered by prefix and suffix.
    #[test]
    fn parses_what_boto3_sends() {
        let doc: NotificationConfigurationDoc = parse(&format!(
            "<NotificationConfiguration xmlns=\"{S3_XMLNS}\"><QueueConfiguration><Id>new-readings</Id><Queue>arn:cairn:sqs:us-east-1:cairn:hook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>in/</Value></FilterRule><FilterRule><Name>suffix</Name><Value>.json</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>"
        ))
        .unwrap();
        assert_eq!(doc.queues.len(), 1);
        let q = &doc.queues[0];
        assert_eq!(q.id.as_deref(), Some("new-readings"));
        assert_eq!(
            q.queue.as_deref(),
            Some("arn:cairn:sqs:us-east-1:cairn:hook")
        );
        assert_eq!(q.events, ["s3:ObjectCreated:*"]);
        let rules = &q.filter.as_ref().unwrap().key.as_ref().unwrap().rules;
        assert_eq!(
            (rules[1].name.as_str(), rules[1].value.as_str()),
            ("suffix", ".json")
        );
        // The empty document removes every configuration.
        let empty: NotificationConfigurationDoc = parse("<NotificationConfiguration/>").unwrap();
        assert!(empty.topics.is_empty() && empty.queues.is_empty() && empty.event_bridge.is_none());
        assert!(
            parse::<NotificationConfigurationDoc>(
                "<NotificationConfiguration><Other/></NotificationConfiguration>"
            )
            .is_err()
        );
    }

    #[test]
    fn writes_s3s_document() {
        let doc = NotificationConfiguration {
            topics: vec![Destination {
                id: "t".into(),
                element: "Topic",
                arn: "arn:cairn:sns:us-east-1:cairn:mqtt".into(),
                events: vec!["s3:ObjectRemoved:*".into()],
                prefix: None,
                suffix: None,
            }],
            queues: vec![Destination {
                id: "q".into(),
                element: "Queue",
                arn: "arn:cairn:sqs:us-east-1:cairn:hook".into(),
                events: vec!["s3:ObjectCreated:Put".into()],
                prefix: Some("in/".into()),
                suffix: Some(".json".into()),
            }],
            functions: Vec::new(),
        };
        assert_eq!(
            to_xml(&doc),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NotificationConfiguration xmlns=\"{S3_XMLNS}\"><TopicConfiguration><Id>t</Id><Topic>arn:cairn:sns:us-east-1:cairn:mqtt</Topic><Event>s3:ObjectRemoved:*</Event></TopicConfiguration><QueueConfiguration><Id>q</Id><Queue>arn:cairn:sqs:us-east-1:cairn:hook</Queue><Event>s3:ObjectCreated:Put</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>in/</Value></FilterRule><FilterRule><Name>suffix</Name><Value>.json</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>"
            )
        );
    }
}
