//! A flow's API instructions as the datapath's [`Instructions`]: at most one of each kind;
//! `write_actions` holds only what an OpenFlow action set may (`flow_text::not_in_action_set`).

use std::sync::Arc;

use datapath::actions::{Action, Instructions, NO_USERDATA, PacketInReason};
use datapath::types::{MeterId, TableId};
use proto::flow_text;
use proto::v1::{self, Match, action, instruction};

use crate::convert::{Context, PortNames, convert_actions};
use crate::error::ApiError;

/// Converts instructions (at most one of each kind). Group and meter existence is the
/// caller's to check against the bridge.
pub fn convert_instructions(
    list: &[v1::Instruction],
    ports: &dyn PortNames,
    m: &Match,
) -> Result<Instructions, ApiError> {
    flow_text::check_flow_size(m, list).map_err(|e| ApiError::invalid("instructions", e))?;
    flow_text::check_conjunctions(list).map_err(|e| ApiError::invalid("instructions", e))?;
    let mut ins = Instructions::default();
    let (mut seen_apply, mut seen_meta) = (false, false);
    let (mut seen_clear, mut seen_write) = (false, false);
    for (i, x) in list.iter().enumerate() {
        let at = format!("instructions[{i}]");
        let x = x
            .instruction
            .as_ref()
            .ok_or_else(|| ApiError::invalid(&at, "empty instruction"))?;
        let dup = || ApiError::invalid(&at, "instruction given twice");
        match x {
            instruction::Instruction::Meter(id) => {
                if ins.meter.is_some() {
                    return Err(dup());
                }
                if *id == 0 || *id > flow_text::MAX_METER_ID {
                    return Err(ApiError::invalid(
                        format!("{at}.meter"),
                        format!("meter id {id} out of range"),
                    ));
                }
                ins.meter = Some(MeterId(*id));
            }
            instruction::Instruction::ApplyActions(a) => {
                if seen_apply {
                    return Err(dup());
                }
                seen_apply = true;
                let (mut acts, _) = convert_actions(&a.actions, ports, Context::Flow(m))
                    .map_err(|e| e.under(&format!("{at}.apply_actions")))?;
                ins.userdata = attach_userdata(&a.actions, &mut acts).into();
                ins.apply = acts.into();
            }
            instruction::Instruction::ClearActions(_) => {
                if seen_clear {
                    return Err(dup());
                }
                seen_clear = true;
                ins.clear_actions = true;
            }
            instruction::Instruction::WriteActions(w) => {
                if seen_write {
                    return Err(dup());
                }
                seen_write = true;
                let at = format!("{at}.write_actions");
                flow_text::check_action_set(&w.actions)
                    .map_err(|(i, why)| ApiError::invalid(format!("{at}.actions[{i}]"), why))?;
                if !userdata_of(&w.actions).is_empty() {
                    return Err(ApiError::invalid(
                        format!("{at}.actions"),
                        "controller userdata is in a flow's apply-actions only",
                    ));
                }
                let (acts, _) = convert_actions(&w.actions, ports, Context::Flow(m))
                    .map_err(|e| e.under(&at))?;
                ins.write_actions = acts.into();
            }
            instruction::Instruction::WriteMetadata(w) => {
                if seen_meta {
                    return Err(dup());
                }
                seen_meta = true;
                ins.write_metadata = Some((w.value & w.mask, w.mask));
            }
            instruction::Instruction::GotoTable(t) => {
                if ins.goto_table.is_some() {
                    return Err(dup());
                }
                if *t > flow_text::MAX_TABLE_ID {
                    return Err(ApiError::invalid(
                        format!("{at}.goto_table"),
                        format!("table {t} out of range 0..={}", flow_text::MAX_TABLE_ID),
                    ));
                }
                ins.goto_table = Some(TableId(*t as u8));
            }
        }
    }
    Ok(ins)
}

/// A `conjunction` clause: only in a flow's own action list (where
/// [`flow_text::check_conjunctions`] has checked it goes with nothing else).
pub(crate) fn conjunction(c: &v1::Conjunction, cx: Context<'_>) -> Result<Action, ApiError> {
    if !matches!(cx, Context::Flow(_)) {
        return Err(ApiError::invalid(
            "conjunction",
            "a clause of a conjunctive match is a flow's action only (not in group buckets, packet-outs or write_actions)",
        ));
    }
    if let Some(why) = flow_text::conjunction_numbers_error(c) {
        return Err(ApiError::invalid("conjunction", why));
    }
    Ok(Action::Conjunction {
        id: c.id,
        clause: (c.clause - 1) as u8,
        n_clauses: c.n_clauses as u8,
    })
}

/// `controller(...)` with its arguments. Its userdata is the flow's to attach
/// ([`attach_userdata`]): none here, and only in a flow.
pub(crate) fn controller(c: &v1::ControllerAction, cx: Context<'_>) -> Result<Action, ApiError> {
    if !c.userdata.is_empty() && !matches!(cx, Context::Flow(_)) {
        return Err(ApiError::invalid(
            "controller.userdata",
            "userdata is in a flow's apply-actions only (not in group buckets or packet-outs)",
        ));
    }
    let id =
        u16::try_from(c.id).map_err(|_| ApiError::invalid("controller.id", "must be 0..=65535"))?;
    let reason = match c.reason.map(v1::PacketInReason::try_from) {
        None | Some(Ok(v1::PacketInReason::Action)) => None,
        Some(Ok(v1::PacketInReason::NoMatch)) => Some(PacketInReason::NoMatch),
        Some(Ok(v1::PacketInReason::InvalidTtl)) => Some(PacketInReason::InvalidTtl),
        Some(Ok(v1::PacketInReason::ActionSet)) => Some(PacketInReason::ActionSet),
        Some(Ok(v1::PacketInReason::Group)) => Some(PacketInReason::Group),
        Some(Ok(v1::PacketInReason::PacketOut)) => Some(PacketInReason::PacketOut),
        Some(Err(_)) => return Err(ApiError::invalid("controller.reason", "unknown reason")),
    };
    Ok(Action::ControllerWith {
        max_len: c
            .max_len
            .map_or(u16::MAX, |l| l.min(u32::from(u16::MAX)) as u16),
        reason,
        id,
        userdata: NO_USERDATA,
    })
}

/// The userdata of every `controller(...)` in `list` (clones' included), in order, with
/// none as an empty one.
fn userdata_of(list: &[v1::Action]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for a in list {
        match &a.action {
            Some(action::Action::Controller(c)) if !c.userdata.is_empty() => {
                out.push(&c.userdata[..]);
            }
            Some(action::Action::Clone(c)) => out.extend(userdata_of(&c.actions)),
            _ => {}
        }
    }
    out
}

/// Gives each `controller(...)` of `acts` (converted from `list`, in the same order) the
/// index of its userdata in the table returned (a flow's `Instructions::userdata`).
fn attach_userdata(list: &[v1::Action], acts: &mut [Action]) -> Vec<Arc<[u8]>> {
    let mut with = Vec::new();
    fn walk<'a>(list: &'a [v1::Action], out: &mut Vec<&'a [u8]>) {
        for a in list {
            match &a.action {
                Some(action::Action::Controller(c)) => out.push(&c.userdata[..]),
                Some(action::Action::Clone(c)) => walk(&c.actions, out),
                _ => {}
            }
        }
    }
    walk(list, &mut with);
    let mut table: Vec<Arc<[u8]>> = Vec::new();
    let mut next = with.into_iter();
    for a in acts.iter_mut() {
        if let Action::ControllerWith { userdata, .. } = a
            && let Some(d) = next.next()
            && !d.is_empty()
            && table.len() < usize::from(NO_USERDATA)
        {
            *userdata = table.len() as u16;
            table.push(Arc::from(d));
        }
    }
    table
}
