//! Sealing of metadata records at rest (object and version records, upload
//! records, bucket records: what holds user metadata, tags and checksums).
//!
//! Owns the construction and its bytes; it knows nothing of RocksDB or of
//! the records' layout (the storage engine decides which values are sealed
//! and what label binds them).
//!
//! Keys:
//! - the metadata key: `DataRootKey::derive(METADATA_KEY_CONTEXT)`;
//! - a bucket's key: `blake3::keyed_hash(metadata key, "bucket" ‖ id BE)`,
//!   and the store-wide key (records not of one bucket: bucket records,
//!   multipart uploads) `blake3::keyed_hash(metadata key, "store")`;
//! - each sealed value's own key: `blake3::keyed_hash(scope key, salt)`
//!   with a fresh random 16-byte salt, so no key ever seals two values and
//!   the number of writes to one bucket has no nonce-collision bound.
//!
//! Sealed layout: `salt (16) ‖ AES-256-GCM ciphertext ‖ tag (16)`; the GCM
//! nonce is the salt's first 12 bytes (unique per key: each key is used
//! once); AAD `"cairn-metadata-v1" ‖ label` (the caller's label: which
//! table and which row, so a sealed value moved to another row does not
//! open).

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{CryptoError, DerivedKey, KEY_LEN_BYTES, NONCE_LEN_BYTES, TAG_LEN_BYTES};

/// BLAKE3 derivation context of the metadata key.
pub const METADATA_KEY_CONTEXT: &str = "cairn 2026-12 metadata records v1";
const METADATA_AAD_PREFIX: &[u8] = b"cairn-metadata-v1";
/// Length of a sealed value's salt.
pub const SALT_LEN_BYTES: usize = 16;
/// Sealed length minus plaintext length.
pub const METADATA_SEAL_OVERHEAD_BYTES: usize = SALT_LEN_BYTES + TAG_LEN_BYTES;

/// Which key seals a value: one bucket's, or the store-wide one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataScope {
    /// Records of one bucket (its objects and versions), by bucket id.
    Bucket(u64),
    /// Records not of one bucket: bucket records, multipart uploads.
    Store,
}

/// Seals and opens metadata values (see the module docs). Cheap to clone;
/// `Debug` prints no key.
#[derive(Clone)]
pub struct MetadataSealer {
    key: DerivedKey,
}

impl MetadataSealer {
    pub(crate) fn new(key: DerivedKey) -> Self {
        MetadataSealer { key }
    }

    fn scope_key(&self, scope: MetadataScope) -> Zeroizing<[u8; KEY_LEN_BYTES]> {
        let mut h = blake3::Hasher::new_keyed(self.key.as_bytes());
        match scope {
            MetadataScope::Bucket(id) => {
                h.update(b"bucket");
                h.update(&id.to_be_bytes());
            }
            MetadataScope::Store => {
                h.update(b"store");
            }
        }
        Zeroizing::new(*h.finalize().as_bytes())
    }

    fn value_key(
        &self,
        scope: MetadataScope,
        salt: &[u8; SALT_LEN_BYTES],
    ) -> Result<LessSafeKey, CryptoError> {
        let scope_key = self.scope_key(scope);
        let key = Zeroizing::new(*blake3::keyed_hash(&scope_key, salt).as_bytes());
        UnboundKey::new(&AES_256_GCM, &*key)
            .map(LessSafeKey::new)
            .map_err(|_| CryptoError::Authentication)
    }

    /// Appends `salt ‖ ciphertext ‖ tag` of `plaintext`, bound to `label`,
    /// to `out`; on error `out` is as it was.
    pub fn seal_into(
        &self,
        scope: MetadataScope,
        label: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let mut salt = [0u8; SALT_LEN_BYTES];
        getrandom::fill(&mut salt).map_err(CryptoError::Random)?;
        self.seal_with_salt(scope, label, plaintext, &salt, out)
    }

    fn seal_with_salt(
        &self,
        scope: MetadataScope,
        label: &[u8],
        plaintext: &[u8],
        salt: &[u8; SALT_LEN_BYTES],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let key = self.value_key(scope, salt)?;
        let start = out.len();
        out.reserve(plaintext.len() + METADATA_SEAL_OVERHEAD_BYTES);
        out.extend_from_slice(salt);
        out.extend_from_slice(plaintext);
        let tag = key.seal_in_place_separate_tag(
            nonce_of(salt),
            Aad::from(aad(label)),
            &mut out[start + SALT_LEN_BYTES..],
        );
        match tag {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                debug_assert_eq!(
                    out.len() - start,
                    plaintext.len() + METADATA_SEAL_OVERHEAD_BYTES
                );
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(CryptoError::PlaintextTooLarge)
            }
        }
    }

    /// The plaintext of a value [`seal_into`](Self::seal_into) made for the
    /// same scope and label; `Authentication` on any other input.
    pub fn open(
        &self,
        scope: MetadataScope,
        label: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (salt, rest) = sealed
            .split_first_chunk::<SALT_LEN_BYTES>()
            .ok_or(CryptoError::Authentication)?;
        if rest.len() < TAG_LEN_BYTES {
            return Err(CryptoError::Authentication);
        }
        let key = self.value_key(scope, salt)?;
        let mut buf = rest.to_vec();
        let len = key
            .open_in_place(nonce_of(salt), Aad::from(aad(label)), &mut buf)
            .map_err(|_| CryptoError::Authentication)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn nonce_of(salt: &[u8; SALT_LEN_BYTES]) -> Nonce {
    let mut n = [0u8; NONCE_LEN_BYTES];
    n.copy_from_slice(&salt[..NONCE_LEN_BYTES]);
    Nonce::assume_unique_for_key(n)
}

fn aad(label: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(METADATA_AAD_PREFIX.len() + label.len());
    aad.extend_from_slice(METADATA_AAD_PREFIX);
    aad.extend_from_slice(label);
    aad
}

impl fmt::Debug for MetadataSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetadataSealer(..)")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::DataRootKey;

    fn sealer(root: u8) -> MetadataSealer {
        DataRootKey::from_bytes([root; 32]).metadata_sealer()
    }

    fn seal(s: &MetadataSealer, scope: MetadataScope, label: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0xEE];
        s.seal_into(scope, label, plain, &mut out).unwrap();
        assert_eq!(out[0], 0xEE, "seal_into appends");
        out.remove(0);
        out
    }

    proptest! {
        #[test]
        fn round_trips(plain in proptest::collection::vec(any::<u8>(), 0..600), id in any::<u64>(), label in proptest::collection::vec(any::<u8>(), 0..40)) {
            let s = sealer(3);
            let sealed = seal(&s, MetadataScope::Bucket(id), &label, &plain);
            prop_assert_eq!(sealed.len(), plain.len() + METADATA_SEAL_OVERHEAD_BYTES);
            prop_assert_eq!(s.open(MetadataScope::Bucket(id), &label, &sealed).unwrap(), plain);
        }

        #[test]
        fn any_flipped_bit_is_refused(plain in proptest::collection::vec(any::<u8>(), 1..200), bit in any::<usize>()) {
            let s = sealer(3);
            let mut sealed = seal(&s, MetadataScope::Store, b"l", &plain);
            let bit = bit % (sealed.len() * 8);
            sealed[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(s.open(MetadataScope::Store, b"l", &sealed).is_err());
        }
    }

    #[test]
    fn the_wrong_scope_label_or_root_does_not_open() {
        let s = sealer(3);
        let sealed = seal(
            &s,
            MetadataScope::Bucket(7),
            b"objects/k",
            b"x-amz-meta-secret",
        );
        assert!(
            s.open(MetadataScope::Bucket(8), b"objects/k", &sealed)
                .is_err()
        );
        assert!(s.open(MetadataScope::Store, b"objects/k", &sealed).is_err());
        assert!(
            s.open(MetadataScope::Bucket(7), b"objects/j", &sealed)
                .is_err()
        );
        assert!(
            sealer(4)
                .open(MetadataScope::Bucket(7), b"objects/k", &sealed)
                .is_err()
        );
        assert!(
            s.open(MetadataScope::Bucket(7), b"objects/k", &sealed[..20])
                .is_err()
        );
        // The plaintext does not appear in the sealed bytes, and two seals
        // of the same value differ (fresh salt, so a fresh key).
        let again = seal(
            &s,
            MetadataScope::Bucket(7),
            b"objects/k",
            b"x-amz-meta-secret",
        );
        assert_ne!(sealed, again);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn derivation_regression_pin() {
        // Regression pin of our own construction (not an external vector):
        // if this changes, every sealed metadata record becomes unreadable.
        let s = sealer(7);
        let mut out = Vec::new();
        s.seal_with_salt(
            MetadataScope::Bucket(1),
            b"pin",
            b"cairn",
            &[9u8; SALT_LEN_BYTES],
            &mut out,
        )
        .unwrap();
        assert_eq!(hex::encode(&out), PINNED_SEALED);
        assert_eq!(
            s.open(MetadataScope::Bucket(1), b"pin", &out).unwrap(),
            b"cairn"
        );
    }

    const PINNED_SEALED: &str =
        "09090909090909090909090909090909c457e50d7a26631c9b6f8e6270a0dffc9350e538d5";
}
