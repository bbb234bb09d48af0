//! Access keys: their ids, sealed secrets and grants, in the `system`
//! column family.
//!
//! On disk, per key id:
//! - `access-key/<id>` → the secret, sealed with a key derived from the
//!   master key (AES-256-GCM, the id as associated data);
//! - `access-key-info/<id>` → an [`AccessKeyRecord`] (name, created, admin
//!   flag, bucket grants). A key without it predates grants: it is an admin
//!   key named "".
//!
//! Both are written in one batch. Changes are serialised by `key_lock` so
//! that read-modify-write of grants and the "last admin key" check are
//! atomic.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{CF_SYSTEM, System, prefix_successor};
use crate::records::{AccessKeyRecord, BucketGrant};

/// Most access keys a server stores (keeps the in-memory key ring small).
pub const ACCESS_KEYS_MAX: usize = 10_000;

const SECRET_PREFIX: &str = "access-key/";
const INFO_PREFIX: &str = "access-key-info/";

/// A stored access key with its secret opened.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAccessKey {
    pub id: String,
    pub secret: String,
    pub record: AccessKeyRecord,
}

impl std::fmt::Debug for StoredAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAccessKey")
            .field("id", &self.id)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Draws `n` characters uniformly from `alphabet` (≤ 256 symbols).
fn random_string(alphabet: &[u8], n: usize) -> String {
    debug_assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    // Rejection sampling: only bytes below the largest multiple of the
    // alphabet size are used, so every symbol is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in crate::random_bytes::<64>() {
            if usize::from(b) < limit && out.len() < n {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

/// New random credentials in the usual shapes: a 20-character key id
/// (`CK` + 18 base32 characters) and a 40-character alphanumeric secret
/// (≈ 238 bits).
pub fn generate_credentials() -> (String, String) {
    const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let id = format!("CK{}", random_string(ID_ALPHABET, 18));
    (id, random_string(SECRET_ALPHABET, 40))
}

/// An access key id as S3 clients send it: 1–128 characters of
/// `[A-Za-z0-9_.-]` (no `/`, which ends the id in a SigV4 credential).
pub fn valid_access_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Engine {
    /// The canonical user id of access key `id`, as S3 responses name an
    /// owner: 64 hex digits of a BLAKE3 keyed hash under a key derived from
    /// the data root — stable, the same on every node, and revealing
    /// nothing of the access key id (which it never shows).
    pub fn canonical_user_id(&self, id: &str) -> String {
        let digest = blake3::keyed_hash(self.inner.keys.canonical_id_key.as_bytes(), id.as_bytes());
        hex::encode(digest.as_bytes())
    }

    fn open_secret(&self, id: &str, sealed: &[u8]) -> EngineResult<String> {
        let plain = self
            .inner
            .keys
            .sealer
            .open(id.as_bytes(), sealed)
            .map_err(|_| {
                EngineError::Corrupt(format!(
                    "stored secret of {id} does not open with this master key"
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| EngineError::Corrupt("stored secret is not UTF-8".into()))
    }

    fn access_key_record(&self, id: &str) -> EngineResult<AccessKeyRecord> {
        match self
            .inner
            .meta
            .get::<System>(&format!("{INFO_PREFIX}{id}"))?
        {
            Some(bytes) => Ok(AccessKeyRecord::decode(&bytes)?),
            None => Ok(AccessKeyRecord {
                expires_ms: None,
                name: String::new(),
                created_ms: 0,
                admin: true,
                grants: Vec::new(),
            }),
        }
    }

    /// One stored access key, if it exists.
    pub fn access_key(&self, id: &str) -> EngineResult<Option<StoredAccessKey>> {
        let Some(sealed) = self
            .inner
            .meta
            .get::<System>(&format!("{SECRET_PREFIX}{id}"))?
        else {
            return Ok(None);
        };
        Ok(Some(StoredAccessKey {
            id: id.to_owned(),
            secret: self.open_secret(id, &sealed)?,
            record: self.access_key_record(id)?,
        }))
    }

    /// Every stored (id, sealed secret) pair, by id.
    fn sealed_secrets(&self) -> EngineResult<Vec<(String, Vec<u8>)>> {
        let prefix = SECRET_PREFIX.as_bytes().to_vec();
        let mut it = self
            .inner
            .meta
            .range_iter(CF_SYSTEM, prefix_successor(&prefix))?;
        it.seek(&prefix);
        let mut sealed = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if let Ok(id) = std::str::from_utf8(&k[prefix.len()..]) {
                sealed.push((id.to_owned(), v.to_vec()));
            }
            it.next();
        }
        it.status()?;
        Ok(sealed)
    }

    /// The ids of every stored access key, in order (nothing decrypted).
    pub fn access_key_ids(&self) -> EngineResult<Vec<String>> {
        Ok(self
            .sealed_secrets()?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Every readable stored access key, by id (an unreadable one is logged
    /// and left out).
    pub fn access_keys(&self) -> EngineResult<Vec<StoredAccessKey>> {
        let sealed = self.sealed_secrets()?;
        let mut keys = Vec::with_capacity(sealed.len());
        for (id, s) in sealed {
            let opened = self
                .open_secret(&id, &s)
                .and_then(|secret| Ok((secret, self.access_key_record(&id)?)));
            match opened {
                Ok((secret, record)) => keys.push(StoredAccessKey { id, secret, record }),
                // Such a key cannot sign anything; it is left out, not fatal.
                Err(e) => tracing::error!(key = %id, error = %e, "access key unreadable; skipped"),
            }
        }
        Ok(keys)
    }

    /// Stores a key with a known id and secret (replacing one with that
    /// id). Secrets are sealed; they are never written in plaintext.
    pub async fn put_access_key(
        &self,
        id: &str,
        secret: &str,
        record: AccessKeyRecord,
    ) -> EngineResult<()> {
        if !valid_access_key_id(id) {
            return Err(EngineError::InvalidAccessKey(format!(
                "{id:?} is not a valid access key id (1-128 of A-Z a-z 0-9 _ . -)"
            )));
        }
        let _guard = self.inner.keys.lock.lock().await;
        self.write_access_key(id, secret, record).await
    }

    async fn write_access_key(
        &self,
        id: &str,
        secret: &str,
        mut record: AccessKeyRecord,
    ) -> EngineResult<()> {
        record.grants.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        // A prefix grant is the key's only grant on its bucket: merged with
        // another, it would become a whole-bucket grant (or lose a right).
        if let Some(w) = record.grants.windows(2).find(|w| {
            w[0].bucket == w[1].bucket && (!w[0].prefix.is_empty() || !w[1].prefix.is_empty())
        }) {
            return Err(EngineError::InvalidAccessKey(format!(
                "a prefix grant must be the key's only grant on bucket {:?}",
                w[0].bucket
            )));
        }
        // Two grants on one bucket: the key gets the rights of both.
        record.grants.dedup_by(|later, first| {
            let same = later.bucket == first.bucket;
            if same {
                first.read |= later.read;
                first.write |= later.write;
            }
            same
        });
        let sealed = self
            .inner
            .keys
            .sealer
            .seal(id.as_bytes(), secret.as_bytes())
            .map_err(EngineError::Crypto)?;
        let inner = self.inner.clone();
        let (secret_name, info_name) =
            (format!("{SECRET_PREFIX}{id}"), format!("{INFO_PREFIX}{id}"));
        blocking(move || {
            let mut b = inner.meta.batch();
            b.put::<System>(&secret_name, &sealed);
            b.put::<System>(&info_name, &record.encode());
            inner.meta.write(b)
        })
        .await
    }

    /// Creates a key with new random credentials.
    pub async fn create_access_key(
        &self,
        record: AccessKeyRecord,
    ) -> EngineResult<StoredAccessKey> {
        let _guard = self.inner.keys.lock.lock().await;
        if self.access_key_ids()?.len() >= ACCESS_KEYS_MAX {
            return Err(EngineError::InvalidAccessKey(format!(
                "this server already stores {ACCESS_KEYS_MAX} access keys, the most it keeps"
            )));
        }
        let (id, secret) = generate_credentials();
        self.write_access_key(&id, &secret, record).await?;
        self.access_key(&id)?
            .ok_or_else(|| EngineError::Internal("a created access key vanished".into()))
    }

    /// Sets (or, with neither `read` nor `write`, removes) `grant.bucket`'s
    /// grant of key `id`; returns the key as it now is.
    pub async fn set_access_key_grant(
        &self,
        id: &str,
        grant: BucketGrant,
    ) -> EngineResult<StoredAccessKey> {
        let _guard = self.inner.keys.lock.lock().await;
        let mut key = self.access_key(id)?.ok_or(EngineError::NoSuchAccessKey)?;
        key.record.grants.retain(|g| g.bucket != grant.bucket);
        if grant.read || grant.write {
            key.record.grants.push(grant);
        }
        self.write_access_key(&key.id, &key.secret, key.record)
            .await?;
        self.access_key(id)?.ok_or(EngineError::NoSuchAccessKey)
    }

    /// Deletes key `id`. With `keep_one_admin`, refuses to delete the last
    /// stored admin key (so the server cannot lock its operators out).
    pub async fn delete_access_key(&self, id: &str, keep_one_admin: bool) -> EngineResult<()> {
        let _guard = self.inner.keys.lock.lock().await;
        let keys = self.access_keys()?;
        let Some(key) = keys.iter().find(|k| k.id == id) else {
            return Err(EngineError::NoSuchAccessKey);
        };
        if keep_one_admin && key.record.admin && !keys.iter().any(|k| k.id != id && k.record.admin)
        {
            return Err(EngineError::InvalidAccessKey(
                "it is the last admin key; create another admin key first".into(),
            ));
        }
        let inner = self.inner.clone();
        let (secret_name, info_name) =
            (format!("{SECRET_PREFIX}{id}"), format!("{INFO_PREFIX}{id}"));
        blocking(move || {
            let mut b = inner.meta.batch();
            b.delete::<System>(&secret_name);
            b.delete::<System>(&info_name);
            inner.meta.write(b)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_have_the_usual_shapes() {
        let (id, secret) = generate_credentials();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("CK") && valid_access_key_id(&id));
        assert_eq!(secret.len(), 40);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(generate_credentials(), generate_credentials());
        assert!(!valid_access_key_id("a/b"));
        assert!(!valid_access_key_id(""));
    }
}
