//! `objects`: bucket id (u64 BE) ++ object key (UTF-8) → [`ObjectVersion`],
//! the current version of each key. Owns that layout and codec, the write
//! that puts a small object's sealed bytes in `inline_data`, and the read
//! that joins them again ([`MetaStore::object`]). Never reads or writes
//! RocksDB other than through the store.

use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta::{MetaBatch, MetaStore, Table};
use crate::meta_command::{MetaCf, MetaGuard};
use crate::records::{ManifestRef, ObjectVersion, VersionId};

use super::InlineData;

/// Reads of a record whose inline bytes vanished under a concurrent
/// overwrite before [`MetaStore::object`] gives up.
const INLINE_READ_ATTEMPTS: usize = 8;

/// The `objects` column family.
///
/// Its value as [`Table::decode`] reads it is the stored record: a small
/// object's bytes are not attached (`ManifestRef::DataElsewhere`), which is
/// what listings want. [`MetaStore::object`] attaches them.
#[derive(Clone, Copy, Debug)]
pub struct Objects;

impl Table for Objects {
    const CF: MetaCf = MetaCf::Objects;
    /// Bucket id and object key.
    type Key<'a> = (u64, &'a str);
    type KeyBytes<'a> = Vec<u8>;
    type KeyOwned = (u64, String);
    type Value = ObjectVersion;

    fn key((bucket_id, key): Self::Key<'_>) -> Self::KeyBytes<'_> {
        let mut k = Vec::with_capacity(8 + key.len());
        k.extend_from_slice(&bucket_id.to_be_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<(u64, String)>, CodecError> {
        let Some((id, key)) = bytes.split_first_chunk::<8>() else {
            return Ok(None);
        };
        let key = std::str::from_utf8(key).map_err(|_| CodecError::InvalidUtf8("object key"))?;
        Ok(Some((u64::from_be_bytes(*id), key.to_owned())))
    }

    fn decode(bytes: &[u8]) -> Result<ObjectVersion, CodecError> {
        ObjectVersion::decode(bytes)
    }

    /// The record as stored: a small object's sealed bytes are not in it
    /// (see [`Objects::put_into`]).
    fn encode(v: &ObjectVersion) -> Vec<u8> {
        v.encode_stored().0
    }

    /// The record, and a small object's sealed bytes in `inline_data` under
    /// its version id (see [`ObjectVersion::encode_stored`]).
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

impl MetaStore {
    /// The current version of `key`, with a small object's inline bytes
    /// attached (`DataElsewhere` resolved to `Data`), so a reader holds one
    /// consistent version however the record changes afterwards.
    pub fn object(&self, bucket_id: u64, key: &str) -> EngineResult<Option<ObjectVersion>> {
        Ok(self.object_guarded(bucket_id, key)?.0)
    }

    /// [`MetaStore::object`], and a guard that the key's record is still the
    /// one read: a command built from this version carries it, so it
    /// applies only if no other writer (on any node) replaced it first.
    pub fn object_guarded(
        &self,
        bucket_id: u64,
        key: &str,
    ) -> EngineResult<(Option<ObjectVersion>, MetaGuard)> {
        self.read_resolving_inline(Objects::CF, &Objects::key((bucket_id, key)))
    }

    /// A version record of `cf` (`objects` or `versions`) under `rkey` with
    /// a small object's inline bytes attached, and a guard on the record.
    pub(crate) fn read_resolving_inline(
        &self,
        cf: MetaCf,
        rkey: &[u8],
    ) -> EngineResult<(Option<ObjectVersion>, MetaGuard)> {
        let guard = |raw: Option<&[u8]>| MetaGuard::value_is(cf, rkey, raw);
        let mut previous: Option<VersionId> = None;
        // The record and its inline bytes are two reads: a writer may replace
        // the version (deleting its bytes) in between. Bytes found under the
        // version id are that version's (ids are never reused); bytes gone
        // mean a newer record, so read again.
        for _ in 0..INLINE_READ_ATTEMPTS {
            let Some(raw) = self.get_raw(cf, rkey)? else {
                return Ok((None, guard(None)));
            };
            let mut v = ObjectVersion::decode(&self.plain(cf, rkey, &raw)?)?;
            let ManifestRef::DataElsewhere { chunk, compressed } = v.manifest else {
                return Ok((Some(v), guard(Some(&raw))));
            };
            if let Some(sealed) = self.get_raw(InlineData::CF, &InlineData::key(v.version_id))? {
                v.manifest = ManifestRef::Data {
                    chunk,
                    compressed,
                    sealed,
                };
                return Ok((Some(v), guard(Some(&raw))));
            }
            if previous == Some(v.version_id) {
                return Err(EngineError::Corrupt(format!(
                    "inline data of {:?} is missing",
                    v.version_id
                )));
            }
            previous = Some(v.version_id);
        }
        Err(EngineError::Internal(
            "a version record kept changing while being read".into(),
        ))
    }
}

#[cfg(test)]
impl MetaBatch {
    /// Writes a record in the form used before `inline_data` existed
    /// (inline bytes inside the record), to test that it still reads.
    pub fn put_object_with_bytes_in_record(
        &mut self,
        bucket_id: u64,
        key: &str,
        v: &ObjectVersion,
    ) -> EngineResult<()> {
        self.push_put(Objects::CF, Objects::key((bucket_id, key)), v.encode());
        Ok(())
    }
}
