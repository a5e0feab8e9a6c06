//! The datapath: its shared state, the snapshot poll threads read, and the control API.
//!
//! What: [`Datapath`] owns everything poll threads share: the current [`Snapshot`] behind an
//! atomic pointer, the MAC table, the packet-in queue. Control-plane changes (ports, flow
//! bundles, groups, meters) build a new snapshot and publish it with one atomic store; poll
//! threads load it once per burst and never take a lock. Flow bundles are atomic: the new
//! pipeline version carries all of a bundle's changes or none.
//!
//! Caches are per poll thread ([`Pmd`]); each snapshot carries the recent history of flow
//! changes, and a poll thread that sees a newer pipeline version removes just the megaflows
//! those changes affect (or flushes everything if it fell behind the history).
//!
//! Thread-safety: `Datapath` is `Clone + Send + Sync`; writers serialise on one mutex (never
//! touched by poll threads); readers load the snapshot lock-free.

mod burst;
mod execute;
mod lookup;
mod normal;
mod output;
pub mod pmd;
pub mod thread;
pub mod xlate;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::actions::Action;
use crate::classifier::{BundleError, ChangeSet, FlowMod, Pipeline};
use crate::flow::FlowKey;
use crate::group::Group;
use crate::l2::{MacTable, VlanMode};
use crate::meter::Meter;
use crate::port::Port;
use crate::qos::{EgressQos, Policer};
use crate::stats::PmdCounters;
use crate::types::{GroupId, MeterId, PortNo, TableId};

pub use pmd::Pmd;
pub use thread::{PmdThread, usable_cpus};
pub use xlate::{DpAction, PacketInReason, Translation, translate};

/// How many recent flow-change sets a snapshot keeps for poll threads catching up.
const HISTORY_LEN: usize = 64;

/// Datapath-wide settings.
#[derive(Clone, Debug)]
pub struct DatapathConfig {
    /// Most MAC addresses the learning table holds.
    pub mac_table_size: usize,
    /// MAC aging time in seconds.
    pub mac_aging_s: u32,
    /// Most megaflows per poll thread.
    pub megaflow_capacity: usize,
    /// Exact-match cache entries per poll thread (0 disables it).
    pub emc_entries: usize,
    /// A megaflow hit is copied into the exact-match cache with probability 1/N.
    pub emc_insert_inv_prob: u32,
    /// Most packets per burst that may take the slow path; the rest are dropped and counted.
    pub slow_path_budget: usize,
    /// Packet-in events queued for the controller before new ones are dropped.
    pub packet_in_queue: usize,
    /// Buffers each poll thread may allocate for packet copies (flood, multiple outputs).
    pub pool_buffers: usize,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            mac_table_size: 65536,
            mac_aging_s: 300,
            megaflow_capacity: 65536,
            emc_entries: crate::cache::emc::EMC_ENTRIES,
            emc_insert_inv_prob: 20,
            slow_path_budget: crate::port::BURST,
            packet_in_queue: 1024,
            pool_buffers: 4096,
        }
    }
}

/// Errors from control operations on the datapath.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatapathError {
    /// The port number is already in use.
    #[error("port {0} already exists")]
    PortExists(PortNo),
    /// No port has this number.
    #[error("no port {0}")]
    NoSuchPort(PortNo),
    /// Port numbers must be in `1..=PortNo::MAX`.
    #[error("port number {0} out of range 1..={max}", max = PortNo::MAX.0)]
    BadPortNo(PortNo),
    /// No group has this id.
    #[error("no group {0:?}")]
    NoSuchGroup(GroupId),
    /// No meter has this id.
    #[error("no meter {0:?}")]
    NoSuchMeter(MeterId),
    /// A flow bundle was refused; nothing in it was applied.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A group is inconsistent.
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
    /// A packet-out frame is longer than a packet buffer holds.
    #[error("frame of {0} bytes is longer than the {max} bytes a packet buffer holds", max = crate::packet::MAX_FRAME)]
    FrameTooLong(usize),
    /// Too many packet-outs are waiting for a poll thread.
    #[error("packet-out queue is full (no poll thread is keeping up)")]
    PacketOutQueueFull,
}

/// A map keyed by small integer ids (meters, groups), looked up per packet group on the hot
/// path: a multiplicative hash instead of SipHash. Ids come from the controller, which is
/// trusted with the switch's configuration, so hash flooding is not a concern here.
pub type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: Fibonacci hashing of the integer written.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A port as the snapshot holds it.
#[derive(Clone, Debug)]
pub struct PortEntry {
    /// Its OpenFlow number.
    pub no: PortNo,
    /// The implementation.
    pub port: Arc<dyn Port>,
    /// VLAN mode for the `normal` action.
    pub vlan: VlanMode,
    /// False to leave this port out of `flood`.
    pub flood: bool,
    /// Ingress policer (`ingress_policing_rate`), if any.
    pub policer: Option<Arc<Policer>>,
    /// Egress shaper and queues, if any: packets for this port wait there and leave at its
    /// rate, in priority order.
    pub qos: Option<Arc<EgressQos>>,
    /// True for tunnel ports (see [`Port::tunnel`]): their packets' remote and key are
    /// read into the key as `tun_src`/`tun_id`.
    pub tunnel: bool,
    /// True for tunnel ports whose remote or key flows choose (`remote_ip=flow`,
    /// `key=flow`): packets staged for them carry `tun_dst`/`tun_id`.
    pub flow_tunnel: bool,
    /// A tunnel port's local endpoint address (host order): the `tun_dst` of what it
    /// receives. 0 for other ports.
    pub tun_local: u32,
}

impl PortEntry {
    /// Sets the tunnel flags from what the port says it is.
    fn read_tunnel(&mut self) {
        let t = self.port.tunnel();
        self.tunnel = t.is_some();
        self.flow_tunnel = t.is_some_and(|t| t.flow_based);
        self.tun_local = t.map_or(0, |t| u32::from(t.local));
    }
}

/// A group with its buckets compiled to datapath operations.
#[derive(Debug)]
pub struct CompiledGroup {
    /// The group as configured.
    pub group: Group,
    /// One compiled operation list per bucket.
    pub buckets: Box<[Translation]>,
}

/// Everything a poll thread reads, immutable once published.
#[derive(Debug)]
pub struct Snapshot {
    /// Bumped by every change of any kind.
    pub version: u64,
    /// The OpenFlow tables.
    pub pipeline: Pipeline,
    /// Ports, by slot.
    pub ports: Vec<PortEntry>,
    slot_of: Vec<u16>,
    /// Slots of the ports with egress queues (the poll loop serves them).
    pub qos_slots: Vec<usize>,
    /// Poll threads sharing this datapath's rx queues (at least 1).
    pub n_pmds: usize,
    /// The rx queues each poll thread polls, by poll-thread index: (port slot, queue).
    /// Every rx queue of every port appears exactly once; rebuilt when ports or the
    /// number of poll threads change, so queues move between threads without a restart.
    pub rxqs: Arc<[Vec<(u16, u16)>]>,
    /// Groups.
    pub groups: IdMap<GroupId, Arc<CompiledGroup>>,
    /// Meters; their token buckets are shared state inside.
    pub meters: IdMap<MeterId, Arc<Meter>>,
    /// Recent flow changes: (pipeline version that introduced them, the changes).
    history: VecDeque<(u64, Arc<ChangeSet>)>,
}

impl Snapshot {
    /// The slot of a port number.
    #[inline]
    pub fn slot(&self, no: PortNo) -> Option<usize> {
        match self.slot_of.get(no.0 as usize) {
            Some(&s) if s != 0 => Some(s as usize - 1),
            _ => None,
        }
    }

    /// The port with this number.
    pub fn port(&self, no: PortNo) -> Option<&PortEntry> {
        self.slot(no).map(|s| &self.ports[s])
    }

    /// The flow changes after pipeline version `since`, oldest first, or `None` when the
    /// history no longer reaches back that far.
    pub fn changes_since(&self, since: u64) -> Option<Vec<Arc<ChangeSet>>> {
        if since >= self.pipeline.version() {
            return Some(Vec::new());
        }
        let oldest = self.history.front().map(|(v, _)| *v)?;
        if oldest > since + 1 {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|(v, _)| *v > since)
                .map(|(_, c)| Arc::clone(c))
                .collect(),
        )
    }

    fn rebuild_slots(&mut self) {
        self.slot_of.clear();
        for (i, p) in self.ports.iter().enumerate() {
            let n = p.no.0 as usize;
            if self.slot_of.len() <= n {
                self.slot_of.resize(n + 1, 0);
            }
            self.slot_of[n] = i as u16 + 1;
        }
        self.qos_slots = (0..self.ports.len())
            .filter(|&i| self.ports[i].qos.is_some())
            .collect();
        self.rxqs = assign_rxqs(&self.ports, self.n_pmds);
    }

    /// The poll thread (index) that polls rx queue `queue` of port `no`.
    pub fn rxq_owner(&self, no: PortNo, queue: usize) -> Option<usize> {
        let slot = self.slot(no)?;
        self.rxqs
            .iter()
            .position(|l| l.contains(&(slot as u16, queue as u16)))
    }
}

/// Round-robin assignment of every rx queue to `n` poll threads, in port order, so the
/// queues of one multi-queue port land on different threads.
fn assign_rxqs(ports: &[PortEntry], n: usize) -> Arc<[Vec<(u16, u16)>]> {
    let n = n.max(1);
    let mut out = vec![Vec::new(); n];
    let mut k = 0;
    for (slot, e) in ports.iter().enumerate() {
        for q in 0..e.port.n_rxq().max(1) {
            out[k % n].push((slot as u16, q as u16));
            k += 1;
        }
    }
    out.into()
}

/// A packet sent to the controller.
#[derive(Clone, Debug)]
pub struct PacketIn {
    /// Ingress port.
    pub in_port: PortNo,
    /// Why.
    pub reason: PacketInReason,
    /// Table of the flow that sent it.
    pub table: TableId,
    /// That flow's cookie.
    pub cookie: u64,
    /// The packet's key at the time (with pipeline metadata and registers).
    pub key: FlowKey,
    /// Length of the whole packet.
    pub total_len: usize,
    /// The first `max_len` bytes.
    pub data: Vec<u8>,
}

/// The state all poll threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snap: ArcSwap<Snapshot>,
    /// The version of the snapshot in `snap`, stored after it: a poll thread keeps its
    /// snapshot between polls and reloads it only when this word changes (one plain load
    /// per poll instead of the atomic read-modify-writes of a load from `snap`).
    pub(crate) snap_version: AtomicU64,
    write: Mutex<()>,
    pub(crate) macs: MacTable,
    pub(crate) packet_in: SyncSender<PacketIn>,
    pub(crate) packet_out: crossbeam_queue::ArrayQueue<PacketOut>,
    pub(crate) config: DatapathConfig,
    pmds: Mutex<Vec<Arc<PmdCounters>>>,
    epoch: Instant,
    epoch_wall_s: u64,
    manual_clock: Option<ManualClock>,
}

impl Shared {
    /// Monotonic nanoseconds since the datapath started (or the manual clock's time).
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        match &self.manual_clock {
            None => self.epoch.elapsed().as_nanos() as u64,
            Some(c) => c.now_ns(),
        }
    }
}

/// A clock that only moves when told to: for tests and benchmarks that need exact time
/// (meter and shaper accuracy, timeouts). Cheap to clone; clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    /// A clock at 0.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// The time, nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves the clock forward by `ns`.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }
}

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
            epoch: Instant::now(),
            epoch_wall_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            manual_clock,
        };
        (
            Datapath {
                shared: Arc::new(shared),
            },
            rx,
        )
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
        self.shared
            .pmds
            .lock()
            .retain(|c| !Arc::ptr_eq(c, counters));
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
    /// and `normal` outputs have no ingress port and drop). An output to
    /// [`PacketOutAction::Table`] sends it through the flow tables instead.
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

/// A packet the controller sends (OpenFlow packet-out).
#[derive(Clone, Debug)]
pub struct PacketOut {
    /// The port it is considered to have arrived on (`None`: the controller).
    pub in_port: Option<PortNo>,
    /// Run through the flow tables (OFPP_TABLE) instead of `actions`.
    pub table: bool,
    /// Actions to apply (ignored when `table`).
    pub actions: Vec<Action>,
    /// The frame.
    pub frame: Vec<u8>,
}

/// A draft of the next snapshot, open inside [`Datapath::transaction`].
#[derive(Debug)]
pub struct Txn<'a> {
    snap: &'a mut Snapshot,
    now_ns: u64,
    removed_ports: Vec<PortNo>,
}

impl Txn<'_> {
    /// The draft as changed so far.
    pub fn snapshot(&self) -> &Snapshot {
        self.snap
    }

    /// The datapath clock when the transaction began.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Adds a port.
    pub fn add_port(
        &mut self,
        no: PortNo,
        port: Arc<dyn Port>,
        vlan: VlanMode,
    ) -> Result<(), DatapathError> {
        if !no.is_valid() {
            return Err(DatapathError::BadPortNo(no));
        }
        let s = &mut *self.snap;
        if s.slot(no).is_some() {
            return Err(DatapathError::PortExists(no));
        }
        let mut e = PortEntry {
            no,
            vlan,
            flood: true,
            policer: None,
            qos: None,
            tunnel: false,
            flow_tunnel: false,
            tun_local: 0,
            port,
        };
        e.read_tunnel();
        s.ports.push(e);
        s.rebuild_slots();
        Ok(())
    }

    /// Changes a port's VLAN mode and flood setting.
    pub fn set_port_vlan(
        &mut self,
        no: PortNo,
        vlan: VlanMode,
        flood: bool,
    ) -> Result<(), DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        s.ports[slot].vlan = vlan;
        s.ports[slot].flood = flood;
        Ok(())
    }

    /// Replaces the implementation behind port `no` (its interface went away or came back),
    /// keeping its number, VLAN mode, policer and queues. Returns the old implementation.
    pub fn replace_port(
        &mut self,
        no: PortNo,
        port: Arc<dyn Port>,
    ) -> Result<Arc<dyn Port>, DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        let old = std::mem::replace(&mut s.ports[slot].port, port);
        s.ports[slot].read_tunnel();
        s.rebuild_slots();
        Ok(old)
    }

    /// Sets how many poll threads share the rx queues, and reassigns the queues.
    pub fn set_pmd_count(&mut self, n: usize) {
        self.snap.n_pmds = n.max(1);
        self.snap.rebuild_slots();
    }

    /// Sets or clears a port's ingress policer and egress queues.
    pub fn set_port_qos(
        &mut self,
        no: PortNo,
        policer: Option<Arc<Policer>>,
        qos: Option<Arc<EgressQos>>,
    ) -> Result<(), DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        s.ports[slot].policer = policer;
        s.ports[slot].qos = qos;
        s.rebuild_slots();
        Ok(())
    }

    /// Removes a port (its learned MACs are forgotten when the transaction publishes).
    pub fn del_port(&mut self, no: PortNo) -> Result<Arc<dyn Port>, DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        let e = s.ports.remove(slot);
        s.rebuild_slots();
        self.removed_ports.push(no);
        Ok(e.port)
    }

    /// Applies a bundle of flow changes: all of it or, on error, none of it.
    pub fn flow_mods(&mut self, mods: &[FlowMod]) -> Result<Arc<ChangeSet>, BundleError> {
        let (pipeline, changes) = self.snap.pipeline.apply(mods, self.now_ns)?;
        Ok(self.snap.install_pipeline(pipeline, changes))
    }

    /// Removes flows whose timeout has passed; `None` when none has.
    pub fn expire_flows(&mut self) -> Option<Arc<ChangeSet>> {
        let (pipeline, changes) = self.snap.pipeline.expire(self.now_ns)?;
        Some(self.snap.install_pipeline(pipeline, changes))
    }

    /// Adds or replaces a group.
    pub fn set_group(&mut self, group: Group) -> Result<(), DatapathError> {
        group.validate().map_err(DatapathError::Group)?;
        let buckets = group
            .buckets
            .iter()
            .map(|b| {
                let ops = b
                    .actions
                    .iter()
                    .map(|a| DpAction::from_action(a, TableId(0), 0, PacketInReason::Group))
                    .collect();
                Translation::from_ops(ops)
            })
            .collect();
        let id = group.id;
        self.snap
            .groups
            .insert(id, Arc::new(CompiledGroup { group, buckets }));
        Ok(())
    }

    /// Removes a group.
    pub fn del_group(&mut self, id: GroupId) -> Result<(), DatapathError> {
        self.snap
            .groups
            .remove(&id)
            .map(|_| ())
            .ok_or(DatapathError::NoSuchGroup(id))
    }

    /// Adds or replaces a meter.
    pub fn set_meter(&mut self, mut meter: Meter) -> Result<(), DatapathError> {
        if let Some(old) = self.snap.meters.get(&meter.id) {
            meter.keep_stats_of(old);
        }
        self.snap.meters.insert(meter.id, Arc::new(meter));
        Ok(())
    }

    /// Removes a meter.
    pub fn del_meter(&mut self, id: MeterId) -> Result<(), DatapathError> {
        self.snap
            .meters
            .remove(&id)
            .map(|_| ())
            .ok_or(DatapathError::NoSuchMeter(id))
    }
}

impl Snapshot {
    fn install_pipeline(&mut self, pipeline: Pipeline, changes: ChangeSet) -> Arc<ChangeSet> {
        let changes = Arc::new(changes);
        self.history
            .push_back((pipeline.version(), Arc::clone(&changes)));
        while self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
        self.pipeline = pipeline;
        changes
    }
}
