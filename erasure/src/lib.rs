//! Reed–Solomon erasure coding and shard bitrot checksums for Cairn.
//!
//! This crate owns:
//!
//! * [`ErasureCoder`]: splits a byte string (a sealed chunk) into `k` data
//!   shards plus `m` parity shards (`reed_solomon_erasure::galois_8`), and
//!   rebuilds the data from any `k` of the `k + m` shards.
//! * [`ShardChecksum`]: CRC-64/NVME of a shard, stored beside it to detect
//!   bitrot before a shard is fed to decoding.
//!
//! It knows nothing of S3, HTTP, RocksDB, drives or files, and never performs
//! I/O. Callers decide where shards live and which ones are bad.
//!
//! Invariants:
//!
//! * Shard layout: every shard is `shard_len_bytes(data_len) =
//!   max(1, ceil(data_len / k))` bytes. Data shard `i` holds bytes
//!   `[i * shard_len, (i + 1) * shard_len)` of the data, zero padded at the
//!   end; shards `k..k+m` are parity. The layout is part of the on-disk
//!   format.
//! * Data of length 0 is encoded as `k + m` one-byte zero shards and decodes
//!   to the empty string.
//! * `m = 0` is allowed: encoding only splits, decoding needs every data
//!   shard.
//! * Decoding never trusts shard contents beyond their length: verifying
//!   [`ShardChecksum`]s (and passing `None` for bad shards) is the caller's job.

#![forbid(unsafe_code)]

use std::fmt;

use bytes::{Bytes, BytesMut};
use reed_solomon_erasure::galois_8::ReedSolomon;

/// Largest `data_shards + parity_shards` accepted.
pub const MAX_TOTAL_SHARDS: usize = 255;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// `k` or `k + m` out of range.
    #[error(
        "invalid erasure layout {data_shards}+{parity_shards}: need 1 <= data shards and \
         data + parity <= {MAX_TOTAL_SHARDS}"
    )]
    InvalidLayout {
        /// Requested `k`.
        data_shards: usize,
        /// Requested `m`.
        parity_shards: usize,
    },
    /// The shard vector does not have `k + m` entries.
    #[error("expected {expected} shard slots, got {actual}")]
    ShardCount {
        /// `k + m`.
        expected: usize,
        /// Length of the vector passed in.
        actual: usize,
    },
    /// A present shard has the wrong length.
    #[error("shard {index} is {actual_len_bytes} bytes, expected {expected_len_bytes}")]
    ShardLength {
        /// Index of the offending shard.
        index: usize,
        /// The length all shards must have.
        expected_len_bytes: usize,
        /// Its actual length.
        actual_len_bytes: usize,
    },
    /// Fewer than `k` shards are present.
    #[error("too few shards to decode: {present} present, {needed} needed")]
    TooFewShards {
        /// Number of present shards.
        present: usize,
        /// `k`.
        needed: usize,
    },
    /// The Reed–Solomon library reported an error (not expected after our
    /// own validation).
    #[error("reed-solomon: {0}")]
    ReedSolomon(#[from] reed_solomon_erasure::Error),
}

/// CRC-64/NVME of one shard.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardChecksum(pub u64);

impl ShardChecksum {
    /// Whether `shard_bytes` still has this checksum.
    pub fn matches(&self, shard_bytes: &[u8]) -> bool {
        shard_checksum(shard_bytes) == *self
    }
}

impl fmt::Debug for ShardChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShardChecksum({:016x})", self.0)
    }
}

impl fmt::Display for ShardChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Computes the bitrot checksum of a shard (CRC-64/NVME).
pub fn shard_checksum(shard_bytes: &[u8]) -> ShardChecksum {
    ShardChecksum(crc_fast::checksum(
        crc_fast::CrcAlgorithm::Crc64Nvme,
        shard_bytes,
    ))
}

/// The `k + m` shards of one encoded byte string, in one contiguous buffer,
/// with their checksums.
#[derive(Clone)]
pub struct EncodedShards {
    shard_len_bytes: usize,
    data_len_bytes: usize,
    /// `total_shards * shard_len_bytes` bytes: shard `i` at `i * shard_len_bytes`.
    buf: Bytes,
    checksums: Vec<ShardChecksum>,
}

impl EncodedShards {
    /// Length of every shard.
    pub fn shard_len_bytes(&self) -> usize {
        self.shard_len_bytes
    }

    /// Length of the encoded data (needed again to decode).
    pub fn data_len_bytes(&self) -> usize {
        self.data_len_bytes
    }

    /// Number of shards (`k + m`).
    pub fn shard_count(&self) -> usize {
        self.checksums.len()
    }

    /// Shard `index` as a zero-copy slice of the shared buffer.
    ///
    /// # Panics
    /// If `index >= shard_count()` (a caller bug, not a data condition).
    pub fn shard(&self, index: usize) -> Bytes {
        let start = index * self.shard_len_bytes;
        self.buf.slice(start..start + self.shard_len_bytes)
    }

    /// Checksum of shard `index`, computed at encode time.
    ///
    /// # Panics
    /// If `index >= shard_count()` (a caller bug, not a data condition).
    pub fn checksum(&self, index: usize) -> ShardChecksum {
        self.checksums[index]
    }

    /// Checksums of all shards, in shard order.
    pub fn checksums(&self) -> &[ShardChecksum] {
        &self.checksums
    }
}

impl fmt::Debug for EncodedShards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedShards")
            .field("shard_count", &self.shard_count())
            .field("shard_len_bytes", &self.shard_len_bytes)
            .field("data_len_bytes", &self.data_len_bytes)
            .finish_non_exhaustive()
    }
}

/// A `k + m` Reed–Solomon coder over GF(2^8).
#[derive(Clone)]
pub struct ErasureCoder {
    data_shards: usize,
    parity_shards: usize,
    /// `None` iff `parity_shards == 0` (the library refuses `m = 0`).
    reed_solomon: Option<ReedSolomon>,
}

impl fmt::Debug for ErasureCoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErasureCoder")
            .field("data_shards", &self.data_shards)
            .field("parity_shards", &self.parity_shards)
            .finish()
    }
}

impl ErasureCoder {
    /// Creates a `data_shards + parity_shards` coder. Requires
    /// `1 <= data_shards` and `data_shards + parity_shards <= 255`.
    pub fn new(data_shards: usize, parity_shards: usize) -> Result<Self, ErasureError> {
        let total_shards = data_shards.checked_add(parity_shards);
        if data_shards == 0 || total_shards.is_none_or(|total| total > MAX_TOTAL_SHARDS) {
            return Err(ErasureError::InvalidLayout {
                data_shards,
                parity_shards,
            });
        }
        let reed_solomon = if parity_shards == 0 {
            None
        } else {
            Some(ReedSolomon::new(data_shards, parity_shards)?)
        };
        Ok(Self {
            data_shards,
            parity_shards,
            reed_solomon,
        })
    }

    /// `k`.
    pub fn data_shards(&self) -> usize {
        self.data_shards
    }

    /// `m`.
    pub fn parity_shards(&self) -> usize {
        self.parity_shards
    }

    /// `k + m`.
    pub fn total_shards(&self) -> usize {
        self.data_shards + self.parity_shards
    }

    /// Length of each shard for data of `data_len` bytes:
    /// `ceil(data_len / k)`, at least 1.
    pub fn shard_len_bytes(&self, data_len: usize) -> usize {
        data_len.div_ceil(self.data_shards).max(1)
    }

    /// Bytes of all `k + m` shards of data of `data_len` bytes: the
    /// capacity that lets [`encode_owned`](Self::encode_owned) work in place.
    pub fn encoded_len_bytes(&self, data_len: usize) -> usize {
        self.total_shards() * self.shard_len_bytes(data_len)
    }

    /// Splits `data` into `k` zero-padded data shards and computes `m` parity
    /// shards, all in one allocation, plus a checksum per shard.
    pub fn encode(&self, data: &[u8]) -> Result<EncodedShards, ErasureError> {
        let mut buf = Vec::with_capacity(self.encoded_len_bytes(data.len()));
        buf.extend_from_slice(data);
        self.encode_owned(buf)
    }

    /// [`encode`](Self::encode) in `data`'s own allocation: the data shards
    /// are `data` itself, padding and parity go behind it. With a capacity
    /// of [`encoded_len_bytes`](Self::encoded_len_bytes) nothing is copied.
    pub fn encode_owned(&self, data: Vec<u8>) -> Result<EncodedShards, ErasureError> {
        let data_len_bytes = data.len();
        let shard_len_bytes = self.shard_len_bytes(data_len_bytes);
        let mut buf = data;
        // Padding must be zeros (it is part of the data shards' checksums
        // and parity); parity is overwritten by the encoder.
        buf.resize(self.total_shards() * shard_len_bytes, 0);
        if let Some(reed_solomon) = &self.reed_solomon {
            let mut shard_slices: Vec<&mut [u8]> = buf.chunks_exact_mut(shard_len_bytes).collect();
            reed_solomon.encode(&mut shard_slices)?;
        }
        let checksums = buf
            .chunks_exact(shard_len_bytes)
            .map(shard_checksum)
            .collect();
        Ok(EncodedShards {
            shard_len_bytes,
            data_len_bytes,
            buf: Bytes::from(buf),
            checksums,
        })
    }

    /// Rebuilds the original `data_len_bytes` bytes from the shards.
    ///
    /// `shards` must have `k + m` entries in shard order; `None` marks a shard
    /// that is missing or known bad. If all data shards are present no
    /// Reed–Solomon work is done (and for `k = 1` the result is a zero-copy
    /// slice of shard 0). Otherwise any `k` present shards suffice.
    pub fn decode(
        &self,
        shards: Vec<Option<Bytes>>,
        data_len_bytes: usize,
    ) -> Result<Bytes, ErasureError> {
        let shard_len_bytes = self.shard_len_bytes(data_len_bytes);
        self.check_shards(&shards, Some(shard_len_bytes))?;
        let present = shards.iter().filter(|shard| shard.is_some()).count();
        if present < self.data_shards {
            return Err(ErasureError::TooFewShards {
                present,
                needed: self.data_shards,
            });
        }

        let data_shards = &shards[..self.data_shards];
        if data_shards.iter().all(Option::is_some) {
            return Ok(concat_data_shards(data_shards, data_len_bytes));
        }

        let Some(reed_solomon) = &self.reed_solomon else {
            // Unreachable: with m = 0, `present >= k` means all data shards
            // are present. Kept as an error rather than a panic.
            return Err(ErasureError::TooFewShards {
                present,
                needed: self.data_shards,
            });
        };

        // Work area: the k data shards (this becomes the output) and a copy of
        // just enough present parity shards to stand in for the missing data.
        let missing_data_count = data_shards.iter().filter(|shard| shard.is_none()).count();
        let mut data_buf = vec![0u8; self.data_shards * shard_len_bytes];
        let mut parity_buf = vec![0u8; missing_data_count * shard_len_bytes];
        let mut work: Vec<(&mut [u8], bool)> = Vec::with_capacity(self.total_shards());
        for (slot, shard) in data_buf.chunks_exact_mut(shard_len_bytes).zip(data_shards) {
            if let Some(shard) = shard {
                slot.copy_from_slice(shard);
            }
            work.push((slot, shard.is_some()));
        }
        let mut parity_slots = parity_buf.chunks_exact_mut(shard_len_bytes);
        for shard in &shards[self.data_shards..] {
            // A slot is taken only for a present shard, so every missing data
            // shard gets a stand-in as long as enough parity is present.
            let slot = match shard {
                Some(_) => parity_slots.next(),
                None => None,
            };
            match (shard, slot) {
                (Some(shard), Some(slot)) => {
                    slot.copy_from_slice(shard);
                    work.push((slot, true));
                }
                // Missing, or present but not needed: treated as absent.
                _ => work.push((&mut [], false)),
            }
        }
        debug_assert_eq!(work.len(), self.total_shards());
        debug_assert_eq!(
            work.iter().filter(|(_, present)| *present).count(),
            self.data_shards
        );
        reed_solomon.reconstruct_data(&mut work)?;
        drop(work);

        data_buf.truncate(data_len_bytes);
        Ok(Bytes::from(data_buf))
    }

    /// Fills in every missing shard (data and parity) in place, for healing.
    /// `shards` must have `k + m` entries of equal length; `None` = missing.
    pub fn reconstruct_all(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), ErasureError> {
        self.check_shards(shards, None)?;
        let present = shards.iter().filter(|shard| shard.is_some()).count();
        if present == self.total_shards() {
            return Ok(());
        }
        if present < self.data_shards {
            return Err(ErasureError::TooFewShards {
                present,
                needed: self.data_shards,
            });
        }
        match &self.reed_solomon {
            Some(reed_solomon) => Ok(reed_solomon.reconstruct(shards)?),
            // m = 0 and something is missing: present < k was caught above.
            None => Err(ErasureError::TooFewShards {
                present,
                needed: self.data_shards,
            }),
        }
    }

    /// Checks the slot count and that every present shard has the same
    /// length (`expected_len_bytes`, or the first present shard's length).
    fn check_shards<T: AsRef<[u8]>>(
        &self,
        shards: &[Option<T>],
        expected_len_bytes: Option<usize>,
    ) -> Result<(), ErasureError> {
        if shards.len() != self.total_shards() {
            return Err(ErasureError::ShardCount {
                expected: self.total_shards(),
                actual: shards.len(),
            });
        }
        let mut expected_len_bytes = expected_len_bytes;
        for (index, shard) in shards.iter().enumerate() {
            let Some(shard) = shard else { continue };
            let actual_len_bytes = shard.as_ref().len();
            let expected = *expected_len_bytes.get_or_insert(actual_len_bytes);
            if actual_len_bytes != expected {
                return Err(ErasureError::ShardLength {
                    index,
                    expected_len_bytes: expected,
                    actual_len_bytes,
                });
            }
        }
        Ok(())
    }
}

/// Concatenates present data shards and truncates to `data_len_bytes`.
/// The caller guarantees every entry is `Some` and of equal length.
fn concat_data_shards(data_shards: &[Option<Bytes>], data_len_bytes: usize) -> Bytes {
    if let [Some(only_shard)] = data_shards {
        return only_shard.slice(..data_len_bytes);
    }
    let mut out = BytesMut::with_capacity(data_len_bytes);
    for shard in data_shards.iter().flatten() {
        let take = (data_len_bytes - out.len()).min(shard.len());
        out.extend_from_slice(&shard[..take]);
        if out.len() == data_len_bytes {
            break;
        }
    }
    debug_assert_eq!(out.len(), data_len_bytes);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn to_slots(encoded: &EncodedShards) -> Vec<Option<Bytes>> {
        (0..encoded.shard_count())
            .map(|index| Some(encoded.shard(index)))
            .collect()
    }

    /// Encoding in the data's own allocation gives the same shards and
    /// checksums as encoding a copy, and does not reallocate when the
    /// capacity was reserved.
    #[test]
    fn encode_owned_matches_encode() {
        let coder = ErasureCoder::new(4, 2).unwrap();
        for len in [1usize, 3, 4, 1000, 65_537] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let copied = coder.encode(&data).unwrap();
            let mut owned_buf = Vec::with_capacity(coder.encoded_len_bytes(len));
            owned_buf.extend_from_slice(&data);
            let ptr = owned_buf.as_ptr();
            let owned = coder.encode_owned(owned_buf).unwrap();
            assert_eq!(owned.data_len_bytes(), len);
            assert_eq!(owned.shard(0).as_ptr(), ptr, "encoded in place");
            for i in 0..coder.total_shards() {
                assert_eq!(owned.shard(i), copied.shard(i), "shard {i} of {len}");
                assert_eq!(owned.checksum(i), copied.checksum(i));
            }
        }
    }

    #[test]
    fn layout_validation() {
        assert!(ErasureCoder::new(0, 2).is_err());
        assert!(ErasureCoder::new(200, 56).is_err());
        assert!(ErasureCoder::new(usize::MAX, 1).is_err());
        let coder = ErasureCoder::new(200, 55).unwrap();
        assert_eq!(coder.total_shards(), 255);
        let coder = ErasureCoder::new(4, 0).unwrap();
        assert_eq!(
            (
                coder.data_shards(),
                coder.parity_shards(),
                coder.total_shards()
            ),
            (4, 0, 4)
        );
    }

    #[test]
    fn shard_len_rounds_up_with_minimum_one() {
        let coder = ErasureCoder::new(4, 2).unwrap();
        assert_eq!(coder.shard_len_bytes(0), 1);
        assert_eq!(coder.shard_len_bytes(1), 1);
        assert_eq!(coder.shard_len_bytes(4), 1);
        assert_eq!(coder.shard_len_bytes(5), 2);
        assert_eq!(coder.shard_len_bytes(4096), 1024);
    }

    #[test]
    fn empty_data_round_trips() {
        let coder = ErasureCoder::new(4, 2).unwrap();
        let encoded = coder.encode(b"").unwrap();
        assert_eq!(encoded.shard_len_bytes(), 1);
        assert_eq!(encoded.data_len_bytes(), 0);
        assert_eq!(encoded.shard_count(), 6);
        assert!(coder.decode(to_slots(&encoded), 0).unwrap().is_empty());
        let mut slots = to_slots(&encoded);
        slots[0] = None;
        slots[5] = None;
        assert!(coder.decode(slots, 0).unwrap().is_empty());
    }

    #[test]
    fn data_shards_hold_the_data_in_order() {
        let coder = ErasureCoder::new(3, 2).unwrap();
        let encoded = coder.encode(b"abcdefgh").unwrap();
        assert_eq!(encoded.shard(0), Bytes::from_static(b"abc"));
        assert_eq!(encoded.shard(1), Bytes::from_static(b"def"));
        assert_eq!(encoded.shard(2), Bytes::from_static(b"gh\0"));
    }

    #[test]
    fn single_data_shard_decodes_zero_copy() {
        let coder = ErasureCoder::new(1, 2).unwrap();
        let encoded = coder.encode(b"hello").unwrap();
        let shard0 = encoded.shard(0);
        let decoded = coder
            .decode(vec![Some(shard0.clone()), None, None], 5)
            .unwrap();
        assert_eq!(decoded, Bytes::from_static(b"hello"));
        assert_eq!(decoded.as_ptr(), shard0.as_ptr());
    }

    #[test]
    fn no_parity_splits_and_needs_every_shard() {
        let coder = ErasureCoder::new(3, 0).unwrap();
        let data = b"0123456789";
        let encoded = coder.encode(data).unwrap();
        assert_eq!(encoded.shard_count(), 3);
        assert_eq!(
            coder.decode(to_slots(&encoded), data.len()).unwrap(),
            &data[..]
        );
        let mut slots = to_slots(&encoded);
        slots[1] = None;
        assert!(matches!(
            coder.decode(slots, data.len()),
            Err(ErasureError::TooFewShards {
                present: 2,
                needed: 3
            })
        ));
        let mut owned: Vec<Option<Vec<u8>>> = to_slots(&encoded)
            .into_iter()
            .map(|s| s.map(|b| b.to_vec()))
            .collect();
        coder.reconstruct_all(&mut owned).unwrap();
        owned[0] = None;
        assert!(coder.reconstruct_all(&mut owned).is_err());
    }

    #[test]
    fn wrong_slot_count_and_shard_length_are_rejected() {
        let coder = ErasureCoder::new(2, 1).unwrap();
        let encoded = coder.encode(b"abcd").unwrap();
        let mut slots = to_slots(&encoded);
        slots.pop();
        assert!(matches!(
            coder.decode(slots, 4),
            Err(ErasureError::ShardCount {
                expected: 3,
                actual: 2
            })
        ));
        let mut slots = to_slots(&encoded);
        slots[1] = Some(Bytes::from_static(b"xyz"));
        assert!(matches!(
            coder.decode(slots, 4),
            Err(ErasureError::ShardLength {
                index: 1,
                expected_len_bytes: 2,
                actual_len_bytes: 3
            })
        ));
        // Shards fine, but the claimed data length implies another shard size.
        assert!(matches!(
            coder.decode(to_slots(&encoded), 5),
            Err(ErasureError::ShardLength { index: 0, .. })
        ));
        let mut owned = vec![Some(vec![1u8, 2]), Some(vec![3u8]), None];
        assert!(matches!(
            coder.reconstruct_all(&mut owned),
            Err(ErasureError::ShardLength { index: 1, .. })
        ));
    }

    #[test]
    fn checksum_is_crc64_nvme() {
        // Standard check value of CRC-64/NVME for "123456789".
        assert_eq!(
            shard_checksum(b"123456789"),
            ShardChecksum(0xae8b_1486_0a79_9888)
        );
        assert_eq!(
            format!("{:?}", ShardChecksum(0xae8b_1486_0a79_9888)),
            "ShardChecksum(ae8b14860a799888)"
        );
    }

    #[test]
    fn checksums_detect_every_flipped_bit() {
        let coder = ErasureCoder::new(2, 1).unwrap();
        let encoded = coder.encode(b"bitrot detection test").unwrap();
        for index in 0..encoded.shard_count() {
            let shard = encoded.shard(index);
            assert!(encoded.checksum(index).matches(&shard));
            assert_eq!(encoded.checksums()[index], shard_checksum(&shard));
            for bit in 0..shard.len() * 8 {
                let mut flipped = shard.to_vec();
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert!(!encoded.checksum(index).matches(&flipped));
            }
        }
    }

    /// Indices to drop: a pseudo-random subset of size `drop_count`.
    fn drop_indices(total: usize, drop_count: usize, seed: u64) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..total).collect();
        // Deterministic shuffle driven by `seed` (test-only).
        let mut state = seed | 1;
        for i in (1..indices.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = (state % (i as u64 + 1)) as usize;
            indices.swap(i, j);
        }
        indices.truncate(drop_count);
        indices
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip_with_up_to_m_missing(
            data in prop_oneof![
                Just(Vec::new()),
                proptest::collection::vec(any::<u8>(), 1..=1),
                proptest::collection::vec(any::<u8>(), 0..300 * 1024),
            ],
            data_shards in 1usize..=8,
            parity_shards in 0usize..=4,
            drop_fraction in 0.0f64..=1.0,
            seed in any::<u64>(),
        ) {
            let coder = ErasureCoder::new(data_shards, parity_shards).unwrap();
            let encoded = coder.encode(&data).unwrap();
            prop_assert_eq!(encoded.shard_count(), data_shards + parity_shards);
            prop_assert_eq!(encoded.shard_len_bytes(), coder.shard_len_bytes(data.len()));
            let total = coder.total_shards();

            // Drop up to m shards: decode succeeds.
            let drop_count = (drop_fraction * parity_shards as f64).round() as usize;
            let dropped = drop_indices(total, drop_count, seed);
            let mut slots = to_slots(&encoded);
            for &index in &dropped {
                slots[index] = None;
            }
            let decoded = coder.decode(slots, data.len()).unwrap();
            prop_assert_eq!(&decoded[..], &data[..]);

            // reconstruct_all restores exactly the dropped shards.
            let mut owned: Vec<Option<Vec<u8>>> = (0..total)
                .map(|index| Some(encoded.shard(index).to_vec()))
                .collect();
            for &index in &dropped {
                owned[index] = None;
            }
            coder.reconstruct_all(&mut owned).unwrap();
            for (index, shard) in owned.iter().enumerate() {
                let expected = encoded.shard(index);
                prop_assert_eq!(shard.as_deref(), Some(&expected[..]));
            }

            // Drop m + 1 shards: decode reports TooFewShards.
            let dropped = drop_indices(total, parity_shards + 1, seed);
            let mut slots = to_slots(&encoded);
            for &index in &dropped {
                slots[index] = None;
            }
            let result = coder.decode(slots, data.len());
            prop_assert!(
                matches!(
                    result,
                    Err(ErasureError::TooFewShards { present, needed })
                        if present == data_shards - 1 && needed == data_shards
                ),
                "unexpected {:?}",
                result
            );
            let mut owned: Vec<Option<Vec<u8>>> = (0..total)
                .map(|index| Some(encoded.shard(index).to_vec()))
                .collect();
            for &index in &dropped {
                owned[index] = None;
            }
            let is_too_few = matches!(
                coder.reconstruct_all(&mut owned),
                Err(ErasureError::TooFewShards { .. })
            );
            prop_assert!(is_too_few);
        }
    }
}
