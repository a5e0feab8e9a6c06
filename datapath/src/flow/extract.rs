//! Flow key extraction: read a frame once, fill a [`FlowKey`] and a [`Layout`].
//!
//! What: the only parser on the per-packet path. It validates every length it relies on and
//! either fills the key or returns the [`DropReason`] the caller counts. It never panics and
//! never allocates. Rules for what is malformed (everything else is forwarded, even if the
//! switch does not understand it):
//! - a frame shorter than an Ethernet header, a cut VLAN tag, or more than two VLAN tags;
//! - ARP for Ethernet/IPv4 cut short;
//! - IPv4 with version != 4, IHL < 5, a header past the frame, or a total length shorter
//!   than the header or longer than the frame (trailing padding is allowed);
//! - IPv6 with a payload length past the frame, or an extension-header chain that is cut
//!   short or longer than [`MAX_IPV6_EXT`] headers;
//! - MPLS whose first label stack entry is cut short;
//! - a first (or only) fragment whose TCP/UDP/SCTP/ICMP header is cut short, or TCP with a
//!   data offset below 5.
//!
//! An MPLS packet's key holds its outermost label stack entry (what follows the stack is not
//! read: the labels do not say what it is); an IPv6 packet's its flow label; neighbour
//! discovery messages their target and link-layer address option ([`super::nd`]).
//!
//! Thread-safety: pure functions.

use super::key::{FRAG_ANY, FRAG_LATER, Field, FlowKey, VLAN_CFI};
use super::nd;
use crate::packet::{be16, be32, be64, be128, ethertype, ip_proto, mac48};
use crate::stats::DropReason;
use crate::types::PortNo;

/// Most IPv6 extension headers walked before giving up on a packet.
pub const MAX_IPV6_EXT: usize = 8;

/// Where the headers of a parsed frame start, for actions that rewrite them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the network header (after Ethernet and VLAN tags).
    pub l3: u16,
    /// Offset of the transport header; 0 when there is none (or a non-first fragment).
    pub l4: u16,
    /// Number of VLAN tags (0..=2).
    pub vlans: u8,
}

/// The `N` bytes at `at`, or `None` past the end: one length check, after which the
/// big-endian readers of [`crate::packet`], reading at constant offsets of it, need none (the hot headers are read
/// through these).
#[inline(always)]
fn fixed<const N: usize>(b: &[u8], at: usize) -> Option<&[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Extracts the key of `frame` received on `in_port`. `key` is overwritten completely
/// (pipeline-state words are zeroed). On error the key's contents are unspecified.
#[inline]
pub fn extract(frame: &[u8], in_port: PortNo, key: &mut FlowKey) -> Result<Layout, DropReason> {
    *key = FlowKey::ZERO;
    let mut lay = Layout::default();
    let Some(eth) = fixed::<14>(frame, 0) else {
        return Err(DropReason::RuntFrame);
    };
    let w = &mut key.w;
    w[0] = in_port.0 as u64;
    // The destination is the top 6 bytes of bytes 0..8, the source of bytes 6..14 (one
    // load each).
    w[2] = be64(eth, 0) >> 16;
    w[1] = be64(eth, 6) >> 16;
    let mut off = 14;
    let mut ty = be16(eth, 12);
    let mut tci = 0u16;
    let mut tci2 = 0u16;
    while ty == ethertype::VLAN || ty == ethertype::QINQ {
        if lay.vlans == 2 {
            return Err(DropReason::VlanTooDeep);
        }
        if frame.len() < off + 4 {
            return Err(DropReason::TruncatedVlan);
        }
        let t = (be16(frame, off) & !VLAN_CFI) | VLAN_CFI;
        if lay.vlans == 0 {
            tci = t;
        } else {
            tci2 = t;
        }
        ty = be16(frame, off + 2);
        off += 4;
        lay.vlans += 1;
    }
    w[0] |= (ty as u64) << 32 | (tci as u64) << 48;
    w[9] = (tci2 as u64) << 48;
    lay.l3 = off as u16;
    match ty {
        ethertype::IPV4 => lay.l4 = extract_ipv4(frame, off, key)?,
        ethertype::IPV6 => lay.l4 = extract_ipv6(frame, off, key)?,
        ethertype::ARP => extract_arp(frame, off, key)?,
        ethertype::MPLS | ethertype::MPLS_MCAST => extract_mpls(frame, off, key)?,
        _ => {}
    }
    Ok(lay)
}

#[inline(always)]
fn extract_arp(f: &[u8], off: usize, key: &mut FlowKey) -> Result<(), DropReason> {
    if f.len() < off + 28 {
        return Err(DropReason::BadArp);
    }
    // Only Ethernet/IPv4 ARP carries the fields OpenFlow matches; others are plain L2.
    if be16(f, off) != 1
        || be16(f, off + 2) != ethertype::IPV4
        || f[off + 4] != 6
        || f[off + 5] != 4
    {
        return Ok(());
    }
    let op = be16(f, off + 6);
    key.set(Field::ArpOp, op as u128);
    key.set(Field::IpProto, (op & 0xff) as u128);
    key.w[9] |= mac48(f, off + 8);
    key.w[3] = be32(f, off + 14) as u64 | (be32(f, off + 24) as u64) << 32;
    key.w[10] = mac48(f, off + 18);
    Ok(())
}

#[inline(always)]
fn extract_ipv4(f: &[u8], off: usize, key: &mut FlowKey) -> Result<u16, DropReason> {
    let Some(h) = fixed::<20>(f, off) else {
        return Err(DropReason::BadIpv4Header);
    };
    let vihl = h[0];
    let ihl = (vihl & 0x0f) as usize * 4;
    if vihl >> 4 != 4 || ihl < 20 || f.len() < off + ihl {
        return Err(DropReason::BadIpv4Header);
    }
    let total = be16(h, 2) as usize;
    if total < ihl || f.len() < off + total {
        return Err(DropReason::BadIpv4Length);
    }
    let proto = h[9];
    let frag_field = be16(h, 6);
    let mut frag = 0u8;
    if frag_field & 0x3fff != 0 {
        frag = FRAG_ANY;
        if frag_field & 0x1fff != 0 {
            frag |= FRAG_LATER;
        }
    }
    key.w[1] |= (proto as u64) << 48 | (h[1] as u64) << 56;
    key.w[2] |= (h[8] as u64) << 48 | (frag as u64) << 56;
    key.w[3] = be32(h, 12) as u64 | (be32(h, 16) as u64) << 32;
    if frag & FRAG_LATER == 0 {
        return extract_l4(f, off + ihl, off + total, proto, key);
    }
    Ok(0)
}

#[inline]
fn extract_ipv6(f: &[u8], off: usize, key: &mut FlowKey) -> Result<u16, DropReason> {
    if f.len() < off + 40 || f[off] >> 4 != 6 {
        return Err(DropReason::BadIpv6Header);
    }
    let end = off + 40 + be16(f, off + 4) as usize;
    if f.len() < end {
        return Err(DropReason::BadIpv6Header);
    }
    let tclass = (be16(f, off) >> 4) as u8;
    let mut next = f[off + 6];
    key.w[2] |= (f[off + 7] as u64) << 48;
    let src = be128(f, off + 8);
    let dst = be128(f, off + 24);
    key.w[4] = (src >> 64) as u64;
    key.w[5] = src as u64;
    key.w[6] = (dst >> 64) as u64;
    key.w[7] = dst as u64;
    let mut p = off + 40;
    let mut frag = 0u8;
    let mut n = 0;
    loop {
        match next {
            // Hop-by-hop, routing, destination options: (next, len in 8-octet units - 1).
            0 | 43 | 60 => {
                if p + 8 > end {
                    return Err(DropReason::BadIpv6ExtHeader);
                }
                let len = (f[p + 1] as usize + 1) * 8;
                next = f[p];
                p += len;
            }
            // Fragment header: fixed 8 bytes.
            44 => {
                if p + 8 > end {
                    return Err(DropReason::BadIpv6ExtHeader);
                }
                frag = FRAG_ANY;
                if be16(f, p + 2) & 0xfff8 != 0 {
                    frag |= FRAG_LATER;
                }
                next = f[p];
                p += 8;
            }
            _ => break,
        }
        n += 1;
        if n > MAX_IPV6_EXT || p > end {
            return Err(DropReason::BadIpv6ExtHeader);
        }
    }
    key.w[1] |= (next as u64) << 48 | (tclass as u64) << 56;
    key.w[2] |= (frag as u64) << 56;
    let l4 = if frag & FRAG_LATER == 0 {
        extract_l4(f, p, end, next, key)?
    } else {
        0
    };
    // The flow label shares the transport word (after extract_l4 wrote it).
    key.set(Field::Ipv6Label, (be32(f, off) & 0xf_ffff) as u128);
    if l4 != 0 && next == ip_proto::ICMPV6 {
        extract_nd(&f[p..end], key);
    }
    Ok(l4)
}

/// A neighbour discovery message's target and link-layer address, if `icmp` is one (out
/// of line: it keeps the common path's code small).
#[inline(never)]
fn extract_nd(icmp: &[u8], key: &mut FlowKey) {
    if let Some((target, ll)) = nd::fields(icmp) {
        key.set(Field::NdTarget, target);
        key.w[9] |= ll;
    }
}

#[inline(always)]
fn extract_l4(
    f: &[u8],
    off: usize,
    end: usize,
    proto: u8,
    key: &mut FlowKey,
) -> Result<u16, DropReason> {
    let avail = end.saturating_sub(off);
    match proto {
        ip_proto::TCP => {
            let (true, Some(h)) = (avail >= 20, fixed::<20>(f, off)) else {
                return Err(DropReason::BadL4Header);
            };
            let doff = (h[12] >> 4) as usize;
            if doff < 5 || avail < doff * 4 {
                return Err(DropReason::BadL4Header);
            }
            let flags = be16(h, 12) & 0x0fff;
            key.w[8] = be16(h, 0) as u64 | (be16(h, 2) as u64) << 16 | (flags as u64) << 32;
        }
        ip_proto::UDP => {
            let (true, Some(h)) = (avail >= 8, fixed::<8>(f, off)) else {
                return Err(DropReason::BadL4Header);
            };
            key.w[8] = be16(h, 0) as u64 | (be16(h, 2) as u64) << 16;
        }
        ip_proto::SCTP => return extract_sctp(f, off, avail, key),
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            let (true, Some(h)) = (avail >= 4, fixed::<4>(f, off)) else {
                return Err(DropReason::BadL4Header);
            };
            key.w[8] = h[0] as u64 | (h[1] as u64) << 16;
        }
        _ => return Ok(0),
    }
    Ok(off as u16)
}

/// The outermost MPLS label stack entry (the labels do not say what follows them).
#[cold]
fn extract_mpls(f: &[u8], off: usize, key: &mut FlowKey) -> Result<(), DropReason> {
    let Some(lse) = fixed::<4>(f, off) else {
        return Err(DropReason::BadMpls);
    };
    key.w[3] = be32(lse, 0) as u64;
    Ok(())
}

/// SCTP's ports: the first words of its 12-byte common header.
#[cold]
fn extract_sctp(f: &[u8], off: usize, avail: usize, key: &mut FlowKey) -> Result<u16, DropReason> {
    let (true, Some(h)) = (avail >= 12, fixed::<12>(f, off)) else {
        return Err(DropReason::BadL4Header);
    };
    key.w[8] = be16(h, 0) as u64 | (be16(h, 2) as u64) << 16;
    Ok(off as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    fn udp4(vlans: &[u16]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(SRC, DST);
        let payload = [0xabu8; 18];
        let mut out = Vec::new();
        match vlans {
            [] => b
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1234, 4789)
                .write(&mut out, &payload),
            [a] => b
                .single_vlan((*a).try_into().unwrap())
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1234, 4789)
                .write(&mut out, &payload),
            [a, c] => b
                .double_vlan((*a).try_into().unwrap(), (*c).try_into().unwrap())
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1234, 4789)
                .write(&mut out, &payload),
            _ => unreachable!(),
        }
        .unwrap();
        out
    }

    fn tcp6() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(
                [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                17,
            )
            .tcp(40000, 80, 1, 1000)
            .syn()
            .ack(7)
            .write(&mut out, &[])
            .unwrap();
        out
    }

    /// An ARP request for 10.0.0.2 from 10.0.0.1, as captured on a veth.
    const ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
    ];

    #[test]
    fn udp_over_ipv4() {
        let f = udp4(&[]);
        let mut k = FlowKey::ZERO;
        let lay = extract(&f, PortNo(3), &mut k).unwrap();
        assert_eq!(k.get(Field::InPort), 3);
        assert_eq!(k.get(Field::EthSrc), 0x0200_0000_0001);
        assert_eq!(k.get(Field::EthDst), 0x0200_0000_0002);
        assert_eq!(k.get(Field::EthType), 0x0800);
        assert_eq!(k.get(Field::VlanTci), 0);
        assert_eq!(k.get(Field::Ipv4Src), 0x0a00_0001);
        assert_eq!(k.get(Field::Ipv4Dst), 0x0a00_0002);
        assert_eq!(k.get(Field::IpProto), 17);
        assert_eq!(k.get(Field::IpTtl), 64);
        assert_eq!(k.get(Field::TpSrc), 1234);
        assert_eq!(k.get(Field::TpDst), 4789);
        assert_eq!(
            lay,
            Layout {
                l3: 14,
                l4: 34,
                vlans: 0
            }
        );
    }

    #[test]
    fn single_and_double_vlan() {
        let mut k = FlowKey::ZERO;
        let lay = extract(&udp4(&[100]), PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::VlanTci), (0x1000 | 100) as u128);
        assert_eq!(k.get(Field::EthType), 0x0800);
        assert_eq!((lay.l3, lay.vlans), (18, 1));
        let lay = extract(&udp4(&[100, 200]), PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::VlanTci), (0x1000 | 100) as u128);
        assert_eq!(k.get(Field::VlanTci2), (0x1000 | 200) as u128);
        assert_eq!((lay.l3, lay.vlans), (22, 2));
        assert_eq!(k.get(Field::TpDst), 4789);
    }

    #[test]
    fn three_tags_are_dropped() {
        let mut f = udp4(&[100, 200]);
        f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        let mut k = FlowKey::ZERO;
        assert_eq!(extract(&f, PortNo(1), &mut k), Err(DropReason::VlanTooDeep));
    }

    #[test]
    fn tcp_over_ipv6() {
        let mut k = FlowKey::ZERO;
        extract(&tcp6(), PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::EthType), 0x86dd);
        assert_eq!(
            k.get(Field::Ipv6Src),
            0x2001_0db8_0000_0000_0000_0000_0000_0001
        );
        assert_eq!(
            k.get(Field::Ipv6Dst),
            0x2001_0db8_0000_0000_0000_0000_0000_0002
        );
        assert_eq!(k.get(Field::IpProto), 6);
        assert_eq!(k.get(Field::IpTtl), 17);
        assert_eq!(k.get(Field::TpSrc), 40000);
        assert_eq!(k.get(Field::TpDst), 80);
        assert_eq!(k.get(Field::TcpFlags), 0x012);
    }

    #[test]
    fn arp_request() {
        let mut k = FlowKey::ZERO;
        extract(&ARP_REQUEST, PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::EthType), 0x0806);
        assert_eq!(k.get(Field::ArpOp), 1);
        assert_eq!(k.get(Field::Ipv4Src), 0x0a00_0001);
        assert_eq!(k.get(Field::Ipv4Dst), 0x0a00_0002);
        assert_eq!(k.get(Field::ArpSha), 0x0200_0000_0001);
        assert_eq!(k.get(Field::ArpTha), 0);
    }

    #[test]
    fn mpls_label_stack_entry() {
        let mut f = udp4(&[5]);
        // Label 0x12345, TC 5, bottom of stack, TTL 9, before the IPv4 header.
        f.splice(16..18, [0x88, 0x47, 0x12, 0x34, 0x5b, 0x09, 0x08, 0x00]);
        let mut k = FlowKey::ZERO;
        let lay = extract(&f, PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::EthType), 0x8847);
        assert_eq!(k.get(Field::MplsLabel), 0x12345);
        assert_eq!(k.get(Field::MplsTc), 5);
        assert_eq!(k.get(Field::MplsBos), 1);
        assert_eq!(k.get(Field::MplsTtl), 9);
        assert_eq!(
            k.get(Field::IpProto),
            0,
            "what follows the labels is not read"
        );
        assert_eq!((lay.l3, lay.l4), (18, 0));
        assert_eq!(
            extract(&f[..20], PortNo(1), &mut k),
            Err(DropReason::BadMpls)
        );
    }

    #[test]
    fn ipv6_flow_label_and_neighbour_discovery() {
        let mut f = tcp6();
        f[15] |= 0x0a;
        f[16..18].copy_from_slice(&[0xbc, 0xde]);
        let mut k = FlowKey::ZERO;
        extract(&f, PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::Ipv6Label), 0xabcde);
        assert_eq!(k.get(Field::TcpFlags), 0x012, "flags beside the label");
        assert_eq!(k.get(Field::TpDst), 80);
        let mut msg = [0u8; 16].to_vec();
        msg[15] = 3;
        msg.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 4]);
        let mut na = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                255,
            )
            .icmpv6_raw(136, 0, [0x60, 0, 0, 0])
            .write(&mut na, &msg)
            .unwrap();
        extract(&na, PortNo(1), &mut k).unwrap();
        assert_eq!((k.get(Field::TpSrc), k.get(Field::TpDst)), (136, 0));
        assert_eq!(k.get(Field::NdTarget), 3);
        assert_eq!(k.get(Field::ArpSha), 0x0200_0000_0004);
        assert_eq!(
            k.get(Field::Ipv6Src),
            0xfe80 << 112 | 1,
            "beside the target"
        );
        // Ethernet padding after the message is not read as options.
        let mut padded = na[..na.len() - 8].to_vec();
        let plen = u16::from_be_bytes([padded[18], padded[19]]) - 8;
        padded[18..20].copy_from_slice(&plen.to_be_bytes());
        padded.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 4]);
        extract(&padded, PortNo(1), &mut k).unwrap();
        assert_eq!((k.get(Field::NdTarget), k.get(Field::ArpSha)), (3, 0));
    }

    #[test]
    fn bad_ihl_and_lengths() {
        let mut k = FlowKey::ZERO;
        let mut f = udp4(&[]);
        f[14] = 0x44;
        assert_eq!(
            extract(&f, PortNo(1), &mut k),
            Err(DropReason::BadIpv4Header)
        );
        let mut f = udp4(&[]);
        f[14] = 0x65;
        assert_eq!(
            extract(&f, PortNo(1), &mut k),
            Err(DropReason::BadIpv4Header)
        );
        let mut f = udp4(&[]);
        f[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(
            extract(&f, PortNo(1), &mut k),
            Err(DropReason::BadIpv4Length)
        );
        let mut f = udp4(&[]);
        f[16..18].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            extract(&f, PortNo(1), &mut k),
            Err(DropReason::BadIpv4Length)
        );
        // Ethernet padding after the IP datagram is fine.
        let mut f = udp4(&[]);
        f.extend_from_slice(&[0; 10]);
        assert!(extract(&f, PortNo(1), &mut k).is_ok());
    }

    #[test]
    fn later_fragment_has_no_ports() {
        let mut f = udp4(&[]);
        f[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
        let mut k = FlowKey::ZERO;
        let lay = extract(&f, PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(Field::IpFrag), (FRAG_ANY | FRAG_LATER) as u128);
        assert_eq!(k.get(Field::TpDst), 0);
        assert_eq!(lay.l4, 0);
    }

    #[test]
    fn every_truncation_is_dropped_with_a_reason_or_parsed() {
        for f in [
            udp4(&[]),
            udp4(&[7]),
            udp4(&[7, 8]),
            tcp6(),
            ARP_REQUEST.to_vec(),
        ] {
            for cut in 0..f.len() {
                let mut k = FlowKey::ZERO;
                // A cut frame must never panic; cuts inside headers must be drops.
                let r = extract(&f[..cut], PortNo(1), &mut k);
                if cut < 14 {
                    assert_eq!(r, Err(DropReason::RuntFrame));
                } else {
                    // Every test frame's headers and lengths run to its last byte.
                    assert!(r.is_err(), "cut {cut} of {f:02x?} was not dropped");
                }
            }
        }
    }

    #[test]
    fn agrees_with_etherparse_on_ports() {
        let f = udp4(&[42]);
        let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let mut k = FlowKey::ZERO;
        extract(&f, PortNo(1), &mut k).unwrap();
        match p.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                assert_eq!(k.get(Field::TpSrc), u.source_port() as u128);
                assert_eq!(k.get(Field::TpDst), u.destination_port() as u128);
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut k = FlowKey::ZERO;
            let _ = extract(&bytes, PortNo(1), &mut k);
        }

        #[test]
        fn mutated_frames_never_panic(idx in 0usize..64, val in any::<u8>(), cut in 0usize..80) {
            for mut f in [udp4(&[]), udp4(&[9, 10]), tcp6()] {
                let i = idx % f.len();
                f[i] = val;
                f.truncate(cut.max(1));
                let mut k = FlowKey::ZERO;
                if let Ok(lay) = extract(&f, PortNo(1), &mut k) {
                    prop_assert!(lay.l3 as usize <= f.len());
                    prop_assert!(lay.l4 as usize <= f.len());
                }
            }
        }
    }
}
