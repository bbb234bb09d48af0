//! Event notifications: which object changes a bucket announces, and the
//! events recorded with them for a deliverer to drain.
//!
//! Owns:
//! - a bucket's notification rules, the one bucket document the engine
//!   reads itself ([`BucketDocument::Notification`], encoded here:
//!   [`NotificationRules::encode`]), and matching a change against them;
//! - the `events` column family: one row per event and target, written in
//!   the same batch as the change it announces (a crash keeps both or
//!   neither). Key: target name, `0x00`, the event's sequence (u64 big
//!   endian), assigned when the batch is applied (`MetaOp::Append`), so the
//!   rows of one target sort in commit order. Value: [`EventRecord`];
//! - reading a target's oldest events and dropping delivered ones
//!   ([`Engine::pending_events`], [`Engine::drop_events`]), and the per-target
//!   queue lengths that bound the queue.
//!
//! Must never: deliver anything (the server's notifier does), or let a
//! target that is down slow or fail a write: a change only adds rows, and
//! once a target holds [`EVENT_QUEUE_MAX`] events new ones for it are
//! dropped and counted, never waited for.

use crate::bucket_documents::BucketDocument;
use crate::codec::{RecordReader, RecordWriter};
use crate::engine::{Engine, blocking};
use crate::error::{CodecError, EngineResult};
use crate::meta::{MetaBatch, MetaStore, System};
use crate::records::ObjectVersion;

/// Events a target may hold before new ones for it are dropped.
pub const EVENT_QUEUE_MAX: u64 = 1_000_000;
/// Rules one bucket may have (S3 documents no lower bound; a bound keeps
/// the per-write match cheap).
pub const RULES_MAX: usize = 100;

/// An object change S3 announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectEvent {
    Put,
    Post,
    Copy,
    CompleteMultipartUpload,
    /// An object (or a version) removed.
    Delete,
    /// A delete in a versioned bucket that placed a delete marker.
    DeleteMarkerCreated,
}

impl ObjectEvent {
    pub const ALL: [ObjectEvent; 6] = [
        ObjectEvent::Put,
        ObjectEvent::Post,
        ObjectEvent::Copy,
        ObjectEvent::CompleteMultipartUpload,
        ObjectEvent::Delete,
        ObjectEvent::DeleteMarkerCreated,
    ];

    /// The `eventName` of S3's event message (without the `s3:` prefix).
    pub fn name(self) -> &'static str {
        match self {
            ObjectEvent::Put => "ObjectCreated:Put",
            ObjectEvent::Post => "ObjectCreated:Post",
            ObjectEvent::Copy => "ObjectCreated:Copy",
            ObjectEvent::CompleteMultipartUpload => "ObjectCreated:CompleteMultipartUpload",
            ObjectEvent::Delete => "ObjectRemoved:Delete",
            ObjectEvent::DeleteMarkerCreated => "ObjectRemoved:DeleteMarkerCreated",
        }
    }

    fn code(self) -> u8 {
        match self {
            ObjectEvent::Put => 1,
            ObjectEvent::Post => 2,
            ObjectEvent::Copy => 3,
            ObjectEvent::CompleteMultipartUpload => 4,
            ObjectEvent::Delete => 5,
            ObjectEvent::DeleteMarkerCreated => 6,
        }
    }

    fn from_code(c: u8) -> Option<ObjectEvent> {
        ObjectEvent::ALL.into_iter().find(|e| e.code() == c)
    }
}

/// Whether an event type of a configuration (`s3:ObjectCreated:*`,
/// `s3:ObjectRemoved:Delete`, …) names `event`. `None`: not a type Cairn
/// announces.
pub fn event_type_matches(event_type: &str, event: ObjectEvent) -> Option<bool> {
    let name = event.name();
    match event_type {
        "s3:ObjectCreated:*" => Some(name.starts_with("ObjectCreated:")),
        "s3:ObjectRemoved:*" => Some(name.starts_with("ObjectRemoved:")),
        t => {
            let known = ObjectEvent::ALL
                .iter()
                .any(|e| t.strip_prefix("s3:") == Some(e.name()));
            known.then(|| t.strip_prefix("s3:") == Some(name))
        }
    }
}

/// Where S3's configuration names the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationKind {
    /// `QueueConfiguration` (`Queue`).
    Queue,
    /// `TopicConfiguration` (`Topic`).
    Topic,
    /// `CloudFunctionConfiguration` (`CloudFunction`).
    CloudFunction,
}

impl DestinationKind {
    fn code(self) -> u8 {
        match self {
            DestinationKind::Queue => 1,
            DestinationKind::Topic => 2,
            DestinationKind::CloudFunction => 3,
        }
    }

    fn from_code(c: u8) -> Option<DestinationKind> {
        [
            DestinationKind::Queue,
            DestinationKind::Topic,
            DestinationKind::CloudFunction,
        ]
        .into_iter()
        .find(|k| k.code() == c)
    }
}

/// One configuration of a bucket's notification document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRule {
    pub id: String,
    pub kind: DestinationKind,
    /// The ARN as configured.
    pub arn: String,
    /// The server's target the ARN names.
    pub target: String,
    /// The event types as configured (`s3:ObjectCreated:*`, …).
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl NotificationRule {
    pub fn matches(&self, event: ObjectEvent, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self
                .events
                .iter()
                .any(|t| event_type_matches(t, event) == Some(true))
    }
}

/// A bucket's notification rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationRules {
    pub rules: Vec<NotificationRule>,
}

const RULES_V1: u8 = 1;

impl NotificationRules {
    /// Version u8 (1), rule count u32, per rule: id, kind u8, arn, target,
    /// event count u32 and each event, prefix, suffix (strings as u32
    /// length + UTF-8).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(RULES_V1);
        w.u32(self.rules.len() as u32);
        for r in &self.rules {
            w.str(&r.id).u8(r.kind.code()).str(&r.arn).str(&r.target);
            w.u32(r.events.len() as u32);
            for e in &r.events {
                w.str(e);
            }
            w.str(&r.prefix).str(&r.suffix);
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<NotificationRules, CodecError> {
        const WHAT: &str = "notification rules";
        let mut r = RecordReader::new(buf, WHAT);
        match r.u8()? {
            RULES_V1 => {}
            version => {
                return Err(CodecError::UnknownVersion {
                    what: WHAT,
                    version,
                });
            }
        }
        let n = r.count(16)?;
        let mut rules = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.string()?;
            let kind = DestinationKind::from_code(r.u8()?).ok_or(CodecError::Invalid(WHAT))?;
            let arn = r.string()?;
            let target = r.string()?;
            let m = r.count(4)?;
            let mut events = Vec::with_capacity(m);
            for _ in 0..m {
                events.push(r.string()?);
            }
            rules.push(NotificationRule {
                id,
                kind,
                arn,
                target,
                events,
                prefix: r.string()?,
                suffix: r.string()?,
            });
        }
        r.finish()?;
        Ok(NotificationRules { rules })
    }

    /// The rules `event` on `key` matches, at most one per target (S3
    /// refuses overlapping configurations, so there is one at most anyway).
    pub fn matching(&self, event: ObjectEvent, key: &str) -> Vec<&NotificationRule> {
        let mut out: Vec<&NotificationRule> = Vec::new();
        for rule in &self.rules {
            if rule.matches(event, key) && !out.iter().any(|r| r.target == rule.target) {
                out.push(rule);
            }
        }
        out
    }
}

/// One event waiting for its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub event: ObjectEvent,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// The ETag without quotes (empty for removals).
    pub etag: String,
    /// The version the change made (a delete marker's for
    /// `DeleteMarkerCreated`) or removed; `None` for a `null` version.
    pub version_id: Option<String>,
    pub time_ms: u64,
    /// The configuration's `Id`.
    pub rule_id: String,
}

const EVENT_V1: u8 = 1;

impl EventRecord {
    /// Version u8 (1), event u8, bucket, key, size u64, etag, version id
    /// (u8 0/1 + string), time (ms) u64, rule id.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(EVENT_V1);
        w.u8(self.event.code())
            .str(&self.bucket)
            .str(&self.key)
            .u64(self.size)
            .str(&self.etag)
            .opt_str(self.version_id.as_deref())
            .u64(self.time_ms)
            .str(&self.rule_id);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<EventRecord, CodecError> {
        const WHAT: &str = "event";
        let mut r = RecordReader::new(buf, WHAT);
        match r.u8()? {
            EVENT_V1 => {}
            version => {
                return Err(CodecError::UnknownVersion {
                    what: WHAT,
                    version,
                });
            }
        }
        let event = ObjectEvent::from_code(r.u8()?).ok_or(CodecError::Invalid(WHAT))?;
        let e = EventRecord {
            event,
            bucket: r.string()?,
            key: r.string()?,
            size: r.u64()?,
            etag: r.string()?,
            version_id: r.opt_string()?,
            time_ms: r.u64()?,
            rule_id: r.string()?,
        };
        r.finish()?;
        Ok(e)
    }
}

/// The `events` key prefix of a target's rows.
pub(crate) fn target_prefix(target: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(target.len() + 1);
    p.extend_from_slice(target.as_bytes());
    p.push(0);
    p
}

/// The target and sequence of an `events` key.
pub(crate) fn split_event_key(key: &[u8]) -> Option<(&str, u64)> {
    let at = key.iter().position(|b| *b == 0)?;
    let target = std::str::from_utf8(&key[..at]).ok()?;
    let seq: [u8; 8] = key.get(at + 1..)?.try_into().ok()?;
    Some((target, u64::from_be_bytes(seq)))
}

/// Adds to `batch` one event row per target whose rule of the bucket
/// matches `event` on `key` (`version`: the version written, the marker
/// placed, or the version removed). A target whose queue is full gets
/// none: answers how many were left out, for the caller to count once its
/// write committed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn queue_events(
    meta: &MetaStore,
    rules: &NotificationRules,
    batch: &mut MetaBatch,
    bucket: &str,
    key: &str,
    event: ObjectEvent,
    version: &ObjectVersion,
    now_ms: u64,
) -> EngineResult<u64> {
    let mut dropped = 0;
    for rule in rules.matching(event, key) {
        let prefix = target_prefix(&rule.target);
        if meta.queued_events(&prefix) >= EVENT_QUEUE_MAX {
            dropped += 1;
            continue;
        }
        let record = EventRecord {
            event,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: if version.delete_marker {
                0
            } else {
                version.size
            },
            etag: if version.delete_marker {
                String::new()
            } else {
                version.etag.clone()
            },
            version_id: (!version.null_version).then(|| version.public_id()),
            time_ms: now_ms,
            rule_id: rule.id.clone(),
        };
        batch.append_event(prefix, record.encode());
    }
    Ok(dropped)
}

/// A bucket's rules as stored (`None`: none set, or a document that does
/// not decode — never a reason to refuse a write, so it announces nothing).
pub(crate) fn read_rules(
    meta: &MetaStore,
    bucket_id: u64,
) -> EngineResult<Option<std::sync::Arc<NotificationRules>>> {
    let Some(raw) = meta.get::<System>(&BucketDocument::Notification.name(bucket_id))? else {
        return Ok(None);
    };
    match NotificationRules::decode(&raw) {
        Ok(r) => Ok(Some(std::sync::Arc::new(r))),
        Err(e) => {
            tracing::warn!(error = %e, "a bucket's notification rules do not decode; no event");
            Ok(None)
        }
    }
}

/// Event types one configuration may list (S3 defines about 30; more
/// than this is never needed and every write matches against them).
pub const EVENT_TYPES_PER_RULE_MAX: usize = 16;

/// A queued event as the deliverer reads it.
#[derive(Clone, Debug)]
pub struct QueuedEvent {
    /// Its row (to drop once delivered).
    pub row: Vec<u8>,
    /// Its place in the target's queue: increasing in commit order, S3's
    /// `sequencer`.
    pub sequence: u64,
    pub record: EventRecord,
}

impl Engine {
    /// The bucket's notification rules (none set: empty).
    pub fn notification_rules(&self, bucket: &str) -> EngineResult<NotificationRules> {
        match self.bucket_document(bucket, BucketDocument::Notification)? {
            None => Ok(NotificationRules::default()),
            Some(raw) => Ok(NotificationRules::decode(&raw)?),
        }
    }

    /// Replaces the bucket's notification rules (empty: removes them).
    /// Validation (targets exist, rules do not overlap) is the caller's.
    pub async fn set_notification_rules(
        &self,
        bucket: &str,
        rules: &NotificationRules,
    ) -> EngineResult<()> {
        let doc = (!rules.rules.is_empty()).then(|| rules.encode());
        self.set_bucket_document(bucket, BucketDocument::Notification, doc)
            .await
    }

    /// Up to `max` of `target`'s queued events, oldest first. A row that
    /// does not decode is returned as dropped-on-read: the caller removes
    /// it with the delivered ones (it can never be delivered).
    ///
    /// `after`: start past this sequence (the last one delivered), so a
    /// long queue is not read again through the rows already dropped. A
    /// single node assigns sequences before its writes land, so a row with
    /// a lower sequence can appear late: the caller reads from the start
    /// (`None`) whenever a read past its cursor finds nothing.
    pub async fn pending_events(
        &self,
        target: &str,
        after: Option<u64>,
        max: usize,
    ) -> EngineResult<(Vec<QueuedEvent>, Vec<Vec<u8>>)> {
        let inner = self.inner.clone();
        let prefix = target_prefix(target);
        blocking(move || {
            let mut from = prefix.clone();
            if let Some(seq) = after.and_then(|s| s.checked_add(1)) {
                from.extend_from_slice(&seq.to_be_bytes());
            }
            let mut events = Vec::new();
            let mut undecodable = Vec::new();
            for (row, value) in inner.meta.event_rows(&prefix, &from, max)? {
                let decoded = value.map_err(|e| e.to_string()).and_then(|v| {
                    EventRecord::decode(&v).map_err(|e| e.to_string())
                });
                match (split_event_key(&row), decoded) {
                    (Some((_, sequence)), Ok(record)) => events.push(QueuedEvent {
                        row,
                        sequence,
                        record,
                    }),
                    (_, Err(e)) => {
                        tracing::warn!(error = %e, "a queued event does not open or decode; dropped");
                        undecodable.push(row);
                    }
                    (None, _) => undecodable.push(row),
                }
            }
            Ok((events, undecodable))
        })
        .await
    }

    /// Targets with queued events and how many (configured or not).
    pub fn queued_event_targets(&self) -> Vec<(String, u64)> {
        self.inner
            .meta
            .queued_event_counts()
            .into_iter()
            .map(|(prefix, n)| {
                let name = prefix.strip_suffix(&[0]).unwrap_or(&prefix);
                (String::from_utf8_lossy(name).into_owned(), n)
            })
            .collect()
    }

    /// When the oldest event queued for `target` was recorded (unix ms);
    /// `None` when none waits (or it does not open).
    pub fn oldest_event_ms(&self, target: &str) -> Option<u64> {
        let prefix = target_prefix(target);
        let rows = self.inner.meta.event_rows(&prefix, &prefix, 1).ok()?;
        let (_, value) = rows.into_iter().next()?;
        EventRecord::decode(&value.ok()?).ok().map(|e| e.time_ms)
    }

    /// Removes delivered (or undeliverable) events, in one batch (through
    /// the log on a cluster, so every node drops them). Not synced: a crash
    /// that loses the removal delivers the events again, which at least
    /// once allows — the delivery path pays no fsync per round.
    pub async fn drop_events(&self, rows: Vec<Vec<u8>>) -> EngineResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let inner = self.inner.clone();
        blocking(move || {
            let mut batch = inner.meta.batch();
            for row in rows {
                batch.delete_event(row);
            }
            inner.meta.write_unsynced(batch)
        })
        .await
    }

    /// Events queued for `target`.
    pub fn queued_events(&self, target: &str) -> u64 {
        self.inner.meta.queued_events(&target_prefix(target))
    }

    /// Events not queued because their target's queue was full, since start.
    pub fn dropped_events(&self) -> u64 {
        self.inner.meta.dropped_events()
    }

    /// Completes after the next change that queued an event on this node.
    pub async fn events_queued(&self) {
        self.inner.meta.events_queued().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(events: &[&str], prefix: &str, suffix: &str) -> NotificationRule {
        NotificationRule {
            id: "r".into(),
            kind: DestinationKind::Queue,
            arn: "arn:cairn:sqs:us-east-1:cairn:hook".into(),
            target: "hook".into(),
            events: events.iter().map(|s| (*s).to_owned()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn event_types_name_what_s3_documents() {
        let created = rule(&["s3:ObjectCreated:*"], "in/", ".json");
        for e in [
            ObjectEvent::Put,
            ObjectEvent::Post,
            ObjectEvent::Copy,
            ObjectEvent::CompleteMultipartUpload,
        ] {
            assert!(created.matches(e, "in/a.json"), "{e:?}");
            assert!(!created.matches(e, "out/a.json"));
            assert!(!created.matches(e, "in/a.csv"));
        }
        assert!(!created.matches(ObjectEvent::Delete, "in/a.json"));
        let markers = rule(&["s3:ObjectRemoved:DeleteMarkerCreated"], "", "");
        assert!(markers.matches(ObjectEvent::DeleteMarkerCreated, "k"));
        assert!(!markers.matches(ObjectEvent::Delete, "k"));
        assert_eq!(
            event_type_matches("s3:ObjectRestore:*", ObjectEvent::Put),
            None
        );
        assert_eq!(
            event_type_matches("s3:ObjectCreated:Put", ObjectEvent::Post),
            Some(false)
        );
    }

    proptest! {
        #[test]
        fn rules_and_events_round_trip(
            id in ".{0,20}", arn in ".{0,40}", prefix in ".{0,10}", suffix in ".{0,10}",
            bucket in "[a-z]{3,10}", key in ".{0,50}", size: u64, time_ms: u64,
            version in proptest::option::of("[0-9a-f]{8}"), code in 1u8..=6,
        ) {
            let rules = NotificationRules { rules: vec![NotificationRule {
                id: id.clone(), kind: DestinationKind::Topic, arn, target: "t".into(),
                events: vec!["s3:ObjectCreated:*".into()], prefix, suffix,
            }] };
            prop_assert_eq!(NotificationRules::decode(&rules.encode()).unwrap(), rules);
            let e = EventRecord {
                event: ObjectEvent::from_code(code).unwrap(), bucket, key, size,
                etag: "0123".into(), version_id: version, time_ms, rule_id: id,
            };
            let bytes = e.encode();
            prop_assert_eq!(EventRecord::decode(&bytes).unwrap(), e);
            // Every truncation is an error, never a panic.
            for n in 0..bytes.len() {
                prop_assert!(EventRecord::decode(&bytes[..n]).is_err());
            }
        }
    }

    #[test]
    fn event_keys_sort_by_target_then_sequence() {
        let key = |t: &str, seq: u64| {
            let mut k = target_prefix(t);
            k.extend_from_slice(&seq.to_be_bytes());
            k
        };
        assert!(key("a", 2) < key("a", 256));
        assert!(key("a", u64::MAX) < key("b", 0));
        assert_eq!(split_event_key(&key("hook", 42)), Some(("hook", 42)));
        assert_eq!(split_event_key(b"nozero"), None);
    }
}
