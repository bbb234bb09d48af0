//! Versioning in the engine: history, delete markers, the `null` version
//! under suspension, permanent deletion with promotion, Object Lock
//! refusals, listing with markers — and a model of S3's rules that random
//! operation sequences are checked against (versions listed, stored
//! totals, chunk references).

use std::collections::BTreeMap;

use crate::parts::objects::{Located, check_deletable};
use crate::records::{ObjectLockConfig, Retention, RetentionMode, VersionRef, Versioning};
use crate::test_support::{XorShift, open_with, small_chunk_config, try_put, try_read};
use crate::{Engine, EngineError, ListQuery, VersionListQuery};

async fn engine(dir: &std::path::Path, versioning: Versioning) -> Engine {
    let e = open_with(small_chunk_config(dir), 0x42);
    e.create_bucket("b").await.unwrap();
    if versioning != Versioning::Unversioned {
        e.set_bucket_versioning("b", versioning).await.unwrap();
    }
    e
}

async fn put(e: &Engine, key: &str, data: &[u8]) -> crate::ObjectVersion {
    try_put(e, "b", key, data, 4096).await.unwrap()
}

async fn read_version(e: &Engine, key: &str, id: &str) -> Result<Vec<u8>, EngineError> {
    let r = VersionRef::parse(id).unwrap();
    let v = e.head_version("b", key, Some(&r))?;
    let mut reader = e.read_version(v, None)?;
    let mut out = Vec::new();
    while let Some(b) = reader.next_bytes().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

/// Every (key, version id, is delete marker, is latest) of the bucket,
/// read in pages of `page`.
async fn all_versions(e: &Engine, page: usize) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let mut q = VersionListQuery {
        max_keys: page,
        ..Default::default()
    };
    loop {
        let p = e.list_versions("b", q.clone()).await.unwrap();
        for v in &p.versions {
            out.push((
                v.key.clone(),
                v.version.public_id(),
                v.version.delete_marker,
                v.is_latest,
            ));
        }
        if !p.is_truncated {
            return out;
        }
        q.key_marker = p.next_key_marker;
        q.version_id_marker = p
            .next_version_id_marker
            .map(|m| VersionRef::parse(&m).unwrap());
    }
}

fn consistent(e: &Engine) {
    e.check_stored_totals().unwrap();
    let report = e.inner.recount_references().unwrap();
    assert_eq!(report.refcounts_fixed, 0, "chunk references drifted");
}

#[tokio::test]
async fn versioned_puts_keep_every_version_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let v = put(&e, "k", &vec![i; 5000 + usize::from(i)]).await;
        assert!(!v.null_version);
        ids.push(v.public_id());
    }
    let listed = all_versions(&e, 1000).await;
    let listed_ids: Vec<_> = listed.iter().map(|(_, id, _, _)| id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed_ids, newest_first);
    assert_eq!(
        listed.iter().map(|l| l.3).collect::<Vec<_>>(),
        [true, false, false]
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            read_version(&e, "k", id).await.unwrap(),
            vec![i as u8; 5000 + i]
        );
    }
    consistent(&e);
}

#[tokio::test]
async fn a_delete_places_a_marker_and_deleting_the_marker_restores_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    put(&e, "k", b"data").await;
    let outcome = e.delete_object("b", "k").await.unwrap();
    assert!(outcome.delete_marker);
    let marker = outcome.version_id.unwrap();
    match e.head_object("b", "k") {
        Err(EngineError::DeleteMarker {
            version_id, named, ..
        }) => {
            assert_eq!(version_id, marker);
            assert!(!named);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        e.head_version("b", "k", VersionRef::parse(&marker).as_ref()),
        Err(EngineError::DeleteMarker { named: true, .. })
    ));
    let page = e
        .list_objects(
            "b",
            ListQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.objects.is_empty(), "a deleted key is not listed");
    // Removing the marker makes the data version current again.
    let removed = e
        .delete_version("b", "k", VersionRef::parse(&marker).unwrap(), false)
        .await
        .unwrap();
    assert!(removed.delete_marker);
    assert_eq!(try_read(&e, "b", "k", None).await.unwrap(), b"data");
    consistent(&e);
}

#[tokio::test]
async fn deleting_the_current_version_promotes_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    put(&e, "k", b"one").await;
    let two = put(&e, "k", b"two").await;
    e.delete_version(
        "b",
        "k",
        VersionRef::parse(&two.public_id()).unwrap(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(try_read(&e, "b", "k", None).await.unwrap(), b"one");
    assert!(matches!(
        read_version(&e, "k", &two.public_id()).await,
        Err(EngineError::NoSuchVersion)
    ));
    // A version that does not exist: success, nothing changes (as S3).
    e.delete_version(
        "b",
        "k",
        VersionRef::parse(&two.public_id()).unwrap(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(all_versions(&e, 10).await.len(), 1);
    consistent(&e);
}

#[tokio::test]
async fn an_object_from_before_versioning_is_the_null_version() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    put(&e, "k", b"before").await;
    e.set_bucket_versioning("b", Versioning::Enabled)
        .await
        .unwrap();
    put(&e, "k", b"after").await;
    assert_eq!(read_version(&e, "k", "null").await.unwrap(), b"before");
    let listed = all_versions(&e, 10).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].1, "null");
    consistent(&e);
}

#[tokio::test]
async fn a_suspended_bucket_replaces_only_the_null_version() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Unversioned).await;
    put(&e, "k", b"null-1").await;
    e.set_bucket_versioning("b", Versioning::Enabled)
        .await
        .unwrap();
    let kept = put(&e, "k", b"versioned").await;
    e.set_bucket_versioning("b", Versioning::Suspended)
        .await
        .unwrap();
    let v = put(&e, "k", b"null-2").await;
    assert!(v.null_version);
    let listed = all_versions(&e, 10).await;
    let ids: Vec<_> = listed.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(ids, ["null", kept.public_id().as_str()]);
    assert_eq!(read_version(&e, "k", "null").await.unwrap(), b"null-2");
    // Another PUT replaces the current null version in place.
    put(&e, "k", b"null-3").await;
    assert_eq!(all_versions(&e, 10).await.len(), 2);
    // A DELETE places a null delete marker, replacing the null version.
    let d = e.delete_object("b", "k").await.unwrap();
    assert_eq!(d.version_id.as_deref(), Some("null"));
    let listed = all_versions(&e, 10).await;
    assert_eq!(listed.len(), 2);
    assert!(listed[0].2, "the null version is now a marker");
    consistent(&e);
    // Never back to unversioned.
    assert!(
        e.set_bucket_versioning("b", Versioning::Unversioned)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn object_lock_refuses_deletion_and_a_bucket_with_it_cannot_be_suspended() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_with(small_chunk_config(dir.path()), 0x42);
    e.create_bucket_with("b", true).await.unwrap();
    assert!(matches!(
        e.set_bucket_versioning("b", Versioning::Suspended).await,
        Err(EngineError::InvalidBucketState(_))
    ));
    let v = put(&e, "k", b"locked").await;
    let r = VersionRef::parse(&v.public_id()).unwrap();
    let until = crate::now_ms() + 3_600_000;
    e.update_version("b", "k", Some(r), move |v| {
        v.retention = Some(Retention {
            mode: RetentionMode::Governance,
            until_ms: until,
        });
        Ok(())
    })
    .await
    .unwrap();
    assert!(matches!(
        e.delete_version("b", "k", r, false).await,
        Err(EngineError::ObjectLocked)
    ));
    // A delete marker is not a deletion: allowed.
    e.delete_object("b", "k").await.unwrap();
    assert_eq!(
        read_version(&e, "k", &v.public_id()).await.unwrap(),
        b"locked"
    );
    // GOVERNANCE yields to a bypass.
    e.delete_version("b", "k", r, true).await.unwrap();
    consistent(&e);
    // A bucket holding only a delete marker is not empty.
    assert!(matches!(
        e.delete_bucket("b").await,
        Err(EngineError::BucketNotEmpty)
    ));
    let _ = ObjectLockConfig::default();
    let _ = check_deletable;
    let _ = |l: Located| l.into_version();
}

#[tokio::test]
async fn listing_versions_pages_through_markers_prefixes_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    for key in ["a", "d/1", "d/2", "z"] {
        for i in 0..3u8 {
            put(&e, key, &[i; 10]).await;
        }
        e.delete_object("b", key).await.unwrap();
    }
    let whole = all_versions(&e, 1000).await;
    assert_eq!(whole.len(), 16);
    for page in 1..6 {
        assert_eq!(all_versions(&e, page).await, whole, "page size {page}");
    }
    // A delimiter rolls d/ into one common prefix.
    let p = e
        .list_versions(
            "b",
            VersionListQuery {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.common_prefixes, ["d/"]);
    assert_eq!(p.versions.len(), 8);
}

#[tokio::test]
async fn listings_skip_deleted_keys_and_prefixes_holding_only_markers() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Versioning::Enabled).await;
    for key in ["a", "gone/1", "gone/2", "kept/1", "kept/2", "z"] {
        put(&e, key, b"x").await;
    }
    for key in ["a", "gone/1", "gone/2", "kept/1"] {
        e.delete_object("b", key).await.unwrap();
    }
    let list = |max_keys| {
        e.list_objects(
            "b",
            ListQuery {
                delimiter: Some("/".into()),
                max_keys,
                ..Default::default()
            },
        )
    };
    let page = list(10).await.unwrap();
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["z"]);
    assert_eq!(page.common_prefixes, ["kept/"]);
    assert!(!page.is_truncated);
    // Full after "kept/" and "z", with only markers left: not truncated.
    let page = list(2).await.unwrap();
    assert!(!page.is_truncated);
}

/// What S3's rules say a key's versions are, newest first:
/// (content seed or None for a marker, is null).
type Model = BTreeMap<String, Vec<(Option<u8>, bool)>>;

#[tokio::test]
async fn random_operations_match_a_model_of_s3_versioning() {
    for seed in 1..=4u64 {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path(), Versioning::Unversioned).await;
        let mut rng = XorShift(seed * 0x2545_f491_4f6c_dd1d);
        let mut model: Model = BTreeMap::new();
        let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut versioning = Versioning::Unversioned;
        for step in 0..120 {
            let key = format!("k{}", rng.below(4));
            match rng.below(10) {
                0 => {
                    versioning = if rng.below(2) == 0 {
                        Versioning::Enabled
                    } else {
                        Versioning::Suspended
                    };
                    if let Err(EngineError::InvalidBucketState(_)) =
                        e.set_bucket_versioning("b", versioning).await
                    {
                        unreachable!();
                    }
                }
                1..=5 => {
                    let seed = rng.below(250) as u8;
                    let len = if rng.below(3) == 0 { 40_000 } else { 100 };
                    let v = put(&e, &key, &vec![seed; len]).await;
                    apply_write(&mut model, &key, Some(seed), versioning);
                    let _ = v;
                }
                6 | 7 => {
                    e.delete_object("b", &key).await.unwrap();
                    if versioning != Versioning::Unversioned || model.contains_key(&key) {
                        apply_write(&mut model, &key, None, versioning);
                    }
                }
                _ => {
                    // Permanently delete one listed version of the key.
                    let Some(list) = ids.get(&key).filter(|l| !l.is_empty()) else {
                        continue;
                    };
                    let i = rng.below(list.len() as u64) as usize;
                    let id = list[i].clone();
                    e.delete_version("b", &key, VersionRef::parse(&id).unwrap(), false)
                        .await
                        .unwrap();
                    if let Some(vs) = model.get_mut(&key) {
                        vs.remove(i);
                        if vs.is_empty() {
                            model.remove(&key);
                        }
                    }
                }
            }
            // The engine's versions, compared with the model's.
            let listed = all_versions(&e, 3).await;
            ids.clear();
            let mut seen: Model = BTreeMap::new();
            for (k, id, marker, _) in &listed {
                ids.entry(k.clone()).or_default().push(id.clone());
                let content = if *marker {
                    None
                } else {
                    Some(read_version(&e, k, id).await.unwrap()[0])
                };
                seen.entry(k.clone())
                    .or_default()
                    .push((content, id == "null"));
            }
            assert_eq!(seen, model, "seed {seed} step {step}");
        }
        consistent(&e);
    }
}

/// A PUT (`Some(seed)`) or a DELETE without version id (`None`) in the
/// model, by S3's rules.
fn apply_write(model: &mut Model, key: &str, content: Option<u8>, versioning: Versioning) {
    let vs = model.entry(key.to_owned()).or_default();
    match versioning {
        Versioning::Unversioned => {
            vs.clear();
            if content.is_some() {
                vs.push((content, true));
            }
        }
        Versioning::Enabled => vs.insert(0, (content, false)),
        Versioning::Suspended => {
            vs.retain(|(_, null)| !null);
            vs.insert(0, (content, true));
        }
    }
    if vs.is_empty() {
        model.remove(key);
    }
}
