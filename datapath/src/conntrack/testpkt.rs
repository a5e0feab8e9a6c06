//! Frames for the tracker's tests: Ethernet + IPv4/IPv6 + TCP/UDP/ICMP, checksums right.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet::{PacketBuf, checksum};

/// An IPv4 or IPv6 address for a builder.
#[derive(Clone, Copy, Debug)]
pub enum A {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

pub fn v4(s: &str) -> A {
    A::V4(s.parse().expect("v4"))
}

pub fn v6(s: &str) -> A {
    A::V6(s.parse().expect("v6"))
}

impl A {
    pub fn bits(self) -> u128 {
        match self {
            A::V4(a) => u32::from(a) as u128,
            A::V6(a) => u128::from(a),
        }
    }
    fn is_v6(self) -> bool {
        matches!(self, A::V6(_))
    }
    fn octets(self) -> Vec<u8> {
        match self {
            A::V4(a) => a.octets().to_vec(),
            A::V6(a) => a.octets().to_vec(),
        }
    }
}

/// An IP packet (no Ethernet header) carrying `l4` of protocol `proto`, transport checksum
/// filled at `csum_at` (offset in `l4`; ICMPv4's covers no pseudo-header).
pub fn ip(src: A, dst: A, proto: u8, mut l4: Vec<u8>, csum_at: Option<usize>) -> Vec<u8> {
    let v6 = src.is_v6();
    if let Some(c) = csum_at {
        l4[c] = 0;
        l4[c + 1] = 0;
        let pseudo = if v6 {
            checksum::sum(&src.octets())
                + checksum::sum(&dst.octets())
                + proto as u32
                + l4.len() as u32
        } else if proto == 1 {
            0
        } else {
            checksum::sum(&src.octets())
                + checksum::sum(&dst.octets())
                + proto as u32
                + l4.len() as u32
        };
        let v = checksum::finish(&[pseudo, checksum::sum(&l4)]);
        let v = if proto == 17 && v == 0 { 0xffff } else { v };
        l4[c..c + 2].copy_from_slice(&v.to_be_bytes());
    }
    let mut p = Vec::new();
    if v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        p.push(proto);
        p.push(64);
        p.extend(src.octets());
        p.extend(dst.octets());
    } else {
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34, 0, 0, 64, proto, 0, 0]);
        p.extend(src.octets());
        p.extend(dst.octets());
        let c = checksum::data(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    p.extend(l4);
    p
}

/// Ethernet around an IP packet.
pub fn eth(ipp: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(if ipp[0] >> 4 == 6 {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    f.extend_from_slice(ipp);
    f
}

pub fn udp_l4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub fn udp(src: A, dst: A, sport: u16, dport: u16) -> Vec<u8> {
    let proto = 17;
    eth(&ip(
        src,
        dst,
        proto,
        udp_l4(sport, dport, b"hello"),
        Some(6),
    ))
}

/// TCP flags.
pub const FIN: u16 = 0x01;
pub const SYN: u16 = 0x02;
pub const RST: u16 = 0x04;
pub const ACK: u16 = 0x10;

/// A TCP segment; `wscale` adds the window scale option (with padding).
#[allow(clippy::too_many_arguments)]
pub fn tcp_l4(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    win: u16,
    wscale: Option<u8>,
    len: usize,
) -> Vec<u8> {
    let opts: Vec<u8> = wscale.map_or(vec![], |s| vec![1, 3, 3, s]);
    let doff = 20 + opts.len();
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&(((doff as u16 / 4) << 12) | flags).to_be_bytes());
    t.extend_from_slice(&win.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend(opts);
    t.extend(std::iter::repeat_n(0xab, len));
    t
}

#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: A,
    dst: A,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    len: usize,
) -> Vec<u8> {
    eth(&ip(
        src,
        dst,
        6,
        tcp_l4(sport, dport, seq, ack, flags, 65535, None, len),
        Some(16),
    ))
}

/// An echo request (`reply` false) or reply.
pub fn echo(src: A, dst: A, id: u16, reply: bool) -> Vec<u8> {
    let v6 = src.is_v6();
    let ty = match (v6, reply) {
        (false, false) => 8,
        (false, true) => 0,
        (true, false) => 128,
        (true, true) => 129,
    };
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0xde, 0xad]);
    eth(&ip(src, dst, if v6 { 58 } else { 1 }, m, Some(2)))
}

/// An ICMP error (destination unreachable, port unreachable) quoting `quoted` (an IP
/// packet, cut to its first 28 bytes over IPv4 as routers do; whole over IPv6).
pub fn icmp_error(src: A, dst: A, quoted: &[u8]) -> Vec<u8> {
    let v6 = src.is_v6();
    let mut m = if v6 {
        vec![1, 4, 0, 0, 0, 0, 0, 0]
    } else {
        vec![3, 3, 0, 0, 0, 0, 0, 0]
    };
    let n = if v6 {
        quoted.len()
    } else {
        quoted.len().min(28)
    };
    m.extend_from_slice(&quoted[..n]);
    eth(&ip(src, dst, if v6 { 58 } else { 1 }, m, Some(2)))
}

/// The IP packet inside an Ethernet frame (no VLAN).
pub fn strip(f: &[u8]) -> Vec<u8> {
    f[14..].to_vec()
}

pub fn buf(f: &[u8]) -> PacketBuf {
    PacketBuf::from_frame(f).expect("frame fits")
}

/// True when every checksum of the frame is right (IPv4 header, transport, an ICMP error's
/// own).
pub fn checksums_ok(f: &[u8]) -> bool {
    super::tuple::parse(f, 0, true).is_ok()
}
