//! A frame built from a flow key: what `trace` sends through the pipeline when it is given
//! a flow (`in_port=1,tcp,nw_dst=10.0.0.2`) rather than a packet (Open vSwitch's
//! `flow_compose`).
//!
//! What: [`compose`] writes Ethernet (with up to two VLAN tags), then by ethertype ARP,
//! IPv4 or IPv6 (with TCP, UDP, SCTP, ICMP or ICMPv6 and a neighbour discovery target), or
//! one MPLS label stack entry, with valid lengths and checksums, padded to 60 bytes.
//! [`super::extract`] of the result gives back the key's packet fields (a later fragment
//! has no transport header; IPv6 fragments and extension headers are not composed). A TTL
//! or hop limit of 0 becomes 64, as most hosts send.
//!
//! Thread-safety: a pure function.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::key::{FRAG_ANY, FRAG_LATER, Field, FlowKey, VLAN_CFI};
use crate::packet::ip_proto::{ICMP, ICMPV6, SCTP, TCP, UDP};
use crate::packet::{checksum, ethertype};

/// The frame `key` describes (its packet fields; pipeline fields are not in frames).
pub fn compose(key: &FlowKey) -> Vec<u8> {
    let g = |f: Field| key.get(f);
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&(g(Field::EthDst) as u64).to_be_bytes()[2..]);
    f.extend_from_slice(&(g(Field::EthSrc) as u64).to_be_bytes()[2..]);
    let eth = g(Field::EthType) as u16;
    for tci in [g(Field::VlanTci) as u16, g(Field::VlanTci2) as u16] {
        if tci & VLAN_CFI == 0 {
            break;
        }
        f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        f.extend_from_slice(&(tci & !VLAN_CFI).to_be_bytes());
    }
    f.extend_from_slice(&eth.to_be_bytes());
    match eth {
        ethertype::IPV4 => ipv4(key, &mut f),
        ethertype::IPV6 => ipv6(key, &mut f),
        ethertype::ARP => arp(key, &mut f),
        ethertype::MPLS | ethertype::MPLS_MCAST => {
            let lse = (g(Field::MplsLabel) as u32) << 12
                | (g(Field::MplsTc) as u32 & 7) << 9
                | (g(Field::MplsBos) as u32 & 1) << 8
                | g(Field::MplsTtl) as u32 & 0xff;
            f.extend_from_slice(&lse.to_be_bytes());
        }
        _ => {}
    }
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

fn arp(key: &FlowKey, f: &mut Vec<u8>) {
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&(key.get(Field::ArpOp) as u16).to_be_bytes());
    f.extend_from_slice(&(key.get(Field::ArpSha) as u64).to_be_bytes()[2..]);
    f.extend_from_slice(&(key.get(Field::Ipv4Src) as u32).to_be_bytes());
    f.extend_from_slice(&(key.get(Field::ArpTha) as u64).to_be_bytes()[2..]);
    f.extend_from_slice(&(key.get(Field::Ipv4Dst) as u32).to_be_bytes());
}

/// The transport header of `proto` for `key`, its checksum left zero; `None` when the
/// protocol has none we write. The second value: the checksum's offset in it.
fn l4(key: &FlowKey, proto: u8) -> Option<(Vec<u8>, usize)> {
    let (src, dst) = (key.get(Field::TpSrc) as u16, key.get(Field::TpDst) as u16);
    let mut h = Vec::new();
    let at = match proto {
        TCP => {
            h.extend_from_slice(&src.to_be_bytes());
            h.extend_from_slice(&dst.to_be_bytes());
            h.extend_from_slice(&[0; 8]);
            let flags = key.get(Field::TcpFlags) as u16 & 0x0fff;
            h.extend_from_slice(&(0x5000 | flags).to_be_bytes());
            h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
            16
        }
        UDP => {
            h.extend_from_slice(&src.to_be_bytes());
            h.extend_from_slice(&dst.to_be_bytes());
            h.extend_from_slice(&[0, 8, 0, 0]);
            6
        }
        SCTP => {
            h.extend_from_slice(&src.to_be_bytes());
            h.extend_from_slice(&dst.to_be_bytes());
            h.extend_from_slice(&[0; 8]);
            return Some((h, usize::MAX));
        }
        ICMP | ICMPV6 => {
            h.extend_from_slice(&[src as u8, dst as u8, 0, 0, 0, 0, 0, 0]);
            let nd = matches!(src, 135 | 136);
            if proto == ICMPV6 && nd {
                h.extend_from_slice(&key.get(Field::NdTarget).to_be_bytes());
                let ll = key.get(Field::ArpSha) as u64;
                if ll != 0 {
                    // Source (solicitation) or target (advertisement) link-layer address.
                    h.extend_from_slice(&[if src == 135 { 1 } else { 2 }, 1]);
                    h.extend_from_slice(&ll.to_be_bytes()[2..]);
                }
            }
            2
        }
        _ => return None,
    };
    Some((h, at))
}

fn ipv4(key: &FlowKey, f: &mut Vec<u8>) {
    let proto = key.get(Field::IpProto) as u8;
    let frag = key.get(Field::IpFrag) as u8;
    let later = frag & FRAG_LATER != 0;
    let l4 = if later { None } else { l4(key, proto) };
    let mut body = l4.as_ref().map_or(Vec::new(), |(h, _)| h.clone());
    let (src, dst) = (
        key.get(Field::Ipv4Src) as u32,
        key.get(Field::Ipv4Dst) as u32,
    );
    if let Some((_, at)) = l4.filter(|(_, at)| *at != usize::MAX) {
        if proto == UDP {
            let len = body.len() as u16;
            body[4..6].copy_from_slice(&len.to_be_bytes());
        }
        let pseudo = if proto == ICMP {
            0
        } else {
            checksum::pseudo_ipv4(
                Ipv4Addr::from(src),
                Ipv4Addr::from(dst),
                proto,
                body.len() as u16,
            )
        };
        let c = checksum::finish(&[pseudo, checksum::sum(&body)]);
        body[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let frag_field: u16 = match (frag & FRAG_ANY != 0, later) {
        (_, true) => 0x2000 | 1,
        (true, false) => 0x2000,
        _ => 0,
    };
    let ttl = match key.get(Field::IpTtl) as u8 {
        0 => 64,
        t => t,
    };
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = key.get(Field::IpTos) as u8;
    h[2..4].copy_from_slice(&(20 + body.len() as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag_field.to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum::data(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&body);
}

fn ipv6(key: &FlowKey, f: &mut Vec<u8>) {
    let proto = key.get(Field::IpProto) as u8;
    let l4 = l4(key, proto);
    let mut body = l4.as_ref().map_or(Vec::new(), |(h, _)| h.clone());
    let (src, dst) = (key.get(Field::Ipv6Src), key.get(Field::Ipv6Dst));
    if let Some((_, at)) = l4.filter(|(_, at)| *at != usize::MAX) {
        if proto == UDP {
            let len = body.len() as u16;
            body[4..6].copy_from_slice(&len.to_be_bytes());
        }
        let pseudo = checksum::pseudo_ipv6(
            Ipv6Addr::from(src),
            Ipv6Addr::from(dst),
            proto,
            body.len() as u32,
        );
        let c = checksum::finish(&[pseudo, checksum::sum(&body)]);
        body[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let hops = match key.get(Field::IpTtl) as u8 {
        0 => 64,
        t => t,
    };
    let vtf = 6u32 << 28
        | (key.get(Field::IpTos) as u32) << 20
        | key.get(Field::Ipv6Label) as u32 & 0xf_ffff;
    f.extend_from_slice(&vtf.to_be_bytes());
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[proto, hops]);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::flow::{KEY_WORDS, PKT_WORDS, extract};
    use crate::types::PortNo;
    use proptest::prelude::*;

    fn ip_key(eth: u16, proto: u8) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, 3);
        k.set(Field::EthType, eth as u128);
        k.set(Field::EthSrc, 0x0200_0000_0001);
        k.set(Field::EthDst, 0x0200_0000_0002);
        k.set(Field::IpProto, proto as u128);
        k.set(Field::IpTtl, 64);
        k
    }

    fn round_trip(k: &FlowKey) -> FlowKey {
        let f = compose(k);
        let mut out = FlowKey::ZERO;
        extract(&f, PortNo(k.get(Field::InPort) as u32), &mut out).unwrap();
        out
    }

    #[test]
    fn arp_and_mpls_and_vlans_come_back() {
        let mut k = ip_key(ethertype::ARP, 0);
        k.set(Field::ArpOp, 1);
        k.set(Field::IpProto, 1);
        k.set(Field::IpTtl, 0);
        k.set(Field::Ipv4Src, 0x0a00_0001);
        k.set(Field::Ipv4Dst, 0x0a00_0002);
        k.set(Field::ArpSha, 0x0200_0000_0001);
        k.set(Field::VlanTci, (VLAN_CFI | 10) as u128);
        assert_eq!(round_trip(&k), k);
        let mut m = ip_key(ethertype::MPLS, 0);
        m.set(Field::IpTtl, 0);
        m.set(Field::MplsLabel, 1000);
        m.set(Field::MplsBos, 1);
        m.set(Field::MplsTtl, 9);
        assert_eq!(round_trip(&m), m);
    }

    proptest! {
        #[test]
        fn ip_packets_come_back(v6 in any::<bool>(), proto in prop::sample::select(vec![1u8, 6, 17, 132, 58, 47]),
                                src in any::<u128>(), dst in any::<u128>(), tp in any::<(u16, u16)>(),
                                tos in any::<u8>(), ttl in 1u8.., flags in 0u16..0x1000, label in 0u32..0x10_0000,
                                tci in prop::option::of(0u16..0x1000)) {
            let eth = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
            let mut k = ip_key(eth, proto);
            k.set(Field::IpTos, tos as u128);
            k.set(Field::IpTtl, ttl as u128);
            if let Some(t) = tci {
                k.set(Field::VlanTci, (t | VLAN_CFI) as u128);
            }
            if v6 {
                k.set(Field::Ipv6Src, src);
                k.set(Field::Ipv6Dst, dst);
            } else {
                k.set(Field::Ipv4Src, src as u32 as u128);
                k.set(Field::Ipv4Dst, dst as u32 as u128);
            }
            let (s, d) = if matches!(proto, 1 | 58) { (tp.0 as u8 as u16, tp.1 as u8 as u16) } else { tp };
            if matches!(proto, 6 | 17 | 132 | 1 | 58) {
                k.set(Field::TpSrc, s as u128);
                k.set(Field::TpDst, d as u128);
            }
            if proto == 6 {
                k.set(Field::TcpFlags, flags as u128);
            }
            if v6 {
                k.set(Field::Ipv6Label, label as u128);
            }
            let out = round_trip(&k);
            // ND fields come from ICMPv6 types 135/136 only: compare the packet words.
            for i in 0..PKT_WORDS.min(KEY_WORDS) {
                prop_assert_eq!(out.w[i], k.w[i], "word {}", i);
            }
        }
    }
}
