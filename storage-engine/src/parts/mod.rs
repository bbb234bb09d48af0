//! The engine's parts. Each owns its state — locks, status, caches — and
//! the rules that keep that state consistent; the engine (`engine.rs`) is a
//! façade that holds one of each next to the metadata store, the config and
//! the metrics, and the operations (`put`, `get`, `gc`, `repair`, …) use
//! them.
//!
//! | part      | owns |
//! |-----------|------|
//! | `drives`  | the shard stores, each drive's fault state and identity, the heal flags, placement |
//! | `chunks`  | the chunk codec, the erasure coders, the chunk lock stripes, the chunk permits |
//! | `objects` | the key and bucket locks, write conditions, the guarded replace of a key's current version, a version's manifest and references |
//! | `writers` | the writes in flight, which compaction must leave alone |
//! | `jobs`    | one-at-a-time locks and status of GC, scrub and rebalance; read-repairs in flight |
//! | `keys`    | the access-key lock and the secret sealer |
//!
//! A part must never import the engine or an operation module (nothing
//! above it): parts depend only on the metadata store, records, drives'
//! traits and each other's types.

pub(crate) mod chunks;
pub(crate) mod drives;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod objects;
pub(crate) mod writers;
