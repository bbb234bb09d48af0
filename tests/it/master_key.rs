//! `cairn admin master-key rotate` (issue 19): the master key of a stopped
//! server's data directory is replaced without touching chunk data. Every
//! object and sealed secret reads back under the new key; the old key is
//! refused at start with a clear message; an interrupted rotation starts
//! (with a warning) and finishes when the command runs again; a key that
//! comes from the environment is refused with how to proceed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli_clients::{cairn, run_within};
use crate::common::*;
use crate::data_dir_compat::refused_start;

const ROTATE_LIMIT: Duration = Duration::from_secs(60);
const BUCKET: &str = "rotated";

/// `cairn admin master-key rotate --data-dir DIR --master-key-file KEY`:
/// (success, stdout, stderr).
pub(crate) fn rotate(data_dir: &Path, key: &Path) -> (bool, String, String) {
    let (ok, out, err, _) = run_within(
        cairn()
            .args(["admin", "master-key", "rotate", "--data-dir"])
            .arg(data_dir)
            .arg("--master-key-file")
            .arg(key),
        ROTATE_LIMIT,
    );
    (ok, out, err)
}

/// A copy of `key` at `to` with mode 0600, as the server demands.
fn copy_key(key: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(key, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn new_file_of(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Objects of every kind the pipeline stores differently: inline, chunked
/// (several chunks, deduplicated against each other), multipart, empty.
async fn put_objects(c: &aws_sdk_s3::Client) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(test_seed("master_key_rotation"));
    create_bucket(c, BUCKET).await;
    let chunked = rng.bytes(3 * MIB);
    let mut twice = chunked.clone();
    twice.extend_from_slice(&chunked);
    let mut objects = vec![
        ("inline/small.txt".to_owned(), b"small and inline".to_vec()),
        ("empty".to_owned(), Vec::new()),
        ("chunked/3mib.bin".to_owned(), chunked),
        ("chunked/6mib-deduplicated.bin".to_owned(), twice),
    ];
    for (key, body) in &objects {
        put_bytes(c, BUCKET, key, body).await;
    }
    let parts = [rng.bytes(5 * MIB), rng.bytes(MIB + 17)];
    let key = "multipart/two-parts.bin";
    let up = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let etag = c
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .body(aws_sdk_s3::primitives::ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap()
            .e_tag()
            .unwrap()
            .to_owned();
        etags.push(etag);
    }
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(completed(&etags))
        .send()
        .await
        .unwrap();
    objects.push((key.to_owned(), parts.concat()));
    objects
}

async fn assert_objects(c: &aws_sdk_s3::Client, objects: &[(String, Vec<u8>)], what: &str) {
    for (key, body) in objects {
        let got = get_bytes(c, BUCKET, key).await;
        assert!(
            got == *body,
            "{what}: {key} reads back {} bytes, md5 {}, want {} bytes, md5 {}",
            got.len(),
            md5_hex(&got),
            body.len(),
            md5_hex(body)
        );
    }
}

/// The whole story of issue 19 on one data directory: data of every kind
/// and a second access key (its secret sealed in the metadata); rotate is
/// refused while the server runs; rotated offline; the server starts with
/// the new key and reads everything back byte for byte, the second key
/// signs; the old key is refused with the message; a second rotation works
/// the same way.
#[test]
fn a_rotated_data_dir_reads_back_everything_under_the_new_key_and_refuses_the_old() {
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        let objects = put_objects(&c).await;
        let (reader_id, reader_secret) = create_key(&server, "reader", &["rotated:rw"]);
        let data_dir = server.data_dir().to_owned();
        let key = server.master_key_file();
        // A new data directory: its root is random, sealed in a keyring
        // of one entry under the key — not the key's own bytes.
        {
            let master = cairn_crypto::MasterKey::load(&key).unwrap();
            let opened = cairn_crypto::keyring::open_data_root(&data_dir, &master).unwrap();
            assert_eq!(opened.keyring_entries, 1);
            assert!(
                !opened.root.is_bytes_of(&master),
                "the first key is not the data root"
            );
        }
        let keyring_before = std::fs::read(data_dir.join("keyring")).unwrap();

        // A running server holds the data directory.
        let (ok, out, err) = rotate(&data_dir, &key);
        assert!(!ok, "rotated under a running server:\n{out}{err}");
        assert!(
            err.contains("a cairn server is running on the data directory")
                && err.contains(&format!("pid {}", server.pid().unwrap())),
            "{err}"
        );
        assert!(!new_file_of(&key).exists());
        assert_eq!(
            std::fs::read(data_dir.join("keyring")).unwrap(),
            keyring_before,
            "a refused rotation leaves the keyring as it was"
        );

        server.stop();
        let keep = tempfile::tempdir().unwrap();
        let old_key = keep.path().join("old.key");
        copy_key(&key, &old_key);
        let (ok, out, err) = rotate(&data_dir, &key);
        assert!(ok, "rotate failed:\n{out}\n{err}");
        for step in ["1/4", "2/4", "3/4", "4/4"] {
            assert!(
                out.contains(&format!("cairn: {step} ")),
                "{step} in:\n{out}"
            );
        }
        assert!(
            out.contains("The new key (") && out.contains(&format!(") is in {}", key.display())),
            "{out}"
        );
        assert!(
            out.contains("no longer opens this data directory")
                && out.contains("Back up the new key apart from the data"),
            "{out}"
        );
        // The root is random: no note that the old key stays the root
        // (that is only for data directories made before random roots).
        assert!(!out.contains("data root"), "{out}");
        assert_ne!(
            std::fs::read(&key).unwrap(),
            std::fs::read(&old_key).unwrap(),
            "the key file holds a new key"
        );
        assert!(!new_file_of(&key).exists());
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [key.clone(), data_dir.join("keyring")] {
                let mode = std::fs::metadata(&file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", file.display());
            }
        }

        server.start_again();
        let c = sdk_client(&server);
        assert_objects(&c, &objects, "after the rotation").await;
        let reader = sdk_client_for(&server.endpoint(), &reader_id, &reader_secret, &[]);
        assert_objects(&reader, &objects[..1], "the second access key").await;
        put_bytes(&reader, BUCKET, "written-after-rotation", b"new").await;
        assert_eq!(
            get_bytes(&c, BUCKET, "written-after-rotation").await,
            b"new"
        );
        let (ok, out, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["scrub"]);
        assert!(ok, "scrub after the rotation: {out}\n{err}");
        assert_eq!(count_before(&out, "corrupt"), 0, "{out}");
        assert!(
            !server.stderr_text().contains("did not finish"),
            "a finished rotation warns of nothing:\n{}",
            server.stderr_text()
        );
        server.stop();

        // The old key is refused, with the message.
        let (ok, out, err) =
            refused_start(&data_dir, &["--master-key-file", old_key.to_str().unwrap()]);
        assert!(!ok, "started with the old key:\n{out}{err}");
        assert!(
            err.contains("the master key in use does not open this data directory's keyring")
                && err.contains(&old_key.display().to_string()),
            "{err}"
        );
        assert!(!out.contains("listening"), "{out}");

        // A second rotation: the first new key is retired in turn, and the
        // note about the data root is not printed (it is not that key).
        let first_new = keep.path().join("first-new.key");
        copy_key(&key, &first_new);
        let (ok, out, err) = rotate(&data_dir, &key);
        assert!(ok, "second rotation failed:\n{out}\n{err}");
        assert!(!out.contains("data root"), "{out}");
        let (ok, _, err) = refused_start(
            &data_dir,
            &["--master-key-file", first_new.to_str().unwrap()],
        );
        assert!(
            !ok && err.contains("does not open this data directory's keyring"),
            "{err}"
        );
        server.start_again();
        let c = sdk_client(&server);
        assert_objects(&c, &objects, "after the second rotation").await;
    });
}

/// A rotation stopped after step 2 (the keyring opens with both keys, the
/// new key still in `<key>.new`): the server starts with the old key and
/// warns; running the command again finishes with the key from `.new`,
/// never a second one.
#[test]
fn an_interrupted_rotation_starts_with_a_warning_and_finishes_when_run_again() {
    use cairn_crypto::MasterKey;
    use cairn_crypto::keyring::open_data_root;
    use cairn_crypto::rotation::{RotationFiles, new_key, write_keyring};
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, BUCKET).await;
        let body = Rng::new(7).bytes(2 * MIB);
        put_bytes(&c, BUCKET, "object", &body).await;
        server.stop();

        let (data_dir, key) = (server.data_dir().to_owned(), server.master_key_file());
        let files = RotationFiles::new(&data_dir, &key);
        let old = MasterKey::load(&key).unwrap();
        let root = open_data_root(&data_dir, &old).unwrap().root;
        let (new, generated) = new_key(&files).unwrap();
        assert!(generated);
        write_keyring(&files, &root, &[&old, &new]).unwrap();

        server.start_again();
        let text = server.stderr_text_with("did not finish", Duration::from_secs(5));
        assert!(
            text.contains("a `cairn admin master-key rotate` did not finish")
                && text.contains("run the rotate command again"),
            "{text}"
        );
        assert_eq!(
            get_bytes(&sdk_client(&server), BUCKET, "object").await,
            body
        );
        server.stop();

        let (ok, out, err) = rotate(&data_dir, &key);
        assert!(ok, "{out}\n{err}");
        assert!(
            out.contains("continuing the interrupted rotation")
                && out.contains(&new.fingerprint().to_string()),
            "{out}"
        );
        assert_eq!(
            MasterKey::load(&key).unwrap().fingerprint(),
            new.fingerprint(),
            "the key generated before the interruption is the one installed"
        );
        server.start_again();
        assert_eq!(
            get_bytes(&sdk_client(&server), BUCKET, "object").await,
            body
        );
        assert!(!server.stderr_text().contains("did not finish"));
    });
}

/// A data directory that holds nothing yet (a key file, no metadata) can
/// be rotated; the server then starts on it with the new key, and a server
/// started without the key file is refused instead of given a fresh key.
#[test]
fn an_empty_data_dir_can_be_rotated_and_then_serves() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let key = tmp.path().join("data.master.key");
        std::fs::write(&key, format!("{}\n", "3c".repeat(32))).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let (ok, out, err) = rotate(&data_dir, &key);
        assert!(ok, "{out}\n{err}");
        assert!(data_dir.join("keyring").exists());

        let server = TestServer::start_in_with_args(
            &data_dir,
            vec!["--master-key-file".into(), key.display().to_string()],
        );
        let c = sdk_client(&server);
        create_bucket(&c, BUCKET).await;
        put_bytes(&c, BUCKET, "first", b"first object").await;
        assert_eq!(get_bytes(&c, BUCKET, "first").await, b"first object");
        drop(server);

        // Its key gone, the rotated directory is never given a fresh one.
        let moved = tmp.path().join("elsewhere.key");
        std::fs::rename(&key, &moved).unwrap();
        let (ok, out, err) = refused_start(&data_dir, &[]);
        assert!(!ok, "{out}{err}");
        assert!(err.contains("already holds data sealed under one"), "{err}");
        assert!(!key.exists(), "a new key was created");

        // And with no data at all, only a keyring: still no fresh key.
        let bare = tmp.path().join("bare");
        std::fs::create_dir(&bare).unwrap();
        std::fs::copy(data_dir.join("keyring"), bare.join("keyring")).unwrap();
        let (ok, _, err) = refused_start(&bare, &[]);
        assert!(
            !ok && err.contains("already holds data sealed under one"),
            "{err}"
        );
    });
}

/// A key from CAIRN_MASTER_KEY cannot be rotated in place: refused with how
/// to move it into a file; nothing is written. A key file that is missing
/// or a data directory that is missing are refused as such.
#[test]
fn rotation_of_a_key_from_the_environment_or_of_nothing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let (ok, out, err, _) = run_within(
        cairn()
            .args(["admin", "master-key", "rotate", "--data-dir"])
            .arg(&data_dir)
            .env("CAIRN_MASTER_KEY", "4d".repeat(32)),
        ROTATE_LIMIT,
    );
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("the master key comes from CAIRN_MASTER_KEY")
            && err.contains("Put it into a file first")
            && err.contains("--master-key-file"),
        "{err}"
    );
    assert!(
        !err.contains(&"4d".repeat(32)),
        "the key was printed: {err}"
    );
    assert!(!data_dir.join("keyring").exists());

    let (ok, _, err) = rotate(&data_dir, &tmp.path().join("no.key"));
    assert!(!ok && err.contains("nothing to rotate"), "{err}");
    assert!(!tmp.path().join("no.key").exists() && !tmp.path().join("no.key.new").exists());

    let (ok, _, err) = rotate(&tmp.path().join("missing"), &tmp.path().join("no.key"));
    assert!(!ok && err.contains("no data directory at"), "{err}");
}

/// A new data directory's root is random and kept only in its keyring: a
/// start without the keyring is refused, saying so (not a start that finds
/// its data unreadable), and succeeds again once the keyring is back.
#[test]
fn a_data_dir_whose_keyring_is_lost_says_so() {
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, BUCKET).await;
        put_bytes(&c, BUCKET, "kept", b"kept").await;
        server.stop();
        let data_dir = server.data_dir().to_owned();
        let keyring = data_dir.join("keyring");
        let aside = data_dir.with_extension("keyring-backup");
        std::fs::rename(&keyring, &aside).unwrap();
        let key = server.master_key_file();
        let (ok, out, err) =
            refused_start(&data_dir, &["--master-key-file", key.to_str().unwrap()]);
        assert!(!ok, "started without its keyring:\n{out}{err}");
        assert!(
            err.contains("keyring") && err.contains("is missing") && err.contains("Restore it"),
            "{err}"
        );
        assert!(!keyring.exists(), "a new keyring was made");
        std::fs::rename(&aside, &keyring).unwrap();
        server.start_again();
        assert_eq!(
            get_bytes(&sdk_client(&server), BUCKET, "kept").await,
            b"kept"
        );
    });
}
