//! The protocol a match pins (its exact `eth_type`, `ip_proto` and ICMPv6 type), the
//! shorthands that pin it (`ip`, `tcp6`, `arp`, `mpls`, ...), and the prerequisites fields have on it, checked as
//! Open vSwitch checks them: `nw_dst` needs `ip` or `arp`, `tp_dst` needs `tcp`, `udp` or
//! `sctp`, and a `set_field` needs the same of the flow's match.

use crate::v1::{Action, Field, Match, action};

use super::scalar::be_u64;

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_IPV6: u16 = 0x86dd;
pub(super) const ETH_ARP: u16 = 0x0806;
pub(super) const ETH_RARP: u16 = 0x8035;
pub(super) const ETH_MPLS: u16 = 0x8847;
pub(super) const ETH_MPLS_MCAST: u16 = 0x8848;

/// ICMPv6 neighbour solicitation and advertisement (the `nd_*` fields' types).
pub(super) const ND_SOLICIT: u8 = 135;
pub(super) const ND_ADVERT: u8 = 136;

pub(super) const IPPROTO_ICMP: u8 = 1;
pub(super) const IPPROTO_TCP: u8 = 6;
pub(super) const IPPROTO_UDP: u8 = 17;
pub(super) const IPPROTO_ICMPV6: u8 = 58;
pub(super) const IPPROTO_SCTP: u8 = 132;

/// Protocol shorthands: name, the eth_type and the ip_proto they pin, in the order a
/// printed match prefers them.
pub(super) const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
    ("ip", ETH_IPV4, None),
    ("ipv6", ETH_IPV6, None),
    ("icmp", ETH_IPV4, Some(IPPROTO_ICMP)),
    ("icmp6", ETH_IPV6, Some(IPPROTO_ICMPV6)),
    ("tcp", ETH_IPV4, Some(IPPROTO_TCP)),
    ("tcp6", ETH_IPV6, Some(IPPROTO_TCP)),
    ("udp", ETH_IPV4, Some(IPPROTO_UDP)),
    ("udp6", ETH_IPV6, Some(IPPROTO_UDP)),
    ("sctp", ETH_IPV4, Some(IPPROTO_SCTP)),
    ("sctp6", ETH_IPV6, Some(IPPROTO_SCTP)),
    ("arp", ETH_ARP, None),
    ("rarp", ETH_RARP, None),
    ("mpls", ETH_MPLS, None),
    ("mplsm", ETH_MPLS_MCAST, None),
];

/// The eth_type and ip_proto a shorthand pins.
pub(super) fn shorthand(name: &str) -> Option<(u16, Option<u8>)> {
    SHORTHANDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, e, p)| (*e, *p))
}

/// What the match must pin for a field to be usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prereq {
    None,
    Ip,
    Ipv4,
    Ipv6,
    Arp,
    Tcp,
    Udp,
    Sctp,
    Icmp4,
    Icmp6,
    /// MPLS (unicast or multicast ethertype).
    Mpls,
    /// ICMPv6 neighbour solicitation or advertisement.
    Nd,
    /// ICMPv6 neighbour solicitation.
    NdSolicit,
    /// ICMPv6 neighbour advertisement.
    NdAdvert,
}

/// The protocol context of a match: its exact eth_type, ip_proto and ICMP type.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ctx {
    pub(super) eth_type: Option<u16>,
    pub(super) ip_proto: Option<u8>,
    pub(super) icmp_type: Option<u8>,
    /// The match says the packet is a later fragment (`ip_frag=later`): it has no
    /// transport header.
    pub(super) frag_later: bool,
}

impl Ctx {
    pub(super) fn of(m: &Match) -> Ctx {
        let mut ctx = Ctx::default();
        for f in &m.fields {
            if f.mask.is_empty() {
                if f.field == Field::EthType as i32 && f.value.len() == 2 {
                    ctx.eth_type = Some(be_u64(&f.value) as u16);
                }
                if f.field == Field::IpProto as i32 && f.value.len() == 1 {
                    ctx.ip_proto = Some(be_u64(&f.value) as u8);
                }
                if f.field == Field::Icmpv6Type as i32 && f.value.len() == 1 {
                    ctx.icmp_type = Some(be_u64(&f.value) as u8);
                }
            }
            if f.field == Field::IpFrag as i32 && f.value.len() == 1 {
                let later = 2u8;
                let mask = f.mask.first().copied().unwrap_or(0xff);
                ctx.frag_later = f.value[0] & mask & later != 0;
            }
        }
        ctx
    }
    pub(super) fn ip4(self) -> bool {
        self.eth_type == Some(ETH_IPV4)
    }
    pub(super) fn ip6(self) -> bool {
        self.eth_type == Some(ETH_IPV6)
    }
    pub(super) fn ip(self) -> bool {
        self.ip4() || self.ip6()
    }
    pub(super) fn arp(self) -> bool {
        matches!(self.eth_type, Some(ETH_ARP | ETH_RARP))
    }
    pub(super) fn mpls(self) -> bool {
        matches!(self.eth_type, Some(ETH_MPLS | ETH_MPLS_MCAST))
    }
    fn nd(self, types: &[u8]) -> bool {
        self.ip6()
            && self.ip_proto == Some(IPPROTO_ICMPV6)
            && self.icmp_type.is_some_and(|t| types.contains(&t))
    }
    fn proto(self, p: u8) -> bool {
        self.ip() && self.ip_proto == Some(p) && !self.frag_later
    }
    /// The context after `a` has run: `push_mpls` makes the packet MPLS, `pop_mpls` makes
    /// it the popped entry's ethertype (as Open vSwitch checks actions in order).
    pub(super) fn after(self, a: &Action) -> Ctx {
        match &a.action {
            Some(action::Action::PushMpls(p)) => Ctx {
                eth_type: Some(p.ethertype as u16),
                ..Ctx::default()
            },
            Some(action::Action::PopMpls(p)) if self.eth_type.is_none() || self.mpls() => Ctx {
                eth_type: Some(p.ethertype as u16),
                ..Ctx::default()
            },
            _ => self,
        }
    }

    pub(super) fn satisfies(self, p: Prereq) -> bool {
        match p {
            Prereq::None => true,
            Prereq::Ip => self.ip(),
            Prereq::Ipv4 => self.ip4(),
            Prereq::Ipv6 => self.ip6(),
            Prereq::Arp => self.arp(),
            Prereq::Tcp => self.proto(IPPROTO_TCP),
            Prereq::Udp => self.proto(IPPROTO_UDP),
            Prereq::Sctp => self.proto(IPPROTO_SCTP),
            Prereq::Icmp4 => self.ip4() && self.proto(IPPROTO_ICMP),
            Prereq::Icmp6 => self.ip6() && self.proto(IPPROTO_ICMPV6),
            Prereq::Mpls => self.mpls(),
            Prereq::Nd => self.nd(&[ND_SOLICIT, ND_ADVERT]),
            Prereq::NdSolicit => self.nd(&[ND_SOLICIT]),
            Prereq::NdAdvert => self.nd(&[ND_ADVERT]),
        }
    }
}

/// What to add to a match that lacks a prerequisite.
pub(super) fn prereq_text(p: Prereq) -> &'static str {
    match p {
        Prereq::None => "nothing",
        Prereq::Ip => "an IP match: add `ip` or `ipv6` (or dl_type=0x0800 / 0x86dd)",
        Prereq::Ipv4 => "an IPv4 match: add `ip` (or dl_type=0x0800); for ARP use `arp`",
        Prereq::Ipv6 => "an IPv6 match: add `ipv6` (or dl_type=0x86dd)",
        Prereq::Arp => "an ARP match: add `arp` (or dl_type=0x0806)",
        Prereq::Tcp => {
            "a TCP match that is not a later fragment (which has no TCP header): add `tcp` or `tcp6` (or nw_proto=6 with ip/ipv6)"
        }
        Prereq::Udp => {
            "a UDP match that is not a later fragment (which has no UDP header): add `udp` or `udp6` (or nw_proto=17 with ip/ipv6)"
        }
        Prereq::Sctp => {
            "an SCTP match that is not a later fragment (which has no SCTP header): add `sctp` or `sctp6` (or nw_proto=132 with ip/ipv6)"
        }
        Prereq::Icmp4 => "an ICMP match: add `icmp` (or ip,nw_proto=1)",
        Prereq::Icmp6 => "an ICMPv6 match: add `icmp6` (or ipv6,nw_proto=58)",
        Prereq::Mpls => "an MPLS match: add `mpls` or `mplsm` (or dl_type=0x8847 / 0x8848)",
        Prereq::Nd => {
            "a neighbour discovery match: add `icmp6,icmp_type=135` (solicitation) or `icmp6,icmp_type=136` (advertisement)"
        }
        Prereq::NdSolicit => "a neighbour solicitation match: add `icmp6,icmp_type=135`",
        Prereq::NdAdvert => "a neighbour advertisement match: add `icmp6,icmp_type=136`",
    }
}
