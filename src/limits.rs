//! File descriptors at start: the soft `RLIMIT_NOFILE` is raised to the hard
//! limit, and the listeners' connection caps are lowered if the descriptors
//! left over cannot hold them (every connection is one descriptor; running
//! out stops the metadata store and the drives from opening files too).

use cairn_s3_api::listener_limits::ListenerLimits;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything but connections, beyond those open at
/// start: RocksDB may open up to 512 table files (meta.rs), plus segment
/// files, log files, outgoing cluster connections and the runtime's own.
const RESERVED_FDS: u64 = 512 + 128;
/// Never lower the S3 cap below this (the server would be useless).
const S3_CONNECTIONS_FLOOR: usize = 16;
/// Nor the admin cap below this.
const ADMIN_CONNECTIONS_FLOOR: usize = 4;

/// Raises the soft descriptor limit to the hard one. Returns the soft limit
/// in force afterwards (`None`: unlimited).
pub fn raise_nofile_limit() -> Option<u64> {
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(
                error = %e,
                soft = ?before.current,
                hard = ?before.maximum,
                "could not raise the file descriptor limit (RLIMIT_NOFILE) to the hard limit"
            );
            return before.current;
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    tracing::info!(
        soft_before = ?before.current,
        soft = ?now,
        hard = ?before.maximum,
        "file descriptor limit (RLIMIT_NOFILE)"
    );
    now
}

/// Descriptors this process has open now (Linux: /proc/self/fd).
pub fn open_fds() -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(dir.count() as u64)
}

/// Lowers `s3`'s and `admin`'s connection caps (and with them the
/// per-address caps) so that together with `cluster_connections` they fit
/// into `soft_limit` minus what is open now and [`RESERVED_FDS`] (at most
/// half the limit is reserved, so small limits keep some connections).
/// Returns a message saying what was lowered, if anything.
pub fn fit_connection_caps(
    soft_limit: Option<u64>,
    open_now: u64,
    cluster_connections: usize,
    s3: &mut ListenerLimits,
    admin: &mut ListenerLimits,
) -> Option<String> {
    let limit = soft_limit?;
    let reserved = RESERVED_FDS.min(limit / 2);
    let budget = limit.saturating_sub(open_now + reserved) as usize;
    let budget = budget.saturating_sub(cluster_connections);
    let wanted = s3.connections_max + admin.connections_max;
    if wanted <= budget {
        return None;
    }
    let (s3_before, admin_before) = (s3.connections_max, admin.connections_max);
    admin.connections_max = admin
        .connections_max
        .min(budget / 8)
        .max(ADMIN_CONNECTIONS_FLOOR);
    s3.connections_max = s3
        .connections_max
        .min(budget.saturating_sub(admin.connections_max))
        .max(S3_CONNECTIONS_FLOOR);
    for l in [&mut *s3, &mut *admin] {
        l.connections_per_address_max = l.connections_per_address_max.min(l.connections_max);
    }
    Some(format!(
        "the file descriptor limit ({limit}, {open_now} open, {reserved} kept for storage{}) \
         cannot hold {s3_before} S3 and {admin_before} admin connections: lowered to {} S3 \
         ({} per address) and {} admin; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=, \
         docker --ulimit nofile=) to serve more",
        if cluster_connections > 0 {
            format!(", {cluster_connections} for cluster listeners")
        } else {
            String::new()
        },
        s3.connections_max,
        s3.connections_per_address_max,
        admin.connections_max,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_the_descriptor_limit() {
        let (mut s3, mut admin) = (ListenerLimits::S3_DEFAULT, ListenerLimits::ADMIN_DEFAULT);
        // Plenty of descriptors: nothing changes.
        assert!(fit_connection_caps(Some(1 << 20), 50, 0, &mut s3, &mut admin).is_none());
        assert!(fit_connection_caps(None, 50, 0, &mut s3, &mut admin).is_none());
        assert_eq!(s3, ListenerLimits::S3_DEFAULT);
        // 1,024: 1024 - 50 - 512 = 462 left; admin 57, S3 405.
        let msg = fit_connection_caps(Some(1024), 50, 0, &mut s3, &mut admin);
        assert!(msg.is_some_and(|m| m.contains("lowered to 405 S3")));
        assert_eq!((s3.connections_max, admin.connections_max), (405, 57));
        assert_eq!(s3.connections_per_address_max, 128);
        // 256: half kept, 256 - 40 - 128 = 88 left; admin 11, S3 77.
        let (mut s3, mut admin) = (ListenerLimits::S3_DEFAULT, ListenerLimits::ADMIN_DEFAULT);
        fit_connection_caps(Some(256), 40, 0, &mut s3, &mut admin);
        assert_eq!((s3.connections_max, admin.connections_max), (77, 11));
        assert_eq!(
            (
                s3.connections_per_address_max,
                admin.connections_per_address_max
            ),
            (77, 11)
        );
        // Hopeless: the floors.
        fit_connection_caps(Some(64), 60, 0, &mut s3, &mut admin);
        assert_eq!((s3.connections_max, admin.connections_max), (16, 4));
    }
}
