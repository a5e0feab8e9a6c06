//! `conjunction(id,k/n)` and `conj_id` in the flow text: read and printed as Open vSwitch
//! prints them, refused where Open vSwitch refuses them (its messages), and property tests
//! over the numbers and spellings.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::v1::{Conjunction, Instruction, action, instruction};
use proptest::prelude::*;

/// (input, what Open vSwitch prints for it with `dump-flows --no-stats`).
const PRINTED: &[(&str, &str)] = &[
    (
        "ip,nw_src=10.0.0.1,actions=conjunction(7,1/2)",
        "ip,nw_src=10.0.0.1 actions=conjunction(7,1/2)",
    ),
    (
        "tcp,tp_dst=80,actions=conjunction(7, 2/2),conjunction(8,3/3)",
        "tcp,tp_dst=80 actions=conjunction(7,2/2),conjunction(8,3/3)",
    ),
    (
        "priority=10,conj_id=7,in_port=1,actions=output:2",
        "priority=10,conj_id=7,in_port=1 actions=output:2",
    ),
    (
        "NXM_NX_CONJ_ID=4294967295,actions=drop",
        "conj_id=4294967295 actions=drop",
    ),
    (
        "ip,actions=note:ab,conjunction(0x10,64/64)",
        "ip actions=note:ab.00.00.00.00.00,conjunction(16,64/64)",
    ),
];

#[test]
fn conjunction_flows_print_as_open_vswitch_prints_them() {
    for (input, want) in PRINTED {
        let f = parse_flow(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(format_flow(&f), *want, "{input}");
        let back = parse_flow(want).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(back, f, "{want}");
    }
}

#[test]
fn conjunctions_are_refused_where_open_vswitch_refuses_them() {
    for (input, why) in [
        ("ip,actions=conjunction(1,1/1)", "at least 2 clauses"),
        ("ip,actions=conjunction(1,1/65)", "at most 64 clauses"),
        (
            "ip,actions=conjunction(1,0/2)",
            "clause index must be positive",
        ),
        (
            "ip,actions=conjunction(1,3/2)",
            "less than or equal to number of clauses",
        ),
        ("ip,actions=conjunction(1,1)", "syntax is"),
        ("ip,actions=conjunction(1/2)", "syntax is"),
        ("ip,actions=conjunction", "needs an argument"),
        ("ip,actions=conjunction(x,1/2)", "conjunction id"),
        ("ip,actions=conjunction(4294967296,1/2)", "conjunction id"),
        (
            "ip,actions=conjunction(1,1/2),output:1",
            "along with \"note\"",
        ),
        (
            "ip,actions=output:1,conjunction(1,1/2)",
            "along with \"note\"",
        ),
        (
            "ip,actions=conjunction(1,1/2),goto_table:1",
            "no other instruction",
        ),
        (
            "ip,actions=meter:1,conjunction(1,1/2)",
            "no other instruction",
        ),
        (
            "ip,actions=conjunction(1,1/2),write_metadata:1",
            "no other instruction",
        ),
        ("ip,actions=clone(conjunction(1,1/2))", "own list only"),
        (
            "ip,actions=write_actions(conjunction(1,1/2))",
            "conjunction",
        ),
        ("conj_id=1/1,actions=drop", "mask"),
        ("ip,actions=set_field:1->conj_id", "conj_id"),
    ] {
        let e = parse_flow(input).expect_err(input);
        assert!(e.to_string().contains(why), "{input}: {e}");
    }
    let e = parse_group("group_id=1,type=all,bucket=conjunction(1,1/2)").unwrap_err();
    assert!(e.to_string().contains("group bucket"), "{e}");
}

fn apply(actions: Vec<crate::v1::Action>) -> Instruction {
    Instruction {
        instruction: Some(instruction::Instruction::ApplyActions(
            crate::v1::ApplyActions { actions },
        )),
    }
}

fn conj(id: u32, clause: u32, n_clauses: u32) -> crate::v1::Action {
    crate::v1::Action {
        action: Some(action::Action::Conjunction(Conjunction {
            id,
            clause,
            n_clauses,
        })),
    }
}

#[test]
fn api_instructions_are_checked_as_the_text_is() {
    assert!(check_conjunctions(&[apply(vec![conj(1, 1, 2), conj(2, 2, 2)])]).is_ok());
    let goto = Instruction {
        instruction: Some(instruction::Instruction::GotoTable(3)),
    };
    assert!(check_conjunctions(&[apply(vec![conj(1, 1, 2)]), goto.clone()]).is_err());
    // Without a conjunction, any instructions.
    assert!(check_conjunctions(&[apply(vec![]), goto]).is_ok());
    assert_eq!(
        conjunction_numbers_error(&Conjunction {
            id: 0,
            clause: 2,
            n_clauses: 64
        }),
        None
    );
    assert!(
        conjunction_numbers_error(&Conjunction {
            id: 0,
            clause: 0,
            n_clauses: 2
        })
        .is_some()
    );
}

proptest! {
    /// Any id and any valid clause numbers, written with or without blanks and in decimal
    /// or hexadecimal, parse to those numbers and print back to the same flow.
    #[test]
    fn valid_conjunctions_round_trip(
        id in any::<u32>(),
        n in 2u32..=64,
        k_seed in any::<u32>(),
        hex in any::<bool>(),
        blanks in any::<bool>(),
        conj_id in any::<u32>(),
    ) {
        let k = 1 + k_seed % n;
        let id_text = if hex { format!("{id:#x}") } else { id.to_string() };
        let sp = if blanks { " " } else { "" };
        let text = format!("ip,actions=conjunction({id_text},{sp}{k}/{n})");
        let f = parse_flow(&text).unwrap();
        let printed = format_flow(&f);
        prop_assert_eq!(&printed, &format!("ip actions=conjunction({id},{k}/{n})"));
        prop_assert_eq!(parse_flow(&printed).unwrap(), f);
        let m = parse_flow(&format!("conj_id={conj_id},actions=drop")).unwrap();
        prop_assert_eq!(format_flow(&m), format!("conj_id={conj_id} actions=drop"));
    }

    /// Clause numbers out of range are refused, never taken.
    #[test]
    fn invalid_clause_numbers_are_refused(k in 0u32..300, n in 0u32..300) {
        let ok = (2..=64).contains(&n) && (1..=n).contains(&k);
        let r = parse_flow(&format!("ip,actions=conjunction(5,{k}/{n})"));
        prop_assert_eq!(r.is_ok(), ok, "{}/{}", k, n);
    }
}
