//! OpenFlow 1.3 matches to the API's [`v1::Match`] and back.
//!
//! Into the API: each OXM through the field table ([`super::fields`]), then the same
//! validation the text syntax and the gRPC API use ([`flow_text::check_match`]:
//! prerequisites, value ranges, duplicates, VLAN forms), its refusals turned into the
//! `BAD_MATCH` codes Open vSwitch sends. One difference: Open vSwitch checks each field's
//! prerequisites against the fields before it on the wire, this checks them against the
//! whole match, so a match whose fields come in an unusual order is accepted.
//!
//! Back to the wire: each API field in its preferred wire form, in the match's order.

use crate::flow_text::{self, FieldError, FieldErrorKind};
use crate::openflow::error::{OfpError, bad_action, bad_match};
use crate::openflow::fields::Field as OfField;
use crate::openflow::oxm::{Match, MatchBuilder, Oxm};
use crate::v1::{self, Field, FieldMatch};

use super::fields::{self, by_api};

/// The `BAD_MATCH` error Open vSwitch sends for a match refused for `e`.
pub fn match_error(e: &FieldError) -> OfpError {
    match e.kind {
        FieldErrorKind::Unknown | FieldErrorKind::NotSettable => bad_match::BAD_FIELD,
        FieldErrorKind::Width => bad_match::BAD_LEN,
        FieldErrorKind::Value => bad_match::BAD_VALUE,
        FieldErrorKind::Mask => bad_match::BAD_MASK,
        FieldErrorKind::Duplicate | FieldErrorKind::Conflict => bad_match::DUP_FIELD,
        FieldErrorKind::Prerequisite => bad_match::BAD_PREREQ,
    }
}

/// The `BAD_ACTION` error Open vSwitch sends for a set-field refused for `e`.
pub fn set_field_error(e: &FieldError) -> OfpError {
    match e.kind {
        FieldErrorKind::Unknown => bad_match::BAD_FIELD,
        FieldErrorKind::Width => bad_action::BAD_SET_LEN,
        FieldErrorKind::Prerequisite => bad_action::MATCH_INCONSISTENT,
        FieldErrorKind::Value
        | FieldErrorKind::Mask
        | FieldErrorKind::NotSettable
        | FieldErrorKind::Duplicate
        | FieldErrorKind::Conflict => bad_action::BAD_SET_ARGUMENT,
    }
}

/// One OXM as an API field match (not yet validated with the others).
pub fn oxm_to_api(o: &Oxm<'_>) -> Result<FieldMatch, OfpError> {
    let row = fields::row_of(o)?;
    let (value, mask) = fields::to_api(row, o.value, o.mask)?;
    Ok(FieldMatch {
        field: row.api as i32,
        value,
        mask,
        port_name: String::new(),
    })
}

/// A match in the API's canonical form (fields sorted, values masked), validated as the
/// text syntax validates it.
pub fn to_api(m: &Match<'_>) -> Result<v1::Match, OfpError> {
    let mut fields = Vec::new();
    for o in m.iter() {
        if o.field() == Some(OfField::PacketType) {
            ethernet_only(&o)?;
            continue;
        }
        fields.push(oxm_to_api(&o)?);
    }
    flow_text::check_match(&v1::Match { fields }).map_err(|e| match_error(&e))
}

/// `packet_type=(0,0)` (Ethernet), which `ovs-ofctl` adds to a match whose other fields
/// it dropped for lack of prerequisites, matches every packet this switch sees: accepted and
/// left out. Any other packet type (Open vSwitch's L3 packets) is refused as `BAD_VALUE`.
fn ethernet_only(o: &Oxm<'_>) -> Result<(), OfpError> {
    if o.mask.is_some() || o.value != [0, 0, 0, 0] {
        return Err(bad_match::BAD_VALUE);
    }
    Ok(())
}

/// Writes `m` as the OXMs of a match being built (fields the wire cannot carry, which a
/// canonical match never holds, are left out).
pub fn put_fields(m: &v1::Match, b: &mut MatchBuilder<'_>) {
    for fm in &m.fields {
        let Some(row) = Field::try_from(fm.field).ok().and_then(by_api) else {
            continue;
        };
        if !fm.port_name.is_empty() {
            continue;
        }
        let value = fields::to_wire(row, &fm.value);
        if fm.mask.is_empty() {
            b.field(row.of, &value);
        } else {
            b.field_masked(row.of, &value, &fields::to_wire(row, &fm.mask));
        }
    }
}

/// Writes `m` as an ofp_match (with its padding) at the end of `out`.
pub fn emit(m: &v1::Match, out: &mut Vec<u8>) {
    let mut b = MatchBuilder::new(out);
    put_fields(m, &mut b);
    b.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::fields::Field as Of;
    use crate::openflow::wire::Reader;

    fn wire(build: impl FnOnce(&mut MatchBuilder<'_>)) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = MatchBuilder::new(&mut out);
        build(&mut b);
        b.finish();
        out
    }

    fn parse(bytes: &[u8]) -> Result<v1::Match, OfpError> {
        let mut r = Reader::new(bytes, bad_match::BAD_LEN);
        to_api(&Match::parse(&mut r)?)
    }

    #[test]
    fn a_match_from_ovs_ofctl_is_the_text_syntax_match() {
        let bytes = wire(|b| {
            b.value(Of::InPort, 1).value(Of::EthType, 0x0800);
            b.value_masked(Of::Ipv4Dst, 0x0a00_0000, 0xffff_ff00);
        });
        let m = parse(&bytes).expect("valid");
        let text =
            flow_text::parse_flow("in_port=1,ip,nw_dst=10.0.0.0/24,actions=drop").expect("flow");
        assert_eq!(Some(&m), text.r#match.as_ref());
        let mut again = Vec::new();
        emit(&m, &mut again);
        assert_eq!(parse(&again).expect("again"), m);
    }

    #[test]
    fn refusals_carry_ovs_codes() {
        let no_prereq = wire(|b| {
            b.value(Of::TcpDst, 80);
        });
        assert_eq!(parse(&no_prereq), Err(bad_match::BAD_PREREQ));
        let unknown = wire(|b| {
            b.value(Of::PbbIsid, 5);
        });
        assert_eq!(parse(&unknown), Err(bad_match::BAD_FIELD));
        let mpls_without_ethertype = wire(|b| {
            b.value(Of::MplsLabel, 5);
        });
        assert_eq!(parse(&mpls_without_ethertype), Err(bad_match::BAD_PREREQ));
        let twice = wire(|b| {
            b.value(Of::EthType, 0x0800)
                .value(Of::Ipv4Src, 1)
                .value(Of::NxmIpSrc, 1);
        });
        assert_eq!(parse(&twice), Err(bad_match::DUP_FIELD));
        let pcp = wire(|b| {
            b.value(Of::VlanVid, 0x1005).value(Of::VlanPcp, 9);
        });
        assert_eq!(parse(&pcp), Err(bad_match::BAD_VALUE));
        let tos = wire(|b| {
            b.value(Of::NxmEthType, 0x0800).value(Of::NxmIpTos, 0x29);
        });
        assert_eq!(parse(&tos), Err(bad_match::BAD_VALUE));
        let l3 = wire(|b| {
            b.value(Of::PacketType, 0x0001_0800);
        });
        assert_eq!(parse(&l3), Err(bad_match::BAD_VALUE));
    }

    #[test]
    fn ethernet_packet_type_matches_everything() {
        // What `ovs-ofctl -O OpenFlow13 add-flow BR tp_dst=80,actions=drop` sends once it
        // has dropped tp_dst for want of a prerequisite.
        let bytes = wire(|b| {
            b.value(Of::PacketType, 0);
        });
        assert_eq!(parse(&bytes), Ok(v1::Match::default()));
    }

    #[test]
    fn nicira_forms_become_api_fields() {
        let bytes = wire(|b| {
            b.value(Of::NxmInPort, 0xfffe)
                .value(Of::NxmEthType, 0x0800)
                .value(Of::NxmIpTos, 0x28)
                .value_masked(Of::Reg1, 0x10, 0xf0);
        });
        let m = parse(&bytes).expect("valid");
        let text = flow_text::parse_flow("in_port=LOCAL,ip,ip_dscp=10,reg1=0x10/0xf0,actions=drop")
            .expect("flow");
        assert_eq!(Some(&m), text.r#match.as_ref());
    }
}
