//! A small S3 client for load generation: path-style URLs over HTTP/1.1,
//! plain or TLS (hyper's pooled client, `connect.rs`), SigV4 in headers
//! (`aws-sigv4`), with bodies generated and verified as they stream.
//!
//! It owns only the requests the workloads need: HEAD/PUT bucket, PUT, GET,
//! DELETE object and ListObjectsV2 pages. It never buffers a whole object:
//! PUT bodies are produced frame by frame from [`Content`] and GET bodies
//! are compared with it as they arrive. It never retries: a failed request
//! is reported as one.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::connect::{Connector, tls_config};
use crate::content::{Content, Verifier};

/// How a PUT declares its body in `x-amz-content-sha256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD`: the body is not hashed by the client.
    Unsigned,
    /// The body's SHA-256, computed by the client before sending (as SDKs
    /// do over plain HTTP); the server checks it.
    Signed,
}

impl Payload {
    pub fn name(self) -> &'static str {
        match self {
            Payload::Unsigned => "unsigned",
            Payload::Signed => "signed",
        }
    }
}

/// Frames of a generated PUT body: this many content blocks each.
const BLOCKS_PER_FRAME: u64 = 4;
/// The SHA-256 of nothing, for bodiless requests.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Bytes of an error response quoted in a message.
const ERROR_BODY_QUOTE_MAX: usize = 300;

/// RFC 3986 unreserved characters stay; everything else is %-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A key in a path: each `/`-separated segment encoded on its own.
fn encode_key(key: &str) -> String {
    key.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A request body: nothing, fixed bytes, or generated content.
#[derive(Debug)]
pub enum RequestBody {
    Bytes(Option<Bytes>),
    Content { content: Content, next_block: u64 },
}

impl RequestBody {
    fn len(&self) -> u64 {
        match self {
            RequestBody::Bytes(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            RequestBody::Content {
                content,
                next_block,
            } => content
                .len()
                .saturating_sub(next_block * crate::content::BLOCK_BYTES as u64),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            RequestBody::Bytes(b) => b.take().filter(|b| !b.is_empty()),
            RequestBody::Content {
                content,
                next_block,
            } => {
                if *next_block >= content.blocks() {
                    None
                } else {
                    let frame = content.frame(*next_block, BLOCKS_PER_FRAME);
                    *next_block += BLOCKS_PER_FRAME;
                    Some(frame)
                }
            }
        };
        Poll::Ready(frame.map(|f| Ok(Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

/// The hex SHA-256 of generated content (a second pass over it).
fn content_sha256(content: &Content) -> String {
    let mut hasher = Sha256::new();
    let mut block = Vec::with_capacity(crate::content::BLOCK_BYTES);
    for index in 0..content.blocks() {
        block.clear();
        content.append_block(index, &mut block);
        hasher.update(&block);
    }
    hex::encode(hasher.finalize())
}

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub payload: Payload,
    pub connections_max: usize,
    pub request_timeout: Duration,
    /// PEM certificates to trust for https:// besides the system's.
    pub ca_bundle: Option<std::path::PathBuf>,
}

/// A GET's result: the bytes received and, if the body was wrong, how.
#[derive(Debug)]
pub struct Verified {
    pub bytes: u64,
    pub mismatch: Option<String>,
}

/// One ListObjectsV2 page: (key, size) pairs and the token for the next.
#[derive(Debug, Default, PartialEq)]
pub struct ListPage {
    pub objects: Vec<(String, u64)>,
    pub next_token: Option<String>,
}

#[derive(Debug)]
pub struct S3Client {
    http: Client<Connector, RequestBody>,
    endpoint: String,
    bucket: String,
    region: String,
    identity: Identity,
    payload: Payload,
    request_timeout: Duration,
}

impl S3Client {
    pub fn new(config: &ClientConfig) -> Result<Self, String> {
        let endpoint = config.endpoint.trim_end_matches('/').to_owned();
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| format!("endpoint '{endpoint}' is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => Some(tls_config(config.ca_bundle.as_deref())?),
            _ => {
                return Err(format!(
                    "endpoint '{endpoint}' must start with http:// or https://"
                ));
            }
        };
        if uri.authority().is_none() || uri.path().len() > 1 {
            return Err(format!(
                "endpoint '{endpoint}' must be http[s]://host[:port] with no path"
            ));
        }
        if config.bucket.is_empty() || config.bucket.contains('/') {
            return Err(format!("bucket name '{}' is not valid", config.bucket));
        }
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.connections_max)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(Connector::new(tls));
        let identity = Credentials::new(
            &config.access_key,
            &config.secret_key,
            None,
            None,
            "cairn-bench",
        )
        .into();
        Ok(S3Client {
            http,
            endpoint,
            bucket: config.bucket.clone(),
            region: config.region.clone(),
            identity,
            payload: config.payload,
            request_timeout: config.request_timeout,
        })
    }

    fn bucket_url(&self) -> String {
        format!("{}/{}", self.endpoint, encode(&self.bucket))
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.bucket_url(), encode_key(key))
    }

    /// Signs and sends one request; the response body is left unread.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: RequestBody,
        payload_sha256: Option<String>,
    ) -> Result<Response<Incoming>, String> {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        // S3 signs the path as sent: encoded once, never normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("signing: {e}"))?
            .into();
        let signable_body = match &payload_sha256 {
            Some(hash) => SignableBody::Precomputed(hash.clone()),
            None if body.len() == 0 => SignableBody::Precomputed(EMPTY_SHA256.to_owned()),
            None => SignableBody::UnsignedPayload,
        };
        let signable =
            SignableRequest::new(method.as_str(), url, std::iter::empty(), signable_body)
                .map_err(|e| format!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        let len = body.len();
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .map_err(|e| format!("request: {e}"))?;
        if len > 0 {
            request
                .headers_mut()
                .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
        }
        instructions.apply_to_request_http1x(&mut request);
        self.http.request(request).await.map_err(|e| {
            // hyper's top error ("client error (Connect)") says little alone.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            message
        })
    }

    /// Runs `request` under the request timeout.
    async fn timed<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        tokio::time::timeout(self.request_timeout, request)
            .await
            .map_err(|_| {
                format!(
                    "{what}: no complete response within {:?}",
                    self.request_timeout
                )
            })?
    }

    async fn read_all(response: Response<Incoming>) -> Result<(StatusCode, Bytes), String> {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the response: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    fn failure(what: &str, status: StatusCode, body: &[u8]) -> String {
        let quoted = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_QUOTE_MAX)])
            .replace('\n', " ");
        format!("{what}: HTTP {status} {quoted}")
    }

    /// Creates the bucket unless it exists; true if it was created.
    pub async fn ensure_bucket(&self) -> Result<bool, String> {
        let url = self.bucket_url();
        let response = self
            .send(Method::HEAD, &url, RequestBody::Bytes(None), None)
            .await
            .map_err(|e| format!("HEAD bucket {}: {e}", self.bucket))?;
        let (status, _) = Self::read_all(response).await?;
        if status.is_success() {
            return Ok(false);
        }
        if status != StatusCode::NOT_FOUND {
            return Err(format!(
                "HEAD bucket {}: HTTP {status} (wrong credentials or region?)",
                self.bucket
            ));
        }
        let body = if self.region == "us-east-1" {
            None
        } else {
            Some(Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            )))
        };
        let response = self
            .send(Method::PUT, &url, RequestBody::Bytes(body), None)
            .await?;
        let (status, body) = Self::read_all(response).await?;
        if status.is_success() || status == StatusCode::CONFLICT {
            return Ok(status.is_success());
        }
        Err(Self::failure("create bucket", status, &body))
    }

    /// PUTs generated content under `key`.
    pub async fn put_content(&self, key: &str, content: Content) -> Result<(), String> {
        let hash = match self.payload {
            Payload::Signed if content.len() > 0 => Some(content_sha256(&content)),
            _ => None,
        };
        let body = RequestBody::Content {
            content,
            next_block: 0,
        };
        self.put(key, body, hash).await
    }

    /// PUTs a small body held in memory.
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), String> {
        let hash = match self.payload {
            Payload::Signed if !bytes.is_empty() => Some(hex::encode(Sha256::digest(&bytes))),
            _ => None,
        };
        self.put(key, RequestBody::Bytes(Some(bytes)), hash).await
    }

    async fn put(&self, key: &str, body: RequestBody, hash: Option<String>) -> Result<(), String> {
        self.timed("PUT", async {
            let url = self.object_url(key);
            let response = self.send(Method::PUT, &url, body, hash).await?;
            let (status, body) = Self::read_all(response).await?;
            if !status.is_success() {
                return Err(Self::failure("PUT", status, &body));
            }
            Ok(())
        })
        .await
    }

    /// GETs `key`, comparing the body with `content` as it arrives.
    pub async fn get_verified(&self, key: &str, content: Content) -> Result<Verified, String> {
        self.timed("GET", async {
            let url = self.object_url(key);
            let response = self
                .send(Method::GET, &url, RequestBody::Bytes(None), None)
                .await?;
            let status = response.status();
            if !status.is_success() {
                let (_, body) = Self::read_all(response).await?;
                return Err(Self::failure("GET", status, &body));
            }
            let mut body = response.into_body();
            let mut verifier = Verifier::new(content);
            let mut bytes = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("GET: reading the body: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    verifier.update(data);
                    bytes += data.len() as u64;
                }
            }
            Ok(Verified {
                bytes,
                mismatch: verifier.finish().err(),
            })
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), String> {
        self.timed("DELETE", async {
            let url = self.object_url(key);
            let response = self
                .send(Method::DELETE, &url, RequestBody::Bytes(None), None)
                .await?;
            let (status, body) = Self::read_all(response).await?;
            if !status.is_success() {
                return Err(Self::failure("DELETE", status, &body));
            }
            Ok(())
        })
        .await
    }

    /// One ListObjectsV2 page of `prefix`.
    pub async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, String> {
        self.timed("LIST", async {
            let mut url = format!(
                "{}?list-type=2&max-keys={max_keys}&prefix={}",
                self.bucket_url(),
                encode(prefix)
            );
            if let Some(token) = token {
                url.push_str("&continuation-token=");
                url.push_str(&encode(token));
            }
            let response = self
                .send(Method::GET, &url, RequestBody::Bytes(None), None)
                .await?;
            let (status, body) = Self::read_all(response).await?;
            if !status.is_success() {
                return Err(Self::failure("LIST", status, &body));
            }
            parse_list_page(&body)
        })
        .await
    }

    /// Every (key, size) under `prefix`, page after page.
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<(String, u64)>, String> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, token.as_deref(), 1000).await?;
            all.extend(page.objects);
            match page.next_token {
                Some(next) => token = Some(next),
                None => return Ok(all),
            }
        }
    }
}

/// Decodes XML character references (`&amp;`, `&#47;`, `&#x2F;`, ...).
fn xml_unescape(s: &str) -> Result<String, String> {
    if !s.contains('&') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..]
            .find(';')
            .ok_or_else(|| format!("unterminated XML entity in '{s}'"))?;
        let entity = &rest[amp + 1..amp + semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown XML entity '&{entity};'"))?
            }
        };
        out.push(c);
        rest = &rest[amp + semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a ListObjectsV2 response: the Key and Size of each Contents
/// entry, IsTruncated and NextContinuationToken. One pass from tag to tag
/// (a page of 1,000 keys takes tens of microseconds); no XML library
/// needed for this flat document.
pub fn parse_list_page(body: &[u8]) -> Result<ListPage, String> {
    let text = std::str::from_utf8(body).map_err(|_| "LIST: response is not UTF-8".to_owned())?;
    if !text.contains("<ListBucketResult") {
        let quoted: String = text.chars().take(ERROR_BODY_QUOTE_MAX).collect();
        return Err(format!("LIST: not a ListBucketResult: {quoted}"));
    }
    let mut page = ListPage::default();
    let mut truncated = false;
    // Inside a <Contents> element: its Key and Size so far.
    let mut entry: Option<(Option<String>, Option<u64>)> = None;
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let close = rest.find('>').ok_or("LIST: unterminated tag")?;
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        // The element's text runs to the next tag.
        let value = || &rest[..rest.find('<').unwrap_or(rest.len())];
        match (tag, entry.as_mut()) {
            ("Contents", _) => entry = Some((None, None)),
            ("Key", Some((key, _))) => *key = Some(xml_unescape(value())?),
            ("Size", Some((_, size))) => {
                *size = Some(
                    value()
                        .trim()
                        .parse()
                        .map_err(|_| format!("LIST: <Size> '{}' is not a number", value()))?,
                );
            }
            ("/Contents", _) => match entry.take() {
                Some((Some(key), Some(size))) => page.objects.push((key, size)),
                _ => return Err("LIST: <Contents> without <Key> and <Size>".to_owned()),
            },
            ("IsTruncated", None) => truncated = value().trim() == "true",
            ("NextContinuationToken", None) => page.next_token = Some(xml_unescape(value())?),
            _ => {}
        }
    }
    if !truncated {
        page.next_token = None;
    } else if page.next_token.is_none() {
        return Err("LIST: truncated page without <NextContinuationToken>".to_owned());
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{BLOCK_BYTES, DataKind};

    #[test]
    fn list_pages_parse_with_escaped_keys() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>p/a&amp;b&#x2F;c&#47;</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>10</Size></Contents><Contents><Key>p/c</Key><Size>20</Size></Contents><NextContinuationToken>abc+/=</NextContinuationToken></ListBucketResult>"#;
        let page = parse_list_page(xml).unwrap();
        assert_eq!(
            page.objects,
            [("p/a&b/c/".to_owned(), 10), ("p/c".to_owned(), 20)]
        );
        assert_eq!(page.next_token.as_deref(), Some("abc+/="));

        let last = br#"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert_eq!(parse_list_page(last).unwrap(), ListPage::default());
    }

    #[test]
    fn list_pages_with_owners_prefixes_and_odd_keys() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>b</Name><Prefix>p/</Prefix><IsTruncated>false</IsTruncated>
<Contents><Key>p/a>b c</Key><ETag>"x"</ETag><Size>0</Size><Owner><ID>o</ID></Owner></Contents>
<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let page = parse_list_page(xml).unwrap();
        assert_eq!(page.objects, [("p/a>b c".to_owned(), 0)]);
        assert_eq!(page.next_token, None);
    }

    #[test]
    fn bad_list_pages_are_errors() {
        assert!(
            parse_list_page(
                b"<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>"
            )
            .is_err()
        );
        assert!(
            parse_list_page(b"<ListBucketResult><Contents><Key>a</Key><Size>x</Size></Contents></ListBucketResult>")
                .is_err()
        );
        assert!(parse_list_page(b"<Error><Code>AccessDenied</Code></Error>").is_err());
        assert!(
            parse_list_page(
                b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"
            )
            .is_err()
        );
        assert!(
            parse_list_page(b"<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents></ListBucketResult>")
                .is_err()
        );
    }

    #[test]
    fn keys_are_encoded_per_segment() {
        assert_eq!(encode_key("a b/c+d/e~f.json"), "a%20b/c%2Bd/e~f.json");
        assert_eq!(encode("abc+/="), "abc%2B%2F%3D");
    }

    #[test]
    fn a_generated_body_streams_the_content_with_an_exact_length() {
        let content = Content::for_key(DataKind::Random, 1, "k", 9 * BLOCK_BYTES as u64 + 3);
        let mut body = RequestBody::Content {
            content,
            next_block: 0,
        };
        assert_eq!(body.size_hint().exact(), Some(content.len()));
        let mut v = Verifier::new(content);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut frames = 0;
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            v.update(frame.data_ref().unwrap());
            frames += 1;
        }
        assert_eq!(frames, 3);
        assert!(body.is_end_stream());
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn signed_payload_hash_matches_a_one_shot_hash() {
        let content = Content::for_key(DataKind::Compressible, 2, "k", 2 * BLOCK_BYTES as u64 + 1);
        let mut all = Vec::new();
        for i in 0..content.blocks() {
            content.append_block(i, &mut all);
        }
        assert_eq!(content_sha256(&content), hex::encode(Sha256::digest(&all)));
        let empty = Content::for_key(DataKind::Random, 2, "k", 0);
        assert_eq!(content_sha256(&empty), EMPTY_SHA256);
    }

    #[test]
    fn endpoints_must_be_http_or_https_without_a_path() {
        let config = |endpoint: &str| ClientConfig {
            endpoint: endpoint.to_owned(),
            bucket: "b".to_owned(),
            region: "us-east-1".to_owned(),
            access_key: "a".to_owned(),
            secret_key: "s".to_owned(),
            payload: Payload::Unsigned,
            connections_max: 1,
            request_timeout: Duration::from_secs(1),
            ca_bundle: None,
        };
        assert!(S3Client::new(&config("ftp://s3.example.com")).is_err());
        assert!(S3Client::new(&config("127.0.0.1:9000")).is_err());
        assert!(S3Client::new(&config("http://127.0.0.1:9000/bucket")).is_err());
        assert!(S3Client::new(&config("http://127.0.0.1:9000/")).is_ok());
    }
}
