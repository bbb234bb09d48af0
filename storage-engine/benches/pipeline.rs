//! `cargo bench -p cairn-storage-engine`: the whole pipeline through the
//! engine on a temporary directory — chunk, id, dedup lookup, zstd, seal,
//! 4+2 erasure, append, fsync, metadata batch — and the read path back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use cairn_storage_engine::{DataRootKey, Engine, EngineConfig, ObjectMetadata};
use divan::counter::BytesCount;

const LEN: usize = 16 << 20;

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn engine(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Engine {
    let master = DataRootKey::from_hex(&"22".repeat(32)).unwrap();
    let e = Engine::open(
        EngineConfig::single_dir(dir),
        &master,
        &prometheus::Registry::new(),
    )
    .unwrap();
    rt.block_on(e.create_bucket("bench")).unwrap();
    e
}

async fn put(e: &Engine, key: &str, data: &[u8]) {
    let mut w = e.object_writer("bench").unwrap();
    for piece in data.chunks(64 << 10) {
        w.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    let staged = w.finish().await.unwrap();
    e.commit_object(
        "bench",
        key,
        staged,
        "etag".into(),
        ObjectMetadata::default(),
    )
    .await
    .unwrap();
}

#[divan::bench(sample_count = 10)]
fn put_16mib_new_data(b: divan::Bencher) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&rt, dir.path());
    let seed = std::sync::atomic::AtomicU64::new(1);
    b.counter(BytesCount::new(LEN))
        .with_inputs(|| {
            random(
                LEN,
                seed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            )
        })
        .bench_values(|data| rt.block_on(put(&e, "obj", &data)));
}

#[divan::bench(sample_count = 10)]
fn get_16mib(b: divan::Bencher) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&rt, dir.path());
    rt.block_on(put(&e, "obj", &random(LEN, 7)));
    b.counter(BytesCount::new(LEN)).bench(|| {
        rt.block_on(async {
            let mut r = e.read_object("bench", "obj", None).unwrap();
            let mut n = 0;
            while let Some(piece) = r.next_bytes().await {
                n += piece.unwrap().len();
            }
            n
        })
    });
}

fn main() {
    divan::main();
}
