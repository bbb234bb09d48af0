//! Lifecycle passes in the engine: what each rule removes and what it must
//! leave (other prefixes, the newest noncurrent versions, locked versions,
//! writes made after evaluation), that a second pass finds nothing more to
//! do, and that a bucket's rules live and die with the bucket.

use crate::lifecycle::{
    DAY_MS, Expiration, LifecycleConfiguration, LifecycleRule, NoncurrentExpiration, RuleFilter,
};
use crate::records::{ObjectMetadata, VersionRef, Versioning};
use crate::test_support::{open_with, small_chunk_config, try_put};
use crate::{
    Engine, EngineError, LifecyclePassOptions, LifecyclePassReport, VersionListQuery,
    WriteCondition,
};

fn rule(id: &str, prefix: &str) -> LifecycleRule {
    LifecycleRule {
        id: id.into(),
        enabled: true,
        filter: RuleFilter {
            prefix: prefix.into(),
            ..RuleFilter::default()
        },
        expiration: None,
        expired_object_delete_marker: false,
        noncurrent_expiration: None,
        abort_incomplete_upload_days: None,
    }
}

async fn engine(dir: &std::path::Path, versioning: Versioning) -> Engine {
    let e = open_with(small_chunk_config(dir), 0x17);
    e.create_bucket("b").await.unwrap();
    if versioning != Versioning::Unversioned {
        e.set_bucket_versioning("b", versioning).await.unwrap();
    }
    e
}

async fn put(e: &Engine, key: &str, data: &[u8]) -> crate::ObjectVersion {
    try_put(e, "b", key, data, 4096).await.unwrap()
}

/// A pass evaluated `days` days from now, unpaced.
async fn pass_after(e: &Engine, days: u64) -> LifecyclePassReport {
    let opts = LifecyclePassOptions {
        now_ms: crate::now_ms() + days * DAY_MS,
        actions_per_sec: 0,
    };
    e.run_lifecycle_pass(opts, &|| true).await.unwrap()
}

/// Every (key, version id, is delete marker) of bucket `b`, newest first.
async fn versions(e: &Engine) -> Vec<(String, String, bool)> {
    let page = e
        .list_versions(
            "b",
            VersionListQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!page.is_truncated);
    page.versions
        .into_iter()
        .map(|v| (v.key, v.version.public_id(), v.version.delete_marker))
        .collect()
}

#[tokio::test]
async fn current_versions_expire_by_prefix_in_an_unversioned_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    let mut r = rule("logs", "logs/");
    r.expiration = Some(Expiration::Days(1));
    e.set_bucket_lifecycle("b", Some(LifecycleConfiguration { rules: vec![r] }))
        .await
        .unwrap();
    put(&e, "logs/a", b"a").await;
    put(&e, "logs/b", &[7u8; 100_000]).await;
    put(&e, "keep/c", b"c").await;
    // Not due yet.
    assert_eq!(pass_after(&e, 0).await.expired_current, 0);
    let report = pass_after(&e, 2).await;
    assert_eq!(report.expired_current, 2);
    assert_eq!(report.versions_scanned, 3);
    let left: Vec<_> = versions(&e).await.into_iter().map(|v| v.0).collect();
    assert_eq!(left, ["keep/c"]);
    assert_eq!(pass_after(&e, 2).await.expired_current, 0);
    e.check_stored_totals().unwrap();
}

#[tokio::test]
async fn a_versioned_expiry_places_one_marker_and_keeps_the_newest_noncurrent() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    let mut r = rule("all", "");
    r.expiration = Some(Expiration::Days(1));
    r.noncurrent_expiration = Some(NoncurrentExpiration {
        days: 3,
        newer_noncurrent_versions: Some(1),
    });
    e.set_bucket_lifecycle("b", Some(LifecycleConfiguration { rules: vec![r] }))
        .await
        .unwrap();
    for i in 0..4u8 {
        put(&e, "k", &[i; 10]).await;
    }
    // Day 2: the current version expires — a marker, once.
    let report = pass_after(&e, 2).await;
    assert_eq!((report.expired_current, report.expired_noncurrent), (1, 0));
    assert_eq!(pass_after(&e, 2).await.expired_current, 0);
    let v = versions(&e).await;
    assert_eq!(v.len(), 5);
    assert!(v[0].2, "the newest entry is the marker");
    // Day 10: noncurrent for long enough; the newest noncurrent one stays.
    let report = pass_after(&e, 10).await;
    assert_eq!(report.expired_noncurrent, 3, "{report:?}");
    let v = versions(&e).await;
    assert_eq!(v.len(), 2);
    assert!(v[0].2 && !v[1].2);
    e.check_stored_totals().unwrap();
}

#[tokio::test]
async fn a_lone_delete_marker_is_removed_and_one_with_history_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    let mut r = rule("markers", "");
    r.expired_object_delete_marker = true;
    r.noncurrent_expiration = Some(NoncurrentExpiration {
        days: 1,
        newer_noncurrent_versions: None,
    });
    e.set_bucket_lifecycle("b", Some(LifecycleConfiguration { rules: vec![r] }))
        .await
        .unwrap();
    put(&e, "gone", b"x").await;
    e.delete_object("b", "gone").await.unwrap();
    // A marker on a key that never had data.
    e.delete_object("b", "never").await.unwrap();
    let report = pass_after(&e, 5).await;
    // "never"'s marker is alone; "gone"'s has a version under it until
    // this pass expires that version.
    assert_eq!(report.removed_markers, 1, "{report:?}");
    assert_eq!(report.expired_noncurrent, 1);
    let report = pass_after(&e, 5).await;
    assert_eq!(report.removed_markers, 1, "{report:?}");
    assert!(versions(&e).await.is_empty());
    e.check_stored_totals().unwrap();
}

#[tokio::test]
async fn locked_versions_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    let mut r = rule("all", "");
    r.noncurrent_expiration = Some(NoncurrentExpiration {
        days: 1,
        newer_noncurrent_versions: None,
    });
    e.set_bucket_lifecycle("b", Some(LifecycleConfiguration { rules: vec![r] }))
        .await
        .unwrap();
    let held = put(&e, "k", b"held").await;
    put(&e, "k", b"free").await;
    put(&e, "k", b"current").await;
    e.set_legal_hold("b", "k", Some(held.version_ref()), true)
        .await
        .unwrap();
    let report = pass_after(&e, 5).await;
    assert_eq!(
        (report.expired_noncurrent, report.skipped_locked),
        (1, 1),
        "{report:?}"
    );
    let ids: Vec<_> = versions(&e).await.into_iter().map(|v| v.1).collect();
    assert!(ids.contains(&held.public_id()));
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn expiry_is_conditional_on_the_version_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    let old = put(&e, "k", b"old").await;
    put(&e, "k", b"new").await;
    let err = e
        .delete_object_if("b", "k", WriteCondition::IfCurrentIs(old.version_id))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::PreconditionFailed(_)), "{err:?}");
    assert_eq!(versions(&e).await.len(), 1);
    // A noncurrent-only delete leaves the current version alone.
    let v = e.head_object("b", "k").unwrap();
    let err = e
        .delete_version_where(
            "b",
            "k",
            v.version_ref(),
            false,
            crate::object_ops::VersionPlace::Noncurrent,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::PreconditionFailed(_)), "{err:?}");
    assert_eq!(versions(&e).await.len(), 1);
}

#[tokio::test]
async fn old_uploads_are_aborted_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    let mut r = rule("uploads", "tmp/");
    r.abort_incomplete_upload_days = Some(2);
    e.set_bucket_lifecycle("b", Some(LifecycleConfiguration { rules: vec![r] }))
        .await
        .unwrap();
    e.create_upload("b", "tmp/a", ObjectMetadata::default())
        .await
        .unwrap();
    e.create_upload("b", "keep/b", ObjectMetadata::default())
        .await
        .unwrap();
    assert_eq!(pass_after(&e, 1).await.aborted_uploads, 0);
    assert_eq!(pass_after(&e, 4).await.aborted_uploads, 1);
    let page = e
        .list_uploads("b", String::new(), None, None, None, 100)
        .await
        .unwrap();
    let keys: Vec<_> = page.uploads.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["keep/b"]);
}

#[tokio::test]
async fn rules_live_and_die_with_their_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    assert_eq!(e.bucket_lifecycle("b").unwrap(), None);
    let mut r = rule("r", "p/");
    r.expiration = Some(Expiration::Days(30));
    let config = LifecycleConfiguration { rules: vec![r] };
    e.set_bucket_lifecycle("b", Some(config.clone()))
        .await
        .unwrap();
    assert_eq!(e.bucket_lifecycle("b").unwrap(), Some(config.clone()));
    let v = put(&e, "p/x", b"x").await;
    let header = e.lifecycle_expiration("b", "p/x", &v).unwrap().unwrap();
    assert!(header.starts_with("expiry-date=\""), "{header}");
    assert!(header.ends_with("GMT\", rule-id=\"r\""), "{header}");
    assert_eq!(e.lifecycle_expiration("b", "q/x", &v).unwrap(), None);
    e.delete_version("b", "p/x", VersionRef::Null, false)
        .await
        .unwrap();
    e.delete_bucket("b").await.unwrap();
    e.create_bucket("b").await.unwrap();
    assert_eq!(e.bucket_lifecycle("b").unwrap(), None);
    e.set_bucket_lifecycle("b", Some(config)).await.unwrap();
    e.set_bucket_lifecycle("b", None).await.unwrap();
    assert_eq!(e.bucket_lifecycle("b").unwrap(), None);
    assert!(matches!(
        e.set_bucket_lifecycle("nope", None).await,
        Err(EngineError::NoSuchBucket)
    ));
}

#[tokio::test]
async fn a_pass_stops_when_told_and_the_next_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    let mut r = rule("all", "");
    r.expiration = Some(Expiration::Days(1));
    e.set_bucket_lifecycle("b", Some(LifecycleConfiguration { rules: vec![r] }))
        .await
        .unwrap();
    for i in 0..5 {
        put(&e, &format!("k{i}"), b"x").await;
    }
    let opts = LifecyclePassOptions {
        now_ms: crate::now_ms() + 3 * DAY_MS,
        actions_per_sec: 0,
    };
    let stopped = e.run_lifecycle_pass(opts, &|| false).await.unwrap();
    assert_eq!(stopped.expired_current, 0);
    assert_eq!(versions(&e).await.len(), 5);
    assert_eq!(pass_after(&e, 3).await.expired_current, 5);
    assert!(versions(&e).await.is_empty());
}
