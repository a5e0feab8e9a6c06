//! The collector: at each scrape, reads the switch's statistics calls (the same ones
//! `flowctl dump-ports`, `dump-tables`, `pmd-stats`... answer from) and writes them as
//! metric families.
//!
//! What it reads, and why no poll thread waits for it: [`Switch::port_stats`],
//! [`Switch::list_ports`], [`Switch::pmd_stats`], [`Switch::table_stats`],
//! [`Switch::meter_stats`], [`Switch::queue_stats`], [`Switch::group_stats`],
//! [`Switch::mac_table_stats`], [`Switch::conntrack_stats`] (see `conntrack`),
//! [`Switch::tunnel_drops`] and [`Switch::tunnel_no_endpoint_drops`]. They take the switch
//! lock, which poll threads never take, load the datapath snapshot (an atomic pointer), and
//! read counters that are atomics with one writer, or per-thread slots summed on read
//! (ports, poll threads, tables, groups, meters, policers, the MAC table, conntrack, tunnel
//! drops, egress queues' published counters). None
//! takes a lock a poll thread also takes, with one exception in the kernel: an AF_XDP
//! port's `XDP_STATISTICS` takes the socket's mutex, which a poll thread's transmit kick
//! also takes, for as long as reading six counters; the port reads them at most every
//! `datapath::port::afxdp::KERNEL_STATS_EVERY` (100 ms) however often it is scraped.
//! (AF_PACKET's `PACKET_STATISTICS` takes the socket's receive queue spinlock, which the
//! receive path and `poll()` take too: held for two counters with preemption off, so nobody
//! waits longer than that.)
//!
//! Whatever those calls report flows through unchanged: the families are tables of (name,
//! help, field of the API message) below, so a counter the API starts to fill shows here
//! with no change to the reading code.
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
pub(super) type Labels = Vec<(&'static str, String)>;

/// Series of one family: labels and value.
pub(super) type Rows = Vec<(Labels, u64)>;

/// A family read from one field of an API message: name, help, counter or gauge, field.
type Spec<T> = (&'static str, &'static str, MetricType, fn(&T) -> u64);

pub(super) const C: MetricType = MetricType::Counter;
pub(super) const G: MetricType = MetricType::Gauge;

/// A port's statistics and link state.
struct PortRow {
    stats: v1::PortStats,
    link_up: bool,
}

#[rustfmt::skip]
const PORT: &[Spec<PortRow>] = &[
    ("vswitch_port_rx_packets", "Packets received by the port", C, |p| p.stats.rx_packets),
    ("vswitch_port_rx_bytes", "Bytes received by the port", C, |p| p.stats.rx_bytes),
    ("vswitch_port_rx_dropped", "Received packets dropped (no buffer, ingress policing, the kernel below the port)", C, |p| p.stats.rx_dropped),
    ("vswitch_port_rx_errors", "Receive errors", C, |p| p.stats.rx_errors),
    ("vswitch_port_tx_packets", "Packets sent by the port", C, |p| p.stats.tx_packets),
    ("vswitch_port_tx_bytes", "Bytes sent by the port", C, |p| p.stats.tx_bytes),
    ("vswitch_port_tx_dropped", "Packets the port could not send (ring full, link down)", C, |p| p.stats.tx_dropped),
    ("vswitch_port_tx_errors", "Transmit errors", C, |p| p.stats.tx_errors),
    ("vswitch_port_link_resets", "Times the port lost its interface (or tunnel endpoint)", C, |p| p.stats.link_resets),
    ("vswitch_port_link_up", "1 while the port's link is up, 0 while it is down", G, |p| p.link_up as u64),
];

#[rustfmt::skip]
const PMD: &[Spec<v1::PmdStats>] = &[
    ("vswitch_pmd_rx_queues", "Receive queues the poll thread serves", G, |p| p.rxqs.len() as u64),
    ("vswitch_pmd_busy_cycles", "CPU cycles spent on polls that found packets", C, |p| p.busy_cycles),
    ("vswitch_pmd_idle_cycles", "CPU cycles spent on empty polls and backing off", C, |p| p.idle_cycles),
    ("vswitch_pmd_rx_packets", "Packets the poll thread received", C, |p| p.rx_packets),
    ("vswitch_pmd_tx_packets", "Packets the poll thread sent", C, |p| p.tx_packets),
    ("vswitch_pmd_rx_batches", "Non-empty receive bursts", C, |p| p.rx_batches),
    ("vswitch_pmd_cache_misses", "Packets that missed both caches and went through the tables (slow path)", C, |p| p.slow_path),
    ("vswitch_pmd_megaflows_installed", "Megaflows installed after a miss", C, |p| p.megaflow_installed),
    ("vswitch_pmd_megaflows_removed", "Megaflows removed (flow changes, revalidation)", C, |p| p.megaflow_removed),
    ("vswitch_pmd_megaflow_cache_full", "Misses whose megaflow was not installed because the cache was full", C, |p| p.megaflow_full),
    ("vswitch_pmd_cache_flushes", "Times the poll thread flushed its caches", C, |p| p.cache_flush),
];

#[rustfmt::skip]
const TABLE: &[Spec<v1::TableStats>] = &[
    ("vswitch_table_flows", "Flows in the table", G, |t| t.active_count as u64),
    ("vswitch_table_lookups", "Packets looked up in the table (cached hits count for the tables their translation visited)", C, |t| t.lookup_count),
    ("vswitch_table_matches", "Lookups in the table that matched a flow", C, |t| t.matched_count),
];

#[rustfmt::skip]
const METER: &[Spec<v1::MeterStats>] = &[
    ("vswitch_meter_flows", "Flows that use the meter", G, |m| m.flow_count as u64),
    ("vswitch_meter_packets", "Packets that reached the meter", C, |m| m.packet_in_count),
    ("vswitch_meter_bytes", "Bytes that reached the meter", C, |m| m.byte_in_count),
];

#[rustfmt::skip]
const BAND: &[Spec<v1::BandStats>] = &[
    ("vswitch_meter_band_packets", "Packets over the band's rate (dropped or remarked), by band index", C, |b| b.packet_count),
    ("vswitch_meter_band_bytes", "Bytes over the band's rate, by band index", C, |b| b.byte_count),
];

#[rustfmt::skip]
const GROUP: &[Spec<v1::GroupStats>] = &[
    ("vswitch_group_flows", "Flows that use the group", G, |g| g.ref_count as u64),
    ("vswitch_group_packets", "Packets the group processed", C, |g| g.packet_count),
    ("vswitch_group_bytes", "Bytes the group processed", C, |g| g.byte_count),
];

#[rustfmt::skip]
const BUCKET: &[Spec<v1::BucketStats>] = &[
    ("vswitch_group_bucket_packets", "Packets sent through the bucket, by bucket index", C, |b| b.packet_count),
    ("vswitch_group_bucket_bytes", "Bytes sent through the bucket, by bucket index", C, |b| b.byte_count),
];

#[rustfmt::skip]
const QUEUE: &[Spec<v1::QueueStats>] = &[
    ("vswitch_queue_tx_packets", "Packets the egress queue sent", C, |q| q.tx_packets),
    ("vswitch_queue_tx_bytes", "Bytes the egress queue sent", C, |q| q.tx_bytes),
    ("vswitch_queue_tx_dropped", "Packets dropped because the egress queue was full", C, |q| q.tx_dropped),
    ("vswitch_queue_backlog_packets", "Packets waiting in the egress queue", G, |q| q.backlog_packets),
];

#[rustfmt::skip]
const MAC: &[Spec<v1::MacTableStats>] = &[
    ("vswitch_mac_entries", "Entries in the bridge's MAC learning table", G, |m| m.entries),
    ("vswitch_mac_capacity", "Entries the MAC learning table can hold", G, |m| m.capacity),
    ("vswitch_mac_learned", "MAC addresses learned", C, |m| m.learned),
    ("vswitch_mac_moved", "Known MAC addresses seen on another port (station moves)", C, |m| m.moved),
    ("vswitch_mac_evicted", "Entries evicted to make room", C, |m| m.evicted),
    ("vswitch_mac_aged", "Entries removed by aging", C, |m| m.aged),
    ("vswitch_mac_tunnel_sources_full", "Stations behind a flow-based tunnel learned without their remote (the table of tunnel sources was full)", C, |m| m.tunnel_sources_full),
];

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
        s.encode(&mut enc)
    }
}

/// Everything one scrape reports, read before anything is written.
#[derive(Default)]
struct Sample {
    ports: Vec<(Labels, PortRow)>,
    pmds: Vec<(Labels, v1::PmdStats)>,
    tables: Vec<(Labels, v1::TableStats)>,
    meters: Vec<(Labels, v1::MeterStats)>,
    groups: Vec<(Labels, v1::GroupStats)>,
    queues: Vec<(Labels, v1::QueueStats)>,
    macs: Vec<(Labels, v1::MacTableStats)>,
    ct: Vec<v1::ConntrackStats>,
    tunnels: Vec<TunnelDrops>,
    no_endpoint_drops: u64,
}

/// `labels` plus `k="v"`.
fn with(labels: &Labels, k: &'static str, v: impl ToString) -> Labels {
    let mut l = labels.clone();
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
            let br: Labels = vec![("bridge", b.to_string())];
            let descs: BTreeMap<String, (String, bool)> = sw
                .list_ports(b)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name, (p.r#type, p.link_up)))
                .collect();
            for stats in sw.port_stats(b, None).unwrap_or_default() {
                let (ty, link_up) = descs.get(&stats.name).cloned().unwrap_or_default();
                let l = with(&with(&br, "port", &stats.name), "type", ty);
                s.ports.push((l, PortRow { stats, link_up }));
            }
            for t in sw.table_stats(b).unwrap_or_default() {
                s.tables.push((with(&br, "table", t.table_id), t));
            }
            for m in sw.meter_stats(b, None).unwrap_or_default() {
                s.meters.push((with(&br, "meter", m.meter_id), m));
            }
            for g in sw.group_stats(b, None).unwrap_or_default() {
                s.groups.push((with(&br, "group", g.group_id), g));
            }
            for q in sw.queue_stats(b, None, None).unwrap_or_default() {
                let l = with(&with(&br, "port", &q.port_name), "queue", q.queue_id);
                s.queues.push((l, q));
            }
            if let Ok(m) = sw.mac_table_stats(b) {
                s.macs.push((br, m));
            }
        }
        // Poll threads are numbered per bridge, in the order the switch lists them.
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for p in sw.pmd_stats() {
            let i = index.entry(p.bridge.clone()).or_default();
            s.pmds.push((
                vec![("bridge", p.bridge.clone()), ("pmd", i.to_string())],
                p,
            ));
            *i += 1;
        }
        s.ct = sw.conntrack_stats("").unwrap_or_default();
        s.tunnels = sw.tunnel_drops();
        s.no_endpoint_drops = sw.tunnel_no_endpoint_drops();
        s
    }

    fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        specs(enc, PORT, &self.ports)?;
        let mut extra = Rows::new();
        for (l, p) in &self.ports {
            let mut c: Vec<_> = p.stats.counters.iter().collect();
            c.sort();
            extra.extend(c.into_iter().map(|(k, v)| (with(l, "counter", k), *v)));
        }
        family(
            enc,
            "vswitch_port_type_stat",
            "Counters particular to the port's type, by name (vhost-user guest errors, DPDK \
             misses...; see docs/operating.md); most only grow",
            G,
            extra,
        )?;
        self.encode_pmds(enc)?;
        specs(enc, TABLE, &self.tables)?;
        specs(enc, METER, &self.meters)?;
        specs(enc, BAND, &indexed(&self.meters, "band", |m| &m.bands))?;
        specs(enc, GROUP, &self.groups)?;
        specs(
            enc,
            BUCKET,
            &indexed(&self.groups, "bucket", |g| &g.buckets),
        )?;
        specs(enc, QUEUE, &self.queues)?;
        specs(enc, MAC, &self.macs)?;
        super::conntrack::encode(enc, &self.ct)?;
        let mut t = Rows::new();
        for ep in &self.tunnels {
            let l = vec![("endpoint", ep.endpoint.clone())];
            t.extend(ep.drops.iter().map(|(r, n)| (with(&l, "reason", r), *n)));
        }
        family(
            enc,
            "vswitch_tunnel_drops",
            "Packets a tunnel endpoint dropped, by reason",
            C,
            t,
        )?;
        family(
            enc,
            "vswitch_tunnel_no_endpoint_drops",
            "Packets sent to tunnel ports that have no endpoint",
            C,
            vec![(Labels::new(), self.no_endpoint_drops)],
        )
    }

    /// The poll threads' families: those read from one field, then the ones with a label
    /// of their own (CPU, cache level, drop reason) and the times in seconds.
    fn encode_pmds(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let rows = &self.pmds;
        let info = rows.iter().map(|(l, p)| {
            let cpu = p.core_id.map_or("none".to_string(), |c| c.to_string());
            (with(l, "cpu", cpu), 1)
        });
        let help = "A poll thread, with the CPU it is pinned to (`none`: not pinned)";
        family(enc, "vswitch_pmd_info", help, G, info.collect())?;
        specs(enc, PMD, rows)?;
        for (name, help, ns) in [
            (
                "vswitch_pmd_busy_seconds",
                "Time spent on polls that found packets",
                (|p| p.busy_ns) as fn(&v1::PmdStats) -> u64,
            ),
            (
                "vswitch_pmd_idle_seconds",
                "Time spent on empty polls and backing off",
                |p| p.idle_ns,
            ),
        ] {
            let secs = rows.iter().map(|(l, p)| (l.clone(), ns(p) as f64 / 1e9));
            seconds(enc, name, help, secs.collect())?;
        }
        let mut hits = Rows::new();
        let mut drops = Rows::new();
        for (l, p) in rows {
            hits.push((with(l, "level", "exact"), p.emc_hit));
            hits.push((with(l, "level", "megaflow"), p.megaflow_hit));
            for r in DropReason::ALL {
                let n = p.drops.get(r.name()).copied().unwrap_or(0);
                drops.push((with(l, "reason", r.name()), n));
            }
        }
        family(
            enc,
            "vswitch_pmd_cache_hits",
            "Packets whose actions came from a flow cache, by level (exact-match cache, \
             megaflow cache)",
            C,
            hits,
        )?;
        family(
            enc,
            "vswitch_pmd_drops",
            "Packets the poll thread dropped, by reason",
            C,
            drops,
        )
    }
}

/// The `sub` entries of each row (a meter's bands, a group's buckets), labelled with their
/// index under `key`.
fn indexed<T, S: Clone>(
    rows: &[(Labels, T)],
    key: &'static str,
    sub: impl Fn(&T) -> &Vec<S>,
) -> Vec<(Labels, S)> {
    rows.iter()
        .flat_map(|(l, t)| {
            sub(t)
                .iter()
                .enumerate()
                .map(move |(i, s)| (with(l, key, i), s.clone()))
        })
        .collect()
}

/// Writes one family per spec over `rows`.
fn specs<T>(
    enc: &mut DescriptorEncoder<'_>,
    specs: &[Spec<T>],
    rows: &[(Labels, T)],
) -> Result<(), std::fmt::Error> {
    for (name, help, kind, get) in specs {
        let values = rows.iter().map(|(l, t)| (l.clone(), get(t))).collect();
        family(enc, name, help, *kind, values)?;
    }
    Ok(())
}

/// Writes a counter or gauge family (nothing when it has no rows).
pub(super) fn family(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: Rows,
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let help = format!("{help}.");
    let mut m = enc.encode_descriptor(name, &help, None, kind)?;
    for (l, v) in &rows {
        let e = m.encode_family(l)?;
        if kind == MetricType::Counter {
            ConstCounter::new(*v).encode(e)?;
        } else {
            ConstGauge::new(*v).encode(e)?;
        }
    }
    Ok(())
}

/// Writes a counter family in seconds.
fn seconds(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: Vec<(Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let help = format!("{help}.");
    let mut m = enc.encode_descriptor(name, &help, None, MetricType::Counter)?;
    for (l, v) in &rows {
        ConstCounter::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}
