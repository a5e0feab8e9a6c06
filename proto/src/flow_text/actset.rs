//! The action set of OpenFlow 1.1+ (`write_actions(...)`, `clear_actions`): which actions
//! it may hold, as Open vSwitch 3.1 decides (`action_set_classify`). The set keeps the
//! last action of each kind (all set-fields, moves and set_queues, in order) and runs when
//! the pipeline ends, in the order the specification gives, ending in one group, output,
//! resubmit or ct; an action outside that order (a `note`, a `clone`, a truncating output,
//! `controller(...)` with options) has no place in it.

use crate::v1::{Action, ReservedPort, action, port_ref};

/// Why `a` cannot be written to the action set, or `None` when it can.
pub fn not_in_action_set(a: &Action) -> Option<&'static str> {
    match a.action.as_ref()? {
        // A truncating output (`output(port=P,max_len=N)`) is an action of its own.
        action::Action::Output(o) if o.max_len.is_some() && !is_controller(o) => {
            Some("a truncating output (output(port=..,max_len=..)) cannot be in the action set")
        }
        // An output to the controller; its userdata is the flow's own actions' only.
        action::Action::Controller(c) if !c.userdata.is_empty() => Some(
            "controller(userdata=...) is in a flow's apply-actions only, not in the action set",
        ),
        action::Action::Controller(_)
        | action::Action::Output(_)
        | action::Action::Resubmit(_)
        | action::Action::Ct(_)
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
            "the action set holds only output, group, resubmit, ct, set_field, load, move, push/pop of VLAN and MPLS headers, the VLAN rewrites, dec_ttl, dec_mpls_ttl and set_queue",
        ),
    }
}

fn is_controller(o: &crate::v1::Output) -> bool {
    matches!(
        o.port.as_ref().and_then(|p| p.port.as_ref()),
        Some(port_ref::Port::Reserved(r)) if *r == ReservedPort::Controller as i32
    )
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
