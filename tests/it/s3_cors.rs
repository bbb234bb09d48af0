//! CORS, end to end, written from the AWS documentation ("Using cross-origin
//! resource sharing (CORS)", "How does Amazon S3 evaluate the CORS
//! configuration on a bucket?", the PutBucketCors / GetBucketCors /
//! DeleteBucketCors references and "OPTIONS object"): rules set and read
//! with aws-sdk-s3, preflights and cross-origin requests sent by hand, and
//! a real browser — headless Chromium — running `fetch` from a page of an
//! allowed origin and of a refused one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use md5::Digest as _;

use crate::common::*;

fn rule(origins: &[&str], methods: &[&str]) -> aws_sdk_s3::types::builders::CorsRuleBuilder {
    let mut r = CorsRule::builder();
    for o in origins {
        r = r.allowed_origins(*o);
    }
    for m in methods {
        r = r.allowed_methods(*m);
    }
    r
}

async fn put_cors(c: &aws_sdk_s3::Client, bucket: &str, rules: Vec<CorsRule>) {
    c.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .set_cors_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketCors: {e:?}"));
}

async fn preflight(
    server: &TestServer,
    path: &str,
    origin: Option<&str>,
    method: Option<&str>,
    headers: Option<&str>,
) -> RawResponse {
    let mut r = RawRequest::new("OPTIONS", path);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if let Some(m) = method {
        r = r.header("access-control-request-method", m);
    }
    if let Some(h) = headers {
        r = r.header("access-control-request-headers", h);
    }
    r.send(server.s3_addr()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_rules_are_stored_validated_and_answer_preflights() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "web").await;
    create_bucket(&c, "plain").await;
    put_bytes(&c, "web", "page.txt", b"hello").await;

    // Never set: 404 NoSuchCORSConfiguration.
    let e = c.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchCORSConfiguration")
    );

    // Invalid rules are refused with S3's errors, and nothing is stored.
    for (bad, code, message) in [
        (
            rule(&["*"], &["PATCH"]).build().unwrap(),
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is PATCH",
        ),
        (
            rule(&["http://*.*.example"], &["GET"]).build().unwrap(),
            "InvalidRequest",
            "AllowedOrigin \"http://*.*.example\" can not have more than one wildcard.",
        ),
        (
            rule(&["*"], &["GET"])
                .expose_headers("x-*")
                .build()
                .unwrap(),
            "InvalidRequest",
            "",
        ),
    ] {
        let e = c
            .put_bucket_cors()
            .bucket("web")
            .cors_configuration(
                CorsConfiguration::builder()
                    .cors_rules(bad)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error_code(&e).as_deref(), Some(code), "{e:?}");
        let got = e
            .as_service_error()
            .and_then(aws_sdk_s3::error::ProvideErrorMetadata::message)
            .unwrap_or_default();
        assert!(got.contains(message), "{got}");
    }
    let e = c.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchCORSConfiguration")
    );
    // No body digest: S3 requires Content-MD5 on PutBucketCors.
    let body = "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>";
    RawRequest::new("PUT", "/web?cors")
        .body(body)
        .sign(server.s3_addr(), Payload::Signed)
        .send(server.s3_addr())
        .await
        .assert_s3_error(400, "InvalidRequest", "PutBucketCors without Content-MD5");
    // Malformed documents.
    let md5 = |b: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b.as_bytes()))
    };
    for bad in [
        "<CORSConfiguration></CORSConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><Bogus/></CORSRule></CORSConfiguration>",
        "<CORSConfiguration><CORSRule>",
    ] {
        RawRequest::new("PUT", "/web?cors")
            .header("content-md5", &md5(bad))
            .body(bad)
            .sign(server.s3_addr(), Payload::Signed)
            .send(server.s3_addr())
            .await
            .assert_s3_error(400, "MalformedXML", bad);
    }

    // A valid configuration: stored, and read back as rules.
    put_cors(
        &c,
        "web",
        vec![
            rule(&["https://*.example.com"], &["PUT", "GET"])
                .id("app")
                .allowed_headers("Content-Type")
                .allowed_headers("x-amz-*")
                .expose_headers("ETag")
                .max_age_seconds(600)
                .build()
                .unwrap(),
            rule(&["*"], &["GET", "HEAD"]).build().unwrap(),
        ],
    )
    .await;
    let got = c.get_bucket_cors().bucket("web").send().await.unwrap();
    let rules = got.cors_rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].id(), Some("app"));
    assert_eq!(rules[0].allowed_origins(), ["https://*.example.com"]);
    assert_eq!(rules[0].allowed_methods(), ["PUT", "GET"]);
    assert_eq!(rules[0].allowed_headers(), ["content-type", "x-amz-*"]);
    assert_eq!(rules[0].expose_headers(), ["ETag"]);
    assert_eq!(rules[0].max_age_seconds(), Some(600));
    assert_eq!(rules[1].allowed_origins(), ["*"]);
    assert_eq!(rules[1].max_age_seconds(), None);

    // A preflight for a GET from an origin only the `*` rule names.
    let get_from_elsewhere =
        |path: &'static str| preflight(&server, path, Some("http://other.test"), Some("GET"), None);

    // Preflight allowed by the first rule: 200 with S3's headers.
    let ok = preflight(
        &server,
        "/web/upload.bin",
        Some("https://app.example.com"),
        Some("PUT"),
        Some("content-type,x-amz-date"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(ok.header("access-control-allow-methods"), Some("PUT, GET"));
    assert_eq!(
        ok.header("access-control-allow-headers"),
        Some("content-type, x-amz-date")
    );
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    assert_eq!(ok.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert!(ok.header("vary").unwrap().contains("Origin"));
    assert!(ok.body.is_empty());
    // GET from anywhere (second rule): `*`, no credentials.
    let any = get_from_elsewhere("/web/page.txt").await;
    assert_eq!(any.status, 200);
    assert_eq!(any.header("access-control-allow-origin"), Some("*"));
    assert_eq!(any.header("access-control-allow-credentials"), None);
    // Refusals: origin, method, header; the bucket itself (`BUCKET`).
    for (origin, method, headers) in [
        ("http://other.test", "PUT", None),
        ("https://app.example.com", "DELETE", None),
        ("https://app.example.com", "PUT", Some("authorization")),
        ("https://example.com", "PUT", None),
    ] {
        let r = preflight(
            &server,
            "/web/upload.bin",
            Some(origin),
            Some(method),
            headers,
        )
        .await;
        r.assert_s3_error(
            403,
            "AccessForbidden",
            &format!("{origin} {method} {headers:?}"),
        );
        assert!(
            r.text().contains("<ResourceType>OBJECT</ResourceType>"),
            "{}",
            r.text()
        );
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    // Missing pieces: 400 BadRequest.
    preflight(&server, "/web/x", None, Some("GET"), None)
        .await
        .assert_s3_error(400, "BadRequest", "no Origin");
    preflight(&server, "/web/x", Some("http://other.test"), None, None)
        .await
        .assert_s3_error(400, "BadRequest", "no Access-Control-Request-Method");
    // A bucket without rules and one that does not exist answer alike.
    let none = get_from_elsewhere("/plain/x").await;
    none.assert_s3_error(403, "AccessForbidden", "bucket without rules");
    assert!(none.text().contains("CORS is not enabled for this bucket"));
    let missing = get_from_elsewhere("/no-such-bucket/x").await;
    missing.assert_s3_error(403, "AccessForbidden", "missing bucket");
    assert!(
        missing
            .text()
            .contains("CORS is not enabled for this bucket")
    );

    // Actual requests carry the headers of the rule that matches, errors
    // included; a preflight grants nothing (an unsigned GET is still 403).
    let signed_get = |path: &str, origin: &str| {
        RawRequest::new("GET", path)
            .header("origin", origin)
            .sign(server.s3_addr(), Payload::Signed)
    };
    let got = signed_get("/web/page.txt", "https://app.example.com")
        .send(server.s3_addr())
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "hello");
    assert_eq!(
        got.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(got.header("access-control-expose-headers"), Some("ETag"));
    let missing_key = signed_get("/web/nope.txt", "http://other.test")
        .send(server.s3_addr())
        .await;
    missing_key.assert_s3_error(404, "NoSuchKey", "GET of a missing key");
    assert_eq!(missing_key.header("access-control-allow-origin"), Some("*"));
    let anonymous = RawRequest::new("GET", "/web/page.txt")
        .header("origin", "http://other.test")
        .send(server.s3_addr())
        .await;
    anonymous.assert_s3_error(403, "AccessDenied", "anonymous GET");
    assert_eq!(anonymous.header("access-control-allow-origin"), Some("*"));
    // DELETE is allowed by no rule: no CORS headers, but `Vary`.
    let del = RawRequest::new("DELETE", "/web/page.txt")
        .header("origin", "https://app.example.com")
        .sign(server.s3_addr(), Payload::Signed)
        .send(server.s3_addr())
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(del.header("access-control-allow-origin"), None);
    assert!(del.header("vary").is_some());
    // Without an Origin there is nothing to add.
    let plain = RawRequest::new("GET", "/web?cors")
        .sign(server.s3_addr(), Payload::Signed)
        .send(server.s3_addr())
        .await;
    assert_eq!(plain.header("access-control-allow-origin"), None);

    // Deleted: preflights are refused again; deleting twice is fine.
    c.delete_bucket_cors().bucket("web").send().await.unwrap();
    c.delete_bucket_cors().bucket("web").send().await.unwrap();
    let after = get_from_elsewhere("/web/page.txt").await;
    after.assert_s3_error(403, "AccessForbidden", "after DeleteBucketCors");
    let e = c.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchCORSConfiguration")
    );

    // Rules go with their bucket.
    put_cors(&c, "plain", vec![rule(&["*"], &["GET"]).build().unwrap()]).await;
    c.delete_bucket().bucket("plain").send().await.unwrap();
    create_bucket(&c, "plain").await;
    let e = c
        .get_bucket_cors()
        .bucket("plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchCORSConfiguration")
    );
}

/// A page server for the browser test: `GET /` answers `page`, `POST
/// /result` hands its body to the test. One request per connection.
fn serve_page(page: String) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, content) = if request_line.starts_with("POST /result") {
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                ("200 OK", String::new())
            } else if request_line.starts_with("GET / ") {
                ("200 OK", page.clone())
            } else {
                ("404 Not Found", String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{content}",
                content.len()
            );
        }
    });
    (addr, rx)
}

/// Loads `url` in headless Chromium and waits for the page's report.
fn run_browser(url: &str, results: &mpsc::Receiver<String>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let report = results.recv_timeout(Duration::from_secs(90));
    let _ = browser.kill();
    let output = browser.wait_with_output().ok();
    report.unwrap_or_else(|_| {
        panic!(
            "no report from the page at {url} within 90 s; chromium stderr:\n{}",
            output
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default()
        )
    })
}

/// The page: PUT then GET through presigned URLs with `fetch`, and report
/// what happened (or the TypeError a refused CORS check raises).
fn page(put_url: &str, get_url: &str) -> String {
    format!(
        r#"<!doctype html><html><body><script>
(async () => {{
  let report;
  try {{
    const put = await fetch({put_url:?}, {{ method: "PUT", body: "hello from a browser", headers: {{ "Content-Type": "text/plain" }} }});
    const etag = put.headers.get("ETag");
    const get = await fetch({get_url:?});
    const body = await get.text();
    report = `put=${{put.status}} etag=${{etag}} get=${{get.status}} body=${{body}}`;
  }} catch (e) {{
    report = "refused: " + e;
  }}
  await fetch("/result", {{ method: "POST", body: report }});
}})();
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_uploads_and_downloads_across_origins_only_when_allowed() {
    if !require_tool("chromium", "--version") {
        return;
    }
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "browser").await;

    // Two page origins (ports differ, so origins differ); one is allowed.
    let presign = |key: &'static str, put: bool| {
        let c = c.clone();
        async move {
            let config = PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();
            if put {
                let p = c.put_object().bucket("browser").key(key);
                p.presigned(config).await.unwrap().uri().to_string()
            } else {
                let g = c.get_object().bucket("browser").key(key);
                g.presigned(config).await.unwrap().uri().to_string()
            }
        }
    };
    let (allowed_addr, allowed_results) = serve_page(page(
        &presign("from-allowed.txt", true).await,
        &presign("from-allowed.txt", false).await,
    ));
    let (refused_addr, refused_results) = serve_page(page(
        &presign("from-refused.txt", true).await,
        &presign("from-refused.txt", false).await,
    ));
    put_cors(
        &c,
        "browser",
        vec![
            rule(&[&format!("http://{allowed_addr}")], &["PUT", "GET"])
                .allowed_headers("*")
                .expose_headers("ETag")
                .build()
                .unwrap(),
        ],
    )
    .await;

    let report = run_browser(&format!("http://{allowed_addr}/"), &allowed_results);
    let etag = hex::encode(md5::Md5::digest(b"hello from a browser"));
    assert_eq!(
        report,
        format!("put=200 etag=\"{etag}\" get=200 body=hello from a browser"),
        "the allowed origin's page"
    );
    assert_eq!(
        get_bytes(&c, "browser", "from-allowed.txt").await,
        b"hello from a browser"
    );

    let report = run_browser(&format!("http://{refused_addr}/"), &refused_results);
    assert!(
        report.starts_with("refused: TypeError"),
        "the refused origin's page: {report}"
    );
    // The preflight failed, so the browser never sent the PUT.
    assert!(!object_exists(&c, "browser", "from-refused.txt").await);
}
