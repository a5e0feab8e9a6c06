//! What the action executor works on: the packets of a burst with their keys and layouts
//! ([`Burst`]), and the burst's context ([`Cx`]: snapshot, buffers, output staging,
//! counters, ingress port, time), with the two things every action ends in: staging a packet
//! for a port ([`Cx::emit`]) and dropping it for a reason ([`Cx::drop_pkt`]).
//!
//! Thread-safety: borrowed from one poll thread's `Pmd` for one burst.

use super::ct::CtCx;
use super::mirror;
use super::output::TxStage;
use super::port_config::{self, PortConfig};
use super::shared::Shared;
use super::snapshot::Snapshot;
use crate::flow::{Field, FlowKey, Layout};
use crate::packet::{BufPool, PacketBuf};
use crate::port::BURST;
use crate::stats::{DropReason, PmdCounters};
use crate::types::PortNo;

/// The burst being processed: its packets, their keys and layouts, where it came from.
/// Allocated once per poll thread (not zeroed per burst).
pub(super) struct Work {
    /// Packets in the burst (the first `n` of each array).
    pub(super) n: usize,
    /// The port it arrived on.
    pub(super) in_port: PortNo,
    /// True when it came from a tunnel port: each packet's buffer holds its remote and
    /// key ([`PacketBuf::tunnel`]).
    pub(super) from_tunnel: bool,
    /// That tunnel port's local address (`tun_dst`), host order.
    pub(super) tun_local: u32,
    pub(super) pkts: [Option<PacketBuf>; BURST],
    pub(super) keys: [FlowKey; BURST],
    pub(super) lays: [Layout; BURST],
    /// The mirrors each packet went to ([`Cx::mirrored`]).
    pub(super) mirrored: [u32; BURST],
}

impl Work {
    /// Empty arrays (boxed: a few kilobytes).
    pub(super) fn new() -> Box<Work> {
        Box::new(Work {
            n: 0,
            in_port: PortNo(0),
            from_tunnel: false,
            tun_local: 0,
            pkts: [const { None }; BURST],
            keys: [FlowKey::ZERO; BURST],
            lays: [Layout::default(); BURST],
            mirrored: [0; BURST],
        })
    }

    /// The whole burst as the executor sees it, and its packets' mirror masks.
    #[inline]
    pub(super) fn burst(&mut self) -> (Burst<'_>, &mut [u32; BURST]) {
        let b = Burst {
            pkts: &mut self.pkts,
            keys: &mut self.keys,
            lays: &mut self.lays,
        };
        (b, &mut self.mirrored)
    }
}

/// Packets an action list runs over, with their keys and layouts (index `m` of each is one
/// packet): a whole burst, or the one packet copied into a group bucket. A packet the
/// actions consumed (sent, dropped) leaves `pkts` as `None`.
pub(super) struct Burst<'a> {
    pub(super) pkts: &'a mut [Option<PacketBuf>],
    pub(super) keys: &'a mut [FlowKey],
    pub(super) lays: &'a mut [Layout],
}

/// Everything action execution needs besides the packets, borrowed from the `Pmd` and the
/// snapshot for one burst.
pub(super) struct Cx<'a> {
    pub(super) snap: &'a Snapshot,
    pub(super) shared: &'a Shared,
    pub(super) pool: &'a mut BufPool,
    pub(super) tx: &'a mut TxStage,
    pub(super) counters: &'a PmdCounters,
    /// This poll thread's index (its slot in group counters).
    pub(super) pmd: usize,
    pub(super) in_slot: usize,
    pub(super) in_port: PortNo,
    pub(super) now_ns: u64,
    pub(super) now_s: u32,
    /// Packets (bit `m`) of the running translation that went somewhere: the rest are its
    /// drops.
    pub(super) sent: u32,
    /// The poll thread's tracker handle and recirculation queue.
    pub(super) ct: &'a mut CtCx,
    /// Copies each packet of the burst made in this pass (by its index in the burst), held
    /// to [`super::DatapathConfig::max_copies_per_packet`].
    pub(super) copies: [u32; BURST],
    /// While a group bucket runs over its one-packet copy: the index, in the burst, of the
    /// packet it copies (its copies count against that packet); else [`NO_ORIGIN`].
    pub(super) origin: u8,
    /// The mirrors each packet of the burst went to (by its index, as `copies`): a packet
    /// goes to each mirror output once. Read and reset only when mirrors are configured
    /// (see `mirror`).
    pub(super) mirrored: &'a mut [u32; BURST],
}

/// [`Cx::origin`] outside group buckets: a packet's index is its own.
pub(super) const NO_ORIGIN: u8 = u8::MAX;

/// The bit of packet `m` in [`Cx::sent`].
#[inline]
pub(super) fn bit(m: u8) -> u32 {
    1u32 << (m as u32 & 31)
}

/// The tunnel destination and key a packet carries to a flow-based tunnel port: what its
/// key says (`set_field:...->tun_dst`, `->tun_id`).
#[inline]
pub(super) fn tun_of(key: &FlowKey) -> (u32, u32) {
    (key.get(Field::TunDst) as u32, key.get(Field::TunId) as u32)
}

impl Cx<'_> {
    /// Drops packet `m` for `reason`.
    #[inline]
    pub(super) fn drop_pkt(&mut self, b: &mut Burst<'_>, m: usize, reason: DropReason) {
        if let Some(p) = b.pkts[m].take() {
            self.counters.count_drop(reason, 1);
            self.pool.put(p);
        }
    }

    /// Stages packet `m` for the port in `slot`: moved when `take`, else copied.
    #[inline]
    pub(super) fn emit(&mut self, b: &mut Burst<'_>, m: usize, slot: usize, take: bool) {
        let key = &b.keys[m];
        let tun = || tun_of(key);
        emit_tun(self, b.pkts, m, slot, take, tun);
    }

    /// Stages `p` (packet `m` of the running actions, or a copy of it) for the port in
    /// `slot`: every output of the executor but the single-output fast path ends here, and
    /// so does mirroring on send.
    #[inline]
    pub(super) fn stage(&mut self, slot: usize, p: PacketBuf, m: usize) {
        let e = &self.snap.ports[slot];
        if (e.mirror_tx | (e.config.0 & PortConfig::TX)) != 0 {
            let Some(p) = port_config::tx_allowed(self, slot, p) else {
                return;
            };
            mirror::tx_packet(self, &p, m, slot);
            self.tx.stage(self.snap, slot, p, self.pool, self.counters);
            return;
        }
        self.tx.stage(self.snap, slot, p, self.pool, self.counters);
    }

    /// The index in the burst of the packet whose copies packet `m` (of the running
    /// action list) counts against.
    #[inline]
    pub(super) fn origin_of(&self, m: usize) -> usize {
        if self.origin == NO_ORIGIN {
            m
        } else {
            self.origin as usize
        }
    }

    /// A copy of packet `m` (a buffer from the pool), or, when `take`, the packet itself;
    /// `None` when it is gone, when it made as many copies in this pass as one packet may,
    /// or when no buffer is free (each counted).
    #[inline(always)]
    pub(super) fn take_or_copy(
        &mut self,
        pkts: &mut [Option<PacketBuf>],
        m: usize,
        take: bool,
    ) -> Option<PacketBuf> {
        if take {
            return pkts[m].take();
        }
        let src = pkts[m].as_ref()?;
        let o = self.origin_of(m) % BURST;
        self.copy_of(src, o)
    }

    /// A copy of `src`, counted against packet `o` of the burst; `None` when that packet
    /// made as many copies in this pass as one packet may, or when no buffer is free
    /// (each counted).
    #[inline(always)]
    pub(super) fn copy_of(&mut self, src: &PacketBuf, o: usize) -> Option<PacketBuf> {
        if self.copies[o] as usize >= self.shared.config.max_copies_per_packet {
            self.counters.count_drop(DropReason::CopiesOverLimit, 1);
            return None;
        }
        let Some(mut b) = self.pool.get() else {
            self.counters.count_drop(DropReason::NoBuffer, 1);
            return None;
        };
        self.copies[o] += 1;
        b.copy_from(src);
        Some(b)
    }
}

/// [`Cx::emit`] with the tunnel destination and key given by `tun`, asked only when `slot`
/// is a flow-based tunnel port (other outputs never read them).
#[inline]
pub(super) fn emit_tun(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    m: usize,
    slot: usize,
    take: bool,
    tun: impl FnOnce() -> (u32, u32),
) {
    let Some(mut b) = cx.take_or_copy(pkts, m, take) else {
        return;
    };
    if cx.snap.ports[slot].flow_tunnel {
        let (dst, id) = tun();
        b.set_tunnel(dst, id);
    }
    cx.sent |= bit(m as u8);
    cx.stage(slot, b, m);
}
