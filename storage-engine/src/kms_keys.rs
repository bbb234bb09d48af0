//! The built-in key service's keys (SSE-KMS), in the `system` column
//! family, replicated with the rest of the metadata on a cluster.
//!
//! On disk, per key:
//! - `kms-key/<id>` → a [`KmsKeyRecord`]: alias, description, creation
//!   time, enabled flag and every material version, each sealed under the
//!   data root (the stored-secrets sealer, label `kms-key/<id>/<version>`,
//!   so a sealed material moved to another key or version does not open);
//! - `kms-alias/<alias>` → the id, written in the same batch as the key.
//!
//! Keys are never deleted (an object's data key stays wrapped under its
//! key's version forever); disabling one makes its objects unreadable until
//! it is enabled again. Rotation appends a material version: new objects
//! take the newest, and `kms_rewrap.rs` moves existing objects' envelopes
//! to it (no data rewritten); older versions are kept.
//!
//! Must never: return or log material other than through [`KmsKeyMaterial`]
//! (redacted `Debug`); drop a material version (objects would become
//! unreadable); overwrite a key record a concurrent writer changed (every
//! change is guarded on the record it read, so on a cluster two nodes
//! rotating at once cannot lose a version).

use cairn_crypto::kms::KmsKeyMaterial;

use crate::codec::{RecordReader, RecordWriter};
use crate::engine::{Engine, blocking};
use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta::{CF_SYSTEM, System, prefix_successor};

/// Most key-service keys a server stores.
pub const KMS_KEYS_MAX: usize = 1_000;
/// Most material versions of one key (rotations + 1).
pub const KMS_KEY_VERSIONS_MAX: usize = 10_000;
/// The alias of the key S3 uses when a request asks for `aws:kms` without
/// naming a key (S3's AWS managed key `aws/s3`), created on first use.
pub const DEFAULT_KMS_ALIAS: &str = "aws/s3";

const KEY_PREFIX: &str = "kms-key/";
const ALIAS_PREFIX: &str = "kms-alias/";
const KMS_KEY_FORMAT_V1: u8 = 1;

/// What is stored of one key.
#[derive(Clone, PartialEq, Eq)]
pub struct KmsKeyRecord {
    /// Empty: no alias.
    pub alias: String,
    pub description: String,
    pub created_ms: u64,
    pub enabled: bool,
    /// Material version `i + 1`, sealed.
    pub sealed_versions: Vec<Vec<u8>>,
}

impl KmsKeyRecord {
    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(KMS_KEY_FORMAT_V1);
        w.str(&self.alias)
            .str(&self.description)
            .u64(self.created_ms)
            .u8(u8::from(self.enabled))
            .u32(self.sealed_versions.len() as u32);
        for v in &self.sealed_versions {
            w.bytes(v);
        }
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "kms key");
        let version = r.u8()?;
        if version != KMS_KEY_FORMAT_V1 {
            return Err(CodecError::UnknownVersion {
                what: "kms key",
                version,
            });
        }
        let alias = r.string()?;
        let description = r.string()?;
        let created_ms = r.u64()?;
        let enabled = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(CodecError::Invalid("kms key")),
        };
        let n = r.count(4)?;
        let mut sealed_versions = Vec::with_capacity(n);
        for _ in 0..n {
            sealed_versions.push(r.bytes()?.to_vec());
        }
        r.finish()?;
        if sealed_versions.is_empty() {
            return Err(CodecError::Invalid("kms key"));
        }
        Ok(KmsKeyRecord {
            alias,
            description,
            created_ms,
            enabled,
            sealed_versions,
        })
    }
}

/// A key as the admin API and S3 handlers see it (no material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKeyInfo {
    /// A UUID (lowercase, 8-4-4-4-12).
    pub id: String,
    /// Empty: no alias.
    pub alias: String,
    pub description: String,
    pub created_ms: u64,
    pub enabled: bool,
    /// Material versions (1 + rotations); the newest wraps new objects.
    pub versions: u32,
}

impl KmsKeyInfo {
    fn from_record(id: &str, r: &KmsKeyRecord) -> Self {
        KmsKeyInfo {
            id: id.to_owned(),
            alias: r.alias.clone(),
            description: r.description.clone(),
            created_ms: r.created_ms,
            enabled: r.enabled,
            versions: r.sealed_versions.len() as u32,
        }
    }
}

/// An alias as KMS allows it after `alias/`: 1–250 of `[A-Za-z0-9/_-]`;
/// `aws/…` is reserved (only the default key has one, made by Cairn).
pub fn valid_kms_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 250
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
}

/// Whether `id` has the shape of a key id (a lowercase UUID).
pub fn valid_kms_key_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }
        })
}

/// A new random key id (UUID version 4 layout).
fn new_key_id() -> String {
    let mut b = crate::random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn key_name(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

fn alias_name(alias: &str) -> String {
    format!("{ALIAS_PREFIX}{alias}")
}

fn seal_label(id: &str, version: usize) -> Vec<u8> {
    format!("{KEY_PREFIX}{id}/{version}").into_bytes()
}

impl Engine {
    fn kms_record(&self, id: &str) -> EngineResult<Option<KmsKeyRecord>> {
        match self.inner.meta.get::<System>(&key_name(id))? {
            Some(bytes) => Ok(Some(KmsKeyRecord::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Key `id`, if it exists.
    pub fn kms_key(&self, id: &str) -> EngineResult<Option<KmsKeyInfo>> {
        if !valid_kms_key_id(id) {
            return Ok(None);
        }
        Ok(self
            .kms_record(id)?
            .map(|r| KmsKeyInfo::from_record(id, &r)))
    }

    /// The key alias `alias` names (without `alias/`), if any.
    pub fn kms_key_by_alias(&self, alias: &str) -> EngineResult<Option<KmsKeyInfo>> {
        if !valid_kms_alias(alias) {
            return Ok(None);
        }
        match self.inner.meta.get::<System>(&alias_name(alias))? {
            Some(id) => match String::from_utf8(id) {
                Ok(id) => self.kms_key(&id),
                Err(_) => Err(EngineError::Corrupt(format!(
                    "kms alias {alias} names no valid key id"
                ))),
            },
            None => Ok(None),
        }
    }

    /// Every key, by id.
    pub fn kms_keys(&self) -> EngineResult<Vec<KmsKeyInfo>> {
        let prefix = KEY_PREFIX.as_bytes().to_vec();
        let mut it = self
            .inner
            .meta
            .range_iter(CF_SYSTEM, prefix_successor(&prefix))?;
        it.seek(&prefix);
        let mut keys = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            keys.push(KmsKeyInfo::from_record(&id, &KmsKeyRecord::decode(v)?));
            it.next();
        }
        it.status()?;
        Ok(keys)
    }

    /// Key `id` and its material version `version` (1, 2, …; `None`: the
    /// newest, what new objects are wrapped under), opened, from one read
    /// of its record: what every SSE-KMS write and read needs.
    pub fn kms_key_material(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> EngineResult<(KmsKeyInfo, KmsKeyMaterial)> {
        let record = match valid_kms_key_id(id) {
            true => self.kms_record(id)?,
            false => None,
        }
        .ok_or_else(|| EngineError::NoSuchKmsKey(id.to_owned()))?;
        let info = KmsKeyInfo::from_record(id, &record);
        let material = self.material_of(id, &record, version.unwrap_or(info.versions))?;
        Ok((info, material))
    }

    /// Material version `version` (1, 2, …) of key `id`, opened.
    pub fn kms_material(&self, id: &str, version: u32) -> EngineResult<KmsKeyMaterial> {
        self.kms_key_material(id, Some(version)).map(|(_, m)| m)
    }

    fn material_of(
        &self,
        id: &str,
        record: &KmsKeyRecord,
        version: u32,
    ) -> EngineResult<KmsKeyMaterial> {
        let index = (version as usize)
            .checked_sub(1)
            .filter(|i| *i < record.sealed_versions.len())
            .ok_or_else(|| {
                EngineError::Corrupt(format!("kms key {id} has no material version {version}"))
            })?;
        self.open_material(id, index + 1, &record.sealed_versions[index])
    }

    fn open_material(
        &self,
        id: &str,
        version: usize,
        sealed: &[u8],
    ) -> EngineResult<KmsKeyMaterial> {
        KmsKeyMaterial::open(&self.inner.keys.sealer, &seal_label(id, version), sealed).map_err(
            |_| {
                EngineError::Corrupt(format!(
                    "material {version} of kms key {id} does not open with this data root"
                ))
            },
        )
    }

    fn seal_new_material(&self, id: &str, version: usize) -> EngineResult<Vec<u8>> {
        KmsKeyMaterial::generate()
            .and_then(|m| m.seal(&self.inner.keys.sealer, &seal_label(id, version)))
            .map_err(EngineError::Crypto)
    }

    /// Creates a key (enabled, one material version), with `alias` if
    /// given (without `alias/`; unique; `aws/…` is reserved).
    pub async fn create_kms_key(
        &self,
        alias: Option<&str>,
        description: &str,
    ) -> EngineResult<KmsKeyInfo> {
        if let Some(a) = alias
            && (!valid_kms_alias(a) || a.starts_with("aws/"))
        {
            return Err(EngineError::InvalidKmsKey(format!(
                "{a:?} is not an alias you may create: 1-250 of A-Z a-z 0-9 / _ - , not beginning with aws/"
            )));
        }
        self.create_kms_key_unchecked(alias, description, true)
            .await
    }

    /// Creates a key; `capped`: refused once [`KMS_KEYS_MAX`] exist (the
    /// default key is not, so `aws:kms` without a key id always works).
    async fn create_kms_key_unchecked(
        &self,
        alias: Option<&str>,
        description: &str,
        capped: bool,
    ) -> EngineResult<KmsKeyInfo> {
        if description.len() > 8192 {
            return Err(EngineError::InvalidKmsKey(
                "a description is at most 8192 bytes".into(),
            ));
        }
        let _guard = self.inner.keys.kms_lock.lock().await;
        if capped && self.kms_keys()?.len() >= KMS_KEYS_MAX {
            return Err(EngineError::InvalidKmsKey(format!(
                "this server already stores {KMS_KEYS_MAX} KMS keys, the most it keeps"
            )));
        }
        let id = new_key_id();
        let record = KmsKeyRecord {
            alias: alias.unwrap_or_default().to_owned(),
            description: description.to_owned(),
            created_ms: crate::now_ms(),
            enabled: true,
            sealed_versions: vec![self.seal_new_material(&id, 1)?],
        };
        let inner = self.inner.clone();
        let (name, alias) = (key_name(&id), alias.map(str::to_owned));
        let id_bytes = id.as_bytes().to_vec();
        let encoded = record.encode();
        blocking(move || {
            let mut b = inner.meta.batch();
            // The id is new (random); an alias must be free — also against a
            // concurrent creator on another node.
            let (_, key_absent) = inner.meta.get_guarded::<System>(&name)?;
            b.guard(key_absent);
            if let Some(alias) = &alias {
                let (taken, alias_absent) = inner.meta.get_guarded::<System>(&alias_name(alias))?;
                if taken.is_some() {
                    return Err(EngineError::InvalidKmsKey(format!(
                        "the alias {alias} already names a key"
                    )));
                }
                b.guard(alias_absent);
                b.put::<System>(&alias_name(alias), &id_bytes);
            }
            b.put::<System>(&name, &encoded);
            match inner.meta.write(b) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::InvalidKmsKey(
                    "the alias was taken meanwhile".into(),
                )),
                r => r,
            }
        })
        .await?;
        Ok(KmsKeyInfo::from_record(&id, &record))
    }

    /// The key `aws:kms` without a key id uses: alias `aws/s3`, created on
    /// first use (on a cluster, the first creator wins; the others read it).
    pub async fn default_kms_key(&self) -> EngineResult<KmsKeyInfo> {
        if let Some(k) = self.kms_key_by_alias(DEFAULT_KMS_ALIAS)? {
            return Ok(k);
        }
        match self
            .create_kms_key_unchecked(
                Some(DEFAULT_KMS_ALIAS),
                "Default key for SSE-KMS (aws/s3)",
                false,
            )
            .await
        {
            Ok(k) => Ok(k),
            Err(EngineError::InvalidKmsKey(_)) => self
                .kms_key_by_alias(DEFAULT_KMS_ALIAS)?
                .ok_or_else(|| EngineError::Internal("the default kms key vanished".into())),
            Err(e) => Err(e),
        }
    }

    /// Changes key `id`'s record with `change`, guarded on the record read.
    async fn update_kms_key(
        &self,
        id: &str,
        change: impl FnOnce(&mut KmsKeyRecord) -> EngineResult<()>,
    ) -> EngineResult<KmsKeyInfo> {
        let _guard = self.inner.keys.kms_lock.lock().await;
        let name = key_name(id);
        let (value, unchanged) = if valid_kms_key_id(id) {
            self.inner.meta.get_guarded::<System>(&name)?
        } else {
            (
                None,
                crate::MetaGuard::Absent {
                    cf: crate::MetaCf::System,
                    key: Vec::new(),
                },
            )
        };
        let mut record =
            KmsKeyRecord::decode(&value.ok_or_else(|| EngineError::NoSuchKmsKey(id.to_owned()))?)?;
        change(&mut record)?;
        let encoded = record.encode();
        let inner = self.inner.clone();
        blocking(move || {
            let mut b = inner.meta.batch();
            b.guard(unchanged);
            b.put::<System>(&name, &encoded);
            match inner.meta.write(b) {
                // Another node changed the key first: nothing was written.
                Err(EngineError::GuardFailed(_)) => Err(EngineError::InvalidKmsKey(
                    "the key was changed concurrently (on another node); nothing was done, try again".into(),
                )),
                r => r,
            }
        })
        .await?;
        Ok(KmsKeyInfo::from_record(id, &record))
    }

    /// Enables or disables key `id`.
    pub async fn set_kms_key_enabled(&self, id: &str, enabled: bool) -> EngineResult<KmsKeyInfo> {
        self.update_kms_key(id, |r| {
            r.enabled = enabled;
            Ok(())
        })
        .await
    }

    /// Adds a material version to key `id`: new objects are wrapped under
    /// it; existing ones keep theirs (no data is rewritten).
    pub async fn rotate_kms_key(&self, id: &str) -> EngineResult<KmsKeyInfo> {
        // Sealed before the record is read: the version number is checked
        // against the record under the lock.
        let _ = self
            .kms_key(id)?
            .ok_or_else(|| EngineError::NoSuchKmsKey(id.to_owned()))?;
        let owned = id.to_owned();
        let this = self.clone();
        self.update_kms_key(id, move |r| {
            if r.sealed_versions.len() >= KMS_KEY_VERSIONS_MAX {
                return Err(EngineError::InvalidKmsKey(format!(
                    "the key has {KMS_KEY_VERSIONS_MAX} versions, the most it keeps"
                )));
            }
            let next = r.sealed_versions.len() + 1;
            r.sealed_versions
                .push(this.seal_new_material(&owned, next)?);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{open_with, small_chunk_config};

    #[test]
    fn ids_and_aliases_have_their_shapes() {
        let id = new_key_id();
        assert!(valid_kms_key_id(&id), "{id}");
        assert_ne!(new_key_id(), id);
        assert!(!valid_kms_key_id("1234"));
        assert!(!valid_kms_key_id(&id.to_uppercase()));
        assert!(valid_kms_alias("backups/2026_a-b"));
        assert!(!valid_kms_alias(""));
        assert!(!valid_kms_alias("a b"));
        assert!(!valid_kms_alias(&"a".repeat(251)));
        let r = KmsKeyRecord {
            alias: "a".into(),
            description: "d".into(),
            created_ms: 5,
            enabled: false,
            sealed_versions: vec![vec![1; 60], vec![2; 60]],
        };
        assert!(KmsKeyRecord::decode(&r.encode()).unwrap() == r);
        let mut bytes = r.encode();
        bytes.push(0);
        assert!(KmsKeyRecord::decode(&bytes).is_err());
    }

    #[tokio::test]
    async fn keys_are_created_rotated_disabled_and_keep_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open_with(small_chunk_config(dir.path()), 0x2a);
        let k = engine
            .create_kms_key(Some("backups"), "for backups")
            .await
            .unwrap();
        assert_eq!(
            (k.versions, k.enabled, k.alias.as_str()),
            (1, true, "backups")
        );
        assert_eq!(engine.kms_key_by_alias("backups").unwrap().unwrap(), k);
        // Aliases are unique, and aws/ is Cairn's.
        assert!(engine.create_kms_key(Some("backups"), "").await.is_err());
        assert!(engine.create_kms_key(Some("aws/s3"), "").await.is_err());
        let v1 = engine.kms_material(&k.id, 1).unwrap();
        let dk = cairn_crypto::kms::DataKey::generate().unwrap();
        let wrapped = v1.wrap(&dk, b"aad").unwrap();
        let rotated = engine.rotate_kms_key(&k.id).await.unwrap();
        assert_eq!(rotated.versions, 2);
        // Version 1 still opens what it wrapped; version 2 is other material.
        assert!(
            engine
                .kms_material(&k.id, 1)
                .unwrap()
                .unwrap(&wrapped, b"aad")
                .is_ok()
        );
        assert!(
            engine
                .kms_material(&k.id, 2)
                .unwrap()
                .unwrap(&wrapped, b"aad")
                .is_err()
        );
        assert!(engine.kms_material(&k.id, 3).is_err());
        let off = engine.set_kms_key_enabled(&k.id, false).await.unwrap();
        assert!(!off.enabled && off.versions == 2);
        assert!(matches!(
            engine.set_kms_key_enabled("no-such-key", true).await,
            Err(EngineError::NoSuchKmsKey(_))
        ));
        // The default key is made once.
        let d = engine.default_kms_key().await.unwrap();
        assert_eq!(d.alias, DEFAULT_KMS_ALIAS);
        assert_eq!(engine.default_kms_key().await.unwrap(), d);
        let all = engine.kms_keys().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.contains(&off) && all.contains(&d));
        // A sealed material moved to another version does not open.
        let name = key_name(&k.id);
        let mut rec =
            KmsKeyRecord::decode(&engine.inner.meta.get::<System>(&name).unwrap().unwrap())
                .unwrap();
        rec.sealed_versions.swap(0, 1);
        let mut b = engine.inner.meta.batch();
        b.put::<System>(&name, &rec.encode());
        engine.inner.meta.write(b).unwrap();
        assert!(engine.kms_material(&k.id, 1).is_err());
    }
}
