//! Access keys as the front end sees them: the secret SigV4 verifies with,
//! and what the key may do ([`KeyAccess`]).
//!
//! Keys come from two places: keys given at start-up (environment or
//! config; admin keys, not stored, cannot be changed through the API) and
//! keys stored, sealed, in the engine's metadata. The ring keeps every key
//! in memory (at most `ACCESS_KEYS_MAX` stored ones), so verifying a request
//! is a map lookup, not a metadata read and an AES-GCM open. Every change
//! goes through the ring, which writes the engine first and then refreshes
//! its copy of that key.
//!
//! Must never: create a key whose name a bucket policy could not name
//! exactly (`arn:aws:iam:::user/<name>`: IAM's user-name characters only —
//! a `/`, `*` or space would change what the ARN says), or two stored keys
//! of one name.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cairn_storage_engine::{
    AccessKeyRecord, BucketGrant, Engine, EngineError, EngineResult, StoredAccessKey,
};

use crate::auth::SecretLookup;

/// The longest key name (IAM's user names: 64 characters).
pub const KEY_NAME_MAX_CHARS: usize = 64;

/// Checks a new key's name against IAM's user-name rule: 1 to
/// [`KEY_NAME_MAX_CHARS`] of `A-Z a-z 0-9 + = , . @ _ -`. The empty name
/// (a key without a name, which no policy can name) is allowed. `Err`
/// says why, for the CLI and the admin API.
pub fn check_key_name(name: &str) -> Result<(), String> {
    if name.len() > KEY_NAME_MAX_CHARS {
        return Err(format!(
            "key name {:?} is longer than {KEY_NAME_MAX_CHARS} characters",
            name.chars().take(KEY_NAME_MAX_CHARS).collect::<String>()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        Some(bad) => Err(format!(
            "key name {name:?} has the character {bad:?}; names may use only A-Z a-z 0-9 and + = , . @ _ - (bucket policies name keys as arn:aws:iam:::user/<name>)"
        )),
        None => Ok(()),
    }
}

/// What one access key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAccess {
    /// Everything: all buckets, CreateBucket/DeleteBucket, the admin API.
    pub admin: bool,
    /// Per-bucket read/write, sorted by bucket (ignored for admin keys).
    /// A grant with a prefix only creates objects under it.
    pub grants: Vec<BucketGrant>,
    /// When the key stops working (unix ms); `None`: never.
    pub expires_ms: Option<u64>,
}

impl KeyAccess {
    pub fn admin() -> Self {
        KeyAccess {
            admin: true,
            grants: Vec::new(),
            expires_ms: None,
        }
    }

    /// Whether the key has expired at `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|at| now_ms >= at)
    }

    fn grant(&self, bucket: &str) -> Option<&BucketGrant> {
        self.grants
            .binary_search_by(|g| g.bucket.as_str().cmp(bucket))
            .ok()
            .map(|i| &self.grants[i])
    }

    pub fn can_read(&self, bucket: &str) -> bool {
        self.admin
            || self
                .grant(bucket)
                .is_some_and(|g| g.read && g.prefix.is_empty())
    }

    /// Every write to the bucket (a prefix grant gives none of these: see
    /// [`KeyAccess::can_create`]).
    pub fn can_write(&self, bucket: &str) -> bool {
        self.admin
            || self
                .grant(bucket)
                .is_some_and(|g| g.write && g.prefix.is_empty())
    }

    /// Whether the key may create the object `key` in `bucket` (PutObject
    /// and the multipart upload operations): any write grant there, a
    /// prefix grant only for keys under its prefix — and not through a `.`
    /// or `..` segment after it: tools that normalise paths would file
    /// `devices/42/../43/x` under another device.
    pub fn can_create(&self, bucket: &str, key: &str) -> bool {
        self.admin
            || self.grant(bucket).is_some_and(|g| {
                g.write
                    && key.strip_prefix(g.prefix.as_str()).is_some_and(|rest| {
                        g.prefix.is_empty() || !rest.split('/').any(|s| s == "." || s == "..")
                    })
            })
    }

    /// Whether the key has any grant on `bucket` (a prefix grant included).
    pub fn has_grant(&self, bucket: &str) -> bool {
        self.admin || self.grant(bucket).is_some()
    }

    /// Whether ListBuckets shows `bucket` to this key (any grant but a
    /// prefix grant: a device key learns nothing it did not write).
    pub fn can_see(&self, bucket: &str) -> bool {
        self.admin || self.grant(bucket).is_some_and(|g| g.prefix.is_empty())
    }
}

impl From<&AccessKeyRecord> for KeyAccess {
    fn from(r: &AccessKeyRecord) -> Self {
        let mut grants = r.grants.clone();
        grants.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        KeyAccess {
            admin: r.admin,
            grants,
            expires_ms: r.expires_ms,
        }
    }
}

/// One key as the admin API lists it (no secret).
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub created_ms: u64,
    /// Given at start-up (environment or config), not stored.
    pub fixed: bool,
    pub access: KeyAccess,
}

impl From<&StoredAccessKey> for KeyInfo {
    fn from(k: &StoredAccessKey) -> Self {
        KeyInfo {
            id: k.id.clone(),
            name: k.record.name.clone(),
            created_ms: k.record.created_ms,
            fixed: false,
            access: KeyAccess::from(&k.record),
        }
    }
}

struct KeyEntry {
    secret: String,
    access: Arc<KeyAccess>,
    /// What `KeyRing::list` shows (its `access` is the one above).
    name: String,
    created_ms: u64,
}

impl KeyEntry {
    fn stored(k: &StoredAccessKey) -> Self {
        KeyEntry {
            secret: k.secret.clone(),
            access: Arc::new(KeyAccess::from(&k.record)),
            name: k.record.name.clone(),
            created_ms: k.record.created_ms,
        }
    }
}

/// Every access key the server accepts.
pub struct KeyRing {
    engine: Engine,
    /// Ids of the start-up keys, which take precedence over stored ones.
    fixed: Vec<String>,
    entries: RwLock<HashMap<String, Arc<KeyEntry>>>,
    /// Held across each change's engine write and ring refresh, so the ring
    /// sees changes in the engine's order (a delete cannot be undone by an
    /// older grant change refreshing after it).
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The start-up keys `fixed` (admin keys) and every stored key.
    pub fn new(engine: Engine, fixed: Vec<(String, String)>) -> EngineResult<Self> {
        let mut entries = Self::load_stored(&engine)?;
        let mut ids = Vec::new();
        for (id, secret) in fixed {
            entries.insert(
                id.clone(),
                Arc::new(KeyEntry {
                    secret,
                    access: Arc::new(KeyAccess::admin()),
                    name: "start-up key".into(),
                    created_ms: 0,
                }),
            );
            ids.push(id);
        }
        Ok(KeyRing {
            engine,
            fixed: ids,
            entries: RwLock::new(entries),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads every stored key again and replaces the ring's copies (the
    /// start-up keys stay). A cluster node calls it periodically: keys
    /// created, changed or deleted through another node reach it so.
    pub async fn reload(&self) -> EngineResult<()> {
        let _change = self.changes.lock().await;
        // Not from a half-installed metadata snapshot (keys would vanish for
        // a moment): such a read is dropped, the next reload takes over.
        let generation = self.engine.metadata_import_generation();
        if generation % 2 == 1 {
            return Ok(());
        }
        let engine = self.engine.clone();
        let stored = tokio::task::spawn_blocking(move || Self::load_stored(&engine))
            .await
            .map_err(EngineError::TaskFailed)??;
        if self.engine.metadata_import_generation() != generation {
            return Ok(());
        }
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|id, _| self.is_fixed(id));
        for (id, entry) in stored {
            if !self.is_fixed(&id) {
                map.insert(id, entry);
            }
        }
        Ok(())
    }

    fn load_stored(engine: &Engine) -> EngineResult<HashMap<String, Arc<KeyEntry>>> {
        let mut entries = HashMap::new();
        for id in engine.access_key_ids()? {
            // One unreadable key (a damaged record, or sealed under another
            // master key) disables that key only, not the server.
            let key = match engine.access_key(&id) {
                Ok(Some(k)) => k,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(key = %id, error = %e, "access key unreadable; it is disabled");
                    continue;
                }
            };
            entries.insert(key.id.clone(), Arc::new(KeyEntry::stored(&key)));
        }
        Ok(entries)
    }

    fn entry(&self, id: &str) -> Option<Arc<KeyEntry>> {
        // A poisoned lock only means a writer panicked between two whole
        // map operations; the map itself is consistent.
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }

    /// What key `id` may do and its name (what policies call it); `None`
    /// for an unknown key.
    pub fn identity(&self, id: &str) -> Option<(Arc<KeyAccess>, String)> {
        self.entry(id).map(|e| (e.access.clone(), e.name.clone()))
    }

    /// Whether some key is named `name`.
    pub fn name_exists(&self, name: &str) -> bool {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.values().any(|e| e.name == name)
    }

    /// The id of the one key named `name` (what PutBucketPolicy binds a
    /// named principal to); `None` when no key, or more than one (start-up
    /// keys share a name), has it.
    pub fn id_for_name(&self, name: &str) -> Option<String> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut named = map.iter().filter(|(_, e)| e.name == name);
        match (named.next(), named.next()) {
            (Some((id, _)), None) => Some(id.clone()),
            _ => None,
        }
    }

    /// What key `id` may do; `None` for an unknown key.
    pub fn access(&self, id: &str) -> Option<Arc<KeyAccess>> {
        self.entry(id).map(|e| e.access.clone())
    }

    fn is_fixed(&self, id: &str) -> bool {
        self.fixed.iter().any(|f| f == id)
    }

    /// Puts key `id` as the engine now stores it into the ring (`None`:
    /// deleted).
    fn refresh(&self, id: &str, stored: Option<&StoredAccessKey>) {
        if self.is_fixed(id) {
            return;
        }
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match stored {
            Some(k) => {
                map.insert(id.to_owned(), Arc::new(KeyEntry::stored(k)));
            }
            None => {
                map.remove(id);
            }
        }
    }

    fn refuse_fixed(&self, id: &str) -> EngineResult<()> {
        if self.is_fixed(id) {
            return Err(EngineError::InvalidAccessKey(format!(
                "{id} is given to the server at start-up (CAIRN_ACCESS_KEY or the config file); change it there"
            )));
        }
        Ok(())
    }

    /// Every key, start-up keys first, then stored keys by id (from the
    /// ring: nothing is read or decrypted).
    pub fn list(&self) -> Vec<KeyInfo> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let info = |id: &String, e: &KeyEntry| KeyInfo {
            id: id.clone(),
            name: e.name.clone(),
            created_ms: e.created_ms,
            fixed: self.is_fixed(id),
            access: (*e.access).clone(),
        };
        let mut stored: Vec<KeyInfo> = map
            .iter()
            .filter(|(id, _)| !self.is_fixed(id))
            .map(|(id, e)| info(id, e))
            .collect();
        stored.sort_by(|a, b| a.id.cmp(&b.id));
        let fixed = self
            .fixed
            .iter()
            .filter_map(|id| map.get(id).map(|e| info(id, e)));
        fixed.chain(stored).collect()
    }

    /// Creates a key with new random credentials; the secret is returned
    /// here and never again.
    /// Names are unique (bucket policies name keys by them), so a second
    /// key of the same name is refused, and follow IAM's user-name rule
    /// ([`check_key_name`]).
    pub async fn create(&self, record: AccessKeyRecord) -> EngineResult<StoredAccessKey> {
        check_key_name(&record.name).map_err(EngineError::InvalidAccessKey)?;
        let _change = self.changes.lock().await;
        if !record.name.is_empty() && self.name_exists(&record.name) {
            return Err(EngineError::InvalidAccessKey(format!(
                "a key named {:?} exists already; bucket policies name keys by their names, so each name is given once",
                record.name
            )));
        }
        let key = self.engine.create_access_key(record).await?;
        self.refresh(&key.id, Some(&key));
        Ok(key)
    }

    /// Sets or (neither read nor write) removes one bucket grant of `id`.
    pub async fn set_grant(&self, id: &str, grant: BucketGrant) -> EngineResult<KeyInfo> {
        self.refuse_fixed(id)?;
        let _change = self.changes.lock().await;
        let key = self.engine.set_access_key_grant(id, grant).await?;
        self.refresh(id, Some(&key));
        Ok(KeyInfo::from(&key))
    }

    /// Deletes stored key `id`. The last admin key is kept unless a
    /// start-up key exists (someone can still administer the server).
    pub async fn delete(&self, id: &str) -> EngineResult<()> {
        self.refuse_fixed(id)?;
        let _change = self.changes.lock().await;
        self.engine
            .delete_access_key(id, self.fixed.is_empty())
            .await?;
        self.refresh(id, None);
        Ok(())
    }
}

impl SecretLookup for KeyRing {
    /// An expired key is no key: its requests fail as with an unknown id
    /// (`InvalidAccessKeyId`), presigned URLs included.
    fn secret_key(&self, access_key: &str) -> Option<String> {
        self.entry(access_key)
            .filter(|e| !e.access.expired_at(cairn_storage_engine::now_ms()))
            .map(|e| e.secret.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_decide_read_and_write() {
        let access = KeyAccess::from(&AccessKeyRecord {
            expires_ms: None,
            name: String::new(),
            created_ms: 0,
            admin: false,
            grants: vec![
                BucketGrant {
                    prefix: String::new(),
                    bucket: "photos".into(),
                    read: true,
                    write: true,
                },
                BucketGrant {
                    prefix: String::new(),
                    bucket: "logs".into(),
                    read: true,
                    write: false,
                },
                BucketGrant {
                    prefix: String::new(),
                    bucket: "drop".into(),
                    read: false,
                    write: true,
                },
            ],
        });
        assert!(access.can_read("photos") && access.can_write("photos"));
        assert!(access.can_read("logs") && !access.can_write("logs"));
        assert!(!access.can_read("drop") && access.can_write("drop"));
        assert!(access.can_see("drop") && !access.can_see("other"));
        assert!(!access.can_read("other") && !access.can_write("other"));
        assert!(KeyAccess::admin().can_write("anything"));
    }

    /// Regression (attacker review): a name with `/` (or `*`, a space…)
    /// cannot be named exactly by `arn:aws:iam:::user/<name>`.
    #[test]
    fn key_names_follow_iam_user_names() {
        for ok in ["alice", "", "a+b=c,d.e@f_g-h", "A1", &"x".repeat(64)] {
            assert_eq!(check_key_name(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "a/b",
            "backup job",
            "a*",
            "who?",
            "ümlaut",
            "tab\t",
            "x:y",
            &"x".repeat(65),
        ] {
            let e = check_key_name(bad).unwrap_err();
            assert!(e.contains("key name"), "{bad:?}: {e}");
        }
        assert!(check_key_name("a/b").unwrap_err().contains("'/'"));
    }
}
