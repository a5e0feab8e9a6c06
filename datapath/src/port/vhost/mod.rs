//! vhost-user ports: the switch is the vhost-user backend of a VM's (or a container's)
//! virtio-net device.
//!
//! What: a [`VhostUserPort`] owns one unix socket: `server` mode creates it and waits for a
//! frontend; `client` mode connects to a frontend's socket and keeps reconnecting (the mode
//! operators prefer: a VM survives a switch restart). A control thread per port speaks the
//! protocol: rust-vmm's `vhost` crate frames the messages, passes the file descriptors and
//! validates the headers; [`backend::Session`] keeps what the frontend configured (features,
//! guest memory, each queue's size, addresses, base index, kick and call descriptors) and
//! turns it into started rings ([`ring::Vring`]), which the poll threads use. The poll
//! threads, not an event loop of a crate, poll the rings: rx queue `q` of the port is the
//! guest's transmit queue `q` (virtqueue `2q + 1`); transmission goes to a receive queue of
//! the guest (virtqueue `2q`), the first one no other thread is using.
//!
//! Features offered: `VERSION_1`, mergeable receive buffers, indirect descriptors,
//! event-idx, multiple queue pairs (`MQ`, with the control queue left to the frontend) and
//! the vhost-user protocol features `MQ` and `REPLY_ACK`. No offloads: frames are whole and
//! checksummed, so the switch may forward them anywhere.
//!
//! Guests are not trusted: see [`ring`] for what is checked. Bad chains are counted
//! (`extra_stats`: `rx_bad_descriptor`, `rx_bad_address`, `rx_bad_length`, and the same for
//! tx) and given back; a ring whose available index runs more than a queue ahead is counted
//! (`ring_corrupt`) and left alone until it makes sense again; other queues and ports are
//! never affected. A frontend that disconnects or crashes leaves nothing behind: its
//! session (memory mappings, descriptors, rings) is dropped with the connection.
//!
//! Waking: each rx queue has an epoll descriptor that holds the guest's current kick
//! eventfd, so the poll threads' descriptor set stays valid across reconnections. While a
//! thread polls, kicks are suppressed (`VRING_USED_F_NO_NOTIFY`, or the `avail_event` index
//! left behind with event-idx); [`Port::arm_rx`] asks for them just before it sleeps.
//!
//! Thread-safety: each virtqueue sits behind its own mutex, taken once per burst by a poll
//! thread (try-lock: a thread never waits for the control thread) and briefly by the
//! control thread when it starts, stops or remaps a ring.

// The kernel interface: epoll, eventfd, shutdown. Every unsafe block says why.
#![allow(unsafe_code)]

pub mod backend;
pub mod memory;
pub mod ring;

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::{Batch, Port, PortCounters, PortStats};
use crate::packet::BufPool;
use ring::{BurstStats, Vring};

/// Most queue pairs a port offers.
pub const MAX_QUEUE_PAIRS: usize = 16;

/// Who creates the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhostMode {
    /// The switch creates the socket and waits for the frontend.
    Server,
    /// The frontend created the socket; the switch connects, and reconnects.
    Client,
}

impl std::str::FromStr for VhostMode {
    type Err = String;
    fn from_str(s: &str) -> Result<VhostMode, String> {
        match s {
            "server" => Ok(VhostMode::Server),
            "client" => Ok(VhostMode::Client),
            _ => Err(format!("mode {s:?}: expected server or client")),
        }
    }
}

/// Why a vhost-user port could not be created.
#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    /// The number of queue pairs is out of range.
    #[error("{0} queue pairs: a port has 1 to {MAX_QUEUE_PAIRS}")]
    QueuePairs(usize),
    /// The socket's directory does not exist.
    #[error("socket directory {0} does not exist")]
    NoDirectory(PathBuf),
    /// Something other than a socket is in the way of a server socket.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("vhost-user socket {path}: {what}: {source}")]
    Sys {
        /// The socket.
        path: PathBuf,
        /// Which step.
        what: &'static str,
        /// What the kernel said.
        source: std::io::Error,
    },
}

/// Counters of what guests and frontends did wrong (or just did), shown as the port's
/// extra statistics.
#[derive(Debug, Default)]
pub(crate) struct GuestCounters {
    rx_bad_descriptor: AtomicU64,
    rx_bad_address: AtomicU64,
    rx_bad_length: AtomicU64,
    tx_bad_descriptor: AtomicU64,
    tx_bad_address: AtomicU64,
    tx_no_room: AtomicU64,
    ring_corrupt: AtomicU64,
    interrupts: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
}

/// Frames and bytes through one virtqueue. Written only by the poll thread holding the
/// queue's lock, so with a plain load and store (the lock orders the writers), not the
/// locked read-modify-write a shared counter needs: the hot path's counting costs no
/// atomic instruction. Anyone reads them.
#[derive(Debug, Default)]
pub(crate) struct VqCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl VqCounters {
    /// Adds a burst. Only while holding the queue's lock.
    #[inline]
    fn add(&self, packets: u64, bytes: u64) {
        let r = Ordering::Relaxed;
        self.packets
            .store(self.packets.load(r).wrapping_add(packets), r);
        self.bytes.store(self.bytes.load(r).wrapping_add(bytes), r);
    }

    fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Names of the per-queue counters.
const RXQ_NAMES: [&str; MAX_QUEUE_PAIRS] = [
    "rxq0_packets",
    "rxq1_packets",
    "rxq2_packets",
    "rxq3_packets",
    "rxq4_packets",
    "rxq5_packets",
    "rxq6_packets",
    "rxq7_packets",
    "rxq8_packets",
    "rxq9_packets",
    "rxq10_packets",
    "rxq11_packets",
    "rxq12_packets",
    "rxq13_packets",
    "rxq14_packets",
    "rxq15_packets",
];
const TXQ_NAMES: [&str; MAX_QUEUE_PAIRS] = [
    "txq0_packets",
    "txq1_packets",
    "txq2_packets",
    "txq3_packets",
    "txq4_packets",
    "txq5_packets",
    "txq6_packets",
    "txq7_packets",
    "txq8_packets",
    "txq9_packets",
    "txq10_packets",
    "txq11_packets",
    "txq12_packets",
    "txq13_packets",
    "txq14_packets",
    "txq15_packets",
];

fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// One virtqueue as the poll threads see it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// The started ring, if the queue is started and enabled.
    pub(crate) ring: Option<Vring>,
    /// The guest's kick descriptor (receive side only: drained after a sleep).
    pub(crate) kick: Option<Arc<File>>,
    /// Kicks were asked for (a poll thread went to sleep on this queue).
    armed: bool,
}

/// What the port and its control thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) n_qp: usize,
    /// Virtqueues by index: `2q` the guest's receive queue `q`, `2q + 1` its transmit queue.
    pub(crate) vqs: Box<[Mutex<Slot>]>,
    /// Per virtqueue (same index), what went through it; the port's packet and byte
    /// counts are their sums.
    vq_counters: Box<[VqCounters]>,
    /// Per rx queue, an epoll descriptor holding the guest's kick for it.
    pub(crate) wake: Box<[OwnedFd]>,
    counters: PortCounters,
    pub(crate) guest: GuestCounters,
    pub(crate) connected: AtomicBool,
    /// The current connection, so dropping the port can end it.
    pub(crate) conn: Mutex<Option<UnixStream>>,
    /// Rung when the port is dropped.
    stop: OwnedFd,
    stopping: AtomicBool,
    /// Protocol trouble is logged at most once a second per port.
    pub(crate) log_limit: crate::log::RateLimit,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn stop_fd(&self) -> RawFd {
        self.stop.as_raw_fd()
    }

    /// Puts `kick` (or nothing) into rx queue `q`'s epoll set in place of `old`.
    pub(crate) fn set_wake(&self, q: usize, old: Option<&File>, new: Option<&File>) {
        let Some(ep) = self.wake.get(q) else { return };
        if let Some(o) = old {
            // SAFETY: epoll_ctl on descriptors we hold; a null event is allowed for DEL.
            unsafe {
                libc::epoll_ctl(
                    ep.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    o.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
        if let Some(n) = new {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: q as u64,
            };
            // SAFETY: as above; `ev` is a live event struct.
            unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, n.as_raw_fd(), &mut ev) };
        }
    }

    /// Counts a burst taken from rx queue `queue`. Only while holding that queue's lock.
    fn flush_rx(&self, queue: usize, st: &BurstStats) {
        if st.pkts > 0
            && let Some(c) = self.vq_counters.get(2 * queue + 1)
        {
            c.add(st.pkts, st.bytes);
        }
        let errors = st.bad_descriptor + st.bad_address + st.bad_length + st.ring_corrupt;
        if errors > 0 {
            let g = &self.guest;
            add(&g.rx_bad_descriptor, st.bad_descriptor);
            add(&g.rx_bad_address, st.bad_address);
            add(&g.rx_bad_length, st.bad_length);
            add(&g.ring_corrupt, st.ring_corrupt);
            self.counters.rx_errors(errors);
        }
        add(&self.guest.interrupts, st.interrupts);
    }

    /// Counts a burst written into tx queue `queue`. Only while holding that queue's lock.
    fn flush_tx(&self, queue: usize, st: &BurstStats) {
        if st.pkts > 0
            && let Some(c) = self.vq_counters.get(2 * queue)
        {
            c.add(st.pkts, st.bytes);
        }
        let g = &self.guest;
        let errors = st.bad_descriptor + st.bad_address + st.ring_corrupt;
        if errors > 0 {
            add(&g.tx_bad_descriptor, st.bad_descriptor);
            add(&g.tx_bad_address, st.bad_address);
            add(&g.ring_corrupt, st.ring_corrupt);
            self.counters.tx_errors(errors);
        }
        if st.no_room > 0 {
            add(&g.tx_no_room, st.no_room);
            self.counters.tx_dropped(st.no_room);
        }
        add(&g.interrupts, st.interrupts);
    }
}

/// A vhost-user port.
#[derive(Debug)]
pub struct VhostUserPort {
    shared: Arc<Shared>,
    path: PathBuf,
    mode: VhostMode,
    thread: Option<JoinHandle<()>>,
}

fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll() -> std::io::Result<OwnedFd> {
    // SAFETY: epoll_create1 takes no pointers; the result is checked.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl VhostUserPort {
    /// A port named `name` on the socket at `path`, offering `queue_pairs` queue pairs.
    /// In server mode the socket is created now (a stale socket at `path` is replaced);
    /// in client mode the port connects in the background and keeps trying.
    pub fn new(
        name: &str,
        path: &Path,
        mode: VhostMode,
        queue_pairs: usize,
    ) -> Result<VhostUserPort, VhostError> {
        if !(1..=MAX_QUEUE_PAIRS).contains(&queue_pairs) {
            return Err(VhostError::QueuePairs(queue_pairs));
        }
        let sys = |what, source| VhostError::Sys {
            path: path.to_owned(),
            what,
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(VhostError::NoDirectory(dir.to_owned()));
        }
        let listener = match mode {
            VhostMode::Server => {
                use std::os::unix::fs::FileTypeExt;
                match std::fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_socket() => {
                        std::fs::remove_file(path).map_err(|e| sys("removing the old socket", e))?
                    }
                    Ok(_) => return Err(VhostError::NotASocket(path.to_owned())),
                    Err(_) => {}
                }
                let l = UnixListener::bind(path).map_err(|e| sys("bind", e))?;
                l.set_nonblocking(true)
                    .map_err(|e| sys("set_nonblocking", e))?;
                Some(l)
            }
            VhostMode::Client => None,
        };
        let mut wake = Vec::with_capacity(queue_pairs);
        for _ in 0..queue_pairs {
            wake.push(epoll().map_err(|e| sys("epoll_create1", e))?);
        }
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            n_qp: queue_pairs,
            vqs: (0..2 * queue_pairs)
                .map(|_| Mutex::new(Slot::default()))
                .collect(),
            vq_counters: (0..2 * queue_pairs)
                .map(|_| VqCounters::default())
                .collect(),
            wake: wake.into_boxed_slice(),
            counters: PortCounters::default(),
            guest: GuestCounters::default(),
            connected: AtomicBool::new(false),
            conn: Mutex::new(None),
            stop: eventfd().map_err(|e| sys("eventfd", e))?,
            stopping: AtomicBool::new(false),
            log_limit: crate::log::RateLimit::default(),
        });
        let s = Arc::clone(&shared);
        let p = path.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("vhost-{name}"))
            .spawn(move || backend::run(s, p, listener))
            .map_err(|e| sys("spawning the control thread", e))?;
        Ok(VhostUserPort {
            shared,
            path: path.to_owned(),
            mode,
            thread: Some(thread),
        })
    }

    /// The socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket mode.
    pub fn mode(&self) -> VhostMode {
        self.mode
    }

    /// True while a frontend is connected.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// How many of the port's virtqueues are started and enabled.
    pub fn queues_running(&self) -> usize {
        self.shared
            .vqs
            .iter()
            .filter(|q| q.lock().ring.is_some())
            .count()
    }

    /// True when the guest's first queue pair is started and enabled (traffic can flow).
    pub fn running(&self) -> bool {
        self.shared
            .vqs
            .iter()
            .take(2)
            .all(|q| q.lock().ring.is_some())
    }
}

impl Drop for VhostUserPort {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        ring::signal_fd(self.shared.stop.as_raw_fd());
        if let Some(c) = self.shared.conn.lock().as_ref() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Port for VhostUserPort {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn n_rxq(&self) -> usize {
        self.shared.n_qp
    }

    fn rx_burst(&self, queue: usize, batch: &mut Batch, pool: &mut BufPool) -> usize {
        let Some(vq) = self.shared.vqs.get(2 * queue + 1) else {
            return 0;
        };
        let Some(mut slot) = vq.try_lock() else {
            return 0;
        };
        let slot = &mut *slot;
        let Some(ring) = slot.ring.as_mut() else {
            return 0;
        };
        if slot.armed {
            slot.armed = false;
            ring.set_kicks(false);
            if let Some(k) = &slot.kick {
                ring::drain_fd(k.as_raw_fd());
            }
        }
        let before = batch.len();
        let mut st = BurstStats::default();
        ring.dequeue_burst(batch, pool, &mut st);
        self.shared.flush_rx(queue, &st);
        batch.len() - before
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        let mut st = BurstStats::default();
        // The first receive queue no other poll thread holds; else wait for the first
        // started one. Counted before the queue's lock is let go.
        for (q, vq) in self.shared.vqs.iter().step_by(2).enumerate() {
            if let Some(mut slot) = vq.try_lock()
                && let Some(ring) = slot.ring.as_mut()
            {
                ring.enqueue_burst(batch, pool, &mut st);
                self.shared.flush_tx(q, &st);
                return;
            }
        }
        for (q, vq) in self.shared.vqs.iter().step_by(2).enumerate() {
            let mut slot = vq.lock();
            if let Some(ring) = slot.ring.as_mut() {
                ring.enqueue_burst(batch, pool, &mut st);
                self.shared.flush_tx(q, &st);
                return;
            }
        }
        // No guest, or its queues are stopped: the link is down.
        self.shared.counters.tx_dropped(batch.len() as u64);
        pool.put_batch(batch);
    }

    fn stats(&self) -> PortStats {
        let mut s = self.shared.counters.read();
        for (i, c) in self.shared.vq_counters.iter().enumerate() {
            // Odd virtqueues are the guest's transmit queues: what the port receives.
            if i % 2 == 1 {
                s.rx_packets += c.packets();
                s.rx_bytes += c.bytes();
            } else {
                s.tx_packets += c.packets();
                s.tx_bytes += c.bytes();
            }
        }
        s
    }

    fn rx_fd(&self, queue: usize) -> Option<RawFd> {
        self.shared.wake.get(queue).map(|f| f.as_raw_fd())
    }

    fn arm_rx(&self, queue: usize) -> bool {
        let Some(vq) = self.shared.vqs.get(2 * queue + 1) else {
            return true;
        };
        let mut slot = vq.lock();
        let slot = &mut *slot;
        match slot.ring.as_mut() {
            Some(ring) => {
                if ring.set_kicks(true) {
                    ring.set_kicks(false);
                    return false;
                }
                slot.armed = true;
                true
            }
            None => true,
        }
    }

    fn link_up(&self) -> Option<bool> {
        Some(self.connected() && self.running())
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        let g = &self.shared.guest;
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.extend([
            ("rx_bad_descriptor", r(&g.rx_bad_descriptor)),
            ("rx_bad_address", r(&g.rx_bad_address)),
            ("rx_bad_length", r(&g.rx_bad_length)),
            ("tx_bad_descriptor", r(&g.tx_bad_descriptor)),
            ("tx_bad_address", r(&g.tx_bad_address)),
            ("tx_no_room", r(&g.tx_no_room)),
            ("ring_corrupt", r(&g.ring_corrupt)),
            ("interrupts", r(&g.interrupts)),
            ("connects", r(&g.connects)),
            ("disconnects", r(&g.disconnects)),
            ("protocol_errors", r(&g.protocol_errors)),
        ]);
        let vc = &self.shared.vq_counters;
        for q in 0..self.shared.n_qp {
            out.push((RXQ_NAMES[q], vc[2 * q + 1].packets()));
            out.push((TXQ_NAMES[q], vc[2 * q].packets()));
        }
    }
}
