//! One OpenFlow table: a tuple-space search classifier.
//!
//! What: one subtable per distinct mask, each a persistent hash map (`imbl`) from masked key
//! to the rules with that exact match, highest priority first. Subtables are kept sorted by
//! the highest priority they hold, so a lookup stops as soon as the best rule found beats
//! every remaining subtable. Cloning a table is O(masks); changing it is O(log rules) plus a
//! copy of the touched subtable's header, so every published version stays intact for the
//! poll threads still reading it.
//!
//! Flows of conjunctive clauses (`conjunction(id, k/n)` actions, see [`super::conj`]) are
//! soft matches: a table holding any is looked up by `lookup_conjunctive`, the others by
//! the plain loop.
//!
//! Thread-safety: immutable once published; shared by `Arc`.

use std::hash::{BuildHasher, Hash, Hasher};

use arrayvec::ArrayVec;
use std::sync::Arc;

use super::conj;
use super::rule::Rule;
use crate::flow::{Field, FlowKey, FlowMask, KEY_WORDS, hash_words};

/// A fast hasher for flow keys (multiply-xor per word; keys are not attacker-chosen in
/// bulk here: rules come from the controller).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.write_u64(*b as u64);
        }
    }

    #[inline]
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(23);
    }

    #[inline]
    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64);
    }
}

/// Builds [`KeyHasher`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHash;

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0x243f_6a88_85a3_08d3)
    }
}

/// Rules whose masked keys hash alike, best first (higher priority, then lower id). Almost
/// always they share one exact match; a hash collision puts rules of two matches in one list,
/// and lookups compare each rule's own (masked) key.
type RuleList = Vec<Arc<Rule>>;

/// A subtable map key: the hash of a masked key, computed once over the subtable mask's
/// non-zero words only (a typical mask selects 2 to 4 of the 18 words). The key itself stays
/// in the rules, so map nodes hold 32-byte entries instead of whole keys: a table of 100k
/// rules takes a fraction of the memory and inserts move far fewer bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SubKey(u64);

impl Hash for SubKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

#[derive(Clone, Debug)]
struct Subtable {
    mask: FlowMask,
    /// Indices of the mask's non-zero words.
    words: ArrayVec<u8, KEY_WORDS>,
    map: imbl::GenericHashMap<SubKey, RuleList, KeyHash, imbl::shared_ptr::DefaultSharedPtr>,
    /// How many rules hold each priority (to keep `max_priority` right on removal).
    priorities: imbl::OrdMap<u16, u32>,
    max_priority: u16,
    len: usize,
}

impl Subtable {
    fn new(mask: FlowMask) -> Subtable {
        Subtable {
            mask,
            words: (0..KEY_WORDS)
                .filter(|&i| mask.w[i] != 0)
                .map(|i| i as u8)
                .collect(),
            map: imbl::GenericHashMap::with_hasher(KeyHash),
            priorities: imbl::OrdMap::new(),
            max_priority: 0,
            len: 0,
        }
    }

    /// `key` masked by this subtable, and the map key of that.
    #[inline]
    fn subkey(&self, key: &FlowKey) -> (SubKey, FlowKey) {
        let key = key.masked(&self.mask);
        let mut buf = [0u64; KEY_WORDS];
        for (n, &w) in self.words.iter().enumerate() {
            buf[n] = key.w[w as usize];
        }
        (
            SubKey(hash_words(&buf[..self.words.len()], 0x7375_6274)),
            key,
        )
    }
}

/// Orders rules: higher priority first, then lower id (older) first.
fn better(a: &Rule, b: &Rule) -> bool {
    a.spec.priority > b.spec.priority || (a.spec.priority == b.spec.priority && a.id < b.id)
}

/// One OpenFlow table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    subtables: Vec<Arc<Subtable>>,
    len: usize,
    /// Flows of conjunctive clauses among them.
    soft: usize,
}

impl Table {
    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table has no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct masks.
    pub fn n_masks(&self) -> usize {
        self.subtables.len()
    }

    /// The highest-priority rule matching `key` (ties: the oldest). ORs into `wc` the mask
    /// of every subtable probed, so that every key agreeing with `key` on `wc` gets the
    /// same answer.
    ///
    /// A flow of conjunctive clauses is never the answer: when a packet matches a flow of
    /// every clause of a conjunction (at one priority, above the best other flow), the
    /// answer is the flow found when looking again with `conj_id` set to its id.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowMask) -> Option<&Arc<Rule>> {
        if self.soft != 0 {
            return self.lookup_conjunctive(key, wc);
        }
        let mut best: Option<&Arc<Rule>> = None;
        for st in &self.subtables {
            if let Some(b) = best
                && b.spec.priority > st.max_priority
            {
                break;
            }
            wc.or_assign(&st.mask);
            let (sk, masked) = st.subkey(key);
            if let Some(list) = st.map.get(&sk)
                && let Some(r) = list.iter().find(|r| r.spec.key == masked)
                && best.is_none_or(|b| better(r, b))
            {
                best = Some(r);
            }
        }
        best
    }

    /// [`Table::lookup`] in a table with flows of clauses (Open vSwitch's
    /// `classifier_lookup__`): the best other flow and every clause flow matched above it,
    /// then [`conj::resolve`] looks again for the conjunctions they satisfy.
    #[cold]
    fn lookup_conjunctive(&self, key: &FlowKey, wc: &mut FlowMask) -> Option<&Arc<Rule>> {
        let mut soft = Vec::new();
        let hard = self.probe(key, wc, Some(&mut soft));
        conj::resolve(hard, soft, |id| {
            let mut again = *key;
            again.set(Field::ConjId, u128::from(id));
            self.probe(&again, wc, None)
        })
    }

    /// The best flow that is not one of clauses, matching `key` (consulted fields into
    /// `wc`); each clause flow that matches with a higher priority goes into `soft` when
    /// given, and is passed over either way.
    fn probe<'a>(
        &'a self,
        key: &FlowKey,
        wc: &mut FlowMask,
        mut soft: Option<&mut Vec<&'a Arc<Rule>>>,
    ) -> Option<&'a Arc<Rule>> {
        let mut hard: Option<&Arc<Rule>> = None;
        for st in &self.subtables {
            if let Some(b) = hard
                && b.spec.priority > st.max_priority
            {
                break;
            }
            wc.or_assign(&st.mask);
            let (sk, masked) = st.subkey(key);
            let Some(list) = st.map.get(&sk) else {
                continue;
            };
            // Best first: stop at the first flow that is not better than `hard`, or at
            // the first other flow.
            for r in list.iter().filter(|r| r.spec.key == masked) {
                if hard.is_some_and(|b| !better(r, b)) {
                    break;
                }
                if r.spec.instructions.is_conjunctive() {
                    if let Some(s) = soft.as_deref_mut() {
                        s.push(r);
                    }
                } else {
                    hard = Some(r);
                    break;
                }
            }
        }
        hard
    }

    /// The rule with exactly this match and priority.
    pub fn find_strict(&self, key: &FlowKey, mask: &FlowMask, priority: u16) -> Option<&Arc<Rule>> {
        let st = self.subtables.iter().find(|s| s.mask == *mask)?;
        let (sk, masked) = st.subkey(key);
        st.map
            .get(&sk)?
            .iter()
            .find(|r| r.spec.priority == priority && r.spec.key == masked)
    }

    /// Every rule, in no particular order.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.subtables
            .iter()
            .flat_map(|st| st.map.values().flatten())
    }

    /// Adds a rule (the caller has removed any rule with the same match and priority).
    pub(crate) fn insert(&mut self, rule: Arc<Rule>) {
        let pos = match self.subtables.iter().position(|s| s.mask == rule.spec.mask) {
            Some(p) => p,
            None => {
                self.subtables.push(Arc::new(Subtable::new(rule.spec.mask)));
                self.subtables.len() - 1
            }
        };
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let prio = rule.spec.priority;
        let (sk, _) = st.subkey(&rule.spec.key);
        let mut list = st.map.get(&sk).cloned().unwrap_or_default();
        let at = list
            .iter()
            .position(|r| better(&rule, r))
            .unwrap_or(list.len());
        list.insert(at, Arc::clone(&rule));
        st.map.insert(sk, list);
        *st.priorities.entry(prio).or_insert(0) += 1;
        st.max_priority = st.max_priority.max(prio);
        st.len += 1;
        self.len += 1;
        self.soft += usize::from(rule.spec.instructions.is_conjunctive());
        self.sort();
    }

    /// Removes the rule with this id (matched by its key, mask and priority). Returns it.
    pub(crate) fn remove(&mut self, rule: &Rule) -> Option<Arc<Rule>> {
        let pos = self
            .subtables
            .iter()
            .position(|s| s.mask == rule.spec.mask)?;
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let (sk, _) = st.subkey(&rule.spec.key);
        let mut list = st.map.get(&sk)?.clone();
        let i = list.iter().position(|r| r.id == rule.id)?;
        let removed = list.remove(i);
        if list.is_empty() {
            st.map.remove(&sk);
        } else {
            st.map.insert(sk, list);
        }
        let prio = removed.spec.priority;
        if let Some(n) = st.priorities.get_mut(&prio) {
            *n -= 1;
            if *n == 0 {
                st.priorities.remove(&prio);
            }
        }
        st.max_priority = st.priorities.get_max().map_or(0, |(p, _)| *p);
        st.len -= 1;
        self.len -= 1;
        self.soft -= usize::from(removed.spec.instructions.is_conjunctive());
        if st.len == 0 {
            self.subtables.remove(pos);
        }
        self.sort();
        Some(removed)
    }

    /// Replaces a rule in place (same match and priority, new contents).
    pub(crate) fn replace(&mut self, new: Arc<Rule>) -> bool {
        let Some(pos) = self.subtables.iter().position(|s| s.mask == new.spec.mask) else {
            return false;
        };
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let (sk, _) = st.subkey(&new.spec.key);
        let Some(mut list) = st.map.get(&sk).cloned() else {
            return false;
        };
        let Some(i) = list.iter().position(|r| r.id == new.id) else {
            return false;
        };
        let was = usize::from(list[i].spec.instructions.is_conjunctive());
        self.soft = self.soft - was + usize::from(new.spec.instructions.is_conjunctive());
        list[i] = new;
        st.map.insert(sk, list);
        true
    }

    fn sort(&mut self) {
        // Stable and nearly sorted: cheap.
        self.subtables
            .sort_by_key(|s| std::cmp::Reverse(s.max_priority));
    }
}

const _: () = assert!(KEY_WORDS <= 32);
