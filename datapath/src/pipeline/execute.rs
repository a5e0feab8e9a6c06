//! The action executor: runs a [`Translation`] once over the packets of one flow in a burst.
//!
//! What: [`run`] walks the translation's operations in order over every member packet:
//! outputs (port, in_port, flood, all) stage packets per port, copying all but the last
//! emitting operation's; `normal` goes to [`super::normal`]; meters are charged once per
//! group of packets; groups run their buckets' operations per packet; what no operation sent
//! anywhere is counted as the translation's drop. The most common translations (one output,
//! or a meter and one output) move the whole group to the port's batch at once.
//!
//! Thread-safety: runs on a poll thread; meters and flow counters it touches are atomics,
//! charged once per group of packets.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::TrySendError;

use arrayvec::ArrayVec;

use super::burst::{Burst, Cx, bit, tun_of};
use super::ct::{ct_clear, ct_op};
use super::normal::normal;
use super::output::send;
use super::port_config::{self, PortConfig};
use super::shared::PacketIn;
use super::snapshot::CompiledGroup;
use super::xlate::{DpAction, PacketInReason, Translation, translate_from};
use crate::actions::{mpls, rewrite};
use crate::flow::{Field, FlowKey, hash_words};
use crate::meter::MeterVerdict;
use crate::packet::PacketBuf;
use crate::port::BURST;

use crate::stats::DropReason;
use crate::types::{GroupId, MeterId, PortNo, TableId};

/// Deepest chain of groups followed before the packet is dropped.
pub(super) const MAX_GROUP_DEPTH: u8 = 4;

/// Runs translation `t` over the packets `members` of `b`; `depth`: how many groups deep.
pub(super) fn run(t: &Translation, cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8], depth: u8) {
    if run_fast(t, cx, b, members) {
        return;
    }
    for (i, op) in t.ops.iter().enumerate() {
        let take = i == t.last_emit;
        match *op {
            DpAction::Output(port) => match cx.snap.slot(port) {
                Some(slot) if slot != cx.in_slot => {
                    for &m in members {
                        cx.emit(b, m as usize, slot, take);
                    }
                }
                Some(_) => {}
                None => {
                    for &m in members {
                        cx.drop_pkt(b, m as usize, DropReason::NoSuchPort);
                    }
                }
            },
            DpAction::InPort => {
                for &m in members {
                    if cx.in_slot < cx.snap.ports.len() {
                        cx.emit(b, m as usize, cx.in_slot, take);
                    } else {
                        cx.drop_pkt(b, m as usize, DropReason::NoSuchPort);
                    }
                }
            }
            DpAction::Flood | DpAction::All => {
                flood(cx, b, members, matches!(op, DpAction::All), take);
            }
            DpAction::Normal => {
                for &m in members {
                    normal(cx, b, m as usize, take);
                }
            }
            DpAction::Controller {
                reason,
                table,
                cookie,
                max_len,
                id,
                userdata,
            } => {
                let to = ToController {
                    reason,
                    table,
                    cookie,
                    max_len,
                    id,
                    userdata: t.userdata.get(usize::from(userdata)),
                };
                controller(cx, b, members, &to, take);
            }
            DpAction::Meter(id) => meter(cx, b, members, id),
            DpAction::Group(id) => group(cx, b, members, id, take, depth),
            DpAction::Enqueue(port, queue) => enqueue(cx, b, members, port, queue, take),
            DpAction::Recirc(table) => {
                for &m in members {
                    recirc(cx, b, m, table, depth);
                }
            }
            DpAction::Ct(ref act, table) => ct_op(cx, b, members, act, table, take),
            DpAction::CtClear => ct_clear(b, members),
            _ => rewrite_op(op, cx, b, members),
        }
    }
    // Packets nothing sent anywhere are this translation's drops.
    for &m in members {
        if cx.sent & bit(m) == 0
            && let Some(p) = b.pkts[m as usize].take()
        {
            cx.counters.count_drop(t.drop_reason, 1);
            cx.pool.put(p);
        }
    }
}

/// The most common translations, one output port, metered or not: the whole group moves to
/// the port's batch at once. False when `t` is not one of them.
#[inline]
fn run_fast(t: &Translation, cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8]) -> bool {
    let (port, meter_id) = match *t.ops {
        [DpAction::Output(port)] => (port, None),
        [DpAction::Meter(id), DpAction::Output(port)] => (port, Some(id)),
        _ => return false,
    };
    let Some(slot) = cx.snap.slot(port).filter(|&s| s != cx.in_slot) else {
        return false;
    };
    let e = &cx.snap.ports[slot];
    // A port mirrored on send, or configured not to send, takes the general path, whose
    // staging mirrors and drops.
    if (e.mirror_tx | (e.config.0 & PortConfig::TX)) != 0 {
        return false;
    }
    let flow_tunnel = e.flow_tunnel;
    if let Some(id) = meter_id {
        meter(cx, b, members, id);
    }
    let batch = &mut cx.tx.batches[slot];
    if batch.is_empty() {
        cx.tx.dirty.push(slot as u16);
    }
    for &m in members {
        let Some(mut p) = b.pkts[m as usize].take() else {
            continue;
        };
        if flow_tunnel {
            let (dst, id) = tun_of(&b.keys[m as usize]);
            p.set_tunnel(dst, id);
        }
        if batch.is_full() {
            let n = batch.len() as u64;
            send(cx.snap, slot, batch, cx.pool, cx.counters);
            cx.counters.tx_packets.add(n);
        }
        batch.push(p);
    }
    true
}

/// `flood` (ports with flooding enabled) or `all`: every such port but the ingress one.
fn flood(cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8], all: bool, take: bool) {
    let eligible = |s: usize, cx: &Cx<'_>| s != cx.in_slot && (all || cx.snap.ports[s].flood);
    let Some(last) = (0..cx.snap.ports.len()).rev().find(|&s| eligible(s, cx)) else {
        return;
    };
    for s in 0..=last {
        if eligible(s, cx) {
            for &m in members {
                cx.emit(b, m as usize, s, take && s == last);
            }
        }
    }
}

/// A `controller` operation's parameters.
struct ToController<'t> {
    reason: PacketInReason,
    table: TableId,
    cookie: u64,
    max_len: u16,
    id: u16,
    userdata: Option<&'t Arc<[u8]>>,
}

/// Sends the packets `members` to the controller (a copy of their first `max_len` bytes).
fn controller(
    cx: &mut Cx<'_>,
    b: &mut Burst<'_>,
    members: &[u8],
    to: &ToController<'_>,
    take: bool,
) {
    if port_config::no_packet_in(cx, members.len()) {
        for &m in members {
            cx.sent |= bit(m);
            if take && let Some(p) = b.pkts[m as usize].take() {
                cx.pool.put(p);
            }
        }
        return;
    }
    for &m in members {
        let m = m as usize;
        let Some(p) = b.pkts[m].as_ref() else {
            continue;
        };
        let len = p.len().min(to.max_len as usize);
        let pi = PacketIn {
            in_port: cx.in_port,
            reason: to.reason,
            table: to.table,
            cookie: to.cookie,
            key: b.keys[m],
            total_len: p.len(),
            data: p.data()[..len].to_vec(),
            controller_id: to.id,
            userdata: to.userdata.cloned(),
        };
        match cx.shared.packet_in.try_send(pi) {
            Ok(()) => cx.sent |= bit(m as u8),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                cx.counters.count_drop(DropReason::PacketInQueueFull, 1);
            }
        }
        if take && let Some(p) = b.pkts[m].take() {
            cx.pool.put(p);
        }
    }
}

/// The operations that change packets in place: set-field, VLAN push and pop, TTL, queue.
fn rewrite_op(op: &DpAction, cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8]) {
    for &m in members {
        let m = m as usize;
        let Some(p) = b.pkts[m].as_mut() else {
            continue;
        };
        let (key, lay) = (&mut b.keys[m], &mut b.lays[m]);
        let r = match *op {
            DpAction::SetField(field, value) => {
                rewrite::set_field(p, key, lay, field, value);
                Ok(())
            }
            DpAction::SetFieldMasked(field, value, mask) => {
                let v = (key.get(field) & !mask) | (value & mask);
                rewrite::set_field(p, key, lay, field, v);
                Ok(())
            }
            DpAction::PushVlan(tpid) => rewrite::push_vlan(p, key, lay, tpid),
            DpAction::PopVlan => {
                rewrite::pop_vlan(p, key, lay);
                Ok(())
            }
            DpAction::DecTtl => rewrite::dec_ttl(p, key, lay),
            DpAction::SetQueue(q) => {
                p.set_queue(q);
                Ok(())
            }
            DpAction::PushMpls(t) => mpls::push_mpls(p, key, lay, t),
            DpAction::PopMpls(t) => mpls::pop_mpls(p, key, lay, t),
            DpAction::DecMplsTtl => mpls::dec_mpls_ttl(p, key, lay),
            DpAction::SetVlan(value, mask, push) => {
                rewrite::set_vlan(p, key, lay, value, mask, push)
            }
            _ => Ok(()),
        };
        if let Err(r) = r {
            cx.drop_pkt(b, m, r);
        }
    }
}

/// `enqueue`: output to `port` (`PortNo::IN_PORT`: the ingress port) on queue `queue`; the
/// packet keeps the queue it had for later outputs.
fn enqueue(
    cx: &mut Cx<'_>,
    b: &mut Burst<'_>,
    members: &[u8],
    port: PortNo,
    queue: u32,
    take: bool,
) {
    let slot = if port == PortNo::IN_PORT {
        Some(cx.in_slot).filter(|&s| s < cx.snap.ports.len())
    } else {
        match cx.snap.slot(port) {
            // As output: never back out of the ingress port unless asked by IN_PORT.
            Some(s) if s == cx.in_slot => return,
            s => s,
        }
    };
    for &m in members {
        let m = m as usize;
        let Some(p) = b.pkts[m].as_mut() else {
            continue;
        };
        let Some(slot) = slot else {
            cx.drop_pkt(b, m, DropReason::NoSuchPort);
            continue;
        };
        let kept = p.queue();
        p.set_queue(queue);
        cx.emit(b, m, slot, take);
        if let Some(p) = b.pkts[m].as_mut() {
            p.set_queue(kept);
        }
    }
}

/// Most recirculations one packet goes through (each after a `pop_mpls`; tables only go
/// forward, so this bounds a stack of labels popped one table after another).
pub(super) const MAX_RECIRC_DEPTH: u8 = 8;

/// Looks packet `m` up again from `table`, with its key as the operations before left it,
/// and runs what it finds. Uncached: only a packet whose MPLS label was popped before a
/// later table comes here (counted as a slow-path lookup).
#[cold]
#[inline(never)]
fn recirc(cx: &mut Cx<'_>, b: &mut Burst<'_>, m: u8, table: TableId, depth: u8) {
    let Some(p) = b.pkts[m as usize].as_ref() else {
        return;
    };
    if depth >= MAX_RECIRC_DEPTH {
        cx.drop_pkt(b, m as usize, DropReason::RecircDepth);
        return;
    }
    let len = p.len() as u64;
    cx.counters.slow_path.add(1);
    let (t, _) = translate_from(&cx.snap.pipeline, table, &b.keys[m as usize]);
    let tables = &cx.counters.tables;
    for rule in t.rules.iter() {
        rule.stats.record(1, len, cx.now_ns);
        tables.matched[rule.spec.table.0 as usize].add(1);
    }
    if let Some(table) = t.miss_table {
        tables.missed[table.0 as usize].add(1);
    }
    run(&t, cx, b, &[m], depth + 1);
}

/// Charges the packets `members` to meter `id` (once for the group), dropping or remarking
/// what its bands say.
fn meter(cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8], id: MeterId) {
    let Some(meter) = cx.snap.meters.get(&id) else {
        for &m in members {
            cx.drop_pkt(b, m as usize, DropReason::NoSuchMeter);
        }
        return;
    };
    let mut lens: ArrayVec<u32, BURST> = ArrayVec::new();
    let mut idx: ArrayVec<u8, BURST> = ArrayVec::new();
    for &m in members {
        if let Some(p) = b.pkts[m as usize].as_ref() {
            lens.push(p.len() as u32);
            idx.push(m);
        }
    }
    let mut verdicts = [MeterVerdict::Pass; BURST];
    meter.apply_batch(cx.now_ns, &lens, &mut verdicts[..lens.len()]);
    for (k, &m) in idx.iter().enumerate() {
        let m = m as usize;
        match verdicts[k] {
            MeterVerdict::Pass => {}
            MeterVerdict::Drop => cx.drop_pkt(b, m, DropReason::Meter),
            MeterVerdict::RemarkDscp(prec) => {
                if let Some(p) = b.pkts[m].as_mut() {
                    let tos = b.keys[m].get(Field::IpTos) as u8;
                    let dscp = tos >> 2;
                    // AF classes (AFxy, dscp = 8x + 2y): raise the drop precedence y.
                    if dscp & 0x31 == 0 && dscp & 0x0e != 0 {
                        let y = ((dscp >> 1) & 3).saturating_add(prec).min(3);
                        let new = (dscp & !0x06) | (y << 1);
                        let v = ((new << 2) | (tos & 3)) as u128;
                        rewrite::set_field(p, &mut b.keys[m], &b.lays[m], Field::IpTos, v);
                    }
                }
            }
        }
    }
}

/// The buckets of group `g` a packet with `key` goes through: every bucket (`all`), or the
/// one its flow hash (returned) chooses. `trace` asks the same.
#[inline]
pub(super) fn buckets_of(g: &CompiledGroup, key: &FlowKey) -> (Range<usize>, Option<u64>) {
    match g.group.kind {
        crate::group::GroupKind::All => (0..g.buckets.len(), None),
        _ => {
            let h = hash_words(&key.w[1..9], 0x005e_1ec7);
            (g.group.select(h).map_or(0..0, |k| k..k + 1), Some(h))
        }
    }
}

/// Runs the packets `members` through group `id`: every bucket (`all`) or the one their
/// flow hash chooses, each bucket on its own copy (the last may take the packet itself).
/// A bucket's copies count against the packet it copies.
fn group(cx: &mut Cx<'_>, b: &mut Burst<'_>, members: &[u8], id: GroupId, take: bool, depth: u8) {
    let snap = cx.snap;
    let Some(g) = snap.groups.get(&id).filter(|_| depth < MAX_GROUP_DEPTH) else {
        for &m in members {
            cx.drop_pkt(b, m as usize, DropReason::NoSuchGroup);
        }
        return;
    };
    let mut sent = cx.sent;
    let (mut packets, mut bytes) = (0, 0);
    let outer = cx.origin;
    for &m in members {
        let m = m as usize;
        let Some(len) = b.pkts[m].as_ref().map(|p| p.len() as u64) else {
            continue;
        };
        packets += 1;
        bytes += len;
        // The buckets to run, first to last: all of them, or the one chosen.
        let chosen = buckets_of(g, &b.keys[m]).0;
        if chosen.is_empty() {
            cx.drop_pkt(b, m, DropReason::NoSuchGroup);
            continue;
        }
        let last = chosen.end - 1;
        let origin = cx.origin_of(m) as u8;
        for k in chosen {
            let mut one: [Option<PacketBuf>; 1] = [cx.take_or_copy(b.pkts, m, take && k == last)];
            if one[0].is_none() {
                continue;
            }
            g.counters.add_bucket(cx.pmd, k, len);
            let mut keys = [b.keys[m]];
            let mut lays = [b.lays[m]];
            let mut copy = Burst {
                pkts: &mut one,
                keys: &mut keys,
                lays: &mut lays,
            };
            cx.sent = 0;
            cx.origin = origin;
            run(&g.buckets[k], cx, &mut copy, &[0], depth + 1);
            cx.origin = outer;
            if cx.sent & 1 != 0 {
                sent |= bit(m as u8);
            }
        }
    }
    g.counters.add(cx.pmd, packets, bytes);
    cx.sent = sent;
}
