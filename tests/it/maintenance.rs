//! `cairn admin heal | scrub | gc | status` against a real server: lost
//! shards are rebuilt with progress output, and a scrub afterwards finds
//! nothing missing; a wiped drive is reported `replaced` and healed by
//! itself; a drive of another server is refused and never written; a data
//! directory from before drive markers is adopted.

use std::process::Command;

use crate::common::*;

fn admin(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    cairn_admin_as(server, ACCESS_KEY, SECRET_KEY, args)
}

#[test]
fn heal_rebuilds_lost_segments_and_scrub_then_finds_nothing() {
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "heal").await;
        let mut rng = Rng::new(0xfeed);
        let mut objects = Vec::new();
        for i in 0..6 {
            let data = rng.bytes(200 * KIB + i * 77_777);
            put_bytes(&c, "heal", &format!("obj/{i}"), &data).await;
            objects.push((format!("obj/{i}"), data));
        }

        // A clean scrub first: everything verified, nothing to fix.
        let (ok, out, err) = admin(&server, &["scrub"]);
        assert!(ok, "scrub failed: {out}\n{err}");
        assert_eq!(count_before(&out, "missing"), 0, "{out}");
        assert!(count_before(&out, "shards verified") > 0, "{out}");

        // Lose the segments of two drives (their markers stay, so the
        // drives are not `replaced` and no heal starts by itself: the
        // lost shards are the scrub's to find).
        server.stop();
        for d in [0, 3] {
            std::fs::remove_dir_all(server.drive_dir(d).join("segments")).unwrap();
        }
        server.start_again();
        let (ok, out, err) = admin(&server, &["heal"]);
        assert!(ok, "heal failed: {out}\n{err}");
        assert!(err.contains("heal started"), "{err}");
        assert!(err.contains("chunks"), "no progress shown: {err}");
        let missing = count_before(&out, "missing");
        assert!(missing > 0, "{out}");
        assert_eq!(count_before(&out, "repaired"), missing, "{out}");
        assert_eq!(count_before(&out, "unrecoverable"), 0, "{out}");

        let (ok, out, _) = admin(&server, &["scrub"]);
        assert!(ok);
        assert_eq!(
            count_before(&out, "missing"),
            0,
            "full redundancy after heal: {out}"
        );
        assert_eq!(count_before(&out, "corrupt"), 0, "{out}");
        assert!(server.metric("cairn_shards_repaired_total") >= missing as f64);
        assert_eq!(server.metric("cairn_heal_backlog_bytes"), 0.0);

        // Redundancy is real: two *other* drives can go now.
        server.stop();
        for d in [1, 5] {
            std::fs::remove_dir_all(server.drive_dir(d)).unwrap();
        }
        server.start_again();
        let c = sdk_client(&server);
        for (key, data) in &objects {
            assert_eq!(&get_bytes(&c, "heal", key).await, data, "{key}");
        }

        // gc runs and reports (nothing is past the default grace period).
        let (ok, out, err) = admin(&server, &["gc"]);
        assert!(ok, "gc failed: {out}\n{err}");
        assert!(out.contains("0 chunks deleted"), "{out}");
    });
}

#[test]
fn admin_commands_explain_an_unreachable_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["admin", "scrub", "--admin-url", "http://127.0.0.1:9"])
        .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the admin listener"), "{err}");
}

#[test]
fn admin_endpoints_require_a_valid_signature() {
    let server = TestServer::start();
    // Unsigned: 403, and nothing happens; metrics and health stay open.
    let (status, body) = http_get(server.admin_addr(), "/admin/status");
    assert_eq!(status, 403, "{body}");
    assert_eq!(http_get(server.admin_addr(), "/health/live").0, 200);
    assert_eq!(http_get(server.admin_addr(), "/metrics").0, 200);
    // A wrong secret: the CLI says so.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["admin", "status", "--admin-url", &server.admin()])
        .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_SECRET_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the request"), "{err}");
    // No credentials at all: a clear message, exit status 2.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["admin", "status", "--admin-url", &server.admin()])
        .env_remove("CAIRN_ACCESS_KEY")
        .env_remove("CAIRN_SECRET_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAIRN_ACCESS_KEY"));
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[test]
fn deleting_objects_and_collecting_shrinks_the_drives() {
    run(async {
        let server =
            TestServer::start_with_args(&["--gc-grace-secs", "0", "--gc-interval-secs", "0"]);
        let c = sdk_client(&server);
        create_bucket(&c, "gc-bucket").await;
        let mut rng = Rng::new(0x6c);
        let keep = rng.bytes(300 * KIB);
        put_bytes(&c, "gc-bucket", "keep", &keep).await;
        for i in 0..10 {
            put_bytes(&c, "gc-bucket", &format!("tmp/{i}"), &rng.bytes(MIB)).await;
        }
        let drives = server.data_dir().join("drives");
        let full = dir_bytes(&drives);
        for i in 0..10 {
            delete_key(&c, "gc-bucket", &format!("tmp/{i}")).await;
        }
        // Segments last written within the settle time (2 s) are left alone.
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        let (ok, out, err) = admin(&server, &["gc"]);
        assert!(ok, "{out}\n{err}");
        assert!(count_before(&out, "chunks deleted") > 0, "{out}");
        let after = dir_bytes(&drives);
        assert!(
            after * 4 < full,
            "drives: {full} bytes before, {after} after ({out})"
        );
        assert!(server.metric("cairn_gc_reclaimed_bytes_total") > 0.0);
        assert_eq!(get_bytes(&c, "gc-bucket", "keep").await, keep);
    });
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish_and_then_stops() {
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "drain-bucket").await;
        let body = Rng::new(0xd4a1).bytes(48 * MIB);
        let upload = {
            let c = c.clone();
            let body = body.clone();
            tokio::spawn(async move {
                c.put_object()
                    .bucket("drain-bucket")
                    .key("big")
                    .body(aws_sdk_s3::primitives::ByteStream::from(body))
                    .send()
                    .await
            })
        };
        // SIGTERM once the server is handling the upload (its body still
        // arriving): a fixed sleep lost the race on a loaded machine, where
        // the client had not connected yet. stop() waits for the exit.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while server.metric("cairn_s3_inflight_requests") < 1.0 && !upload.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the upload never reached the server"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let server = tokio::task::spawn_blocking(move || {
            server.stop();
            server
        })
        .await
        .unwrap();
        let acked = upload.await.unwrap();
        let mut server = server;
        server.start_again();
        let c = sdk_client(&server);
        match acked {
            Ok(_) => assert_eq!(get_bytes(&c, "drain-bucket", "big").await, body),
            // The upload may have completed before the signal arrived…
            // otherwise it must have been allowed to finish.
            Err(e) => panic!("an upload in flight at SIGTERM failed: {e:?}"),
        }
        assert!(
            !server
                .stderr_text()
                .contains("recovered from an unclean shutdown"),
            "a clean stop must not trigger the recount"
        );
    });
}

#[test]
fn admin_status_shows_drives_and_savings_and_flags_a_missing_drive() {
    run(async {
        let server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "status-bucket").await;
        let body = Rng::new(3).bytes(600 * KIB);
        for k in ["a", "b", "c"] {
            put_bytes(&c, "status-bucket", k, &body).await;
        }
        let (ok, out, err) = admin(&server, &["status"]);
        assert!(ok, "{out}\n{err}");
        assert!(out.contains("erasure coding 4+2"), "{out}");
        assert!(out.contains("(3.00x)"), "three copies dedup to one: {out}");
        assert_eq!(
            out.lines().filter(|l| l.contains("  ok  ")).count(),
            6,
            "{out}"
        );
        let (ok, json, _) = admin(&server, &["status", "--json"]);
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["drives"].as_array().unwrap().len(), 6);
        assert!(v["drives"][0]["fs_size_bytes"].as_u64().unwrap() > 0);

        std::fs::remove_dir_all(server.drive_dir(2)).unwrap();
        let (ok, out, err) = admin(&server, &["status"]);
        assert!(!ok, "a missing drive must fail the status command");
        assert!(out.contains("MISSING"), "{out}");
        assert!(err.contains("drive 2: its directory is missing"), "{err}");
        let (ok, json, _) = admin(&server, &["status", "--json"]);
        assert!(!ok, "--json fails the same way");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["drives"][2]["state"], "missing", "{json}");
    });
}

fn drive_state(server: &TestServer, drive: usize, state: &str) -> f64 {
    server.metric_with(
        "cairn_drive_state",
        &[("drive", &drive.to_string()), ("state", state)],
    )
}

/// `cairn admin status --json`: whether it exited 0, and the drives.
fn status_json(server: &TestServer) -> (bool, Vec<serde_json::Value>) {
    let (ok, json, err) = admin(server, &["status", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}\n{err}"));
    (ok, v["drives"].as_array().unwrap().clone())
}

/// Every file below `dir` with its length.
fn files_and_sizes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out: Vec<_> = walk_files(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    out.sort();
    out
}

async fn put_objects(server: &TestServer, bucket: &str, seed: u64) -> Vec<(String, Vec<u8>)> {
    let c = sdk_client(server);
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(seed);
    let mut objects = Vec::new();
    for i in 0..8 {
        // Sizes from inline (metadata only) to several chunks.
        let data = rng.bytes([1_000, 300 * KIB, 2 * MIB + 17][i % 3] + i * 1_111);
        put_bytes(&c, bucket, &format!("obj/{i}"), &data).await;
        objects.push((format!("obj/{i}"), data));
    }
    objects
}

async fn assert_objects(server: &TestServer, bucket: &str, objects: &[(String, Vec<u8>)]) {
    let c = sdk_client(server);
    for (key, data) in objects {
        assert!(&get_bytes(&c, bucket, key).await == data, "{key} differs");
    }
}

#[test]
fn a_wiped_drive_is_reported_replaced_and_healed_by_itself() {
    run(async {
        let mut server = TestServer::start();
        let first_start = server.stderr_text();
        assert!(
            !first_start
                .lines()
                .any(|l| l.contains("WARN") && l.contains("drive")),
            "a first start must not warn about drives:\n{first_start}"
        );
        let objects = put_objects(&server, "wiped", 0x3157).await;
        let (ok, _, _) = admin(&server, &["status"]);
        assert!(ok);

        server.stop();
        std::fs::remove_dir_all(server.drive_dir(2)).unwrap();
        server.start_again();

        // Reported at once (the heal starts 10 s after opening).
        let (ok, out, err) = admin(&server, &["status"]);
        assert!(!ok, "a replaced drive must fail the status command:\n{out}");
        let line = out.lines().find(|l| l.starts_with("2 ")).unwrap();
        assert!(line.contains("REPLACED, healing"), "{out}");
        assert!(err.contains("drive 2: it was replaced"), "{err}");
        let (ok, drives) = status_json(&server);
        assert!(!ok);
        assert_eq!(drives[2]["state"], "replaced");
        assert_eq!(drives[2]["needs_heal"], true);
        for d in [0, 1, 3, 4, 5] {
            assert_eq!(drives[d]["state"], "ok", "drive {d}");
        }
        let (status, body) = server.admin_get("/health/ready");
        assert_eq!(
            status, 200,
            "a replaced drive leaves the server serving: {body}"
        );
        assert!(
            body.starts_with("ready, degraded:") && body.contains("drive 2"),
            "{body}"
        );
        assert_eq!(drive_state(&server, 2, "replaced"), 1.0);
        assert_eq!(drive_state(&server, 2, "ok"), 0.0);
        assert!(
            server.stderr_text().contains("drive was replaced or wiped"),
            "{}",
            server.stderr_text()
        );

        // The heal runs by itself; then everything is ok and exact.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (ok, drives) = status_json(&server);
            if ok {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not healed in time: {drives:?}\n{}",
                server.stderr_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(server.metric("cairn_shards_repaired_total") > 0.0);
        assert_eq!(drive_state(&server, 2, "ok"), 1.0);
        assert_eq!(
            server.admin_get("/health/ready"),
            (200, "ready\n".to_owned())
        );
        assert_objects(&server, "wiped", &objects).await;
        let (ok, out, _) = admin(&server, &["scrub"]);
        assert!(ok);
        assert_eq!(count_before(&out, "missing"), 0, "{out}");

        // Healed is remembered across a restart, and the drive holds its
        // share: two other drives can go now.
        server.stop();
        server.start_again();
        let (ok, out, err) = admin(&server, &["status"]);
        assert!(ok, "{out}\n{err}");
        server.stop();
        for d in [0, 4] {
            std::fs::remove_dir_all(server.drive_dir(d).join("segments")).unwrap();
        }
        server.start_again();
        assert_objects(&server, "wiped", &objects).await;
    });
}

#[test]
fn a_drive_of_another_server_is_refused_and_never_written() {
    run(async {
        let mut other = TestServer::start();
        put_objects(&other, "theirs", 0x07e5).await;
        other.stop();
        let mut server = TestServer::start();
        let objects = put_objects(&server, "ours", 0x0c5).await;
        server.stop();
        // Their drive 0 mounted where our drive 5 was.
        std::fs::remove_dir_all(server.drive_dir(5)).unwrap();
        std::fs::rename(other.drive_dir(0), server.drive_dir(5)).unwrap();
        let theirs = files_and_sizes(&server.drive_dir(5));
        server.start_again();

        let (ok, out, err) = admin(&server, &["status"]);
        assert!(!ok, "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("5 ") && l.contains("FOREIGN")),
            "{out}"
        );
        assert!(
            err.contains("drive 5: refused") && err.contains("another master key"),
            "{err}"
        );
        let (status, body) = server.admin_get("/health/ready");
        assert_eq!(status, 200, "five drives still make a write quorum: {body}");
        assert!(
            body.contains("drive 5") && body.contains("refused"),
            "{body}"
        );
        assert_eq!(drive_state(&server, 5, "foreign"), 1.0);

        // Reads and writes go on without it; nothing touches it.
        assert_objects(&server, "ours", &objects).await;
        let more = put_objects(&server, "more", 0x5eed).await;
        let (ok, out, err) = admin(&server, &["gc"]);
        assert!(ok, "{out}\n{err}");
        let (ok, _, _) = admin(&server, &["scrub"]);
        assert!(ok);
        server.stop();
        assert_eq!(files_and_sizes(&server.drive_dir(5)), theirs);

        // What operations says to do to reuse it: empty it and restart.
        std::fs::remove_dir_all(server.drive_dir(5)).unwrap();
        std::fs::create_dir(server.drive_dir(5)).unwrap();
        server.start_again();
        let (_, drives) = status_json(&server);
        assert_eq!(drives[5]["state"], "replaced");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !status_json(&server).0 {
            assert!(std::time::Instant::now() < deadline, "not healed in time");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_objects(&server, "ours", &objects).await;
        assert_objects(&server, "more", &more).await;
    });
}

/// A data directory written before drive markers existed (no markers, no
/// record of them in the metadata) opens with every drive ok and no heal.
#[test]
fn a_data_directory_from_before_drive_markers_is_adopted() {
    run(async {
        let mut server = TestServer::start();
        let objects = put_objects(&server, "old", 0x01d).await;
        server.stop();
        for d in 0..6 {
            std::fs::remove_file(server.drive_dir(d).join(cairn_storage_engine::MARKER_FILE))
                .unwrap();
        }
        {
            let meta =
                cairn_storage_engine::MetaStore::open(&server.data_dir().join("meta")).unwrap();
            for name in ["drives-initialised", "data-dir-id"] {
                meta.set_local(name, None).unwrap();
            }
        }
        server.start_again();
        let (ok, out, err) = admin(&server, &["status"]);
        assert!(ok, "every drive ok, none to heal: {out}\n{err}");
        assert!(!out.contains("REPLACED"), "{out}");
        for d in 0..6 {
            assert!(
                server
                    .drive_dir(d)
                    .join(cairn_storage_engine::MARKER_FILE)
                    .is_file()
            );
        }
        assert_objects(&server, "old", &objects).await;
        let warnings: Vec<_> = server
            .stderr_text()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("drive"))
            .map(str::to_owned)
            .collect();
        assert!(warnings.is_empty(), "{warnings:?}");
        // And a wipe after the upgrade is caught.
        server.stop();
        std::fs::remove_dir_all(server.drive_dir(1)).unwrap();
        server.start_again();
        let (_, drives) = status_json(&server);
        assert_eq!(drives[1]["state"], "replaced");
    });
}
