//! The lookup stages of a burst, in OVS's order: parse every packet into its key, then the
//! exact-match cache, then the megaflow cache, then (within a per-burst budget) the slow
//! path, which translates through the OpenFlow tables and installs a megaflow. The result
//! is the burst's packets grouped by the translation they follow.
//!
//! Thread-safety: [`Caches`] belongs to one poll thread; the snapshot it reads is immutable.

use std::sync::Arc;

use arrayvec::ArrayVec;

use super::burst::Work;
use super::shared::DatapathConfig;
use super::snapshot::Snapshot;
use super::xlate::{Translation, translate, translate_from};
use crate::cache::{Emc, FlowRef, MegaflowCache};
use crate::flow::{Field, FlowKey, KEY_WORDS, PKT_WORDS, extract, hash_packet};
use crate::packet::BufPool;
use crate::port::BURST;
use crate::stats::{DropReason, PmdCounters};
use crate::types::TableId;

/// Megaflows idle for this many sweeps are removed.
const MEGAFLOW_IDLE_SWEEPS: u64 = 100;

/// Where a packet's translation is: a megaflow, or (the cache being full) one made for
/// this burst only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Src {
    /// A megaflow of the cache.
    Mf(FlowRef),
    /// The translation at this index of [`Flows::local`].
    Local(u8),
    /// A megaflow of the recirculation cache.
    Rc(FlowRef),
}

/// A burst's packets grouped by the translation they follow, in order of first arrival,
/// each group keeping its packets' arrival order.
pub(super) struct Flows {
    pub(super) groups: ArrayVec<(Src, ArrayVec<u8, BURST>), BURST>,
    /// Translations the megaflow cache had no room for.
    pub(super) local: ArrayVec<Arc<Translation>, BURST>,
}

impl Flows {
    /// No flows.
    #[inline]
    pub(super) fn new() -> Flows {
        Flows {
            groups: ArrayVec::new(),
            local: ArrayVec::new(),
        }
    }
}

/// One poll thread's flow caches and what their lookups need.
pub(super) struct Caches {
    emc: Emc,
    emc_enabled: bool,
    pub(super) mf: MegaflowCache<Arc<Translation>>,
    /// Megaflows of recirculated packets (after `ct(table=T)`), keyed on every word of the
    /// key, the recirculation id always among them.
    pub(super) mf_recirc: MegaflowCache<Arc<Translation>>,
    emc_insert_inv_prob: u32,
    rng: u32,
    slow_path_budget: usize,
    /// The pipeline version the caches agree with.
    pipeline_version: u64,
}

impl Caches {
    /// Empty caches sized by `cfg`.
    pub(super) fn new(cfg: &DatapathConfig) -> Caches {
        Caches {
            emc: Emc::new(cfg.emc_entries.max(2)),
            emc_enabled: cfg.emc_entries > 0,
            mf: MegaflowCache::new(cfg.megaflow_capacity),
            mf_recirc: MegaflowCache::new(cfg.megaflow_capacity),
            emc_insert_inv_prob: cfg.emc_insert_inv_prob.max(1),
            rng: 0x2545_f491,
            slow_path_budget: cfg.slow_path_budget,
            pipeline_version: 0,
        }
    }

    /// The pipeline version the caches agree with.
    pub(super) fn pipeline_version(&self) -> u64 {
        self.pipeline_version
    }

    /// Brings the caches in line with the snapshot's pipeline version.
    #[inline]
    pub(super) fn sync(&mut self, snap: &Snapshot, counters: &PmdCounters) {
        let v = snap.pipeline.version();
        if v != self.pipeline_version {
            self.sync_slow(snap, v, counters);
        }
    }

    /// Removes the megaflows the flow changes since our version may affect (or all of them,
    /// when the snapshot's history does not reach back that far).
    #[cold]
    fn sync_slow(&mut self, snap: &Snapshot, v: u64, counters: &PmdCounters) {
        let touched: Option<Vec<_>> = snap.changes_since(self.pipeline_version).map(|v| {
            v.iter()
                .flat_map(|cs| cs.touched().collect::<Vec<_>>())
                .collect()
        });
        match touched {
            Some(touched) => {
                let mut removed = 0;
                for mf in [&mut self.mf, &mut self.mf_recirc] {
                    removed += mf.remove_if(|mk, mm, t| {
                        touched.iter().any(|(table, rk, rm)| {
                            t.visited(*table)
                                && (t.rewritten
                                    || (0..KEY_WORDS)
                                        .all(|i| (mk.w[i] ^ rk.w[i]) & mm.w[i] & rm.w[i] == 0))
                        })
                    });
                }
                counters.megaflow_removed.add(removed as u64);
            }
            None => {
                self.mf.clear();
                self.mf_recirc.clear();
                counters.cache_flush.add(1);
            }
        }
        self.pipeline_version = v;
    }

    /// Removes megaflows no packet used for a while.
    pub(super) fn sweep(&mut self, counters: &PmdCounters) {
        let removed =
            self.mf.sweep(MEGAFLOW_IDLE_SWEEPS) + self.mf_recirc.sweep(MEGAFLOW_IDLE_SWEEPS);
        counters.megaflow_removed.add(removed as u64);
    }

    /// Looks up the `w.n` packets of `w`: parses them (dropping what does not parse), then
    /// exact-match cache, megaflow cache, slow path. Leaves them in `flows` (empty before)
    /// grouped by flow; packets beyond the slow path's budget are dropped.
    pub(super) fn lookup_burst(
        &mut self,
        snap: &Snapshot,
        w: &mut Work,
        pool: &mut BufPool,
        counters: &PmdCounters,
        flows: &mut Flows,
    ) {
        let n = w.n;
        let mut srcs: [Option<Src>; BURST] = [None; BURST];
        let local = &mut flows.local;
        let (mut emc_hit, mut mf_hit, mut upcalls) = (0u64, 0u64, 0usize);

        // Stage 1: parse and hash every packet. Independent work per packet, so the CPU
        // overlaps it; the cache lookups below then find their keys ready.
        let mut hashes = [0u64; BURST];
        let mut parsed = [false; BURST];
        // With a single megaflow mask the megaflow cache answers in one probe that hashes
        // and compares only the mask's words: cheaper than the EMC's hash and compare of all
        // 13 packet words, so the EMC is skipped (and not filled) until there are more.
        let use_emc = self.emc_enabled && self.mf.n_masks() != 1;
        let (in_port, from_tunnel, tun_local) = (w.in_port, w.from_tunnel, w.tun_local);
        let Work {
            pkts, keys, lays, ..
        } = &mut *w;
        for i in 0..n {
            let Some(p) = pkts[i].as_ref() else { continue };
            match extract(p.data(), in_port, &mut keys[i]) {
                Ok(l) => {
                    lays[i] = l;
                    parsed[i] = true;
                    if from_tunnel {
                        let (remote, id) = p.tunnel();
                        keys[i].set(Field::TunId, id as u128);
                        keys[i].set(Field::TunSrc, u32::from(remote) as u128);
                        keys[i].set(Field::TunDst, tun_local as u128);
                    }
                    if use_emc {
                        hashes[i] = hash_packet(&keys[i]);
                    }
                }
                Err(r) => {
                    counters.count_drop(r, 1);
                    if let Some(p) = pkts[i].take() {
                        pool.put(p);
                    }
                }
            }
        }
        // Stage 2: exact-match cache.
        let mut misses: ArrayVec<u8, BURST> = ArrayVec::new();
        for i in 0..n {
            if !parsed[i] {
                continue;
            }
            if use_emc {
                let r = self.emc.lookup(&keys[i], hashes[i]);
                if !r.is_none() && self.mf.is_live(r) {
                    emc_hit += 1;
                    srcs[i] = Some(Src::Mf(r));
                    continue;
                }
            }
            misses.push(i as u8);
        }
        // Stage 3: megaflow cache, then the slow path within its budget.
        for &i in &misses {
            let i = i as usize;
            let key = &keys[i];
            let h = hashes[i];
            let r = self.mf.lookup(key);
            if !r.is_none() {
                mf_hit += 1;
                if use_emc {
                    self.maybe_insert_emc(key, h, r);
                }
                srcs[i] = Some(Src::Mf(r));
                continue;
            }
            if upcalls >= self.slow_path_budget {
                counters.count_drop(DropReason::SlowPathBudget, 1);
                if let Some(p) = pkts[i].take() {
                    pool.put(p);
                }
                continue;
            }
            upcalls += 1;
            srcs[i] = Some(self.miss(use_emc, counters, snap, key, h, local));
        }
        counters.emc_hit.add(emc_hit);
        counters.megaflow_hit.add(mf_hit);
        counters.slow_path.add(upcalls as u64);
        group_by_flow(&srcs[..n], &mut flows.groups);
    }

    /// Copies a megaflow hit into the exact-match cache with probability
    /// 1/emc_insert_inv_prob, so a flood of short flows does not thrash it (as OVS's
    /// emc-insert-inv-prob).
    #[inline]
    fn maybe_insert_emc(&mut self, key: &FlowKey, h: u64, r: FlowRef) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        if self.rng.is_multiple_of(self.emc_insert_inv_prob) {
            let mf = &self.mf;
            self.emc.insert(key, h, r, |f| mf.is_live(f));
        }
    }

    /// The slow path for one packet: translate through the tables and install the result
    /// as a megaflow (or keep it for this burst when the cache is full).
    #[cold]
    #[inline(never)]
    fn miss(
        &mut self,
        use_emc: bool,
        counters: &PmdCounters,
        snap: &Snapshot,
        key: &FlowKey,
        h: u64,
        local: &mut ArrayVec<Arc<Translation>, BURST>,
    ) -> Src {
        let (t, mut wc) = translate(&snap.pipeline, key);
        // An ingress packet's words after the packet's are all zero: the ingress cache
        // keys on the packet words only.
        wc.w[PKT_WORDS..].fill(0);
        let t = Arc::new(t);
        match self.mf.insert(key, &wc, Arc::clone(&t)) {
            Some(r) => {
                counters.megaflow_installed.add(1);
                if use_emc {
                    let mf = &self.mf;
                    self.emc.insert(key, h, r, |f| mf.is_live(f));
                }
                Src::Mf(r)
            }
            None => {
                counters.megaflow_full.add(1);
                local.push(t);
                Src::Local((local.len() - 1) as u8)
            }
        }
    }
}

impl Caches {
    /// Looks up the `w.n` recirculated packets of `w` (keys and layouts ready, each with
    /// its recirculation id: the table it continues in, plus one) in the recirculation
    /// megaflow cache, then the slow path from that table within its budget. Leaves them
    /// in `flows` (empty before) grouped by flow.
    pub(super) fn lookup_recirc(
        &mut self,
        snap: &Snapshot,
        w: &mut Work,
        pool: &mut BufPool,
        counters: &PmdCounters,
        flows: &mut Flows,
    ) {
        let n = w.n;
        let mut srcs: [Option<Src>; BURST] = [None; BURST];
        let (mut hits, mut upcalls) = (0u64, 0usize);
        for (i, src) in srcs.iter_mut().enumerate().take(n) {
            if w.pkts[i].is_none() {
                continue;
            }
            let key = &w.keys[i];
            let r = self.mf_recirc.lookup(key);
            if !r.is_none() {
                hits += 1;
                *src = Some(Src::Rc(r));
                continue;
            }
            if upcalls >= self.slow_path_budget {
                counters.count_drop(DropReason::SlowPathBudget, 1);
                if let Some(p) = w.pkts[i].take() {
                    pool.put(p);
                }
                continue;
            }
            upcalls += 1;
            *src = Some(self.miss_recirc(counters, snap, key, &mut flows.local));
        }
        counters.megaflow_hit.add(hits);
        counters.slow_path.add(upcalls as u64);
        group_by_flow(&srcs[..n], &mut flows.groups);
    }

    /// The slow path of a recirculated packet: translate from its table, install the
    /// result in the recirculation cache.
    #[cold]
    #[inline(never)]
    fn miss_recirc(
        &mut self,
        counters: &PmdCounters,
        snap: &Snapshot,
        key: &FlowKey,
        local: &mut ArrayVec<Arc<Translation>, BURST>,
    ) -> Src {
        let table = TableId(key.get(Field::RecircId).saturating_sub(1) as u8);
        let (t, mut wc) = translate_from(&snap.pipeline, table, key);
        wc.set(Field::RecircId, Field::RecircId.full_mask());
        let t = Arc::new(t);
        match self.mf_recirc.insert(key, &wc, Arc::clone(&t)) {
            Some(r) => {
                counters.megaflow_installed.add(1);
                Src::Rc(r)
            }
            None => {
                counters.megaflow_full.add(1);
                local.push(t);
                Src::Local((local.len() - 1) as u8)
            }
        }
    }
}

/// Groups packets by flow into `groups`, keeping arrival order inside each group.
#[inline]
fn group_by_flow(srcs: &[Option<Src>], groups: &mut ArrayVec<(Src, ArrayVec<u8, BURST>), BURST>) {
    for (i, s) in srcs.iter().enumerate() {
        let Some(s) = *s else { continue };
        match groups.iter_mut().rev().find(|(g, _)| *g == s) {
            Some((_, members)) => members.push(i as u8),
            None => {
                let mut m = ArrayVec::new();
                m.push(i as u8);
                groups.push((s, m));
            }
        }
    }
}
