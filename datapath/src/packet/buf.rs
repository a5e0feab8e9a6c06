//! Packet buffers with headroom, and a per-thread pool that recycles them.
//!
//! What: [`PacketBuf`] owns a fixed [`BUF_SIZE`]-byte block; the frame occupies
//! `head..head+len`, leaving [`HEADROOM`] bytes in front so a tunnel header or a VLAN tag can
//! be prepended without copying the payload. [`BufPool`] keeps freed buffers so the steady
//! state of a poll thread allocates nothing.
//!
//! With the `dpdk` feature a `PacketBuf` can also own a DPDK mbuf: its data block is then
//! the mbuf's own buffer (DPDK's 128-byte headroom is ours), so frames received on a DPDK
//! port go through the pipeline and out of another DPDK port without a copy
//! (`port::dpdk`). The block is then a raw pointer plus the mbuf that owns it
//! (`Block`); every other use of the buffer is the same, and freeing gives the mbuf back to
//! its mempool instead of the heap.
//!
//! Thread-safety: a `PacketBuf` is owned by one thread at a time and moved between threads
//! through port rings. A `BufPool` belongs to one thread.

use std::fmt;

/// The data block: a heap array (and, with the `dpdk` feature, possibly an mbuf's buffer).
#[cfg(not(feature = "dpdk"))]
type Block = Box<[u8; BUF_SIZE]>;

#[cfg(not(feature = "dpdk"))]
#[inline]
fn new_block() -> Block {
    Box::new([0; BUF_SIZE])
}

#[cfg(feature = "dpdk")]
use mbuf_block::Block;

#[cfg(feature = "dpdk")]
#[inline]
fn new_block() -> Block {
    Block::heap()
}

/// A data block that is either a heap array or the buffer of a DPDK mbuf this block owns.
#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
mod mbuf_block {
    use super::BUF_SIZE;
    use std::ptr::NonNull;

    pub(super) struct Block {
        /// `BUF_SIZE` bytes: a leaked `Box` when `mbuf` is null, else the mbuf's buffer.
        ptr: NonNull<[u8; BUF_SIZE]>,
        mbuf: *mut dpdk_sys::rte_mbuf,
    }

    // SAFETY: the block owns its memory exclusively (the leaked box, or the mbuf, which no
    // one else references while the block holds it); moving that ownership between threads
    // is what a `Box` does, and DPDK frees mbufs from any thread.
    unsafe impl Send for Block {}
    // SAFETY: shared references only read the bytes, as `&Box<[u8; N]>` does.
    unsafe impl Sync for Block {}

    impl Block {
        pub(super) fn heap() -> Block {
            Block {
                ptr: NonNull::from(Box::leak(Box::new([0u8; BUF_SIZE]))),
                mbuf: std::ptr::null_mut(),
            }
        }

        /// Takes ownership of `mbuf`, whose buffer is `BUF_SIZE` bytes at `buf`.
        ///
        /// # Safety
        /// `mbuf` is a valid single-segment mbuf nobody else uses from now on, and `buf` is
        /// its `buf_addr`, with `buf_len == BUF_SIZE`.
        pub(super) unsafe fn from_mbuf(mbuf: *mut dpdk_sys::rte_mbuf, buf: NonNull<u8>) -> Block {
            Block {
                ptr: buf.cast(),
                mbuf,
            }
        }

        pub(super) fn mbuf(&self) -> *mut dpdk_sys::rte_mbuf {
            self.mbuf
        }

        /// Gives up the mbuf without freeing it (the caller now owns it).
        pub(super) fn release_mbuf(self) -> *mut dpdk_sys::rte_mbuf {
            let m = self.mbuf;
            std::mem::forget(self);
            m
        }
    }

    impl std::ops::Deref for Block {
        type Target = [u8; BUF_SIZE];
        #[inline]
        fn deref(&self) -> &[u8; BUF_SIZE] {
            // SAFETY: `ptr` is valid for `BUF_SIZE` bytes while the block lives, and only
            // this block reaches it.
            unsafe { self.ptr.as_ref() }
        }
    }

    impl std::ops::DerefMut for Block {
        #[inline]
        fn deref_mut(&mut self) -> &mut [u8; BUF_SIZE] {
            // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
            unsafe { self.ptr.as_mut() }
        }
    }

    impl Drop for Block {
        fn drop(&mut self) {
            if self.mbuf.is_null() {
                // SAFETY: `ptr` came from `Box::leak` in `heap` and is freed only here.
                drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
            } else {
                // SAFETY: the block owns the mbuf (`from_mbuf`'s contract) and it is freed
                // once, here, back to its mempool.
                unsafe { dpdk_sys::vsw_pktmbuf_free(self.mbuf) };
            }
        }
    }
}

/// Packets per burst.
pub const BURST: usize = 32;

/// A burst of packets: a fixed array, never a heap allocation.
pub type Batch = arrayvec::ArrayVec<PacketBuf, BURST>;

/// Size of every buffer's data block.
pub const BUF_SIZE: usize = 2048;
/// Bytes reserved in front of a received frame for encapsulation.
pub const HEADROOM: usize = 128;
/// Largest frame a buffer holds when received with full headroom.
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM;

/// One packet.
pub struct PacketBuf {
    data: Block,
    head: u16,
    len: u16,
    /// Egress queue chosen by `set_queue` (0 unless set).
    queue: u32,
    /// Tunnel metadata: the remote endpoint (IPv4, host order) and the key (VNI or GRE
    /// key). A tunnel port writes where a packet it received came from; the pipeline writes
    /// where a packet it stages for a flow-based tunnel port goes. Read only for packets of
    /// and for tunnel ports: meaningless on any other.
    tun_remote: u32,
    tun_id: u32,
}

impl PacketBuf {
    /// An empty buffer with [`HEADROOM`] in front. Allocates: call from setup code or through
    /// [`BufPool`], never per packet.
    pub fn new() -> PacketBuf {
        PacketBuf {
            data: new_block(),
            head: HEADROOM as u16,
            len: 0,
            queue: 0,
            tun_remote: 0,
            tun_id: 0,
        }
    }

    /// A buffer holding a copy of `frame`, or `None` when it exceeds [`MAX_FRAME`].
    pub fn from_frame(frame: &[u8]) -> Option<PacketBuf> {
        let mut b = PacketBuf::new();
        b.set_frame(frame).then_some(b)
    }

    /// Replaces the contents with a copy of `frame` at the default headroom. Returns false
    /// (leaving the buffer empty) when the frame is larger than [`MAX_FRAME`].
    pub fn set_frame(&mut self, frame: &[u8]) -> bool {
        self.head = HEADROOM as u16;
        self.queue = 0;
        if frame.len() > MAX_FRAME {
            self.len = 0;
            return false;
        }
        self.data[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.len = frame.len() as u16;
        true
    }

    /// Receives a frame in place: `fill` gets the whole area after the default headroom
    /// ([`MAX_FRAME`] bytes) and returns how many bytes it wrote (clamped to that area),
    /// which become the frame. For ports that read frames from the kernel.
    #[inline]
    pub fn receive_with<E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.head = HEADROOM as u16;
        self.len = 0;
        self.queue = 0;
        let n = fill(&mut self.data[HEADROOM..])?.min(MAX_FRAME);
        self.len = n as u16;
        Ok(n)
    }

    /// The frame.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.data[self.head as usize..self.head as usize + self.len as usize]
    }

    /// The frame, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.head as usize..self.head as usize + self.len as usize]
    }

    /// The egress queue `set_queue` chose (0 by default).
    #[inline]
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Chooses the egress queue (the `set_queue` action).
    #[inline]
    pub fn set_queue(&mut self, queue: u32) {
        self.queue = queue;
    }

    /// The tunnel metadata: the remote endpoint and the key. On a packet a tunnel port
    /// received, where it came from (`tun_src`, `tun_id`); on a packet staged for a
    /// flow-based tunnel port, where it goes (`set_field:...->tun_dst`, `->tun_id`, or the
    /// remote `normal` learned). Meaningful only on those.
    #[inline]
    pub fn tunnel(&self) -> (std::net::Ipv4Addr, u32) {
        (std::net::Ipv4Addr::from(self.tun_remote), self.tun_id)
    }

    /// Sets what [`PacketBuf::tunnel`] returns (`remote`: IPv4, host order).
    #[inline]
    pub fn set_tunnel(&mut self, remote: u32, id: u32) {
        self.tun_remote = remote;
        self.tun_id = id;
    }

    /// Frame length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for a zero-length frame.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes free in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head as usize
    }

    /// Bytes free after the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        BUF_SIZE - self.head as usize - self.len as usize
    }

    /// Grows the frame by `n` bytes at the front and returns them, or `None` without headroom.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.head as usize {
            return None;
        }
        self.head -= n as u16;
        self.len += n as u16;
        let h = self.head as usize;
        Some(&mut self.data[h..h + n])
    }

    /// Removes `n` bytes from the front; false (unchanged) if the frame is shorter.
    #[inline]
    pub fn trim_front(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.head += n as u16;
        self.len -= n as u16;
        true
    }

    /// Shortens the frame to `len` bytes (no effect if already shorter).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len as usize {
            self.len = len as u16;
        }
    }

    /// Opens a gap of `n` bytes at `offset` by moving the first `offset` bytes towards the
    /// front (the cheap direction for headers), returning the gap. `None` when `offset` is past
    /// the end or there is no headroom.
    pub fn insert_gap(&mut self, offset: usize, n: usize) -> Option<&mut [u8]> {
        if offset > self.len as usize || n > self.head as usize {
            return None;
        }
        let h = self.head as usize;
        self.data.copy_within(h..h + offset, h - n);
        self.head -= n as u16;
        self.len += n as u16;
        let start = h - n + offset;
        Some(&mut self.data[start..start + n])
    }

    /// Removes `n` bytes at `offset` by moving the first `offset` bytes forward. False
    /// (unchanged) when the range is out of the frame.
    pub fn remove_gap(&mut self, offset: usize, n: usize) -> bool {
        if offset
            .checked_add(n)
            .is_none_or(|end| end > self.len as usize)
        {
            return false;
        }
        let h = self.head as usize;
        self.data.copy_within(h..h + offset, h + n);
        self.head += n as u16;
        self.len -= n as u16;
        true
    }

    /// Copies another buffer's frame into this one, keeping its headroom.
    pub fn copy_from(&mut self, other: &PacketBuf) {
        let (h, l) = (other.head as usize, other.len as usize);
        self.data[h..h + l].copy_from_slice(&other.data[h..h + l]);
        self.head = other.head;
        self.len = other.len;
        self.queue = other.queue;
        self.tun_remote = other.tun_remote;
        self.tun_id = other.tun_id;
    }
}

/// DPDK mbufs as packet buffers (no copy in or out of a DPDK port).
#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
impl PacketBuf {
    /// Wraps a received mbuf: the frame is its data, in place. Gives the mbuf back when it
    /// cannot be wrapped: chained (more than one segment), a buffer of another size than
    /// [`BUF_SIZE`], or data outside its buffer.
    ///
    /// # Safety
    /// `m` is a valid mbuf that the caller owns and hands over.
    pub unsafe fn from_mbuf(
        m: *mut dpdk_sys::rte_mbuf,
    ) -> Result<PacketBuf, *mut dpdk_sys::rte_mbuf> {
        // SAFETY: the caller gives a valid mbuf; these are plain header fields.
        let (buf, buf_len, off, len, segs) = unsafe {
            (
                (*m).buf_addr.cast::<u8>(),
                (*m).buf_len,
                (*m).data_off,
                (*m).data_len,
                (*m).nb_segs,
            )
        };
        let Some(buf) = std::ptr::NonNull::new(buf) else {
            return Err(m);
        };
        if segs != 1
            || usize::from(buf_len) != BUF_SIZE
            || usize::from(off) + usize::from(len) > BUF_SIZE
        {
            return Err(m);
        }
        Ok(PacketBuf {
            // SAFETY: checked above: one segment, a `BUF_SIZE` buffer at `buf_addr`; the
            // caller hands the mbuf over.
            data: unsafe { Block::from_mbuf(m, buf) },
            head: off,
            len,
            queue: 0,
            tun_remote: 0,
            tun_id: 0,
        })
    }

    /// Whether the buffer is a DPDK mbuf's.
    #[inline]
    pub fn is_mbuf(&self) -> bool {
        !self.data.mbuf().is_null()
    }

    /// The mbuf itself, its data offset and lengths set to the frame, for a DPDK port to
    /// send; the buffer back when it is not an mbuf's.
    pub fn into_mbuf(self) -> Result<*mut dpdk_sys::rte_mbuf, PacketBuf> {
        if !self.is_mbuf() {
            return Err(self);
        }
        let (head, len) = (self.head, self.len);
        let m = self.data.release_mbuf();
        // SAFETY: we owned the single-segment mbuf `m` (checked in `from_mbuf`); the frame
        // lies inside its buffer; no receive offload flag means anything on transmit.
        unsafe {
            (*m).data_off = head;
            (*m).data_len = len;
            (*m).pkt_len = u32::from(len);
            (*m).ol_flags = 0;
        }
        Ok(m)
    }
}

impl Default for PacketBuf {
    fn default() -> Self {
        PacketBuf::new()
    }
}

impl fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuf")
            .field("len", &self.len)
            .field("headroom", &self.head)
            .finish()
    }
}

/// Buffers that left the poll thread whose pool allocated them (a packet handed from one
/// bridge's thread to another's, through a tunnel or a patch) come back through here: a pool
/// whose free list is full gives its excess to this process-wide spare pool, and a pool
/// that runs dry takes from it before allocating, so buffers circulate and the steady state
/// allocates nothing even when they flow one way between threads.
static SPARE: std::sync::OnceLock<crossbeam_queue::ArrayQueue<PacketBuf>> =
    std::sync::OnceLock::new();
/// Most buffers the spare pool holds (128 MiB of packet memory).
const SPARE_CAPACITY: usize = 65536;
/// Buffers taken from the spare pool at once.
const SPARE_BATCH: usize = 32;

fn spare() -> &'static crossbeam_queue::ArrayQueue<PacketBuf> {
    SPARE.get_or_init(|| crossbeam_queue::ArrayQueue::new(SPARE_CAPACITY))
}

/// A free list of buffers owned by one thread. `get` takes a free buffer, else refills from
/// the process-wide spare pool, else allocates while fewer than `capacity` buffers have been
/// allocated by this pool; after that it returns `None`, which callers count as
/// `drop_no_buffer`. A pool of capacity 0 never has a buffer (tests use it to provoke that).
#[derive(Debug)]
pub struct BufPool {
    free: Vec<PacketBuf>,
    allocated: usize,
    capacity: usize,
}

impl BufPool {
    /// A pool that will own at most `capacity` buffers, none allocated yet.
    pub fn new(capacity: usize) -> BufPool {
        BufPool {
            free: Vec::with_capacity(capacity),
            allocated: 0,
            capacity,
        }
    }

    /// A buffer with empty frame and default headroom.
    #[inline]
    pub fn get(&mut self) -> Option<PacketBuf> {
        match self.free.pop() {
            Some(mut b) => {
                b.head = HEADROOM as u16;
                b.len = 0;
                b.queue = 0;
                Some(b)
            }
            None => self.get_slow(),
        }
    }

    #[cold]
    fn get_slow(&mut self) -> Option<PacketBuf> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(s) = SPARE.get() {
            while self.free.len() < SPARE_BATCH {
                match s.pop() {
                    Some(b) => self.free.push(b),
                    None => break,
                }
            }
            if let Some(mut b) = self.free.pop() {
                b.head = HEADROOM as u16;
                b.len = 0;
                b.queue = 0;
                return Some(b);
            }
        }
        if self.allocated >= self.capacity {
            return None;
        }
        self.allocated += 1;
        Some(PacketBuf::new())
    }

    /// Returns a buffer. Beyond half the pool's capacity it goes to the spare pool (freed
    /// only when that is full too): a thread that receives more buffers than it gives away
    /// (the far side of a tunnel) passes the surplus on before it starves the other.
    #[inline]
    pub fn put(&mut self, b: PacketBuf) {
        // An mbuf goes back to its mempool at once: kept here it would starve the DPDK port
        // that received it.
        #[cfg(feature = "dpdk")]
        if b.is_mbuf() {
            drop(b);
            return;
        }
        if self.free.len() < self.capacity.div_ceil(2) {
            self.free.push(b);
        } else {
            self.put_spare(b);
        }
    }

    /// Returns every buffer of `batch` (draining it), as `put` would one by one. The common
    /// case moves them as one block: a per-buffer `put` of a buffer the caller just read
    /// re-stores its fields in pieces and reloads them whole, a store-forwarding stall per
    /// packet on the transmit path.
    #[inline]
    pub fn put_batch(&mut self, batch: &mut Batch) {
        #[cfg(feature = "dpdk")]
        if batch.iter().any(PacketBuf::is_mbuf) {
            for b in batch.drain(..) {
                self.put(b);
            }
            return;
        }
        if self.free.len() + batch.len() <= self.capacity.div_ceil(2) {
            self.free.extend(batch.drain(..));
        } else {
            for b in batch.drain(..) {
                self.put(b);
            }
        }
    }

    #[cold]
    fn put_spare(&mut self, b: PacketBuf) {
        if self.capacity > 0 {
            let _ = spare().push(b);
        }
    }

    /// Buffers this pool has allocated (not counting those taken from the spare pool).
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Buffers ready for reuse.
    pub fn free_len(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_trim() {
        let mut b = PacketBuf::from_frame(&[1, 2, 3]).unwrap();
        b.prepend(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(b.data(), &[9, 8, 1, 2, 3]);
        assert!(b.trim_front(2));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(b.prepend(HEADROOM + 1).is_none());
        assert!(!b.trim_front(4));
    }

    #[test]
    fn gaps() {
        let mut b = PacketBuf::from_frame(&[1, 2, 3, 4, 5]).unwrap();
        b.insert_gap(2, 2).unwrap().copy_from_slice(&[7, 7]);
        assert_eq!(b.data(), &[1, 2, 7, 7, 3, 4, 5]);
        assert!(b.remove_gap(2, 2));
        assert_eq!(b.data(), &[1, 2, 3, 4, 5]);
        assert!(!b.remove_gap(4, 2));
        assert!(b.insert_gap(6, 1).is_none());
    }

    #[test]
    fn oversized_frame_rejected() {
        assert!(PacketBuf::from_frame(&vec![0; MAX_FRAME + 1]).is_none());
        assert!(PacketBuf::from_frame(&vec![0; MAX_FRAME]).is_some());
    }

    #[test]
    fn pool_is_bounded() {
        let mut p = BufPool::new(2);
        let a = p.get().unwrap();
        let b = p.get().unwrap();
        // A third comes from the process-wide spare pool if it has one, never from malloc.
        let c = p.get();
        assert_eq!(p.allocated(), 2);
        p.put(a);
        p.put(b); // beyond half the capacity: goes to the spare pool
        if let Some(c) = c {
            p.put(c);
        }
        assert_eq!(p.free_len(), 1);
        assert!(p.get().is_some());
        let mut none = BufPool::new(0);
        assert!(none.get().is_none());
    }
}
