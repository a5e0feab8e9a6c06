//! The action set in flow text: `write_actions(...)`, `clear_actions` and the
//! `actset_output` match, read and printed as Open vSwitch 3.1 prints them (the expected
//! lines are what it dumped for the same input, from its own test suite).

use super::*;
use crate::v1::instruction;

/// (input, what Open vSwitch 3.1 prints for it with `dump-flows --no-stats`).
const PRINTED: &[(&str, &str)] = &[
    ("actions=write_actions(drop)", "actions=drop"),
    ("actions=clear_actions", "actions=clear_actions"),
    (
        "in_port=2 actions=output:1,write_actions(output:2,output:3)",
        "in_port=2 actions=output:1,write_actions(output:2,output:3)",
    ),
    (
        "in_port=10 actions=write_actions(output(CONTROLLER))",
        "in_port=10 actions=write_actions(CONTROLLER:65535)",
    ),
    (
        "in_port=1,ip actions=output(10),write_actions(set_field:192.168.3.90->ip_src,output(12)),goto_table(1)",
        "ip,in_port=1 actions=output:10,write_actions(set_field:192.168.3.90->ip_src,output:12),goto_table:1",
    ),
    (
        "actset_output=unset     actions=write_actions(output(2)),goto_table(1)",
        "actset_output=UNSET actions=write_actions(output:2),goto_table:1",
    ),
    (
        "priority=20,actset_output=2  actions=4,goto_table(3)",
        "priority=20,actset_output=2 actions=output:4,goto_table:3",
    ),
    (
        "actions=clear_actions,write_actions(output(3),output(2)),goto_table(9)",
        "actions=clear_actions,write_actions(output:3,output:2),goto_table:9",
    ),
    (
        "mplsm actions=pop_mpls:0x800,write_actions(dec_ttl,controller)",
        "mplsm actions=pop_mpls:0x0800,write_actions(dec_ttl,CONTROLLER:65535)",
    ),
    (
        "ip actions=write_actions(load:0xffffffff->NXM_NX_REG1[],move:NXM_NX_REG1[]->NXM_NX_REG2[],group:1234)",
        "ip actions=write_actions(set_field:0xffffffff->reg1,move:NXM_NX_REG1[]->NXM_NX_REG2[],group:1234)",
    ),
    (
        "ip actions=write_actions(pop_vlan,output:2)",
        "ip actions=write_actions(pop_vlan,output:2)",
    ),
    (
        "table=1     actions=move:ONFOXM_ET_ACTSET_OUTPUT[0..31]->OXM_OF_PKT_REG0[0..31],goto_table(2)",
        "table=1, actions=move:ONFOXM_ET_ACTSET_OUTPUT[]->OXM_OF_PKT_REG0[0..31],goto_table:2",
    ),
    (
        "ip,actions=write_actions(resubmit(,3),ct(commit,table=2),controller:100)",
        "ip actions=write_actions(resubmit(,3),ct(commit,table=2),CONTROLLER:100)",
    ),
    (
        "tcp actions=set_field:91->tp_src,output(11),clear_actions",
        "tcp actions=set_field:91->tcp_src,output:11,clear_actions",
    ),
];

#[test]
fn the_action_set_prints_as_open_vswitch_prints_it() {
    for (input, want) in PRINTED {
        let f = parse_flow(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(format_flow(&f), *want, "{input}");
        let back = parse_flow(want).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(back, f, "{want}");
    }
}

#[test]
fn actset_output_takes_ports_names_and_reserved_ports() {
    for (input, printed) in [
        (
            "actset_output=LOCAL,actions=drop",
            "actset_output=LOCAL actions=drop",
        ),
        (
            "actset_output=controller,actions=drop",
            "actset_output=CONTROLLER actions=drop",
        ),
        (
            "actset_output=in_port,actions=drop",
            "actset_output=IN_PORT actions=drop",
        ),
        (
            "actset_output=p1,actions=drop",
            "actset_output=p1 actions=drop",
        ),
        (
            "actset_output=65279,actions=drop",
            "actset_output=65279 actions=drop",
        ),
    ] {
        let f = parse_flow(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(format_flow(&f), printed);
    }
    let f = parse_flow("actset_output=unset,actions=drop").unwrap();
    let m = f.r#match.unwrap();
    assert_eq!(m.fields[0].value, OFPP_UNSET.to_be_bytes());
}

#[test]
fn what_the_action_set_cannot_hold_or_order_is_refused() {
    for (input, token) in [
        (
            "actions=write_actions(output(port=2,max_len=100))",
            "output(port=2,max_len=100)",
        ),
        ("actions=write_actions(note:01)", "note:01"),
        ("actions=write_actions(exit)", "exit"),
        ("actions=write_actions(clone(output:1))", "clone(output:1)"),
        ("actions=write_actions(goto_table:2)", "goto_table:2"),
        (
            "actions=write_actions(write_actions(output:1))",
            "write_actions(output:1)",
        ),
        ("actions=write_actions(output:1,drop)", "drop"),
        (
            "actions=write_metadata:1,write_actions(output:1)",
            "write_actions(output:1)",
        ),
        (
            "actions=write_actions(output:1),clear_actions",
            "clear_actions",
        ),
        (
            "actions=write_actions(output:1),write_actions(output:2)",
            "write_actions(output:2)",
        ),
        ("actions=clear_actions:1", "1"),
        ("actset_output=1/1,actions=drop", "1"),
        ("actset_output=4294967295,actions=drop", "4294967295"),
    ] {
        let e = parse_flow(input).expect_err(input);
        assert_eq!(e.token, token, "{input}: {e}");
        assert_eq!(
            input.get(e.offset..e.offset + e.token.len()),
            Some(token),
            "{input}"
        );
    }
    assert!(
        parse_actions("write_actions(output:1)").is_err(),
        "not in a bucket"
    );
    assert!(parse_actions("clear_actions").is_err(), "not in a bucket");
}

#[test]
fn api_write_actions_are_checked_like_text() {
    let ok = parse_flow("actions=write_actions(output:1,group:2)").unwrap();
    let Some(instruction::Instruction::WriteActions(w)) = &ok.instructions[0].instruction else {
        panic!("{:?}", ok.instructions);
    };
    assert_eq!(check_action_set(&w.actions), Ok(()));
    let bad = parse_actions("output:1,note:01").unwrap();
    assert_eq!(check_action_set(&bad).map_err(|(i, _)| i), Err(1));
}
