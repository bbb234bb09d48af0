//! Request bodies: decoding (`aws-chunked`), limits, and every digest the
//! client asked us to check — SHA-256 of signed payloads, `Content-MD5`,
//! `x-amz-checksum-*` in a header or trailer — plus the MD5 that becomes the
//! ETag.
//!
//! The stream only reports its end (`Ok(None)`) after all of those checks
//! passed, so a handler that stops at the first error never commits an
//! object the client did not mean to send.
//!
//! Digests of large bodies run beside the pipeline, never inside it: MD5
//! (~0.75 GB/s per core, the slowest step of a PUT) on the shared lane pool
//! of `md5_lanes` (four bodies per SIMD pass), SHA-256 and checksums on a
//! blocking thread fed through a bounded channel.

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::{
    AwsChunkedDecoder, ChecksumAlgorithm, ChecksumHasher, ChunkSigner, ChunkedError, PayloadHash,
};
use crate::md5_lanes::{Md5Lanes, Md5Stream};

/// Bodies at least this large (or of unknown length) hash on a side thread.
const SIDE_DIGEST_MIN_BYTES: u64 = 256 << 10;
/// Frames queued to the digest thread per request.
const DIGEST_QUEUE_FRAMES: usize = 16;
/// Side digests get frames of at most this size (slices, not copies): hyper
/// reads up to 256 KiB at once (`HTTP_READ_BUFFER_BYTES`), and the queues'
/// bounds above and in `md5_lanes` count frames and batches, so pieces this
/// size keep what a request holds queued near 1 MiB per digest.
const DIGEST_PIECE_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body ended before its declared length")]
    Incomplete,
    #[error("reading the body failed: {0}")]
    Transport(String),
    #[error(transparent)]
    Chunked(#[from] ChunkedError),
    #[error("the body exceeds the maximum size")]
    TooLarge,
    #[error("declared {declared} bytes, received {received}")]
    LengthMismatch { declared: u64, received: u64 },
    #[error("x-amz-content-sha256 mismatch")]
    Sha256Mismatch { claimed: String, computed: String },
    #[error("Content-MD5 mismatch")]
    Md5Mismatch,
    #[error("{algorithm} checksum mismatch")]
    ChecksumMismatch { algorithm: &'static str },
    #[error("declared trailer {name} missing")]
    MissingTrailer { name: &'static str },
    #[error("invalid {name} value")]
    InvalidChecksumValue { name: &'static str },
    #[error("internal: {0}")]
    Internal(String),
}

/// Where the expected value of an `x-amz-checksum-*` comes from.
#[derive(Clone, Debug)]
pub enum ChecksumExpectation {
    /// Sent as a request header (already validated as base64 of the right size).
    Header(String),
    /// Declared in `x-amz-trailer`; arrives at the end of an aws-chunked body.
    Trailer,
}

/// What the handler knows about the body before reading it.
#[derive(Debug)]
pub struct BodySpec {
    pub payload: PayloadHash,
    pub chunk_signer: Option<ChunkSigner>,
    /// The decoded length the client declared (Content-Length, or
    /// `x-amz-decoded-content-length` for aws-chunked), if any.
    pub declared_len: Option<u64>,
    pub max_len: u64,
    pub content_md5: Option<[u8; 16]>,
    pub checksum: Option<(ChecksumAlgorithm, ChecksumExpectation)>,
}

/// Digests of a body that passed every check.
#[derive(Clone, Debug)]
pub struct BodyDigests {
    pub md5: [u8; 16],
    pub len: u64,
    /// The verified additional checksum (algorithm, base64 value).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

/// The digests computed on the request's own task (small bodies) or on a
/// side thread (SHA-256 and checksums of large ones).
#[derive(Default)]
struct Hashers {
    /// `None` when the MD5 runs on the lane pool instead.
    md5: Option<Md5>,
    sha256: Option<Sha256>,
    checksum: Option<ChecksumHasher>,
}

struct HashResults {
    md5: [u8; 16],
    sha256: Option<[u8; 32]>,
    checksum: Option<Vec<u8>>,
}

impl Hashers {
    fn update(&mut self, b: &[u8]) {
        if let Some(m) = &mut self.md5 {
            m.update(b);
        }
        if let Some(s) = &mut self.sha256 {
            s.update(b);
        }
        if let Some(c) = &mut self.checksum {
            c.update(b);
        }
    }

    fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha256.is_none() && self.checksum.is_none()
    }

    /// The results, with `md5` from elsewhere when this had none.
    fn finish(self, md5: Option<[u8; 16]>) -> Result<HashResults, BodyError> {
        let md5 = match (self.md5, md5) {
            (Some(m), _) => m.finalize().into(),
            (None, Some(m)) => m,
            (None, None) => return Err(BodyError::Internal("no MD5 was computed".into())),
        };
        Ok(HashResults {
            md5,
            sha256: self.sha256.map(|s| s.finalize().into()),
            checksum: self.checksum.map(|c| c.finalize()),
        })
    }
}

enum DigestSink {
    Inline(Box<Hashers>),
    /// A large body: MD5 on the lane pool (several bodies per SIMD pass,
    /// see `md5_lanes`), any other digest on a blocking thread fed through
    /// a bounded channel.
    Side {
        md5: Option<Md5Stream>,
        others: Option<(mpsc::Sender<Bytes>, JoinHandle<Hashers>)>,
    },
    Finished,
}

impl DigestSink {
    fn new(mut hashers: Hashers, declared_len: Option<u64>) -> Self {
        if declared_len.is_some_and(|l| l < SIDE_DIGEST_MIN_BYTES) {
            return DigestSink::Inline(Box::new(hashers));
        }
        // MD5 goes to the lane pool if there is one; otherwise it stays
        // with the other digests on the side thread.
        let md5 = Md5Lanes::global().map(|pool| {
            hashers.md5 = None;
            pool.stream()
        });
        let others = (!hashers.is_empty()).then(|| {
            let (tx, mut rx) = mpsc::channel::<Bytes>(DIGEST_QUEUE_FRAMES);
            let handle = tokio::task::spawn_blocking(move || {
                let mut h = hashers;
                while let Some(b) = rx.blocking_recv() {
                    h.update(&b);
                }
                h
            });
            (tx, handle)
        });
        DigestSink::Side { md5, others }
    }

    async fn update(&mut self, b: &Bytes) -> Result<(), BodyError> {
        match self {
            DigestSink::Inline(h) => {
                h.update(b);
                Ok(())
            }
            DigestSink::Side { md5, others } => {
                let mut rest = b.clone();
                while !rest.is_empty() {
                    let piece = rest.split_to(rest.len().min(DIGEST_PIECE_BYTES));
                    if let Some((tx, _)) = others {
                        tx.send(piece.clone())
                            .await
                            .map_err(|_| BodyError::Internal("digest thread stopped".into()))?;
                    }
                    if let Some(m) = md5 {
                        m.update(piece)
                            .await
                            .map_err(|e| BodyError::Internal(e.to_string()))?;
                    }
                }
                Ok(())
            }
            DigestSink::Finished => Err(BodyError::Internal("digest already finished".into())),
        }
    }

    async fn finish(&mut self) -> Result<HashResults, BodyError> {
        match std::mem::replace(self, DigestSink::Finished) {
            DigestSink::Inline(h) => h.finish(None),
            DigestSink::Side { md5, others } => {
                let md5 = match md5 {
                    Some(m) => Some(
                        m.finish()
                            .await
                            .map_err(|e| BodyError::Internal(e.to_string()))?,
                    ),
                    None => None,
                };
                let hashers = match others {
                    Some((tx, handle)) => {
                        drop(tx);
                        handle
                            .await
                            .map_err(|e| BodyError::Internal(format!("digest thread: {e}")))?
                    }
                    None => Hashers::default(),
                };
                hashers.finish(md5)
            }
            DigestSink::Finished => Err(BodyError::Internal("digest already finished".into())),
        }
    }
}

/// A request body being read, decoded and verified.
pub struct BodyReader {
    incoming: Incoming,
    decoder: Option<AwsChunkedDecoder>,
    pending: VecDeque<Bytes>,
    digests: DigestSink,
    spec_sha256: Option<[u8; 32]>,
    content_md5: Option<[u8; 16]>,
    checksum: Option<(ChecksumAlgorithm, ChecksumExpectation)>,
    declared_len: Option<u64>,
    max_len: u64,
    received: u64,
    result: Option<BodyDigests>,
    ended: bool,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("received", &self.received)
            .field("declared_len", &self.declared_len)
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    pub fn new(incoming: Incoming, spec: BodySpec) -> Self {
        let spec_sha256 = match spec.payload {
            PayloadHash::Sha256(h) => Some(h),
            _ => None,
        };
        let decoder = spec
            .payload
            .is_streaming()
            .then(|| AwsChunkedDecoder::new(spec.chunk_signer, spec.payload.has_trailer()));
        let hashers = Hashers {
            md5: Some(Md5::new()),
            sha256: spec_sha256.map(|_| Sha256::new()),
            checksum: spec.checksum.as_ref().map(|(a, _)| a.hasher()),
        };
        BodyReader {
            incoming,
            decoder,
            pending: VecDeque::new(),
            digests: DigestSink::new(hashers, spec.declared_len),
            spec_sha256,
            content_md5: spec.content_md5,
            checksum: spec.checksum,
            declared_len: spec.declared_len,
            max_len: spec.max_len,
            received: 0,
            result: None,
            ended: false,
        }
    }

    /// The next piece of the decoded body; `Ok(None)` once the body ended
    /// and every check passed.
    pub async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                self.account(&b).await?;
                return Ok(Some(b));
            }
            if self.ended {
                return Ok(None);
            }
            match self.incoming.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // HTTP trailers: S3 clients put checksums in aws-chunked instead
                    };
                    if data.is_empty() {
                        continue;
                    }
                    match &mut self.decoder {
                        Some(dec) => {
                            let mut out = Vec::new();
                            dec.push(data, &mut out)?;
                            self.pending
                                .extend(out.into_iter().filter(|b| !b.is_empty()));
                        }
                        None => self.pending.push_back(data),
                    }
                }
                Some(Err(e)) => {
                    return Err(if e.is_incomplete_message() {
                        BodyError::Incomplete
                    } else {
                        BodyError::Transport(e.to_string())
                    });
                }
                None => {
                    self.verify_end().await?;
                    self.ended = true;
                }
            }
        }
    }

    async fn account(&mut self, b: &Bytes) -> Result<(), BodyError> {
        self.received += b.len() as u64;
        if self.received > self.max_len {
            return Err(BodyError::TooLarge);
        }
        if let Some(d) = self.declared_len
            && self.received > d
        {
            return Err(BodyError::LengthMismatch {
                declared: d,
                received: self.received,
            });
        }
        self.digests.update(b).await
    }

    async fn verify_end(&mut self) -> Result<(), BodyError> {
        let trailers = match &mut self.decoder {
            Some(dec) => dec.finish()?,
            None => Vec::new(),
        };
        if let Some(d) = self.declared_len
            && d != self.received
        {
            return Err(if self.received < d {
                BodyError::Incomplete
            } else {
                BodyError::LengthMismatch {
                    declared: d,
                    received: self.received,
                }
            });
        }
        let results = self.digests.finish().await?;
        if let (Some(claimed), Some(computed)) = (self.spec_sha256, results.sha256)
            && claimed != computed
        {
            return Err(BodyError::Sha256Mismatch {
                claimed: hex::encode(claimed),
                computed: hex::encode(computed),
            });
        }
        if let Some(want) = self.content_md5
            && want != results.md5
        {
            return Err(BodyError::Md5Mismatch);
        }
        let mut checksum = None;
        if let (Some((algorithm, expectation)), Some(computed)) = (&self.checksum, results.checksum)
        {
            let name = algorithm.header_name();
            let expected_b64 = match expectation {
                ChecksumExpectation::Header(v) => v.clone(),
                ChecksumExpectation::Trailer => trailers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .ok_or(BodyError::MissingTrailer { name })?,
            };
            let expected = algorithm
                .decode_value(&expected_b64)
                .ok_or(BodyError::InvalidChecksumValue { name })?;
            if expected != computed {
                return Err(BodyError::ChecksumMismatch {
                    algorithm: algorithm.as_sdk_name(),
                });
            }
            checksum = Some((*algorithm, BASE64.encode(&computed)));
        }
        self.result = Some(BodyDigests {
            md5: results.md5,
            len: self.received,
            checksum,
        });
        Ok(())
    }

    /// Digests of the body; `Some` only after `next` returned `Ok(None)`.
    pub fn digests(&self) -> Option<&BodyDigests> {
        self.result.as_ref()
    }

    /// Reads a small body (an XML document) completely, verified.
    pub async fn read_to_end(mut self) -> Result<(Bytes, BodyDigests), BodyError> {
        let mut buf = bytes::BytesMut::new();
        while let Some(b) = self.next().await? {
            buf.extend_from_slice(&b);
        }
        let digests = self
            .result
            .take()
            .ok_or_else(|| BodyError::Internal("body ended without digests".into()))?;
        Ok((buf.freeze(), digests))
    }
}
