//! Header pushes, pops and TTL: `push_vlan:ETHERTYPE`, `pop_vlan` (`strip_vlan`),
//! `dec_ttl`.

use crate::v1::{DecTtl, PopVlan, PushVlan, action};

use super::super::lexer::Result;
use super::super::scalar::num_u32;
use super::call::{Call, Item, act};

pub(super) fn push_vlan(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    let e = num_u32(a, 0xffff, "push_vlan ethertype")?;
    if e != 0x8100 && e != 0x88a8 {
        return Err(a.err("push_vlan takes 0x8100 (802.1Q) or 0x88a8 (802.1ad)"));
    }
    Ok(act(action::Action::PushVlan(PushVlan { ethertype: e })))
}

pub(super) fn pop_vlan(c: &Call<'_, '_>) -> Result<Item> {
    c.none()?;
    Ok(act(action::Action::PopVlan(PopVlan {})))
}

pub(super) fn dec_ttl(c: &Call<'_, '_>) -> Result<Item> {
    c.none()?;
    Ok(act(action::Action::DecTtl(DecTtl {})))
}
