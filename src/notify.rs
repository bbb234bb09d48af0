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

/// Events read from the queue and sent per round (also the MQTT client's
/// request queue: a round's publishes never wait for room).
const BATCH: usize = 256;
/// Longest wait for a broker's acknowledgements of one round (MQTT), or
/// for a webhook's answer to one event.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most of a webhook's answer that is read (the rest closes the connection).
const RESPONSE_MAX_BYTES: usize = 64 << 10;
/// A webhook that refuses one event (a 4xx other than 408/429) this many
/// times in a row: the event is dropped (counted), so it cannot block the
/// events behind it forever.
const REJECTIONS_MAX: u32 = 3;
/// An MQTT connection unused this long is closed before the next round
/// (its keep-alive is not kept up between rounds).
const MQTT_IDLE: Duration = Duration::from_secs(20);
/// Backoff after a failed round: doubles from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where one target's events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `http://host[:port]/path` or `https://…`: each event POSTed as JSON.
    Webhook {
        host: String,
        port: u16,
        path: String,
        tls: bool,
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
    /// For `https://` webhooks: the roots their certificates must chain to.
    tls: Option<Arc<rustls::ClientConfig>>,
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
        ca_file: Option<std::path::PathBuf>,
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
        let has_https = parsed
            .iter()
            .any(|t| matches!(t.endpoint, Endpoint::Webhook { tls: true, .. }));
        let tls = if has_https {
            Some(client_tls(ca_file.as_deref())?)
        } else {
            None
        };
        Ok(NotifyConfig {
            targets: parsed,
            secret: secret.map(Arc::new),
            tls,
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }
}

/// `NAME=URL`.
fn parse_target(setting: &str) -> Result<Target, String> {
    // The URL is never echoed: it could carry a password.
    let label = setting.split_once('=').map_or("", |(n, _)| n.trim());
    let bad = |why: &str| {
        format!(
            "--notify-target {label:?}: {why} (expected NAME=http://host:port/path or NAME=mqtt://host:port/topic)"
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
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("user names and passwords in the URL are not supported"));
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let endpoint = match uri.scheme_str() {
        Some(scheme @ ("http" | "https")) => Endpoint::Webhook {
            host,
            port: uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            tls: scheme == "https",
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
        _ => return Err(bad("the scheme must be http, https or mqtt")),
    };
    Ok(Target {
        name: name.to_owned(),
        endpoint,
    })
}

/// Where the system's trusted certificates are (Debian's ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The client side of `https://` webhooks: certificates verified against
/// `ca_file`'s roots, or the system's.
fn client_tls(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let path = ca_file.unwrap_or(std::path::Path::new(SYSTEM_ROOTS));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
        format!(
            "an https notify target needs trusted roots: {} ({e}); set --notify-ca-file",
            path.display()
        )
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("reading {}: {e}", path.display()))?;
        // A bundle may hold a certificate rustls cannot use: skip it.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("no usable certificate in {}", path.display()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The delivery metrics, one series per target.
#[derive(Clone)]
struct Metrics {
    delivered: prometheus::IntCounterVec,
    failures: prometheus::IntCounterVec,
    queued: prometheus::IntGaugeVec,
    oldest_age: prometheus::GaugeVec,
    rejected: prometheus::IntCounterVec,
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
        let rejected = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "cairn_notify_events_rejected_total",
                "Events a webhook refused (4xx other than 408/429) 3 times in a row, then dropped.",
            ),
            &["target"],
        )
        .map_err(err)?;
        for c in [
            Box::new(rejected.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(delivered.clone()),
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
            rejected,
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
    for (name, n) in engine.queued_event_targets() {
        if !cfg.targets.iter().any(|t| t.name == name) && n > 0 {
            tracing::warn!(target_name = %name, queued = n, "events are queued for a notification target this server does not have; they wait until it is configured again");
        }
    }
    let mut tasks = Vec::new();
    for target in &cfg.targets {
        // Every series exists from the start (at 0), for dashboards and alerts.
        let label = [target.name.as_str()];
        metrics.delivered.with_label_values(&label);
        metrics.failures.with_label_values(&label);
        metrics.rejected.with_label_values(&label);
        metrics.queued.with_label_values(&label);
        metrics.oldest_age.with_label_values(&label);
        let sink = Sink::new(target, cfg.secret.clone(), cfg.tls.clone());
        let worker = Worker {
            engine: engine.clone(),
            name: target.name.clone(),
            region: region.clone(),
            metrics: metrics.clone(),
            delivers: delivers.clone(),
            cursor: None,
            rejections: None,
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
    /// The sequence of the last event delivered (see `pending_events`).
    cursor: Option<u64>,
    /// The event the webhook refused and how many times in a row.
    rejections: Option<(u64, u32)>,
}

/// How a round of sending ended.
struct Sent {
    /// How many of the messages, from the first, the target acknowledged.
    acked: usize,
    failure: Option<SendFailure>,
}

enum SendFailure {
    /// The target refused the message after the acknowledged ones for good
    /// (a webhook's 4xx other than 408/429).
    Rejected(String),
    /// Anything else: retried.
    Failed(String),
}

impl Worker {
    async fn run(mut self, mut sink: Sink, mut stop: watch::Receiver<bool>) {
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
                sink.idle();
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

    /// Sends the oldest queued events and drops those the target
    /// acknowledged (also when a later one failed). Answers how many were
    /// delivered or dropped; an error only when none was.
    async fn round(&mut self, sink: &mut Sink) -> Result<usize, String> {
        let (mut events, undecodable) = self
            .engine
            .pending_events(&self.name, self.cursor, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        self.drop_rows(undecodable).await?;
        if events.is_empty() && self.cursor.is_some() {
            // Nothing past the cursor: look from the start once (a row with
            // a lower sequence may have landed since).
            self.cursor = None;
            let (again, bad) = self
                .engine
                .pending_events(&self.name, None, BATCH)
                .await
                .map_err(|e| e.to_string())?;
            events = again;
            self.drop_rows(bad).await?;
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
        let sent = sink.send(&self.name, &messages).await;
        let delivered = sent.acked.min(events.len());
        let mut done = delivered;
        let failure = match sent.failure {
            Some(SendFailure::Rejected(why)) => match events.get(done) {
                Some(refused) => {
                    let count = match self.rejections {
                        Some((seq, n)) if seq == refused.sequence => n + 1,
                        _ => 1,
                    };
                    if count >= REJECTIONS_MAX {
                        tracing::warn!(target_name = %self.name, sequence = refused.sequence, reason = %why, "the target refused an event {REJECTIONS_MAX} times; dropped");
                        self.metrics.rejected.with_label_values(&[&self.name]).inc();
                        self.rejections = None;
                        done += 1;
                        None
                    } else {
                        self.rejections = Some((refused.sequence, count));
                        Some(why)
                    }
                }
                None => Some(why),
            },
            Some(SendFailure::Failed(why)) => {
                // Only refusals in a row count.
                self.rejections = None;
                Some(why)
            }
            None => None,
        };
        if done > 0 {
            if let Some(last) = events.get(done - 1) {
                self.cursor = Some(last.sequence);
            }
            let rows: Vec<Vec<u8>> = events.into_iter().take(done).map(|e| e.row).collect();
            self.drop_rows(rows).await?;
        }
        if delivered > 0 {
            self.metrics
                .delivered
                .with_label_values(&[&self.name])
                .inc_by(delivered as u64);
        }
        match failure {
            // Progress was made: go on at once (the next round starts
            // with the event that failed).
            Some(_) if done > 0 => Ok(done),
            Some(why) => Err(why),
            None => Ok(done),
        }
    }

    async fn drop_rows(&self, rows: Vec<Vec<u8>>) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        self.engine
            .drop_events(rows)
            .await
            .map_err(|e| e.to_string())
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
        tls: Option<Arc<rustls::ClientConfig>>,
        conn: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
    },
    Mqtt {
        host: String,
        port: u16,
        topic: String,
        client_id: String,
        conn: Option<Box<(rumqttc::AsyncClient, rumqttc::EventLoop)>>,
        last_used: std::time::Instant,
    },
}

impl Sink {
    fn new(
        target: &Target,
        secret: Option<Arc<Zeroizing<Vec<u8>>>>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Sink {
        match &target.endpoint {
            Endpoint::Webhook {
                host,
                port,
                path,
                tls: https,
            } => Sink::Webhook {
                host: host.clone(),
                port: *port,
                path: path.clone(),
                secret,
                tls: if *https { tls } else { None },
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
                last_used: std::time::Instant::now(),
            },
        }
    }

    /// Between rounds: an MQTT connection left idle past its keep-alive is
    /// closed (the next round opens a fresh one).
    fn idle(&mut self) {
        if let Sink::Mqtt {
            conn, last_used, ..
        } = self
            && conn.is_some()
            && last_used.elapsed() > MQTT_IDLE
        {
            *conn = None;
        }
    }

    /// Forgets the connection (after a failure: the next round reconnects).
    fn reset(&mut self) {
        match self {
            Sink::Webhook { conn, .. } => *conn = None,
            Sink::Mqtt { conn, .. } => *conn = None,
        }
    }

    /// Delivers the messages in order, until one fails: how many the
    /// target acknowledged, and why the next one was not.
    async fn send(&mut self, target: &str, messages: &[Vec<u8>]) -> Sent {
        match self {
            Sink::Webhook {
                host,
                port,
                path,
                secret,
                tls,
                conn,
            } => {
                let authority = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                for (acked, body) in messages.iter().enumerate() {
                    let request = Post {
                        host,
                        port: *port,
                        authority: &authority,
                        path,
                        target,
                        secret: secret.as_deref().map(|s| s.as_slice()),
                        tls: tls.as_ref(),
                    };
                    let answer = tokio::time::timeout(SEND_TIMEOUT, request.send(conn, body)).await;
                    let failure = match answer {
                        Ok(Ok(status)) if status.is_success() => continue,
                        Ok(Ok(status))
                            if status.is_client_error()
                                && status != hyper::StatusCode::REQUEST_TIMEOUT
                                && status != hyper::StatusCode::TOO_MANY_REQUESTS =>
                        {
                            SendFailure::Rejected(format!("the webhook answered {status}"))
                        }
                        Ok(Ok(status)) => {
                            SendFailure::Failed(format!("the webhook answered {status}"))
                        }
                        Ok(Err(e)) => SendFailure::Failed(e),
                        Err(_) => SendFailure::Failed(format!("no answer within {SEND_TIMEOUT:?}")),
                    };
                    *conn = None;
                    return Sent {
                        acked,
                        failure: Some(failure),
                    };
                }
                Sent {
                    acked: messages.len(),
                    failure: None,
                }
            }
            Sink::Mqtt {
                host,
                port,
                topic,
                client_id,
                conn,
                last_used,
            } => {
                if conn.is_none() {
                    let mut opts =
                        rumqttc::MqttOptions::new(client_id.clone(), host.clone(), *port);
                    opts.set_keep_alive(Duration::from_secs(30));
                    *conn = Some(Box::new(rumqttc::AsyncClient::new(opts, BATCH)));
                }
                let Some(pair) = conn.as_mut() else {
                    return Sent {
                        acked: 0,
                        failure: Some(SendFailure::Failed("no connection".into())),
                    };
                };
                let (client, eventloop) = &mut **pair;
                let round = async {
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
                    // Every publish is acknowledged (PUBACK) before the
                    // events are dropped. Acknowledgements are counted, not
                    // matched: a round that fails part-way drops nothing and
                    // sends all again (at least once).
                    let mut acks = 0;
                    while acks < messages.len() {
                        match eventloop.poll().await {
                            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => acks += 1,
                            Ok(_) => {}
                            Err(e) => return Err(format!("MQTT: {e}")),
                        }
                    }
                    Ok::<(), String>(())
                };
                let result = tokio::time::timeout(SEND_TIMEOUT, round).await;
                *last_used = std::time::Instant::now();
                let failure = match result {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(SendFailure::Failed(e)),
                    Err(_) => Some(SendFailure::Failed(format!(
                        "no acknowledgement within {SEND_TIMEOUT:?}"
                    ))),
                };
                if failure.is_some() {
                    *conn = None;
                }
                Sent {
                    acked: if failure.is_none() { messages.len() } else { 0 },
                    failure,
                }
            }
        }
    }
}

type HttpSender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// One event's POST to a webhook.
struct Post<'a> {
    host: &'a str,
    port: u16,
    authority: &'a str,
    path: &'a str,
    target: &'a str,
    secret: Option<&'a [u8]>,
    tls: Option<&'a Arc<rustls::ClientConfig>>,
}

impl Post<'_> {
    /// Sends it on the target's connection (opening one if needed; a reused
    /// one that turns out closed is replaced once) and reads at most
    /// [`RESPONSE_MAX_BYTES`] of the answer.
    async fn send(
        &self,
        conn: &mut Option<HttpSender>,
        body: &[u8],
    ) -> Result<hyper::StatusCode, String> {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        for attempt in 0..2 {
            let reused = conn.as_ref().is_some_and(|c| !c.is_closed());
            if !reused {
                *conn = Some(connect_http(self.host, self.port, self.tls).await?);
            }
            let Some(sender) = conn.as_mut() else {
                return Err("no connection".into());
            };
            let mut req = hyper::Request::post(self.path)
                .header(hyper::header::HOST, self.authority)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header("x-cairn-target", self.target)
                .header("x-cairn-timestamp", timestamp.as_str());
            if let Some(key) = self.secret {
                req = req.header(
                    "x-cairn-signature",
                    signature(key, &timestamp, self.target, body),
                );
            }
            let req = req
                .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
                    body,
                )))
                .map_err(|e| e.to_string())?;
            let sent = match sender.ready().await {
                Ok(()) => sender.send_request(req).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let limited =
                        http_body_util::Limited::new(resp.into_body(), RESPONSE_MAX_BYTES);
                    if http_body_util::BodyExt::collect(limited).await.is_err() {
                        // Too long, or cut: this connection is not reused.
                        *conn = None;
                    }
                    return Ok(status);
                }
                // A kept-alive connection the webhook closed meanwhile:
                // once more on a new one.
                Err(_) if reused && attempt == 0 => *conn = None,
                Err(e) => {
                    *conn = None;
                    return Err(e.to_string());
                }
            }
        }
        Err("the webhook closed the connection".into())
    }
}

async fn connect_http(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<HttpSender, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    match tls {
        None => handshake(hyper_util::rt::TokioIo::new(stream)).await,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            handshake(hyper_util::rt::TokioIo::new(stream)).await
        }
    }
}

async fn handshake<T>(io: T) -> Result<HttpSender, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `sha256=<hex HMAC-SHA256>` of `timestamp`, `\n`, `target`, `\n` and the
/// body: a receiver can refuse a message meant for another target, or a
/// replay of an old one.
fn signature(key: &[u8], timestamp: &str, target: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    match <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(timestamp.as_bytes());
            mac.update(b"\n");
            mac.update(target.as_bytes());
            mac.update(b"\n");
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
            "eventTime": cairn_s3_api::iso8601(r.time_ms),
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
                path: "/events?x=1".into(),
                tls: false,
            }
        );
        let s = parse_target("sec=https://hooks.example.com/in").unwrap();
        assert!(matches!(
            s.endpoint,
            Endpoint::Webhook {
                port: 443,
                tls: true,
                ..
            }
        ));
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
            "x=http://user:pw@h/",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        // A webhook needs a signing key of at least 16 bytes.
        assert!(NotifyConfig::resolve(vec!["h=http://h/".into()], None, None, None).is_err());
        assert!(
            NotifyConfig::resolve(vec!["h=http://h/".into()], None, Some("short".into()), None)
                .is_err()
        );
        let ok = NotifyConfig::resolve(
            vec!["h=http://h/".into(), "m=mqtt://b/t".into()],
            None,
            Some("0123456789abcdef".into()),
            None,
        )
        .unwrap();
        assert_eq!(ok.names(), ["h", "m"]);
        assert!(!format!("{ok:?}").contains("0123456789abcdef"));
        assert!(
            NotifyConfig::resolve(
                vec!["h=mqtt://b/t".into(), "h=mqtt://b/u".into()],
                None,
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
        // HMAC-SHA256(key "Jefe", "1\na\n{}"), computed with Python's hmac.
        let base = signature(b"Jefe", "1", "a", b"{}");
        assert_eq!(
            base,
            "sha256=e10e77ec9dc93e4be57dfe3ad97d4e744a5dc2b8800ccee6fe959c1fd3331e21"
        );
        assert_ne!(
            base,
            signature(b"Jefe", "2", "a", b"{}"),
            "the time is signed"
        );
        assert_ne!(
            base,
            signature(b"Jefe", "1", "b", b"{}"),
            "the target is signed"
        );
    }
}
