//! One poll thread's packet processing: caches, the burst loop, action execution.
//!
//! What: [`Pmd::poll_once`] polls every port once; each received burst goes through
//! [`Pmd::process_burst`]: extract keys, look up EMC → megaflow → slow path (bounded per
//! burst), group packets by flow, run each group's operations once over its sub-batch, and
//! stage outputs per port so each port transmits one burst.
//!
//! Thread-safety: a `Pmd` is owned by one thread. It shares only the datapath's snapshot
//! (kept between polls, reloaded when the datapath's snapshot version changes), the MAC
//! table (lock-free), meters (atomics, once per group) and flow counters (relaxed atomics,
//! once per group).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;

use arrayvec::ArrayVec;

use super::xlate::{DpAction, PacketInReason, Translation, translate};
use super::{PacketIn, Shared, Snapshot};
use crate::actions::rewrite;
use crate::cache::{Emc, FlowRef, MegaflowCache};
use crate::flow::{Field, FlowKey, Layout, PKT_WORDS, VLAN_CFI, extract, hash_packet, hash_words};
use crate::l2::{egress_tag, ingress_vlan};
use crate::meter::MeterVerdict;
use crate::packet::{BufPool, PacketBuf};
use crate::port::{BURST, Batch};
use crate::stats::{DropReason, PmdCounters};
use crate::types::{MacAddr, PortNo, TableId, VlanId};

/// Deepest chain of groups followed before the packet is dropped.
const MAX_GROUP_DEPTH: u8 = 4;

/// The in_port of a packet-out sent from the controller (OFPP_CONTROLLER).
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// Megaflow housekeeping period.
const SWEEP_PERIOD_NS: u64 = 100_000_000;
/// Megaflows idle for this many sweep periods are removed (10 s).
const MEGAFLOW_IDLE_SWEEPS: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Src {
    Mf(FlowRef),
    Local(u8),
}

/// Output staging: one batch per port slot, flushed when full and at the end of a burst.
struct TxStage {
    batches: Vec<Batch>,
    dirty: Vec<u16>,
}

/// Everything action execution needs, borrowed from the `Pmd` and the snapshot.
struct Cx<'a> {
    snap: &'a Snapshot,
    shared: &'a Shared,
    pool: &'a mut BufPool,
    tx: &'a mut TxStage,
    counters: &'a PmdCounters,
    in_slot: usize,
    in_port: PortNo,
    now_ns: u64,
    now_s: u32,
    sent: u32,
}

/// One poll thread's state.
pub struct Pmd {
    shared: Arc<Shared>,
    index: usize,
    emc: Emc,
    emc_enabled: bool,
    mf: MegaflowCache<Arc<Translation>>,
    pool: BufPool,
    counters: Arc<PmdCounters>,
    pipeline_version: u64,
    tx: TxStage,
    last_sweep_ns: u64,
    polls: u64,
    rx: Batch,
    work: Box<Work>,
    emc_insert_inv_prob: u32,
    rng: u32,
    /// Descriptors of this thread's rx queues for `wait_rx`, as of snapshot `fds_version`.
    pollfds: Vec<libc::pollfd>,
    fds_version: u64,
    fds_usable: bool,
    /// The burst in `rx` came from a tunnel port: `work.tun` holds its metadata.
    rx_tun: bool,
    /// The snapshot of version `snap_version`, kept between polls (`None` inside
    /// `poll_once`, which moves it out, and after `release_snapshot`).
    snap: Option<Arc<Snapshot>>,
    snap_version: u64,
}

/// Per-burst working arrays, allocated once per poll thread (not zeroed per burst).
struct Work {
    /// Tunnel metadata of the burst being processed, when it came from a tunnel port.
    tun: [crate::tunnel::TunMeta; BURST],
    pkts: [Option<PacketBuf>; BURST],
    keys: [FlowKey; BURST],
    lays: [Layout; BURST],
}

impl std::fmt::Debug for Pmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pmd")
            .field("megaflows", &self.mf.len())
            .field("pipeline_version", &self.pipeline_version)
            .finish()
    }
}

impl Pmd {
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Pmd {
        let cfg = &shared.config;
        Pmd {
            index,
            emc: Emc::new(cfg.emc_entries.max(2)),
            emc_enabled: cfg.emc_entries > 0,
            mf: MegaflowCache::new(cfg.megaflow_capacity),
            pool: BufPool::new(cfg.pool_buffers),
            counters: Arc::new(PmdCounters::default()),
            pipeline_version: 0,
            tx: TxStage {
                batches: Vec::new(),
                dirty: Vec::new(),
            },
            last_sweep_ns: 0,
            polls: 0,
            rx: Batch::new(),
            work: Box::new(Work {
                tun: [crate::tunnel::TunMeta::default(); BURST],
                pkts: [const { None }; BURST],
                keys: [FlowKey::ZERO; BURST],
                lays: [Layout::default(); BURST],
            }),
            emc_insert_inv_prob: cfg.emc_insert_inv_prob.max(1),
            rng: 0x2545_f491,
            pollfds: Vec::new(),
            fds_version: u64::MAX,
            fds_usable: false,
            rx_tun: false,
            snap: None,
            snap_version: 0,
            shared,
        }
    }

    /// Waits, up to `timeout`, for one of this thread's rx queues to have packets, on the
    /// ports' descriptors: an idle poll thread wakes within microseconds of traffic instead
    /// of finishing a sleep. Returns at once when there is other work (packet-outs, queued
    /// egress packets). Returns false, without waiting, when some queue has no descriptor
    /// (an in-memory port) or there is no queue at all: the caller sleeps instead.
    pub fn wait_rx(&mut self, timeout: std::time::Duration) -> bool {
        let snap = self.shared.snap.load();
        if snap.version != self.fds_version {
            self.fds_version = snap.version;
            self.pollfds.clear();
            self.fds_usable = true;
            for &(slot, q) in snap.rxqs.get(self.index).map_or(&[][..], |v| &v[..]) {
                match snap.ports[slot as usize].port.rx_fd(q as usize) {
                    Some(fd) => self.pollfds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    }),
                    None => self.fds_usable = false,
                }
            }
        }
        if !self.fds_usable || self.pollfds.is_empty() {
            return false;
        }
        if !self.shared.packet_out.is_empty()
            || snap
                .qos_slots
                .iter()
                .any(|&s| snap.ports[s].qos.as_ref().is_some_and(|q| q.backlog() > 0))
        {
            return true;
        }
        // In-process rings arm their doorbells (and say when they already hold packets).
        for &(slot, q) in snap.rxqs.get(self.index).map_or(&[][..], |v| &v[..]) {
            if !snap.ports[slot as usize].port.arm_rx(q as usize) {
                return true;
            }
        }
        // The snapshot keeps the ports, and so their descriptors, open during the wait.
        crate::port::wait_readable(&mut self.pollfds, timeout);
        drop(snap);
        true
    }

    /// True when no rx queue is assigned to this poll thread now.
    pub fn rxqs_empty(&self) -> bool {
        self.shared
            .snap
            .load()
            .rxqs
            .get(self.index)
            .is_none_or(|l| l.is_empty())
    }

    /// This poll thread's index among the datapath's poll threads.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The rx queues this poll thread polls now: (port, queue).
    pub fn rxqs(&self) -> Vec<(PortNo, usize)> {
        let snap = self.shared.snap.load();
        snap.rxqs
            .get(self.index)
            .map(|l| {
                l.iter()
                    .map(|&(s, q)| (snap.ports[s as usize].no, q as usize))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// This thread's counters (shared with readers).
    pub fn counters(&self) -> Arc<PmdCounters> {
        Arc::clone(&self.counters)
    }

    /// Megaflows cached.
    pub fn megaflow_count(&self) -> usize {
        self.mf.len()
    }

    /// Distinct megaflow masks.
    pub fn megaflow_masks(&self) -> usize {
        self.mf.n_masks()
    }

    /// Polls every rx queue of every port once and processes what arrived. Returns the
    /// number of packets received.
    pub fn poll_once(&mut self) -> usize {
        let snap = self.snapshot();
        self.sync(&snap);
        let mut total = 0;
        for &(slot, q) in snap.rxqs.get(self.index).map_or(&[][..], |v| &v[..]) {
            let slot = slot as usize;
            let e = &snap.ports[slot];
            // Only tunnel ports (a flag in the entry) are asked for their tunnel side.
            let tunnel = if e.tunnel { e.port.as_tunnel() } else { None };
            let n = match tunnel {
                None => e.port.rx_burst(q as usize, &mut self.rx, &mut self.pool),
                Some(t) => {
                    let n = t.rx_burst_meta(&mut self.rx, &mut self.work.tun);
                    self.rx_tun = n > 0;
                    n
                }
            };
            if n > 0 {
                total += n;
                self.process_rx(&snap, slot);
                self.rx_tun = false;
            }
        }
        if !self.shared.packet_out.is_empty() {
            total += self.packet_outs(&snap);
        }
        if !snap.qos_slots.is_empty() {
            total += self.service_queues(&snap);
        }
        self.polls += 1;
        if self.polls.is_multiple_of(1024) {
            self.housekeeping();
        }
        self.snap = Some(snap);
        total
    }

    /// The current snapshot, moved out of `self.snap` (the caller puts it back). Reloaded
    /// only when the datapath published a newer one: checking costs one load of a word
    /// that changes only with the configuration, where a load from the `ArcSwap` costs
    /// several atomic read-modify-writes per poll. The version is stored after the
    /// snapshot, so the snapshot loaded is at least as new as the version read.
    #[inline]
    fn snapshot(&mut self) -> Arc<Snapshot> {
        let v = self.shared.snap_version.load(Ordering::Acquire);
        match self.snap.take() {
            Some(s) if v == self.snap_version => s,
            _ => {
                self.snap_version = v;
                self.shared.snap.load_full()
            }
        }
    }

    /// Lets go of the snapshot kept between polls, before the thread backs off: ports
    /// removed meanwhile are then freed by the control plane at once, not when this thread
    /// next polls.
    pub fn release_snapshot(&mut self) {
        self.snap = None;
    }

    /// Polls until every port's rx ring is empty (tests and benchmarks).
    pub fn poll_until_idle(&mut self) -> usize {
        let mut total = 0;
        loop {
            let n = self.poll_once();
            if n == 0 {
                return total;
            }
            total += n;
        }
    }

    /// Sends what the egress shapers allow from the ports' queues. Returns packets sent.
    fn service_queues(&mut self, snap: &Snapshot) -> usize {
        let now = self.shared.now_ns();
        let mut n = 0;
        for &slot in &snap.qos_slots {
            let e = &snap.ports[slot];
            if let Some(q) = &e.qos
                && q.backlog() > 0
            {
                n += q.service(now, &*e.port, &mut self.pool);
            }
        }
        n
    }

    /// Runs queued packet-outs (the controller's packets) through their actions.
    #[cold]
    #[inline(never)]
    fn packet_outs(&mut self, snap: &Snapshot) -> usize {
        let mut n = 0;
        while let Some(po) = self.shared.packet_out.pop() {
            n += 1;
            let in_slot = po.in_port.and_then(|p| snap.slot(p)).unwrap_or(usize::MAX);
            let in_port = po.in_port.unwrap_or(PortNo(OFPP_CONTROLLER));
            let Some(b) = PacketBuf::from_frame(&po.frame) else {
                self.counters.count_drop(DropReason::NoBuffer, 1);
                continue;
            };
            let Work {
                pkts, keys, lays, ..
            } = &mut *self.work;
            match extract(b.data(), in_port, &mut keys[0]) {
                Ok(l) => lays[0] = l,
                Err(r) => {
                    self.counters.count_drop(r, 1);
                    continue;
                }
            }
            let t = if po.table {
                translate(&snap.pipeline, &keys[0]).0
            } else {
                let ops = po
                    .actions
                    .iter()
                    .map(|a| DpAction::from_action(a, TableId(0), 0, PacketInReason::Action))
                    .collect();
                Translation::from_ops(ops)
            };
            pkts[0] = Some(b);
            if self.tx.batches.len() < snap.ports.len() {
                self.tx.batches.resize_with(snap.ports.len(), Batch::new);
            }
            let now_ns = self.shared.now_ns();
            let mut cx = Cx {
                snap,
                shared: &self.shared,
                pool: &mut self.pool,
                tx: &mut self.tx,
                counters: &self.counters,
                in_slot,
                in_port,
                now_ns,
                now_s: (now_ns / 1_000_000_000) as u32,
                sent: 0,
            };
            run(&t, &mut cx, pkts, keys, lays, &[0], 0);
            if let Some(p) = pkts[0].take() {
                cx.pool.put(p);
            }
            flush(&mut cx);
        }
        n
    }

    #[cold]
    fn housekeeping(&mut self) {
        let now = self.shared.now_ns();
        if now.saturating_sub(self.last_sweep_ns) >= SWEEP_PERIOD_NS {
            self.last_sweep_ns = now;
            let removed = self.mf.sweep(MEGAFLOW_IDLE_SWEEPS);
            self.counters.megaflow_removed.add(removed as u64);
        }
    }

    /// Brings the caches in line with the snapshot's pipeline version.
    fn sync(&mut self, snap: &Snapshot) {
        let v = snap.pipeline.version();
        if v != self.pipeline_version {
            self.sync_slow(snap, v);
        }
    }

    #[cold]
    fn sync_slow(&mut self, snap: &Snapshot, v: u64) {
        let touched: Option<Vec<_>> = snap.changes_since(self.pipeline_version).map(|v| {
            v.iter()
                .flat_map(|cs| cs.touched().collect::<Vec<_>>())
                .collect()
        });
        match touched {
            Some(touched) => {
                let removed = self.mf.remove_if(|mk, mm, t| {
                    touched.iter().any(|(table, rk, rm)| {
                        t.visited(*table)
                            && (t.rewritten
                                || (0..PKT_WORDS)
                                    .all(|i| (mk.w[i] ^ rk.w[i]) & mm.w[i] & rm.w[i] == 0))
                    })
                });
                self.counters.megaflow_removed.add(removed as u64);
            }
            None => {
                self.mf.clear();
                self.counters.cache_flush.add(1);
            }
        }
        self.pipeline_version = v;
    }

    /// Processes one received burst from the port in `in_slot` of `snap`.
    pub fn process_burst(&mut self, snap: &Snapshot, in_slot: usize, batch: &mut Batch) {
        self.rx.extend(batch.drain(..));
        self.process_rx(snap, in_slot);
    }

    /// Processes the burst in `self.rx`.
    fn process_rx(&mut self, snap: &Snapshot, in_slot: usize) {
        let received = self.rx.len();
        if received == 0 {
            return;
        }
        let in_port = snap.ports[in_slot].no;
        if let Some(pol) = &snap.ports[in_slot].policer {
            let dropped = pol.police(self.shared.now_ns(), &mut self.rx, &mut self.pool);
            self.counters
                .count_drop(DropReason::IngressPolicer, dropped as u64);
        }
        let n = self.rx.len();
        let rx_tun = self.rx_tun;
        let Work {
            pkts,
            keys,
            lays,
            tun,
        } = &mut *self.work;
        for (i, mut b) in self.rx.drain(..).enumerate() {
            b.set_queue(0);
            pkts[i] = Some(b);
        }
        let mut srcs: [Option<Src>; BURST] = [None; BURST];
        let mut local: ArrayVec<Arc<Translation>, BURST> = ArrayVec::new();
        let (mut emc_hit, mut mf_hit, mut upcalls) = (0u64, 0u64, 0usize);

        // Stage 1: parse and hash every packet. Independent work per packet, so the CPU
        // overlaps it; the cache lookups below then find their keys ready.
        let mut hashes = [0u64; BURST];
        let mut parsed = [false; BURST];
        // With a single megaflow mask the megaflow cache answers in one probe that hashes
        // and compares only the mask's words: cheaper than the EMC's hash and compare of all
        // 13 packet words, so the EMC is skipped (and not filled) until there are more.
        let use_emc = self.emc_enabled && self.mf.n_masks() != 1;
        for i in 0..n {
            let Some(p) = pkts[i].as_ref() else { continue };
            match extract(p.data(), in_port, &mut keys[i]) {
                Ok(l) => {
                    lays[i] = l;
                    parsed[i] = true;
                    if rx_tun {
                        let t = &tun[i];
                        keys[i].set(Field::TunId, t.id as u128);
                        keys[i].set(Field::TunSrc, u32::from(t.src) as u128);
                        keys[i].set(Field::TunDst, u32::from(t.dst) as u128);
                    }
                    if use_emc {
                        hashes[i] = hash_packet(&keys[i]);
                    }
                }
                Err(r) => {
                    self.counters.count_drop(r, 1);
                    if let Some(p) = pkts[i].take() {
                        self.pool.put(p);
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
                // Insert with probability 1/emc_insert_inv_prob, so a flood of short flows
                // does not thrash the exact-match cache (as OVS's emc-insert-inv-prob).
                if use_emc {
                    self.rng ^= self.rng << 13;
                    self.rng ^= self.rng >> 17;
                    self.rng ^= self.rng << 5;
                    if self.rng.is_multiple_of(self.emc_insert_inv_prob) {
                        let mf = &self.mf;
                        self.emc.insert(key, h, r, |f| mf.is_live(f));
                    }
                }
                srcs[i] = Some(Src::Mf(r));
                continue;
            }
            if upcalls >= self.shared.config.slow_path_budget {
                self.counters.count_drop(DropReason::SlowPathBudget, 1);
                if let Some(p) = pkts[i].take() {
                    self.pool.put(p);
                }
                continue;
            }
            upcalls += 1;
            srcs[i] = Some(Self::miss(
                &mut self.mf,
                &mut self.emc,
                use_emc,
                &self.counters,
                snap,
                key,
                h,
                &mut local,
            ));
        }
        self.counters.rx_packets.add(received as u64);
        self.counters.rx_batches.add(1);
        self.counters.emc_hit.add(emc_hit);
        self.counters.megaflow_hit.add(mf_hit);
        self.counters.slow_path.add(upcalls as u64);

        // Group packets by flow, keeping arrival order inside each group.
        let mut groups: ArrayVec<(Src, ArrayVec<u8, BURST>), BURST> = ArrayVec::new();
        for (i, s) in srcs.iter().enumerate().take(n) {
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

        let now_ns = self.shared.now_ns();
        if self.tx.batches.len() < snap.ports.len() {
            self.tx.batches.resize_with(snap.ports.len(), Batch::new);
        }
        let mut cx = Cx {
            snap,
            shared: &self.shared,
            pool: &mut self.pool,
            tx: &mut self.tx,
            counters: &self.counters,
            in_slot,
            in_port,
            now_ns,
            now_s: (now_ns / 1_000_000_000) as u32,
            sent: 0,
        };
        for (src, members) in &groups {
            let t: &Translation = match *src {
                Src::Mf(r) => match self.mf.get(r) {
                    Some(t) => t,
                    None => continue,
                },
                Src::Local(j) => &local[j as usize],
            };
            let bytes: u64 = members
                .iter()
                .filter_map(|&m| pkts[m as usize].as_ref())
                .map(|p| p.len() as u64)
                .sum();
            for rule in t.rules.iter() {
                rule.stats.record(members.len() as u64, bytes, now_ns);
            }
            cx.sent = 0;
            run(t, &mut cx, pkts, keys, lays, members, 0);
        }
        // Anything left was not consumed by an output: return buffers.
        for p in pkts.iter_mut().take(n) {
            if let Some(p) = p.take() {
                cx.pool.put(p);
            }
        }
        flush(&mut cx);
    }

    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn miss(
        mf: &mut MegaflowCache<Arc<Translation>>,
        emc: &mut Emc,
        emc_enabled: bool,
        counters: &PmdCounters,
        snap: &Snapshot,
        key: &FlowKey,
        h: u64,
        local: &mut ArrayVec<Arc<Translation>, BURST>,
    ) -> Src {
        let (t, wc) = translate(&snap.pipeline, key);
        let t = Arc::new(t);
        match mf.insert(key, &wc, Arc::clone(&t)) {
            Some(r) => {
                counters.megaflow_installed.add(1);
                if emc_enabled {
                    let mf = &*mf;
                    emc.insert(key, h, r, |f| mf.is_live(f));
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

#[inline]
fn bit(m: u8) -> u32 {
    1u32 << (m as u32 & 31)
}

/// Drops packet `m` for `reason`.
#[inline]
fn drop_pkt(cx: &mut Cx<'_>, pkts: &mut [Option<PacketBuf>], m: usize, reason: DropReason) {
    if let Some(p) = pkts[m].take() {
        cx.counters.count_drop(reason, 1);
        cx.pool.put(p);
    }
}

/// The tunnel destination and key packet `m` carries to a flow-based tunnel port: what its
/// key says (`set_field:...->tun_dst`, `->tun_id`).
#[inline]
fn tun_of(key: &FlowKey) -> (u32, u32) {
    (key.get(Field::TunDst) as u32, key.get(Field::TunId) as u32)
}

/// Stages packet `m` for the port in `slot`: moved when `take`, else copied.
#[inline]
fn emit(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    key: &FlowKey,
    m: usize,
    slot: usize,
    take: bool,
) {
    emit_tun(cx, pkts, m, slot, take, || tun_of(key));
}

/// [`emit`] with the tunnel destination and key given by `tun`, asked only when `slot` is a
/// flow-based tunnel port (other outputs never read them).
#[inline]
fn emit_tun(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    m: usize,
    slot: usize,
    take: bool,
    tun: impl FnOnce() -> (u32, u32),
) {
    let mut b = if take {
        match pkts[m].take() {
            Some(b) => b,
            None => return,
        }
    } else {
        let Some(src) = pkts[m].as_ref() else { return };
        let Some(mut b) = cx.pool.get() else {
            cx.counters.count_drop(DropReason::NoBuffer, 1);
            return;
        };
        b.copy_from(src);
        b
    };
    if cx.snap.ports[slot].flow_tunnel {
        let (dst, id) = tun();
        b.set_tun_out(dst, id);
    }
    cx.sent |= bit(m as u8);
    stage(cx, slot, b);
}

#[inline]
fn stage(cx: &mut Cx<'_>, slot: usize, b: PacketBuf) {
    let batch = &mut cx.tx.batches[slot];
    if batch.is_empty() {
        cx.tx.dirty.push(slot as u16);
    }
    batch.push(b);
    if batch.is_full() {
        let n = batch.len() as u64;
        send(cx.snap, slot, batch, cx.pool, cx.counters);
        cx.counters.tx_packets.add(n);
        // Still listed as dirty; an empty batch flushes as a no-op.
    }
}

/// Hands `batch` to the port in `slot`: straight to the port, or to its egress queues when it
/// has them (the poll loop sends from there at the port's rate).
#[inline]
fn send(snap: &Snapshot, slot: usize, batch: &mut Batch, pool: &mut BufPool, c: &PmdCounters) {
    let e = &snap.ports[slot];
    match &e.qos {
        None => e.port.tx_burst(batch, pool),
        Some(q) => {
            let dropped = q.enqueue(batch, pool);
            c.count_drop(DropReason::QueueFull, dropped as u64);
        }
    }
}

fn flush(cx: &mut Cx<'_>) {
    while let Some(slot) = cx.tx.dirty.pop() {
        let batch = &mut cx.tx.batches[slot as usize];
        if !batch.is_empty() {
            let n = batch.len() as u64;
            send(cx.snap, slot as usize, batch, cx.pool, cx.counters);
            cx.counters.tx_packets.add(n);
        }
    }
}

/// Runs a translation over the packets `members` of `pkts`.
fn run(
    t: &Translation,
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    keys: &mut [FlowKey],
    lays: &mut [Layout],
    members: &[u8],
    depth: u8,
) {
    // The most common translations, one output port, metered or not: move the whole group
    // at once.
    let (fast_port, meter_id) = match *t.ops {
        [DpAction::Output(port)] => (Some(port), None),
        [DpAction::Meter(id), DpAction::Output(port)] => (Some(port), Some(id)),
        _ => (None, None),
    };
    if let Some(port) = fast_port
        && let Some(slot) = cx.snap.slot(port)
        && slot != cx.in_slot
    {
        if let Some(id) = meter_id {
            meter(cx, pkts, keys, lays, members, id);
        }
        let flow_tunnel = cx.snap.ports[slot].flow_tunnel;
        let batch = &mut cx.tx.batches[slot];
        if batch.is_empty() {
            cx.tx.dirty.push(slot as u16);
        }
        for &m in members {
            let Some(mut b) = pkts[m as usize].take() else {
                continue;
            };
            if flow_tunnel {
                let (dst, id) = tun_of(&keys[m as usize]);
                b.set_tun_out(dst, id);
            }
            if batch.is_full() {
                let n = batch.len() as u64;
                send(cx.snap, slot, batch, cx.pool, cx.counters);
                cx.counters.tx_packets.add(n);
            }
            batch.push(b);
        }
        return;
    }
    for (i, op) in t.ops.iter().enumerate() {
        let take = i == t.last_emit;
        match *op {
            DpAction::Output(port) => match cx.snap.slot(port) {
                Some(slot) if slot != cx.in_slot => {
                    for &m in members {
                        emit(cx, pkts, &keys[m as usize], m as usize, slot, take);
                    }
                }
                Some(_) => {}
                None => {
                    for &m in members {
                        drop_pkt(cx, pkts, m as usize, DropReason::NoSuchPort);
                    }
                }
            },
            DpAction::InPort => {
                for &m in members {
                    if cx.in_slot < cx.snap.ports.len() {
                        emit(cx, pkts, &keys[m as usize], m as usize, cx.in_slot, take);
                    } else {
                        drop_pkt(cx, pkts, m as usize, DropReason::NoSuchPort);
                    }
                }
            }
            DpAction::Flood | DpAction::All => {
                let all = matches!(op, DpAction::All);
                let eligible =
                    |s: usize, cx: &Cx<'_>| s != cx.in_slot && (all || cx.snap.ports[s].flood);
                let last = (0..cx.snap.ports.len()).rev().find(|&s| eligible(s, cx));
                if let Some(last) = last {
                    for s in 0..=last {
                        if eligible(s, cx) {
                            for &m in members {
                                emit(
                                    cx,
                                    pkts,
                                    &keys[m as usize],
                                    m as usize,
                                    s,
                                    take && s == last,
                                );
                            }
                        }
                    }
                }
            }
            DpAction::Normal => {
                for &m in members {
                    normal(cx, pkts, keys, lays, m as usize, take);
                }
            }
            DpAction::Controller {
                reason,
                table,
                cookie,
                max_len,
            } => {
                for &m in members {
                    let m = m as usize;
                    let Some(p) = pkts[m].as_ref() else { continue };
                    let len = p.len().min(max_len as usize);
                    let pi = PacketIn {
                        in_port: cx.in_port,
                        reason,
                        table,
                        cookie,
                        key: keys[m],
                        total_len: p.len(),
                        data: p.data()[..len].to_vec(),
                    };
                    match cx.shared.packet_in.try_send(pi) {
                        Ok(()) => cx.sent |= bit(m as u8),
                        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                            cx.counters.count_drop(DropReason::PacketInQueueFull, 1);
                        }
                    }
                    if take && let Some(p) = pkts[m].take() {
                        cx.pool.put(p);
                    }
                }
            }
            DpAction::SetField(field, value) => {
                for &m in members {
                    let m = m as usize;
                    if let Some(p) = pkts[m].as_mut() {
                        rewrite::set_field(p, &mut keys[m], &lays[m], field, value);
                    }
                }
            }
            DpAction::SetFieldMasked(field, value, mask) => {
                for &m in members {
                    let m = m as usize;
                    if let Some(p) = pkts[m].as_mut() {
                        let v = (keys[m].get(field) & !mask) | (value & mask);
                        rewrite::set_field(p, &mut keys[m], &lays[m], field, v);
                    }
                }
            }
            DpAction::PushVlan(tpid) => {
                for &m in members {
                    let m = m as usize;
                    if let Some(p) = pkts[m].as_mut()
                        && let Err(r) = rewrite::push_vlan(p, &mut keys[m], &mut lays[m], tpid)
                    {
                        drop_pkt(cx, pkts, m, r);
                    }
                }
            }
            DpAction::SetQueue(q) => {
                for &m in members {
                    if let Some(p) = pkts[m as usize].as_mut() {
                        p.set_queue(q);
                    }
                }
            }
            DpAction::PopVlan => {
                for &m in members {
                    let m = m as usize;
                    if let Some(p) = pkts[m].as_mut() {
                        rewrite::pop_vlan(p, &mut keys[m], &mut lays[m]);
                    }
                }
            }
            DpAction::DecTtl => {
                for &m in members {
                    let m = m as usize;
                    if let Some(p) = pkts[m].as_mut()
                        && let Err(r) = rewrite::dec_ttl(p, &mut keys[m], &lays[m])
                    {
                        drop_pkt(cx, pkts, m, r);
                    }
                }
            }
            DpAction::Meter(id) => meter(cx, pkts, keys, lays, members, id),
            DpAction::Group(id) => group(cx, pkts, keys, lays, members, id, take, depth),
        }
    }
    // Packets nothing sent anywhere are this translation's drops.
    for &m in members {
        if cx.sent & bit(m) == 0 && pkts[m as usize].is_some() {
            cx.counters.count_drop(t.drop_reason, 1);
            if let Some(p) = pkts[m as usize].take() {
                cx.pool.put(p);
            }
        }
    }
}

fn meter(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    keys: &mut [FlowKey],
    lays: &mut [Layout],
    members: &[u8],
    id: crate::types::MeterId,
) {
    let Some(meter) = cx.snap.meters.get(&id) else {
        for &m in members {
            drop_pkt(cx, pkts, m as usize, DropReason::NoSuchMeter);
        }
        return;
    };
    let mut lens: ArrayVec<u32, BURST> = ArrayVec::new();
    let mut idx: ArrayVec<u8, BURST> = ArrayVec::new();
    for &m in members {
        if let Some(p) = pkts[m as usize].as_ref() {
            lens.push(p.len() as u32);
            idx.push(m);
        }
    }
    let mut verdicts = [MeterVerdict::Pass; BURST];
    meter.apply_batch(cx.now_ns, &lens, &mut verdicts[..lens.len()]);
    for (k, &m) in idx.iter().enumerate() {
        let m = m as usize;
        match verdicts[k] {
            MeterVerdict::Pass => {}
            MeterVerdict::Drop => drop_pkt(cx, pkts, m, DropReason::Meter),
            MeterVerdict::RemarkDscp(prec) => {
                if let Some(p) = pkts[m].as_mut() {
                    let tos = keys[m].get(Field::IpTos) as u8;
                    let dscp = tos >> 2;
                    // AF classes (AFxy, dscp = 8x + 2y): raise the drop precedence y.
                    if dscp & 0x31 == 0 && dscp & 0x0e != 0 {
                        let y = ((dscp >> 1) & 3).saturating_add(prec).min(3);
                        let new = (dscp & !0x06) | (y << 1);
                        rewrite::set_field(
                            p,
                            &mut keys[m],
                            &lays[m],
                            Field::IpTos,
                            ((new << 2) | (tos & 3)) as u128,
                        );
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn group(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    keys: &mut [FlowKey],
    lays: &mut [Layout],
    members: &[u8],
    id: crate::types::GroupId,
    take: bool,
    depth: u8,
) {
    let snap = cx.snap;
    let Some(g) = snap.groups.get(&id).filter(|_| depth < MAX_GROUP_DEPTH) else {
        for &m in members {
            drop_pkt(cx, pkts, m as usize, DropReason::NoSuchGroup);
        }
        return;
    };
    let outer_sent = cx.sent;
    for &m in members {
        let m = m as usize;
        if pkts[m].is_none() {
            continue;
        }
        let chosen: ArrayVec<usize, 64> = match g.group.kind {
            crate::group::GroupKind::All => (0..g.buckets.len().min(64)).collect(),
            _ => {
                let h = hash_words(&keys[m].w[1..9], 0x005e_1ec7);
                g.group.select(h).into_iter().collect()
            }
        };
        let Some(&last) = chosen.last() else {
            drop_pkt(cx, pkts, m, DropReason::NoSuchGroup);
            continue;
        };
        for &b in &chosen {
            let mut one: [Option<PacketBuf>; 1] = [None];
            if take && b == last {
                one[0] = pkts[m].take();
            } else if let Some(src) = pkts[m].as_ref() {
                match cx.pool.get() {
                    Some(mut c) => {
                        c.copy_from(src);
                        one[0] = Some(c);
                    }
                    None => {
                        cx.counters.count_drop(DropReason::NoBuffer, 1);
                        continue;
                    }
                }
            }
            let mut k = [keys[m]];
            let mut l = [lays[m]];
            cx.sent = 0;
            run(&g.buckets[b], cx, &mut one, &mut k, &mut l, &[0], depth + 1);
            if cx.sent & 1 != 0 {
                cx.sent = outer_sent | bit(m as u8);
            } else {
                cx.sent = outer_sent;
            }
        }
    }
}

/// The `normal` action for packet `m`: learn the source, then forward to the learned port or
/// flood within the VLAN, fixing the tag for each egress port's VLAN mode.
fn normal(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    keys: &mut [FlowKey],
    lays: &mut [Layout],
    m: usize,
    take: bool,
) {
    if pkts[m].is_none() {
        return;
    }
    let key = &keys[m];
    let tci = key.get(Field::VlanTci) as u16;
    let tagged = (tci & VLAN_CFI != 0).then_some(VlanId(tci & 0x0fff));
    let Some(in_entry) = cx.snap.ports.get(cx.in_slot) else {
        // A packet-out from the controller has no ingress port to learn on.
        drop_pkt(cx, pkts, m, DropReason::NoSuchPort);
        return;
    };
    let Some(vlan) = ingress_vlan(&in_entry.vlan, tagged) else {
        drop_pkt(cx, pkts, m, DropReason::VlanNotAllowed);
        return;
    };
    let src = MacAddr::from_u64(key.get(Field::EthSrc) as u64);
    let dst = MacAddr::from_u64(key.get(Field::EthDst) as u64);
    // Behind a flow-based tunnel port, a station is learned with the remote (and key) it
    // came from, so that unicasts to it go back there.
    let learned_tun = if in_entry.flow_tunnel {
        let (src_ip, id) = (key.get(Field::TunSrc) as u32, key.get(Field::TunId) as u32);
        cx.shared.macs.tun_sources.intern(src_ip.into(), id)
    } else {
        0
    };
    cx.shared
        .macs
        .learn_tun(vlan, src, cx.in_port, learned_tun, cx.now_s);
    if !dst.is_multicast()
        && let Some((port, t)) = cx.shared.macs.lookup_tun(vlan, dst, cx.now_s)
    {
        match cx.snap.slot(port) {
            Some(s) if s == cx.in_slot => drop_pkt(cx, pkts, m, DropReason::NormalSamePort),
            Some(s) => {
                let tun = match t {
                    0 => tun_of(&keys[m]),
                    t => learned_remote(cx, t, &keys[m]),
                };
                normal_out(cx, pkts, keys, lays, m, s, vlan, tagged, take, tun)
            }
            None => drop_pkt(cx, pkts, m, DropReason::NoSuchPort),
        }
        return;
    }
    // Split horizon: what came from a tunnel is never flooded into another tunnel.
    let from_tunnel = in_entry.tunnel;
    let carries = |s: usize, cx: &Cx<'_>| {
        s != cx.in_slot
            && cx.snap.ports[s].flood
            && !(from_tunnel && cx.snap.ports[s].tunnel)
            && egress_tag(&cx.snap.ports[s].vlan, vlan).is_some()
    };
    let Some(last) = (0..cx.snap.ports.len()).rev().find(|&s| carries(s, cx)) else {
        return;
    };
    // A flow-based tunnel port gets what the flows chose (a flood to a `remote_ip=flow`
    // port without a chosen `tun_dst` is dropped there, as `tunnel_no_dst`).
    let tun = tun_of(&keys[m]);
    for s in 0..=last {
        if carries(s, cx) {
            normal_out(
                cx,
                pkts,
                keys,
                lays,
                m,
                s,
                vlan,
                tagged,
                take && s == last,
                tun,
            );
        }
    }
}

/// The tunnel destination and key of a station learned behind a flow-based tunnel port.
fn learned_remote(cx: &Cx<'_>, t: u16, key: &FlowKey) -> (u32, u32) {
    match cx.shared.macs.tun_sources.get(t) {
        Some((ip, id)) => (u32::from(ip), id),
        None => tun_of(key),
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn normal_out(
    cx: &mut Cx<'_>,
    pkts: &mut [Option<PacketBuf>],
    keys: &[FlowKey],
    lays: &[Layout],
    m: usize,
    slot: usize,
    vlan: VlanId,
    tagged: Option<VlanId>,
    take: bool,
    tun: (u32, u32),
) {
    let Some(want) = egress_tag(&cx.snap.ports[slot].vlan, vlan) else {
        return;
    };
    if want == tagged {
        emit_tun(cx, pkts, m, slot, take, || tun);
        return;
    }
    let mut b = if take {
        match pkts[m].take() {
            Some(b) => b,
            None => return,
        }
    } else {
        let Some(src) = pkts[m].as_ref() else { return };
        let Some(mut b) = cx.pool.get() else {
            cx.counters.count_drop(DropReason::NoBuffer, 1);
            return;
        };
        b.copy_from(src);
        b
    };
    let (mut k, mut l) = (keys[m], lays[m]);
    match rewrite::retag(&mut b, &mut k, &mut l, want.map(|v| v.0)) {
        Ok(()) => {
            if cx.snap.ports[slot].flow_tunnel {
                b.set_tun_out(tun.0, tun.1);
            }
            cx.sent |= bit(m as u8);
            stage(cx, slot, b);
        }
        Err(r) => {
            cx.counters.count_drop(r, 1);
            cx.pool.put(b);
        }
    }
}
