//! Compares chunker configurations on ~64 MiB of pseudo-random data and an
//! edited copy of it (1 byte inserted at the front, 1 byte changed every
//! 8 MiB), to help choose `ChunkerConfig` defaults.
//!
//! Run: `cargo run --release -p cairn-dedup --example chunk_sizes`
//!
//! Pseudo-random data is the friendliest case for content-defined chunking
//! (no internal repetition, no long runs); real data will differ.

use std::collections::HashSet;
use std::time::Instant;

use bytes::Bytes;
use cairn_dedup::{ChunkId, ChunkIdKey, ChunkerConfig, DedupError, StreamChunker};

const MIB: usize = 1024 * 1024;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const DATA_LEN_BYTES: usize = 64 * MIB;
const EDIT_STRIDE_BYTES: usize = 8 * MIB;
/// Pieces of this size are pushed, like body frames of an upload.
const PIECE_LEN_BYTES: usize = 64 * 1024;
const CHUNK_RECORD_BYTES: f64 = 200.0;
const MANIFEST_ENTRY_BYTES: f64 = 40.0;

fn chunk_all(data: &[u8], config: ChunkerConfig) -> Result<Vec<Bytes>, DedupError> {
    let mut chunker = StreamChunker::new(config)?;
    let mut chunks = Vec::new();
    for piece in data.chunks(PIECE_LEN_BYTES) {
        chunker.push(Bytes::copy_from_slice(piece));
        while let Some(chunk) = chunker.next_chunk() {
            chunks.push(chunk);
        }
    }
    while let Some(chunk) = chunker.finish() {
        chunks.push(chunk);
    }
    Ok(chunks)
}

fn main() -> Result<(), DedupError> {
    let mut original = vec![0u8; DATA_LEN_BYTES];
    blake3::Hasher::new()
        .update(b"cairn chunk_sizes example")
        .finalize_xof()
        .fill(&mut original);

    let mut edited = Vec::with_capacity(original.len() + 1);
    edited.push(0x5A);
    edited.extend_from_slice(&original);
    for offset in (EDIT_STRIDE_BYTES / 2..edited.len()).step_by(EDIT_STRIDE_BYTES) {
        edited[offset] ^= 0xFF;
    }

    let key = ChunkIdKey::from_bytes([42u8; 32]);
    let kib = |bytes: u32| bytes / 1024;
    let configs = [
        (16, 64, 256),
        (32, 128, 512),
        (32, 256, 1024),
        (64, 256, 1024),
        (128, 256, 1024),
        (64, 256, 2048),
        (128, 512, 2048),
        (256, 1024, 4096),
        (512, 2048, 8192),
        (1024, 4096, 16384),
    ];

    println!(
        "data: {} MiB pseudo-random; edited copy: 1-byte insert at front + 1 byte changed every {} MiB",
        DATA_LEN_BYTES / MIB,
        EDIT_STRIDE_BYTES / MIB
    );
    println!(
        "{:>22} {:>8} {:>11} {:>11} {:>11} {:>14} {:>14} {:>9}",
        "min/avg/max KiB",
        "chunks",
        "mean KiB",
        "dedup %",
        "new MiB",
        "meta B/GiB",
        "meta/data %",
        "MiB/s"
    );
    for (min_kib, avg_kib, max_kib) in configs {
        let config = ChunkerConfig {
            min_size_bytes: min_kib * 1024,
            avg_size_bytes: avg_kib * 1024,
            max_size_bytes: max_kib * 1024,
        };
        let started = Instant::now();
        let original_chunks = chunk_all(&original, config)?;
        let elapsed_secs = started.elapsed().as_secs_f64();
        let original_ids: HashSet<ChunkId> = original_chunks
            .iter()
            .map(|chunk| key.chunk_id(chunk))
            .collect();

        let edited_chunks = chunk_all(&edited, config)?;
        let mut new_ids = HashSet::new();
        let mut deduped_bytes = 0usize;
        let mut new_bytes = 0usize;
        for chunk in &edited_chunks {
            let id = key.chunk_id(chunk);
            if original_ids.contains(&id) {
                deduped_bytes += chunk.len();
            } else if new_ids.insert(id) {
                new_bytes += chunk.len();
            }
        }

        let chunk_count = original_chunks.len();
        let mean_chunk_bytes = DATA_LEN_BYTES as f64 / chunk_count as f64;
        let chunks_per_gib = GIB / mean_chunk_bytes;
        let metadata_bytes_per_gib = chunks_per_gib * (CHUNK_RECORD_BYTES + MANIFEST_ENTRY_BYTES);
        println!(
            "{:>22} {:>8} {:>11.1} {:>11.2} {:>11.2} {:>14.0} {:>14.4} {:>9.0}",
            format!(
                "{}/{}/{}",
                kib(config.min_size_bytes),
                kib(config.avg_size_bytes),
                kib(config.max_size_bytes)
            ),
            chunk_count,
            mean_chunk_bytes / 1024.0,
            100.0 * deduped_bytes as f64 / edited.len() as f64,
            new_bytes as f64 / MIB as f64,
            metadata_bytes_per_gib,
            100.0 * metadata_bytes_per_gib / GIB,
            DATA_LEN_BYTES as f64 / MIB as f64 / elapsed_secs,
        );
    }
    println!(
        "dedup % = share of the edited copy's bytes in chunks already stored for the original; \
         new MiB = unique new chunk bytes to store; meta = chunks/GiB x ({CHUNK_RECORD_BYTES} B \
         chunk record + {MANIFEST_ENTRY_BYTES} B manifest entry); MiB/s = chunking only"
    );
    Ok(())
}
