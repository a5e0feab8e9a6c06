//! The statistics calls: ports, queues, tables, meters, groups, the MAC table, tunnel
//! endpoints and poll threads.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use datapath::stats::{DropReason, PmdCounts};
use datapath::types::{GroupId, MeterId, PortNo, TableId};
use proto::v1::{self, port_ref};

use super::Switch;
use super::flows::group_users;
use super::model::{Bridge, PortState};
use crate::error::ApiError;

impl Switch {
    /// Port counters (all ports, or one).
    pub fn port_stats(
        &self,
        bridge: &str,
        port: Option<&v1::PortRef>,
    ) -> Result<Vec<v1::PortStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let want = stats_port(b, port, "counters")?;
        if let Some(w) = want
            && !b.ports.values().any(|p| p.desc.port_no == w)
        {
            return Err(ApiError::not_found("port", format!("no port {w}")));
        }
        let snap = b.dp.snapshot();
        let mut out: Vec<v1::PortStats> = b
            .ports
            .values()
            .filter(|p| want.is_none_or(|w| w == p.desc.port_no))
            .map(|p| {
                let mut s = p.stats();
                // Packets the ingress policer dropped never reached the pipeline: they
                // count as the port's receive drops, as in OVS.
                if let Some(pol) = snap
                    .port(PortNo(p.desc.port_no))
                    .and_then(|e| e.policer.as_ref())
                {
                    s.rx_dropped += pol.dropped.load(Ordering::Relaxed);
                }
                v1::PortStats {
                    port_no: p.desc.port_no,
                    name: p.desc.name.clone(),
                    rx_packets: s.rx_packets,
                    rx_bytes: s.rx_bytes,
                    rx_dropped: s.rx_dropped,
                    rx_errors: s.rx_errors,
                    tx_packets: s.tx_packets,
                    tx_bytes: s.tx_bytes,
                    tx_dropped: s.tx_dropped,
                    tx_errors: s.tx_errors,
                    duration_ns: p.added.elapsed().as_nanos() as u64,
                    link_resets: p.link_resets,
                    counters: type_counters(p),
                }
            })
            .collect();
        out.sort_by_key(|p| p.port_no);
        Ok(out)
    }

    /// Packets sent to tunnel ports without an endpoint, switch-wide.
    pub fn tunnel_no_endpoint_drops(&self) -> u64 {
        self.config
            .tunnels
            .no_endpoint
            .get(datapath::tunnel::TunnelDrop::NoEndpoint)
    }

    /// The tunnel endpoints with their neighbours and drop counters.
    pub fn tunnel_neighbours(&self) -> Vec<v1::TunnelEndpointInfo> {
        let mut out: Vec<v1::TunnelEndpointInfo> = self
            .config
            .tunnels
            .live()
            .iter()
            .map(|ep| v1::TunnelEndpointInfo {
                name: ep.name.clone(),
                ip: format!("{}/{}", ep.ip, ep.prefix),
                gw: ep.gw.map(|g| g.to_string()).unwrap_or_default(),
                mac: ep.mac.to_vec(),
                neighbours: ep
                    .neigh
                    .entries()
                    .iter()
                    .map(|n| v1::TunnelNeighbour {
                        ip: n.ip.to_string(),
                        mac: n.mac.to_vec(),
                        age_ms: ep.age_of(n) / 1_000_000,
                    })
                    .collect(),
                drops: datapath::tunnel::TunnelDrop::ALL
                    .iter()
                    .map(|r| (r.name().to_string(), ep.drops.get(*r)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Egress queue counters of the ports with queues (`port` and `queue` narrow it).
    pub fn queue_stats(
        &self,
        bridge: &str,
        port: Option<&v1::PortRef>,
        queue: Option<u32>,
    ) -> Result<Vec<v1::QueueStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let want = stats_port(b, port, "queues")?;
        let snap = b.dp.snapshot();
        if let Some(w) = want
            && snap.port(PortNo(w)).is_none()
        {
            return Err(ApiError::not_found("port", format!("no port {w}")));
        }
        let mut out = Vec::new();
        for e in &snap.ports {
            if want.is_some_and(|w| w != e.no.0) {
                continue;
            }
            let Some(q) = &e.qos else { continue };
            for s in q.stats() {
                if queue.is_some_and(|id| id != s.id) {
                    continue;
                }
                out.push(v1::QueueStats {
                    port_no: e.no.0,
                    port_name: b.port_name(e.no.0),
                    queue_id: s.id,
                    tx_packets: s.tx_packets,
                    tx_bytes: s.tx_bytes,
                    tx_dropped: s.dropped,
                    backlog_packets: s.backlog,
                });
            }
        }
        if let Some(id) = queue
            && out.is_empty()
        {
            return Err(ApiError::not_found(
                "queue_id",
                format!("no port here has queue {id}"),
            ));
        }
        out.sort_by_key(|s| (s.port_no, s.queue_id));
        Ok(out)
    }

    /// Flow counts and packets looked up and matched per table (tables holding flows or
    /// having looked packets up). A packet a cache answered counts against the tables its
    /// cached translation went through, as in Open vSwitch.
    pub fn table_stats(&self, bridge: &str) -> Result<Vec<v1::TableStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let snap = b.dp.snapshot();
        let counts = b.dp.table_counts();
        Ok((0..TableId::COUNT as u8)
            .map(TableId)
            .filter_map(|t| {
                let n = snap.pipeline.table(t).len();
                let c = counts[t.0 as usize];
                (n > 0 || c.lookup > 0).then_some(v1::TableStats {
                    table_id: t.0 as u32,
                    active_count: n as u32,
                    lookup_count: c.lookup,
                    matched_count: c.matched,
                })
            })
            .collect())
    }

    /// Meter counters.
    pub fn meter_stats(
        &self,
        bridge: &str,
        id: Option<u32>,
    ) -> Result<Vec<v1::MeterStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        if let Some(id) = id
            && !b.meters.contains_key(&id)
        {
            return Err(ApiError::not_found("meter_id", format!("no meter {id}")));
        }
        let snap = b.dp.snapshot();
        // One pass over the flows, not one per meter.
        let mut users: HashMap<MeterId, u32> = HashMap::new();
        for r in snap.pipeline.rules(None) {
            if let Some(m) = r.spec.instructions.meter {
                *users.entry(m).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for m in b.meters.keys().filter(|m| id.is_none_or(|i| i == **m)) {
            let Some(dm) = snap.meters.get(&MeterId(*m)) else {
                continue;
            };
            out.push(v1::MeterStats {
                meter_id: *m,
                flow_count: users.get(&MeterId(*m)).copied().unwrap_or(0),
                packet_in_count: dm.input.packets.load(Ordering::Relaxed),
                byte_in_count: dm.input.bytes.load(Ordering::Relaxed),
                duration_ns: b
                    .meter_added
                    .get(m)
                    .map_or(0, |t| t.elapsed().as_nanos() as u64),
                bands: dm
                    .band_counts
                    .iter()
                    .map(|c| v1::BandStats {
                        packet_count: c.packets.load(Ordering::Relaxed),
                        byte_count: c.bytes.load(Ordering::Relaxed),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Group counters: flows referring to each group, packets and bytes through it and
    /// through each of its buckets (summed over the poll threads).
    pub fn group_stats(
        &self,
        bridge: &str,
        id: Option<u32>,
    ) -> Result<Vec<v1::GroupStats>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        if let Some(id) = id
            && !b.groups.contains_key(&id)
        {
            return Err(ApiError::not_found("group_id", format!("no group {id}")));
        }
        let snap = b.dp.snapshot();
        let counted = group_users(&snap.pipeline);
        Ok(b.groups
            .values()
            .filter(|g| id.is_none_or(|i| i == g.id))
            .map(|g| {
                let c = b.dp.group_counts(GroupId(g.id)).unwrap_or_default();
                let bucket = |i: usize| {
                    let (packets, bytes) = c.buckets.get(i).copied().unwrap_or_default();
                    v1::BucketStats {
                        packet_count: packets,
                        byte_count: bytes,
                    }
                };
                v1::GroupStats {
                    group_id: g.id,
                    ref_count: counted.get(&g.id).copied().unwrap_or(0),
                    packet_count: c.packets,
                    byte_count: c.bytes,
                    duration_ns: b
                        .group_added
                        .get(&g.id)
                        .map_or(0, |t| t.elapsed().as_nanos() as u64),
                    buckets: (0..g.buckets.len()).map(bucket).collect(),
                }
            })
            .collect())
    }

    /// The learned MAC table, with its counters.
    pub fn mac_table(&self, bridge: &str) -> Result<v1::GetMacTableResponse, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let now_s = (b.dp.now_ns() / 1_000_000_000) as u32;
        let mut out: Vec<v1::MacEntry> =
            b.dp.mac_table()
                .entries(now_s)
                .into_iter()
                .map(|e| v1::MacEntry {
                    port: e.port.0,
                    port_name: b.port_name(e.port.0),
                    vlan: e.vlan.0 as u32,
                    mac: e.mac.0.to_vec(),
                    age_sec: e.age_s,
                    remote_ip: e.tun.map(|(ip, _)| ip.to_string()).unwrap_or_default(),
                    tun_id: e.tun.map_or(0, |(_, id)| id),
                })
                .collect();
        out.sort_by(|a, b| (a.port, a.vlan, &a.mac).cmp(&(b.port, b.vlan, &b.mac)));
        let t = b.dp.mac_table();
        let stats = v1::MacTableStats {
            entries: out.len() as u64,
            capacity: t.capacity() as u64,
            learned: t.learned.load(Ordering::Relaxed),
            moved: t.moved.load(Ordering::Relaxed),
            evicted: t.evicted.load(Ordering::Relaxed),
            aged: t.aged.load(Ordering::Relaxed),
            tunnel_sources_full: t.tun_sources.full.load(Ordering::Relaxed),
        };
        Ok(v1::GetMacTableResponse {
            entries: out,
            stats: Some(stats),
        })
    }

    /// Poll-thread counters (since the last clear).
    pub fn pmd_stats(&self) -> Vec<v1::PmdStats> {
        let bridges = self.bridges.lock();
        let base = self.pmd_baseline.lock();
        let mut out = Vec::new();
        for (name, b) in bridges.iter() {
            let snap = b.dp.snapshot();
            for (i, p) in b.pmds.iter().enumerate() {
                let rxqs = snap
                    .rxqs
                    .get(i)
                    .map(|l| {
                        l.iter()
                            .map(|&(slot, q)| {
                                let no = snap.ports[slot as usize].no.0;
                                v1::PmdRxq {
                                    port_no: no,
                                    port_name: b.port_name(no),
                                    queue: q as u32,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let z = PmdCounts::default();
                let c = p.counts().since(base.get(&(name.clone(), i)).unwrap_or(&z));
                let mut drops = std::collections::HashMap::new();
                for r in DropReason::ALL {
                    let v = c.drops_for(r);
                    if v > 0 {
                        drops.insert(r.name().to_string(), v);
                    }
                }
                out.push(v1::PmdStats {
                    pmd_id: out.len() as u32,
                    core_id: p.cpu().map(|c| c as u32),
                    bridge: name.clone(),
                    rxqs,
                    rx_packets: c.rx_packets,
                    emc_hit: c.emc_hit,
                    megaflow_hit: c.megaflow_hit,
                    slow_path: c.slow_path,
                    megaflow_installed: c.megaflow_installed,
                    tx_packets: c.tx_packets,
                    drops,
                    busy_ns: datapath::stats::cycles_to_ns(c.busy_cycles),
                    idle_ns: datapath::stats::cycles_to_ns(c.idle_cycles),
                    busy_cycles: c.busy_cycles,
                    idle_cycles: c.idle_cycles,
                    rx_batches: c.rx_batches,
                    megaflow_full: c.megaflow_full,
                    megaflow_removed: c.megaflow_removed,
                    cache_flush: c.cache_flush,
                });
            }
        }
        out
    }

    /// Resets what [`Switch::pmd_stats`] reports (the poll threads' own counters are never
    /// written by another thread: the daemon keeps a baseline instead).
    pub fn clear_pmd_stats(&self) {
        let bridges = self.bridges.lock();
        let mut base = self.pmd_baseline.lock();
        for (name, b) in bridges.iter() {
            for (i, p) in b.pmds.iter().enumerate() {
                base.insert((name.clone(), i), p.counts());
            }
        }
    }
}

/// The port number a stats request names (`None`: every port); `what` says what reserved
/// ports lack, for the error.
pub(super) fn stats_port(
    b: &Bridge,
    port: Option<&v1::PortRef>,
    what: &str,
) -> Result<Option<u32>, ApiError> {
    Ok(match port.and_then(|p| p.port.as_ref()) {
        None => None,
        Some(port_ref::Port::Number(n)) => Some(*n),
        Some(port_ref::Port::Name(n)) => Some(
            b.names()(n)
                .ok_or_else(|| ApiError::not_found("port", format!("no port named {n:?}")))?,
        ),
        Some(port_ref::Port::Reserved(_)) => {
            return Err(ApiError::invalid(
                "port",
                format!("reserved ports have no {what}"),
            ));
        }
    })
}

/// Counters particular to a port's type: what its implementation keeps (for a tunnel port
/// whose flows choose the remote, `remote_ip=flow`, the remotes' outer headers evicted to
/// keep its table bounded).
fn type_counters(p: &PortState) -> HashMap<String, u64> {
    let mut extra = Vec::new();
    p.port.extra_stats(&mut extra);
    extra.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
