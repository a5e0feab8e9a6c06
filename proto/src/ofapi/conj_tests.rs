//! NXAST_CONJUNCTION and NXM_NX_CONJ_ID over OpenFlow: the API's `Conjunction` goes out
//! as Open vSwitch sends it and comes back the same; what Open vSwitch refuses
//! (`NXBAC_BAD_CONJUNCTION`) is refused.
#![allow(clippy::unwrap_used)]

use crate::flow_text;
use crate::openflow::actions::{Action, Actions};
use crate::openflow::error::bad_match;
use crate::openflow::error::nicira::BAD_CONJUNCTION;
use crate::openflow::ids::TableId;
use crate::openflow::instructions::{Instruction, Instructions};
use crate::openflow::list::encode;
use crate::openflow::nx_actions::NxAction;
use crate::openflow::oxm::Match;
use crate::openflow::wire::Reader;
use crate::v1;
use proptest::prelude::*;

use super::actions::{self, Place};

fn flow(text: &str) -> v1::Flow {
    flow_text::parse_flow(text).unwrap()
}

fn apply_of(f: &v1::Flow) -> Vec<v1::Action> {
    match &f.instructions[0].instruction {
        Some(v1::instruction::Instruction::ApplyActions(a)) => a.actions.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_conjunction_goes_out_as_nxast_conjunction_and_comes_back() {
    let f = flow("ip,actions=conjunction(7,2/3),conjunction(4294967295,64/64)");
    let a = apply_of(&f);
    let mut bytes = Vec::new();
    actions::emit(&a, &mut bytes);
    assert_eq!(
        bytes,
        encode(&[
            Action::Nx(NxAction::Conjunction {
                clause: 1,
                n_clauses: 3,
                id: 7
            }),
            Action::Nx(NxAction::Conjunction {
                clause: 63,
                n_clauses: 64,
                id: u32::MAX
            }),
        ])
    );
    let m = f.r#match.clone().unwrap();
    let back = actions::to_api(&Actions::new_checked(&bytes).unwrap(), Place::Flow(&m)).unwrap();
    assert_eq!(back, a);
}

#[test]
fn bad_clause_numbers_and_mixed_actions_are_bad_conjunction() {
    let m = flow("ip,actions=drop").r#match.unwrap();
    for (clause, n_clauses) in [(0, 1), (2, 2), (0, 65), (64, 64)] {
        let bytes = encode(&[Action::Nx(NxAction::Conjunction {
            clause,
            n_clauses,
            id: 1,
        })]);
        let r = actions::to_api(&Actions::new_checked(&bytes).unwrap(), Place::Flow(&m));
        assert_eq!(r, Err(BAD_CONJUNCTION), "{clause}/{n_clauses}");
    }
    // conjunction with an output, and with a goto_table: the flow is refused.
    let conj = Action::Nx(NxAction::Conjunction {
        clause: 0,
        n_clauses: 2,
        id: 1,
    });
    let mixed = encode(&[
        conj,
        Action::Output {
            port: crate::openflow::ids::PortNo(1),
            max_len: 0,
        },
    ]);
    let only = encode(&[conj]);
    for ins in [
        vec![Instruction::ApplyActions(
            Actions::new_checked(&mixed).unwrap(),
        )],
        vec![
            Instruction::ApplyActions(Actions::new_checked(&only).unwrap()),
            Instruction::GotoTable(TableId(3)),
        ],
    ] {
        let bytes = encode(&ins);
        let l = Instructions::new_checked(&bytes).unwrap();
        assert_eq!(
            super::instructions::to_api(&l, 0, &m),
            Err(BAD_CONJUNCTION),
            "{ins:?}"
        );
    }
    let bytes = encode(&[Instruction::ApplyActions(
        Actions::new_checked(&only).unwrap(),
    )]);
    let l = Instructions::new_checked(&bytes).unwrap();
    assert!(super::instructions::to_api(&l, 0, &m).is_ok());
}

#[test]
fn conj_id_is_an_nxm_match_field() {
    let f = flow("conj_id=9,actions=output:1");
    let m = f.r#match.unwrap();
    let mut out = Vec::new();
    super::matches::emit(&m, &mut out);
    let mut r = Reader::new(&out, bad_match::BAD_LEN);
    let back = super::matches::to_api(&Match::parse(&mut r).unwrap()).unwrap();
    assert_eq!(back, m);
}

proptest! {
    /// Every clause Open vSwitch takes survives the wire, whatever its id.
    #[test]
    fn valid_conjunctions_survive_the_wire(id in any::<u32>(), n in 2u8..=64, k in any::<u8>()) {
        let k = k % n;
        let bytes = encode(&[Action::Nx(NxAction::Conjunction { clause: k, n_clauses: n, id })]);
        let m = flow("ip,actions=drop").r#match.unwrap();
        let a = actions::to_api(&Actions::new_checked(&bytes).unwrap(), Place::Flow(&m)).unwrap();
        let mut again = Vec::new();
        actions::emit(&a, &mut again);
        prop_assert_eq!(again, bytes);
    }
}
