//! The stored totals as the store reads, counts and (re)sets them. What the
//! totals mean, their keys and how a command's differences are derived are
//! `crate::totals`; this file only reads and recounts the records. It must
//! never write the totals except as a whole (opening a store written before
//! they existed, or tests).

use crate::error::EngineResult;
use crate::meta::{CF_CHUNKS, CF_INLINE_DATA, CF_SYSTEM, Db, MetaStore};
use crate::meta_command::{MetaCf, MetaCommand, MetaOp};
use crate::records::TotalsRecord;
use crate::totals::{BUCKET_TOTALS_PREFIX, TOTALS_KEY, TotalsSnapshot};

use super::prefix_successor;

impl MetaStore {
    /// How many chunk records there are: the count the stored totals keep
    /// in the same commits as the records (exact, unlike RocksDB's
    /// `estimate-num-keys`), for the progress of jobs that walk every
    /// chunk. 0 if it cannot be read.
    pub fn chunk_count(&self) -> u64 {
        match self.get_cf(CF_SYSTEM, TOTALS_KEY.as_bytes()) {
            Ok(Some(v)) => TotalsRecord::decode(&v)
                .ok()
                .and_then(|t| u64::try_from(t.chunks).ok())
                .unwrap_or(0),
            Ok(None) | Err(_) => 0,
        }
    }

    /// The totals as kept (`totals.rs`): everything and per bucket id.
    pub(crate) fn totals(&self) -> EngineResult<TotalsSnapshot> {
        let global = self
            .get_cf(CF_SYSTEM, TOTALS_KEY.as_bytes())?
            .map(|v| TotalsRecord::decode(&v))
            .transpose()?
            .unwrap_or_default();
        let mut buckets = std::collections::BTreeMap::new();
        let mut it =
            self.range_iter(CF_SYSTEM, prefix_successor(BUCKET_TOTALS_PREFIX.as_bytes()))?;
        it.seek(BUCKET_TOTALS_PREFIX.as_bytes());
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if let Some(id) = crate::totals::bucket_id_of_totals_key(k) {
                buckets.insert(id, TotalsRecord::decode(v)?);
            }
            it.next();
        }
        it.status()?;
        Ok(TotalsSnapshot { global, buckets })
    }

    /// One bucket's totals (zero if it has none: empty).
    pub(crate) fn bucket_totals(&self, bucket_id: u64) -> EngineResult<TotalsRecord> {
        let key = crate::totals::bucket_totals_key(bucket_id);
        Ok(self
            .get_cf(CF_SYSTEM, key.as_bytes())?
            .map(|v| TotalsRecord::decode(&v))
            .transpose()?
            .unwrap_or_default())
    }

    /// If the totals are missing (metadata written before they existed, or
    /// installed from such a store), counts them from the records and
    /// stores them. Only while nothing else writes (opening, installing a
    /// snapshot).
    pub(crate) fn ensure_totals(&self) -> EngineResult<()> {
        if self.get_cf(CF_SYSTEM, TOTALS_KEY.as_bytes())?.is_some() {
            return Ok(());
        }
        let snapshot = self.db.snapshot();
        let counted = self.count_totals(&snapshot)?;
        drop(snapshot);
        tracing::info!(
            objects = counted.global.objects,
            logical_bytes = counted.global.logical_bytes,
            stored_bytes = counted.global.stored_bytes,
            "stored totals counted from the metadata records"
        );
        let mut command = MetaCommand::default();
        // Leftovers of an earlier count whose global record went.
        for id in self.totals()?.buckets.keys() {
            command.ops.push(MetaOp::Delete {
                cf: MetaCf::System,
                key: crate::totals::bucket_totals_key(*id).into_bytes(),
            });
        }
        for (id, t) in &counted.buckets {
            command.ops.push(MetaOp::Put {
                cf: MetaCf::System,
                key: crate::totals::bucket_totals_key(*id).into_bytes(),
                value: t.encode(),
            });
        }
        command.ops.push(MetaOp::Put {
            cf: MetaCf::System,
            key: TOTALS_KEY.as_bytes().to_vec(),
            value: counted.global.encode(),
        });
        // Sets the totals explicitly: nothing is derived from it.
        self.apply(&command, self.sync_write)
    }

    /// The totals kept and the totals counted from the records, both as of
    /// one snapshot of the metadata.
    pub(crate) fn kept_and_recounted_totals(
        &self,
    ) -> EngineResult<(TotalsSnapshot, TotalsSnapshot)> {
        let snapshot = self.db.snapshot();
        let counted = self.count_totals(&snapshot)?;
        let system = self.cf(CF_SYSTEM)?;
        let mut kept = TotalsSnapshot::default();
        for item in snapshot.iterator_cf(&system, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            if *k == *TOTALS_KEY.as_bytes() {
                kept.global = TotalsRecord::decode(&v)?;
            } else if let Some(id) = crate::totals::bucket_id_of_totals_key(&k) {
                kept.buckets.insert(id, TotalsRecord::decode(&v)?);
            }
        }
        Ok((kept, counted))
    }

    /// Counts the totals from the object, inline-data and chunk records.
    fn count_totals(
        &self,
        snapshot: &rocksdb::SnapshotWithThreadMode<'_, Db>,
    ) -> EngineResult<TotalsSnapshot> {
        let mut out = TotalsSnapshot::default();
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (cf, current) in [(MetaCf::Objects, true), (MetaCf::Versions, false)] {
            for item in snapshot.iterator_cf(&self.cf(cf.name())?, rocksdb::IteratorMode::Start) {
                let (k, v) = item?;
                let v = match self.plain(cf, &k, &v) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "object record not counted in the stored totals");
                        continue;
                    }
                };
                let Some(share) = crate::totals::object_share(&v) else {
                    continue;
                };
                let bucket = k
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|id| out.buckets.entry(u64::from_be_bytes(id)).or_default());
                crate::totals::count_version(&mut out.global, bucket, share, current, 1);
            }
        }
        for item in snapshot.iterator_cf(&self.cf(CF_INLINE_DATA)?, rocksdb::IteratorMode::Start) {
            let (_, v) = item?;
            let n = to_i64(v.len() as u64);
            out.global.stored_bytes += n;
            out.global.raw_bytes += n;
            out.global.inline_bytes += n;
        }
        for item in snapshot.iterator_cf(&self.cf(CF_CHUNKS)?, rocksdb::IteratorMode::Start) {
            let (_, v) = item?;
            let Some((sealed, raw)) = crate::totals::chunk_share(&v) else {
                continue;
            };
            out.global.chunks += 1;
            out.global.stored_bytes += to_i64(sealed);
            out.global.raw_bytes += to_i64(raw);
        }
        Ok(out)
    }

    /// Tests only: removes the totals, as in a store written before they
    /// existed.
    #[cfg(test)]
    pub(crate) fn forget_totals(&self) -> EngineResult<()> {
        let mut command = MetaCommand::default();
        for id in self.totals()?.buckets.keys() {
            command.ops.push(MetaOp::Delete {
                cf: MetaCf::System,
                key: crate::totals::bucket_totals_key(*id).into_bytes(),
            });
        }
        command.ops.push(MetaOp::Delete {
            cf: MetaCf::System,
            key: TOTALS_KEY.as_bytes().to_vec(),
        });
        self.apply(&command, true)
    }
}
