//! The `ct` action in the poll loop: a group of packets through the datapath's tracker,
//! their ct fields into their keys, and `ct(table=T)`'s recirculation.
//!
//! What: [`ct_op`] runs one `ct(...)` over the packets of one flow at once
//! ([`Conntrack::execute`] with the poll thread's [`CtThread`]), then writes each packet's
//! [`CtMeta`] into its key (`ct_state`, `ct_zone`, `ct_mark`, `ct_label`, the
//! original-direction tuple). NAT rewrote the frames: their keys are read again. Without a
//! table the packets go on through the rest of the action list (a later `ct` sees their
//! state, as in Open vSwitch; later tables of this pass were translated with the fields
//! cleared). With `table=T` the tracked packets (copies, unless the `ct` is the last
//! operation that sends the packet anywhere: Open vSwitch's fork) are queued with
//! recirculation id T+1 in [`CtCx::recirc`]; the poll thread looks them up again after the
//! burst, as a burst of their own, through a megaflow cache of their own keyed on every
//! word of the key (so established traffic hits it after its first packets).
//!
//! Fragments the tracker holds leave the group; the fragments of a datagram it completes
//! come back (through [`CtThread::drain_released`]) and go where the group's packets go:
//! to the recirculation queue, or into the group's freed slots (the rest are dropped,
//! counted as `drop_recirc_full`).
//!
//! Thread-safety: `CtCx` belongs to one poll thread; the tracker is shared (see
//! `conntrack`).

use super::burst::{Burst, Cx, bit};
use crate::actions::mpls::reread;
use crate::conntrack::{CtAction, CtMeta, CtState, CtThread};
use crate::flow::{Field, FlowKey, Layout, PKT_WORDS, extract};
use crate::packet::PacketBuf;
use crate::port::BURST;
use crate::stats::DropReason;
use crate::types::TableId;

/// Most packets waiting for recirculation at once (more are dropped, counted).
pub(super) const RECIRC_QUEUE: usize = 4 * BURST;

/// A packet waiting to be looked up again after `ct(table=T)`.
pub(super) struct Recirc {
    pub(super) buf: PacketBuf,
    pub(super) key: FlowKey,
    pub(super) lay: Layout,
    /// The slot of the port it arrived on (`usize::MAX`: none, a packet-out).
    pub(super) in_slot: usize,
    /// The mirrors it went to before (it goes to none of them again).
    pub(super) mirrored: u32,
}

/// A poll thread's connection-tracking state: its handle on the tracker (made when the
/// first `ct` runs) and the packets waiting for recirculation.
pub(super) struct CtCx {
    pub(super) thread: Option<CtThread>,
    pub(super) recirc: Vec<Recirc>,
}

impl CtCx {
    /// No handle yet, an empty queue (its room allocated once).
    pub(super) fn new() -> CtCx {
        CtCx {
            thread: None,
            recirc: Vec::with_capacity(RECIRC_QUEUE),
        }
    }
}

/// The connection-tracking fields (all but the recirculation id).
const CT_FIELDS: [Field; 8] = [
    Field::CtState,
    Field::CtNwProto,
    Field::CtZone,
    Field::CtMark,
    Field::CtTpSrc,
    Field::CtTpDst,
    Field::CtLabel,
    Field::CtIpv6Src,
];

/// Clears `key`'s connection-tracking fields (`ct_clear`; what translation sees after a
/// `ct`), keeping its recirculation id.
pub(crate) fn clear_key(key: &mut FlowKey) {
    for f in CT_FIELDS {
        key.set(f, 0);
    }
    key.set(Field::CtIpv6Dst, 0);
}

/// The metadata the tracker needs from a key: the state and zone of an earlier `ct`.
#[inline]
fn meta_of(key: &FlowKey) -> CtMeta {
    CtMeta {
        state: CtState(key.get(Field::CtState) as u8),
        zone: key.get(Field::CtZone) as u16,
        mark: key.get(Field::CtMark) as u32,
        label: key.get(Field::CtLabel),
        orig: None,
    }
}

/// Writes `md` into `key`'s connection-tracking fields.
#[inline]
pub(crate) fn set_key(key: &mut FlowKey, md: &CtMeta) {
    key.set(Field::CtState, md.state.0 as u128);
    key.set(Field::CtZone, md.zone as u128);
    key.set(Field::CtMark, md.mark as u128);
    key.set(Field::CtLabel, md.label);
    key.set(Field::CtNwProto, md.ct_nw_proto() as u128);
    // The tracker's tuple keeps an IPv4 address in the low bits, where `ct_nw_src` is.
    key.set(Field::CtIpv6Src, md.orig.map_or(0, |t| t.src));
    key.set(Field::CtIpv6Dst, md.orig.map_or(0, |t| t.dst));
    key.set(Field::CtTpSrc, md.ct_tp_src() as u128);
    key.set(Field::CtTpDst, md.ct_tp_dst() as u128);
}

/// Runs `ct` over the packets `members` of `b`; with `table`, queues the tracked packets
/// for recirculation (taking them when `take`, else copies).
pub(super) fn ct_op(
    cx: &mut Cx<'_>,
    b: &mut Burst<'_>,
    members: &[u8],
    act: &CtAction,
    table: Option<TableId>,
    take: bool,
) {
    let n = b.pkts.len().min(BURST);
    let mut meta = [CtMeta::default(); BURST];
    for &m in members {
        let m = m as usize;
        if m < n {
            meta[m] = meta_of(&b.keys[m]);
        }
    }
    let ct = cx.shared.conntrack();
    let now_ms = cx.now_ns / 1_000_000;
    let Some(table) = table else {
        let thread = cx.ct.thread.get_or_insert_with(|| ct.thread());
        ct.execute(
            thread,
            act,
            &mut b.pkts[..n],
            &mut meta[..n],
            members,
            now_ms,
        );
        for &m in members {
            let m = m as usize;
            if m < n
                && let Some(p) = b.pkts[m].as_ref()
            {
                set_key(&mut b.keys[m], &meta[m]);
                if act.nat.is_some()
                    && let Err(r) = reread(p, &mut b.keys[m], &mut b.lays[m])
                {
                    cx.drop_pkt(b, m, r);
                }
            }
        }
        released_in_place(cx, b, members);
        return;
    };
    // The tracked packets: the group's own when this is its last emitting operation, else
    // copies (the action list goes on with the originals).
    let mut own: [Option<PacketBuf>; BURST] = [const { None }; BURST];
    for &m in members {
        let m = m as usize;
        if m < n {
            own[m] = cx.take_or_copy(b.pkts, m, take);
            if own[m].is_some() {
                cx.sent |= bit(m as u8);
            }
        }
    }
    let thread = cx.ct.thread.get_or_insert_with(|| ct.thread());
    ct.execute(thread, act, &mut own[..n], &mut meta[..n], members, now_ms);
    let recirc_id = table.0 as u128 + 1;
    let template = members
        .first()
        .map_or(FlowKey::ZERO, |&m| b.keys[m as usize]);
    for &m in members {
        let m = m as usize;
        let Some(buf) = own.get_mut(m).and_then(Option::take) else {
            continue;
        };
        let mut key = b.keys[m];
        let mut lay = b.lays[m];
        set_key(&mut key, &meta[m]);
        key.set(Field::RecircId, recirc_id);
        if act.nat.is_some()
            && let Err(r) = reread(&buf, &mut key, &mut lay)
        {
            cx.counters.count_drop(r, 1);
            cx.pool.put(buf);
            continue;
        }
        let mirrored = cx.mirrored[cx.origin_of(m) % BURST];
        queue(cx, buf, key, lay, mirrored);
    }
    // Fragments of datagrams this call completed follow the group.
    let thread = cx.ct.thread.get_or_insert_with(|| ct.thread());
    let released: arrayvec::ArrayVec<(PacketBuf, CtMeta), BURST> =
        thread.drain_released().take(BURST).collect();
    let extra = thread.drain_released().count();
    cx.counters.count_drop(DropReason::RecircFull, extra as u64);
    for (buf, md) in released {
        let Some((mut key, lay)) = key_of(&buf, &template) else {
            cx.counters.count_drop(DropReason::RuntFrame, 1);
            cx.pool.put(buf);
            continue;
        };
        set_key(&mut key, &md);
        key.set(Field::RecircId, recirc_id);
        queue(cx, buf, key, lay, 0);
    }
}

/// A released fragment's key and layout, read from its frame, with the pipeline state of
/// `template` (a packet of the group that completed its datagram).
fn key_of(buf: &PacketBuf, template: &FlowKey) -> Option<(FlowKey, Layout)> {
    let mut key = FlowKey::ZERO;
    let in_port = crate::types::PortNo(template.get(Field::InPort) as u32);
    let lay = extract(buf.data(), in_port, &mut key).ok()?;
    key.w[PKT_WORDS..].copy_from_slice(&template.w[PKT_WORDS..]);
    Some((key, lay))
}

/// Queues a tracked packet for recirculation (with the mirrors it went to), or drops it
/// (counted) when the queue is full.
fn queue(cx: &mut Cx<'_>, buf: PacketBuf, key: FlowKey, lay: Layout, mirrored: u32) {
    if cx.ct.recirc.len() >= RECIRC_QUEUE {
        cx.counters.count_drop(DropReason::RecircFull, 1);
        cx.pool.put(buf);
        return;
    }
    cx.ct.recirc.push(Recirc {
        buf,
        key,
        lay,
        in_slot: cx.in_slot,
        mirrored,
    });
}

/// `ct` without a table: fragments of datagrams completed now take the group's slots
/// that the tracker emptied (fragments it held), in order; the rest are dropped.
fn released_in_place(cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8]) {
    let Some(thread) = cx.ct.thread.as_mut() else {
        return;
    };
    let free: arrayvec::ArrayVec<usize, BURST> = members
        .iter()
        .map(|&m| m as usize)
        .filter(|&m| m < b.pkts.len() && b.pkts[m].is_none() && cx.sent & bit(m as u8) == 0)
        .collect();
    let mut free = free.into_iter();
    let template = members
        .first()
        .map_or(FlowKey::ZERO, |&m| b.keys[m as usize]);
    let released: arrayvec::ArrayVec<(PacketBuf, CtMeta), BURST> =
        thread.drain_released().take(BURST).collect();
    let extra = thread.drain_released().count();
    cx.counters.count_drop(DropReason::RecircFull, extra as u64);
    for (buf, md) in released {
        let slot = free.next();
        match (slot, key_of(&buf, &template)) {
            (Some(m), Some((mut key, lay))) => {
                set_key(&mut key, &md);
                b.keys[m] = key;
                b.lays[m] = lay;
                b.pkts[m] = Some(buf);
            }
            _ => {
                cx.counters.count_drop(DropReason::RecircFull, 1);
                cx.pool.put(buf);
            }
        }
    }
}

/// `ct_clear` over the packets `members` of `b`.
pub(super) fn ct_clear(b: &mut Burst<'_>, members: &[u8]) {
    for &m in members {
        if let Some(k) = b.keys.get_mut(m as usize) {
            clear_key(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Tuple;

    #[test]
    fn meta_round_trips_through_the_key() {
        let md = CtMeta {
            state: CtState(CtState::TRK | CtState::EST | CtState::RPL),
            zone: 7,
            mark: 0xdead,
            label: 1 << 100 | 5,
            orig: Some(Tuple {
                src: 0x0a00_0001,
                dst: 0x0a00_0002,
                sport: 1234,
                dport: 80,
                proto: 6,
                v6: false,
                zone: 7,
            }),
        };
        let mut k = FlowKey::ZERO;
        k.set(Field::RecircId, 3);
        set_key(&mut k, &md);
        assert_eq!(k.get(Field::CtState), 0x2a);
        assert_eq!(k.get(Field::CtNwSrc), 0x0a00_0001);
        assert_eq!(k.get(Field::CtNwDst), 0x0a00_0002);
        assert_eq!(k.get(Field::CtTpSrc), 1234);
        assert_eq!(k.get(Field::CtTpDst), 80);
        assert_eq!(k.get(Field::CtNwProto), 6);
        let back = meta_of(&k);
        assert_eq!(
            (back.state, back.zone, back.mark, back.label),
            (md.state, 7, 0xdead, md.label)
        );
        clear_key(&mut k);
        assert_eq!(
            k.get(Field::RecircId),
            3,
            "ct_clear keeps the recirculation id"
        );
        k.set(Field::RecircId, 0);
        assert_eq!(k, FlowKey::ZERO);
    }
}
