//! The `Ct` and `CtClear` API actions as datapath actions (`datapath::conntrack`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use datapath::actions::Action;
use datapath::conntrack::{CtAction, Nat, NatRange};
use datapath::types::TableId;
use proto::flow_text::MAX_TABLE_ID;
use proto::v1::{self, nat};

use crate::error::ApiError;

/// `ct(...)` as the datapath runs it; refuses what Open vSwitch refuses.
pub(crate) fn ct_action(c: &v1::Ct) -> Result<Action, ApiError> {
    let zone_src = match &c.zone_src {
        None => None,
        Some(s) => {
            let sf = crate::convert::subfield(Some(s), "ct.zone_src")?;
            if sf.bits != 16 || c.zone != 0 {
                return Err(ApiError::invalid(
                    "ct.zone_src",
                    "a zone read from a field takes 16 bits (and no zone number beside it)",
                ));
            }
            Some(sf)
        }
    };
    let zone =
        u16::try_from(c.zone).map_err(|_| ApiError::invalid("ct.zone", "must be 0..=65535"))?;
    let table = match c.table {
        Some(t) if t > MAX_TABLE_ID => {
            return Err(ApiError::invalid(
                "ct.table",
                format!("must be 0..={MAX_TABLE_ID}"),
            ));
        }
        Some(t) => Some(TableId(t as u8)),
        None => None,
    };
    let nat = c.nat.as_ref().map(nat_of).transpose()?;
    let label = match (c.label.len(), c.label_mask.len()) {
        (0, 0) => None,
        (16, 0) => Some((be128(&c.label), u128::MAX)),
        (16, 16) => Some((be128(&c.label), be128(&c.label_mask))),
        _ => {
            return Err(ApiError::invalid(
                "ct.label",
                "a label and its mask are 16 bytes",
            ));
        }
    };
    let mark = c.mark.map(|m| (m, c.mark_mask.unwrap_or(u32::MAX)));
    let ranged = matches!(nat, Some(Nat::Src(_) | Nat::Dst(_)));
    if !c.commit && !c.force && (ranged || mark.is_some() || label.is_some()) {
        return Err(ApiError::invalid(
            "ct.commit",
            "setting mark or label, or NAT with a range, needs commit",
        ));
    }
    Ok(Action::Ct {
        ct: CtAction {
            zone,
            commit: c.commit || c.force,
            force: c.force,
            nat,
            mark,
            label,
        },
        table,
        zone_src,
    })
}

fn be128(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| a << 8 | x as u128)
}

fn addr(b: &[u8], field: &str) -> Result<IpAddr, ApiError> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        Ok(IpAddr::V4(Ipv4Addr::from(a)))
    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
        Ok(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        Err(ApiError::invalid(field, "an address is 4 or 16 bytes"))
    }
}

fn nat_of(n: &v1::Nat) -> Result<Nat, ApiError> {
    let kind =
        nat::Kind::try_from(n.kind).map_err(|_| ApiError::invalid("ct.nat.kind", "unknown"))?;
    if kind == nat::Kind::Apply {
        return Ok(Nat::Apply);
    }
    let min = addr(&n.addr_min, "ct.nat.addr_min")?;
    let max = if n.addr_max.is_empty() {
        min
    } else {
        addr(&n.addr_max, "ct.nat.addr_max")?
    };
    if min.is_ipv4() != max.is_ipv4() || max < min {
        return Err(ApiError::invalid(
            "ct.nat.addr_max",
            "the last address must be of the first's family and not below it",
        ));
    }
    let ports =
        |p: u32, f: &str| u16::try_from(p).map_err(|_| ApiError::invalid(f, "a port is 16 bits"));
    let (pmin, pmax) = (
        ports(n.port_min, "ct.nat.port_min")?,
        ports(n.port_max, "ct.nat.port_max")?,
    );
    let pmax = if pmax == 0 { pmin } else { pmax };
    if pmax < pmin {
        return Err(ApiError::invalid("ct.nat.port_max", "below port_min"));
    }
    let r = NatRange {
        addr_min: min,
        addr_max: max,
        port_min: pmin,
        port_max: pmax,
        persistent: n.persistent,
        random: n.random,
    };
    Ok(if kind == nat::Kind::Src {
        Nat::Src(r)
    } else {
        Nat::Dst(r)
    })
}
