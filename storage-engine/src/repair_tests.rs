//! Bitrot, drive loss, read-repair and scrub on a real engine.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use crate::meta::Chunks;
use crate::test_support::{XorShift, open_with, small_chunk_config, try_put, try_read};
use crate::{Engine, ScrubOptions};

fn open(dir: &std::path::Path) -> Engine {
    open_with(small_chunk_config(dir), 0x33)
}

async fn put(e: &Engine, key: &str, data: &[u8]) {
    try_put(e, "bucket", key, data, usize::MAX).await.unwrap();
}

async fn get(e: &Engine, key: &str) -> Vec<u8> {
    try_read(e, "bucket", key, None).await.unwrap()
}

async fn fill(e: &Engine, rng: &mut XorShift) -> Vec<(String, Vec<u8>)> {
    e.create_bucket("bucket").await.unwrap();
    let mut objects = Vec::new();
    for i in 0..8 {
        let len = 1 + (rng.next() % 700_000) as usize;
        let data = rng.bytes(len);
        let key = format!("obj/{i}");
        put(e, &key, &data).await;
        objects.push((key, data));
    }
    objects
}

#[tokio::test]
async fn scrub_finds_every_flipped_byte_and_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut rng = XorShift(0x5eed_1234);
    let objects = fill(&e, &mut rng).await;

    // Flip one random payload byte in one random shard of each chunk.
    let chunks = e.inner.meta.page_after::<Chunks>(None, 10_000).unwrap();
    let mut flipped = BTreeSet::new();
    for (id, rec) in &chunks {
        let i = (rng.next() % rec.shards.len() as u64) as usize;
        let loc = rec.shards[i];
        let path = dir
            .path()
            .join("drives")
            .join(loc.drive.to_string())
            .join("segments")
            .join(format!("{:016x}.seg", loc.segment));
        let at = loc.offset
            + crate::drive::RECORD_HEADER_BYTES as u64
            + rng.next() % u64::from(rec.shard_len);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 1 << (rng.next() % 8);
        f.write_all_at(&b, at).unwrap();
        flipped.insert((*id, i));
    }
    assert!(!flipped.is_empty());

    // Reads stay correct (reconstructing around the bad shards)...
    for (key, data) in &objects {
        assert_eq!(&get(&e, key).await, data, "{key}");
    }
    // ...the scrub finds every flip (read-repair may have fixed some first)...
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = e.scrub(ScrubOptions::default()).await.unwrap().unwrap();
    let repaired_by_reads = e.inner.metrics.shards_repaired.get() - report.shards_repaired;
    assert_eq!(
        report.shards_corrupt + repaired_by_reads,
        flipped.len() as u64,
        "{report:?}"
    );
    assert_eq!(report.shards_repaired, report.shards_corrupt, "{report:?}");
    assert_eq!(report.chunks_unrecoverable, 0);
    // ...and after it nothing is left to find.
    let again = e.scrub(ScrubOptions::default()).await.unwrap().unwrap();
    assert_eq!(
        (again.shards_corrupt, again.shards_missing),
        (0, 0),
        "{again:?}"
    );
    for (key, data) in &objects {
        assert_eq!(&get(&e, key).await, data, "{key}");
    }
}

#[tokio::test]
async fn two_lost_drives_are_healed_onto_fresh_directories() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift(0xd1ce);
    let objects = {
        let e = open(dir.path());
        fill(&e, &mut rng).await
    };
    for d in [1, 4] {
        std::fs::remove_dir_all(dir.path().join("drives").join(d.to_string())).unwrap();
    }
    let e = open(dir.path());
    for (key, data) in &objects {
        assert_eq!(&get(&e, key).await, data, "{key} with two drives gone");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heal = e.scrub(ScrubOptions::default()).await.unwrap().unwrap();
    assert_eq!(heal.chunks_unrecoverable, 0, "{heal:?}");
    assert_eq!(heal.shards_corrupt, 0, "{heal:?}");
    assert_eq!(
        e.inner.metrics.heal_backlog_bytes.get(),
        0,
        "backlog drained"
    );
    assert_eq!(heal.shards_repaired, heal.shards_missing, "{heal:?}");
    let after = e.scrub(ScrubOptions::default()).await.unwrap().unwrap();
    assert_eq!(
        (after.shards_missing, after.shards_corrupt),
        (0, 0),
        "full redundancy after heal: {after:?}"
    );
    // Redundancy is real: now lose two *other* drives.
    e.wait_for_background_repairs().await;
    drop(e);
    for d in [0, 5] {
        std::fs::remove_dir_all(dir.path().join("drives").join(d.to_string())).unwrap();
    }
    let e = open(dir.path());
    for (key, data) in &objects {
        assert_eq!(
            &get(&e, key).await,
            data,
            "{key} after heal and a second loss"
        );
    }
}

#[tokio::test]
async fn a_scrub_is_rate_limited_and_reports_progress() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut rng = XorShift(77);
    fill(&e, &mut rng).await;
    let started = std::time::Instant::now();
    let report = e
        .scrub(ScrubOptions {
            bytes_per_sec: Some(2 << 20),
        })
        .await
        .unwrap()
        .unwrap();
    let expected = Duration::from_secs_f64(report.bytes_read as f64 / (2u64 << 20) as f64);
    // The last page may end the scrub before its sleep.
    assert!(
        started.elapsed() + Duration::from_millis(500) >= expected,
        "{report:?} took {:?}",
        started.elapsed()
    );
    let status = e.scrub_status();
    assert!(!status.running);
    assert_eq!(status.report, report);
    assert!(status.finished_ms >= status.started_ms);
}
