//! The Grafana dashboard and the Prometheus alert rules must only use metrics
//! a live server exposes: scrape a real `cairn server` after some traffic and
//! check every `cairn_*` / `process_*` name they mention.

use std::collections::BTreeSet;

use crate::common::*;

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
        // A notification target (nobody listens) so its series exist.
        let server =
            TestServer::start_with_args(&["--notify-target", "probe=mqtt://127.0.0.1:9/nobody"]);
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

/// One multipart upload of `parts`, completed.
pub(crate) async fn multipart(c: &aws_sdk_s3::Client, bucket: &str, key: &str, parts: &[Vec<u8>]) {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().unwrap().to_owned();
    let mut done = aws_sdk_s3::types::CompletedMultipartUpload::builder();
    for (i, body) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let etag = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
            .send()
            .await
            .expect("UploadPart")
            .e_tag()
            .unwrap()
            .to_owned();
        done = done.parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(etag)
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(done.build())
        .send()
        .await
        .expect("CompleteMultipartUpload");
}

/// The stored-totals gauges, as `/metrics` shows them.
fn stored_gauges(server: &TestServer) -> Vec<(String, f64)> {
    let text = server.metrics();
    let mut out: Vec<(String, f64)> = [
        "cairn_stored_objects",
        "cairn_stored_logical_bytes",
        "cairn_stored_bytes",
        "cairn_stored_raw_bytes",
        "cairn_stored_chunks",
        "cairn_stored_inline_bytes",
    ]
    .into_iter()
    .map(|n| (n.to_owned(), metric_sum(&text, n, &[])))
    .collect();
    for bucket in ["totals-a", "totals-b"] {
        for n in ["cairn_bucket_objects", "cairn_bucket_logical_bytes"] {
            out.push((
                format!("{n}{{bucket={bucket}}}"),
                metric_sum(&text, n, &[("bucket", bucket)]),
            ));
        }
    }
    out
}

/// What `/metrics` says is stored comes from the metadata: after a restart
/// (a clean one, then kill -9) it is what it was, not "0 B since start".
#[test]
fn stored_totals_survive_a_restart() {
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "totals-a").await;
        create_bucket(&c, "totals-b").await;
        let mut rng = Rng::new(test_seed("stored_totals_survive_a_restart"));
        let shared = rng.bytes(300 * KIB);
        put_bytes(&c, "totals-a", "k1", &shared).await;
        // A duplicate in the other bucket: stored once.
        put_bytes(&c, "totals-b", "k2", &shared).await;
        // A small object (kept in the metadata).
        put_bytes(&c, "totals-a", "small", &rng.bytes(100)).await;
        // Multipart: a 5 MiB part and a last one.
        let parts = vec![rng.bytes(5 * 1024 * KIB), rng.bytes(100 * KIB)];
        multipart(&c, "totals-a", "mp", &parts).await;
        // An overwrite and a delete.
        put_bytes(&c, "totals-a", "k1", &rng.bytes(200 * KIB)).await;
        put_bytes(&c, "totals-b", "gone", &rng.bytes(50 * KIB)).await;
        delete_key(&c, "totals-b", "gone").await;

        let logical_a = (200 * KIB + 100 + 5 * 1024 * KIB + 100 * KIB) as f64;
        let logical_b = (300 * KIB) as f64;
        let before = stored_gauges(&server);
        let get = |g: &[(String, f64)], n: &str| {
            g.iter()
                .find(|(name, _)| name == n)
                .map(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(get(&before, "cairn_stored_objects"), 4.0, "{before:?}");
        assert_eq!(
            get(&before, "cairn_stored_logical_bytes"),
            logical_a + logical_b,
            "{before:?}"
        );
        assert_eq!(
            get(&before, "cairn_bucket_logical_bytes{bucket=totals-a}"),
            logical_a
        );
        assert_eq!(
            get(&before, "cairn_bucket_logical_bytes{bucket=totals-b}"),
            logical_b
        );
        assert_eq!(get(&before, "cairn_bucket_objects{bucket=totals-a}"), 3.0);
        assert_eq!(get(&before, "cairn_bucket_objects{bucket=totals-b}"), 1.0);
        // Random bytes do not compress: stored is what dedup left (the
        // shared body once; the overwritten and deleted bodies' chunks
        // until garbage collection), plus AEAD tags.
        let stored = get(&before, "cairn_stored_bytes");
        let unique = (300 * KIB + 100 + 5 * 1024 * KIB + 100 * KIB + 200 * KIB + 50 * KIB) as f64;
        assert!(
            stored >= unique && stored < unique * 1.01,
            "stored {stored}, unique {unique}: {before:?}"
        );
        assert!(get(&before, "cairn_stored_inline_bytes") >= 100.0);
        assert!(
            get(&before, "cairn_stored_raw_bytes") > stored,
            "{before:?}"
        );
        assert!(get(&before, "cairn_stored_chunks") > 0.0);

        // Clean stop first: a server just started may not have installed
        // its SIGTERM handler yet (server.rs installs it after the listeners
        // serve), and SIGKILL needs none.
        for kill9 in [false, true] {
            server.restart(kill9);
            let after = stored_gauges(&server);
            assert_eq!(after, before, "after a restart (kill -9: {kill9})");
            // The process counters start again from zero; the totals do not.
            assert_eq!(server.metric("cairn_pipeline_logical_bytes_total"), 0.0);
        }
    });
}
