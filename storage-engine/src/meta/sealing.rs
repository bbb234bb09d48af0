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
//! (sealed) bytes, never the plaintext — except the guard with which the
//! sealing pass (`metadata_seal.rs`) rewrites a record an older version
//! stored in plaintext: that record's bytes were never sealed. Object names (the row keys) stay
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

    /// The stored form of an event (`notifications.rs`): sealed under the
    /// store-wide key and bound to the target's key prefix, since the row's
    /// full key (its sequence) is only known when the batch is applied.
    pub fn seal_event(&self, prefix: &[u8], plain: &[u8]) -> EngineResult<Vec<u8>> {
        let mut out = Vec::with_capacity(
            1 + plain.len() + cairn_crypto::metadata::METADATA_SEAL_OVERHEAD_BYTES,
        );
        out.push(SEALED_MAGIC);
        self.sealer
            .seal_into(
                MetadataScope::Store,
                &label(MetaCf::Events, prefix),
                plain,
                &mut out,
            )
            .map_err(|e| EngineError::Internal(format!("sealing an event: {e}")))?;
        Ok(out)
    }

    /// The plaintext of an event sealed by [`RecordSealer::seal_event`].
    pub fn open_event(&self, prefix: &[u8], stored: &[u8]) -> EngineResult<Vec<u8>> {
        self.sealer
            .open(
                MetadataScope::Store,
                &label(MetaCf::Events, prefix),
                stored.get(1..).unwrap_or_default(),
            )
            .map_err(|_| EngineError::Corrupt("a sealed event does not open".into()))
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

/// The column families whose values are sealed, in the order a sealing
/// pass walks them.
pub const SEALED_CFS: [MetaCf; 5] = [
    MetaCf::Buckets,
    MetaCf::Objects,
    MetaCf::Versions,
    MetaCf::Uploads,
    MetaCf::Parts,
];

/// One page of a walk over a sealed column family's stored values.
#[derive(Debug, Default)]
pub struct PlaintextPage {
    /// Rows still stored in plaintext (written before sealing existed):
    /// raw key and stored value.
    pub rows: Vec<(Vec<u8>, Vec<u8>)>,
    /// Rows looked at, sealed ones included.
    pub scanned: usize,
    /// The last key looked at: the next page starts after it (`None`: the
    /// column family is walked).
    pub last: Option<Vec<u8>>,
}

impl super::MetaStore {
    /// Rewrites every file of `cf` (RocksDB flushes its memtable first):
    /// values overwritten since they were stored leave the files. The
    /// bottommost level is rewritten too — by default RocksDB may just
    /// move files there, keeping what they hold.
    pub fn compact_cf(&self, cf: MetaCf) -> EngineResult<()> {
        let handle = self.cf(cf.name())?;
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        self.db
            .compact_range_cf_opt(&handle, None::<&[u8]>, None::<&[u8]>, &opts);
        Ok(())
    }

    /// Whether this store seals values (opened with a data root key).
    pub fn seals(&self) -> bool {
        self.sealer.is_some()
    }

    /// The plaintext rows among the next `limit` rows of `cf` after `after`
    /// (exclusive; from the first for `None`). Empty values (absent rows of
    /// some tables) are not records and are skipped.
    pub fn plaintext_page(
        &self,
        cf: MetaCf,
        after: Option<&[u8]>,
        limit: usize,
    ) -> EngineResult<PlaintextPage> {
        debug_assert!(is_sealed_cf(cf));
        let mut page = PlaintextPage::default();
        self.walk(cf, super::KeyRange::after(after), |k, v| {
            page.scanned += 1;
            if !v.is_empty() && !is_sealed_value(v) {
                page.rows.push((k.to_vec(), v.to_vec()));
            }
            if page.scanned < limit {
                return Ok(true);
            }
            // A full page: the next one starts after this row. (Fewer
            // rows than `limit`: the walk reached the end.)
            page.last = Some(k.to_vec());
            Ok(false)
        })?;
        Ok(page)
    }
}

impl super::MetaBatch {
    /// Stores the plaintext value `stored` of row `key` of `cf` again,
    /// sealed, if the row still holds exactly `stored` when applied (the
    /// same record: nothing it says changes, the totals neither). Without
    /// a sealer the batch would store it in plaintext again: callers check
    /// [`super::MetaStore::seals`] first.
    pub fn seal_stored(&mut self, cf: MetaCf, key: &[u8], stored: &[u8]) {
        debug_assert!(is_sealed_cf(cf) && !is_sealed_value(stored));
        self.guard(crate::meta_command::MetaGuard::value_is(
            cf,
            key,
            Some(stored),
        ));
        self.push_put(cf, key.to_vec(), stored.to_vec());
    }
}
