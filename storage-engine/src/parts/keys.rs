//! The access keys part: what guards stored credentials (access keys and
//! the key service's keys).
//!
//! Owns the lock that serialises changes to access keys (create, delete,
//! grants) and the sealer that encrypts secret keys under a key derived
//! from the data root before they reach the metadata. It must never hold or log a secret in
//! the clear beyond the call that seals or opens it.

use cairn_crypto::{DataRootKey, SecretSealer};
use tokio::sync::Mutex as AsyncMutex;

/// The access keys part (see the module doc).
pub(crate) struct AccessKeyVault {
    /// Serialises changes to access keys (create, delete, grants).
    pub(crate) lock: AsyncMutex<()>,
    /// Serialises changes to key-service (SSE-KMS) keys on this node
    /// (guards order them across a cluster).
    pub(crate) kms_lock: AsyncMutex<()>,
    /// Seals access-key secrets and key-service material.
    pub(crate) sealer: SecretSealer,
    /// Keys the canonical user ids of access keys ([`crate::Engine::canonical_user_id`]).
    pub(crate) canonical_id_key: cairn_crypto::DerivedKey,
}

impl std::fmt::Debug for AccessKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyVault").finish_non_exhaustive()
    }
}

impl AccessKeyVault {
    pub(crate) fn new(root: &DataRootKey) -> Self {
        AccessKeyVault {
            lock: AsyncMutex::new(()),
            kms_lock: AsyncMutex::new(()),
            sealer: root.secret_sealer(),
            canonical_id_key: root.derive(cairn_crypto::CANONICAL_ID_CONTEXT),
        }
    }
}
