//! Server configuration: command-line flags, environment variables and a
//! TOML file, with one precedence: **flag > environment > file > default**.
//! Every setting is listed in docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cairn_s3_api::listener_limits::ListenerLimits;
use clap::Args;
use serde::Deserialize;

/// `cairn server` options. Each has an environment variable; any of them can
/// also be set in the file given with `--config`.
#[derive(Debug, Clone, Args, Default)]
pub struct ServerArgs {
    /// TOML configuration file (flags and environment variables override it).
    #[arg(long, env = "CAIRN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for all state: metadata in <data-dir>/meta, drives in
    /// <data-dir>/drives/0..5 unless --drives is given, and the master key
    /// file. [default: ./cairn-data]
    #[arg(long, env = "CAIRN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the S3 API. Use port 0 to pick a free port (the chosen
    /// address is printed). [default: 127.0.0.1:9000]
    #[arg(long, env = "CAIRN_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the admin listener: /metrics (Prometheus), /health/live,
    /// /health/ready. [default: 127.0.0.1:9001]
    #[arg(long, env = "CAIRN_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Most open S3 connections. When full, the connection idle the longest
    /// is closed to make room (if every one is busy, the new one gets 503
    /// SlowDown); lowered at start if the descriptor limit cannot hold it.
    /// [default: 1024]
    #[arg(long, env = "CAIRN_CONNECTIONS_MAX", value_name = "N")]
    pub connections_max: Option<usize>,

    /// Most open S3 connections from one client address (IPv6: one /64).
    /// Behind a proxy all clients share the proxy's address: raise it
    /// there. [default: 128]
    #[arg(long, env = "CAIRN_CONNECTIONS_PER_ADDRESS_MAX", value_name = "N")]
    pub connections_per_address_max: Option<usize>,

    /// Seconds an S3 connection may stay open with no request in progress
    /// (idle keep-alive). [default: 20]
    #[arg(long, env = "CAIRN_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// Most open admin-listener connections. [default: 64]
    #[arg(long, env = "CAIRN_ADMIN_CONNECTIONS_MAX", value_name = "N")]
    pub admin_connections_max: Option<usize>,

    /// Most open admin-listener connections from one client address.
    /// [default: 16]
    #[arg(
        long,
        env = "CAIRN_ADMIN_CONNECTIONS_PER_ADDRESS_MAX",
        value_name = "N"
    )]
    pub admin_connections_per_address_max: Option<usize>,

    /// Region that clients must sign requests for. [default: us-east-1]
    #[arg(long, env = "CAIRN_REGION")]
    pub region: Option<String>,

    /// Domain for virtual-hosted-style requests: `Host: <bucket>.<domain>`
    /// addresses <bucket> (path-style keeps working). Point a wildcard DNS
    /// record `*.<domain>` at the server. [default: none, path-style only]
    #[arg(long, env = "CAIRN_DOMAIN", value_name = "DOMAIN")]
    pub domain: Option<String>,

    /// Lift the server-wide public access block, so that a bucket policy
    /// may grant anonymous (public) access. Without it every bucket is
    /// blocked as by S3's account-level BlockPublicPolicy and
    /// RestrictPublicBuckets: a public policy is refused, and anonymous
    /// requests get nothing through one. Each bucket's own
    /// PutPublicAccessBlock still applies. [default: off]
    #[arg(long, env = "CAIRN_ALLOW_PUBLIC_BUCKETS")]
    pub allow_public_buckets: bool,

    /// Append an audit log to FILE: one JSON line per S3 request (time,
    /// request id, client address, TLS, the access key id or `anonymous`
    /// — for a failed signature the id it claimed —, operation, bucket,
    /// key, version, status, S3 error code). Never secrets. Lines the
    /// writer cannot keep up with are dropped and counted in
    /// cairn_audit_dropped_total. [default: no audit log]
    #[arg(long, env = "CAIRN_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Accept SSE-C (customer-provided keys) over plain HTTP, where the key
    /// crosses the network in the clear. For tests only: S3 refuses it, and
    /// so does Cairn without this. [default: off]
    #[arg(long, env = "CAIRN_ALLOW_SSE_C_OVER_HTTP")]
    pub allow_sse_c_over_http: bool,

    /// An event notification target, NAME=URL (repeatable): a webhook
    /// (`http://…` or `https://…`, each event POSTed as S3's event JSON, signed with
    /// HMAC-SHA256 in `X-Cairn-Signature`) or an MQTT broker
    /// (`mqtt://host:port/topic`, published with QoS 1). Buckets name it
    /// in their notification configuration as `arn:cairn:sqs:REGION:cairn:NAME`.
    /// [default: none]
    #[arg(
        long = "notify-target",
        env = "CAIRN_NOTIFY_TARGETS",
        value_delimiter = ',',
        value_name = "NAME=URL"
    )]
    pub notify_targets: Vec<String>,

    /// File holding the key webhook events are signed with (HMAC-SHA256;
    /// at least 16 bytes); also `CAIRN_NOTIFY_SECRET` (the key itself).
    /// Required when a webhook target is set.
    #[arg(long, env = "CAIRN_NOTIFY_SECRET_FILE", value_name = "FILE")]
    pub notify_secret_file: Option<PathBuf>,

    /// PEM file of the certificates `https://` webhook targets must chain
    /// to. [default: the system's, /etc/ssl/certs/ca-certificates.crt]
    #[arg(long, env = "CAIRN_NOTIFY_CA_FILE", value_name = "FILE")]
    pub notify_ca_file: Option<PathBuf>,

    /// Drive directories, comma-separated (give each its own disk in
    /// production). Their order is their identity: never reorder them.
    /// [default: <data-dir>/drives/0 … /5]
    #[arg(
        long,
        env = "CAIRN_DRIVES",
        value_delimiter = ',',
        value_name = "DIR,DIR,…"
    )]
    pub drives: Option<Vec<PathBuf>>,

    /// Reed–Solomon data shards per chunk (k). [default: 4]
    #[arg(long, env = "CAIRN_DATA_SHARDS")]
    pub data_shards: Option<usize>,

    /// Reed–Solomon parity shards per chunk (m): how many drives may be lost
    /// without losing data. [default: 2]
    #[arg(long, env = "CAIRN_PARITY_SHARDS")]
    pub parity_shards: Option<usize>,

    /// File holding the 256-bit master key (hex). Created with mode 0600 on
    /// the first start of a new data directory if missing. Keep it off the
    /// data's disks: a key inside the data directory is refused (see
    /// --allow-master-key-in-data-dir). [default: the systemd credential
    /// `cairn-master-key` if there is one, else <data-dir>.master.key, the
    /// data directory's sibling]
    #[arg(long, env = "CAIRN_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Start even though the master key file is inside the data directory
    /// (where versions before 2026-12 kept it): a copied data directory or
    /// a stolen disk then carries its own key. [default: refused]
    #[arg(long, env = "CAIRN_ALLOW_MASTER_KEY_IN_DATA_DIR")]
    pub allow_master_key_in_data_dir: bool,

    /// Minimum chunk size for content-defined chunking, bytes. [default: 65536]
    #[arg(long, env = "CAIRN_CHUNK_MIN_BYTES")]
    pub chunk_min_bytes: Option<u32>,

    /// Average chunk size, bytes. [default: 262144]
    #[arg(long, env = "CAIRN_CHUNK_AVG_BYTES")]
    pub chunk_avg_bytes: Option<u32>,

    /// Maximum chunk size, bytes. [default: 1048576]
    #[arg(long, env = "CAIRN_CHUNK_MAX_BYTES")]
    pub chunk_max_bytes: Option<u32>,

    /// Log format: "human" or "json". Levels come from CAIRN_LOG (or
    /// RUST_LOG), e.g. CAIRN_LOG=debug. [default: human]
    #[arg(long, env = "CAIRN_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// PEM certificate chain for HTTPS on the S3 and admin listeners (with
    /// --tls-key). [default: none, plain HTTP]
    #[arg(long, env = "CAIRN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "CAIRN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Objects up to this many bytes are stored (encrypted) inside their
    /// metadata record instead of as erasure-coded shards: far faster for
    /// tiny objects (see docs/ARCHITECTURE.md). 0 disables. [default: 4096]
    #[arg(long, env = "CAIRN_INLINE_MAX_BYTES", value_name = "BYTES")]
    pub inline_max_bytes: Option<usize>,

    /// Seconds between background garbage-collection passes (0: only on
    /// `cairn admin gc`). [default: 600]
    #[arg(long, env = "CAIRN_GC_INTERVAL_SECS", value_name = "SECS")]
    pub gc_interval_secs: Option<u64>,

    /// Seconds a chunk must stay unreferenced before its space is
    /// reclaimed. [default: 3600]
    #[arg(long, env = "CAIRN_GC_GRACE_SECS", value_name = "SECS")]
    pub gc_grace_secs: Option<u64>,

    /// Compaction leaves alone segments written to less than this many
    /// seconds before the oldest write in flight started: slack for file
    /// time stamps and, on a cluster, for the nodes' clocks disagreeing.
    /// [default: 2; 60 on a cluster]
    #[arg(long, env = "CAIRN_GC_SETTLE_SECS", value_name = "SECS")]
    pub gc_settle_secs: Option<u64>,

    /// Incomplete multipart uploads older than this many seconds are
    /// aborted by garbage collection (0: never). [default: 604800, 7 days]
    #[arg(long, env = "CAIRN_UPLOAD_EXPIRY_SECS", value_name = "SECS")]
    pub upload_expiry_secs: Option<u64>,

    /// Seconds between background scrubs of every shard (0: only on
    /// `cairn admin scrub`). [default: 604800, weekly]
    #[arg(long, env = "CAIRN_SCRUB_INTERVAL_SECS", value_name = "SECS")]
    pub scrub_interval_secs: Option<u64>,

    /// Read rate limit of background scrubs, bytes per second (0: none).
    /// [default: 67108864, 64 MiB/s]
    #[arg(long, env = "CAIRN_SCRUB_BYTES_PER_SEC", value_name = "BYTES")]
    pub scrub_bytes_per_sec: Option<u64>,

    /// Seconds between lifecycle passes, which apply buckets' lifecycle
    /// rules (0: never — rules are then stored but not applied). On a
    /// cluster only the leader runs them. [default: 3600]
    #[arg(long, env = "CAIRN_LIFECYCLE_INTERVAL_SECS", value_name = "SECS")]
    pub lifecycle_interval_secs: Option<u64>,

    /// Deletions and aborts a lifecycle pass does per second at most
    /// (0: no limit). [default: 1000]
    #[arg(long, env = "CAIRN_LIFECYCLE_ACTIONS_PER_SEC", value_name = "N")]
    pub lifecycle_actions_per_sec: Option<u32>,

    /// FOR TESTS: the length of a lifecycle rule's "day" in seconds, so
    /// that `Days: 1` can mean a few seconds (expiry dates then round up to
    /// multiples of this instead of midnight UTC). [default: 86400]
    #[arg(
        long,
        env = "CAIRN_LIFECYCLE_DAY_SECS",
        value_name = "SECS",
        hide = true
    )]
    pub lifecycle_day_secs: Option<u64>,

    /// A request body that sends no byte for this many seconds is answered
    /// RequestTimeout and its connection closed; nothing is stored (0: no
    /// limit). [default: 20]
    #[arg(long, env = "CAIRN_BODY_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub body_idle_timeout_secs: Option<u64>,

    /// Minimum average rate of a request body, bytes per second, over each
    /// --body-min-rate-window-secs spent waiting for the client; slower:
    /// RequestTimeout (0: no limit). [default: 256]
    #[arg(long, env = "CAIRN_BODY_MIN_RATE_BYTES_PER_SEC", value_name = "BYTES")]
    pub body_min_rate_bytes_per_sec: Option<u64>,

    /// The window of the minimum body rate, seconds; the first one is the
    /// grace period (0: no rate limit). [default: 30]
    #[arg(long, env = "CAIRN_BODY_MIN_RATE_WINDOW_SECS", value_name = "SECS")]
    pub body_min_rate_window_secs: Option<u64>,

    /// This node's id in a cluster (1–65535). With --cluster-nodes it makes
    /// the server one node of a cluster (docs/cluster.md). [default: none,
    /// a single node]
    #[arg(long, env = "CAIRN_NODE_ID", value_name = "ID")]
    pub node_id: Option<u64>,

    /// Every node of the cluster, comma-separated, as ID=HOST:PORT: where
    /// that node listens for Raft messages (PORT) and shard transfers
    /// (PORT+1). The same list on every node. Needs CAIRN_CLUSTER_SECRET.
    #[arg(
        long,
        env = "CAIRN_CLUSTER_NODES",
        value_delimiter = ',',
        value_name = "ID=HOST:PORT,…"
    )]
    pub cluster_nodes: Option<Vec<String>>,

    /// Address this node binds its cluster listeners to (PORT and PORT+1)
    /// when it differs from its entry in --cluster-nodes (e.g. 0.0.0.0:PORT
    /// in a container). [default: its entry]
    #[arg(long, env = "CAIRN_CLUSTER_LISTEN", value_name = "ADDR")]
    pub cluster_listen: Option<SocketAddr>,

    /// Nodes being drained before removal, comma-separated ids: new shards
    /// no longer go to their drives, and `cairn admin cluster rebalance`
    /// moves their shards off. The same list on every node. [default: none]
    #[arg(
        long,
        env = "CAIRN_CLUSTER_DRAIN",
        value_delimiter = ',',
        value_name = "ID,…"
    )]
    pub cluster_drain: Option<Vec<u64>>,

    /// PEM file of the cluster CA (one or more certificates). With
    /// --cluster-tls-cert and --cluster-tls-key, every connection between
    /// nodes uses TLS with node certificates from this CA, checked both
    /// ways (`cairn admin cluster certs` makes a set; docs/cluster.md).
    /// The same CA on every node. [default: none, plain TCP]
    #[arg(long, env = "CAIRN_CLUSTER_TLS_CA", value_name = "FILE")]
    pub cluster_tls_ca: Option<PathBuf>,

    /// PEM certificate chain of this node (naming node-ID.cairn.internal),
    /// for --cluster-tls-ca.
    #[arg(long, env = "CAIRN_CLUSTER_TLS_CERT", value_name = "FILE")]
    pub cluster_tls_cert: Option<PathBuf>,

    /// PEM private key of --cluster-tls-cert.
    #[arg(long, env = "CAIRN_CLUSTER_TLS_KEY", value_name = "FILE")]
    pub cluster_tls_key: Option<PathBuf>,
}

/// The same settings as they may appear in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub connections_max: Option<usize>,
    pub connections_per_address_max: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub admin_connections_max: Option<usize>,
    pub admin_connections_per_address_max: Option<usize>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub allow_public_buckets: Option<bool>,
    pub audit_log: Option<PathBuf>,
    pub allow_sse_c_over_http: Option<bool>,
    pub notify_targets: Option<Vec<String>>,
    pub notify_secret_file: Option<PathBuf>,
    pub notify_ca_file: Option<PathBuf>,
    pub drives: Option<Vec<PathBuf>>,
    pub data_shards: Option<usize>,
    pub parity_shards: Option<usize>,
    pub master_key_file: Option<PathBuf>,
    pub allow_master_key_in_data_dir: Option<bool>,
    /// The master key itself (64 hex digits). Prefer a key file or the
    /// CAIRN_MASTER_KEY environment variable.
    pub master_key: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub chunk_min_bytes: Option<u32>,
    pub chunk_avg_bytes: Option<u32>,
    pub chunk_max_bytes: Option<u32>,
    pub log_format: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub inline_max_bytes: Option<usize>,
    pub gc_interval_secs: Option<u64>,
    pub gc_grace_secs: Option<u64>,
    pub gc_settle_secs: Option<u64>,
    pub upload_expiry_secs: Option<u64>,
    pub scrub_interval_secs: Option<u64>,
    pub scrub_bytes_per_sec: Option<u64>,
    pub lifecycle_interval_secs: Option<u64>,
    pub lifecycle_actions_per_sec: Option<u32>,
    pub lifecycle_day_secs: Option<u64>,
    pub body_idle_timeout_secs: Option<u64>,
    pub body_min_rate_bytes_per_sec: Option<u64>,
    pub body_min_rate_window_secs: Option<u64>,
    pub node_id: Option<u64>,
    pub cluster_nodes: Option<Vec<String>>,
    pub cluster_listen: Option<SocketAddr>,
    pub cluster_drain: Option<Vec<u64>>,
    /// 64 hex digits shared by all nodes (prefer CAIRN_CLUSTER_SECRET).
    pub cluster_secret: Option<String>,
    pub cluster_tls_ca: Option<PathBuf>,
    pub cluster_tls_cert: Option<PathBuf>,
    pub cluster_tls_key: Option<PathBuf>,
}

/// One node of a cluster, as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub node_id: u64,
    /// Every node's cluster address (HOST:PORT; shards on PORT+1), by id.
    pub nodes: std::collections::BTreeMap<u64, String>,
    /// Where this node binds (its entry unless --cluster-listen).
    pub listen: String,
    /// Nodes being drained (no new shards; rebalance moves theirs off).
    pub drain: Vec<u16>,
    /// From CAIRN_CLUSTER_SECRET or the file (never logged).
    pub secret_hex: String,
    /// TLS between nodes; `None`: plain TCP.
    pub tls: Option<ClusterTlsFiles>,
}

/// The PEM files of a node's cluster TLS (all three or none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("node_id", &self.node_id)
            .field("nodes", &self.nodes)
            .field("listen", &self.listen)
            .field("drain", &self.drain)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// The shard-transfer address that goes with a cluster address.
    pub fn shard_addr(addr: &str) -> Result<String, String> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("cluster address {addr:?} has no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("cluster address {addr:?} has an invalid port"))?;
        let next = port
            .checked_add(1)
            .ok_or_else(|| format!("cluster address {addr:?}: PORT+1 must be a port too"))?;
        Ok(format!("{host}:{next}"))
    }
}

/// The cluster TLS files: all three, or none.
fn resolve_cluster_tls(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<ClusterTlsFiles>, String> {
    match (ca, cert, key) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(ClusterTlsFiles { ca, cert, key })),
        (ca, cert, key) => {
            let missing: Vec<&str> = [
                (ca.is_none(), "--cluster-tls-ca (CAIRN_CLUSTER_TLS_CA)"),
                (
                    cert.is_none(),
                    "--cluster-tls-cert (CAIRN_CLUSTER_TLS_CERT)",
                ),
                (key.is_none(), "--cluster-tls-key (CAIRN_CLUSTER_TLS_KEY)"),
            ]
            .into_iter()
            .filter_map(|(missing, name)| missing.then_some(name))
            .collect();
            Err(format!(
                "TLS between cluster nodes needs all of --cluster-tls-ca, --cluster-tls-cert and --cluster-tls-key (or none); missing: {}",
                missing.join(", ")
            ))
        }
    }
}

fn resolve_cluster(
    node_id: Option<u64>,
    nodes: Option<Vec<String>>,
    listen: Option<SocketAddr>,
    drain: Option<Vec<u64>>,
    secret: Option<String>,
    tls: Option<ClusterTlsFiles>,
) -> Result<Option<ClusterConfig>, String> {
    let (node_id, nodes) = match (node_id, nodes) {
        (None, None) if tls.is_some() => {
            return Err(
                "--cluster-tls-* are settings of a cluster node: give --node-id and --cluster-nodes too (or drop them)"
                    .into(),
            );
        }
        (None, None) => return Ok(None),
        (Some(id), Some(nodes)) => (id, nodes),
        _ => return Err("give both --node-id and --cluster-nodes (or neither)".into()),
    };
    let mut by_id = std::collections::BTreeMap::new();
    for entry in nodes.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('=')
            .ok_or_else(|| format!("cluster node {entry:?} is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("cluster node {entry:?}: the id is not a number"))?;
        if id == 0 || id > u64::from(u16::MAX) {
            return Err(format!("cluster node {entry:?}: ids are 1–65535"));
        }
        ClusterConfig::shard_addr(addr.trim())?;
        if by_id.insert(id, addr.trim().to_owned()).is_some() {
            return Err(format!("cluster node {id} is listed twice"));
        }
    }
    let mut drained = Vec::new();
    for id in drain.unwrap_or_default() {
        if !by_id.contains_key(&id) {
            return Err(format!(
                "--cluster-drain {id}: no such node in --cluster-nodes"
            ));
        }
        drained.push(id as u16); // ids were checked to be ≤ 65535 above
    }
    let own = by_id
        .get(&node_id)
        .ok_or_else(|| format!("--node-id {node_id} is not in --cluster-nodes"))?
        .clone();
    let secret_hex = secret
        .ok_or("a cluster needs CAIRN_CLUSTER_SECRET (64 hex digits, the same on every node)")?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(secret_hex.trim(), &mut bytes)
        .map_err(|_| "CAIRN_CLUSTER_SECRET must be 64 hex digits".to_owned())?;
    Ok(Some(ClusterConfig {
        node_id,
        nodes: by_id,
        listen: listen.map_or(own, |a| a.to_string()),
        drain: drained,
        secret_hex: secret_hex.trim().to_owned(),
        tls,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Fully resolved settings.
#[derive(Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Connection limits of the S3 and admin listeners (before they are
    /// fitted to the descriptor limit at start).
    pub s3_limits: ListenerLimits,
    pub admin_limits: ListenerLimits,
    pub region: String,
    /// Virtual-hosted-style domain (normalised: lowercase, no trailing dot).
    pub domain: Option<String>,
    /// The server-wide public access block is lifted.
    pub allow_public_buckets: bool,
    /// Where the audit log goes (`None`: off).
    pub audit_log: Option<PathBuf>,
    /// SSE-C is accepted over plain HTTP (tests).
    pub allow_sse_c_over_http: bool,
    /// Event notification targets and the webhooks' signing key.
    pub notify: crate::notify::NotifyConfig,
    pub drives: Vec<PathBuf>,
    pub data_shards: usize,
    pub parity_shards: usize,
    /// Where the master key comes from.
    pub master_key: MasterKeySource,
    /// From CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY or the file (never logged).
    pub credentials: Option<(String, String)>,
    pub chunk_min_bytes: u32,
    pub chunk_avg_bytes: u32,
    pub chunk_max_bytes: u32,
    pub log_format: LogFormat,
    /// (certificate chain, private key) PEM files; `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub inline_max_bytes: usize,
    pub maintenance: Maintenance,
    /// How slowly clients may send request bodies (zero: no limit).
    pub body_idle_timeout: std::time::Duration,
    pub body_min_rate_bytes_per_sec: u64,
    pub body_min_rate_window: std::time::Duration,
    /// `None`: a single node.
    pub cluster: Option<ClusterConfig>,
}

/// Background maintenance: garbage collection and scrubbing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Maintenance {
    /// `None`: no background GC.
    pub gc_interval: Option<std::time::Duration>,
    pub gc_grace: std::time::Duration,
    /// Compaction's slack around the oldest write in flight.
    pub gc_settle: std::time::Duration,
    /// `None`: uploads never expire.
    pub upload_expiry: Option<std::time::Duration>,
    /// `None`: no background scrub.
    pub scrub_interval: Option<std::time::Duration>,
    /// `None`: unlimited.
    pub scrub_bytes_per_sec: Option<u64>,
    /// `None`: lifecycle rules are not applied.
    pub lifecycle_interval: Option<std::time::Duration>,
    /// 0: unlimited.
    pub lifecycle_actions_per_sec: u32,
    /// The length of a lifecycle day (a day, except in tests).
    pub lifecycle_day: std::time::Duration,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("region", &self.region)
            .field("domain", &self.domain)
            .field("allow_public_buckets", &self.allow_public_buckets)
            .field("audit_log", &self.audit_log)
            .field("allow_sse_c_over_http", &self.allow_sse_c_over_http)
            .field("notify", &self.notify)
            .field("drives", &self.drives)
            .field("data_shards", &self.data_shards)
            .field("parity_shards", &self.parity_shards)
            .field("master_key", &self.master_key)
            .field(
                "chunk_bytes",
                &(
                    self.chunk_min_bytes,
                    self.chunk_avg_bytes,
                    self.chunk_max_bytes,
                ),
            )
            .finish_non_exhaustive()
    }
}

/// The data directory when none is given.
pub const DATA_DIR_DEFAULT: &str = "./cairn-data";

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn load_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
}

impl ServerConfig {
    /// Resolves flags/env (already merged by clap) over the file over defaults.
    pub fn resolve(args: ServerArgs) -> Result<ServerConfig, String> {
        let file = match &args.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        let drives = args.drives.or(file.drives).unwrap_or_else(|| {
            (0..6)
                .map(|i| data_dir.join("drives").join(i.to_string()))
                .collect()
        });
        let log_format = match args.log_format.or(file.log_format).as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(format!("unknown log format {other:?} (human or json)")),
        };
        let domain = match args.domain.or(file.domain) {
            Some(d) => normalize_domain(&d)?,
            None => None,
        };
        let credentials = match (
            env_nonempty("CAIRN_ACCESS_KEY").or(file.access_key),
            env_nonempty("CAIRN_SECRET_KEY").or(file.secret_key),
        ) {
            (Some(a), Some(s)) => {
                validate_credentials(&a, &s)?;
                Some((a, s))
            }
            (None, None) => None,
            _ => {
                return Err(
                    "set both CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY (or neither, to use generated credentials)"
                        .into(),
                );
            }
        };
        let cluster = resolve_cluster(
            args.node_id.or(file.node_id),
            args.cluster_nodes.or(file.cluster_nodes),
            args.cluster_listen.or(file.cluster_listen),
            args.cluster_drain.or(file.cluster_drain),
            env_nonempty("CAIRN_CLUSTER_SECRET").or(file.cluster_secret),
            resolve_cluster_tls(
                args.cluster_tls_ca.or(file.cluster_tls_ca),
                args.cluster_tls_cert.or(file.cluster_tls_cert),
                args.cluster_tls_key.or(file.cluster_tls_key),
            )?,
        )?;
        let listener_limits = |max: Option<usize>,
                               per_address: Option<usize>,
                               idle_secs: Option<u64>,
                               default: ListenerLimits|
         -> Result<ListenerLimits, String> {
            let limits = ListenerLimits {
                connections_max: max.unwrap_or(default.connections_max),
                connections_per_address_max: per_address
                    .unwrap_or(default.connections_per_address_max),
                idle_timeout: idle_secs
                    .map_or(default.idle_timeout, std::time::Duration::from_secs),
                ..default
            };
            if limits.connections_max == 0
                || limits.connections_per_address_max == 0
                || limits.idle_timeout.is_zero()
            {
                return Err("connection limits and the idle timeout must be at least 1".into());
            }
            Ok(limits)
        };
        let s3_limits = listener_limits(
            args.connections_max.or(file.connections_max),
            args.connections_per_address_max
                .or(file.connections_per_address_max),
            args.idle_timeout_secs.or(file.idle_timeout_secs),
            ListenerLimits::S3_DEFAULT,
        )?;
        let admin_limits = listener_limits(
            args.admin_connections_max.or(file.admin_connections_max),
            args.admin_connections_per_address_max
                .or(file.admin_connections_per_address_max),
            None,
            ListenerLimits::ADMIN_DEFAULT,
        )?;
        let body_defaults = cairn_s3_api::S3Config::default();
        let cfg = ServerConfig {
            s3_limits,
            admin_limits,
            cluster,
            body_idle_timeout: args
                .body_idle_timeout_secs
                .or(file.body_idle_timeout_secs)
                .map_or(
                    body_defaults.body_idle_timeout,
                    std::time::Duration::from_secs,
                ),
            body_min_rate_bytes_per_sec: args
                .body_min_rate_bytes_per_sec
                .or(file.body_min_rate_bytes_per_sec)
                .unwrap_or(body_defaults.body_min_rate_bytes_per_sec),
            body_min_rate_window: args
                .body_min_rate_window_secs
                .or(file.body_min_rate_window_secs)
                .map_or(
                    body_defaults.body_min_rate_window,
                    std::time::Duration::from_secs,
                ),
            master_key: MasterKeySource::resolve(
                &data_dir,
                args.master_key_file.or(file.master_key_file),
                args.allow_master_key_in_data_dir
                    || file.allow_master_key_in_data_dir.unwrap_or(false),
                file.master_key,
            ),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
            admin_listen: args
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9001))),
            region: args
                .region
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".into()),
            domain,
            allow_public_buckets: args.allow_public_buckets
                || file.allow_public_buckets.unwrap_or(false),
            audit_log: args.audit_log.or(file.audit_log),
            allow_sse_c_over_http: args.allow_sse_c_over_http
                || file.allow_sse_c_over_http.unwrap_or(false),
            notify: crate::notify::NotifyConfig::resolve(
                if args.notify_targets.is_empty() {
                    file.notify_targets.unwrap_or_default()
                } else {
                    args.notify_targets
                },
                args.notify_secret_file.or(file.notify_secret_file),
                std::env::var("CAIRN_NOTIFY_SECRET").ok(),
                args.notify_ca_file.or(file.notify_ca_file),
            )?,
            drives,
            data_shards: args.data_shards.or(file.data_shards).unwrap_or(4),
            parity_shards: args.parity_shards.or(file.parity_shards).unwrap_or(2),
            chunk_min_bytes: args
                .chunk_min_bytes
                .or(file.chunk_min_bytes)
                .unwrap_or(64 << 10),
            chunk_avg_bytes: args
                .chunk_avg_bytes
                .or(file.chunk_avg_bytes)
                .unwrap_or(256 << 10),
            chunk_max_bytes: args
                .chunk_max_bytes
                .or(file.chunk_max_bytes)
                .unwrap_or(1 << 20),
            credentials,
            log_format,
            tls: match (
                args.tls_cert.or(file.tls_cert),
                args.tls_key.or(file.tls_key),
            ) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => return Err("give both --tls-cert and --tls-key (or neither)".into()),
            },
            inline_max_bytes: args
                .inline_max_bytes
                .or(file.inline_max_bytes)
                .unwrap_or(cairn_storage_engine::INLINE_MAX_BYTES_DEFAULT),
            maintenance: {
                use std::time::Duration;
                let secs = |v: u64| (v > 0).then(|| Duration::from_secs(v));
                Maintenance {
                    gc_interval: secs(
                        args.gc_interval_secs
                            .or(file.gc_interval_secs)
                            .unwrap_or(600),
                    ),
                    gc_grace: Duration::from_secs(
                        args.gc_grace_secs.or(file.gc_grace_secs).unwrap_or(3600),
                    ),
                    gc_settle: Duration::from_secs(
                        args.gc_settle_secs.or(file.gc_settle_secs).unwrap_or(
                            if args.node_id.or(file.node_id).is_some() {
                                60
                            } else {
                                2
                            },
                        ),
                    ),
                    upload_expiry: secs(
                        args.upload_expiry_secs
                            .or(file.upload_expiry_secs)
                            .unwrap_or(7 * 24 * 3600),
                    ),
                    scrub_interval: secs(
                        args.scrub_interval_secs
                            .or(file.scrub_interval_secs)
                            .unwrap_or(7 * 24 * 3600),
                    ),
                    scrub_bytes_per_sec: args
                        .scrub_bytes_per_sec
                        .or(file.scrub_bytes_per_sec)
                        .map_or(Some(64 << 20), |r| (r > 0).then_some(r)),
                    lifecycle_interval: secs(
                        args.lifecycle_interval_secs
                            .or(file.lifecycle_interval_secs)
                            .unwrap_or(3600),
                    ),
                    lifecycle_actions_per_sec: args
                        .lifecycle_actions_per_sec
                        .or(file.lifecycle_actions_per_sec)
                        .unwrap_or(1000),
                    lifecycle_day: Duration::from_secs(
                        args.lifecycle_day_secs
                            .or(file.lifecycle_day_secs)
                            .unwrap_or(86_400)
                            .max(1),
                    ),
                }
            },
            data_dir,
        };
        // A cluster's shards spread over every node's drives.
        let nodes = cfg.cluster.as_ref().map_or(1, |c| c.nodes.len());
        if cfg.drives.len() * nodes < cfg.data_shards + cfg.parity_shards {
            return Err(format!(
                "{}+{} erasure coding needs at least {} drives; {} given",
                cfg.data_shards,
                cfg.parity_shards,
                cfg.data_shards + cfg.parity_shards,
                cfg.drives.len() * nodes
            ));
        }
        Ok(cfg)
    }
}

/// A virtual-hosting domain: DNS labels (letters, digits, `-`) separated by
/// dots, case-folded; a trailing dot is dropped. No scheme, port or path.
/// An empty value means "not set".
pub fn normalize_domain(raw: &str) -> Result<Option<String>, String> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Ok(None);
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.len() > 253 || !d.split('.').all(label_ok) {
        return Err(format!(
            "invalid domain {raw:?}: give a host name such as s3.example.com (no scheme, port or path)"
        ));
    }
    Ok(Some(d))
}

/// The shortest secret key accepted from the environment or a file. A
/// captured SigV4 signature lets anyone test guesses of the secret offline
/// at GPU speed; 32 random characters (≥ 190 bits) are out of reach, and
/// S3's own secrets, and the ones Cairn generates, are 40.
pub const SECRET_KEY_LEN_MIN: usize = 32;
/// And the fewest different characters in it (refuses "aaaa…" and the like).
const SECRET_KEY_DISTINCT_MIN: usize = 10;

/// Access keys: 3–128 printable ASCII without spaces or '/' (the '/' would
/// break the SigV4 credential scope; they are not secret). Secrets: 32–256
/// printable characters, at least 10 different ones.
pub fn validate_credentials(access: &str, secret: &str) -> Result<(), String> {
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if !(3..=128).contains(&access.len()) || !printable(access) || access.contains('/') {
        return Err(
            "CAIRN_ACCESS_KEY must be 3-128 printable characters without '/' or spaces".into(),
        );
    }
    let distinct = secret
        .bytes()
        .collect::<std::collections::BTreeSet<u8>>()
        .len();
    if secret.len() < SECRET_KEY_LEN_MIN
        || secret.len() > 256
        || !printable(secret)
        || distinct < SECRET_KEY_DISTINCT_MIN
    {
        return Err(format!(
            "CAIRN_SECRET_KEY is too weak: it must be {SECRET_KEY_LEN_MIN}-256 printable \
             characters without spaces, at least {SECRET_KEY_DISTINCT_MIN} of them different \
             (a captured request signature lets anyone guess a short secret offline). Make one \
             with `cairn gen-env` or `openssl rand -base64 30`"
        ));
    }
    Ok(())
}

/// Where the master key comes from, and the rules about where it may be:
/// resolved alike for `cairn server` and `cairn admin master-key rotate`.
#[derive(Clone)]
pub struct MasterKeySource {
    /// The data directory the key belongs to.
    pub data_dir: PathBuf,
    /// The key file (`--master-key-file`, the config file's
    /// `master_key_file`, else the default place).
    pub file: PathBuf,
    /// Whether `file` was chosen by default (not named by the operator): an
    /// old data directory's key inside it is then pointed out.
    pub file_is_default: bool,
    /// A key file inside the data directory is accepted.
    pub allow_in_data_dir: bool,
    /// From CAIRN_MASTER_KEY or the config file's `master_key` (never
    /// logged); it takes precedence over the file.
    pub hex: Option<String>,
}

impl MasterKeySource {
    /// `named`: the key file the operator named (flag, environment or
    /// config file, in that order), else the default place;
    /// CAIRN_MASTER_KEY over the config file's `master_key` (`file_hex`).
    pub fn resolve(
        data_dir: &Path,
        named: Option<PathBuf>,
        allow_in_data_dir: bool,
        file_hex: Option<String>,
    ) -> MasterKeySource {
        MasterKeySource {
            data_dir: data_dir.to_path_buf(),
            file_is_default: named.is_none(),
            file: named.unwrap_or_else(|| default_master_key_file(data_dir)),
            allow_in_data_dir,
            hex: env_nonempty("CAIRN_MASTER_KEY").or(file_hex),
        }
    }

    /// The same resolution for a command that takes only the data
    /// directory and key settings (flags and their environment variables
    /// merged by clap, over the `--config` file, over the defaults).
    pub fn from_args(
        config: Option<&Path>,
        data_dir: Option<PathBuf>,
        master_key_file: Option<PathBuf>,
        allow_in_data_dir: bool,
    ) -> Result<MasterKeySource, String> {
        let file = match config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let data_dir = data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        Ok(MasterKeySource::resolve(
            &data_dir,
            master_key_file.or(file.master_key_file),
            allow_in_data_dir || file.allow_master_key_in_data_dir.unwrap_or(false),
            file.master_key,
        ))
    }
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeySource")
            .field("file", &self.file)
            .field("allow_in_data_dir", &self.allow_in_data_dir)
            .field("from_environment", &self.hex.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the master key lives unless the operator says: the systemd
/// credential `cairn-master-key` (`LoadCredential=`), else the data
/// directory's sibling `<data-dir>.master.key` — outside the directory, so
/// a copy of it carries no key, and on another filesystem when the data
/// directory is a mount point.
fn default_master_key_file(data_dir: &std::path::Path) -> PathBuf {
    if let Some(dir) = env_nonempty("CREDENTIALS_DIRECTORY") {
        let credential = PathBuf::from(dir).join("cairn-master-key");
        if credential.is_file() {
            return credential;
        }
    }
    // `components` drops a trailing slash: `/mnt/d1/` → `/mnt/d1.master.key`.
    let mut name = data_dir.components().as_path().as_os_str().to_owned();
    name.push(".master.key");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_tls_needs_all_three_files_and_a_cluster() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(resolve_cluster_tls(None, None, None).unwrap(), None);
        let all = resolve_cluster_tls(p("ca.pem"), p("n.pem"), p("n.key"))
            .unwrap()
            .unwrap();
        assert_eq!(all.key, PathBuf::from("n.key"));
        let err = resolve_cluster_tls(p("ca.pem"), None, p("n.key")).unwrap_err();
        assert!(err.contains("missing: --cluster-tls-cert"), "{err}");
        let err = resolve_cluster_tls(None, p("n.pem"), None).unwrap_err();
        assert!(
            err.contains("--cluster-tls-ca (CAIRN_CLUSTER_TLS_CA), --cluster-tls-key"),
            "{err}"
        );
        // On a single node they mean nothing: refused, not ignored.
        let err = resolve_cluster(None, None, None, None, None, Some(all.clone())).unwrap_err();
        assert!(err.contains("--node-id"), "{err}");
        let cluster = resolve_cluster(
            Some(1),
            Some(vec!["1=127.0.0.1:7000".into()]),
            None,
            None,
            Some("ab".repeat(32)),
            Some(all.clone()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(cluster.tls, Some(all));
    }

    #[test]
    fn file_values_are_used_and_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\nlisten = \"0.0.0.0:9100\"\nregion = \"eu-west-1\"\ndata_shards = 2\nparity_shards = 1\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(path.clone()),
            region: Some("ap-south-1".into()),
            ..Default::default()
        };
        let cfg = ServerConfig::resolve(args).unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.region, "ap-south-1");
        assert_eq!(cfg.data_shards, 2);
        assert_eq!(cfg.drives.len(), 6);
        assert_eq!(cfg.drives[5], PathBuf::from("/tmp/x/drives/5"));
        // Beside the data directory, not in it.
        assert_eq!(cfg.master_key.file, PathBuf::from("/tmp/x.master.key"));
        assert!(cfg.master_key.file_is_default);
        assert!(!cfg.master_key.allow_in_data_dir);
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(&path, "data_dri = \"/tmp/x\"\n").unwrap();
        assert!(load_file(&path).is_err());
    }

    #[test]
    fn too_few_drives_is_an_error() {
        let args = ServerArgs {
            drives: Some(vec!["/a".into(), "/b".into()]),
            ..Default::default()
        };
        assert!(ServerConfig::resolve(args).is_err());
    }

    #[test]
    fn domain_from_file_flag_overrides_and_is_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.toml");
        std::fs::write(&path, "domain = \"S3.Example.COM.\"\n").unwrap();
        let from_file = ServerConfig::resolve(ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(from_file.domain.as_deref(), Some("s3.example.com"));
        let flag = ServerConfig::resolve(ServerArgs {
            config: Some(path),
            domain: Some("objects.local".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(flag.domain.as_deref(), Some("objects.local"));
        assert_eq!(
            ServerConfig::resolve(ServerArgs::default()).unwrap().domain,
            None
        );
        for bad in [
            "http://s3.example.com",
            "s3.example.com:9000",
            "a..b",
            "-a.b",
            "a/b",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_domain(" ").unwrap(), None);
    }

    #[test]
    fn credential_rules() {
        let good = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert!(validate_credentials("AKIAEXAMPLE", good).is_ok());
        assert!(validate_credentials("a/b", good).is_err());
        assert!(validate_credentials("ok-key", "short").is_err());
        // The shipped placeholder and anything under 32 characters.
        assert!(validate_credentials("cairnadmin", "change-me-please").is_err());
        assert!(validate_credentials("ok-key", &good[..31]).is_err());
        assert!(validate_credentials("ok-key", &good[..32]).is_ok());
        assert!(validate_credentials("ok-key", &"ab".repeat(20)).is_err());
        assert!(validate_credentials("ok-key", &format!("{good} x")).is_err());
    }
}
