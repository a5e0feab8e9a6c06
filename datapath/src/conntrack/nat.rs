//! NAT: choosing a connection's translated tuple, and rewriting packets to it.
//!
//! What: a committed connection with NAT keeps two tuples: the original direction as the
//! first packet came, and the reply direction as the translated peer will send it. [`choose`]
//! picks the reply tuple as Open vSwitch does (an address from the range by a hash of the
//! connection, or of its source alone when `persistent`; the original source port first
//! when no port range is given, in its class: below 512, below 1024, or 1024-65535; else a
//! port from the range by hash or at random; up to 128 ports in sequence, then halving runs
//! from random points), and tries further addresses of the range when one is exhausted.
//! Each candidate is claimed with `take`, which checks and inserts the tuple in the index
//! under its shard's lock: two poll threads can never claim one tuple, and a tuple is free
//! again when its connection is deleted. [`rewrite`] and [`rewrite_related`] edit a frame:
//! addresses, ports or ICMP identifier, and for an ICMP error the quoted packet too, each
//! checksum updated incrementally (RFC 1624).
//!
//! Thread-safety: plain functions.

use std::net::IpAddr;

use crate::packet::{be16, checksum, ip_proto};

use super::tuple::{Parsed, Tuple};

/// An address and port range for `nat(src=...)` or `nat(dst=...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatRange {
    /// First address (unspecified, `0.0.0.0` or `::`, keeps the packet's address).
    pub addr_min: IpAddr,
    /// Last address (at least `addr_min`).
    pub addr_max: IpAddr,
    /// First port; `port_min == port_max == 0` means no port range.
    pub port_min: u16,
    /// Last port.
    pub port_max: u16,
    /// Choose the address by the source address alone (`persistent`).
    pub persistent: bool,
    /// Choose the first port at random (`random`) instead of by hash.
    pub random: bool,
}

impl NatRange {
    /// A single address, no port range.
    pub fn addr(a: IpAddr) -> NatRange {
        NatRange {
            addr_min: a,
            addr_max: a,
            port_min: 0,
            port_max: 0,
            persistent: false,
            random: false,
        }
    }

    /// With ports `min..=max`.
    pub fn ports(mut self, min: u16, max: u16) -> NatRange {
        self.port_min = min;
        self.port_max = max;
        self
    }

    fn has_ports(&self) -> bool {
        self.port_min != 0 || self.port_max != 0
    }
}

/// The NAT part of a `ct` action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nat {
    /// `nat`: translate packets of connections that have NAT; create none.
    Apply,
    /// `nat(src=...)`: source NAT for new connections (and `Apply` for existing ones).
    Src(NatRange),
    /// `nat(dst=...)`: destination NAT.
    Dst(NatRange),
}

pub(crate) fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let p = (a ^ 0x2d35_8dcc_aa6c_78a5) as u128 * (b ^ 0x8bb8_4b93_962e_acc9) as u128;
    (p as u64) ^ (p >> 64) as u64
}

/// The port class Open vSwitch keeps a source port in when no range is given.
fn port_class(p: u16) -> (u16, u16) {
    if p < 512 {
        (1, 511)
    } else if p < 1024 {
        (600, 1023)
    } else {
        (1024, 65535)
    }
}

/// Tries ports starting at `curr` in `min..=max` (`curr` may lie outside, tried first):
/// up to 128 in sequence, then runs of half as many from random points.
fn ports(
    curr: u16,
    min: u16,
    max: u16,
    rand: &mut impl FnMut() -> u32,
    mut try_port: impl FnMut(u16) -> bool,
) -> bool {
    let range = (max - min) as u32 + 1;
    let mut attempts = range.min(128);
    let mut c = curr;
    loop {
        let mut n = attempts + (!(min..=max).contains(&c)) as u32;
        while n > 0 {
            if try_port(c) {
                return true;
            }
            c = if !(min..=max).contains(&c) || c == max {
                min
            } else {
                c + 1
            };
            n -= 1;
        }
        if attempts < range && attempts >= 16 {
            attempts /= 2;
            c = min + (rand() % range) as u16;
        } else {
            return false;
        }
    }
}

/// Picks the reply tuple of new connection `fwd` under source (`snat`) or destination NAT
/// to `r`, claiming it with `take`. `None` when every candidate is taken.
pub(crate) fn choose(
    fwd: &Tuple,
    snat: bool,
    r: &NatRange,
    seed: u64,
    mut rand: impl FnMut() -> u32,
    mut take: impl FnMut(&Tuple) -> bool,
) -> Option<Tuple> {
    let (amin, amax) = (addr_bits(r.addr_min), addr_bits(r.addr_max));
    let range_words = [
        amin as u64,
        (amin >> 64) as u64,
        amax as u64,
        r.port_min as u64,
    ];
    let conn_hash = mix(
        fwd.hash(seed),
        range_words.iter().fold(seed, |h, &w| mix(h, w)),
    );
    let addr_hash = if r.persistent {
        let a = if snat { fwd.src } else { fwd.dst };
        mix(
            mix(a as u64, (a >> 64) as u64),
            range_words[0] ^ range_words[2],
        )
    } else {
        conn_hash
    };
    let span = amax.saturating_sub(amin).min(u32::MAX as u128 - 1) as u64 + 1;
    let port_off = if r.random { rand() } else { conn_hash as u32 };
    let mut base = fwd.reverse();
    // Addresses to try: the hashed one, then the next few in the range.
    let tries = span.min(8);
    for k in 0..tries {
        let addr = if amin == 0 {
            if snat { fwd.src } else { fwd.dst }
        } else {
            amin + ((addr_hash % span + k) % span) as u128
        };
        if snat {
            base.dst = addr;
        } else {
            base.src = addr;
        }
        if !fwd.has_ports() {
            if take(&base) {
                return Some(base);
            }
            continue;
        }
        if let Some(t) = choose_ports(fwd, &base, snat, r, port_off, &mut rand, &mut take) {
            return Some(t);
        }
    }
    None
}

fn choose_ports(
    fwd: &Tuple,
    base: &Tuple,
    snat: bool,
    r: &NatRange,
    off: u32,
    rand: &mut impl FnMut() -> u32,
    take: &mut impl FnMut(&Tuple) -> bool,
) -> Option<Tuple> {
    let mut t = *base;
    let in_range = |lo: u16, hi: u16| lo + (off % ((hi - lo) as u32 + 1)) as u16;
    if fwd.is_icmp() {
        // The identifier is the one "port" of an ICMP tuple, in both directions.
        let (lo, hi) = if snat && r.has_ports() {
            (r.port_min, r.port_max)
        } else {
            port_class(fwd.sport)
        };
        let curr = if snat && r.has_ports() {
            in_range(lo, hi)
        } else {
            fwd.sport
        };
        let ok = ports(curr, lo, hi, rand, |p| {
            t.sport = p;
            take(&t)
        });
        return ok.then_some(t);
    }
    if !snat && r.has_ports() {
        let ok = ports(
            in_range(r.port_min, r.port_max),
            r.port_min,
            r.port_max,
            rand,
            |p| {
                t.sport = p;
                take(&t)
            },
        );
        if ok {
            return Some(t);
        }
        t.sport = in_range(r.port_min, r.port_max);
    }
    // The translated source port: from the range for SNAT with ports, else the original
    // first, then its class (DNAT falls back to changing it when the tuple is taken).
    let (lo, hi, curr) = if snat && r.has_ports() {
        (r.port_min, r.port_max, in_range(r.port_min, r.port_max))
    } else {
        let (lo, hi) = port_class(fwd.sport);
        (lo, hi, fwd.sport)
    };
    let ok = ports(curr, lo, hi, rand, |p| {
        t.dport = p;
        take(&t)
    });
    ok.then_some(t)
}

/// A checksum field covering bytes being changed.
#[derive(Clone, Copy, Debug)]
struct Csum {
    at: usize,
    /// A UDP checksum: 0 means none over IPv4 (left alone) and a result of 0 is sent as
    /// 0xffff.
    udp: bool,
}

/// Replaces the bytes at `at` with `new`, updating each checksum in `csums`, and `outer`
/// (a checksum that covers both the bytes and the fields in `csums`, as an ICMP error's
/// covers the packet it quotes) for the bytes and for every change to `csums`.
fn patch(f: &mut [u8], at: usize, new: &[u8], csums: &[Option<Csum>], outer: Option<usize>) {
    let n = new.len();
    if at + n > f.len() {
        return;
    }
    let mut old = [0u8; 16];
    old[..n].copy_from_slice(&f[at..at + n]);
    if old[..n] == *new {
        return;
    }
    f[at..at + n].copy_from_slice(new);
    let mut out = outer.filter(|&o| o + 2 <= f.len()).map(|o| (o, be16(f, o)));
    if let Some((_, c)) = out.as_mut() {
        *c = checksum::update(*c, &old[..n], new);
    }
    for c in csums.iter().flatten() {
        if c.at + 2 > f.len() {
            continue;
        }
        let cur = be16(f, c.at);
        if c.udp && cur == 0 {
            continue;
        }
        let mut v = checksum::update(cur, &old[..n], new);
        if c.udp && v == 0 {
            v = 0xffff;
        }
        f[c.at..c.at + 2].copy_from_slice(&v.to_be_bytes());
        if let Some((_, oc)) = out.as_mut() {
            *oc = checksum::update16(*oc, cur, v);
        }
    }
    if let Some((o, c)) = out {
        f[o..o + 2].copy_from_slice(&c.to_be_bytes());
    }
}

fn addr_bytes(a: u128, v6: bool) -> ([u8; 16], usize) {
    if v6 {
        (a.to_be_bytes(), 16)
    } else {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&(a as u32).to_be_bytes());
        (b, 4)
    }
}

/// The transport checksum of the header at `l4` for protocol `proto` (bounded by `end`).
fn l4_csum(proto: u8, l4: usize, end: usize, v6: bool) -> Option<Csum> {
    let (off, udp) = match proto {
        ip_proto::TCP => (16, false),
        ip_proto::UDP => (6, !v6),
        ip_proto::ICMPV6 if v6 => (2, false),
        _ => return None,
    };
    (l4 + off + 2 <= end).then_some(Csum { at: l4 + off, udp })
}

/// Sets the address fields of the IP header at `l3` and the ports of the transport header
/// at `l4` to tuple `to`'s, where they differ from `from`'s; checksums follow. `outer` as in
/// `patch` (for a quoted packet).
#[allow(clippy::too_many_arguments)]
fn set_tuple(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    end: usize,
    from: &Tuple,
    to: &Tuple,
    outer: Option<usize>,
    ports_too: bool,
) {
    let v6 = from.v6;
    let ip_csum = (!v6).then_some(Csum {
        at: l3 + 10,
        udp: false,
    });
    let l4c = l4_csum(from.proto, l4, end, v6);
    let (src_at, dst_at) = if v6 {
        (l3 + 8, l3 + 24)
    } else {
        (l3 + 12, l3 + 16)
    };
    if from.src != to.src {
        let (b, n) = addr_bytes(to.src, v6);
        patch(f, src_at, &b[..n], &[ip_csum, l4c], outer);
    }
    if from.dst != to.dst {
        let (b, n) = addr_bytes(to.dst, v6);
        patch(f, dst_at, &b[..n], &[ip_csum, l4c], outer);
    }
    if !ports_too {
        return;
    }
    match from.proto {
        ip_proto::TCP | ip_proto::UDP if l4 + 4 <= end => {
            if from.sport != to.sport {
                patch(f, l4, &to.sport.to_be_bytes(), &[l4c], outer);
            }
            if from.dport != to.dport {
                patch(f, l4 + 2, &to.dport.to_be_bytes(), &[l4c], outer);
            }
        }
        _ if from.is_icmp() && l4 + 8 <= end && from.sport != to.sport => {
            let c = Some(Csum {
                at: l4 + 2,
                udp: false,
            });
            patch(f, l4 + 4, &to.sport.to_be_bytes(), &[c], outer);
        }
        _ => {}
    }
}

/// Rewrites a packet whose tuple is `p.tuple` so its tuple becomes `to`.
pub(crate) fn rewrite(f: &mut [u8], p: &Parsed, to: &Tuple) {
    set_tuple(f, p.l3, p.l4, p.end, &p.tuple, to, None, true);
}

/// Rewrites an ICMP error: its own header's address `outer_src` or `outer_dst` (when
/// given), then the quoted packet, whose tuple is the reverse of `p.tuple`, to `inner_to`.
pub(crate) fn rewrite_related(
    f: &mut [u8],
    p: &Parsed,
    outer_src: Option<u128>,
    outer_dst: Option<u128>,
    inner_to: &Tuple,
) {
    let v6 = p.tuple.v6;
    let icmp_csum = p.l4 + 2;
    let ip_csum = (!v6).then_some(Csum {
        at: p.l3 + 10,
        udp: false,
    });
    // The ICMPv6 checksum covers the outer addresses (pseudo-header); ICMP's does not.
    let pseudo = v6.then_some(Csum {
        at: icmp_csum,
        udp: false,
    });
    let (src_at, dst_at) = if v6 {
        (p.l3 + 8, p.l3 + 24)
    } else {
        (p.l3 + 12, p.l3 + 16)
    };
    if let Some(a) = outer_src {
        let (b, n) = addr_bytes(a, v6);
        patch(f, src_at, &b[..n], &[ip_csum, pseudo], None);
    }
    if let Some(a) = outer_dst {
        let (b, n) = addr_bytes(a, v6);
        patch(f, dst_at, &b[..n], &[ip_csum, pseudo], None);
    }
    let inner_from = p.tuple.reverse();
    let end = p.end;
    let il4_end = (p.inner_l4 + p.inner_l4_len).min(end);
    set_tuple(
        f,
        p.inner_l3,
        p.inner_l4,
        il4_end,
        &inner_from,
        inner_to,
        Some(icmp_csum),
        true,
    );
}
