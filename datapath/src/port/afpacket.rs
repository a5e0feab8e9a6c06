//! AF_PACKET ports: the universal fallback for any kernel interface, with a `TPACKET_V3`
//! receive ring.
//!
//! What: [`AfPacketPort::open`] binds a raw packet socket to an existing interface, maps a
//! `TPACKET_V3` rx ring (blocks of frames the kernel fills and hands over a block at a time),
//! ignores the socket's own transmissions (`PACKET_IGNORE_OUTGOING`) and puts the interface in
//! promiscuous mode. `rx_burst` walks the current block's frames, copying each into a pool
//! buffer (re-inserting a VLAN tag the kernel stripped into metadata), and returns a block to
//! the kernel once all its frames are consumed; a burst may end mid-block and the next one
//! resumes there. `tx_burst` sends each frame with one `send` (no tx ring: this port is the
//! fallback, AF_XDP is the fast path). Frames too long for a buffer (`rx_too_big`: never
//! forwarded cut short) and sends the kernel refuses (link down, queue full) are counted as
//! drops, and so are the frames the kernel dropped because the ring was full
//! (`PACKET_STATISTICS`, summed into `rx_dropped` and `kernel_rx_dropped`).
//!
//! Thread-safety: the ring cursor sits behind a mutex taken once per burst (one poll thread
//! polls a port; the lock is uncontended). The ring memory is shared with the kernel and
//! accessed only through the block status protocol (acquire on `TP_STATUS_USER`, release
//! when handing back `TP_STATUS_KERNEL`).

// The kernel interface: socket options, mmap of the ring, raw pointers into it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use parking_lot::Mutex;

use super::{Batch, Port, PortCounters, PortStats};
use crate::packet::{BufPool, MAX_FRAME};

const TPACKET_V3: libc::c_int = 2;
/// Ring geometry: 64 KiB blocks, 32 of them (2 MiB, well inside the 8 MiB memlock limit).
const BLOCK_SIZE: u32 = 1 << 16;
const BLOCK_NR: u32 = 32;
const FRAME_SIZE: u32 = 2048;
/// A block is handed to user space at the latest this many ms after its first frame.
const BLOCK_TIMEOUT_MS: u32 = 1;

/// `struct tpacket_req3`.
#[repr(C)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

/// The start of `struct tpacket_block_desc` (version, offset_to_priv, then
/// `tpacket_hdr_v1`): only the fields this port reads or writes.
#[repr(C)]
struct BlockDesc {
    version: u32,
    offset_to_priv: u32,
    block_status: u32,
    num_pkts: u32,
    offset_to_first_pkt: u32,
}

/// The start of `struct tpacket3_hdr`, up to the VLAN fields of `tpacket_hdr_variant1`.
#[repr(C)]
struct Tpacket3Hdr {
    tp_next_offset: u32,
    tp_sec: u32,
    tp_nsec: u32,
    tp_snaplen: u32,
    tp_len: u32,
    tp_status: u32,
    tp_mac: u16,
    tp_net: u16,
    hv1_rxhash: u32,
    hv1_vlan_tci: u32,
    hv1_vlan_tpid: u16,
    hv1_padding: u16,
}

/// Why an AF_PACKET port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The interface does not exist (in this network namespace).
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    /// A socket call failed.
    #[error("AF_PACKET on {name}: {what}: {source} (are we root?)")]
    Sys {
        /// The interface.
        name: String,
        /// Which step.
        what: &'static str,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

/// Where the reader is in the ring.
#[derive(Debug)]
struct Cursor {
    block: u32,
    /// Frames of the current block already consumed, and the offset of the next one.
    done: u32,
    offset: u32,
}

/// The mapped ring.
#[derive(Debug)]
struct Ring {
    base: *mut u8,
    len: usize,
}

// SAFETY: the ring is plain shared memory; access is serialised by the `Cursor` mutex on our
// side and by the block status protocol with the kernel.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing uses the ring after drop.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// An AF_PACKET port.
#[derive(Debug)]
pub struct AfPacketPort {
    name: String,
    ifindex: u32,
    // Field order matters: the ring is unmapped before the socket closes.
    ring: Ring,
    fd: OwnedFd,
    cursor: Mutex<Cursor>,
    counters: PortCounters,
    /// Received frames larger than a packet buffer (or cut short by the ring).
    rx_too_big: AtomicU64,
    /// The kernel's drops before the ring (ring full), summed: reading the kernel's
    /// counters resets them.
    kernel_drops: AtomicU64,
    /// Times the kernel froze the queue (every block in user space), summed likewise.
    kernel_freezes: AtomicU64,
}

fn sys(name: &str, what: &'static str) -> AfPacketError {
    AfPacketError::Sys {
        name: name.to_string(),
        what,
        source: std::io::Error::last_os_error(),
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: &T) -> bool {
    // SAFETY: `v` points to a live T of the size passed; the kernel only reads it.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        ) == 0
    }
}

impl AfPacketPort {
    /// Opens interface `name` (which must exist in the caller's network namespace).
    pub fn open(name: &str) -> Result<AfPacketPort, AfPacketError> {
        let cname =
            CString::new(name).map_err(|_| AfPacketError::NoSuchInterface(name.to_string()))?;
        // SAFETY: `cname` is a valid NUL-terminated string for the call's duration.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(AfPacketError::NoSuchInterface(name.to_string()));
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket() takes no pointers; the result is checked and owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                proto as libc::c_int,
            )
        };
        if fd < 0 {
            return Err(sys(name, "socket"));
        }
        // SAFETY: a fresh descriptor we own; OwnedFd closes it once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        if !setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V3) {
            return Err(sys(name, "PACKET_VERSION TPACKET_V3"));
        }
        let req = TpacketReq3 {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: BLOCK_NR,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if !setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req) {
            return Err(sys(name, "PACKET_RX_RING"));
        }
        let len = (BLOCK_SIZE * BLOCK_NR) as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(sys(name, "mmap of the rx ring"));
        }
        let ring = Ring {
            base: base.cast(),
            len,
        };
        let one: libc::c_int = 1;
        // Not fatal on kernels without it: our own frames would then come back as rx.
        let _ = setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one);
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed, live across the call.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(sys(name, "bind"));
        }
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        if !setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq) {
            return Err(sys(name, "promiscuous mode"));
        }
        Ok(AfPacketPort {
            ifindex,
            name: name.to_string(),
            ring,
            fd,
            cursor: Mutex::new(Cursor {
                block: 0,
                done: 0,
                offset: 0,
            }),
            counters: PortCounters::default(),
            rx_too_big: AtomicU64::new(0),
            kernel_drops: AtomicU64::new(0),
            kernel_freezes: AtomicU64::new(0),
        })
    }

    fn block(&self, i: u32) -> *mut BlockDesc {
        // SAFETY (of the arithmetic): i < BLOCK_NR, so the offset stays inside the mapping.
        self.ring
            .base
            .wrapping_add((i % BLOCK_NR) as usize * BLOCK_SIZE as usize)
            .cast()
    }
}

impl AsRawFd for AfPacketPort {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_fd(&self, _queue: usize) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn ifindex(&self) -> Option<u32> {
        Some(self.ifindex)
    }

    fn rx_burst(&self, _queue: usize, batch: &mut Batch, pool: &mut BufPool) -> usize {
        let mut cur = self.cursor.lock();
        let (mut n, mut bytes, mut dropped, mut too_big) = (0usize, 0u64, 0u64, 0u64);
        while !batch.is_full() {
            let bd = self.block(cur.block);
            // SAFETY: `bd` points at a block header inside the mapping; the status word is
            // written by the kernel, so it is read volatile.
            let status = unsafe { std::ptr::addr_of!((*bd).block_status).read_volatile() };
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            // The kernel's writes to the block happen before it sets TP_STATUS_USER.
            fence(Ordering::Acquire);
            // SAFETY: the block is ours until we hand it back; the header fields are plain
            // u32s inside the mapping.
            let (num, first) = unsafe { ((*bd).num_pkts, (*bd).offset_to_first_pkt) };
            if cur.done == 0 {
                cur.offset = first;
            }
            while cur.done < num && !batch.is_full() {
                let at = cur.offset as usize;
                if at + std::mem::size_of::<Tpacket3Hdr>() > BLOCK_SIZE as usize {
                    // A corrupt offset: give up on the rest of the block.
                    cur.done = num;
                    break;
                }
                let hdr: *const Tpacket3Hdr = bd.cast::<u8>().wrapping_add(at).cast();
                // SAFETY: `hdr` lies inside this block (checked above) and the block is ours.
                let h = unsafe { hdr.read_unaligned() };
                let mac = at + h.tp_mac as usize;
                let len = h.tp_snaplen as usize;
                cur.done += 1;
                cur.offset = cur.offset.wrapping_add(h.tp_next_offset);
                if mac + len > BLOCK_SIZE as usize {
                    dropped += 1;
                    continue;
                }
                let vlan = h.tp_status & libc::TP_STATUS_VLAN_VALID != 0;
                let whole = len + if vlan { 4 } else { 0 };
                if whole > MAX_FRAME || (h.tp_len as usize) > len {
                    // Larger than a buffer holds, or cut short by the ring: never forwarded
                    // truncated.
                    dropped += 1;
                    too_big += 1;
                    continue;
                }
                if len < 12 {
                    dropped += 1;
                    continue;
                }
                let Some(mut b) = pool.get() else {
                    dropped += 1;
                    continue;
                };
                // SAFETY: `mac..mac+len` lies inside this block (checked above).
                let frame =
                    unsafe { std::slice::from_raw_parts(bd.cast::<u8>().wrapping_add(mac), len) };
                b.set_frame(frame);
                if vlan {
                    // The kernel moved the tag into metadata: put it back after the MACs.
                    let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        h.hv1_vlan_tpid
                    } else {
                        0x8100
                    };
                    if let Some(gap) = b.insert_gap(12, 4) {
                        gap[0..2].copy_from_slice(&tpid.to_be_bytes());
                        gap[2..4].copy_from_slice(&(h.hv1_vlan_tci as u16).to_be_bytes());
                    }
                }
                bytes += b.len() as u64;
                n += 1;
                batch.push(b);
            }
            if cur.done >= num {
                // Hand the block back; our reads of it happen before.
                fence(Ordering::Release);
                // SAFETY: the block header is inside the mapping and the block is ours.
                unsafe {
                    std::ptr::addr_of_mut!((*bd).block_status)
                        .write_volatile(libc::TP_STATUS_KERNEL)
                };
                cur.block = (cur.block + 1) % BLOCK_NR;
                cur.done = 0;
                cur.offset = 0;
            }
        }
        drop(cur);
        if n > 0 {
            self.counters.rx(n as u64, bytes);
        }
        if dropped > 0 {
            self.counters.rx_dropped(dropped);
            if too_big > 0 {
                self.rx_too_big.fetch_add(too_big, Ordering::Relaxed);
            }
        }
        n
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for b in batch.drain(..) {
            let data = b.data();
            // SAFETY: `data` is a readable slice of `data.len()` bytes live across the call.
            let r = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if r == data.len() as isize {
                sent += 1;
                bytes += data.len() as u64;
            } else {
                // Queue full, link down or interface gone: counted, not retried per packet.
                dropped += 1;
            }
            pool.put(b);
        }
        self.counters.tx(sent, bytes);
        if dropped > 0 {
            self.counters.tx_dropped(dropped);
        }
    }

    /// Ours plus the kernel's drops before the ring.
    fn stats(&self) -> PortStats {
        self.collect_kernel_stats();
        let mut s = self.counters.read();
        s.rx_dropped += self.kernel_drops.load(Ordering::Relaxed);
        s
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        self.collect_kernel_stats();
        out.extend([
            (
                "kernel_rx_dropped",
                self.kernel_drops.load(Ordering::Relaxed),
            ),
            (
                "kernel_queue_freezes",
                self.kernel_freezes.load(Ordering::Relaxed),
            ),
            ("rx_too_big", self.rx_too_big.load(Ordering::Relaxed)),
            ("max_frame_bytes", MAX_FRAME as u64),
        ]);
    }
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    tp_packets: u32,
    tp_drops: u32,
    tp_freeze_q_cnt: u32,
}

impl AfPacketPort {
    /// Adds the kernel's counters since the last read (`PACKET_STATISTICS`, which resets
    /// them) to ours.
    fn collect_kernel_stats(&self) {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st`/`len` are live and sized as passed; the kernel writes at most `len`
        // bytes of plain u32s.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.kernel_drops
                .fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
            self.kernel_freezes
                .fetch_add(u64::from(st.tp_freeze_q_cnt), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interface_is_named() {
        match AfPacketPort::open("no-such-if0") {
            Err(AfPacketError::NoSuchInterface(n)) => assert_eq!(n, "no-such-if0"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ring_structs_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<TpacketReq3>(), 28);
        assert_eq!(std::mem::offset_of!(BlockDesc, block_status), 8);
        assert_eq!(std::mem::offset_of!(Tpacket3Hdr, tp_mac), 24);
        assert_eq!(std::mem::offset_of!(Tpacket3Hdr, hv1_vlan_tci), 32);
        assert_eq!(std::mem::offset_of!(Tpacket3Hdr, hv1_vlan_tpid), 36);
    }
}
