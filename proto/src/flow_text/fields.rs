//! The field table: every match and set-field field as one row of data (width, value
//! syntax, maskable, settable, prerequisite, the names it is written with), the names whose
//! field depends on the match's protocol (`nw_src` is `arp_spa` in an ARP match), and a
//! field's values read from and printed as text.
//!
//! A new field is a `Field` number in the API and one row in [`FIELDS`]; names that depend
//! on the protocol go in [`CONTEXTUAL`], Nicira/OXM spellings in [`NXM_NAMES`].

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::v1::Field;

use super::lexer::{Result, Tok};
use super::ports::{PortText, parse_port_number};
use super::protocol::{Ctx, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, Prereq};
use super::scalar::{
    be_bytes, be_u64, be_u128, c_hex128, hex_bytes, int_text, mac_text, mask_prefix, num,
    parse_ipv4, parse_ipv6, parse_mac, parse_u128, prefix_mask,
};

/// How a field's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// Unsigned integer of `bits` bits; `hex` chooses how it is printed.
    Int {
        bits: u32,
        hex: bool,
    },
    Mac,
    Ipv4,
    Ipv6,
    /// An OpenFlow port: number, name or LOCAL/CONTROLLER.
    Port,
    /// A 128-bit number (`ct_label`), printed in hexadecimal.
    Hex128,
}

/// Static facts about one [`Field`].
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldDef {
    pub(super) field: Field,
    /// Value width in bytes.
    pub(super) width: usize,
    pub(super) syntax: Syntax,
    pub(super) maskable: bool,
    pub(super) settable: bool,
    pub(super) prereq: Prereq,
    /// Name used in `set_field:V->NAME` output and in messages; also accepted as input.
    pub(super) name: &'static str,
    /// Other names accepted in matches and set-field actions.
    pub(super) aliases: &'static [&'static str],
}

#[allow(clippy::too_many_arguments)]
const fn def(
    field: Field,
    width: usize,
    syntax: Syntax,
    maskable: bool,
    settable: bool,
    prereq: Prereq,
    name: &'static str,
    aliases: &'static [&'static str],
) -> FieldDef {
    FieldDef {
        field,
        width,
        syntax,
        maskable,
        settable,
        prereq,
        name,
        aliases,
    }
}

const fn int(bits: u32) -> Syntax {
    Syntax::Int { bits, hex: false }
}
const fn hex(bits: u32) -> Syntax {
    Syntax::Int { bits, hex: true }
}

/// Every field, in `Field` number order (which is also the canonical match order).
#[rustfmt::skip]
pub(super) const FIELDS: &[FieldDef] = &[
    //  field               bytes syntax       mask   set    prereq           name           aliases
    def(Field::InPort,      4,  Syntax::Port,  false, true,  Prereq::None,  "in_port",     &[]),
    def(Field::EthSrc,      6,  Syntax::Mac,   true,  true,  Prereq::None,  "eth_src",     &["dl_src"]),
    def(Field::EthDst,      6,  Syntax::Mac,   true,  true,  Prereq::None,  "eth_dst",     &["dl_dst"]),
    def(Field::EthType,     2,  hex(16),       false, false, Prereq::None,  "eth_type",    &["dl_type"]),
    def(Field::VlanVid,     2,  int(13),       true,  true,  Prereq::None,  "vlan_vid",    &[]),
    def(Field::VlanPcp,     1,  int(3),        false, true,  Prereq::None,  "vlan_pcp",    &["dl_vlan_pcp"]),
    def(Field::VlanTci,     2,  hex(16),       true,  true,  Prereq::None,  "vlan_tci",    &[]),
    def(Field::IpDscp,      1,  int(6),        false, true,  Prereq::Ip,    "ip_dscp",     &[]),
    def(Field::IpEcn,       1,  int(2),        false, true,  Prereq::Ip,    "nw_ecn",      &["ip_ecn"]),
    def(Field::IpProto,     1,  int(8),        false, false, Prereq::Ip,    "nw_proto",    &["ip_proto"]),
    def(Field::IpTtl,       1,  int(8),        false, true,  Prereq::Ip,    "nw_ttl",      &[]),
    def(Field::Ipv4Src,     4,  Syntax::Ipv4,  true,  true,  Prereq::Ipv4,  "ip_src",      &["nw_src"]),
    def(Field::Ipv4Dst,     4,  Syntax::Ipv4,  true,  true,  Prereq::Ipv4,  "ip_dst",      &["nw_dst"]),
    def(Field::Ipv6Src,     16, Syntax::Ipv6,  true,  true,  Prereq::Ipv6,  "ipv6_src",    &[]),
    def(Field::Ipv6Dst,     16, Syntax::Ipv6,  true,  true,  Prereq::Ipv6,  "ipv6_dst",    &[]),
    def(Field::TcpSrc,      2,  int(16),       true,  true,  Prereq::Tcp,   "tcp_src",     &[]),
    def(Field::TcpDst,      2,  int(16),       true,  true,  Prereq::Tcp,   "tcp_dst",     &[]),
    def(Field::UdpSrc,      2,  int(16),       true,  true,  Prereq::Udp,   "udp_src",     &[]),
    def(Field::UdpDst,      2,  int(16),       true,  true,  Prereq::Udp,   "udp_dst",     &[]),
    def(Field::SctpSrc,     2,  int(16),       true,  true,  Prereq::Sctp,  "sctp_src",    &[]),
    def(Field::SctpDst,     2,  int(16),       true,  true,  Prereq::Sctp,  "sctp_dst",    &[]),
    def(Field::TcpFlags,    2,  hex(12),       true,  false, Prereq::Tcp,   "tcp_flags",   &[]),
    def(Field::Icmpv4Type,  1,  int(8),        false, true,  Prereq::Icmp4, "icmp_type",   &["icmpv4_type"]),
    def(Field::Icmpv4Code,  1,  int(8),        false, true,  Prereq::Icmp4, "icmp_code",   &["icmpv4_code"]),
    def(Field::Icmpv6Type,  1,  int(8),        false, true,  Prereq::Icmp6, "icmpv6_type", &[]),
    def(Field::Icmpv6Code,  1,  int(8),        false, true,  Prereq::Icmp6, "icmpv6_code", &[]),
    def(Field::ArpOp,       2,  int(16),       false, true,  Prereq::Arp,   "arp_op",      &[]),
    def(Field::ArpSpa,      4,  Syntax::Ipv4,  true,  true,  Prereq::Arp,   "arp_spa",     &[]),
    def(Field::ArpTpa,      4,  Syntax::Ipv4,  true,  true,  Prereq::Arp,   "arp_tpa",     &[]),
    def(Field::ArpSha,      6,  Syntax::Mac,   true,  true,  Prereq::Arp,   "arp_sha",     &[]),
    def(Field::ArpTha,      6,  Syntax::Mac,   true,  true,  Prereq::Arp,   "arp_tha",     &[]),
    def(Field::TunId,       8,  hex(64),       true,  true,  Prereq::None,  "tun_id",      &["tunnel_id"]),
    def(Field::TunSrc,      4,  Syntax::Ipv4,  true,  true,  Prereq::None,  "tun_src",     &[]),
    def(Field::TunDst,      4,  Syntax::Ipv4,  true,  true,  Prereq::None,  "tun_dst",     &[]),
    def(Field::Metadata,    8,  hex(64),       true,  true,  Prereq::None,  "metadata",    &[]),
    def(Field::Reg0,        4,  hex(32),       true,  true,  Prereq::None,  "reg0",        &[]),
    def(Field::Reg1,        4,  hex(32),       true,  true,  Prereq::None,  "reg1",        &[]),
    def(Field::Reg2,        4,  hex(32),       true,  true,  Prereq::None,  "reg2",        &[]),
    def(Field::Reg3,        4,  hex(32),       true,  true,  Prereq::None,  "reg3",        &[]),
    def(Field::Reg4,        4,  hex(32),       true,  true,  Prereq::None,  "reg4",        &[]),
    def(Field::Reg5,        4,  hex(32),       true,  true,  Prereq::None,  "reg5",        &[]),
    def(Field::Reg6,        4,  hex(32),       true,  true,  Prereq::None,  "reg6",        &[]),
    def(Field::Reg7,        4,  hex(32),       true,  true,  Prereq::None,  "reg7",        &[]),
    // Registers beyond reg7 (Nicira extensions, issue 20).
    def(Field::Reg8,        4,  hex(32),       true,  true,  Prereq::None,  "reg8",        &[]),
    def(Field::Reg9,        4,  hex(32),       true,  true,  Prereq::None,  "reg9",        &[]),
    def(Field::Reg10,       4,  hex(32),       true,  true,  Prereq::None,  "reg10",       &[]),
    def(Field::Reg11,       4,  hex(32),       true,  true,  Prereq::None,  "reg11",       &[]),
    def(Field::Reg12,       4,  hex(32),       true,  true,  Prereq::None,  "reg12",       &[]),
    def(Field::Reg13,       4,  hex(32),       true,  true,  Prereq::None,  "reg13",       &[]),
    def(Field::Reg14,       4,  hex(32),       true,  true,  Prereq::None,  "reg14",       &[]),
    def(Field::Reg15,       4,  hex(32),       true,  true,  Prereq::None,  "reg15",       &[]),
    def(Field::Xreg0,       8,  hex(64),       true,  true,  Prereq::None,  "xreg0",       &[]),
    def(Field::Xreg1,       8,  hex(64),       true,  true,  Prereq::None,  "xreg1",       &[]),
    def(Field::Xreg2,       8,  hex(64),       true,  true,  Prereq::None,  "xreg2",       &[]),
    def(Field::Xreg3,       8,  hex(64),       true,  true,  Prereq::None,  "xreg3",       &[]),
    def(Field::Xreg4,       8,  hex(64),       true,  true,  Prereq::None,  "xreg4",       &[]),
    def(Field::Xreg5,       8,  hex(64),       true,  true,  Prereq::None,  "xreg5",       &[]),
    def(Field::Xreg6,       8,  hex(64),       true,  true,  Prereq::None,  "xreg6",       &[]),
    def(Field::Xreg7,       8,  hex(64),       true,  true,  Prereq::None,  "xreg7",       &[]),
    def(Field::MplsLabel,   4,  int(20),       false, true,  Prereq::Mpls,  "mpls_label",  &[]),
    def(Field::MplsTc,      1,  int(3),        false, true,  Prereq::Mpls,  "mpls_tc",     &[]),
    def(Field::MplsBos,     1,  int(1),        false, false, Prereq::Mpls,  "mpls_bos",    &[]),
    def(Field::MplsTtl,     1,  int(8),        false, true,  Prereq::Mpls,  "mpls_ttl",    &[]),
    def(Field::Ipv6Label,   4,  hex(20),       true,  true,  Prereq::Ipv6,  "ipv6_label",  &[]),
    def(Field::NdTarget,    16, Syntax::Ipv6,  true,  true,  Prereq::Nd,    "nd_target",   &[]),
    def(Field::NdSll,       6,  Syntax::Mac,   true,  true,  Prereq::NdSolicit, "nd_sll", &[]),
    def(Field::NdTll,       6,  Syntax::Mac,   true,  true,  Prereq::NdAdvert,  "nd_tll", &[]),
    def(Field::IpFrag,      1,  int(2),        true,  false, Prereq::Ip,    "nw_frag",     &["ip_frag"]),
    def(Field::PktMark,     4,  hex(32),       true,  true,  Prereq::None,  "pkt_mark",    &[]),
    def(Field::TunFlags,    2,  hex(1),        true,  false, Prereq::None,  "tun_flags",   &[]),
    // Connection tracking: match only (the `ct` action writes mark and label).
    def(Field::CtState,     1,  hex(8),        true,  false, Prereq::None,  "ct_state",    &[]),
    def(Field::CtZone,      2,  int(16),       false, false, Prereq::None,  "ct_zone",     &[]),
    def(Field::CtMark,      4,  hex(32),       true,  false, Prereq::None,  "ct_mark",     &[]),
    def(Field::CtLabel,     16, Syntax::Hex128, true, false, Prereq::None,  "ct_label",    &[]),
    def(Field::CtNwSrc,     4,  Syntax::Ipv4,  true,  false, Prereq::Ipv4,  "ct_nw_src",   &[]),
    def(Field::CtNwDst,     4,  Syntax::Ipv4,  true,  false, Prereq::Ipv4,  "ct_nw_dst",   &[]),
    def(Field::CtIpv6Src,   16, Syntax::Ipv6,  true,  false, Prereq::Ipv6,  "ct_ipv6_src", &[]),
    def(Field::CtIpv6Dst,   16, Syntax::Ipv6,  true,  false, Prereq::Ipv6,  "ct_ipv6_dst", &[]),
    def(Field::CtNwProto,   1,  int(8),        false, false, Prereq::None,    "ct_nw_proto", &[]),
    def(Field::CtTpSrc,     2,  int(16),       true,  false, Prereq::None,  "ct_tp_src",   &[]),
    def(Field::CtTpDst,     2,  int(16),       true,  false, Prereq::None,  "ct_tp_dst",   &[]),
    // 128-bit registers (Nicira extensions, issue 20).
    def(Field::Xxreg0,      16, hex(128),      true,  true,  Prereq::None,  "xxreg0",      &[]),
    def(Field::Xxreg1,      16, hex(128),      true,  true,  Prereq::None,  "xxreg1",      &[]),
    def(Field::Xxreg2,      16, hex(128),      true,  true,  Prereq::None,  "xxreg2",      &[]),
    def(Field::Xxreg3,      16, hex(128),      true,  true,  Prereq::None,  "xxreg3",      &[]),
    // The action set's output port (OpenFlow 1.5): match only.
    def(Field::ActsetOutput, 4, Syntax::Port,  false, false, Prereq::None,  "actset_output", &[]),
    // The conjunction a packet satisfied: match only.
    def(Field::ConjId,      4,  int(32),       false, false, Prereq::None,  "conj_id",     &[]),
];

/// A test on the match's protocol.
type When = fn(Ctx) -> bool;

/// Names that mean another field when the match pins a protocol, tried before [`FIELDS`]:
/// (name, when, field).
pub(super) const CONTEXTUAL: &[(&str, When, Field)] = &[
    ("nw_src", Ctx::arp, Field::ArpSpa),
    ("ip_src", Ctx::arp, Field::ArpSpa),
    ("nw_dst", Ctx::arp, Field::ArpTpa),
    ("ip_dst", Ctx::arp, Field::ArpTpa),
    ("nw_proto", Ctx::arp, Field::ArpOp),
    ("ip_proto", Ctx::arp, Field::ArpOp),
    ("icmp_type", Ctx::ip6, Field::Icmpv6Type),
    ("icmp_code", Ctx::ip6, Field::Icmpv6Code),
];

/// `tp_src` / `tp_dst`: the transport port fields of each IP protocol.
const TRANSPORT_PORTS: &[(u8, Field, Field)] = &[
    (IPPROTO_TCP, Field::TcpSrc, Field::TcpDst),
    (IPPROTO_UDP, Field::UdpSrc, Field::UdpDst),
    (IPPROTO_SCTP, Field::SctpSrc, Field::SctpDst),
];

/// The Nicira/OXM names that `load:` users write, for the fields this syntax has, and the
/// text name each stands for (resolved like that name, in the match's context). The first
/// name of a field is the one a subfield of it is printed with (Open vSwitch's choice).
pub(super) const NXM_NAMES: &[(&str, &str)] = &[
    ("NXM_OF_IN_PORT", "in_port"),
    ("OXM_OF_IN_PORT", "in_port"),
    ("NXM_OF_ETH_TYPE", "eth_type"),
    ("OXM_OF_ETH_TYPE", "eth_type"),
    ("OXM_OF_VLAN_VID", "vlan_vid"),
    ("OXM_OF_VLAN_PCP", "vlan_pcp"),
    ("OXM_OF_IP_DSCP", "ip_dscp"),
    ("NXM_NX_IP_ECN", "nw_ecn"),
    ("OXM_OF_IP_ECN", "nw_ecn"),
    ("NXM_OF_IP_PROTO", "nw_proto"),
    ("OXM_OF_IP_PROTO", "nw_proto"),
    ("NXM_NX_IP_TTL", "nw_ttl"),
    ("NXM_NX_IPV6_SRC", "ipv6_src"),
    ("OXM_OF_IPV6_SRC", "ipv6_src"),
    ("NXM_NX_IPV6_DST", "ipv6_dst"),
    ("OXM_OF_IPV6_DST", "ipv6_dst"),
    ("NXM_OF_TCP_SRC", "tcp_src"),
    ("OXM_OF_TCP_SRC", "tcp_src"),
    ("NXM_OF_TCP_DST", "tcp_dst"),
    ("OXM_OF_TCP_DST", "tcp_dst"),
    ("NXM_OF_UDP_SRC", "udp_src"),
    ("OXM_OF_UDP_SRC", "udp_src"),
    ("NXM_OF_UDP_DST", "udp_dst"),
    ("OXM_OF_UDP_DST", "udp_dst"),
    ("OXM_OF_SCTP_SRC", "sctp_src"),
    ("OXM_OF_SCTP_DST", "sctp_dst"),
    ("NXM_NX_TCP_FLAGS", "tcp_flags"),
    ("NXM_OF_ICMP_TYPE", "icmp_type"),
    ("OXM_OF_ICMPV4_TYPE", "icmp_type"),
    ("NXM_OF_ICMP_CODE", "icmp_code"),
    ("OXM_OF_ICMPV4_CODE", "icmp_code"),
    ("NXM_NX_ICMPV6_TYPE", "icmpv6_type"),
    ("OXM_OF_ICMPV6_TYPE", "icmpv6_type"),
    ("NXM_NX_ICMPV6_CODE", "icmpv6_code"),
    ("OXM_OF_ICMPV6_CODE", "icmpv6_code"),
    ("NXM_OF_ARP_OP", "arp_op"),
    ("OXM_OF_ARP_OP", "arp_op"),
    ("NXM_OF_ARP_SPA", "arp_spa"),
    ("OXM_OF_ARP_SPA", "arp_spa"),
    ("NXM_OF_ARP_TPA", "arp_tpa"),
    ("OXM_OF_ARP_TPA", "arp_tpa"),
    ("NXM_NX_ARP_SHA", "arp_sha"),
    ("OXM_OF_ARP_SHA", "arp_sha"),
    ("NXM_NX_ARP_THA", "arp_tha"),
    ("OXM_OF_ARP_THA", "arp_tha"),
    ("NXM_NX_REG8", "reg8"),
    ("NXM_NX_REG9", "reg9"),
    ("NXM_NX_REG10", "reg10"),
    ("NXM_NX_REG11", "reg11"),
    ("NXM_NX_REG12", "reg12"),
    ("NXM_NX_REG13", "reg13"),
    ("NXM_NX_REG14", "reg14"),
    ("NXM_NX_REG15", "reg15"),
    ("ONFOXM_ET_ACTSET_OUTPUT", "actset_output"),
    ("OXM_OF_PKT_REG0", "xreg0"),
    ("OXM_OF_PKT_REG1", "xreg1"),
    ("OXM_OF_PKT_REG2", "xreg2"),
    ("OXM_OF_PKT_REG3", "xreg3"),
    ("OXM_OF_PKT_REG4", "xreg4"),
    ("OXM_OF_PKT_REG5", "xreg5"),
    ("OXM_OF_PKT_REG6", "xreg6"),
    ("OXM_OF_PKT_REG7", "xreg7"),
    ("NXM_NX_XXREG0", "xxreg0"),
    ("NXM_NX_XXREG1", "xxreg1"),
    ("NXM_NX_XXREG2", "xxreg2"),
    ("NXM_NX_XXREG3", "xxreg3"),
    ("NXM_OF_ETH_SRC", "eth_src"),
    ("OXM_OF_ETH_SRC", "eth_src"),
    ("NXM_OF_ETH_DST", "eth_dst"),
    ("OXM_OF_ETH_DST", "eth_dst"),
    ("NXM_OF_VLAN_TCI", "vlan_tci"),
    ("NXM_OF_IP_SRC", "ip_src"),
    ("OXM_OF_IPV4_SRC", "ip_src"),
    ("NXM_OF_IP_DST", "ip_dst"),
    ("OXM_OF_IPV4_DST", "ip_dst"),
    ("NXM_NX_TUN_ID", "tun_id"),
    ("OXM_OF_TUNNEL_ID", "tun_id"),
    ("NXM_NX_TUN_IPV4_SRC", "tun_src"),
    ("NXM_NX_TUN_IPV4_DST", "tun_dst"),
    ("OXM_OF_METADATA", "metadata"),
    ("NXM_NX_REG0", "reg0"),
    ("NXM_NX_REG1", "reg1"),
    ("NXM_NX_REG2", "reg2"),
    ("NXM_NX_REG3", "reg3"),
    ("NXM_NX_REG4", "reg4"),
    ("NXM_NX_REG5", "reg5"),
    ("NXM_NX_REG6", "reg6"),
    ("NXM_NX_REG7", "reg7"),
    ("OXM_OF_MPLS_LABEL", "mpls_label"),
    ("OXM_OF_MPLS_TC", "mpls_tc"),
    ("OXM_OF_MPLS_BOS", "mpls_bos"),
    ("NXM_NX_MPLS_TTL", "mpls_ttl"),
    ("NXM_NX_IPV6_LABEL", "ipv6_label"),
    ("OXM_OF_IPV6_FLABEL", "ipv6_label"),
    ("NXM_NX_ND_TARGET", "nd_target"),
    ("OXM_OF_IPV6_ND_TARGET", "nd_target"),
    ("NXM_NX_ND_SLL", "nd_sll"),
    ("OXM_OF_IPV6_ND_SLL", "nd_sll"),
    ("NXM_NX_ND_TLL", "nd_tll"),
    ("OXM_OF_IPV6_ND_TLL", "nd_tll"),
    ("NXM_NX_IP_FRAG", "ip_frag"),
    ("NXM_NX_PKT_MARK", "pkt_mark"),
    ("NXM_NX_CONJ_ID", "conj_id"),
    ("NXM_NX_TUN_FLAGS", "tun_flags"),
    ("NXM_NX_CT_STATE", "ct_state"),
    ("NXM_NX_CT_ZONE", "ct_zone"),
    ("NXM_NX_CT_MARK", "ct_mark"),
    ("NXM_NX_CT_LABEL", "ct_label"),
    ("NXM_NX_CT_NW_SRC", "ct_nw_src"),
    ("NXM_NX_CT_NW_DST", "ct_nw_dst"),
    ("NXM_NX_CT_IPV6_SRC", "ct_ipv6_src"),
    ("NXM_NX_CT_IPV6_DST", "ct_ipv6_dst"),
    ("NXM_NX_CT_NW_PROTO", "ct_nw_proto"),
    ("NXM_NX_CT_TP_SRC", "ct_tp_src"),
    ("NXM_NX_CT_TP_DST", "ct_tp_dst"),
];

pub(super) fn field_def(field: Field) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|d| d.field == field)
}

pub(super) fn field_def_i32(field: i32) -> Option<&'static FieldDef> {
    Field::try_from(field).ok().and_then(field_def)
}

/// Width in bytes of a field's value, and whether it takes a mask; `None` for
/// `FIELD_UNSPECIFIED` and unknown numbers. For the daemon's own validation of API input.
pub fn field_width(field: Field) -> Option<(usize, bool)> {
    field_def(field).map(|d| (d.width, d.maskable))
}

/// The text name of a field (`ip_dst`, `vlan_vid`, ...), as `set_field` prints it.
pub fn field_name(field: Field) -> &'static str {
    field_def(field).map_or("unknown", |d| d.name)
}

/// What a text field name means in a given protocol context.
pub(super) enum Named {
    Field(Field),
    /// `dl_vlan`: 12-bit VID, 0xffff for "no tag"; stored as VLAN_VID.
    DlVlan,
    /// `nw_tos`: TOS byte with DSCP bits; stored as IP_DSCP (value >> 2).
    NwTos,
}

/// Resolves a match / set_field field name. `Err` carries the message for unknown names or
/// names that need a protocol the context lacks.
pub(super) fn resolve_name(name: &str, ctx: Ctx) -> std::result::Result<Named, String> {
    let name = NXM_NAMES
        .iter()
        .find(|(nxm, _)| *nxm == name)
        .map_or(name, |(_, text)| text);
    match name {
        "dl_vlan" => return Ok(Named::DlVlan),
        "nw_tos" => return Ok(Named::NwTos),
        "tp_src" | "tp_dst" => {
            let src = name == "tp_src";
            return TRANSPORT_PORTS
                .iter()
                .find(|(p, _, _)| ctx.ip() && ctx.ip_proto == Some(*p))
                .map(|&(_, s, d)| Named::Field(if src { s } else { d }))
                .ok_or_else(|| {
                    format!(
                        "`{name}` needs a TCP, UDP or SCTP match: add `tcp`, `udp` or `sctp` (or their IPv6 forms)"
                    )
                });
        }
        _ => {}
    }
    if let Some(&(_, _, f)) = CONTEXTUAL
        .iter()
        .find(|(n, when, _)| *n == name && when(ctx))
    {
        return Ok(Named::Field(f));
    }
    FIELDS
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
        .map(|d| Named::Field(d.field))
        .ok_or_else(|| format!("unknown field `{name}`"))
}

/// Parses one value (no mask) of a field.
pub(super) fn parse_value(d: &FieldDef, tok: Tok<'_>) -> Result<Vec<u8>> {
    match d.syntax {
        Syntax::Int { bits, .. } if bits > 64 => parse_u128(tok.text)
            .map(|v| v.to_be_bytes()[16 - d.width.min(16)..].to_vec())
            .ok_or_else(|| {
                tok.err(format!(
                    "{}: expected a decimal or 0x-prefixed hexadecimal number",
                    d.name
                ))
            }),
        Syntax::Int { bits, .. } => {
            let max = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            num(tok, max, d.name).map(|v| be_bytes(v, d.width))
        }
        Syntax::Mac => parse_mac(tok).map(|m| m.to_vec()),
        Syntax::Ipv4 => parse_ipv4(tok).map(|a| a.octets().to_vec()),
        Syntax::Ipv6 => parse_ipv6(tok).map(|a| a.octets().to_vec()),
        Syntax::Port => match parse_port_number(tok)? {
            PortText::Number(n) => Ok(n.to_be_bytes().to_vec()),
            _ => Err(tok.err("expected a port number")),
        },
        Syntax::Hex128 => super::ct::parse_u128(tok, d.name).map(|v| v.to_be_bytes().to_vec()),
    }
}

/// The bits a field's value can have, as a mask of its width (all ones for addresses).
pub(super) fn full_mask(d: &FieldDef) -> Vec<u8> {
    match d.syntax {
        Syntax::Int { bits, .. } if (bits as usize) < d.width * 8 && bits < 64 => {
            be_bytes((1u64 << bits) - 1, d.width)
        }
        _ => vec![0xff; d.width],
    }
}

/// Parses `VALUE[/MASK]` for a field into canonical (value, mask).
/// Returns `None` for an all-zero mask (the field is wildcarded).
pub(super) fn parse_value_mask(d: &FieldDef, tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let Some((vtok, mtok)) = tok.split_once("/") else {
        return Ok(Some((parse_value(d, tok)?, Vec::new())));
    };
    if !d.maskable {
        return Err(mtok.err(format!("`{}` does not take a mask", d.name)));
    }
    let value = parse_value(d, vtok)?;
    let prefix_ok = matches!(d.syntax, Syntax::Ipv4 | Syntax::Ipv6);
    let mask = if prefix_ok && !mtok.text.contains(['.', ':']) {
        let bits = d.width * 8;
        match mtok.text.parse::<usize>() {
            Ok(p) if p <= bits && mtok.text.bytes().all(|b| b.is_ascii_digit()) => {
                prefix_mask(bits, p)
            }
            _ => return Err(mtok.err(format!("bad prefix length: expected 0..={bits}"))),
        }
    } else {
        parse_value(d, mtok)?
    };
    Ok(canonical(d, value, mask))
}

/// The canonical (value, mask) of a field: mask bits outside the field's bits dropped,
/// value &= mask; a mask covering every bit of the field -> empty (exact); an all-zero mask
/// -> None (wildcarded).
pub(super) fn canonical(
    d: &FieldDef,
    mut value: Vec<u8>,
    mut mask: Vec<u8>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let full = full_mask(d);
    if mask.len() == full.len() {
        for (m, f) in mask.iter_mut().zip(&full) {
            *m &= *f;
        }
    }
    if mask.iter().all(|b| *b == 0) {
        return None;
    }
    for (v, m) in value.iter_mut().zip(&mask) {
        *v &= *m;
    }
    if mask == full || mask.iter().all(|b| *b == 0xff) {
        Some((value, Vec::new()))
    } else {
        Some((value, mask))
    }
}

/// Prints a value[/mask] in a field's syntax. Values of the wrong width print as hex bytes.
pub(super) fn value_text(d: &FieldDef, value: &[u8], mask: &[u8]) -> String {
    let bad = value.len() != d.width || (!mask.is_empty() && mask.len() != d.width);
    if bad {
        return if mask.is_empty() {
            hex_bytes(value)
        } else {
            format!("{}/{}", hex_bytes(value), hex_bytes(mask))
        };
    }
    match d.syntax {
        Syntax::Int { .. } if d.width > 8 => {
            if mask.is_empty() {
                c_hex128(be_u128(value))
            } else {
                format!("0x{:x}/0x{:x}", be_u128(value), be_u128(mask))
            }
        }
        Syntax::Int { hex, .. } => {
            if mask.is_empty() {
                int_text(be_u64(value), hex)
            } else {
                format!("0x{:x}/0x{:x}", be_u64(value), be_u64(mask))
            }
        }
        Syntax::Port => be_u64(value).to_string(),
        Syntax::Hex128 => super::ct::u128_masked_text(value, mask),
        Syntax::Mac => {
            if mask.is_empty() {
                mac_text(value)
            } else {
                format!("{}/{}", mac_text(value), mac_text(mask))
            }
        }
        Syntax::Ipv4 | Syntax::Ipv6 => {
            let addr = |b: &[u8]| -> String {
                if let Ok(a) = <[u8; 4]>::try_from(b) {
                    Ipv4Addr::from(a).to_string()
                } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                    Ipv6Addr::from(a).to_string()
                } else {
                    hex_bytes(b)
                }
            };
            if mask.is_empty() {
                addr(value)
            } else if let Some(p) = mask_prefix(mask) {
                format!("{}/{p}", addr(value))
            } else {
                format!("{}/{}", addr(value), addr(mask))
            }
        }
    }
}
