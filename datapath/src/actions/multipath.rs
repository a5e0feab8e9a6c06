//! Multipath: a hash of some packet fields, mapped onto one of n links (Open vSwitch's
//! `multipath` action and its algorithms). The hash is this switch's own (`hash_words`), so
//! a packet's link is stable across runs but not the link Open vSwitch would choose.
//!
//! Thread-safety: pure functions.

use crate::flow::{Field, FlowKey, FlowMask, hash_words};
use crate::packet::{ethertype, ip_proto};

/// Which fields are hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashFields {
    /// The Ethernet source.
    EthSrc,
    /// Ethernet addresses, ethertype, VLAN ID, IP addresses and protocol, L4 ports;
    /// symmetric.
    SymmetricL4,
    /// IP addresses, protocol, TCP/SCTP ports; symmetric.
    SymmetricL3l4,
    /// As `SymmetricL3l4`, UDP ports too.
    SymmetricL3l4Udp,
    /// The IP source.
    NwSrc,
    /// The IP destination.
    NwDst,
    /// IP addresses; symmetric.
    SymmetricL3,
}

/// How the hash is mapped onto a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `hash % n`.
    ModuloN,
    /// The hash's range cut in n equal parts.
    HashThreshold,
    /// Highest random weight.
    Hrw,
    /// Rehash until the low bits name a link.
    IterHash,
}

fn read(key: &FlowKey, wc: &mut FlowMask, f: Field) -> u128 {
    wc.set(f, f.full_mask());
    key.get(f)
}

/// The hash of `fields` of `key` with `basis`; what it read is unwildcarded in `wc`.
pub fn flow_hash(key: &FlowKey, wc: &mut FlowMask, fields: HashFields, basis: u16) -> u32 {
    let mut w: [u64; 8] = [0; 8];
    let eth = read(key, wc, Field::EthType) as u16;
    let ip4 = eth == ethertype::IPV4;
    let ip6 = eth == ethertype::IPV6;
    let addr = |wc: &mut FlowMask, f4: Field, f6: Field| -> u128 {
        if ip4 {
            read(key, wc, f4)
        } else if ip6 {
            read(key, wc, f6)
        } else {
            0
        }
    };
    match fields {
        HashFields::EthSrc => w[0] = read(key, wc, Field::EthSrc) as u64,
        HashFields::NwSrc => w[0] = fold(addr(wc, Field::Ipv4Src, Field::Ipv6Src)),
        HashFields::NwDst => w[0] = fold(addr(wc, Field::Ipv4Dst, Field::Ipv6Dst)),
        HashFields::SymmetricL3 => {
            w[0] = fold(
                addr(wc, Field::Ipv4Src, Field::Ipv6Src) ^ addr(wc, Field::Ipv4Dst, Field::Ipv6Dst),
            );
        }
        HashFields::SymmetricL4 | HashFields::SymmetricL3l4 | HashFields::SymmetricL3l4Udp => {
            if fields == HashFields::SymmetricL4 {
                w[0] = (read(key, wc, Field::EthSrc) ^ read(key, wc, Field::EthDst)) as u64;
                w[1] = u64::from(eth);
                wc.set_masked(Field::VlanTci, 0x0fff, 0x0fff);
                w[2] = (key.get(Field::VlanTci) & 0x0fff) as u64;
            }
            if ip4 || ip6 {
                w[3] = fold(
                    addr(wc, Field::Ipv4Src, Field::Ipv6Src)
                        ^ addr(wc, Field::Ipv4Dst, Field::Ipv6Dst),
                );
                let proto = read(key, wc, Field::IpProto) as u8;
                w[4] = u64::from(proto);
                let ports = match proto {
                    ip_proto::TCP | ip_proto::SCTP => true,
                    ip_proto::UDP => fields != HashFields::SymmetricL3l4,
                    _ => false,
                };
                if ports {
                    w[5] = (read(key, wc, Field::TpSrc) ^ read(key, wc, Field::TpDst)) as u64;
                }
            }
        }
    }
    hash_words(&w, u64::from(basis)) as u32
}

fn fold(v: u128) -> u64 {
    (v as u64) ^ ((v >> 64) as u64)
}

fn hash2(a: u32, b: u32) -> u32 {
    hash_words(&[u64::from(a), u64::from(b)], 0) as u32
}

/// The link (0..n_links) `algorithm` maps `hash` to.
pub fn choose(algorithm: Algorithm, hash: u32, n_links: u32) -> u32 {
    if n_links <= 1 {
        return 0;
    }
    match algorithm {
        Algorithm::ModuloN => hash % n_links,
        Algorithm::HashThreshold => {
            let part = (u64::from(u32::MAX) + 1).div_ceil(u64::from(n_links));
            (u64::from(hash) / part) as u32
        }
        Algorithm::Hrw => (0..n_links)
            .max_by_key(|&l| (hash2(hash, l), std::cmp::Reverse(l)))
            .unwrap_or(0),
        Algorithm::IterHash => {
            let bits = 32 - (n_links - 1).leading_zeros();
            let mask = if bits >= 32 {
                u32::MAX
            } else {
                (1 << bits) - 1
            };
            let mut h = hash;
            for i in 0..64 {
                h = hash2(h, i);
                if h & mask < n_links {
                    return h & mask;
                }
            }
            hash % n_links
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_picks_a_link_in_range_and_spreads() {
        for alg in [
            Algorithm::ModuloN,
            Algorithm::HashThreshold,
            Algorithm::Hrw,
            Algorithm::IterHash,
        ] {
            for n in [1u32, 2, 3, 12, 1024] {
                let mut seen = std::collections::BTreeSet::new();
                for h in 0..2000u32 {
                    let l = choose(alg, hash2(h, 7), n);
                    assert!(l < n, "{alg:?} n={n}: {l}");
                    seen.insert(l);
                }
                assert!(seen.len() as u32 >= n.min(8), "{alg:?} n={n}: {seen:?}");
            }
        }
    }

    #[test]
    fn symmetric_hashes_agree_both_ways_and_read_what_they_hash() {
        let mut a = FlowKey::ZERO;
        a.set(Field::EthType, 0x0800);
        a.set(Field::IpProto, 6);
        a.set(Field::Ipv4Src, 0x0a00_0001);
        a.set(Field::Ipv4Dst, 0x0a00_0002);
        a.set(Field::TpSrc, 1000);
        a.set(Field::TpDst, 80);
        let mut b = a;
        b.set(Field::Ipv4Src, 0x0a00_0002);
        b.set(Field::Ipv4Dst, 0x0a00_0001);
        b.set(Field::TpSrc, 80);
        b.set(Field::TpDst, 1000);
        for f in [
            HashFields::SymmetricL3,
            HashFields::SymmetricL3l4,
            HashFields::SymmetricL3l4Udp,
        ] {
            let mut wc = FlowMask::ZERO;
            assert_eq!(
                flow_hash(&a, &mut wc, f, 5),
                flow_hash(&b, &mut FlowMask::default(), f, 5)
            );
            assert_eq!(wc.get(Field::Ipv4Src), 0xffff_ffff, "{f:?}");
        }
        let mut wc = FlowMask::ZERO;
        let _ = flow_hash(&a, &mut wc, HashFields::NwSrc, 0);
        assert_eq!(wc.get(Field::TpSrc), 0, "nw_src reads no port");
        assert_ne!(
            flow_hash(&a, &mut FlowMask::default(), HashFields::NwSrc, 0),
            flow_hash(&b, &mut FlowMask::default(), HashFields::NwSrc, 0)
        );
    }
}
