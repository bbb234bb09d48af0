//! PutBucketNotificationConfiguration and GetBucketNotificationConfiguration:
//! which object changes of a bucket are announced to which of the server's
//! notification targets.
//!
//! Owns: validating S3's document (destinations name targets this server
//! has, events Cairn announces, filters, no overlap) and turning it into
//! the engine's rules (`cairn_storage_engine::notifications`), and back.
//! Must never: store a configuration naming a target the server does not
//! have, or accept an event type Cairn would never announce (a wrong
//! success: the client would wait for events that never come).

use std::sync::Arc;

use cairn_storage_engine::notifications::{
    DestinationKind, EVENT_TYPES_PER_RULE_MAX, NotificationRule, NotificationRules, ObjectEvent,
    RULES_MAX, event_type_matches,
};
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, xml_response};
use crate::xml::{
    Destination, DestinationDoc, NotificationConfiguration, NotificationConfigurationDoc, parse,
    to_xml,
};

use super::read_xml_body;

/// Event types S3 defines that Cairn never announces.
const UNANNOUNCED_EVENT_PREFIXES: &[&str] = &[
    "s3:ObjectRestore:",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:",
    "s3:LifecycleExpiration:",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:",
    "s3:ObjectAcl:",
];

/// Longest prefix or suffix of a filter (S3's key length).
const FILTER_VALUE_MAX_BYTES: usize = 1024;

pub(crate) async fn put_bucket_notification_configuration(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    // Fails with NoSuchBucket before the body is read.
    svc.engine.bucket_info(&bucket)?;
    let (text, _) = read_xml_body(ctx, body).await?;
    let doc: NotificationConfigurationDoc =
        parse(&text).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let rules = rules_from(&doc, &svc.config.notify_targets)?;
    svc.engine.set_notification_rules(&bucket, &rules).await?;
    crate::response::empty_response(StatusCode::OK)
}

pub(crate) fn get_bucket_notification_configuration(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let rules = svc.engine.notification_rules(ctx.bucket()?)?;
    let mut doc = NotificationConfiguration::default();
    for r in &rules.rules {
        let (list, element) = match r.kind {
            DestinationKind::Topic => (&mut doc.topics, "Topic"),
            DestinationKind::Queue => (&mut doc.queues, "Queue"),
            DestinationKind::CloudFunction => (&mut doc.functions, "CloudFunction"),
        };
        list.push(Destination {
            id: r.id.as_str().into(),
            element,
            arn: r.arn.as_str().into(),
            events: r.events.iter().map(|e| e.as_str().into()).collect(),
            prefix: (!r.prefix.is_empty()).then(|| r.prefix.as_str().into()),
            suffix: (!r.suffix.is_empty()).then(|| r.suffix.as_str().into()),
        });
    }
    xml_response(StatusCode::OK, to_xml(&doc))
}

fn invalid(message: impl Into<String>, name: &str, value: &str) -> S3Error {
    S3Error::invalid_argument(message, name, value)
}

/// The engine's rules for a valid document; S3's errors otherwise.
fn rules_from(
    doc: &NotificationConfigurationDoc,
    targets: &[String],
) -> S3Result<NotificationRules> {
    if doc.event_bridge.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "EventBridgeConfiguration is not supported by this server; use a Topic or Queue configuration naming one of its notification targets.",
        ));
    }
    let configs = doc
        .topics
        .iter()
        .map(|d| (DestinationKind::Topic, d))
        .chain(doc.queues.iter().map(|d| (DestinationKind::Queue, d)))
        .chain(
            doc.functions
                .iter()
                .map(|d| (DestinationKind::CloudFunction, d)),
        );
    let mut rules: Vec<NotificationRule> = Vec::new();
    for (kind, d) in configs {
        if rules.len() >= RULES_MAX {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("A bucket may have at most {RULES_MAX} notification configurations."),
            ));
        }
        rules.push(rule_from(kind, d, targets)?);
    }
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(
            "Configuration IDs must be unique within a notification configuration.",
            "Id",
            w[0],
        ));
    }
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if overlap(a, b) {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                ));
            }
        }
    }
    Ok(NotificationRules { rules })
}

fn rule_from(
    kind: DestinationKind,
    d: &DestinationDoc,
    targets: &[String],
) -> S3Result<NotificationRule> {
    let (element, arn, others) = match kind {
        DestinationKind::Topic => ("Topic", &d.topic, [&d.queue, &d.cloud_function]),
        DestinationKind::Queue => ("Queue", &d.queue, [&d.topic, &d.cloud_function]),
        DestinationKind::CloudFunction => {
            ("CloudFunction", &d.cloud_function, [&d.topic, &d.queue])
        }
    };
    if others.iter().any(|o| o.is_some()) {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let Some(arn) = arn.as_deref().map(str::trim) else {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            format!("A configuration must name its {element}."),
        ));
    };
    let target = target_of(arn, targets).ok_or_else(|| {
        invalid(
            "Unable to validate the following destination configurations",
            arn,
            "The destination is not a notification target of this server (see `cairn admin status`).",
        )
    })?;
    if d.events.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "A configuration must name at least one Event.",
        ));
    }
    let mut events: Vec<String> = Vec::new();
    for e in &d.events {
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    if events.len() > EVENT_TYPES_PER_RULE_MAX {
        return Err(invalid(
            format!("A configuration may name at most {EVENT_TYPES_PER_RULE_MAX} event types."),
            "Event",
            "",
        ));
    }
    for e in &d.events {
        let announced = ObjectEvent::ALL
            .iter()
            .any(|ev| event_type_matches(e, *ev).is_some());
        if announced {
            continue;
        }
        if UNANNOUNCED_EVENT_PREFIXES.iter().any(|p| e.starts_with(p)) {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                format!(
                    "The event {} is not announced by this server (it announces s3:ObjectCreated:* and s3:ObjectRemoved:Delete/DeleteMarkerCreated).",
                    crate::audit::capped(e)
                ),
            ));
        }
        return Err(invalid(
            "The event is not supported for notifications",
            "Event",
            crate::audit::capped(e),
        ));
    }
    let mut prefix: Option<String> = None;
    let mut suffix: Option<String> = None;
    let rules = d
        .filter
        .as_ref()
        .and_then(|f| f.key.as_ref())
        .map(|k| k.rules.as_slice())
        .unwrap_or_default();
    for r in rules {
        let slot = match r.name.to_ascii_lowercase().as_str() {
            "prefix" => &mut prefix,
            "suffix" => &mut suffix,
            _ => {
                return Err(invalid(
                    "filter rule name must be either prefix or suffix",
                    "FilterRule",
                    crate::audit::capped(&r.name),
                ));
            }
        };
        if slot.is_some() {
            return Err(invalid(
                format!(
                    "Cannot specify more than one {} rule in a filter.",
                    r.name.to_ascii_lowercase()
                ),
                "FilterRule",
                crate::audit::capped(&r.name),
            ));
        }
        if r.value.len() > FILTER_VALUE_MAX_BYTES {
            return Err(invalid(
                "The filter rule value is too long.",
                "FilterRule",
                crate::audit::capped(&r.value),
            ));
        }
        *slot = Some(r.value.clone());
    }
    let id = match d.id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => {
            if id.len() > 255 {
                return Err(invalid(
                    "The Id is too long.",
                    "Id",
                    crate::audit::capped(id),
                ));
            }
            id.to_owned()
        }
        // S3 assigns one.
        _ => format!(
            "cairn-{}",
            hex::encode(cairn_storage_engine::random_bytes::<8>())
        ),
    };
    Ok(NotificationRule {
        id,
        kind,
        arn: arn.to_owned(),
        target,
        events,
        prefix: prefix.unwrap_or_default(),
        suffix: suffix.unwrap_or_default(),
    })
}

/// The server's target an ARN names: `arn:cairn:<service>:<region>:<account>:<name>`,
/// the service one of S3's destination services.
fn target_of(arn: &str, targets: &[String]) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            "cairn",
            "sqs" | "sns" | "lambda",
            _region,
            _account,
            name,
        ] => targets.iter().find(|t| t == name).cloned(),
        _ => None,
    }
}

/// Whether two configurations could both announce one change, as S3
/// judges it: a common event type, and filters that one key can meet
/// (each prefix a prefix of the other's, each suffix a suffix of the other's).
fn overlap(a: &NotificationRule, b: &NotificationRule) -> bool {
    let common_event = ObjectEvent::ALL.iter().any(|ev| {
        a.events
            .iter()
            .any(|t| event_type_matches(t, *ev) == Some(true))
            && b.events
                .iter()
                .any(|t| event_type_matches(t, *ev) == Some(true))
    });
    let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
    common_event && prefixes && suffixes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::DestinationDoc;

    fn doc(queues: Vec<DestinationDoc>) -> NotificationConfigurationDoc {
        crate::xml::parse::<NotificationConfigurationDoc>("<NotificationConfiguration/>")
            .map(|mut d| {
                d.queues = queues;
                d
            })
            .unwrap()
    }

    fn queue(id: &str, events: &[&str], prefix: &str, suffix: &str) -> DestinationDoc {
        let mut rules = Vec::new();
        for (name, value) in [("prefix", prefix), ("suffix", suffix)] {
            if !value.is_empty() {
                rules.push(crate::xml::FilterRuleDoc {
                    name: name.into(),
                    value: value.into(),
                });
            }
        }
        DestinationDoc {
            id: Some(id.into()),
            queue: Some("arn:cairn:sqs:us-east-1:cairn:hook".into()),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            filter: Some(crate::xml::FilterDoc {
                key: Some(crate::xml::S3KeyDoc { rules }),
            }),
            ..Default::default()
        }
    }

    fn targets() -> Vec<String> {
        vec!["hook".into()]
    }

    #[test]
    fn valid_documents_become_rules() {
        let r = rules_from(
            &doc(vec![
                queue("a", &["s3:ObjectCreated:*"], "in/", ".json"),
                queue("b", &["s3:ObjectCreated:*"], "out/", ""),
                queue("c", &["s3:ObjectRemoved:*"], "in/", ""),
            ]),
            &targets(),
        )
        .unwrap();
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.rules[0].target, "hook");
        assert_eq!(
            (r.rules[0].prefix.as_str(), r.rules[0].suffix.as_str()),
            ("in/", ".json")
        );
    }

    #[test]
    fn invalid_documents_get_s3s_errors() {
        let code = |qs: Vec<DestinationDoc>| rules_from(&doc(qs), &targets()).unwrap_err();
        // Overlap: a common event type and filters one key can meet.
        let e = code(vec![
            queue("a", &["s3:ObjectCreated:*"], "in/", ""),
            queue("b", &["s3:ObjectCreated:Put"], "in/sub/", ""),
        ]);
        assert_eq!(e.code, S3ErrorCode::InvalidArgument);
        assert!(e.message.starts_with("Configurations overlap."), "{e:?}");
        // Unknown target.
        let mut q = queue("a", &["s3:ObjectCreated:*"], "", "");
        q.queue = Some("arn:cairn:sqs:us-east-1:cairn:nope".into());
        let e = code(vec![q]);
        assert_eq!(
            e.message,
            "Unable to validate the following destination configurations"
        );
        let mut q = queue("a", &["s3:ObjectCreated:*"], "", "");
        q.queue = Some("arn:aws:sqs:us-east-1:123456789012:hook".into());
        assert_eq!(code(vec![q]).code, S3ErrorCode::InvalidArgument);
        // Events: unknown, or defined by S3 but never announced here.
        assert_eq!(
            code(vec![queue("a", &["s3:Nope"], "", "")]).code,
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(vec![queue("a", &["s3:ObjectRestore:*"], "", "")]).code,
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            code(vec![queue("a", &[], "", "")]).code,
            S3ErrorCode::MalformedXML
        );
        // Filter rules.
        let mut q = queue("a", &["s3:ObjectCreated:*"], "", "");
        q.filter = Some(crate::xml::FilterDoc {
            key: Some(crate::xml::S3KeyDoc {
                rules: vec![crate::xml::FilterRuleDoc {
                    name: "middle".into(),
                    value: "x".into(),
                }],
            }),
        });
        assert_eq!(
            code(vec![q]).message,
            "filter rule name must be either prefix or suffix"
        );
        // Duplicate ids.
        let e = code(vec![
            queue("a", &["s3:ObjectCreated:*"], "x/", ""),
            queue("a", &["s3:ObjectCreated:*"], "y/", ""),
        ]);
        assert_eq!(e.code, S3ErrorCode::InvalidArgument);
    }
}
