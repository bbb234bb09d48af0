//! The result of a run: one JSON object with stable field names (the
//! contract scripts such as `bench/summarize.py` read; documented in
//! `bench/README.md`) and the readable text summary printed by default.
//!
//! Fields may be added; existing ones keep their name, unit and meaning.
//! This module formats only; it never measures and never does I/O beyond
//! returning strings.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::stats::{OpSummary, round3};

/// One run, as written to the JSON line.
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub tool: &'static str,
    pub version: &'static str,
    pub label: Option<String>,
    /// When the run ended, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    pub workload: &'static str,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub payload: &'static str,
    /// Content of the bodies: random, compressible, dup; `iot-json` for
    /// iot; null for list and delete.
    pub kind: Option<&'static str>,
    /// Object size in bytes; null for `iot` (sizes vary) and for workloads
    /// that send no bodies (`list`, `delete`).
    pub size: Option<u64>,
    pub concurrency: usize,
    /// Wall time of the measured phase (from the first request to the end
    /// of the last), seconds.
    pub seconds: f64,
    /// All operation classes together.
    #[serde(flatten)]
    pub total: OpSummary,
    /// Each operation class that saw a request: PUT, GET, DELETE, LIST.
    pub by_op: BTreeMap<&'static str, OpSummary>,
    /// `list` only: keys in complete listings and complete listings.
    pub list: Option<ListResult>,
    pub client: ClientUsage,
    pub host: HostUsage,
    /// Only with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// Up to five failure messages.
    pub first_errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ListResult {
    pub keys: u64,
    pub keys_per_sec: f64,
    pub listings: u64,
}

/// This tool's own cost: it shares the machine when run beside the server.
#[derive(Debug, Serialize)]
pub struct ClientUsage {
    pub cpu_seconds: Option<f64>,
    pub threads: usize,
}

#[derive(Debug, Serialize)]
pub struct HostUsage {
    pub cpus: usize,
    /// Share of all CPUs busy during the run (any process), percent.
    pub busy_pct: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ServerUsage {
    pub pid: u32,
    /// User + system CPU seconds the server used during the run.
    pub cpu_seconds: Option<f64>,
    /// The highest VmRSS sampled during the run (every 100 ms), MiB.
    pub rss_peak_mib: Option<f64>,
    /// The mean of those samples, MiB.
    pub rss_avg_mib: Option<f64>,
    /// VmHWM at the end: the process's peak RSS since it started, MiB.
    pub hwm_mib: Option<f64>,
}

pub fn kib_to_mib(kib: u64) -> f64 {
    round3(kib as f64 / 1024.0)
}

impl RunResult {
    pub fn json_line(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| format!("writing the JSON result: {e}"))
    }

    /// The table and usage lines printed without `--json`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let what = match (self.size, self.kind) {
            (Some(size), Some(kind)) => {
                format!("{} {kind} objects, ", crate::units::size_label(size))
            }
            (None, Some(kind)) => format!("{kind} bodies, "),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "cairn-bench {}: {what}concurrency {}, {} payload, {}/{}/{}",
            self.workload, self.concurrency, self.payload, self.endpoint, self.bucket, self.prefix
        );
        let _ = writeln!(
            out,
            "{:<7} {:>9} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op",
            "ops",
            "errors",
            "verify",
            "ops/s",
            "MiB/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        let mut rows: Vec<(&str, &OpSummary)> =
            self.by_op.iter().map(|(name, s)| (*name, s)).collect();
        if rows.len() > 1 {
            rows.push(("TOTAL", &self.total));
        }
        for (name, s) in rows {
            let _ = writeln!(
                out,
                "{:<7} {:>9} {:>7} {:>7} {:>10.1} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                s.ops,
                s.errors,
                s.verify_failures,
                s.ops_per_sec,
                s.mib_per_sec,
                s.latency_ms.p50,
                s.latency_ms.p90,
                s.latency_ms.p99,
                s.latency_ms.max
            );
        }
        let _ = writeln!(out, "{:.2} s measured", self.seconds);
        if let Some(list) = &self.list {
            let _ = writeln!(
                out,
                "listed {} keys in {} complete listings: {:.0} keys/s",
                list.keys, list.listings, list.keys_per_sec
            );
        }
        let share = |cpu: f64| {
            if self.seconds > 0.0 {
                100.0 * cpu / self.seconds
            } else {
                0.0
            }
        };
        if let Some(cpu) = self.client.cpu_seconds {
            let _ = write!(
                out,
                "client: {cpu:.2} CPU-s ({:.0}% of one core)",
                share(cpu)
            );
            if let Some(busy) = self.host.busy_pct {
                let _ = write!(out, "; host: {busy:.0}% of {} CPUs busy", self.host.cpus);
            }
            let _ = writeln!(out);
        }
        if let Some(server) = &self.server {
            let _ = write!(out, "server pid {}:", server.pid);
            if let Some(cpu) = server.cpu_seconds {
                let _ = write!(out, " {cpu:.2} CPU-s ({:.0}% of one core)", share(cpu));
                // Per GiB for large objects, per operation for small ones
                // and for bodiless requests.
                let gib = self.total.bytes as f64 / f64::from(1u32 << 30);
                let ops = self.total.ops as f64;
                if ops > 0.0 && self.total.bytes / self.total.ops >= 1 << 20 {
                    let _ = write!(out, ", {:.2} CPU-s per GiB", cpu / gib);
                } else if ops > 0.0 {
                    let _ = write!(out, ", {:.0} µs CPU per op", 1e6 * cpu / ops);
                }
            }
            if let (Some(peak), Some(avg)) = (server.rss_peak_mib, server.rss_avg_mib) {
                let _ = write!(out, "; RSS peak {peak:.1} MiB, mean {avg:.1} MiB");
            }
            if let Some(hwm) = server.hwm_mib {
                let _ = write!(out, " (VmHWM {hwm:.1} MiB)");
            }
            let _ = writeln!(out);
        }
        for e in &self.first_errors {
            let _ = writeln!(out, "error: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencyMs;

    fn summary(ops: u64) -> OpSummary {
        OpSummary {
            ops,
            bytes: ops << 20,
            ops_per_sec: ops as f64,
            mib_per_sec: ops as f64,
            latency_ms: LatencyMs {
                p50: 1.0,
                p90: 2.0,
                p99: 3.0,
                max: 4.0,
                mean: 1.5,
            },
            errors: 0,
            verify_failures: 0,
        }
    }

    fn result() -> RunResult {
        RunResult {
            tool: "cairn-bench",
            version: "0.1.0",
            label: Some("x-r1".into()),
            unix_ms: 1,
            workload: "put",
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            region: "us-east-1".into(),
            payload: "unsigned",
            kind: Some("random"),
            size: Some(4096),
            concurrency: 4,
            seconds: 1.0,
            total: summary(10),
            by_op: BTreeMap::from([("PUT", summary(10))]),
            list: None,
            client: ClientUsage {
                cpu_seconds: Some(0.5),
                threads: 2,
            },
            host: HostUsage {
                cpus: 2,
                busy_pct: Some(90.0),
            },
            server: Some(ServerUsage {
                pid: 7,
                cpu_seconds: Some(1.0),
                rss_peak_mib: Some(100.0),
                rss_avg_mib: Some(90.0),
                hwm_mib: Some(120.0),
            }),
            first_errors: vec![],
        }
    }

    /// The documented field names are a contract: scripts read them.
    #[test]
    fn json_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_str(&result().json_line().unwrap()).unwrap();
        for field in [
            "workload",
            "size",
            "concurrency",
            "ops",
            "bytes",
            "seconds",
            "ops_per_sec",
            "mib_per_sec",
            "errors",
            "verify_failures",
            "label",
        ] {
            assert!(!v[field].is_null(), "{field} missing in {v}");
        }
        for p in ["p50", "p90", "p99", "max"] {
            assert!(v["latency_ms"][p].is_f64(), "latency_ms.{p}");
        }
        assert_eq!(v["server"]["cpu_seconds"], 1.0);
        assert_eq!(v["server"]["rss_peak_mib"], 100.0);
        assert_eq!(v["by_op"]["PUT"]["ops"], 10);
        assert!(!result().json_line().unwrap().contains('\n'));
    }

    #[test]
    fn text_shows_the_table_and_usage() {
        let t = result().text();
        assert!(t.contains("PUT"), "{t}");
        assert!(t.contains("server pid 7: 1.00 CPU-s"), "{t}");
        assert!(t.contains("RSS peak 100.0 MiB"), "{t}");
        assert!(!t.contains("TOTAL"), "one class needs no total row: {t}");
    }

    #[test]
    fn mib_from_kib() {
        assert_eq!(kib_to_mib(1536), 1.5);
    }
}
