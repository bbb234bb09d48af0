//! A data directory written by an earlier `cairn` still opens and reads
//! back exactly: `tests/fixtures/data-dir-v1` was made by the main of
//! before the issue-17 refactor (`tests/fixtures/make_data_dir_v1.py`:
//! inline, chunked, deduplicated, copied, tagged and multipart objects, a
//! deleted object, an in-progress upload, bucket tags, an access key with a
//! grant). Every later build must read every record, manifest, shard and
//! sealed secret in it — the on-disk formats never change silently.

use std::path::{Path, PathBuf};

use crate::common::*;

const FIXTURE: &str = "tests/fixtures/data-dir-v1";

/// A writable copy of the fixture (the server writes to its data dir).
fn copy_of_fixture() -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("cairn-compat-")
        .tempdir()
        .unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    copy_dir(&source, tmp.path());
    // Git keeps no 0600: the server refuses a key file others can read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tmp.path().join("master.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    tmp
}

fn manifest() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURE)
        .join("manifest.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The current build serving a copy of the fixture, and what the fixture's
/// manifest says it holds.
struct Upgraded {
    key: RemoveOnDrop,
    dir: tempfile::TempDir,
    server: TestServer,
    client: aws_sdk_s3::Client,
    manifest: serde_json::Value,
}

impl Upgraded {
    /// The upgrade as docs/operations.md says: the key moved out of the
    /// data directory first.
    fn start() -> Upgraded {
        let dir = copy_of_fixture();
        let key = dir.path().with_extension("master.key");
        std::fs::rename(dir.path().join("master.key"), &key).unwrap();
        let server = TestServer::start_in_with_args(
            dir.path(),
            vec!["--master-key-file".into(), key.display().to_string()],
        );
        let client = sdk_client(&server);
        Upgraded {
            key: RemoveOnDrop(key),
            dir,
            server,
            client,
            manifest: manifest(),
        }
    }

    fn bucket(&self) -> &str {
        text(&self.manifest["bucket"])
    }
}

/// `cairn server` on `dir`, expected to refuse to start (it would run
/// until the time limit otherwise): (success, stdout, stderr).
pub(crate) fn refused_start(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let (ok, out, err, _) = crate::cli_clients::run_within(
        crate::cli_clients::cairn()
            .arg("server")
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args),
        std::time::Duration::from_secs(60),
    );
    (ok, out, err)
}

/// A file removed when the test ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Versions before 2026-12 kept the master key inside the data directory.
/// Such a directory is refused — the message says how to move the key —
/// unless the operator accepts the risk; with the key moved beside the
/// directory (the new default place) it starts with no flag at all.
#[test]
fn a_master_key_inside_a_v1_data_dir_is_refused_until_moved_or_allowed() {
    run(async {
        let dir = copy_of_fixture();
        let (ok, out, err) = refused_start(dir.path(), &[]);
        assert!(!ok, "started with the key inside the data dir:\n{out}{err}");
        assert!(
            err.contains("the master key is inside the data directory") && err.contains("mv "),
            "{err}"
        );
        assert!(!out.contains("generated a new master key"), "{out}");

        let server = TestServer::start_in_with_args(
            dir.path(),
            vec!["--allow-master-key-in-data-dir".into()],
        );
        let c = sdk_client(&server);
        let names = c.list_buckets().send().await.unwrap();
        assert_eq!(names.buckets().len(), 2);
        drop(server);

        // Moved to the default place, beside the directory: no flag needed.
        let beside = dir.path().with_extension("master.key");
        let _cleanup = RemoveOnDrop(beside.clone());
        std::fs::rename(dir.path().join("master.key"), &beside).unwrap();
        let server = TestServer::start_in(dir.path());
        let c = sdk_client(&server);
        let names = c.list_buckets().send().await.unwrap();
        assert_eq!(names.buckets().len(), 2);
        drop(server);

        // Its key gone, the data directory is never given a fresh one.
        std::fs::remove_file(&beside).unwrap();
        let (ok, out, err) = refused_start(dir.path(), &[]);
        assert!(!ok, "started without its key:\n{out}{err}");
        assert!(err.contains("already holds data sealed under one"), "{err}");
        assert!(!beside.exists(), "a new key was created");
    });
}

/// Every object of the fixture's manifest reads back with its ETag, size
/// and MD5.
async fn assert_every_object_reads_back(
    c: &aws_sdk_s3::Client,
    manifest: &serde_json::Value,
    bucket: &str,
) {
    for (key, want) in manifest["objects"].as_object().unwrap() {
        let got = c.get_object().bucket(bucket).key(key).send().await.unwrap();
        assert_eq!(got.e_tag(), Some(text(&want["etag"])), "{key}");
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.len() as u64, want["size"].as_u64().unwrap(), "{key}");
        assert_eq!(md5_hex(&body), text(&want["md5"]), "{key}");
    }
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn every_object_of_a_v1_data_dir_reads_back_with_its_etag() {
    run(async {
        let u = Upgraded::start();
        let (c, m, bucket) = (&u.client, &u.manifest, u.bucket());
        let objects = m["objects"].as_object().unwrap();
        assert_every_object_reads_back(c, m, bucket).await;
        let listed = c.list_objects_v2().bucket(bucket).send().await.unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        let want: Vec<&str> = objects.keys().map(String::as_str).collect();
        assert_eq!(keys, want, "the listing has exactly the fixture's objects");
        let buckets = c.list_buckets().send().await.unwrap();
        let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, ["fixture-empty", "fixture-v1"]);
    });
}

#[test]
fn metadata_and_tags_of_a_v1_data_dir_are_kept() {
    run(async {
        let u = Upgraded::start();
        let (c, bucket) = (&u.client, u.bucket());
        let head = c
            .head_object()
            .bucket(bucket)
            .key("inline/small.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("text/plain"));
        assert_eq!(
            head.metadata()
                .and_then(|md| md.get("origin"))
                .map(String::as_str),
            Some("fixture")
        );
        let tags = c
            .get_object_tagging()
            .bucket(bucket)
            .key("tagged.txt")
            .send()
            .await
            .unwrap();
        let mut got: Vec<(String, String)> = tags
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("colour".to_owned(), "blue".to_owned()),
                ("size".to_owned(), "small".to_owned())
            ]
        );
        let bucket_tags = c.get_bucket_tagging().bucket(bucket).send().await.unwrap();
        let t = &bucket_tags.tag_set()[0];
        assert_eq!((t.key(), t.value()), ("fixture", "v1"));
    });
}

/// The files under `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walk_files(dir)
        .into_iter()
        .filter(|f| contains_bytes(&std::fs::read(f).unwrap_or_default(), needle))
        .collect()
}

/// A v1 data dir's metadata (user metadata, tags, checksums) is in
/// plaintext; soon after the upgrade a background pass stores every record
/// again sealed and compacts, so none of it is left readable in the data
/// dir's files — and every object still reads back with its metadata.
#[test]
fn a_v1_data_dirs_plaintext_metadata_is_sealed_in_the_background() {
    run(async {
        // The fixture's metadata store holds tag `colour=blue` of
        // tagged.txt in the clear. (Only the metadata store is searched:
        // four bytes may occur by chance in megabytes of drive segments.)
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
        for marker in [b"colour".as_slice(), b"blue"] {
            assert!(!files_containing(&fixture.join("meta"), marker).is_empty());
        }
        let mut u = Upgraded::start();
        let meta = u.dir.path().join("meta");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let sealed = metric_sum(
                &u.server.metrics(),
                "cairn_metadata_records_sealed_total",
                &[],
            );
            let left: Vec<PathBuf> = [b"colour".as_slice(), b"blue"]
                .iter()
                .flat_map(|m| files_containing(&meta, m))
                .collect();
            if sealed > 0.0 && left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sealed} records sealed; plaintext still in {left:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let tags = u
            .client
            .get_object_tagging()
            .bucket(u.bucket())
            .key("tagged.txt")
            .send()
            .await
            .unwrap();
        assert!(
            tags.tag_set()
                .iter()
                .any(|t| t.key() == "colour" && t.value() == "blue")
        );
        for (key, want) in u.manifest["objects"].as_object().unwrap() {
            let head = u
                .client
                .head_object()
                .bucket(u.bucket())
                .key(key)
                .send()
                .await
                .unwrap();
            assert_eq!(head.e_tag(), want["etag"].as_str(), "{key}");
        }
        // Stopped: still nothing in the clear.
        u.server.stop();
        for marker in [b"colour".as_slice(), b"blue"] {
            let left = files_containing(&meta, marker);
            assert!(left.is_empty(), "plaintext in {left:?}");
        }
    });
}

#[test]
fn an_upload_in_progress_in_a_v1_data_dir_completes() {
    run(async {
        let u = Upgraded::start();
        let (c, m, bucket) = (&u.client, &u.manifest, u.bucket());
        let p = &m["pending_upload"];
        let (key, upload_id) = (text(&p["key"]), text(&p["upload_id"]));
        let uploads = c
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let ids: Vec<&str> = uploads
            .uploads()
            .iter()
            .filter_map(|u| u.upload_id())
            .collect();
        assert_eq!(ids, [upload_id]);
        let parts = c
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .unwrap();
        let part = &parts.parts()[0];
        assert_eq!(part.e_tag(), Some(text(&p["part_etag"])));
        let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
            .parts(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(1)
                    .e_tag(text(&p["part_etag"]))
                    .build(),
            )
            .build();
        c.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(done)
            .send()
            .await
            .unwrap();
        assert_eq!(md5_hex(&get_bytes(c, bucket, key).await), text(&p["md5"]));
    });
}

#[test]
fn an_access_key_of_a_v1_data_dir_keeps_its_secret_and_grants() {
    run(async {
        let u = Upgraded::start();
        let (server, m, bucket) = (&u.server, &u.manifest, u.bucket());
        let key = &m["reader_key"];
        // Its name ("fixture reader") has a space, which `key create`
        // refuses now (IAM's user-name rule): only creation is refused, a
        // stored key of such a name keeps working.
        assert!(text(&key["name"]).contains(' '));
        let reader = sdk_client_for(
            &server.endpoint(),
            text(&key["id"]),
            text(&key["secret"]),
            &[],
        );
        let body = get_bytes(&reader, bucket, "tagged.txt").await;
        assert_eq!(
            md5_hex(&body),
            text(&m["objects"]["tagged.txt"]["md5"]),
            "the sealed secret opens and the read grant holds"
        );
        let err = reader
            .put_object()
            .bucket(bucket)
            .key("new")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error_code(&err).as_deref(), Some("AccessDenied"));
    });
}

#[test]
fn a_v1_data_dir_scrubs_clean_and_takes_new_writes() {
    run(async {
        let u = Upgraded::start();
        let (ok, out, err) = cairn_admin_as(&u.server, ACCESS_KEY, SECRET_KEY, &["scrub"]);
        assert!(ok, "scrub failed: {out}\n{err}");
        assert_eq!(count_before(&out, "missing"), 0, "{out}");
        assert_eq!(count_before(&out, "corrupt"), 0, "{out}");
        assert!(count_before(&out, "shards verified") > 0, "{out}");
        let c = &u.client;
        let body = Rng::new(0x5eed).bytes(300 * KIB);
        put_bytes(c, "fixture-v1", "written-after-upgrade", &body).await;
        assert_eq!(
            get_bytes(c, "fixture-v1", "written-after-upgrade").await,
            body
        );
    });
}

/// Versioning on a bucket written before versions existed: its objects are
/// the `null` versions, kept (and readable by `versionId=null`) when a new
/// version is written over them, and removable by that id.
#[test]
fn objects_of_a_v1_data_dir_become_null_versions_once_versioning_is_enabled() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    run(async {
        let u = Upgraded::start();
        let (c, m, bucket) = (&u.client, &u.manifest, u.bucket());
        let (key, want) = m["objects"].as_object().unwrap().iter().next().unwrap();
        c.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let put = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(b"after the upgrade".to_vec().into())
            .send()
            .await
            .unwrap();
        let new_id = put.version_id().unwrap().to_owned();
        assert_ne!(new_id, "null");
        let old = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id("null")
            .send()
            .await
            .unwrap();
        assert_eq!(old.e_tag(), Some(text(&want["etag"])));
        let body = old.body.collect().await.unwrap().into_bytes();
        assert_eq!(md5_hex(&body), text(&want["md5"]));
        let versions = c
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await
            .unwrap();
        let ids: Vec<(&str, bool)> = versions
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .map(|v| (v.version_id().unwrap(), v.is_latest().unwrap()))
            .collect();
        assert_eq!(ids, [(new_id.as_str(), true), ("null", false)]);
        c.delete_object()
            .bucket(bucket)
            .key(key)
            .version_id("null")
            .send()
            .await
            .unwrap();
        let gone = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id("null")
            .send()
            .await;
        assert!(gone.is_err(), "the null version was deleted");
    });
}

/// A data directory written before keyrings existed has none, and opens as
/// before (its data root is its master key's own bytes). It can be rotated
/// like any other: everything — objects of every kind, the upload in
/// progress, the sealed secret of its access key — reads back under the
/// new key, and its old key is refused.
#[test]
fn a_v1_data_dir_opens_without_a_keyring_and_can_be_rotated() {
    run(async {
        let mut u = Upgraded::start();
        let keyring = u.dir.path().join("keyring");
        assert!(
            !keyring.exists(),
            "an old data dir gets no keyring by starting"
        );
        u.server.stop();
        assert!(!keyring.exists());

        let key = u.key.0.clone();
        let old = u.dir.path().with_extension("old.key");
        let _old_cleanup = RemoveOnDrop(old.clone());
        std::fs::copy(&key, &old).unwrap();
        let _new_cleanup = RemoveOnDrop(u.dir.path().with_extension("master.key.new"));
        let (ok, out, err) = crate::master_key::rotate(u.dir.path(), &key);
        assert!(ok, "rotating a v1 data dir:\n{out}\n{err}");
        assert!(keyring.exists());

        u.server.start_again();
        let c = sdk_client(&u.server);
        let (m, bucket) = (&u.manifest, u.bucket());
        assert_every_object_reads_back(&c, m, bucket).await;
        let reader = &m["reader_key"];
        let reader = sdk_client_for(
            &u.server.endpoint(),
            text(&reader["id"]),
            text(&reader["secret"]),
            &[],
        );
        assert_eq!(
            md5_hex(&get_bytes(&reader, bucket, "tagged.txt").await),
            text(&m["objects"]["tagged.txt"]["md5"]),
            "the access key's sealed secret opens under the rotated key"
        );
        let uploads = c
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(uploads.uploads().len(), 1, "the upload in progress is kept");
        u.server.stop();

        let (ok, out, err) =
            refused_start(u.dir.path(), &["--master-key-file", old.to_str().unwrap()]);
        assert!(
            !ok,
            "started with the v1 key after its rotation:\n{out}{err}"
        );
        assert!(
            err.contains("the master key in use does not open this data directory's keyring"),
            "{err}"
        );
    });
}
