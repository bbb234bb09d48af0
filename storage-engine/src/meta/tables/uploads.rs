//! `uploads`: upload id (16) → [`UploadRecord`], one per multipart upload
//! in progress. Owns that layout and codec, the upload id type, and the
//! rule that an upload is written with its `upload_index` entry. Never reads
//! or writes RocksDB other than through the store.

use crate::error::CodecError;
use crate::meta::{MetaBatch, Table};
use crate::meta_command::MetaCf;
use crate::records::UploadRecord;

use super::UploadIndex;

/// Upload ids are 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(pub [u8; 16]);

impl UploadId {
    pub fn random() -> Self {
        UploadId(crate::random_bytes())
    }
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(UploadId(out))
    }
}

impl std::fmt::Debug for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UploadId({})", self.to_hex())
    }
}

/// The `uploads` column family.
#[derive(Clone, Copy, Debug)]
pub struct Uploads;

impl Table for Uploads {
    const CF: MetaCf = MetaCf::Uploads;
    type Key<'a> = UploadId;
    type KeyBytes<'a> = [u8; 16];
    type KeyOwned = UploadId;
    type Value = UploadRecord;

    fn key(id: Self::Key<'_>) -> Self::KeyBytes<'_> {
        id.0
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<UploadId>, CodecError> {
        Ok(super::exact::<16>(bytes).map(UploadId))
    }

    fn decode(bytes: &[u8]) -> Result<UploadRecord, CodecError> {
        UploadRecord::decode(bytes)
    }

    fn encode(v: &UploadRecord) -> Vec<u8> {
        v.encode()
    }

    /// The record and its `upload_index` entry (listing uploads by key).
    fn put_into(batch: &mut MetaBatch, id: Self::Key<'_>, rec: &UploadRecord) {
        batch.push_put(Self::CF, Self::key(id).into(), Self::encode(rec));
        batch.push_put(
            UploadIndex::CF,
            UploadIndex::key((rec.bucket_id, &rec.key, id)),
            Vec::new(),
        );
    }
}

impl MetaBatch {
    /// Removes an upload's record and its `upload_index` entry (whose key
    /// needs the record: the bucket and object key).
    pub fn delete_upload_and_index(&mut self, id: UploadId, rec: &UploadRecord) {
        self.delete::<Uploads>(id);
        self.delete::<UploadIndex>((rec.bucket_id, &rec.key, id));
    }
}
