//! Conjunctive matches in the flow language: `conjunction(id,k/n)` (the flow is clause `k`
//! of `n` of conjunction `id`) and the rules Open vSwitch gives a flow using it
//! (ovs-actions(7)): the clause numbers' ranges, and that such a flow does nothing else (only
//! other `conjunction` actions and notes, no other instruction). The `conj_id` match field
//! is a row of the field table.

use crate::v1::{Action, Conjunction, Instruction, action, instruction};

/// Fewest and most clauses of one conjunction.
pub const CONJUNCTION_CLAUSES: std::ops::RangeInclusive<u32> = 2..=64;

/// Why a clause's numbers are refused (Open vSwitch's messages), if they are.
pub fn conjunction_numbers_error(c: &Conjunction) -> Option<&'static str> {
    if c.n_clauses < *CONJUNCTION_CLAUSES.start() {
        Some("conjunction must have at least 2 clauses")
    } else if c.n_clauses > *CONJUNCTION_CLAUSES.end() {
        Some("conjunction must have at most 64 clauses")
    } else if c.clause < 1 {
        Some("clause index must be positive")
    } else if c.clause > c.n_clauses {
        Some("clause index must be less than or equal to number of clauses")
    } else {
        None
    }
}

/// `conjunction(ID,K/N)`.
pub(super) fn conjunction_text(c: &Conjunction) -> String {
    format!("conjunction({},{}/{})", c.id, c.clause, c.n_clauses)
}

fn is_conjunction(a: &Action) -> bool {
    matches!(a.action, Some(action::Action::Conjunction(_)))
}

fn nested_conjunction(list: &[Action]) -> bool {
    list.iter().any(|a| match &a.action {
        Some(action::Action::Conjunction(_)) => true,
        Some(action::Action::Clone(c)) => nested_conjunction(&c.actions),
        _ => false,
    })
}

/// Checks a flow's instructions: a flow with a `conjunction` action has only those (and
/// notes) in its apply-actions and no other instruction; `conjunction` is nowhere else
/// (inside `clone` or `write_actions`).
pub fn check_conjunctions(list: &[Instruction]) -> Result<(), String> {
    let apply = list.iter().find_map(|i| match &i.instruction {
        Some(instruction::Instruction::ApplyActions(a)) => Some(&a.actions[..]),
        _ => None,
    });
    let top = apply.is_some_and(|l| l.iter().any(is_conjunction));
    for i in list {
        match &i.instruction {
            Some(instruction::Instruction::ApplyActions(a)) => {
                for a in &a.actions {
                    let note = matches!(a.action, Some(action::Action::Note(_)));
                    if top && !is_conjunction(a) && !note {
                        return Err(
                            "\"conjunction\" actions may be used along with \"note\" but not any other kind of action".into(),
                        );
                    }
                    if !top && nested_conjunction(std::slice::from_ref(a)) {
                        return Err("\"conjunction\" is an action of a flow's own list only (not inside clone)".into());
                    }
                }
            }
            Some(instruction::Instruction::WriteActions(w)) if nested_conjunction(&w.actions) => {
                return Err("\"conjunction\" cannot be in write_actions".into());
            }
            Some(_) if top => {
                return Err(
                    "a flow with \"conjunction\" actions takes no other instruction (no meter, goto_table, write_actions, clear_actions or write_metadata)".into(),
                );
            }
            _ => {}
        }
    }
    Ok(())
}
