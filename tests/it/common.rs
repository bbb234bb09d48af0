//! Shared harness for the end-to-end tests: runs a real `cairn` process on
//! loopback and gives the tests clients to talk to it.
//!
//! * [`TestServer`]: starts `cairn server` in a temporary (or given) data
//!   directory on free ports, reads the ports from its stdout, reads
//!   `/metrics`, restarts it on the same data (after SIGKILL or a clean
//!   stop), and kills it on drop.
//! * [`sdk_client`]: an `aws-sdk-s3` client with the SDK's default checksum
//!   behaviour (CRC32, aws-chunked trailers for streaming bodies).
//! * [`RawRequest`]: a request built byte for byte, optionally SigV4-signed
//!   with `aws-sigv4`, sent over a plain hyper HTTP/1.1 connection or
//!   written raw to a TCP socket (for truncated bodies and oversized heads).
//! * Helpers: a seeded xorshift generator, MD5/SHA-256/CRC32 digests, S3
//!   key encoding, XML field extraction, and the CLI tool gate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use sha2::Sha256;

pub const ACCESS_KEY: &str = "cairntestkey";
/// 40 characters: the server refuses secrets under 32 (src/config.rs).
pub const SECRET_KEY: &str = "cairnTestSecret0123456789abcdefghijklmno";
pub const REGION: &str = "us-east-1";

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// How long to wait for the server to print its listening lines.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for one raw HTTP exchange.
const RAW_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

enum DataDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temp(t) => t.path(),
            DataDir::Given(p) => p,
        }
    }
}

/// A running `cairn server`.
pub struct TestServer {
    dir: DataDir,
    /// Holds the master key of a server in a temporary data directory:
    /// outside the data directory, as the server demands.
    _key_dir: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    child: Option<Child>,
    s3: SocketAddr,
    admin: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// `ulimit -n` (soft and hard) for the process, if set.
    nofile: Option<u64>,
}

/// Keep at most this much of the server's stderr for failure messages.
const STDERR_KEEP: usize = 256 * KIB;

fn parse_addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.trim();
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    rest.split_whitespace()
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

impl TestServer {
    /// Starts a server in a fresh temporary data directory.
    pub fn start() -> TestServer {
        Self::start_with_args(&[])
    }

    /// Starts a server in a fresh temporary data directory with extra
    /// command-line arguments (e.g. chunk sizes).
    pub fn start_with_args(args: &[&str]) -> TestServer {
        let tmp = tempfile::Builder::new()
            .prefix("cairn-e2e-")
            .tempdir()
            .expect("create temp data dir");
        Self::launch(
            DataDir::Temp(tmp),
            args.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Starts a server on an existing data directory (kept after drop).
    pub fn start_in(dir: &Path) -> TestServer {
        Self::launch(DataDir::Given(dir.to_owned()), Vec::new())
    }

    /// Starts a server on an existing data directory (kept after drop)
    /// with extra command-line arguments (a cluster node's, say).
    pub fn start_in_with_args(dir: &Path, args: Vec<String>) -> TestServer {
        Self::launch(DataDir::Given(dir.to_owned()), args)
    }

    fn launch(dir: DataDir, extra_args: Vec<String>) -> TestServer {
        Self::launch_with(dir, extra_args, None)
    }

    fn launch_with(dir: DataDir, extra_args: Vec<String>, nofile: Option<u64>) -> TestServer {
        // A fresh temporary server keeps its key in a directory of its own;
        // a given data directory's test says where its key is.
        let key_dir = match &dir {
            DataDir::Temp(_) if !extra_args.iter().any(|a| a == "--master-key-file") => Some(
                tempfile::Builder::new()
                    .prefix("cairn-e2e-key-")
                    .tempdir()
                    .expect("create temp key dir"),
            ),
            _ => None,
        };
        let mut extra_args = extra_args;
        if let Some(k) = &key_dir {
            extra_args.push("--master-key-file".into());
            extra_args.push(k.path().join("master.key").display().to_string());
        }
        let mut s = TestServer {
            dir,
            _key_dir: key_dir,
            extra_args,
            child: None,
            s3: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Arc::new(Mutex::new(Vec::new())),
            nofile,
        };
        s.spawn();
        s
    }

    /// Starts a server (fresh temporary data directory) whose soft and hard
    /// file descriptor limits are `nofile` (`ulimit -n` before exec).
    pub fn start_with_nofile(nofile: u64, args: &[&str]) -> TestServer {
        let tmp = tempfile::Builder::new()
            .prefix("cairn-e2e-")
            .tempdir()
            .expect("create temp data dir");
        Self::launch_with(
            DataDir::Temp(tmp),
            args.iter().map(|s| (*s).to_owned()).collect(),
            Some(nofile),
        )
    }

    fn spawn(&mut self) {
        let mut cmd = match self.nofile {
            None => Command::new(env!("CARGO_BIN_EXE_cairn")),
            Some(n) => {
                // `exec` keeps the pid: kill and stop reach cairn itself.
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_cairn"));
                c
            }
        };
        cmd.arg("server")
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--admin-listen")
            .arg("127.0.0.1:0")
            .args(&self.extra_args);
        // Nothing from the developer's environment may change the server.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("CAIRN_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_SECRET_KEY", SECRET_KEY)
            .env(
                "CAIRN_LOG",
                std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the cairn binary");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");

        // stderr: keep the most recent part for failure messages.
        let captured = Arc::new(Mutex::new(Vec::new()));
        self.stderr = captured.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if std::env::var_os("CAIRN_TEST_ECHO_STDERR").is_some() {
                            let _ = std::io::stderr().write_all(&buf[..n]);
                        }
                        let mut c = captured.lock().unwrap();
                        c.extend_from_slice(&buf[..n]);
                        if c.len() > STDERR_KEEP * 2 {
                            let cut = c.len() - STDERR_KEEP;
                            c.drain(..cut);
                        }
                    }
                }
            }
        });

        // stdout: report the two listening lines, then keep draining.
        let (tx, rx) = mpsc::channel::<(bool, SocketAddr)>();
        std::thread::spawn(move || {
            let r = BufReader::new(stdout);
            for line in r.lines() {
                let Ok(line) = line else { break };
                if let Some(a) = parse_addr_after(&line, "S3 API listening on") {
                    let _ = tx.send((true, a));
                } else if let Some(a) = parse_addr_after(&line, "listening on")
                    && line.contains("admin")
                {
                    let _ = tx.send((false, a));
                }
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let (mut s3, mut admin) = (None, None);
        while s3.is_none() || admin.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                // Give the stderr reader a moment to collect the last words.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "cairn exited during start-up ({status}); stderr:\n{}",
                    self.stderr_text()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cairn did not print both listening lines within {START_TIMEOUT:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((true, a)) => s3 = Some(a),
                Ok((false, a)) => admin = Some(a),
                Err(_) => {}
            }
        }
        self.s3 = s3.unwrap();
        self.admin = admin.unwrap();
        self.child = Some(child);
    }

    /// What the server wrote to stderr (the most recent part).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The server's stderr once it contains `needle`, or as it is after
    /// `timeout` (stderr is read by another thread: a line the server wrote
    /// before it announced its ports may not have arrived yet).
    pub fn stderr_text_with(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stderr_text();
            if text.contains(needle) || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT` of the S3 API.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3)
    }

    pub fn s3_addr(&self) -> SocketAddr {
        self.s3
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin(&self) -> String {
        format!("http://{}", self.admin)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master key file the server was started with
    /// (`--master-key-file`; every temporary server has one).
    pub fn master_key_file(&self) -> PathBuf {
        let at = self
            .extra_args
            .iter()
            .position(|a| a == "--master-key-file")
            .expect("the server was started with --master-key-file");
        PathBuf::from(&self.extra_args[at + 1])
    }

    /// `<data-dir>/drives/<i>`.
    pub fn drive_dir(&self, i: usize) -> PathBuf {
        self.data_dir().join("drives").join(i.to_string())
    }

    /// The server process id, while it runs.
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (up to 60 s, then SIGKILL). Panics if the server
    /// had to be killed or exited with a failure status.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "could not send SIGTERM to cairn");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match c.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "cairn exited with {status} after SIGTERM; stderr:\n{}",
                        self.stderr_text()
                    );
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("cairn did not stop within 60 s of SIGTERM");
                }
            }
        }
    }

    /// Starts the (stopped or killed) server again on the same data dir.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again on a running server");
        self.spawn();
    }

    /// Restarts on the same data dir (new ports): `kill9` chooses SIGKILL
    /// over a clean stop.
    pub fn restart(&mut self, kill9: bool) {
        if kill9 {
            self.kill();
        } else {
            self.stop();
        }
        self.spawn();
    }

    /// The Prometheus text from `/metrics`.
    pub fn metrics(&self) -> String {
        let (status, body) = http_get(self.admin, "/metrics");
        assert_eq!(status, 200, "GET /metrics: {body}");
        body
    }

    /// A metric's value summed over all its label sets (0 if absent).
    pub fn metric(&self, name: &str) -> f64 {
        metric_sum(&self.metrics(), name, &[])
    }

    /// A metric's value summed over the label sets that contain all of
    /// `labels` (e.g. `[("operation","PutObject"),("status_class","2xx")]`).
    pub fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics(), name, labels)
    }

    /// `GET path` on the admin listener.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sums `name`'s samples whose labels include `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_part, value) = if let Some(r) = rest.strip_prefix('{') {
            let Some(end) = r.find('}') else { continue };
            (&r[..end], r[end + 1..].trim())
        } else if rest.starts_with(' ') {
            ("", rest.trim())
        } else {
            continue; // another metric with this name as prefix
        };
        let wanted = labels
            .iter()
            .all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\"")));
        if !wanted {
            continue;
        }
        let v = value.split_whitespace().next().unwrap_or("");
        total += v
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad metric line {line:?}"));
    }
    total
}

/// A minimal blocking HTTP/1.1 GET (for the admin listener).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // No write shutdown: a half-closed socket may make the server drop the
    // connection before answering; `Connection: close` ends the exchange.
    let resp = raw_tcp_exchange(addr, req.as_bytes(), false, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no HTTP response from {addr}{path}"));
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

// ---------------------------------------------------------------------------
// SDK client
// ---------------------------------------------------------------------------

/// An `aws-sdk-s3` client for `server` with the SDK's default checksum
/// settings. Retries are off so that a server error is never hidden.
pub fn sdk_client(server: &TestServer) -> aws_sdk_s3::Client {
    sdk_client_for(&server.endpoint(), ACCESS_KEY, SECRET_KEY, &[])
}

/// Like [`sdk_client`], with other credentials and extra interceptors.
pub fn sdk_client_for(
    endpoint: &str,
    access: &str,
    secret: &str,
    interceptors: &[aws_sdk_s3::config::SharedInterceptor],
) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(access, secret, None, None, "cairn-e2e"))
        .region(Region::new(REGION))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(300))
                .build(),
        )
        // A loaded 2-core CI machine can pause a stream for a few seconds.
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(Duration::from_secs(60))
                .build(),
        );
    for i in interceptors {
        b = b.interceptor(i.clone());
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// The S3 error code of an SDK error (`None` for transport errors).
pub fn sdk_error_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    err.code().map(str::to_owned)
}

/// The HTTP status of an SDK error's response, if there was one.
pub fn sdk_error_status<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether `bucket/key` exists (HEAD through the SDK; panics on anything
/// other than 200 or 404).
pub async fn object_exists(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) if sdk_error_status(&e) == Some(404) => false,
        Err(e) => panic!("HEAD {bucket}/{key}: {}", show(&e)),
    }
}

/// Reads a whole object through the SDK.
pub async fn get_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {}", show(&e)));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key} body: {e}"))
        .into_bytes()
        .to_vec()
}

/// Puts an in-memory object through the SDK and returns its ETag.
pub async fn put_bytes(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> String {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {}", show(&e)));
    out.e_tag().unwrap_or_default().to_owned()
}

/// Deletes an object through the SDK; panics on any error.
pub async fn delete_key(client: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE {bucket}/{key}: {}", show(&e)));
}

pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {}", show(&e)));
}

/// Creates `bucket` and enables versioning on it.
pub async fn create_versioned_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    create_bucket(client, bucket).await;
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketVersioning {bucket}: {}", show(&e)));
}

// ---------------------------------------------------------------------------
// Raw HTTP with SigV4
// ---------------------------------------------------------------------------

/// How a raw request's payload is declared in `x-amz-content-sha256`.
#[derive(Clone, Debug)]
pub enum Payload {
    /// The SHA-256 of the body actually sent.
    Signed,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// Any value, e.g. the hash of some other body, or
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`.
    Declared(String),
}

/// A request built exactly as the test wants it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// Already percent-encoded path and query, e.g. `/b/k%20x?uploads`.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response read completely.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `<Code>` of an S3 error body.
    pub fn code(&self) -> Option<String> {
        xml_field(&self.text(), "Code")
    }

    /// Asserts an S3 error response: status, `<Code>`, a `<Message>`, and a
    /// request id in both the header and the body.
    pub fn assert_s3_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            self.status,
            status,
            "{what}: expected {status} {code}, got {} {:?}; body: {}",
            self.status,
            self.code(),
            self.text()
        );
        let rid = self
            .header("x-amz-request-id")
            .unwrap_or_else(|| panic!("{what}: no x-amz-request-id header"));
        assert!(!rid.is_empty(), "{what}: empty x-amz-request-id");
        let text = self.text();
        assert!(
            text.contains("<Error>"),
            "{what}: not an S3 error body: {text}"
        );
        assert_eq!(self.code().as_deref(), Some(code), "{what}: body: {text}");
        assert!(
            xml_field(&text, "Message").is_some(),
            "{what}: no <Message>: {text}"
        );
        assert_eq!(
            xml_field(&text, "RequestId").as_deref(),
            Some(rid),
            "{what}: <RequestId> differs from x-amz-request-id: {text}"
        );
    }
}

impl RawRequest {
    pub fn new(method: &str, path_and_query: &str) -> RawRequest {
        RawRequest {
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> RawRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RawRequest {
        self.body = body.into();
        self
    }

    fn ensure_host(&mut self, addr: SocketAddr) {
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            self.headers
                .insert(0, ("host".to_owned(), addr.to_string()));
        }
    }

    /// Signs with SigV4 (header auth) for `addr` with the given keys.
    pub fn sign_with(
        self,
        addr: SocketAddr,
        access: &str,
        secret: &str,
        payload: Payload,
    ) -> RawRequest {
        self.sign_at(addr, access, secret, payload, SystemTime::now())
            .0
    }

    /// Signs with the test credentials.
    pub fn sign(self, addr: SocketAddr, payload: Payload) -> RawRequest {
        self.sign_with(addr, ACCESS_KEY, SECRET_KEY, payload)
    }

    /// Signs and also returns the signature (the seed of a chunked upload).
    pub fn sign_at(
        mut self,
        addr: SocketAddr,
        access: &str,
        secret: &str,
        payload: Payload,
        time: SystemTime,
    ) -> (RawRequest, String) {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        self.ensure_host(addr);
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity: aws_smithy_runtime_api::client::identity::Identity =
            Credentials::new(access, secret, None, None, "cairn-e2e").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let url = format!("http://{addr}{}", self.path_and_query);
        let body = match &payload {
            Payload::Signed => SignableBody::Bytes(&self.body),
            Payload::Unsigned => SignableBody::UnsignedPayload,
            Payload::Declared(v) => SignableBody::Precomputed(v.clone()),
        };
        let signable = SignableRequest::new(
            &self.method,
            url,
            self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .expect("signable request");
        let out = sign(signable, &params).expect("sign");
        let (instructions, signature) = out.into_parts();
        let (headers, _params) = instructions.into_parts();
        for h in headers {
            self.headers
                .push((h.name().to_owned(), h.value().to_owned()));
        }
        (self, signature)
    }

    /// Sends over a fresh HTTP/1.1 connection and reads the whole response.
    pub async fn send(mut self, addr: SocketAddr) -> RawResponse {
        self.ensure_host(addr);
        let has_len = self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
        if !has_len && (self.method == "PUT" || self.method == "POST") {
            self.headers
                .push(("content-length".to_owned(), self.body.len().to_string()));
        }
        let what = format!("{} {}", self.method, self.path_and_query);
        let fut = async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut b = http::Request::builder()
                .method(self.method.as_str())
                .uri(self.path_and_query.as_str());
            for (k, v) in &self.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            let req = b
                .body(Full::new(Bytes::from(self.body)))
                .map_err(std::io::Error::other)?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(std::io::Error::other)?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            Ok::<_, std::io::Error>(RawResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(RAW_TIMEOUT, fut).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: no response within {RAW_TIMEOUT:?}"),
        }
    }

    /// The request as HTTP/1.1 bytes (head and body, as given: no
    /// Content-Length is added).
    pub fn to_wire(&self, addr: SocketAddr) -> Vec<u8> {
        let mut r = self.clone();
        r.ensure_host(addr);
        let mut out = format!("{} {} HTTP/1.1\r\n", r.method, r.path_and_query).into_bytes();
        for (k, v) in &r.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&r.body);
        out
    }
}

/// Writes `bytes` to a new connection, optionally shuts down the write half,
/// then reads until the server closes or `timeout` passes. Returns the
/// parsed response if one arrived (body as received, chunked or not).
pub fn raw_tcp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    shutdown_write: bool,
    timeout: Duration,
) -> Option<RawResponse> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = s.write_all(bytes);
    if shutdown_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if let Some(r) = parse_complete_response(&buf) {
                    return Some(r);
                }
            }
            Err(_) => break,
        }
        if Instant::now() > deadline {
            break;
        }
    }
    parse_response_lenient(&buf)
}

/// Parses a response whose body is complete (Content-Length satisfied).
fn parse_complete_response(buf: &[u8]) -> Option<RawResponse> {
    let r = parse_response_lenient(buf)?;
    let len: usize = r.header("content-length")?.trim().parse().ok()?;
    (r.body.len() >= len).then_some(r)
}

fn parse_response_lenient(buf: &[u8]) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = http::HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':')
            && let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    Some(RawResponse {
        status,
        headers,
        body: Bytes::copy_from_slice(&buf[end + 4..]),
    })
}

// ---------------------------------------------------------------------------
// aws-chunked signed streaming (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)
// ---------------------------------------------------------------------------

/// Builds a signed aws-chunked PUT of `data` to `path` (already encoded):
/// the seed signature signs the headers, each chunk is signed over the
/// previous signature. `corrupt_chunk` flips one hex digit of that chunk's
/// signature.
pub fn streaming_signed_put(
    addr: SocketAddr,
    path: &str,
    data: &[u8],
    chunk_size: usize,
    corrupt_chunk: Option<usize>,
) -> RawRequest {
    let time = SystemTime::now();
    let chunks: Vec<&[u8]> = data
        .chunks(chunk_size)
        .chain(std::iter::once(&[][..]))
        .collect();
    // Encoded length: per chunk "hex;chunk-signature=<64>\r\n<data>\r\n".
    let encoded_len: usize = chunks
        .iter()
        .map(|c| format!("{:x}", c.len()).len() + ";chunk-signature=".len() + 64 + 2 + c.len() + 2)
        .sum();
    let req = RawRequest::new("PUT", path)
        .header("content-encoding", "aws-chunked")
        .header("content-length", &encoded_len.to_string())
        .header("x-amz-decoded-content-length", &data.len().to_string());
    let (mut req, seed) = req.sign_at(
        addr,
        ACCESS_KEY,
        SECRET_KEY,
        Payload::Declared("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned()),
        time,
    );
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "cairn-e2e").into();
    let params = aws_sigv4::sign::v4::SigningParams::<()>::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(time)
        .settings(())
        .build()
        .expect("chunk signing params");
    let mut body = Vec::with_capacity(encoded_len);
    let mut prev = seed;
    for (i, c) in chunks.iter().enumerate() {
        let out = aws_sigv4::sign::v4::sign_chunk(&Bytes::copy_from_slice(c), &prev, &params)
            .expect("sign chunk");
        let sig = out.signature().to_owned();
        let mut sent = sig.clone();
        if corrupt_chunk == Some(i) {
            let flipped = if sent.as_bytes()[10] == b'0' {
                "1"
            } else {
                "0"
            };
            sent.replace_range(10..11, flipped);
        }
        body.extend_from_slice(format!("{:x};chunk-signature={sent}\r\n", c.len()).as_bytes());
        body.extend_from_slice(c);
        body.extend_from_slice(b"\r\n");
        prev = sig;
    }
    assert_eq!(body.len(), encoded_len);
    req.body = body;
    req
}

// ---------------------------------------------------------------------------
// Data and digests
// ---------------------------------------------------------------------------

/// xorshift64* — deterministic test data from a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut it = buf.chunks_exact_mut(8);
        for c in &mut it {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rem = it.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rem.len();
        rem.copy_from_slice(&last[..n]);
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }
}

/// A seed that differs between runs unless `CAIRN_TEST_SEED` is set; it is
/// printed so that a failure can be replayed.
pub fn test_seed(name: &str) -> u64 {
    let seed = match std::env::var("CAIRN_TEST_SEED") {
        Ok(s) => s.parse().expect("CAIRN_TEST_SEED must be a u64"),
        Err(_) => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).expect("getrandom");
            u64::from_le_bytes(b)
        }
    };
    eprintln!("{name}: seed {seed} (set CAIRN_TEST_SEED to replay)");
    seed
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

pub fn md5_raw(data: &[u8]) -> Vec<u8> {
    Md5::digest(data).to_vec()
}

pub fn md5_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// CRC-32 (IEEE, as in `x-amz-checksum-crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

pub fn crc32_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(crc32(data).to_be_bytes())
}

/// The multipart ETag: MD5 of the concatenated part MD5s, `-N`.
pub fn multipart_etag(part_md5s: &[Vec<u8>]) -> String {
    let cat: Vec<u8> = part_md5s.concat();
    format!("\"{}-{}\"", md5_hex(&cat), part_md5s.len())
}

/// Percent-encodes an S3 key for a path (every byte but unreserved and '/').
pub fn encode_key(key: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(key, SET).to_string()
}

/// Percent-encodes a query value (everything but unreserved).
pub fn encode_query(v: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(v, SET).to_string()
}

/// The text of the first `<name>…</name>` in `xml` (entities unescaped).
pub fn xml_field(xml: &str, name: &str) -> Option<String> {
    xml_fields(xml, name).into_iter().next()
}

/// Every `<name>…</name>` text in `xml`, in order.
pub fn xml_fields(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(xml_unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

pub fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------

/// A command with nothing from the developer's environment that could point
/// a client at other settings or credentials.
pub fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        // `AWS` also covers s3fs's AWSACCESSKEYID / AWSSECRETACCESSKEY.
        if k.starts_with("AWS")
            || k.starts_with("RCLONE_")
            || k.starts_with("BOTO")
            || k.starts_with("RESTIC_")
            || k.starts_with("S3CMD")
            || k == "PASSPHRASE"
        {
            cmd.env_remove(&k);
        }
    }
    // Debian's rclone 1.60 fails on http:// endpoints when a CA bundle is set.
    cmd.env_remove("SSL_CERT_FILE")
        .env_remove("REQUESTS_CA_BUNDLE");
    cmd
}

/// Runs `cmd`; on failure panics with its output and the server's stderr.
/// Returns stdout followed by stderr.
pub fn run_checked(cmd: &mut Command, what: &str, server: &TestServer) -> String {
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

/// AWS credentials, region and empty config files in `home`: the
/// machine's `~/.aws` cannot interfere.
pub fn aws_env(cmd: &mut Command, server: &TestServer, home: &Path) {
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

/// `python3` for a boto3 script against `server`, with [`aws_env`].
pub fn boto3_command(server: &TestServer, home: &Path) -> Command {
    let mut cmd = clean_command("python3");
    aws_env(&mut cmd, server, home);
    cmd
}

/// Runs tests/it/boto3_suite.py in `mode` against `server` with the test's
/// admin credentials (plus `extra_env`) in an empty AWS configuration, and
/// checks it passed. `false` when boto3 is missing and
/// `CAIRN_SKIP_CLI_TESTS=1` (then nothing ran).
pub fn run_boto3_suite(server: &TestServer, mode: &str, extra_env: &[(&str, &str)]) -> bool {
    if !crate::clients::require_python_module("boto3") {
        return false;
    }
    let home = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/boto3_suite.py");
    let mut cmd = boto3_command(server, home.path());
    cmd.arg(script).arg(mode).arg(home.path());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = run_checked(&mut cmd, &format!("boto3_suite.py {mode}"), server);
    assert!(out.contains("boto3 suite passed"), "boto3 {mode}:\n{out}");
    true
}

/// `cairn admin <args>` against `server`'s admin listener, signed with
/// `key`/`secret`: (success, stdout, stderr).
pub fn cairn_admin_as(
    server: &TestServer,
    key: &str,
    secret: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("admin")
        .args(args)
        .arg("--admin-url")
        .arg(server.admin())
        .env("CAIRN_ACCESS_KEY", key)
        .env("CAIRN_SECRET_KEY", secret)
        .env("CAIRN_REGION", REGION)
        .output()
        .expect("run cairn admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every key in `bucket` under `prefix` with its size (through the SDK).
pub fn list_sizes(
    server: &TestServer,
    bucket: &str,
    prefix: &str,
) -> std::collections::BTreeMap<String, u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = sdk_client(server);
    let mut out = std::collections::BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = rt
            .block_on(
                c.list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.clone())
                    .send(),
            )
            .unwrap_or_else(|e| panic!("list {bucket}/{prefix}: {e:?}"));
        for o in page.contents() {
            out.insert(
                o.key().unwrap_or_default().to_owned(),
                o.size().unwrap_or_default() as u64,
            );
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

/// An SDK error with its whole chain of causes, for assertion messages.
pub fn show<E: std::error::Error>(e: &E) -> String {
    format!("{}", aws_sdk_s3::error::DisplayErrorContext(e))
}

/// The CompleteMultipartUpload document for parts 1..=N with these ETags.
pub fn completed(etags: &[String]) -> aws_sdk_s3::types::CompletedMultipartUpload {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            etags
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    CompletedPart::builder()
                        .part_number(i as i32 + 1)
                        .e_tag(e)
                        .build()
                })
                .collect(),
        ))
        .build()
}

/// Whether the CLI test may run: `true` if `tool` works; if it does not,
/// a hard failure unless `CAIRN_SKIP_CLI_TESTS=1` (then a printed notice
/// and `false`).
pub fn require_tool(tool: &str, version_arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() == Ok("1") {
        eprintln!("NOTICE: `{tool}` is not installed; skipping (CAIRN_SKIP_CLI_TESTS=1)");
        return false;
    }
    panic!(
        "`{tool}` is required for this test but is not installed (CI installs it via .ci/run); \
         set CAIRN_SKIP_CLI_TESTS=1 to skip the CLI tests"
    );
}

/// Runs a command, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every regular file under `dir`, recursively.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return false,
            Some(p) => {
                let s = i + p;
                if &hay[s..s + needle.len()] == needle {
                    return true;
                }
                i = s + 1;
            }
        }
    }
    false
}

/// Runs an async test body on a multi-threaded runtime (2 workers, like CI).
pub fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f);
}

// ---------------------------------------------------------------------------
// Virtual-hosted-style SDK client
// ---------------------------------------------------------------------------

/// Sends every request to `addr` whatever host its URI names, keeping that
/// host (and port) in the `Host` header. Runs after signing, so the
/// signature covers the virtual host, as it would with real DNS.
#[derive(Debug)]
struct ConnectTo(SocketAddr);

impl aws_sdk_s3::config::Intercept for ConnectTo {
    fn name(&self) -> &'static str {
        "cairn-e2e-connect-to"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let req = ctx.request_mut();
        let uri: http::Uri = req.uri().parse()?;
        let authority = uri
            .authority()
            .ok_or("request URI without authority")?
            .to_string();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        req.headers_mut().insert("host", authority);
        req.set_uri(format!("http://{}{path_and_query}", self.0))?;
        Ok(())
    }
}

/// An `aws-sdk-s3` client that addresses buckets virtual-hosted-style
/// (`<bucket>.<domain>:<port>`, as the SDK does without path-style) for a
/// server started with `--domain <domain>`. No DNS is needed: connections go
/// to the server's loopback address with the virtual host in `Host`.
pub fn sdk_client_virtual_host(server: &TestServer, domain: &str) -> aws_sdk_s3::Client {
    let addr = server.s3_addr();
    let base = sdk_client_for(
        &format!("http://{domain}:{}", addr.port()),
        ACCESS_KEY,
        SECRET_KEY,
        &[aws_sdk_s3::config::SharedInterceptor::new(ConnectTo(addr))],
    );
    let conf = base.config().to_builder().force_path_style(false).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The number after `label` in a summary line like "… 12 missing, …".
pub fn count_before(text: &str, label: &str) -> u64 {
    let end = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not in {text:?}"));
    text[..end]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before {label:?} in {text:?}"))
}

/// A free loopback port whose successor is free too (a cluster node's Raft
/// port, with shard transfers on PORT+1).
pub fn free_port_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// `cairn admin … --json` with the test's admin key, parsed.
pub fn admin_json(server: &TestServer, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cairn_admin_as(server, ACCESS_KEY, SECRET_KEY, &all);
    assert!(ok, "cairn admin {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The string field `name` of a JSON object.
pub fn text(v: &serde_json::Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

/// `cairn admin key create NAME [--allow G]…`: the new key's (id, secret).
pub fn create_key(server: &TestServer, name: &str, allows: &[&str]) -> (String, String) {
    let mut args = vec!["key", "create", name];
    for a in allows {
        args.push("--allow");
        args.push(a);
    }
    let created = admin_json(server, &args);
    (text(&created, "id"), text(&created, "secret"))
}
