//! A [`Match`] printed as ovs-ofctl prints it (`match_format` in Open vSwitch): its field
//! order, names and number formats, so scripts written against `ovs-ofctl dump-flows`
//! read ours. [`super::matches`] reads every printed form back.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::v1::{Field, FieldMatch, Match};

use super::fields::{field_def, field_def_i32, value_text};
use super::matches::{FRAG_NAMES, TCP_FLAG_NAMES};
use super::ports::{actset_output_text, in_port_text};
use super::protocol::{Ctx, SHORTHANDS};
use super::scalar::{be_u64, hex_bytes, mac_text, mask_prefix};
use super::vlan::{Tci, is_vlan_field};

/// Where a field is printed, as Open vSwitch orders them.
#[derive(Clone, Copy)]
enum Part {
    Field(Field),
    Shorthand,
    Vlan,
    /// `dl_type` when no shorthand covers it.
    EthType,
    /// `nw_proto` when no shorthand covers it.
    IpProto,
}

/// The printed order (the protocol shorthand and the VLAN fields in their places).
const ORDER: &[Part] = &[
    Part::Field(Field::ConjId),
    Part::Field(Field::PktMark),
    Part::Field(Field::ActsetOutput),
    Part::Field(Field::CtState),
    Part::Field(Field::CtZone),
    Part::Field(Field::CtMark),
    Part::Field(Field::CtLabel),
    Part::Field(Field::CtNwSrc),
    Part::Field(Field::CtIpv6Src),
    Part::Field(Field::CtNwDst),
    Part::Field(Field::CtIpv6Dst),
    Part::Field(Field::CtNwProto),
    Part::Field(Field::CtTpSrc),
    Part::Field(Field::CtTpDst),
    Part::Shorthand,
    Part::Field(Field::Reg0),
    Part::Field(Field::Reg1),
    Part::Field(Field::Reg2),
    Part::Field(Field::Reg3),
    Part::Field(Field::Reg4),
    Part::Field(Field::Reg5),
    Part::Field(Field::Reg6),
    Part::Field(Field::Reg7),
    Part::Field(Field::Reg8),
    Part::Field(Field::Reg9),
    Part::Field(Field::Reg10),
    Part::Field(Field::Reg11),
    Part::Field(Field::Reg12),
    Part::Field(Field::Reg13),
    Part::Field(Field::Reg14),
    Part::Field(Field::Reg15),
    // xreg / xxreg are printed as the registers they are made of (the text parser splits
    // them); an API match that names them directly prints them here.
    Part::Field(Field::Xreg0),
    Part::Field(Field::Xreg1),
    Part::Field(Field::Xreg2),
    Part::Field(Field::Xreg3),
    Part::Field(Field::Xreg4),
    Part::Field(Field::Xreg5),
    Part::Field(Field::Xreg6),
    Part::Field(Field::Xreg7),
    Part::Field(Field::Xxreg0),
    Part::Field(Field::Xxreg1),
    Part::Field(Field::Xxreg2),
    Part::Field(Field::Xxreg3),
    Part::Field(Field::TunId),
    Part::Field(Field::TunSrc),
    Part::Field(Field::TunDst),
    Part::Field(Field::TunFlags),
    Part::Field(Field::Metadata),
    Part::Field(Field::InPort),
    Part::Vlan,
    Part::Field(Field::EthSrc),
    Part::Field(Field::EthDst),
    Part::EthType,
    Part::Field(Field::Ipv6Src),
    Part::Field(Field::Ipv6Dst),
    Part::Field(Field::Ipv6Label),
    Part::Field(Field::ArpSpa),
    Part::Field(Field::ArpTpa),
    Part::Field(Field::Ipv4Src),
    Part::Field(Field::Ipv4Dst),
    Part::IpProto,
    Part::Field(Field::ArpOp),
    Part::Field(Field::ArpSha),
    Part::Field(Field::ArpTha),
    Part::Field(Field::IpDscp),
    Part::Field(Field::IpEcn),
    Part::Field(Field::IpTtl),
    Part::Field(Field::MplsLabel),
    Part::Field(Field::MplsTc),
    Part::Field(Field::MplsTtl),
    Part::Field(Field::MplsBos),
    Part::Field(Field::IpFrag),
    Part::Field(Field::Icmpv4Type),
    Part::Field(Field::Icmpv4Code),
    Part::Field(Field::Icmpv6Type),
    Part::Field(Field::Icmpv6Code),
    Part::Field(Field::NdTarget),
    Part::Field(Field::NdSll),
    Part::Field(Field::NdTll),
    Part::Field(Field::TcpSrc),
    Part::Field(Field::TcpDst),
    Part::Field(Field::UdpSrc),
    Part::Field(Field::UdpDst),
    Part::Field(Field::SctpSrc),
    Part::Field(Field::SctpDst),
    Part::Field(Field::TcpFlags),
];

/// Every field [`ORDER`] prints by itself (the VLAN, eth_type and ip_proto fields are
/// printed through their parts).
#[cfg(test)]
pub(super) fn printed_fields() -> impl Iterator<Item = Field> {
    ORDER.iter().filter_map(|p| match p {
        Part::Field(f) => Some(*f),
        _ => None,
    })
}

/// The shorthand that covers the match's eth_type (and ip_proto): (name, covers ip_proto).
fn covering_shorthand(ctx: Ctx) -> Option<(&'static str, bool)> {
    let e = ctx.eth_type?;
    let with_proto = SHORTHANDS
        .iter()
        .find(|(_, se, sp)| *se == e && sp.is_some() && *sp == ctx.ip_proto);
    let bare = SHORTHANDS
        .iter()
        .find(|(_, se, sp)| *se == e && sp.is_none());
    with_proto
        .map(|(n, _, _)| (*n, true))
        .or_else(|| bare.map(|(n, _, _)| (*n, false)))
}

/// Prints a match as comma-separated ovs-ofctl fields, in Open vSwitch's order and
/// spelling. An empty match prints as an empty string.
pub fn format_match(m: &Match) -> String {
    let ctx = Ctx::of(m);
    let shorthand = covering_shorthand(ctx);
    let get = |f: Field| m.fields.iter().find(|x| x.field == f as i32);
    let mut parts: Vec<String> = Vec::new();
    for part in ORDER {
        match *part {
            Part::Shorthand => {
                if let Some((name, _)) = shorthand {
                    parts.push(name.to_string());
                }
            }
            Part::Vlan => {
                let tci = Tci::of_fields(m.fields.iter().filter(|f| is_vlan_field(f.field)));
                for fm in tci.fields() {
                    parts.push(vlan_text(&fm));
                }
            }
            Part::EthType => {
                if let Some(fm) = get(Field::EthType)
                    && (shorthand.is_none() || !fm.mask.is_empty())
                {
                    parts.push(format!("dl_type=0x{:04x}", be_u64(&fm.value)));
                }
            }
            Part::IpProto => {
                if let Some(fm) = get(Field::IpProto)
                    && (!shorthand.is_some_and(|(_, p)| p) || !fm.mask.is_empty())
                {
                    parts.push(format!("nw_proto={}", be_u64(&fm.value)));
                }
            }
            Part::Field(f) => {
                if let Some(fm) = get(f) {
                    parts.push(field_text(f, fm));
                }
            }
        }
    }
    // Fields not in the print order (unknown numbers) are still shown, never dropped.
    for fm in &m.fields {
        if field_def_i32(fm.field).is_none() {
            parts.push(format!(
                "field{}={}",
                fm.field,
                if fm.mask.is_empty() {
                    hex_bytes(&fm.value)
                } else {
                    format!("{}/{}", hex_bytes(&fm.value), hex_bytes(&fm.mask))
                }
            ));
        }
    }
    parts.join(",")
}

/// `%#x` as C prints it (and so Open vSwitch): `0` for zero, else `0x` and hex digits.
pub(super) fn c_hex(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("0x{v:x}")
    }
}

fn vlan_text(fm: &FieldMatch) -> String {
    let v = be_u64(&fm.value);
    match Field::try_from(fm.field) {
        Ok(Field::VlanVid) => format!("dl_vlan={}", v & 0xfff),
        Ok(Field::VlanPcp) => format!("dl_vlan_pcp={v}"),
        _ if fm.mask.is_empty() => format!("vlan_tci=0x{v:04x}"),
        _ => format!("vlan_tci=0x{v:04x}/0x{:04x}", be_u64(&fm.mask)),
    }
}

/// `%#x[/%#x]`: registers, metadata, tunnel id, packet mark.
fn hex_masked(name: &str, fm: &FieldMatch) -> String {
    let v = c_hex(be_u64(&fm.value));
    if fm.mask.is_empty() {
        format!("{name}={v}")
    } else {
        format!("{name}={v}/{}", c_hex(be_u64(&fm.mask)))
    }
}

/// Flags as `a|b` when every flag is tested, else `+a-b` in bit order.
fn flags_text(names: &[(&str, u16)], value: u16, mask: u16, all: u16) -> String {
    let name = |bit: u16| {
        names
            .iter()
            .find(|(_, b)| *b == bit)
            .map_or_else(|| format!("0x{bit:x}"), |(n, _)| (*n).to_string())
    };
    let bits = |m: u16| (0..16).map(|i| 1u16 << i).filter(move |b| m & b != 0);
    if mask == all {
        if value == 0 {
            return "0".to_string();
        }
        return bits(value).map(name).collect::<Vec<_>>().join("|");
    }
    bits(mask)
        .map(|b| format!("{}{}", if value & b != 0 { '+' } else { '-' }, name(b)))
        .collect()
}

/// One match field as `name=value[/mask]`, in the spelling ovs-ofctl prints.
fn field_text(f: Field, fm: &FieldMatch) -> String {
    let Some(d) = field_def(f) else {
        return String::new();
    };
    let (v, mk) = (&fm.value[..], &fm.mask[..]);
    let masked_int = |name: &str| {
        if mk.is_empty() {
            format!("{name}={}", be_u64(v))
        } else {
            format!("{name}=0x{:x}/0x{:x}", be_u64(v), be_u64(mk))
        }
    };
    match f {
        Field::InPort => match in_port_text(fm) {
            Some(p) => format!("in_port={p}"),
            None => format!("in_port={}", be_u64(v)),
        },
        Field::ActsetOutput => format!("actset_output={}", actset_output_text(fm)),
        Field::Reg0
        | Field::Reg1
        | Field::Reg2
        | Field::Reg3
        | Field::Reg4
        | Field::Reg5
        | Field::Reg6
        | Field::Reg7
        | Field::Reg8
        | Field::Reg9
        | Field::Reg10
        | Field::Reg11
        | Field::Reg12
        | Field::Reg13
        | Field::Reg14
        | Field::Reg15
        | Field::Xreg0
        | Field::Xreg1
        | Field::Xreg2
        | Field::Xreg3
        | Field::Xreg4
        | Field::Xreg5
        | Field::Xreg6
        | Field::Xreg7
        | Field::Metadata
        | Field::TunId
        | Field::CtMark
        | Field::PktMark => hex_masked(d.name, fm),
        Field::CtState => {
            let m = if mk.is_empty() {
                0xff
            } else {
                be_u64(mk) as u16
            };
            format!(
                "ct_state={}",
                flags_text(super::ct::CT_STATE_NAMES, be_u64(v) as u16, m, 0xff)
            )
        }
        Field::CtZone | Field::CtTpSrc | Field::CtTpDst => masked_int(d.name),
        Field::EthSrc => format!("dl_src={}", value_text(d, v, mk)),
        Field::EthDst => format!("dl_dst={}", value_text(d, v, mk)),
        Field::Ipv4Src => format!("nw_src={}", value_text(d, v, mk)),
        Field::Ipv4Dst => format!("nw_dst={}", value_text(d, v, mk)),
        Field::IpDscp => format!("nw_tos={}", be_u64(v) << 2),
        Field::Ipv6Label if mk.is_empty() => format!("ipv6_label=0x{:05x}", be_u64(v)),
        Field::Ipv6Label => format!("ipv6_label=0x{:05x}/0x{:05x}", be_u64(v), be_u64(mk)),
        Field::IpFrag => {
            let m = if mk.is_empty() {
                3
            } else {
                be_u64(mk) as u8 & 3
            };
            let v = be_u64(v) as u8 & m;
            match FRAG_NAMES.iter().find(|(_, fv, fm)| *fv == v && *fm == m) {
                Some((name, _, _)) => format!("nw_frag={name}"),
                None if m == 3 => format!("nw_frag={v}"),
                None => format!("nw_frag={v}/{m}"),
            }
        }
        Field::TunFlags => {
            let m = if mk.is_empty() { 1 } else { be_u64(mk) as u16 };
            format!(
                "tun_flags={}",
                flags_text(&[("oam", 1)], be_u64(v) as u16, m, 0xffff)
            )
        }
        Field::TcpFlags => {
            let m = if mk.is_empty() {
                0xfff
            } else {
                be_u64(mk) as u16
            };
            format!(
                "tcp_flags={}",
                flags_text(TCP_FLAG_NAMES, be_u64(v) as u16, m, 0xfff)
            )
        }
        Field::Icmpv4Type | Field::Icmpv6Type => masked_int("icmp_type"),
        Field::Icmpv4Code | Field::Icmpv6Code => masked_int("icmp_code"),
        Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => masked_int("tp_src"),
        Field::TcpDst | Field::UdpDst | Field::SctpDst => masked_int("tp_dst"),
        Field::NdSll | Field::NdTll | Field::ArpSha | Field::ArpTha => {
            format!("{}={}", d.name, mac_masked(v, mk))
        }
        Field::TunSrc | Field::TunDst | Field::ArpSpa | Field::ArpTpa => {
            format!("{}={}", d.name, value_text(d, v, mk))
        }
        Field::Ipv6Src | Field::Ipv6Dst | Field::NdTarget => {
            format!("{}={}", d.name, ip_masked(v, mk))
        }
        _ => format!("{}={}", d.name, value_text(d, v, mk)),
    }
}

fn mac_masked(v: &[u8], mk: &[u8]) -> String {
    if mk.is_empty() {
        mac_text(v)
    } else {
        format!("{}/{}", mac_text(v), mac_text(mk))
    }
}

/// An address with its mask as a prefix length when it is one, else the mask address.
pub(super) fn ip_masked(v: &[u8], mk: &[u8]) -> String {
    let addr = |b: &[u8]| -> String {
        if let Ok(a) = <[u8; 4]>::try_from(b) {
            Ipv4Addr::from(a).to_string()
        } else if let Ok(a) = <[u8; 16]>::try_from(b) {
            Ipv6Addr::from(a).to_string()
        } else {
            hex_bytes(b)
        }
    };
    if mk.is_empty() {
        addr(v)
    } else if let Some(p) = mask_prefix(mk) {
        format!("{}/{p}", addr(v))
    } else {
        format!("{}/{}", addr(v), addr(mk))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{format_match, parse_match};

    fn text(s: &str) -> String {
        format_match(parse_match(s).unwrap().r#match.as_ref().unwrap())
    }

    #[test]
    fn open_vswitch_order_and_spelling() {
        for (input, printed) in [
            (
                "in_port=LOCAL dl_vlan=9 dl_src=00:0A:E4:25:6B:B0",
                "in_port=LOCAL,dl_vlan=9,dl_src=00:0a:e4:25:6b:b0",
            ),
            (
                "icmp6,icmp_type=135,nd_target=FEC0::1234:F045:8FFF:1111:FE4F:0571/112",
                "icmp6,icmp_type=135,nd_target=fec0:0:1234:f045:8fff:1111:fe4f:0/112",
            ),
            (
                "mpls,mpls_label=5,mpls_tc=1,mpls_ttl=1,mpls_bos=0",
                "mpls,mpls_label=5,mpls_tc=1,mpls_ttl=1,mpls_bos=0",
            ),
            ("ipv6,ipv6_label=0x12345", "ipv6,ipv6_label=0x12345"),
            (
                "tcp,tun_id=0x1234,tp_src=0x1234/0xfff0",
                "tcp,tun_id=0x1234,tp_src=0x1230/0xfff0",
            ),
            (
                "in_port=1,tcp,tp_dst=80,tcp_flags=+syn-rst-ack-fin",
                "tcp,in_port=1,tp_dst=80,tcp_flags=-fin+syn-rst-ack",
            ),
            ("dl_vlan=65535,dl_vlan_pcp=3", "dl_vlan=0,dl_vlan_pcp=3"),
            ("dl_vlan=8191", "dl_vlan=4095"),
            ("dl_vlan=0xffff", "vlan_tci=0x0000/0x1fff"),
            ("vlan_tci=0", "vlan_tci=0x0000"),
            ("vlan_tci=0x000b/0x1fff", "vlan_tci=0x000b/0x1fff"),
            ("pkt_mark=1", "pkt_mark=0x1"),
            ("pkt_mark=0/1", "pkt_mark=0/0x1"),
            ("reg0=0,metadata=0x5", "reg0=0,metadata=0x5"),
            ("tun_flags=1", "tun_flags=+oam"),
            ("tcp,nw_frag=later", "tcp,nw_frag=later"),
            ("ip,ip_frag=not_later", "ip,nw_frag=not_later"),
            ("ip,nw_tos=32,nw_ecn=1", "ip,nw_tos=32,nw_ecn=1"),
            (
                "icmp6,in_port=3,icmp_type=136",
                "icmp6,in_port=3,icmp_type=136",
            ),
            ("tcp,tcp_flags=syn|ack", "tcp,tcp_flags=syn|ack"),
        ] {
            assert_eq!(text(input), printed, "{input}");
            assert_eq!(text(printed), printed, "{printed} reads back");
        }
    }
}
