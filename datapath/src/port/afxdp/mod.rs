//! AF_XDP ports: frames from a kernel interface's driver straight into user space, through
//! an XDP program the switch loads itself.
//!
//! What: [`AfXdpPort::open`] creates, per rx queue, an XSK socket with its own UMEM (frames of
//! 2048 bytes; half for receive, half for transmit) and four rings (fill, completion, rx, tx),
//! then loads a six-instruction XDP program that redirects every frame of a queue to that
//! queue's socket (`bpf_redirect_map(xsks_map, rx_queue_index, XDP_PASS)`), assembled here (no
//! compiler, no libbpf), and attaches it with a BPF link: closing the link (dropping the
//! port, or the process dying) detaches it. Modes: native (driver) XDP, generic (skb) XDP, or
//! auto (native, falling back to generic). Copy mode; need-wakeup is used so the kernel is
//! kicked only when a ring asks for it.
//!
//! rx copies each frame into a pool buffer and gives the UMEM frame straight back to the fill
//! ring; tx copies into a free UMEM frame and reaps completions first. No allocation per
//! packet; frames that do not fit and sends without a free frame are counted drops.
//!
//! Nothing is lost silently: the kernel's own counters of each socket (`XDP_STATISTICS`:
//! frames dropped before the rx ring for want of a fill buffer or for being larger than a
//! UMEM frame, the rx ring full, refused descriptors) are added to the port's `rx_dropped`
//! and errors and listed by name in its extra counters, with ours by reason (`rx_too_big`,
//! `tx_too_big`, `tx_no_room`) and the largest frame the port carries
//! ([`MAX_FRAME_BYTES`]). They are read at most every [`KERNEL_STATS_EVERY`] however often
//! statistics are asked for (reading takes a kernel mutex the transmit path also takes).
//!
//! Files: `bpf.rs` (the program and `bpf()`), `queue.rs` (one queue's socket, UMEM and
//! rings, the bursts, the kernel's statistics).
//!
//! Thread-safety: each queue's rings sit behind a mutex taken once per burst (one poll thread
//! polls a queue: uncontended). Ring indices shared with the kernel are atomics with acquire /
//! release ordering, as the AF_XDP ABI requires.

// The kernel interface: bpf(), AF_XDP sockets, mmap'ed rings and UMEM. Every unsafe block
// says why.
#![allow(unsafe_code)]

mod bpf;
mod queue;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Batch, Port, PortCounters, PortStats};
use crate::packet::{BufPool, MAX_FRAME};
use bpf::{
    BPF_LINK_CREATE, BPF_MAP_CREATE, BPF_MAP_TYPE_XSKMAP, BPF_PROG_LOAD, BPF_PROG_TYPE_XDP,
    BPF_XDP, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE, bpf, last, owned, program, put32, put64,
};
use queue::{Queue, kernel_stats};

/// Bytes of a UMEM frame: the largest frame the kernel can hand this port.
const FRAME_SIZE: usize = 2048;
/// UMEM frames per queue (4 MiB: inside the 8 MiB memlock limit with a second queue).
const FRAMES: usize = 2048;
/// Entries per ring (power of two).
const RING: u32 = 1024;
/// The largest frame the port carries either way: what fits both a UMEM frame and a packet
/// buffer. Larger frames are dropped and counted (`rx_too_big`, `tx_too_big`, and the
/// kernel's `xdp_rx_dropped` for those it could not put in a UMEM frame), never cut.
pub const MAX_FRAME_BYTES: usize = if FRAME_SIZE < MAX_FRAME {
    FRAME_SIZE
} else {
    MAX_FRAME
};

/// How long one reading of the kernel's statistics serves: however often they are asked
/// for (metrics scrapes, `dump-ports`), each socket's are read at most this often. Reading
/// takes the socket's mutex in the kernel, which a poll thread's transmit kick (`sendto`,
/// copy mode) also takes; a reader preempted while holding it would make the poll thread
/// wait, so readers get few chances to.
pub const KERNEL_STATS_EVERY: Duration = Duration::from_millis(100);

/// Drops of an AF_XDP port by reason, beyond its [`PortCounters`]; updated once per burst.
#[derive(Debug, Default)]
struct XdpCounters {
    /// Received frames larger than a packet buffer.
    rx_too_big: AtomicU64,
    /// Frames to send larger than a UMEM frame.
    tx_too_big: AtomicU64,
    /// Frames to send without a free UMEM frame or tx ring slot.
    tx_no_room: AtomicU64,
}

/// Which XDP hook to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// The driver's own XDP hook (veth supports it).
    Native,
    /// The generic hook after skb allocation (any driver; slower).
    Generic,
    /// Native if the driver takes it, else generic.
    Auto,
}

impl std::str::FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<XdpMode, String> {
        match s {
            "native" => Ok(XdpMode::Native),
            "generic" => Ok(XdpMode::Generic),
            "auto" => Ok(XdpMode::Auto),
            _ => Err(format!("xdp-mode {s:?}: expected native, generic or auto")),
        }
    }
}

/// Why an AF_XDP port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// The interface does not exist (in this network namespace).
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    /// The verifier refused the program (its log attached).
    #[error("the kernel refused the XDP program: {source}; verifier log: {log}")]
    Verifier {
        /// The kernel's answer.
        source: std::io::Error,
        /// The verifier log.
        log: String,
    },
    /// Attaching in the requested mode failed.
    #[error("cannot attach XDP in {mode} mode to {name}: {source}{hint}")]
    Attach {
        /// The interface.
        name: String,
        /// The mode tried.
        mode: &'static str,
        /// The kernel's answer.
        source: std::io::Error,
        /// What to try instead.
        hint: &'static str,
    },
    /// Memory could not be locked for the UMEM.
    #[error(
        "cannot register {bytes} bytes of UMEM: {source} (memlock limit too low? raise it, or use fewer queues)"
    )]
    Umem {
        /// Bytes asked for.
        bytes: usize,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// Another step failed.
    #[error("AF_XDP on {name}: {what}: {source}")]
    Sys {
        /// The interface.
        name: String,
        /// Which step.
        what: &'static str,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

/// An AF_XDP port.
#[derive(Debug)]
pub struct AfXdpPort {
    name: String,
    ifindex: u32,
    mode: XdpMode,
    // Drop order: the link (detaching the program) first, then the sockets, then the map.
    _link: OwnedFd,
    _prog: OwnedFd,
    queues: Vec<Mutex<Queue>>,
    /// Each queue's socket, for reading the kernel's statistics without the queue's lock
    /// (the sockets are owned by `queues`, which live as long as the port).
    socks: Vec<RawFd>,
    _map: OwnedFd,
    counters: PortCounters,
    xdp: XdpCounters,
    /// The last reading of the kernel's statistics (summed) and when it was taken; only
    /// readers of the statistics take this lock, never a poll thread.
    kernel: Mutex<Option<(Instant, libc::xdp_statistics)>>,
}

impl AfXdpPort {
    /// Opens `n_rxq` queues (from 0) of interface `name` in `mode`.
    pub fn open(name: &str, n_rxq: usize, mode: XdpMode) -> Result<AfXdpPort, AfXdpError> {
        let cname =
            CString::new(name).map_err(|_| AfXdpError::NoSuchInterface(name.to_string()))?;
        // SAFETY: `cname` is NUL-terminated and live across the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(AfXdpError::NoSuchInterface(name.to_string()));
        }
        let n_rxq = n_rxq.max(1);
        let sys = |what: &'static str| AfXdpError::Sys {
            name: name.to_string(),
            what,
            source: last(),
        };
        let mut a = [0u8; 128];
        put32(&mut a, 0, BPF_MAP_TYPE_XSKMAP);
        put32(&mut a, 4, 4);
        put32(&mut a, 8, 4);
        put32(&mut a, 12, n_rxq as u32);
        let map = owned(bpf(BPF_MAP_CREATE, &mut a)).ok_or_else(|| sys("creating the XSK map"))?;
        let prog_insns = program(map.as_raw_fd());
        let license = c"GPL";
        let mut log = vec![0u8; 64 * 1024];
        let mut a = [0u8; 128];
        put32(&mut a, 0, BPF_PROG_TYPE_XDP);
        put32(&mut a, 4, prog_insns.len() as u32);
        put64(&mut a, 8, prog_insns.as_ptr() as u64);
        put64(&mut a, 16, license.as_ptr() as u64);
        put32(&mut a, 24, 1);
        put32(&mut a, 28, log.len() as u32);
        put64(&mut a, 32, log.as_mut_ptr() as u64);
        a[48..48 + 11].copy_from_slice(b"vswitch_xsk");
        let prog = owned(bpf(BPF_PROG_LOAD, &mut a)).ok_or_else(|| {
            let source = last();
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            AfXdpError::Verifier {
                source,
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
            }
        })?;
        let mut queues = Vec::with_capacity(n_rxq);
        for q in 0..n_rxq {
            queues.push(Mutex::new(Queue::open(
                name,
                ifindex,
                q as u32,
                map.as_raw_fd(),
            )?));
        }
        let attach = |flags: u32| {
            let mut a = [0u8; 128];
            put32(&mut a, 0, prog.as_raw_fd() as u32);
            put32(&mut a, 4, ifindex);
            put32(&mut a, 8, BPF_XDP);
            put32(&mut a, 12, flags);
            owned(bpf(BPF_LINK_CREATE, &mut a)).ok_or_else(last)
        };
        let (link, mode) = match mode {
            XdpMode::Native => (attach(XDP_FLAGS_DRV_MODE), XdpMode::Native),
            XdpMode::Generic => (attach(XDP_FLAGS_SKB_MODE), XdpMode::Generic),
            XdpMode::Auto => match attach(XDP_FLAGS_DRV_MODE) {
                Ok(l) => (Ok(l), XdpMode::Native),
                Err(_) => (attach(XDP_FLAGS_SKB_MODE), XdpMode::Generic),
            },
        };
        let link = link.map_err(|source| AfXdpError::Attach {
            name: name.to_string(),
            mode: if mode == XdpMode::Native {
                "native"
            } else {
                "generic"
            },
            source,
            hint: if mode == XdpMode::Native {
                " (the driver may lack native XDP: use xdp-mode=generic)"
            } else {
                ""
            },
        })?;
        let socks = queues.iter().map(|q| q.lock().sock.as_raw_fd()).collect();
        Ok(AfXdpPort {
            ifindex,
            name: name.to_string(),
            mode,
            _link: link,
            _prog: prog,
            queues,
            socks,
            _map: map,
            counters: PortCounters::default(),
            xdp: XdpCounters::default(),
            kernel: Mutex::new(None),
        })
    }

    /// The mode in use (`Auto` resolved).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// True when the sockets are bound in zero-copy mode (the driver supports it).
    pub fn zero_copy(&self) -> bool {
        self.queues.first().is_some_and(|q| q.lock().zero_copy)
    }

    /// The socket of queue `q`, to wait on when idle.
    pub fn queue_fd(&self, q: usize) -> Option<RawFd> {
        self.socks.get(q).copied()
    }

    /// The kernel's counters summed over every queue's socket, at most
    /// [`KERNEL_STATS_EVERY`] old.
    fn kernel_stats(&self) -> libc::xdp_statistics {
        let mut last = self.kernel.lock();
        if let Some((at, k)) = *last
            && at.elapsed() < KERNEL_STATS_EVERY
        {
            return k;
        }
        let mut sum = libc::xdp_statistics {
            rx_dropped: 0,
            rx_invalid_descs: 0,
            tx_invalid_descs: 0,
            rx_ring_full: 0,
            rx_fill_ring_empty_descs: 0,
            tx_ring_empty_descs: 0,
        };
        for &fd in &self.socks {
            let k = kernel_stats(fd);
            sum.rx_dropped += k.rx_dropped;
            sum.rx_invalid_descs += k.rx_invalid_descs;
            sum.tx_invalid_descs += k.tx_invalid_descs;
            sum.rx_ring_full += k.rx_ring_full;
            sum.rx_fill_ring_empty_descs += k.rx_fill_ring_empty_descs;
            sum.tx_ring_empty_descs += k.tx_ring_empty_descs;
        }
        *last = Some((Instant::now(), sum));
        sum
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn n_rxq(&self) -> usize {
        self.queues.len()
    }

    fn rx_fd(&self, queue: usize) -> Option<RawFd> {
        self.queue_fd(queue)
    }

    fn ifindex(&self) -> Option<u32> {
        Some(self.ifindex)
    }

    fn rx_burst(&self, queue: usize, batch: &mut Batch, pool: &mut BufPool) -> usize {
        match self.queues.get(queue) {
            Some(q) => q.lock().rx_burst(batch, pool, &self.counters, &self.xdp),
            None => 0,
        }
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        // Every queue's socket can send (each has its own UMEM and rings): poll threads
        // sending at once take the first queue nobody holds, so they do not wait on one lock.
        for q in &self.queues {
            if let Some(mut g) = q.try_lock() {
                g.tx_burst(batch, pool, &self.counters, &self.xdp);
                return;
            }
        }
        match self.queues.first() {
            Some(q) => q.lock().tx_burst(batch, pool, &self.counters, &self.xdp),
            None => {
                let n = batch.len() as u64;
                pool.put_batch(batch);
                self.counters.tx_dropped(n);
            }
        }
    }

    /// Ours plus the kernel's: frames it dropped before the rx ring (no fill buffer, too
    /// big for a UMEM frame, rx ring full) are `rx_dropped`, descriptors it refused are
    /// errors.
    fn stats(&self) -> PortStats {
        let mut s = self.counters.read();
        let k = self.kernel_stats();
        s.rx_dropped += k.rx_dropped + k.rx_ring_full;
        s.rx_errors += k.rx_invalid_descs;
        s.tx_errors += k.tx_invalid_descs;
        s
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        let k = self.kernel_stats();
        out.extend([
            ("xdp_rx_dropped", k.rx_dropped),
            ("xdp_rx_ring_full", k.rx_ring_full),
            ("xdp_rx_fill_ring_empty", k.rx_fill_ring_empty_descs),
            ("xdp_tx_ring_empty", k.tx_ring_empty_descs),
            ("xdp_rx_invalid_descs", k.rx_invalid_descs),
            ("xdp_tx_invalid_descs", k.tx_invalid_descs),
            ("rx_too_big", self.xdp.rx_too_big.load(Ordering::Relaxed)),
            ("tx_too_big", self.xdp.tx_too_big.load(Ordering::Relaxed)),
            ("tx_no_room", self.xdp.tx_no_room.load(Ordering::Relaxed)),
            ("max_frame_bytes", MAX_FRAME_BYTES as u64),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("native".parse::<XdpMode>(), Ok(XdpMode::Native));
        assert!("turbo".parse::<XdpMode>().is_err());
    }

    #[test]
    fn a_missing_interface_is_named() {
        assert!(matches!(
            AfXdpPort::open("no-such-if0", 1, XdpMode::Auto),
            Err(AfXdpError::NoSuchInterface(_))
        ));
    }
}
