//! The megaflow cache: tuple-space search over the masks the slow path produced.
//!
//! Layout: entries live in a slab (`Vec<Entry<V>>`) and are named by [`FlowRef`] (slot index
//! plus generation). Each distinct mask has a subtable: an open-addressing hash index from
//! the masked key (hashed over the mask's non-zero words only) to slab slots. Lookups try
//! subtables in an order re-sorted by hit count during housekeeping, so the common masks
//! are probed first.

use arrayvec::ArrayVec;

use crate::flow::{FlowKey, FlowMask, KEY_WORDS};

/// A reference to a megaflow: slab index and generation. Stale references (the entry was
/// removed and its slot reused) fail [`MegaflowCache::get`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRef {
    idx: u32,
    generation: u32,
}

impl FlowRef {
    /// Refers to nothing.
    pub const NONE: FlowRef = FlowRef {
        idx: u32::MAX,
        generation: 0,
    };

    /// True for [`FlowRef::NONE`].
    #[inline]
    pub fn is_none(self) -> bool {
        self.idx == u32::MAX
    }

    /// Slab index (for grouping packets by flow).
    #[inline]
    pub fn index(self) -> u32 {
        self.idx
    }
}

struct Entry<V> {
    key: [u64; KEY_WORDS],
    subtable: u16,
    generation: u32,
    hash: u32,
    used_epoch: u64,
    value: Option<V>,
}

const EMPTY_SLOT: u64 = 0;
const TOMBSTONE: u64 = 1;

struct Subtable {
    mask: [u64; KEY_WORDS],
    words: ArrayVec<u8, KEY_WORDS>,
    slots: Vec<u64>,
    len: usize,
    used: usize,
    hits: u64,
}

impl Subtable {
    fn new(mask: &[u64; KEY_WORDS]) -> Subtable {
        let words = (0..KEY_WORDS)
            .filter(|&i| mask[i] != 0)
            .map(|i| i as u8)
            .collect();
        Subtable {
            mask: *mask,
            words,
            slots: vec![EMPTY_SLOT; 16],
            len: 0,
            used: 0,
            hits: 0,
        }
    }

    /// The masked key's hash over the mask's non-zero words only (the same chain as
    /// `flow::hash_words`, without building the masked key).
    #[inline(always)]
    fn hash(&self, key: &FlowKey) -> u32 {
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for &w in &self.words {
            let v = key.w[w as usize] & self.mask[w as usize];
            h = (h ^ v).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 31;
        }
        let h = (h ^ (h >> 29)) as u32;
        h | 1 // never 0, so a slot value is never EMPTY_SLOT or TOMBSTONE by accident
    }

    #[inline(always)]
    fn matches(&self, key: &FlowKey, stored: &[u64; KEY_WORDS]) -> bool {
        let mut diff = 0;
        for &w in &self.words {
            diff |= (key.w[w as usize] & self.mask[w as usize]) ^ stored[w as usize];
        }
        diff == 0
    }

    fn insert_slot(&mut self, hash: u32, idx: u32) {
        if (self.used + 1) * 2 > self.slots.len() {
            self.rehash(if (self.len + 1) * 4 > self.slots.len() {
                self.slots.len() * 2
            } else {
                self.slots.len()
            });
        }
        let m = self.slots.len() - 1;
        let mut i = hash as usize & m;
        loop {
            if self.slots[i] == EMPTY_SLOT || self.slots[i] == TOMBSTONE {
                if self.slots[i] == EMPTY_SLOT {
                    self.used += 1;
                }
                self.slots[i] = (hash as u64) << 32 | (idx as u64 + 2);
                self.len += 1;
                return;
            }
            i = (i + 1) & m;
        }
    }

    fn remove_slot(&mut self, hash: u32, idx: u32) {
        let m = self.slots.len() - 1;
        let want = (hash as u64) << 32 | (idx as u64 + 2);
        let mut i = hash as usize & m;
        loop {
            match self.slots[i] {
                EMPTY_SLOT => return,
                s if s == want => {
                    self.slots[i] = TOMBSTONE;
                    self.len -= 1;
                    return;
                }
                _ => i = (i + 1) & m,
            }
        }
    }

    fn rehash(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; size]);
        self.len = 0;
        self.used = 0;
        let m = size - 1;
        for s in old {
            if s > TOMBSTONE {
                let mut i = (s >> 32) as usize & m;
                while self.slots[i] != EMPTY_SLOT {
                    i = (i + 1) & m;
                }
                self.slots[i] = s;
                self.len += 1;
                self.used += 1;
            }
        }
    }
}

/// A megaflow cache holding values of type `V` (the compiled action lists).
pub struct MegaflowCache<V> {
    entries: Vec<Entry<V>>,
    free: Vec<u32>,
    subtables: Vec<Option<Subtable>>,
    order: Vec<u16>,
    capacity: usize,
    len: usize,
    epoch: u64,
}

impl<V> std::fmt::Debug for MegaflowCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MegaflowCache")
            .field("len", &self.len)
            .field("masks", &self.order.len())
            .finish()
    }
}

impl<V> MegaflowCache<V> {
    /// A cache that holds at most `capacity` megaflows.
    pub fn new(capacity: usize) -> MegaflowCache<V> {
        MegaflowCache {
            entries: Vec::new(),
            free: Vec::new(),
            subtables: Vec::new(),
            order: Vec::new(),
            capacity,
            len: 0,
            epoch: 0,
        }
    }

    /// Number of megaflows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct masks (subtables).
    pub fn n_masks(&self) -> usize {
        self.order.len()
    }

    /// Finds the megaflow covering `key`.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> FlowRef {
        for &st_id in &self.order {
            let Some(st) = self.subtables[st_id as usize].as_mut() else {
                continue;
            };
            let h = st.hash(key);
            let m = st.slots.len() - 1;
            let mut i = h as usize & m;
            loop {
                let s = st.slots[i];
                if s == EMPTY_SLOT {
                    break;
                }
                if s != TOMBSTONE && (s >> 32) as u32 == h {
                    let idx = (s as u32) - 2;
                    let e = &mut self.entries[idx as usize];
                    if st.matches(key, &e.key) {
                        st.hits += 1;
                        e.used_epoch = self.epoch;
                        return FlowRef {
                            idx,
                            generation: e.generation,
                        };
                    }
                }
                i = (i + 1) & m;
            }
        }
        FlowRef::NONE
    }

    /// The value of a live megaflow; `None` for a stale or empty reference.
    #[inline]
    pub fn get(&self, r: FlowRef) -> Option<&V> {
        let e = self.entries.get(r.idx as usize)?;
        if e.generation == r.generation {
            e.value.as_ref()
        } else {
            None
        }
    }

    /// True when `r` names a live megaflow.
    #[inline]
    pub fn is_live(&self, r: FlowRef) -> bool {
        self.get(r).is_some()
    }

    /// Installs a megaflow for every key that agrees with `key` on `mask` (every word: a
    /// recirculated packet's ct state and pipeline state are part of its key). Returns `None` when the cache is full. If a megaflow
    /// with the same mask and masked key exists, its value is replaced.
    pub fn insert(&mut self, key: &FlowKey, mask: &FlowMask, value: V) -> Option<FlowRef> {
        let mut m = [0u64; KEY_WORDS];
        m.copy_from_slice(&mask.w[..KEY_WORDS]);
        let st_id = match self
            .subtables
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.mask == m))
        {
            Some(i) => i,
            None => {
                let st = Subtable::new(&m);
                let i = match self.subtables.iter().position(Option::is_none) {
                    Some(i) => {
                        self.subtables[i] = Some(st);
                        i
                    }
                    None => {
                        self.subtables.push(Some(st));
                        self.subtables.len() - 1
                    }
                };
                self.order.push(i as u16);
                i
            }
        };
        let existing = self.lookup_in(st_id, key);
        if let Some(r) = existing {
            self.entries[r.idx as usize].value = Some(value);
            return Some(r);
        }
        if self.len >= self.capacity {
            return None;
        }
        let st = self.subtables[st_id].as_mut()?;
        let h = st.hash(key);
        let mut k = [0u64; KEY_WORDS];
        for i in 0..KEY_WORDS {
            k[i] = key.w[i] & m[i];
        }
        let idx = match self.free.pop() {
            Some(i) => {
                let e = &mut self.entries[i as usize];
                e.key = k;
                e.subtable = st_id as u16;
                e.hash = h;
                e.used_epoch = self.epoch;
                e.value = Some(value);
                i
            }
            None => {
                self.entries.push(Entry {
                    key: k,
                    subtable: st_id as u16,
                    generation: 0,
                    hash: h,
                    used_epoch: self.epoch,
                    value: Some(value),
                });
                (self.entries.len() - 1) as u32
            }
        };
        st.insert_slot(h, idx);
        self.len += 1;
        Some(FlowRef {
            idx,
            generation: self.entries[idx as usize].generation,
        })
    }

    fn lookup_in(&self, st_id: usize, key: &FlowKey) -> Option<FlowRef> {
        let st = self.subtables[st_id].as_ref()?;
        let h = st.hash(key);
        let m = st.slots.len() - 1;
        let mut i = h as usize & m;
        loop {
            let s = st.slots[i];
            if s == EMPTY_SLOT {
                return None;
            }
            if s != TOMBSTONE && (s >> 32) as u32 == h {
                let idx = (s as u32) - 2;
                let e = &self.entries[idx as usize];
                if st.matches(key, &e.key) {
                    return Some(FlowRef {
                        idx,
                        generation: e.generation,
                    });
                }
            }
            i = (i + 1) & m;
        }
    }

    /// Removes one megaflow (no effect on a stale reference).
    pub fn remove(&mut self, r: FlowRef) {
        let Some(e) = self.entries.get_mut(r.idx as usize) else {
            return;
        };
        if e.generation != r.generation || e.value.is_none() {
            return;
        }
        e.value = None;
        e.generation = e.generation.wrapping_add(1);
        let (st_id, h) = (e.subtable as usize, e.hash);
        self.free.push(r.idx);
        self.len -= 1;
        if let Some(st) = self.subtables[st_id].as_mut() {
            st.remove_slot(h, r.idx);
            if st.len == 0 {
                self.subtables[st_id] = None;
                self.order.retain(|&i| i as usize != st_id);
            }
        }
    }

    /// Removes every megaflow for which `doomed(masked key, mask, value)` is true; returns
    /// how many.
    pub fn remove_if(&mut self, mut doomed: impl FnMut(&FlowKey, &FlowMask, &V) -> bool) -> usize {
        let mut victims = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let Some(v) = e.value.as_ref() else { continue };
            let Some(st) = self.subtables[e.subtable as usize].as_ref() else {
                continue;
            };
            let mut k = FlowKey::ZERO;
            let mut m = FlowKey::ZERO;
            k.w[..KEY_WORDS].copy_from_slice(&e.key);
            m.w[..KEY_WORDS].copy_from_slice(&st.mask);
            if doomed(&k, &m, v) {
                victims.push(FlowRef {
                    idx: i as u32,
                    generation: e.generation,
                });
            }
        }
        for r in &victims {
            self.remove(*r);
        }
        victims.len()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        let n = self.len;
        for (i, e) in self.entries.iter_mut().enumerate() {
            if e.value.take().is_some() {
                e.generation = e.generation.wrapping_add(1);
                self.free.push(i as u32);
            }
        }
        debug_assert_eq!(self.free.len(), self.entries.len());
        let _ = n;
        self.len = 0;
        self.subtables.clear();
        self.order.clear();
    }

    /// Housekeeping, called every few milliseconds by the owner: starts a new epoch, removes
    /// megaflows not hit during the last `idle_epochs` epochs and re-sorts subtables by hits.
    /// Returns the number removed.
    pub fn sweep(&mut self, idle_epochs: u64) -> usize {
        self.epoch += 1;
        let epoch = self.epoch;
        let removed = if epoch > idle_epochs {
            let mut victims = Vec::new();
            for (i, e) in self.entries.iter().enumerate() {
                if e.value.is_some() && e.used_epoch + idle_epochs < epoch {
                    victims.push(FlowRef {
                        idx: i as u32,
                        generation: e.generation,
                    });
                }
            }
            for r in &victims {
                self.remove(*r);
            }
            victims.len()
        } else {
            0
        };
        let subtables = &mut self.subtables;
        self.order.sort_by_key(|&i| {
            std::cmp::Reverse(subtables[i as usize].as_ref().map_or(0, |s| s.hits))
        });
        for st in subtables.iter_mut().flatten() {
            st.hits /= 2;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Field;
    use proptest::prelude::*;

    fn key(dst: u32, port: u16) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::EthType, 0x0800);
        k.set(Field::Ipv4Dst, dst as u128);
        k.set(Field::TpDst, port as u128);
        k
    }

    fn mask(prefix: u32, port: bool) -> FlowMask {
        let mut m = FlowKey::ZERO;
        m.set(Field::EthType, 0xffff);
        m.set(
            Field::Ipv4Dst,
            (u32::MAX.checked_shl(32 - prefix).unwrap_or(0)) as u128,
        );
        if port {
            m.set(Field::TpDst, 0xffff);
        }
        m
    }

    #[test]
    fn insert_lookup_remove() {
        let mut c = MegaflowCache::new(10);
        let r = c
            .insert(&key(0x0a00_0001, 80), &mask(24, false), "a")
            .unwrap();
        assert_eq!(c.lookup(&key(0x0a00_00ff, 1)), r);
        assert!(c.lookup(&key(0x0a00_01ff, 1)).is_none());
        assert_eq!(c.get(r), Some(&"a"));
        c.remove(r);
        assert_eq!(c.get(r), None);
        assert!(c.lookup(&key(0x0a00_00ff, 1)).is_none());
        assert_eq!(c.n_masks(), 0);
    }

    #[test]
    fn capacity_is_enforced() {
        let mut c = MegaflowCache::new(2);
        assert!(c.insert(&key(1, 1), &mask(32, true), 1).is_some());
        assert!(c.insert(&key(2, 1), &mask(32, true), 2).is_some());
        assert!(c.insert(&key(3, 1), &mask(32, true), 3).is_none());
        // Replacing an existing megaflow is always allowed.
        assert!(c.insert(&key(2, 1), &mask(32, true), 4).is_some());
        let r = c.lookup(&key(2, 1));
        assert_eq!(c.get(r), Some(&4));
    }

    #[test]
    fn idle_sweep() {
        let mut c = MegaflowCache::new(10);
        let a = c.insert(&key(1, 1), &mask(32, true), 1).unwrap();
        let b = c.insert(&key(2, 1), &mask(32, true), 2).unwrap();
        for _ in 0..3 {
            c.sweep(2);
            c.lookup(&key(1, 1));
        }
        assert!(c.is_live(a));
        assert!(!c.is_live(b));
    }

    proptest! {
        /// Against a linear list of (key, mask): lookups agree, through inserts and removes.
        #[test]
        fn agrees_with_linear(ops in proptest::collection::vec((0u32..64, 0u16..4, prop::sample::select(vec![8u32, 16, 24, 32]), any::<bool>(), any::<bool>()), 1..300)) {
            let mut c = MegaflowCache::new(1000);
            let mut reference: Vec<(FlowKey, FlowMask, FlowRef)> = Vec::new();
            for (dst, port, prefix, with_port, remove) in ops {
                let k = key(dst << 24 | dst, port);
                if remove {
                    let r = c.lookup(&k);
                    if let Some(pos) = reference.iter().position(|(rk, rm, _)| k.matches(rk, rm)) {
                        prop_assert_eq!(r, reference[pos].2);
                        c.remove(r);
                        reference.remove(pos);
                    } else {
                        prop_assert!(r.is_none());
                    }
                } else if !reference.iter().any(|(rk, rm, _)| k.matches(rk, rm)) {
                    let m = mask(prefix, with_port);
                    // Only insert non-overlapping megaflows, as the slow path guarantees.
                    if reference.iter().all(|(rk, rm, _)| { let mut both = *rm; both.w.iter_mut().zip(m.w.iter()).for_each(|(a, b)| *a &= b); !k.matches(rk, &both) }) {
                        let r = c.insert(&k, &m, dst).unwrap();
                        reference.push((k.masked(&m), m, r));
                    }
                }
                for (rk, _, rr) in &reference {
                    prop_assert_eq!(c.lookup(rk), *rr);
                }
            }
        }
    }
}
