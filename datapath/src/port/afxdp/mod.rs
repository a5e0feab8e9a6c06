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
//! Thread-safety: each queue's rings sit behind a mutex taken once per burst (one poll thread
//! polls a queue: uncontended). Ring indices shared with the kernel are atomics with acquire /
//! release ordering, as the AF_XDP ABI requires.

// The kernel interface: bpf(), AF_XDP sockets, mmap'ed rings and UMEM. Every unsafe block
// says why.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;

use super::{Batch, Port, PortCounters, PortStats};
use crate::packet::{BufPool, MAX_FRAME};

const FRAME_SIZE: usize = 2048;
/// UMEM frames per queue (4 MiB: inside the 8 MiB memlock limit with a second queue).
const FRAMES: usize = 2048;
/// Entries per ring (power of two).
const RING: u32 = 1024;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

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

fn last() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

/// The program: `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`
fn program(map_fd: RawFd) -> [Insn; 6] {
    [
        // r2 = *(u32 *)(r1 + offsetof(struct xdp_md, rx_queue_index))
        insn(0x61, 2, 1, 16, 0),
        // r1 = map (ld_imm64 with BPF_PSEUDO_MAP_FD), two slots
        insn(0x18, 1, 1, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: frames of queues without a socket go to the kernel stack
        insn(0xb7, 3, 0, 0, 2),
        // call bpf_redirect_map
        insn(0x85, 0, 0, 0, 51),
        // exit
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `bpf(cmd, attr, size)` with `attr` a zero-padded byte image of the union member.
fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> libc::c_long {
    // SAFETY: `attr` is a live 128-byte buffer, larger than every bpf_attr member used
    // here; the kernel reads (and for some commands writes) within that size.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

fn put32(a: &mut [u8; 128], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(a: &mut [u8; 128], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn owned(fd: libc::c_long) -> Option<OwnedFd> {
    // SAFETY: a non-negative return of bpf()/socket() is a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A mapped ring: producer, consumer, flags and descriptors inside one mapping.
#[derive(Debug)]
struct Ring {
    map: *mut u8,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
}

impl Ring {
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, at a 4-byte aligned u32 the kernel shares.
        unsafe { &*self.producer }
    }
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as above.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
    /// Address-ring slot `i` (fill, completion: u64 each).
    fn addr(&self, i: u32) -> *mut u64 {
        self.desc
            .wrapping_add(((i & (RING - 1)) as usize) * 8)
            .cast()
    }
    /// Descriptor-ring slot `i` (rx, tx: struct xdp_desc, 16 bytes).
    fn xdesc(&self, i: u32) -> *mut libc::xdp_desc {
        self.desc
            .wrapping_add(((i & (RING - 1)) as usize) * 16)
            .cast()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping mmap returned; nothing uses it after drop.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

/// One queue's socket, UMEM and rings.
#[derive(Debug)]
struct Queue {
    /// Bound in zero-copy mode (the driver supports it) rather than copy mode.
    zero_copy: bool,
    fill: Ring,
    comp: Ring,
    rx: Ring,
    tx: Ring,
    /// Free transmit frames (UMEM addresses).
    tx_free: Vec<u64>,
    umem: *mut u8,
    umem_len: usize,
    sock: OwnedFd,
}

// SAFETY: the raw pointers point into mappings owned by the Queue; every access happens
// under the queue's mutex and follows the AF_XDP ring protocol with the kernel.
unsafe impl Send for Queue {}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: exactly the UMEM mapping; the socket (dropped after) no longer uses it
        // for new frames, and the kernel holds its own pin on the pages until close.
        unsafe {
            libc::munmap(self.umem.cast(), self.umem_len);
        }
    }
}

fn map_ring(
    sock: RawFd,
    off: &libc::xdp_ring_offset,
    pgoff: u64,
    entry: usize,
) -> std::io::Result<Ring> {
    let len = off.desc as usize + RING as usize * entry;
    // SAFETY: maps the ring the kernel created for this socket at its documented offset.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            sock,
            pgoff as libc::off_t,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(last());
    }
    let base: *mut u8 = map.cast();
    Ok(Ring {
        map: base,
        map_len: len,
        producer: base.wrapping_add(off.producer as usize).cast(),
        consumer: base.wrapping_add(off.consumer as usize).cast(),
        flags: base.wrapping_add(off.flags as usize).cast(),
        desc: base.wrapping_add(off.desc as usize),
    })
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> std::io::Result<()> {
    // SAFETY: `v` is a live T of the size passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(last()) }
}

impl Queue {
    fn open(name: &str, ifindex: u32, queue: u32, map_fd: RawFd) -> Result<Queue, AfXdpError> {
        let sys = |what: &'static str| AfXdpError::Sys {
            name: name.to_string(),
            what,
            source: last(),
        };
        // SAFETY: socket() takes no pointers; the result is checked by `owned`.
        let sock =
            owned(
                unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) }
                    as libc::c_long,
            )
            .ok_or_else(|| sys("socket(AF_XDP)"))?;
        let fd = sock.as_raw_fd();
        let umem_len = FRAMES * FRAME_SIZE;
        // SAFETY: an anonymous private mapping; checked below and owned by the Queue.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(sys("mmap of the UMEM"));
        }
        let umem: *mut u8 = umem.cast();
        // From here a failure must unmap the UMEM: wrap it in a guard until the Queue owns it.
        struct Guard(*mut u8, usize);
        impl Drop for Guard {
            fn drop(&mut self) {
                // SAFETY: the mapping made just above, not yet owned by anything else.
                unsafe {
                    libc::munmap(self.0.cast(), self.1);
                }
            }
        }
        let guard = Guard(umem, umem_len);
        let reg = libc::xdp_umem_reg {
            addr: umem as u64,
            len: umem_len as u64,
            chunk_size: FRAME_SIZE as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(fd, libc::XDP_UMEM_REG, &reg).map_err(|source| AfXdpError::Umem {
            bytes: umem_len,
            source,
        })?;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(fd, opt, &RING).map_err(|source| AfXdpError::Sys {
                name: name.to_string(),
                what: "ring size",
                source,
            })?;
        }
        // SAFETY: xdp_mmap_offsets is plain data; the kernel fills it (len checked below).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off`/`len` are live and sized as passed.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if r != 0 || len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            return Err(sys("XDP_MMAP_OFFSETS"));
        }
        let ring = |o: &libc::xdp_ring_offset, pg: u64, entry: usize, what: &'static str| {
            map_ring(fd, o, pg, entry).map_err(|source| AfXdpError::Sys {
                name: name.to_string(),
                what,
                source,
            })
        };
        let fill = ring(&off.fr, libc::XDP_UMEM_PGOFF_FILL_RING, 8, "mmap fill ring")?;
        let comp = ring(
            &off.cr,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            8,
            "mmap completion ring",
        )?;
        let rx = ring(&off.rx, libc::XDP_PGOFF_RX_RING as u64, 16, "mmap rx ring")?;
        let tx = ring(&off.tx, libc::XDP_PGOFF_TX_RING as u64, 16, "mmap tx ring")?;
        // Half the frames wait in the fill ring for received packets; half are for sending.
        let half = (FRAMES / 2).min(RING as usize);
        for i in 0..half {
            // SAFETY: slot i < RING of the fill ring's descriptor area.
            unsafe { fill.addr(i as u32).write((i * FRAME_SIZE) as u64) };
        }
        fill.prod().store(half as u32, Ordering::Release);
        let tx_free: Vec<u64> = (half..FRAMES).map(|i| (i * FRAME_SIZE) as u64).collect();
        // Zero-copy where the driver allows it (the frames then move between the NIC and
        // the UMEM without a kernel copy; this code handles both modes alike), else copy
        // mode. veth, for one, refuses zero-copy.
        let mut sxdp = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_ZEROCOPY | libc::XDP_USE_NEED_WAKEUP,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // A socket of a process that just exited releases its queue asynchronously: a bind
        // right after a restart may see EBUSY for a short while. Retry for up to 2 s.
        let mut tries = 0;
        loop {
            // SAFETY: `sxdp` is a valid sockaddr_xdp of the size passed, live across the call.
            let r = unsafe {
                libc::bind(
                    fd,
                    (&sxdp as *const libc::sockaddr_xdp).cast(),
                    std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
            let err = last().raw_os_error();
            if sxdp.sxdp_flags & libc::XDP_ZEROCOPY != 0 && err != Some(libc::EBUSY) {
                sxdp.sxdp_flags = libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP;
                continue;
            }
            let busy = err == Some(libc::EBUSY);
            tries += 1;
            if !busy || tries >= 40 {
                return Err(sys("bind to the queue"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut a = [0u8; 128];
        let key: u32 = queue;
        let val: u32 = fd as u32;
        put32(&mut a, 0, map_fd as u32);
        put64(&mut a, 8, &key as *const u32 as u64);
        put64(&mut a, 16, &val as *const u32 as u64);
        if bpf(BPF_MAP_UPDATE_ELEM, &mut a) != 0 {
            return Err(sys("inserting the socket into the XSK map"));
        }
        std::mem::forget(guard);
        Ok(Queue {
            fill,
            comp,
            rx,
            tx,
            tx_free,
            umem,
            umem_len,
            sock,
            zero_copy: sxdp.sxdp_flags & libc::XDP_ZEROCOPY != 0,
        })
    }

    fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let a = addr as usize;
        (a + len <= self.umem_len).then(|| {
            // SAFETY: in bounds of the UMEM (checked); the frame is ours until returned.
            unsafe { std::slice::from_raw_parts(self.umem.wrapping_add(a), len) }
        })
    }

    fn rx_burst(&mut self, batch: &mut Batch, pool: &mut BufPool, c: &PortCounters) -> usize {
        let cons = self.rx.cons().load(Ordering::Relaxed);
        let prod = self.rx.prod().load(Ordering::Acquire);
        let avail = prod
            .wrapping_sub(cons)
            .min(batch.remaining_capacity() as u32);
        let mut fprod = self.fill.prod().load(Ordering::Relaxed);
        let (mut n, mut bytes, mut dropped) = (0usize, 0u64, 0u64);
        for i in 0..avail {
            // SAFETY: slots cons..prod of the rx ring were published by the kernel (acquire).
            let d = unsafe { self.rx.xdesc(cons.wrapping_add(i)).read() };
            let len = d.len as usize;
            let base = d.addr & !(FRAME_SIZE as u64 - 1);
            match (self.frame(d.addr, len), pool.get()) {
                (Some(f), Some(mut b)) if len <= MAX_FRAME => {
                    b.set_frame(f);
                    bytes += len as u64;
                    n += 1;
                    batch.push(b);
                }
                (_, b) => {
                    if let Some(b) = b {
                        pool.put(b);
                    }
                    dropped += 1;
                }
            }
            // The frame goes straight back to the kernel for the next packet.
            // SAFETY: the fill ring has room: every frame is in exactly one place.
            unsafe { self.fill.addr(fprod).write(base) };
            fprod = fprod.wrapping_add(1);
        }
        if avail > 0 {
            self.rx
                .cons()
                .store(cons.wrapping_add(avail), Ordering::Release);
            self.fill.prod().store(fprod, Ordering::Release);
        }
        if self.fill.needs_wakeup() {
            // SAFETY: a zero-length recvfrom only kicks the driver; no buffers are passed.
            unsafe {
                libc::recvfrom(
                    self.sock.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
        if n > 0 {
            c.rx(n as u64, bytes);
        }
        if dropped > 0 {
            c.rx_dropped(dropped);
        }
        n
    }

    fn reap(&mut self) {
        let cons = self.comp.cons().load(Ordering::Relaxed);
        let prod = self.comp.prod().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons);
        for i in 0..n {
            // SAFETY: completion slots cons..prod were published by the kernel.
            let a = unsafe { self.comp.addr(cons.wrapping_add(i)).read() };
            self.tx_free.push(a & !(FRAME_SIZE as u64 - 1));
        }
        if n > 0 {
            self.comp.cons().store(prod, Ordering::Release);
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut BufPool, c: &PortCounters) {
        self.reap();
        let mut prod = self.tx.prod().load(Ordering::Relaxed);
        let cons = self.tx.cons().load(Ordering::Acquire);
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for b in batch.drain(..) {
            let room = RING - prod.wrapping_sub(cons);
            match self.tx_free.pop() {
                Some(addr) if room > 0 && b.len() <= FRAME_SIZE => {
                    let data = b.data();
                    // SAFETY: `addr` is a free tx frame of FRAME_SIZE bytes inside the UMEM.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            data.as_ptr(),
                            self.umem.wrapping_add(addr as usize),
                            data.len(),
                        );
                        self.tx.xdesc(prod).write(libc::xdp_desc {
                            addr,
                            len: data.len() as u32,
                            options: 0,
                        });
                    }
                    prod = prod.wrapping_add(1);
                    sent += 1;
                    bytes += data.len() as u64;
                }
                other => {
                    if let Some(a) = other {
                        self.tx_free.push(a);
                    }
                    dropped += 1;
                }
            }
            pool.put(b);
        }
        if sent > 0 {
            self.tx.prod().store(prod, Ordering::Release);
            if self.tx.needs_wakeup() {
                // SAFETY: a zero-length sendto only kicks transmission.
                unsafe {
                    libc::sendto(
                        self.sock.as_raw_fd(),
                        std::ptr::null(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null(),
                        0,
                    );
                }
            }
        }
        c.tx(sent, bytes);
        if dropped > 0 {
            c.tx_dropped(dropped);
        }
    }
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
    _map: OwnedFd,
    counters: PortCounters,
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
        Ok(AfXdpPort {
            ifindex,
            name: name.to_string(),
            mode,
            _link: link,
            _prog: prog,
            queues,
            _map: map,
            counters: PortCounters::default(),
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
        self.queues.get(q).map(|m| m.lock().sock.as_raw_fd())
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
            Some(q) => q.lock().rx_burst(batch, pool, &self.counters),
            None => 0,
        }
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        // Every queue's socket can send (each has its own UMEM and rings): poll threads
        // sending at once take the first queue nobody holds, so they do not wait on one lock.
        for q in &self.queues {
            if let Some(mut g) = q.try_lock() {
                g.tx_burst(batch, pool, &self.counters);
                return;
            }
        }
        match self.queues.first() {
            Some(q) => q.lock().tx_burst(batch, pool, &self.counters),
            None => {
                let n = batch.len() as u64;
                pool.put_batch(batch);
                self.counters.tx_dropped(n);
            }
        }
    }

    fn stats(&self) -> PortStats {
        self.counters.read()
    }
}

#[cfg(test)]
#[path = "afxdp_tests.rs"]
mod tests;
