//! The chunks part: what turns a chunk's bytes into shards and back.
//!
//! Owns the chunk codec (keyed chunk ids, compression, per-chunk
//! encryption), the erasure coders by (k, m), the permits that bound how
//! many chunks are encoded or decoded at once, and the lock stripes that
//! serialise "the chunk record exists → pin it" (dedup) with "the record is
//! unreferenced → delete it" (garbage collection). It must never touch
//! metadata or drives itself: callers hold its locks around their reads
//! and writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cairn_crypto::DataRootKey;
use cairn_dedup::ChunkId;
use cairn_erasure::ErasureCoder;
use tokio::sync::Semaphore;

use crate::error::{EngineError, EngineResult};
use crate::pipeline::ChunkCodec;

const CHUNK_LOCK_STRIPES: usize = 256;

/// The chunks part (see the module doc).
pub(crate) struct Chunks {
    pub(crate) codec: ChunkCodec,
    /// The configured (k, m): new chunks are coded with it.
    data_shards: u8,
    parity_shards: u8,
    coders: Mutex<HashMap<(u8, u8), Arc<ErasureCoder>>>,
    chunk_locks: Vec<Mutex<()>>,
    /// Chunks being encoded or decoded at once across all requests.
    pub(crate) permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("data_shards", &self.data_shards)
            .field("parity_shards", &self.parity_shards)
            .finish_non_exhaustive()
    }
}

impl Chunks {
    /// `data_shards + parity_shards` must be at most 255 (checked by the
    /// engine's config validation).
    pub(crate) fn new(
        root: &DataRootKey,
        data_shards: usize,
        parity_shards: usize,
        workers_max: usize,
    ) -> EngineResult<Self> {
        let k = u8::try_from(data_shards)
            .map_err(|_| EngineError::Config("at most 255 shards per chunk".into()))?;
        let m = u8::try_from(parity_shards)
            .map_err(|_| EngineError::Config("at most 255 shards per chunk".into()))?;
        let coder = ErasureCoder::new(data_shards, parity_shards).map_err(EngineError::Erasure)?;
        let mut coders = HashMap::new();
        coders.insert((k, m), Arc::new(coder));
        Ok(Chunks {
            codec: ChunkCodec::new(root),
            data_shards: k,
            parity_shards: m,
            coders: Mutex::new(coders),
            chunk_locks: (0..CHUNK_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            permits: Arc::new(Semaphore::new(workers_max)),
        })
    }

    pub(crate) fn coder(&self, k: u8, m: u8) -> EngineResult<Arc<ErasureCoder>> {
        let mut coders = self.coders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = coders.get(&(k, m)) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            ErasureCoder::new(usize::from(k), usize::from(m)).map_err(|source| {
                EngineError::UnusableCoding {
                    data_shards: k,
                    parity_shards: m,
                    source,
                }
            })?,
        );
        coders.insert((k, m), c.clone());
        Ok(c)
    }

    /// The coder new chunks are written with.
    pub(crate) fn configured_coder(&self) -> EngineResult<Arc<ErasureCoder>> {
        self.coder(self.data_shards, self.parity_shards)
    }

    /// The lock stripe of one chunk id.
    pub(crate) fn lock(&self, id: &ChunkId) -> std::sync::MutexGuard<'_, ()> {
        let i = usize::from(id.as_bytes()[0]) % CHUNK_LOCK_STRIPES;
        self.chunk_locks[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}
