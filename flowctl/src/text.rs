//! Text output of the read commands, in the layout of the ovs-vsctl / ovs-ofctl /
//! ovs-appctl command each one mirrors (without OpenFlow message headers such as
//! `OFPST_PORT reply (xid=0x2):`). Flows, meters and groups are printed by
//! `proto::flow_text`; this module prints the rest.
//!
//! Every function returns the text (each line ending in `\n`) so tests can check it.

use std::fmt::Write as _;

use proto::flow_text::{OFPP_CONTROLLER, OFPP_LOCAL, format_match};
use proto::v1::{
    Bridge, FailMode, FlowRemovedReason, GroupStats, MacEntry, MacTableStats, MeterStats,
    PacketInReason, PmdStats, PortDesc, PortStats, PortStatusReason, QueueStats,
    StreamMessageResponse, TableStats, stream_message_response,
};

use crate::error::code_name;
use crate::json::{hex_text, mac_text};

/// A port number as ovs-ofctl prints it: `LOCAL`, `CONTROLLER` or the number.
pub fn port_no_text(n: u32) -> String {
    match n {
        OFPP_LOCAL => "LOCAL".into(),
        OFPP_CONTROLLER => "CONTROLLER".into(),
        n => n.to_string(),
    }
}

/// `1.500s` from nanoseconds.
pub fn duration_text(ns: u64) -> String {
    format!("{}.{:03}s", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}

/// `lower_case` name of an enum value without its prefix, or the number.
fn enum_text(full: Option<&'static str>, prefix: &str, v: i32) -> String {
    match full {
        Some(f) => f.strip_prefix(prefix).unwrap_or(f).to_ascii_lowercase(),
        None => v.to_string(),
    }
}

/// One bridge as `ovs-ofctl show` prints it, plus port types, options and MTU:
///
/// ```text
/// bridge br0: dpid:0000000000000001
/// n_tables:255, fail_mode:standalone
///  1(p1): addr:02:00:00:00:00:01
///      type: vxlan
///      options: key=42, remote_ip=192.0.2.1
///      config:     0
///      state:      0
///      speed: 10000 Mbps now
///      mtu: 1500
/// ```
pub fn bridge_text(b: &Bridge) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "bridge {}: dpid:{:016x}", b.name, b.datapath_id);
    let fail = enum_text(
        FailMode::try_from(b.fail_mode)
            .ok()
            .map(|m| m.as_str_name()),
        "FAIL_MODE_",
        b.fail_mode,
    );
    let open = if b.fail_open {
        " (failing open: every packet to NORMAL)"
    } else {
        ""
    };
    let _ = writeln!(s, "n_tables:{}, fail_mode:{fail}{open}", b.n_tables);
    let mut ports: Vec<&PortDesc> = b.ports.iter().collect();
    ports.sort_by_key(|p| p.port_no);
    for p in ports {
        s.push_str(&port_desc_text(p));
    }
    s.push_str(&crate::controllers::status_text(b));
    s
}

/// One port of `show`.
pub fn port_desc_text(p: &PortDesc) -> String {
    let mut s = String::new();
    let _ = write!(s, " {}({})", port_no_text(p.port_no), p.name);
    if p.hw_addr.is_empty() {
        s.push_str(":\n");
    } else {
        let _ = writeln!(s, ": addr:{}", mac_text(&p.hw_addr));
    }
    let ty = if p.r#type.is_empty() {
        "system"
    } else {
        &p.r#type
    };
    let _ = writeln!(s, "     type: {ty}");
    if !p.options.is_empty() {
        let mut opts: Vec<(&String, &String)> = p.options.iter().collect();
        opts.sort();
        let list: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "     options: {}", list.join(", "));
    }
    let _ = writeln!(s, "     config:     {}", config_text(p));
    let _ = writeln!(
        s,
        "     state:      {}",
        if p.link_up { "0" } else { "LINK_DOWN" }
    );
    let _ = writeln!(s, "     speed: {} Mbps now", p.speed_mbps);
    if p.mtu != 0 {
        let _ = writeln!(s, "     mtu: {}", p.mtu);
    }
    s
}

/// `ovs-ofctl dump-ports` lines for one port:
///
/// ```text
///   port  1: rx pkts=10, bytes=600, drop=0, errs=0
///            tx pkts=5, bytes=300, drop=0, errs=0
///            rx_bad_descriptor=0, connects=1, ...   (counters particular to the port type)
/// ```
pub fn port_stats_text(p: &PortStats) -> String {
    let head = format!("  port {:>2}: ", port_no_text(p.port_no));
    let mut extra = String::new();
    if !p.counters.is_empty() {
        let mut c: Vec<_> = p.counters.iter().collect();
        c.sort();
        let list: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
        extra = format!("{:width$}{}\n", "", list.join(", "), width = head.len());
    }
    format!(
        "{head}rx pkts={}, bytes={}, drop={}, errs={}\n{:width$}tx pkts={}, bytes={}, drop={}, errs={}\n{extra}",
        p.rx_packets,
        p.rx_bytes,
        p.rx_dropped,
        p.rx_errors,
        "",
        p.tx_packets,
        p.tx_bytes,
        p.tx_dropped,
        p.tx_errors,
        width = head.len(),
    )
}

/// One tunnel endpoint, `ovs-appctl tnl/neigh/show` style:
///
/// ```text
/// endpoint br1-tep 172.16.0.1/24 mac 02:..:..
/// IP               MAC                 Age
/// 172.16.0.2       02:00:00:00:ee:02   1200 ms
/// drops: tunnel_neigh_miss=1
/// ```
pub fn tunnel_endpoint_text(e: &proto::v1::TunnelEndpointInfo) -> String {
    let mac = |m: &[u8]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut s = format!("endpoint {} {} mac {}", e.name, e.ip, mac(&e.mac));
    if !e.gw.is_empty() {
        let _ = write!(s, " gw {}", e.gw);
    }
    s.push('\n');
    let _ = writeln!(s, "{:<16} {:<19} Age", "IP", "MAC");
    for n in &e.neighbours {
        let _ = writeln!(s, "{:<16} {:<19} {} ms", n.ip, mac(&n.mac), n.age_ms);
    }
    if !e.drops.is_empty() {
        let mut d: Vec<_> = e.drops.iter().collect();
        d.sort();
        let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "drops: {}", parts.join(" "));
    }
    s
}

/// `ovs-ofctl queue-stats` line for one queue:
///
/// ```text
///   port 2 queue 1: bytes=1500, pkts=1, errors=0, backlog=0
/// ```
pub fn queue_stats_text(q: &QueueStats) -> String {
    format!(
        "  port {} queue {}: bytes={}, pkts={}, errors={}, backlog={}\n",
        port_no_text(q.port_no),
        q.queue_id,
        q.tx_bytes,
        q.tx_packets,
        q.tx_dropped,
        q.backlog_packets
    )
}

/// `ovs-ofctl dump-tables` lines for one table.
pub fn table_stats_text(t: &TableStats) -> String {
    format!(
        "  table {}:\n    active={}, lookup={}, matched={}\n",
        t.table_id, t.active_count, t.lookup_count, t.matched_count
    )
}

/// Whether dump-tables shows a table: it has flows or has seen lookups.
pub fn table_is_active(t: &TableStats) -> bool {
    t.active_count != 0 || t.lookup_count != 0
}

/// `ovs-ofctl meter-stats` lines for one meter.
pub fn meter_stats_text(m: &MeterStats) -> String {
    let mut s = format!(
        "meter:{} flow_count:{} packet_in_count:{} byte_in_count:{} duration:{} bands:\n",
        m.meter_id,
        m.flow_count,
        m.packet_in_count,
        m.byte_in_count,
        duration_text(m.duration_ns)
    );
    for (i, b) in m.bands.iter().enumerate() {
        let _ = writeln!(
            s,
            "{i}: packet_count:{} byte_count:{}",
            b.packet_count, b.byte_count
        );
    }
    s
}

/// `ovs-ofctl dump-group-stats` line for one group.
pub fn group_stats_text(g: &GroupStats) -> String {
    let mut s = format!(
        " group_id={},duration={},ref_count={},packet_count={},byte_count={}",
        g.group_id,
        duration_text(g.duration_ns),
        g.ref_count,
        g.packet_count,
        g.byte_count
    );
    for (i, b) in g.buckets.iter().enumerate() {
        let _ = write!(
            s,
            ",bucket{i}:packet_count={},byte_count={}",
            b.packet_count, b.byte_count
        );
    }
    s.push('\n');
    s
}

/// `ovs-appctl fdb/stats-show`, plus what learning behind flow-based tunnel ports adds:
///
/// ```text
/// Statistics for bridge "br0":
///   Current/maximum MAC entries in the table: 2/8192
///   Total number of learned MAC entries     : 2
///   Total number of expired MAC entries     : 0
///   Total number of evicted MAC entries     : 0
///   Total number of port moved MAC entries  : 0
///   Tunnel sources not recorded (table full): 0
/// ```
pub fn fdb_stats_text(bridge: &str, s: &MacTableStats) -> String {
    let mut out = format!("Statistics for bridge {bridge:?}:\n");
    let _ = writeln!(
        out,
        "  Current/maximum MAC entries in the table: {}/{}",
        s.entries, s.capacity
    );
    let _ = writeln!(
        out,
        "  Total number of learned MAC entries     : {}",
        s.learned
    );
    let _ = writeln!(
        out,
        "  Total number of expired MAC entries     : {}",
        s.aged
    );
    let _ = writeln!(
        out,
        "  Total number of evicted MAC entries     : {}",
        s.evicted
    );
    let _ = writeln!(
        out,
        "  Total number of port moved MAC entries  : {}",
        s.moved
    );
    let _ = writeln!(
        out,
        "  Tunnel sources not recorded (table full): {}",
        s.tunnel_sources_full
    );
    out
}

/// `ovs-appctl fdb/show`: a header, then one line per entry.
pub fn fdb_text(entries: &[MacEntry]) -> String {
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for e in entries {
        let _ = writeln!(
            s,
            "{:>5}  {:>4}  {}  {:>3}",
            port_no_text(e.port),
            e.vlan,
            mac_text(&e.mac),
            e.age_sec
        );
        if !e.remote_ip.is_empty() {
            // Learned behind a flow-based tunnel port: where it came from.
            s.pop();
            let _ = writeln!(s, "  remote_ip={} tun_id={}", e.remote_ip, e.tun_id);
        }
    }
    s
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// `ovs-appctl dpif-netdev/pmd-stats-show` for one poll-mode thread.
pub fn pmd_stats_text(p: &PmdStats) -> String {
    let mut s = match p.core_id {
        Some(c) => format!("pmd thread {} core_id {c}:\n", p.pmd_id),
        None => format!("pmd thread {}:\n", p.pmd_id),
    };
    if !p.bridge.is_empty() {
        let rxqs: Vec<String> = p
            .rxqs
            .iter()
            .map(|q| format!("{}:{}", q.port_name, q.queue))
            .collect();
        let _ = writeln!(s, "  bridge {}, rx queues: {}", p.bridge, rxqs.join(" "));
    }
    let _ = writeln!(s, "  packets received: {}", p.rx_packets);
    let _ = writeln!(s, "  emc hits: {}", p.emc_hit);
    let _ = writeln!(s, "  megaflow hits: {}", p.megaflow_hit);
    let _ = writeln!(s, "  slow path: {}", p.slow_path);
    let _ = writeln!(s, "  megaflows installed: {}", p.megaflow_installed);
    let _ = writeln!(
        s,
        "  megaflows not installed (cache full): {}",
        p.megaflow_full
    );
    let _ = writeln!(s, "  megaflows removed: {}", p.megaflow_removed);
    let _ = writeln!(s, "  cache flushes: {}", p.cache_flush);
    let _ = writeln!(s, "  packets sent: {}", p.tx_packets);
    let total_drops: u64 = p.drops.values().sum();
    let _ = writeln!(s, "  packets dropped: {total_drops}");
    let mut drops: Vec<(&String, &u64)> = p.drops.iter().filter(|(_, n)| **n != 0).collect();
    drops.sort();
    for (reason, n) in drops {
        let _ = writeln!(s, "    {reason}: {n}");
    }
    let total_ns = p.busy_ns.saturating_add(p.idle_ns);
    if total_ns != 0 {
        let _ = writeln!(
            s,
            "  idle time: {} ns ({:.2}%)",
            p.idle_ns,
            percent(p.idle_ns, total_ns)
        );
        let _ = writeln!(
            s,
            "  processing time: {} ns ({:.2}%)",
            p.busy_ns,
            percent(p.busy_ns, total_ns)
        );
        if p.rx_packets != 0 {
            let _ = writeln!(
                s,
                "  avg processing time per packet: {:.1} ns",
                p.busy_ns as f64 / p.rx_packets as f64
            );
        }
    }
    let total_cycles = p.busy_cycles.saturating_add(p.idle_cycles);
    if p.rx_packets != 0 && total_cycles != 0 {
        let per = |c: u64| c as f64 / p.rx_packets as f64;
        let _ = writeln!(s, "  avg cycles per packet: {:.1}", per(total_cycles));
        let _ = writeln!(
            s,
            "  avg processing cycles per packet: {:.1}",
            per(p.busy_cycles)
        );
    }
    if p.rx_batches != 0 {
        let _ = writeln!(
            s,
            "  avg packets per rx batch: {:.1}",
            p.rx_packets as f64 / p.rx_batches as f64
        );
    }
    s
}

/// One stream event on one line, `KIND key=value ...`; `None` for messages that are not
/// events (the arbitration answer).
///
/// ```text
/// packet_in reason=no_match table_id=0 cookie=0x0 in_port=1 total_len=60 data_len=60 match=in_port=1
/// flow_removed reason=idle_timeout table_id=0 priority=100 cookie=0x0 duration=10.002s idle_timeout=10 hard_timeout=0 n_packets=0 n_bytes=0 match=ip,nw_dst=10.0.0.1
/// A port's OpenFlow configuration bits as `ovs-ofctl show` names them, `0` for none.
pub(crate) fn config_text(p: &PortDesc) -> String {
    let bits = p.openflow_config | if p.admin_up { 0 } else { 1 };
    let names: Vec<&str> = [
        (1, "PORT_DOWN"),
        (1 << 2, "NO_RECV"),
        (1 << 5, "NO_FWD"),
        (1 << 6, "NO_PACKET_IN"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join(" ")
    }
}

/// port_status reason=add port_no=3 name=p3 type=memory admin_up=true link_up=true
/// mac_learned vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1
/// mac_aged vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1
/// error code=INVALID_ARGUMENT message=...
/// ```
pub fn event_text(ev: &StreamMessageResponse) -> Option<String> {
    use stream_message_response::Update;
    let s = match ev.update.as_ref()? {
        Update::Arbitration(_) => return None,
        Update::PacketIn(p) => {
            format!(
                "packet_in reason={} table_id={} cookie=0x{:x} in_port={} total_len={} data_len={} match={}",
                enum_text(
                    PacketInReason::try_from(p.reason)
                        .ok()
                        .map(|r| r.as_str_name()),
                    "PACKET_IN_REASON_",
                    p.reason
                ),
                p.table_id,
                p.cookie,
                port_no_text(p.in_port),
                p.total_len,
                p.data.len(),
                p.r#match.as_ref().map(format_match).unwrap_or_default()
            ) + &packet_in_extra(p)
        }
        Update::FlowRemoved(f) => format!(
            "flow_removed reason={} table_id={} priority={} cookie=0x{:x} duration={} idle_timeout={} hard_timeout={} n_packets={} n_bytes={} match={}",
            enum_text(
                FlowRemovedReason::try_from(f.reason)
                    .ok()
                    .map(|r| r.as_str_name()),
                "FLOW_REMOVED_REASON_",
                f.reason
            ),
            f.table_id,
            f.priority,
            f.cookie,
            duration_text(f.duration_ns),
            f.idle_timeout,
            f.hard_timeout,
            f.packet_count,
            f.byte_count,
            f.r#match.as_ref().map(format_match).unwrap_or_default()
        ),
        Update::PortStatus(ps) => {
            let reason = enum_text(
                PortStatusReason::try_from(ps.reason)
                    .ok()
                    .map(|r| r.as_str_name()),
                "PORT_STATUS_REASON_",
                ps.reason,
            );
            let p = ps.port.clone().unwrap_or_default();
            format!(
                "port_status reason={reason} port_no={} name={} type={} admin_up={} link_up={}",
                port_no_text(p.port_no),
                p.name,
                if p.r#type.is_empty() {
                    "system"
                } else {
                    &p.r#type
                },
                p.admin_up,
                p.link_up
            )
        }
        Update::MacLearned(m) => format!(
            "mac_learned vlan={} mac={} port={} port_name={}",
            m.vlan,
            mac_text(&m.mac),
            port_no_text(m.port),
            m.port_name
        ),
        Update::MacAged(m) => format!(
            "mac_aged vlan={} mac={} port={} port_name={}",
            m.vlan,
            mac_text(&m.mac),
            port_no_text(m.port),
            m.port_name
        ),
        Update::Error(e) => format!("error code={} message={}", code_name(e.code), e.message),
        Update::Controller(c) => crate::controllers::event_text(c),
    };
    Some(s)
}

/// Hex dump helper for packet data in messages (used by packet-out errors).
pub fn short_hex(data: &[u8]) -> String {
    const MAX: usize = 32;
    if data.len() <= MAX {
        hex_text(data)
    } else {
        format!("{}...", hex_text(&data[..MAX]))
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;

/// A packet-in's ` controller_id=N userdata=XX.XX` when its flow named them.
fn packet_in_extra(p: &proto::v1::PacketIn) -> String {
    let mut s = String::new();
    if p.controller_id != 0 {
        s += &format!(" controller_id={}", p.controller_id);
    }
    if !p.userdata.is_empty() {
        let b: Vec<String> = p.userdata.iter().map(|b| format!("{b:02x}")).collect();
        s += &format!(" userdata={}", b.join("."));
    }
    s
}
