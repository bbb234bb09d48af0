//! Bounds glibc malloc's arenas for the server process.
//!
//! glibc gives busy threads their own arenas, up to 8 per core, and keeps
//! memory freed into them. Under many concurrent small requests (tokio
//! workers plus the blocking pool) that retained memory, not data, doubled
//! peak RSS (see docs/performance.md, "Memory"). Two arenas (with the
//! periodic trim below) keep RSS under the 256 MiB budget; over the whole
//! benchmark matrix they measured as fast as four. An operator's own
//! `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES=glibc.malloc.arena_max=N` (read by
//! glibc at start) wins: we then change nothing.
//!
//! Arenas also keep large freed buffers (glibc raises its mmap threshold
//! after freeing big blocks, so later chunk and shard buffers come from the
//! arenas): after a burst of large PUTs that memory stays resident and adds
//! up across workloads. [`trim`] hands free arena pages back to the kernel;
//! the server calls it every few seconds.

/// Arenas when the operator did not choose.
pub const ARENAS_DEFAULT: i32 = 2;

/// Applies [`ARENAS_DEFAULT`] unless `MALLOC_ARENA_MAX` (or the
/// `glibc.malloc.arena_max` tunable) is set; returns
/// the limit applied. Call before any thread is started.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas() -> Option<i32> {
    /// glibc's `M_ARENA_MAX` parameter of `mallopt` (malloc.h).
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc.arena_max"));
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tuned {
        return None;
    }
    // SAFETY: mallopt only stores a tunable of the allocator; it takes no
    // pointers and is safe to call at any time (we call it once, before
    // any thread exists). A zero return means glibc refused the value.
    let ok = unsafe { mallopt(M_ARENA_MAX, ARENAS_DEFAULT) };
    (ok != 0).then_some(ARENAS_DEFAULT)
}

/// Returns free memory of every arena to the kernel (`malloc_trim(0)`).
/// Takes each arena's lock briefly; cheap enough to run every few seconds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks
    // each arena while trimming it).
    unsafe { malloc_trim(0) };
}

/// Other platforms and C libraries: nothing to trim.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Other platforms and C libraries: nothing to tune.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() -> Option<i32> {
    None
}

/// Calls [`trim`] every `period` until `stop` fires.
pub async fn trim_every(period: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Off the async workers: trimming locks each arena in turn.
                let _ = tokio::task::spawn_blocking(trim).await;
            }
            _ = stop.changed() => return,
        }
    }
}
