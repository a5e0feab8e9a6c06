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

pub mod pmd;
pub mod xlate;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::classifier::{BundleError, ChangeSet, FlowMod, Pipeline};
use crate::flow::FlowKey;
use crate::group::Group;
use crate::l2::{MacTable, VlanMode};
use crate::meter::Meter;
use crate::port::Port;
use crate::stats::PmdCounters;
use crate::types::{GroupId, MeterId, PortNo, TableId};

pub use pmd::Pmd;
pub use xlate::{DpAction, PacketInReason, Translation, translate};

/// Port numbers below this are looked up through a direct index; a port must have one.
pub const MAX_PORT_NO: u32 = 0xff00;

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
    /// Port numbers must be in 1..0xff00.
    #[error("port number {0} out of range 1..{MAX_PORT_NO}")]
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
    /// Groups.
    pub groups: HashMap<GroupId, Arc<CompiledGroup>>,
    /// Meters; their token buckets are shared state inside.
    pub meters: HashMap<MeterId, Arc<Meter>>,
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
    }
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
    write: Mutex<()>,
    pub(crate) macs: MacTable,
    pub(crate) packet_in: SyncSender<PacketIn>,
    pub(crate) config: DatapathConfig,
    pmds: Mutex<Vec<Arc<PmdCounters>>>,
    epoch: Instant,
    epoch_wall_s: u64,
}

impl Shared {
    /// Monotonic nanoseconds since the datapath started.
    pub(crate) fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
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
        let (tx, rx) = sync_channel(config.packet_in_queue);
        let macs = MacTable::new(config.mac_table_size);
        macs.set_aging_s(config.mac_aging_s);
        let snap = Snapshot {
            version: 0,
            pipeline: Pipeline::new(),
            ports: Vec::new(),
            slot_of: Vec::new(),
            groups: HashMap::new(),
            meters: HashMap::new(),
            history: VecDeque::new(),
        };
        let shared = Shared {
            snap: ArcSwap::from_pointee(snap),
            write: Mutex::new(()),
            macs,
            packet_in: tx,
            config,
            pmds: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            epoch_wall_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
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
        let pmd = Pmd::new(Arc::clone(&self.shared));
        self.shared.pmds.lock().push(pmd.counters());
        pmd
    }

    /// Counters of every poll thread created so far.
    pub fn pmd_counters(&self) -> Vec<Arc<PmdCounters>> {
        self.shared.pmds.lock().clone()
    }

    /// Applies `f` to a copy of the current snapshot and publishes the result.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut Snapshot) -> Result<T, DatapathError>,
    ) -> Result<T, DatapathError> {
        let _guard = self.shared.write.lock();
        let cur = self.shared.snap.load();
        let mut next = Snapshot {
            version: cur.version + 1,
            pipeline: cur.pipeline.clone(),
            ports: cur.ports.clone(),
            slot_of: cur.slot_of.clone(),
            groups: cur.groups.clone(),
            meters: cur.meters.clone(),
            history: cur.history.clone(),
        };
        let out = f(&mut next)?;
        self.shared.snap.store(Arc::new(next));
        Ok(out)
    }

    /// Adds a port.
    pub fn add_port(
        &self,
        no: PortNo,
        port: Arc<dyn Port>,
        vlan: VlanMode,
    ) -> Result<(), DatapathError> {
        if no.0 == 0 || no.0 >= MAX_PORT_NO {
            return Err(DatapathError::BadPortNo(no));
        }
        self.update(|s| {
            if s.slot(no).is_some() {
                return Err(DatapathError::PortExists(no));
            }
            s.ports.push(PortEntry {
                no,
                port,
                vlan,
                flood: true,
            });
            s.rebuild_slots();
            Ok(())
        })
    }

    /// Changes a port's VLAN mode and flood setting.
    pub fn set_port_vlan(
        &self,
        no: PortNo,
        vlan: VlanMode,
        flood: bool,
    ) -> Result<(), DatapathError> {
        self.update(|s| {
            let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
            s.ports[slot].vlan = vlan;
            s.ports[slot].flood = flood;
            Ok(())
        })
    }

    /// Removes a port and forgets the MAC addresses learned on it.
    pub fn del_port(&self, no: PortNo) -> Result<Arc<dyn Port>, DatapathError> {
        let port = self.update(|s| {
            let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
            let e = s.ports.remove(slot);
            s.rebuild_slots();
            Ok(e.port)
        })?;
        self.shared.macs.flush_port(no);
        Ok(port)
    }

    /// Applies a bundle of flow changes atomically: all become visible at once, or none.
    pub fn flow_mods(&self, mods: &[FlowMod]) -> Result<Arc<ChangeSet>, DatapathError> {
        let now = self.now_ns();
        self.update(|s| {
            let (pipeline, changes) = s.pipeline.apply(mods, now)?;
            Ok(s.install_pipeline(pipeline, changes))
        })
    }

    /// Removes flows whose idle or hard timeout has passed; returns what was removed.
    pub fn expire_flows(&self) -> Option<Arc<ChangeSet>> {
        let now = self.now_ns();
        self.update(|s| {
            let (pipeline, changes) = s
                .pipeline
                .expire(now)
                .ok_or(DatapathError::NoSuchPort(PortNo(0)))?;
            Ok(s.install_pipeline(pipeline, changes))
        })
        .ok()
    }

    /// Adds or replaces a group.
    pub fn set_group(&self, group: Group) -> Result<(), DatapathError> {
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
        let g = Arc::new(CompiledGroup { group, buckets });
        self.update(|s| {
            s.groups.insert(id, g);
            Ok(())
        })
    }

    /// Removes a group.
    pub fn del_group(&self, id: GroupId) -> Result<(), DatapathError> {
        self.update(|s| {
            s.groups
                .remove(&id)
                .map(|_| ())
                .ok_or(DatapathError::NoSuchGroup(id))
        })
    }

    /// Adds or replaces a meter.
    pub fn set_meter(&self, meter: Meter) -> Result<(), DatapathError> {
        let id = meter.id;
        let m = Arc::new(meter);
        self.update(|s| {
            s.meters.insert(id, m);
            Ok(())
        })
    }

    /// Removes a meter.
    pub fn del_meter(&self, id: MeterId) -> Result<(), DatapathError> {
        self.update(|s| {
            s.meters
                .remove(&id)
                .map(|_| ())
                .ok_or(DatapathError::NoSuchMeter(id))
        })
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
