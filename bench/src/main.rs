//! `cairn-bench`: an S3 load generator for Cairn and any other S3 endpoint.
//!
//! It runs one workload (put, get, mixed, list, iot, delete) with a fixed
//! number of requests in flight, verifies every GET body against the
//! content it must have, and reports throughput, latency percentiles, its
//! own CPU use and, given `--server-pid`, the server's CPU time and memory
//! (text by default, one JSON line with `--json`). See `bench/README.md`.
//!
//! This file owns the command line and the order of a run: check the
//! bucket, find or write the objects a workload needs (untimed), measure,
//! report. It never links any Cairn crate: it talks S3 over HTTP only, so
//! it measures what any client would see.
//!
//! Exit status: 0 = every request succeeded and verified, 3 = some failed
//! or returned wrong data, 1 = the run could not be done, 2 = bad usage.

mod connect;
mod content;
mod procfs;
mod report;
mod s3;
mod stats;
mod units;
mod workload;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};

use content::DataKind;
use report::{ClientUsage, HostUsage, ListResult, RunResult, ServerUsage};
use s3::{ClientConfig, Payload, S3Client};
use stats::{Recorder, round3};
use workload::{Budget, Mix, Plan, Run};

/// The measured phase of get, mixed, list and iot without --duration or --ops.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Objects a put writes without -n, --duration or --ops.
const DEFAULT_PUT_OBJECTS: u64 = 1000;
/// Keys a list run makes sure exist without -n.
const DEFAULT_LIST_KEYS: u64 = 10_000;
/// How often a run on a terminal reports how far it is.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// PUT <prefix>obj-00000000, obj-00000001, ... each once.
    Put,
    /// Random GETs of existing objects, every body verified.
    Get,
    /// GETs of existing objects with PUTs and DELETEs of new ones (--mix).
    Mixed,
    /// Full ListObjectsV2 listings of the prefix, page by page (ops = pages).
    List,
    /// Small JSON sensor readings (200 B - 4 KiB) from many devices.
    Iot,
    /// DELETE every object under the prefix.
    Delete,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::List => "list",
            Workload::Iot => "iot",
            Workload::Delete => "delete",
        }
    }
}

#[derive(Clone, Debug, Parser)]
#[command(
    name = "cairn-bench",
    version,
    about = "S3 load generator: put/get/mixed/list/iot/delete with verified reads, \
             latency percentiles and JSON results",
    after_help = "Examples:\n  \
      cairn-bench put -s 16MiB -n 64 -c 4\n  \
      cairn-bench get -s 16MiB -c 4 -d 10s\n  \
      cairn-bench mixed -s 64KiB -n 1000 --mix 70:20:10 -c 16\n  \
      cairn-bench list -n 10000 -c 1\n  \
      cairn-bench iot -c 64 -d 10s --json\n\n\
      Exit status: 0 all requests succeeded and verified, 3 some failed or \
      returned wrong data, 1 the run could not be done."
)]
struct Args {
    /// The workload to run.
    #[arg(value_enum)]
    workload: Workload,
    /// S3 endpoint, http://host:port or https://host:port (path-style requests).
    #[arg(
        long,
        env = "CAIRN_BENCH_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint: String,
    /// PEM file of CA certificates to trust for https, besides the system's
    /// (a server with a private CA or a self-signed certificate).
    #[arg(long, env = "CAIRN_BENCH_CA_BUNDLE")]
    ca_bundle: Option<std::path::PathBuf>,
    /// SigV4 region; must be the server's.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    /// Bucket; created if it does not exist.
    #[arg(short = 'b', long, default_value = "cairn-bench")]
    bucket: String,
    /// Do not check for or create the bucket.
    #[arg(long)]
    no_create_bucket: bool,
    /// Key prefix [default: cairn-bench/<kind>-<size>/; list: cairn-bench/list/; iot: iot/]
    #[arg(long)]
    prefix: Option<String>,
    /// Object size: 200B, 4KiB, 16MiB, 1GiB, ...
    #[arg(short = 's', long, default_value = "4KiB", value_parser = units::parse_size)]
    size: u64,
    /// Object content; get and mixed must use the kind (and seed) of the put.
    #[arg(short = 'k', long, value_enum, default_value_t = DataKind::Random)]
    kind: DataKind,
    /// put: objects to write [default: 1000, no limit with --duration].
    /// get/mixed: the working set is obj-0..N-1, written first (untimed)
    /// where missing [default: every object under the prefix].
    /// list: keys that must exist, written first where missing [default: 10000].
    /// iot: readings to write.
    #[arg(short = 'n', long)]
    objects: Option<u64>,
    /// Length of the measured phase: 10s, 2m, ... [default: 10s for
    /// get/mixed/list/iot unless --ops is given; none for put/delete]
    #[arg(short = 'd', long, value_parser = units::parse_duration)]
    duration: Option<Duration>,
    /// At most this many operations in the measured phase.
    #[arg(long)]
    ops: Option<u64>,
    /// Requests in flight.
    #[arg(short = 'c', long, default_value_t = 16)]
    concurrency: usize,
    /// x-amz-content-sha256 of PUTs: UNSIGNED-PAYLOAD or the body's SHA-256.
    #[arg(long, value_enum, default_value_t = Payload::Unsigned)]
    payload: Payload,
    /// mixed: GET:PUT:DELETE percentages (DELETEs remove objects the run PUT).
    #[arg(long, default_value = "70:20:10", value_parser = workload::parse_mix)]
    mix: Mix,
    /// list: max-keys of each ListObjectsV2 page (1-1000).
    #[arg(long, default_value_t = 1000)]
    page_size: u32,
    /// iot: number of devices sending readings.
    #[arg(long, default_value_t = 1000)]
    devices: u64,
    /// Seed of the generated content; get must use the seed of the put.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also report this process's CPU time and RSS (Linux /proc), e.g. the
    /// server's on the same machine.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON line (the result) instead of the text summary.
    #[arg(long)]
    json: bool,
    /// Free text copied into the JSON result.
    #[arg(long)]
    label: Option<String>,
    /// Worker threads [default: one per CPU].
    #[arg(long)]
    threads: Option<usize>,
    /// A request with no complete response in this time fails.
    #[arg(long, default_value = "5m", value_parser = units::parse_duration)]
    request_timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(cpus).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn-bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args, threads)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(3),
        Err(e) => {
            eprintln!("cairn-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn default_prefix(args: &Args) -> String {
    match args.workload {
        Workload::Iot => "iot/".to_owned(),
        Workload::List => "cairn-bench/list/".to_owned(),
        _ => format!(
            "cairn-bench/{}-{}/",
            args.kind.name(),
            units::size_label(args.size)
        ),
    }
}

/// Runs the workload; returns the number of failed requests and reads.
async fn run(args: Args, threads: usize) -> Result<u64, String> {
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if !(1..=1000).contains(&args.page_size) {
        return Err("--page-size must be between 1 and 1000".into());
    }
    if let Some(pid) = args.server_pid
        && procfs::process_cpu_seconds(pid).is_none()
    {
        return Err(format!(
            "--server-pid {pid}: no such process (or /proc/{pid}/stat is unreadable)"
        ));
    }
    let client = S3Client::new(&ClientConfig {
        endpoint: args.endpoint.clone(),
        bucket: args.bucket.clone(),
        region: args.region.clone(),
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        payload: args.payload,
        connections_max: args.concurrency,
        request_timeout: args.request_timeout,
        ca_bundle: args.ca_bundle.clone(),
    })?;
    if !args.no_create_bucket && client.ensure_bucket().await? {
        eprintln!("cairn-bench: created bucket {}", args.bucket);
    }
    let prefix = args.prefix.clone().unwrap_or_else(|| default_prefix(&args));
    let run = Arc::new(Run {
        client,
        recorder: Recorder::default(),
        prefix,
        kind: args.kind,
        seed: args.seed,
        size: args.size,
        keys_listed: AtomicU64::new(0),
        listings: AtomicU64::new(0),
    });

    let plan = prepare(&args, &run).await?;
    let (duration, ops_max) = limits(&args, &plan);

    // The measured phase.
    let probe = UsageProbe::start(args.server_pid);
    let started = Instant::now();
    let budget = Arc::new(Budget::new(duration.map(|d| started + d), ops_max));
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(report_progress(run.clone(), started)));
    workload::execute(run.clone(), budget, plan.clone(), args.concurrency).await;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
    }
    let (client_cpu, host_busy, server) = probe.finish();

    let (rows, total) = run.recorder.summarize(seconds);
    let list = matches!(plan, Plan::List { .. }).then(|| {
        let keys = run.keys_listed.load(Ordering::Relaxed);
        ListResult {
            keys,
            keys_per_sec: if seconds > 0.0 {
                round3(keys as f64 / seconds)
            } else {
                0.0
            },
            listings: run.listings.load(Ordering::Relaxed),
        }
    });
    let result = RunResult {
        tool: "cairn-bench",
        version: env!("CARGO_PKG_VERSION"),
        label: args.label.clone(),
        unix_ms: unix_ms(),
        workload: args.workload.name(),
        endpoint: args.endpoint.clone(),
        bucket: args.bucket.clone(),
        prefix: run.prefix.clone(),
        region: args.region.clone(),
        payload: args.payload.name(),
        kind: match args.workload {
            Workload::Put | Workload::Get | Workload::Mixed => Some(args.kind.name()),
            Workload::Iot => Some("iot-json"),
            Workload::List | Workload::Delete => None,
        },
        size: matches!(
            args.workload,
            Workload::Put | Workload::Get | Workload::Mixed
        )
        .then_some(args.size),
        concurrency: args.concurrency,
        seconds: round3(seconds),
        total,
        by_op: rows.into_iter().map(|(op, s)| (op.name(), s)).collect(),
        list,
        client: ClientUsage {
            cpu_seconds: client_cpu,
            threads,
        },
        host: HostUsage {
            cpus: cpus(),
            busy_pct: host_busy,
        },
        server,
        first_errors: run.recorder.first_errors(),
    };
    if args.json {
        println!("{}", result.json_line()?);
        for e in &result.first_errors {
            eprintln!("cairn-bench: {e}");
        }
    } else {
        print!("{}", result.text());
    }
    Ok(run.recorder.failures())
}

/// Prints a line to stderr every PROGRESS_INTERVAL while a run lasts (only
/// on a terminal: scripts read the result, not this).
async fn report_progress(run: Arc<Run>, started: Instant) {
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + PROGRESS_INTERVAL,
        PROGRESS_INTERVAL,
    );
    loop {
        ticks.tick().await;
        let seconds = started.elapsed().as_secs_f64();
        let (_, total) = run.recorder.summarize(seconds);
        eprintln!(
            "cairn-bench: {seconds:.0} s: {} ops, {:.1} ops/s, {:.1} MiB/s, p99 {:.2} ms, {} failed",
            total.ops,
            total.ops_per_sec,
            total.mib_per_sec,
            total.latency_ms.p99,
            total.errors + total.verify_failures
        );
    }
}

/// The measured phase's deadline and operation count for `plan`.
fn limits(args: &Args, plan: &Plan) -> (Option<Duration>, u64) {
    let ops_cap = args.ops.unwrap_or(u64::MAX);
    // Reads, listings and iot run for DEFAULT_DURATION unless told to stop
    // after a number of operations.
    let timed_unless_counted = |counted: bool| {
        args.duration.or(if counted {
            None
        } else {
            Some(DEFAULT_DURATION)
        })
    };
    match plan {
        Plan::Put => {
            let objects = match (args.objects, args.duration, args.ops) {
                (Some(n), _, _) => n,
                (None, None, None) => DEFAULT_PUT_OBJECTS,
                (None, _, _) => u64::MAX,
            };
            (args.duration, objects.min(ops_cap))
        }
        Plan::Delete { keys } => (args.duration, (keys.len() as u64).min(ops_cap)),
        Plan::Iot { .. } => {
            let cap = args.objects.unwrap_or(u64::MAX).min(ops_cap);
            (timed_unless_counted(cap != u64::MAX), cap)
        }
        Plan::Get { .. } | Plan::Mixed { .. } | Plan::List { .. } => {
            (timed_unless_counted(args.ops.is_some()), ops_cap)
        }
    }
}

/// CPU and memory readings taken around the measured phase.
struct UsageProbe {
    server_pid: Option<u32>,
    client_cpu: Option<f64>,
    host: Option<(u64, u64)>,
    server_cpu: Option<f64>,
    sampler: Option<procfs::RssSampler>,
}

impl UsageProbe {
    fn start(server_pid: Option<u32>) -> Self {
        UsageProbe {
            server_pid,
            client_cpu: procfs::own_cpu_seconds(),
            host: procfs::host_jiffies(),
            server_cpu: server_pid.and_then(procfs::process_cpu_seconds),
            sampler: server_pid.map(procfs::RssSampler::start),
        }
    }

    /// (client CPU seconds, host busy %, server usage) since `start`.
    fn finish(self) -> (Option<f64>, Option<f64>, Option<ServerUsage>) {
        let rss = self
            .sampler
            .map(procfs::RssSampler::finish)
            .filter(|r| r.samples > 0);
        let client_cpu = procfs::own_cpu_seconds()
            .zip(self.client_cpu)
            .map(|(after, before)| round3(after - before));
        let host_busy =
            procfs::host_jiffies()
                .zip(self.host)
                .and_then(|((busy1, total1), (busy0, total0))| {
                    (total1 > total0).then(|| {
                        round3(
                            100.0 * busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64,
                        )
                    })
                });
        let server = self.server_pid.map(|pid| ServerUsage {
            pid,
            cpu_seconds: procfs::process_cpu_seconds(pid)
                .zip(self.server_cpu)
                .map(|(after, before)| round3(after - before)),
            rss_peak_mib: rss.map(|r| report::kib_to_mib(r.peak_kib)),
            rss_avg_mib: rss.map(|r| round3(r.mean_kib / 1024.0)),
            hwm_mib: procfs::process_memory_kib(pid).map(|(_, hwm)| report::kib_to_mib(hwm)),
        });
        (client_cpu, host_busy, server)
    }
}

/// Finds or writes (untimed) what the workload needs and returns its plan.
async fn prepare(args: &Args, run: &Arc<Run>) -> Result<Plan, String> {
    let prefix = run.prefix.as_str();
    let listing_failed = |e: String| format!("listing {prefix} before the run: {e}");
    match args.workload {
        Workload::Put => Ok(Plan::Put),
        Workload::Iot => Ok(Plan::Iot {
            devices: args.devices.max(1),
        }),
        Workload::Delete => {
            let keys = run.client.list_all(prefix).await.map_err(listing_failed)?;
            Ok(Plan::Delete {
                keys: Arc::new(keys.into_iter().map(|(key, _)| key).collect()),
            })
        }
        Workload::Get | Workload::Mixed => {
            let existing = run.client.list_all(prefix).await.map_err(listing_failed)?;
            let keys = match args.objects {
                None => existing,
                Some(n) => {
                    let sized: HashSet<String> = existing
                        .into_iter()
                        .filter(|(_, size)| *size == args.size)
                        .map(|(key, _)| key)
                        .collect();
                    let missing: Vec<u64> = (0..n)
                        .filter(|&i| !sized.contains(&workload::object_key(prefix, i)))
                        .collect();
                    write_missing(args, run, missing).await?;
                    (0..n)
                        .map(|i| (workload::object_key(prefix, i), args.size))
                        .collect()
                }
            };
            if keys.is_empty() {
                return Err(format!(
                    "no objects under {prefix}: run `put` first (same --size, --kind, --seed) \
                     or pass -n N to write N objects before the run"
                ));
            }
            let keys = Arc::new(keys);
            Ok(match args.workload {
                Workload::Get => Plan::Get { keys },
                _ => Plan::Mixed {
                    keys,
                    mix: args.mix,
                },
            })
        }
        Workload::List => {
            let n = args.objects.unwrap_or(DEFAULT_LIST_KEYS);
            let existing = run.client.list_all(prefix).await.map_err(listing_failed)?;
            let present: HashSet<&str> = existing.iter().map(|(k, _)| k.as_str()).collect();
            let missing: Vec<u64> = (0..n)
                .filter(|&i| !present.contains(workload::object_key(prefix, i).as_str()))
                .collect();
            let expected_keys = (existing.len() + missing.len()) as u64;
            drop(present);
            drop(existing);
            write_missing(args, run, missing).await?;
            Ok(Plan::List {
                expected_keys,
                page_size: args.page_size,
            })
        }
    }
}

async fn write_missing(args: &Args, run: &Arc<Run>, missing: Vec<u64>) -> Result<(), String> {
    if missing.is_empty() {
        return Ok(());
    }
    let count = missing.len();
    let took = workload::populate(run.clone(), missing, args.concurrency)
        .await
        .map_err(|e| format!("writing the objects the run needs: {e}"))?;
    eprintln!(
        "cairn-bench: wrote {count} objects of {} under {} first ({:.1} s, untimed)",
        units::size_label(args.size),
        run.prefix,
        took.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        let mut argv = vec!["cairn-bench", "--access-key", "a", "--secret-key", "s"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn command_line_and_default_prefixes() {
        let a = parse(&["get", "-s", "16MiB", "-c", "4", "-d", "15s", "-k", "sensor"]);
        assert_eq!(a.workload, Workload::Get);
        assert_eq!(a.size, 16 << 20);
        assert_eq!(a.duration, Some(Duration::from_secs(15)));
        assert_eq!(a.kind, DataKind::Compressible);
        assert_eq!(default_prefix(&a), "cairn-bench/compressible-16MiB/");
        assert_eq!(default_prefix(&parse(&["iot"])), "iot/");
        assert_eq!(default_prefix(&parse(&["list"])), "cairn-bench/list/");
        let m = parse(&["mixed", "--mix", "50:25:25", "--payload", "signed"]);
        assert_eq!(m.mix.delete, 25);
        assert_eq!(m.payload, Payload::Signed);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let base = ["cairn-bench", "--access-key", "a", "--secret-key", "s"];
        for bad in [
            &["put", "-s", "4 lightyears"][..],
            &["mixed", "--mix", "90:20:0"],
            &["get", "-d", "soon"],
            &["fly"],
        ] {
            let argv: Vec<&str> = base.iter().chain(bad).copied().collect();
            assert!(Args::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }
}
