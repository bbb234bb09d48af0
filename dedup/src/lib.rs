//! Content-defined chunking and chunk identity for Cairn.
//!
//! This crate owns two things:
//!
//! * [`StreamChunker`]: incremental FastCDC (`fastcdc::v2020`, normalization
//!   level 1, the crate default) over a stream of [`Bytes`] pieces that arrive
//!   in arbitrary sizes.
//! * [`ChunkId`] / [`ChunkIdKey`]: the keyed BLAKE3 hash that names a chunk by
//!   its plaintext content. The key is secret so that chunk ids do not reveal
//!   whether a given plaintext is stored.
//!
//! It knows nothing of S3, HTTP, RocksDB, files, compression or encryption.
//! It never performs I/O.
//!
//! Invariants:
//!
//! * For any input and any way of splitting it into pieces, the chunks
//!   produced by [`StreamChunker`] are exactly the chunks that
//!   `fastcdc::v2020::FastCDC::new(whole_input, min, avg, max)` produces, and
//!   their concatenation is the input. Chunk boundaries therefore depend only
//!   on content and [`ChunkerConfig`], never on how the bytes were delivered.
//! * Every chunk except the last of a stream is `>= min_size_bytes`, and every
//!   chunk is `<= max_size_bytes`.
//! * Changing [`ChunkerConfig`] or the [`ChunkIdKey`] changes chunk ids, which
//!   destroys dedup against everything already stored: both are part of the
//!   on-disk format once data has been written.

#![forbid(unsafe_code)]

use std::fmt;

use bytes::{Bytes, BytesMut};
use fastcdc::v2020;
use zeroize::Zeroize;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    /// The chunker sizes are outside what FastCDC v2020 accepts.
    #[error("invalid chunker config: {reason}")]
    InvalidConfig {
        /// Human-readable description of the violated constraint.
        reason: String,
    },
    /// A chunk id string was not exactly 64 hex characters.
    #[error("invalid chunk id hex: expected 64 hex characters")]
    InvalidChunkIdHex,
}

/// Normalization level used by every chunker. Level 1 is what
/// `fastcdc::v2020::FastCDC::new` uses; changing it changes every cut point.
const NORMALIZATION: v2020::Normalization = v2020::Normalization::Level1;

/// When the buffer must grow, reserve room for this many `max_size_bytes`
/// beyond the pushed piece. Each allocation is then at most about
/// `(1 + GROWTH_SLACK_MAX_SIZES) * max_size_bytes + piece` bytes and is shared
/// by the chunks cut from it until they are all dropped — so it is what an
/// upload holds per allocation, times the ~2 allocations its chunks in
/// flight span. 1 rather than 2: the aws CLI's 1 GiB upload (10 parts at
/// once) peaked at ~105 instead of ~118 MiB RSS, for ~1 % less PUT
/// throughput (the extra copying on growth).
const GROWTH_SLACK_MAX_SIZES: usize = 1;

/// Sizes for content-defined chunking.
///
/// Part of the on-disk format once data is written: different sizes give
/// different cut points and therefore no dedup against older data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkerConfig {
    /// No chunk except the last of a stream is smaller than this.
    pub min_size_bytes: u32,
    /// Target mean chunk size.
    pub avg_size_bytes: u32,
    /// No chunk is larger than this.
    pub max_size_bytes: u32,
}

impl Default for ChunkerConfig {
    /// 64 KiB / 256 KiB / 1 MiB.
    fn default() -> Self {
        Self {
            min_size_bytes: 64 * 1024,
            avg_size_bytes: 256 * 1024,
            max_size_bytes: 1024 * 1024,
        }
    }
}

impl ChunkerConfig {
    /// Checks the sizes against FastCDC v2020's limits (each size within the
    /// crate's `*_MIN..=*_MAX` bounds and even) and `min < avg < max`.
    pub fn validate(&self) -> Result<(), DedupError> {
        let sizes = [
            (
                "min_size_bytes",
                self.min_size_bytes,
                v2020::MINIMUM_MIN,
                v2020::MINIMUM_MAX,
            ),
            (
                "avg_size_bytes",
                self.avg_size_bytes,
                v2020::AVERAGE_MIN,
                v2020::AVERAGE_MAX,
            ),
            (
                "max_size_bytes",
                self.max_size_bytes,
                v2020::MAXIMUM_MIN,
                v2020::MAXIMUM_MAX,
            ),
        ];
        for (name, value, lower, upper) in sizes {
            let value_usize = value as usize;
            if !(lower..=upper).contains(&value_usize) {
                return Err(DedupError::InvalidConfig {
                    reason: format!("{name} = {value} is outside {lower}..={upper}"),
                });
            }
            // fastcdc scans two bytes per step; odd sizes shift cut points.
            if !value.is_multiple_of(2) {
                return Err(DedupError::InvalidConfig {
                    reason: format!("{name} = {value} must be even"),
                });
            }
        }
        if !(self.min_size_bytes < self.avg_size_bytes && self.avg_size_bytes < self.max_size_bytes)
        {
            return Err(DedupError::InvalidConfig {
                reason: format!(
                    "need min < avg < max, got {} / {} / {}",
                    self.min_size_bytes, self.avg_size_bytes, self.max_size_bytes
                ),
            });
        }
        Ok(())
    }
}

/// Incremental FastCDC over a stream of byte pieces.
///
/// Usage: after each [`push`](Self::push), call
/// [`next_chunk`](Self::next_chunk) until it returns `None`; when the stream
/// has ended, call [`finish`](Self::finish) until it returns `None`. Used this
/// way the internal buffer never holds more than `max_size_bytes` plus one
/// pushed piece. Returned chunks are zero-copy slices of the buffer's
/// allocation (see `GROWTH_SLACK_MAX_SIZES` for its size).
///
/// A cut is only made once at least `max_size_bytes` are buffered: FastCDC
/// never looks past `max_size_bytes` from the chunk start, so such a cut is
/// final and equals the cut whole-input chunking would make. This also means
/// each byte is scanned at most once per chunk it could end, not once per
/// push.
#[derive(Debug)]
pub struct StreamChunker {
    config: ChunkerConfig,
    mask_s: u64,
    mask_l: u64,
    buffer: BytesMut,
    finished: bool,
}

impl StreamChunker {
    /// Creates a chunker after validating `config`.
    pub fn new(config: ChunkerConfig) -> Result<Self, DedupError> {
        config.validate()?;
        let (mask_s, mask_l) = v2020::select_masks(config.avg_size_bytes as usize, NORMALIZATION);
        Ok(Self {
            config,
            mask_s,
            mask_l,
            buffer: BytesMut::new(),
            finished: false,
        })
    }

    /// The configuration this chunker cuts with.
    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// Number of bytes pushed but not yet returned as chunks.
    pub fn buffered_len_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Appends the next piece of the stream (copied once into the buffer).
    ///
    /// Must not be called after [`finish`](Self::finish) has been called.
    pub fn push(&mut self, piece: Bytes) {
        debug_assert!(!self.finished, "push after finish");
        let spare_bytes = self.buffer.capacity() - self.buffer.len();
        if spare_bytes < piece.len() {
            // Growing copies the buffered bytes (< max_size_bytes after
            // draining) into a new allocation, because returned chunks still
            // share the old one. Reserving slack bounds that extra copying to
            // about 1 / GROWTH_SLACK_MAX_SIZES of the input, instead of
            // reallocating on nearly every push after a cut.
            let slack_bytes = GROWTH_SLACK_MAX_SIZES * self.config.max_size_bytes as usize;
            self.buffer.reserve(piece.len() + slack_bytes);
        }
        self.buffer.extend_from_slice(&piece);
    }

    /// Returns the next chunk if its end is already final, i.e. when at
    /// least `max_size_bytes` are buffered. Returns `None` when more input
    /// is needed.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        if self.buffer.len() >= self.config.max_size_bytes as usize {
            Some(self.cut_front())
        } else {
            None
        }
    }

    /// Signals end of stream and returns the remaining chunks one by one;
    /// call repeatedly until `None`. Cuts are exactly those of whole-input
    /// chunking (the last chunk may be shorter than `min_size_bytes`).
    pub fn finish(&mut self) -> Option<Bytes> {
        self.finished = true;
        if self.buffer.is_empty() {
            None
        } else {
            Some(self.cut_front())
        }
    }

    /// Cuts one chunk off the front of a non-empty buffer. The caller
    /// guarantees that the cut is final: either `max_size_bytes` are
    /// buffered or the stream has ended.
    fn cut_front(&mut self) -> Bytes {
        debug_assert!(!self.buffer.is_empty());
        let min_size = self.config.min_size_bytes as usize;
        let max_size = self.config.max_size_bytes as usize;
        // `cut` itself only looks at the first `max_size` bytes.
        let (_gear_hash, cut_len) = v2020::cut(
            &self.buffer,
            min_size,
            self.config.avg_size_bytes as usize,
            max_size,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        debug_assert!(cut_len > 0 && cut_len <= max_size && cut_len <= self.buffer.len());
        debug_assert!(cut_len >= min_size || cut_len == self.buffer.len());
        self.buffer.split_to(cut_len).freeze()
    }
}

/// Length of a [`ChunkId`] and of a [`ChunkIdKey`].
pub const CHUNK_ID_LEN_BYTES: usize = 32;

/// Name of a chunk: keyed BLAKE3 of its plaintext under the [`ChunkIdKey`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId([u8; CHUNK_ID_LEN_BYTES]);

impl ChunkId {
    /// Wraps raw id bytes (e.g. read back from metadata).
    pub const fn from_bytes(bytes: [u8; CHUNK_ID_LEN_BYTES]) -> Self {
        Self(bytes)
    }

    /// The raw id bytes.
    pub const fn as_bytes(&self) -> &[u8; CHUNK_ID_LEN_BYTES] {
        &self.0
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(hex_str: &str) -> Result<Self, DedupError> {
        let mut bytes = [0u8; CHUNK_ID_LEN_BYTES];
        hex::decode_to_slice(hex_str, &mut bytes).map_err(|_| DedupError::InvalidChunkIdHex)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for ChunkId {
    /// Lowercase hex, 64 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChunkId {
    /// Short form: the first 8 bytes in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({}..)", hex::encode(&self.0[..8]))
    }
}

/// Secret key for [`ChunkId`]s. Zeroized on drop; `Debug` does not print it.
#[derive(Clone)]
pub struct ChunkIdKey([u8; CHUNK_ID_LEN_BYTES]);

impl ChunkIdKey {
    /// Wraps key bytes (normally derived from the master key by
    /// `cairn_crypto`).
    pub const fn from_bytes(bytes: [u8; CHUNK_ID_LEN_BYTES]) -> Self {
        Self(bytes)
    }

    /// Computes the id of a chunk from its plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.0, plaintext).as_bytes())
    }

    /// Whether `id` is the id of `plaintext` under this key.
    pub fn verify(&self, id: &ChunkId, plaintext: &[u8]) -> bool {
        // `blake3::Hash` equality is constant time.
        blake3::keyed_hash(&self.0, plaintext) == blake3::Hash::from_bytes(id.0)
    }
}

impl Drop for ChunkIdKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ChunkIdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkIdKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// Deterministic pseudo-random test data (BLAKE3 XOF of a seed).
    fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new()
            .update(&seed.to_le_bytes())
            .finalize_xof()
            .fill(&mut out);
        out
    }

    fn small_config() -> ChunkerConfig {
        ChunkerConfig {
            min_size_bytes: 64,
            avg_size_bytes: 256,
            max_size_bytes: 1024,
        }
    }

    /// Chunk lengths from whole-input chunking with the reference iterator.
    fn reference_lengths(data: &[u8], config: ChunkerConfig) -> Vec<usize> {
        v2020::FastCDC::new(
            data,
            config.min_size_bytes as usize,
            config.avg_size_bytes as usize,
            config.max_size_bytes as usize,
        )
        .map(|chunk| chunk.length)
        .collect()
    }

    /// Feeds `data` to a `StreamChunker` split at `split_points`, draining
    /// after every push as callers are told to.
    fn stream_chunks(data: &[u8], split_points: &[usize], config: ChunkerConfig) -> Vec<Bytes> {
        let mut chunker = StreamChunker::new(config).unwrap();
        let mut points: Vec<usize> = split_points.iter().map(|p| p % (data.len() + 1)).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        let mut chunks = Vec::new();
        let max_buffered = config.max_size_bytes as usize;
        for window in points.windows(2) {
            let piece = Bytes::copy_from_slice(&data[window[0]..window[1]]);
            let piece_len = piece.len();
            chunker.push(piece);
            assert!(chunker.buffered_len_bytes() <= max_buffered + piece_len);
            while let Some(chunk) = chunker.next_chunk() {
                chunks.push(chunk);
            }
            assert!(chunker.buffered_len_bytes() < max_buffered);
        }
        while let Some(chunk) = chunker.finish() {
            chunks.push(chunk);
        }
        assert_eq!(chunker.buffered_len_bytes(), 0);
        chunks
    }

    fn assert_matches_reference(data: &[u8], split_points: &[usize], config: ChunkerConfig) {
        let chunks = stream_chunks(data, split_points, config);
        let lengths: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(lengths, reference_lengths(data, config));
        assert_eq!(chunks.concat(), data);
        if let Some((_last, all_but_last)) = chunks.split_last() {
            for chunk in all_but_last {
                assert!(chunk.len() >= config.min_size_bytes as usize);
            }
        }
        for chunk in &chunks {
            assert!(chunk.len() <= config.max_size_bytes as usize);
        }
    }

    #[test]
    fn default_config_is_valid() {
        ChunkerConfig::default().validate().unwrap();
        small_config().validate().unwrap();
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let base = ChunkerConfig::default();
        let bad = [
            ChunkerConfig {
                min_size_bytes: base.avg_size_bytes,
                ..base
            },
            ChunkerConfig {
                max_size_bytes: base.avg_size_bytes,
                ..base
            },
            ChunkerConfig {
                min_size_bytes: 32,
                ..base
            },
            ChunkerConfig {
                min_size_bytes: 65_537,
                ..base
            },
            ChunkerConfig {
                max_size_bytes: 32 * 1024 * 1024,
                ..base
            },
            ChunkerConfig {
                avg_size_bytes: 8 * 1024 * 1024,
                max_size_bytes: 16 * 1024 * 1024,
                ..base
            },
        ];
        for config in bad {
            assert!(
                matches!(
                    StreamChunker::new(config),
                    Err(DedupError::InvalidConfig { .. })
                ),
                "{config:?} accepted"
            );
        }
    }

    #[test]
    fn empty_stream_yields_no_chunks() {
        let mut chunker = StreamChunker::new(small_config()).unwrap();
        chunker.push(Bytes::new());
        assert_eq!(chunker.next_chunk(), None);
        assert_eq!(chunker.finish(), None);
    }

    #[test]
    fn tiny_stream_is_one_chunk() {
        let chunks = stream_chunks(b"hello", &[], small_config());
        assert_eq!(chunks, vec![Bytes::from_static(b"hello")]);
    }

    #[test]
    fn all_zero_input_cuts_at_max() {
        let config = small_config();
        let data = vec![0u8; 10 * 1024 + 5];
        assert_matches_reference(&data, &[3000, 3001, 7777], config);
        let chunks = stream_chunks(&data, &[], config);
        assert!(
            chunks[..chunks.len() - 1]
                .iter()
                .all(|c| c.len() == config.max_size_bytes as usize)
        );
    }

    #[test]
    fn default_config_matches_reference_over_megabytes() {
        let data = pseudo_random_bytes(1, 6 * 1024 * 1024 + 12_345);
        // Pieces of assorted sizes: tiny, odd, larger than max.
        let mut split_points = Vec::new();
        let mut offset = 0usize;
        for step in [1usize, 7, 4096, 65_537, 3 * 1024 * 1024, 100, 1_500_000]
            .iter()
            .cycle()
        {
            offset += step;
            if offset >= data.len() {
                break;
            }
            split_points.push(offset);
        }
        assert_matches_reference(&data, &split_points, ChunkerConfig::default());
    }

    #[test]
    fn one_byte_insert_keeps_most_chunks() {
        let original = pseudo_random_bytes(2, 8 * 1024 * 1024);
        let mut edited = Vec::with_capacity(original.len() + 1);
        edited.push(0xA5);
        edited.extend_from_slice(&original);

        let key = ChunkIdKey::from_bytes([9u8; 32]);
        let config = ChunkerConfig::default();
        let original_ids: HashSet<ChunkId> = stream_chunks(&original, &[], config)
            .iter()
            .map(|chunk| key.chunk_id(chunk))
            .collect();
        let edited_chunks = stream_chunks(&edited, &[], config);
        let shared_bytes: usize = edited_chunks
            .iter()
            .filter(|chunk| original_ids.contains(&key.chunk_id(chunk)))
            .map(Bytes::len)
            .sum();
        let shared_fraction = shared_bytes as f64 / edited.len() as f64;
        assert!(shared_fraction >= 0.90, "shared only {shared_fraction:.3}");
    }

    #[test]
    fn chunk_id_hex_round_trip_and_formats() {
        let key = ChunkIdKey::from_bytes([1u8; 32]);
        let id = key.chunk_id(b"some chunk");
        let hex_str = id.to_string();
        assert_eq!(hex_str.len(), 64);
        assert_eq!(hex_str, hex_str.to_lowercase());
        assert_eq!(ChunkId::from_hex(&hex_str).unwrap(), id);
        assert_eq!(ChunkId::from_hex(&hex_str.to_uppercase()).unwrap(), id);
        assert_eq!(ChunkId::from_bytes(*id.as_bytes()), id);
        assert_eq!(format!("{id:?}"), format!("ChunkId({}..)", &hex_str[..16]));
        assert!(ChunkId::from_hex(&hex_str[..62]).is_err());
        assert!(ChunkId::from_hex(&format!("{}zz", &hex_str[..62])).is_err());
    }

    #[test]
    fn chunk_id_is_keyed_blake3() {
        let key_bytes = [3u8; 32];
        let key = ChunkIdKey::from_bytes(key_bytes);
        let id = key.chunk_id(b"abc");
        assert_eq!(
            id.as_bytes(),
            blake3::keyed_hash(&key_bytes, b"abc").as_bytes()
        );
        assert!(key.verify(&id, b"abc"));
        assert!(!key.verify(&id, b"abd"));
        let other_key = ChunkIdKey::from_bytes([4u8; 32]);
        assert_ne!(other_key.chunk_id(b"abc"), id);
        assert!(!other_key.verify(&id, b"abc"));
    }

    #[test]
    fn chunk_id_key_debug_is_redacted() {
        let key = ChunkIdKey::from_bytes([0xAB; 32]);
        let debug = format!("{key:?}");
        assert_eq!(debug, "ChunkIdKey(..)");
        assert!(!debug.contains("ab") && !debug.contains("171"));
    }

    proptest! {
        #[test]
        fn stream_equals_whole_input_chunking(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            split_points in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            assert_matches_reference(&data, &split_points, small_config());
        }

        #[test]
        fn stream_equals_whole_input_on_low_entropy_data(
            // Few distinct byte values: long runs that hit max_size cuts.
            data in proptest::collection::vec(0u8..3, 0..20_000),
            split_points in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            assert_matches_reference(&data, &split_points, small_config());
        }

        #[test]
        fn stream_equals_whole_input_with_arbitrary_config(
            data in proptest::collection::vec(any::<u8>(), 0..40_000),
            split_points in proptest::collection::vec(any::<usize>(), 0..20),
            min_half in 32u32..1000,
            avg_extra_half in 1u32..2000,
            max_extra_half in 1u32..4000,
        ) {
            let min_size_bytes = min_half * 2;
            let avg_size_bytes = (min_size_bytes + avg_extra_half * 2).max(256);
            let max_size_bytes = (avg_size_bytes + max_extra_half * 2).max(1024);
            let config = ChunkerConfig { min_size_bytes, avg_size_bytes, max_size_bytes };
            prop_assume!(config.validate().is_ok());
            assert_matches_reference(&data, &split_points, config);
        }
    }
}
