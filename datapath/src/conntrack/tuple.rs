//! Connection tuples, and reading one out of a frame.
//!
//! What: a [`Tuple`] is what identifies one direction of a connection: addresses, ports (or
//! the ICMP identifier and types), IP protocol, family and zone. [`parse`] reads it from an
//! Ethernet frame (up to two VLAN tags, IPv4 or IPv6 with extension headers, TCP, UDP,
//! ICMP, ICMPv6 or any other protocol without ports), checking every length and, when asked,
//! the IPv4 header and transport checksums, as Open vSwitch's userspace tracker does. An
//! ICMP error yields the tuple of the connection it quotes, seen in the direction the error
//! travels (`related`). Fragments are reported as such: the reassembler takes them.
//!
//! Thread-safety: plain functions over borrowed bytes.

use crate::packet::{be16, be32, be128, checksum, ethertype, ip_proto};

use super::CtInvalid;

/// One direction of a connection. Addresses are host-order integers (IPv4 in the low 32
/// bits). For ICMP and ICMPv6 echo, `sport` is the identifier and `dport` is the message type
/// in its high byte and the type of the answer in its low byte, so [`Tuple::reverse`] of a
/// request is the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// Source port (ICMP: identifier).
    pub sport: u16,
    /// Destination port (ICMP: type << 8 | answer type).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// True for IPv6.
    pub v6: bool,
    /// Conntrack zone.
    pub zone: u16,
}

/// Words a tuple is stored as.
pub(crate) const WORDS: usize = 5;

impl Tuple {
    /// True for ICMP or ICMPv6 (identifier and types instead of ports).
    #[inline]
    pub fn is_icmp(&self) -> bool {
        self.proto == ip_proto::ICMP && !self.v6 || self.proto == ip_proto::ICMPV6 && self.v6
    }

    /// True when the protocol has ports (or an ICMP identifier) NAT can change.
    #[inline]
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, ip_proto::TCP | ip_proto::UDP) || self.is_icmp()
    }

    /// The other direction.
    #[inline]
    pub fn reverse(&self) -> Tuple {
        let (sport, dport) = if self.is_icmp() {
            (self.sport, self.dport.rotate_left(8))
        } else {
            (self.dport, self.sport)
        };
        Tuple {
            src: self.dst,
            dst: self.src,
            sport,
            dport,
            ..*self
        }
    }

    /// The ICMP message type of this direction (ICMP tuples only).
    #[inline]
    pub fn icmp_type(&self) -> u8 {
        (self.dport >> 8) as u8
    }

    /// Stored form.
    #[inline]
    pub(crate) fn words(&self) -> [u64; WORDS] {
        [
            (self.src >> 64) as u64,
            self.src as u64,
            (self.dst >> 64) as u64,
            self.dst as u64,
            (self.sport as u64) << 48
                | (self.dport as u64) << 32
                | (self.proto as u64) << 24
                | (self.v6 as u64) << 16
                | self.zone as u64,
        ]
    }

    /// Back from [`Tuple::words`].
    pub(crate) fn from_words(w: &[u64; WORDS]) -> Tuple {
        Tuple {
            src: (w[0] as u128) << 64 | w[1] as u128,
            dst: (w[2] as u128) << 64 | w[3] as u128,
            sport: (w[4] >> 48) as u16,
            dport: (w[4] >> 32) as u16,
            proto: (w[4] >> 24) as u8,
            v6: (w[4] >> 16) & 1 != 0,
            zone: w[4] as u16,
        }
    }

    /// Hash keyed by `seed`, the same for a tuple and its reverse (so both directions of a
    /// connection without NAT land in one shard and one probe sequence).
    #[inline]
    pub(crate) fn hash(&self, seed: u64) -> u64 {
        let (a, b) = if self.is_icmp() {
            (self.sport, self.sport)
        } else {
            (self.sport, self.dport)
        };
        let ep = |addr: u128, port: u16| {
            mix(
                (addr >> 64) as u64 ^ seed,
                (addr as u64) ^ (port as u64) << 7 ^ seed >> 3,
            )
        };
        let sym = ep(self.src, a).wrapping_add(ep(self.dst, b));
        let rest = (self.proto as u64) << 24 | (self.v6 as u64) << 16 | self.zone as u64;
        mix(sym ^ seed.rotate_left(17), rest ^ 0x9e37_79b9_7f4a_7c15)
    }
}

/// Folded 64×64→128 multiply.
#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let p = (a ^ 0xa076_1d64_78bd_642f) as u128 * (b ^ 0xe703_7ed1_a0b4_28db) as u128;
    (p as u64) ^ (p >> 64) as u64
}

/// The ICMP type answering `t`, for the types that start a connection (echo, timestamp,
/// information request and their replies); `None` for any other.
pub(crate) fn icmp_reverse_type(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        _ => return None,
    })
}

/// The ICMPv6 type answering `t` (echo only).
pub(crate) fn icmpv6_reverse_type(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        _ => return None,
    })
}

/// What [`parse`] found in a frame.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Parsed {
    /// The connection's tuple in this packet's direction (for an ICMP error, the reverse of
    /// the quoted packet's).
    pub tuple: Tuple,
    /// An ICMP error quoting a packet of `tuple`'s connection.
    pub related: bool,
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the transport header (of the ICMP header for an error).
    pub l4: usize,
    /// End of the IP datagram (padding excluded).
    pub end: usize,
    /// For an ICMP error: offsets of the quoted IP and transport headers.
    pub inner_l3: usize,
    /// See `inner_l3`.
    pub inner_l4: usize,
    /// The quoted packet's protocol header length available (bytes from `inner_l4` to `end`).
    pub inner_l4_len: usize,
}

/// Not a plain packet: what the caller must do instead of tracking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unparsed {
    /// Malformed or untrackable, for this reason.
    Invalid(CtInvalid),
    /// An IP fragment (IPv4 with MF or an offset, IPv6 with a fragment header): the IP header
    /// is at `l3`.
    Fragment { l3: usize, v6: bool },
}

/// The IP header's offset after Ethernet and up to two VLAN tags, and the ethertype.
#[inline]
pub(crate) fn l3_of(f: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    let mut ty = be16(f.get(..14)?, 12);
    let mut tags = 0;
    while ty == ethertype::VLAN || ty == ethertype::QINQ {
        if tags == 2 || f.len() < off + 6 {
            return None;
        }
        off += 4;
        ty = be16(f, off);
        tags += 1;
    }
    Some((off + 2, ty))
}

/// Walks IPv6 extension headers from the one of type `next` at `p` (bounded: at most 8).
/// Returns (protocol, its offset, fragment header offset if one was seen).
pub(crate) fn ipv6_exts(
    f: &[u8],
    mut next: u8,
    mut p: usize,
    end: usize,
) -> Option<(u8, usize, Option<usize>)> {
    let mut frag = None;
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                if p + 8 > end {
                    return None;
                }
                next = f[p];
                p += (f[p + 1] as usize + 1) * 8;
            }
            51 => {
                if p + 8 > end {
                    return None;
                }
                next = f[p];
                p += (f[p + 1] as usize + 2) * 4;
            }
            44 => {
                if p + 8 > end {
                    return None;
                }
                frag = Some(p);
                next = f[p];
                p += 8;
            }
            _ => return (p <= end).then_some((next, p, frag)),
        }
    }
    None
}

/// Reads the tuple of `f` for `zone`. `verify` checks the IPv4 header and transport
/// checksums (an ICMP error's quoted packet is never checksummed: it is usually cut short).
pub(crate) fn parse(f: &[u8], zone: u16, verify: bool) -> Result<Parsed, Unparsed> {
    use CtInvalid as I;
    let Some((l3, ty)) = l3_of(f) else {
        return Err(Unparsed::Invalid(I::NotIp));
    };
    let mut p = Parsed {
        l3,
        ..Parsed::default()
    };
    p.tuple.zone = zone;
    match ty {
        ethertype::IPV4 => {
            let (proto, l4, end) = ipv4_header(f, l3, verify).map_err(Unparsed::Invalid)?;
            if be16(f, l3 + 6) & 0x3fff != 0 {
                return Err(Unparsed::Fragment { l3, v6: false });
            }
            p.tuple.src = be32(f, l3 + 12) as u128;
            p.tuple.dst = be32(f, l3 + 16) as u128;
            p.tuple.proto = proto;
            p.l4 = l4;
            p.end = end;
        }
        ethertype::IPV6 => {
            if f.len() < l3 + 40 {
                return Err(Unparsed::Invalid(I::BadIpHeader));
            }
            let end = l3 + 40 + be16(f, l3 + 4) as usize;
            if end > f.len() {
                return Err(Unparsed::Invalid(I::BadIpHeader));
            }
            let Some((proto, l4, frag)) = ipv6_exts(f, f[l3 + 6], l3 + 40, end) else {
                return Err(Unparsed::Invalid(I::BadIpHeader));
            };
            if frag.is_some() {
                return Err(Unparsed::Fragment { l3, v6: true });
            }
            p.tuple.v6 = true;
            p.tuple.src = be128(f, l3 + 8);
            p.tuple.dst = be128(f, l3 + 24);
            p.tuple.proto = proto;
            p.l4 = l4;
            p.end = end;
        }
        _ => return Err(Unparsed::Invalid(I::NotIp)),
    }
    l4_outer(f, &mut p, verify).map_err(Unparsed::Invalid)?;
    Ok(p)
}

/// Checks an IPv4 header at `l3`: (protocol, transport offset, datagram end).
fn ipv4_header(f: &[u8], l3: usize, verify: bool) -> Result<(u8, usize, usize), CtInvalid> {
    if f.len() < l3 + 20 || f[l3] >> 4 != 4 {
        return Err(CtInvalid::BadIpHeader);
    }
    let ihl = (f[l3] & 0x0f) as usize * 4;
    let total = be16(f, l3 + 2) as usize;
    if ihl < 20 || total < ihl || l3 + total > f.len() {
        return Err(CtInvalid::BadIpHeader);
    }
    if verify && checksum::data(&f[l3..l3 + ihl]) != 0 {
        return Err(CtInvalid::BadIpChecksum);
    }
    Ok((f[l3 + 9], l3 + ihl, l3 + total))
}

/// The transport part of an outer packet: ports, checksum, ICMP types and errors.
fn l4_outer(f: &[u8], p: &mut Parsed, verify: bool) -> Result<(), CtInvalid> {
    let (l4, end) = (p.l4, p.end);
    let len = end - l4;
    let t = &mut p.tuple;
    match t.proto {
        ip_proto::TCP => {
            if len < 20 {
                return Err(CtInvalid::BadL4Header);
            }
            let doff = (f[l4 + 12] >> 4) as usize * 4;
            if doff < 20 || doff > len {
                return Err(CtInvalid::BadL4Header);
            }
            if verify && !l4_checksum_ok(f, p.l3, l4, end, t) {
                return Err(CtInvalid::BadL4Checksum);
            }
            ports(f, l4, t)
        }
        ip_proto::UDP => {
            if len < 8 {
                return Err(CtInvalid::BadL4Header);
            }
            let ulen = be16(f, l4 + 4) as usize;
            if ulen < 8 || ulen > len {
                return Err(CtInvalid::BadL4Header);
            }
            let zero_ok = !t.v6 && be16(f, l4 + 6) == 0;
            if verify && !zero_ok && !l4_checksum_ok(f, p.l3, l4, end, t) {
                return Err(CtInvalid::BadL4Checksum);
            }
            ports(f, l4, t)
        }
        ip_proto::ICMP if !t.v6 => {
            if len < 8 {
                return Err(CtInvalid::BadL4Header);
            }
            if verify && checksum::data(&f[l4..end]) != 0 {
                return Err(CtInvalid::BadL4Checksum);
            }
            let (ty, code) = (f[l4], f[l4 + 1]);
            if let Some(rev) = icmp_reverse_type(ty) {
                if code != 0 {
                    return Err(CtInvalid::IcmpUnsupported);
                }
                t.sport = be16(f, l4 + 4);
                t.dport = (ty as u16) << 8 | rev as u16;
                return Ok(());
            }
            if matches!(ty, 3 | 4 | 5 | 11 | 12) {
                return icmp_error(f, p, l4 + 8);
            }
            Err(CtInvalid::IcmpUnsupported)
        }
        ip_proto::ICMPV6 if t.v6 => {
            if len < 8 {
                return Err(CtInvalid::BadL4Header);
            }
            if verify && !l4_checksum_ok(f, p.l3, l4, end, t) {
                return Err(CtInvalid::BadL4Checksum);
            }
            let (ty, code) = (f[l4], f[l4 + 1]);
            if let Some(rev) = icmpv6_reverse_type(ty) {
                if code != 0 {
                    return Err(CtInvalid::IcmpUnsupported);
                }
                t.sport = be16(f, l4 + 4);
                t.dport = (ty as u16) << 8 | rev as u16;
                return Ok(());
            }
            if (1..=4).contains(&ty) {
                return icmp_error(f, p, l4 + 8);
            }
            Err(CtInvalid::IcmpUnsupported)
        }
        // Any other protocol is tracked by addresses alone.
        _ => Ok(()),
    }
}

fn ports(f: &[u8], l4: usize, t: &mut Tuple) -> Result<(), CtInvalid> {
    t.sport = be16(f, l4);
    t.dport = be16(f, l4 + 2);
    if t.sport == 0 || t.dport == 0 {
        Err(CtInvalid::PortZero)
    } else {
        Ok(())
    }
}

/// The transport checksum over the IPv4 or IPv6 pseudo-header.
fn l4_checksum_ok(f: &[u8], l3: usize, l4: usize, end: usize, t: &Tuple) -> bool {
    let seg = &f[l4..end];
    let pseudo = if t.v6 {
        checksum::sum(&f[l3 + 8..l3 + 40])
            + t.proto as u32
            + (seg.len() as u32 >> 16)
            + (seg.len() as u32 & 0xffff)
    } else {
        checksum::sum(&f[l3 + 12..l3 + 20]) + t.proto as u32 + seg.len() as u32
    };
    checksum::finish(&[pseudo, checksum::sum(seg)]) == 0
}

/// An ICMP error whose quoted packet starts at `il3`: the tuple becomes the reverse of the
/// quoted packet's (the direction the error travels), which must be addressed from where
/// the error goes.
fn icmp_error(f: &[u8], p: &mut Parsed, il3: usize) -> Result<(), CtInvalid> {
    let end = p.end;
    let outer_dst = p.tuple.dst;
    let mut q = Tuple {
        zone: p.tuple.zone,
        v6: p.tuple.v6,
        ..Tuple::default()
    };
    let il4 = if !q.v6 {
        if end < il3 + 20 || f[il3] >> 4 != 4 {
            return Err(CtInvalid::IcmpErrorBadInner);
        }
        let ihl = (f[il3] & 0x0f) as usize * 4;
        // A later fragment has no transport header to identify a connection by.
        if ihl < 20 || end < il3 + ihl || be16(f, il3 + 6) & 0x1fff != 0 {
            return Err(CtInvalid::IcmpErrorBadInner);
        }
        q.src = be32(f, il3 + 12) as u128;
        q.dst = be32(f, il3 + 16) as u128;
        q.proto = f[il3 + 9];
        il3 + ihl
    } else {
        if end < il3 + 40 || f[il3] >> 4 != 6 {
            return Err(CtInvalid::IcmpErrorBadInner);
        }
        let Some((proto, il4, frag)) = ipv6_exts(f, f[il3 + 6], il3 + 40, end) else {
            return Err(CtInvalid::IcmpErrorBadInner);
        };
        if frag.is_some() {
            return Err(CtInvalid::IcmpErrorBadInner);
        }
        q.src = be128(f, il3 + 8);
        q.dst = be128(f, il3 + 24);
        q.proto = proto;
        il4
    };
    if q.src != outer_dst {
        return Err(CtInvalid::IcmpErrorBadInner);
    }
    let avail = end - il4;
    match q.proto {
        // 8 bytes of the quoted transport header are all RFC 792 promises (the ports); over
        // IPv6 the whole TCP header is, as Open vSwitch asks.
        ip_proto::TCP if avail >= if q.v6 { 20 } else { 8 } => {
            ports(f, il4, &mut q).map_err(|_| CtInvalid::IcmpErrorBadInner)?
        }
        ip_proto::UDP if avail >= 8 => {
            ports(f, il4, &mut q).map_err(|_| CtInvalid::IcmpErrorBadInner)?
        }
        ip_proto::TCP | ip_proto::UDP => return Err(CtInvalid::IcmpErrorBadInner),
        ip_proto::ICMP | ip_proto::ICMPV6 if q.is_icmp() => {
            let rev = if q.v6 {
                icmpv6_reverse_type
            } else {
                icmp_reverse_type
            };
            if avail < 8 || f[il4 + 1] != 0 {
                return Err(CtInvalid::IcmpErrorBadInner);
            }
            let Some(r) = rev(f[il4]) else {
                return Err(CtInvalid::IcmpErrorBadInner);
            };
            q.sport = be16(f, il4 + 4);
            q.dport = (f[il4] as u16) << 8 | r as u16;
        }
        _ => {}
    }
    p.tuple = q.reverse();
    p.related = true;
    p.inner_l3 = il3;
    p.inner_l4 = il4;
    p.inner_l4_len = avail;
    Ok(())
}

/// The fields of a TCP segment the window tracker reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Flag bits (low 12 bits of the offset/flags word).
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Window field (unscaled).
    pub win: u16,
    /// Payload bytes.
    pub len: u32,
    /// The window scale option: `WSCALE_FLAG | shift` when present, else 0.
    pub wscale: u8,
}

/// Largest window scale shift (RFC 7323).
pub(crate) const MAX_WSCALE: u8 = 14;
/// Set in a peer's `wscale` when it sent the option.
pub(crate) const WSCALE_FLAG: u8 = 0x80;
/// Set in a peer's `wscale` when the connection was picked up mid-stream.
pub(crate) const WSCALE_UNKNOWN: u8 = 0x40;
/// The shift bits of `wscale`.
pub(crate) const WSCALE_MASK: u8 = 0x0f;

/// Reads the segment at `l4` (checked by [`parse`]), ending at `end`.
pub(crate) fn segment(f: &[u8], l4: usize, end: usize) -> Segment {
    let doff = (f[l4 + 12] >> 4) as usize * 4;
    let flags = be16(f, l4 + 12) & 0x0fff;
    let mut wscale = 0;
    if flags & 0x002 != 0 {
        // Options: kind 0 ends, 1 pads, 3 is the window scale; others have a length.
        let (mut o, stop) = (l4 + 20, l4 + doff);
        while o + 3 <= stop {
            match f[o] {
                0 => break,
                1 => o += 1,
                k => {
                    if k == 3 {
                        wscale = f[o + 2].min(MAX_WSCALE) | WSCALE_FLAG;
                    }
                    o += (f[o + 1] as usize).max(2);
                }
            }
        }
    }
    Segment {
        flags,
        seq: be32(f, l4 + 4),
        ack: be32(f, l4 + 8),
        win: be16(f, l4 + 14),
        len: (end - l4 - doff) as u32,
        wscale,
    }
}
