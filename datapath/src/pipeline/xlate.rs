//! The slow path: walk the OpenFlow tables for one packet key and compile the result into
//! a flat list of datapath operations, plus the mask of every field the walk consulted.
//!
//! What: [`translate`] follows OpenFlow 1.3 instruction order per table (meter,
//! apply-actions, write-metadata, goto-table) over a working copy of the key, so later
//! tables see earlier set-fields. The resulting [`Translation`] is what the megaflow cache
//! stores; the mask it returns covers every subtable probed in every table visited, which
//! makes the megaflow safe for every packet that agrees with the key on it (fields rewritten
//! before a later lookup are unwildcarded on their ingress value: conservative, never wrong).
//!
//! A `pop_mpls` leaves the working key's packet fields unknown (what follows the label is
//! read from the frame only when the pop runs): a lookup after it becomes a
//! [`DpAction::Recirc`], which looks the popped packet up again, from that table, when it
//! runs (as Open vSwitch recirculates). Actions whose result depends on the packet (a TTL
//! decrement, an MPLS push, the OpenFlow 1.0 VLAN rewrites) unwildcard what they read, so
//! a later lookup on what they wrote is safe for every packet of the megaflow.
//!
//! A `ct` action clears the working key's connection-tracking fields, as Open vSwitch's
//! translation does: its results are seen only by the lookups of the packet it
//! recirculates (`ct(table=T)`, a new translation from table T of the tracked packet's key).
//!
//! Thread-safety: pure function over an immutable pipeline.

use std::sync::Arc;

use crate::actions::{Action, mpls};
use crate::classifier::{Pipeline, Rule};
use crate::conntrack::CtAction;
use crate::flow::{Field, FlowKey, FlowMask, VLAN_CFI};
use crate::packet::ethertype;
use crate::stats::DropReason;
use crate::types::{GroupId, MeterId, PortNo, TableId};

/// Why a packet goes to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketInReason {
    /// A table-miss flow (priority 0, empty match) sent it: OpenFlow's `no_match`.
    NoMatch,
    /// An explicit `controller` action of any other flow.
    Action,
    /// `controller` inside a group bucket.
    Group,
}

/// One compiled datapath operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpAction {
    /// Send to a port by number (resolved against the current ports per burst).
    Output(PortNo),
    /// Send back out of the ingress port.
    InPort,
    /// Every port with flooding enabled but the ingress one.
    Flood,
    /// Every port but the ingress one.
    All,
    /// L2 learning switch.
    Normal,
    /// Packet-in to the controller.
    Controller {
        /// Why.
        reason: PacketInReason,
        /// Table of the flow that sent it.
        table: TableId,
        /// Cookie of the flow that sent it.
        cookie: u64,
        /// Bytes of packet data to include.
        max_len: u16,
    },
    /// Rewrite a field.
    SetField(Field, u128),
    /// Rewrite some bits of a field: (field, value, mask).
    SetFieldMasked(Field, u128, u128),
    /// Push a VLAN tag with this TPID.
    PushVlan(u16),
    /// Pop the outer VLAN tag.
    PopVlan,
    /// Decrement TTL / hop limit.
    DecTtl,
    /// Meter the packets.
    Meter(MeterId),
    /// Process through a group.
    Group(GroupId),
    /// Choose the egress queue.
    SetQueue(u32),
    /// Send to a port (or the ingress port, `PortNo::IN_PORT`) on a queue, keeping the
    /// packet's queue.
    Enqueue(PortNo, u32),
    /// Push an MPLS entry with this ethertype.
    PushMpls(u16),
    /// Pop the outer MPLS entry; what follows has this ethertype.
    PopMpls(u16),
    /// Decrement the outer MPLS TTL.
    DecMplsTtl,
    /// OpenFlow 1.0 VLAN rewrite: (TCI bits, their mask, tag untagged packets).
    SetVlan(u16, u16, bool),
    /// Look the packet up again from this table, with its key as the operations before
    /// left it (after a `pop_mpls`); the translation ends here.
    Recirc(TableId),
    /// Connection tracking: run the packets through the tracker; with a table, the
    /// tracked packets (a copy unless this is the last emitting operation) continue there,
    /// through the caches, as recirculated packets (`pipeline::ct`).
    Ct(CtAction, Option<TableId>),
    /// Forget the packets' connection-tracking state.
    CtClear,
}

impl DpAction {
    /// True for operations that send the packet somewhere (and so may consume it).
    pub fn emits(&self) -> bool {
        matches!(
            self,
            DpAction::Output(_)
                | DpAction::InPort
                | DpAction::Flood
                | DpAction::All
                | DpAction::Normal
                | DpAction::Controller { .. }
                | DpAction::Group(_)
                | DpAction::Enqueue(..)
                | DpAction::Recirc(_)
                | DpAction::Ct(_, Some(_))
        )
    }

    /// The datapath form of an OpenFlow action found in `table` of a flow with `cookie`.
    pub fn from_action(
        a: &Action,
        table: TableId,
        cookie: u64,
        reason: PacketInReason,
    ) -> DpAction {
        match *a {
            Action::Output(p) => DpAction::Output(p),
            Action::InPort => DpAction::InPort,
            Action::Flood => DpAction::Flood,
            Action::All => DpAction::All,
            Action::Normal => DpAction::Normal,
            Action::Controller { max_len } => DpAction::Controller {
                reason,
                table,
                cookie,
                max_len,
            },
            Action::SetField { field, value } => DpAction::SetField(field, value),
            Action::SetFieldMasked { field, value, mask } => {
                DpAction::SetFieldMasked(field, value, mask)
            }
            Action::PushVlan { tpid } => DpAction::PushVlan(tpid),
            Action::PopVlan => DpAction::PopVlan,
            Action::DecTtl => DpAction::DecTtl,
            Action::Group(g) => DpAction::Group(g),
            Action::SetQueue(q) => DpAction::SetQueue(q),
            // The queue a packet enters the pipeline with is queue 0.
            Action::PopQueue => DpAction::SetQueue(0),
            Action::Enqueue { port, queue } => DpAction::Enqueue(port, queue),
            Action::PushMpls { ethertype } => DpAction::PushMpls(ethertype),
            Action::PopMpls { ethertype } => DpAction::PopMpls(ethertype),
            Action::DecMplsTtl => DpAction::DecMplsTtl,
            Action::SetVlan { value, mask, push } => DpAction::SetVlan(value, mask, push),
            Action::Ct { ct, table } => DpAction::Ct(ct, table),
            Action::CtClear => DpAction::CtClear,
        }
    }
}

/// A compiled list of operations: what a megaflow stores.
#[derive(Debug)]
pub struct Translation {
    /// The operations, in order.
    pub ops: Box<[DpAction]>,
    /// Index of the last operation that emits (it may consume the packet instead of copying
    /// it); `usize::MAX` when nothing emits.
    pub last_emit: usize,
    /// The flows this translation went through, whose counters each packet updates.
    pub rules: Box<[Arc<Rule>]>,
    /// Tables visited (bitmap over 256 tables), for invalidation.
    pub tables: [u64; 4],
    /// True when a field was rewritten before a later table lookup.
    pub rewritten: bool,
    /// What to count when nothing emits: `TableMiss` or `FlowDrop`.
    pub drop_reason: DropReason,
    /// The table whose lookup found no flow, ending the walk (`None`: it ended on a flow).
    /// With `rules` (one per table that matched) it says what each table looked up.
    pub miss_table: Option<TableId>,
}

impl Translation {
    /// True when `table` was visited.
    pub fn visited(&self, table: TableId) -> bool {
        self.tables[table.0 as usize / 64] & (1 << (table.0 % 64)) != 0
    }

    /// Builds a translation from a list of operations (for group buckets and tests).
    pub fn from_ops(ops: Vec<DpAction>) -> Translation {
        let last_emit = ops.iter().rposition(DpAction::emits).unwrap_or(usize::MAX);
        Translation {
            ops: ops.into(),
            last_emit,
            rules: Box::new([]),
            tables: [0; 4],
            rewritten: false,
            drop_reason: DropReason::FlowDrop,
            miss_table: None,
        }
    }
}

/// What every packet does while the pipeline fails open: `NORMAL`, whatever its fields
/// (so one megaflow with an empty mask covers them all). Table 0 counts as visited, so the
/// translation is invalidated like any other when flows change.
#[cold]
fn fail_open() -> (Translation, FlowMask) {
    let mut t = Translation::from_ops(vec![DpAction::Normal]);
    t.tables[0] = 1;
    (t, FlowMask::ZERO)
}

/// Walks the tables of `pipeline` for `key`. Returns the translation and the mask of the
/// fields consulted.
pub fn translate(pipeline: &Pipeline, key: &FlowKey) -> (Translation, FlowMask) {
    translate_from(pipeline, TableId(0), key)
}

/// [`translate`] from table `table` on: a recirculated packet's lookup.
pub fn translate_from(
    pipeline: &Pipeline,
    table: TableId,
    key: &FlowKey,
) -> (Translation, FlowMask) {
    if pipeline.fail_open() {
        return fail_open();
    }
    let mut wc = FlowMask::ZERO;
    let mut work = *key;
    let mut ops = Vec::new();
    let mut rules = Vec::new();
    let mut tables = [0u64; 4];
    let mut rewritten = false;
    let mut unknown = false;
    let mut table = table;
    let mut drop_reason = DropReason::FlowDrop;
    let mut miss_table = None;
    loop {
        if unknown {
            ops.push(DpAction::Recirc(table));
            break;
        }
        tables[table.0 as usize / 64] |= 1 << (table.0 % 64);
        let Some(rule) = pipeline.table(table).lookup(&work, &mut wc) else {
            drop_reason = DropReason::TableMiss;
            miss_table = Some(table);
            break;
        };
        rules.push(Arc::clone(rule));
        // A packet-in from the table-miss flow is a miss, as OpenFlow 1.3 reports it; the
        // walk that found the flow decides, so a flow change racing the packet cannot.
        let reason = if rule.spec.priority == 0 && rule.spec.mask == FlowMask::ZERO {
            PacketInReason::NoMatch
        } else {
            PacketInReason::Action
        };
        let ins = &rule.spec.instructions;
        if let Some(m) = ins.meter {
            ops.push(DpAction::Meter(m));
        }
        for a in ins.apply.iter() {
            rewritten |= !matches!(
                a,
                Action::Output(_)
                    | Action::InPort
                    | Action::Flood
                    | Action::All
                    | Action::Normal
                    | Action::Controller { .. }
                    | Action::Group(_)
                    | Action::SetQueue(_)
                    | Action::PopQueue
                    | Action::Enqueue { .. }
            );
            unknown |= simulate(a, &mut work, &mut wc);
            ops.push(DpAction::from_action(a, table, rule.spec.cookie, reason));
        }
        if let Some((value, mask)) = ins.write_metadata {
            let old = work.get(Field::Metadata) as u64;
            work.set(Field::Metadata, ((old & !mask) | (value & mask)) as u128);
        }
        match ins.goto_table {
            Some(next) if next > table && next.is_valid() => table = next,
            _ => break,
        }
    }
    let last_emit = ops.iter().rposition(DpAction::emits).unwrap_or(usize::MAX);
    let t = Translation {
        ops: ops.into(),
        last_emit,
        rules: rules.into(),
        tables,
        rewritten,
        drop_reason,
        miss_table,
    };
    (t, wc)
}

/// Unwildcards all of `f` in `wc`.
fn consult(wc: &mut FlowMask, f: Field) {
    wc.set(f, f.full_mask());
}

/// What action `a` does to the working key `work`, unwildcarding in `wc` what the result
/// depends on. True when the packet fields of `work` are unknown afterwards (`pop_mpls`).
fn simulate(a: &Action, work: &mut FlowKey, wc: &mut FlowMask) -> bool {
    let eth = work.get(Field::EthType) as u16;
    match *a {
        Action::SetField { field, value } => {
            consult(wc, Field::EthType);
            if field.applies_to(eth) {
                work.set(field, value);
            }
        }
        Action::SetFieldMasked { field, value, mask } => {
            consult(wc, Field::EthType);
            if field.applies_to(eth) {
                work.set_masked(field, value, mask);
            }
        }
        Action::PushVlan { .. } => {
            let tci = work.get(Field::VlanTci);
            work.set(Field::VlanTci2, tci);
            work.set(Field::VlanTci, tci | VLAN_CFI as u128);
        }
        Action::PopVlan => {
            work.set(Field::VlanTci, work.get(Field::VlanTci2));
            work.set(Field::VlanTci2, 0);
        }
        Action::SetVlan { value, mask, push } => {
            // Whether the packet is tagged now follows from whether its tags were.
            wc.set_masked(Field::VlanTci, VLAN_CFI as u128, VLAN_CFI as u128);
            wc.set_masked(Field::VlanTci2, VLAN_CFI as u128, VLAN_CFI as u128);
            let tci = work.get(Field::VlanTci) as u16;
            if tci & VLAN_CFI != 0 || push {
                let tci = (tci & !mask) | (value & mask) | VLAN_CFI;
                work.set(Field::VlanTci, tci as u128);
            }
        }
        Action::DecTtl => {
            consult(wc, Field::EthType);
            consult(wc, Field::IpTtl);
            let ttl = work.get(Field::IpTtl);
            if (eth == ethertype::IPV4 || eth == ethertype::IPV6) && ttl > 1 {
                work.set(Field::IpTtl, ttl - 1);
            }
        }
        Action::PushMpls { ethertype } => {
            for f in [Field::EthType, Field::IpTos, Field::IpTtl, Field::Ipv4Src] {
                consult(wc, f);
            }
            mpls::push_key(work, ethertype);
        }
        Action::PopMpls { ethertype } => {
            consult(wc, Field::EthType);
            if ethertype::is_mpls(eth) {
                work.set(Field::EthType, ethertype as u128);
                return true;
            }
        }
        Action::DecMplsTtl => {
            consult(wc, Field::EthType);
            consult(wc, Field::MplsTtl);
            let ttl = work.get(Field::MplsTtl);
            if ethertype::is_mpls(eth) && ttl > 1 {
                work.set(Field::MplsTtl, ttl - 1);
            }
        }
        Action::Ct { .. } | Action::CtClear => crate::pipeline::ct::clear_key(work),
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::actions::Instructions;
    use crate::classifier::{FlowMod, FlowSpec};

    fn flow(priority: u16, field: Option<(Field, u128)>, cookie: u64) -> FlowMod {
        let (mut key, mut mask) = (FlowKey::ZERO, FlowMask::ZERO);
        if let Some((f, v)) = field {
            key.set(f, v);
            mask.set(f, u128::MAX);
        }
        FlowMod::Add {
            spec: FlowSpec {
                table: TableId(0),
                priority,
                key,
                mask,
                cookie,
                idle_timeout_s: 0,
                hard_timeout_s: 0,
                send_flow_removed: false,
                instructions: Instructions::actions(vec![Action::Controller { max_len: 64 }]),
            },
            check_overlap: false,
        }
    }

    fn reason(p: &Pipeline, key: &FlowKey) -> (PacketInReason, u64) {
        match translate(p, key).0.ops[..] {
            [DpAction::Controller { reason, cookie, .. }] => (reason, cookie),
            ref ops => panic!("{ops:?}"),
        }
    }

    #[test]
    fn the_table_miss_flow_sends_no_match_and_other_flows_action() {
        let mods = [
            flow(0, None, 1),
            flow(10, Some((Field::EthType, 0x0800)), 3),
        ];
        let (p, _) = Pipeline::new().apply(&mods, 0).unwrap();
        let (p0, _) = Pipeline::new()
            .apply(&[flow(0, Some((Field::EthType, 0x0806)), 2)], 0)
            .unwrap();
        let mut ip = FlowKey::ZERO;
        ip.set(Field::EthType, 0x0800);
        let mut arp = FlowKey::ZERO;
        arp.set(Field::EthType, 0x0806);
        let mut other = FlowKey::ZERO;
        other.set(Field::EthType, 0x86dd);
        assert_eq!(reason(&p, &ip), (PacketInReason::Action, 3));
        // Priority 0 with a match is not the table-miss flow.
        assert_eq!(reason(&p0, &arp), (PacketInReason::Action, 2));
        assert_eq!(reason(&p, &other), (PacketInReason::NoMatch, 1));
    }

    #[test]
    fn failing_open_sends_everything_to_normal_and_keeps_the_tables() {
        let (p, _) = Pipeline::new()
            .apply(&[flow(10, Some((Field::EthType, 0x0800)), 3)], 0)
            .unwrap();
        let mut ip = FlowKey::ZERO;
        ip.set(Field::EthType, 0x0800);
        let open = p.with_fail_open(true);
        assert!(open.version() > p.version());
        let (t, wc) = translate(&open, &ip);
        assert!(matches!(t.ops[..], [DpAction::Normal]), "{:?}", t.ops);
        assert_eq!(wc, FlowMask::ZERO);
        assert!(t.visited(TableId(0)));
        let closed = open.with_fail_open(false);
        assert_eq!(closed.rule_count(), 1);
        assert_eq!(reason(&closed, &ip), (PacketInReason::Action, 3));
    }
}
