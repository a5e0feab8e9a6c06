//! Flow rules: what a flow matches, what it does, and its counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actions::Instructions;
use crate::flow::{FlowKey, FlowMask};
use crate::types::TableId;

/// A rule's identity, unique within a datapath and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u64);

/// Everything needed to create a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSpec {
    /// Table the flow goes in.
    pub table: TableId,
    /// Higher wins.
    pub priority: u16,
    /// Values to match (normalised to `key & mask` on install).
    pub key: FlowKey,
    /// Bits that must match.
    pub mask: FlowMask,
    /// Controller-chosen opaque value.
    pub cookie: u64,
    /// Remove after this many seconds without a packet (0: never).
    pub idle_timeout_s: u16,
    /// Remove this many seconds after install (0: never).
    pub hard_timeout_s: u16,
    /// Report the removal to the controller (OFPFF_SEND_FLOW_REM).
    pub send_flow_removed: bool,
    /// What to do with matching packets.
    pub instructions: Instructions,
}

/// Per-rule counters, updated by poll threads once per burst per flow.
#[derive(Debug, Default)]
pub struct RuleStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    last_used_ns: AtomicU64,
}

/// A read of [`RuleStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
    /// Datapath clock when last matched (0: never).
    pub last_used_ns: u64,
}

impl RuleStats {
    /// Records `packets` packets of `bytes` bytes at `now_ns`.
    #[inline]
    pub fn record(&self, packets: u64, bytes: u64, now_ns: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.last_used_ns.load(Ordering::Relaxed) < now_ns {
            self.last_used_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// The counters now.
    pub fn read(&self) -> RuleCounts {
        RuleCounts {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            last_used_ns: self.last_used_ns.load(Ordering::Relaxed),
        }
    }
}

/// An installed flow. Immutable; shared as `Arc<Rule>` by every pipeline version holding it.
#[derive(Debug)]
pub struct Rule {
    /// Identity.
    pub id: RuleId,
    /// What it matches and does (its key already masked).
    pub spec: FlowSpec,
    /// Datapath clock at install.
    pub created_ns: u64,
    /// Counters (kept across modify unless reset).
    pub stats: Arc<RuleStats>,
}

impl Rule {
    /// True when this rule's match is `key`/`mask` exactly.
    pub fn same_match(&self, key: &FlowKey, mask: &FlowMask) -> bool {
        self.spec.mask == *mask && self.spec.key == key.masked(mask)
    }

    /// True when some packet could match both this rule and `key`/`mask`.
    pub fn overlaps(&self, key: &FlowKey, mask: &FlowMask) -> bool {
        self.spec.key.matches(key, &self.spec.mask.masked(mask))
    }

    /// True when the rule should be gone at `now_ns`, and why.
    pub fn expired(&self, now_ns: u64) -> Option<super::RemovedReason> {
        const NS: u64 = 1_000_000_000;
        let (hard, idle) = (self.spec.hard_timeout_s, self.spec.idle_timeout_s);
        if hard != 0 && now_ns >= self.created_ns + hard as u64 * NS {
            return Some(super::RemovedReason::HardTimeout);
        }
        if idle != 0 {
            let last = self.stats.read().last_used_ns.max(self.created_ns);
            if now_ns >= last + idle as u64 * NS {
                return Some(super::RemovedReason::IdleTimeout);
            }
        }
        None
    }
}
