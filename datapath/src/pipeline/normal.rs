//! The `normal` action: an L2 learning switch with VLANs, as OVS's `NORMAL`.
//!
//! What: learn the source (VLAN, MAC) on the ingress port (with the remote and key it came
//! from, behind a flow-based tunnel port), then forward to the port the destination was
//! learned on, or flood within the VLAN (never from one tunnel into another: split
//! horizon), fixing the tag for each egress port's VLAN mode. A mirror's output port takes
//! no part: what it receives is dropped, it is never flooded to or forwarded to.
//!
//! Thread-safety: runs on a poll thread; the MAC table it shares is lock-free.

use super::burst::{Burst, Cx, bit, emit_tun, tun_of};
use crate::actions::rewrite;
use crate::flow::{Field, FlowKey, VLAN_CFI};
use crate::l2::{egress_tag, ingress_vlan};
use crate::stats::DropReason;
use crate::types::{MacAddr, VlanId};

/// How `normal` forwards one packet: its VLAN, the tag it arrived with, and the tunnel
/// destination and key for flow-based tunnel ports.
struct Forward {
    vlan: VlanId,
    tagged: Option<VlanId>,
    tun: (u32, u32),
}

/// The `normal` action for packet `m`; `take`: it may consume the packet (the last output).
pub(super) fn normal(cx: &mut Cx<'_>, b: &mut Burst<'_>, m: usize, take: bool) {
    if b.pkts[m].is_none() {
        return;
    }
    let key = &b.keys[m];
    let tci = key.get(Field::VlanTci) as u16;
    let tagged = (tci & VLAN_CFI != 0).then_some(VlanId(tci & 0x0fff));
    let Some(in_entry) = cx.snap.ports.get(cx.in_slot) else {
        // A packet-out from the controller has no ingress port to learn on.
        cx.drop_pkt(b, m, DropReason::NoSuchPort);
        return;
    };
    if in_entry.mirror_out {
        // Reserved for mirroring: what it receives is not switched (Open vSwitch's rule).
        cx.drop_pkt(b, m, DropReason::MirrorPort);
        return;
    }
    let Some(vlan) = ingress_vlan(&in_entry.vlan, tagged) else {
        cx.drop_pkt(b, m, DropReason::VlanNotAllowed);
        return;
    };
    let src = MacAddr::from_u64(key.get(Field::EthSrc) as u64);
    let dst = MacAddr::from_u64(key.get(Field::EthDst) as u64);
    // Behind a flow-based tunnel port, a station is learned with the remote (and key) it
    // came from, so that unicasts to it go back there.
    let learned_tun = if in_entry.flow_tunnel {
        let (src_ip, id) = (key.get(Field::TunSrc) as u32, key.get(Field::TunId) as u32);
        cx.shared.macs.tun_sources.intern(src_ip.into(), id)
    } else {
        0
    };
    cx.shared
        .macs
        .learn_tun(vlan, src, cx.in_port, learned_tun, cx.now_s);
    if !dst.is_multicast()
        && let Some((port, t)) = cx.shared.macs.lookup_tun(vlan, dst, cx.now_s)
    {
        match cx.snap.slot(port) {
            Some(s) if s == cx.in_slot => cx.drop_pkt(b, m, DropReason::NormalSamePort),
            // Learned before the port became a mirror's output.
            Some(s) if cx.snap.ports[s].mirror_out => cx.drop_pkt(b, m, DropReason::MirrorPort),
            Some(s) => {
                let tun = match t {
                    0 => tun_of(&b.keys[m]),
                    t => learned_remote(cx, t, &b.keys[m]),
                };
                let f = Forward { vlan, tagged, tun };
                normal_out(cx, b, m, s, take, &f);
            }
            None => cx.drop_pkt(b, m, DropReason::NoSuchPort),
        }
        return;
    }
    let from_tunnel = in_entry.tunnel;
    flood(cx, b, m, take, vlan, tagged, from_tunnel);
}

/// Floods packet `m` within `vlan` to every port that carries it but the ingress port (and
/// no tunnel when it came from one: split horizon).
fn flood(
    cx: &mut Cx<'_>,
    b: &mut Burst<'_>,
    m: usize,
    take: bool,
    vlan: VlanId,
    tagged: Option<VlanId>,
    from_tunnel: bool,
) {
    let carries = |s: usize, cx: &Cx<'_>| {
        s != cx.in_slot
            && cx.snap.ports[s].flood
            && !cx.snap.ports[s].mirror_out
            && !(from_tunnel && cx.snap.ports[s].tunnel)
            && egress_tag(&cx.snap.ports[s].vlan, vlan).is_some()
    };
    let Some(last) = (0..cx.snap.ports.len()).rev().find(|&s| carries(s, cx)) else {
        return;
    };
    // A flow-based tunnel port gets what the flows chose (a flood to a `remote_ip=flow`
    // port without a chosen `tun_dst` is dropped there, as `tunnel_no_dst`).
    let f = Forward {
        vlan,
        tagged,
        tun: tun_of(&b.keys[m]),
    };
    for s in 0..=last {
        if carries(s, cx) {
            normal_out(cx, b, m, s, take && s == last, &f);
        }
    }
}

/// The tunnel destination and key of a station learned behind a flow-based tunnel port.
fn learned_remote(cx: &Cx<'_>, t: u16, key: &FlowKey) -> (u32, u32) {
    match cx.shared.macs.tun_sources.get(t) {
        Some((ip, id)) => (u32::from(ip), id),
        None => tun_of(key),
    }
}

/// Sends packet `m` out of the port in `slot` with the tag that port's VLAN mode wants.
#[inline]
fn normal_out(cx: &mut Cx<'_>, b: &mut Burst<'_>, m: usize, slot: usize, take: bool, f: &Forward) {
    let Some(want) = egress_tag(&cx.snap.ports[slot].vlan, f.vlan) else {
        return;
    };
    if want == f.tagged {
        let tun = f.tun;
        emit_tun(cx, b.pkts, m, slot, take, || tun);
        return;
    }
    let Some(mut p) = cx.take_or_copy(b.pkts, m, take) else {
        return;
    };
    let (mut k, mut l) = (b.keys[m], b.lays[m]);
    match rewrite::retag(&mut p, &mut k, &mut l, want.map(|v| v.0)) {
        Ok(()) => {
            if cx.snap.ports[slot].flow_tunnel {
                p.set_tunnel(f.tun.0, f.tun.1);
            }
            cx.sent |= bit(m as u8);
            cx.stage(slot, p, m);
        }
        Err(r) => {
            cx.counters.count_drop(r, 1);
            cx.pool.put(p);
        }
    }
}
