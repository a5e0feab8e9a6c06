//! Pipeline tests on in-memory ports: install flows, inject frames, check what comes out of
//! which port and what the counters say.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec, Selector};
use datapath::flow::{Field, FlowKey, FlowMask, extract};
use datapath::group::{Bucket, Group, GroupKind, Selection};
use datapath::l2::{VlanMode, VlanSet};
use datapath::pipeline::{Datapath, DatapathConfig, Pmd};
use datapath::port::MemPort;
use datapath::stats::{DropReason, PmdCounters};
use datapath::types::{GroupId, PortNo, TableId, VlanId};
use etherparse::PacketBuilder;

struct Bridge {
    dp: Datapath,
    pmd: Pmd,
    ports: Vec<Arc<MemPort>>,
    counters: Arc<PmdCounters>,
    packet_in: std::sync::mpsc::Receiver<datapath::pipeline::PacketIn>,
}

impl Bridge {
    fn new(n_ports: u32) -> Bridge {
        Bridge::with_modes(&vec![None; n_ports as usize])
    }

    fn with_modes(modes: &[Option<VlanMode>]) -> Bridge {
        Bridge::with_config(modes, DatapathConfig::default())
    }

    fn with_config(modes: &[Option<VlanMode>], config: DatapathConfig) -> Bridge {
        let (dp, packet_in) = Datapath::new(config);
        let mut ports = Vec::new();
        for (i, m) in modes.iter().enumerate() {
            let p = Arc::new(MemPort::new(format!("p{}", i + 1), 4096));
            let mode = m.clone().unwrap_or(VlanMode::Trunk {
                allowed: VlanSet::all(),
                native: Some(VlanId(0)),
            });
            dp.add_port(PortNo(i as u32 + 1), p.clone(), mode).unwrap();
            ports.push(p);
        }
        let pmd = dp.new_pmd();
        let counters = pmd.counters();
        Bridge {
            dp,
            pmd,
            ports,
            counters,
            packet_in,
        }
    }

    fn port(&self, no: u32) -> &MemPort {
        &self.ports[no as usize - 1]
    }

    fn add(&self, table: u8, priority: u16, m: &[(Field, u128, u128)], ins: Instructions) {
        self.dp
            .flow_mods(&[FlowMod::Add {
                spec: spec(table, priority, m, ins),
                check_overlap: false,
            }])
            .unwrap();
    }

    fn send(&mut self, port: u32, frames: &[Vec<u8>]) {
        let mut sent = 0;
        while sent < frames.len() {
            let n = self.port(port).inject(frames[sent..].iter().take(1024));
            sent += n;
            self.pmd.poll_until_idle();
        }
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.counters.drops_for(r)
    }
}

fn spec(
    table: u8,
    priority: u16,
    m: &[(Field, u128, u128)],
    instructions: Instructions,
) -> FlowSpec {
    let mut key = FlowKey::ZERO;
    let mut mask = FlowMask::ZERO;
    for &(f, v, msk) in m {
        key.set(f, v);
        mask.set(f, msk);
    }
    FlowSpec {
        table: TableId(table),
        priority,
        key: key.masked(&mask),
        mask,
        cookie: 0,
        idle_timeout_s: 0,
        hard_timeout_s: 0,
        send_flow_removed: false,
        instructions,
    }
}

fn exact(f: Field, v: u128) -> (Field, u128, u128) {
    (f, v, f.full_mask())
}

fn out(ports: &[u32]) -> Instructions {
    Instructions::actions(
        ports
            .iter()
            .map(|&p| Action::Output(PortNo(p)))
            .collect::<Vec<_>>(),
    )
}

fn udp(src: u8, dst: u8, sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, dst])
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(sport, 80)
        .write(&mut v, &[0u8; 18])
        .unwrap();
    v
}

fn udp_vlan(src: u8, dst: u8, vid: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, dst])
        .single_vlan(vid.try_into().unwrap())
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(1, 80)
        .write(&mut v, &[0u8; 18])
        .unwrap();
    v
}

#[test]
fn output_flow_at_every_burst_size() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let mut br = Bridge::new(2);
        br.add(0, 100, &[exact(Field::InPort, 1)], out(&[2]));
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, i as u16)).collect();
        br.send(1, &frames);
        let got = br.port(2).drain();
        assert_eq!(
            got, frames,
            "burst size {n}: every frame, unchanged, in order"
        );
        let c = &br.counters;
        assert_eq!(c.rx_packets.get(), n as u64);
        assert_eq!(c.tx_packets.get(), n as u64);
        assert_eq!(c.total_drops(), 0);
        assert_eq!(
            c.emc_hit.get() + c.megaflow_hit.get() + c.slow_path.get(),
            n as u64
        );
        assert_eq!(c.slow_path.get(), 1, "one flow, one upcall");
    }
}

#[test]
fn many_flows_at_burst_sizes_hit_caches_consistently() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let mut br = Bridge::new(3);
        // Even source ports to 2, odd to 3 (via a masked match on the low bit).
        br.add(
            0,
            10,
            &[
                exact(Field::EthType, 0x0800),
                exact(Field::IpProto, 17),
                (Field::TpSrc, 0, 1),
            ],
            out(&[2]),
        );
        br.add(
            0,
            10,
            &[
                exact(Field::EthType, 0x0800),
                exact(Field::IpProto, 17),
                (Field::TpSrc, 1, 1),
            ],
            out(&[3]),
        );
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, i as u16)).collect();
        // Twice: the second pass runs from the caches and must agree with the first.
        for _ in 0..2 {
            br.send(1, &frames);
            let even: Vec<_> = frames.iter().step_by(2).cloned().collect();
            let odd: Vec<_> = frames.iter().skip(1).step_by(2).cloned().collect();
            assert_eq!(br.port(2).drain(), even);
            assert_eq!(br.port(3).drain(), odd);
        }
        assert!(
            br.counters.slow_path.get() <= 2,
            "two megaflows cover everything"
        );
    }
}

#[test]
fn table_miss_and_flow_drop_are_counted() {
    let mut br = Bridge::new(2);
    br.add(
        0,
        100,
        &[
            exact(Field::TpSrc, 7),
            exact(Field::IpProto, 17),
            exact(Field::EthType, 0x0800),
        ],
        Instructions::default(),
    );
    br.send(1, &[udp(1, 2, 7), udp(1, 2, 8), udp(1, 2, 8)]);
    assert_eq!(br.drops(DropReason::FlowDrop), 1);
    assert_eq!(br.drops(DropReason::TableMiss), 2);
    assert!(br.port(2).drain().is_empty());
}

#[test]
fn malformed_frames_are_dropped_by_reason() {
    let mut br = Bridge::new(2);
    br.add(0, 0, &[], Instructions::actions(vec![Action::Flood]));
    let good = udp(1, 2, 1);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x43;
    let mut bad_len = good.clone();
    bad_len[16..18].copy_from_slice(&2000u16.to_be_bytes());
    let mut frames = vec![
        vec![0u8; 0],
        vec![0u8; 13],
        bad_ihl,
        bad_len,
        good[..30].to_vec(),
        good[..40].to_vec(),
    ];
    // Three VLAN tags.
    let mut deep = udp_vlan(1, 2, 5);
    deep.splice(12..12, [0x81, 0x00, 0x00, 0x06, 0x81, 0x00, 0x00, 0x07]);
    frames.push(deep);
    // Every truncation of a good frame: none may panic, all are counted somewhere.
    for cut in 0..good.len() {
        frames.push(good[..cut].to_vec());
    }
    let total = frames.len() as u64;
    br.send(1, &frames);
    assert_eq!(br.drops(DropReason::RuntFrame), 2 + 14);
    assert!(br.drops(DropReason::BadIpv4Header) >= 2);
    assert!(br.drops(DropReason::BadIpv4Length) >= 2);
    assert_eq!(br.drops(DropReason::VlanTooDeep), 1);
    assert_eq!(
        br.counters.total_drops(),
        total,
        "every malformed frame counted exactly once"
    );
    assert!(br.port(2).drain().is_empty());
}

#[test]
fn normal_learns_floods_then_forwards() {
    let mut br = Bridge::new(3);
    br.add(0, 0, &[], Instructions::actions(vec![Action::Normal]));
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(br.port(2).drain().len(), 1, "unknown destination floods");
    assert_eq!(br.port(3).drain().len(), 1);
    br.send(2, &[udp(2, 1, 1)]);
    assert_eq!(
        br.port(1).drain().len(),
        1,
        "learned destination is unicast"
    );
    assert!(br.port(3).drain().is_empty());
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(br.port(2).drain().len(), 1);
    assert!(br.port(3).drain().is_empty());
    assert_eq!(br.dp.mac_table().len(), 2);
    // Station move: MAC 1 now appears on port 3.
    br.send(3, &[udp(1, 2, 1)]);
    br.port(2).drain();
    br.send(2, &[udp(2, 1, 1)]);
    assert_eq!(br.port(3).drain().len(), 1);
    assert!(br.port(1).drain().is_empty());
}

#[test]
fn normal_respects_vlan_modes() {
    let access10 = Some(VlanMode::Access(VlanId(10)));
    let access20 = Some(VlanMode::Access(VlanId(20)));
    let mut allowed = VlanSet::default();
    allowed.insert(VlanId(10));
    allowed.insert(VlanId(20));
    let trunk = Some(VlanMode::Trunk {
        allowed,
        native: None,
    });
    let mut br = Bridge::with_modes(&[access10.clone(), access10, access20, trunk]);
    br.add(0, 0, &[], Instructions::actions(vec![Action::Normal]));
    br.send(1, &[udp(1, 9, 1)]);
    assert_eq!(
        br.port(2).drain(),
        vec![udp(1, 9, 1)],
        "same access VLAN, untagged"
    );
    assert!(br.port(3).drain().is_empty(), "other VLAN never sees it");
    assert_eq!(
        br.port(4).drain(),
        vec![udp_vlan(1, 9, 10)],
        "trunk gets it tagged"
    );
    // Tagged frame from the trunk on VLAN 20 reaches only the VLAN 20 access port, untagged.
    br.send(4, &[udp_vlan(7, 8, 20)]);
    assert_eq!(br.port(3).drain(), vec![udp(7, 8, 1)]);
    assert!(br.port(1).drain().is_empty());
    // A tagged frame on an access port and a VLAN the trunk does not allow are dropped.
    br.send(1, &[udp_vlan(1, 9, 10)]);
    br.send(4, &[udp_vlan(1, 9, 30)]);
    assert_eq!(br.drops(DropReason::VlanNotAllowed), 2);
}

#[test]
fn flow_changes_take_effect_on_the_next_burst() {
    let mut br = Bridge::new(3);
    br.add(0, 100, &[exact(Field::InPort, 1)], out(&[2]));
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(br.port(2).drain().len(), 1);
    // Higher priority, overlapping: must override the cached megaflow.
    br.add(
        0,
        200,
        &[exact(Field::InPort, 1), exact(Field::EthType, 0x0800)],
        out(&[3]),
    );
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(br.port(3).drain().len(), 1);
    assert!(br.port(2).drain().is_empty());
    // Delete it again: back to port 2.
    br.dp
        .flow_mods(&[FlowMod::Delete(Selector::exact(&spec(
            0,
            200,
            &[exact(Field::InPort, 1), exact(Field::EthType, 0x0800)],
            Instructions::default(),
        )))])
        .unwrap();
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(br.port(2).drain().len(), 1);
    assert!(br.port(3).drain().is_empty());
}

#[test]
fn multi_table_set_field_and_goto() {
    let mut br = Bridge::new(3);
    // Table 0 rewrites the destination IP and continues; table 1 matches the new value.
    br.add(
        0,
        10,
        &[exact(Field::EthType, 0x0800)],
        Instructions {
            apply: vec![
                Action::SetField {
                    field: Field::Ipv4Dst,
                    value: 0x0a00_0063,
                },
                Action::DecTtl,
            ]
            .into(),
            write_metadata: Some((7, 0xff)),
            goto_table: Some(TableId(1)),
            ..Instructions::default()
        },
    );
    br.add(
        1,
        10,
        &[
            exact(Field::EthType, 0x0800),
            exact(Field::Ipv4Dst, 0x0a00_0063),
            exact(Field::Metadata, 7),
        ],
        out(&[3]),
    );
    br.send(1, &[udp(1, 2, 5)]);
    let got = br.port(3).drain();
    assert_eq!(got.len(), 1);
    let mut k = FlowKey::ZERO;
    extract(&got[0], PortNo(1), &mut k).unwrap();
    assert_eq!(k.get(Field::Ipv4Dst), 0x0a00_0063);
    assert_eq!(k.get(Field::IpTtl), 63);
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&got[0][14..])
        .unwrap()
        .to_header();
    assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
}

#[test]
fn dec_ttl_expiry_is_counted() {
    let mut br = Bridge::new(2);
    br.add(
        0,
        10,
        &[],
        Instructions::actions(vec![Action::DecTtl, Action::Output(PortNo(2))]),
    );
    let mut f = udp(1, 2, 1);
    f[22] = 1;
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[14..])
        .unwrap()
        .to_header();
    let c = ip.calc_header_checksum();
    f[24..26].copy_from_slice(&c.to_be_bytes());
    br.send(1, &[f, udp(1, 2, 1)]);
    assert_eq!(br.drops(DropReason::TtlExceeded), 1);
    assert_eq!(br.port(2).drain().len(), 1);
}

#[test]
fn push_and_pop_vlan_actions() {
    let mut br = Bridge::new(3);
    br.add(
        0,
        10,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![
            Action::PushVlan { tpid: 0x8100 },
            Action::SetField {
                field: Field::VlanTci,
                value: 0x1000 | 42,
            },
            Action::Output(PortNo(2)),
        ]),
    );
    br.add(
        0,
        10,
        &[exact(Field::InPort, 2)],
        Instructions::actions(vec![Action::PopVlan, Action::Output(PortNo(3))]),
    );
    br.send(1, &[udp(1, 2, 1)]);
    let tagged = br.port(2).drain();
    assert_eq!(tagged, vec![udp_vlan(1, 2, 42)]);
    assert_eq!(tagged[0][12..16], [0x81, 0x00, 0x00, 42]);
    br.send(2, &tagged);
    assert_eq!(br.port(3).drain(), vec![udp(1, 2, 1)]);
}

#[test]
fn multiple_outputs_copy_and_flood_excludes_ingress() {
    let mut br = Bridge::new(4);
    br.add(0, 10, &[exact(Field::InPort, 1)], out(&[2, 3]));
    br.add(
        0,
        10,
        &[exact(Field::InPort, 2)],
        Instructions::actions(vec![Action::Flood]),
    );
    let frames: Vec<_> = (0..40).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    assert_eq!(br.port(2).drain(), frames);
    assert_eq!(br.port(3).drain(), frames);
    br.send(2, &frames);
    assert_eq!(br.port(1).drain(), frames);
    assert_eq!(br.port(3).drain(), frames);
    assert_eq!(br.port(4).drain(), frames);
    assert!(br.port(2).drain().is_empty());
}

#[test]
fn groups_select_and_all() {
    let mut br = Bridge::new(4);
    br.dp
        .set_group(Group {
            id: GroupId(1),
            kind: GroupKind::Select,
            buckets: vec![
                Bucket::new(1, vec![Action::Output(PortNo(2))]),
                Bucket::new(1, vec![Action::Output(PortNo(3))]),
            ],
            selection: Selection::Default,
        })
        .unwrap();
    br.dp
        .set_group(Group {
            id: GroupId(2),
            kind: GroupKind::All,
            buckets: vec![
                Bucket::new(0, vec![Action::Output(PortNo(3))]),
                Bucket::new(0, vec![Action::Output(PortNo(4))]),
            ],
            selection: Selection::Default,
        })
        .unwrap();
    br.add(
        0,
        10,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![Action::Group(GroupId(1))]),
    );
    br.add(
        0,
        10,
        &[exact(Field::InPort, 4)],
        Instructions::actions(vec![Action::Group(GroupId(2))]),
    );
    let frames: Vec<_> = (0..200).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    let (a, b) = (br.port(2).drain(), br.port(3).drain());
    assert_eq!(
        a.len() + b.len(),
        200,
        "select sends each packet to exactly one bucket"
    );
    assert!(
        a.len() > 40 && b.len() > 40,
        "both buckets used: {} / {}",
        a.len(),
        b.len()
    );
    // Same flow, same bucket.
    br.send(1, &[udp(1, 2, 7), udp(1, 2, 7), udp(1, 2, 7)]);
    let (a, b) = (br.port(2).drain().len(), br.port(3).drain().len());
    assert!(a == 3 || b == 3);
    br.send(4, &frames[..5]);
    assert_eq!(br.port(3).drain().len(), 5);
    // Missing group: counted.
    br.add(
        0,
        10,
        &[exact(Field::InPort, 2)],
        Instructions::actions(vec![Action::Group(GroupId(9))]),
    );
    br.send(2, &frames[..3]);
    assert_eq!(br.drops(DropReason::NoSuchGroup), 3);
}

#[test]
fn controller_action_sends_packet_in() {
    let mut br = Bridge::new(2);
    br.add(
        0,
        10,
        &[],
        Instructions::actions(vec![Action::Controller { max_len: 20 }]),
    );
    br.send(1, &[udp(1, 2, 3)]);
    let pi = br.packet_in.try_recv().unwrap();
    assert_eq!(pi.in_port, PortNo(1));
    assert_eq!(pi.data, udp(1, 2, 3)[..20].to_vec());
    assert_eq!(pi.total_len, udp(1, 2, 3).len());
    assert_eq!(pi.key.get(Field::TpSrc), 3);
}

#[test]
fn flow_counters_and_idle_timeout() {
    let mut br = Bridge::new(2);
    let mut s = spec(0, 10, &[exact(Field::InPort, 1)], out(&[2]));
    s.idle_timeout_s = 1;
    br.dp
        .flow_mods(&[FlowMod::Add {
            spec: s,
            check_overlap: false,
        }])
        .unwrap();
    let frames: Vec<_> = (0..10).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    let snap = br.dp.snapshot();
    let rule = snap
        .pipeline
        .rules(Some(TableId(0)))
        .next()
        .unwrap()
        .clone();
    let st = rule.stats.read();
    assert_eq!(st.packets, 10);
    assert_eq!(st.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert!(br.dp.expire_flows().is_none(), "not idle yet");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(br.dp.expire_flows().is_some());
    assert_eq!(br.dp.snapshot().pipeline.rule_count(), 0);
    br.send(1, &frames[..1]);
    assert_eq!(
        br.drops(DropReason::TableMiss),
        1,
        "the cached megaflow died with the flow"
    );
}

mod cache_consistency {
    use super::*;
    use datapath::pipeline::{DpAction, translate};
    use proptest::prelude::*;

    fn frame(dst: u8, dport: u16, id: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, dst, dst], 64)
            .udp(id, dport)
            .write(&mut v, &[0u8; 8])
            .unwrap();
        v
    }

    fn arb_rule() -> impl Strategy<Value = (Vec<(Field, u128, u128)>, u16, Option<u32>)> {
        let field = prop_oneof![
            Just((Field::EthType, 0x0800, 0xffff)),
            (0u128..4, 16u32..=32).prop_map(|(v, p)| (
                Field::Ipv4Dst,
                0x0a00_0000 | v << 8 | v,
                (u32::MAX << (32 - p)) as u128
            )),
            (0u128..3).prop_map(|v| (Field::TpDst, v, 0xffff)),
            Just((Field::IpProto, 17, 0xff)),
        ];
        (
            proptest::collection::vec(field, 0..3),
            0u16..4,
            proptest::option::of(2u32..5),
        )
    }

    fn expected(dp: &Datapath, f: &[u8]) -> Option<u32> {
        let mut k = FlowKey::ZERO;
        extract(f, PortNo(1), &mut k).unwrap();
        let (t, _) = translate(&dp.snapshot().pipeline, &k);
        t.ops.iter().find_map(|op| match op {
            DpAction::Output(p) => Some(p.0),
            _ => None,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the caches hold, every packet leaves where a fresh walk of the tables says,
        /// through random flow additions and deletions between rounds.
        #[test]
        fn cached_result_equals_table_lookup(rounds in proptest::collection::vec((arb_rule(), any::<bool>()), 1..12)) {
            let mut br = Bridge::new(4);
            let packets: Vec<Vec<u8>> = (0..48u16).map(|i| frame((i % 4) as u8, i % 3, i)).collect();
            let mut installed: Vec<FlowSpec> = Vec::new();
            for ((fields, prio, out), delete) in rounds {
                if delete && !installed.is_empty() {
                    let s = installed.remove(0);
                    br.dp.flow_mods(&[FlowMod::Delete(Selector::exact(&s))]).unwrap();
                } else {
                    let ins = match out { Some(p) => super::out(&[p]), None => Instructions::default() };
                    let s = spec(0, prio, &fields, ins);
                    br.dp.flow_mods(&[FlowMod::Add { spec: s.clone(), check_overlap: false }]).unwrap();
                    installed.push(s);
                }
                // Twice per round: once filling the caches, once served from them.
                for _ in 0..2 {
                    br.send(1, &packets);
                    let mut got = vec![None; packets.len()];
                    for port in 2..5u32 {
                        for f in br.port(port).drain() {
                            let id = u16::from_be_bytes([f[34], f[35]]) as usize;
                            prop_assert!(got[id].is_none(), "packet {} sent twice", id);
                            got[id] = Some(port);
                        }
                    }
                    for (i, f) in packets.iter().enumerate() {
                        prop_assert_eq!(got[i], expected(&br.dp, f), "packet {}", i);
                    }
                }
            }
        }
    }
}

/// Every drop counter can be made to count (a counter nothing increments is a bug): each
/// reason is provoked through the pipeline and its counter checked. `NoHeadroom` cannot
/// happen with ports that leave headroom; `actions::rewrite`'s unit tests provoke it.
#[test]
fn every_drop_reason_is_reachable() {
    let config = DatapathConfig {
        slow_path_budget: 1,
        packet_in_queue: 1,
        pool_buffers: 0,
        ..DatapathConfig::default()
    };
    let mut br = Bridge::with_config(
        &[None, None, None, Some(VlanMode::Access(VlanId(5)))],
        config,
    );
    let good = udp(1, 2, 1);
    // Port 1: a classifier that sends by UDP source port to the interesting actions.
    let by_sport = |sport: u16, actions: Vec<Action>| {
        br.add(
            0,
            100,
            &[
                exact(Field::InPort, 1),
                exact(Field::EthType, 0x0800),
                exact(Field::IpProto, 17),
                exact(Field::TpSrc, sport as u128),
            ],
            Instructions::actions(actions),
        );
    };
    by_sport(10, vec![]);
    by_sport(11, vec![Action::DecTtl, Action::Output(PortNo(2))]);
    by_sport(13, vec![Action::Group(GroupId(77))]);
    by_sport(14, vec![Action::Output(PortNo(99))]);
    by_sport(15, vec![Action::Controller { max_len: 64 }]);
    // A flow that resubmits to its own table, forever.
    by_sport(
        17,
        vec![Action::Resubmit {
            in_port: None,
            table: None,
        }],
    );
    by_sport(
        16,
        vec![Action::Output(PortNo(2)), Action::Output(PortNo(3))],
    );
    br.add(
        0,
        100,
        &[
            exact(Field::InPort, 1),
            exact(Field::TpSrc, 12),
            exact(Field::EthType, 0x0800),
            exact(Field::IpProto, 17),
        ],
        Instructions {
            meter: Some(datapath::types::MeterId(9)),
            ..out(&[2])
        },
    );
    br.add(
        0,
        90,
        &[
            exact(Field::InPort, 1),
            exact(Field::EthType, 0x0800),
            exact(Field::IpProto, 17),
            exact(Field::TpSrc, 20),
        ],
        Instructions {
            meter: Some(datapath::types::MeterId(1)),
            ..out(&[2])
        },
    );
    br.dp
        .set_meter(
            datapath::meter::Meter::new(
                datapath::types::MeterId(1),
                datapath::meter::MeterUnit::Pktps,
                vec![datapath::meter::Band {
                    kind: datapath::meter::BandKind::Drop,
                    rate: 1,
                    burst: 1,
                }],
                br.dp.now_ns(),
            )
            .unwrap(),
        )
        .unwrap();
    // Port 2 sends through a 1 kbit/s shaper with a one-packet queue; port 3 is policed.
    br.add(
        0,
        90,
        &[
            exact(Field::InPort, 1),
            exact(Field::EthType, 0x0800),
            exact(Field::IpProto, 17),
            exact(Field::TpSrc, 21),
        ],
        out(&[2]),
    );
    let qos = datapath::qos::EgressQos::new(
        datapath::qos::QosConfig {
            max_rate_kbps: 1,
            burst_kb: 1,
            queues: vec![datapath::qos::QueueConfig {
                limit: 1,
                ..datapath::qos::QueueConfig::new(0)
            }],
        },
        br.dp.now_ns(),
    )
    .unwrap();
    let policer = datapath::qos::Policer::new(1, 1, br.dp.now_ns()).unwrap();
    br.dp
        .transaction(|t| {
            t.set_port_qos(PortNo(2), None, Some(Arc::new(qos)))?;
            t.set_port_qos(PortNo(3), Some(Arc::new(policer)), None)
        })
        .unwrap();
    // MPLS: each of tables 0..10 pops a label and goes on to the next table, each time
    // looking the packet up again (a recirculation), more often than the datapath follows.
    for table in 0..10u8 {
        br.add(
            table,
            100,
            &[exact(Field::InPort, 1), exact(Field::EthType, 0x8847)],
            Instructions {
                apply: vec![Action::PopMpls { ethertype: 0x8847 }].into(),
                goto_table: Some(TableId(table + 1)),
                ..Instructions::default()
            },
        );
    }
    // Ports 2..4: `normal`; port 1 has no miss flow.
    for port in 2..=4 {
        br.add(
            0,
            0,
            &[exact(Field::InPort, port)],
            Instructions::actions(vec![Action::Normal]),
        );
    }

    let mut cut_tag = good[..12].to_vec();
    cut_tag.extend_from_slice(&[0x81, 0x00, 0x00]);
    let mut frames = vec![vec![0u8; 10], cut_tag];
    let mut three_tags = udp_vlan(1, 2, 5);
    three_tags.splice(12..12, [0x81, 0x00, 0x00, 0x06, 0x81, 0x00, 0x00, 0x07]);
    frames.push(three_tags);
    let mut arp = good[..14].to_vec();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 10]);
    frames.push(arp);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x43;
    frames.push(bad_ihl);
    let mut bad_len = good.clone();
    bad_len[16..18].copy_from_slice(&2000u16.to_be_bytes());
    frames.push(bad_len);
    let mut v6 = good[..14].to_vec();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut short6 = v6.clone();
    short6.extend_from_slice(&[0x60; 20]);
    frames.push(short6);
    // IPv6 with a hop-by-hop header that claims more than the payload holds.
    let mut ext6 = v6.clone();
    ext6.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 0, 64]);
    ext6.extend_from_slice(&[0; 32]);
    ext6.extend_from_slice(&[17, 4, 0, 0, 0, 0, 0, 0]);
    frames.push(ext6);
    // UDP header cut short inside a consistent IPv4 datagram.
    let mut short_udp = good[..38].to_vec();
    short_udp[16..18].copy_from_slice(&24u16.to_be_bytes());
    frames.push(short_udp);
    let mut mpls = good[..12].to_vec();
    mpls.extend_from_slice(&[0x88, 0x47]);
    frames.push([mpls.as_slice(), &[0, 0]].concat()); // a cut label stack entry
    for _ in 0..12 {
        mpls.extend_from_slice(&[0, 0, 0, 64]);
    }
    frames.push(mpls); // twelve labels, popped one table after another
    frames.push(udp(1, 2, 999)); // table miss (no flow for port 1 sport 999)
    frames.push(udp(1, 2, 10)); // flow with no actions
    let mut ttl1 = udp(1, 2, 11);
    ttl1[22] = 1;
    frames.push(ttl1);
    frames.push(udp(1, 2, 12)); // missing meter
    frames.push(udp(1, 2, 13)); // missing group
    frames.push(udp(1, 2, 14)); // missing port
    for _ in 0..3 {
        frames.push(udp(1, 2, 15)); // the packet-in queue holds one
    }
    frames.push(udp(1, 2, 16)); // two outputs need a copy: the pool has no buffers
    frames.push(udp(1, 2, 17)); // resubmit loop
    for _ in 0..4 {
        frames.push(udp(1, 2, 20)); // a 1 pkt/s meter
    }
    for f in &frames {
        br.send(1, std::slice::from_ref(f));
    }
    br.send(1, &[udp(1, 2, 21), udp(1, 2, 21), udp(1, 2, 21)]);
    br.send(3, &[udp(9, 8, 1), udp(9, 8, 1), udp(9, 8, 1)]);
    // Two new flows in one burst with a slow-path budget of one.
    br.send(1, &[udp(1, 2, 30), udp(1, 2, 31)]);
    // `normal`: a tagged frame on an access port; then a destination learned on the ingress port.
    br.send(4, &[udp_vlan(7, 8, 5)]);
    br.send(2, &[udp(7, 8, 1)]);
    br.send(2, &[udp(8, 7, 1)]);

    // Copies past the bound: a bridge that allows none (this one's empty pool counts
    // every copy as drop_no_buffer first).
    let mut none = Bridge::with_config(
        &[None, None, None],
        DatapathConfig {
            max_copies_per_packet: 0,
            ..DatapathConfig::default()
        },
    );
    none.add(0, 1, &[], out(&[2, 3]));
    none.send(1, &[udp(1, 2, 1)]);

    let missing: Vec<_> = DropReason::ALL
        .iter()
        // A full recirculation queue takes connection tracking: tests/conntrack_pipeline.rs;
        // a mirror output port takes a mirror: tests/mirror.rs.
        .filter(|r| {
            **r != DropReason::NoHeadroom
                && **r != DropReason::RecircFull
                && **r != DropReason::MirrorPort
                && br.drops(**r) + none.drops(**r) == 0
        })
        .map(|r| r.name())
        .collect();
    assert!(missing.is_empty(), "never counted: {missing:?}");
}

/// Table counts: every packet is a lookup in each table it reaches, matched or not, whether
/// the slow path or a cache answered it (OVS attributes cached hits back to the tables).
#[test]
fn table_lookups_and_matches_are_counted_at_every_burst_size() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let mut br = Bridge::new(2);
        let goto = Instructions {
            goto_table: Some(TableId(1)),
            ..Instructions::default()
        };
        br.add(0, 10, &[exact(Field::InPort, 1)], goto);
        br.add(1, 10, &[exact(Field::TpSrc, 1)], out(&[2]));
        // Even packets match in table 1 (source port 1), odd ones miss there.
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, 1 + (i % 2) as u16)).collect();
        let hits = n.div_ceil(2) as u64;
        for round in 1..=2u64 {
            // The second round is answered by the caches.
            br.send(1, &frames);
            assert_eq!(br.port(2).drain().len() as u64, hits, "burst size {n}");
            let t = br.dp.table_counts();
            let n = n as u64;
            assert_eq!(
                (t[0].lookup, t[0].matched),
                (round * n, round * n),
                "table 0, {n}"
            );
            assert_eq!(
                (t[1].lookup, t[1].matched),
                (round * n, round * hits),
                "table 1, burst size {n}"
            );
            assert_eq!(t[2].lookup, 0);
            assert_eq!(br.drops(DropReason::TableMiss), round * (n - hits));
        }
        // Counts of a poll thread that stopped stay in the totals.
        let before = br.dp.table_counts();
        br.dp.remove_pmd(&br.counters);
        assert_eq!(br.dp.table_counts(), before);
    }
}

fn two_buckets(id: u32, kind: GroupKind) -> Group {
    Group {
        id: GroupId(id),
        kind,
        selection: Selection::Default,
        buckets: vec![
            Bucket::new(1, vec![Action::Output(PortNo(2))]),
            Bucket::new(1, vec![Action::Output(PortNo(3))]),
        ],
    }
}

/// Group counts: packets and bytes per group, and per bucket as each bucket saw them.
#[test]
fn group_packets_and_bytes_are_counted_at_every_burst_size() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let mut br = Bridge::new(4);
        br.dp.set_group(two_buckets(1, GroupKind::All)).unwrap();
        br.dp.set_group(two_buckets(2, GroupKind::Select)).unwrap();
        br.add(
            0,
            10,
            &[exact(Field::InPort, 1)],
            Instructions::actions(vec![Action::Group(GroupId(1))]),
        );
        br.add(
            0,
            10,
            &[exact(Field::InPort, 4)],
            Instructions::actions(vec![Action::Group(GroupId(2))]),
        );
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, i as u16)).collect();
        let len = frames[0].len() as u64;
        let n = n as u64;
        br.send(1, &frames);
        let all = br.dp.group_counts(GroupId(1)).unwrap();
        assert_eq!((all.packets, all.bytes), (n, n * len), "all group, {n}");
        assert_eq!(
            all.buckets,
            vec![(n, n * len); 2],
            "every bucket sees every packet"
        );
        assert_eq!(br.port(2).drain().len() as u64, n);
        assert_eq!(br.port(3).drain().len() as u64, n);
        br.send(4, &frames);
        let sel = br.dp.group_counts(GroupId(2)).unwrap();
        assert_eq!((sel.packets, sel.bytes), (n, n * len), "select group, {n}");
        let (b0, b1) = (sel.buckets[0], sel.buckets[1]);
        assert_eq!(b0.0 + b1.0, n, "each packet in one bucket");
        assert_eq!(b0.1 + b1.1, n * len);
        let out = (br.port(2).drain().len(), br.port(3).drain().len());
        assert_eq!(
            (out.0 as u64, out.1 as u64),
            (b0.0, b1.0),
            "buckets count what they sent"
        );
        assert_eq!(br.dp.group_counts(GroupId(9)), None);
    }
}

/// A modified group and a change in the number of poll threads keep the group's counts.
#[test]
fn group_counts_survive_a_modify_and_more_poll_threads() {
    let mut br = Bridge::new(4);
    br.dp.set_group(two_buckets(1, GroupKind::All)).unwrap();
    br.add(
        0,
        10,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![Action::Group(GroupId(1))]),
    );
    let frames: Vec<_> = (0..40).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    let before = br.dp.group_counts(GroupId(1)).unwrap();
    assert_eq!(before.packets, 40);
    let mut g = two_buckets(1, GroupKind::All);
    g.buckets[1].actions = vec![Action::Output(PortNo(4))].into();
    br.dp.set_group(g).unwrap();
    assert_eq!(br.dp.group_counts(GroupId(1)).unwrap(), before);
    br.dp
        .transaction(|t| -> Result<(), ()> {
            t.set_pmd_count(2);
            Ok(())
        })
        .unwrap();
    assert_eq!(br.dp.group_counts(GroupId(1)).unwrap(), before);
    // A group that loses a bucket keeps its totals and the remaining bucket's counts.
    let mut g = two_buckets(1, GroupKind::All);
    g.buckets.pop();
    br.dp.set_group(g).unwrap();
    let after = br.dp.group_counts(GroupId(1)).unwrap();
    assert_eq!((after.packets, after.buckets.len()), (40, 1));
    assert_eq!(after.buckets[0], before.buckets[0]);
    br.send(1, &frames[..5]);
    assert_eq!(br.dp.group_counts(GroupId(1)).unwrap().packets, 45);
}

/// A bridge of `ports` ports whose packets may make at most `copies` copies each.
fn bounded(ports: usize, copies: usize) -> Bridge {
    let config = DatapathConfig {
        max_copies_per_packet: copies,
        pool_buffers: 1 << 16,
        ..DatapathConfig::default()
    };
    Bridge::with_config(&vec![None; ports], config)
}

/// Frames waiting on ports `from..=to`.
fn drained(br: &Bridge, from: u32, to: u32) -> u64 {
    (from..=to).map(|p| br.port(p).drain().len() as u64).sum()
}

/// One packet makes at most `max_copies_per_packet` copies in a pass, however it fans out
/// (a flow's outputs, an `all` group's buckets, a flood), and still takes its last output:
/// n packets leave as n * (bound + 1) frames, and every copy not made is counted.
#[test]
fn copies_per_packet_are_bounded_and_what_is_shed_is_counted() {
    for n in [1usize, 2, 31, 32, 33, 257] {
        let frames: Vec<_> = (0..n).map(|i| udp(1, 2, 1000 + i as u16)).collect();
        let n = n as u64;
        // A flow with 100 outputs: 99 copies wanted, 8 made.
        let mut br = bounded(3, 8);
        br.add(0, 1, &[exact(Field::InPort, 1)], out(&[2; 100]));
        br.send(1, &frames);
        assert_eq!(drained(&br, 2, 2), n * 9, "burst of {n}");
        assert_eq!(br.drops(DropReason::CopiesOverLimit), n * 91);
        assert_eq!(br.drops(DropReason::NoBuffer), 0);

        // An `all` group of 100 buckets: a bucket's copy is the copy.
        let mut br = bounded(3, 8);
        br.dp
            .set_group(Group {
                id: GroupId(1),
                kind: GroupKind::All,
                selection: Selection::Default,
                buckets: vec![Bucket::new(1, vec![Action::Output(PortNo(2))]); 100],
            })
            .unwrap();
        br.add(
            0,
            1,
            &[exact(Field::InPort, 1)],
            Instructions::actions(vec![Action::Group(GroupId(1))]),
        );
        br.send(1, &frames);
        assert_eq!(drained(&br, 2, 2), n * 9, "group, burst of {n}");
        assert_eq!(br.drops(DropReason::CopiesOverLimit), n * 91);
        let g = br.dp.group_counts(GroupId(1)).unwrap();
        assert_eq!(g.packets, n);
        assert_eq!(g.buckets.iter().map(|b| b.0).sum::<u64>(), n * 9);

        // A flood over 11 other ports: 10 copies wanted, 4 made.
        let mut br = bounded(12, 4);
        br.add(
            0,
            1,
            &[exact(Field::InPort, 1)],
            Instructions::actions(vec![Action::Flood]),
        );
        br.send(1, &frames);
        assert_eq!(drained(&br, 2, 12), n * 5, "flood, burst of {n}");
        assert_eq!(br.drops(DropReason::CopiesOverLimit), n * 6);
    }
}

/// The default bound sheds nothing a flow can ask for on its own (4,096 actions), and a
/// bucket's own copies count against the packet it copies (a group of buckets that each
/// output twice).
#[test]
fn the_default_bound_and_copies_made_inside_buckets() {
    let mut br = bounded(3, datapath::pipeline::MAX_COPIES_PER_PACKET);
    br.add(0, 1, &[exact(Field::InPort, 1)], out(&[2; 4000]));
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(drained(&br, 2, 2), 4000);
    assert_eq!(br.drops(DropReason::CopiesOverLimit), 0);

    // 10 buckets, each to ports 2 and 3, and 7 copies: buckets 0 to 2 make two each (the
    // bucket's copy and one inside it); bucket 3's copy is the 7th, so the copy inside it
    // is shed and its last output takes it; buckets 4 to 8 are shed; bucket 9 takes the
    // packet itself, whose copy inside is shed too. 8 frames, 7 copies shed.
    let mut br = bounded(3, 7);
    br.dp
        .set_group(Group {
            id: GroupId(1),
            kind: GroupKind::All,
            selection: Selection::Default,
            buckets: vec![
                Bucket::new(
                    1,
                    vec![Action::Output(PortNo(2)), Action::Output(PortNo(3))]
                );
                10
            ],
        })
        .unwrap();
    br.add(
        0,
        1,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![Action::Group(GroupId(1))]),
    );
    br.send(1, &[udp(1, 2, 1)]);
    let (two, three) = (drained(&br, 2, 2), drained(&br, 3, 3));
    assert_eq!(two + three, 8, "to port 2: {two}, to port 3: {three}");
    assert_eq!(br.drops(DropReason::CopiesOverLimit), 1 + 5 + 1);
}

/// `resubmit` fan-out: 64 resubmits of a 1,000-output flow would compile to 64,000
/// outputs; the walk stops once past 8,192 operations (9 resubmits, 9,000 outputs) and
/// the packet's copies are bounded at run time.
#[test]
fn resubmit_fan_out_is_bounded_in_the_walk_and_in_copies() {
    let mut br = bounded(3, 1000);
    let resubmit = Action::Resubmit {
        in_port: None,
        table: Some(TableId(1)),
    };
    br.add(
        0,
        1,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![resubmit; 64]),
    );
    br.add(1, 1, &[], out(&[2; 1000]));
    let mut key = FlowKey::ZERO;
    extract(&udp(1, 2, 1), PortNo(1), &mut key).unwrap();
    let (t, _) = datapath::pipeline::translate(&br.dp.snapshot().pipeline, &key);
    assert_eq!(t.ops.len(), 9000);
    br.send(1, &[udp(1, 2, 1)]);
    assert_eq!(drained(&br, 2, 2), 1001);
    assert_eq!(br.drops(DropReason::CopiesOverLimit), 8999 - 1000);
}
