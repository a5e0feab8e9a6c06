//! The Nicira extensions of the flow text: registers, subfields, `move`, `load`, `push`,
//! `pop`, `output:REG`, `resubmit`, `note`, `exit`, read and printed as Open vSwitch 3.1
//! prints them (the expected lines are what it dumped for the same input).

use super::*;

/// (input, what Open vSwitch 3.1 prints for it with `dump-flows --no-stats`).
const PRINTED: &[(&str, &str)] = &[
    (
        "priority=10,ip,in_port=1,action=set_field:1->reg4,ct(zone=NXM_NX_REG4[0..15],table=1)",
        "priority=10,ip,in_port=1 actions=set_field:0x1->reg4,ct(table=1,zone=NXM_NX_REG4[0..15])",
    ),
    (
        "actions=dec_ttl(32768,12345,90,765,1024)",
        "actions=dec_ttl(32768,12345,90,765,1024)",
    ),
    (
        "ip,actions=dec_ttl(0),dec_ttl(7)",
        "ip actions=dec_ttl(0),dec_ttl(7)",
    ),
    (
        "reg0=123,actions=move:reg0[0..5]->reg1[26..31],load:55->reg2,move:reg0->tun_id[0..31],move:reg0[0..15]->vlan_tci",
        "reg0=0x7b actions=move:NXM_NX_REG0[0..5]->NXM_NX_REG1[26..31],set_field:0x37->reg2,move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],move:NXM_NX_REG0[0..15]->NXM_OF_VLAN_TCI[]",
    ),
    (
        "actions=move:OXM_OF_ETH_DST[]->OXM_OF_ETH_SRC[]",
        "actions=move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[]",
    ),
    (
        "actions=push:reg0[0..31],pop:NXM_NX_REG0[]",
        "actions=push:NXM_NX_REG0[],pop:NXM_NX_REG0[]",
    ),
    (
        "actions=move:eth_dst->eth_src[]",
        "actions=move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[]",
    ),
    (
        "actions=resubmit:1,resubmit(2),resubmit(,3),resubmit(2,3)",
        "actions=resubmit:1,resubmit:2,resubmit(,3),resubmit(2,3)",
    ),
    (
        "send_flow_rem,actions=output:1,output:NXM_NX_REG0,output:2,output:reg1[16..31],output:3",
        "send_flow_rem actions=output:1,output:NXM_NX_REG0[],output:2,output:NXM_NX_REG1[16..31],output:3",
    ),
    (
        "check_overlap,actions=output:1,exit,output:2",
        "check_overlap actions=output:1,exit,output:2",
    ),
    (
        "actions=note:41.42.43,note:00.01.02.03.04.05.06.07,note",
        "actions=note:41.42.43.00.00.00,note:00.01.02.03.04.05.06.07.00.00.00.00.00.00,note:00.00.00.00.00.00",
    ),
    (
        "in_port=0 actions=resubmit:0",
        "in_port=0 actions=resubmit:0",
    ),
    (
        "tcp,tp_src[5]=1,actions=flood",
        "tcp,tp_src=0x20/0x20 actions=FLOOD",
    ),
    (
        "tcp,tp_src[6..10]=19,actions=flood",
        "tcp,tp_src=0x4c0/0x7c0 actions=FLOOD",
    ),
    (
        "table=1,xreg0=0x0000505400000005   actions=2",
        "table=1, reg0=0x5054,reg1=0x5 actions=output:2",
    ),
    (
        "table=3,priority=20,xxreg0=2  actions=6,goto_table(4)",
        "table=3, priority=20,reg0=0,reg1=0,reg2=0,reg3=0x2 actions=output:6,goto_table:4",
    ),
    ("xreg1=1/1,actions=drop", "reg3=0x1/0x1 actions=drop"),
    (
        "table=0 actions=load:0x0123456789abcdeffedcba9876543210->NXM_NX_XXREG1[],resubmit(,1)",
        "actions=set_field:0x123456789abcdeffedcba9876543210->xxreg1,resubmit(,1)",
    ),
    (
        "table=0     actions=load:0xfedcba9876543210->OXM_OF_PKT_REG1[],resubmit(,1)",
        "actions=set_field:0xfedcba9876543210->xreg1,resubmit(,1)",
    ),
    (
        "table=0     actions=move:OXM_OF_ETH_SRC[0..47]->OXM_OF_PKT_REG0[0..47],goto_table(1)",
        "actions=move:NXM_OF_ETH_SRC[]->OXM_OF_PKT_REG0[0..47],goto_table:1",
    ),
    (
        "in_port=90 actions=load:20->NXM_NX_REG0[0..7],push:NXM_NX_REG1[0..7],push:NXM_NX_REG2[0..15],push:NXM_NX_REG3[],resubmit:2",
        "in_port=90 actions=set_field:0x14/0xff->reg0,push:NXM_NX_REG1[0..7],push:NXM_NX_REG2[0..15],push:NXM_NX_REG3[],resubmit:2",
    ),
    (
        "in_port=2 actions=pop:NXM_NX_REG0[0..7],output:NXM_NX_REG0[]",
        "in_port=2 actions=pop:NXM_NX_REG0[0..7],output:NXM_NX_REG0[]",
    ),
    ("reg3[]=3,actions=drop", "reg3=0x3 actions=drop"),
    (
        "actions=multipath(eth_src, 50, hrw, 12, 0, NXM_NX_REG0[0..3]),multipath(symmetric_l4, 1024, iter_hash, 5000, 5050, reg0[0..12])",
        "actions=multipath(eth_src,50,hrw,12,0,NXM_NX_REG0[0..3]),multipath(symmetric_l4,1024,iter_hash,5000,5050,NXM_NX_REG0[0..12])",
    ),
    (
        "actions=multipath(eth_src,50,modulo_n,1,0,NXM_NX_REG0[])",
        "actions=multipath(eth_src,50,modulo_n,1,0,NXM_NX_REG0[])",
    ),
    (
        "in_port=1, ip, actions=clone(set_field:192.168.3.3->ip_src),clone(set_field:192.168.4.4->ip_dst,output:2),output:4",
        "ip,in_port=1 actions=clone(set_field:192.168.3.3->ip_src),clone(set_field:192.168.4.4->ip_dst,output:2),output:4",
    ),
    (
        "udp6,udp_dst[12]=1,actions=drop",
        "udp6,tp_dst=0x1000/0x1000 actions=drop",
    ),
];

#[test]
fn nicira_flows_print_as_open_vswitch_prints_them() {
    for (input, want) in PRINTED {
        let f = parse_flow(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(format_flow(&f), *want, "{input}");
        // OVS's print reads back to the same flow.
        let back = parse_flow(want).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(back, f, "{want}");
    }
}

#[test]
fn bad_subfields_and_nicira_actions_are_refused_where_they_are_wrong() {
    for (input, token) in [
        (
            "actions=move:reg0[0..5]->reg1[0..4]",
            "reg0[0..5]->reg1[0..4]",
        ),
        ("actions=move:reg0[0..32]->reg1[]", "0..32"),
        ("actions=move:reg0[5..3]->reg1[]", "5..3"),
        ("actions=move:nosuch[]->reg1[]", "nosuch"),
        ("actions=move:ip_src[]->reg0[]", "ip_src[]"),
        ("actions=load:0x100->reg0[0..7]", "0x100"),
        ("actions=load:x->reg0[]", "x"),
        ("actions=pop:tcp_flags[]", "tcp_flags[]"),
        ("actions=resubmit(1,2,ct)", "ct"),
        ("actions=resubmit(,300)", "300"),
        ("actions=note:4", "4"),
        ("actions=exit:1", "1"),
        ("reg0[0..3]=16,actions=drop", "16"),
        ("reg0[0..3=1,actions=drop", "reg0[0..3"),
        (
            "actions=multipath(eth_src,50,hrw,17,0,reg0[0..3])",
            "reg0[0..3]",
        ),
        ("actions=multipath(eth_src,50,hrw,0,0,reg0[])", "0"),
        ("actions=multipath(eth_srcx,50,hrw,2,0,reg0[])", "eth_srcx"),
        ("actions=multipath(eth_src,50,best,2,0,reg0[])", "best"),
        ("ip,actions=clone(dec_ttl,output:1)", "dec_ttl"),
        ("actions=clone(mod_vlan_vid:5,output:10)", "mod_vlan_vid:5"),
        ("actions=clone(goto_table:1)", "goto_table:1"),
        ("actions=dec_ttl(65536)", "65536"),
        ("actions=dec_ttl:5", "5"),
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

#[test]
fn registers_beyond_reg7_and_their_nicira_names() {
    let f = parse_flow(
        "reg15=0xf/0xff,reg8=1,actions=load:7->NXM_NX_REG13[4..6],move:NXM_NX_REG9[]->reg10[]",
    )
    .unwrap();
    assert_eq!(
        format_flow(&f),
        "reg8=0x1,reg15=0xf/0xff actions=set_field:0x70/0x70->reg13,move:NXM_NX_REG9[]->NXM_NX_REG10[]"
    );
    // A move's subfields pass the API's own check; a bad range does not.
    let acts = match &f.instructions[0].instruction {
        Some(crate::v1::instruction::Instruction::ApplyActions(a)) => a.actions.clone(),
        other => panic!("{other:?}"),
    };
    assert!(check_subfields(&acts[1]).is_ok());
    let mut bad = acts[1].clone();
    if let Some(crate::v1::action::Action::Move(m)) = &mut bad.action {
        m.dst.as_mut().unwrap().offset = 1;
    }
    assert!(check_subfields(&bad).is_err());
}

#[test]
fn a_port_named_like_a_field_prints_as_its_bare_name() {
    // `output:mpls_label` is output:FIELD; the bare word is the port (found by the
    // flow_text fuzz target: the printed form read back as an output of a field).
    let a = parse_actions("mpls_label,output:mpls_label,output:p1").expect("parses");
    let text = format_actions(&a);
    assert_eq!(text, "mpls_label,output:OXM_OF_MPLS_LABEL[],output:p1");
    assert_eq!(parse_actions(&text).expect("reads back"), a);
}
