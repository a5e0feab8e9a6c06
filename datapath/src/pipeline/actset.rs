//! The OpenFlow action set: what `write_actions` puts aside for the end of the pipeline.
//!
//! What: [`ActionSet`] collects the actions a packet's flows write (`clear_actions` empties
//! it) and, when the walk of the tables ends, gives them back in the order the OpenFlow
//! specification runs an action set, as Open vSwitch does (`ofpacts_execute_action_set`):
//! the last of each kind of pop_vlan, pop_mpls, push_mpls, push_vlan, dec_ttl and
//! dec_mpls_ttl; then every set-field, move and set_queue in the order written; then the
//! last group, or if there is none the last output, else the last resubmit, else the last
//! ct. Without one of those nothing runs (the rewrites would reach no port). It also keeps the key's
//! `actset_output` (the output port, or 0 for none or when there is a group) up to date,
//! so later tables can match on it.
//!
//! Thread-safety: a value owned by one translation (the slow path).

use crate::actions::Action;
use crate::flow::{Field, FlowKey};
use crate::types::PortNo;

/// A packet's action set during one walk of the tables.
#[derive(Default)]
pub(super) struct ActionSet {
    /// Everything written since the last clear, in order.
    written: Vec<Action>,
    /// A group was written: `actset_output` stays unset.
    has_group: bool,
}

/// The OpenFlow port number an output-kind action sends to (`actset_output`'s value).
fn output_port(a: &Action) -> Option<u32> {
    Some(match *a {
        Action::Output(p) => p.0,
        Action::InPort => PortNo::IN_PORT.0,
        Action::Flood => PortNo::FLOOD.0,
        Action::All => PortNo::ALL.0,
        Action::Normal => PortNo::NORMAL.0,
        Action::Controller { .. } | Action::ControllerWith { .. } => PortNo::CONTROLLER.0,
        _ => return None,
    })
}

/// True for the actions that rewrite fields (run all, in order).
fn is_set_or_move(a: &Action) -> bool {
    matches!(
        a,
        Action::SetField { .. }
            | Action::SetFieldMasked { .. }
            | Action::SetVlan { .. }
            | Action::Move { .. }
            | Action::SetQueue(_)
    )
}

impl ActionSet {
    /// `clear_actions`.
    pub(super) fn clear(&mut self, work: &mut FlowKey) {
        self.written.clear();
        self.has_group = false;
        work.set(Field::ActsetOutput, 0);
    }

    /// `write_actions(list)`.
    pub(super) fn write(&mut self, list: &[Action], work: &mut FlowKey) {
        for a in list {
            if self.has_group {
                break;
            }
            if matches!(a, Action::Group(_)) {
                self.has_group = true;
                work.set(Field::ActsetOutput, 0);
            } else if let Some(p) = output_port(a) {
                work.set(Field::ActsetOutput, u128::from(p));
            }
        }
        self.written.extend_from_slice(list);
    }

    /// True when nothing was written since the last clear.
    pub(super) fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// The actions to run when the pipeline ends, in the specification's order (empty
    /// when the set neither outputs nor goes to a group). Leaves the set empty.
    pub(super) fn take_ordered(&mut self) -> Vec<Action> {
        let set = std::mem::take(&mut self.written);
        self.has_group = false;
        let last = |f: fn(&Action) -> bool| set.iter().rev().find(|a| f(a)).copied();
        let Some(exit) = last(|a| matches!(a, Action::Group(_)))
            .or_else(|| last(|a| output_port(a).is_some()))
            .or_else(|| last(|a| matches!(a, Action::Resubmit { .. })))
            .or_else(|| last(|a| matches!(a, Action::Ct { .. })))
        else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(set.len());
        let singles: [fn(&Action) -> bool; 6] = [
            |a| matches!(a, Action::PopVlan),
            |a| matches!(a, Action::PopMpls { .. }),
            |a| matches!(a, Action::PushMpls { .. }),
            |a| matches!(a, Action::PushVlan { .. }),
            |a| matches!(a, Action::DecTtl),
            |a| matches!(a, Action::DecMplsTtl),
        ];
        out.extend(singles.into_iter().filter_map(last));
        out.extend(set.iter().copied().filter(is_set_or_move));
        out.push(exit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::GroupId;

    fn set_ip(v: u128) -> Action {
        Action::SetField {
            field: Field::Ipv4Src,
            value: v,
        }
    }

    #[test]
    fn runs_in_the_specification_order_keeping_the_last_of_each_kind() {
        let mut s = ActionSet::default();
        let mut k = FlowKey::ZERO;
        s.write(
            &[
                Action::Output(PortNo(3)),
                set_ip(1),
                Action::DecTtl,
                Action::PopVlan,
            ],
            &mut k,
        );
        assert_eq!(k.get(Field::ActsetOutput), 3);
        s.write(
            &[Action::SetQueue(7), set_ip(2), Action::Output(PortNo(4))],
            &mut k,
        );
        assert_eq!(k.get(Field::ActsetOutput), 4);
        assert_eq!(
            s.take_ordered(),
            vec![
                Action::PopVlan,
                Action::DecTtl,
                set_ip(1),
                Action::SetQueue(7),
                set_ip(2),
                Action::Output(PortNo(4)),
            ]
        );
        assert!(s.is_empty());
    }

    #[test]
    fn a_group_wins_over_outputs_and_unsets_actset_output() {
        let mut s = ActionSet::default();
        let mut k = FlowKey::ZERO;
        s.write(
            &[Action::Output(PortNo(2)), Action::Group(GroupId(5))],
            &mut k,
        );
        assert_eq!(k.get(Field::ActsetOutput), 0);
        s.write(&[Action::Output(PortNo(9))], &mut k);
        assert_eq!(k.get(Field::ActsetOutput), 0, "a group keeps it unset");
        assert_eq!(s.take_ordered(), vec![Action::Group(GroupId(5))]);
    }

    #[test]
    fn without_output_or_group_nothing_runs_and_clear_forgets() {
        let mut s = ActionSet::default();
        let mut k = FlowKey::ZERO;
        s.write(&[set_ip(1), Action::DecTtl], &mut k);
        assert!(s.take_ordered().is_empty());
        s.write(&[Action::Controller { max_len: 9 }], &mut k);
        assert_eq!(k.get(Field::ActsetOutput), u128::from(PortNo::CONTROLLER.0));
        s.clear(&mut k);
        assert_eq!(k.get(Field::ActsetOutput), 0);
        assert!(s.is_empty());
        assert!(s.take_ordered().is_empty());
    }
}
