//! SSE-KMS envelope encryption: the key-service keys' material and the
//! per-object data keys they wrap.
//!
//! Owns: [`KmsKeyMaterial`] (one version of a key-service key: 32 random
//! bytes, stored sealed under the data root by the storage engine), the
//! per-object [`DataKey`] (32 random bytes, never stored in the clear),
//! wrapping a data key under a material with AES-256-GCM and the object's
//! binding as associated data ([`wrap_aad`]), and the object's cipher
//! derived from the data key (the same AES-256-CTR keystream SSE-C uses,
//! [`crate::customer_key::ObjectCipher`]).
//!
//! An object's bytes are encrypted with its data key *before* the normal
//! pipeline (chunking, dedup, zstd, AES-256-GCM under the data root,
//! erasure coding). Every object has its own random data key, so no two
//! SSE-KMS objects share a chunk: disabling a key makes exactly its objects
//! unreadable, and nothing about one object's content is recognisable from
//! another's. Rotating a key adds a material version; objects keep the
//! version their data key was wrapped under, so rotation rewrites no data.
//!
//! Must never: log or print key material (`Debug` is redacted); wrap
//! without binding the key id, version and object (a wrapped key moved to
//! another object or key must not open); reuse a data key for a second
//! object.

use std::fmt;

use zeroize::Zeroizing;

use crate::customer_key::ObjectCipher;
use crate::{CryptoError, KEY_LEN_BYTES, SecretSealer, open_with_key, seal_with_key};

/// BLAKE3 derivation context of an SSE-KMS object's cipher key from its
/// data key. Part of the stored format.
pub const SSE_KMS_OBJECT_KEY_CONTEXT: &str = "cairn 2026-12 sse-kms object key v1";
/// Associated-data prefix of a wrapped data key. Part of the stored format.
const WRAP_AAD_PREFIX: &[u8] = b"cairn-sse-kms-v1";
/// Length of a wrapped data key: nonce, the 32 key bytes, tag.
pub const WRAPPED_DATA_KEY_LEN_BYTES: usize = KEY_LEN_BYTES + crate::SEAL_OVERHEAD_BYTES;

/// One version of a key-service key's material.
pub struct KmsKeyMaterial(Zeroizing<[u8; KEY_LEN_BYTES]>);

impl KmsKeyMaterial {
    /// New random material (a key's creation or rotation).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN_BYTES]);
        getrandom::fill(&mut *bytes).map_err(CryptoError::Random)?;
        Ok(KmsKeyMaterial(bytes))
    }

    /// The material sealed for storage under the data root's
    /// stored-secrets key, bound to `label` (the key id and version).
    pub fn seal(&self, sealer: &SecretSealer, label: &[u8]) -> Result<Vec<u8>, CryptoError> {
        sealer.seal(label, &*self.0)
    }

    /// Material [`seal`](Self::seal)ed under `label`, opened.
    pub fn open(sealer: &SecretSealer, label: &[u8], sealed: &[u8]) -> Result<Self, CryptoError> {
        let plain = Zeroizing::new(sealer.open(label, sealed)?);
        let raw: [u8; KEY_LEN_BYTES] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Authentication)?;
        Ok(KmsKeyMaterial(Zeroizing::new(raw)))
    }

    /// `data_key` sealed under this material, bound to `aad`
    /// ([`wrap_aad`]): `nonce || ciphertext || tag`.
    pub fn wrap(&self, data_key: &DataKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let wrapped = seal_with_key(&self.0, aad, &*data_key.0)?;
        debug_assert_eq!(wrapped.len(), WRAPPED_DATA_KEY_LEN_BYTES);
        Ok(wrapped)
    }

    /// The data key `wrapped` holds, if it was wrapped under this material
    /// with the same `aad`.
    pub fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, CryptoError> {
        let plain = Zeroizing::new(open_with_key(&self.0, aad, wrapped)?);
        let raw: [u8; KEY_LEN_BYTES] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Authentication)?;
        Ok(DataKey(Zeroizing::new(raw)))
    }
}

impl fmt::Debug for KmsKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KmsKeyMaterial(..)")
    }
}

/// One object's data key.
pub struct DataKey(Zeroizing<[u8; KEY_LEN_BYTES]>);

impl DataKey {
    /// A new random data key (one per object or multipart upload).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN_BYTES]);
        getrandom::fill(&mut *bytes).map_err(CryptoError::Random)?;
        Ok(DataKey(bytes))
    }

    /// The object's cipher (part 0, offset 0; `for_part` for an upload's
    /// parts).
    pub fn object_cipher(&self) -> ObjectCipher {
        ObjectCipher::with_key(Zeroizing::new(blake3::derive_key(
            SSE_KMS_OBJECT_KEY_CONTEXT,
            &*self.0,
        )))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// The associated data binding a wrapped data key to its key-service key
/// (`key_id`, material `version`), the object it encrypts (`bucket`,
/// `object_key`) and the client's encryption context as stored
/// (`context`, empty when none). Every field is length-prefixed, so no two
/// different bindings give the same bytes.
pub fn wrap_aad(
    key_id: &str,
    version: u32,
    bucket: &str,
    object_key: &str,
    context: &str,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        WRAP_AAD_PREFIX.len()
            + 4
            + 4 * 4
            + key_id.len()
            + bucket.len()
            + object_key.len()
            + context.len(),
    );
    aad.extend_from_slice(WRAP_AAD_PREFIX);
    aad.extend_from_slice(&version.to_be_bytes());
    for field in [key_id, bucket, object_key, context] {
        aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_under_its_material_and_binding() {
        let m = KmsKeyMaterial::generate().unwrap();
        let other = KmsKeyMaterial::generate().unwrap();
        let dk = DataKey::generate().unwrap();
        let aad = wrap_aad("k1", 1, "b", "o", "");
        let wrapped = m.wrap(&dk, &aad).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_DATA_KEY_LEN_BYTES);
        let back = m.unwrap(&wrapped, &aad).unwrap();
        // The same data key: the same keystream.
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        dk.object_cipher().apply(&mut a);
        back.object_cipher().apply(&mut b);
        assert_eq!(a, b);
        assert!(other.unwrap(&wrapped, &aad).is_err());
        for moved in [
            wrap_aad("k2", 1, "b", "o", ""),
            wrap_aad("k1", 2, "b", "o", ""),
            wrap_aad("k1", 1, "b2", "o", ""),
            wrap_aad("k1", 1, "b", "o2", ""),
            wrap_aad("k1", 1, "b", "o", "e30="),
            // Length prefixes: moving a byte between fields changes the AAD.
            wrap_aad("k1", 1, "bo", "", ""),
        ] {
            assert!(m.unwrap(&wrapped, &moved).is_err());
        }
        let mut flipped = wrapped.clone();
        flipped[20] ^= 1;
        assert!(m.unwrap(&flipped, &aad).is_err());
    }

    #[test]
    fn every_data_key_is_new_and_nothing_prints_key_material() {
        let (a, b) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.object_cipher().apply(&mut x);
        b.object_cipher().apply(&mut y);
        assert_ne!(x, y);
        let m = KmsKeyMaterial::generate().unwrap();
        assert_eq!(format!("{a:?} {m:?}"), "DataKey(..) KmsKeyMaterial(..)");
        // Sealed for storage: opens only under its label.
        let sealer = crate::DataRootKey::from_bytes([7; 32]).secret_sealer();
        let sealed = m.seal(&sealer, b"kms-key/x/1").unwrap();
        let opened = KmsKeyMaterial::open(&sealer, b"kms-key/x/1", &sealed).unwrap();
        let wrapped = m.wrap(&a, b"").unwrap();
        assert!(opened.unwrap(&wrapped, b"").is_ok());
        assert!(KmsKeyMaterial::open(&sealer, b"kms-key/x/2", &sealed).is_err());
    }
}
