//! Object Lock on versions: changing a version's retention or legal hold.
//!
//! Owns the rules of a retention change: a COMPLIANCE retention is never
//! shortened, loosened to GOVERNANCE or removed before it ends — by anyone,
//! the admin key included; a GOVERNANCE one only with the bypass (which the
//! S3 layer grants to admin keys that ask for it); lengthening is always
//! allowed. Must never change a version's data, id or place in its history
//! (it rewrites the record through `Engine::update_version`).

use crate::engine::Engine;
use crate::error::{EngineError, EngineResult};
use crate::records::{ObjectVersion, Retention, RetentionMode, VersionRef};

/// Whether `current` (the retention a version has) may become `wanted` at
/// `now_ms`.
pub(crate) fn retention_change_allowed(
    current: Option<Retention>,
    wanted: Option<Retention>,
    bypass_governance: bool,
    now_ms: u64,
) -> bool {
    let Some(cur) = current.filter(|c| now_ms < c.until_ms) else {
        // None in force (or expired): anything may be set.
        return true;
    };
    let keeps_or_tightens = wanted.is_some_and(|w| {
        w.until_ms >= cur.until_ms
            && (w.mode == RetentionMode::Compliance || cur.mode == RetentionMode::Governance)
    });
    match cur.mode {
        RetentionMode::Compliance => keeps_or_tightens,
        RetentionMode::Governance => keeps_or_tightens || bypass_governance,
    }
}

impl Engine {
    /// Sets (or with `None` removes) the retention of the version `version`
    /// names (the current one for `None`). Refused with `ObjectLocked` when
    /// it would shorten or loosen a retention in force (see the module doc).
    pub async fn set_retention(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionRef>,
        retention: Option<Retention>,
        bypass_governance: bool,
    ) -> EngineResult<ObjectVersion> {
        self.update_version(bucket, key, version, move |v| {
            if !retention_change_allowed(v.retention, retention, bypass_governance, crate::now_ms())
            {
                return Err(EngineError::ObjectLocked);
            }
            v.retention = retention;
            Ok(())
        })
        .await
    }

    /// Puts the legal hold of a version on or off.
    pub async fn set_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionRef>,
        on: bool,
    ) -> EngineResult<ObjectVersion> {
        self.update_version(bucket, key, version, move |v| {
            v.legal_hold = on;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mode: RetentionMode, until_ms: u64) -> Option<Retention> {
        Some(Retention { mode, until_ms })
    }

    #[test]
    fn compliance_is_never_shortened_loosened_or_removed() {
        use RetentionMode::{Compliance as C, Governance as G};
        let now = 100;
        let cur = r(C, 200);
        assert!(retention_change_allowed(cur, r(C, 300), false, now));
        assert!(retention_change_allowed(cur, r(C, 200), false, now));
        for bypass in [false, true] {
            assert!(!retention_change_allowed(cur, r(C, 150), bypass, now));
            assert!(!retention_change_allowed(cur, r(G, 300), bypass, now));
            assert!(!retention_change_allowed(cur, None, bypass, now));
        }
        // Expired: anything.
        assert!(retention_change_allowed(cur, None, false, 200));
    }

    #[test]
    fn governance_yields_only_to_the_bypass() {
        use RetentionMode::{Compliance as C, Governance as G};
        let (now, cur) = (100, r(G, 200));
        assert!(retention_change_allowed(cur, r(G, 250), false, now));
        assert!(retention_change_allowed(cur, r(C, 250), false, now));
        assert!(!retention_change_allowed(cur, r(G, 150), false, now));
        assert!(!retention_change_allowed(cur, None, false, now));
        assert!(retention_change_allowed(cur, r(G, 150), true, now));
        assert!(retention_change_allowed(cur, None, true, now));
        assert!(retention_change_allowed(None, r(C, 1), false, now));
    }
}
