//! VXLAN (RFC 7348) and GRE with transparent Ethernet bridging (RFC 2784/2890, with the
//! key) encapsulation and decapsulation on packet buffers, IPv4 underlay.
//!
//! GRE headers carry the key (K flag) and protocol 0x6558; received GRE may also carry a
//! checksum (verified) and a sequence number (ignored); routing and other versions are
//! refused.
//!
//! Encapsulation writes a precomputed outer header (Ethernet, IPv4, then UDP and VXLAN, 50
//! bytes, or GRE with the key, 42) into the buffer's headroom and patches the per-packet
//! fields: IPv4 total length and header checksum, and for VXLAN the UDP length and a UDP
//! source port hashed from the inner flow so that underlay ECMP spreads flows
//! (49152..=65535, as the RFC recommends). The UDP checksum is zero, as RFC 7348 allows for
//! IPv4. Decapsulation checks every outer header before trimming it. Both read and write
//! the headers through the [`crate::packet`] views.

use std::net::Ipv4Addr;

use super::drop::TunnelDrop;
use crate::packet::{PacketBuf, checksum, ethernet, ethertype, gre, ip_proto, ipv4, udp, vxlan};
use crate::types::MacAddr;

/// Bytes of outer header: Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
pub const VXLAN_OVERHEAD: usize = 50;
/// Bytes of outer header: Ethernet 14, IPv4 20, GRE with key 8.
pub const GRE_OVERHEAD: usize = 42;
/// GRE protocol type of transparent Ethernet bridging.
pub const ETH_P_TEB: u16 = ethertype::TEB;

/// Where the outer headers start.
const IP: usize = ethernet::HEADER_LEN;
const L4: usize = IP + ipv4::HEADER_LEN;
const VXLAN: usize = L4 + udp::HEADER_LEN;

/// What decapsulation found in a packet's outer headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunMeta {
    /// Encapsulation it arrived with.
    pub kind: TunnelKind,
    /// VNI or GRE key.
    pub id: u32,
    /// Outer source address (the remote endpoint).
    pub src: Ipv4Addr,
    /// Outer destination address (ours).
    pub dst: Ipv4Addr,
}

/// Tunnel encapsulations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN over UDP.
    Vxlan,
    /// GRE (transparent Ethernet bridging) with a key.
    Gre,
}

/// The outer addresses and IP fields of a tunnel (what both encapsulations share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    /// The next hop's MAC address.
    pub dst_mac: [u8; 6],
    /// Ours.
    pub src_mac: [u8; 6],
    /// Our underlay address.
    pub src_ip: Ipv4Addr,
    /// The remote endpoint.
    pub dst_ip: Ipv4Addr,
    /// Outer TOS.
    pub tos: u8,
    /// Outer TTL.
    pub ttl: u8,
    /// Set DF.
    pub df: bool,
}

impl Outer {
    /// From `src_ip` (MAC `src_mac`) to `dst_ip` through the next hop at `dst_mac`, with a
    /// tunnel port's default IP fields: TOS 0, TTL 64, DF set.
    pub fn new(dst_mac: [u8; 6], src_mac: [u8; 6], src_ip: Ipv4Addr, dst_ip: Ipv4Addr) -> Outer {
        Outer {
            dst_mac,
            src_mac,
            src_ip,
            dst_ip,
            tos: 0,
            ttl: 64,
            df: true,
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
    /// The outer header of VXLAN packets with VNI `vni` to UDP port `dst_port`.
    pub fn vxlan(o: &Outer, vni: u32, dst_port: u16) -> EncapHeader {
        let mut h = [0u8; VXLAN_OVERHEAD];
        Self::emit_outer(&mut h, o, ip_proto::UDP);
        udp::Repr {
            src_port: 0,
            dst_port,
            payload_len: 0,
        }
        .emit(&mut udp::Packet::new_unchecked(&mut h[L4..VXLAN]));
        vxlan::Repr {
            vni: vni & 0x00ff_ffff,
        }
        .emit(&mut vxlan::Packet::new_unchecked(&mut h[VXLAN..]));
        Self::template(h, VXLAN_OVERHEAD, TunnelKind::Vxlan)
    }

    /// The outer header of GRE packets with key `key`.
    pub fn gre(o: &Outer, key: u32) -> EncapHeader {
        let mut h = [0u8; VXLAN_OVERHEAD];
        Self::emit_outer(&mut h, o, ip_proto::GRE);
        gre::Repr {
            protocol: ETH_P_TEB,
            checksum: false,
            key: Some(key),
            seq: None,
        }
        .emit(&mut gre::Packet::new_unchecked(&mut h[L4..GRE_OVERHEAD]));
        Self::template(h, GRE_OVERHEAD, TunnelKind::Gre)
    }

    /// Ethernet and IPv4 of a template (the IPv4 length and checksum are written per
    /// packet).
    fn emit_outer(h: &mut [u8; VXLAN_OVERHEAD], o: &Outer, protocol: u8) {
        ethernet::Repr {
            src_addr: MacAddr(o.src_mac),
            dst_addr: MacAddr(o.dst_mac),
            ethertype: ethertype::IPV4,
        }
        .emit(&mut ethernet::Packet::new_unchecked(&mut h[..IP]));
        let mut ip = ipv4::Packet::new_unchecked(&mut h[IP..L4]);
        ipv4::Repr {
            src_addr: o.src_ip,
            dst_addr: o.dst_ip,
            protocol,
            payload_len: 0,
            ttl: o.ttl,
            tos: o.tos,
            ident: 0,
            dont_frag: o.df,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut ip);
        ip.set_total_len(0);
        ip.set_checksum(0);
    }

    fn template(bytes: [u8; VXLAN_OVERHEAD], len: usize, kind: TunnelKind) -> EncapHeader {
        EncapHeader {
            ip_sum: checksum::sum(&bytes[IP..L4]),
            bytes,
            len,
            kind,
        }
    }

    /// The next hop's MAC the header was built for.
    pub fn dst_mac(&self) -> [u8; 6] {
        ethernet::Packet::new_unchecked(&self.bytes[..])
            .dst_addr()
            .0
    }

    /// Encapsulates `b` in place. `mtu`: the largest outer IP packet the underlay carries;
    /// bigger results are refused (never sent malformed or fragmented).
    #[inline]
    pub fn push(&self, b: &mut PacketBuf, mtu: u16) -> Result<(), TunnelDrop> {
        let inner = b.len();
        let ip_len = inner + self.len - IP;
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
        let mut ip = ipv4::Packet::new_unchecked(&mut h[IP..L4]);
        ip.set_total_len(ip_len as u16);
        // The IPv4 checksum from the template's precomputed sum plus the length.
        let mut s = self.ip_sum + ip_len as u32;
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        ip.set_checksum(!(s as u16));
        if self.kind == TunnelKind::Vxlan {
            let mut u = udp::Packet::new_unchecked(&mut h[L4..VXLAN]);
            u.set_src_port(sport);
            u.set_len((inner + udp::HEADER_LEN + vxlan::HEADER_LEN) as u16);
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
            TunnelKind::Vxlan => vxlan::Packet::new_unchecked(&mut d[VXLAN..]).set_vni(key),
            TunnelKind::Gre => gre::Packet::new_unchecked(&mut d[L4..]).set_key(key),
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
    let eth = ethernet::Packet::new_checked(b.data()).map_err(|_| TunnelDrop::Malformed)?;
    if eth.ethertype() != ethertype::IPV4 {
        return Err(TunnelDrop::NotTunnel);
    }
    // Version 4, a header of at least 20 bytes, a total length within the frame.
    let ip = ipv4::Packet::new_checked(eth.payload()).map_err(|_| TunnelDrop::Malformed)?;
    if !ip.verify_checksum() {
        return Err(TunnelDrop::Malformed);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if dst != local {
        return Err(TunnelDrop::NotTunnel);
    }
    if ip.is_fragment() {
        return Err(TunnelDrop::Fragment);
    }
    let outer = IP + ip.header_len() as usize;
    let (vni, start, inner_len) = match ip.protocol() {
        ip_proto::GRE => {
            let (key, off, inner_len) = decap_gre(ip.payload())?;
            let m = TunMeta {
                kind: TunnelKind::Gre,
                id: key,
                src,
                dst,
            };
            b.trim_front(outer + off);
            b.truncate(inner_len);
            return Ok(m);
        }
        ip_proto::UDP => decap_vxlan(ip.payload())?,
        _ => return Err(TunnelDrop::NotTunnel),
    };
    b.trim_front(outer + start);
    b.truncate(inner_len);
    Ok(TunMeta {
        kind: TunnelKind::Vxlan,
        id: vni,
        src,
        dst,
    })
}

/// The VXLAN part of [`decap`] over the IPv4 payload: (VNI, where the inner frame starts,
/// its length).
#[inline(always)]
fn decap_vxlan(l4: &[u8]) -> Result<(u32, usize, usize), TunnelDrop> {
    if l4.len() < udp::HEADER_LEN {
        return Err(TunnelDrop::Malformed);
    }
    let u = udp::Packet::new_unchecked(l4);
    if u.dst_port() != vxlan::UDP_PORT {
        return Err(TunnelDrop::NotTunnel);
    }
    let ulen = u.len() as usize;
    if ulen < udp::HEADER_LEN + vxlan::HEADER_LEN + ethernet::HEADER_LEN || ulen > l4.len() {
        return Err(TunnelDrop::Malformed);
    }
    let vx = vxlan::Packet::new_unchecked(&l4[udp::HEADER_LEN..]);
    if vx.flags() != vxlan::FLAG_I {
        return Err(TunnelDrop::BadFlags);
    }
    let start = udp::HEADER_LEN + vxlan::HEADER_LEN;
    Ok((vx.vni(), start, ulen - start))
}

/// The GRE part of [`decap`] over the IPv4 payload: (key, where the inner frame starts,
/// its length).
fn decap_gre(l4: &[u8]) -> Result<(u32, usize, usize), TunnelDrop> {
    use crate::packet::gre::{FLAG_C, FLAG_K, FLAG_S};
    if l4.len() < 4 {
        return Err(TunnelDrop::Malformed);
    }
    let g = gre::Packet::new_unchecked(l4);
    let flags = g.flags();
    // Version 0 only; no routing (RFC 1701 bits), no recursion, no other flags.
    if flags & !(FLAG_C | FLAG_K | FLAG_S) != 0 {
        return Err(TunnelDrop::BadFlags);
    }
    if g.protocol() != ETH_P_TEB {
        return Err(TunnelDrop::NotTunnel);
    }
    let off = g.header_len();
    if l4.len() < off + ethernet::HEADER_LEN {
        return Err(TunnelDrop::Malformed);
    }
    if !g.verify_checksum() {
        return Err(TunnelDrop::Malformed);
    }
    Ok((g.key().unwrap_or(0), off, l4.len() - off))
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
        let o = Outer::new(
            [0xaa; 6],
            [0xbb; 6],
            Ipv4Addr::new(172, 16, 0, 1),
            Ipv4Addr::new(172, 16, 0, 2),
        );
        EncapHeader::vxlan(&o, 42, 4789)
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
        let o = Outer::new([0xaa; 6], [0xbb; 6], Ipv4Addr::new(172, 16, 0, 1), local);
        let h = EncapHeader::gre(&o, 7);
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
            let o = Outer::new([1; 6], [2; 6], Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
            let h = EncapHeader::vxlan(&o, vni, 4789);
            h.push(&mut b, 1500).expect("encap");
            let m = decap(&mut b, Ipv4Addr::new(10, 0, 0, 2)).expect("decap");
            prop_assert_eq!(b.data(), &f[..]);
            prop_assert_eq!(m.id, vni);
        }
    }
}
