//! Helpers shared by the engine's test modules: a deterministic generator,
//! engines on temporary directories, and whole-object put/get.

use std::path::Path;

use bytes::Bytes;
use cairn_crypto::DataRootKey;

use crate::records::ObjectMetadata;
use crate::{Engine, EngineConfig, EngineResult, ObjectVersion};

/// xorshift64: deterministic test data and choices.
#[derive(Debug)]
pub(crate) struct XorShift(pub u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// `len` incompressible bytes determined by `seed`.
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).bytes(len)
}

/// The default layout under `dir` with small chunks (16/64/256 KiB), so tests
/// get many chunks from little data.
pub(crate) fn small_chunk_config(dir: &Path) -> EngineConfig {
    let mut cfg = EngineConfig::single_dir(dir);
    cfg.chunker = cairn_dedup::ChunkerConfig {
        min_size_bytes: 16 << 10,
        avg_size_bytes: 64 << 10,
        max_size_bytes: 256 << 10,
    };
    cfg
}

/// Opens an engine with a master key made of `key_byte` repeated.
pub(crate) fn open_with(cfg: EngineConfig, key_byte: u8) -> Engine {
    let master = DataRootKey::from_hex(&format!("{key_byte:02x}").repeat(32)).unwrap();
    Engine::open(cfg, &master, &prometheus::Registry::new()).unwrap()
}

/// Writes `data` to `bucket/key` in pieces of `piece` bytes and commits it.
pub(crate) async fn try_put(
    e: &Engine,
    bucket: &str,
    key: &str,
    data: &[u8],
    piece: usize,
) -> EngineResult<ObjectVersion> {
    let mut w = e.object_writer(bucket)?;
    for p in data.chunks(piece.max(1)) {
        w.write(Bytes::copy_from_slice(p)).await?;
    }
    let staged = w.finish().await?;
    e.commit_object(
        bucket,
        key,
        staged,
        "etag".into(),
        ObjectMetadata::default(),
    )
    .await
}

/// Reads `range` (or all) of `bucket/key`; `Err` if any part fails.
/// Writes `data` as part `n` of upload `id`; returns its MD5 (the part's
/// ETag).
pub(crate) async fn put_part(
    e: &Engine,
    bucket: &str,
    key: &str,
    id: crate::UploadId,
    n: u32,
    data: &[u8],
) -> [u8; 16] {
    let mut w = e.object_writer(bucket).unwrap();
    w.write(Bytes::copy_from_slice(data)).await.unwrap();
    let staged = w.finish().await.unwrap();
    let md5: [u8; 16] = {
        use md5::Digest;
        md5::Md5::digest(data).into()
    };
    let part = crate::NewPart {
        staged,
        md5,
        checksums: vec![],
        cipher_stream: 0,
    };
    e.commit_part(bucket, key, id, n, part).await.unwrap();
    md5
}

pub(crate) async fn try_read(
    e: &Engine,
    bucket: &str,
    key: &str,
    range: Option<(u64, u64)>,
) -> EngineResult<Vec<u8>> {
    let mut r = e.read_object(bucket, key, range)?;
    let mut out = Vec::new();
    while let Some(b) = r.next_bytes().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

/// Total bytes of the files below `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
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
