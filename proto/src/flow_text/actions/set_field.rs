//! Writing header fields: `set_field:VALUE[/MASK]->FIELD`, `load:VALUE->FIELD[]` and the
//! `mod_*` spellings (`mod_dl_dst:MAC`, `mod_vlan_vid:VID`, `mod_nw_tos:TOS`, ...), with the
//! field's prerequisites checked against the flow's match.

use crate::v1::{Field, SetField, action};

use super::super::fields::{Named, field_def, parse_value_mask, resolve_name};
use super::super::lexer::{Result, Tok};
use super::super::protocol::{Ctx, prereq_text};
use super::super::scalar::{be_bytes, num};
use super::call::{ActionCtx, Call, Item, act};

/// The field each plain `mod_*` action sets, by the name `set_field` knows it by.
const MOD_FIELDS: &[(&str, &str)] = &[
    ("mod_dl_src", "eth_src"),
    ("mod_dl_dst", "eth_dst"),
    ("mod_nw_src", "ip_src"),
    ("mod_nw_dst", "ip_dst"),
    ("mod_tp_src", "tp_src"),
    ("mod_tp_dst", "tp_dst"),
    ("mod_vlan_pcp", "vlan_pcp"),
    ("mod_nw_ttl", "nw_ttl"),
];

/// `set_field:VALUE[/MASK]->FIELD` and `load:VALUE->FIELD[]` (whole fields only).
pub(super) fn set_field(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    let Some((v, f)) = a.split_once("->") else {
        return Err(a.err(format!("`{}` takes VALUE->FIELD", c.name)));
    };
    let f = if c.lname == "load" {
        match f.text.strip_suffix("[]") {
            Some(t) => f.with_text(t),
            None => {
                return Err(
                    f.err("load supports whole fields only (`load:V->FIELD[]`); use set_field")
                );
            }
        }
    } else {
        f
    };
    set_named(f, f.text, v, c.ctx)
}

/// `mod_dl_src:MAC` and the other `mod_*` actions that are a `set_field` by another name.
pub(super) fn mod_field(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    let field = MOD_FIELDS
        .iter()
        .find(|(m, _)| *m == c.lname)
        .map_or("", |(_, f)| f);
    set_named(c.name_tok(), field, a, c.ctx)
}

/// `mod_vlan_vid:VID` sets the VLAN ID of a tagged packet (the 0x1000 "present" bit on).
pub(super) fn mod_vlan_vid(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    let vid = num(a, 0xfff, "mod_vlan_vid")?;
    set_value(
        c.name_tok(),
        Field::VlanVid,
        be_bytes(0x1000 | vid, 2),
        Vec::new(),
        c.ctx,
    )
}

/// `mod_nw_tos:TOS` sets the DSCP bits (TOS >> 2; the ECN bits must be 0).
pub(super) fn mod_nw_tos(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    let tos = num(a, 255, "mod_nw_tos")?;
    if tos & 3 != 0 {
        return Err(a.err("mod_nw_tos sets DSCP bits only: the low 2 bits must be 0"));
    }
    set_value(
        c.name_tok(),
        Field::IpDscp,
        vec![(tos >> 2) as u8],
        Vec::new(),
        c.ctx,
    )
}

/// `set_field:VALUE[/MASK]->FIELD`, field named by `ftok`.
/// `ftok` is where errors point; `fname` is the field name to resolve (they differ for the
/// `mod_*` aliases).
fn set_named(ftok: Tok<'_>, fname: &str, vtok: Tok<'_>, ctx: ActionCtx<'_>) -> Result<Item> {
    let mctx = match ctx {
        ActionCtx::Flow(m) => Ctx::of(m),
        ActionCtx::Bucket => Ctx::default(),
    };
    let field = match resolve_name(fname, mctx) {
        Ok(Named::Field(f)) => f,
        Ok(Named::DlVlan) => {
            let vid = num(vtok, 0xfff, "dl_vlan")?;
            return set_value(
                ftok,
                Field::VlanVid,
                be_bytes(0x1000 | vid, 2),
                Vec::new(),
                ctx,
            );
        }
        Ok(Named::NwTos) => {
            let tos = num(vtok, 255, "nw_tos")?;
            if tos & 3 != 0 {
                return Err(vtok.err("nw_tos holds DSCP bits only: the low 2 bits must be 0"));
            }
            return set_value(ftok, Field::IpDscp, vec![(tos >> 2) as u8], Vec::new(), ctx);
        }
        Err(m) => {
            let m = if matches!(ctx, ActionCtx::Bucket) && m.contains("needs a TCP") {
                format!("{m}; in a group bucket name the field: tcp_src, udp_dst, ...")
            } else {
                m
            };
            return Err(ftok.err(m));
        }
    };
    let Some(d) = field_def(field) else {
        return Err(ftok.err("unknown field"));
    };
    if !d.settable {
        return Err(ftok.err(format!("`{}` cannot be set", ftok.text)));
    }
    let (value, mask) = match parse_value_mask(d, vtok)? {
        Some(vm) => vm,
        None => return Err(vtok.err("a set_field with an all-zero mask writes nothing")),
    };
    set_value(ftok, field, value, mask, ctx)
}

/// The set-field action, once its prerequisites hold in a flow's match.
fn set_value(
    ftok: Tok<'_>,
    field: Field,
    value: Vec<u8>,
    mask: Vec<u8>,
    ctx: ActionCtx<'_>,
) -> Result<Item> {
    if let (ActionCtx::Flow(m), Some(d)) = (ctx, field_def(field))
        && !Ctx::of(m).satisfies(d.prereq)
    {
        return Err(ftok.err(format!(
            "setting `{}` requires the flow's match to have {}",
            ftok.text,
            prereq_text(d.prereq)
        )));
    }
    Ok(act(action::Action::SetField(SetField {
        field: field as i32,
        value,
        mask,
    })))
}
