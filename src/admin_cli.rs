//! `cairn admin …`: maintenance commands that talk to a running server's
//! admin listener over HTTP (see `admin_http.rs` for the endpoints).

use std::io::{IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The server's admin listener (its --admin-listen address).
    #[arg(
        long,
        env = "CAIRN_ADMIN_URL",
        default_value = "http://127.0.0.1:9001",
        global = true
    )]
    admin_url: String,
    /// Access key to sign admin requests with (one of the server's S3
    /// credentials). Falls back to AWS_ACCESS_KEY_ID.
    #[arg(long, env = "CAIRN_ACCESS_KEY", global = true, hide_env_values = true)]
    access_key: Option<String>,
    /// File holding the secret key for --access-key (its first line). The
    /// secret is never taken from the command line, where every user sees it
    /// in `ps`: without this file it comes from the environment,
    /// CAIRN_SECRET_KEY, else AWS_SECRET_ACCESS_KEY.
    #[arg(
        long,
        env = "CAIRN_SECRET_KEY_FILE",
        global = true,
        value_name = "FILE"
    )]
    secret_key_file: Option<std::path::PathBuf>,
    /// Refused: see --secret-key-file.
    #[arg(long, global = true, hide = true, value_name = "SECRET")]
    secret_key: Option<String>,
    /// PEM file of the CA(s) to trust when --admin-url is https:// (the
    /// server's certificate issuer).
    #[arg(long, env = "CAIRN_CA_BUNDLE", global = true, value_name = "FILE")]
    ca_bundle: Option<std::path::PathBuf>,
    /// Region the server verifies signatures for (its --region).
    #[arg(long, env = "CAIRN_REGION", default_value = "us-east-1", global = true)]
    region: String,
    /// Print the server's JSON reply instead of tables and progress (for
    /// scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

/// How admin requests are signed.
struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    /// Set for https:// admin URLs.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// A rustls client configuration trusting the CAs in `bundle`.
fn tls_client(bundle: &std::path::Path) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(bundle)
        .map_err(|e| format!("reading CA bundle {}: {e}", bundle.display()))?
    {
        let cert = cert.map_err(|e| format!("parsing CA bundle {}: {e}", bundle.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA bundle {}: {e}", bundle.display()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

/// The secret in `path`: its first line, surrounding blanks trimmed.
fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading the secret key file {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_owned();
    if secret.is_empty() {
        return Err(format!("the secret key file {} is empty", path.display()));
    }
    Ok(secret)
}

impl Signer {
    fn from_args(args: &AdminArgs) -> Result<Signer, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if args.secret_key.is_some() {
            return Err("--secret-key is not accepted: a command line is visible to every user (ps, /proc). Give the secret in CAIRN_SECRET_KEY or a file named by --secret-key-file (CAIRN_SECRET_KEY_FILE)".into());
        }
        let access_key = args.access_key.clone().or_else(|| env("AWS_ACCESS_KEY_ID"));
        let secret_key = match &args.secret_key_file {
            Some(path) => Some(read_secret_file(path)?),
            None => env("CAIRN_SECRET_KEY").or_else(|| env("AWS_SECRET_ACCESS_KEY")),
        };
        match (access_key, secret_key) {
            (Some(access_key), Some(secret_key)) => Ok(Signer {
                access_key,
                secret_key,
                region: args.region.clone(),
                tls: match (args.admin_url.starts_with("https://"), &args.ca_bundle) {
                    (false, _) => None,
                    (true, Some(bundle)) => Some(tls_client(bundle)?),
                    (true, None) => {
                        return Err("an https:// admin URL needs --ca-bundle (CAIRN_CA_BUNDLE): the PEM of the CA that issued the server's certificate".into());
                    }
                },
            }),
            _ => Err("admin requests are signed with the server's S3 credentials: set CAIRN_ACCESS_KEY (or --access-key) and CAIRN_SECRET_KEY (or --secret-key-file FILE), or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".into()),
        }
    }

    /// SigV4 headers (authorization, x-amz-date, x-amz-content-sha256) for
    /// a bodiless request to `url`.
    fn headers(
        &self,
        method: &str,
        url: &str,
        host: &str,
    ) -> Result<Vec<(String, String)>, String> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
        };
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity: aws_smithy_runtime_api::client::identity::Identity =
            aws_credential_types::Credentials::new(
                &self.access_key,
                &self.secret_key,
                None,
                None,
                "cairn-admin",
            )
            .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("signing: {e}"))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            [("host", host)].into_iter(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| format!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        let (headers, _) = instructions.into_parts();
        Ok(headers
            .into_iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned()))
            .collect())
    }
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Whether the server is ready (GET /health/ready on the admin
    /// listener): prints one line, exits 0 when ready, 1 otherwise. Needs no
    /// credentials; for container health checks and scripts.
    Health {
        /// Give up after this many seconds (connecting, then the reply).
        #[arg(long, default_value = "2", value_name = "SECS")]
        timeout: u64,
    },
    /// Verify every shard of every chunk against its checksum and repair
    /// what is missing or corrupt, showing progress until it finishes.
    Scrub {
        /// Read at most this many shard bytes per second (e.g. 50MiB);
        /// 0 = no limit.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        rate: u64,
        /// Start the scrub and return without waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Rebuild the shards of a lost or replaced drive (an empty directory
    /// in its place) from the other drives, at full speed, with progress.
    Heal,
    /// Show the server's drives (state, space), erasure coding, pipeline
    /// savings since start, metadata size and scrub state.
    Status,
    /// Run one garbage-collection pass now: delete chunks unreferenced for
    /// longer than the grace period, compact sparse segments, expire
    /// abandoned multipart uploads.
    Gc,
    /// Access keys: create, list, delete, and their bucket grants.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Buckets as the server sees them.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// A cluster as this node sees it (docs/cluster.md).
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Nodes (role, address, how far each has replicated the metadata
    /// log), the leader, then every drive of the cluster with its state and
    /// the heal backlog (shards known missing or corrupt, not rebuilt yet).
    Status,
    /// Move every shard that is not where the placement rule puts it now
    /// (after nodes or drives were added, or to drain the nodes given in
    /// --cluster-drain), with progress. Also works on a single node.
    Rebalance {
        /// Copy at most this many bytes per second (e.g. 50MiB); 0 = no limit.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        rate: u64,
        /// Start it and return without waiting.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an access key with new random credentials. The secret is
    /// printed once; it cannot be shown again.
    Create {
        /// A name for humans ("backup job").
        name: String,
        /// An admin key: every bucket, creating and deleting buckets, and
        /// this admin API.
        #[arg(long)]
        admin: bool,
        /// A bucket grant, BUCKET:rw, BUCKET:r or BUCKET:w (repeatable).
        #[arg(long = "allow", value_name = "BUCKET:RIGHTS")]
        allow: Vec<String>,
    },
    /// List every access key and its grants (never secrets).
    List,
    /// Delete an access key; requests signed with it fail from then on.
    Delete {
        /// The access key id.
        id: String,
    },
    /// Give a key read and/or write on a bucket (replaces its grant there).
    Allow {
        id: String,
        bucket: String,
        /// Read objects, list, read tags.
        #[arg(long)]
        read: bool,
        /// Write and delete objects, multipart uploads, tags.
        #[arg(long)]
        write: bool,
    },
    /// Remove a key's grant on a bucket.
    Deny { id: String, bucket: String },
}

#[derive(Debug, Subcommand)]
enum BucketCommand {
    /// A bucket's objects, bytes, uploads in progress and the keys that
    /// may use it (reads every object record of the bucket).
    Info { name: String },
}

/// `64MiB`, `10MB`, `4096`…
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB, GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// A plain or TLS connection.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

struct HttpReply {
    status: u16,
    body: String,
}

/// One signed HTTP/1.1 exchange with `Connection: close`, over TLS for an
/// https:// URL (the admin API is small; no client library needed).
fn call(
    signer: &Signer,
    base: &str,
    method: &str,
    path_and_query: &str,
) -> Result<HttpReply, String> {
    let reply = exchange(
        base,
        signer.tls.as_ref(),
        Some(signer),
        method,
        path_and_query,
        Duration::from_secs(5),
        Duration::from_secs(3600),
    )?;
    if reply.status == 403 {
        return Err(format!(
            "the server refused the request: {}",
            error_message(&reply.body)
        ));
    }
    Ok(reply)
}

/// One HTTP/1.1 exchange with `Connection: close`, signed when `signer` is
/// given, over TLS (`tls`) for an https:// URL. A reply that is an S3 XML
/// error means `base` is the S3 listener, not the admin one: that is the
/// error then.
fn exchange(
    base: &str,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    signer: Option<&Signer>,
    method: &str,
    path_and_query: &str,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<HttpReply, String> {
    let (scheme, authority) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
        (Some(a), _) => ("http", a),
        (None, Some(a)) => ("https", a),
        (None, None) => {
            return Err(format!(
                "admin URL must start with http:// or https://, got {base:?}"
            ));
        }
    };
    let authority = authority.trim_end_matches('/');
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let tcp = TcpStream::connect_timeout(&addr, connect_timeout).map_err(|e| {
        format!("cannot reach the admin listener at {base}: {e} (is `cairn server` running? see --admin-url)")
    })?;
    let _ = tcp.set_read_timeout(Some(read_timeout));
    let _ = tcp.set_write_timeout(Some(read_timeout));
    let mut stream: Box<dyn ReadWrite> = match (scheme, tls) {
        ("https", Some(config)) => {
            let host = authority
                .rsplit_once(':')
                .map_or(authority, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| format!("admin URL host: {e}"))?;
            let conn = rustls::ClientConnection::new(config.clone(), name)
                .map_err(|e| format!("TLS: {e}"))?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
        ("https", None) => {
            return Err("an https:// admin URL needs --ca-bundle (CAIRN_CA_BUNDLE): the PEM of the CA that issued the server's certificate".into());
        }
        _ => Box::new(tcp),
    };
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    if let Some(signer) = signer {
        for (name, value) in signer.headers(
            method,
            &format!("{scheme}://{authority}{path_and_query}"),
            authority,
        )? {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending to {base}: {e}"))?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify after a complete reply.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(format!("reading from {base}: {e}")),
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed reply from {base}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed status line from {base}"))?;
    if let Some(code) = s3_error_code(body) {
        return Err(format!(
            "{base} answered with an S3 error ({code}): that looks like the S3 port, not the admin listener. Point --admin-url (CAIRN_ADMIN_URL) at the server's --admin-listen address (default http://127.0.0.1:9001)"
        ));
    }
    Ok(HttpReply {
        status,
        body: body.to_owned(),
    })
}

/// The `<Code>` of an S3 XML error body (the admin API answers JSON or
/// plain text, never this).
fn s3_error_code(body: &str) -> Option<&str> {
    let body = body.trim_start();
    if !(body.starts_with("<?xml") || body.starts_with("<Error>")) || !body.contains("<Error>") {
        return None;
    }
    let code = &body[body.find("<Code>")? + "<Code>".len()..];
    Some(&code[..code.find("</Code>")?])
}

/// `cairn admin health`: GET /health/ready without credentials, one line
/// out; true when the server answered 200 (ready, perhaps degraded).
fn health(args: &AdminArgs, base: &str, timeout: Duration) -> Result<bool, String> {
    let tls = match (base.starts_with("https://"), &args.ca_bundle) {
        (true, Some(bundle)) => Some(tls_client(bundle)?),
        _ => None,
    };
    let reply = exchange(
        base,
        tls.as_ref(),
        None,
        "GET",
        "/health/ready",
        timeout,
        timeout,
    )?;
    let text = reply.body.trim();
    if reply.status == 200 {
        println!("{text}");
        Ok(true)
    } else {
        println!("{base}/health/ready answered {}: {text}", reply.status);
        Ok(false)
    }
}

/// The `error` of a JSON error reply, else the body as text.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}

/// Fails unless the reply has the `expected` status.
fn expect_status(reply: HttpReply, expected: u16) -> Result<HttpReply, String> {
    if reply.status == expected {
        Ok(reply)
    } else {
        Err(format!(
            "server answered {}: {}",
            reply.status,
            error_message(&reply.body)
        ))
    }
}

/// Percent-encodes a query value or path segment (SigV4's unreserved set
/// stays as it is, so the signature covers exactly what is sent).
fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// A reply of the admin API as JSON.
fn parse_json(body: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(body).map_err(|e| format!("unexpected reply from the server: {e}"))
}

/// A number field of an admin reply (0 when absent).
fn num(v: &serde_json::Value, name: &str) -> u64 {
    v.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// A boolean field of an admin reply (false when absent).
fn flag(v: &serde_json::Value, name: &str) -> bool {
    v.get(name).and_then(serde_json::Value::as_bool) == Some(true)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// What a followed job reports: its byte counter and the counts after the
/// bar.
#[derive(Clone, Copy)]
struct JobKind {
    bytes_key: &'static str,
    bytes_verb: &'static str,
    counts: fn(&serde_json::Value) -> String,
}

const SCRUB_JOB: JobKind = JobKind {
    bytes_key: "bytes_read",
    bytes_verb: "read",
    counts: |s| {
        format!(
            "missing {} corrupt {} repaired {} unrecoverable {}",
            num(s, "shards_missing"),
            num(s, "shards_corrupt"),
            num(s, "shards_repaired"),
            num(s, "chunks_unrecoverable"),
        )
    },
};

const REBALANCE_JOB: JobKind = JobKind {
    bytes_key: "bytes_moved",
    bytes_verb: "moved",
    counts: |s| {
        format!(
            "misplaced chunks {} shards moved {} (rebuilt {}) skipped {}",
            num(s, "chunks_misplaced"),
            num(s, "shards_moved"),
            num(s, "shards_rebuilt"),
            num(s, "shards_skipped"),
        )
    },
};

#[cfg(test)]
fn progress_line(status: &serde_json::Value, elapsed: Duration) -> String {
    job_progress_line(SCRUB_JOB, status, elapsed)
}

/// The total of a job's progress: the server's estimate while it runs (at
/// least what is done), what was done once it finished (the estimate counts
/// chunk records before the job starts and may be far off).
fn job_total(status: &serde_json::Value, running: bool) -> u64 {
    let done = num(status, "chunks_checked");
    if running {
        num(status, "chunks_total_estimate").max(done).max(1)
    } else {
        done
    }
}

fn job_progress_line(kind: JobKind, status: &serde_json::Value, elapsed: Duration) -> String {
    let done = num(status, "chunks_checked");
    let running = flag(status, "running");
    let total = job_total(status, running);
    let frac = if running {
        (done as f64 / total as f64).min(0.99)
    } else {
        1.0
    };
    const WIDTH: usize = 30;
    let filled = (frac * WIDTH as f64) as usize;
    let bar: String = "#".repeat(filled) + &".".repeat(WIDTH - filled);
    let bytes = num(status, kind.bytes_key);
    let rate = bytes as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if running && frac > 0.0 {
        let left = elapsed.as_secs_f64() * (1.0 - frac) / frac;
        format!("ETA {}", human_duration(Duration::from_secs_f64(left)))
    } else if running {
        "ETA --:--".to_owned()
    } else {
        format!("done in {}", human_duration(elapsed))
    };
    format!(
        "[{bar}] {:>3.0}%  {done}/{total} chunks  {} {} ({}/s)  {eta}  {}",
        frac * 100.0,
        human_bytes(bytes),
        kind.bytes_verb,
        human_bytes(rate as u64),
        (kind.counts)(status),
    )
}

/// Follows a running job (scrub, heal, rebalance): an `indicatif` bar on a terminal, a line every
/// 5 s otherwise (logs of cron jobs), nothing with `--json`.
struct JobProgress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    last_line: Instant,
    kind: JobKind,
}

impl JobProgress {
    fn for_job(quiet: bool, kind: JobKind) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(1);
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} chunks  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>.");
            bar.set_style(style);
            bar
        });
        JobProgress {
            bar,
            quiet,
            last_line: Instant::now(),
            kind,
        }
    }

    fn update(&mut self, status: &serde_json::Value, elapsed: Duration) {
        let running = flag(status, "running");
        match &self.bar {
            Some(bar) => {
                bar.set_length(job_total(status, running));
                bar.set_position(num(status, "chunks_checked"));
                bar.set_message(format!(
                    "{} {}  {}",
                    human_bytes(num(status, self.kind.bytes_key)),
                    self.kind.bytes_verb,
                    (self.kind.counts)(status),
                ));
                if !running {
                    bar.finish();
                }
            }
            None if self.quiet => {}
            None => {
                if !running || self.last_line.elapsed() >= Duration::from_secs(5) {
                    eprintln!("{}", job_progress_line(self.kind, status, elapsed));
                    self.last_line = Instant::now();
                }
            }
        }
    }
}

/// Starts a scrub and (unless `no_wait`) follows it to the end.
/// Starts the job at `route` (POST, with an optional rate) and, unless
/// `no_wait`, follows it (GET) with progress to its end. Returns its final
/// status, or `None` when not waiting (with `--json`, the reply is printed
/// either way).
#[allow(clippy::too_many_arguments)]
fn run_job(
    signer: &Signer,
    base: &str,
    route: &str,
    kind: JobKind,
    what: &str,
    rate: u64,
    no_wait: bool,
    as_json: bool,
) -> Result<Option<serde_json::Value>, String> {
    let path = if rate > 0 {
        format!("{route}?bytes_per_sec={rate}")
    } else {
        route.to_owned()
    };
    let started = call(signer, base, "POST", &path)?;
    match started.status {
        202 if !as_json => eprintln!("cairn: {what} started"),
        409 if !as_json => eprintln!("cairn: a {what} is already running; following it"),
        202 | 409 => {}
        s => {
            return Err(format!(
                "server answered {s}: {}",
                error_message(&started.body)
            ));
        }
    }
    if no_wait {
        if as_json {
            print!("{}", started.body);
        }
        return Ok(None);
    }
    let t0 = Instant::now();
    let mut progress = JobProgress::for_job(as_json, kind);
    loop {
        let reply = expect_status(call(signer, base, "GET", route)?, 200)?;
        let status = parse_json(&reply.body)?;
        progress.update(&status, t0.elapsed());
        if !flag(&status, "running") {
            if as_json {
                print!("{}", reply.body);
            }
            return Ok(Some(status));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn scrub(
    signer: &Signer,
    base: &str,
    rate: u64,
    no_wait: bool,
    what: &str,
    as_json: bool,
) -> Result<bool, String> {
    let Some(status) = run_job(
        signer,
        base,
        "/admin/scrub",
        SCRUB_JOB,
        what,
        rate,
        no_wait,
        as_json,
    )?
    else {
        return Ok(true);
    };
    let unrecoverable = num(&status, "chunks_unrecoverable");
    if !as_json {
        println!(
            "{what} finished: {} chunks, {} shards verified, {} missing, {} corrupt, {} repaired, {unrecoverable} unrecoverable",
            num(&status, "chunks_checked"),
            num(&status, "shards_verified"),
            num(&status, "shards_missing"),
            num(&status, "shards_corrupt"),
            num(&status, "shards_repaired"),
        );
        if unrecoverable > 0 {
            eprintln!("cairn: some chunks could not be repaired (see the server log)");
        }
    }
    Ok(unrecoverable == 0)
}

fn status(signer: &Signer, base: &str, as_json: bool) -> Result<bool, String> {
    let r = expect_status(call(signer, base, "GET", "/admin/status")?, 200)?;
    let v = parse_json(&r.body)?;
    let drives: Vec<&serde_json::Value> = v
        .get("drives")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let text_of = |d: &serde_json::Value, key: &str| {
        d.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    // A server without drive states (older) reports presence and faults.
    let state_of = |d: &serde_json::Value| match text_of(d, "state") {
        s if !s.is_empty() => s,
        _ if !flag(d, "present") => "missing".to_owned(),
        _ if flag(d, "faulty") => "faulty".to_owned(),
        _ => "ok".to_owned(),
    };
    let all_ok = drives.iter().all(|d| state_of(d) == "ok");
    if as_json {
        print!("{}", r.body);
        return Ok(all_ok);
    }
    let n = |key: &str| num(&v, key);
    let (logical, stored, raw) = (n("logical_bytes"), n("stored_bytes"), n("raw_bytes"));
    let scrub_running = flag(&v, "scrub_running");
    let scrub_progress = if n("scrub_chunks_total_estimate") > 0 {
        format!(
            " ({}/~{} chunks)",
            n("scrub_chunks_checked"),
            n("scrub_chunks_total_estimate")
        )
    } else {
        String::new()
    };
    println!(
        "cairn {}  erasure coding {}+{}  metadata {}  heal backlog {}  scrub {}",
        v.get("version")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?"),
        n("data_shards"),
        n("parity_shards"),
        human_bytes(n("metadata_sst_bytes")),
        human_bytes(n("heal_backlog_bytes")),
        if scrub_running {
            format!("running{scrub_progress}")
        } else {
            "idle".to_owned()
        },
    );
    let ratio = if stored > 0 {
        logical as f64 / stored as f64
    } else {
        1.0
    };
    println!(
        "stored: {} objects, {} as written, {} after dedup+compression ({ratio:.2}x), {} on drives with parity",
        n("objects"),
        human_bytes(logical),
        human_bytes(stored),
        human_bytes(raw)
    );
    println!();
    println!(
        "{:<6}{:<20}{:>12}{:>12}{:>12}  path",
        "drive", "state", "segments", "free", "size"
    );
    let mut problems = Vec::new();
    for d in &drives {
        let g = |key: &str| num(d, key);
        let state = state_of(d);
        let shown = match state.as_str() {
            "ok" => "ok".to_owned(),
            "replaced" if flag(d, "healing") => "REPLACED, healing".to_owned(),
            "replaced" => "REPLACED, needs heal".to_owned(),
            other => other.to_uppercase(),
        };
        let problem = match state.as_str() {
            "ok" => None,
            "missing" => Some("its directory is missing".to_owned()),
            "replaced" if flag(d, "healing") => Some(format!(
                "it was replaced (empty, no marker); its shards are being rebuilt{scrub_progress}"
            )),
            "replaced" => Some(
                "it was replaced (empty, no marker); run `cairn admin heal` to rebuild its shards"
                    .to_owned(),
            ),
            "foreign" => Some(format!(
                "refused, nothing is written to it: {}",
                text_of(d, "state_detail")
            )),
            "faulty" => Some("its reads or writes failed recently".to_owned()),
            other => Some(format!("state {other}")),
        };
        if let Some(p) = problem {
            problems.push(format!("drive {}: {p}", g("index")));
        }
        println!(
            "{:<6}{:<20}{:>12}{:>12}{:>12}  {}",
            g("index"),
            shown,
            human_bytes(g("segment_bytes")),
            human_bytes(g("fs_free_bytes")),
            human_bytes(g("fs_size_bytes")),
            d.get("path")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?"),
        );
    }
    if !all_ok {
        for p in &problems {
            eprintln!("cairn: {p}");
        }
        eprintln!(
            "cairn: some drives are missing, replaced, refused or faulty (see docs/operations.md, \"Drive identity and states\")"
        );
    }
    Ok(all_ok)
}

fn gc(signer: &Signer, base: &str, as_json: bool) -> Result<bool, String> {
    let r = expect_status(call(signer, base, "POST", "/admin/gc")?, 200)?;
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    let v = parse_json(&r.body)?;
    println!(
        "gc: {} chunks deleted ({} live), {} segments compacted, {} shards moved, {} reclaimed, {} abandoned uploads expired",
        num(&v, "chunks_deleted"),
        num(&v, "chunks_live"),
        num(&v, "segments_compacted"),
        num(&v, "shards_moved"),
        human_bytes(num(&v, "bytes_reclaimed")),
        num(&v, "uploads_expired"),
    );
    Ok(true)
}

fn text_field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// "admin", or the grants as `photos:rw logs:r`.
fn rights_text(key: &serde_json::Value) -> String {
    if flag(key, "admin") {
        return "admin (every bucket, admin API)".to_owned();
    }
    let grants: Vec<String> = key
        .get("grants")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| {
            let rights = match (flag(g, "read"), flag(g, "write")) {
                (true, true) => "rw",
                (true, false) => "r",
                (false, true) => "w",
                (false, false) => "-",
            };
            format!("{}:{rights}", text_field(g, "bucket"))
        })
        .collect();
    if grants.is_empty() {
        "no bucket (grant one with `cairn admin key allow`)".to_owned()
    } else {
        grants.join(" ")
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC ("-" for 0).
fn utc_minutes(ms: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60
    )
}

fn key_command(
    signer: &Signer,
    base: &str,
    cmd: KeyCommand,
    as_json: bool,
) -> Result<bool, String> {
    match cmd {
        KeyCommand::Create { name, admin, allow } => {
            let mut path = format!("/admin/keys?name={}", encode(&name));
            if admin {
                path.push_str("&admin=true");
            }
            for a in &allow {
                path.push_str(&format!("&allow={}", encode(a)));
            }
            let r = expect_status(call(signer, base, "POST", &path)?, 201)?;
            if as_json {
                print!("{}", r.body);
                return Ok(true);
            }
            let v = parse_json(&r.body)?;
            println!("created access key {:?}", text_field(&v, "name"));
            println!("  Access key: {}", text_field(&v, "id"));
            println!("  Secret key: {}", text_field(&v, "secret"));
            println!("  Rights:     {}", rights_text(&v));
            eprintln!("cairn: the secret is shown only this once; keep it safe");
            Ok(true)
        }
        KeyCommand::List => {
            let r = expect_status(call(signer, base, "GET", "/admin/keys")?, 200)?;
            if as_json {
                print!("{}", r.body);
                return Ok(true);
            }
            let v = parse_json(&r.body)?;
            println!(
                "{:<22}{:<26}{:<18}rights",
                "access key", "name", "created (UTC)"
            );
            for k in v.as_array().into_iter().flatten() {
                let name = if flag(k, "fixed") {
                    "(start-up key)".to_owned()
                } else {
                    text_field(k, "name").chars().take(24).collect()
                };
                println!(
                    "{:<22}{:<26}{:<18}{}",
                    text_field(k, "id"),
                    name,
                    utc_minutes(num(k, "created_ms")),
                    rights_text(k)
                );
            }
            Ok(true)
        }
        KeyCommand::Delete { id } => {
            let r = expect_status(
                call(
                    signer,
                    base,
                    "DELETE",
                    &format!("/admin/keys/{}", encode(&id)),
                )?,
                200,
            )?;
            if as_json {
                print!("{}", r.body);
            } else {
                println!("deleted access key {id}");
            }
            Ok(true)
        }
        KeyCommand::Allow {
            id,
            bucket,
            read,
            write,
        } => {
            if !read && !write {
                return Err("say what to allow: --read, --write or both".into());
            }
            let path = format!(
                "/admin/keys/{}/grants/{}?read={read}&write={write}",
                encode(&id),
                encode(&bucket)
            );
            let r = expect_status(call(signer, base, "PUT", &path)?, 200)?;
            if as_json {
                print!("{}", r.body);
            } else {
                println!("{id}: {}", rights_text(&parse_json(&r.body)?));
            }
            Ok(true)
        }
        KeyCommand::Deny { id, bucket } => {
            let path = format!("/admin/keys/{}/grants/{}", encode(&id), encode(&bucket));
            let r = expect_status(call(signer, base, "DELETE", &path)?, 200)?;
            if as_json {
                print!("{}", r.body);
            } else {
                println!("{id}: {}", rights_text(&parse_json(&r.body)?));
            }
            Ok(true)
        }
    }
}

fn bucket_command(
    signer: &Signer,
    base: &str,
    cmd: BucketCommand,
    as_json: bool,
) -> Result<bool, String> {
    let BucketCommand::Info { name } = cmd;
    let r = expect_status(
        call(
            signer,
            base,
            "GET",
            &format!("/admin/buckets/{}", encode(&name)),
        )?,
        200,
    )?;
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    let v = parse_json(&r.body)?;
    println!("bucket {}", text_field(&v, "name"));
    println!(
        "  created:             {} UTC",
        utc_minutes(num(&v, "created_ms"))
    );
    println!("  objects:             {}", num(&v, "objects"));
    println!(
        "  size:                {} (as clients see it, before dedup and compression)",
        human_bytes(num(&v, "logical_bytes"))
    );
    println!("  uploads in progress: {}", num(&v, "uploads_in_progress"));
    println!("  keys:");
    for k in v
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        let rights = if flag(k, "admin") {
            "admin"
        } else {
            match (flag(k, "read"), flag(k, "write")) {
                (true, true) => "read+write",
                (true, false) => "read",
                (false, true) => "write",
                (false, false) => "-",
            }
        };
        println!(
            "    {:<22}{:<12}{}",
            text_field(k, "id"),
            rights,
            text_field(k, "name")
        );
    }
    Ok(true)
}

/// Runs `cairn admin …`; the exit code is non-zero when something could not
/// be repaired or the server could not be reached.
/// Starts a rebalance and (unless `no_wait`) follows it to the end.
fn rebalance(
    signer: &Signer,
    base: &str,
    rate: u64,
    no_wait: bool,
    as_json: bool,
) -> Result<bool, String> {
    let Some(status) = run_job(
        signer,
        base,
        "/admin/rebalance",
        REBALANCE_JOB,
        "rebalance",
        rate,
        no_wait,
        as_json,
    )?
    else {
        return Ok(true);
    };
    let skipped = num(&status, "shards_skipped");
    if !as_json {
        println!(
            "rebalance finished: {} chunks, {} misplaced, {} shards moved ({}, {} of them rebuilt from the other shards), {skipped} skipped",
            num(&status, "chunks_checked"),
            num(&status, "chunks_misplaced"),
            num(&status, "shards_moved"),
            human_bytes(num(&status, "bytes_moved")),
            num(&status, "shards_rebuilt"),
        );
        if skipped > 0 {
            eprintln!(
                "cairn: some shards were left in place (their drive is down, or they could neither be read nor rebuilt): run the rebalance again later"
            );
        }
    }
    Ok(skipped == 0)
}

fn cluster_status(signer: &Signer, base: &str, as_json: bool) -> Result<bool, String> {
    let r = expect_status(call(signer, base, "GET", "/admin/cluster")?, 200)?;
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    let v = parse_json(&r.body)?;
    let opt = |key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_u64)
            .map_or("-".to_owned(), |n| n.to_string())
    };
    let me = num(&v, "node_id");
    let leader = v.get("leader").and_then(serde_json::Value::as_u64);
    println!(
        "cluster: this is node {me} ({}), leader {}, term {}, log {} applied {}",
        v.get("state")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_lowercase(),
        leader.map_or("none (no quorum?)".to_owned(), |l| format!("node {l}")),
        num(&v, "term"),
        opt("last_log_index"),
        opt("applied_index"),
    );
    println!();
    println!("{:<6}{:<10}{:<24}replicated", "node", "role", "address");
    for m in v
        .get("members")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = num(m, "id");
        let role = if Some(id) == leader {
            "leader"
        } else if flag(m, "voter") {
            "follower"
        } else {
            "learner"
        };
        // Only the leader tracks what each member holds.
        let replicated = match m.get("matched_index").and_then(serde_json::Value::as_u64) {
            Some(i) => i.to_string(),
            None if leader == Some(me) => "unreachable".to_owned(),
            None => "-".to_owned(),
        };
        println!(
            "{:<6}{:<10}{:<24}{}{}",
            id,
            role,
            m.get("raft_addr")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?"),
            replicated,
            if id == me { "  (this node)" } else { "" }
        );
    }
    let r = expect_status(call(signer, base, "GET", "/admin/scrub")?, 200)?;
    let sc = parse_json(&r.body)?;
    if num(&sc, "finished_ms") > 0 || flag(&sc, "running") {
        println!(
            "degraded: {} shards missing, {} corrupt, {} chunks unrecoverable at the {} scrub ({} repaired)",
            num(&sc, "shards_missing"),
            num(&sc, "shards_corrupt"),
            num(&sc, "chunks_unrecoverable"),
            if flag(&sc, "running") {
                "running"
            } else {
                "last"
            },
            num(&sc, "shards_repaired"),
        );
    } else {
        println!("degraded: unknown (no scrub since this node started: cairn admin scrub)");
    }
    let r = expect_status(call(signer, base, "GET", "/admin/rebalance")?, 200)?;
    let rb = parse_json(&r.body)?;
    if flag(&rb, "running") {
        println!(
            "rebalance: running, {}/~{} chunks checked, {} shards moved ({})",
            num(&rb, "chunks_checked"),
            num(&rb, "chunks_total_estimate").max(num(&rb, "chunks_checked")),
            num(&rb, "shards_moved"),
            human_bytes(num(&rb, "bytes_moved")),
        );
    } else if num(&rb, "finished_ms") > 0 {
        println!(
            "rebalance: last run moved {} shards ({}), {} misplaced chunks found, {} shards skipped",
            num(&rb, "shards_moved"),
            human_bytes(num(&rb, "bytes_moved")),
            num(&rb, "chunks_misplaced"),
            num(&rb, "shards_skipped"),
        );
    } else {
        println!("rebalance: not run since this node started");
    }
    println!();
    let healthy_quorum = leader.is_some();
    let drives_ok = status(signer, base, false)?;
    Ok(healthy_quorum && drives_ok)
}

pub fn run(args: AdminArgs) -> std::process::ExitCode {
    let base = args.admin_url.trim_end_matches('/').to_owned();
    if let AdminCommand::Health { timeout } = args.command {
        return match health(&args, &base, Duration::from_secs(timeout.max(1))) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("cairn: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let signer = match Signer::from_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cairn: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let as_json = args.json;
    let result = match args.command {
        // Answered above, without credentials.
        AdminCommand::Health { .. } => Ok(true),
        AdminCommand::Scrub { rate, no_wait } => {
            scrub(&signer, &base, rate, no_wait, "scrub", as_json)
        }
        AdminCommand::Heal => scrub(&signer, &base, 0, false, "heal", as_json),
        AdminCommand::Status => status(&signer, &base, as_json),
        AdminCommand::Gc => gc(&signer, &base, as_json),
        AdminCommand::Key(cmd) => key_command(&signer, &base, cmd, as_json),
        AdminCommand::Bucket(cmd) => bucket_command(&signer, &base, cmd, as_json),
        AdminCommand::Cluster(ClusterCommand::Status) => cluster_status(&signer, &base, as_json),
        AdminCommand::Cluster(ClusterCommand::Rebalance { rate, no_wait }) => {
            rebalance(&signer, &base, rate, no_wait, as_json)
        }
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        // The command said what is wrong.
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cairn: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_json_fields_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("ten").is_err());
        let j = parse_json("{\"running\":true,\"chunks_checked\":12,\"bytes_read\":3}").unwrap();
        assert!(flag(&j, "running"));
        assert_eq!(num(&j, "chunks_checked"), 12);
        assert_eq!(num(&j, "bytes_read"), 3);
        assert_eq!(num(&j, "absent"), 0);
        let line = progress_line(&j, Duration::from_secs(2));
        assert!(line.contains("12/12 chunks"), "{line}");
    }

    /// A finished job's line shows what it did, however far off the
    /// estimate was; a running one the estimate, never 100%.
    #[test]
    fn a_finished_job_shows_its_count_as_the_total() {
        let running =
            parse_json("{\"running\":true,\"chunks_checked\":20,\"chunks_total_estimate\":121}")
                .unwrap();
        let line = progress_line(&running, Duration::from_secs(2));
        assert!(line.contains(" 17%  20/121 chunks"), "{line}");
        let done =
            parse_json("{\"running\":false,\"chunks_checked\":20,\"chunks_total_estimate\":121}")
                .unwrap();
        let line = progress_line(&done, Duration::from_secs(2));
        assert!(line.contains("100%  20/20 chunks"), "{line}");
        let over =
            parse_json("{\"running\":true,\"chunks_checked\":130,\"chunks_total_estimate\":121}")
                .unwrap();
        assert!(progress_line(&over, Duration::from_secs(2)).contains(" 99%  130/130 chunks"));
    }

    #[test]
    fn s3_errors_are_recognised() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>";
        assert_eq!(s3_error_code(xml), Some("NoSuchBucket"));
        assert_eq!(s3_error_code("{\"error\":\"no such bucket\"}"), None);
        assert_eq!(s3_error_code("ready\n"), None);
    }
}
