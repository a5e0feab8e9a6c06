//! Tests of `text.rs`'s printed forms.

use super::*;
use proto::v1::{
    BandStats, BucketStats, ControllerStatus, FlowRemoved, MacLearned, PacketIn, PortStatus, Role,
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
                openflow_config: 0,
            },
        ],
        controllers: vec![],
        fail_open: true,
        ct_limits: None,
        ct_timeouts: None,
        mirrors: vec![],
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
            ..Default::default()
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

#[test]
fn port_config_is_named_as_ovs_ofctl_names_it() {
    let p = PortDesc {
        admin_up: true,
        ..Default::default()
    };
    assert_eq!(config_text(&p), "0");
    let p = PortDesc {
        admin_up: false,
        openflow_config: 1 | 0x20 | 0x40,
        ..Default::default()
    };
    assert_eq!(config_text(&p), "PORT_DOWN NO_FWD NO_PACKET_IN");
}
