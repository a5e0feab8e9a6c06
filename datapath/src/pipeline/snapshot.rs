//! The snapshot: everything a poll thread reads, immutable once published.
//!
//! What: a [`Snapshot`] holds the OpenFlow tables, the ports (with their VLAN modes,
//! policers, queues, tunnel flags and mirror masks), which poll thread polls which rx
//! queue, the compiled groups, the meters, the port mirrors, and the recent history of flow
//! changes poll threads catch up with.
//! The control plane builds the next one in a [`super::Txn`] and publishes it whole.
//!
//! Thread-safety: immutable once published; shared by `Arc`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::capture::PortCapture;
use super::mirror::Mirrors;
use super::port_config::PortConfig;
use super::xlate::Translation;
use crate::classifier::{ChangeSet, Pipeline};
use crate::group::Group;
use crate::l2::VlanMode;
use crate::meter::Meter;
use crate::port::Port;
use crate::qos::{EgressQos, Policer};
use crate::stats::GroupCounters;
use crate::types::{GroupId, MeterId, PortNo};

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
    /// The mirrors (bits of [`Snapshot::mirrors`]) that copy what this port receives.
    pub mirror_rx: u32,
    /// The mirrors that copy what this port sends (0 on the executor's path when none).
    pub mirror_tx: u32,
    /// True when this port is a mirror's output: `normal` neither takes from nor sends to
    /// it.
    pub mirror_out: bool,
    /// The captures running on this port (`None`, the usual case, costs the poll loop one
    /// check per burst and direction): see [`super::capture`].
    pub capture: Option<Arc<PortCapture>>,
    /// OpenFlow port configuration (PORT_MOD): down, no receive, no forward, no
    /// packet-in. Zero for almost every port.
    pub config: PortConfig,
}

impl PortEntry {
    /// Sets the tunnel flags from what the port says it is.
    pub(super) fn read_tunnel(&mut self) {
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
    /// Packets and bytes through the group and each bucket, per poll thread (kept across
    /// a modify of the group).
    pub counters: Arc<GroupCounters>,
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
    pub(super) slot_of: Vec<u16>,
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
    pub(super) history: VecDeque<(u64, Arc<ChangeSet>)>,
    /// Port mirrors.
    pub mirrors: Mirrors,
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

    pub(super) fn rebuild_slots(&mut self) {
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
        self.mark_mirrors();
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
