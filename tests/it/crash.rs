//! Crash safety: a real server under 32 concurrent PUTs (small and large
//! objects, new keys and overwrites) is killed with SIGKILL at random
//! moments, restarted, and checked — for `CRASH_CYCLES` cycles:
//!
//! * every acknowledged PUT reads back byte-exact (unless a later PUT of the
//!   same key, acknowledged or not, replaced it);
//! * a PUT cut by the kill is either absent or complete — never partial.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;

const CRASH_CYCLES: u64 = 20;
const WORKERS: u64 = 32;
const BUCKET: &str = "crash";

/// Contents a key may legitimately hold after a crash.
#[derive(Default)]
struct KeyState {
    /// Last acknowledged content (`None`: never acknowledged).
    acked: Option<Arc<Vec<u8>>>,
    /// Contents attempted after `acked` whose outcome is unknown.
    pending: Vec<Arc<Vec<u8>>>,
}

type Oracle = Arc<Mutex<HashMap<String, KeyState>>>;
type Body = Arc<Vec<u8>>;

fn body_for(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(100) {
        0..=69 => 1 + rng.below(8 * KIB as u64) as usize,
        70..=94 => 64 * KIB + rng.below(MIB as u64) as usize,
        _ => 3 * MIB + rng.below(3 * MIB as u64) as usize,
    };
    rng.bytes(len)
}

async fn worker(c: aws_sdk_s3::Client, oracle: Oracle, cycle: u64, w: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    for n in 0.. {
        // A third of the PUTs overwrite this worker's hot key.
        let key = if rng.below(3) == 0 {
            format!("hot/{w}")
        } else {
            format!("c{cycle}/w{w}/{n}")
        };
        let body = Arc::new(body_for(&mut rng));
        oracle
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .pending
            .push(body.clone());
        let res = c
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from(body.as_ref().clone()))
            .send()
            .await;
        if res.is_err() {
            return; // the server died (or is dying): outcome unknown
        }
        let mut o = oracle.lock().unwrap();
        let st = o.get_mut(&key).unwrap();
        // Acknowledged: this content, or a later pending one, is current.
        let pos = st
            .pending
            .iter()
            .position(|p| Arc::ptr_eq(p, &body))
            .unwrap();
        st.pending.drain(..=pos);
        st.acked = Some(body);
    }
}

#[test]
fn acknowledged_puts_survive_sigkill_under_concurrent_load() {
    run(async {
        let seed = test_seed("crash");
        let mut rng = Rng::new(seed);
        let mut server = TestServer::start();
        create_bucket(&sdk_client(&server), BUCKET).await;
        let oracle: Oracle = Arc::default();
        let mut acked_total = 0usize;
        for cycle in 0..CRASH_CYCLES {
            let c = sdk_client(&server);
            let tasks: Vec<_> = (0..WORKERS)
                .map(|w| tokio::spawn(worker(c.clone(), oracle.clone(), cycle, w, rng.next_u64())))
                .collect();
            let kill_after = Duration::from_millis(150 + rng.below(900));
            tokio::time::sleep(kill_after).await;
            server.kill();
            for t in tasks {
                t.await.unwrap();
            }
            server.start_again();

            let c = sdk_client(&server);
            let snapshot: Vec<(String, Option<Body>, Vec<Body>)> = oracle
                .lock()
                .unwrap()
                .iter()
                .map(|(k, s)| (k.clone(), s.acked.clone(), s.pending.clone()))
                .collect();
            acked_total = snapshot.iter().filter(|(_, a, _)| a.is_some()).count();
            for (key, acked, pending) in &snapshot {
                // Check this cycle's keys, the hot keys, and a sample of older ones.
                let recent = key.starts_with(&format!("c{cycle}/")) || key.starts_with("hot/");
                if !recent && rng.below(10) != 0 {
                    continue;
                }
                let got = if object_exists(&c, BUCKET, key).await {
                    Some(get_bytes(&c, BUCKET, key).await)
                } else {
                    None
                };
                let ok = match &got {
                    None => acked.is_none(),
                    Some(g) => {
                        acked.as_ref().is_some_and(|a| a.as_slice() == g.as_slice())
                            || pending.iter().any(|p| p.as_slice() == g.as_slice())
                    }
                };
                assert!(
                    ok,
                    "cycle {cycle} (killed after {kill_after:?}): {key} holds {} ({} acked bytes, {} pending versions) — lost or partial",
                    got.as_ref()
                        .map_or("nothing".to_owned(), |g| format!("{} bytes", g.len())),
                    acked.as_ref().map_or(0, |a| a.len()),
                    pending.len()
                );
                // What is there now is the truth for the next cycles.
                let mut o = oracle.lock().unwrap();
                let st = o.get_mut(key).unwrap();
                st.pending.clear();
                st.acked = got.map(Arc::new);
            }
        }
        assert!(
            acked_total > 100,
            "too little load to mean anything: {acked_total} keys acknowledged"
        );
        eprintln!("crash: {CRASH_CYCLES} SIGKILL cycles, {acked_total} keys acknowledged");
    });
}

// ---------------------------------------------------------------------------
// Versioned writes under SIGKILL
// ---------------------------------------------------------------------------
//
// Several writers PUT new versions of a few keys at once — in a versioned
// bucket and in an Object Lock bucket, where half the versions carry a
// COMPLIANCE retention — and now and then DELETE a key (a delete marker).
// The server is killed with SIGKILL at a random moment, restarted and every
// key's history checked, for `VERSION_CRASH_CYCLES` cycles:
//
// * every acknowledged version id is listed and reads back the bytes
//   acknowledged for it, and every acknowledged delete marker is listed;
// * the history is consistent: version ids unique, exactly one IsLatest and
//   it is the newest listed, a write acknowledged before another was sent is
//   listed as older, and every listed version reads back complete (with the
//   bytes of one of the key's PUTs);
// * a locked version keeps its COMPLIANCE retention and cannot be deleted.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ObjectLockMode, ObjectLockRetentionMode};

const VERSION_CRASH_CYCLES: u64 = 4;
const VERSION_WORKERS: u64 = 8;
const VERSIONED_BUCKET: &str = "vcrash";
const LOCKED_BUCKET: &str = "vlock";
/// (bucket, key) pairs the writers share.
const VERSIONED_KEYS: [(&str, &str); 6] = [
    (VERSIONED_BUCKET, "k0"),
    (VERSIONED_BUCKET, "k1"),
    (VERSIONED_BUCKET, "k2"),
    (VERSIONED_BUCKET, "k3"),
    (LOCKED_BUCKET, "l0"),
    (LOCKED_BUCKET, "l1"),
];

/// One write to a key of a versioned bucket, as its client saw it.
#[derive(Clone)]
struct VersionedWrite {
    /// The body PUT, or `None` for a DELETE that places a delete marker.
    body: Option<Body>,
    /// Whether the PUT asked for a COMPLIANCE retention.
    locked: bool,
    /// Just before the request was sent.
    sent: Instant,
    /// When the answer came, with the version id it gave.
    acked: Option<(Instant, String)>,
}

type Histories = Arc<Mutex<HashMap<(String, String), Vec<VersionedWrite>>>>;

/// One `<Version>` or `<DeleteMarker>` of a ListObjectVersions answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListedVersion {
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
}

/// Every version and delete marker of `bucket` in the server's order
/// (ListObjectVersions page by page, through the raw XML: the SDK splits
/// versions and markers into two lists and loses how they interleave).
pub(crate) async fn list_versions_in_order(addr: SocketAddr, bucket: &str) -> Vec<ListedVersion> {
    let mut out = Vec::new();
    let mut after: Option<(String, String)> = None;
    for _page in 0..10_000 {
        let mut q = format!("/{bucket}?versions&max-keys=1000");
        if let Some((k, v)) = &after {
            q.push_str(&format!(
                "&key-marker={}&version-id-marker={}",
                encode_query(k),
                encode_query(v)
            ));
        }
        let resp = RawRequest::new("GET", &q)
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        let text = resp.text();
        assert_eq!(resp.status, 200, "ListObjectVersions {bucket}: {text}");
        let mut rest = text.as_str();
        loop {
            let version = rest.find("<Version>");
            let marker = rest.find("<DeleteMarker>");
            let (start, delete_marker) = match (version, marker) {
                (Some(v), Some(m)) => (v.min(m), m < v),
                (Some(v), None) => (v, false),
                (None, Some(m)) => (m, true),
                (None, None) => break,
            };
            let close = if delete_marker {
                "</DeleteMarker>"
            } else {
                "</Version>"
            };
            let end = start + rest[start..].find(close).expect("element closed") + close.len();
            let element = &rest[start..end];
            out.push(ListedVersion {
                key: xml_field(element, "Key").expect("Key"),
                version_id: xml_field(element, "VersionId").expect("VersionId"),
                is_latest: xml_field(element, "IsLatest").as_deref() == Some("true"),
                delete_marker,
                size: xml_field(element, "Size").map_or(0, |s| s.parse().unwrap()),
            });
            rest = &rest[end..];
        }
        if xml_field(&text, "IsTruncated").as_deref() != Some("true") {
            return out;
        }
        after = Some((
            xml_field(&text, "NextKeyMarker").expect("NextKeyMarker"),
            xml_field(&text, "NextVersionIdMarker").expect("NextVersionIdMarker"),
        ));
    }
    panic!("ListObjectVersions {bucket}: more than 10,000 pages");
}

/// Reads one version whole.
pub(crate) async fn get_version(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}?versionId={version_id}: {}", show(&e)));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}?versionId={version_id} body: {e}"))
        .into_bytes()
        .to_vec()
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn versioned_body(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        // Small enough to be kept in the metadata (inline).
        0..=2 => 1 + rng.below(4000) as usize,
        3..=7 => 8 * KIB + rng.below(300 * KIB as u64) as usize,
        _ => MIB + rng.below(3 * MIB as u64 / 2) as usize,
    };
    rng.bytes(len)
}

async fn versioned_worker(
    c: aws_sdk_s3::Client,
    histories: Histories,
    seed: u64,
    lock_until_secs: i64,
) {
    let mut rng = Rng::new(seed);
    loop {
        let (bucket, key) = VERSIONED_KEYS[rng.below(VERSIONED_KEYS.len() as u64) as usize];
        let marker = rng.below(10) == 0;
        let locked = bucket == LOCKED_BUCKET && !marker && rng.below(2) == 0;
        let body = (!marker).then(|| Arc::new(versioned_body(&mut rng)));
        let index = {
            let mut h = histories.lock().unwrap();
            let writes = h.entry((bucket.to_owned(), key.to_owned())).or_default();
            writes.push(VersionedWrite {
                body: body.clone(),
                locked,
                sent: Instant::now(),
                acked: None,
            });
            writes.len() - 1
        };
        let version_id = match &body {
            Some(body) => {
                let mut req = c
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(body.as_ref().clone()));
                if locked {
                    req = req
                        .object_lock_mode(ObjectLockMode::Compliance)
                        .object_lock_retain_until_date(DateTime::from_secs(lock_until_secs));
                }
                match req.send().await {
                    Ok(out) => out.version_id().map(str::to_owned),
                    Err(_) => return, // the server died (or is dying): outcome unknown
                }
            }
            None => match c.delete_object().bucket(bucket).key(key).send().await {
                Ok(out) => {
                    assert_eq!(
                        out.delete_marker(),
                        Some(true),
                        "DELETE {bucket}/{key} in a versioned bucket places a delete marker"
                    );
                    out.version_id().map(str::to_owned)
                }
                Err(_) => return,
            },
        };
        let version_id = version_id
            .unwrap_or_else(|| panic!("{bucket}/{key}: a versioned write without a version id"));
        let now = Instant::now();
        histories
            .lock()
            .unwrap()
            .get_mut(&(bucket.to_owned(), key.to_owned()))
            .unwrap()[index]
            .acked = Some((now, version_id));
    }
}

/// What one check of every key's history found.
#[derive(Default)]
struct VersionCounts {
    acked_versions: usize,
    acked_markers: usize,
    acked_locked: usize,
    listed: usize,
}

/// Checks every key's history against what its writers saw (see the
/// section comment).
async fn check_histories(
    server: &TestServer,
    histories: &Histories,
    lock_until_secs: i64,
    what: &str,
) -> VersionCounts {
    let c = sdk_client(server);
    let snapshot: Vec<((String, String), Vec<VersionedWrite>)> = histories
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut listed: HashMap<(String, String), Vec<ListedVersion>> = HashMap::new();
    for bucket in [VERSIONED_BUCKET, LOCKED_BUCKET] {
        for v in list_versions_in_order(server.s3_addr(), bucket).await {
            listed
                .entry((bucket.to_owned(), v.key.clone()))
                .or_default()
                .push(v);
        }
    }
    let mut counts = VersionCounts::default();
    for ((bucket, key), writes) in &snapshot {
        let empty = Vec::new();
        let list = listed.get(&(bucket.clone(), key.clone())).unwrap_or(&empty);
        counts.listed += list.len();
        let position = |id: &str| list.iter().position(|v| v.version_id == id);

        // A consistent history: unique ids, one latest, the newest.
        let mut ids: Vec<&str> = list.iter().map(|v| v.version_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            list.len(),
            "{what}: {bucket}/{key}: a version id listed twice: {list:?}"
        );
        if !list.is_empty() {
            assert_eq!(
                list.iter().filter(|v| v.is_latest).count(),
                1,
                "{what}: {bucket}/{key}: not exactly one IsLatest: {list:?}"
            );
            assert!(
                list[0].is_latest,
                "{what}: {bucket}/{key}: the latest is not the newest listed: {list:?}"
            );
        }

        // Every acknowledged write is there, as what it was.
        for w in writes {
            let Some((_, id)) = &w.acked else { continue };
            let p = position(id).unwrap_or_else(|| {
                panic!(
                    "{what}: {bucket}/{key}: acknowledged {} {id} is gone; listed: {list:?}",
                    if w.body.is_some() {
                        "version"
                    } else {
                        "delete marker"
                    }
                )
            });
            assert_eq!(
                list[p].delete_marker,
                w.body.is_none(),
                "{what}: {bucket}/{key}: {id} changed kind: {:?}",
                list[p]
            );
            match &w.body {
                None => counts.acked_markers += 1,
                Some(body) => {
                    counts.acked_versions += 1;
                    let got = get_version(&c, bucket, key, id).await;
                    assert!(
                        got.as_slice() == body.as_slice(),
                        "{what}: {bucket}/{key}?versionId={id}: {} bytes read, {} acknowledged — not the acknowledged bytes",
                        got.len(),
                        body.len()
                    );
                }
            }
            if w.locked {
                counts.acked_locked += 1;
                let r = c
                    .get_object_retention()
                    .bucket(bucket)
                    .key(key)
                    .version_id(id)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "{what}: GetObjectRetention {bucket}/{key} {id}: {}",
                            show(&e)
                        )
                    });
                let r = r.retention().expect("a retention");
                assert_eq!(
                    r.mode(),
                    Some(&ObjectLockRetentionMode::Compliance),
                    "{what}: {bucket}/{key} {id}"
                );
                assert_eq!(
                    r.retain_until_date().map(|d| d.secs()),
                    Some(lock_until_secs),
                    "{what}: {bucket}/{key} {id}: retention date changed"
                );
                let err = c
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .version_id(id)
                    .send()
                    .await
                    .expect_err("a COMPLIANCE version cannot be deleted");
                assert_eq!(
                    sdk_error_code(&err).as_deref(),
                    Some("AccessDenied"),
                    "{what}: {bucket}/{key} {id}"
                );
            }
        }

        // A write acknowledged before another was sent is older.
        for a in writes {
            let Some((a_acked, a_id)) = &a.acked else {
                continue;
            };
            for b in writes {
                let Some((_, b_id)) = &b.acked else { continue };
                if *a_acked < b.sent {
                    assert!(
                        position(b_id) < position(a_id),
                        "{what}: {bucket}/{key}: {a_id} was acknowledged before {b_id} was sent, yet listed as newer: {list:?}"
                    );
                }
            }
        }

        // Nothing half-written: every listed version (acknowledged or cut by
        // the kill) reads back whole, as one of the key's PUTs.
        for v in list.iter().filter(|v| !v.delete_marker) {
            if writes
                .iter()
                .any(|w| w.acked.as_ref().is_some_and(|(_, id)| *id == v.version_id))
            {
                continue; // checked above
            }
            let got = get_version(&c, bucket, key, &v.version_id).await;
            assert_eq!(
                got.len() as u64,
                v.size,
                "{what}: {bucket}/{key} {}: listed size",
                v.version_id
            );
            assert!(
                writes.iter().any(|w| w
                    .body
                    .as_ref()
                    .is_some_and(|b| b.as_slice() == got.as_slice())),
                "{what}: {bucket}/{key} {}: {} bytes that no PUT sent — partial or corrupt",
                v.version_id,
                got.len()
            );
        }
    }
    counts
}

#[test]
fn acknowledged_versions_and_locks_survive_sigkill_under_concurrent_versioned_puts() {
    run(async {
        let seed = test_seed("crash-versions");
        let mut rng = Rng::new(seed);
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_versioned_bucket(&c, VERSIONED_BUCKET).await;
        c.create_bucket()
            .bucket(LOCKED_BUCKET)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap();
        let lock_until_secs = unix_secs() + 3600;
        let histories: Histories = Arc::default();
        let mut counts = VersionCounts::default();
        for cycle in 0..VERSION_CRASH_CYCLES {
            let c = sdk_client(&server);
            let tasks: Vec<_> = (0..VERSION_WORKERS)
                .map(|_| {
                    tokio::spawn(versioned_worker(
                        c.clone(),
                        histories.clone(),
                        rng.next_u64(),
                        lock_until_secs,
                    ))
                })
                .collect();
            let kill_after = Duration::from_millis(300 + rng.below(1200));
            tokio::time::sleep(kill_after).await;
            server.kill();
            for t in tasks {
                t.await.unwrap();
            }
            server.start_again();
            let what = format!("cycle {cycle} (killed after {kill_after:?})");
            counts = check_histories(&server, &histories, lock_until_secs, &what).await;
        }
        assert!(
            counts.acked_versions > 50 && counts.acked_markers > 3 && counts.acked_locked > 5,
            "too little load to mean anything: {} versions, {} delete markers, {} locked versions acknowledged",
            counts.acked_versions,
            counts.acked_markers,
            counts.acked_locked
        );
        eprintln!(
            "crash-versions: {VERSION_CRASH_CYCLES} SIGKILL cycles, {} versions ({} locked) and {} delete markers acknowledged, {} listed",
            counts.acked_versions, counts.acked_locked, counts.acked_markers, counts.listed
        );
    });
}

const LIFECYCLE_BUCKET: &str = "lc-crash";
const LIFECYCLE_EXPIRING: usize = 240;
const LIFECYCLE_KEPT: usize = 20;

/// A lifecycle pass cut by SIGKILL, several times, is finished by the
/// passes after restart and nothing is done twice: every expiring key of a
/// versioned bucket ends with exactly one delete marker over its one
/// version (a doubled action would show as two markers; a lost version as
/// none), and keys outside the rule's prefix are untouched. The pass is
/// paced (25 deletions/s) so that each kill lands in the middle of one.
#[test]
fn lifecycle_passes_cut_by_sigkill_finish_without_doubling() {
    run(async {
        let seed = test_seed("crash-lifecycle");
        let mut rng = Rng::new(seed);
        let mut server = TestServer::start_with_args(&[
            "--lifecycle-interval-secs",
            "1",
            "--lifecycle-day-secs",
            "1",
            "--lifecycle-actions-per-sec",
            "25",
        ]);
        let c = sdk_client(&server);
        create_versioned_bucket(&c, LIFECYCLE_BUCKET).await;
        let keys: Vec<String> = (0..LIFECYCLE_EXPIRING)
            .map(|i| format!("exp/{i:04}"))
            .chain((0..LIFECYCLE_KEPT).map(|i| format!("keep/{i:04}")))
            .collect();
        let puts: Vec<_> = keys
            .chunks(20)
            .map(|chunk| {
                let (c, chunk) = (c.clone(), chunk.to_vec());
                tokio::spawn(async move {
                    for k in chunk {
                        put_bytes(&c, LIFECYCLE_BUCKET, &k, k.as_bytes()).await;
                    }
                })
            })
            .collect();
        for p in puts {
            p.await.unwrap();
        }
        let rule = aws_sdk_s3::types::LifecycleRule::builder()
            .id("expire-exp")
            .filter(
                aws_sdk_s3::types::LifecycleRuleFilter::builder()
                    .prefix("exp/")
                    .build(),
            )
            .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
            .expiration(
                aws_sdk_s3::types::LifecycleExpiration::builder()
                    .days(1)
                    .build(),
            )
            .build()
            .unwrap();
        c.put_bucket_lifecycle_configuration()
            .bucket(LIFECYCLE_BUCKET)
            .lifecycle_configuration(
                aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let mut kills = 0;
        let started = std::time::Instant::now();
        loop {
            let listed = list_versions_in_order(server.s3_addr(), LIFECYCLE_BUCKET).await;
            let markers = listed.iter().filter(|v| v.delete_marker).count();
            if markers >= LIFECYCLE_EXPIRING || started.elapsed() > Duration::from_secs(90) {
                break;
            }
            if kills < 3 && markers > 0 {
                // Mid-pass: some markers placed, more due.
                tokio::time::sleep(Duration::from_millis(200 + rng.below(1500))).await;
                server.kill();
                server.start_again();
                kills += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        assert_eq!(
            kills, 3,
            "the passes ended before three kills could cut them"
        );
        // A last pass or two must find nothing more to do.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let listed = list_versions_in_order(server.s3_addr(), LIFECYCLE_BUCKET).await;
        let mut by_key: HashMap<&str, Vec<&ListedVersion>> = HashMap::new();
        for v in &listed {
            by_key.entry(v.key.as_str()).or_default().push(v);
        }
        assert_eq!(by_key.len(), keys.len(), "a key vanished");
        for k in &keys {
            let history = &by_key[k.as_str()];
            if k.starts_with("exp/") {
                assert_eq!(history.len(), 2, "{k}: {history:?}");
                assert!(
                    history[0].delete_marker && history[0].is_latest,
                    "{k}: {history:?}"
                );
                assert!(!history[1].delete_marker, "{k}: {history:?}");
                assert_eq!(history[1].size, k.len() as u64);
            } else {
                assert_eq!(history.len(), 1, "{k}: {history:?}");
                assert!(!history[0].delete_marker && history[0].is_latest);
            }
        }
        eprintln!(
            "crash-lifecycle: {LIFECYCLE_EXPIRING} keys expired across {kills} SIGKILLs in {:?}, one marker each",
            started.elapsed()
        );
    });
}
