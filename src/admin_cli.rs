//! `cairn admin …`: maintenance commands that talk to a running server's
//! admin listener over HTTP (see `admin_http.rs` for the endpoints). It
//! owns the command line, signing, the HTTP exchange and how replies are
//! shown (tables, progress, exit codes). Two commands are offline:
//! `master-key rotate` runs on a stopped server's data directory
//! (`master_key.rs`), `cluster certs` makes TLS certificates for cluster
//! nodes (`cluster_certs.rs`).
//!
//! It must never define or guess a reply's shape: requests are built from
//! and replies read into the types of `admin_api.rs`, the ones the server
//! serializes, and `--json` prints the server's reply exactly as received.

use std::io::{IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::admin_api as api;

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
    /// The built-in key service for SSE-KMS (`aws:kms` objects).
    #[command(subcommand)]
    Kms(KmsCommand),
    /// A cluster as this node sees it (docs/cluster.md).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The master key of a stopped server's data directory (offline: run
    /// it on the server's host; needs no credentials or admin listener).
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
}

#[derive(Debug, Subcommand)]
enum MasterKeyCommand {
    /// Replace the master key: a new key comes to open the data
    /// directory's keyring and the old one stops opening it; no data is
    /// rewritten. The server must be stopped (on a cluster, rotate one
    /// node at a time). Safe to run again after a crash: it finishes the
    /// rotation it finds. Prints each step and, at the end, what to back
    /// up.
    Rotate(Box<crate::master_key::RotateArgs>),
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
    /// Offline: make the certificates for TLS between nodes — a cluster CA
    /// and one certificate and key per node, as PEM files in --out (keys
    /// mode 0600, nothing overwritten; a directory already holding ca.pem
    /// and ca.key issues with that CA). Needs no server or credentials.
    Certs(crate::cluster_certs::CertsArgs),
}

#[derive(Debug, Subcommand)]
enum KmsCommand {
    /// Key-service keys: create, list, rotate, disable, enable.
    #[command(subcommand)]
    Key(KmsKeyCommand),
}

#[derive(Debug, Subcommand)]
enum KmsKeyCommand {
    /// Create a key (enabled). Objects name it in
    /// x-amz-server-side-encryption-aws-kms-key-id by its id, its ARN or
    /// alias/ALIAS. Keys are never deleted: disable one instead.
    Create {
        /// A name for the key (alias/ALIAS in requests): 1-250 of A-Z a-z
        /// 0-9 / _ - ; aws/ is reserved.
        #[arg(long)]
        alias: Option<String>,
        /// What the key is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List every key (never key material).
    List,
    /// Give a key new material: new objects are wrapped under it, existing
    /// ones keep theirs (no data is rewritten).
    Rotate {
        /// The key id or alias/ALIAS.
        key: String,
    },
    /// Disable a key: its objects cannot be read (KMS.DisabledException)
    /// and no object can be written under it, until it is enabled again.
    Disable {
        /// The key id or alias/ALIAS.
        key: String,
    },
    /// Enable a disabled key again.
    Enable {
        /// The key id or alias/ALIAS.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an access key with new random credentials. The secret is
    /// printed once; it cannot be shown again.
    Create {
        /// The key's name, as bucket policies name it
        /// (`arn:aws:iam:::user/NAME`): 1-64 of A-Z a-z 0-9 + = , . @ _ -
        /// ("backup-job").
        name: String,
        /// An admin key: every bucket, creating and deleting buckets, and
        /// this admin API.
        #[arg(long)]
        admin: bool,
        /// A bucket grant, BUCKET:rw, BUCKET:r or BUCKET:w, or a device
        /// grant BUCKET/PREFIX:w (create objects under PREFIX only)
        /// (repeatable).
        #[arg(long = "allow", value_name = "BUCKET:RIGHTS")]
        allow: Vec<String>,
        /// A grant on this bucket (with --prefix and/or --write-only; else
        /// read and write).
        #[arg(long)]
        bucket: Option<String>,
        /// With --bucket and --write-only: only objects under this prefix
        /// (a device key: it may create objects there, nothing else).
        #[arg(long, requires = "bucket")]
        prefix: Option<String>,
        /// With --bucket: write without read (with --prefix: create
        /// objects only; no reading, listing or deleting).
        #[arg(long, requires = "bucket")]
        write_only: bool,
        /// The key stops working after this long: 90s, 30m, 12h, 7d.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
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

/// The message of a failed admin request: the `error` of its
/// [`api::ErrorBody`], else the body as text. The one place an error body
/// becomes what `cairn admin` says.
fn error_message(body: &str) -> String {
    serde_json::from_str::<api::ErrorBody>(body)
        .map(|e| e.error)
        .ok()
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

/// A reply of the admin API as its type.
fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, String> {
    serde_json::from_str(body).map_err(|e| format!("unexpected reply from the server: {e}"))
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

/// A followed job's status reply (scrub, rebalance): what its progress
/// shows.
trait JobStatus: serde::de::DeserializeOwned {
    /// What the job does with the bytes it counts ("read", "moved").
    const BYTES_VERB: &'static str;
    fn running(&self) -> bool;
    fn chunks_checked(&self) -> u64;
    fn chunks_total_estimate(&self) -> u64;
    /// The bytes it read or moved so far.
    fn bytes(&self) -> u64;
    /// The counts shown after the bar.
    fn counts(&self) -> String;
}

impl JobStatus for api::ScrubStatus {
    const BYTES_VERB: &'static str = "read";
    fn running(&self) -> bool {
        self.running
    }
    fn chunks_checked(&self) -> u64 {
        self.chunks_checked
    }
    fn chunks_total_estimate(&self) -> u64 {
        self.chunks_total_estimate
    }
    fn bytes(&self) -> u64 {
        self.bytes_read
    }
    fn counts(&self) -> String {
        format!(
            "missing {} corrupt {} repaired {} unrecoverable {}",
            self.shards_missing,
            self.shards_corrupt,
            self.shards_repaired,
            self.chunks_unrecoverable,
        )
    }
}

impl JobStatus for api::RebalanceStatus {
    const BYTES_VERB: &'static str = "moved";
    fn running(&self) -> bool {
        self.running
    }
    fn chunks_checked(&self) -> u64 {
        self.chunks_checked
    }
    fn chunks_total_estimate(&self) -> u64 {
        self.chunks_total_estimate
    }
    fn bytes(&self) -> u64 {
        self.bytes_moved
    }
    fn counts(&self) -> String {
        format!(
            "misplaced chunks {} shards moved {} (rebuilt {}) skipped {}",
            self.chunks_misplaced, self.shards_moved, self.shards_rebuilt, self.shards_skipped,
        )
    }
}

/// The total of a job's progress: the server's estimate while it runs (at
/// least what is done), what was done once it finished (the estimate counts
/// chunk records before the job starts and may be far off).
fn job_total(status: &impl JobStatus) -> u64 {
    let done = status.chunks_checked();
    if status.running() {
        status.chunks_total_estimate().max(done).max(1)
    } else {
        done
    }
}

fn job_progress_line<J: JobStatus>(status: &J, elapsed: Duration) -> String {
    let done = status.chunks_checked();
    let running = status.running();
    let total = job_total(status);
    let frac = if running {
        (done as f64 / total as f64).min(0.99)
    } else {
        1.0
    };
    const WIDTH: usize = 30;
    let filled = (frac * WIDTH as f64) as usize;
    let bar: String = "#".repeat(filled) + &".".repeat(WIDTH - filled);
    let bytes = status.bytes();
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
        J::BYTES_VERB,
        human_bytes(rate as u64),
        status.counts(),
    )
}

/// Follows a running job (scrub, heal, rebalance): an `indicatif` bar on a terminal, a line every
/// 5 s otherwise (logs of cron jobs), nothing with `--json`.
struct JobProgress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    last_line: Instant,
}

impl JobProgress {
    fn for_job(quiet: bool) -> Self {
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
        }
    }

    fn update<J: JobStatus>(&mut self, status: &J, elapsed: Duration) {
        let running = status.running();
        match &self.bar {
            Some(bar) => {
                bar.set_length(job_total(status));
                bar.set_position(status.chunks_checked());
                bar.set_message(format!(
                    "{} {}  {}",
                    human_bytes(status.bytes()),
                    J::BYTES_VERB,
                    status.counts(),
                ));
                if !running {
                    bar.finish();
                }
            }
            None if self.quiet => {}
            None => {
                if !running || self.last_line.elapsed() >= Duration::from_secs(5) {
                    eprintln!("{}", job_progress_line(status, elapsed));
                    self.last_line = Instant::now();
                }
            }
        }
    }
}

/// Starts the job at `route` (POST, with an optional rate) and, unless
/// `no_wait`, follows it (GET) with progress to its end. Returns its final
/// status, or `None` when not waiting (with `--json`, the reply is printed
/// either way).
fn run_job<J: JobStatus>(
    signer: &Signer,
    base: &str,
    route: &str,
    what: &str,
    rate: u64,
    no_wait: bool,
    as_json: bool,
) -> Result<Option<J>, String> {
    let start = api::StartJob {
        bytes_per_sec: Some(rate),
    };
    let started = call(signer, base, "POST", &start.path(route))?;
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
    let mut progress = JobProgress::for_job(as_json);
    loop {
        let reply = expect_status(call(signer, base, "GET", route)?, 200)?;
        let status: J = parse(&reply.body)?;
        progress.update(&status, t0.elapsed());
        if !status.running() {
            if as_json {
                print!("{}", reply.body);
            }
            return Ok(Some(status));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Starts a scrub (or a heal, the same at full speed) and, unless
/// `no_wait`, follows it to the end.
fn scrub(
    signer: &Signer,
    base: &str,
    rate: u64,
    no_wait: bool,
    what: &str,
    as_json: bool,
) -> Result<bool, String> {
    let Some(status) =
        run_job::<api::ScrubStatus>(signer, base, api::SCRUB, what, rate, no_wait, as_json)?
    else {
        return Ok(true);
    };
    let unrecoverable = status.chunks_unrecoverable;
    if !as_json {
        println!(
            "{what} finished: {} chunks, {} shards verified, {} missing, {} corrupt, {} repaired, {unrecoverable} unrecoverable",
            status.chunks_checked,
            status.shards_verified,
            status.shards_missing,
            status.shards_corrupt,
            status.shards_repaired,
        );
        if unrecoverable > 0 {
            eprintln!("cairn: some chunks could not be repaired (see the server log)");
        }
    }
    Ok(unrecoverable == 0)
}

/// A drive's state; a server without drive states (older) reports
/// presence and faults.
fn drive_state(d: &api::Drive) -> String {
    match d.state.as_str() {
        s if !s.is_empty() => s.to_owned(),
        _ if !d.present => "missing".to_owned(),
        _ if d.faulty => "faulty".to_owned(),
        _ => "ok".to_owned(),
    }
}

fn status(signer: &Signer, base: &str, as_json: bool) -> Result<bool, String> {
    let r = expect_status(call(signer, base, "GET", api::STATUS)?, 200)?;
    let v: api::Status = parse(&r.body)?;
    let all_ok = v.drives.iter().all(|d| drive_state(d) == "ok");
    if as_json {
        print!("{}", r.body);
        return Ok(all_ok);
    }
    let (logical, stored, raw) = (v.logical_bytes, v.stored_bytes, v.raw_bytes);
    let scrub_progress = if v.scrub_chunks_total_estimate > 0 {
        format!(
            " ({}/~{} chunks)",
            v.scrub_chunks_checked, v.scrub_chunks_total_estimate
        )
    } else {
        String::new()
    };
    println!(
        "cairn {}  erasure coding {}+{}  metadata {}  heal backlog {}  scrub {}",
        if v.version.is_empty() {
            "?"
        } else {
            &v.version
        },
        v.data_shards,
        v.parity_shards,
        human_bytes(v.metadata_sst_bytes),
        human_bytes(v.heal_backlog_bytes),
        if v.scrub_running {
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
        v.objects,
        human_bytes(logical),
        human_bytes(stored),
        human_bytes(raw)
    );
    if !v.notification_queues.is_empty() || v.notification_events_dropped > 0 {
        let queues: Vec<String> = v
            .notification_queues
            .iter()
            .map(|q| {
                if q.queued > 0 {
                    format!(
                        "{} {} queued (oldest {} s)",
                        q.target, q.queued, q.oldest_age_secs
                    )
                } else {
                    format!("{} 0 queued", q.target)
                }
            })
            .collect();
        println!(
            "event notifications: {}{}",
            queues.join(", "),
            if v.notification_events_dropped > 0 {
                format!(
                    "; {} dropped (a queue was full)",
                    v.notification_events_dropped
                )
            } else {
                String::new()
            }
        );
    }
    if v.noncurrent_versions > 0 || v.delete_markers > 0 {
        println!(
            "versions: {} older versions ({} as written) and {} delete markers kept by versioning",
            v.noncurrent_versions,
            human_bytes(v.noncurrent_bytes),
            v.delete_markers
        );
    }
    println!();
    println!(
        "{:<6}{:<20}{:>12}{:>12}{:>12}  path",
        "drive", "state", "segments", "free", "size"
    );
    let mut problems = Vec::new();
    for d in &v.drives {
        let state = drive_state(d);
        let shown = match state.as_str() {
            "ok" => "ok".to_owned(),
            "replaced" if d.healing => "REPLACED, healing".to_owned(),
            "replaced" => "REPLACED, needs heal".to_owned(),
            other => other.to_uppercase(),
        };
        let problem = match state.as_str() {
            "ok" => None,
            "missing" => Some("its directory is missing".to_owned()),
            "replaced" if d.healing => Some(format!(
                "it was replaced (empty, no marker); its shards are being rebuilt{scrub_progress}"
            )),
            "replaced" => Some(
                "it was replaced (empty, no marker); run `cairn admin heal` to rebuild its shards"
                    .to_owned(),
            ),
            "foreign" => Some(format!(
                "refused, nothing is written to it: {}",
                d.state_detail
            )),
            "faulty" => Some("its reads or writes failed recently".to_owned()),
            other => Some(format!("state {other}")),
        };
        if let Some(p) = problem {
            problems.push(format!("drive {}: {p}", d.index));
        }
        println!(
            "{:<6}{:<20}{:>12}{:>12}{:>12}  {}",
            d.index,
            shown,
            human_bytes(d.segment_bytes),
            human_bytes(d.fs_free_bytes),
            human_bytes(d.fs_size_bytes),
            if d.path.is_empty() { "?" } else { &d.path },
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
    let r = expect_status(call(signer, base, "POST", api::GC)?, 200)?;
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    let v: api::GcReport = parse(&r.body)?;
    println!(
        "gc: {} chunks deleted ({} live), {} segments compacted, {} shards moved, {} reclaimed, {} abandoned uploads expired",
        v.chunks_deleted,
        v.chunks_live,
        v.segments_compacted,
        v.shards_moved,
        human_bytes(v.bytes_reclaimed),
        v.uploads_expired,
    );
    Ok(true)
}

/// "admin", or the grants as `photos:rw logs:r`.
/// `90s`, `30m`, `12h`, `7d` (or plain seconds) as seconds.
fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let bad = || format!("duration {text:?} must look like 90s, 30m, 12h or 7d");
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(per).filter(|s| *s > 0).ok_or_else(bad)
}

fn rights_text(key: &api::Key) -> String {
    if key.admin {
        return "admin (every bucket, admin API)".to_owned();
    }
    let grants: Vec<String> = key
        .grants
        .iter()
        .map(|g| {
            let rights = match (g.read, g.write) {
                (true, true) => "rw",
                (true, false) => "r",
                (false, true) => "w",
                (false, false) => "-",
            };
            if g.prefix.is_empty() {
                format!("{}:{rights}", g.bucket)
            } else {
                format!("{}/{}:{rights} (create only)", g.bucket, g.prefix)
            }
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

fn print_kms_key(k: &api::KmsKey) {
    println!("  Key id:   {}", k.id);
    println!("  ARN:      {}", k.arn);
    if !k.alias.is_empty() {
        println!("  Alias:    alias/{}", k.alias);
    }
    println!(
        "  State:    {}, {} version{}",
        if k.enabled { "enabled" } else { "DISABLED" },
        k.versions,
        if k.versions == 1 { "" } else { "s" }
    );
}

fn kms_command(
    signer: &Signer,
    base: &str,
    KmsCommand::Key(cmd): KmsCommand,
    as_json: bool,
) -> Result<bool, String> {
    let (r, done) = match cmd {
        KmsKeyCommand::Create { alias, description } => {
            let request = api::CreateKmsKey {
                alias: alias.unwrap_or_default(),
                description,
            };
            (
                expect_status(call(signer, base, "POST", &request.path())?, 201)?,
                "created KMS key",
            )
        }
        KmsKeyCommand::List => {
            let r = expect_status(call(signer, base, "GET", api::KMS_KEYS)?, 200)?;
            if as_json {
                print!("{}", r.body);
                return Ok(true);
            }
            let keys: Vec<api::KmsKey> = parse(&r.body)?;
            println!(
                "{:<38}{:<24}{:<10}{:<10}created (UTC)",
                "key id", "alias", "state", "versions"
            );
            for k in &keys {
                let alias = if k.alias.is_empty() {
                    String::new()
                } else {
                    format!("alias/{}", k.alias).chars().take(22).collect()
                };
                println!(
                    "{:<38}{:<24}{:<10}{:<10}{}",
                    k.id,
                    alias,
                    if k.enabled { "enabled" } else { "disabled" },
                    k.versions,
                    utc_minutes(k.created_ms)
                );
            }
            return Ok(true);
        }
        KmsKeyCommand::Rotate { key } => (
            expect_status(
                call(
                    signer,
                    base,
                    "POST",
                    &api::kms_key_action_path(&key, api::KmsKeyAction::Rotate),
                )?,
                200,
            )?,
            "rotated KMS key (new objects use the newest version; existing ones keep theirs)",
        ),
        KmsKeyCommand::Disable { key } => (
            expect_status(
                call(
                    signer,
                    base,
                    "POST",
                    &api::kms_key_action_path(&key, api::KmsKeyAction::Disable),
                )?,
                200,
            )?,
            "disabled KMS key (its objects cannot be read until it is enabled)",
        ),
        KmsKeyCommand::Enable { key } => (
            expect_status(
                call(
                    signer,
                    base,
                    "POST",
                    &api::kms_key_action_path(&key, api::KmsKeyAction::Enable),
                )?,
                200,
            )?,
            "enabled KMS key",
        ),
    };
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    println!("{done}");
    print_kms_key(&parse(&r.body)?);
    Ok(true)
}

fn key_command(
    signer: &Signer,
    base: &str,
    cmd: KeyCommand,
    as_json: bool,
) -> Result<bool, String> {
    match cmd {
        KeyCommand::Create {
            name,
            admin,
            mut allow,
            bucket,
            prefix,
            write_only,
            expires_in,
        } => {
            if let Some(bucket) = bucket {
                let rights = if write_only { "w" } else { "rw" };
                allow.push(match prefix {
                    Some(p) if !write_only => {
                        return Err(format!(
                            "--prefix {p:?} needs --write-only: a prefix grant may only create objects"
                        ));
                    }
                    Some(p) => format!("{bucket}/{p}:{rights}"),
                    None => format!("{bucket}:{rights}"),
                });
            }
            let expires_in_secs = expires_in.as_deref().map(parse_duration_secs).transpose()?;
            let request = api::CreateKey {
                name,
                admin,
                allow,
                expires_in_secs,
            };
            let r = expect_status(call(signer, base, "POST", &request.path())?, 201)?;
            if as_json {
                print!("{}", r.body);
                return Ok(true);
            }
            let created: api::CreatedKey = parse(&r.body)?;
            println!("created access key {:?}", created.key.name);
            println!("  Access key: {}", created.key.id);
            println!("  Secret key: {}", created.secret);
            println!("  Rights:     {}", rights_text(&created.key));
            eprintln!("cairn: the secret is shown only this once; keep it safe");
            Ok(true)
        }
        KeyCommand::List => {
            let r = expect_status(call(signer, base, "GET", api::KEYS)?, 200)?;
            if as_json {
                print!("{}", r.body);
                return Ok(true);
            }
            let keys: Vec<api::Key> = parse(&r.body)?;
            println!(
                "{:<22}{:<26}{:<18}rights",
                "access key", "name", "created (UTC)"
            );
            for k in &keys {
                let name = if k.fixed {
                    "(start-up key)".to_owned()
                } else {
                    k.name.chars().take(24).collect()
                };
                println!(
                    "{:<22}{:<26}{:<18}{}",
                    k.id,
                    name,
                    utc_minutes(k.created_ms),
                    rights_text(k)
                );
            }
            Ok(true)
        }
        KeyCommand::Delete { id } => {
            let r = expect_status(call(signer, base, "DELETE", &api::key_path(&id))?, 200)?;
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
            let path = api::SetGrant { read, write }.path(&id, &bucket);
            let r = expect_status(call(signer, base, "PUT", &path)?, 200)?;
            if as_json {
                print!("{}", r.body);
            } else {
                println!("{id}: {}", rights_text(&parse(&r.body)?));
            }
            Ok(true)
        }
        KeyCommand::Deny { id, bucket } => {
            let path = api::grant_path(&id, &bucket);
            let r = expect_status(call(signer, base, "DELETE", &path)?, 200)?;
            if as_json {
                print!("{}", r.body);
            } else {
                println!("{id}: {}", rights_text(&parse(&r.body)?));
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
    let r = expect_status(call(signer, base, "GET", &api::bucket_path(&name))?, 200)?;
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    let v: api::BucketInfo = parse(&r.body)?;
    println!("bucket {}", v.name);
    println!("  created:             {} UTC", utc_minutes(v.created_ms));
    println!("  objects:             {}", v.objects);
    println!(
        "  size:                {} (as clients see it, before dedup and compression)",
        human_bytes(v.logical_bytes)
    );
    println!("  uploads in progress: {}", v.uploads_in_progress);
    println!("  keys:");
    for k in &v.keys {
        let rights = if k.admin {
            "admin"
        } else {
            match (k.read, k.write) {
                (true, true) => "read+write",
                (true, false) => "read",
                (false, true) => "write",
                (false, false) => "-",
            }
        };
        println!("    {:<22}{:<12}{}", k.id, rights, k.name);
    }
    Ok(true)
}

/// Starts a rebalance and (unless `no_wait`) follows it to the end.
fn rebalance(
    signer: &Signer,
    base: &str,
    rate: u64,
    no_wait: bool,
    as_json: bool,
) -> Result<bool, String> {
    let Some(status) = run_job::<api::RebalanceStatus>(
        signer,
        base,
        api::REBALANCE,
        "rebalance",
        rate,
        no_wait,
        as_json,
    )?
    else {
        return Ok(true);
    };
    let skipped = status.shards_skipped;
    if !as_json {
        println!(
            "rebalance finished: {} chunks, {} misplaced, {} shards moved ({}, {} of them rebuilt from the other shards), {skipped} skipped",
            status.chunks_checked,
            status.chunks_misplaced,
            status.shards_moved,
            human_bytes(status.bytes_moved),
            status.shards_rebuilt,
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
    let r = expect_status(call(signer, base, "GET", api::CLUSTER)?, 200)?;
    if as_json {
        print!("{}", r.body);
        return Ok(true);
    }
    let v: api::ClusterStatus = parse(&r.body)?;
    let opt = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
    let me = v.node_id;
    let leader = v.leader;
    println!(
        "cluster: this is node {me} ({}), leader {}, term {}, log {} applied {}",
        if v.state.is_empty() {
            "?".to_owned()
        } else {
            v.state.to_lowercase()
        },
        leader.map_or("none (no quorum?)".to_owned(), |l| format!("node {l}")),
        v.term,
        opt(v.last_log_index),
        opt(v.applied_index),
    );
    println!();
    println!("{:<6}{:<10}{:<24}replicated", "node", "role", "address");
    for m in &v.members {
        let id = m.id;
        let role = if Some(id) == leader {
            "leader"
        } else if m.voter {
            "follower"
        } else {
            "learner"
        };
        // Only the leader tracks what each member holds.
        let replicated = match m.matched_index {
            Some(i) => i.to_string(),
            None if leader == Some(me) => "unreachable".to_owned(),
            None => "-".to_owned(),
        };
        println!(
            "{:<6}{:<10}{:<24}{}{}",
            id,
            role,
            if m.raft_addr.is_empty() {
                "?"
            } else {
                &m.raft_addr
            },
            replicated,
            if id == me { "  (this node)" } else { "" }
        );
    }
    let r = expect_status(call(signer, base, "GET", api::SCRUB)?, 200)?;
    let sc: api::ScrubStatus = parse(&r.body)?;
    if sc.finished_ms > 0 || sc.running {
        println!(
            "degraded: {} shards missing, {} corrupt, {} chunks unrecoverable at the {} scrub ({} repaired)",
            sc.shards_missing,
            sc.shards_corrupt,
            sc.chunks_unrecoverable,
            if sc.running { "running" } else { "last" },
            sc.shards_repaired,
        );
    } else {
        println!("degraded: unknown (no scrub since this node started: cairn admin scrub)");
    }
    let r = expect_status(call(signer, base, "GET", api::REBALANCE)?, 200)?;
    let rb: api::RebalanceStatus = parse(&r.body)?;
    if rb.running {
        println!(
            "rebalance: running, {}/~{} chunks checked, {} shards moved ({})",
            rb.chunks_checked,
            rb.chunks_total_estimate.max(rb.chunks_checked),
            rb.shards_moved,
            human_bytes(rb.bytes_moved),
        );
    } else if rb.finished_ms > 0 {
        println!(
            "rebalance: last run moved {} shards ({}), {} misplaced chunks found, {} shards skipped",
            rb.shards_moved,
            human_bytes(rb.bytes_moved),
            rb.chunks_misplaced,
            rb.shards_skipped,
        );
    } else {
        println!("rebalance: not run since this node started");
    }
    println!();
    let healthy_quorum = leader.is_some();
    let drives_ok = status(signer, base, false)?;
    Ok(healthy_quorum && drives_ok)
}

/// Runs `cairn admin …`; the exit code is non-zero when something could not
/// be repaired or the server could not be reached.
pub fn run(args: AdminArgs) -> std::process::ExitCode {
    let base = args.admin_url.trim_end_matches('/').to_owned();
    if let AdminCommand::MasterKey(MasterKeyCommand::Rotate(rotate)) = args.command {
        // Offline: no admin listener, no credentials.
        return match crate::master_key::rotate(*rotate) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("cairn: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let AdminCommand::Cluster(ClusterCommand::Certs(certs)) = &args.command {
        // Offline too.
        return match crate::cluster_certs::run(certs) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cairn: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
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
        AdminCommand::Health { .. }
        | AdminCommand::MasterKey(_)
        | AdminCommand::Cluster(ClusterCommand::Certs(_)) => Ok(true),
        AdminCommand::Scrub { rate, no_wait } => {
            scrub(&signer, &base, rate, no_wait, "scrub", as_json)
        }
        AdminCommand::Heal => scrub(&signer, &base, 0, false, "heal", as_json),
        AdminCommand::Status => status(&signer, &base, as_json),
        AdminCommand::Gc => gc(&signer, &base, as_json),
        AdminCommand::Key(cmd) => key_command(&signer, &base, cmd, as_json),
        AdminCommand::Bucket(cmd) => bucket_command(&signer, &base, cmd, as_json),
        AdminCommand::Kms(cmd) => kms_command(&signer, &base, cmd, as_json),
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
        let j: api::ScrubStatus =
            parse("{\"running\":true,\"chunks_checked\":12,\"bytes_read\":3}").unwrap();
        assert!(j.running);
        assert_eq!(j.chunks_checked, 12);
        assert_eq!(j.bytes_read, 3);
        assert_eq!(j.shards_missing, 0, "an absent field reads as 0");
        let line = job_progress_line(&j, Duration::from_secs(2));
        assert!(line.contains("12/12 chunks"), "{line}");
        assert!(parse::<api::ScrubStatus>("ready\n").is_err());
    }

    /// A finished job's line shows what it did, however far off the
    /// estimate was; a running one the estimate, never 100%.
    #[test]
    fn a_finished_job_shows_its_count_as_the_total() {
        let running: api::ScrubStatus =
            parse("{\"running\":true,\"chunks_checked\":20,\"chunks_total_estimate\":121}")
                .unwrap();
        let line = job_progress_line(&running, Duration::from_secs(2));
        assert!(line.contains(" 17%  20/121 chunks"), "{line}");
        let done: api::ScrubStatus =
            parse("{\"running\":false,\"chunks_checked\":20,\"chunks_total_estimate\":121}")
                .unwrap();
        let line = job_progress_line(&done, Duration::from_secs(2));
        assert!(line.contains("100%  20/20 chunks"), "{line}");
        let over: api::RebalanceStatus =
            parse("{\"running\":true,\"chunks_checked\":130,\"chunks_total_estimate\":121}")
                .unwrap();
        let line = job_progress_line(&over, Duration::from_secs(2));
        assert!(line.contains(" 99%  130/130 chunks"), "{line}");
        assert!(line.contains("B moved"), "{line}");
    }

    #[test]
    fn s3_errors_are_recognised() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>";
        assert_eq!(s3_error_code(xml), Some("NoSuchBucket"));
        assert_eq!(s3_error_code("{\"error\":\"no such bucket\"}"), None);
        assert_eq!(s3_error_code("ready\n"), None);
    }

    /// An error body gives its message; anything else is shown as text.
    #[test]
    fn error_bodies_become_messages() {
        assert_eq!(
            error_message("{\"error\":\"no such bucket\"}\n"),
            "no such bucket"
        );
        assert_eq!(
            error_message("garbage collection failed: corruption: x\n"),
            "garbage collection failed: corruption: x"
        );
        assert_eq!(error_message("{\"other\":1}"), "{\"other\":1}");
    }

    #[test]
    fn rights_read_as_before() {
        let mut key = api::Key::default();
        assert_eq!(
            rights_text(&key),
            "no bucket (grant one with `cairn admin key allow`)"
        );
        key.grants = vec![
            api::Grant {
                bucket: "logs".into(),
                read: true,
                write: false,
                ..Default::default()
            },
            api::Grant {
                bucket: "photos".into(),
                read: true,
                write: true,
                ..Default::default()
            },
        ];
        assert_eq!(rights_text(&key), "logs:r photos:rw");
        key.grants.push(api::Grant {
            bucket: "fleet".into(),
            write: true,
            prefix: "devices/42/".into(),
            ..Default::default()
        });
        assert_eq!(
            rights_text(&key),
            "logs:r photos:rw fleet/devices/42/:w (create only)"
        );
        assert_eq!(parse_duration_secs("12h"), Ok(43_200));
        assert_eq!(parse_duration_secs("90"), Ok(90));
        assert!(parse_duration_secs("0s").is_err() && parse_duration_secs("1w").is_err());
        assert!(parse_duration_secs("99999999999999999999d").is_err());
        key.admin = true;
        assert_eq!(rights_text(&key), "admin (every bucket, admin API)");
    }
}
