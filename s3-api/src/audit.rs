//! The audit log: one JSON line per S3 request — who (the key that signed
//! it, `anonymous`, or the key a failed signature claimed), what (the
//! operation, bucket, key, version), from where (the peer address, TLS or
//! not) and the outcome (status, S3 error code) — appended to a file the
//! operator names (`--audit-log`). Off unless named.
//!
//! Owns: the record's shape, the bounded queue between requests and the
//! writer thread, and the count of lines it could not write.
//!
//! Must never: slow or fail a request (a full queue drops the line and
//! counts it in `cairn_audit_dropped_total`; a write error is counted the
//! same way and logged); write a secret (no signature, secret, header or
//! query value is recorded — only the access key id, which is not secret);
//! grow without bound (the queue holds [`QUEUE_LINES`] lines, each field is
//! capped at [`FIELD_MAX_BYTES`]).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::SystemTime;

use prometheus::{IntCounter, Registry};
use serde::Serialize;

/// Lines waiting for the writer at most (~a second of a busy server).
pub(crate) const QUEUE_LINES: usize = 65_536;
/// The longest value a field keeps (object keys are ≤ 1,024 bytes).
pub(crate) const FIELD_MAX_BYTES: usize = 1024;

/// An open audit log.
#[derive(Debug)]
pub(crate) struct AuditLog {
    lines: SyncSender<String>,
    dropped: IntCounter,
}

/// Who a request came from, as the log names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum AuditCaller {
    /// Not authenticated at all (a CORS preflight, or a request refused
    /// before its signature was looked at).
    #[default]
    None,
    Anonymous,
    /// The key that signed it.
    Key(String),
    /// A signature that did not verify; the access key id it named, if any.
    Failed(Option<String>),
}

/// One line.
#[derive(Debug, Serialize)]
pub(crate) struct AuditRecord<'a> {
    /// RFC 3339, milliseconds, UTC.
    pub(crate) time: String,
    pub(crate) request_id: &'a str,
    pub(crate) remote: Option<IpAddr>,
    pub(crate) tls: bool,
    /// `key`, `anonymous`, `failed` or `none`.
    pub(crate) auth: &'static str,
    /// The access key id (`key`), or the one a failed signature claimed.
    pub(crate) access_key: Option<&'a str>,
    pub(crate) operation: &'a str,
    pub(crate) bucket: Option<&'a str>,
    pub(crate) key: Option<&'a str>,
    pub(crate) version_id: Option<&'a str>,
    pub(crate) status: u16,
    /// The S3 error code of a refusal or failure.
    pub(crate) error: Option<&'a str>,
}

impl AuditCaller {
    pub(crate) fn auth(&self) -> &'static str {
        match self {
            AuditCaller::None => "none",
            AuditCaller::Anonymous => "anonymous",
            AuditCaller::Key(_) => "key",
            AuditCaller::Failed(_) => "failed",
        }
    }

    pub(crate) fn access_key(&self) -> Option<&str> {
        match self {
            AuditCaller::Key(id) => Some(id),
            AuditCaller::Failed(claimed) => claimed.as_deref(),
            AuditCaller::None | AuditCaller::Anonymous => None,
        }
    }
}

/// `s` cut to at most [`FIELD_MAX_BYTES`] on a character boundary.
pub(crate) fn capped(s: &str) -> &str {
    if s.len() <= FIELD_MAX_BYTES {
        return s;
    }
    let mut end = FIELD_MAX_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `2026-12-05T13:20:01.123Z`.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let nanos = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

impl AuditLog {
    /// Opens (creates, appends to) `path` and starts the writer thread.
    pub(crate) fn open(path: &Path, registry: &Registry) -> Result<AuditLog, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        let dropped = IntCounter::new(
            "cairn_audit_dropped_total",
            "Audit log lines not written (queue full or write error)",
        )
        .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(dropped.clone()))
            .map_err(|e| e.to_string())?;
        let (lines, rx) = sync_channel(QUEUE_LINES);
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("cairn-audit".into())
            .spawn(move || write_lines(rx, BufWriter::new(file), counter))
            .map_err(|e| format!("audit log writer: {e}"))?;
        Ok(AuditLog { lines, dropped })
    }

    /// Queues one line; never waits.
    pub(crate) fn record(&self, record: &AuditRecord<'_>) {
        let Ok(line) = serde_json::to_string(record) else {
            self.dropped.inc();
            return;
        };
        match self.lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

/// The writer thread: writes what is queued, flushing whenever the queue
/// runs dry (so a quiet server's log is current), until the log is closed.
fn write_lines(rx: Receiver<String>, mut out: impl Write, dropped: IntCounter) {
    let mut warned = false;
    while let Ok(first) = rx.recv() {
        let mut failed = 0u64;
        let mut write = |line: String, out: &mut dyn Write| {
            if out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .is_err()
            {
                failed += 1;
            }
        };
        write(first, &mut out);
        while let Ok(line) = rx.try_recv() {
            write(line, &mut out);
        }
        if out.flush().is_err() {
            failed += 1;
        }
        if failed > 0 {
            dropped.inc_by(failed);
            if !warned {
                tracing::warn!("audit log: writing failed; lines are being dropped");
                warned = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_one_json_line_without_secrets() {
        let record = AuditRecord {
            time: rfc3339_millis(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1500)),
            request_id: "R1",
            remote: Some("10.0.0.7".parse().unwrap()),
            tls: false,
            auth: AuditCaller::Key("AKID".into()).auth(),
            access_key: Some("AKID"),
            operation: "PutObject",
            bucket: Some("b"),
            key: Some("dir/\"quoted\"\nname"),
            version_id: None,
            status: 200,
            error: None,
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(
            line,
            r#"{"time":"1970-01-01T00:00:01.500Z","request_id":"R1","remote":"10.0.0.7","tls":false,"auth":"key","access_key":"AKID","operation":"PutObject","bucket":"b","key":"dir/\"quoted\"\nname","version_id":null,"status":200,"error":null}"#
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn fields_are_capped_on_character_boundaries() {
        let long = "é".repeat(FIELD_MAX_BYTES);
        let cut = capped(&long);
        assert!(cut.len() <= FIELD_MAX_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(capped("short"), "short");
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (lines, rx) = sync_channel(1);
        let log = AuditLog {
            lines,
            dropped: IntCounter::new("t", "t").unwrap(),
        };
        let record = AuditRecord {
            time: String::new(),
            request_id: "",
            remote: None,
            tls: true,
            auth: "none",
            access_key: None,
            operation: "ListBuckets",
            bucket: None,
            key: None,
            version_id: None,
            status: 403,
            error: Some("AccessDenied"),
        };
        log.record(&record);
        log.record(&record);
        log.record(&record);
        assert_eq!(log.dropped.get(), 2);
        assert!(
            rx.try_recv()
                .unwrap()
                .contains("\"error\":\"AccessDenied\"")
        );
    }
}
