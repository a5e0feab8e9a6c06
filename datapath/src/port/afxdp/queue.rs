//! One AF_XDP queue: its socket, UMEM and the four rings shared with the kernel (fill,
//! completion, rx, tx), the burst functions over them, and the kernel's own count of what
//! it dropped before the socket (`XDP_STATISTICS`).
//!
//! Thread-safety: a `Queue` sits behind its port's mutex (one poll thread at a time); ring
//! indices shared with the kernel are atomics with acquire / release ordering, as the
//! AF_XDP ABI requires. [`kernel_stats`] needs only the socket.

// The kernel interface: AF_XDP sockets, mmap'ed rings and UMEM. Every unsafe block says why.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::bpf::{BPF_MAP_UPDATE_ELEM, bpf, last, owned, put32, put64};
use super::{AfXdpError, FRAME_SIZE, FRAMES, RING, XdpCounters};
use crate::packet::{BufPool, MAX_FRAME};
use crate::port::{Batch, PortCounters};

/// A mapped ring: producer, consumer, flags and descriptors inside one mapping.
#[derive(Debug)]
pub(super) struct Ring {
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
pub(super) struct Queue {
    /// Bound in zero-copy mode (the driver supports it) rather than copy mode.
    pub(super) zero_copy: bool,
    fill: Ring,
    comp: Ring,
    rx: Ring,
    tx: Ring,
    /// Free transmit frames (UMEM addresses).
    tx_free: Vec<u64>,
    umem: *mut u8,
    umem_len: usize,
    pub(super) sock: OwnedFd,
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
    pub(super) fn open(
        name: &str,
        ifindex: u32,
        queue: u32,
        map_fd: RawFd,
    ) -> Result<Queue, AfXdpError> {
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

    pub(super) fn rx_burst(
        &mut self,
        batch: &mut Batch,
        pool: &mut BufPool,
        c: &PortCounters,
        x: &XdpCounters,
    ) -> usize {
        let cons = self.rx.cons().load(Ordering::Relaxed);
        let prod = self.rx.prod().load(Ordering::Acquire);
        let avail = prod
            .wrapping_sub(cons)
            .min(batch.remaining_capacity() as u32);
        let mut fprod = self.fill.prod().load(Ordering::Relaxed);
        let (mut n, mut bytes, mut dropped, mut too_big) = (0usize, 0u64, 0u64, 0u64);
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
                    // Larger than a packet buffer holds: lost here, and said so.
                    too_big += u64::from(len > MAX_FRAME);
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
            if too_big > 0 {
                x.rx_too_big.fetch_add(too_big, Ordering::Relaxed);
            }
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

    pub(super) fn tx_burst(
        &mut self,
        batch: &mut Batch,
        pool: &mut BufPool,
        c: &PortCounters,
        x: &XdpCounters,
    ) {
        self.reap();
        let mut prod = self.tx.prod().load(Ordering::Relaxed);
        let cons = self.tx.cons().load(Ordering::Acquire);
        let (mut sent, mut bytes, mut dropped, mut too_big) = (0u64, 0u64, 0u64, 0u64);
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
                    too_big += u64::from(b.len() > FRAME_SIZE);
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
            x.tx_too_big.fetch_add(too_big, Ordering::Relaxed);
            x.tx_no_room.fetch_add(dropped - too_big, Ordering::Relaxed);
        }
    }
}

/// The kernel's counters of one AF_XDP socket (`XDP_STATISTICS`): what it dropped before
/// the frames reached the rx ring, and descriptors it refused. Never reset by reading. A
/// kernel older than 5.9 reports only the first three (the others read zero).
pub(super) fn kernel_stats(sock: RawFd) -> libc::xdp_statistics {
    // SAFETY: xdp_statistics is plain data (six u64s); zero is a valid value.
    let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
    // SAFETY: `st`/`len` are live and sized as passed; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&mut st as *mut libc::xdp_statistics).cast(),
            &mut len,
        )
    };
    if r != 0 {
        // SAFETY: as above: all-zero counters.
        return unsafe { std::mem::zeroed() };
    }
    st
}
