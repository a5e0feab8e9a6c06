//! The split virtqueue, device side: what the switch reads from a guest's transmit queue
//! and writes into its receive queue.
//!
//! What: a [`Vring`] is one started queue: our pointers to its descriptor table, available
//! ring and used ring inside [`GuestMemory`], and the device's two indices (`last_avail`,
//! the next available entry to take; `used_idx`, the next used entry to fill).
//! [`Vring::dequeue_burst`] copies the frames of up to a burst of transmit chains into pool
//! buffers (skipping the virtio-net header); [`Vring::enqueue_burst`] copies a burst of
//! frames into receive chains, each preceded by a virtio-net header (with mergeable receive
//! buffers a frame may span several chains, `num_buffers` saying how many). Both publish
//! the used index once per burst and interrupt the guest only when it asked for it
//! (`VRING_AVAIL_F_NO_INTERRUPT`, or the `used_event` index with `VIRTIO_RING_F_EVENT_IDX`).
//! Indirect descriptor tables are followed.
//!
//! Untrusted input: everything in these rings is written by the guest, at any time. Every
//! value is read once into a local and checked before use: descriptor indices against the
//! table they index, chains against a budget of descriptors (a loop ends there), indirect
//! tables for size, alignment and nesting, every buffer address and length against the
//! guest's memory regions ([`GuestMemory::translate`]), descriptor directions against the
//! queue's. A bad chain is returned to the guest unused and counted; it never makes the
//! switch touch memory outside the guest's regions, and it never stops the queue.
//!
//! Why not `virtio-queue`: its `Queue` reads every ring field and descriptor through the
//! generic `GuestMemory` trait (a region search and bounds check per access, a fresh
//! `DescriptorChain` per packet). The tests use it as the reference implementation of the
//! same ring layout (`tests/vhost.rs`), and `bench/benches/vhost.rs` measures both.
//!
//! Thread-safety: a `Vring` is used by one thread at a time (its queue's mutex, taken once
//! per burst). The indices shared with the guest are accessed atomically with the orderings
//! the virtio spec asks for: the available index with acquire, the used index with release,
//! and a full fence before reading the guest's notification wishes.

// Guest memory is shared with another process: raw pointers, volatile and atomic accesses.
// Every unsafe block says why.
#![allow(unsafe_code)]

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering, fence};

use super::memory::GuestMemory;
use crate::packet::BufPool;
use crate::port::Batch;

mod enqueue;

/// The descriptor continues in `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// The device writes this buffer (receive queues).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// The buffer is a table of descriptors.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// In the used ring's flags: the device does not want kicks.
const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// In the available ring's flags: the driver does not want interrupts.
const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Largest queue the spec allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// Most segments (contiguous pieces of guest memory) one received frame may be written to.
const MAX_SEGS: usize = 64;
/// Most receive chains one frame may take (mergeable receive buffers).
const MAX_CHAINS: usize = 64;
/// Most chains prefetched at once (a burst).
const BURST_MAX: usize = crate::port::BURST;
/// The largest virtio-net header (`virtio_net_hdr_mrg_rxbuf`).
const MAX_HDR: usize = 12;

/// Where a queue lives, as the frontend gave it (its own virtual addresses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingAddrs {
    /// Entries in the queue (a power of two).
    pub size: u16,
    /// The descriptor table.
    pub desc_uva: u64,
    /// The available ring.
    pub avail_uva: u64,
    /// The used ring.
    pub used_uva: u64,
}

/// What was negotiated that changes how a ring is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFeatures {
    /// `VIRTIO_RING_F_EVENT_IDX`.
    pub event_idx: bool,
    /// `VIRTIO_NET_F_MRG_RXBUF`: a received frame may span chains.
    pub mergeable: bool,
    /// Bytes of virtio-net header in front of every frame (10, or 12 with `VERSION_1` or
    /// mergeable buffers).
    pub hdr_len: u8,
    /// `VIRTIO_F_IN_ORDER`: chains are used in the order they were made available (this
    /// ring always does), so a burst of transmit completions is one used entry, the last.
    pub in_order: bool,
    /// Prefetch what a burst will touch (on by default; off only to measure what it is
    /// worth, in `bench/benches/vhost.rs`).
    pub prefetch: bool,
}

impl Default for RingFeatures {
    fn default() -> Self {
        RingFeatures {
            event_idx: false,
            mergeable: false,
            hdr_len: 10,
            in_order: false,
            prefetch: true,
        }
    }
}

/// Why a ring could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The size is not a power of two in 1..=32768.
    #[error("queue size {0} is not a power of two up to 32768")]
    BadSize(u16),
    /// A ring part is not inside the guest's memory.
    #[error("the {0} of the queue is not inside the guest's memory")]
    OutsideMemory(&'static str),
    /// A ring part is misaligned.
    #[error("the {0} of the queue is misaligned")]
    Misaligned(&'static str),
}

/// What is wrong with one chain (the guest's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A head or `next` index past the end of its table.
    BadIndex,
    /// More descriptors than the table holds: a loop.
    Loop,
    /// An indirect table that is empty, not a whole number of descriptors, misaligned,
    /// nested, or too large.
    BadIndirect,
    /// A read-only buffer where the device must write, or the reverse.
    WrongDirection,
    /// A buffer not inside the guest's memory.
    BadAddress,
    /// The frame is larger than a packet buffer.
    TooBig,
}

/// Counters of one burst, added to the port's once per burst.
#[derive(Debug, Default, Clone, Copy)]
pub struct BurstStats {
    /// Frames moved.
    pub pkts: u64,
    /// Their bytes (without virtio-net headers).
    pub bytes: u64,
    /// Chains with bad indices, loops or bad indirect tables, or the wrong direction.
    pub bad_descriptor: u64,
    /// Chains pointing outside guest memory.
    pub bad_address: u64,
    /// Transmitted frames larger than a packet buffer, or chains with no frame after the
    /// header.
    pub bad_length: u64,
    /// Frames the guest had no (or not enough) receive buffers for.
    pub no_room: u64,
    /// Bursts refused because the available index was more than a queue ahead.
    pub ring_corrupt: u64,
    /// Interrupts sent to the guest.
    pub interrupts: u64,
}

impl BurstStats {
    fn count(&mut self, e: ChainError) {
        match e {
            ChainError::BadAddress => self.bad_address += 1,
            ChainError::TooBig => self.bad_length += 1,
            _ => self.bad_descriptor += 1,
        }
    }
}

/// One descriptor as read from a table.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// A contiguous piece of a guest buffer, in our address space.
#[derive(Debug, Clone, Copy)]
struct Seg {
    ptr: *mut u8,
    len: usize,
}

/// A started queue.
#[derive(Debug)]
pub struct Vring {
    mem: Arc<GuestMemory>,
    desc: *const Desc,
    avail: *mut u8,
    used: *mut u8,
    size: u16,
    mask: u16,
    /// Next available entry the device takes.
    pub last_avail: u16,
    /// Next used entry the device fills (its copy of the used index).
    pub used_idx: u16,
    features: RingFeatures,
    call: Option<Arc<File>>,
}

// SAFETY: the pointers point into mappings owned by `mem`, which the ring keeps alive; a
// `Vring` is used by one thread at a time (its queue's mutex), and what it shares with the
// guest is accessed with volatile and atomic operations only.
unsafe impl Send for Vring {}

/// Starts loading the cache line at `p` into this core's cache. A hint only: it never
/// faults, whatever the address, and changes no result.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads nothing architecturally and never faults, for any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts loading the cache line at `p` for writing (PREFETCHW: the line arrives exclusive,
/// so the stores that follow do not wait for another core to give it up). A hint only.
#[inline(always)]
fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        // SAFETY: PREFETCHW reads and writes nothing architecturally and never faults, for
        // any address; it is only executed where CPUID says the CPU has it.
        unsafe {
            core::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly))
        };
        return;
    }
    prefetch(p);
}

/// Whether the CPU has PREFETCHW (CPUID 0x8000_0001, ECX bit 8).
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
        ext >= 0x8000_0001 && core::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0
    })
}

/// True when an index moving from `old` to `new` passes `event` (virtio's `vring_need_event`).
#[inline]
fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

impl Vring {
    /// Starts a queue at `addrs` in `mem`, at available index `base`. The used index is
    /// taken from the ring itself (a reconnecting frontend's ring has moved on): when it
    /// differs from `base`, both indices resume from it, as DPDK's vhost library does.
    pub fn new(
        mem: Arc<GuestMemory>,
        addrs: &RingAddrs,
        base: u16,
        features: RingFeatures,
        call: Option<Arc<File>>,
    ) -> Result<Vring, RingError> {
        let size = addrs.size;
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(RingError::BadSize(size));
        }
        let n = u64::from(size);
        let part = |uva: u64, len: u64, align: usize, what: &'static str| {
            let p = mem
                .translate_uva(uva, len)
                .ok_or(RingError::OutsideMemory(what))?;
            if !(p as usize).is_multiple_of(align) {
                return Err(RingError::Misaligned(what));
            }
            Ok(p)
        };
        let desc = part(addrs.desc_uva, 16 * n, 16, "descriptor table")?;
        let avail = part(addrs.avail_uva, 6 + 2 * n, 2, "available ring")?;
        let used = part(addrs.used_uva, 6 + 8 * n, 4, "used ring")?;
        let mut ring = Vring {
            mem,
            desc: desc as *const Desc,
            avail,
            used,
            size,
            mask: size - 1,
            last_avail: base,
            used_idx: base,
            features,
            call,
        };
        let used_now = ring.used_idx_atomic().load(Ordering::Acquire);
        if used_now != base {
            ring.last_avail = used_now;
            ring.used_idx = used_now;
        }
        Ok(ring)
    }

    /// Entries in the queue.
    pub fn size(&self) -> u16 {
        self.size
    }

    fn avail_idx_atomic(&self) -> &AtomicU16 {
        // SAFETY: `avail + 2` is inside the available ring (checked in `new`), 2-aligned, and
        // lives as long as `self.mem`, which outlives the borrow of `self`. The guest writes
        // it concurrently: hence an atomic.
        unsafe { AtomicU16::from_ptr(self.avail.add(2).cast()) }
    }

    fn used_idx_atomic(&self) -> &AtomicU16 {
        // SAFETY: as for `avail_idx_atomic`, for the used ring's index.
        unsafe { AtomicU16::from_ptr(self.used.add(2).cast()) }
    }

    /// The guest's available index (acquire: the entries before it are published).
    #[inline]
    fn avail_idx(&self) -> u16 {
        u16::from_le(self.avail_idx_atomic().load(Ordering::Acquire))
    }

    /// The head index in available entry `i`.
    #[inline]
    fn avail_entry(&self, i: u16) -> u16 {
        let off = 4 + 2 * usize::from(i & self.mask);
        // SAFETY: `off + 2 <= 4 + 2 * size`, inside the available ring; aligned to 2.
        u16::from_le(unsafe { self.avail.add(off).cast::<u16>().read_volatile() })
    }

    /// Appends a used entry (not yet visible to the guest).
    #[inline]
    fn push_used(&mut self, id: u16, len: u32) {
        let off = 4 + 8 * usize::from(self.used_idx & self.mask);
        // SAFETY: `off + 8 <= 4 + 8 * size`, inside the used ring; aligned to 4.
        unsafe {
            let p = self.used.add(off).cast::<u32>();
            p.write_volatile(u32::from(id).to_le());
            p.add(1).write_volatile(len.to_le());
        }
        self.used_idx = self.used_idx.wrapping_add(1);
    }

    /// Makes the used entries since `old` visible and interrupts the guest if it asked.
    #[inline]
    fn publish_used(&mut self, old: u16, st: &mut BurstStats) {
        if self.used_idx == old {
            return;
        }
        self.used_idx_atomic()
            .store(self.used_idx.to_le(), Ordering::Release);
        // The guest's wishes must be read after the index is visible (virtio 2.7.10).
        fence(Ordering::SeqCst);
        let wanted = if self.features.event_idx {
            let off = 4 + 2 * usize::from(self.size);
            // SAFETY: `used_event` is the last u16 of the available ring (inside, aligned).
            let used_event =
                u16::from_le(unsafe { self.avail.add(off).cast::<u16>().read_volatile() });
            need_event(used_event, self.used_idx, old)
        } else {
            // SAFETY: the flags are the first u16 of the available ring.
            let flags = u16::from_le(unsafe { self.avail.cast::<u16>().read_volatile() });
            flags & VRING_AVAIL_F_NO_INTERRUPT == 0
        };
        if wanted && let Some(call) = &self.call {
            signal_fd(std::os::fd::AsRawFd::as_raw_fd(&**call));
            st.interrupts += 1;
        }
    }

    /// Asks the guest for kicks (before the poll thread sleeps) or tells it they are not
    /// needed (while it polls). Returns true when entries are already available (enabling:
    /// the thread should not sleep).
    pub fn set_kicks(&mut self, enabled: bool) -> bool {
        if self.features.event_idx {
            if enabled {
                let off = 4 + 8 * usize::from(self.size);
                // SAFETY: `avail_event` is the last u16 of the used ring (inside, aligned).
                unsafe {
                    self.used
                        .add(off)
                        .cast::<u16>()
                        .write_volatile(self.last_avail.to_le())
                };
            }
        } else {
            let flags = if enabled { 0 } else { VRING_USED_F_NO_NOTIFY };
            // SAFETY: the flags are the first u16 of the used ring.
            unsafe { self.used.cast::<u16>().write_volatile(flags.to_le()) };
        }
        if !enabled {
            return false;
        }
        // The guest reads our wish after publishing its index; we read its index after
        // publishing our wish: one of us sees the other (virtio 2.7.10).
        fence(Ordering::SeqCst);
        self.avail_idx() != self.last_avail
    }

    /// Entries available now (`None`: the guest's index is more than a queue ahead).
    #[inline]
    fn pending(&self) -> Option<u16> {
        let p = self.avail_idx().wrapping_sub(self.last_avail);
        (p <= self.size).then_some(p)
    }

    /// Reads descriptor `i` of `table`.
    #[inline]
    fn read_desc(table: *const Desc, i: u32) -> Desc {
        // SAFETY: callers pass `i` below the table's length, checked against the table's
        // size (the ring's, or an indirect table's translated and 8-aligned length).
        let d = unsafe { table.add(i as usize).read_volatile() };
        Desc {
            addr: u64::from_le(d.addr),
            len: u32::from_le(d.len),
            flags: u16::from_le(d.flags),
            next: u16::from_le(d.next),
        }
    }

    /// Visits the buffers of the chain at `head`, in order, as contiguous pieces of our
    /// address space; `f` returns false to stop early. `write` is the direction every
    /// buffer must have.
    #[inline]
    fn walk(
        &self,
        head: u16,
        write: bool,
        mut f: impl FnMut(*mut u8, usize) -> bool,
    ) -> Result<(), ChainError> {
        let mut table = self.desc;
        let mut table_len = u32::from(self.size);
        let mut budget = table_len;
        let mut idx = u32::from(head);
        let mut indirect = false;
        loop {
            if idx >= table_len {
                return Err(ChainError::BadIndex);
            }
            if budget == 0 {
                return Err(ChainError::Loop);
            }
            budget -= 1;
            let d = Self::read_desc(table, idx);
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                if indirect
                    || d.len == 0
                    || d.len % 16 != 0
                    || d.len / 16 > u32::from(MAX_QUEUE_SIZE)
                {
                    return Err(ChainError::BadIndirect);
                }
                let p = self
                    .mem
                    .translate(d.addr, u64::from(d.len))
                    .ok_or(ChainError::BadAddress)?;
                if !(p as usize).is_multiple_of(std::mem::align_of::<Desc>()) {
                    return Err(ChainError::BadIndirect);
                }
                table = p as *const Desc;
                table_len = d.len / 16;
                budget = table_len;
                idx = 0;
                indirect = true;
                continue;
            }
            if (d.flags & VIRTQ_DESC_F_WRITE != 0) != write {
                return Err(ChainError::WrongDirection);
            }
            let mut addr = d.addr;
            let mut left = u64::from(d.len);
            while left > 0 {
                let (p, n) = self.mem.chunk(addr, left).ok_or(ChainError::BadAddress)?;
                if !f(p, n as usize) {
                    return Ok(());
                }
                // No overflow: `n` ends inside a region, whose end does not overflow.
                addr += n;
                left -= n;
            }
            if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(());
            }
            idx = u32::from(d.next);
        }
    }

    /// Copies the frame of the transmit chain at `head` (after the virtio-net header) into
    /// `dst`; returns its length.
    #[inline]
    fn read_chain(&self, head: u16, dst: &mut [u8]) -> Result<usize, ChainError> {
        let mut skip = usize::from(self.features.hdr_len);
        let mut off = 0usize;
        let mut too_big = false;
        self.walk(head, false, |mut p, mut n| {
            if skip > 0 {
                let s = skip.min(n);
                skip -= s;
                n -= s;
                p = p.wrapping_add(s);
            }
            if n == 0 {
                return true;
            }
            let Some(to) = dst.get_mut(off..off + n) else {
                too_big = true;
                return false;
            };
            // SAFETY: `p..p+n` is inside guest memory (translated by `walk`), `to` is our own
            // buffer of exactly `n` bytes; they cannot overlap. The guest may write the
            // bytes meanwhile: the frame is then garbled, and it is untrusted input anyway.
            unsafe { std::ptr::copy_nonoverlapping(p, to.as_mut_ptr(), n) };
            off += n;
            true
        })?;
        if too_big {
            return Err(ChainError::TooBig);
        }
        Ok(off)
    }

    /// Prefetches what the next `n` available chains will need: their head descriptors,
    /// then (a second pass, once those are on their way) the first bytes of their buffers
    /// (for writing, on a receive queue) and the used entries they will fill. The guest wrote all of it on another core, so
    /// each is a cache miss; issued together they overlap instead of queueing behind each
    /// other packet after packet (`bench/README.md`, vhost-user loop).
    ///
    /// Fills `heads` and, when given (transmit chains), `lone`: per head, the chain's buffer
    /// when it is a lone one (no next, not indirect, contiguous here), its descriptor read
    /// once, here, for the copy to use; left `Lone::NONE` otherwise.
    #[inline(always)]
    fn prefetch_chains(
        &self,
        n: u16,
        write: bool,
        heads: &mut [u16; BURST_MAX],
        mut lone: Option<&mut [Lone; BURST_MAX]>,
    ) {
        let on = self.features.prefetch;
        let pf = |p: *const u8| {
            if !on {
            } else if write {
                prefetch_write(p)
            } else {
                prefetch(p)
            }
        };
        let n = usize::from(n).min(BURST_MAX);
        for (i, h) in heads.iter_mut().enumerate().take(n) {
            *h = self.avail_entry(self.last_avail.wrapping_add(i as u16));
            if *h < self.size && on {
                // In bounds: `h < size`.
                prefetch(self.desc.wrapping_add(usize::from(*h)).cast());
            }
        }
        for (i, &h) in heads.iter().enumerate().take(n) {
            if h < self.size && (on || lone.is_some()) {
                let d = Self::read_desc(self.desc, u32::from(h));
                if d.flags & VIRTQ_DESC_F_INDIRECT == 0
                    && let Some((p, len)) = self.mem.chunk(d.addr, u64::from(d.len))
                {
                    pf(p);
                    if len > 64 {
                        pf(p.wrapping_add(64));
                    }
                    if let Some(lone) = lone.as_deref_mut()
                        && d.flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE) == 0
                        && len == u64::from(d.len)
                    {
                        lone[i] = Lone { ptr: p, len: d.len };
                    }
                }
            }
        }
        let used = 4 + 8 * usize::from(self.used_idx & self.mask);
        if on {
            prefetch_write(self.used.wrapping_add(used));
        }
    }

    /// Takes up to a burst of frames the guest transmitted, into buffers from `pool`.
    /// Stops early, leaving entries in the ring, when the pool is empty.
    pub fn dequeue_burst(&mut self, batch: &mut Batch, pool: &mut BufPool, st: &mut BurstStats) {
        let Some(pending) = self.pending() else {
            st.ring_corrupt += 1;
            return;
        };
        let n = usize::from(pending).min(batch.remaining_capacity());
        if n == 0 {
            return;
        }
        let old_used = self.used_idx;
        let mut heads = [0u16; BURST_MAX];
        let mut lone = [Lone::NONE; BURST_MAX];
        self.prefetch_chains(n as u16, false, &mut heads, Some(&mut lone));
        let hdr_len = usize::from(self.features.hdr_len);
        let mut taken = 0u16;
        for (&head, l) in heads.iter().zip(&lone).take(n) {
            let Some(mut buf) = pool.get() else { break };
            self.last_avail = self.last_avail.wrapping_add(1);
            taken += 1;
            let got = if l.ptr.is_null() {
                buf.receive_with(|dst| self.read_chain(head, dst))
            } else {
                // The common chain: one buffer, header and frame, its descriptor read once.
                let len = (l.len as usize).saturating_sub(hdr_len);
                buf.receive_with(|dst| match dst.get_mut(..len) {
                    Some(to) => {
                        // SAFETY: `ptr..ptr+len` of the descriptor lies in one region of
                        // guest memory (translated in `prefetch_chains`), so does the frame
                        // after the header; `to` is our own buffer of `len - hdr_len`
                        // bytes; they cannot overlap. The guest may write meanwhile: the
                        // frame is then garbled, and it is untrusted input anyway.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                l.ptr.wrapping_add(hdr_len),
                                to.as_mut_ptr(),
                                len,
                            )
                        };
                        Ok(len)
                    }
                    None => Err(ChainError::TooBig),
                })
            };
            match got {
                Ok(len) if len > 0 => {
                    st.pkts += 1;
                    st.bytes += len as u64;
                    batch.push(buf);
                }
                Ok(_) => {
                    st.bad_length += 1;
                    pool.put(buf);
                }
                Err(e) => {
                    st.count(e);
                    pool.put(buf);
                }
            }
            if !self.features.in_order {
                self.push_used(head, 0);
            }
        }
        if self.features.in_order && taken > 0 {
            // One entry for the burst: the last chain's; the guest frees the ones before
            // it in order (virtio 2.7.9).
            self.used_idx = self.used_idx.wrapping_add(taken - 1);
            self.push_used(heads[usize::from(taken) - 1], 0);
        }
        self.publish_used(old_used, st);
    }
}

/// A chain that is one buffer, as its descriptor said when it was read (once): where it is
/// in our address space (all `len` bytes in one region) and its length. Null: not lone,
/// or not read ahead.
#[derive(Clone, Copy)]
struct Lone {
    ptr: *mut u8,
    len: u32,
}

impl Lone {
    const NONE: Lone = Lone {
        ptr: std::ptr::null_mut(),
        len: 0,
    };
}

/// Rings an eventfd (the guest's interrupt, or the port's stop doorbell).
pub(crate) fn signal_fd(fd: std::os::fd::RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live array; the caller keeps `fd` open. A full counter
    // (EAGAIN) only means the other side has a notification pending already.
    unsafe {
        libc::write(fd, one.as_ptr().cast(), 8);
    }
}

/// Reads an eventfd's counter to zero (the descriptor is non-blocking).
pub(crate) fn drain_fd(fd: std::os::fd::RawFd) {
    let mut v = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live array; the caller keeps `fd` open; EAGAIN
    // (nothing to read) is fine.
    unsafe {
        libc::read(fd, v.as_mut_ptr().cast(), 8);
    }
}
