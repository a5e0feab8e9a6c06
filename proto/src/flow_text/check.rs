//! Validation of matches and set-field actions that arrive through the API as messages
//! rather than text: the same field table and prerequisites the text parser applies.

use std::collections::BTreeMap;

use crate::v1::{Action, Field, FieldMatch, Match, SetField, action};

use super::fields::{FieldDef, Syntax, canonical, field_def_i32};
use super::matches::canonical_vlan;
use super::protocol::{Ctx, prereq_text};
use super::scalar::be_u64;

/// An API match or set-field refused by [`check_match`] or [`check_set_field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Which rule it broke (what an OpenFlow error code is chosen from).
    pub kind: FieldErrorKind,
    /// Where: the field's name (`ip_dst`) or number when unknown.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The rule a refused field broke, one per check this module makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// No such field.
    Unknown,
    /// The value or mask does not have the field's width.
    Width,
    /// The value has bits beyond the field's width (a 3-bit PCP of 9).
    Value,
    /// A mask on a field that takes none.
    Mask,
    /// The field appears twice.
    Duplicate,
    /// The match does not pin the protocol the field lives in.
    Prerequisite,
    /// Fields that describe the same bits in two ways (`vlan_tci` with `vlan_vid`).
    Conflict,
    /// A set-field on a field that cannot be written, or a `port_name` where none fits.
    NotSettable,
}

fn field_err(
    kind: FieldErrorKind,
    field: impl Into<String>,
    message: impl Into<String>,
) -> FieldError {
    FieldError {
        kind,
        field: field.into(),
        message: message.into(),
    }
}

fn known(field: i32) -> Result<&'static FieldDef, FieldError> {
    field_def_i32(field).ok_or_else(|| {
        field_err(
            FieldErrorKind::Unknown,
            format!("field {field}"),
            "unknown field number",
        )
    })
}

/// The value and mask have the field's width and the value fits in its bits.
fn check_widths(d: &FieldDef, value: &[u8], mask: &[u8]) -> Result<(), FieldError> {
    if value.len() != d.width {
        return Err(field_err(
            FieldErrorKind::Width,
            d.name,
            format!("value must be {} bytes, got {}", d.width, value.len()),
        ));
    }
    if !mask.is_empty() && mask.len() != d.width {
        return Err(field_err(
            FieldErrorKind::Width,
            d.name,
            format!(
                "mask must be empty or {} bytes, got {}",
                d.width,
                mask.len()
            ),
        ));
    }
    if let Syntax::Int { bits, .. } = d.syntax
        && bits < 64
        && be_u64(value) >> bits != 0
    {
        return Err(field_err(
            FieldErrorKind::Value,
            d.name,
            format!("value does not fit in {bits} bits"),
        ));
    }
    Ok(())
}

/// Validates a match received through the API and returns its canonical form (fields
/// sorted, values masked, all-ones masks empty, all-zero masks dropped), or the first
/// problem: an unknown field, a value or mask of the wrong width, a mask on a field that
/// takes none, a value wider than the field, a field given twice, a missing prerequisite
/// (as Open vSwitch checks them), or `vlan_tci` mixed with `vlan_vid`/`vlan_pcp`.
/// A `port_name` is allowed only on `in_port`, with an empty value.
pub fn check_match(m: &Match) -> Result<Match, FieldError> {
    let mut out: BTreeMap<i32, FieldMatch> = BTreeMap::new();
    for fm in &m.fields {
        let d = known(fm.field)?;
        if out.contains_key(&fm.field) {
            return Err(field_err(FieldErrorKind::Duplicate, d.name, "given twice"));
        }
        if !fm.port_name.is_empty() {
            if d.field != Field::InPort || !fm.value.is_empty() || !fm.mask.is_empty() {
                return Err(field_err(
                    FieldErrorKind::NotSettable,
                    d.name,
                    "port_name is only valid on in_port, without value or mask",
                ));
            }
            out.insert(fm.field, fm.clone());
            continue;
        }
        check_widths(d, &fm.value, &fm.mask)?;
        let (value, mask) = if fm.mask.is_empty() {
            (fm.value.clone(), Vec::new())
        } else {
            match canonical(d, fm.value.clone(), fm.mask.clone()) {
                Some(vm) => vm,
                None => continue,
            }
        };
        if !mask.is_empty() && !d.maskable {
            return Err(field_err(
                FieldErrorKind::Mask,
                d.name,
                "this field cannot be masked",
            ));
        }
        out.insert(
            fm.field,
            FieldMatch {
                field: fm.field,
                value,
                mask,
                port_name: String::new(),
            },
        );
    }
    let has = |f: Field| out.contains_key(&(f as i32));
    if has(Field::VlanTci) && (has(Field::VlanVid) || has(Field::VlanPcp)) {
        return Err(field_err(
            FieldErrorKind::Conflict,
            "vlan_tci",
            "vlan_tci cannot be combined with vlan_vid / vlan_pcp",
        ));
    }
    let mut fields: Vec<FieldMatch> = out.into_values().collect();
    canonical_vlan(&mut fields);
    let m = Match { fields };
    if let Some((name, why)) = super::ct::ct_tuple_prereq(&m.fields) {
        return Err(field_err(FieldErrorKind::Prerequisite, name, why));
    }
    let ctx = Ctx::of(&m);
    for fm in &m.fields {
        if let Some(d) = field_def_i32(fm.field)
            && !ctx.satisfies(d.prereq)
        {
            return Err(field_err(
                FieldErrorKind::Prerequisite,
                d.name,
                format!("requires {}", prereq_text(d.prereq)),
            ));
        }
    }
    Ok(m)
}

/// Validates a set-field action received through the API against the match context it
/// runs in (`ctx_match`: the flow's match): the field must exist and be settable, the
/// value and mask the field's width, and the field's protocol pinned by the match.
pub fn check_set_field(sf: &SetField, ctx_match: &Match) -> Result<(), FieldError> {
    check_set_field_in(sf, Ctx::of(ctx_match))
}

/// Validates a set-field action's field and value alone (it exists and is settable, the
/// value and mask have its width), for action lists without a match to check its
/// prerequisites against (group buckets, packet-outs: the datapath skips a rewrite of a
/// header the packet does not have).
pub fn check_set_field_value(sf: &SetField) -> Result<(), FieldError> {
    let d = known(sf.field)?;
    if !d.settable {
        return Err(field_err(
            FieldErrorKind::NotSettable,
            d.name,
            "this field cannot be set",
        ));
    }
    check_widths(d, &sf.value, &sf.mask)
}

fn check_set_field_in(sf: &SetField, ctx: Ctx) -> Result<(), FieldError> {
    check_set_field_value(sf)?;
    let d = known(sf.field)?;
    if !ctx.satisfies(d.prereq) {
        return Err(field_err(
            FieldErrorKind::Prerequisite,
            d.name,
            format!("set_field on it requires {}", prereq_text(d.prereq)),
        ));
    }
    Ok(())
}

/// Validates the set-field actions of a flow's action list (see [`check_set_field`]), each
/// against the protocol the match pins as the actions before it change it (`push_mpls`
/// makes the packet MPLS, `pop_mpls:0x0800` makes it IPv4), as Open vSwitch checks them.
/// On failure, the index of the action at fault and the problem.
pub fn check_actions(actions: &[Action], m: &Match) -> Result<(), (usize, FieldError)> {
    let mut ctx = Ctx::of(m);
    for (i, a) in actions.iter().enumerate() {
        if let Some(action::Action::SetField(sf)) = &a.action {
            check_set_field_in(sf, ctx).map_err(|e| (i, e))?;
        }
        ctx = ctx.after(a);
    }
    Ok(())
}
