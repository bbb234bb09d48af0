//! The Grafana dashboard and the Prometheus alert rules must only use metrics
//! a live server exposes: scrape a real `cairn server` after some traffic and
//! check every `cairn_*` / `process_*` name they mention.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::*;

/// Every `cairn_…` or `process_…` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let starts = (rest.starts_with("cairn_") || rest.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..len].to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn dashboard_and_alerts_use_only_exposed_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard =
        std::fs::read_to_string(root.join("ops/grafana/dashboards/cairn.json")).unwrap();
    let alerts = std::fs::read_to_string(root.join("ops/prometheus/alerts.yml")).unwrap();

    run(async {
        let server = TestServer::start();
        let c = sdk_client(&server);
        // Traffic so per-operation and per-status series exist.
        create_bucket(&c, "ops-bucket").await;
        put_bytes(&c, "ops-bucket", "k", &Rng::new(1).bytes(300 * KIB)).await;
        let _ = get_bytes(&c, "ops-bucket", "k").await;
        let _ = c
            .get_object()
            .bucket("ops-bucket")
            .key("missing")
            .send()
            .await;
        let (status, _) = server.admin_get("/metrics");
        assert_eq!(status, 200);
        let exposed: BTreeSet<String> = server
            .metrics()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_owned)
            .collect();
        for (what, text) in [("dashboard", &dashboard), ("alert rules", &alerts)] {
            let used = metric_names(text);
            assert!(!used.is_empty(), "no metric names found in the {what}");
            let missing: Vec<_> = used.difference(&exposed).collect();
            assert!(
                missing.is_empty(),
                "the {what} uses metrics /metrics does not expose: {missing:?}"
            );
        }
    });
}

#[test]
fn metric_name_extraction_finds_whole_names() {
    let names = metric_names(
        r#"rate(cairn_s3_requests_total[1m]) / x_cairn_not{a="cairn_b"} process_resident_memory_bytes"#,
    );
    let want: BTreeSet<String> = [
        "cairn_s3_requests_total",
        "cairn_b",
        "process_resident_memory_bytes",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, want);
}
