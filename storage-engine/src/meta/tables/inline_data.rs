//! `inline_data`: version id (16) → the sealed bytes of a small object
//! whose record says `ManifestRef::DataElsewhere`. Owns that layout only;
//! never reads or writes the store itself (the object read that joins a
//! record and its bytes is in `objects.rs`).

use crate::error::CodecError;
use crate::meta::Table;
use crate::meta_command::MetaCf;
use crate::records::VersionId;

/// The `inline_data` column family.
#[derive(Clone, Copy, Debug)]
pub struct InlineData;

impl Table for InlineData {
    const CF: MetaCf = MetaCf::InlineData;
    type Key<'a> = VersionId;
    type KeyBytes<'a> = [u8; 16];
    type KeyOwned = VersionId;
    /// The sealed bytes, as stored.
    type Value = Vec<u8>;

    fn key(version: Self::Key<'_>) -> Self::KeyBytes<'_> {
        version.0
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<VersionId>, CodecError> {
        Ok(super::exact::<16>(bytes).map(VersionId))
    }

    fn decode(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }

    fn encode(v: &Vec<u8>) -> Vec<u8> {
        v.clone()
    }
}
