//! What the daemon holds per bridge and per port, and the staged changes of one transaction
//! ([`Overlay`]) with how they reach the store and the daemon's maps.
//!
//! What: [`Bridge`] (its datapath, ports, canonical flows, meters, groups, poll threads),
//! [`PortState`], [`Overlay`], and free functions over them. Nothing here touches the
//! switch's lock: callers hold it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use datapath::pipeline::{Datapath, PmdThread, PortConfig};
use datapath::port::{MemPort, Port, PortStats};
use datapath::types::PortNo;
use proto::v1;

use super::spec::{PortKind, PortSpec};
use crate::convert::flow_ident;
use crate::error::ApiError;
use crate::store::StoreTxn;

/// An opened port: the implementation, and the in-memory handle when it is one.
pub(super) type Opened = (Arc<dyn Port>, Option<Arc<MemPort>>);

/// A port as the daemon holds it.
#[derive(Debug)]
pub(super) struct PortState {
    pub(super) desc: v1::PortDesc,
    /// Its type and options, parsed. `None` only for a port restored from the store whose
    /// options no longer parse (a build without its type, say): it stays down.
    pub(super) spec: Option<PortSpec>,
    pub(super) port: Arc<dyn Port>,
    pub(super) mem: Option<Arc<MemPort>>,
    pub(super) added: Instant,
    /// Counters of the implementations this port had before the current one (its
    /// interface went away and came back): what the port reports adds them.
    pub(super) stats_base: PortStats,
    /// Times the port lost its interface.
    pub(super) link_resets: u64,
    /// Failed reopen attempts since the port went down (logged at 1, 2, 4, 8, ...).
    pub(super) reopen_failures: u32,
}

impl PortState {
    /// A port just added (or restored), with fresh counters.
    pub(super) fn new(desc: v1::PortDesc, spec: Option<PortSpec>, opened: Opened) -> PortState {
        PortState {
            desc,
            spec,
            port: opened.0,
            mem: opened.1,
            added: Instant::now(),
            stats_base: PortStats::default(),
            link_resets: 0,
            reopen_failures: 0,
        }
    }

    pub(super) fn stats(&self) -> PortStats {
        let s = self.port.stats();
        let b = &self.stats_base;
        PortStats {
            rx_packets: s.rx_packets + b.rx_packets,
            rx_bytes: s.rx_bytes + b.rx_bytes,
            rx_dropped: s.rx_dropped + b.rx_dropped,
            tx_packets: s.tx_packets + b.tx_packets,
            tx_bytes: s.tx_bytes + b.tx_bytes,
            tx_dropped: s.tx_dropped + b.tx_dropped,
            rx_errors: s.rx_errors + b.rx_errors,
            tx_errors: s.tx_errors + b.tx_errors,
        }
    }

    /// Its kind, when its options parsed.
    pub(super) fn kind(&self) -> Option<&PortKind> {
        self.spec.as_ref().map(|s| &s.kind)
    }

    /// True for ports on kernel interfaces, which can disappear under the switch.
    pub(super) fn is_kernel(&self) -> bool {
        self.kind().is_some_and(PortKind::is_kernel)
    }
}

/// A running bridge.
#[derive(Debug)]
pub(super) struct Bridge {
    pub(super) rec: v1::Bridge,
    pub(super) dp: Datapath,
    pub(super) ports: BTreeMap<String, PortState>,
    /// Canonical flow messages by identity (see [`flow_ident`]).
    pub(super) flows: IdMap<v1::Flow>,
    pub(super) meters: BTreeMap<u32, v1::Meter>,
    pub(super) groups: BTreeMap<u32, v1::Group>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) threads: Vec<JoinHandle<()>>,
    /// Poll threads, by index.
    pub(super) pmds: Vec<PmdThread>,
    pub(super) macs_seen: HashSet<(u16, [u8; 6], u32)>,
    pub(super) meter_added: HashMap<u32, Instant>,
    pub(super) group_added: HashMap<u32, Instant>,
}

impl Bridge {
    pub(super) fn names(&self) -> impl Fn(&str) -> Option<u32> + '_ {
        |n: &str| self.ports.get(n).map(|p| p.desc.port_no)
    }

    pub(super) fn port_name(&self, no: u32) -> String {
        self.ports
            .values()
            .find(|p| p.desc.port_no == no)
            .map(|p| p.desc.name.clone())
            .unwrap_or_default()
    }

    pub(super) fn shutdown(&mut self) {
        for p in self.pmds.drain(..) {
            p.stop(&self.dp);
        }
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Maps keyed by flow identity: a fast hash (the keys are not attacker-chosen per se, and
/// the table sizes are bounded by what the operator installs).
pub(super) type IdMap<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

/// Staged changes of one transaction, applied to the daemon's maps after the commit.
#[derive(Default)]
pub(super) struct Overlay {
    pub(super) flows: IdMap<Option<v1::Flow>>,
    pub(super) meters: BTreeMap<u32, Option<v1::Meter>>,
    pub(super) groups: BTreeMap<u32, Option<v1::Group>>,
    pub(super) ports_added: Vec<PortState>,
    pub(super) ports_removed: Vec<String>,
    /// The bridge's port mirrors after the ports removed left them, when that changed them.
    pub(super) mirrors: Option<Vec<v1::Mirror>>,
    pub(super) events: Vec<v1::StreamMessageResponse>,
}

impl Overlay {
    pub(super) fn flow<'a>(&'a self, base: &'a IdMap<v1::Flow>, id: &[u8]) -> Option<&'a v1::Flow> {
        match self.flows.get(id) {
            Some(f) => f.as_ref(),
            None => base.get(id),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.flows.is_empty()
            && self.meters.is_empty()
            && self.groups.is_empty()
            && self.ports_added.is_empty()
            && self.ports_removed.is_empty()
    }
}

pub(super) fn rule_ident(r: &datapath::classifier::Rule) -> Vec<u8> {
    flow_ident(r.spec.table, r.spec.priority, &r.spec.key, &r.spec.mask)
}

/// Retires the tunnel endpoints among `ports` (their ports were removed); true if any.
pub(super) fn retire_endpoints<'a>(ports: impl IntoIterator<Item = &'a PortState>) -> bool {
    let mut any = false;
    for p in ports {
        any |= p.port.retire();
    }
    any
}

pub(super) fn add_stats(base: &mut PortStats, s: &PortStats) {
    base.rx_packets += s.rx_packets;
    base.rx_bytes += s.rx_bytes;
    base.rx_dropped += s.rx_dropped;
    base.tx_packets += s.tx_packets;
    base.tx_bytes += s.tx_bytes;
    base.tx_dropped += s.tx_dropped;
    base.rx_errors += s.rx_errors;
    base.tx_errors += s.tx_errors;
}

pub(super) fn default_dpid(name: &str) -> u64 {
    // FNV-1a of the name, in the 48 bits a MAC-derived datapath id would use.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h & 0xffff_ffff_ffff
}

pub(super) fn bridge_mut<'a>(
    bridges: &'a mut BTreeMap<String, Bridge>,
    name: &str,
) -> Result<&'a mut Bridge, ApiError> {
    bridges
        .get_mut(name)
        .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {name}")))
}

pub(super) fn port_descs(b: &Bridge) -> Vec<v1::PortDesc> {
    let mut v: Vec<v1::PortDesc> = b.ports.values().map(|p| live_desc(b, p)).collect();
    v.sort_by_key(|p| p.port_no);
    v
}

/// A port's description with its OpenFlow configuration, which the datapath holds (it is
/// not stored: it lasts while the daemon runs, as in Open vSwitch).
pub(super) fn live_desc(b: &Bridge, p: &PortState) -> v1::PortDesc {
    let mut d = p.desc.clone();
    let config = b.dp.port_config(PortNo(d.port_no)).unwrap_or_default().0;
    d.openflow_config = config;
    d.admin_up = config & PortConfig::PORT_DOWN == 0;
    d
}

pub(super) fn write_overlay(tx: &mut StoreTxn, bridge: &str, ov: &Overlay) -> Result<(), ApiError> {
    tx.put_flows(
        bridge,
        ov.flows.iter().map(|(k, v)| (k.as_slice(), v.as_ref())),
    )?;
    for (id, m) in &ov.meters {
        match m {
            Some(m) => tx.put_meter(bridge, m)?,
            None => tx.del_meter(bridge, *id)?,
        }
    }
    for (id, g) in &ov.groups {
        match g {
            Some(g) => tx.put_group(bridge, g)?,
            None => tx.del_group(bridge, *id)?,
        }
    }
    for p in &ov.ports_added {
        tx.put_port(bridge, &p.desc)?;
    }
    for p in &ov.ports_removed {
        tx.del_port(bridge, p)?;
    }
    Ok(())
}

/// [`write_overlay`] for a change that may remove ports: also stores the bridge's mirrors
/// when the removals changed them.
pub(super) fn write_overlay_of(
    tx: &mut StoreTxn,
    b: &Bridge,
    ov: &Overlay,
) -> Result<(), ApiError> {
    write_overlay(tx, &b.rec.name, ov)?;
    if let Some(m) = &ov.mirrors {
        tx.put_bridge(&v1::Bridge {
            mirrors: m.clone(),
            ..b.rec.clone()
        })?;
    }
    Ok(())
}

pub(super) fn apply_overlay(b: &mut Bridge, ov: Overlay) {
    if let Some(m) = ov.mirrors {
        b.rec.mirrors = m;
    }
    for (id, f) in ov.flows {
        match f {
            Some(f) => {
                b.flows.insert(id, f);
            }
            None => {
                b.flows.remove(&id);
            }
        }
    }
    // A map does not shrink by itself: after a large delete, give the memory back.
    if b.flows.capacity() > 4 * b.flows.len() + 4096 {
        b.flows.shrink_to_fit();
    }
    let now = Instant::now();
    for (id, m) in ov.meters {
        match m {
            Some(m) => {
                b.meter_added.entry(id).or_insert(now);
                b.meters.insert(id, m);
            }
            None => {
                b.meter_added.remove(&id);
                b.meters.remove(&id);
            }
        }
    }
    for (id, g) in ov.groups {
        match g {
            Some(g) => {
                b.group_added.entry(id).or_insert(now);
                b.groups.insert(id, g);
            }
            None => {
                b.group_added.remove(&id);
                b.groups.remove(&id);
            }
        }
    }
    for name in ov.ports_removed {
        b.ports.remove(&name);
    }
    for mut p in ov.ports_added {
        p.added = now;
        b.ports.insert(p.desc.name.clone(), p);
    }
}
