//! The engine's one error type. The S3 layer maps each variant to an S3 error
//! code in one place; internal detail (paths, RocksDB messages) is for logs.

use std::io;

use cairn_dedup::ChunkId;

/// A persisted record could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    #[error("{0} record is truncated")]
    Truncated(&'static str),
    #[error("{0} record has invalid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("{0} record has an invalid field")]
    Invalid(&'static str),
    #[error("{0} record has trailing bytes")]
    TrailingBytes(&'static str),
    #[error("{what} record has unknown format version {version}")]
    UnknownVersion { what: &'static str, version: u8 },
}

/// Which check of the read path a chunk failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkCheck {
    #[error("erasure decoding")]
    ErasureDecode,
    #[error("authentication")]
    Authentication,
    #[error("decompression")]
    Decompression,
    #[error("its length")]
    Length,
    #[error("its content id")]
    ContentId,
}

/// The leaf error behind a failed chunk check, kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum ChunkFault {
    #[error(transparent)]
    Erasure(#[from] cairn_erasure::ErasureError),
    #[error(transparent)]
    Crypto(#[from] cairn_crypto::CryptoError),
    #[error(transparent)]
    Decompress(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketAlreadyOwnedByYou,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    /// A version id that names no version of the key.
    #[error("no such version")]
    NoSuchVersion,
    /// The version asked for (or the current one, when none was named) is
    /// a delete marker: reading it is `NoSuchKey` when it is current and
    /// was not named, `MethodNotAllowed` when named by its id.
    #[error("the version is a delete marker")]
    DeleteMarker {
        /// The marker's version id as clients see it.
        version_id: String,
        last_modified_ms: u64,
        /// Whether the request named this version by id.
        named: bool,
    },
    /// Object Lock forbids this deletion or change (retention or legal
    /// hold): nothing changed.
    #[error("the version is protected by Object Lock")]
    ObjectLocked,
    /// The bucket's state does not allow the change (e.g. suspending
    /// versioning on a bucket with Object Lock).
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(&'static str),
    #[error("no such upload")]
    NoSuchUpload,
    #[error("part {part_number} was not uploaded or its ETag does not match")]
    InvalidPart { part_number: u32 },
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part {part_number} is smaller than the minimum part size")]
    EntityTooSmall { part_number: u32 },
    #[error("object would exceed the maximum object size")]
    EntityTooLarge,
    /// A conditional write's condition (named: `If-None-Match` or
    /// `If-Match`) did not hold when the write was about to commit.
    #[error("precondition {0} failed")]
    PreconditionFailed(&'static str),
    /// A copy's source is no longer the version its caller checked.
    #[error("the copy source changed")]
    SourceChanged,
    /// A metadata command's guard did not hold when it was applied (the
    /// state it was built on changed): nothing was written.
    #[error("metadata changed concurrently (guard {0} failed)")]
    GuardFailed(usize),
    #[error("no such access key")]
    NoSuchAccessKey,
    /// An access key change that cannot be made (the reason says why).
    #[error("access key refused: {0}")]
    InvalidAccessKey(String),
    /// No key-service key has this id or alias (as the request named it).
    #[error("no such KMS key: {0}")]
    NoSuchKmsKey(String),
    /// A key-service change that cannot be made (the reason says why).
    #[error("KMS key refused: {0}")]
    InvalidKmsKey(String),

    /// The cluster could not commit a metadata change in time (no quorum,
    /// or no leader). Its fate may be unknown: it can still commit later.
    #[error("metadata quorum unavailable: {0}")]
    Unavailable(String),
    /// A drive or the metadata store is out of space.
    #[error("storage is full: {0}")]
    StorageFull(String),
    /// Not enough healthy shards to read a chunk, or to write one.
    #[error("chunk {chunk} is unavailable: {reason}")]
    ChunkUnavailable { chunk: ChunkId, reason: String },
    /// Data failed an integrity check and could not be repaired.
    #[error("corruption: {0}")]
    Corrupt(String),
    /// A chunk's bytes failed a check of the read path after the shards
    /// were decoded: nothing unverified is returned.
    #[error("chunk {chunk} failed {check}")]
    CorruptChunk {
        chunk: ChunkId,
        check: ChunkCheck,
        #[source]
        source: Option<ChunkFault>,
    },
    /// A chunk record names an erasure layout the coder cannot build.
    #[error("chunk record has an unusable {data_shards}+{parity_shards} coding: {source}")]
    UnusableCoding {
        data_shards: u8,
        parity_shards: u8,
        #[source]
        source: cairn_erasure::ErasureError,
    },
    #[error("erasure coding: {0}")]
    Erasure(#[source] cairn_erasure::ErasureError),
    #[error("encryption: {0}")]
    Crypto(#[source] cairn_crypto::CryptoError),
    #[error("zstd compression: {0}")]
    Compression(#[source] io::Error),
    #[error("metric {name}: {source}")]
    Metric {
        name: String,
        #[source]
        source: prometheus::Error,
    },
    #[error("worker task failed: {0}")]
    TaskFailed(#[from] tokio::task::JoinError),
    #[error("I/O error {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("metadata store: {0}")]
    Metadata(#[from] rocksdb::Error),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::StorageFull || source.raw_os_error() == Some(28) {
            return EngineError::StorageFull(format!("{}: {source}", context.into()));
        }
        EngineError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn join(e: tokio::task::JoinError) -> Self {
        EngineError::TaskFailed(e)
    }

    pub(crate) fn metric(name: impl Into<String>) -> impl FnOnce(prometheus::Error) -> Self {
        let name = name.into();
        move |source| EngineError::Metric { name, source }
    }

    /// Data failed an integrity check (a record, a chunk): what the cluster
    /// and the logs call corruption, as opposed to I/O or a bug.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            EngineError::Corrupt(_)
                | EngineError::CorruptChunk { .. }
                | EngineError::UnusableCoding { .. }
        )
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
