//! The audit log (`--audit-log`) and the failed-authentication metric:
//! one JSON line per S3 request naming who, what, from where and the
//! outcome — refusals and failed signatures included — and never a secret.

use std::time::{Duration, Instant};

use crate::common::*;

/// The log's lines once it has at least `n` of them (the writer is a
/// background thread).
fn lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find<'a>(
    lines: &'a [serde_json::Value],
    pred: impl Fn(&serde_json::Value) -> bool,
    what: &str,
) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| pred(l))
        .unwrap_or_else(|| panic!("no line for {what} in {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_audited_with_who_what_and_outcome_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let server = TestServer::start_with_args(&["--audit-log", log.to_str().unwrap()]);
    let c = sdk_client(&server);
    create_bucket(&c, "audited").await;
    put_bytes(&c, "audited", "dir/report.csv", b"a,b\n").await;
    let addr = server.s3_addr();
    // Anonymous: refused. A key that does not exist; a wrong secret.
    RawRequest::new("GET", "/audited/dir/report.csv")
        .send(addr)
        .await
        .assert_s3_error(403, "AccessDenied", "anonymous GET");
    RawRequest::new("GET", "/audited/dir/report.csv")
        .sign_with(addr, "AKIAINTRUDER", SECRET_KEY, Payload::Signed)
        .send(addr)
        .await
        .assert_s3_error(403, "InvalidAccessKeyId", "unknown key");
    RawRequest::new("DELETE", "/audited/dir/report.csv")
        .sign_with(
            addr,
            ACCESS_KEY,
            "not-the-secret-0123456789",
            Payload::Signed,
        )
        .send(addr)
        .await
        .assert_s3_error(403, "SignatureDoesNotMatch", "wrong secret");

    let lines = lines(&log, 5);
    let put = find(&lines, |l| l["operation"] == "PutObject", "the PutObject");
    assert_eq!(put["auth"], "key");
    assert_eq!(put["access_key"], ACCESS_KEY);
    assert_eq!(put["bucket"], "audited");
    assert_eq!(put["key"], "dir/report.csv");
    assert_eq!(put["status"], 200);
    assert_eq!(put["error"], serde_json::Value::Null);
    assert_eq!(put["remote"], "127.0.0.1");
    assert_eq!(put["tls"], false);
    assert!(put["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(put["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let anonymous = find(&lines, |l| l["auth"] == "anonymous", "the anonymous GET");
    assert_eq!(anonymous["operation"], "GetObject");
    assert_eq!(anonymous["status"], 403);
    assert_eq!(anonymous["error"], "AccessDenied");
    let intruder = find(
        &lines,
        |l| l["access_key"] == "AKIAINTRUDER",
        "the unknown key",
    );
    assert_eq!(intruder["auth"], "failed");
    assert_eq!(intruder["error"], "InvalidAccessKeyId");
    let forged = find(
        &lines,
        |l| l["error"] == "SignatureDoesNotMatch",
        "the wrong secret",
    );
    assert_eq!(forged["auth"], "failed");
    assert_eq!(forged["access_key"], ACCESS_KEY);
    assert_eq!(forged["operation"], "DeleteObject");

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        SECRET_KEY,
        "not-the-secret",
        "Signature=",
        "AWS4-HMAC-SHA256",
    ] {
        assert!(!text.contains(secret), "the audit log contains {secret}");
    }
    // Failed authentications are counted by code.
    let metrics = server.metrics();
    for code in ["InvalidAccessKeyId", "SignatureDoesNotMatch"] {
        assert_eq!(
            metric_sum(&metrics, "cairn_s3_auth_failures_total", &[("code", code)]),
            1.0,
            "{code}"
        );
    }
    assert_eq!(metric_sum(&metrics, "cairn_audit_dropped_total", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_there_is_no_audit_log_but_failures_are_counted() {
    let server = TestServer::start();
    RawRequest::new("GET", "/")
        .sign_with(
            server.s3_addr(),
            "AKIAINTRUDER",
            SECRET_KEY,
            Payload::Signed,
        )
        .send(server.s3_addr())
        .await
        .assert_s3_error(403, "InvalidAccessKeyId", "unknown key");
    let metrics = server.metrics();
    assert_eq!(
        metric_sum(
            &metrics,
            "cairn_s3_auth_failures_total",
            &[("code", "InvalidAccessKeyId")]
        ),
        1.0
    );
    assert!(!metrics.contains("cairn_audit_dropped_total"));
}
