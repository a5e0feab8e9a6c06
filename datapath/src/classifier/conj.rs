//! Conjunctive matches (Open vSwitch's `conjunction` actions and `conj_id` field, see
//! ovs-fields(7) "Conjunctive Match Fields").
//!
//! What: a flow whose actions are `conjunction(id, k/n)` is clause `k` of conjunction `id`:
//! a soft match. A lookup that finds, at one priority above every other flow it matched,
//! a soft match for each of the `n` clauses of some `id`, looks the packet up again with
//! `conj_id = id` (ignoring soft matches) and answers with the flow found, typically one
//! that matches `conj_id=id`. When that finds nothing, it tries the next conjunction and
//! then the next lower priority, and finally answers with the best other flow. Clauses of
//! one conjunction at different priorities are different conjunctions. The fields both
//! lookups consulted go into the megaflow mask (`conj_id` itself is zero in every packet's
//! key: the walk of the tables drops it from the mask).
//!
//! Thread-safety: pure functions over immutable rules.

use std::sync::Arc;

use super::rule::Rule;
use crate::actions::Action;

/// One conjunction's clauses seen at the current priority.
struct Seen {
    id: u32,
    /// Bit `k` set for each clause matched; the bits above `n_clauses` are set from the start.
    clauses: u64,
    /// Looked up again already (and nothing matched).
    tried: bool,
}

/// Decides a lookup with soft matches: `hard` is the best flow that is not a clause,
/// `soft` every clause flow matched above it (in any order); `again(id)` looks the packet
/// up again with `conj_id = id` and soft matches ignored.
pub(super) fn resolve<'a>(
    hard: Option<&'a Arc<Rule>>,
    mut soft: Vec<&'a Arc<Rule>>,
    mut again: impl FnMut(u32) -> Option<&'a Arc<Rule>>,
) -> Option<&'a Arc<Rule>> {
    let floor = hard.map_or(-1, |h| i32::from(h.spec.priority));
    soft.retain(|r| i32::from(r.spec.priority) > floor);
    if soft.is_empty() {
        return hard;
    }
    // Highest priority first; within one, older flows first (a stable order).
    soft.sort_by_key(|r| (std::cmp::Reverse(r.spec.priority), r.id));
    let mut seen: Vec<Seen> = Vec::new();
    for level in soft.chunk_by(|a, b| a.spec.priority == b.spec.priority) {
        seen.clear();
        for r in level {
            for a in r.spec.instructions.apply.iter() {
                let Action::Conjunction {
                    id,
                    clause,
                    n_clauses,
                } = *a
                else {
                    continue;
                };
                let i = match seen.iter().position(|s| s.id == id) {
                    Some(i) => i,
                    None => {
                        seen.push(Seen {
                            id,
                            clauses: u64::MAX.checked_shl(u32::from(n_clauses)).unwrap_or(0),
                            tried: false,
                        });
                        seen.len() - 1
                    }
                };
                let s = &mut seen[i];
                s.clauses |= 1u64 << (clause & 63);
                if s.clauses == u64::MAX && !s.tried {
                    s.tried = true;
                    if let Some(found) = again(id) {
                        return Some(found);
                    }
                }
            }
        }
    }
    hard
}
