//! DPDK ports (`type=dpdk devargs=...`, feature `dpdk`): any device DPDK drives, a NIC by its
//! PCI address or a virtual device (`net_af_xdp`, `net_tap`, `net_ring`, `net_null`,
//! `net_pcap`).
//!
//! What: [`eal_init`] starts DPDK's environment once per process from the daemon's
//! configuration ([`EalConfig`]); [`DpdkPort`] probes the device, configures its queues on
//! the switch's one shared mempool and polls them from the poll threads. Received mbufs
//! become [`PacketBuf`]s in place (the buffer type owns the mbuf; see
//! `packet::buf`), so a frame from one DPDK port leaves through another as the same mbuf;
//! heap buffers going out are copied into fresh mbufs, and mbufs going to other port types
//! are copied out by those ports and freed back to the mempool.
//!
//! Why one mempool for every port, created once and never freed: mbufs travel (a flood
//! copies, a tunnel or patch hands them to another bridge's thread), so a port's removal
//! must not free memory that frames still in flight point into.
//!
//! Thread-safety: each rx queue is polled by one poll thread (the assignment guarantees
//! it); each tx queue sits behind its own lock, taken once per burst (a sending thread takes
//! the first free one). Poll threads are not EAL lcores: each registers itself with
//! `rte_thread_register` before its first burst so the mempool's per-lcore caches work.
//! Control operations (probe, configure, close) are serialised by one process-wide lock.
//!
//! Unsafe: every call into DPDK, and reads of mbuf headers. DPDK's contracts are kept here:
//! port ids come from DPDK and are used only between a successful start and `Drop`; mbuf
//! pointers come from rx bursts or the mempool and are owned by exactly one `PacketBuf` or
//! array slot at a time; unsent mbufs are freed once.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::ptr::null_mut;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use dpdk_sys as sys;
use parking_lot::Mutex;

use crate::packet::{BUF_SIZE, BufPool, PacketBuf};
use crate::port::{BURST, Batch, Port, PortCounters, PortStats};

pub use super::eal::EalConfig;

/// Most receive queues of one port.
pub const MAX_RXQ: usize = 16;
/// Receive and transmit descriptors per queue (adjusted to what the device allows).
const RING_DESC: u16 = 1024;
/// Mbufs in the shared mempool when [`EalConfig::n_mbufs`] is 0.
const DEFAULT_MBUFS: u32 = 16384;
/// Per-lcore mempool cache.
const MEMPOOL_CACHE: u32 = 256;

/// What went wrong with DPDK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// No huge pages to give DPDK.
    #[error(
        "DPDK needs huge pages and {0}: reserve some, e.g. `echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages` (2 GiB of 2 MiB pages), or pass --dpdk-extra=--no-huge for a test setup"
    )]
    Hugepages(String),
    /// `rte_eal_init` failed.
    #[error("DPDK's EAL did not start ({args}): {reason}")]
    Eal {
        /// The EAL command line.
        args: String,
        /// DPDK's explanation.
        reason: String,
    },
    /// The device could not be probed or configured.
    #[error("DPDK device {devargs:?}: {reason}")]
    Device {
        /// What was given.
        devargs: String,
        /// Why.
        reason: String,
    },
}

/// The EAL's outcome, once per process.
static EAL: OnceLock<Result<(), DpdkError>> = OnceLock::new();
/// Serialises DPDK's control operations (they are not thread-safe against each other).
static CONTROL: Mutex<()> = Mutex::new(());
/// The mempool every DPDK port receives into and transmits from (created once).
static MEMPOOL: OnceLock<Result<Mempool, DpdkError>> = OnceLock::new();
/// `EalConfig::n_mbufs` of the first (and only) initialisation.
static N_MBUFS: OnceLock<u32> = OnceLock::new();

#[derive(Debug, Clone, Copy)]
struct Mempool(*mut sys::rte_mempool);
// SAFETY: DPDK mempools are multi-producer, multi-consumer: any thread may allocate from or
// free to it. The pointer is never freed (see the module comment).
unsafe impl Send for Mempool {}
// SAFETY: as above.
unsafe impl Sync for Mempool {}

/// Whether the EAL is running.
pub fn eal_running() -> bool {
    matches!(EAL.get(), Some(Ok(())))
}

/// Starts DPDK's environment with `cfg`, once per process: later calls return the first
/// call's outcome whatever they pass (EAL cannot be started twice).
pub fn eal_init(cfg: &EalConfig) -> Result<(), DpdkError> {
    EAL.get_or_init(|| {
        let _ = N_MBUFS.set(if cfg.n_mbufs == 0 {
            DEFAULT_MBUFS
        } else {
            cfg.n_mbufs
        });
        let args = cfg.args();
        if !args.iter().any(|a| a == "--no-huge") {
            check_hugepages()?;
        }
        raise_memlock();
        // EAL pins the thread that starts it to its main lcore: start it from a thread of
        // its own so no thread of the daemon stays pinned.
        let a = args.clone();
        let r = std::thread::Builder::new()
            .name("dpdk-eal-init".into())
            .spawn(move || run_eal_init(&a))
            .map_err(|e| DpdkError::Eal {
                args: args.join(" "),
                reason: e.to_string(),
            })?
            .join()
            .unwrap_or_else(|_| Err("EAL initialisation panicked".into()));
        r.map_err(|reason| DpdkError::Eal {
            args: args.join(" "),
            reason,
        })
    })
    .clone()
}

fn run_eal_init(args: &[String]) -> Result<(), String> {
    let c: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("argument {a:?} has a NUL byte")))
        .collect::<Result<_, _>>()?;
    // EAL may permute argv: give it its own array of pointers (kept alive with `c`).
    let mut argv: Vec<*mut libc::c_char> = c.iter().map(|s| s.as_ptr().cast_mut()).collect();
    argv.push(null_mut());
    // SAFETY: argv holds `c.len()` valid NUL-terminated strings that outlive the call, plus a
    // terminating null; EAL reads (and may reorder) them.
    let n = unsafe { sys::rte_eal_init(c.len() as libc::c_int, argv.as_mut_ptr()) };
    if n < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `rte_strerror(rte_errno)`.
fn last_error() -> String {
    // SAFETY: `vsw_errno` reads this thread's `rte_errno`; `rte_strerror` returns a static
    // or thread-local NUL-terminated string.
    unsafe {
        let e = sys::vsw_errno();
        let s = sys::rte_strerror(e);
        if s.is_null() {
            format!("error {e}")
        } else {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

fn errno_text(e: i32) -> String {
    // SAFETY: as in `last_error`.
    unsafe {
        let s = sys::rte_strerror(e.abs());
        if s.is_null() {
            format!("error {e}")
        } else {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

/// Lifts the locked-memory limit where the process may (root): DPDK's AF_XDP driver pins
/// its UMEM (the mempool's memory) and loads BPF maps, and with the usual 8 MiB limit a
/// second `net_af_xdp` port, or the same one added again, is refused. Where the limit
/// cannot be raised, DPDK reports the failure on the port that needs it.
fn raise_memlock() {
    let inf = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct; failure changes nothing.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) };
}

/// Fails with a clear message when no huge page is free.
fn check_hugepages() -> Result<(), DpdkError> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    match (field("HugePages_Total:"), field("HugePages_Free:")) {
        (Some(0), _) | (None, _) => Err(DpdkError::Hugepages("none are reserved".into())),
        (Some(t), Some(0)) => Err(DpdkError::Hugepages(format!(
            "all {t} reserved ones are in use"
        ))),
        _ => Ok(()),
    }
}

fn mempool() -> Result<Mempool, DpdkError> {
    MEMPOOL
        .get_or_init(|| {
            let n = *N_MBUFS.get().unwrap_or(&DEFAULT_MBUFS);
            let name = c"vswitchd_mbufs";
            // SAFETY: the EAL runs (callers check); the name is a valid C string; the data
            // room is exactly our buffer size, DPDK's 128-byte headroom included.
            let mp = unsafe {
                sys::rte_pktmbuf_pool_create(
                    name.as_ptr(),
                    n,
                    MEMPOOL_CACHE,
                    0,
                    BUF_SIZE as u16,
                    sys::SOCKET_ID_ANY,
                )
            };
            if mp.is_null() {
                return Err(DpdkError::Device {
                    devargs: String::new(),
                    reason: format!("no mempool of {n} mbufs: {}", last_error()),
                });
            }
            Ok(Mempool(mp))
        })
        .clone()
}

thread_local! {
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling poll thread known to DPDK (an lcore id, so mempool caches work). Once
/// per thread; a failure (no lcore id left) leaves the thread working without caches.
#[inline]
fn register_thread() {
    if !REGISTERED.get() {
        REGISTERED.set(true);
        // SAFETY: the EAL runs (a port exists); registering a non-EAL thread is allowed
        // from any thread, once.
        unsafe {
            if sys::vsw_lcore_id() == u32::MAX {
                sys::rte_thread_register();
            }
        }
    }
}

/// Drop and error counters of a DPDK port beyond the common ones.
#[derive(Debug, Default)]
struct Extra {
    rx_multi_segment: AtomicU64,
    rx_copied: AtomicU64,
    tx_no_mbuf: AtomicU64,
    tx_too_big: AtomicU64,
}

/// A DPDK ethernet device as a port.
#[derive(Debug)]
pub struct DpdkPort {
    name: String,
    devargs: String,
    /// DPDK's name of the device (what `devargs` starts with).
    dev: String,
    port_id: u16,
    n_rxq: usize,
    mempool: Mempool,
    /// One lock per transmit queue.
    txq: Vec<Mutex<()>>,
    counters: PortCounters,
    extra: Extra,
}

impl DpdkPort {
    /// Probes `devargs` (e.g. `net_tap0,iface=dtap0`, `net_af_xdp0,iface=veth1`,
    /// `0000:01:00.0`), sets up `n_rxq` receive queues (and as many transmit queues, up to
    /// what the device has) and starts it.
    /// The EAL must be running ([`eal_init`]).
    pub fn new(name: &str, devargs: &str, n_rxq: usize) -> Result<DpdkPort, DpdkError> {
        let dev_err = |reason: String| DpdkError::Device {
            devargs: devargs.to_string(),
            reason,
        };
        if !eal_running() {
            return Err(dev_err("DPDK is not initialised".into()));
        }
        let dev = devargs.split(',').next().unwrap_or("").trim().to_string();
        if dev.is_empty() {
            return Err(dev_err(
                "devargs must start with a device name or PCI address".into(),
            ));
        }
        let mempool = mempool().map_err(|e| dev_err(e.to_string()))?;
        let _g = CONTROL.lock();
        let cdev = CString::new(dev.as_str()).map_err(|_| dev_err("NUL byte".into()))?;
        let cargs = CString::new(devargs).map_err(|_| dev_err("NUL byte".into()))?;
        let mut port_id = 0u16;
        // SAFETY: a valid C string and an out-parameter.
        if unsafe { sys::rte_eth_dev_get_port_by_name(cdev.as_ptr(), &mut port_id) } == 0 {
            return Err(dev_err(format!(
                "{dev} is already in use by another port of this switch"
            )));
        }
        // SAFETY: a valid C string; DPDK parses it and probes the device.
        let r = unsafe { sys::rte_dev_probe(cargs.as_ptr()) };
        if r < 0 {
            return Err(dev_err(format!("probe failed: {}", errno_text(r))));
        }
        // SAFETY: as above.
        if unsafe { sys::rte_eth_dev_get_port_by_name(cdev.as_ptr(), &mut port_id) } != 0 {
            detach(&dev);
            return Err(dev_err(format!(
                "probed, but no ethernet port is called {dev} (is it a network device?)"
            )));
        }
        match setup(port_id, n_rxq, mempool) {
            Ok(n_txq) => Ok(DpdkPort {
                name: name.to_string(),
                devargs: devargs.to_string(),
                dev,
                port_id,
                n_rxq,
                mempool,
                txq: (0..n_txq).map(|_| Mutex::new(())).collect(),
                counters: PortCounters::default(),
                extra: Extra::default(),
            }),
            Err(reason) => {
                // SAFETY: a port id DPDK gave us; closing an unstarted port is allowed.
                unsafe { sys::rte_eth_dev_close(port_id) };
                detach(&dev);
                Err(dev_err(reason))
            }
        }
    }

    /// The devargs the port was created with.
    pub fn devargs(&self) -> &str {
        &self.devargs
    }

    /// Mbufs free in the shared mempool now (for tests and diagnostics).
    pub fn mempool_available(&self) -> u32 {
        // SAFETY: the mempool lives for the process.
        unsafe { sys::vsw_mempool_avail_count(self.mempool.0) }
    }
}

/// Configures and starts `port` with `n_rxq` receive queues; returns its transmit queues.
fn setup(port: u16, n_rxq: usize, mp: Mempool) -> Result<usize, String> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: a valid port id and an out-parameter.
    let r = unsafe { sys::rte_eth_dev_info_get(port, &mut info) };
    if r != 0 {
        return Err(format!("no device info: {}", errno_text(r)));
    }
    let max = usize::from(info.max_rx_queues).min(MAX_RXQ);
    if n_rxq == 0 || n_rxq > max {
        return Err(format!(
            "n-rxq={n_rxq}: this device takes 1..={max} receive queues"
        ));
    }
    // As many transmit queues as receive queues (some drivers, net_tap among them, take
    // only equal counts); poll threads that send at once share them through their locks.
    let n_txq = n_rxq.min(usize::from(info.max_tx_queues).max(1));
    let conf = sys::rte_eth_conf::default();
    // SAFETY: a valid port id, queue counts within the device's limits, a zeroed config
    // (no offloads, no RSS beyond the default).
    let r = unsafe { sys::rte_eth_dev_configure(port, n_rxq as u16, n_txq as u16, &conf) };
    if r != 0 {
        return Err(format!("configure: {}", errno_text(r)));
    }
    let (mut nrx, mut ntx) = (RING_DESC, RING_DESC);
    // SAFETY: a configured port and two in/out parameters.
    unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut nrx, &mut ntx) };
    // SAFETY: a valid port id.
    let socket = unsafe { sys::rte_eth_dev_socket_id(port) };
    let socket = if socket < 0 { 0 } else { socket as u32 };
    for q in 0..n_rxq as u16 {
        // SAFETY: a configured port, a queue below its count, the shared mempool (alive for
        // the process); null config means the driver's defaults.
        let r =
            unsafe { sys::rte_eth_rx_queue_setup(port, q, nrx, socket, std::ptr::null(), mp.0) };
        if r != 0 {
            return Err(format!("rx queue {q}: {}", errno_text(r)));
        }
    }
    for q in 0..n_txq as u16 {
        // SAFETY: as above, for transmit queues.
        let r = unsafe { sys::rte_eth_tx_queue_setup(port, q, ntx, socket, std::ptr::null()) };
        if r != 0 {
            return Err(format!("tx queue {q}: {}", errno_text(r)));
        }
    }
    // SAFETY: a fully configured port.
    let r = unsafe { sys::rte_eth_dev_start(port) };
    if r != 0 {
        return Err(format!("start: {}", errno_text(r)));
    }
    // SAFETY: a started port. Not every driver has promiscuous mode (net_ring); that is fine.
    unsafe { sys::rte_eth_promiscuous_enable(port) };
    Ok(n_txq)
}

/// Removes a probed device from its bus (a virtual device by name, else a PCI device).
fn detach(dev: &str) {
    let bus = if dev.starts_with("net_") {
        c"vdev"
    } else {
        c"pci"
    };
    if let Ok(d) = CString::new(dev) {
        // SAFETY: valid C strings; removing a device that is closed.
        unsafe { sys::rte_eal_hotplug_remove(bus.as_ptr(), d.as_ptr()) };
    }
}

impl Drop for DpdkPort {
    fn drop(&mut self) {
        let _g = CONTROL.lock();
        // SAFETY: our port id, started in `new`; no poll thread uses the port any more (the
        // datapath drops a port only after every thread let go of it).
        unsafe {
            sys::rte_eth_dev_stop(self.port_id);
            sys::rte_eth_dev_close(self.port_id);
        }
        detach(&self.dev);
    }
}

impl Port for DpdkPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn n_rxq(&self) -> usize {
        self.n_rxq
    }

    fn rx_burst(&self, queue: usize, batch: &mut Batch, pool: &mut BufPool) -> usize {
        let want = batch.remaining_capacity().min(BURST);
        if want == 0 || queue >= self.n_rxq {
            return 0;
        }
        register_thread();
        let mut m = [null_mut::<sys::rte_mbuf>(); BURST];
        // SAFETY: our started port, a queue below its count polled only by this thread, room
        // for `want` pointers.
        let n = usize::from(unsafe {
            sys::vsw_rx_burst(self.port_id, queue as u16, m.as_mut_ptr(), want as u16)
        });
        let (mut got, mut bytes) = (0usize, 0u64);
        let (mut chained, mut copied, mut no_buf) = (0u64, 0u64, 0u64);
        for &mb in &m[..n] {
            // SAFETY: `mb` came from the rx burst: a valid mbuf we now own.
            match unsafe { PacketBuf::from_mbuf(mb) } {
                Ok(b) => {
                    bytes += b.len() as u64;
                    batch.push(b);
                    got += 1;
                }
                Err(mb) => {
                    // SAFETY: we own `mb`; read its header, copy its only segment if it has
                    // one, then free it once.
                    unsafe {
                        if (*mb).nb_segs != 1 {
                            chained += 1;
                        } else if let Some(mut b) = pool.get() {
                            let p = (*mb).buf_addr.cast::<u8>().add(usize::from((*mb).data_off));
                            let len = usize::from((*mb).data_len);
                            let frame = std::slice::from_raw_parts(p, len);
                            if b.set_frame(frame) {
                                bytes += len as u64;
                                batch.push(b);
                                got += 1;
                                copied += 1;
                            } else {
                                chained += 1;
                                pool.put(b);
                            }
                        } else {
                            no_buf += 1;
                        }
                        sys::vsw_pktmbuf_free(mb);
                    }
                }
            }
        }
        if got > 0 {
            self.counters.rx(got as u64, bytes);
        }
        if chained + no_buf > 0 {
            self.counters.rx_dropped(chained + no_buf);
            self.extra
                .rx_multi_segment
                .fetch_add(chained, Ordering::Relaxed);
        }
        if copied > 0 {
            self.extra.rx_copied.fetch_add(copied, Ordering::Relaxed);
        }
        got
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        if batch.is_empty() {
            return;
        }
        register_thread();
        let mut out = [null_mut::<sys::rte_mbuf>(); BURST];
        let mut lens = [0u32; BURST];
        let mut n = 0usize;
        let (mut no_mbuf, mut too_big) = (0u64, 0u64);
        for b in batch.drain(..) {
            let len = b.len();
            match b.into_mbuf() {
                Ok(m) => {
                    out[n] = m;
                    lens[n] = len as u32;
                    n += 1;
                }
                Err(b) => {
                    // SAFETY: the shared mempool lives for the process.
                    let m = unsafe { sys::vsw_pktmbuf_alloc(self.mempool.0) };
                    if m.is_null() {
                        no_mbuf += 1;
                    } else {
                        // SAFETY: a fresh single-segment mbuf of our pool: `BUF_SIZE` bytes
                        // at `buf_addr` with the default headroom in front.
                        unsafe {
                            let room = usize::from((*m).buf_len) - usize::from((*m).data_off);
                            if len > room {
                                too_big += 1;
                                sys::vsw_pktmbuf_free(m);
                            } else {
                                let p = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
                                std::ptr::copy_nonoverlapping(b.data().as_ptr(), p, len);
                                (*m).data_len = len as u16;
                                (*m).pkt_len = len as u32;
                                out[n] = m;
                                lens[n] = len as u32;
                                n += 1;
                            }
                        }
                    }
                    pool.put(b);
                }
            }
        }
        let mut sent = 0usize;
        if n > 0 {
            // The first transmit queue no other thread holds, else wait for the first.
            let (q, _g) = self
                .txq
                .iter()
                .enumerate()
                .find_map(|(i, l)| l.try_lock().map(|g| (i, g)))
                .unwrap_or_else(|| (0, self.txq[0].lock()));
            while sent < n {
                // SAFETY: our started port, a queue whose lock we hold, `n - sent` owned
                // mbufs; DPDK takes the ones it reports sent.
                let k = unsafe {
                    sys::vsw_tx_burst(
                        self.port_id,
                        q as u16,
                        out[sent..].as_mut_ptr(),
                        (n - sent) as u16,
                    )
                };
                if k == 0 {
                    break;
                }
                sent += usize::from(k);
            }
        }
        if sent < n {
            // SAFETY: the mbufs DPDK did not take are still ours; freed once.
            unsafe { sys::vsw_pktmbuf_free_bulk(out[sent..].as_mut_ptr(), (n - sent) as u32) };
        }
        let bytes: u64 = lens[..sent].iter().map(|&l| u64::from(l)).sum();
        if sent > 0 {
            self.counters.tx(sent as u64, bytes);
        }
        let dropped = (n - sent) as u64 + no_mbuf + too_big;
        if dropped > 0 {
            self.counters.tx_dropped(dropped);
            self.extra.tx_no_mbuf.fetch_add(no_mbuf, Ordering::Relaxed);
            self.extra.tx_too_big.fetch_add(too_big, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> PortStats {
        let mut s = self.counters.read();
        let mut e = sys::rte_eth_stats::default();
        // SAFETY: our port id and an out-parameter.
        if unsafe { sys::rte_eth_stats_get(self.port_id, &mut e) } == 0 {
            s.rx_dropped += e.imissed + e.rx_nombuf;
            s.rx_errors += e.ierrors;
            s.tx_errors += e.oerrors;
        }
        s
    }

    fn link_up(&self) -> Option<bool> {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: our port id and an out-parameter; the no-wait variant never blocks.
        if unsafe { sys::rte_eth_link_get_nowait(self.port_id, &mut l) } != 0 {
            return Some(false);
        }
        Some(l.link_status() != 0)
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        let mut e = sys::rte_eth_stats::default();
        // SAFETY: as in `stats`.
        if unsafe { sys::rte_eth_stats_get(self.port_id, &mut e) } == 0 {
            out.push(("rx_missed", e.imissed));
            out.push(("rx_no_mbuf_dpdk", e.rx_nombuf));
        }
        let x = &self.extra;
        out.push((
            "rx_multi_segment",
            x.rx_multi_segment.load(Ordering::Relaxed),
        ));
        out.push(("rx_copied", x.rx_copied.load(Ordering::Relaxed)));
        out.push(("tx_no_mbuf", x.tx_no_mbuf.load(Ordering::Relaxed)));
        out.push(("tx_too_big", x.tx_too_big.load(Ordering::Relaxed)));
        out.push(("mempool_free", self.mempool_available() as u64));
    }
}
