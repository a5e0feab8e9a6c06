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
pub mod memory;
pub mod tap;

use std::sync::atomic::{AtomicU64, Ordering};

use arrayvec::ArrayVec;

use crate::packet::{BufPool, PacketBuf};

pub use afpacket::{AfPacketError, AfPacketPort};
pub use afxdp::{AfXdpError, AfXdpPort, XdpMode};
pub use memory::MemPort;
pub use tap::{TapError, TapPort};

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

/// Packets per burst.
pub const BURST: usize = 32;

/// A burst of packets: a fixed array, never a heap allocation.
pub type Batch = ArrayVec<PacketBuf, BURST>;

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
    /// outside, or with the namespace it was moved to): the daemon then replaces it.
    fn link_lost(&self) -> bool {
        false
    }

    /// The tunnel port behind this port, if it is one (its received packets carry tunnel
    /// metadata; `normal` never floods from one tunnel into another).
    fn as_tunnel(&self) -> Option<&crate::tunnel::TunnelPort> {
        None
    }
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

    /// A snapshot of the counters.
    pub fn read(&self) -> PortStats {
        PortStats {
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            rx_dropped: self.rx_dropped.load(Ordering::Relaxed),
            tx_packets: self.tx_packets.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            tx_dropped: self.tx_dropped.load(Ordering::Relaxed),
        }
    }
}
