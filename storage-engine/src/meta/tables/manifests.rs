//! `manifests`: version id (16) ++ block index (u32 BE) → [`ManifestBlock`]
//! (the entries of a large object's manifest, in blocks). Owns that layout
//! and codec, and the read that treats a missing block as corruption.

use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta::{MetaStore, Table};
use crate::meta_command::MetaCf;
use crate::records::{ManifestBlock, VersionId};

/// The `manifests` column family.
#[derive(Clone, Copy, Debug)]
pub struct Manifests;

impl Table for Manifests {
    const CF: MetaCf = MetaCf::Manifests;
    type Key<'a> = (VersionId, u32);
    type KeyBytes<'a> = [u8; 20];
    type KeyOwned = (VersionId, u32);
    type Value = ManifestBlock;

    fn key((version, block): Self::Key<'_>) -> Self::KeyBytes<'_> {
        super::id_and_number(version.0, block)
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<(VersionId, u32)>, CodecError> {
        Ok(super::split_id_and_number(bytes).map(|(id, n)| (VersionId(id), n)))
    }

    fn decode(bytes: &[u8]) -> Result<ManifestBlock, CodecError> {
        ManifestBlock::decode(bytes)
    }

    fn encode(v: &ManifestBlock) -> Vec<u8> {
        v.encode()
    }
}

impl MetaStore {
    /// A block of a version's manifest; a missing one is corruption (a
    /// record names only blocks written in the same batch).
    pub fn manifest_block(&self, version: VersionId, block: u32) -> EngineResult<ManifestBlock> {
        self.get::<Manifests>((version, block))?.ok_or_else(|| {
            EngineError::Corrupt(format!("manifest block {block} of {version:?} is missing"))
        })
    }
}
