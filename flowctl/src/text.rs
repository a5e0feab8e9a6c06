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
    let _ = writeln!(
        s,
        "     config:     {}",
        if p.admin_up { "0" } else { "PORT_DOWN" }
    );
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
/// port_status reason=add port_no=3 name=p3 type=memory admin_up=true link_up=true
/// mac_learned vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1
/// mac_aged vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1
/// error code=INVALID_ARGUMENT message=...
/// ```
pub fn event_text(ev: &StreamMessageResponse) -> Option<String> {
    use stream_message_response::Update;
    let s = match ev.update.as_ref()? {
        Update::Arbitration(_) => return None,
        Update::PacketIn(p) => format!(
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
        ),
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
mod tests {
    use super::*;
    use proto::v1::{
        BandStats, BucketStats, ControllerStatus, FlowRemoved, MacLearned, PacketIn, PortStatus,
        Role,
    };
    use stream_message_response::Update;

    #[test]
    fn show_layout() {
        let b = Bridge {
            name: "br0".into(),
            datapath_id: 1,
            fail_mode: 0,
            n_tables: 255,
            pmd_cpus: vec![],
            ports: vec![
                PortDesc {
                    port_no: OFPP_LOCAL,
                    name: "br0".into(),
                    r#type: "internal".into(),
                    admin_up: false,
                    ..Default::default()
                },
                PortDesc {
                    port_no: 1,
                    name: "vx0".into(),
                    r#type: "vxlan".into(),
                    options: [
                        ("remote_ip".into(), "192.0.2.1".into()),
                        ("key".into(), "42".into()),
                    ]
                    .into(),
                    hw_addr: vec![2, 0, 0, 0, 0, 1],
                    mtu: 1500,
                    admin_up: true,
                    link_up: true,
                    speed_mbps: 10000,
                },
            ],
            controllers: vec![],
            fail_open: true,
            ct_limits: None,
            controller_status: vec![
                ControllerStatus {
                    target: "ptcp:6653".into(),
                    is_connected: true,
                    role: Role::Primary as i32,
                    connections: 1,
                    remote: "127.0.0.1:40412".into(),
                    packet_in_sent: 10,
                    ..Default::default()
                },
                ControllerStatus {
                    target: "tcp:192.0.2.9".into(),
                    last_error: "connecting to 192.0.2.9:6653: Connection refused".into(),
                    sec_since_change: 3,
                    ..Default::default()
                },
            ],
        };
        let expected = "\
bridge br0: dpid:0000000000000001
n_tables:255, fail_mode:standalone (failing open: every packet to NORMAL)
 1(vx0): addr:02:00:00:00:00:01
     type: vxlan
     options: key=42, remote_ip=192.0.2.1
     config:     0
     state:      0
     speed: 10000 Mbps now
     mtu: 1500
 LOCAL(br0):
     type: internal
     config:     PORT_DOWN
     state:      LINK_DOWN
     speed: 0 Mbps now
 controller \"ptcp:6653\": is_connected:true role:master connections:1 remote:127.0.0.1:40412
     packet_in_sent:10 packet_in_dropped:0
 controller \"tcp:192.0.2.9\": is_connected:false role:equal connections:0
     packet_in_sent:0 packet_in_dropped:0
     last_error: connecting to 192.0.2.9:6653: Connection refused (3s ago)
";
        assert_eq!(bridge_text(&b), expected);
    }

    #[test]
    fn dump_ports_layout() {
        let p = PortStats {
            port_no: 1,
            rx_packets: 10,
            rx_bytes: 600,
            tx_packets: 5,
            tx_bytes: 300,
            tx_dropped: 1,
            ..Default::default()
        };
        assert_eq!(
            port_stats_text(&p),
            "  port  1: rx pkts=10, bytes=600, drop=0, errs=0\n           tx pkts=5, bytes=300, drop=1, errs=0\n"
        );
        let local = PortStats {
            port_no: OFPP_LOCAL,
            ..Default::default()
        };
        assert!(port_stats_text(&local).starts_with("  port LOCAL: rx pkts=0"));
    }

    #[test]
    fn dump_tables_layout() {
        let t = TableStats {
            table_id: 0,
            active_count: 2,
            lookup_count: 10,
            matched_count: 8,
        };
        assert_eq!(
            table_stats_text(&t),
            "  table 0:\n    active=2, lookup=10, matched=8\n"
        );
        assert!(table_is_active(&t));
        assert!(!table_is_active(&TableStats::default()));
    }

    #[test]
    fn fdb_layout() {
        let e = MacEntry {
            port: 1,
            port_name: "p1".into(),
            vlan: 10,
            mac: vec![0x50, 0x54, 0, 0, 0, 1],
            age_sec: 3,
            ..MacEntry::default()
        };
        assert_eq!(
            fdb_text(&[e]),
            " port  VLAN  MAC                Age\n    1    10  50:54:00:00:00:01    3\n"
        );
        let t = MacEntry {
            port: 4,
            mac: vec![2, 0, 0, 0, 0, 2],
            remote_ip: "172.16.0.2".into(),
            tun_id: 42,
            ..MacEntry::default()
        };
        assert_eq!(
            fdb_text(&[t]),
            " port  VLAN  MAC                Age\n    4     0  02:00:00:00:00:02    0  remote_ip=172.16.0.2 tun_id=42\n"
        );
    }

    #[test]
    fn meter_and_group_stats_layout() {
        let m = MeterStats {
            meter_id: 1,
            flow_count: 2,
            packet_in_count: 100,
            byte_in_count: 6000,
            duration_ns: 2_500_000_000,
            bands: vec![BandStats {
                packet_count: 7,
                byte_count: 420,
            }],
        };
        assert_eq!(
            meter_stats_text(&m),
            "meter:1 flow_count:2 packet_in_count:100 byte_in_count:6000 duration:2.500s bands:\n0: packet_count:7 byte_count:420\n"
        );
        let g = GroupStats {
            group_id: 4,
            ref_count: 1,
            packet_count: 3,
            byte_count: 180,
            duration_ns: 1_000_000_000,
            buckets: vec![BucketStats {
                packet_count: 3,
                byte_count: 180,
            }],
        };
        assert_eq!(
            group_stats_text(&g),
            " group_id=4,duration=1.000s,ref_count=1,packet_count=3,byte_count=180,bucket0:packet_count=3,byte_count=180\n"
        );
    }

    #[test]
    fn fdb_stats_layout() {
        let s = MacTableStats {
            entries: 2,
            capacity: 8192,
            learned: 3,
            moved: 4,
            evicted: 5,
            aged: 1,
            tunnel_sources_full: 6,
        };
        assert_eq!(
            fdb_stats_text("br0", &s),
            "Statistics for bridge \"br0\":\n\
             \x20 Current/maximum MAC entries in the table: 2/8192\n\
             \x20 Total number of learned MAC entries     : 3\n\
             \x20 Total number of expired MAC entries     : 1\n\
             \x20 Total number of evicted MAC entries     : 5\n\
             \x20 Total number of port moved MAC entries  : 4\n\
             \x20 Tunnel sources not recorded (table full): 6\n"
        );
    }

    #[test]
    fn pmd_layout() {
        let p = PmdStats {
            pmd_id: 0,
            core_id: Some(1),
            rx_packets: 100,
            emc_hit: 90,
            megaflow_hit: 8,
            slow_path: 2,
            megaflow_installed: 2,
            megaflow_full: 5,
            megaflow_removed: 6,
            cache_flush: 7,
            tx_packets: 97,
            drops: [("no_route".to_string(), 3u64), ("zero".to_string(), 0)].into(),
            busy_ns: 1000,
            idle_ns: 3000,
            busy_cycles: 2500,
            idle_cycles: 7500,
            rx_batches: 4,
            bridge: "br0".into(),
            rxqs: vec![proto::v1::PmdRxq {
                port_no: 1,
                port_name: "p1".into(),
                queue: 0,
            }],
        };
        let t = pmd_stats_text(&p);
        assert!(t.starts_with(
            "pmd thread 0 core_id 1:\n  bridge br0, rx queues: p1:0\n  packets received: 100\n"
        ));
        assert!(t.contains("  packets dropped: 3\n    no_route: 3\n"));
        assert!(t.contains(
            "  megaflows installed: 2\n  megaflows not installed (cache full): 5\n  megaflows removed: 6\n  cache flushes: 7\n  packets sent: 97\n"
        ));
        assert!(!t.contains("zero"));
        assert!(t.contains("  idle time: 3000 ns (75.00%)\n"));
        assert!(t.contains("avg processing time per packet: 10.0 ns"));
        assert!(t.contains("  avg cycles per packet: 100.0\n"));
        assert!(t.contains("  avg processing cycles per packet: 25.0\n"));
        assert!(t.contains("  avg packets per rx batch: 25.0\n"));
        let idle = pmd_stats_text(&PmdStats::default());
        assert!(!idle.contains("idle time"));
    }

    #[test]
    fn event_lines() {
        let pi = StreamMessageResponse {
            update: Some(Update::PacketIn(PacketIn {
                bridge: "br0".into(),
                reason: PacketInReason::NoMatch as i32,
                table_id: 0,
                cookie: 0x10,
                r#match: proto::flow_text::parse_flow("in_port=1,actions=drop")
                    .unwrap()
                    .r#match,
                in_port: 1,
                data: vec![0; 60],
                total_len: 60,
            })),
        };
        assert_eq!(
            event_text(&pi).unwrap(),
            "packet_in reason=no_match table_id=0 cookie=0x10 in_port=1 total_len=60 data_len=60 match=in_port=1"
        );
        let fr = StreamMessageResponse {
            update: Some(Update::FlowRemoved(FlowRemoved {
                reason: FlowRemovedReason::Delete as i32,
                priority: 100,
                duration_ns: 1_500_000_000,
                ..Default::default()
            })),
        };
        assert_eq!(
            event_text(&fr).unwrap(),
            "flow_removed reason=delete table_id=0 priority=100 cookie=0x0 duration=1.500s idle_timeout=0 hard_timeout=0 n_packets=0 n_bytes=0 match="
        );
        let ps = StreamMessageResponse {
            update: Some(Update::PortStatus(PortStatus {
                bridge: "br0".into(),
                reason: PortStatusReason::Add as i32,
                port: Some(PortDesc {
                    port_no: 3,
                    name: "p3".into(),
                    r#type: "memory".into(),
                    admin_up: true,
                    link_up: true,
                    ..Default::default()
                }),
            })),
        };
        assert_eq!(
            event_text(&ps).unwrap(),
            "port_status reason=add port_no=3 name=p3 type=memory admin_up=true link_up=true"
        );
        let ml = StreamMessageResponse {
            update: Some(Update::MacLearned(MacLearned {
                bridge: "br0".into(),
                vlan: 0,
                mac: vec![2, 0, 0, 0, 0, 1],
                port: 1,
                port_name: "p1".into(),
            })),
        };
        assert_eq!(
            event_text(&ml).unwrap(),
            "mac_learned vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(0), "0.000s");
        assert_eq!(duration_text(12_345_678_901), "12.345s");
    }
}
