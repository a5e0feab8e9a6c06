//! Pipeline tests, on in-memory ports with real frames in bursts of 1, 32 and 33, for the
//! OpenFlow action set: `write_actions` runs when the pipeline ends, in the specification's
//! order (set-fields before the output, one output, a group over an output), `clear_actions`
//! empties it, `exit` keeps it, and later tables match `actset_output` (also after a flow
//! change, which must not leave a stale megaflow behind).
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use common::{BURSTS, Bridge};

use datapath::actions::{Action, Instructions};
use datapath::flow::Field;
use datapath::types::{PortNo, TableId};
use etherparse::PacketBuilder;

fn udp(n: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, n], [2, 0, 0, 0, 0, 0xee])
        .ipv4([10, 0, 0, n], [10, 0, 1, 1], 64)
        .udp(1000 + n as u16, 80)
        .write(&mut v, &[n; 18])
        .unwrap();
    v
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| udp(i as u8 + 1)).collect()
}

/// The IPv4 source address of an Ethernet + IPv4 frame.
fn ip_src(f: &[u8]) -> [u8; 4] {
    f[26..30].try_into().unwrap()
}

fn ins(apply: Vec<Action>, clear: bool, write: Vec<Action>, goto: Option<u8>) -> Instructions {
    Instructions {
        apply: apply.into(),
        clear_actions: clear,
        write_actions: write.into(),
        goto_table: goto.map(TableId),
        ..Instructions::default()
    }
}

const REWRITE: Action = Action::SetField {
    field: Field::Ipv4Src,
    value: 0x0a09_0909,
};

#[test]
fn the_action_set_runs_at_the_end_with_its_last_output_after_its_rewrites() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        // Table 0 sends the packet as it is to 1 and writes a rewrite and an output to 2;
        // table 1 (which sees actset_output=2) writes an output to 3 over it.
        br.add(
            0,
            1,
            &[],
            ins(
                vec![Action::Output(PortNo(1))],
                false,
                vec![REWRITE, Action::Output(PortNo(2))],
                Some(1),
            ),
        );
        br.add(
            1,
            10,
            &[(Field::ActsetOutput, 2)],
            ins(vec![], false, vec![Action::Output(PortNo(3))], None),
        );
        br.add(
            1,
            1,
            &[],
            ins(vec![Action::Output(PortNo(4))], false, vec![], None),
        );
        let sent = frames(burst);
        br.send(4, &sent);
        let (p1, p2, p3, p4) = (br.out(1), br.out(2), br.out(3), br.out(4));
        assert_eq!(
            p1, sent,
            "burst {burst}: apply-actions run at once, unrewritten"
        );
        assert!(
            p2.is_empty(),
            "burst {burst}: the set keeps one output, the last"
        );
        assert!(
            p4.is_empty(),
            "burst {burst}: table 1 matched actset_output=2"
        );
        assert_eq!(p3.len(), burst, "burst {burst}");
        assert!(
            p3.iter().all(|f| ip_src(f) == [10, 9, 9, 9]),
            "burst {burst}"
        );
    }
}

#[test]
fn clear_actions_empties_the_set_and_unsets_actset_output() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        br.add(
            0,
            1,
            &[],
            ins(vec![], false, vec![Action::Output(PortNo(2))], Some(1)),
        );
        br.add(1, 1, &[], ins(vec![], true, vec![], Some(2)));
        // Only an unset actset_output reaches port 3.
        br.add(
            2,
            10,
            &[(Field::ActsetOutput, 0)],
            ins(vec![Action::Output(PortNo(3))], false, vec![], None),
        );
        br.add(
            2,
            1,
            &[],
            ins(vec![Action::Output(PortNo(1))], false, vec![], None),
        );
        br.send(4, &frames(burst));
        assert_eq!(br.out(3).len(), burst, "burst {burst}");
        assert!(br.out(2).is_empty(), "burst {burst}: cleared");
        assert!(br.out(1).is_empty(), "burst {burst}");
    }
}

#[test]
fn exit_stops_the_actions_but_the_set_still_runs_and_without_output_nothing_does() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        br.add(
            0,
            1,
            &[],
            ins(vec![], false, vec![Action::Output(PortNo(2))], Some(1)),
        );
        // exit: neither this flow's output nor its write happens; table 0's set runs.
        br.add(
            1,
            1,
            &[],
            ins(
                vec![Action::Exit, Action::Output(PortNo(1))],
                false,
                vec![Action::Output(PortNo(3))],
                Some(2),
            ),
        );
        br.send(4, &frames(burst));
        assert_eq!(br.out(2).len(), burst, "burst {burst}");
        assert!(
            br.out(1).is_empty() && br.out(3).is_empty(),
            "burst {burst}"
        );

        // A set of rewrites only sends nothing.
        let mut br = Bridge::new(4);
        br.add(
            0,
            1,
            &[],
            ins(vec![], false, vec![REWRITE, Action::DecTtl], None),
        );
        br.send(4, &frames(burst));
        assert!((1..=4).all(|p| br.out(p).is_empty()), "burst {burst}");
    }
}

#[test]
fn a_flow_added_on_actset_output_replaces_the_cached_walk() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        br.add(
            0,
            1,
            &[],
            ins(vec![], false, vec![Action::Output(PortNo(2))], Some(1)),
        );
        br.add(1, 1, &[], ins(vec![], false, vec![], None));
        // Table 1 already looks at actset_output: the cached walk's mask covers it.
        br.add(
            1,
            5,
            &[(Field::ActsetOutput, 5)],
            ins(vec![Action::Output(PortNo(1))], false, vec![], None),
        );
        br.send(4, &frames(burst));
        assert_eq!(br.out(2).len(), burst, "burst {burst}");
        // The cached walk saw actset_output=2 in table 1, though every packet enters with
        // it unset: the new flow must take over anyway.
        br.add(
            1,
            10,
            &[(Field::ActsetOutput, 2)],
            ins(vec![], true, vec![Action::Output(PortNo(3))], None),
        );
        br.send(4, &frames(burst));
        assert_eq!(br.out(3).len(), burst, "burst {burst}");
        assert!(br.out(2).is_empty(), "burst {burst}");
    }
}

#[test]
fn without_group_or_output_a_written_resubmit_ends_the_set() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        let resubmit = Action::Resubmit {
            in_port: None,
            table: Some(TableId(3)),
        };
        br.add(0, 1, &[], ins(vec![], false, vec![REWRITE, resubmit], None));
        br.add(
            3,
            1,
            &[],
            ins(vec![Action::Output(PortNo(3))], false, vec![], None),
        );
        br.send(4, &frames(burst));
        let p3 = br.out(3);
        assert_eq!(p3.len(), burst, "burst {burst}");
        assert!(
            p3.iter().all(|f| ip_src(f) == [10, 9, 9, 9]),
            "burst {burst}"
        );
        // An output written too wins over the resubmit.
        let mut br = Bridge::new(4);
        br.add(
            0,
            1,
            &[],
            ins(
                vec![],
                false,
                vec![resubmit, Action::Output(PortNo(2))],
                None,
            ),
        );
        br.add(
            3,
            1,
            &[],
            ins(vec![Action::Output(PortNo(3))], false, vec![], None),
        );
        br.send(4, &frames(burst));
        assert_eq!(br.out(2).len(), burst, "burst {burst}");
        assert!(br.out(3).is_empty(), "burst {burst}");
    }
}
