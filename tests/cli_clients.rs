//! Real command-line clients against a real `cairn`: the aws CLI
//! (`aws s3 …`, `aws s3api …`) and rclone. Both tools must be installed
//! (CI installs them); set `CAIRN_SKIP_CLI_TESTS=1` to skip where they are
//! not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Removes every variable that could point a client at other settings.
fn scrub_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_") || k.starts_with("RCLONE_") || k.starts_with("BOTO") {
            cmd.env_remove(&k);
        }
    }
}

/// Writes `files` (relative path → bytes) under `root`.
fn write_tree(root: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, data) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
}

/// Every file under `root` as relative path → bytes.
fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walk_files(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&p).unwrap();
            (rel, data)
        })
        .collect()
}

fn assert_same_tree(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let gk: Vec<&String> = got.keys().collect();
    let wk: Vec<&String> = want.keys().collect();
    assert_eq!(gk, wk, "{what}: file names differ");
    for (k, v) in want {
        assert!(
            got[k] == *v,
            "{what}: {k} differs ({} vs {} bytes)",
            got[k].len(),
            v.len()
        );
    }
}

// ---------------------------------------------------------------------------
// aws CLI
// ---------------------------------------------------------------------------

struct AwsCli {
    endpoint: String,
    home: PathBuf,
}

impl AwsCli {
    fn new(server: &TestServer, home: &Path) -> AwsCli {
        // Our own (empty) config and credentials files: the machine's
        // ~/.aws cannot interfere.
        std::fs::write(home.join("config"), "").unwrap();
        std::fs::write(home.join("credentials"), "").unwrap();
        // CLI v1's `s3 presign` makes SigV2 URLs unless told otherwise.
        std::fs::write(
            home.join("config-sigv4"),
            "[default]\ns3 =\n    signature_version = s3v4\n",
        )
        .unwrap();
        AwsCli {
            endpoint: server.endpoint(),
            home: home.to_owned(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("aws");
        scrub_env(&mut cmd);
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", self.home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.home.join("credentials"))
            // Retries would hide server errors.
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_PAGER", "")
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.cmd(args), &format!("aws {}", args.join(" ")))
    }

    /// With `s3.signature_version = s3v4` in the config file.
    fn ok_sigv4(&self, args: &[&str]) -> String {
        let mut cmd = self.cmd(args);
        cmd.env("AWS_CONFIG_FILE", self.home.join("config-sigv4"));
        run_ok(&mut cmd, &format!("aws (s3v4) {}", args.join(" ")))
    }
}

#[test]
fn aws_cli_s3_and_s3api_commands_work_end_to_end() {
    if !require_tool("aws", "--version") {
        return;
    }
    let server = TestServer::start();
    let rt = runtime();
    let c = sdk_client(&server);
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli::new(&server, tmp.path());
    let mut rng = Rng::new(test_seed("aws-cli"));

    aws.ok(&["s3", "mb", "s3://cli-bucket"]);
    let out = aws.ok(&["s3", "ls"]);
    assert!(out.contains("cli-bucket"), "aws s3 ls: {out}");

    // A small file with metadata, and a 40 MiB one (multipart above 8 MiB).
    let small = rng.hex(10 * KIB).into_bytes();
    let big = rng.bytes(40 * MIB + 4321);
    let small_path = tmp.path().join("small.txt");
    let big_path = tmp.path().join("big.bin");
    std::fs::write(&small_path, &small).unwrap();
    std::fs::write(&big_path, &big).unwrap();
    aws.ok(&[
        "s3",
        "cp",
        "--no-progress",
        small_path.to_str().unwrap(),
        "s3://cli-bucket/dir/small.txt",
        "--metadata",
        "color=red,shape=square",
        "--content-type",
        "text/plain",
        "--cache-control",
        "no-cache",
    ]);
    aws.ok(&[
        "s3",
        "cp",
        "--no-progress",
        big_path.to_str().unwrap(),
        "s3://cli-bucket/dir/big.bin",
    ]);

    let out = aws.ok(&["s3", "ls", "s3://cli-bucket/dir/"]);
    let sizes: BTreeMap<String, u64> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| (f[3].to_owned(), f[2].parse().unwrap()))
        })
        .collect();
    let want: BTreeMap<String, u64> = [
        ("big.bin".to_owned(), big.len() as u64),
        ("small.txt".to_owned(), small.len() as u64),
    ]
    .into();
    assert_eq!(sizes, want, "aws s3 ls output:\n{out}");

    // head-object shows the metadata and the ETags.
    let head = aws.ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "cli-bucket",
        "--key",
        "dir/small.txt",
    ]);
    for needle in [
        "\"color\": \"red\"",
        "\"shape\": \"square\"",
        "\"ContentType\": \"text/plain\"",
        "\"CacheControl\": \"no-cache\"",
        &format!("\"ContentLength\": {}", small.len()),
        &md5_hex(&small),
    ] {
        assert!(head.contains(needle), "head-object lacks {needle}:\n{head}");
    }
    let head = aws.ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "cli-bucket",
        "--key",
        "dir/big.bin",
    ]);
    // The CLI's default part size is 8 MiB: 40 MiB + 4321 bytes is 6 parts.
    let parts = big.len().div_ceil(8 * MIB);
    assert!(
        head.contains(&format!("-{parts}\\\"")),
        "the 40 MiB upload should be a {parts}-part multipart ETag:\n{head}"
    );

    // Download both and compare.
    let back_big = tmp.path().join("back-big.bin");
    let back_small = tmp.path().join("back-small.txt");
    aws.ok(&[
        "s3",
        "cp",
        "--no-progress",
        "s3://cli-bucket/dir/big.bin",
        back_big.to_str().unwrap(),
    ]);
    aws.ok(&[
        "s3",
        "cp",
        "--no-progress",
        "s3://cli-bucket/dir/small.txt",
        back_small.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&back_big).unwrap() == big,
        "big.bin differs after a round trip"
    );
    assert!(
        std::fs::read(&back_small).unwrap() == small,
        "small.txt differs after a round trip"
    );

    // sync a directory of 20 files, then back.
    let mut tree = BTreeMap::new();
    for i in 0..20 {
        let name = match i % 4 {
            0 => format!("f{i:02}.bin"),
            1 => format!("sub/f{i:02} with space.txt"),
            2 => format!("sub/deeper/f{i:02}+plus.dat"),
            _ => format!("other/f{i:02}"),
        };
        let n = rng.below(300 * KIB as u64) as usize + if i == 0 { 0 } else { 1 };
        tree.insert(name, rng.bytes(if i == 0 { 0 } else { n }));
    }
    let src = tmp.path().join("sync-src");
    write_tree(&src, &tree);
    aws.ok(&[
        "s3",
        "sync",
        "--no-progress",
        src.to_str().unwrap(),
        "s3://cli-bucket/sync/",
    ]);
    let out = aws.ok(&["s3", "ls", "--recursive", "s3://cli-bucket/sync/"]);
    assert_eq!(
        out.lines().count(),
        20,
        "aws s3 ls --recursive after sync:\n{out}"
    );
    // A second sync finds nothing to do (sizes and times listed right).
    let again = aws.ok(&[
        "s3",
        "sync",
        "--no-progress",
        src.to_str().unwrap(),
        "s3://cli-bucket/sync/",
    ]);
    assert!(again.trim().is_empty(), "second sync re-uploaded:\n{again}");
    let dst = tmp.path().join("sync-dst");
    aws.ok(&[
        "s3",
        "sync",
        "--no-progress",
        "s3://cli-bucket/sync/",
        dst.to_str().unwrap(),
    ]);
    assert_same_tree(&read_tree(&dst), &tree, "aws s3 sync round trip");

    // s3 presign (SigV4) → a plain GET with no credentials.
    let addr = server.s3_addr();
    let path_of = |url: &str| -> String {
        let uri: http::Uri = url
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("presign printed {url:?}: {e}"));
        assert_eq!(uri.authority().unwrap().as_str(), addr.to_string());
        uri.path_and_query().unwrap().as_str().to_owned()
    };
    let url = aws.ok_sigv4(&[
        "s3",
        "presign",
        "s3://cli-bucket/dir/small.txt",
        "--expires-in",
        "300",
    ]);
    let pq = path_of(&url);
    assert!(
        pq.contains("X-Amz-Signature="),
        "expected a SigV4 URL: {url}"
    );
    let r = rt.block_on(RawRequest::new("GET", &pq).send(addr));
    assert_eq!(
        r.status,
        200,
        "GET of the presigned URL {url}: {}",
        r.text()
    );
    assert!(r.body[..] == small[..], "presigned GET body");
    // With its defaults CLI v1 presigns with SigV2 (like new S3 buckets,
    // the server may refuse that, but only with a proper S3 error).
    let url = aws.ok(&[
        "s3",
        "presign",
        "s3://cli-bucket/dir/small.txt",
        "--expires-in",
        "300",
    ]);
    let r = rt.block_on(RawRequest::new("GET", &path_of(&url)).send(addr));
    if r.status == 200 {
        assert!(r.body[..] == small[..], "SigV2 presigned GET body");
    } else {
        eprintln!(
            "NOTE: a SigV2 presigned URL ({url}) got {} {:?}",
            r.status,
            r.code()
        );
        assert!(
            r.status == 400 || r.status == 403,
            "SigV2 presigned GET: {} {}",
            r.status,
            r.text()
        );
        assert!(
            r.code().is_some(),
            "SigV2 presigned GET: not an S3 error: {}",
            r.text()
        );
    }

    // rm --recursive and rb.
    aws.ok(&["s3", "rm", "--recursive", "s3://cli-bucket"]);
    let out = aws.ok(&["s3", "ls", "--recursive", "s3://cli-bucket"]);
    assert!(
        out.trim().is_empty(),
        "objects left after rm --recursive:\n{out}"
    );
    aws.ok(&["s3", "rb", "s3://cli-bucket"]);
    let gone = rt.block_on(c.head_bucket().bucket("cli-bucket").send());
    assert_eq!(
        gone.as_ref().err().and_then(sdk_error_status),
        Some(404),
        "bucket still there after rb"
    );
}

// ---------------------------------------------------------------------------
// rclone
// ---------------------------------------------------------------------------

struct Rclone {
    endpoint: String,
    config: PathBuf,
}

impl Rclone {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("rclone");
        scrub_env(&mut cmd);
        cmd.env_remove("SSL_CERT_FILE")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env("RCLONE_CONFIG", &self.config)
            .env("RCLONE_CONFIG_CAIRN_TYPE", "s3")
            .env("RCLONE_CONFIG_CAIRN_PROVIDER", "Other")
            .env("RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID", ACCESS_KEY)
            .env("RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RCLONE_CONFIG_CAIRN_ENDPOINT", &self.endpoint)
            .env("RCLONE_CONFIG_CAIRN_REGION", REGION)
            // rclone's default upload_cutoff is 200 MiB: lower it so that
            // the 21 MiB file goes up as a multipart upload (5 MiB chunks).
            .env("RCLONE_CONFIG_CAIRN_UPLOAD_CUTOFF", "16M")
            // Retries would hide server errors.
            .args([
                "--retries",
                "1",
                "--low-level-retries",
                "1",
                "--contimeout",
                "20s",
                "--timeout",
                "120s",
            ])
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.cmd(args), &format!("rclone {}", args.join(" ")))
    }
}

#[test]
fn rclone_copies_checks_lists_and_purges_a_tree() {
    if !require_tool("rclone", "version") {
        return;
    }
    let server = TestServer::start();
    let rt = runtime();
    let c = sdk_client(&server);
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("rclone.conf");
    std::fs::write(&config, "").unwrap();
    let rc = Rclone {
        endpoint: server.endpoint(),
        config,
    };
    let mut rng = Rng::new(test_seed("rclone"));

    let mut tree = BTreeMap::new();
    tree.insert("empty.txt".to_owned(), Vec::new());
    tree.insert("one.bin".to_owned(), rng.bytes(1));
    tree.insert("notes/readme.md".to_owned(), rng.hex(3000).into_bytes());
    tree.insert("data/sub/300k.bin".to_owned(), rng.bytes(300 * KIB));
    tree.insert("data/sub/deeper/3m.bin".to_owned(), rng.bytes(3 * MIB + 11));
    tree.insert("odd names/e f+g&h.txt".to_owned(), rng.bytes(777));
    tree.insert("ünïcødé/файл.txt".to_owned(), rng.bytes(4096));
    tree.insert("big/21m.bin".to_owned(), rng.bytes(21 * MIB + 7));
    let src = tmp.path().join("src");
    write_tree(&src, &tree);

    rc.ok(&["mkdir", "cairn:rclone-bucket"]);
    rt.block_on(c.head_bucket().bucket("rclone-bucket").send())
        .expect("bucket after rclone mkdir");
    rc.ok(&["copy", src.to_str().unwrap(), "cairn:rclone-bucket/tree"]);

    // check compares sizes and MD5s (multipart: rclone's md5 metadata).
    let out = rc
        .cmd(&["check", src.to_str().unwrap(), "cairn:rclone-bucket/tree"])
        .output()
        .expect("run rclone check");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rclone check failed:\n{log}");
    assert!(log.contains("0 differences found"), "rclone check:\n{log}");
    assert!(
        log.contains(&format!("{} matching files", tree.len())),
        "rclone check should match all {} files:\n{log}",
        tree.len()
    );

    let out = rc.ok(&["ls", "cairn:rclone-bucket/tree"]);
    let listed: BTreeMap<String, u64> = out
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let (size, name) = l.split_once(' ').unwrap();
            (name.to_owned(), size.parse().unwrap())
        })
        .collect();
    let want: BTreeMap<String, u64> = tree
        .iter()
        .map(|(k, v)| (k.clone(), v.len() as u64))
        .collect();
    assert_eq!(listed, want, "rclone ls:\n{out}");

    // The 21 MiB file went up in parts.
    let head = rt
        .block_on(
            c.head_object()
                .bucket("rclone-bucket")
                .key("tree/big/21m.bin")
                .send(),
        )
        .expect("HEAD big");
    let etag = head.e_tag().unwrap_or_default().to_owned();
    assert!(
        etag.ends_with("-5\""),
        "expected a 5-part multipart ETag, got {etag}"
    );

    let back = tmp.path().join("back");
    rc.ok(&["copy", "cairn:rclone-bucket/tree", back.to_str().unwrap()]);
    assert_same_tree(&read_tree(&back), &tree, "rclone copy round trip");

    rc.ok(&["purge", "cairn:rclone-bucket"]);
    let gone = rt.block_on(c.head_bucket().bucket("rclone-bucket").send());
    assert_eq!(
        gone.as_ref().err().and_then(sdk_error_status),
        Some(404),
        "bucket left after purge"
    );
}
