//! Writing header fields: `set_field:VALUE[/MASK]->FIELD`, the
//! `mod_*` spellings (`mod_dl_dst:MAC`, `mod_nw_tos:TOS`, `mod_nw_ecn:ECN`, ...) and
//! `set_tunnel[64]:ID`, with the field's prerequisites checked against the flow's match
//! (as changed by the actions before, see `Ctx::after`).

use crate::v1::{Field, SetField, action};

use super::super::fields::{
    Named, canonical, field_def, parse_value, parse_value_mask, resolve_name,
};
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
    ("mod_nw_ttl", "nw_ttl"),
];

/// `set_field:VALUE[/MASK]->FIELD` (`load` is in `nicira`).
pub(super) fn set_field(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let Some((v, f)) = a.split_once("->") else {
        return Err(a.err(format!("{}: missing `->`", a.text)));
    };
    if f.text.is_empty() {
        return Err(a.err(format!("{}: missing field name following `->`", a.text)));
    }
    set_named(f, f.text, v, c.ctx)
}

/// `mod_dl_src:MAC` and the other `mod_*` actions that are a `set_field` by another name.
pub(super) fn mod_field(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let field = MOD_FIELDS
        .iter()
        .find(|(m, _)| *m == c.lname)
        .map_or("", |(_, f)| f);
    set_named(c.name_tok(), field, a, c.ctx)
}

/// `mod_nw_tos:TOS` sets the DSCP bits (TOS >> 2; the ECN bits must be 0).
pub(super) fn mod_nw_tos(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let tos = num(a, 255, "mod_nw_tos")?;
    if tos & 3 != 0 {
        return Err(a.err(format!(
            "{}: not a valid TOS (mod_nw_tos sets the DSCP bits: the low 2 bits must be 0)",
            a.text
        )));
    }
    set_value(
        c.name_tok(),
        Field::IpDscp,
        vec![(tos >> 2) as u8],
        Vec::new(),
        c.ctx,
    )
}

/// `mod_nw_ecn:ECN` sets the two ECN bits.
pub(super) fn mod_nw_ecn(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let ecn = num(a, 255, "mod_nw_ecn")?;
    if ecn > 3 {
        return Err(a.err(format!("{}: not a valid ECN (0..=3)", a.text)));
    }
    set_value(
        c.name_tok(),
        Field::IpEcn,
        vec![ecn as u8],
        Vec::new(),
        c.ctx,
    )
}

/// `set_tunnel:ID` and `set_tunnel64:ID`: the tunnel id of the packet's next tunnel output.
pub(super) fn set_tunnel(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let id = num(a, u64::MAX, &c.lname)?;
    set_value(
        c.name_tok(),
        Field::TunId,
        be_bytes(id, 8),
        Vec::new(),
        c.ctx,
    )
}

/// `set_field:VALUE[/MASK]->FIELD`, field named by `ftok`.
/// `ftok` is where errors point; `fname` is the field name to resolve (they differ for the
/// `mod_*` aliases).
fn set_named(ftok: Tok<'_>, fname: &str, vtok: Tok<'_>, ctx: ActionCtx) -> Result<Item> {
    let mctx = match ctx {
        ActionCtx::Flow(m) => m,
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
            let m = if m.starts_with("unknown field") {
                format!("{fname} is not a valid OXM field name")
            } else if matches!(ctx, ActionCtx::Bucket) && m.contains("needs a TCP") {
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
        return Err(ftok.err(format!("{} is read-only", ftok.text)));
    }
    // A set-field writes some bits of any field (`load` into a bit range is one), masked
    // or not as a match field.
    let vm = match vtok.split_once("/") {
        Some((v, m)) if !d.maskable => canonical(d, parse_value(d, v)?, parse_value(d, m)?),
        _ => parse_value_mask(d, vtok)?,
    };
    let (value, mask) = match vm {
        Some(vm) => vm,
        None => return Err(vtok.err("a set_field with an all-zero mask writes nothing")),
    };
    set_value(ftok, field, value, mask, ctx)
}

/// The set-field action, once its prerequisites hold in a flow's match.
pub(super) fn set_value(
    ftok: Tok<'_>,
    field: Field,
    value: Vec<u8>,
    mask: Vec<u8>,
    ctx: ActionCtx,
) -> Result<Item> {
    if let (ActionCtx::Flow(m), Some(d)) = (ctx, field_def(field))
        && !m.satisfies(d.prereq)
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
