//! Fault injection: [`FaultyStore`] wraps a real [`LocalDrive`] and, from a
//! seeded generator, fails, corrupts, delays or fills up its operations.
//! The engine must never acknowledge a write it could lose, never return
//! wrong bytes, and fail cleanly (with the right error) when it must.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_crypto::DataRootKey;
use cairn_dedup::ChunkId;
use cairn_erasure::ShardChecksum;

use crate::drive::{LocalDrive, ScannedShard, SegmentInfo, ShardReadError, ShardStore};
use crate::error::{EngineError, EngineResult};
use crate::records::ShardLocation;
use crate::test_support::{self, XorShift};
use crate::{Engine, EngineConfig, EngineMetrics, ScrubOptions};

/// What a [`FaultyStore`] does to its operations; probabilities in 1/1000.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    fail_appends: u32,
    fail_syncs: u32,
    fail_reads: u32,
    corrupt_reads: u32,
    full: bool,
    delay: Duration,
}

#[derive(Debug)]
struct FaultyStore {
    inner: LocalDrive,
    faults: Mutex<Faults>,
    rng: AtomicU64,
}

impl FaultyStore {
    fn roll(&self, per_mille: u32) -> bool {
        if per_mille == 0 {
            return false;
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        (x % 1000) < u64::from(per_mille)
    }

    fn faults(&self) -> Faults {
        let f = *self.faults.lock().unwrap();
        if !f.delay.is_zero() {
            std::thread::sleep(f.delay);
        }
        f
    }

    fn set(&self, f: Faults) {
        *self.faults.lock().unwrap() = f;
    }
}

fn injected(what: &str) -> std::io::Error {
    std::io::Error::other(format!("injected {what} failure"))
}

impl ShardStore for FaultyStore {
    fn index(&self) -> u16 {
        self.inner.index()
    }

    fn append(
        &self,
        chunk: &ChunkId,
        shard_index: u8,
        payload: &[u8],
        checksum: ShardChecksum,
    ) -> EngineResult<(ShardLocation, u64)> {
        let f = self.faults();
        if f.full {
            return Err(EngineError::io(
                "append",
                std::io::Error::from_raw_os_error(28),
            ));
        }
        if self.roll(f.fail_appends) {
            return Err(EngineError::io("append", injected("append")));
        }
        self.inner.append(chunk, shard_index, payload, checksum)
    }

    fn sync(&self, seq: u64) -> EngineResult<()> {
        let f = self.faults();
        if self.roll(f.fail_syncs) {
            return Err(EngineError::io("fsync", injected("fsync")));
        }
        self.inner.sync(seq)
    }

    // Early syncs go through `sync` above, so they meet injected faults too.
    fn claim_early_sync(&self) -> bool {
        self.inner.claim_early_sync()
    }

    fn early_sync_finished(&self) {
        self.inner.early_sync_finished()
    }

    fn read(
        &self,
        loc: &ShardLocation,
        chunk: &ChunkId,
        shard_index: u8,
        payload_len: u32,
    ) -> Result<Bytes, ShardReadError> {
        let f = self.faults();
        if self.roll(f.fail_reads) {
            return Err(ShardReadError::Io(injected("read")));
        }
        let got = self.inner.read(loc, chunk, shard_index, payload_len)?;
        if self.roll(f.corrupt_reads) && !got.is_empty() {
            // Bitrot below the checksum layer: the store must notice.
            let mut bad = got.to_vec();
            let i = (self.rng.load(Ordering::Relaxed) as usize) % bad.len();
            bad[i] ^= 0x40;
            let crc_ok = cairn_erasure::shard_checksum(&bad) == cairn_erasure::shard_checksum(&got);
            assert!(!crc_ok, "CRC-64 missed a flipped bit");
            return Err(ShardReadError::Corrupt("injected bitrot".into()));
        }
        Ok(got)
    }

    fn segments(&self) -> EngineResult<Vec<SegmentInfo>> {
        self.inner.segments()
    }

    fn scan_segment(&self, segment: u64) -> EngineResult<Vec<ScannedShard>> {
        self.inner.scan_segment(segment)
    }

    fn remove_segment(&self, segment: u64) -> EngineResult<u64> {
        self.inner.remove_segment(segment)
    }

    fn seal_active(&self, segment: u64) -> bool {
        self.inner.seal_active(segment)
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    engine: Engine,
    stores: Vec<Arc<FaultyStore>>,
}

async fn rig(seed: u64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::single_dir(dir.path());
    cfg.chunker = cairn_dedup::ChunkerConfig {
        min_size_bytes: 16 << 10,
        avg_size_bytes: 64 << 10,
        max_size_bytes: 256 << 10,
    };
    let metrics = EngineMetrics::register(&prometheus::Registry::new()).unwrap();
    let stores: Vec<Arc<FaultyStore>> = cfg
        .drive_dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Arc::new(FaultyStore {
                inner: LocalDrive::open(i as u16, d, cfg.segment_size_max_bytes, None).unwrap(),
                faults: Mutex::new(Faults::default()),
                rng: AtomicU64::new(seed.wrapping_add(i as u64 * 0x9e37_79b9) | 1),
            })
        })
        .collect();
    let dyn_stores: Vec<Arc<dyn ShardStore>> = stores
        .iter()
        .map(|s| s.clone() as Arc<dyn ShardStore>)
        .collect();
    let master = DataRootKey::from_hex(&"61".repeat(32)).unwrap();
    let engine = Engine::open_with_stores(cfg, &master, metrics, dyn_stores).unwrap();
    engine.create_bucket("b").await.unwrap();
    Rig {
        _dir: dir,
        engine,
        stores,
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    XorShift(seed | 1).bytes(len)
}

async fn try_put(e: &Engine, key: &str, body: &[u8]) -> EngineResult<()> {
    test_support::try_put(e, "b", key, body, 64 << 10)
        .await
        .map(|_| ())
}

/// The object's bytes, or `Err` if any part could not be read.
async fn try_get(e: &Engine, key: &str) -> EngineResult<Vec<u8>> {
    test_support::try_read(e, "b", key, None).await
}

#[tokio::test]
async fn a_failing_drive_is_skipped_and_healed_when_it_returns() {
    let r = rig(1).await;
    r.stores[2].set(Faults {
        fail_appends: 1000,
        ..Faults::default()
    });
    let body = data(900_000, 7);
    // 4+2 with one drive down: 5 shards per chunk meet the write quorum.
    try_put(&r.engine, "x", &body).await.unwrap();
    assert!(!r.engine.inner.drives.usable(2), "drive 2 marked faulty");
    assert_eq!(try_get(&r.engine, "x").await.unwrap(), body);

    // While the drive is still faulty a scrub finds the gap but cannot fill
    // it: the heal backlog shows what is owed.
    let owed = r
        .engine
        .scrub(ScrubOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert!(
        owed.shards_missing > 0 && owed.shards_repaired == 0,
        "{owed:?}"
    );
    assert!(r.engine.inner.metrics.heal_backlog_bytes.get() > 0);

    // The drive comes back (after its cool-down): a scrub rebuilds the
    // shards it never got, and then nothing is missing.
    r.stores[2].set(Faults::default());
    r.engine.inner.drives.health[2].succeeded_after_cooldown_for_tests();
    let heal = r
        .engine
        .scrub(ScrubOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert!(
        heal.shards_missing > 0 && heal.shards_repaired == heal.shards_missing,
        "{heal:?}"
    );
    let clean = r
        .engine
        .scrub(ScrubOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (clean.shards_missing, clean.shards_corrupt),
        (0, 0),
        "{clean:?}"
    );
    assert_eq!(r.engine.inner.metrics.heal_backlog_bytes.get(), 0);
}

#[tokio::test]
async fn below_the_write_quorum_a_put_fails_and_stores_nothing() {
    let r = rig(2).await;
    for d in [0, 3] {
        r.stores[d].set(Faults {
            fail_appends: 1000,
            ..Faults::default()
        });
    }
    let err = try_put(&r.engine, "y", &data(300_000, 8))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::ChunkUnavailable { .. }), "{err}");
    assert!(matches!(
        r.engine.head_object("b", "y"),
        Err(EngineError::NoSuchKey)
    ));
}

#[tokio::test]
async fn a_failed_fsync_fails_the_put_cleanly() {
    let r = rig(3).await;
    r.stores[4].set(Faults {
        fail_syncs: 1000,
        ..Faults::default()
    });
    let err = try_put(&r.engine, "z", &data(200_000, 9))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");
    assert!(r.engine.head_object("b", "z").is_err());
    // The client's retry skips the faulty drive and succeeds.
    try_put(&r.engine, "z", &data(200_000, 9)).await.unwrap();
    assert_eq!(try_get(&r.engine, "z").await.unwrap(), data(200_000, 9));
}

#[tokio::test]
async fn a_full_disk_is_storage_full_and_recovers_when_space_returns() {
    let r = rig(4).await;
    r.stores[1].set(Faults {
        full: true,
        ..Faults::default()
    });
    let err = try_put(&r.engine, "f", &data(200_000, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::StorageFull(_)), "{err}");
    assert!(r.engine.head_object("b", "f").is_err());
    assert!(
        r.engine.inner.drives.usable(1),
        "a full disk is not a faulty one"
    );
    r.stores[1].set(Faults::default());
    try_put(&r.engine, "f", &data(200_000, 10)).await.unwrap();
    assert_eq!(try_get(&r.engine, "f").await.unwrap(), data(200_000, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_read_faults_and_bitrot_never_yield_wrong_bytes() {
    let r = rig(5).await;
    let mut objects = Vec::new();
    for i in 0..6u64 {
        let body = data(100_000 + (i as usize) * 150_000, 100 + i);
        try_put(&r.engine, &format!("o{i}"), &body).await.unwrap();
        objects.push((format!("o{i}"), body));
    }
    for (d, s) in r.stores.iter().enumerate() {
        s.set(Faults {
            fail_reads: 30,
            corrupt_reads: 30,
            delay: Duration::from_micros(200 * d as u64),
            ..Faults::default()
        });
    }
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..5 {
        for (key, body) in &objects {
            match try_get(&r.engine, key).await {
                Ok(got) => {
                    assert_eq!(&got, body, "{key}: wrong bytes under faults");
                    ok += 1;
                }
                Err(_) => failed += 1,
            }
        }
    }
    // ~6 % of shard reads fail: with 2 parity shards nearly every read works.
    assert!(ok > failed * 4, "{ok} reads ok, {failed} failed");
}
