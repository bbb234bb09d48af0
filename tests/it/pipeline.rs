//! Properties of the storage pipeline seen from outside: deduplication and
//! compression through the pipeline counters on `/metrics`, encryption at
//! rest by scanning the data directory, erasure coding by deleting drive
//! directories, and durability of acknowledged writes across `kill -9`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::common::*;
use crate::s3_compat::{tag as one_tag, tagging};
use aws_sdk_s3::error::DisplayErrorContext;

const LOGICAL: &str = "cairn_pipeline_logical_bytes_total";
const STORED: &str = "cairn_pipeline_stored_bytes_total";
const RAW: &str = "cairn_pipeline_raw_bytes_total";
const CHUNKS_STORED: &str = "cairn_pipeline_chunks_stored_total";
const CHUNKS_DEDUP: &str = "cairn_pipeline_chunks_deduplicated_total";

/// The pipeline counters at one moment.
#[derive(Clone, Copy, Debug)]
struct Counters {
    logical: f64,
    stored: f64,
    raw: f64,
    chunks: f64,
    dedup: f64,
}

impl Counters {
    fn read(server: &TestServer) -> Counters {
        let text = server.metrics();
        let get = |n: &str| {
            assert!(text.contains(n), "metric {n} is missing from /metrics");
            metric_sum(&text, n, &[])
        };
        Counters {
            logical: get(LOGICAL),
            stored: get(STORED),
            raw: get(RAW),
            chunks: get(CHUNKS_STORED),
            dedup: get(CHUNKS_DEDUP),
        }
    }

    fn since(self, before: Counters) -> Counters {
        Counters {
            logical: self.logical - before.logical,
            stored: self.stored - before.stored,
            raw: self.raw - before.raw,
            chunks: self.chunks - before.chunks,
            dedup: self.dedup - before.dedup,
        }
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= b.abs() * rel
}

// ---------------------------------------------------------------------------
// Dedup and compression
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_objects_under_ten_keys_are_stored_once() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "dedup-bucket").await;
    let data = Rng::new(test_seed("dedup")).bytes(4 * MIB);
    let size = data.len() as f64;

    let t0 = Counters::read(&server);
    put_bytes(&c, "dedup-bucket", "copy-0", &data).await;
    let first = Counters::read(&server).since(t0);
    assert!(
        close(first.logical, size, 0.001),
        "first PUT logical delta {first:?}"
    );
    assert!(
        first.chunks >= 4.0,
        "4 MiB should be several chunks: {first:?}"
    );
    assert!(
        first.stored >= 0.95 * size && first.stored < 1.1 * size,
        "random data is stored at about its size (plus encryption overhead): {first:?}"
    );
    for i in 1..10 {
        put_bytes(&c, "dedup-bucket", &format!("copy-{i}"), &data).await;
    }
    let all = Counters::read(&server).since(t0);
    eprintln!("10 × 4 MiB: {all:?}");
    assert!(
        close(all.logical, 10.0 * size, 0.001),
        "logical ≈ 10 × 4 MiB: {all:?}"
    );
    assert!(
        all.stored < 1.1 * size,
        "stored must grow by about one copy (< 1.1 × 4 MiB): {all:?}"
    );
    assert_eq!(
        all.chunks, first.chunks,
        "no new chunks for the 9 copies: {all:?}"
    );
    assert_eq!(
        all.dedup,
        9.0 * first.chunks,
        "every chunk of the 9 copies deduplicated: {all:?}"
    );
    assert!(
        all.raw >= 1.45 * all.stored,
        "raw bytes include 4+2 parity (≥ 1.5 × stored): {all:?}"
    );
    for i in [0, 4, 9] {
        assert!(
            get_bytes(&c, "dedup-bucket", &format!("copy-{i}")).await == data,
            "copy-{i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_inserted_at_the_front_still_dedups_over_90_percent() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "shift-bucket").await;
    let a = Rng::new(test_seed("shift")).bytes(16 * MIB);
    let mut b = Vec::with_capacity(a.len() + 1);
    b.push(0x42);
    b.extend_from_slice(&a);

    put_bytes(&c, "shift-bucket", "original", &a).await;
    let t0 = Counters::read(&server);
    put_bytes(&c, "shift-bucket", "shifted", &b).await;
    let d = Counters::read(&server).since(t0);
    eprintln!(
        "16 MiB + 1 byte in front: {d:?}, stored/logical = {:.3}",
        d.stored / d.logical
    );
    assert!(close(d.logical, b.len() as f64, 0.001), "{d:?}");
    assert!(
        d.stored <= 0.10 * b.len() as f64,
        "content-defined chunking must re-sync: stored {} of {} bytes",
        d.stored,
        b.len()
    );
    assert!(d.dedup > 0.0, "{d:?}");
    assert!(get_bytes(&c, "shift-bucket", "shifted").await == b);
    assert!(get_bytes(&c, "shift-bucket", "original").await == a);
}

/// Sensor-like CSV: timestamps, device ids and random-walk readings.
fn sensor_csv(rng: &mut Rng, min_len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(min_len + 256);
    s.push_str("timestamp,device,temp,hum,pres,bat,status\n");
    let mut t_ms: u64 = 1_749_299_696_750; // 2025-06-07T12:34:56.750Z
    let mut temp = [21.0f64; 64];
    let mut hum = [45.0f64; 64];
    let mut pres = [1013.0f64; 64];
    let mut bat = [3.9f64; 64];
    let walk = |rng: &mut Rng, v: &mut f64, step: f64, lo: f64, hi: f64| {
        let r = (rng.below(2001) as f64 - 1000.0) / 1000.0;
        *v = (*v + r * step).clamp(lo, hi);
    };
    while s.len() < min_len {
        let dev = rng.below(64) as usize;
        walk(rng, &mut temp[dev], 0.05, -20.0, 50.0);
        walk(rng, &mut hum[dev], 0.1, 0.0, 100.0);
        walk(rng, &mut pres[dev], 0.2, 950.0, 1050.0);
        walk(rng, &mut bat[dev], 0.001, 3.0, 4.2);
        t_ms += 50 + rng.below(400);
        let secs = t_ms / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let status = if rng.below(100) == 0 { "WARN" } else { "OK" };
        writeln!(
            s,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z,dev-{dev:05},temp={:.2},hum={:.2},pres={:.1},bat={:.2},status={status}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            t_ms % 1000,
            temp[dev],
            hum[dev],
            pres[dev],
            bat[dev],
        )
        .unwrap();
    }
    s.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_csv_is_compressed_below_40_percent() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "csv-bucket").await;
    let mut rng = Rng::new(test_seed("csv"));
    let csv = sensor_csv(&mut rng, 8 * MIB);
    assert!(csv.starts_with(b"timestamp,device"));
    let first_line = csv.split(|&b| b == b'\n').nth(1).unwrap();
    assert!(
        std::str::from_utf8(first_line)
            .unwrap()
            .starts_with("2025-06-07T12:34:5"),
        "{}",
        String::from_utf8_lossy(first_line)
    );

    let t0 = Counters::read(&server);
    put_bytes(&c, "csv-bucket", "sensors/2025-06-07.csv", &csv).await;
    let d = Counters::read(&server).since(t0);
    let ratio = d.stored / d.logical;
    eprintln!("8 MiB CSV: {d:?}, stored/logical = {ratio:.3}");
    assert!(close(d.logical, csv.len() as f64, 0.001), "{d:?}");
    assert!(d.stored > 0.0, "{d:?}");
    assert!(ratio < 0.40, "CSV must compress to < 40 %: {ratio:.3}");
    assert!(get_bytes(&c, "csv-bucket", "sensors/2025-06-07.csv").await == csv);
}

// ---------------------------------------------------------------------------
// Encryption at rest
// ---------------------------------------------------------------------------

/// Every file under `dir` that contains `needle`.
pub(crate) fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    walk_files(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| contains_bytes(&b, needle)))
        .map(|p| p.display().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_bytes_never_appear_in_plaintext_on_disk() {
    let mut server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "secret-bucket").await;
    let mut rng = Rng::new(test_seed("marker"));
    let marker = format!("CAIRN-MARKER-{}", rng.hex(32));
    // Random bytes with the marker every ~4 KiB: incompressible around it,
    // so compression alone cannot hide it.
    let mut body = Vec::new();
    while body.len() < 2 * MIB {
        body.extend_from_slice(marker.as_bytes());
        let n = 4000 + rng.below(200) as usize;
        body.extend_from_slice(&rng.bytes(n));
    }
    let needle = marker.as_bytes();

    // The scan itself works.
    let probe = tempfile::tempdir().unwrap();
    std::fs::write(probe.path().join("probe"), &body[1000..]).unwrap();
    assert_eq!(
        files_containing(probe.path(), needle).len(),
        1,
        "marker scan is broken"
    );

    put_bytes(&c, "secret-bucket", "plain/looking.txt", &body).await;
    // Also as a multipart upload's part.
    let up = c
        .create_multipart_upload()
        .bucket("secret-bucket")
        .key("plain/multipart.txt")
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().unwrap().to_owned();
    let etag = c
        .upload_part()
        .bucket("secret-bucket")
        .key("plain/multipart.txt")
        .upload_id(&id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
        .send()
        .await
        .expect("UploadPart")
        .e_tag()
        .unwrap()
        .to_owned();
    c.complete_multipart_upload()
        .bucket("secret-bucket")
        .key("plain/multipart.txt")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(etag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("Complete");
    assert!(get_bytes(&c, "secret-bucket", "plain/looking.txt").await == body);

    let files = walk_files(server.data_dir());
    assert!(
        files.len() > 3,
        "expected metadata and segment files, found {files:?}"
    );
    let found = files_containing(server.data_dir(), needle);
    assert!(
        found.is_empty(),
        "plaintext object bytes on disk (server running): {found:?}"
    );

    // After a clean stop (memtables flushed, logs closed) as well.
    server.stop();
    let found = files_containing(server.data_dir(), needle);
    assert!(
        found.is_empty(),
        "plaintext object bytes on disk (server stopped): {found:?}"
    );
    server.start_again();
    let c = sdk_client(&server);
    assert!(get_bytes(&c, "secret-bucket", "plain/multipart.txt").await == body);
}

/// User metadata, tags (object and bucket), content headers and checksums
/// are sealed at rest (ARCHITECTURE "Metadata records": `meta/sealing.rs`):
/// none of them appears in any file of the data directory, while the
/// object names do (the documented trade-off: listings need their order),
/// which also shows the scan reads the files that hold the metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_metadata_and_tags_never_appear_in_plaintext_on_disk() {
    let mut server = TestServer::start();
    let c = sdk_client(&server);
    let mut rng = Rng::new(test_seed("metadata-marker"));
    let mark = |what: &str, rng: &mut Rng| format!("{what}{}", rng.hex(24));
    let (meta, tag, upload_meta, later_tag, bucket_tag, content_type, name) = (
        mark("metameta", &mut rng),
        mark("tagvalue", &mut rng),
        mark("uploadmeta", &mut rng),
        mark("latertag", &mut rng),
        mark("buckettag", &mut rng),
        mark("type/x", &mut rng),
        mark("objectname", &mut rng),
    );
    create_bucket(&c, "meta-bucket").await;
    c.put_object()
        .bucket("meta-bucket")
        .key(&name)
        .metadata("note", &meta)
        .tagging(format!("project={tag}"))
        .content_type(&content_type)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"small body",
        ))
        .send()
        .await
        .expect("PutObject");
    // A bigger object too (chunks, not inline), tagged afterwards.
    put_bytes(&c, "meta-bucket", "big", &rng.bytes(300 * KIB)).await;
    c.put_object_tagging()
        .bucket("meta-bucket")
        .key("big")
        .tagging(tagging(vec![one_tag("later", &later_tag)]))
        .send()
        .await
        .expect("PutObjectTagging");
    // An upload in progress keeps its metadata until completed.
    c.create_multipart_upload()
        .bucket("meta-bucket")
        .key("pending")
        .metadata("note", &upload_meta)
        .send()
        .await
        .expect("CreateMultipartUpload");
    c.put_bucket_tagging()
        .bucket("meta-bucket")
        .tagging(tagging(vec![one_tag("team", &bucket_tag)]))
        .send()
        .await
        .expect("PutBucketTagging");

    // Everything reads back as written.
    let head = c
        .head_object()
        .bucket("meta-bucket")
        .key(&name)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("note"))
            .map(String::as_str),
        Some(meta.as_str())
    );
    assert_eq!(head.content_type(), Some(content_type.as_str()));
    let tags = c
        .get_object_tagging()
        .bucket("meta-bucket")
        .key("big")
        .send()
        .await
        .expect("GetObjectTagging");
    assert_eq!(tags.tag_set()[0].value(), later_tag);

    let secrets = [
        &meta,
        &tag,
        &upload_meta,
        &later_tag,
        &bucket_tag,
        &content_type,
    ];
    let check = |server: &TestServer, when: &str| {
        for s in secrets {
            let found = files_containing(server.data_dir(), s.as_bytes());
            assert!(
                found.is_empty(),
                "{s} in plaintext on disk ({when}): {found:?}"
            );
        }
        assert!(
            !files_containing(server.data_dir(), name.as_bytes()).is_empty(),
            "object names are in the clear (documented): the scan must find this one ({when})"
        );
    };
    check(&server, "server running");
    server.stop();
    check(&server, "server stopped");
    server.start_again();
    let c = sdk_client(&server);
    let head = c
        .head_object()
        .bucket("meta-bucket")
        .key(&name)
        .send()
        .await
        .expect("HeadObject after restart");
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("note"))
            .map(String::as_str),
        Some(meta.as_str())
    );
    let listed = c
        .list_multipart_uploads()
        .bucket("meta-bucket")
        .send()
        .await
        .expect("ListMultipartUploads");
    assert_eq!(listed.uploads().len(), 1);
    let bucket_tags = c
        .get_bucket_tagging()
        .bucket("meta-bucket")
        .send()
        .await
        .expect("GetBucketTagging");
    assert_eq!(bucket_tags.tag_set()[0].value(), bucket_tag);
}

// ---------------------------------------------------------------------------
// Erasure coding: losing drives
// ---------------------------------------------------------------------------

fn drive_loss_objects(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    [0usize, 1, 100 * KIB, 3 * MIB, 9 * MIB]
        .into_iter()
        .map(|n| (format!("size-{n}"), rng.bytes(n)))
        .collect()
}

/// Reads `key` chunk by chunk, keeping whatever arrives before an error.
/// Returns (status if a response came, bytes, whether the stream failed).
async fn read_partial(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Option<u16>, Vec<u8>, bool) {
    match c.get_object().bucket(bucket).key(key).send().await {
        Err(e) => {
            eprintln!("GET {key} failed as expected: {}", DisplayErrorContext(&e));
            (sdk_error_status(&e), Vec::new(), true)
        }
        Ok(mut out) => {
            let mut got = Vec::new();
            loop {
                match out.body.try_next().await {
                    Ok(Some(b)) => got.extend_from_slice(&b),
                    Ok(None) => return (Some(200), got, false),
                    Err(e) => {
                        eprintln!("GET {key} body failed after {} bytes: {e}", got.len());
                        return (Some(200), got, true);
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_survive_losing_any_two_drives_and_never_return_wrong_bytes_after_three() {
    let seed = test_seed("drives");
    for (round, lost) in [[1usize, 4], [0, 5]].into_iter().enumerate() {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "drives-bucket").await;
        let objects = drive_loss_objects(seed.wrapping_add(round as u64));
        for (k, v) in &objects {
            put_bytes(&c, "drives-bucket", k, v).await;
        }
        for i in 0..6 {
            assert!(
                server.drive_dir(i).is_dir(),
                "drive dir {i} missing: layout changed?"
            );
        }
        server.stop();
        for i in lost {
            std::fs::remove_dir_all(server.drive_dir(i)).unwrap();
        }
        server.start_again();
        let c = sdk_client(&server);
        for (k, v) in &objects {
            let got = get_bytes(&c, "drives-bucket", k).await;
            assert!(
                got == *v,
                "round {round}: {k} differs after losing drives {lost:?} ({} vs {} bytes)",
                got.len(),
                v.len()
            );
        }
        // Listing and HEAD still work too.
        let out = c
            .list_objects_v2()
            .bucket("drives-bucket")
            .send()
            .await
            .expect("list");
        assert_eq!(out.key_count(), Some(objects.len() as i32));

        if round == 1 {
            // A third drive: beyond what 4+2 can rebuild. The two lost drives
            // go again too (read-repair may have rebuilt shards onto them).
            server.stop();
            let third = (0..6).find(|i| !lost.contains(i)).unwrap();
            for i in lost.iter().copied().chain([third]) {
                std::fs::remove_dir_all(server.drive_dir(i)).unwrap();
            }
            server.start_again();
            let c = sdk_client(&server);
            let (key, want) = objects.last().unwrap();
            assert!(want.len() >= 9 * MIB);
            let (status, got, failed) = read_partial(&c, "drives-bucket", key).await;
            assert!(
                want.starts_with(&got),
                "with 3 drives lost the server returned WRONG bytes (status {status:?}, {} bytes)",
                got.len()
            );
            assert!(
                failed || status != Some(200) || got.len() < want.len(),
                "with 3 of 6 drives lost a 9 MiB object still read back complete: status {status:?}"
            );
            if status.is_some_and(|s| s != 200) {
                assert!(
                    status.unwrap() >= 500,
                    "a lost object is a server-side error: {status:?}"
                );
            }
            // The server itself is still alive.
            let (s, _) = server.admin_get("/health/live");
            assert_eq!(s, 200);
        }
    }
}

// ---------------------------------------------------------------------------
// Durability across kill -9
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_puts_survive_kill_9() {
    let mut server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "durable-bucket").await;
    let mut rng = Rng::new(test_seed("kill9"));
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..20 {
        let n = 1 + rng.below(64 * KIB as u64) as usize;
        objects.push((format!("small/{i:02}"), rng.bytes(n)));
    }
    objects.push(("large/a".into(), rng.bytes(6 * MIB + 5)));
    objects.push(("large/b".into(), rng.bytes(17 * MIB + 3)));
    for (k, v) in &objects {
        let etag = put_bytes(&c, "durable-bucket", k, v).await;
        assert_eq!(etag, format!("\"{}\"", md5_hex(v)), "{k}");
    }
    // One more PUT in flight while the process dies: it may be absent
    // afterwards, but if it is there it must be whole.
    let inflight = rng.bytes(24 * MIB);
    let c2 = c.clone();
    let body = inflight.clone();
    let task = tokio::spawn(async move {
        c2.put_object()
            .bucket("durable-bucket")
            .key("inflight")
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.kill();
    let inflight_acked = task.await.unwrap();

    server.start_again();
    let c = sdk_client(&server);
    for (k, v) in &objects {
        let got = get_bytes(&c, "durable-bucket", k).await;
        assert!(
            got == *v,
            "{k}: acknowledged PUT lost or damaged by kill -9 ({} bytes)",
            got.len()
        );
    }
    if object_exists(&c, "durable-bucket", "inflight").await {
        let got = get_bytes(&c, "durable-bucket", "inflight").await;
        assert!(
            got == inflight,
            "a PUT cut by kill -9 left a damaged object ({} bytes)",
            got.len()
        );
    } else {
        assert!(
            !inflight_acked,
            "an acknowledged PUT vanished after kill -9"
        );
    }
    let out = c
        .list_objects_v2()
        .bucket("durable-bucket")
        .send()
        .await
        .expect("list");
    let n = out.key_count().unwrap_or(0) as usize;
    assert!(
        n == objects.len() || n == objects.len() + 1,
        "{n} keys listed"
    );
}
