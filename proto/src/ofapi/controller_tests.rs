//! `controller(...)` over OpenFlow: NXAST_CONTROLLER without userdata, NXAST_CONTROLLER2
//! with it, both ways; `pause` refused.
#![allow(clippy::unwrap_used)]

use crate::flow_text;
use crate::openflow::actions::{Action, Actions};
use crate::openflow::error::bad_action;
use crate::openflow::list::{List, Prop, encode};
use crate::openflow::nx_actions::{NxAction, controller2};
use crate::v1;
use proptest::prelude::*;

use super::actions::{self, Place};

fn apply_of(text: &str) -> (Vec<v1::Action>, v1::Match) {
    let f = flow_text::parse_flow(text).unwrap();
    let a = match &f.instructions[0].instruction {
        Some(v1::instruction::Instruction::ApplyActions(a)) => a.actions.clone(),
        other => panic!("{other:?}"),
    };
    (a, f.r#match.unwrap())
}

fn any_match() -> v1::Match {
    flow_text::parse_flow("actions=drop")
        .unwrap()
        .r#match
        .unwrap_or_default()
}

fn wire(a: &[v1::Action]) -> Vec<u8> {
    let mut out = Vec::new();
    actions::emit(a, &mut out);
    out
}

fn back(bytes: &[u8], m: &v1::Match) -> Result<Vec<v1::Action>, crate::openflow::error::OfpError> {
    actions::to_api(&Actions::new_checked(bytes)?, Place::Flow(m))
}

#[test]
fn without_userdata_it_is_nxast_controller() {
    let (a, m) = apply_of("actions=controller(reason=invalid_ttl,max_len=123,id=555)");
    let bytes = wire(&a);
    assert_eq!(
        bytes,
        encode(&[Action::Nx(NxAction::Controller {
            max_len: 123,
            controller_id: 555,
            reason: 2
        })])
    );
    assert_eq!(back(&bytes, &m).unwrap(), a);
}

#[test]
fn with_userdata_it_is_nxast_controller2() {
    let (a, m) = apply_of("actions=controller(id=9,userdata=01.02.03)");
    let bytes = wire(&a);
    let props = encode(&[
        Prop {
            kind: controller2::CONTROLLER_ID,
            value: &[0, 9],
        },
        Prop {
            kind: controller2::USERDATA,
            value: &[1, 2, 3],
        },
    ]);
    assert_eq!(
        bytes,
        encode(&[Action::Nx(NxAction::Controller2(
            List::new_checked(&props).unwrap()
        ))])
    );
    assert_eq!(back(&bytes, &m).unwrap(), a);
    // A plain NXAST_CONTROLLER (reason action, id 0) is an output to CONTROLLER.
    let plain = encode(&[Action::Nx(NxAction::Controller {
        max_len: 64,
        controller_id: 0,
        reason: 1,
    })]);
    let (want, _) = apply_of("actions=controller:64");
    assert_eq!(back(&plain, &m).unwrap(), want);
}

#[test]
fn pause_is_refused() {
    let m = any_match();
    let props = encode(&[Prop {
        kind: controller2::PAUSE,
        value: &[],
    }]);
    let bytes = encode(&[Action::Nx(NxAction::Controller2(
        List::new_checked(&props).unwrap(),
    ))]);
    assert_eq!(back(&bytes, &m), Err(bad_action::BAD_ARGUMENT));
}

proptest! {
    /// Whatever the arguments, what goes out comes back the same.
    #[test]
    fn controller_actions_survive_the_wire(
        max_len in prop::option::of(0u32..=65534),
        reason in prop::option::of(0i32..6),
        id in 0u32..=65535,
        userdata in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let c = v1::ControllerAction { max_len, reason: reason.filter(|&r| r != 1), id, userdata };
        let m = any_match();
        let a = vec![v1::Action { action: Some(v1::action::Action::Controller(c)) }];
        let bytes = wire(&a);
        let got = back(&bytes, &m).unwrap();
        // The plain one comes back as an output to CONTROLLER, which goes out the same.
        prop_assert_eq!(wire(&got), bytes);
    }
}
