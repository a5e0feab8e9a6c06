//! The Nicira ct and nat actions (NXAST_CT, NXAST_NAT).
//!
//! ct: the 10-byte Nicira header, flags, zone source (an NXM header, 0 for an immediate
//! zone), zone (immediate or ofs_nbits), recirculation table, 3 pad, alg, then nested
//! actions (nat, set-field of ct_mark/ct_label) to the end. nat: 2 pad, flags,
//! range_present, then each present range value in order (IPv4 min/max, IPv6 min/max, L4
//! port min/max) and padding to 8.

use super::actions::Actions;
use super::error::{OfpError, bad_action};
use super::nx_actions::end_padding;
use super::wire::{Put, Reader};

/// The ct action (NXAST_CT).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ct<'a> {
    /// NX_CT_F_* (commit 1, force 2).
    pub flags: u16,
    /// Zone source field header, 0 for an immediate zone.
    pub zone_src: u32,
    /// Immediate zone, or ofs_nbits of `zone_src`.
    pub zone: u16,
    /// Table to recirculate to, 0xff for none.
    pub recirc_table: u8,
    /// Application layer gateway port (ftp 21, tftp 69), 0 for none.
    pub alg: u16,
    /// Nested actions (nat, set-field of ct_mark/ct_label).
    pub actions: Actions<'a>,
}

/// The nat action (NXAST_NAT); absent ranges are `None`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Nat {
    /// NX_NAT_F_* (src 1, dst 2, persistent 4, proto_hash 8, proto_random 16).
    pub flags: u16,
    /// Lowest IPv4 address.
    pub ipv4_min: Option<[u8; 4]>,
    /// Highest IPv4 address.
    pub ipv4_max: Option<[u8; 4]>,
    /// Lowest IPv6 address.
    pub ipv6_min: Option<[u8; 16]>,
    /// Highest IPv6 address.
    pub ipv6_max: Option<[u8; 16]>,
    /// Lowest L4 port.
    pub proto_min: Option<u16>,
    /// Highest L4 port.
    pub proto_max: Option<u16>,
}

mod nat_range {
    pub const IPV4_MIN: u16 = 1;
    pub const IPV4_MAX: u16 = 2;
    pub const IPV6_MIN: u16 = 4;
    pub const IPV6_MAX: u16 = 8;
    pub const PROTO_MIN: u16 = 16;
    pub const PROTO_MAX: u16 = 32;
}

pub(crate) fn parse_nat(mut r: Reader<'_>) -> Result<Nat, OfpError> {
    use nat_range as b;
    r.skip(2)?;
    let flags = r.u16()?;
    let present = r.u16()?;
    if present & !0x3f != 0 {
        return Err(bad_action::BAD_ARGUMENT);
    }
    let mut n = Nat {
        flags,
        ..Nat::default()
    };
    if present & b::IPV4_MIN != 0 {
        n.ipv4_min = Some(r.array()?);
    }
    if present & b::IPV4_MAX != 0 {
        n.ipv4_max = Some(r.array()?);
    }
    if present & b::IPV6_MIN != 0 {
        n.ipv6_min = Some(r.array()?);
    }
    if present & b::IPV6_MAX != 0 {
        n.ipv6_max = Some(r.array()?);
    }
    if present & b::PROTO_MIN != 0 {
        n.proto_min = Some(r.u16()?);
    }
    if present & b::PROTO_MAX != 0 {
        n.proto_max = Some(r.u16()?);
    }
    end_padding(&r)?;
    Ok(n)
}

pub(crate) fn emit_nat(n: &Nat, out: &mut Vec<u8>) {
    use nat_range as b;
    let present = [
        (n.ipv4_min.is_some(), b::IPV4_MIN),
        (n.ipv4_max.is_some(), b::IPV4_MAX),
        (n.ipv6_min.is_some(), b::IPV6_MIN),
        (n.ipv6_max.is_some(), b::IPV6_MAX),
        (n.proto_min.is_some(), b::PROTO_MIN),
        (n.proto_max.is_some(), b::PROTO_MAX),
    ]
    .iter()
    .filter(|p| p.0)
    .fold(0, |a, p| a | p.1);
    out.put_zeros(2);
    out.put_u16(n.flags);
    out.put_u16(present);
    for a in [n.ipv4_min, n.ipv4_max].into_iter().flatten() {
        out.extend_from_slice(&a);
    }
    for a in [n.ipv6_min, n.ipv6_max].into_iter().flatten() {
        out.extend_from_slice(&a);
    }
    for p in [n.proto_min, n.proto_max].into_iter().flatten() {
        out.put_u16(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::Action;
    use crate::openflow::list::encode;
    use crate::openflow::nx_actions::NxAction;

    fn round_trip(bytes: &[u8]) -> NxAction<'_> {
        let l = Actions::new_checked(bytes).expect("parses");
        let a = l.iter().next().expect("one action");
        assert_eq!(encode(&[a]), bytes, "{a:?}");
        match a {
            Action::Nx(nx) => nx,
            other => panic!("not nicira: {other:?}"),
        }
    }

    #[test]
    fn ct_with_nested_nat() {
        let nat = Action::Nx(NxAction::Nat(Nat {
            flags: 1,
            ipv4_min: Some([10, 0, 0, 1]),
            ipv4_max: Some([10, 0, 0, 9]),
            proto_min: Some(1000),
            ..Nat::default()
        }));
        let inner = encode(&[nat]);
        let ct = Action::Nx(NxAction::Ct(Ct {
            flags: 1,
            zone_src: 0,
            zone: 5,
            recirc_table: 0xff,
            alg: 0,
            actions: Actions::new_checked(&inner).expect("nat"),
        }));
        let b = encode(&[ct]);
        assert_eq!(b.len() % 8, 0);
        let NxAction::Ct(c) = round_trip(&b) else {
            panic!("ct")
        };
        assert_eq!(c.actions.count(), 1);
    }
}
