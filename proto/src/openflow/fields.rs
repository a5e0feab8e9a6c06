//! The OXM/NXM field table: every match field the codec knows, as data.
//!
//! One row per wire field: the OpenFlow 1.3 basic class (`OXM_OF_*`, class 0x8000) complete
//! from in_port to ipv6_exthdr (plus the 1.4/1.5 additions), the packet registers (`xreg0-7`,
//! class 0x8001), the Nicira classes ovs-ofctl and Faucet emit in OpenFlow 1.3 (`NXM_OF_*`
//! class 0, `NXM_NX_*` class 1: registers, tunnel, conntrack, pkt_mark, ...), and the
//! experimenter fields (class 0xffff) of Nicira and ONF. Columns: class, experimenter id,
//! field number, value size in bytes (0: variable, 1 to 124, for tun_metadata), whether a
//! mask is allowed (as Open vSwitch allows it, which is looser than the 1.3 text for L4
//! ports), the ovs-ofctl field name, and the wire name.
//!
//! Several rows share an ovs-ofctl name (`eth_dst` is both `NXM_OF_ETH_DST` and
//! `OXM_OF_ETH_DST`): they are the same datapath field, as the mapping layer treats them.

use super::error::{NX_VENDOR_ID, ONF_VENDOR_ID};

/// OXM class of the Nicira NXM_OF_* fields.
pub const NXM0: u16 = 0x0000;
/// OXM class of the Nicira NXM_NX_* fields.
pub const NXM1: u16 = 0x0001;
/// OXM class of the OpenFlow basic fields (OFPXMC_OPENFLOW_BASIC).
pub const OFB: u16 = 0x8000;
/// OXM class of the packet registers (OFPXMC_PACKET_REGS).
pub const PKT_REGS: u16 = 0x8001;
/// OXM class of experimenter fields (an experimenter id follows the header).
pub const EXP: u16 = 0xffff;
const NONE: u32 = 0;
const NX: u32 = NX_VENDOR_ID;
const ONF: u32 = ONF_VENDOR_ID;

/// One known field.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// Which field.
    pub field: Field,
    /// OXM class.
    pub class: u16,
    /// Experimenter id for class 0xffff, else 0.
    pub experimenter: u32,
    /// Field number within the class (7 bits).
    pub number: u8,
    /// Value size in bytes; 0 for variable-length fields (tun_metadata: 1 to 124).
    pub size: u8,
    /// Whether a mask may follow the value.
    pub maskable: bool,
    /// The ovs-ofctl name of the datapath field it matches.
    pub name: &'static str,
    /// The wire name (`OXM_OF_IN_PORT`, `NXM_NX_REG0`, ...).
    pub wire_name: &'static str,
}

impl FieldDef {
    /// The unmasked 32-bit OXM header (class, field, length of the value).
    pub const fn header(&self) -> u32 {
        let exp_len = if self.class == EXP { 4 } else { 0 };
        ((self.class as u32) << 16) | ((self.number as u32) << 9) | (self.size as u32 + exp_len)
    }
}

macro_rules! fields {
    ($( $variant:ident = ($class:expr, $exp:expr, $num:expr, $size:expr, $mask:expr, $name:expr, $wire:expr); )*) => {
        /// A known match field: one row of [`FIELDS`].
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum Field { $( $variant, )* }

        /// The field table, in [`Field`] order.
        pub const FIELDS: &[FieldDef] = &[
            $( FieldDef { field: Field::$variant, class: $class, experimenter: $exp, number: $num,
                          size: $size, maskable: $mask, name: $name, wire_name: $wire }, )*
        ];
    };
}

fields! {
    InPort = (OFB, NONE, 0, 4, false, "in_port", "OXM_OF_IN_PORT");
    InPhyPort = (OFB, NONE, 1, 4, false, "in_phy_port", "OXM_OF_IN_PHY_PORT");
    Metadata = (OFB, NONE, 2, 8, true, "metadata", "OXM_OF_METADATA");
    EthDst = (OFB, NONE, 3, 6, true, "eth_dst", "OXM_OF_ETH_DST");
    EthSrc = (OFB, NONE, 4, 6, true, "eth_src", "OXM_OF_ETH_SRC");
    EthType = (OFB, NONE, 5, 2, false, "eth_type", "OXM_OF_ETH_TYPE");
    VlanVid = (OFB, NONE, 6, 2, true, "vlan_vid", "OXM_OF_VLAN_VID");
    VlanPcp = (OFB, NONE, 7, 1, false, "vlan_pcp", "OXM_OF_VLAN_PCP");
    IpDscp = (OFB, NONE, 8, 1, false, "ip_dscp", "OXM_OF_IP_DSCP");
    IpEcn = (OFB, NONE, 9, 1, false, "ip_ecn", "OXM_OF_IP_ECN");
    IpProto = (OFB, NONE, 10, 1, false, "ip_proto", "OXM_OF_IP_PROTO");
    Ipv4Src = (OFB, NONE, 11, 4, true, "ipv4_src", "OXM_OF_IPV4_SRC");
    Ipv4Dst = (OFB, NONE, 12, 4, true, "ipv4_dst", "OXM_OF_IPV4_DST");
    TcpSrc = (OFB, NONE, 13, 2, true, "tcp_src", "OXM_OF_TCP_SRC");
    TcpDst = (OFB, NONE, 14, 2, true, "tcp_dst", "OXM_OF_TCP_DST");
    UdpSrc = (OFB, NONE, 15, 2, true, "udp_src", "OXM_OF_UDP_SRC");
    UdpDst = (OFB, NONE, 16, 2, true, "udp_dst", "OXM_OF_UDP_DST");
    SctpSrc = (OFB, NONE, 17, 2, true, "sctp_src", "OXM_OF_SCTP_SRC");
    SctpDst = (OFB, NONE, 18, 2, true, "sctp_dst", "OXM_OF_SCTP_DST");
    Icmpv4Type = (OFB, NONE, 19, 1, false, "icmpv4_type", "OXM_OF_ICMPV4_TYPE");
    Icmpv4Code = (OFB, NONE, 20, 1, false, "icmpv4_code", "OXM_OF_ICMPV4_CODE");
    ArpOp = (OFB, NONE, 21, 2, false, "arp_op", "OXM_OF_ARP_OP");
    ArpSpa = (OFB, NONE, 22, 4, true, "arp_spa", "OXM_OF_ARP_SPA");
    ArpTpa = (OFB, NONE, 23, 4, true, "arp_tpa", "OXM_OF_ARP_TPA");
    ArpSha = (OFB, NONE, 24, 6, true, "arp_sha", "OXM_OF_ARP_SHA");
    ArpTha = (OFB, NONE, 25, 6, true, "arp_tha", "OXM_OF_ARP_THA");
    Ipv6Src = (OFB, NONE, 26, 16, true, "ipv6_src", "OXM_OF_IPV6_SRC");
    Ipv6Dst = (OFB, NONE, 27, 16, true, "ipv6_dst", "OXM_OF_IPV6_DST");
    Ipv6Flabel = (OFB, NONE, 28, 4, true, "ipv6_flabel", "OXM_OF_IPV6_FLABEL");
    Icmpv6Type = (OFB, NONE, 29, 1, false, "icmpv6_type", "OXM_OF_ICMPV6_TYPE");
    Icmpv6Code = (OFB, NONE, 30, 1, false, "icmpv6_code", "OXM_OF_ICMPV6_CODE");
    Ipv6NdTarget = (OFB, NONE, 31, 16, true, "ipv6_nd_target", "OXM_OF_IPV6_ND_TARGET");
    Ipv6NdSll = (OFB, NONE, 32, 6, true, "ipv6_nd_sll", "OXM_OF_IPV6_ND_SLL");
    Ipv6NdTll = (OFB, NONE, 33, 6, true, "ipv6_nd_tll", "OXM_OF_IPV6_ND_TLL");
    MplsLabel = (OFB, NONE, 34, 4, false, "mpls_label", "OXM_OF_MPLS_LABEL");
    MplsTc = (OFB, NONE, 35, 1, false, "mpls_tc", "OXM_OF_MPLS_TC");
    MplsBos = (OFB, NONE, 36, 1, false, "mpls_bos", "OXM_OF_MPLS_BOS");
    PbbIsid = (OFB, NONE, 37, 3, true, "pbb_isid", "OXM_OF_PBB_ISID");
    TunnelId = (OFB, NONE, 38, 8, true, "tunnel_id", "OXM_OF_TUNNEL_ID");
    Ipv6Exthdr = (OFB, NONE, 39, 2, true, "ipv6_exthdr", "OXM_OF_IPV6_EXTHDR");
    PbbUca = (OFB, NONE, 41, 1, false, "pbb_uca", "OXM_OF_PBB_UCA");
    TcpFlags = (OFB, NONE, 42, 2, true, "tcp_flags", "OXM_OF_TCP_FLAGS");
    ActsetOutput = (OFB, NONE, 43, 4, false, "actset_output", "OXM_OF_ACTSET_OUTPUT");
    PacketType = (OFB, NONE, 44, 4, false, "packet_type", "OXM_OF_PACKET_TYPE");
    NxmInPort = (NXM0, NONE, 0, 2, false, "in_port", "NXM_OF_IN_PORT");
    NxmEthDst = (NXM0, NONE, 1, 6, true, "eth_dst", "NXM_OF_ETH_DST");
    NxmEthSrc = (NXM0, NONE, 2, 6, true, "eth_src", "NXM_OF_ETH_SRC");
    NxmEthType = (NXM0, NONE, 3, 2, false, "eth_type", "NXM_OF_ETH_TYPE");
    NxmVlanTci = (NXM0, NONE, 4, 2, true, "vlan_tci", "NXM_OF_VLAN_TCI");
    NxmIpTos = (NXM0, NONE, 5, 1, false, "nw_tos", "NXM_OF_IP_TOS");
    NxmIpProto = (NXM0, NONE, 6, 1, false, "nw_proto", "NXM_OF_IP_PROTO");
    NxmIpSrc = (NXM0, NONE, 7, 4, true, "ip_src", "NXM_OF_IP_SRC");
    NxmIpDst = (NXM0, NONE, 8, 4, true, "ip_dst", "NXM_OF_IP_DST");
    NxmTcpSrc = (NXM0, NONE, 9, 2, true, "tcp_src", "NXM_OF_TCP_SRC");
    NxmTcpDst = (NXM0, NONE, 10, 2, true, "tcp_dst", "NXM_OF_TCP_DST");
    NxmUdpSrc = (NXM0, NONE, 11, 2, true, "udp_src", "NXM_OF_UDP_SRC");
    NxmUdpDst = (NXM0, NONE, 12, 2, true, "udp_dst", "NXM_OF_UDP_DST");
    NxmIcmpType = (NXM0, NONE, 13, 1, false, "icmp_type", "NXM_OF_ICMP_TYPE");
    NxmIcmpCode = (NXM0, NONE, 14, 1, false, "icmp_code", "NXM_OF_ICMP_CODE");
    NxmArpOp = (NXM0, NONE, 15, 2, false, "arp_op", "NXM_OF_ARP_OP");
    NxmArpSpa = (NXM0, NONE, 16, 4, true, "arp_spa", "NXM_OF_ARP_SPA");
    NxmArpTpa = (NXM0, NONE, 17, 4, true, "arp_tpa", "NXM_OF_ARP_TPA");
    Reg0 = (NXM1, NONE, 0, 4, true, "reg0", "NXM_NX_REG0");
    Reg1 = (NXM1, NONE, 1, 4, true, "reg1", "NXM_NX_REG1");
    Reg2 = (NXM1, NONE, 2, 4, true, "reg2", "NXM_NX_REG2");
    Reg3 = (NXM1, NONE, 3, 4, true, "reg3", "NXM_NX_REG3");
    Reg4 = (NXM1, NONE, 4, 4, true, "reg4", "NXM_NX_REG4");
    Reg5 = (NXM1, NONE, 5, 4, true, "reg5", "NXM_NX_REG5");
    Reg6 = (NXM1, NONE, 6, 4, true, "reg6", "NXM_NX_REG6");
    Reg7 = (NXM1, NONE, 7, 4, true, "reg7", "NXM_NX_REG7");
    Reg8 = (NXM1, NONE, 8, 4, true, "reg8", "NXM_NX_REG8");
    Reg9 = (NXM1, NONE, 9, 4, true, "reg9", "NXM_NX_REG9");
    Reg10 = (NXM1, NONE, 10, 4, true, "reg10", "NXM_NX_REG10");
    Reg11 = (NXM1, NONE, 11, 4, true, "reg11", "NXM_NX_REG11");
    Reg12 = (NXM1, NONE, 12, 4, true, "reg12", "NXM_NX_REG12");
    Reg13 = (NXM1, NONE, 13, 4, true, "reg13", "NXM_NX_REG13");
    Reg14 = (NXM1, NONE, 14, 4, true, "reg14", "NXM_NX_REG14");
    Reg15 = (NXM1, NONE, 15, 4, true, "reg15", "NXM_NX_REG15");
    TunId = (NXM1, NONE, 16, 8, true, "tun_id", "NXM_NX_TUN_ID");
    NxmArpSha = (NXM1, NONE, 17, 6, true, "arp_sha", "NXM_NX_ARP_SHA");
    NxmArpTha = (NXM1, NONE, 18, 6, true, "arp_tha", "NXM_NX_ARP_THA");
    NxmIpv6Src = (NXM1, NONE, 19, 16, true, "ipv6_src", "NXM_NX_IPV6_SRC");
    NxmIpv6Dst = (NXM1, NONE, 20, 16, true, "ipv6_dst", "NXM_NX_IPV6_DST");
    NxmIcmpv6Type = (NXM1, NONE, 21, 1, false, "icmpv6_type", "NXM_NX_ICMPV6_TYPE");
    NxmIcmpv6Code = (NXM1, NONE, 22, 1, false, "icmpv6_code", "NXM_NX_ICMPV6_CODE");
    NxmNdTarget = (NXM1, NONE, 23, 16, true, "nd_target", "NXM_NX_ND_TARGET");
    NxmNdSll = (NXM1, NONE, 24, 6, true, "nd_sll", "NXM_NX_ND_SLL");
    NxmNdTll = (NXM1, NONE, 25, 6, true, "nd_tll", "NXM_NX_ND_TLL");
    IpFrag = (NXM1, NONE, 26, 1, true, "ip_frag", "NXM_NX_IP_FRAG");
    NxmIpv6Label = (NXM1, NONE, 27, 4, true, "ipv6_label", "NXM_NX_IPV6_LABEL");
    NxmIpEcn = (NXM1, NONE, 28, 1, false, "nw_ecn", "NXM_NX_IP_ECN");
    NxmIpTtl = (NXM1, NONE, 29, 1, false, "nw_ttl", "NXM_NX_IP_TTL");
    NxmMplsTtl = (NXM1, NONE, 30, 1, false, "mpls_ttl", "NXM_NX_MPLS_TTL");
    TunIpv4Src = (NXM1, NONE, 31, 4, true, "tun_src", "NXM_NX_TUN_IPV4_SRC");
    TunIpv4Dst = (NXM1, NONE, 32, 4, true, "tun_dst", "NXM_NX_TUN_IPV4_DST");
    PktMark = (NXM1, NONE, 33, 4, true, "pkt_mark", "NXM_NX_PKT_MARK");
    NxmTcpFlags = (NXM1, NONE, 34, 2, true, "tcp_flags", "NXM_NX_TCP_FLAGS");
    DpHash = (NXM1, NONE, 35, 4, true, "dp_hash", "NXM_NX_DP_HASH");
    RecircId = (NXM1, NONE, 36, 4, false, "recirc_id", "NXM_NX_RECIRC_ID");
    ConjId = (NXM1, NONE, 37, 4, false, "conj_id", "NXM_NX_CONJ_ID");
    TunGbpId = (NXM1, NONE, 38, 2, true, "tun_gbp_id", "NXM_NX_TUN_GBP_ID");
    TunGbpFlags = (NXM1, NONE, 39, 1, true, "tun_gbp_flags", "NXM_NX_TUN_GBP_FLAGS");
    TunMetadata0 = (NXM1, NONE, 40, 0, true, "tun_metadata0", "NXM_NX_TUN_METADATA0");
    TunMetadata1 = (NXM1, NONE, 41, 0, true, "tun_metadata1", "NXM_NX_TUN_METADATA1");
    TunMetadata2 = (NXM1, NONE, 42, 0, true, "tun_metadata2", "NXM_NX_TUN_METADATA2");
    TunMetadata3 = (NXM1, NONE, 43, 0, true, "tun_metadata3", "NXM_NX_TUN_METADATA3");
    TunMetadata4 = (NXM1, NONE, 44, 0, true, "tun_metadata4", "NXM_NX_TUN_METADATA4");
    TunMetadata5 = (NXM1, NONE, 45, 0, true, "tun_metadata5", "NXM_NX_TUN_METADATA5");
    TunMetadata6 = (NXM1, NONE, 46, 0, true, "tun_metadata6", "NXM_NX_TUN_METADATA6");
    TunMetadata7 = (NXM1, NONE, 47, 0, true, "tun_metadata7", "NXM_NX_TUN_METADATA7");
    TunMetadata8 = (NXM1, NONE, 48, 0, true, "tun_metadata8", "NXM_NX_TUN_METADATA8");
    TunMetadata9 = (NXM1, NONE, 49, 0, true, "tun_metadata9", "NXM_NX_TUN_METADATA9");
    TunMetadata10 = (NXM1, NONE, 50, 0, true, "tun_metadata10", "NXM_NX_TUN_METADATA10");
    TunMetadata11 = (NXM1, NONE, 51, 0, true, "tun_metadata11", "NXM_NX_TUN_METADATA11");
    TunMetadata12 = (NXM1, NONE, 52, 0, true, "tun_metadata12", "NXM_NX_TUN_METADATA12");
    TunMetadata13 = (NXM1, NONE, 53, 0, true, "tun_metadata13", "NXM_NX_TUN_METADATA13");
    TunMetadata14 = (NXM1, NONE, 54, 0, true, "tun_metadata14", "NXM_NX_TUN_METADATA14");
    TunMetadata15 = (NXM1, NONE, 55, 0, true, "tun_metadata15", "NXM_NX_TUN_METADATA15");
    TunMetadata16 = (NXM1, NONE, 56, 0, true, "tun_metadata16", "NXM_NX_TUN_METADATA16");
    TunMetadata17 = (NXM1, NONE, 57, 0, true, "tun_metadata17", "NXM_NX_TUN_METADATA17");
    TunMetadata18 = (NXM1, NONE, 58, 0, true, "tun_metadata18", "NXM_NX_TUN_METADATA18");
    TunMetadata19 = (NXM1, NONE, 59, 0, true, "tun_metadata19", "NXM_NX_TUN_METADATA19");
    TunMetadata20 = (NXM1, NONE, 60, 0, true, "tun_metadata20", "NXM_NX_TUN_METADATA20");
    TunMetadata21 = (NXM1, NONE, 61, 0, true, "tun_metadata21", "NXM_NX_TUN_METADATA21");
    TunMetadata22 = (NXM1, NONE, 62, 0, true, "tun_metadata22", "NXM_NX_TUN_METADATA22");
    TunMetadata23 = (NXM1, NONE, 63, 0, true, "tun_metadata23", "NXM_NX_TUN_METADATA23");
    TunMetadata24 = (NXM1, NONE, 64, 0, true, "tun_metadata24", "NXM_NX_TUN_METADATA24");
    TunMetadata25 = (NXM1, NONE, 65, 0, true, "tun_metadata25", "NXM_NX_TUN_METADATA25");
    TunMetadata26 = (NXM1, NONE, 66, 0, true, "tun_metadata26", "NXM_NX_TUN_METADATA26");
    TunMetadata27 = (NXM1, NONE, 67, 0, true, "tun_metadata27", "NXM_NX_TUN_METADATA27");
    TunMetadata28 = (NXM1, NONE, 68, 0, true, "tun_metadata28", "NXM_NX_TUN_METADATA28");
    TunMetadata29 = (NXM1, NONE, 69, 0, true, "tun_metadata29", "NXM_NX_TUN_METADATA29");
    TunMetadata30 = (NXM1, NONE, 70, 0, true, "tun_metadata30", "NXM_NX_TUN_METADATA30");
    TunMetadata31 = (NXM1, NONE, 71, 0, true, "tun_metadata31", "NXM_NX_TUN_METADATA31");
    TunMetadata32 = (NXM1, NONE, 72, 0, true, "tun_metadata32", "NXM_NX_TUN_METADATA32");
    TunMetadata33 = (NXM1, NONE, 73, 0, true, "tun_metadata33", "NXM_NX_TUN_METADATA33");
    TunMetadata34 = (NXM1, NONE, 74, 0, true, "tun_metadata34", "NXM_NX_TUN_METADATA34");
    TunMetadata35 = (NXM1, NONE, 75, 0, true, "tun_metadata35", "NXM_NX_TUN_METADATA35");
    TunMetadata36 = (NXM1, NONE, 76, 0, true, "tun_metadata36", "NXM_NX_TUN_METADATA36");
    TunMetadata37 = (NXM1, NONE, 77, 0, true, "tun_metadata37", "NXM_NX_TUN_METADATA37");
    TunMetadata38 = (NXM1, NONE, 78, 0, true, "tun_metadata38", "NXM_NX_TUN_METADATA38");
    TunMetadata39 = (NXM1, NONE, 79, 0, true, "tun_metadata39", "NXM_NX_TUN_METADATA39");
    TunMetadata40 = (NXM1, NONE, 80, 0, true, "tun_metadata40", "NXM_NX_TUN_METADATA40");
    TunMetadata41 = (NXM1, NONE, 81, 0, true, "tun_metadata41", "NXM_NX_TUN_METADATA41");
    TunMetadata42 = (NXM1, NONE, 82, 0, true, "tun_metadata42", "NXM_NX_TUN_METADATA42");
    TunMetadata43 = (NXM1, NONE, 83, 0, true, "tun_metadata43", "NXM_NX_TUN_METADATA43");
    TunMetadata44 = (NXM1, NONE, 84, 0, true, "tun_metadata44", "NXM_NX_TUN_METADATA44");
    TunMetadata45 = (NXM1, NONE, 85, 0, true, "tun_metadata45", "NXM_NX_TUN_METADATA45");
    TunMetadata46 = (NXM1, NONE, 86, 0, true, "tun_metadata46", "NXM_NX_TUN_METADATA46");
    TunMetadata47 = (NXM1, NONE, 87, 0, true, "tun_metadata47", "NXM_NX_TUN_METADATA47");
    TunMetadata48 = (NXM1, NONE, 88, 0, true, "tun_metadata48", "NXM_NX_TUN_METADATA48");
    TunMetadata49 = (NXM1, NONE, 89, 0, true, "tun_metadata49", "NXM_NX_TUN_METADATA49");
    TunMetadata50 = (NXM1, NONE, 90, 0, true, "tun_metadata50", "NXM_NX_TUN_METADATA50");
    TunMetadata51 = (NXM1, NONE, 91, 0, true, "tun_metadata51", "NXM_NX_TUN_METADATA51");
    TunMetadata52 = (NXM1, NONE, 92, 0, true, "tun_metadata52", "NXM_NX_TUN_METADATA52");
    TunMetadata53 = (NXM1, NONE, 93, 0, true, "tun_metadata53", "NXM_NX_TUN_METADATA53");
    TunMetadata54 = (NXM1, NONE, 94, 0, true, "tun_metadata54", "NXM_NX_TUN_METADATA54");
    TunMetadata55 = (NXM1, NONE, 95, 0, true, "tun_metadata55", "NXM_NX_TUN_METADATA55");
    TunMetadata56 = (NXM1, NONE, 96, 0, true, "tun_metadata56", "NXM_NX_TUN_METADATA56");
    TunMetadata57 = (NXM1, NONE, 97, 0, true, "tun_metadata57", "NXM_NX_TUN_METADATA57");
    TunMetadata58 = (NXM1, NONE, 98, 0, true, "tun_metadata58", "NXM_NX_TUN_METADATA58");
    TunMetadata59 = (NXM1, NONE, 99, 0, true, "tun_metadata59", "NXM_NX_TUN_METADATA59");
    TunMetadata60 = (NXM1, NONE, 100, 0, true, "tun_metadata60", "NXM_NX_TUN_METADATA60");
    TunMetadata61 = (NXM1, NONE, 101, 0, true, "tun_metadata61", "NXM_NX_TUN_METADATA61");
    TunMetadata62 = (NXM1, NONE, 102, 0, true, "tun_metadata62", "NXM_NX_TUN_METADATA62");
    TunMetadata63 = (NXM1, NONE, 103, 0, true, "tun_metadata63", "NXM_NX_TUN_METADATA63");
    TunFlags = (NXM1, NONE, 104, 2, true, "tun_flags", "NXM_NX_TUN_FLAGS");
    CtState = (NXM1, NONE, 105, 4, true, "ct_state", "NXM_NX_CT_STATE");
    CtZone = (NXM1, NONE, 106, 2, false, "ct_zone", "NXM_NX_CT_ZONE");
    CtMark = (NXM1, NONE, 107, 4, true, "ct_mark", "NXM_NX_CT_MARK");
    CtLabel = (NXM1, NONE, 108, 16, true, "ct_label", "NXM_NX_CT_LABEL");
    TunIpv6Src = (NXM1, NONE, 109, 16, true, "tun_ipv6_src", "NXM_NX_TUN_IPV6_SRC");
    TunIpv6Dst = (NXM1, NONE, 110, 16, true, "tun_ipv6_dst", "NXM_NX_TUN_IPV6_DST");
    Xxreg0 = (NXM1, NONE, 111, 16, true, "xxreg0", "NXM_NX_XXREG0");
    Xxreg1 = (NXM1, NONE, 112, 16, true, "xxreg1", "NXM_NX_XXREG1");
    Xxreg2 = (NXM1, NONE, 113, 16, true, "xxreg2", "NXM_NX_XXREG2");
    Xxreg3 = (NXM1, NONE, 114, 16, true, "xxreg3", "NXM_NX_XXREG3");
    CtNwProto = (NXM1, NONE, 119, 1, false, "ct_nw_proto", "NXM_NX_CT_NW_PROTO");
    CtNwSrc = (NXM1, NONE, 120, 4, true, "ct_nw_src", "NXM_NX_CT_NW_SRC");
    CtNwDst = (NXM1, NONE, 121, 4, true, "ct_nw_dst", "NXM_NX_CT_NW_DST");
    CtIpv6Src = (NXM1, NONE, 122, 16, true, "ct_ipv6_src", "NXM_NX_CT_IPV6_SRC");
    CtIpv6Dst = (NXM1, NONE, 123, 16, true, "ct_ipv6_dst", "NXM_NX_CT_IPV6_DST");
    CtTpSrc = (NXM1, NONE, 124, 2, true, "ct_tp_src", "NXM_NX_CT_TP_SRC");
    CtTpDst = (NXM1, NONE, 125, 2, true, "ct_tp_dst", "NXM_NX_CT_TP_DST");
    Xreg0 = (PKT_REGS, NONE, 0, 8, true, "xreg0", "OXM_OF_PKT_REG0");
    Xreg1 = (PKT_REGS, NONE, 1, 8, true, "xreg1", "OXM_OF_PKT_REG1");
    Xreg2 = (PKT_REGS, NONE, 2, 8, true, "xreg2", "OXM_OF_PKT_REG2");
    Xreg3 = (PKT_REGS, NONE, 3, 8, true, "xreg3", "OXM_OF_PKT_REG3");
    Xreg4 = (PKT_REGS, NONE, 4, 8, true, "xreg4", "OXM_OF_PKT_REG4");
    Xreg5 = (PKT_REGS, NONE, 5, 8, true, "xreg5", "OXM_OF_PKT_REG5");
    Xreg6 = (PKT_REGS, NONE, 6, 8, true, "xreg6", "OXM_OF_PKT_REG6");
    Xreg7 = (PKT_REGS, NONE, 7, 8, true, "xreg7", "OXM_OF_PKT_REG7");
    DpHashOxm = (EXP, NX, 0, 4, true, "dp_hash", "NXOXM_ET_DP_HASH");
    NshFlags = (EXP, NX, 1, 1, true, "nsh_flags", "NXOXM_ET_NSH_FLAGS");
    NshMdtype = (EXP, NX, 2, 1, false, "nsh_mdtype", "NXOXM_ET_NSH_MDTYPE");
    NshNp = (EXP, NX, 3, 1, false, "nsh_np", "NXOXM_ET_NSH_NP");
    NshSpi = (EXP, NX, 4, 4, false, "nsh_spi", "NXOXM_ET_NSH_SPI");
    NshSi = (EXP, NX, 5, 1, false, "nsh_si", "NXOXM_ET_NSH_SI");
    NshC1 = (EXP, NX, 6, 4, true, "nsh_c1", "NXOXM_ET_NSH_C1");
    NshC2 = (EXP, NX, 7, 4, true, "nsh_c2", "NXOXM_ET_NSH_C2");
    NshC3 = (EXP, NX, 8, 4, true, "nsh_c3", "NXOXM_ET_NSH_C3");
    NshC4 = (EXP, NX, 9, 4, true, "nsh_c4", "NXOXM_ET_NSH_C4");
    NshTtl = (EXP, NX, 10, 1, false, "nsh_ttl", "NXOXM_ET_NSH_TTL");
    TunErspanIdx = (EXP, NX, 11, 4, true, "tun_erspan_idx", "NXOXM_ET_ERSPAN_IDX");
    TunErspanVer = (EXP, NX, 12, 1, true, "tun_erspan_ver", "NXOXM_ET_ERSPAN_VER");
    TunErspanDir = (EXP, NX, 13, 1, true, "tun_erspan_dir", "NXOXM_ET_ERSPAN_DIR");
    TunErspanHwid = (EXP, NX, 14, 1, true, "tun_erspan_hwid", "NXOXM_ET_ERSPAN_HWID");
    TunGtpuFlags = (EXP, NX, 15, 1, true, "tun_gtpu_flags", "NXOXM_ET_GTPU_FLAGS");
    TunGtpuMsgtype = (EXP, NX, 16, 1, true, "tun_gtpu_msgtype", "NXOXM_ET_GTPU_MSGTYPE");
    OnfTcpFlags = (EXP, ONF, 42, 2, true, "tcp_flags", "ONFOXM_ET_TCP_FLAGS");
    OnfActsetOutput = (EXP, ONF, 43, 4, false, "actset_output", "ONFOXM_ET_ACTSET_OUTPUT");
}

const ABSENT: u8 = u8::MAX;

const fn index(class: u16) -> [u8; 128] {
    let mut t = [ABSENT; 128];
    let mut i = 0;
    while i < FIELDS.len() {
        if FIELDS[i].class == class {
            t[FIELDS[i].number as usize] = i as u8;
        }
        i += 1;
    }
    t
}

static OFB_INDEX: [u8; 128] = index(OFB);
static NXM0_INDEX: [u8; 128] = index(NXM0);
static NXM1_INDEX: [u8; 128] = index(NXM1);
static PKT_REGS_INDEX: [u8; 128] = index(PKT_REGS);
const _: () = assert!(FIELDS.len() < ABSENT as usize);

impl Field {
    /// Its row in the table.
    pub fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }

    /// The field a wire (class, number, experimenter) names, if known. Constant time for
    /// the standard and Nicira classes.
    pub fn lookup(class: u16, number: u8, experimenter: u32) -> Option<Field> {
        let table = match class {
            OFB => &OFB_INDEX,
            NXM0 => &NXM0_INDEX,
            NXM1 => &NXM1_INDEX,
            PKT_REGS => &PKT_REGS_INDEX,
            EXP => {
                return FIELDS
                    .iter()
                    .find(|d| {
                        d.class == EXP && d.experimenter == experimenter && d.number == number
                    })
                    .map(|d| d.field);
            }
            _ => return None,
        };
        let i = *table.get(usize::from(number))?;
        FIELDS.get(usize::from(i)).map(|d| d.field)
    }

    /// The index of this field in [`FIELDS`] (for bitsets over fields).
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_unique() {
        for (i, d) in FIELDS.iter().enumerate() {
            assert_eq!(d.field as usize, i, "{}", d.wire_name);
            assert_eq!(
                Field::lookup(d.class, d.number, d.experimenter),
                Some(d.field)
            );
            assert!(d.number < 128, "{}", d.wire_name);
        }
    }

    #[test]
    fn well_known_headers() {
        assert_eq!(Field::InPort.def().header(), 0x8000_0004);
        assert_eq!(Field::EthType.def().header(), 0x8000_0a02);
        assert_eq!(Field::Reg0.def().header(), 0x0001_0004);
        assert_eq!(Field::TunId.def().header(), 0x0001_2008);
        assert_eq!(Field::CtState.def().header(), 0x0001_d204);
        assert_eq!(Field::Xreg0.def().header(), 0x8001_0008);
        assert_eq!(Field::OnfTcpFlags.def().header(), 0xffff_5406);
        assert_eq!(Field::lookup(OFB, 39, 0), Some(Field::Ipv6Exthdr));
        assert_eq!(Field::lookup(OFB, 40, 0), None);
        assert_eq!(Field::lookup(0x1234, 0, 0), None);
        assert_eq!(
            Field::lookup(EXP, 42, ONF_VENDOR_ID),
            Some(Field::OnfTcpFlags)
        );
    }
}
