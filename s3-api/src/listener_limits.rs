//! Connection limits for a listener (the S3 API and the admin listener use
//! the same ones): how many connections may be open, how many from one
//! client address, how long a connection may sit without a request, and how
//! the accept loop behaves when the process runs out of descriptors.
//!
//! Why: every open connection is a file descriptor. Without a cap, a client
//! that opens connections and sends nothing takes every descriptor the
//! process has, and then nothing — not even the metadata store — can open a
//! file.
//!
//! The rules, in order, for each accepted connection:
//! 1. its address (IPv4, or the /64 of an IPv6 address) already holds
//!    `connections_per_address_max` connections → refused;
//! 2. the listener holds `connections_max` connections → the connection
//!    that has gone longest without a request (none in progress, waiting for
//!    a request head for at least [`EVICT_IDLE_MIN`]), preferring the address
//!    with the most connections, is closed to make room; if every connection
//!    is busy with a request, the new one is refused;
//! 3. otherwise admitted.
//!
//! A refused connection is accepted and closed at once — so the kernel's
//! backlog and the descriptor are freed — after a best-effort, never-waiting
//! write of a short `503` (`SlowDown` on the S3 API, which SDKs retry with
//! backoff). An admitted connection is closed once no request has been in
//! progress for `idle_timeout`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A connection waiting for its request head for less than this is never
/// closed to make room: a client's head (or TLS handshake) arrives within
/// this on any working network.
pub const EVICT_IDLE_MIN: Duration = Duration::from_secs(1);
/// The first pause after a failed `accept`; it doubles with each failure in
/// a row up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Repeated warnings (accept failures, refusals) are logged at most once per
/// this period, with the count since the last one.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// The limits of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Open connections at most.
    pub connections_max: usize,
    /// Open connections from one client address at most (IPv6: per /64).
    pub connections_per_address_max: usize,
    /// Longest wait for a request head, from the first byte of the wait
    /// (hyper's `header_read_timeout`).
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed
    /// (keep-alive connections do not hold a slot forever).
    pub idle_timeout: Duration,
}

impl ListenerLimits {
    /// The S3 API's defaults, sized for a 2-core box: 1,024 connections
    /// (about 4 KiB each when idle, up to 256 KiB while a body streams in),
    /// 128 from one address — far more than any SDK's pool (10–50) — so one
    /// client can take at most an eighth of them.
    pub const S3_DEFAULT: ListenerLimits = ListenerLimits {
        connections_max: 1024,
        connections_per_address_max: 128,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(20),
    };
    /// The admin listener's defaults: Prometheus, health checks and
    /// `cairn admin` need a handful of connections.
    pub const ADMIN_DEFAULT: ListenerLimits = ListenerLimits {
        connections_max: 64,
        connections_per_address_max: 16,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
    };
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds `connections_per_address_max` connections.
    AddressFull,
    /// The listener holds `connections_max` connections, all busy.
    ListenerFull,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::AddressFull => "address_limit",
            Refusal::ListenerFull => "listener_limit",
        }
    }
}

/// Connection metrics, registered once and shared by every listener
/// (labelled `listener="s3"|"admin"`).
#[derive(Clone, Debug)]
pub struct ConnectionMetrics {
    open: IntGaugeVec,
    refused: IntCounterVec,
    evicted: IntCounterVec,
    accept_errors: IntCounterVec,
}

impl ConnectionMetrics {
    pub fn register(r: &Registry) -> Result<Self, String> {
        let e = |e: prometheus::Error| e.to_string();
        let open = IntGaugeVec::new(
            Opts::new("cairn_connections_open", "Open connections by listener"),
            &["listener"],
        )
        .map_err(e)?;
        let refused = IntCounterVec::new(
            Opts::new(
                "cairn_connections_refused_total",
                "Connections closed at accept because a connection limit was reached",
            ),
            &["listener", "reason"],
        )
        .map_err(e)?;
        let evicted = IntCounterVec::new(
            Opts::new(
                "cairn_connections_evicted_total",
                "Idle connections closed to make room for a new one at the listener's limit",
            ),
            &["listener"],
        )
        .map_err(e)?;
        let accept_errors = IntCounterVec::new(
            Opts::new(
                "cairn_accept_errors_total",
                "Failed accepts (e.g. out of file descriptors) by listener",
            ),
            &["listener"],
        )
        .map_err(e)?;
        for c in [
            Box::new(open.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(refused.clone()),
            Box::new(evicted.clone()),
            Box::new(accept_errors.clone()),
        ] {
            r.register(c).map_err(e)?;
        }
        Ok(ConnectionMetrics {
            open,
            refused,
            evicted,
            accept_errors,
        })
    }
}

/// The open connections of one listener.
#[derive(Debug)]
pub struct Connections {
    name: &'static str,
    limits: ListenerLimits,
    epoch: Instant,
    inner: Mutex<Table>,
    refusals_log: Mutex<RateLimitedLog>,
    metrics: Option<ConnectionMetrics>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, (IpAddr, Arc<ConnState>)>,
    per_address: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> bool {
        let Some((addr, _)) = self.conns.remove(&id) else {
            return false;
        };
        if let Some(n) = self.per_address.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&addr);
            }
        }
        true
    }
}

#[derive(Debug)]
struct ConnState {
    /// Requests whose response has not been fully sent (0 or 1 on HTTP/1.1).
    in_flight: AtomicUsize,
    /// Milliseconds since the listener's epoch when the connection last had
    /// no request in progress (opened, or its last response finished).
    idle_since_ms: AtomicU64,
    /// Fired to close the connection (it was chosen to make room).
    close: Notify,
}

/// Where the per-address count is kept: the IPv4 address, or the /64
/// network of an IPv6 one (one host easily has a whole /64).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Connections {
    /// `name` labels logs and metrics ("s3", "admin").
    pub fn new(
        name: &'static str,
        limits: ListenerLimits,
        metrics: Option<ConnectionMetrics>,
    ) -> Arc<Connections> {
        let limits = ListenerLimits {
            connections_max: limits.connections_max.max(1),
            connections_per_address_max: limits
                .connections_per_address_max
                .clamp(1, limits.connections_max.max(1)),
            ..limits
        };
        Arc::new(Connections {
            name,
            limits,
            epoch: Instant::now(),
            inner: Mutex::new(Table::default()),
            refusals_log: Mutex::new(RateLimitedLog::default()),
            metrics,
        })
    }

    pub fn limits(&self) -> &ListenerLimits {
        &self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().conns.len()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock leaves only counts behind: go on.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Admits a connection from `peer` (closing an idle one to make room if
    /// the listener is full), or says why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let key = address_key(peer);
        let now = self.now_ms();
        let mut t = self.table();
        if t.per_address.get(&key).copied().unwrap_or(0) >= self.limits.connections_per_address_max
        {
            drop(t);
            self.refused(Refusal::AddressFull, peer);
            return Err(Refusal::AddressFull);
        }
        if t.conns.len() >= self.limits.connections_max {
            let idle_min = u64::try_from(EVICT_IDLE_MIN.as_millis()).unwrap_or(u64::MAX);
            let victim = t
                .conns
                .iter()
                .filter(|(_, (_, s))| {
                    s.in_flight.load(Ordering::Acquire) == 0
                        && now.saturating_sub(s.idle_since_ms.load(Ordering::Acquire)) >= idle_min
                })
                .max_by_key(|(_, (addr, s))| {
                    (
                        t.per_address.get(addr).copied().unwrap_or(0),
                        now.saturating_sub(s.idle_since_ms.load(Ordering::Acquire)),
                    )
                })
                .map(|(id, (_, s))| (*id, s.clone()));
            let Some((id, state)) = victim else {
                drop(t);
                self.refused(Refusal::ListenerFull, peer);
                return Err(Refusal::ListenerFull);
            };
            // Its slot is free from now on; its task drops the socket as
            // soon as it runs (the descriptor lives a few microseconds more).
            t.remove(id);
            state.close.notify_one();
            if let Some(m) = &self.metrics {
                m.evicted.with_label_values(&[self.name]).inc();
            }
            tracing::debug!(
                listener = self.name,
                "closed an idle connection to make room"
            );
        }
        let id = t.next_id;
        t.next_id += 1;
        let state = Arc::new(ConnState {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now),
            close: Notify::new(),
        });
        t.conns.insert(id, (key, state.clone()));
        *t.per_address.entry(key).or_insert(0) += 1;
        let open = t.conns.len();
        drop(t);
        if let Some(m) = &self.metrics {
            m.open
                .with_label_values(&[self.name])
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        Ok(ConnectionSlot {
            conns: self.clone(),
            id,
            state,
        })
    }

    fn refused(&self, why: Refusal, peer: IpAddr) {
        if let Some(m) = &self.metrics {
            m.refused.with_label_values(&[self.name, why.label()]).inc();
        }
        let mut log = self
            .refusals_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(suppressed) = log.should_log() {
            tracing::warn!(
                listener = self.name,
                peer = %peer,
                reason = why.label(),
                connections_max = self.limits.connections_max,
                connections_per_address_max = self.limits.connections_per_address_max,
                refused_since_last_warning = suppressed,
                "connection limit reached: refusing connections"
            );
        }
    }
}

/// One admitted connection's place in the table; dropping it frees it.
#[derive(Debug)]
pub struct ConnectionSlot {
    conns: Arc<Connections>,
    id: u64,
    state: Arc<ConnState>,
}

impl ConnectionSlot {
    /// The limits of the listener this connection came from.
    pub fn limits(&self) -> &ListenerLimits {
        &self.conns.limits
    }

    /// Marks a request as in progress until the returned guard is dropped
    /// (put it in the response body: hyper drops the body once sent).
    pub fn request_started(&self) -> RequestGuard {
        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            state: self.state.clone(),
            epoch: self.conns.epoch,
        }
    }

    /// Resolves when the connection must be closed: it was chosen to make
    /// room, or it has had no request in progress for `idle_timeout`.
    /// Cancel-safe.
    pub async fn must_close(&self) {
        let idle = self.conns.limits.idle_timeout;
        let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            tokio::select! {
                () = self.state.close.notified() => return,
                () = tokio::time::sleep(tick) => {}
            }
            let now = self.conns.now_ms();
            if self.state.in_flight.load(Ordering::Acquire) == 0
                && now.saturating_sub(self.state.idle_since_ms.load(Ordering::Acquire)) >= idle_ms
            {
                return;
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut t = self.conns.table();
        t.remove(self.id);
        let open = t.conns.len();
        drop(t);
        if let Some(m) = &self.conns.metrics {
            m.open
                .with_label_values(&[self.conns.name])
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
    }
}

/// A request in progress on a connection (see
/// [`ConnectionSlot::request_started`]).
#[derive(Debug)]
pub struct RequestGuard {
    state: Arc<ConnState>,
    epoch: Instant,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.state.idle_since_ms.store(now, Ordering::Release);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until it
/// has been sent (or dropped).
#[derive(Debug)]
pub struct TrackedBody<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B> TrackedBody<B> {
    pub fn new(inner: B, guard: RequestGuard) -> Self {
        TrackedBody {
            inner,
            _guard: guard,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// "Log this warning now?": the first time, then at most once per
/// [`LOG_PERIOD`], saying how many were not logged in between.
#[derive(Debug, Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// `Some(suppressed since the last logged one)` when this one is to be
    /// logged.
    fn should_log(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < LOG_PERIOD)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// An accept loop's listener with its limits: failed accepts are retried
/// after an exponential pause (5 ms doubling to 1 s, reset by a success) and
/// logged at most once per 10 s; connections over a limit are answered with
/// `refusal` (if any) and closed.
#[derive(Debug)]
pub struct LimitedListener {
    listener: TcpListener,
    conns: Arc<Connections>,
    /// Written (never waited for) to a refused connection before it closes.
    refusal: Option<&'static [u8]>,
    backoff: Duration,
    errors_log: RateLimitedLog,
}

/// What a refused S3 client reads: S3's answer to "too many requests".
pub const S3_REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: application/xml\r\n\
Content-Length: 126\r\n\
Retry-After: 1\r\n\
Connection: close\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/// What a refused admin client reads.
pub const PLAIN_REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\n\
Content-Length: 20\r\n\
Retry-After: 1\r\n\
Connection: close\r\n\
\r\n\
too many connections";

impl LimitedListener {
    /// `refusal`: `None` on a TLS listener (plain bytes would not help).
    pub fn new(
        listener: TcpListener,
        conns: Arc<Connections>,
        refusal: Option<&'static [u8]>,
    ) -> LimitedListener {
        LimitedListener {
            listener,
            conns,
            refusal,
            backoff: Duration::ZERO,
            errors_log: RateLimitedLog::default(),
        }
    }

    pub fn connections(&self) -> &Arc<Connections> {
        &self.conns
    }

    /// The next admitted connection. Cancel-safe (nothing is lost when the
    /// future is dropped at an await).
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr, ConnectionSlot) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = Duration::ZERO;
                    match self.conns.admit(peer.ip()) {
                        Ok(slot) => return (stream, peer, slot),
                        Err(_) => {
                            if let Some(reply) = self.refusal {
                                // Never waits: a fresh socket's send buffer
                                // takes it whole or the client does without.
                                let _ = stream.try_write(reply);
                            }
                            drop(stream);
                        }
                    }
                }
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS and friends: the connection stays
                    // in the backlog; retrying at once would spin and flood
                    // the log.
                    self.backoff = (self.backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                    if let Some(m) = &self.conns.metrics {
                        m.accept_errors.with_label_values(&[self.conns.name]).inc();
                    }
                    if let Some(suppressed) = self.errors_log.should_log() {
                        tracing::warn!(
                            listener = self.conns.name,
                            error = %e,
                            failed_since_last_warning = suppressed,
                            retry_in_ms = u64::try_from(self.backoff.as_millis()).unwrap_or(u64::MAX),
                            "accept failed"
                        );
                    }
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(total: usize, per_address: usize) -> ListenerLimits {
        ListenerLimits {
            connections_max: total,
            connections_per_address_max: per_address,
            ..ListenerLimits::S3_DEFAULT
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refusal_replies_have_the_length_they_say() {
        for reply in [S3_REFUSAL, PLAIN_REFUSAL] {
            let text = std::str::from_utf8(reply).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        }
    }

    #[test]
    fn per_address_limit_and_ipv6_networks() {
        let c = Connections::new("t", limits(100, 2), None);
        let a = [
            c.admit(ip("10.0.0.1")).unwrap(),
            c.admit(ip("10.0.0.1")).unwrap(),
        ];
        assert_eq!(c.admit(ip("10.0.0.1")).unwrap_err(), Refusal::AddressFull);
        let _b = c.admit(ip("10.0.0.2")).unwrap();
        // One /64 is one address; the mapped form of an IPv4 is that IPv4.
        let _v6 = [
            c.admit(ip("2001:db8::1")).unwrap(),
            c.admit(ip("2001:db8::ffff:2")).unwrap(),
        ];
        assert_eq!(
            c.admit(ip("2001:db8::3")).unwrap_err(),
            Refusal::AddressFull
        );
        assert_eq!(
            c.admit(ip("::ffff:10.0.0.1")).unwrap_err(),
            Refusal::AddressFull
        );
        drop(a);
        let again = c.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(c.open(), 4);
        drop(again);
        assert_eq!(c.open(), 3);
    }

    #[tokio::test]
    async fn a_full_listener_closes_the_longest_idle_connection_of_the_biggest_address() {
        let c = Connections::new("t", limits(3, 2), None);
        let hog = [
            c.admit(ip("10.0.0.9")).unwrap(),
            c.admit(ip("10.0.0.9")).unwrap(),
        ];
        let busy = c.admit(ip("10.0.0.1")).unwrap();
        let _req = busy.request_started();
        // Nothing has been idle long enough yet.
        assert_eq!(c.admit(ip("10.0.0.2")).unwrap_err(), Refusal::ListenerFull);
        std::thread::sleep(EVICT_IDLE_MIN + Duration::from_millis(50));
        let newcomer = c.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(c.open(), 3);
        // One of the hog's connections was told to close, not the busy one.
        let closed = tokio::time::timeout(Duration::from_millis(10), async {
            tokio::select! {
                () = hog[0].must_close() => 0,
                () = hog[1].must_close() => 1,
            }
        })
        .await;
        assert!(closed.is_ok());
        drop(newcomer);
        drop(hog);
        assert_eq!(c.open(), 1);
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_idle_timeout_but_not_during_a_request() {
        let c = Connections::new(
            "t",
            ListenerLimits {
                idle_timeout: Duration::from_millis(300),
                ..limits(10, 10)
            },
            None,
        );
        let slot = c.admit(ip("10.0.0.1")).unwrap();
        let req = slot.request_started();
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            tokio::time::timeout(Duration::from_secs(2), slot.must_close())
                .await
                .is_err()
        );
        drop(req);
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            tokio::time::timeout(Duration::from_secs(2), slot.must_close())
                .await
                .is_ok()
        );
    }

    #[test]
    fn rate_limited_log_counts_what_it_skips() {
        let mut l = RateLimitedLog::default();
        assert_eq!(l.should_log(), Some(0));
        assert_eq!(l.should_log(), None);
        assert_eq!(l.should_log(), None);
        l.last = Some(Instant::now() - LOG_PERIOD);
        assert_eq!(l.should_log(), Some(2));
    }
}
