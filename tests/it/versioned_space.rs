//! The space a versioned bucket costs, as a naive backup uses it: every
//! version of a tree PUTs every file again, and each version changes about
//! 1 % of the bytes — a few files rewritten, regions overwritten inside
//! files and bytes inserted into files (which only content-defined chunking
//! can share). The versions must cost little more than their new chunks,
//! and a lifecycle rule expiring all but the newest version of every file
//! (NoncurrentVersionExpiration), then garbage collection, must give the
//! space back down to about one copy.
//!
//! Space is measured two ways, both printed: `stored_bytes` of
//! `cairn admin status --json` (each chunk's sealed bytes once, however many
//! versions reference it) — the figure asserted — and the bytes of the files
//! under `<data-dir>/drives` (shards with their parity, and segments that
//! hold dead shards until compaction). Stored and raw bytes return to one
//! copy after GC; the drive files do not here, by design: compaction
//! rewrites a segment only once less than half of it is live, and the
//! older versions' shards are about a third of each drive's segment.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::common::*;

const BUCKET: &str = "backup";
const FILES: usize = 200;
const FILE_BYTES: usize = MIB;
const VERSIONS: usize = 30;
const PUTS_IN_FLIGHT: usize = 4;

/// Per version after the first: files rewritten whole, files with a region
/// overwritten in place (bytes each), files with bytes inserted (bytes each).
const REWRITTEN_FILES: usize = 1;
const OVERWRITES: usize = 2;
const OVERWRITE_BYTES: usize = 512 * KIB;
const INSERTIONS: usize = 2;
const INSERTION_BYTES: usize = 4 * KIB;

/// The space in use, both ways (see the module comment).
#[derive(Clone, Copy, Debug)]
struct Space {
    stored_bytes: u64,
    raw_bytes: u64,
    drive_files_bytes: u64,
    /// Older versions kept, as `cairn admin status` counts them.
    noncurrent_versions: u64,
}

fn space(server: &TestServer) -> Space {
    let (ok, json, err) = cairn_admin_as(server, ACCESS_KEY, SECRET_KEY, &["status", "--json"]);
    assert!(ok, "cairn admin status --json: {json}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    Space {
        stored_bytes: v["stored_bytes"].as_u64().expect("stored_bytes"),
        raw_bytes: v["raw_bytes"].as_u64().expect("raw_bytes"),
        noncurrent_versions: v["noncurrent_versions"]
            .as_u64()
            .expect("noncurrent_versions"),
        drive_files_bytes: dir_bytes(&server.data_dir().join("drives")),
    }
}

fn dir_bytes(p: &Path) -> u64 {
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

fn file_key(i: usize) -> String {
    format!("tree/dir{:02}/file{i:03}.bin", i / 20)
}

/// PUTs every file of `tree` ( `PUTS_IN_FLIGHT` at a time).
async fn put_tree(c: &aws_sdk_s3::Client, tree: &Arc<Vec<Bytes>>) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..PUTS_IN_FLIGHT)
        .map(|_| {
            let (c, tree, next) = (c.clone(), tree.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = tree.get(i) else { return };
                    c.put_object()
                        .bucket(BUCKET)
                        .key(file_key(i))
                        .body(ByteStream::from(body.clone()))
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("PUT {}: {}", file_key(i), show(&e)));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// The next version of the tree; returns how many bytes changed.
fn edit_tree(tree: &mut [Bytes], rng: &mut Rng) -> usize {
    let mut changed = 0;
    for _ in 0..REWRITTEN_FILES {
        let i = rng.below(FILES as u64) as usize;
        tree[i] = Bytes::from(rng.bytes(FILE_BYTES));
        changed += FILE_BYTES;
    }
    for _ in 0..OVERWRITES {
        let i = rng.below(FILES as u64) as usize;
        let mut f = tree[i].to_vec();
        let at = rng.below((f.len() - OVERWRITE_BYTES) as u64) as usize;
        rng.fill(&mut f[at..at + OVERWRITE_BYTES]);
        tree[i] = Bytes::from(f);
        changed += OVERWRITE_BYTES;
    }
    for _ in 0..INSERTIONS {
        let i = rng.below(FILES as u64) as usize;
        let mut f = tree[i].to_vec();
        let at = rng.below(f.len() as u64) as usize;
        f.splice(at..at, rng.bytes(INSERTION_BYTES));
        tree[i] = Bytes::from(f);
        changed += INSERTION_BYTES;
    }
    changed
}

fn percent_over(after: u64, base: u64) -> f64 {
    (after as f64 - base as f64) * 100.0 / base as f64
}

#[test]
fn thirty_versions_of_a_tree_cost_little_more_than_one_and_lifecycle_expiry_gives_it_back() {
    run(async {
        let started = Instant::now();
        // GC reclaims a chunk as soon as nothing references it, and only
        // when asked.
        // Lifecycle passes every second, with one-second days and no pace.
        let server = TestServer::start_with_args(&[
            "--gc-grace-secs",
            "0",
            "--gc-interval-secs",
            "0",
            "--lifecycle-interval-secs",
            "1",
            "--lifecycle-day-secs",
            "1",
            "--lifecycle-actions-per-sec",
            "0",
        ]);
        let c = sdk_client(&server);
        create_versioned_bucket(&c, BUCKET).await;

        let mut rng = Rng::new(0x5ace);
        let mut tree: Vec<Bytes> = (0..FILES)
            .map(|_| Bytes::from(rng.bytes(FILE_BYTES)))
            .collect();
        let tree_bytes = (FILES * FILE_BYTES) as u64;
        put_tree(&c, &Arc::new(tree.clone())).await;
        let first = space(&server);
        let first_done = started.elapsed();
        assert!(
            first.stored_bytes >= tree_bytes,
            "random bytes cannot be stored in fewer: {first:?} for {tree_bytes}"
        );

        let mut changed_total = 0;
        for _ in 2..=VERSIONS {
            changed_total += edit_tree(&mut tree, &mut rng);
            put_tree(&c, &Arc::new(tree.clone())).await;
        }
        let last = space(&server);
        assert_eq!(last.noncurrent_versions, (FILES * (VERSIONS - 1)) as u64);
        let versions_done = started.elapsed();
        let overhead = percent_over(last.stored_bytes, first.stored_bytes);
        eprintln!(
            "versioned space: {FILES} files of {FILE_BYTES} B, {VERSIONS} versions, {:.2} % of the bytes changed per version",
            changed_total as f64 * 100.0 / (VERSIONS - 1) as f64 / tree_bytes as f64
        );
        eprintln!(
            "  after version 1:  stored {} B, raw {} B, drive files {} B ({first_done:.1?})",
            first.stored_bytes, first.raw_bytes, first.drive_files_bytes
        );
        eprintln!(
            "  after version {VERSIONS}: stored {} B (+{overhead:.1} %), raw {} B (+{:.1} %), drive files {} B (+{:.1} %) ({versions_done:.1?})",
            last.stored_bytes,
            last.raw_bytes,
            percent_over(last.raw_bytes, first.raw_bytes),
            last.drive_files_bytes,
            percent_over(last.drive_files_bytes, first.drive_files_bytes)
        );
        assert!(
            overhead < 60.0,
            "{VERSIONS} versions stored {} B over one copy's {} B: +{overhead:.1} % (≥ 60 %)",
            last.stored_bytes,
            first.stored_bytes
        );

        // A lifecycle rule expires every version but the newest of each file
        // (days are shortened to one second for the test: the same rule
        // evaluation as with real days).
        let rule = aws_sdk_s3::types::LifecycleRule::builder()
            .id("older-versions")
            .filter(aws_sdk_s3::types::LifecycleRuleFilter::builder().build())
            .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
            .noncurrent_version_expiration(
                aws_sdk_s3::types::NoncurrentVersionExpiration::builder()
                    .noncurrent_days(1)
                    .build(),
            )
            .build()
            .unwrap();
        c.put_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .lifecycle_configuration(
                aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let older = FILES * (VERSIONS - 1);
        let expiring = Instant::now();
        loop {
            let expired = server.metric_with(
                "cairn_lifecycle_actions_total",
                &[("action", "expire_noncurrent")],
            );
            if expired as usize >= older && server.metric("cairn_stored_noncurrent_versions") == 0.0
            {
                break;
            }
            assert!(
                expiring.elapsed() < Duration::from_secs(120),
                "lifecycle expired {expired} of {older} older versions in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            server.metric_with(
                "cairn_lifecycle_actions_total",
                &[("action", "expire_noncurrent")]
            ) as usize,
            older,
            "exactly the older versions expire, each once"
        );
        eprintln!(
            "  lifecycle expired {older} older versions in {:.1?}",
            expiring.elapsed()
        );
        let deleted = space(&server);
        // Segments written within the settle time (2 s) are left alone.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let (ok, out, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["gc"]);
        assert!(ok, "cairn admin gc: {out}\n{err}");
        let collected = space(&server);
        assert_eq!(collected.noncurrent_versions, 0);
        eprintln!(
            "  after expiring {} older versions: stored {} B, drive files {} B",
            older, deleted.stored_bytes, deleted.drive_files_bytes
        );
        eprintln!(
            "  after GC: stored {} B ({:+.2} % of version 1), raw {} B, drive files {} B ({:+.1} % of version 1) ({:.1?}); gc: {}",
            collected.stored_bytes,
            percent_over(collected.stored_bytes, first.stored_bytes),
            collected.raw_bytes,
            collected.drive_files_bytes,
            percent_over(collected.drive_files_bytes, first.drive_files_bytes),
            started.elapsed(),
            out.trim()
        );
        // One copy of the newest tree, which is a little larger than the
        // first (the insertions): within 2 % of version 1, stored and raw.
        assert!(
            collected.stored_bytes.abs_diff(first.stored_bytes) * 50 < first.stored_bytes,
            "after expiring the older versions and GC {} B stored, one copy was {} B",
            collected.stored_bytes,
            first.stored_bytes
        );
        assert!(
            collected.raw_bytes.abs_diff(first.raw_bytes) * 50 < first.raw_bytes,
            "after expiring the older versions and GC {} B raw, one copy was {} B",
            collected.raw_bytes,
            first.raw_bytes
        );
        // The segment files give space back only by compaction, which
        // rewrites a segment once less than half of it is live: here the
        // dead shards are about a third of each drive's (only) segment, so
        // they stay on disk. What compaction promises: dead ≤ live.
        assert!(
            collected.drive_files_bytes <= 2 * collected.raw_bytes + MIB as u64,
            "drive files {} B for {} B of live shards: more dead than live after GC",
            collected.drive_files_bytes,
            collected.raw_bytes
        );

        // What is left is exactly the newest tree, every file current.
        let listed = c
            .list_object_versions()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.versions().len(), FILES);
        assert!(
            listed
                .versions()
                .iter()
                .all(|v| v.is_latest() == Some(true))
        );
        for (i, want) in tree.iter().enumerate() {
            let got = get_bytes(&c, BUCKET, &file_key(i)).await;
            assert!(
                got == want.as_ref(),
                "{}: not the newest version's bytes",
                file_key(i)
            );
        }
        eprintln!("  total {:.1?}", started.elapsed());
    });
}
