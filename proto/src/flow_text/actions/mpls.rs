//! MPLS: `push_mpls:ETHERTYPE`, `pop_mpls:ETHERTYPE`, `set_mpls_label(L)`, `set_mpls_tc(T)`,
//! `set_mpls_ttl(T)` and `dec_mpls_ttl`, with Open vSwitch's bounds and messages.

use crate::v1::{DecMplsTtl, Field, PopMpls, PushMpls, SetField, action};

use super::super::lexer::Result;
use super::super::scalar::{be_bytes, num, num_u32};
use super::call::{Call, Item, act};

/// The MPLS ethertypes: unicast and multicast.
const MPLS_TYPES: [u32; 2] = [0x8847, 0x8848];

pub(super) fn push_mpls(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let e = num_u32(a, 0xffff, "push_mpls ethertype")?;
    if !MPLS_TYPES.contains(&e) {
        return Err(a.err(format!(
            "{}: push_mpls takes 0x8847 (unicast) or 0x8848 (multicast)",
            a.text
        )));
    }
    Ok(act(action::Action::PushMpls(PushMpls { ethertype: e })))
}

pub(super) fn pop_mpls(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let e = num_u32(a, 0xffff, "pop_mpls ethertype")?;
    Ok(act(action::Action::PopMpls(PopMpls { ethertype: e })))
}

pub(super) fn dec_mpls_ttl(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    Ok(act(action::Action::DecMplsTtl(DecMplsTtl {})))
}

/// `set_mpls_label(L)`, `set_mpls_tc(T)`, `set_mpls_ttl(T)` (also with `:`): a set-field of
/// the outermost label stack entry.
pub(super) fn set_mpls(c: &Call<'_>) -> Result<Item> {
    let (field, what, max, width) = match c.lname.as_str() {
        "set_mpls_label" => (Field::MplsLabel, "label", 0xfffff, 4),
        "set_mpls_tc" => (Field::MplsTc, "tc", 7, 1),
        _ => (Field::MplsTtl, "ttl", 255, 1),
    };
    let a = c
        .arg
        .filter(|a| !a.text.is_empty())
        .ok_or_else(|| c.tok.err(format!("{}: expected {what}.", c.name)))?;
    let v = num(a, u64::MAX, c.name).and_then(|v| {
        if v > max {
            Err(a.err(format!("{}: not a valid MPLS {what} (0..={max})", a.text)))
        } else {
            Ok(v)
        }
    })?;
    Ok(act(action::Action::SetField(SetField {
        field: field as i32,
        value: be_bytes(v, width),
        mask: Vec::new(),
    })))
}
