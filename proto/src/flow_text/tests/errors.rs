//! Lines that do not parse: each error points at its token.

use super::*;

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
