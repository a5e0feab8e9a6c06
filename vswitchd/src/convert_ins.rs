//! A flow's API instructions as the datapath's [`Instructions`]: at most one of each kind;
//! `write_actions` holds only what an OpenFlow action set may (`flow_text::not_in_action_set`).

use datapath::actions::{Action, Instructions};
use datapath::types::{MeterId, TableId};
use proto::flow_text;
use proto::v1::{self, Match, instruction};

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
                let (acts, _) = convert_actions(&a.actions, ports, Context::Flow(m))
                    .map_err(|e| e.under(&format!("{at}.apply_actions")))?;
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
