//! The caches never change where a packet goes: property tests against a fresh walk of
//! the tables.

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
