//! Validation of matches and set-field actions that arrive through the API as messages
//! rather than text: the same field table and prerequisites the text parser applies.

use std::collections::BTreeMap;

use crate::v1::{Field, FieldMatch, Match, SetField};

use super::fields::{FieldDef, Syntax, field_def_i32};
use super::protocol::{Ctx, prereq_text};
use super::scalar::be_u64;

/// An API match or set-field refused by [`check_match`] or [`check_set_field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Where: the field's name (`ip_dst`) or number when unknown.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn known(field: i32) -> Result<&'static FieldDef, FieldError> {
    field_def_i32(field).ok_or_else(|| field_err(format!("field {field}"), "unknown field number"))
}

/// The value and mask have the field's width and the value fits in its bits.
fn check_widths(d: &FieldDef, value: &[u8], mask: &[u8]) -> Result<(), FieldError> {
    if value.len() != d.width {
        return Err(field_err(
            d.name,
            format!("value must be {} bytes, got {}", d.width, value.len()),
        ));
    }
    if !mask.is_empty() && mask.len() != d.width {
        return Err(field_err(
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
            return Err(field_err(d.name, "given twice"));
        }
        if !fm.port_name.is_empty() {
            if d.field != Field::InPort || !fm.value.is_empty() || !fm.mask.is_empty() {
                return Err(field_err(
                    d.name,
                    "port_name is only valid on in_port, without value or mask",
                ));
            }
            out.insert(fm.field, fm.clone());
            continue;
        }
        check_widths(d, &fm.value, &fm.mask)?;
        let all_ones = fm.mask.iter().all(|&b| b == 0xff);
        let all_zero = !fm.mask.is_empty() && fm.mask.iter().all(|&b| b == 0);
        if all_zero {
            continue;
        }
        if !all_ones && !d.maskable {
            return Err(field_err(d.name, "this field cannot be masked"));
        }
        let (value, mask) = if all_ones {
            (fm.value.clone(), Vec::new())
        } else {
            let v = fm.value.iter().zip(&fm.mask).map(|(v, m)| v & m).collect();
            (v, fm.mask.clone())
        };
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
    let m = Match {
        fields: out.into_values().collect(),
    };
    let ctx = Ctx::of(&m);
    let has = |f: Field| m.fields.iter().any(|x| x.field == f as i32);
    for fm in &m.fields {
        if let Some(d) = field_def_i32(fm.field) {
            if !ctx.satisfies(d.prereq) {
                return Err(field_err(
                    d.name,
                    format!("requires {}", prereq_text(d.prereq)),
                ));
            }
            if d.field == Field::VlanTci && (has(Field::VlanVid) || has(Field::VlanPcp)) {
                return Err(field_err(
                    d.name,
                    "vlan_tci cannot be combined with vlan_vid / vlan_pcp",
                ));
            }
        }
    }
    Ok(m)
}

/// Validates a set-field action received through the API against the match context it
/// runs in (`ctx_match`: the flow's match): the field must exist and be settable, the
/// value and mask the field's width, and the field's protocol pinned by the match.
pub fn check_set_field(sf: &SetField, ctx_match: &Match) -> Result<(), FieldError> {
    let d = known(sf.field)?;
    if !d.settable {
        return Err(field_err(d.name, "this field cannot be set"));
    }
    check_widths(d, &sf.value, &sf.mask)?;
    if !Ctx::of(ctx_match).satisfies(d.prereq) {
        return Err(field_err(
            d.name,
            format!("set_field on it requires {}", prereq_text(d.prereq)),
        ));
    }
    Ok(())
}
