//! VXLAN through two datapaths on in-memory ports: an overlay bridge with a tunnel port, and
//! an underlay bridge holding the tunnel endpoint. Encapsulation after ARP resolution,
//! decapsulation with tunnel metadata matched by flows, split horizon for `normal`, and
//! drops by reason.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::net::Ipv4Addr;
use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::packet::PacketBuf;
use datapath::pipeline::{Datapath, DatapathConfig, Pmd};
use datapath::port::MemPort;
use datapath::tunnel::{
    Clock, EncapHeader, EndpointPort, Outer, TunnelConfig, TunnelDrop, TunnelEndpoint, TunnelPort,
};
use datapath::types::{PortNo, TableId, VlanId};

const EP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 1];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 2];
const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);

fn trunk() -> VlanMode {
    VlanMode::Trunk {
        allowed: VlanSet::all(),
        native: Some(VlanId(0)),
    }
}

fn flow(dp: &Datapath, priority: u16, m: &[(Field, u128)], actions: Vec<Action>) {
    let mut key = FlowKey::ZERO;
    let mut mask = FlowMask::ZERO;
    for &(f, v) in m {
        key.set(f, v);
        mask.set(f, f.full_mask());
    }
    dp.flow_mods(&[FlowMod::Add {
        spec: FlowSpec {
            table: TableId(0),
            priority,
            key: key.masked(&mask),
            mask,
            cookie: 0,
            idle_timeout_s: 0,
            hard_timeout_s: 0,
            send_flow_removed: false,
            instructions: Instructions::actions(actions),
        },
        check_overlap: false,
    }])
    .unwrap();
}

struct Rig {
    overlay: Datapath,
    underlay: Datapath,
    o_pmd: Pmd,
    u_pmd: Pmd,
    host: Arc<MemPort>,
    host2: Arc<MemPort>,
    wire: Arc<MemPort>,
    ep: Arc<TunnelEndpoint>,
}

impl Rig {
    fn new() -> Rig {
        let (underlay, _) = Datapath::new(DatapathConfig::default());
        let (overlay, _) = Datapath::new(DatapathConfig::default());
        let u2 = underlay.clone();
        let ep = Arc::new(TunnelEndpoint::new(
            "tep",
            LOCAL,
            24,
            None,
            EP_MAC,
            Clock(Arc::new(move || u2.now_ns())),
        ));
        let wire = Arc::new(MemPort::new("wire", 4096));
        underlay.add_port(PortNo(1), wire.clone(), trunk()).unwrap();
        underlay
            .add_port(PortNo(2), Arc::new(EndpointPort(ep.clone())), trunk())
            .unwrap();
        flow(&underlay, 0, &[], vec![Action::Normal]);
        let host = Arc::new(MemPort::new("host", 4096));
        let host2 = Arc::new(MemPort::new("host2", 4096));
        let vx = Arc::new(TunnelPort::new(
            "vx0",
            TunnelConfig {
                remote: Some(REMOTE),
                key: Some(42),
                ..TunnelConfig::default()
            },
            ep.clone(),
        ));
        overlay.add_port(PortNo(1), host.clone(), trunk()).unwrap();
        overlay.add_port(PortNo(2), vx, trunk()).unwrap();
        overlay.add_port(PortNo(3), host2.clone(), trunk()).unwrap();
        let o_pmd = overlay.new_pmd();
        let u_pmd = underlay.new_pmd();
        Rig {
            overlay,
            underlay,
            o_pmd,
            u_pmd,
            host,
            host2,
            wire,
            ep,
        }
    }

    fn run(&mut self) {
        for _ in 0..4 {
            self.o_pmd.poll_until_idle();
            self.u_pmd.poll_until_idle();
        }
    }
}

fn inner_frame(src: u8, dst: u8) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 1, src], [2, 0, 0, 0, 1, dst])
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(1000, 2000)
        .write(&mut v, &[7u8; 30])
        .unwrap();
    v
}

fn arp_reply() -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&EP_MAC);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f[22..28].copy_from_slice(&PEER_MAC);
    f[28..32].copy_from_slice(&REMOTE.octets());
    f[32..38].copy_from_slice(&EP_MAC);
    f[38..42].copy_from_slice(&LOCAL.octets());
    f
}

#[test]
fn encapsulates_after_arp_and_decapsulates_with_metadata() {
    let mut r = Rig::new();
    // Overlay: host -> tunnel; tunnel traffic with VNI 42 from REMOTE -> host.
    flow(
        &r.overlay,
        10,
        &[(Field::InPort, 1)],
        vec![Action::Output(PortNo(2))],
    );
    flow(
        &r.overlay,
        10,
        &[
            (Field::InPort, 2),
            (Field::TunId, 42),
            (Field::TunSrc, u32::from(REMOTE) as u128),
        ],
        vec![Action::Output(PortNo(1))],
    );
    let f = inner_frame(1, 2);
    // No neighbour yet: the packet is dropped and an ARP request goes out of the wire.
    r.host.inject([&f]);
    r.run();
    let out = r.wire.drain();
    assert_eq!(out.len(), 1, "one ARP request");
    assert_eq!(&out[0][12..14], &[0x08, 0x06]);
    assert_eq!(&out[0][38..42], &REMOTE.octets());
    assert_eq!(r.ep.drops.get(TunnelDrop::NeighMiss), 1);
    // The reply resolves it; the next packet leaves encapsulated.
    r.wire.inject([arp_reply()]);
    r.run();
    assert_eq!(
        r.ep.neigh.lookup(REMOTE, r.underlay.now_ns()),
        Some(PEER_MAC)
    );
    r.host.inject([&f]);
    r.run();
    let out = r.wire.drain();
    assert_eq!(out.len(), 1);
    let v = &out[0];
    assert_eq!(&v[0..6], &PEER_MAC);
    assert_eq!(&v[6..12], &EP_MAC);
    assert_eq!(&v[30..34], &REMOTE.octets());
    assert_eq!(&v[50..], &f[..], "the inner frame rides unchanged");
    // The remote answers through the tunnel: decapsulated to the host, matched on tunnel
    // metadata.
    let back = inner_frame(2, 1);
    let mut b = PacketBuf::from_frame(&back).unwrap();
    EncapHeader::vxlan(&Outer::new(EP_MAC, PEER_MAC, REMOTE, LOCAL), 42, 4789)
        .push(&mut b, 1500)
        .unwrap();
    r.wire.inject([b.data()]);
    r.run();
    assert_eq!(r.host.drain(), vec![back.clone()]);
    // A wrong VNI is counted, not delivered.
    let mut b = PacketBuf::from_frame(&back).unwrap();
    EncapHeader::vxlan(&Outer::new(EP_MAC, PEER_MAC, REMOTE, LOCAL), 43, 4789)
        .push(&mut b, 1500)
        .unwrap();
    r.wire.inject([b.data()]);
    r.run();
    assert!(r.host.drain().is_empty());
    assert_eq!(r.ep.drops.get(TunnelDrop::UnknownTunnel), 1);
}

#[test]
fn the_endpoint_answers_arp_for_its_address() {
    let mut r = Rig::new();
    let mut req = vec![0u8; 42];
    req[0..6].copy_from_slice(&[0xff; 6]);
    req[6..12].copy_from_slice(&PEER_MAC);
    req[12..14].copy_from_slice(&[0x08, 0x06]);
    req[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    req[22..28].copy_from_slice(&PEER_MAC);
    req[28..32].copy_from_slice(&REMOTE.octets());
    req[38..42].copy_from_slice(&LOCAL.octets());
    r.wire.inject([req]);
    r.run();
    let out = r.wire.drain();
    assert_eq!(out.len(), 1, "{out:02x?}");
    assert_eq!(&out[0][0..6], &PEER_MAC);
    assert_eq!(out[0][21], 2, "an ARP reply");
    assert_eq!(&out[0][22..28], &EP_MAC);
    assert_eq!(&out[0][28..32], &LOCAL.octets());
    // And it learned the asker.
    assert_eq!(
        r.ep.neigh.lookup(REMOTE, r.underlay.now_ns()),
        Some(PEER_MAC)
    );
}

#[test]
fn normal_never_floods_from_a_tunnel_into_a_tunnel_and_oversize_is_dropped() {
    let mut r = Rig::new();
    // A second tunnel port on the overlay, and `normal` everywhere.
    let vx2 = Arc::new(TunnelPort::new(
        "vx1",
        TunnelConfig {
            remote: Some(Ipv4Addr::new(172, 16, 0, 3)),
            key: Some(7),
            ..TunnelConfig::default()
        },
        r.ep.clone(),
    ));
    r.overlay.add_port(PortNo(4), vx2, trunk()).unwrap();
    flow(&r.overlay, 0, &[], vec![Action::Normal]);
    r.wire.inject([arp_reply()]);
    r.run();
    // A broadcast from the tunnel reaches both hosts but not the other tunnel.
    let mut bcast = inner_frame(2, 1);
    bcast[0..6].copy_from_slice(&[0xff; 6]);
    let mut b = PacketBuf::from_frame(&bcast).unwrap();
    EncapHeader::vxlan(&Outer::new(EP_MAC, PEER_MAC, REMOTE, LOCAL), 42, 4789)
        .push(&mut b, 1500)
        .unwrap();
    r.wire.inject([b.data()]);
    r.run();
    assert_eq!(r.host.drain().len(), 1);
    assert_eq!(r.host2.drain().len(), 1);
    assert!(
        r.wire.drain().is_empty(),
        "flooded back into a tunnel (split horizon)"
    );
    // A frame too big for the underlay once encapsulated is counted and dropped.
    let mut big = inner_frame(1, 2);
    big.resize(1480, 0);
    r.host.inject([&big]);
    r.run();
    assert!(r.ep.drops.get(TunnelDrop::TooBig) >= 1);
    assert!(r.wire.drain().is_empty());
}

const REMOTE2: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 3);
const PEER2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 3];

fn arp_reply_from(ip: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut f = arp_reply();
    f[6..12].copy_from_slice(&mac);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f
}

fn vxlan_from(remote: Ipv4Addr, mac: [u8; 6], vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut b = PacketBuf::from_frame(inner).unwrap();
    EncapHeader::vxlan(&Outer::new(EP_MAC, mac, remote, LOCAL), vni, 4789)
        .push(&mut b, 1500)
        .unwrap();
    b.data().to_vec()
}

/// A `remote_ip=flow key=flow` port as port 4 of the overlay.
fn flow_port(r: &Rig) -> Arc<TunnelPort> {
    let t = Arc::new(TunnelPort::new(
        "vxf",
        TunnelConfig {
            remote: None,
            key: None,
            ..TunnelConfig::default()
        },
        r.ep.clone(),
    ));
    r.overlay.add_port(PortNo(4), t.clone(), trunk()).unwrap();
    t
}

fn set(field: Field, value: u128) -> Action {
    Action::SetField { field, value }
}

#[test]
fn a_flow_based_port_serves_two_remotes_chosen_by_flows() {
    let mut r = Rig::new();
    let vxf = flow_port(&r);
    assert!(vxf.is_flow_based());
    r.wire
        .inject([arp_reply(), arp_reply_from(REMOTE2, PEER2_MAC)]);
    r.run();
    flow(
        &r.overlay,
        10,
        &[(Field::InPort, 1)],
        vec![
            set(Field::TunDst, u32::from(REMOTE) as u128),
            set(Field::TunId, 5),
            Action::Output(PortNo(4)),
        ],
    );
    flow(
        &r.overlay,
        10,
        &[(Field::InPort, 3)],
        vec![
            set(Field::TunDst, u32::from(REMOTE2) as u128),
            set(Field::TunId, 7),
            Action::Output(PortNo(4)),
        ],
    );
    // Back: by remote and VNI.
    flow(
        &r.overlay,
        10,
        &[
            (Field::InPort, 4),
            (Field::TunSrc, u32::from(REMOTE) as u128),
            (Field::TunId, 5),
        ],
        vec![Action::Output(PortNo(1))],
    );
    flow(
        &r.overlay,
        10,
        &[
            (Field::InPort, 4),
            (Field::TunSrc, u32::from(REMOTE2) as u128),
            (Field::TunId, 7),
        ],
        vec![Action::Output(PortNo(3))],
    );
    // Bursts of several sizes, interleaved between the two hosts.
    for n in [1usize, 2, 31, 32, 33, 257] {
        let f1 = inner_frame(1, 2);
        let f2 = inner_frame(3, 4);
        r.host.inject(std::iter::repeat_n(&f1, n));
        r.host2.inject(std::iter::repeat_n(&f2, n));
        r.run();
        let out = r.wire.drain();
        assert_eq!(out.len(), 2 * n);
        let (mut a, mut b) = (0, 0);
        for v in &out {
            match (&v[0..6], &v[30..34], &v[46..49]) {
                (m, ip, vni) if m == PEER_MAC && ip == REMOTE.octets() && vni == [0, 0, 5] => {
                    assert_eq!(&v[50..], &f1[..]);
                    a += 1
                }
                (m, ip, vni) if m == PEER2_MAC && ip == REMOTE2.octets() && vni == [0, 0, 7] => {
                    assert_eq!(&v[50..], &f2[..]);
                    b += 1
                }
                _ => panic!("unexpected outer header {:02x?}", &v[..50]),
            }
        }
        assert_eq!((a, b), (n, n));
    }
    assert_eq!(vxf.remote_count(), 2);
    // Any remote, any VNI comes in on the flow port, with its metadata (VNI 42 from REMOTE
    // would go to the rig's fixed port 2).
    let back1 = inner_frame(2, 1);
    let back2 = inner_frame(4, 3);
    r.wire.inject([
        vxlan_from(REMOTE, PEER_MAC, 5, &back1),
        vxlan_from(REMOTE2, PEER2_MAC, 7, &back2),
    ]);
    r.run();
    assert_eq!(r.host.drain(), vec![back1]);
    assert_eq!(r.host2.drain(), vec![back2]);
    assert_eq!(r.ep.drops.get(TunnelDrop::UnknownTunnel), 0);
}

#[test]
fn a_flow_based_port_without_a_destination_drops_and_counts() {
    let mut r = Rig::new();
    let vxf = flow_port(&r);
    flow(
        &r.overlay,
        10,
        &[(Field::InPort, 1)],
        vec![Action::Output(PortNo(4))],
    );
    let f = inner_frame(1, 2);
    r.host.inject([&f, &f, &f]);
    r.run();
    assert!(r.wire.drain().is_empty());
    assert_eq!(r.ep.drops.get(TunnelDrop::NoDestination), 3);
    assert_eq!(vxf.remote_count(), 0);
    assert_eq!(
        datapath::port::Port::stats(&*vxf).tx_dropped,
        3,
        "counted as the port's tx drops too"
    );
}

#[test]
fn decap_prefers_the_exact_port_then_flow_based_ones() {
    let mut r = Rig::new();
    // Port 2: remote REMOTE key 42 (the rig's). Port 4: flow/flow. Port 5: REMOTE, key=flow.
    // Port 6: remote=flow, key 42.
    flow_port(&r);
    let key_flow = Arc::new(TunnelPort::new(
        "vxk",
        TunnelConfig {
            remote: Some(REMOTE),
            key: None,
            ..TunnelConfig::default()
        },
        r.ep.clone(),
    ));
    r.overlay.add_port(PortNo(5), key_flow, trunk()).unwrap();
    let remote_flow = Arc::new(TunnelPort::new(
        "vxr",
        TunnelConfig {
            remote: None,
            key: Some(42),
            ..TunnelConfig::default()
        },
        r.ep.clone(),
    ));
    r.overlay.add_port(PortNo(6), remote_flow, trunk()).unwrap();
    // Each port's input is marked with a VLAN-free trick: a register would do, but the
    // output port says it: in_port=N -> host with the frame's first byte rewritten.
    for p in [2u32, 4, 5, 6] {
        flow(
            &r.overlay,
            10,
            &[(Field::InPort, p as u128)],
            vec![
                set(Field::EthDst, 0x0200_0000_0000 | p as u128),
                Action::Output(PortNo(1)),
            ],
        );
    }
    let cases = [
        (REMOTE, 42, 2u8), // exact
        (REMOTE2, 42, 6),  // fixed key before fixed remote
        (REMOTE, 43, 5),   // fixed remote, any key
        (REMOTE2, 43, 4),  // anything
    ];
    for (src, vni, port) in cases {
        r.wire
            .inject([vxlan_from(src, PEER_MAC, vni, &inner_frame(2, 1))]);
        r.run();
        let got = r.host.drain();
        assert_eq!(got.len(), 1, "{src} vni {vni}");
        assert_eq!(got[0][5], port, "{src} vni {vni} went to the wrong port");
    }
}

#[test]
fn normal_learns_the_remote_behind_a_flow_based_port() {
    let mut r = Rig::new();
    let vxf = flow_port(&r);
    r.wire
        .inject([arp_reply(), arp_reply_from(REMOTE2, PEER2_MAC)]);
    r.run();
    flow(&r.overlay, 0, &[], vec![Action::Normal]);
    // Two stations behind two remotes speak first (broadcasts, then learned).
    let mut b1 = inner_frame(2, 1);
    b1[0..6].copy_from_slice(&[0xff; 6]);
    let mut b2 = inner_frame(4, 3);
    b2[0..6].copy_from_slice(&[0xff; 6]);
    r.wire.inject([
        vxlan_from(REMOTE, PEER_MAC, 5, &b1),
        vxlan_from(REMOTE2, PEER2_MAC, 7, &b2),
    ]);
    r.run();
    assert_eq!(r.host.drain().len(), 2);
    assert!(r.wire.drain().is_empty(), "split horizon");
    let entries = r.overlay.mac_table().entries(0);
    let e = |last: u8| {
        *entries
            .iter()
            .find(|e| e.mac.0 == [2, 0, 0, 0, 1, last])
            .unwrap()
    };
    assert_eq!(e(2).port, PortNo(4));
    assert_eq!(e(2).tun, Some((REMOTE, 5)));
    assert_eq!(e(4).tun, Some((REMOTE2, 7)));
    // Unicasts to them go back to the remote (and key) each came from.
    let u1 = inner_frame(1, 2);
    let u2 = inner_frame(1, 4);
    r.host.inject([&u1, &u2]);
    r.run();
    let out = r.wire.drain();
    assert_eq!(
        out.len(),
        2,
        "{:?}",
        r.ep.drops.get(TunnelDrop::NoDestination)
    );
    assert_eq!(&out[0][30..34], &REMOTE.octets());
    assert_eq!(&out[0][46..49], &[0, 0, 5]);
    assert_eq!(&out[1][30..34], &REMOTE2.octets());
    assert_eq!(&out[1][46..49], &[0, 0, 7]);
    // A broadcast from a host has no chosen remote: dropped at the flow port, counted (the
    // rig's fixed port 2 carries it to its remote).
    let mut bc = inner_frame(1, 9);
    bc[0..6].copy_from_slice(&[0xff; 6]);
    r.host.inject([&bc]);
    r.run();
    let out = r.wire.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][46..49], &[0, 0, 42]);
    assert_eq!(r.ep.drops.get(TunnelDrop::NoDestination), 1);
    assert_eq!(
        r.host2.drain().len(),
        3,
        "the two remote broadcasts and this one"
    );
    assert_eq!(vxf.remote_count(), 2);
}
