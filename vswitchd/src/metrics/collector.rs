//! The collector: at each scrape, reads the switch's statistics calls (the same ones
//! `flowctl dump-ports`, `dump-tables`, `pmd-stats-show`... answer from) and writes them as
//! metric families.
//!
//! What it reads, and why no poll thread waits for it: [`Switch::port_stats`],
//! [`Switch::list_ports`], [`Switch::pmd_stats`], [`Switch::table_stats`],
//! [`Switch::meter_stats`], [`Switch::queue_stats`], [`Switch::group_stats`],
//! [`Switch::mac_table_stats`], [`Switch::tunnel_drops`] and
//! [`Switch::tunnel_no_endpoint_drops`]. They take the switch lock, which poll threads never
//! take, load the datapath snapshot (an atomic pointer), and read counters that are atomics
//! with one writer (ports, poll threads, meters, policers, the MAC table, tunnel drops,
//! egress queues' published counters). None takes a lock a poll thread also takes.
//!
//! Whatever those calls report flows through unchanged: a table's `lookup_count` and
//! `matched_count`, a group's packet and byte counts and its buckets', become non-zero here
//! as soon as the datapath counts them, with no change to this file.
//!
//! Names follow Prometheus conventions: `vswitch_` prefix, counters end in `_total` (the
//! encoder adds it), units in the name. A family is written only when it has rows: a switch
//! without meters has no meter series.
//!
//! Thread-safety: a [`SwitchCollector`] is `Send + Sync`; the HTTP endpoint runs it on a
//! blocking thread (the switch lock may be held by a store commit).

use std::collections::BTreeMap;
use std::sync::Weak;

use datapath::stats::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use proto::v1;

use crate::switch::{Switch, TunnelDrops};

/// Labels of one series.
type Labels = Vec<(&'static str, String)>;

/// Reads the switch at every scrape. Holds the switch weakly: a scrape after shutdown reports
/// nothing rather than keeping the switch alive.
#[derive(Debug)]
pub struct SwitchCollector {
    sw: Weak<Switch>,
}

impl SwitchCollector {
    /// A collector over `sw`.
    pub fn new(sw: Weak<Switch>) -> SwitchCollector {
        SwitchCollector { sw }
    }
}

impl Collector for SwitchCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(sw) = self.sw.upgrade() else {
            return Ok(());
        };
        let s = Sample::read(&sw);
        drop(sw);
        s.encode_ports(&mut enc)?;
        s.encode_pmds(&mut enc)?;
        s.encode_tables(&mut enc)?;
        s.encode_meters_and_groups(&mut enc)?;
        s.encode_queues_macs_tunnels(&mut enc)
    }
}

/// One port's row.
struct PortRow {
    labels: Labels,
    link_up: bool,
    stats: v1::PortStats,
}

/// Everything one scrape reports, read before anything is written.
#[derive(Default)]
struct Sample {
    ports: Vec<PortRow>,
    pmds: Vec<(Labels, v1::PmdStats)>,
    tables: Vec<(Labels, v1::TableStats)>,
    meters: Vec<(Labels, v1::MeterStats)>,
    groups: Vec<(Labels, v1::GroupStats)>,
    queues: Vec<(Labels, v1::QueueStats)>,
    macs: Vec<(Labels, v1::MacTableStats)>,
    tunnels: Vec<TunnelDrops>,
    no_endpoint_drops: u64,
}

fn bridge_label(b: &str) -> Labels {
    vec![("bridge", b.to_string())]
}

fn with(mut l: Labels, k: &'static str, v: impl ToString) -> Labels {
    l.push((k, v.to_string()));
    l
}

impl Sample {
    /// Reads every bridge. A bridge removed between two calls is left out of the calls
    /// that no longer find it.
    fn read(sw: &Switch) -> Sample {
        let mut s = Sample::default();
        for rec in sw.list_bridges() {
            let b = rec.name.as_str();
            let types: BTreeMap<String, (String, bool)> = sw
                .list_ports(b)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name, (p.r#type, p.link_up)))
                .collect();
            for st in sw.port_stats(b, None).unwrap_or_default() {
                let (ty, up) = types.get(&st.name).cloned().unwrap_or_default();
                let labels = with(with(bridge_label(b), "port", &st.name), "type", ty);
                s.ports.push(PortRow {
                    labels,
                    link_up: up,
                    stats: st,
                });
            }
            for t in sw.table_stats(b).unwrap_or_default() {
                s.tables
                    .push((with(bridge_label(b), "table", t.table_id), t));
            }
            for m in sw.meter_stats(b, None).unwrap_or_default() {
                s.meters
                    .push((with(bridge_label(b), "meter", m.meter_id), m));
            }
            for g in sw.group_stats(b, None).unwrap_or_default() {
                s.groups
                    .push((with(bridge_label(b), "group", g.group_id), g));
            }
            for q in sw.queue_stats(b, None, None).unwrap_or_default() {
                let l = with(
                    with(bridge_label(b), "port", &q.port_name),
                    "queue",
                    q.queue_id,
                );
                s.queues.push((l, q));
            }
            if let Ok(m) = sw.mac_table_stats(b) {
                s.macs.push((bridge_label(b), m));
            }
        }
        // Poll threads are numbered per bridge, in the order the switch lists them.
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for p in sw.pmd_stats() {
            let i = index.entry(p.bridge.clone()).or_default();
            s.pmds.push((with(bridge_label(&p.bridge), "pmd", *i), p));
            *i += 1;
        }
        s.tunnels = sw.tunnel_drops();
        s.no_endpoint_drops = sw.tunnel_no_endpoint_drops();
        s
    }

    fn encode_ports(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let rows = &self.ports;
        let each = |f: fn(&v1::PortStats) -> u64| {
            rows.iter()
                .map(move |r| (r.labels.clone(), f(&r.stats)))
                .collect::<Vec<_>>()
        };
        counter(
            enc,
            "vswitch_port_rx_packets",
            "Packets received by the port",
            each(|s| s.rx_packets),
        )?;
        counter(
            enc,
            "vswitch_port_rx_bytes",
            "Bytes received by the port",
            each(|s| s.rx_bytes),
        )?;
        counter(
            enc,
            "vswitch_port_rx_dropped",
            "Received packets dropped (no buffer, ingress policing, the kernel below the port)",
            each(|s| s.rx_dropped),
        )?;
        counter(
            enc,
            "vswitch_port_rx_errors",
            "Receive errors",
            each(|s| s.rx_errors),
        )?;
        counter(
            enc,
            "vswitch_port_tx_packets",
            "Packets sent by the port",
            each(|s| s.tx_packets),
        )?;
        counter(
            enc,
            "vswitch_port_tx_bytes",
            "Bytes sent by the port",
            each(|s| s.tx_bytes),
        )?;
        counter(
            enc,
            "vswitch_port_tx_dropped",
            "Packets the port could not send (ring full, link down, queue full)",
            each(|s| s.tx_dropped),
        )?;
        counter(
            enc,
            "vswitch_port_tx_errors",
            "Transmit errors",
            each(|s| s.tx_errors),
        )?;
        counter(
            enc,
            "vswitch_port_link_resets",
            "Times the port lost its interface (or tunnel endpoint)",
            each(|s| s.link_resets),
        )?;
        gauge(
            enc,
            "vswitch_port_link_up",
            "1 while the port's link is up, 0 while it is down",
            rows.iter()
                .map(|r| (r.labels.clone(), r.link_up as u64))
                .collect(),
        )?;
        let mut extra: Vec<(Labels, u64)> = Vec::new();
        for r in rows {
            let mut c: Vec<_> = r.stats.counters.iter().collect();
            c.sort();
            for (name, v) in c {
                extra.push((with(r.labels.clone(), "counter", name), *v));
            }
        }
        gauge(
            enc,
            "vswitch_port_type_counter",
            "Counters particular to the port's type, by name (vhost-user guest errors, DPDK \
             misses, AF_XDP ring shortfalls...; see docs/operating.md); most only grow",
            extra,
        )
    }

    fn encode_pmds(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let rows = &self.pmds;
        let each = |f: fn(&v1::PmdStats) -> u64| {
            rows.iter()
                .map(move |(l, p)| (l.clone(), f(p)))
                .collect::<Vec<_>>()
        };
        gauge(
            enc,
            "vswitch_pmd_info",
            "A poll thread, with the CPU it is pinned to (`none`: not pinned)",
            rows.iter()
                .map(|(l, p)| {
                    let cpu = p.core_id.map_or("none".to_string(), |c| c.to_string());
                    (with(l.clone(), "cpu", cpu), 1)
                })
                .collect(),
        )?;
        gauge(
            enc,
            "vswitch_pmd_rx_queues",
            "Receive queues the poll thread serves",
            rows.iter()
                .map(|(l, p)| (l.clone(), p.rxqs.len() as u64))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_pmd_busy_cycles",
            "CPU cycles spent on polls that found packets",
            each(|p| p.busy_cycles),
        )?;
        counter(
            enc,
            "vswitch_pmd_idle_cycles",
            "CPU cycles spent on empty polls and backing off",
            each(|p| p.idle_cycles),
        )?;
        counter_f(
            enc,
            "vswitch_pmd_busy_seconds",
            "Time spent on polls that found packets",
            rows.iter()
                .map(|(l, p)| (l.clone(), p.busy_ns as f64 / 1e9))
                .collect(),
        )?;
        counter_f(
            enc,
            "vswitch_pmd_idle_seconds",
            "Time spent on empty polls and backing off",
            rows.iter()
                .map(|(l, p)| (l.clone(), p.idle_ns as f64 / 1e9))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_pmd_rx_packets",
            "Packets the poll thread received",
            each(|p| p.rx_packets),
        )?;
        counter(
            enc,
            "vswitch_pmd_tx_packets",
            "Packets the poll thread sent",
            each(|p| p.tx_packets),
        )?;
        counter(
            enc,
            "vswitch_pmd_rx_batches",
            "Non-empty receive bursts",
            each(|p| p.rx_batches),
        )?;
        let mut hits = Vec::new();
        for (l, p) in rows {
            hits.push((with(l.clone(), "level", "exact"), p.emc_hit));
            hits.push((with(l.clone(), "level", "megaflow"), p.megaflow_hit));
        }
        counter(
            enc,
            "vswitch_pmd_cache_hits",
            "Packets whose actions came from a flow cache, by level (exact-match cache, megaflow cache)",
            hits,
        )?;
        counter(
            enc,
            "vswitch_pmd_cache_misses",
            "Packets that missed both caches and went through the tables (slow path)",
            each(|p| p.slow_path),
        )?;
        counter(
            enc,
            "vswitch_pmd_megaflows_installed",
            "Megaflows installed after a miss",
            each(|p| p.megaflow_installed),
        )?;
        counter(
            enc,
            "vswitch_pmd_megaflows_removed",
            "Megaflows removed (flow changes, revalidation)",
            each(|p| p.megaflow_removed),
        )?;
        counter(
            enc,
            "vswitch_pmd_megaflow_cache_full",
            "Misses whose megaflow was not installed because the cache was full",
            each(|p| p.megaflow_full),
        )?;
        counter(
            enc,
            "vswitch_pmd_cache_flushes",
            "Times the poll thread flushed its caches",
            each(|p| p.cache_flush),
        )?;
        let mut drops = Vec::new();
        for (l, p) in rows {
            for r in DropReason::ALL {
                let n = p.drops.get(r.name()).copied().unwrap_or(0);
                drops.push((with(l.clone(), "reason", r.name()), n));
            }
        }
        counter(
            enc,
            "vswitch_pmd_drops",
            "Packets the poll thread dropped, by reason",
            drops,
        )
    }

    fn encode_tables(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let rows = &self.tables;
        gauge(
            enc,
            "vswitch_table_flows",
            "Flows in the table (tables holding flows)",
            rows.iter()
                .map(|(l, t)| (l.clone(), t.active_count as u64))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_table_lookups",
            "Packets looked up in the table (cached hits count for the tables their translation visited)",
            rows.iter()
                .map(|(l, t)| (l.clone(), t.lookup_count))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_table_matches",
            "Lookups in the table that matched a flow",
            rows.iter()
                .map(|(l, t)| (l.clone(), t.matched_count))
                .collect(),
        )
    }

    fn encode_meters_and_groups(
        &self,
        enc: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let m = &self.meters;
        gauge(
            enc,
            "vswitch_meter_flows",
            "Flows that use the meter",
            m.iter()
                .map(|(l, s)| (l.clone(), s.flow_count as u64))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_meter_packets",
            "Packets that reached the meter",
            m.iter()
                .map(|(l, s)| (l.clone(), s.packet_in_count))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_meter_bytes",
            "Bytes that reached the meter",
            m.iter()
                .map(|(l, s)| (l.clone(), s.byte_in_count))
                .collect(),
        )?;
        let bands = |f: fn(&v1::BandStats) -> u64| {
            m.iter()
                .flat_map(move |(l, s)| {
                    s.bands
                        .iter()
                        .enumerate()
                        .map(move |(i, b)| (with(l.clone(), "band", i), f(b)))
                })
                .collect::<Vec<_>>()
        };
        counter(
            enc,
            "vswitch_meter_band_packets",
            "Packets over the band's rate (dropped or remarked), by band index",
            bands(|b| b.packet_count),
        )?;
        counter(
            enc,
            "vswitch_meter_band_bytes",
            "Bytes over the band's rate, by band index",
            bands(|b| b.byte_count),
        )?;
        let g = &self.groups;
        gauge(
            enc,
            "vswitch_group_flows",
            "Flows that use the group",
            g.iter()
                .map(|(l, s)| (l.clone(), s.ref_count as u64))
                .collect(),
        )?;
        counter(
            enc,
            "vswitch_group_packets",
            "Packets the group processed",
            g.iter().map(|(l, s)| (l.clone(), s.packet_count)).collect(),
        )?;
        counter(
            enc,
            "vswitch_group_bytes",
            "Bytes the group processed",
            g.iter().map(|(l, s)| (l.clone(), s.byte_count)).collect(),
        )?;
        let buckets = |f: fn(&v1::BucketStats) -> u64| {
            g.iter()
                .flat_map(move |(l, s)| {
                    s.buckets
                        .iter()
                        .enumerate()
                        .map(move |(i, b)| (with(l.clone(), "bucket", i), f(b)))
                })
                .collect::<Vec<_>>()
        };
        counter(
            enc,
            "vswitch_group_bucket_packets",
            "Packets sent through the bucket, by bucket index",
            buckets(|b| b.packet_count),
        )?;
        counter(
            enc,
            "vswitch_group_bucket_bytes",
            "Bytes sent through the bucket, by bucket index",
            buckets(|b| b.byte_count),
        )
    }

    fn encode_queues_macs_tunnels(
        &self,
        enc: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let q = &self.queues;
        counter(
            enc,
            "vswitch_queue_tx_packets",
            "Packets the egress queue sent",
            q.iter().map(|(l, s)| (l.clone(), s.tx_packets)).collect(),
        )?;
        counter(
            enc,
            "vswitch_queue_tx_bytes",
            "Bytes the egress queue sent",
            q.iter().map(|(l, s)| (l.clone(), s.tx_bytes)).collect(),
        )?;
        counter(
            enc,
            "vswitch_queue_tx_dropped",
            "Packets dropped because the egress queue was full",
            q.iter().map(|(l, s)| (l.clone(), s.tx_dropped)).collect(),
        )?;
        gauge(
            enc,
            "vswitch_queue_backlog_packets",
            "Packets waiting in the egress queue",
            q.iter()
                .map(|(l, s)| (l.clone(), s.backlog_packets))
                .collect(),
        )?;
        let m = &self.macs;
        let each = |f: fn(&v1::MacTableStats) -> u64| {
            m.iter()
                .map(move |(l, s)| (l.clone(), f(s)))
                .collect::<Vec<_>>()
        };
        gauge(
            enc,
            "vswitch_mac_entries",
            "Entries in the bridge's MAC learning table",
            each(|s| s.entries),
        )?;
        gauge(
            enc,
            "vswitch_mac_capacity",
            "Entries the MAC learning table can hold",
            each(|s| s.capacity),
        )?;
        counter(
            enc,
            "vswitch_mac_learned",
            "MAC addresses learned",
            each(|s| s.learned),
        )?;
        counter(
            enc,
            "vswitch_mac_moved",
            "Known MAC addresses seen on another port (station moves)",
            each(|s| s.moved),
        )?;
        counter(
            enc,
            "vswitch_mac_evicted",
            "Entries evicted to make room",
            each(|s| s.evicted),
        )?;
        counter(
            enc,
            "vswitch_mac_aged",
            "Entries removed by aging",
            each(|s| s.aged),
        )?;
        counter(
            enc,
            "vswitch_mac_tunnel_sources_full",
            "Stations behind a flow-based tunnel learned without their remote (the table of tunnel sources was full)",
            each(|s| s.tunnel_sources_full),
        )?;
        let mut t = Vec::new();
        for ep in &self.tunnels {
            for (reason, n) in &ep.drops {
                t.push((
                    vec![
                        ("endpoint", ep.endpoint.clone()),
                        ("reason", reason.to_string()),
                    ],
                    *n,
                ));
            }
        }
        counter(
            enc,
            "vswitch_tunnel_drops",
            "Packets a tunnel endpoint dropped, by reason",
            t,
        )?;
        counter(
            enc,
            "vswitch_tunnel_no_endpoint_drops",
            "Packets sent to tunnel ports that have no endpoint",
            vec![(Labels::new(), self.no_endpoint_drops)],
        )
    }
}

/// Writes a counter family (nothing when it has no rows).
fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: Vec<(Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in &rows {
        ConstCounter::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}

/// Writes a counter family of real numbers (seconds).
fn counter_f(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: Vec<(Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in &rows {
        ConstCounter::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}

/// Writes a gauge family.
fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: Vec<(Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (l, v) in &rows {
        ConstGauge::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}
