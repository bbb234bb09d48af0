//! Real command-line clients against a real `cairn`: the aws CLI
//! (`aws s3 …`, `aws s3api …`) and rclone. Both tools must be installed
//! (CI installs them); set `CAIRN_SKIP_CLI_TESTS=1` to skip where they are
//! not.
//!
//! Then `cairn`'s own command line as a newcomer meets it (no tools
//! needed): start-up refusals (busy port, data dir in use or a file), the
//! first-start "Try:" line, `cairn admin` pointed at the S3 port, and the
//! container health check of docker-compose.yml and the Dockerfile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

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

/// A server, the aws CLI pointed at it (configured in a temporary home),
/// and bucket `cli-bucket` made by `aws s3 mb`.
fn aws_cli_bucket() -> (TestServer, tempfile::TempDir, AwsCli) {
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let aws = AwsCli::new(&server, tmp.path());
    aws.ok(&["s3", "mb", "s3://cli-bucket"]);
    (server, tmp, aws)
}

/// `aws s3 cp` of a 10 KiB text file with metadata, Content-Type and
/// Cache-Control to `cli-bucket/dir/small.txt`; returns its bytes.
fn aws_cp_small(aws: &AwsCli, dir: &Path, rng: &mut Rng) -> Vec<u8> {
    let small = rng.hex(10 * KIB).into_bytes();
    let small_path = dir.join("small.txt");
    std::fs::write(&small_path, &small).unwrap();
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
    small
}

/// `aws s3 cp` of `s3://cli-bucket/<key>` to a local file; its bytes.
fn aws_download(aws: &AwsCli, key: &str, dst: &Path) -> Vec<u8> {
    aws.ok(&[
        "s3",
        "cp",
        "--no-progress",
        &format!("s3://cli-bucket/{key}"),
        dst.to_str().unwrap(),
    ]);
    std::fs::read(dst).unwrap()
}

/// A small file with metadata and a 40 MiB one (multipart above 8 MiB):
/// listed with their sizes, head-object shows metadata and ETags, and both
/// download intact.
#[test]
fn aws_cli_s3_cp_round_trips_a_file_with_metadata_and_a_40_mib_multipart_file() {
    if !require_tool("aws", "--version") {
        return;
    }
    let (_server, tmp, aws) = aws_cli_bucket();
    let mut rng = Rng::new(test_seed("aws-cli"));
    let out = aws.ok(&["s3", "ls"]);
    assert!(out.contains("cli-bucket"), "aws s3 ls: {out}");

    let small = aws_cp_small(&aws, tmp.path(), &mut rng);
    let big = rng.bytes(40 * MIB + 4321);
    let big_path = tmp.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
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
    assert!(
        aws_download(&aws, "dir/big.bin", &tmp.path().join("back-big.bin")) == big,
        "big.bin differs after a round trip"
    );
    assert!(
        aws_download(&aws, "dir/small.txt", &tmp.path().join("back-small.txt")) == small,
        "small.txt differs after a round trip"
    );
}

/// sync a directory of 20 files up (a second sync finds nothing to do:
/// sizes and times are listed right), then back.
#[test]
fn aws_cli_s3_sync_uploads_a_tree_once_and_brings_it_back() {
    if !require_tool("aws", "--version") {
        return;
    }
    let (_server, tmp, aws) = aws_cli_bucket();
    let mut rng = Rng::new(test_seed("aws-cli-sync"));
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
    let sync_up = || {
        aws.ok(&[
            "s3",
            "sync",
            "--no-progress",
            src.to_str().unwrap(),
            "s3://cli-bucket/sync/",
        ])
    };
    sync_up();
    let out = aws.ok(&["s3", "ls", "--recursive", "s3://cli-bucket/sync/"]);
    assert_eq!(
        out.lines().count(),
        20,
        "aws s3 ls --recursive after sync:\n{out}"
    );
    let again = sync_up();
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
}

/// The path and query of a presigned URL, which must name the server.
fn presigned_path(url: &str, server: &TestServer) -> String {
    let uri: http::Uri = url
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("presign printed {url:?}: {e}"));
    assert_eq!(
        uri.authority().unwrap().as_str(),
        server.s3_addr().to_string()
    );
    uri.path_and_query().unwrap().as_str().to_owned()
}

/// s3 presign (SigV4) → a plain GET with no credentials.
#[test]
fn aws_cli_s3v4_presigned_url_serves_a_get_without_credentials() {
    if !require_tool("aws", "--version") {
        return;
    }
    let (server, tmp, aws) = aws_cli_bucket();
    let small = aws_cp_small(&aws, tmp.path(), &mut Rng::new(test_seed("aws-cli")));
    let url = aws.ok_sigv4(&[
        "s3",
        "presign",
        "s3://cli-bucket/dir/small.txt",
        "--expires-in",
        "300",
    ]);
    let pq = presigned_path(&url, &server);
    assert!(
        pq.contains("X-Amz-Signature="),
        "expected a SigV4 URL: {url}"
    );
    let addr = server.s3_addr();
    let r = runtime().block_on(RawRequest::new("GET", &pq).send(addr));
    assert_eq!(
        r.status,
        200,
        "GET of the presigned URL {url}: {}",
        r.text()
    );
    assert!(r.body[..] == small[..], "presigned GET body");
}

/// With its defaults CLI v1 presigns with SigV2 (like new S3 buckets, the
/// server may refuse that, but only with a proper S3 error).
#[test]
fn aws_cli_default_presigned_url_is_served_or_refused_with_an_s3_error() {
    if !require_tool("aws", "--version") {
        return;
    }
    let (server, tmp, aws) = aws_cli_bucket();
    let small = aws_cp_small(&aws, tmp.path(), &mut Rng::new(test_seed("aws-cli")));
    let url = aws.ok(&[
        "s3",
        "presign",
        "s3://cli-bucket/dir/small.txt",
        "--expires-in",
        "300",
    ]);
    let addr = server.s3_addr();
    let r = runtime().block_on(RawRequest::new("GET", &presigned_path(&url, &server)).send(addr));
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
}

#[test]
fn aws_cli_s3_rm_recursive_empties_the_bucket_and_rb_removes_it() {
    if !require_tool("aws", "--version") {
        return;
    }
    let (server, tmp, aws) = aws_cli_bucket();
    aws_cp_small(&aws, tmp.path(), &mut Rng::new(test_seed("aws-cli")));
    aws.ok(&["s3", "rm", "--recursive", "s3://cli-bucket"]);
    let out = aws.ok(&["s3", "ls", "--recursive", "s3://cli-bucket"]);
    assert!(
        out.trim().is_empty(),
        "objects left after rm --recursive:\n{out}"
    );
    aws.ok(&["s3", "rb", "s3://cli-bucket"]);
    let c = sdk_client(&server);
    let gone = runtime().block_on(c.head_bucket().bucket("cli-bucket").send());
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

// ---------------------------------------------------------------------------
// `cairn` itself: start-up refusals, the first-start lines, the admin
// client pointed at the wrong port, and the container health check
// ---------------------------------------------------------------------------

/// The `cairn` binary with nothing from the developer's environment
/// (`CAIRN_*`, `AWS_*`) and only warnings logged.
pub(crate) fn cairn() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CAIRN_") || k.starts_with("AWS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CAIRN_LOG", "warn")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Runs `cmd` to its end, at most `limit`: (success, stdout, stderr, how
/// long it took). Panics if it is still running then.
pub(crate) fn run_within(
    cmd: &mut Command,
    limit: std::time::Duration,
) -> (bool, String, String, std::time::Duration) {
    let t0 = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn cairn");
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still ran after {limit:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let elapsed = t0.elapsed();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    )
}

const START_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A second server on a port in use fails before it creates anything: no
/// data directory, no master key, no "shown only this once" credentials.
#[test]
fn a_server_that_cannot_listen_creates_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new-data");
    for (listen, admin_listen, flag) in [
        (busy.as_str(), "127.0.0.1:0", "--listen"),
        ("127.0.0.1:0", busy.as_str(), "--admin-listen"),
    ] {
        let (ok, out, err, _) = run_within(
            cairn().arg("server").arg("--data-dir").arg(&dir).args([
                "--listen",
                listen,
                "--admin-listen",
                admin_listen,
            ]),
            START_LIMIT,
        );
        assert!(!ok, "a server on a busy port ({flag}) started:\n{out}{err}");
        assert!(
            err.contains(&format!("cannot listen on {busy}: the address is in use"))
                && err.contains(flag),
            "{flag}: {err}"
        );
        assert!(
            !out.contains("shown only this once") && !out.contains("master key"),
            "{flag}: printed before failing:\n{out}"
        );
        assert!(!dir.exists(), "{flag}: created {}", dir.display());
    }
}

/// A cluster node whose Raft port, or shard port (the Raft port + 1), is in
/// use fails the same way, before it creates anything.
#[test]
fn a_cluster_node_that_cannot_listen_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new-node");
    // Raft port busy (its successor free); then Raft port free, shard
    // port (its successor) busy.
    let raft_port = free_port_pair();
    let raft_busy = std::net::TcpListener::bind(("127.0.0.1", raft_port)).unwrap();
    let shard_raft_port = free_port_pair();
    let shard_busy = std::net::TcpListener::bind(("127.0.0.1", shard_raft_port + 1)).unwrap();
    for (port, busy, flag) in [
        (raft_port, raft_port, "--cluster-listen (Raft messages)"),
        (
            shard_raft_port,
            shard_raft_port + 1,
            "--cluster-listen (shard transfers",
        ),
    ] {
        let (ok, out, err, _) = run_within(
            cairn()
                .arg("server")
                .arg("--data-dir")
                .arg(&dir)
                .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
                .args(["--node-id", "1", "--cluster-nodes"])
                .arg(format!("1=127.0.0.1:{port}"))
                .env(
                    "CAIRN_CLUSTER_SECRET",
                    "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2",
                ),
            START_LIMIT,
        );
        assert!(!ok, "a node on a busy port ({flag}) started:\n{out}{err}");
        assert!(
            err.contains(&format!(
                "cannot listen on 127.0.0.1:{busy}: the address is in use"
            )) && err.contains(flag),
            "{flag}: {err}"
        );
        assert!(
            !out.contains("shown only this once") && !out.contains("master key"),
            "{flag}: printed before failing:\n{out}"
        );
        assert!(!dir.exists(), "{flag}: created {}", dir.display());
    }
    drop((raft_busy, shard_busy));
}

/// Two servers on one data directory: the second is refused at once with
/// the first one's pid, and the first keeps serving.
#[test]
fn a_second_server_on_a_data_dir_in_use_names_the_first() {
    let server = TestServer::start();
    let pid = server.pid().unwrap();
    let (ok, out, err, _) = run_within(
        cairn()
            .arg("server")
            .arg("--data-dir")
            .arg(server.data_dir())
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]),
        START_LIMIT,
    );
    assert!(
        !ok,
        "a second server started on the same data dir:\n{out}{err}"
    );
    let want = format!(
        "cairn: another cairn server is using the data directory {} (pid {pid}): stop it first, or give this server its own --data-dir",
        server.data_dir().display()
    );
    assert!(err.contains(&want), "want {want:?} in:\n{err}");
    assert!(!err.contains("LOCK"), "RocksDB's raw lock error: {err}");
    assert!(!out.contains("shown only this once"), "{out}");
    assert_eq!(server.admin_get("/health/ready").0, 200);
}

/// A data directory path that is a file: one clear line.
#[test]
fn a_data_dir_that_is_a_file_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    for (dir, want) in [
        (
            file.clone(),
            format!(
                "cairn: the data directory {} is a file, not a directory",
                file.display()
            ),
        ),
        (
            file.join("below"),
            format!(
                "cairn: cannot create the directory {}: it, or a directory above it, is a file",
                file.join("below").display()
            ),
        ),
    ] {
        let (ok, _, err, _) = run_within(
            cairn().arg("server").arg("--data-dir").arg(&dir).args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ]),
            START_LIMIT,
        );
        assert!(!ok && err.contains(&want), "want {want:?} in:\n{err}");
        assert!(!err.contains("os error"), "raw OS error: {err}");
    }
}

/// Starts `cairn server` with no credentials in a fresh directory, runs
/// `check` on its stdout lines up to the S3 listening line while it listens,
/// then kills it and returns what it logged (warnings and errors only).
fn first_start_lines(listen: &str, check: impl FnOnce(&[String])) -> String {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = cairn()
        .arg("server")
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["--listen", listen, "--admin-listen", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + START_LIMIT;
    while !lines
        .iter()
        .any(|l: &String| l.contains("S3 API listening on"))
    {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(line) => lines.push(line),
            Err(_) if std::time::Instant::now() < deadline => {}
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no listening line within {START_LIMIT:?}:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    check(&lines);
    let _ = child.kill();
    let _ = child.wait();
    logged.join().unwrap()
}

/// The "Try:" line of a first start names the bound port and an address a
/// client can connect to, for port 0 and for a wildcard bind.
#[test]
fn the_first_start_try_line_names_a_connectable_endpoint() {
    for listen in ["127.0.0.1:0", "0.0.0.0:0"] {
        let logged = first_start_lines(listen, |lines| {
            let text = lines.join("\n");
            let bound: std::net::SocketAddr = lines
                .iter()
                .find_map(|l| l.split("S3 API listening on http://").nth(1))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_ne!(bound.port(), 0, "{text}");
            // The master key is made beside the data directory, not in it.
            let key_line = lines
                .iter()
                .find(|l| l.contains("generated a new master key in"))
                .unwrap_or_else(|| panic!("no master key line in\n{text}"));
            assert!(
                key_line.contains("/data.master.key") && !key_line.contains("/data/"),
                "{key_line}"
            );
            let try_line = lines
                .iter()
                .find(|l| l.trim_start().starts_with("Try:"))
                .unwrap_or_else(|| panic!("no Try: line in\n{text}"));
            let endpoint = try_line
                .split("--endpoint-url ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap();
            assert_eq!(
                endpoint,
                format!("http://127.0.0.1:{}", bound.port()),
                "{listen}: {try_line}"
            );
            let addr: std::net::SocketAddr =
                endpoint.trim_start_matches("http://").parse().unwrap();
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{listen}: cannot connect to {endpoint}: {e}"));
        });
        // Nothing alarming on a normal first start.
        assert!(
            !logged.contains("WARN") && !logged.contains("ERROR"),
            "{listen}: a first start logged\n{logged}"
        );
    }
}

/// `cairn admin` pointed at the S3 port says so instead of printing S3's
/// raw `NoSuchBucket admin`.
#[test]
fn the_admin_client_pointed_at_the_s3_port_says_so() {
    let server = TestServer::start();
    for args in [&["status"][..], &["key", "list"], &["health"]] {
        let (ok, out, err, _) = run_within(
            cairn()
                .arg("admin")
                .args(args)
                .args(["--admin-url", &server.endpoint()])
                .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
                .env("CAIRN_SECRET_KEY", SECRET_KEY),
            START_LIMIT,
        );
        assert!(!ok, "{args:?} succeeded against the S3 port:\n{out}");
        assert!(
            err.contains("looks like the S3 port, not the admin listener")
                && err.contains("--admin-url"),
            "{args:?}: {err}"
        );
    }
}

/// The JSON arrays (`["cairn", …]`) that follow `marker` on the lines of
/// `text` (comments skipped, continued lines joined).
fn cmd_arrays(text: &str, marker: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let Some(at) = line.find(marker) else {
            continue;
        };
        // A Dockerfile instruction may continue on the next lines.
        let mut rest = line[at + marker.len()..].trim().to_owned();
        let mut j = i;
        while rest.ends_with('\\') {
            rest.pop();
            j += 1;
            rest.push_str(lines[j]);
        }
        let array = &rest[rest.find('[').unwrap()..=rest.rfind(']').unwrap()];
        found.push(serde_json::from_str(array).unwrap_or_else(|e| panic!("{e}: {array}")));
    }
    found
}

/// The health checks of docker-compose.yml and the Dockerfile run exactly
/// as written (the container's admin address replaced by the test
/// server's): exit 0 against a ready server, non-zero and fast against a
/// stopped one. No shell, no credentials.
#[test]
fn the_container_health_check_passes_on_a_ready_server_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // Compose's `["CMD", …]` runs the rest as it is, like the Dockerfile's
    // `HEALTHCHECK CMD [ … ]`.
    let mut checks: Vec<Vec<String>> = cmd_arrays(&compose, "test:")
        .into_iter()
        .map(|c| {
            assert_eq!(c[0], "CMD", "compose health check {c:?}: no shell");
            c[1..].to_vec()
        })
        .collect();
    assert_eq!(checks.len(), 2, "the single-node and cluster health checks");
    let image_check = cmd_arrays(&dockerfile, " CMD ");
    assert_eq!(image_check.len(), 1, "the Dockerfile's HEALTHCHECK");
    checks.extend(image_check);
    let check = checks[0].clone();
    assert!(
        checks.iter().all(|c| *c == check),
        "checks differ: {checks:?}"
    );
    assert_eq!(check[..3], ["cairn", "admin", "--admin-url"], "{check:?}");
    // The container's admin listener, from the image's ENTRYPOINT.
    let entrypoint = &cmd_arrays(&dockerfile, "ENTRYPOINT")[0];
    let admin_listen = &entrypoint[entrypoint
        .iter()
        .position(|a| a == "--admin-listen")
        .unwrap()
        + 1];
    let port = admin_listen.rsplit(':').next().unwrap();
    let url_at = check.iter().position(|a| a == "--admin-url").unwrap() + 1;
    assert_eq!(check[url_at], format!("http://127.0.0.1:{port}"));

    let mut server = TestServer::start();
    let run = |admin_url: &str| {
        let mut args = check[1..].to_vec();
        args[url_at - 1] = admin_url.to_owned();
        let mut cmd = cairn();
        cmd.args(&args);
        run_within(&mut cmd, std::time::Duration::from_secs(10))
    };
    let (ok, out, err, _) = run(&server.admin());
    assert!(ok, "health check failed on a ready server:\n{out}{err}");
    assert_eq!(out.trim(), "ready", "{err}");

    server.stop();
    let (ok, out, err, took) = run(&server.admin());
    assert!(!ok, "health check passed on a stopped server:\n{out}{err}");
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    assert!(err.contains("cannot reach the admin listener"), "{err}");
}

/// The Dockerfile's first stage (manifests and a stub for every target
/// they name, for the dependency layer) leaves a workspace cargo can load,
/// and every build runs `--locked`.
#[test]
fn the_dockerfile_dependency_stage_loads_the_workspace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let builds: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty());
    for b in &builds {
        assert!(b.contains("--release") && b.contains("--locked"), "{b}");
    }
    // The stage's RUN, joined as Docker joins continued lines.
    let at = dockerfile.find("RUN set -eu;").unwrap();
    let mut script = String::new();
    for line in dockerfile[at + "RUN ".len()..].lines() {
        match line.strip_suffix('\\') {
            Some(part) => script.push_str(part),
            None => {
                script.push_str(line);
                break;
            }
        }
    }
    // Its input: the build context's manifests (it deletes everything else).
    let tmp = tempfile::tempdir().unwrap();
    let listed = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(listed.status.success());
    for rel in String::from_utf8_lossy(&listed.stdout).lines() {
        let name = rel.rsplit('/').next().unwrap();
        if (name == "Cargo.toml" || name == "Cargo.lock") && root.join(rel).exists() {
            let to = tmp.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root.join(rel), &to).unwrap();
        }
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stubs = std::fs::read_to_string(tmp.path().join(".stubs")).unwrap();
    assert!(stubs.lines().any(|l| l == "./src/main.rs"), "{stubs}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--locked",
            "--offline",
        ])
        .current_dir(tmp.path())
        .env("CARGO_TARGET_DIR", tmp.path().join("target"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo cannot load the stubbed workspace:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
