//! VXLAN (RFC 7348) and GRE with transparent Ethernet bridging (RFC 2784/2890, with the
//! key) encapsulation and decapsulation on packet buffers, IPv4 underlay.
//!
//! GRE headers carry the key (K flag) and protocol 0x6558; received GRE may also carry a
//! checksum (verified) and a sequence number (ignored); routing and other versions are
//! refused.
//!
//! Encapsulation writes a precomputed 50-byte outer header (Ethernet, IPv4, UDP, VXLAN) into
//! the buffer's headroom and patches the per-packet fields: IPv4 total length and header
//! checksum, UDP length, and a UDP source port hashed from the inner flow so that underlay
//! ECMP spreads flows (49152..=65535, as the RFC recommends). The UDP checksum is zero, as
//! RFC 7348 allows for IPv4. Decapsulation checks every outer header before trimming it.

use std::net::Ipv4Addr;

use super::drop::TunnelDrop;
use crate::packet::PacketBuf;
use crate::packet::checksum;

/// Bytes of outer header: Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
pub const VXLAN_OVERHEAD: usize = 50;
/// Bytes of outer header: Ethernet 14, IPv4 20, GRE with key 8.
pub const GRE_OVERHEAD: usize = 42;
/// GRE protocol type of transparent Ethernet bridging.
pub const ETH_P_TEB: u16 = 0x6558;

/// Tunnel encapsulations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN over UDP.
    Vxlan,
    /// GRE (transparent Ethernet bridging) with a key.
    Gre,
}

/// What decapsulation found in a packet's outer headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunMeta {
    /// Encapsulation it arrived with.
    pub kind: TunnelKind,
    /// VNI.
    pub id: u32,
    /// Outer source address (the remote endpoint).
    pub src: Ipv4Addr,
    /// Outer destination address (ours).
    pub dst: Ipv4Addr,
}

impl Default for TunMeta {
    fn default() -> Self {
        TunMeta {
            kind: TunnelKind::Vxlan,
            id: 0,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// A precomputed outer header for one (next hop, remote, VNI or key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncapHeader {
    bytes: [u8; VXLAN_OVERHEAD],
    len: usize,
    kind: TunnelKind,
    /// One's-complement sum of the template's IPv4 header (length and checksum zero).
    ip_sum: u32,
}

impl EncapHeader {
    /// The outer header of VXLAN packets from `src_ip` (MAC `src_mac`) to `dst_ip` through
    /// the next hop at `dst_mac`.
    #[allow(clippy::too_many_arguments)]
    pub fn vxlan(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        vni: u32,
        dst_port: u16,
        tos: u8,
        ttl: u8,
        df: bool,
    ) -> EncapHeader {
        let mut h = [0u8; VXLAN_OVERHEAD];
        h[0..6].copy_from_slice(&dst_mac);
        h[6..12].copy_from_slice(&src_mac);
        h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut h[14..34];
        ip[0] = 0x45;
        ip[1] = tos;
        // total length (2..4) and checksum (10..12) per packet
        if df {
            ip[6] = 0x40;
        }
        ip[8] = ttl;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src_ip.octets());
        ip[16..20].copy_from_slice(&dst_ip.octets());
        let udp = &mut h[34..42];
        // source port (0..2) and length (4..6) per packet; checksum 0
        udp[2..4].copy_from_slice(&dst_port.to_be_bytes());
        let vx = &mut h[42..50];
        vx[0] = crate::packet::vxlan::FLAG_I;
        vx[4..7].copy_from_slice(&(vni & 0x00ff_ffff).to_be_bytes()[1..4]);
        EncapHeader {
            ip_sum: checksum::sum(&h[14..34]),
            bytes: h,
            len: VXLAN_OVERHEAD,
            kind: TunnelKind::Vxlan,
        }
    }

    /// The outer header of GRE packets with key `key`.
    #[allow(clippy::too_many_arguments)]
    pub fn gre(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        key: u32,
        tos: u8,
        ttl: u8,
        df: bool,
    ) -> EncapHeader {
        let mut e = EncapHeader::vxlan(dst_mac, src_mac, src_ip, dst_ip, 0, 0, tos, ttl, df);
        let h = &mut e.bytes;
        h[14 + 9] = 47;
        h[34..36].copy_from_slice(&crate::packet::gre::FLAG_K.to_be_bytes());
        h[36..38].copy_from_slice(&ETH_P_TEB.to_be_bytes());
        h[38..42].copy_from_slice(&key.to_be_bytes());
        h[42..50].fill(0);
        e.ip_sum = checksum::sum(&h[14..34]);
        e.len = GRE_OVERHEAD;
        e.kind = TunnelKind::Gre;
        e
    }

    /// The next hop's MAC the header was built for.
    pub fn dst_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.bytes[0..6]);
        m
    }

    /// Encapsulates `b` in place. `mtu`: the largest outer IP packet the underlay carries;
    /// bigger results are refused (never sent malformed or fragmented).
    #[inline]
    pub fn push(&self, b: &mut PacketBuf, mtu: u16) -> Result<(), TunnelDrop> {
        let inner = b.len();
        let ip_len = inner + self.len - 14;
        if ip_len > mtu as usize {
            return Err(TunnelDrop::TooBig);
        }
        let sport = match self.kind {
            TunnelKind::Vxlan => 0xc000 | (flow_hash(b.data()) as u16 & 0x3fff),
            TunnelKind::Gre => 0,
        };
        let Some(h) = b.prepend(self.len) else {
            return Err(TunnelDrop::TooBig);
        };
        // Fixed-size copies (inlined moves, no memcpy call).
        match self.kind {
            TunnelKind::Vxlan => h[..VXLAN_OVERHEAD].copy_from_slice(&self.bytes),
            TunnelKind::Gre => h[..GRE_OVERHEAD].copy_from_slice(&self.bytes[..GRE_OVERHEAD]),
        }
        h[16..18].copy_from_slice(&(ip_len as u16).to_be_bytes());
        // The IPv4 checksum from the template's precomputed sum plus the length.
        let mut s = self.ip_sum + ip_len as u32;
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        h[24..26].copy_from_slice(&(!(s as u16)).to_be_bytes());
        if self.kind == TunnelKind::Vxlan {
            h[34..36].copy_from_slice(&sport.to_be_bytes());
            h[38..40].copy_from_slice(&((inner + 16) as u16).to_be_bytes());
        }
        Ok(())
    }

    /// Encapsulates `b` like [`EncapHeader::push`] with `key` as the VNI (its low 24 bits)
    /// or GRE key instead of the template's: neither is covered by the IPv4 checksum, so
    /// one header serves every key (`key=flow`).
    #[inline]
    pub fn push_key(&self, b: &mut PacketBuf, mtu: u16, key: u32) -> Result<(), TunnelDrop> {
        self.push(b, mtu)?;
        let d = b.data_mut();
        match self.kind {
            TunnelKind::Vxlan => d[46..49].copy_from_slice(&key.to_be_bytes()[1..4]),
            TunnelKind::Gre => d[38..42].copy_from_slice(&key.to_be_bytes()),
        }
        Ok(())
    }

    /// Bytes this header adds.
    pub fn overhead(&self) -> usize {
        self.len
    }
}

/// A hash of the inner frame's addresses and ports (the first 40 bytes: Ethernet, IPv4
/// addresses, and the L4 ports of an option-less IPv4 header) for the UDP source port:
/// five 8-byte words folded with multiplies, a few nanoseconds.
#[inline]
fn flow_hash(frame: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0;
    match frame.get(..40) {
        Some(head) => {
            for w in head.chunks_exact(8) {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                h = (h ^ u64::from_le_bytes(a)).wrapping_mul(K).rotate_left(29);
            }
        }
        None => {
            for &x in frame {
                h = (h ^ x as u64).wrapping_mul(K);
            }
        }
    }
    (h ^ (h >> 32)) as u32
}

/// Checks that `b` is a VXLAN or GRE packet for `local` and strips its outer headers,
/// returning the tunnel metadata. On error `b` is unchanged.
pub fn decap(b: &mut PacketBuf, local: Ipv4Addr) -> Result<TunMeta, TunnelDrop> {
    let d = b.data();
    if d.len() < 14 {
        return Err(TunnelDrop::Malformed);
    }
    if d[12..14] != [0x08, 0x00] {
        return Err(TunnelDrop::NotTunnel);
    }
    let ip = &d[14..];
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Err(TunnelDrop::Malformed);
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ihl < 20 || ip.len() < ihl || total < ihl || total > ip.len() {
        return Err(TunnelDrop::Malformed);
    }
    if checksum::data(&ip[..ihl]) != 0 {
        return Err(TunnelDrop::Malformed);
    }
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if dst != local {
        return Err(TunnelDrop::NotTunnel);
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if frag & 0x3fff != 0 {
        return Err(TunnelDrop::Fragment);
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    if ip[9] == 47 {
        return decap_gre(b, ihl, total, src, dst);
    }
    if ip[9] != 17 {
        return Err(TunnelDrop::NotTunnel);
    }
    let udp = &ip[ihl..total];
    if udp.len() < 8 {
        return Err(TunnelDrop::Malformed);
    }
    if u16::from_be_bytes([udp[2], udp[3]]) != crate::packet::vxlan::UDP_PORT {
        return Err(TunnelDrop::NotTunnel);
    }
    let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if ulen < 8 + 8 + 14 || ulen > udp.len() {
        return Err(TunnelDrop::Malformed);
    }
    let vx = &udp[8..16];
    if vx[0] & crate::packet::vxlan::FLAG_I == 0 || vx[0] & !crate::packet::vxlan::FLAG_I != 0 {
        return Err(TunnelDrop::BadFlags);
    }
    let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
    let start = 14 + ihl + 16;
    let inner_len = ulen - 16;
    b.trim_front(start);
    b.truncate(inner_len);
    Ok(TunMeta {
        kind: TunnelKind::Vxlan,
        id: vni,
        src,
        dst,
    })
}

/// The GRE part of [`decap`]: the IPv4 header (`ihl` bytes, `total` in all) is checked.
fn decap_gre(
    b: &mut PacketBuf,
    ihl: usize,
    total: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<TunMeta, TunnelDrop> {
    use crate::packet::gre::{FLAG_C, FLAG_K, FLAG_S};
    let gre = &b.data()[14 + ihl..14 + total];
    if gre.len() < 4 {
        return Err(TunnelDrop::Malformed);
    }
    let flags = u16::from_be_bytes([gre[0], gre[1]]);
    // Version 0 only; no routing (RFC 1701 bits), no recursion, no other flags.
    if flags & !(FLAG_C | FLAG_K | FLAG_S) != 0 {
        return Err(TunnelDrop::BadFlags);
    }
    if u16::from_be_bytes([gre[2], gre[3]]) != ETH_P_TEB {
        return Err(TunnelDrop::NotTunnel);
    }
    let mut off = 4;
    if flags & FLAG_C != 0 {
        off += 4;
    }
    let mut key = 0;
    if flags & FLAG_K != 0 {
        let Some(k) = gre.get(off..off + 4) else {
            return Err(TunnelDrop::Malformed);
        };
        key = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
        off += 4;
    }
    if flags & FLAG_S != 0 {
        off += 4;
    }
    if gre.len() < off + 14 {
        return Err(TunnelDrop::Malformed);
    }
    if flags & FLAG_C != 0 && checksum::data(gre) != 0 {
        return Err(TunnelDrop::Malformed);
    }
    let inner_len = gre.len() - off;
    b.trim_front(14 + ihl + off);
    b.truncate(inner_len);
    Ok(TunMeta {
        kind: TunnelKind::Gre,
        id: key,
        src,
        dst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inner(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        v[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        v[12..14].copy_from_slice(&[0x08, 0x00]);
        for (i, x) in v.iter_mut().enumerate().skip(14) {
            *x = i as u8;
        }
        v
    }

    fn header() -> EncapHeader {
        EncapHeader::vxlan(
            [0xaa; 6],
            [0xbb; 6],
            Ipv4Addr::new(172, 16, 0, 1),
            Ipv4Addr::new(172, 16, 0, 2),
            42,
            4789,
            0,
            64,
            true,
        )
    }

    #[test]
    fn encap_is_valid_vxlan_and_decap_restores_the_frame() {
        let f = inner(100);
        let mut b = PacketBuf::from_frame(&f).expect("frame");
        header().push(&mut b, 1500).expect("encap");
        assert_eq!(b.len(), 150);
        // etherparse agrees on every outer header.
        let wire = b.data().to_vec();
        let p = etherparse::SlicedPacket::from_ethernet(&wire).expect("parse");
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not ipv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.total_len, 136);
        assert!(h.dont_fragment);
        let Some(etherparse::TransportSlice::Udp(u)) = &p.transport else {
            panic!("not udp")
        };
        assert_eq!(u.destination_port(), 4789);
        assert!(u.source_port() >= 49152);
        assert_eq!(u.length(), 116);
        assert_eq!(&u.payload()[..8], &[0x08, 0, 0, 0, 0, 0, 42, 0]);
        // Back at the far end.
        let meta = decap(&mut b, Ipv4Addr::new(172, 16, 0, 2)).expect("decap");
        assert_eq!(b.data(), &f[..]);
        assert_eq!(meta.id, 42);
        assert_eq!(meta.src, Ipv4Addr::new(172, 16, 0, 1));
    }

    #[test]
    fn too_big_for_the_underlay_is_refused() {
        let mut b = PacketBuf::from_frame(&inner(1465)).expect("frame");
        assert_eq!(header().push(&mut b, 1500), Err(TunnelDrop::TooBig));
        assert_eq!(b.len(), 1465);
        let mut b = PacketBuf::from_frame(&inner(1464)).expect("frame");
        assert!(header().push(&mut b, 1500).is_ok());
    }

    #[test]
    fn bad_tunnel_packets_are_refused_by_reason() {
        let local = Ipv4Addr::new(172, 16, 0, 2);
        let mut good = PacketBuf::from_frame(&inner(60)).expect("frame");
        header().push(&mut good, 1500).expect("encap");
        let g = good.data().to_vec();
        let check = |f: &[u8], want: TunnelDrop| {
            let mut b = PacketBuf::from_frame(f).expect("frame");
            assert_eq!(decap(&mut b, local), Err(want), "{f:02x?}");
            assert_eq!(b.data(), f, "unchanged on error");
        };
        let mut bad = g.clone();
        bad[42] = 0x0c; // an unknown flag with I
        check(&bad, TunnelDrop::BadFlags);
        bad[42] = 0; // no I flag
        check(&bad, TunnelDrop::BadFlags);
        let mut frag = g.clone();
        frag[20] |= 0x20; // MF
        let c = checksum::update16(u16::from_be_bytes([frag[24], frag[25]]), 0x4000, 0x6000);
        frag[24..26].copy_from_slice(&c.to_be_bytes());
        check(&frag, TunnelDrop::Fragment);
        let mut other = g.clone();
        other[36..38].copy_from_slice(&53u16.to_be_bytes());
        check(&other, TunnelDrop::NotTunnel);
        let mut csum = g.clone();
        csum[24] ^= 1;
        check(&csum, TunnelDrop::Malformed);
        assert_eq!(
            decap(
                &mut PacketBuf::from_frame(&g).expect("frame"),
                Ipv4Addr::new(1, 2, 3, 4)
            ),
            Err(TunnelDrop::NotTunnel)
        );
        // Cut at every byte: never a panic, never accepted.
        for cut in 0..g.len() - 14 {
            let mut b = PacketBuf::from_frame(&g[..cut]).expect("frame");
            assert!(decap(&mut b, local).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn gre_round_trip_and_refusals() {
        let f = inner(80);
        let local = Ipv4Addr::new(172, 16, 0, 2);
        let h = EncapHeader::gre(
            [0xaa; 6],
            [0xbb; 6],
            Ipv4Addr::new(172, 16, 0, 1),
            local,
            7,
            0,
            64,
            true,
        );
        let mut b = PacketBuf::from_frame(&f).expect("frame");
        h.push(&mut b, 1500).expect("encap");
        assert_eq!(b.len(), 80 + GRE_OVERHEAD);
        let wire = b.data().to_vec();
        let p = etherparse::SlicedPacket::from_ethernet(&wire).expect("parse");
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not ipv4")
        };
        let hdr = ip.header().to_header();
        assert_eq!(hdr.protocol, etherparse::IpNumber::GRE);
        assert_eq!(hdr.header_checksum, hdr.calc_header_checksum());
        assert_eq!(&wire[34..42], &[0x20, 0, 0x65, 0x58, 0, 0, 0, 7]);
        let m = decap(&mut b, local).expect("decap");
        assert_eq!((m.kind, m.id), (TunnelKind::Gre, 7));
        assert_eq!(b.data(), &f[..]);
        // Routing bit, a version, another protocol: refused, unchanged.
        for (at, val, want) in [
            (34usize, 0x40u8, TunnelDrop::BadFlags),
            (35, 0x01, TunnelDrop::BadFlags),
            (36, 0x08, TunnelDrop::NotTunnel),
        ] {
            let mut bad = wire.clone();
            bad[at] = val;
            let mut b = PacketBuf::from_frame(&bad).expect("frame");
            assert_eq!(decap(&mut b, local), Err(want), "byte {at} = {val:#x}");
            assert_eq!(b.data(), &bad[..]);
        }
        // With a checksum (C) that is wrong, then right.
        let mut c = wire[..34].to_vec();
        c.extend_from_slice(&[0xa0, 0, 0x65, 0x58, 0xde, 0xad, 0, 0, 0, 0, 0, 7]);
        c.extend_from_slice(&f);
        let ip_len = (c.len() - 14) as u16;
        c[16..18].copy_from_slice(&ip_len.to_be_bytes());
        c[24..26].copy_from_slice(&[0, 0]);
        let s = checksum::data(&c[14..34]);
        c[24..26].copy_from_slice(&s.to_be_bytes());
        let mut b = PacketBuf::from_frame(&c).expect("frame");
        assert_eq!(decap(&mut b, local), Err(TunnelDrop::Malformed));
        c[38..40].copy_from_slice(&[0, 0]);
        let s = checksum::data(&c[34..]);
        c[38..40].copy_from_slice(&s.to_be_bytes());
        let mut b = PacketBuf::from_frame(&c).expect("frame");
        assert_eq!(decap(&mut b, local).map(|m| m.id), Ok(7));
        assert_eq!(b.data(), &f[..]);
        // Cut at every byte.
        for cut in 0..wire.len() - 14 {
            let mut b = PacketBuf::from_frame(&wire[..cut]).expect("frame");
            assert!(decap(&mut b, local).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn decap_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = PacketBuf::from_frame(&data).expect("frame");
            let _ = decap(&mut b, Ipv4Addr::new(172, 16, 0, 2));
        }

        #[test]
        fn encap_then_decap_is_identity(len in 14usize..1400, vni in 0u32..0x0100_0000) {
            let f = inner(len);
            let mut b = PacketBuf::from_frame(&f).expect("frame");
            let h = EncapHeader::vxlan([1; 6], [2; 6], Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), vni, 4789, 0, 64, true);
            h.push(&mut b, 1500).expect("encap");
            let m = decap(&mut b, Ipv4Addr::new(10, 0, 0, 2)).expect("decap");
            prop_assert_eq!(b.data(), &f[..]);
            prop_assert_eq!(m.id, vni);
        }
    }
}
