//! Header rewrites on a packet in place: set-field, push/pop VLAN, dec-TTL (MPLS's own in
//! [`super::mpls`]).
//!
//! What: each function edits the frame, keeps the checksums right (incremental update,
//! RFC 1624) and keeps the packet's [`FlowKey`] and [`Layout`] in step, so later actions and
//! tables see the rewritten values. A field the packet does not carry (an IPv4 address on an
//! ARP-less L2 frame, say) is left alone: OpenFlow requires the flow to match the field's
//! prerequisites, and the key still records the value for later tables.

use super::mpls;
use crate::flow::{Field, FlowKey, Layout, VLAN_CFI, nd};
use crate::packet::{PacketBuf, be16, checksum, ethertype, ip_proto};
use crate::stats::DropReason;

/// Where the transport checksum of this packet lives, if it has one we must fix.
fn l4_csum_offset(key: &FlowKey, lay: &Layout, frame: &[u8]) -> Option<usize> {
    if lay.l4 == 0 {
        return None;
    }
    let l4 = lay.l4 as usize;
    let at = match key.get(Field::IpProto) as u8 {
        ip_proto::TCP => l4 + 16,
        ip_proto::UDP => {
            // A zero UDP checksum over IPv4 means "none": keep it zero.
            if be16(frame, l4 + 6) == 0 && key.get(Field::EthType) as u16 == ethertype::IPV4 {
                return None;
            }
            l4 + 6
        }
        ip_proto::ICMPV6 => l4 + 2,
        _ => return None,
    };
    (at + 2 <= frame.len()).then_some(at)
}

/// Replaces `new.len()` bytes at `at`, fixing the IPv4 header checksum if `ip_csum` and the
/// transport checksum if `pseudo` (the bytes are part of the pseudo-header or the L4 header).
fn replace(
    frame: &mut [u8],
    at: usize,
    new: &[u8],
    ip_csum: Option<usize>,
    l4_csum: Option<usize>,
) {
    let mut old = [0u8; 16];
    let n = new.len();
    old[..n].copy_from_slice(&frame[at..at + n]);
    frame[at..at + n].copy_from_slice(new);
    for c in [ip_csum, l4_csum].into_iter().flatten() {
        let v = checksum::update(be16(frame, c), &old[..n], new);
        frame[c..c + 2].copy_from_slice(&v.to_be_bytes());
    }
}

/// Where the IP datagram that starts at `l3` ends (its length field, within the frame).
fn ip_end(f: &[u8], l3: usize, is_v4: bool) -> usize {
    let end = if is_v4 {
        l3 + be16(f, l3 + 2) as usize
    } else {
        l3 + 40 + be16(f, l3 + 4) as usize
    };
    end.min(f.len())
}

/// Writes `value` into `field` of the packet and its key.
///
/// A field that overlays another protocol's bits is not written into a packet without its
/// protocol, not even into the key (see [`Field::applies_to`]).
pub fn set_field(buf: &mut PacketBuf, key: &mut FlowKey, lay: &Layout, field: Field, value: u128) {
    if !field.applies_to(key.get(Field::EthType) as u16) {
        return;
    }
    key.set(field, value);
    if matches!(field, Field::MplsLabel | Field::MplsTc | Field::MplsTtl) {
        mpls::write_lse(buf.data_mut(), key, lay);
        return;
    }
    let v = key.get(field);
    let l3 = lay.l3 as usize;
    let l4 = lay.l4 as usize;
    let eth = key.get(Field::EthType) as u16;
    let proto = key.get(Field::IpProto) as u8;
    let l4c = l4_csum_offset(key, lay, buf.data());
    let f = buf.data_mut();
    let is_v4 = eth == ethertype::IPV4;
    let is_v6 = eth == ethertype::IPV6;
    let ipc = is_v4.then_some(l3 + 10);
    // Neighbour discovery: the key's ICMPv6 type and code say so (extract read them).
    let is_nd = is_v6
        && l4 != 0
        && proto == ip_proto::ICMPV6
        && matches!(key.get(Field::TpSrc) as u8, nd::SOLICIT | nd::ADVERT)
        && key.get(Field::TpDst) == 0;
    match field {
        Field::EthDst => f[0..6].copy_from_slice(&(v as u64).to_be_bytes()[2..]),
        Field::EthSrc => f[6..12].copy_from_slice(&(v as u64).to_be_bytes()[2..]),
        Field::VlanTci if lay.vlans > 0 => {
            let tci = (v as u16) & !VLAN_CFI;
            f[14..16].copy_from_slice(&tci.to_be_bytes());
        }
        Field::VlanTci2 if lay.vlans > 1 => {
            let tci = (v as u16) & !VLAN_CFI;
            f[18..20].copy_from_slice(&tci.to_be_bytes());
        }
        Field::IpTos if is_v4 => {
            let word = [f[l3], v as u8];
            replace(f, l3, &word, ipc, None);
        }
        Field::IpTos if is_v6 => {
            let w = be16(f, l3) & 0xf00f | (v as u16) << 4;
            f[l3..l3 + 2].copy_from_slice(&w.to_be_bytes());
        }
        Field::IpTtl if is_v4 => {
            let word = [v as u8, f[l3 + 9]];
            replace(f, l3 + 8, &word, ipc, None);
        }
        Field::IpTtl if is_v6 => f[l3 + 7] = v as u8,
        Field::Ipv4Src | Field::Ipv4Dst if is_v4 => {
            let at = if field == Field::Ipv4Src {
                l3 + 12
            } else {
                l3 + 16
            };
            replace(f, at, &(v as u32).to_be_bytes(), ipc, l4c);
        }
        Field::Ipv4Src | Field::Ipv4Dst if eth == ethertype::ARP && f.len() >= l3 + 28 => {
            let at = if field == Field::Ipv4Src {
                l3 + 14
            } else {
                l3 + 24
            };
            f[at..at + 4].copy_from_slice(&(v as u32).to_be_bytes());
        }
        Field::Ipv6Src | Field::Ipv6Dst if is_v6 => {
            let at = if field == Field::Ipv6Src {
                l3 + 8
            } else {
                l3 + 24
            };
            replace(f, at, &v.to_be_bytes(), None, l4c);
        }
        Field::TpSrc | Field::TpDst
            if l4 != 0 && (proto == ip_proto::TCP || proto == ip_proto::UDP) =>
        {
            let at = if field == Field::TpSrc { l4 } else { l4 + 2 };
            replace(f, at, &(v as u16).to_be_bytes(), None, l4c);
        }
        Field::TpSrc | Field::TpDst if l4 != 0 && proto == ip_proto::SCTP => {
            let at = if field == Field::TpSrc { l4 } else { l4 + 2 };
            let end = ip_end(f, l3, is_v4);
            if at + 2 <= end {
                f[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
                checksum::sctp_update(&mut f[l4..end]);
            }
        }
        Field::TpSrc | Field::TpDst
            if l4 != 0 && (proto == ip_proto::ICMP || proto == ip_proto::ICMPV6) =>
        {
            // ICMP type and code share one checksummed 16-bit word.
            let mut word = [f[l4], f[l4 + 1]];
            word[(field == Field::TpDst) as usize] = v as u8;
            let csum = Some(l4 + 2);
            replace(f, l4, &word, None, csum);
        }
        Field::Ipv6Label if is_v6 => {
            let w = u32::from_be_bytes([f[l3], f[l3 + 1], f[l3 + 2], f[l3 + 3]]);
            let w = (w & 0xfff0_0000) | (v as u32 & 0xf_ffff);
            f[l3..l3 + 4].copy_from_slice(&w.to_be_bytes());
        }
        Field::NdTarget if is_nd && l4 + nd::TARGET_AT + 16 <= ip_end(f, l3, false) => {
            replace(f, l4 + nd::TARGET_AT, &v.to_be_bytes(), None, l4c);
        }
        Field::ArpSha if is_nd => {
            let end = ip_end(f, l3, false);
            if let Some(at) = nd::lladdr_at(&f[l4..end]) {
                replace(f, l4 + at, &(v as u64).to_be_bytes()[2..], None, l4c);
            }
        }
        Field::ArpOp if eth == ethertype::ARP && f.len() >= l3 + 28 => {
            f[l3 + 6..l3 + 8].copy_from_slice(&(v as u16).to_be_bytes())
        }
        Field::ArpSha if eth == ethertype::ARP && f.len() >= l3 + 28 => {
            f[l3 + 8..l3 + 14].copy_from_slice(&(v as u64).to_be_bytes()[2..])
        }
        Field::ArpTha if eth == ethertype::ARP && f.len() >= l3 + 28 => {
            f[l3 + 18..l3 + 24].copy_from_slice(&(v as u64).to_be_bytes()[2..])
        }
        // Tunnel metadata, pipeline state, and fields this packet lacks: key only.
        _ => {}
    }
}

/// Pushes a VLAN tag with ethertype `tpid` (the new outer tag copies the old outer tag's
/// TCI, or is VID 0 on an untagged frame).
pub fn push_vlan(
    buf: &mut PacketBuf,
    key: &mut FlowKey,
    lay: &mut Layout,
    tpid: u16,
) -> Result<(), DropReason> {
    if lay.vlans >= 2 {
        return Err(DropReason::VlanTooDeep);
    }
    let tci = key.get(Field::VlanTci) as u16;
    let Some(gap) = buf.insert_gap(12, 4) else {
        return Err(DropReason::NoHeadroom);
    };
    gap[0..2].copy_from_slice(&tpid.to_be_bytes());
    gap[2..4].copy_from_slice(&(tci & !VLAN_CFI).to_be_bytes());
    key.set(Field::VlanTci2, tci as u128);
    key.set(Field::VlanTci, (tci | VLAN_CFI) as u128);
    lay.vlans += 1;
    lay.l3 += 4;
    if lay.l4 != 0 {
        lay.l4 += 4;
    }
    Ok(())
}

/// Removes the outer VLAN tag (no effect on an untagged frame).
pub fn pop_vlan(buf: &mut PacketBuf, key: &mut FlowKey, lay: &mut Layout) {
    if lay.vlans == 0 || !buf.remove_gap(12, 4) {
        return;
    }
    let inner = key.get(Field::VlanTci2);
    key.set(Field::VlanTci, inner);
    key.set(Field::VlanTci2, 0);
    lay.vlans -= 1;
    lay.l3 -= 4;
    if lay.l4 != 0 {
        lay.l4 -= 4;
    }
}

/// Sets the outer VLAN of a frame to `vid` (pushing an 802.1Q tag if untagged) or removes
/// it (`None`). Used by the `normal` action on egress.
pub fn retag(
    buf: &mut PacketBuf,
    key: &mut FlowKey,
    lay: &mut Layout,
    vid: Option<u16>,
) -> Result<(), DropReason> {
    match vid {
        None => pop_vlan(buf, key, lay),
        Some(vid) => {
            if lay.vlans == 0 {
                push_vlan(buf, key, lay, ethertype::VLAN)?;
            }
            let tci = (key.get(Field::VlanTci) as u16 & 0xe000) | vid | VLAN_CFI;
            set_field(buf, key, lay, Field::VlanTci, tci as u128);
        }
    }
    Ok(())
}

/// OpenFlow 1.0's VLAN rewrite: writes `value` under `mask` into the outer tag's TCI; an
/// untagged packet first gets an 802.1Q tag (TCI 0) when `push`, else stays as it is.
pub fn set_vlan(
    buf: &mut PacketBuf,
    key: &mut FlowKey,
    lay: &mut Layout,
    value: u16,
    mask: u16,
    push: bool,
) -> Result<(), DropReason> {
    if lay.vlans == 0 {
        if !push {
            return Ok(());
        }
        push_vlan(buf, key, lay, ethertype::VLAN)?;
    }
    let tci = key.get(Field::VlanTci) as u16;
    let tci = (tci & !mask) | (value & mask) | VLAN_CFI;
    set_field(buf, key, lay, Field::VlanTci, tci as u128);
    Ok(())
}

/// Decrements the IPv4 TTL or IPv6 hop limit; `TtlExceeded` when it would reach zero.
/// Non-IP packets pass unchanged.
pub fn dec_ttl(buf: &mut PacketBuf, key: &mut FlowKey, lay: &Layout) -> Result<(), DropReason> {
    let eth = key.get(Field::EthType) as u16;
    if eth != ethertype::IPV4 && eth != ethertype::IPV6 {
        return Ok(());
    }
    let ttl = key.get(Field::IpTtl) as u8;
    if ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    set_field(buf, key, lay, Field::IpTtl, (ttl - 1) as u128);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::extract;
    use crate::types::PortNo;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn tcp4() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1000, 80, 7, 100)
            .write(&mut out, b"hello")
            .unwrap();
        out
    }

    fn checksums_ok(frame: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let hdr = ip.header().to_header();
        let ip_ok = hdr.calc_header_checksum() == hdr.header_checksum;
        let l4_ok = match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                t.to_header().calc_checksum_ipv4(&hdr, t.payload()).unwrap() == t.checksum()
            }
            Some(TransportSlice::Udp(u)) => {
                u.to_header().calc_checksum_ipv4(&hdr, u.payload()).unwrap() == u.checksum()
            }
            _ => true,
        };
        ip_ok && l4_ok
    }

    fn parsed(frame: &[u8]) -> (PacketBuf, FlowKey, Layout) {
        let b = PacketBuf::from_frame(frame).unwrap();
        let mut k = FlowKey::ZERO;
        let lay = extract(b.data(), PortNo(1), &mut k).unwrap();
        (b, k, lay)
    }

    #[test]
    fn set_ip_and_ports_keeps_checksums() {
        let (mut b, mut k, lay) = parsed(&tcp4());
        set_field(&mut b, &mut k, &lay, Field::Ipv4Dst, 0xc0a8_0101);
        set_field(&mut b, &mut k, &lay, Field::TpDst, 8080);
        set_field(&mut b, &mut k, &lay, Field::IpTos, 0xb8);
        set_field(&mut b, &mut k, &lay, Field::EthDst, 0x0200_0000_00aa);
        assert!(checksums_ok(b.data()));
        let mut k2 = FlowKey::ZERO;
        extract(b.data(), PortNo(1), &mut k2).unwrap();
        assert_eq!(k, k2, "key follows the packet");
    }

    #[test]
    fn dec_ttl_to_zero_drops() {
        let (mut b, mut k, lay) = parsed(&tcp4());
        dec_ttl(&mut b, &mut k, &lay).unwrap();
        assert_eq!(k.get(Field::IpTtl), 63);
        assert!(checksums_ok(b.data()));
        set_field(&mut b, &mut k, &lay, Field::IpTtl, 1);
        assert_eq!(dec_ttl(&mut b, &mut k, &lay), Err(DropReason::TtlExceeded));
    }

    #[test]
    fn push_then_pop_vlan_restores_frame() {
        let orig = tcp4();
        let (mut b, mut k, mut lay) = parsed(&orig);
        push_vlan(&mut b, &mut k, &mut lay, 0x8100).unwrap();
        retag(&mut b, &mut k, &mut lay, Some(42)).unwrap();
        let mut k2 = FlowKey::ZERO;
        assert_eq!(extract(b.data(), PortNo(1), &mut k2).unwrap(), lay);
        assert_eq!(k2, k);
        assert_eq!(k.get(Field::VlanTci), 0x1000 | 42);
        pop_vlan(&mut b, &mut k, &mut lay);
        assert_eq!(b.data(), &orig[..]);
    }

    #[test]
    fn push_without_headroom_is_a_counted_drop() {
        let f = tcp4();
        let mut b = PacketBuf::new();
        let room = b.prepend(crate::packet::HEADROOM).unwrap();
        room[..f.len()].copy_from_slice(&f);
        b.truncate(f.len());
        assert_eq!(b.headroom(), 0);
        let mut k = FlowKey::ZERO;
        let mut lay = extract(b.data(), PortNo(1), &mut k).unwrap();
        assert_eq!(
            push_vlan(&mut b, &mut k, &mut lay, 0x8100),
            Err(DropReason::NoHeadroom)
        );
        assert_eq!(b.data(), &f[..], "frame untouched");
    }

    /// A neighbour solicitation for fe80::1 from 02:00:00:00:00:01 (its source link-layer
    /// address option), behind `tags` VLAN tags.
    fn solicit() -> Vec<u8> {
        let mut msg = vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        msg.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0x33, 0x33, 0xff, 0, 0, 1])
            .ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                SOLICITED,
                255,
            )
            .icmpv6_raw(135, 0, [0; 4])
            .write(&mut out, &msg)
            .unwrap();
        out
    }

    const SOLICITED: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];

    fn icmpv6_ok(frame: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
            panic!()
        };
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
            panic!()
        };
        let h = ip.header();
        icmp.is_checksum_valid(h.source(), h.destination())
    }

    #[test]
    fn neighbour_discovery_target_and_address() {
        let (mut b, mut k, lay) = parsed(&solicit());
        assert_eq!(k.get(Field::NdTarget), 0xfe80 << 112 | 1);
        assert_eq!(k.get(Field::ArpSha), 0x0200_0000_0001);
        set_field(&mut b, &mut k, &lay, Field::NdTarget, 0x2001_0db8 << 96 | 7);
        set_field(&mut b, &mut k, &lay, Field::ArpSha, 0x0200_0000_00aa);
        set_field(&mut b, &mut k, &lay, Field::Ipv6Label, 0xabcde);
        assert!(icmpv6_ok(b.data()));
        assert_eq!(&b.data()[14..18], &[0x60, 0x0a, 0xbc, 0xde]);
        let (_, again, _) = parsed(b.data());
        assert_eq!(again, k, "key follows the packet");
        assert_eq!(again.get(Field::NdTarget), 0x2001_0db8 << 96 | 7);
        // Not neighbour discovery: an echo request is left alone.
        let mut echo = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(SOLICITED, SOLICITED, 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut echo, &[0; 24])
            .unwrap();
        let (mut b, mut k, lay) = parsed(&echo);
        set_field(&mut b, &mut k, &lay, Field::NdTarget, 5);
        set_field(&mut b, &mut k, &lay, Field::ArpSha, 5);
        assert_eq!(b.data(), &echo[..]);
    }

    #[test]
    fn sctp_ports_keep_the_crc() {
        // Built by scapy: IPv4 SCTP 5000 -> 9 with a DATA chunk "hello"; its checksum
        // with destination port 80 instead is 3f f5 5c a2.
        #[rustfmt::skip]
        const SCTP: [u8; 70] = [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x40, 0x84, 0x66, 0x3f, 0x0a, 0x00,
            0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x13, 0x88, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00,
            0xb9, 0xe7, 0x5f, 0x5f, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0x00, 0x00,
        ];
        let (mut b, mut k, lay) = parsed(&SCTP);
        assert_eq!((k.get(Field::TpSrc), k.get(Field::TpDst)), (5000, 9));
        set_field(&mut b, &mut k, &lay, Field::TpDst, 80);
        assert_eq!(&b.data()[42..46], &[0x3f, 0xf5, 0x5c, 0xa2]);
        set_field(&mut b, &mut k, &lay, Field::TpDst, 9);
        assert_eq!(b.data(), &SCTP[..]);
    }
}
