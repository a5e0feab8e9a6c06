//! The action set of OpenFlow 1.1+ (`write_actions(...)`, `clear_actions`): which actions
//! it may hold. The set keeps at most one action of each kind (all set-fields and moves,
//! in order) and runs when the pipeline ends, in the order the specification gives; an
//! action outside that order (a `resubmit`, a `note`, a `clone`) has no place in it, as in
//! Open vSwitch.

use crate::v1::{Action, action};

/// Why `a` cannot be written to the action set, or `None` when it can.
pub fn not_in_action_set(a: &Action) -> Option<&'static str> {
    match a.action.as_ref()? {
        action::Action::Output(_)
        | action::Action::Group(_)
        | action::Action::SetField(_)
        | action::Action::Move(_)
        | action::Action::PushVlan(_)
        | action::Action::PopVlan(_)
        | action::Action::SetVlanVid(_)
        | action::Action::SetVlanPcp(_)
        | action::Action::PushMpls(_)
        | action::Action::PopMpls(_)
        | action::Action::DecTtl(_)
        | action::Action::DecMplsTtl(_)
        | action::Action::SetQueue(_) => None,
        _ => Some(
            "the action set holds only output, group, set_field, load, move, push/pop of VLAN and MPLS headers, the VLAN rewrites, dec_ttl, dec_mpls_ttl and set_queue",
        ),
    }
}

/// Checks a `write_actions` list received through the API: the index of the first
/// action the action set cannot hold, and why.
pub fn check_action_set(list: &[Action]) -> Result<(), (usize, &'static str)> {
    match list
        .iter()
        .enumerate()
        .find_map(|(i, a)| Some((i, not_in_action_set(a)?)))
    {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}
