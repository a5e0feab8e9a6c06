//! Lines that parse: real ovs-ofctl lines, defaults and shorthands, names that depend on
//! context, masks, ports, controllers, filters, modify, action lists, the formatter, and
//! the tunnel fields flow-based ports use.

use super::*;

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
