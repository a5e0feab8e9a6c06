//! A virtio-net driver for the tests: guest memory in a memfd, split rings laid out in it,
//! and rust-vmm's vhost-user frontend to hand them to the switch over a real socket.
//!
//! The guest writes its rings the way a driver does (descriptors, then the available
//! entry, then the available index with release ordering) and reads the used ring back.
//! It can also write anything at all into its rings, for the hostile-guest tests.

#![allow(
    dead_code,
    unsafe_code,
    clippy::undocumented_unsafe_blocks,
    clippy::unwrap_used
)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::EventFd;

/// Guest physical address of the guest's memory (not its address in this process, on
/// purpose: the switch must translate both kinds).
pub const GPA: u64 = 0x4000_0000;
/// Entries per queue.
pub const Q: u16 = 256;
/// Size of the guest's memory.
pub const MEM: usize = 8 << 20;
/// Per queue: descriptor table, available ring, used ring, 4 KiB each (Q = 256 fits).
const QUEUE_AREA: usize = 3 * 4096;
/// Buffers start here (offset in memory); each (queue, descriptor) owns one of 2 KiB.
const BUF_BASE: usize = 1 << 20;
const BUF: usize = 2048;
/// Indirect tables: one 4 KiB page per (queue, head).
const IND_BASE: usize = 5 << 20;

pub const F_NEXT: u16 = 1;
pub const F_WRITE: u16 = 2;
pub const F_INDIRECT: u16 = 4;

pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
pub const VIRTIO_F_IN_ORDER: u64 = 1 << 35;

/// Driver-side state of one queue.
#[derive(Debug, Default)]
pub struct DriverQueue {
    pub avail_idx: u16,
    pub last_used: u16,
    pub free: Vec<u16>,
    /// The other descriptors of each pending chain, by head.
    pub chains: std::collections::HashMap<u16, Vec<u16>>,
}

/// The guest.
pub struct Guest {
    pub mem: *mut u8,
    pub memfd: File,
    pub n_qp: usize,
    pub queues: Vec<DriverQueue>,
    pub kicks: Vec<EventFd>,
    pub calls: Vec<EventFd>,
    pub frontend: Option<Frontend>,
    pub hdr_len: usize,
    pub mergeable: bool,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest").field("n_qp", &self.n_qp).finish()
    }
}

/// Whether `fd` is readable now.
pub fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

// The pointer is to this guest's own mapping.
unsafe impl Send for Guest {}

fn memfd(size: usize) -> File {
    let fd = unsafe { libc::memfd_create(c"guest".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size as u64).unwrap();
    f
}

impl Guest {
    /// A guest with `n_qp` queue pairs and empty rings.
    pub fn new(n_qp: usize) -> Guest {
        let memfd = memfd(MEM);
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                memfd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(mem, libc::MAP_FAILED);
        let nq = 2 * n_qp;
        Guest {
            mem: mem.cast(),
            memfd,
            n_qp,
            queues: (0..nq)
                .map(|_| DriverQueue {
                    free: (0..Q).rev().collect(),
                    ..Default::default()
                })
                .collect(),
            kicks: (0..nq)
                .map(|_| EventFd::new(libc::EFD_NONBLOCK).unwrap())
                .collect(),
            calls: (0..nq)
                .map(|_| EventFd::new(libc::EFD_NONBLOCK).unwrap())
                .collect(),
            frontend: None,
            hdr_len: 12,
            mergeable: true,
        }
    }

    /// This process's address of guest offset `off` (what the frontend calls the user
    /// address).
    pub fn uva(&self, off: usize) -> u64 {
        self.mem as u64 + off as u64
    }

    fn desc_off(q: usize) -> usize {
        q * QUEUE_AREA
    }
    fn avail_off(q: usize) -> usize {
        q * QUEUE_AREA + 4096
    }
    fn used_off(q: usize) -> usize {
        q * QUEUE_AREA + 8192
    }
    /// Guest offset of the buffer of (queue, descriptor).
    pub fn buf_off(q: usize, d: u16) -> usize {
        BUF_BASE + (q * Q as usize + d as usize) * BUF
    }
    fn ind_off(q: usize, head: u16) -> usize {
        IND_BASE + (q * Q as usize + head as usize) * 64
    }

    pub fn write(&self, off: usize, bytes: &[u8]) {
        assert!(off + bytes.len() <= MEM);
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.mem.add(off), bytes.len()) };
    }

    pub fn read(&self, off: usize, len: usize) -> Vec<u8> {
        assert!(off + len <= MEM);
        let mut v = vec![0; len];
        unsafe { std::ptr::copy_nonoverlapping(self.mem.add(off), v.as_mut_ptr(), len) };
        v
    }

    fn u16_at(&self, off: usize) -> &AtomicU16 {
        unsafe { AtomicU16::from_ptr(self.mem.add(off).cast()) }
    }

    /// Writes descriptor `i` of queue `q`'s table.
    pub fn set_desc(&self, q: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.set_desc_at(Self::desc_off(q) + 16 * i as usize, addr, len, flags, next);
    }

    fn set_desc_at(&self, off: usize, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.write(off, &d);
    }

    /// Publishes `head` in queue `q`'s available ring.
    pub fn publish(&mut self, q: usize, head: u16) {
        let idx = self.queues[q].avail_idx;
        self.write(
            Self::avail_off(q) + 4 + 2 * (idx % Q) as usize,
            &head.to_le_bytes(),
        );
        self.queues[q].avail_idx = idx.wrapping_add(1);
        self.u16_at(Self::avail_off(q) + 2)
            .store(self.queues[q].avail_idx, Ordering::Release);
    }

    /// Sets the available index to anything (hostile tests).
    pub fn set_avail_idx(&mut self, q: usize, idx: u16) {
        self.queues[q].avail_idx = idx;
        self.u16_at(Self::avail_off(q) + 2)
            .store(idx, Ordering::Release);
    }

    /// Sets the available ring's flags (1: no interrupts).
    pub fn set_avail_flags(&self, q: usize, flags: u16) {
        self.write(Self::avail_off(q), &flags.to_le_bytes());
    }

    /// The used ring's flags (1: the device wants no kicks).
    pub fn used_flags(&self, q: usize) -> u16 {
        self.u16_at(Self::used_off(q)).load(Ordering::Acquire)
    }

    /// The used index of queue `q`.
    pub fn used_idx(&self, q: usize) -> u16 {
        self.u16_at(Self::used_off(q) + 2).load(Ordering::Acquire)
    }

    /// Used entry `i` of queue `q`: (id, len).
    pub fn used_entry(&self, q: usize, i: u16) -> (u32, u32) {
        let e = self.read(Self::used_off(q) + 4 + 8 * (i % Q) as usize, 8);
        (
            u32::from_le_bytes(e[0..4].try_into().unwrap()),
            u32::from_le_bytes(e[4..8].try_into().unwrap()),
        )
    }

    /// The used entries since the last call: (id, len).
    pub fn take_used(&mut self, q: usize) -> Vec<(u32, u32)> {
        let used = self.u16_at(Self::used_off(q) + 2).load(Ordering::Acquire);
        let mut out = Vec::new();
        while self.queues[q].last_used != used {
            let i = (self.queues[q].last_used % Q) as usize;
            let e = self.read(Self::used_off(q) + 4 + 8 * i, 8);
            out.push((
                u32::from_le_bytes(e[0..4].try_into().unwrap()),
                u32::from_le_bytes(e[4..8].try_into().unwrap()),
            ));
            self.queues[q].last_used = self.queues[q].last_used.wrapping_add(1);
        }
        out
    }

    fn alloc(&mut self, q: usize) -> u16 {
        self.queues[q].free.pop().expect("guest queue full")
    }

    /// Transmits `frame` on queue pair `qp`: a virtio-net header and the frame, split into
    /// `pieces` descriptors (the header alone in the first when `pieces > 1`), through an
    /// indirect table when `indirect`.
    pub fn tx(&mut self, qp: usize, frame: &[u8], pieces: usize, indirect: bool) -> u16 {
        let q = 2 * qp + 1;
        let mut bytes = vec![0u8; self.hdr_len];
        bytes.extend_from_slice(frame);
        let pieces = pieces.clamp(1, bytes.len());
        let mut cuts = vec![0usize];
        if pieces > 1 {
            cuts.push(self.hdr_len.min(bytes.len()));
            for k in 1..pieces - 1 {
                let c = self.hdr_len + (frame.len() * k) / (pieces - 1);
                if c > *cuts.last().unwrap() && c < bytes.len() {
                    cuts.push(c);
                }
            }
        }
        cuts.push(bytes.len());
        cuts.dedup();
        let head = self.alloc(q);
        // Data goes into the head's buffer (2 KiB: enough for a test frame and header).
        assert!(bytes.len() <= BUF);
        let base = Self::buf_off(q, head);
        self.write(base, &bytes);
        let n = cuts.len() - 1;
        if indirect {
            let t = Self::ind_off(q, head);
            for k in 0..n {
                let flags = if k + 1 < n { F_NEXT } else { 0 };
                self.set_desc_at(
                    t + 16 * k,
                    GPA + (base + cuts[k]) as u64,
                    (cuts[k + 1] - cuts[k]) as u32,
                    flags,
                    (k + 1) as u16,
                );
            }
            self.set_desc(q, head, GPA + t as u64, (16 * n) as u32, F_INDIRECT, 0);
        } else {
            let mut ids = vec![head];
            for _ in 1..n {
                ids.push(self.alloc(q));
            }
            for k in 0..n {
                let flags = if k + 1 < n { F_NEXT } else { 0 };
                let next = if k + 1 < n { ids[k + 1] } else { 0 };
                self.set_desc(
                    q,
                    ids[k],
                    GPA + (base + cuts[k]) as u64,
                    (cuts[k + 1] - cuts[k]) as u32,
                    flags,
                    next,
                );
            }
            // The other descriptors are freed with the head.
            self.queues[q].chains.insert(head, ids[1..].to_vec());
        }
        self.publish(q, head);
        head
    }

    /// Returns transmitted chains to the free list; how many the switch used.
    pub fn reclaim_tx(&mut self, qp: usize) -> usize {
        let q = 2 * qp + 1;
        let used = self.take_used(q);
        for &(id, _) in &used {
            if id < Q as u32 {
                self.queues[q].free.push(id as u16);
                if let Some(rest) = self.queues[q].chains.remove(&(id as u16)) {
                    self.queues[q].free.extend(rest);
                }
            }
        }
        used.len()
    }

    /// Posts `n` receive buffers of `size` bytes on queue pair `qp`.
    pub fn post_rx(&mut self, qp: usize, n: usize, size: u32) {
        let q = 2 * qp;
        for _ in 0..n {
            let d = self.alloc(q);
            self.set_desc(q, d, GPA + Self::buf_off(q, d) as u64, size, F_WRITE, 0);
            self.publish(q, d);
        }
    }

    /// The frames the switch delivered on queue pair `qp` since the last call (virtio-net
    /// headers checked and removed; mergeable frames put together).
    pub fn take_rx(&mut self, qp: usize) -> Vec<Vec<u8>> {
        let q = 2 * qp;
        let used = self.take_used(q);
        let mut frames = Vec::new();
        let mut i = 0;
        while i < used.len() {
            let (id, len) = used[i];
            assert!(id < Q as u32, "used id {id} out of range");
            let data = self.read(Self::buf_off(q, id as u16), len as usize);
            assert!(
                data.len() >= self.hdr_len,
                "used length {len} below the header"
            );
            let hdr = &data[..self.hdr_len];
            assert!(
                hdr[..10].iter().all(|b| *b == 0),
                "no offloads expected: {hdr:?}"
            );
            let nbufs = if self.hdr_len == 12 {
                u16::from_le_bytes([hdr[10], hdr[11]]) as usize
            } else {
                1
            };
            assert!(nbufs >= 1);
            let mut frame = data[self.hdr_len..].to_vec();
            self.queues[q].free.push(id as u16);
            for k in 1..nbufs {
                let (id2, len2) = used[i + k];
                frame.extend(self.read(Self::buf_off(q, id2 as u16), len2 as usize));
                self.queues[q].free.push(id2 as u16);
            }
            frames.push(frame);
            i += nbufs;
        }
        frames
    }

    /// Rings queue `q`'s kick.
    pub fn kick(&self, q: usize) {
        self.kicks[q].write(1).unwrap();
    }

    /// Connects to a switch in server mode at `path` and sets everything up.
    pub fn connect(&mut self, path: &Path, features: u64) {
        let stream = UnixStream::connect(path).expect("connect to the switch");
        self.attach(stream, features);
    }

    /// Sets a connected frontend up: features, memory, every queue.
    pub fn attach(&mut self, stream: UnixStream, features: u64) {
        let mut fe = Frontend::from_stream(stream, 2 * self.n_qp as u64);
        fe.set_owner().unwrap();
        let offered = fe.get_features().unwrap();
        let want = offered & (features | VHOST_USER_F_PROTOCOL_FEATURES);
        fe.set_features(want).unwrap();
        self.mergeable = want & VIRTIO_NET_F_MRG_RXBUF != 0;
        self.hdr_len = if want & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF) != 0 {
            12
        } else {
            10
        };
        let pf = fe.get_protocol_features().unwrap();
        fe.set_protocol_features(
            pf & (VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK),
        )
        .unwrap();
        fe.set_mem_table(&[VhostUserMemoryRegionInfo {
            guest_phys_addr: GPA,
            memory_size: MEM as u64,
            userspace_addr: self.uva(0),
            mmap_offset: 0,
            mmap_handle: self.memfd.as_raw_fd(),
        }])
        .unwrap();
        for q in 0..2 * self.n_qp {
            self.configure_queue(&mut fe, q);
        }
        self.frontend = Some(fe);
    }

    fn configure_queue(&self, fe: &mut Frontend, q: usize) {
        fe.set_vring_num(q, Q).unwrap();
        fe.set_vring_addr(
            q,
            &VringConfigData {
                queue_max_size: Q,
                queue_size: Q,
                flags: 0,
                desc_table_addr: self.uva(Self::desc_off(q)),
                used_ring_addr: self.uva(Self::used_off(q)),
                avail_ring_addr: self.uva(Self::avail_off(q)),
                log_addr: None,
            },
        )
        .unwrap();
        fe.set_vring_base(q, self.queues[q].avail_idx).unwrap();
        fe.set_vring_call(q, &self.calls[q]).unwrap();
        fe.set_vring_kick(q, &self.kicks[q]).unwrap();
        fe.set_vring_enable(q, true).unwrap();
    }

    /// Closes the connection (the switch sees the frontend go away).
    pub fn disconnect(&mut self) {
        self.frontend = None;
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.mem.cast(), MEM) };
    }
}

/// An Ethernet frame of `len` bytes from `src` to `dst` whose payload is `seq`.
pub fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x88b5u16.to_be_bytes()); // local experimental ethertype
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((f.len() % 251) as u8);
    }
    f
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Mappings of this process.
pub fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Waits up to 5 s for `cond`.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
