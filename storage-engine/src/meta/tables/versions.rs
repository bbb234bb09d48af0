//! `versions`: bucket id (u64 BE) ++ object key (UTF-8) ++ 0x00 ++
//! (`u64::MAX` − seq, u64 BE) → [`ObjectVersion`], the noncurrent versions
//! of each key of a versioned bucket, newest first under their key.
//!
//! The current version of a key (a delete marker included) stays in
//! `objects`; this table holds only the ones it replaced. A key has rows
//! here only while it has a current version (deleting the current version
//! promotes the newest row here to `objects`). A small object's sealed
//! bytes stay in `inline_data` under the version id, as for `objects`.
//!
//! Owns that layout and codec and the reads of one key's history. Never
//! reads or writes RocksDB other than through the store.

use crate::error::{CodecError, EngineResult};
use crate::meta::{KeyRange, MetaBatch, MetaStore, Table};
use crate::meta_command::{MetaCf, MetaGuard};
use crate::records::ObjectVersion;

use super::{InlineData, Objects};

/// The `versions` column family.
#[derive(Clone, Copy, Debug)]
pub struct Versions;

/// Bytes after the object key: the separator and the inverted seq.
const SUFFIX_BYTES: usize = 9;

impl Versions {
    /// The first stored key of `key`'s history (its newest noncurrent
    /// version sorts first).
    pub fn key_prefix(bucket_id: u64, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(8 + key.len() + SUFFIX_BYTES);
        k.extend_from_slice(&bucket_id.to_be_bytes());
        k.extend_from_slice(key.as_bytes());
        k.push(0);
        k
    }
}

impl Table for Versions {
    const CF: MetaCf = MetaCf::Versions;
    /// Bucket id, object key and the version's seq.
    type Key<'a> = (u64, &'a str, u64);
    type KeyBytes<'a> = Vec<u8>;
    type KeyOwned = (u64, String, u64);
    type Value = ObjectVersion;

    fn key((bucket_id, key, seq): Self::Key<'_>) -> Self::KeyBytes<'_> {
        let mut k = Versions::key_prefix(bucket_id, key);
        k.extend_from_slice(&(u64::MAX - seq).to_be_bytes());
        k
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<(u64, String, u64)>, CodecError> {
        if bytes.len() < 8 + SUFFIX_BYTES {
            return Ok(None);
        }
        let (head, inverted) = bytes.split_at(bytes.len() - 8);
        let Some((id, key_and_sep)) = head.split_first_chunk::<8>() else {
            return Ok(None);
        };
        let Some((0, key)) = key_and_sep.split_last() else {
            return Ok(None);
        };
        let key = std::str::from_utf8(key).map_err(|_| CodecError::InvalidUtf8("object key"))?;
        let mut inv = [0u8; 8];
        inv.copy_from_slice(inverted);
        Ok(Some((
            u64::from_be_bytes(*id),
            key.to_owned(),
            u64::MAX - u64::from_be_bytes(inv),
        )))
    }

    fn decode(bytes: &[u8]) -> Result<ObjectVersion, CodecError> {
        ObjectVersion::decode(bytes)
    }

    /// The record as stored (a small object's bytes are in `inline_data`).
    fn encode(v: &ObjectVersion) -> Vec<u8> {
        v.encode_stored().0
    }

    /// The record, and a small object's sealed bytes in `inline_data` under
    /// its version id (the same row `objects` wrote: moving a version here
    /// rewrites it unchanged, and a record from before `inline_data` gets
    /// its row).
    fn put_into(batch: &mut MetaBatch, k: Self::Key<'_>, v: &ObjectVersion) {
        let (record, inline) = v.encode_stored();
        if let Some(sealed) = inline {
            batch.push_put(
                InlineData::CF,
                InlineData::key(v.version_id).into(),
                sealed.to_vec(),
            );
        }
        batch.push_put(Self::CF, Self::key(k), record);
    }
}

/// One noncurrent version as read, with a guard that its row is unchanged.
pub type GuardedVersion = (ObjectVersion, MetaGuard);

impl MetaStore {
    /// The noncurrent version of `key` with this `seq`, with a small
    /// object's inline bytes attached (see [`MetaStore::object_guarded`]),
    /// and a guard that its row is unchanged.
    pub fn version_guarded(
        &self,
        bucket_id: u64,
        key: &str,
        seq: u64,
    ) -> EngineResult<(Option<ObjectVersion>, MetaGuard)> {
        self.read_resolving_inline(Versions::CF, &Versions::key((bucket_id, key, seq)))
    }

    /// Noncurrent versions of `key`, newest first, starting after `after`
    /// (a seq: only older ones) or from the newest; at most `limit`. As
    /// stored: a small object's bytes are not attached.
    pub fn noncurrent_versions(
        &self,
        bucket_id: u64,
        key: &str,
        after: Option<u64>,
        limit: usize,
    ) -> EngineResult<Vec<GuardedVersion>> {
        let prefix = Versions::key_prefix(bucket_id, key);
        let end = crate::meta::prefix_successor(&prefix);
        let start = match after {
            Some(seq) => Versions::key((bucket_id, key, seq)),
            None => prefix.clone(),
        };
        let range = KeyRange {
            start: if after.is_some() {
                std::ops::Bound::Excluded(start.as_slice())
            } else {
                std::ops::Bound::Included(start.as_slice())
            },
            end,
        };
        let rows = self.page_guarded::<Versions>(range, limit)?;
        // A key containing U+0000 (never accepted by the S3 layer) could
        // share the prefix: only this key's rows count.
        Ok(rows
            .into_iter()
            .filter(|((b, k, _), _, _)| *b == bucket_id && k == key)
            .map(|(_, v, guard)| (v, guard))
            .collect())
    }

    /// The newest noncurrent version of `key`, if any, as stored.
    pub fn newest_noncurrent(
        &self,
        bucket_id: u64,
        key: &str,
    ) -> EngineResult<Option<GuardedVersion>> {
        Ok(self
            .noncurrent_versions(bucket_id, key, None, 1)?
            .into_iter()
            .next())
    }
}

impl MetaBatch {
    /// Makes `v` (a version read from `objects` or `versions`) a
    /// noncurrent version of `key`.
    pub(crate) fn put_noncurrent(&mut self, bucket_id: u64, key: &str, v: &ObjectVersion) {
        self.put::<Versions>((bucket_id, key, v.seq), v);
    }

    /// Makes `v` the current version of `key`.
    pub(crate) fn put_current(&mut self, bucket_id: u64, key: &str, v: &ObjectVersion) {
        self.put::<Objects>((bucket_id, key), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_newest_first_within_a_key() {
        let k = |key: &str, seq: u64| Versions::key((7, key, seq));
        assert_eq!(
            Versions::decode_key(&k("a/b", 5)).unwrap(),
            Some((7, "a/b".to_owned(), 5))
        );
        assert!(k("a", 9) < k("a", 8));
        // Every version of "a" sorts before any of "a/b" and "b".
        assert!(k("a", 0) < k("a/b", u64::MAX));
        assert!(k("a/b", 0) < k("b", u64::MAX));
        assert_eq!(Versions::decode_key(b"short").unwrap(), None);
    }
}
