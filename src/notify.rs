//! Event notification delivery: drains the engine's event queue
//! (`cairn_storage_engine::notifications`) to the server's targets — MQTT
//! brokers (QoS 1) and webhooks (HTTP POST signed with HMAC-SHA256) — as
//! S3's event message (`{"Records": [...]}`).
//!
//! Owns: the targets' configuration (`--notify-target NAME=URL`), one
//! delivery task per target, retries with backoff, and the metrics
//! (`cairn_notify_*`).
//!
//! Must never: drop an event before its target acknowledged it (a webhook's
//! 2xx, a broker's PUBACK): rows are removed only after — so a crash or an
//! outage delivers an event again (at least once), never loses it; slow a
//! write (it only reads the queue); deliver from more than one node of a
//! cluster (only the node that runs maintenance, the leader, delivers);
//! log the signing key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_storage_engine::Engine;
use cairn_storage_engine::notifications::{EventRecord, ObjectEvent, QueuedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

/// Events read from the queue and sent per round.
const BATCH: usize = 64;
/// Longest wait for a target's answer to one round.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff after a failed round: doubles from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where one target's events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `http://host[:port]/path`: each event POSTed as JSON.
    Webhook {
        host: String,
        port: u16,
        path: String,
    },
    /// `mqtt://host[:port]/topic`: each event published, QoS 1.
    Mqtt {
        host: String,
        port: u16,
        topic: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub endpoint: Endpoint,
}

/// The targets and the webhooks' signing key.
#[derive(Clone, Default)]
pub struct NotifyConfig {
    pub targets: Vec<Target>,
    secret: Option<Arc<Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("targets", &self.targets)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NotifyConfig {
    /// From `NAME=URL` settings and the signing key (a file, or the key
    /// itself from `CAIRN_NOTIFY_SECRET`).
    pub fn resolve(
        targets: Vec<String>,
        secret_file: Option<std::path::PathBuf>,
        secret_env: Option<String>,
    ) -> Result<NotifyConfig, String> {
        let mut parsed: Vec<Target> = Vec::new();
        for t in targets.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            let target = parse_target(t)?;
            if parsed.iter().any(|p| p.name == target.name) {
                return Err(format!(
                    "--notify-target: the name {} is used twice",
                    target.name
                ));
            }
            parsed.push(target);
        }
        let secret = match (secret_file, secret_env) {
            (Some(path), _) => Some(
                std::fs::read(&path)
                    .map_err(|e| format!("reading the notify secret {}: {e}", path.display()))?,
            ),
            (None, Some(v)) => Some(v.into_bytes()),
            (None, None) => None,
        };
        let secret = secret.map(|mut s| {
            while s.last().is_some_and(|b| b.is_ascii_whitespace()) {
                s.pop();
            }
            Zeroizing::new(s)
        });
        let has_webhook = parsed
            .iter()
            .any(|t| matches!(t.endpoint, Endpoint::Webhook { .. }));
        match &secret {
            None if has_webhook => {
                return Err(
                    "a webhook notify target needs a signing key: --notify-secret-file FILE or CAIRN_NOTIFY_SECRET (at least 16 bytes)"
                        .into(),
                );
            }
            Some(s) if s.len() < 16 => {
                return Err("the notify signing key must be at least 16 bytes".into());
            }
            _ => {}
        }
        Ok(NotifyConfig {
            targets: parsed,
            secret: secret.map(Arc::new),
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }
}

/// `NAME=URL`.
fn parse_target(setting: &str) -> Result<Target, String> {
    let bad = |why: &str| {
        format!(
            "--notify-target {setting:?}: {why} (expected NAME=http://host:port/path or NAME=mqtt://host:port/topic)"
        )
    };
    let (name, url) = setting.split_once('=').ok_or_else(|| bad("no '='"))?;
    let name = name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad("a name is 1-64 letters, digits, '-' or '_'"));
    }
    if url.contains('#') {
        return Err(bad("no '#' (an MQTT target names one topic, no wildcards)"));
    }
    let uri: hyper::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let endpoint = match uri.scheme_str() {
        Some("http") => Endpoint::Webhook {
            host,
            port: uri.port_u16().unwrap_or(80),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        },
        Some("mqtt") => {
            let topic = uri.path().trim_start_matches('/').to_owned();
            if topic.is_empty() || topic.contains(['+', '#']) {
                return Err(bad("an MQTT target names one topic (no wildcards)"));
            }
            Endpoint::Mqtt {
                host,
                port: uri.port_u16().unwrap_or(1883),
                topic,
            }
        }
        Some("https") => return Err(bad("https webhooks are not supported yet")),
        _ => return Err(bad("the scheme must be http or mqtt")),
    };
    Ok(Target {
        name: name.to_owned(),
        endpoint,
    })
}

/// The delivery metrics, one series per target.
#[derive(Clone)]
struct Metrics {
    delivered: prometheus::IntCounterVec,
    failures: prometheus::IntCounterVec,
    queued: prometheus::IntGaugeVec,
    oldest_age: prometheus::GaugeVec,
}

impl Metrics {
    fn register(registry: &prometheus::Registry) -> Result<Self, String> {
        let err = |e: prometheus::Error| format!("notify metrics: {e}");
        let delivered = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "cairn_notify_events_delivered_total",
                "Events a notification target acknowledged.",
            ),
            &["target"],
        )
        .map_err(err)?;
        let failures = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "cairn_notify_delivery_failures_total",
                "Delivery rounds that failed (the target down, refusing or too slow); retried.",
            ),
            &["target"],
        )
        .map_err(err)?;
        let queued = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "cairn_notify_events_queued",
                "Events waiting for a notification target.",
            ),
            &["target"],
        )
        .map_err(err)?;
        let oldest_age = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "cairn_notify_oldest_event_age_seconds",
                "Age of the oldest event waiting for a target (0: none).",
            ),
            &["target"],
        )
        .map_err(err)?;
        for c in [
            Box::new(delivered.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(queued.clone()),
            Box::new(oldest_age.clone()),
        ] {
            registry.register(c).map_err(err)?;
        }
        Ok(Metrics {
            delivered,
            failures,
            queued,
            oldest_age,
        })
    }
}

/// Counts events dropped because a queue was full (the engine counts them).
struct DroppedEvents(Engine);

impl prometheus::core::Collector for DroppedEvents {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        Vec::new()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let c = prometheus::IntCounter::new(
            "cairn_notify_events_dropped_total",
            "Events not queued because their target already held the most it may.",
        );
        match c {
            Ok(c) => {
                c.inc_by(self.0.dropped_events());
                c.collect()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// Starts one delivery task per target. `delivers` says whether this node
/// delivers now (always on a single node; the leader on a cluster).
pub fn spawn(
    engine: Engine,
    cfg: &NotifyConfig,
    region: String,
    registry: &prometheus::Registry,
    delivers: crate::background::RunsMaintenance,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    if cfg.targets.is_empty() {
        return Ok(Vec::new());
    }
    let metrics = Metrics::register(registry)?;
    registry
        .register(Box::new(DroppedEvents(engine.clone())))
        .map_err(|e| format!("notify metrics: {e}"))?;
    let mut tasks = Vec::new();
    for target in &cfg.targets {
        let sink = Sink::new(target, cfg.secret.clone());
        let worker = Worker {
            engine: engine.clone(),
            name: target.name.clone(),
            region: region.clone(),
            metrics: metrics.clone(),
            delivers: delivers.clone(),
        };
        tasks.push(tokio::spawn(worker.run(sink, stop.clone())));
    }
    Ok(tasks)
}

struct Worker {
    engine: Engine,
    name: String,
    region: String,
    metrics: Metrics,
    delivers: crate::background::RunsMaintenance,
}

impl Worker {
    async fn run(self, mut sink: Sink, mut stop: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            if *stop.borrow() {
                return;
            }
            let queued = self.engine.queued_events(&self.name);
            self.metrics
                .queued
                .with_label_values(&[&self.name])
                .set(i64::try_from(queued).unwrap_or(i64::MAX));
            let idle = if !(self.delivers)() {
                true
            } else {
                match self.round(&mut sink).await {
                    Ok(sent) => {
                        backoff = BACKOFF_FIRST;
                        sent == 0
                    }
                    Err(e) => {
                        self.metrics.failures.with_label_values(&[&self.name]).inc();
                        tracing::warn!(target_name = %self.name, error = %e, retry_in = ?backoff, "event delivery failed");
                        sink.reset();
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => return,
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            };
            if idle {
                self.metrics
                    .oldest_age
                    .with_label_values(&[&self.name])
                    .set(0.0);
                tokio::select! {
                    () = self.engine.events_queued() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Sends the oldest queued events; drops those the target acknowledged.
    /// Answers how many were delivered.
    async fn round(&self, sink: &mut Sink) -> Result<usize, String> {
        let (events, undecodable) = self
            .engine
            .pending_events(&self.name, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if !undecodable.is_empty() {
            self.engine
                .drop_events(undecodable)
                .await
                .map_err(|e| e.to_string())?;
        }
        let Some(oldest) = events.first() else {
            return Ok(0);
        };
        let age_ms = cairn_storage_engine::now_ms().saturating_sub(oldest.record.time_ms);
        self.metrics
            .oldest_age
            .with_label_values(&[&self.name])
            .set(age_ms as f64 / 1000.0);
        let messages: Vec<Vec<u8>> = events
            .iter()
            .map(|e| event_message(e, &self.region).into_bytes())
            .collect();
        tokio::time::timeout(SEND_TIMEOUT, sink.send(&messages))
            .await
            .map_err(|_| format!("no answer within {SEND_TIMEOUT:?}"))??;
        let n = events.len();
        self.engine
            .drop_events(events.into_iter().map(|e| e.row).collect())
            .await
            .map_err(|e| e.to_string())?;
        self.metrics
            .delivered
            .with_label_values(&[&self.name])
            .inc_by(n as u64);
        Ok(n)
    }
}

/// A target's connection, opened when first needed and again after a
/// failure.
enum Sink {
    Webhook {
        host: String,
        port: u16,
        path: String,
        secret: Option<Arc<Zeroizing<Vec<u8>>>>,
        conn: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
    },
    Mqtt {
        host: String,
        port: u16,
        topic: String,
        client_id: String,
        conn: Option<Box<(rumqttc::AsyncClient, rumqttc::EventLoop)>>,
    },
}

impl Sink {
    fn new(target: &Target, secret: Option<Arc<Zeroizing<Vec<u8>>>>) -> Sink {
        match &target.endpoint {
            Endpoint::Webhook { host, port, path } => Sink::Webhook {
                host: host.clone(),
                port: *port,
                path: path.clone(),
                secret,
                conn: None,
            },
            Endpoint::Mqtt { host, port, topic } => Sink::Mqtt {
                host: host.clone(),
                port: *port,
                topic: topic.clone(),
                client_id: format!(
                    "cairn-{}-{}",
                    target.name,
                    hex::encode(cairn_storage_engine::random_bytes::<4>())
                ),
                conn: None,
            },
        }
    }

    /// Forgets the connection (after a failure: the next round reconnects).
    fn reset(&mut self) {
        match self {
            Sink::Webhook { conn, .. } => *conn = None,
            Sink::Mqtt { conn, .. } => *conn = None,
        }
    }

    /// Delivers every message, in order; `Ok` once the target
    /// acknowledged them all.
    async fn send(&mut self, messages: &[Vec<u8>]) -> Result<(), String> {
        match self {
            Sink::Webhook {
                host,
                port,
                path,
                secret,
                conn,
            } => {
                for body in messages {
                    if conn.as_ref().is_none_or(|c| c.is_closed()) {
                        *conn = Some(connect_http(host, *port).await?);
                    }
                    let Some(sender) = conn.as_mut() else {
                        return Err("no connection".into());
                    };
                    sender.ready().await.map_err(|e| e.to_string())?;
                    let mut req = hyper::Request::post(path.as_str())
                        .header(hyper::header::HOST, format!("{host}:{port}"))
                        .header(hyper::header::CONTENT_TYPE, "application/json");
                    if let Some(key) = secret {
                        req = req.header("x-cairn-signature", signature(key, body));
                    }
                    let req = req
                        .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
                        .map_err(|e| e.to_string())?;
                    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                    let status = resp.status();
                    // Read the answer to its end so the connection can be reused.
                    let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                    if !status.is_success() {
                        return Err(format!("the webhook answered {status}"));
                    }
                }
                Ok(())
            }
            Sink::Mqtt {
                host,
                port,
                topic,
                client_id,
                conn,
            } => {
                if conn.is_none() {
                    let mut opts =
                        rumqttc::MqttOptions::new(client_id.clone(), host.clone(), *port);
                    opts.set_keep_alive(Duration::from_secs(30));
                    *conn = Some(Box::new(rumqttc::AsyncClient::new(opts, BATCH)));
                }
                let Some(pair) = conn.as_mut() else {
                    return Err("no connection".into());
                };
                let (client, eventloop) = &mut **pair;
                for body in messages {
                    client
                        .publish(
                            topic.clone(),
                            rumqttc::QoS::AtLeastOnce,
                            false,
                            body.clone(),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                }
                // Every publish is acknowledged (PUBACK) before the events
                // are dropped from the queue.
                let mut acked = 0;
                while acked < messages.len() {
                    match eventloop.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => acked += 1,
                        Ok(_) => {}
                        Err(e) => return Err(format!("MQTT: {e}")),
                    }
                }
                Ok(())
            }
        }
    }
}

async fn connect_http(
    host: &str,
    port: u16,
) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `sha256=<hex HMAC-SHA256 of the body>`.
fn signature(key: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    match <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // Any key length is valid for HMAC; never reached.
        Err(_) => String::new(),
    }
}

/// S3's event message for one event (`eventVersion` 2.1): `Records` with
/// one record, its key URL-encoded as S3 writes it.
pub fn event_message(e: &QueuedEvent, region: &str) -> String {
    let r: &EventRecord = &e.record;
    let mut object = serde_json::json!({
        "key": encode_key(&r.key),
        "sequencer": format!("{:016X}", e.sequence),
    });
    if !matches!(
        r.event,
        ObjectEvent::Delete | ObjectEvent::DeleteMarkerCreated
    ) {
        object["size"] = serde_json::json!(r.size);
        object["eTag"] = serde_json::json!(r.etag);
    }
    if let Some(v) = &r.version_id {
        object["versionId"] = serde_json::json!(v);
    }
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": event_time(r.time_ms),
            "eventName": r.event.name(),
            "userIdentity": {"principalId": cairn_s3_api::OWNER_ID},
            "requestParameters": {},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": r.rule_id,
                "bucket": {
                    "name": r.bucket,
                    "ownerIdentity": {"principalId": cairn_s3_api::OWNER_ID},
                    "arn": format!("arn:aws:s3:::{}", r.bucket),
                },
                "object": object,
            },
        }]
    })
    .to_string()
}

/// A key as S3 writes it in events: form-encoded (space as `+`).
fn encode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/')
        .remove(b' ');
    percent_encoding::utf8_percent_encode(key, KEEP)
        .to_string()
        .replace(' ', "+")
}

/// `2026-12-06T12:00:00.123Z`.
fn event_time(ms: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let dt = time::OffsetDateTime::from(t);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_or_are_refused_with_the_reason() {
        let t = parse_target("hook=http://127.0.0.1:8080/events?x=1").unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Webhook {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/events?x=1".into()
            }
        );
        let m = parse_target("iot=mqtt://broker/cairn/events").unwrap();
        assert_eq!(
            m.endpoint,
            Endpoint::Mqtt {
                host: "broker".into(),
                port: 1883,
                topic: "cairn/events".into()
            }
        );
        for bad in [
            "nourl",
            "=http://h/",
            "a b=http://h/",
            "x=ftp://h/",
            "x=mqtt://h/",
            "x=mqtt://h/a/#",
            "x=https://h/",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        // A webhook needs a signing key of at least 16 bytes.
        assert!(NotifyConfig::resolve(vec!["h=http://h/".into()], None, None).is_err());
        assert!(
            NotifyConfig::resolve(vec!["h=http://h/".into()], None, Some("short".into())).is_err()
        );
        let ok = NotifyConfig::resolve(
            vec!["h=http://h/".into(), "m=mqtt://b/t".into()],
            None,
            Some("0123456789abcdef".into()),
        )
        .unwrap();
        assert_eq!(ok.names(), ["h", "m"]);
        assert!(!format!("{ok:?}").contains("0123456789abcdef"));
        assert!(
            NotifyConfig::resolve(
                vec!["h=mqtt://b/t".into(), "h=mqtt://b/u".into()],
                None,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn messages_are_s3s_event_json() {
        let e = QueuedEvent {
            row: Vec::new(),
            sequence: 0x1_0000_002A,
            record: EventRecord {
                event: ObjectEvent::Put,
                bucket: "fleet".into(),
                key: "in/a b+c.json".into(),
                size: 12,
                etag: "0123456789abcdef0123456789abcdef".into(),
                version_id: None,
                time_ms: 1_796_558_400_123,
                rule_id: "new-readings".into(),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&event_message(&e, "us-east-1")).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["eventTime"], "2026-12-06T12:00:00.123Z");
        assert_eq!(r["s3"]["configurationId"], "new-readings");
        assert_eq!(r["s3"]["bucket"]["name"], "fleet");
        assert_eq!(r["s3"]["object"]["key"], "in/a+b%2Bc.json");
        assert_eq!(r["s3"]["object"]["size"], 12);
        assert_eq!(r["s3"]["object"]["sequencer"], "000000010000002A");
        assert!(r["s3"]["object"].get("versionId").is_none());
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
