//! Where SigV4 verification finds secrets: keys given at start-up (env or
//! config) and keys stored, sealed, in the engine's metadata.

use cairn_storage_engine::Engine;

use crate::auth::SecretLookup;

/// Resolves access keys; start-up keys take precedence over stored ones.
pub struct KeyRing {
    fixed: Vec<(String, String)>,
    engine: Engine,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.fixed.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("fixed", &ids)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    pub fn new(engine: Engine, fixed: Vec<(String, String)>) -> Self {
        KeyRing { fixed, engine }
    }
}

impl SecretLookup for KeyRing {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        if let Some((_, s)) = self.fixed.iter().find(|(k, _)| k == access_key) {
            return Some(s.clone());
        }
        match self.engine.access_key_secret(access_key) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "looking up an access key failed");
                None
            }
        }
    }
}
