//! CPU time and memory of processes, read from Linux's `/proc`: the
//! server's (`--server-pid`), this tool's own, and the whole machine's busy
//! share, so a result says what the throughput cost.
//!
//! Parsing is separate from reading so it can be tested on fixed text. A
//! missing or unreadable file is `None`, never an error: the figures are
//! extras and the run goes on without them (and on systems without `/proc`).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The unit of `/proc/<pid>/stat` CPU times: Linux reports them in USER_HZ,
/// 100 per second on every architecture it exports to user space.
const USER_HZ: f64 = 100.0;

/// How often the RSS sampler looks at the server.
pub const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// User + system CPU seconds from the text of `/proc/<pid>/stat`.
pub fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may contain spaces
    // and ')' itself: fields are counted after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are
    // at positions 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// A `kB` field such as `VmRSS:` from the text of `/proc/<pid>/status`.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (busy, total) jiffies of all CPUs from the text of `/proc/stat`.
pub fn parse_host_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // guest time is already counted in user, so only the first eight add up.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    parse_stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub fn own_cpu_seconds() -> Option<f64> {
    parse_stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

pub fn host_jiffies() -> Option<(u64, u64)> {
    parse_host_jiffies(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// (VmRSS, VmHWM) of a process, KiB.
pub fn process_memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((
        parse_status_kib(&status, "VmRSS:")?,
        parse_status_kib(&status, "VmHWM:")?,
    ))
}

/// Resident memory seen by the sampler, KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RssSamples {
    pub samples: u64,
    pub peak_kib: u64,
    pub mean_kib: f64,
}

/// Samples a process's VmRSS on its own thread until stopped.
#[derive(Debug)]
pub struct RssSampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<RssSamples>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (mut n, mut peak, mut sum) = (0u64, 0u64, 0u64);
            loop {
                if let Some((rss, _)) = process_memory_kib(pid) {
                    n += 1;
                    peak = peak.max(rss);
                    sum += rss;
                }
                match stopped.recv_timeout(RSS_SAMPLE_INTERVAL) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            RssSamples {
                samples: n,
                peak_kib: peak,
                mean_kib: if n == 0 { 0.0 } else { sum as f64 / n as f64 },
            }
        });
        RssSampler { stop, thread }
    }

    /// Takes a last sample and returns what was seen.
    pub fn finish(self) -> RssSamples {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_with_an_awkward_command_name() {
        // A name with spaces and a ')' of its own; utime 250, stime 50.
        let stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 123456789 5000 18446744073709551615";
        assert_eq!(parse_stat_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_stat_cpu_seconds("4242 (cut"), None);
        assert_eq!(parse_stat_cpu_seconds("4242 (x) S 1 2"), None);
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tcairn\nVmPeak:\t  900000 kB\nVmHWM:\t  262144 kB\nVmRSS:\t  131072 kB\nThreads:\t9\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(131_072));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(262_144));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn host_jiffies_leave_out_idle_iowait_and_guest() {
        let stat = "cpu  100 0 50 800 50 0 0 0 30 0\ncpu0 50 0 25 400 25 0 0 0 15 0\nintr 1\n";
        assert_eq!(parse_host_jiffies(stat), Some((150, 1000)));
        assert_eq!(parse_host_jiffies("intr 1\n"), None);
    }

    #[test]
    fn own_process_is_readable_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux: the figures are optional there
        }
        assert!(own_cpu_seconds().is_some());
        let (rss, hwm) = process_memory_kib(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
        let sampler = RssSampler::start(std::process::id());
        std::thread::sleep(Duration::from_millis(250));
        let seen = sampler.finish();
        assert!(seen.samples >= 2, "{seen:?}");
        assert!(seen.peak_kib > 0 && seen.mean_kib > 0.0);
    }
}
