//! SSE-C as S3 defines it: the `x-amz-server-side-encryption-customer-*`
//! headers of a request, checked and turned into the object's cipher
//! (crypto's `customer_key`).
//!
//! Owns: parsing and validating the three headers (S3's errors for each
//! mistake), the refusal over plain HTTP (unless the operator allows it,
//! for tests), and the decision a read makes: an SSE-C object needs its
//! key, a wrong key is `403`, a key for an object without SSE-C is `400`.
//!
//! Must never: store, log or echo the key (only its MD5, which the client
//! sent, is echoed); let a request without the right key read an SSE-C
//! object's bytes or metadata.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cairn_crypto::customer_key::{CustomerKey, KeyCheck, ObjectCipher};
use cairn_storage_engine::ObjectVersion;
use http::{HeaderMap, HeaderValue};
use md5::{Digest, Md5};

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};

const ALGORITHM: &str = "x-amz-server-side-encryption-customer-algorithm";
const KEY: &str = "x-amz-server-side-encryption-customer-key";
const KEY_MD5: &str = "x-amz-server-side-encryption-customer-key-md5";
/// The same three for the source of a copy.
const COPY_SOURCE_HEADERS: [&str; 3] = [
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

/// A customer key a request carried, validated.
pub(crate) struct RequestedKey {
    pub(crate) key: CustomerKey,
    /// As the client sent it (base64 MD5 of the key): echoed in responses.
    pub(crate) key_md5: String,
}

fn invalid(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message)
}

/// The customer key of the request (for the object it writes or reads), if
/// it names one.
pub(crate) fn requested(svc: &ServiceInner, ctx: &RequestCtx) -> S3Result<Option<RequestedKey>> {
    requested_in(svc, ctx, [ALGORITHM, KEY, KEY_MD5])
}

/// The customer key of a copy's source (`x-amz-copy-source-server-side-
/// encryption-customer-*`), if the request names one.
pub(crate) fn requested_for_copy_source(
    svc: &ServiceInner,
    ctx: &RequestCtx,
) -> S3Result<Option<RequestedKey>> {
    requested_in(svc, ctx, COPY_SOURCE_HEADERS)
}

fn requested_in(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    [algorithm_header, key_header, md5_header]: [&str; 3],
) -> S3Result<Option<RequestedKey>> {
    let h = &ctx.parts.headers;
    let get = |name: &str| crate::headers::header_str(h, name).map(str::trim);
    let (algorithm, key, key_md5) = (get(algorithm_header), get(key_header), get(md5_header));
    if algorithm.is_none() && key.is_none() && key_md5.is_none() {
        return Ok(None);
    }
    let Some(algorithm) = algorithm else {
        return Err(invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
        ));
    };
    if algorithm != "AES256" {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidEncryptionAlgorithmError,
            "The encryption request you specified is not valid. The valid value is AES256.",
        ));
    }
    let Some(key) = key else {
        return Err(invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
        ));
    };
    let Some(key_md5) = key_md5 else {
        return Err(invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
        ));
    };
    let bytes = zeroize::Zeroizing::new(BASE64.decode(key).unwrap_or_default());
    let Some(customer_key) = CustomerKey::from_slice(&bytes) else {
        return Err(invalid(
            "The secret key was invalid for the specified algorithm.",
        ));
    };
    if BASE64.encode(Md5::digest(bytes.as_slice())) != key_md5 {
        return Err(invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    if algorithm_header == ALGORITHM && h.contains_key("x-amz-server-side-encryption") {
        return Err(invalid(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        ));
    }
    if !ctx.client.secure && !svc.config.allow_sse_c_over_http {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    Ok(Some(RequestedKey {
        key: customer_key,
        key_md5: key_md5.to_owned(),
    }))
}

/// The cipher that reads `version`, after checking the request's key
/// against it.
pub(crate) fn for_read(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    version: &ObjectVersion,
) -> S3Result<Option<(ObjectCipher, String)>> {
    opener(version, requested(svc, ctx)?)
}

/// The cipher that reads a copy's source `version`, after checking the
/// request's copy-source key against it.
pub(crate) fn for_copy_source(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    version: &ObjectVersion,
) -> S3Result<Option<(ObjectCipher, String)>> {
    opener(version, requested_for_copy_source(svc, ctx)?)
}

fn opener(
    version: &ObjectVersion,
    requested: Option<RequestedKey>,
) -> S3Result<Option<(ObjectCipher, String)>> {
    match (&version.meta.sse_c, requested) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The encryption parameters are not applicable to this object.",
        )),
        (Some(_), None) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (Some(check), Some(r)) if check.matches(&r.key) => {
            Ok(Some((r.key.object_cipher(check), r.key_md5)))
        }
        (Some(_), Some(_)) => Err(S3Error::new(S3ErrorCode::AccessDenied)),
    }
}

/// The cipher of an upload's parts (`base.for_part(n)`) and the key MD5 to
/// echo, after checking the request's key against the upload's.
pub(crate) fn for_upload(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    upload: &cairn_storage_engine::ObjectMetadata,
) -> S3Result<Option<(ObjectCipher, String)>> {
    match (&upload.sse_c, requested(svc, ctx)?) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.",
        )),
        (None, Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The multipart upload initiate did not request encryption. Subsequent part requests must not include encryption parameters.",
        )),
        (Some(check), Some(r)) if check.matches(&r.key) => {
            Ok(Some((r.key.object_cipher(check), r.key_md5)))
        }
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The provided encryption parameters did not match the ones used originally.",
        )),
    }
}

/// Decrypts an SSE-C or SSE-KMS object's bytes from `start` on: a single
/// PUT is one keystream (stream 0); a multipart object's parts each have
/// their own (the recorded `cipher_streams`, or part `i` stream `i + 1`
/// for objects from before they were recorded), so the decryptor switches
/// at part boundaries (`part_sizes`).
pub(crate) struct ObjectDecryptor {
    base: ObjectCipher,
    part_sizes: Vec<u64>,
    streams: Vec<u64>,
    pos: u64,
    current: Option<(ObjectCipher, u64)>,
}

impl ObjectDecryptor {
    pub(crate) fn new(base: ObjectCipher, version: &ObjectVersion, start: u64) -> Self {
        debug_assert!(
            version.meta.cipher_streams.is_empty()
                || version.meta.cipher_streams.len() == version.part_sizes.len()
        );
        ObjectDecryptor {
            base,
            part_sizes: version.part_sizes.clone(),
            streams: version.meta.cipher_streams.clone(),
            pos: start,
            current: None,
        }
    }

    /// The cipher for the byte at `self.pos` and the end of its part.
    fn cipher_at_pos(&self) -> Option<(ObjectCipher, u64)> {
        if self.part_sizes.is_empty() {
            let mut c = self.base.for_stream(0);
            c.seek(self.pos);
            return Some((c, u64::MAX));
        }
        let mut part_start = 0u64;
        for (i, size) in self.part_sizes.iter().enumerate() {
            let part_end = part_start + size;
            if self.pos < part_end {
                let stream = match self.streams.get(i) {
                    Some(s) => *s,
                    None => u64::try_from(i + 1).ok()?,
                };
                let mut c = self.base.for_stream(stream);
                c.seek(self.pos - part_start);
                return Some((c, part_end));
            }
            part_start = part_end;
        }
        None
    }

    pub(crate) fn apply(&mut self, data: bytes::Bytes) -> bytes::Bytes {
        let mut buf = bytes::BytesMut::from(&data[..]);
        let mut done = 0usize;
        while done < buf.len() {
            if self
                .current
                .as_ref()
                .is_none_or(|(_, end)| self.pos >= *end)
            {
                self.current = self.cipher_at_pos();
            }
            let Some((cipher, end)) = &mut self.current else {
                // Beyond the last part: cannot happen for a range of the
                // object; leave the rest as it is rather than loop.
                debug_assert!(false, "SSE-C read beyond the object's parts");
                break;
            };
            let n = (buf.len() - done).min(usize::try_from(*end - self.pos).unwrap_or(usize::MAX));
            cipher.apply(&mut buf[done..done + n]);
            done += n;
            self.pos += n as u64;
        }
        buf.freeze()
    }
}

/// A new object's key check and cipher.
pub(crate) fn for_write(r: &RequestedKey) -> S3Result<(KeyCheck, ObjectCipher)> {
    let check = r.key.new_check().map_err(S3Error::internal)?;
    let cipher = r.key.object_cipher(&check);
    Ok((check, cipher))
}

/// The ETag of an SSE-C object: derived from its key and the plaintext's
/// MD5, never the MD5 itself (see `ObjectCipher::tag`).
pub(crate) fn etag(cipher: &ObjectCipher, md5: &[u8]) -> String {
    hex::encode(cipher.tag(md5))
}

/// The response headers of a request served with a customer key.
pub(crate) fn echo(h: &mut HeaderMap, key_md5: &str) {
    h.insert(ALGORITHM, HeaderValue::from_static("AES256"));
    if let Ok(v) = HeaderValue::from_str(key_md5) {
        h.insert(KEY_MD5, v);
    }
}

/// A copy's bytes from `reader` into `writer` through the ciphers:
/// decrypted with the source's key (`decrypt`), encrypted under the
/// destination's (`encrypt`), either or both absent. Streams piece by
/// piece; returns the MD5 of the plaintext (the copy's ETag, or what its
/// keyed ETag is derived from).
pub(crate) async fn copy_through(
    reader: &mut cairn_storage_engine::ObjectReader,
    mut decrypt: Option<ObjectDecryptor>,
    mut encrypt: Option<&mut ObjectCipher>,
    writer: &mut cairn_storage_engine::ObjectWriter,
) -> S3Result<[u8; 16]> {
    let mut md5 = Md5::new();
    while let Some(piece) = reader.next_bytes().await {
        let piece = piece?;
        let plain = match &mut decrypt {
            Some(d) => d.apply(piece),
            None => piece,
        };
        md5.update(&plain);
        let stored = match &mut encrypt {
            Some(c) => apply(c, plain),
            None => plain,
        };
        writer.write(stored).await?;
    }
    Ok(md5.finalize().into())
}

/// `data` through `cipher` (encrypting and decrypting are the same).
pub(crate) fn apply(cipher: &mut ObjectCipher, data: bytes::Bytes) -> bytes::Bytes {
    let mut buf = bytes::BytesMut::from(&data[..]);
    cipher.apply(&mut buf);
    buf.freeze()
}
