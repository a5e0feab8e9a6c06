//! The handle to a datapath ([`Datapath`]): how the control plane builds one, changes it
//! (transactions over the next snapshot), queues packet-outs, and reads what its poll
//! threads counted.
//!
//! Thread-safety: `Datapath` is `Clone + Send + Sync`; writers serialise on one mutex
//! (never touched by poll threads).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::mirror::{Mirror, MirrorCounts, MirrorError, Mirrors};
use super::pmd::Pmd;
use super::port_config::PortConfig;
use super::shared::{DatapathConfig, ManualClock, PacketIn, PacketOut, Shared};
use super::snapshot::{IdMap, Snapshot};
use super::txn::{DatapathError, Txn};
use crate::classifier::{ChangeSet, FlowMod, Pipeline};
use crate::conntrack::Conntrack;
use crate::group::Group;
use crate::l2::{MacTable, VlanMode};
use crate::meter::Meter;
use crate::port::Port;
use crate::stats::{GroupCounts, PmdCounters, PmdCounts, TableCounts};
use crate::types::{GroupId, MeterId, PortNo};

/// Handle to a datapath. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Datapath {
    shared: Arc<Shared>,
}

impl Datapath {
    /// A datapath with no ports, empty tables, and the receiving end of its packet-in queue.
    pub fn new(config: DatapathConfig) -> (Datapath, Receiver<PacketIn>) {
        Self::build(config, None)
    }

    /// A datapath whose clock is `clock` instead of the monotonic clock.
    pub fn with_clock(
        config: DatapathConfig,
        clock: ManualClock,
    ) -> (Datapath, Receiver<PacketIn>) {
        Self::build(config, Some(clock))
    }

    fn build(
        config: DatapathConfig,
        manual_clock: Option<ManualClock>,
    ) -> (Datapath, Receiver<PacketIn>) {
        let (tx, rx) = sync_channel(config.packet_in_queue);
        let macs = MacTable::new(config.mac_table_size);
        macs.set_aging_s(config.mac_aging_s);
        let snap = Snapshot {
            version: 0,
            pipeline: Pipeline::new(),
            ports: Vec::new(),
            slot_of: Vec::new(),
            qos_slots: Vec::new(),
            n_pmds: 1,
            rxqs: vec![Vec::new()].into(),
            groups: IdMap::default(),
            meters: IdMap::default(),
            history: VecDeque::new(),
            mirrors: Mirrors::default(),
        };
        let shared = Shared {
            snap: ArcSwap::from_pointee(snap),
            snap_version: AtomicU64::new(0),
            write: Mutex::new(()),
            macs,
            packet_in: tx,
            packet_out: crossbeam_queue::ArrayQueue::new(config.packet_in_queue.max(1)),
            config,
            pmds: Mutex::new(Vec::new()),
            retired_tables: Mutex::new(Box::new([TableCounts::default(); 256])),
            epoch: Instant::now(),
            epoch_wall_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            manual_clock,
            ct: OnceLock::new(),
        };
        (
            Datapath {
                shared: Arc::new(shared),
            },
            rx,
        )
    }

    /// The state poll threads share (captures hold it weakly).
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The handle to the datapath whose state is `shared`.
    pub(super) fn from_shared(shared: Arc<Shared>) -> Datapath {
        Datapath { shared }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snap.load_full()
    }

    /// The MAC learning table.
    pub fn mac_table(&self) -> &MacTable {
        &self.shared.macs
    }

    /// Monotonic nanoseconds on the datapath's clock (flow timeouts use it).
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns()
    }

    /// The connection tracker its `ct` actions use (made with the defaults when first
    /// needed). Its clock is [`Datapath::now_ns`] in milliseconds.
    pub fn conntrack(&self) -> Arc<Conntrack> {
        Arc::clone(self.shared.conntrack())
    }

    /// The connection tracker, if a `ct` action (or [`Datapath::conntrack`]) made it.
    pub fn conntrack_if_made(&self) -> Option<Arc<Conntrack>> {
        self.shared.ct.get().cloned()
    }

    /// The tracker's background work ([`Conntrack::maintain`]: an expiry slice of up to
    /// `budget` connections, growth ahead of need, fragment expiry), on the datapath's
    /// clock. Nothing when no tracker was made. Returns connections expired.
    pub fn conntrack_maintain(&self, budget: usize) -> usize {
        match self.shared.ct.get() {
            Some(ct) => ct.maintain(self.now_ns() / 1_000_000, budget),
            None => 0,
        }
    }

    /// Wall-clock seconds when the datapath started (to turn its clock into dates).
    pub fn started_unix_s(&self) -> u64 {
        self.shared.epoch_wall_s
    }

    /// A new poll thread's state, registered so its counters are reported.
    pub fn new_pmd(&self) -> Pmd {
        self.new_pmd_at(0)
    }

    /// A poll thread's state for poll-thread index `index`: it polls the rx queues the
    /// snapshot assigns to that index (see [`Txn::set_pmd_count`]).
    pub fn new_pmd_at(&self, index: usize) -> Pmd {
        let pmd = Pmd::new(Arc::clone(&self.shared), index);
        self.shared.pmds.lock().push(pmd.counters());
        pmd
    }

    /// Counters of every registered poll thread.
    pub fn pmd_counters(&self) -> Vec<Arc<PmdCounters>> {
        self.shared.pmds.lock().clone()
    }

    /// Forgets a poll thread's counters (its thread has stopped).
    pub fn remove_pmd(&self, counters: &Arc<PmdCounters>) {
        let mut pmds = self.shared.pmds.lock();
        if pmds.iter().any(|c| Arc::ptr_eq(c, counters)) {
            counters
                .tables
                .add_to(&mut self.shared.retired_tables.lock());
        }
        pmds.retain(|c| !Arc::ptr_eq(c, counters));
    }

    /// Packets each OpenFlow table looked up and matched (`dump-tables`), indexed by table
    /// number: every poll thread's counts summed, including threads that have stopped.
    /// Packets the caches answered count against the tables their translation went through.
    pub fn table_counts(&self) -> Box<[TableCounts; 256]> {
        let pmds = self.shared.pmds.lock();
        let mut out = self.shared.retired_tables.lock().clone();
        for c in pmds.iter() {
            c.tables.add_to(&mut out);
        }
        out
    }

    /// Packets and bytes through group `id` and each of its buckets (`group-stats`), summed
    /// over the poll threads; `None` when there is no such group.
    pub fn group_counts(&self, id: GroupId) -> Option<GroupCounts> {
        self.shared
            .snap
            .load()
            .groups
            .get(&id)
            .map(|g| g.counters.read())
    }

    /// Copies each port mirror sent and their bytes (Open vSwitch's Mirror statistics
    /// `tx_packets`, `tx_bytes`), summed over the poll threads, in the mirrors' order.
    pub fn mirror_counts(&self) -> Vec<MirrorCounts> {
        self.shared.snap.load().mirrors.counts()
    }

    /// Sets port `no`'s OpenFlow configuration (see [`Txn::set_port_config`]).
    pub fn set_port_config(&self, no: PortNo, config: PortConfig) -> Result<(), DatapathError> {
        self.transaction(|t| t.set_port_config(no, config))
    }

    /// Port `no`'s OpenFlow configuration, `None` for no such port.
    pub fn port_config(&self, no: PortNo) -> Option<PortConfig> {
        let snap = self.shared.snap.load();
        snap.slot(no).map(|s| snap.ports[s].config)
    }

    /// Replaces every port mirror (see [`Txn::set_mirrors`]).
    pub fn set_mirrors(&self, mirrors: Vec<Mirror>) -> Result<(), MirrorError> {
        self.transaction(|t| t.set_mirrors(mirrors))
    }

    /// Every poll thread's counters, read now and summed (megaflows installed, full and
    /// removed, cache flushes, drops by reason, ...): what the datapath as a whole counted
    /// by its running threads.
    pub fn pmd_totals(&self) -> PmdCounts {
        let mut t = PmdCounts::default();
        for c in self.shared.pmds.lock().iter() {
            t.add(&c.read());
        }
        t
    }

    /// Runs `f` on a draft of the next snapshot and publishes the draft if `f` succeeds.
    ///
    /// This is how a control-plane change that spans several kinds of state (flows, groups,
    /// meters, ports) becomes visible at once, and how the daemon makes a change durable
    /// before poll threads see it: `f` stages the change on the [`Txn`], writes it to disk,
    /// and only then returns `Ok`. If `f` fails, nothing is published. Writers serialise
    /// here; poll threads never wait.
    pub fn transaction<T, E>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>) -> Result<T, E> {
        let _guard = self.shared.write.lock();
        let cur = self.shared.snap.load();
        let mut next = Snapshot {
            version: cur.version + 1,
            pipeline: cur.pipeline.clone(),
            ports: cur.ports.clone(),
            slot_of: cur.slot_of.clone(),
            qos_slots: cur.qos_slots.clone(),
            n_pmds: cur.n_pmds,
            rxqs: Arc::clone(&cur.rxqs),
            groups: cur.groups.clone(),
            meters: cur.meters.clone(),
            history: cur.history.clone(),
            mirrors: cur.mirrors.clone(),
        };
        let mut txn = Txn {
            snap: &mut next,
            now_ns: self.shared.now_ns(),
            removed_ports: Vec::new(),
        };
        let out = f(&mut txn)?;
        let removed = std::mem::take(&mut txn.removed_ports);
        let version = next.version;
        self.shared.snap.store(Arc::new(next));
        self.shared.snap_version.store(version, Ordering::Release);
        for no in removed {
            self.shared.macs.flush_port(no);
        }
        Ok(out)
    }

    /// Adds a port.
    pub fn add_port(
        &self,
        no: PortNo,
        port: Arc<dyn Port>,
        vlan: VlanMode,
    ) -> Result<(), DatapathError> {
        self.transaction(|t| t.add_port(no, port, vlan))
    }

    /// Changes a port's VLAN mode and flood setting.
    pub fn set_port_vlan(
        &self,
        no: PortNo,
        vlan: VlanMode,
        flood: bool,
    ) -> Result<(), DatapathError> {
        self.transaction(|t| t.set_port_vlan(no, vlan, flood))
    }

    /// Removes a port and forgets the MAC addresses learned on it.
    pub fn del_port(&self, no: PortNo) -> Result<Arc<dyn Port>, DatapathError> {
        self.transaction(|t| t.del_port(no))
    }

    /// Applies a bundle of flow changes atomically: all become visible at once, or none.
    pub fn flow_mods(&self, mods: &[FlowMod]) -> Result<Arc<ChangeSet>, DatapathError> {
        self.transaction(|t| t.flow_mods(mods).map_err(DatapathError::from))
    }

    /// Removes flows whose idle or hard timeout has passed; returns what was removed.
    pub fn expire_flows(&self) -> Option<Arc<ChangeSet>> {
        self.transaction(|t| t.expire_flows().ok_or(())).ok()
    }

    /// Adds or replaces a group.
    pub fn set_group(&self, group: Group) -> Result<(), DatapathError> {
        self.transaction(|t| t.set_group(group))
    }

    /// Removes a group.
    pub fn del_group(&self, id: GroupId) -> Result<(), DatapathError> {
        self.transaction(|t| t.del_group(id))
    }

    /// Adds or replaces a meter.
    pub fn set_meter(&self, meter: Meter) -> Result<(), DatapathError> {
        self.transaction(|t| t.set_meter(meter))
    }

    /// Removes a meter.
    pub fn del_meter(&self, id: MeterId) -> Result<(), DatapathError> {
        self.transaction(|t| t.del_meter(id))
    }

    /// Queues a packet-out: `frame` runs through `actions` on the next poll of any poll
    /// thread, as if it had arrived on `in_port` (`None`: from the controller, so `in_port`
    /// and `normal` outputs have no ingress port and drop). With [`PacketOut::table`] set it
    /// goes through the flow tables instead.
    pub fn packet_out(&self, out: PacketOut) -> Result<(), DatapathError> {
        if out.frame.len() > crate::packet::MAX_FRAME {
            return Err(DatapathError::FrameTooLong(out.frame.len()));
        }
        self.shared
            .packet_out
            .push(out)
            .map_err(|_| DatapathError::PacketOutQueueFull)
    }
}
