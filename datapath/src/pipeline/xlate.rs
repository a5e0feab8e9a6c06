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
//! `write_actions` and `clear_actions` fill and empty the packet's action set (see
//! `pipeline::actset`), which runs when the walk ends on a flow (not after a table miss,
//! nor after a recirculation, whose packet starts with an empty set).
//!
//! A `ct` action clears the working key's connection-tracking fields, as Open vSwitch's
//! translation does: its results are seen only by the lookups of the packet it
//! recirculates (`ct(table=T)`, a new translation from table T of the tracked packet's key).
//!
//! Thread-safety: pure function over an immutable pipeline.

use std::sync::Arc;

use super::actset::ActionSet;
use crate::actions::{Action, mpls, multipath};
use crate::classifier::{Pipeline, Rule};
use crate::flow::{Field, FlowKey, FlowMask, Subfield, VLAN_CFI};
use crate::packet::ethertype;
use crate::stats::DropReason;
use crate::types::{PortNo, TableId};

pub use super::dp_action::{DpAction, PacketInReason};
use super::tracer::{NoTrace, Tracer};

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
    /// The userdata its packet-ins carry, which `DpAction::Controller` names by index.
    pub userdata: Box<[Arc<[u8]>]>,
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
            userdata: Box::new([]),
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

/// Deepest nesting of `resubmit` (Open vSwitch's `MAX_DEPTH`).
pub const MAX_RESUBMIT_DEPTH: u32 = 64;
/// Most `resubmit`s one packet's translation takes (Open vSwitch's `MAX_RESUBMITS`).
pub const MAX_RESUBMITS: u32 = 4096;

/// Operations past which a `resubmit` ends the walk, keeping what it compiled (as Open
/// vSwitch stops when resubmits yield over 64 KiB of datapath actions: 8,192 outputs). One
/// flow holds at most 4,096 actions; only `resubmit` multiplies them, and this bounds what a
/// fan-out of them costs the slow path and the megaflow cache.
pub const MAX_TRANSLATION_OPS: usize = 8192;

/// [`translate`] from table `table` on: a recirculated packet's lookup.
pub fn translate_from(
    pipeline: &Pipeline,
    table: TableId,
    key: &FlowKey,
) -> (Translation, FlowMask) {
    let (t, wc, NoTrace) = translate_traced(pipeline, table, key, NoTrace);
    (t, wc)
}

/// [`translate_from`] with `tracer` told every step of the walk (what `trace` runs; the
/// poll thread's walk is this with [`NoTrace`]). Returns the tracer with what it saw.
#[inline]
pub fn translate_traced<T: Tracer>(
    pipeline: &Pipeline,
    table: TableId,
    key: &FlowKey,
    tracer: T,
) -> (Translation, FlowMask, T) {
    if pipeline.fail_open() {
        let (t, wc) = fail_open();
        return (t, wc, tracer);
    }
    let mut w = Walk {
        tracer,
        pipeline,
        wc: FlowMask::ZERO,
        work: *key,
        ingress: key.get(Field::InPort),
        ops: Vec::new(),
        rules: Vec::new(),
        tables: [0; 4],
        rewritten: false,
        unknown: false,
        drop_reason: DropReason::FlowDrop,
        miss_table: None,
        depth: 0,
        resubmits: 0,
        stop: false,
        error: None,
        stack: Vec::new(),
        actset: ActionSet::default(),
        flow_userdata: Arc::new([]),
        userdata: Vec::new(),
    };
    w.tables_from(table, true);
    w.action_set();
    // Only a table's own second lookup sets `conj_id`; every packet's key holds 0.
    w.wc.set(Field::ConjId, 0);
    if let Some(reason) = w.error {
        w.ops.clear();
        w.drop_reason = reason;
        w.tracer.error(reason);
    }
    let last_emit = w
        .ops
        .iter()
        .rposition(DpAction::emits)
        .unwrap_or(usize::MAX);
    let t = Translation {
        ops: w.ops.into(),
        last_emit,
        rules: w.rules.into(),
        tables: w.tables,
        rewritten: w.rewritten,
        drop_reason: w.drop_reason,
        userdata: w.userdata.into(),
        miss_table: w.miss_table,
    };
    (t, w.wc, w.tracer)
}

/// One packet's walk through the tables.
struct Walk<'p, T: Tracer> {
    /// Told every step (nothing, on the poll thread).
    tracer: T,
    pipeline: &'p Pipeline,
    /// The fields consulted.
    wc: FlowMask,
    /// The packet's fields as the actions so far left them.
    work: FlowKey,
    /// The port the packet really came in on (`resubmit` may change `work`'s).
    ingress: u128,
    ops: Vec<DpAction>,
    rules: Vec<Arc<Rule>>,
    tables: [u64; 4],
    rewritten: bool,
    /// The packet fields of `work` are unknown (after `pop_mpls`).
    unknown: bool,
    drop_reason: DropReason,
    miss_table: Option<TableId>,
    /// Current `resubmit` nesting, and how many were taken.
    depth: u32,
    resubmits: u32,
    /// `exit` (or a recirculation) ended the walk.
    stop: bool,
    /// The walk failed: the packet is dropped for this reason.
    error: Option<DropReason>,
    /// The packet's stack (`push` / `pop`), values right-aligned.
    stack: Vec<u128>,
    /// The packet's action set.
    actset: ActionSet,
    /// The userdata of the flow whose actions run (`Instructions::userdata`).
    flow_userdata: Arc<[Arc<[u8]>]>,
    /// The translation's userdata.
    userdata: Vec<Arc<[u8]>>,
}

impl<T: Tracer> Walk<'_, T> {
    /// Appends an operation (and tells the tracer).
    #[inline(always)]
    fn push(&mut self, op: DpAction) {
        self.tracer.op(&op);
        self.ops.push(op);
    }

    /// Looks up `table` and runs the flow found, following its `goto_table`s. `top`: the
    /// packet's own walk, where a miss ends the translation as a table miss (a `resubmit`
    /// that misses does nothing).
    fn tables_from(&mut self, mut table: TableId, top: bool) {
        loop {
            if self.stop || self.error.is_some() {
                return;
            }
            if self.unknown {
                self.tracer.recirc(table);
                self.push(DpAction::Recirc(table));
                self.stop = true;
                return;
            }
            self.tables[table.0 as usize / 64] |= 1 << (table.0 % 64);
            let Some(rule) = self.pipeline.table(table).lookup(&self.work, &mut self.wc) else {
                self.tracer.table(table, None);
                if top {
                    self.drop_reason = DropReason::TableMiss;
                    self.miss_table = Some(table);
                }
                return;
            };
            let rule = Arc::clone(rule);
            self.tracer.table(table, Some(&rule));
            self.rules.push(Arc::clone(&rule));
            // A packet-in from the table-miss flow is a miss, as OpenFlow 1.3 reports it; the
            // walk that found the flow decides, so a flow change racing the packet cannot.
            let reason = if rule.spec.priority == 0 && rule.spec.mask == FlowMask::ZERO {
                PacketInReason::NoMatch
            } else {
                PacketInReason::Action
            };
            let ins = &rule.spec.instructions;
            if let Some(m) = ins.meter {
                self.push(DpAction::Meter(m));
                self.tracer.meter(m);
            }
            let outer = std::mem::replace(&mut self.flow_userdata, Arc::clone(&ins.userdata));
            self.actions(&ins.apply, table, rule.spec.cookie, reason);
            self.flow_userdata = outer;
            if self.stop || self.error.is_some() {
                return;
            }
            // Both may change `actset_output`, which later tables can match: a rewrite
            // (flow changes then invalidate by table, not by the ingress key).
            if ins.clear_actions {
                self.actset.clear(&mut self.work);
                self.rewritten = true;
            }
            if !ins.write_actions.is_empty() {
                self.actset.write(&ins.write_actions, &mut self.work);
                self.rewritten = true;
            }
            if let Some((value, mask)) = ins.write_metadata {
                let old = self.work.get(Field::Metadata) as u64;
                self.work
                    .set(Field::Metadata, ((old & !mask) | (value & mask)) as u128);
                self.tracer.write_metadata(value, mask);
            }
            match ins.goto_table {
                Some(next) if next > table && next.is_valid() => {
                    self.tracer.goto(next);
                    table = next;
                }
                _ => return,
            }
        }
    }

    /// Runs the action set when the walk ended on a flow (an `exit` included): its actions
    /// as the last flow's, whose table and cookie a packet-in reports.
    fn action_set(&mut self) {
        let ended_on_flow = self.miss_table.is_none() && self.error.is_none();
        if self.actset.is_empty()
            || !ended_on_flow
            || matches!(self.ops.last(), Some(DpAction::Recirc(_)))
        {
            return;
        }
        let list = self.actset.take_ordered();
        let Some(rule) = self.rules.last() else {
            return;
        };
        let (table, cookie) = (rule.spec.table, rule.spec.cookie);
        self.stop = false;
        self.actions(&list, table, cookie, PacketInReason::Action);
    }

    /// Runs one flow's action list.
    fn actions(&mut self, list: &[Action], table: TableId, cookie: u64, reason: PacketInReason) {
        let mut skip_to = 0;
        for (i, a) in list.iter().enumerate() {
            if self.stop || self.error.is_some() {
                return;
            }
            if i < skip_to {
                continue;
            }
            if let Action::Clone { len } = *a {
                self.tracer.action(a, &self.work);
                skip_to = (i + 1 + len as usize).min(list.len());
                self.clone(&list[i + 1..skip_to], table, cookie, reason);
                continue;
            }
            self.rewritten |= !matches!(
                a,
                Action::Output(_)
                    | Action::InPort
                    | Action::Flood
                    | Action::All
                    | Action::Normal
                    | Action::Controller { .. }
                    | Action::ControllerWith { .. }
                    | Action::Group(_)
                    | Action::SetQueue(_)
                    | Action::PopQueue
                    | Action::Enqueue { .. }
                    | Action::Exit
                    | Action::OutputField(_)
                    | Action::StackPush(_)
                    | Action::Clone { .. }
            );
            match *a {
                Action::Resubmit { in_port, table: t } => {
                    self.resubmit(in_port, t.unwrap_or(table))
                }
                Action::Exit => self.stop = true,
                Action::Move { src, dst } => {
                    let v = self.read(src);
                    self.write(dst, v, table, cookie, reason);
                }
                Action::StackPush(src) => {
                    let v = self.read(src);
                    self.stack.push(v);
                }
                Action::StackPop(dst) => {
                    if let Some(v) = self.stack.pop() {
                        self.write(dst, v, table, cookie, reason);
                    }
                }
                Action::OutputField(src) => {
                    let v = self.read(src);
                    match port_action(v) {
                        Some(a @ (Action::Output(_) | Action::InPort)) => {
                            self.output(&a, table, cookie, reason)
                        }
                        Some(a) => self.push(DpAction::from_action(&a, table, cookie, reason)),
                        None => {}
                    }
                }
                Action::Output(_) | Action::InPort => self.output(a, table, cookie, reason),
                Action::ControllerWith { userdata, .. } => {
                    let mut op = DpAction::from_action(a, table, cookie, reason);
                    if let DpAction::Controller { userdata: at, .. } = &mut op
                        && let Some(d) = self.flow_userdata.get(usize::from(userdata)).cloned()
                    {
                        *at = self.userdata_index(&d);
                    }
                    self.push(op);
                }
                Action::Ct {
                    mut ct,
                    table: t,
                    zone_src: Some(src),
                } => {
                    ct.zone = self.read(src) as u16;
                    let a = Action::Ct {
                        ct,
                        table: t,
                        zone_src: None,
                    };
                    self.unknown |= simulate(&a, &mut self.work, &mut self.wc);
                    self.ops
                        .push(DpAction::from_action(&a, table, cookie, reason));
                }
                Action::Multipath {
                    fields,
                    basis,
                    algorithm,
                    n_links,
                    dst,
                } => {
                    let hash = multipath::flow_hash(&self.work, &mut self.wc, fields, basis);
                    let link = multipath::choose(algorithm, hash, n_links);
                    self.write(dst, u128::from(link), table, cookie, reason);
                }
                _ => {
                    self.unknown |= simulate(a, &mut self.work, &mut self.wc);
                    self.push(DpAction::from_action(a, table, cookie, reason));
                }
            }
            if !matches!(a, Action::Resubmit { .. }) {
                self.tracer.action(a, &self.work);
            }
        }
    }

    /// `clone(...)`: runs `inner`, then writes back every field it changed (the actions
    /// allowed inside change fields only, see [`Action::Clone`]), consulting them: the
    /// values written back are the packet's.
    fn clone(&mut self, inner: &[Action], table: TableId, cookie: u64, r: PacketInReason) {
        let saved = self.work;
        self.actions(inner, table, cookie, r);
        let eth = saved.get(Field::EthType) as u16;
        let overlays = Field::OVERLAYS.iter().map(|(f, _)| *f);
        for f in Field::ALL.into_iter().chain(overlays) {
            if !f.applies_to(eth) || hidden_by_overlay(f, eth) || f.is_read_only() {
                continue;
            }
            let old = saved.get(f);
            if self.work.get(f) != old {
                // The value written back is the packet's own: the megaflow covers it.
                consult(&mut self.wc, f);
                let a = Action::SetField {
                    field: f,
                    value: old,
                };
                self.push(DpAction::from_action(&a, table, cookie, r));
            }
        }
        self.work = saved;
    }

    /// Where the translation keeps userdata `d` (once, however many packet-ins carry it).
    fn userdata_index(&mut self, d: &Arc<[u8]>) -> u16 {
        let i = match self.userdata.iter().position(|u| Arc::ptr_eq(u, d)) {
            Some(i) => i,
            None => {
                self.userdata.push(Arc::clone(d));
                self.userdata.len() - 1
            }
        };
        // At most one per operation, and operations are bounded far below this.
        u16::try_from(i).unwrap_or(super::dp_action::NO_USERDATA)
    }

    /// The bits of a subfield, consulted (`actset_output` unset reads as OpenFlow's
    /// OFPP_UNSET, as Open vSwitch has it).
    fn read(&mut self, s: Subfield) -> u128 {
        s.unwildcard(&mut self.wc);
        if s.field == Field::ActsetOutput && self.work.get(s.field) == 0 {
            return (0xffff_fff7 >> s.shift) & (s.mask() >> s.shift);
        }
        s.read(&self.work)
    }

    /// Writes `v` into a subfield: a masked set-field.
    fn write(&mut self, dst: Subfield, v: u128, table: TableId, cookie: u64, r: PacketInReason) {
        let ones = dst.mask() >> dst.shift;
        let a = Action::SetFieldMasked {
            field: dst.field,
            value: (v & ones) << dst.shift,
            mask: dst.mask(),
        };
        self.unknown |= simulate(&a, &mut self.work, &mut self.wc);
        self.push(DpAction::from_action(&a, table, cookie, r));
    }

    /// An output, to the ingress port as `resubmit` may have changed it: while it differs
    /// from the packet's own, output to it is skipped and output to the packet's own port
    /// is allowed (Open vSwitch compares with the flow's `in_port`).
    fn output(&mut self, a: &Action, table: TableId, cookie: u64, r: PacketInReason) {
        let now = self.work.get(Field::InPort);
        if now == self.ingress {
            self.push(DpAction::from_action(a, table, cookie, r));
            return;
        }
        consult(&mut self.wc, Field::InPort);
        let port = match *a {
            Action::Output(p) => p,
            Action::InPort => PortNo(now as u32),
            _ => return,
        };
        if u128::from(port.0) == now && matches!(a, Action::Output(_)) {
            return;
        }
        if u128::from(port.0) == self.ingress {
            self.push(DpAction::InPort);
        } else {
            self.push(DpAction::Output(port));
        }
    }

    /// `resubmit`: a lookup in `table` with `in_port` in place of the packet's, bounded.
    fn resubmit(&mut self, in_port: Option<PortNo>, table: TableId) {
        if self.depth >= MAX_RESUBMIT_DEPTH || self.resubmits >= MAX_RESUBMITS {
            self.error = Some(DropReason::ResubmitDepth);
            return;
        }
        if !table.is_valid() {
            return;
        }
        if self.ops.len() > MAX_TRANSLATION_OPS {
            self.stop = true;
            return;
        }
        self.depth += 1;
        self.resubmits += 1;
        self.tracer.resubmit(in_port, table);
        let saved = self.work.get(Field::InPort);
        if let Some(p) = in_port
            && p != PortNo::IN_PORT
        {
            self.work.set(Field::InPort, u128::from(p.0));
        }
        self.tables_from(table, false);
        self.work.set(Field::InPort, saved);
        self.depth -= 1;
        self.tracer.resubmit_done();
    }
}

/// True for a field whose bits, in packets of ethertype `eth`, hold an overlay's value
/// (an MPLS packet's label stack entry lives in `Ipv4Src`).
fn hidden_by_overlay(f: Field, eth: u16) -> bool {
    Field::OVERLAYS.iter().any(|&(o, _)| {
        if o == f || !o.applies_to(eth) {
            return false;
        }
        let (mut a, mut b) = (FlowKey::ZERO, FlowKey::ZERO);
        a.set(o, o.full_mask());
        b.set(f, f.full_mask());
        (0..crate::flow::KEY_WORDS).any(|i| a.w[i] & b.w[i] != 0)
    })
}

/// The action a port number read from a field means (Open vSwitch's 16-bit port space).
fn port_action(v: u128) -> Option<Action> {
    Some(match v {
        0xfff8 => Action::InPort,
        0xfffa => Action::Normal,
        0xfffb => Action::Flood,
        0xfffc => Action::All,
        0xfffd => Action::Controller { max_len: u16::MAX },
        0xfffe => Action::Output(PortNo::LOCAL),
        0xfff9 | 0xffff => return None,
        n if n <= u128::from(PortNo::MAX.0) => Action::Output(PortNo(n as u32)),
        _ => return None,
    })
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
