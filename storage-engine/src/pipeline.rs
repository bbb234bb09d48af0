//! The per-chunk transform: plaintext → (zstd or raw) → AES-256-GCM sealed
//! bytes, and back with every check on the way out.
//!
//! Erasure coding of the sealed bytes is the caller's next step (see
//! `engine::store_chunk`); keeping it out of here lets reads skip RS entirely
//! when all data shards are healthy.

use bytes::Bytes;
use cairn_crypto::{ChunkSealer, DataRootKey};
use cairn_dedup::{ChunkId, ChunkIdKey};

use crate::error::{ChunkCheck, ChunkFault, EngineError, EngineResult};

/// zstd level 1: on this machine it beat level 3 in both speed and ratio on
/// sensor-like text (DESIGN.md), and it is the cheapest real compressor.
pub const ZSTD_LEVEL: i32 = 1;

/// Chunks larger than twice this are first tried on their first
/// `COMPRESSION_SAMPLE_BYTES`; if zstd cannot save `SAMPLE_MIN_SAVING_PCT`
/// of those, the chunk is stored raw without compressing the rest. Random,
/// encrypted or already compressed data (the common large upload) then
/// costs ~3 % of a full attempt. What it can miss: a chunk whose first
/// 8 KiB are noise but whose rest compresses — stored raw, still correct.
const COMPRESSION_SAMPLE_BYTES: usize = 8 << 10;
const SAMPLE_MIN_SAVING_PCT: usize = 2;

/// zstd contexts kept for reuse (creating one per chunk was ~1 % of a
/// 16 MiB PUT's CPU). Bounded: each holds ~1 MiB of tables, and the blocking
/// pool may run many more threads than there are cores, so contexts live in
/// this small pool, not one per thread.
static COMPRESSORS: std::sync::Mutex<Vec<zstd::bulk::Compressor<'static>>> =
    std::sync::Mutex::new(Vec::new());
const COMPRESSORS_KEPT_MAX: usize = 4;

/// zstd of `plaintext`, or `None` when a sample says it will not shrink.
fn compress_if_worth_it(plaintext: &[u8]) -> EngineResult<Option<Vec<u8>>> {
    let zstd_err = EngineError::Compression;
    let pooled = COMPRESSORS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut compressor = match pooled {
        Some(c) => c,
        None => zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd_err)?,
    };
    let result = (|| {
        if plaintext.len() > 2 * COMPRESSION_SAMPLE_BYTES {
            let sample = &plaintext[..COMPRESSION_SAMPLE_BYTES];
            let packed = compressor.compress(sample).map_err(zstd_err)?;
            if packed.len() * 100 > sample.len() * (100 - SAMPLE_MIN_SAVING_PCT) {
                return Ok(None);
            }
        }
        compressor.compress(plaintext).map(Some).map_err(zstd_err)
    })();
    let mut pool = COMPRESSORS.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < COMPRESSORS_KEPT_MAX {
        pool.push(compressor);
    }
    result
}

/// A chunk ready for erasure coding.
#[derive(Debug)]
pub struct SealedChunk {
    pub compressed: bool,
    pub sealed: Vec<u8>,
}

/// Keys and settings for turning chunks into sealed bytes and back.
pub struct ChunkCodec {
    id_key: ChunkIdKey,
    sealer: ChunkSealer,
}

impl std::fmt::Debug for ChunkCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkCodec(..)")
    }
}

impl ChunkCodec {
    pub fn new(root: &DataRootKey) -> Self {
        ChunkCodec {
            id_key: ChunkIdKey::from_bytes(root.chunk_id_key_bytes()),
            sealer: root.chunk_sealer(),
        }
    }

    /// The chunk's identity: BLAKE3 keyed with a secret of this deployment.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        self.id_key.chunk_id(plaintext)
    }

    /// Compresses (if it shrinks) and encrypts one chunk.
    pub fn seal(&self, id: &ChunkId, plaintext: &[u8]) -> EngineResult<SealedChunk> {
        self.seal_reserving(id, plaintext, |sealed_len| sealed_len)
    }

    /// [`seal`](Self::seal) into a buffer of `capacity(sealed length)`
    /// bytes, so what comes next (erasure coding's padding and parity) can
    /// grow it in place.
    pub fn seal_reserving(
        &self,
        id: &ChunkId,
        plaintext: &[u8],
        capacity: impl FnOnce(usize) -> usize,
    ) -> EngineResult<SealedChunk> {
        let compressed = compress_if_worth_it(plaintext)?;
        let (payload, is_compressed) = match &compressed {
            Some(c) if c.len() < plaintext.len() => (c.as_slice(), true),
            _ => (plaintext, false),
        };
        let sealed_len = payload.len() + cairn_crypto::SEAL_OVERHEAD_BYTES;
        let mut sealed = Vec::with_capacity(capacity(sealed_len).max(sealed_len));
        self.sealer
            .seal_into(id.as_bytes(), payload, &mut sealed)
            .map_err(EngineError::Crypto)?;
        Ok(SealedChunk {
            compressed: is_compressed,
            sealed,
        })
    }

    /// Decrypts, decompresses and verifies that the plaintext really is the
    /// chunk `id`. Any failure is corruption: nothing unverified leaves here.
    pub fn open(
        &self,
        id: &ChunkId,
        sealed: &[u8],
        compressed: bool,
        plain_len: u32,
    ) -> EngineResult<Bytes> {
        let payload = self
            .sealer
            .open(id.as_bytes(), sealed)
            .map_err(|e| corrupt(id, ChunkCheck::Authentication, Some(e.into())))?;
        let plain = if compressed {
            zstd::bulk::decompress(&payload, plain_len as usize)
                .map_err(|e| corrupt(id, ChunkCheck::Decompression, Some(e.into())))?
        } else {
            payload
        };
        if plain.len() != plain_len as usize {
            return Err(corrupt(id, ChunkCheck::Length, None));
        }
        if !self.id_key.verify(id, &plain) {
            return Err(corrupt(id, ChunkCheck::ContentId, None));
        }
        Ok(Bytes::from(plain))
    }
}

/// A chunk that failed `check` on the read path.
pub(crate) fn corrupt(id: &ChunkId, check: ChunkCheck, source: Option<ChunkFault>) -> EngineError {
    EngineError::CorruptChunk {
        chunk: *id,
        check,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dedup::{ChunkerConfig, StreamChunker};
    use cairn_erasure::{ErasureCoder, shard_checksum};
    use proptest::prelude::*;

    fn codec() -> ChunkCodec {
        ChunkCodec::new(&DataRootKey::from_hex(&"ab".repeat(32)).unwrap())
    }

    #[test]
    fn large_chunks_are_judged_by_a_sample() {
        let c = codec();
        let mut random = vec![0u8; 256 << 10];
        getrandom::fill(&mut random).unwrap();
        assert_eq!(compress_if_worth_it(&random).unwrap(), None, "skipped");
        let s = c.seal(&c.chunk_id(&random), &random).unwrap();
        assert!(!s.compressed);
        let text = b"2025-06-07T12:34:56Z,dev-1,temp=21.5\n".repeat(7000);
        let s = c.seal(&c.chunk_id(&text), &text).unwrap();
        assert!(s.compressed);
        assert!(s.sealed.len() < text.len() / 4);
        // Round trip through the reused context, many times on one thread.
        for i in 0..5 {
            let data = [&text[..1000 * (i + 1)], &random[..20_000]].concat();
            let id = c.chunk_id(&data);
            let s = c.seal(&id, &data).unwrap();
            let back = c
                .open(&id, &s.sealed, s.compressed, data.len() as u32)
                .unwrap();
            assert_eq!(&back[..], &data[..]);
        }
    }

    #[test]
    fn compressible_chunks_are_compressed_random_ones_are_not() {
        let c = codec();
        let text = b"2025-06-07T12:34:56Z,dev-1,temp=21.5\n".repeat(1000);
        let id = c.chunk_id(&text);
        let s = c.seal(&id, &text).unwrap();
        assert!(s.compressed);
        assert!(s.sealed.len() < text.len() / 4);
        let mut random = vec![0u8; 10_000];
        getrandom::fill(&mut random).unwrap();
        let id2 = c.chunk_id(&random);
        let s2 = c.seal(&id2, &random).unwrap();
        assert!(!s2.compressed);
        assert_eq!(c.open(&id2, &s2.sealed, false, 10_000).unwrap(), random);
    }

    #[test]
    fn wrong_id_or_tamper_is_corruption() {
        let c = codec();
        let data = b"some data".to_vec();
        let id = c.chunk_id(&data);
        let s = c.seal(&id, &data).unwrap();
        let other = c.chunk_id(b"other");
        assert!(matches!(
            c.open(&other, &s.sealed, s.compressed, 9),
            Err(EngineError::CorruptChunk { .. })
        ));
        let mut bad = s.sealed.clone();
        bad[14] ^= 1;
        assert!(matches!(
            c.open(&id, &bad, s.compressed, 9),
            Err(EngineError::CorruptChunk { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The whole pipeline: chunk → id → compress → encrypt → RS shards →
        /// lose any m shards and corrupt one more → detect by checksum →
        /// decode → decrypt → decompress → verify → identical bytes.
        #[test]
        fn pipeline_round_trip_survives_m_lost_shards(
            seed in any::<u64>(),
            len in 0usize..600_000,
            compressible in any::<bool>(),
            k in 1usize..6,
            m in 1usize..4,
            lost in proptest::collection::vec(any::<usize>(), 0..4),
        ) {
            let data: Vec<u8> = if compressible {
                (0..len).map(|i| b"abcdefgh"[(i + (seed as usize % 7)) % 8]).collect()
            } else {
                let mut x = seed | 1;
                (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect()
            };
            let c = codec();
            let coder = ErasureCoder::new(k, m).unwrap();
            let cfg = ChunkerConfig { min_size_bytes: 16 << 10, avg_size_bytes: 64 << 10, max_size_bytes: 256 << 10 };
            let mut chunker = StreamChunker::new(cfg).unwrap();
            chunker.push(Bytes::from(data.clone()));
            let mut chunks = Vec::new();
            while let Some(ch) = chunker.next_chunk() { chunks.push(ch); }
            while let Some(ch) = chunker.finish() { chunks.push(ch); }
            let mut out = Vec::with_capacity(len);
            for chunk in chunks {
                let id = c.chunk_id(&chunk);
                let sealed = c.seal(&id, &chunk).unwrap();
                let encoded = coder.encode(&sealed.sealed).unwrap();
                let n = k + m;
                let mut shards: Vec<Option<Bytes>> = (0..n).map(|i| Some(encoded.shard(i))).collect();
                // Lose up to m shards (the first m distinct picks).
                let mut dropped = 0;
                for l in &lost {
                    if dropped == m { break; }
                    let i = l % n;
                    if shards[i].is_some() { shards[i] = None; dropped += 1; }
                }
                // Corrupt one surviving shard only if we still have parity to spare;
                // the checksum must catch it so it is treated as missing.
                if dropped < m
                    && let Some(i) = (0..n).find(|i| shards[*i].is_some())
                {
                    let mut bad = shards[i].as_ref().unwrap().to_vec();
                    bad[0] ^= 0xFF;
                    prop_assert_ne!(shard_checksum(&bad), encoded.checksum(i));
                    shards[i] = None;
                }
                let sealed_back = coder.decode(shards, sealed.sealed.len()).unwrap();
                let plain = c.open(&id, &sealed_back, sealed.compressed, chunk.len() as u32).unwrap();
                out.extend_from_slice(&plain);
            }
            prop_assert_eq!(out, data);
        }
    }
}
