//! Every API connection, counted and watched: admission against the limits (`limits.rs`),
//! the accept loops, and a sweeper that closes connections that never spoke, sit idle, or
//! stopped sending a request half-way. Refusals and closures are counted and logged at most
//! once per [`LOG_EVERY`].
//!
//! A connection is a [`Tracked`] stream: it records when bytes arrive, and returns end of
//! file to hyper once the sweeper (or an eviction) marks it closing, which makes hyper drop
//! it and so close its descriptor. The RPC layer (`layer.rs`) finds the connection's
//! [`Conn`] in each request's extensions and counts the RPCs in flight on it. Each
//! connection keeps who opened it ([`ConnState::peer`], read when it is accepted), since
//! tonic's own transport information is not there for a stream of ours.
//!
//! Thread-safety: [`Tracker`] is shared by the accept loops, the sweeper and the RPC layer;
//! per-connection state is atomics, the registry a mutex taken once per connection and once
//! per sweep.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

use super::limits::Limits;

/// Longest quiet time of the refusal log: refusals and closures are summed and logged at
/// most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// Bytes of the HTTP/2 client connection preface.
const PREFACE_BYTES: u64 = 24;
/// How often the sweeper looks.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Pause after `accept` failed for lack of descriptors or memory (never spin).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The unix socket: the local operator.
    Unix,
    /// A TCP listener (TLS).
    Tcp,
}

/// What happens to connections, counted since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Admitted.
    pub accepted: AtomicU64,
    /// Refused at the connection limit.
    pub refused: AtomicU64,
    /// Closed to admit a unix client at the limit (the longest idle one).
    pub evicted: AtomicU64,
    /// Closed for not completing the handshake (unix: the HTTP/2 preface) in time.
    pub closed_silent: AtomicU64,
    /// Closed after `idle_timeout` without a request.
    pub closed_idle: AtomicU64,
    /// Closed because a request body stopped arriving.
    pub closed_stalled: AtomicU64,
    /// `accept` failures (out of descriptors, out of memory).
    pub accept_errors: AtomicU64,
}

const COUNTER_NAMES: [&str; 6] = [
    "refused at the connection limit",
    "closed to make room for a unix client",
    "closed before their handshake",
    "closed idle",
    "closed with a stalled request",
    "accept failures (out of descriptors?)",
];

impl Counters {
    fn snapshot(&self) -> [u64; 6] {
        [
            self.refused.load(Ordering::Relaxed),
            self.evicted.load(Ordering::Relaxed),
            self.closed_silent.load(Ordering::Relaxed),
            self.closed_idle.load(Ordering::Relaxed),
            self.closed_stalled.load(Ordering::Relaxed),
            self.accept_errors.load(Ordering::Relaxed),
        ]
    }
}

/// One connection's state.
#[derive(Debug)]
pub struct ConnState {
    id: u64,
    kind: Kind,
    /// Who opened it: `unix:pid=N,uid=N` or `tcp:ADDR:PORT`.
    peer: Arc<str>,
    opened: Instant,
    bytes_read: AtomicU64,
    /// RPCs running on it.
    in_flight: AtomicU32,
    /// Unary request bodies not yet fully received.
    receiving: AtomicU32,
    /// Nanoseconds since `opened`: when `in_flight` last became zero.
    idle_since_ns: AtomicU64,
    /// Nanoseconds since `opened`: when a request body last made progress.
    body_progress_ns: AtomicU64,
    /// Marked for closing; the reader sees end of file.
    closing: AtomicBool,
    /// Still counted against the limits (cleared once, when closing or dropped).
    counted: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

impl ConnState {
    /// Who opened the connection: `unix:pid=N,uid=N` (the pid when the kernel knows it) or
    /// `tcp:ADDR:PORT`, TLS or not.
    pub fn peer(&self) -> &Arc<str> {
        &self.peer
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Marks an RPC started; the returned guard marks it finished.
    pub fn start_rpc(self: &Arc<Self>) -> RpcGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RpcGuard(Arc::clone(self))
    }

    /// Marks a request body being received; progress is reported with
    /// [`ReceiveGuard::progress`], the end by dropping the guard.
    pub fn start_receiving(self: &Arc<Self>) -> ReceiveGuard {
        self.body_progress_ns
            .store(self.now_ns(), Ordering::Relaxed);
        self.receiving.fetch_add(1, Ordering::AcqRel);
        ReceiveGuard(Arc::clone(self))
    }

    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        if let Some(w) = self.reader.lock().take() {
            w.wake();
        }
    }
}

/// An RPC in flight on a connection.
#[derive(Debug)]
pub struct RpcGuard(Arc<ConnState>);

impl Drop for RpcGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0
                .idle_since_ns
                .store(self.0.now_ns(), Ordering::Relaxed);
        }
    }
}

/// A request body being received.
#[derive(Debug)]
pub struct ReceiveGuard(Arc<ConnState>);

impl ReceiveGuard {
    /// Part of the body arrived.
    pub fn progress(&self) {
        self.0
            .body_progress_ns
            .store(self.0.now_ns(), Ordering::Relaxed);
    }
}

impl Drop for ReceiveGuard {
    fn drop(&mut self) {
        self.0.receiving.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The handle the RPC layer finds in request extensions.
#[derive(Debug, Clone)]
pub struct Conn(pub Arc<ConnState>);

/// All connections and the limits they are held to.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    /// Counted connections per kind (unix, tcp).
    open: [AtomicUsize; 2],
    /// What happened.
    pub counters: Counters,
    log: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    last: Instant,
    logged: [u64; 6],
}

impl Tracker {
    /// A tracker holding connections to `limits`.
    pub fn new(limits: Limits) -> Arc<Tracker> {
        Arc::new(Tracker {
            limits,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            open: [AtomicUsize::new(0), AtomicUsize::new(0)],
            counters: Counters::default(),
            // The first refusal is logged at once; later ones at most every LOG_EVERY.
            log: Mutex::new(LogState {
                last: Instant::now()
                    .checked_sub(LOG_EVERY)
                    .unwrap_or_else(Instant::now),
                logged: [0; 6],
            }),
        })
    }

    fn open_total(&self) -> usize {
        self.open[0].load(Ordering::Acquire) + self.open[1].load(Ordering::Acquire)
    }

    /// Admits a new connection of `kind`, or refuses it (`None`). A unix client at the
    /// limit displaces the connection idle longest, if there is one.
    fn admit(&self, kind: Kind, peer: String) -> Option<Arc<ConnState>> {
        let room = match kind {
            Kind::Tcp => {
                self.open[Kind::Tcp as usize].load(Ordering::Acquire)
                    < self.limits.max_tcp_connections()
                    && self.open_total() < self.limits.max_connections
            }
            Kind::Unix => self.open_total() < self.limits.max_connections || self.evict_idlest(),
        };
        if !room {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let st = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            kind,
            peer: peer.into(),
            opened: Instant::now(),
            bytes_read: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            receiving: AtomicU32::new(0),
            idle_since_ns: AtomicU64::new(0),
            body_progress_ns: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            counted: AtomicBool::new(true),
            reader: Mutex::new(None),
        });
        self.open[kind as usize].fetch_add(1, Ordering::AcqRel);
        self.conns.lock().insert(st.id, Arc::clone(&st));
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Some(st)
    }

    /// Stops counting `st` against the limits (once).
    fn uncount(&self, st: &ConnState) {
        if st.counted.swap(false, Ordering::AcqRel) {
            self.open[st.kind as usize].fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn closing(&self, st: &ConnState, counter: &AtomicU64) {
        if !st.closing.load(Ordering::Acquire) {
            counter.fetch_add(1, Ordering::Relaxed);
            self.uncount(st);
            st.close();
        }
    }

    /// Closes the connection without an RPC in flight that has been idle longest; false
    /// when every connection is busy.
    fn evict_idlest(&self) -> bool {
        let victim = {
            let conns = self.conns.lock();
            conns
                .values()
                .filter(|c| {
                    !c.closing.load(Ordering::Acquire) && c.in_flight.load(Ordering::Acquire) == 0
                })
                .max_by_key(|c| {
                    c.now_ns() - c.idle_since_ns.load(Ordering::Relaxed).min(c.now_ns())
                })
                .cloned()
        };
        match victim {
            Some(v) => {
                self.closing(&v, &self.counters.evicted);
                true
            }
            None => false,
        }
    }

    fn forget(&self, st: &ConnState) {
        self.uncount(st);
        self.conns.lock().remove(&st.id);
    }

    /// One pass of the sweeper: closes connections past their handshake, idle or request
    /// timeouts.
    fn sweep(&self) {
        let l = &self.limits;
        let mut close = Vec::new();
        for c in self.conns.lock().values() {
            if c.closing.load(Ordering::Acquire) {
                continue;
            }
            let now = c.now_ns();
            let since = |ns: &AtomicU64| {
                Duration::from_nanos(now.saturating_sub(ns.load(Ordering::Relaxed)))
            };
            if c.kind == Kind::Unix
                && c.bytes_read.load(Ordering::Relaxed) < PREFACE_BYTES
                && c.opened.elapsed() > l.handshake_timeout
            {
                close.push((Arc::clone(c), &self.counters.closed_silent));
            } else if c.receiving.load(Ordering::Acquire) > 0
                && since(&c.body_progress_ns) > l.request_timeout
            {
                close.push((Arc::clone(c), &self.counters.closed_stalled));
            } else if !l.idle_timeout.is_zero()
                && c.in_flight.load(Ordering::Acquire) == 0
                && since(&c.idle_since_ns) > l.idle_timeout
            {
                close.push((Arc::clone(c), &self.counters.closed_idle));
            }
        }
        for (c, counter) in close {
            self.closing(&c, counter);
        }
    }

    /// Logs what was refused or closed since the last log line, at most once per
    /// [`LOG_EVERY`].
    fn log_refusals(&self) {
        let mut log = self.log.lock();
        if log.last.elapsed() < LOG_EVERY {
            return;
        }
        let now = self.counters.snapshot();
        let parts: Vec<String> = now
            .iter()
            .zip(log.logged.iter())
            .zip(COUNTER_NAMES.iter())
            .filter(|((n, l), _)| n > l)
            .map(|((n, l), name)| format!("{} {name} (total {n})", n - l))
            .collect();
        if !parts.is_empty() {
            tracing::warn!(
                "API connections in the last {} s: {}; {} open (unix {}, tcp {}), limits: {} \
                 connections, {} of them kept for the unix socket",
                log.last.elapsed().as_secs(),
                parts.join(", "),
                self.open_total(),
                self.open[0].load(Ordering::Relaxed),
                self.open[1].load(Ordering::Relaxed),
                self.limits.max_connections,
                self.limits.reserved_unix_connections,
            );
        }
        log.last = Instant::now();
        log.logged = now;
    }

    /// Runs the sweeper until `stop` turns true.
    pub async fn sweeper(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {
                    self.sweep();
                    self.log_refusals();
                }
            }
        }
    }
}

/// A connection's stream, watched: counts bytes read, ends when marked closing, and leaves
/// the tracker when dropped.
#[derive(Debug)]
pub struct Tracked<IO> {
    io: IO,
    st: Arc<ConnState>,
    tracker: Arc<Tracker>,
}

impl<IO> Drop for Tracked<IO> {
    fn drop(&mut self) {
        self.tracker.forget(&self.st);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.st.closing.load(Ordering::Acquire) {
            return Poll::Ready(Ok(())); // end of file: hyper closes the connection
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                this.st.bytes_read.fetch_add(n, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let mut w = this.st.reader.lock();
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
                drop(w);
                // Marked closing between the check and the registration: wake now.
                if this.st.closing.load(Ordering::Acquire) {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO> tonic::transport::server::Connected for Tracked<IO> {
    type ConnectInfo = Conn;

    fn connect_info(&self) -> Conn {
        Conn(Arc::clone(&self.st))
    }
}

/// A listener the accept loop can take connections from.
pub trait Accept: Send + 'static {
    /// The connection stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Accepts one connection.
    fn accept(&self) -> impl std::future::Future<Output = io::Result<Self::Io>> + Send;
    /// Per-connection socket options.
    fn prepare(&self, _io: &Self::Io, _limits: &Limits) {}
    /// Who is at the other end (see [`ConnState::peer`]).
    fn peer(&self, io: &Self::Io) -> String;
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&self) -> io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }

    fn peer(&self, io: &Self::Io) -> String {
        match io.peer_cred() {
            Ok(c) => match c.pid() {
                Some(pid) => format!("unix:pid={pid},uid={}", c.uid()),
                None => format!("unix:uid={}", c.uid()),
            },
            Err(_) => "unix".into(),
        }
    }
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<Self::Io> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }

    fn prepare(&self, io: &Self::Io, limits: &Limits) {
        let _ = io.set_nodelay(true);
        let ka = socket2::TcpKeepalive::new()
            .with_time(limits.keepalive)
            .with_interval(limits.keepalive);
        let _ = socket2::SockRef::from(io).set_tcp_keepalive(&ka);
    }

    fn peer(&self, io: &Self::Io) -> String {
        io.peer_addr()
            .map_or_else(|_| "tcp".into(), |a| format!("tcp:{a}"))
    }
}

/// True for `accept` errors that mean "out of descriptors or memory": back off, make room.
fn exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    )
}

/// Accepts connections from `l` until `stop`, admits or refuses each, and hands the
/// admitted ones to the server through `tx`.
pub async fn accept_loop<L: Accept>(
    l: L,
    kind: Kind,
    tracker: Arc<Tracker>,
    tx: mpsc::Sender<io::Result<Tracked<L::Io>>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let r = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = l.accept() => r,
        };
        match r {
            Ok(io) => {
                let Some(st) = tracker.admit(kind, l.peer(&io)) else {
                    drop(io); // refused: closed at once
                    tracker.log_refusals();
                    continue;
                };
                l.prepare(&io, &tracker.limits);
                let t = Tracked {
                    io,
                    st,
                    tracker: Arc::clone(&tracker),
                };
                if tx.send(Ok(t)).await.is_err() {
                    return;
                }
            }
            Err(e) if exhausted(&e) => {
                tracker
                    .counters
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                // A descriptor freed by closing the idlest connection lets the next one in.
                tracker.evict_idlest();
                tracker.log_refusals();
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
            Err(_) => {
                // A connection that went away before it was accepted: nothing to do.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, reserved: usize) -> Limits {
        Limits {
            max_connections: max,
            reserved_unix_connections: reserved,
            ..Limits::default()
        }
    }

    /// The peer the API layer's span shows comes from the accepted socket itself.
    #[tokio::test]
    async fn the_peer_is_read_from_the_accepted_socket() {
        let dir = tempfile::tempdir().unwrap();
        let ul = tokio::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let _c = tokio::net::UnixStream::connect(dir.path().join("s"))
            .await
            .unwrap();
        let io = Accept::accept(&ul).await.unwrap();
        assert_eq!(
            ul.peer(&io),
            format!(
                "unix:pid={},uid={}",
                std::process::id(),
                nix::unistd::geteuid()
            )
        );
        let tl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = tokio::net::TcpStream::connect(tl.local_addr().unwrap())
            .await
            .unwrap();
        let io = Accept::accept(&tl).await.unwrap();
        assert_eq!(tl.peer(&io), format!("tcp:{}", c.local_addr().unwrap()));
    }

    #[test]
    fn tcp_stops_at_its_share_and_unix_displaces_the_idlest() {
        let t = Tracker::new(limits(4, 2));
        let a = t.admit(Kind::Tcp, "test".into()).unwrap();
        let b = t.admit(Kind::Tcp, "test".into()).unwrap();
        assert!(
            t.admit(Kind::Tcp, "test".into()).is_none(),
            "beyond the TCP share"
        );
        assert_eq!(t.counters.refused.load(Ordering::Relaxed), 1);
        let _busy = a.start_rpc();
        let u1 = t.admit(Kind::Unix, "test".into()).unwrap();
        let _u1_busy = u1.start_rpc();
        let u2 = t.admit(Kind::Unix, "test".into()).unwrap();
        let _u2_busy = u2.start_rpc();
        // Full: a third unix client displaces the only idle connection (b).
        let u3 = t.admit(Kind::Unix, "test".into()).unwrap();
        assert!(b.closing.load(Ordering::Acquire));
        assert!(!a.closing.load(Ordering::Acquire));
        assert_eq!(t.counters.evicted.load(Ordering::Relaxed), 1);
        let _u3_busy = u3.start_rpc();
        // Everyone busy: refused.
        assert!(t.admit(Kind::Unix, "test".into()).is_none());
        // Dropping a connection's tracked stream makes room.
        t.forget(&u3);
        assert!(t.admit(Kind::Unix, "test".into()).is_some());
    }

    #[test]
    fn the_sweeper_closes_silent_stalled_and_idle_connections() {
        let t = Tracker::new(Limits {
            handshake_timeout: Duration::from_millis(1),
            request_timeout: Duration::from_millis(1),
            idle_timeout: Duration::from_millis(1),
            ..Limits::default()
        });
        let silent = t.admit(Kind::Unix, "test".into()).unwrap();
        let stalled = t.admit(Kind::Tcp, "test".into()).unwrap();
        let _rpc = stalled.start_rpc();
        let _rx = stalled.start_receiving();
        let busy = t.admit(Kind::Tcp, "test".into()).unwrap();
        let _rpc2 = busy.start_rpc();
        let idle = t.admit(Kind::Tcp, "test".into()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        t.sweep();
        assert!(silent.closing.load(Ordering::Acquire));
        assert!(stalled.closing.load(Ordering::Acquire));
        assert!(idle.closing.load(Ordering::Acquire));
        assert!(
            !busy.closing.load(Ordering::Acquire),
            "an RPC in flight is not idle"
        );
        let c = &t.counters;
        assert_eq!(c.closed_silent.load(Ordering::Relaxed), 1);
        assert_eq!(c.closed_stalled.load(Ordering::Relaxed), 1);
        assert_eq!(c.closed_idle.load(Ordering::Relaxed), 1);
        assert_eq!(t.open_total(), 1);
    }
}
