//! The OpenFlow 1.3 flow tables: rules, tuple-space search, flow-mods, bundles, timeouts.
//!
//! What: a [`Pipeline`] holds 254 [`Table`]s. It is a persistent value: [`Pipeline::apply`]
//! returns a new pipeline (one version later) with a bundle of [`FlowMod`]s applied, or an
//! error naming the first mod that failed, in which case nothing changed. The old pipeline
//! stays valid for whoever still reads it, which is how poll threads keep classifying
//! without locks while the control plane changes flows.
//!
//! OpenFlow semantics kept here: an add with the same match and priority replaces the old
//! flow (counters reset); `check_overlap` refuses an add that overlaps a same-priority
//! flow; non-strict modify/delete select every flow whose match is the filter's or more
//! specific, strict ones the flow with exactly that match and priority; cookies filter under
//! a mask; delete can filter by output port or group; modify keeps counters unless
//! `reset_counts`. `goto_table` must point forward. Flows of `conjunction` clauses are
//! soft matches (see `conj`).
//!
//! Thread-safety: immutable values, shared by `Arc`.

mod conj;
pub mod rule;
pub mod table;

use std::sync::Arc;

pub use rule::{FlowSpec, Rule, RuleCounts, RuleId, RuleStats};
pub use table::Table;

use crate::actions::Instructions;
use crate::flow::{FlowKey, FlowMask};
use crate::types::{GroupId, PortNo, TableId};

/// Which flows a modify, a delete or a read selects: OpenFlow's flow-mod filter. The
/// default selects every flow of every table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// Table to search (`None`: all).
    pub table: Option<TableId>,
    /// Exact match and priority (true) or this match and every more specific one.
    pub strict: bool,
    /// Filter values.
    pub key: FlowKey,
    /// Filter mask.
    pub mask: FlowMask,
    /// Priority (strict only).
    pub priority: u16,
    /// Cookie filter value.
    pub cookie: u64,
    /// Cookie filter mask (0: any cookie).
    pub cookie_mask: u64,
    /// Only flows that output to this port (delete and read; a modify ignores it, as
    /// OpenFlow 1.3 says).
    pub out_port: Option<PortNo>,
    /// Only flows that use this group (delete and read; a modify ignores it).
    pub out_group: Option<GroupId>,
}

impl Selector {
    /// The one flow with exactly this table, match and priority (a strict selector).
    pub fn exact(spec: &FlowSpec) -> Selector {
        Selector {
            table: Some(spec.table),
            strict: true,
            key: spec.key,
            mask: spec.mask,
            priority: spec.priority,
            ..Selector::default()
        }
    }
}

/// One flow table modification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowMod {
    /// Add a flow (replacing one with identical match and priority).
    Add {
        /// The new flow.
        spec: FlowSpec,
        /// Refuse if a flow of the same priority overlaps it.
        check_overlap: bool,
    },
    /// Change the instructions of existing flows.
    Modify {
        /// The flows to change (`out_port` and `out_group` are ignored).
        selector: Selector,
        /// The new instructions.
        instructions: Instructions,
        /// Reset the flows' counters.
        reset_counts: bool,
    },
    /// Remove the flows selected.
    Delete(Selector),
}

/// Why a flow went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovedReason {
    /// Deleted by a flow-mod.
    Delete,
    /// Replaced by an add with the same match and priority.
    Replaced,
    /// Idle timeout.
    IdleTimeout,
    /// Hard timeout.
    HardTimeout,
}

/// What one version change did, for cache invalidation and flow-removed events.
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    /// Flows added, one per `FlowMod::Add` of the bundle, in bundle order.
    pub added: Vec<Arc<Rule>>,
    /// Flows whose instructions changed (the new rule).
    pub modified: Vec<Arc<Rule>>,
    /// Flows removed and why.
    pub removed: Vec<(Arc<Rule>, RemovedReason)>,
}

impl ChangeSet {
    /// Every (table, key, mask) touched, for cache invalidation.
    pub fn touched(&self) -> impl Iterator<Item = (TableId, FlowKey, FlowMask)> + '_ {
        self.added
            .iter()
            .chain(self.modified.iter())
            .chain(self.removed.iter().map(|(r, _)| r))
            .map(|r| (r.spec.table, r.spec.key, r.spec.mask))
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Why a flow-mod was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowModError {
    /// Tables are 0..=253.
    #[error("table {0} is out of range (0..=253)")]
    BadTable(TableId),
    /// `goto_table` must name a later, valid table.
    #[error("goto_table:{goto} must be greater than the flow's table {table} and at most 253")]
    BadGoto {
        /// The flow's table.
        table: TableId,
        /// The goto target.
        goto: TableId,
    },
    /// `check_overlap` found a same-priority flow that overlaps.
    #[error("flow overlaps an existing flow of the same priority (cookie {cookie:#x})")]
    Overlap {
        /// Cookie of the flow it overlaps.
        cookie: u64,
    },
}

/// A refused bundle: nothing in it was applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("flow-mod {index} of the bundle refused: {error}")]
pub struct BundleError {
    /// Position of the failing mod in the bundle.
    pub index: usize,
    /// Why.
    pub error: FlowModError,
}

/// All the tables of one bridge, at one version.
#[derive(Clone, Debug)]
pub struct Pipeline {
    tables: Vec<Arc<Table>>,
    /// Flows with a timeout, by id (so expiry never scans every flow).
    timed: imbl::OrdMap<RuleId, Arc<Rule>>,
    version: u64,
    next_id: u64,
    len: usize,
    /// Fail open (OpenFlow's standalone fail mode with its controllers lost): every packet
    /// is forwarded by `NORMAL`, whatever the tables hold; they are kept as they are.
    fail_open: bool,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}

/// Tables held, including the two reserved numbers so any `TableId` indexes safely.
const TABLE_SLOTS: usize = 256;

impl Pipeline {
    /// Empty tables, version 0.
    pub fn new() -> Pipeline {
        let empty = Arc::new(Table::default());
        Pipeline {
            tables: vec![empty; TABLE_SLOTS],
            timed: imbl::OrdMap::new(),
            version: 0,
            next_id: 1,
            len: 0,
            fail_open: false,
        }
    }

    /// True while the pipeline fails open (every packet to `NORMAL`).
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// The same tables one version later, failing open or not.
    pub fn with_fail_open(&self, on: bool) -> Pipeline {
        let mut next = self.clone();
        next.version += 1;
        next.fail_open = on;
        next
    }

    /// The version: bumped by every applied bundle and expiry.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A table (254 and 255 are always empty).
    #[inline]
    pub fn table(&self, id: TableId) -> &Table {
        &self.tables[id.0 as usize]
    }

    /// Total flows.
    pub fn rule_count(&self) -> usize {
        self.len
    }

    /// Every flow of one table, or of all tables in table order.
    pub fn rules(&self, table: Option<TableId>) -> Box<dyn Iterator<Item = &Arc<Rule>> + '_> {
        match table {
            Some(t) => Box::new(self.table(t).rules()),
            None => Box::new(self.tables.iter().flat_map(|t| t.rules())),
        }
    }

    /// Flows selected the way a non-strict (or strict) delete would select them.
    pub fn select(&self, s: &Selector) -> Vec<Arc<Rule>> {
        let key = s.key.masked(&s.mask);
        let keep = |r: &Arc<Rule>| {
            (r.spec.cookie ^ s.cookie) & s.cookie_mask == 0
                && s.out_port.is_none_or(|p| r.spec.instructions.outputs_to(p))
                && s.out_group
                    .is_none_or(|g| r.spec.instructions.uses_group(g))
        };
        if s.strict {
            let tables: Vec<TableId> = match s.table {
                Some(t) => vec![t],
                None => (0..TableId::COUNT as u8).map(TableId).collect(),
            };
            return tables
                .into_iter()
                .filter_map(|t| self.table(t).find_strict(&key, &s.mask, s.priority))
                .filter(|r| keep(r))
                .cloned()
                .collect();
        }
        self.rules(s.table)
            .filter(|r| {
                s.mask.is_subset_of(&r.spec.mask) && r.spec.key.matches(&key, &s.mask) && keep(r)
            })
            .cloned()
            .collect()
    }

    /// Applies a bundle atomically: a new pipeline one version later and what changed, or
    /// the first error (and `self` is untouched either way).
    pub fn apply(
        &self,
        mods: &[FlowMod],
        now_ns: u64,
    ) -> Result<(Pipeline, ChangeSet), BundleError> {
        let mut next = self.clone();
        next.version += 1;
        let mut changes = ChangeSet::default();
        for (index, m) in mods.iter().enumerate() {
            next.apply_one(m, now_ns, &mut changes)
                .map_err(|error| BundleError { index, error })?;
        }
        Ok((next, changes))
    }

    /// Removes flows whose idle or hard timeout has passed at `now_ns`. `None` when none has.
    pub fn expire(&self, now_ns: u64) -> Option<(Pipeline, ChangeSet)> {
        let expired: Vec<(Arc<Rule>, RemovedReason)> = self
            .timed
            .values()
            .filter_map(|r| r.expired(now_ns).map(|why| (Arc::clone(r), why)))
            .collect();
        if expired.is_empty() {
            return None;
        }
        let mut next = self.clone();
        next.version += 1;
        let mut changes = ChangeSet::default();
        for (r, why) in expired {
            next.remove_rule(&r);
            changes.removed.push((r, why));
        }
        Some((next, changes))
    }

    fn validate(spec: &FlowSpec) -> Result<(), FlowModError> {
        if !spec.table.is_valid() {
            return Err(FlowModError::BadTable(spec.table));
        }
        Self::validate_instructions(spec.table, &spec.instructions)
    }

    fn validate_instructions(table: TableId, ins: &Instructions) -> Result<(), FlowModError> {
        if let Some(goto) = ins.goto_table
            && (goto <= table || !goto.is_valid())
        {
            return Err(FlowModError::BadGoto { table, goto });
        }
        Ok(())
    }

    fn table_mut(&mut self, id: TableId) -> &mut Table {
        Arc::make_mut(&mut self.tables[id.0 as usize])
    }

    fn insert_rule(&mut self, rule: Arc<Rule>) {
        if rule.spec.idle_timeout_s != 0 || rule.spec.hard_timeout_s != 0 {
            self.timed.insert(rule.id, Arc::clone(&rule));
        }
        self.table_mut(rule.spec.table).insert(rule);
        self.len += 1;
    }

    fn remove_rule(&mut self, rule: &Rule) -> bool {
        let removed = self.table_mut(rule.spec.table).remove(rule).is_some();
        if removed {
            self.timed.remove(&rule.id);
            self.len -= 1;
        }
        removed
    }

    fn apply_one(
        &mut self,
        m: &FlowMod,
        now_ns: u64,
        changes: &mut ChangeSet,
    ) -> Result<(), FlowModError> {
        match m {
            FlowMod::Add {
                spec,
                check_overlap,
            } => self.add(spec, *check_overlap, now_ns, changes),
            FlowMod::Modify {
                selector,
                instructions,
                reset_counts,
            } => self.modify(selector, instructions, *reset_counts, changes),
            FlowMod::Delete(selector) => {
                Self::validate_selector(selector)?;
                for r in self.select(selector) {
                    if self.remove_rule(&r) {
                        changes.removed.push((r, RemovedReason::Delete));
                    }
                }
                Ok(())
            }
        }
    }

    fn validate_selector(s: &Selector) -> Result<(), FlowModError> {
        match s.table {
            Some(t) if !t.is_valid() => Err(FlowModError::BadTable(t)),
            _ => Ok(()),
        }
    }

    /// Adds a flow, replacing one with the same match and priority.
    fn add(
        &mut self,
        spec: &FlowSpec,
        check_overlap: bool,
        now_ns: u64,
        changes: &mut ChangeSet,
    ) -> Result<(), FlowModError> {
        Self::validate(spec)?;
        let key = spec.key.masked(&spec.mask);
        if check_overlap
            && let Some(r) = self.table(spec.table).rules().find(|r| {
                r.spec.priority == spec.priority
                    && r.overlaps(&key, &spec.mask)
                    && !r.same_match(&key, &spec.mask)
            })
        {
            return Err(FlowModError::Overlap {
                cookie: r.spec.cookie,
            });
        }
        if let Some(old) = self
            .table(spec.table)
            .find_strict(&key, &spec.mask, spec.priority)
            .cloned()
        {
            self.remove_rule(&old);
            changes.removed.push((old, RemovedReason::Replaced));
        }
        let rule = Arc::new(Rule {
            id: RuleId(self.next_id),
            spec: FlowSpec {
                key,
                ..spec.clone()
            },
            created_ns: now_ns,
            stats: Arc::new(RuleStats::default()),
        });
        self.next_id += 1;
        self.insert_rule(Arc::clone(&rule));
        changes.added.push(rule);
        Ok(())
    }

    /// Replaces the instructions of the flows `selector` selects (ignoring its `out_port`
    /// and `out_group`), keeping their counters unless `reset_counts`.
    fn modify(
        &mut self,
        selector: &Selector,
        instructions: &Instructions,
        reset_counts: bool,
        changes: &mut ChangeSet,
    ) -> Result<(), FlowModError> {
        Self::validate_selector(selector)?;
        let selected = self.select(&Selector {
            out_port: None,
            out_group: None,
            ..selector.clone()
        });
        for r in &selected {
            Self::validate_instructions(r.spec.table, instructions)?;
        }
        for r in selected {
            let new = Arc::new(Rule {
                id: r.id,
                spec: FlowSpec {
                    instructions: instructions.clone(),
                    ..r.spec.clone()
                },
                created_ns: r.created_ns,
                stats: if reset_counts {
                    Arc::new(RuleStats::default())
                } else {
                    Arc::clone(&r.stats)
                },
            });
            self.table_mut(r.spec.table).replace(Arc::clone(&new));
            if self.timed.contains_key(&new.id) {
                self.timed.insert(new.id, Arc::clone(&new));
            }
            changes.modified.push(new);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
