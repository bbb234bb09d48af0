//! Metadata records sealed at rest: which column families' values are
//! encrypted, how a stored value says it is sealed, and the bytes of a
//! sealed value. Owns turning a row's plaintext value into its stored form
//! and back; the records' layouts stay in `records.rs`, which never sees a
//! sealed value.
//!
//! Sealed: `objects` and `versions` (user metadata, tags, checksums,
//! content headers, encryption envelopes), `uploads` (the same for an
//! upload in progress), `parts` (a part's MD5 and checksums: hashes of its
//! plaintext) and `buckets` (bucket tags, owner). A stored value of these
//! is either
//! - **sealed**: `0xE5 ‖ salt (16) ‖ AES-256-GCM ciphertext ‖ tag (16)`
//!   (`cairn_crypto::metadata`), under the key of the row's bucket
//!   (`objects`, `versions`: the key's first 8 bytes) or the store-wide key
//!   (`uploads`, `parts`, `buckets`), bound to the column family and the row key; or
//! - **plaintext**, as written before sealing existed (a record's first
//!   byte is its format version, 1 to 4, never 0xE5): still read, and
//!   sealed when next rewritten.
//!
//! Values are sealed when a batch is built (`MetaBatch::put`), so the
//! command replicated through a cluster's log already carries the sealed
//! bytes and every node stores the same bytes; guards hash the stored
//! (sealed) bytes, never the plaintext. Object names (the row keys) stay
//! in the clear: listings need their order.
//!
//! Never: seal a value of another column family, or hand a sealed value
//! to a record decoder.

use std::borrow::Cow;

use cairn_crypto::metadata::{MetadataScope, MetadataSealer};

use crate::error::{EngineError, EngineResult};
use crate::meta_command::MetaCf;

/// First byte of a sealed stored value.
pub const SEALED_MAGIC: u8 = 0xE5;

/// Whether values of `cf` are sealed at rest.
pub const fn is_sealed_cf(cf: MetaCf) -> bool {
    matches!(
        cf,
        MetaCf::Objects | MetaCf::Versions | MetaCf::Uploads | MetaCf::Buckets | MetaCf::Parts
    )
}

/// Whether a stored value of a sealed column family is in sealed form.
pub fn is_sealed_value(stored: &[u8]) -> bool {
    stored.first() == Some(&SEALED_MAGIC)
}

fn scope(cf: MetaCf, key: &[u8]) -> MetadataScope {
    match (cf, key.first_chunk::<8>()) {
        (MetaCf::Objects | MetaCf::Versions, Some(id)) => {
            MetadataScope::Bucket(u64::from_be_bytes(*id))
        }
        _ => MetadataScope::Store,
    }
}

fn label(cf: MetaCf, key: &[u8]) -> Vec<u8> {
    let mut l = Vec::with_capacity(1 + key.len());
    l.push(cf as u8);
    l.extend_from_slice(key);
    l
}

/// Seals and opens the stored values of the sealed column families.
#[derive(Clone, Debug)]
pub struct RecordSealer {
    sealer: MetadataSealer,
}

impl RecordSealer {
    pub fn new(sealer: MetadataSealer) -> Self {
        RecordSealer { sealer }
    }

    /// The stored form of `plain` under `key` of `cf` (`cf` must be sealed).
    pub fn seal(&self, cf: MetaCf, key: &[u8], plain: &[u8]) -> EngineResult<Vec<u8>> {
        debug_assert!(is_sealed_cf(cf));
        debug_assert!(!is_sealed_value(plain), "a record is never sealed twice");
        let mut out = Vec::with_capacity(
            1 + plain.len() + cairn_crypto::metadata::METADATA_SEAL_OVERHEAD_BYTES,
        );
        out.push(SEALED_MAGIC);
        self.sealer
            .seal_into(scope(cf, key), &label(cf, key), plain, &mut out)
            .map_err(|e| EngineError::Internal(format!("sealing a metadata record: {e}")))?;
        Ok(out)
    }

    /// The plaintext of a sealed stored value.
    fn open(&self, cf: MetaCf, key: &[u8], stored: &[u8]) -> EngineResult<Vec<u8>> {
        self.sealer
            .open(scope(cf, key), &label(cf, key), &stored[1..])
            .map_err(|_| {
                EngineError::Corrupt(format!(
                    "a sealed {} record does not open (damaged, moved, or another data root)",
                    cf.name()
                ))
            })
    }
}

/// The plaintext of a value stored under `key` of `cf`: itself unless it is
/// a sealed value of a sealed column family, which `sealer` opens.
pub fn plain<'a>(
    sealer: Option<&RecordSealer>,
    cf: MetaCf,
    key: &[u8],
    stored: &'a [u8],
) -> EngineResult<Cow<'a, [u8]>> {
    if !is_sealed_cf(cf) || !is_sealed_value(stored) {
        return Ok(Cow::Borrowed(stored));
    }
    match sealer {
        Some(s) => s.open(cf, key, stored).map(Cow::Owned),
        None => Err(EngineError::Internal(format!(
            "a sealed {} record, and this store has no metadata key",
            cf.name()
        ))),
    }
}
