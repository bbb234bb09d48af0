//! `cairn server`: opens the data directory, the master key and the engine,
//! resolves credentials, and serves S3 and the admin endpoints until
//! SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use cairn_s3_api::{KeyRing, S3Config, S3Service};
use cairn_storage_engine::{AccessKeyRecord, ChunkerConfig, Engine, EngineConfig};
use tokio::net::TcpListener;

use crate::config::ServerConfig;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE_SECS: u64 = 30;
/// How often free malloc memory goes back to the kernel (src/malloc.rs).
const MALLOC_TRIM_PERIOD_SECS: u64 = 5;

/// The file in the data directory that a running server holds locked
/// (`flock`) and that names its pid.
const LOCK_FILE: &str = "cairn.pid";

pub(crate) fn create_private_dir(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => format!(
                "cannot create the directory {}: it, or a directory above it, is a file",
                path.display()
            ),
            _ => format!("cannot create {}: {e}", path.display()),
        })
}

/// Creates the data directory (mode 0700) unless it exists; refuses a path
/// that is a file.
fn prepare_data_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(format!(
            "the data directory {} is a file, not a directory: give --data-dir (CAIRN_DATA_DIR) a directory; it is created if missing",
            dir.display()
        )),
        _ => create_private_dir(dir),
    }
}

/// Why the data directory could not be locked.
pub(crate) enum LockError {
    /// Another process (a cairn server, or a master key rotation) holds it;
    /// `who` names its pid if it wrote it yet.
    InUse { who: String },
    /// Anything else, as a message.
    Failed(String),
}

/// Locks the data directory for this process: an exclusive `flock` on
/// `<dir>/cairn.pid`, which then holds this process id. The kernel drops the
/// lock when the process ends, however it ends. A second server on the same
/// directory is refused here, naming the first one's pid, before it opens
/// the master key or the metadata store; so is a master key rotation while
/// a server runs (`master_key.rs`).
pub(crate) fn lock_data_dir(dir: &Path) -> Result<std::fs::File, LockError> {
    use std::io::{Read, Seek};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| LockError::Failed(format!("cannot open {}: {e}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let who = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "its pid is not known yet".to_owned(),
            };
            return Err(LockError::InUse { who });
        }
        Err(e) => {
            return Err(LockError::Failed(format!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| LockError::Failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(file)
}

/// Binds a listener; `flag` names the option that chooses its address.
pub(crate) async fn bind(addr: &str, flag: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "cannot listen on {addr}: the address is in use (another cairn server, or another program, listens there); stop that or choose another address with {flag}"
            )
        } else {
            format!("cannot listen on {addr} ({flag}): {e}")
        }
    })
}

/// An address a client can connect to for a listener bound to `bound`: the
/// loopback address for a wildcard (0.0.0.0, [::]) bind.
fn connectable(bound: SocketAddr) -> SocketAddr {
    let mut addr = bound;
    if bound.ip().is_unspecified() {
        addr.set_ip(match bound {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Start-up credentials: from the environment/config if given; else the
/// stored ones; else new ones, generated, stored sealed and printed once.
async fn resolve_credentials(
    cfg: &ServerConfig,
    engine: &Engine,
    endpoint: &str,
) -> Result<Vec<(String, String)>, String> {
    if let Some((a, s)) = &cfg.credentials {
        println!("cairn: using the access key {a} from CAIRN_ACCESS_KEY / configuration");
        return Ok(vec![(a.clone(), s.clone())]);
    }
    let stored = engine
        .access_keys()
        .map_err(|e| format!("reading stored access keys: {e}"))?;
    if let Some(first) = stored.iter().find(|k| k.record.admin) {
        println!(
            "cairn: {} stored access key(s); admin key {} (its secret was printed when it was generated)",
            stored.len(),
            first.id
        );
        return Ok(Vec::new());
    }
    let key = engine
        .create_access_key(AccessKeyRecord {
            expires_ms: None,
            name: "generated at first start".into(),
            created_ms: cairn_storage_engine::now_ms(),
            admin: true,
            grants: Vec::new(),
        })
        .await
        .map_err(|e| format!("storing generated credentials: {e}"))?;
    let (id, secret) = (key.id, key.secret);
    println!();
    println!("cairn: generated S3 credentials. They are shown only this once; keep them safe.");
    println!("  Access key: {id}");
    println!("  Secret key: {secret}");
    println!(
        "  Try:  AWS_ACCESS_KEY_ID={id} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION={} aws --endpoint-url {endpoint} s3 ls",
        cfg.region
    );
    println!();
    Ok(Vec::new())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            () = term => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub async fn run(cfg: ServerConfig) -> Result<(), String> {
    let nofile = crate::limits::raise_nofile_limit();
    // Listeners first: a server that cannot listen must not create a data
    // directory, a master key or credentials it would never serve.
    let s3_listener = bind(&cfg.listen.to_string(), "--listen").await?;
    let admin_listener = bind(&cfg.admin_listen.to_string(), "--admin-listen").await?;
    let cluster_listeners = match &cfg.cluster {
        Some(cluster) => Some(crate::cluster::bind_listeners(cluster).await?),
        None => None,
    };
    let s3_addr = s3_listener.local_addr().map_err(|e| e.to_string())?;
    let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let (tls, reloadable) = match &cfg.tls {
        Some((cert, key)) => {
            let (acceptor, reloadable) = crate::tls::acceptor(cert, key)?;
            (Some(acceptor), Some(reloadable))
        }
        None => (None, None),
    };
    prepare_data_dir(&cfg.data_dir)?;
    // Held until this function returns (the process ends soon after).
    let _data_dir_lock = lock_data_dir(&cfg.data_dir).map_err(|e| match e {
        LockError::InUse { who } => format!(
            "another cairn server is using the data directory {} ({who}): stop it first, or give this server its own --data-dir",
            cfg.data_dir.display()
        ),
        LockError::Failed(message) => message,
    })?;
    let master = crate::master_key::load_master_key(&cfg.master_key)?;
    let root = crate::master_key::open_data_root(&cfg.master_key, &master, cfg.cluster.is_none())?;
    // The master key is dropped (zeroized) as soon as it has opened the
    // root; the root is dropped once the engine holds what it derived.
    drop(master);
    let registry = prometheus::Registry::new();
    let engine_cfg = EngineConfig {
        meta_dir: cfg.data_dir.join("meta"),
        drive_dirs: cfg.drives.clone(),
        data_shards: cfg.data_shards,
        parity_shards: cfg.parity_shards,
        chunker: ChunkerConfig {
            min_size_bytes: cfg.chunk_min_bytes,
            avg_size_bytes: cfg.chunk_avg_bytes,
            max_size_bytes: cfg.chunk_max_bytes,
        },
        inline_max_bytes: cfg.inline_max_bytes,
        placement_excluded_nodes: cfg
            .cluster
            .as_ref()
            .map(|c| c.drain.clone())
            .unwrap_or_default(),
        lifecycle_day_ms: u64::try_from(cfg.maintenance.lifecycle_day.as_millis())
            .unwrap_or(u64::MAX),
        ..EngineConfig::single_dir(&cfg.data_dir)
    };
    let (engine, cluster_node) = match &cfg.cluster {
        None => {
            let engine = Engine::open(engine_cfg, &root, &registry).map_err(|e| {
                let e = e.to_string();
                if e.contains("lock file") {
                    // Another process (not a cairn server, which would hold
                    // cairn.pid) has the metadata store open.
                    format!(
                        "the metadata store in {} is in use by another process: stop it first ({e})",
                        cfg.data_dir.join("meta").display()
                    )
                } else {
                    format!("opening storage: {e}")
                }
            })?;
            drop(root);
            (engine, None)
        }
        Some(cluster) => {
            let listeners = cluster_listeners.ok_or("the cluster listeners were not bound")?;
            let (engine, node) =
                crate::cluster::open(&cfg, cluster, listeners, engine_cfg, root, &registry).await?;
            (engine, Some(node))
        }
    };
    if cluster_node.is_some() {
        // See the access keys other nodes stored before deciding to make one.
        engine
            .read_barrier()
            .await
            .map_err(|e| format!("catching up with the cluster: {e}"))?;
    }
    let fixed = resolve_credentials(
        &cfg,
        &engine,
        &format!("{scheme}://{}", connectable(s3_addr)),
    )
    .await?;
    let keys = Arc::new(
        KeyRing::new(engine.clone(), fixed).map_err(|e| format!("loading access keys: {e}"))?,
    );
    if cluster_node.is_some() {
        // Keys changed through another node reach this one's ring here.
        let keys = keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::cluster::KEY_RELOAD_PERIOD);
            loop {
                tick.tick().await;
                if let Err(e) = keys.reload().await {
                    tracing::warn!(error = %e, "reloading access keys");
                }
            }
        });
    }
    let admin_auth = crate::admin_http::AdminAuth {
        keys: keys.clone(),
        verify: Arc::new(cairn_s3_api::auth::VerifyConfig::new(cfg.region.clone())),
        region: cfg.region.clone(),
    };
    let s3 = S3Service::new(
        engine.clone(),
        keys,
        S3Config {
            region: cfg.region.clone(),
            domain: cfg.domain.clone(),
            body_idle_timeout: cfg.body_idle_timeout,
            body_min_rate_bytes_per_sec: cfg.body_min_rate_bytes_per_sec,
            body_min_rate_window: cfg.body_min_rate_window,
            public_access_block_default: if cfg.allow_public_buckets {
                cairn_s3_api::PublicAccessBlock::default()
            } else {
                cairn_s3_api::PublicAccessBlock::ALL
            },
            audit_log: cfg.audit_log.clone(),
            allow_sse_c_over_http: cfg.allow_sse_c_over_http,
            notify_targets: cfg.notify.names(),
            ..S3Config::default()
        },
        &registry,
    )?;
    crate::admin_http::register_process_metrics(&registry)?;

    crate::tls::reload_on_sighup(reloadable);
    let (mut s3_limits, mut admin_limits) = (cfg.s3_limits, cfg.admin_limits);
    let cluster_connections = if cluster_node.is_some() {
        2 * cairn_cluster::LISTENER_CONNECTIONS_MAX
    } else {
        0
    };
    if let Some(msg) = crate::limits::fit_connection_caps(
        nofile,
        crate::limits::open_fds().unwrap_or(0),
        cluster_connections,
        &mut s3_limits,
        &mut admin_limits,
    ) {
        tracing::warn!("{msg}");
    }
    tracing::info!(
        s3_connections_max = s3_limits.connections_max,
        s3_connections_per_address_max = s3_limits.connections_per_address_max,
        admin_connections_max = admin_limits.connections_max,
        admin_connections_per_address_max = admin_limits.connections_per_address_max,
        "connection limits"
    );
    let connection_metrics = cairn_s3_api::listener_limits::ConnectionMetrics::register(&registry)?;
    let s3_connections = cairn_s3_api::listener_limits::Connections::new(
        "s3",
        s3_limits,
        Some(connection_metrics.clone()),
    );
    let admin_connections = cairn_s3_api::listener_limits::Connections::new(
        "admin",
        admin_limits,
        Some(connection_metrics),
    );
    println!("cairn: S3 API listening on {scheme}://{s3_addr}");
    println!("cairn: admin (metrics, health) listening on {scheme}://{admin_addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(
        s3 = %s3_addr,
        admin = %admin_addr,
        data_dir = %cfg.data_dir.display(),
        drives = cfg.drives.len(),
        k = cfg.data_shards,
        m = cfg.parity_shards,
        "cairn started"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runs_maintenance: crate::background::RunsMaintenance = match &cluster_node {
        Some(node) => {
            let node = node.clone();
            Arc::new(move || node.is_leader())
        }
        None => Arc::new(|| true),
    };
    let notifiers = crate::notify::spawn(
        engine.clone(),
        &cfg.notify,
        cfg.region.clone(),
        &registry,
        runs_maintenance.clone(),
        stop_rx.clone(),
    )?;
    for t in &cfg.notify.targets {
        println!(
            "cairn: notification target {} as arn:cairn:sqs:{}:cairn:{}",
            t.name, cfg.region, t.name
        );
    }
    let admin = tokio::spawn(crate::admin_http::serve(
        admin_listener,
        engine.clone(),
        registry,
        crate::background::gc_options(&cfg.maintenance),
        admin_auth,
        cluster_node.clone(),
        tls.clone(),
        admin_connections,
        stop_rx.clone(),
    ));
    let maintenance = crate::background::spawn(
        engine.clone(),
        cfg.maintenance,
        runs_maintenance,
        stop_rx.clone(),
    );
    let trimmer = tokio::spawn(crate::malloc::trim_every(
        std::time::Duration::from_secs(MALLOC_TRIM_PERIOD_SECS),
        stop_rx.clone(),
    ));
    let mut stop_s3 = stop_rx.clone();
    let s3_task = tokio::spawn(cairn_s3_api::serve(
        s3_listener,
        s3,
        tls,
        s3_connections,
        async move {
            let _ = stop_s3.changed().await;
        },
    ));
    shutdown_signal().await;
    println!("cairn: shutting down (finishing in-flight requests)");
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(std::time::Duration::from_secs(SHUTDOWN_GRACE_SECS), async {
            let _ = s3_task.await;
            let _ = admin.await;
            for t in maintenance.into_iter().chain(notifiers) {
                let _ = t.await;
            }
            let _ = trimmer.await;
            engine.wait_for_background_repairs().await;
        })
        .await;
    // Only a shutdown that drained in time skips the reference recount at
    // the next start (a timed-out one may still have writes in flight).
    if drained.is_ok()
        && let Err(e) = engine.mark_clean_shutdown()
    {
        tracing::warn!(error = %e, "could not record the clean shutdown");
    }
    drop(engine);
    if let Some(node) = cluster_node {
        node.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use cairn_storage_engine::generate_credentials;

    /// Generated keys pass the rules for configured ones.
    #[test]
    fn generated_credentials_have_expected_shape() {
        let (a, s) = generate_credentials();
        assert_eq!(a.len(), 20);
        assert!(a.starts_with("CK"));
        assert_eq!(s.len(), 40);
        crate::config::validate_credentials(&a, &s).unwrap();
        assert_ne!(generate_credentials().0, a);
    }
}
