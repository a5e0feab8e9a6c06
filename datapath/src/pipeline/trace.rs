//! What the switch would do with one packet, step by step: Open vSwitch's `ofproto/trace`.
//!
//! What: [`Datapath::trace`] runs the slow path's own walk ([`translate_traced`], the code
//! a poll thread runs on a miss) over the live snapshot with a recorder as its
//! [`Tracer`], then follows the translation's operations as the executor would, asking
//! the executor's own questions: which group buckets ([`buckets_of`]), what the MAC table
//! holds for `normal` (a read), what a meter would decide ([`Meter::peek`]), what state the
//! tracker would give a `ct` ([`Conntrack::peek`]), which ports a flood reaches, what a
//! tunnel port puts around the packet. Rewrites run on a copy of the frame with the
//! executor's rewrite functions. Nothing is counted, learned, cached, charged or committed.
//! A `ct(table=T)` (or a lookup after `pop_mpls`) becomes a later pass, as in OVS, each with
//! its own megaflow and `Datapath actions:` line.
//!
//! Thread-safety: reads the snapshot and the shared tables lock-free, from any thread.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Datapath;
use super::ct::RECIRC_QUEUE;
use super::dp_action::DpAction;
use super::execute::MAX_RECIRC_DEPTH;
use super::pmd::MAX_RECIRC_PASSES;
use super::snapshot::Snapshot;
use super::trace_text as text;
use super::tracer::Tracer;
use super::xlate::{Translation, translate_traced};
use crate::actions::{Action, mpls, rewrite};
use crate::classifier::Rule;
use crate::flow::{Field, FlowKey, FlowMask, Layout, PKT_WORDS, extract};
use crate::packet::PacketBuf;
use crate::stats::DropReason;
use crate::types::{PortNo, TableId};

/// Most passes (the packet's, then each recirculation) one trace follows: every pass the
/// poll loop would run (its recirculation queue holds `RECIRC_QUEUE` packets per pass, for
/// `MAX_RECIRC_PASSES` passes).
const MAX_PASSES: usize = 1 + MAX_RECIRC_PASSES * RECIRC_QUEUE;

/// What a line of a trace is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A table looked up: the flow found, or `No match.`.
    Table,
    /// An action run (an OpenFlow action, or a bucket's datapath operation).
    Action,
    /// What an action came to (` -> `: the bucket chosen, the MAC entry used, ...).
    Detail,
    /// Why the packet (or a copy) went nowhere (` >> `).
    Warn,
}

/// One line of a trace, `depth` levels in.
#[derive(Clone, Debug)]
pub struct TraceNode {
    /// Nesting (4 spaces each, as Open vSwitch indents).
    pub depth: u8,
    /// What it is.
    pub kind: NodeKind,
    /// The text.
    pub text: String,
    /// For a table line, the flow found.
    pub rule: Option<Arc<Rule>>,
}

/// One pass of the packet through the tables: the ingress one, or a recirculation.
#[derive(Clone, Debug)]
pub struct Pass {
    /// `None` for the ingress pass; else what resumed it (`recirc(0x2) - resume conntrack
    /// with ct_state=+trk+new`).
    pub header: Option<String>,
    /// The packet's key at the start of the pass.
    pub flow: FlowKey,
    /// The lines.
    pub nodes: Vec<TraceNode>,
    /// The key as the pass left it.
    pub final_flow: FlowKey,
    /// The megaflow the slow path would install: its key (masked) and mask.
    pub megaflow: (FlowKey, FlowMask),
    /// The datapath actions, as Open vSwitch writes them; empty: `drop`.
    pub dp_actions: Vec<String>,
}

impl Pass {
    /// `Datapath actions: ...`'s text: the actions joined with `,`, or `drop`.
    pub fn dp_actions_text(&self) -> String {
        if self.dp_actions.is_empty() {
            "drop".into()
        } else {
            self.dp_actions.join(",")
        }
    }
}

/// Where a copy of the packet ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Output {
    /// Sent out of this port.
    Port(PortNo),
    /// Sent to the controller.
    Controller,
}

/// A whole trace.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The passes, in the order they run.
    pub passes: Vec<Pass>,
    /// Every copy sent somewhere, in order.
    pub outputs: Vec<Output>,
    /// Why copies (or the packet) were dropped; what a packet nothing sent counts.
    pub drops: Vec<DropReason>,
}

impl Trace {
    /// The last pass's `Datapath actions:` text (what a script reads).
    pub fn dp_actions(&self) -> String {
        self.passes
            .last()
            .map_or_else(|| "drop".into(), Pass::dp_actions_text)
    }

    /// The whole trace as Open vSwitch prints it.
    pub fn render(&self, bridge: &str) -> String {
        let mut out = String::new();
        for p in &self.passes {
            if let Some(h) = &p.header {
                out.push_str(&format!(
                    "\n\n{}\n{h}\n{}\n\n",
                    "=".repeat(79),
                    "=".repeat(79)
                ));
            }
            out.push_str(&format!("Flow: {}\n", text::key(&p.flow)));
            let title = format!("bridge(\"{bridge}\")");
            out.push_str(&format!("\n{title}\n{}\n", "-".repeat(title.len())));
            for n in &p.nodes {
                out.push_str(&render_node(n));
                out.push('\n');
            }
            let fin = if p.final_flow == p.flow {
                "unchanged".into()
            } else {
                text::key(&p.final_flow)
            };
            out.push_str(&format!("\nFinal flow: {fin}\n"));
            let (k, m) = &p.megaflow;
            out.push_str(&format!("Megaflow: {}\n", text::masked(k, m)));
            out.push_str(&format!("Datapath actions: {}\n", p.dp_actions_text()));
        }
        out
    }
}

/// A key as Open vSwitch writes a flow (every field that is not zero).
pub fn key_text(k: &FlowKey) -> String {
    text::key(k)
}

/// A megaflow as Open vSwitch writes it: the key under the mask.
pub fn masked_text(k: &FlowKey, m: &FlowMask) -> String {
    text::masked(k, m)
}

/// One line, indented and marked as Open vSwitch marks it.
pub fn render_node(n: &TraceNode) -> String {
    let pad = " ".repeat(n.depth as usize * 4);
    match n.kind {
        NodeKind::Table | NodeKind::Action => format!("{pad}{}", n.text),
        NodeKind::Detail => format!("{pad} -> {}", n.text),
        NodeKind::Warn => format!("{pad} >> {}", n.text),
    }
}

/// A rule's line: `table. match, priority P, cookie C`.
fn rule_line(table: TableId, r: &Rule) -> String {
    let m = text::masked(&r.spec.key, &r.spec.mask);
    let m = if r.spec.mask == FlowMask::ZERO {
        String::new()
    } else {
        format!("{m}, ")
    };
    let mut s = format!("{:>2}. {m}priority {}", table.0, r.spec.priority);
    if r.spec.cookie != 0 {
        s.push_str(&format!(", cookie {:#x}", r.spec.cookie));
    }
    s
}

/// A line of the recorder: text, or the place of a translation operation (what the
/// executor's part of the trace fills in).
enum Rec {
    Line(TraceNode),
    Op(usize, u8),
}

/// The [`Tracer`] of a trace: records the walk's steps as lines.
/// The walk tells an action after the operations it appended: its line goes before them
/// (at `mark`, where the previous step's lines end).
struct Recorder {
    recs: Vec<Rec>,
    /// Depth of the current table's line.
    depth: u8,
    ops: usize,
    mark: usize,
}

impl Recorder {
    fn line(&mut self, depth: u8, kind: NodeKind, text: String) {
        self.put(TraceNode {
            depth,
            kind,
            text,
            rule: None,
        });
    }

    fn put(&mut self, n: TraceNode) {
        self.recs.insert(self.mark, Rec::Line(n));
        self.mark = self.recs.len();
    }
}

impl Tracer for Recorder {
    fn table(&mut self, table: TableId, rule: Option<&Arc<Rule>>) {
        let (text, rule) = match rule {
            Some(r) => (rule_line(table, r), Some(Arc::clone(r))),
            None => (format!("{:>2}. No match.", table.0), None),
        };
        self.put(TraceNode {
            depth: self.depth,
            kind: NodeKind::Table,
            text,
            rule,
        });
    }

    fn action(&mut self, a: &Action, work: &FlowKey) {
        let d = self.depth + 1;
        self.line(d, NodeKind::Action, text::action(a, work));
    }

    fn resubmit(&mut self, in_port: Option<PortNo>, table: TableId) {
        let a = Action::Resubmit {
            in_port,
            table: Some(table),
        };
        let d = self.depth + 1;
        self.line(d, NodeKind::Action, text::action(&a, &FlowKey::ZERO));
        self.depth += 2;
    }

    fn resubmit_done(&mut self) {
        self.depth -= 2;
        self.mark = self.recs.len();
    }

    fn meter(&mut self, id: crate::types::MeterId) {
        let d = self.depth + 1;
        self.line(d, NodeKind::Action, format!("meter:{}", id.0));
    }

    fn goto(&mut self, table: TableId) {
        let d = self.depth + 1;
        self.line(d, NodeKind::Action, format!("goto_table:{}", table.0));
    }

    fn write_metadata(&mut self, value: u64, mask: u64) {
        let d = self.depth + 1;
        self.line(
            d,
            NodeKind::Action,
            format!("write_metadata:{value:#x}/{mask:#x}"),
        );
    }

    fn recirc(&mut self, table: TableId) {
        let d = self.depth + 1;
        let t = format!(
            "the popped packet's headers are read again: lookup from table {} continues in a recirculation",
            table.0
        );
        self.line(d, NodeKind::Detail, t);
    }

    fn op(&mut self, _op: &DpAction) {
        self.recs.push(Rec::Op(self.ops, self.depth + 1));
        self.ops += 1;
    }

    fn error(&mut self, reason: DropReason) {
        let t = format!(
            "translation failed ({}): the packet is dropped",
            reason.name()
        );
        self.line(0, NodeKind::Warn, t);
    }
}

/// The packet as the executor's part of a trace carries it.
#[derive(Clone)]
pub(super) struct Pkt {
    pub(super) frame: Vec<u8>,
    pub(super) key: FlowKey,
    pub(super) lay: Layout,
}

/// A pass waiting its turn.
pub(super) struct Pending {
    pub(super) header: String,
    pub(super) pkt: Pkt,
    pub(super) table: TableId,
    pub(super) recirc_depth: u8,
    /// Its `ct(table=T)` recirculation pass (the ingress pass is 0).
    pub(super) ct_pass: usize,
}

/// Running a translation's operations for a trace: what the executor would do.
pub(super) struct Dry<'a> {
    pub(super) snap: &'a Snapshot,
    pub(super) dp: &'a Datapath,
    pub(super) in_slot: usize,
    pub(super) in_port: PortNo,
    pub(super) now_ns: u64,
    /// Lines for each top-level operation, by index.
    pub(super) lines: Vec<TraceNode>,
    pub(super) acts: Vec<String>,
    pub(super) outputs: Vec<Output>,
    pub(super) drops: Vec<DropReason>,
    pub(super) queue: VecDeque<Pending>,
    /// The `ct` recirculation pass running.
    pub(super) ct_pass: usize,
    /// Copies queued for each `ct` recirculation pass (the poll loop's queue is bounded).
    pub(super) queued: [usize; MAX_RECIRC_PASSES + 1],
}

impl Datapath {
    /// Traces `frame` arriving on `in_port` (which need not be a port of the bridge: a
    /// frame from nowhere, as a packet-out), against the current snapshot. `meta`: pipeline
    /// fields the packet starts with (`tun_id`, `tun_src`, `tun_dst`, as a tunnel port sets
    /// them), or `None`. Changes nothing: no counter, cache, MAC entry, meter bucket or
    /// connection.
    pub fn trace(
        &self,
        in_port: PortNo,
        frame: &[u8],
        meta: Option<&FlowKey>,
    ) -> Result<Trace, DropReason> {
        let snap = self.snapshot();
        let mut key = FlowKey::ZERO;
        let lay = extract(frame, in_port, &mut key)?;
        if let Some(m) = meta {
            for f in [Field::TunId, Field::TunSrc, Field::TunDst] {
                key.set(f, m.get(f));
            }
        }
        let mut dry = Dry {
            snap: &snap,
            dp: self,
            in_slot: snap.slot(in_port).unwrap_or(usize::MAX),
            in_port,
            now_ns: self.now_ns(),
            lines: Vec::new(),
            acts: Vec::new(),
            outputs: Vec::new(),
            drops: Vec::new(),
            queue: VecDeque::new(),
            ct_pass: 0,
            queued: [0; MAX_RECIRC_PASSES + 1],
        };
        let pkt = Pkt {
            frame: frame.to_vec(),
            key,
            lay,
        };
        let mut passes = vec![dry.pass(None, pkt, TableId(0), 0)];
        while let Some(p) = dry.queue.pop_front() {
            if passes.len() >= MAX_PASSES {
                break;
            }
            dry.ct_pass = p.ct_pass;
            passes.push(dry.pass(Some(p.header), p.pkt, p.table, p.recirc_depth));
        }
        Ok(Trace {
            passes,
            outputs: dry.outputs,
            drops: dry.drops,
        })
    }
}

impl Dry<'_> {
    /// One pass: the walk from `table`, then its operations.
    fn pass(&mut self, header: Option<String>, pkt: Pkt, table: TableId, rd: u8) -> Pass {
        let rec = Recorder {
            recs: Vec::new(),
            depth: 0,
            ops: 0,
            mark: 0,
        };
        let flow = pkt.key;
        let (t, mut wc, rec) = translate_traced(&self.snap.pipeline, table, &flow, rec);
        if flow.get(Field::RecircId) == 0 && header.is_none() {
            wc.w[PKT_WORDS..].fill(0);
        } else {
            wc.set(Field::RecircId, Field::RecircId.full_mask());
        }
        self.acts.clear();
        let (per_op, final_key) = self.run_top(&t, pkt, rd);
        let mut nodes = Vec::new();
        let mut placed = vec![false; per_op.len()];
        for r in rec.recs {
            match r {
                Rec::Line(n) => nodes.push(n),
                Rec::Op(i, d) => {
                    if let Some(lines) = per_op.get(i) {
                        placed[i] = true;
                        nodes.extend(lines.iter().cloned().map(|mut n| {
                            n.depth += d;
                            n
                        }));
                    }
                }
            }
        }
        // Operations the walk did not announce (a failed walk's, the fail-open `normal`).
        for (i, lines) in per_op.iter().enumerate() {
            if !placed[i] {
                nodes.extend(lines.iter().cloned().map(|mut n| {
                    n.depth += 1;
                    n
                }));
            }
        }
        Pass {
            header,
            flow,
            nodes,
            final_flow: final_key,
            megaflow: (flow.masked(&wc), wc),
            dp_actions: std::mem::take(&mut self.acts),
        }
    }

    /// Runs `t`'s operations over `pkt`; the lines of each operation, and the key the
    /// packet ends with. What nothing sent is dropped for the translation's reason.
    fn run_top(&mut self, t: &Translation, pkt: Pkt, rd: u8) -> (Vec<Vec<TraceNode>>, FlowKey) {
        let mut per_op = Vec::with_capacity(t.ops.len());
        let mut p = Some(pkt);
        let mut sent = false;
        let mut last_key = p.as_ref().map_or(FlowKey::ZERO, |p| p.key);
        for (i, op) in t.ops.iter().enumerate() {
            self.lines.clear();
            if let Some(pk) = p.as_mut() {
                sent |= self.op(op, pk, 0, rd, i == t.last_emit);
                last_key = pk.key;
            }
            if self.lines.last().is_some_and(|n| n.text == GONE) {
                self.lines.pop();
                p = None;
            }
            per_op.push(std::mem::take(&mut self.lines));
        }
        if !sent && p.is_some() {
            self.drops.push(t.drop_reason);
            let why = match t.miss_table {
                Some(table) => {
                    format!("no flow matched in table {} (table miss): dropped", table.0)
                }
                None => format!(
                    "nothing sent the packet anywhere: dropped ({})",
                    t.drop_reason.name()
                ),
            };
            let n = TraceNode {
                depth: 0,
                kind: NodeKind::Warn,
                text: why,
                rule: None,
            };
            per_op.push(vec![n]);
        }
        (per_op, last_key)
    }

    pub(super) fn line(&mut self, depth: u8, kind: NodeKind, text: String) {
        self.lines.push(TraceNode {
            depth,
            kind,
            text,
            rule: None,
        });
    }

    /// The packet (this copy) is dropped for `reason`: no later operation sees it.
    pub(super) fn drop_pkt(&mut self, depth: u8, reason: DropReason, why: &str) {
        self.drops.push(reason);
        self.line(
            depth,
            NodeKind::Warn,
            format!("{why}: dropped ({})", reason.name()),
        );
        self.line(depth, NodeKind::Warn, GONE.into());
    }

    /// One operation over `p`, lines at `d`; true when it sent the packet somewhere.
    pub(super) fn op(&mut self, op: &DpAction, p: &mut Pkt, d: u8, rd: u8, _take: bool) -> bool {
        match *op {
            DpAction::Output(port) => match self.snap.slot(port) {
                Some(s) if s != self.in_slot => self.out(s, p, d),
                Some(_) => {
                    let t = format!("skipping output to input port {port}");
                    self.line(d, NodeKind::Warn, t);
                    false
                }
                None => {
                    self.drop_pkt(d, DropReason::NoSuchPort, &format!("no port {port}"));
                    false
                }
            },
            DpAction::InPort => {
                if self.in_slot < self.snap.ports.len() {
                    self.out(self.in_slot, p, d)
                } else {
                    self.drop_pkt(d, DropReason::NoSuchPort, "no ingress port");
                    false
                }
            }
            DpAction::Flood | DpAction::All => {
                let all = matches!(op, DpAction::All);
                let n = self.snap.ports.len();
                let ports: Vec<usize> = (0..n)
                    .filter(|&s| s != self.in_slot && (all || self.snap.ports[s].flood))
                    .collect();
                if ports.is_empty() {
                    self.line(d, NodeKind::Detail, "no port to flood to".into());
                }
                let mut sent = false;
                for s in ports {
                    sent |= self.out(s, p, d);
                }
                sent
            }
            DpAction::Normal => self.normal(p, d),
            DpAction::Controller { reason, .. } => {
                self.outputs.push(Output::Controller);
                self.acts.push("userspace(controller)".into());
                let t = format!("packet-in to the controller (reason {reason:?})");
                self.line(d, NodeKind::Detail, t);
                true
            }
            DpAction::Meter(id) => {
                self.meter(id, p, d);
                false
            }
            DpAction::Group(id) => self.group(id, p, d, rd, 0),
            DpAction::Enqueue(port, queue) => {
                let slot = if port == PortNo::IN_PORT {
                    Some(self.in_slot).filter(|&s| s < self.snap.ports.len())
                } else {
                    match self.snap.slot(port) {
                        Some(s) if s == self.in_slot => return false,
                        s => s,
                    }
                };
                match slot {
                    Some(s) => {
                        self.acts.push(format!("set_queue({queue})"));
                        self.out(s, p, d)
                    }
                    None => {
                        self.drop_pkt(d, DropReason::NoSuchPort, &format!("no port {port}"));
                        false
                    }
                }
            }
            DpAction::Recirc(table) => {
                if rd >= MAX_RECIRC_DEPTH {
                    self.drop_pkt(d, DropReason::RecircDepth, "too many recirculations");
                    return false;
                }
                self.acts.push(format!("recirc(table={})", table.0));
                let header = format!("recirc(table={}) - the packet after pop_mpls", table.0);
                self.line(d, NodeKind::Detail, header.clone());
                self.queue.push_back(Pending {
                    header,
                    pkt: p.clone(),
                    table,
                    recirc_depth: rd + 1,
                    ct_pass: self.ct_pass,
                });
                true
            }
            DpAction::Ct(ref act, table) => self.ct(act, table, p, d, rd),
            DpAction::CtClear => {
                super::ct::clear_key(&mut p.key);
                self.acts.push("ct_clear".into());
                false
            }
            _ => {
                self.rewrite(op, p, d);
                false
            }
        }
    }

    /// A rewrite, with the executor's functions, on the copy of the frame.
    fn rewrite(&mut self, op: &DpAction, p: &mut Pkt, d: u8) {
        let Some(mut b) = PacketBuf::from_frame(&p.frame) else {
            return;
        };
        let (key, lay) = (&mut p.key, &mut p.lay);
        let r = match *op {
            DpAction::SetField(field, value) => {
                rewrite::set_field(&mut b, key, lay, field, value);
                Ok(())
            }
            DpAction::SetFieldMasked(field, value, mask) => {
                let v = (key.get(field) & !mask) | (value & mask);
                rewrite::set_field(&mut b, key, lay, field, v);
                Ok(())
            }
            DpAction::PushVlan(tpid) => rewrite::push_vlan(&mut b, key, lay, tpid),
            DpAction::PopVlan => {
                rewrite::pop_vlan(&mut b, key, lay);
                Ok(())
            }
            DpAction::DecTtl => rewrite::dec_ttl(&mut b, key, lay),
            DpAction::PushMpls(t) => mpls::push_mpls(&mut b, key, lay, t),
            DpAction::PopMpls(t) => mpls::pop_mpls(&mut b, key, lay, t),
            DpAction::DecMplsTtl => mpls::dec_mpls_ttl(&mut b, key, lay),
            DpAction::SetVlan(value, mask, push) => {
                rewrite::set_vlan(&mut b, key, lay, value, mask, push)
            }
            _ => Ok(()),
        };
        p.frame = b.data().to_vec();
        match r {
            Ok(()) => {
                if let Some(s) = text::dp_rewrite(op) {
                    self.acts.push(s);
                }
            }
            Err(reason) => self.drop_pkt(d, reason, "the rewrite failed"),
        }
    }

    /// A copy of `p` out of the port in `slot`.
    pub(super) fn out(&mut self, slot: usize, p: &Pkt, d: u8) -> bool {
        let e = &self.snap.ports[slot];
        self.outputs.push(Output::Port(e.no));
        self.acts.push(e.no.to_string());
        let name = e.port.name();
        self.line(
            d,
            NodeKind::Detail,
            format!("output to port {} ({name})", e.no),
        );
        if let Some(t) = e.port.tunnel() {
            let dst = t
                .remote
                .unwrap_or_else(|| std::net::Ipv4Addr::from(p.key.get(Field::TunDst) as u32));
            let id = t.key.unwrap_or(p.key.get(Field::TunId) as u32);
            let outer = match t.kind {
                "vxlan" => format!(
                    "eth()/ipv4(src={},dst={dst},proto=17)/udp(dst={})/vxlan(vni={id:#x})",
                    t.local, t.dst_port
                ),
                kind => format!(
                    "eth()/ipv4(src={},dst={dst},proto=47)/{kind}(key={id:#x})",
                    t.local
                ),
            };
            self.line(
                d + 1,
                NodeKind::Detail,
                format!("tunnel encapsulation: {outer}"),
            );
        }
        true
    }
}

/// Marks "this copy is gone" among an operation's lines (removed before they are shown).
pub(super) const GONE: &str = "\u{0}gone";
