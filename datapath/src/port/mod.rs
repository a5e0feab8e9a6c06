//! Ports: one trait, one module per port type.
//!
//! What: a [`Port`] moves bursts of packets between the outside world and the poll threads.
//! Dynamic dispatch happens once per burst, never per packet.
//!
//! Thread-safety: a port is shared (`Arc<dyn Port>`) between the poll threads. Each rx queue
//! is polled by exactly one thread at a time; `tx_burst` may be called from several threads
//! at once and the port serialises per tx queue as it must (the in-memory port takes a lock
//! once per burst, never per packet).

pub mod afpacket;
pub mod afxdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod eal;
pub mod memory;
pub mod tap;
pub mod vhost;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::packet::BufPool;

pub use afpacket::{AfPacketError, AfPacketPort};
pub use afxdp::{AfXdpError, AfXdpPort, XdpMode};
#[cfg(feature = "dpdk")]
pub use dpdk::{DpdkError, DpdkPort};
pub use eal::EalConfig;
pub use memory::MemPort;
pub use tap::{TapError, TapPort};
pub use vhost::{VhostError, VhostMode, VhostUserPort};

/// Waits until one of `fds` is readable or `timeout` passes (ppoll, so microsecond
/// timeouts are honoured). The caller keeps the descriptors open during the call.
pub fn wait_readable(fds: &mut [libc::pollfd], timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    #[allow(unsafe_code)]
    // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()` pollfd structs;
    // `ts` outlives the call; a null sigmask leaves the signal mask alone. A descriptor that
    // is not open is reported as POLLNVAL in its `revents`, never undefined behaviour.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        );
    }
}

/// A doorbell for in-process rings: an eventfd a consumer poll thread can wait on like on a
/// port's socket. The consumer arms it (under the ring's lock, finding the ring empty) just
/// before it sleeps; a producer that then adds packets (under the same lock) rings it.
/// While the consumer is busy nothing is armed, so the ring costs no system call per burst.
#[derive(Debug)]
pub struct Doorbell {
    fd: std::os::fd::OwnedFd,
    armed: std::sync::atomic::AtomicBool,
    pending: std::sync::atomic::AtomicBool,
}

impl Doorbell {
    /// A new doorbell.
    pub fn new() -> std::io::Result<Doorbell> {
        #[allow(unsafe_code)]
        // SAFETY: eventfd takes no pointers; a negative result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(unsafe_code)]
        // SAFETY: a fresh descriptor we own; OwnedFd closes it once.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Doorbell {
            fd,
            armed: std::sync::atomic::AtomicBool::new(false),
            pending: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The consumer is about to sleep (call under the ring's lock, with the ring empty).
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The producer added packets (call under the ring's lock): rings if armed.
    #[inline]
    pub fn notify(&self) {
        use std::sync::atomic::Ordering;
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.pending.store(true, Ordering::Release);
            self.ring();
        }
    }

    /// The consumer woke or polls: silences a ring it got (a system call only then).
    #[inline]
    pub fn ack(&self) {
        use std::sync::atomic::Ordering;
        self.armed.store(false, Ordering::Relaxed);
        if self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::AcqRel) {
            self.clear();
        }
    }

    /// Rings it (the descriptor polls readable).
    fn ring(&self) {
        let one: u64 = 1;
        #[allow(unsafe_code)]
        // SAFETY: writes 8 bytes from a live u64; a full counter (EAGAIN) is harmless.
        unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                (&one as *const u64).cast(),
                8,
            );
        }
    }

    /// Silences it.
    fn clear(&self) {
        let mut v: u64 = 0;
        #[allow(unsafe_code)]
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (not rung) is harmless.
        unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                (&mut v as *mut u64).cast(),
                8,
            );
        }
    }

    /// The descriptor to wait on.
    pub fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}

/// Packets per burst, and a burst of them (defined with the buffers, which hand whole
/// bursts back to their pool).
pub use crate::packet::{BURST, Batch};

/// A port as the poll threads see it.
pub trait Port: Send + Sync + std::fmt::Debug {
    /// The port's name (its interface name, or the name it was added with).
    fn name(&self) -> &str;

    /// Number of rx queues.
    fn n_rxq(&self) -> usize {
        1
    }

    /// Appends up to `batch.remaining_capacity()` received packets to `batch`, taking empty
    /// buffers from `pool` when the port copies frames in. Returns how many were added.
    fn rx_burst(&self, queue: usize, batch: &mut Batch, pool: &mut BufPool) -> usize;

    /// Sends every packet of `batch` (draining it). Buffers the port does not keep go back to
    /// `pool`. Packets it could not send are counted in its `tx_dropped`.
    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool);

    /// The port's counters.
    fn stats(&self) -> PortStats;

    /// A descriptor that polls readable when rx queue `queue` has packets, for an idle poll
    /// thread to sleep on instead of polling; `None` when the port has none (the thread then
    /// sleeps for a bounded time).
    fn rx_fd(&self, _queue: usize) -> Option<std::os::fd::RawFd> {
        None
    }

    /// The kernel interface index the port is bound to, for ports on kernel interfaces: the
    /// daemon compares it with [`ifindex_of`] its name to notice the interface disappearing
    /// or being re-created.
    fn ifindex(&self) -> Option<u32> {
        None
    }

    /// True once the port has seen its interface disappear (a TAP device deleted from
    /// outside, or with the namespace it was moved to), or, for a tunnel port, its endpoint
    /// retire: the daemon then replaces it.
    fn link_lost(&self) -> bool {
        false
    }

    /// What the pipeline needs to know of a tunnel port; `None` for other ports. A tunnel
    /// port's received packets carry their remote and key in the buffer
    /// ([`crate::packet::PacketBuf::tunnel`]); `normal` never floods from one tunnel into another.
    fn tunnel(&self) -> Option<TunnelInfo> {
        None
    }

    /// The port left the switch for good (removed, not replaced). Returns true when that
    /// takes other ports down: a tunnel endpoint retires, and the tunnel ports on it report
    /// [`Port::link_lost`] until the daemon moves them to another endpoint.
    fn retire(&self) -> bool {
        false
    }

    /// Called by a poll thread about to sleep on [`Port::rx_fd`]: ports whose descriptor is a
    /// [`Doorbell`] arm it here. Returns false when queue `queue` already has packets (the
    /// thread should not sleep).
    fn arm_rx(&self, _queue: usize) -> bool {
        true
    }

    /// Whether the port can carry traffic now, for ports whose link comes and goes without
    /// a kernel interface to watch (a vhost-user port is up while a frontend is connected
    /// and its queues run); `None` for the others.
    fn link_up(&self) -> Option<bool> {
        None
    }

    /// Counters particular to the port type, by name (shown with the port's statistics):
    /// e.g. what a guest did wrong.
    fn extra_stats(&self, _out: &mut Vec<(&'static str, u64)>) {}
}

/// A tunnel port as the pipeline sees it (see [`Port::tunnel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelInfo {
    /// The local endpoint's address: the outer destination (`tun_dst`) of every packet the
    /// port receives.
    pub local: std::net::Ipv4Addr,
    /// True when flows choose the remote or the key (`remote_ip=flow`, `key=flow`): the
    /// pipeline then writes each packet's destination and key into its buffer
    /// ([`crate::packet::PacketBuf::set_tunnel`]) when it stages it for this port.
    pub flow_based: bool,
    /// `vxlan` or `gre` (what `trace` shows of the encapsulation).
    pub kind: &'static str,
    /// The configured remote (`None`: each packet's `tun_dst`).
    pub remote: Option<std::net::Ipv4Addr>,
    /// The configured VNI or key (`None`: each packet's `tun_id`).
    pub key: Option<u32>,
    /// The outer UDP destination port (VXLAN).
    pub dst_port: u16,
}

/// The index of the kernel interface called `name` in this network namespace, if it exists.
pub fn ifindex_of(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    #[allow(unsafe_code)]
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    (i != 0).then_some(i)
}

/// A port's counters, as read at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets the port dropped on receive (no buffer, ring full).
    pub rx_dropped: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the port could not send (ring full, link down).
    pub tx_dropped: u64,
    /// Frames received in error (malformed descriptors from a guest, ...).
    pub rx_errors: u64,
    /// Transmit errors (bad receive descriptors from a guest, ...).
    pub tx_errors: u64,
}

/// Live counters for a port implementation: relaxed atomics updated once per burst.
#[derive(Debug, Default)]
pub struct PortCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    rx_errors: AtomicU64,
    tx_errors: AtomicU64,
}

impl PortCounters {
    /// Records a received burst.
    pub fn rx(&self, packets: u64, bytes: u64) {
        self.rx_packets.fetch_add(packets, Ordering::Relaxed);
        self.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records receive drops.
    pub fn rx_dropped(&self, packets: u64) {
        self.rx_dropped.fetch_add(packets, Ordering::Relaxed);
    }

    /// Records a sent burst.
    pub fn tx(&self, packets: u64, bytes: u64) {
        self.tx_packets.fetch_add(packets, Ordering::Relaxed);
        self.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records transmit drops.
    pub fn tx_dropped(&self, packets: u64) {
        self.tx_dropped.fetch_add(packets, Ordering::Relaxed);
    }

    /// Records receive errors.
    pub fn rx_errors(&self, packets: u64) {
        self.rx_errors.fetch_add(packets, Ordering::Relaxed);
    }

    /// Records transmit errors.
    pub fn tx_errors(&self, packets: u64) {
        self.tx_errors.fetch_add(packets, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn read(&self) -> PortStats {
        PortStats {
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            rx_dropped: self.rx_dropped.load(Ordering::Relaxed),
            tx_packets: self.tx_packets.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            tx_dropped: self.tx_dropped.load(Ordering::Relaxed),
            rx_errors: self.rx_errors.load(Ordering::Relaxed),
            tx_errors: self.tx_errors.load(Ordering::Relaxed),
        }
    }
}
