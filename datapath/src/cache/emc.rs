//! The exact-match cache: a direct-mapped, two-way table from full packet key to megaflow.

use super::megaflow::FlowRef;
use crate::flow::{FlowKey, PKT_WORDS};

/// Default number of entries (a power of two).
pub const EMC_ENTRIES: usize = 8192;

/// One entry: the full hash first, so a mismatch is rejected on the entry's first cache
/// line without comparing (or loading) the key.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Entry {
    hash: u64,
    flow: FlowRef,
    key: [u64; PKT_WORDS],
}

const EMPTY: Entry = Entry {
    hash: 0,
    flow: FlowRef::NONE,
    key: [0; PKT_WORDS],
};

/// Word-wise, branch-free comparison (a `memcmp` call costs more than the compare).
#[inline(always)]
fn same(stored: &[u64; PKT_WORDS], key: &FlowKey) -> bool {
    stored
        .iter()
        .zip(&key.w[..PKT_WORDS])
        .fold(0, |d, (a, b)| d | (a ^ b))
        == 0
}

/// Exact-match cache.
pub struct Emc {
    entries: Box<[Entry]>,
    mask: usize,
}

impl std::fmt::Debug for Emc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emc")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Emc {
    /// A cache of `entries` slots (rounded up to a power of two, at least 2).
    pub fn new(entries: usize) -> Emc {
        let n = entries.max(2).next_power_of_two();
        Emc {
            entries: vec![EMPTY; n].into_boxed_slice(),
            mask: n - 1,
        }
    }

    #[inline(always)]
    fn slots(&self, hash: u64) -> (usize, usize) {
        let a = hash as usize & self.mask;
        let b = (hash >> 32) as usize & self.mask;
        (a, b)
    }

    /// The megaflow cached for exactly this packet key, if any. The caller checks the
    /// reference is still live ([`super::MegaflowCache::get`]).
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64) -> FlowRef {
        let (a, b) = self.slots(hash);
        let ea = &self.entries[a];
        if ea.hash == hash && same(&ea.key, key) {
            return ea.flow;
        }
        let eb = &self.entries[b];
        if eb.hash == hash && same(&eb.key, key) {
            return eb.flow;
        }
        FlowRef::NONE
    }

    /// Caches `flow` for this exact key, replacing the stale or the second way's entry.
    #[inline]
    pub fn insert(
        &mut self,
        key: &FlowKey,
        hash: u64,
        flow: FlowRef,
        live: impl Fn(FlowRef) -> bool,
    ) {
        let (a, b) = self.slots(hash);
        let slot = if !live(self.entries[a].flow) || same(&self.entries[a].key, key) {
            a
        } else {
            b
        };
        let e = &mut self.entries[slot];
        e.key.copy_from_slice(&key.w[..PKT_WORDS]);
        e.hash = hash;
        e.flow = flow;
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.fill(EMPTY);
    }
}
