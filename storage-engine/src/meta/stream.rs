//! Whole-store copies: [`MetaStore::export`] / [`MetaStore::replace_all`]
//! (one command in memory, for small stores and tests) and the metadata
//! stream a cluster snapshot is (`export_stream`, `verify_stream`,
//! `import_stream`: bounded memory, BLAKE3-checked).
//!
//! Owns the stream format (`CAIRNMDS`, format 1). It copies keys and values
//! as they are stored and must never decode, change or reorder them, nor
//! copy the node-local column family.

use rocksdb::{WriteBatch, WriteOptions};

use crate::error::{EngineError, EngineResult};
use crate::meta::MetaStore;
use crate::meta_command::{MetaCf, MetaCommand, MetaOp};

impl MetaStore {
    /// Everything in the replicated column families as one command of puts
    /// (merges resolved), in column family then key order: what a replica
    /// needs to start from this state. Holds it all in memory — for a
    /// snapshot of a small deployment or a test, not for the data path.
    pub fn export(&self) -> EngineResult<MetaCommand> {
        // One RocksDB snapshot: every column family as of the same moment.
        let snapshot = self.db.snapshot();
        let mut ops = Vec::new();
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            for item in snapshot.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, v) = item?;
                ops.push(MetaOp::Put {
                    cf,
                    key: k.to_vec(),
                    value: v.to_vec(),
                });
            }
        }
        Ok(MetaCommand {
            guards: Vec::new(),
            ops,
        })
    }

    /// Replaces everything in the replicated column families by `command`
    /// (an [`MetaStore::export`] of another store), atomically.
    pub fn replace_all(&self, command: &MetaCommand, sync: bool) -> EngineResult<()> {
        let mut all = MetaCommand::default();
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            for item in self.db.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, _) = item?;
                all.ops.push(MetaOp::Delete {
                    cf,
                    key: k.to_vec(),
                });
            }
        }
        all.ops.extend(command.ops.iter().cloned());
        self.apply(&all, sync)?;
        // A store exported before the totals existed carried none.
        self.ensure_totals()
    }
}

/// Start of a metadata stream ([`MetaStore::export_stream`]).
const STREAM_MAGIC: &[u8; 8] = b"CAIRNMDS";
const STREAM_FORMAT_V1: u8 = 1;
/// Writes and deletes per batch while a stream is imported.
const IMPORT_BATCH_BYTES: usize = 4 << 20;

/// A writer that hashes what passes through it.
struct HashingWriter<'a> {
    inner: &'a mut dyn std::io::Write,
    hasher: blake3::Hasher,
}

impl std::io::Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn stream_io(e: std::io::Error) -> EngineError {
    EngineError::io("metadata stream", e)
}

fn read_exact_or_corrupt(r: &mut dyn std::io::Read, buf: &mut [u8]) -> EngineResult<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            EngineError::Corrupt("metadata stream is truncated".into())
        } else {
            stream_io(e)
        }
    })
}

/// One key and value of a metadata stream, with its column family.
type StreamRecord = (MetaCf, Vec<u8>, Vec<u8>);

/// One record of a stream, or `None` at the end.
fn read_stream_record(r: &mut dyn std::io::Read) -> EngineResult<Option<StreamRecord>> {
    let mut cf = [0u8; 1];
    read_exact_or_corrupt(r, &mut cf)?;
    if cf[0] == 0 {
        return Ok(None);
    }
    let cf = MetaCf::from_u8(cf[0]).ok_or_else(|| {
        EngineError::Corrupt(format!("metadata stream names column family {}", cf[0]))
    })?;
    let read_bytes = |r: &mut dyn std::io::Read| -> EngineResult<Vec<u8>> {
        let mut len = [0u8; 4];
        read_exact_or_corrupt(r, &mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        // Bounded by what a record may hold (keys ≤ 1 KiB + prefix, values
        // ≤ an inline object or a manifest block).
        if len > 64 << 20 {
            return Err(EngineError::Corrupt(format!(
                "metadata stream record of {len} bytes"
            )));
        }
        let mut v = vec![0u8; len];
        read_exact_or_corrupt(r, &mut v)?;
        Ok(v)
    };
    let key = read_bytes(r)?;
    let value = read_bytes(r)?;
    Ok(Some((cf, key, value)))
}

impl MetaStore {
    /// Writes every key and value of the replicated column families, as of
    /// one RocksDB snapshot, to `out` as a stream (memory: one record at a
    /// time): `CAIRNMDS`, format u8 = 1, then per record cf u8 (`MetaCf`
    /// number), key and value as u32-LE-length bytes, in column family then
    /// key order; a 0 byte; the BLAKE3 of everything before it [32].
    /// Returns the values the `system` names in `wanted` had in that same
    /// snapshot (a Raft state machine's applied position).
    pub fn export_stream(
        &self,
        out: &mut dyn std::io::Write,
        wanted: &[&str],
    ) -> EngineResult<Vec<Option<Vec<u8>>>> {
        let snapshot = self.db.snapshot();
        let mut found = vec![None; wanted.len()];
        let mut w = HashingWriter {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        use std::io::Write as _;
        w.write_all(STREAM_MAGIC).map_err(stream_io)?;
        w.write_all(&[STREAM_FORMAT_V1]).map_err(stream_io)?;
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            for item in snapshot.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, v) = item?;
                if cf == MetaCf::System
                    && let Some(i) = wanted.iter().position(|n| n.as_bytes() == &*k)
                {
                    found[i] = Some(v.to_vec());
                }
                let (kl, vl) = (
                    u32::try_from(k.len())
                        .map_err(|_| EngineError::Internal("key too long".into()))?,
                    u32::try_from(v.len())
                        .map_err(|_| EngineError::Internal("value too long".into()))?,
                );
                w.write_all(&[cf as u8]).map_err(stream_io)?;
                w.write_all(&kl.to_le_bytes()).map_err(stream_io)?;
                w.write_all(&k).map_err(stream_io)?;
                w.write_all(&vl.to_le_bytes()).map_err(stream_io)?;
                w.write_all(&v).map_err(stream_io)?;
            }
        }
        w.write_all(&[0]).map_err(stream_io)?;
        let digest = w.hasher.finalize();
        w.inner.write_all(digest.as_bytes()).map_err(stream_io)?;
        w.inner.flush().map_err(stream_io)?;
        Ok(found)
    }

    /// Checks a stream written by [`MetaStore::export_stream`] end to end
    /// (format, every record, the BLAKE3 at the end) without changing
    /// anything. Call before [`MetaStore::import_stream`].
    pub fn verify_stream(r: &mut dyn std::io::Read) -> EngineResult<()> {
        let mut hasher = blake3::Hasher::new();
        let mut head = [0u8; 9];
        read_exact_or_corrupt(r, &mut head)?;
        if &head[..8] != STREAM_MAGIC || head[8] != STREAM_FORMAT_V1 {
            return Err(EngineError::Corrupt(
                "not a metadata stream (format 1)".into(),
            ));
        }
        hasher.update(&head);
        let mut tee = HashingReader { inner: r, hasher };
        while read_stream_record(&mut tee)?.is_some() {}
        let expected = tee.hasher.finalize();
        let mut digest = [0u8; 32];
        read_exact_or_corrupt(tee.inner, &mut digest)?;
        if expected.as_bytes() != &digest {
            return Err(EngineError::Corrupt(
                "metadata stream fails its BLAKE3 check".into(),
            ));
        }
        let mut extra = [0u8; 1];
        match tee.inner.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(EngineError::Corrupt(
                "metadata stream has bytes after its digest".into(),
            )),
            Err(e) => Err(stream_io(e)),
        }
    }

    /// Replaces everything in the replicated column families by the stream
    /// (already checked with [`MetaStore::verify_stream`]), then applies
    /// `last` (a state machine's position), syncing at the end. Not atomic:
    /// it runs in bounded batches, so the caller records that an import is
    /// under way (node-local) and redoes it after a crash before using the
    /// store.
    pub fn import_stream(&self, r: &mut dyn std::io::Read, last: &MetaCommand) -> EngineResult<()> {
        use std::sync::atomic::Ordering;
        self.import_generation.fetch_add(1, Ordering::SeqCst);
        let result = self
            .import_stream_inner(r, last)
            .and_then(|()| self.count_events());
        self.import_generation.fetch_add(1, Ordering::SeqCst);
        self.bump_bucket_config_epoch();
        result
    }

    /// See `import_generation`: odd while an import runs.
    pub fn import_generation(&self) -> u64 {
        self.import_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn import_stream_inner(
        &self,
        r: &mut dyn std::io::Read,
        last: &MetaCommand,
    ) -> EngineResult<()> {
        // Everything goes first, in bounded batches.
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            let mut batch = WriteBatch::default();
            for item in self.db.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, _) = item?;
                batch.delete_cf(&h, &k);
                if batch.size_in_bytes() >= IMPORT_BATCH_BYTES {
                    self.write_raw(std::mem::take(&mut batch), false)?;
                }
            }
            self.write_raw(batch, false)?;
        }
        let mut head = [0u8; 9];
        read_exact_or_corrupt(r, &mut head)?;
        if &head[..8] != STREAM_MAGIC || head[8] != STREAM_FORMAT_V1 {
            return Err(EngineError::Corrupt(
                "not a metadata stream (format 1)".into(),
            ));
        }
        let mut batch = WriteBatch::default();
        while let Some((cf, key, value)) = read_stream_record(r)? {
            batch.put_cf(&self.cf(cf.name())?, &key, &value);
            if batch.size_in_bytes() >= IMPORT_BATCH_BYTES {
                self.write_raw(std::mem::take(&mut batch), false)?;
            }
        }
        self.write_raw(batch, false)?;
        self.apply(last, true)?;
        // A snapshot from a node that predates the totals carries none.
        self.ensure_totals()
    }

    pub(super) fn write_raw(&self, batch: WriteBatch, sync: bool) -> EngineResult<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        Ok(self.db.write_opt(batch, &wo)?)
    }
}

/// A reader that hashes what passes through it.
struct HashingReader<'a> {
    inner: &'a mut dyn std::io::Read,
    hasher: blake3::Hasher,
}

impl std::io::Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
