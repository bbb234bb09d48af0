//! SSE-C: objects encrypted under a key the client sends with every
//! request and Cairn never stores.
//!
//! Owns: the customer key ([`CustomerKey`]: 32 bytes, zeroized on drop,
//! never printed), what an object keeps to recognise it ([`KeyCheck`]: a
//! random salt and a keyed BLAKE3 of the key — no key material), the
//! object's own key derived from the customer key and that salt, and the
//! AES-256-CTR keystream over the object's bytes ([`ObjectCipher`]),
//! seekable so that a range read decrypts from any offset.
//!
//! The object's bytes are encrypted with this cipher *before* the normal
//! pipeline (chunking, dedup, zstd, AES-256-GCM under the master key,
//! erasure coding) sees them: without the customer key the stored chunks
//! are ciphertext whatever else an attacker holds, and since every object
//! has its own salt, and so its own key, no two SSE-C objects share a chunk
//! (nothing about one object's content is recognisable from another's).
//! Integrity comes from the pipeline's AEAD and content ids over those
//! bytes.
//!
//! Must never: keep, log or compare the key other than through
//! [`KeyCheck::matches`] (constant time); reuse an object key with another
//! salt's counter space (each object key encrypts one object, counter from
//! 0 at its first byte).

use std::fmt;

use aes::Aes256;
use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use zeroize::Zeroizing;

use crate::{CryptoError, KEY_LEN_BYTES};

/// BLAKE3 derivation context of an object's key: from the customer key and
/// the object's salt. Part of the stored format.
pub const SSE_C_OBJECT_KEY_CONTEXT: &str = "cairn 2026-12 sse-c object key v1";
/// BLAKE3 derivation context of the key check's key. Part of the stored
/// format.
pub const SSE_C_KEY_CHECK_CONTEXT: &str = "cairn 2026-12 sse-c key check v1";
/// Bytes of salt per object.
pub const SSE_C_SALT_LEN_BYTES: usize = 16;

/// A customer-provided key (`x-amz-server-side-encryption-customer-key`).
pub struct CustomerKey(Zeroizing<[u8; KEY_LEN_BYTES]>);

impl CustomerKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN_BYTES]) -> Self {
        CustomerKey(Zeroizing::new(bytes))
    }

    /// The key in `bytes`, copied into zeroized storage; `None` unless it
    /// is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN_BYTES {
            return None;
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN_BYTES]);
        key.copy_from_slice(bytes);
        Some(CustomerKey(key))
    }

    /// The key check of a new object: a fresh random salt.
    pub fn new_check(&self) -> Result<KeyCheck, CryptoError> {
        let mut salt = [0u8; SSE_C_SALT_LEN_BYTES];
        getrandom::fill(&mut salt).map_err(CryptoError::Random)?;
        Ok(KeyCheck {
            salt,
            digest: self.digest(&salt),
        })
    }

    fn digest(&self, salt: &[u8; SSE_C_SALT_LEN_BYTES]) -> [u8; 32] {
        let check_key = Zeroizing::new(blake3::derive_key(SSE_C_KEY_CHECK_CONTEXT, &*self.0));
        *blake3::keyed_hash(&check_key, salt).as_bytes()
    }

    /// The cipher of the object whose key check is `check` (the caller has
    /// verified the key with [`KeyCheck::matches`]).
    pub fn object_cipher(&self, check: &KeyCheck) -> ObjectCipher {
        let mut material = Zeroizing::new([0u8; KEY_LEN_BYTES + SSE_C_SALT_LEN_BYTES]);
        material[..KEY_LEN_BYTES].copy_from_slice(&*self.0);
        material[KEY_LEN_BYTES..].copy_from_slice(&check.salt);
        ObjectCipher::with_key(Zeroizing::new(blake3::derive_key(
            SSE_C_OBJECT_KEY_CONTEXT,
            &*material,
        )))
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

/// What an SSE-C object keeps of its key: a random salt and a keyed hash of
/// the key under it. Neither reveals the key (a 256-bit secret).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck {
    pub salt: [u8; SSE_C_SALT_LEN_BYTES],
    pub digest: [u8; 32],
}

impl KeyCheck {
    /// Whether `key` is the object's key (constant time).
    pub fn matches(&self, key: &CustomerKey) -> bool {
        let got = key.digest(&self.salt);
        // Constant time: accumulate every byte's difference.
        got.iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for KeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyCheck(..)")
    }
}

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// A new random keystream id for one uploaded part: the top bit set, so it
/// is never 0 (a single PUT's) nor a part number (1…10000, how parts were
/// keyed before). 63 random bits: two parts of one object colliding is
/// not a practical event.
pub fn new_part_stream() -> Result<u64, CryptoError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(CryptoError::Random)?;
    Ok(u64::from_be_bytes(b) | (1 << 63))
}

/// AES-256-CTR over one object's bytes. The object key is used for this
/// object only; its 128-bit counter block is the stream id (0 for a single
/// PUT; for a multipart upload's part a random id of its own, or the part
/// number for parts written before those) in the high 64 bits and the
/// block index within that part in the low 64, so no two blocks of an
/// object ever share a keystream block.
pub struct ObjectCipher {
    key: Zeroizing<[u8; KEY_LEN_BYTES]>,
    part: u64,
    stream: Option<Aes256Ctr>,
    offset: u64,
}

impl ObjectCipher {
    /// The cipher of an object whose key is `key` (SSE-KMS: derived from
    /// its data key), at part 0, offset 0.
    pub(crate) fn with_key(key: Zeroizing<[u8; KEY_LEN_BYTES]>) -> ObjectCipher {
        ObjectCipher {
            key,
            part: 0,
            stream: None,
            offset: 0,
        }
    }

    /// The cipher of part `part_number` (1…10000) of a multipart object,
    /// at the part's first byte: keystream `part_number` (how parts were
    /// encrypted before each part had its own random keystream; see
    /// [`ObjectCipher::for_stream`]).
    pub fn for_part(&self, part_number: u32) -> ObjectCipher {
        self.for_stream(u64::from(part_number))
    }

    /// The cipher of keystream `stream` (the counter block's high half) at
    /// its first byte. A single PUT is stream 0; a part uploaded now gets a
    /// random stream ([`new_part_stream`]), so uploading a part number
    /// again never reuses a keystream.
    pub fn for_stream(&self, stream: u64) -> ObjectCipher {
        ObjectCipher {
            key: self.key.clone(),
            part: stream,
            stream: None,
            offset: 0,
        }
    }

    /// Positions the keystream at byte `offset` of the object.
    pub fn seek(&mut self, offset: u64) {
        self.offset = offset;
        if let Some(s) = &mut self.stream {
            s.seek(offset);
        }
    }

    /// Encrypts or decrypts (the same operation) the next bytes in place.
    pub fn apply(&mut self, data: &mut [u8]) {
        let part = self.part;
        let stream = self.stream.get_or_insert_with(|| {
            let mut iv = [0u8; 16];
            iv[..8].copy_from_slice(&part.to_be_bytes());
            let mut s = Aes256Ctr::new((&*self.key).into(), &iv.into());
            s.seek(self.offset);
            s
        });
        stream.apply_keystream(data);
        self.offset += data.len() as u64;
    }

    /// A value derived from the object key and `data` (16 bytes): what an
    /// SSE-C object reports as its ETag instead of the MD5 of its
    /// plaintext, which would let anyone who may list the bucket confirm a
    /// guess of the content.
    pub fn tag(&self, data: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&blake3::keyed_hash(&self.key, data).as_bytes()[..16]);
        out
    }
}

impl fmt::Debug for ObjectCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectCipher")
            .field("part", &self.part)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CustomerKey {
        CustomerKey::from_bytes([b; 32])
    }

    #[test]
    fn the_check_recognises_only_its_key() {
        let k = key(7);
        let check = k.new_check().unwrap();
        assert!(check.matches(&k));
        assert!(!check.matches(&key(8)));
        // A fresh salt every time: two objects never share a check.
        assert_ne!(k.new_check().unwrap().salt, check.salt);
    }

    #[test]
    fn encrypting_twice_is_the_identity_and_seeking_matches_streaming() {
        let k = key(1);
        let check = k.new_check().unwrap();
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = plain.clone();
        k.object_cipher(&check).apply(&mut whole);
        assert_ne!(whole, plain);
        // In pieces of odd sizes: the same bytes.
        let mut pieces = plain.clone();
        let mut c = k.object_cipher(&check);
        for piece in pieces.chunks_mut(333) {
            c.apply(piece);
        }
        assert_eq!(pieces, whole);
        // From an offset inside a block.
        let mut tail = whole[4097..].to_vec();
        let mut c = k.object_cipher(&check);
        c.seek(4097);
        c.apply(&mut tail);
        assert_eq!(tail, plain[4097..]);
        // Each part has its own keystream.
        let base = k.object_cipher(&check);
        let mut p1 = plain.clone();
        base.for_part(1).apply(&mut p1);
        let mut p2 = plain.clone();
        base.for_part(2).apply(&mut p2);
        assert!(p1 != whole && p2 != whole && p1 != p2);
        let mut back = p2[100..].to_vec();
        let mut c = base.for_part(2);
        c.seek(100);
        c.apply(&mut back);
        assert_eq!(back, plain[100..]);
        // Another object of the same key: other bytes (its own salt).
        let mut other = plain.clone();
        k.object_cipher(&k.new_check().unwrap()).apply(&mut other);
        assert_ne!(other, whole);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = key(0xab);
        let check = k.new_check().unwrap();
        let shown = format!("{k:?} {check:?} {:?}", k.object_cipher(&check));
        assert_eq!(
            shown,
            "CustomerKey(..) KeyCheck(..) ObjectCipher { part: 0, offset: 0, .. }"
        );
    }
}
