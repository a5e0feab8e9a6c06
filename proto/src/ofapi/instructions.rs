//! OpenFlow 1.3 instructions to the API's [`v1::Instruction`]s and back.
//!
//! The API keeps at most one instruction of each kind, in the order meter, apply-actions,
//! clear-actions, write-actions, write-metadata, goto-table, whatever the order on the
//! wire. Refusals are Open vSwitch's: an instruction given twice `DUP_INST` (an ONF
//! experimenter error in 1.3), a goto to a table not after the flow's `BAD_TABLE_ID`, an
//! action the action set cannot hold in write-actions `UNSUPPORTED_ORDER`, an experimenter
//! instruction `BAD_EXPERIMENTER`. Write-actions of no action changes nothing and is left
//! out (as Open vSwitch prints `write_actions(drop)` back as `drop`).

use crate::flow_text::{self, MAX_METER_ID, MAX_TABLE_ID};
use crate::openflow::error::{OfpError, bad_action, bad_instruction, meter_mod_failed, onf};
use crate::openflow::ids::TableId;
use crate::openflow::instructions::{Instruction, Instructions};
use crate::openflow::list::Item;
use crate::v1::{self, instruction};

use super::actions::{self, Place};

/// Instructions of a flow in `table` with match `m`, in the API's form and order.
pub fn to_api(
    list: &Instructions<'_>,
    table: u8,
    m: &v1::Match,
) -> Result<Vec<v1::Instruction>, OfpError> {
    let mut slots: [Option<instruction::Instruction>; 6] = Default::default();
    let mut seen_write = false;
    for i in list.iter() {
        let (slot, x) = match i {
            Instruction::Meter(id) => {
                if id.0 == 0 || id.0 > MAX_METER_ID {
                    return Err(meter_mod_failed::INVALID_METER);
                }
                (0, instruction::Instruction::Meter(id.0))
            }
            Instruction::ApplyActions(a) => (
                1,
                instruction::Instruction::ApplyActions(v1::ApplyActions {
                    actions: actions::to_api(&a, Place::Flow(m))?,
                }),
            ),
            Instruction::WriteMetadata { metadata, mask } => (
                4,
                instruction::Instruction::WriteMetadata(v1::WriteMetadata {
                    value: metadata & mask,
                    mask,
                }),
            ),
            Instruction::GotoTable(TableId(t)) => {
                if t <= table || u32::from(t) > MAX_TABLE_ID {
                    return Err(bad_instruction::BAD_TABLE_ID);
                }
                (5, instruction::Instruction::GotoTable(u32::from(t)))
            }
            Instruction::ClearActions => (
                2,
                instruction::Instruction::ClearActions(v1::ClearActions {}),
            ),
            Instruction::WriteActions(a) => {
                if std::mem::replace(&mut seen_write, true) {
                    return Err(onf::DUP_INST);
                }
                let actions = actions::to_api(&a, Place::Flow(m))?;
                flow_text::check_action_set(&actions).map_err(|_| bad_action::UNSUPPORTED_ORDER)?;
                if actions.is_empty() {
                    continue;
                }
                (
                    3,
                    instruction::Instruction::WriteActions(v1::WriteActions { actions }),
                )
            }
            Instruction::Experimenter { .. } => return Err(bad_instruction::BAD_EXPERIMENTER),
        };
        if slots[slot].is_some() {
            return Err(onf::DUP_INST);
        }
        slots[slot] = Some(x);
    }
    let out: Vec<v1::Instruction> = slots
        .into_iter()
        .flatten()
        .map(|x| v1::Instruction {
            instruction: Some(x),
        })
        .collect();
    // Open vSwitch's ofpacts_verify: conjunction goes with notes only.
    crate::flow_text::check_conjunctions(&out)
        .map_err(|_| crate::openflow::error::nicira::BAD_CONJUNCTION)?;
    Ok(out)
}

/// Writes API instructions as wire instructions.
pub fn emit(list: &[v1::Instruction], out: &mut Vec<u8>) {
    use crate::openflow::instructions::kind;
    use crate::openflow::wire::Put;
    for i in list {
        match &i.instruction {
            Some(instruction::Instruction::Meter(id)) => {
                Instruction::Meter(crate::openflow::ids::MeterId(*id)).emit_item(out);
            }
            Some(instruction::Instruction::ApplyActions(a)) => {
                let start = out.len();
                out.put_u16(kind::APPLY_ACTIONS);
                out.put_u16(0);
                out.put_zeros(4);
                actions::emit(&a.actions, out);
                out.finish_len(start, 2);
            }
            Some(instruction::Instruction::WriteMetadata(w)) => Instruction::WriteMetadata {
                metadata: w.value,
                mask: w.mask,
            }
            .emit_item(out),
            Some(instruction::Instruction::GotoTable(t)) => {
                Instruction::GotoTable(TableId(*t as u8)).emit_item(out);
            }
            Some(instruction::Instruction::ClearActions(_)) => {
                Instruction::ClearActions.emit_item(out);
            }
            Some(instruction::Instruction::WriteActions(a)) => {
                let start = out.len();
                out.put_u16(kind::WRITE_ACTIONS);
                out.put_u16(0);
                out.put_zeros(4);
                actions::emit(&a.actions, out);
                out.finish_len(start, 2);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::Action;
    use crate::openflow::ids::{MeterId, PortNo};
    use crate::openflow::list::encode;

    fn parse(ins: &[Instruction<'_>], table: u8) -> Result<Vec<v1::Instruction>, OfpError> {
        let b = encode(ins);
        to_api(
            &Instructions::new_checked(&b).expect("framed"),
            table,
            &v1::Match::default(),
        )
    }

    #[test]
    fn api_order_whatever_the_wire_order() {
        let acts = encode(&[Action::Output {
            port: PortNo(1),
            max_len: 0,
        }]);
        let acts = crate::openflow::actions::Actions::new_checked(&acts).expect("actions");
        let wire = [
            Instruction::GotoTable(TableId(3)),
            Instruction::ApplyActions(acts),
            Instruction::Meter(MeterId(2)),
        ];
        let api = parse(&wire, 0).expect("valid");
        let text =
            crate::flow_text::parse_flow("actions=meter:2,output:1,goto_table:3").expect("flow");
        assert_eq!(api, text.instructions);
        let mut out = Vec::new();
        emit(&api, &mut out);
        let back = Instructions::new_checked(&out).expect("framed");
        assert_eq!(back.count(), 3);
    }

    #[test]
    fn refusals() {
        let g = Instruction::GotoTable(TableId(1));
        assert_eq!(parse(&[g, g], 0), Err(onf::DUP_INST));
        assert_eq!(parse(&[g], 1), Err(bad_instruction::BAD_TABLE_ID));
        let c = Instruction::ClearActions;
        assert_eq!(parse(&[c, c], 0), Err(onf::DUP_INST));
        // A note has no place in the action set.
        let note = crate::flow_text::parse_flow("actions=note:01").expect("flow");
        let mut wire = Vec::new();
        emit(&note.instructions, &mut wire);
        wire[0..2]
            .copy_from_slice(&crate::openflow::instructions::kind::WRITE_ACTIONS.to_be_bytes());
        let list = Instructions::new_checked(&wire).expect("framed");
        assert_eq!(
            to_api(&list, 0, &v1::Match::default()),
            Err(bad_action::UNSUPPORTED_ORDER)
        );
        assert_eq!(
            parse(&[Instruction::Meter(MeterId(0))], 0),
            Err(meter_mod_failed::INVALID_METER)
        );
    }

    #[test]
    fn the_action_set_both_ways() {
        for text in [
            "actions=clear_actions,write_actions(output:2)",
            "actions=output:1,clear_actions,write_actions(set_field:5->reg0,group:3),write_metadata:0x5/0xff,goto_table:2",
            "actions=meter:1,write_actions(push_vlan:0x8100,set_field:4100->vlan_vid,output:7)",
        ] {
            let flow = crate::flow_text::parse_flow(text).expect(text);
            let mut wire = Vec::new();
            emit(&flow.instructions, &mut wire);
            let list = Instructions::new_checked(&wire).expect("framed");
            let back = to_api(&list, 0, &flow.r#match.clone().unwrap_or_default()).expect(text);
            assert_eq!(back, flow.instructions, "{text}");
        }
        // Write-actions of nothing is no instruction, as in Open vSwitch.
        let empty = encode::<Action<'_>>(&[]);
        let empty = crate::openflow::actions::Actions::new_checked(&empty).expect("actions");
        assert_eq!(parse(&[Instruction::WriteActions(empty)], 0), Ok(vec![]));
    }
}
