//! Immutable backups, end to end: what versioning and Object Lock give a
//! backup against someone holding the backup's own key, and how a point in
//! time is brought back with rclone — real rclone and restic against a real
//! `cairn`, every restore compared byte for byte.
//!
//! * rclone and versions: a tree uploaded to a versioned bucket, changed and
//!   synced again (files modified, one deleted: a delete marker);
//!   `rclone lsf --s3-versions` lists the old versions with a version suffix
//!   in their names, and `rclone copy --s3-version-at <a time between the two
//!   uploads>` restores the first tree exactly.
//! * The ransomware drill: an admin makes a bucket with Object Lock and a
//!   default COMPLIANCE retention, and a key for it alone; restic backs up
//!   with that key. The "attacker" holding the key deletes every object,
//!   overwrites some with garbage, tries to delete every version by id, to
//!   shorten or loosen their retention (with and without the governance
//!   bypass), to change the bucket's lock configuration, versioning, or to
//!   delete the bucket: every version survives. The admin copies the bucket
//!   as it was at backup time into a fresh bucket (`rclone copy` from a
//!   remote with `version_at`), and restic checks and restores it from there.
//!   The phases are timed and printed (`-- --nocapture`); docs/backup.md
//!   ("Immutable backups") keeps the last figures.
//!
//! A missing tool fails its test unless `CAIRN_SKIP_CLI_TESTS=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockRetention, ObjectLockRetentionMode, ObjectLockRule,
    VersioningConfiguration,
};

use crate::common::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `secs` since the epoch as RFC 3339 in UTC (`2026-12-05T00:45:12Z`), a
/// form rclone's time flags take whatever the local time zone.
fn rfc3339(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(DateTimeFormat::DateTime)
        .unwrap()
}

/// A point in time strictly between what was written before it and what is
/// written after it, at one-second resolution: waits past the current
/// second, takes that second, and waits past it again.
fn pause_for_a_point_in_time() -> i64 {
    std::thread::sleep(Duration::from_millis(1100));
    let at = now_secs();
    std::thread::sleep(Duration::from_millis(1100));
    at
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

/// Writes `files` (relative path → bytes) under `root`.
fn put_tree(root: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, data) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
}

/// Every file under `root` (relative path with `/` → bytes).
fn get_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walk_files(root)
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Asserts two trees are equal byte for byte, naming the first difference.
fn assert_trees_equal(
    got: &BTreeMap<String, Vec<u8>>,
    want: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: file names differ"
    );
    for (name, data) in want {
        let g = &got[name];
        if g != data {
            let at = g
                .iter()
                .zip(data.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(g.len().min(data.len()));
            panic!(
                "{what}: {name} differs ({} bytes, expected {}; first difference at {at})",
                g.len(),
                data.len()
            );
        }
    }
}

fn tree_bytes(tree: &BTreeMap<String, Vec<u8>>) -> u64 {
    tree.values().map(|v| v.len() as u64).sum()
}

/// rclone with an `s3` remote `cairn` signed with one key, set by
/// environment (an empty config file: the machine's cannot interfere), and
/// `asof`, the same remote seeing the bucket as it was at a given time.
struct Rclone<'a> {
    server: &'a TestServer,
    config: PathBuf,
    key: String,
    secret: String,
}

impl Rclone<'_> {
    fn new<'a>(server: &'a TestServer, dir: &Path, key: &str, secret: &str) -> Rclone<'a> {
        let config = dir.join(format!("rclone-{key}.conf"));
        std::fs::write(&config, "").unwrap();
        Rclone {
            server,
            config,
            key: key.to_owned(),
            secret: secret.to_owned(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command("rclone");
        cmd.env("RCLONE_CONFIG", &self.config).env("TZ", "UTC");
        for remote in ["CAIRN", "ASOF"] {
            for (name, value) in [
                ("TYPE", "s3"),
                ("PROVIDER", "Other"),
                ("ACCESS_KEY_ID", self.key.as_str()),
                ("SECRET_ACCESS_KEY", self.secret.as_str()),
                ("REGION", REGION),
            ] {
                cmd.env(format!("RCLONE_CONFIG_{remote}_{name}"), value);
            }
            cmd.env(
                format!("RCLONE_CONFIG_{remote}_ENDPOINT"),
                self.server.endpoint(),
            );
        }
        // Retries would hide server errors.
        cmd.args(["--retries", "1", "--low-level-retries", "1", "-v"])
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        run_checked(
            &mut self.cmd(args),
            &format!("rclone {}", args.join(" ")),
            self.server,
        )
    }

    /// `rclone copy asof:<src> <dst>` with `asof` seeing `src` as it was
    /// at `at` (its `version_at` option).
    fn copy_as_of(&self, at: &str, src: &str, dst: &str) -> String {
        let mut cmd = self.cmd(&["copy", &format!("asof:{src}"), dst]);
        cmd.env("RCLONE_CONFIG_ASOF_VERSION_AT", at);
        run_checked(
            &mut cmd,
            &format!("rclone copy asof:{src} {dst} (version_at {at})"),
            self.server,
        )
    }

    /// `rclone lsf -R --files-only --format sp <extra> <remote>`: name →
    /// size.
    fn lsf(&self, remote: &str, extra: &[&str]) -> BTreeMap<String, u64> {
        let mut args = vec![
            "lsf",
            "-R",
            "--files-only",
            "--format",
            "sp",
            "--separator",
            "\t",
        ];
        args.extend_from_slice(extra);
        args.push(remote);
        self.run(&args)
            .lines()
            .filter(|l| !l.contains(" INFO ") && !l.contains(" DEBUG ") && !l.trim().is_empty())
            .map(|l| {
                let (size, name) = l
                    .split_once('\t')
                    .unwrap_or_else(|| panic!("lsf line {l:?}"));
                (name.to_owned(), size.parse().unwrap())
            })
            .collect()
    }
}

/// Splits rclone's version suffix off a name listed with `--s3-versions`:
/// `dir/a-v2026-12-05-004512-123.txt` → (`dir/a.txt`, `Some(stamp)`).
fn split_version_suffix(name: &str) -> (String, Option<String>) {
    // The suffix is `-v` + `YYYY-MM-DD-HHMMSS-mmm` (21 characters) before
    // the extension (rclone puts it before the last dot of the base name).
    const STAMP: usize = 21;
    let (dir, base) = match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    if stem.len() > STAMP + 2 {
        let (head, tail) = stem.split_at(stem.len() - STAMP - 2);
        let stamp = &tail[2..];
        let shape_ok = tail.starts_with("-v")
            && stamp.char_indices().all(|(i, c)| match i {
                4 | 7 | 10 | 17 => c == '-',
                _ => c.is_ascii_digit(),
            });
        if shape_ok {
            return (format!("{dir}{head}{ext}"), Some(stamp.to_owned()));
        }
    }
    (name.to_owned(), None)
}

// ---------------------------------------------------------------------------
// rclone and versions
// ---------------------------------------------------------------------------

#[test]
fn rclone_lists_old_versions_and_copies_the_tree_as_it_was_at_a_time() {
    if !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("rclone versions"));
    let rt = runtime();
    let admin = sdk_client(&server);
    rt.block_on(async {
        create_bucket(&admin, "versioned").await;
        admin
            .put_bucket_versioning()
            .bucket("versioned")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let rclone = Rclone::new(&server, tmp.path(), ACCESS_KEY, SECRET_KEY);

    let mut v1 = BTreeMap::new();
    v1.insert("notes.txt".to_owned(), rng.hex(3000).into_bytes());
    v1.insert("keep/same.bin".to_owned(), rng.bytes(40 * KIB + 1));
    v1.insert("dir/changed.bin".to_owned(), rng.bytes(700 * KIB + 3));
    v1.insert("dir/removed.dat".to_owned(), rng.bytes(123 * KIB));
    v1.insert("dir/sub/big.bin".to_owned(), rng.bytes(6 * MIB + 5));
    v1.insert("no-extension".to_owned(), rng.bytes(999));
    let src = tmp.path().join("src");
    put_tree(&src, &v1);
    rclone.run(&["sync", src.to_str().unwrap(), "cairn:versioned/tree"]);
    let between = pause_for_a_point_in_time();

    // The second state: three files changed (one shorter), one deleted
    // (rclone sync places a delete marker), one added; the others are left
    // alone (a file whose mtime alone changed would get a new version too:
    // rclone sets an mtime with a copy of the object onto itself).
    let mut changes = BTreeMap::new();
    changes.insert("notes.txt".to_owned(), rng.hex(2000).into_bytes());
    changes.insert("dir/changed.bin".to_owned(), rng.bytes(500 * KIB));
    changes.insert("no-extension".to_owned(), rng.bytes(1001));
    changes.insert("dir/added.txt".to_owned(), rng.hex(100).into_bytes());
    put_tree(&src, &changes);
    std::fs::remove_file(src.join("dir/removed.dat")).unwrap();
    let mut v2 = v1.clone();
    v2.extend(changes);
    v2.remove("dir/removed.dat");
    rclone.run(&["sync", src.to_str().unwrap(), "cairn:versioned/tree"]);

    // Without versions: the current state only.
    let sizes = |t: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, u64> {
        t.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect()
    };
    assert_eq!(rclone.lsf("cairn:versioned/tree", &[]), sizes(&v2));

    // With --s3-versions: every current file under its own name, and every
    // old version (the deleted file's too) with a version suffix.
    let listed = rclone.lsf("cairn:versioned/tree", &["--s3-versions"]);
    let mut current = BTreeMap::new();
    let mut old: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut old_names = BTreeMap::new();
    for (name, size) in &listed {
        match split_version_suffix(name) {
            (base, None) => {
                current.insert(base, *size);
            }
            (base, Some(_)) => {
                old.entry(base.clone()).or_default().push(*size);
                old_names.insert(base, name.clone());
            }
        }
    }
    assert_eq!(current, sizes(&v2), "current files in {listed:?}");
    let expected_old: BTreeMap<String, Vec<u64>> = [
        "notes.txt",
        "dir/changed.bin",
        "dir/removed.dat",
        "no-extension",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), vec![v1[k].len() as u64]))
    .collect();
    assert_eq!(old, expected_old, "old versions in {listed:?}");
    // An old version can be read by its suffixed name (as a filter: a
    // path naming it is taken for a directory, there being no such key).
    let old_notes = rclone.run(&[
        "cat",
        "--s3-versions",
        "--include",
        &format!("/{}", old_names["notes.txt"]),
        "cairn:versioned/tree",
    ]);
    assert!(
        old_notes.starts_with(std::str::from_utf8(&v1["notes.txt"]).unwrap()),
        "rclone cat of the old notes.txt: {}",
        &old_notes[..old_notes.len().min(400)]
    );

    // --s3-version-at a time between the uploads: the first tree, exactly.
    let at = rfc3339(between);
    let then = tmp.path().join("then");
    rclone.run(&[
        "copy",
        "--s3-version-at",
        &at,
        "cairn:versioned/tree",
        then.to_str().unwrap(),
    ]);
    assert_trees_equal(&get_tree(&then), &v1, "copy --s3-version-at");
    // And without it: the second.
    let now = tmp.path().join("now");
    rclone.run(&["copy", "cairn:versioned/tree", now.to_str().unwrap()]);
    assert_trees_equal(&get_tree(&now), &v2, "copy of the current state");
}

// ---------------------------------------------------------------------------
// The ransomware drill
// ---------------------------------------------------------------------------

const VAULT: &str = "vault";
/// The default retention of the drill's bucket.
const RETENTION_DAYS: i32 = 1;

/// restic with its repository at `s3:<endpoint>/<bucket>/repo`, signed with
/// one key.
struct Restic<'a> {
    server: &'a TestServer,
    bucket: String,
    key: String,
    secret: String,
    cache: PathBuf,
}

impl Restic<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command("restic");
        cmd.env("AWS_ACCESS_KEY_ID", &self.key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env(
                "RESTIC_REPOSITORY",
                format!("s3:{}/{}/repo", self.server.endpoint(), self.bucket),
            )
            .env("RESTIC_PASSWORD", "correct horse battery staple")
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        run_checked(
            &mut self.cmd(args),
            &format!("restic {} (bucket {})", args.join(" "), self.bucket),
            self.server,
        )
    }
}

/// One version (or delete marker) as ListObjectVersions reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    key: String,
    version: String,
    size: i64,
    etag: String,
}

/// Every version and every delete marker in `bucket`, all pages.
async fn list_versions(c: &aws_sdk_s3::Client, bucket: &str) -> (Vec<Listed>, Vec<Listed>) {
    let (mut versions, mut markers) = (Vec::new(), Vec::new());
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = c
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectVersions {bucket}: {}", show(&e)));
        for v in page.versions() {
            versions.push(Listed {
                key: v.key().unwrap().to_owned(),
                version: v.version_id().unwrap().to_owned(),
                size: v.size().unwrap_or_default(),
                etag: v.e_tag().unwrap_or_default().to_owned(),
            });
        }
        for m in page.delete_markers() {
            markers.push(Listed {
                key: m.key().unwrap().to_owned(),
                version: m.version_id().unwrap().to_owned(),
                size: 0,
                etag: String::new(),
            });
        }
        if page.is_truncated() != Some(true) {
            return (versions, markers);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
}

/// The current keys of `bucket` (ListObjectsV2, all pages).
async fn list_current(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {}", show(&e)));
        out.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

fn retention(mode: ObjectLockRetentionMode, until_secs: i64) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(DateTime::from_secs(until_secs))
        .build()
}

/// What the attacker tried, refusal by refusal.
#[derive(Debug, Default)]
struct Attack {
    markers_placed: usize,
    overwritten: usize,
    version_deletes_refused: usize,
    batch_deletes_refused: usize,
    retention_changes_refused: usize,
    bucket_changes_refused: usize,
}

/// The backup tree: small compressible text files and incompressible
/// random ones, 9.6 MiB in all.
fn drill_tree(rng: &mut Rng) -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    for i in 0..40 {
        t.insert(
            format!("documents/note-{i:02}.txt"),
            rng.hex(500 + 97 * i).into_bytes(),
        );
    }
    t.insert("photos/a.raw".to_owned(), rng.bytes(4 * MIB + 7));
    t.insert("photos/b.raw".to_owned(), rng.bytes(3 * MIB + MIB / 2));
    t.insert("db/dump.bin".to_owned(), rng.bytes(2 * MIB + 1));
    t.insert("empty".to_owned(), Vec::new());
    t
}

#[test]
fn ransomware_drill_with_the_backup_key_cannot_destroy_a_compliance_locked_restic_repository() {
    if !require_tool("restic", "version") || !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("ransomware drill"));
    let rt = runtime();
    let admin = sdk_client(&server);

    // The admin: a bucket with Object Lock, one day of COMPLIANCE by
    // default, and a key for it alone.
    rt.block_on(async {
        admin
            .create_bucket()
            .bucket(VAULT)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap();
        admin
            .put_object_lock_configuration()
            .bucket(VAULT)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(
                        ObjectLockRule::builder()
                            .default_retention(
                                DefaultRetention::builder()
                                    .mode(ObjectLockRetentionMode::Compliance)
                                    .days(RETENTION_DAYS)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let (ok, out, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &[
            "key",
            "create",
            "nightly-restic",
            "--allow",
            &format!("{VAULT}:rw"),
            "--json",
        ],
    );
    assert!(ok, "cairn admin key create: {err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let stolen = sdk_client_for(&server.endpoint(), &key, &secret, &[]);

    // The backup, with the bucket's own key.
    let tree = drill_tree(&mut rng);
    let src = tmp.path().join("src");
    put_tree(&src, &tree);
    let restic = Restic {
        server: &server,
        bucket: VAULT.to_owned(),
        key: key.clone(),
        secret: secret.clone(),
        cache: tmp.path().join("cache"),
    };
    let started = Instant::now();
    restic.run(&["init"]);
    // 4 MiB packs (restic's smallest; 16 by default): several data objects.
    let summary = restic.run(&[
        "backup",
        "--pack-size",
        "4",
        "--json",
        "--host",
        "drill",
        src.to_str().unwrap(),
    ]);
    let backup_time = started.elapsed();
    assert!(
        summary.contains("\"message_type\":\"summary\""),
        "restic backup --json:\n{summary}"
    );
    let (before, markers_before) = rt.block_on(list_versions(&admin, VAULT));
    let stored: i64 = before.iter().map(|v| v.size).sum();
    // Every version restic wrote carries the default retention.
    rt.block_on(async {
        for v in &before {
            let r = admin
                .get_object_retention()
                .bucket(VAULT)
                .key(&v.key)
                .version_id(&v.version)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetObjectRetention {}: {}", v.key, show(&e)));
            let r = r.retention().unwrap();
            assert_eq!(r.mode(), Some(&ObjectLockRetentionMode::Compliance));
            let until = r.retain_until_date().unwrap().secs();
            let expected = now_secs() + i64::from(RETENTION_DAYS) * 86_400;
            assert!((until - expected).abs() < 300, "{}: until {until}", v.key);
        }
    });
    let at = pause_for_a_point_in_time();

    // The attack, with the backup key.
    let started = Instant::now();
    let mut attack = Attack::default();
    rt.block_on(async {
        let current = list_current(&stolen, VAULT).await;
        assert!(current.iter().any(|k| k == "repo/config"), "{current:?}");
        // Garbage over the repository's config and snapshots (new versions),
        // then every object deleted without a version id (delete markers).
        for k in current
            .iter()
            .filter(|k| *k == "repo/config" || k.starts_with("repo/snapshots/"))
        {
            let junk = rng.bytes(512);
            stolen
                .put_object()
                .bucket(VAULT)
                .key(k)
                .body(junk.into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("overwrite {k}: {}", show(&e)));
            attack.overwritten += 1;
        }
        for k in &current {
            let d = stolen
                .delete_object()
                .bucket(VAULT)
                .key(k)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DeleteObject {k}: {}", show(&e)));
            assert_eq!(d.delete_marker(), Some(true), "{k}");
            attack.markers_placed += 1;
        }
        assert!(list_current(&stolen, VAULT).await.is_empty());

        // Every version, one by one by id, with and without the bypass.
        let (versions, _) = list_versions(&stolen, VAULT).await;
        for v in &versions {
            for bypass in [false, true] {
                let mut req = stolen
                    .delete_object()
                    .bucket(VAULT)
                    .key(&v.key)
                    .version_id(&v.version);
                if bypass {
                    req = req.bypass_governance_retention(true);
                }
                let e = req.send().await.expect_err("a locked version was deleted");
                assert_eq!(
                    sdk_error_code(&e).as_deref(),
                    Some("AccessDenied"),
                    "{v:?}: {}",
                    show(&e)
                );
                attack.version_deletes_refused += 1;
            }
        }
        // ... and all at once with DeleteObjects, with the bypass.
        for batch in versions.chunks(1000) {
            let objects = batch
                .iter()
                .map(|v| {
                    ObjectIdentifier::builder()
                        .key(&v.key)
                        .version_id(&v.version)
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            let out = stolen
                .delete_objects()
                .bucket(VAULT)
                .bypass_governance_retention(true)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            assert!(out.deleted().is_empty(), "{:?}", out.deleted());
            assert_eq!(out.errors().len(), batch.len());
            for e in out.errors() {
                assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
            }
            attack.batch_deletes_refused += batch.len();
        }
        // Shorter retention, a looser mode, with and without the bypass.
        for v in &versions {
            for (mode, until, bypass) in [
                (ObjectLockRetentionMode::Compliance, now_secs() + 60, false),
                (ObjectLockRetentionMode::Compliance, now_secs() + 60, true),
                (
                    ObjectLockRetentionMode::Governance,
                    now_secs() + 2 * 86_400,
                    true,
                ),
            ] {
                let e = stolen
                    .put_object_retention()
                    .bucket(VAULT)
                    .key(&v.key)
                    .version_id(&v.version)
                    .bypass_governance_retention(bypass)
                    .retention(retention(mode.clone(), until))
                    .send()
                    .await
                    .expect_err("a retention was shortened or loosened");
                assert_eq!(
                    sdk_error_code(&e).as_deref(),
                    Some("AccessDenied"),
                    "{v:?} {mode:?}: {}",
                    show(&e)
                );
                attack.retention_changes_refused += 1;
            }
        }
        // The bucket itself: its versioning, the bucket.
        let e = stolen
            .put_bucket_versioning()
            .bucket(VAULT)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .expect_err("the backup key suspended versioning");
        // A bucket with Object Lock is never suspended, whoever asks.
        assert!(
            matches!(
                sdk_error_code(&e).as_deref(),
                Some("InvalidBucketState" | "AccessDenied")
            ),
            "{}",
            show(&e)
        );
        attack.bucket_changes_refused += 1;
        let e = stolen
            .delete_bucket()
            .bucket(VAULT)
            .send()
            .await
            .expect_err("the backup key deleted the bucket");
        assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some("AccessDenied"),
            "{}",
            show(&e)
        );
        attack.bucket_changes_refused += 1;

        // COMPLIANCE: not even the admin key, bypass or not.
        let v = &versions[0];
        let e = admin
            .delete_object()
            .bucket(VAULT)
            .key(&v.key)
            .version_id(&v.version)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect_err("the admin deleted a COMPLIANCE version");
        assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some("AccessDenied"),
            "{}",
            show(&e)
        );
    });
    let attack_time = started.elapsed();
    // restic with the stolen key sees no repository any more...
    let out = restic
        .cmd(&["snapshots"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "restic snapshots after the attack");
    // ... but every version written by the backup is still there, unchanged.
    let (after, markers_after) = rt.block_on(list_versions(&admin, VAULT));
    let after_set: BTreeSet<&Listed> = after.iter().collect();
    for v in &before {
        assert!(after_set.contains(v), "{v:?} disappeared");
    }
    assert_eq!(after.len(), before.len() + attack.overwritten);
    assert_eq!(
        markers_after.len(),
        markers_before.len() + attack.markers_placed
    );

    // The recovery, by the admin: the bucket as it was at backup time,
    // copied into a fresh bucket.
    let started = Instant::now();
    rt.block_on(create_bucket(&admin, "recovered"));
    let rclone = Rclone::new(&server, tmp.path(), ACCESS_KEY, SECRET_KEY);
    rclone.copy_as_of(&rfc3339(at), VAULT, "cairn:recovered");
    let recovery_time = started.elapsed();
    let recovered = rt.block_on(list_current(&admin, "recovered"));
    let expected: BTreeSet<String> = before
        .iter()
        .filter(|v| !v.key.starts_with("repo/locks/"))
        .map(|v| v.key.clone())
        .collect();
    assert_eq!(
        recovered.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the recovered bucket holds what was current at backup time"
    );

    // restic, from the recovered bucket.
    let started = Instant::now();
    let restic = Restic {
        server: &server,
        bucket: "recovered".to_owned(),
        key: ACCESS_KEY.to_owned(),
        secret: SECRET_KEY.to_owned(),
        cache: tmp.path().join("cache-admin"),
    };
    let out = restic.run(&["check", "--read-data"]);
    assert!(out.contains("no errors were found"), "restic check:\n{out}");
    let target = tmp.path().join("restored");
    restic.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restore_time = started.elapsed();
    // restic restores under the absolute path that was backed up.
    let restored = get_tree(&target.join(src.strip_prefix("/").unwrap()));
    assert_trees_equal(&restored, &tree, "restic restore from the recovered bucket");

    eprintln!(
        "ransomware drill: tree {} in {} files; backup (init + backup) {backup_time:.1?}: \
         {} versions, {} stored; attack {attack_time:.1?}: {} objects overwritten, \
         {} delete markers placed, {} version deletes refused (with and without the bypass), \
         {} more in DeleteObjects, {} retention changes refused, {} bucket changes refused; \
         recovery (rclone copy as of {}) {recovery_time:.1?}: {} objects; \
         restic check --read-data + restore {restore_time:.1?}: equal",
        mib(tree_bytes(&tree)),
        tree.len(),
        before.len(),
        mib(stored as u64),
        attack.overwritten,
        attack.markers_placed,
        attack.version_deletes_refused,
        attack.batch_deletes_refused,
        attack.retention_changes_refused,
        attack.bucket_changes_refused,
        rfc3339(at),
        recovered.len(),
    );
}
