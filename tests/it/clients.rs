//! Common S3 clients with their DEFAULT settings against a real `cairn`,
//! every transferred byte compared: boto3 (default checksums and
//! `when_required`), restic, s3cmd, rclone (sync / check --download / lsf /
//! delete / server-side copy) and the aws CLI (sync, presign, tagging,
//! copy-object, conditional put-object). The Python drivers live in `tests/clients/`.
//!
//! Every test drives one client (rclone and the aws CLI have a test per
//! behaviour). A missing tool fails its test with a clear message unless
//! `CAIRN_SKIP_CLI_TESTS=1` (CI installs them all via `.ci/run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `tests/it/<name>`.
fn driver(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("it")
        .join(name)
}

/// Like `require_tool` for a Python module (`python3 -c "import m"`).
pub(crate) fn require_python_module(module: &str) -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg(format!("import {module}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "NOTICE: Python module `{module}` is not installed; skipping (CAIRN_SKIP_CLI_TESTS=1)"
        );
        return false;
    }
    panic!(
        "Python module `{module}` is required for this test but is not installed \
         (CI installs it via .ci/run: pip install {module}); set CAIRN_SKIP_CLI_TESTS=1 to skip"
    );
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
            let rel = p.strip_prefix(root).unwrap();
            let rel = rel
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
    let got_names: Vec<&String> = got.keys().collect();
    let want_names: Vec<&String> = want.keys().collect();
    assert_eq!(got_names, want_names, "{what}: file names differ");
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

/// A varied tree: empty and tiny files, names with spaces, `+`, `&`,
/// unicode, nested directories, and one file of `big` bytes.
fn sample_tree(rng: &mut Rng, big: usize) -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    t.insert("empty.txt".to_owned(), Vec::new());
    t.insert("one.bin".to_owned(), rng.bytes(1));
    t.insert("readme.md".to_owned(), rng.hex(2500).into_bytes());
    t.insert("dir/a b+c&d.txt".to_owned(), rng.bytes(1234));
    t.insert("dir/sub/300k.bin".to_owned(), rng.bytes(300 * KIB + 7));
    t.insert("dir/sub/deeper/x.dat".to_owned(), rng.bytes(64 * KIB));
    t.insert("ünïcødé/файл.txt".to_owned(), rng.bytes(999));
    t.insert("big/big.bin".to_owned(), rng.bytes(big));
    t
}

// ---------------------------------------------------------------------------
// Regressions found by the clients
// ---------------------------------------------------------------------------

/// boto3 sends `Expect: 100-continue` even for an empty PUT. The server
/// answers it without a `100 Continue`, and botocore then parses the next
/// `Expect` request on that connection against the stale status line and
/// hangs until its read timeout. The server now closes such connections.
#[test]
fn expect_100_continue_with_an_empty_body_closes_the_connection() {
    let server = TestServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.s3_addr();
    let r = rt.block_on(
        RawRequest::new("PUT", "/expect-bucket")
            .sign(addr, Payload::Signed)
            .send(addr),
    );
    assert_eq!(r.status, 200, "create bucket: {}", r.text());

    let req = RawRequest::new("PUT", "/expect-bucket/empty")
        .header("expect", "100-continue")
        .header("content-length", "0")
        .sign(addr, Payload::Signed);
    let started = Instant::now();
    let resp = raw_tcp_exchange(addr, &req.to_wire(addr), false, Duration::from_secs(20))
        .expect("a response to the empty PUT");
    assert_eq!(resp.status, 200, "empty PUT: {}", resp.text());
    assert_eq!(
        resp.header("connection"),
        Some("close"),
        "an empty-bodied Expect request must end its connection"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the server kept the connection open after the response"
    );

    // A request with a body (100 Continue sent) keeps its connection.
    let req = RawRequest::new("PUT", "/expect-bucket/one")
        .header("expect", "100-continue")
        .body(b"x".to_vec())
        .sign(addr, Payload::Signed);
    let resp = rt.block_on(req.send(addr));
    assert_eq!(resp.status, 200, "1-byte PUT: {}", resp.text());
    assert_eq!(resp.header("connection"), None);
}

// ---------------------------------------------------------------------------
// boto3
// ---------------------------------------------------------------------------

fn boto3_suite(mode: &str) {
    if !require_python_module("boto3") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = clean_command("python3");
    aws_env(&mut cmd, &server, tmp.path());
    cmd.arg(driver("boto3_suite.py")).arg(mode).arg(tmp.path());
    let out = run_checked(&mut cmd, &format!("boto3_suite.py {mode}"), &server);
    assert!(out.contains("boto3 suite passed"), "boto3 ({mode}):\n{out}");
}

#[test]
fn boto3_with_default_checksums() {
    boto3_suite("default");
}

#[test]
fn boto3_with_checksums_when_required() {
    boto3_suite("when_required");
}

/// Runs `cmd` and returns its raw stdout (for byte comparisons).
fn run_bytes(cmd: &mut Command, what: &str, server: &TestServer) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stderr:\n{}\n--- cairn stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.stderr_text()
    );
    out.stdout
}

/// The ETag of `bucket/key` (through the SDK).
fn etag_of(server: &TestServer, bucket: &str, key: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt
        .block_on(
            sdk_client(server)
                .head_object()
                .bucket(bucket)
                .key(key)
                .send(),
        )
        .unwrap_or_else(|e| panic!("HEAD {bucket}/{key}: {e:?}"));
    h.e_tag().unwrap_or_default().to_owned()
}

fn sizes_of(tree: &BTreeMap<String, Vec<u8>>, prefix: &str) -> BTreeMap<String, u64> {
    tree.iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.len() as u64))
        .collect()
}

// ---------------------------------------------------------------------------
// restic
// ---------------------------------------------------------------------------

#[test]
fn restic_backup_check_restore_forget_prune() {
    if !require_tool("restic", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("restic"));
    let src = tmp.path().join("src");
    let v1 = sample_tree(&mut rng, 9 * MIB + 123);
    put_tree(&src, &v1);
    let restic = |args: &[&str]| {
        let mut cmd = clean_command("restic");
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env(
                "RESTIC_REPOSITORY",
                format!("s3:{}/restic-bucket/repo", server.endpoint()),
            )
            .env("RESTIC_PASSWORD", "correct horse battery staple")
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .current_dir(&src)
            .args(args);
        run_checked(&mut cmd, &format!("restic {}", args.join(" ")), &server)
    };

    // init creates the bucket and the repository.
    restic(&["init"]);
    assert!(
        list_sizes(&server, "restic-bucket", "repo/").contains_key("repo/config"),
        "no repo/config after restic init"
    );
    restic(&["backup", "--host", "cairn-test", src.to_str().unwrap()]);

    // A second snapshot: one file replaced, one removed, one added.
    let mut v2 = v1.clone();
    v2.insert("big/big.bin".to_owned(), rng.bytes(6 * MIB + 5));
    v2.remove("dir/sub/300k.bin");
    v2.insert("added/new.bin".to_owned(), rng.bytes(100 * KIB));
    std::fs::remove_dir_all(&src).unwrap();
    put_tree(&src, &v2);
    restic(&["backup", "--host", "cairn-test", src.to_str().unwrap()]);
    let out = restic(&["check", "--read-data"]);
    assert!(out.contains("no errors were found"), "restic check:\n{out}");

    // Restore both snapshots and compare byte for byte.
    let restore = |snapshot: &str, target: &Path| -> BTreeMap<String, Vec<u8>> {
        restic(&[
            "restore",
            snapshot,
            "--host",
            "cairn-test",
            "--target",
            target.to_str().unwrap(),
        ]);
        // restic restores under the absolute path that was backed up.
        let rel = src.strip_prefix("/").unwrap();
        get_tree(&target.join(rel))
    };
    assert_trees_equal(
        &restore("latest", &tmp.path().join("restore-latest")),
        &v2,
        "restic restore latest",
    );
    let snaps = restic(&["snapshots", "--json"]);
    let ids: Vec<&str> = snaps
        .split("\"short_id\":\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "two snapshots expected:\n{snaps}");
    // `snapshots` lists oldest first.
    assert_trees_equal(
        &restore(ids[0], &tmp.path().join("restore-first")),
        &v1,
        "restic restore of the first snapshot",
    );

    // forget the first snapshot and prune: the replaced data goes away.
    let data_before = list_sizes(&server, "restic-bucket", "repo/data/");
    restic(&["forget", "--keep-last", "1", "--prune"]);
    let data_after = list_sizes(&server, "restic-bucket", "repo/data/");
    let bytes = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    assert!(
        bytes(&data_after) < bytes(&data_before),
        "prune removed nothing: {} bytes of packs before, {} after",
        bytes(&data_before),
        bytes(&data_after)
    );
    let snaps = restic(&["snapshots", "--json"]);
    assert_eq!(
        snaps.matches("\"short_id\"").count(),
        1,
        "after forget:\n{snaps}"
    );
    let out = restic(&["check", "--read-data"]);
    assert!(
        out.contains("no errors were found"),
        "restic check after prune:\n{out}"
    );
    assert_trees_equal(
        &restore("latest", &tmp.path().join("restore-after-prune")),
        &v2,
        "restic restore after prune",
    );
}

// ---------------------------------------------------------------------------
// s3cmd
// ---------------------------------------------------------------------------

#[test]
fn s3cmd_put_get_ls_sync_del() {
    if !require_tool("s3cmd", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("s3cmd"));
    let host = server.s3_addr().to_string();
    // s3cmd's defaults except what every S3-compatible setup must say:
    // where the server is, plain HTTP, SigV4 and path-style addressing.
    let config = tmp.path().join("s3cfg");
    std::fs::write(
        &config,
        format!(
            "[default]\naccess_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n\
             host_base = {host}\nhost_bucket = {host}\nuse_https = False\n\
             signature_v2 = False\nbucket_location = {REGION}\n"
        ),
    )
    .unwrap();
    let s3cmd = |args: &[&str]| {
        let mut cmd = clean_command("s3cmd");
        cmd.arg("--config").arg(&config).args(args);
        run_checked(&mut cmd, &format!("s3cmd {}", args.join(" ")), &server)
    };

    s3cmd(&["mb", "s3://s3cmd-bucket"]);
    // put: a file below and one above the 15 MiB multipart chunk size.
    let small = rng.bytes(5000);
    let big = rng.bytes(20 * MIB + 99);
    let small_path = tmp.path().join("small.bin");
    let big_path = tmp.path().join("big.bin");
    std::fs::write(&small_path, &small).unwrap();
    std::fs::write(&big_path, &big).unwrap();
    s3cmd(&[
        "put",
        small_path.to_str().unwrap(),
        "s3://s3cmd-bucket/one/small file+.bin",
    ]);
    s3cmd(&[
        "put",
        big_path.to_str().unwrap(),
        "s3://s3cmd-bucket/one/big.bin",
    ]);
    assert_eq!(
        etag_of(&server, "s3cmd-bucket", "one/small file+.bin"),
        format!("\"{}\"", md5_hex(&small))
    );
    let etag = etag_of(&server, "s3cmd-bucket", "one/big.bin");
    assert!(
        etag.ends_with("-2\""),
        "20 MiB in 15 MiB chunks: a 2-part ETag, got {etag}"
    );

    // ls shows both with their sizes; a non-recursive ls shows the prefix.
    let out = s3cmd(&["ls", "s3://s3cmd-bucket/one/"]);
    for (name, len) in [("small file+.bin", small.len()), ("big.bin", big.len())] {
        assert!(
            out.lines()
                .any(|l| l.ends_with(&format!("s3://s3cmd-bucket/one/{name}"))
                    && l.split_whitespace().nth(2) == Some(&len.to_string())),
            "s3cmd ls lacks {name} ({len} bytes):\n{out}"
        );
    }
    let out = s3cmd(&["ls", "s3://s3cmd-bucket"]);
    assert!(
        out.contains("DIR") && out.contains("s3://s3cmd-bucket/one/"),
        "s3cmd ls:\n{out}"
    );

    // get both back.
    for (key, want) in [("one/small file+.bin", &small), ("one/big.bin", &big)] {
        let dst = tmp.path().join("got.bin");
        let _ = std::fs::remove_file(&dst);
        s3cmd(&[
            "get",
            &format!("s3://s3cmd-bucket/{key}"),
            dst.to_str().unwrap(),
        ]);
        assert!(
            std::fs::read(&dst).unwrap() == **want,
            "s3cmd get {key}: bytes differ"
        );
    }

    // sync a tree up, again (nothing to do), changed (with --delete-removed), and down.
    let src = tmp.path().join("src");
    let mut tree = sample_tree(&mut rng, 3 * MIB + 1);
    put_tree(&src, &tree);
    let src_arg = format!("{}/", src.display());
    s3cmd(&["sync", &src_arg, "s3://s3cmd-bucket/sync/"]);
    assert_eq!(
        list_sizes(&server, "s3cmd-bucket", "sync/"),
        sizes_of(&tree, "sync/")
    );
    let out = s3cmd(&["sync", &src_arg, "s3://s3cmd-bucket/sync/"]);
    assert!(
        !out.contains("upload:"),
        "second s3cmd sync uploaded again:\n{out}"
    );
    tree.insert("readme.md".to_owned(), rng.hex(4000).into_bytes());
    tree.remove("one.bin");
    std::fs::remove_file(src.join("one.bin")).unwrap();
    put_tree(&src, &tree);
    s3cmd(&[
        "sync",
        "--delete-removed",
        &src_arg,
        "s3://s3cmd-bucket/sync/",
    ]);
    assert_eq!(
        list_sizes(&server, "s3cmd-bucket", "sync/"),
        sizes_of(&tree, "sync/")
    );
    let back = tmp.path().join("back");
    s3cmd(&[
        "sync",
        "s3://s3cmd-bucket/sync/",
        &format!("{}/", back.display()),
    ]);
    assert_trees_equal(&get_tree(&back), &tree, "s3cmd sync down");

    // del one object, then a whole prefix, then the bucket.
    s3cmd(&["del", "s3://s3cmd-bucket/one/small file+.bin"]);
    assert_eq!(
        list_sizes(&server, "s3cmd-bucket", "one/")
            .keys()
            .collect::<Vec<_>>(),
        ["one/big.bin"]
    );
    s3cmd(&["del", "--recursive", "--force", "s3://s3cmd-bucket/"]);
    assert!(
        list_sizes(&server, "s3cmd-bucket", "").is_empty(),
        "objects left after del -r"
    );
    s3cmd(&["rb", "s3://s3cmd-bucket"]);
    let out = s3cmd(&["ls"]);
    assert!(
        !out.contains("s3cmd-bucket"),
        "bucket left after rb:\n{out}"
    );
}

// ---------------------------------------------------------------------------
// rclone (beyond tests/it/cli_clients.rs)
// ---------------------------------------------------------------------------

/// rclone against one server, through an `s3` remote named `cairn` set by
/// environment (an empty config file: the machine's cannot interfere).
struct Rclone<'a> {
    server: &'a TestServer,
    config: PathBuf,
}

impl Rclone<'_> {
    fn new<'a>(server: &'a TestServer, dir: &Path) -> Rclone<'a> {
        let config = dir.join("rclone.conf");
        std::fs::write(&config, "").unwrap();
        Rclone { server, config }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command("rclone");
        cmd.env("RCLONE_CONFIG", &self.config)
            .env("RCLONE_CONFIG_CAIRN_TYPE", "s3")
            .env("RCLONE_CONFIG_CAIRN_PROVIDER", "Other")
            .env("RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID", ACCESS_KEY)
            .env("RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RCLONE_CONFIG_CAIRN_ENDPOINT", self.server.endpoint())
            .env("RCLONE_CONFIG_CAIRN_REGION", REGION)
            // Retries would hide server errors.
            .args(["--retries", "1", "--low-level-retries", "1", "-v"])
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

    /// `rclone lsf -R`: every file under `remote` with its size.
    fn lsf(&self, remote: &str) -> BTreeMap<String, u64> {
        self.run(&[
            "lsf",
            "-R",
            "--files-only",
            "--format",
            "sp",
            "--separator",
            "\t",
            remote,
        ])
        .lines()
        .filter(|l| !l.contains(" INFO ") && !l.trim().is_empty())
        .map(|l| {
            let (size, name) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("lsf line {l:?}"));
            (name.to_owned(), size.parse().unwrap())
        })
        .collect()
    }

    /// `rclone check --download` of `local` against `remote`, which must
    /// find no difference; returns its log.
    fn check_download(&self, local: &Path, remote: &str) -> String {
        let out = self.run(&["check", "--download", local.to_str().unwrap(), remote]);
        assert!(
            out.contains("0 differences found"),
            "rclone check --download:\n{out}"
        );
        out
    }
}

/// The sample tree (a 7 MiB file) in `<dir>/src`, synced to
/// `cairn:rclone-more/s`, and checked there by `lsf`.
fn rclone_synced_tree(rclone: &Rclone, dir: &Path, rng: &mut Rng) -> BTreeMap<String, Vec<u8>> {
    let src = dir.join("src");
    let tree = sample_tree(rng, 7 * MIB + 3);
    put_tree(&src, &tree);
    rclone.run(&["mkdir", "cairn:rclone-more"]);
    rclone.run(&["sync", src.to_str().unwrap(), "cairn:rclone-more/s"]);
    assert_eq!(
        rclone.lsf("cairn:rclone-more/s"),
        sizes_of(&tree, ""),
        "lsf after sync"
    );
    tree
}

#[test]
fn rclone_sync_makes_the_remote_match_the_source_deletes_included() {
    if !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("rclone-more"));
    let rclone = Rclone::new(&server, tmp.path());
    let mut tree = rclone_synced_tree(&rclone, tmp.path(), &mut rng);
    let src = tmp.path().join("src");
    let out = rclone.check_download(&src, "cairn:rclone-more/s");
    assert!(
        out.contains(&format!("{} matching files", tree.len())),
        "rclone check --download:\n{out}"
    );

    // Change the source; sync makes the remote match (deletes included).
    tree.remove("dir/a b+c&d.txt");
    std::fs::remove_file(src.join("dir/a b+c&d.txt")).unwrap();
    tree.insert("readme.md".to_owned(), rng.hex(5000).into_bytes());
    tree.insert("new/one more.bin".to_owned(), rng.bytes(70 * KIB));
    put_tree(&src, &tree);
    let out = rclone.run(&["sync", src.to_str().unwrap(), "cairn:rclone-more/s"]);
    assert!(
        out.contains("Deleted"),
        "rclone sync should delete a.txt:\n{out}"
    );
    assert_eq!(
        rclone.lsf("cairn:rclone-more/s"),
        sizes_of(&tree, ""),
        "lsf after the second sync"
    );
    rclone.check_download(&src, "cairn:rclone-more/s");
}

#[test]
fn rclone_check_download_notices_a_corrupted_local_copy() {
    if !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("rclone-more"));
    let rclone = Rclone::new(&server, tmp.path());
    let tree = rclone_synced_tree(&rclone, tmp.path(), &mut rng);
    // A corrupted local copy is noticed by comparing content.
    let bad = tmp.path().join("bad");
    put_tree(&bad, &tree);
    let mut data = tree["dir/sub/deeper/x.dat"].clone();
    data[100] ^= 1;
    std::fs::write(bad.join("dir/sub/deeper/x.dat"), &data).unwrap();
    let out = rclone
        .cmd(&[
            "check",
            "--download",
            bad.to_str().unwrap(),
            "cairn:rclone-more/s",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && log.contains("1 differences found"),
        "check of a corrupted copy:\n{log}"
    );
}

#[test]
fn rclone_copyto_within_the_remote_is_a_server_side_copy_of_the_same_bytes() {
    if !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("rclone-more"));
    let rclone = Rclone::new(&server, tmp.path());
    let tree = rclone_synced_tree(&rclone, tmp.path(), &mut rng);
    for (from, to) in [
        (
            "cairn:rclone-more/s/big/big.bin",
            "cairn:rclone-more/copies/big copy.bin",
        ),
        (
            "cairn:rclone-more/s/ünïcødé/файл.txt",
            "cairn:rclone-more/copies/файл 2.txt",
        ),
    ] {
        let out = rclone.run(&["copyto", from, to]);
        assert!(
            out.contains("server-side copy"),
            "copyto was not a server-side copy:\n{out}"
        );
    }
    for (copy, original) in [
        ("cairn:rclone-more/copies/big copy.bin", "big/big.bin"),
        ("cairn:rclone-more/copies/файл 2.txt", "ünïcødé/файл.txt"),
    ] {
        let mut cat = rclone.cmd(&["cat", copy]);
        assert!(
            run_bytes(&mut cat, "rclone cat", &server) == tree[original],
            "server-side copy: bytes differ"
        );
    }
    let back = tmp.path().join("back");
    rclone.run(&["sync", "cairn:rclone-more/s", back.to_str().unwrap()]);
    assert_trees_equal(&get_tree(&back), &tree, "rclone sync down");
}

#[test]
fn rclone_delete_with_an_include_filter_then_without_leaves_no_objects() {
    if !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(test_seed("rclone-more"));
    let rclone = Rclone::new(&server, tmp.path());
    let tree = rclone_synced_tree(&rclone, tmp.path(), &mut rng);
    rclone.run(&["delete", "cairn:rclone-more/s", "--include", "*.txt"]);
    let want: BTreeMap<String, u64> = sizes_of(&tree, "")
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".txt"))
        .collect();
    assert_eq!(
        rclone.lsf("cairn:rclone-more/s"),
        want,
        "lsf after delete --include *.txt"
    );
    rclone.run(&["delete", "cairn:rclone-more"]);
    assert!(
        rclone.lsf("cairn:rclone-more").is_empty(),
        "files left after rclone delete"
    );
    assert!(
        list_sizes(&server, "rclone-more", "").is_empty(),
        "objects left after rclone delete"
    );
}

// ---------------------------------------------------------------------------
// aws CLI (beyond tests/it/cli_clients.rs)
// ---------------------------------------------------------------------------

/// The aws CLI against one server, with its configuration in `home` (the
/// machine's `~/.aws` cannot interfere) and no retries (they would hide
/// server errors).
struct AwsCli<'a> {
    server: &'a TestServer,
    home: &'a Path,
}

impl AwsCli<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command("aws");
        aws_env(&mut cmd, self.server, self.home);
        cmd.env("AWS_MAX_ATTEMPTS", "1")
            .arg("--endpoint-url")
            .arg(self.server.endpoint())
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        run_checked(
            &mut self.cmd(args),
            &format!("aws {}", args.join(" ")),
            self.server,
        )
    }

    /// `aws s3 cp` of `s3://aws-more/<key>` to a local file; its bytes.
    fn download(&self, key: &str) -> Vec<u8> {
        let dst = self.home.join("download.out");
        self.run(&[
            "s3",
            "cp",
            "--no-progress",
            &format!("s3://aws-more/{key}"),
            dst.to_str().unwrap(),
        ]);
        std::fs::read(&dst).unwrap()
    }
}

/// Bucket `aws-more` with the sample tree (a 12 MiB file) under `tree/`,
/// uploaded by `aws s3 sync` from `<home>/src`.
fn aws_synced_tree(aws: &AwsCli, rng: &mut Rng) -> BTreeMap<String, Vec<u8>> {
    let tree = sample_tree(rng, 12 * MIB + 5);
    aws_synced(aws, &tree);
    tree
}

/// Bucket `aws-more` with `tree` under `tree/`, uploaded by `aws s3 sync`
/// from `<home>/src`.
fn aws_synced(aws: &AwsCli, tree: &BTreeMap<String, Vec<u8>>) {
    aws.run(&["s3", "mb", "s3://aws-more"]);
    let src = aws.home.join("src");
    put_tree(&src, tree);
    aws.run(&[
        "s3",
        "sync",
        "--no-progress",
        src.to_str().unwrap(),
        "s3://aws-more/tree/",
    ]);
    assert_eq!(
        list_sizes(aws.server, "aws-more", "tree/"),
        sizes_of(tree, "tree/")
    );
}

/// The one file of the sample tree the tests that need no more use.
fn aws_one_file() -> BTreeMap<String, Vec<u8>> {
    let tree = sample_tree(&mut Rng::new(test_seed("aws-cli-more")), 0);
    BTreeMap::from([(
        "dir/a b+c&d.txt".to_owned(),
        tree["dir/a b+c&d.txt"].clone(),
    )])
}

/// `TagSet` of `aws-more/<key>` from `aws s3api get-object-tagging`.
fn aws_tags_of(aws: &AwsCli, key: &str) -> BTreeMap<String, String> {
    let out = aws.run(&[
        "s3api",
        "get-object-tagging",
        "--bucket",
        "aws-more",
        "--key",
        key,
        "--query",
        "TagSet[].[Key,Value]",
        "--output",
        "text",
    ]);
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `aws s3api put-object-tagging` of two tags, one with a space in its key
/// and `+` and `/` in its value.
fn aws_put_sample_tags(aws: &AwsCli, key: &str) {
    aws.run(&[
        "s3api",
        "put-object-tagging",
        "--bucket",
        "aws-more",
        "--key",
        key,
        "--tagging",
        "TagSet=[{Key=project,Value=cairn},{Key=team name,Value=a+b/c}]",
    ]);
}

#[test]
fn aws_cli_s3_sync_uploads_skips_unchanged_files_and_deletes_both_ways() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    let mut rng = Rng::new(test_seed("aws-cli-more"));
    // s3 sync: up, nothing to do, changes with --delete, down with --delete.
    let mut tree = aws_synced_tree(&aws, &mut rng);
    let src = tmp.path().join("src");
    let src_arg = src.to_str().unwrap();
    let etag = etag_of(&server, "aws-more", "tree/big/big.bin");
    assert!(
        etag.ends_with("-2\""),
        "12 MiB in 8 MiB parts: 2-part ETag, got {etag}"
    );
    let out = aws.run(&[
        "s3",
        "sync",
        "--no-progress",
        src_arg,
        "s3://aws-more/tree/",
    ]);
    assert!(out.trim().is_empty(), "a second sync did something:\n{out}");
    tree.remove("one.bin");
    std::fs::remove_file(src.join("one.bin")).unwrap();
    tree.insert("readme.md".to_owned(), rng.hex(3333).into_bytes());
    tree.insert("x/new.bin".to_owned(), rng.bytes(12345));
    put_tree(&src, &tree);
    let out = aws.run(&[
        "s3",
        "sync",
        "--no-progress",
        "--delete",
        src_arg,
        "s3://aws-more/tree/",
    ]);
    assert!(
        out.contains("delete: s3://aws-more/tree/one.bin"),
        "sync --delete:\n{out}"
    );
    assert_eq!(
        list_sizes(&server, "aws-more", "tree/"),
        sizes_of(&tree, "tree/")
    );
    let back = tmp.path().join("back");
    put_tree(
        &back,
        &BTreeMap::from([("stale.txt".to_owned(), b"old".to_vec())]),
    );
    aws.run(&[
        "s3",
        "sync",
        "--no-progress",
        "--delete",
        "s3://aws-more/tree/",
        back.to_str().unwrap(),
    ]);
    assert_trees_equal(&get_tree(&back), &tree, "aws s3 sync down --delete");
}

/// s3 presign with SigV4 (`signature_version = s3v4`; the CLI v1 default
/// is SigV2, which Cairn refuses like S3 does for buckets created since
/// 2020), fetched with urllib.
#[test]
fn aws_cli_s3_presign_with_s3v4_gives_urls_that_fetch_the_objects() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    let tree = aws_synced_tree(&aws, &mut Rng::new(test_seed("aws-cli-more")));
    let sigv4_config = tmp.path().join("aws-config-sigv4");
    std::fs::write(
        &sigv4_config,
        "[default]\ns3 =\n    signature_version = s3v4\n",
    )
    .unwrap();
    for key in [
        "tree/ünïcødé/файл.txt",
        "tree/dir/a b+c&d.txt",
        "tree/big/big.bin",
    ] {
        let mut cmd = aws.cmd(&[
            "s3",
            "presign",
            &format!("s3://aws-more/{key}"),
            "--expires-in",
            "600",
        ]);
        cmd.env("AWS_CONFIG_FILE", &sigv4_config);
        let url = run_checked(&mut cmd, "aws s3 presign", &server)
            .trim()
            .to_owned();
        assert!(url.contains("X-Amz-Signature="), "not a SigV4 URL: {url}");
        let mut fetch = clean_command("python3");
        fetch.args([
            "-c",
            "import sys, urllib.request\n\
             with urllib.request.urlopen(sys.argv[1], timeout=60) as r:\n    sys.stdout.buffer.write(r.read())",
            &url,
        ]);
        let got = run_bytes(&mut fetch, &format!("GET {url}"), &server);
        let want = &tree[key.strip_prefix("tree/").unwrap()];
        assert!(
            got == *want,
            "presigned GET of {key}: {} bytes, expected {}",
            got.len(),
            want.len()
        );
    }
}

/// The CLI v1's default presigned URL (SigV2) is refused, and the answer
/// says which setting makes a SigV4 one.
#[test]
fn aws_cli_default_sigv2_presigned_url_is_refused_naming_the_s3v4_setting() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    aws_synced(&aws, &aws_one_file());
    let url = run_checked(
        &mut aws.cmd(&["s3", "presign", "s3://aws-more/tree/dir/a b+c&d.txt"]),
        "aws s3 presign (default signature version)",
        &server,
    )
    .trim()
    .to_owned();
    if url.contains("X-Amz-Signature=") {
        eprintln!("this aws CLI presigns with SigV4 by default: {url}");
        return;
    }
    assert!(url.contains("Signature="), "not a presigned URL: {url}");
    let mut fetch = clean_command("python3");
    fetch.args([
        "-c",
        "import sys, urllib.request, urllib.error\n\
         try:\n    urllib.request.urlopen(sys.argv[1], timeout=60)\n    print('200')\n\
         except urllib.error.HTTPError as e:\n    print(e.code)\n    print(e.read().decode())",
        &url,
    ]);
    let answer = run_checked(&mut fetch, &format!("GET {url}"), &server);
    assert!(
        answer.starts_with("400")
            && answer.contains("<Code>InvalidRequest</Code>")
            && answer.contains("signature_version s3v4"),
        "a SigV2 presigned GET must be refused with the setting to use: {answer}"
    );
}

#[test]
fn aws_cli_s3api_object_tagging_round_trips_spaces_plus_and_slash() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    aws_synced(&aws, &aws_one_file());
    aws_put_sample_tags(&aws, "tree/dir/a b+c&d.txt");
    assert_eq!(
        aws_tags_of(&aws, "tree/dir/a b+c&d.txt"),
        BTreeMap::from([
            ("project".to_owned(), "cairn".to_owned()),
            ("team name".to_owned(), "a+b/c".to_owned())
        ]),
        "get-object-tagging"
    );
}

/// s3api copy-object: COPY keeps metadata and tags, REPLACE sets them.
#[test]
fn aws_cli_s3api_copy_object_keeps_tags_by_default_and_sets_metadata_with_replace() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    let tree = aws_synced_tree(&aws, &mut Rng::new(test_seed("aws-cli-more")));
    aws_put_sample_tags(&aws, "tree/dir/a b+c&d.txt");
    aws.run(&[
        "s3api",
        "copy-object",
        "--bucket",
        "aws-more",
        "--key",
        "copies/tagged copy.txt",
        "--copy-source",
        "aws-more/tree/dir/a b+c&d.txt",
    ]);
    let out = aws.run(&[
        "s3api",
        "get-object-tagging",
        "--bucket",
        "aws-more",
        "--key",
        "copies/tagged copy.txt",
    ]);
    assert!(
        out.contains("\"team name\"") && out.contains("a+b/c"),
        "tags after copy-object:\n{out}"
    );
    aws.run(&[
        "s3api",
        "copy-object",
        "--bucket",
        "aws-more",
        "--key",
        "copies/big.bin",
        "--copy-source",
        "aws-more/tree/big/big.bin",
        "--metadata-directive",
        "REPLACE",
        "--metadata",
        "color=blue",
        "--content-type",
        "application/x-cairn",
    ]);
    let out = aws.run(&[
        "s3api",
        "head-object",
        "--bucket",
        "aws-more",
        "--key",
        "copies/big.bin",
    ]);
    assert!(
        out.contains("\"color\": \"blue\"") && out.contains("application/x-cairn"),
        "head-object after copy-object REPLACE:\n{out}"
    );
    for (key, want) in [
        ("copies/tagged copy.txt", &tree["dir/a b+c&d.txt"]),
        ("copies/big.bin", &tree["big/big.bin"]),
    ] {
        assert!(aws.download(key) == **want, "{key}: bytes differ");
    }
}

/// s3api put-object conditional writes: --if-none-match '*' creates once;
/// --if-match needs the current ETag.
#[test]
fn aws_cli_s3api_put_object_if_none_match_creates_once_and_if_match_needs_the_current_etag() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    aws.run(&["s3", "mb", "s3://aws-more"]);
    let body = tmp.path().join("cond.txt");
    std::fs::write(&body, b"first").unwrap();
    let put_cond = |extra: &[&str]| {
        let mut args = vec![
            "s3api",
            "put-object",
            "--bucket",
            "aws-more",
            "--key",
            "cond.txt",
            "--body",
            body.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        aws.cmd(&args).output().unwrap()
    };
    let created = put_cond(&["--if-none-match", "*"]);
    assert!(
        created.status.success(),
        "put-object --if-none-match '*': {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let again = put_cond(&["--if-none-match", "*"]);
    assert!(!again.status.success(), "a second create succeeded");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("PreconditionFailed"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let wrong = put_cond(&["--if-match", "\"0123456789abcdef0123456789abcdef\""]);
    assert!(
        !wrong.status.success(),
        "--if-match with a stale ETag succeeded"
    );
    let etag = etag_of(&server, "aws-more", "cond.txt");
    std::fs::write(&body, b"second").unwrap();
    let replaced = put_cond(&["--if-match", &etag]);
    assert!(
        replaced.status.success(),
        "put-object --if-match current ETag: {}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    assert_eq!(aws.download("cond.txt"), b"second");
}

#[test]
fn aws_cli_s3_rb_force_removes_a_bucket_with_objects() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli {
        server: &server,
        home: tmp.path(),
    };
    aws_synced(&aws, &aws_one_file());
    aws.run(&["s3", "rb", "--force", "s3://aws-more"]);
    assert!(
        !aws.run(&["s3", "ls"]).contains("aws-more"),
        "bucket left after rb --force"
    );
}

// ---------------------------------------------------------------------------
// Server-side copies above the multipart threshold (UploadPartCopy)
// ---------------------------------------------------------------------------

/// boto3's managed `copy` and `aws s3 cp s3://… s3://…` switch to
/// UploadPartCopy above 8 MiB with their defaults.
#[test]
fn boto3_and_aws_cli_copy_objects_above_8_mib_with_upload_part_copy() {
    if !require_python_module("boto3") || !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = clean_command("python3");
    aws_env(&mut cmd, &server, tmp.path());
    cmd.arg(driver("boto3_suite.py"))
        .arg("large_copy")
        .arg(tmp.path());
    let out = run_checked(&mut cmd, "boto3_suite.py large_copy", &server);
    assert!(
        out.contains("boto3 suite passed"),
        "boto3 large copies:\n{out}"
    );

    let mut rng = Rng::new(test_seed("aws-cli-large-copy"));
    let big = rng.bytes(17 * MIB + 3);
    let src = tmp.path().join("big.bin");
    std::fs::write(&src, &big).unwrap();
    let aws = |args: &[&str]| {
        let mut cmd = clean_command("aws");
        aws_env(&mut cmd, &server, tmp.path());
        cmd.env("AWS_MAX_ATTEMPTS", "1")
            .arg("--endpoint-url")
            .arg(server.endpoint())
            .args(args);
        run_checked(&mut cmd, &format!("aws {}", args.join(" ")), &server)
    };
    aws(&["s3", "mb", "s3://cli-large-copy"]);
    aws(&[
        "s3",
        "cp",
        "--no-progress",
        src.to_str().unwrap(),
        "s3://cli-large-copy/a/big.bin",
    ]);
    aws(&[
        "s3",
        "cp",
        "--no-progress",
        "s3://cli-large-copy/a/big.bin",
        "s3://cli-large-copy/b/big copy.bin",
    ]);
    let etag = etag_of(&server, "cli-large-copy", "b/big copy.bin");
    assert!(
        etag.ends_with("-3\""),
        "17 MiB copied in 8 MiB parts: 3-part ETag, got {etag}"
    );
    let dst = tmp.path().join("back.bin");
    aws(&[
        "s3",
        "cp",
        "--no-progress",
        "s3://cli-large-copy/b/big copy.bin",
        dst.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&dst).unwrap() == big,
        "aws s3 cp s3→s3: bytes differ"
    );
}
