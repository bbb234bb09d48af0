//! The workloads: which requests the workers send, in what order, and how
//! each outcome is recorded. Every workload runs `concurrency` workers that
//! claim operations from one shared [`Budget`] (a count, a deadline or
//! both), so a run ends on time with at most one request per worker in
//! flight past the deadline.
//!
//! Workers hold no object data: PUT bodies are generated while they are
//! sent and GET bodies are verified while they arrive (`content.rs`). The
//! only per-key state is the working set of keys (names and sizes) that
//! `get`, `mixed` and `delete` choose from.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::content::{self, Content, DataKind, Rng};
use crate::s3::S3Client;
use crate::stats::{Op, Recorder};

/// Which workload, with its own parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// PUT `<prefix>obj-NNNNNNNN` for indices `0..`, each once.
    Put,
    /// Random verified GETs over the working set.
    Get { keys: Arc<Vec<(String, u64)>> },
    /// GETs of the working set, PUTs of new keys and DELETEs of those new
    /// keys, in the given percentages.
    Mixed {
        keys: Arc<Vec<(String, u64)>>,
        mix: Mix,
    },
    /// Complete ListObjectsV2 listings of the prefix, again and again; each
    /// must return `expected_keys`.
    List { expected_keys: u64, page_size: u32 },
    /// Small JSON readings PUT under `<prefix>device-NNNNN/<ms>-<seq>.json`.
    Iot { devices: u64 },
    /// DELETE every key given.
    Delete { keys: Arc<Vec<String>> },
}

/// Shares of GET, PUT and DELETE in a `mixed` run, in percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub get: u32,
    pub put: u32,
    pub delete: u32,
}

/// Parses `GET:PUT:DELETE` percentages such as `70:20:10` (must add to 100).
pub fn parse_mix(text: &str) -> Result<Mix, String> {
    let parts: Vec<u32> = text
        .split(':')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not GET:PUT:DELETE percentages such as 70:20:10"))?;
    let [get, put, delete] = parts[..] else {
        return Err(format!(
            "'{text}' needs three numbers, GET:PUT:DELETE (e.g. 70:20:10)"
        ));
    };
    if get + put + delete != 100 {
        return Err(format!(
            "'{text}' adds up to {}, not 100",
            get + put + delete
        ));
    }
    Ok(Mix { get, put, delete })
}

/// The operations a run may start: up to `ops_max` of them, none after the
/// deadline.
#[derive(Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    ops_max: u64,
    claimed: AtomicU64,
}

impl Budget {
    pub fn new(deadline: Option<Instant>, ops_max: u64) -> Self {
        Budget {
            deadline,
            ops_max,
            claimed: AtomicU64::new(0),
        }
    }

    /// The number of the next operation, or None when the budget is spent.
    pub fn claim(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.claimed.fetch_add(1, Ordering::Relaxed);
        (n < self.ops_max).then_some(n)
    }
}

/// What all workers of a run share (the populating phase too).
#[derive(Debug)]
pub struct Run {
    pub client: S3Client,
    pub recorder: Recorder,
    pub prefix: String,
    pub kind: DataKind,
    pub seed: u64,
    pub size: u64,
    /// Keys returned by complete listings (the `list` workload).
    pub keys_listed: AtomicU64,
    /// Complete listings (the `list` workload).
    pub listings: AtomicU64,
}

/// The key of object number `index` under `prefix`.
pub fn object_key(prefix: &str, index: u64) -> String {
    format!("{prefix}obj-{index:08}")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `plan` with `concurrency` workers until `budget` is spent.
pub async fn execute(run: Arc<Run>, budget: Arc<Budget>, plan: Plan, concurrency: usize) {
    // Keys written by `mixed`, oldest first, for its DELETEs to take.
    let fresh: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let next_fresh = Arc::new(AtomicU64::new(0));
    let run_id = unix_ms();
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let (run, budget, plan) = (run.clone(), budget.clone(), plan.clone());
        let (fresh, next_fresh) = (fresh.clone(), next_fresh.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(content::mix(run.seed, worker as u64 + 1));
            let (run, budget) = (&*run, &*budget);
            match plan {
                Plan::Put => put_worker(run, budget).await,
                Plan::Get { keys } => get_worker(run, budget, &keys, &mut rng).await,
                Plan::Mixed { keys, mix } => {
                    let fresh = Fresh {
                        queue: &fresh,
                        next: &next_fresh,
                        run_id,
                    };
                    mixed_worker(run, budget, &keys, mix, &fresh, &mut rng).await;
                }
                Plan::List {
                    expected_keys,
                    page_size,
                } => list_worker(run, budget, expected_keys, page_size).await,
                Plan::Iot { devices } => iot_worker(run, budget, devices, &mut rng).await,
                Plan::Delete { keys } => delete_worker(run, budget, &keys).await,
            }
        }));
    }
    for worker in workers {
        if let Err(e) = worker.await {
            run.recorder
                .error(Op::Put, format!("a worker stopped unexpectedly: {e}"));
        }
    }
}

async fn put_one(run: &Run, key: &str, content: Content) {
    let started = Instant::now();
    match run.client.put_content(key, content).await {
        Ok(()) => run.recorder.ok(Op::Put, started.elapsed(), content.len()),
        Err(e) => run.recorder.error(Op::Put, format!("{key}: {e}")),
    }
}

async fn put_worker(run: &Run, budget: &Budget) {
    while let Some(index) = budget.claim() {
        let key = object_key(&run.prefix, index);
        let content = Content::for_key(run.kind, run.seed, &key, run.size);
        put_one(run, &key, content).await;
    }
}

async fn get_one(run: &Run, key: &str, size: u64) {
    let content = Content::for_key(run.kind, run.seed, key, size);
    let started = Instant::now();
    match run.client.get_verified(key, content).await {
        Ok(got) => match got.mismatch {
            None => run.recorder.ok(Op::Get, started.elapsed(), got.bytes),
            Some(m) => run.recorder.verify_failure(
                Op::Get,
                format!("{key}: {m} (written with another --kind or --seed?)"),
            ),
        },
        Err(e) => run.recorder.error(Op::Get, format!("{key}: {e}")),
    }
}

async fn get_worker(run: &Run, budget: &Budget, keys: &[(String, u64)], rng: &mut Rng) {
    while budget.claim().is_some() {
        let (key, size) = &keys[rng.below(keys.len() as u64) as usize];
        get_one(run, key, *size).await;
    }
}

/// The new keys of a `mixed` run: named once, deleted at most once.
struct Fresh<'a> {
    queue: &'a Mutex<VecDeque<String>>,
    next: &'a AtomicU64,
    run_id: u64,
}

impl Fresh<'_> {
    fn name(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}new-{}-{n:08}", self.run_id)
    }

    fn written(&self, key: String) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(key);
        }
    }

    fn take(&self) -> Option<String> {
        self.queue.lock().ok()?.pop_front()
    }
}

/// GETs only read the working set and DELETEs only remove keys this run
/// wrote, so no request can race another into a 404. A DELETE with nothing
/// written yet to delete becomes a PUT.
async fn mixed_worker(
    run: &Run,
    budget: &Budget,
    keys: &[(String, u64)],
    mix: Mix,
    fresh: &Fresh<'_>,
    rng: &mut Rng,
) {
    while budget.claim().is_some() {
        let dice = rng.below(100) as u32;
        if dice < mix.get {
            let (key, size) = &keys[rng.below(keys.len() as u64) as usize];
            get_one(run, key, *size).await;
            continue;
        }
        if dice >= mix.get + mix.put
            && let Some(key) = fresh.take()
        {
            let started = Instant::now();
            match run.client.delete(&key).await {
                Ok(()) => run.recorder.ok(Op::Delete, started.elapsed(), 0),
                Err(e) => run.recorder.error(Op::Delete, format!("{key}: {e}")),
            }
            continue;
        }
        let key = fresh.name(&run.prefix);
        let content = Content::for_key(run.kind, run.seed, &key, run.size);
        let started = Instant::now();
        match run.client.put_content(&key, content).await {
            Ok(()) => {
                run.recorder.ok(Op::Put, started.elapsed(), content.len());
                fresh.written(key);
            }
            Err(e) => run.recorder.error(Op::Put, format!("{key}: {e}")),
        }
    }
}

/// One op is one page. A complete listing must return `expected_keys`.
async fn list_worker(run: &Run, budget: &Budget, expected_keys: u64, page_size: u32) {
    'listings: loop {
        let mut token: Option<String> = None;
        let mut seen = 0u64;
        loop {
            if budget.claim().is_none() {
                break 'listings;
            }
            let started = Instant::now();
            match run
                .client
                .list_page(&run.prefix, token.as_deref(), page_size)
                .await
            {
                Ok(page) => {
                    run.recorder.ok(Op::List, started.elapsed(), 0);
                    seen += page.objects.len() as u64;
                    token = page.next_token;
                    if token.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    run.recorder.error(Op::List, e);
                    continue 'listings;
                }
            }
        }
        if seen == expected_keys {
            run.keys_listed.fetch_add(seen, Ordering::Relaxed);
            run.listings.fetch_add(1, Ordering::Relaxed);
        } else {
            run.recorder.verify_failure(
                Op::List,
                format!("a listing returned {seen} keys, expected {expected_keys}"),
            );
        }
    }
}

async fn iot_worker(run: &Run, budget: &Budget, devices: u64, rng: &mut Rng) {
    while let Some(seq) = budget.claim() {
        let device = rng.below(devices.max(1));
        let now = unix_ms();
        let key = format!("{}device-{device:05}/{now}-{seq:08}.json", run.prefix);
        let body = content::iot_reading(run.seed, &key, device, now);
        let len = body.len() as u64;
        let started = Instant::now();
        match run.client.put_bytes(&key, body).await {
            Ok(()) => run.recorder.ok(Op::Put, started.elapsed(), len),
            Err(e) => run.recorder.error(Op::Put, format!("{key}: {e}")),
        }
    }
}

async fn delete_worker(run: &Run, budget: &Budget, keys: &[String]) {
    while let Some(i) = budget.claim() {
        let Some(key) = usize::try_from(i).ok().and_then(|i| keys.get(i)) else {
            return;
        };
        let started = Instant::now();
        match run.client.delete(key).await {
            Ok(()) => run.recorder.ok(Op::Delete, started.elapsed(), 0),
            Err(e) => run.recorder.error(Op::Delete, format!("{key}: {e}")),
        }
    }
}

/// Writes objects `indices` (untimed) before a workload that needs them,
/// with `concurrency` requests in flight. Returns the time it took, or the
/// first failure (which stops the other workers).
pub async fn populate(
    run: Arc<Run>,
    indices: Vec<u64>,
    concurrency: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    let indices = Arc::new(indices);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers: Vec<tokio::task::JoinHandle<Result<(), String>>> =
        Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (run, indices, next) = (run.clone(), indices.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = usize::try_from(i).ok().and_then(|i| indices.get(i)) else {
                    return Ok(());
                };
                let key = object_key(&run.prefix, index);
                let content = Content::for_key(run.kind, run.seed, &key, run.size);
                run.client.put_content(&key, content).await.map_err(|e| {
                    // Stop the other workers too: one failure fails the run.
                    next.store(u64::MAX / 2, Ordering::Relaxed);
                    format!("{key}: {e}")
                })?;
            }
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|e| format!("a worker stopped unexpectedly: {e}"))??;
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_must_add_up() {
        assert_eq!(
            parse_mix("70:20:10"),
            Ok(Mix {
                get: 70,
                put: 20,
                delete: 10
            })
        );
        assert!(parse_mix("100:0:0").is_ok());
        assert!(parse_mix("70:20").is_err());
        assert!(parse_mix("70:20:20").is_err());
        assert!(parse_mix("a:b:c").is_err());
    }

    #[test]
    fn budgets_stop_at_the_count_or_the_deadline() {
        let b = Budget::new(None, 3);
        let claimed: Vec<_> = std::iter::from_fn(|| b.claim()).collect();
        assert_eq!(claimed, [0, 1, 2]);
        assert_eq!(b.claim(), None);

        let past = Budget::new(Some(Instant::now()), u64::MAX);
        assert_eq!(past.claim(), None);
    }

    #[test]
    fn object_keys_sort_by_index() {
        assert_eq!(object_key("p/", 42), "p/obj-00000042");
        assert!(object_key("", 9) < object_key("", 10));
    }
}
