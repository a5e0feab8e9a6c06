//! Pipeline tests, on in-memory ports with real frames in bursts of 1, 32 and 33, for what
//! the Open vSwitch flow language added to the datapath: MPLS (push, set, decrement, pop,
//! and the lookup after a pop), OpenFlow 1.0's VLAN rewrites, enqueue and pop_queue, and
//! matches and rewrites on the IPv6 flow label, neighbour discovery and SCTP ports.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use common::{BURSTS, Bridge};

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask, extract};
use datapath::packet::PacketBuf;
use datapath::stats::DropReason;
use datapath::types::{PortNo, TableId};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

fn udp(n: u8, ttl: u8, tos: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, n], [2, 0, 0, 0, 0, 0xee])
        .ipv4([10, 0, 0, n], [10, 0, 1, 1], ttl)
        .udp(1000 + n as u16, 80)
        .write(&mut v, &[n; 18])
        .unwrap();
    v[15] = tos;
    // The TOS byte changed: fix the IPv4 header checksum.
    v[24..26].fill(0);
    let sum = datapath::packet::checksum::data(&v[14..34]);
    v[24..26].copy_from_slice(&sum.to_be_bytes());
    v
}

fn burst(n: usize, ttl: u8, tos: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| udp(i as u8, ttl, tos)).collect()
}

/// `frame` with an 802.1Q tag (TCI `tci`) after the MAC addresses.
fn tagged(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut v = frame[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&tci.to_be_bytes());
    v.extend_from_slice(&frame[12..]);
    v
}

/// `frame` with MPLS label stack entry `lse` (ethertype 0x8847) before its IP header.
fn labelled(frame: &[u8], lse: u32) -> Vec<u8> {
    let mut v = frame[..12].to_vec();
    v.extend_from_slice(&[0x88, 0x47]);
    v.extend_from_slice(&lse.to_be_bytes());
    v.extend_from_slice(&frame[14..]);
    v
}

fn lse(label: u32, tc: u32, bos: u32, ttl: u32) -> u32 {
    label << 12 | tc << 9 | bos << 8 | ttl
}

#[test]
fn mpls_push_set_then_pop_give_the_packet_back() {
    let mut br = Bridge::new(3);
    // Port 1: label (TTL and TC from the IP header, then rewritten); port 2: pop.
    br.add(
        0,
        10,
        &[(Field::InPort, 1)],
        Instructions::actions(vec![
            Action::PushMpls { ethertype: 0x8847 },
            Action::SetField {
                field: Field::MplsLabel,
                value: 789,
            },
            Action::SetField {
                field: Field::MplsTc,
                value: 4,
            },
            Action::Output(PortNo(2)),
        ]),
    );
    br.add(
        0,
        10,
        &[
            (Field::InPort, 2),
            (Field::EthType, 0x8847),
            (Field::MplsLabel, 789),
        ],
        Instructions::actions(vec![
            Action::DecMplsTtl,
            Action::PopMpls { ethertype: 0x0800 },
            Action::Output(PortNo(3)),
        ]),
    );
    for n in BURSTS {
        // DSCP 46 (EF): TC is its low 3 bits, 6, until set_field makes it 4.
        let frames = burst(n, 9, 46 << 2);
        br.send(1, &frames);
        let labelled = br.out(2);
        assert_eq!(labelled.len(), n);
        for (f, orig) in labelled.iter().zip(&frames) {
            assert_eq!(f.len(), orig.len() + 4);
            assert_eq!(&f[12..14], &[0x88, 0x47]);
            assert_eq!(&f[14..18], &lse(789, 4, 1, 9).to_be_bytes());
            assert_eq!(&f[18..], &orig[14..], "the IP packet follows, untouched");
        }
        br.send(2, &labelled);
        assert_eq!(br.out(3), frames, "burst of {n}");
    }
    // The push took TC from the DSCP before set_field changed it.
    let mut k = FlowKey::ZERO;
    let mut b = PacketBuf::from_frame(&udp(1, 9, 46 << 2)).unwrap();
    let mut lay = extract(b.data(), PortNo(1), &mut k).unwrap();
    datapath::actions::mpls::push_mpls(&mut b, &mut k, &mut lay, 0x8847).unwrap();
    assert_eq!(k.get(Field::MplsTc), 6);
}

#[test]
fn mpls_matches_ttl_and_bottom_of_stack() {
    let mut br = Bridge::new(4);
    for (label, port) in [(5, 2), (6, 3)] {
        br.add(
            0,
            10,
            &[(Field::EthType, 0x8847), (Field::MplsLabel, label)],
            Instructions::actions(vec![Action::DecMplsTtl, Action::Output(PortNo(port))]),
        );
    }
    // Not the bottom of the stack: goes nowhere matched above.
    br.add(
        0,
        20,
        &[(Field::EthType, 0x8847), (Field::MplsBos, 0)],
        Instructions::actions(vec![Action::Output(PortNo(4))]),
    );
    for n in BURSTS {
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let label = if i % 2 == 0 { 5 } else { 6 };
                let ttl = if i % 3 == 0 { 1 } else { 40 };
                labelled(&udp(i as u8, 64, 0), lse(label, 0, 1, ttl))
            })
            .collect();
        let expired = (0..n).filter(|i| i % 3 == 0).count();
        let before = br.counters.drops_for(DropReason::TtlExceeded);
        br.send(1, &frames);
        let (to2, to3) = (br.out(2), br.out(3));
        assert_eq!(to2.len() + to3.len(), n - expired);
        assert_eq!(
            br.counters.drops_for(DropReason::TtlExceeded) - before,
            expired as u64
        );
        for f in to2.iter().chain(&to3) {
            assert_eq!(f[17], 39, "TTL decremented in the frame");
        }
        assert!(to2.iter().all(|f| f[14..17] == [0, 0, 0x51]));
        assert!(to3.iter().all(|f| f[14..17] == [0, 0, 0x61]));
        let inner: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| {
                let mut g = f.clone();
                g[16] &= !1;
                g
            })
            .collect();
        br.send(1, &inner);
        assert_eq!(br.out(4).len(), n);
    }
    // A label stack entry cut short is a counted drop.
    let mut cut = udp(1, 64, 0)[..14].to_vec();
    cut[12..14].copy_from_slice(&[0x88, 0x47]);
    cut.extend_from_slice(&[0, 0]);
    br.send(1, &[cut]);
    assert_eq!(br.counters.drops_for(DropReason::BadMpls), 1);
}

#[test]
fn a_later_table_sees_what_pop_mpls_uncovered() {
    let mut br = Bridge::new(5);
    br.add(
        0,
        10,
        &[(Field::EthType, 0x8847)],
        Instructions {
            apply: vec![Action::PopMpls { ethertype: 0x0800 }].into(),
            goto_table: Some(TableId(1)),
            ..Instructions::default()
        },
    );
    // Table 1 matches the UDP port under the label: odd source ports to 4, even to 5.
    for (bit, port) in [(1, 4), (0, 5)] {
        let mut key = FlowKey::ZERO;
        let mut mask = FlowMask::ZERO;
        key.set(Field::EthType, 0x0800);
        mask.set(Field::EthType, 0xffff);
        key.set(Field::TpSrc, bit);
        mask.set(Field::TpSrc, 1);
        br.dp
            .flow_mods(&[FlowMod::Add {
                spec: FlowSpec {
                    table: TableId(1),
                    priority: 20,
                    key,
                    mask,
                    cookie: 0,
                    idle_timeout_s: 0,
                    hard_timeout_s: 0,
                    send_flow_removed: false,
                    instructions: Instructions::actions(vec![Action::Output(PortNo(port))]),
                },
                check_overlap: false,
            }])
            .unwrap();
    }
    let mut total = 0;
    for n in BURSTS {
        let frames: Vec<Vec<u8>> = burst(n, 64, 0)
            .iter()
            .map(|f| labelled(f, lse(16, 0, 1, 64)))
            .collect();
        br.send(1, &frames);
        let (odd, even) = (br.out(4), br.out(5));
        assert_eq!((odd.len(), even.len()), (n / 2, n - n / 2), "burst of {n}");
        for f in odd.iter().chain(&even) {
            assert_eq!(&f[12..14], &[0x08, 0x00]);
            let sport = u16::from_be_bytes([f[34], f[35]]);
            assert_eq!(sport % 2 == 1, odd.contains(f));
        }
        total += n as u64;
    }
    assert_eq!(br.flow_packets(0), total);
    // Every packet was looked up again (a recirculation is not cached).
    assert!(br.counters.slow_path.get() >= total);
}

#[test]
fn openflow10_vlan_rewrites_tag_when_asked() {
    let mut br = Bridge::new(4);
    // Port 1: mod_vlan_vid:17 (push if untagged); port 2: set_vlan_pcp:5 (tagged only).
    br.add(
        0,
        10,
        &[(Field::InPort, 1)],
        Instructions::actions(vec![
            Action::SetVlan {
                value: 17,
                mask: 0x0fff,
                push: true,
            },
            Action::Output(PortNo(3)),
        ]),
    );
    br.add(
        0,
        10,
        &[(Field::InPort, 2)],
        Instructions {
            apply: vec![Action::SetVlan {
                value: 5 << 13,
                mask: 0xe000,
                push: false,
            }]
            .into(),
            goto_table: Some(TableId(1)),
            ..Instructions::default()
        },
    );
    // Table 1 sends PCP 5 to port 4, the rest to port 3.
    br.add(
        1,
        1,
        &[],
        Instructions::actions(vec![Action::Output(PortNo(3))]),
    );
    let mut key = FlowKey::ZERO;
    let mut mask = FlowMask::ZERO;
    key.set(Field::VlanTci, 0xb000);
    mask.set(Field::VlanTci, 0xf000);
    br.dp
        .flow_mods(&[FlowMod::Add {
            spec: FlowSpec {
                table: TableId(1),
                priority: 10,
                key,
                mask,
                cookie: 0,
                idle_timeout_s: 0,
                hard_timeout_s: 0,
                send_flow_removed: false,
                instructions: Instructions::actions(vec![Action::Output(PortNo(4))]),
            },
            check_overlap: false,
        }])
        .unwrap();
    for n in BURSTS {
        // Tagged (VID 5, PCP 3) and untagged frames mixed in one burst.
        let frames: Vec<Vec<u8>> = burst(n, 64, 0)
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i % 2 == 0 {
                    f.clone()
                } else {
                    tagged(f, 3 << 13 | 5)
                }
            })
            .collect();
        br.send(1, &frames);
        // Packets of one flow leave together: compare as sets.
        let mut out = br.out(3);
        let mut want: Vec<Vec<u8>> = frames
            .iter()
            .map(|orig| {
                // Untagged: a new tag with VID 17, PCP 0; tagged: VID 17, PCP kept.
                if orig[12..14] == [0x81, 0] {
                    let mut w = orig.clone();
                    w[14..16].copy_from_slice(&(3u16 << 13 | 17).to_be_bytes());
                    w
                } else {
                    tagged(orig, 17)
                }
            })
            .collect();
        out.sort();
        want.sort();
        assert_eq!(out, want, "burst of {n}");
        br.send(2, &frames);
        let (plain, pcp5) = (br.out(3), br.out(4));
        assert_eq!(
            (plain.len(), pcp5.len()),
            (n - n / 2, n / 2),
            "burst of {n}"
        );
        assert!(
            plain.iter().all(|f| frames.contains(f)),
            "untagged untouched"
        );
        assert!(
            pcp5.iter()
                .all(|f| f[14..16] == (5u16 << 13 | 5).to_be_bytes())
        );
    }
}

#[test]
fn enqueue_queues_one_output_and_pop_queue_restores() {
    let mut br = Bridge::new(4);
    br.add(
        0,
        10,
        &[(Field::InPort, 1)],
        Instructions::actions(vec![
            Action::SetQueue(7),
            Action::Enqueue {
                port: PortNo(2),
                queue: 5,
            },
            Action::Output(PortNo(3)),
            Action::PopQueue,
            Action::Enqueue {
                port: PortNo::IN_PORT,
                queue: 2,
            },
            Action::Output(PortNo(4)),
        ]),
    );
    for n in BURSTS {
        let frames = burst(n, 64, 0);
        br.send(1, &frames);
        for (port, queue) in [(2, 5), (3, 7), (1, 2), (4, 0)] {
            let out = br.out_bufs(port);
            assert_eq!(out.len(), n, "port {port}, burst of {n}");
            for (b, f) in out.iter().zip(&frames) {
                assert_eq!((b.queue(), b.data()), (queue, &f[..]), "port {port}");
            }
        }
    }
    // Enqueue to a port that does not exist drops, counted.
    br.add(
        0,
        20,
        &[(Field::InPort, 2)],
        Instructions::actions(vec![Action::Enqueue {
            port: PortNo(9),
            queue: 1,
        }]),
    );
    br.send(2, &burst(3, 64, 0));
    assert_eq!(br.counters.drops_for(DropReason::NoSuchPort), 3);
}

fn icmpv6_ok(frame: &[u8]) -> bool {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
        return false;
    };
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
        return false;
    };
    icmp.is_checksum_valid(ip.header().source(), ip.header().destination())
}

/// A neighbour solicitation for fe80::`target` from MAC 02:..:`sll`, flow label `label`.
fn solicit(target: u8, sll: u8, label: u32) -> Vec<u8> {
    let mut msg = vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, target];
    msg.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, sll]);
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, sll], [0x33, 0x33, 0xff, 0, 0, target])
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sll],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, target],
            255,
        )
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut v, &msg)
        .unwrap();
    v[15] |= (label >> 16) as u8;
    v[16..18].copy_from_slice(&(label as u16).to_be_bytes());
    v
}

#[test]
fn neighbour_discovery_and_flow_label() {
    let mut br = Bridge::new(4);
    let nd = [
        (Field::EthType, 0x86dd),
        (Field::IpProto, 58),
        (Field::TpSrc, 135),
    ];
    // Target fe80::7 to port 2 with the target and address rewritten; label 0x12345 to 3.
    br.add(
        0,
        10,
        &[nd.as_slice(), &[(Field::NdTarget, 0xfe80 << 112 | 7)]].concat(),
        Instructions::actions(vec![
            Action::SetField {
                field: Field::NdTarget,
                value: 0xfe80 << 112 | 8,
            },
            Action::SetField {
                field: Field::ArpSha,
                value: 0x0200_0000_00aa,
            },
            Action::Output(PortNo(2)),
        ]),
    );
    br.add(
        0,
        5,
        &[(Field::EthType, 0x86dd), (Field::Ipv6Label, 0x12345)],
        Instructions::actions(vec![
            Action::SetField {
                field: Field::Ipv6Label,
                value: 0x54321,
            },
            Action::Output(PortNo(3)),
        ]),
    );
    br.add(
        0,
        1,
        &[],
        Instructions::actions(vec![Action::Output(PortNo(4))]),
    );
    for n in BURSTS {
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|i| match i % 3 {
                0 => solicit(7, i as u8, 0),
                1 => solicit(9, i as u8, 0x12345),
                _ => solicit(9, i as u8, 0x1),
            })
            .collect();
        br.send(1, &frames);
        let (to2, to3, to4) = (br.out(2), br.out(3), br.out(4));
        assert_eq!(
            (to2.len(), to3.len(), to4.len()),
            (n.div_ceil(3), (n + 1) / 3, n / 3),
            "burst of {n}"
        );
        for f in &to2 {
            assert_eq!(f[14 + 40 + 8 + 15], 8, "target rewritten");
            assert_eq!(
                &f[14 + 40 + 24 + 2..14 + 40 + 24 + 8],
                &[2, 0, 0, 0, 0, 0xaa]
            );
            assert!(icmpv6_ok(f));
        }
        for f in &to3 {
            assert_eq!(&f[15..18], &[0x05, 0x43, 0x21], "flow label rewritten");
            assert!(icmpv6_ok(f));
        }
    }
}

#[test]
fn sctp_ports_match_and_rewrite() {
    let mut br = Bridge::new(3);
    br.add(
        0,
        10,
        &[
            (Field::EthType, 0x0800),
            (Field::IpProto, 132),
            (Field::TpDst, 9),
        ],
        Instructions::actions(vec![
            Action::SetField {
                field: Field::TpDst,
                value: 80,
            },
            Action::Output(PortNo(2)),
        ]),
    );
    br.add(
        0,
        1,
        &[],
        Instructions::actions(vec![Action::Output(PortNo(3))]),
    );
    // Built by scapy: IPv4 SCTP 5000 -> 9 with a DATA chunk "hello"; with port 80 its
    // checksum is 3f f5 5c a2.
    #[rustfmt::skip]
    const SCTP: [u8; 70] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x40, 0x84, 0x66, 0x3f, 0x0a, 0x00,
        0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x13, 0x88, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00,
        0xb9, 0xe7, 0x5f, 0x5f, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0x00, 0x00,
    ];
    for n in BURSTS {
        let mut other = SCTP;
        other[37] = 10;
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    SCTP.to_vec()
                } else {
                    other.to_vec()
                }
            })
            .collect();
        br.send(1, &frames);
        let (to2, to3) = (br.out(2), br.out(3));
        assert_eq!((to2.len(), to3.len()), (n - n / 2, n / 2));
        for f in &to2 {
            assert_eq!(&f[36..38], &[0, 80]);
            assert_eq!(&f[42..46], &[0x3f, 0xf5, 0x5c, 0xa2]);
        }
    }
}
