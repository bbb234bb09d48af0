//! HTTPS on both listeners: a CA and a server certificate are generated with
//! the `openssl` command, the server is started with `--tls-cert/--tls-key`,
//! and the aws CLI (trusting only that CA) and the Rust SDK talk to it. A
//! certificate replaced on disk is served after SIGHUP, without a restart.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA and a server certificate for 127.0.0.1 / localhost.
pub(crate) fn make_certs(dir: &Path) {
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
            "/CN=Cairn test CA",
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
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
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
fn aws_cli_works_over_https_and_plain_http_is_refused() {
    if !require_tool("openssl", "version") || !require_tool("aws", "--version") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let cert = certs.path().join("server.pem");
    let key = certs.path().join("server.key");
    let server = TestServer::start_with_args(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let endpoint = format!("https://{}", server.s3_addr());
    let work = tempfile::tempdir().unwrap();
    let body = Rng::new(0x715).bytes(3 * MIB + 17);
    std::fs::write(work.path().join("up.bin"), &body).unwrap();
    std::fs::write(work.path().join("aws-config"), "").unwrap();
    let aws = |args: &[&str]| {
        let mut cmd = Command::new("aws");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", work.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                work.path().join("aws-config"),
            )
            .env("AWS_MAX_ATTEMPTS", "1")
            .args(["--endpoint-url", &endpoint, "--ca-bundle"])
            .arg(certs.path().join("ca.pem"))
            .args(args)
            .current_dir(work.path());
        run_ok(&mut cmd, &format!("aws {}", args.join(" ")))
    };
    aws(&["s3", "mb", "s3://tls-bucket"]);
    aws(&["s3", "cp", "up.bin", "s3://tls-bucket/dir/up.bin"]);
    aws(&["s3", "cp", "s3://tls-bucket/dir/up.bin", "down.bin"]);
    assert_eq!(std::fs::read(work.path().join("down.bin")).unwrap(), body);
    assert!(aws(&["s3", "ls", "s3://tls-bucket/dir/"]).contains("up.bin"));

    // SSE-C over HTTPS with the server's defaults (no
    // --allow-sse-c-over-http): the aws CLI's multipart upload and ranged
    // parallel download under a customer key.
    std::fs::write(work.path().join("sse-c.key"), [0x5c; 32]).unwrap();
    let big = Rng::new(0x55c).bytes(9 * MIB + 5);
    std::fs::write(work.path().join("big.bin"), &big).unwrap();
    let sse_c = ["--sse-c", "AES256", "--sse-c-key", "fileb://sse-c.key"];
    aws(&[
        &["s3", "cp", "big.bin", "s3://tls-bucket/sse-c.bin"][..],
        &sse_c,
    ]
    .concat());
    aws(&[
        &["s3", "cp", "s3://tls-bucket/sse-c.bin", "big-down.bin"][..],
        &sse_c,
    ]
    .concat());
    assert!(std::fs::read(work.path().join("big-down.bin")).unwrap() == big);

    // The admin listener is HTTPS too.
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(certs.path().join("ca.pem"))
        .arg(format!("https://{}/health/live", server.admin_addr()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "live");

    // `cairn admin` over HTTPS, trusting the CA.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["admin", "status", "--admin-url"])
        .arg(format!("https://localhost:{}", server.admin_addr().port()))
        .arg("--ca-bundle")
        .arg(certs.path().join("ca.pem"))
        .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cairn admin over https: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("erasure coding 4+2"));
    // Without the CA it refuses to talk.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["admin", "status", "--admin-url"])
        .arg(format!("https://localhost:{}", server.admin_addr().port()))
        .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_SECRET_KEY", SECRET_KEY)
        .env_remove("CAIRN_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca-bundle"));

    // Cleartext on the TLS port gets no HTTP answer.
    let resp = raw_tcp_exchange(
        server.s3_addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
        std::time::Duration::from_secs(5),
    );
    assert!(resp.is_none(), "plain HTTP was answered on the TLS port");
}

/// `curl` of the admin listener's `/health/live`, trusting only `ca`:
/// whether the TLS handshake (and the request) succeeded.
fn curl_health(server: &TestServer, ca: &Path) -> bool {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(format!(
            "https://localhost:{}/health/live",
            server.admin_addr().port()
        ))
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "live"
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_the_old_one_if_the_new_is_broken() {
    if !require_tool("openssl", "version") || !require_tool("curl", "--version") {
        return;
    }
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    make_certs(first.path());
    make_certs(second.path());
    // The server reads its certificate from files we replace later.
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("tls.pem"), live.path().join("tls.key"));
    std::fs::copy(first.path().join("server.pem"), &cert).unwrap();
    std::fs::copy(first.path().join("server.key"), &key).unwrap();
    let mut server = TestServer::start_with_args(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let (ca1, ca2) = (first.path().join("ca.pem"), second.path().join("ca.pem"));
    assert!(curl_health(&server, &ca1));
    assert!(!curl_health(&server, &ca2));

    // New certificate on disk + SIGHUP: new handshakes use it.
    std::fs::copy(second.path().join("server.pem"), &cert).unwrap();
    std::fs::copy(second.path().join("server.key"), &key).unwrap();
    send_sighup(&server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !curl_health(&server, &ca2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!curl_health(&server, &ca1));

    // A key that does not fit: the reload is refused, the server keeps
    // serving the last good certificate.
    std::fs::copy(first.path().join("server.key"), &key).unwrap();
    send_sighup(&server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.stderr_text().contains("reload failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload failure reported: {}",
            server.stderr_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(server.is_running());
    assert!(curl_health(&server, &ca2));
}

fn send_sighup(server: &TestServer) {
    let pid = server.pid().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// SIGHUP without TLS must not stop the server (its default action would).
#[test]
fn sighup_without_tls_keeps_the_server_running() {
    let mut server = TestServer::start();
    send_sighup(&server);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(server.is_running(), "SIGHUP stopped the server");
    assert_eq!(http_get(server.admin_addr(), "/health/live").0, 200);
}
