//! Common S3 clients with their DEFAULT settings against a real `cairn`,
//! every transferred byte compared: boto3 (default checksums and
//! `when_required`), restic, s3cmd, rclone (sync / check --download / lsf /
//! delete / server-side copy) and the aws CLI (sync, presign, tagging,
//! copy-object). The Python drivers live in `tests/clients/`.
//!
//! Each client is its own test. A missing tool fails its test with a clear
//! message unless `CAIRN_SKIP_CLI_TESTS=1` (CI installs them all via
//! `.ci/run`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `tests/clients/<name>`.
fn driver(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("clients")
        .join(name)
}

/// A command with nothing from the developer's environment that could point
/// a client at other settings or credentials.
fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_")
            || k.starts_with("RCLONE_")
            || k.starts_with("BOTO")
            || k.starts_with("RESTIC_")
            || k.starts_with("S3CMD")
        {
            cmd.env_remove(&k);
        }
    }
    // Debian's rclone 1.60 fails on http:// endpoints when a CA bundle is set.
    cmd.env_remove("SSL_CERT_FILE")
        .env_remove("REQUESTS_CA_BUNDLE");
    cmd
}

/// AWS credentials, region and empty config files in `home`: the
/// machine's `~/.aws` cannot interfere.
fn aws_env(cmd: &mut Command, server: &TestServer, home: &Path) {
    let config = home.join("aws-config");
    let creds = home.join("aws-credentials");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
        std::fs::write(&creds, "").unwrap();
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("AWS_PAGER", "")
        .env("CAIRN_ENDPOINT", server.endpoint());
}

/// Like `require_tool` for a Python module (`python3 -c "import m"`).
fn require_python_module(module: &str) -> bool {
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

/// Runs `cmd`; on failure panics with its output and the server's stderr.
fn run_checked(cmd: &mut Command, what: &str, server: &TestServer) -> String {
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}, after {:?}):\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}\n--- cairn stderr:\n{}",
        out.status,
        started.elapsed(),
        server.stderr_text()
    );
    if std::env::var_os("CAIRN_TEST_VERBOSE").is_some() {
        eprintln!("{what} ({:?}):\n{stdout}{stderr}", started.elapsed());
    }
    stdout + &stderr
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
