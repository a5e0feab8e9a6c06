//! Forwarding at every burst size: flows, misses, malformed frames, NORMAL and its VLAN
//! modes, and flow changes taking effect on the next burst.

use super::*;

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
