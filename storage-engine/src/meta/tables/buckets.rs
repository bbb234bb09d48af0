//! `buckets`: bucket name (UTF-8) → [`BucketRecord`]. Owns that layout and
//! codec only; never reads or writes the store itself.

use crate::error::CodecError;
use crate::meta::Table;
use crate::meta_command::MetaCf;
use crate::records::BucketRecord;

/// The `buckets` column family.
#[derive(Clone, Copy, Debug)]
pub struct Buckets;

impl Table for Buckets {
    const CF: MetaCf = MetaCf::Buckets;
    type Key<'a> = &'a str;
    type KeyBytes<'a> = &'a [u8];
    type KeyOwned = String;
    type Value = BucketRecord;

    fn key(name: Self::Key<'_>) -> Self::KeyBytes<'_> {
        name.as_bytes()
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<String>, CodecError> {
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| CodecError::InvalidUtf8("bucket name"))
    }

    fn decode(bytes: &[u8]) -> Result<BucketRecord, CodecError> {
        BucketRecord::decode(bytes)
    }

    fn encode(v: &BucketRecord) -> Vec<u8> {
        v.encode()
    }
}
