//! Pipeline tests for `controller(...)` with Open vSwitch's arguments (the reason the
//! packet-in gives, the controller connection id, the flow's userdata), on in-memory ports
//! with real frames in bursts of 1, 32 and 33: every packet-in carries what its flow said,
//! through resubmit and clone, and a group bucket's or the action set's controller output
//! carries no userdata.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use datapath::actions::{Action, Instructions, NO_USERDATA, PacketInReason};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::pipeline::{Datapath, DatapathConfig, PacketIn, Pmd};
use datapath::port::MemPort;
use datapath::types::{PortNo, TableId, VlanId};
use etherparse::PacketBuilder;

const BURSTS: [usize; 3] = [1, 32, 33];

/// A datapath with ports 1..=n and the receiving end of its packet-in queue.
struct Bridge {
    dp: Datapath,
    pmd: Pmd,
    ports: Vec<Arc<MemPort>>,
    packet_in: Receiver<PacketIn>,
}

impl Bridge {
    fn new(n: u32) -> Bridge {
        let (dp, packet_in) = Datapath::new(DatapathConfig {
            packet_in_queue: 256,
            ..DatapathConfig::default()
        });
        let mut ports = Vec::new();
        for i in 1..=n {
            let p = Arc::new(MemPort::new(format!("p{i}"), 4096));
            let mode = VlanMode::Trunk {
                allowed: VlanSet::all(),
                native: Some(VlanId(0)),
            };
            dp.add_port(PortNo(i), p.clone(), mode).unwrap();
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
            key,
            mask,
            cookie: 0x77,
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

    fn send(&mut self, frames: &[Vec<u8>]) {
        assert_eq!(self.ports[0].inject(frames), frames.len());
        self.pmd.poll_until_idle();
    }

    fn packet_ins(&self) -> Vec<PacketIn> {
        self.packet_in.try_iter().collect()
    }
}

fn udp(n: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, n], [2, 0, 0, 0, 0, 0xee])
        .ipv4([10, 0, 0, n], [10, 0, 1, 1], 64)
        .udp(1000, 80)
        .write(&mut v, &[n; 18])
        .unwrap();
    v
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| udp(i as u8 + 1)).collect()
}

fn ctl(max_len: u16, reason: Option<PacketInReason>, id: u16, userdata: u16) -> Action {
    Action::ControllerWith {
        max_len,
        reason,
        id,
        userdata,
    }
}

fn with_userdata(apply: Vec<Action>, userdata: &[&[u8]]) -> Instructions {
    Instructions {
        apply: apply.into(),
        userdata: userdata.iter().map(|d| Arc::from(*d)).collect(),
        ..Instructions::default()
    }
}

#[test]
fn every_packet_in_carries_the_reason_id_and_userdata_its_flow_named() {
    for burst in BURSTS {
        let mut br = Bridge::new(2);
        br.add(
            0,
            10,
            &[],
            with_userdata(
                vec![
                    ctl(20, Some(PacketInReason::InvalidTtl), 7, 0),
                    ctl(u16::MAX, None, 0, 1),
                    ctl(u16::MAX, Some(PacketInReason::ActionSet), 9, NO_USERDATA),
                ],
                &[&[1, 2, 3, 4, 5], &[0xab]],
            ),
        );
        br.send(&frames(burst));
        let pis = br.packet_ins();
        assert_eq!(pis.len(), 3 * burst, "burst {burst}");
        let first: Vec<_> = pis.iter().filter(|p| p.controller_id == 7).collect();
        assert_eq!(first.len(), burst);
        for p in &first {
            assert_eq!(p.reason, PacketInReason::InvalidTtl);
            assert_eq!(p.userdata.as_deref(), Some(&[1u8, 2, 3, 4, 5][..]));
            assert_eq!(p.data.len(), 20);
            assert_eq!(p.cookie, 0x77);
        }
        let second: Vec<_> = pis
            .iter()
            .filter(|p| p.userdata.as_deref() == Some(&[0xab][..]))
            .collect();
        assert_eq!(second.len(), burst);
        assert!(second.iter().all(|p| p.controller_id == 0
            && p.reason == PacketInReason::Action
            && p.data.len() == p.total_len));
        let third: Vec<_> = pis.iter().filter(|p| p.controller_id == 9).collect();
        assert_eq!(third.len(), burst);
        assert!(
            third
                .iter()
                .all(|p| p.userdata.is_none() && p.reason == PacketInReason::ActionSet)
        );
    }
}

#[test]
fn a_resubmitted_flow_sends_its_own_userdata_and_the_resubmitting_flow_its_own() {
    for burst in BURSTS {
        let mut br = Bridge::new(2);
        br.add(
            0,
            10,
            &[],
            with_userdata(
                vec![
                    Action::Resubmit {
                        in_port: None,
                        table: Some(TableId(1)),
                    },
                    ctl(64, None, 0, 0),
                ],
                &[&[0x00, 0x01]],
            ),
        );
        br.add(
            1,
            10,
            &[],
            with_userdata(
                vec![Action::Clone { len: 1 }, ctl(64, None, 0, 0)],
                &[&[0x10]],
            ),
        );
        br.send(&frames(burst));
        let pis = br.packet_ins();
        assert_eq!(pis.len(), 2 * burst, "burst {burst}");
        let inner = pis
            .iter()
            .filter(|p| p.userdata.as_deref() == Some(&[0x10][..]))
            .count();
        let outer = pis
            .iter()
            .filter(|p| p.userdata.as_deref() == Some(&[0x00, 0x01][..]))
            .count();
        assert_eq!((inner, outer), (burst, burst));
    }
}

#[test]
fn the_table_miss_flow_says_no_match_unless_it_names_a_reason() {
    let mut br = Bridge::new(2);
    br.add(
        0,
        0,
        &[],
        Instructions::actions(vec![ctl(64, None, 0, NO_USERDATA)]),
    );
    br.add(
        0,
        5,
        &[(Field::Ipv4Src, 0x0a00_0001)],
        Instructions::actions(vec![ctl(64, Some(PacketInReason::NoMatch), 0, NO_USERDATA)]),
    );
    // An index with no userdata behind it sends none (the daemon never builds one).
    br.add(
        0,
        6,
        &[(Field::Ipv4Src, 0x0a00_0002)],
        Instructions::actions(vec![ctl(64, Some(PacketInReason::PacketOut), 3, 0)]),
    );
    br.send(&[udp(3)]);
    br.send(&[udp(1)]);
    br.send(&[udp(2)]);
    let pis = br.packet_ins();
    assert_eq!(pis.len(), 3);
    assert_eq!(pis[0].reason, PacketInReason::NoMatch);
    assert_eq!(pis[1].reason, PacketInReason::NoMatch);
    assert_eq!(pis[2].reason, PacketInReason::PacketOut);
    assert_eq!(pis[2].controller_id, 3);
    assert!(pis.iter().all(|p| p.userdata.is_none()));
}

#[test]
fn a_controller_output_in_the_action_set_gives_its_reason_and_id() {
    for burst in BURSTS {
        let mut br = Bridge::new(2);
        br.add(
            0,
            10,
            &[],
            Instructions {
                write_actions: vec![ctl(32, Some(PacketInReason::ActionSet), 4, NO_USERDATA)]
                    .into(),
                ..Instructions::default()
            },
        );
        br.send(&frames(burst));
        let pis = br.packet_ins();
        assert_eq!(pis.len(), burst, "burst {burst}");
        assert!(pis.iter().all(|p| p.reason == PacketInReason::ActionSet
            && p.controller_id == 4
            && p.data.len() == 32
            && p.userdata.is_none()));
    }
}
