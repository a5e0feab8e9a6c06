//! One poll thread's state and its poll: what [`Pmd::poll_once`] does with every rx queue.
//!
//! What: [`Pmd::poll_once`] polls each rx queue the snapshot assigns to this thread once;
//! each received burst goes through [`Pmd::process_burst`]: the lookup stages
//! (`lookup`: parse, EMC → megaflow → slow path, bounded per burst) group the packets by
//! flow, each group's operations run once over its sub-batch (`execute`), and outputs are
//! staged per port (`output`) so each port
//! transmits one burst. Between bursts it runs packet-outs, serves egress queues, and keeps
//! its caches in line with the pipeline version. The loop around it (spin, back-off,
//! pinning) is [`super::thread`].
//!
//! Thread-safety: a `Pmd` is owned by one thread. It shares only the datapath's snapshot
//! (kept between polls, reloaded when the datapath's snapshot version changes), the MAC
//! table (lock-free), meters (atomics, once per group) and flow counters (relaxed atomics,
//! once per group).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::burst::{Cx, NO_ORIGIN, Work};
use super::capture;
use super::ct::{CtCx, RECIRC_QUEUE, Recirc};
use super::execute::run;
use super::lookup::{Caches, Flows, Src};
use super::mirror;
use super::output::TxStage;
use super::port_config::{self, PortConfig};
use super::shared::Shared;
use super::snapshot::Snapshot;
use super::xlate::{DpAction, PacketInReason, Translation, translate};
use crate::flow::{Field, extract};
use crate::packet::{BufPool, PacketBuf};
use crate::port::BURST;
use crate::port::Batch;
use crate::stats::{DropReason, PmdCounters};
use crate::types::{PortNo, TableId};

/// Megaflow housekeeping period.
const SWEEP_PERIOD_NS: u64 = 100_000_000;

/// One poll thread's state.
pub struct Pmd {
    shared: Arc<Shared>,
    index: usize,
    caches: Caches,
    pool: BufPool,
    counters: Arc<PmdCounters>,
    tx: TxStage,
    last_sweep_ns: u64,
    polls: u64,
    rx: Batch,
    work: Box<Work>,
    /// The burst of recirculated packets being looked up again.
    rwork: Box<Work>,
    /// The tracker handle and the packets queued for recirculation by `ct(table=T)`.
    ct: CtCx,
    /// The recirculation pass being run (swapped with `ct.recirc` per pass).
    recirc_pending: Vec<Recirc>,
    /// Descriptors of this thread's rx queues for `wait_rx`, as of snapshot `fds_version`.
    pollfds: Vec<libc::pollfd>,
    fds_version: u64,
    fds_usable: bool,
    /// The snapshot of version `snap_version`, kept between polls (`None` inside
    /// `poll_once`, which moves it out, and after `release_snapshot`).
    snap: Option<Arc<Snapshot>>,
    snap_version: u64,
}

impl std::fmt::Debug for Pmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pmd")
            .field("megaflows", &self.caches.mf.len())
            .field("pipeline_version", &self.caches.pipeline_version())
            .finish()
    }
}

impl Pmd {
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Pmd {
        let cfg = &shared.config;
        Pmd {
            index,
            caches: Caches::new(cfg),
            pool: BufPool::new(cfg.pool_buffers),
            counters: Arc::new(PmdCounters::default()),
            tx: TxStage::new(),
            last_sweep_ns: 0,
            polls: 0,
            rx: Batch::new(),
            work: Work::new(),
            rwork: Work::new(),
            ct: CtCx::new(),
            recirc_pending: Vec::with_capacity(RECIRC_QUEUE),
            pollfds: Vec::new(),
            fds_version: u64::MAX,
            fds_usable: false,
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
        self.caches.mf.len()
    }

    /// Distinct megaflow masks.
    pub fn megaflow_masks(&self) -> usize {
        self.caches.mf.n_masks()
    }

    /// Polls every rx queue of every port once and processes what arrived. Returns the
    /// number of packets received.
    pub fn poll_once(&mut self) -> usize {
        let snap = self.snapshot();
        self.caches.sync(&snap, &self.counters);
        let mut total = 0;
        for &(slot, q) in snap.rxqs.get(self.index).map_or(&[][..], |v| &v[..]) {
            let slot = slot as usize;
            let n = snap.ports[slot]
                .port
                .rx_burst(q as usize, &mut self.rx, &mut self.pool);
            if n > 0 {
                total += n;
                self.process_rx(&snap, slot);
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
            let in_port = po.in_port.unwrap_or(PortNo::CONTROLLER);
            let Some(b) = PacketBuf::from_frame(&po.frame) else {
                self.counters.count_drop(DropReason::NoBuffer, 1);
                continue;
            };
            let w = &mut *self.work;
            match extract(b.data(), in_port, &mut w.keys[0]) {
                Ok(l) => w.lays[0] = l,
                Err(r) => {
                    self.counters.count_drop(r, 1);
                    continue;
                }
            }
            let t = if po.table {
                translate(&snap.pipeline, &w.keys[0]).0
            } else {
                let ops = po
                    .actions
                    .iter()
                    .map(|a| DpAction::from_action(a, TableId(0), 0, PacketInReason::Action))
                    .collect();
                Translation::from_ops(ops)
            };
            w.pkts[0] = Some(b);
            self.tx.fit(snap);
            let now_ns = self.shared.now_ns();
            let (mut burst, mirrored) = w.burst();
            let mut cx = Cx {
                snap,
                shared: &self.shared,
                pool: &mut self.pool,
                tx: &mut self.tx,
                counters: &self.counters,
                pmd: self.index,
                in_slot,
                in_port,
                now_ns,
                now_s: (now_ns / 1_000_000_000) as u32,
                sent: 0,
                ct: &mut self.ct,
                copies: [0; BURST],
                origin: NO_ORIGIN,
                mirrored,
            };
            mirror::rx_burst(&mut cx, burst.pkts, 1, true);
            run(&t, &mut cx, &mut burst, &[0], 0);
            if let Some(p) = burst.pkts[0].take() {
                cx.pool.put(p);
            }
            cx.tx.flush(snap, cx.pool, cx.counters);
            if !self.ct.recirc.is_empty() {
                self.recirculate(snap);
            }
        }
        n
    }

    #[cold]
    fn housekeeping(&mut self) {
        let now = self.shared.now_ns();
        if now.saturating_sub(self.last_sweep_ns) >= SWEEP_PERIOD_NS {
            self.last_sweep_ns = now;
            self.caches.sweep(&self.counters);
        }
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
        capture::on_rx(&snap.ports[in_slot], &self.rx);
        let config = snap.ports[in_slot].config;
        if config.has(PortConfig::RX) {
            port_config::drop_rx(config, &mut self.rx, &mut self.pool, &self.counters);
            return;
        }
        if let Some(pol) = &snap.ports[in_slot].policer {
            let dropped = pol.police(self.shared.now_ns(), &mut self.rx, &mut self.pool);
            self.counters
                .count_drop(DropReason::IngressPolicer, dropped as u64);
        }
        let w = &mut *self.work;
        w.n = self.rx.len();
        w.in_port = snap.ports[in_slot].no;
        w.from_tunnel = snap.ports[in_slot].tunnel;
        w.tun_local = snap.ports[in_slot].tun_local;
        for (i, mut b) in self.rx.drain(..).enumerate() {
            b.set_queue(0);
            w.pkts[i] = Some(b);
        }
        let mut flows = Flows::new();
        self.caches
            .lookup_burst(snap, w, &mut self.pool, &self.counters, &mut flows);
        self.counters.rx_packets.add(received as u64);
        self.counters.rx_batches.add(1);
        self.execute(snap, in_slot, &flows);
    }

    /// Runs each flow's translation once over its packets, then looks up again (and runs)
    /// what `ct(table=T)` recirculated.
    fn execute(&mut self, snap: &Snapshot, in_slot: usize, flows: &Flows) {
        self.run_flows(snap, in_slot, flows, false);
        if !self.ct.recirc.is_empty() {
            self.recirculate(snap);
        }
    }

    /// Runs each flow's translation once over its packets (of the received burst, or of
    /// the recirculated one when `recirc`), counts them against the flows, returns what
    /// nothing consumed to the pool, and sends what was staged.
    fn run_flows(&mut self, snap: &Snapshot, in_slot: usize, flows: &Flows, recirc: bool) {
        self.tx.fit(snap);
        let now_ns = self.shared.now_ns();
        let w = if recirc {
            &mut *self.rwork
        } else {
            &mut *self.work
        };
        let (n, in_port) = (w.n, w.in_port);
        let (mut b, mirrored) = w.burst();
        let mut cx = Cx {
            snap,
            shared: &self.shared,
            pool: &mut self.pool,
            tx: &mut self.tx,
            counters: &self.counters,
            pmd: self.index,
            in_slot,
            in_port,
            now_ns,
            now_s: (now_ns / 1_000_000_000) as u32,
            sent: 0,
            ct: &mut self.ct,
            copies: [0; BURST],
            origin: NO_ORIGIN,
            mirrored,
        };
        mirror::rx_burst(&mut cx, b.pkts, n, !recirc);
        for (src, members) in &flows.groups {
            let t: &Translation = match *src {
                Src::Mf(r) => match self.caches.mf.get(r) {
                    Some(t) => t,
                    None => continue,
                },
                Src::Rc(r) => match self.caches.mf_recirc.get(r) {
                    Some(t) => t,
                    None => continue,
                },
                Src::Local(j) => &flows.local[j as usize],
            };
            let bytes: u64 = members
                .iter()
                .filter_map(|&m| b.pkts[m as usize].as_ref())
                .map(|p| p.len() as u64)
                .sum();
            let n = members.len() as u64;
            let tables = &cx.counters.tables;
            for rule in t.rules.iter() {
                rule.stats.record(n, bytes, now_ns);
                tables.matched[rule.spec.table.0 as usize].add(n);
            }
            if let Some(table) = t.miss_table {
                tables.missed[table.0 as usize].add(n);
            }
            cx.sent = 0;
            run(t, &mut cx, &mut b, members, 0);
        }
        // Anything left was not consumed by an output: return buffers.
        for p in b.pkts.iter_mut().take(n) {
            if let Some(p) = p.take() {
                cx.pool.put(p);
            }
        }
        cx.tx.flush(snap, cx.pool, cx.counters);
    }

    /// Looks up again, and runs, the packets `ct(table=T)` queued: in bursts of packets
    /// from one ingress port, pass after pass (what a pass queues is the next pass's), at
    /// most `MAX_RECIRC_PASSES` passes; what is still queued then is dropped, counted.
    #[cold]
    #[inline(never)]
    fn recirculate(&mut self, snap: &Snapshot) {
        for _ in 0..MAX_RECIRC_PASSES {
            if self.ct.recirc.is_empty() {
                return;
            }
            std::mem::swap(&mut self.ct.recirc, &mut self.recirc_pending);
            while let Some(first) = self.recirc_pending.first() {
                let in_slot = first.in_slot;
                let k = self
                    .recirc_pending
                    .iter()
                    .take(BURST)
                    .take_while(|r| r.in_slot == in_slot)
                    .count();
                let w = &mut *self.rwork;
                w.n = k;
                w.from_tunnel = false;
                for (i, r) in self.recirc_pending.drain(..k).enumerate() {
                    w.pkts[i] = Some(r.buf);
                    w.keys[i] = r.key;
                    w.lays[i] = r.lay;
                    w.mirrored[i] = r.mirrored;
                }
                w.in_port = PortNo(w.keys[0].get(Field::InPort) as u32);
                let mut flows = Flows::new();
                self.caches
                    .lookup_recirc(snap, w, &mut self.pool, &self.counters, &mut flows);
                self.run_flows(snap, in_slot, &flows, true);
            }
        }
        for r in self.ct.recirc.drain(..) {
            self.counters.count_drop(DropReason::RecircDepth, 1);
            self.pool.put(r.buf);
        }
    }
}

/// Most recirculation passes after one burst (each a `ct(table=T)` deeper).
pub(super) const MAX_RECIRC_PASSES: usize = 8;
