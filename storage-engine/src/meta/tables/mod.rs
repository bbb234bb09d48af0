//! One [`crate::meta::Table`] per replicated column family, each in its own
//! file with that column family's key layout and value codec (and the few
//! reads that are real logic, such as the object read that attaches a small
//! object's inline bytes).
//!
//! The layouts here are the on-disk format (docs/ARCHITECTURE.md,
//! "Metadata records"): they must never change meaning, and no table may
//! read or write a column family other than through the store.

mod buckets;
mod chunks;
mod inline_data;
mod manifests;
mod objects;
mod parts;
mod system;
mod upload_index;
mod uploads;
mod versions;

pub use buckets::Buckets;
pub use chunks::Chunks;
pub(crate) use chunks::{chunk_full_merge, chunk_partial_merge};
pub use inline_data::InlineData;
pub use manifests::Manifests;
pub use objects::Objects;
pub use parts::Parts;
pub use system::System;
pub use upload_index::UploadIndex;
pub use uploads::{UploadId, Uploads};
pub use versions::Versions;

/// `N` bytes from the front of `bytes`, if it is exactly `N` long.
fn exact<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    <[u8; N]>::try_from(bytes).ok()
}

/// A 16-byte id ++ a u32 (big-endian) key, the layout of `manifests` and
/// `parts`.
fn id_and_number(id: [u8; 16], n: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id);
    k[16..].copy_from_slice(&n.to_be_bytes());
    k
}

/// The inverse of [`id_and_number`], if `bytes` has its length.
fn split_id_and_number(bytes: &[u8]) -> Option<([u8; 16], u32)> {
    let k = exact::<20>(bytes)?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&k[..16]);
    let mut n = [0u8; 4];
    n.copy_from_slice(&k[16..]);
    Some((id, u32::from_be_bytes(n)))
}

#[cfg(test)]
mod tests;
