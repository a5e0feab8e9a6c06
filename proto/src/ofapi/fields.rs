//! The field table between OpenFlow's OXM/NXM fields and the API's [`v1::Field`]s: one row
//! per wire form, with how its value becomes the API's value.
//!
//! A field the flow language gains is one row here (and its `v1::Field`). Rows are searched
//! in order; for the way back (API to wire) the first row of an API field is the form sent,
//! so the OpenFlow 1.3 basic (OXM) form comes first and the Nicira form after it.
//!
//! Wire fields the API does not have yet are not in the table: a match on one is
//! `BAD_MATCH/BAD_FIELD`, as Open vSwitch answers for a field it does not know, and so is a
//! set-field of one (OVS's set-field decoder returns the match error).

use crate::openflow::error::{OfpError, bad_action, bad_match};
use crate::openflow::fields::Field as Of;
use crate::openflow::ids::PortNo;
use crate::openflow::oxm::{Oxm, OxmId};
use crate::v1::Field as Api;

/// How a wire value becomes the API value (and back).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Conv {
    /// The same bytes.
    Same,
    /// A 16-bit OpenFlow 1.0 port number (NXM_OF_IN_PORT) to the 32-bit numbering.
    Port16,
    /// The IP TOS byte with the DSCP in its high six bits (NXM_OF_IP_TOS) to the DSCP.
    TosDscp,
    /// A 32-bit wire field whose defined bits fit in the API's one byte (NXM_NX_CT_STATE:
    /// Open vSwitch defines its low eight bits; a value or mask beyond them is refused).
    Low8of32,
}

/// One row: a wire field, the API field it is, and the conversion.
#[derive(Copy, Clone, Debug)]
pub struct Row {
    /// The wire field.
    pub of: Of,
    /// The API field.
    pub api: Api,
    /// Value conversion.
    pub conv: Conv,
}

const fn row(of: Of, api: Api) -> Row {
    Row {
        of,
        api,
        conv: Conv::Same,
    }
}

/// Every wire field the API has, preferred wire form first for each API field.
#[rustfmt::skip]
pub const FIELDS: &[Row] = &[
    row(Of::InPort, Api::InPort),
    Row { of: Of::NxmInPort, api: Api::InPort, conv: Conv::Port16 },
    row(Of::EthDst, Api::EthDst),
    row(Of::NxmEthDst, Api::EthDst),
    row(Of::EthSrc, Api::EthSrc),
    row(Of::NxmEthSrc, Api::EthSrc),
    row(Of::EthType, Api::EthType),
    row(Of::NxmEthType, Api::EthType),
    row(Of::VlanVid, Api::VlanVid),
    row(Of::VlanPcp, Api::VlanPcp),
    row(Of::NxmVlanTci, Api::VlanTci),
    row(Of::IpDscp, Api::IpDscp),
    Row { of: Of::NxmIpTos, api: Api::IpDscp, conv: Conv::TosDscp },
    row(Of::IpEcn, Api::IpEcn),
    row(Of::NxmIpEcn, Api::IpEcn),
    row(Of::IpProto, Api::IpProto),
    row(Of::NxmIpProto, Api::IpProto),
    row(Of::NxmIpTtl, Api::IpTtl),
    row(Of::Ipv4Src, Api::Ipv4Src),
    row(Of::NxmIpSrc, Api::Ipv4Src),
    row(Of::Ipv4Dst, Api::Ipv4Dst),
    row(Of::NxmIpDst, Api::Ipv4Dst),
    row(Of::Ipv6Src, Api::Ipv6Src),
    row(Of::NxmIpv6Src, Api::Ipv6Src),
    row(Of::Ipv6Dst, Api::Ipv6Dst),
    row(Of::NxmIpv6Dst, Api::Ipv6Dst),
    row(Of::TcpSrc, Api::TcpSrc),
    row(Of::NxmTcpSrc, Api::TcpSrc),
    row(Of::TcpDst, Api::TcpDst),
    row(Of::NxmTcpDst, Api::TcpDst),
    row(Of::UdpSrc, Api::UdpSrc),
    row(Of::NxmUdpSrc, Api::UdpSrc),
    row(Of::UdpDst, Api::UdpDst),
    row(Of::NxmUdpDst, Api::UdpDst),
    row(Of::SctpSrc, Api::SctpSrc),
    row(Of::SctpDst, Api::SctpDst),
    row(Of::TcpFlags, Api::TcpFlags),
    row(Of::NxmTcpFlags, Api::TcpFlags),
    row(Of::OnfTcpFlags, Api::TcpFlags),
    row(Of::Icmpv4Type, Api::Icmpv4Type),
    row(Of::NxmIcmpType, Api::Icmpv4Type),
    row(Of::Icmpv4Code, Api::Icmpv4Code),
    row(Of::NxmIcmpCode, Api::Icmpv4Code),
    row(Of::Icmpv6Type, Api::Icmpv6Type),
    row(Of::NxmIcmpv6Type, Api::Icmpv6Type),
    row(Of::Icmpv6Code, Api::Icmpv6Code),
    row(Of::NxmIcmpv6Code, Api::Icmpv6Code),
    row(Of::ArpOp, Api::ArpOp),
    row(Of::NxmArpOp, Api::ArpOp),
    row(Of::ArpSpa, Api::ArpSpa),
    row(Of::NxmArpSpa, Api::ArpSpa),
    row(Of::ArpTpa, Api::ArpTpa),
    row(Of::NxmArpTpa, Api::ArpTpa),
    row(Of::ArpSha, Api::ArpSha),
    row(Of::NxmArpSha, Api::ArpSha),
    row(Of::ArpTha, Api::ArpTha),
    row(Of::NxmArpTha, Api::ArpTha),
    row(Of::MplsLabel, Api::MplsLabel),
    row(Of::MplsTc, Api::MplsTc),
    row(Of::MplsBos, Api::MplsBos),
    row(Of::NxmMplsTtl, Api::MplsTtl),
    row(Of::Ipv6Flabel, Api::Ipv6Label),
    row(Of::Ipv6NdTarget, Api::NdTarget),
    row(Of::NxmNdTarget, Api::NdTarget),
    row(Of::Ipv6NdSll, Api::NdSll),
    row(Of::NxmNdSll, Api::NdSll),
    row(Of::Ipv6NdTll, Api::NdTll),
    row(Of::NxmNdTll, Api::NdTll),
    row(Of::IpFrag, Api::IpFrag),
    row(Of::PktMark, Api::PktMark),
    row(Of::ActsetOutput, Api::ActsetOutput),
    row(Of::ConjId, Api::ConjId),
    row(Of::TunFlags, Api::TunFlags),
    row(Of::TunnelId, Api::TunId),
    row(Of::TunId, Api::TunId),
    row(Of::TunIpv4Src, Api::TunSrc),
    row(Of::TunIpv4Dst, Api::TunDst),
    row(Of::Metadata, Api::Metadata),
    row(Of::Reg0, Api::Reg0),
    row(Of::Reg1, Api::Reg1),
    row(Of::Reg2, Api::Reg2),
    row(Of::Reg3, Api::Reg3),
    row(Of::Reg4, Api::Reg4),
    row(Of::Reg5, Api::Reg5),
    row(Of::Reg6, Api::Reg6),
    row(Of::Reg7, Api::Reg7),
    row(Of::Reg8, Api::Reg8),
    row(Of::Reg9, Api::Reg9),
    row(Of::Reg10, Api::Reg10),
    row(Of::Reg11, Api::Reg11),
    row(Of::Reg12, Api::Reg12),
    row(Of::Reg13, Api::Reg13),
    row(Of::Reg14, Api::Reg14),
    row(Of::Reg15, Api::Reg15),
    row(Of::Xreg0, Api::Xreg0),
    row(Of::Xreg1, Api::Xreg1),
    row(Of::Xreg2, Api::Xreg2),
    row(Of::Xreg3, Api::Xreg3),
    row(Of::Xreg4, Api::Xreg4),
    row(Of::Xreg5, Api::Xreg5),
    row(Of::Xreg6, Api::Xreg6),
    row(Of::Xreg7, Api::Xreg7),
    row(Of::Xxreg0, Api::Xxreg0),
    row(Of::Xxreg1, Api::Xxreg1),
    row(Of::Xxreg2, Api::Xxreg2),
    row(Of::Xxreg3, Api::Xxreg3),
    // Conntrack (Nicira): matches, and ct_mark/ct_label inside the ct action.
    Row { of: Of::CtState, api: Api::CtState, conv: Conv::Low8of32 },
    row(Of::CtZone, Api::CtZone),
    row(Of::CtMark, Api::CtMark),
    row(Of::CtLabel, Api::CtLabel),
    row(Of::CtNwSrc, Api::CtNwSrc),
    row(Of::CtNwDst, Api::CtNwDst),
    row(Of::CtIpv6Src, Api::CtIpv6Src),
    row(Of::CtIpv6Dst, Api::CtIpv6Dst),
    row(Of::CtNwProto, Api::CtNwProto),
    row(Of::CtTpSrc, Api::CtTpSrc),
    row(Of::CtTpDst, Api::CtTpDst),
];

/// The row of a wire field, if the API has it.
pub fn by_wire(f: Of) -> Option<&'static Row> {
    FIELDS.iter().find(|r| r.of == f)
}

/// The preferred wire row of an API field.
pub fn by_api(f: Api) -> Option<&'static Row> {
    FIELDS.iter().find(|r| r.api == f)
}

/// The wire row a bit range of an API field is named with in the Nicira actions, as Open
/// vSwitch picks it (`mf_nxm_header`): the Nicira NXM form where the field has one, else
/// the first other form. Only rows whose wire bits are the API's bits (not ip_dscp's
/// NXM_OF_IP_TOS, where the DSCP sits two bits up).
pub fn subfield_row(f: Api) -> Option<&'static Row> {
    let usable = |r: &&Row| r.api == f && r.conv != Conv::TosDscp;
    FIELDS
        .iter()
        .filter(usable)
        .find(|r| matches!(OxmId::of(r.of).class(), 0 | 1))
        .or_else(|| FIELDS.iter().find(usable))
}

/// An OXM's row, or the error a match on it gets: `BAD_FIELD` for a field the codec or
/// the API does not know.
pub fn row_of(o: &Oxm<'_>) -> Result<&'static Row, OfpError> {
    o.field().and_then(by_wire).ok_or(bad_match::BAD_FIELD)
}

/// The API value (and mask) of a wire value (and mask) of `row`.
pub fn to_api(
    row: &Row,
    value: &[u8],
    mask: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>), OfpError> {
    let mask = mask.map(<[u8]>::to_vec).unwrap_or_default();
    match row.conv {
        Conv::Same => Ok((value.to_vec(), mask)),
        Conv::Port16 => {
            let v = u16::from_be_bytes(value.try_into().map_err(|_| bad_match::BAD_LEN)?);
            Ok((port_from_16(v).0.to_be_bytes().to_vec(), Vec::new()))
        }
        Conv::TosDscp => {
            let v = *value.first().ok_or(bad_match::BAD_LEN)?;
            if v & 0x03 != 0 {
                return Err(bad_match::BAD_VALUE);
            }
            Ok((vec![v >> 2], Vec::new()))
        }
        Conv::Low8of32 => {
            let low8 = |b: &[u8]| -> Result<Vec<u8>, OfpError> {
                let v = u32::from_be_bytes(b.try_into().map_err(|_| bad_match::BAD_LEN)?);
                u8::try_from(v)
                    .map(|x| vec![x])
                    .map_err(|_| bad_match::BAD_VALUE)
            };
            let m = if mask.is_empty() {
                Vec::new()
            } else {
                low8(&mask)?
            };
            Ok((low8(value)?, m))
        }
    }
}

/// The wire value of an API value of `row` (masks convert the same way; the converted
/// fields take none).
pub fn to_wire(row: &Row, value: &[u8]) -> Vec<u8> {
    match row.conv {
        Conv::Same => value.to_vec(),
        Conv::Port16 => {
            let n = value.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
            let v = if n >= 0xffff_ff00 {
                n as u16
            } else {
                n.min(0xff00) as u16
            };
            v.to_be_bytes().to_vec()
        }
        Conv::TosDscp => vec![value.first().copied().unwrap_or(0) << 2],
        Conv::Low8of32 => u32::from(value.first().copied().unwrap_or(0))
            .to_be_bytes()
            .to_vec(),
    }
}

/// An OpenFlow 1.0 (16-bit) port number in the 32-bit numbering: reserved ports move up.
pub fn port_from_16(v: u16) -> PortNo {
    if v >= 0xff00 {
        PortNo(0xffff_0000 | u32::from(v))
    } else {
        PortNo(u32::from(v))
    }
}

/// The error a set-field of a wire field the API lacks gets.
pub const SET_UNSUPPORTED: OfpError = bad_match::BAD_FIELD;
/// The error a set-field of a field that cannot be written gets.
pub const SET_NOT_WRITABLE: OfpError = bad_action::BAD_SET_ARGUMENT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_field_has_a_wire_form() {
        for f in (1..=200).filter_map(|n| Api::try_from(n).ok()) {
            if f == Api::Unspecified {
                continue;
            }
            let r = by_api(f).unwrap_or_else(|| panic!("{f:?} has no wire form"));
            assert_eq!(r.api, f);
        }
    }

    #[test]
    fn preferred_forms_are_the_openflow_basic_ones() {
        assert_eq!(by_api(Api::EthDst).map(|r| r.of), Some(Of::EthDst));
        assert_eq!(by_api(Api::TunId).map(|r| r.of), Some(Of::TunnelId));
        assert_eq!(by_api(Api::VlanTci).map(|r| r.of), Some(Of::NxmVlanTci));
        assert_eq!(by_api(Api::Reg3).map(|r| r.of), Some(Of::Reg3));
    }

    #[test]
    fn ct_state_is_one_byte_in_the_api_and_four_on_the_wire() {
        let r = by_api(Api::CtState).expect("row");
        let (v, m) = to_api(r, &[0, 0, 0, 0x22], Some(&[0, 0, 0, 0x23])).expect("fits");
        assert_eq!((v, m), (vec![0x22], vec![0x23]));
        assert_eq!(to_wire(r, &[0x22]), vec![0, 0, 0, 0x22]);
        assert_eq!(to_api(r, &[0, 0, 1, 0], None), Err(bad_match::BAD_VALUE));
    }

    #[test]
    fn converted_values() {
        let r = by_wire(Of::NxmInPort).expect("row");
        assert_eq!(
            to_api(r, &[0xff, 0xfe], None).expect("local"),
            (vec![0xff, 0xff, 0xff, 0xfe], vec![])
        );
        assert_eq!(to_wire(r, &[0xff, 0xff, 0xff, 0xfe]), vec![0xff, 0xfe]);
        assert_eq!(to_wire(r, &[0, 0, 0, 7]), vec![0, 7]);
        let t = by_wire(Of::NxmIpTos).expect("row");
        assert_eq!(
            to_api(t, &[0x28], None).expect("dscp 10"),
            (vec![10], vec![])
        );
        assert_eq!(to_api(t, &[0x29], None), Err(bad_match::BAD_VALUE));
        assert_eq!(to_wire(t, &[10]), vec![0x28]);
    }
}
