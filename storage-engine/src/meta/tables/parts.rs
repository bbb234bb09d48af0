//! `parts`: upload id (16) ++ part number (u32 BE) → [`PartRecord`], the
//! parts of multipart uploads in progress. Owns that layout and codec;
//! never reads or writes RocksDB other than through the store.

use crate::error::{CodecError, EngineResult};
use crate::meta::{KeyRange, MetaStore, Table, prefix_successor};
use crate::meta_command::{MetaCf, MetaGuard};
use crate::records::PartRecord;

use super::UploadId;

/// The `parts` column family.
#[derive(Clone, Copy, Debug)]
pub struct Parts;

impl Table for Parts {
    const CF: MetaCf = MetaCf::Parts;
    /// Upload id and part number.
    type Key<'a> = (UploadId, u32);
    type KeyBytes<'a> = [u8; 20];
    type KeyOwned = (UploadId, u32);
    type Value = PartRecord;

    fn key((upload, part_number): Self::Key<'_>) -> Self::KeyBytes<'_> {
        super::id_and_number(upload.0, part_number)
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<(UploadId, u32)>, CodecError> {
        Ok(super::split_id_and_number(bytes).map(|(id, n)| (UploadId(id), n)))
    }

    fn decode(bytes: &[u8]) -> Result<PartRecord, CodecError> {
        PartRecord::decode(bytes)
    }

    fn encode(v: &PartRecord) -> Vec<u8> {
        v.encode()
    }
}

impl MetaStore {
    /// Parts of an upload with part number > `after`, at most `limit`, in order.
    pub fn parts(
        &self,
        upload: UploadId,
        after: u32,
        limit: usize,
    ) -> EngineResult<Vec<(u32, PartRecord)>> {
        Ok(self
            .parts_guarded(upload, after, limit)?
            .into_iter()
            .map(|(n, rec, _)| (n, rec))
            .collect())
    }

    /// Parts of `upload` with part number > `after`, at most `limit`, in
    /// order, each with a guard that it is still exactly that record.
    pub fn parts_guarded(
        &self,
        upload: UploadId,
        after: u32,
        limit: usize,
    ) -> EngineResult<Vec<(u32, PartRecord, MetaGuard)>> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let start = Parts::key((upload, first));
        // An upload's parts sort together under its id. (An all-0xFF id has
        // no successor: the empty bound reads nothing, as it always has.)
        let end = prefix_successor(&upload.0).unwrap_or_default();
        Ok(self
            .page_guarded::<Parts>(KeyRange::from_to(&start, Some(end)), limit)?
            .into_iter()
            .map(|((_, n), rec, guard)| (n, rec, guard))
            .collect())
    }
}
