//! Header pushes, pops and TTL: `push_vlan:ETHERTYPE`, `pop_vlan` (`strip_vlan`),
//! `dec_ttl`, and OpenFlow 1.0's VLAN rewrites `mod_vlan_vid` / `mod_vlan_pcp`, which push a
//! tag on an untagged packet. `set_vlan_vid` / `set_vlan_pcp` are read as the same actions:
//! `ovs-ofctl` can carry them to Open vSwitch only as OpenFlow 1.0's SET_VLAN_VID and
//! SET_VLAN_PCP (unless the match says the packet is tagged), which push a tag too, and Open
//! vSwitch prints them back as `mod_vlan_*`.
//!
//! [`normalize_vlan`] rewrites the OpenFlow 1.0 forms where the match (and the actions
//! before) already tell whether the packet is tagged, exactly as Open vSwitch encodes them
//! for OpenFlow 1.1 and later: on a tagged packet they are a set-field of `vlan_vid` /
//! `vlan_pcp`, on an untagged one `mod_*` is `push_vlan:0x8100` and that set-field.

use crate::v1::{
    Action, DecTtl, Field, FieldMatch, Match, PopVlan, PushVlan, SetField, SetVlanPcp, SetVlanVid,
    action,
};

use super::super::lexer::{Result, split_tokens};
use super::super::scalar::{be_u64, num, num_u32};
use super::call::{Call, Item, act};

pub(super) fn push_vlan(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let e = num_u32(a, 0xffff, "push_vlan ethertype")?;
    if e != 0x8100 && e != 0x88a8 {
        return Err(a.err(format!(
            "{}: not a valid VLAN ethertype (0x8100 or 0x88a8)",
            a.text
        )));
    }
    Ok(act(action::Action::PushVlan(PushVlan { ethertype: e })))
}

pub(super) fn pop_vlan(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    Ok(act(action::Action::PopVlan(PopVlan {})))
}

/// `dec_ttl` or `dec_ttl(ID,...)` (controller ids, kept as written: Open vSwitch prints
/// `dec_ttl(0)` back as given).
pub(super) fn dec_ttl(c: &Call<'_>) -> Result<Item> {
    let mut controller_ids = Vec::new();
    match c.arg {
        None => {}
        Some(a) if c.paren => {
            for id in split_tokens(a.text, a.at, false) {
                controller_ids.push(num_u32(id, 65535, "controller id")?);
            }
            if controller_ids.is_empty() {
                return Err(a.err("dec_ttl(): expected at least one controller id"));
            }
        }
        Some(a) => return Err(a.err("`dec_ttl` takes controller ids in parentheses: dec_ttl(1,2)")),
    }
    Ok(act(action::Action::DecTtl(DecTtl { controller_ids })))
}

/// `mod_vlan_vid:VID` and `set_vlan_vid:VID` (both push a tag if needed; see the module
/// comment).
pub(super) fn vlan_vid(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let vid = num(a, u64::from(u16::MAX), &c.lname)?;
    if vid > 0xfff {
        return Err(a.err(format!("{}: not a valid VLAN VID (0..=4095)", a.text)));
    }
    Ok(act(action::Action::SetVlanVid(SetVlanVid {
        vid: vid as u32,
    })))
}

/// `mod_vlan_pcp:PCP` and `set_vlan_pcp:PCP` (both push a tag if needed).
pub(super) fn vlan_pcp(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let pcp = num(a, 255, &c.lname)?;
    if pcp > 7 {
        return Err(a.err(format!("{}: not a valid VLAN PCP (0..=7)", a.text)));
    }
    Ok(act(action::Action::SetVlanPcp(SetVlanPcp {
        pcp: pcp as u32,
    })))
}

/// What is known about the packet's outer VLAN tag at a point of an action list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Present,
    Absent,
    Unknown,
}

/// What a match says about the outer tag.
fn tag_of(m: &Match) -> Tag {
    let get = |f: Field| m.fields.iter().find(|x| x.field == f as i32);
    let bits = |fm: &FieldMatch| {
        let mask = if fm.mask.is_empty() {
            0xffff
        } else {
            be_u64(&fm.mask)
        };
        (be_u64(&fm.value), mask)
    };
    if get(Field::VlanPcp).is_some() {
        return Tag::Present;
    }
    for f in [Field::VlanVid, Field::VlanTci] {
        if let Some(fm) = get(f) {
            let (v, m) = bits(fm);
            if f == Field::VlanVid && fm.mask.is_empty() {
                return if v & 0x1000 != 0 {
                    Tag::Present
                } else {
                    Tag::Absent
                };
            }
            if m & 0x1000 != 0 {
                return if v & 0x1000 != 0 {
                    Tag::Present
                } else {
                    Tag::Absent
                };
            }
        }
    }
    Tag::Unknown
}

fn set_field(field: Field, value: Vec<u8>) -> Action {
    Action {
        action: Some(action::Action::SetField(SetField {
            field: field as i32,
            value,
            mask: Vec::new(),
        })),
    }
}

/// Rewrites the OpenFlow 1.0 VLAN actions of a list where the tag is known (see the module
/// comment); `m` is the flow's match, `None` for a group bucket.
pub(in super::super) fn normalize_vlan(actions: Vec<Action>, m: Option<&Match>) -> Vec<Action> {
    let mut tag = m.map_or(Tag::Unknown, tag_of);
    let mut out = Vec::with_capacity(actions.len());
    for a in actions {
        let set = match &a.action {
            Some(action::Action::SetVlanVid(v)) => set_field(
                Field::VlanVid,
                (0x1000 | v.vid as u16).to_be_bytes().to_vec(),
            ),
            Some(action::Action::SetVlanPcp(p)) => set_field(Field::VlanPcp, vec![p.pcp as u8]),
            Some(action::Action::PushVlan(_)) => {
                tag = Tag::Present;
                out.push(a);
                continue;
            }
            Some(action::Action::PopVlan(_)) => {
                tag = Tag::Unknown;
                out.push(a);
                continue;
            }
            Some(action::Action::SetField(s)) if s.field == Field::VlanVid as i32 => {
                tag = Tag::Present;
                out.push(a);
                continue;
            }
            _ => {
                out.push(a);
                continue;
            }
        };
        match tag {
            Tag::Present => out.push(set),
            Tag::Absent => {
                out.push(Action {
                    action: Some(action::Action::PushVlan(PushVlan { ethertype: 0x8100 })),
                });
                out.push(set);
            }
            Tag::Unknown => out.push(a),
        }
        // Tagged afterwards, either way.
        tag = Tag::Present;
    }
    out
}
