//! Streaming decoder for `Content-Encoding: aws-chunked` bodies.
//!
//! Signed (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`):
//! ```text
//! <hex-size>;chunk-signature=<64 hex>\r\n<data>\r\n ... 0;chunk-signature=<64 hex>\r\n
//! [<trailer-name>:<value>\r\n ... x-amz-trailer-signature:<64 hex>\r\n]
//! \r\n
//! ```
//! Unsigned with trailer (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`):
//! ```text
//! <hex-size>\r\n<data>\r\n ... 0\r\n<trailer-name>:<value>\r\n ... \r\n
//! ```
//! After the zero-size chunk comes a trailer section ended by an empty line, as in HTTP
//! chunked encoding. Leniency, for real SDKs: unknown `;`-extensions on the size line are
//! ignored, whitespace around the size and around trailer names/values is ignored, a
//! signed-trailer body with no trailer at all (aws-sdk-rust when no checksum trailer is
//! set) is accepted, and the final `\r\n` may be missing at end of body once at least one
//! complete trailer line has been received.
//!
//! Decoded bytes are handed out as soon as they arrive, **before** the chunk's signature
//! is verified (it can only be checked once the chunk is complete). The caller must treat
//! everything as unauthenticated until [`AwsChunkedDecoder::finish`] returns `Ok`.

use std::fmt;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::ChunkedError;
use super::sigv4::{ChunkSigner, EMPTY_SHA256};

/// Longest accepted chunk-size line (size, extensions and CRLF).
pub const MAX_CHUNK_LINE_LEN: usize = 4 * 1024;
/// Longest accepted trailer section (all lines, CRLFs included).
pub const MAX_TRAILER_LEN: usize = 16 * 1024;
/// Most trailer headers accepted (not counting `x-amz-trailer-signature`).
pub const MAX_TRAILER_HEADERS: usize = 16;
/// Largest accepted single chunk.
pub const MAX_CHUNK_SIZE: u64 = 64 * 1024 * 1024;

const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";
const CHUNK_SIGNATURE: &[u8] = b"chunk-signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a `<hex-size>[;ext]*\r\n` line into `line`.
    ChunkLine,
    /// Inside chunk data.
    ChunkData { remaining: u64 },
    /// Expecting the `\r` after chunk data.
    DataCr,
    /// Expecting the `\n` after chunk data.
    DataLf,
    /// After the zero-size chunk: trailer lines, then an empty line.
    Trailer,
    /// The body is complete; nothing more may follow.
    Done,
}

/// Incremental `aws-chunked` decoder; see the module documentation for the format.
pub struct AwsChunkedDecoder {
    signer: Option<ChunkSigner>,
    expects_trailer: bool,
    state: State,
    /// Partial chunk-size or trailer line (bounded).
    line: Vec<u8>,
    /// SHA-256 of the current chunk's data (only fed when signed).
    chunk_hasher: Sha256,
    /// The current chunk's claimed signature (only kept when signed).
    chunk_signature: Option<String>,
    trailer_len: usize,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    decoded: u64,
    failed: Option<ChunkedError>,
}

impl fmt::Debug for AwsChunkedDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsChunkedDecoder")
            .field("signed", &self.signer.is_some())
            .field("expects_trailer", &self.expects_trailer)
            .field("state", &self.state)
            .field("decoded", &self.decoded)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AwsChunkedDecoder {
    /// A decoder for one body. With `signer`, every chunk signature (and the trailer
    /// signature) is verified and required; without, signatures are ignored.
    /// `expects_trailer` is true for the two `*-TRAILER` payload modes.
    pub fn new(signer: Option<ChunkSigner>, expects_trailer: bool) -> Self {
        AwsChunkedDecoder {
            signer,
            expects_trailer,
            state: State::ChunkLine,
            line: Vec::new(),
            chunk_hasher: Sha256::new(),
            chunk_signature: None,
            trailer_len: 0,
            trailers: Vec::new(),
            trailer_signature: None,
            decoded: 0,
            failed: None,
        }
    }

    /// Feeds raw body bytes as they arrive (any split points). Decoded payload bytes are
    /// appended to `out` as zero-copy slices of `input`. After an error every further
    /// call returns the same error.
    pub fn push(&mut self, input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkedError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.push_inner(&input, out)
            .inspect_err(|e| self.failed = Some(*e))
    }

    /// Call at the end of the raw body. Errors unless the final zero-size chunk (and, if
    /// expected, a complete trailer section) was received and verified. Returns the trailer
    /// headers (lowercase names, trimmed values), without `x-amz-trailer-signature`.
    pub fn finish(&mut self) -> Result<Vec<(String, String)>, ChunkedError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = match self.state {
            State::Done => Ok(()),
            State::Trailer => {
                // EOF instead of the final CRLF: accepted only after complete trailer lines.
                let at_line_boundary = self.line.is_empty() || self.line.as_slice() == b"\r";
                let saw_trailer = !self.trailers.is_empty() || self.trailer_signature.is_some();
                if at_line_boundary && saw_trailer {
                    self.complete_trailer()
                } else {
                    Err(ChunkedError::Incomplete)
                }
            }
            _ => Err(ChunkedError::Incomplete),
        };
        match result {
            Ok(()) => Ok(self.trailers.clone()),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// Decoded payload bytes produced so far.
    pub fn decoded_len_bytes(&self) -> u64 {
        self.decoded
    }

    fn push_inner(&mut self, input: &Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkedError> {
        let mut pos = 0usize;
        while pos < input.len() {
            let rest = input.get(pos..).unwrap_or_default();
            match self.state {
                State::ChunkLine | State::Trailer => {
                    let newline = rest.iter().position(|&b| b == b'\n');
                    let take = newline.map_or(rest.len(), |i| i + 1);
                    self.append_line(rest.get(..take).unwrap_or_default())?;
                    pos += take;
                    if newline.is_some() {
                        let line = std::mem::take(&mut self.line);
                        let result = if self.state == State::ChunkLine {
                            self.on_chunk_line(&line)
                        } else {
                            self.on_trailer_line(&line)
                        };
                        // Keep the allocation for the next line.
                        self.line = line;
                        self.line.clear();
                        result?;
                    }
                }
                State::ChunkData { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    // In bounds: n <= rest.len() == input.len() - pos.
                    let data = input.slice(pos..pos + n);
                    if self.signer.is_some() {
                        self.chunk_hasher.update(&data);
                    }
                    self.decoded = self
                        .decoded
                        .checked_add(n as u64)
                        .ok_or(ChunkedError::TooLarge)?;
                    out.push(data);
                    pos += n;
                    let remaining = remaining.saturating_sub(n as u64);
                    if remaining == 0 {
                        self.state = State::DataCr;
                        self.chunk_data_complete()?;
                    } else {
                        self.state = State::ChunkData { remaining };
                    }
                }
                State::DataCr | State::DataLf => {
                    let expected = if self.state == State::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if rest.first() != Some(&expected) {
                        return Err(ChunkedError::Malformed("chunk data not followed by CRLF"));
                    }
                    self.state = if self.state == State::DataCr {
                        State::DataLf
                    } else {
                        State::ChunkLine
                    };
                    pos += 1;
                }
                State::Done => {
                    return Err(ChunkedError::Malformed(
                        "data after the end of the aws-chunked body",
                    ));
                }
            }
        }
        Ok(())
    }

    fn append_line(&mut self, part: &[u8]) -> Result<(), ChunkedError> {
        let limit = if self.state == State::Trailer {
            self.trailer_len = self.trailer_len.saturating_add(part.len());
            if self.trailer_len > MAX_TRAILER_LEN {
                return Err(ChunkedError::TooLarge);
            }
            MAX_TRAILER_LEN
        } else {
            MAX_CHUNK_LINE_LEN
        };
        if self.line.len().saturating_add(part.len()) > limit {
            return Err(ChunkedError::TooLarge);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn on_chunk_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let line = line.strip_suffix(b"\r\n").ok_or(ChunkedError::Malformed(
            "chunk-size line must end with CRLF",
        ))?;
        let mut fields = line.split(|&b| b == b';');
        let size_field = trim_ows(fields.next().unwrap_or_default());
        if size_field.is_empty()
            || size_field.len() > 16
            || !size_field.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(ChunkedError::Malformed("invalid chunk size"));
        }
        let size = std::str::from_utf8(size_field)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or(ChunkedError::Malformed("invalid chunk size"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(ChunkedError::TooLarge);
        }

        let mut signature: Option<&[u8]> = None;
        for ext in fields {
            let ext = trim_ows(ext);
            if ext.is_empty() {
                continue;
            }
            let (name, value) = match ext.iter().position(|&b| b == b'=') {
                Some(i) => (
                    ext.get(..i).unwrap_or_default(),
                    ext.get(i + 1..).unwrap_or_default(),
                ),
                None => (ext, &b""[..]),
            };
            if trim_ows(name) == CHUNK_SIGNATURE && signature.replace(trim_ows(value)).is_some() {
                return Err(ChunkedError::Malformed("duplicate chunk-signature"));
            }
        }

        let signature = match (&self.signer, signature) {
            (None, _) => None,
            (Some(_), None) => return Err(ChunkedError::Malformed("missing chunk-signature")),
            (Some(_), Some(sig)) => Some(
                std::str::from_utf8(sig)
                    .map_err(|_| ChunkedError::Malformed("invalid chunk-signature"))?
                    .to_owned(),
            ),
        };

        if size == 0 {
            if let (Some(signer), Some(sig)) = (self.signer.as_mut(), signature.as_deref()) {
                signer
                    .verify_chunk(&EMPTY_SHA256, sig)
                    .map_err(|_| ChunkedError::ChunkSignatureMismatch)?;
            }
            self.state = State::Trailer;
            self.trailer_len = 0;
        } else {
            self.chunk_hasher = Sha256::new();
            self.chunk_signature = signature;
            self.state = State::ChunkData { remaining: size };
        }
        Ok(())
    }

    fn chunk_data_complete(&mut self) -> Result<(), ChunkedError> {
        let Some(signer) = self.signer.as_mut() else {
            return Ok(());
        };
        let hash: [u8; 32] = std::mem::take(&mut self.chunk_hasher).finalize().into();
        let sig = self
            .chunk_signature
            .take()
            .ok_or(ChunkedError::Malformed("missing chunk-signature"))?;
        signer
            .verify_chunk(&hash, &sig)
            .map_err(|_| ChunkedError::ChunkSignatureMismatch)
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let line = line
            .strip_suffix(b"\r\n")
            .ok_or(ChunkedError::Malformed("trailer line must end with CRLF"))?;
        if line.is_empty() {
            return self.complete_trailer();
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| ChunkedError::Malformed("trailer line is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(ChunkedError::Malformed("trailer line without ':'"))?;
        let name = name.trim_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ChunkedError::Malformed("invalid trailer name"));
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(ChunkedError::Malformed("invalid trailer value"));
        }
        let name = name.to_ascii_lowercase();
        if !self.expects_trailer {
            return Err(ChunkedError::Malformed(
                "trailer in a body declared without trailer",
            ));
        }
        if name == TRAILER_SIGNATURE {
            if self.trailer_signature.replace(value.to_owned()).is_some() {
                return Err(ChunkedError::Malformed("duplicate x-amz-trailer-signature"));
            }
            return Ok(());
        }
        if self.trailers.len() >= MAX_TRAILER_HEADERS {
            return Err(ChunkedError::TooLarge);
        }
        self.trailers.push((name, value.to_owned()));
        Ok(())
    }

    /// The trailer section ended: verify its signature when signed, then done.
    fn complete_trailer(&mut self) -> Result<(), ChunkedError> {
        if let Some(signer) = self.signer.as_mut() {
            match self.trailer_signature.as_deref() {
                Some(sig) => {
                    let canonical = canonical_trailer(&self.trailers);
                    signer
                        .verify_trailer(&canonical, sig)
                        .map_err(|_| ChunkedError::TrailerSignatureMismatch)?;
                }
                // aws-sdk-rust sends a signed-trailer body without any trailer (and so
                // without a trailer signature) when no checksum is computed.
                None if self.trailers.is_empty() => {}
                None => return Err(ChunkedError::TrailerSignatureMismatch),
            }
        }
        self.state = State::Done;
        Ok(())
    }
}

/// The canonical trailer text that `x-amz-trailer-signature` signs: `name:value\n` per
/// trailer header, sorted by name (as aws-sigv4 and the .NET SDK build it).
pub(crate) fn canonical_trailer(trailers: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = trailers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (name, value) in sorted {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Trims spaces and tabs.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
