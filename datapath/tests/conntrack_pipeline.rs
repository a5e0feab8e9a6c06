//! Pipeline tests of connection tracking, on in-memory ports with real TCP frames in bursts
//! of 1, 32 and 33: a stateful firewall (`ct(table=1)` then `ct_state` matches, commit from
//! inside only), the recirculated packets' megaflow hits, `ct` without a table, source NAT
//! and its replies, and `ct_clear`.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use common::{BURSTS, Bridge};

use std::net::{IpAddr, Ipv4Addr};

use datapath::actions::Action;
use datapath::conntrack::{CtAction, CtState, Nat, NatRange};
use datapath::flow::{Field, Subfield};
use datapath::stats::DropReason;
use datapath::types::{PortNo, TableId};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

const TRK: u128 = CtState::TRK as u128;
const NEW: u128 = CtState::NEW as u128;
const EST: u128 = CtState::EST as u128;

fn ct(commit: bool, table: Option<u8>) -> Action {
    Action::Ct {
        ct: CtAction {
            commit,
            ..CtAction::default()
        },
        table: table.map(TableId),
        zone_src: None,
    }
}

/// A TCP segment from `src:sport` to `dst:dport` with flags `syn`/`ack`.
fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool, ack: Option<u32>) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, src[3]], [2, 0, 0, 0, 0, dst[3]])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 64000);
    let b = if syn { b.syn() } else { b };
    let b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    b.write(&mut v, &[]).unwrap();
    v
}

const IN: [u8; 4] = [10, 0, 0, 1];
const OUT: [u8; 4] = [10, 0, 1, 1];

/// The stateful firewall of the issue: port 1 inside, port 2 outside.
fn firewall(br: &Bridge) {
    br.add_masked_actions(
        0,
        100,
        &[(Field::EthType, 0x0800, 0xffff), (Field::CtState, 0, TRK)],
        vec![ct(false, Some(1))],
    );
    br.add_masked_actions(
        1,
        100,
        &[
            (Field::CtState, TRK | NEW, TRK | NEW),
            (Field::InPort, 1, 0xffff_ffff),
        ],
        vec![ct(true, None), Action::Output(PortNo(2))],
    );
    br.add_masked_actions(
        1,
        100,
        &[
            (Field::CtState, TRK | EST, TRK | EST),
            (Field::InPort, 1, 0xffff_ffff),
        ],
        vec![Action::Output(PortNo(2))],
    );
    br.add_masked_actions(
        1,
        100,
        &[
            (Field::CtState, TRK | EST, TRK | EST),
            (Field::InPort, 2, 0xffff_ffff),
        ],
        vec![Action::Output(PortNo(1))],
    );
}

#[test]
fn a_stateful_firewall_lets_inside_connect_and_drops_new_connections_from_outside() {
    let mut br = Bridge::new(2);
    firewall(&br);
    let mut base = 2000;
    for n in BURSTS {
        let syns: Vec<_> = (0..n as u16)
            .map(|i| tcp(IN, OUT, base + i, 80, true, None))
            .collect();
        br.send(1, &syns);
        assert_eq!(br.out(2), syns, "SYNs from inside pass, burst of {n}");
        let synacks: Vec<_> = (0..n as u16)
            .map(|i| tcp(OUT, IN, 80, base + i, true, Some(1001)))
            .collect();
        br.send(2, &synacks);
        assert_eq!(br.out(1), synacks, "the answers come back, burst of {n}");
        let acks: Vec<_> = (0..n as u16)
            .map(|i| tcp(IN, OUT, base + i, 80, false, Some(1001)))
            .collect();
        br.send(1, &acks);
        assert_eq!(br.out(2), acks, "established, burst of {n}");
        // A new connection from outside is dropped.
        let attack: Vec<_> = (0..n as u16)
            .map(|i| tcp(OUT, IN, 5000 + i, 22, true, None))
            .collect();
        let dropped = br.counters.read().drops_for(DropReason::TableMiss);
        br.send(2, &attack);
        assert!(
            br.out(1).is_empty(),
            "new from outside dropped, burst of {n}"
        );
        assert_eq!(
            br.counters.read().drops_for(DropReason::TableMiss) - dropped,
            n as u64
        );
        base += 100;
    }
    let ct = br.dp.conntrack();
    assert_eq!(
        ct.len(),
        1 + 32 + 33,
        "one connection per inside SYN; none from outside"
    );
    // Established traffic hits the caches: after the first packets of a connection, its
    // packets take no slow path in either lookup.
    let acks: Vec<_> = (0..32u16)
        .map(|i| tcp(IN, OUT, 2100 + i, 80, false, Some(1001)))
        .collect();
    br.send(1, &acks);
    let before = br.counters.read();
    br.send(1, &acks);
    assert_eq!(br.out(2).len(), 64);
    let d = br.counters.read().since(&before);
    assert_eq!(d.slow_path, 0, "{d:?}");
}

#[test]
fn source_nat_rewrites_out_and_back() {
    let mut br = Bridge::new(2);
    let nat = NatRange::addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
    br.add_masked_actions(
        0,
        10,
        &[
            (Field::EthType, 0x0800, 0xffff),
            (Field::InPort, 1, 0xffff_ffff),
        ],
        vec![
            Action::Ct {
                ct: CtAction {
                    commit: true,
                    nat: Some(Nat::Src(nat)),
                    ..CtAction::default()
                },
                table: None,
                zone_src: None,
            },
            Action::Output(PortNo(2)),
        ],
    );
    br.add_masked_actions(
        0,
        10,
        &[
            (Field::EthType, 0x0800, 0xffff),
            (Field::InPort, 2, 0xffff_ffff),
        ],
        vec![Action::Ct {
            ct: CtAction {
                nat: Some(Nat::Apply),
                ..CtAction::default()
            },
            table: Some(TableId(1)),
            zone_src: None,
        }],
    );
    br.add_masked_actions(
        1,
        10,
        &[(Field::CtState, TRK | EST, TRK | EST)],
        vec![Action::CtClear, Action::Output(PortNo(1))],
    );
    for n in BURSTS {
        let syns: Vec<_> = (0..n as u16)
            .map(|i| tcp(IN, OUT, 3000 + i, 80, true, None))
            .collect();
        br.send(1, &syns);
        let out = br.out(2);
        assert_eq!(out.len(), n);
        let mut ports = Vec::new();
        for f in &out {
            let p = SlicedPacket::from_ethernet(f).unwrap();
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!()
            };
            assert_eq!(ip.header().source(), [192, 0, 2, 9], "source translated");
            let Some(TransportSlice::Tcp(t)) = p.transport else {
                panic!()
            };
            ports.push(t.source_port());
        }
        let replies: Vec<_> = ports
            .iter()
            .map(|&p| tcp(OUT, [192, 0, 2, 9], 80, p, true, Some(1001)))
            .collect();
        br.send(2, &replies);
        let back = br.out(1);
        assert_eq!(back.len(), n, "replies come back, burst of {n}");
        for (i, f) in back.iter().enumerate() {
            let p = SlicedPacket::from_ethernet(f).unwrap();
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!()
            };
            assert_eq!(ip.header().destination(), IN, "destination translated back");
            let Some(TransportSlice::Tcp(t)) = p.transport else {
                panic!()
            };
            assert_eq!(t.destination_port(), 3000 + i as u16);
        }
        br.dp.conntrack().flush(&Default::default());
    }
}

#[test]
fn a_full_recirculation_queue_drops_and_counts() {
    let mut br = Bridge::new(2);
    // Five forks of each packet of a burst of 32: 160 to recirculate, room for 128.
    let mut acts: Vec<_> = (0..5).map(|_| ct(false, Some(1))).collect();
    acts.push(Action::Output(PortNo(2)));
    br.add_masked_actions(
        0,
        10,
        &[(Field::InPort, 1, 0xffff_ffff), (Field::CtState, 0, TRK)],
        acts,
    );
    br.add_masked_actions(
        1,
        10,
        &[(Field::CtState, TRK, TRK)],
        vec![Action::Output(PortNo(2))],
    );
    let frames: Vec<_> = (0..32u16)
        .map(|i| tcp(IN, OUT, 6000 + i, 80, true, None))
        .collect();
    br.send(1, &frames);
    assert_eq!(
        br.out(2).len(),
        32 + 128,
        "the originals and what the queue held"
    );
    assert_eq!(br.counters.read().drops_for(DropReason::RecircFull), 32);
}

/// Registers are pipeline state a recirculated packet keeps: what table 0 wrote into reg15
/// (in the key's last register word) decides table 1's flow, and the recirculation
/// megaflow cache keys on it, so two connections that differ only in it never share one.
#[test]
fn registers_survive_recirculation_and_key_its_megaflows() {
    let mut br = Bridge::new(3);
    for (sport, reg) in [(1000u128, 2u128), (1001, 3)] {
        br.add_masked_actions(
            0,
            100,
            &[
                (Field::EthType, 0x0800, 0xffff),
                (Field::IpProto, 6, 0xff),
                (Field::TpSrc, sport, 0xffff),
                (Field::CtState, 0, TRK),
            ],
            vec![
                Action::SetField {
                    field: Field::Reg(15),
                    value: reg,
                },
                ct(false, Some(1)),
            ],
        );
        br.add_masked_actions(
            1,
            100,
            &[(Field::CtState, TRK, TRK), (Field::Reg(15), reg, u128::MAX)],
            vec![Action::Output(PortNo(reg as u32))],
        );
    }
    for burst in [1usize, 32, 33] {
        let a: Vec<_> = (0..burst)
            .map(|_| tcp(IN, OUT, 1000, 80, true, None))
            .collect();
        let b: Vec<_> = (0..burst)
            .map(|_| tcp(IN, OUT, 1001, 80, true, None))
            .collect();
        br.send(1, &a);
        br.send(1, &b);
        assert_eq!(br.out(2).len(), burst, "burst {burst}: reg15=2 to port 2");
        assert_eq!(br.out(3).len(), burst, "burst {burst}: reg15=3 to port 3");
    }
}

#[test]
fn a_zone_read_from_a_register_tracks_each_packet_in_its_own_zone() {
    let mut br = Bridge::new(3);
    // The source port picks reg4 (zone 7 or 9); ct(zone=reg4[0..15],table=1) tracks the
    // packet there and table 1 sends it on by ct_zone.
    for (sport, zone) in [(1000u128, 7u128), (1001, 9)] {
        br.add_masked_actions(
            0,
            100,
            &[
                (Field::EthType, 0x0800, 0xffff),
                (Field::IpProto, 6, 0xff),
                (Field::TpSrc, sport, 0xffff),
                (Field::CtState, 0, TRK),
            ],
            vec![
                Action::SetField {
                    field: Field::Reg(4),
                    value: 0x5_0000 | zone,
                },
                Action::Ct {
                    ct: CtAction::default(),
                    table: Some(TableId(1)),
                    zone_src: Some(Subfield::new(Field::Reg(4), 0, 16).unwrap()),
                },
            ],
        );
    }
    br.add_masked_actions(
        1,
        100,
        &[(Field::CtZone, 7, 0xffff)],
        vec![Action::Output(PortNo(2))],
    );
    br.add_masked_actions(
        1,
        100,
        &[(Field::CtZone, 9, 0xffff)],
        vec![Action::Output(PortNo(3))],
    );
    for burst in BURSTS {
        let a: Vec<_> = (0..burst)
            .map(|_| tcp(IN, OUT, 1000, 80, true, None))
            .collect();
        let b: Vec<_> = (0..burst)
            .map(|_| tcp(IN, OUT, 1001, 80, true, None))
            .collect();
        br.send(1, &a);
        br.send(1, &b);
        assert_eq!(br.out(2).len(), burst, "burst {burst}: zone 7 to port 2");
        assert_eq!(br.out(3).len(), burst, "burst {burst}: zone 9 to port 3");
    }
}
