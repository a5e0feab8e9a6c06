//! Pipeline tests, on in-memory ports with real frames in bursts of 1, 32 and 33, for the
//! Nicira extensions the flow language reads: registers (reg0-15, xreg, xxreg), `move`,
//! `push`/`pop`, `output:REG`, `resubmit` (with its in_port rule and its bounds), `exit`,
//! `clone` and `multipath`.
//! Plus a property test: a walk of `resubmit`s and register moves agrees with a
//! straight-line interpreter of the same tables.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use common::{BURSTS, Bridge};

use datapath::actions::Action;
use datapath::flow::{Field, Subfield};
use datapath::stats::DropReason;
use datapath::types::{PortNo, TableId};
use etherparse::PacketBuilder;
use proptest::prelude::*;

/// A UDP frame from MAC 02:00:00:00:00:n.
fn udp(n: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, n], [2, 0, 0, 0, 0, 0xee])
        .ipv4([10, 0, 0, n], [10, 0, 1, 1], 64)
        .udp(1000 + n as u16, 80)
        .write(&mut v, &[n; 18])
        .unwrap();
    v
}

fn sub(field: Field, shift: u32, bits: u32) -> Subfield {
    Subfield::new(field, shift, bits).unwrap()
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| udp(i as u8 + 1)).collect()
}

#[test]
fn move_into_a_register_and_resubmit_on_it_splits_by_a_packet_bit() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        // The low bit of the source MAC goes to reg12 bit 4; table 1 chooses on it.
        br.add_actions(
            0,
            1,
            &[],
            vec![
                Action::Move {
                    src: sub(Field::EthSrc, 0, 1),
                    dst: sub(Field::Reg(12), 4, 1),
                },
                Action::Resubmit {
                    in_port: None,
                    table: Some(TableId(1)),
                },
            ],
        );
        br.add_actions(
            1,
            2,
            &[(Field::Reg(12), 0x10)],
            vec![Action::Output(PortNo(2))],
        );
        br.add_actions(1, 1, &[], vec![Action::Output(PortNo(3))]);
        br.send(1, &frames(burst));
        let (odd, even) = (br.out(2), br.out(3));
        assert_eq!(odd.len(), burst.div_ceil(2), "burst {burst}");
        assert_eq!(even.len(), burst / 2, "burst {burst}");
        assert!(odd.iter().all(|f| f[11] & 1 == 1));
        assert!(even.iter().all(|f| f[11] & 1 == 0));
    }
}

#[test]
fn move_between_packet_fields_rewrites_the_frame() {
    for burst in BURSTS {
        let mut br = Bridge::new(2);
        // move:eth_src->eth_dst, then out: every frame leaves with its source as destination.
        br.add_actions(
            0,
            1,
            &[],
            vec![
                Action::Move {
                    src: sub(Field::EthSrc, 0, 48),
                    dst: sub(Field::EthDst, 0, 48),
                },
                Action::Output(PortNo(2)),
            ],
        );
        let sent = frames(burst);
        br.send(1, &sent);
        let got = br.out(2);
        assert_eq!(got.len(), burst);
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g[0..6], s[6..12], "destination is the source");
            assert_eq!(g[6..], s[6..], "the rest unchanged");
        }
    }
}

#[test]
fn push_pop_and_output_to_a_register() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        // reg0 = 2 (the UDP source port's low bit decides nothing here); push it, clear it,
        // pop it into xreg4's low half (reg9), output to the port reg9 holds.
        br.add_actions(
            0,
            1,
            &[],
            vec![
                Action::SetField {
                    field: Field::Reg(0),
                    value: 2,
                },
                Action::StackPush(sub(Field::Reg(0), 0, 32)),
                Action::SetField {
                    field: Field::Reg(0),
                    value: 0,
                },
                Action::StackPop(sub(Field::Xreg(4), 0, 32)),
                Action::OutputField(sub(Field::Reg(9), 0, 16)),
                // An empty stack pops nothing: reg0 stays 0, so this outputs nowhere
                // (port 0 is no port).
                Action::StackPop(sub(Field::Reg(0), 0, 16)),
                Action::OutputField(sub(Field::Reg(0), 0, 16)),
            ],
        );
        br.send(1, &frames(burst));
        assert_eq!(br.out(2).len(), burst, "burst {burst}");
        assert!(br.out(3).is_empty());
    }
}

#[test]
fn wide_registers_are_matched_through_their_registers() {
    let mut br = Bridge::new(3);
    br.add_actions(
        0,
        1,
        &[],
        vec![
            Action::SetField {
                field: Field::Xxreg(2),
                value: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            },
            Action::Resubmit {
                in_port: None,
                table: Some(TableId(1)),
            },
        ],
    );
    br.add_actions(
        1,
        1,
        &[(Field::Reg(8), 0x0123_4567), (Field::Reg(11), 0x7654_3210)],
        vec![Action::Output(PortNo(3))],
    );
    br.send(1, &frames(33));
    assert_eq!(br.out(3).len(), 33);
}

#[test]
fn resubmit_with_another_in_port_may_send_back_to_the_real_one() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        br.add_actions(
            0,
            1,
            &[(Field::InPort, 1)],
            vec![
                Action::Resubmit {
                    in_port: Some(PortNo(3)),
                    table: Some(TableId(1)),
                },
                // Back in table 0's flow: in_port is 1 again, so output:1 is skipped.
                Action::Output(PortNo(1)),
            ],
        );
        // The lookup sees in_port 3: output:3 is skipped (it is the flow's in_port), output:1
        // sends the packet back out of port 1 (Open vSwitch compares with the flow's
        // in_port), and output:2 as usual.
        br.add_actions(
            1,
            1,
            &[(Field::InPort, 3)],
            vec![
                Action::Output(PortNo(3)),
                Action::Output(PortNo(1)),
                Action::Output(PortNo(2)),
            ],
        );
        br.send(1, &frames(burst));
        assert_eq!(br.out(1).len(), burst, "burst {burst}");
        assert_eq!(br.out(2).len(), burst);
        assert!(br.out(3).is_empty());
    }
}

#[test]
fn clone_changes_only_the_copy() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        // clone(set_field:192.168.3.3->ip_src,load:1->reg0,output:2),
        // clone(set_field:10.9.9.9->ip_dst,resubmit(,1)), output:4; table 1 matches reg0=0
        // only (the first clone's load was undone) and sends to 3.
        br.add_actions(
            0,
            1,
            &[(Field::EthType, 0x0800)],
            vec![
                Action::Clone { len: 3 },
                Action::SetField {
                    field: Field::Ipv4Src,
                    value: 0xc0a8_0303,
                },
                Action::SetField {
                    field: Field::Reg(0),
                    value: 1,
                },
                Action::Output(PortNo(2)),
                Action::Clone { len: 2 },
                Action::SetField {
                    field: Field::Ipv4Dst,
                    value: 0x0a09_0909,
                },
                Action::Resubmit {
                    in_port: None,
                    table: Some(TableId(1)),
                },
                Action::Output(PortNo(4)),
            ],
        );
        br.add_actions(1, 1, &[(Field::Reg(0), 0)], vec![Action::Output(PortNo(3))]);
        let sent = frames(burst);
        br.send(1, &sent);
        let (two, three, four) = (br.out(2), br.out(3), br.out(4));
        assert_eq!((two.len(), three.len(), four.len()), (burst, burst, burst));
        for i in 0..burst {
            assert_eq!(two[i][26..30], [192, 168, 3, 3]);
            assert_eq!(two[i][30..34], sent[i][30..34]);
            assert_eq!(three[i][26..30], sent[i][26..30]);
            assert_eq!(three[i][30..34], [10, 9, 9, 9]);
            assert_eq!(
                four[i], sent[i],
                "the packet after the clones is the original"
            );
        }
    }
}

#[test]
fn multipath_spreads_flows_and_keeps_each_on_its_link() {
    use datapath::actions::multipath::{Algorithm, HashFields};
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        // multipath(symmetric_l4,7,hrw,2,0,reg3[0..1]); table 1 sends link 0 to port 2,
        // link 1 to port 3.
        br.add_actions(
            0,
            1,
            &[],
            vec![
                Action::Multipath {
                    fields: HashFields::SymmetricL4,
                    basis: 7,
                    algorithm: Algorithm::Hrw,
                    n_links: 2,
                    dst: sub(Field::Reg(3), 0, 2),
                },
                Action::Resubmit {
                    in_port: None,
                    table: Some(TableId(1)),
                },
            ],
        );
        br.add_actions(1, 2, &[(Field::Reg(3), 0)], vec![Action::Output(PortNo(2))]);
        br.add_actions(1, 2, &[(Field::Reg(3), 1)], vec![Action::Output(PortNo(3))]);
        br.add_actions(1, 1, &[], vec![Action::Output(PortNo(4))]);
        let sent = frames(burst);
        br.send(1, &sent);
        let (two, three) = (br.out(2), br.out(3));
        assert_eq!(
            two.len() + three.len(),
            burst,
            "every packet takes one link"
        );
        assert!(br.out(4).is_empty(), "only links 0 and 1 exist");
        if burst > 1 {
            assert!(
                !two.is_empty() && !three.is_empty(),
                "{burst} flows use both links"
            );
        }
        // The same packets again take the same links (cached or not).
        br.send(1, &sent);
        assert_eq!(br.out(2), two);
        assert_eq!(br.out(3), three);
    }
}

#[test]
fn exit_stops_the_resubmitting_flow_too() {
    let mut br = Bridge::new(3);
    br.add_actions(
        0,
        1,
        &[],
        vec![
            Action::Resubmit {
                in_port: None,
                table: Some(TableId(1)),
            },
            Action::Output(PortNo(3)),
        ],
    );
    br.add_actions(
        1,
        1,
        &[],
        vec![
            Action::Output(PortNo(2)),
            Action::Exit,
            Action::Output(PortNo(3)),
        ],
    );
    br.send(1, &frames(32));
    assert_eq!(br.out(2).len(), 32);
    assert!(br.out(3).is_empty());
}

#[test]
fn resubmit_loops_are_bounded_and_counted() {
    for burst in BURSTS {
        let mut br = Bridge::new(2);
        br.add_actions(
            0,
            1,
            &[],
            vec![
                Action::Output(PortNo(2)),
                Action::Resubmit {
                    in_port: None,
                    table: None,
                },
            ],
        );
        let before = br.counters.drops_for(DropReason::ResubmitDepth);
        br.send(1, &frames(burst));
        // The whole translation fails: nothing is sent, every packet is counted.
        assert!(br.out(2).is_empty());
        assert_eq!(
            br.counters.drops_for(DropReason::ResubmitDepth) - before,
            burst as u64
        );
    }
}

/// A straight-line model of tables 0..3 whose flows match reg0 exactly (or nothing) and
/// either move bits between registers, resubmit, or output to the port in reg1's low bits.
#[derive(Clone, Debug)]
enum Op {
    Load(u8, u32),
    Move(u8, u8),
    Resubmit(u8),
    OutputReg,
}

/// A model flow: the reg0 value it matches (any when `None`) and its actions.
type ModelFlow = (Option<u32>, Vec<Op>);

fn model(
    tables: &[Vec<ModelFlow>],
    table: usize,
    regs: &mut [u32; 4],
    out: &mut Vec<u32>,
    depth: u32,
    count: &mut u32,
) -> bool {
    let Some((_, ops)) = tables[table]
        .iter()
        .find(|(m, _)| m.is_none_or(|v| v == regs[0]))
    else {
        return true;
    };
    for op in ops {
        match *op {
            Op::Load(r, v) => regs[r as usize] = v,
            Op::Move(s, d) => regs[d as usize] = regs[s as usize],
            Op::Resubmit(t) => {
                // Open vSwitch's bounds: 64 deep, 4,096 in all.
                if depth >= 64 || *count >= 4096 {
                    return false;
                }
                *count += 1;
                if !model(tables, t as usize, regs, out, depth + 1, count) {
                    return false;
                }
            }
            Op::OutputReg => out.push(regs[1] & 3),
        }
    }
    true
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 0u32..4).prop_map(|(r, v)| Op::Load(r, v)),
        (0u8..4, 0u8..4).prop_map(|(s, d)| Op::Move(s, d)),
        (0u8..4).prop_map(Op::Resubmit),
        Just(Op::OutputReg),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn resubmit_and_register_moves_agree_with_a_straight_line_model(
        tables in prop::collection::vec(
            prop::collection::vec((prop::option::of(0u32..4), prop::collection::vec(op_strategy(), 0..5)), 0..3),
            4,
        )
    ) {
        let mut br = Bridge::new(3);
        for (t, flows) in tables.iter().enumerate() {
            for (i, (m, ops)) in flows.iter().enumerate() {
                // Earlier flows win: higher priority, and a match-all only as the last.
                let prio = 100 - i as u16 - if m.is_none() { 50 } else { 0 };
                let matches: Vec<(Field, u128)> = m.iter().map(|&v| (Field::Reg(0), u128::from(v))).collect();
                let acts = ops.iter().map(|op| match *op {
                    Op::Load(r, v) => Action::SetField { field: Field::Reg(r), value: u128::from(v) },
                    Op::Move(s, d) => Action::Move { src: sub(Field::Reg(s), 0, 32), dst: sub(Field::Reg(d), 0, 32) },
                    Op::Resubmit(t) => Action::Resubmit { in_port: None, table: Some(TableId(t)) },
                    Op::OutputReg => Action::OutputField(sub(Field::Reg(1), 0, 2)),
                }).collect();
                br.add_actions(t as u8, prio, &matches, acts);
            }
        }
        // The model's flow order must be the datapath's: sort each table by priority.
        let ordered: Vec<Vec<ModelFlow>> = tables.iter().map(|flows| {
            let mut f: Vec<(u16, ModelFlow)> = flows.iter().enumerate().map(|(i, (m, ops))| {
                (100 - i as u16 - if m.is_none() { 50 } else { 0 }, (*m, ops.clone()))
            }).collect();
            f.sort_by_key(|x| std::cmp::Reverse(x.0));
            f.into_iter().map(|(_, x)| x).collect()
        }).collect();
        let mut regs = [0u32; 4];
        let mut outs = Vec::new();
        let ok = model(&ordered, 0, &mut regs, &mut outs, 0, &mut 0);
        br.send(1, &frames(2));
        let got: Vec<usize> = (1..=3).map(|p| br.out(p).len()).collect();
        let mut want = vec![0usize; 3];
        if ok {
            for p in outs {
                // Port 0 is no port; port 1 is the ingress port (skipped).
                if p >= 2 {
                    want[p as usize - 1] += 2;
                }
            }
        }
        prop_assert_eq!(got, want);
    }
}
