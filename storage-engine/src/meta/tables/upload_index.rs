//! `upload_index`: bucket id (u64 BE) ++ object key ++ 0x00 ++ upload id
//! (16) → empty: multipart uploads in bucket and key order, for listing.
//! Owns that layout only; entries are written with their upload
//! (`uploads.rs`), never on their own.

use crate::error::CodecError;
use crate::meta::Table;
use crate::meta_command::MetaCf;

use super::{Objects, UploadId};

/// The `upload_index` column family.
#[derive(Clone, Copy, Debug)]
pub struct UploadIndex;

impl Table for UploadIndex {
    const CF: MetaCf = MetaCf::UploadIndex;
    /// Bucket id, object key, upload id.
    type Key<'a> = (u64, &'a str, UploadId);
    type KeyBytes<'a> = Vec<u8>;
    type KeyOwned = (u64, String, UploadId);
    /// Entries carry nothing: the key is the index.
    type Value = ();

    fn key((bucket_id, key, upload): Self::Key<'_>) -> Self::KeyBytes<'_> {
        let mut k = Objects::key((bucket_id, key));
        k.push(0);
        k.extend_from_slice(&upload.0);
        k
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<(u64, String, UploadId)>, CodecError> {
        let Some((head, id)) = bytes.split_last_chunk::<16>() else {
            return Ok(None);
        };
        let Some((0, object)) = head.split_last() else {
            return Ok(None);
        };
        Ok(Objects::decode_key(object)?.map(|(bucket, key)| (bucket, key, UploadId(*id))))
    }

    fn decode(_: &[u8]) -> Result<(), CodecError> {
        Ok(())
    }

    fn encode(_: &()) -> Vec<u8> {
        Vec::new()
    }
}
