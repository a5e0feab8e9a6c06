//! Port mirrors on in-memory ports, in bursts of 1, 32 and 33: what a selected port
//! receives goes to the output as received, what it sends as it leaves, only in the
//! selected VLANs, once per output however many mirrors and ports select it; the output
//! port takes no part in `normal`; a refused configuration changes nothing; and a property
//! test against a plain model of Open vSwitch's selection rules.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use common::{BURSTS, Bridge};

use datapath::actions::Action;
use datapath::flow::Field;
use datapath::pipeline::{MAX_MIRRORS, Mirror, MirrorError};
use datapath::stats::DropReason;
use datapath::types::{PortNo, VlanId};
use etherparse::PacketBuilder;
use proptest::prelude::*;

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

/// `f` with an 802.1Q tag of VLAN `vid` after the MAC addresses.
fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&vid.to_be_bytes());
    v.extend_from_slice(&f[12..]);
    v
}

fn mirror(name: &str, src: &[u32], dst: &[u32], output: u32) -> Mirror {
    Mirror {
        name: name.into(),
        select_src: src.iter().map(|&p| PortNo(p)).collect(),
        select_dst: dst.iter().map(|&p| PortNo(p)).collect(),
        output: PortNo(output),
        ..Mirror::default()
    }
}

/// Flows: what arrives on 1 goes to 2, and back.
fn one_to_two(br: &Bridge) {
    br.add_actions(0, 1, &[(Field::InPort, 1)], vec![Action::Output(PortNo(2))]);
    br.add_actions(0, 1, &[(Field::InPort, 2)], vec![Action::Output(PortNo(1))]);
}

fn counts(br: &Bridge) -> Vec<(String, u64, u64)> {
    br.dp.mirror_counts()
}

#[test]
fn a_source_mirror_copies_what_the_port_receives_as_received() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        // Rewritten before it leaves: the copy is the frame as it arrived.
        br.add_actions(
            0,
            1,
            &[(Field::InPort, 1)],
            vec![
                Action::SetField {
                    field: Field::Ipv4Src,
                    value: 0x0a09_0909,
                },
                Action::Output(PortNo(2)),
            ],
        );
        br.add_actions(0, 1, &[(Field::InPort, 2)], vec![Action::Output(PortNo(1))]);
        br.dp.set_mirrors(vec![mirror("m", &[1], &[], 4)]).unwrap();
        let f = frames(burst);
        br.send(1, &f);
        assert_eq!(br.out(4), f, "burst {burst}");
        assert_eq!(br.out(2).len(), burst);
        br.send(2, &f);
        assert!(br.out(4).is_empty(), "port 2 is not selected");
        assert_eq!(br.out(1).len(), burst);
        let bytes: u64 = f.iter().map(|f| f.len() as u64).sum();
        assert_eq!(counts(&br), [("m".to_string(), burst as u64, bytes)]);
    }
}

#[test]
fn a_destination_mirror_copies_what_the_port_sends_as_it_leaves() {
    for burst in BURSTS {
        let mut br = Bridge::new(4);
        br.add_actions(
            0,
            1,
            &[(Field::InPort, 1)],
            vec![
                Action::SetField {
                    field: Field::Ipv4Src,
                    value: 0x0a09_0909,
                },
                Action::Output(PortNo(2)),
            ],
        );
        br.add_actions(0, 1, &[(Field::InPort, 2)], vec![Action::Output(PortNo(1))]);
        br.dp.set_mirrors(vec![mirror("m", &[], &[2], 4)]).unwrap();
        br.send(1, &frames(burst));
        let sent = br.out(2);
        assert_eq!(sent.len(), burst);
        assert_eq!(br.out(4), sent, "the copies are the frames as they left");
        assert_eq!(&sent[0][26..30], &[10, 9, 9, 9]);
        br.send(2, &frames(burst));
        assert!(br.out(4).is_empty(), "what port 2 receives is not selected");
        assert_eq!(counts(&br)[0].1, burst as u64);
    }
}

#[test]
fn a_packet_goes_to_an_output_once_however_many_mirrors_and_ports_select_it() {
    for burst in BURSTS {
        let mut br = Bridge::new(5);
        // Flooded to 2, 3 and 4... but 4 is a mirror output: the flood of `all` is
        // OpenFlow's, so use explicit outputs.
        br.add_actions(
            0,
            1,
            &[(Field::InPort, 1)],
            vec![Action::Output(PortNo(2)), Action::Output(PortNo(3))],
        );
        br.dp
            .set_mirrors(vec![
                mirror("rx", &[1], &[], 4),
                mirror("tx", &[], &[2, 3], 4),
                mirror("other", &[], &[3], 5),
            ])
            .unwrap();
        let f = frames(burst);
        br.send(1, &f);
        assert_eq!(br.out(4), f, "one copy per packet to port 4");
        assert_eq!(br.out(5).len(), burst, "one copy per packet to port 5");
        assert_eq!(br.out(2).len(), burst);
        assert_eq!(br.out(3).len(), burst);
        let c = counts(&br);
        let n = burst as u64;
        assert_eq!(
            c.iter().map(|c| c.1).collect::<Vec<_>>(),
            [n, 0, n],
            "the first mirror to an output counts the copy: {c:?}"
        );
    }
}

#[test]
fn a_vlan_selection_mirrors_only_those_vlans() {
    let mut br = Bridge::new(4);
    br.add_actions(0, 1, &[(Field::InPort, 1)], vec![Action::Output(PortNo(2))]);
    let mut m = mirror("v", &[1], &[], 4);
    m.select_vlans = vec![VlanId(10), VlanId(30)];
    br.dp.set_mirrors(vec![m]).unwrap();
    let f = udp(1);
    let ten = tagged(&f, 10);
    br.send(1, &[tagged(&f, 20), ten.clone(), f.clone(), tagged(&f, 30)]);
    assert_eq!(br.out(2).len(), 4);
    assert_eq!(br.out(4), [ten, tagged(&f, 30)]);
}

#[test]
fn the_output_port_takes_no_part_in_normal_switching() {
    let mut br = Bridge::new(4);
    br.add_actions(0, 1, &[], vec![Action::Normal]);
    // Learn a station on port 4 before it becomes a mirror's output.
    let mut from4 = udp(4);
    from4[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x44]);
    br.send(4, std::slice::from_ref(&from4));
    for p in 1..=3 {
        assert_eq!(br.out(p).len(), 1);
    }
    br.dp.set_mirrors(vec![mirror("m", &[2], &[], 4)]).unwrap();
    // Broadcast from 1: flooded to 2 and 3, not 4.
    let mut bcast = udp(1);
    bcast[..6].copy_from_slice(&[0xff; 6]);
    br.send(1, std::slice::from_ref(&bcast));
    assert_eq!((br.out(2).len(), br.out(3).len()), (1, 1));
    assert!(br.out(4).is_empty(), "a mirror output is not flooded to");
    // To the station learned on 4: dropped.
    let mut to4 = udp(1);
    to4[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x44]);
    br.send(1, std::slice::from_ref(&to4));
    assert!(br.out(4).is_empty());
    assert_eq!(br.counters.read().drops[DropReason::MirrorPort as usize], 1);
    // What the output receives is not switched.
    br.send(4, &frames(3));
    assert!((1..=3).all(|p| br.out(p).is_empty()));
    assert_eq!(br.counters.read().drops[DropReason::MirrorPort as usize], 4);
    // Port 2's received broadcast is flooded and mirrored once.
    let mut b2 = udp(2);
    b2[..6].copy_from_slice(&[0xff; 6]);
    br.send(2, std::slice::from_ref(&b2));
    assert_eq!(br.out(4), [b2]);
}

#[test]
fn a_refused_configuration_changes_nothing() {
    let mut br = Bridge::new(4);
    one_to_two(&br);
    br.dp.set_mirrors(vec![mirror("m", &[1], &[], 4)]).unwrap();
    let too_many: Vec<Mirror> = (0..=MAX_MIRRORS)
        .map(|i| mirror(&format!("m{i}"), &[1], &[], 4))
        .collect();
    for (bad, want) in [
        (too_many, MirrorError::TooMany(MAX_MIRRORS + 1)),
        (
            vec![mirror("a", &[1], &[], 4), mirror("a", &[2], &[], 3)],
            MirrorError::DuplicateName("a".into()),
        ),
        (
            vec![mirror("a", &[9], &[], 4)],
            MirrorError::NoSuchPort("a".into(), PortNo(9)),
        ),
        (
            vec![mirror("a", &[1], &[], 9)],
            MirrorError::NoSuchPort("a".into(), PortNo(9)),
        ),
        (
            vec![mirror("a", &[1], &[4], 4)],
            MirrorError::OutputSelected("a".into(), PortNo(4)),
        ),
        (
            vec![mirror("a", &[1], &[], 4), mirror("b", &[4], &[], 3)],
            MirrorError::OutputSelected("b".into(), PortNo(4)),
        ),
        (
            vec![mirror("a", &[], &[], 4)],
            MirrorError::NothingSelected("a".into()),
        ),
        (vec![mirror("", &[1], &[], 4)], MirrorError::NoName),
        (
            vec![Mirror {
                select_vlans: vec![VlanId(4096)],
                ..mirror("a", &[1], &[], 4)
            }],
            MirrorError::BadVlan("a".into(), 4096),
        ),
    ] {
        assert_eq!(br.dp.set_mirrors(bad), Err(want));
    }
    // The first configuration still runs.
    br.send(1, &frames(2));
    assert_eq!(br.out(4).len(), 2);
    // Exactly as many as Open vSwitch allows.
    let most: Vec<Mirror> = (0..MAX_MIRRORS)
        .map(|i| mirror(&format!("m{i}"), &[1], &[], 4))
        .collect();
    br.dp.set_mirrors(most).unwrap();
    br.send(1, &frames(1));
    assert_eq!(br.out(4).len(), 1, "32 mirrors to one output: one copy");
}

#[test]
fn select_all_and_removed_ports_and_counters_kept_across_changes() {
    let mut br = Bridge::new(4);
    one_to_two(&br);
    br.dp
        .set_mirrors(vec![Mirror {
            select_all: true,
            ..mirror("all", &[], &[], 4)
        }])
        .unwrap();
    br.send(1, &frames(3));
    assert_eq!(
        br.out(4).len(),
        3,
        "once each though received on 1 and sent on 2"
    );
    br.send(2, &frames(2));
    assert_eq!(br.out(4).len(), 2);
    // Reconfigured under its name: the counts stay.
    br.dp
        .set_mirrors(vec![mirror("all", &[1], &[], 4)])
        .unwrap();
    assert_eq!(counts(&br)[0].1, 5);
    // A removed port is forgotten; its output's removal removes the mirror.
    br.dp
        .set_mirrors(vec![
            mirror("a", &[1, 3], &[], 4),
            mirror("b", &[1], &[], 3),
        ])
        .unwrap_err();
    br.dp
        .set_mirrors(vec![
            mirror("a", &[1, 2], &[], 4),
            mirror("b", &[2], &[], 3),
        ])
        .unwrap();
    br.dp.del_port(PortNo(2)).unwrap();
    let snap = br.dp.snapshot();
    let left: Vec<_> = snap.mirrors.entries().iter().map(|e| &*e.mirror).collect();
    assert_eq!(left, [&mirror("a", &[1], &[], 4)]);
}

#[test]
fn no_mirror_means_no_copy() {
    let mut br = Bridge::new(4);
    one_to_two(&br);
    br.send(1, &frames(33));
    assert!(br.out(4).is_empty());
    assert!(br.dp.mirror_counts().is_empty());
    let d = br.counters.read().drops;
    assert_eq!(d.iter().sum::<u64>(), 0);
}

/// Open vSwitch's selection, written plainly: for a packet received on `in_port` and sent
/// to `outs`, the output ports that get a copy.
fn model(mirrors: &[Mirror], in_port: u32, outs: &[u32]) -> Vec<u32> {
    let mut got: Vec<u32> = mirrors
        .iter()
        .filter(|m| {
            m.select_src.contains(&PortNo(in_port))
                || outs.iter().any(|o| m.select_dst.contains(&PortNo(*o)))
        })
        .map(|m| m.output.0)
        .collect();
    got.sort_unstable();
    got.dedup();
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random mirrors over ports 1..=4 (outputs 5 and 6) and flows sending what each port
    /// receives to random other ports: each output gets one copy per packet one of its
    /// mirrors selects, none for the others, and the counters say so.
    #[test]
    fn copies_agree_with_a_plain_model(
        sel in proptest::collection::vec((0u8..16, 0u8..16, 5u32..=6), 1..5),
        outs in proptest::collection::vec(0u8..16, 4),
        burst in 1usize..40,
    ) {
        let mut br = Bridge::new(6);
        let bits = |b: u8| (1..=4).filter(|p| b & (1 << (p - 1)) != 0).collect::<Vec<u32>>();
        let mirrors: Vec<Mirror> = sel
            .iter()
            .enumerate()
            .map(|(i, &(s, d, o))| mirror(&format!("m{i}"), &bits(s), &bits(d), o))
            .filter(|m| !m.select_src.is_empty() || !m.select_dst.is_empty())
            .collect();
        prop_assume!(!mirrors.is_empty());
        let out_of = |p: u32| -> Vec<u32> {
            bits(outs[p as usize - 1]).into_iter().filter(|&o| o != p).collect()
        };
        for p in 1..=4u32 {
            let acts = out_of(p).into_iter().map(|o| Action::Output(PortNo(o))).collect();
            br.add_actions(0, 1, &[(Field::InPort, p as u128)], acts);
        }
        br.dp.set_mirrors(mirrors.clone()).unwrap();
        let mut want = [0usize; 7];
        for p in 1..=4u32 {
            br.send(p, &frames(burst));
            for o in model(&mirrors, p, &out_of(p)) {
                want[o as usize] += burst;
            }
        }
        prop_assert_eq!(br.out(5).len(), want[5]);
        prop_assert_eq!(br.out(6).len(), want[6]);
        let total: u64 = br.dp.mirror_counts().iter().map(|c| c.1).sum();
        prop_assert_eq!(total as usize, want[5] + want[6]);
    }
}
