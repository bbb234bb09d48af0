//! Background maintenance of a running server: periodic garbage collection
//! and scrubbing (the same work `cairn admin gc|scrub` starts by hand),
//! lifecycle passes, and sealing metadata an older version left in
//! plaintext (once).

use cairn_storage_engine::{Engine, GcOptions, LifecyclePassOptions, ScrubOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Maintenance;

/// The garbage-collection options the settings give.
pub fn gc_options(m: &Maintenance) -> GcOptions {
    GcOptions {
        grace: m.gc_grace,
        upload_max_age: m.upload_expiry,
        segment_settle: m.gc_settle,
        ..GcOptions::default()
    }
}

/// Waits `period`, or returns `false` as soon as `stop` fires.
async fn wait(period: std::time::Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(period) => true,
        _ = stop.changed() => false,
    }
}

/// Whether this node runs the periodic scrub and lifecycle passes now:
/// always on a single node; on a cluster only the leader, so the nodes do
/// not all rebuild the same shards or expire the same versions. (Garbage
/// collection runs on every node: each compacts its own drives.)
pub type RunsMaintenance = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// Starts the periodic tasks the settings ask for.
pub fn spawn(
    engine: Engine,
    m: Maintenance,
    runs: RunsMaintenance,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    {
        // Once, soon after start, where scrubs run (a cluster's leader; its
        // writes reach every node), retried until done: metadata an older
        // version stored in plaintext is sealed, and KMS re-wrap passes a
        // restart cut short are run again.
        let (engine, mut stop, runs) = (engine.clone(), stop.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let mut next = std::time::Duration::from_secs(1);
            while wait(next, &mut stop).await {
                next = std::time::Duration::from_secs(60);
                // Every node checks its own store (and compacts it once
                // nothing is left); only the leader rewrites.
                let leads = runs();
                let stopping = stop.clone();
                let runs = runs.clone();
                let keep_going = move || !*stopping.borrow() && (!leads || runs());
                match engine.seal_plaintext_metadata(leads, keep_going.clone()).await {
                    Ok(report) if report.complete => {
                        if report.sealed > 0 {
                            tracing::info!(?report, "metadata stored in plaintext by an older version is now sealed");
                        }
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "sealing plaintext metadata failed; retrying in a minute");
                        continue;
                    }
                }
                // KMS re-wrap passes a restart cut short (or that never ran):
                // where maintenance runs.
                if !leads {
                    return;
                }
                match engine.resume_kms_rewraps(&keep_going).await {
                    Ok(_) if keep_going() => return,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "resuming KMS key re-wraps failed; retrying in a minute"),
                }
            }
        }));
    }
    if let Some(period) = m.gc_interval {
        let (engine, mut stop) = (engine.clone(), stop.clone());
        let opts = gc_options(&m);
        tasks.push(tokio::spawn(async move {
            while wait(period, &mut stop).await {
                if let Err(e) = engine.collect_garbage(opts).await {
                    tracing::error!(error = %e, "background garbage collection failed");
                }
            }
        }));
    }
    if let Some(period) = m.lifecycle_interval {
        let (engine, mut stop, runs) = (engine.clone(), stop.clone(), runs.clone());
        let per_sec = m.lifecycle_actions_per_sec;
        tasks.push(tokio::spawn(async move {
            // The first pass soon after start: one cut short by a crash or
            // a restart is finished then, not an interval later.
            let mut next = period.min(std::time::Duration::from_secs(60));
            while wait(next, &mut stop).await {
                next = period;
                if !runs() {
                    continue;
                }
                let opts = LifecyclePassOptions {
                    now_ms: cairn_storage_engine::now_ms(),
                    actions_per_sec: per_sec,
                };
                let stopping = stop.clone();
                let runs = runs.clone();
                let keep_going = move || !*stopping.borrow() && runs();
                let pass = engine.run_lifecycle_pass(opts, &keep_going);
                tokio::select! {
                    r = pass => match r {
                        Ok(report) if report.buckets > 0 => {
                            tracing::info!(?report, "lifecycle pass finished");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "lifecycle pass failed"),
                    },
                    _ = stop.changed() => return,
                }
            }
        }));
    }
    if let Some(period) = m.scrub_interval {
        let mut stop = stop.clone();
        let opts = ScrubOptions {
            bytes_per_sec: m.scrub_bytes_per_sec,
        };
        tasks.push(tokio::spawn(async move {
            while wait(period, &mut stop).await {
                if !runs() {
                    continue;
                }
                let scrub = engine.scrub(opts);
                tokio::select! {
                    r = scrub => if let Err(e) = r {
                        tracing::error!(error = %e, "background scrub failed");
                    },
                    _ = stop.changed() => return,
                }
            }
        }));
    }
    tasks
}
