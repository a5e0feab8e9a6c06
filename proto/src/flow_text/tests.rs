//! Unit and property tests of the flow text syntax.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::fields::{
    CONTEXTUAL, FIELDS, FieldDef, NXM_NAMES, Named, Syntax, canonical, field_def, field_def_i32,
    resolve_name,
};
use super::match_text::printed_fields;
use super::protocol::{Ctx, ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_MPLS, Prereq};
use super::*;
use crate::v1::{
    Action, ApplyActions, Band, BandType, Bucket, ClearActions, DecMplsTtl, DecTtl, Enqueue, Exit,
    Field, FieldMatch, Flow, FlowFilter, FlowFlags, Group, GroupType, HashField, Instruction,
    Match, Meter, MeterUnit, Move, Multipath, Note, Output, OutputField, PopMpls, PopQueue,
    PopVlan, PortRef, PushMpls, PushVlan, ReservedPort, Resubmit, SelectionMethod, SetField,
    SetVlanPcp, SetVlanVid, StackPop, StackPush, Subfield, WriteActions, WriteMetadata, action,
    instruction, port_ref,
};

fn fm(field: Field, value: &[u8], mask: &[u8]) -> FieldMatch {
    FieldMatch {
        field: field as i32,
        value: value.to_vec(),
        mask: mask.to_vec(),
        port_name: String::new(),
    }
}

fn apply(actions: Vec<Action>) -> Instruction {
    Instruction {
        instruction: Some(instruction::Instruction::ApplyActions(ApplyActions {
            actions,
        })),
    }
}

fn out_n(n: u32) -> Action {
    Action {
        action: Some(action::Action::Output(Output {
            port: Some(PortRef {
                port: Some(port_ref::Port::Number(n)),
            }),
            max_len: None,
        })),
    }
}

fn fields(f: &Flow) -> &[FieldMatch] {
    &f.r#match.as_ref().unwrap().fields
}

/// parse -> format -> parse gives the same flow, and the formatted text is stable.
fn round_trip(line: &str) -> Flow {
    let f = parse_flow(line).unwrap_or_else(|e| panic!("{line}: {e}\n{}", e.caret(line)));
    let text = format_flow(&f);
    let g = parse_flow(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(f, g, "{line} -> {text}");
    assert_eq!(format_flow(&g), text);
    let dump = format_flow_dump(&f);
    assert_eq!(parse_flow(&dump).unwrap(), f, "{dump}");
    f
}

#[test]
fn the_issue_example() {
    let line = "table=0,priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2";
    let f = round_trip(line);
    assert_eq!(f.table_id, 0);
    assert_eq!(f.priority, 100);
    assert_eq!(
        fields(&f),
        &[
            fm(Field::InPort, &[0, 0, 0, 1], &[]),
            fm(Field::EthType, &[8, 0], &[]),
            fm(Field::Ipv4Dst, &[10, 0, 0, 0], &[255, 255, 255, 0]),
        ]
    );
    assert_eq!(
        f.instructions,
        vec![apply(vec![
            Action {
                action: Some(action::Action::SetField(SetField {
                    field: Field::EthDst as i32,
                    value: vec![2, 0, 0, 0, 0, 2],
                    mask: vec![],
                })),
            },
            out_n(2),
        ])]
    );
    assert_eq!(
        format_flow(&f),
        "priority=100,ip,in_port=1,nw_dst=10.0.0.0/24 actions=set_field:02:00:00:00:00:02->eth_dst,output:2"
    );
}

#[test]
fn real_ovs_ofctl_lines() {
    let lines = [
        "actions=normal",
        "priority=0,actions=NORMAL",
        "table=0,actions=drop",
        "in_port=1,actions=output:2",
        "in_port=eth0,actions=output:eth1",
        "in_port=LOCAL,actions=2",
        "priority=10,dl_src=00:11:22:33:44:55,dl_dst=ff:ff:ff:ff:ff:ff,actions=flood",
        "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=all",
        "dl_vlan=100,actions=strip_vlan,output:3",
        "dl_vlan=0xffff,actions=mod_vlan_vid:10,output:4",
        "dl_vlan=5,dl_vlan_pcp=3,actions=pop_vlan,normal",
        "vlan_tci=0x1000/0x1000,actions=drop",
        "ip,nw_src=192.168.1.0/255.255.255.0,actions=output:1",
        "ip,nw_src=10.0.0.1,nw_dst=10.0.0.0/8,nw_tos=184,nw_ecn=1,nw_ttl=64,actions=dec_ttl,output:1",
        "ip,ip_dscp=46,actions=set_queue:1,normal",
        "tcp,tp_dst=80,actions=controller",
        "tcp,nw_dst=10.0.0.1,tp_dst=0x50/0xfff0,actions=controller:128",
        "tcp,tcp_flags=+syn-ack,actions=controller(max_len=64)",
        "tcp,tcp_flags=0x002/0x012,actions=drop",
        "tcp6,ipv6_dst=2001:db8::/32,tcp_dst=443,actions=output:1",
        "udp,udp_src=68,udp_dst=67,actions=local",
        "udp6,tp_src=546,actions=in_port",
        "sctp,tp_dst=9,actions=drop",
        "icmp,icmp_type=8,icmp_code=0,actions=normal",
        "icmp6,icmp_type=135,actions=normal",
        "icmp6,icmpv6_type=136,icmpv6_code=0,actions=normal",
        "ipv6,ipv6_src=fe80::1/64,actions=drop",
        "ipv6,ipv6_src=2001:db8::1/ffff:ffff::,actions=drop",
        "arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,actions=flood",
        "arp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_proto=2,actions=normal",
        "arp,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:00,actions=normal",
        "dl_type=0x88cc,actions=controller",
        "tun_id=0x5,actions=output:1",
        "tun_id=0x5/0xff,tun_src=192.0.2.1,tun_dst=192.0.2.0/24,in_port=vxlan0,actions=goto_table:1",
        "table=1,metadata=0x1/0xff,actions=output:1",
        "table=2,reg0=0x5,reg7=0x10/0xf0,actions=goto_table:3",
        "cookie=0x123,table=1,priority=200,idle_timeout=30,hard_timeout=300,send_flow_rem,ip,actions=drop",
        "cookie=0x1/-1,check_overlap,reset_counts,actions=drop",
        "table=0,priority=100,ip,actions=meter:1,output:2",
        "table=0,actions=meter:2,write_metadata:0x5/0xff,goto_table:4",
        "table=0,actions=write_metadata:0xa,goto_table:1",
        "ip,actions=set_field:10.0.0.9->ip_dst,set_field:10.0.0.8->nw_src,output:1",
        "ip,actions=mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:32,output:1",
        "tcp,actions=mod_tp_src:1000,mod_tp_dst:2000,output:1",
        "udp,actions=set_field:53->udp_dst,output:1",
        "actions=mod_dl_src:02:00:00:00:00:01,set_field:0x1/0xff->reg3,output:1",
        "actions=set_field:4101->vlan_vid,push_vlan:0x8100,group:7,output:1",
        "actions=push_vlan:0x88a8,set_field:3->vlan_pcp,output:1",
        "actions=load:0x5->NXM_NX_REG0[],output:1",
        "actions=load:0x5->reg1[],output:1",
        "actions=set_field:0xabc->tun_id,output:1",
        "actions=set_field:0xf->metadata,output:1",
        "actions=output:1,output:2,output:3",
        "  table=3 , priority=5 ,  ip  actions=output:1 ",
    ];
    for l in lines {
        round_trip(l);
    }
}

#[test]
fn defaults_and_shorthands() {
    let f = round_trip("actions=drop");
    assert_eq!(f.priority, DEFAULT_PRIORITY);
    assert!(f.instructions.is_empty());
    assert_eq!(format_flow(&f), "actions=drop");
    let f = round_trip("tcp6,actions=drop");
    assert_eq!(
        fields(&f),
        &[
            fm(Field::EthType, &[0x86, 0xdd], &[]),
            fm(Field::IpProto, &[6], &[])
        ]
    );
    // An explicit spelling prints as the shorthand.
    let f = parse_flow("dl_type=0x0800,nw_proto=17,actions=drop").unwrap();
    assert_eq!(format_flow(&f), "udp actions=drop");
    // Redundant but consistent is fine; contradictory is not.
    assert!(parse_flow("tcp,nw_proto=6,actions=drop").is_ok());
    assert!(parse_flow("tcp,dl_type=0x0800,actions=drop").is_ok());
    let e = parse_flow("tcp,nw_proto=17,actions=drop").unwrap_err();
    assert_eq!(e.offset, 4);
}

#[test]
fn context_dependent_names() {
    let f = parse_flow("arp,nw_src=10.0.0.1,nw_proto=1,actions=drop").unwrap();
    assert_eq!(
        fields(&f),
        &[
            fm(Field::EthType, &[8, 6], &[]),
            fm(Field::ArpOp, &[0, 1], &[]),
            fm(Field::ArpSpa, &[10, 0, 0, 1], &[]),
        ]
    );
    // Order does not matter: the protocol can come after the field.
    let a = parse_flow("tp_dst=80,nw_dst=1.2.3.4,tcp,actions=drop").unwrap();
    let b = parse_flow("tcp,nw_dst=1.2.3.4,tp_dst=80,actions=drop").unwrap();
    assert_eq!(a, b);
    assert_eq!(fields(&a)[3], fm(Field::TcpDst, &[0, 80], &[]));
    let u = parse_flow("udp,tp_src=5,actions=drop").unwrap();
    assert_eq!(fields(&u)[2], fm(Field::UdpSrc, &[0, 5], &[]));
    let i6 = parse_flow("icmp6,icmp_type=128,actions=drop").unwrap();
    assert_eq!(fields(&i6)[2], fm(Field::Icmpv6Type, &[128], &[]));
}

#[test]
fn masks_are_canonical() {
    let f = parse_flow("ip,nw_dst=10.1.2.3/24,actions=drop").unwrap();
    assert_eq!(
        fields(&f)[1],
        fm(Field::Ipv4Dst, &[10, 1, 2, 0], &[255, 255, 255, 0])
    );
    let f = parse_flow("ip,nw_dst=10.1.2.3/32,actions=drop").unwrap();
    assert_eq!(fields(&f)[1], fm(Field::Ipv4Dst, &[10, 1, 2, 3], &[]));
    let f = parse_flow("ip,nw_dst=10.1.2.3/0,actions=drop").unwrap();
    assert_eq!(fields(&f).len(), 1);
    let f = parse_flow("reg0=0x1234/0xffffffff,actions=drop").unwrap();
    assert_eq!(fields(&f)[0], fm(Field::Reg0, &[0, 0, 0x12, 0x34], &[]));
    let f = parse_flow("ip,nw_src=10.0.0.0/255.0.255.0,actions=drop").unwrap();
    assert!(format_flow(&f).contains("nw_src=10.0.0.0/255.0.255.0"));
}

#[test]
fn named_ports_are_kept_for_the_daemon() {
    let f = parse_flow("in_port=vhost-user-1,actions=output:dpdk0,output:3").unwrap();
    assert_eq!(fields(&f)[0].port_name, "vhost-user-1");
    assert!(fields(&f)[0].value.is_empty());
    let Some(instruction::Instruction::ApplyActions(a)) = &f.instructions[0].instruction else {
        panic!()
    };
    assert_eq!(
        a.actions[0],
        Action {
            action: Some(action::Action::Output(Output {
                port: Some(PortRef {
                    port: Some(port_ref::Port::Name("dpdk0".into()))
                }),
                max_len: None
            }))
        }
    );
    round_trip("in_port=vhost-user-1,actions=output:dpdk0,output:3");
}

#[test]
fn controller_forms() {
    for (text, max_len) in [
        ("actions=controller", None),
        ("actions=CONTROLLER", None),
        ("actions=output:controller", None),
        ("actions=controller:100", Some(100)),
        ("actions=controller(max_len=100)", Some(100)),
    ] {
        let f = round_trip(text);
        let Some(instruction::Instruction::ApplyActions(a)) = &f.instructions[0].instruction else {
            panic!()
        };
        let Some(action::Action::Output(o)) = &a.actions[0].action else {
            panic!()
        };
        assert_eq!(o.max_len, max_len, "{text}");
        assert_eq!(
            o.port.as_ref().unwrap().port,
            Some(port_ref::Port::Reserved(ReservedPort::Controller as i32))
        );
    }
}

#[test]
fn dump_flows_output_reads_back() {
    let mut f = parse_flow("cookie=0x2a,table=1,priority=100,idle_timeout=10,send_flow_rem,ip,nw_dst=10.0.0.0/24,actions=output:2").unwrap();
    f.stats = Some(crate::v1::FlowStats {
        duration_ns: 1_500_000_000,
        packet_count: 3,
        byte_count: 180,
        idle_ns: 2_000_000_000,
    });
    let dump = format_flow_dump(&f);
    assert_eq!(
        dump,
        "cookie=0x2a, duration=1.500s, table=1, n_packets=3, n_bytes=180, idle_timeout=10, send_flow_rem idle_age=2, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2"
    );
    let mut g = parse_flow(&dump).unwrap();
    assert_eq!(g.stats, None);
    g.stats = f.stats;
    assert_eq!(g, f);
    // A real ovs-ofctl dump line.
    let ovs = " cookie=0x0, duration=12.345s, table=0, n_packets=0, n_bytes=0, idle_age=12, priority=100,tcp,in_port=1,nw_dst=10.0.0.1,tp_dst=80 actions=output:2";
    let f = parse_flow(ovs).unwrap();
    assert_eq!(
        format_flow(&f),
        "priority=100,tcp,in_port=1,nw_dst=10.0.0.1,tp_dst=80 actions=output:2"
    );
}

#[test]
fn filters() {
    let f = parse_match("").unwrap();
    assert_eq!(f.table_id, None);
    assert_eq!(f.cookie_mask, 0);
    assert_eq!(f.r#match.as_ref().unwrap().fields.len(), 0);

    let f = parse_match("table=3,cookie=0x10/0xf0,out_port=2,tcp,tp_dst=22").unwrap();
    assert_eq!(f.table_id, Some(3));
    assert_eq!((f.cookie, f.cookie_mask), (0x10, 0xf0));
    assert_eq!(
        f.out_port,
        Some(PortRef {
            port: Some(port_ref::Port::Number(2))
        })
    );
    assert_eq!(f.r#match.as_ref().unwrap().fields.len(), 3);
    assert_eq!(parse_match(&format_filter(&f)).unwrap(), f);

    let f = parse_match("cookie=0x5/-1,priority=7,out_group=4,out_port=eth1").unwrap();
    assert_eq!((f.cookie, f.cookie_mask), (5, u64::MAX));
    assert_eq!(f.priority, Some(7));
    assert_eq!(f.out_group, Some(4));
    assert_eq!(parse_match(&format_filter(&f)).unwrap(), f);

    let f = parse_match("cookie=0x5").unwrap();
    assert_eq!((f.cookie, f.cookie_mask), (5, u64::MAX));

    let e = parse_match("ip,actions=drop").unwrap_err();
    assert_eq!(e.offset, 3);
}

#[test]
fn flow_modify() {
    let m = parse_flow_modify("cookie=0x1/0xff,ip,actions=output:3").unwrap();
    let fl = m.filter.as_ref().unwrap();
    assert_eq!((fl.cookie, fl.cookie_mask, fl.table_id), (1, 0xff, None));
    assert_eq!(m.new_cookie, None);
    assert_eq!(m.instructions, vec![apply(vec![out_n(3)])]);
    let m = parse_flow_modify("cookie=0x7,table=2,reset_counts,actions=drop").unwrap();
    assert_eq!(m.new_cookie, Some(7));
    assert!(m.reset_counts);
    assert_eq!(m.filter.unwrap().table_id, Some(2));
}

/// (input, offset, token, a word of the message)
const BAD: &[(&str, usize, &str, &str)] = &[
    ("in_port=1", 9, "", "missing `actions="),
    ("foo=1,actions=drop", 0, "foo", "unknown field"),
    ("ip,bogus,actions=drop", 3, "bogus", "unknown keyword"),
    (
        "ip,nw_dst=10.0.0.300,actions=drop",
        10,
        "10.0.0.300",
        "IPv4",
    ),
    ("ip,nw_dst=10.0.0.0/33,actions=drop", 19, "33", "prefix"),
    (
        "ip,nw_dst=10.0.0.0/255.0.0.x,actions=drop",
        19,
        "255.0.0.x",
        "IPv4",
    ),
    (
        "ipv6,ipv6_src=2001:db8::g,actions=drop",
        14,
        "2001:db8::g",
        "IPv6",
    ),
    (
        "dl_src=00:11:22:33:44,actions=drop",
        7,
        "00:11:22:33:44",
        "Ethernet",
    ),
    (
        "dl_src=00:11:22:33:44:55:66,actions=drop",
        7,
        "00:11:22:33:44:55:66",
        "Ethernet",
    ),
    (
        "nw_dst=10.0.0.1,actions=drop",
        0,
        "nw_dst=10.0.0.1",
        "requires an IPv4",
    ),
    (
        "ipv6,nw_src=10.0.0.1,actions=drop",
        5,
        "nw_src=10.0.0.1",
        "IPv4",
    ),
    ("ip,tp_dst=80,actions=drop", 3, "tp_dst", "TCP, UDP or SCTP"),
    ("tp_dst=80,actions=drop", 0, "tp_dst", "TCP, UDP or SCTP"),
    ("udp,tcp_dst=80,actions=drop", 4, "tcp_dst=80", "TCP"),
    ("ip,icmp_type=8,actions=drop", 3, "icmp_type=8", "ICMP"),
    (
        "ipv6,ipv6_dst=::1,arp_op=1,actions=drop",
        18,
        "arp_op=1",
        "ARP",
    ),
    ("nw_proto=6,actions=drop", 0, "nw_proto=6", "IP"),
    (
        "in_port=1/0xff,actions=drop",
        10,
        "0xff",
        "does not take a mask",
    ),
    (
        "dl_type=0x0800/0xffff,actions=drop",
        15,
        "0xffff",
        "does not take a mask",
    ),
    (
        "tcp,nw_proto=6/0xff,actions=drop",
        15,
        "0xff",
        "does not take a mask",
    ),
    ("dl_vlan_pcp=8,actions=drop", 12, "8", "at most 7"),
    ("dl_vlan=9/0x1,actions=drop", 8, "9/0x1", "invalid mask"),
    ("ip,nw_tos=3,actions=drop", 10, "3", "low 2"),
    (
        "tcp,tp_dst=65536,actions=drop",
        11,
        "65536",
        "at most 65535",
    ),
    ("table=254,actions=drop", 6, "254", "at most 253"),
    ("table=0,actions=goto_table:254", 27, "254", "at most 253"),
    ("priority=65536,actions=drop", 9, "65536", "at most 65535"),
    (
        "priority=1,priority=2,actions=drop",
        11,
        "priority=2",
        "twice",
    ),
    ("idle_timeout=x,actions=drop", 13, "x", "number"),
    ("cookie=0x1/0xff,actions=drop", 11, "0xff", "cookie mask"),
    ("out_port=1,actions=drop", 0, "out_port=1", "selects flows"),
    (
        "in_port=4294967041,actions=drop",
        8,
        "4294967041",
        "port number",
    ),
    ("in_port=eth0!,actions=drop", 8, "eth0!", "bad port"),
    ("in_port=flood,actions=drop", 8, "flood", "in_port may only"),
    ("actions=output:4294967041", 15, "4294967041", "port number"),
    ("actions=output", 8, "output", "needs an argument"),
    (
        "actions=learn(table=1)",
        8,
        "learn",
        "unknown or unsupported action",
    ),
    ("actions=frob!", 8, "frob!", "unknown action"),
    (
        "actions=sample(probability=1)",
        8,
        "sample",
        "not supported",
    ),
    (
        "actions=encap(nsh(md_type=1))",
        8,
        "encap",
        "Ethernet frames only",
    ),
    (
        "tcp,actions=fin_timeout(idle_timeout=5)",
        12,
        "fin_timeout",
        "keep their timeouts",
    ),
    (
        "actions=output:1,drop",
        17,
        "drop",
        "must not be accompanied",
    ),
    (
        "actions=drop,output:1",
        13,
        "output:1",
        "must not be accompanied",
    ),
    ("actions=output:1,meter:1", 17, "meter:1", "out of order"),
    (
        "actions=goto_table:1,output:1",
        21,
        "output:1",
        "out of order",
    ),
    (
        "table=3,actions=goto_table:2",
        16,
        "goto_table:2",
        "later table",
    ),
    ("actions=meter:0", 14, "0", "start at 1"),
    ("actions=set_field:10.0.0.1->nw_dst", 28, "nw_dst", "IPv4"),
    (
        "ip,actions=set_field:10.0.0.1->nw_dstx",
        31,
        "nw_dstx",
        "not a valid OXM field name",
    ),
    (
        "ip,actions=set_field:10.0.0.1",
        21,
        "10.0.0.1",
        "missing `->`",
    ),
    (
        "ip,actions=set_field:6->nw_proto",
        24,
        "nw_proto",
        "read-only",
    ),
    ("actions=mod_nw_dst:10.0.0.1", 8, "mod_nw_dst", "IPv4"),
    (
        "ip,actions=mod_tp_dst:80",
        11,
        "mod_tp_dst",
        "TCP, UDP or SCTP",
    ),
    (
        "actions=mod_vlan_vid:4096",
        21,
        "4096",
        "not a valid VLAN VID",
    ),
    ("actions=mod_nw_ecn:5", 19, "5", "not a valid ECN"),
    (
        "actions=output(port=all,max_len=64)",
        20,
        "all",
        "unsupported truncate port",
    ),
    (
        "actions=output(port=1,max_len=5)",
        30,
        "5",
        "less than the minimum value 14",
    ),
    ("actions=enqueue:123", 16, "123", "enqueue:PORT:QUEUE"),
    (
        "actions=set_mpls_label(0x100000)",
        23,
        "0x100000",
        "MPLS label",
    ),
    ("actions=set_mpls_ttl(256)", 21, "256", "MPLS ttl"),
    ("actions=set_mpls_tc", 8, "set_mpls_tc", "expected tc"),
    (
        "actions=apply_actions",
        8,
        "apply_actions",
        "default instruction",
    ),
    (
        "actions=goto_table:5,goto_table:6",
        21,
        "goto_table:6",
        "duplicate goto_table",
    ),
    (
        "mpls,mpls_label=5/0x1,actions=drop",
        18,
        "0x1",
        "does not take a mask",
    ),
    (
        "ip,nw_tos=0xf0/0xf0,actions=drop",
        10,
        "0xf0/0xf0",
        "invalid mask",
    ),
    (
        "tcp,tcp_flags=+ack-ack,actions=drop",
        18,
        "-ack",
        "only once",
    ),
    (
        "packet_type=(1,0x800),actions=drop",
        12,
        "(1,0x800)",
        "Ethernet",
    ),
    ("mpls_label=5,actions=drop", 0, "mpls_label=5", "MPLS"),
    (
        "icmp6,nd_target=::1,actions=drop",
        6,
        "nd_target=::1",
        "neighbour discovery",
    ),
    ("actions=push_vlan:0x0800", 18, "0x0800", "0x8100"),
    (
        "actions=controller(speed=1)",
        19,
        "speed=1",
        "unsupported controller option",
    ),
    (
        "actions=controller(max_len=1",
        8,
        "controller(max_len=1",
        ")",
    ),
    ("actions=load:16->reg0[0..3]", 13, "16", "does not fit"),
    (
        "tcp,tcp_flags=+syn+bogus,actions=drop",
        18,
        "+bogus",
        "TCP flag",
    ),
    ("send_flow_rem=1,actions=drop", 14, "1", "takes no value"),
];

#[test]
fn bad_flows_point_at_the_token() {
    let mut wrong = Vec::new();
    for (input, offset, token, word) in BAD {
        let e = match parse_flow(input) {
            Ok(f) => {
                wrong.push(format!("{input} parsed: {f:?}"));
                continue;
            }
            Err(e) => e,
        };
        if (e.offset, e.token.as_str()) != (*offset, *token) || !e.message.contains(word) {
            wrong.push(format!("{input}: {e}\n{}", e.caret(input)));
        }
        assert_eq!(
            input.get(e.offset..e.offset + e.token.len()),
            Some(e.token.as_str())
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn caret_points_under_the_token() {
    let input = "ip,nw_dst=10.0.0.300,actions=drop";
    let e = parse_flow(input).unwrap_err();
    assert_eq!(
        e.caret(input),
        "ip,nw_dst=10.0.0.300,actions=drop\n          ^^^^^^^^^^"
    );
    assert!(e.to_string().contains("10.0.0.300"));
}

#[test]
fn meters() {
    let m =
        parse_meter("meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000").unwrap();
    assert_eq!(m.id, 1);
    assert_eq!(m.unit, MeterUnit::Kbps as i32);
    assert!(m.burst && m.stats);
    assert_eq!(
        m.bands,
        vec![Band {
            r#type: BandType::Drop as i32,
            rate: 10000,
            burst_size: 2000,
            prec_level: 0
        }]
    );
    assert_eq!(
        format_meter(&m),
        "meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000"
    );
    assert_eq!(parse_meter(&format_meter(&m)).unwrap(), m);

    let m =
        parse_meter("meter=7,pktps,bands=type=drop,rate=100,type=dscp_remark,rate=50,prec_level=1")
            .unwrap();
    assert_eq!(m.bands.len(), 2);
    assert_eq!(m.unit, MeterUnit::Pktps as i32);
    assert_eq!(parse_meter(&format_meter(&m)).unwrap(), m);
    // dump-meters layout (spaces, newline).
    let m2 = parse_meter(
        "meter=7 pktps bands=\ntype=drop rate=100\ntype=dscp_remark rate=50 prec_level=1",
    )
    .unwrap();
    assert_eq!(m2, m);
    // `band=` as Open vSwitch reads it (and most guides write it), in each layout.
    for (band, bands) in [
        (
            "meter=1,kbps,band=type=drop,rate=10000",
            "meter=1,kbps,bands=type=drop,rate=10000",
        ),
        (
            "meter=7 pktps band=type=drop rate=100 type=dscp_remark rate=50 prec_level=1",
            "meter=7 pktps bands=type=drop rate=100 type=dscp_remark rate=50 prec_level=1",
        ),
        (
            "meter=3,kbps,burst,band=,type=drop,rate=5,burst_size=9",
            "meter=3,kbps,burst,bands=,type=drop,rate=5,burst_size=9",
        ),
    ] {
        let m = parse_meter(band).unwrap_or_else(|e| panic!("{band}: {e}"));
        assert_eq!(m, parse_meter(bands).unwrap(), "{band}");
        assert_eq!(parse_meter(&format_meter(&m)).unwrap(), m);
    }
    // Default unit.
    assert_eq!(
        parse_meter("meter=2,bands=type=drop,rate=1").unwrap().unit,
        MeterUnit::Kbps as i32
    );

    for (input, offset, token) in [
        ("meter=0,bands=type=drop,rate=1", 6, "0"),
        ("meter=1,kbps,pktps,bands=type=drop,rate=1", 13, "pktps"),
        ("meter=1,bands=type=police,rate=1", 19, "police"),
        ("meter=1,bands=type=drop", 14, "type=drop"),
        ("meter=1,bands=type=drop,rate=1,color=red", 31, "color=red"),
        (
            "meter=1,bands=type=drop,rate=1,prec_level=2",
            14,
            "type=drop",
        ),
        ("meter=1,kbps", 12, ""),
        ("meter=1,fast,bands=type=drop,rate=1", 8, "fast"),
        ("meter=1,band=type=drop", 13, "type=drop"),
        ("meter=1,band=rate=5", 13, "rate=5"),
        ("meter=1,band", 8, "band"),
        ("meter=1,kbps,band=", 13, "band="),
    ] {
        let e = parse_meter(input).unwrap_err();
        assert_eq!(
            (e.offset, e.token.as_str()),
            (offset, token),
            "{input}: {e}"
        );
    }
}

#[test]
fn groups() {
    let g = parse_group("group_id=1,type=select,bucket=weight:10,actions=output:1,bucket=weight:20,output:2,mod_vlan_vid:5").unwrap();
    assert_eq!(g.id, 1);
    assert_eq!(g.r#type, GroupType::Select as i32);
    assert_eq!(g.buckets.len(), 2);
    assert_eq!(g.buckets[0].weight, 10);
    assert_eq!(g.buckets[0].actions, vec![out_n(1)]);
    assert_eq!(g.buckets[1].actions.len(), 2);
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);
    assert_eq!(
        format_group(&g),
        "group_id=1,type=select,bucket=bucket_id:0,weight:10,actions=output:1,bucket=bucket_id:1,weight:20,actions=output:2,mod_vlan_vid:5"
    );
    // Open vSwitch's spellings: parameters after the actions, `=` for `:`, given ids kept
    // and the others the lowest free ones, a selection method with its fields.
    let g = parse_group("group_id=6,type=select,selection_method=hash,fields(ip_dst=255.255.255.0,nw_proto,tcp_src),bucket=output:10,weight=2000,bucket=bucket_id=0,watch_port:11,output:11").unwrap();
    assert_eq!(
        format_group(&g),
        "group_id=6,type=select,selection_method=hash,fields(ip_dst=255.255.255.0,nw_proto,tcp_src),bucket=bucket_id:1,weight:2000,actions=output:10,bucket=bucket_id:0,watch_port:11,actions=output:11"
    );
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);

    let g = parse_group("group_id=2,type=all,bucket=output:1,bucket=output:2,bucket=actions=drop")
        .unwrap();
    assert_eq!(g.buckets[2].actions, vec![]);
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);

    let g = parse_group("group_id=3,type=ff,bucket=watch_port:1,output:1,bucket=watch_port:eth2,watch_group:9,output:eth2").unwrap();
    assert_eq!(g.r#type, GroupType::FastFailover as i32);
    assert_eq!(g.buckets[1].watch_group, Some(9));
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);

    let g = parse_group("group_id=4,type=indirect,bucket=actions=set_field:0x1->reg0,output:1")
        .unwrap();
    assert_eq!(parse_group(&format_group(&g)).unwrap(), g);
    // Select buckets default to weight 1.
    let g = parse_group("group_id=5,type=select,bucket=output:1").unwrap();
    assert_eq!(g.buckets[0].weight, 1);

    for (input, offset, token) in [
        ("type=all,bucket=output:1", 0, ""),
        ("group_id=1,type=any", 16, "any"),
        (
            "group_id=1,type=all,bucket=weight:5,output:1",
            20,
            "bucket=weight:5",
        ),
        (
            "group_id=1,type=select,fields(eth_dst),bucket=output:1",
            23,
            "fields(eth_dst)",
        ),
        (
            "group_id=1,type=select,selection_method_param=1,bucket=output:1",
            23,
            "selection_method_param=1",
        ),
        ("group_id=1,type=ff,bucket=output:1", 19, "bucket=output:1"),
        (
            "group_id=1,type=indirect,bucket=output:1,bucket=output:2",
            11,
            "type=indirect",
        ),
        (
            "group_id=1,type=all,bucket=goto_table:1",
            27,
            "goto_table:1",
        ),
        ("group_id=1,type=all,bucket=output:1,bogus!", 36, "bogus!"),
        ("group_id=1,type=all,bucket=mod_tp_dst:80", 27, "mod_tp_dst"),
    ] {
        let e = parse_group(input).unwrap_err();
        assert_eq!(
            (e.offset, e.token.as_str()),
            (offset, token),
            "{input}: {e}"
        );
    }
}

#[test]
fn action_lists() {
    let a = parse_actions("output:1,mod_dl_src:02:00:00:00:00:01,NORMAL").unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(
        format_actions(&a),
        "output:1,set_field:02:00:00:00:00:01->eth_src,NORMAL"
    );
    assert_eq!(parse_actions("drop").unwrap(), vec![]);
    assert!(parse_actions("meter:1").is_err());
}

#[test]
fn descriptor_set_is_embedded() {
    assert!(crate::FILE_DESCRIPTOR_SET.len() > 1000);
    let needle = b"vswitch.v1";
    assert!(
        crate::FILE_DESCRIPTOR_SET
            .windows(needle.len())
            .any(|w| w == needle)
    );
}

#[test]
fn formatter_survives_malformed_messages() {
    // Wrong widths, unknown enums: printed, never a panic.
    let f = Flow {
        r#match: Some(Match {
            fields: vec![
                fm(Field::Ipv4Dst, &[1, 2, 3], &[]),
                FieldMatch {
                    field: 999,
                    ..fm(Field::InPort, &[1], &[])
                },
                fm(Field::VlanVid, &[], &[]),
            ],
        }),
        instructions: vec![
            Instruction { instruction: None },
            apply(vec![
                Action { action: None },
                Action {
                    action: Some(action::Action::Output(Output {
                        port: None,
                        max_len: Some(5),
                    })),
                },
            ]),
        ],
        ..Flow::default()
    };
    let s = format_flow(&f);
    assert!(s.contains("field999="), "{s}");
    let _ = format_flow_dump(&f);
    let _ = format_group(&Group {
        r#type: 77,
        ..Group::default()
    });
    let _ = format_meter(&Meter {
        unit: 9,
        ..Meter::default()
    });
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

/// A protocol profile: eth_type, ip_proto and ICMPv6 type pinned by the match.
fn profile() -> impl Strategy<Value = (Option<u16>, Option<u8>, Option<u8>)> {
    prop_oneof![
        Just((None, None, None)),
        Just((Some(ETH_IPV4), None, None)),
        Just((Some(ETH_IPV6), None, None)),
        Just((Some(ETH_ARP), None, None)),
        Just((Some(ETH_MPLS), None, None)),
        Just((Some(0x88cc), None, None)),
        Just((Some(ETH_IPV4), Some(6), None)),
        Just((Some(ETH_IPV4), Some(17), None)),
        Just((Some(ETH_IPV4), Some(132), None)),
        Just((Some(ETH_IPV4), Some(1), None)),
        Just((Some(ETH_IPV4), Some(47), None)),
        Just((Some(ETH_IPV6), Some(6), None)),
        Just((Some(ETH_IPV6), Some(17), None)),
        Just((Some(ETH_IPV6), Some(58), None)),
        Just((Some(ETH_IPV6), Some(58), Some(135))),
        Just((Some(ETH_IPV6), Some(58), Some(136))),
    ]
}

fn bits_value(d: &FieldDef, raw: u128) -> Vec<u8> {
    let bits = match d.syntax {
        Syntax::Int { bits, .. } => bits,
        _ => (d.width * 8) as u32,
    };
    let v = if bits >= 128 {
        raw
    } else {
        raw & ((1u128 << bits) - 1)
    };
    v.to_be_bytes()[16 - d.width..].to_vec()
}

/// A canonical FieldMatch for `d`, or None when the random mask is all zeros.
fn field_match(d: &FieldDef, raw: u128, raw_mask: u128, masked: bool) -> Option<FieldMatch> {
    let value = bits_value(d, raw);
    if !d.maskable || !masked {
        return Some(FieldMatch {
            field: d.field as i32,
            value,
            mask: vec![],
            port_name: String::new(),
        });
    }
    let mut mask = bits_value(d, raw_mask);
    // Masks of narrow int fields only cover the field's bits.
    if let Syntax::Int { bits, .. } = d.syntax
        && bits < 128
    {
        mask = bits_value(d, raw_mask & ((1u128 << bits) - 1));
    }
    let (value, mask) = canonical(d, value, mask)?;
    Some(FieldMatch {
        field: d.field as i32,
        value,
        mask,
        port_name: String::new(),
    })
}

fn port_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.-]{0,10}".prop_filter("not reserved", |s| is_valid_port_name(s))
}

fn arb_port() -> impl Strategy<Value = PortRef> {
    prop_oneof![
        (1u32..=MAX_PORT_NO).prop_map(port_ref::Port::Number),
        port_name().prop_map(port_ref::Port::Name),
        prop_oneof![
            Just(ReservedPort::InPort),
            Just(ReservedPort::Normal),
            Just(ReservedPort::Flood),
            Just(ReservedPort::All),
            Just(ReservedPort::Controller),
            Just(ReservedPort::Local),
        ]
        .prop_map(|r| port_ref::Port::Reserved(r as i32)),
    ]
    .prop_map(|p| PortRef { port: Some(p) })
}

#[derive(Debug, Clone)]
struct Raw {
    pick: Vec<(usize, u128, u128, bool)>,
}

fn arb_match() -> impl Strategy<Value = Match> {
    (
        profile(),
        proptest::collection::vec(
            (0usize..64, any::<u128>(), any::<u128>(), any::<bool>()),
            0..8,
        ),
        prop_oneof![Just(None), (1u32..=MAX_PORT_NO).prop_map(Some)],
        prop_oneof![Just(None), port_name().prop_map(Some)],
    )
        .prop_map(|((eth, proto, icmp), pick, in_no, in_name)| {
            let raw = Raw { pick };
            let mut fields: BTreeMap<i32, FieldMatch> = BTreeMap::new();
            if let Some(e) = eth {
                fields.insert(
                    Field::EthType as i32,
                    fm(Field::EthType, &e.to_be_bytes(), &[]),
                );
            }
            if let Some(p) = proto {
                fields.insert(Field::IpProto as i32, fm(Field::IpProto, &[p], &[]));
            }
            if let Some(t) = icmp {
                fields.insert(Field::Icmpv6Type as i32, fm(Field::Icmpv6Type, &[t], &[]));
            }
            let ctx = Ctx {
                eth_type: eth,
                ip_proto: proto,
                icmp_type: icmp,
                frag_later: false,
            };
            let allowed: Vec<&FieldDef> = FIELDS
                .iter()
                .filter(|d| {
                    let excluded = matches!(d.field, Field::EthType | Field::IpProto | Field::InPort)
                        // xreg / xxreg matches are read as the registers they are made of.
                        || is_wide_register(d.field)
                        // A later fragment has no transport header to match.
                        || (d.field == Field::IpFrag && proto.is_some());
                    !excluded && ctx.satisfies(d.prereq)
                })
                .collect();
            for (i, v, m, masked) in raw.pick {
                let Some(d) = allowed.get(i % allowed.len().max(1)) else {
                    continue;
                };
                // vlan_tci excludes the other VLAN fields.
                let vlan = [Field::VlanVid as i32, Field::VlanPcp as i32];
                if d.field == Field::VlanTci && vlan.iter().any(|f| fields.contains_key(f)) {
                    continue;
                }
                if vlan.contains(&(d.field as i32)) && fields.contains_key(&(Field::VlanTci as i32))
                {
                    continue;
                }
                if let Some(f) = field_match(d, v, m, masked) {
                    fields.entry(f.field).or_insert(f);
                }
            }
            if let Some(n) = in_no {
                fields.insert(
                    Field::InPort as i32,
                    fm(Field::InPort, &n.to_be_bytes(), &[]),
                );
            } else if let Some(name) = in_name {
                fields.insert(
                    Field::InPort as i32,
                    FieldMatch {
                        field: Field::InPort as i32,
                        port_name: name,
                        ..FieldMatch::default()
                    },
                );
            }
            // actset_output holds a port number or a reserved port (OFPP_UNSET..=LOCAL).
            if let Some(f) = fields.get_mut(&(Field::ActsetOutput as i32))
                && let Ok(b) = <[u8; 4]>::try_from(&f.value[..])
            {
                let n = u32::from_be_bytes(b);
                if n > MAX_PORT_NO && !(OFPP_UNSET..=OFPP_LOCAL).contains(&n) {
                    f.value = (n % (MAX_PORT_NO + 1)).to_be_bytes().to_vec();
                }
            }
            // The ct tuple fields need ct_state=+trk-inv, and ct_tp_* need ct_nw_proto.
            let ct_tuple =
                (Field::CtNwSrc as i32..=Field::CtTpDst as i32).any(|f| fields.contains_key(&f));
            if ct_tuple {
                fields.insert(Field::CtState as i32, fm(Field::CtState, &[0x20], &[0x30]));
                let tp = [Field::CtTpSrc as i32, Field::CtTpDst as i32];
                if tp.iter().any(|f| fields.contains_key(f)) {
                    fields
                        .entry(Field::CtNwProto as i32)
                        .or_insert_with(|| fm(Field::CtNwProto, &[6], &[]));
                }
            }
            // The VLAN fields in their canonical form (as the parser and the API give it).
            let m = Match {
                fields: fields.into_values().collect(),
            };
            check_match(&m).unwrap_or(m)
        })
}

fn arb_action(m: &Match) -> BoxedStrategy<Action> {
    let ctx = Ctx::of(m);
    let settable: Vec<&'static FieldDef> = FIELDS
        .iter()
        .filter(|d| d.settable && d.field != Field::InPort && ctx.satisfies(d.prereq))
        .collect();
    let set = (
        0..settable.len(),
        any::<u128>(),
        any::<u128>(),
        any::<bool>(),
    )
        .prop_filter_map("zero mask", move |(i, v, mk, masked)| {
            let d = settable.get(i)?;
            let f = field_match(d, v, mk, masked)?;
            Some(action::Action::SetField(SetField {
                field: f.field,
                value: f.value,
                mask: f.mask,
            }))
        });
    prop_oneof![
        (arb_port(), proptest::option::of(0u32..=65534)).prop_map(|(p, ml)| {
            let r = match p.port {
                Some(port_ref::Port::Reserved(r)) => ReservedPort::try_from(r).ok(),
                _ => None,
            };
            let max_len = match r {
                Some(ReservedPort::Controller) => ml,
                Some(ReservedPort::Local | ReservedPort::InPort) | None => ml.filter(|&n| n >= 14),
                _ => None,
            };
            action::Action::Output(Output {
                port: Some(p),
                max_len,
            })
        }),
        (0u32..=MAX_GROUP_ID).prop_map(action::Action::Group),
        any::<u32>().prop_map(action::Action::SetQueue),
        prop_oneof![Just(0x8100u32), Just(0x88a8)]
            .prop_map(|e| action::Action::PushVlan(PushVlan { ethertype: e })),
        Just(action::Action::PopVlan(PopVlan {})),
        Just(action::Action::DecTtl(DecTtl::default())),
        proptest::collection::vec(1u32..=65535, 1..4)
            .prop_map(|controller_ids| action::Action::DecTtl(DecTtl { controller_ids })),
        set,
        (arb_port(), any::<u32>()).prop_filter_map("ports enqueue takes", |(p, q)| {
            match p.port {
                Some(port_ref::Port::Reserved(r))
                    if r != ReservedPort::Local as i32 && r != ReservedPort::InPort as i32 =>
                {
                    None
                }
                _ => Some(action::Action::Enqueue(Enqueue {
                    port: Some(p),
                    queue_id: q,
                })),
            }
        }),
        Just(action::Action::PopQueue(PopQueue {})),
        prop_oneof![Just(0x8847u32), Just(0x8848)]
            .prop_map(|e| action::Action::PushMpls(PushMpls { ethertype: e })),
        (0u32..=0xffff).prop_map(|e| action::Action::PopMpls(PopMpls { ethertype: e })),
        Just(action::Action::DecMplsTtl(DecMplsTtl {})),
        (0u32..=4095).prop_map(|vid| action::Action::SetVlanVid(SetVlanVid { vid })),
        (0u32..=7).prop_map(|pcp| action::Action::SetVlanPcp(SetVlanPcp { pcp })),
        arb_nicira(ctx),
    ]
    .prop_map(|a| Action { action: Some(a) })
    .boxed()
}

fn is_wide_register(f: Field) -> bool {
    (Field::Xreg0 as i32..=Field::Xreg7 as i32).contains(&(f as i32))
        || (Field::Xxreg0 as i32..=Field::Xxreg3 as i32).contains(&(f as i32))
}

/// A subfield of one of `defs` at least `min_bits` wide (exactly `n` bits when given).
fn pick_subfield(
    defs: &[&'static FieldDef],
    i: usize,
    a: u32,
    b: u32,
    n: Option<u32>,
) -> Option<Subfield> {
    let d = defs.get(i % defs.len().max(1))?;
    let bits = super::subfield::field_bits(d);
    let n_bits = match n {
        Some(n) if n <= bits => n,
        Some(_) => return None,
        None => 1 + b % bits,
    };
    let offset = a % (bits - n_bits + 1);
    Some(Subfield {
        field: d.field as i32,
        offset,
        n_bits,
    })
}

/// The Nicira actions, with fields the match `ctx` allows.
fn arb_nicira(ctx: Ctx) -> BoxedStrategy<action::Action> {
    let readable: Vec<&'static FieldDef> =
        FIELDS.iter().filter(|d| ctx.satisfies(d.prereq)).collect();
    let writable: Vec<&'static FieldDef> = readable
        .iter()
        .copied()
        .filter(|d| d.settable && d.field != Field::InPort)
        .collect();
    let (r1, r2, r3) = (readable.clone(), readable.clone(), readable);
    let (w1, w2, w3) = (writable.clone(), writable.clone(), writable);
    prop_oneof![
        (any::<(usize, u32, u32)>(), any::<(usize, u32)>()).prop_filter_map(
            "widths",
            move |((i, a, b), (j, c))| {
                let src = pick_subfield(&r1, i, a, b, None)?;
                let dst = pick_subfield(&w1, j, c, 0, Some(src.n_bits))?;
                Some(action::Action::Move(Move {
                    src: Some(src),
                    dst: Some(dst),
                }))
            }
        ),
        (
            proptest::option::of(0u32..=MAX_PORT_NO),
            proptest::option::of(0u32..=MAX_TABLE_ID)
        )
            .prop_filter_map("port or table", |(p, t)| {
                (p.is_some() || t.is_some()).then(|| {
                    action::Action::Resubmit(Resubmit {
                        in_port: p.map(|n| PortRef {
                            port: Some(port_ref::Port::Number(n)),
                        }),
                        table: t,
                    })
                })
            }),
        (0usize..4, any::<u8>()).prop_map(|(k, b)| action::Action::Note(Note {
            data: vec![b; 6 + 8 * k]
        })),
        Just(action::Action::Exit(Exit {})),
        any::<(usize, u32, u32)>().prop_filter_map("fields", move |(i, a, b)| {
            pick_subfield(&r2, i, a, b, None)
                .map(|s| action::Action::OutputField(OutputField { src: Some(s) }))
        }),
        any::<(usize, u32, u32)>().prop_filter_map("fields", move |(i, a, b)| {
            pick_subfield(&r3, i, a, b, None)
                .map(|s| action::Action::StackPush(StackPush { src: Some(s) }))
        }),
        any::<(usize, u32, u32)>().prop_filter_map("fields", move |(i, a, b)| {
            pick_subfield(&w2, i, a, b, None)
                .map(|s| action::Action::StackPop(StackPop { dst: Some(s) }))
        }),
        (
            1i32..=7,
            0u32..=0xffff,
            1i32..=4,
            1u32..=64,
            any::<u32>(),
            any::<(usize, u32)>()
        )
            .prop_filter_map("wide enough", move |(f, basis, alg, n, arg, (i, a))| {
                let dst = pick_subfield(&w3, i, a, 0, Some(8))?;
                Some(action::Action::Multipath(Multipath {
                    fields: f,
                    basis,
                    algorithm: alg,
                    n_links: n,
                    arg,
                    dst: Some(dst),
                }))
            }),
    ]
    .boxed()
}

/// An action list as the parser gives it: set-fields whose protocol the actions before
/// changed (push_mpls, pop_mpls) left out, the OpenFlow 1.0 VLAN actions normalized.
/// The actions the parser reads back unchanged: those whose prerequisites `m` meets, the
/// OpenFlow 1.0 VLAN actions as `normalize` (the match, or none for the action set, whose
/// actions run after the applied ones) has them.
fn canonical_actions(actions: Vec<Action>, m: Option<&Match>) -> Vec<Action> {
    super::actions::normalize_vlan(kept_actions(actions, m), m)
}

fn kept_actions(actions: Vec<Action>, m: Option<&Match>) -> Vec<Action> {
    let mut ctx = m.map_or_else(Ctx::default, Ctx::of);
    let mut kept = Vec::new();
    for a in actions {
        if let Some(action::Action::SetField(s)) = &a.action
            && m.is_some()
            && !field_def_i32(s.field).is_some_and(|d| ctx.satisfies(d.prereq))
        {
            continue;
        }
        let subs: Vec<i32> = match &a.action {
            Some(action::Action::Move(mv)) => [&mv.src, &mv.dst]
                .iter()
                .filter_map(|s| s.as_ref().map(|s| s.field))
                .collect(),
            Some(action::Action::OutputField(o)) => o.src.iter().map(|s| s.field).collect(),
            Some(action::Action::StackPush(p)) => p.src.iter().map(|s| s.field).collect(),
            Some(action::Action::StackPop(p)) => p.dst.iter().map(|s| s.field).collect(),
            Some(action::Action::Multipath(mp)) => mp.dst.iter().map(|s| s.field).collect(),
            _ => Vec::new(),
        };
        if m.is_some()
            && !subs
                .iter()
                .all(|f| field_def_i32(*f).is_some_and(|d| ctx.satisfies(d.prereq)))
        {
            continue;
        }
        ctx = ctx.after(&a);
        kept.push(a);
    }
    kept
}

fn arb_flow() -> impl Strategy<Value = Flow> {
    (
        0u32..MAX_TABLE_ID,
        0u32..=65535,
        any::<u64>(),
        0u32..=65535,
        0u32..=65535,
        any::<(bool, bool, bool)>(),
        arb_match(),
    )
        .prop_flat_map(|(table, prio, cookie, idle, hard, flags, m)| {
            let actions = proptest::collection::vec(arb_action(&m), 0..5);
            let meter = proptest::option::of(1u32..=MAX_METER_ID);
            let wmd = proptest::option::of((any::<u64>(), any::<u64>()));
            // The action set: clear_actions, then actions it may hold.
            let set = (
                any::<bool>(),
                proptest::collection::vec(arb_action(&m), 0..4),
            );
            let goto = proptest::option::of(table + 1..=MAX_TABLE_ID);
            (
                Just((table, prio, cookie, idle, hard, flags, m)),
                actions,
                meter,
                (wmd, set),
                (goto, 0u32..=65535),
            )
        })
        .prop_map(
            |(
                (table, prio, cookie, idle, hard, flags, m),
                actions,
                meter,
                (wmd, (clear, set)),
                (goto, importance),
            )| {
                let mut ins = Vec::new();
                if let Some(id) = meter {
                    ins.push(Instruction {
                        instruction: Some(instruction::Instruction::Meter(id)),
                    });
                }
                let actions = canonical_actions(actions, Some(&m));
                // Written actions are checked against the match as the applied ones leave
                // it: only without applied ones does the match alone decide.
                let set: Vec<Action> = if actions.is_empty() {
                    let set = set.into_iter().filter(|a| not_in_action_set(a).is_none());
                    let kept = kept_actions(set.collect(), Some(&m));
                    super::actions::normalize_vlan(kept, None)
                } else {
                    Vec::new()
                };
                if !actions.is_empty() {
                    ins.push(apply(actions));
                }
                if clear {
                    ins.push(Instruction {
                        instruction: Some(instruction::Instruction::ClearActions(ClearActions {})),
                    });
                }
                if !set.is_empty() {
                    ins.push(Instruction {
                        instruction: Some(instruction::Instruction::WriteActions(WriteActions {
                            actions: set,
                        })),
                    });
                }
                if let Some((value, mask)) = wmd {
                    ins.push(Instruction {
                        instruction: Some(instruction::Instruction::WriteMetadata(WriteMetadata {
                            value,
                            mask,
                        })),
                    });
                }
                if let Some(t) = goto {
                    ins.push(Instruction {
                        instruction: Some(instruction::Instruction::GotoTable(t)),
                    });
                }
                Flow {
                    table_id: table,
                    priority: prio,
                    cookie,
                    idle_timeout: idle,
                    hard_timeout: hard,
                    flags: Some(FlowFlags {
                        send_flow_rem: flags.0,
                        check_overlap: flags.1,
                        reset_counts: flags.2,
                    }),
                    r#match: Some(m),
                    instructions: ins,
                    stats: None,
                    importance,
                }
            },
        )
}

fn arb_meter() -> impl Strategy<Value = Meter> {
    let band =
        (any::<bool>(), 1u32.., any::<u32>(), 0u32..=63).prop_map(|(dscp, rate, burst, prec)| {
            Band {
                r#type: if dscp {
                    BandType::DscpRemark
                } else {
                    BandType::Drop
                } as i32,
                rate,
                burst_size: burst,
                prec_level: if dscp { prec } else { 0 },
            }
        });
    (
        1u32..=MAX_METER_ID,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(band, 1..4),
    )
        .prop_map(|(id, pkt, burst, stats, bands)| Meter {
            id,
            unit: if pkt {
                MeterUnit::Pktps
            } else {
                MeterUnit::Kbps
            } as i32,
            burst,
            stats,
            bands,
        })
}

fn arb_group() -> impl Strategy<Value = Group> {
    let empty = Match::default();
    let actions = proptest::collection::vec(arb_action(&empty), 0..3).prop_map(|v| {
        // Port set-fields need the flow's protocol: in buckets they are named explicitly,
        // which the formatter's mod_tp_* alias cannot express; leave them out.
        let v = v.into_iter()
            .filter(|a| !matches!(&a.action, Some(action::Action::SetField(s)) if field_def_i32(s.field).is_some_and(|d| d.prereq != Prereq::None)))
            .collect::<Vec<_>>();
        canonical_actions(v, None)
    });
    let buckets = proptest::collection::vec(
        (
            0u32..=65535,
            proptest::option::of(arb_port()),
            proptest::option::of(0u32..=MAX_GROUP_ID),
            actions,
        ),
        1..4,
    );
    let method = prop_oneof![
        Just((SelectionMethod::Default, 0u64, vec![])),
        (
            any::<u64>(),
            proptest::sample::subsequence(
                vec![Field::EthDst, Field::Ipv4Dst, Field::IpProto, Field::TcpSrc],
                0..4
            )
        )
            .prop_map(|(p, f)| (SelectionMethod::Hash, p, f)),
        any::<u64>().prop_map(|p| (SelectionMethod::DpHash, p, vec![])),
    ];
    (0u32..=MAX_GROUP_ID, 0..4usize, buckets, method).prop_map(|(id, t, buckets, method)| {
        let gt = [
            GroupType::All,
            GroupType::Select,
            GroupType::Indirect,
            GroupType::FastFailover,
        ][t];
        let mut buckets: Vec<Bucket> = buckets
            .into_iter()
            .enumerate()
            .map(|(i, (w, wp, wg, actions))| {
                let ff = gt == GroupType::FastFailover;
                Bucket {
                    weight: if gt == GroupType::Select { w } else { 0 },
                    watch_port: if ff {
                        wp.or(Some(PortRef {
                            port: Some(port_ref::Port::Number(1)),
                        }))
                    } else {
                        wp
                    },
                    watch_group: wg,
                    actions,
                    bucket_id: Some(i as u32 * 3),
                }
            })
            .collect();
        if gt == GroupType::Indirect {
            buckets.truncate(1);
        }
        let (method, param, fields) = if gt == GroupType::Select {
            method
        } else {
            (SelectionMethod::Default, 0, vec![])
        };
        Group {
            id,
            r#type: gt as i32,
            buckets,
            selection_method: method as i32,
            selection_method_param: if method == SelectionMethod::Default {
                0
            } else {
                param
            },
            fields: fields
                .into_iter()
                .map(|f| HashField {
                    field: f as i32,
                    mask: vec![],
                })
                .collect(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn flow_format_parse_is_identity(f in arb_flow()) {
        let text = format_flow(&f);
        let g = parse_flow(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&g, &f, "{}", text);
        let dump = format_flow_dump(&f);
        let h = parse_flow(&dump).map_err(|e| TestCaseError::fail(format!("{dump}: {e}")))?;
        prop_assert_eq!(&h, &f, "{}", dump);
    }

    #[test]
    fn filter_format_parse_is_identity(m in arb_match(), table in proptest::option::of(0u32..=MAX_TABLE_ID),
                                       cookie in any::<u64>(), mask in any::<u64>(), out in proptest::option::of(arb_port())) {
        let out = out.filter(|p| !matches!(p.port, Some(port_ref::Port::Reserved(r)) if r == ReservedPort::Table as i32));
        let f = FlowFilter { table_id: table, cookie: cookie & mask, cookie_mask: mask, out_port: out,
                             out_group: None, r#match: Some(m), strict: false, priority: None };
        let text = format_filter(&f);
        let g = parse_match(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(g, f, "{}", text);
    }

    #[test]
    fn meter_format_parse_is_identity(m in arb_meter()) {
        let text = format_meter(&m);
        prop_assert_eq!(parse_meter(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?, m);
    }

    #[test]
    fn group_format_parse_is_identity(g in arb_group()) {
        let text = format_group(&g);
        prop_assert_eq!(parse_group(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?, g);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
        for e in [parse_flow(&s).err(), parse_match(&s).err(), parse_flow_modify(&s).err(),
                  parse_meter(&s).err(), parse_group(&s).err(), parse_actions(&s).err()].into_iter().flatten() {
{
                prop_assert!(e.offset <= s.len());
                prop_assert!(s.is_char_boundary(e.offset));
                let _ = e.caret(&s);
            }
        }
    }

    #[test]
    fn flow_like_strings_never_panic(parts in proptest::collection::vec(prop_oneof![
        Just("ip"), Just("tcp"), Just("arp"), Just("icmp6"), Just("nw_src="), Just("tp_dst="),
        Just("actions="), Just("output:"), Just("set_field:"), Just("->"), Just("/"), Just(","),
        Just("("), Just(")"), Just("0x"), Just("1"), Just("ff"), Just(":"), Just("="), Just(" "),
        Just("bucket="), Just("type="), Just("bands="), Just("meter="), Just("+syn"), Just("-"),
        Just("é"), Just("10.0.0.1"), Just("::1"), Just("controller"), Just("cookie="), Just("-1"),
    ], 0..24)) {
        let s: String = parts.concat();
        for e in [parse_flow(&s).err(), parse_match(&s).err(), parse_flow_modify(&s).err(),
                  parse_meter(&s).err(), parse_group(&s).err()].into_iter().flatten() {
{
                prop_assert!(s.is_char_boundary(e.offset), "{} {:?}", s, e);
            }
        }
    }
}

/// What flow-based tunnel ports (`remote_ip=flow`, `key=flow`) rely on: set-field to the
/// tunnel fields and matches on them parse, print and parse back; bad values point at
/// themselves.
#[test]
fn tunnel_set_fields_for_flow_based_ports() {
    round_trip(
        "priority=10,in_port=h1,actions=set_field:10.0.0.2->tun_dst,set_field:42->tun_id,output:vx0",
    );
    round_trip("in_port=vx0,tun_src=172.16.0.2,tun_id=0x12345678,actions=output:h1");
    round_trip("actions=set_field:172.16.0.1->tun_src,set_field:0xffffffff->tun_id,normal");
    for (input, token) in [
        (
            "actions=set_field:10.0.0.300->tun_dst,output:1",
            "10.0.0.300",
        ),
        ("actions=set_field:flow->tun_dst,output:1", "flow"),
        ("actions=set_field:x42->tun_id,output:1", "x42"),
    ] {
        let e = parse_flow(input).unwrap_err();
        assert_eq!(e.token, token, "{input}: {e}");
        assert_eq!(
            input.get(e.offset..e.offset + e.token.len()),
            Some(token),
            "{input}"
        );
    }
}

// The tables are data: a row added for a new field must keep them consistent.

#[test]
fn the_field_table_has_one_row_per_field_in_field_order() {
    let numbers: Vec<i32> = FIELDS.iter().map(|d| d.field as i32).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "FIELDS must be sorted by Field number (the canonical match order): {numbers:?}"
    );
    for n in 1..1024 {
        if let Ok(f) = Field::try_from(n) {
            assert!(field_def(f).is_some(), "{f:?} has no row in FIELDS");
            let printed = printed_fields().filter(|p| *p == f).count();
            let by_part = matches!(
                f,
                Field::VlanVid | Field::VlanPcp | Field::VlanTci | Field::EthType | Field::IpProto
            );
            assert_eq!(
                printed,
                usize::from(!by_part),
                "{f:?} must be printed exactly once"
            );
        }
    }
}

#[test]
fn every_field_name_means_one_field() {
    let mut seen: BTreeMap<&str, Field> = BTreeMap::new();
    for d in FIELDS {
        for &name in std::iter::once(&d.name).chain(d.aliases) {
            if let Some(other) = seen.insert(name, d.field) {
                panic!("`{name}` names both {other:?} and {:?}", d.field);
            }
            // Outside any protocol context each name resolves to its own row.
            match resolve_name(name, Ctx::default()) {
                Ok(Named::Field(f)) => assert_eq!(f, d.field, "{name}"),
                _ => panic!("`{name}` does not resolve to {:?}", d.field),
            }
        }
    }
    for (name, when, field) in CONTEXTUAL {
        assert!(
            seen.contains_key(name),
            "contextual `{name}` is not a field name"
        );
        let ctx = [ETH_ARP, ETH_IPV6]
            .into_iter()
            .map(|e| Ctx {
                eth_type: Some(e),
                ..Ctx::default()
            })
            .find(|c| when(*c))
            .expect("a context where the contextual name applies");
        assert!(
            matches!(resolve_name(name, ctx), Ok(Named::Field(f)) if f == *field),
            "{name}"
        );
    }
    for (nxm, text) in NXM_NAMES {
        assert!(seen.contains_key(text), "{nxm} stands for unknown `{text}`");
        assert!(resolve_name(nxm, Ctx::default()).is_ok(), "{nxm}");
    }
}
