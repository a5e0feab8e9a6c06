//! Pipeline tests for conjunctive matches (`conjunction(id, k/n)` flows and `conj_id`), on
//! in-memory ports with real frames in bursts of 1, 32 and 33: which flow a packet ends on
//! when clauses match, partly match, lose to other flows or have no `conj_id` flow; and a
//! property test against a linear model of Open vSwitch's rules, with packets sent one
//! after another so later ones hit the megaflows the earlier ones installed.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use common::{BURSTS, Bridge};

use datapath::actions::Action;
use datapath::flow::Field;
use datapath::types::PortNo;
use etherparse::PacketBuilder;
use proptest::prelude::*;

/// A UDP frame from 10.0.0.`src` to port `dport`.
fn udp(src: u8, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, 0xee])
        .ipv4([10, 0, 0, src], [10, 0, 1, 1], 64)
        .udp(1000, dport)
        .write(&mut v, &[src; 18])
        .unwrap();
    v
}

fn conj(id: u32, k: u8, n: u8) -> Action {
    Action::Conjunction {
        id,
        clause: k - 1,
        n_clauses: n,
    }
}

const IP: (Field, u128) = (Field::EthType, 0x0800);
const UDP: (Field, u128) = (Field::IpProto, 17);

fn src(n: u8) -> (Field, u128) {
    (Field::Ipv4Src, 0x0a00_0000 | u128::from(n))
}

fn dport(p: u16) -> (Field, u128) {
    (Field::TpDst, u128::from(p))
}

/// The firewall of ovs-fields(7): sources 10.0.0.1 or .2 (clause 1) to UDP port 80 or 443
/// (clause 2) go to port 2 through `conj_id=7`; everything else to port 3.
fn firewall(br: &Bridge) {
    for s in [1, 2] {
        br.add_actions(0, 100, &[IP, src(s)], vec![conj(7, 1, 2)]);
    }
    for p in [80, 443] {
        br.add_actions(0, 100, &[IP, UDP, dport(p)], vec![conj(7, 2, 2)]);
    }
    br.add_actions(
        0,
        100,
        &[(Field::ConjId, 7)],
        vec![Action::Output(PortNo(2))],
    );
    br.add_actions(0, 1, &[], vec![Action::Output(PortNo(3))]);
}

#[test]
fn a_packet_matching_every_clause_takes_the_conj_id_flow_and_others_do_not() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        firewall(&br);
        // Sources 1..=4 round robin, ports 80, 443, 22 round robin: a source of 1 or 2 to
        // 80 or 443 passes.
        let cases: Vec<(u8, u16)> = (0..burst)
            .map(|i| ((i % 4) as u8 + 1, [80, 443, 22][i % 3]))
            .collect();
        let frames: Vec<Vec<u8>> = cases.iter().map(|&(s, p)| udp(s, p)).collect();
        // Twice: the second burst runs on the megaflows the first installed.
        for round in 0..2 {
            br.send(1, &frames);
            let mut want: Vec<Vec<u8>> = cases
                .iter()
                .filter(|&&(s, p)| s <= 2 && p != 22)
                .map(|&(s, p)| udp(s, p))
                .collect();
            let other = burst - want.len();
            // Packets leave grouped by megaflow: compare as sets.
            let mut got = br.out(2);
            got.sort();
            want.sort();
            assert_eq!(got, want, "burst {burst} round {round}");
            assert_eq!(br.out(3).len(), other, "burst {burst} round {round}");
        }
    }
}

#[test]
fn the_conj_id_flow_counts_the_packets_and_the_clauses_none() {
    let mut br = Bridge::new(3);
    firewall(&br);
    br.send(1, &[udp(1, 80), udp(2, 443), udp(3, 80)]);
    let snap = br.dp.snapshot();
    for r in snap.pipeline.rules(None) {
        let n = r.stats.read().packets;
        let want = if r.spec.mask.get(Field::ConjId) != 0 {
            2
        } else if r.spec.priority == 1 {
            1
        } else {
            0
        };
        assert_eq!(n, want, "{:?}", r.spec.instructions.apply);
    }
}

#[test]
fn a_higher_priority_flow_wins_and_a_lower_one_loses() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        firewall(&br);
        // Above the clauses: 10.0.0.2 always to port 4. Below them: port 80 to port 1
        // (which the conjunction beats).
        br.add_actions(0, 200, &[IP, src(2)], vec![Action::Output(PortNo(4))]);
        br.add_actions(0, 50, &[IP, UDP, dport(80)], vec![Action::InPort]);
        let frames: Vec<Vec<u8>> = (0..burst)
            .map(|i| udp(if i % 2 == 0 { 1 } else { 2 }, 80))
            .collect();
        br.send(1, &frames);
        assert_eq!(br.out(2).len(), burst.div_ceil(2), "burst {burst}");
        assert_eq!(br.out(4).len(), burst / 2, "burst {burst}");
        assert!(br.out(1).is_empty() && br.out(3).is_empty());
    }
}

#[test]
fn clauses_of_different_priorities_are_different_conjunctions() {
    let mut br = Bridge::new(3);
    br.add_actions(0, 100, &[IP, src(1)], vec![conj(7, 1, 2)]);
    br.add_actions(0, 90, &[IP, UDP, dport(80)], vec![conj(7, 2, 2)]);
    br.add_actions(
        0,
        100,
        &[(Field::ConjId, 7)],
        vec![Action::Output(PortNo(2))],
    );
    br.add_actions(0, 1, &[], vec![Action::Output(PortNo(3))]);
    br.send(1, &[udp(1, 80)]);
    assert!(br.out(2).is_empty());
    assert_eq!(br.out(3).len(), 1);
}

#[test]
fn a_satisfied_conjunction_without_its_flow_falls_back_to_the_next() {
    for burst in BURSTS {
        // Priority 100: conjunction 7 (no conj_id=7 flow). Priority 50: conjunction 8 on
        // the same clauses, whose flow sends to port 4.
        let mut br = Bridge::new(4);
        for (id, prio) in [(7, 100), (8, 50)] {
            br.add_actions(0, prio, &[IP, src(1)], vec![conj(id, 1, 2)]);
            br.add_actions(0, prio, &[IP, UDP, dport(80)], vec![conj(id, 2, 2)]);
        }
        br.add_actions(
            0,
            50,
            &[(Field::ConjId, 8)],
            vec![Action::Output(PortNo(4))],
        );
        let frames: Vec<Vec<u8>> = (0..burst).map(|_| udp(1, 80)).collect();
        br.send(1, &frames);
        assert_eq!(br.out(4).len(), burst, "burst {burst}");
        // With a flow that matches everything, looking again for conjunction 7 finds that
        // flow, which is the answer (as in Open vSwitch: the second lookup's flow, whatever
        // it matches).
        br.add_actions(0, 1, &[], vec![Action::Output(PortNo(3))]);
        br.send(1, &frames);
        assert_eq!(br.out(3).len(), burst, "burst {burst}");
        assert!(br.out(4).is_empty());
    }
}

#[test]
fn one_flow_may_be_a_clause_of_several_conjunctions_and_three_clauses_need_all_three() {
    let mut br = Bridge::new(4);
    // Source 1 is clause 1 of conjunctions 1 and 2; port 80 clause 2 of 1; port 443
    // clause 2 of 2; TTL 64 clause 3 of conjunction 2 only.
    br.add_actions(0, 10, &[IP, src(1)], vec![conj(1, 1, 2), conj(2, 1, 3)]);
    br.add_actions(0, 10, &[IP, UDP, dport(80)], vec![conj(1, 2, 2)]);
    br.add_actions(0, 10, &[IP, UDP, dport(443)], vec![conj(2, 2, 3)]);
    br.add_actions(0, 10, &[IP, (Field::IpTtl, 64)], vec![conj(2, 3, 3)]);
    br.add_actions(
        0,
        10,
        &[(Field::ConjId, 1)],
        vec![Action::Output(PortNo(2))],
    );
    br.add_actions(
        0,
        10,
        &[(Field::ConjId, 2)],
        vec![Action::Output(PortNo(4))],
    );
    br.add_actions(0, 1, &[], vec![Action::Output(PortNo(3))]);
    br.send(1, &[udp(1, 80), udp(1, 443), udp(2, 443)]);
    assert_eq!(br.out(2), vec![udp(1, 80)]);
    assert_eq!(br.out(4), vec![udp(1, 443)]);
    assert_eq!(br.out(3), vec![udp(2, 443)]);
}

#[test]
fn a_megaflow_of_a_conjunction_never_carries_conj_id() {
    let mut br = Bridge::new(3);
    firewall(&br);
    br.send(1, &[udp(1, 80)]);
    let snap = br.dp.snapshot();
    let mut key = datapath::flow::FlowKey::ZERO;
    datapath::flow::extract(&udp(1, 80), PortNo(1), &mut key).unwrap();
    let (t, wc) = datapath::pipeline::translate(&snap.pipeline, &key);
    assert_eq!(wc.get(Field::ConjId), 0);
    // The clauses' fields are in it: a packet differing in one of them is another megaflow.
    assert_ne!(wc.get(Field::Ipv4Src), 0);
    assert_ne!(wc.get(Field::TpDst), 0);
    assert_eq!(t.rules.len(), 1);
    assert_eq!(t.rules[0].spec.mask.get(Field::ConjId), 0xffff_ffff);
}

/// One flow of the property test.
#[derive(Clone, Debug)]
enum F {
    /// A clause: (conjunction, its priority slot) for source `src` or port `dport`.
    Clause {
        id: u32,
        src: Option<u8>,
        dport: Option<u16>,
        k: u8,
    },
    /// `conj_id=id` to port `out`.
    Target { id: u32, out: u32 },
    /// A plain flow at `prio` on an optional source, to port `out`.
    Plain {
        prio: u16,
        src: Option<u8>,
        out: u32,
    },
}

/// Each conjunction has its own priority (several satisfied at one priority choose one
/// unspecified: not modelled).
fn prio_of(id: u32) -> u16 {
    10 * id as u16
}

fn flow_strategy() -> impl Strategy<Value = F> {
    prop_oneof![
        (1u32..4, 1u8..4, any::<bool>()).prop_map(|(id, v, by_src)| if by_src {
            F::Clause {
                id,
                src: Some(v),
                dport: None,
                k: 1,
            }
        } else {
            F::Clause {
                id,
                src: None,
                dport: Some(u16::from(v)),
                k: 2,
            }
        }),
        (1u32..4, 2u32..5).prop_map(|(id, out)| F::Target { id, out }),
        // Often at a conjunction's own priority, where the plain flow wins.
        (
            prop_oneof![Just(10u16), Just(20), Just(30), 0u16..45],
            prop::option::of(1u8..4),
            2u32..5
        )
            .prop_map(|(prio, src, out)| F::Plain { prio, src, out }),
    ]
}

/// A flow's (priority, source, port, conj_id) match.
fn shape(f: &F) -> (u16, Option<u8>, Option<u16>, Option<u32>) {
    match *f {
        F::Clause { id, src, dport, .. } => (prio_of(id), src, dport, None),
        F::Target { id, .. } => (prio_of(id), None, None, Some(id)),
        F::Plain { prio, src, .. } => (prio, src, None, None),
    }
}

/// The model: which port a packet from `s` to `p` leaves on (0: dropped), over `flows` in
/// age order (same match and priority: the later replaced the earlier; several clause
/// actions of one flow are not generated).
fn model(flows: &[F], s: u8, p: u16) -> u32 {
    let matches = |f: &F, conj: u32| {
        let (_, fs, fp, fc) = shape(f);
        fs.is_none_or(|x| x == s) && fp.is_none_or(|x| x == p) && fc.is_none_or(|x| x == conj)
    };
    let best_hard = |conj: u32| -> Option<&F> {
        let mut best: Option<&F> = None;
        for f in flows
            .iter()
            .filter(|f| !matches!(f, F::Clause { .. }) && matches(f, conj))
        {
            if best.is_none_or(|b| shape(f).0 > shape(b).0) {
                best = Some(f);
            }
        }
        best
    };
    let out = |f: Option<&F>| match f {
        Some(F::Target { out, .. } | F::Plain { out, .. }) => *out,
        _ => 0,
    };
    let hard = best_hard(0);
    let floor = hard.map_or(-1, |h| i32::from(shape(h).0));
    let mut ids: Vec<u32> = flows
        .iter()
        .filter_map(|f| match *f {
            F::Clause { id, .. } if i32::from(prio_of(id)) > floor && matches(f, 0) => Some(id),
            _ => None,
        })
        .collect();
    ids.sort_by_key(|&id| std::cmp::Reverse(prio_of(id)));
    ids.dedup();
    for id in ids {
        let has = |k: u8| {
            flows.iter().any(|f| {
                matches!(*f, F::Clause { id: i, k: kk, .. } if i == id && kk == k) && matches(f, 0)
            })
        };
        if has(1)
            && has(2)
            && let Some(found) = best_hard(id)
        {
            return out(Some(found));
        }
    }
    out(hard)
}

fn install(br: &Bridge, flows: &[F]) {
    for f in flows {
        let (prio, s, p, c) = shape(f);
        let mut m = vec![IP, UDP];
        if let Some(s) = s {
            m.push(src(s));
        }
        if let Some(p) = p {
            m.push(dport(p));
        }
        if let Some(c) = c {
            m = vec![(Field::ConjId, u128::from(c))];
        }
        let actions = match *f {
            F::Clause { id, k, .. } => vec![conj(id, k, 2)],
            F::Target { out, .. } | F::Plain { out, .. } => vec![Action::Output(PortNo(out))],
        };
        br.add_actions(0, prio, &m, actions);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn conjunctions_agree_with_a_linear_model(
        flows in prop::collection::vec(flow_strategy(), 0..14),
        packets in prop::collection::vec((1u8..5, 1u16..5), 1..24),
    ) {
        // Same match and priority: the later flow replaces the earlier, in the model too.
        let mut kept: Vec<F> = Vec::new();
        for f in flows {
            kept.retain(|g| shape(g) != shape(&f));
            kept.push(f);
        }
        let mut br = Bridge::new(4);
        install(&br, &kept);
        // One packet at a time: each later one may hit a megaflow an earlier one installed.
        for &(s, p) in &packets {
            br.send(1, &[udp(s, p)]);
            let got: Vec<u32> = (1..=4).filter(|&o| !br.out(o).is_empty()).collect();
            let want = model(&kept, s, p);
            let want: Vec<u32> = if want == 0 { vec![] } else { vec![want] };
            prop_assert_eq!(got, want, "packet {:?} flows {:?}", (s, p), kept);
        }
    }
}
