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
//! of `cairn-md5-lanes` (four bodies per SIMD pass), SHA-256 and checksums in
//! batches, each hashed by a short job on the blocking pool
//! ([`BatchHasher`]). No thread ever waits for a client: one that stalls
//! holds memory (its batch) and a connection, nothing everyone else needs.
//!
//! Clients must keep sending ([`BodyTimeouts`]): no byte for `idle`, or
//! fewer than `min_rate_bytes_per_sec` on average over a `min_rate_window`
//! of waiting, ends the request with S3's `RequestTimeout` (and the
//! connection); nothing is stored. Only time spent waiting for the client
//! counts, never time the server took to consume what it sent.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::auth::{
    AwsChunkedDecoder, ChecksumAlgorithm, ChecksumHasher, ChunkSigner, ChunkedError, PayloadHash,
};
use cairn_md5_lanes::{Md5Lanes, Md5Stream};

/// Bodies at least this large (or of unknown length) hash on a side thread.
const SIDE_DIGEST_MIN_BYTES: u64 = 256 << 10;
/// Bytes of frames (slices, not copies) collected before they are hashed as
/// one job on the blocking pool: with one job running and one batch being
/// filled, a request holds at most ~2 batches for its SHA-256/checksums.
/// At ~1.5 GB/s (SHA-NI) a job is ~0.3 ms, far above a spawn's cost.
const DIGEST_BATCH_BYTES: usize = 512 << 10;
/// The MD5 lane pool gets frames of at most this size: hyper reads up to
/// 256 KiB at once (`HTTP_READ_BUFFER_BYTES`), and `cairn-md5-lanes` bounds its
/// queue in batches of frames, so pieces this size keep it near 1 MiB.
const DIGEST_PIECE_BYTES: usize = 64 << 10;

/// Hashing jobs running at once, over all requests: two per core (at least
/// four). Requests beyond wait (asynchronously) for a turn, so many uploads
/// at once never flood the blocking pool that the storage path shares.
fn hash_permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new((2 * cores).max(4)))
    })
}

/// How slowly a client may send a request body (`S3Config`; server flags
/// `--body-idle-timeout-secs`, `--body-min-rate-bytes-per-sec`,
/// `--body-min-rate-window-secs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyTimeouts {
    /// No byte for this long ends the request. `None`: no limit.
    pub idle: Option<Duration>,
    /// Average rate below which the request ends, over each window of
    /// `min_rate_window` spent waiting for the client (0: no limit). The
    /// first window is the grace period: a body that ends within it is
    /// never measured.
    pub min_rate_bytes_per_sec: u64,
    pub min_rate_window: Duration,
}

/// Defaults: AWS closes a connection idle for ~20 s; 256 B/s over 30 s of
/// waiting (7.5 KiB) lets a poor 2G/NB-IoT link through while a trickling
/// client is gone within a minute.
pub const BODY_IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
pub const BODY_MIN_RATE_BYTES_PER_SEC_DEFAULT: u64 = 256;
pub const BODY_MIN_RATE_WINDOW_DEFAULT: Duration = Duration::from_secs(30);

impl Default for BodyTimeouts {
    fn default() -> Self {
        BodyTimeouts {
            idle: Some(BODY_IDLE_TIMEOUT_DEFAULT),
            min_rate_bytes_per_sec: BODY_MIN_RATE_BYTES_PER_SEC_DEFAULT,
            min_rate_window: BODY_MIN_RATE_WINDOW_DEFAULT,
        }
    }
}

impl BodyTimeouts {
    /// The limits an [`crate::S3Config`] sets (a zero duration or rate: none).
    pub fn from_config(c: &crate::S3Config) -> Self {
        BodyTimeouts {
            idle: (!c.body_idle_timeout.is_zero()).then_some(c.body_idle_timeout),
            min_rate_bytes_per_sec: if c.body_min_rate_window.is_zero() {
                0
            } else {
                c.body_min_rate_bytes_per_sec
            },
            min_rate_window: c.body_min_rate_window,
        }
    }
}

/// Time spent waiting for the client and what it sent meanwhile, against
/// [`BodyTimeouts`].
#[derive(Debug)]
struct Pace {
    limits: BodyTimeouts,
    /// Waiting time and bytes of the current rate window.
    window_waited: Duration,
    window_bytes: u64,
}

impl Pace {
    fn new(limits: BodyTimeouts) -> Self {
        Pace {
            limits,
            window_waited: Duration::ZERO,
            window_bytes: 0,
        }
    }

    fn rate_limited(&self) -> bool {
        self.limits.min_rate_bytes_per_sec > 0 && !self.limits.min_rate_window.is_zero()
    }

    /// How long the next wait for the client may last before a limit must
    /// be looked at; `None`: unbounded.
    fn wait_limit(&self) -> Option<Duration> {
        let window_left = self.rate_limited().then(|| {
            self.limits
                .min_rate_window
                .saturating_sub(self.window_waited)
        });
        match (self.limits.idle, window_left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A wait of `waited` brought `bytes` (0: it timed out, see `wait_limit`).
    fn record(&mut self, waited: Duration, bytes: u64) -> Result<(), BodyError> {
        if bytes == 0 && self.limits.idle.is_some_and(|idle| waited >= idle) {
            return Err(BodyError::Timeout(BodyTimeout::Idle));
        }
        if !self.rate_limited() {
            return Ok(());
        }
        self.window_waited += waited;
        self.window_bytes = self.window_bytes.saturating_add(bytes);
        if self.window_waited >= self.limits.min_rate_window {
            let window = self.limits.min_rate_window.as_secs_f64();
            let needed = self.limits.min_rate_bytes_per_sec as f64 * window;
            if (self.window_bytes as f64) < needed {
                return Err(BodyError::Timeout(BodyTimeout::TooSlow {
                    bytes: self.window_bytes,
                    secs: self.window_waited.as_secs(),
                }));
            }
            self.window_waited = Duration::ZERO;
            self.window_bytes = 0;
        }
        Ok(())
    }
}

/// Which body limit a client broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyTimeout {
    Idle,
    TooSlow { bytes: u64, secs: u64 },
}

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
    /// A POST form that is not well-formed multipart/form-data.
    #[error("malformed multipart/form-data: {0}")]
    MalformedForm(String),
    /// Shorter than a POST policy's `content-length-range` allows.
    #[error("the body is {received} bytes, below the minimum of {min}")]
    TooSmall { min: u64, received: u64 },
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
    #[error("the client sent the body too slowly: {0:?}")]
    Timeout(BodyTimeout),
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
    /// Fewer bytes fail at the end (a POST policy's `content-length-range`).
    pub min_len: u64,
    pub content_md5: Option<[u8; 16]>,
    pub checksum: Option<(ChecksumAlgorithm, ChecksumExpectation)>,
    pub timeouts: BodyTimeouts,
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

/// SHA-256 and checksums of a large body, hashed in batches: each batch of
/// `DIGEST_BATCH_BYTES` is one short job on the blocking pool (one
/// `hash_permits` turn), while the next batch is being received. A thread is
/// held only while bytes are hashed — a client that stalls holds none.
struct BatchHasher {
    /// The hashers while no job has them.
    idle: Option<Box<Hashers>>,
    /// The job hashing the previous batch; it hands the hashers back.
    job: Option<JoinHandle<Box<Hashers>>>,
    batch: Vec<Bytes>,
    batch_bytes: usize,
}

impl BatchHasher {
    fn new(hashers: Hashers) -> Self {
        BatchHasher {
            idle: Some(Box::new(hashers)),
            job: None,
            batch: Vec::new(),
            batch_bytes: 0,
        }
    }

    async fn push(&mut self, b: Bytes) -> Result<(), BodyError> {
        self.batch_bytes += b.len();
        self.batch.push(b);
        if self.batch_bytes >= DIGEST_BATCH_BYTES {
            self.dispatch().await?;
        }
        Ok(())
    }

    /// The hashers, once the job that has them (if any) is done.
    async fn take_hashers(&mut self) -> Result<Box<Hashers>, BodyError> {
        match self.job.take() {
            Some(job) => job
                .await
                .map_err(|e| BodyError::Internal(format!("digest job: {e}"))),
            None => self
                .idle
                .take()
                .ok_or_else(|| BodyError::Internal("digest state lost".into())),
        }
    }

    /// Hands the collected batch to a job (after the previous one ended:
    /// one job per body at a time, so batches are hashed in order).
    async fn dispatch(&mut self) -> Result<(), BodyError> {
        let mut hashers = self.take_hashers().await?;
        debug_assert!(self.job.is_none() && self.idle.is_none());
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let permit = hash_permits()
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BodyError::Internal("digest jobs closed".into()))?;
        self.job = Some(tokio::task::spawn_blocking(move || {
            let _turn = permit;
            for b in &batch {
                hashers.update(b);
            }
            hashers
        }));
        Ok(())
    }

    async fn finish(mut self) -> Result<Hashers, BodyError> {
        if !self.batch.is_empty() {
            self.dispatch().await?;
        }
        Ok(*self.take_hashers().await?)
    }
}

enum DigestSink {
    Inline(Box<Hashers>),
    /// A large body: MD5 on the lane pool (several bodies per SIMD pass,
    /// see `cairn-md5-lanes`), any other digest in batches on the blocking pool.
    Side {
        md5: Option<Md5Stream>,
        others: Option<BatchHasher>,
    },
    Finished,
}

impl DigestSink {
    fn new(mut hashers: Hashers, declared_len: Option<u64>) -> Self {
        if declared_len.is_some_and(|l| l < SIDE_DIGEST_MIN_BYTES) {
            return DigestSink::Inline(Box::new(hashers));
        }
        // MD5 goes to the lane pool if there is one; otherwise it stays
        // with the other digests in the batches.
        let md5 = Md5Lanes::global().map(|pool| {
            hashers.md5 = None;
            pool.stream()
        });
        let others = (!hashers.is_empty()).then(|| BatchHasher::new(hashers));
        DigestSink::Side { md5, others }
    }

    async fn update(&mut self, b: &Bytes) -> Result<(), BodyError> {
        match self {
            DigestSink::Inline(h) => {
                h.update(b);
                Ok(())
            }
            DigestSink::Side { md5, others } => {
                if let Some(o) = others {
                    o.push(b.clone()).await?;
                }
                if let Some(m) = md5 {
                    let mut rest = b.clone();
                    while !rest.is_empty() {
                        let piece = rest.split_to(rest.len().min(DIGEST_PIECE_BYTES));
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
                    Some(o) => o.finish().await?,
                    None => Hashers::default(),
                };
                hashers.finish(md5)
            }
            DigestSink::Finished => Err(BodyError::Internal("digest already finished".into())),
        }
    }
}

/// Where a body's bytes come from.
enum Source {
    /// The request's own body, paced here ([`BodyTimeouts`]).
    Http(Incoming),
    /// The `file` of a POST form: the request under it is paced by
    /// [`paced_stream`], so nothing is timed here.
    FormFile(Box<multer::Field<'static>>),
}

/// A request body being read, decoded and verified.
pub struct BodyReader {
    source: Source,
    decoder: Option<AwsChunkedDecoder>,
    pending: VecDeque<Bytes>,
    digests: DigestSink,
    pace: Pace,
    spec_sha256: Option<[u8; 32]>,
    content_md5: Option<[u8; 16]>,
    checksum: Option<(ChecksumAlgorithm, ChecksumExpectation)>,
    declared_len: Option<u64>,
    max_len: u64,
    min_len: u64,
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
        Self::with_source(Source::Http(incoming), spec)
    }

    /// The `file` field of a POST form (unsigned: the form's policy, not
    /// the body, is what was signed).
    pub fn form_file(field: Box<multer::Field<'static>>, spec: BodySpec) -> Self {
        debug_assert!(!spec.payload.is_streaming() && spec.chunk_signer.is_none());
        Self::with_source(Source::FormFile(field), spec)
    }

    fn with_source(source: Source, spec: BodySpec) -> Self {
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
            source,
            decoder,
            pending: VecDeque::new(),
            digests: DigestSink::new(hashers, spec.declared_len),
            pace: Pace::new(spec.timeouts),
            spec_sha256,
            content_md5: spec.content_md5,
            checksum: spec.checksum,
            declared_len: spec.declared_len,
            max_len: spec.max_len,
            min_len: spec.min_len,
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
            match self.next_frame().await? {
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

    /// The next frame from the client, within the [`BodyTimeouts`].
    async fn next_frame(
        &mut self,
    ) -> Result<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>, BodyError> {
        match &mut self.source {
            Source::Http(incoming) => next_paced_frame(incoming, &mut self.pace).await,
            Source::FormFile(field) => match field.chunk().await {
                Ok(Some(b)) => Ok(Some(Ok(hyper::body::Frame::data(b)))),
                Ok(None) => Ok(None),
                Err(e) => Err(form_error(e)),
            },
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
        if self.received < self.min_len {
            return Err(BodyError::TooSmall {
                min: self.min_len,
                received: self.received,
            });
        }
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

/// The next frame of `incoming`, waiting no longer than `pace` allows.
async fn next_paced_frame(
    incoming: &mut Incoming,
    pace: &mut Pace,
) -> Result<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>, BodyError> {
    // Bounded: each turn either returns or ends a rate window (which
    // fails the request or starts a new window).
    loop {
        let started = Instant::now();
        let frame = match pace.wait_limit() {
            None => Some(incoming.frame().await),
            // `frame()` is cancel-safe: nothing is lost when it times out.
            Some(limit) => tokio::time::timeout(limit, incoming.frame()).await.ok(),
        };
        let waited = started.elapsed();
        match frame {
            Some(Some(Ok(f))) => {
                let bytes = f.data_ref().map_or(0, |d| d.len() as u64);
                // A frame without data still shows the client is there.
                pace.record(waited, bytes.max(1))?;
                return Ok(Some(Ok(f)));
            }
            Some(other) => return Ok(other),
            None => {
                if let Err(e) = pace.record(waited, 0) {
                    tracing::debug!(error = %e, "request body timed out");
                    return Err(e);
                }
            }
        }
    }
}

/// How much of a request [`paced_stream`] may deliver, in bytes and in
/// pieces: the reader of a POST form raises both once it reached the file
/// (the fields before it are held in memory, the file is streamed).
#[derive(Debug)]
pub struct StreamAllowance {
    bytes: std::sync::atomic::AtomicU64,
    pieces: std::sync::atomic::AtomicU64,
}

impl StreamAllowance {
    pub fn new(bytes: u64, pieces: u64) -> Arc<Self> {
        Arc::new(StreamAllowance {
            bytes: std::sync::atomic::AtomicU64::new(bytes),
            pieces: std::sync::atomic::AtomicU64::new(pieces),
        })
    }

    pub fn set(&self, bytes: u64, pieces: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bytes.store(bytes, Relaxed);
        self.pieces.store(pieces, Relaxed);
    }

    fn allows(&self, bytes: u64, pieces: u64) -> Result<(), BodyError> {
        use std::sync::atomic::Ordering::Relaxed;
        if bytes > self.bytes.load(Relaxed) {
            return Err(BodyError::TooLarge);
        }
        if pieces > self.pieces.load(Relaxed) {
            return Err(BodyError::MalformedForm(
                "the form arrived in too many small pieces".into(),
            ));
        }
        Ok(())
    }
}

/// Largest piece [`paced_stream`] hands on: a larger frame is split (the
/// pieces share its buffer), so a reader that holds what it was given
/// holds at most this much beyond what it asked for.
pub const FORM_PIECE_MAX_BYTES: usize = 16 << 10;

/// The raw bytes of a request body as a stream (for the multipart/form-data
/// parser of POST Object), within the [`BodyTimeouts`] and never more than
/// `allowance` bytes in total (`BodyError::TooLarge` beyond).
pub fn paced_stream(
    incoming: Incoming,
    timeouts: BodyTimeouts,
    allowance: Arc<StreamAllowance>,
) -> impl futures_util::Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    struct State {
        incoming: Incoming,
        pace: Pace,
        received: u64,
        pieces: u64,
        /// The rest of a frame larger than one piece.
        rest: Bytes,
        allowance: Arc<StreamAllowance>,
        done: bool,
    }
    let state = State {
        incoming,
        pace: Pace::new(timeouts),
        received: 0,
        pieces: 0,
        rest: Bytes::new(),
        allowance,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            if st.rest.is_empty() {
                match next_paced_frame(&mut st.incoming, &mut st.pace).await {
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => st.rest = data,
                        Err(_) => continue, // HTTP trailers
                    },
                    Ok(Some(Err(e))) => {
                        st.done = true;
                        let e = if e.is_incomplete_message() {
                            BodyError::Incomplete
                        } else {
                            BodyError::Transport(e.to_string())
                        };
                        return Some((Err(e), st));
                    }
                    Ok(None) => return None,
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
                if st.rest.is_empty() {
                    continue;
                }
            }
            let piece = st.rest.split_to(st.rest.len().min(FORM_PIECE_MAX_BYTES));
            st.received += piece.len() as u64;
            st.pieces += 1;
            let item = st.allowance.allows(st.received, st.pieces).map(|()| piece);
            st.done = item.is_err();
            return Some((item, st));
        }
    })
}

/// A multipart/form-data parser's error: the [`BodyError`] of the stream
/// under it when that is what failed, else a malformed form.
pub fn form_error(e: multer::Error) -> BodyError {
    match e {
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<BodyError>() {
            Ok(body) => *body,
            Err(other) => BodyError::Transport(other.to_string()),
        },
        other => BodyError::MalformedForm(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(idle_secs: u64, rate: u64, window_secs: u64) -> BodyTimeouts {
        BodyTimeouts {
            idle: (idle_secs > 0).then(|| Duration::from_secs(idle_secs)),
            min_rate_bytes_per_sec: rate,
            min_rate_window: Duration::from_secs(window_secs),
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_wait_without_bytes_for_the_idle_time_ends_the_body() {
        let mut p = Pace::new(limits(20, 0, 0));
        assert_eq!(p.wait_limit(), Some(20 * S));
        assert!(p.record(19 * S, 10).is_ok(), "bytes arrived in time");
        assert!(matches!(
            p.record(20 * S, 0),
            Err(BodyError::Timeout(BodyTimeout::Idle))
        ));
        // No limits at all: waits are unbounded and never fail.
        let mut none = Pace::new(limits(0, 0, 0));
        assert_eq!(none.wait_limit(), None);
        assert!(none.record(3600 * S, 0).is_ok());
    }

    #[test]
    fn a_trickle_below_the_minimum_rate_ends_the_body_after_a_window() {
        // 1 byte every 10 s never trips the idle limit, but the rate does.
        let mut p = Pace::new(limits(20, 256, 30));
        assert!(p.record(10 * S, 1).is_ok());
        assert!(p.record(10 * S, 1).is_ok());
        assert_eq!(p.wait_limit(), Some(10 * S), "the window ends first");
        assert!(matches!(
            p.record(10 * S, 1),
            Err(BodyError::Timeout(BodyTimeout::TooSlow { bytes: 3, .. }))
        ));
    }

    #[test]
    fn enough_bytes_per_window_pass_and_each_window_starts_afresh() {
        let mut p = Pace::new(limits(20, 256, 30));
        for _ in 0..10 {
            // 30 s of waiting with 8 KiB: just above 256 B/s.
            assert!(p.record(15 * S, 4096).is_ok());
            assert!(p.record(15 * S, 4096).is_ok());
        }
        // A window that ends with a timeout (no byte) is judged too.
        assert!(p.record(29 * S, 8192).is_ok());
        assert!(p.record(S, 0).is_ok(), "the window had 8 KiB");
        assert!(p.record(19 * S, 1).is_ok());
        assert!(
            p.record(11 * S, 0).is_err(),
            "one byte in the next 30 s is too slow"
        );
    }

    #[test]
    fn time_the_server_spends_elsewhere_does_not_count() {
        // Only waits are recorded: a slow disk between reads cannot make a
        // fast client look slow. 60 waits of 1 ms, each with a frame.
        let mut p = Pace::new(limits(20, 256, 30));
        for _ in 0..60 {
            assert!(p.record(Duration::from_millis(1), 64 << 10).is_ok());
        }
        assert!(p.window_waited < S);
    }

    #[test]
    fn config_zeroes_disable_the_limits() {
        let mut c = crate::S3Config::default();
        assert_eq!(BodyTimeouts::from_config(&c), BodyTimeouts::default());
        c.body_idle_timeout = Duration::ZERO;
        c.body_min_rate_window = Duration::ZERO;
        let t = BodyTimeouts::from_config(&c);
        assert_eq!(t.idle, None);
        assert!(!Pace::new(t).rate_limited());
    }

    /// The batched side digests give the same SHA-256 and checksum as one
    /// pass, whatever the frame sizes, and hold no thread between batches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_side_digests_match_a_single_pass() {
        let mut data = vec![0u8; 3 * DIGEST_BATCH_BYTES + 12_345];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in &mut data {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for frame in [1usize, 1000, 64 << 10, 300_000, DIGEST_BATCH_BYTES + 1] {
            let hashers = Hashers {
                md5: Some(Md5::new()),
                sha256: Some(Sha256::new()),
                checksum: Some(ChecksumAlgorithm::Crc32c.hasher()),
            };
            let mut sink = DigestSink::new(hashers, Some(data.len() as u64));
            assert!(matches!(sink, DigestSink::Side { .. }));
            // Frames of 1 byte: only the first 200 KiB (a slow test otherwise).
            let body = if frame == 1 {
                &data[..200 << 10]
            } else {
                &data[..]
            };
            for piece in body.chunks(frame) {
                sink.update(&Bytes::copy_from_slice(piece)).await.unwrap();
            }
            let got = sink.finish().await.unwrap();
            let want_md5: [u8; 16] = Md5::digest(body).into();
            let want_sha: [u8; 32] = Sha256::digest(body).into();
            let mut crc = ChecksumAlgorithm::Crc32c.hasher();
            crc.update(body);
            assert_eq!(got.md5, want_md5, "frames of {frame}");
            assert_eq!(got.sha256, Some(want_sha), "frames of {frame}");
            assert_eq!(got.checksum, Some(crc.finalize()), "frames of {frame}");
        }
    }
}
