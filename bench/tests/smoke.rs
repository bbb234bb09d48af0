//! End to end: the built `cairn-bench` against a real `cairn` server on a
//! temporary data directory, every workload for a moment with tiny objects,
//! checking the JSON results and that a wrong seed is caught as failed
//! verification (exit status 3), never passed over.
//!
//! The server binary is `CAIRN_BIN` if set, else the `cairn` next to this
//! test's own directory (`target/<profile>/cairn`), which `cargo test
//! --workspace` builds with every other target. A missing binary fails the
//! test with how to build it: a benchmark tool that was never run against
//! the server is not known to work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ACCESS_KEY: &str = "smoke-access-key";
const SECRET_KEY: &str = "smoke-secret-key-0123456789abcdefghijklmnop";
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn cairn_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CAIRN_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/smoke-<hash> → target/<profile>/cairn
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable under target/<profile>/deps");
    let path = profile_dir.join("cairn");
    assert!(
        path.exists(),
        "no cairn server binary at {}: build it with `cargo build --workspace` \
         (or `cargo test --workspace`), or point CAIRN_BIN at one",
        path.display()
    );
    path
}

/// A `cairn server` on a temporary directory, killed on drop.
struct Server {
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Self::start_with(&[])
    }

    fn start_with(extra_args: &[&str]) -> Server {
        let data = tempfile::Builder::new()
            .prefix("cairn-bench-smoke-")
            .tempdir()
            .expect("temporary data dir");
        let mut cmd = Command::new(cairn_binary());
        cmd.arg("server")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(extra_args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(&k);
            }
        }
        let mut child = cmd
            .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_SECRET_KEY", SECRET_KEY)
            .env("CAIRN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn");
        let stdout = child.stdout.take().expect("cairn stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("S3 API listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let endpoint = match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("cairn did not report its S3 listener within {START_TIMEOUT:?}");
            }
        };
        Server {
            child,
            endpoint,
            _data: data,
        }
    }

    /// Runs cairn-bench with `args` (plus endpoint, keys, --json and
    /// --server-pid); returns the exit code and the parsed JSON result.
    fn bench(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let (code, stdout, stderr) = self.bench_raw(args);
        let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("{args:?}: no JSON result ({e}); stdout:\n{stdout}\nstderr:\n{stderr}")
        });
        (code, json)
    }

    /// Exit code, stdout and stderr of a cairn-bench run.
    fn bench_raw(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn-bench"))
            .args(args)
            .args(["--endpoint", &self.endpoint, "--json"])
            .args(["--server-pid", &self.child.id().to_string()])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("CAIRN_BENCH_ENDPOINT")
            .output()
            .expect("run cairn-bench");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_clean(what: &str, code: i32, v: &serde_json::Value) {
    assert_eq!(code, 0, "{what}: exit status, result {v}");
    assert_eq!(v["errors"], 0, "{what}: {v}");
    assert_eq!(v["verify_failures"], 0, "{what}: {v}");
    assert!(v["ops"].as_u64().is_some_and(|n| n > 0), "{what}: {v}");
    assert!(
        v["latency_ms"]["p50"].as_f64().is_some_and(|p| p > 0.0),
        "{what}: {v}"
    );
    assert!(v["server"]["cpu_seconds"].is_f64(), "{what}: {v}");
    assert!(
        v["server"]["hwm_mib"].as_f64().is_some_and(|m| m > 1.0),
        "{what}: {v}"
    );
}

#[test]
fn every_workload_runs_against_cairn_and_bad_content_is_caught() {
    let server = Server::start();
    let common = ["-s", "70KiB", "--prefix", "smoke/", "-c", "4"];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { common.iter().chain(extra).copied().collect() };

    let (code, put) = server.bench(&with(&["put", "-n", "24"]));
    assert_clean("put", code, &put);
    assert_eq!(put["ops"], 24);
    assert_eq!(put["bytes"], 24 * 70 * 1024);
    assert_eq!(put["workload"], "put");

    let (code, get) = server.bench(&with(&["get", "-d", "500ms"]));
    assert_clean("get", code, &get);
    assert_eq!(get["by_op"]["GET"]["bytes"], get["bytes"]);
    assert_eq!(
        get["bytes"].as_u64().unwrap(),
        get["ops"].as_u64().unwrap() * 70 * 1024
    );

    // Objects written with seed 42 are not what seed 7 describes.
    let (code, wrong) = server.bench(&with(&["get", "--ops", "8", "--seed", "7"]));
    assert_eq!(code, 3, "{wrong}");
    assert_eq!(wrong["verify_failures"], 8, "{wrong}");
    assert_eq!(wrong["ops"], 0, "{wrong}");

    let (code, signed) = server.bench(&[
        "put",
        "-s",
        "300KiB",
        "-n",
        "4",
        "--payload",
        "signed",
        "--kind",
        "compressible",
    ]);
    assert_clean("signed put", code, &signed);

    let (code, mixed) = server.bench(&with(&["mixed", "--ops", "60", "--mix", "50:30:20"]));
    assert_clean("mixed", code, &mixed);
    assert_eq!(mixed["ops"], 60);
    assert!(
        mixed["by_op"]["GET"]["ops"].as_u64().unwrap() > 0,
        "{mixed}"
    );

    let (code, list) = server.bench(&[
        "list",
        "-n",
        "150",
        "-s",
        "100B",
        "--page-size",
        "40",
        "--ops",
        "12",
        "-c",
        "1",
    ]);
    assert_clean("list", code, &list);
    assert_eq!(list["list"]["keys"], 150 * 3, "{list}");
    assert_eq!(list["list"]["listings"], 3, "{list}");

    let (code, iot) = server.bench(&["iot", "--ops", "40", "-c", "8", "--devices", "5"]);
    assert_clean("iot", code, &iot);
    assert_eq!(iot["kind"], "iot-json");

    let (code, deleted) = server.bench(&["delete", "--prefix", "smoke/", "-c", "4"]);
    assert_clean("delete", code, &deleted);
    // 24 from put; mixed's PUTs minus its DELETEs remain too.
    let mixed_left = mixed["by_op"]["PUT"]["ops"].as_u64().unwrap_or(0)
        - mixed["by_op"]["DELETE"]["ops"].as_u64().unwrap_or(0);
    assert_eq!(deleted["ops"].as_u64(), Some(24 + mixed_left), "{deleted}");
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// True if `openssl` runs; without it the test fails unless
/// CAIRN_SKIP_CLI_TESTS=1 (the convention of the workspace's CLI tests).
fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() != Ok("1") {
        panic!(
            "`openssl` is required to make a test certificate; set CAIRN_SKIP_CLI_TESTS=1 to skip"
        );
    }
    ok
}

/// A private CA (`ca.pem`) and a certificate it signed for 127.0.0.1
/// (`server.pem`, `server.key`) in `dir`.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cairn-bench test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
}

#[test]
fn https_endpoints_with_a_private_ca() {
    if !have_openssl() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let path = |name: &str| certs.path().join(name).to_string_lossy().into_owned();
    let server = Server::start_with(&[
        "--tls-cert",
        &path("server.pem"),
        "--tls-key",
        &path("server.key"),
    ]);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let ca = path("ca.pem");

    let (code, put) = server.bench(&[
        "put",
        "-s",
        "300KiB",
        "-n",
        "6",
        "-c",
        "3",
        "--ca-bundle",
        &ca,
    ]);
    assert_clean("https put", code, &put);
    let (code, get) = server.bench(&[
        "get",
        "-s",
        "300KiB",
        "--ops",
        "12",
        "-c",
        "3",
        "--ca-bundle",
        &ca,
    ]);
    assert_clean("https get", code, &get);
    assert_eq!(get["ops"], 12);

    // Without the CA the certificate does not verify: the run fails, it
    // never goes on unchecked.
    let (code, _, stderr) = server.bench_raw(&["put", "-n", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}
