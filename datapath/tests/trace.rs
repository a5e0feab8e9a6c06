//! `trace` against the datapath itself: over generated flow tables and packets, the ports a
//! trace says a packet goes to are the ports the poll loop sends it to; a trace changes no
//! counter, cache, MAC entry or meter; and the printed form of goto, group, normal, drop,
//! meter and ct.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::conntrack::{CtAction, CtState};
use datapath::flow::{Field, FlowKey, FlowMask, compose};
use datapath::group::{Bucket, Group, GroupKind, Selection};
use datapath::l2::{VlanMode, VlanSet};
use datapath::meter::{Band, BandKind, Meter, MeterUnit};
use datapath::pipeline::trace::{Output, Trace};
use datapath::pipeline::{Datapath, DatapathConfig, PacketIn, Pmd};
use datapath::port::MemPort;
use datapath::types::{GroupId, MeterId, PortNo, TableId, VlanId};
use proptest::prelude::*;

struct Bridge {
    dp: Datapath,
    pmd: Pmd,
    ports: Vec<Arc<MemPort>>,
    packet_in: std::sync::mpsc::Receiver<PacketIn>,
}

impl Bridge {
    fn new(n: u32) -> Bridge {
        let (dp, packet_in) = Datapath::new(DatapathConfig::default());
        let mut ports = Vec::new();
        for i in 0..n {
            let p = Arc::new(MemPort::new(format!("p{}", i + 1), 4096));
            let mode = VlanMode::Trunk {
                allowed: VlanSet::all(),
                native: Some(VlanId(0)),
            };
            dp.add_port(PortNo(i + 1), p.clone(), mode).unwrap();
            ports.push(p);
        }
        let pmd = dp.new_pmd();
        Bridge {
            dp,
            pmd,
            ports,
            packet_in,
        }
    }

    fn add(&self, table: u8, priority: u16, m: &[(Field, u128)], ins: Instructions) {
        let (mut key, mut mask) = (FlowKey::ZERO, FlowMask::ZERO);
        for &(f, v) in m {
            key.set(f, v);
            mask.set(f, f.full_mask());
        }
        let spec = FlowSpec {
            table: TableId(table),
            priority,
            key: key.masked(&mask),
            mask,
            cookie: 0x10 + table as u64,
            idle_timeout_s: 0,
            hard_timeout_s: 0,
            send_flow_removed: false,
            instructions: ins,
        };
        self.dp
            .flow_mods(&[FlowMod::Add {
                spec,
                check_overlap: false,
            }])
            .unwrap();
    }

    /// Sends `frame` in on `port`; where its copies went (port -> count; port 0: the
    /// controller).
    fn send(&mut self, port: u32, frame: &[u8]) -> BTreeMap<u32, usize> {
        self.ports[port as usize - 1].inject(std::iter::once(frame));
        self.pmd.poll_until_idle();
        let mut got = BTreeMap::new();
        for (i, p) in self.ports.iter().enumerate() {
            let n = p.drain().len();
            if n > 0 {
                got.insert(i as u32 + 1, n);
            }
        }
        let pi = self.packet_in.try_iter().count();
        if pi > 0 {
            got.insert(0, pi);
        }
        got
    }
}

fn outputs(t: &Trace) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for o in &t.outputs {
        let k = match o {
            Output::Port(p) => p.0,
            Output::Controller => 0,
        };
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn udp_key(in_port: u32, src: u8, dst: u8, nw_dst: u8, ttl: u8, dport: u16) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, in_port as u128);
    k.set(Field::EthType, 0x0800);
    k.set(Field::EthSrc, 0x0200_0000_0000 | src as u128);
    k.set(Field::EthDst, 0x0200_0000_0000 | dst as u128);
    k.set(Field::IpProto, 17);
    k.set(Field::IpTtl, ttl as u128);
    k.set(Field::Ipv4Src, 0x0a00_0000 | src as u128);
    k.set(Field::Ipv4Dst, 0x0a00_0000 | nw_dst as u128);
    k.set(Field::TpSrc, 1000);
    k.set(Field::TpDst, dport as u128);
    k
}

fn trace(br: &Bridge, k: &FlowKey) -> Trace {
    let in_port = PortNo(k.get(Field::InPort) as u32);
    br.dp.trace(in_port, &compose(k), None).unwrap()
}

fn groups(dp: &Datapath) {
    dp.set_group(Group {
        id: GroupId(1),
        kind: GroupKind::Select,
        buckets: vec![
            Bucket::new(1, vec![Action::Output(PortNo(2))]),
            Bucket::new(1, vec![Action::Output(PortNo(3))]),
        ],
        selection: Selection::Default,
    })
    .unwrap();
    dp.set_group(Group {
        id: GroupId(2),
        kind: GroupKind::All,
        buckets: vec![
            Bucket::new(0, vec![Action::Output(PortNo(3))]),
            Bucket::new(0, vec![Action::DecTtl, Action::Output(PortNo(4))]),
        ],
        selection: Selection::Default,
    })
    .unwrap();
}

/// One generated action.
fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (1u32..=5).prop_map(|p| Action::Output(PortNo(p))),
        Just(Action::InPort),
        Just(Action::Flood),
        Just(Action::All),
        Just(Action::Normal),
        Just(Action::Controller { max_len: 64 }),
        Just(Action::DecTtl),
        Just(Action::PopVlan),
        Just(Action::PushVlan { tpid: 0x8100 }),
        (1u8..4).prop_map(|d| Action::SetField {
            field: Field::EthDst,
            value: 0x0200_0000_0000 | d as u128
        }),
        (1u8..4).prop_map(|d| Action::SetField {
            field: Field::Ipv4Dst,
            value: 0x0a00_0000 | d as u128
        }),
        (1u32..=3).prop_map(|g| Action::Group(GroupId(g))),
        (0u8..3).prop_map(|t| Action::Resubmit {
            in_port: None,
            table: Some(TableId(t))
        }),
        Just(Action::Exit),
        (any::<bool>(), prop::option::of(1u8..3)).prop_map(|(commit, t)| Action::Ct {
            ct: CtAction {
                commit,
                ..CtAction::default()
            },
            table: t.map(TableId),
            zone_src: None,
        }),
    ]
}

/// One generated flow: (table, priority, match, actions, goto).
type ArbFlow = (u8, u16, Vec<(Field, u128)>, Vec<Action>, bool);

fn arb_flow() -> impl Strategy<Value = ArbFlow> {
    let field = prop_oneof![
        (1u128..=4).prop_map(|p| (Field::InPort, p)),
        Just((Field::EthType, 0x0800)),
        (1u128..4).prop_map(|d| (Field::Ipv4Dst, 0x0a00_0000 | d)),
        (1u128..4).prop_map(|d| (Field::EthDst, 0x0200_0000_0000 | d)),
        (53u128..56).prop_map(|p| (Field::TpDst, p)),
        prop::sample::select(vec![0u128, 0x21, 0x22, 0x2a]).prop_map(|s| (Field::CtState, s)),
    ];
    (
        0u8..3,
        0u16..4,
        prop::collection::vec(field, 0..3),
        prop::collection::vec(arb_action(), 0..4),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The trace's outputs are the datapath's, packet after packet (MAC learning and
    /// all), and the last `Datapath actions:` names exactly the ports that got copies.
    #[test]
    fn trace_outputs_equal_what_the_datapath_does(
        flows in prop::collection::vec(arb_flow(), 0..12),
        packets in prop::collection::vec((1u32..=4, 1u8..4, 1u8..4, 1u8..4, 1u8..3, 53u16..56), 1..12),
    ) {
        let mut br = Bridge::new(4);
        groups(&br.dp);
        for (table, prio, m, actions, goto) in &flows {
            let mut ins = Instructions::actions(actions.clone());
            if *goto && *table < 2 {
                ins.goto_table = Some(TableId(table + 1));
            }
            br.add(*table, *prio, m, ins);
        }
        for (in_port, src, dst, nw_dst, ttl, dport) in packets {
            let k = udp_key(in_port, src, dst, nw_dst, ttl, dport);
            let t = trace(&br, &k);
            let got = br.send(in_port, &compose(&k));
            prop_assert_eq!(outputs(&t), got, "{}", t.render("br0"));
        }
    }
}

proptest! {
    /// Any bytes as the frame (`--packet` comes from the API): a trace or a clear error,
    /// never a panic, through every kind of action.
    #[test]
    fn any_frame_traces_or_is_refused(frame in prop::collection::vec(any::<u8>(), 0..200), flows in prop::collection::vec(arb_flow(), 0..6)) {
        let br = Bridge::new(3);
        groups(&br.dp);
        for (table, prio, m, actions, _) in &flows {
            br.add(*table, *prio, m, Instructions::actions(actions.clone()));
        }
        if let Ok(t) = br.dp.trace(PortNo(1), &frame, None) {
            prop_assert!(t.render("br0").contains("Datapath actions: "));
        }
    }
}

#[test]
fn a_trace_changes_no_counter_cache_mac_entry_or_meter() {
    let mut br = Bridge::new(3);
    let band = Band {
        kind: BandKind::Drop,
        rate: 1,
        burst: 1,
    };
    let meter = Meter::new(MeterId(1), MeterUnit::Pktps, vec![band], br.dp.now_ns()).unwrap();
    br.dp.set_meter(meter).unwrap();
    let ins = Instructions {
        meter: Some(MeterId(1)),
        ..Instructions::actions(vec![Action::Normal])
    };
    br.add(0, 1, &[], ins);
    let k = udp_key(1, 1, 2, 2, 64, 53);
    let before = (br.dp.pmd_totals(), br.dp.table_counts()[0]);
    for _ in 0..10 {
        let t = trace(&br, &k);
        assert_eq!(
            t.outputs,
            vec![Output::Port(PortNo(2)), Output::Port(PortNo(3))]
        );
    }
    assert_eq!((br.dp.pmd_totals(), br.dp.table_counts()[0]), before);
    let now = br.dp.now_ns() / 1_000_000_000;
    let learned = br.dp.mac_table().lookup(
        VlanId(0),
        datapath::types::MacAddr::from_u64(0x0200_0000_0001),
        now as u32,
    );
    assert_eq!(learned, None, "the trace learned nothing");
    // The meter's one token is still there: the real packet passes (flooded), the next is
    // dropped, and the trace now says so.
    assert_eq!(br.send(1, &compose(&k)).values().sum::<usize>(), 2);
    assert_eq!(br.send(1, &compose(&k)).values().sum::<usize>(), 0);
    let t = trace(&br, &k);
    assert!(t.outputs.is_empty(), "{}", t.render("br0"));
    assert!(
        t.render("br0").contains("meter 1: over its rate"),
        "{}",
        t.render("br0")
    );
}

#[test]
fn goto_set_field_and_output_read_as_ovs_prints_them() {
    let br = Bridge::new(3);
    br.add(
        0,
        100,
        &[(Field::InPort, 1), (Field::EthType, 0x0800)],
        Instructions {
            goto_table: Some(TableId(1)),
            ..Instructions::actions(vec![Action::SetField {
                field: Field::Ipv4Dst,
                value: 0x0a00_0009,
            }])
        },
    );
    br.add(
        1,
        5,
        &[(Field::Ipv4Dst, 0x0a00_0009)],
        Instructions::actions(vec![Action::Output(PortNo(3))]),
    );
    let t = trace(&br, &udp_key(1, 1, 2, 2, 64, 53));
    let s = t.render("br0");
    assert!(s.starts_with("Flow: in_port=1,dl_type=0x800,"), "{s}");
    assert!(s.contains("bridge(\"br0\")\n-------------\n"), "{s}");
    assert!(s.contains("\n 0. in_port=1,dl_type=0x800, priority 100, cookie 0x10\n    set_field:10.0.0.9->nw_dst\n    goto_table:1\n 1. nw_dst=10.0.0.9, priority 5, cookie 0x11\n    output:3\n"), "{s}");
    assert!(s.contains("Final flow: in_port=1,"), "{s}");
    assert!(s.contains("nw_dst=10.0.0.9"), "{s}");
    assert!(s.contains("\nMegaflow: in_port=1,dl_type=0x800,"), "{s}");
    assert!(
        s.ends_with("Datapath actions: set(nw_dst=10.0.0.9),3\n"),
        "{s}"
    );
    assert_eq!(t.dp_actions(), "set(nw_dst=10.0.0.9),3");
}

#[test]
fn a_miss_and_a_drop_read_as_ovs_prints_them() {
    let br = Bridge::new(2);
    br.add(0, 1, &[(Field::InPort, 2)], Instructions::actions(vec![]));
    let s = trace(&br, &udp_key(1, 1, 2, 2, 64, 53)).render("br0");
    assert!(s.contains("\n 0. No match.\n"), "{s}");
    assert!(
        s.contains(">> no flow matched in table 0 (table miss): dropped"),
        "{s}"
    );
    assert!(s.ends_with("Datapath actions: drop\n"), "{s}");
    let s = trace(&br, &udp_key(2, 1, 2, 2, 64, 53)).render("br0");
    assert!(
        s.contains(" 0. in_port=2, priority 1, cookie 0x10\n"),
        "{s}"
    );
    assert!(
        s.contains("nothing sent the packet anywhere: dropped (drop_flow_action)"),
        "{s}"
    );
    assert!(s.ends_with("Datapath actions: drop\n"), "{s}");
}

#[test]
fn groups_and_resubmit_show_the_bucket_and_nest() {
    let br = Bridge::new(4);
    groups(&br.dp);
    br.add(
        0,
        1,
        &[],
        Instructions::actions(vec![
            Action::Resubmit {
                in_port: None,
                table: Some(TableId(2)),
            },
            Action::Group(GroupId(1)),
        ]),
    );
    br.add(
        2,
        1,
        &[],
        Instructions::actions(vec![Action::Group(GroupId(2))]),
    );
    let t = trace(&br, &udp_key(1, 1, 2, 2, 64, 53));
    let s = t.render("br0");
    assert!(
        s.contains(
            "\n    resubmit(,2)\n         2. priority 1, cookie 0x12\n            group:2\n"
        ),
        "{s}"
    );
    assert!(s.contains("-> group 2 (All): every bucket (2)"), "{s}");
    assert!(s.contains("bucket 1\n"), "{s}");
    assert!(s.contains("dec_ttl"), "{s}");
    assert!(s.contains("-> group 1 (Select): bucket "), "{s}");
    assert!(s.contains("chosen by the flow hash 0x"), "{s}");
    assert_eq!(t.outputs.len(), 3);
}

#[test]
fn normal_shows_the_mac_entry_it_used_or_the_flood() {
    let mut br = Bridge::new(3);
    br.add(0, 1, &[], Instructions::actions(vec![Action::Normal]));
    let to_b = udp_key(1, 1, 2, 2, 64, 53);
    let s = trace(&br, &to_b).render("br0");
    assert!(
        s.contains("-> no learned entry for 02:00:00:00:00:02 in VLAN 0: flooding"),
        "{s}"
    );
    assert!(s.ends_with("Datapath actions: 2,3\n"), "{s}");
    // Station 2 speaks from port 3: now it is known there.
    br.send(3, &compose(&udp_key(3, 2, 1, 1, 64, 53)));
    let s = trace(&br, &to_b).render("br0");
    assert!(
        s.contains("-> MAC table: 02:00:00:00:00:02 in VLAN 0 is on port 3"),
        "{s}"
    );
    assert!(s.ends_with("Datapath actions: 3\n"), "{s}");
}

#[test]
fn ct_shows_the_state_and_the_recirculation_without_committing() {
    let mut br = Bridge::new(2);
    let commit = CtAction {
        commit: true,
        ..CtAction::default()
    };
    br.add(
        0,
        10,
        &[(Field::EthType, 0x0800), (Field::CtState, 0)],
        Instructions::actions(vec![Action::Ct {
            ct: CtAction::default(),
            table: Some(TableId(1)),
            zone_src: None,
        }]),
    );
    let new = (CtState::TRK | CtState::NEW) as u128;
    let est = (CtState::TRK | CtState::EST) as u128;
    br.add(
        1,
        10,
        &[(Field::EthType, 0x0800), (Field::CtState, new)],
        Instructions::actions(vec![
            Action::Ct {
                ct: commit,
                table: None,
                zone_src: None,
            },
            Action::Output(PortNo(2)),
        ]),
    );
    br.add(
        1,
        10,
        &[(Field::EthType, 0x0800), (Field::CtState, est)],
        Instructions::actions(vec![Action::Output(PortNo(2))]),
    );
    let out = udp_key(1, 1, 2, 2, 64, 53);
    let t = trace(&br, &out);
    let s = t.render("br0");
    assert_eq!(t.passes.len(), 2, "{s}");
    assert!(
        s.contains("Datapath actions: ct(table=1),recirc(0x2)\n"),
        "{s}"
    );
    assert!(
        s.contains("recirc(0x2) - resume conntrack with ct_state=+trk+new"),
        "{s}"
    );
    assert!(s.contains("ct(commit)"), "{s}");
    assert!(s.ends_with("Datapath actions: ct(commit),2\n"), "{s}");
    assert!(
        br.dp.conntrack_if_made().is_none_or(|c| c.is_empty()),
        "the trace committed nothing"
    );
    // The real packet commits; its reply is then established.
    assert_eq!(br.send(1, &compose(&out)).get(&2), Some(&1));
    let back = udp_key(2, 2, 1, 1, 64, 1000);
    let mut back = back;
    back.set(Field::Ipv4Dst, 0x0a00_0001);
    back.set(Field::TpSrc, 53);
    let s = trace(&br, &back).render("br0");
    assert!(s.contains("ct_state=+trk+est+rpl"), "{s}");
}
