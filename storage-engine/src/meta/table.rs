//! The shape every metadata table has: one column family, its key layout
//! and its value codec ([`Table`]), and the key ranges the store's bounded
//! reads take ([`KeyRange`]).
//!
//! A table type only turns keys and values into bytes and back: it must
//! never read or write RocksDB itself (the store does, in `meta/mod.rs`),
//! and its key layout and codec must never change meaning (they name data
//! on disk and in replicated commands).

use std::ops::Bound;

use crate::error::CodecError;
use crate::meta::MetaBatch;
use crate::meta_command::MetaCf;

/// One column family as typed rows: the key layout and the value codec.
///
/// The store's generic operations (`MetaStore::get`, `get_guarded`,
/// `page`, `keys`, `for_each`; `MetaBatch::put`, `delete`) go through it,
/// so a record kind's bytes are defined in exactly one place.
pub trait Table {
    /// The column family the rows live in.
    const CF: MetaCf;
    /// Whether an empty value reads as no row (`chunks`: what merges leave
    /// once a record was collected).
    const EMPTY_MEANS_ABSENT: bool = false;
    /// What names one row, as callers hold it.
    type Key<'a>;
    /// The stored key: borrowed, a fixed array or a vector, whichever
    /// needs no allocation the layout can avoid.
    type KeyBytes<'a>: AsRef<[u8]> + Into<Vec<u8>>;
    /// A key read back from the store (by `page` and `keys`).
    type KeyOwned;
    /// The decoded value.
    type Value;

    fn key(k: Self::Key<'_>) -> Self::KeyBytes<'_>;
    /// The key a stored key stands for; `Ok(None)` for a key of another
    /// shape (skipped by range reads).
    fn decode_key(bytes: &[u8]) -> Result<Option<Self::KeyOwned>, CodecError>;
    fn decode(bytes: &[u8]) -> Result<Self::Value, CodecError>;
    fn encode(v: &Self::Value) -> Vec<u8>;

    /// Adds the writes that store `v` under `k` to `batch`: one put, unless
    /// the table keeps part of a row elsewhere (`objects`: a small object's
    /// sealed bytes in `inline_data`; `uploads`: its `upload_index` entry).
    fn put_into(batch: &mut MetaBatch, k: Self::Key<'_>, v: &Self::Value) {
        batch.push_put(Self::CF, Self::key(k).into(), Self::encode(v));
    }
}

/// A table whose column family has a merge operator (the operand type and
/// its codec; the operator itself is registered when the store opens).
pub trait MergeTable: Table {
    type Operand;
    fn encode_operand(op: &Self::Operand) -> Vec<u8>;
}

/// Stored keys from `start` up to `end` (exclusive), for the store's
/// bounded range reads.
#[derive(Clone, Debug)]
pub struct KeyRange<'a> {
    pub start: Bound<&'a [u8]>,
    /// Exclusive upper bound; `None`: to the end of the column family.
    pub end: Option<Vec<u8>>,
}

impl<'a> KeyRange<'a> {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: None,
        }
    }

    /// Keys after `after` (exclusive), or every key for `None`.
    pub fn after(after: Option<&'a [u8]>) -> Self {
        KeyRange {
            start: after.map_or(Bound::Unbounded, Bound::Excluded),
            end: None,
        }
    }

    /// Keys from `start` (inclusive) up to `end` (exclusive, copied).
    pub fn between(start: &'a [u8], end: &[u8]) -> Self {
        Self::from_to(start, Some(end.to_vec()))
    }

    /// Keys from `start` (inclusive) up to `end` (exclusive).
    pub fn from_to(start: &'a [u8], end: Option<Vec<u8>>) -> Self {
        KeyRange {
            start: Bound::Included(start),
            end,
        }
    }
}
