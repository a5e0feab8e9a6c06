//! OpenFlow port configuration (PORT_MOD's bits) on in-memory ports, in bursts of 1, 32
//! and 33: a port taken down neither receives nor sends, `no_recv` drops what arrives,
//! `no_fwd` drops what is output to the port (by a single-output flow and by `flood`),
//! `no_packet_in` sends no packet-in for what the port receives; each counted by its own
//! drop reason, and clearing the bits restores the port.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;
use std::sync::Arc;

use common::{BURSTS, Bridge};

use datapath::actions::Action;
use datapath::flow::Field;
use datapath::l2::{VlanMode, VlanSet};
use datapath::pipeline::{Datapath, DatapathConfig, PacketIn, PortConfig};
use datapath::port::MemPort;
use datapath::stats::DropReason;
use datapath::types::{PortNo, VlanId};
use etherparse::PacketBuilder;

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

fn drops(br: &Bridge, r: DropReason) -> u64 {
    br.counters.read().drops[r as usize]
}

fn set(br: &Bridge, port: u32, bits: u32) {
    br.dp
        .set_port_config(PortNo(port), PortConfig(bits))
        .unwrap();
    assert_eq!(br.dp.port_config(PortNo(port)), Some(PortConfig(bits)));
}

/// Flows: 1 to 2, 2 to 1, 3 floods.
fn flows(br: &Bridge) {
    br.add_actions(0, 1, &[(Field::InPort, 1)], vec![Action::Output(PortNo(2))]);
    br.add_actions(0, 1, &[(Field::InPort, 2)], vec![Action::Output(PortNo(1))]);
    br.add_actions(0, 1, &[(Field::InPort, 3)], vec![Action::Flood]);
}

#[test]
fn no_recv_drops_what_the_port_receives_and_counts_it() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        flows(&br);
        set(&br, 1, PortConfig::NO_RECV);
        br.send(1, &frames(burst));
        assert!(br.out(2).is_empty(), "burst {burst}");
        assert_eq!(drops(&br, DropReason::PortNoRecv), burst as u64);
        // The port still sends.
        br.send(2, &frames(burst));
        assert_eq!(br.out(1).len(), burst);
        set(&br, 1, 0);
        br.send(1, &frames(burst));
        assert_eq!(br.out(2).len(), burst);
        assert_eq!(drops(&br, DropReason::PortNoRecv), burst as u64);
    }
}

#[test]
fn no_fwd_drops_what_is_output_to_the_port_and_counts_it() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        flows(&br);
        set(&br, 2, PortConfig::NO_FWD);
        br.send(1, &frames(burst));
        assert!(br.out(2).is_empty(), "burst {burst}");
        assert_eq!(drops(&br, DropReason::PortNoFwd), burst as u64);
        assert_eq!(drops(&br, DropReason::FlowDrop), 0, "counted once");
        // It still receives.
        br.send(2, &frames(burst));
        assert_eq!(br.out(1).len(), burst);
        // A flood leaves it out and reaches the others.
        br.send(3, &frames(burst));
        assert_eq!(br.out(1).len(), burst);
        assert!(br.out(2).is_empty());
        assert_eq!(drops(&br, DropReason::PortNoFwd), 2 * burst as u64);
        set(&br, 2, 0);
        br.send(1, &frames(burst));
        assert_eq!(br.out(2), frames(burst));
    }
}

#[test]
fn port_down_neither_receives_nor_sends() {
    for burst in BURSTS {
        let mut br = Bridge::new(3);
        flows(&br);
        set(&br, 2, PortConfig::PORT_DOWN);
        br.send(1, &frames(burst));
        br.send(2, &frames(burst));
        assert!(br.out(1).is_empty(), "burst {burst}");
        assert!(br.out(2).is_empty());
        assert_eq!(drops(&br, DropReason::PortDown), 2 * burst as u64);
        set(&br, 2, 0);
        br.send(2, &frames(burst));
        assert_eq!(br.out(1).len(), burst);
    }
}

/// A bridge of three ports whose packet-ins reach the returned queue.
fn with_packet_ins() -> (Bridge, std::sync::mpsc::Receiver<PacketIn>) {
    let (dp, rx) = Datapath::new(DatapathConfig {
        packet_in_queue: 256,
        ..DatapathConfig::default()
    });
    let mut ports = Vec::new();
    for i in 1..=3 {
        let p = Arc::new(MemPort::new(format!("p{i}"), 4096));
        let mode = VlanMode::Trunk {
            allowed: VlanSet::all(),
            native: Some(VlanId(0)),
        };
        dp.add_port(PortNo(i), p.clone(), mode).unwrap();
        ports.push(p);
    }
    let pmd = dp.new_pmd();
    let counters = pmd.counters();
    let br = Bridge {
        dp,
        pmd,
        ports,
        counters,
    };
    (br, rx)
}

#[test]
fn no_packet_in_sends_none_for_what_the_port_receives() {
    for burst in BURSTS {
        let (mut br, rx) = with_packet_ins();
        br.add_actions(0, 0, &[], vec![Action::Controller { max_len: 128 }]);
        set(&br, 1, PortConfig::NO_PACKET_IN);
        br.send(1, &frames(burst));
        assert_eq!(rx.try_iter().count(), 0, "burst {burst}");
        assert_eq!(drops(&br, DropReason::PortNoPacketIn), burst as u64);
        assert_eq!(drops(&br, DropReason::FlowDrop), 0, "counted once");
        // Other ports still send theirs.
        br.send(2, &frames(burst));
        let pins: Vec<PacketIn> = rx.try_iter().collect();
        assert_eq!(pins.len(), burst);
        assert!(pins.iter().all(|p| p.in_port == PortNo(2)));
        set(&br, 1, 0);
        br.send(1, &frames(burst));
        assert_eq!(rx.try_iter().count(), burst);
        assert_eq!(drops(&br, DropReason::PortNoPacketIn), burst as u64);
    }
}

#[test]
fn an_unknown_port_is_refused() {
    let br = Bridge::new(1);
    assert!(br.dp.set_port_config(PortNo(9), PortConfig(1)).is_err());
    assert_eq!(br.dp.port_config(PortNo(9)), None);
}
