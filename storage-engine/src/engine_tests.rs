//! Engine-level tests on real RocksDB and real drive directories.

use bytes::Bytes;
use cairn_crypto::DataRootKey;

use crate::meta::{Chunks, InlineData, Parts};
use crate::records::ObjectMetadata;
use crate::test_support::{
    open_with, pseudo_random, put_part, small_chunk_config, try_put, try_read,
};
use crate::{CompletedPart, Engine, EngineConfig, EngineError, ListQuery, NewPart};

struct Fixture {
    dir: tempfile::TempDir,
    engine: Engine,
}

fn master() -> DataRootKey {
    DataRootKey::from_hex(&"42".repeat(32)).unwrap()
}

fn open(dir: &std::path::Path) -> Engine {
    open_with(small_chunk_config(dir), 0x42)
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_bucket("bucket").await.unwrap();
    Fixture { dir, engine }
}

async fn put(e: &Engine, key: &str, data: &[u8]) -> crate::ObjectVersion {
    try_put(e, "bucket", key, data, 10_000).await.unwrap()
}

async fn get(e: &Engine, key: &str, range: Option<(u64, u64)>) -> Vec<u8> {
    try_read(e, "bucket", key, range).await.unwrap()
}

fn refcount(e: &Engine, id: &cairn_dedup::ChunkId) -> u64 {
    e.inner
        .meta
        .get::<Chunks>(id)
        .unwrap()
        .map(|r| r.refcount)
        .unwrap_or(0)
}

#[tokio::test]
async fn put_get_range_and_empty() {
    let f = fixture().await;
    let data = pseudo_random(1_500_000, 1);
    put(&f.engine, "a", &data).await;
    assert_eq!(get(&f.engine, "a", None).await, data);
    for (s, e) in [
        (0, 1),
        (100, 200_000),
        (299_999, 1_200_001),
        (1_499_999, 1_500_000),
    ] {
        assert_eq!(
            get(&f.engine, "a", Some((s, e))).await,
            &data[s as usize..e as usize]
        );
    }
    put(&f.engine, "empty", b"").await;
    assert!(get(&f.engine, "empty", None).await.is_empty());
    assert!(matches!(
        f.engine.head_object("bucket", "nope"),
        Err(EngineError::NoSuchKey)
    ));
}

#[tokio::test]
async fn large_manifest_uses_blocks_and_ranges_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::single_dir(dir.path());
    // Tiny chunks so a few MiB make more than one manifest block.
    cfg.chunker = cairn_dedup::ChunkerConfig {
        min_size_bytes: 256,
        avg_size_bytes: 1024,
        max_size_bytes: 4096,
    };
    let e = Engine::open(cfg, &master(), &prometheus::Registry::new()).unwrap();
    e.create_bucket("bucket").await.unwrap();
    let data = pseudo_random(3 << 20, 9);
    let v = put(&e, "big", &data).await;
    assert!(
        matches!(v.manifest, crate::ManifestRef::Blocks { ref block_first_offsets } if block_first_offsets.len() > 1)
    );
    assert_eq!(get(&e, "big", None).await, data);
    assert_eq!(
        get(&e, "big", Some((2_000_000, 2_100_000))).await,
        &data[2_000_000..2_100_000]
    );
}

#[tokio::test]
async fn dedup_refcounts_follow_overwrite_copy_and_delete() {
    let f = fixture().await;
    let e = &f.engine;
    let data = pseudo_random(300_000, 2);
    let v1 = put(e, "a", &data).await;
    let entries = e.inner.objects.manifest_entries(&v1).unwrap();
    let first = entries[0].chunk;
    assert_eq!(refcount(e, &first), 1);
    put(e, "b", &data).await;
    assert_eq!(refcount(e, &first), 2);
    // Overwrite "a" with the same data: still 2.
    put(e, "a", &data).await;
    assert_eq!(refcount(e, &first), 2);
    e.copy_object("bucket", "a", "bucket", "c", None)
        .await
        .unwrap();
    assert_eq!(refcount(e, &first), 3);
    // Copy onto itself (metadata change) keeps the count.
    e.copy_object(
        "bucket",
        "c",
        "bucket",
        "c",
        Some(ObjectMetadata::default()),
    )
    .await
    .unwrap();
    assert_eq!(refcount(e, &first), 3);
    // A copy pinned to a source version the key no longer has is refused
    // and changes nothing; pinned to the current one it goes through.
    let stale = v1.version_id;
    let current = e.head_object("bucket", "a").unwrap().version_id;
    assert_ne!(stale, current);
    let copy_pinned = |v| {
        e.copy_object_if(
            "bucket",
            "a",
            None,
            "bucket",
            "d",
            None,
            crate::WriteCondition::None,
            Some(v),
            Default::default(),
        )
    };
    assert!(matches!(
        copy_pinned(stale).await,
        Err(EngineError::SourceChanged)
    ));
    assert!(matches!(
        e.head_object("bucket", "d"),
        Err(EngineError::NoSuchKey)
    ));
    assert_eq!(refcount(e, &first), 3);
    copy_pinned(current).await.unwrap();
    assert_eq!(refcount(e, &first), 4);
    e.delete_object("bucket", "d").await.unwrap();
    for k in ["a", "b", "c"] {
        e.delete_object("bucket", k).await.unwrap();
    }
    assert_eq!(refcount(e, &first), 0);
    // Deleting again is fine.
    e.delete_object("bucket", "a").await.unwrap();
}

#[tokio::test]
async fn survives_two_lost_drives_and_a_corrupt_shard() {
    let f = fixture().await;
    let data = pseudo_random(800_000, 3);
    put(&f.engine, "x", &data).await;
    drop(f.engine);
    for d in [1, 4] {
        std::fs::remove_dir_all(f.dir.path().join("drives").join(d.to_string())).unwrap();
    }
    let e = open(f.dir.path());
    assert_eq!(get(&e, "x", None).await, data);
    // More than m losses (whatever read-repair rebuilt meanwhile) is too
    // many: the read fails rather than lying.
    e.wait_for_background_repairs().await;
    drop(e);
    for d in [0, 2, 3] {
        std::fs::remove_dir_all(f.dir.path().join("drives").join(d.to_string())).unwrap();
    }
    let e = open(f.dir.path());
    let mut r = e.read_object("bucket", "x", None).unwrap();
    let mut failed = false;
    while let Some(b) = r.next_bytes().await {
        if b.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
}

#[tokio::test]
async fn listing_with_delimiter_and_pages() {
    let f = fixture().await;
    let e = &f.engine;
    let keys = [
        "a/1",
        "a/2",
        "b",
        "c/x/1",
        "c/y",
        "d",
        "dir/",
        "dir/sub/z",
        "e+f",
        "é",
    ];
    for k in keys {
        put(e, k, k.as_bytes()).await;
    }
    let page = e
        .list_objects(
            "bucket",
            ListQuery {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let objs: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(objs, ["b", "d", "e+f", "é"]);
    assert_eq!(page.common_prefixes, ["a/", "c/", "dir/"]);
    assert!(!page.is_truncated);

    // Paging 2 at a time visits everything once, in order.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = e
            .list_objects(
                "bucket",
                ListQuery {
                    delimiter: Some("/".into()),
                    start_after: marker.clone(),
                    max_keys: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        seen.extend(page.common_prefixes.iter().cloned());
        if !page.is_truncated {
            break;
        }
        marker = page.last_returned.clone();
    }
    seen.sort();
    assert_eq!(seen, ["a/", "b", "c/", "d", "dir/", "e+f", "é"]);

    let page = e
        .list_objects(
            "bucket",
            ListQuery {
                prefix: "dir/".into(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let objs: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(objs, ["dir/"]);
    assert_eq!(page.common_prefixes, ["dir/sub/"]);

    assert!(matches!(
        e.delete_bucket("bucket").await,
        Err(EngineError::BucketNotEmpty)
    ));
}

#[tokio::test]
async fn multipart_complete_and_abort() {
    let f = fixture().await;
    let e = &f.engine;
    let id = e
        .create_upload("bucket", "mp", ObjectMetadata::default())
        .await
        .unwrap();
    let p1 = pseudo_random(5 << 20, 4);
    let p2 = pseudo_random(1000, 5);
    let mut md5s = Vec::new();
    for (n, data) in [(1u32, &p1), (2, &p2)] {
        md5s.push(put_part(e, "bucket", "mp", id, n, data).await);
    }
    // Wrong ETag and wrong order are refused.
    let bad = e
        .complete_upload(
            "bucket",
            "mp",
            id,
            vec![CompletedPart {
                part_number: 1,
                etag: "00".into(),
            }],
        )
        .await;
    assert!(matches!(
        bad,
        Err(EngineError::InvalidPart { part_number: 1 })
    ));
    let parts = vec![
        CompletedPart {
            part_number: 1,
            etag: format!("\"{}\"", hex::encode(md5s[0])),
        },
        CompletedPart {
            part_number: 2,
            etag: hex::encode(md5s[1]),
        },
    ];
    let v = e.complete_upload("bucket", "mp", id, parts).await.unwrap();
    assert!(v.etag.ends_with("-2"));
    assert_eq!(v.part_sizes, vec![5 << 20, 1000]);
    let mut want = p1.clone();
    want.extend_from_slice(&p2);
    assert_eq!(get(e, "mp", None).await, want);
    assert!(matches!(
        e.upload("bucket", "mp", id),
        Err(EngineError::NoSuchUpload)
    ));
    let entries = e.inner.objects.manifest_entries(&v).unwrap();
    assert_eq!(refcount(e, &entries[0].chunk), 1);

    // Abort releases part references.
    let id2 = e
        .create_upload("bucket", "mp2", ObjectMetadata::default())
        .await
        .unwrap();
    let mut w = e.object_writer("bucket").unwrap();
    w.write(Bytes::copy_from_slice(&p2)).await.unwrap();
    let staged = w.finish().await.unwrap();
    e.commit_part(
        "bucket",
        "mp2",
        id2,
        1,
        NewPart {
            staged,
            md5: [0; 16],
            checksums: vec![],
            cipher_stream: 0,
        },
    )
    .await
    .unwrap();
    let chunk = e
        .inner
        .meta
        .get::<Parts>((id2, 1))
        .unwrap()
        .unwrap()
        .entries[0]
        .chunk;
    assert_eq!(refcount(e, &chunk), 2);
    let uploads = e
        .list_uploads("bucket", String::new(), None, None, None, 100)
        .await
        .unwrap();
    assert_eq!(uploads.uploads.len(), 1);
    e.abort_upload("bucket", "mp2", id2).await.unwrap();
    assert_eq!(refcount(e, &chunk), 1);
}

#[tokio::test]
async fn concurrent_writers_of_identical_data_agree() {
    let f = fixture().await;
    let data = std::sync::Arc::new(pseudo_random(600_000, 6));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let e = f.engine.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            put(&e, &format!("k{i}"), &data).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = f.engine.head_object("bucket", "k0").unwrap();
    let entries = f.engine.inner.objects.manifest_entries(&v).unwrap();
    for en in &entries {
        assert_eq!(refcount(&f.engine, &en.chunk), 8);
    }
    for i in 0..8 {
        assert_eq!(get(&f.engine, &format!("k{i}"), None).await, *data);
    }
}

#[tokio::test]
async fn buckets_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.create_bucket("one").await.unwrap();
    assert!(matches!(
        e.create_bucket("one").await,
        Err(EngineError::BucketAlreadyOwnedByYou)
    ));
    e.create_bucket("two").await.unwrap();
    let names: Vec<_> = e
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["one", "two"]);
    e.delete_bucket("one").await.unwrap();
    assert!(matches!(
        e.bucket_info("one"),
        Err(EngineError::NoSuchBucket)
    ));
    assert!(matches!(
        e.object_writer("one"),
        Err(EngineError::NoSuchBucket)
    ));
}

#[tokio::test]
async fn credentials_are_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let record = crate::AccessKeyRecord {
        expires_ms: None,
        name: "test".into(),
        created_ms: 1,
        admin: false,
        grants: vec![crate::BucketGrant {
            prefix: String::new(),
            bucket: "b".into(),
            read: true,
            write: false,
        }],
    };
    e.put_access_key("AKTEST", "very-secret-value-123", record.clone())
        .await
        .unwrap();
    let stored = e.access_key("AKTEST").unwrap().unwrap();
    assert_eq!(stored.secret, "very-secret-value-123");
    assert_eq!(stored.record, record);
    let all = e.access_keys().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, "AKTEST");
    assert!(e.access_key("nope").unwrap().is_none());
    // Grants change in place; removing the last read/write removes it.
    let k = e
        .set_access_key_grant(
            "AKTEST",
            crate::BucketGrant {
                prefix: String::new(),
                bucket: "a".into(),
                read: true,
                write: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(k.record.grants.len(), 2);
    assert_eq!(k.record.grants[0].bucket, "a");
    let k = e
        .set_access_key_grant(
            "AKTEST",
            crate::BucketGrant {
                prefix: String::new(),
                bucket: "b".into(),
                read: false,
                write: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(k.record.grants.len(), 1);
    // Two grants on one bucket merge into one with both rights.
    let merged = e
        .create_access_key(crate::AccessKeyRecord {
            expires_ms: None,
            grants: vec![
                crate::BucketGrant {
                    prefix: String::new(),
                    bucket: "m".into(),
                    read: true,
                    write: false,
                },
                crate::BucketGrant {
                    prefix: String::new(),
                    bucket: "m".into(),
                    read: false,
                    write: true,
                },
            ],
            ..record.clone()
        })
        .await
        .unwrap();
    assert_eq!(merged.record.grants.len(), 1);
    assert!(merged.record.grants[0].read && merged.record.grants[0].write);
    assert_eq!(e.access_key_ids().unwrap().len(), 2);
    e.delete_access_key(&merged.id, false).await.unwrap();
    // The last admin key is kept when asked to.
    let admin = e
        .create_access_key(crate::AccessKeyRecord {
            expires_ms: None,
            admin: true,
            ..record.clone()
        })
        .await
        .unwrap();
    assert!(matches!(
        e.delete_access_key(&admin.id, true).await,
        Err(EngineError::InvalidAccessKey(_))
    ));
    e.delete_access_key(&admin.id, false).await.unwrap();
    assert!(matches!(
        e.delete_access_key(&admin.id, false).await,
        Err(EngineError::NoSuchAccessKey)
    ));
    drop(e);
    // The secret is nowhere in plaintext under the data dir.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(21).any(|w| w == b"very-secret-value-123"),
            "secret found in {}",
            entry.display()
        );
    }
}

/// Commits `pieces` as one object through a writer that may store it
/// inline (as PutObject does).
async fn put_allowing_inline(e: &Engine, key: &str, pieces: &[&[u8]]) -> crate::ObjectVersion {
    let mut w = e.object_writer("bucket").unwrap().allow_inline();
    for p in pieces {
        w.write(Bytes::copy_from_slice(p)).await.unwrap();
    }
    let staged = w.finish().await.unwrap();
    e.commit_object(
        "bucket",
        key,
        staged,
        "etag".into(),
        ObjectMetadata::default(),
    )
    .await
    .unwrap()
}

/// The size of the first object a listing of "bucket" returns.
async fn first_listed_size(e: &Engine) -> u64 {
    let query = crate::ListQuery {
        max_keys: 10,
        ..Default::default()
    };
    let page = e.list_objects("bucket", query).await.unwrap();
    page.objects[0].version.size
}

/// Every value of one column family, in key order.
fn raw_values(e: &Engine, cf: &'static str) -> Vec<Vec<u8>> {
    let mut it = e.inner.meta.range_iter(cf, None).unwrap();
    it.seek_to_first();
    let mut out = Vec::new();
    while let Some(v) = it.value() {
        out.push(v.to_vec());
        it.next();
    }
    it.status().unwrap();
    out
}

#[tokio::test]
async fn inline_objects_written_before_the_inline_data_family_still_work() {
    let f = fixture().await;
    let e = &f.engine;
    let small = pseudo_random(2000, 91);
    let v = put_allowing_inline(e, "old", &[&small]).await;
    // Rewrite it the way the previous format stored it: bytes in the record.
    let bucket = e.inner.objects.bucket("bucket").unwrap().id;
    let mut b = e.inner.meta.batch();
    b.put_object_with_bytes_in_record(bucket, "old", &v)
        .unwrap();
    b.delete::<InlineData>(v.version_id);
    e.inner.meta.write(b).unwrap();
    assert!(raw_values(e, crate::meta::CF_INLINE_DATA).is_empty());
    assert_eq!(get(e, "old", Some((5, 1500))).await, &small[5..1500]);
    assert_eq!(first_listed_size(e).await, 2000);
    // Copies and overwrites move to the new form; delete leaves nothing.
    e.copy_object("bucket", "old", "bucket", "new", None)
        .await
        .unwrap();
    assert_eq!(raw_values(e, crate::meta::CF_INLINE_DATA).len(), 1);
    assert_eq!(get(e, "new", None).await, small);
    e.delete_object("bucket", "old").await.unwrap();
    e.delete_object("bucket", "new").await.unwrap();
    assert!(raw_values(e, crate::meta::CF_INLINE_DATA).is_empty());
    assert!(raw_values(e, crate::meta::CF_OBJECTS).is_empty());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn small_objects_are_stored_inline_and_behave_like_any_other() {
    let f = fixture().await;
    let e = &f.engine;
    let small = pseudo_random(3000, 77);
    let v = put_allowing_inline(e, "tiny", &[&small[..1000], &small[1000..]]).await;
    assert!(matches!(
        v.manifest,
        crate::records::ManifestRef::Data { .. }
    ));
    assert!(
        e.inner
            .meta
            .page_after::<Chunks>(None, 10)
            .unwrap()
            .is_empty(),
        "no chunks"
    );
    assert_eq!(get(e, "tiny", None).await, small);
    assert_eq!(get(e, "tiny", Some((10, 2000))).await, &small[10..2000]);
    // The bytes in the record are sealed, not plaintext.
    let raw = e
        .inner
        .meta
        .object(e.inner.objects.bucket("bucket").unwrap().id, "tiny")
        .unwrap()
        .unwrap()
        .encode();
    assert!(!raw.windows(64).any(|w| w == &small[100..164]));
    // The stored record leaves the bytes to `inline_data`, so listings
    // never read them.
    let stored = raw_values(e, crate::meta::CF_OBJECTS);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].len() < 200, "record is {} bytes", stored[0].len());
    // Sealed at rest (`meta/sealing.rs`); opened, it decodes.
    assert_eq!(stored[0][0], 0xE5);
    let b = e.inner.objects.bucket("bucket").unwrap().id;
    let key = <crate::meta::Objects as crate::meta::Table>::key((b, "tiny"));
    let opened = e
        .inner
        .meta
        .plain(crate::MetaCf::Objects, &key, &stored[0])
        .unwrap();
    assert!(matches!(
        crate::records::ObjectVersion::decode(&opened)
            .unwrap()
            .manifest,
        crate::records::ManifestRef::DataElsewhere { .. }
    ));
    assert_eq!(raw_values(e, crate::meta::CF_INLINE_DATA).len(), 1);
    assert_eq!(first_listed_size(e).await, 3000);

    // Copy keeps it inline; overwrite with a large body, delete: no refs leak.
    e.copy_object("bucket", "tiny", "bucket", "copy", None)
        .await
        .unwrap();
    assert_eq!(get(e, "copy", None).await, small);
    assert_eq!(raw_values(e, crate::meta::CF_INLINE_DATA).len(), 2);
    let big = pseudo_random(300_000, 78);
    put(e, "tiny", &big).await;
    assert_eq!(get(e, "tiny", None).await, big);
    assert_eq!(raw_values(e, crate::meta::CF_INLINE_DATA).len(), 1);
    e.delete_object("bucket", "tiny").await.unwrap();
    let chunks = e.inner.meta.page_after::<Chunks>(None, 100).unwrap();
    assert!(chunks.iter().all(|(_, r)| r.refcount == 0));
    assert_eq!(get(e, "copy", None).await, small);
    e.set_object_tags("bucket", "copy", None, vec![("k".into(), "v".into())])
        .await
        .unwrap();
    assert_eq!(get(e, "copy", None).await, small);
    e.delete_object("bucket", "copy").await.unwrap();
    assert!(raw_values(e, crate::meta::CF_INLINE_DATA).is_empty());

    // Bodies above the limit, and writers without allow_inline, use chunks.
    let mut w = e.object_writer("bucket").unwrap().allow_inline();
    w.write(Bytes::from(pseudo_random(5000, 79))).await.unwrap();
    let staged = w.finish().await.unwrap();
    assert!(staged.data.is_none());
}

/// The seam the cluster replicates (issue 8): every metadata change is a
/// `MetaCommand`, and a second store that applies the encoded commands in
/// order ends up with exactly the same metadata — chunk reference merges,
/// inline data, multipart state, GC deletions and all.
#[tokio::test]
async fn a_replica_applying_the_commands_holds_the_same_metadata() {
    let f = fixture().await;
    let e = &f.engine;
    let replica_dir = tempfile::tempdir().unwrap();
    // A replica has the cluster's data root, so the same metadata key.
    let root = cairn_crypto::DataRootKey::from_hex(&"42".repeat(32)).unwrap();
    let replica = crate::meta::MetaStore::open_sealed(replica_dir.path(), &root).unwrap();
    // Start the replica from what the fixture already wrote.
    let initial = crate::MetaCommand {
        guards: vec![],
        ops: e
            .inner
            .meta
            .dump()
            .into_iter()
            .map(|(cf, key, value)| crate::MetaOp::Put { cf, key, value })
            .collect(),
    };
    replica.apply(&initial, false).unwrap();
    e.inner.meta.record_commands();

    let big = pseudo_random(700_000, 3);
    put(e, "big", &big).await;
    put(e, "dup", &big).await; // dedup: merges onto existing chunks
    put_allowing_inline(e, "tiny", &[b"small body"]).await;
    e.copy_object("bucket", "tiny", "bucket", "tiny2", None)
        .await
        .unwrap();
    e.set_object_tags("bucket", "big", None, vec![("a".into(), "b".into())])
        .await
        .unwrap();
    let id = e
        .create_upload("bucket", "mp", ObjectMetadata::default())
        .await
        .unwrap();
    let md5 = put_part(e, "bucket", "mp", id, 1, &pseudo_random(300_000, 9)).await;
    e.complete_upload(
        "bucket",
        "mp",
        id,
        vec![CompletedPart {
            part_number: 1,
            etag: hex::encode(md5),
        }],
    )
    .await
    .unwrap();
    put(e, "big", &pseudo_random(200_000, 4)).await; // overwrite
    e.delete_object("bucket", "dup").await.unwrap();
    e.delete_object("bucket", "tiny").await.unwrap();
    e.collect_garbage(crate::GcOptions {
        grace: std::time::Duration::ZERO,
        compact_below_live_ratio: 0.0,
        upload_max_age: None,
        segment_settle: std::time::Duration::from_millis(100),
    })
    .await
    .unwrap();

    let commands = e.inner.meta.recorded_commands();
    assert!(commands.len() > 10, "{} commands", commands.len());
    for bytes in &commands {
        let command = crate::MetaCommand::decode(bytes).unwrap();
        replica.apply(&command, false).unwrap();
    }
    let (mine, theirs) = (e.inner.meta.dump(), replica.dump());
    assert_eq!(mine.len(), theirs.len());
    assert!(mine == theirs, "the replica's metadata differs");
}

/// A writer whose commit outcome is unknown keeps holding compaction back
/// after it is gone (its shards may still be committed), until it expires.
#[tokio::test]
async fn a_lingering_writer_keeps_the_compaction_horizon() {
    let f = fixture().await;
    let inner = &f.engine.inner;
    let before = crate::now_ms();
    let ticket = inner.writers.register_writer();
    let started = inner.writers.oldest_writer_ms();
    assert!(started >= before);
    ticket.linger(60_000);
    drop(ticket);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(inner.writers.oldest_writer_ms(), started);
    // Without lingering, a finished writer no longer counts.
    let ticket = inner.writers.register_writer();
    drop(ticket);
    assert_eq!(inner.writers.oldest_writer_ms(), started);
    let ticket = inner.writers.register_writer();
    ticket.linger(0);
    drop(ticket);
    // Expired lingerers are forgotten; only the first one still counts.
    assert_eq!(inner.writers.oldest_writer_ms(), started);
}
