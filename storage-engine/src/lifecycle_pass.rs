//! Lifecycle in the engine: each bucket's stored configuration, and the
//! pass that applies every bucket's rules to what it holds.
//!
//! Owns: the `system` records `lifecycle/<bucket id, 16 hex>` (the value is
//! [`LifecycleConfiguration::encode`]; keyed by id, so a bucket deleted and
//! created again under the same name starts without rules, and removed in
//! the batch that deletes the bucket), [`Engine::bucket_lifecycle`],
//! [`Engine::set_bucket_lifecycle`], [`Engine::lifecycle_expiration`] (the
//! `x-amz-expiration` value) and [`Engine::run_lifecycle_pass`].
//!
//! Must never:
//! - delete a version Object Lock protects: every deletion goes through
//!   the same guarded engine calls a client's DELETE does, without the
//!   governance bypass, and a refusal is counted, not retried;
//! - act on anything but what it evaluated: expiring a current version is
//!   conditional on it still being current (`WriteCondition::IfCurrentIs`),
//!   a noncurrent version is only deleted while noncurrent, a delete marker
//!   only while it is its key's last version — so a pass cut short by a
//!   crash, or run twice (a leader change on a cluster), redoes nothing:
//!   the next pass re-evaluates and finishes the rest;
//! - hold more than one listing page (`PAGE_ENTRIES`) in memory, or act
//!   faster than the configured rate;
//! - read the clock for rule evaluation: the pass takes `now_ms`, and the
//!   day length comes from the engine configuration (shortened only by
//!   tests, through the same code).
//!
//! Which node runs a pass is the caller's decision (on a cluster, the Raft
//! leader); the conditions above keep two overlapping passes correct too.

use crate::engine::Engine;
use crate::error::{EngineError, EngineResult};
use crate::lifecycle::{LifecycleConfiguration, VersionFacts};
use crate::meta::System;
use crate::object_ops::VersionPlace;
use crate::parts::objects::WriteCondition;
use crate::records::{ObjectVersion, VersionRef};
use crate::versions::VersionListQuery;

/// Versions (or uploads) listed per page of a pass.
const PAGE_ENTRIES: usize = 1_000;

/// The `system` name of a bucket's lifecycle configuration.
pub(crate) fn config_name(bucket_id: u64) -> String {
    format!("lifecycle/{bucket_id:016x}")
}

/// How a pass runs.
#[derive(Clone, Copy, Debug)]
pub struct LifecyclePassOptions {
    /// The moment rules are evaluated at (unix ms).
    pub now_ms: u64,
    /// At most this many deletions and aborts per second (0: unlimited).
    pub actions_per_sec: u32,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecyclePassReport {
    /// Buckets that have a configuration.
    pub buckets: u64,
    /// Versions and delete markers looked at.
    pub versions_scanned: u64,
    /// Current versions expired (a delete marker placed, or in an
    /// unversioned bucket the object removed).
    pub expired_current: u64,
    /// Noncurrent versions (and noncurrent delete markers) removed.
    pub expired_noncurrent: u64,
    /// Delete markers removed that were their key's only version.
    pub removed_markers: u64,
    pub aborted_uploads: u64,
    /// Due deletions Object Lock refused.
    pub skipped_locked: u64,
    /// Due actions that failed otherwise (logged; the next pass retries).
    pub failed: u64,
}

/// One due action found on a page.
enum Action {
    ExpireCurrent {
        key: String,
        version: crate::records::VersionId,
    },
    ExpireNoncurrent {
        key: String,
        version: VersionRef,
    },
    RemoveMarker {
        key: String,
        version: VersionRef,
    },
}

/// Where the listing is inside one key's history, carried across pages.
struct KeyCursor {
    key: String,
    /// When the entry just above (newer) was written: the moment the next
    /// noncurrent entry became noncurrent.
    newer_written_ms: u64,
    /// Noncurrent entries of this key already passed (newer than the next).
    noncurrent_seen: u32,
    /// False when the listing began inside the history (the current entry
    /// vanished between two pages): the counts above are then unknown and
    /// nothing of this key is due in this pass; a later one sees it whole.
    whole: bool,
}

/// What one running pass carries from bucket to bucket.
struct Pass<'a> {
    now_ms: u64,
    pacer: Pacer,
    keep_going: &'a (dyn Fn() -> bool + Send + Sync),
    report: LifecyclePassReport,
}

/// Keeps actions at or under a rate.
struct Pacer {
    interval: Option<std::time::Duration>,
    next: tokio::time::Instant,
}

impl Pacer {
    fn new(per_sec: u32) -> Pacer {
        Pacer {
            interval: (per_sec > 0).then(|| std::time::Duration::from_secs(1) / per_sec),
            next: tokio::time::Instant::now(),
        }
    }

    async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = tokio::time::Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        } else {
            // Idle time does not bank a burst beyond one action.
            self.next = now;
        }
        self.next += interval;
    }
}

impl Engine {
    /// The length of a lifecycle day in ms ([`crate::lifecycle::DAY_MS`]
    /// unless a test shortened it).
    pub fn lifecycle_day_ms(&self) -> u64 {
        self.inner.config.lifecycle_day_ms.max(1)
    }

    /// The bucket's lifecycle configuration, if one is set.
    pub fn bucket_lifecycle(&self, bucket: &str) -> EngineResult<Option<LifecycleConfiguration>> {
        let b = self.inner.objects.bucket(bucket)?;
        self.lifecycle_of(b.id)
    }

    fn lifecycle_of(&self, bucket_id: u64) -> EngineResult<Option<LifecycleConfiguration>> {
        match self.inner.meta.get::<System>(&config_name(bucket_id))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(LifecycleConfiguration::decode(&bytes)?)),
        }
    }

    /// Replaces (or with `None` removes) the bucket's lifecycle
    /// configuration, in one synced batch guarded on the bucket record
    /// (a bucket deleted meanwhile is `NoSuchBucket`). Validation is the
    /// caller's ([`LifecycleConfiguration::validate`]).
    pub async fn set_bucket_lifecycle(
        &self,
        bucket: &str,
        config: Option<LifecycleConfiguration>,
    ) -> EngineResult<()> {
        debug_assert!(config.as_ref().is_none_or(|c| c.validate().is_empty()));
        self.set_bucket_system_record(bucket, config_name, config.map(|c| c.encode()))
            .await
    }

    /// The `x-amz-expiration` value for `version`, the current version of
    /// `key`: when a rule of the bucket will expire it, and which (`None`
    /// when no enabled rule does, for delete markers, and when the bucket
    /// has no configuration).
    pub fn lifecycle_expiration(
        &self,
        bucket: &str,
        key: &str,
        version: &ObjectVersion,
    ) -> EngineResult<Option<String>> {
        if version.delete_marker {
            return Ok(None);
        }
        let Some(config) = self.bucket_lifecycle(bucket)? else {
            return Ok(None);
        };
        let facts = VersionFacts {
            key,
            size: version.size,
            tags: &version.meta.tags,
            last_modified_ms: version.last_modified_ms,
        };
        Ok(config
            .current_expiration(&facts, self.lifecycle_day_ms())
            .map(|due| due.expiration_header()))
    }

    /// Applies every bucket's lifecycle rules once: expires current and
    /// noncurrent versions, removes lone expired delete markers and aborts
    /// old incomplete multipart uploads, in listing order, one page at a
    /// time and at most `actions_per_sec`. `keep_going` is asked before
    /// every page; when it says no (shutdown, leadership lost) the pass
    /// stops where it is — the next pass re-evaluates from the start.
    pub async fn run_lifecycle_pass(
        &self,
        opts: LifecyclePassOptions,
        keep_going: &(dyn Fn() -> bool + Send + Sync),
    ) -> EngineResult<LifecyclePassReport> {
        let mut pass = Pass {
            now_ms: opts.now_ms,
            pacer: Pacer::new(opts.actions_per_sec),
            keep_going,
            report: LifecyclePassReport::default(),
        };
        let m = &self.inner.metrics;
        m.lifecycle_running.set(1);
        let result = async {
            for bucket in self.list_buckets()? {
                if !keep_going() {
                    return Ok(());
                }
                let id = match self.inner.objects.bucket(&bucket.name) {
                    Ok(b) => b.id,
                    Err(EngineError::NoSuchBucket) => continue,
                    Err(e) => return Err(e),
                };
                let Some(config) = self.lifecycle_of(id)? else {
                    continue;
                };
                if !config.rules.iter().any(|r| r.enabled) {
                    continue;
                }
                pass.report.buckets += 1;
                self.lifecycle_versions(&bucket.name, &config, &mut pass)
                    .await?;
                if config
                    .rules
                    .iter()
                    .any(|r| r.enabled && r.abort_incomplete_upload_days.is_some())
                {
                    self.lifecycle_uploads(&bucket.name, &config, &mut pass)
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        m.lifecycle_running.set(0);
        m.lifecycle_backlog.set(0);
        result?;
        m.lifecycle_passes.inc();
        m.lifecycle_last_pass_end
            .set((crate::now_ms() / 1000) as i64);
        Ok(pass.report)
    }

    async fn lifecycle_versions(
        &self,
        bucket: &str,
        config: &LifecycleConfiguration,
        pass: &mut Pass<'_>,
    ) -> EngineResult<()> {
        let day_ms = self.lifecycle_day_ms();
        let m = &self.inner.metrics;
        let mut query = VersionListQuery {
            max_keys: PAGE_ENTRIES,
            ..VersionListQuery::default()
        };
        let mut cursor: Option<KeyCursor> = None;
        loop {
            if !(pass.keep_going)() {
                return Ok(());
            }
            let page = match self.list_versions(bucket, query.clone()).await {
                Err(EngineError::NoSuchBucket) => return Ok(()),
                r => r?,
            };
            let mut due = Vec::new();
            for listed in &page.versions {
                pass.report.versions_scanned += 1;
                m.lifecycle_scanned.inc();
                let v = &listed.version;
                let facts = VersionFacts {
                    key: &listed.key,
                    size: v.size,
                    tags: &v.meta.tags,
                    last_modified_ms: v.last_modified_ms,
                };
                let same_key = cursor.as_ref().is_some_and(|c| c.key == listed.key);
                if listed.is_latest || !same_key {
                    // A key's history starts with its current entry; a
                    // noncurrent one without it only when the current one
                    // vanished between two pages — then it counts from
                    // itself.
                    let is_due = if !listed.is_latest {
                        false
                    } else if v.delete_marker {
                        config
                            .expired_delete_marker(&listed.key, v.last_modified_ms, day_ms)
                            .is_some_and(|d| d.is_due(pass.now_ms))
                    } else {
                        config
                            .current_expiration(&facts, day_ms)
                            .is_some_and(|d| d.is_due(pass.now_ms))
                    };
                    if is_due {
                        due.push(if v.delete_marker {
                            Action::RemoveMarker {
                                key: listed.key.clone(),
                                version: v.version_ref(),
                            }
                        } else {
                            Action::ExpireCurrent {
                                key: listed.key.clone(),
                                version: v.version_id,
                            }
                        });
                    }
                    cursor = Some(KeyCursor {
                        key: listed.key.clone(),
                        newer_written_ms: v.last_modified_ms,
                        noncurrent_seen: 0,
                        whole: listed.is_latest,
                    });
                    if listed.is_latest {
                        continue;
                    }
                }
                let Some(c) = cursor.as_mut() else {
                    continue;
                };
                let is_due = c.whole
                    && config
                        .noncurrent_expiration(
                            &facts,
                            c.newer_written_ms,
                            c.noncurrent_seen,
                            day_ms,
                        )
                        .is_some_and(|d| d.is_due(pass.now_ms));
                if is_due {
                    due.push(Action::ExpireNoncurrent {
                        key: listed.key.clone(),
                        version: v.version_ref(),
                    });
                }
                c.newer_written_ms = v.last_modified_ms;
                c.noncurrent_seen = c.noncurrent_seen.saturating_add(1);
            }
            m.lifecycle_backlog.set(due.len() as i64);
            for action in due {
                pass.pacer.wait().await;
                self.lifecycle_act(bucket, action, &mut pass.report).await;
                m.lifecycle_backlog.dec();
            }
            if !page.is_truncated {
                return Ok(());
            }
            query.key_marker = page.next_key_marker;
            query.version_id_marker = match page.next_version_id_marker {
                Some(id) => Some(VersionRef::parse(&id).ok_or(EngineError::Codec(
                    crate::CodecError::Invalid("version id marker"),
                ))?),
                None => None,
            };
        }
    }

    /// Carries out one due action and counts what happened.
    async fn lifecycle_act(&self, bucket: &str, action: Action, report: &mut LifecyclePassReport) {
        let m = &self.inner.metrics;
        let (label, result) = match &action {
            Action::ExpireCurrent { key, version } => (
                "expire_current",
                self.delete_object_announced(
                    bucket,
                    key,
                    WriteCondition::IfCurrentIs(*version),
                    None,
                )
                .await
                .map(|_| ()),
            ),
            Action::ExpireNoncurrent { key, version } => (
                "expire_noncurrent",
                self.delete_version_where(bucket, key, *version, false, VersionPlace::Noncurrent)
                    .await
                    .map(|_| ()),
            ),
            Action::RemoveMarker { key, version } => (
                "remove_marker",
                self.delete_version_where(bucket, key, *version, false, VersionPlace::LoneMarker)
                    .await
                    .map(|_| ()),
            ),
        };
        match result {
            Ok(()) => {
                m.lifecycle_actions.with_label_values(&[label]).inc();
                match action {
                    Action::ExpireCurrent { .. } => report.expired_current += 1,
                    Action::ExpireNoncurrent { .. } => report.expired_noncurrent += 1,
                    Action::RemoveMarker { .. } => report.removed_markers += 1,
                }
            }
            Err(EngineError::ObjectLocked) => {
                report.skipped_locked += 1;
                m.lifecycle_skipped_locked.inc();
            }
            // Changed since it was listed (a new write, the marker gained
            // history, the bucket went): nothing is due any more.
            Err(
                EngineError::PreconditionFailed(_)
                | EngineError::NoSuchKey
                | EngineError::NoSuchBucket,
            ) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(bucket, action = label, error = %e, "lifecycle action failed");
            }
        }
    }

    async fn lifecycle_uploads(
        &self,
        bucket: &str,
        config: &LifecycleConfiguration,
        pass: &mut Pass<'_>,
    ) -> EngineResult<()> {
        let day_ms = self.lifecycle_day_ms();
        let m = &self.inner.metrics;
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            if !(pass.keep_going)() {
                return Ok(());
            }
            let page = match self
                .list_uploads(
                    bucket,
                    String::new(),
                    None,
                    key_marker,
                    id_marker,
                    PAGE_ENTRIES,
                )
                .await
            {
                Err(EngineError::NoSuchBucket) => return Ok(()),
                r => r?,
            };
            let due: Vec<_> = page
                .uploads
                .iter()
                .filter(|u| {
                    config
                        .abort_upload(&u.key, u.created_ms, day_ms)
                        .is_some_and(|d| d.is_due(pass.now_ms))
                })
                .collect();
            m.lifecycle_backlog.set(due.len() as i64);
            for upload in due {
                pass.pacer.wait().await;
                match self
                    .abort_upload(bucket, &upload.key, upload.upload_id)
                    .await
                {
                    Ok(()) => {
                        pass.report.aborted_uploads += 1;
                        m.lifecycle_actions
                            .with_label_values(&["abort_upload"])
                            .inc();
                    }
                    Err(EngineError::NoSuchUpload | EngineError::NoSuchBucket) => {}
                    Err(e) => {
                        pass.report.failed += 1;
                        tracing::warn!(bucket, error = %e, "lifecycle abort of an upload failed");
                    }
                }
                m.lifecycle_backlog.dec();
            }
            if !page.is_truncated {
                return Ok(());
            }
            key_marker = page.next_key_marker;
            id_marker = page.next_upload_id_marker;
        }
    }
}
