//! The observer hook of the slow path's walk ([`super::xlate`]): what `trace` watches.
//!
//! What: [`Tracer`] is told each step the walk takes (a table looked up and the flow found
//! or the miss, each action run with the working key it left, `resubmit`, `goto_table`,
//! `write_metadata`, `exit`, a recirculation, a failure). The poll thread's walk uses
//! [`NoTrace`], a zero-sized type whose methods are empty and inlined: the walk is
//! monomorphised without them, so the slow path runs exactly the instructions it ran before
//! the hook existed; `trace` (`super::trace`) passes a recorder and so runs the same walk.
//! The hook only observes: it gets shared references and cannot change the walk's course.
//!
//! Thread-safety: a tracer belongs to the one walk it is passed to.

use std::sync::Arc;

use super::dp_action::DpAction;
use crate::actions::Action;
use crate::classifier::Rule;
use crate::flow::FlowKey;
use crate::stats::DropReason;
use crate::types::{MeterId, PortNo, TableId};

/// Watches one walk through the tables. Every method defaults to doing nothing.
pub trait Tracer {
    /// `table` was looked up: `rule` is the flow found, `None` a miss.
    #[inline(always)]
    fn table(&mut self, _table: TableId, _rule: Option<&Arc<Rule>>) {}

    /// Action `a` ran; `work` is the packet's key as it left it.
    #[inline(always)]
    fn action(&mut self, _a: &Action, _work: &FlowKey) {}

    /// A `resubmit` to `table` (with `in_port` in place of the packet's) starts; its
    /// lookup follows, nested, until [`Tracer::resubmit_done`].
    #[inline(always)]
    fn resubmit(&mut self, _in_port: Option<PortNo>, _table: TableId) {}

    /// The `resubmit` started last is done.
    #[inline(always)]
    fn resubmit_done(&mut self) {}

    /// A flow's `meter` instruction sends the packet through meter `id` first.
    #[inline(always)]
    fn meter(&mut self, _id: MeterId) {}

    /// A flow's `goto_table` continues the walk in `table`.
    #[inline(always)]
    fn goto(&mut self, _table: TableId) {}

    /// A flow's `write_metadata` wrote `value` under `mask`.
    #[inline(always)]
    fn write_metadata(&mut self, _value: u64, _mask: u64) {}

    /// The walk ends here: the packet is looked up again from `table` when it runs (after
    /// a `pop_mpls`, its headers read from the frame).
    #[inline(always)]
    fn recirc(&mut self, _table: TableId) {}

    /// The walk appended `op` to the translation (what the executor will run).
    #[inline(always)]
    fn op(&mut self, _op: &DpAction) {}

    /// The walk failed: the packet is dropped for `reason`.
    #[inline(always)]
    fn error(&mut self, _reason: DropReason) {}
}

/// The tracer of the poll thread's walk: nothing, at no cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTrace;

impl Tracer for NoTrace {}
