//! The receive side of a split virtqueue: frames from the switch written into the guest's
//! receive chains, each behind a virtio-net header (see the parent module for the rules
//! every read of guest-written memory follows).

// Writes into guest memory through raw pointers. Every unsafe block says why.
#![allow(unsafe_code)]

use arrayvec::ArrayVec;

use super::{
    BURST_MAX, BurstStats, MAX_CHAINS, MAX_HDR, MAX_SEGS, Seg, VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Vring,
};
use crate::packet::{BufPool, PacketBuf};
use crate::port::Batch;

impl Vring {
    /// Writes every frame of `batch` into the guest's receive chains (draining it; buffers
    /// go back to `pool`). Frames that find no room are counted in `no_room`.
    pub fn enqueue_burst(&mut self, batch: &mut Batch, pool: &mut BufPool, st: &mut BurstStats) {
        let Some(mut pending) = self.pending() else {
            st.ring_corrupt += 1;
            st.no_room += batch.len() as u64;
            pool.put_batch(batch);
            return;
        };
        let old_used = self.used_idx;
        // The heads of the chains the burst will probably take, read once: the guest
        // refills this ring meanwhile, and every read of a line it writes is a miss.
        let mut heads = Heads {
            first: self.last_avail,
            n: pending.min(batch.len() as u16),
            heads: [0; BURST_MAX],
        };
        // No `lone` for receive chains: the fast path of `enqueue_one` reads the head
        // descriptor again (a hit by now), which costs fewer instructions than keeping it.
        self.prefetch_chains(heads.n, true, &mut heads.heads, None);
        for b in batch.iter() {
            if pending == 0 {
                st.no_room += 1;
            } else if self.enqueue_one(b, &mut pending, &heads, st) {
                st.pkts += 1;
                st.bytes += b.len() as u64;
            }
        }
        pool.put_batch(batch);
        self.publish_used(old_used, st);
    }

    /// Writes one frame; false when it found no room (counted).
    #[inline]
    fn enqueue_one(
        &mut self,
        pkt: &PacketBuf,
        pending: &mut u16,
        heads: &Heads,
        st: &mut BurstStats,
    ) -> bool {
        let hdr_len = usize::from(self.features.hdr_len);
        let need = hdr_len + pkt.len();
        // The common case: the next chain is one writable buffer, contiguous in guest
        // memory and large enough for the header and the frame.
        if let Some(head) = heads.get(self.last_avail)
            && head < self.size
        {
            let d = Self::read_desc(self.desc, u32::from(head));
            if d.flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE)
                == VIRTQ_DESC_F_WRITE
                && d.len as usize >= need
                && let Some(p) = self.mem.translate(d.addr, need as u64)
            {
                // SAFETY: `p..p+need` is guest memory (translated, the whole range in one
                // region) that the guest made writable for us; the frame is our own memory;
                // `hdr_len + pkt.len() == need`.
                unsafe {
                    // The header as two stores straight into the guest's buffer (no
                    // offloads; `num_buffers` 1 in a 12-byte header), not a copy of a
                    // stack array: its pieces would be stored and reloaded whole.
                    match hdr_len {
                        12 => {
                            p.cast::<u64>().write_unaligned(0);
                            p.add(8).cast::<u32>().write_unaligned((1u32 << 16).to_le());
                        }
                        10 => {
                            p.cast::<u64>().write_unaligned(0);
                            p.add(8).cast::<u16>().write_unaligned(0);
                        }
                        n => std::ptr::write_bytes(p, 0, n),
                    }
                    std::ptr::copy_nonoverlapping(pkt.data().as_ptr(), p.add(hdr_len), pkt.len());
                }
                self.last_avail = self.last_avail.wrapping_add(1);
                *pending -= 1;
                self.push_used(head, need as u32);
                return true;
            }
        }
        let mut segs: ArrayVec<Seg, MAX_SEGS> = ArrayVec::new();
        // Per chain: its head, where its segments end in `segs`, its capacity.
        let mut chains: ArrayVec<(u16, usize, usize), MAX_CHAINS> = ArrayVec::new();
        let mut cap = 0usize;
        // Where to go back to when the frame does not fit: after the last bad chain, which
        // was given back to the guest already.
        let (mut restore_avail, mut restore_pending) = (self.last_avail, *pending);
        while cap < need {
            if *pending == 0 || chains.is_full() || (!self.features.mergeable && !chains.is_empty())
            {
                self.last_avail = restore_avail;
                *pending = restore_pending;
                st.no_room += 1;
                return false;
            }
            let head = match heads.get(self.last_avail) {
                Some(h) => h,
                None => self.avail_entry(self.last_avail),
            };
            self.last_avail = self.last_avail.wrapping_add(1);
            *pending -= 1;
            let start = segs.len();
            let mut chain_cap = 0usize;
            let mut overflow = false;
            let res = self.walk(head, true, |ptr, len| {
                if segs.try_push(Seg { ptr, len }).is_err() {
                    overflow = true;
                    return false;
                }
                chain_cap += len;
                true
            });
            match res {
                Ok(()) if !overflow => {
                    cap += chain_cap;
                    chains.push((head, segs.len(), chain_cap));
                }
                Ok(()) => {
                    // More pieces than a frame may be split into: a hostile layout.
                    segs.truncate(start);
                    if chains.is_empty() {
                        self.push_used(head, 0);
                        st.bad_descriptor += 1;
                        restore_avail = self.last_avail;
                        restore_pending = *pending;
                    } else {
                        self.last_avail = restore_avail;
                        *pending = restore_pending;
                        st.no_room += 1;
                        return false;
                    }
                }
                Err(e) => {
                    segs.truncate(start);
                    self.push_used(head, 0);
                    st.count(e);
                    if chains.is_empty() {
                        restore_avail = self.last_avail;
                        restore_pending = *pending;
                    } else {
                        // The chains taken so far stay with the guest: go back to before
                        // them, having given this bad one back.
                        self.last_avail = restore_avail;
                        *pending = restore_pending;
                        st.no_room += 1;
                        return false;
                    }
                }
            }
        }
        // The virtio-net header: no offloads, and how many chains the frame takes.
        let mut hdr = [0u8; MAX_HDR];
        if hdr_len == MAX_HDR {
            hdr[10..12].copy_from_slice(&(chains.len() as u16).to_le_bytes());
        }
        let mut w = Scatter {
            segs: &segs,
            seg: 0,
            off: 0,
        };
        w.put(&hdr[..hdr_len]);
        w.put(pkt.data());
        let mut start = 0usize;
        for &(head, _, chain_cap) in &chains {
            let written = chain_cap.min(need - start);
            start += chain_cap;
            self.push_used(head, written as u32);
        }
        true
    }
}

/// Available-ring heads read ahead of use: entries `first .. first + n`.
struct Heads {
    first: u16,
    n: u16,
    heads: [u16; BURST_MAX],
}

impl Heads {
    /// The head in available entry `i`, if it was read ahead.
    #[inline]
    fn get(&self, i: u16) -> Option<u16> {
        let k = i.wrapping_sub(self.first);
        (k < self.n).then(|| self.heads[usize::from(k)])
    }
}

/// Writes bytes across segments, in order.
struct Scatter<'a> {
    segs: &'a [Seg],
    seg: usize,
    off: usize,
}

impl Scatter<'_> {
    #[inline]
    fn put(&mut self, mut src: &[u8]) {
        while !src.is_empty() {
            let Some(s) = self.segs.get(self.seg) else {
                return;
            };
            let n = (s.len - self.off).min(src.len());
            // SAFETY: `s.ptr..s.ptr+s.len` is a writable piece of guest memory (translated
            // by `walk`, a WRITE descriptor); `off + n <= len`; `src` is our own memory.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), s.ptr.add(self.off), n) };
            src = &src[n..];
            self.off += n;
            if self.off == s.len {
                self.seg += 1;
                self.off = 0;
            }
        }
    }
}
