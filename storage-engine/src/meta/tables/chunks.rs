//! `chunks`: chunk id (32) → [`ChunkRecord`], changed by merging
//! [`ChunkRefDelta`] operands. Owns that layout, the codec and the merge
//! operator the store registers for the column family. The operator must
//! stay pure (a replica applying the same operands must reach the same
//! record) and must never read anything but its operands.

use cairn_dedup::ChunkId;
use rocksdb::MergeOperands;

use crate::error::CodecError;
use crate::meta::{MergeTable, Table};
use crate::meta_command::MetaCf;
use crate::records::{ChunkRecord, ChunkRefDelta};

/// The `chunks` column family. An empty value reads as no record: it is
/// what merges leave for a chunk whose record is gone.
#[derive(Clone, Copy, Debug)]
pub struct Chunks;

impl Table for Chunks {
    const CF: MetaCf = MetaCf::Chunks;
    const EMPTY_MEANS_ABSENT: bool = true;
    type Key<'a> = &'a ChunkId;
    type KeyBytes<'a> = &'a [u8];
    type KeyOwned = ChunkId;
    type Value = ChunkRecord;

    fn key(id: Self::Key<'_>) -> Self::KeyBytes<'_> {
        id.as_bytes()
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<ChunkId>, CodecError> {
        Ok(super::exact::<32>(bytes).map(ChunkId::from_bytes))
    }

    fn decode(bytes: &[u8]) -> Result<ChunkRecord, CodecError> {
        ChunkRecord::decode(bytes)
    }

    fn encode(v: &ChunkRecord) -> Vec<u8> {
        v.encode()
    }
}

impl MergeTable for Chunks {
    type Operand = ChunkRefDelta;

    fn encode_operand(delta: &ChunkRefDelta) -> Vec<u8> {
        delta.encode()
    }
}

/// Full merge of chunk reference deltas onto a chunk record.
///
/// An empty value stands for "no record" (a delta without a record arrived
/// for a chunk that does not exist — a logic error we log, never hide).
pub(crate) fn chunk_full_merge(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut current = match existing {
        Some(v) if !v.is_empty() => Some(ChunkRecord::decode(v).ok()?),
        _ => None,
    };
    for op in operands {
        let delta = ChunkRefDelta::decode(op).ok()?;
        match (&mut current, delta.record) {
            (Some(rec), _) => {
                let next = i128::from(rec.refcount) + i128::from(delta.delta);
                debug_assert!(next >= 0, "chunk refcount went negative");
                if next < 0 {
                    tracing::error!(chunk = %hex::encode(key), "chunk refcount went negative; clamped to 0");
                }
                rec.refcount = u64::try_from(next.max(0)).unwrap_or(u64::MAX);
                if let Some(m) = delta.relocate
                    && let Some(slot) = rec.shards.get_mut(usize::from(m.index))
                    && *slot == m.from
                {
                    *slot = m.to;
                }
                stamp_zero(rec, delta.at_ms);
            }
            (None, Some(mut rec)) => {
                rec.refcount = u64::try_from(delta.delta.max(0)).unwrap_or(0);
                rec.zero_since_ms = 0;
                stamp_zero(&mut rec, delta.at_ms);
                current = Some(rec);
            }
            // A relocation or release racing with the record's collection:
            // nothing left to change.
            (None, None) if delta.delta <= 0 => {}
            (None, None) => {
                tracing::error!(chunk = %hex::encode(key), delta = delta.delta, "reference delta for a missing chunk record");
            }
        }
    }
    Some(current.map(|r| r.encode()).unwrap_or_default())
}

/// Keeps `zero_since_ms` in step with the refcount: set when it becomes zero,
/// cleared while referenced.
fn stamp_zero(rec: &mut ChunkRecord, at_ms: u64) {
    if rec.refcount > 0 {
        rec.zero_since_ms = 0;
    } else if rec.zero_since_ms == 0 {
        rec.zero_since_ms = at_ms.max(1);
    }
}

/// Partial merges are declined (RocksDB then keeps the operands): combining
/// deltas is only associative while no delta is dangling, and we prefer the
/// exact sequential semantics of [`chunk_full_merge`].
pub(crate) fn chunk_partial_merge(
    _: &[u8],
    _: Option<&[u8]>,
    _: &MergeOperands,
) -> Option<Vec<u8>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::MetaStore;
    use crate::records::ShardLocation;

    fn rec(refcount: u64, segment: u64) -> ChunkRecord {
        ChunkRecord {
            refcount,
            plain_len: 10,
            sealed_len: 40,
            compressed: false,
            data_shards: 1,
            parity_shards: 1,
            shard_len: 40,
            shards: vec![
                ShardLocation {
                    node: 0,
                    drive: 0,
                    segment,
                    offset: 0
                };
                2
            ],
            zero_since_ms: 0,
        }
    }

    fn delta(delta: i64, record: Option<ChunkRecord>) -> ChunkRefDelta {
        ChunkRefDelta {
            delta,
            at_ms: 1000,
            record,
            relocate: None,
        }
    }

    #[test]
    fn chunk_refs_merge_first_record_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let id = ChunkId::from_bytes([9; 32]);
        assert!(store.get::<Chunks>(&id).unwrap().is_none());

        // Two writers race to create the same chunk: the first merged wins.
        let mut b = store.batch();
        b.merge::<Chunks>(&id, &delta(1, Some(rec(0, 1))));
        store.write(b).unwrap();
        let mut b = store.batch();
        b.merge::<Chunks>(&id, &delta(2, Some(rec(0, 2))));
        store.write(b).unwrap();
        let got = store.get::<Chunks>(&id).unwrap().unwrap();
        assert_eq!(got.refcount, 3);
        assert_eq!(got.shards[0].segment, 1);

        let mut b = store.batch();
        b.merge::<Chunks>(&id, &delta(-3, None));
        store.write(b).unwrap();
        let got = store.get::<Chunks>(&id).unwrap().unwrap();
        assert_eq!(got.refcount, 0);
        assert_eq!(
            got.zero_since_ms, 1000,
            "grace period starts at the release"
        );

        // A relocation applies only while the record still points at `from`.
        let from = got.shards[1];
        let to = ShardLocation {
            segment: 99,
            offset: 64,
            ..from
        };
        for (from, expect) in [(to, from), (from, to)] {
            let mut b = store.batch();
            let mut d = delta(0, None);
            d.relocate = Some(crate::records::ShardMove { index: 1, from, to });
            b.merge::<Chunks>(&id, &d);
            store.write(b).unwrap();
            assert_eq!(store.get::<Chunks>(&id).unwrap().unwrap().shards[1], expect);
        }

        // A new reference clears the stamp.
        let mut b = store.batch();
        b.merge::<Chunks>(&id, &delta(1, None));
        store.write(b).unwrap();
        assert_eq!(store.get::<Chunks>(&id).unwrap().unwrap().zero_since_ms, 0);
    }

    #[test]
    fn merges_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let id = ChunkId::from_bytes([1; 32]);
        {
            let store = MetaStore::open(dir.path()).unwrap();
            for i in 0..50 {
                let mut b = store.batch();
                let record = (i == 0).then(|| rec(0, 7));
                b.merge::<Chunks>(&id, &delta(1, record));
                store.write(b).unwrap();
            }
            store.db.compact_range_cf(
                &store.cf(Chunks::CF.name()).unwrap(),
                None::<&[u8]>,
                None::<&[u8]>,
            );
        }
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.get::<Chunks>(&id).unwrap().unwrap().refcount, 50);
    }
}
