//! The executor's questions a trace asks (see `trace`): what `normal` would do with the MAC
//! table as it is, what a meter would decide, which group buckets, what state `ct` would
//! give. Each reads and never writes.
//!
//! Thread-safety: as `trace`.

use super::dp_action::DpAction;
use super::execute::{MAX_GROUP_DEPTH, buckets_of};
use super::trace::{Dry, GONE, NodeKind, Pending, Pkt};
use super::trace_text as text;
use crate::conntrack::CtAction;
use crate::flow::{Field, VLAN_CFI};
use crate::l2::{egress_tag, ingress_vlan};
use crate::meter::MeterVerdict;
use crate::stats::DropReason;
use crate::types::{MacAddr, TableId, VlanId};

use super::ct::RECIRC_QUEUE;
use super::pmd::MAX_RECIRC_PASSES;

impl Dry<'_> {
    /// `normal`: the ingress VLAN, the MAC table's entry for the destination (read, never
    /// learned), then the port or the flood.
    pub(super) fn normal(&mut self, p: &Pkt, d: u8) -> bool {
        let key = &p.key;
        let tci = key.get(Field::VlanTci) as u16;
        let tagged = (tci & VLAN_CFI != 0).then_some(VlanId(tci & 0x0fff));
        let Some(in_entry) = self.snap.ports.get(self.in_slot) else {
            self.drop_pkt(
                d,
                DropReason::NoSuchPort,
                "normal: no ingress port to learn on",
            );
            return false;
        };
        let Some(vlan) = ingress_vlan(&in_entry.vlan, tagged) else {
            self.drop_pkt(
                d,
                DropReason::VlanNotAllowed,
                "normal: VLAN not allowed on the ingress port",
            );
            return false;
        };
        let src = MacAddr::from_u64(key.get(Field::EthSrc) as u64);
        let dst = MacAddr::from_u64(key.get(Field::EthDst) as u64);
        let t = format!(
            "normal: learns {src} on port {} in VLAN {} (not recorded by the trace)",
            self.in_port, vlan.0
        );
        self.line(d, NodeKind::Detail, t);
        let now_s = (self.now_ns / 1_000_000_000) as u32;
        let found = if dst.is_multicast() {
            None
        } else if dst == src {
            Some(self.in_port)
        } else {
            self.dp
                .mac_table()
                .lookup_tun(vlan, dst, now_s)
                .map(|(p, _)| p)
        };
        if let Some(port) = found {
            let t = format!("MAC table: {dst} in VLAN {} is on port {port}", vlan.0);
            self.line(d, NodeKind::Detail, t);
            return match self.snap.slot(port) {
                Some(s) if s == self.in_slot => {
                    self.drop_pkt(
                        d,
                        DropReason::NormalSamePort,
                        "normal: the destination is on the ingress port",
                    );
                    false
                }
                Some(s) => self.normal_out(s, p, vlan, tagged, d),
                None => {
                    self.drop_pkt(
                        d,
                        DropReason::NoSuchPort,
                        "normal: the learned port is gone",
                    );
                    false
                }
            };
        }
        let t = format!("no learned entry for {dst} in VLAN {}: flooding", vlan.0);
        self.line(d, NodeKind::Detail, t);
        let from_tunnel = in_entry.tunnel;
        let mut sent = false;
        for s in 0..self.snap.ports.len() {
            let e = &self.snap.ports[s];
            if s != self.in_slot
                && e.flood
                && !(from_tunnel && e.tunnel)
                && egress_tag(&e.vlan, vlan).is_some()
            {
                sent |= self.normal_out(s, p, vlan, tagged, d);
            }
        }
        sent
    }

    /// `normal`'s output to `slot` with the tag its VLAN mode wants.
    pub(super) fn normal_out(
        &mut self,
        slot: usize,
        p: &Pkt,
        vlan: VlanId,
        tagged: Option<VlanId>,
        d: u8,
    ) -> bool {
        let Some(want) = egress_tag(&self.snap.ports[slot].vlan, vlan) else {
            return false;
        };
        if want != tagged {
            match want {
                Some(v) => self.acts.push(format!("push_vlan(vid={})", v.0)),
                None => self.acts.push("pop_vlan".into()),
            }
        }
        self.out(slot, p, d)
    }

    /// A meter's verdict for this packet, its buckets untouched.
    pub(super) fn meter(&mut self, id: crate::types::MeterId, p: &mut Pkt, d: u8) {
        let Some(m) = self.snap.meters.get(&id) else {
            self.drop_pkt(d, DropReason::NoSuchMeter, &format!("no meter {}", id.0));
            return;
        };
        self.acts.push(format!("meter({})", id.0));
        let (v, band) = m.peek(self.now_ns, p.frame.len() as u32);
        let band = band.map_or(String::new(), |b| format!(" (band {b} exceeded)"));
        match v {
            MeterVerdict::Pass => {
                self.line(d, NodeKind::Detail, format!("meter {}: pass{band}", id.0))
            }
            MeterVerdict::Drop => self.drop_pkt(
                d,
                DropReason::Meter,
                &format!("meter {}: over its rate{band}", id.0),
            ),
            MeterVerdict::RemarkDscp(prec) => {
                let t = format!(
                    "meter {}: remark DSCP by {prec} drop precedence{band}",
                    id.0
                );
                self.line(d, NodeKind::Detail, t);
            }
        }
    }

    /// A group: the buckets the executor would choose, each run on its own copy.
    pub(super) fn group(
        &mut self,
        id: crate::types::GroupId,
        p: &Pkt,
        d: u8,
        rd: u8,
        gd: u8,
    ) -> bool {
        let snap = self.snap;
        let Some(g) = snap.groups.get(&id).filter(|_| gd < MAX_GROUP_DEPTH) else {
            self.drop_pkt(
                d,
                DropReason::NoSuchGroup,
                &format!("no group {} (or groups nested too deep)", id.0),
            );
            return false;
        };
        let (chosen, hash) = buckets_of(g, &p.key);
        let why = match hash {
            None => format!(
                "group {} ({:?}): every bucket ({})",
                id.0,
                g.group.kind,
                chosen.len()
            ),
            Some(h) => match chosen.clone().next() {
                Some(b) => format!(
                    "group {} ({:?}): bucket {b} of {}, chosen by the flow hash {h:#018x}",
                    id.0,
                    g.group.kind,
                    g.buckets.len()
                ),
                None => format!("group {} ({:?}): no live bucket", id.0, g.group.kind),
            },
        };
        self.line(d, NodeKind::Detail, why);
        if chosen.is_empty() {
            self.drop_pkt(d, DropReason::NoSuchGroup, "no bucket");
            return false;
        }
        let mut sent = false;
        for k in chosen {
            self.line(d, NodeKind::Action, format!("bucket {k}"));
            let mut copy = p.clone();
            let t = &g.buckets[k];
            for op in t.ops.iter() {
                let before = self.lines.len();
                if let Some(s) = text::dp_rewrite(op).filter(|_| !op.emits()) {
                    self.line(d + 1, NodeKind::Action, s);
                }
                sent |= match *op {
                    DpAction::Group(inner) => self.group(inner, &copy, d + 1, rd, gd + 1),
                    _ => self.op(op, &mut copy, d + 1, rd, false),
                };
                if self.lines[before..].iter().any(|n| n.text == GONE) {
                    self.lines.retain(|n| n.text != GONE);
                    break;
                }
            }
        }
        sent
    }

    /// `ct`: the state the tracker would give (nothing committed); with a table, the
    /// tracked copy's pass is queued.
    pub(super) fn ct(
        &mut self,
        act: &CtAction,
        table: Option<TableId>,
        p: &mut Pkt,
        d: u8,
        rd: u8,
    ) -> bool {
        let args = text::ct_args(act, table);
        let now_ms = self.now_ns / 1_000_000;
        let meta = match self.dp.conntrack_if_made() {
            Some(ct) => ct.peek(act, &p.frame, now_ms),
            // No tracker yet: it would be made empty, so the packet is new (or invalid).
            None => {
                crate::conntrack::Conntrack::new(Default::default()).peek(act, &p.frame, now_ms)
            }
        };
        let Some(meta) = meta else {
            self.line(
                d,
                NodeKind::Detail,
                "a fragment: the tracker reassembles the datagram first".into(),
            );
            return false;
        };
        let commit = if act.commit {
            ", committed when it runs"
        } else {
            ""
        };
        let t = format!(
            "conntrack: ct_state={} zone={}{commit} (the trace commits nothing)",
            meta.state, meta.zone
        );
        self.line(d, NodeKind::Detail, t);
        let mut tracked = p.clone();
        super::ct::set_key(&mut tracked.key, &meta);
        let Some(table) = table else {
            self.acts.push(args);
            *p = tracked;
            return false;
        };
        let id = table.0 as u128 + 1;
        self.acts.push(format!("{args},recirc({id:#x})"));
        if self.ct_pass >= MAX_RECIRC_PASSES {
            self.drops.push(DropReason::RecircDepth);
            let t = format!(
                "{MAX_RECIRC_PASSES} recirculations already: the tracked copy is dropped ({})",
                DropReason::RecircDepth.name()
            );
            self.line(d, NodeKind::Warn, t);
            return true;
        }
        if self.queued[self.ct_pass + 1] >= RECIRC_QUEUE {
            self.drops.push(DropReason::RecircFull);
            let t = format!(
                "the recirculation queue is full: the tracked copy is dropped ({})",
                DropReason::RecircFull.name()
            );
            self.line(d, NodeKind::Warn, t);
            return true;
        }
        self.queued[self.ct_pass + 1] += 1;
        tracked.key.set(Field::RecircId, id);
        let header = format!(
            "recirc({id:#x}) - resume conntrack with ct_state={}",
            meta.state
        );
        self.queue.push_back(Pending {
            header,
            pkt: tracked,
            table,
            recirc_depth: rd,
            ct_pass: self.ct_pass + 1,
        });
        true
    }
}
