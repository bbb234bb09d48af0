//! Model-based test: random sequences of put / overwrite / copy / delete /
//! multipart (complete and abort) / garbage collection / restart against an
//! in-memory oracle. After every step the touched key, and at the end every
//! key and the listing, must match the oracle; deleting everything and
//! collecting must leave no chunk record and (almost) no segment bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_crypto::DataRootKey;

use crate::records::ObjectMetadata;
use crate::test_support::{XorShift, try_put};
use crate::{CompletedPart, Engine, EngineConfig, GcOptions, ListQuery};

const KEYS: u64 = 12;
const STEPS: usize = 160;

fn open(dir: &std::path::Path) -> Engine {
    let mut cfg = EngineConfig::single_dir(dir);
    cfg.chunker = cairn_dedup::ChunkerConfig {
        min_size_bytes: 4 << 10,
        avg_size_bytes: 16 << 10,
        max_size_bytes: 64 << 10,
    };
    cfg.segment_size_max_bytes = 128 << 10;
    let master = DataRootKey::from_hex(&"5a".repeat(32)).unwrap();
    Engine::open(cfg, &master, &prometheus::Registry::new()).unwrap()
}

fn gc_now() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        compact_below_live_ratio: 0.9,
        upload_max_age: None,
        segment_settle: Duration::from_millis(50),
    }
}

/// Contents from a small family so that objects share chunks: a base
/// pattern, optionally with a prefix that shifts it (CDC must still dedup).
fn content(rng: &mut XorShift) -> Vec<u8> {
    let base = rng.below(4);
    let len = match rng.below(4) {
        0 => rng.below(100) as usize,
        1 => rng.below(20_000) as usize,
        _ => 20_000 + rng.below(200_000) as usize,
    };
    let mut x = (base + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    if rng.below(2) == 0 {
        let prefix = rng.below(50) as usize;
        data.splice(0..0, std::iter::repeat_n(rng.next() as u8, prefix));
    }
    data
}

async fn put(e: &Engine, key: &str, data: &[u8]) {
    try_put(e, "b", key, data, 7_000).await.unwrap();
}

async fn read(e: &Engine, key: &str) -> Option<Vec<u8>> {
    let mut r = match e.read_object("b", key, None) {
        Ok(r) => r,
        Err(crate::EngineError::NoSuchKey) => return None,
        Err(err) => panic!("{key}: {err}"),
    };
    let mut out = Vec::new();
    while let Some(b) = r.next_bytes().await {
        out.extend_from_slice(&b.unwrap());
    }
    Some(out)
}

async fn multipart(e: &Engine, key: &str, data: &[u8], complete: bool) {
    let id = e
        .create_upload("b", key, ObjectMetadata::default())
        .await
        .unwrap();
    // One part: S3's 5 MiB minimum applies only to parts before the last.
    let md5 = crate::test_support::put_part(e, "b", key, id, 1, data).await;
    if complete {
        e.complete_upload(
            "b",
            key,
            id,
            vec![CompletedPart {
                part_number: 1,
                etag: hex::encode(md5),
            }],
        )
        .await
        .unwrap();
    } else {
        e.abort_upload("b", key, id).await.unwrap();
    }
}

async fn run_model(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut e = open(dir.path());
    e.create_bucket("b").await.unwrap();
    let mut rng = XorShift(seed | 1);
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for step in 0..STEPS {
        let key = format!("k{:02}", rng.below(KEYS));
        let op = rng.below(100);
        let what = match op {
            0..=34 => {
                let data = content(&mut rng);
                put(&e, &key, &data).await;
                model.insert(key.clone(), data);
                "put"
            }
            35..=49 => {
                let src = format!("k{:02}", rng.below(KEYS));
                match e.copy_object("b", &src, "b", &key, None).await {
                    Ok(_) => {
                        let data = model.get(&src).cloned().unwrap();
                        model.insert(key.clone(), data);
                    }
                    Err(crate::EngineError::NoSuchKey) => assert!(!model.contains_key(&src)),
                    Err(err) => panic!("copy: {err}"),
                }
                "copy"
            }
            50..=69 => {
                e.delete_object("b", &key).await.unwrap();
                model.remove(&key);
                "delete"
            }
            70..=79 => {
                let data = content(&mut rng);
                let complete = rng.below(3) != 0;
                multipart(&e, &key, &data, complete).await;
                if complete {
                    model.insert(key.clone(), data);
                }
                "multipart"
            }
            80..=91 => {
                tokio::time::sleep(Duration::from_millis(60)).await;
                e.collect_garbage(gc_now()).await.unwrap();
                "gc"
            }
            _ => {
                e.wait_for_background_repairs().await;
                drop(e);
                e = open(dir.path());
                "restart"
            }
        };
        assert_eq!(
            read(&e, &key).await.as_deref(),
            model.get(&key).map(Vec::as_slice),
            "seed {seed} step {step} ({what}) key {key}"
        );
    }
    // Everything, and the listing.
    for (k, v) in &model {
        assert_eq!(
            read(&e, k).await.as_ref(),
            Some(v),
            "seed {seed}: final {k}"
        );
    }
    let page = e
        .list_objects(
            "b",
            ListQuery {
                prefix: String::new(),
                delimiter: None,
                start_after: None,
                max_keys: 1000,
            },
        )
        .await
        .unwrap();
    let listed: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    let expected: Vec<&str> = model.keys().map(String::as_str).collect();
    assert_eq!(listed, expected, "seed {seed}: listing");
    for o in &page.objects {
        assert_eq!(
            o.version.size,
            model[&o.key].len() as u64,
            "seed {seed}: size of {}",
            o.key
        );
    }

    // No leaks: with everything deleted, collection leaves nothing behind.
    for k in model.keys() {
        e.delete_object("b", k).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    e.collect_garbage(gc_now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let last = e.collect_garbage(gc_now()).await.unwrap();
    assert_eq!(
        last.chunks_live, 0,
        "seed {seed}: leaked chunk references {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operation_sequences_match_the_model() {
    for seed in [1, 0xabcdef, 0x5eed_0003] {
        run_model(seed).await;
    }
}
