//! Control-plane changes: a [`Txn`] is a draft of the next snapshot, open inside
//! [`super::Datapath::transaction`], and [`DatapathError`] says why a change was refused.
//!
//! Thread-safety: a draft belongs to the one writer holding the datapath's write lock.

use std::sync::Arc;

use super::mirror::{self, Mirror, MirrorError};
use super::port_config::PortConfig;
use super::snapshot::{CompiledGroup, PortEntry, Snapshot};
use super::xlate::{DpAction, PacketInReason, Translation};
use crate::classifier::{BundleError, ChangeSet, FlowMod, Pipeline};
use crate::group::Group;
use crate::l2::VlanMode;
use crate::meter::Meter;
use crate::port::Port;
use crate::qos::{EgressQos, Policer};
use crate::stats::GroupCounters;
use crate::types::{GroupId, MeterId, PortNo, TableId};

/// How many recent flow-change sets a snapshot keeps for poll threads catching up.
const HISTORY_LEN: usize = 64;
/// Most flows those change sets may name in all: a larger change (a bulk delete, say) is
/// not kept, so the history never keeps a large delete's flows alive; a poll thread that
/// has not seen it flushes its caches, as when it fell behind the history.
const HISTORY_FLOWS: usize = 16_384;

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

/// A draft of the next snapshot, open inside [`super::Datapath::transaction`].
#[derive(Debug)]
pub struct Txn<'a> {
    pub(super) snap: &'a mut Snapshot,
    pub(super) now_ns: u64,
    pub(super) removed_ports: Vec<PortNo>,
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
            mirror_rx: 0,
            mirror_tx: 0,
            mirror_out: false,
            capture: None,
            config: PortConfig::default(),
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

    /// Sets port `no`'s OpenFlow configuration bits ([`PortConfig`]; bits the datapath does
    /// not act on are kept as given, for reporting).
    pub fn set_port_config(&mut self, no: PortNo, config: PortConfig) -> Result<(), DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        s.ports[slot].config = config;
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
        // Groups and mirrors need a counter slot for every poll thread.
        let n = self.snap.n_pmds;
        let mirrors: Vec<Mirror> = (self.snap.mirrors.entries().iter())
            .map(|e| (*e.mirror).clone())
            .collect();
        if let Ok(m) = mirror::compile(self.snap, mirrors) {
            self.snap.mirrors = m;
            self.snap.mark_mirrors();
        }
        for g in self.snap.groups.values_mut() {
            if g.counters.threads() < n {
                let counters = Arc::new(g.counters.carried(n, g.buckets.len()));
                *g = Arc::new(CompiledGroup {
                    group: g.group.clone(),
                    buckets: compile_buckets(&g.group),
                    counters,
                });
            }
        }
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

    /// Removes a port (its learned MACs are forgotten when the transaction publishes; the
    /// mirrors forget it, see [`super::mirror::Mirrors::forget_port`]).
    pub fn del_port(&mut self, no: PortNo) -> Result<Arc<dyn Port>, DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        let e = s.ports.remove(slot);
        s.mirrors.forget_port(no);
        s.rebuild_slots();
        self.removed_ports.push(no);
        Ok(e.port)
    }

    /// Fails open (every packet to `NORMAL`, the tables kept) or stops failing open. Every
    /// cached translation changes, so the poll threads' caches start over.
    pub fn set_fail_open(&mut self, on: bool) {
        if self.snap.pipeline.fail_open() == on {
            return;
        }
        self.snap.pipeline = self.snap.pipeline.with_fail_open(on);
        self.snap.history.clear();
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
        let buckets = compile_buckets(&group);
        let id = group.id;
        let (threads, n) = (self.snap.n_pmds, group.buckets.len());
        // A modified group keeps its counts: the same counters when they still fit.
        let counters = match self.snap.groups.get(&id) {
            Some(old) if old.counters.threads() >= threads && old.counters.buckets() == n => {
                Arc::clone(&old.counters)
            }
            Some(old) => Arc::new(old.counters.carried(threads, n)),
            None => Arc::new(GroupCounters::new(threads, n)),
        };
        self.snap.groups.insert(
            id,
            Arc::new(CompiledGroup {
                group,
                buckets,
                counters,
            }),
        );
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

    /// Replaces every port mirror of the datapath with `mirrors` (their order gives their
    /// bits; a mirror keeps its counters while its name stays): all of them, or, when one
    /// is refused, none.
    pub fn set_mirrors(&mut self, mirrors: Vec<Mirror>) -> Result<(), MirrorError> {
        self.snap.mirrors = mirror::compile(self.snap, mirrors)?;
        self.snap.mark_mirrors();
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

/// Each bucket's actions as datapath operations.
fn compile_buckets(group: &Group) -> Box<[Translation]> {
    group
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
        .collect()
}

impl Snapshot {
    fn install_pipeline(&mut self, pipeline: Pipeline, changes: ChangeSet) -> Arc<ChangeSet> {
        let changes = Arc::new(changes);
        self.history
            .push_back((pipeline.version(), Arc::clone(&changes)));
        let flows = |c: &ChangeSet| c.added.len() + c.modified.len() + c.removed.len();
        let mut held: usize = self.history.iter().map(|(_, c)| flows(c)).sum();
        while self.history.len() > HISTORY_LEN || held > HISTORY_FLOWS {
            if let Some((_, c)) = self.history.pop_front() {
                held -= flows(&c);
            }
        }
        self.pipeline = pipeline;
        changes
    }
}
