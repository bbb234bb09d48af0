//! Clients that try to take the server down without credentials: idle connection floods on the S3 and admin ports under a
//! low descriptor limit, one address hogging connections, idle keep-alive
//! connections, and the unsafe defaults — weak secrets, secrets on the
//! command line, a docker-compose.yml that starts without a .env.
//!
//! Every flood is bounded and on loopback; other source addresses are
//! 127.0.0.x (all of 127/8 is local on Linux).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A TCP connection to `addr` from `from` (any port), or `None` if it is
/// not established within 2 s.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((from, 0))).ok()?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
        .await
        .ok()?
        .ok()
}

/// Opens `n` connections from `from` that never send a byte.
async fn open_idle(from: Ipv4Addr, addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for _ in 0..n {
        if let Some(s) = connect_from(from, addr).await {
            out.push(s);
        }
    }
    out
}

/// What each connection shows now: still open and silent, or closed (with
/// what the server wrote before closing).
fn still_open(conns: &[TcpStream]) -> (usize, Vec<String>) {
    let mut open = 0;
    let mut said = Vec::new();
    for c in conns {
        let mut buf = [0u8; 512];
        match c.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            Ok(n) => said.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => said.push(format!("error: {e}")),
        }
    }
    (open, said)
}

/// One request on a fresh connection from `from`: the status and body, or
/// why there was none within `timeout`.
async fn exchange(
    from: Ipv4Addr,
    addr: SocketAddr,
    wire: &[u8],
    timeout: Duration,
) -> Result<(u16, String), String> {
    let attempt = async {
        let mut s = connect_from(from, addr).await.ok_or("no connection")?;
        s.write_all(wire).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("bad response head {head:?}"))?;
                    return Ok((status, body.to_owned()));
                }
            }
            if n == 0 {
                return Err(format!("closed after {} bytes", buf.len()));
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no response within {timeout:?}"))?
}

/// Retries `wire` from 127.0.0.1 until it gets `want` (as an SDK retries
/// 503s and resets); panics after `within`. Returns how long it took.
async fn served_within(
    addr: SocketAddr,
    wire: &[u8],
    want: u16,
    within: Duration,
    what: &str,
) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < within {
        match exchange(Ipv4Addr::LOCALHOST, addr, wire, Duration::from_secs(3)).await {
            Ok((status, _)) if status == want => return started.elapsed(),
            Ok((status, body)) => last = format!("{status}: {body}"),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: not served within {within:?}; last: {last}");
}

fn health_wire(addr: SocketAddr) -> Vec<u8> {
    format!("GET /health/live HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes()
}

fn signed_wire(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = RawRequest::new(method, path).body(body.to_vec());
    if method == "PUT" {
        req = req.header("content-length", &body.len().to_string());
    }
    req.sign(addr, Payload::Signed).to_wire(addr)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// 1,100 idle connections under a 1,024 descriptor limit
/// took S3 offline for over a minute and logged `accept failed` ~20 times a
/// second. Here: 300 idle S3 and 150 idle admin connections from five
/// addresses against a 256 descriptor limit.
#[test]
fn idle_connection_floods_under_a_low_descriptor_limit_do_not_take_the_server_down() {
    let mut server = TestServer::start_with_nofile(256, &[]);
    let (s3, admin) = (server.s3_addr(), server.admin_addr());
    let stderr = server.stderr_text_with("file descriptor limit", Duration::from_secs(10));
    assert!(
        stderr.contains("file descriptor limit"),
        "the caps are fitted to the descriptor limit, and it says so: {stderr}"
    );
    let rt = runtime();
    rt.block_on(async {
        let mut flood = Vec::new();
        for i in 2..7u8 {
            let from = Ipv4Addr::new(127, 0, 0, i);
            flood.extend(open_idle(from, s3, 60).await);
            flood.extend(open_idle(from, admin, 30).await);
        }
        // A normal client is still served, S3 and admin, within seconds.
        let took = served_within(
            s3,
            &signed_wire(s3, "PUT", "/flooded", b""),
            200,
            Duration::from_secs(10),
            "CreateBucket during the flood",
        )
        .await;
        eprintln!("CreateBucket served after {took:?}");
        served_within(
            s3,
            &signed_wire(s3, "PUT", "/flooded/k", b"still here"),
            200,
            Duration::from_secs(10),
            "PutObject during the flood",
        )
        .await;
        let (status, body) = exchange(
            Ipv4Addr::LOCALHOST,
            s3,
            &signed_wire(s3, "GET", "/flooded/k", b""),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!((status, body.as_str()), (200, "still here"));
        let took = served_within(
            admin,
            &health_wire(admin),
            200,
            Duration::from_secs(10),
            "admin /health/live during the flood",
        )
        .await;
        eprintln!("/health/live served after {took:?}");
        // Never more open than the descriptors allow (5 x 60 were tried).
        let (open, _) = still_open(&flood);
        assert!(open < 200, "{open} flood connections still open");
        drop(flood);
    });
    assert!(server.is_running(), "the server died");
    let stderr = server.stderr_text();
    assert!(
        count(&stderr, "accept failed") <= 3,
        "accept failures flood the log:\n{stderr}"
    );
    assert!(
        count(&stderr, "connection limit reached") <= 6,
        "refusals flood the log:\n{stderr}"
    );
    assert!(server.metric("cairn_connections_refused_total") > 0.0);
}

/// One address cannot take more than its share; a full listener makes room
/// by closing the connection idle the longest (from the biggest address);
/// a refused client reads S3's `503 SlowDown`.
#[test]
fn per_address_cap_and_a_full_listener_still_serve_newcomers() {
    let server = TestServer::start_with_args(&[
        "--connections-max",
        "24",
        "--connections-per-address-max",
        "8",
    ]);
    let s3 = server.s3_addr();
    let rt = runtime();
    let full = rt.block_on(async {
        let hog = open_idle(Ipv4Addr::new(127, 0, 0, 2), s3, 20).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (open, said) = still_open(&hog);
        assert_eq!(open, 8, "one address keeps its 8 connections, no more");
        assert!(
            said.iter()
                .any(|s| s.starts_with("HTTP/1.1 503") && s.contains("<Code>SlowDown</Code>")),
            "refused connections read 503 SlowDown: {said:?}"
        );
        // Another address is served at once.
        let (status, body) = exchange(
            Ipv4Addr::new(127, 0, 0, 3),
            s3,
            &signed_wire(s3, "GET", "/", b""),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        // Let the server see that exchange's connection close, so it does
        // not count against 127.0.0.3's share below.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Fill the listener: 8 + 8 + 8 idle connections.
        let more = [
            open_idle(Ipv4Addr::new(127, 0, 0, 3), s3, 8).await,
            open_idle(Ipv4Addr::new(127, 0, 0, 4), s3, 8).await,
        ];
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let full = [&hog, &more[0], &more[1]]
            .iter()
            .map(|c| still_open(c).0)
            .sum::<usize>()
            == 24;
        let (status, body) = exchange(
            Ipv4Addr::new(127, 0, 0, 5),
            s3,
            &signed_wire(s3, "GET", "/", b""),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "a newcomer at a full listener: {body}");
        // The evicted connection's close reaches this runtime's reactor a
        // moment after the newcomer's answer: look again until it has (a
        // single look lost that race on a loaded machine).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let open_now = loop {
            let open_now: usize = [&hog, &more[0], &more[1]]
                .iter()
                .map(|c| still_open(c).0)
                .sum();
            if open_now <= 23 || std::time::Instant::now() > deadline {
                break open_now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(open_now <= 23, "{open_now} idle connections kept open");
        full
    });
    let metrics = server.metrics();
    assert!(
        metric_sum(
            &metrics,
            "cairn_connections_refused_total",
            &[("reason", "address_limit")]
        ) >= 12.0
    );
    // A newcomer at a full listener is let in by closing an idle one (if
    // the listener was not quite full, it simply got a free slot).
    let evicted = metric_sum(
        &metrics,
        "cairn_connections_evicted_total",
        &[("listener", "s3")],
    );
    assert!(!full || evicted >= 1.0, "full listener, {evicted} evicted");
}

/// Idle connections give their slot back: on S3 after `--idle-timeout-secs`
/// (after a response or before any request), on the admin listener after
/// its 10 s header read timeout (it had none: an idle connection stayed
/// open for ever).
#[test]
fn idle_connections_are_closed_on_both_listeners() {
    let server = TestServer::start_with_args(&["--idle-timeout-secs", "2"]);
    let (s3, admin) = (server.s3_addr(), server.admin_addr());
    let rt = runtime();
    rt.block_on(async {
        let from = Ipv4Addr::LOCALHOST;
        let silent_s3 = connect_from(from, s3).await.unwrap();
        let silent_admin = connect_from(from, admin).await.unwrap();
        // A keep-alive connection after one request.
        let mut kept = connect_from(from, s3).await.unwrap();
        kept.write_all(&signed_wire(s3, "GET", "/", b""))
            .await
            .unwrap();
        let mut kept_admin = connect_from(from, admin).await.unwrap();
        kept_admin
            .write_all(format!("GET /health/live HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let started = Instant::now();
        // Reads until EOF: the response, then the server's close.
        let until_closed = |mut s: TcpStream| async move {
            let mut all = Vec::new();
            let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut all)).await;
            (
                r.is_ok(),
                started.elapsed(),
                String::from_utf8_lossy(&all).into_owned(),
            )
        };
        let (a, b, c, d) = tokio::join!(
            until_closed(silent_s3),
            until_closed(kept),
            until_closed(silent_admin),
            until_closed(kept_admin),
        );
        assert!(
            a.0 && a.1 < Duration::from_secs(5),
            "silent S3 connection: {a:?}"
        );
        assert!(
            b.0 && b.1 < Duration::from_secs(5),
            "idle S3 keep-alive: {b:?}"
        );
        assert!(b.2.starts_with("HTTP/1.1 200"), "{}", b.2);
        assert!(
            c.0 && c.1 < Duration::from_secs(13),
            "silent admin connection: {c:?}"
        );
        assert!(
            d.0 && d.1 < Duration::from_secs(13),
            "idle admin keep-alive: {d:?}"
        );
        assert!(d.2.starts_with("HTTP/1.1 200"), "{}", d.2);
    });
}

/// A `cairn server` command with a clean environment (only `env` set).
fn cairn(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CAIRN_") || k.starts_with("AWS_") || k.starts_with("GRAFANA_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .env("CAIRN_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// The shipped `change-me-please` (and any secret under 32
/// characters) is refused at start, with a message saying how to make one.
#[test]
fn weak_secret_keys_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for weak in [
        "change-me-please",
        "cairnTestSecret0123456789abcdef",
        &"ab".repeat(20),
    ] {
        let mut child = cairn(
            &[
                "server",
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ],
            &[
                ("CAIRN_ACCESS_KEY", "cairnadmin"),
                ("CAIRN_SECRET_KEY", weak),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cairn started with the secret {weak:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{weak:?}: {err}");
        assert!(
            err.contains("CAIRN_SECRET_KEY is too weak") && err.contains("32"),
            "{err}"
        );
        assert!(!err.contains(weak), "the secret is echoed: {err}");
    }
}

/// `cairn admin` takes the secret from the environment or a file, never
/// from its command line (visible to every user in `ps`).
#[test]
fn admin_cli_reads_the_secret_from_a_file_or_the_environment_not_argv() {
    let server = TestServer::start();
    let url = server.admin();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET_KEY}\n")).unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["admin", "--admin-url", &url, "--access-key", ACCESS_KEY];
        all.extend_from_slice(args);
        cairn(&all, env).output().unwrap()
    };
    let out = run(&["--secret-key", SECRET_KEY, "status"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "--secret-key on the command line worked"
    );
    assert!(
        err.contains("--secret-key-file") && err.contains("CAIRN_SECRET_KEY"),
        "{err}"
    );
    let out = run(
        &["--secret-key-file", file.to_str().unwrap(), "status"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["status"],
        &[("CAIRN_SECRET_KEY_FILE", file.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["status"], &[("CAIRN_SECRET_KEY", SECRET_KEY)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = cairn(&["admin", "--help"], &[]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--secret-key-file") && !help.contains("--secret-key <"),
        "{help}"
    );
}

/// docker-compose.yml ships no credentials, secrets or keys: without a .env
/// it refuses to start, naming the command that makes one; with the file
/// `cairn gen-env` writes it is valid, and the admin port is published on
/// 127.0.0.1 only.
#[test]
fn compose_needs_a_generated_env_file_and_publishes_admin_on_localhost() {
    if !require_tool("docker-compose", "version") {
        return;
    }
    // A copy, so that a developer's own .env beside the real file is not read.
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("docker-compose.yml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"),
        &compose,
    )
    .unwrap();
    let config = |extra: &[&str]| {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-f").arg(&compose).arg("config").args(extra);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CAIRN_") || k.starts_with("GRAFANA_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(dir.path()).output().unwrap()
    };
    let out = config(&["-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "compose config passed without a .env"
    );
    assert!(err.contains("gen-env") && err.contains(".env"), "{err}");

    let env_file = dir.path().join(".env");
    let gen_env = cairn(&["gen-env", "--output", env_file.to_str().unwrap()], &[])
        .output()
        .unwrap();
    assert!(gen_env.status.success(), "{gen_env:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = cairn(&["gen-env", "--output", env_file.to_str().unwrap()], &[])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "gen-env overwrote an existing .env"
    );

    let out = config(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(&env_file).unwrap();
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("CAIRN_SECRET_KEY="))
        .unwrap();
    assert!(secret.len() >= 32 && text.contains(secret));
    for fixed in ["change-me-please", "cairnadmin", "00c1a57", "5ec2e75"] {
        assert!(
            !text.contains(fixed),
            "{fixed} is still in the compose file"
        );
    }
    // Every published admin (…01 → 9001), Prometheus and Grafana port is on
    // 127.0.0.1.
    let mapped: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.ends_with(":9001/tcp") || l.ends_with(":9090/tcp") || l.ends_with(":3000/tcp")
        })
        .collect();
    assert_eq!(mapped.len(), 6, "{text}");
    assert!(
        mapped.iter().all(|l| l.starts_with("- 127.0.0.1:")),
        "{mapped:?}"
    );
}
