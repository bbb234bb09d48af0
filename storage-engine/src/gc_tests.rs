//! Garbage collection and compaction on a real engine (RocksDB + drive
//! directories), including the race between dedup and collection.

use std::time::Duration;

use bytes::Bytes;
use cairn_crypto::DataRootKey;

use crate::meta::System;
use crate::records::ObjectMetadata;
use crate::test_support::{
    dir_bytes, open_with, pseudo_random, small_chunk_config, try_put, try_read,
};
use crate::{Engine, EngineConfig, EngineError, GcOptions};

fn open(dir: &std::path::Path) -> Engine {
    let mut cfg = small_chunk_config(dir);
    // Small segments so they seal (and become compactable) during a test.
    cfg.segment_size_max_bytes = 256 << 10;
    open_with(cfg, 0x17)
}

fn now_opts() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        compact_below_live_ratio: 0.5,
        upload_max_age: None,
        segment_settle: Duration::from_millis(100),
    }
}

async fn put(e: &Engine, key: &str, data: &[u8]) {
    try_put(e, "bucket", key, data, 50_000).await.unwrap();
}

async fn get(e: &Engine, key: &str) -> Vec<u8> {
    try_read(e, "bucket", key, None).await.unwrap()
}

fn drives_bytes(dir: &std::path::Path) -> u64 {
    dir_bytes(&dir.join("drives"))
}

/// Segments written in the last second are left alone (in-flight writes).
async fn let_segments_settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn deleted_objects_give_their_space_back_and_survivors_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("bucket").await.unwrap();
    let keep = pseudo_random(600_000, 1);
    put(&e, "keep", &keep).await;
    for i in 0..12 {
        put(&e, &format!("drop/{i}"), &pseudo_random(400_000, 100 + i)).await;
    }
    let full = drives_bytes(dir.path());

    // Within the grace period nothing is collected.
    for i in 0..12 {
        e.delete_object("bucket", &format!("drop/{i}"))
            .await
            .unwrap();
    }
    let early = e
        .collect_garbage(GcOptions {
            grace: Duration::from_secs(3600),
            ..now_opts()
        })
        .await
        .unwrap();
    assert_eq!(early.chunks_deleted, 0);

    let_segments_settle().await;
    let report = e.collect_garbage(now_opts()).await.unwrap();
    assert!(report.chunks_deleted > 0, "{report:?}");
    assert!(report.segments_compacted > 0, "{report:?}");
    let after = drives_bytes(dir.path());
    assert!(
        after * 2 < full,
        "drives should shrink: {full} bytes before, {after} after ({report:?})"
    );
    assert_eq!(get(&e, "keep").await, keep);

    // Survives a restart too (relocations are durable).
    drop(e);
    let e = open(dir.path());
    assert_eq!(get(&e, "keep").await, keep);
    let again = e.collect_garbage(now_opts()).await.unwrap();
    assert_eq!(again.chunks_deleted, 0, "{again:?}");
    assert_eq!(get(&e, "keep").await, keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_referenced_again_during_collection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("bucket").await.unwrap();
    for round in 0..15u64 {
        let data = pseudo_random(300_000, 1000 + round);
        put(&e, "old", &data).await;
        e.delete_object("bucket", "old").await.unwrap();
        // Now every chunk of `data` is unreferenced and past a zero grace
        // period; a new object with the same content races the collector.
        let key = format!("new/{round}");
        let writer = {
            let e = e.clone();
            let data = data.clone();
            let key = key.clone();
            tokio::spawn(async move { put(&e, &key, &data).await })
        };
        let gc = {
            let e = e.clone();
            tokio::spawn(async move { e.collect_garbage(now_opts()).await.unwrap() })
        };
        writer.await.unwrap();
        gc.await.unwrap();
        e.collect_garbage(now_opts()).await.unwrap();
        assert_eq!(get(&e, &key).await, data, "round {round}");
    }
    let_segments_settle().await;
    e.collect_garbage(now_opts()).await.unwrap();
    for round in 0..15u64 {
        let data = pseudo_random(300_000, 1000 + round);
        assert_eq!(
            get(&e, &format!("new/{round}")).await,
            data,
            "after compaction, round {round}"
        );
    }
}

#[tokio::test]
async fn abandoned_multipart_uploads_expire_and_release_their_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("bucket").await.unwrap();
    let id = e
        .create_upload("bucket", "mp", ObjectMetadata::default())
        .await
        .unwrap();
    let mut w = e.object_writer("bucket").unwrap();
    w.write(Bytes::from(pseudo_random(300_000, 5)))
        .await
        .unwrap();
    let staged = w.finish().await.unwrap();
    e.commit_part(
        "bucket",
        "mp",
        id,
        1,
        crate::NewPart {
            staged,
            md5: [0; 16],
            checksums: vec![],
            cipher_stream: 0,
        },
    )
    .await
    .unwrap();

    let kept = e
        .collect_garbage(GcOptions {
            upload_max_age: Some(Duration::from_secs(3600)),
            ..now_opts()
        })
        .await
        .unwrap();
    assert_eq!(kept.uploads_expired, 0);
    assert_eq!(kept.chunks_deleted, 0, "parts hold references");

    let report = e
        .collect_garbage(GcOptions {
            upload_max_age: Some(Duration::ZERO),
            ..now_opts()
        })
        .await
        .unwrap();
    assert_eq!(report.uploads_expired, 1);
    assert!(report.chunks_deleted > 0, "{report:?}");
    assert!(matches!(
        e.list_parts("bucket", "mp", id, 0, 100).await,
        Err(EngineError::NoSuchUpload)
    ));
}

#[tokio::test]
async fn a_failed_write_releases_its_dedup_pins() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("bucket").await.unwrap();
    let data = pseudo_random(300_000, 9);
    put(&e, "a", &data).await;
    // A second write of the same content pins every chunk, then is dropped
    // without committing (a client that disconnected).
    let mut w = e.object_writer("bucket").unwrap();
    w.write(Bytes::from(data.clone())).await.unwrap();
    drop(w.finish().await.unwrap());
    e.delete_object("bucket", "a").await.unwrap();
    let report = e.collect_garbage(now_opts()).await.unwrap();
    assert!(
        report.chunks_deleted > 0 && report.chunks_live == 0,
        "pins of the dropped write must not keep chunks alive: {report:?}"
    );
}

#[tokio::test]
async fn a_quiet_server_gives_space_back_without_filling_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::single_dir(dir.path());
    // The default (large) segments: everything stays in the active ones.
    cfg.chunker = cairn_dedup::ChunkerConfig {
        min_size_bytes: 16 << 10,
        avg_size_bytes: 64 << 10,
        max_size_bytes: 256 << 10,
    };
    let master = DataRootKey::from_hex(&"18".repeat(32)).unwrap();
    let e = Engine::open(cfg, &master, &prometheus::Registry::new()).unwrap();
    e.create_bucket("bucket").await.unwrap();
    let keep = pseudo_random(100_000, 1);
    put(&e, "keep", &keep).await;
    for i in 0..8 {
        put(&e, &format!("drop/{i}"), &pseudo_random(500_000, 50 + i)).await;
    }
    let full = drives_bytes(dir.path());
    for i in 0..8 {
        e.delete_object("bucket", &format!("drop/{i}"))
            .await
            .unwrap();
    }
    let_segments_settle().await;
    let report = e.collect_garbage(now_opts()).await.unwrap();
    let after = drives_bytes(dir.path());
    assert!(
        after * 4 < full,
        "{full} bytes before, {after} after: {report:?}"
    );
    assert_eq!(get(&e, "keep").await, keep);
    // New writes go to a fresh segment and read back.
    put(&e, "new", &keep).await;
    assert_eq!(get(&e, "new").await, keep);
}

#[tokio::test]
async fn pins_leaked_by_a_crash_are_recounted_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(300_000, 42);
    {
        let e = open(dir.path());
        e.create_bucket("bucket").await.unwrap();
        put(&e, "a", &data).await;
        // A second write of the same bytes pins every chunk, then the process
        // "dies" before committing: the pins' release never runs.
        let mut w = e.object_writer("bucket").unwrap();
        w.write(Bytes::from(data.clone())).await.unwrap();
        let mut staged = w.finish().await.unwrap();
        staged.pins.disarm(); // what a crash does: the release never runs
        drop(staged);
        e.wait_for_background_repairs().await;
        // No mark_clean_shutdown: this was a crash.
        drop(e);
    }
    let e = open(dir.path());
    e.delete_object("bucket", "a").await.unwrap();
    let report = e.collect_garbage(now_opts()).await.unwrap();
    assert_eq!(
        report.chunks_live, 0,
        "leaked pins survived the restart: {report:?}"
    );

    // After a clean shutdown nothing is recounted (and nothing is wrong).
    put(&e, "b", &data).await;
    e.mark_clean_shutdown().unwrap();
    // The marker is this node's own: not in what replicas or snapshots get.
    assert!(e.inner.meta.local("clean-shutdown").unwrap().is_some());
    assert!(
        !e.inner
            .meta
            .export()
            .unwrap()
            .ops
            .iter()
            .any(|op| matches!(op, crate::MetaOp::Put { key, .. } if key == b"clean-shutdown"))
    );
    drop(e);
    let e = open(dir.path());
    assert_eq!(get(&e, "b").await, data);
    assert!(e.inner.meta.local("clean-shutdown").unwrap().is_none());

    // A marker an older version left in `system` still counts, once.
    let mut b = e.inner.meta.batch();
    b.put::<System>("clean-shutdown", &vec![1]);
    e.inner.meta.write(b).unwrap();
    drop(e);
    let e = open(dir.path());
    assert!(
        e.inner
            .meta
            .get::<System>("clean-shutdown")
            .unwrap()
            .is_none()
    );
    assert_eq!(get(&e, "b").await, data);
}

/// Issue 16: a writer that has not stored a chunk yet (a client that sent
/// only headers, or a few bytes) holds no space back.
#[tokio::test]
async fn a_writer_without_appends_does_not_hold_compaction_back() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("bucket").await.unwrap();
    for i in 0..8 {
        put(&e, &format!("drop/{i}"), &pseudo_random(300_000, 70 + i)).await;
    }
    let full = drives_bytes(dir.path());
    for i in 0..8 {
        e.delete_object("bucket", &format!("drop/{i}"))
            .await
            .unwrap();
    }
    // Stalled: registered, a few bytes buffered, no chunk cut.
    let mut stalled = e.object_writer("bucket").unwrap();
    stalled.write(Bytes::from(vec![7u8; 1000])).await.unwrap();
    let_segments_settle().await;
    let report = e.collect_garbage(now_opts()).await.unwrap();
    assert!(report.segments_compacted > 0, "{report:?}");
    let after = drives_bytes(dir.path());
    assert!(
        after * 2 < full,
        "{full} bytes before, {after} after: {report:?}"
    );
    // The stalled writer can still finish and commit.
    let staged = stalled.finish().await.unwrap();
    drop(staged);
}

/// Issue 16: a writer that stored some chunks and stalled holds back only
/// the segments it appended to; everything else is compacted, and its own
/// shards survive until it commits, and read back after.
#[tokio::test]
async fn a_stalled_writer_holds_back_only_the_segments_it_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("bucket").await.unwrap();
    let first = pseudo_random(400_000, 90);
    let mut stalled = e.object_writer("bucket").unwrap();
    stalled.write(Bytes::from(first.clone())).await.unwrap();
    // Later objects roll onto new segments (256 KiB each), then die.
    for i in 0..12 {
        put(&e, &format!("drop/{i}"), &pseudo_random(400_000, 200 + i)).await;
    }
    for i in 0..12 {
        e.delete_object("bucket", &format!("drop/{i}"))
            .await
            .unwrap();
    }
    let_segments_settle().await;
    let report = e.collect_garbage(now_opts()).await.unwrap();
    assert!(
        report.segments_compacted > 0,
        "segments of other writes must be compacted while one stalls: {report:?}"
    );
    // The stalled writer's shards are where it left them: it finishes,
    // commits, and reads back — also after another pass.
    let rest = pseudo_random(100_000, 91);
    stalled.write(Bytes::from(rest.clone())).await.unwrap();
    let staged = stalled.finish().await.unwrap();
    let mut want = first;
    want.extend_from_slice(&rest);
    e.commit_object(
        "bucket",
        "stalled",
        staged,
        "etag".into(),
        ObjectMetadata::default(),
    )
    .await
    .unwrap();
    assert_eq!(get(&e, "stalled").await, want);
    let_segments_settle().await;
    e.collect_garbage(now_opts()).await.unwrap();
    assert_eq!(get(&e, "stalled").await, want);
}

/// The registry's claims and time horizons (see `WriterRegistry`).
#[tokio::test]
async fn writer_tickets_count_from_their_first_append_and_claim_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let inner = &e.inner;
    let t0 = crate::now_ms();
    let body = inner.writers.register_body_writer();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        inner.writers.oldest_writer_ms() > t0,
        "no append yet: not counted"
    );
    assert!(inner.writers.compaction_horizon_ms() > t0);
    let mut guard = body.appender().begin();
    let began = inner.writers.oldest_writer_ms();
    assert!(began > t0, "counted from its first append");
    assert_eq!(
        inner.writers.compaction_horizon_ms(),
        began,
        "append in progress"
    );
    guard.appended(1, 42);
    assert!(
        !inner.writers.segment_claimed(1, 42),
        "claimed when the appends end"
    );
    drop(guard);
    assert!(inner.writers.segment_claimed(1, 42));
    assert!(!inner.writers.segment_claimed(0, 42) && !inner.writers.segment_claimed(1, 43));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        inner.writers.compaction_horizon_ms() > began,
        "a tracked writer holds back its segments, not the time"
    );
    assert_eq!(
        inner.writers.oldest_writer_ms(),
        began,
        "but what a cluster node publishes still counts it"
    );
    // Unknown commit outcome: claims and time linger after the ticket.
    body.linger(60_000);
    drop(body);
    assert!(inner.writers.segment_claimed(1, 42));
    assert_eq!(inner.writers.oldest_writer_ms(), began);
    // Repair, rebalance and compaction count by time from registration.
    let timed = inner.writers.register_writer();
    let at = crate::now_ms();
    assert!(inner.writers.compaction_horizon_ms() <= at);
    drop(timed);
}
