//! Metadata changes as data: every `MetaBatch` is a [`MetaCommand`], a
//! list of puts, deletes and merges on numbered column families, applied to
//! RocksDB by exactly one function (`MetaStore::apply`).
//!
//! This module sits below the store (`meta/`): it owns the command format,
//! the column family numbers and names, and the guards, and must never
//! import the store nor read or write RocksDB itself.
//!
//! This is the seam the cluster (issue 8, docs/cluster-plan.md) replicates:
//! a command encodes to bytes that mean the same on every node. It names
//! column families by a fixed number, never by RocksDB's internal column
//! family ids (which depend on the order a database created them), and its
//! merges carry their operands, whose merge operator is pure.
//!
//! A command may carry guards: conditions on the current metadata that
//! must all hold when it is applied, or nothing is written
//! (`EngineError::GuardFailed`). They make a command built on one node's
//! reading safe to apply on a leader whose state moved on since.
//!
//! Encoding: version u8 — 1 without guards, 2 with — then for version 2 a
//! guard count u32 and per guard: kind u8 (1 absent, 2 present, 3 value
//! is, 4 no key with this prefix), column family u8, key or prefix (u32
//! length + bytes), and for "value is" the
//! BLAKE3 of the value [32]; then the op count u32 and per op: kind u8
//! (1 put, 2 delete, 3 merge, 4 append), column family u8, key (u32 length
//! and bytes; for append the key's prefix), and for put, merge and append
//! the value (u32 length + bytes). An append's key is its prefix followed
//! by a sequence number the store assigns when it applies the command
//! (`MetaStore::apply_indexed`): on a cluster from the log index, so every
//! node writes the same key. Integers
//! little-endian. Decoding rejects unknown versions, kinds and column
//! families, truncation and trailing bytes.

use crate::codec::{RecordReader, RecordWriter};
use crate::error::CodecError;

const FORMAT_V1: u8 = 1;
const FORMAT_V2_GUARDS: u8 = 2;

/// A replicated column family, by a number that never changes meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetaCf {
    Buckets = 1,
    Objects = 2,
    Manifests = 3,
    InlineData = 4,
    Chunks = 5,
    Uploads = 6,
    UploadIndex = 7,
    Parts = 8,
    System = 9,
    Versions = 10,
    /// Event notifications waiting for delivery (`notifications.rs`).
    Events = 11,
}

impl MetaCf {
    pub const ALL: [MetaCf; 11] = [
        MetaCf::Buckets,
        MetaCf::Objects,
        MetaCf::Manifests,
        MetaCf::InlineData,
        MetaCf::Chunks,
        MetaCf::Uploads,
        MetaCf::UploadIndex,
        MetaCf::Parts,
        MetaCf::System,
        MetaCf::Versions,
        MetaCf::Events,
    ];

    /// The RocksDB column family name (never changes: it names data on
    /// disk).
    pub const fn name(self) -> &'static str {
        match self {
            MetaCf::Buckets => "buckets",
            MetaCf::Objects => "objects",
            MetaCf::Manifests => "manifests",
            MetaCf::InlineData => "inline_data",
            MetaCf::Chunks => "chunks",
            MetaCf::Uploads => "uploads",
            MetaCf::UploadIndex => "upload_index",
            MetaCf::Parts => "parts",
            MetaCf::System => "system",
            MetaCf::Versions => "versions",
            MetaCf::Events => "events",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<MetaCf> {
        MetaCf::ALL.into_iter().find(|c| *c as u8 == v)
    }
}

/// One change to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaOp {
    Put {
        cf: MetaCf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: MetaCf,
        key: Vec<u8>,
    },
    /// A merge operand for the column family's merge operator (only
    /// `Chunks` has one: `ChunkRefDelta`).
    Merge {
        cf: MetaCf,
        key: Vec<u8>,
        operand: Vec<u8>,
    },
    /// A new row under `prefix` followed by a sequence number assigned when
    /// the command is applied, increasing in apply order (only `Events`).
    Append {
        cf: MetaCf,
        prefix: Vec<u8>,
        value: Vec<u8>,
    },
}

/// A condition on the metadata a command was built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaGuard {
    /// The key has no value, or an empty one.
    Absent { cf: MetaCf, key: Vec<u8> },
    /// The key has a non-empty value. (Empty counts as absent: it is what a
    /// chunk record's merges leave once the record is gone.)
    Present { cf: MetaCf, key: Vec<u8> },
    /// The key's value has this BLAKE3 hash.
    ValueIs {
        cf: MetaCf,
        key: Vec<u8>,
        blake3: [u8; 32],
    },
    /// No key of the column family starts with `prefix` (a bucket is
    /// empty). Checked by seeking, not by [`MetaGuard::holds`].
    NoneWithPrefix { cf: MetaCf, prefix: Vec<u8> },
}

impl MetaGuard {
    /// A guard that the key's value is still `value` (`None`: absent).
    pub fn value_is(cf: MetaCf, key: &[u8], value: Option<&[u8]>) -> Self {
        match value {
            Some(v) => MetaGuard::ValueIs {
                cf,
                key: key.to_vec(),
                blake3: *blake3::hash(v).as_bytes(),
            },
            None => MetaGuard::Absent {
                cf,
                key: key.to_vec(),
            },
        }
    }

    pub fn cf(&self) -> MetaCf {
        match self {
            MetaGuard::Absent { cf, .. }
            | MetaGuard::Present { cf, .. }
            | MetaGuard::ValueIs { cf, .. }
            | MetaGuard::NoneWithPrefix { cf, .. } => *cf,
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            MetaGuard::Absent { key, .. }
            | MetaGuard::Present { key, .. }
            | MetaGuard::ValueIs { key, .. }
            | MetaGuard::NoneWithPrefix { prefix: key, .. } => key,
        }
    }

    /// Whether it holds for the key's current value.
    pub fn holds(&self, current: Option<&[u8]>) -> bool {
        match (self, current) {
            (MetaGuard::Absent { .. }, v) => v.is_none_or(<[u8]>::is_empty),
            (MetaGuard::Present { .. }, v) => v.is_some_and(|v| !v.is_empty()),
            (MetaGuard::ValueIs { blake3: h, .. }, Some(v)) => blake3::hash(v).as_bytes() == h,
            (MetaGuard::ValueIs { .. }, None) => false,
            // Not a question about one key: `MetaStore::apply` seeks.
            (MetaGuard::NoneWithPrefix { .. }, _) => false,
        }
    }
}

/// Changes applied atomically, in order, if every guard holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaCommand {
    pub guards: Vec<MetaGuard>,
    pub ops: Vec<MetaOp>,
}

impl MetaCommand {
    pub fn encode(&self) -> Vec<u8> {
        if self.guards.is_empty() {
            let mut w = RecordWriter::with_version(FORMAT_V1);
            self.write_ops(&mut w);
            return w.finish();
        }
        let mut w = RecordWriter::with_version(FORMAT_V2_GUARDS);
        w.u32(self.guards.len() as u32);
        for g in &self.guards {
            let kind = match g {
                MetaGuard::Absent { .. } => 1,
                MetaGuard::Present { .. } => 2,
                MetaGuard::ValueIs { .. } => 3,
                MetaGuard::NoneWithPrefix { .. } => 4,
            };
            w.u8(kind).u8(g.cf() as u8).bytes(g.key());
            if let MetaGuard::ValueIs { blake3, .. } = g {
                w.fixed(blake3);
            }
        }
        self.write_ops(&mut w);
        w.finish()
    }

    fn write_ops(&self, w: &mut RecordWriter) {
        w.u32(self.ops.len() as u32);
        for op in &self.ops {
            match op {
                MetaOp::Put { cf, key, value } => {
                    w.u8(1).u8(*cf as u8).bytes(key).bytes(value);
                }
                MetaOp::Delete { cf, key } => {
                    w.u8(2).u8(*cf as u8).bytes(key);
                }
                MetaOp::Merge { cf, key, operand } => {
                    w.u8(3).u8(*cf as u8).bytes(key).bytes(operand);
                }
                MetaOp::Append { cf, prefix, value } => {
                    w.u8(4).u8(*cf as u8).bytes(prefix).bytes(value);
                }
            }
        }
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        const WHAT: &str = "metadata command";
        let mut r = RecordReader::new(buf, WHAT);
        let mut guards = Vec::new();
        match r.u8()? {
            FORMAT_V1 => {}
            FORMAT_V2_GUARDS => {
                // Each guard takes at least 6 bytes (kind, cf, key length).
                let n = r.count(6)?;
                guards.reserve(n);
                for _ in 0..n {
                    let kind = r.u8()?;
                    let cf = MetaCf::from_u8(r.u8()?).ok_or(CodecError::Invalid(WHAT))?;
                    let key = r.bytes()?.to_vec();
                    guards.push(match kind {
                        1 => MetaGuard::Absent { cf, key },
                        2 => MetaGuard::Present { cf, key },
                        3 => MetaGuard::ValueIs {
                            cf,
                            key,
                            blake3: r.fixed::<32>()?,
                        },
                        4 => MetaGuard::NoneWithPrefix { cf, prefix: key },
                        _ => return Err(CodecError::Invalid(WHAT)),
                    });
                }
            }
            _ => return Err(CodecError::Invalid(WHAT)),
        }
        // Each op takes at least 6 bytes (kind, cf, key length).
        let n = r.count(6)?;
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = r.u8()?;
            let cf = MetaCf::from_u8(r.u8()?).ok_or(CodecError::Invalid(WHAT))?;
            let key = r.bytes()?.to_vec();
            ops.push(match kind {
                1 => MetaOp::Put {
                    cf,
                    key,
                    value: r.bytes()?.to_vec(),
                },
                2 => MetaOp::Delete { cf, key },
                3 => MetaOp::Merge {
                    cf,
                    key,
                    operand: r.bytes()?.to_vec(),
                },
                4 => MetaOp::Append {
                    cf,
                    prefix: key,
                    value: r.bytes()?.to_vec(),
                },
                _ => return Err(CodecError::Invalid(WHAT)),
            });
        }
        r.finish()?;
        Ok(MetaCommand { guards, ops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = MetaOp> {
        let cf = (0..MetaCf::ALL.len()).prop_map(|i| MetaCf::ALL[i]);
        let bytes = proptest::collection::vec(any::<u8>(), 0..40);
        (0u8..4, cf, bytes.clone(), bytes).prop_map(|(kind, cf, key, value)| match kind {
            0 => MetaOp::Put { cf, key, value },
            1 => MetaOp::Delete { cf, key },
            2 => MetaOp::Append {
                cf,
                prefix: key,
                value,
            },
            _ => MetaOp::Merge {
                cf,
                key,
                operand: value,
            },
        })
    }

    fn guard() -> impl Strategy<Value = MetaGuard> {
        let cf = (0..MetaCf::ALL.len()).prop_map(|i| MetaCf::ALL[i]);
        let bytes = proptest::collection::vec(any::<u8>(), 0..40);
        (0u8..4, cf, bytes.clone(), bytes).prop_map(|(kind, cf, key, value)| match kind {
            0 => MetaGuard::Absent { cf, key },
            1 => MetaGuard::Present { cf, key },
            2 => MetaGuard::NoneWithPrefix { cf, prefix: key },
            _ => MetaGuard::value_is(cf, &key, Some(&value)),
        })
    }

    proptest! {
        #[test]
        fn round_trip(
            guards in proptest::collection::vec(guard(), 0..4),
            ops in proptest::collection::vec(op(), 0..20),
        ) {
            let c = MetaCommand { guards, ops };
            let bytes = c.encode();
            prop_assert_eq!(MetaCommand::decode(&bytes).unwrap(), c);
            // Every strict prefix is refused, never misread.
            for cut in 0..bytes.len() {
                prop_assert!(MetaCommand::decode(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn numbers_are_fixed() {
        // Written into replicated logs: a number never changes meaning.
        let numbers: Vec<u8> = MetaCf::ALL.iter().map(|c| *c as u8).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let mut bad = MetaCommand {
            guards: vec![],
            ops: vec![MetaOp::Delete {
                cf: MetaCf::System,
                key: b"k".to_vec(),
            }],
        }
        .encode();
        bad[6] = 0; // the column family byte
        assert!(MetaCommand::decode(&bad).is_err());
        let mut trailing = MetaCommand::default().encode();
        trailing.push(0);
        assert!(MetaCommand::decode(&trailing).is_err());
    }

    #[test]
    fn guards_hold_or_not() {
        let g = MetaGuard::value_is(MetaCf::Objects, b"k", Some(b"v1"));
        assert!(g.holds(Some(b"v1")));
        assert!(!g.holds(Some(b"v2")));
        assert!(!g.holds(None));
        let absent = MetaGuard::value_is(MetaCf::Objects, b"k", None);
        // Empty is what a collected chunk record's merges leave: absent.
        assert!(absent.holds(None) && absent.holds(Some(b"")) && !absent.holds(Some(b"x")));
        let present = MetaGuard::Present {
            cf: MetaCf::Chunks,
            key: b"c".to_vec(),
        };
        assert!(present.holds(Some(b"r")) && !present.holds(Some(b"")) && !present.holds(None));
    }
}
