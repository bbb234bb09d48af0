//! Event notifications end to end: a bucket's configuration set with
//! aws-sdk-s3, events delivered to a real Mosquitto broker (QoS 1, read
//! back by an MQTT subscriber) and to a webhook (a small HTTP server in the
//! test, checking the HMAC signature), across a broker outage and a
//! `kill -9` of the server — every acknowledged change's event arrives.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter, TopicConfiguration,
};
use tokio::sync::mpsc;

use crate::common::*;

const SECRET: &str = "notify-test-signing-key-0123456789";

/// A Mosquitto broker on a fixed loopback port (so a restarted one is the
/// same target), killed on drop.
pub(crate) struct Broker {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    pub(crate) fn binary() -> Option<PathBuf> {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    }

    pub(crate) fn start(port: u16) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Broker {
            child: None,
            port,
            dir,
        };
        b.up();
        b
    }

    fn up(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let bin = Broker::binary().expect(
            "mosquitto is required for this test (CI installs it via .ci/run: apt-get install mosquitto)",
        );
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker cleanly (SIGTERM: it saves its sessions, so a
    /// subscriber's subscription outlives the outage).
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.down();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An MQTT subscriber: every message on `topic`, as parsed JSON. With a
/// `session` id its session is persistent (QoS 1 messages published while
/// it is away are kept for it).
pub(crate) fn subscribe(
    port: u16,
    topic: &str,
    session: Option<&str>,
) -> mpsc::UnboundedReceiver<serde_json::Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    let id = session.map_or_else(|| format!("test-sub-{}", free_port()), str::to_owned);
    let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    if session.is_some() {
        opts.set_clean_session(false);
    }
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 64);
    let topic = topic.to_owned();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    // (Re)subscribe on every connection: the broker may restart.
                    let _ = client.subscribe(&topic, rumqttc::QoS::AtLeastOnce).await;
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice(&p.payload)
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    rx
}

/// A webhook: every POST's (signature, timestamp and target headers, body), answered 200.
async fn webhook() -> (SocketAddr, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    webhook_over(None).await
}

/// [`webhook`], over TLS with `tls` when given.
async fn webhook_over(
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let h = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let sig = format!(
                                "{}\n{}\n{}",
                                h("x-cairn-signature"),
                                h("x-cairn-timestamp"),
                                h("x-cairn-target")
                            );
                            let body = http_body_util::BodyExt::collect(req.into_body())
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let _ = tx.send((sig, body));
                            // Each answer closes its connection (as an
                            // HTTP/1.0 receiver would): the sender reconnects.
                            let mut resp = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::new(),
                            ));
                            resp.headers_mut().insert(
                                hyper::header::CONNECTION,
                                hyper::header::HeaderValue::from_static("close"),
                            );
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Announces every new object of `bucket` to the target `arn` names.
pub(crate) async fn notify_all(s3: &aws_sdk_s3::Client, bucket: &str, arn: &str) {
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .topic_configurations(
                    TopicConfiguration::builder()
                        .topic_arn(arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn secret_file(dir: &Path) -> String {
    let p = dir.join("notify.key");
    std::fs::write(&p, SECRET).unwrap();
    p.display().to_string()
}

/// (eventName, key) of an S3 event message.
pub(crate) fn name_and_key(v: &serde_json::Value) -> (String, String) {
    let r = &v["Records"][0];
    (
        r["eventName"].as_str().unwrap_or_default().to_owned(),
        r["s3"]["object"]["key"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Waits until `want` messages arrived (or the deadline), returning them.
async fn collect<T>(rx: &mut mpsc::UnboundedReceiver<T>, want: usize, secs: u64) -> Vec<T> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while got.len() < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(v)) => got.push(v),
            _ => break,
        }
    }
    got
}

/// Checks a webhook message as a receiver would: the signature over the
/// timestamp, the target and the body, a recent timestamp, this target.
fn check_signature(received: &str, body: &[u8]) {
    check_signature_for("hook", received, body);
}

fn check_signature_for(want_target: &str, received: &str, body: &[u8]) {
    use hmac::{KeyInit, Mac};
    let mut lines = received.split('\n');
    let (sig, ts, target) = (
        lines.next().unwrap(),
        lines.next().unwrap(),
        lines.next().unwrap(),
    );
    assert_eq!(target, want_target);
    let sent: u64 = ts.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(sent) < 300, "timestamp {sent}, now {now}");
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(format!("{ts}\n{target}\n").as_bytes());
    m.update(body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(m.finalize().into_bytes()))
    );
}

fn filter(prefix: &str) -> NotificationConfigurationFilter {
    NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(prefix)
                        .build(),
                )
                .build(),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_webhook_and_an_mqtt_broker_as_s3_documents_them() {
    if Broker::binary().is_none() && std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() == Ok("1") {
        return;
    }
    let broker = Broker::start(free_port());
    let (hook_addr, mut hook) = webhook().await;
    let keydir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_args(&[
        "--notify-target",
        &format!("hook=http://{hook_addr}/events"),
        "--notify-target",
        &format!("iot=mqtt://127.0.0.1:{}/cairn/events", broker.port),
        "--notify-secret-file",
        &secret_file(keydir.path()),
    ]);
    let mut mqtt = subscribe(broker.port, "cairn/events", None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s3 = sdk_client(&server);
    create_bucket(&s3, "fleet").await;

    let config = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("new-readings")
                .queue_arn("arn:cairn:sqs:us-east-1:cairn:hook")
                .events(Event::from("s3:ObjectCreated:*"))
                .filter(filter("in/"))
                .build()
                .unwrap(),
        )
        .topic_configurations(
            TopicConfiguration::builder()
                .id("removals")
                .topic_arn("arn:cairn:sns:us-east-1:cairn:iot")
                .events(Event::from("s3:ObjectRemoved:*"))
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket("fleet")
        .notification_configuration(config)
        .send()
        .await
        .unwrap();
    let got = s3
        .get_bucket_notification_configuration()
        .bucket("fleet")
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_configurations().len(), 1);
    assert_eq!(got.queue_configurations()[0].id(), Some("new-readings"));
    assert_eq!(
        got.topic_configurations()[0].topic_arn(),
        "arn:cairn:sns:us-east-1:cairn:iot"
    );

    // A destination the server does not have, and overlapping filters.
    for (arn, prefix2, code) in [
        (
            "arn:cairn:sqs:us-east-1:cairn:nope",
            None,
            "InvalidArgument",
        ),
        (
            "arn:cairn:sqs:us-east-1:cairn:hook",
            Some("in/sub/"),
            "InvalidArgument",
        ),
    ] {
        let mut c = NotificationConfiguration::builder().queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(arn)
                .events(Event::from("s3:ObjectCreated:Put"))
                .filter(filter("in/"))
                .build()
                .unwrap(),
        );
        if let Some(p) = prefix2 {
            c = c.queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(arn)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .filter(filter(p))
                    .build()
                    .unwrap(),
            );
        }
        let e = s3
            .put_bucket_notification_configuration()
            .bucket("fleet")
            .notification_configuration(c.build())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some(code),
            "{arn} {prefix2:?}: {e:?}"
        );
    }

    // Created: PUT, a completed upload, a copy (all under in/); out/ has no rule.
    put_bytes(&s3, "fleet", "in/a b.json", b"{\"t\":21.5}").await;
    put_bytes(&s3, "fleet", "out/b.json", b"{}").await;
    crate::ops_metrics::multipart(&s3, "fleet", "in/m.bin", &[b"part one".to_vec()]).await;
    s3.copy_object()
        .bucket("fleet")
        .key("in/c.json")
        .copy_source("fleet/out/b.json")
        .send()
        .await
        .unwrap();
    delete_key(&s3, "fleet", "in/a b.json").await;
    // Removing a version by its id is announced too.
    put_bytes(&s3, "fleet", "v.json", b"{}").await;
    s3.delete_object()
        .bucket("fleet")
        .key("v.json")
        .version_id("null")
        .send()
        .await
        .unwrap();

    let created = collect(&mut hook, 3, 30).await;
    let mut seen = Vec::new();
    for (sig, body) in &created {
        check_signature(sig, body);
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["s3"]["bucket"]["name"], "fleet");
        assert_eq!(r["s3"]["configurationId"], "new-readings");
        assert_eq!(r["s3"]["object"]["sequencer"].as_str().unwrap().len(), 16);
        seen.push(name_and_key(&v));
    }
    assert_eq!(
        seen,
        [
            ("ObjectCreated:Put".to_owned(), "in/a+b.json".to_owned()),
            (
                "ObjectCreated:CompleteMultipartUpload".to_owned(),
                "in/m.bin".to_owned()
            ),
            ("ObjectCreated:Copy".to_owned(), "in/c.json".to_owned()),
        ],
        "in commit order, nothing for out/"
    );
    let first: serde_json::Value = serde_json::from_slice(&created[0].1).unwrap();
    assert_eq!(first["Records"][0]["s3"]["object"]["size"], 10);
    assert_eq!(
        first["Records"][0]["s3"]["object"]["eTag"],
        md5_hex(b"{\"t\":21.5}")
    );

    let removed = collect(&mut mqtt, 2, 30).await;
    let removed: Vec<_> = removed.iter().map(name_and_key).collect();
    assert_eq!(
        removed,
        [
            ("ObjectRemoved:Delete".to_owned(), "in/a+b.json".to_owned()),
            ("ObjectRemoved:Delete".to_owned(), "v.json".to_owned()),
        ],
        "the DELETEs' events over MQTT"
    );
    // Nothing more arrives, and the metrics agree.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.try_recv().is_err() && mqtt.try_recv().is_err());
    let m = server.metrics();
    assert_eq!(
        metric_sum(
            &m,
            "cairn_notify_events_delivered_total",
            &[("target", "hook")]
        ),
        3.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "cairn_notify_events_delivered_total",
            &[("target", "iot")]
        ),
        2.0
    );
    assert_eq!(metric_sum(&m, "cairn_notify_events_queued", &[]), 0.0);
}

/// The broker is down while objects are written, and the server is killed
/// (SIGKILL) with events still queued: once the broker is back, every
/// acknowledged PUT's event arrives (at least once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_out_a_broker_outage_and_a_kill_9() {
    if Broker::binary().is_none() && std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() == Ok("1") {
        return;
    }
    let port = free_port();
    let mut broker = Broker::start(port);
    // A subscriber with a persistent session subscribes, then the broker
    // goes down (keeping the session) before anything is written.
    let mut rx = subscribe(port, "fleet/new", Some("outage-subscriber"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.down();
    let keydir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with_args(&[
        "--notify-target",
        &format!("iot=mqtt://127.0.0.1:{port}/fleet/new"),
        "--notify-secret-file",
        &secret_file(keydir.path()),
    ]);
    let s3 = sdk_client(&server);
    create_bucket(&s3, "fleet").await;
    notify_all(&s3, "fleet", "arn:cairn:sns:us-east-1:cairn:iot").await;
    let mut keys = BTreeSet::new();
    for i in 0..20 {
        let key = format!("r/{i:03}.json");
        put_bytes(&s3, "fleet", &key, format!("{{\"i\":{i}}}").as_bytes()).await;
        keys.insert(key);
    }
    // Nothing delivered: the broker is down; the events wait, counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = server.metrics();
        if metric_sum(&m, "cairn_notify_delivery_failures_total", &[]) >= 1.0
            && metric_sum(&m, "cairn_notify_events_queued", &[("target", "iot")]) == 20.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed delivery counted, or not 20 queued:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // `cairn admin status` shows the queue.
    let (ok, out, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("event notifications: iot 20 queued (oldest "),
        "{out}"
    );
    // Killed with all 20 queued; 10 more written after the restart.
    server.restart(true);
    let s3 = sdk_client(&server);
    for i in 20..30 {
        let key = format!("r/{i:03}.json");
        put_bytes(&s3, "fleet", &key, b"{}").await;
        keys.insert(key);
    }
    broker.up();
    let mut got = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < keys.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(v)) => {
                got.insert(name_and_key(&v).1);
            }
            _ => break,
        }
    }
    assert_eq!(got, keys, "every acknowledged PUT's event arrived");
}

/// An `https://` webhook: its certificate must chain to `--notify-ca-file`
/// (or the system's roots, which a test CA is not among: then nothing is
/// delivered and the failures are counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_an_https_webhook_its_ca_vouches_for() {
    use rustls::pki_types::pem::PemObject;
    if !require_tool("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    crate::tls::make_certs(dir.path());
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> =
        rustls::pki_types::CertificateDer::pem_file_iter(dir.path().join("server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_file(dir.path().join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let (addr, mut hook) = webhook_over(Some(tokio_rustls::TlsAcceptor::from(
        std::sync::Arc::new(config),
    )))
    .await;
    let target = format!("secure=https://localhost:{}/events", addr.port());
    let secret = secret_file(dir.path());
    let ca = dir.path().join("ca.pem").display().to_string();
    for trusted in [true, false] {
        let mut args = vec!["--notify-target", &target, "--notify-secret-file", &secret];
        if trusted {
            args.extend(["--notify-ca-file", &ca]);
        }
        let server = TestServer::start_with_args(&args);
        let s3 = sdk_client(&server);
        create_bucket(&s3, "tls").await;
        notify_all(&s3, "tls", "arn:cairn:sqs:us-east-1:cairn:secure").await;
        put_bytes(&s3, "tls", "k.json", b"{}").await;
        if trusted {
            let got = collect(&mut hook, 1, 30).await;
            assert_eq!(got.len(), 1, "delivered over TLS");
            check_signature_for("secure", &got[0].0, &got[0].1);
            let v: serde_json::Value = serde_json::from_slice(&got[0].1).unwrap();
            assert_eq!(name_and_key(&v).1, "k.json");
        } else {
            // The test CA is not trusted: the handshake fails, the event waits.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let m = server.metrics();
                if metric_sum(&m, "cairn_notify_delivery_failures_total", &[]) >= 1.0 {
                    assert_eq!(metric_sum(&m, "cairn_notify_events_queued", &[]), 1.0);
                    break;
                }
                assert!(Instant::now() < deadline, "no failure counted:\n{m}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(
                hook.try_recv().is_err(),
                "nothing reached the untrusted webhook"
            );
        }
    }
}
