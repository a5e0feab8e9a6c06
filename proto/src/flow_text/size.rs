//! How long a flow is as an OpenFlow 1.3 flow_mod, so that a flow no OpenFlow message can
//! carry (more than [`MAX_OPENFLOW_MESSAGE_BYTES`]: e.g. 4,096 outputs) is refused with
//! Open vSwitch's reason, "input too big", whether it arrives as text or through the API.
//! Actions OpenFlow 1.3 lacks count as Open vSwitch encodes them (experimenter actions).

use crate::v1::{Action, Instruction, Match, action, instruction};

use super::fields::field_def_i32;
use super::limits::MAX_OPENFLOW_MESSAGE_BYTES;

/// `ofp_header` and the fixed part of `ofp_flow_mod`.
const FLOW_MOD_BYTES: usize = 48;

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// The OXM match: its 4-byte header, then each field's TLV (value and mask), padded.
fn match_bytes(m: &Match) -> usize {
    let fields: usize = m
        .fields
        .iter()
        .map(|f| {
            let width = field_def_i32(f.field).map_or(f.value.len(), |d| d.width);
            4 + width * if f.mask.is_empty() { 1 } else { 2 }
        })
        .sum();
    pad8(4 + fields)
}

fn set_field_bytes(width: usize, masked: bool) -> usize {
    if masked {
        // Open vSwitch's NXAST_REG_LOAD2: an experimenter action around a masked OXM.
        pad8(10 + 4 + 2 * width)
    } else {
        pad8(4 + 4 + width)
    }
}

/// One action's encoded length.
pub(super) fn action_bytes(a: &Action) -> usize {
    let Some(a) = &a.action else { return 8 };
    match a {
        action::Action::Output(_) => 16,
        action::Action::Group(_)
        | action::Action::SetQueue(_)
        | action::Action::PushVlan(_)
        | action::Action::PopVlan(_)
        | action::Action::DecTtl(_)
        | action::Action::PushMpls(_)
        | action::Action::PopMpls(_)
        | action::Action::DecMplsTtl(_) => 8,
        action::Action::SetField(s) => set_field_bytes(
            field_def_i32(s.field).map_or(s.value.len(), |d| d.width),
            !s.mask.is_empty(),
        ),
        // set_queue, output, pop_queue.
        action::Action::Enqueue(_) => 8 + 16 + 16,
        action::Action::PopQueue(_) => 16,
        // push_vlan (when needed) and a set-field.
        action::Action::SetVlanVid(_) | action::Action::SetVlanPcp(_) => 8 + 16,
        // NXAST_CT with its nested NAT (with IPv6 addresses at most) and set-fields.
        action::Action::Ct(c) => {
            24 + c.nat.as_ref().map_or(0, |_| 48)
                + c.mark.map_or(0, |_| 16)
                + if c.label.is_empty() { 0 } else { 40 }
        }
        action::Action::CtClear(_) => 16,
        // Open vSwitch's encodings: NXAST_REG_MOVE, NXAST_RESUBMIT_TABLE, NXAST_NOTE,
        // NXAST_EXIT, NXAST_OUTPUT_REG, NXAST_STACK_PUSH / POP.
        action::Action::Move(_) => 24,
        action::Action::Resubmit(_) | action::Action::Exit(_) => 16,
        action::Action::Note(n) => pad8(10 + n.data.len()),
        action::Action::OutputField(_)
        | action::Action::StackPush(_)
        | action::Action::StackPop(_) => 24,
        action::Action::Multipath(_) => 32,
        action::Action::Conjunction(_) => 16,
        // NXAST_CONTROLLER2: its header and a property per argument.
        action::Action::Controller(c) => 16 + 24 + (4 + c.userdata.len()).div_ceil(8) * 8,
        // NXAST_CLONE: a 16-byte header around the nested actions.
        action::Action::Clone(c) => 16 + c.actions.iter().map(action_bytes).sum::<usize>(),
    }
}

/// The length of a flow with this match and these instructions as an OpenFlow 1.3
/// flow_mod.
pub fn flow_mod_bytes(m: &Match, instructions: &[Instruction]) -> usize {
    let ins: usize = instructions
        .iter()
        .map(|i| match &i.instruction {
            Some(instruction::Instruction::ApplyActions(a)) => {
                8 + a.actions.iter().map(action_bytes).sum::<usize>()
            }
            Some(instruction::Instruction::WriteActions(a)) => {
                8 + a.actions.iter().map(action_bytes).sum::<usize>()
            }
            Some(instruction::Instruction::WriteMetadata(_)) => 24,
            _ => 8,
        })
        .sum();
    FLOW_MOD_BYTES + match_bytes(m) + ins
}

/// Refuses a flow one OpenFlow message cannot carry, with Open vSwitch's reason.
pub fn check_flow_size(m: &Match, instructions: &[Instruction]) -> Result<(), String> {
    let n = flow_mod_bytes(m, instructions);
    if n > MAX_OPENFLOW_MESSAGE_BYTES {
        return Err(format!(
            "input too big: as an OpenFlow flow_mod this flow is {n} bytes, more than the \
             {MAX_OPENFLOW_MESSAGE_BYTES} one message can carry"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse_flow;

    #[test]
    fn four_thousand_outputs_do_not_fit() {
        let many = |n: usize| format!("actions={}", vec!["1"; n].join(","));
        let e = parse_flow(&many(4096)).unwrap_err();
        assert!(e.message.starts_with("input too big"), "{e}");
        parse_flow(&many(4000)).unwrap();
    }
}
