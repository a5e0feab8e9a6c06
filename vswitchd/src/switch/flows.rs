//! Flows on a draft datapath: API messages to flow mods, selection, and what an add, modify
//! or delete did to the daemon's canonical messages (recorded in an [`Overlay`]).

use std::sync::Arc;

use datapath::classifier::{ChangeSet, FlowMod, FlowSpec, RemovedReason, Selector};
use datapath::types::{GroupId, TableId};
use proto::flow_text;
use proto::v1::{self, port_ref, stream_message_response as smr};

use super::model::{Bridge, IdMap, Overlay, rule_ident};
use crate::convert::{self, DpMatch, PortNames, flow_ident};
use crate::error::ApiError;

pub(super) fn removed_reason(r: RemovedReason) -> v1::FlowRemovedReason {
    match r {
        RemovedReason::IdleTimeout => v1::FlowRemovedReason::IdleTimeout,
        RemovedReason::HardTimeout => v1::FlowRemovedReason::HardTimeout,
        RemovedReason::Delete | RemovedReason::Replaced => v1::FlowRemovedReason::Delete,
    }
}

/// Replaces port names in instructions by numbers, so stored flows survive renames.
pub(super) fn resolve_names(ins: &mut [v1::Instruction], names: &dyn PortNames) {
    for i in ins {
        if let Some(v1::instruction::Instruction::ApplyActions(a)) = &mut i.instruction {
            resolve_action_names(&mut a.actions, names);
        }
    }
}

pub(super) fn resolve_action_names(actions: &mut [v1::Action], names: &dyn PortNames) {
    for a in actions {
        if let Some(v1::action::Action::Output(o)) = &mut a.action
            && let Some(v1::PortRef {
                port: Some(port_ref::Port::Name(n)),
            }) = &o.port
            && let Some(no) = names.number(n)
        {
            o.port = Some(v1::PortRef {
                port: Some(port_ref::Port::Number(no)),
            });
        }
    }
}

pub(super) fn table_of(t: Option<u32>, field: &str) -> Result<Option<TableId>, ApiError> {
    match t {
        None | Some(255) => Ok(None),
        Some(t) if t <= TableId::MAX.0 as u32 => Ok(Some(TableId(t as u8))),
        Some(t) => Err(ApiError::invalid(
            field,
            format!("table {t} out of range 0..=253 (255: all)"),
        )),
    }
}

pub(super) fn priority_of(p: u32, field: &str) -> Result<u16, ApiError> {
    u16::try_from(p)
        .map_err(|_| ApiError::invalid(field, format!("priority {p} out of range 0..=65535")))
}

/// Converts a flow message into a datapath add; returns it with the canonical message.
pub(super) fn prepare_flow(
    f: &v1::Flow,
    names: &dyn PortNames,
    check_overlap: bool,
) -> Result<(FlowMod, v1::Flow), ApiError> {
    let table = table_of(Some(f.table_id), "flow.table_id")?
        .ok_or_else(|| ApiError::invalid("flow.table_id", "255 (all tables) is not a table"))?;
    let priority = priority_of(f.priority, "flow.priority")?;
    let idle = u16::try_from(f.idle_timeout)
        .map_err(|_| ApiError::invalid("flow.idle_timeout", "must be 0..=65535 seconds"))?;
    let hard = u16::try_from(f.hard_timeout)
        .map_err(|_| ApiError::invalid("flow.hard_timeout", "must be 0..=65535 seconds"))?;
    if f.importance > u32::from(u16::MAX) {
        return Err(ApiError::invalid("flow.importance", "must be 0..=65535"));
    }
    let empty = v1::Match::default();
    let DpMatch {
        canonical,
        key,
        mask,
    } = convert::convert_match(f.r#match.as_ref().unwrap_or(&empty), names)
        .map_err(|e| e.under("flow"))?;
    let instructions = convert::convert_instructions(&f.instructions, names, &canonical)
        .map_err(|e| e.under("flow"))?;
    let flags = f.flags.unwrap_or_default();
    let mut ins_msg = f.instructions.clone();
    resolve_names(&mut ins_msg, names);
    let canonical_flow = v1::Flow {
        table_id: f.table_id,
        priority: f.priority,
        cookie: f.cookie,
        idle_timeout: f.idle_timeout,
        hard_timeout: f.hard_timeout,
        flags: Some(v1::FlowFlags {
            send_flow_rem: flags.send_flow_rem,
            check_overlap: false,
            reset_counts: false,
        }),
        r#match: Some(canonical),
        instructions: ins_msg,
        stats: None,
        importance: f.importance,
    };
    let spec = FlowSpec {
        table,
        priority,
        key,
        mask,
        cookie: f.cookie,
        idle_timeout_s: idle,
        hard_timeout_s: hard,
        send_flow_removed: flags.send_flow_rem,
        instructions,
    };
    Ok((
        FlowMod::Add {
            spec,
            check_overlap: check_overlap || flags.check_overlap,
        },
        canonical_flow,
    ))
}

/// Stages table 0's `priority=0,actions=NORMAL` on a new bridge's draft: the learning
/// switch a new Open vSwitch bridge in standalone mode is.
pub(super) fn stage_normal_flow(
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
) -> Result<(), ApiError> {
    let f = flow_text::parse_flow("priority=0,actions=NORMAL")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (fm, canon) = prepare_flow(&f, &|_: &str| None, false)?;
    let mut run = Run::default();
    run.push(0, fm, canon);
    let cs = txn
        .flow_mods(&run.mods)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    run.absorb(ov, &cs, 0);
    Ok(())
}

/// Checks that meters and groups a flow uses exist (in the draft).
pub(super) fn check_refs(fm: &FlowMod, txn: &datapath::pipeline::Txn<'_>) -> Result<(), ApiError> {
    let ins = match fm {
        FlowMod::Add { spec, .. } => &spec.instructions,
        FlowMod::Modify { instructions, .. } => instructions,
        FlowMod::Delete { .. } => return Ok(()),
    };
    let snap = txn.snapshot();
    if let Some(m) = ins.meter
        && !snap.meters.contains_key(&m)
    {
        return Err(ApiError::not_found(
            "flow.instructions.meter",
            format!("no meter {}", m.0),
        ));
    }
    for a in ins.apply.iter().chain(ins.write_actions.iter()) {
        if let datapath::actions::Action::Group(g) = a
            && !snap.groups.contains_key(g)
        {
            return Err(ApiError::not_found(
                "flow.instructions.apply_actions.group",
                format!("no group {}", g.0),
            ));
        }
    }
    Ok(())
}

pub(super) fn flow_mod_error(e: datapath::classifier::FlowModError) -> ApiError {
    use datapath::classifier::FlowModError as E;
    match e {
        E::BadTable(_) => ApiError::invalid("flow.table_id", e.to_string()),
        E::BadGoto { .. } => ApiError::invalid("flow.instructions.goto_table", e.to_string()),
        E::Overlap { .. } => ApiError::exists("flow.match", e.to_string()),
    }
}

/// A run of flow inserts applied as one bundle: the datapath mods, and for each the update
/// index it came from, its canonical message and its identity (computed once).
#[derive(Default)]
pub(super) struct Run {
    pub(super) mods: Vec<FlowMod>,
    pub(super) index: Vec<usize>,
    pub(super) flows: Vec<Option<v1::Flow>>,
    pub(super) ids: Vec<Vec<u8>>,
}

impl Run {
    pub(super) fn push(&mut self, index: usize, fm: FlowMod, f: v1::Flow) {
        if let FlowMod::Add { spec, .. } = &fm {
            self.ids
                .push(flow_ident(spec.table, spec.priority, &spec.key, &spec.mask));
        }
        self.mods.push(fm);
        self.index.push(index);
        self.flows.push(Some(f));
    }

    /// Records what the bundle `mods[start..]` (or a prefix of it) did: each add produced
    /// exactly one rule, in order (see `ChangeSet::added`), and may have replaced one.
    pub(super) fn absorb(&mut self, ov: &mut Overlay, cs: &ChangeSet, start: usize) {
        for (r, _) in &cs.removed {
            ov.flows.insert(rule_ident(r), None);
        }
        for k in start..start + cs.added.len() {
            if let Some(f) = self.flows[k].take() {
                ov.flows.insert(std::mem::take(&mut self.ids[k]), Some(f));
            }
        }
    }
}

/// Records removed rules and queues flow-removed events for those that asked for them.
pub(super) fn absorb_removals(
    ov: &mut Overlay,
    cs: &ChangeSet,
    base: &IdMap<v1::Flow>,
    bridge: &str,
) {
    absorb_removals_as(ov, cs, base, bridge, None)
}

pub(super) fn absorb_removals_as(
    ov: &mut Overlay,
    cs: &ChangeSet,
    base: &IdMap<v1::Flow>,
    bridge: &str,
    reason: Option<v1::FlowRemovedReason>,
) {
    for (r, why) in &cs.removed {
        let id = rule_ident(r);
        if r.spec.send_flow_removed && *why != RemovedReason::Replaced {
            let m = ov.flow(base, &id).and_then(|f| f.r#match.clone());
            let c = r.stats.read();
            ov.events.push(v1::StreamMessageResponse {
                update: Some(smr::Update::FlowRemoved(v1::FlowRemoved {
                    bridge: bridge.to_string(),
                    reason: reason.unwrap_or(removed_reason(*why)) as i32,
                    cookie: r.spec.cookie,
                    priority: r.spec.priority as u32,
                    table_id: r.spec.table.0 as u32,
                    r#match: m,
                    duration_ns: 0,
                    idle_timeout: r.spec.idle_timeout_s as u32,
                    hard_timeout: r.spec.hard_timeout_s as u32,
                    packet_count: c.packets,
                    byte_count: c.bytes,
                })),
            });
        }
        ov.flows.insert(id, None);
    }
}

/// A datapath selector and the canonical match of the API filter it came from (set-field
/// prerequisites of a modify are checked against that match).
pub(super) type Selection = (Selector, v1::Match);

/// The datapath selector of an API filter, and the filter's canonical match.
pub(super) fn selector(ff: &v1::FlowFilter, names: &dyn PortNames) -> Result<Selection, ApiError> {
    let empty = v1::Match::default();
    let m = convert::convert_match(ff.r#match.as_ref().unwrap_or(&empty), names)?;
    let priority = match ff.priority {
        Some(p) => priority_of(p, "priority")?,
        None if ff.strict => flow_text::DEFAULT_PRIORITY as u16,
        None => 0,
    };
    let s = Selector {
        table: table_of(ff.table_id, "table_id")?,
        strict: ff.strict,
        key: m.key,
        mask: m.mask,
        priority,
        cookie: ff.cookie,
        cookie_mask: ff.cookie_mask,
        out_port: convert::filter_port(ff.out_port.as_ref(), names)?,
        out_group: ff.out_group.filter(|g| *g != 0xffff_ffff).map(GroupId),
    };
    Ok((s, m.canonical))
}

/// The flows `s` selects in `p` (in no particular order). Needs no lock: `p` is an
/// immutable snapshot.
pub(super) fn select(
    p: &datapath::classifier::Pipeline,
    s: &Selector,
) -> Vec<Arc<datapath::classifier::Rule>> {
    p.select(s)
}

/// The order in which reads list flows: table, priority (highest first), age.
pub(super) fn rule_order(r: &datapath::classifier::Rule) -> (TableId, std::cmp::Reverse<u16>, u64) {
    (r.spec.table, std::cmp::Reverse(r.spec.priority), r.id.0)
}

pub(super) fn strict_delete(r: &datapath::classifier::Rule) -> FlowMod {
    FlowMod::Delete(Selector::exact(&r.spec))
}

pub(super) fn delete_flows(
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
    b: &Bridge,
    s: Selector,
    reason: Option<v1::FlowRemovedReason>,
) -> Result<(), ApiError> {
    let cs = txn
        .flow_mods(&[FlowMod::Delete(s)])
        .map_err(|e| flow_mod_error(e.error))?;
    absorb_removals_as(ov, &cs, &b.flows, &b.rec.name, reason);
    Ok(())
}

/// What a modify does to the flows it selects.
pub(super) struct Modification<'a> {
    /// Their new instructions.
    pub(super) instructions: &'a [v1::Instruction],
    /// Restart their counters.
    pub(super) reset_counts: bool,
    /// Give them this cookie (they are re-added: their counters restart).
    pub(super) new_cookie: Option<u64>,
}

/// Modifies the flows `s` selects.
pub(super) fn modify_flows(
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
    b: &Bridge,
    names: &dyn PortNames,
    (s, canonical): Selection,
    change: Modification<'_>,
) -> Result<(), ApiError> {
    let Modification {
        instructions,
        reset_counts,
        new_cookie,
    } = change;
    let ins = convert::convert_instructions(instructions, names, &canonical)?;
    let mut ins_msg = instructions.to_vec();
    resolve_names(&mut ins_msg, names);
    let probe = FlowMod::Modify {
        selector: s.clone(),
        instructions: ins.clone(),
        reset_counts,
    };
    check_refs(&probe, txn)?;
    if let Some(cookie) = new_cookie {
        // Changing the cookie re-adds each selected flow with the new cookie and
        // instructions (its counters restart).
        let sel = txn.snapshot().pipeline.select(&Selector {
            out_port: None,
            out_group: None,
            ..s
        });
        let mut run = Run::default();
        for r in sel {
            let id = rule_ident(&r);
            let Some(mut f) = ov.flow(&b.flows, &id).cloned() else {
                continue;
            };
            f.cookie = cookie;
            f.instructions = ins_msg.clone();
            let mut spec = r.spec.clone();
            spec.cookie = cookie;
            spec.instructions = ins.clone();
            run.push(
                0,
                FlowMod::Add {
                    spec,
                    check_overlap: false,
                },
                f,
            );
        }
        let cs = txn
            .flow_mods(&run.mods)
            .map_err(|e| flow_mod_error(e.error))?;
        run.absorb(ov, &cs, 0);
        return Ok(());
    }
    let cs = txn
        .flow_mods(&[probe])
        .map_err(|e| flow_mod_error(e.error))?;
    for r in &cs.modified {
        let id = rule_ident(r);
        if let Some(mut f) = ov.flow(&b.flows, &id).cloned() {
            f.instructions = ins_msg.clone();
            ov.flows.insert(id, Some(f));
        }
    }
    Ok(())
}

/// How many flows of `p` use each group (a flow naming a group twice counts once): one
/// pass over the flows, however many groups there are.
pub(super) fn group_users(
    p: &datapath::classifier::Pipeline,
) -> std::collections::HashMap<u32, u32> {
    let mut users = std::collections::HashMap::new();
    let mut mine: Vec<u32> = Vec::new();
    for r in p.rules(None) {
        mine.clear();
        let ins = &r.spec.instructions;
        for a in ins.apply.iter().chain(ins.write_actions.iter()) {
            if let datapath::actions::Action::Group(g) = a
                && !mine.contains(&g.0)
            {
                mine.push(g.0);
            }
        }
        for g in &mine {
            *users.entry(*g).or_insert(0) += 1;
        }
    }
    users
}
