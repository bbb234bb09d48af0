//! Background maintenance of a running server: periodic garbage collection
//! and scrubbing (the same work `cairn admin gc|scrub` starts by hand).

use cairn_storage_engine::{Engine, GcOptions, ScrubOptions};
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

/// Whether this node runs the periodic scrub now: always on a single
/// node; on a cluster only the leader, so the nodes do not all rebuild the
/// same shards. (Garbage collection runs on every node: each compacts its
/// own drives.)
pub type RunsMaintenance = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// Starts the periodic tasks the settings ask for.
pub fn spawn(
    engine: Engine,
    m: Maintenance,
    runs: RunsMaintenance,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
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
