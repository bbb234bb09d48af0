//! The admin API's wire format, shared by the server (`admin_http.rs`) and
//! `cairn admin` (`admin_cli.rs`): the routes, the query of each request
//! that takes one, one type per JSON reply, the `{"error": …}` body and the
//! text of `/health/ready`. The server builds these types and serializes
//! them; the CLI builds its requests from them and reads the replies back
//! into them, so the two cannot drift apart.
//!
//! It owns shapes only. It must never do I/O, reach the engine, or decide
//! what an answer is (which status an error gets is `admin_http.rs`'s one
//! mapping). A reply's shape is a promise to scripts (`cairn admin … --json`
//! prints the server's JSON as it is): never rename or drop a field, and
//! keep the golden tests below byte for byte. Fields are declared in
//! alphabetical order because that is the order replies have always had
//! (they were built with `serde_json::json!`, whose maps sort their keys);
//! only [`ClusterStatus`] keeps the order of the cluster crate's
//! `NodeStatus`, which it was serialized from. Replies read leniently
//! (`#[serde(default)]`): a field an older server does not send reads as
//! 0, false or empty, as the CLI always treated it.

use serde::{Deserialize, Serialize};

/// `GET`: [`Status`].
pub const STATUS: &str = "/admin/status";
/// `GET`: [`ScrubStatus`]; `POST` with a [`StartJob`] query starts a scrub.
pub const SCRUB: &str = "/admin/scrub";
/// `GET`: [`RebalanceStatus`]; `POST` with a [`StartJob`] query starts one.
pub const REBALANCE: &str = "/admin/rebalance";
/// `POST`: one garbage-collection pass, answered with a [`GcReport`].
pub const GC: &str = "/admin/gc";
/// `GET`: [`ClusterStatus`].
pub const CLUSTER: &str = "/admin/cluster";
/// `GET`: every [`Key`]; `POST` with a [`CreateKey`] query: a [`CreatedKey`].
pub const KEYS: &str = "/admin/keys";
/// Followed by a key id: see [`key_path`] and [`grant_path`].
pub const KEYS_PREFIX: &str = "/admin/keys/";
/// Followed by a bucket name: see [`bucket_path`].
pub const BUCKETS_PREFIX: &str = "/admin/buckets/";
/// Between a key id and a bucket in [`grant_path`].
pub const GRANTS_INFIX: &str = "/grants/";
/// `GET`: every [`KmsKey`]; `POST` with a [`CreateKmsKey`] query: the new
/// [`KmsKey`].
pub const KMS_KEYS: &str = "/admin/kms/keys";
/// `POST` with a `key=<id or alias/NAME>&action=<rotate|enable|disable>`
/// query: see [`kms_key_action_path`]. (A query, not a path segment: an
/// alias holds `/`, which a SigV4 path would have to carry encoded.)
pub const KMS_KEY_ACTION: &str = "/admin/kms/key";
/// What `POST` [`kms_key_action_path`] does to a key-service key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmsKeyAction {
    /// A new material version wraps new objects; old ones keep theirs.
    Rotate,
    Enable,
    /// Its objects cannot be read, nor new ones written, until enabled.
    Disable,
}

impl KmsKeyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            KmsKeyAction::Rotate => "rotate",
            KmsKeyAction::Enable => "enable",
            KmsKeyAction::Disable => "disable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            KmsKeyAction::Rotate,
            KmsKeyAction::Enable,
            KmsKeyAction::Disable,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// `POST`: applies `action` to the key `reference` names (its id or
/// `alias/NAME`), answered with the key's [`KmsKey`].
pub fn kms_key_action_path(reference: &str, action: KmsKeyAction) -> String {
    format!(
        "{KMS_KEY_ACTION}?action={}&key={}",
        action.as_str(),
        encode(reference)
    )
}

/// The `(key, action)` of a [`kms_key_action_path`] query.
pub fn kms_key_action_from_query(query: &str) -> Result<(String, KmsKeyAction), String> {
    let key = query_value(query, "key").ok_or("say which key: key=<id or alias/NAME>")?;
    let action = query_value(query, "action")
        .and_then(|a| KmsKeyAction::parse(&a))
        .ok_or("action must be rotate, enable or disable")?;
    Ok((key, action))
}

/// The query of `POST /admin/kms/keys`: `[alias=A][&description=D]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateKmsKey {
    /// Without `alias/`; empty: none.
    pub alias: String,
    pub description: String,
}

impl CreateKmsKey {
    pub fn path(&self) -> String {
        format!(
            "{KMS_KEYS}?alias={}&description={}",
            encode(&self.alias),
            encode(&self.description)
        )
    }

    pub fn from_query(query: &str) -> Self {
        CreateKmsKey {
            alias: query_value(query, "alias").unwrap_or_default(),
            description: query_value(query, "description").unwrap_or_default(),
        }
    }
}

/// A key of the built-in key service (SSE-KMS), never its material: each
/// entry of `GET /admin/kms/keys`, and the reply to every change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KmsKey {
    /// Without `alias/`; empty: none.
    pub alias: String,
    /// What `x-amz-server-side-encryption-aws-kms-key-id` answers.
    pub arn: String,
    pub created_ms: u64,
    pub description: String,
    pub enabled: bool,
    pub id: String,
    /// Material versions (1 + rotations).
    pub versions: u32,
}

/// `DELETE`: removes the key, answered with [`DeletedKey`].
pub fn key_path(id: &str) -> String {
    format!("{KEYS_PREFIX}{}", encode(id))
}

/// `PUT` with a [`SetGrant`] query sets key `id`'s grant on `bucket`;
/// `DELETE` removes it. Both answer with the key's [`Key`].
pub fn grant_path(id: &str, bucket: &str) -> String {
    format!("{}{GRANTS_INFIX}{}", key_path(id), encode(bucket))
}

/// `GET`: [`BucketInfo`].
pub fn bucket_path(name: &str) -> String {
    format!("{BUCKETS_PREFIX}{}", encode(name))
}

/// Percent-encodes a query value or path segment (SigV4's unreserved set
/// stays as it is, so the signature covers exactly what is sent).
pub fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// A percent-encoded path segment (or query value), decoded.
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Every decoded value of parameter `name` in `query`, in order.
fn query_values(query: &str, name: &str) -> Vec<String> {
    // In a query string `+` also means a space.
    let decode_value = |s: &str| decode(&s.replace('+', " "));
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_value(k) == name).then(|| decode_value(v))
        })
        .collect()
}

/// The first decoded value of parameter `name` in `query`.
fn query_value(query: &str, name: &str) -> Option<String> {
    query_values(query, name).into_iter().next()
}

/// A boolean parameter: absent, `false`, `0` or empty is false.
fn query_bool(query: &str, name: &str) -> Result<bool, String> {
    match query_value(query, name).as_deref() {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
    }
}

/// The query of `POST /admin/scrub` and `POST /admin/rebalance`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartJob {
    /// Read (scrub) or copy (rebalance) at most this many bytes per
    /// second; `None` is no limit.
    pub bytes_per_sec: Option<u64>,
}

impl StartJob {
    /// `route`, with `?bytes_per_sec=N` when there is a limit.
    pub fn path(&self, route: &str) -> String {
        match self.bytes_per_sec.filter(|r| *r > 0) {
            Some(rate) => format!("{route}?bytes_per_sec={rate}"),
            None => route.to_owned(),
        }
    }

    /// A missing, unparsable or zero rate is no limit.
    pub fn from_query(query: &str) -> Self {
        StartJob {
            bytes_per_sec: query_value(query, "bytes_per_sec")
                .and_then(|v| v.parse().ok())
                .filter(|r| *r > 0),
        }
    }
}

/// The query of `POST /admin/keys`: `name=N[&admin=true][&allow=SPEC]…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateKey {
    /// A name for humans (the server refuses more than 256 bytes).
    pub name: String,
    pub admin: bool,
    /// Bucket grants as `BUCKET:rw`, `BUCKET:r` or `BUCKET:w`, or a device
    /// grant `BUCKET/PREFIX:w` (create objects under PREFIX only), checked
    /// by the server.
    pub allow: Vec<String>,
    /// The key stops working this many seconds after its creation.
    pub expires_in_secs: Option<u64>,
}

impl CreateKey {
    pub fn path(&self) -> String {
        let mut path = format!("{KEYS}?name={}", encode(&self.name));
        if self.admin {
            path.push_str("&admin=true");
        }
        for a in &self.allow {
            path.push_str("&allow=");
            path.push_str(&encode(a));
        }
        if let Some(secs) = self.expires_in_secs {
            path.push_str(&format!("&expires_in={secs}"));
        }
        path
    }

    /// Fails on an `admin` that is not a boolean, or an `expires_in` that
    /// is not a positive number of seconds.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let expires_in_secs = match query_value(query, "expires_in") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(secs) if secs > 0 => Some(secs),
                _ => {
                    return Err(format!(
                        "expires_in={v:?} is not a positive number of seconds"
                    ));
                }
            },
        };
        Ok(CreateKey {
            admin: query_bool(query, "admin")?,
            allow: query_values(query, "allow"),
            name: query_value(query, "name").unwrap_or_default(),
            expires_in_secs,
        })
    }
}

/// The query of `PUT /admin/keys/<id>/grants/<bucket>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetGrant {
    pub read: bool,
    pub write: bool,
}

impl SetGrant {
    pub fn path(&self, id: &str, bucket: &str) -> String {
        format!(
            "{}?read={}&write={}",
            grant_path(id, bucket),
            self.read,
            self.write
        )
    }

    /// Fails on a `read` (checked first) or `write` that is not a boolean.
    pub fn from_query(query: &str) -> Result<Self, String> {
        Ok(SetGrant {
            read: query_bool(query, "read")?,
            write: query_bool(query, "write")?,
        })
    }
}

/// A reply's body on the wire: compact JSON and a newline.
pub fn body<T: Serialize>(reply: &T) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string(reply)?;
    text.push('\n');
    Ok(text)
}

/// Every failed `/admin/*` request's JSON body (except a failed garbage
/// collection, answered in plain text). Not lenient: a body without a
/// string `error` is not one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /admin/status`: this server's drives, space, what is stored, the
/// erasure coding, its version and the scrubber's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub data_shards: usize,
    /// Delete markers (versioned buckets).
    pub delete_markers: u64,
    pub drives: Vec<Drive>,
    /// Bytes of shards known missing or corrupt, not rebuilt yet.
    pub heal_backlog_bytes: u64,
    /// As clients wrote them.
    pub logical_bytes: u64,
    pub metadata_sst_bytes: u64,
    /// Logical bytes of the older versions kept by versioning.
    pub noncurrent_bytes: u64,
    /// Older versions kept by versioning.
    pub noncurrent_versions: u64,
    pub objects: u64,
    pub parity_shards: usize,
    /// On the drives, parity included.
    pub raw_bytes: u64,
    pub scrub_chunks_checked: u64,
    pub scrub_chunks_total_estimate: u64,
    pub scrub_running: bool,
    /// After dedup and compression.
    pub stored_bytes: u64,
    /// The server's version.
    pub version: String,
    /// Event notification queues: events waiting per target (absent from
    /// a server without notifications, or older than them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notification_queues: Vec<NotificationQueue>,
    /// Events not queued because their target's queue was full.
    #[serde(skip_serializing_if = "is_zero")]
    pub notification_events_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One target's queue in [`Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationQueue {
    pub target: String,
    pub queued: u64,
    /// Age of the oldest waiting event in seconds (0: none waits).
    pub oldest_age_secs: u64,
}

/// One drive in [`Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Drive {
    pub faulty: bool,
    pub fs_free_bytes: u64,
    pub fs_size_bytes: u64,
    /// A replaced drive whose shards are being rebuilt now.
    pub healing: bool,
    pub index: usize,
    /// The drive is replaced (healing or not).
    pub needs_heal: bool,
    pub path: String,
    pub present: bool,
    pub segment_bytes: u64,
    /// `ok`, `missing`, `replaced`, `foreign` or `faulty` (empty from a
    /// server older than drive states).
    pub state: String,
    /// Why a foreign drive is refused; empty otherwise.
    pub state_detail: String,
}

/// `GET /admin/scrub` (and `POST`'s reply): the scrubber's state and the
/// counts of its current or last run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrubStatus {
    pub bytes_read: u64,
    pub chunks_checked: u64,
    pub chunks_total_estimate: u64,
    pub chunks_unrecoverable: u64,
    pub finished_ms: u64,
    pub running: bool,
    pub shards_corrupt: u64,
    pub shards_missing: u64,
    pub shards_repaired: u64,
    pub shards_verified: u64,
    pub started_ms: u64,
}

/// `GET /admin/rebalance` (and `POST`'s reply): the rebalancer's state and
/// the counts of its current or last run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RebalanceStatus {
    pub bytes_moved: u64,
    pub chunks_checked: u64,
    pub chunks_misplaced: u64,
    pub chunks_total_estimate: u64,
    pub finished_ms: u64,
    pub running: bool,
    pub shards_moved: u64,
    pub shards_rebuilt: u64,
    pub shards_skipped: u64,
    pub started_ms: u64,
}

/// `POST /admin/gc`: what one garbage-collection pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GcReport {
    pub bytes_reclaimed: u64,
    pub chunks_deleted: u64,
    pub chunks_live: u64,
    pub segments_compacted: u64,
    pub shards_moved: u64,
    pub uploads_expired: u64,
}

/// A key's rights on one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grant {
    pub bucket: String,
    pub read: bool,
    pub write: bool,
    /// Empty (and absent from the JSON): the whole bucket; else a device
    /// grant (create objects under it only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// An access key, never its secret: each entry of `GET /admin/keys`, and
/// the reply to a grant change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Key {
    pub admin: bool,
    pub created_ms: u64,
    /// The start-up key (from the environment), not a stored one.
    pub fixed: bool,
    pub grants: Vec<Grant>,
    pub id: String,
    pub name: String,
    /// When the key stops working (unix ms); absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

/// `POST /admin/keys`: the new key and its secret, the only time the
/// secret is shown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: Key,
    #[serde(default)]
    pub secret: String,
}

/// `DELETE /admin/keys/<id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletedKey {
    pub deleted: String,
}

/// `GET /admin/buckets/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BucketInfo {
    pub created_ms: u64,
    /// The keys that may use the bucket.
    pub keys: Vec<BucketKey>,
    pub logical_bytes: u64,
    pub name: String,
    pub objects: u64,
    pub uploads_in_progress: u64,
}

/// A key that may use a bucket, in [`BucketInfo`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BucketKey {
    pub admin: bool,
    pub id: String,
    pub name: String,
    pub read: bool,
    pub write: bool,
}

/// `GET /admin/cluster`: the cluster as this node sees it. Field order is
/// the cluster crate's `NodeStatus` (not alphabetical).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterStatus {
    pub node_id: u64,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub members: Vec<ClusterMember>,
}

/// One member in [`ClusterStatus`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterMember {
    pub id: u64,
    pub raft_addr: String,
    pub voter: bool,
    /// The last log index the leader knows this member holds (only the
    /// leader tracks it).
    pub matched_index: Option<u64>,
}

/// `GET /health/ready` (plain text, no credentials): 200 while writes can
/// reach their quorum, even degraded; 503 otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Ready, with these drives missing, replaced or refused.
    Degraded(Vec<String>),
    /// Too few usable drives, or the metadata store cannot be read.
    NotReady(String),
}

impl Readiness {
    /// The HTTP status: 200 when ready (degraded or not), else 503.
    pub fn http_status(&self) -> u16 {
        match self {
            Readiness::Ready | Readiness::Degraded(_) => 200,
            Readiness::NotReady(_) => 503,
        }
    }

    /// The text body, one line.
    pub fn body(&self) -> String {
        match self {
            Readiness::Ready => "ready\n".to_owned(),
            Readiness::Degraded(drives) => format!("ready, degraded: {}\n", drives.join("; ")),
            Readiness::NotReady(reason) => format!("not ready: {reason}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Golden replies: each expected string is what the server answered
    //! before these types existed (its `json!` calls, run on the same
    //! sample), so a change here is a change to what scripts read.

    use super::*;

    /// `reply` serializes to exactly `golden` (plus the newline) and reads
    /// back to itself.
    fn assert_golden<T>(reply: &T, golden: &str)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(body(reply).unwrap(), format!("{golden}\n"));
        let back: T = serde_json::from_str(golden).unwrap();
        assert_eq!(&back, reply);
    }

    fn sample_scrub() -> ScrubStatus {
        ScrubStatus {
            running: true,
            started_ms: 1,
            finished_ms: 2,
            chunks_total_estimate: 3,
            chunks_checked: 4,
            shards_verified: 5,
            shards_missing: 6,
            shards_corrupt: 7,
            shards_repaired: 8,
            chunks_unrecoverable: 9,
            bytes_read: 10,
        }
    }

    fn sample_key() -> Key {
        Key {
            id: "AKIDEXAMPLE".into(),
            name: "backup \"job\"".into(),
            created_ms: 41,
            admin: false,
            fixed: false,
            grants: vec![
                Grant {
                    bucket: "logs".into(),
                    read: true,
                    write: false,
                    prefix: String::new(),
                },
                Grant {
                    bucket: "photos".into(),
                    read: true,
                    write: true,
                    prefix: String::new(),
                },
            ],
            expires_ms: None,
        }
    }

    const KEY: &str = r#"{"admin":false,"created_ms":41,"fixed":false,"grants":[{"bucket":"logs","read":true,"write":false},{"bucket":"photos","read":true,"write":true}],"id":"AKIDEXAMPLE","name":"backup \"job\""}"#;

    #[test]
    fn scrub_status_is_unchanged() {
        assert_golden(
            &sample_scrub(),
            r#"{"bytes_read":10,"chunks_checked":4,"chunks_total_estimate":3,"chunks_unrecoverable":9,"finished_ms":2,"running":true,"shards_corrupt":7,"shards_missing":6,"shards_repaired":8,"shards_verified":5,"started_ms":1}"#,
        );
    }

    #[test]
    fn rebalance_status_is_unchanged() {
        let status = RebalanceStatus {
            running: false,
            started_ms: 11,
            finished_ms: 12,
            chunks_total_estimate: 13,
            chunks_checked: 14,
            chunks_misplaced: 15,
            shards_moved: 16,
            bytes_moved: 17,
            shards_rebuilt: 18,
            shards_skipped: 19,
        };
        assert_golden(
            &status,
            r#"{"bytes_moved":17,"chunks_checked":14,"chunks_misplaced":15,"chunks_total_estimate":13,"finished_ms":12,"running":false,"shards_moved":16,"shards_rebuilt":18,"shards_skipped":19,"started_ms":11}"#,
        );
    }

    #[test]
    fn status_is_unchanged() {
        let status = Status {
            version: "0.1.0".into(),
            data_shards: 4,
            parity_shards: 2,
            objects: 21,
            logical_bytes: 22,
            stored_bytes: 23,
            raw_bytes: 24,
            metadata_sst_bytes: 25,
            heal_backlog_bytes: 26,
            noncurrent_versions: 27,
            noncurrent_bytes: 28,
            delete_markers: 29,
            scrub_running: true,
            scrub_chunks_checked: 4,
            scrub_chunks_total_estimate: 3,
            drives: vec![Drive {
                index: 4,
                path: "/d/\"4\"é".into(),
                state: "foreign".into(),
                needs_heal: false,
                healing: false,
                state_detail: "another \"server\"\n".into(),
                present: true,
                faulty: false,
                segment_bytes: 104,
                fs_free_bytes: 204,
                fs_size_bytes: 304,
            }],
            notification_queues: Vec::new(),
            notification_events_dropped: 0,
        };
        assert_golden(
            &status,
            r#"{"data_shards":4,"delete_markers":29,"drives":[{"faulty":false,"fs_free_bytes":204,"fs_size_bytes":304,"healing":false,"index":4,"needs_heal":false,"path":"/d/\"4\"é","present":true,"segment_bytes":104,"state":"foreign","state_detail":"another \"server\"\n"}],"heal_backlog_bytes":26,"logical_bytes":22,"metadata_sst_bytes":25,"noncurrent_bytes":28,"noncurrent_versions":27,"objects":21,"parity_shards":2,"raw_bytes":24,"scrub_chunks_checked":4,"scrub_chunks_total_estimate":3,"scrub_running":true,"stored_bytes":23,"version":"0.1.0"}"#,
        );
    }

    #[test]
    fn gc_report_is_unchanged() {
        let report = GcReport {
            uploads_expired: 31,
            chunks_deleted: 32,
            chunks_live: 33,
            segments_compacted: 34,
            shards_moved: 35,
            bytes_reclaimed: 36,
        };
        assert_golden(
            &report,
            r#"{"bytes_reclaimed":36,"chunks_deleted":32,"chunks_live":33,"segments_compacted":34,"shards_moved":35,"uploads_expired":31}"#,
        );
    }

    #[test]
    fn key_is_unchanged() {
        assert_golden(&sample_key(), KEY);
    }

    #[test]
    fn key_list_is_unchanged() {
        assert_golden(&vec![sample_key(), sample_key()], &format!("[{KEY},{KEY}]"));
    }

    #[test]
    fn created_key_has_its_secret_last() {
        let created = CreatedKey {
            key: sample_key(),
            secret: "s3cr3t/+".into(),
        };
        assert_golden(
            &created,
            r#"{"admin":false,"created_ms":41,"fixed":false,"grants":[{"bucket":"logs","read":true,"write":false},{"bucket":"photos","read":true,"write":true}],"id":"AKIDEXAMPLE","name":"backup \"job\"","secret":"s3cr3t/+"}"#,
        );
    }

    #[test]
    fn deleted_key_is_unchanged() {
        let deleted = DeletedKey {
            deleted: "AKIDEXAMPLE".into(),
        };
        assert_golden(&deleted, r#"{"deleted":"AKIDEXAMPLE"}"#);
    }

    #[test]
    fn error_body_is_unchanged() {
        let error = ErrorBody {
            error: "no such \"bucket\"".into(),
        };
        assert_golden(&error, r#"{"error":"no such \"bucket\""}"#);
    }

    #[test]
    fn bucket_info_is_unchanged() {
        let info = BucketInfo {
            name: "photos".into(),
            created_ms: 51,
            objects: 52,
            logical_bytes: 53,
            uploads_in_progress: 54,
            keys: vec![BucketKey {
                id: "AK1".into(),
                name: "n1".into(),
                admin: true,
                read: true,
                write: false,
            }],
        };
        assert_golden(
            &info,
            r#"{"created_ms":51,"keys":[{"admin":true,"id":"AK1","name":"n1","read":true,"write":false}],"logical_bytes":53,"name":"photos","objects":52,"uploads_in_progress":54}"#,
        );
    }

    #[test]
    fn cluster_status_keeps_the_node_status_order() {
        let status = ClusterStatus {
            node_id: 2,
            state: "Follower".into(),
            leader: Some(1),
            term: 7,
            last_log_index: Some(99),
            applied_index: None,
            members: vec![
                ClusterMember {
                    id: 1,
                    raft_addr: "10.0.0.1:9100".into(),
                    voter: true,
                    matched_index: None,
                },
                ClusterMember {
                    id: 3,
                    raft_addr: "10.0.0.3:9100".into(),
                    voter: false,
                    matched_index: Some(98),
                },
            ],
        };
        assert_golden(
            &status,
            r#"{"node_id":2,"state":"Follower","leader":1,"term":7,"last_log_index":99,"applied_index":null,"members":[{"id":1,"raft_addr":"10.0.0.1:9100","voter":true,"matched_index":null},{"id":3,"raft_addr":"10.0.0.3:9100","voter":false,"matched_index":98}]}"#,
        );
    }

    /// The CLI always read a missing field as 0, false or empty.
    #[test]
    fn missing_fields_read_as_empty() {
        let s: ScrubStatus =
            serde_json::from_str(r#"{"running":true,"chunks_checked":12}"#).unwrap();
        assert!(s.running);
        assert_eq!((s.chunks_checked, s.bytes_read), (12, 0));
        let d: Drive = serde_json::from_str(r#"{"index":3,"present":true}"#).unwrap();
        assert_eq!((d.index, d.present, d.state.as_str()), (3, true, ""));
        let c: ClusterStatus = serde_json::from_str(r#"{"node_id":1}"#).unwrap();
        assert_eq!((c.node_id, c.leader), (1, None));
    }

    #[test]
    fn readiness_text_is_unchanged() {
        assert_eq!(Readiness::Ready.body(), "ready\n");
        let degraded = Readiness::Degraded(vec!["drive 1 missing".into(), "drive 2 x".into()]);
        assert_eq!(
            degraded.body(),
            "ready, degraded: drive 1 missing; drive 2 x\n"
        );
        assert_eq!(degraded.http_status(), 200);
        let down = Readiness::NotReady("metadata store: gone".into());
        assert_eq!(down.body(), "not ready: metadata store: gone\n");
        assert_eq!(down.http_status(), 503);
    }

    /// What the CLI sends is what the server reads back.
    #[test]
    fn request_queries_round_trip() {
        let create = CreateKey {
            name: "backup job+ü".into(),
            admin: true,
            allow: vec!["photos:rw".into(), "my logs:r".into()],
            expires_in_secs: Some(3600),
        };
        assert_eq!(
            create.path(),
            "/admin/keys?name=backup%20job%2B%C3%BC&admin=true&allow=photos%3Arw&allow=my%20logs%3Ar&expires_in=3600"
        );
        let (_, query) = create
            .path()
            .split_once('?')
            .map(|(p, q)| (p.to_owned(), q.to_owned()))
            .unwrap();
        assert_eq!(CreateKey::from_query(&query).unwrap(), create);
        // A `+` in a query is a space.
        assert_eq!(CreateKey::from_query("name=a+b").unwrap().name, "a b");
        assert!(CreateKey::from_query("name=x&admin=yes").is_err());
        assert!(CreateKey::from_query("name=x&expires_in=0").is_err());
        assert!(CreateKey::from_query("name=x&expires_in=-5").is_err());

        let grant = SetGrant {
            read: true,
            write: false,
        };
        assert_eq!(
            grant.path("AK/1", "b c"),
            "/admin/keys/AK%2F1/grants/b%20c?read=true&write=false"
        );
        assert_eq!(
            SetGrant::from_query("read=true&write=false").unwrap(),
            grant
        );
        assert_eq!(
            SetGrant::from_query("read=maybe&write=no").unwrap_err(),
            "read must be true or false, not \"maybe\""
        );

        let job = StartJob {
            bytes_per_sec: Some(50),
        };
        assert_eq!(job.path(SCRUB), "/admin/scrub?bytes_per_sec=50");
        assert_eq!(StartJob::from_query("bytes_per_sec=50"), job);
        assert_eq!(StartJob::default().path(SCRUB), "/admin/scrub");
        assert_eq!(StartJob::from_query("bytes_per_sec=0").bytes_per_sec, None);
        assert_eq!(StartJob::from_query("bytes_per_sec=x").bytes_per_sec, None);
        assert_eq!(bucket_path("a b"), "/admin/buckets/a%20b");
    }
}
